/* safe_alloc.c: the public safe allocator: allocation, validation of every pointer handed back, the
 * diagnostics in the specification's words, leaks, usage and statistics. The design is described once, in
 * alloc_internal.h. */
#include "alloc_internal.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

_Atomic int _ae_init_state;
_Atomic int _ae_check_requested;
_Atomic int _ae_heap_used;
uint64_t _ae_cookie;

#define AE_FLUSH_BYTES ((int64_t)64 << 10) /* live-byte delta a thread keeps before publishing it */

/* ------------------------------------------------------------------------------------------ init --- */
static void atfork_prepare(void) {
  _ae_heap_atfork_prepare();
  _ae_huge_atfork_prepare();
  _ae_trace_atfork_prepare();
  _ae_report_atfork_prepare();
}
static void atfork_parent(void) {
  _ae_report_atfork_parent();
  _ae_trace_atfork_parent();
  _ae_huge_atfork_parent();
  _ae_heap_atfork_parent();
}
static void atfork_child(void) {
  _ae_report_atfork_child();
  _ae_trace_atfork_child();
  _ae_huge_atfork_child();
  _ae_heap_atfork_child();
}

void _ae_ensure_init(void) {
  int expected = 0;
  if (atomic_compare_exchange_strong_explicit(&_ae_init_state, &expected, 1, memory_order_acq_rel,
                                              memory_order_acquire)) {
    _ae_cookie = _ae_random_u64();
    _ae_options_load_env();
    _ae_heap_init_global();
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    atomic_store_explicit(&_ae_init_state, 2, memory_order_release);
    return;
  }
  while (atomic_load_explicit(&_ae_init_state, memory_order_acquire) != 2) sched_yield();
}

void aether_memory_init(void) { _ae_init_fast(); }

/* ---------------------------------------------------------------------------------------- guards --- */
#define store64 _ae_store64
#define load64 _ae_load64

static inline __attribute__((always_inline)) void guards_write(uint8_t *user, size_t size) {
  if (AE_LIKELY(_ae_front_guard == 8 && _ae_back_guard == 8)) { /* the default redzone: two stores */
    store64(user - 8, AE_GUARD_WORD);
    store64(user + size, AE_GUARD_WORD);
    return;
  }
  for (size_t i = 0; i < _ae_front_guard; i += 8) store64(user - _ae_front_guard + i, AE_GUARD_WORD);
  for (size_t i = 0; i < _ae_back_guard; i += 8) store64(user + size + i, AE_GUARD_WORD);
}

static size_t first_bad_byte(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t w = load64(p + i) ^ AE_GUARD_WORD;
    if (AE_UNLIKELY(w != 0)) return i + (size_t)__builtin_ctzll(w) / 8 + 1;
  }
  return 0;
}

/* 0 if intact, else 1 + offset of the first damaged byte within the guard. */
static size_t front_guard_damage(const uint8_t *user) { return first_bad_byte(user - _ae_front_guard, _ae_front_guard); }
static size_t back_guard_damage(const uint8_t *user, size_t size) { return first_bad_byte(user + size, _ae_back_guard); }

static inline ae_header *header_of(uint8_t *user) { return _ae_header_of(user); }

static inline void header_write(uint8_t *user, size_t size, uint32_t magic) {
  ae_header *h = header_of(user);
  h->size = size;
  h->magic = magic;
  h->check = _ae_header_check(user, size, magic);
  h->alloc_trace = 0;
  h->free_trace = 0;
}

/* Check header and guards of a block known to be live with this size; report what is damaged. Returns the
 * number of problems found (0 when intact). */
static int verify_block(uint8_t *user, size_t size) {
  int bad = 0;
  const ae_header *h = header_of(user);
  size_t dmg = front_guard_damage(user);
  if (AE_UNLIKELY(dmg != 0 || h->magic != AE_MAGIC_LIVE || h->size != size ||
                  h->check != _ae_header_check(user, size, AE_MAGIC_LIVE))) {
    /* The header sits before the front guard: damage to either is a write below the block. */
    const uint64_t detail = dmg ? _ae_front_guard - (dmg - 1) : _ae_front_guard + sizeof(ae_header);
    _ae_report_traced(AETHER_MEM_BUFFER_UNDERFLOW, user, size, detail, h->alloc_trace, 0,
                      "AETHER MEMORY ERROR: Buffer underflow detected at 0x%" PRIxPTR, (uintptr_t)user);
    bad++;
  }
  dmg = back_guard_damage(user, size);
  if (AE_UNLIKELY(dmg != 0)) {
    _ae_report_traced(AETHER_MEM_BUFFER_OVERFLOW, user, size, size + dmg - 1, h->alloc_trace, 0,
                      "AETHER MEMORY ERROR: Buffer overflow detected at 0x%" PRIxPTR, (uintptr_t)user);
    bad++;
  }
  return bad;
}

