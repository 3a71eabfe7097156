/* pool: the lock-free aligned pool against a model of its blocks.
 *
 * The input picks the block size, the alignment, the initial and maximum block counts (refused values
 * included), then runs a program of allocations, frees, double frees, frees of interior, misaligned, foreign
 * and NULL pointers, frees from a second thread, cache flushes and stats. Checked:
 * - create refuses what the documentation refuses, with its status;
 * - an allocation succeeds exactly while fewer than max_blocks are in use (LIMIT_REACHED after), and gives a
 *   zeroed block aligned as asked, apart from every block in use; a block keeps what was written to it;
 * - a free of a block in use succeeds; a second free is DOUBLE_FREE, an interior pointer INVALID_POINTER (or
 *   MISALIGNED when it is not aligned), a foreign pointer INVALID_POINTER; a refused free changes nothing
 *   (the block stays in use, the free list intact); NULL is a no-op;
 * - the stats count blocks in use, allocations, frees and each kind of refusal as the model does; destroy
 *   reports the blocks still outstanding;
 * - no out-of-bounds access or undefined behaviour (ASan, UBSan).
 * libFuzzer options: -max_len=2048
 */
#include "fuzz_helpers.h"

#include "aether.h"

#include <pthread.h>

#define MAX_BLOCKS 128
#define MAX_OPS 300

typedef struct blk {
  uint8_t *p;
  bool live;
  uint8_t fill;
} blk;

static blk blocks[MAX_BLOCKS];
static size_t nblocks;
static size_t block_size, alignment, max_blocks, in_use;
static uint64_t allocs, frees, double_frees, invalid_frees;

/* A helper thread frees on request (a cross-thread free lands in that thread's cache). */
static pthread_t helper;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static aether_pool *h_pool;
static void *h_ptr;
static int h_op, h_result; /* 1 free, 2 flush */

static void *helper_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&lock);
  for (;;) {
    while (h_op == 0) pthread_cond_wait(&cond, &lock);
    h_result = h_op == 1 ? aether_pool_free(h_pool, h_ptr) : aether_pool_flush_cache(h_pool);
    h_op = 0;
    pthread_cond_broadcast(&cond);
  }
  return NULL;
}

static int on_helper(int op, aether_pool *pool, void *p) {
  pthread_mutex_lock(&lock);
  h_pool = pool;
  h_ptr = p;
  h_op = op;
  pthread_cond_broadcast(&cond);
  while (h_op != 0) pthread_cond_wait(&cond, &lock);
  const int r = h_result;
  pthread_mutex_unlock(&lock);
  return r;
}

static size_t stride(void) { return (block_size + alignment - 1) & ~(alignment - 1); }

