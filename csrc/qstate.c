/* qstate.c: state vectors, their validation, and the run-time choice of kernel implementation.
 *
 * Every public kernel checks its arguments here, then resolves which expansion runs (the state's pinned
 * implementation or the process default, downgraded to AVX2 when an array is not 64-byte aligned and to the
 * scalar code when the state is shorter than one vector) and calls it. Kernels never see an argument that
 * breaks the preconditions listed in qstate_internal.h: a misaligned or short array never reaches a vector
 * load. The timed loops of the SIMD benchmark live here too, so a figure carries no FFI cost. */
#include "bench_internal.h"
#include "qstate_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* "QSTA" in a live handle, cleared by destroy: catches a stale or foreign handle on a best-effort basis (a freed
 * handle's memory may already be reused; the Bun wrapper refuses a destroyed state before it gets here). */
#define AE_QSTATE_MAGIC 0x51535441u
#define AE_QSTATE_MMAP_MIN ((size_t)256 << 10)

struct aether_qstate {
  uint32_t magic;
  uint32_t qubits;
  float *re, *im;
  size_t len;
  int impl;      /* AETHER_SIMD_AUTO, or the implementation the state is pinned to */
  bool align64;  /* both arrays 64-byte aligned: the AVX-512 expansion may run on them */
  bool mapped;   /* mem came from mmap (else posix_memalign) */
  void *mem;     /* the owned block holding re and im; NULL for a wrapped state */
  size_t mem_bytes;
};

static const ae_qkernels *const TABLES[3] = {&_ae_qk_scalar, &_ae_qk_avx2, &_ae_qk_avx512};
static const char *const IMPL_NAMES[3] = {"scalar", "avx2", "avx512"};
static const char *const KERNEL_NAMES[AETHER_QK_COUNT] = {
    "norm2", "normalize", "inner_product", "scale", "apply_gate_1q", "apply_cnot", "probabilities"};

/* ------------------------------------------------------------------------------ the choice --- */
static int default_impl;
static char choice_reason[192];
static pthread_once_t choice_once = PTHREAD_ONCE_INIT;

bool aether_simd_supported(int impl) {
  const uint32_t f = aether_cpu_features();
  const bool avx2 = (f & AETHER_CPU_AVX2) && (f & AETHER_CPU_FMA);
  switch (impl) {
    case AETHER_SIMD_SCALAR: return true;
    case AETHER_SIMD_AVX2: return avx2;
    case AETHER_SIMD_AVX512: return avx2 && (f & AETHER_CPU_AVX512F);
    default: return false;
  }
}

static void choose(void) {
  const int probed = aether_simd_supported(AETHER_SIMD_AVX512) ? AETHER_SIMD_AVX512
                     : aether_simd_supported(AETHER_SIMD_AVX2) ? AETHER_SIMD_AVX2
                                                               : AETHER_SIMD_SCALAR;
  static const char *const WHY[3] = {"probed: no AVX2+FMA", "probed: AVX2, FMA (no AVX-512F)",
                                     "probed: AVX-512F, AVX2, FMA"};
  default_impl = probed;
  snprintf(choice_reason, sizeof choice_reason, "%s", WHY[probed]);
  const char *env = getenv("AETHER_SIMD");
  if (env == NULL || env[0] == '\0' || strcmp(env, "auto") == 0) return;
  int asked = -1;
  for (int i = 0; i < 3; i++)
    if (strcmp(env, IMPL_NAMES[i]) == 0) asked = i;
  if (asked < 0) {
    snprintf(choice_reason, sizeof choice_reason, "AETHER_SIMD=%.40s ignored (not scalar, avx2, avx512 or auto); %s",
             env, WHY[probed]);
  } else if (!aether_simd_supported(asked)) {
    snprintf(choice_reason, sizeof choice_reason, "AETHER_SIMD=%s ignored (this CPU or OS lacks %s); %s", env,
             asked == AETHER_SIMD_AVX512 ? "AVX-512F" : "AVX2+FMA", WHY[probed]);
  } else {
    default_impl = asked;
    snprintf(choice_reason, sizeof choice_reason, "AETHER_SIMD=%s", env);
  }
}

int aether_simd_impl(void) {
  pthread_once(&choice_once, choose);
  return default_impl;
}

