/* heap.c: where blocks come from. Segments (4 MiB, mmap), runs of 64 KiB slots per size class, the central
 * free lists (one mutex per class, touched once per batch) and the per-thread caches in front of them.
 * Lock order: a class's central lock, then the segment lock, then the heap-list lock. */
#include "alloc_internal.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define AE_SEGMENT_MAGIC 0xAE7E5E6D00000001ull
#define AE_META_TABLE_OFFSET 8192 /* side tables start after the segment header (4.6 KiB) */
_Static_assert(sizeof(ae_segment) <= AE_META_TABLE_OFFSET, "segment header overlaps the side tables");
_Static_assert(AE_META_TABLE_OFFSET + (AE_SLOTS - AE_META_SLOTS) * AE_SLOT_META_ENTRIES * 8 <=
                   AE_META_SLOTS * AE_SLOT_SIZE,
               "side tables do not fit in the metadata slots");

const uint32_t _ae_class_size[AE_NCLASSES] = {
    48,     64,     80,     96,     112,    128,    160,    192,    224,    256,    320,    384,    448,
    512,    640,    768,    896,    1024,   1280,   1536,   1792,   2048,   2560,   3072,   3584,   4096,
    5120,   6144,   7168,   8192,   10240,  12288,  14336,  16384,  20480,  24576,  28672,  32768,  40960,
    49152,  57344,  65536,  81920,  98304,  114688, 131072, 163840, 196608, 229376, 262144,
};

/* Each central list sits on its own cache line: threads refilling different classes never contend. */
typedef struct ae_central {
  pthread_mutex_t lock;
  ae_run *avail; /* runs with a free block (free list or bump) */
} __attribute__((aligned(AE_CACHE_LINE))) ae_central;

static ae_central centrals[AE_NCLASSES];
static uint8_t run_slots[AE_NCLASSES];
static uint32_t tcache_cap[AE_NCLASSES];

static pthread_mutex_t segment_lock = PTHREAD_MUTEX_INITIALIZER;
static ae_segment *segments;
static uint64_t segment_count;

static pthread_mutex_t heap_list_lock = PTHREAD_MUTEX_INITIALIZER;
static ae_heap *heaps;
static uint64_t heap_count;
static pthread_key_t heap_key;

_Atomic uint8_t *_ae_segmap;
__thread ae_heap *_ae_tl_heap __attribute__((tls_model("initial-exec")));
static _Atomic int64_t live_flushed; /* sum of all heaps' flushed live-byte deltas */
static _Atomic int64_t peak_flushed;

