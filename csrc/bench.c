/* bench.c: the clock, latency recorder and thread launcher shared by every timed loop, and the allocator
 * loop (malloc+free pairs against glibc in the same process). */
#include "bench_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static double ns_per_tick;
static uint64_t tick_overhead;
static pthread_once_t calibrate_once = PTHREAD_ONCE_INIT;

static int cmp_u32(const void *a, const void *b) {
  const uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

static void calibrate(void) {
  /* 20 ms against the monotonic clock: under 0.1% error for a constant-rate TSC. */
  const uint64_t n0 = _ae_now_ns(), t0 = _ae_ticks();
  while (_ae_now_ns() - n0 < 20000000ull) {
  }
  const uint64_t n1 = _ae_now_ns(), t1 = _ae_ticks();
  ns_per_tick = t1 > t0 ? (double)(n1 - n0) / (double)(t1 - t0) : 1.0;
  /* The overhead of an empty timed region: the median of many, so one interrupt cannot skew it. */
  uint32_t s[1001];
  for (int i = 0; i < 1001; i++) {
    const uint64_t a = _ae_ticks();
    const uint64_t b = _ae_ticks();
    s[i] = (uint32_t)(b - a);
  }
  qsort(s, 1001, sizeof s[0], cmp_u32);
  tick_overhead = s[500];
}

double _ae_ns_per_tick(void) {
  pthread_once(&calibrate_once, calibrate);
  return ns_per_tick;
}
uint64_t _ae_tick_overhead(void) {
  pthread_once(&calibrate_once, calibrate);
  return tick_overhead;
}
double aether_bench_ns_per_tick(void) { return _ae_ns_per_tick(); }

bool _ae_latency_init(ae_latency *l, size_t cap) {
  l->count = 0;
  l->cap = cap;
  l->ticks = NULL;
  if (cap == 0) return true;
  void *p = mmap(NULL, cap * sizeof(uint32_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  l->ticks = p;
  return true;
}

static void latency_free(ae_latency *l) {
  if (l->ticks) munmap(l->ticks, l->cap * sizeof(uint32_t));
  l->ticks = NULL;
  l->count = l->cap = 0;
}

void _ae_latency_merge(ae_latency *dst, ae_latency *src) {
  for (size_t i = 0; i < src->count && dst->count < dst->cap; i++) dst->ticks[dst->count++] = src->ticks[i];
  latency_free(src);
}

void _ae_latency_finish(ae_latency *l, aether_bench_result *out) {
  const double k = _ae_ns_per_tick();
  const uint64_t over = _ae_tick_overhead();
  out->samples = l->count;
  if (l->count == 0) {
    out->p50_ns = out->p90_ns = out->p99_ns = out->p999_ns = out->max_ns = 0;
    _ae_hist_load_last(NULL, 0, over, k);
    latency_free(l);
    return;
  }
  qsort(l->ticks, l->count, sizeof l->ticks[0], cmp_u32);
  _ae_hist_load_last(l->ticks, l->count, over, k);
#define AE_PCT(q) ((double)(l->ticks[(size_t)((double)(l->count - 1) * (q))] > over ? \
                   l->ticks[(size_t)((double)(l->count - 1) * (q))] - over : 0) * k)
  out->p50_ns = AE_PCT(0.50);
  out->p90_ns = AE_PCT(0.90);
  out->p99_ns = AE_PCT(0.99);
  out->p999_ns = AE_PCT(0.999);
  out->max_ns = AE_PCT(1.0);
#undef AE_PCT
  latency_free(l);
}

typedef struct launch {
  ae_bench_fn *fn;
  void *arg;
  uint32_t index, n;
  bool pin;
  _Atomic uint32_t *ready;
  _Atomic int *go;
  uint64_t end_ns;
} launch;

static void *launch_main(void *p) {
  launch *l = p;
  if (l->pin) {
    const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)(l->index % (uint32_t)(ncpu > 0 ? ncpu : 1)), &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  }
  atomic_fetch_add_explicit(l->ready, 1, memory_order_acq_rel);
  /* Yield while waiting: on a machine with fewer free CPUs than threads, a spinning waiter would hold the CPU
   * that the thread it waits for needs, for a whole time slice. */
  while (!atomic_load_explicit(l->go, memory_order_acquire)) sched_yield();
  l->fn(l->arg, l->index);
  l->end_ns = _ae_now_ns();
  return NULL;
}

uint64_t _ae_run_threads(uint32_t n, bool pin, ae_bench_fn *fn, void *arg) {
  launch ls[64];
  pthread_t th[64];
  _Atomic uint32_t ready = 0;
  _Atomic int go = 0;
  if (n == 0 || n > 64) return 0;
  uint32_t started = 0;
  for (; started < n; started++) {
    ls[started] = (launch){.fn = fn, .arg = arg, .index = started, .n = n, .pin = pin, .ready = &ready, .go = &go};
    if (pthread_create(&th[started], NULL, launch_main, &ls[started]) != 0) break;
  }
  /* Spin until all are ready, so no thread gets a head start while others are still being created. */
  while (atomic_load_explicit(&ready, memory_order_acquire) < started) sched_yield();
  const uint64_t t0 = _ae_now_ns();
  atomic_store_explicit(&go, 1, memory_order_release);
  uint64_t end = t0;
  for (uint32_t i = 0; i < started; i++) {
    pthread_join(th[i], NULL);
    if (ls[i].end_ns > end) end = ls[i].end_ns;
  }
  return started == n ? (end > t0 ? end - t0 : 1) : 0;
}

