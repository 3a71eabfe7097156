/* huge.c: allocations larger than the biggest size class get a mapping of their own, recorded in an
 * open-addressing table keyed by the user pointer. Freed records are kept (up to HUGE_FREED_KEEP) so a double
 * free of a huge block is still named as one after its pages are gone. Huge blocks are rare and their mmap and
 * munmap cost microseconds anyway, so one mutex guards the table. */
#include "alloc_internal.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HUGE_FREED_KEEP 1024

typedef struct huge_rec {
  uintptr_t user; /* 0: empty slot; 1: deleted */
  uintptr_t base;
  size_t maplen;
  size_t size;
  unsigned state; /* AE_STATE_LIVE, QUARANTINED or FREE */
} huge_rec;

static pthread_mutex_t huge_lock = PTHREAD_MUTEX_INITIALIZER;
static huge_rec *table;
static size_t table_cap, table_filled; /* filled counts live, freed and deleted slots */
static uint64_t mapped_bytes;
static uintptr_t freed_fifo[HUGE_FREED_KEEP];
static size_t freed_next;

static size_t hash_ptr(uintptr_t p) { return (size_t)((p >> 12) * 0x9E3779B97F4A7C15ull); }

static huge_rec *find_locked(uintptr_t user) {
  if (table_cap == 0) return NULL;
  for (size_t i = hash_ptr(user) & (table_cap - 1);; i = (i + 1) & (table_cap - 1)) {
    if (table[i].user == user) return &table[i];
    if (table[i].user == 0) return NULL;
  }
}

static bool rehash_locked(size_t cap) {
  huge_rec *t = mmap(NULL, cap * sizeof(huge_rec), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (t == MAP_FAILED) return false;
  size_t filled = 0;
  for (size_t i = 0; i < table_cap; i++) {
    if (table[i].user <= 1) continue;
    size_t j = hash_ptr(table[i].user) & (cap - 1);
    while (t[j].user != 0) j = (j + 1) & (cap - 1);
    t[j] = table[i];
    filled++;
  }
  if (table) munmap(table, table_cap * sizeof(huge_rec));
  table = t;
  table_cap = cap;
  table_filled = filled;
  return true;
}

static huge_rec *insert_locked(uintptr_t user) {
  huge_rec *r = find_locked(user); /* a freed record at this address is reused */
  if (r != NULL) return r;
  if ((table_filled + 1) * 2 > table_cap && !rehash_locked(table_cap ? table_cap * 2 : 256)) return NULL;
  size_t i = hash_ptr(user) & (table_cap - 1);
  while (table[i].user > 1) i = (i + 1) & (table_cap - 1);
  if (table[i].user == 0) table_filled++;
  table[i].user = user;
  return &table[i];
}

void *_ae_huge_alloc(size_t size, size_t alignment) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  if (alignment < 16) alignment = 16;
  const size_t front = AE_ALIGN_UP(sizeof(ae_header) + _ae_front_guard, alignment);
  size_t len;
  if (__builtin_add_overflow(front, size, &len) || __builtin_add_overflow(len, _ae_back_guard, &len) ||
      len > ((size_t)1 << 46)) {
    _ae_fail(AETHER_ERR_SIZE_OVERFLOW, "allocation of %zu bytes is larger than the address space", size);
    return NULL;
  }
  len = AE_ALIGN_UP(len, page);
  const size_t extra = alignment > page ? alignment : 0; /* over-map, then trim to the alignment */
  uint8_t *raw = mmap(NULL, len + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) {
    _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "mmap of %zu bytes failed", len + extra);
    return NULL;
  }
  uint8_t *base = raw;
  if (extra) {
    base = (uint8_t *)AE_ALIGN_UP((uintptr_t)raw + front, alignment) - front;
    base = (uint8_t *)((uintptr_t)base & ~(page - 1));
    if (base > raw) munmap(raw, (size_t)(base - raw));
    if (raw + len + extra > base + len) munmap(base + len, (size_t)(raw + len + extra - (base + len)));
  }
  uint8_t *user = (uint8_t *)AE_ALIGN_UP((uintptr_t)base + sizeof(ae_header) + _ae_front_guard, alignment);
  pthread_mutex_lock(&huge_lock);
  huge_rec *r = insert_locked((uintptr_t)user);
  if (r != NULL) {
    r->base = (uintptr_t)base;
    r->maplen = len;
    r->size = size;
    r->state = AE_STATE_BUSY; /* until the caller has written the header and guards: _ae_huge_publish */
    mapped_bytes += len;
  }
  pthread_mutex_unlock(&huge_lock);
  if (r == NULL) {
    munmap(base, len);
    _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "no memory for the huge-block table");
    return NULL;
  }
  return user;
}

