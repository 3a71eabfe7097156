/* bench_hist.c: the latency histogram every timed loop feeds.
 *
 * The layout is HdrHistogram's log-linear one. A value is counted in units of 1/16 ns. Values below 2^SUB
 * (SUB = 6: 64 units, 4 ns) each have their own bucket; above that, every power of two [2^k, 2^(k+1)) is split
 * into 2^SUB equal buckets of width 2^(k-SUB). So a recorded value is known to within 1/64 (1.6%) of itself
 * at any magnitude, recording is O(1) with no allocation, memory is constant (3,776 buckets, 30 KiB) however
 * many operations are recorded, and two histograms merge by adding their buckets. A quantile walks the
 * buckets to the one holding the rank and answers its midpoint, clamped to the exact minimum and maximum.
 *
 * The exact recorder of bench.c (every sample kept and sorted, up to its cap) gives the p50..max fields of
 * aether_bench_result; when it finishes it also loads its samples into the calling thread's "last" histogram,
 * so any timed loop's full distribution can be read afterwards (aether_histogram_add_last) without changing
 * the result struct that every loop shares. */
#include "bench_internal.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#define AE_HIST_SUB 6
#define AE_HIST_SUBCOUNT (1u << AE_HIST_SUB)
#define AE_HIST_BUCKETS (AE_HIST_SUBCOUNT + (64 - AE_HIST_SUB) * AE_HIST_SUBCOUNT)
#define AE_HIST_UNITS_PER_NS 16.0

struct aether_histogram {
  struct aether_histogram *next; /* in the list of live histograms handed out by aether_histogram_create */
  uint64_t count;
  uint64_t min, max; /* exact, in units */
  double sum;        /* in units, for the mean */
  uint64_t buckets[AE_HIST_BUCKETS];
};

static inline unsigned bucket_of(uint64_t v) {
  if (v < AE_HIST_SUBCOUNT) return (unsigned)v;
  const unsigned msb = 63u - (unsigned)__builtin_clzll(v);
  return AE_HIST_SUBCOUNT + (msb - AE_HIST_SUB) * AE_HIST_SUBCOUNT +
         (unsigned)((v >> (msb - AE_HIST_SUB)) & (AE_HIST_SUBCOUNT - 1));
}

/* The smallest value of bucket i and its width, in units. */
static inline void bucket_range(unsigned i, double *lo, double *width) {
  if (i < AE_HIST_SUBCOUNT) {
    *lo = i;
    *width = 1;
    return;
  }
  const unsigned k = (i - AE_HIST_SUBCOUNT) / AE_HIST_SUBCOUNT + AE_HIST_SUB;
  const unsigned sub = (i - AE_HIST_SUBCOUNT) % AE_HIST_SUBCOUNT;
  *width = ldexp(1.0, (int)(k - AE_HIST_SUB));
  *lo = (double)(AE_HIST_SUBCOUNT + sub) * *width;
}

static void hist_reset(aether_histogram *h) {
  h->count = 0;
  h->min = UINT64_MAX;
  h->max = 0;
  h->sum = 0;
  memset(h->buckets, 0, sizeof h->buckets);
}

static inline void hist_add(aether_histogram *h, uint64_t units, uint64_t n) {
  h->buckets[bucket_of(units)] += n;
  h->count += n;
  h->sum += (double)units * (double)n;
  if (units < h->min) h->min = units;
  if (units > h->max) h->max = units;
}

static uint64_t to_units(double ns) {
  const double u = ns * AE_HIST_UNITS_PER_NS + 0.5;
  return u >= 18446744073709549568.0 ? UINT64_MAX : (uint64_t)u;
}

static double quantile_units(const aether_histogram *h, double q) {
  if (h->count == 0) return 0;
  if (q <= 0) return (double)h->min;
  if (q >= 1) return (double)h->max;
  uint64_t rank = (uint64_t)ceil(q * (double)h->count);
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < AE_HIST_BUCKETS; i++) {
    seen += h->buckets[i];
    if (seen >= rank) {
      double lo, w;
      bucket_range(i, &lo, &w);
      double v = lo + (w - 1) / 2;
      if (v < (double)h->min) v = (double)h->min;
      if (v > (double)h->max) v = (double)h->max;
      return v;
    }
  }
  return (double)h->max;
}

