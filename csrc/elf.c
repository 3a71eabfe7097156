/* elf.c: the ELF64 little-endian header, section-header and program-header parser behind `aether layout`.
 *
 * It is a pure function over a byte buffer: no I/O, no allocation, no global state, so a fuzzer can call it
 * millions of times and a corrupted file can only make it return an error. Every read goes through rd16/rd32/
 * rd64 at an offset already proven to lie inside the buffer, and every offset + size sum is checked for
 * overflow before it is compared with the length (checked_end). Fields are read byte by byte in little-endian
 * order, so the host's endianness and the buffer's alignment do not matter. */
#include "internal.h"

#include <string.h>

#define EI_NIDENT 16
#define ELFCLASS32 1
#define ELFCLASS64 2
#define ELFDATA2LSB 1
#define ELFDATA2MSB 2
#define EV_CURRENT 1
#define EHDR_SIZE 64u
#define SHDR_SIZE 64u
#define PHDR_SIZE 56u
#define SHN_UNDEF 0u
#define SHN_LORESERVE 0xff00u
#define SHN_XINDEX 0xffffu
#define PN_XNUM 0xffffu
#define SHT_NULL 0u
#define SHT_STRTAB 3u
#define SHT_NOBITS 8u
#define PT_LOAD 1u

/* The structs cross the FFI (cli/native/layout.ts reads them at fixed offsets): pin their sizes. */
_Static_assert(sizeof(aether_elf_header) == 48, "aether_elf_header is 48 bytes");
_Static_assert(sizeof(aether_elf_section) == 72, "aether_elf_section is 72 bytes");
_Static_assert(sizeof(aether_elf_segment) == 56, "aether_elf_segment is 56 bytes");

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }

/* off + size, or false when it overflows or passes len. */
static inline bool checked_end(uint64_t off, uint64_t size, size_t len, uint64_t *end) {
  if (size > UINT64_MAX - off) return false;
  *end = off + size;
  return *end <= (uint64_t)len;
}

/* Section header i, decoded (no name yet); the caller has checked the table lies in the buffer. */
static void read_shdr(const uint8_t *d, uint64_t shoff, uint64_t shentsize, uint64_t i, aether_elf_section *s,
                      uint32_t *name) {
  const uint8_t *p = d + shoff + i * shentsize;
  *name = rd32(p + 0);
  s->name_offset = 0;
  s->name_length = 0;
  s->type = rd32(p + 4);
  s->flags = rd64(p + 8);
  s->addr = rd64(p + 16);
  s->offset = rd64(p + 24);
  s->size = rd64(p + 32);
  s->link = rd32(p + 40);
  s->info = rd32(p + 44);
  s->addralign = rd64(p + 48);
  s->entsize = rd64(p + 56);
}

