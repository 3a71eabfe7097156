/* simd: the SIMD state-vector kernels, every implementation against a float64 reference and the API's statuses.
 *
 * The kernels (aether_qstate_*) run a program of operations on a state of 1 to 10
 * qubits whose amplitudes come from the input: uniform, spread over every exponent, raw bit patterns, and
 * patches of zeros, subnormals, the largest floats, infinities and NaNs. Each operation (norm2, normalize,
 * inner_product, scale, apply_gate_1q, apply_cnot, probabilities, set_impl, wrap) runs with every
 * implementation this CPU has (the scalar reference, AVX2+FMA, AVX-512F, and the automatic choice on arrays
 * only 32-byte aligned, where AVX-512 must step down to AVX2). Checked:
 * - every implementation returns the status a model of the API predicts (NON_FINITE, ZERO_NORM, OUT_OF_RANGE,
 *   LENGTH_MISMATCH, MISALIGNED, OVERLAP, NOT_POWER_OF_TWO, INVALID_ARGUMENT, UNSUPPORTED), and a refused call
 *   leaves the state bit for bit unchanged;
 * - results match a float64 reference: within the rounding a float32 kernel may add (relative to the sum of
 *   the magnitudes of the terms, plus a subnormal's worth), exactly for CNOT (a permutation); a non-finite
 *   input gives a non-finite output wherever it enters; where an intermediate could overflow, any value is
 *   accepted but nothing may crash;
 * - the implementation a state reports (aether_qstate_impl) is the one the documented rules choose;
 * - no out-of-bounds access, misaligned vector load or undefined behaviour (ASan, UBSan).
 * libFuzzer options: -max_len=1024
 */
#include "fuzz_helpers.h"

#include "aether.h"

#include <float.h>
#include <math.h>

#define MAX_QUBITS 10
#define MAX_LEN ((size_t)1 << MAX_QUBITS)
#define MAX_OPS 48

/* -------------------------------------------------------------------------------------- values --- */
static const float COMMON[] = {0.0f, 1.0f, -1.0f, 0.5f, -0.5f, 0.70710678f, -0.70710678f, 0.6f, 0.8f, 2.0f,
                               -2.0f, 1e-3f, 1e3f, 0.25f, 3.0f, -0.1f};
#define NCOMMON (sizeof COMMON / sizeof COMMON[0])
static float special(unsigned i) {
  switch (i % 18) {
    case 0: return 0.0f;
    case 1: return -0.0f;
    case 2: return 0x1p-149f; /* the smallest subnormal */
    case 3: return -0x1p-149f;
    case 4: return 0x1.fffffcp-127f; /* the largest subnormal */
    case 5: return FLT_MIN;
    case 6: return FLT_MAX;
    case 7: return -FLT_MAX;
    case 8: return INFINITY;
    case 9: return -INFINITY;
    case 10: return NAN;
    case 11: return -NAN;
    case 12: return 0x1p64f;
    case 13: return 0x1p-64f;
    case 14: return 1e-30f;
    case 15: return 1e30f;
    case 16: return 0x1p-140f;
    default: return 1.0f;
  }
}

/* One value from the input: a common one, a special one, or raw bits. */
static float take_value(fuzz_producer *p) {
  const uint8_t sel = fuzz_u8(p);
  if (sel < 128) return COMMON[sel % NCOMMON];
  if (sel < 192) return special(sel);
  return fuzz_f32_bits(p);
}

/* A whole array from a seed, in one of six distributions. */
static float gen_value(uint64_t *st, unsigned dist) {
  const uint64_t r = fuzz_mix64(st);
  switch (dist % 6) {
    case 0: return (float)((double)(r >> 40) * 0x1p-23 - 1.0); /* uniform in [-1, 1) */
    case 1: { /* every exponent, subnormals included */
      const int e = (int)((r >> 8) % 277) - 149;
      return (r & 1 ? -1.0f : 1.0f) * ldexpf(1.0f + (float)((r >> 32) & 0x7fffff) * 0x1p-23f, e);
    }
    case 2: {
      const uint32_t bits = (uint32_t)(r >> 17);
      float f;
      memcpy(&f, &bits, sizeof f);
      return f;
    }
    case 3: return special((unsigned)(r >> 33));
    case 4: return (r & 0xff) == 0 ? 0x1p-149f * (float)(r >> 60) : 0.0f; /* nearly all zero */
    default: return (float)((int)((r >> 50) % 9) - 4);
  }
}

