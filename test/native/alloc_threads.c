/* alloc_threads.c: the safe allocator under native threads, with cross-thread frees.
 * Each thread allocates blocks of random sizes and stamps them (thread id, sequence, size); half of them it
 * frees itself, the other half it hands to the next thread through a mutex-protected mailbox, and that thread
 * verifies the stamp before freeing. At the end every block must have come back: no leak, no error.
 * Usage: alloc_threads THREADS OPS_PER_THREAD. Prints "ok <allocs> <cross-thread frees>" or what went wrong.
 * Do not use this as a benchmark: it measures the mailbox as much as the allocator. */
#include <aether.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAILBOX 4096

typedef struct {
  pthread_mutex_t lock;
  void *items[MAILBOX];
  size_t count;
} mailbox;

static int nthreads;
static long ops;
static mailbox *boxes;
static _Atomic long cross_frees, failures;

static void stamp(unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i * 31);
}
static int stamped(const unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)(seed + i * 31)) return 0;
  return 1;
}

/* Block layout written by the owner: [size_t size][unsigned seed][payload...]. */
static void *make(unsigned *rng, unsigned id) {
  *rng = *rng * 1103515245u + 12345u;
  size_t n = 16 + (*rng >> 8) % 3000;
  if ((*rng & 0xff) == 7) n = 300000 + (*rng >> 8) % 100000; /* now and then a huge block */
  unsigned char *p = aether_safe_malloc(n);
  if (!p) return NULL;
  unsigned seed = id * 7919u + *rng;
  memcpy(p, &n, sizeof n);
  memcpy(p + sizeof n, &seed, sizeof seed);
  stamp(p + 16, n - 16, seed);
  return p;
}
static int check_block(unsigned char *p) {
  size_t n;
  unsigned seed;
  memcpy(&n, p, sizeof n);
  memcpy(&seed, p + sizeof n, sizeof seed);
  return aether_safe_usable_size(p) == n && stamped(p + 16, n - 16, seed);
}

static void drain(mailbox *b) {
  pthread_mutex_lock(&b->lock);
  for (size_t i = 0; i < b->count; i++) {
    if (!check_block(b->items[i])) failures++;
    aether_safe_free(b->items[i]);
    cross_frees++;
  }
  b->count = 0;
  pthread_mutex_unlock(&b->lock);
}

static void *worker(void *arg) {
  const unsigned id = (unsigned)(size_t)arg;
  unsigned rng = id + 1;
  mailbox *next = &boxes[(id + 1) % (unsigned)nthreads];
  void *mine[64];
  size_t held = 0;
  for (long i = 0; i < ops; i++) {
    void *p = make(&rng, id);
    if (!p) {
      failures++;
      break;
    }
    if (i & 1) {
      pthread_mutex_lock(&next->lock);
      if (next->count < MAILBOX) {
        next->items[next->count++] = p;
        p = NULL;
      }
      pthread_mutex_unlock(&next->lock);
    }
    if (p) {
      if (held == 64) {
        if (!check_block(mine[0])) failures++;
        aether_safe_free(mine[0]);
        memmove(mine, mine + 1, 63 * sizeof(void *));
        held--;
      }
      mine[held++] = p;
    }
    if ((i & 255) == 0) drain(&boxes[id]);
  }
  for (size_t i = 0; i < held; i++) {
    if (!check_block(mine[i])) failures++;
    aether_safe_free(mine[i]);
  }
  return NULL;
}

int main(int argc, char **argv) {
  nthreads = argc > 1 ? atoi(argv[1]) : 4;
  ops = argc > 2 ? atol(argv[2]) : 20000;
  aether_memory_init();
  boxes = calloc((size_t)nthreads, sizeof *boxes);
  for (int i = 0; i < nthreads; i++) pthread_mutex_init(&boxes[i].lock, NULL);
  pthread_t th[64];
  for (int i = 0; i < nthreads; i++) pthread_create(&th[i], NULL, worker, (void *)(size_t)i);
  for (int i = 0; i < nthreads; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < nthreads; i++) drain(&boxes[i]);
  aether_memory_stats s;
  aether_memory_get_stats(&s);
  uint64_t errors = 0;
  for (int k = 0; k < AETHER_MEM_ERROR_KINDS; k++) errors += s.errors[k];
  const size_t leaks = aether_check_leaks();
  if (failures || errors || leaks || s.live_bytes) {
    printf("FAILED: %ld bad blocks, %llu errors, %zu leaks, %llu live bytes\n", (long)failures,
           (unsigned long long)errors, leaks, (unsigned long long)s.live_bytes);
    return 1;
  }
  printf("ok %llu %ld\n", (unsigned long long)s.total_allocs, (long)cross_frees);
  return 0;
}