bool _ae_huge_lookup(const void *p, unsigned *state, size_t *size) {
  for (;;) {
    pthread_mutex_lock(&huge_lock);
    huge_rec *r = find_locked((uintptr_t)p);
    if (r != NULL) {
      *state = r->state;
      *size = r->size;
    }
    pthread_mutex_unlock(&huge_lock);
    if (r == NULL || *state != AE_STATE_BUSY) return r != NULL;
    sched_yield(); /* being allocated or resized: wait for its header and guards */
  }
}

bool _ae_huge_hold(const void *p, size_t size) {
  pthread_mutex_lock(&huge_lock);
  huge_rec *r = find_locked((uintptr_t)p);
  const bool ok = r != NULL && r->state == AE_STATE_LIVE && r->size == size;
  if (ok) r->state = AE_STATE_BUSY;
  pthread_mutex_unlock(&huge_lock);
  return ok;
}

void _ae_huge_publish(void *p) {
  pthread_mutex_lock(&huge_lock);
  huge_rec *r = find_locked((uintptr_t)p);
  if (r != NULL && r->state == AE_STATE_BUSY) r->state = AE_STATE_LIVE;
  pthread_mutex_unlock(&huge_lock);
}

bool _ae_huge_claim(const void *p) {
  for (;;) {
    pthread_mutex_lock(&huge_lock);
    huge_rec *r = find_locked((uintptr_t)p);
    const bool busy = r != NULL && r->state == AE_STATE_BUSY;
    const bool ok = r != NULL && r->state == AE_STATE_LIVE;
    if (ok) r->state = AE_STATE_QUARANTINED;
    pthread_mutex_unlock(&huge_lock);
    if (!busy) return ok;
    sched_yield(); /* held by check_all for a moment */
  }
}

void _ae_huge_release(void *p) {
  pthread_mutex_lock(&huge_lock);
  huge_rec *r = find_locked((uintptr_t)p);
  if (r != NULL && r->state == AE_STATE_QUARANTINED) {
    munmap((void *)r->base, r->maplen);
    mapped_bytes -= r->maplen;
    r->state = AE_STATE_FREE;
    /* Forget the oldest freed record so the table does not grow with every huge free. */
    const uintptr_t old = freed_fifo[freed_next % HUGE_FREED_KEEP];
    if (old != 0 && old != (uintptr_t)p) {
      huge_rec *o = find_locked(old);
      if (o != NULL && o->state == AE_STATE_FREE) o->user = 1;
    }
    freed_fifo[freed_next++ % HUGE_FREED_KEEP] = (uintptr_t)p;
  }
  pthread_mutex_unlock(&huge_lock);
}

bool _ae_huge_resize_in_place(void *p, size_t new_size) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  bool ok = false;
  pthread_mutex_lock(&huge_lock);
  huge_rec *r = find_locked((uintptr_t)p);
  if (r != NULL && r->state == AE_STATE_LIVE) {
    const size_t off = (uintptr_t)p - r->base;
    size_t need;
    if (!__builtin_add_overflow(off + _ae_back_guard, new_size, &need)) {
      need = AE_ALIGN_UP(need, page);
      if (need <= r->maplen) {
        ok = true;
      } else if (mremap((void *)r->base, r->maplen, need, 0) != MAP_FAILED) { /* grow without moving */
        mapped_bytes += need - r->maplen;
        r->maplen = need;
        ok = true;
      }
      if (ok) {
        r->size = new_size;
        r->state = AE_STATE_BUSY; /* the caller rewrites the header and guards, then publishes */
      }
    }
  }
  pthread_mutex_unlock(&huge_lock);
  return ok;
}

void _ae_huge_visit_live(ae_block_visitor *fn, void *arg) {
  pthread_mutex_lock(&huge_lock);
  for (size_t i = 0; i < table_cap; i++)
    if (table[i].user > 1 && table[i].state == AE_STATE_LIVE) fn((void *)table[i].user, table[i].size, NULL, 0, arg);
  pthread_mutex_unlock(&huge_lock);
}

uint64_t _ae_huge_reserved_bytes(void) {
  pthread_mutex_lock(&huge_lock);
  const uint64_t v = mapped_bytes + table_cap * sizeof(huge_rec);
  pthread_mutex_unlock(&huge_lock);
  return v;
}

void _ae_huge_atfork_prepare(void) { pthread_mutex_lock(&huge_lock); }
void _ae_huge_atfork_parent(void) { pthread_mutex_unlock(&huge_lock); }
void _ae_huge_atfork_child(void) { pthread_mutex_unlock(&huge_lock); }