/* ------------------------------------------------------------------------------ implementations --- */
/* A run: one implementation on its own copy of the state. */
typedef struct run {
  const char *name;
  int impl;   /* pinned implementation, or AETHER_SIMD_AUTO */
  bool wrap32;
  aether_qstate *s;
  float *mem; /* the wrapped arrays' memory */
} run;

static run runs[4];
static int nruns;
static int default_impl;

static int expected_resolved(const run *r, size_t len) {
  int impl = r->impl == AETHER_SIMD_AUTO ? default_impl : r->impl;
  if (impl == AETHER_SIMD_AVX512 && r->wrap32) impl = AETHER_SIMD_AVX2;
  const size_t width = impl == AETHER_SIMD_AVX512 ? 16 : impl == AETHER_SIMD_AVX2 ? 8 : 1;
  return len < width ? AETHER_SIMD_SCALAR : impl;
}

static void open_runs(unsigned qubits, const float *re, const float *im) {
  const size_t len = (size_t)1 << qubits;
  for (int i = 0; i < nruns; i++) {
    run *r = &runs[i];
    if (r->wrap32) {
      /* 32-byte aligned, never 64: re at +32, im at +32 + len floats rounded to 64 bytes, +32. */
      FUZZ_ASSERT(posix_memalign((void **)&r->mem, 64, (2 * len + 64) * sizeof(float)) == 0);
      float *wre = r->mem + 8, *wim = r->mem + 8 + ((len + 15) & ~(size_t)15) + 16;
      FUZZ_ASSERT(aether_qstate_wrap(wre, len, wim, len, &r->s) == AETHER_OK);
    } else {
      FUZZ_ASSERT_MSG(aether_qstate_create(qubits, &r->s) == AETHER_OK, "create(%u): %s", qubits, aether_last_error());
      FUZZ_ASSERT(aether_qstate_set_impl(r->s, r->impl) == AETHER_OK);
    }
    memcpy(aether_qstate_re(r->s), re, len * sizeof(float));
    memcpy(aether_qstate_im(r->s), im, len * sizeof(float));
    const int got = aether_qstate_impl(r->s), want = expected_resolved(r, len);
    FUZZ_ASSERT_MSG(got == want, "%s: a %zu-amplitude state runs %s, the rules say %s", r->name, len,
                    aether_simd_impl_name(got), aether_simd_impl_name(want));
  }
}

static void close_runs(void) {
  for (int i = 0; i < nruns; i++) {
    aether_qstate_destroy(runs[i].s);
    runs[i].s = NULL;
    free(runs[i].mem);
    runs[i].mem = NULL;
  }
}

/* ------------------------------------------------------------------------------------ checking --- */
static const char *opname;

/* got must be within rounding of ref, where mag is the sum of the magnitudes of the terms (computed in
 * float64). A non-finite input makes the output non-finite; a possible overflow accepts anything. */
static void check_elem(const run *r, const char *what, size_t i, float got, double ref, double mag, bool nonfinite_in) {
  if (nonfinite_in) {
    FUZZ_ASSERT_MSG(!isfinite(got), "%s/%s: %s[%zu] = %a from a non-finite input", opname, r->name, what, i, (double)got);
    return;
  }
  if (mag > FLT_MAX / 4) return;
  const double tol = 0x1p-21 * mag + 0x1p-145;
  FUZZ_ASSERT_MSG(isfinite(got) && fabs((double)got - ref) <= tol, "%s/%s: %s[%zu] = %a, the reference %a (tolerance %a)",
                  opname, r->name, what, i, (double)got, ref, tol);
}

/* A float64 sum compared with the reference sum: the orders of addition differ, nothing else. */
static void check_sum(const run *r, const char *what, double got, double ref, double mag, size_t n, bool nonfinite_in) {
  if (nonfinite_in) {
    FUZZ_ASSERT_MSG(!isfinite(got), "%s/%s: %s = %a from a non-finite input", opname, r->name, what, got);
    return;
  }
  const double tol = (double)(n + 4) * 0x1p-52 * mag;
  FUZZ_ASSERT_MSG(isfinite(got) && fabs(got - ref) <= tol, "%s/%s: %s = %a, the reference %a (tolerance %a)", opname,
                  r->name, what, got, ref, tol);
}

