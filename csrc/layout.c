/* layout.c: the region-layout engine of the "Memory Allocation Mathematical Specification": alignment,
 * permissions from ELF flags, overlap detection, validation, utilization and fragmentation, and a fresh
 * sequential layout in page-aligned permission groups.
 *
 * Overlaps. The specification's first version checks every new region against every placed one, O(n^2) in
 * all. Here the regions are sorted by base once (O(n log n)) and swept: in that order a region can only meet
 * the regions after it whose base lies below its end, and those form a contiguous run, so the pairs that
 * intersect are listed in O(n log n + pairs) and counted in O(n log n) with one binary search per region.
 * Ends are computed in 128 bits, so a region reaching (or, invalidly, passing) 2^64 still compares correctly.
 *
 * Regions that take no address space intersect nothing: a region of size 0 is the empty set (the
 * specification's interval test would call an empty region inside another intersecting, which no linker
 * does), and a zero-fill TLS template (.tbss) is only the image each thread's block is made from; ld lays it
 * over the sections that follow it on purpose. */
#include "bench_internal.h"

#include <stdlib.h>
#include <string.h>

#define SHF_WRITE 0x1u
#define SHF_ALLOC 0x2u
#define SHF_EXECINSTR 0x4u

typedef unsigned __int128 u128;

/* The structs cross the FFI (cli/native/layout.ts reads them at fixed offsets): pin their sizes. */
_Static_assert(sizeof(aether_region) == 32, "aether_region is 32 bytes");
_Static_assert(sizeof(aether_layout_pair) == 8, "aether_layout_pair is 8 bytes");
_Static_assert(sizeof(aether_layout_report) == 112, "aether_layout_report is 112 bytes");

/* align(addr, a) into *out; false when the result would pass 2^64 - 1. */
static inline bool align_up(uint64_t addr, uint64_t a, uint64_t *out) {
  if (a <= 1) {
    *out = addr;
    return true;
  }
  if ((a & (a - 1)) == 0) {
    /* The bit path: exact, since 2^64 is a multiple of a, the sum overflows exactly when the result would. */
    if (addr > UINT64_MAX - (a - 1)) return false;
    *out = (addr + a - 1) & ~(a - 1);
    return true;
  }
  const uint64_t r = addr % a;
  if (r == 0) {
    *out = addr;
    return true;
  }
  if (a - r > UINT64_MAX - addr) return false;
  *out = addr + (a - r);
  return true;
}

static inline bool takes_space(const aether_region *r) {
  const unsigned tbss = AETHER_REGION_TLS | AETHER_REGION_ZERO_FILL;
  return r->size > 0 && (r->kind & tbss) != tbss;
}

static inline u128 end_of(const aether_region *r) { return (u128)r->base + r->size; }

aether_status aether_layout_align(uint64_t addr, uint64_t alignment, uint64_t *out) {
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_layout_align: out is NULL");
  AE_RETURN_ERROR_IF(!align_up(addr, alignment, out), AETHER_ERR_SIZE_OVERFLOW,
                     "align(%#" PRIx64 ", %#" PRIx64 ") passes 2^64 - 1", addr, alignment);
  return AETHER_OK;
}

uint32_t aether_layout_permissions(uint64_t f) {
  if ((f & (SHF_ALLOC | SHF_WRITE | SHF_EXECINSTR)) == 0) return AETHER_PERM_NONE;
  return AETHER_PERM_READ | ((f & SHF_WRITE) ? AETHER_PERM_WRITE : 0u) | ((f & SHF_EXECINSTR) ? AETHER_PERM_EXEC : 0u);
}

/* -------------------------------------------------------------------------------------- overlaps --- */
typedef struct span {
  u128 end;
  uint64_t base;
  uint32_t index;
} span;

static int by_base(const void *x, const void *y) {
  const span *a = x, *b = y;
  if (a->base != b->base) return a->base < b->base ? -1 : 1;
  if (a->end != b->end) return a->end < b->end ? -1 : 1;
  return a->index < b->index ? -1 : a->index > b->index;
}

