/* queue: the lock-free SPSC and MPMC queues against a model FIFO.
 *
 * The input picks the kind, the capacity and the item size (refused values included), then runs a program of
 * try_push, try_pop, push_n, pop_n, the 8-byte fast paths, size, index moves to just below the 2^32 and 2^64
 * wraps, and threaded bursts (a producer thread, two for MPMC, pushing while this thread pops). Checked:
 * - create refuses a capacity that is not a power of two in [8, 2^24] or an item size outside [1, 4096] with the
 *   documented status, and never rounds;
 * - every push succeeds exactly when the model has room, every pop exactly when it holds an item, and the
 *   item popped is the model's oldest, byte for byte; batches move exactly min(n, room) / min(n, items), in
 *   order; size, capacity, elem_size and the raw indices agree with the model (head - tail = size, across
 *   the wraps); the u64 paths refuse other item sizes with INVALID_ARGUMENT;
 * - in a threaded burst nothing is lost, duplicated or reordered per producer;
 * - no out-of-bounds access or undefined behaviour (ASan, UBSan).
 * libFuzzer options: -max_len=2048
 */
#include "fuzz_helpers.h"

#include "aether.h"

#include <pthread.h>
#include <sched.h>

#define MAX_OPS 256
#define MODEL_CAP (1u << 12) /* the largest capacity the fuzzer picks; refused ones are tried separately */
#define MAX_ELEM 4096

typedef struct {
  bool mpmc;
  void *q;
} queue;

static bool q_push(queue *q, const void *item) { return q->mpmc ? aether_mpmc_try_push(q->q, item) : aether_spsc_try_push(q->q, item); }
static bool q_pop(queue *q, void *out) { return q->mpmc ? aether_mpmc_try_pop(q->q, out) : aether_spsc_try_pop(q->q, out); }
static size_t q_push_n(queue *q, const void *items, size_t n) { return q->mpmc ? aether_mpmc_push_n(q->q, items, n) : aether_spsc_push_n(q->q, items, n); }
static size_t q_pop_n(queue *q, void *out, size_t n) { return q->mpmc ? aether_mpmc_pop_n(q->q, out, n) : aether_spsc_pop_n(q->q, out, n); }
static bool q_push64(queue *q, uint64_t v) { return q->mpmc ? aether_mpmc_try_push_u64(q->q, v) : aether_spsc_try_push_u64(q->q, v); }
static bool q_pop64(queue *q, uint64_t *v) { return q->mpmc ? aether_mpmc_try_pop_u64(q->q, v) : aether_spsc_try_pop_u64(q->q, v); }
static size_t q_size(queue *q) { return q->mpmc ? aether_mpmc_size(q->q) : aether_spsc_size(q->q); }
static size_t q_capacity(queue *q) { return q->mpmc ? aether_mpmc_capacity(q->q) : aether_spsc_capacity(q->q); }
static size_t q_elem(queue *q) { return q->mpmc ? aether_mpmc_elem_size(q->q) : aether_spsc_elem_size(q->q); }
static aether_status q_set_index(queue *q, uint64_t i) { return q->mpmc ? aether_mpmc_debug_set_index(q->q, i) : aether_spsc_debug_set_index(q->q, i); }
static aether_status q_indices(queue *q, uint64_t *h, uint64_t *t) { return q->mpmc ? aether_mpmc_debug_indices(q->q, h, t) : aether_spsc_debug_indices(q->q, h, t); }
static void q_destroy(queue *q) {
  if (q->mpmc) aether_mpmc_destroy(q->q);
  else aether_spsc_destroy(q->q);
}

/* The model: a ring of item ids; an item's bytes are a function of its id. */
static uint64_t ring[MODEL_CAP];
static size_t mhead, mcount, cap, elem;
static uint64_t next_id;

static void item_bytes(uint64_t id, uint8_t *out) {
  uint64_t st = id * 0x9E3779B97F4A7C15ull + elem;
  for (size_t i = 0; i < elem; i += 8) {
    const uint64_t w = fuzz_mix64(&st);
    memcpy(out + i, &w, elem - i < 8 ? elem - i : 8);
  }
  if (elem >= 8) memcpy(out, &id, 8); /* the id itself leads, for the u64 paths */
}

static void model_push(uint64_t id) { ring[(mhead + mcount++) % cap] = id; }
static uint64_t model_pop(void) {
  const uint64_t id = ring[mhead];
  mhead = (mhead + 1) % cap;
  mcount--;
  return id;
}

static uint8_t buf[MAX_ELEM * 64], want[MAX_ELEM];