/* The common case inline: everything intact. Any doubt goes to verify_block, which says what is damaged. */
static inline __attribute__((always_inline)) void verify_fast(uint8_t *user, size_t size) {
  const ae_header *h = header_of(user);
  bool ok = h->size == size && h->magic == AE_MAGIC_LIVE && h->check == _ae_header_check(user, size, AE_MAGIC_LIVE);
  if (AE_LIKELY(_ae_front_guard == 8 && _ae_back_guard == 8))
    ok = ok && load64(user - 8) == AE_GUARD_WORD && load64(user + size) == AE_GUARD_WORD;
  else
    ok = ok && front_guard_damage(user) == 0 && back_guard_damage(user, size) == 0;
  if (AE_UNLIKELY(!ok)) verify_block(user, size);
}

/* -------------------------------------------------------------------------------------- registry --- */
/* Where a pointer handed back to us points, found without reading through it (only our own side tables). */
typedef struct ae_lookup {
  enum { LK_UNKNOWN, LK_IN_SEGMENT, LK_SMALL, LK_HUGE } where;
  unsigned state;         /* for LK_SMALL / LK_HUGE: the registry state */
  size_t size;            /* for LK_SMALL / LK_HUGE */
  ae_run *run;            /* LK_SMALL */
  _Atomic uint64_t *meta; /* LK_SMALL */
  uint8_t *block;         /* LK_SMALL */
  uint64_t m;             /* LK_SMALL: the meta word read */
} ae_lookup;

static void lookup(const void *p, ae_lookup *lk) {
  lk->where = LK_UNKNOWN;
  ae_segment *seg = _ae_segment_of(p);
  if (seg != NULL) {
    lk->where = LK_IN_SEGMENT;
    ae_run *r = _ae_run_of(seg, p);
    if (r == NULL) return;
    const size_t idx = _ae_block_index(r, p);
    if (idx >= r->nblocks) return;
    uint8_t *block = r->start + idx * r->block_size;
    _Atomic uint64_t *meta = &r->meta[idx];
    const uint64_t m = _ae_meta_wait(meta); /* a block held for a moment (BUSY) is looked at once it is back */
    if (AE_META_STATE(m) == AE_STATE_NEVER || AE_META_OFF(m) != (size_t)((const uint8_t *)p - block)) return;
    lk->where = LK_SMALL;
    lk->state = AE_META_STATE(m);
    lk->size = AE_META_SIZE(m);
    lk->run = r;
    lk->meta = meta;
    lk->block = block;
    lk->m = m;
    return;
  }
  if (_ae_huge_lookup(p, &lk->state, &lk->size)) lk->where = LK_HUGE;
}

/* The word where a header's magic would be, if that address is inside one of our segments (always mapped). */
static bool read_magic(const void *p, uint32_t *magic) {
  ae_segment *seg = _ae_segment_of(p);
  if (seg == NULL) return false;
  /* Integer arithmetic: p may be near zero, and pointer arithmetic on it would overflow. */
  const uintptr_t at = (uintptr_t)p - _ae_front_guard - sizeof(ae_header) + offsetof(ae_header, magic);
  if (at < (uintptr_t)seg + sizeof(ae_segment) || at > (uintptr_t)p) return false;
  memcpy(magic, (const void *)at, sizeof *magic);
  return true;
}

static void report_invalid_free(const void *p) {
  uint32_t magic;
  if (read_magic(p, &magic))
    _ae_report(AETHER_MEM_INVALID_FREE, p, 0, magic, "AETHER MEMORY ERROR: Invalid free of 0x%" PRIxPTR " (bad magic: 0x%08x)",
               (uintptr_t)p, magic);
  else
    _ae_report(AETHER_MEM_INVALID_FREE, p, 0, 0, "AETHER MEMORY ERROR: Invalid free of 0x%" PRIxPTR " (not a live allocation)",
               (uintptr_t)p);
}

