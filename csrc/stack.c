/* stack.c: the runtime stack guard: how much stack the calling thread has left, and probes that fail a call
 * with AETHER_ERR_STACK_OVERFLOW before it can overflow.
 *
 * The bounds are the thread's real ones, asked once per thread from pthread_getattr_np: for a thread made by
 * pthread_create they are the stack glibc allocated (its guard page below them); for the main thread glibc
 * derives them from RLIMIT_STACK and the mappings below the stack, so `ulimit -s` is honoured. The stack grows
 * down, so what is left is the distance from the current stack pointer down to the lowest usable address.
 * A probe for n bytes passes while n bytes plus the safety margin (16 KiB, the specification's) fit in what is
 * left; the margin is what the report itself, the caller's error path and the unwinding need. A failed probe
 * writes "FATAL ERROR: Stack overflow detected" (the specification's words) to the diagnostics sink and returns
 * the error: the caller unwinds instead of crashing. */
#include "alloc_internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <string.h>
#include <unistd.h>

_Static_assert(sizeof(aether_stack_info) == 72, "aether_stack_info is 72 bytes (cli/native/stack.ts)");

/* Cached per thread: the bounds never change for a thread's life (the main thread's only with setrlimit). */
static _Thread_local uintptr_t t_low, t_high, t_guard;
static _Thread_local int t_main;
static _Atomic uint64_t overflow_count;

/* This frame's address: the stack pointer within a few words. The frame address, not a local's: under
 * AddressSanitizer's fake stacks a local may live on the heap. noinline so the frame is a real one below the
 * caller's. */
static __attribute__((noinline)) uintptr_t current_sp(void) { return (uintptr_t)__builtin_frame_address(0); }

/* Parse "start-end" at the head of a /proc/self/maps line; false if the line does not start that way. */
static bool parse_range(const char *line, uintptr_t *start, uintptr_t *end) {
  char *dash;
  *start = (uintptr_t)strtoull(line, &dash, 16);
  if (dash == line || *dash != '-') return false;
  *end = (uintptr_t)strtoull(dash + 1, NULL, 16);
  return true;
}

/* The end of the mapping just below the one that holds addr, from /proc/self/maps (sorted by address); 0 when
 * there is none or the file cannot be read. read(2) into a small stack buffer: no allocation, and little stack,
 * since the first probe of a thread may run deep. A line longer than the buffer (a long path) has its range
 * read from its head and the rest skipped. */
static uintptr_t mapping_below(uintptr_t addr) {
  const int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[256];
  size_t have = 0;
  uintptr_t prev_end = 0, result = 0, start, end;
  bool found = false, skipping = false;
  while (!found) {
    const ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
    if (n <= 0) break;
    have += (size_t)n;
    buf[have] = '\0'; /* strtoull stops here at worst */
    char *line = buf;
    for (;;) {
      char *nl = memchr(line, '\n', (size_t)(buf + have - line));
      if (nl == NULL && !(line == buf && have == sizeof buf - 1)) break; /* an incomplete line: read more */
      if (!skipping && parse_range(line, &start, &end)) {
        if (start <= addr && addr < end) {
          result = prev_end;
          found = true;
          break;
        }
        prev_end = end;
      }
      if (nl == NULL) { /* a line that fills the buffer: its range is read, skip to its end */
        skipping = true;
        line = buf + have;
        break;
      }
      skipping = false;
      line = nl + 1;
    }
    have = (size_t)(buf + have - line);
    memmove(buf, line, have);
  }
  close(fd);
  return result;
}

