/* alloc: the safe allocator against a model of every error it must report.
 *
 * An input is a program of operations (malloc, calloc, aligned_alloc, realloc, free, writes
 * inside blocks, deliberate writes into headers and guards, writes into freed blocks, invalid frees of interior,
 * guard, stack, libc and wild pointers, double frees, frees and allocations from a second thread, check_all,
 * usable_size, stats and live-block listings) side by side with a model of what it must do. Checked:
 * - every error the model expects is reported, with its kind, address, size and detail (the offset of the
 *   first damaged byte), and no other error is reported (the event hook sees every report);
 * - a live block's contents are what the program wrote (realloc preserves them), guards hold 0xDEADBEEF and
 *   freed blocks are poisoned; calloc is zeroed; pointers are aligned as asked; usable_size, the stats and the
 *   live-block list agree with the model; impossible sizes fail cleanly;
 * - nothing crashes (ASan and UBSan watch the allocator's own code).
 * The quarantine is made large and the allocator quiet, so no block is reused within one input; at the end of
 * each input every block is freed and both threads' quarantines are drained (a write after free is reported
 * then), so inputs do not depend on each other.
 * libFuzzer options: -max_len=1024
 */
#include "fuzz_helpers.h"

#include "aether.h"

#include <pthread.h>

#define MAX_RECORDS 96
#define MAX_OPS 400
#define MAX_EVENTS 1024
#define MAX_EXPECT 512
#define HUGE_POISON_MAX ((size_t)64 << 10) /* the allocator poisons (and checks) the first 64 KiB of huge blocks */
#define HEADER_BYTES 24
#define HEADER_CHECKED 16 /* size, magic and checksum; the two stack ids after them are not covered */

static const uint8_t GUARD[4] = {0xEF, 0xBE, 0xAD, 0xDE}; /* 0xDEADBEEF, little-endian */
#define POISON 0xDF

static size_t front_guard, back_guard;

/* --------------------------------------------------------------------------------- the model --- */
enum { ST_LIVE, ST_QUARANTINED };

typedef struct rec {
  uint8_t *p;
  size_t size;
  int state;
  int qowner;            /* whose quarantine holds it: 0 this thread, 1 the helper */
  uint8_t *content;      /* the model's copy of the user bytes (libc memory) */
  uint8_t header[HEADER_BYTES]; /* as the allocator wrote it */
} rec;

static rec recs[MAX_RECORDS];
static size_t nrecs;

/* Expected events: kind is a bit mask of acceptable kinds; size/detail are checked unless ANY. */
#define ANY UINT64_MAX
typedef struct expect {
  uint32_t kinds;
  uint64_t address, size, detail;
} expect;
static expect expected[MAX_EXPECT];
static size_t nexpected;
static uint64_t expected_by_kind[AETHER_MEM_ERROR_KINDS];

static aether_memory_event events[MAX_EVENTS];
static size_t nevents;
static size_t events_overflow;

static void on_error(const aether_memory_event *ev, void *arg) {
  (void)arg;
  if (nevents < MAX_EVENTS) events[nevents++] = *ev;
  else events_overflow++;
}

static void expect_event(uint32_t kinds, const void *addr, uint64_t size, uint64_t detail) {
  FUZZ_ASSERT(nexpected < MAX_EXPECT);
  expected[nexpected++] = (expect){kinds, (uint64_t)(uintptr_t)addr, size, detail};
}
#define K(kind) (1u << (kind))

static const char *kind_name(int k) { return aether_memory_error_kind_name(k); }

/* The events reported since the last call must be exactly the expected ones (in any order). */
static void match_events(const char *what) {
  FUZZ_ASSERT_MSG(events_overflow == 0, "%s: more than %d error events", what, MAX_EVENTS);
  bool used[MAX_EVENTS] = {false};
  for (size_t i = 0; i < nexpected; i++) {
    const expect *e = &expected[i];
    size_t j = 0;
    for (; j < nevents; j++) {
      const aether_memory_event *ev = &events[j];
      if (used[j] || ev->address != e->address || !(e->kinds & K(ev->kind))) continue;
      FUZZ_ASSERT_MSG(e->size == ANY || ev->size == e->size, "%s: %s at %#llx reported size %llu, expected %llu", what,
                      kind_name((int)ev->kind), (unsigned long long)ev->address, (unsigned long long)ev->size,
                      (unsigned long long)e->size);
      FUZZ_ASSERT_MSG(e->detail == ANY || ev->detail == e->detail,
                      "%s: %s at %#llx reported detail %llu, expected %llu", what, kind_name((int)ev->kind),
                      (unsigned long long)ev->address, (unsigned long long)ev->detail, (unsigned long long)e->detail);
      used[j] = true;
      break;
    }
    if (j == nevents) {
      int k = 0;
      while (!(e->kinds & K(k))) k++;
      fuzz_fail(__FILE__, __LINE__, "%s: expected %s%s at %#llx (size %llu), not reported (%zu events reported)", what,
                kind_name(k), (e->kinds & ~K(k)) ? " or similar" : "", (unsigned long long)e->address,
                (unsigned long long)e->size, nevents);
    }
  }
  for (size_t j = 0; j < nevents; j++)
    FUZZ_ASSERT_MSG(used[j], "%s: unexpected %s reported at %#llx (size %llu, detail %llu)", what,
                    kind_name((int)events[j].kind), (unsigned long long)events[j].address,
                    (unsigned long long)events[j].size, (unsigned long long)events[j].detail);
  for (size_t j = 0; j < nevents; j++) expected_by_kind[events[j].kind]++;
  nexpected = 0;
  nevents = 0;
}

