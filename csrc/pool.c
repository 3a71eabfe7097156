/* pool.c: the lock-free aligned block pool.
 *
 * Layout. A pool is a set of chunks (at most 256), each an mmap'd array of nblocks blocks spaced `stride`
 * bytes apart (block_size rounded up to the alignment; the mapping is aligned, so every block is) plus a
 * table of 16-byte headers, one per block, kept out of line like mimalloc's page metadata: a user overflow
 * can damage a neighbour's bytes but never a header or the free list. A block is named by a 32-bit index,
 * chunk << 24 | position, so an index turns into an address with one table load and one multiply.
 *
 * Two layers, the way tcmalloc and mimalloc do it:
 *  - Per-thread caches: each thread that uses the pool gets a small array of free block indices (up to 64).
 *    alloc pops from it and free pushes to it with plain loads and stores, no atomic read-modify-write. When
 *    a cache runs empty it refills half of its capacity from the shared list in one CAS; when it fills up it
 *    spills half in one CAS. A thread's caches go back to the shared list when the thread exits.
 *  - Stealing. Free blocks parked in an idle thread's cache would make a bounded pool report exhaustion
 *    early, so an allocation that finds the pool exhausted takes them back, the way tcmalloc drains other
 *    CPUs' caches: an asymmetric Dekker protocol. The owner brackets every cache access with
 *    busy = 1 ... busy = 0 and checks the cache's `steal` flag after setting busy, with only a compiler
 *    barrier between (so its fast path pays two plain stores and a load, no fence). The thief sets steal,
 *    then calls membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which runs a full barrier on every CPU running
 *    one of our threads, then reads busy. Either the owner's busy = 1 is visible to the thief (it leaves
 *    that cache alone) or the owner's later read of steal sees 1 (it bypasses its cache for that operation
 *    and goes to the shared list); they can never both miss each other. Without membarrier (old kernels,
 *    seccomp) there is no stealing and the documented cap on cache sizes bounds what can be parked.
 *  - The shared free list: a Treiber stack of block indices linked through the headers' `next` fields. Its
 *    head is one 64-bit word, (version << 32) | index, changed only by compare-and-swap, and every successful
 *    CAS adds 1 to the version. That version is what makes the stack safe against ABA without hazard
 *    pointers: a pop reads head = (v, A), reads A.next = B, and CASes (v, A) -> (v+1, B). If, between the read
 *    and the CAS, another thread popped A, popped B and pushed A back, the head is (v+3, A): the CAS fails and
 *    the pop retries, instead of installing B (now allocated) as the head, which is the corruption a plain
 *    pointer CAS allows. A batch pop that walks k links is covered by the same argument: a successful CAS
 *    proves the head word did not change during the walk, hence no push or pop happened, hence every link it
 *    read was the stack's. Reading a link of a block that was meanwhile popped and handed out is harmless:
 *    headers live in memory that stays mapped until the pool is destroyed, `next` is an atomic, and only
 *    valid indices are ever stored in it, so the read returns some valid index and the CAS then fails. The
 *    version wraps after 2^32 successful CASes; a pop would have to stall for exactly a multiple of that many
 *    operations to be fooled.
 *
 * States. A header holds a magic number keyed by the pool and the block index, and a state, FREE or LIVE.
 * alloc sets LIVE (the block is exclusively the allocating thread's, so a store suffices); free claims the
 * block with one CAS LIVE -> FREE, so of two racing frees of one block exactly one wins and the other is a
 * reported double free: a block can never enter the free list twice. A pointer is located by address range
 * against the chunk table before anything is read, so a foreign, interior or misaligned pointer is refused
 * without touching memory through it.
 *
 * Growth (mmap of a new chunk) happens under a mutex when the shared list is empty; alloc and free of
 * existing blocks never take it. */
#include "alloc_internal.h"
#include "pool_internal.h"

#include <inttypes.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define AE_POOL_MAGIC 0xAE7E9001u
#define AE_POOL_DEAD 0xDEADB10Cu
#define AE_POOL_NIL 0xFFFFFFFFu
#define AE_CHUNK_SHIFT 24
#define AE_CHUNK_MAX_BLOCKS (1u << AE_CHUNK_SHIFT)
#define AE_LOCAL_MASK (AE_CHUNK_MAX_BLOCKS - 1)
#define AE_MAX_CHUNKS 256
#define AE_MAX_BLOCKS 0xFFFFFFFFull /* AE_POOL_NIL is not a block */
#define AE_POOL_SLOTS 256                /* thread slots; slot 0 means "none" and never has a cache */
#define AE_POOL_CACHE_MAX 64
#define AE_MAX_ALIGNMENT ((size_t)1 << 21)
#define AE_MAX_BLOCK_SIZE ((size_t)1 << 30)
#define AE_OUTSTANDING_LISTED 16

/* A state word: LIVE is one constant; FREE is 0xF in the top nibble and, below it, the OS thread id of the
 * thread that freed the block (0: never allocated), so the free's one CAS also records who freed it (named in
 * a double-free report) without a second store. Linux thread ids fit in 22 bits. Zeroed or overwritten
 * memory is never taken for a valid state. */
#define AE_BLOCK_LIVE 0x11FEB10Cu
#define AE_BLOCK_FREE_TAG 0xF0000000u
#define AE_BLOCK_TID_MASK 0x0FFFFFFFu
static inline bool state_is_free(uint32_t s) { return (s & ~AE_BLOCK_TID_MASK) == AE_BLOCK_FREE_TAG; }

typedef struct ae_pool_hdr {
  uint32_t magic;         /* pool key ^ scrambled index: written once when the chunk is made */
  _Atomic uint32_t state; /* AE_BLOCK_LIVE, or AE_BLOCK_FREE_TAG | the id of the thread that freed it */
  _Atomic uint32_t next;  /* free-list link (an index or AE_POOL_NIL) while the block is on the shared list */
  uint32_t spare;         /* keeps the header at 16 bytes: four to a line, a line boundary every fourth */
} ae_pool_hdr;
_Static_assert(sizeof(ae_pool_hdr) == 16, "four headers per cache line");

typedef struct ae_chunk {
  uint8_t *base;     /* first block */
  uintptr_t span;    /* nblocks * stride */
  ae_pool_hdr *hdrs; /* 4 * lines headers (lines: a power of two >= nblocks / 4), see hdr_slot() */
  uint32_t nblocks;
  uint32_t line_mask, line_shift; /* lines - 1, log2(lines) */
  void *map;         /* the data mapping (larger than span when the alignment exceeds a page) */
  size_t map_len, hdr_len;
} ae_chunk;