const char *aether_simd_reason(void) {
  pthread_once(&choice_once, choose);
  return choice_reason;
}

const char *aether_simd_impl_name(int impl) {
  if (impl == AETHER_SIMD_AUTO) return "auto";
  return impl >= 0 && impl < 3 ? IMPL_NAMES[impl] : "unknown";
}

const char *aether_qkernel_name(int kernel) {
  return kernel >= 0 && kernel < AETHER_QK_COUNT ? KERNEL_NAMES[kernel] : "unknown";
}

/* The expansion a call on s (and b, for two-state kernels) runs. */
static int resolve(const aether_qstate *s, const aether_qstate *b) {
  int impl = s->impl == AETHER_SIMD_AUTO ? aether_simd_impl() : s->impl;
  if (impl == AETHER_SIMD_AVX512 && (!s->align64 || (b && !b->align64))) impl = AETHER_SIMD_AVX2;
  if (s->len < TABLES[impl]->width) impl = AETHER_SIMD_SCALAR;
  return impl;
}

/* ------------------------------------------------------------------------------- lifecycle --- */
#define AE_CHECK_STATE(s, fn)                                                                               \
  do {                                                                                                      \
    AE_RETURN_ERROR_IF((s) == NULL, AETHER_ERR_INVALID_ARGUMENT, fn ": the state is NULL");                \
    AE_RETURN_ERROR_IF((s)->magic != AE_QSTATE_MAGIC, AETHER_ERR_NOT_INITIALIZED,                          \
                       fn ": %p is not a live state (destroyed, or never created)", (const void *)(s));     \
  } while (0)

static bool is_aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

static bool ranges_overlap(const void *a, size_t an, const void *b, size_t bn) {
  const uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
  return x < y + bn && y < x + an;
}

static aether_qstate *new_handle(void) {
  aether_qstate *s = calloc(1, sizeof *s);
  if (s) {
    s->magic = AE_QSTATE_MAGIC;
    s->impl = AETHER_SIMD_AUTO;
  }
  return s;
}

aether_status aether_qstate_create(uint32_t num_qubits, aether_qstate **out) {
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_qstate_create: out is NULL");
  *out = NULL;
  AE_RETURN_ERROR_IF(num_qubits < AETHER_QSTATE_MIN_QUBITS || num_qubits > AETHER_QSTATE_MAX_QUBITS,
                     AETHER_ERR_OUT_OF_RANGE, "aether_qstate_create: num_qubits %u is not in [%d, %d]", num_qubits,
                     AETHER_QSTATE_MIN_QUBITS, AETHER_QSTATE_MAX_QUBITS);
  const size_t len = (size_t)1 << num_qubits, bytes = len * sizeof(float);
  /* im starts 256 bytes past a 64-byte boundary after re: both stay 64-byte aligned, and re[i] and im[i] no
   * longer share their low 12 address bits, which would make loads of one falsely wait on stores to the other
   * (4K aliasing) in the in-place kernels. */
  const size_t im_off = AE_ALIGN_UP(bytes, 64) + (bytes >= 4096 ? 256 : 0);
  const size_t total = im_off + AE_ALIGN_UP(bytes, 64);
  aether_qstate *s = new_handle();
  AE_RETURN_ERROR_IF(s == NULL, AETHER_ERR_OUT_OF_MEMORY, "aether_qstate_create: no memory for the handle");
  void *mem = NULL;
  if (total >= AE_QSTATE_MMAP_MIN) {
    /* Large states come straight from the OS: zeroed lazily, page-aligned, and eligible for huge pages
     * (fewer TLB misses when a kernel streams through hundreds of MiB). */
    mem = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) mem = NULL;
#ifdef MADV_HUGEPAGE
    if (mem && total >= ((size_t)2 << 20)) madvise(mem, total, MADV_HUGEPAGE);
#endif
    s->mapped = true;
  } else if (posix_memalign(&mem, 64, total) == 0) {
    memset(mem, 0, total);
  } else {
    mem = NULL;
  }
  if (mem == NULL) {
    free(s);
    return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "aether_qstate_create: cannot allocate %zu bytes for %u qubits", total,
                    num_qubits);
  }
  s->mem = mem;
  s->mem_bytes = total;
  s->re = mem;
  s->im = (float *)((char *)mem + im_off);
  s->len = len;
  s->qubits = num_qubits;
  s->align64 = true;
  s->re[0] = 1.0f;
  *out = s;
  return AETHER_OK;
}