static bool bits_equal(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

static void check_status(const run *r, int got, int want) {
  FUZZ_ASSERT_MSG(got == want, "%s/%s: status %s (%s), the model says %s", opname, r->name, aether_error_name(got),
                  aether_last_error(), aether_error_name(want));
}

static void check_unchanged(const run *r, const float *re, const float *im, size_t len) {
  FUZZ_ASSERT_MSG(bits_equal(aether_qstate_re(r->s), re, len) && bits_equal(aether_qstate_im(r->s), im, len),
                  "%s/%s: a refused call changed the state", opname, r->name);
}

/* ---------------------------------------------------------------------------------- operations --- */
enum { OP_NORM2, OP_NORMALIZE, OP_INNER, OP_SCALE, OP_GATE, OP_CNOT, OP_PROBS, OP_SET_IMPL, OP_WRAP, OP_COUNT };
static const char *const OP_NAMES[OP_COUNT] = {"norm2", "normalize", "inner_product", "scale", "apply_gate_1q",
                                               "apply_cnot", "probabilities", "set_impl", "wrap"};

static _Alignas(64) float model_re[MAX_LEN], model_im[MAX_LEN];
static _Alignas(64) float other_re[MAX_LEN], other_im[MAX_LEN];
static _Alignas(64) float probs_buf[MAX_LEN + 32];

static void fill(float *re, float *im, size_t len, uint64_t seed, unsigned dist) {
  uint64_t st = seed;
  for (size_t i = 0; i < len; i++) {
    re[i] = gen_value(&st, dist);
    im[i] = gen_value(&st, dist);
  }
}

static bool any_nonfinite(const float *a, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(a[i])) return true;
  return false;
}

static void op_norm2(size_t len) {
  double ref = 0;
  for (size_t i = 0; i < len; i++) ref += (double)model_re[i] * model_re[i] + (double)model_im[i] * model_im[i];
  const bool nf = any_nonfinite(model_re, len) || any_nonfinite(model_im, len);
  for (int k = 0; k < nruns; k++) {
    double got = -1;
    check_status(&runs[k], aether_qstate_norm2(runs[k].s, &got), AETHER_OK);
    check_sum(&runs[k], "norm2", got, ref, ref, 2 * len, nf);
  }
}

static void op_normalize(size_t len) {
  double n2 = 0;
  for (size_t i = 0; i < len; i++) n2 += (double)model_re[i] * model_re[i] + (double)model_im[i] * model_im[i];
  const bool nf = any_nonfinite(model_re, len) || any_nonfinite(model_im, len);
  const int want = nf ? AETHER_ERR_NON_FINITE : n2 == 0 ? AETHER_ERR_ZERO_NORM : AETHER_OK;
  const double inv = want == AETHER_OK ? 1.0 / sqrt(n2) : 0;
  for (int k = 0; k < nruns; k++) {
    const run *r = &runs[k];
    check_status(r, aether_qstate_normalize(r->s), want);
    if (want != AETHER_OK) {
      check_unchanged(r, model_re, model_im, len);
      continue;
    }
    const float *re = aether_qstate_re(r->s), *im = aether_qstate_im(r->s);
    for (size_t i = 0; i < len; i++) {
      const double xr = model_re[i] * inv, xi = model_im[i] * inv;
      FUZZ_ASSERT_MSG(fabs(re[i] - xr) <= 0x1p-21 * fabs(xr) + 0x1p-60 && fabs(im[i] - xi) <= 0x1p-21 * fabs(xi) + 0x1p-60,
                      "normalize/%s: amplitude %zu is %a%+ai, the reference %a%+ai", r->name, i, (double)re[i],
                      (double)im[i], xr, xi);
    }
  }
}

