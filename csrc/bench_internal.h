/* bench_internal.h: what every benchmark loop in the library shares: a cycle-accurate clock calibrated to
 * nanoseconds, a latency recorder that yields true per-operation percentiles, and a thread launcher that
 * starts workers together (optionally pinned) and measures the wall time of the whole group. */
#ifndef AETHER_BENCH_INTERNAL_H
#define AETHER_BENCH_INTERNAL_H

#include "internal.h"

#include <stdbool.h>

/* Keep a benchmark's result alive without storing it anywhere: the empty asm takes the value as an input the
 * compiler must compute. (A volatile global "sink" written by several timing threads at once is a data race,
 * which TSan reports, and undefined behaviour in C11.) */
#define _ae_escape(v) __asm__ volatile("" : : "g"(v) : "memory")

#if defined(__x86_64__)
#include <x86intrin.h>
static inline uint64_t _ae_ticks(void) {
  _mm_lfence(); /* keep the read from drifting before the code being timed */
  const uint64_t t = __rdtsc();
  _mm_lfence();
  return t;
}
#else
static inline uint64_t _ae_ticks(void) { return _ae_now_ns(); }
#endif

/* Nanoseconds per tick (calibrated once against CLOCK_MONOTONIC) and the cost of one empty timed region. */
double _ae_ns_per_tick(void);
uint64_t _ae_tick_overhead(void);

/* A latency recorder: up to cap samples in ticks, kept in mmap'd memory (never the allocator under test). */
typedef struct ae_latency {
  uint32_t *ticks;
  size_t count, cap;
} ae_latency;
bool _ae_latency_init(ae_latency *l, size_t cap);
static inline void _ae_latency_add(ae_latency *l, uint64_t ticks) {
  if (l->count < l->cap) l->ticks[l->count++] = ticks > UINT32_MAX ? UINT32_MAX : (uint32_t)ticks;
}
/* Subtract the timer overhead, sort, and fill the percentile fields of out (in ns). Frees the samples. */
void _ae_latency_finish(ae_latency *l, aether_bench_result *out);
/* Merge src into dst (dst keeps its cap); frees src. */
void _ae_latency_merge(ae_latency *dst, ae_latency *src);
/* Load n sorted tick samples (each less the timer overhead) into the calling thread's "last" histogram
 * (bench_hist.c), replacing what it held; _ae_latency_finish calls it, so every timed loop leaves its full
 * distribution for aether_histogram_add_last. */
void _ae_hist_load_last(const uint32_t *sorted_ticks, size_t n, uint64_t overhead, double ns_per_tick);

/* Run fn(arg_i, index) on n threads released together; returns the wall time in ns from release to the last
 * thread's end, or 0 if a thread could not be started. With pin, thread i runs on CPU i % ncpu. */
typedef void ae_bench_fn(void *arg, uint32_t index);
uint64_t _ae_run_threads(uint32_t n, bool pin, ae_bench_fn *fn, void *arg);

/* After an untimed pass of `pairs` operations per thread took `wall` ns: fill out's throughput fields, then run
 * fn again with every operation timed (the worker reads *job_timed and *job_pairs, records into lat[thread],
 * up to 1M samples per thread) and fill the percentiles. */
void _ae_bench_pairs_result(aether_bench_result *out, uint64_t wall, uint64_t pairs, uint32_t threads,
                            ae_bench_fn *fn, void *job, uint64_t *job_pairs, bool *job_timed, ae_latency *lat);

#endif