/* The stacks recorded in a known block's header, when its memory is still ours to read. */
static void block_traces(const ae_lookup *lk, const void *p, uint32_t *alloc_trace, uint32_t *free_trace) {
  *alloc_trace = *free_trace = 0;
  if (lk == NULL || !(lk->where == LK_SMALL || (lk->where == LK_HUGE && lk->state != AE_STATE_FREE))) return;
  const ae_header *h = _ae_header_of(p);
  *alloc_trace = h->alloc_trace;
  *free_trace = h->free_trace;
}

static void report_double_free(const ae_lookup *lk, const void *p, size_t size) {
  uint32_t a, f;
  block_traces(lk, p, &a, &f);
  _ae_report_traced(AETHER_MEM_DOUBLE_FREE, p, size, 0, a, f,
                    "AETHER MEMORY ERROR: Double free detected at 0x%" PRIxPTR, (uintptr_t)p);
}

static void report_invalid_realloc(const ae_lookup *lk, const void *p, size_t size) {
  uint32_t a, f;
  block_traces(lk, p, &a, &f);
  _ae_report_traced(AETHER_MEM_INVALID_REALLOC, p, size, 0, a, f,
                    "AETHER MEMORY ERROR: Invalid realloc of 0x%" PRIxPTR, (uintptr_t)p);
}

static inline void record_trace(uint8_t *user, bool is_free) {
  if (AE_LIKELY(!atomic_load_explicit(&_ae_backtrace_on, memory_order_relaxed))) return;
  ae_header *h = header_of(user);
  if (is_free) h->free_trace = _ae_trace_capture(1);
  else h->alloc_trace = _ae_trace_capture(1);
}

/* ------------------------------------------------------------------------------------- accounting --- */
static inline void relaxed_add(_Atomic uint64_t *c, uint64_t v) {
  /* Only the owning thread writes its counters: a load and a store, no locked instruction. */
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v, memory_order_relaxed);
}

static inline __attribute__((always_inline)) void account_alloc(ae_heap *h, size_t size) {
  relaxed_add(&h->allocs, 1);
  relaxed_add(&h->alloc_bytes, size);
  h->unflushed += (int64_t)size;
  if (h->unflushed > atomic_load_explicit(&h->peak_local, memory_order_relaxed)) {
    atomic_store_explicit(&h->peak_local, h->unflushed, memory_order_relaxed);
    if (AE_UNLIKELY(h->unflushed > AE_FLUSH_BYTES)) _ae_heap_flush_peak(h);
  }
}

static inline __attribute__((always_inline)) void account_free(ae_heap *h, size_t size) {
  relaxed_add(&h->frees, 1);
  relaxed_add(&h->freed_bytes, size);
  h->unflushed -= (int64_t)size;
  if (AE_UNLIKELY(h->unflushed < -AE_FLUSH_BYTES)) _ae_heap_flush_peak(h);
}

/* ------------------------------------------------------------------------------------ allocation --- */
static inline __attribute__((always_inline)) void *alloc_small(ae_heap *h, size_t size, size_t alignment) {
  const size_t need = sizeof(ae_header) + _ae_front_guard + size + _ae_back_guard + (alignment > 16 ? alignment - 16 : 0);
  const unsigned cls = _ae_size_class(need);
  ae_tcache *tc = &h->cache[cls];
  if (AE_UNLIKELY(tc->count == 0) && !_ae_central_refill(h, cls)) {
    _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "out of memory allocating %zu bytes", size);
    return NULL;
  }
  const ae_cached c = tc->slots[--tc->count];
  uint8_t *block = c.block;
  uint8_t *user = block + sizeof(ae_header) + _ae_front_guard;
  if (alignment > 16) user = (uint8_t *)AE_ALIGN_UP((uintptr_t)user, alignment);
  header_write(user, size, AE_MAGIC_LIVE);
  guards_write(user, size);
  record_trace(user, false); /* before the block is published: a heap walk may read its header from then on */
  atomic_store_explicit(c.meta, AE_META(size, (size_t)(user - block), cls, AE_STATE_LIVE), memory_order_release);
  account_alloc(h, size);
  return user;
}

static void *alloc_huge(ae_heap *h, size_t size, size_t alignment) {
  uint8_t *user = _ae_huge_alloc(size, alignment);
  if (user == NULL) return NULL;
  header_write(user, size, AE_MAGIC_LIVE);
  guards_write(user, size);
  record_trace(user, false);
  _ae_huge_publish(user); /* LIVE from here: heap walks may read the header and guards */
  account_alloc(h, size);
  return user;
}