/* The regions that take space, sorted by base; *m is how many. NULL (with the error set) when out of memory. */
static span *sorted_spans(const aether_region *r, size_t n, size_t *m) {
  span *s = malloc((n ? n : 1) * sizeof *s);
  if (s == NULL) {
    _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "layout: no memory to sort %zu regions", n);
    return NULL;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (takes_space(&r[i])) s[k++] = (span){.end = end_of(&r[i]), .base = r[i].base, .index = (uint32_t)i};
  qsort(s, k, sizeof *s, by_base);
  *m = k;
  return s;
}

/* The first position after i whose base is at or past s[i].end: the run s[i+1 .. result) meets s[i]. */
static size_t run_end(const span *s, size_t m, size_t i) {
  size_t lo = i + 1, hi = m;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if ((u128)s[mid].base < s[i].end) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* Count (and list up to max) intersecting pairs of s; the first pair goes to *first_a, *first_b (or -1). */
static uint64_t sweep(const span *s, size_t m, aether_layout_pair *pairs, size_t max, int64_t *first_a,
                      int64_t *first_b) {
  uint64_t count = 0;
  size_t listed = 0;
  *first_a = *first_b = -1;
  for (size_t i = 0; i + 1 < m; i++) {
    const size_t e = run_end(s, m, i);
    if (e == i + 1) continue;
    if (*first_a < 0) {
      const uint32_t a = s[i].index, b = s[i + 1].index;
      *first_a = a < b ? a : b;
      *first_b = a < b ? b : a;
    }
    count += e - i - 1;
    for (size_t j = i + 1; j < e && listed < max; j++, listed++) {
      const uint32_t a = s[i].index, b = s[j].index;
      pairs[listed] = (aether_layout_pair){.a = a < b ? a : b, .b = a < b ? b : a};
    }
  }
  return count;
}

static int check_regions(const aether_region *regions, size_t n, const char *fn) {
  AE_RETURN_ERROR_IF(regions == NULL && n != 0, AETHER_ERR_INVALID_ARGUMENT, "%s: regions is NULL", fn);
  AE_RETURN_ERROR_IF(n > UINT32_MAX, AETHER_ERR_OUT_OF_RANGE, "%s: %zu regions, at most 2^32 - 1", fn, n);
  return AETHER_OK;
}

aether_status aether_layout_overlaps(const aether_region *regions, size_t n, uint64_t *count,
                                     aether_layout_pair *pairs, size_t max_pairs) {
  int st = check_regions(regions, n, "aether_layout_overlaps");
  if (st != AETHER_OK) return st;
  AE_RETURN_ERROR_IF(count == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_layout_overlaps: count is NULL");
  AE_RETURN_ERROR_IF(pairs == NULL && max_pairs != 0, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_layout_overlaps: pairs is NULL but max_pairs is %zu", max_pairs);
  size_t m;
  span *s = sorted_spans(regions, n, &m);
  if (s == NULL) return AETHER_ERR_OUT_OF_MEMORY;
  int64_t a, b;
  *count = sweep(s, m, pairs, max_pairs, &a, &b);
  free(s);
  return AETHER_OK;
}

/* ------------------------------------------------------------------------------------ validation --- */
static double ratio(u128 num, u128 den) { return den == 0 ? 0.0 : (double)num / (double)den; }

aether_status aether_layout_validate(const aether_region *regions, size_t n, uint64_t base_address,
                                     aether_layout_report *out) {
  int st = check_regions(regions, n, "aether_layout_validate");
  if (st != AETHER_OK) return st;
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_layout_validate: out is NULL");
  memset(out, 0, sizeof *out);
  out->first_misaligned = out->first_overflow = -1;
  u128 total = 0, max_end = 0;
  uint64_t min_base = UINT64_MAX;
  const u128 top = (u128)1 << 64;
  for (size_t i = 0; i < n; i++) {
    const aether_region *r = &regions[i];
    /* valid_alignment: r.base mod r.alignment = 0 (0 and 1 constrain nothing). */
    if (r->alignment > 1 && r->base % r->alignment != 0) {
      if (out->misaligned++ == 0) out->first_misaligned = (int64_t)i;
    }
    /* within_bounds: r.base + r.size <= 2^64. */
    if (end_of(r) > top) {
      if (out->overflowing++ == 0) out->first_overflow = (int64_t)i;
    }
    if (!takes_space(r)) continue;
    out->regions++;
    total += r->size;
    if (r->base < min_base) min_base = r->base;
    if (end_of(r) > max_end) max_end = end_of(r);
  }
  size_t m;
  span *s = sorted_spans(regions, n, &m);
  if (s == NULL) return AETHER_ERR_OUT_OF_MEMORY;
  out->overlapping_pairs = sweep(s, m, NULL, 0, &out->overlap_a, &out->overlap_b);
  free(s);

  if (out->regions == 0) min_base = 0;
  out->total_size = total > UINT64_MAX ? UINT64_MAX : (uint64_t)total;
  out->min_base = min_base;
  out->max_end = max_end > UINT64_MAX ? UINT64_MAX : (uint64_t)max_end;
  /* eta = sum size_i / (max_i(base_i + size_i) - base_address); delta = 1 - sum / (max end - min base). */
  out->utilization = max_end > base_address ? ratio(total, max_end - base_address) : 0.0;
  out->fragmentation = out->regions > 0 && max_end > min_base ? 1.0 - ratio(total, max_end - min_base) : 0.0;
  out->valid = out->misaligned == 0 && out->overflowing == 0 && out->overlapping_pairs == 0;
  return AETHER_OK;
}

/* ---------------------------------------------------------------------------------- fresh layout --- */
enum { GROUP_EXEC, GROUP_READ_ONLY, GROUP_READ_WRITE, GROUP_ZERO_FILL, GROUPS };

static int group_of(const aether_region *r) {
  if (r->permissions & AETHER_PERM_EXEC) return GROUP_EXEC;
  if (!(r->permissions & AETHER_PERM_WRITE)) return GROUP_READ_ONLY;
  return (r->kind & AETHER_REGION_ZERO_FILL) ? GROUP_ZERO_FILL : GROUP_READ_WRITE;
}

aether_status aether_layout_compute(const aether_region *in, size_t n, uint64_t base, uint64_t header, uint64_t page,
                                    aether_region *out) {
  int st = check_regions(in, n, "aether_layout_compute");
  if (st != AETHER_OK) return st;
  AE_RETURN_ERROR_IF(out == NULL && n != 0, AETHER_ERR_INVALID_ARGUMENT, "aether_layout_compute: out is NULL");
  AE_RETURN_ERROR_IF(!AE_IS_POW2(page), AETHER_ERR_NOT_POWER_OF_TWO, "aether_layout_compute: page %" PRIu64
                     " is not a power of two", page);
  for (size_t i = 0; i < n; i++)
    AE_RETURN_ERROR_IF(in[i].permissions == AETHER_PERM_NONE, AETHER_ERR_INVALID_ARGUMENT,
                       "aether_layout_compute: region %zu has no permissions (it is not loadable)", i);
  AE_RETURN_ERROR_IF(header > UINT64_MAX - base, AETHER_ERR_SIZE_OVERFLOW,
                     "aether_layout_compute: base %#" PRIx64 " + header %#" PRIx64 " passes 2^64", base, header);
  uint64_t cur = base + header;
  /* One pass per group keeps input order inside a group without sorting (n is small: sections). */
  for (int g = 0; g < GROUPS; g++) {
    bool started = false;
    for (size_t i = 0; i < n; i++) {
      if (group_of(&in[i]) != g) continue;
      if (!started) {
        AE_RETURN_ERROR_IF(!align_up(cur, page, &cur), AETHER_ERR_SIZE_OVERFLOW,
                           "aether_layout_compute: the layout passes 2^64 at region %zu", i);
        started = true;
      }
      aether_region r = in[i];
      AE_RETURN_ERROR_IF(!align_up(cur, r.alignment, &r.base), AETHER_ERR_SIZE_OVERFLOW,
                         "aether_layout_compute: the layout passes 2^64 at region %zu", i);
      /* required_size = max(size, alignment), as the specification advances the cursor. */
      const uint64_t required = r.size > r.alignment ? r.size : r.alignment;
      const unsigned tbss = AETHER_REGION_TLS | AETHER_REGION_ZERO_FILL;
      if ((r.kind & tbss) != tbss) {
        AE_RETURN_ERROR_IF(required > UINT64_MAX - r.base, AETHER_ERR_SIZE_OVERFLOW,
                           "aether_layout_compute: region %zu at %#" PRIx64 " of %" PRIu64 " bytes passes 2^64", i,
                           r.base, required);
        cur = r.base + required;
      }
      out[i] = r;
    }
  }
  return AETHER_OK;
}

/* ------------------------------------------------------------------------------------- benchmark --- */
/* The O(n^2) check of the specification's first version: every region against every other. */
static uint64_t naive_overlaps(const aether_region *r, size_t n) {
  uint64_t count = 0;
  for (size_t i = 0; i < n; i++) {
    if (!takes_space(&r[i])) continue;
    for (size_t j = i + 1; j < n; j++) {
      if (!takes_space(&r[j])) continue;
      /* intersects(r1, r2) = not (r1.end <= r2.start or r2.end <= r1.start) */
      if (!(end_of(&r[i]) <= r[j].base || end_of(&r[j]) <= r[i].base)) count++;
    }
  }
  return count;
}

aether_status aether_bench_layout_overlaps(uint64_t n, int method, uint32_t reps, struct aether_bench_result *out) {
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_bench_layout_overlaps: out is NULL");
  AE_RETURN_ERROR_IF(method != 0 && method != 1, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_bench_layout_overlaps: method %d is not 0 (sweep) or 1 (all pairs)", method);
  const uint64_t max_n = method == 0 ? (1u << 24) : (1u << 16);
  AE_RETURN_ERROR_IF(n == 0 || n > max_n, AETHER_ERR_OUT_OF_RANGE,
                     "aether_bench_layout_overlaps: n %" PRIu64 " is not in [1, %" PRIu64 "] for this method", n, max_n);
  AE_RETURN_ERROR_IF(reps == 0 || reps > 100000, AETHER_ERR_OUT_OF_RANGE,
                     "aether_bench_layout_overlaps: reps %u is not in [1, 100000]", reps);
  aether_region *r = malloc(n * sizeof *r);
  AE_RETURN_ERROR_IF(r == NULL, AETHER_ERR_OUT_OF_MEMORY, "aether_bench_layout_overlaps: no memory for %" PRIu64
                     " regions", n);
  /* Disjoint regions in shuffled order: the worst case for the all-pairs scan (it can never stop early) and a
   * real sort for the sweep. Slot i holds one region of 1..4096 bytes at i * 4096. */
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (uint64_t i = 0; i < n; i++) r[i] = (aether_region){.base = i * 4096, .alignment = 16, .permissions = AETHER_PERM_READ};
  for (uint64_t i = n - 1; i > 0; i--) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    const uint64_t j = x % (i + 1);
    const uint64_t b = r[i].base;
    r[i].base = r[j].base;
    r[j].base = b;
  }
  for (uint64_t i = 0; i < n; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    r[i].size = 1 + x % 4096;
  }
  ae_latency lat;
  if (!_ae_latency_init(&lat, reps)) {
    free(r);
    return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "aether_bench_layout_overlaps: no memory for the samples");
  }
  memset(out, 0, sizeof *out);
  const uint64_t t0 = _ae_now_ns();
  for (uint32_t k = 0; k < reps; k++) {
    const uint64_t a = _ae_ticks();
    uint64_t c = 0;
    if (method == 0) {
      if (aether_layout_overlaps(r, (size_t)n, &c, NULL, 0) != AETHER_OK) {
        free(r);
        _ae_latency_finish(&lat, out);
        return aether_last_status();
      }
    } else {
      c = naive_overlaps(r, (size_t)n);
    }
    _ae_latency_add(&lat, _ae_ticks() - a);
    _ae_escape(c);
  }
  const uint64_t elapsed = _ae_now_ns() - t0;
  free(r);
  out->ops = reps;
  out->elapsed_ns = elapsed;
  out->ns_per_op = (double)elapsed / reps;
  out->ops_per_sec = elapsed ? (double)reps * 1e9 / (double)elapsed : 0.0;
  _ae_latency_finish(&lat, out);
  return AETHER_OK;
}
