/* elf: the ELF64 parser (aether_elf_parse) on arbitrary bytes, against an independent reading of the format.
 *
 * The input is the file. A model written from the documented rules (aether.h and the ELF64 specification)
 * lists every constraint the bytes violate, each with the status it calls for (NOT_ELF, TRUNCATED or
 * MALFORMED), reading only what it has proven lies inside the input. Checked:
 * - the parser accepts exactly the files that violate nothing, and a refusal names a status the model found
 *   violated (the parser stops at its first finding, the model lists them all);
 * - an accepted file's header, sections (names included: inside the buffer, NUL-terminated, no NUL inside)
 *   and segments are the fields re-read from the raw bytes;
 * - asking with no arrays (counts only), with short arrays (a prefix) and twice gives the same answers, and
 *   the argument checks (NULL header, NULL arrays with a non-zero size) refuse with INVALID_ARGUMENT;
 * - no read outside the input (libFuzzer hands over an exactly sized buffer; ASan watches it).
 * libFuzzer options: -max_len=16384
 */
#include "fuzz_helpers.h"

#include "aether.h"

#define MAX_SEC 64
#define MAX_SEG 64

static uint16_t r16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t r32(const uint8_t *p) { return (uint32_t)r16(p) | (uint32_t)r16(p + 2) << 16; }
static uint64_t r64(const uint8_t *p) { return (uint64_t)r32(p) | (uint64_t)r32(p + 4) << 32; }

/* Which statuses the model finds called for: bits of NOT_ELF, TRUNCATED, MALFORMED. */
enum { V_NOT_ELF = 1, V_TRUNCATED = 2, V_MALFORMED = 4 };

/* [off, off + size) inside [0, len), computed in 128 bits so no sum can wrap. */
static bool inside(uint64_t off, unsigned __int128 size, size_t len) { return (unsigned __int128)off + size <= len; }

static unsigned model(const uint8_t *d, size_t len) {
  unsigned v = 0;
  if (len < 4 || d[0] != 0x7f || d[1] != 'E' || d[2] != 'L' || d[3] != 'F') return V_NOT_ELF;
  if (len < 16) return V_TRUNCATED;
  if (d[4] != 2 || d[5] != 1) return V_NOT_ELF; /* not ELFCLASS64 little-endian */
  if (d[6] != 1) v |= V_MALFORMED;
  if (len < 64) return v | V_TRUNCATED;
  if (r32(d + 20) != 1) v |= V_MALFORMED;  /* e_version */
  if (r16(d + 52) < 64) v |= V_MALFORMED;  /* e_ehsize */
  const uint64_t phoff = r64(d + 32), shoff = r64(d + 40);
  const unsigned phentsize = r16(d + 54), phnum16 = r16(d + 56), shentsize = r16(d + 58), shnum16 = r16(d + 60),
                 shstrndx16 = r16(d + 62);
  uint64_t shnum = shnum16, phnum = phnum16, shstrndx = shstrndx16;
  bool sections_readable = false;
  if (shoff != 0) {
    if (shentsize < 64) return v | V_MALFORMED; /* nothing below can be read */
    if (!inside(shoff, shentsize, len)) return v | V_TRUNCATED;
    const uint8_t *s0 = d + shoff;
    if (shnum16 == 0) shnum = r64(s0 + 32);
    if (shstrndx16 == 0xffff) shstrndx = r32(s0 + 40);
    if (phnum16 == 0xffff) phnum = r32(s0 + 44);
    if (shnum == 0) v |= V_MALFORMED;
    else if (shnum > 0xffffffffu || !inside(shoff, (unsigned __int128)shnum * shentsize, len)) v |= V_TRUNCATED;
    else sections_readable = true;
  } else {
    if (shnum16 != 0) v |= V_MALFORMED;
    if (phnum16 == 0xffff) v |= V_MALFORMED;
    shnum = 0;
    shstrndx = 0;
  }
  if (shnum > 0 && shstrndx != 0 && shstrndx >= shnum) v |= V_MALFORMED;
  if (shstrndx16 >= 0xff00 && shstrndx16 != 0xffff) v |= V_MALFORMED;
  bool segments_readable = false;
  if (phnum > 0) {
    if (phentsize < 56) v |= V_MALFORMED;
    else if (phoff == 0) v |= V_MALFORMED;
    else if (phnum > 0xffffffffu || !inside(phoff, (unsigned __int128)phnum * phentsize, len)) v |= V_TRUNCATED;
    else segments_readable = true;
  }
  uint64_t st_off = 0, st_size = 0;
  bool names = false;
  if (sections_readable && shstrndx != 0 && shstrndx < shnum) {
    const uint8_t *st = d + shoff + shstrndx * shentsize;
    if (r32(st + 4) != 3) v |= V_MALFORMED; /* SHT_STRTAB */
    else if (!inside(r64(st + 24), r64(st + 32), len)) v |= V_TRUNCATED;
    else {
      st_off = r64(st + 24);
      st_size = r64(st + 32);
      names = true;
    }
  }
  if (sections_readable) {
    for (uint64_t i = 0; i < shnum; i++) {
      const uint8_t *s = d + shoff + i * shentsize;
      if (names) {
        const uint32_t name = r32(s);
        if (name >= st_size) v |= V_MALFORMED;
        else if (memchr(d + st_off + name, 0, (size_t)(st_size - name)) == NULL) v |= V_MALFORMED;
      }
      const uint32_t type = r32(s + 4);
      if (i > 0 && type != 8 && type != 0 && !inside(r64(s + 24), r64(s + 32), len)) v |= V_TRUNCATED;
    }
  }
  if (segments_readable) {
    for (uint64_t i = 0; i < phnum; i++) {
      const uint8_t *p = d + phoff + i * phentsize;
      if (!inside(r64(p + 8), r64(p + 32), len)) v |= V_TRUNCATED;
      if (r32(p) == 1 && r64(p + 40) < r64(p + 32)) v |= V_MALFORMED;
    }
  }
  return v;
}

