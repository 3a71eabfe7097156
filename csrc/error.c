/* error.c: status names and the per-thread last-error message. */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* A message per thread, so concurrent failures in Workers never overwrite each other's text. */
static _Thread_local char last_message[320];
static _Thread_local int last_status;

int _ae_fail(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_message, sizeof last_message, fmt, ap);
  va_end(ap);
  last_status = status;
  return status;
}

const char *aether_last_error(void) { return last_message; }
int aether_last_status(void) { return last_status; }
void aether_clear_error(void) {
  last_message[0] = '\0';
  last_status = AETHER_OK;
}

const char *aether_error_name(int status) {
  switch (status) {
#define AE_NAME(s) case s: return #s;
    AE_NAME(AETHER_OK)
    AE_NAME(AETHER_ERR_INVALID_ARGUMENT)
    AE_NAME(AETHER_ERR_OUT_OF_MEMORY)
    AE_NAME(AETHER_ERR_NOT_POWER_OF_TWO)
    AE_NAME(AETHER_ERR_OUT_OF_RANGE)
    AE_NAME(AETHER_ERR_MISALIGNED)
    AE_NAME(AETHER_ERR_LENGTH_MISMATCH)
    AE_NAME(AETHER_ERR_UNSUPPORTED)
    AE_NAME(AETHER_ERR_NOT_INITIALIZED)
    AE_NAME(AETHER_ERR_BUSY)
    AE_NAME(AETHER_ERR_IO)
    AE_NAME(AETHER_ERR_MALFORMED)
    AE_NAME(AETHER_ERR_SIZE_OVERFLOW)
    AE_NAME(AETHER_ERR_INVALID_POINTER)
    AE_NAME(AETHER_ERR_DOUBLE_FREE)
    AE_NAME(AETHER_ERR_CORRUPTED)
    AE_NAME(AETHER_ERR_LIMIT_REACHED)
    AE_NAME(AETHER_ERR_ZERO_NORM)
    AE_NAME(AETHER_ERR_NON_FINITE)
    AE_NAME(AETHER_ERR_NO_DEVICE)
    AE_NAME(AETHER_ERR_BACKEND_UNAVAILABLE)
    AE_NAME(AETHER_ERR_QUOTA_EXCEEDED)
    AE_NAME(AETHER_ERR_ACCESS_DENIED)
    AE_NAME(AETHER_ERR_STALE_HANDLE)
    AE_NAME(AETHER_ERR_FORGED_HANDLE)
    AE_NAME(AETHER_ERR_OUT_OF_BOUNDS)
    AE_NAME(AETHER_ERR_READ_ONLY)
    AE_NAME(AETHER_ERR_NOT_OWNER)
    AE_NAME(AETHER_ERR_WIPE_FAILED)
    AE_NAME(AETHER_ERR_TAMPERED)
    AE_NAME(AETHER_ERR_CRYPTO_UNAVAILABLE)
    AE_NAME(AETHER_ERR_DEVICE)
    AE_NAME(AETHER_ERR_STACK_OVERFLOW)
    AE_NAME(AETHER_ERR_NOT_ELF)
    AE_NAME(AETHER_ERR_TRUNCATED)
    AE_NAME(AETHER_ERR_OVERLAP)
#undef AE_NAME
    default: return "AETHER_ERR_UNKNOWN";
  }
}

uint64_t _ae_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint32_t _ae_thread_id(void) {
  static _Thread_local uint32_t tid;
  if (tid == 0) tid = (uint32_t)syscall(SYS_gettid);
  return tid;
}

uint64_t _ae_random_u64(void) {
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v && v != 0) return v;
  /* No entropy source yet (early boot, seccomp): mix time and ASLR so the value still differs per process. */
  v = _ae_now_ns() ^ ((uint64_t)(uintptr_t)&v << 17) ^ ((uint64_t)getpid() << 40);
  v ^= v >> 33;
  v *= 0xff51afd7ed558ccdull;
  v ^= v >> 33;
  return v | 1;
}
