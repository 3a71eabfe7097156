/* preload.c: libaether-preload.so, the safe allocator as the process's malloc (LD_PRELOAD).
 *
 * Every heap function of the C library is routed to the safe allocator. Three things need care:
 * - Bootstrap. The first malloc initializes the allocator, and initialization itself may allocate
 *   (pthread_atfork, pthread_setspecific, dlsym in libgcc's unwinder). Such nested calls, recognized by a
 *   thread-local flag, are served from a static bump arena; its blocks are never reused and free ignores them.
 * - C library semantics, which differ from the specification's: malloc(0) returns a unique pointer, failures
 *   set errno to ENOMEM, memalign rounds a bad alignment up, posix_memalign returns EINVAL.
 * - The end. At exit (any thread) every live block's guards are walked, so an overflow of a block that is
 *   never freed is still reported, and, under `aether run`, a JSON report is written (report.c of this
 *   folder). SIGUSR2 asks for the same walk while the program runs; it happens at the next allocation that
 *   refills a cache, never inside the signal handler, where the allocator's locks may be held. */
#include "../alloc_internal.h"
#include "preload.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define AE_EXPORT __attribute__((visibility("default")))
#define BOOT_SIZE ((size_t)256 << 10)

/* The bootstrap arena: 16-byte aligned blocks, each preceded by its size. */
static uint8_t boot_arena[BOOT_SIZE] __attribute__((aligned(64)));
static _Atomic size_t boot_used;
static __thread int tl_initializing __attribute__((tls_model("initial-exec")));

static void *boot_alloc(size_t size, size_t align) {
  if (align < 16) align = 16;
  size_t cur = atomic_load_explicit(&boot_used, memory_order_relaxed), start, next;
  do {
    start = AE_ALIGN_UP(cur + 16, align);
    next = start + size;
    if (next > BOOT_SIZE || next < start) return NULL;
  } while (!atomic_compare_exchange_weak_explicit(&boot_used, &cur, next, memory_order_relaxed,
                                                  memory_order_relaxed));
  memcpy(boot_arena + start - 8, &size, sizeof size);
  return boot_arena + start;
}

static inline bool is_boot(const void *p) {
  return (const uint8_t *)p >= boot_arena && (const uint8_t *)p < boot_arena + BOOT_SIZE;
}

static size_t boot_size(const void *p) {
  size_t n;
  memcpy(&n, (const uint8_t *)p - 8, sizeof n);
  return n;
}

/* False while this thread is inside the allocator's own initialization: use the bootstrap arena. */
static inline bool ready(void) {
  if (AE_LIKELY(atomic_load_explicit(&_ae_init_state, memory_order_acquire) == 2)) return true;
  if (tl_initializing) return false;
  tl_initializing = 1;
  aether_memory_init();
  tl_initializing = 0;
  return true;
}

static inline void *nomem(void) {
  errno = ENOMEM;
  return NULL;
}

AE_EXPORT void *malloc(size_t size) {
  if (AE_UNLIKELY(!ready())) return boot_alloc(size, 16);
  void *p = _ae_safe_alloc(size, 16);
  return p != NULL ? p : nomem();
}

AE_EXPORT void free(void *ptr) {
  /* Nothing but bootstrap blocks exists while this thread initializes the allocator. */
  if (ptr == NULL || AE_UNLIKELY(is_boot(ptr) || tl_initializing)) return;
  aether_safe_free(ptr);
}

AE_EXPORT void *calloc(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) return nomem();
  if (AE_UNLIKELY(!ready())) return boot_alloc(total, 16); /* static memory: already zero */
  void *p = _ae_safe_alloc(total, 16);
  if (p == NULL) return nomem();
  memset(p, 0, total);
  return p;
}

