/* queue_internal.h: the layout of aether_spsc and aether_mpmc and their fast paths, inline, so that the
 * exported functions (spsc.c, mpmc.c), the benchmark loops and the stress threads run the same code.
 *
 * SPSC (after rigtorp's SPSCQueue). A ring of capacity slots and two 64-bit indices: head (next slot to write,
 * written only by the producer) and tail (next slot to read, written only by the consumer); the queue holds
 * head - tail items, and slot i is buf[i & mask]. The producer writes the item, then publishes it with a
 * release store of head+1; the consumer's acquire load of head therefore happens-before its read of the item
 * (the specification's "write-before-release" and "acquire-before-read"). Symmetrically the consumer's release
 * store of tail tells the producer a slot may be overwritten. Each side keeps a private copy of the other
 * side's index and reloads it only when the copy says full/empty, so in the steady state a side touches the
 * other's cache line once per many items instead of once per item.
 *
 * MPMC (Dmitry Vyukov's bounded queue, as the specification shows). Each cell carries a sequence number. A
 * cell at position p is free for the producer that claims p when seq == p, and holds p's item when
 * seq == p + 1. A producer reads enqueue_pos, checks the cell's seq (acquire), claims p with a CAS on
 * enqueue_pos, copies the item and publishes it with a release store seq = p + 1; a consumer does the same on
 * dequeue_pos, copies the item out and frees the cell for the next lap with a release store
 * seq = p + capacity. The CAS hands each position to exactly one thread, and the acquire/release pairs on
 * seq order the data copies, so nothing is lost, duplicated or torn. seq - p is compared as a signed 64-bit
 * difference, which stays right across the 2^64 wrap.
 */
#ifndef AETHER_QUEUE_INTERNAL_H
#define AETHER_QUEUE_INTERNAL_H

#include "internal.h"

#include <stdbool.h>
#include <string.h>

/* Two cache lines between indices that different threads write: AMD and Intel prefetch 64-byte lines in
 * pairs, so lines 64 bytes apart still ping-pong (folly's hardware_destructive_interference_size is 128). */
#define AE_QUEUE_PAD 128

struct aether_spsc {
  /* Read-only after create: shared by both sides without contention. */
  uint8_t *buf;
  uint64_t mask;
  uint64_t capacity;
  size_t elem_size;
  size_t map_len;
  /* The producer's line: its index and its copy of the consumer's. */
  _Alignas(AE_QUEUE_PAD) _Atomic uint64_t head;
  uint64_t tail_cache;
  /* The consumer's line. */
  _Alignas(AE_QUEUE_PAD) _Atomic uint64_t tail;
  uint64_t head_cache;
  /* Keeps buf (which follows the struct) off the consumer's line. */
  _Alignas(AE_QUEUE_PAD) uint8_t end[];
};

struct aether_mpmc {
  uint8_t *cells;
  uint64_t mask;
  uint64_t capacity;
  size_t elem_size;
  size_t cell_size; /* 8-byte seq + item: 16, 32, or whole cache lines (mpmc.c) */
  size_t map_len;
  _Alignas(AE_QUEUE_PAD) _Atomic uint64_t enqueue_pos;
  _Alignas(AE_QUEUE_PAD) _Atomic uint64_t dequeue_pos;
  _Alignas(AE_QUEUE_PAD) uint8_t end[];
};

typedef struct ae_cell {
  _Atomic uint64_t seq;
  uint8_t data[]; /* 8-aligned */
} ae_cell;

/* -------------------------------------------------------------------------------------------- SPSC --- */
static inline uint8_t *_ae_spsc_slot(const aether_spsc *q, uint64_t i) { return q->buf + (i & q->mask) * q->elem_size; }

/* Free slots as the producer sees them, refreshing its copy of tail only when the copy says fewer than want. */
static inline uint64_t _ae_spsc_room(aether_spsc *q, uint64_t head, uint64_t want) {
  uint64_t room = q->capacity - (head - q->tail_cache);
  if (room < want) {
    q->tail_cache = atomic_load_explicit(&q->tail, memory_order_acquire); /* pairs with the consumer's release */
    room = q->capacity - (head - q->tail_cache);
  }
  return room;
}