aether_status aether_qstate_wrap(float *re, size_t re_len, float *im, size_t im_len, aether_qstate **out) {
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_qstate_wrap: out is NULL");
  *out = NULL;
  AE_RETURN_ERROR_IF(re == NULL || im == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_qstate_wrap: %s is NULL",
                     re == NULL ? "re" : "im");
  AE_RETURN_ERROR_IF(re_len != im_len, AETHER_ERR_LENGTH_MISMATCH,
                     "aether_qstate_wrap: re has %zu floats and im has %zu; they must have equal lengths", re_len,
                     im_len);
  const size_t max = (size_t)1 << AETHER_QSTATE_MAX_QUBITS;
  AE_RETURN_ERROR_IF(re_len < 2 || re_len > max, AETHER_ERR_OUT_OF_RANGE,
                     "aether_qstate_wrap: length %zu is not in [2, 2^%d] (1 to %d qubits)", re_len,
                     AETHER_QSTATE_MAX_QUBITS, AETHER_QSTATE_MAX_QUBITS);
  AE_RETURN_ERROR_IF(!AE_IS_POW2(re_len), AETHER_ERR_NOT_POWER_OF_TWO,
                     "aether_qstate_wrap: length %zu is not a power of two (a state has 2^num_qubits amplitudes)",
                     re_len);
  AE_RETURN_ERROR_IF(!is_aligned(re, AETHER_QSTATE_MIN_ALIGN) || !is_aligned(im, AETHER_QSTATE_MIN_ALIGN),
                     AETHER_ERR_MISALIGNED,
                     "aether_qstate_wrap: %s (%p) is not %d-byte aligned, as the vector kernels' aligned loads need",
                     !is_aligned(re, AETHER_QSTATE_MIN_ALIGN) ? "re" : "im",
                     !is_aligned(re, AETHER_QSTATE_MIN_ALIGN) ? (void *)re : (void *)im, AETHER_QSTATE_MIN_ALIGN);
  const size_t bytes = re_len * sizeof(float);
  AE_RETURN_ERROR_IF(ranges_overlap(re, bytes, im, bytes), AETHER_ERR_OVERLAP,
                     "aether_qstate_wrap: re (%p) and im (%p) overlap (%zu bytes each)", (void *)re, (void *)im, bytes);
  aether_qstate *s = new_handle();
  AE_RETURN_ERROR_IF(s == NULL, AETHER_ERR_OUT_OF_MEMORY, "aether_qstate_wrap: no memory for the handle");
  s->re = re;
  s->im = im;
  s->len = re_len;
  s->qubits = (uint32_t)__builtin_ctzll((unsigned long long)re_len);
  s->align64 = is_aligned(re, 64) && is_aligned(im, 64);
  *out = s;
  return AETHER_OK;
}

void aether_qstate_destroy(aether_qstate *s) {
  if (s == NULL || s->magic != AE_QSTATE_MAGIC) return;
  s->magic = 0;
  if (s->mem) {
    if (s->mapped) munmap(s->mem, s->mem_bytes);
    else free(s->mem);
  }
  free(s);
}

float *aether_qstate_re(const aether_qstate *s) { return s ? s->re : NULL; }
float *aether_qstate_im(const aether_qstate *s) { return s ? s->im : NULL; }
size_t aether_qstate_len(const aether_qstate *s) { return s ? s->len : 0; }
uint32_t aether_qstate_qubits(const aether_qstate *s) { return s ? s->qubits : 0; }