static void *alloc_aligned(size_t size, size_t alignment) {
  ae_heap *h = _ae_heap_get();
  if (AE_UNLIKELY(h == NULL)) {
    _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "out of memory creating the thread's heap");
    return NULL;
  }
  const size_t overhead = sizeof(ae_header) + _ae_front_guard + _ae_back_guard;
  if (AE_LIKELY(size <= AE_MAX_SMALL_BLOCK && alignment <= 4096 &&
                size + overhead + alignment <= AE_MAX_SMALL_BLOCK + 16))
    return alloc_small(h, size, alignment);
  return alloc_huge(h, size, alignment);
}

/* With the largest redzone (4096 on each side) a block of this size still fits the biggest size class. */
#define AE_FAST_MAX (AE_MAX_SMALL_BLOCK - 4096 - 8192)

void *aether_safe_malloc(size_t size) {
  if (AE_UNLIKELY(size == 0)) return NULL;
  ae_heap *h = _ae_tl_heap;
  if (AE_LIKELY(h != NULL && size <= AE_FAST_MAX)) return alloc_small(h, size, 16);
  return alloc_aligned(size, 16);
}

void *_ae_safe_alloc(size_t size, size_t alignment) {
  ae_heap *h = _ae_tl_heap;
  if (AE_LIKELY(h != NULL && alignment <= 16 && size <= AE_FAST_MAX)) return alloc_small(h, size, 16);
  if (size > ((size_t)1 << 46) || alignment > ((size_t)1 << 30)) {
    _ae_fail(AETHER_ERR_OUT_OF_RANGE, "%zu bytes aligned to %zu is out of range", size, alignment);
    return NULL;
  }
  return alloc_aligned(size, alignment < 16 ? 16 : alignment);
}

void *aether_safe_calloc(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    _ae_fail(AETHER_ERR_SIZE_OVERFLOW, "aether_safe_calloc: %zu * %zu overflows size_t", count, size);
    return NULL;
  }
  void *p = aether_safe_malloc(total);
  if (p != NULL) memset(p, 0, total);
  return p;
}

void *aether_safe_aligned_alloc(size_t alignment, size_t size) {
  if (!AE_IS_POW2(alignment)) {
    _ae_fail(AETHER_ERR_NOT_POWER_OF_TWO, "aether_safe_aligned_alloc: alignment %zu is not a power of two", alignment);
    return NULL;
  }
  if (size == 0) return NULL;
  if (size > ((size_t)1 << 46) || alignment > ((size_t)1 << 30)) {
    _ae_fail(AETHER_ERR_OUT_OF_RANGE, "aether_safe_aligned_alloc: %zu bytes aligned to %zu is out of range", size,
             alignment);
    return NULL;
  }
  return alloc_aligned(size, alignment < 16 ? 16 : alignment);
}

/* ---------------------------------------------------------------------------------------- freeing --- */
/* Claim a live block found by lookup(), check it, poison it and park it. check=false when the caller has
 * already verified the guards (realloc). */
static void release(ae_lookup *lk, uint8_t *user, bool check) {
  ae_heap *h = _ae_heap_get();
  if (lk->where == LK_SMALL) {
    uint64_t expected = lk->m;
    const uint64_t claimed = (lk->m & ~(uint64_t)0xf) | AE_STATE_QUARANTINED;
    while (!atomic_compare_exchange_strong_explicit(lk->meta, &expected, claimed, memory_order_acq_rel,
                                                    memory_order_acquire)) {
      /* held by a heap walk for a moment: try again once it is back as it was */
      if (AE_META_STATE(expected) == AE_STATE_BUSY && (expected = _ae_meta_wait(lk->meta)) == lk->m) continue;
      report_double_free(lk, user, lk->size); /* another thread freed it between our lookup and our claim */
      return;
    }
  } else if (!_ae_huge_claim(user)) {
    report_double_free(lk, user, lk->size);
    return;
  }
  record_trace(user, true);
  if (check) verify_fast(user, lk->size);
  if (AE_UNLIKELY(h == NULL)) return; /* no heap to quarantine in: the block stays claimed (leaked, not reused) */
  account_free(h, lk->size);
  if (lk->where == LK_SMALL)
    _ae_quarantine_push_small(h, user, lk->meta, lk->size, lk->run->block_size);
  else
    _ae_quarantine_push(h, user, NULL, lk->size, lk->size);
}

