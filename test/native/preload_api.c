/* preload_api.c: the C library's heap functions as a program sees them under libaether-preload.so.
 * Checks C-library semantics (malloc(0), errno, alignment rules, realloc edge cases, malloc_usable_size), then
 * fork, threads, and exit from a non-main thread. Prints one line per check and "ok" at the end; any failure
 * prints "FAIL ..." and exits 1. Run it with and without the preload: it must pass both ways, except the
 * checks marked preload-only, which it runs only when AETHER_EXPECT_PRELOAD=1. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;
#define CHECK(cond, ...)                        \
  do {                                          \
    if (!(cond)) {                              \
      printf("FAIL %s:%d: ", __FILE__, __LINE__); \
      printf(__VA_ARGS__);                      \
      printf("\n");                             \
      failures++;                               \
    }                                           \
  } while (0)

static void *volatile sink;

static void semantics(int preload) {
  void *z = malloc(0);
  CHECK(z != NULL, "malloc(0) returned NULL");
  void *z2 = malloc(0);
  CHECK(z2 != z, "malloc(0) twice returned the same pointer");
  free(z);
  free(z2);

  /* volatile: the compiler must not see (and warn about) the impossible sizes */
  volatile size_t big = SIZE_MAX / 2, quarter = SIZE_MAX / 4, eighth = SIZE_MAX / 8;
  errno = 0;
  void *huge = malloc(big);
  CHECK(huge == NULL && errno == ENOMEM, "malloc(SIZE_MAX/2) = %p, errno %d", huge, errno);

  errno = 0;
  void *c = calloc(eighth, 16);
  CHECK(c == NULL && errno == ENOMEM, "calloc overflow = %p, errno %d", c, errno);
  unsigned char *zc = calloc(100, 3);
  int zeroed = 1;
  for (int i = 0; i < 300; i++) zeroed &= zc[i] == 0;
  CHECK(zeroed, "calloc memory not zeroed");
  free(zc);

  errno = 0;
  void *ra = reallocarray(NULL, quarter, 8);
  CHECK(ra == NULL && errno == ENOMEM, "reallocarray overflow = %p, errno %d", ra, errno);

  void *p = NULL;
  CHECK(posix_memalign(&p, 3, 10) == EINVAL, "posix_memalign(3) not EINVAL");
  CHECK(posix_memalign(&p, 4, 10) == EINVAL, "posix_memalign(4 < sizeof(void*)) not EINVAL");
  for (size_t a = 8; a <= (1u << 20); a <<= 1) {
    p = NULL;
    int rc = posix_memalign(&p, a, 100);
    CHECK(rc == 0 && p != NULL && (uintptr_t)p % a == 0, "posix_memalign(%zu) rc %d p %p", a, rc, p);
    memset(p, 1, 100);
    free(p);
  }
  p = aligned_alloc(64, 128);
  CHECK(p != NULL && (uintptr_t)p % 64 == 0, "aligned_alloc(64) = %p", p);
  free(p);
  p = memalign(48, 10); /* glibc rounds the alignment up to 64 */
  CHECK(p != NULL && (uintptr_t)p % 64 == 0, "memalign(48) = %p", p);
  free(p);
  const long page = sysconf(_SC_PAGESIZE);
  p = valloc(10);
  CHECK(p != NULL && (uintptr_t)p % (uintptr_t)page == 0, "valloc = %p", p);
  free(p);
  p = pvalloc(1);
  CHECK(p != NULL && (uintptr_t)p % (uintptr_t)page == 0, "pvalloc = %p", p);
  if (preload) CHECK(malloc_usable_size(p) == (size_t)page, "pvalloc(1) usable %zu", malloc_usable_size(p));
  free(p);

  char *s = malloc(10);
  strcpy(s, "123456789");
  s = realloc(s, 100000);
  CHECK(s && strcmp(s, "123456789") == 0, "realloc lost data");
  s = realloc(s, 5);
  CHECK(s && memcmp(s, "12345", 5) == 0, "realloc shrink lost data");
  if (preload) CHECK(malloc_usable_size(s) == 5, "usable size %zu, not the requested 5", malloc_usable_size(s));
  CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL)");
  void *r0 = realloc(s, 0); /* glibc: frees, returns NULL */
  CHECK(r0 == NULL, "realloc(p, 0) = %p", r0);
  void *rn = realloc(NULL, 16);
  CHECK(rn != NULL, "realloc(NULL, 16) = NULL");
  free(rn);
  char *dup = strdup("through the C library's own malloc");
  CHECK(dup && strlen(dup) == 34, "strdup");
  free(dup);
  printf("semantics checked\n");
}

static void *thread_work(void *arg) {
  const int id = (int)(intptr_t)arg;
  for (int i = 0; i < 20000; i++) {
    char *q = malloc((size_t)(i % 300) + 1);
    q[0] = (char)id;
    sink = q;
    free(q);
  }
  return NULL;
}

static void threads(void) {
  pthread_t th[8];
  for (int i = 0; i < 8; i++) pthread_create(&th[i], NULL, thread_work, (void *)(intptr_t)i);
  for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
  printf("threads checked\n");
}

static pthread_mutex_t fork_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int stop;
static void *allocating(void *arg) {
  (void)arg;
  while (!stop) {
    void *q = malloc(64);
    sink = q;
    free(q);
  }
  return NULL;
}

/* fork while another thread allocates: the child must be able to allocate (no lock left held). */
static void forks(void) {
  pthread_t t;
  pthread_create(&t, NULL, allocating, NULL);
  for (int i = 0; i < 20; i++) {
    pid_t pid = fork();
    if (pid == 0) {
      for (int k = 0; k < 1000; k++) free(malloc((size_t)k + 1));
      char *m = malloc(100);
      snprintf(m, 100, "child %d", i);
      _exit(strcmp(m, "") == 0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "forked child %d failed (status %d)", i, st);
  }
  stop = 1;
  pthread_join(t, NULL);
  pthread_mutex_lock(&fork_lock);
  pthread_mutex_unlock(&fork_lock);
  printf("fork checked\n");
}

static void *exiter(void *arg) {
  (void)arg;
  char *q = malloc(32);
  strcpy(q, "bye");
  printf("ok\n");
  fflush(stdout);
  exit(failures ? 1 : 0); /* exit from a thread that is not main */
}

int main(void) {
  const char *e = getenv("AETHER_EXPECT_PRELOAD");
  const int preload = e && strcmp(e, "1") == 0;
  semantics(preload);
  threads();
  forks();
  pthread_t t;
  pthread_create(&t, NULL, exiter, NULL);
  pthread_join(t, NULL);
  return 2; /* not reached */
}