/* ------------------------------------------------------------------------- threaded bursts --- */
typedef struct {
  queue *q;
  uint32_t producer;
  uint32_t count;
} burst_arg;

static void *burst_producer(void *p) {
  burst_arg *a = p;
  static _Thread_local uint8_t item[MAX_ELEM];
  for (uint32_t i = 0; i < a->count; i++) {
    const uint64_t tag = ((uint64_t)a->producer << 32) | i;
    memcpy(item, &tag, 8);
    while (!q_push(a->q, item)) sched_yield();
  }
  return NULL;
}

/* Producers push count items each (tagged producer:sequence) while this thread pops them all. Needs an empty
 * queue with items of at least 8 bytes. */
static void burst(queue *q, uint32_t producers, uint32_t count) {
  pthread_t th[2];
  burst_arg args[2];
  for (uint32_t k = 0; k < producers; k++) {
    args[k] = (burst_arg){q, k + 1, count};
    FUZZ_ASSERT(pthread_create(&th[k], NULL, burst_producer, &args[k]) == 0);
  }
  uint32_t next[3] = {0, 0, 0};
  uint8_t item[MAX_ELEM];
  for (uint32_t got = 0; got < producers * count;) {
    if (!q_pop(q, item)) {
      sched_yield();
      continue;
    }
    uint64_t tag;
    memcpy(&tag, item, 8);
    const uint32_t who = (uint32_t)(tag >> 32), seq = (uint32_t)tag;
    FUZZ_ASSERT_MSG(who >= 1 && who <= producers, "burst: an item from producer %u, who does not exist", who);
    FUZZ_ASSERT_MSG(seq == next[who], "burst: producer %u's item %u came when %u was due (lost, duplicated or reordered)",
                    who, seq, next[who]);
    next[who]++;
    got++;
  }
  for (uint32_t k = 0; k < producers; k++) pthread_join(th[k], NULL);
  FUZZ_ASSERT_MSG(!q_pop(q, item), "burst: an item is left after every item was received");
}

/* ------------------------------------------------------------------------------ the harness --- */
static const size_t CAPS[8] = {8, 16, 64, 256, 1024, 4096, 32, 128};
static const size_t ELEMS[8] = {8, 1, 3, 16, 24, 64, 200, 4096};