static void op_inner(size_t len, unsigned qubits, unsigned other_qubits, uint64_t seed, unsigned dist) {
  const size_t olen = (size_t)1 << other_qubits;
  fill(other_re, other_im, olen, seed, dist);
  aether_qstate *b = NULL;
  FUZZ_ASSERT(aether_qstate_create(other_qubits, &b) == AETHER_OK);
  memcpy(aether_qstate_re(b), other_re, olen * sizeof(float));
  memcpy(aether_qstate_im(b), other_im, olen * sizeof(float));
  double rr = 0, ri = 0, mag = 0;
  bool nf = false;
  if (olen == len) {
    for (size_t i = 0; i < len; i++) {
      const double ar = model_re[i], ai = model_im[i], br = other_re[i], bi = other_im[i];
      rr += ar * br + ai * bi;
      ri += ar * bi - ai * br;
      mag += fabs(ar * br) + fabs(ai * bi) + fabs(ar * bi) + fabs(ai * br);
    }
    nf = any_nonfinite(model_re, len) || any_nonfinite(model_im, len) || any_nonfinite(other_re, len) ||
         any_nonfinite(other_im, len);
  }
  (void)qubits;
  for (int k = 0; k < nruns; k++) {
    double out[2] = {0, 0};
    const int rc = aether_qstate_inner_product(runs[k].s, b, out);
    check_status(&runs[k], rc, olen == len ? AETHER_OK : AETHER_ERR_LENGTH_MISMATCH);
    if (rc != AETHER_OK) continue;
    check_sum(&runs[k], "re<a|b>", out[0], rr, mag, 2 * len, nf);
    check_sum(&runs[k], "im<a|b>", out[1], ri, mag, 2 * len, nf);
  }
  aether_qstate_destroy(b);
}

static void op_scale(size_t len, float cr, float ci) {
  const int want = isfinite(cr) && isfinite(ci) ? AETHER_OK : AETHER_ERR_NON_FINITE;
  for (int k = 0; k < nruns; k++) {
    const run *r = &runs[k];
    check_status(r, aether_qstate_scale(r->s, cr, ci), want);
    if (want != AETHER_OK) {
      check_unchanged(r, model_re, model_im, len);
      continue;
    }
    const float *re = aether_qstate_re(r->s), *im = aether_qstate_im(r->s);
    for (size_t i = 0; i < len; i++) {
      const double xr = model_re[i], xi = model_im[i];
      const bool nf = !isfinite(xr) || !isfinite(xi);
      check_elem(r, "re", i, re[i], cr * xr - ci * xi, fabs(cr * xr) + fabs(ci * xi), nf);
      check_elem(r, "im", i, im[i], cr * xi + ci * xr, fabs(cr * xi) + fabs(ci * xr), nf);
    }
  }
}

static void op_gate(size_t len, unsigned qubits, unsigned target, const float m[8]) {
  int want = target >= qubits ? AETHER_ERR_OUT_OF_RANGE : AETHER_OK;
  for (int i = 0; i < 8 && want == AETHER_OK; i++)
    if (!isfinite(m[i])) want = AETHER_ERR_NON_FINITE;
  for (int k = 0; k < nruns; k++) {
    const run *r = &runs[k];
    check_status(r, aether_qstate_apply_gate_1q(r->s, target, m), want);
    if (want != AETHER_OK) {
      check_unchanged(r, model_re, model_im, len);
      continue;
    }
    const float *re = aether_qstate_re(r->s), *im = aether_qstate_im(r->s);
    const size_t s = (size_t)1 << target;
    for (size_t i0 = 0; i0 < len; i0++) {
      if (i0 & s) continue;
      const size_t i1 = i0 | s;
      const double a0r = model_re[i0], a0i = model_im[i0], a1r = model_re[i1], a1i = model_im[i1];
      const bool nf = !isfinite(a0r) || !isfinite(a0i) || !isfinite(a1r) || !isfinite(a1i);
      /* row 0: m00 a0 + m01 a1; row 1: m10 a0 + m11 a1 */
      for (int row = 0; row < 2; row++) {
        const double cr = m[row * 4 + 0], ci = m[row * 4 + 1], dr = m[row * 4 + 2], di = m[row * 4 + 3];
        const double outr = cr * a0r - ci * a0i + dr * a1r - di * a1i;
        const double outi = cr * a0i + ci * a0r + dr * a1i + di * a1r;
        const double magr = fabs(cr * a0r) + fabs(ci * a0i) + fabs(dr * a1r) + fabs(di * a1i);
        const double magi = fabs(cr * a0i) + fabs(ci * a0r) + fabs(dr * a1i) + fabs(di * a1r);
        const size_t at = row ? i1 : i0;
        check_elem(r, "re", at, re[at], outr, magr, nf);
        check_elem(r, "im", at, im[at], outi, magi, nf);
      }
    }
  }
}

