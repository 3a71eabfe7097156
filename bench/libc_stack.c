/* libc_stack.c: how much stack the glibc functions libaether calls really use, measured by painting the stack
 * below the caller with 0xA5, calling the function (a second time, so lazy binding is not counted), and finding
 * the deepest byte it changed. The figures justify the --external-stack charge of the `aether check` stack
 * gate (cli/checks/stack.ts): every callee below stays under 4 KiB.
 *   gcc -O2 -Wl,-z,now bench/libc_stack.c -o /tmp/libc_stack -lpthread && /tmp/libc_stack */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAINT 65536
static uintptr_t painted_at; /* kept as an integer: the frame is dead on purpose when it is read */
#define painted ((const unsigned char *)painted_at)

/* Paint PAINT bytes of stack below the caller's frame; the buffer's address escapes so the stores stay. */
static __attribute__((noinline)) void paint(void) {
  volatile unsigned char buf[PAINT];
  for (size_t i = 0; i < PAINT; i++) buf[i] = 0xA5;
  painted_at = (uintptr_t)buf;
  __asm__ volatile("" ::: "memory");
}
/* Bytes of the painted area changed so far, counted from its bottom up to the deepest changed byte. */
static __attribute__((noinline)) size_t touched(void) {
  size_t i = 0;
  while (i < PAINT && painted[i] == 0xA5) i++;
  return PAINT - i;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }
static void *thread_main(void *a) { return a; }
static __attribute__((noinline)) void format(char *out, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  vsnprintf(out, 320, f, ap);
  va_end(ap);
}

#define MEASURE(label, stmt)                                  \
  do {                                                        \
    stmt;                                                     \
    paint();                                                  \
    const size_t base = touched();                            \
    stmt;                                                     \
    printf("%-44s %6zu bytes\n", label, touched() - base);    \
  } while (0)

int main(void) {
  char out[512];
  int arr[1000];
  for (int i = 0; i < 1000; i++) arr[i] = 1000 - i;
  pthread_t t;
  pthread_attr_t at;
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  MEASURE("vsnprintf (_ae_fail's %zu %u %#lx %s)",
          format(out, "probe for %zu bytes failed: %zu left on thread %u (%#lx-%#lx) %s", (size_t)1, (size_t)2, 3u,
                 4ul, 5ul, "x"));
  MEASURE("snprintf (%g %f %e)", snprintf(out, sizeof out, "%g %f %e", 1.5, 2.25, 1e300));
  MEASURE("qsort (1000 ints)", qsort(arr, 1000, sizeof arr[0], cmp_int));
  MEASURE("pthread_create + pthread_join", (pthread_create(&t, NULL, thread_main, NULL), pthread_join(t, NULL)));
  MEASURE("pthread_getattr_np (main thread: reads /proc)", (pthread_getattr_np(pthread_self(), &at), pthread_attr_destroy(&at)));
  MEASURE("mmap + munmap", munmap(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), 4096));
  MEASURE("malloc + free", free(malloc(100)));
  MEASURE("open + close", close(open("/dev/null", O_WRONLY)));
  MEASURE("getenv + strtoull", (getenv("HOME"), strtoull("123", NULL, 10)));
  MEASURE("pthread_mutex_lock + unlock", (pthread_mutex_lock(&m), pthread_mutex_unlock(&m)));
  MEASURE("write", (void)!write(2, "", 0));
  return 0;
}