/* ------------------------------------------------------------------------- the helper thread --- */
/* Operations another thread must do (a cross-thread free, an allocation whose block then belongs to another
 * thread's cache, that thread's check_all and quarantine drain) are handed to one helper and waited for, so
 * the program stays deterministic. */
enum { H_NONE, H_FREE, H_MALLOC, H_CHECK_ALL, H_DRAIN, H_QUIT };
static pthread_t helper;
static pthread_mutex_t hlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hcond = PTHREAD_COND_INITIALIZER;
static int hop = H_NONE;
static void *harg_ptr;
static size_t harg_size, hresult_size;
static void *hresult_ptr;

static void drain_this_thread(void) {
  /* A free with the quarantine off first evicts (and verifies) everything this thread holds. */
  void *p = aether_safe_malloc(1);
  FUZZ_ASSERT(p != NULL);
  aether_safe_free(p);
}

static void *helper_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&hlock);
  for (;;) {
    while (hop == H_NONE) pthread_cond_wait(&hcond, &hlock);
    if (hop == H_QUIT) break;
    switch (hop) {
      case H_FREE: aether_safe_free(harg_ptr); break;
      case H_MALLOC: hresult_ptr = aether_safe_malloc(harg_size); break;
      case H_CHECK_ALL: hresult_size = aether_memory_check_all(); break;
      case H_DRAIN: drain_this_thread(); break;
      default: break;
    }
    hop = H_NONE;
    pthread_cond_broadcast(&hcond);
  }
  pthread_mutex_unlock(&hlock);
  return NULL;
}

static void on_helper(int op) {
  pthread_mutex_lock(&hlock);
  hop = op;
  pthread_cond_broadcast(&hcond);
  while (hop != H_NONE) pthread_cond_wait(&hcond, &hlock);
  pthread_mutex_unlock(&hlock);
}

/* ------------------------------------------------------------------------------ block checks --- */
static uint8_t guard_byte(size_t i) { return GUARD[i % 4]; }

/* Offset (from the guard's first byte) of the first byte that is not the pattern, or SIZE_MAX. */
static FUZZ_NO_COVERAGE size_t first_bad_guard(const uint8_t *g, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (g[i] != guard_byte(i)) return i;
  return SIZE_MAX;
}

/* The events verifying this live block must produce, given the bytes around it now. Returns the number of
 * damaged guards (0, 1 or 2). */
static int expect_block_damage(const rec *r) {
  int bad = 0;
  const size_t fbad = first_bad_guard(r->p - front_guard, front_guard);
  const bool header_bad = memcmp(r->p - front_guard - HEADER_BYTES, r->header, HEADER_CHECKED) != 0;
  if (fbad != SIZE_MAX || header_bad) {
    /* detail: how far below the user pointer the first damaged guard byte is, or the whole front if only the
     * header is damaged. */
    const uint64_t detail = fbad != SIZE_MAX ? front_guard - fbad : front_guard + HEADER_BYTES;
    expect_event(K(AETHER_MEM_BUFFER_UNDERFLOW), r->p, r->size, detail);
    bad++;
  }
  const size_t bbad = first_bad_guard(r->p + r->size, back_guard);
  if (bbad != SIZE_MAX) {
    expect_event(K(AETHER_MEM_BUFFER_OVERFLOW), r->p, r->size, r->size + bbad);
    bad++;
  }
  return bad;
}

static size_t poison_span(const rec *r) { return r->size < HUGE_POISON_MAX ? r->size : HUGE_POISON_MAX; }

/* Offset of the first byte of a quarantined block that is not poison, or SIZE_MAX. */
static size_t first_unpoisoned(const rec *r) { return fuzz_first_not(r->p, poison_span(r), POISON); }

static void check_content(const rec *r, const char *what) {
  if (memcmp(r->p, r->content, r->size) == 0) return;
  size_t i = 0;
  while (r->p[i] == r->content[i]) i++;
  fuzz_fail(__FILE__, __LINE__, "%s: block %p (%zu bytes) byte %zu is %#x, the program wrote %#x", what, (void *)r->p,
            r->size, i, r->p[i], r->content[i]);
}

