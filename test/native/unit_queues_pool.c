/* unit_queues_pool.c: the SPSC and MPMC queues and the aligned pool from C. Queues: refused geometries, FIFO
 * order across fills and drains, batches, the u64 fast paths, indices crossing 2^32 and 2^64, and a small
 * threaded run with a checksum (two producers, two consumers on the MPMC; one each on the SPSC). Pool: alignment
 * and zeroing, every refused free (double, foreign, interior, misaligned), the block limit, per-thread caches
 * flushed and reclaimed across threads, and blocks outstanding at destroy. Diagnostics go to a log file.
 * Usage: unit_queues_pool [ITEMS]   (items per threaded queue run; default 20000). */
#include <aether.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static long items = 20000;

/* ------------------------------------------------------------------------------------------ queues --- */
static void geometry(void) {
  CHECK(aether_spsc_create(12, 8) == NULL && aether_last_status() == AETHER_ERR_NOT_POWER_OF_TWO, "capacity 12 accepted");
  CHECK(aether_spsc_create(4, 8) == NULL, "capacity 4 (below the minimum) accepted");
  CHECK(aether_mpmc_create(1u << 25, 8) == NULL, "capacity 2^25 accepted");
  CHECK(aether_mpmc_create(16, 0) == NULL && aether_mpmc_create(16, 4097) == NULL, "element sizes 0 and 4097 accepted");
  aether_spsc_destroy(NULL);
  aether_mpmc_destroy(NULL);
}

static void spsc_fifo(void) {
  aether_spsc *q = aether_spsc_create(16, 24);
  CHECK(q != NULL, "spsc_create: %s", aether_last_error());
  if (!q) return;
  CHECK(aether_spsc_capacity(q) == 16 && aether_spsc_elem_size(q) == 24, "geometry");
  unsigned char item[24], out[24];
  for (int round = 0; round < 5; round++) {
    int pushed = 0;
    for (int i = 0; i < 40; i++) {
      memset(item, round * 40 + i, sizeof item);
      if (aether_spsc_try_push(q, item)) pushed++;
    }
    CHECK(pushed == 16 && aether_spsc_size(q) == 16, "pushed %d into capacity 16", pushed);
    for (int i = 0; i < 16; i++) {
      CHECK(aether_spsc_try_pop(q, out) && out[0] == (unsigned char)(round * 40 + i) && out[23] == out[0], "FIFO order, round %d item %d", round, i);
    }
    CHECK(!aether_spsc_try_pop(q, out), "pop from an empty queue");
  }
  unsigned char batch[10][24], back[10][24];
  for (int i = 0; i < 10; i++) memset(batch[i], 100 + i, 24);
  CHECK(aether_spsc_push_n(q, batch, 10) == 10 && aether_spsc_push_n(q, batch, 10) == 6, "push_n over capacity");
  CHECK(aether_spsc_pop_n(q, back, 10) == 10 && memcmp(back, batch, sizeof back) == 0, "pop_n order");
  CHECK(!aether_spsc_try_push_u64(q, 1) && aether_last_status() == AETHER_ERR_INVALID_ARGUMENT, "u64 push on 24-byte items");
  aether_spsc_destroy(q);
}

/* The 64-bit indices wrap: start just below 2^32 and 2^64 and keep order across the crossing. */
static void wraps(void) {
  static const uint64_t starts[] = {(1ull << 32) - 5, UINT64_MAX - 5};
  for (int k = 0; k < 2; k++) {
    aether_spsc *s = aether_spsc_create(8, 8);
    aether_mpmc *m = aether_mpmc_create(8, 8);
    CHECK(s && m, "create");
    if (!s || !m) return;
    CHECK(aether_spsc_debug_set_index(s, starts[k]) == AETHER_OK && aether_mpmc_debug_set_index(m, starts[k]) == AETHER_OK, "set index");
    for (uint64_t i = 0; i < 40; i++) {
      uint64_t a = 0, b = 0;
      CHECK(aether_spsc_try_push_u64(s, i) && aether_mpmc_try_push_u64(m, i), "push %llu across the wrap", (unsigned long long)i);
      CHECK(aether_spsc_try_pop_u64(s, &a) && aether_mpmc_try_pop_u64(m, &b) && a == i && b == i, "pop %llu across the wrap", (unsigned long long)i);
    }
    uint64_t head, tail;
    CHECK(aether_mpmc_debug_indices(m, &head, &tail) == AETHER_OK && head == tail && head == starts[k] + 40, "indices after the wrap");
    aether_spsc_destroy(s);
    aether_mpmc_destroy(m);
  }
}

typedef struct {
  aether_mpmc *m;
  aether_spsc *s;
  uint64_t base;
  _Atomic uint64_t *sum;
  _Atomic long *count;
} qjob;

static void *mpmc_producer(void *arg) {
  qjob *j = arg;
  for (long i = 0; i < items; i++)
    while (!aether_mpmc_try_push_u64(j->m, j->base + (uint64_t)i)) sched_yield();
  return NULL;
}
static void *mpmc_consumer(void *arg) {
  qjob *j = arg;
  uint64_t v;
  while (*j->count < 2 * items) {
    if (aether_mpmc_try_pop_u64(j->m, &v)) {
      *j->sum += v;
      (*j->count)++;
    } else {
      sched_yield();
    }
  }
  return NULL;
}
static void *spsc_producer(void *arg) {
  qjob *j = arg;
  for (long i = 0; i < items; i++)
    while (!aether_spsc_try_push_u64(j->s, (uint64_t)i)) sched_yield();
  return NULL;
}