/* Memory for a histogram comes from mmap, never from an allocator that may be the one being measured. */
static aether_histogram *hist_new(void) {
  void *p = mmap(NULL, sizeof(aether_histogram), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  aether_histogram *h = p;
  hist_reset(h);
  return h;
}

/* The calling thread's last timed loop. A pointer per thread (not 30 KiB of TLS in every thread of every
 * program that loads the library); mapped on first use and kept for the thread's life. */
static _Thread_local aether_histogram *last_hist;
static _Thread_local bool last_valid;

void _ae_hist_load_last(const uint32_t *sorted_ticks, size_t n, uint64_t overhead, double ns_per_tick) {
  if (last_hist == NULL && (last_hist = hist_new()) == NULL) {
    last_valid = false; /* no memory: add_last says no loop finished rather than merge nothing */
    return;
  }
  hist_reset(last_hist);
  last_valid = true;
  /* The samples are sorted: add each run of equal values at once. */
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && sorted_ticks[j] == sorted_ticks[i]) j++;
    const uint64_t t = sorted_ticks[i] > overhead ? sorted_ticks[i] - overhead : 0;
    hist_add(last_hist, to_units((double)t * ns_per_tick), j - i);
    i = j;
  }
}

/* Histograms handed out, so that a destroyed or made-up pointer is refused without reading memory through it.
 * A list is enough: a program holds a handful, and the public calls are not on any timed path. */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static aether_histogram *live_head;

static bool is_live(const aether_histogram *h) {
  bool found = false;
  pthread_mutex_lock(&live_lock);
  for (const aether_histogram *p = live_head; p != NULL && !found; p = p->next) found = p == h;
  pthread_mutex_unlock(&live_lock);
  return found;
}

#define AE_CHECK_HIST(h, fn)                                                                                   \
  do {                                                                                                         \
    AE_RETURN_ERROR_IF((h) == NULL, AETHER_ERR_INVALID_ARGUMENT, fn ": the histogram is NULL");                \
    AE_RETURN_ERROR_IF(!is_live(h), AETHER_ERR_NOT_INITIALIZED,                                                \
                       fn ": %p is not a live histogram (destroyed, or never created)", (const void *)(h));    \
  } while (0)

aether_status aether_histogram_create(aether_histogram **out) {
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_histogram_create: out is NULL");
  aether_histogram *h = hist_new();
  *out = h;
  AE_RETURN_ERROR_IF(h == NULL, AETHER_ERR_OUT_OF_MEMORY, "aether_histogram_create: cannot map %zu bytes",
                     sizeof(aether_histogram));
  pthread_mutex_lock(&live_lock);
  h->next = live_head;
  live_head = h;
  pthread_mutex_unlock(&live_lock);
  return AETHER_OK;
}

void aether_histogram_destroy(aether_histogram *h) {
  if (h == NULL) return;
  bool found = false;
  pthread_mutex_lock(&live_lock);
  for (aether_histogram **p = &live_head; *p != NULL; p = &(*p)->next) {
    if (*p == h) {
      *p = h->next;
      found = true;
      break;
    }
  }
  pthread_mutex_unlock(&live_lock);
  if (!found) return;
  munmap(h, sizeof *h);
}

aether_status aether_histogram_reset(aether_histogram *h) {
  AE_CHECK_HIST(h, "aether_histogram_reset");
  hist_reset(h);
  return AETHER_OK;
}

aether_status aether_histogram_record(aether_histogram *h, double ns, uint64_t count) {
  AE_CHECK_HIST(h, "aether_histogram_record");
  AE_RETURN_ERROR_IF(!isfinite(ns) || ns < 0, AETHER_ERR_OUT_OF_RANGE,
                     "aether_histogram_record: %g ns is not a finite, non-negative latency", ns);
  AE_RETURN_ERROR_IF(count == 0, AETHER_ERR_INVALID_ARGUMENT, "aether_histogram_record: count is 0");
  hist_add(h, to_units(ns), count);
  return AETHER_OK;
}