static size_t span_before(void) { return front_guard + HEADER_BYTES; }

/* A fresh block from the allocator: aligned, as large as asked, its guards the 0xDEADBEEF pattern, and apart
 * from every block the model knows (none is reused within an input). */
static void check_fresh(const uint8_t *p, size_t size, size_t align, const char *what) {
  FUZZ_ASSERT_MSG(((uintptr_t)p & (align - 1)) == 0, "%s: %p is not aligned to %zu", what, (const void *)p, align);
  FUZZ_ASSERT_MSG(aether_safe_usable_size(p) == size, "%s: usable_size(%p) = %zu, asked %zu", what, (const void *)p,
                  aether_safe_usable_size(p), size);
  FUZZ_ASSERT_MSG(first_bad_guard(p - front_guard, front_guard) == SIZE_MAX &&
                      first_bad_guard(p + size, back_guard) == SIZE_MAX,
                  "%s: the guards of the new block %p are not the 0xDEADBEEF pattern", what, (const void *)p);
  for (size_t i = 0; i < nrecs; i++) {
    const rec *o = &recs[i];
    const bool apart = p + size + back_guard <= o->p - span_before() || o->p + o->size + back_guard <= p - span_before();
    FUZZ_ASSERT_MSG(apart, "%s: new block %p (%zu bytes) overlaps block %p (%zu bytes, %s)", what, (const void *)p, size,
                    (void *)o->p, o->size, o->state == ST_LIVE ? "live" : "freed and quarantined");
  }
}

static unsigned serial;

/* Record a live block (the caller checked there is room): the model's copy of its bytes and of its header. */
static rec *adopt(uint8_t *p, size_t size, bool fill) {
  rec *r = &recs[nrecs++];
  memset(r, 0, sizeof *r);
  r->p = p;
  r->size = size;
  r->state = ST_LIVE;
  r->content = malloc(size);
  FUZZ_ASSERT(r->content != NULL);
  if (fill) memset(p, (int)(uint8_t)(++serial * 37u + 11u), size);
  memcpy(r->content, p, size);
  memcpy(r->header, p - span_before(), HEADER_BYTES);
  return r;
}

static size_t nlive(void) {
  size_t n = 0;
  for (size_t i = 0; i < nrecs; i++) n += recs[i].state == ST_LIVE;
  return n;
}

static rec *find_rec(const void *p) {
  for (size_t i = 0; i < nrecs; i++)
    if (recs[i].p == p) return &recs[i];
  return NULL;
}

/* The block was freed: the model moves it to a quarantine, and the allocator must have poisoned it. */
static void quarantined(rec *r, int owner, const char *what) {
  r->state = ST_QUARANTINED;
  r->qowner = owner;
  free(r->content);
  r->content = NULL;
  const size_t bad = first_unpoisoned(r);
  FUZZ_ASSERT_MSG(bad == SIZE_MAX, "%s: freed block %p is not poisoned at byte %zu", what, (void *)r->p, bad);
}

/* ---------------------------------------------------------------------------------- operations --- */
enum {
  OP_MALLOC, OP_CALLOC, OP_ALIGNED, OP_FREE, OP_REALLOC, OP_WRITE, OP_CORRUPT_FRONT, OP_CORRUPT_BACK,
  OP_UAF_WRITE, OP_BAD_FREE, OP_BAD_REALLOC, OP_CHECK_ALL, OP_USABLE, OP_STATS, OP_LIVE_BLOCKS, OP_FREE_OTHER,
  OP_MALLOC_OTHER, OP_CHECK_ALL_OTHER, OP_ABSURD, OP_COUNT
};
static const char *const OP_NAMES[OP_COUNT] = {
    "malloc", "calloc", "aligned_alloc", "free", "realloc", "write", "corrupt_front", "corrupt_back",
    "uaf_write", "bad_free", "bad_realloc", "check_all", "usable_size", "stats", "live_blocks", "free_other",
    "malloc_other", "check_all_other", "absurd"};

/* An operation and its arguments, decoded from the input before it runs (so the decoding never depends on
 * the model's state, and the Bun-side engine decodes the same bytes the same way). */
typedef struct op {
  int code;
  uint64_t a, b, c, d;
} op;

/* The opcode byte picks from 32 entries: the heap walks (check_all, live_blocks) cost the most, so they are
 * the rarest. */
