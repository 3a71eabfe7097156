/* bench_calls.c: what the cost of a call is measured against.
 * - The FFI targets: functions that do next to nothing with a pointer, numbers, 64-bit integers or a struct,
 *   so that calling them from Bun measures the bindings themselves (`aether bench ffi`).
 * - aether_bench_call: the same functions called from C through a function pointer, the native floor.
 * - aether_bench_qstate_api: the SIMD kernels called through their public, validated entry points, in the same
 *   timed loop as aether_bench_qstate (which runs the kernels directly), so the two differ only by the
 *   precondition checks: the cost of safety. */
#include "bench_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ------------------------------------------------------------------------------- FFI targets --- */
void aether_bench_nop(void) {}

double aether_bench_args(const void *p, int32_t i, double x) {
  /* The pointer is used (its low byte), so a caller must really pass it. */
  return (double)((uintptr_t)p & 0xff) + (double)i + x;
}

uint64_t aether_bench_u64(uint64_t a, uint64_t b) { return a ^ (b * 0x9E3779B97F4A7C15ull); }

aether_status aether_bench_fill(aether_bench_result *out) {
  static _Thread_local uint64_t calls;
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_bench_fill: out is NULL");
  calls++;
  out->ops = calls;
  out->elapsed_ns = calls * 3;
  out->ns_per_op = 3.0;
  out->ops_per_sec = 1e9 / 3.0;
  out->p50_ns = 1.5;
  out->p90_ns = 2.5;
  out->p99_ns = 3.5;
  out->p999_ns = 4.5;
  out->max_ns = (double)calls;
  out->samples = calls;
  return AETHER_OK;
}

/* ------------------------------------------------------------------- timed calls, shared shape --- */
/* Time reps calls of run(ctx) one by one, exactly as qstate.c's loop does: one warm-up call, then every call
 * between two cycle-counter reads; elapsed is the whole loop, percentiles per call. run returns a status;
 * the warm-up call's failure (a bad argument) is returned as is. */
typedef aether_status timed_fn(void *ctx);