/* Items available as the consumer sees them, refreshing its copy of head only when the copy says fewer. */
static inline uint64_t _ae_spsc_avail(aether_spsc *q, uint64_t tail, uint64_t want) {
  uint64_t avail = q->head_cache - tail;
  if (avail < want) {
    q->head_cache = atomic_load_explicit(&q->head, memory_order_acquire); /* pairs with the producer's release */
    avail = q->head_cache - tail;
  }
  return avail;
}

static inline bool _ae_spsc_push(aether_spsc *q, const void *item) {
  const uint64_t head = atomic_load_explicit(&q->head, memory_order_relaxed); /* only this thread writes it */
  if (AE_UNLIKELY(_ae_spsc_room(q, head, 1) == 0)) return false;
  memcpy(_ae_spsc_slot(q, head), item, q->elem_size);
  atomic_store_explicit(&q->head, head + 1, memory_order_release); /* publishes the item */
  return true;
}

static inline bool _ae_spsc_pop(aether_spsc *q, void *out) {
  const uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
  if (AE_UNLIKELY(_ae_spsc_avail(q, tail, 1) == 0)) return false;
  memcpy(out, _ae_spsc_slot(q, tail), q->elem_size);
  atomic_store_explicit(&q->tail, tail + 1, memory_order_release); /* gives the slot back */
  return true;
}

static inline bool _ae_spsc_push_u64(aether_spsc *q, uint64_t v) {
  const uint64_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
  if (AE_UNLIKELY(_ae_spsc_room(q, head, 1) == 0)) return false;
  memcpy(q->buf + (head & q->mask) * 8, &v, 8);
  atomic_store_explicit(&q->head, head + 1, memory_order_release);
  return true;
}

static inline bool _ae_spsc_pop_u64(aether_spsc *q, uint64_t *out) {
  const uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
  if (AE_UNLIKELY(_ae_spsc_avail(q, tail, 1) == 0)) return false;
  memcpy(out, q->buf + (tail & q->mask) * 8, 8);
  atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
  return true;
}

/* Copy k items between a flat buffer and the ring starting at index i: at most two memcpys (the wrap). */
static inline void _ae_spsc_copy_in(aether_spsc *q, uint64_t i, const uint8_t *src, uint64_t k) {
  const uint64_t first = i & q->mask, part = k < q->capacity - first ? k : q->capacity - first;
  memcpy(q->buf + first * q->elem_size, src, part * q->elem_size);
  if (k > part) memcpy(q->buf, src + part * q->elem_size, (k - part) * q->elem_size);
}
static inline void _ae_spsc_copy_out(aether_spsc *q, uint64_t i, uint8_t *dst, uint64_t k) {
  const uint64_t first = i & q->mask, part = k < q->capacity - first ? k : q->capacity - first;
  memcpy(dst, q->buf + first * q->elem_size, part * q->elem_size);
  if (k > part) memcpy(dst + part * q->elem_size, q->buf, (k - part) * q->elem_size);
}

static inline size_t _ae_spsc_push_n(aether_spsc *q, const void *items, size_t n) {
  const uint64_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
  const uint64_t room = _ae_spsc_room(q, head, n);
  const uint64_t k = n < room ? n : room;
  if (k == 0) return 0;
  _ae_spsc_copy_in(q, head, items, k);
  atomic_store_explicit(&q->head, head + k, memory_order_release); /* publishes all k at once */
  return k;
}

static inline size_t _ae_spsc_pop_n(aether_spsc *q, void *out, size_t n) {
  const uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
  const uint64_t avail = _ae_spsc_avail(q, tail, n);
  const uint64_t k = n < avail ? n : avail;
  if (k == 0) return 0;
  _ae_spsc_copy_out(q, tail, out, k);
  atomic_store_explicit(&q->tail, tail + k, memory_order_release);
  return k;
}

static inline size_t _ae_spsc_size(const aether_spsc *q) {
  /* tail first: head only grows, so head - tail cannot go negative. */
  const uint64_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
  const uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
  const uint64_t n = head - tail;
  return n > q->capacity ? q->capacity : n;
}

/* -------------------------------------------------------------------------------------------- MPMC --- */
/* Position p's cell. */
static inline ae_cell *_ae_mpmc_cell(const aether_mpmc *q, uint64_t p) {
  return (ae_cell *)(q->cells + (p & q->mask) * q->cell_size);
}