static void threaded(void) {
  _Atomic uint64_t sum = 0;
  _Atomic long count = 0;
  qjob j[2] = {{.m = aether_mpmc_create(64, 8), .base = 0, .sum = &sum, .count = &count}};
  j[1] = j[0];
  j[1].base = 1ull << 40;
  pthread_t p[2], c[2];
  for (int i = 0; i < 2; i++) pthread_create(&p[i], NULL, mpmc_producer, &j[i]);
  for (int i = 0; i < 2; i++) pthread_create(&c[i], NULL, mpmc_consumer, &j[0]);
  for (int i = 0; i < 2; i++) pthread_join(p[i], NULL), pthread_join(c[i], NULL);
  const uint64_t n = (uint64_t)items;
  CHECK(count == 2 * items && sum == n * (n - 1) + n * (1ull << 40), "mpmc: %ld items, checksum off by %lld", (long)count,
        (long long)(sum - (n * (n - 1) + n * (1ull << 40))));
  aether_mpmc_destroy(j[0].m);

  qjob s = {.s = aether_spsc_create(64, 8)};
  pthread_t sp;
  pthread_create(&sp, NULL, spsc_producer, &s);
  uint64_t expect = 0, v;
  while (expect < n) {
    if (!aether_spsc_try_pop_u64(s.s, &v)) {
      sched_yield();
      continue;
    }
    if (v != expect) break;
    expect++;
  }
  pthread_join(sp, NULL);
  CHECK(expect == n, "spsc: item %llu out of order", (unsigned long long)expect);
  aether_spsc_destroy(s.s);
}

/* -------------------------------------------------------------------------------------------- pool --- */
static void *take_and_give(void *arg) {
  aether_pool *pool = arg;
  void *b[8];
  int got = 0;
  for (int i = 0; i < 8; i++)
    if ((b[i] = aether_pool_alloc(pool)) != NULL) got++;
  for (int i = 0; i < 8; i++) aether_pool_free(pool, b[i]);
  return (void *)(intptr_t)got; /* the blocks stay in this thread's cache until it exits */
}

static void pool(void) {
  CHECK(aether_pool_create(100, 48, 0, 0) == NULL && aether_last_status() == AETHER_ERR_NOT_POWER_OF_TWO, "alignment 48 accepted");
  CHECK(aether_pool_create(0, 64, 0, 0) == NULL, "block size 0 accepted");
  aether_pool *pool = aether_pool_create(100, 256, 4, 16);
  CHECK(pool != NULL, "pool_create: %s", aether_last_error());
  if (!pool) return;
  void *b[16];
  for (int i = 0; i < 16; i++) {
    b[i] = aether_pool_alloc(pool);
    CHECK(b[i] != NULL && (uintptr_t)b[i] % 256 == 0, "block %d: %p", i, b[i]);
    if (!b[i]) return;
    int zero = 1;
    for (int k = 0; k < 100; k++) zero &= ((unsigned char *)b[i])[k] == 0;
    CHECK(zero, "block %d is not zeroed", i);
    memset(b[i], 0xa5, 100);
  }
  CHECK(aether_pool_alloc(pool) == NULL && aether_last_status() == AETHER_ERR_LIMIT_REACHED, "a 17th block past max 16");
  CHECK(aether_pool_free(pool, b[3]) == AETHER_OK, "free");
  CHECK(aether_pool_free(pool, b[3]) == AETHER_ERR_DOUBLE_FREE, "double free not refused");
  CHECK(aether_pool_free(pool, (char *)b[4] + 8) != AETHER_OK, "interior pointer accepted");
  int on_stack;
  CHECK(aether_pool_free(pool, &on_stack) == AETHER_ERR_INVALID_POINTER, "foreign pointer accepted");
  CHECK(aether_pool_free(pool, NULL) == AETHER_OK, "free(NULL)");
  aether_pool_info info;
  CHECK(aether_pool_stats(pool, &info) == AETHER_OK && info.in_use == 15 && info.double_frees == 1, "stats: in_use %llu",
        (unsigned long long)info.in_use);
  for (int i = 0; i < 16; i++)
    if (i != 3) aether_pool_free(pool, b[i]);
  CHECK(aether_pool_flush_cache(pool) == AETHER_OK, "flush_cache");
  /* Another thread takes blocks and exits with some in its cache; this thread must still get all 16 back. */
  pthread_t t;
  pthread_create(&t, NULL, take_and_give, pool);
  void *got;
  pthread_join(t, &got);
  CHECK((intptr_t)got == 8, "the other thread got %ld blocks", (long)(intptr_t)got);
  int again = 0;
  for (int i = 0; i < 16; i++)
    if ((b[i] = aether_pool_alloc(pool)) != NULL) again++;
  CHECK(again == 16, "%d of 16 blocks back after another thread's cache", again);
  for (int i = 0; i < 14; i++) aether_pool_free(pool, b[i]);
  CHECK(aether_pool_destroy(pool) == 2, "destroy did not count 2 outstanding blocks");
}

int main(int argc, char **argv) {
  items = check_arg(argc, argv, 1, 20000);
  char log_path[64];
  snprintf(log_path, sizeof log_path, "/tmp/aether-unit-queues-%d.log", (int)getpid());
  aether_memory_set_option("log_file", log_path); /* the pool's error reports */
  SCENARIO(geometry);
  SCENARIO(spsc_fifo);
  SCENARIO(wraps);
  SCENARIO(threaded);
  SCENARIO(pool);
  aether_memory_set_option("log_file", "");
  unlink(log_path);
  char summary[64];
  snprintf(summary, sizeof summary, "%ld items per threaded run", items);
  return check_verdict(summary);
}