static void op_cnot(size_t len, unsigned qubits, unsigned c, unsigned t) {
  const int want = c >= qubits || t >= qubits ? AETHER_ERR_OUT_OF_RANGE : c == t ? AETHER_ERR_INVALID_ARGUMENT : AETHER_OK;
  static _Alignas(64) float ref_re[MAX_LEN], ref_im[MAX_LEN];
  if (want == AETHER_OK) {
    for (size_t i = 0; i < len; i++) {
      const size_t j = (i >> c) & 1 ? i ^ ((size_t)1 << t) : i;
      ref_re[i] = model_re[j];
      ref_im[i] = model_im[j];
    }
  }
  for (int k = 0; k < nruns; k++) {
    const run *r = &runs[k];
    check_status(r, aether_qstate_apply_cnot(r->s, c, t), want);
    if (want != AETHER_OK) {
      check_unchanged(r, model_re, model_im, len);
      continue;
    }
    FUZZ_ASSERT_MSG(bits_equal(aether_qstate_re(r->s), ref_re, len) && bits_equal(aether_qstate_im(r->s), ref_im, len),
                    "apply_cnot/%s: control %u target %u is not the exact permutation", r->name, c, t);
  }
}

/* variant: 0-3 a good buffer at a float-aligned offset, 4 wrong length, 5 misaligned, 6 overlapping the
 * state, 7 NULL. */
static void op_probs(size_t len, unsigned variant, unsigned offset) {
  for (int k = 0; k < nruns; k++) {
    const run *r = &runs[k];
    float *out = probs_buf + offset % 16;
    size_t n = len;
    int want = AETHER_OK;
    switch (variant) {
      case 4: n = offset & 1 ? len + 1 : len / 2 + (len == 1); want = n == len ? AETHER_OK : AETHER_ERR_LENGTH_MISMATCH; break;
      case 5: out = (float *)((char *)probs_buf + 2); want = AETHER_ERR_MISALIGNED; break;
      case 6: out = aether_qstate_im(r->s) + offset % len; want = AETHER_ERR_OVERLAP; break;
      case 7: out = NULL; want = AETHER_ERR_INVALID_ARGUMENT; break;
      default: break;
    }
    check_status(r, aether_qstate_probabilities(r->s, out, n), want);
    if (want != AETHER_OK) {
      check_unchanged(r, model_re, model_im, len);
      continue;
    }
    for (size_t i = 0; i < len; i++) {
      const double xr = model_re[i], xi = model_im[i];
      check_elem(r, "p", i, out[i], xr * xr + xi * xi, xr * xr + xi * xi, !isfinite(xr) || !isfinite(xi));
    }
  }
}

static void op_set_impl(size_t len, int impl) {
  for (int k = 0; k < nruns; k++) {
    const run *r = &runs[k];
    int want = AETHER_OK;
    if (impl < AETHER_SIMD_AUTO || impl > AETHER_SIMD_AVX512) want = AETHER_ERR_INVALID_ARGUMENT;
    else if (impl != AETHER_SIMD_AUTO && !aether_simd_supported(impl)) want = AETHER_ERR_UNSUPPORTED;
    else if (impl == AETHER_SIMD_AVX512 && r->wrap32) want = AETHER_ERR_MISALIGNED;
    check_status(r, aether_qstate_set_impl(r->s, impl), want);
    if (want == AETHER_OK) {
      run tmp = *r;
      tmp.impl = impl;
      FUZZ_ASSERT_MSG(aether_qstate_impl(r->s) == expected_resolved(&tmp, len), "set_impl/%s: %d then impl() = %d",
                      r->name, impl, aether_qstate_impl(r->s));
      FUZZ_ASSERT(aether_qstate_set_impl(r->s, r->impl) == AETHER_OK); /* back to what the run is about */
    }
  }
}

