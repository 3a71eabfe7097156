/* devpool_internal.h: what devpool.c (pools, handles, tenancy), suballoc.c (the allocator inside a pool),
 * audit.c (ring, hash-chained files, verifier) and replay.c (traces, replay, benchmark loops) share. */
#ifndef AETHER_DEVPOOL_INTERNAL_H
#define AETHER_DEVPOOL_INTERNAL_H

#include "device/backend.h"
#include "internal.h"

#include <pthread.h>
#include <stdbool.h>

/* ------------------------------------------------------------------------------- suballocator --- */
/* Device memory is carved out of slabs with all bookkeeping kept on the host (a GPU's memory cannot hold our
 * headers cheaply, and a tenant must never be able to corrupt them). Two allocators share the slabs:
 * - sizes up to AE_SA_SMALL_MAX go to runs: a run is one block of up to 64 KiB (and 128 slots) cut into equal
 *   slots of one size class (classes every 256 bytes, so no rounding beyond the 256-byte alignment), with a
 *   bitmap of free slots;
 * - larger sizes, and the runs themselves, come from a TLSF allocator (two-level segregated fit: 32 second-level
 *   bins per power of two, bitmaps to find a non-empty bin in O(1)) over out-of-band block descriptors linked to
 *   their physical neighbours, so a free merges with free neighbours at once. Before the O(1) good-fit search it
 *   tries a bounded best fit in the request's own bin, which keeps fragmentation low on random sizes.
 * Allocations are named by handles, never by address, so a movable pool (public level) may relocate them:
 * when nothing fits but some window of consecutive blocks holds enough free bytes, the window that moves the
 * fewest bytes is compacted (its unpinned blocks slid down with the backend's device-to-device copy) before
 * the pool grows. Taking an allocation's device address pins it for good. A pool grows in steps of the larger
 * of the minimum slab and 1/32 of what it holds: in place at the end of its slab where the backend can resize
 * a range (host: one contiguous slab, no boundaries to waste space at), else by a new slab (GPU runtimes). It
 * gives a long free tail and empty slabs back beyond retain bytes.
 * Not thread-safe: the pool's lock covers it. */
#define AE_SA_ALIGN 256u
#define AE_SA_SMALL_MAX 8192u
#define AE_SA_CLASSES (AE_SA_SMALL_MAX / AE_SA_ALIGN)
#define AE_SA_RUN_BYTES 65536u
#define AE_SA_RUN_SLOTS 128u /* a run holds at most this many slots (32 KiB of 256-byte ones) */
#define AE_SA_FL 29 /* first-level bins: sizes up to 2^40 bytes */
#define AE_SA_SL 32 /* second-level bins per first level */
#define AE_SA_MAX_SIZE ((uint64_t)1 << 40)

typedef struct ae_slab ae_slab;
typedef struct ae_blk ae_blk;
typedef struct ae_run ae_run;

typedef struct ae_sa {
  const ae_backend_ops *be;
  void *bstate;
  uint64_t min_slab;     /* smallest slab asked of the backend */
  uint64_t retain;       /* empty slab bytes kept before giving slabs back */
  uint32_t slab_flags;   /* AE_BACKEND_* for every slab */
  bool zero_new_slabs;   /* memset fresh slabs (GPU memory comes back dirty; mmap'd pages are zero) */
  bool movable;          /* unpinned allocations may be relocated by compaction */
  uint32_t fl_bitmap;
  uint32_t sl_bitmap[AE_SA_FL];
  ae_blk *bins[AE_SA_FL][AE_SA_SL];
  ae_run *partial[AE_SA_CLASSES]; /* runs of each class with a free slot */
  uint32_t empty_runs[AE_SA_CLASSES];
  ae_slab *slabs;
  ae_slab *growable;     /* the slab grown in place when the backend can resize (host) */
  uint64_t nslabs, reserved, empty_bytes, allocated;
  uint64_t slabs_acquired, slabs_released;
  uint64_t compactions, moved_bytes;
  void *free_descs;      /* recycled 64-byte descriptors (blocks, runs, slabs) */
  void *desc_chunks;     /* mmap'd chunks they come from */
} ae_sa;

/* An allocation as the suballocator knows it: the descriptor to give back (a run, tagged with bit 0, and the
 * slot in it; or a TLSF block) and the bytes it takes (its size rounded up to 256). Its device address is
 * _ae_sa_addr(), which compaction may change unless the allocation is pinned. */
