/* unit_stack_layout.c: the stack guard, the ELF parser and the layout engine from C.
 * - The guard on the main thread and on threads with stacks of known sizes: bounds, probes, guarded calls, and a
 *   recursion deeper than the stack stopped gracefully (its report goes to a log file, not stderr).
 * - The ELF parser over this executable and the library it links, whole and truncated at every length of their
 *   headers, each input in a heap buffer of exactly its size: a read past the end is an ASan report.
 * - The layout engine: align, permissions, overlaps (sweep) against a brute-force count, validate, compute.
 * Usage: unit_stack_layout [REGIONS]   (random regions per overlap round; default 2000). */
#include <aether.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static long regions_n = 2000;

/* ------------------------------------------------------------------------------------------ stack --- */
static int callback(void *arg) { return *(int *)arg * 3; }

/* Whether this build keeps locals on ASan's fake stack (detect_stack_use_after_return): then a recursion's
 * frames hardly use the real stack and a deep recursion may finish instead of being stopped. */
static int locals_on_fake_stack(void) {
  volatile char local;
  const uintptr_t frame = (uintptr_t)__builtin_frame_address(0), at = (uintptr_t)&local;
  return (at > frame ? at - frame : frame - at) > ((uintptr_t)1 << 20);
}

static void guard_here(const char *where, size_t expect_size) {
  aether_stack_info info;
  CHECK(aether_stack_get_info(&info) == AETHER_OK, "%s: get_info: %s", where, aether_last_error());
  CHECK(info.low < info.high && info.size == info.high - info.low, "%s: bounds", where);
  CHECK(info.used + info.remaining == info.size, "%s: used + remaining != size", where);
  CHECK(info.margin == AETHER_STACK_SAFETY_MARGIN, "%s: margin %llu", where, (unsigned long long)info.margin);
  if (expect_size) CHECK(info.size <= expect_size && info.size + 65536 >= expect_size, "%s: size %llu for a %zu-byte stack",
                         where, (unsigned long long)info.size, expect_size);
  const size_t left = aether_stack_remaining();
  CHECK(left > AETHER_STACK_SAFETY_MARGIN && left <= info.size, "%s: remaining %zu", where, left);
  CHECK(aether_stack_probe(1024) == AETHER_OK, "%s: a 1 KiB probe failed", where);
  CHECK(aether_stack_probe(info.size) == AETHER_ERR_STACK_OVERFLOW, "%s: a probe for the whole stack passed", where);
  int arg = 7, result = 0;
  CHECK(aether_stack_call(4096, callback, &arg, &result) == AETHER_OK && result == 21, "%s: guarded call", where);
  result = -1;
  CHECK(aether_stack_call(info.size, callback, &arg, &result) == AETHER_ERR_STACK_OVERFLOW && result == -1,
        "%s: a guarded call that cannot fit ran", where);
  uint64_t reached = 0;
  const uint64_t depth = info.size / AETHER_STACK_TEST_FRAME + 64;
  const aether_status st = aether_stack_recurse_test(depth, &reached);
  if (locals_on_fake_stack())
    CHECK(st == AETHER_OK || st == AETHER_ERR_STACK_OVERFLOW, "%s: recursion ended with %d", where, st);
  else
    CHECK(st == AETHER_ERR_STACK_OVERFLOW && reached < depth && reached * AETHER_STACK_TEST_FRAME < info.size,
          "%s: recursion of %llu levels: status %d, reached %llu", where, (unsigned long long)depth, st,
          (unsigned long long)reached);
  CHECK(aether_stack_remaining() + 4096 >= left, "%s: not unwound", where);
}

static void *thread_guard(void *arg) {
  guard_here("thread", (size_t)arg);
  return NULL;
}