/* wrap with arrays placed and sized by the input: the status must follow the documented order of checks. */
static void op_wrap(unsigned re_off, unsigned im_off, unsigned re_sel, unsigned im_sel, unsigned nulls) {
  static _Alignas(64) float buf[2 * MAX_LEN + 256];
  static const size_t LENS[8] = {2, 4, 16, 64, 1024, 3, 0, 1};
  const size_t re_len = LENS[re_sel % 8], im_len = im_sel % 4 == 0 ? LENS[im_sel / 4 % 8] : re_len;
  /* offsets in floats: multiples of 8 are 32-byte aligned, of 16 64-byte aligned */
  float *re = nulls % 8 == 1 ? NULL : buf + re_off % 160;
  float *im = nulls % 8 == 2 ? NULL : buf + im_off % (sizeof buf / sizeof buf[0] - im_len + 1);
  aether_qstate **out_p = NULL, *s = (aether_qstate *)&buf; /* a sentinel that must be overwritten */
  aether_qstate **out = nulls % 8 == 3 ? out_p : &s;
  int want;
  const size_t bytes = re_len * sizeof(float);
  if (out == NULL || re == NULL || im == NULL) want = AETHER_ERR_INVALID_ARGUMENT;
  else if (re_len != im_len) want = AETHER_ERR_LENGTH_MISMATCH;
  else if (re_len < 2 || re_len > ((size_t)1 << 30)) want = AETHER_ERR_OUT_OF_RANGE;
  else if (re_len & (re_len - 1)) want = AETHER_ERR_NOT_POWER_OF_TWO;
  else if ((uintptr_t)re % 32 || (uintptr_t)im % 32) want = AETHER_ERR_MISALIGNED;
  else if ((uintptr_t)re < (uintptr_t)im + bytes && (uintptr_t)im < (uintptr_t)re + bytes) want = AETHER_ERR_OVERLAP;
  else want = AETHER_OK;
  FUZZ_LOG("  wrap re=+%td (%zu) im=+%td (%zu) -> expect %s", re ? re - buf : -1, re_len, im ? im - buf : -1, im_len,
           aether_error_name(want));
  const int rc = aether_qstate_wrap(re, re_len, im, im_len, out);
  FUZZ_ASSERT_MSG(rc == want, "wrap: status %s (%s), the model says %s", aether_error_name(rc), aether_last_error(),
                  aether_error_name(want));
  if (out == NULL) return;
  if (rc != AETHER_OK) {
    FUZZ_ASSERT_MSG(s == NULL, "wrap: a refused wrap left *out = %p", (void *)s);
    return;
  }
  FUZZ_ASSERT(aether_qstate_re(s) == re && aether_qstate_im(s) == im && aether_qstate_len(s) == re_len);
  FUZZ_ASSERT((size_t)1 << aether_qstate_qubits(s) == re_len);
  run probe = {.impl = AETHER_SIMD_AUTO, .wrap32 = (uintptr_t)re % 64 || (uintptr_t)im % 64};
  FUZZ_ASSERT_MSG(aether_qstate_impl(s) == expected_resolved(&probe, re_len), "wrap: impl() = %d", aether_qstate_impl(s));
  double n2;
  FUZZ_ASSERT(aether_qstate_norm2(s, &n2) == AETHER_OK); /* reads every amplitude: ASan checks the bounds */
  aether_qstate_destroy(s);
}