static void check_refusals(fuzz_producer *p, bool mpmc) {
  static const size_t BAD_CAPS[6] = {0, 4, 7, 9, 100, (size_t)1 << 25};
  const size_t bc = BAD_CAPS[fuzz_u8(p) % 6];
  void *q = mpmc ? (void *)aether_mpmc_create(bc, 8) : (void *)aether_spsc_create(bc, 8);
  FUZZ_ASSERT_MSG(q == NULL, "create(capacity %zu) was accepted", bc);
  const int st = aether_last_status();
  FUZZ_ASSERT_MSG(st == AETHER_ERR_NOT_POWER_OF_TWO || st == AETHER_ERR_OUT_OF_RANGE,
                  "create(capacity %zu) refused with %s", bc, aether_error_name(st));
  const size_t be = fuzz_bool(p) ? 0 : MAX_ELEM + 1 + fuzz_u8(p);
  q = mpmc ? (void *)aether_mpmc_create(8, be) : (void *)aether_spsc_create(8, be);
  FUZZ_ASSERT_MSG(q == NULL && aether_last_status() == AETHER_ERR_OUT_OF_RANGE, "create(elem_size %zu) was accepted", be);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_producer p = fuzz_producer_make(data, size);
  const uint8_t setup = fuzz_u8(&p);
  queue q = {.mpmc = setup & 1};
  check_refusals(&p, q.mpmc);
  cap = CAPS[(setup >> 1) & 7];
  elem = ELEMS[(setup >> 4) & 7];
  q.q = q.mpmc ? (void *)aether_mpmc_create(cap, elem) : (void *)aether_spsc_create(cap, elem);
  FUZZ_ASSERT_MSG(q.q != NULL, "create(%zu, %zu): %s", cap, elem, aether_last_error());
  FUZZ_ASSERT(q_capacity(&q) == cap && q_elem(&q) == elem && q_size(&q) == 0);
  FUZZ_LOG("%s queue: capacity %zu, items of %zu bytes", q.mpmc ? "mpmc" : "spsc", cap, elem);
  mhead = mcount = 0;
  next_id = 1;
  for (unsigned i = 0; i < MAX_OPS && !fuzz_empty(&p); i++) {
    const uint8_t op = fuzz_u8(&p) % 10;
    const size_t n = fuzz_u8(&p) % 64;
    switch (op) {
      case 0: case 1: { /* try_push */
        FUZZ_LOG("op %u: try_push", i);
        item_bytes(next_id, want);
        const bool ok = q_push(&q, want);
        FUZZ_ASSERT_MSG(ok == (mcount < cap), "try_push returned %d with %zu of %zu items", ok, mcount, cap);
        if (ok) model_push(next_id++);
        break;
      }
      case 2: case 3: { /* try_pop */
        FUZZ_LOG("op %u: try_pop", i);
        const bool ok = q_pop(&q, buf);
        FUZZ_ASSERT_MSG(ok == (mcount > 0), "try_pop returned %d with %zu items", ok, mcount);
        if (!ok) break;
        const uint64_t id = model_pop();
        item_bytes(id, want);
        FUZZ_ASSERT_MSG(memcmp(buf, want, elem) == 0, "try_pop: not item %llu, the oldest", (unsigned long long)id);
        break;
      }
      case 4: { /* push_n */
        FUZZ_LOG("op %u: push_n %zu", i, n);
        for (size_t k = 0; k < n; k++) item_bytes(next_id + k, buf + k * elem);
        const size_t moved = q_push_n(&q, buf, n), room = cap - mcount;
        FUZZ_ASSERT_MSG(moved == (n < room ? n : room), "push_n(%zu) moved %zu with room for %zu", n, moved, room);
        for (size_t k = 0; k < moved; k++) model_push(next_id++);
        next_id += n - moved; /* ids of items not pushed are skipped, as the test items are */
        break;
      }
      case 5: { /* pop_n */
        FUZZ_LOG("op %u: pop_n %zu", i, n);
        const size_t moved = q_pop_n(&q, buf, n);
        FUZZ_ASSERT_MSG(moved == (n < mcount ? n : mcount), "pop_n(%zu) moved %zu of %zu items", n, moved, mcount);
        for (size_t k = 0; k < moved; k++) {
          const uint64_t id = model_pop();
          item_bytes(id, want);
          FUZZ_ASSERT_MSG(memcmp(buf + k * elem, want, elem) == 0, "pop_n: item %zu is not %llu", k, (unsigned long long)id);
        }
        break;
      }
      case 6: { /* the u64 paths */
        FUZZ_LOG("op %u: u64 push and pop", i);
        aether_clear_error();
        uint64_t v = 0;
        if (elem != 8) {
          FUZZ_ASSERT(!q_push64(&q, 1) && aether_last_status() == AETHER_ERR_INVALID_ARGUMENT);
          FUZZ_ASSERT(!q_pop64(&q, &v) && aether_last_status() == AETHER_ERR_INVALID_ARGUMENT);
          break;
        }
        item_bytes(next_id, want);
        memcpy(&v, want, 8);
        const bool ok = q_push64(&q, v);
        FUZZ_ASSERT(ok == (mcount < cap));
        if (ok) model_push(next_id++);
        if (n & 1) {
          const bool got = q_pop64(&q, &v);
          FUZZ_ASSERT(got == (mcount > 0));
          if (got) {
            const uint64_t id = model_pop();
            FUZZ_ASSERT_MSG(v == id, "pop_u64: %llu, expected %llu", (unsigned long long)v, (unsigned long long)id);
          }
        }
        break;
      }
      case 7: { /* move the indices near a wrap (only an empty queue) */
        static const uint64_t WRAPS[4] = {(1ull << 32) - 5, UINT64_MAX - 5, (1ull << 63) - 3, 12345};
        const uint64_t at = WRAPS[n % 4] - (n / 4) % 4;
        FUZZ_LOG("op %u: set_index %#llx", i, (unsigned long long)at);
        const aether_status st = q_set_index(&q, at);
        FUZZ_ASSERT_MSG(st == (mcount == 0 ? AETHER_OK : AETHER_ERR_BUSY), "set_index: %s with %zu items", aether_error_name(st), mcount);
        break;
      }
      case 8: { /* burst */
        if (mcount != 0 || elem < 8) break;
        const uint32_t producers = q.mpmc ? 2 : 1, count = (uint32_t)(n * 4 + 1);
        FUZZ_LOG("op %u: burst of %u producer(s) x %u items", i, producers, count);
        burst(&q, producers, count);
        break;
      }
      default: break;
    }
    uint64_t h, t;
    FUZZ_ASSERT(q_indices(&q, &h, &t) == AETHER_OK);
    FUZZ_ASSERT_MSG(h - t == mcount && q_size(&q) == mcount, "op %u: head - tail = %llu, size %zu, the model %zu", i,
                    (unsigned long long)(h - t), q_size(&q), mcount);
  }
  q_destroy(&q);
  FUZZ_LOG("done: no finding");
  return 0;
}