static const uint8_t OP_TABLE[32] = {
    OP_MALLOC, OP_MALLOC, OP_MALLOC, OP_MALLOC, OP_CALLOC, OP_ALIGNED, OP_ALIGNED, OP_FREE,
    OP_FREE, OP_FREE, OP_REALLOC, OP_REALLOC, OP_WRITE, OP_WRITE, OP_CORRUPT_FRONT, OP_CORRUPT_FRONT,
    OP_CORRUPT_BACK, OP_CORRUPT_BACK, OP_UAF_WRITE, OP_UAF_WRITE, OP_BAD_FREE, OP_BAD_FREE, OP_BAD_REALLOC, OP_CHECK_ALL,
    OP_USABLE, OP_STATS, OP_LIVE_BLOCKS, OP_FREE_OTHER, OP_MALLOC_OTHER, OP_CHECK_ALL_OTHER, OP_ABSURD, OP_FREE};

/* Sizes: mostly small, sometimes around the small/huge boundary (256 KiB), sometimes 0. */
static uint64_t pick_size(fuzz_producer *p) {
  const uint8_t mode = fuzz_u8(p) % 16;
  switch (mode) {
    case 0: case 1: case 2: return fuzz_range64(p, 1, 16);
    case 3: case 4: case 5: case 6: return fuzz_range64(p, 1, 128);
    case 7: case 8: case 9: return fuzz_range64(p, 1, 1024);
    case 10: case 11: return fuzz_range64(p, 1, 8192);
    case 12: return fuzz_range64(p, 8192, 70000);
    case 13: return fuzz_range64(p, 240000, 300000);
    case 14: return fuzz_range64(p, 300000, 600000);
    default: return 0;
  }
}

static op decode(fuzz_producer *p) {
  op o = {0};
  o.code = OP_TABLE[fuzz_u8(p) % 32];
  switch (o.code) {
    case OP_MALLOC: case OP_MALLOC_OTHER: o.a = pick_size(p); break;
    case OP_CALLOC:
      o.c = fuzz_u8(p) % 8; /* 7: an overflowing count * size */
      if (o.c == 7) {
        o.a = fuzz_u64(p);
        o.b = fuzz_u64(p);
      } else {
        o.a = fuzz_range64(p, 0, 64);
        o.b = pick_size(p);
      }
      break;
    case OP_ALIGNED: o.a = fuzz_u8(p) % 20; o.b = pick_size(p); break;
    case OP_FREE: case OP_FREE_OTHER: o.a = fuzz_u8(p); break;
    case OP_REALLOC: o.a = fuzz_u8(p); o.b = pick_size(p); break;
    case OP_WRITE: o.a = fuzz_u8(p); o.b = fuzz_u32(p); o.c = fuzz_u16(p); o.d = fuzz_u8(p); break;
    case OP_CORRUPT_FRONT: case OP_CORRUPT_BACK: o.a = fuzz_u8(p); o.b = fuzz_u16(p); o.c = fuzz_u8(p); break;
    case OP_UAF_WRITE: o.a = fuzz_u8(p); o.b = fuzz_u32(p); o.c = fuzz_u8(p); break;
    case OP_BAD_FREE: case OP_BAD_REALLOC: o.a = fuzz_u8(p); o.b = fuzz_u8(p) % 6; o.c = fuzz_u32(p); break;
    case OP_USABLE: o.a = fuzz_u8(p); o.b = fuzz_u32(p); break;
    case OP_ABSURD: o.a = fuzz_u8(p) % 5; o.b = fuzz_u8(p); break;
    default: break;
  }
  return o;
}

static rec *pick(uint64_t sel) { return nrecs ? &recs[sel % nrecs] : NULL; }

static void do_free_rec(rec *r, bool other, const char *what) {
  if (r->state == ST_LIVE) {
    check_content(r, what);
    expect_block_damage(r);
  } else {
    expect_event(K(AETHER_MEM_DOUBLE_FREE), r->p, r->size, 0);
  }
  const bool was_live = r->state == ST_LIVE;
  if (other) {
    harg_ptr = r->p;
    on_helper(H_FREE);
  } else {
    aether_safe_free(r->p);
  }
  if (was_live) quarantined(r, other ? 1 : 0, what);
  FUZZ_ASSERT_MSG(aether_safe_usable_size(r->p) == 0, "%s: usable_size of freed %p is not 0", what, (void *)r->p);
}

static void do_alloc(size_t size, size_t align, bool aligned_api, bool other, const char *what) {
  if (nrecs == MAX_RECORDS) return;
  uint8_t *p;
  if (other) {
    harg_size = size;
    on_helper(H_MALLOC);
    p = hresult_ptr;
  } else {
    p = aligned_api ? aether_safe_aligned_alloc(align, size) : aether_safe_malloc(size);
  }
  FUZZ_LOG("  -> %p", (void *)p);
  if (size == 0) {
    FUZZ_ASSERT_MSG(p == NULL, "%s(0) returned %p, not NULL", what, (void *)p);
    return;
  }
  FUZZ_ASSERT_MSG(p != NULL, "%s(%zu) failed: %s", what, size, aether_last_error());
  check_fresh(p, size, align < 16 ? 16 : align, what);
  adopt(p, size, true);
}

