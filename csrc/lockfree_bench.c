/* lockfree_bench.c: timed loops for the queues (throughput, round trip, the mutex-ring baseline and the
 * one-cache-line ping-pong floor) and for the pool (alloc+free pairs, the same passes as aether_bench_alloc).
 * The queue loops come from qbench_harness.h, shared with the C++ comparison shim. */
#include "bench_internal.h"
#include "pool_internal.h"
#include "queue_internal.h"

#define AEQB_TICKS() _ae_ticks()
#include "qbench_harness.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

/* ------------------------------------------------------------------------------ mutex ring --- */
/* The baseline: the same bounded ring and interface, every operation under one pthread mutex. */
typedef struct mutex_ring {
  pthread_mutex_t lock;
  uint64_t head, tail, mask;
  uint64_t *buf;
} mutex_ring;

static mutex_ring *mutex_ring_new(size_t capacity) {
  mutex_ring *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  r->buf = calloc(capacity, sizeof(uint64_t));
  if (r->buf == NULL) {
    free(r);
    return NULL;
  }
  pthread_mutex_init(&r->lock, NULL);
  r->mask = capacity - 1;
  return r;
}
static void mutex_ring_free(mutex_ring *r) {
  if (r == NULL) return;
  pthread_mutex_destroy(&r->lock);
  free(r->buf);
  free(r);
}
static inline bool mutex_ring_push(mutex_ring *r, uint64_t v) {
  pthread_mutex_lock(&r->lock);
  const bool ok = r->head - r->tail <= r->mask;
  if (ok) r->buf[r->head++ & r->mask] = v;
  pthread_mutex_unlock(&r->lock);
  return ok;
}
static inline bool mutex_ring_pop(mutex_ring *r, uint64_t *v) {
  pthread_mutex_lock(&r->lock);
  const bool ok = r->head != r->tail;
  if (ok) *v = r->buf[r->tail++ & r->mask];
  pthread_mutex_unlock(&r->lock);
  return ok;
}

AEQB_DEFINE(spsc, aether_spsc, _ae_spsc_push_u64, _ae_spsc_pop_u64)
AEQB_DEFINE(mpmc, aether_mpmc, _ae_mpmc_push_u64, _ae_mpmc_pop_u64)
AEQB_DEFINE(mutex, mutex_ring, mutex_ring_push, mutex_ring_pop)

/* Batches: the producer pushes runs of up to 256 consecutive values with push_n, the consumer pops up to 256
 * with pop_n and checks every value. */
#define AE_BENCH_BATCH 256
#define AE_DEFINE_BATCH(NAME, Q, PUSH_N, POP_N)                                   \
  static void NAME##_batch_throughput(void *arg, uint32_t index) {               \
    aeqb_job *j = arg;                                                           \
    Q *q = j->q1;                                                                \
    uint64_t buf[AE_BENCH_BATCH];                                                \
    uint64_t i = 0;                                                              \
    if (index == 0) {                                                            \
      while (i < j->items) {                                                     \
        const uint64_t k = j->items - i < AE_BENCH_BATCH ? j->items - i : AE_BENCH_BATCH; \
        for (uint64_t x = 0; x < k; x++) buf[x] = i + x;                          \
        i += PUSH_N(q, buf, k);                                                  \
      }                                                                          \
    } else {                                                                     \
      uint64_t last = j->samples ? _ae_ticks() : 0;                              \
      while (i < j->items) {                                                     \
        const size_t m = POP_N(q, buf, AE_BENCH_BATCH);                          \
        for (size_t x = 0; x < m; x++) {                                         \
          if (buf[x] != i + x) aeqb_fail(j);                                     \
          aeqb_slice(j->samples, i + x, &last);                                  \
        }                                                                        \
        i += m;                                                                  \
      }                                                                          \
    }                                                                            \
  }
AE_DEFINE_BATCH(spsc, aether_spsc, _ae_spsc_push_n, _ae_spsc_pop_n)
AE_DEFINE_BATCH(mpmc, aether_mpmc, _ae_mpmc_push_n, _ae_mpmc_pop_n)