aether_status aether_qstate_set_impl(aether_qstate *s, int impl) {
  AE_CHECK_STATE(s, "aether_qstate_set_impl");
  AE_RETURN_ERROR_IF(impl < AETHER_SIMD_AUTO || impl > AETHER_SIMD_AVX512, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_qstate_set_impl: %d is not an implementation (-1 auto, 0 scalar, 1 avx2, 2 avx512)", impl);
  AE_RETURN_ERROR_IF(impl != AETHER_SIMD_AUTO && !aether_simd_supported(impl), AETHER_ERR_UNSUPPORTED,
                     "aether_qstate_set_impl: this CPU or OS cannot run %s (it needs %s)", IMPL_NAMES[impl],
                     impl == AETHER_SIMD_AVX512 ? "AVX-512F, AVX2 and FMA" : "AVX2 and FMA");
  AE_RETURN_ERROR_IF(impl == AETHER_SIMD_AVX512 && !s->align64, AETHER_ERR_MISALIGNED,
                     "aether_qstate_set_impl: avx512 needs 64-byte aligned arrays; re is at %p and im at %p",
                     (void *)s->re, (void *)s->im);
  s->impl = impl;
  return AETHER_OK;
}

int aether_qstate_impl(const aether_qstate *s) {
  AE_CHECK_STATE(s, "aether_qstate_impl");
  return resolve(s, NULL);
}

/* --------------------------------------------------------------------------------- kernels --- */
/* The kernels proper, after validation; shared by the public functions and the timed loops. */

static aether_status do_normalize(const ae_qkernels *k, aether_qstate *s, const char *fn) {
  const double n2 = k->norm2(s->re, s->im, s->len);
  AE_RETURN_ERROR_IF(!isfinite(n2), AETHER_ERR_NON_FINITE,
                     "%s: the state holds a NaN or an infinity (norm2 = %g); it was left unchanged", fn, n2);
  AE_RETURN_ERROR_IF(n2 == 0.0, AETHER_ERR_ZERO_NORM,
                     "%s: every amplitude is zero, so the state cannot be normalized; it was left unchanged", fn);
  double inv = 1.0 / sqrt(n2);
  /* 1/norm must be a normal float for one multiply to be accurate. A state of subnormal (or huge) amplitudes
   * is first brought into range by exact power-of-two steps. */
  while (inv > 0x1p100) {
    k->scale_real(s->re, s->im, s->len, 0x1p100f);
    inv *= 0x1p-100;
  }
  while (inv < 0x1p-100) {
    k->scale_real(s->re, s->im, s->len, 0x1p-100f);
    inv *= 0x1p100;
  }
  k->scale_real(s->re, s->im, s->len, (float)inv);
  return AETHER_OK;
}

aether_status aether_qstate_norm2(const aether_qstate *s, double *out) {
  AE_CHECK_STATE(s, "aether_qstate_norm2");
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_qstate_norm2: out is NULL");
  *out = TABLES[resolve(s, NULL)]->norm2(s->re, s->im, s->len);
  return AETHER_OK;
}

aether_status aether_qstate_normalize(aether_qstate *s) {
  AE_CHECK_STATE(s, "aether_qstate_normalize");
  return do_normalize(TABLES[resolve(s, NULL)], s, "aether_qstate_normalize");
}

aether_status aether_qstate_inner_product(const aether_qstate *a, const aether_qstate *b, double out[2]) {
  AE_CHECK_STATE(a, "aether_qstate_inner_product");
  AE_CHECK_STATE(b, "aether_qstate_inner_product");
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_qstate_inner_product: out is NULL");
  AE_RETURN_ERROR_IF(a->len != b->len, AETHER_ERR_LENGTH_MISMATCH,
                     "aether_qstate_inner_product: the states have %u and %u qubits; they must have equal lengths",
                     a->qubits, b->qubits);
  TABLES[resolve(a, b)]->inner(a->re, a->im, b->re, b->im, a->len, out);
  return AETHER_OK;
}

aether_status aether_qstate_scale(aether_qstate *s, float re, float im) {
  AE_CHECK_STATE(s, "aether_qstate_scale");
  AE_RETURN_ERROR_IF(!isfinite(re) || !isfinite(im), AETHER_ERR_NON_FINITE,
                     "aether_qstate_scale: the factor %g%+gi is not finite", (double)re, (double)im);
  TABLES[resolve(s, NULL)]->scale(s->re, s->im, s->len, re, im);
  return AETHER_OK;
}

aether_status aether_qstate_apply_gate_1q(aether_qstate *s, uint32_t target, const float m[8]) {
  AE_CHECK_STATE(s, "aether_qstate_apply_gate_1q");
  AE_RETURN_ERROR_IF(m == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_qstate_apply_gate_1q: the matrix is NULL");
  AE_RETURN_ERROR_IF(target >= s->qubits, AETHER_ERR_OUT_OF_RANGE,
                     "aether_qstate_apply_gate_1q: target qubit %u is not in [0, %u) for a %u-qubit state", target,
                     s->qubits, s->qubits);
  for (int i = 0; i < 8; i++)
    AE_RETURN_ERROR_IF(!isfinite(m[i]), AETHER_ERR_NON_FINITE,
                       "aether_qstate_apply_gate_1q: matrix element %d (%s of m%d%d) is %g, not finite", i,
                       (i & 1) ? "imaginary part" : "real part", i / 4, (i / 2) & 1, (double)m[i]);
  TABLES[resolve(s, NULL)]->gate(s->re, s->im, s->len, target, m);
  return AETHER_OK;
}

aether_status aether_qstate_apply_cnot(aether_qstate *s, uint32_t control, uint32_t target) {
  AE_CHECK_STATE(s, "aether_qstate_apply_cnot");
  AE_RETURN_ERROR_IF(control >= s->qubits || target >= s->qubits, AETHER_ERR_OUT_OF_RANGE,
                     "aether_qstate_apply_cnot: %s qubit %u is not in [0, %u) for a %u-qubit state",
                     control >= s->qubits ? "control" : "target", control >= s->qubits ? control : target, s->qubits,
                     s->qubits);
  AE_RETURN_ERROR_IF(control == target, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_qstate_apply_cnot: control and target are both qubit %u; they must differ", control);
  TABLES[resolve(s, NULL)]->cnot(s->re, s->im, s->len, control, target);
  return AETHER_OK;
}

static aether_status check_probs_out(const aether_qstate *s, const float *out, size_t len, const char *fn) {
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "%s: out is NULL", fn);
  AE_RETURN_ERROR_IF(len != s->len, AETHER_ERR_LENGTH_MISMATCH,
                     "%s: out has %zu floats but the %u-qubit state has %zu amplitudes", fn, len, s->qubits, s->len);
  AE_RETURN_ERROR_IF(!is_aligned(out, sizeof(float)), AETHER_ERR_MISALIGNED, "%s: out (%p) is not 4-byte aligned", fn,
                     (const void *)out);
  const size_t bytes = len * sizeof(float);
  AE_RETURN_ERROR_IF(ranges_overlap(out, bytes, s->re, bytes) || ranges_overlap(out, bytes, s->im, bytes),
                     AETHER_ERR_OVERLAP, "%s: out (%p, %zu bytes) overlaps the state's arrays", fn, (const void *)out,
                     bytes);
  return AETHER_OK;
}

aether_status aether_qstate_probabilities(const aether_qstate *s, float *out, size_t len) {
  AE_CHECK_STATE(s, "aether_qstate_probabilities");
  const aether_status rc = check_probs_out(s, out, len, "aether_qstate_probabilities");
  if (rc != AETHER_OK) return rc;
  TABLES[resolve(s, NULL)]->probs(s->re, s->im, out, s->len);
  return AETHER_OK;
}

/* ----------------------------------------------------------------------------- timed loops --- */
static void *map_bytes(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
  if (bytes >= ((size_t)2 << 20)) madvise(p, bytes, MADV_HUGEPAGE);
#endif
  return p;
}

/* Time reps calls of run(ctx) one by one: elapsed is the whole loop, percentiles per call. */
typedef void bench_call(void *ctx);
static aether_status timed_loop(bench_call *run, void *ctx, uint64_t reps, aether_bench_result *out, const char *fn) {
  (void)_ae_ns_per_tick(); /* calibrate before anything is timed */
  ae_latency lat;
  const size_t samples = reps < ((uint64_t)1 << 20) ? (size_t)reps : ((size_t)1 << 20);
  AE_RETURN_ERROR_IF(!_ae_latency_init(&lat, samples), AETHER_ERR_OUT_OF_MEMORY, "%s: no memory for %zu samples", fn,
                     samples);
  run(ctx); /* warm-up: page faults, caches, and the clock speed settle outside the timed loop */
  const uint64_t t0 = _ae_now_ns();
  for (uint64_t i = 0; i < reps; i++) {
    const uint64_t a = _ae_ticks();
    run(ctx);
    _ae_latency_add(&lat, _ae_ticks() - a);
  }
  const uint64_t wall = _ae_now_ns() - t0;
  memset(out, 0, sizeof *out);
  out->ops = reps;
  out->elapsed_ns = wall ? wall : 1;
  out->ns_per_op = (double)out->elapsed_ns / (double)reps;
  out->ops_per_sec = (double)reps * 1e9 / (double)out->elapsed_ns;
  _ae_latency_finish(&lat, out);
  return AETHER_OK;
}

typedef struct qbench {
  int kernel;
  const ae_qkernels *k;
  aether_qstate *s;
  const aether_qstate *other;
  unsigned target, control;
  float *probs;
} qbench;

static const float HADAMARD[8] = {0.70710678f, 0, 0.70710678f, 0, 0.70710678f, 0, -0.70710678f, 0};

static void qbench_call(void *p) {
  qbench *b = p;
  aether_qstate *s = b->s;
  double io[2];
  switch (b->kernel) {
    case AETHER_QK_NORM2: _ae_escape(b->k->norm2(s->re, s->im, s->len)); break;
    case AETHER_QK_NORMALIZE: _ae_escape(do_normalize(b->k, s, "aether_bench_qstate")); break;
    case AETHER_QK_INNER_PRODUCT:
      b->k->inner(s->re, s->im, b->other->re, b->other->im, s->len, io);
      _ae_escape(io[0] + io[1]);
      break;
    case AETHER_QK_SCALE: b->k->scale(s->re, s->im, s->len, 0.99500417f, 0.09983342f); break;
    case AETHER_QK_GATE_1Q: b->k->gate(s->re, s->im, s->len, b->target, HADAMARD); break;
    case AETHER_QK_CNOT: b->k->cnot(s->re, s->im, s->len, b->control, b->target); break;
    case AETHER_QK_PROBABILITIES: b->k->probs(s->re, s->im, b->probs, s->len); break;
    default: break;
  }
}

aether_status aether_bench_qstate(int kernel, aether_qstate *s, const aether_qstate *other, uint32_t target,
                                  uint32_t control, uint64_t reps, aether_bench_result *out) {
  static const char fn[] = "aether_bench_qstate";
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "%s: out is NULL", fn);
  AE_RETURN_ERROR_IF(kernel < 0 || kernel >= AETHER_QK_COUNT, AETHER_ERR_INVALID_ARGUMENT,
                     "%s: kernel %d is not in [0, %d)", fn, kernel, AETHER_QK_COUNT);
  AE_CHECK_STATE(s, "aether_bench_qstate");
  if (other == NULL) other = s;
  AE_CHECK_STATE(other, "aether_bench_qstate");
  AE_RETURN_ERROR_IF(reps == 0 || reps > ((uint64_t)1 << 32), AETHER_ERR_OUT_OF_RANGE,
                     "%s: reps %" PRIu64 " is not in [1, 2^32]", fn, reps);
  AE_RETURN_ERROR_IF(kernel == AETHER_QK_INNER_PRODUCT && other->len != s->len, AETHER_ERR_LENGTH_MISMATCH,
                     "%s: the states have %u and %u qubits; they must have equal lengths", fn, s->qubits, other->qubits);
  const bool uses_target = kernel == AETHER_QK_GATE_1Q || kernel == AETHER_QK_CNOT;
  AE_RETURN_ERROR_IF(uses_target && target >= s->qubits, AETHER_ERR_OUT_OF_RANGE,
                     "%s: target qubit %u is not in [0, %u)", fn, target, s->qubits);
  AE_RETURN_ERROR_IF(kernel == AETHER_QK_CNOT && (control >= s->qubits || control == target), AETHER_ERR_OUT_OF_RANGE,
                     "%s: control qubit %u is not in [0, %u) or equals the target", fn, control, s->qubits);
  if (kernel == AETHER_QK_NORMALIZE) {
    double n2;
    aether_qstate_norm2(s, &n2);
    AE_RETURN_ERROR_IF(!isfinite(n2) || n2 == 0.0, n2 == 0.0 ? AETHER_ERR_ZERO_NORM : AETHER_ERR_NON_FINITE,
                       "%s: the state cannot be normalized (norm2 = %g)", fn, n2);
  }
  qbench b = {.kernel = kernel,
              .k = TABLES[resolve(s, kernel == AETHER_QK_INNER_PRODUCT ? other : NULL)],
              .s = s,
              .other = other,
              .target = target,
              .control = control};
  if (kernel == AETHER_QK_PROBABILITIES) {
    b.probs = map_bytes(s->len * sizeof(float));
    AE_RETURN_ERROR_IF(b.probs == NULL, AETHER_ERR_OUT_OF_MEMORY, "%s: no memory for the output", fn);
  }
  const aether_status rc = timed_loop(qbench_call, &b, reps, out, fn);
  if (b.probs) munmap(b.probs, s->len * sizeof(float));
  return rc;
}

typedef struct sbench {
  int kind;
  const ae_qkernels *k;
  float *a, *b, *da, *db; /* source pair, and the destination pair of a copy */
  size_t n;               /* floats per array */
} sbench;

static void sbench_call(void *p) {
  sbench *b = p;
  switch (b->kind) {
    case AETHER_STREAM_READ: _ae_escape(b->k->stream_read(b->a, b->b, b->n)); break;
    case AETHER_STREAM_COPY: b->k->stream_copy(b->da, b->db, b->a, b->b, b->n); break;
    default: b->k->stream_update(b->a, b->b, b->n, 1.0f); break; /* behind a pointer: x * 1 cannot be folded */
  }
}

/* A pair of arrays of half bytes each, laid out as a state's re and im are (im 256 bytes past re's end). */
static float *map_pair(size_t half, float **second, size_t *mapped) {
  *mapped = 2 * half + 256;
  char *p = map_bytes(*mapped);
  if (p == NULL) return NULL;
  memset(p, 0, *mapped); /* touch every page now, so no page fault lands in a timed pass */
  *second = (float *)(p + half + 256);
  return (float *)p;
}

aether_status aether_bench_stream(int kind, int impl, size_t bytes, uint64_t reps, aether_bench_result *out) {
  static const char fn[] = "aether_bench_stream";
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "%s: out is NULL", fn);
  AE_RETURN_ERROR_IF(kind < AETHER_STREAM_READ || kind > AETHER_STREAM_UPDATE, AETHER_ERR_INVALID_ARGUMENT,
                     "%s: kind %d is not 0 (read), 1 (copy) or 2 (update)", fn, kind);
  AE_RETURN_ERROR_IF(impl < AETHER_SIMD_AUTO || impl > AETHER_SIMD_AVX512, AETHER_ERR_INVALID_ARGUMENT,
                     "%s: %d is not an implementation (-1 auto, 0 scalar, 1 avx2, 2 avx512)", fn, impl);
  if (impl == AETHER_SIMD_AUTO) impl = aether_simd_impl();
  AE_RETURN_ERROR_IF(!aether_simd_supported(impl), AETHER_ERR_UNSUPPORTED, "%s: this CPU or OS cannot run %s", fn,
                     IMPL_NAMES[impl]);
  AE_RETURN_ERROR_IF(bytes < 256 || bytes > ((size_t)1 << 34) || bytes % 256 != 0, AETHER_ERR_OUT_OF_RANGE,
                     "%s: bytes %zu is not a multiple of 256 in [256, 2^34]", fn, bytes);
  AE_RETURN_ERROR_IF(reps == 0 || reps > ((uint64_t)1 << 20), AETHER_ERR_OUT_OF_RANGE,
                     "%s: reps %" PRIu64 " is not in [1, 2^20]", fn, reps);
  const size_t half = bytes / 2;
  sbench b = {.kind = kind, .k = TABLES[impl], .n = half / sizeof(float)};
  size_t m1 = 0, m2 = 0;
  float *p1 = map_pair(half, &b.b, &m1), *p2 = NULL;
  b.a = p1;
  if (p1 && kind == AETHER_STREAM_COPY) b.da = p2 = map_pair(half, &b.db, &m2);
  if (p1 == NULL || (kind == AETHER_STREAM_COPY && p2 == NULL)) {
    if (p1) munmap(p1, m1);
    return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "%s: cannot map %zu bytes", fn, bytes);
  }
  for (size_t i = 0; i < b.n; i++) b.a[i] = b.b[i] = 1.0f;
  const aether_status rc = timed_loop(sbench_call, &b, reps, out, fn);
  munmap(p1, m1);
  if (p2) munmap(p2, m2);
  return rc;
}