static unsigned status_bit(int st) {
  return st == AETHER_ERR_NOT_ELF ? V_NOT_ELF : st == AETHER_ERR_TRUNCATED ? V_TRUNCATED : st == AETHER_ERR_MALFORMED ? V_MALFORMED : 0;
}

static aether_elf_section sections[MAX_SEC], sections2[MAX_SEC];
static aether_elf_segment segments[MAX_SEG], segments2[MAX_SEG];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  aether_elf_header h, h0, h2;
  const int st = aether_elf_parse(data, size, &h, sections, MAX_SEC, segments, MAX_SEG);
  const unsigned v = model(data, size);
  FUZZ_LOG("parse: %s (%s); the model finds%s%s%s%s", aether_error_name(st), st ? aether_last_error() : "ok",
           v ? "" : " nothing wrong", v & V_NOT_ELF ? " NOT_ELF" : "", v & V_TRUNCATED ? " TRUNCATED" : "",
           v & V_MALFORMED ? " MALFORMED" : "");
  if (st == AETHER_OK) {
    FUZZ_ASSERT_MSG(v == 0, "accepted a file that breaks the format (model bits %#x)", v);
  } else {
    FUZZ_ASSERT_MSG(status_bit(st) != 0, "status %s is not one the parser may return", aether_error_name(st));
    FUZZ_ASSERT_MSG(v & status_bit(st), "refused with %s (%s), but the model finds nothing of that kind (bits %#x)",
                    aether_error_name(st), aether_last_error(), v);
  }

  /* The same call again, and with counts only: the same answers. */
  FUZZ_ASSERT(aether_elf_parse(data, size, &h0, NULL, 0, NULL, 0) == st);
  FUZZ_ASSERT(aether_elf_parse(data, size, &h2, sections2, 3, segments2, 2) == st);
  if (st != AETHER_OK) goto arguments;
  FUZZ_ASSERT(memcmp(&h, &h0, sizeof h) == 0 && memcmp(&h, &h2, sizeof h) == 0);
  FUZZ_ASSERT(memcmp(sections, sections2, (h.section_count < 3 ? h.section_count : 3) * sizeof *sections) == 0);
  FUZZ_ASSERT(memcmp(segments, segments2, (h.segment_count < 2 ? h.segment_count : 2) * sizeof *segments) == 0);

  /* Every field, re-read from the raw bytes. */
  FUZZ_ASSERT(h.type == r16(data + 16) && h.machine == r16(data + 18) && h.entry == r64(data + 24) &&
              h.phoff == r64(data + 32) && h.shoff == r64(data + 40) && h.flags == r32(data + 48) &&
              h.osabi == data[7] && h.abiversion == data[8]);
  const unsigned shentsize = r16(data + 58), phentsize = r16(data + 54);
  for (uint32_t i = 0; i < h.section_count && i < MAX_SEC; i++) {
    const uint8_t *s = data + h.shoff + (uint64_t)i * shentsize;
    const aether_elf_section *x = &sections[i];
    FUZZ_ASSERT_MSG(x->type == r32(s + 4) && x->flags == r64(s + 8) && x->addr == r64(s + 16) &&
                        x->offset == r64(s + 24) && x->size == r64(s + 32) && x->link == r32(s + 40) &&
                        x->info == r32(s + 44) && x->addralign == r64(s + 48) && x->entsize == r64(s + 56),
                    "section %u: a field differs from the file", i);
    if (x->name_length || x->name_offset) {
      FUZZ_ASSERT_MSG(x->name_offset + x->name_length < size, "section %u: its name runs past the input", i);
      FUZZ_ASSERT_MSG(data[x->name_offset + x->name_length] == 0 && memchr(data + x->name_offset, 0, x->name_length) == NULL,
                      "section %u: name [%llu, +%u) is not the NUL-terminated string there", i,
                      (unsigned long long)x->name_offset, x->name_length);
    }
  }
  for (uint32_t i = 0; i < h.segment_count && i < MAX_SEG; i++) {
    const uint8_t *p = data + h.phoff + (uint64_t)i * phentsize;
    const aether_elf_segment *g = &segments[i];
    FUZZ_ASSERT_MSG(g->type == r32(p) && g->flags == r32(p + 4) && g->offset == r64(p + 8) && g->vaddr == r64(p + 16) &&
                        g->paddr == r64(p + 24) && g->filesz == r64(p + 32) && g->memsz == r64(p + 40) &&
                        g->align == r64(p + 48),
                    "segment %u: a field differs from the file", i);
  }

arguments:
  FUZZ_ASSERT(aether_elf_parse(data, size, NULL, NULL, 0, NULL, 0) == AETHER_ERR_INVALID_ARGUMENT);
  FUZZ_ASSERT(aether_elf_parse(data, size, &h0, NULL, 1, NULL, 0) == AETHER_ERR_INVALID_ARGUMENT);
  FUZZ_ASSERT(aether_elf_parse(data, size, &h0, NULL, 0, NULL, 1) == AETHER_ERR_INVALID_ARGUMENT);
  if (size) FUZZ_ASSERT(aether_elf_parse(NULL, size, &h0, NULL, 0, NULL, 0) == AETHER_ERR_INVALID_ARGUMENT);
  FUZZ_LOG("done: no finding");
  return 0;
}