/* The free of a live small block by a thread that has a heap, every check inline. Returns false, having
 * changed nothing, whenever anything is unusual: the general path then looks again and names the problem. */
static inline __attribute__((always_inline)) bool free_fast(ae_heap *h, uint8_t *p) {
  const uintptr_t a = (uintptr_t)p;
  if (AE_UNLIKELY(a >> 47) ||
      atomic_load_explicit(&_ae_segmap[a >> AE_SEGMENT_SHIFT], memory_order_acquire) == 0)
    return false;
  ae_segment *seg = (ae_segment *)(a & ~(AE_SEGMENT_SIZE - 1));
  ae_run *r = &seg->runs[(a - (uintptr_t)seg) >> AE_SLOT_SHIFT];
  const uint8_t kind = atomic_load_explicit(&r->kind, memory_order_acquire);
  if (AE_UNLIKELY(kind != AE_SLOT_HEAD)) {
    if (kind != AE_SLOT_TAIL) return false;
    r = &seg->runs[r->head];
  }
  const size_t off = a - (uintptr_t)r->start;
  const size_t idx = (size_t)(((uint64_t)off * r->div_mul) >> 40);
  if (AE_UNLIKELY(idx >= r->nblocks)) return false;
  const size_t uoff = off - idx * r->block_size;
  _Atomic uint64_t *meta = &r->meta[idx];
  uint64_t m = atomic_load_explicit(meta, memory_order_acquire);
  /* State LIVE and the recorded user offset equal to this pointer's, in one compare. */
  if (AE_UNLIKELY((m & 0xfffff) != (uoff | AE_STATE_LIVE) || (uoff & 15) != 0)) return false;
  if (AE_UNLIKELY(!atomic_compare_exchange_strong_explicit(meta, &m, (m & ~(uint64_t)0xf) | AE_STATE_QUARANTINED,
                                                           memory_order_acq_rel, memory_order_acquire)))
    return false;
  const size_t size = AE_META_SIZE(m);
  verify_fast(p, size);
  record_trace(p, true);
  account_free(h, size);
  _ae_quarantine_push_small(h, p, meta, size, r->block_size);
  return true;
}

void aether_safe_free(void *ptr) {
  if (ptr == NULL) return;
  ae_heap *h = _ae_tl_heap;
  if (AE_LIKELY(h != NULL) && free_fast(h, ptr)) return;
  _ae_init_fast();
  ae_lookup lk;
  lookup(ptr, &lk);
  if (AE_UNLIKELY(lk.where <= LK_IN_SEGMENT)) {
    report_invalid_free(ptr);
    return;
  }
  if (AE_UNLIKELY(lk.state != AE_STATE_LIVE)) {
    report_double_free(&lk, ptr, lk.size);
    return;
  }
  release(&lk, ptr, true);
}

void *aether_safe_realloc(void *ptr, size_t new_size) {
  if (ptr == NULL) return aether_safe_malloc(new_size);
  if (new_size == 0) {
    aether_safe_free(ptr);
    return NULL;
  }
  _ae_init_fast();
  ae_lookup lk;
  lookup(ptr, &lk);
  if (AE_UNLIKELY(lk.where <= LK_IN_SEGMENT || lk.state != AE_STATE_LIVE)) {
    report_invalid_realloc(lk.where > LK_IN_SEGMENT ? &lk : NULL, ptr, lk.where > LK_IN_SEGMENT ? lk.size : 0);
    _ae_fail(AETHER_ERR_INVALID_POINTER, "aether_safe_realloc: %p is not a live allocation", ptr);
    return NULL;
  }
  uint8_t *user = ptr;
  verify_fast(user, lk.size);
  ae_heap *h = _ae_heap_get();
  /* In place when the block has room for the new size and its back guard. The block is held (BUSY) while its
   * header and guards are rewritten, so a heap walk never reads them half old, half new. */
  bool in_place = false;
  if (lk.where == LK_SMALL) {
    const size_t off = (size_t)(user - lk.block);
    if (off + new_size + _ae_back_guard <= lk.run->block_size) {
      if (!_ae_meta_hold(lk.meta, lk.m)) { /* freed by another thread while we looked */
        report_invalid_realloc(&lk, ptr, lk.size);
        return NULL;
      }
      in_place = true;
    }
  } else {
    in_place = _ae_huge_resize_in_place(user, new_size);
  }
  if (in_place) {
    header_write(user, new_size, AE_MAGIC_LIVE);
    guards_write(user, new_size);
    if (lk.where == LK_SMALL)
      _ae_meta_unhold(lk.meta, AE_META(new_size, (size_t)(user - lk.block), AE_META_CLS(lk.m), AE_STATE_LIVE));
    else
      _ae_huge_publish(user);
    if (h != NULL) {
      account_free(h, lk.size);
      account_alloc(h, new_size);
      relaxed_add(&h->allocs, (uint64_t)-1); /* a resize is not a new allocation */
      relaxed_add(&h->frees, (uint64_t)-1);
    }
    return user;
  }
  void *fresh = aether_safe_malloc(new_size);
  if (fresh == NULL) return NULL; /* the old block is untouched */
  memcpy(fresh, user, lk.size < new_size ? lk.size : new_size);
  release(&lk, user, false);
  return fresh;
}

