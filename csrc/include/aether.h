/* aether.h: the whole public C API of libaether, the memory-safety runtime of the Aether language.
 *
 * Conventions (every subsystem follows them):
 * - Functions that can fail return an aether_status (0 on success, a negative AETHER_ERR_* code otherwise), or
 *   NULL/false where the spec's signature says so; aether_last_error() then gives a one-line message naming the
 *   violated precondition, for the calling thread.
 * - Nothing in the library aborts the process unless the user asked for it (AETHER_ABORT_ON_ERROR=1).
 * - All functions are thread-safe unless their comment says otherwise.
 */
#ifndef AETHER_H
#define AETHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(AETHER_BUILDING)
#define AETHER_API __attribute__((visibility("default")))
#else
#define AETHER_API
#endif

/* ============================================================================================== core === */

/* Error codes: values are pinned (they cross the FFI and appear in JSON output); never renumber. */
typedef enum aether_status {
  AETHER_OK = 0,
  AETHER_ERR_INVALID_ARGUMENT = -1,  /* a NULL pointer, a zero where one is not allowed, a bad enum value */
  AETHER_ERR_OUT_OF_MEMORY = -2,     /* the OS or the backend refused memory */
  AETHER_ERR_NOT_POWER_OF_TWO = -3,  /* a capacity, alignment or length that must be a power of two */
  AETHER_ERR_OUT_OF_RANGE = -4,      /* a size, count or index outside its documented range */
  AETHER_ERR_MISALIGNED = -5,        /* a pointer not aligned as required */
  AETHER_ERR_LENGTH_MISMATCH = -6,   /* two buffers that must have equal lengths do not */
  AETHER_ERR_UNSUPPORTED = -7,       /* the CPU, OS or build lacks what the call needs */
  AETHER_ERR_NOT_INITIALIZED = -8,   /* an object used before creation or after destruction */
  AETHER_ERR_BUSY = -9,              /* the object is in use (outstanding blocks, running threads) */
  AETHER_ERR_IO = -10,               /* a file could not be opened, read or written */
  AETHER_ERR_MALFORMED = -11,        /* input that does not parse (ELF, trace, log, targets) */
  AETHER_ERR_SIZE_OVERFLOW = -12,    /* a size computation overflowed (count * size) */
  AETHER_ERR_INVALID_POINTER = -13,  /* a pointer not owned by this allocator/pool, or interior/misaligned */
  AETHER_ERR_DOUBLE_FREE = -14,      /* the block is already free */
  AETHER_ERR_CORRUPTED = -15,        /* a magic number, guard or checksum does not verify */
  AETHER_ERR_LIMIT_REACHED = -16,    /* a configured maximum (pool blocks, live objects) is reached */
  AETHER_ERR_ZERO_NORM = -17,        /* normalizing a state whose norm is zero */
  AETHER_ERR_NON_FINITE = -18,       /* NaN or infinity where a finite value is required */
  AETHER_ERR_NO_DEVICE = -20,        /* the requested device backend found no device */
  AETHER_ERR_BACKEND_UNAVAILABLE = -21, /* the backend's runtime library is not installed */
  AETHER_ERR_QUOTA_EXCEEDED = -22,   /* a tenant's byte or count quota would be exceeded */
  AETHER_ERR_ACCESS_DENIED = -23,    /* the caller's context may not use this handle or object */
  AETHER_ERR_STALE_HANDLE = -24,     /* the handle was valid once and has been freed (use after free) */
  AETHER_ERR_FORGED_HANDLE = -25,    /* the handle was never issued */
  AETHER_ERR_OUT_OF_BOUNDS = -26,    /* an offset/length range outside the allocation */
  AETHER_ERR_READ_ONLY = -27,        /* a write to an immutable object or through read access */
  AETHER_ERR_NOT_OWNER = -28,        /* ownership was transferred away */
  AETHER_ERR_WIPE_FAILED = -29,      /* secure wipe could not be verified */
  AETHER_ERR_TAMPERED = -30,         /* an audit hash chain does not verify */
  AETHER_ERR_CRYPTO_UNAVAILABLE = -31, /* OpenSSL's libcrypto could not be loaded */
  AETHER_ERR_DEVICE = -32,           /* the device runtime returned an error */
  AETHER_ERR_STACK_OVERFLOW = -40,   /* a stack probe found too little stack left */
  AETHER_ERR_NOT_ELF = -41,          /* not a 64-bit little-endian ELF file */
  AETHER_ERR_TRUNCATED = -42,        /* a header or table extends past the end of the input */
  AETHER_ERR_OVERLAP = -43           /* two regions that must not overlap do */
} aether_status;

