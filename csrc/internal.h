/* internal.h: helpers shared by every libaether source file. Nothing here is exported. */
#ifndef AETHER_INTERNAL_H
#define AETHER_INTERNAL_H

#include "include/aether.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>

#define AE_LIKELY(x) __builtin_expect(!!(x), 1)
#define AE_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define AE_CACHE_LINE 64
#define AE_ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((uintptr_t)(a) - 1))
#define AE_IS_POW2(x) ((x) != 0 && ((x) & ((x) - 1)) == 0)

/* Record a failure for aether_last_error() and return its status (always negative):
 *   return _ae_fail(AETHER_ERR_OUT_OF_RANGE, "capacity %zu is not in [8, 2^24]", cap); */
int _ae_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define AE_RETURN_ERROR_IF(cond, status, ...) \
  do {                                        \
    if (AE_UNLIKELY(cond)) return _ae_fail((status), __VA_ARGS__); \
  } while (0)

/* Monotonic time in nanoseconds. */
uint64_t _ae_now_ns(void);
/* The OS thread id of the caller (gettid), cached per thread. */
uint32_t _ae_thread_id(void);
/* 8 random bytes from getrandom(), falling back to time and address entropy if the syscall fails. */
uint64_t _ae_random_u64(void);

#endif
