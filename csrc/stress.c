/* stress.c: verified concurrent load on one structure, started by one call and watched through counters.
 *
 * Queues. Each item carries its producer's id and sequence number in its first min(elem_size, 8) bytes (id in
 * the high bits) and, past 8 bytes, a pattern derived from both, so a torn copy is caught. A consumer checks
 * every item: a known producer, the pattern, and per-producer order (SPSC: exactly the next sequence number;
 * MPMC: strictly increasing, when the sequence field has at least 32 bits). Producers count what they sent,
 * consumers what they received, per producer: count, sum of sequence numbers and sum of a hash of them; at the
 * end the two sides must agree exactly (a lost or duplicated item cannot hide).
 *
 * Pool and safe allocator. Each thread holds up to 64 blocks, each stamped with a tag unique to this owner
 * and this ownership (thread, counter) and a pattern filling the block. Before a block is freed or handed to
 * another thread the holder checks its stamp; a new block must be zero (pool) and aligned; blocks move between
 * threads through an exchange board of atomic slots (atomic exchange hands over ownership), so frees are
 * often cross-thread. A block given to two owners shows up as a stamp that changed under its owner, or as a
 * double free. At the end every block is freed: the pool must have nothing in use, the safe allocator no new
 * live allocation and no reported error.
 *
 * "do not use this as a benchmark": the checks cost more than the operations they check. */
#include "alloc_internal.h"
#include "pool_internal.h"
#include "queue_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AE_STRESS_MAX_THREADS 64
#define AE_STRESS_HOLD 64   /* blocks a pool/alloc thread holds at most */
#define AE_STRESS_BOARD 64  /* exchange slots */
#define AE_STRESS_BATCH 32  /* largest batch a queue thread moves with push_n/pop_n */
#define AE_STRESS_FLUSH 256 /* a thread adds its local op count to the shared one this often */

typedef struct per_producer {
  uint64_t count, sum, hsum;
} per_producer;

typedef struct stress_thread {
  struct aether_stress *s;
  pthread_t th;
  uint32_t index;
  bool started;
  uint64_t rng;
  uint64_t ops_local;
  per_producer *seen; /* consumers: what came from each producer */
  per_producer sent;  /* producers: what this one sent */
} stress_thread;

struct aether_stress {
  aether_stress_config cfg;
  uint32_t nthreads, nproducers;
  uint32_t idbits, seqbits;  /* item word layout */
  size_t word_bytes;         /* min(elem_size, 8) */
  bool bounded;              /* cfg.ops != 0: the threads share exactly cfg.ops operations, else run until stopped */
  aether_spsc *spsc;
  aether_mpmc *mpmc;
  aether_pool *pool;
  uint64_t pool_max;
  aether_memory_stats mem_before;
  uint64_t start_ns;
  _Atomic int stop;
  _Atomic uint32_t producers_done;
  _Atomic uint32_t running;
  _Atomic uint64_t ops, produced, max_depth, violations, exhausted, end_ns;
  pthread_mutex_t msg_lock;
  char message[512];
  _Atomic uintptr_t board[AE_STRESS_BOARD];
  stress_thread threads[AE_STRESS_MAX_THREADS];
};