static void hist_merge(aether_histogram *dst, const aether_histogram *src) {
  if (src == dst) {
    for (unsigned i = 0; i < AE_HIST_BUCKETS; i++) dst->buckets[i] *= 2;
    dst->count *= 2;
    dst->sum *= 2;
    return;
  }
  if (src->count == 0) return;
  for (unsigned i = 0; i < AE_HIST_BUCKETS; i++) dst->buckets[i] += src->buckets[i];
  dst->count += src->count;
  dst->sum += src->sum;
  if (src->min < dst->min) dst->min = src->min;
  if (src->max > dst->max) dst->max = src->max;
}

aether_status aether_histogram_merge(aether_histogram *dst, const aether_histogram *src) {
  AE_CHECK_HIST(dst, "aether_histogram_merge");
  AE_CHECK_HIST(src, "aether_histogram_merge");
  hist_merge(dst, src);
  return AETHER_OK;
}

aether_status aether_histogram_add_last(aether_histogram *dst) {
  AE_CHECK_HIST(dst, "aether_histogram_add_last");
  AE_RETURN_ERROR_IF(!last_valid, AETHER_ERR_NOT_INITIALIZED,
                     "aether_histogram_add_last: no timed loop has finished on this thread");
  hist_merge(dst, last_hist);
  return AETHER_OK;
}

uint64_t aether_histogram_count(const aether_histogram *h) { return h != NULL && is_live(h) ? h->count : 0; }

aether_status aether_histogram_quantiles(const aether_histogram *h, const double *q, double *out_ns, size_t n) {
  AE_CHECK_HIST(h, "aether_histogram_quantiles");
  AE_RETURN_ERROR_IF(n > 0 && (q == NULL || out_ns == NULL), AETHER_ERR_INVALID_ARGUMENT,
                     "aether_histogram_quantiles: q or out_ns is NULL");
  for (size_t i = 0; i < n; i++)
    AE_RETURN_ERROR_IF(!(q[i] >= 0 && q[i] <= 1), AETHER_ERR_OUT_OF_RANGE,
                       "aether_histogram_quantiles: q[%zu] = %g is not in [0, 1]", i, q[i]);
  for (size_t i = 0; i < n; i++) out_ns[i] = quantile_units(h, q[i]) / AE_HIST_UNITS_PER_NS;
  return AETHER_OK;
}

double aether_histogram_mean_between(const aether_histogram *h, double qlo, double qhi) {
  if (h == NULL || !is_live(h) || h->count == 0 || !(qlo >= 0 && qhi <= 1 && qlo < qhi)) return 0;
  /* The ranks [lo, hi) of the sorted values, taken bucket by bucket, partial buckets pro rata. */
  const double lo = qlo * (double)h->count, hi = qhi * (double)h->count;
  double seen = 0, sum = 0, weight = 0;
  for (unsigned i = 0; i < AE_HIST_BUCKETS && seen < hi; i++) {
    if (h->buckets[i] == 0) continue;
    const double b0 = seen, b1 = seen + (double)h->buckets[i];
    seen = b1;
    const double w = (b1 < hi ? b1 : hi) - (b0 > lo ? b0 : lo);
    if (w <= 0) continue;
    double blo, bw;
    bucket_range(i, &blo, &bw);
    double v = blo + (bw - 1) / 2;
    if (v < (double)h->min) v = (double)h->min;
    if (v > (double)h->max) v = (double)h->max;
    sum += w * v;
    weight += w;
  }
  return weight > 0 ? sum / weight / AE_HIST_UNITS_PER_NS : 0;
}

double aether_histogram_mean(const aether_histogram *h) {
  if (h == NULL || !is_live(h) || h->count == 0) return 0;
  return h->sum / (double)h->count / AE_HIST_UNITS_PER_NS;
}