aether_status aether_elf_parse(const void *data, size_t len, aether_elf_header *header,
                               aether_elf_section *sections, size_t max_sections, aether_elf_segment *segments,
                               size_t max_segments) {
  AE_RETURN_ERROR_IF(header == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_elf_parse: header is NULL");
  AE_RETURN_ERROR_IF(data == NULL && len != 0, AETHER_ERR_INVALID_ARGUMENT, "aether_elf_parse: data is NULL");
  AE_RETURN_ERROR_IF(sections == NULL && max_sections != 0, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_elf_parse: sections is NULL but max_sections is %zu", max_sections);
  AE_RETURN_ERROR_IF(segments == NULL && max_segments != 0, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_elf_parse: segments is NULL but max_segments is %zu", max_segments);
  memset(header, 0, sizeof *header);
  const uint8_t *d = data;

  /* e_ident: magic, class, data encoding, version. */
  AE_RETURN_ERROR_IF(len < 4 || memcmp(d, "\x7f" "ELF", 4) != 0, AETHER_ERR_NOT_ELF,
                     "not an ELF file: it does not start with the magic 7f 45 4c 46");
  AE_RETURN_ERROR_IF(len < EI_NIDENT, AETHER_ERR_TRUNCATED, "ELF identification needs %u bytes, the input has %zu",
                     EI_NIDENT, len);
  AE_RETURN_ERROR_IF(d[4] == ELFCLASS32, AETHER_ERR_NOT_ELF, "32-bit ELF (ELFCLASS32) is not supported: only ELF64");
  AE_RETURN_ERROR_IF(d[4] != ELFCLASS64, AETHER_ERR_NOT_ELF, "ELF class %u is neither 32- nor 64-bit", d[4]);
  AE_RETURN_ERROR_IF(d[5] == ELFDATA2MSB, AETHER_ERR_NOT_ELF,
                     "big-endian ELF (ELFDATA2MSB) is not supported: only little-endian");
  AE_RETURN_ERROR_IF(d[5] != ELFDATA2LSB, AETHER_ERR_NOT_ELF, "ELF data encoding %u is neither little- nor big-endian",
                     d[5]);
  AE_RETURN_ERROR_IF(d[6] != EV_CURRENT, AETHER_ERR_MALFORMED, "ELF identification version is %u, not 1", d[6]);
  AE_RETURN_ERROR_IF(len < EHDR_SIZE, AETHER_ERR_TRUNCATED, "the ELF64 header needs %u bytes, the input has %zu",
                     EHDR_SIZE, len);

  header->osabi = d[7];
  header->abiversion = d[8];
  header->type = rd16(d + 16);
  header->machine = rd16(d + 18);
  const uint32_t version = rd32(d + 20);
  header->entry = rd64(d + 24);
  header->phoff = rd64(d + 32);
  header->shoff = rd64(d + 40);
  header->flags = rd32(d + 48);
  const uint16_t ehsize = rd16(d + 52), phentsize = rd16(d + 54), phnum16 = rd16(d + 56);
  const uint16_t shentsize = rd16(d + 58), shnum16 = rd16(d + 60), shstrndx16 = rd16(d + 62);
  AE_RETURN_ERROR_IF(version != EV_CURRENT, AETHER_ERR_MALFORMED, "e_version is %u, not 1", version);
  AE_RETURN_ERROR_IF(ehsize < EHDR_SIZE, AETHER_ERR_MALFORMED, "e_ehsize is %u, less than the %u of an ELF64 header",
                     ehsize, EHDR_SIZE);

  /* Section header table. Section 0 carries the real counts when they do not fit in 16 bits. */
  uint64_t shnum = shnum16, shstrndx = shstrndx16, phnum = phnum16, end;
  const uint64_t shoff = header->shoff;
  if (shoff != 0) {
    AE_RETURN_ERROR_IF(shentsize < SHDR_SIZE, AETHER_ERR_MALFORMED,
                       "e_shentsize is %u, less than the %u of an ELF64 section header", shentsize, SHDR_SIZE);
    AE_RETURN_ERROR_IF(!checked_end(shoff, shentsize, len, &end), AETHER_ERR_TRUNCATED,
                       "section header 0 at offset %" PRIu64 " extends past the end of the input (%zu bytes)", shoff,
                       len);
    aether_elf_section s0;
    uint32_t name0;
    read_shdr(d, shoff, shentsize, 0, &s0, &name0);
    if (shnum16 == 0) shnum = s0.size;
    if (shstrndx16 == SHN_XINDEX) shstrndx = s0.link;
    if (phnum16 == PN_XNUM) phnum = s0.info;
    AE_RETURN_ERROR_IF(shnum == 0, AETHER_ERR_MALFORMED, "e_shoff is set but the section count is 0");
    AE_RETURN_ERROR_IF(shnum > UINT32_MAX || shnum > UINT64_MAX / shentsize ||
                           !checked_end(shoff, shnum * shentsize, len, &end),
                       AETHER_ERR_TRUNCATED,
                       "the section header table (%" PRIu64 " entries of %u bytes at offset %" PRIu64
                       ") extends past the end of the input (%zu bytes)",
                       shnum, shentsize, shoff, len);
  } else {
    AE_RETURN_ERROR_IF(shnum16 != 0, AETHER_ERR_MALFORMED, "e_shnum is %u but e_shoff is 0", shnum16);
    AE_RETURN_ERROR_IF(phnum16 == PN_XNUM, AETHER_ERR_MALFORMED,
                       "e_phnum is PN_XNUM but there is no section 0 to hold the count");
    shnum = 0;
    shstrndx = SHN_UNDEF;
  }
  AE_RETURN_ERROR_IF(shnum > 0 && shstrndx != SHN_UNDEF && shstrndx >= shnum, AETHER_ERR_MALFORMED,
                     "the section-name table index %" PRIu64 " is not below the section count %" PRIu64, shstrndx,
                     shnum);
  AE_RETURN_ERROR_IF(shstrndx16 >= SHN_LORESERVE && shstrndx16 != SHN_XINDEX, AETHER_ERR_MALFORMED,
                     "e_shstrndx %#x is a reserved index", shstrndx16);

  /* Program header table. */
  const uint64_t phoff = header->phoff;
  if (phnum > 0) {
    AE_RETURN_ERROR_IF(phentsize < PHDR_SIZE, AETHER_ERR_MALFORMED,
                       "e_phentsize is %u, less than the %u of an ELF64 program header", phentsize, PHDR_SIZE);
    AE_RETURN_ERROR_IF(phoff == 0, AETHER_ERR_MALFORMED, "%" PRIu64 " program headers but e_phoff is 0", phnum);
    AE_RETURN_ERROR_IF(phnum > UINT32_MAX || !checked_end(phoff, phnum * phentsize, len, &end), AETHER_ERR_TRUNCATED,
                       "the program header table (%" PRIu64 " entries of %u bytes at offset %" PRIu64
                       ") extends past the end of the input (%zu bytes)",
                       phnum, phentsize, phoff, len);
  }
  header->section_count = (uint32_t)shnum;
  header->segment_count = (uint32_t)phnum;
  header->shstrndx = (uint32_t)shstrndx;

  /* The section-name table must be a string table inside the buffer. */
  uint64_t strtab_off = 0, strtab_size = 0;
  if (shnum > 0 && shstrndx != SHN_UNDEF) {
    aether_elf_section st;
    uint32_t ignored;
    read_shdr(d, shoff, shentsize, shstrndx, &st, &ignored);
    AE_RETURN_ERROR_IF(st.type != SHT_STRTAB, AETHER_ERR_MALFORMED,
                       "the section-name table (section %" PRIu64 ") has type %u, not SHT_STRTAB", shstrndx, st.type);
    AE_RETURN_ERROR_IF(!checked_end(st.offset, st.size, len, &end), AETHER_ERR_TRUNCATED,
                       "the section-name table [%" PRIu64 ", +%" PRIu64 ") extends past the end of the input (%zu bytes)",
                       st.offset, st.size, len);
    strtab_off = st.offset;
    strtab_size = st.size;
  }

  for (uint64_t i = 0; i < shnum; i++) {
    aether_elf_section s;
    uint32_t name;
    read_shdr(d, shoff, shentsize, i, &s, &name);
    if (shstrndx != SHN_UNDEF) {
      AE_RETURN_ERROR_IF(name >= strtab_size, AETHER_ERR_MALFORMED,
                         "section %" PRIu64 ": name offset %u is outside the section-name table (%" PRIu64 " bytes)", i,
                         name, strtab_size);
      const uint8_t *start = d + strtab_off + name;
      const uint8_t *nul = memchr(start, 0, (size_t)(strtab_size - name));
      AE_RETURN_ERROR_IF(nul == NULL, AETHER_ERR_MALFORMED,
                         "section %" PRIu64 ": its name is not NUL-terminated inside the section-name table", i);
      s.name_offset = strtab_off + name;
      s.name_length = (uint32_t)(nul - start);
    }
    if (i > 0 && s.type != SHT_NOBITS && s.type != SHT_NULL) {
      AE_RETURN_ERROR_IF(!checked_end(s.offset, s.size, len, &end), AETHER_ERR_TRUNCATED,
                         "section %" PRIu64 ": contents [%" PRIu64 ", +%" PRIu64
                         ") extend past the end of the input (%zu bytes)",
                         i, s.offset, s.size, len);
    }
    if (i < max_sections) sections[i] = s;
  }

  for (uint64_t i = 0; i < phnum; i++) {
    const uint8_t *p = d + phoff + i * phentsize;
    aether_elf_segment g;
    g.type = rd32(p + 0);
    g.flags = rd32(p + 4);
    g.offset = rd64(p + 8);
    g.vaddr = rd64(p + 16);
    g.paddr = rd64(p + 24);
    g.filesz = rd64(p + 32);
    g.memsz = rd64(p + 40);
    g.align = rd64(p + 48);
    AE_RETURN_ERROR_IF(!checked_end(g.offset, g.filesz, len, &end), AETHER_ERR_TRUNCATED,
                       "program header %" PRIu64 ": contents [%" PRIu64 ", +%" PRIu64
                       ") extend past the end of the input (%zu bytes)",
                       i, g.offset, g.filesz, len);
    AE_RETURN_ERROR_IF(g.type == PT_LOAD && g.memsz < g.filesz, AETHER_ERR_MALFORMED,
                       "program header %" PRIu64 " (PT_LOAD): p_memsz %" PRIu64 " is less than p_filesz %" PRIu64, i,
                       g.memsz, g.filesz);
    if (i < max_segments) segments[i] = g;
  }
  return AETHER_OK;
}
