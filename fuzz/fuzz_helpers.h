/* fuzz_helpers.h: what every fuzz target shares (zstd's tests/fuzz/fuzz_helpers.h and fuzz_data_producer.h).
 *
 * A target is one file fuzz/<name>.c that defines LLVMFuzzerTestOneInput (and optionally LLVMFuzzerInitialize).
 * The same file is linked either with libFuzzer (clang -fsanitize=fuzzer) or with regression_driver.c (plain
 * gcc, no libFuzzer), so nothing here may depend on libFuzzer.
 *
 * - FUZZ_ASSERT(cond) / FUZZ_ASSERT_MSG(cond, fmt, ...): the oracle. A failed check prints
 *   "FUZZ ASSERTION FAILED: <file>:<line>: <message>" on stderr and aborts, which libFuzzer and the regression
 *   driver both treat as a crash (libFuzzer then saves the input under fuzz/artifacts/<target>/).
 * - fuzz_producer: carves parameters out of the input. Every value is read from the front, little-endian, in
 *   the fewest bytes that hold its range (1, 2, 4 or 8), and reads past the end give 0, so any byte string is a
 *   valid program and the fuzzer's mutations map onto parameters byte by byte. The Bun-side engine
 *   (cli/lib/fuzz/producer.ts) decodes and encodes exactly this format, so an input is the same program on
 *   both sides.
 * - FUZZ_LOG(fmt, ...): the step-by-step account `aether fuzz --repro` prints (FUZZ_VERBOSE=1 in the
 *   environment); silent, and nearly free, while fuzzing.
 */
#ifndef AETHER_FUZZ_HELPERS_H
#define AETHER_FUZZ_HELPERS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The model's own scanning loops need no coverage feedback (it would only slow libFuzzer down). */
#if defined(__clang__)
#define FUZZ_NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define FUZZ_NO_COVERAGE
#endif

/* Index of the first byte of p[0..n) that differs from c, or SIZE_MAX. */
static inline FUZZ_NO_COVERAGE size_t fuzz_first_not(const uint8_t *p, size_t n, uint8_t c) {
  const uint64_t w = 0x0101010101010101ull * c;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    memcpy(&v, p + i, 8);
    if (v != w) break;
  }
  for (; i < n; i++)
    if (p[i] != c) return i;
  return SIZE_MAX;
}

/* ------------------------------------------------------------------------------------ assertions --- */
static inline void fuzz_fail(const char *file, int line, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));
static inline void fuzz_fail(const char *file, int line, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "FUZZ ASSERTION FAILED: %s:%d: %s\n", file, line, msg);
  fflush(stderr);
  abort();
}

#define FUZZ_ASSERT_MSG(cond, ...) \
  do {                             \
    if (!(cond)) fuzz_fail(__FILE__, __LINE__, __VA_ARGS__); \
  } while (0)
#define FUZZ_ASSERT(cond) FUZZ_ASSERT_MSG((cond), "%s", #cond)

/* --------------------------------------------------------------------------------------- logging --- */
static inline bool fuzz_verbose(void) {
  static int verbose = -1;
  if (verbose < 0) {
    const char *v = getenv("FUZZ_VERBOSE");
    verbose = v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
  }
  return verbose != 0;
}

#define FUZZ_LOG(...)                      \
  do {                                     \
    if (fuzz_verbose()) {                  \
      fprintf(stdout, __VA_ARGS__);        \
      fputc('\n', stdout);                 \
      fflush(stdout);                      \
    }                                      \
  } while (0)

/* ----------------------------------------------------------------------------------- the producer --- */
typedef struct fuzz_producer {
  const uint8_t *data;
  size_t size;
  size_t pos;
} fuzz_producer;

static inline fuzz_producer fuzz_producer_make(const uint8_t *data, size_t size) {
  fuzz_producer p = {data, size, 0};
  return p;
}

static inline size_t fuzz_remaining(const fuzz_producer *p) { return p->size - p->pos; }
static inline bool fuzz_empty(const fuzz_producer *p) { return p->pos >= p->size; }

/* n (<= 8) bytes, little-endian; missing bytes read as 0. */
static inline uint64_t fuzz_bytes_le(fuzz_producer *p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; i++) {
    const uint64_t b = p->pos < p->size ? p->data[p->pos] : 0;
    if (p->pos < p->size) p->pos++;
    v |= b << (8 * i);
  }
  return v;
}

/* Bytes needed to hold span (the largest offset from the minimum): 1, 2, 4 or 8. */
static inline unsigned fuzz_width(uint64_t span) {
  return span <= 0xff ? 1 : span <= 0xffff ? 2 : span <= 0xffffffffull ? 4 : 8;
}

/* A value in [min, max]: min + (raw % (max - min + 1)), raw in fuzz_width(max - min) bytes. */
static inline uint64_t fuzz_range64(fuzz_producer *p, uint64_t min, uint64_t max) {
  if (max <= min) return min;
  const uint64_t span = max - min;
  const uint64_t raw = fuzz_bytes_le(p, fuzz_width(span));
  return span == UINT64_MAX ? raw : min + raw % (span + 1);
}
static inline uint32_t fuzz_range32(fuzz_producer *p, uint32_t min, uint32_t max) {
  return (uint32_t)fuzz_range64(p, min, max);
}
static inline uint8_t fuzz_u8(fuzz_producer *p) { return (uint8_t)fuzz_bytes_le(p, 1); }
static inline uint16_t fuzz_u16(fuzz_producer *p) { return (uint16_t)fuzz_bytes_le(p, 2); }
static inline uint32_t fuzz_u32(fuzz_producer *p) { return (uint32_t)fuzz_bytes_le(p, 4); }
static inline uint64_t fuzz_u64(fuzz_producer *p) { return fuzz_bytes_le(p, 8); }
static inline bool fuzz_bool(fuzz_producer *p) { return (fuzz_u8(p) & 1) != 0; }
/* A float from its raw bits: every NaN payload, infinity and subnormal is reachable. */
static inline float fuzz_f32_bits(fuzz_producer *p) {
  const uint32_t bits = fuzz_u32(p);
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/* ------------------------------------------------------------------------------ a seeded generator --- */
/* splitmix64: fills large buffers from a seed carved out of the input, so a short input can still drive a
 * state of thousands of amplitudes. */
static inline uint64_t fuzz_mix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

#ifdef __cplusplus
}
#endif

#endif