/* A pointer the allocator never handed out at that address (kinds 0-4), or a wild one near a block (5). */
static uint8_t *bad_pointer(rec *r, uint64_t kind, uint64_t v, uint8_t *stack_byte, void **libc_block, bool *wild) {
  *wild = false;
  switch (kind) {
    case 0: return r->size >= 2 ? r->p + 1 + v % (r->size - 1) : NULL; /* interior */
    case 1: return r->p - 1 - v % span_before();                          /* its header or front guard */
    case 2: return r->p + r->size + v % back_guard;                        /* its back guard */
    case 3: return stack_byte;
    case 4: *libc_block = malloc(32); return *libc_block;
    default: *wild = true; return r->p + (int64_t)(int32_t)(uint32_t)v;
  }
}

static void run_op(const op *o, unsigned index) {
  const char *what = OP_NAMES[o->code];
  char label[64];
  snprintf(label, sizeof label, "op %u (%s)", index, what);
  rec *r = NULL;
  FUZZ_LOG("op %u: %s", index, what);
  switch (o->code) {
    case OP_MALLOC: FUZZ_LOG("  malloc size=%llu", (unsigned long long)o->a); do_alloc(o->a, 16, false, false, label); break;
    case OP_MALLOC_OTHER:
      FUZZ_LOG("  malloc_other size=%llu", (unsigned long long)o->a);
      do_alloc(o->a, 16, false, true, label);
      break;
    case OP_CALLOC: {
      FUZZ_LOG("  calloc count=%llu size=%llu", (unsigned long long)o->a, (unsigned long long)o->b);
      if (nrecs == MAX_RECORDS) break;
      size_t total;
      const bool overflow = __builtin_mul_overflow((size_t)o->a, (size_t)o->b, &total);
      if (!overflow && total > 600000) break; /* a legal but needlessly large request */
      aether_clear_error();
      uint8_t *p = aether_safe_calloc(o->a, o->b);
      FUZZ_LOG("  -> %p", (void *)p);
      if (overflow) {
        FUZZ_ASSERT_MSG(p == NULL && aether_last_status() == AETHER_ERR_SIZE_OVERFLOW,
                        "%s: calloc(%llu, %llu) overflows but returned %p (status %d)", label, (unsigned long long)o->a,
                        (unsigned long long)o->b, (void *)p, aether_last_status());
        break;
      }
      if (total == 0) {
        FUZZ_ASSERT_MSG(p == NULL, "%s: calloc of 0 bytes returned %p", label, (void *)p);
        break;
      }
      FUZZ_ASSERT_MSG(p != NULL, "%s: calloc(%llu, %llu) failed: %s", label, (unsigned long long)o->a,
                      (unsigned long long)o->b, aether_last_error());
      const size_t nz = fuzz_first_not(p, total, 0);
      FUZZ_ASSERT_MSG(nz == SIZE_MAX, "%s: calloc'd byte %zu is %#x", label, nz, nz == SIZE_MAX ? 0 : p[nz]);
      check_fresh(p, total, 16, label);
      adopt(p, total, false);
      break;
    }
    case OP_ALIGNED: {
      /* 0-16: 2^a; 17-19: a non-power-of-two (3, 6, 12), which must be refused. */
      const size_t align = o->a <= 16 ? (size_t)1 << o->a : (size_t)3 << (o->a - 17);
      FUZZ_LOG("  aligned_alloc align=%zu size=%llu", align, (unsigned long long)o->b);
      if (o->a > 16) {
        aether_clear_error();
        void *p = aether_safe_aligned_alloc(align, o->b);
        FUZZ_ASSERT_MSG(p == NULL && aether_last_status() == AETHER_ERR_NOT_POWER_OF_TWO,
                        "%s: alignment %zu was accepted (%p, status %d)", label, align, p, aether_last_status());
        break;
      }
      do_alloc(o->b, align, true, false, label);
      break;
    }
    case OP_FREE: case OP_FREE_OTHER:
      if ((r = pick(o->a)) == NULL) break;
      FUZZ_LOG("  %s %p (%s, %zu bytes)", what, (void *)r->p, r->state == ST_LIVE ? "live" : "freed", r->size);
      do_free_rec(r, o->code == OP_FREE_OTHER, label);
      break;
    case OP_REALLOC: {
      if ((r = pick(o->a)) == NULL) break;
      const size_t n = o->b;
      FUZZ_LOG("  realloc %p (%s, %zu bytes) to %zu", (void *)r->p, r->state == ST_LIVE ? "live" : "freed",
               r->size, n);
      if (n == 0) { /* realloc(p, 0) is free(p) */
        do_free_rec(r, false, label);
        break;
      }
      if (r->state != ST_LIVE) {
        expect_event(K(AETHER_MEM_INVALID_REALLOC), r->p, r->size, 0);
        aether_clear_error();
        void *q = aether_safe_realloc(r->p, n);
        FUZZ_ASSERT_MSG(q == NULL && aether_last_status() == AETHER_ERR_INVALID_POINTER,
                        "%s: realloc of freed %p returned %p (status %d)", label, (void *)r->p, q, aether_last_status());
        break;
      }
      if (nrecs == MAX_RECORDS) break; /* a moved block needs a second record */
      check_content(r, label);
      expect_block_damage(r);
      uint8_t *q = aether_safe_realloc(r->p, n);
      FUZZ_LOG("  -> %p", (void *)q);
      FUZZ_ASSERT_MSG(q != NULL, "%s: realloc(%p, %zu) failed: %s", label, (void *)r->p, n, aether_last_error());
      const size_t keep = r->size < n ? r->size : n;
      FUZZ_ASSERT_MSG(memcmp(q, r->content, keep) == 0, "%s: realloc lost the block's contents", label);
      uint8_t *old_content = r->content;
      r->content = NULL;
      if (q != r->p) {
        /* Moved: the old block is freed (quarantined); the new one gets its own record. */
        uint8_t *old_p = r->p;
        r->content = old_content;
        quarantined(r, 0, label);
        FUZZ_ASSERT(find_rec(old_p) == r);
        check_fresh(q, n, 16, label);
        rec *nr = adopt(q, n, false);
        memset(q + keep, 0x5A, n - keep);
        memset(nr->content + keep, 0x5A, n - keep);
        memcpy(nr->content, q, keep);
        r = nr;
      } else {
        /* In place: same record, new size, new header and guards (any damage was reported and is gone). */
        FUZZ_ASSERT_MSG(aether_safe_usable_size(q) == n, "%s: usable_size after realloc in place is %zu, not %zu",
                        label, aether_safe_usable_size(q), n);
        FUZZ_ASSERT_MSG(first_bad_guard(q - front_guard, front_guard) == SIZE_MAX &&
                            first_bad_guard(q + n, back_guard) == SIZE_MAX,
                        "%s: guards not rewritten by realloc in place", label);
        r->content = realloc(old_content, n);
        FUZZ_ASSERT(r->content != NULL);
        r->size = n;
        memset(q + keep, 0x5A, n - keep);
        memset(r->content + keep, 0x5A, n - keep);
        memcpy(r->header, q - span_before(), HEADER_BYTES);
      }
      break;
    }
    case OP_WRITE: {
      if ((r = pick(o->a)) == NULL || r->state != ST_LIVE) break;
      const size_t off = o->b % r->size, len = o->c % (r->size - off) + 1;
      FUZZ_LOG("  write %p[%zu..%zu) = %#x", (void *)r->p, off, off + len, (unsigned)o->d);
      memset(r->p + off, (int)o->d, len);
      memset(r->content + off, (int)o->d, len);
      break;
    }
    case OP_CORRUPT_FRONT: case OP_CORRUPT_BACK: {
      if ((r = pick(o->a)) == NULL) break;
      const uint8_t x = o->c ? (uint8_t)o->c : 1;
      uint8_t *at = o->code == OP_CORRUPT_FRONT ? r->p - 1 - o->b % span_before() : r->p + r->size + o->b % back_guard;
      FUZZ_LOG("  %s %p: byte at %+td ^= %#x (%s block)", what, (void *)r->p, at - r->p, (unsigned)x,
               r->state == ST_LIVE ? "live" : "freed");
      *at ^= x;
      break;
    }
    case OP_UAF_WRITE: {
      if ((r = pick(o->a)) == NULL || r->state != ST_QUARANTINED) break;
      const size_t off = o->b % poison_span(r);
      const uint8_t x = o->c ? (uint8_t)o->c : 1;
      FUZZ_LOG("  uaf_write %p[%zu] ^= %#x", (void *)r->p, off, (unsigned)x);
      r->p[off] ^= x;
      break;
    }
    case OP_BAD_FREE: case OP_BAD_REALLOC: {
      if ((r = pick(o->a)) == NULL) break;
      uint8_t stack_byte[16];
      void *libc_block = NULL;
      bool wild;
      uint8_t *q = bad_pointer(r, o->b, o->c, stack_byte, &libc_block, &wild);
      if (q == NULL) break;
      const bool is_free = o->code == OP_BAD_FREE;
      rec *hit = wild ? find_rec(q) : NULL;
      FUZZ_LOG("  %s %p (kind %llu near %p)%s", what, (void *)q, (unsigned long long)o->b, (void *)r->p,
               hit ? ": a known block" : "");
      if (hit != NULL) { /* the wild pointer is a block of this program: an ordinary free or realloc */
        if (is_free) do_free_rec(hit, false, label);
        break;
      }
      if (is_free) {
        expect_event(wild ? K(AETHER_MEM_INVALID_FREE) | K(AETHER_MEM_DOUBLE_FREE) : K(AETHER_MEM_INVALID_FREE), q,
                     wild ? ANY : 0, ANY);
        aether_safe_free(q);
      } else {
        expect_event(K(AETHER_MEM_INVALID_REALLOC), q, wild ? ANY : 0, 0);
        aether_clear_error();
        void *res = aether_safe_realloc(q, 64);
        FUZZ_ASSERT_MSG(res == NULL && aether_last_status() == AETHER_ERR_INVALID_POINTER,
                        "%s: realloc of a bad pointer %p returned %p (status %d)", label, (void *)q, res,
                        aether_last_status());
      }
      free(libc_block);
      break;
    }
    case OP_CHECK_ALL: case OP_CHECK_ALL_OTHER: {
      const int owner = o->code == OP_CHECK_ALL_OTHER;
            size_t damaged = 0;
      for (size_t i = 0; i < nrecs; i++) {
        rec *x = &recs[i];
        if (x->state == ST_LIVE) {
          damaged += expect_block_damage(x) > 0;
        } else if (x->qowner == owner) {
          const size_t bad = first_unpoisoned(x);
          if (bad != SIZE_MAX) {
            expect_event(K(AETHER_MEM_USE_AFTER_FREE), x->p, x->size, bad);
            damaged++;
          }
        }
      }
      size_t got;
      if (owner) {
        on_helper(H_CHECK_ALL);
        got = hresult_size;
      } else {
        got = aether_memory_check_all();
      }
      FUZZ_ASSERT_MSG(got == damaged, "%s: check_all counted %zu damaged blocks, the model %zu", label, got, damaged);
      for (size_t i = 0; i < nrecs; i++) /* reported once: the allocator poisons them again */
        if (recs[i].state == ST_QUARANTINED && recs[i].qowner == owner)
          FUZZ_ASSERT_MSG(first_unpoisoned(&recs[i]) == SIZE_MAX, "%s: %p not poisoned again after its report", label,
                          (void *)recs[i].p);
      break;
    }
    case OP_USABLE: {
      if ((r = pick(o->a)) == NULL) break;
      const size_t delta = o->b % r->size;
      const size_t want = delta == 0 && r->state == ST_LIVE ? r->size : 0;
      const size_t got = aether_safe_usable_size(r->p + delta);
      FUZZ_LOG("  usable_size %p+%zu = %zu", (void *)r->p, delta, got);
      FUZZ_ASSERT_MSG(got == want, "%s: usable_size(%p + %zu) = %zu, expected %zu", label, (void *)r->p, delta, got, want);
      break;
    }
    case OP_ABSURD: {
      FUZZ_LOG("  absurd kind %llu", (unsigned long long)o->a);
      aether_clear_error();
      void *res = NULL;
      switch (o->a) {
        case 0: res = aether_safe_malloc(((size_t)1 << 47) + o->b); break;
        case 1: res = aether_safe_malloc(SIZE_MAX - o->b); break;
        case 2: res = aether_safe_aligned_alloc((size_t)1 << 31, 64); break;
        case 3: res = aether_safe_calloc(((size_t)1 << 33) + o->b, (size_t)1 << 33); break;
        default:
          if ((r = pick(o->b)) == NULL || r->state != ST_LIVE) break;
          check_content(r, label);
          expect_block_damage(r);
          res = aether_safe_realloc(r->p, ((size_t)1 << 50) + o->b);
          FUZZ_ASSERT_MSG(aether_safe_usable_size(r->p) == r->size, "%s: a failed realloc changed the block", label);
          check_content(r, label);
          /* verify_fast reported the damage: the block is still damaged, and will be reported again */
          break;
      }
      FUZZ_ASSERT_MSG(res == NULL, "%s: an impossible request returned %p", label, res);
      break;
    }
    default: break;
  }
  match_events(label);
}