/* The symbolic name of a status ("AETHER_ERR_OUT_OF_RANGE"), or "AETHER_ERR_UNKNOWN". Never NULL. */
AETHER_API const char *aether_error_name(int status);
/* The message of the last failure on the calling thread ("" if none). Valid until the thread's next failure. */
AETHER_API const char *aether_last_error(void);
/* The status of the last failure on the calling thread (AETHER_OK if none); cleared by aether_clear_error(). */
AETHER_API int aether_last_status(void);
AETHER_API void aether_clear_error(void);

/* Library version ("0.1.0") and variant ("release", "asan", "ubsan", "tsan", "msan"). */
AETHER_API const char *aether_version(void);
AETHER_API const char *aether_variant(void);
/* Compiler id/version and the C flags this library was built with. */
AETHER_API const char *aether_build_compiler(void);
AETHER_API const char *aether_build_flags(void);

/* CPU features, probed once with CPUID and XGETBV (a feature counts only if the OS saves its registers). */
enum {
  AETHER_CPU_SSE42 = 1u << 0,
  AETHER_CPU_AVX2 = 1u << 1,
  AETHER_CPU_FMA = 1u << 2,
  AETHER_CPU_AVX512F = 1u << 3,
  AETHER_CPU_AVX512BW = 1u << 4,
  AETHER_CPU_AVX512VL = 1u << 5
};
AETHER_API uint32_t aether_cpu_features(void);
/* Writes the CPU brand string (NUL-terminated, at most len-1 bytes); returns its length or a negative status. */
AETHER_API int aether_cpu_model(char *out, size_t len);

/* ================================================================================ safe allocator === */
/* Layout of a block: [AllocHeader 24 B][front guard][user data][back guard]. Guards hold the 0xDEADBEEF
 * pattern, the header holds the size, a magic number and a 32-bit checksum keyed by a per-process random
 * cookie. The registry (per-block state kept outside the block) knows every live allocation, so a free of an
 * unknown pointer is diagnosed without reading memory through it. Diagnostics go to stderr (or the log file)
 * with the prefix "AETHER MEMORY ERROR: "; see aether_memory_errors() to read them as data. */

/* Initialize the allocator: read AETHER_* options from the environment. Idempotent; called implicitly by the
 * first allocation, so a program that forgets it still works. */
AETHER_API void aether_memory_init(void);
/* Allocate size bytes aligned to alignof(max_align_t) with guards; NULL for size 0 or when out of memory. */
AETHER_API void *aether_safe_malloc(size_t size);
/* Free with checks: NULL is a no-op; a double free, an unknown pointer or damaged guards are diagnosed and the
 * bad pointer is left alone. The block is poisoned and quarantined before it can be reused. */
AETHER_API void aether_safe_free(void *ptr);
/* realloc with data preserved: (NULL, n) allocates, (p, 0) frees and returns NULL, an unknown or freed p is
 * diagnosed ("Invalid realloc") and NULL returned; on failure the old block is left intact. */
AETHER_API void *aether_safe_realloc(void *ptr, size_t new_size);
/* Zeroed count*size bytes; NULL (with AETHER_ERR_SIZE_OVERFLOW) if the product overflows, or if it is 0. */
AETHER_API void *aether_safe_calloc(size_t count, size_t size);
/* size bytes aligned to alignment (a power of two; at least sizeof(void *) is used); NULL on a bad alignment. */
AETHER_API void *aether_safe_aligned_alloc(size_t alignment, size_t size);
/* The size requested for a live block, or 0 if ptr is not a live allocation (nothing is read through ptr). */
AETHER_API size_t aether_safe_usable_size(const void *ptr);
/* Number of live allocations now; if any, prints "AETHER MEMORY: N allocation(s) leaked: ..." listing the
 * largest (up to AETHER_LEAK_REPORT_MAX) with address and size. */
