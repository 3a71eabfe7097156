/* layout: the region-layout engine (aether_layout_*) against models computed in 128-bit arithmetic.
 *
 * The input gives up to 48 regions (bases, sizes and alignments from small to near 2^64, powers of two or
 * not, zero sizes, TLS and zero-fill kinds, any permissions) and the parameters of each call. Checked:
 * - align: the least multiple of the alignment at or above the address, SIZE_OVERFLOW exactly when it passes
 *   2^64 - 1; permissions: the documented mapping of ELF section flags;
 * - overlaps: the sweep's count equals the all-pairs count, its listed pairs are the first max_pairs in
 *   address order, each a real intersection with a < b, none repeated;
 * - validate: every field of the report (counts, first indices, bounds, the first overlapping pair,
 *   utilization and fragmentation) equals the model's;
 * - compute: every base equals the model's placement (permission groups, page starts, the cursor advancing
 *   by max(size, alignment)), or SIZE_OVERFLOW / NOT_POWER_OF_TWO / INVALID_ARGUMENT exactly when the model
 *   says so; in place (out == in) gives the same result;
 * - no overflow, out-of-bounds access or undefined behaviour (ASan, UBSan).
 * libFuzzer options: -max_len=4096
 */
#include "fuzz_helpers.h"

#include "aether.h"

#define MAX_REGIONS 48
typedef unsigned __int128 u128;
static const u128 TOP = (u128)1 << 64;

static uint64_t pick_u64(fuzz_producer *p) {
  switch (fuzz_u8(p) % 8) {
    case 0: return 0;
    case 1: return fuzz_range64(p, 0, 64);
    case 2: return fuzz_range64(p, 0, 1 << 20);
    case 3: return (uint64_t)1 << fuzz_range32(p, 0, 63);
    case 4: return UINT64_MAX - fuzz_range64(p, 0, 1 << 16);
    case 5: return 0x400000 + fuzz_range64(p, 0, 1 << 24);
    default: return fuzz_u64(p);
  }
}

static uint64_t pick_align(fuzz_producer *p) {
  switch (fuzz_u8(p) % 6) {
    case 0: return 0;
    case 1: return 1;
    case 2: return (uint64_t)1 << fuzz_range32(p, 0, 16);
    case 3: return fuzz_range64(p, 2, 100); /* not always a power of two */
    case 4: return (uint64_t)1 << fuzz_range32(p, 17, 63);
    default: return fuzz_u64(p);
  }
}

static bool takes_space(const aether_region *r) {
  return r->size > 0 && (r->kind & (AETHER_REGION_TLS | AETHER_REGION_ZERO_FILL)) != (AETHER_REGION_TLS | AETHER_REGION_ZERO_FILL);
}
static u128 end_of(const aether_region *r) { return (u128)r->base + r->size; }
static bool meet(const aether_region *a, const aether_region *b) {
  return takes_space(a) && takes_space(b) && !(end_of(a) <= b->base || end_of(b) <= a->base);
}

/* align in 128 bits: the least multiple of a at or above addr (a <= 1: addr), or -1 past 2^64 - 1. */
static bool model_align(uint64_t addr, uint64_t a, uint64_t *out) {
  if (a <= 1) {
    *out = addr;
    return true;
  }
  const u128 r = ((u128)addr + a - 1) / a * a;
  if (r >= TOP) return false;
  *out = (uint64_t)r;
  return true;
}

static aether_region regions[MAX_REGIONS], out1[MAX_REGIONS], out2[MAX_REGIONS];

/* Regions that take space, in the engine's address order: by base, then end, then index. */
static size_t address_order(size_t n, uint32_t *order) {
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (takes_space(&regions[i])) order[m++] = (uint32_t)i;
  for (size_t i = 1; i < m; i++) { /* insertion sort: n is small */
    const uint32_t x = order[i];
    size_t j = i;
    while (j > 0) {
      const aether_region *a = &regions[order[j - 1]], *b = &regions[x];
      const bool after = a->base > b->base || (a->base == b->base && (end_of(a) > end_of(b) || (end_of(a) == end_of(b) && order[j - 1] > x)));
      if (!after) break;
      order[j] = order[j - 1];
      j--;
    }
    order[j] = x;
  }
  return m;
}

