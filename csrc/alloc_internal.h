/* alloc_internal.h: the safe allocator's private contract between options.c, report.c, heap.c, huge.c and
 * safe_alloc.c.
 *
 * The design in one paragraph. Blocks come from 4 MiB segments obtained with mmap and tracked in a segment
 * map, so "is this address ours?" is one byte load and never a read through the pointer. A segment is cut
 * into 64 KiB slots; a run of slots serves one size class. Each block has an 8-byte record in a side table
 * outside the block (state, user offset, size): that side table is the registry. Threads allocate from a
 * private cache per size class and refill from / spill to a per-class central list under a mutex, in batches,
 * so no lock is taken on the common path. A free validates the pointer against the registry, claims the
 * block with one CAS (LIVE -> QUARANTINED, so two racing frees cannot both succeed), checks header and
 * guards, poisons the user bytes and parks the block in the thread's quarantine ring; a block leaving the
 * ring has its poison verified (a write after free is reported) before it becomes FREE and reusable.
 * Allocations too large for a run ("huge") get their own mapping, tracked in a small hash table (huge.c).
 */
#ifndef AETHER_ALLOC_INTERNAL_H
#define AETHER_ALLOC_INTERNAL_H

#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>

/* ---------------------------------------------------------------------------------------- options --- */
/* Runtime-settable fields are atomics (relaxed: each is an independent knob) so that changing one while
 * other threads allocate is not a data race. The log file path lives in report.c, under its lock. */
typedef struct ae_options {
  _Atomic size_t quarantine_bytes;
  _Atomic int abort_on_error;
  _Atomic int quiet;
  size_t redzone; /* fixed before the first allocation */
  _Atomic size_t leak_report_max;
} ae_options;
#define AE_OPT(field) atomic_load_explicit(&_ae_opt.field, memory_order_relaxed)

extern ae_options _ae_opt;
/* Guard sizes derived from the redzone: front + sizeof(ae_header) is a multiple of 16 so user data stays
 * 16-aligned; back is the redzone rounded up to 8 (checked with 8-byte loads). */
extern size_t _ae_front_guard;
extern size_t _ae_back_guard;
extern uint64_t _ae_cookie;           /* per-process random key of the header checksum */
extern _Atomic int _ae_heap_used;     /* set by the first allocation: the redzone is fixed from then on */

void _ae_options_load_env(void);

/* ----------------------------------------------------------------------------------------- report --- */
/* Print one diagnostic line (unless quiet), record the event, count it, call the user hook, abort if asked.
 * The line is formatted by the caller so each message keeps the specification's exact wording. alloc_trace and
 * free_trace are the block's stack ids when known (0 otherwise); the detecting stack is captured here. */
