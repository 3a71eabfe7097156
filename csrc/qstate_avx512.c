/* qstate_avx512.c: the AVX-512F expansion of qstate_kernels.h: 16 floats (8 doubles) per vector, aligned
 * 64-byte loads, opmask blends. Only called after qstate.c has seen AVX-512F (with AVX2 and FMA) in CPUID and
 * opmask/ZMM state enabled in XCR0, and only on states whose arrays are both 64-byte aligned. */
#include "qstate_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AE_QK_SUFFIX avx512
#define AE_QK_NAME "avx512"
#define AE_QK_TARGET __attribute__((target("avx512f,avx2,fma")))
#define AE_W 16
#define AE_LOG2W 4
#define AE_DW 8
typedef __m512 vf;
typedef __m512d vd;
typedef __m512i vi;
typedef __mmask16 vm;
#define VF_LOAD(p) _mm512_load_ps(p)
#define VF_STORE(p, v) _mm512_store_ps((p), (v))
#define VF_STOREU(p, v) _mm512_storeu_ps((p), (v))
#define VF_SET1(x) _mm512_set1_ps(x)
#define VF_MUL(a, b) _mm512_mul_ps((a), (b))
#define VF_ADD(a, b) _mm512_add_ps((a), (b))
#define VF_FMADD(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VF_FNMADD(a, b, c) _mm512_fnmadd_ps((a), (b), (c))
#define VD_ZERO() _mm512_setzero_pd()
#define VD_LOADF(p) _mm512_cvtps_pd(_mm256_load_ps(p))
#define VD_FMADD(a, b, c) _mm512_fmadd_pd((a), (b), (c))
#define VD_FNMADD(a, b, c) _mm512_fnmadd_pd((a), (b), (c))
#define VD_ADD(a, b) _mm512_add_pd((a), (b))
#define VD_STORE(p, v) _mm512_store_pd((p), (v))
#define VI_LOAD(p) _mm512_load_si512((const void *)(p))
#define VF_PERM(x, idx) _mm512_permutexvar_ps((idx), (x))
#define VM_LOAD(p) _mm512_cmpneq_epi32_mask(_mm512_load_si512((const void *)(p)), _mm512_setzero_si512())
#define VF_BLEND(m, a, b) _mm512_mask_blend_ps((m), (a), (b))

#include "qstate_kernels.h"

#else
const ae_qkernels _ae_qk_avx512 = {.name = "avx512", .width = 0};
#endif