static void stack_guard(void) {
  guard_here("main thread", 0);
  /* TSan's pthread_create raises a stack below its static TLS plus 128 KiB (about 900 KiB) to that size, so the
   * small stack is left out under TSan: the guard would rightly report the larger stack the thread got. */
#if defined(__SANITIZE_THREAD__)
  static const size_t sizes[] = {1 << 20, 4 << 20};
#else
  static const size_t sizes[] = {256 << 10, 1 << 20, 4 << 20};
#endif
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, sizes[i]);
    pthread_t t;
    CHECK(pthread_create(&t, &attr, thread_guard, (void *)sizes[i]) == 0, "pthread_create");
    pthread_join(t, NULL);
    pthread_attr_destroy(&attr);
  }
  CHECK(aether_stack_get_info(NULL) == AETHER_ERR_INVALID_ARGUMENT, "get_info(NULL) accepted");
  CHECK(aether_stack_recurse_test(3, NULL) == AETHER_ERR_INVALID_ARGUMENT, "recurse_test(NULL) accepted");
}

/* -------------------------------------------------------------------------------------------- ELF --- */
static unsigned char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  const long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *data = malloc((size_t)n);
  if (data && fread(data, 1, (size_t)n, f) != (size_t)n) free(data), data = NULL;
  fclose(f);
  *len = (size_t)n;
  return data;
}

static void parse_file(const char *path) {
  size_t len = 0;
  unsigned char *data = read_file(path, &len);
  CHECK(data != NULL, "cannot read %s", path);
  if (!data) return;
  aether_elf_header h;
  CHECK(aether_elf_parse(data, len, &h, NULL, 0, NULL, 0) == AETHER_OK, "%s: %s", path, aether_last_error());
  aether_elf_section *sec = calloc(h.section_count + 1, sizeof *sec);
  aether_elf_segment *seg = calloc(h.segment_count + 1, sizeof *seg);
  CHECK(aether_elf_parse(data, len, &h, sec, h.section_count, seg, h.segment_count) == AETHER_OK, "%s: full parse", path);
  int text = 0;
  for (uint32_t i = 0; i < h.section_count; i++)
    if (sec[i].name_length == 5 && memcmp(data + sec[i].name_offset, ".text", 5) == 0) text = 1;
  CHECK(text, "%s: no .text section found", path);
  /* Truncations fail cleanly, reading nothing past an exact-size buffer: every length of the ELF header, lengths
   * spread over the file, and lengths at and around each entry of the section and program header tables. */
  size_t cuts[400], ncuts = 0;
  for (size_t c = 0; c < 64; c++) cuts[ncuts++] = c;
  for (size_t k = 1; k < 64; k++) cuts[ncuts++] = len / 64 * k;
  const struct { uint64_t off; uint32_t n; size_t entry; } tables[2] = {{h.shoff, h.section_count, 64}, {h.phoff, h.segment_count, 56}};
  for (int t = 0; t < 2; t++) {
    if (tables[t].n == 0) continue;
    for (uint32_t e = 0; e <= tables[t].n && e < 40; e++) {
      const size_t at = tables[t].off + (size_t)e * tables[t].entry;
      if (at > 0) cuts[ncuts++] = at - 1;
      cuts[ncuts++] = at;
    }
    cuts[ncuts++] = tables[t].off + (size_t)tables[t].n * tables[t].entry - 1;
  }
  for (size_t i = 0; i < ncuts; i++) {
    const size_t cut = cuts[i];
    if (cut >= len) continue;
    unsigned char *exact = malloc(cut ? cut : 1);
    memcpy(exact, data, cut);
    const aether_status st = aether_elf_parse(exact, cut, &h, sec, h.section_count, seg, h.segment_count);
    CHECK(st == AETHER_ERR_TRUNCATED || st == AETHER_ERR_NOT_ELF || st == AETHER_ERR_MALFORMED,
          "%s cut at %zu: status %d", path, cut, st);
    free(exact);
  }
  /* Flipped bytes in the ELF header: refused or parsed, never a crash. */
  for (size_t i = 0; i < 64 && i < len; i++) {
    data[i] ^= 0xff;
    aether_elf_parse(data, len, &h, sec, 4, seg, 4);
    data[i] ^= 0xff;
  }
  free(sec);
  free(seg);
  free(data);
}

