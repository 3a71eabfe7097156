/* info.c: what this build is, and what the CPU can do. */
#include "internal.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define AE_X86 1
#endif

const char *aether_version(void) { return AETHER_VERSION_STRING; }
const char *aether_variant(void) { return AETHER_VARIANT_NAME; }
const char *aether_build_compiler(void) { return AETHER_COMPILER; }
const char *aether_build_flags(void) { return AETHER_C_FLAGS; }

#ifdef AE_X86
/* XCR0 via xgetbv: which register files the OS saves on context switch. A CPU flag without OS support must
 * count as absent, or the first AVX instruction faults. */
static uint64_t read_xcr0(void) {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

static uint32_t probe_features(void) {
  unsigned a, b, c, d;
  uint32_t f = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  if (c & bit_SSE4_2) f |= AETHER_CPU_SSE42;
  const int osxsave = (c & bit_OSXSAVE) != 0;
  const int fma = (c & bit_FMA) != 0;
  const uint64_t xcr0 = osxsave ? read_xcr0() : 0;
  const int os_avx = (xcr0 & 0x6) == 0x6;          /* XMM and YMM state */
  const int os_avx512 = (xcr0 & 0xe6) == 0xe6;     /* plus opmask, ZMM_Hi256, Hi16_ZMM */
  if (__get_cpuid_max(0, NULL) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  if (os_avx && (b & bit_AVX2)) f |= AETHER_CPU_AVX2;
  if (os_avx && fma) f |= AETHER_CPU_FMA;
  if (os_avx512 && (b & bit_AVX512F)) f |= AETHER_CPU_AVX512F;
  if (os_avx512 && (b & bit_AVX512BW)) f |= AETHER_CPU_AVX512BW;
  if (os_avx512 && (b & bit_AVX512VL)) f |= AETHER_CPU_AVX512VL;
  return f;
}

#else
static uint32_t probe_features(void) { return 0; }
#endif

uint32_t aether_cpu_features(void) {
  /* The probe is idempotent, so a racing first call computing it twice is harmless. Bit 31 marks "probed". */
  static _Atomic uint32_t cached;
  uint32_t v = atomic_load_explicit(&cached, memory_order_relaxed);
  if (v == 0) {
    v = probe_features() | 0x80000000u;
    atomic_store_explicit(&cached, v, memory_order_relaxed);
  }
  return v & 0x7fffffffu;
}

int aether_cpu_model(char *out, size_t len) {
  AE_RETURN_ERROR_IF(out == NULL || len == 0, AETHER_ERR_INVALID_ARGUMENT, "aether_cpu_model: out is NULL or len is 0");
  char brand[49] = {0};
#ifdef AE_X86
  unsigned regs[12];
  if (__get_cpuid_max(0x80000000u, NULL) >= 0x80000004u) {
    for (unsigned i = 0; i < 3; i++)
      __cpuid(0x80000002u + i, regs[i * 4], regs[i * 4 + 1], regs[i * 4 + 2], regs[i * 4 + 3]);
    memcpy(brand, regs, 48);
  } else {
    strcpy(brand, "unknown x86-64");
  }
#else
  strcpy(brand, "unknown");
#endif
  const char *s = brand;
  while (*s == ' ') s++;
  size_t n = strlen(s);
  while (n > 0 && s[n - 1] == ' ') n--;
  if (n >= len) n = len - 1;
  memcpy(out, s, n);
  out[n] = '\0';
  return (int)n;
}