/* ------------------------------------------------------------------------------ ping-pong --- */
/* The floor of any round trip between the two cores: one line, each thread waits for the other's value. */
typedef struct pingpong {
  _Alignas(128) _Atomic uint64_t flag;
} pingpong;

static void pingpong_round_trip(void *arg, uint32_t index) {
  aeqb_job *j = arg;
  pingpong *pp = j->q1;
  const uint64_t n = j->items;
  if (index == 0) {
    uint32_t *s = j->samples;
    for (uint64_t i = 0; i < n; i++) {
      const uint64_t t0 = s ? _ae_ticks() : 0;
      atomic_store_explicit(&pp->flag, 2 * i + 1, memory_order_release);
      while (atomic_load_explicit(&pp->flag, memory_order_acquire) != 2 * i + 2) {
      }
      if (s) {
        const uint64_t d = _ae_ticks() - t0;
        s[i] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
      }
    }
  } else {
    for (uint64_t i = 0; i < n; i++) {
      while (atomic_load_explicit(&pp->flag, memory_order_acquire) != 2 * i + 1) {
      }
      atomic_store_explicit(&pp->flag, 2 * i + 2, memory_order_release);
    }
  }
}

/* ---------------------------------------------------------------------------- the queue driver --- */
typedef struct qbench_objects {
  void *q1, *q2;
  int kind;
} qbench_objects;

static void objects_free(qbench_objects *o) {
  for (int i = 0; i < 2; i++) {
    void *q = i ? o->q2 : o->q1;
    if (q == NULL) continue;
    switch (o->kind) {
      case AETHER_QBENCH_SPSC:
      case AETHER_QBENCH_SPSC_BATCH: aether_spsc_destroy(q); break;
      case AETHER_QBENCH_MPMC:
      case AETHER_QBENCH_MPMC_BATCH: aether_mpmc_destroy(q); break;
      case AETHER_QBENCH_MUTEX: mutex_ring_free(q); break;
      default: munmap(q, sizeof(pingpong));
    }
  }
  o->q1 = o->q2 = NULL;
}

static int objects_new(qbench_objects *o, int kind, size_t capacity, bool two) {
  o->kind = kind;
  o->q1 = o->q2 = NULL;
  for (int i = 0; i < (two ? 2 : 1); i++) {
    void *q = NULL;
    switch (kind) {
      case AETHER_QBENCH_SPSC:
      case AETHER_QBENCH_SPSC_BATCH: q = aether_spsc_create(capacity, 8); break;
      case AETHER_QBENCH_MPMC:
      case AETHER_QBENCH_MPMC_BATCH: q = aether_mpmc_create(capacity, 8); break;
      case AETHER_QBENCH_MUTEX: q = mutex_ring_new(capacity); break;
      default: {
        void *m = mmap(NULL, sizeof(pingpong), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        q = m == MAP_FAILED ? NULL : m;
      }
    }
    if (q == NULL) {
      objects_free(o);
      return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "aether_bench_queue: cannot create the queue");
    }
    if (i == 0) o->q1 = q;
    else o->q2 = q;
  }
  return AETHER_OK;
}

static ae_bench_fn *queue_fn(int kind, bool round_trip) {
  switch (kind) {
    case AETHER_QBENCH_SPSC: return round_trip ? spsc_round_trip : spsc_throughput;
    case AETHER_QBENCH_MPMC: return round_trip ? mpmc_round_trip : mpmc_throughput;
    case AETHER_QBENCH_MUTEX: return round_trip ? mutex_round_trip : mutex_throughput;
    case AETHER_QBENCH_PINGPONG: return pingpong_round_trip;
    case AETHER_QBENCH_SPSC_BATCH: return spsc_batch_throughput;
    default: return mpmc_batch_throughput;
  }
}

