/* unit_simd.c: the state-vector kernels from C, every implementation this CPU has against the scalar one, on
 * owned states and on wrapped arrays with canaries on both sides (an out-of-bounds vector load or store is what
 * ASan and MSan watch here), plus the refusals that must happen before any vector load.
 * Usage: unit_simd [MAX_QUBITS]   (default 12; every kernel runs on 1..MAX_QUBITS qubits). */
#include <aether.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

static unsigned max_qubits = 12;
static uint32_t rng_state = 12345;

static float rnd(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return (float)((rng_state >> 8) & 0xffff) / 65536.0f - 0.5f;
}

static void randomize(aether_qstate *s, uint32_t seed) {
  rng_state = seed;
  float *re = aether_qstate_re(s), *im = aether_qstate_im(s);
  for (size_t i = 0; i < aether_qstate_len(s); i++) re[i] = rnd(), im[i] = rnd();
}

static double max_diff(const aether_qstate *a, const aether_qstate *b) {
  double d = 0;
  const float *ar = aether_qstate_re(a), *ai = aether_qstate_im(a), *br = aether_qstate_re(b), *bi = aether_qstate_im(b);
  for (size_t i = 0; i < aether_qstate_len(a); i++) {
    d = fmax(d, fabs((double)ar[i] - br[i]));
    d = fmax(d, fabs((double)ai[i] - bi[i]));
  }
  return d;
}

/* Run every kernel on a state pinned to impl and on one pinned to scalar; they must agree. */
static void against_scalar(int impl, unsigned q) {
  aether_qstate *s = NULL, *ref = NULL, *other = NULL;
  CHECK(aether_qstate_create(q, &s) == AETHER_OK && aether_qstate_create(q, &ref) == AETHER_OK &&
            aether_qstate_create(q, &other) == AETHER_OK,
        "create %u qubits", q);
  if (!s || !ref || !other) goto out;
  CHECK(aether_qstate_qubits(s) == q && aether_qstate_len(s) == ((size_t)1 << q), "geometry of %u qubits", q);
  CHECK(aether_qstate_set_impl(s, impl) == AETHER_OK, "pin %s", aether_simd_impl_name(impl));
  CHECK(aether_qstate_set_impl(ref, AETHER_SIMD_SCALAR) == AETHER_OK, "pin scalar");
  randomize(s, q), randomize(ref, q), randomize(other, q + 100);

  double n1 = 0, n2 = 0, ip1[2] = {0, 0}, ip2[2] = {0, 0};
  CHECK(aether_qstate_norm2(s, &n1) == AETHER_OK && aether_qstate_norm2(ref, &n2) == AETHER_OK, "norm2");
  CHECK(fabs(n1 - n2) <= 1e-9 * n2, "%s norm2 %.17g vs scalar %.17g at %u qubits", aether_simd_impl_name(impl), n1, n2, q);
  CHECK(aether_qstate_inner_product(s, other, ip1) == AETHER_OK && aether_qstate_inner_product(ref, other, ip2) == AETHER_OK,
        "inner_product");
  CHECK(fabs(ip1[0] - ip2[0]) <= 1e-6 && fabs(ip1[1] - ip2[1]) <= 1e-6, "inner_product differs at %u qubits", q);
  CHECK(aether_qstate_normalize(s) == AETHER_OK && aether_qstate_normalize(ref) == AETHER_OK, "normalize");
  CHECK(aether_qstate_scale(s, 0.6f, 0.8f) == AETHER_OK && aether_qstate_scale(ref, 0.6f, 0.8f) == AETHER_OK, "scale");
  const float h = 0.70710678f;
  const float hadamard[8] = {h, 0, h, 0, h, 0, -h, 0};
  for (unsigned t = 0; t < q; t++) {
    CHECK(aether_qstate_apply_gate_1q(s, t, hadamard) == AETHER_OK, "gate on %u", t);
    aether_qstate_apply_gate_1q(ref, t, hadamard);
  }
  for (unsigned c = 0; c < q; c++)
    for (unsigned t = 0; t < q; t++) {
      if (c == t) continue;
      CHECK(aether_qstate_apply_cnot(s, c, t) == AETHER_OK, "cnot %u -> %u", c, t);
      aether_qstate_apply_cnot(ref, c, t);
    }
  CHECK(max_diff(s, ref) <= 1e-5, "%s differs from scalar by %g at %u qubits", aether_simd_impl_name(impl),
        max_diff(s, ref), q);
  const size_t n = aether_qstate_len(s);
  float *p1 = malloc(n * sizeof *p1), *p2 = malloc(n * sizeof *p2);
  CHECK(aether_qstate_probabilities(s, p1, n) == AETHER_OK && aether_qstate_probabilities(ref, p2, n) == AETHER_OK,
        "probabilities");
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += p1[i];
  CHECK(fabs(sum - 1) <= 1e-4, "probabilities sum to %.9g", sum);
  free(p1);
  free(p2);
out:
  aether_qstate_destroy(s);
  aether_qstate_destroy(ref);
  aether_qstate_destroy(other);
}

