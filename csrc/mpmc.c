/* mpmc.c: the bounded multi-producer multi-consumer queue (the algorithm is described in queue_internal.h).
 * This file holds creation (cell layout, initial sequence numbers), argument checks and the exported wrappers
 * around the inline fast paths. */
#include "queue_internal.h"

#include <sys/mman.h>

/* Write every cell's initial sequence number so that position start comes next: cell of position p (for the
 * capacity positions p in [start, start + capacity)) gets seq = p, "free for the producer of p". */
static void init_sequences(aether_mpmc *q, uint64_t start) {
  for (uint64_t k = 0; k < q->capacity; k++)
    atomic_store_explicit(&_ae_mpmc_cell(q, start + k)->seq, start + k, memory_order_relaxed);
  atomic_store_explicit(&q->enqueue_pos, start, memory_order_relaxed);
  atomic_store_explicit(&q->dequeue_pos, start, memory_order_relaxed);
  atomic_thread_fence(memory_order_release); /* the queue is published to other threads after this */
}

aether_mpmc *aether_mpmc_create(size_t capacity, size_t elem_size) {
  if (_ae_queue_check_args("aether_mpmc_create", capacity, elem_size) != AETHER_OK) return NULL;
  /* Cell: 8-byte seq then the item. Small cells are packed 4 or 2 to a line (16 or 32 bytes: a power of two,
   * so no cell straddles two lines); larger ones take whole lines. Padding every cell to a line, as rigtorp
   * does, measured no faster here for single items (throughput and round trip) and a quarter slower for
   * batches, which then touch a line per item; spreading consecutive cells over different lines was worse. */
  size_t cell = AE_ALIGN_UP(8 + elem_size, 8);
  cell = cell <= 16 ? 16 : cell <= 32 ? 32 : AE_ALIGN_UP(cell, AE_CACHE_LINE);
  const size_t head_len = sizeof(aether_mpmc);
  const size_t len = AE_ALIGN_UP(head_len + capacity * cell, 4096); /* <= 2^24 * 4160: no overflow */
  void *m = _ae_queue_map("aether_mpmc_create", len, capacity, elem_size);
  if (m == NULL) return NULL;
  aether_mpmc *q = m;
  q->cells = (uint8_t *)m + head_len;
  q->mask = capacity - 1;
  q->capacity = capacity;
  q->elem_size = elem_size;
  q->cell_size = cell;
  q->map_len = len;
  init_sequences(q, 0);
  return q;
}

void aether_mpmc_destroy(aether_mpmc *q) {
  if (q != NULL) munmap(q, q->map_len);
}


bool aether_mpmc_try_push(aether_mpmc *q, const void *item) {
  AE_QUEUE_CHECK(q, false);
  AE_PTR_CHECK(item, "item", false);
  return _ae_mpmc_push(q, item);
}

bool aether_mpmc_try_pop(aether_mpmc *q, void *out) {
  AE_QUEUE_CHECK(q, false);
  AE_PTR_CHECK(out, "out", false);
  return _ae_mpmc_pop(q, out);
}

size_t aether_mpmc_push_n(aether_mpmc *q, const void *items, size_t n) {
  AE_QUEUE_CHECK(q, 0);
  if (n == 0) return 0;
  AE_PTR_CHECK(items, "items", 0);
  return _ae_mpmc_push_n(q, items, n);
}

size_t aether_mpmc_pop_n(aether_mpmc *q, void *out, size_t n) {
  AE_QUEUE_CHECK(q, 0);
  if (n == 0) return 0;
  AE_PTR_CHECK(out, "out", 0);
  return _ae_mpmc_pop_n(q, out, n);
}

bool aether_mpmc_try_push_u64(aether_mpmc *q, uint64_t value) {
  AE_QUEUE_CHECK(q, false);
  AE_U64_CHECK(q);
  return _ae_mpmc_push_u64(q, value);
}

bool aether_mpmc_try_pop_u64(aether_mpmc *q, uint64_t *out) {
  AE_QUEUE_CHECK(q, false);
  AE_PTR_CHECK(out, "out", false);
  AE_U64_CHECK(q);
  return _ae_mpmc_pop_u64(q, out);
}

size_t aether_mpmc_size(const aether_mpmc *q) { return q ? _ae_mpmc_size(q) : 0; }
size_t aether_mpmc_capacity(const aether_mpmc *q) { return q ? q->capacity : 0; }
size_t aether_mpmc_elem_size(const aether_mpmc *q) { return q ? q->elem_size : 0; }

aether_status aether_mpmc_debug_set_index(aether_mpmc *q, uint64_t index) {
  AE_RETURN_ERROR_IF(q == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_mpmc_debug_set_index: the queue is NULL");
  const uint64_t head = atomic_load_explicit(&q->enqueue_pos, memory_order_relaxed);
  const uint64_t tail = atomic_load_explicit(&q->dequeue_pos, memory_order_relaxed);
  AE_RETURN_ERROR_IF(head != tail, AETHER_ERR_BUSY, "aether_mpmc_debug_set_index: the queue holds %" PRIu64
                     " item(s); it must be empty", head - tail);
  init_sequences(q, index);
  return AETHER_OK;
}

aether_status aether_mpmc_debug_indices(const aether_mpmc *q, uint64_t *head, uint64_t *tail) {
  AE_RETURN_ERROR_IF(q == NULL || head == NULL || tail == NULL, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_mpmc_debug_indices: NULL argument");
  *tail = atomic_load_explicit(&q->dequeue_pos, memory_order_acquire);
  *head = atomic_load_explicit(&q->enqueue_pos, memory_order_acquire);
  return AETHER_OK;
}