/* One pass on fresh queues (so no pass inherits another's indices or cache state). */
static int queue_pass(int kind, size_t capacity, bool round_trip, uint64_t items, uint32_t *samples, uint64_t *wall) {
  qbench_objects o;
  const int rc = objects_new(&o, kind, capacity, round_trip);
  if (rc != AETHER_OK) return rc;
  aeqb_job job = {.q1 = o.q1, .q2 = o.q2, .items = items, .samples = samples, .failed = 0};
  *wall = _ae_run_threads(2, true, queue_fn(kind, round_trip), &job);
  objects_free(&o);
  if (*wall == 0) return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "aether_bench_queue: could not start 2 threads");
  if (__atomic_load_n(&job.failed, __ATOMIC_RELAXED))
    return _ae_fail(AETHER_ERR_CORRUPTED, "aether_bench_queue: the consumer saw items out of order (kind %d)", kind);
  return AETHER_OK;
}

aether_status aether_bench_queue(int kind, size_t capacity, uint64_t items, bool round_trip,
                                 struct aether_bench_result *out) {
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_bench_queue: out is NULL");
  AE_RETURN_ERROR_IF(kind < AETHER_QBENCH_SPSC || kind > AETHER_QBENCH_MPMC_BATCH, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_bench_queue: kind %d is not one of AETHER_QBENCH_*", kind);
  AE_RETURN_ERROR_IF(kind == AETHER_QBENCH_PINGPONG && !round_trip, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_bench_queue: ping-pong measures round trips only");
  AE_RETURN_ERROR_IF((kind == AETHER_QBENCH_SPSC_BATCH || kind == AETHER_QBENCH_MPMC_BATCH) && round_trip,
                     AETHER_ERR_INVALID_ARGUMENT, "aether_bench_queue: the batch kinds measure throughput only");
  if (kind != AETHER_QBENCH_PINGPONG) {
    const int rc = _ae_queue_check_args("aether_bench_queue", capacity, 8);
    if (rc != AETHER_OK) return rc;
  }
  AE_RETURN_ERROR_IF(items == 0 || items > ((uint64_t)1 << 32), AETHER_ERR_OUT_OF_RANGE,
                     "aether_bench_queue: items %" PRIu64 " is not in [1, 2^32]", items);
  memset(out, 0, sizeof *out);
  (void)_ae_ns_per_tick(); /* calibrate before anything is timed */
  uint64_t wall = 0;
  int rc = queue_pass(kind, capacity, round_trip, items < 100000 ? items : 100000, NULL, &wall); /* warm-up */
  if (rc == AETHER_OK) rc = queue_pass(kind, capacity, round_trip, items, NULL, &wall);
  if (rc != AETHER_OK) return rc;
  out->ops = items;
  out->elapsed_ns = wall;
  out->ns_per_op = (double)wall / (double)items;
  out->ops_per_sec = (double)items * 1e9 / (double)wall;
  if (round_trip) {
    const uint64_t n = items < 1000000 ? items : 1000000;
    ae_latency lat;
    if (_ae_latency_init(&lat, n)) {
      rc = queue_pass(kind, capacity, true, n, lat.ticks, &wall);
      lat.count = rc == AETHER_OK ? n : 0;
      _ae_latency_finish(&lat, out);
    }
  } else if (items >= 2 * AEQB_SLICE) {
    /* A timed pass: per-item time in each slice of AEQB_SLICE items; the percentiles are per item. */
    const uint64_t n = items / AEQB_SLICE;
    ae_latency lat;
    if (_ae_latency_init(&lat, n)) {
      rc = queue_pass(kind, capacity, false, n * AEQB_SLICE, lat.ticks, &wall);
      lat.count = rc == AETHER_OK ? n : 0;
      _ae_latency_finish(&lat, out);
      out->p50_ns /= AEQB_SLICE, out->p90_ns /= AEQB_SLICE, out->p99_ns /= AEQB_SLICE;
      out->p999_ns /= AEQB_SLICE, out->max_ns /= AEQB_SLICE;
    }
  }
  return rc;
}

/* ------------------------------------------------------------------------------- pool pairs --- */
/* Where each thread's pointer escapes (so no pair is optimized away): one line per thread. A single shared
 * sink would be a line both threads write, and a subject with a fence in its free (the pool's CAS) would pay
 * for draining that contended store while glibc would not. */
typedef struct pool_sink {
  void *volatile p;
} __attribute__((aligned(128))) pool_sink;

typedef struct pool_job {
  aether_pool *pool; /* NULL: glibc malloc/free */
  size_t size;
  uint64_t pairs;
  bool timed;
  _Atomic int failed;
  pool_sink sink[64];
  ae_latency lat[64];
} pool_job;

static inline void *pair_alloc(pool_job *job) { return job->pool ? aether_pool_alloc(job->pool) : malloc(job->size); }
static inline int pair_free(pool_job *job, void *p) {
  if (job->pool) return aether_pool_free(job->pool, p);
  free(p);
  return AETHER_OK;
}

static void pool_worker(void *arg, uint32_t index) {
  pool_job *job = arg;
  pool_sink *sink = &job->sink[index];
  if (!job->timed) {
    for (uint64_t i = 0; i < job->pairs; i++) {
      void *p = pair_alloc(job);
      sink->p = p;
      if (AE_UNLIKELY(pair_free(job, p) != AETHER_OK || p == NULL))
        atomic_store_explicit(&job->failed, 1, memory_order_relaxed);
    }
    return;
  }
  ae_latency *lat = &job->lat[index];
  for (uint64_t i = 0; i < job->pairs; i++) {
    const uint64_t t0 = _ae_ticks();
    void *p = pair_alloc(job);
    sink->p = p;
    pair_free(job, p);
    _ae_latency_add(lat, _ae_ticks() - t0);
  }
}

aether_status aether_bench_pool(int mode, size_t block_size, uint64_t pairs, uint32_t threads,
                                struct aether_bench_result *out) {
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_bench_pool: out is NULL");
  AE_RETURN_ERROR_IF(mode < 0 || mode > 2, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_bench_pool: mode %d is not 0 (pool), 1 (shared list only) or 2 (glibc)", mode);
  AE_RETURN_ERROR_IF(block_size == 0 || block_size > ((size_t)1 << 20), AETHER_ERR_OUT_OF_RANGE,
                     "aether_bench_pool: block_size %zu is not in [1, 2^20]", block_size);
  AE_RETURN_ERROR_IF(pairs == 0 || pairs > ((uint64_t)1 << 32), AETHER_ERR_OUT_OF_RANGE,
                     "aether_bench_pool: pairs %" PRIu64 " is not in [1, 2^32]", pairs);
  AE_RETURN_ERROR_IF(threads == 0 || threads > 64, AETHER_ERR_OUT_OF_RANGE,
                     "aether_bench_pool: threads %u is not in [1, 64]", threads);
  memset(out, 0, sizeof *out);
  aether_pool *pool = mode == 0   ? aether_pool_create(block_size, 64, 256u * threads, 0)
                     : mode == 1 ? _ae_pool_create_uncached(block_size, 64, 256u * threads)
                                 : NULL;
  if (pool == NULL && mode != 2) return aether_last_status();
  pool_job *job = mmap(NULL, sizeof(pool_job), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (job == MAP_FAILED) {
    if (pool) aether_pool_destroy(pool);
    return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "aether_bench_pool: no memory for the job");
  }
  job->pool = pool;
  job->size = block_size;
  (void)_ae_ns_per_tick();
  job->pairs = pairs < 100000 ? pairs : 100000; /* warm-up: caches created and filled */
  _ae_run_threads(threads, false, pool_worker, job);
  job->pairs = pairs;
  const uint64_t wall = _ae_run_threads(threads, false, pool_worker, job);
  int rc = AETHER_OK;
  if (wall == 0) {
    rc = _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "aether_bench_pool: could not start %u threads", threads);
  } else if (atomic_load_explicit(&job->failed, memory_order_relaxed)) {
    rc = _ae_fail(AETHER_ERR_CORRUPTED, "aether_bench_pool: an alloc or free failed during the run");
  } else {
    _ae_bench_pairs_result(out, wall, pairs, threads, pool_worker, job, &job->pairs, &job->timed, job->lat);
  }
  munmap(job, sizeof(pool_job));
  if (pool) aether_pool_destroy(pool);
  return rc;
}
