// cxx_queues.cpp: the C++ queues aether's are compared with, timed by exactly the loops that time aether's
// (csrc/qbench_harness.h), on the same two pinned threads. Built by bench/queues.bench.ts into
// build/bench/libcxxqueues.so; not part of libaether. A queue whose Debian headers are missing is compiled
// out and reported as unavailable:
//   libboost-dev                boost::lockfree::spsc_queue, boost::lockfree::queue
//   libreaderwriterqueue-dev    moodycamel::ReaderWriterQueue
//   libconcurrentqueue-dev      moodycamel::ConcurrentQueue
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include <algorithm>
#include <atomic>

#include "aether.h" // aether_bench_result, so the two libraries report in one layout

static inline uint64_t ticks() {
  _mm_lfence();
  const uint64_t t = __rdtsc();
  _mm_lfence();
  return t;
}
#define AEQB_TICKS() ticks()
#include "qbench_harness.h"

#if __has_include(<boost/lockfree/spsc_queue.hpp>)
#include <boost/lockfree/queue.hpp>
#include <boost/lockfree/spsc_queue.hpp>
#define HAVE_BOOST 1
#endif
#if __has_include(<readerwriterqueue/readerwriterqueue.h>)
#include <readerwriterqueue/readerwriterqueue.h>
#define HAVE_RWQ 1
#endif
#if __has_include(<concurrentqueue/concurrentqueue.h>)
#include <concurrentqueue/concurrentqueue.h>
#define HAVE_CQ 1
#endif

static uint64_t now_ns() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

