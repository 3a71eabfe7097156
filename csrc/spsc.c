/* spsc.c: the single-producer single-consumer ring (the algorithm is described in queue_internal.h). This file
 * holds creation, argument checks and the exported wrappers around the inline fast paths. */
#include "queue_internal.h"

#include <sys/mman.h>
#include <unistd.h>

int _ae_queue_check_args(const char *fn, size_t capacity, size_t elem_size) {
  AE_RETURN_ERROR_IF(!AE_IS_POW2(capacity), AETHER_ERR_NOT_POWER_OF_TWO,
                     "%s: capacity %zu is not a power of two (must be a power of two in [8, 2^24])", fn, capacity);
  AE_RETURN_ERROR_IF(capacity < AETHER_QUEUE_MIN_CAPACITY || capacity > AETHER_QUEUE_MAX_CAPACITY,
                     AETHER_ERR_OUT_OF_RANGE, "%s: capacity %zu is not in [8, 2^24]", fn, capacity);
  AE_RETURN_ERROR_IF(elem_size < 1 || elem_size > AETHER_QUEUE_MAX_ELEM_SIZE, AETHER_ERR_OUT_OF_RANGE,
                     "%s: elem_size %zu is not in [1, 4096]", fn, elem_size);
  return AETHER_OK;
}

void *_ae_queue_map(const char *fn, size_t len, size_t capacity, size_t elem_size) {
  /* With overcommit, mmap grants more than the machine has, and filling the ring would then bring in the OOM
   * killer: a queue larger than physical memory is refused here, with a status. */
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0 && len / (size_t)page >= (size_t)pages) {
    _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "%s: %zu items of %zu bytes need %zu bytes, more than this machine's memory",
             fn, capacity, elem_size, len);
    return NULL;
  }
  void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "%s: cannot map %zu bytes for %zu items of %zu bytes", fn, len, capacity,
             elem_size);
    return NULL;
  }
  return m;
}

aether_spsc *aether_spsc_create(size_t capacity, size_t elem_size) {
  if (_ae_queue_check_args("aether_spsc_create", capacity, elem_size) != AETHER_OK) return NULL;
  /* One mapping: the struct (its own lines), then the ring. capacity * elem_size <= 2^36: no overflow. */
  const size_t head_len = sizeof(aether_spsc);
  const size_t len = AE_ALIGN_UP(head_len + capacity * elem_size, 4096);
  void *m = _ae_queue_map("aether_spsc_create", len, capacity, elem_size);
  if (m == NULL) return NULL;
  aether_spsc *q = m; /* mmap memory is zero: indices and caches start at 0 */
  q->buf = (uint8_t *)m + head_len;
  q->mask = capacity - 1;
  q->capacity = capacity;
  q->elem_size = elem_size;
  q->map_len = len;
  return q;
}

void aether_spsc_destroy(aether_spsc *q) {
  if (q != NULL) munmap(q, q->map_len);
}


bool aether_spsc_try_push(aether_spsc *q, const void *item) {
  AE_QUEUE_CHECK(q, false);
  AE_PTR_CHECK(item, "item", false);
  return _ae_spsc_push(q, item);
}

bool aether_spsc_try_pop(aether_spsc *q, void *out) {
  AE_QUEUE_CHECK(q, false);
  AE_PTR_CHECK(out, "out", false);
  return _ae_spsc_pop(q, out);
}

size_t aether_spsc_push_n(aether_spsc *q, const void *items, size_t n) {
  AE_QUEUE_CHECK(q, 0);
  if (n == 0) return 0;
  AE_PTR_CHECK(items, "items", 0);
  return _ae_spsc_push_n(q, items, n);
}

size_t aether_spsc_pop_n(aether_spsc *q, void *out, size_t n) {
  AE_QUEUE_CHECK(q, 0);
  if (n == 0) return 0;
  AE_PTR_CHECK(out, "out", 0);
  return _ae_spsc_pop_n(q, out, n);
}

bool aether_spsc_try_push_u64(aether_spsc *q, uint64_t value) {
  AE_QUEUE_CHECK(q, false);
  AE_U64_CHECK(q);
  return _ae_spsc_push_u64(q, value);
}

bool aether_spsc_try_pop_u64(aether_spsc *q, uint64_t *out) {
  AE_QUEUE_CHECK(q, false);
  AE_PTR_CHECK(out, "out", false);
  AE_U64_CHECK(q);
  return _ae_spsc_pop_u64(q, out);
}

size_t aether_spsc_size(const aether_spsc *q) { return q ? _ae_spsc_size(q) : 0; }
size_t aether_spsc_capacity(const aether_spsc *q) { return q ? q->capacity : 0; }
size_t aether_spsc_elem_size(const aether_spsc *q) { return q ? q->elem_size : 0; }

aether_status aether_spsc_debug_set_index(aether_spsc *q, uint64_t index) {
  AE_RETURN_ERROR_IF(q == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_spsc_debug_set_index: the queue is NULL");
  const uint64_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
  const uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
  AE_RETURN_ERROR_IF(head != tail, AETHER_ERR_BUSY, "aether_spsc_debug_set_index: the queue holds %" PRIu64
                     " item(s); it must be empty", head - tail);
  atomic_store_explicit(&q->head, index, memory_order_relaxed);
  atomic_store_explicit(&q->tail, index, memory_order_relaxed);
  q->tail_cache = q->head_cache = index;
  return AETHER_OK;
}

aether_status aether_spsc_debug_indices(const aether_spsc *q, uint64_t *head, uint64_t *tail) {
  AE_RETURN_ERROR_IF(q == NULL || head == NULL || tail == NULL, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_spsc_debug_indices: NULL argument");
  *tail = atomic_load_explicit(&q->tail, memory_order_acquire);
  *head = atomic_load_explicit(&q->head, memory_order_acquire);
  return AETHER_OK;
}