size_t aether_safe_usable_size(const void *ptr) {
  if (ptr == NULL) return 0;
  _ae_init_fast();
  ae_lookup lk;
  lookup(ptr, &lk);
  return lk.where > LK_IN_SEGMENT && lk.state == AE_STATE_LIVE ? lk.size : 0;
}

/* ---------------------------------------------------------------------------- the unchecked path --- */
void *aether_malloc(size_t size) { return size == 0 ? NULL : malloc(size); }
void aether_free(void *ptr) { free(ptr); }

/* ------------------------------------------------------------------------------- walks and stats --- */
/* A min-heap of the largest blocks seen, kept in a caller buffer: O(n log k) over the whole heap. */
typedef struct top_k {
  aether_memory_block *out;
  size_t max, filled;
  uint64_t count, bytes;
} top_k;

static void top_k_visit(void *user, size_t size, _Atomic uint64_t *meta, uint64_t m, void *arg) {
  top_k *t = arg;
  if (t->max == 0) {
    t->count++;
    t->bytes += size;
    return;
  }
  if (meta != NULL && !_ae_meta_hold(meta, m)) return; /* freed or resized since the walk read its word */
  aether_memory_block b = {(uint64_t)(uintptr_t)user, size, header_of(user)->alloc_trace, 0};
  if (meta != NULL) _ae_meta_unhold(meta, m);
  t->count++;
  t->bytes += size;
  size_t i;
  if (t->filled < t->max) {
    i = t->filled++;
    while (i > 0 && t->out[(i - 1) / 2].size > b.size) {
      t->out[i] = t->out[(i - 1) / 2];
      i = (i - 1) / 2;
    }
    t->out[i] = b;
    return;
  }
  if (b.size <= t->out[0].size) return;
  i = 0; /* replace the smallest, sift down */
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= t->filled) break;
    if (c + 1 < t->filled && t->out[c + 1].size < t->out[c].size) c++;
    if (t->out[c].size >= b.size) break;
    t->out[i] = t->out[c];
    i = c;
  }
  t->out[i] = b;
}

static int by_size_desc(const void *a, const void *b) {
  const aether_memory_block *x = a, *y = b;
  if (x->size != y->size) return x->size < y->size ? 1 : -1;
  return x->address < y->address ? -1 : x->address > y->address;
}

static void collect_live(top_k *t) {
  _ae_heap_visit_live(top_k_visit, t);
  _ae_huge_visit_live(top_k_visit, t);
  qsort(t->out, t->filled, sizeof *t->out, by_size_desc);
}

size_t aether_memory_live_blocks(aether_memory_block *out, size_t max) {
  _ae_init_fast();
  top_k t = {.out = out, .max = out == NULL ? 0 : max};
  collect_live(&t);
  return (size_t)t.count;
}