/* ------------------------------------------------------------------------------------ helpers --- */
static inline uint64_t mix64(uint64_t x) { /* splitmix64's finalizer */
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
static inline uint64_t rng_next(uint64_t *s) { /* xorshift64* */
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1Dull;
}

static void violation(struct aether_stress *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void violation(struct aether_stress *s, const char *fmt, ...) {
  if (atomic_fetch_add_explicit(&s->violations, 1, memory_order_relaxed) == 0) {
    pthread_mutex_lock(&s->msg_lock);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->message, sizeof s->message, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&s->msg_lock);
  }
  atomic_store_explicit(&s->stop, 1, memory_order_relaxed); /* every thread winds down */
}

static inline bool stopped(const struct aether_stress *s) { return atomic_load_explicit(&s->stop, memory_order_relaxed) != 0; }

static inline void count_op(stress_thread *t, uint64_t n) {
  t->ops_local += n;
  if (t->ops_local >= AE_STRESS_FLUSH) {
    atomic_fetch_add_explicit(&t->s->ops, t->ops_local, memory_order_relaxed);
    t->ops_local = 0;
  }
}
static inline void flush_ops(stress_thread *t) {
  atomic_fetch_add_explicit(&t->s->ops, t->ops_local, memory_order_relaxed);
  t->ops_local = 0;
}
static inline uint64_t ops_so_far(const stress_thread *t) {
  return atomic_load_explicit(&t->s->ops, memory_order_relaxed) + t->ops_local;
}
/* Thread index's share of cfg.ops among k threads: the remainder goes one each to the first threads, so the
 * shares add up to cfg.ops exactly (a share may be 0). */
static uint64_t ops_share(const struct aether_stress *s, uint32_t index, uint32_t k) {
  return s->cfg.ops / k + (index < s->cfg.ops % k ? 1 : 0);
}

static void note_depth(struct aether_stress *s, uint64_t depth) {
  uint64_t m = atomic_load_explicit(&s->max_depth, memory_order_relaxed);
  while (depth > m && !atomic_compare_exchange_weak_explicit(&s->max_depth, &m, depth, memory_order_relaxed,
                                                             memory_order_relaxed)) {
  }
}
/* Oversubscribed threads (more threads than CPUs) must let the other side run when they cannot progress. */
static inline void backoff(uint32_t *spins) {
  if (++*spins >= 64) {
    *spins = 0;
    sched_yield();
  }
}

/* ---------------------------------------------------------------------------------- queue items --- */
static inline uint64_t seq_mask(const struct aether_stress *s) {
  return s->seqbits >= 64 ? UINT64_MAX : (1ull << s->seqbits) - 1;
}

static void item_write(const struct aether_stress *s, uint8_t *item, uint32_t id, uint64_t seq) {
  /* With one producer there are no id bits and seqbits is 64: shifting by 64 is undefined, not 0 (UBSan). */
  const uint64_t word = (s->idbits != 0 ? (uint64_t)id << s->seqbits : 0) | (seq & seq_mask(s));
  memcpy(item, &word, s->word_bytes); /* little-endian: the low bytes */
  if (s->cfg.elem_size > 8) {
    uint64_t x = mix64(((uint64_t)id << 56) ^ seq);
    for (size_t o = 8; o < s->cfg.elem_size; o += 8) {
      const size_t n = s->cfg.elem_size - o < 8 ? s->cfg.elem_size - o : 8;
      memcpy(item + o, &x, n);
      x += 0x9E3779B97F4A7C15ull;
    }
  }
}

/* Check one item at consumer t; returns false after recording a violation. */
static bool item_check(stress_thread *t, const uint8_t *item, uint64_t *last, bool *any) {
  struct aether_stress *s = t->s;
  uint64_t word = 0;
  memcpy(&word, item, s->word_bytes);
  const uint32_t id = s->idbits ? (uint32_t)(word >> s->seqbits) : 0;
  const uint64_t seq = word & seq_mask(s);
  const char *q = s->cfg.target == AETHER_STRESS_SPSC ? "spsc" : "mpmc";
  if (id >= s->nproducers) {
    violation(s, "%s: consumer %u got an item from unknown producer %u (word 0x%" PRIx64 ") after %" PRIu64 " ops", q,
              t->index, id, word, ops_so_far(t));
    return false;
  }
  uint64_t full = seq;
  if (s->cfg.target == AETHER_STRESS_SPSC) {
    const uint64_t want = any[id] ? last[id] + 1 : 0;
    if (seq != (want & seq_mask(s))) {
      const uint64_t ahead = (seq - want) & seq_mask(s);
      const char *what = any[id] && seq == (last[id] & seq_mask(s)) ? "duplicated"
                         : ahead < (seq_mask(s) >> 1) + 1        ? "skipped ahead: lost or reordered"
                                                                 : "went backwards: duplicated or reordered";
      char mod[32] = "";
      if (s->seqbits < 64) snprintf(mod, sizeof mod, " (mod 2^%u)", s->seqbits);
      violation(s, "spsc: FIFO order violated (%s): expected seq %" PRIu64 ", got %" PRIu64 "%s after %" PRIu64 " ops",
                what, want & seq_mask(s), seq, mod, ops_so_far(t));
      return false;
    }
    full = want;
  } else if (s->seqbits >= 32) {
    if (any[id]) {
      const uint64_t delta = (seq - last[id]) & seq_mask(s);
      if (delta == 0 || delta >= (1ull << (s->seqbits - 1))) {
        violation(s, "mpmc: per-producer order violated at consumer %u: producer %u's seq %" PRIu64 " came after seq %" PRIu64
                  " (%s) after %" PRIu64 " ops", t->index, id, seq, last[id] & seq_mask(s),
                  delta == 0 ? "duplicated" : "went backwards: reordered or duplicated", ops_so_far(t));
        return false;
      }
      full = last[id] + delta;
    }
  }
  if (s->cfg.elem_size > 8) {
    uint8_t want[AETHER_QUEUE_MAX_ELEM_SIZE];
    item_write(s, want, id, full);
    if (memcmp(want + 8, item + 8, s->cfg.elem_size - 8) != 0) {
      size_t o = 8;
      while (o < s->cfg.elem_size && want[o] == item[o]) o++;
      violation(s, "%s: item from producer %u seq %" PRIu64 " is damaged at byte %zu of %" PRIu64 " (torn copy) after %"
                PRIu64 " ops", q, id, full, o, s->cfg.elem_size, ops_so_far(t));
      return false;
    }
  }
  last[id] = full;
  any[id] = true;
  per_producer *pp = &t->seen[id];
  pp->count++;
  pp->sum += seq;
  pp->hsum += mix64(seq);
  return true;
}

/* ------------------------------------------------------------------------------ queue threads --- */
static size_t q_push_n(struct aether_stress *s, const uint8_t *items, size_t n, uint64_t r) {
  const bool spsc = s->cfg.target == AETHER_STRESS_SPSC;
  if (n > 1) return spsc ? aether_spsc_push_n(s->spsc, items, n) : aether_mpmc_push_n(s->mpmc, items, n);
  if (s->cfg.elem_size == 8 && (r & 1)) {
    uint64_t v;
    memcpy(&v, items, 8);
    return spsc ? aether_spsc_try_push_u64(s->spsc, v) : aether_mpmc_try_push_u64(s->mpmc, v);
  }
  return spsc ? aether_spsc_try_push(s->spsc, items) : aether_mpmc_try_push(s->mpmc, items);
}

static size_t q_pop_n(struct aether_stress *s, uint8_t *out, size_t n, uint64_t r) {
  const bool spsc = s->cfg.target == AETHER_STRESS_SPSC;
  if (n > 1) return spsc ? aether_spsc_pop_n(s->spsc, out, n) : aether_mpmc_pop_n(s->mpmc, out, n);
  if (s->cfg.elem_size == 8 && (r & 1)) {
    uint64_t v;
    const bool ok = spsc ? aether_spsc_try_pop_u64(s->spsc, &v) : aether_mpmc_try_pop_u64(s->mpmc, &v);
    if (ok) memcpy(out, &v, 8);
    return ok;
  }
  return spsc ? aether_spsc_try_pop(s->spsc, out) : aether_mpmc_try_pop(s->mpmc, out);
}

static size_t q_size(const struct aether_stress *s) {
  return s->cfg.target == AETHER_STRESS_SPSC ? aether_spsc_size(s->spsc) : aether_mpmc_size(s->mpmc);
}

static void account_sent(stress_thread *t, uint64_t seq) {
  const uint64_t v = seq & seq_mask(t->s);
  t->sent.count++;
  t->sent.sum += v;
  t->sent.hsum += mix64(v);
}

static void producer_main(stress_thread *t) {
  struct aether_stress *s = t->s;
  const size_t es = s->cfg.elem_size;
  uint8_t *buf = malloc(AE_STRESS_BATCH * es);
  if (buf == NULL) {
    violation(s, "producer %u: out of memory for its item buffer", t->index);
    atomic_fetch_add_explicit(&s->producers_done, 1, memory_order_release);
    return;
  }
  const uint64_t budget = ops_share(s, t->index, s->nproducers);
  const uint64_t fault_at = 1000;
  uint64_t seq = 0;
  uint32_t spins = 0;
  while (!stopped(s) && (!s->bounded || seq < budget)) {
    const uint64_t r = rng_next(&t->rng);
    size_t n = (r >> 8) % 4 == 0 ? 1 + (r >> 16) % AE_STRESS_BATCH : 1;
    if (s->bounded && n > budget - seq) n = (size_t)(budget - seq);
    uint64_t seqs[AE_STRESS_BATCH];
    size_t built = 0;
    for (uint64_t q = seq; q < seq + n; q++) {
      if (s->cfg.inject == AETHER_STRESS_INJECT_LOSE && q == fault_at) {
        account_sent(t, q); /* counted as sent, never pushed: the queue "lost" it */
        continue;
      }
      item_write(s, buf + built * es, t->index, q);
      seqs[built++] = q;
    }
    size_t done = 0;
    while (done < built && !stopped(s)) {
      const size_t m = q_push_n(s, buf + done * es, built - done, r >> 32);
      if (m == 0) {
        backoff(&spins);
        continue;
      }
      done += m;
      spins = 0;
    }
    if (s->cfg.inject == AETHER_STRESS_INJECT_DUPLICATE && done == built && seq <= fault_at && fault_at < seq + n) {
      /* the item fault_at goes in a second time, right after its batch, but counts once */
      const size_t at = (size_t)(fault_at - seq);
      while (!stopped(s) && q_push_n(s, buf + at * es, 1, 0) == 0) backoff(&spins);
    }
    for (size_t i = 0; i < done; i++) account_sent(t, seqs[i]); /* exactly what went in */
    atomic_fetch_add_explicit(&s->produced, done, memory_order_relaxed);
    if (done < built) break; /* stopped while the queue was full */
    seq += n;
    if ((seq & 255) < n || seq == n) note_depth(s, q_size(s)); /* the first push too: short runs see a depth */
  }
  note_depth(s, q_size(s));
  free(buf);
  /* release: a consumer that sees every producer done also sees every item they pushed */
  atomic_fetch_add_explicit(&s->producers_done, 1, memory_order_release);
}

static void consumer_main(stress_thread *t) {
  struct aether_stress *s = t->s;
  const size_t es = s->cfg.elem_size;
  uint8_t *buf = malloc(AE_STRESS_BATCH * es);
  uint64_t *last = calloc(s->nproducers, sizeof *last);
  bool *any = calloc(s->nproducers, sizeof *any);
  if (buf == NULL || last == NULL || any == NULL) {
    violation(s, "consumer %u: out of memory", t->index);
    goto out;
  }
  uint32_t spins = 0;
  uint64_t popped = 0;
  for (;;) {
    const uint64_t r = rng_next(&t->rng);
    const size_t want = (r >> 8) % 4 == 0 ? 1 + (r >> 16) % AE_STRESS_BATCH : 1;
    const size_t m = q_pop_n(s, buf, want, r >> 32);
    for (size_t i = 0; i < m; i++) {
      if (!item_check(t, buf + i * es, last, any)) goto out;
      count_op(t, 1);
    }
    if (m > 0) {
      popped += m;
      if ((popped & 255) < m || popped == m) { /* what the queue held before this pop, at most its capacity */
        const uint64_t d = q_size(s) + m;
        note_depth(s, d < s->cfg.capacity ? d : s->cfg.capacity);
      }
      spins = 0;
      continue;
    }
    if (atomic_load_explicit(&s->violations, memory_order_relaxed) != 0) break;
    /* Empty: done once every producer has finished and nothing is left (acquire pairs with their release). */
    if (atomic_load_explicit(&s->producers_done, memory_order_acquire) == s->nproducers) {
      if (q_pop_n(s, buf, 1, 0) == 1) { /* one last look: an item pushed just before the last "done" */
        if (!item_check(t, buf, last, any)) goto out;
        count_op(t, 1);
        continue;
      }
      break;
    }
    backoff(&spins);
  }
out:
  flush_ops(t);
  free(buf);
  free(last);
  free(any);
}

/* ----------------------------------------------------------------------- pool / alloc threads --- */
typedef struct held {
  uint8_t *p;
  size_t size;
  uint64_t tag;
} held;

/* The stamp: the tag in the first 8 bytes (as many as fit), then a pattern derived from the tag. */
static void stamp(uint8_t *p, size_t size, uint64_t tag) {
  memcpy(p, &tag, size < 8 ? size : 8);
  uint64_t x = mix64(tag);
  for (size_t o = 8; o < size; o += 8) {
    memcpy(p + o, &x, size - o < 8 ? size - o : 8);
    x += 0x9E3779B97F4A7C15ull;
  }
}
/* First byte that differs from the stamp of tag, or size if none. */
static size_t stamp_damage(const uint8_t *p, size_t size, uint64_t tag) {
  uint8_t want[64];
  size_t o = 0;
  while (o < size) {
    const size_t n = size - o < sizeof want ? size - o : sizeof want;
    if (o == 0) {
      stamp(want, n, tag);
    } else {
      uint64_t x = mix64(tag) + ((o - 8) / 8) * 0x9E3779B97F4A7C15ull; /* o is a multiple of 64 here */
      for (size_t k = 0; k < n; k += 8) {
        memcpy(want + k, &x, n - k < 8 ? n - k : 8);
        x += 0x9E3779B97F4A7C15ull;
      }
    }
    if (memcmp(p + o, want, n) != 0) {
      for (size_t k = 0; k < n; k++)
        if (p[o + k] != want[k]) return o + k;
    }
    o += n;
  }
  return size;
}
static uint64_t read_tag(const uint8_t *p, size_t size) {
  uint64_t tag = 0;
  memcpy(&tag, p, size < 8 ? size : 8);
  return tag;
}

static const char *target_name(uint32_t target) {
  static const char *const names[] = {"spsc", "mpmc", "pool", "alloc"};
  return target < 4 ? names[target] : "?";
}

static size_t block_size_of(struct aether_stress *s, const uint8_t *p) {
  return s->cfg.target == AETHER_STRESS_POOL ? s->cfg.elem_size : aether_safe_usable_size(p);
}

/* Verify a block its holder is about to free or hand on. */
static bool verify_held(stress_thread *t, const held *h, const char *when) {
  const size_t at = stamp_damage(h->p, h->size, h->tag);
  if (at == h->size) return true;
  violation(t->s, "%s: block %p (%zu bytes) owned by thread %u changed under its owner: byte %zu differs from its "
            "stamp (found tag 0x%" PRIx64 ", expected 0x%" PRIx64 ") %s, after %" PRIu64 " ops: handed to two owners?",
            target_name(t->s->cfg.target), (void *)h->p, h->size, t->index, at, read_tag(h->p, h->size), h->tag, when,
            ops_so_far(t));
  return false;
}

static bool block_release(stress_thread *t, held *h) {
  struct aether_stress *s = t->s;
  if (s->cfg.target == AETHER_STRESS_POOL) {
    const int rc = aether_pool_free(s->pool, h->p);
    if (rc != AETHER_OK) {
      violation(s, "pool: aether_pool_free(%p) by thread %u failed with %s (%s) after %" PRIu64 " ops", (void *)h->p,
                t->index, aether_error_name(rc), aether_last_error(), ops_so_far(t));
      return false;
    }
  } else {
    aether_safe_free(h->p);
  }
  return true;
}

static bool block_new(stress_thread *t, held *h, uint64_t r, uint64_t tag) {
  struct aether_stress *s = t->s;
  if (s->cfg.target == AETHER_STRESS_POOL) {
    uint8_t *p = aether_pool_alloc(s->pool);
    if (p == NULL) {
      if (aether_last_status() == AETHER_ERR_LIMIT_REACHED) {
        atomic_fetch_add_explicit(&s->exhausted, 1, memory_order_relaxed);
        return false;
      }
      violation(s, "pool: aether_pool_alloc failed with %s (%s) after %" PRIu64 " ops", aether_error_name(aether_last_status()),
                aether_last_error(), ops_so_far(t));
      return false;
    }
    const size_t size = s->cfg.elem_size;
    if (((uintptr_t)p & 63) != 0) {
      violation(s, "pool: aether_pool_alloc returned %p, not 64-aligned, after %" PRIu64 " ops", (void *)p, ops_so_far(t));
      return false;
    }
    for (size_t i = 0; i < size; i++)
      if (p[i] != 0) {
        violation(s, "pool: new block %p is not zeroed: byte %zu is 0x%02x (tag 0x%" PRIx64 " there: still owned by "
                  "someone?) after %" PRIu64 " ops", (void *)p, i, p[i], read_tag(p, size), ops_so_far(t));
        return false;
      }
    *h = (held){p, size, tag};
  } else {
    const size_t size = 1 + (size_t)((r >> 20) % s->cfg.elem_size);
    const bool zeroed = (r >> 12) % 8 == 0;
    uint8_t *p = zeroed ? aether_safe_calloc(1, size) : aether_safe_malloc(size);
    if (p == NULL) {
      violation(s, "alloc: aether_safe_%s(%zu) returned NULL after %" PRIu64 " ops", zeroed ? "calloc" : "malloc", size,
                ops_so_far(t));
      return false;
    }
    if (((uintptr_t)p & 15) != 0) {
      violation(s, "alloc: %p is not 16-aligned after %" PRIu64 " ops", (void *)p, ops_so_far(t));
      return false;
    }
    if (zeroed)
      for (size_t i = 0; i < size; i++)
        if (p[i] != 0) {
          violation(s, "alloc: aether_safe_calloc block %p is not zeroed at byte %zu after %" PRIu64 " ops", (void *)p, i,
                    ops_so_far(t));
          return false;
        }
    *h = (held){p, size, tag};
  }
  stamp(h->p, h->size, h->tag);
  return true;
}

/* Take the first block found on the board (verifying its previous owner's stamp, then stamping it ours).
 * false if the board is empty or a violation was found. */
static bool take_from_board(stress_thread *t, held *h, uint64_t tag) {
  struct aether_stress *s = t->s;
  for (uint32_t i = 0; i < AE_STRESS_BOARD; i++) {
    const uintptr_t got = atomic_exchange_explicit(&s->board[i], 0, memory_order_acq_rel);
    if (got == 0) continue;
    uint8_t *p = (uint8_t *)got;
    const size_t size = block_size_of(s, p);
    if (size == 0) {
      violation(s, "alloc: block %p taken from the exchange board is not a live allocation after %" PRIu64 " ops",
                (void *)p, ops_so_far(t));
      return false;
    }
    const uint64_t prev = read_tag(p, size);
    const size_t at = stamp_damage(p, size, prev);
    if (at != size) {
      violation(s, "%s: block %p taken over by thread %u does not carry its previous owner's stamp (tag 0x%" PRIx64
                "): byte %zu differs, after %" PRIu64 " ops: handed to two owners?", target_name(s->cfg.target),
                (void *)p, t->index, prev, at, ops_so_far(t));
      return false;
    }
    *h = (held){p, size, tag};
    stamp(p, size, tag);
    return true;
  }
  return false;
}

static void owner_main(stress_thread *t) {
  struct aether_stress *s = t->s;
  held hold[AE_STRESS_HOLD];
  uint32_t n = 0;
  uint64_t counter = 0;
  bool injected = false;
  const uint64_t budget = ops_share(s, t->index, s->nthreads);
  uint64_t done = 0;
  while (!stopped(s) && (!s->bounded || done < budget)) {
    const uint64_t r = rng_next(&t->rng);
    const uint64_t tag = ((uint64_t)(t->index + 1) << 48) | (++counter & 0xFFFFFFFFFFFFull);
    const uint32_t action = (uint32_t)(r % 16);
    if (n == 0 || (action < 7 && n < AE_STRESS_HOLD)) { /* allocate */
      if (block_new(t, &hold[n], r, tag)) {
        n++;
        atomic_fetch_add_explicit(&s->produced, 1, memory_order_relaxed);
      } else if (stopped(s)) {
        break;
      } else if (n == 0) {
        /* Exhausted and holding nothing: the blocks may all sit on the board. Take one from there. */
        if (!take_from_board(t, &hold[0], tag)) {
          if (stopped(s)) break;
          sched_yield(); /* held by the others: let them free */
          continue;
        }
        n = 1;
      } else {
        sched_yield();
      }
    } else if (action < 12) { /* free one */
      const uint32_t i = (uint32_t)((r >> 8) % n);
      if (!verify_held(t, &hold[i], "before its free") || !block_release(t, &hold[i])) break;
      hold[i] = hold[--n];
    } else if (action < 14 && s->cfg.target == AETHER_STRESS_ALLOC) { /* realloc: the contents must survive */
      const uint32_t i = (uint32_t)((r >> 8) % n);
      if (!verify_held(t, &hold[i], "before its realloc")) break;
      const size_t size = 1 + (size_t)((r >> 24) % s->cfg.elem_size);
      uint8_t *q = aether_safe_realloc(hold[i].p, size);
      if (q == NULL) {
        violation(s, "alloc: aether_safe_realloc(%p, %zu) returned NULL after %" PRIu64 " ops", (void *)hold[i].p, size,
                  ops_so_far(t));
        break;
      }
      const size_t keep = size < hold[i].size ? size : hold[i].size;
      const size_t at = stamp_damage(q, keep, hold[i].tag);
      if (at != keep) {
        violation(s, "alloc: aether_safe_realloc(%p -> %p, %zu -> %zu bytes) lost the contents at byte %zu after %" PRIu64
                  " ops", (void *)hold[i].p, (void *)q, hold[i].size, size, at, ops_so_far(t));
        break;
      }
      hold[i] = (held){q, size, tag};
      stamp(q, size, tag);
    } else { /* hand one to another thread through the board, take whatever was there */
      const uint32_t i = (uint32_t)((r >> 8) % n);
      if (!verify_held(t, &hold[i], "before it was handed on")) break;
      const uint32_t slot = (uint32_t)((r >> 32) % AE_STRESS_BOARD);
      /* acq_rel: our stamp is visible to the taker; the previous owner's stamp is visible to us */
      const uintptr_t got = atomic_exchange_explicit(&s->board[slot], (uintptr_t)hold[i].p, memory_order_acq_rel);
      const bool share = s->cfg.inject == AETHER_STRESS_INJECT_SHARE && !injected && done >= 1000;
      if (share) injected = true; /* keep the block we just handed on: now it has two owners */
      else hold[i] = hold[--n];
      if (got != 0) {
        uint8_t *p = (uint8_t *)got;
        const size_t size = block_size_of(s, p);
        if (size == 0) {
          violation(s, "alloc: block %p taken from the exchange board is not a live allocation after %" PRIu64 " ops",
                    (void *)p, ops_so_far(t));
          break;
        }
        const uint64_t prev = read_tag(p, size);
        const size_t at = stamp_damage(p, size, prev);
        if (at != size) {
          violation(s, "%s: block %p taken over by thread %u does not carry its previous owner's stamp (tag 0x%" PRIx64
                    "): byte %zu differs, after %" PRIu64 " ops: handed to two owners?", target_name(s->cfg.target),
                    (void *)p, t->index, prev, at, ops_so_far(t));
          break;
        }
        if (n == AE_STRESS_HOLD) { /* only possible after an injected share: free it */
          held tmp = {p, size, prev};
          if (!block_release(t, &tmp)) break;
        } else {
          hold[n] = (held){p, size, tag};
          stamp(p, size, tag);
          n++;
        }
      }
    }
    done++;
    count_op(t, 1);
    /* depth: blocks in use in the pool, live allocations added by the run; often at first, so short runs see it */
    if ((done & (done < 1024 ? 15 : 1023)) == 0 || done == budget) {
      if (s->cfg.target == AETHER_STRESS_POOL) {
        aether_pool_info st;
        if (aether_pool_stats(s->pool, &st) == AETHER_OK) note_depth(s, st.in_use);
      } else {
        aether_memory_stats st;
        if (aether_memory_get_stats(&st) == AETHER_OK && st.live_count > s->mem_before.live_count)
          note_depth(s, st.live_count - s->mem_before.live_count);
      }
    }
  }
  /* Wind down: check and free everything still held (not counted: ops are the budget's operations). */
  for (uint32_t i = 0; i < n; i++) {
    if (atomic_load_explicit(&s->violations, memory_order_relaxed) != 0) break;
    if (!verify_held(t, &hold[i], "at the end") || !block_release(t, &hold[i])) break;
  }
  flush_ops(t);
}

/* --------------------------------------------------------------------------------- the runner --- */
static void *thread_main(void *arg) {
  stress_thread *t = arg;
  struct aether_stress *s = t->s;
  switch (s->cfg.target) {
    case AETHER_STRESS_SPSC:
    case AETHER_STRESS_MPMC:
      if (t->index < s->nproducers) producer_main(t);
      else consumer_main(t);
      break;
    default:
      owner_main(t);
  }
  if (atomic_fetch_sub_explicit(&s->running, 1, memory_order_acq_rel) == 1)
    atomic_store_explicit(&s->end_ns, _ae_now_ns(), memory_order_release);
  return NULL;
}

static aether_stress *stress_fail(struct aether_stress *s) {
  if (s != NULL) {
    aether_spsc_destroy(s->spsc);
    aether_mpmc_destroy(s->mpmc);
    if (s->pool) _ae_pool_destroy_quiet(s->pool); /* after a violation threads leave blocks behind */
    for (uint32_t i = 0; i < AE_STRESS_MAX_THREADS; i++) free(s->threads[i].seen);
    pthread_mutex_destroy(&s->msg_lock);
    free(s);
  }
  return NULL;
}

aether_stress *aether_stress_start(const aether_stress_config *config) {
#define AE_STRESS_FAIL(st, ...) \
  do {                          \
    _ae_fail(st, __VA_ARGS__);  \
    return stress_fail(s);      \
  } while (0)
  struct aether_stress *s = NULL;
  if (config == NULL) AE_STRESS_FAIL(AETHER_ERR_INVALID_ARGUMENT, "aether_stress_start: config is NULL");
  const aether_stress_config c = *config;
  if (c.target > AETHER_STRESS_ALLOC)
    AE_STRESS_FAIL(AETHER_ERR_INVALID_ARGUMENT, "aether_stress_start: target %u is not one of AETHER_STRESS_*", c.target);
  if (c.inject > AETHER_STRESS_INJECT_SHARE)
    AE_STRESS_FAIL(AETHER_ERR_INVALID_ARGUMENT, "aether_stress_start: inject %u is not one of AETHER_STRESS_INJECT_*", c.inject);
  const bool queue = c.target <= AETHER_STRESS_MPMC;
  if (queue && c.inject == AETHER_STRESS_INJECT_SHARE)
    AE_STRESS_FAIL(AETHER_ERR_INVALID_ARGUMENT, "aether_stress_start: the share fault applies to pool and alloc only");
  if (!queue && (c.inject == AETHER_STRESS_INJECT_LOSE || c.inject == AETHER_STRESS_INJECT_DUPLICATE))
    AE_STRESS_FAIL(AETHER_ERR_INVALID_ARGUMENT, "aether_stress_start: the lose and duplicate faults apply to queues only");
  if (c.target == AETHER_STRESS_SPSC && (c.producers != 1 || c.consumers != 1))
    AE_STRESS_FAIL(AETHER_ERR_INVALID_ARGUMENT, "aether_stress_start: spsc takes exactly 1 producer and 1 consumer "
                   "(got %u and %u)", c.producers, c.consumers);
  const uint32_t n = queue ? c.producers + c.consumers : c.producers;
  if (c.producers == 0 || (queue && c.consumers == 0) || n > AE_STRESS_MAX_THREADS)
    AE_STRESS_FAIL(AETHER_ERR_OUT_OF_RANGE, "aether_stress_start: %u thread(s) is not in [%u, %u]", n, queue ? 2u : 1u,
                   AE_STRESS_MAX_THREADS);
  if (queue) {
    if (_ae_queue_check_args("aether_stress_start", c.capacity, c.elem_size) != AETHER_OK) return NULL;
  } else if (c.target == AETHER_STRESS_POOL) {
    if (c.elem_size < 1 || c.elem_size > (1u << 20))
      AE_STRESS_FAIL(AETHER_ERR_OUT_OF_RANGE, "aether_stress_start: pool block size %" PRIu64 " is not in [1, 2^20]", c.elem_size);
  } else if (c.elem_size < 1 || c.elem_size > (1u << 24)) {
    AE_STRESS_FAIL(AETHER_ERR_OUT_OF_RANGE, "aether_stress_start: largest alloc size %" PRIu64 " is not in [1, 2^24]", c.elem_size);
  }

  s = calloc(1, sizeof *s);
  if (s == NULL) AE_STRESS_FAIL(AETHER_ERR_OUT_OF_MEMORY, "aether_stress_start: no memory");
  pthread_mutex_init(&s->msg_lock, NULL);
  s->cfg = c;
  s->nthreads = n;
  s->nproducers = c.producers;
  s->bounded = c.ops != 0;
  if (queue) {
    s->word_bytes = c.elem_size < 8 ? c.elem_size : 8;
    s->idbits = c.producers <= 1 ? 0 : 64 - (uint32_t)__builtin_clzll((uint64_t)c.producers - 1);
    if (s->idbits >= 8 * s->word_bytes)
      AE_STRESS_FAIL(AETHER_ERR_OUT_OF_RANGE, "aether_stress_start: %u producers do not fit in %zu-byte items", c.producers,
                     s->word_bytes);
    s->seqbits = 8 * (uint32_t)s->word_bytes - s->idbits;
    if (c.target == AETHER_STRESS_SPSC) s->spsc = aether_spsc_create(c.capacity, c.elem_size);
    else s->mpmc = aether_mpmc_create(c.capacity, c.elem_size);
    if (s->spsc == NULL && s->mpmc == NULL) return stress_fail(s);
  } else if (c.target == AETHER_STRESS_POOL) {
    s->pool_max = c.capacity ? c.capacity : 64ull * n;
    s->pool = aether_pool_create(c.elem_size, 64, s->pool_max / 4, s->pool_max);
    if (s->pool == NULL) return stress_fail(s);
  } else {
    aether_memory_init();
    aether_memory_get_stats(&s->mem_before);
  }
  atomic_store_explicit(&s->running, n, memory_order_relaxed);
  s->start_ns = _ae_now_ns();
  for (uint32_t i = 0; i < n; i++) {
    stress_thread *t = &s->threads[i];
    t->s = s;
    t->index = i;
    t->rng = mix64(c.seed ^ ((uint64_t)(i + 1) << 32)) | 1;
    if (queue && i >= c.producers) {
      t->seen = calloc(c.producers, sizeof(per_producer));
      if (t->seen == NULL) {
        violation(s, "stress: out of memory for consumer %u", i);
        atomic_fetch_sub_explicit(&s->running, n - i, memory_order_relaxed);
        break;
      }
    }
    if (pthread_create(&t->th, NULL, thread_main, t) != 0) {
      violation(s, "stress: could not start thread %u of %u", i + 1, n);
      atomic_fetch_sub_explicit(&s->running, n - i, memory_order_relaxed);
      if (queue && i < c.producers) atomic_fetch_add_explicit(&s->producers_done, c.producers - i, memory_order_release);
      break;
    }
    t->started = true;
  }
  return s;
#undef AE_STRESS_FAIL
}

void aether_stress_stop(aether_stress *s) {
  if (s != NULL) atomic_store_explicit(&s->stop, 1, memory_order_relaxed);
}

aether_status aether_stress_poll(const aether_stress *cs, aether_stress_progress *out) {
  AE_RETURN_ERROR_IF(cs == NULL || out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_stress_poll: NULL argument");
  struct aether_stress *s = (struct aether_stress *)cs;
  out->ops = atomic_load_explicit(&s->ops, memory_order_relaxed);
  out->produced = atomic_load_explicit(&s->produced, memory_order_relaxed);
  out->max_depth = atomic_load_explicit(&s->max_depth, memory_order_relaxed);
  out->violations = atomic_load_explicit(&s->violations, memory_order_relaxed);
  out->running = atomic_load_explicit(&s->running, memory_order_acquire);
  out->finished = out->running == 0;
  const uint64_t end = atomic_load_explicit(&s->end_ns, memory_order_acquire);
  out->elapsed_ns = (out->finished && end ? end : _ae_now_ns()) - s->start_ns;
  return AETHER_OK;
}

/* The end-of-run checks that need every thread joined. */
static void final_checks(struct aether_stress *s) {
  if (atomic_load_explicit(&s->violations, memory_order_relaxed) != 0) return;
  const char *q = target_name(s->cfg.target);
  if (s->cfg.target <= AETHER_STRESS_MPMC) {
    for (uint32_t p = 0; p < s->nproducers; p++) {
      per_producer got = {0};
      for (uint32_t c = s->nproducers; c < s->nthreads; c++) {
        const per_producer *x = &s->threads[c].seen[p];
        got.count += x->count, got.sum += x->sum, got.hsum += x->hsum;
      }
      const per_producer *sent = &s->threads[p].sent;
      if (got.count != sent->count) {
        violation(s, "%s: producer %u sent %" PRIu64 " items but %" PRIu64 " were received (%s) after %" PRIu64 " ops", q,
                  p, sent->count, got.count, got.count < sent->count ? "lost" : "duplicated",
                  atomic_load_explicit(&s->ops, memory_order_relaxed));
        return;
      }
      if (got.sum != sent->sum || got.hsum != sent->hsum) {
        violation(s, "%s: producer %u's checksum differs: sent sum %" PRIu64 " / hash %016" PRIx64 ", received %" PRIu64
                  " / %016" PRIx64 " (items lost and duplicated) after %" PRIu64 " ops", q, p, sent->sum, sent->hsum,
                  got.sum, got.hsum, atomic_load_explicit(&s->ops, memory_order_relaxed));
        return;
      }
    }
    const size_t left = q_size(s);
    if (left != 0) violation(s, "%s: %zu item(s) left in the queue after every consumer finished", q, left);
    return;
  }
  /* pool / alloc: take back what is left on the board, checking its stamp, then count what is still out */
  for (uint32_t i = 0; i < AE_STRESS_BOARD; i++) {
    uint8_t *p = (uint8_t *)atomic_exchange_explicit(&s->board[i], 0, memory_order_acquire);
    if (p == NULL) continue;
    const size_t size = block_size_of(s, p);
    held h = {p, size, read_tag(p, size)};
    if (size == 0) {
      violation(s, "alloc: block %p left on the exchange board is no longer allocated (freed by another owner?)", (void *)p);
      return;
    }
    stress_thread main_thread = {.s = s, .index = s->nthreads};
    if (!verify_held(&main_thread, &h, "left on the board at the end") || !block_release(&main_thread, &h)) return;
  }
  if (s->cfg.target == AETHER_STRESS_POOL) {
    aether_pool_info st;
    aether_pool_stats(s->pool, &st);
    if (st.double_frees || st.invalid_frees || st.corrupted)
      violation(s, "pool: %" PRIu64 " double free(s), %" PRIu64 " invalid free(s), %" PRIu64 " corrupted header(s) "
                "reported during the run", st.double_frees, st.invalid_frees, st.corrupted);
    else if (st.in_use != 0)
      violation(s, "pool: %" PRIu64 " block(s) still in use after every thread freed what it held (leak)", st.in_use);
    else if (st.total_blocks > s->pool_max)
      violation(s, "pool: %" PRIu64 " blocks mapped, more than max_blocks %" PRIu64, st.total_blocks, s->pool_max);
    return;
  }
  aether_memory_stats after;
  aether_memory_get_stats(&after);
  uint64_t errors = 0;
  for (int k = 0; k < AETHER_MEM_ERROR_KINDS; k++) errors += after.errors[k] - s->mem_before.errors[k];
  if (errors != 0) {
    int worst = 0;
    for (int k = 1; k < AETHER_MEM_ERROR_KINDS; k++)
      if (after.errors[k] - s->mem_before.errors[k] > after.errors[worst] - s->mem_before.errors[worst]) worst = k;
    violation(s, "alloc: the safe allocator reported %" PRIu64 " memory error(s) during the run (mostly %s)", errors,
              aether_memory_error_kind_name(worst));
  } else if (after.live_count != s->mem_before.live_count) {
    violation(s, "alloc: %" PRId64 " allocation(s) leaked: %" PRIu64 " live before the run, %" PRIu64 " after",
              (int64_t)(after.live_count - s->mem_before.live_count), s->mem_before.live_count, after.live_count);
  }
}

int64_t aether_stress_finish(aether_stress *s, aether_stress_progress *out, char *message, size_t len) {
  AE_RETURN_ERROR_IF(s == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_stress_finish: NULL stress");
  for (uint32_t i = 0; i < s->nthreads; i++)
    if (s->threads[i].started) pthread_join(s->threads[i].th, NULL);
  if (atomic_load_explicit(&s->end_ns, memory_order_relaxed) == 0) atomic_store_explicit(&s->end_ns, _ae_now_ns(), memory_order_relaxed);
  final_checks(s);
  aether_stress_progress p;
  aether_stress_poll(s, &p);
  p.finished = 1;
  if (out != NULL) *out = p;
  if (message != NULL && len > 0) snprintf(message, len, "%s", s->message);
  const int64_t v = (int64_t)p.violations;
  stress_fail(s);
  return v;
}
