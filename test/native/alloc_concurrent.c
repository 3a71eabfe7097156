/* alloc_concurrent.c: the safe allocator's whole-heap readers racing its writers, the workload TSan needs.
 * WRITERS threads allocate, write, grow and shrink (realloc in place and moving) and free blocks of every size
 * class and the huge path, and hand some blocks to the next writer to free; meanwhile one reader thread walks
 * the heap over and over: aether_memory_check_all (verifies every live block's header and guards while they
 * are allocated and freed), the stats, the live-block list, the error ring, and it flips options the writers
 * read (quarantine size, backtraces). Writers come and go in waves, so thread exit (heap teardown, quarantine
 * drain) overlaps the walks too. Nothing may be reported: no allocator error, no sanitizer report, no leak.
 * Usage: alloc_concurrent [WRITERS] [OPS] [WAVES]   (default 3 4000 2).
 * Do not use this as a benchmark: the reader slows the writers on purpose. */
#include <aether.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#define MAX_WRITERS 16
#define HANDOFF 256

static long writers = 3, ops = 4000, waves = 2;
static atomic_int stop_reader;
static atomic_long bad_blocks, handed;

typedef struct {
  pthread_mutex_t lock;
  unsigned char *items[HANDOFF];
  int count;
} inbox;
static inbox boxes[MAX_WRITERS];

static size_t pick_size(uint32_t *rng) {
  *rng = *rng * 1664525u + 1013904223u;
  const uint32_t r = *rng >> 8;
  if ((r & 0x3ff) == 0) return 300000 + r % 50000; /* now and then a huge block */
  if ((r & 0x1f) == 0) return 4096 + r % 60000;
  return 1 + r % 700;
}

/* Each block starts with its size; the rest is a byte pattern derived from it. */
static void stamp(unsigned char *p, size_t n) {
  memset(p, (int)(n & 0xff), n);
  if (n >= sizeof n) memcpy(p, &n, sizeof n);
}
static int intact(const unsigned char *p) {
  size_t n = aether_safe_usable_size(p);
  if (n >= sizeof n) {
    size_t stored;
    memcpy(&stored, p, sizeof stored);
    if (stored != n) return 0;
    for (size_t i = sizeof n; i < n; i++)
      if (p[i] != (unsigned char)(n & 0xff)) return 0;
  }
  return n != 0;
}

static void drain(inbox *b) {
  pthread_mutex_lock(&b->lock);
  for (int i = 0; i < b->count; i++) {
    if (!intact(b->items[i])) bad_blocks++;
    aether_safe_free(b->items[i]);
  }
  b->count = 0;
  pthread_mutex_unlock(&b->lock);
}

static void *writer(void *arg) {
  const long id = (long)arg;
  uint32_t rng = (uint32_t)id * 7919u + 1;
  unsigned char *held[32] = {0};
  for (long i = 0; i < ops; i++) {
    const int slot = (int)(i % 32);
    if (held[slot]) {
      if (!intact(held[slot])) bad_blocks++;
      if (i % 3 == 0) { /* grow or shrink, then check the prefix survived */
        const size_t n = pick_size(&rng);
        unsigned char *q = aether_safe_realloc(held[slot], n);
        if (q == NULL) {
          bad_blocks++;
          continue;
        }
        stamp(q, n);
        held[slot] = q;
        continue;
      }
      if (i % 5 == 0) { /* hand it to the next writer */
        inbox *next = &boxes[(id + 1) % writers];
        pthread_mutex_lock(&next->lock);
        if (next->count < HANDOFF) {
          next->items[next->count++] = held[slot];
          held[slot] = NULL;
          handed++;
        }
        pthread_mutex_unlock(&next->lock);
      }
      if (held[slot]) aether_safe_free(held[slot]);
    }
    const size_t n = pick_size(&rng);
    held[slot] = aether_safe_malloc(n);
    if (held[slot] == NULL) {
      bad_blocks++;
      continue;
    }
    stamp(held[slot], n);
    if (i % 64 == 0) drain(&boxes[id]);
  }
  for (int s = 0; s < 32; s++) aether_safe_free(held[s]);
  return NULL;
}

static void *reader(void *arg) {
  (void)arg;
  long walks = 0;
  aether_memory_block top[8];
  aether_memory_event ev[16];
  aether_memory_stats st;
  while (!atomic_load(&stop_reader)) {
    if (aether_memory_check_all() != 0) bad_blocks++;
    aether_memory_get_stats(&st);
    aether_memory_live_blocks(top, 8);
    aether_memory_errors(0, ev, 16);
    (void)aether_memory_usage();
    aether_memory_set_option("quarantine_bytes", walks % 2 ? "64k" : "256k");
    aether_memory_set_option("backtrace", walks % 4 == 1 ? "1" : "0");
    walks++;
  }
  aether_memory_set_option("backtrace", "0");
  aether_memory_set_option("quarantine_bytes", "256k");
  return (void *)walks;
}

int main(int argc, char **argv) {
  writers = check_arg(argc, argv, 1, 3);
  ops = check_arg(argc, argv, 2, 4000);
  waves = check_arg(argc, argv, 3, 2);
  if (writers < 1 || writers > MAX_WRITERS) writers = 3;
  aether_memory_init();
  for (int i = 0; i < MAX_WRITERS; i++) pthread_mutex_init(&boxes[i].lock, NULL);
  pthread_t r, w[MAX_WRITERS];
  pthread_create(&r, NULL, reader, NULL);
  for (long wave = 0; wave < waves; wave++) {
    for (long i = 0; i < writers; i++) pthread_create(&w[i], NULL, writer, (void *)i);
    for (long i = 0; i < writers; i++) pthread_join(w[i], NULL);
    for (long i = 0; i < writers; i++) drain(&boxes[i]);
  }
  atomic_store(&stop_reader, 1);
  void *walks;
  pthread_join(r, &walks);
  aether_memory_stats st;
  aether_memory_get_stats(&st);
  uint64_t errors = 0;
  for (int k = 0; k < AETHER_MEM_ERROR_KINDS; k++) errors += st.errors[k];
  CHECK(bad_blocks == 0, "%ld damaged or missing block(s)", (long)bad_blocks);
  CHECK(errors == 0, "%llu allocator error(s) reported", (unsigned long long)errors);
  CHECK(st.live_count == 0 && st.live_bytes == 0, "%llu block(s), %llu byte(s) still live",
        (unsigned long long)st.live_count, (unsigned long long)st.live_bytes);
  CHECK((long)walks > 0, "the reader never walked the heap");
  char summary[96];
  snprintf(summary, sizeof summary, "%llu allocs, %ld handed over, %ld heap walks", (unsigned long long)st.total_allocs,
           (long)handed, (long)walks);
  return check_verdict(summary);
}