static void check_stats(aether_pool *pool, const char *what) {
  aether_pool_info info;
  FUZZ_ASSERT(aether_pool_stats(pool, &info) == AETHER_OK);
  FUZZ_ASSERT_MSG(info.in_use == in_use && info.allocs == allocs && info.frees == frees &&
                      info.double_frees == double_frees && info.invalid_frees == invalid_frees && info.corrupted == 0,
                  "%s: stats in_use %llu allocs %llu frees %llu double %llu invalid %llu; the model %zu %llu %llu %llu %llu",
                  what, (unsigned long long)info.in_use, (unsigned long long)info.allocs, (unsigned long long)info.frees,
                  (unsigned long long)info.double_frees, (unsigned long long)info.invalid_frees, in_use,
                  (unsigned long long)allocs, (unsigned long long)frees, (unsigned long long)double_frees,
                  (unsigned long long)invalid_frees);
  FUZZ_ASSERT(info.block_size == block_size && info.alignment == alignment && info.stride == stride());
  FUZZ_ASSERT(info.free_blocks == info.total_blocks - info.in_use);
  FUZZ_ASSERT(max_blocks == 0 || info.total_blocks <= max_blocks);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  aether_memory_set_option("quiet", "1"); /* the pool's reports go through the same switch */
  FUZZ_ASSERT(pthread_create(&helper, NULL, helper_main, NULL) == 0);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static bool ready;
  if (!ready) {
    ready = true;
    if (helper == 0) LLVMFuzzerInitialize(NULL, NULL);
  }
  fuzz_producer p = fuzz_producer_make(data, size);
  static const size_t SIZES[8] = {1, 8, 64, 100, 4096, 24, 1000, 65536};
  static const size_t ALIGNS[8] = {64, 128, 4096, 64, 256, 65536, 1 << 21, 64};
  const uint8_t a = fuzz_u8(&p), b = fuzz_u8(&p);
  /* Refused arguments first. */
  static const struct { size_t bs, al, init, max; int st; } BAD[6] = {
      {0, 64, 0, 0, AETHER_ERR_OUT_OF_RANGE},      {((size_t)1 << 30) + 1, 64, 0, 0, AETHER_ERR_OUT_OF_RANGE},
      {64, 32, 0, 0, AETHER_ERR_OUT_OF_RANGE},     {64, 96, 0, 0, AETHER_ERR_NOT_POWER_OF_TWO},
      {64, (size_t)1 << 22, 0, 0, AETHER_ERR_OUT_OF_RANGE}, {64, 64, 10, 5, AETHER_ERR_OUT_OF_RANGE}};
  const unsigned bad = b % 6;
  FUZZ_ASSERT_MSG(aether_pool_create(BAD[bad].bs, BAD[bad].al, BAD[bad].init, BAD[bad].max) == NULL,
                  "create(%zu, %zu, %zu, %zu) was accepted", BAD[bad].bs, BAD[bad].al, BAD[bad].init, BAD[bad].max);
  const int bst = aether_last_status();
  FUZZ_ASSERT_MSG(bst == BAD[bad].st || (bst == AETHER_ERR_OUT_OF_RANGE || bst == AETHER_ERR_NOT_POWER_OF_TWO),
                  "create refused with %s", aether_error_name(bst));

  block_size = SIZES[a & 7];
  alignment = ALIGNS[(a >> 3) & 7];
  max_blocks = (b >> 3) & 1 ? 0 : 1 + ((b >> 4) % 16) * 4;
  const size_t initial = max_blocks && (b & 0x80) ? max_blocks / 2 : 0;
  aether_pool *pool = aether_pool_create(block_size, alignment, initial, max_blocks);
  FUZZ_ASSERT_MSG(pool != NULL, "create(%zu, %zu, %zu, %zu): %s", block_size, alignment, initial, max_blocks, aether_last_error());
  FUZZ_LOG("pool: blocks of %zu bytes, %zu-aligned, %zu initial, max %zu", block_size, alignment, initial, max_blocks);
  nblocks = in_use = 0;
  allocs = frees = double_frees = invalid_frees = 0;
  const size_t cap = max_blocks ? max_blocks : 48;
  for (unsigned i = 0; i < MAX_OPS && !fuzz_empty(&p); i++) {
    const uint8_t op = fuzz_u8(&p) % 9;
    const uint8_t sel = fuzz_u8(&p);
    const uint32_t v = fuzz_u16(&p);
    blk *x = nblocks ? &blocks[sel % nblocks] : NULL;
    switch (op) {
      case 0: case 1: case 2: { /* alloc */
        if (nblocks == MAX_BLOCKS) break;
        if (!max_blocks && in_use >= cap) break; /* unbounded pools grow; keep the model small */
        FUZZ_LOG("op %u: alloc", i);
        aether_clear_error();
        uint8_t *q = aether_pool_alloc(pool);
        if (max_blocks && in_use == max_blocks) {
          FUZZ_ASSERT_MSG(q == NULL && aether_last_status() == AETHER_ERR_LIMIT_REACHED,
                          "alloc past max_blocks %zu returned %p", max_blocks, (void *)q);
          break;
        }
        FUZZ_ASSERT_MSG(q != NULL, "alloc with %zu of %zu in use failed: %s", in_use, max_blocks, aether_last_error());
        FUZZ_ASSERT_MSG(((uintptr_t)q & (alignment - 1)) == 0, "block %p is not %zu-aligned", (void *)q, alignment);
        FUZZ_ASSERT_MSG(fuzz_first_not(q, block_size, 0) == SIZE_MAX, "block %p is not zeroed", (void *)q);
        for (size_t k = 0; k < nblocks; k++) {
          if (!blocks[k].live) continue;
          FUZZ_ASSERT_MSG(q + block_size <= blocks[k].p || blocks[k].p + block_size <= q, "block %p overlaps block %p in use",
                          (void *)q, (void *)blocks[k].p);
        }
        blk *nb = NULL;
        for (size_t k = 0; k < nblocks; k++)
          if (blocks[k].p == q) nb = &blocks[k]; /* a block freed earlier, handed out again */
        if (nb == NULL) nb = &blocks[nblocks++];
        nb->p = q;
        nb->live = true;
        nb->fill = (uint8_t)(i * 7 + 1);
        memset(q, nb->fill, block_size);
        in_use++;
        allocs++;
        break;
      }
      case 3: case 4: { /* free, here or on the helper thread */
        if (x == NULL) break;
        FUZZ_LOG("op %u: free %p (%s)%s", i, (void *)x->p, x->live ? "in use" : "free", op == 4 ? " from another thread" : "");
        if (x->live)
          FUZZ_ASSERT_MSG(fuzz_first_not(x->p, block_size, x->fill) == SIZE_MAX, "block %p lost what was written to it", (void *)x->p);
        const int st = op == 4 ? on_helper(1, pool, x->p) : aether_pool_free(pool, x->p);
        if (x->live) {
          FUZZ_ASSERT_MSG(st == AETHER_OK, "free of a block in use: %s", aether_error_name(st));
          x->live = false;
          in_use--;
          frees++;
        } else {
          FUZZ_ASSERT_MSG(st == AETHER_ERR_DOUBLE_FREE, "second free: %s, not DOUBLE_FREE", aether_error_name(st));
          double_frees++;
        }
        break;
      }
      case 5: { /* an interior pointer */
        if (x == NULL || stride() < 2) break;
        uint8_t *q = x->p + 1 + v % (stride() - 1);
        const int want = ((uintptr_t)q & (alignment - 1)) ? AETHER_ERR_MISALIGNED : AETHER_ERR_INVALID_POINTER;
        FUZZ_LOG("op %u: free interior %p (+%td)", i, (void *)q, q - x->p);
        const int st = aether_pool_free(pool, q);
        FUZZ_ASSERT_MSG(st == want, "free of %p, %td bytes into a block: %s, expected %s", (void *)q, q - x->p,
                        aether_error_name(st), aether_error_name(want));
        invalid_frees++;
        break;
      }
      case 6: { /* foreign pointers, and NULL */
        uint8_t local[64];
        void *heap = malloc(64);
        void *q = v % 3 == 0 ? (void *)local : v % 3 == 1 ? heap : NULL;
        FUZZ_LOG("op %u: free foreign %p", i, q);
        const int st = aether_pool_free(pool, q);
        if (q == NULL) {
          FUZZ_ASSERT(st == AETHER_OK);
        } else {
          FUZZ_ASSERT_MSG(st == AETHER_ERR_INVALID_POINTER, "free of a foreign pointer: %s", aether_error_name(st));
          invalid_frees++;
        }
        free(heap);
        break;
      }
      case 7: /* flush a cache */
        FUZZ_LOG("op %u: flush_cache%s", i, v & 1 ? " (helper)" : "");
        FUZZ_ASSERT((v & 1 ? on_helper(2, pool, NULL) : aether_pool_flush_cache(pool)) == AETHER_OK);
        break;
      default: /* write into a block in use (its own bytes) */
        if (x == NULL || !x->live) break;
        x->fill = (uint8_t)v;
        memset(x->p, x->fill, block_size);
        break;
    }
    check_stats(pool, "after the operation");
  }
  /* Both threads give their cached blocks back, then destroy reports the ones still in use. */
  FUZZ_ASSERT(on_helper(2, pool, NULL) == AETHER_OK);
  const size_t outstanding = aether_pool_destroy(pool);
  FUZZ_ASSERT_MSG(outstanding == in_use, "destroy reported %zu outstanding blocks, the model %zu", outstanding, in_use);
  FUZZ_LOG("done: no finding");
  return 0;
}