/* ----------------------------------------------------------------------------- stats and listing --- */
static aether_memory_stats base;

static void check_stats(const char *what) {
  aether_memory_stats s;
  FUZZ_ASSERT(aether_memory_get_stats(&s) == AETHER_OK);
  uint64_t bytes = 0;
  for (size_t i = 0; i < nrecs; i++)
    if (recs[i].state == ST_LIVE) bytes += recs[i].size;
  FUZZ_ASSERT_MSG(s.live_count == base.live_count + nlive(), "%s: live_count %llu, the model %zu", what,
                  (unsigned long long)(s.live_count - base.live_count), nlive());
  FUZZ_ASSERT_MSG(s.live_bytes == base.live_bytes + bytes, "%s: live_bytes %llu, the model %llu", what,
                  (unsigned long long)(s.live_bytes - base.live_bytes), (unsigned long long)bytes);
  for (int k = 0; k < AETHER_MEM_ERROR_KINDS; k++)
    FUZZ_ASSERT_MSG(s.errors[k] == base.errors[k] + expected_by_kind[k], "%s: %s count %llu, the model %llu", what,
                    kind_name(k), (unsigned long long)(s.errors[k] - base.errors[k]),
                    (unsigned long long)expected_by_kind[k]);
}

static void check_live_blocks(const char *what) {
  static aether_memory_block blocks[MAX_RECORDS + 8];
  const size_t n = aether_memory_live_blocks(blocks, MAX_RECORDS + 8);
  FUZZ_ASSERT_MSG(n == base.live_count + nlive(), "%s: %zu live blocks listed, the model has %zu", what,
                  n - (size_t)base.live_count, nlive());
  if (base.live_count != 0) return;
  for (size_t i = 1; i < n; i++)
    FUZZ_ASSERT_MSG(blocks[i - 1].size >= blocks[i].size, "%s: live blocks not listed largest first", what);
  for (size_t i = 0; i < nrecs; i++) {
    if (recs[i].state != ST_LIVE) continue;
    size_t j = 0;
    while (j < n && blocks[j].address != (uint64_t)(uintptr_t)recs[i].p) j++;
    FUZZ_ASSERT_MSG(j < n && blocks[j].size == recs[i].size, "%s: live block %p (%zu bytes) missing from the list",
                    what, (void *)recs[i].p, recs[i].size);
  }
}

