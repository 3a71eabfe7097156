/* quarantine.c: freed blocks wait here, poisoned, before they can be reused.
 *
 * Each thread keeps a FIFO ring of the blocks it freed, bounded by quarantine_bytes of user data. While a block
 * waits, a second free of it is a double free (its registry state says QUARANTINED) and a write into it changes
 * the poison, which is verified when the block leaves: that is how a write after free is caught. A per-thread
 * ring needs no lock; the price is that the bound applies to each thread. */
#include "alloc_internal.h"

#include <string.h>
#include <sys/mman.h>

#define P16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
#define P256(x) P16(P16(x))
const uint8_t _ae_poison_page[4096] = {P16(P256(AE_POISON_BYTE))};

size_t _ae_poison_damage_slow(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i += sizeof _ae_poison_page) {
    const size_t len = n - i < sizeof _ae_poison_page ? n - i : sizeof _ae_poison_page;
    if (memcmp(p + i, _ae_poison_page, len) == 0) continue;
    for (size_t j = 0; j < len; j++)
      if (p[i + j] != AE_POISON_BYTE) return i + j + 1;
  }
  return 0;
}

static bool ring_grow(ae_heap *h, uint32_t want) {
  uint32_t cap = h->qcap ? h->qcap : 256;
  while (cap < want) cap *= 2;
  ae_qentry *ring = mmap(NULL, (size_t)cap * sizeof(ae_qentry), PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ring == MAP_FAILED) return false;
  const uint32_t count = h->qtail - h->qhead;
  for (uint32_t i = 0; i < count; i++) ring[i] = h->qring[(h->qhead + i) & (h->qcap - 1)];
  if (h->qring) munmap(h->qring, (size_t)h->qcap * sizeof(ae_qentry));
  h->qring = ring;
  h->qcap = cap;
  atomic_store_explicit(&h->qring_bytes, (uint64_t)cap * sizeof(ae_qentry), memory_order_relaxed);
  h->qhead = 0;
  h->qtail = count;
  return true;
}

void _ae_report_use_after_free(void *user, size_t size, size_t offset) {
  const ae_header *h = _ae_header_of(user); /* still mapped: the block has not left the quarantine yet */
  _ae_report_traced(AETHER_MEM_USE_AFTER_FREE, user, size, offset, h->alloc_trace, h->free_trace,
                    "AETHER MEMORY ERROR: Use after free detected at 0x%" PRIxPTR, (uintptr_t)user);
}

void _ae_quarantine_evict_huge(ae_heap *h, void *user) {
  unsigned state;
  size_t size;
  if (!_ae_huge_lookup(user, &state, &size)) size = 0;
  h->qbytes_local -= size;
  const size_t damage = _ae_poison_damage(user, size > AE_POISON_HUGE_MAX ? AE_POISON_HUGE_MAX : size);
  if (AE_UNLIKELY(damage != 0)) _ae_report_use_after_free(user, size, damage - 1);
  _ae_huge_release(user);
}

static void release_now(ae_heap *h, void *user, _Atomic uint64_t *meta) {
  if (meta != NULL) _ae_release_small(h, user, meta, atomic_load_explicit(meta, memory_order_relaxed));
  else _ae_huge_release(user);
}

/* The general push: huge blocks, a full ring, a disabled quarantine. */
void _ae_quarantine_push(ae_heap *h, void *user, _Atomic uint64_t *meta, size_t size, size_t cost) {
  const size_t budget = AE_OPT(quarantine_bytes);
  if (budget == 0) { /* no quarantine: straight back to the cache; the registry still says FREE */
    _ae_quarantine_drain(h); /* what waited under a previous budget leaves (and is verified) first */
    release_now(h, user, meta);
    return;
  }
  memset(user, AE_POISON_BYTE, meta == NULL && size > AE_POISON_HUGE_MAX ? AE_POISON_HUGE_MAX : size);
  /* The ring holds at most one entry per 32 budget bytes; a full ring evicts early rather than grow forever. */
  const uint32_t want = budget / 32 > (1u << 20) ? (1u << 20) : (uint32_t)(budget / 32) + 1;
  if (h->qtail - h->qhead == h->qcap && (h->qcap >= want || !ring_grow(h, h->qcap + 1))) {
    if (h->qcap == 0) { /* no ring could be mapped: release at once rather than fail the free */
      release_now(h, user, meta);
      return;
    }
    _ae_quarantine_evict_one(h);
  }
  h->qring[h->qtail & (h->qcap - 1)] = (ae_qentry){.user = user, .meta = meta};
  h->qtail++;
  h->qbytes_local += cost;
  while (h->qbytes_local > budget && h->qtail != h->qhead) _ae_quarantine_evict_one(h);
  atomic_store_explicit(&h->qbytes, h->qbytes_local, memory_order_relaxed);
}

void _ae_quarantine_drain(ae_heap *h) {
  while (h->qtail != h->qhead) _ae_quarantine_evict_one(h);
  atomic_store_explicit(&h->qbytes, h->qbytes_local, memory_order_relaxed);
}

size_t _ae_quarantine_verify_own(void) {
  ae_heap *h = _ae_tl_heap;
  if (h == NULL) return 0;
  size_t damaged = 0;
  for (uint32_t i = h->qhead; i != h->qtail; i++) {
    const ae_qentry *e = &h->qring[i & (h->qcap - 1)];
    size_t size, span; /* the block's size, and how much of it is poisoned (huge blocks: the first 64 KiB) */
    if (e->meta != NULL) {
      size = span = AE_META_SIZE(atomic_load_explicit(e->meta, memory_order_relaxed));
    } else {
      unsigned state;
      if (!_ae_huge_lookup(e->user, &state, &size)) continue;
      span = size > AE_POISON_HUGE_MAX ? AE_POISON_HUGE_MAX : size;
    }
    const size_t damage = _ae_poison_damage(e->user, span);
    if (damage == 0) continue;
    _ae_report_use_after_free(e->user, size, damage - 1); /* the event carries the block's size, as at eviction */
    memset(e->user, AE_POISON_BYTE, span); /* reported once: the eviction will find the poison intact */
    damaged++;
  }
  return damaged;
}
