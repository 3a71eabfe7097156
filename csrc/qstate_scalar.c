/* qstate_scalar.c: the scalar reference expansion of qstate_kernels.h: one lane, plain C, no FMA. CMakeLists.txt
 * compiles this file with -fno-tree-vectorize, so GCC's -O2 vectorizer cannot turn the reference into SIMD code
 * behind our back: it stays the honest one-lane baseline the vector expansions are measured against. */
#include "qstate_internal.h"

#define AE_QK_SUFFIX scalar
#define AE_QK_NAME "scalar"
#define AE_QK_TARGET
#define AE_W 1
#define AE_LOG2W 0
#define AE_DW 1
typedef float vf;
typedef double vd;
#define VF_LOAD(p) (*(p))
#define VF_STORE(p, v) (*(p) = (v))
#define VF_STOREU(p, v) (*(p) = (v))
#define VF_SET1(x) ((float)(x))
#define VF_MUL(a, b) ((a) * (b))
#define VF_ADD(a, b) ((a) + (b))
#define VF_FMADD(a, b, c) ((a) * (b) + (c))
#define VF_FNMADD(a, b, c) ((c) - (a) * (b))
#define VD_ZERO() 0.0
#define VD_LOADF(p) ((double)*(p))
#define VD_FMADD(a, b, c) ((a) * (b) + (c))
#define VD_FNMADD(a, b, c) ((c) - (a) * (b))
#define VD_ADD(a, b) ((a) + (b))
#define VD_STORE(p, v) (*(p) = (v))

#include "qstate_kernels.h"