/* Claim one position on pos (enqueue_pos with ready_offset 0, dequeue_pos with 1); NULL if full/empty. */
static inline ae_cell *_ae_mpmc_claim(aether_mpmc *q, _Atomic uint64_t *pos_var, uint64_t ready_offset,
                                      uint64_t *pos_out) {
  uint64_t pos = atomic_load_explicit(pos_var, memory_order_relaxed);
  for (;;) {
    ae_cell *c = _ae_mpmc_cell(q, pos);
    const uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire); /* pairs with the last release */
    const int64_t dif = (int64_t)(seq - (pos + ready_offset));
    if (dif == 0) {
      /* Relaxed is enough: the cell's seq, not the position, carries the data's ordering. */
      if (atomic_compare_exchange_weak_explicit(pos_var, &pos, pos + 1, memory_order_relaxed, memory_order_relaxed)) {
        *pos_out = pos;
        return c;
      }
    } else if (dif < 0) {
      return NULL; /* the cell still holds last lap's item (push) / not yet this lap's (pop) */
    } else {
      pos = atomic_load_explicit(pos_var, memory_order_relaxed); /* another thread took pos: catch up */
    }
  }
}

static inline bool _ae_mpmc_push(aether_mpmc *q, const void *item) {
  uint64_t pos;
  ae_cell *c = _ae_mpmc_claim(q, &q->enqueue_pos, 0, &pos);
  if (AE_UNLIKELY(c == NULL)) return false;
  memcpy(c->data, item, q->elem_size);
  atomic_store_explicit(&c->seq, pos + 1, memory_order_release); /* publishes the item */
  return true;
}

static inline bool _ae_mpmc_pop(aether_mpmc *q, void *out) {
  uint64_t pos;
  ae_cell *c = _ae_mpmc_claim(q, &q->dequeue_pos, 1, &pos);
  if (AE_UNLIKELY(c == NULL)) return false;
  memcpy(out, c->data, q->elem_size);
  atomic_store_explicit(&c->seq, pos + q->capacity, memory_order_release); /* frees the cell for next lap */
  return true;
}

static inline bool _ae_mpmc_push_u64(aether_mpmc *q, uint64_t v) {
  uint64_t pos;
  ae_cell *c = _ae_mpmc_claim(q, &q->enqueue_pos, 0, &pos);
  if (AE_UNLIKELY(c == NULL)) return false;
  memcpy(c->data, &v, 8);
  atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
  return true;
}

static inline bool _ae_mpmc_pop_u64(aether_mpmc *q, uint64_t *out) {
  uint64_t pos;
  ae_cell *c = _ae_mpmc_claim(q, &q->dequeue_pos, 1, &pos);
  if (AE_UNLIKELY(c == NULL)) return false;
  memcpy(out, c->data, 8);
  atomic_store_explicit(&c->seq, pos + q->capacity, memory_order_release);
  return true;
}

/* The batch calls claim up to this many positions per CAS: larger claims would make a batch producer lose
 * every race against single-item producers (it must re-scan after each lost CAS). */
#define AE_MPMC_CLAIM_MAX 64

/* Claim up to want consecutive ready positions with one CAS; returns how many (0: full/empty). */
static inline uint64_t _ae_mpmc_claim_n(aether_mpmc *q, _Atomic uint64_t *pos_var, uint64_t ready_offset,
                                        uint64_t want, uint64_t *pos_out) {
  if (want > AE_MPMC_CLAIM_MAX) want = AE_MPMC_CLAIM_MAX;
  uint64_t pos = atomic_load_explicit(pos_var, memory_order_relaxed);
  for (;;) {
    uint64_t k = 0;
    int64_t first_dif = 0;
    /* A cell ready for position pos+k stays ready until the thread that claims pos+k uses it, so what this
     * scan sees remains true if the CAS below succeeds (which proves nobody claimed pos..pos+k-1). */
    while (k < want) {
      const uint64_t seq = atomic_load_explicit(&_ae_mpmc_cell(q, pos + k)->seq, memory_order_acquire);
      const int64_t dif = (int64_t)(seq - (pos + k + ready_offset));
      if (k == 0) first_dif = dif;
      if (dif != 0) break;
      k++;
    }
    if (k == 0) {
      if (first_dif < 0) return 0;
      pos = atomic_load_explicit(pos_var, memory_order_relaxed);
      continue;
    }
    if (atomic_compare_exchange_weak_explicit(pos_var, &pos, pos + k, memory_order_relaxed, memory_order_relaxed)) {
      *pos_out = pos;
      return k;
    }
  }
}