AETHER_API size_t aether_check_leaks(void);
/* Bytes currently allocated by users (requested sizes, live blocks only). Exact once threads are quiescent. */
AETHER_API size_t aether_memory_usage(void);
/* Verify the guards and header of every live allocation now; reports each damaged block and returns how many
 * are damaged. Safe to call while other threads allocate (a block freed meanwhile is skipped). */
AETHER_API size_t aether_memory_check_all(void);

/* The unchecked fast path: the system allocator, no guards, no tracking (for performance-critical code). */
AETHER_API void *aether_malloc(size_t size);
AETHER_API void aether_free(void *ptr);

/* Kinds of memory errors; also the index into aether_memory_stats.errors[]. */
typedef enum aether_memory_error_kind {
  AETHER_MEM_DOUBLE_FREE = 0,
  AETHER_MEM_INVALID_FREE = 1,
  AETHER_MEM_BUFFER_UNDERFLOW = 2,
  AETHER_MEM_BUFFER_OVERFLOW = 3,
  AETHER_MEM_INVALID_REALLOC = 4,
  AETHER_MEM_USE_AFTER_FREE = 5,
  AETHER_MEM_ERROR_KINDS = 6
} aether_memory_error_kind;
/* "double-free", "invalid-free", ...; "unknown" for an out-of-range kind. */
AETHER_API const char *aether_memory_error_kind_name(int kind);

typedef struct aether_memory_stats {
  uint64_t live_count;        /* allocations live now */
  uint64_t live_bytes;        /* user bytes live now (same as aether_memory_usage) */
  uint64_t peak_bytes;        /* high-water mark of live_bytes (exact single-threaded, else within 64 KiB/thread) */
  uint64_t total_allocs;      /* successful allocations since init */
  uint64_t total_frees;       /* successful frees since init */
  uint64_t total_bytes;       /* user bytes allocated since init */
  uint64_t quarantine_bytes;  /* user bytes held in quarantine now (all threads) */
  uint64_t reserved_bytes;    /* address space taken from the OS for blocks and metadata */
  uint64_t errors[AETHER_MEM_ERROR_KINDS]; /* errors detected, by aether_memory_error_kind */
} aether_memory_stats;
/* Fill *out (must not be NULL). */
AETHER_API aether_status aether_memory_get_stats(aether_memory_stats *out);

/* One detected error. The newest AETHER_MEMORY_EVENT_RING are kept in memory. */
#define AETHER_MEMORY_EVENT_RING 256
typedef struct aether_memory_event {
  uint64_t seq;         /* 1, 2, 3, ... since init: a reader remembers the last seq it saw */
  uint64_t address;     /* the user pointer the error concerns */
  uint64_t size;        /* the block's requested size, when known (else 0) */
  uint64_t detail;      /* bad magic value, or offset of the first damaged byte from the user pointer */
  uint64_t time_ns;     /* CLOCK_MONOTONIC */
  uint32_t kind;        /* aether_memory_error_kind */
  uint32_t thread_id;   /* the OS thread id that detected it */
} aether_memory_event;
/* Copy events with seq > after_seq, oldest first, into out[0..max); returns how many were copied. */
AETHER_API size_t aether_memory_errors(uint64_t after_seq, aether_memory_event *out, size_t max);

/* Called after an error is printed (from the detecting thread; must not call the allocator). NULL removes it. */
typedef void aether_memory_error_fn(const aether_memory_event *event, void *arg);
AETHER_API void aether_memory_set_error_handler(aether_memory_error_fn *fn, void *arg);

/* Options: one table, read from AETHER_<NAME> in the environment at init, or set here by name (lower case).
 *   quarantine_bytes   AETHER_QUARANTINE_BYTES  262144  freed bytes each thread holds back (0 disables)
 *   abort_on_error     AETHER_ABORT_ON_ERROR    0       abort() after reporting any memory error
 *   log_file           AETHER_LOG_FILE          ""      append diagnostics to this file instead of stderr
 *   redzone            AETHER_REDZONE           8       guard bytes on each side, 8..4096 (set before the first
 *                                                       allocation; rounded so user data stays 16-aligned)
 *   leak_report_max    AETHER_LEAK_REPORT_MAX   16      leaks listed by aether_check_leaks
 *   quiet              AETHER_QUIET             0       count and record errors without printing them
 * Returns AETHER_ERR_INVALID_ARGUMENT for an unknown name or a bad value, AETHER_ERR_BUSY for redzone after
 * the first allocation. */