static int thread_bounds(void) {
  if (AE_LIKELY(t_high != 0)) return AETHER_OK;
  pthread_attr_t attr;
  int rc = pthread_getattr_np(pthread_self(), &attr);
  AE_RETURN_ERROR_IF(rc != 0, AETHER_ERR_UNSUPPORTED, "pthread_getattr_np failed (%s): the thread's stack is unknown",
                     strerror(rc));
  void *addr = NULL;
  size_t size = 0, guard = 0;
  rc = pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_getguardsize(&attr, &guard);
  pthread_attr_destroy(&attr);
  AE_RETURN_ERROR_IF(rc != 0 || addr == NULL || size == 0, AETHER_ERR_UNSUPPORTED,
                     "pthread_attr_getstack gave no stack for this thread");
  uintptr_t low = (uintptr_t)addr;
  const uintptr_t high = low + size;
  if ((pid_t)_ae_thread_id() == getpid()) {
    /* glibc caps the main thread's size at the end of the mapping below the stack when RLIMIT_STACK would reach
     * past it, but the kernel refuses to grow a stack within stack_guard_gap (256 pages) of such a mapping:
     * keep that gap out of the usable range. */
    const size_t gap = 256 * (size_t)sysconf(_SC_PAGESIZE);
    const uintptr_t below = mapping_below(current_sp());
    if (below != 0 && below <= UINTPTR_MAX - gap && low < below + gap && below + gap < high) low = below + gap;
    /* An unlimited stack is bounded by memory, not by the address space below it (tens of GiB): take 1 GiB,
     * Go's largest goroutine stack, so a runaway recursion is stopped before it exhausts the machine. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur == RLIM_INFINITY && high - low > AETHER_STACK_UNLIMITED_CAP)
      low = high - AETHER_STACK_UNLIMITED_CAP;
  }
  t_low = low;
  t_high = high;
  t_guard = guard;
  t_main = (pid_t)_ae_thread_id() == getpid();
  return AETHER_OK;
}

/* The thread's bounds and the current stack pointer, or a failure when sp lies outside them (a signal stack,
 * a coroutine or fiber stack the thread switched to: its size is unknown, so no answer would be honest). */
static int where(uintptr_t *sp) {
  int st = thread_bounds();
  if (st != AETHER_OK) return st;
  *sp = current_sp();
  AE_RETURN_ERROR_IF(*sp <= t_low || *sp > t_high, AETHER_ERR_UNSUPPORTED,
                     "the stack pointer %#" PRIxPTR " is outside this thread's stack [%#" PRIxPTR ", %#" PRIxPTR
                     "): running on a signal or fiber stack",
                     *sp, t_low, t_high);
  return AETHER_OK;
}

size_t aether_stack_remaining(void) {
  uintptr_t sp;
  if (where(&sp) != AETHER_OK) return 0;
  return sp - t_low;
}

aether_status aether_stack_get_info(aether_stack_info *out) {
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_stack_get_info: out is NULL");
  uintptr_t sp;
  int st = where(&sp);
  if (st != AETHER_OK) return st;
  memset(out, 0, sizeof *out);
  out->low = t_low;
  out->high = t_high;
  out->size = t_high - t_low;
  out->used = t_high - sp;
  out->remaining = sp - t_low;
  out->guard = t_guard;
  out->margin = AETHER_STACK_SAFETY_MARGIN;
  out->overflows = atomic_load_explicit(&overflow_count, memory_order_relaxed);
  out->is_main = (uint32_t)t_main;
  return AETHER_OK;
}

aether_status aether_stack_probe(size_t bytes) {
  uintptr_t sp;
  int st = where(&sp);
  if (st != AETHER_OK) return st;
  const size_t left = sp - t_low;
  if (AE_LIKELY(left >= AETHER_STACK_SAFETY_MARGIN && left - AETHER_STACK_SAFETY_MARGIN >= bytes)) return AETHER_OK;
  /* Relaxed: a statistic, ordered with nothing else. */
  atomic_fetch_add_explicit(&overflow_count, 1, memory_order_relaxed);
  static const char msg[] = "FATAL ERROR: Stack overflow detected";
  _ae_log_line(msg, sizeof msg - 1);
  return _ae_fail(AETHER_ERR_STACK_OVERFLOW,
                  "stack probe for %zu bytes failed: %zu bytes left on thread %u, %u bytes of them the safety margin "
                  "(stack %#" PRIxPTR "-%#" PRIxPTR ", %zu bytes)",
                  bytes, left, _ae_thread_id(), (unsigned)AETHER_STACK_SAFETY_MARGIN, t_low, t_high,
                  (size_t)(t_high - t_low));
}

aether_status aether_stack_call(size_t bytes, aether_stack_fn *fn, void *arg, int *result) {
  AE_RETURN_ERROR_IF(fn == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_stack_call: fn is NULL");
  int st = aether_stack_probe(bytes);
  if (st != AETHER_OK) return st;
  const int r = fn(arg);
  if (result != NULL) *result = r;
  return AETHER_OK;
}

/* One level of the demonstration recursion. The frame holds AETHER_STACK_TEST_FRAME bytes that are written
 * (so the pages are really touched, as a real frame's would be) and read after the recursive call (so the call
 * is not a tail call the compiler could turn into a loop). */
static __attribute__((noinline)) int recurse_level(uint64_t level, uint64_t depth, uint64_t *reached) {
  int st = aether_stack_probe(AETHER_STACK_TEST_FRAME);
  if (st != AETHER_OK) return st;
  volatile unsigned char frame[AETHER_STACK_TEST_FRAME];
  memset((unsigned char *)frame, (int)(level & 0xff), sizeof frame);
  *reached = level + 1;
  if (level + 1 < depth) {
    st = recurse_level(level + 1, depth, reached);
    if (st != AETHER_OK) return st;
  }
  return frame[level % sizeof frame] == (unsigned char)(level & 0xff) ? AETHER_OK
                                                                      : _ae_fail(AETHER_ERR_CORRUPTED, "frame %" PRIu64 " was overwritten", level);
}

aether_status aether_stack_recurse_test(uint64_t depth, uint64_t *reached) {
  AE_RETURN_ERROR_IF(reached == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_stack_recurse_test: reached is NULL");
  *reached = 0;
  if (depth == 0) return AETHER_OK;
  return recurse_level(0, depth, reached);
}