static inline size_t _ae_mpmc_push_n(aether_mpmc *q, const void *items, size_t n) {
  const uint8_t *src = items;
  size_t done = 0;
  while (done < n) {
    uint64_t pos;
    const uint64_t k = _ae_mpmc_claim_n(q, &q->enqueue_pos, 0, n - done, &pos);
    if (k == 0) break;
    const uint8_t *from = src + done * q->elem_size;
    for (uint64_t j = 0; j < k; j++) {
      ae_cell *c = _ae_mpmc_cell(q, pos + j);
      if (q->elem_size == 8) memcpy(c->data, from + j * 8, 8); /* inline, not a call per item */
      else memcpy(c->data, from + j * q->elem_size, q->elem_size);
      atomic_store_explicit(&c->seq, pos + j + 1, memory_order_release);
    }
    done += k;
  }
  return done;
}

static inline size_t _ae_mpmc_pop_n(aether_mpmc *q, void *out, size_t n) {
  uint8_t *dst = out;
  size_t done = 0;
  while (done < n) {
    uint64_t pos;
    const uint64_t k = _ae_mpmc_claim_n(q, &q->dequeue_pos, 1, n - done, &pos);
    if (k == 0) break;
    uint8_t *to = dst + done * q->elem_size;
    for (uint64_t j = 0; j < k; j++) {
      ae_cell *c = _ae_mpmc_cell(q, pos + j);
      if (q->elem_size == 8) memcpy(to + j * 8, c->data, 8);
      else memcpy(to + j * q->elem_size, c->data, q->elem_size);
      atomic_store_explicit(&c->seq, pos + j + q->capacity, memory_order_release);
    }
    done += k;
  }
  return done;
}

static inline size_t _ae_mpmc_size(const aether_mpmc *q) {
  const uint64_t tail = atomic_load_explicit(&q->dequeue_pos, memory_order_acquire);
  const uint64_t head = atomic_load_explicit(&q->enqueue_pos, memory_order_acquire);
  const int64_t n = (int64_t)(head - tail);
  return n < 0 ? 0 : (uint64_t)n > q->capacity ? q->capacity : (size_t)n;
}

/* Shared by both create functions: the capacity and item-size preconditions, with the message. */
int _ae_queue_check_args(const char *fn, size_t capacity, size_t elem_size);
/* The queue's one mapping of len bytes, or NULL with AETHER_ERR_OUT_OF_MEMORY (more than physical memory, or
 * mmap refused); fn names the public function in the message. */
void *_ae_queue_map(const char *fn, size_t len, size_t capacity, size_t elem_size);

/* Argument checks shared by both queues: each refusal names the public function (__func__) and returns ret. */
#define AE_QUEUE_CHECK(q, ret)                                                                   \
  do {                                                                                          \
    if (AE_UNLIKELY((q) == NULL)) {                                                             \
      _ae_fail(AETHER_ERR_INVALID_ARGUMENT, "%s: the queue is NULL", __func__);                 \
      return ret;                                                                               \
    }                                                                                           \
  } while (0)
#define AE_PTR_CHECK(p, what, ret)                                                              \
  do {                                                                                          \
    if (AE_UNLIKELY((p) == NULL)) {                                                             \
      _ae_fail(AETHER_ERR_INVALID_ARGUMENT, "%s: %s is NULL", __func__, what);                  \
      return ret;                                                                               \
    }                                                                                           \
  } while (0)
#define AE_U64_CHECK(q)                                                                         \
  do {                                                                                          \
    if (AE_UNLIKELY((q)->elem_size != 8)) {                                                     \
      _ae_fail(AETHER_ERR_INVALID_ARGUMENT, "%s: the queue's items are %zu bytes, not 8 (use the byte API)", \
               __func__, (q)->elem_size);                                                        \
      return false;                                                                             \
    }                                                                                           \
  } while (0)

#endif