/* One thread's cache for one pool. The owner thread changes it inside busy = 1 ... busy = 0; a thief (see
 * "Stealing" above) only while it holds steal and has seen busy == 0. count and the counters are atomics so
 * stats() may read them from another thread. It sits on its own lines so two threads' caches never share one. */
typedef struct ae_pool_cache {
  _Atomic uint32_t busy;  /* the owner is inside a cache operation */
  _Atomic uint32_t steal; /* a thief holds the cache (taken with a CAS 0 -> 1, so thieves exclude each other) */
  _Atomic uint32_t count;
  _Atomic uint64_t allocs, frees;
  uint32_t items[AE_POOL_CACHE_MAX];
} __attribute__((aligned(AE_CACHE_LINE))) ae_pool_cache;

struct aether_pool {
  /* Read-mostly: every alloc and free reads these. */
  uint32_t magic;
  uint32_t key;
  size_t block_size, alignment, stride, zero_len;
  uint32_t stride_shift; /* log2(stride) when stride is a power of two, else 0 */
  uint32_t cache_cap, batch;
  uint64_t max_blocks, initial_blocks;
  _Atomic uint32_t nchunks;
  ae_chunk chunks[AE_MAX_CHUNKS];
  _Atomic(ae_pool_cache *) caches[AE_POOL_SLOTS];
  /* Rarely written. */
  pthread_mutex_t grow_lock;
  _Atomic uint64_t total_blocks, reserved_bytes;
  _Atomic uint64_t direct_allocs, direct_frees; /* threads without a cache */
  _Atomic uint64_t failed_allocs, double_frees, invalid_frees, corrupted, stolen;
  struct aether_pool *reg_next, *reg_prev; /* the registry of live pools, under registry_lock */
  size_t self_len;
  /* The shared free list's head on lines of its own: it is the one word every refill and spill CASes. */
  _Alignas(128) _Atomic uint64_t head;
  _Alignas(128) uint8_t end[];
};

/* ------------------------------------------------------------------------------- thread slots --- */
/* A thread that touches any pool takes a slot number (1..255) that indexes every pool's cache table; at exit
 * (a pthread key destructor) it flushes its caches in every live pool and gives the number back. A thread
 * that finds all slots taken works on the shared list directly: correct, only slower. */
static __thread uint32_t tl_slot __attribute__((tls_model("initial-exec")));
static __thread uint32_t tl_tid __attribute__((tls_model("initial-exec")));
static __thread bool tl_slot_tried __attribute__((tls_model("initial-exec")));
static _Atomic uint64_t slot_bits[AE_POOL_SLOTS / 64] = {1}; /* slot 0 is reserved */
static pthread_key_t slot_key;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static aether_pool *registry;

static void slot_thread_exit(void *arg);
static void slot_init(void) { pthread_key_create(&slot_key, slot_thread_exit); }

static void slot_acquire(void) {
  tl_slot_tried = true;
  tl_tid = _ae_thread_id() & AE_BLOCK_TID_MASK;
  pthread_once(&slot_once, slot_init);
  for (uint32_t w = 0; w < AE_POOL_SLOTS / 64; w++) {
    uint64_t bits = atomic_load_explicit(&slot_bits[w], memory_order_relaxed);
    while (~bits != 0) {
      const uint32_t b = (uint32_t)__builtin_ctzll(~bits);
      /* acquire: whatever the slot's previous owner left in the caches happens-before our use of them */
      if (atomic_compare_exchange_weak_explicit(&slot_bits[w], &bits, bits | (1ull << b), memory_order_acquire,
                                                memory_order_relaxed)) {
        tl_slot = w * 64 + b;
        pthread_setspecific(slot_key, (void *)(uintptr_t)tl_slot);
        return;
      }
    }
  }
}

/* --------------------------------------------------------------------------------- reporting --- */
static void pool_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void pool_report(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof line) n = sizeof line - 1;
  if (!AE_OPT(quiet)) _ae_log_line(line, (size_t)n);
}

/* Memory errors follow the allocator's abort_on_error option, after the report is out. */
static void pool_maybe_abort(void) {
  if (AE_OPT(abort_on_error)) _ae_abort_on_request(); /* not abort(): see alloc_internal.h */
}

/* ------------------------------------------------------------------------------------ helpers --- */
static inline uint32_t block_magic(const aether_pool *pool, uint32_t idx) { return pool->key ^ (idx * 0x9E3779B1u); }
/* Block i's header sits in line i mod lines, slot i / lines: consecutive blocks (which different threads
 * often hold) never share a header line, so one thread's free-CAS does not steal the line of another's header,
 * while the table stays 16 bytes a block. */
static inline ae_pool_hdr *hdr_slot(const ae_chunk *c, uint32_t local) {
  return &c->hdrs[((local & c->line_mask) << 2) | (local >> c->line_shift)];
}
static inline ae_pool_hdr *hdr_of(aether_pool *pool, uint32_t idx) {
  return hdr_slot(&pool->chunks[idx >> AE_CHUNK_SHIFT], idx & AE_LOCAL_MASK);
}
static inline uint8_t *block_of(aether_pool *pool, uint32_t idx) {
  return pool->chunks[idx >> AE_CHUNK_SHIFT].base + (size_t)(idx & AE_LOCAL_MASK) * pool->stride;
}
static inline uint64_t head_pack(uint32_t version, uint32_t idx) { return ((uint64_t)version << 32) | idx; }
static inline uint32_t head_idx(uint64_t h) { return (uint32_t)h; }
static inline uint32_t head_version(uint64_t h) { return (uint32_t)(h >> 32); }

/* An index read from a link that may be stale: in range of a published chunk? (Guards the batch walk.) */
static inline bool index_valid(aether_pool *pool, uint32_t idx) {
  const uint32_t k = idx >> AE_CHUNK_SHIFT;
  return k < atomic_load_explicit(&pool->nchunks, memory_order_acquire) && (idx & AE_LOCAL_MASK) < pool->chunks[k].nblocks;
}

/* Zero a block: whole 64-byte lines (the stride is a multiple of 64, so the tail past block_size is ours).
 * Up to 512 bytes with 16-byte vector stores written out here (GCC would turn a memset of 128 bytes or more
 * into `rep stos`, whose start-up costs more than the stores); larger blocks call memset. */