AETHER_API aether_status aether_memory_set_option(const char *name, const char *value);
/* Current value of an option as text in out (NUL-terminated); returns its length or a negative status. */
AETHER_API int aether_memory_get_option(const char *name, char *out, size_t len);

/* Live allocations, largest first: fills out[0..max) and returns the total number live. */
typedef struct aether_memory_block {
  uint64_t address;
  uint64_t size;
} aether_memory_block;
AETHER_API size_t aether_memory_live_blocks(aether_memory_block *out, size_t max);

/* ======================================================================= lock-free queues (issue 3) === */
/* Bounded FIFO queues of fixed-size items, copied in and out (elem_size bytes each, 1 to 4096).
 * capacity must be a power of two in [8, 2^24]; anything else is refused (NULL, with
 * AETHER_ERR_NOT_POWER_OF_TWO or AETHER_ERR_OUT_OF_RANGE and a message), never rounded.
 *
 * aether_spsc: one producer thread and one consumer thread at a time (a ring with a head and a tail index, each
 * on its own cache line, each side caching the other's). aether_mpmc: any number of producers and consumers
 * (Vyukov's bounded queue: a sequence number per cell, a CAS on the position, no locks). Both are FIFO: nothing
 * is lost or duplicated, and the items of one producer come out in the order it pushed them. Indices are 64-bit
 * and wrap modulo 2^64. The try_ and batch calls never block; false or a short count means full (push) or
 * empty (pop). A NULL queue or buffer makes them return false/0 with the thread's last error set. */
typedef struct aether_spsc aether_spsc;
typedef struct aether_mpmc aether_mpmc;

#define AETHER_QUEUE_MIN_CAPACITY 8u
#define AETHER_QUEUE_MAX_CAPACITY (1u << 24)
#define AETHER_QUEUE_MAX_ELEM_SIZE 4096u

/* Create an empty queue; NULL on a bad argument or when memory is short (aether_last_error() says which). */
AETHER_API aether_spsc *aether_spsc_create(size_t capacity, size_t elem_size);
/* Free the queue and its items (no other thread may use it any more). NULL is a no-op. */
AETHER_API void aether_spsc_destroy(aether_spsc *q);
/* Copy one item (elem_size bytes) in / out; false if the queue is full / empty. Producer / consumer only. */
AETHER_API bool aether_spsc_try_push(aether_spsc *q, const void *item);
AETHER_API bool aether_spsc_try_pop(aether_spsc *q, void *out);
/* Push up to n items from items[0..n) / pop up to n into out[0..n), in order; returns how many moved (0..n). */
AETHER_API size_t aether_spsc_push_n(aether_spsc *q, const void *items, size_t n);
AETHER_API size_t aether_spsc_pop_n(aether_spsc *q, void *out, size_t n);
/* The 8-byte fast paths (elem_size must be 8, else false with AETHER_ERR_INVALID_ARGUMENT). */
AETHER_API bool aether_spsc_try_push_u64(aether_spsc *q, uint64_t value);
AETHER_API bool aether_spsc_try_pop_u64(aether_spsc *q, uint64_t *out);
/* Items in the queue now (exact when quiescent; otherwise a value it held during the call), capacity, item size. */
AETHER_API size_t aether_spsc_size(const aether_spsc *q);
AETHER_API size_t aether_spsc_capacity(const aether_spsc *q);
AETHER_API size_t aether_spsc_elem_size(const aether_spsc *q);

AETHER_API aether_mpmc *aether_mpmc_create(size_t capacity, size_t elem_size);
AETHER_API void aether_mpmc_destroy(aether_mpmc *q);
/* Any thread may push and pop concurrently. */
AETHER_API bool aether_mpmc_try_push(aether_mpmc *q, const void *item);
AETHER_API bool aether_mpmc_try_pop(aether_mpmc *q, void *out);
/* Batch: claims as many consecutive cells as are ready (up to n) with one CAS per claim; returns how many moved.
 * The items of one push_n are consecutive in the queue (no other producer's item lands between them). */
