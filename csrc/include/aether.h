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
/* Verify the guards and header of every live allocation now, and the poison of the blocks in the calling
 * thread's quarantine (a write after free); reports each damaged block and returns how many are damaged.
 * Safe to call while other threads allocate (a block freed meanwhile is skipped). */
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
  uint32_t alloc_trace; /* stack ids for aether_memory_trace (0: unknown, or backtraces off): the allocation, */
  uint32_t free_trace;  /* the (first) free, */
  uint32_t where_trace; /* and where the error was detected */
  uint32_t reserved;
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
 *   backtrace          AETHER_BACKTRACE         0       record the call stack of every allocation and free
 * Returns AETHER_ERR_INVALID_ARGUMENT for an unknown name or a bad value, AETHER_ERR_BUSY for redzone after
 * the first allocation. */
AETHER_API aether_status aether_memory_set_option(const char *name, const char *value);
/* Current value of an option as text in out (NUL-terminated); returns its length or a negative status. */
AETHER_API int aether_memory_get_option(const char *name, char *out, size_t len);

/* Live allocations, largest first: fills out[0..max) and returns the total number live. */
typedef struct aether_memory_block {
  uint64_t address;
  uint64_t size;
  uint32_t alloc_trace; /* stack id of the allocation (0 when backtraces were off) */
  uint32_t reserved;
} aether_memory_block;
AETHER_API size_t aether_memory_live_blocks(aether_memory_block *out, size_t max);

/* Backtraces, when the backtrace option is on (AETHER_BACKTRACE=1): each allocation and free records its call
 * stack once in a deduplicating depot. Copies the return addresses of stack id (innermost first) into
 * frames[0..max) and returns how many there are (0 for an unknown id). */