typedef uint64_t ae_v16 __attribute__((vector_size(16), aligned(16)));
static inline __attribute__((always_inline)) void zero_block(uint8_t *p, size_t len) {
  if (AE_LIKELY(len <= 512)) {
    ae_v16 *v = (ae_v16 *)(void *)p;
    const ae_v16 z = {0, 0};
    for (size_t i = 0; i < len / 16; i += 4) {
      v[i] = z;
      v[i + 1] = z;
      v[i + 2] = z;
      v[i + 3] = z;
      __asm__("" ::: "memory"); /* keep the loop from becoming a memset call */
    }
  } else {
    memset(p, 0, len);
  }
}

/* ------------------------------------------------------------------------- the shared free list --- */
/* Pop up to want indices into out[]; returns how many (0: the list is empty). One CAS per attempt. */
static uint32_t shared_pop(aether_pool *pool, uint32_t *out, uint32_t want) {
  /* acquire: the links and headers of the blocks we are about to read were written before the release CAS
   * that pushed them (all writers of head are RMWs, so one acquire sees every earlier push). */
  uint64_t old = atomic_load_explicit(&pool->head, memory_order_acquire);
  for (;;) {
    uint32_t idx = head_idx(old);
    if (idx == AE_POOL_NIL) return 0;
    uint32_t n = 0, next = AE_POOL_NIL;
    for (;;) {
      out[n++] = idx;
      next = atomic_load_explicit(&hdr_of(pool, idx)->next, memory_order_relaxed);
      if (n == want || next == AE_POOL_NIL || !index_valid(pool, next)) break;
      idx = next;
    }
    if (next != AE_POOL_NIL && !index_valid(pool, next)) next = AE_POOL_NIL; /* only when stale: the CAS below fails */
    if (atomic_compare_exchange_weak_explicit(&pool->head, &old, head_pack(head_version(old) + 1, next),
                                              memory_order_acquire, memory_order_acquire))
      return n;
  }
}

/* Push the chain first -> ... -> last (already linked through `next`) with one CAS. */
static void shared_push_chain(aether_pool *pool, uint32_t first, uint32_t last) {
  ae_pool_hdr *lh = hdr_of(pool, last);
  uint64_t old = atomic_load_explicit(&pool->head, memory_order_relaxed);
  for (;;) {
    atomic_store_explicit(&lh->next, head_idx(old), memory_order_relaxed);
    /* release: the chain's links (and the blocks' FREE states) are visible to whoever pops them */
    if (atomic_compare_exchange_weak_explicit(&pool->head, &old, head_pack(head_version(old) + 1, first),
                                              memory_order_release, memory_order_relaxed))
      return;
  }
}

static void shared_push_array(aether_pool *pool, const uint32_t *items, uint32_t n) {
  if (n == 0) return;
  for (uint32_t i = 0; i + 1 < n; i++) atomic_store_explicit(&hdr_of(pool, items[i])->next, items[i + 1], memory_order_relaxed);
  shared_push_chain(pool, items[0], items[n - 1]);
}

/* -------------------------------------------------------------------------------------- growth --- */
static void *map_aligned(size_t len, size_t alignment, void **map, size_t *map_len) {
  const size_t extra = alignment > 4096 ? alignment : 0;
  uint8_t *raw = mmap(NULL, len + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  *map = raw;
  *map_len = len + extra;
  return (void *)AE_ALIGN_UP((uintptr_t)raw, alignment);
}

/* Map a chunk of up to `want` blocks, publish it and push its blocks on the shared list. Caller holds
 * grow_lock. Returns AETHER_OK, AETHER_ERR_LIMIT_REACHED or AETHER_ERR_OUT_OF_MEMORY (message set). */
static int pool_grow(aether_pool *pool, uint64_t want) {
  const uint64_t total = atomic_load_explicit(&pool->total_blocks, memory_order_relaxed);
  const uint64_t limit = pool->max_blocks ? pool->max_blocks : AE_MAX_BLOCKS;
  const uint32_t k = atomic_load_explicit(&pool->nchunks, memory_order_relaxed);
  if (total >= limit || k >= AE_MAX_CHUNKS)
    return _ae_fail(AETHER_ERR_LIMIT_REACHED, "aether_pool_alloc: all %" PRIu64 " blocks%s are in use", total,
                    pool->max_blocks ? " (max_blocks)" : "");
  uint64_t n = want;
  if (n > limit - total) n = limit - total;
  const uint64_t chunk_cap = k == AE_MAX_CHUNKS - 1 ? AE_CHUNK_MAX_BLOCKS - 1 : AE_CHUNK_MAX_BLOCKS;
  if (n > chunk_cap) n = chunk_cap;
  if (n == 0) n = 1;
  ae_chunk c = {0};
  const size_t len = (size_t)n * pool->stride; /* <= 2^24 * (2^30 + 2^21): fits */
  /* mmap would grant far more than the machine has (overcommit), and writing the headers would then bring in
   * the OOM killer: refuse a chunk larger than physical memory here, with a status. */
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0 && len / (size_t)page >= (size_t)pages)
    return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "aether_pool: a chunk of %" PRIu64 " blocks of %zu bytes (%zu bytes) is "
                    "more than this machine's memory", n, pool->stride, len);
  c.base = map_aligned(len, pool->alignment, &c.map, &c.map_len);
  if (c.base == NULL)
    return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "aether_pool: cannot map a chunk of %" PRIu64 " blocks (%zu bytes)", n, len);
  uint64_t lines = 1;
  while (lines * 4 < n) lines *= 2;
  c.line_mask = (uint32_t)(lines - 1);
  c.line_shift = (uint32_t)__builtin_ctzll(lines);
  c.hdr_len = AE_ALIGN_UP((size_t)lines * 4 * sizeof(ae_pool_hdr), 4096);
  void *h = mmap(NULL, c.hdr_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (h == MAP_FAILED) {
    munmap(c.map, c.map_len);
    return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "aether_pool: cannot map %zu bytes of block headers", c.hdr_len);
  }
  c.hdrs = h;
  c.nblocks = (uint32_t)n;
  c.span = len;
  const uint32_t first = k << AE_CHUNK_SHIFT;
  for (uint32_t i = 0; i < n; i++) {
    ae_pool_hdr *hh = hdr_slot(&c, i);
    hh->magic = block_magic(pool, first + i);
    atomic_store_explicit(&hh->state, AE_BLOCK_FREE_TAG, memory_order_relaxed);
    atomic_store_explicit(&hh->next, i + 1 < n ? first + i + 1 : AE_POOL_NIL, memory_order_relaxed);
  }
  pool->chunks[k] = c;
  /* release: a thread that sees nchunks > k (or pops one of these blocks) sees the chunk's fields */
  atomic_store_explicit(&pool->nchunks, k + 1, memory_order_release);
  atomic_fetch_add_explicit(&pool->total_blocks, n, memory_order_relaxed);
  atomic_fetch_add_explicit(&pool->reserved_bytes, c.map_len + c.hdr_len, memory_order_relaxed);
  shared_push_chain(pool, first, first + (uint32_t)n - 1);
  return AETHER_OK;
}