/* ---------------------------------------------------------------------------------- the harness --- */
#define BIG_QUARANTINE "1g"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  aether_memory_init();
  FUZZ_ASSERT(aether_memory_set_option("quiet", "1") == AETHER_OK);
  FUZZ_ASSERT(aether_memory_set_option("abort_on_error", "0") == AETHER_OK);
  FUZZ_ASSERT(aether_memory_set_option("quarantine_bytes", BIG_QUARANTINE) == AETHER_OK);
  aether_memory_set_error_handler(on_error, NULL);
  char rz[32];
  FUZZ_ASSERT(aether_memory_get_option("redzone", rz, sizeof rz) > 0);
  /* The guard sizes the allocator derives from the redzone (see aether.h): the back guard is the redzone
   * rounded up to 8; the front one also keeps the user pointer 16-aligned after the 24-byte header. */
  back_guard = ((size_t)strtoull(rz, NULL, 10) + 7) & ~(size_t)7;
  front_guard = back_guard + ((HEADER_BYTES + back_guard) % 16 ? 8 : 0);
  FUZZ_ASSERT(pthread_create(&helper, NULL, helper_main, NULL) == 0);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static bool initialized;
  if (!initialized) { /* libFuzzer calls LLVMFuzzerInitialize itself; other drivers may not */
    initialized = true;
    if (helper == 0) LLVMFuzzerInitialize(NULL, NULL);
  }
  fuzz_producer p = fuzz_producer_make(data, size);
  FUZZ_ASSERT(aether_memory_get_stats(&base) == AETHER_OK);
  memset(expected_by_kind, 0, sizeof expected_by_kind);
  nrecs = 0;
  nevents = nexpected = events_overflow = 0;
  for (unsigned i = 0; i < MAX_OPS && !fuzz_empty(&p); i++) {
    const op o = decode(&p);
    run_op(&o, i);
    if (o.code == OP_STATS) check_stats("stats");
    else if (o.code == OP_LIVE_BLOCKS) check_live_blocks("live_blocks");
  }
  check_stats("end of program");
  check_live_blocks("end of program");

  /* Clean up so the next input starts from nothing: free what is live (damage is reported as usual), then
   * empty both quarantines (a write after free is reported as each block leaves). */
  FUZZ_LOG("cleanup: free every live block, drain both quarantines");
  for (size_t i = 0; i < nrecs; i++)
    if (recs[i].state == ST_LIVE) do_free_rec(&recs[i], false, "cleanup");
  match_events("cleanup: free");
  FUZZ_ASSERT(aether_memory_set_option("quarantine_bytes", "0") == AETHER_OK);
  for (int owner = 0; owner < 2; owner++) {
    for (size_t i = 0; i < nrecs; i++) {
      const size_t bad = recs[i].qowner == owner ? first_unpoisoned(&recs[i]) : SIZE_MAX;
      if (bad != SIZE_MAX) expect_event(K(AETHER_MEM_USE_AFTER_FREE), recs[i].p, recs[i].size, bad);
    }
    if (owner) on_helper(H_DRAIN);
    else drain_this_thread();
    match_events(owner ? "cleanup: drain the helper's quarantine" : "cleanup: drain the quarantine");
  }
  FUZZ_ASSERT(aether_memory_set_option("quarantine_bytes", BIG_QUARANTINE) == AETHER_OK);
  check_stats("after cleanup");
  for (size_t i = 0; i < nrecs; i++) free(recs[i].content);
  nrecs = 0;
  FUZZ_LOG("done: no finding");
  return 0;
}