// The same launcher as libaether's _ae_run_threads: thread i pinned to CPU i, released together, wall time
// from release to the last thread's end.
typedef void bench_fn(void *arg, uint32_t index);
struct launch {
  bench_fn *fn;
  void *arg;
  uint32_t index;
  std::atomic<uint32_t> *ready;
  std::atomic<int> *go;
  uint64_t end_ns;
};
static void *launch_main(void *p) {
  launch *l = (launch *)p;
  const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET((int)(l->index % (uint32_t)(ncpu > 0 ? ncpu : 1)), &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  l->ready->fetch_add(1, std::memory_order_acq_rel);
  while (!l->go->load(std::memory_order_acquire)) {
  }
  l->fn(l->arg, l->index);
  l->end_ns = now_ns();
  return nullptr;
}
static uint64_t run2(bench_fn *fn, void *arg) {
  launch ls[2];
  pthread_t th[2];
  std::atomic<uint32_t> ready{0};
  std::atomic<int> go{0};
  for (uint32_t i = 0; i < 2; i++) {
    ls[i] = launch{fn, arg, i, &ready, &go, 0};
    if (pthread_create(&th[i], nullptr, launch_main, &ls[i]) != 0) return 0;
  }
  while (ready.load(std::memory_order_acquire) < 2) {
  }
  const uint64_t t0 = now_ns();
  go.store(1, std::memory_order_release);
  uint64_t end = t0;
  for (int i = 0; i < 2; i++) {
    pthread_join(th[i], nullptr);
    end = std::max(end, ls[i].end_ns);
  }
  return end > t0 ? end - t0 : 1;
}

static double ns_per_tick_v, tick_overhead_v;
static void calibrate() {
  if (ns_per_tick_v != 0) return;
  const uint64_t n0 = now_ns(), t0 = ticks();
  while (now_ns() - n0 < 20000000ull) {
  }
  const uint64_t n1 = now_ns(), t1 = ticks();
  ns_per_tick_v = (double)(n1 - n0) / (double)(t1 - t0);
  uint32_t s[1001];
  for (int i = 0; i < 1001; i++) {
    const uint64_t a = ticks(), b = ticks();
    s[i] = (uint32_t)(b - a);
  }
  std::sort(s, s + 1001);
  tick_overhead_v = s[500];
}

// ------------------------------------------------------------------------------------- the queues ---
#ifdef HAVE_BOOST
typedef boost::lockfree::spsc_queue<uint64_t> bspsc;
typedef boost::lockfree::queue<uint64_t> bqueue;
static inline bool bspsc_push(bspsc *q, uint64_t v) { return q->push(v); }
static inline bool bspsc_pop(bspsc *q, uint64_t *v) { return q->pop(*v); }
static inline bool bqueue_push(bqueue *q, uint64_t v) { return q->bounded_push(v); } // never allocates
static inline bool bqueue_pop(bqueue *q, uint64_t *v) { return q->pop(*v); }
AEQB_DEFINE(boost_spsc, bspsc, bspsc_push, bspsc_pop)
AEQB_DEFINE(boost_queue, bqueue, bqueue_push, bqueue_pop)
#endif
#ifdef HAVE_RWQ
typedef moodycamel::ReaderWriterQueue<uint64_t> rwq;
static inline bool rwq_push(rwq *q, uint64_t v) { return q->try_enqueue(v); } // never allocates
static inline bool rwq_pop(rwq *q, uint64_t *v) { return q->try_dequeue(*v); }
AEQB_DEFINE(rwqueue, rwq, rwq_push, rwq_pop)
#endif
#ifdef HAVE_CQ
typedef moodycamel::ConcurrentQueue<uint64_t> cq;
// With the producer and consumer tokens its author recommends for speed: one of each per thread (a thread of
// these loops uses one queue per role, and exits, destroying its tokens, before the queue is destroyed).
static inline bool cq_push(cq *q, uint64_t v) {
  thread_local moodycamel::ProducerToken tok(*q);
  return q->try_enqueue(tok, v);
}
static inline bool cq_pop(cq *q, uint64_t *v) {
  thread_local moodycamel::ConsumerToken tok(*q);
  return q->try_dequeue(tok, *v);
}
AEQB_DEFINE(concurrentqueue, cq, cq_push, cq_pop)
#endif

enum { K_BOOST_SPSC = 0, K_BOOST_QUEUE = 1, K_RWQUEUE = 2, K_CONCURRENTQUEUE = 3 };

static void *make(int kind, size_t cap) {
  switch (kind) {
#ifdef HAVE_BOOST
    case K_BOOST_SPSC: return new bspsc(cap);
    case K_BOOST_QUEUE: return new bqueue(cap);
#endif
#ifdef HAVE_RWQ
    case K_RWQUEUE: return new rwq(cap);
#endif
#ifdef HAVE_CQ
    case K_CONCURRENTQUEUE: return new cq(cap);
#endif
    default: return nullptr;
  }
}
static void destroy(int kind, void *q) {
  if (!q) return;
  switch (kind) {
#ifdef HAVE_BOOST
    case K_BOOST_SPSC: delete (bspsc *)q; break;
    case K_BOOST_QUEUE: delete (bqueue *)q; break;
#endif
#ifdef HAVE_RWQ
    case K_RWQUEUE: delete (rwq *)q; break;
#endif
#ifdef HAVE_CQ
    case K_CONCURRENTQUEUE: delete (cq *)q; break;
#endif
  }
}
static bench_fn *fn_of(int kind, bool rt) {
  switch (kind) {
#ifdef HAVE_BOOST
    case K_BOOST_SPSC: return rt ? boost_spsc_round_trip : boost_spsc_throughput;
    case K_BOOST_QUEUE: return rt ? boost_queue_round_trip : boost_queue_throughput;
#endif
#ifdef HAVE_RWQ
    case K_RWQUEUE: return rt ? rwqueue_round_trip : rwqueue_throughput;
#endif
#ifdef HAVE_CQ
    case K_CONCURRENTQUEUE: return rt ? concurrentqueue_round_trip : concurrentqueue_throughput;
#endif
    default: return nullptr;
  }
}

static int pass(int kind, size_t cap, bool rt, uint64_t items, uint32_t *samples, uint64_t *wall) {
  void *q1 = make(kind, cap), *q2 = rt ? make(kind, cap) : nullptr;
  aeqb_job job = {q1, q2, items, samples, 0};
  *wall = run2(fn_of(kind, rt), &job);
  destroy(kind, q1);
  destroy(kind, q2);
  return *wall == 0 ? -2 : job.failed ? -15 : 0;
}

extern "C" {
/* 1 if the queue was compiled in (its headers were found). */
__attribute__((visibility("default"))) int cxxq_available(int kind) { return fn_of(kind, false) != nullptr; }

/* Same contract and passes as aether_bench_queue. */
__attribute__((visibility("default"))) int cxxq_bench(int kind, size_t capacity, uint64_t items, bool round_trip,
                                                      aether_bench_result *out) {
  if (!cxxq_available(kind) || !out || items == 0) return -1;
  memset(out, 0, sizeof *out);
  calibrate();
  uint64_t wall = 0;
  int rc = pass(kind, capacity, round_trip, items < 100000 ? items : 100000, nullptr, &wall);
  if (rc == 0) rc = pass(kind, capacity, round_trip, items, nullptr, &wall);
  if (rc != 0) return rc;
  out->ops = items;
  out->elapsed_ns = wall;
  out->ns_per_op = (double)wall / (double)items;
  out->ops_per_sec = (double)items * 1e9 / (double)wall;
  // the same timed passes as aether_bench_queue: every round trip, or 65536-item slices of a throughput run
  const uint64_t n = round_trip ? (items < 1000000 ? items : 1000000) : items / AEQB_SLICE;
  if (!round_trip && n < 2) return rc;
  uint32_t *s = (uint32_t *)mmap(nullptr, n * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (s == MAP_FAILED) return -2;
  rc = pass(kind, capacity, round_trip, round_trip ? n : n * AEQB_SLICE, s, &wall);
  if (rc == 0) {
    std::sort(s, s + n);
    const double per = round_trip ? 1.0 : (double)AEQB_SLICE;
    auto pct = [&](double q) {
      const double t = s[(size_t)((double)(n - 1) * q)];
      return (t > tick_overhead_v ? t - tick_overhead_v : 0) * ns_per_tick_v / per;
    };
    out->p50_ns = pct(0.5), out->p90_ns = pct(0.9), out->p99_ns = pct(0.99), out->p999_ns = pct(0.999), out->max_ns = pct(1.0);
    out->samples = n;
  }
  munmap(s, n * 4);
  return rc;
}
}
