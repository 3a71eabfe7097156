/* host.c: device memory emulated in host memory obtained with mmap. It is the default backend and what CI
 * runs: device addresses are host addresses, and memset/memcpy stand in for the runtime's copies.
 *
 * A range reserves address space well beyond its size (PROT_NONE, MAP_NORESERVE: it costs no memory) and makes
 * only its first size bytes accessible, so resize can grow it in place, the way GPU pools map more physical
 * memory behind one reserved virtual range; a pool then grows one contiguous slab instead of many. A guarded
 * range (AE_BACKEND_GUARD) keeps one inaccessible page before it, and the reservation's inaccessible tail
 * after it, so a stray pointer walking off an isolated context's slab faults instead of reading a neighbour. */
#include "backend.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HOST_RESERVE_MAX ((uint64_t)16 << 30) /* address space reserved per range, at most (and at most RAM) */

typedef struct reservation {
  struct reservation *next;
  uint64_t addr;   /* the range's first usable byte */
  uint64_t usable; /* bytes it may grow to */
  uint64_t guard;  /* guard bytes before addr */
  uint64_t map;    /* the whole mapping, from addr - guard */
} reservation;

typedef struct host_state {
  pthread_mutex_t lock; /* the reservations (slab calls are rare) */
  reservation *list;
  uint64_t page, reserve;
} host_state;

static uint64_t page_size(void) {
  const long p = sysconf(_SC_PAGESIZE);
  return p > 0 ? (uint64_t)p : 4096;
}

static int host_probe(aether_device_info *info) {
  memset(info, 0, sizeof *info);
  info->kind = AETHER_DEVICE_HOST;
  info->status = AETHER_OK;
  info->device_count = 1;
  const long pages = sysconf(_SC_PHYS_PAGES);
  info->total_bytes = pages > 0 ? (uint64_t)pages * page_size() : 0;
  snprintf(info->name, sizeof info->name, "host memory (mmap)");
  snprintf(info->message, sizeof info->message, "device memory emulated in host memory obtained with mmap");
  return AETHER_OK;
}

static int host_open(int device, void **state) {
  AE_RETURN_ERROR_IF(device != 0, AETHER_ERR_OUT_OF_RANGE, "host backend: device %d does not exist (only 0)", device);
  host_state *st = calloc(1, sizeof *st);
  AE_RETURN_ERROR_IF(st == NULL, AETHER_ERR_OUT_OF_MEMORY, "host backend: no memory for its state");
  pthread_mutex_init(&st->lock, NULL);
  st->page = page_size();
  const long pages = sysconf(_SC_PHYS_PAGES);
  const uint64_t ram = pages > 0 ? (uint64_t)pages * st->page : HOST_RESERVE_MAX;
  st->reserve = ram < HOST_RESERVE_MAX ? AE_ALIGN_UP(ram, (uint64_t)1 << 20) : HOST_RESERVE_MAX;
  *state = st;
  return AETHER_OK;
}

static void host_close(void *state) {
  host_state *st = state;
  if (st == NULL) return;
  for (reservation *r = st->list, *next; r; r = next) {
    next = r->next;
    munmap((void *)(uintptr_t)(r->addr - r->guard), r->map);
    free(r);
  }
  pthread_mutex_destroy(&st->lock);
  free(st);
}

static int host_alloc(void *state, uint64_t size, uint32_t flags, uint64_t *addr) {
  host_state *st = state;
  AE_RETURN_ERROR_IF(size == 0 || size > ((uint64_t)1 << 46), AETHER_ERR_OUT_OF_RANGE,
                     "host backend: cannot map %" PRIu64 " bytes", size);
  const uint64_t guard = (flags & AE_BACKEND_GUARD) ? st->page : 0;
  const uint64_t committed = AE_ALIGN_UP(size, st->page);
  const uint64_t usable = committed > st->reserve ? committed : st->reserve;
  reservation *r = malloc(sizeof *r);
  AE_RETURN_ERROR_IF(r == NULL, AETHER_ERR_OUT_OF_MEMORY, "host backend: no memory for a reservation");
  /* The reservation's tail past `usable` is one more page, so a guarded range ends in an inaccessible page
   * even at its full size. */
  const uint64_t map = guard + usable + guard;
  void *p = mmap(NULL, map, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    free(r);
    return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "host backend: cannot reserve %" PRIu64 " bytes: %s", map, strerror(errno));
  }
  if (mprotect((char *)p + guard, committed, PROT_READ | PROT_WRITE) != 0) {
    const int e = errno;
    munmap(p, map);
    free(r);
    return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "host backend: cannot map %" PRIu64 " bytes: %s", committed, strerror(e));
  }
  *r = (reservation){.addr = (uint64_t)(uintptr_t)p + guard, .usable = usable, .guard = guard, .map = map};
  pthread_mutex_lock(&st->lock);
  r->next = st->list;
  st->list = r;
  pthread_mutex_unlock(&st->lock);
  *addr = r->addr;
  return AETHER_OK;
}