void _ae_bench_pairs_result(aether_bench_result *out, uint64_t wall, uint64_t pairs, uint32_t threads,
                            ae_bench_fn *fn, void *job, uint64_t *job_pairs, bool *job_timed, ae_latency *lat) {
  out->ops = pairs * threads;
  out->elapsed_ns = wall;
  out->ns_per_op = (double)wall * threads / (double)out->ops;
  out->ops_per_sec = (double)out->ops * 1e9 / (double)wall;
  /* The timed pass: every pair timed, up to 1M samples per thread. */
  const uint64_t samples = pairs < 1000000 ? pairs : 1000000;
  bool ok = true;
  for (uint32_t t = 0; t < threads; t++) ok = ok && _ae_latency_init(&lat[t], samples);
  *job_timed = true;
  *job_pairs = samples;
  if (ok && _ae_run_threads(threads, false, fn, job) != 0) {
    ae_latency all;
    if (_ae_latency_init(&all, samples * threads)) {
      for (uint32_t t = 0; t < threads; t++) _ae_latency_merge(&all, &lat[t]);
      _ae_latency_finish(&all, out);
    }
  }
  for (uint32_t t = 0; t < threads; t++)
    if (lat[t].ticks) munmap(lat[t].ticks, lat[t].cap * sizeof(uint32_t));
}

/* ------------------------------------------------------------------------------ allocator loop --- */
typedef struct alloc_job {
  int allocator;
  size_t size;
  uint64_t pairs;
  bool timed;
  ae_latency lat[64];
} alloc_job;

/* The pointer escapes through this, so the compiler cannot fold a malloc/free pair away. */

static inline void *do_alloc(int kind, size_t size) {
  return kind == AETHER_BENCH_SAFE ? aether_safe_malloc(size)
         : kind == AETHER_BENCH_UNCHECKED ? aether_malloc(size) : malloc(size);
}
static inline void do_free(int kind, void *p) {
  if (kind == AETHER_BENCH_SAFE) aether_safe_free(p);
  else if (kind == AETHER_BENCH_UNCHECKED) aether_free(p);
  else free(p);
}

static void alloc_worker(void *arg, uint32_t index) {
  alloc_job *job = arg;
  const int kind = job->allocator;
  const size_t size = job->size;
  if (!job->timed) {
    for (uint64_t i = 0; i < job->pairs; i++) {
      void *p = do_alloc(kind, size);
      _ae_escape(p);
      do_free(kind, p);
    }
    return;
  }
  ae_latency *lat = &job->lat[index];
  for (uint64_t i = 0; i < job->pairs; i++) {
    const uint64_t t0 = _ae_ticks();
    void *p = do_alloc(kind, size);
    _ae_escape(p);
    do_free(kind, p);
    _ae_latency_add(lat, _ae_ticks() - t0);
  }
}

aether_status aether_bench_alloc(int allocator, size_t size, uint64_t pairs, uint32_t threads,
                                 aether_bench_result *out) {
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_bench_alloc: out is NULL");
  AE_RETURN_ERROR_IF(allocator < AETHER_BENCH_LIBC || allocator > AETHER_BENCH_UNCHECKED, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_bench_alloc: allocator %d is not 0 (libc), 1 (safe) or 2 (unchecked)", allocator);
  AE_RETURN_ERROR_IF(size == 0 || size > ((size_t)1 << 30), AETHER_ERR_OUT_OF_RANGE,
                     "aether_bench_alloc: size %zu is not in [1, 2^30]", size);
  AE_RETURN_ERROR_IF(pairs == 0 || pairs > ((uint64_t)1 << 32), AETHER_ERR_OUT_OF_RANGE,
                     "aether_bench_alloc: pairs %" PRIu64 " is not in [1, 2^32]", pairs);
  AE_RETURN_ERROR_IF(threads == 0 || threads > 64, AETHER_ERR_OUT_OF_RANGE,
                     "aether_bench_alloc: threads %u is not in [1, 64]", threads);
  memset(out, 0, sizeof *out);
  alloc_job *job = mmap(NULL, sizeof(alloc_job), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  AE_RETURN_ERROR_IF(job == MAP_FAILED, AETHER_ERR_OUT_OF_MEMORY, "aether_bench_alloc: no memory for the job");
  job->allocator = allocator;
  job->size = size;
  job->pairs = pairs;
  (void)_ae_ns_per_tick(); /* calibrate before anything is timed */

  /* Warm-up (caches, runs, quarantine rings filled to steady state), then the throughput pass. */
  job->timed = false;
  const uint64_t warm = pairs < 100000 ? pairs : 100000;
  job->pairs = warm;
  _ae_run_threads(threads, false, alloc_worker, job);
  job->pairs = pairs;
  const uint64_t wall = _ae_run_threads(threads, false, alloc_worker, job);
  int rc = AETHER_OK;
  if (wall == 0) {
    rc = _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "aether_bench_alloc: could not start %u threads", threads);
  } else {
    _ae_bench_pairs_result(out, wall, pairs, threads, alloc_worker, job, &job->pairs, &job->timed, job->lat);
  }
  munmap(job, sizeof(alloc_job));
  return rc;
}