static void check_overlaps(size_t n, size_t max_pairs) {
  uint32_t order[MAX_REGIONS];
  const size_t m = address_order(n, order);
  /* The expected listing: for each region in address order, the later ones (in that order) it meets. */
  aether_layout_pair want[MAX_REGIONS * MAX_REGIONS];
  size_t count = 0;
  for (size_t i = 0; i < m; i++)
    for (size_t j = i + 1; j < m; j++)
      if (meet(&regions[order[i]], &regions[order[j]])) {
        const uint32_t a = order[i], b = order[j];
        want[count++] = (aether_layout_pair){a < b ? a : b, a < b ? b : a};
      }
  size_t brute = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++) brute += meet(&regions[i], &regions[j]);
  FUZZ_ASSERT(brute == count);
  static aether_layout_pair got[MAX_REGIONS * MAX_REGIONS];
  uint64_t c = 0;
  FUZZ_ASSERT(aether_layout_overlaps(regions, n, &c, max_pairs ? got : NULL, max_pairs) == AETHER_OK);
  FUZZ_ASSERT_MSG(c == count, "overlaps: counted %llu pairs, all-pairs says %zu", (unsigned long long)c, count);
  const size_t listed = count < max_pairs ? count : max_pairs;
  for (size_t k = 0; k < listed; k++)
    FUZZ_ASSERT_MSG(got[k].a == want[k].a && got[k].b == want[k].b, "overlaps: pair %zu is (%u, %u), expected (%u, %u)", k,
                    got[k].a, got[k].b, want[k].a, want[k].b);
}

static void check_validate(size_t n, uint64_t base_address) {
  aether_layout_report r;
  FUZZ_ASSERT(aether_layout_validate(regions, n, base_address, &r) == AETHER_OK);
  uint64_t count = 0, misaligned = 0, overflowing = 0, pairs = 0;
  int64_t first_mis = -1, first_over = -1;
  u128 total = 0, max_end = 0;
  uint64_t min_base = 0;
  for (size_t i = 0; i < n; i++) {
    const aether_region *x = &regions[i];
    if (x->alignment > 1 && x->base % x->alignment && misaligned++ == 0) first_mis = (int64_t)i;
    if (end_of(x) > TOP && overflowing++ == 0) first_over = (int64_t)i;
    if (!takes_space(x)) continue;
    if (count++ == 0 || x->base < min_base) min_base = x->base;
    total += x->size;
    if (end_of(x) > max_end) max_end = end_of(x);
  }
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++) pairs += meet(&regions[i], &regions[j]);
  uint32_t order[MAX_REGIONS];
  const size_t m = address_order(n, order);
  int64_t oa = -1, ob = -1;
  for (size_t i = 0; i + 1 < m && oa < 0; i++)
    if (meet(&regions[order[i]], &regions[order[i + 1]])) {
      oa = order[i] < order[i + 1] ? order[i] : order[i + 1];
      ob = order[i] < order[i + 1] ? order[i + 1] : order[i];
    }
  FUZZ_ASSERT_MSG(r.regions == count && r.misaligned == misaligned && r.overflowing == overflowing &&
                      r.first_misaligned == first_mis && r.first_overflow == first_over && r.overlapping_pairs == pairs,
                  "validate: counts differ from the model (regions %llu/%llu, misaligned %llu/%llu, overflowing %llu/%llu, pairs %llu/%llu)",
                  (unsigned long long)r.regions, (unsigned long long)count, (unsigned long long)r.misaligned,
                  (unsigned long long)misaligned, (unsigned long long)r.overflowing, (unsigned long long)overflowing,
                  (unsigned long long)r.overlapping_pairs, (unsigned long long)pairs);
  FUZZ_ASSERT_MSG(r.overlap_a == oa && r.overlap_b == ob, "validate: first overlapping pair (%lld, %lld), expected (%lld, %lld)",
                  (long long)r.overlap_a, (long long)r.overlap_b, (long long)oa, (long long)ob);
  FUZZ_ASSERT(r.total_size == (total > UINT64_MAX ? UINT64_MAX : (uint64_t)total));
  FUZZ_ASSERT(r.min_base == min_base && r.max_end == (max_end > UINT64_MAX ? UINT64_MAX : (uint64_t)max_end));
  FUZZ_ASSERT(r.valid == (misaligned == 0 && overflowing == 0 && pairs == 0));
  const double util = max_end > base_address ? (double)total / (double)(max_end - base_address) : 0.0;
  const double frag = count > 0 && max_end > min_base ? 1.0 - (double)total / (double)(max_end - min_base) : 0.0;
  FUZZ_ASSERT_MSG(r.utilization == util && r.fragmentation == frag, "validate: utilization %g / fragmentation %g, expected %g / %g",
                  r.utilization, r.fragmentation, util, frag);
}