/* ---------------------------------------------------------------------------------- the harness --- */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static bool ready;
  if (!ready) {
    ready = true;
    default_impl = aether_simd_impl();
    runs[nruns++] = (run){.name = "scalar", .impl = AETHER_SIMD_SCALAR};
    if (aether_simd_supported(AETHER_SIMD_AVX2)) runs[nruns++] = (run){.name = "avx2", .impl = AETHER_SIMD_AVX2};
    if (aether_simd_supported(AETHER_SIMD_AVX512)) runs[nruns++] = (run){.name = "avx512", .impl = AETHER_SIMD_AVX512};
    runs[nruns++] = (run){.name = "auto-32B-aligned", .impl = AETHER_SIMD_AUTO, .wrap32 = true};
  }
  fuzz_producer p = fuzz_producer_make(data, size);
  const unsigned qubits = fuzz_range32(&p, 1, MAX_QUBITS);
  const size_t len = (size_t)1 << qubits;
  const uint64_t seed = fuzz_u64(&p);
  const unsigned dist = fuzz_u8(&p);
  fill(model_re, model_im, len, seed, dist);
  const unsigned patches = fuzz_u8(&p) % 9;
  for (unsigned i = 0; i < patches; i++) {
    const size_t at = fuzz_u16(&p) % len;
    const bool imag = fuzz_bool(&p);
    (imag ? model_im : model_re)[at] = take_value(&p);
  }
  FUZZ_LOG("state: %u qubits, seed %#llx, distribution %u, %u patches", qubits, (unsigned long long)seed, dist % 6,
           patches);
  for (unsigned i = 0; i < MAX_OPS && !fuzz_empty(&p); i++) {
    const int code = fuzz_u8(&p) % OP_COUNT;
    opname = OP_NAMES[code];
    /* Arguments are decoded before the operation runs, whatever its outcome. */
    uint64_t a = 0, b = 0, c = 0, d = 0, e = 0;
    float m[8] = {0};
    switch (code) {
      case OP_INNER: a = fuzz_u8(&p); b = fuzz_u64(&p); c = fuzz_u8(&p); break;
      case OP_SCALE: m[0] = take_value(&p); m[1] = take_value(&p); break;
      case OP_GATE:
        a = fuzz_u8(&p);
        for (int k = 0; k < 8; k++) m[k] = take_value(&p);
        break;
      case OP_CNOT: a = fuzz_u8(&p); b = fuzz_u8(&p); break;
      case OP_PROBS: a = fuzz_u8(&p); b = fuzz_u8(&p); break;
      case OP_SET_IMPL: a = fuzz_u8(&p); break;
      case OP_WRAP: a = fuzz_u16(&p); b = fuzz_u16(&p); c = fuzz_u8(&p); d = fuzz_u8(&p); e = fuzz_u8(&p); break;
      default: break;
    }
    open_runs(qubits, model_re, model_im);
    switch (code) {
      case OP_NORM2: FUZZ_LOG("op %u: norm2", i); op_norm2(len); break;
      case OP_NORMALIZE: FUZZ_LOG("op %u: normalize", i); op_normalize(len); break;
      case OP_INNER: {
        const unsigned oq = a % 8 == 7 ? (qubits % MAX_QUBITS) + 1 : qubits;
        FUZZ_LOG("op %u: inner_product with a %u-qubit state (seed %#llx, distribution %u)", i, oq,
                 (unsigned long long)b, (unsigned)(c % 6));
        op_inner(len, qubits, oq, b, (unsigned)c);
        break;
      }
      case OP_SCALE: FUZZ_LOG("op %u: scale by %a%+ai", i, (double)m[0], (double)m[1]); op_scale(len, m[0], m[1]); break;
      case OP_GATE: {
        const unsigned target = (unsigned)(a % (qubits + 2));
        FUZZ_LOG("op %u: apply_gate_1q target %u", i, target);
        op_gate(len, qubits, target, m);
        break;
      }
      case OP_CNOT: {
        const unsigned ctl = (unsigned)(a % (qubits + 1)), tgt = (unsigned)(b % (qubits + 1));
        FUZZ_LOG("op %u: apply_cnot control %u target %u", i, ctl, tgt);
        op_cnot(len, qubits, ctl, tgt);
        break;
      }
      case OP_PROBS: FUZZ_LOG("op %u: probabilities variant %u", i, (unsigned)(a % 8)); op_probs(len, (unsigned)(a % 8), (unsigned)b); break;
      case OP_SET_IMPL: FUZZ_LOG("op %u: set_impl %d", i, (int)(a % 6) - 2); op_set_impl(len, (int)(a % 6) - 2); break;
      case OP_WRAP: FUZZ_LOG("op %u: wrap", i); op_wrap((unsigned)a, (unsigned)b, (unsigned)c, (unsigned)d, (unsigned)e); break;
      default: break;
    }
    /* The program goes on from the scalar reference's result. */
    memcpy(model_re, aether_qstate_re(runs[0].s), len * sizeof(float));
    memcpy(model_im, aether_qstate_im(runs[0].s), len * sizeof(float));
    close_runs();
  }
  FUZZ_LOG("done: no finding");
  return 0;
}