AETHER_API size_t aether_mpmc_push_n(aether_mpmc *q, const void *items, size_t n);
AETHER_API size_t aether_mpmc_pop_n(aether_mpmc *q, void *out, size_t n);
AETHER_API bool aether_mpmc_try_push_u64(aether_mpmc *q, uint64_t value);
AETHER_API bool aether_mpmc_try_pop_u64(aether_mpmc *q, uint64_t *out);
AETHER_API size_t aether_mpmc_size(const aether_mpmc *q);
AETHER_API size_t aether_mpmc_capacity(const aether_mpmc *q);
AETHER_API size_t aether_mpmc_elem_size(const aether_mpmc *q);

/* TEST ONLY: move an empty, unused queue's indices to index (so tests can cross the 2^32 and 2^64 wraps
 * without pushing billions of items). AETHER_ERR_BUSY if the queue is not empty. Not thread-safe. */
AETHER_API aether_status aether_spsc_debug_set_index(aether_spsc *q, uint64_t index);
AETHER_API aether_status aether_mpmc_debug_set_index(aether_mpmc *q, uint64_t index);
/* TEST ONLY: the raw 64-bit head (next push position) and tail (next pop position). */
AETHER_API aether_status aether_spsc_debug_indices(const aether_spsc *q, uint64_t *head, uint64_t *tail);
AETHER_API aether_status aether_mpmc_debug_indices(const aether_mpmc *q, uint64_t *head, uint64_t *tail);

/* Benchmark loops (pinned threads, one call): a queue kind moves items from thread 0 (CPU 0) to thread 1
 * (CPU 1). Throughput: items u64 items, ops_per_sec = items/s over the run, ns_per_op its inverse, and the
 * percentiles are ns per item within 65536-item slices of a second, timed pass (the median slice is the
 * rate with the slices a preempted thread stalled left out). Round trip: thread 0 sends a u64 through one
 * queue, thread 1 echoes it back through another, `items` times; ns_per_op = mean round trip and the
 * percentiles come from a separate pass timing every round trip. PINGPONG is the floor: one cache line
 * written in turn by the two threads (capacity ignored). */
enum {
  AETHER_QBENCH_SPSC = 0,     /* aether_spsc, u64 fast path */
  AETHER_QBENCH_MPMC = 1,     /* aether_mpmc, u64 fast path */
  AETHER_QBENCH_MUTEX = 2,    /* a ring guarded by a pthread mutex, same interface (the baseline) */
  AETHER_QBENCH_PINGPONG = 3, /* one cache line, round trip only */
  AETHER_QBENCH_SPSC_BATCH = 4, /* aether_spsc moved with push_n/pop_n of up to 256 items */
  AETHER_QBENCH_MPMC_BATCH = 5
};
struct aether_bench_result; /* defined under "benchmark loops" below */
AETHER_API aether_status aether_bench_queue(int kind, size_t capacity, uint64_t items, bool round_trip,
                                            struct aether_bench_result *out);

/* ==================== stress (issue 3): verified concurrent load on a queue, the pool or the safe allocator === */
/* One call starts the threads; the caller polls shared counters and stops them. Every queue item carries its
 * producer id and sequence number; consumers check per-producer order, counts and checksums. Pool and
 * allocator users stamp the blocks they own and verify the stamp before freeing or handing them on, so a block
 * given to two owners is caught. The first violation stops every thread and is kept as a message. */