AETHER_API size_t aether_memory_trace(uint32_t id, uint64_t *frames, size_t max);

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
  uint64_t ops;       /* exactly this many operations in all (queues: items; pool/alloc: actions: an alloc, free,
                       * realloc or hand-off each); 0: until stopped */
  uint64_t capacity;  /* queues: capacity (power of two); pool: max_blocks (0: 64 per thread); alloc: ignored */
  uint64_t elem_size; /* queues: item size 1..4096; pool: block size; alloc: largest block size */
  uint64_t seed;      /* for the random choices of sizes and actions */
} aether_stress_config;
typedef struct aether_stress aether_stress;
/* Counters the threads update as they go (relaxed atomics; read them with aether_stress_poll). */
typedef struct aether_stress_progress {
  uint64_t ops;        /* operations completed so far (items consumed; pool/alloc: actions) */
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
/* 1 if block is the start of a block of this pool that is allocated now, 0 if not (free, interior, foreign or
 * NULL); AETHER_ERR_INVALID_ARGUMENT for a pool that is not one. Reads only the pool's own bookkeeping. */
AETHER_API int aether_pool_is_live(aether_pool *pool, const void *block);
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
/* A state vector of num_qubits qubits: 2^num_qubits complex amplitudes held as two float32 arrays, re[] and
 * im[] (split, not interleaved, so a vector register holds 8 or 16 real parts at once). Kernels come in three
 * implementations expanded from one body (csrc/qstate_kernels.h): a scalar reference, AVX2+FMA and AVX-512F.
 * The process's choice is made once, at first use, from CPUID and XGETBV (aether_cpu_features), unless
 * AETHER_SIMD=scalar|avx2|avx512 names one the CPU supports; a state can be pinned to any supported one.
 * A kernel on fewer amplitudes than its vector width runs the scalar code inside the same call.
 * Sums (norm2, inner_product) square or multiply float32 values exactly in float64 (24-bit mantissas give
 * 48-bit products) and add them in 4 float64 accumulators of 1, 4 or 8 lanes, so at 2^30 amplitudes the
 * relative error is at most 2^31 / chains * 2^-53 (6e-8 scalar, 1.5e-8 AVX2, 7.5e-9 AVX-512), where a float32
 * accumulator would stop growing after 2^24 terms.
 * A state is used by one thread at a time; distinct states are independent. */
typedef struct aether_qstate aether_qstate;

/* Implementations; AETHER_SIMD_AUTO means "the process's choice". */
enum { AETHER_SIMD_AUTO = -1, AETHER_SIMD_SCALAR = 0, AETHER_SIMD_AVX2 = 1, AETHER_SIMD_AVX512 = 2 };
#define AETHER_QSTATE_MIN_QUBITS 1
#define AETHER_QSTATE_MAX_QUBITS 30
/* Wrapped arrays must be at least this aligned (the AVX2 kernels use aligned 32-byte loads); the AVX-512
 * kernels need 64, so a state whose arrays are only 32-byte aligned runs AVX2 where AVX-512 was chosen. */
#define AETHER_QSTATE_MIN_ALIGN 32

/* The implementation this process uses by default (AETHER_SIMD_SCALAR, _AVX2 or _AVX512). */
AETHER_API int aether_simd_impl(void);
/* "scalar", "avx2", "avx512", "auto", or "unknown". Never NULL. */
AETHER_API const char *aether_simd_impl_name(int impl);
/* Whether this CPU and OS can run impl (scalar always can; avx2 needs AVX2+FMA; avx512 AVX-512F too). */
AETHER_API bool aether_simd_supported(int impl);
/* One line saying why the default was chosen ("probed: AVX-512F, AVX2, FMA", "AETHER_SIMD=scalar", or why
 * an AETHER_SIMD value was ignored). Never NULL. */
AETHER_API const char *aether_simd_reason(void);

/* Create a state of num_qubits (1..30) qubits in |0...0> (re[0] = 1, everything else 0), owning two
 * 64-byte-aligned arrays. *out is set on success, NULL on failure. Errors: INVALID_ARGUMENT (out is NULL),
 * OUT_OF_RANGE (num_qubits), OUT_OF_MEMORY. */
AETHER_API aether_status aether_qstate_create(uint32_t num_qubits, aether_qstate **out);
/* A state over caller-owned arrays (not copied, not freed by destroy; they must outlive the state).
 * Errors: INVALID_ARGUMENT (a NULL), LENGTH_MISMATCH (re_len != im_len), NOT_POWER_OF_TWO, OUT_OF_RANGE (a
 * length outside [2, 2^30]), MISALIGNED (an array not AETHER_QSTATE_MIN_ALIGN-aligned), OVERLAP. */
AETHER_API aether_status aether_qstate_wrap(float *re, size_t re_len, float *im, size_t im_len, aether_qstate **out);
/* Free a state (and its arrays if it owns them). NULL is a no-op. */
AETHER_API void aether_qstate_destroy(aether_qstate *s);
/* The arrays, their length (2^num_qubits) and the qubit count; NULL/0 for a NULL state. */
AETHER_API float *aether_qstate_re(const aether_qstate *s);
AETHER_API float *aether_qstate_im(const aether_qstate *s);
AETHER_API size_t aether_qstate_len(const aether_qstate *s);
AETHER_API uint32_t aether_qstate_qubits(const aether_qstate *s);
/* Pin the state to impl (AETHER_SIMD_AUTO unpins). Errors: INVALID_ARGUMENT, UNSUPPORTED (the CPU lacks it),
 * MISALIGNED (avx512 on arrays that are not 64-byte aligned). */
AETHER_API aether_status aether_qstate_set_impl(aether_qstate *s, int impl);
/* The implementation the state's kernels run now (after AUTO, alignment and length are taken into account:
 * a state shorter than the vector width reports AETHER_SIMD_SCALAR), or a negative status. */
AETHER_API int aether_qstate_impl(const aether_qstate *s);

/* *out = sum of re[i]^2 + im[i]^2, accumulated in float64. */
AETHER_API aether_status aether_qstate_norm2(const aether_qstate *s, double *out);
/* Scale the state to norm 1. Errors: ZERO_NORM (every amplitude is 0), NON_FINITE (a NaN or infinity). The
 * state is left untouched on error. */
AETHER_API aether_status aether_qstate_normalize(aether_qstate *s);
/* out[0] + i*out[1] = <a|b> = sum conj(a[i]) * b[i], accumulated in float64. Errors: LENGTH_MISMATCH. */
AETHER_API aether_status aether_qstate_inner_product(const aether_qstate *a, const aether_qstate *b, double out[2]);
/* Multiply every amplitude by the complex number re + i*im (finite, else NON_FINITE). */
AETHER_API aether_status aether_qstate_scale(aether_qstate *s, float re, float im);
/* Apply the 2x2 complex matrix m to qubit target (0 = least significant bit of the index): for every pair
 * (a0, a1) whose indices differ only in that bit, a0' = m00 a0 + m01 a1 and a1' = m10 a0 + m11 a1. m holds
 * {m00.re, m00.im, m01.re, m01.im, m10.re, m10.im, m11.re, m11.im}. Errors: OUT_OF_RANGE (target), NON_FINITE. */
AETHER_API aether_status aether_qstate_apply_gate_1q(aether_qstate *s, uint32_t target, const float m[8]);
/* Controlled NOT: swap the amplitudes of each pair that differs in bit target and has bit control set.
 * Errors: OUT_OF_RANGE (a qubit >= num_qubits), INVALID_ARGUMENT (control == target). */
AETHER_API aether_status aether_qstate_apply_cnot(aether_qstate *s, uint32_t control, uint32_t target);
/* out[i] = re[i]^2 + im[i]^2 for every i. out needs len == 2^num_qubits floats, 4-byte aligned, and must not
 * overlap the state. Errors: INVALID_ARGUMENT, LENGTH_MISMATCH, MISALIGNED, OVERLAP. */
AETHER_API aether_status aether_qstate_probabilities(const aether_qstate *s, float *out, size_t len);

/* Kernels for aether_bench_qstate. */
enum {
  AETHER_QK_NORM2 = 0,
  AETHER_QK_NORMALIZE = 1,
  AETHER_QK_INNER_PRODUCT = 2,
  AETHER_QK_SCALE = 3,
  AETHER_QK_GATE_1Q = 4,
  AETHER_QK_CNOT = 5,
  AETHER_QK_PROBABILITIES = 6,
  AETHER_QK_COUNT = 7
};
/* "norm2", "normalize", ...; "unknown" for an out-of-range id. */
AETHER_API const char *aether_qkernel_name(int kernel);
/* Timed loops (the result type is defined under "benchmark loops" below). */
struct aether_bench_result;
/* Run kernel on s reps (1..2^32) times with the state's implementation, each call timed: ns_per_op is the mean,
 * p50_ns the median call. other is the second operand of INNER_PRODUCT (s itself if NULL); GATE_1Q applies a
 * Hadamard to target, CNOT uses control and target, SCALE multiplies by e^(0.1i), PROBABILITIES writes into a
 * buffer owned by the call. The state is changed by the in-place kernels (normalize once first if it matters). */
AETHER_API aether_status aether_bench_qstate(int kernel, aether_qstate *s, const aether_qstate *other, uint32_t target,
                                             uint32_t control, uint64_t reps, struct aether_bench_result *out);
/* Streaming bandwidth with the impl's vector loads (AETHER_SIMD_AUTO: the default), over bytes laid out as a
 * state is (two arrays of bytes/2, walked side by side like re and im): kind 0 sums them (a read pass), 1 copies
 * them to another such pair (read + write), 2 rewrites them in place (read + write back the same lines, as an
 * in-place kernel does). bytes in [256, 2^34], a multiple of 256; reps in [1, 2^20]. Each pass is timed. */
enum { AETHER_STREAM_READ = 0, AETHER_STREAM_COPY = 1, AETHER_STREAM_UPDATE = 2 };
AETHER_API aether_status aether_bench_stream(int kind, int impl, size_t bytes, uint64_t reps, struct aether_bench_result *out);


/* =============================================================================== device pools (issue 5) === */
/* Device memory pools for many tenants (PRD-031). A manager (aether_devpool) owns one device backend: host
 * (device memory emulated with mmap), hip (libamdhip64.so) or cuda (libcudart.so), the GPU runtimes loaded with
 * dlopen. Each security context (tenant, runtime tag, level, flags) gets its own pool, created on first use;
 * pools take large slabs from the backend and suballocate them (256-byte alignment) and never share a slab.
 * Allocations are opaque 64-bit handles (kind, index, generation, keyed check bits), validated on every call
 * against the caller's context: a freed handle (AETHER_ERR_STALE_HANDLE), one never issued
 * (AETHER_ERR_FORGED_HANDLE) or another context's (AETHER_ERR_ACCESS_DENIED) is refused and audited, and nothing
 * is read or written through it. Every operation appends a record to an in-memory ring and, when configured, to
 * a hash-chained JSON Lines file (SHA-256 from OpenSSL's libcrypto, loaded at run time). */

/* Backend kinds. AETHER_DEVICE_DEFAULT reads AETHER_DEVICE=auto|host|hip|cuda from the environment (auto when
 * unset); AUTO picks a GPU backend only if it finds a device, else host. */
enum {
  AETHER_DEVICE_DEFAULT = -1,
  AETHER_DEVICE_AUTO = 0,
  AETHER_DEVICE_HOST = 1,
  AETHER_DEVICE_HIP = 2,
  AETHER_DEVICE_CUDA = 3
};
/* "auto", "host", "hip", "cuda"; "unknown" otherwise. */
AETHER_API const char *aether_device_kind_name(int kind);

typedef struct aether_device_info {
  int32_t kind;          /* AETHER_DEVICE_HOST, _HIP or _CUDA */
  int32_t status;        /* AETHER_OK if usable, AETHER_ERR_BACKEND_UNAVAILABLE or AETHER_ERR_NO_DEVICE */
  int32_t device_count;  /* devices the runtime reports (host: 1) */
  int32_t reserved;
  uint64_t total_bytes;  /* memory of device 0 (host: physical memory) */
  char name[64];         /* device 0's name */
  char library[192];     /* the runtime library loaded, or the first one tried ("" for host) */
  char message[320];     /* a one-line description, or why the backend cannot be used */
} aether_device_info;
/* Probe one backend (HOST, HIP or CUDA) without opening it. Returns info->status; fills *out either way. */
AETHER_API int aether_device_probe(int kind, aether_device_info *out);

/* Security levels: what a free does to the bytes before they can be reused. */
enum {
  AETHER_LEVEL_PUBLIC = 0,       /* no wipe */
  AETHER_LEVEL_CONFIDENTIAL = 1, /* one zero pass */
  AETHER_LEVEL_SECRET = 2        /* zero, 0xFF, random, zero (the specification's four passes) */
};
/* "public", "confidential", "secret"; "unknown" otherwise. */
AETHER_API const char *aether_security_level_name(int level);

/* Context flags. */
enum {
  AETHER_CONTEXT_ISOLATED = 1u << 0 /* slabs fenced by inaccessible pages (host); no shared objects in or out */
};
/* aether_devpool_alloc flags. */
enum { AETHER_ALLOC_ZERO = 1u << 0 /* zero the allocation (it never holds another context's bytes anyway) */ };
/* aether_devpool_config.flags. */
enum {
  AETHER_DEVPOOL_VERIFY_WIPE = 1u << 0, /* read every wipe back and fail with AETHER_ERR_WIPE_FAILED if not zero */
  AETHER_DEVPOOL_NO_ENV_AUDIT = 1u << 1 /* ignore AETHER_AUDIT_LOG */
};

typedef struct aether_devpool_config {
  int32_t backend;       /* AETHER_DEVICE_*; AETHER_DEVICE_DEFAULT: AETHER_DEVICE from the environment */
  int32_t device;        /* device index for hip and cuda (0) */
  uint64_t slab_bytes;   /* smallest slab taken from the backend, a multiple of 64 KiB (0: 2 MiB) */
  uint64_t retain_bytes; /* empty slab bytes a pool keeps before giving slabs back (0: 32 MiB; UINT64_MAX: all) */
  uint32_t audit_ring;   /* in-memory audit ring in records, a power of two in [64, 2^24] (0: 65536) */
  uint32_t flags;        /* AETHER_DEVPOOL_* */
} aether_devpool_config;

typedef struct aether_devpool aether_devpool;
/* Create a manager (cfg NULL: defaults). AETHER_AUDIT_LOG=FILE in the environment adds a process-wide audit
 * file (refused with AETHER_ERR_CRYPTO_UNAVAILABLE when libcrypto cannot be loaded). Thread-safe after this. */
AETHER_API int aether_devpool_create(const aether_devpool_config *cfg, aether_devpool **out);
/* Wipe (by level) and free everything still live, give every slab back, flush and close the audit files.
 * NULL is a no-op. No other thread may be using dp. */
AETHER_API void aether_devpool_destroy(aether_devpool *dp);
/* The backend kind the manager opened (HOST, HIP or CUDA), or a negative status for a NULL dp. */
AETHER_API int aether_devpool_backend(const aether_devpool *dp);

/* The context id (1, 2, ...) of (tenant, runtime, level, flags), registering it on first use; the same four
 * values always give the same id. tenant: 1..63 and runtime: 1..31 characters from [A-Za-z0-9_.:@/+-]. */
AETHER_API int aether_devpool_context(aether_devpool *dp, const char *tenant, const char *runtime, int level,
                                      uint32_t flags, uint32_t *ctx);
typedef struct aether_context_info {
  char tenant[64];
  char runtime[32];
  int32_t level;
  uint32_t flags;
} aether_context_info;
AETHER_API int aether_devpool_context_info(const aether_devpool *dp, uint32_t ctx, aether_context_info *out);

/* Quotas per tenant, across all its contexts, in allocated bytes (sizes rounded up to 256) and live
 * allocations; 0 means unlimited. A request beyond either fails with AETHER_ERR_QUOTA_EXCEEDED (audited). */
AETHER_API int aether_devpool_set_quota(aether_devpool *dp, const char *tenant, uint64_t max_bytes, uint64_t max_count);

/* Allocate size bytes (1..2^40, aligned to 256) in ctx's pool; *handle receives the handle. */
AETHER_API int aether_devpool_alloc(aether_devpool *dp, uint32_t ctx, uint64_t size, uint32_t flags, uint64_t *handle);
/* Free: the bytes are wiped by the context's level first; the handle is stale from now on. A failed wipe
 * verification returns AETHER_ERR_WIPE_FAILED and keeps the range out of use for good. */
AETHER_API int aether_devpool_free(aether_devpool *dp, uint32_t ctx, uint64_t handle);
/* Bounds-checked copies into and out of an allocation or a shared-object reference: [offset, offset+len) must
 * lie inside it (AETHER_ERR_OUT_OF_BOUNDS otherwise, nothing copied). len 0 is a valid no-op. */
AETHER_API int aether_devpool_write(aether_devpool *dp, uint32_t ctx, uint64_t handle, uint64_t offset,
                                    const void *src, uint64_t len);
AETHER_API int aether_devpool_read(aether_devpool *dp, uint32_t ctx, uint64_t handle, uint64_t offset, void *dst,
                                   uint64_t len);
AETHER_API int aether_devpool_fill(aether_devpool *dp, uint32_t ctx, uint64_t handle, uint64_t offset, int value,
                                   uint64_t len);
/* The requested size, and the device address (to launch kernels with; host backend: a host pointer). Taking
 * the address pins the allocation: a public pool may otherwise move it when it compacts a slab (handles stay
 * valid, addresses do not). */
AETHER_API int aether_devpool_size(aether_devpool *dp, uint32_t ctx, uint64_t handle, uint64_t *size);
AETHER_API int aether_devpool_address(aether_devpool *dp, uint32_t ctx, uint64_t handle, uint64_t *address);
/* Give ctx's empty slabs back to the backend now (all of them, whatever retain_bytes says); returns bytes
 * released, or a negative status. */
AETHER_API int64_t aether_devpool_trim(aether_devpool *dp, uint32_t ctx);

/* Shared objects: memory in the creator's pool that contexts of the same tenant use through references.
 * perms lists the other runtimes and what they may do, "julia:r,elixir:rw" (NULL or "": creator's runtime
 * only; "*:r" any runtime). init (may be NULL) fills the start, the rest is zero. The creator gets the first
 * reference (read-write and owner on a mutable object, read on an immutable one). Acquiring read-write on a
 * mutable object transfers ownership: the previous owner's reference keeps reading, but its writes fail with
 * AETHER_ERR_NOT_OWNER. Release drops a reference; the last release wipes and frees the object. */
enum { AETHER_SHARE_IMMUTABLE = 1u << 0 };
enum { AETHER_ACCESS_READ = 1, AETHER_ACCESS_READ_WRITE = 3 };
AETHER_API int aether_devpool_share_create(aether_devpool *dp, uint32_t ctx, uint64_t size, uint32_t flags,
                                           const char *perms, const void *init, uint64_t init_len, uint64_t *object,
                                           uint64_t *ref);
AETHER_API int aether_devpool_share_acquire(aether_devpool *dp, uint32_t ctx, uint64_t object, int access,
                                            uint64_t *ref);
AETHER_API int aether_devpool_share_release(aether_devpool *dp, uint32_t ctx, uint64_t ref);
typedef struct aether_share_info {
  uint64_t size;
  uint64_t refcount;
  uint64_t owner_ref;    /* the reference that may write (0 for an immutable object) */
  uint64_t transfers;    /* ownership transfers so far */
  uint32_t creator_ctx;
  uint32_t owner_ctx;    /* context holding owner_ref (0 if none) */
  uint32_t flags;        /* AETHER_SHARE_* */
  uint32_t reserved;
} aether_share_info;
AETHER_API int aether_devpool_share_info(aether_devpool *dp, uint64_t object, aether_share_info *out);

typedef struct aether_devpool_stats {
  uint64_t live_count;       /* live allocations (shared objects included) */
  uint64_t live_bytes;       /* their requested bytes */
  uint64_t reserved_bytes;   /* slab bytes taken from the backend */
  uint64_t total_free;       /* reserved bytes not backing a live allocation */
  uint64_t largest_free;     /* the largest contiguous free block */
  uint64_t peak_live_bytes;  /* high-water marks (for a tenant or the manager: the sum over its pools) */
  uint64_t peak_reserved_bytes;
  uint64_t peak_live_count;
  uint64_t slabs;            /* slabs held now */
  uint64_t slabs_acquired;   /* backend allocations so far */
  uint64_t slabs_released;   /* backend frees so far */
  uint64_t allocs, frees;    /* successful operations */
  uint64_t denials;          /* refused operations (bad handles, bounds, access, quota) */
  uint64_t quota_hits;
  uint64_t wiped_bytes;      /* bytes overwritten by wipes (each pass counted) */
  uint64_t shared_objects;   /* live shared objects created in these pools */
  uint64_t contexts;         /* pools summed */
  uint64_t compactions;      /* slabs compacted (public pools slide unpinned allocations together) */
  uint64_t moved_bytes;      /* bytes those compactions copied */
  double fragmentation;      /* 1 - largest_free / total_free (0 when nothing is free) */
} aether_devpool_stats;
AETHER_API int aether_devpool_context_stats(aether_devpool *dp, uint32_t ctx, aether_devpool_stats *out);
AETHER_API int aether_devpool_tenant_stats(aether_devpool *dp, const char *tenant, aether_devpool_stats *out);
AETHER_API int aether_devpool_get_stats(aether_devpool *dp, aether_devpool_stats *out);

/* What is live: allocations and shared objects, in handle order. Fills out[0..max) and returns how many are
 * live in all (0: no leaks). */
enum { AETHER_LEAK_ALLOCATION = 1, AETHER_LEAK_SHARED_OBJECT = 2 };
typedef struct aether_devpool_leak {
  uint64_t handle;
  uint64_t size;
  uint32_t ctx;
  uint32_t kind; /* AETHER_LEAK_* */
} aether_devpool_leak;
AETHER_API size_t aether_devpool_check_leaks(aether_devpool *dp, aether_devpool_leak *out, size_t max);

/* ---- audit ---- */
enum {
  AETHER_AUDIT_CONTEXT = 1, AETHER_AUDIT_ALLOC = 2, AETHER_AUDIT_FREE = 3, AETHER_AUDIT_WRITE = 4,
  AETHER_AUDIT_READ = 5, AETHER_AUDIT_FILL = 6, AETHER_AUDIT_ADDRESS = 7, AETHER_AUDIT_WIPE = 8,
  AETHER_AUDIT_SHARE_CREATE = 9, AETHER_AUDIT_ACQUIRE = 10, AETHER_AUDIT_RELEASE = 11,
  AETHER_AUDIT_TRANSFER = 12, AETHER_AUDIT_QUOTA = 13, AETHER_AUDIT_TRIM = 14, AETHER_AUDIT_SIZE = 15
};
/* "context", "alloc", "free", "write", "read", "fill", "address", "wipe", "share_create", "acquire",
 * "release", "transfer", "quota", "trim", "size"; "unknown" otherwise. */
AETHER_API const char *aether_audit_op_name(int op);

typedef struct aether_audit_record {
  uint64_t seq;      /* 1, 2, ... per manager */
  uint64_t time_ns;  /* CLOCK_REALTIME, nanoseconds since the epoch */
  uint64_t handle;   /* the handle, object or reference concerned (0 if none; quota: the count quota) */
  uint64_t size;     /* bytes concerned: allocation size, copy length, bytes wiped (quota: the byte quota) */
  uint32_t ctx;      /* the calling context (0: none) */
  int32_t result;    /* AETHER_OK or the refusal's status */
  uint32_t op;       /* AETHER_AUDIT_* */
  uint32_t thread_id;
} aether_audit_record;
/* Records with seq > after_seq still in the ring, oldest first, into out[0..max); returns how many. */
AETHER_API size_t aether_devpool_audit_read(aether_devpool *dp, uint64_t after_seq, aether_audit_record *out, size_t max);
/* The newest seq issued (0 if none). */
AETHER_API uint64_t aether_devpool_audit_seq(aether_devpool *dp);
/* Also write records to a hash-chained JSON Lines file: every pool's (ctx 0) or one context's. An existing
 * file is continued (its last record must verify as a record); path NULL or "" stops that file.
 * AETHER_ERR_CRYPTO_UNAVAILABLE if libcrypto cannot be loaded. */
AETHER_API int aether_devpool_set_audit_log(aether_devpool *dp, uint32_t ctx, const char *path);
/* Wait until every record issued so far is written to the audit files (and fdatasync'd). */
AETHER_API int aether_devpool_audit_flush(aether_devpool *dp);
/* OK if SHA-256 is available (libcrypto.so.3, or the file AETHER_CRYPTO_LIB names), else
 * AETHER_ERR_CRYPTO_UNAVAILABLE with the reason in aether_last_error(). */
AETHER_API int aether_audit_crypto_status(void);

/* Verify a hash-chained audit file: every line parses as a record, "n" counts 1, 2, ..., "hash" is the SHA-256
 * of the line up to its ,"hash" and "prev" the previous record's hash (64 zeros first). Returns AETHER_OK,
 * AETHER_ERR_TAMPERED (a record changed, removed or reordered), AETHER_ERR_MALFORMED (a line that is not a
 * record), AETHER_ERR_IO or AETHER_ERR_CRYPTO_UNAVAILABLE; *out names the first bad line. */
typedef struct aether_audit_verify_result {
  uint64_t records;     /* records that verified before the first bad one */
  uint64_t bad_line;    /* 1-based line of the first bad record (0: none) */
  char reason[192];
  char head[68];        /* hash (hex) of the last good record: pin it elsewhere to detect truncation */
} aether_audit_verify_result;
AETHER_API int aether_audit_verify_file(const char *path, aether_audit_verify_result *out);
AETHER_API int aether_audit_verify_buffer(const char *data, size_t len, aether_audit_verify_result *out);

/* ---- allocation traces and replay ---- */
/* Formats: AETHER_TRACE_AETHER, lines "a ID SIZE" / "f ID" ('#' comments), and AETHER_TRACE_RMM, the CSV RAPIDS
 * RMM's logging_resource_adaptor writes (Thread,Time,Action,Pointer,Size,Stream; columns found by name;
 * actions allocate, free/deallocate; "allocate failure" rows skipped). The format is detected. */
enum { AETHER_TRACE_AETHER = 1, AETHER_TRACE_RMM = 2 };
typedef struct aether_trace aether_trace;
typedef struct aether_trace_info {
  uint64_t ops, allocs, frees;
  uint64_t ids;             /* distinct allocation slots the replay needs (max live at once) */
  uint64_t peak_live_bytes; /* requested bytes live at the trace's peak */
  uint64_t skipped;         /* rows ignored: frees of unknown pointers (RMM logs), allocation failures */
  uint64_t unfreed;         /* allocations never freed */
  uint32_t format;
  uint32_t reserved;
} aether_trace_info;
/* Parse a trace from memory (len bytes) or a file. A malformed line fails with AETHER_ERR_MALFORMED naming it. */
AETHER_API int aether_trace_parse(const char *data, size_t len, aether_trace **out);
AETHER_API int aether_trace_load(const char *path, aether_trace **out);
AETHER_API void aether_trace_free(aether_trace *trace);
AETHER_API int aether_trace_get_info(const aether_trace *trace, aether_trace_info *out);

typedef struct aether_replay_point {
  uint64_t op;             /* trace operations done */
  uint64_t live_bytes;
  uint64_t reserved_bytes;
  double fragmentation;
} aether_replay_point;
typedef struct aether_replay_result {
  uint64_t ops, allocs, frees, failures; /* failures: allocations refused (quota, out of memory) */
  uint64_t peak_live_bytes, peak_reserved_bytes, final_reserved_bytes;
  uint64_t points;           /* timeline points written */
  double ratio;              /* peak_reserved_bytes / peak_live_bytes */
  double fragmentation_max, fragmentation_mean, fragmentation_at_peak;
} aether_replay_result;
/* Replay the trace in ctx's pool (use a fresh context for clean peaks): every allocation and free timed one by
 * one (alloc_lat, free_lat: percentiles in ns; either may be NULL); up to max_points timeline points, evenly
 * spaced. Whatever the trace leaves live is freed at the end. */
typedef struct aether_bench_result aether_bench_result; /* defined with the benchmark loops below */
AETHER_API int aether_devpool_replay(aether_devpool *dp, uint32_t ctx, const aether_trace *trace,
                                     aether_replay_result *out, aether_bench_result *alloc_lat,
                                     aether_bench_result *free_lat, aether_replay_point *timeline,
                                     size_t max_points);

/* Benchmark loops, timed in C (one FFI call each): pairs (1..2^32) of alloc(size)+free timed one by one in ctx's
 * pool (mode 0), or the same pairs as raw backend allocations, one per request (mode 1: the slow path pools
 * avoid). */
enum { AETHER_BENCH_DEVPOOL_POOL = 0, AETHER_BENCH_DEVPOOL_RAW = 1 };
AETHER_API aether_status aether_bench_devpool(aether_devpool *dp, uint32_t ctx, int mode, uint64_t size,
                                              uint64_t pairs, aether_bench_result *out);
/* count (1..2^24) allocations of size bytes live at once in ctx's pool, then all freed: each op timed. */
AETHER_API aether_status aether_bench_devpool_live(aether_devpool *dp, uint32_t ctx, uint64_t size, uint64_t count,
                                                   aether_bench_result *alloc_out, aether_bench_result *free_out);

/* ================================================================== stack safety and layout (issue 7) === */
/* The runtime stack guard. Bounds are the calling thread's real stack (pthread_getattr_np: the pthread stack
 * of a created thread, RLIMIT_STACK for the main thread, less the kernel's 1 MiB stack guard gap when a mapping
 * below caps it), cached per thread; the stack grows down, so what is left is the distance from the stack
 * pointer down to the lowest usable address (the guard page excluded). */

/* What a probe keeps in reserve beyond the bytes asked for: the specification's 16 KiB safety margin, room
 * for the report and the caller's unwinding. */
#define AETHER_STACK_SAFETY_MARGIN 16384
/* The main thread's usable stack when RLIMIT_STACK is unlimited (1 GiB): such a stack is bounded by memory,
 * not by the address space below it. */
#define AETHER_STACK_UNLIMITED_CAP ((size_t)1 << 30)
/* Bytes each level of aether_stack_recurse_test holds on the stack. */
#define AETHER_STACK_TEST_FRAME 4096

/* Bytes of stack left below the caller on the calling thread; 0 when unknown (aether_last_error says why:
 * pthread_getattr_np failed, or the thread runs on a signal or fiber stack outside its own). */
AETHER_API size_t aether_stack_remaining(void);

typedef struct aether_stack_info {
  uint64_t low;       /* lowest usable address of the calling thread's stack (above its guard) */
  uint64_t high;      /* one past the highest address */
  uint64_t size;      /* high - low */
  uint64_t used;      /* high - the current stack pointer */
  uint64_t remaining; /* the current stack pointer - low */
  uint64_t guard;     /* guard size pthread reports (0 for the main thread: the kernel keeps its own gap) */
  uint64_t margin;    /* AETHER_STACK_SAFETY_MARGIN */
  uint64_t overflows; /* probes that failed so far, all threads */
  uint32_t is_main;   /* 1 on the process's main thread (bounds from RLIMIT_STACK) */
  uint32_t reserved;
} aether_stack_info;
/* Fill *out for the calling thread. AETHER_ERR_UNSUPPORTED when the bounds are unknown (see above). */
AETHER_API aether_status aether_stack_get_info(aether_stack_info *out);

/* Check that bytes more stack can be used with the safety margin still left. If not, write "FATAL ERROR: Stack
 * overflow detected" to the diagnostics sink (stderr or AETHER_LOG_FILE) and return AETHER_ERR_STACK_OVERFLOW
 * (the message gives bytes asked, bytes left and the bounds): the caller unwinds instead of crashing. Call it
 * at the entry of every function of a recursion, with at least that function's frame size. */
AETHER_API aether_status aether_stack_probe(size_t bytes);

/* Probe bytes, then call fn(arg) and store its return value in *result (if not NULL). Guards a recursion that
 * passes through callbacks (an interpreter, a JavaScript callback) where no C frame can probe for it. */
typedef int aether_stack_fn(void *arg);
AETHER_API aether_status aether_stack_call(size_t bytes, aether_stack_fn *fn, void *arg, int *result);

/* A deliberately deep recursion, for tests and demonstrations: depth levels of AETHER_STACK_TEST_FRAME bytes
 * each, every level probing first. *reached = levels entered. AETHER_ERR_STACK_OVERFLOW when the probe stops
 * it, which it does, gracefully, whenever depth * 4 KiB exceeds what the thread has. */
AETHER_API aether_status aether_stack_recurse_test(uint64_t depth, uint64_t *reached);

/* ---- ELF64 headers. A pure function over a byte buffer (no I/O, no allocation, no global state: a fuzz
 * target). Only 64-bit little-endian files are accepted; every offset, count and size is bounds-checked. */
typedef struct aether_elf_header {
  uint16_t type;          /* e_type: 1 REL, 2 EXEC, 3 DYN, 4 CORE */
  uint16_t machine;       /* e_machine: 62 x86-64, 183 AArch64, ... */
  uint32_t flags;         /* e_flags */
  uint64_t entry;         /* e_entry */
  uint64_t phoff;         /* e_phoff */
  uint64_t shoff;         /* e_shoff */
  uint32_t section_count; /* sections, after extended numbering (e_shnum 0: section 0's sh_size) */
  uint32_t segment_count; /* program headers, after PN_XNUM (section 0's sh_info) */
  uint32_t shstrndx;      /* section-name table index, after SHN_XINDEX (section 0's sh_link); 0: none */
  uint8_t osabi;          /* e_ident[EI_OSABI] */
  uint8_t abiversion;     /* e_ident[EI_ABIVERSION] */
  uint16_t reserved;
} aether_elf_header;

typedef struct aether_elf_section {
  uint64_t name_offset; /* where the NUL-terminated name starts in the input buffer (0 with name_length 0: none) */
  uint32_t name_length; /* bytes before the NUL */
  uint32_t type;        /* sh_type */
  uint64_t flags;       /* sh_flags: SHF_WRITE 0x1, SHF_ALLOC 0x2, SHF_EXECINSTR 0x4, SHF_TLS 0x400, ... */
  uint64_t addr;        /* sh_addr */
  uint64_t offset;      /* sh_offset */
  uint64_t size;        /* sh_size */
  uint32_t link;        /* sh_link */
  uint32_t info;        /* sh_info */
  uint64_t addralign;   /* sh_addralign */
  uint64_t entsize;     /* sh_entsize */
} aether_elf_section;

typedef struct aether_elf_segment {
  uint32_t type;   /* p_type: 1 PT_LOAD, 2 PT_DYNAMIC, ... */
  uint32_t flags;  /* p_flags: PF_X 1, PF_W 2, PF_R 4 */
  uint64_t offset; /* p_offset */
  uint64_t vaddr;  /* p_vaddr */
  uint64_t paddr;  /* p_paddr */
  uint64_t filesz; /* p_filesz */
  uint64_t memsz;  /* p_memsz */
  uint64_t align;  /* p_align */
} aether_elf_segment;

/* Parse the ELF header, every section header (with its name) and every program header of data[0..len).
 * Validates all of them, fills *header, and copies the first max_sections sections and max_segments segments
 * (either array may be NULL with max 0: call once for the counts, then again with arrays that size).
 * AETHER_ERR_NOT_ELF: no ELF magic, 32-bit or big-endian. AETHER_ERR_TRUNCATED: a header, table, name table
 * or section/segment contents extend past len. AETHER_ERR_MALFORMED: a field that contradicts the format
 * (entry sizes, a name outside its table, an unterminated name, memsz < filesz, a name table of the wrong type). */
AETHER_API aether_status aether_elf_parse(const void *data, size_t len, aether_elf_header *header,
                                          aether_elf_section *sections, size_t max_sections,
                                          aether_elf_segment *segments, size_t max_segments);

/* ---- The region-layout engine ("Memory Allocation Mathematical Specification"), shared by `aether layout`
 * and any component that places regions in an address space. A region is [base, base + size). */
enum { AETHER_PERM_NONE = 0, AETHER_PERM_EXEC = 1, AETHER_PERM_WRITE = 2, AETHER_PERM_READ = 4 };
enum {
  AETHER_REGION_ZERO_FILL = 1, /* memory with no file contents (SHT_NOBITS: .bss) */
  AETHER_REGION_TLS = 2        /* a thread-local template; with ZERO_FILL (.tbss) it takes no address space */
};
typedef struct aether_region {
  uint64_t base;        /* first address */
  uint64_t size;        /* bytes */
  uint64_t alignment;   /* base must be a multiple of it; 0 and 1 mean none; need not be a power of two */
  uint32_t tag;         /* the caller's id (an ELF section index), carried through unchanged */
  uint16_t permissions; /* AETHER_PERM_* */
  uint16_t kind;        /* AETHER_REGION_* */
} aether_region;        /* 32 bytes: two per cache line */

/* align(addr, a): the least multiple of a that is >= addr; a of 0 returns addr. A power of two takes the bit
 * path (addr + a - 1) & ~(a - 1), anything else the remainder path. AETHER_ERR_SIZE_OVERFLOW past 2^64 - 1. */
AETHER_API aether_status aether_layout_align(uint64_t addr, uint64_t alignment, uint64_t *out);
/* Permissions of ELF section flags: READ if SHF_ALLOC, SHF_WRITE or SHF_EXECINSTR is set, plus WRITE for
 * SHF_WRITE and EXEC for SHF_EXECINSTR (so a writable code section shows as RWX); NONE without any of them. */
AETHER_API uint32_t aether_layout_permissions(uint64_t elf_flags);

typedef struct aether_layout_pair {
  uint32_t a, b; /* indices of two intersecting regions, a < b */
} aether_layout_pair;
/* Every pair of intersecting regions, found by sorting on base and sweeping: O(n log n + pairs), not the
 * O(n^2) all-pairs scan. Regions of size 0 and zero-fill TLS templates (.tbss) take no address space and
 * intersect nothing.
 * *count = the number of intersecting pairs (counted in O(n log n) even when there are more than max_pairs);
 * the first max_pairs in address order go to pairs (NULL with max_pairs 0 to count only). n <= 2^32 - 1. */
AETHER_API aether_status aether_layout_overlaps(const aether_region *regions, size_t n, uint64_t *count,
                                                aether_layout_pair *pairs, size_t max_pairs);

typedef struct aether_layout_report {
  uint64_t regions;           /* regions that take address space (size > 0, not a zero-fill TLS template) */
  uint64_t total_size;        /* sum of their sizes */
  uint64_t min_base;          /* min base_i (0 when none) */
  uint64_t max_end;           /* max (base_i + size_i), saturated at 2^64 - 1 */
  uint64_t misaligned;        /* regions with base mod alignment != 0 */
  uint64_t overlapping_pairs; /* pairs i < j with r_i and r_j intersecting */
  uint64_t overflowing;       /* regions with base + size > 2^64 */
  int64_t first_misaligned;   /* index, or -1 */
  int64_t first_overflow;     /* index, or -1 */
  int64_t overlap_a;          /* the first intersecting pair in address order, or -1 */
  int64_t overlap_b;
  double utilization;         /* sum size_i / (max_end - base_address); 0 when that span is not positive */
  double fragmentation;       /* 1 - sum size_i / (max_end - min_base); 0 when that span is 0 */
  uint32_t valid;             /* 1: every region aligned, no two intersecting, none past 2^64 */
  uint32_t reserved;
} aether_layout_report;
/* The specification's validation (alignment, no overlaps, bounds) and its utilization and fragmentation
 * measures over regions[0..n), with base_address the layout's start (the image base). An invalid layout is
 * not an error: the return is AETHER_OK and out->valid says so. */
AETHER_API aether_status aether_layout_validate(const aether_region *regions, size_t n, uint64_t base_address,
                                                aether_layout_report *out);

/* A fresh layout, the specification's way: regions are placed in permission groups, executable, then
 * read-only, then read-write, then zero-fill (.bss), each group starting on a multiple of page (0x1000); the
 * first region at base + header (0x400000 + 0x1000: the ELF header's page); within a group in input order,
 * addr_{i+1} = align(addr_i + max(size_i, alignment_i), alignment_{i+1}). out[i] is in[i] with its new base
 * (same order; out may be in). Zero-fill TLS templates get an address but take no space. AETHER_ERR_INVALID_ARGUMENT
 * for a region without permissions (not loadable), AETHER_ERR_NOT_POWER_OF_TWO for page,
 * AETHER_ERR_SIZE_OVERFLOW if the layout passes 2^64. */
AETHER_API aether_status aether_layout_compute(const aether_region *in, size_t n, uint64_t base, uint64_t header,
                                               uint64_t page, aether_region *out);

/* Benchmark: overlap detection over n (1..2^24) random regions, the sweep (method 0) or the O(n^2) all-pairs
 * scan of the specification's first version (method 1), reps times; latency fields are per detection. */
struct aether_bench_result;
AETHER_API aether_status aether_bench_layout_overlaps(uint64_t n, int method, uint32_t reps,
                                                      struct aether_bench_result *out);

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

/* Latency histograms (issue 8, `aether bench`). Log-linear buckets (HdrHistogram's layout): every value is
 * kept to within 1/64 (1.6%) of itself, exactly below 4 ns (units of 1/16 ns), in constant memory (30 KiB)
 * whatever the count; histograms merge by adding buckets. Every timed loop above also leaves the full
 * per-operation distribution of its timed pass in a histogram of the calling thread, which add_last merges
 * into a histogram of the caller's (so percentiles beyond p50/p90/p99/p99.9 need no change to the result). */
typedef struct aether_histogram aether_histogram;
AETHER_API aether_status aether_histogram_create(aether_histogram **out);
AETHER_API void aether_histogram_destroy(aether_histogram *h); /* NULL or an already destroyed one: no-op */
AETHER_API aether_status aether_histogram_reset(aether_histogram *h);
/* Count one latency of ns nanoseconds (finite, >= 0) count (>= 1) times. */
AETHER_API aether_status aether_histogram_record(aether_histogram *h, double ns, uint64_t count);
AETHER_API aether_status aether_histogram_merge(aether_histogram *dst, const aether_histogram *src);
/* Merge the calling thread's last finished timed loop (any aether_bench_* above); NOT_INITIALIZED if none. */
AETHER_API aether_status aether_histogram_add_last(aether_histogram *dst);
AETHER_API uint64_t aether_histogram_count(const aether_histogram *h); /* 0 for NULL */
/* out_ns[i] = the q[i] quantile (q in [0, 1]; 0 is the exact minimum, 1 the exact maximum), in ns; an empty
 * histogram gives 0. */
AETHER_API aether_status aether_histogram_quantiles(const aether_histogram *h, const double *q, double *out_ns,
                                                    size_t n);
AETHER_API double aether_histogram_mean(const aether_histogram *h); /* ns; 0 when empty */
/* The mean of the values ranked between the qlo and qhi quantiles (0 <= qlo < qhi <= 1): with 0.25 and 0.75,
 * the interquartile mean, a typical operation's cost that neither a clock's granularity (it averages across
 * ticks) nor a preempted operation (it is outside the range) can move. 0 when empty or out of range. */
AETHER_API double aether_histogram_mean_between(const aether_histogram *h, double qlo, double qhi);

/* Targets of the FFI benchmark: they do next to nothing, so a call from Bun measures the bindings. */
AETHER_API void aether_bench_nop(void);
AETHER_API double aether_bench_args(const void *p, int32_t i, double x);  /* (p & 0xff) + i + x */
AETHER_API uint64_t aether_bench_u64(uint64_t a, uint64_t b);             /* a ^ (b * 0x9E3779B97F4A7C15) */
AETHER_API aether_status aether_bench_fill(aether_bench_result *out);     /* fills every field of out */
enum { AETHER_BENCH_CALL_NOP = 0, AETHER_BENCH_CALL_ARGS = 1, AETHER_BENCH_CALL_U64 = 2, AETHER_BENCH_CALL_FILL = 3 };
/* reps (1..2^32) calls of one of those targets from C through a function pointer: the native floor that the same
 * call from Bun is compared with. ns_per_op is the interquartile mean of 64 timed chunks of an untimed loop (a
 * chunk the OS preempted does not count; ops_per_sec is its inverse); the percentiles time each call. */
AETHER_API aether_status aether_bench_call(int kind, uint64_t reps, aether_bench_result *out);
/* aether_bench_qstate's loop, but through the public, validated kernel functions (aether_qstate_normalize...):
 * the difference between the two is the cost of the precondition checks. Same arguments and errors. */
AETHER_API aether_status aether_bench_qstate_api(int kernel, aether_qstate *s, const aether_qstate *other,
                                                 uint32_t target, uint32_t control, uint64_t reps,
                                                 aether_bench_result *out);

#ifdef __cplusplus
}
#endif

#endif /* AETHER_H */