void _ae_report_traced(aether_memory_error_kind kind, const void *addr, uint64_t size, uint64_t detail,
                       uint32_t alloc_trace, uint32_t free_trace, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
#define _ae_report(kind, addr, size, detail, ...) _ae_report_traced(kind, addr, size, detail, 0, 0, __VA_ARGS__)
/* Write a line (a newline is added) to the diagnostics sink, whatever the quiet option says. */
void _ae_log_line(const char *line, size_t len);
/* abort() for abort_on_error, after a report. Not declared noreturn on purpose: under ASan a call to a noreturn
 * function unpoisons the thread's stack first, which fails on a thread Bun started (see report.c). */
void _ae_abort_on_request(void);
/* Switch the sink to path ("" for stderr); returns a status. */
aether_status _ae_report_set_log_file(const char *path);
/* Copy the current log file path into out. */
void _ae_report_get_log_file(char *out, size_t len);
uint64_t _ae_error_count(int kind);
void _ae_report_atfork_prepare(void);
void _ae_report_atfork_parent(void);
void _ae_report_atfork_child(void);

/* --------------------------------------------------------------------------------- block layout --- */
typedef struct ae_header {
  uint64_t size;        /* requested user size */
  uint32_t magic;       /* AE_MAGIC_LIVE while allocated */
  uint32_t check;       /* keyed checksum of (user address, size, magic) */
  uint32_t alloc_trace; /* stack id of the allocation (0 when backtraces are off) */
  uint32_t free_trace;  /* stack id of the free */
} ae_header;
_Static_assert(sizeof(ae_header) == 24, "the header plus an 8-byte guard must be 32 bytes to keep 16-alignment");

/* The header sits before the front guard. */
#define _ae_header_of(user) ((ae_header *)((uint8_t *)(user) - _ae_front_guard - sizeof(ae_header)))

#define AE_MAGIC_LIVE 0xAE7EA11Cu
#define AE_MAGIC_FREED 0xAE7EF8EEu
#define AE_GUARD_WORD 0xDEADBEEFDEADBEEFull /* the spec's 0xDEADBEEF, as little-endian bytes EF BE AD DE */
#define AE_POISON_BYTE 0xDF                 /* freed memory, as in mimalloc's debug mode */
#define AE_POISON_WORD 0xDFDFDFDFDFDFDFDFull

/* Two independent multiplies: cheap on the hot path, and without the cookie a forged header matches with
 * probability 2^-32. */
static inline uint32_t _ae_header_check(const void *user, uint64_t size, uint32_t magic) {
  const uint64_t x = (((uint64_t)(uintptr_t)user ^ _ae_cookie) * 0x9E3779B97F4A7C15ull) ^
                     ((size ^ magic ^ (_ae_cookie >> 17)) * 0xBF58476D1CE4E5B9ull);
  return (uint32_t)(x >> 32);
}

/* ------------------------------------------------------------------------- registry record (meta) --- */
/* One 64-bit word per block: bits 0-3 state, 4-19 user offset from the block start in 16-byte units, 20-25 size
 * class, 26-63 requested size. Packing it in one word lets a single CAS claim a block for freeing, and lets a
 * quarantined block be found again from its user pointer and this word alone. */
enum { AE_STATE_NEVER = 0, AE_STATE_LIVE = 1, AE_STATE_QUARANTINED = 2, AE_STATE_FREE = 3, AE_STATE_BUSY = 4 };
#define AE_META(size, off, cls, state) \
  (((uint64_t)(size) << 26) | ((uint64_t)(cls) << 20) | ((uint64_t)((off) >> 4) << 4) | (uint64_t)(state))
#define AE_META_STATE(m) ((unsigned)((m) & 0xf))
#define AE_META_OFF(m) ((size_t)(((m) >> 4) & 0xffff) << 4)
#define AE_META_CLS(m) ((unsigned)(((m) >> 20) & 0x3f))
#define AE_META_SIZE(m) ((size_t)((m) >> 26))

/* BUSY: a live block held for a moment by a thread that reads or rewrites its header and guards while other
 * threads may be using the allocator: a heap walk (check_all, live_blocks, check_leaks) and a resize in place.
 * The holder swaps the LIVE word for BUSY with an acquire CAS (so it sees the header and guards that the release
 * store of LIVE published), does its reads or writes, and stores a LIVE word back with release. Whoever else
 * finds the block BUSY (a free, a realloc, usable_size, another walk) waits for the LIVE word (sched_yield) and
 * goes on from there. So the header and guards of a live block are never read while written: a walk needs no
 * validation afterwards, cannot report a block that is being resized as damaged, and is free of data races.
 * A holder never waits for anything while it holds a block, so no cycle of waits can form; a walk holds the
 * segment lock, which fork's prepare handler takes too, so no block is BUSY in a child after fork (except one
 * being resized in place by a thread that does not exist there, which the child cannot own). */
static inline uint64_t _ae_meta_wait(_Atomic uint64_t *meta) {
  uint64_t m;
  while (AE_META_STATE(m = atomic_load_explicit(meta, memory_order_acquire)) == AE_STATE_BUSY) sched_yield();
  return m;
}
/* Hold the block whose word is m (a LIVE word); false, holding nothing, once the word is anything else than m
 * (the block was freed or resized meanwhile). Waits while another thread holds it. */
static inline bool _ae_meta_hold(_Atomic uint64_t *meta, uint64_t m) {
  for (;;) {
    uint64_t seen = m;
    if (atomic_compare_exchange_strong_explicit(meta, &seen, (m & ~(uint64_t)0xf) | AE_STATE_BUSY,
                                                memory_order_acquire, memory_order_relaxed))
      return true;
    if (AE_META_STATE(seen) != AE_STATE_BUSY || _ae_meta_wait(meta) != m) return false;
  }
}
/* Give a held block back with its (possibly new) LIVE word. */
static inline void _ae_meta_unhold(_Atomic uint64_t *meta, uint64_t live) {
  atomic_store_explicit(meta, live, memory_order_release);
}

/* ------------------------------------------------------------------------------ segments and runs --- */
#define AE_SEGMENT_SHIFT 22
#define AE_SEGMENT_SIZE ((size_t)1 << AE_SEGMENT_SHIFT)
#define AE_SLOT_SHIFT 16
#define AE_SLOT_SIZE ((size_t)1 << AE_SLOT_SHIFT)
#define AE_SLOTS 64
#define AE_META_SLOTS 10          /* segment header and side tables; the other 54 slots hold blocks */
#define AE_MIN_BLOCK 48
#define AE_SLOT_META_ENTRIES 1368 /* >= AE_SLOT_SIZE / AE_MIN_BLOCK, rounded up to a multiple of 8 */
#define AE_NCLASSES 50
#define AE_MAX_SMALL_BLOCK ((size_t)256 << 10)

enum { AE_SLOT_FREE = 0, AE_SLOT_HEAD = 1, AE_SLOT_TAIL = 2 };

typedef struct ae_run {
  _Atomic uint8_t kind;   /* AE_SLOT_*; published with release once the fields below are set */
  uint8_t cls;
  uint16_t head;          /* for a TAIL slot: the slot index of its run's head */
  uint16_t nslots;
  uint16_t pad;
  uint32_t block_size;
  uint32_t nblocks;
  uint32_t bump;          /* blocks [bump, nblocks) were never handed out */
  uint32_t used;          /* blocks out of the central list (cached, live or quarantined); under the class lock */
  uint64_t div_mul;       /* ceil(2^40 / block_size): exact block index by multiply for offsets < 2^20 */
  uint8_t *start;
  _Atomic uint64_t *meta;
  void *free_list;        /* central free blocks, linked through their first word; under the class lock */
  struct ae_run *next, *prev; /* in the class's list of runs that have free blocks */
} ae_run;
_Static_assert(sizeof(ae_run) <= 80, "run descriptors are packed in the segment header");

typedef struct ae_segment {
  uint64_t magic;
  struct ae_segment *next;  /* all segments, under the segment lock */
  uint64_t used_slots;      /* bitmap of slots in runs; under the segment lock */
  uint8_t pad[AE_CACHE_LINE - 24];
  ae_run runs[AE_SLOTS];
} ae_segment;

/* The segment map: one byte per 4 MiB of the 47-bit user address space, reserved lazily by the kernel. */
extern _Atomic uint8_t *_ae_segmap;
static inline ae_segment *_ae_segment_of(const void *p) {
  const uintptr_t a = (uintptr_t)p;
  if (AE_UNLIKELY(a >> 47) || _ae_segmap == NULL) return NULL;
  if (atomic_load_explicit(&_ae_segmap[a >> AE_SEGMENT_SHIFT], memory_order_acquire) == 0) return NULL;
  return (ae_segment *)(a & ~(AE_SEGMENT_SIZE - 1));
}

/* Find the run holding p, or NULL if p is not inside a block run (metadata slots, free slots). */
static inline ae_run *_ae_run_of(ae_segment *seg, const void *p) {
  const size_t slot = ((uintptr_t)p - (uintptr_t)seg) >> AE_SLOT_SHIFT;
  if (slot < AE_META_SLOTS) return NULL;
  ae_run *r = &seg->runs[slot];
  const uint8_t kind = atomic_load_explicit(&r->kind, memory_order_acquire);
  if (kind == AE_SLOT_TAIL) r = &seg->runs[r->head];
  else if (kind != AE_SLOT_HEAD) return NULL;
  return r;
}

static inline size_t _ae_block_index(const ae_run *r, const void *p) {
  return (size_t)((((uintptr_t)p - (uintptr_t)r->start) * r->div_mul) >> 40);
}

/* ------------------------------------------------------------------------------- thread heaps --- */
#define AE_TCACHE_MAX 64

/* A cached block travels with its registry word, so allocation never has to look its run up. */
typedef struct ae_cached {
  void *block;
  _Atomic uint64_t *meta;
} ae_cached;

typedef struct ae_tcache {
  uint32_t count;
  uint32_t cap;
  ae_cached slots[AE_TCACHE_MAX];
} ae_tcache;

/* 16 bytes: the registry word holds the rest (size, class, offset of the user pointer in the block). */
typedef struct ae_qentry {
  void *user;
  _Atomic uint64_t *meta;  /* NULL for a huge block */
} ae_qentry;

typedef struct ae_heap {
  /* Owner-only fields first. */
  ae_qentry *qring;
  uint32_t qcap, qhead, qtail;
  uint64_t qbytes_local;
  int64_t unflushed;              /* live-byte delta not yet added to the global counter */
  struct ae_heap *next;           /* all heaps, under the heap-list lock */
  int in_use;
  /* Counters the owner writes (plain load + store) and other threads read. */
  _Atomic uint64_t allocs, frees, alloc_bytes, freed_bytes, qbytes;
  _Atomic uint64_t qring_bytes;   /* the quarantine ring's mapping (qcap entries), for the reserved-bytes stat */
  _Atomic int64_t peak_base, peak_local;
  ae_tcache cache[AE_NCLASSES];
} ae_heap;

extern const uint32_t _ae_class_size[AE_NCLASSES];

static inline unsigned _ae_size_class(size_t need) {
  if (need <= 128) return need <= AE_MIN_BLOCK ? 0 : (unsigned)((need + 15) >> 4) - 3;
  const unsigned b = 63u - (unsigned)__builtin_clzll((unsigned long long)(need - 1));
  return 6u + (b - 7u) * 4u + ((unsigned)((need - 1) >> (b - 2)) & 3u);
}

ae_heap *_ae_heap_get(void);          /* the calling thread's heap, created on first use; NULL if OOM */
void _ae_heap_init_global(void);
/* Refill cache c of h from the central list; returns false only when out of memory. */
bool _ae_central_refill(ae_heap *h, unsigned cls);
/* Visit every block whose state is LIVE: fn(user, size, meta_word_ptr, meta_word, arg). Takes the segment lock
 * (the huge table's lock for huge blocks, which have no meta word: NULL and 0). The visitor holds a small block
 * (_ae_meta_hold with the word it was given) before it reads the block's header or guards. */
typedef void ae_block_visitor(void *user, size_t size, _Atomic uint64_t *meta, uint64_t m, void *arg);
void _ae_heap_visit_live(ae_block_visitor *fn, void *arg);
/* Sum of all heaps' counters, folding in the threads that exited. */
void _ae_heap_totals(aether_memory_stats *out);
uint64_t _ae_reserved_bytes(void);
void _ae_heap_flush_peak(ae_heap *h);
/* ----------------------------------------------------------------------------------- quarantine --- */
/* Fast paths inline here; ring growth, huge blocks and the disabled case are in quarantine.c. */
void _ae_quarantine_drain(ae_heap *h);
/* Verify the poison of every block in the calling thread's quarantine now; returns how many were written to
 * (each reported as a use after free, then re-poisoned so it is reported once). */
size_t _ae_quarantine_verify_own(void);
extern __thread ae_heap *_ae_tl_heap __attribute__((tls_model("initial-exec")));
void _ae_quarantine_push(ae_heap *h, void *user, _Atomic uint64_t *meta, size_t size, size_t cost);
void _ae_quarantine_evict_huge(ae_heap *h, void *user);
void _ae_report_use_after_free(void *user, size_t size, size_t offset);
void _ae_central_spill(ae_heap *h, unsigned cls);

#define AE_POISON_HUGE_MAX ((size_t)64 << 10) /* huge blocks are poisoned (and checked) in their first 64 KiB */

/* A page of poison bytes: comparing against it lets libc's vectorized memcmp do the verification. */
extern const uint8_t _ae_poison_page[4096];
size_t _ae_poison_damage_slow(const uint8_t *p, size_t n);

static inline __attribute__((always_inline)) uint64_t _ae_load64(const uint8_t *p) {
  uint64_t v;
  __builtin_memcpy(&v, p, 8);
  return v;
}
static inline __attribute__((always_inline)) void _ae_store64(uint8_t *p, uint64_t v) { __builtin_memcpy(p, &v, 8); }

/* Offset + 1 of the first byte that is not the poison byte, or 0. Blocks of 8 to 32 bytes, the common case, are
 * checked with four overlapping 8-byte loads instead of a call. */
static inline __attribute__((always_inline)) size_t _ae_poison_damage(const uint8_t *p, size_t n) {
  if (AE_LIKELY(n >= 8 && n <= 32)) {
    const size_t h = n >> 1 & ~(size_t)7; /* 0 or 8 (n < 16), 8 or 16 (n >= 16) */
    const uint64_t bad = (_ae_load64(p) ^ AE_POISON_WORD) | (_ae_load64(p + h) ^ AE_POISON_WORD) |
                         (_ae_load64(p + n - 8 - h) ^ AE_POISON_WORD) | (_ae_load64(p + n - 8) ^ AE_POISON_WORD);
    if (AE_LIKELY(bad == 0)) return 0;
  } else if (AE_LIKELY(n <= sizeof _ae_poison_page) && __builtin_memcmp(p, _ae_poison_page, n) == 0) {
    return 0;
  }
  return _ae_poison_damage_slow(p, n);
}

/* Poison [p, p+n): the same overlapping-store trick for 8 to 32 bytes. */
static inline __attribute__((always_inline)) void _ae_poison(uint8_t *p, size_t n) {
  if (AE_LIKELY(n >= 8 && n <= 32)) {
    const size_t h = n >> 1 & ~(size_t)7;
    _ae_store64(p, AE_POISON_WORD);
    _ae_store64(p + h, AE_POISON_WORD);
    _ae_store64(p + n - 8 - h, AE_POISON_WORD);
    _ae_store64(p + n - 8, AE_POISON_WORD);
    return;
  }
  __builtin_memset(p, AE_POISON_BYTE, n);
}

/* The block becomes FREE in the registry (size and offset stay, so a later free is still named a double free)
 * and goes back to this thread's cache. */
static inline __attribute__((always_inline)) void _ae_release_small(ae_heap *h, void *user, _Atomic uint64_t *meta, uint64_t m) {
  atomic_store_explicit(meta, (m & ~(uint64_t)0xf) | AE_STATE_FREE, memory_order_release);
  const unsigned cls = AE_META_CLS(m);
  ae_tcache *tc = &h->cache[cls];
  if (AE_UNLIKELY(tc->count == tc->cap)) _ae_central_spill(h, cls);
  tc->slots[tc->count].block = (uint8_t *)user - AE_META_OFF(m);
  tc->slots[tc->count].meta = meta;
  tc->count++;
}

/* The oldest block leaves: its poison is verified (a write after free is reported), then it is reusable. */
static inline __attribute__((always_inline)) void _ae_quarantine_evict_one(ae_heap *h) {
  const ae_qentry e = h->qring[h->qhead & (h->qcap - 1)];
  h->qhead++;
  if (AE_UNLIKELY(e.meta == NULL)) {
    _ae_quarantine_evict_huge(h, e.user);
    return;
  }
  const uint64_t m = atomic_load_explicit(e.meta, memory_order_relaxed);
  h->qbytes_local -= _ae_class_size[AE_META_CLS(m)];
  const size_t damage = _ae_poison_damage(e.user, AE_META_SIZE(m));
  if (AE_UNLIKELY(damage != 0)) _ae_report_use_after_free(e.user, AE_META_SIZE(m), damage - 1);
  _ae_release_small(h, e.user, e.meta, m);
}

/* Park a claimed small block: poison it, push it, evict what exceeds the budget. */
static inline __attribute__((always_inline)) void _ae_quarantine_push_small(ae_heap *h, void *user, _Atomic uint64_t *meta, size_t size,
                                             size_t cost) {
  const size_t budget = AE_OPT(quarantine_bytes);
  if (AE_UNLIKELY(budget == 0 || h->qtail - h->qhead == h->qcap)) {
    _ae_quarantine_push(h, user, meta, size, cost);
    return;
  }
  _ae_poison(user, size);
  h->qring[h->qtail & (h->qcap - 1)] = (ae_qentry){.user = user, .meta = meta};
  h->qtail++;
  h->qbytes_local += cost;
  while (AE_UNLIKELY(h->qbytes_local > budget)) _ae_quarantine_evict_one(h); /* usually exactly once */
  atomic_store_explicit(&h->qbytes, h->qbytes_local, memory_order_relaxed);
}

void _ae_heap_atfork_prepare(void);
void _ae_heap_atfork_parent(void);
void _ae_heap_atfork_child(void);

/* ---------------------------------------------------------------------------------------- traces --- */
extern _Atomic int _ae_backtrace_on;
/* Record the calling stack (minus skip innermost frames) in the depot; its id, or 0. */
uint32_t _ae_trace_capture(int skip);
bool _ae_trace_valid(uint32_t id);
void _ae_trace_atfork_prepare(void);
void _ae_trace_atfork_parent(void);
void _ae_trace_atfork_child(void);

/* ----------------------------------------------------------------------------------------- huge --- */
void *_ae_huge_alloc(size_t size, size_t alignment);
/* Validate and look up a huge user pointer; returns true if p is a huge block's user pointer and fills the
 * record state (AE_STATE_*) and size. */
bool _ae_huge_lookup(const void *p, unsigned *state, size_t *size);
/* Claim a live huge block for freeing (LIVE -> QUARANTINED); false if it was not live. */
bool _ae_huge_claim(const void *p);
/* Release a quarantined huge block: unmap it, keep a FREED record for double-free diagnosis. */
void _ae_huge_release(void *p);
/* Resize in place if the mapping allows; the block is then BUSY (header and guards to rewrite) until
 * _ae_huge_publish. A new block from _ae_huge_alloc is BUSY too until published. */
bool _ae_huge_resize_in_place(void *p, size_t new_size);
void _ae_huge_publish(void *p);
/* Hold a live huge block of this size (BUSY) to read its header and guards outside the table's lock; false if
 * it is not live with that size any more. Give it back with _ae_huge_publish. */
bool _ae_huge_hold(const void *p, size_t size);
void _ae_huge_visit_live(ae_block_visitor *fn, void *arg);
uint64_t _ae_huge_reserved_bytes(void);
void _ae_huge_atfork_prepare(void);
void _ae_huge_atfork_parent(void);
void _ae_huge_atfork_child(void);

/* ---------------------------------------------------------------------------- shared helpers --- */
/* Allocation with C library semantics for the preload: size 0 gives a unique block (its size is recorded as 0,
 * so any write into it is an overflow); alignment is a power of two. */
void *_ae_safe_alloc(size_t size, size_t alignment);
/* Set (from a signal handler) to ask for aether_memory_check_all() at the next cache refill. */
extern _Atomic int _ae_check_requested;

void _ae_ensure_init(void);
extern _Atomic int _ae_init_state; /* 0 none, 1 running, 2 done */
static inline void _ae_init_fast(void) {
  if (AE_UNLIKELY(atomic_load_explicit(&_ae_init_state, memory_order_acquire) != 2)) _ae_ensure_init();
}


#endif