enum {
  AETHER_STRESS_SPSC = 0,
  AETHER_STRESS_MPMC = 1,
  AETHER_STRESS_POOL = 2,
  AETHER_STRESS_ALLOC = 3
};
/* Deliberate faults, so a test can prove the checker catches them (never use them otherwise). */
enum {
  AETHER_STRESS_INJECT_NONE = 0,
  AETHER_STRESS_INJECT_LOSE = 1,     /* queues: a producer skips one sequence number (an item "lost") */
  AETHER_STRESS_INJECT_DUPLICATE = 2, /* queues: a producer sends one item twice */
  AETHER_STRESS_INJECT_SHARE = 3     /* pool/alloc: a thread keeps writing to a block after handing it on */
};
typedef struct aether_stress_config {
  uint32_t target;    /* AETHER_STRESS_* */
  uint32_t producers; /* queues: producer threads (spsc: 1); pool/alloc: worker threads */
  uint32_t consumers; /* queues: consumer threads (spsc: 1); pool/alloc: ignored */
  uint32_t inject;    /* AETHER_STRESS_INJECT_* */
  uint64_t ops;       /* stop after this many operations in all (items consumed, blocks freed); 0: until stopped */
  uint64_t capacity;  /* queues: capacity (power of two); pool: max_blocks (0: 64 per thread); alloc: ignored */
  uint64_t elem_size; /* queues: item size 1..4096; pool: block size; alloc: largest block size */
  uint64_t seed;      /* for the random choices of sizes and actions */
} aether_stress_config;
typedef struct aether_stress aether_stress;
/* Counters the threads update as they go (relaxed atomics; read them with aether_stress_poll). */
typedef struct aether_stress_progress {
  uint64_t ops;        /* operations completed so far (items consumed; allocs+frees) */
  uint64_t produced;   /* queues: items pushed; pool/alloc: blocks allocated */
  uint64_t max_depth;  /* queues: the deepest the queue was seen; pool: most blocks in use; alloc: live blocks */
  uint64_t violations; /* violations found (the threads stop at the first) */
  uint64_t elapsed_ns; /* since start */
  uint32_t running;    /* threads still running */
  uint32_t finished;   /* 1 once every thread has returned */
} aether_stress_progress;
/* Start the threads; NULL with a message on a bad config or when threads cannot be started. */
AETHER_API aether_stress *aether_stress_start(const aether_stress_config *config);
/* Ask the threads to stop (producers stop, consumers drain what was pushed); returns at once. */
AETHER_API void aether_stress_stop(aether_stress *s);
/* Read the counters now. */
AETHER_API aether_status aether_stress_poll(const aether_stress *s, aether_stress_progress *out);
/* Join the threads, run the final checks (totals, checksums, leaks), fill *out, copy the first violation (or
 * "") into message[0..len), and free s. Returns the number of violations (>= 0), or a negative status. */
AETHER_API int64_t aether_stress_finish(aether_stress *s, aether_stress_progress *out, char *message, size_t len);

/* ====================================================================== lock-free aligned pool (issue 3) === */
/* Fixed-size blocks, each aligned to the pool's alignment (a power of two >= 64), zeroed on allocation.
 * Every block has a 16-byte header (magic number keyed per pool and block, state, free-list link, last
 * thread), kept out of line in a table per chunk so a user overflow can damage a neighbour's bytes but never
 * the free list. Allocation and free are lock-free: a per-thread cache of free blocks (no atomics) in front of
 * a shared free list (a Treiber stack whose head is a 32-bit block index plus a 32-bit version, one 64-bit
 * CAS, safe against ABA). The pool grows by chunks when empty (mmap under a mutex, off the fast path) up to
 * max_blocks (0: unbounded, at most 2^32 - 1 blocks).
 * A double free, a pointer from another pool, an interior or misaligned pointer is reported
 * ("AETHER POOL ERROR: ..." with the address, on stderr or AETHER_LOG_FILE) and refused with a status; the
 * free list is never touched for a refused pointer, and nothing is read through it. */
typedef struct aether_pool aether_pool;

typedef struct aether_pool_info {
  uint64_t block_size;     /* bytes a block holds, as asked */
  uint64_t alignment;      /* every block's alignment */
  uint64_t stride;         /* distance between blocks: block_size rounded up to the alignment */
  uint64_t total_blocks;   /* blocks in all chunks */
  uint64_t max_blocks;     /* the limit (0: unbounded) */
  uint64_t in_use;         /* allocated and not freed (exact when no call is in flight) */
  uint64_t free_blocks;    /* total_blocks - in_use */
  uint64_t cached_blocks;  /* free blocks parked in per-thread caches */
  uint64_t chunks;         /* chunks mapped so far */
  uint64_t reserved_bytes; /* bytes mapped for blocks and headers */
  uint64_t allocs;         /* successful allocations */
  uint64_t frees;          /* successful frees */
  uint64_t failed_allocs;  /* NULL returns: max_blocks reached or out of memory */
  uint64_t double_frees;   /* errors refused, by kind */
  uint64_t invalid_frees;  /* foreign, interior or misaligned pointers */
  uint64_t corrupted;      /* headers whose magic did not verify */
  uint64_t reclaimed;      /* free blocks taken back from other threads' caches when the pool ran dry */
} aether_pool_info; /* what aether_pool_stats() reports */