static int group_of(const aether_region *r) {
  if (r->permissions & AETHER_PERM_EXEC) return 0;
  if (!(r->permissions & AETHER_PERM_WRITE)) return 1;
  return (r->kind & AETHER_REGION_ZERO_FILL) ? 3 : 2;
}

static void check_compute(size_t n, uint64_t base, uint64_t header, uint64_t page) {
  int want = AETHER_OK;
  uint64_t bases[MAX_REGIONS] = {0};
  if (page == 0 || (page & (page - 1))) want = AETHER_ERR_NOT_POWER_OF_TWO;
  for (size_t i = 0; i < n && want == AETHER_OK; i++)
    if (regions[i].permissions == AETHER_PERM_NONE) want = AETHER_ERR_INVALID_ARGUMENT;
  if (want == AETHER_OK) {
    u128 cur = (u128)base + header;
    if (cur >= TOP) want = AETHER_ERR_SIZE_OVERFLOW;
    for (int g = 0; g < 4 && want == AETHER_OK; g++) {
      bool started = false;
      for (size_t i = 0; i < n && want == AETHER_OK; i++) {
        const aether_region *r = &regions[i];
        if (group_of(r) != g) continue;
        uint64_t at;
        if (!started) {
          started = true;
          if (!model_align((uint64_t)cur, page, &at)) {
            want = AETHER_ERR_SIZE_OVERFLOW;
            break;
          }
          cur = at;
        }
        if (!model_align((uint64_t)cur, r->alignment, &at)) {
          want = AETHER_ERR_SIZE_OVERFLOW;
          break;
        }
        bases[i] = at;
        const bool tbss = (r->kind & (AETHER_REGION_TLS | AETHER_REGION_ZERO_FILL)) == (AETHER_REGION_TLS | AETHER_REGION_ZERO_FILL);
        if (!tbss) {
          const u128 next = (u128)at + (r->size > r->alignment ? r->size : r->alignment);
          if (next > UINT64_MAX) { /* the engine's cursor is a uint64_t: reaching 2^64 passes it */
            want = AETHER_ERR_SIZE_OVERFLOW;
            break;
          }
          cur = next;
        }
      }
    }
  }
  const int st = aether_layout_compute(regions, n, base, header, page, out1);
  FUZZ_ASSERT_MSG(st == want, "compute: status %s (%s), the model says %s", aether_error_name(st), aether_last_error(),
                  aether_error_name(want));
  if (st != AETHER_OK) return;
  for (size_t i = 0; i < n; i++) {
    aether_region expect = regions[i];
    expect.base = bases[i];
    FUZZ_ASSERT_MSG(memcmp(&out1[i], &expect, sizeof expect) == 0, "compute: region %zu at %#llx, the model %#llx", i,
                    (unsigned long long)out1[i].base, (unsigned long long)bases[i]);
  }
  memcpy(out2, regions, n * sizeof *regions);
  FUZZ_ASSERT(aether_layout_compute(out2, n, base, header, page, out2) == AETHER_OK);
  FUZZ_ASSERT_MSG(memcmp(out1, out2, n * sizeof *out1) == 0, "compute in place differs from compute into another array");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_producer p = fuzz_producer_make(data, size);
  const size_t n = fuzz_range32(&p, 0, MAX_REGIONS);
  for (size_t i = 0; i < n; i++) {
    aether_region *r = &regions[i];
    r->base = pick_u64(&p);
    r->size = pick_u64(&p);
    r->alignment = pick_align(&p);
    r->tag = (uint32_t)i;
    r->permissions = fuzz_u8(&p) & 7;
    r->kind = fuzz_u8(&p) & 3;
  }
  FUZZ_LOG("%zu regions", n);
  for (size_t i = 0; i < n; i++)
    FUZZ_LOG("  region %zu: base %#llx size %#llx align %#llx perm %u kind %u", i, (unsigned long long)regions[i].base,
             (unsigned long long)regions[i].size, (unsigned long long)regions[i].alignment, regions[i].permissions,
             regions[i].kind);
  /* align and permissions on values of their own */
  const uint64_t addr = pick_u64(&p), a = pick_align(&p), flags = fuzz_u64(&p);
  uint64_t got = 0, want;
  const bool ok = model_align(addr, a, &want);
  const int st = aether_layout_align(addr, a, &got);
  FUZZ_LOG("align(%#llx, %#llx) -> %s %#llx", (unsigned long long)addr, (unsigned long long)a, aether_error_name(st),
           (unsigned long long)got);
  FUZZ_ASSERT_MSG(st == (ok ? AETHER_OK : AETHER_ERR_SIZE_OVERFLOW) && (!ok || got == want),
                  "align(%#llx, %#llx) = %s %#llx, the model %s %#llx", (unsigned long long)addr, (unsigned long long)a,
                  aether_error_name(st), (unsigned long long)got, ok ? "ok" : "overflow", (unsigned long long)want);
  const uint32_t perm = aether_layout_permissions(flags);
  const uint32_t pwant = (flags & 7) == 0 ? 0 : AETHER_PERM_READ | (flags & 1 ? AETHER_PERM_WRITE : 0) | (flags & 4 ? AETHER_PERM_EXEC : 0);
  FUZZ_ASSERT_MSG(perm == pwant, "permissions(%#llx) = %u, expected %u", (unsigned long long)flags, perm, pwant);

  const size_t max_pairs = fuzz_range32(&p, 0, 64);
  FUZZ_LOG("overlaps (max_pairs %zu)", max_pairs);
  check_overlaps(n, max_pairs);
  const uint64_t base_address = pick_u64(&p);
  FUZZ_LOG("validate (base address %#llx)", (unsigned long long)base_address);
  check_validate(n, base_address);
  const uint64_t base = fuzz_bool(&p) ? 0x400000 : pick_u64(&p);
  const uint64_t header = fuzz_bool(&p) ? 0x1000 : pick_u64(&p);
  const uint64_t page = fuzz_bool(&p) ? 0x1000 : pick_align(&p);
  FUZZ_LOG("compute (base %#llx, header %#llx, page %#llx)", (unsigned long long)base, (unsigned long long)header,
           (unsigned long long)page);
  check_compute(n, base, header, page);
  FUZZ_ASSERT(aether_layout_overlaps(NULL, 1, &got, NULL, 0) == AETHER_ERR_INVALID_ARGUMENT);
  FUZZ_LOG("done: no finding");
  return 0;
}