/* The reservation of addr (lock held), unlinked if unlink. */
static reservation *find(host_state *st, uint64_t addr, bool unlink) {
  for (reservation **pp = &st->list; *pp; pp = &(*pp)->next) {
    reservation *r = *pp;
    if (r->addr != addr) continue;
    if (unlink) *pp = r->next;
    return r;
  }
  return NULL;
}

static int host_release(void *state, uint64_t addr, uint64_t size, uint32_t flags) {
  (void)size;
  (void)flags;
  host_state *st = state;
  pthread_mutex_lock(&st->lock);
  reservation *r = find(st, addr, true);
  pthread_mutex_unlock(&st->lock);
  AE_RETURN_ERROR_IF(r == NULL, AETHER_ERR_INVALID_POINTER, "host backend: 0x%" PRIx64 " is not a range it mapped", addr);
  const int rc = munmap((void *)(uintptr_t)(r->addr - r->guard), r->map);
  const int e = errno;
  free(r);
  AE_RETURN_ERROR_IF(rc != 0, AETHER_ERR_DEVICE, "host backend: munmap(0x%" PRIx64 ") failed: %s", addr, strerror(e));
  return AETHER_OK;
}

static int host_resize(void *state, uint64_t addr, uint64_t old_size, uint64_t new_size) {
  host_state *st = state;
  pthread_mutex_lock(&st->lock);
  reservation *r = find(st, addr, false);
  const uint64_t usable = r ? r->usable : 0;
  pthread_mutex_unlock(&st->lock);
  AE_RETURN_ERROR_IF(r == NULL, AETHER_ERR_INVALID_POINTER, "host backend: 0x%" PRIx64 " is not a range it mapped", addr);
  AE_RETURN_ERROR_IF(new_size > usable, AETHER_ERR_UNSUPPORTED,
                     "host backend: the range at 0x%" PRIx64 " cannot grow to %" PRIu64 " bytes in place", addr, new_size);
  const uint64_t lo = AE_ALIGN_UP(old_size, st->page), hi = AE_ALIGN_UP(new_size, st->page);
  if (hi > lo) {
    AE_RETURN_ERROR_IF(mprotect((void *)(uintptr_t)(addr + lo), hi - lo, PROT_READ | PROT_WRITE) != 0,
                       AETHER_ERR_OUT_OF_MEMORY, "host backend: cannot grow the range at 0x%" PRIx64 ": %s", addr,
                       strerror(errno));
  } else if (hi < lo) {
    /* Drop the pages (they read as zero if ever mapped again), then fence them off. */
    void *tail = (void *)(uintptr_t)(addr + hi);
    AE_RETURN_ERROR_IF(madvise(tail, lo - hi, MADV_DONTNEED) != 0 || mprotect(tail, lo - hi, PROT_NONE) != 0,
                       AETHER_ERR_DEVICE, "host backend: cannot shrink the range at 0x%" PRIx64 ": %s", addr,
                       strerror(errno));
  }
  return AETHER_OK;
}

static int host_memset(void *state, uint64_t addr, int value, uint64_t len) {
  (void)state;
  memset((void *)(uintptr_t)addr, value, len);
  return AETHER_OK;
}

static int host_to_device(void *state, uint64_t dst, const void *src, uint64_t len) {
  (void)state;
  memcpy((void *)(uintptr_t)dst, src, len);
  return AETHER_OK;
}

static int host_to_host(void *state, void *dst, uint64_t src, uint64_t len) {
  (void)state;
  memcpy(dst, (const void *)(uintptr_t)src, len);
  return AETHER_OK;
}

static int host_copy(void *state, uint64_t dst, uint64_t src, uint64_t len) {
  (void)state;
  memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, len);
  return AETHER_OK;
}

static int host_sync(void *state) {
  (void)state;
  return AETHER_OK;
}

static void *host_view(void *state, uint64_t addr) {
  (void)state;
  return (void *)(uintptr_t)addr;
}

const ae_backend_ops _ae_backend_host = {
    .name = "host",
    .kind = AETHER_DEVICE_HOST,
    .probe = host_probe,
    .open = host_open,
    .close = host_close,
    .alloc = host_alloc,
    .release = host_release,
    .resize = host_resize,
    .memset = host_memset,
    .to_device = host_to_device,
    .to_host = host_to_host,
    .copy = host_copy,
    .sync = host_sync,
    .host_view = host_view,
};