AE_EXPORT void *realloc(void *ptr, size_t size) {
  if (ptr == NULL) return malloc(size);
  if (AE_UNLIKELY(is_boot(ptr))) {
    void *q = malloc(size);
    if (q != NULL) memcpy(q, ptr, boot_size(ptr) < size ? boot_size(ptr) : size);
    return q;
  }
  if (size == 0) { /* glibc: free and return NULL */
    aether_safe_free(ptr);
    return NULL;
  }
  if (AE_UNLIKELY(!ready())) return NULL;
  void *p = aether_safe_realloc(ptr, size);
  if (p == NULL && aether_last_status() == AETHER_ERR_OUT_OF_MEMORY) errno = ENOMEM;
  return p;
}

AE_EXPORT void *reallocarray(void *ptr, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) return nomem();
  return realloc(ptr, total);
}

static void *aligned(size_t alignment, size_t size) {
  if (AE_UNLIKELY(!ready())) return boot_alloc(size, alignment);
  void *p = _ae_safe_alloc(size, alignment);
  return p != NULL ? p : nomem();
}

AE_EXPORT int posix_memalign(void **out, size_t alignment, size_t size) {
  if (!AE_IS_POW2(alignment) || alignment % sizeof(void *) != 0) return EINVAL;
  const int saved = errno;
  void *p = aligned(alignment, size);
  errno = saved; /* posix_memalign reports through its return value only */
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}

AE_EXPORT void *aligned_alloc(size_t alignment, size_t size) {
  if (!AE_IS_POW2(alignment)) {
    errno = EINVAL;
    return NULL;
  }
  return aligned(alignment, size);
}

AE_EXPORT void *memalign(size_t alignment, size_t size) {
  /* glibc rounds an alignment that is not a power of two up to the next one. */
  if (!AE_IS_POW2(alignment)) {
    if (alignment > ((size_t)1 << 62)) return nomem();
    size_t a = 1;
    while (a < alignment) a <<= 1;
    alignment = a;
  }
  return aligned(alignment, size);
}

AE_EXPORT void *valloc(size_t size) { return aligned((size_t)sysconf(_SC_PAGESIZE), size); }

AE_EXPORT void *pvalloc(size_t size) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t rounded;
  if (__builtin_add_overflow(size, page - 1, &rounded)) return nomem();
  rounded &= ~(page - 1);
  return aligned(page, rounded ? rounded : page);
}

AE_EXPORT size_t malloc_usable_size(void *ptr) {
  if (ptr == NULL) return 0;
  if (is_boot(ptr)) return boot_size(ptr);
  /* The requested size, not the block's: a program that trusts this value stays inside the guards. */
  return aether_safe_usable_size(ptr);
}

/* ---------------------------------------------------------------------------------- at exit, SIGUSR2 --- */
static void on_sigusr2(int sig) {
  (void)sig;
  atomic_store_explicit(&_ae_check_requested, 1, memory_order_relaxed);
}

/* The process this report belongs to: a vfork/clone child shares our memory but must not report as us. */
static pid_t owner_pid;
static _Atomic int finished;

static void finish(void) {
  if (getpid() != owner_pid || atomic_exchange_explicit(&finished, 1, memory_order_acq_rel)) return;
  aether_memory_check_all();
  _ae_preload_write_report();
}

static void at_exit(void) { finish(); }
static void forked_child(void) {
  owner_pid = getpid();
  atomic_store_explicit(&finished, 0, memory_order_relaxed);
}

/* Programs that leave through _exit (Bun does, so do forked children) skip atexit: report here instead. The
 * report touches no state of the program, so _exit keeps its meaning. */
AE_EXPORT void _exit(int status) {
  finish();
  syscall(SYS_exit_group, status);
  __builtin_unreachable();
}

AE_EXPORT void _Exit(int status) { _exit(status); }

__attribute__((constructor)) static void preload_start(void) {
  (void)ready();
  owner_pid = getpid();
  pthread_atfork(NULL, NULL, forked_child);
  atexit(at_exit);
  struct sigaction old;
  if (sigaction(SIGUSR2, NULL, &old) == 0 && old.sa_handler == SIG_DFL) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr2;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
  }
}