static void elf(void) {
  parse_file("/proc/self/exe");
  Dl_info info;
  if (dladdr((void *)aether_elf_parse, &info) && info.dli_fname) parse_file(info.dli_fname);
  const unsigned char junk[64] = {0x7f, 'E', 'L', 'F', 1, 1, 1, 0}; /* ELFCLASS32 */
  aether_elf_header h;
  CHECK(aether_elf_parse(junk, sizeof junk, &h, NULL, 0, NULL, 0) == AETHER_ERR_NOT_ELF, "32-bit ELF accepted");
  CHECK(aether_elf_parse(NULL, 10, &h, NULL, 0, NULL, 0) == AETHER_ERR_INVALID_ARGUMENT, "NULL data accepted");
}

/* ----------------------------------------------------------------------------------------- layout --- */
static uint64_t next(uint64_t *x) {
  *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
  return *x;
}

static void layout(void) {
  uint64_t out;
  CHECK(aether_layout_align(4097, 4096, &out) == AETHER_OK && out == 8192, "align(4097, 4096) = %llu", (unsigned long long)out);
  CHECK(aether_layout_align(10, 3, &out) == AETHER_OK && out == 12, "align(10, 3) = %llu", (unsigned long long)out);
  CHECK(aether_layout_align(UINT64_MAX - 2, 16, &out) == AETHER_ERR_SIZE_OVERFLOW, "align past 2^64 accepted");
  CHECK(aether_layout_permissions(0x2 | 0x4) == (AETHER_PERM_READ | AETHER_PERM_EXEC), "permissions of AX");

  const size_t n = (size_t)regions_n;
  aether_region *r = calloc(n, sizeof *r);
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < n; i++)
    r[i] = (aether_region){.base = next(&x) % (n * 512), .size = 1 + next(&x) % 1024, .alignment = 16,
                           .permissions = AETHER_PERM_READ, .tag = (uint32_t)i};
  uint64_t brute = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++)
      if (r[i].base < r[j].base + r[j].size && r[j].base < r[i].base + r[i].size) brute++;
  uint64_t count = 0;
  aether_layout_pair pairs[16];
  CHECK(aether_layout_overlaps(r, n, &count, pairs, 16) == AETHER_OK, "overlaps");
  CHECK(count == brute, "sweep found %llu overlapping pairs, brute force %llu", (unsigned long long)count,
        (unsigned long long)brute);
  aether_layout_report rep;
  CHECK(aether_layout_validate(r, n, 0, &rep) == AETHER_OK && rep.overlapping_pairs == brute && !rep.valid,
        "validate of an overlapping layout");
  for (size_t i = 0; i < n; i++) r[i].permissions = (uint16_t)(1u << (i % 3));
  CHECK(aether_layout_compute(r, n, 0x400000, 0x1000, 0x1000, r) == AETHER_OK, "compute");
  CHECK(aether_layout_validate(r, n, 0x400000, &rep) == AETHER_OK && rep.valid && rep.overlapping_pairs == 0,
        "a computed layout is not valid");
  CHECK(aether_layout_overlaps(r, n, NULL, NULL, 0) == AETHER_ERR_INVALID_ARGUMENT, "overlaps without count accepted");
  free(r);
  aether_bench_result b;
  CHECK(aether_bench_layout_overlaps(1000, 0, 3, &b) == AETHER_OK, "bench sweep");
  CHECK(aether_bench_layout_overlaps(200, 1, 3, &b) == AETHER_OK, "bench all pairs");
}

int main(int argc, char **argv) {
  regions_n = check_arg(argc, argv, 1, 2000);
  if (regions_n < 2 || regions_n > 100000) regions_n = 2000;
  char log_path[64];
  snprintf(log_path, sizeof log_path, "/tmp/aether-unit-stack-%d.log", (int)getpid());
  aether_memory_set_option("log_file", log_path); /* the overflow reports */
  SCENARIO(stack_guard);
  SCENARIO(elf);
  SCENARIO(layout);
  aether_memory_set_option("log_file", "");
  unlink(log_path);
  char summary[64];
  snprintf(summary, sizeof summary, "%ld regions", regions_n);
  return check_verdict(summary);
}