/* Create a pool of initial_blocks blocks (0: mapped on first use) that may grow to max_blocks (0: no limit).
 * block_size in [1, 2^30]; alignment a power of two in [64, 2^21]; initial_blocks <= max_blocks when bounded.
 * NULL on a bad argument (AETHER_ERR_NOT_POWER_OF_TWO, AETHER_ERR_OUT_OF_RANGE, AETHER_ERR_SIZE_OVERFLOW) or
 * when memory is short (AETHER_ERR_OUT_OF_MEMORY). */
AETHER_API aether_pool *aether_pool_create(size_t block_size, size_t alignment, size_t initial_blocks,
                                           size_t max_blocks);
/* A zeroed block aligned to the pool's alignment, or NULL: AETHER_ERR_LIMIT_REACHED when max_blocks are in
 * use, AETHER_ERR_OUT_OF_MEMORY when the OS refuses a new chunk. */
AETHER_API void *aether_pool_alloc(aether_pool *pool);
/* Return a block: AETHER_OK, or (reported and refused) AETHER_ERR_DOUBLE_FREE, AETHER_ERR_INVALID_POINTER
 * (not from this pool, or interior), AETHER_ERR_MISALIGNED, AETHER_ERR_CORRUPTED. NULL is a no-op (AETHER_OK). */
AETHER_API aether_status aether_pool_free(aether_pool *pool, void *block);
AETHER_API aether_status aether_pool_stats(const aether_pool *pool, aether_pool_info *out);
/* Give the calling thread's cached free blocks back to the shared list (threads do it when they exit; a
 * thread that stops using a bounded pool but lives on can call it so other threads can allocate them). */
AETHER_API aether_status aether_pool_flush_cache(aether_pool *pool);
/* Unmap the pool. Blocks still allocated are reported ("AETHER POOL: N block(s) still outstanding at destroy:
 * ...") and their memory is released anyway; returns how many there were. NULL is a no-op (returns 0). No
 * other thread may use the pool during or after the call. */
AETHER_API size_t aether_pool_destroy(aether_pool *pool);

/* Benchmark loop: each of threads (1..64) threads does pairs of p = alloc(); free(p) on one shared pool of
 * block_size-byte, 64-aligned blocks (mode 0: the real pool; mode 1: the same pool with its per-thread caches
 * off, every pair going to the shared CAS list; mode 2: glibc malloc(block_size)/free in the same loop, the
 * baseline). Same passes as aether_bench_alloc; each thread's pointer escapes to a line of its own. */
AETHER_API aether_status aether_bench_pool(int mode, size_t block_size, uint64_t pairs, uint32_t threads,
                                           struct aether_bench_result *out);

/* ========================================================================= SIMD state vectors (issue 4) === */

/* =============================================================================== device pools (issue 5) === */

/* ================================================================== stack safety and layout (issue 7) === */

/* ============================================================================ benchmark loops (in C) === */
/* Timed loops launched by one call, so a figure carries no FFI cost. Latency percentiles time every operation
 * with the cycle counter (its own overhead subtracted); throughput comes from a separate untimed pass. */
typedef struct aether_bench_result {
  uint64_t ops;        /* operations completed by all threads in the throughput pass */
  uint64_t elapsed_ns; /* wall time of the throughput pass */
  double ns_per_op;    /* elapsed_ns * threads / ops: one operation's cost as one thread sees it */
  double ops_per_sec;  /* ops / elapsed: all threads together */
  double p50_ns, p90_ns, p99_ns, p999_ns, max_ns; /* per operation, from the timed pass */
  uint64_t samples;    /* operations in the timed pass */
} aether_bench_result;

enum { AETHER_BENCH_LIBC = 0, AETHER_BENCH_SAFE = 1, AETHER_BENCH_UNCHECKED = 2 };
/* Each of threads (1..64) threads does pairs (1..2^32) of p = malloc(size); free(p) with the chosen allocator
 * (glibc malloc, aether_safe_*, aether_malloc); size in [1, 2^30]. */
AETHER_API aether_status aether_bench_alloc(int allocator, size_t size, uint64_t pairs, uint32_t threads,
                                            aether_bench_result *out);
/* Nanoseconds per cycle-counter tick, as calibrated (for callers that time loops themselves). */
AETHER_API double aether_bench_ns_per_tick(void);

#ifdef __cplusplus
}
#endif

#endif /* AETHER_H */