typedef struct ae_sa_block {
  void *where;
  uint64_t index;
  uint64_t bytes;
} ae_sa_block;

void _ae_sa_init(ae_sa *sa, const ae_backend_ops *be, void *bstate, uint64_t min_slab, uint64_t retain,
                 uint32_t slab_flags, bool zero_new_slabs, bool movable);
int _ae_sa_alloc(ae_sa *sa, uint64_t size, ae_sa_block *out);
void _ae_sa_free(ae_sa *sa, const ae_sa_block *blk);
uint64_t _ae_sa_addr(const ae_sa_block *blk);
/* Pin (never move) or unpin an allocation; pins count. */
void _ae_sa_pin(const ae_sa_block *blk);
void _ae_sa_unpin(const ae_sa_block *blk);
/* Give every empty slab back; returns the bytes released. */
uint64_t _ae_sa_trim(ae_sa *sa);
/* Largest contiguous free block (TLSF) or free run slot. */
uint64_t _ae_sa_largest_free(const ae_sa *sa);
void _ae_sa_destroy(ae_sa *sa);

/* ------------------------------------------------------------------------------------- audit --- */
/* The ring holds the newest records; when a file is configured it is also the queue a writer thread drains:
 * producers then never run more than the ring's capacity ahead of the writer (they wait), so no record is lost.
 * A slot's stamp is seq once its record is complete (seqlock style for readers racing an overwrite). */
typedef struct ae_audit_slot {
  _Atomic uint64_t stamp;
  _Atomic uint64_t w[6]; /* the record as words: written and read with relaxed atomics, published by stamp */
  uint64_t pad;          /* a slot is one cache line, so two producers never share one */
} ae_audit_slot;

typedef struct ae_sink ae_sink;
typedef struct aether_devpool aether_devpool;

typedef struct ae_audit {
  ae_audit_slot *ring;
  uint64_t mask;
  _Alignas(AE_CACHE_LINE) _Atomic uint64_t head; /* next seq - 1; producers' counter on its own line */
  _Alignas(AE_CACHE_LINE) _Atomic uint64_t tail; /* the writer's cursor: records < tail are in the files */
  _Atomic int sinks_active;                      /* a file is configured: producers respect tail */
  _Atomic int writer_idle;                       /* the writer sleeps: producers signal */
  pthread_mutex_t lock;                          /* sinks list, writer sleep, flush */
  pthread_cond_t wake, flushed;
  pthread_mutex_t space_lock;                    /* producers waiting for ring space sleep here */
  pthread_cond_t space;
  _Atomic uint32_t space_waiters;
  pthread_t writer;
  bool writer_started, stop;
  uint64_t flush_target;
  int flush_status;
  ae_sink *sinks;
  aether_devpool *dp;
} ae_audit;

int _ae_audit_init(ae_audit *a, aether_devpool *dp, uint32_t ring);
void _ae_audit_destroy(ae_audit *a);
/* Append one record (thread-safe, lock-free unless a file writer is behind by a whole ring). */
void _ae_audit(ae_audit *a, uint32_t op, uint32_t ctx, uint64_t handle, uint64_t size, int result);
/* Records with seq > after_seq still in the ring, oldest first. */
size_t _ae_audit_read(ae_audit *a, uint64_t after_seq, aether_audit_record *out, size_t max);
int _ae_audit_set_file(ae_audit *a, uint32_t ctx, const char *path);
int _ae_audit_flush(ae_audit *a);
/* SHA-256 through libcrypto (loaded on first use); AETHER_ERR_CRYPTO_UNAVAILABLE if it cannot be. */
int _ae_sha256(const void *data, size_t len, uint8_t out[32]);

/* Audit records about a tenant rather than a context (quota changes) carry this flag and the tenant's index. */
#define AE_AUDIT_TENANT_FLAG 0x80000000u
/* The names an audit line shows for a record's ctx (contexts and tenants live as long as their manager). */
void _ae_devpool_names(const aether_devpool *dp, uint32_t ctx, const char **tenant, const char **runtime,
                       const char **level);

/* The manager's backend, for the benchmark's raw-allocation baseline. */
void _ae_devpool_backend(aether_devpool *dp, const ae_backend_ops **be, void **state);

#endif