/* The size of the next chunk: as many blocks as the pool has (so chunks double), at least initial_blocks and
 * at least 256 KiB worth (at most 4096 blocks of that minimum). */
static uint64_t next_chunk_blocks(const aether_pool *pool) {
  const uint64_t total = atomic_load_explicit(&pool->total_blocks, memory_order_relaxed);
  uint64_t floor = ((size_t)256 << 10) / pool->stride;
  floor = floor < 1 ? 1 : floor > 4096 ? 4096 : floor;
  uint64_t n = total > pool->initial_blocks ? total : pool->initial_blocks;
  return n > floor ? n : floor;
}

/* ---------------------------------------------------------------------------------- creation --- */
static aether_pool *pool_create(size_t block_size, size_t alignment, size_t initial_blocks, size_t max_blocks,
                                int cache_cap_override) {
#define AE_POOL_FAIL(status, ...) \
  do {                            \
    _ae_fail(status, __VA_ARGS__); \
    return NULL;                  \
  } while (0)
  if (block_size < 1 || block_size > AE_MAX_BLOCK_SIZE)
    AE_POOL_FAIL(AETHER_ERR_OUT_OF_RANGE, "aether_pool_create: block_size %zu is not in [1, 2^30]", block_size);
  if (!AE_IS_POW2(alignment))
    AE_POOL_FAIL(AETHER_ERR_NOT_POWER_OF_TWO, "aether_pool_create: alignment %zu is not a power of two", alignment);
  if (alignment < AE_CACHE_LINE || alignment > AE_MAX_ALIGNMENT)
    AE_POOL_FAIL(AETHER_ERR_OUT_OF_RANGE, "aether_pool_create: alignment %zu is not in [64, 2^21] (a block must "
                 "own whole cache lines)", alignment);
  if (max_blocks > AE_MAX_BLOCKS)
    AE_POOL_FAIL(AETHER_ERR_OUT_OF_RANGE, "aether_pool_create: max_blocks %zu is more than 2^32 - 1", max_blocks);
  if (max_blocks != 0 && initial_blocks > max_blocks)
    AE_POOL_FAIL(AETHER_ERR_OUT_OF_RANGE, "aether_pool_create: initial_blocks %zu exceeds max_blocks %zu",
                 initial_blocks, max_blocks);
  if (initial_blocks > AE_MAX_BLOCKS)
    AE_POOL_FAIL(AETHER_ERR_OUT_OF_RANGE, "aether_pool_create: initial_blocks %zu is more than 2^32 - 1", initial_blocks);
  const size_t stride = AE_ALIGN_UP(block_size, alignment);
  if (initial_blocks != 0 && stride > SIZE_MAX / initial_blocks)
    AE_POOL_FAIL(AETHER_ERR_SIZE_OVERFLOW, "aether_pool_create: %zu blocks of %zu bytes overflow", initial_blocks, stride);

  aether_memory_init(); /* the AETHER_* options (log_file, quiet, abort_on_error) apply to pool reports too */
  const size_t self_len = AE_ALIGN_UP(sizeof(aether_pool), 4096);
  aether_pool *pool = mmap(NULL, self_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (pool == MAP_FAILED) AE_POOL_FAIL(AETHER_ERR_OUT_OF_MEMORY, "aether_pool_create: no memory for the pool");
  pool->self_len = self_len;
  pool->key = (uint32_t)_ae_random_u64() | 1u;
  pool->block_size = block_size;
  pool->alignment = alignment;
  pool->stride = stride;
  pool->zero_len = AE_ALIGN_UP(block_size, AE_CACHE_LINE);
  pool->stride_shift = AE_IS_POW2(stride) ? (uint32_t)__builtin_ctzll(stride) : 0;
  pool->max_blocks = max_blocks;
  pool->initial_blocks = initial_blocks;
  /* Per-thread caches hold at most 64 blocks, and in a bounded pool at most 1/16 of it, so free blocks parked
   * in other threads' caches can never starve an allocator of more than a sliver of the pool; a pool of fewer
   * than 64 blocks has no caches at all and its limit is exact across threads. */
  uint64_t cap = max_blocks == 0 ? AE_POOL_CACHE_MAX : max_blocks / 16;
  if (cap > AE_POOL_CACHE_MAX) cap = AE_POOL_CACHE_MAX;
  if (cap < 4) cap = 0;
  if (cache_cap_override >= 0) cap = (uint64_t)cache_cap_override;
  pool->cache_cap = (uint32_t)cap & ~1u;
  pool->batch = pool->cache_cap / 2;
  atomic_store_explicit(&pool->head, head_pack(0, AE_POOL_NIL), memory_order_relaxed);
  pthread_mutex_init(&pool->grow_lock, NULL);
  pool->magic = AE_POOL_MAGIC;

  for (uint64_t left = initial_blocks; left > 0;) {
    const uint64_t before = atomic_load_explicit(&pool->total_blocks, memory_order_relaxed);
    if (pool_grow(pool, left) != AETHER_OK) {
      const int st = aether_last_status();
      char msg[320];
      snprintf(msg, sizeof msg, "%s", aether_last_error());
      aether_pool_destroy(pool);
      _ae_fail(st, "%s", msg);
      return NULL;
    }
    left -= atomic_load_explicit(&pool->total_blocks, memory_order_relaxed) - before;
  }
  pthread_mutex_lock(&registry_lock);
  pool->reg_next = registry;
  if (registry) registry->reg_prev = pool;
  registry = pool;
  pthread_mutex_unlock(&registry_lock);
  return pool;
#undef AE_POOL_FAIL
}

aether_pool *aether_pool_create(size_t block_size, size_t alignment, size_t initial_blocks, size_t max_blocks) {
  return pool_create(block_size, alignment, initial_blocks, max_blocks, -1);
}

aether_pool *_ae_pool_create_uncached(size_t block_size, size_t alignment, size_t initial_blocks) {
  return pool_create(block_size, alignment, initial_blocks, 0, 0);
}

/* ------------------------------------------------------------------------------- thread caches --- */
/* The owner's side of the protocol. Under ThreadSanitizer, which does not model membarrier, both sides use
 * sequentially consistent operations instead (a plain Dekker), so the sanitizer sees the ordering it checks. */
#if defined(__SANITIZE_THREAD__)
#define AE_OWNER_ORDER memory_order_seq_cst
#else
#define AE_OWNER_ORDER memory_order_relaxed
#endif

/* Enter the cache; false if a thief holds it (then leave with cache_leave and bypass the cache). */
static inline bool cache_enter(ae_pool_cache *c) {
  atomic_store_explicit(&c->busy, 1, AE_OWNER_ORDER);
  atomic_signal_fence(memory_order_seq_cst); /* compiler only: the thief's membarrier supplies the CPU fence */
  /* acquire: a thief's changes (count = 0) happen-before our use of the cache */
  return atomic_load_explicit(&c->steal, AE_OWNER_ORDER == memory_order_relaxed ? memory_order_acquire : AE_OWNER_ORDER) == 0;
}
static inline void cache_leave(ae_pool_cache *c) {
  atomic_store_explicit(&c->busy, 0, memory_order_release); /* our cache writes happen-before a thief's reads */
}

static pthread_once_t membarrier_once = PTHREAD_ONCE_INIT;
static bool membarrier_ok;
static void membarrier_init(void) {
  const long q = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  membarrier_ok = q >= 0 && (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
                  syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

/* The thief's side: move the free blocks parked in c to the shared list if its owner is not inside it.
 * Returns how many moved. */
static uint32_t cache_steal(aether_pool *pool, ae_pool_cache *c) {
  if (atomic_load_explicit(&c->count, memory_order_relaxed) == 0) return 0;
  uint32_t free_flag = 0;
  if (!atomic_compare_exchange_strong_explicit(&c->steal, &free_flag, 1, memory_order_seq_cst, memory_order_relaxed))
    return 0; /* another thief */
  uint32_t n = 0;
  if (syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0 &&
      atomic_load_explicit(&c->busy, memory_order_seq_cst) == 0) {
    n = atomic_load_explicit(&c->count, memory_order_relaxed);
    shared_push_array(pool, c->items, n);
    atomic_store_explicit(&c->count, 0, memory_order_relaxed);
  }
  atomic_store_explicit(&c->steal, 0, memory_order_release); /* the owner sees count = 0 */
  return n;
}

/* The calling thread's cache for pool, created on first use; NULL if the pool has no caches or the thread
 * has no slot. */
static __attribute__((noinline)) ae_pool_cache *cache_get(aether_pool *pool) {
  if (pool->cache_cap == 0) return NULL;
  if (tl_slot == 0) {
    if (tl_slot_tried) return NULL;
    slot_acquire();
    if (tl_slot == 0) return NULL;
  }
  ae_pool_cache *c = atomic_load_explicit(&pool->caches[tl_slot], memory_order_relaxed);
  if (c != NULL) return c;
  void *m = NULL;
  if (posix_memalign(&m, AE_CACHE_LINE, sizeof(ae_pool_cache)) != 0) return NULL;
  memset(m, 0, sizeof(ae_pool_cache));
  c = m;
  /* release: stats() and thieves on other threads read the zeroed fields through this pointer */
  atomic_store_explicit(&pool->caches[tl_slot], c, memory_order_release);
  return c;
}

/* Give all of the calling thread's cached blocks back (the owner; waits out a thief, which is brief). */
static void cache_flush(aether_pool *pool, ae_pool_cache *c) {
  while (!cache_enter(c)) {
    cache_leave(c);
    sched_yield();
  }
  const uint32_t n = atomic_load_explicit(&c->count, memory_order_relaxed);
  shared_push_array(pool, c->items, n);
  atomic_store_explicit(&c->count, 0, memory_order_relaxed);
  cache_leave(c);
}

static void slot_thread_exit(void *arg) {
  const uint32_t slot = (uint32_t)(uintptr_t)arg;
  if (slot == 0 || slot >= AE_POOL_SLOTS) return;
  pthread_mutex_lock(&registry_lock); /* no pool can be destroyed meanwhile */
  for (aether_pool *p = registry; p != NULL; p = p->reg_next) {
    ae_pool_cache *c = atomic_load_explicit(&p->caches[slot], memory_order_acquire);
    if (c != NULL) cache_flush(p, c);
  }
  pthread_mutex_unlock(&registry_lock);
  tl_slot = 0;
  /* release: the next owner of this slot sees the emptied caches */
  atomic_fetch_and_explicit(&slot_bits[slot / 64], ~(1ull << (slot % 64)), memory_order_release);
}

aether_status aether_pool_flush_cache(aether_pool *pool) {
  AE_RETURN_ERROR_IF(pool == NULL || pool->magic != AE_POOL_MAGIC, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_pool_flush_cache: not a pool");
  if (tl_slot == 0) return AETHER_OK;
  ae_pool_cache *c = atomic_load_explicit(&pool->caches[tl_slot], memory_order_relaxed);
  if (c != NULL) cache_flush(pool, c);
  return AETHER_OK;
}

/* Free blocks parked in caches other than mine. */
static uint64_t parked_elsewhere(aether_pool *pool, const ae_pool_cache *mine) {
  uint64_t n = 0;
  for (uint32_t s = 1; s < AE_POOL_SLOTS; s++) {
    const ae_pool_cache *c = atomic_load_explicit(&pool->caches[s], memory_order_acquire);
    if (c != NULL && c != mine) n += atomic_load_explicit(&c->count, memory_order_relaxed);
  }
  return n;
}

/* Take back what other threads' caches hold; returns how many blocks came back. */
static uint64_t steal_parked(aether_pool *pool, const ae_pool_cache *mine) {
  pthread_once(&membarrier_once, membarrier_init);
  if (!membarrier_ok) return 0;
  uint64_t n = 0;
  for (uint32_t s = 1; s < AE_POOL_SLOTS; s++) {
    ae_pool_cache *c = atomic_load_explicit(&pool->caches[s], memory_order_acquire);
    if (c != NULL && c != mine) n += cache_steal(pool, c);
  }
  if (n) atomic_fetch_add_explicit(&pool->stolen, n, memory_order_relaxed);
  return n;
}

/* ------------------------------------------------------------------------------------ allocate --- */
/* A block just taken from a cache or the shared list: verify, mark LIVE, zero. NULL if its header is bad
 * (reported; the block is dropped for good rather than handed out). */
static __attribute__((noinline, cold)) void report_bad_free_block(aether_pool *pool, uint32_t idx, ae_pool_hdr *h) {
  atomic_fetch_add_explicit(&pool->corrupted, 1, memory_order_relaxed);
  pool_report("AETHER POOL ERROR: Corrupted header of free block %p (magic 0x%08x, state 0x%08x): block "
              "dropped", (void *)block_of(pool, idx), h->magic, atomic_load_explicit(&h->state, memory_order_relaxed));
  pool_maybe_abort();
}

static inline __attribute__((always_inline)) void *block_take(aether_pool *pool, uint32_t idx) {
  ae_pool_hdr *h = hdr_of(pool, idx);
  if (AE_UNLIKELY(h->magic != block_magic(pool, idx) ||
                  !state_is_free(atomic_load_explicit(&h->state, memory_order_relaxed)))) {
    report_bad_free_block(pool, idx, h);
    return NULL;
  }
  /* The block is exclusively ours (popped from a cache or won by CAS): a plain store is enough. */
  atomic_store_explicit(&h->state, AE_BLOCK_LIVE, memory_order_relaxed);
  uint8_t *p = block_of(pool, idx);
  zero_block(p, pool->zero_len);
  return p;
}

static inline void count_up(_Atomic uint64_t *counter) { /* owner-only counter: no RMW needed */
  atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1, memory_order_relaxed);
}

/* One block index from the cache (refilling it from the shared list) or, without a usable cache, from the
 * shared list directly; AE_POOL_NIL if both are empty. */
static uint32_t take_index(aether_pool *pool, ae_pool_cache *c, bool *cached) {
  uint32_t got[AE_POOL_CACHE_MAX];
  *cached = false;
  if (c != NULL) {
    if (cache_enter(c)) {
      uint32_t n = atomic_load_explicit(&c->count, memory_order_relaxed);
      uint32_t idx = AE_POOL_NIL;
      if (n > 0) {
        idx = c->items[--n];
      } else {
        /* Refill: keep the first for the caller, cache the rest in list order (next out = top). */
        const uint32_t m = shared_pop(pool, got, pool->batch);
        if (m > 0) {
          for (uint32_t i = 1; i < m; i++) c->items[i - 1] = got[m - i];
          n = m - 1;
          idx = got[0];
        }
      }
      atomic_store_explicit(&c->count, n, memory_order_relaxed);
      cache_leave(c);
      *cached = idx != AE_POOL_NIL;
      return idx;
    }
    cache_leave(c); /* a thief holds it: this once, go to the shared list */
  }
  return shared_pop(pool, got, 1) ? got[0] : AE_POOL_NIL;
}

static __attribute__((noinline)) void *alloc_slow(aether_pool *pool) {
  if (pool->magic != AE_POOL_MAGIC) {
    _ae_fail(AETHER_ERR_INVALID_ARGUMENT, "aether_pool_alloc: not a pool (destroyed?)");
    return NULL;
  }
  ae_pool_cache *c = cache_get(pool);
  bool stole = false;
  for (;;) {
    bool cached;
    const uint32_t idx = take_index(pool, c, &cached);
    if (idx != AE_POOL_NIL) {
      void *p = block_take(pool, idx);
      if (p == NULL) continue; /* a corrupted block was dropped: take another */
      if (cached) count_up(&c->allocs);
      else atomic_fetch_add_explicit(&pool->direct_allocs, 1, memory_order_relaxed);
      return p;
    }
    pthread_mutex_lock(&pool->grow_lock);
    int rc = AETHER_OK;
    /* Someone may have grown the pool or freed blocks while we waited for the lock. */
    if (head_idx(atomic_load_explicit(&pool->head, memory_order_acquire)) == AE_POOL_NIL)
      rc = pool_grow(pool, next_chunk_blocks(pool));
    pthread_mutex_unlock(&pool->grow_lock);
    if (rc == AETHER_OK) continue;
    if (rc == AETHER_ERR_LIMIT_REACHED && !stole) {
      /* Exhausted: free blocks may be parked in other threads' caches. Take them back, once per call. */
      stole = true;
      if (steal_parked(pool, c) > 0) continue;
      const uint64_t parked = parked_elsewhere(pool, c);
      if (parked > 0)
        _ae_fail(AETHER_ERR_LIMIT_REACHED, "aether_pool_alloc: all %" PRIu64 " blocks (max_blocks) are in use or "
                 "parked: %" PRIu64 " free block(s) sit in the caches of threads busy in the pool (or membarrier is "
                 "unavailable); they return at those threads' next operations, at their exit, or by "
                 "aether_pool_flush_cache", pool->max_blocks, parked);
    }
    atomic_fetch_add_explicit(&pool->failed_allocs, 1, memory_order_relaxed);
    return NULL;
  }
}

void *aether_pool_alloc(aether_pool *pool) {
  if (AE_UNLIKELY(pool == NULL)) {
    _ae_fail(AETHER_ERR_INVALID_ARGUMENT, "aether_pool_alloc: the pool is NULL");
    return NULL;
  }
  ae_pool_cache *c = atomic_load_explicit(&pool->caches[tl_slot], memory_order_relaxed);
  if (AE_LIKELY(c != NULL)) {
    if (AE_LIKELY(cache_enter(c))) {
      const uint32_t n = atomic_load_explicit(&c->count, memory_order_relaxed);
      if (AE_LIKELY(n != 0)) {
        const uint32_t idx = c->items[n - 1];
        atomic_store_explicit(&c->count, n - 1, memory_order_relaxed);
        cache_leave(c);
        void *p = block_take(pool, idx);
        if (AE_LIKELY(p != NULL)) {
          count_up(&c->allocs);
          return p;
        }
        return alloc_slow(pool);
      }
    }
    cache_leave(c);
  }
  return alloc_slow(pool);
}

/* ---------------------------------------------------------------------------------------- free --- */
static __attribute__((noinline, cold)) int refuse_foreign(aether_pool *pool, const void *p) {
  atomic_fetch_add_explicit(&pool->invalid_frees, 1, memory_order_relaxed);
  pool_report("AETHER POOL ERROR: Invalid free of %p (not from this pool)", p);
  pool_maybe_abort();
  return _ae_fail(AETHER_ERR_INVALID_POINTER, "aether_pool_free: %p is not a block of this pool", p);
}

static __attribute__((noinline, cold)) int refuse_inside(aether_pool *pool, const void *p, const uint8_t *block) {
  atomic_fetch_add_explicit(&pool->invalid_frees, 1, memory_order_relaxed);
  const size_t into = (size_t)((const uint8_t *)p - block);
  if (((uintptr_t)p & (pool->alignment - 1)) != 0) {
    pool_report("AETHER POOL ERROR: Invalid free of %p (misaligned: %zu bytes into block %p; blocks are "
                "%zu-aligned)", p, into, (const void *)block, pool->alignment);
    pool_maybe_abort();
    return _ae_fail(AETHER_ERR_MISALIGNED, "aether_pool_free: %p is not %zu-aligned (%zu bytes into block %p)", p,
                    pool->alignment, into, (const void *)block);
  }
  pool_report("AETHER POOL ERROR: Invalid free of %p (interior pointer: %zu bytes into block %p)", p, into,
              (const void *)block);
  pool_maybe_abort();
  return _ae_fail(AETHER_ERR_INVALID_POINTER, "aether_pool_free: %p points %zu bytes into block %p", p, into,
                  (const void *)block);
}

static __attribute__((noinline, cold)) int refuse_corrupted(aether_pool *pool, const void *p, ae_pool_hdr *h,
                                                              uint32_t state) {
  atomic_fetch_add_explicit(&pool->corrupted, 1, memory_order_relaxed);
  pool_report("AETHER POOL ERROR: Corrupted header of block %p (magic 0x%08x, state 0x%08x): free refused", p,
              h->magic, state);
  pool_maybe_abort();
  return _ae_fail(AETHER_ERR_CORRUPTED, "aether_pool_free: the header of %p is corrupted", p);
}

static __attribute__((noinline, cold)) int refuse_state(aether_pool *pool, const void *p, ae_pool_hdr *h, uint32_t state) {
  if (state_is_free(state)) {
    atomic_fetch_add_explicit(&pool->double_frees, 1, memory_order_relaxed);
    const uint32_t tid = state & AE_BLOCK_TID_MASK;
    if (tid != 0) pool_report("AETHER POOL ERROR: Double free of %p (already freed by thread %u)", p, tid);
    else pool_report("AETHER POOL ERROR: Double free of %p (the block was never allocated)", p);
    pool_maybe_abort();
    return _ae_fail(AETHER_ERR_DOUBLE_FREE, "aether_pool_free: %p is already free", p);
  }
  return refuse_corrupted(pool, p, h, state);
}

/* Put a freed index in the cache (spilling the older half when full) or, without a usable cache, on the
 * shared list. */
static __attribute__((noinline)) void free_slow(aether_pool *pool, ae_pool_cache *c, uint32_t idx) {
  if (c == NULL) c = cache_get(pool);
  if (c != NULL) {
    if (cache_enter(c)) {
      uint32_t n = atomic_load_explicit(&c->count, memory_order_relaxed);
      if (n >= pool->cache_cap) { /* full: spill the older half in one CAS */
        shared_push_array(pool, c->items, pool->batch);
        memmove(c->items, c->items + pool->batch, (n - pool->batch) * sizeof c->items[0]);
        n -= pool->batch;
      }
      c->items[n] = idx;
      atomic_store_explicit(&c->count, n + 1, memory_order_relaxed);
      cache_leave(c);
      count_up(&c->frees);
      return;
    }
    cache_leave(c);
  }
  shared_push_array(pool, &idx, 1);
  atomic_fetch_add_explicit(&pool->direct_frees, 1, memory_order_relaxed);
}

/* The chunk holding address a and the block a falls in (*block_start), or false when a is in no chunk. Nothing
 * is read through a: only the chunks' address ranges. */
static inline __attribute__((always_inline)) bool locate(aether_pool *pool, uintptr_t a, uint32_t *chunk,
                                                         uint32_t *local_out, const uint8_t **block_start) {
  const uint32_t nch = atomic_load_explicit(&pool->nchunks, memory_order_acquire);
  uint32_t k = 0;
  while (k < nch && a - (uintptr_t)pool->chunks[k].base >= pool->chunks[k].span) k++;
  if (AE_UNLIKELY(k == nch)) return false;
  const ae_chunk *ch = &pool->chunks[k];
  const uintptr_t off = a - (uintptr_t)ch->base;
  uintptr_t local;
  if (AE_LIKELY(pool->stride_shift != 0)) local = off >> pool->stride_shift;
  else local = off / pool->stride;
  *chunk = k;
  *local_out = (uint32_t)local;
  *block_start = ch->base + local * pool->stride;
  return true;
}

int aether_pool_is_live(aether_pool *pool, const void *block) {
  AE_RETURN_ERROR_IF(pool == NULL || pool->magic != AE_POOL_MAGIC, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_pool_is_live: not a pool");
  uint32_t k, local;
  const uint8_t *start;
  if (block == NULL || !locate(pool, (uintptr_t)block, &k, &local, &start) || start != block) return 0;
  const ae_pool_hdr *h = hdr_slot(&pool->chunks[k], local);
  return h->magic == block_magic(pool, (k << AE_CHUNK_SHIFT) | local) &&
         atomic_load_explicit(&h->state, memory_order_acquire) == AE_BLOCK_LIVE;
}

aether_status aether_pool_free(aether_pool *pool, void *ptr) {
  if (AE_UNLIKELY(ptr == NULL)) return AETHER_OK;
  AE_RETURN_ERROR_IF(pool == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_pool_free: the pool is NULL");
  uint32_t k, local;
  const uint8_t *block;
  if (AE_UNLIKELY(!locate(pool, (uintptr_t)ptr, &k, &local, &block))) {
    if (pool->magic != AE_POOL_MAGIC) return _ae_fail(AETHER_ERR_INVALID_ARGUMENT, "aether_pool_free: not a pool");
    return refuse_foreign(pool, ptr);
  }
  if (AE_UNLIKELY((const uint8_t *)ptr != block)) return refuse_inside(pool, ptr, block);
  const uint32_t idx = (k << AE_CHUNK_SHIFT) | local;
  ae_pool_hdr *h = hdr_slot(&pool->chunks[k], local);
  if (AE_UNLIKELY(h->magic != block_magic(pool, idx))) /* a damaged magic says nothing about the state */
    return refuse_corrupted(pool, ptr, h, atomic_load_explicit(&h->state, memory_order_relaxed));
  /* The one atomic RMW of a free: of two racing frees exactly one moves LIVE -> FREE. acq_rel: it orders
   * the block's last use by its owner before its reuse by whoever gets it next. */
  if (AE_UNLIKELY(tl_tid == 0)) tl_tid = _ae_thread_id() & AE_BLOCK_TID_MASK;
  uint32_t state = AE_BLOCK_LIVE;
  if (AE_UNLIKELY(!atomic_compare_exchange_strong_explicit(&h->state, &state, AE_BLOCK_FREE_TAG | tl_tid,
                                                           memory_order_acq_rel, memory_order_acquire)))
    return refuse_state(pool, ptr, h, state);
  ae_pool_cache *c = atomic_load_explicit(&pool->caches[tl_slot], memory_order_relaxed);
  if (AE_LIKELY(c != NULL)) {
    if (AE_LIKELY(cache_enter(c))) {
      const uint32_t n = atomic_load_explicit(&c->count, memory_order_relaxed);
      if (AE_LIKELY(n < pool->cache_cap)) {
        c->items[n] = idx;
        atomic_store_explicit(&c->count, n + 1, memory_order_relaxed);
        cache_leave(c);
        count_up(&c->frees);
        return AETHER_OK;
      }
    }
    cache_leave(c);
  }
  free_slow(pool, c, idx);
  return AETHER_OK;
}

/* ------------------------------------------------------------------------------- stats, destroy --- */
aether_status aether_pool_stats(const aether_pool *cpool, aether_pool_info *out) {
  AE_RETURN_ERROR_IF(cpool == NULL || out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_pool_stats: NULL argument");
  AE_RETURN_ERROR_IF(cpool->magic != AE_POOL_MAGIC, AETHER_ERR_INVALID_ARGUMENT, "aether_pool_stats: not a pool");
  aether_pool *pool = (aether_pool *)cpool;
  memset(out, 0, sizeof *out);
  uint64_t allocs = atomic_load_explicit(&pool->direct_allocs, memory_order_relaxed);
  uint64_t frees = atomic_load_explicit(&pool->direct_frees, memory_order_relaxed);
  for (uint32_t s = 1; s < AE_POOL_SLOTS; s++) {
    const ae_pool_cache *c = atomic_load_explicit(&pool->caches[s], memory_order_acquire);
    if (c == NULL) continue;
    allocs += atomic_load_explicit(&c->allocs, memory_order_relaxed);
    frees += atomic_load_explicit(&c->frees, memory_order_relaxed);
    out->cached_blocks += atomic_load_explicit(&c->count, memory_order_relaxed);
  }
  out->block_size = pool->block_size;
  out->alignment = pool->alignment;
  out->stride = pool->stride;
  out->total_blocks = atomic_load_explicit(&pool->total_blocks, memory_order_relaxed);
  out->max_blocks = pool->max_blocks;
  out->in_use = allocs > frees ? allocs - frees : 0;
  out->free_blocks = out->total_blocks > out->in_use ? out->total_blocks - out->in_use : 0;
  out->chunks = atomic_load_explicit(&pool->nchunks, memory_order_acquire);
  out->reserved_bytes = atomic_load_explicit(&pool->reserved_bytes, memory_order_relaxed);
  out->allocs = allocs;
  out->frees = frees;
  out->failed_allocs = atomic_load_explicit(&pool->failed_allocs, memory_order_relaxed);
  out->double_frees = atomic_load_explicit(&pool->double_frees, memory_order_relaxed);
  out->invalid_frees = atomic_load_explicit(&pool->invalid_frees, memory_order_relaxed);
  out->corrupted = atomic_load_explicit(&pool->corrupted, memory_order_relaxed);
  out->reclaimed = atomic_load_explicit(&pool->stolen, memory_order_relaxed);
  return AETHER_OK;
}

static size_t pool_destroy(aether_pool *pool, bool report);
size_t aether_pool_destroy(aether_pool *pool) { return pool_destroy(pool, true); }
void _ae_pool_destroy_quiet(aether_pool *pool) { pool_destroy(pool, false); }

static size_t pool_destroy(aether_pool *pool, bool report) {
  if (pool == NULL) return 0;
  if (pool->magic != AE_POOL_MAGIC) {
    _ae_fail(AETHER_ERR_INVALID_ARGUMENT, "aether_pool_destroy: not a pool (destroyed twice?)");
    return 0;
  }
  pthread_mutex_lock(&registry_lock); /* a pool made by pool_create's failure path was never registered */
  if (pool->reg_prev) pool->reg_prev->reg_next = pool->reg_next;
  else if (registry == pool) registry = pool->reg_next;
  if (pool->reg_next) pool->reg_next->reg_prev = pool->reg_prev;
  pthread_mutex_unlock(&registry_lock);

  /* Outstanding blocks are the LIVE ones; list the first few with their addresses. */
  size_t outstanding = 0;
  char line[1024];
  int len = 0;
  const uint32_t nch = atomic_load_explicit(&pool->nchunks, memory_order_acquire);
  for (uint32_t k = 0; k < nch; k++) {
    const ae_chunk *ch = &pool->chunks[k];
    for (uint32_t i = 0; i < ch->nblocks; i++) {
      if (atomic_load_explicit(&hdr_slot(ch, i)->state, memory_order_acquire) != AE_BLOCK_LIVE) continue;
      if (outstanding < AE_OUTSTANDING_LISTED && len < (int)sizeof line - 64)
        len += snprintf(line + len, sizeof line - (size_t)len, "%s%p", outstanding ? ", " : "",
                        (void *)(ch->base + (size_t)i * pool->stride));
      outstanding++;
    }
  }
  if (outstanding > 0 && report) {
    char msg[1200];
    pool_report("AETHER POOL: %zu block(s) of %zu bytes still outstanding at destroy: %s%s", outstanding,
                pool->block_size, line, outstanding > AE_OUTSTANDING_LISTED ? ", ..." : "");
    snprintf(msg, sizeof msg, "aether_pool_destroy: %zu block(s) were still outstanding", outstanding);
    _ae_fail(AETHER_ERR_BUSY, "%s", msg);
  }
  for (uint32_t s = 0; s < AE_POOL_SLOTS; s++) free(atomic_load_explicit(&pool->caches[s], memory_order_acquire));
  for (uint32_t k = 0; k < nch; k++) {
    munmap(pool->chunks[k].map, pool->chunks[k].map_len);
    munmap(pool->chunks[k].hdrs, pool->chunks[k].hdr_len);
  }
  pthread_mutex_destroy(&pool->grow_lock);
  pool->magic = AE_POOL_DEAD;
  munmap(pool, pool->self_len);
  return outstanding;
}
