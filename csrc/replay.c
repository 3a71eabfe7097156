/* replay.c: replaying an allocation trace in a device pool, and the pools' benchmark loops. Every operation is
 * timed by itself with the cycle counter (bench_internal.h), so the percentiles are true per-operation ones;
 * the loops run in C, so no FFI cost is in them. */
#include "bench_internal.h"
#include "devpool_internal.h"
#include "trace_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int aether_devpool_replay(aether_devpool *dp, uint32_t ctx, const aether_trace *trace, aether_replay_result *out,
                          aether_bench_result *alloc_lat, aether_bench_result *free_lat, aether_replay_point *timeline,
                          size_t max_points) {
  AE_RETURN_ERROR_IF(dp == NULL || trace == NULL || out == NULL, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_devpool_replay: dp, trace or out is NULL");
  AE_RETURN_ERROR_IF(timeline == NULL && max_points != 0, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_devpool_replay: timeline is NULL");
  memset(out, 0, sizeof *out);
  aether_devpool_stats st;
  int rc = aether_devpool_context_stats(dp, ctx, &st);
  if (rc != AETHER_OK) return rc;
  const uint64_t ids = trace->info.ids ? trace->info.ids : 1;
  uint64_t *handles = calloc(ids, sizeof *handles);
  AE_RETURN_ERROR_IF(handles == NULL, AETHER_ERR_OUT_OF_MEMORY, "aether_devpool_replay: no memory for %" PRIu64 " handles",
                     ids);
  ae_latency la, lf;
  if (!_ae_latency_init(&la, alloc_lat ? trace->info.allocs : 0) || !_ae_latency_init(&lf, free_lat ? trace->info.frees : 0)) {
    free(handles);
    return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "aether_devpool_replay: no memory for the latency samples");
  }
  (void)_ae_ns_per_tick(); /* calibrate before anything is timed */
  const uint64_t n = trace->n;
  const uint64_t every = max_points ? (n + max_points - 1) / max_points : 0;
  uint64_t live = 0, peak_live = 0, peak_point_live = 0;
  double frag_sum = 0;
  for (uint64_t i = 0; i < n; i++) {
    const ae_trace_op *op = &trace->ops[i];
    if (op->kind == AE_TRACE_ALLOC) {
      const uint64_t t0 = _ae_ticks();
      rc = aether_devpool_alloc(dp, ctx, op->size, 0, &handles[op->id]);
      const uint64_t t1 = _ae_ticks();
      _ae_latency_add(&la, t1 - t0);
      out->allocs++;
      if (rc != AETHER_OK) {
        out->failures++;
        handles[op->id] = 0;
      } else {
        live += op->size;
        if (live > peak_live) peak_live = live;
      }
    } else if (handles[op->id]) {
      const uint64_t t0 = _ae_ticks();
      rc = aether_devpool_free(dp, ctx, handles[op->id]);
      const uint64_t t1 = _ae_ticks();
      _ae_latency_add(&lf, t1 - t0);
      out->frees++;
      handles[op->id] = 0;
      if (rc == AETHER_OK) live -= op->size;
    }
    out->ops++;
    if (every && ((i + 1) % every == 0 || i + 1 == n) && out->points < max_points) {
      (void)aether_devpool_context_stats(dp, ctx, &st);
      timeline[out->points++] = (aether_replay_point){
          .op = i + 1, .live_bytes = live, .reserved_bytes = st.reserved_bytes, .fragmentation = st.fragmentation};
      frag_sum += st.fragmentation;
      if (st.fragmentation > out->fragmentation_max) out->fragmentation_max = st.fragmentation;
      if (live >= peak_point_live) {
        peak_point_live = live;
        out->fragmentation_at_peak = st.fragmentation;
      }
    }
  }
  (void)aether_devpool_context_stats(dp, ctx, &st);
  out->peak_live_bytes = peak_live;
  out->peak_reserved_bytes = st.peak_reserved_bytes;
  out->ratio = peak_live ? (double)st.peak_reserved_bytes / (double)peak_live : 0.0;
  out->fragmentation_mean = out->points ? frag_sum / (double)out->points : 0.0;
  for (uint64_t i = 0; i < ids; i++)
    if (handles[i]) (void)aether_devpool_free(dp, ctx, handles[i]);
  (void)aether_devpool_context_stats(dp, ctx, &st);
  out->final_reserved_bytes = st.reserved_bytes;
  free(handles);
  aether_bench_result tmp;
  _ae_latency_finish(&la, alloc_lat ? alloc_lat : &tmp);
  _ae_latency_finish(&lf, free_lat ? free_lat : &tmp);
  if (alloc_lat) alloc_lat->ops = out->allocs;
  if (free_lat) free_lat->ops = out->frees;
  aether_clear_error(); /* refusals during the replay are counted in failures, not the caller's error */
  return AETHER_OK;
}

/* -------------------------------------------------------------------------------- benchmarks --- */
static int pair(aether_devpool *dp, uint32_t ctx, int mode, uint64_t size, const ae_backend_ops *be, void *bs) {
  if (mode == AETHER_BENCH_DEVPOOL_POOL) {
    uint64_t h;
    int rc = aether_devpool_alloc(dp, ctx, size, 0, &h);
    if (rc == AETHER_OK) rc = aether_devpool_free(dp, ctx, h);
    return rc;
  }
  uint64_t addr;
  int rc = be->alloc(bs, size, 0, &addr);
  if (rc == AETHER_OK) rc = be->release(bs, addr, size, 0);
  return rc;
}

aether_status aether_bench_devpool(aether_devpool *dp, uint32_t ctx, int mode, uint64_t size, uint64_t pairs,
                                   aether_bench_result *out) {
  AE_RETURN_ERROR_IF(dp == NULL || out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_bench_devpool: dp or out is NULL");
  AE_RETURN_ERROR_IF(mode != AETHER_BENCH_DEVPOOL_POOL && mode != AETHER_BENCH_DEVPOOL_RAW, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_bench_devpool: mode %d is not 0 (pool) or 1 (raw backend)", mode);
  AE_RETURN_ERROR_IF(size == 0 || size > ((uint64_t)1 << 30), AETHER_ERR_OUT_OF_RANGE,
                     "aether_bench_devpool: size %" PRIu64 " is not in [1, 2^30]", size);
  AE_RETURN_ERROR_IF(pairs == 0 || pairs > ((uint64_t)1 << 32), AETHER_ERR_OUT_OF_RANGE,
                     "aether_bench_devpool: pairs %" PRIu64 " is not in [1, 2^32]", pairs);
  memset(out, 0, sizeof *out);
  const ae_backend_ops *be;
  void *bs;
  _ae_devpool_backend(dp, &be, &bs);
  (void)_ae_ns_per_tick();
  /* Warm-up (slab, run, handle slots, caches), then an untimed throughput pass, then every pair timed. */
  const uint64_t warm = pairs < 10000 ? pairs : 10000;
  for (uint64_t i = 0; i < warm; i++) {
    const int rc = pair(dp, ctx, mode, size, be, bs);
    if (rc != AETHER_OK) return rc;
  }
  const uint64_t t0 = _ae_now_ns();
  for (uint64_t i = 0; i < pairs; i++) (void)pair(dp, ctx, mode, size, be, bs);
  const uint64_t wall = _ae_now_ns() - t0;
  out->ops = pairs;
  out->elapsed_ns = wall ? wall : 1;
  out->ns_per_op = (double)out->elapsed_ns / (double)pairs;
  out->ops_per_sec = (double)pairs * 1e9 / (double)out->elapsed_ns;
  const uint64_t samples = pairs < 1000000 ? pairs : 1000000;
  ae_latency lat;
  AE_RETURN_ERROR_IF(!_ae_latency_init(&lat, samples), AETHER_ERR_OUT_OF_MEMORY, "aether_bench_devpool: no memory");
  for (uint64_t i = 0; i < samples; i++) {
    const uint64_t a = _ae_ticks();
    (void)pair(dp, ctx, mode, size, be, bs);
    _ae_latency_add(&lat, _ae_ticks() - a);
  }
  _ae_latency_finish(&lat, out);
  return AETHER_OK;
}

aether_status aether_bench_devpool_live(aether_devpool *dp, uint32_t ctx, uint64_t size, uint64_t count,
                                        aether_bench_result *alloc_out, aether_bench_result *free_out) {
  AE_RETURN_ERROR_IF(dp == NULL || alloc_out == NULL || free_out == NULL, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_bench_devpool_live: dp or an out is NULL");
  AE_RETURN_ERROR_IF(size == 0 || size > ((uint64_t)1 << 30), AETHER_ERR_OUT_OF_RANGE,
                     "aether_bench_devpool_live: size %" PRIu64 " is not in [1, 2^30]", size);
  AE_RETURN_ERROR_IF(count == 0 || count > ((uint64_t)1 << 24), AETHER_ERR_OUT_OF_RANGE,
                     "aether_bench_devpool_live: count %" PRIu64 " is not in [1, 2^24]", count);
  memset(alloc_out, 0, sizeof *alloc_out);
  memset(free_out, 0, sizeof *free_out);
  const size_t hbytes = (size_t)count * sizeof(uint64_t);
  uint64_t *h = mmap(NULL, hbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  AE_RETURN_ERROR_IF(h == MAP_FAILED, AETHER_ERR_OUT_OF_MEMORY, "aether_bench_devpool_live: no memory for handles");
  ae_latency la, lf;
  if (!_ae_latency_init(&la, count) || !_ae_latency_init(&lf, count)) {
    munmap(h, hbytes);
    return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "aether_bench_devpool_live: no memory for samples");
  }
  (void)_ae_ns_per_tick();
  int rc = AETHER_OK;
  uint64_t made = 0;
  const uint64_t t0 = _ae_now_ns();
  for (; made < count; made++) {
    const uint64_t a = _ae_ticks();
    rc = aether_devpool_alloc(dp, ctx, size, 0, &h[made]);
    _ae_latency_add(&la, _ae_ticks() - a);
    if (rc != AETHER_OK) break;
  }
  alloc_out->elapsed_ns = _ae_now_ns() - t0;
  alloc_out->ops = made;
  char msg[320] = "";
  if (rc != AETHER_OK) snprintf(msg, sizeof msg, "%s", aether_last_error());
  /* Free in a shuffled order (xorshift Fisher-Yates), the harder case for any free list. */
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (uint64_t i = made; i > 1; i--) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const uint64_t j = x % i;
    const uint64_t t = h[i - 1];
    h[i - 1] = h[j];
    h[j] = t;
  }
  const uint64_t t1 = _ae_now_ns();
  for (uint64_t i = 0; i < made; i++) {
    const uint64_t a = _ae_ticks();
    (void)aether_devpool_free(dp, ctx, h[i]);
    _ae_latency_add(&lf, _ae_ticks() - a);
  }
  free_out->elapsed_ns = _ae_now_ns() - t1;
  free_out->ops = made;
  for (aether_bench_result *r = alloc_out; r; r = r == alloc_out ? free_out : NULL) {
    r->ns_per_op = r->ops ? (double)r->elapsed_ns / (double)r->ops : 0;
    r->ops_per_sec = r->elapsed_ns ? (double)r->ops * 1e9 / (double)r->elapsed_ns : 0;
  }
  _ae_latency_finish(&la, alloc_out);
  _ae_latency_finish(&lf, free_out);
  munmap(h, hbytes);
  if (rc != AETHER_OK) return _ae_fail(rc, "aether_bench_devpool_live: allocation %" PRIu64 " failed: %s", made, msg);
  return AETHER_OK;
}