/* Kernels on caller arrays inside a larger buffer: the canaries around them must be untouched. */
static void wrapped_with_canaries(int impl) {
  enum { LEN = 64, PAD = 32 };
  float *buf = aligned_alloc(64, 2 * (LEN + 2 * PAD) * sizeof(float));
  float *re = buf + PAD, *im = buf + LEN + 3 * PAD;
  for (size_t i = 0; i < 2 * (LEN + 2 * PAD); i++) buf[i] = -7.0f;
  for (size_t i = 0; i < LEN; i++) re[i] = 1.0f, im[i] = 0.5f;
  aether_qstate *s = NULL;
  CHECK(aether_qstate_wrap(re, LEN, im, LEN, &s) == AETHER_OK, "wrap");
  if (!s) goto out;
  CHECK(aether_qstate_set_impl(s, impl) == AETHER_OK || impl == AETHER_SIMD_AVX512, "pin %s on wrapped arrays",
        aether_simd_impl_name(impl));
  CHECK(aether_qstate_normalize(s) == AETHER_OK, "normalize wrapped");
  aether_qstate_scale(s, 0.0f, 1.0f);
  const float x[8] = {0, 0, 1, 0, 1, 0, 0, 0};
  aether_qstate_apply_gate_1q(s, 5, x);
  aether_qstate_apply_cnot(s, 0, 5);
  int intact = 1;
  for (size_t i = 0; i < PAD; i++)
    intact &= buf[i] == -7.0f && re[LEN + i] == -7.0f && im[-1 - (long)i] == -7.0f && im[LEN + i] == -7.0f;
  CHECK(intact, "a kernel wrote outside the wrapped arrays (%s)", aether_simd_impl_name(impl));
  aether_qstate_destroy(s);
out:
  free(buf);
}

static void refusals(void) {
  aether_qstate *s = NULL;
  CHECK(aether_qstate_create(0, &s) == AETHER_ERR_OUT_OF_RANGE && s == NULL, "0 qubits accepted");
  CHECK(aether_qstate_create(31, &s) == AETHER_ERR_OUT_OF_RANGE, "31 qubits accepted");
  CHECK(aether_qstate_create(3, NULL) == AETHER_ERR_INVALID_ARGUMENT, "NULL out accepted");
  float *a = aligned_alloc(64, 64 * sizeof(float)), *b = aligned_alloc(64, 64 * sizeof(float));
  CHECK(aether_qstate_wrap(a, 16, b, 8, &s) == AETHER_ERR_LENGTH_MISMATCH, "length mismatch accepted");
  CHECK(aether_qstate_wrap(a, 12, b, 12, &s) == AETHER_ERR_NOT_POWER_OF_TWO, "non power of two accepted");
  CHECK(aether_qstate_wrap(a + 1, 16, b, 16, &s) == AETHER_ERR_MISALIGNED, "misaligned array accepted");
  CHECK(aether_qstate_wrap(a, 32, a + 16, 32, &s) == AETHER_ERR_OVERLAP, "overlapping arrays accepted");
  CHECK(aether_qstate_wrap(a, 16, b, 16, &s) == AETHER_OK, "wrap 16");
  memset(a, 0, 16 * sizeof(float));
  memset(b, 0, 16 * sizeof(float));
  CHECK(aether_qstate_normalize(s) == AETHER_ERR_ZERO_NORM, "zero norm normalized");
  CHECK(aether_qstate_scale(s, NAN, 0) == AETHER_ERR_NON_FINITE, "NaN scale accepted");
  CHECK(aether_qstate_apply_cnot(s, 1, 1) == AETHER_ERR_INVALID_ARGUMENT, "cnot on one qubit accepted");
  CHECK(aether_qstate_apply_cnot(s, 0, 4) == AETHER_ERR_OUT_OF_RANGE, "cnot target 4 of 4 qubits accepted");
  float probs[16];
  CHECK(aether_qstate_probabilities(s, probs, 8) == AETHER_ERR_LENGTH_MISMATCH, "short probabilities accepted");
  CHECK(aether_qstate_probabilities(s, a, 16) == AETHER_ERR_OVERLAP, "probabilities over the state accepted");
  aether_qstate_destroy(s);
  aether_qstate_destroy(NULL);
  free(a);
  free(b);
  CHECK(aether_simd_supported(AETHER_SIMD_SCALAR), "scalar unsupported");
  CHECK(strlen(aether_simd_reason()) > 0, "no reason for the default");
}

static void bench_loops(void) {
  aether_qstate *s = NULL;
  aether_qstate_create(8, &s);
  aether_bench_result r;
  for (int k = 0; k < AETHER_QK_COUNT; k++)
    CHECK(aether_bench_qstate(k, s, NULL, 1, 0, 20, &r) == AETHER_OK, "bench %s", aether_qkernel_name(k));
  aether_qstate_destroy(s);
  for (int kind = AETHER_STREAM_READ; kind <= AETHER_STREAM_UPDATE; kind++)
    CHECK(aether_bench_stream(kind, AETHER_SIMD_AUTO, 1 << 16, 3, &r) == AETHER_OK, "stream kind %d", kind);
}

static void every_impl(void) {
  for (int impl = AETHER_SIMD_SCALAR; impl <= AETHER_SIMD_AVX512; impl++) {
    if (!aether_simd_supported(impl)) continue;
    for (unsigned q = 1; q <= max_qubits; q++) against_scalar(impl, q);
    wrapped_with_canaries(impl);
  }
}

int main(int argc, char **argv) {
  max_qubits = (unsigned)check_arg(argc, argv, 1, 12);
  if (max_qubits < 1 || max_qubits > 20) max_qubits = 12;
  SCENARIO(every_impl);
  SCENARIO(refusals);
  SCENARIO(bench_loops);
  char summary[96];
  snprintf(summary, sizeof summary, "kernels agree on 1..%u qubits (default %s)", max_qubits,
           aether_simd_impl_name(aether_simd_impl()));
  return check_verdict(summary);
}