size_t aether_check_leaks(void) {
  _ae_init_fast();
  const size_t show = AE_OPT(leak_report_max);
  const size_t scratch_len = AE_ALIGN_UP(show * sizeof(aether_memory_block) + 1, 4096);
  aether_memory_block *blocks = NULL;
  if (show > 0) {
    blocks = mmap(NULL, scratch_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (blocks == MAP_FAILED) blocks = NULL;
  }
  top_k t = {.out = blocks, .max = blocks ? show : 0};
  collect_live(&t);
  if (t.count > 0) {
    /* One line, so a log reader can grep it: the count, the largest blocks, and the total. */
    const size_t cap = 160 + t.filled * 48;
    char *line = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (line != MAP_FAILED) {
      size_t n = (size_t)snprintf(line, cap, "AETHER MEMORY: %" PRIu64 " allocation(s) leaked:", t.count);
      for (size_t i = 0; i < t.filled && n < cap; i++)
        n += (size_t)snprintf(line + n, cap - n, "%s 0x%" PRIx64 " (%" PRIu64 " bytes)", i ? "," : "",
                              t.out[i].address, t.out[i].size);
      if (n < cap && t.count > t.filled)
        n += (size_t)snprintf(line + n, cap - n, "%s ... %" PRIu64 " more", t.filled ? "," : "", t.count - t.filled);
      if (n < cap) n += (size_t)snprintf(line + n, cap - n, "; %" PRIu64 " bytes in total", t.bytes);
      _ae_log_line(line, n < cap ? n : cap - 1);
      munmap(line, cap);
    }
  }
  if (blocks) munmap(blocks, scratch_len);
  return (size_t)t.count;
}

size_t aether_memory_usage(void) {
  _ae_init_fast();
  aether_memory_stats s;
  _ae_heap_totals(&s);
  return (size_t)s.live_bytes;
}

aether_status aether_memory_get_stats(aether_memory_stats *out) {
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_memory_get_stats: out is NULL");
  _ae_init_fast();
  memset(out, 0, sizeof *out);
  _ae_heap_totals(out);
  out->reserved_bytes = _ae_reserved_bytes() + _ae_huge_reserved_bytes();
  for (int k = 0; k < AETHER_MEM_ERROR_KINDS; k++) out->errors[k] = _ae_error_count(k);
  return AETHER_OK;
}

/* check_all: findings are collected under the walk's lock and reported after it, so a user error hook can
 * never run while the allocator's locks are held. */
#define AE_CHECK_MAX_FINDINGS 256
typedef struct check_state {
  struct {
    uint8_t *user;
    size_t size;
    _Atomic uint64_t *meta;
    uint64_t m;
  } found[AE_CHECK_MAX_FINDINGS];
  size_t nfound, damaged;
} check_state;

/* The block is held (BUSY) while its header and guards are read: its owner may free or resize it meanwhile,
 * and then waits for the few loads below. The owner's own user bytes next to the guards are not touched. */
static void check_visit(void *user, size_t size, _Atomic uint64_t *meta, uint64_t m, void *arg) {
  check_state *st = arg;
  if (meta != NULL && !_ae_meta_hold(meta, m)) return; /* freed or resized since the walk read its word */
  const ae_header *h = header_of(user);
  const bool bad = front_guard_damage(user) != 0 || back_guard_damage(user, size) != 0 ||
                   h->magic != AE_MAGIC_LIVE || h->size != size ||
                   h->check != _ae_header_check(user, size, AE_MAGIC_LIVE);
  if (meta != NULL) _ae_meta_unhold(meta, m);
  if (!bad) return;
  st->damaged++;
  if (st->nfound < AE_CHECK_MAX_FINDINGS) {
    st->found[st->nfound].user = user;
    st->found[st->nfound].size = size;
    st->found[st->nfound].meta = meta;
    st->found[st->nfound].m = m;
    st->nfound++;
  }
}

size_t aether_memory_check_all(void) {
  _ae_init_fast();
  check_state *st = mmap(NULL, sizeof(check_state), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (st == MAP_FAILED) return 0;
  _ae_heap_visit_live(check_visit, st);
  _ae_huge_visit_live(check_visit, st);
  /* Reported after the walk (no lock held while a user hook runs), each block held again while it is read. */
  for (size_t i = 0; i < st->nfound; i++) {
    _Atomic uint64_t *meta = st->found[i].meta;
    uint8_t *user = st->found[i].user;
    const bool held = meta != NULL ? _ae_meta_hold(meta, st->found[i].m) : _ae_huge_hold(user, st->found[i].size);
    if (!held) continue; /* freed or resized since: that call checked it */
    verify_block(user, st->found[i].size);
    if (meta != NULL) _ae_meta_unhold(meta, st->found[i].m);
    else _ae_huge_publish(user);
  }
  const size_t damaged = st->damaged + _ae_quarantine_verify_own();
  munmap(st, sizeof(check_state));
  return damaged;
}
