/* qstate_avx2.c: the AVX2+FMA expansion of qstate_kernels.h: 8 floats (4 doubles) per vector, aligned 32-byte
 * loads. Only called after qstate.c has seen AVX2 and FMA in CPUID with YMM state enabled in XCR0. */
#include "qstate_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AE_QK_SUFFIX avx2
#define AE_QK_NAME "avx2"
#define AE_QK_TARGET __attribute__((target("avx2,fma")))
#define AE_W 8
#define AE_LOG2W 3
#define AE_DW 4
typedef __m256 vf;
typedef __m256d vd;
typedef __m256i vi;
typedef __m256 vm;
#define VF_LOAD(p) _mm256_load_ps(p)
#define VF_STORE(p, v) _mm256_store_ps((p), (v))
#define VF_STOREU(p, v) _mm256_storeu_ps((p), (v))
#define VF_SET1(x) _mm256_set1_ps(x)
#define VF_MUL(a, b) _mm256_mul_ps((a), (b))
#define VF_ADD(a, b) _mm256_add_ps((a), (b))
#define VF_FMADD(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VF_FNMADD(a, b, c) _mm256_fnmadd_ps((a), (b), (c))
#define VD_ZERO() _mm256_setzero_pd()
#define VD_LOADF(p) _mm256_cvtps_pd(_mm_load_ps(p))
#define VD_FMADD(a, b, c) _mm256_fmadd_pd((a), (b), (c))
#define VD_FNMADD(a, b, c) _mm256_fnmadd_pd((a), (b), (c))
#define VD_ADD(a, b) _mm256_add_pd((a), (b))
#define VD_STORE(p, v) _mm256_store_pd((p), (v))
#define VI_LOAD(p) _mm256_load_si256((const __m256i *)(const void *)(p))
#define VF_PERM(x, idx) _mm256_permutevar8x32_ps((x), (idx))
#define VM_LOAD(p) _mm256_castsi256_ps(_mm256_load_si256((const __m256i *)(const void *)(p)))
#define VF_BLEND(m, a, b) _mm256_blendv_ps((a), (b), (m))

#include "qstate_kernels.h"

#else
/* Not x86-64: the table exists so qstate.c links, and is never chosen (aether_cpu_features() is 0). */
const ae_qkernels _ae_qk_avx2 = {.name = "avx2", .width = 0};
#endif
