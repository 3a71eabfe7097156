/* qstate_internal.h: the contract between the state-vector API (qstate.c) and its kernels. One kernel body
 * (qstate_kernels.h) is expanded once per instruction set, each in its own file so each gets its own flags:
 *   qstate_scalar.c  the reference, one lane, compiled with -fno-tree-vectorize (see CMakeLists.txt)
 *   qstate_avx2.c    8 floats per vector, __attribute__((target("avx2,fma")))
 *   qstate_avx512.c  16 floats per vector, __attribute__((target("avx512f,avx2,fma")))
 * Every expansion fills one ae_qkernels table; qstate.c picks a table once from the CPU probe.
 *
 * Preconditions the kernels assume and qstate.c checks before calling them: n is a power of two and at least
 * the table's width (else qstate.c calls the scalar table); re, im (and the second state's arrays) are
 * aligned to 4 * width bytes (32 for AVX2, 64 for AVX-512: aligned loads, which fault rather than silently
 * mis-read); target and control are below log2(n) and differ. Output buffers of probabilities need only float
 * alignment (unaligned stores). */
#ifndef AETHER_QSTATE_INTERNAL_H
#define AETHER_QSTATE_INTERNAL_H

#include "internal.h"

#include <stddef.h>

typedef struct ae_qkernels {
  const char *name;
  unsigned width;  /* floats per vector: 1, 8 or 16 */
  double (*norm2)(const float *re, const float *im, size_t n);
  void (*inner)(const float *ar, const float *ai, const float *br, const float *bi, size_t n, double out[2]);
  void (*scale)(float *re, float *im, size_t n, float cr, float ci);
  void (*scale_real)(float *re, float *im, size_t n, float k);
  void (*gate)(float *re, float *im, size_t n, unsigned target, const float m[8]);
  void (*cnot)(float *re, float *im, size_t n, unsigned control, unsigned target);
  void (*probs)(const float *re, const float *im, float *out, size_t n);
  /* Streaming passes for the bandwidth benchmark over two arrays of n floats each (n a multiple of 32). */
  double (*stream_read)(const float *a, const float *b, size_t n);
  void (*stream_copy)(float *restrict da, float *restrict db, const float *restrict a, const float *restrict b, size_t n);
  void (*stream_update)(float *a, float *b, size_t n, float k);
} ae_qkernels;

extern const ae_qkernels _ae_qk_scalar;
extern const ae_qkernels _ae_qk_avx2;
extern const ae_qkernels _ae_qk_avx512;

#endif