static void *map_pages(size_t len) {
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

/* ------------------------------------------------------------------------------------- geometry --- */
static void compute_geometry(void) {
  for (unsigned c = 0; c < AE_NCLASSES; c++) {
    const size_t bs = _ae_class_size[c];
    /* The fewest slots that hold 4 blocks, then up to 3 more if that wastes less of the run. */
    size_t best = (4 * bs + AE_SLOT_SIZE - 1) / AE_SLOT_SIZE, best_waste = SIZE_MAX;
    for (size_t s = best; s < best + 4 && s <= 16; s++) {
      const size_t waste = ((s * AE_SLOT_SIZE) % bs) * 1000 / (s * AE_SLOT_SIZE);
      if (waste < best_waste) best_waste = waste, best = s;
    }
    run_slots[c] = (uint8_t)best;
    size_t cap = ((size_t)256 << 10) / bs;
    tcache_cap[c] = (uint32_t)(cap < 2 ? 2 : cap > AE_TCACHE_MAX ? AE_TCACHE_MAX : cap);
    pthread_mutex_init(&centrals[c].lock, NULL);
  }
}

/* ------------------------------------------------------------------------------------- segments --- */
static ae_segment *segment_new(void) {
  /* Map twice the size and trim, so the segment is aligned to its size and p & ~mask finds its header. */
  uint8_t *raw = map_pages(2 * AE_SEGMENT_SIZE);
  if (raw == NULL) return NULL;
  uint8_t *aligned = (uint8_t *)AE_ALIGN_UP((uintptr_t)raw, AE_SEGMENT_SIZE);
  if (aligned > raw) munmap(raw, (size_t)(aligned - raw));
  uint8_t *end = raw + 2 * AE_SEGMENT_SIZE;
  if (end > aligned + AE_SEGMENT_SIZE) munmap(aligned + AE_SEGMENT_SIZE, (size_t)(end - aligned - AE_SEGMENT_SIZE));
  if ((uintptr_t)aligned >> 47) { /* outside the map's range (5-level paging hint): give it back */
    munmap(aligned, AE_SEGMENT_SIZE);
    return NULL;
  }
  ae_segment *seg = (ae_segment *)aligned;
  seg->magic = AE_SEGMENT_MAGIC;
  seg->used_slots = (1ull << AE_META_SLOTS) - 1;
  seg->next = segments;
  segments = seg;
  segment_count++;
  atomic_store_explicit(&_ae_segmap[(uintptr_t)aligned >> AE_SEGMENT_SHIFT], 1, memory_order_release);
  return seg;
}

static _Atomic uint64_t *slot_meta(ae_segment *seg, size_t slot) {
  return (_Atomic uint64_t *)((uint8_t *)seg + AE_META_TABLE_OFFSET +
                              (slot - AE_META_SLOTS) * AE_SLOT_META_ENTRIES * sizeof(uint64_t));
}

/* A new run of class cls; called with the class lock held, takes the segment lock. */
static ae_run *run_new(unsigned cls) {
  const size_t n = run_slots[cls];
  const uint64_t want = (n == 64 ? ~0ull : ((1ull << n) - 1));
  pthread_mutex_lock(&segment_lock);
  ae_segment *seg = segments;
  size_t slot = 0;
  for (; seg != NULL; seg = seg->next) {
    for (slot = AE_META_SLOTS; slot + n <= AE_SLOTS; slot++)
      if ((seg->used_slots & (want << slot)) == 0) break;
    if (slot + n <= AE_SLOTS) break;
  }
  if (seg == NULL) {
    seg = segment_new();
    slot = AE_META_SLOTS;
  }
  if (seg == NULL) {
    pthread_mutex_unlock(&segment_lock);
    return NULL;
  }
  seg->used_slots |= want << slot;
  ae_run *r = &seg->runs[slot];
  const size_t bs = _ae_class_size[cls];
  r->cls = (uint8_t)cls;
  r->head = (uint16_t)slot;
  r->nslots = (uint16_t)n;
  r->block_size = (uint32_t)bs;
  r->nblocks = (uint32_t)(n * AE_SLOT_SIZE / bs);
  r->bump = 0;
  r->used = 0;
  r->div_mul = ((1ull << 40) + bs - 1) / bs;
  r->start = (uint8_t *)seg + slot * AE_SLOT_SIZE;
  r->meta = slot_meta(seg, slot);
  r->free_list = NULL;
  r->next = r->prev = NULL;
  for (size_t i = 0; i < r->nblocks; i++) atomic_store_explicit(&r->meta[i], 0, memory_order_relaxed);
  for (size_t i = 1; i < n; i++) {
    seg->runs[slot + i].head = (uint16_t)slot;
    atomic_store_explicit(&seg->runs[slot + i].kind, AE_SLOT_TAIL, memory_order_release);
  }
  atomic_store_explicit(&r->kind, AE_SLOT_HEAD, memory_order_release);
  pthread_mutex_unlock(&segment_lock);
  return r;
}

/* Give an empty run's slots back to its segment; its pages go back to the OS. Class lock held.
 * The pages go first, while the slots are still this run's: once they are marked free, a thread refilling
 * another class may carve a new run out of them at once (under the segment lock alone), and a later
 * MADV_DONTNEED would zero that run's fresh blocks, headers, guards and quarantined poison included. */
static void run_release(ae_run *r) {
  ae_segment *seg = (ae_segment *)((uintptr_t)r & ~(AE_SEGMENT_SIZE - 1));
  const size_t slot = r->head, n = r->nslots;
  /* The segment stays mapped (its header must stay readable for wild-pointer checks); only the pages go. */
  madvise(r->start, n * AE_SLOT_SIZE, MADV_DONTNEED);
  pthread_mutex_lock(&segment_lock);
  for (size_t i = 0; i < n; i++) atomic_store_explicit(&seg->runs[slot + i].kind, AE_SLOT_FREE, memory_order_release);
  seg->used_slots &= ~(((n == 64) ? ~0ull : ((1ull << n) - 1)) << slot);
  pthread_mutex_unlock(&segment_lock);
}

static void avail_push(ae_central *c, ae_run *r) {
  r->prev = NULL;
  r->next = c->avail;
  if (c->avail) c->avail->prev = r;
  c->avail = r;
}

static void avail_remove(ae_central *c, ae_run *r) {
  if (r->prev) r->prev->next = r->next;
  else c->avail = r->next;
  if (r->next) r->next->prev = r->prev;
  r->next = r->prev = NULL;
}

static bool run_has_free(const ae_run *r) { return r->free_list != NULL || r->bump < r->nblocks; }

/* ------------------------------------------------------------------------------------- central --- */
bool _ae_central_refill(ae_heap *h, unsigned cls) {
  /* A walk asked for by a signal handler runs here, where this thread holds no allocator lock. */
  if (AE_UNLIKELY(atomic_load_explicit(&_ae_check_requested, memory_order_relaxed)) &&
      atomic_exchange_explicit(&_ae_check_requested, 0, memory_order_relaxed))
    aether_memory_check_all();
  ae_central *c = &centrals[cls];
  ae_tcache *tc = &h->cache[cls];
  const uint32_t want = tc->cap / 2 > 0 ? tc->cap / 2 : 1;
  pthread_mutex_lock(&c->lock);
  while (tc->count < want) {
    ae_run *r = c->avail;
    if (r == NULL) {
      r = run_new(cls);
      if (r == NULL) break;
      avail_push(c, r);
    }
    while (tc->count < want && run_has_free(r)) {
      void *b;
      if (r->free_list != NULL) {
        b = r->free_list;
        r->free_list = *(void **)b;
      } else {
        b = r->start + (size_t)r->bump++ * r->block_size;
      }
      r->used++;
      tc->slots[tc->count].block = b;
      tc->slots[tc->count].meta = &r->meta[_ae_block_index(r, b)];
      tc->count++;
    }
    if (!run_has_free(r)) avail_remove(c, r);
  }
  pthread_mutex_unlock(&c->lock);
  return tc->count > 0;
}

static void central_return_locked(ae_central *c, void *b) {
  ae_segment *seg = (ae_segment *)((uintptr_t)b & ~(AE_SEGMENT_SIZE - 1));
  ae_run *r = _ae_run_of(seg, b);
  const bool was_full = !run_has_free(r);
  *(void **)b = r->free_list;
  r->free_list = b;
  r->used--;
  if (was_full) avail_push(c, r);
  /* An empty run goes back to its segment unless it is the class's only run with free blocks. */
  if (r->used == 0 && (c->avail != r || r->next != NULL)) {
    avail_remove(c, r);
    run_release(r);
  }
}

void _ae_central_spill(ae_heap *h, unsigned cls) {
  ae_central *c = &centrals[cls];
  ae_tcache *tc = &h->cache[cls];
  const uint32_t keep = tc->cap / 2;
  pthread_mutex_lock(&c->lock);
  /* Return the oldest half (bottom of the stack): the top stays warm in this thread's cache. */
  const uint32_t give = tc->count - keep;
  for (uint32_t i = 0; i < give; i++) central_return_locked(c, tc->slots[i].block);
  memmove(tc->slots, tc->slots + give, keep * sizeof(ae_cached));
  tc->count = keep;
  pthread_mutex_unlock(&c->lock);
}

static void cache_flush_all(ae_heap *h) {
  for (unsigned cls = 0; cls < AE_NCLASSES; cls++) {
    ae_tcache *tc = &h->cache[cls];
    if (tc->count == 0) continue;
    ae_central *c = &centrals[cls];
    pthread_mutex_lock(&c->lock);
    for (uint32_t i = 0; i < tc->count; i++) central_return_locked(c, tc->slots[i].block);
    tc->count = 0;
    pthread_mutex_unlock(&c->lock);
  }
}

/* ------------------------------------------------------------------------------------- heaps --- */
static void heap_thread_exit(void *arg) {
  ae_heap *h = arg;
  _ae_quarantine_drain(h);
  cache_flush_all(h);
  _ae_heap_flush_peak(h);
  _ae_tl_heap = NULL;
  pthread_mutex_lock(&heap_list_lock);
  h->in_use = 0; /* counters stay: stats sum every heap ever made, so a reused heap keeps them */
  pthread_mutex_unlock(&heap_list_lock);
}

ae_heap *_ae_heap_get(void) {
  ae_heap *h = _ae_tl_heap;
  if (AE_LIKELY(h != NULL)) return h;
  _ae_init_fast();
  pthread_mutex_lock(&heap_list_lock);
  for (h = heaps; h != NULL; h = h->next)
    if (!h->in_use) break;
  if (h == NULL) {
    h = map_pages(AE_ALIGN_UP(sizeof(ae_heap), 4096));
    if (h == NULL) {
      pthread_mutex_unlock(&heap_list_lock);
      return NULL;
    }
    for (unsigned c = 0; c < AE_NCLASSES; c++) h->cache[c].cap = tcache_cap[c];
    h->next = heaps;
    heaps = h;
    heap_count++;
  }
  h->in_use = 1;
  pthread_mutex_unlock(&heap_list_lock);
  atomic_store_explicit(&_ae_heap_used, 1, memory_order_release);
  _ae_tl_heap = h;
  pthread_setspecific(heap_key, h);
  return h;
}

/* Fold this heap's live-byte delta into the global counter and raise the global peak. */
void _ae_heap_flush_peak(ae_heap *h) {
  const int64_t base = atomic_fetch_add_explicit(&live_flushed, h->unflushed, memory_order_relaxed) + h->unflushed;
  h->unflushed = 0;
  int64_t peak = atomic_load_explicit(&peak_flushed, memory_order_relaxed);
  while (base > peak &&
         !atomic_compare_exchange_weak_explicit(&peak_flushed, &peak, base, memory_order_relaxed, memory_order_relaxed)) {
  }
  atomic_store_explicit(&h->peak_base, base, memory_order_relaxed);
  atomic_store_explicit(&h->peak_local, 0, memory_order_relaxed);
}

void _ae_heap_totals(aether_memory_stats *out) {
  uint64_t allocs = 0, frees = 0, abytes = 0, fbytes = 0, qbytes = 0;
  int64_t peak = atomic_load_explicit(&peak_flushed, memory_order_relaxed);
  pthread_mutex_lock(&heap_list_lock);
  for (ae_heap *h = heaps; h != NULL; h = h->next) {
    allocs += atomic_load_explicit(&h->allocs, memory_order_relaxed);
    frees += atomic_load_explicit(&h->frees, memory_order_relaxed);
    abytes += atomic_load_explicit(&h->alloc_bytes, memory_order_relaxed);
    fbytes += atomic_load_explicit(&h->freed_bytes, memory_order_relaxed);
    qbytes += atomic_load_explicit(&h->qbytes, memory_order_relaxed);
    /* The heap's own high-water mark on top of the global value at its last flush: exact with one thread. */
    const int64_t candidate = atomic_load_explicit(&h->peak_base, memory_order_relaxed) +
                              atomic_load_explicit(&h->peak_local, memory_order_relaxed);
    if (candidate > peak) peak = candidate;
  }
  pthread_mutex_unlock(&heap_list_lock);
  out->total_allocs = allocs;
  out->total_frees = frees;
  out->total_bytes = abytes;
  out->live_count = allocs >= frees ? allocs - frees : 0;
  out->live_bytes = abytes >= fbytes ? abytes - fbytes : 0;
  out->quarantine_bytes = qbytes;
  out->peak_bytes = (uint64_t)(peak > (int64_t)out->live_bytes ? peak : (int64_t)out->live_bytes);
}

uint64_t _ae_reserved_bytes(void) {
  pthread_mutex_lock(&segment_lock);
  uint64_t seg = segment_count * AE_SEGMENT_SIZE;
  pthread_mutex_unlock(&segment_lock);
  pthread_mutex_lock(&heap_list_lock);
  uint64_t hb = heap_count * AE_ALIGN_UP(sizeof(ae_heap), 4096);
  /* qring_bytes, not qcap: the owner grows its ring without a lock, and qcap is its private field. */
  for (ae_heap *h = heaps; h != NULL; h = h->next) hb += atomic_load_explicit(&h->qring_bytes, memory_order_relaxed);
  pthread_mutex_unlock(&heap_list_lock);
  return seg + hb;
}

void _ae_heap_visit_live(ae_block_visitor *fn, void *arg) {
  pthread_mutex_lock(&segment_lock);
  for (ae_segment *seg = segments; seg != NULL; seg = seg->next) {
    for (size_t slot = AE_META_SLOTS; slot < AE_SLOTS; slot++) {
      ae_run *r = &seg->runs[slot];
      if (atomic_load_explicit(&r->kind, memory_order_acquire) != AE_SLOT_HEAD) continue;
      for (size_t i = 0; i < r->nblocks; i++) {
        const uint64_t m = atomic_load_explicit(&r->meta[i], memory_order_acquire);
        if (AE_META_STATE(m) != AE_STATE_LIVE) continue;
        fn(r->start + i * r->block_size + AE_META_OFF(m), AE_META_SIZE(m), &r->meta[i], m, arg);
      }
    }
  }
  pthread_mutex_unlock(&segment_lock);
}

void _ae_heap_init_global(void) {
  /* 2^25 bytes of segment map cover 2^47 bytes of address space; untouched pages cost nothing. */
  _ae_segmap = map_pages((size_t)1 << (47 - AE_SEGMENT_SHIFT));
  compute_geometry();
  pthread_key_create(&heap_key, heap_thread_exit);
}

void _ae_heap_atfork_prepare(void) {
  for (unsigned c = 0; c < AE_NCLASSES; c++) pthread_mutex_lock(&centrals[c].lock);
  pthread_mutex_lock(&segment_lock);
  pthread_mutex_lock(&heap_list_lock);
}

void _ae_heap_atfork_parent(void) {
  pthread_mutex_unlock(&heap_list_lock);
  pthread_mutex_unlock(&segment_lock);
  for (unsigned c = 0; c < AE_NCLASSES; c++) pthread_mutex_unlock(&centrals[c].lock);
}

void _ae_heap_atfork_child(void) {
  /* Only the forking thread survives: the other heaps' owners are gone, so their heaps become reusable. */
  for (ae_heap *h = heaps; h != NULL; h = h->next)
    if (h != _ae_tl_heap) h->in_use = 0;
  _ae_heap_atfork_parent();
}