static aether_status time_calls(timed_fn *run, void *ctx, uint64_t reps, aether_bench_result *out, const char *fn) {
  (void)_ae_ns_per_tick(); /* calibrate before anything is timed */
  const aether_status first = run(ctx);
  if (first < 0) return first;
  ae_latency lat;
  const size_t samples = reps < ((uint64_t)1 << 20) ? (size_t)reps : ((size_t)1 << 20);
  AE_RETURN_ERROR_IF(!_ae_latency_init(&lat, samples), AETHER_ERR_OUT_OF_MEMORY, "%s: no memory for %zu samples", fn,
                     samples);
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

/* ------------------------------------------------------------------------- calls from C --- */
/* Called through volatile pointers: the compiler cannot inline them or drop the calls. */
static void (*volatile nop_ptr)(void) = aether_bench_nop;
static double (*volatile args_ptr)(const void *, int32_t, double) = aether_bench_args;
static uint64_t (*volatile u64_ptr)(uint64_t, uint64_t) = aether_bench_u64;
static aether_status (*volatile fill_ptr)(aether_bench_result *) = aether_bench_fill;
static volatile uint64_t call_sink;

typedef struct call_ctx {
  int kind;
  uint64_t i;
  aether_bench_result r;
} call_ctx;

/* One call of the kind, for the timed pass. */
static aether_status one_call(void *p) {
  call_ctx *c = p;
  switch (c->kind) {
    case AETHER_BENCH_CALL_NOP: nop_ptr(); break;
    case AETHER_BENCH_CALL_ARGS: call_sink = (uint64_t)args_ptr(c, (int32_t)c->i, 0.5); break;
    case AETHER_BENCH_CALL_U64: call_sink = u64_ptr(c->i, call_sink); break;
    default: fill_ptr(&c->r); call_sink = c->r.ops; break;
  }
  c->i++;
  return AETHER_OK;
}

/* n calls of the kind in a loop that does nothing else (the pointer is loaded once, as a caller that keeps a
 * function pointer would): the untimed pass, the floor the same call from Bun is compared with. */
static void call_loop(call_ctx *c, uint64_t n) {
  switch (c->kind) {
    case AETHER_BENCH_CALL_NOP: {
      void (*f)(void) = nop_ptr;
      for (uint64_t i = 0; i < n; i++) {
        f();
        __asm__ volatile("" ::: "memory"); /* a call per iteration, never merged or hoisted */
      }
      break;
    }
    case AETHER_BENCH_CALL_ARGS: {
      double (*f)(const void *, int32_t, double) = args_ptr;
      double acc = 0;
      for (uint64_t i = 0; i < n; i++) acc += f(c, (int32_t)i, 0.5);
      call_sink = (uint64_t)acc;
      break;
    }
    case AETHER_BENCH_CALL_U64: {
      uint64_t (*f)(uint64_t, uint64_t) = u64_ptr;
      uint64_t acc = 1;
      for (uint64_t i = 0; i < n; i++) acc = f(acc, i);
      call_sink = acc;
      break;
    }
    default: {
      aether_status (*f)(aether_bench_result *) = fill_ptr;
      for (uint64_t i = 0; i < n; i++) f(&c->r);
      call_sink = c->r.ops;
      break;
    }
  }
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* An untimed pass gives ns_per_op (a call costs less than reading the cycle counter, so timing each call would
 * mostly measure the clock), then a timed pass gives the per-call percentiles. The untimed pass runs in 64
 * chunks, each timed as a whole, and ns_per_op is the interquartile mean of the chunks: a chunk that the OS
 * preempted (on a busy machine, some always are) does not move it. */
aether_status aether_bench_call(int kind, uint64_t reps, aether_bench_result *out) {
  static const char fn[] = "aether_bench_call";
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "%s: out is NULL", fn);
  AE_RETURN_ERROR_IF(kind < AETHER_BENCH_CALL_NOP || kind > AETHER_BENCH_CALL_FILL, AETHER_ERR_INVALID_ARGUMENT,
                     "%s: kind %d is not 0 (nop), 1 (args), 2 (u64) or 3 (fill)", fn, kind);
  AE_RETURN_ERROR_IF(reps == 0 || reps > ((uint64_t)1 << 32), AETHER_ERR_OUT_OF_RANGE,
                     "%s: reps %" PRIu64 " is not in [1, 2^32]", fn, reps);
  call_ctx c = {.kind = kind};
  (void)_ae_ns_per_tick();
  call_loop(&c, reps < 100000 ? reps : 100000); /* warm-up */
  enum { CHUNKS = 64 };
  const uint64_t chunks = reps < CHUNKS ? reps : CHUNKS;
  double per[CHUNKS];
  uint64_t done = 0;
  const uint64_t t0 = _ae_now_ns();
  for (uint64_t k = 0; k < chunks; k++) {
    const uint64_t n = reps / chunks + (k < reps % chunks ? 1 : 0);
    const uint64_t a = _ae_now_ns();
    call_loop(&c, n);
    per[k] = (double)(_ae_now_ns() - a) / (double)n;
    done += n;
  }
  const uint64_t wall = _ae_now_ns() - t0;
  qsort(per, chunks, sizeof per[0], cmp_double);
  const uint64_t lo = chunks / 4, hi = chunks - chunks / 4;
  double sum = 0;
  for (uint64_t k = lo; k < hi; k++) sum += per[k];
  aether_bench_result timed;
  const uint64_t samples = reps < ((uint64_t)1 << 20) ? reps : ((uint64_t)1 << 20);
  const aether_status rc = time_calls(one_call, &c, samples, &timed, fn);
  if (rc < 0) return rc;
  *out = timed;
  out->ops = done;
  out->elapsed_ns = wall ? wall : 1;
  out->ns_per_op = sum / (double)(hi - lo);
  out->ops_per_sec = out->ns_per_op > 0 ? 1e9 / out->ns_per_op : 0;
  return AETHER_OK;
}

/* ---------------------------------------------------- SIMD kernels through their public entry points --- */
typedef struct api_ctx {
  int kernel;
  aether_qstate *s;
  const aether_qstate *other;
  uint32_t target, control;
  float *probs;
  size_t len;
} api_ctx;

static const float HADAMARD[8] = {0.70710678f, 0, 0.70710678f, 0, 0.70710678f, 0, -0.70710678f, 0};
static volatile double api_sink;

/* The same operations, with the same arguments, as aether_bench_qstate's loop runs on the kernels. */
static aether_status api_call(void *p) {
  api_ctx *c = p;
  double v[2];
  aether_status rc;
  switch (c->kernel) {
    case AETHER_QK_NORM2: rc = aether_qstate_norm2(c->s, v); api_sink = v[0]; return rc;
    case AETHER_QK_NORMALIZE: return aether_qstate_normalize(c->s);
    case AETHER_QK_INNER_PRODUCT: rc = aether_qstate_inner_product(c->s, c->other, v); api_sink = v[0] + v[1]; return rc;
    case AETHER_QK_SCALE: return aether_qstate_scale(c->s, 0.99500417f, 0.09983342f);
    case AETHER_QK_GATE_1Q: return aether_qstate_apply_gate_1q(c->s, c->target, HADAMARD);
    case AETHER_QK_CNOT: return aether_qstate_apply_cnot(c->s, c->control, c->target);
    default: return aether_qstate_probabilities(c->s, c->probs, c->len);
  }
}

aether_status aether_bench_qstate_api(int kernel, aether_qstate *s, const aether_qstate *other, uint32_t target,
                                      uint32_t control, uint64_t reps, aether_bench_result *out) {
  static const char fn[] = "aether_bench_qstate_api";
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "%s: out is NULL", fn);
  AE_RETURN_ERROR_IF(kernel < 0 || kernel >= AETHER_QK_COUNT, AETHER_ERR_INVALID_ARGUMENT,
                     "%s: kernel %d is not in [0, %d)", fn, kernel, AETHER_QK_COUNT);
  AE_RETURN_ERROR_IF(s == NULL, AETHER_ERR_INVALID_ARGUMENT, "%s: the state is NULL", fn);
  AE_RETURN_ERROR_IF(reps == 0 || reps > ((uint64_t)1 << 32), AETHER_ERR_OUT_OF_RANGE,
                     "%s: reps %" PRIu64 " is not in [1, 2^32]", fn, reps);
  api_ctx c = {.kernel = kernel, .s = s, .other = other ? other : s, .target = target, .control = control};
  size_t mapped = 0;
  if (kernel == AETHER_QK_PROBABILITIES) {
    const uint64_t len = aether_qstate_len(s);
    AE_RETURN_ERROR_IF(len == 0, AETHER_ERR_NOT_INITIALIZED, "%s: %p is not a live state", fn, (void *)s);
    c.len = (size_t)len;
    mapped = c.len * sizeof(float);
    void *p = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    AE_RETURN_ERROR_IF(p == MAP_FAILED, AETHER_ERR_OUT_OF_MEMORY, "%s: no memory for the output", fn);
    c.probs = p;
  }
  const aether_status rc = time_calls(api_call, &c, reps, out, fn);
  if (c.probs) munmap(c.probs, mapped);
  return rc;
}
