/* suballoc.c: the allocator inside a device pool (see devpool_internal.h for the design in prose): size-class
 * runs for small requests, TLSF with a bounded best-fit pass for the rest and for the runs, over slabs taken
 * from the backend, and compaction of a slab before the pool grows. All metadata lives on the host in 64-byte
 * descriptors; device memory is touched here only to zero a fresh GPU slab and to slide blocks. */
#include "devpool_internal.h"

#include <string.h>
#include <sys/mman.h>

struct ae_slab {
  uint64_t base, size;
  uint64_t used;        /* bytes of the slab in blocks that are not free */
  ae_slab *prev, *next;
  ae_blk *first, *last; /* the blocks at its two ends */
  uint64_t pad;
};

struct ae_blk {
  uint64_t addr, size;
  ae_blk *prev_phys, *next_phys; /* neighbours in the slab (NULL at its ends) */
  union {
    struct {
      ae_blk *prev_free, *next_free; /* bin list, while free */
    };
    struct {
      ae_run *run;   /* while used by a run */
      uint64_t pins; /* while used by one allocation: pins taken on it */
    };
  };
  ae_slab *slab;
  uint32_t is_free;
  uint32_t is_run;
};

struct ae_run {
  uint64_t base;       /* device address of slot 0 */
  ae_blk *blk;         /* the TLSF block the run occupies */
  ae_run *prev, *next; /* the class's partial list */
  uint16_t cls, nslots, nfree, pins;
  uint64_t bits[2];    /* 1 = free slot; up to AE_SA_RUN_SLOTS */
};

/* Descriptors share one 64-byte size, so one free list recycles all three kinds. */
_Static_assert(sizeof(ae_blk) == 64, "ae_blk is one cache line");
_Static_assert(sizeof(ae_run) <= 64, "ae_run fits a descriptor");
_Static_assert(sizeof(ae_slab) <= 64, "ae_slab fits a descriptor");
_Static_assert(AE_SA_RUN_SLOTS <= 128, "a run's bitmap holds 128 slots");
#define DESC_BYTES 64u
#define DESC_CHUNK (64u * 1024u)

typedef struct desc_chunk {
  struct desc_chunk *next;
} desc_chunk;

static void *desc_alloc(ae_sa *sa) {
  void **p = sa->free_descs;
  if (p == NULL) {
    void *m = mmap(NULL, DESC_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    desc_chunk *c = m;
    c->next = sa->desc_chunks;
    sa->desc_chunks = c;
    /* The chunk's first descriptor holds the chunk link; thread the rest onto the free list. */
    for (uint32_t off = DESC_CHUNK - DESC_BYTES; off >= DESC_BYTES; off -= DESC_BYTES) {
      void **d = (void **)((char *)m + off);
      *d = sa->free_descs;
      sa->free_descs = d;
    }
    p = sa->free_descs;
  }
  sa->free_descs = *p;
  memset(p, 0, DESC_BYTES);
  return p;
}

static void desc_free(ae_sa *sa, void *d) {
  *(void **)d = sa->free_descs;
  sa->free_descs = d;
}

/* ------------------------------------------------------------------------------------ TLSF --- */
static inline int msb64(uint64_t x) { return 63 - __builtin_clzll(x); }

/* Bin of a block of size bytes (a multiple of 256): sizes below 32 units of 256 map linearly into first level
 * 0; above, first level is the power of two and the second level its next five bits. */
static inline void mapping(uint64_t size, int *fl, int *sl) {
  const uint64_t u = size / AE_SA_ALIGN;
  if (u < AE_SA_SL) {
    *fl = 0;
    *sl = (int)u;
  } else {
    const int m = msb64(u);
    *fl = m - 4;
    *sl = (int)((u >> (m - 5)) & (AE_SA_SL - 1));
  }
}

static void bin_insert(ae_sa *sa, ae_blk *b) {
  int fl, sl;
  mapping(b->size, &fl, &sl);
  ae_blk *head = sa->bins[fl][sl];
  b->prev_free = NULL;
  b->next_free = head;
  if (head) head->prev_free = b;
  sa->bins[fl][sl] = b;
  sa->fl_bitmap |= 1u << fl;
  sa->sl_bitmap[fl] |= 1u << sl;
  b->is_free = 1;
  b->is_run = 0;
}

static void bin_remove(ae_sa *sa, ae_blk *b) {
  int fl, sl;
  mapping(b->size, &fl, &sl);
  if (b->prev_free) b->prev_free->next_free = b->next_free;
  else sa->bins[fl][sl] = b->next_free;
  if (b->next_free) b->next_free->prev_free = b->prev_free;
  if (sa->bins[fl][sl] == NULL) {
    sa->sl_bitmap[fl] &= ~(1u << sl);
    if (sa->sl_bitmap[fl] == 0) sa->fl_bitmap &= ~(1u << fl);
  }
  b->is_free = 0;
  b->prev_free = b->next_free = NULL; /* also: run = NULL, pins = 0 */
}

/* The smallest block of at least size: a bounded best-fit scan of the request's own bin (which mixes sizes
 * just above and just below it), then the first block of the next non-empty bin whose every block fits. */
static ae_blk *tlsf_find(ae_sa *sa, uint64_t size) {
  int fl, sl;
  mapping(size, &fl, &sl);
  ae_blk *best = NULL;
  int budget = 16;
  for (ae_blk *b = sa->bins[fl][sl]; b && budget > 0; b = b->next_free, budget--) {
    if (b->size >= size && (best == NULL || b->size < best->size)) {
      best = b;
      if (b->size == size) break;
    }
  }
  if (best) return best;
  /* Every block in a bin above (fl, sl) is at least size. */
  uint32_t sl_map = (sl + 1 < AE_SA_SL) ? sa->sl_bitmap[fl] & (~0u << (sl + 1)) : 0;
  if (sl_map == 0) {
    const uint32_t fl_map = (fl + 1 < 32) ? sa->fl_bitmap & (~0u << (fl + 1)) : 0;
    if (fl_map == 0) return NULL;
    fl = __builtin_ctz(fl_map);
    sl_map = sa->sl_bitmap[fl];
  }
  sl = __builtin_ctz(sl_map);
  return sa->bins[fl][sl];
}

/* The smallest block of at least size in the request's own bin, however long the bin (the slow path of a failed
 * tlsf_find, before the pool grows). */
static ae_blk *bin_scan(ae_sa *sa, uint64_t size) {
  int fl, sl;
  mapping(size, &fl, &sl);
  ae_blk *best = NULL;
  for (ae_blk *b = sa->bins[fl][sl]; b; b = b->next_free)
    if (b->size >= size && (best == NULL || b->size < best->size)) best = b;
  return best;
}

/* Take size bytes from the front of free block b (removed from its bin); the rest stays free. */
static int tlsf_take(ae_sa *sa, ae_blk *b, uint64_t size) {
  ae_blk *rest = NULL;
  if (b->size - size >= AE_SA_ALIGN) {
    rest = desc_alloc(sa);
    if (rest == NULL) return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "device pool: no host memory for a block descriptor");
  }
  bin_remove(sa, b);
  if (rest) {
    rest->addr = b->addr + size;
    rest->size = b->size - size;
    rest->slab = b->slab;
    rest->prev_phys = b;
    rest->next_phys = b->next_phys;
    if (b->next_phys) b->next_phys->prev_phys = rest;
    else b->slab->last = rest;
    b->next_phys = rest;
    b->size = size;
    bin_insert(sa, rest);
  }
  if (b->slab->used == 0) sa->empty_bytes -= b->slab->size;
  b->slab->used += b->size;
  return AETHER_OK;
}

static void slab_release(ae_sa *sa, ae_slab *s, ae_blk *whole) {
  bin_remove(sa, whole);
  desc_free(sa, whole);
  if (s->prev) s->prev->next = s->next;
  else sa->slabs = s->next;
  if (s->next) s->next->prev = s->prev;
  if (sa->growable == s) sa->growable = NULL;
  /* A failed munmap/hipFree leaves the range lost to us but the pool consistent. */
  (void)sa->be->release(sa->bstate, s->base, s->size, sa->slab_flags);
  sa->reserved -= s->size;
  sa->empty_bytes -= s->size;
  sa->nslabs--;
  sa->slabs_released++;
  desc_free(sa, s);
}

/* How much a pool grows by when nothing fits: for a new slab, 1/32 of what it holds and at least the minimum
 * slab; in place (no boundary to waste, only a syscall), 1/64 and at least 256 KiB. */
static uint64_t grow_step(const ae_sa *sa) {
  if (sa->growable && sa->be->resize) {
    return sa->reserved / 64 > 4 * AE_SA_RUN_BYTES ? AE_ALIGN_UP(sa->reserved / 64, AE_SA_RUN_BYTES) : 4 * AE_SA_RUN_BYTES;
  }
  return sa->reserved / 32 > sa->min_slab ? AE_ALIGN_UP(sa->reserved / 32, AE_SA_RUN_BYTES) : sa->min_slab;
}

/* Give the free tail of the growable slab back beyond retain bytes (with one growth step of hysteresis, so a
 * pool hovering at a boundary does not map and unmap in turn). b is the slab's last block, free. */
static void shrink_tail(ae_sa *sa, ae_slab *s, ae_blk *b) {
  const uint64_t step = grow_step(sa);
  if (sa->be->resize == NULL || b->size <= sa->retain + step) return;
  const uint64_t cut = (b->size - sa->retain) & ~(uint64_t)(AE_SA_RUN_BYTES - 1);
  if (cut == 0 || sa->be->resize(sa->bstate, s->base, s->size, s->size - cut) != AETHER_OK) return;
  bin_remove(sa, b);
  b->size -= cut;
  bin_insert(sa, b);
  s->size -= cut;
  sa->reserved -= cut;
}

/* Return block b to the free bins, merging with free neighbours; an emptied slab may go back to the backend,
 * and a long free tail of the growable slab is trimmed. */
static void tlsf_release(ae_sa *sa, ae_blk *b) {
  ae_slab *s = b->slab;
  s->used -= b->size;
  ae_blk *n = b->next_phys;
  if (n && n->is_free) {
    bin_remove(sa, n);
    b->size += n->size;
    b->next_phys = n->next_phys;
    if (n->next_phys) n->next_phys->prev_phys = b;
    else s->last = b;
    desc_free(sa, n);
  }
  ae_blk *p = b->prev_phys;
  if (p && p->is_free) {
    bin_remove(sa, p);
    p->size += b->size;
    p->next_phys = b->next_phys;
    if (b->next_phys) b->next_phys->prev_phys = p;
    else s->last = p;
    desc_free(sa, b);
    b = p;
  }
  bin_insert(sa, b);
  if (s->used == 0) {
    sa->empty_bytes += s->size;
    if (sa->empty_bytes > sa->retain) slab_release(sa, s, b);
  } else if (s == sa->growable && b == s->last) {
    shrink_tail(sa, s, b);
  }
}

/* Room for need more bytes. With a backend that can resize in place (host), the growable slab grows at its end,
 * merging with its free tail: the pool stays one contiguous range, with no slab boundary to waste space at.
 * Otherwise (GPU runtimes) a new slab. A step is at least the minimum slab and 1/32 of what the pool holds, so
 * backend calls grow with the logarithm of the pool's size while the unused tail stays near 3% of the total. */
static int grow(ae_sa *sa, uint64_t need) {
  const uint64_t step = grow_step(sa);
  ae_slab *g = sa->growable;
  if (g && sa->be->resize) {
    ae_blk *last = g->last;
    const uint64_t have = last->is_free ? last->size : 0;
    uint64_t more = need > have ? need - have : 0;
    if (more < step) more = step;
    more = AE_ALIGN_UP(more, AE_SA_RUN_BYTES);
    if (sa->be->resize(sa->bstate, g->base, g->size, g->size + more) == AETHER_OK) {
      if (last->is_free) {
        bin_remove(sa, last);
        last->size += more;
        bin_insert(sa, last);
      } else {
        ae_blk *b = desc_alloc(sa);
        if (b == NULL) {
          (void)sa->be->resize(sa->bstate, g->base, g->size + more, g->size);
          return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "device pool: no host memory for a block descriptor");
        }
        b->addr = g->base + g->size;
        b->size = more;
        b->slab = g;
        b->prev_phys = last;
        last->next_phys = b;
        g->last = b;
        bin_insert(sa, b);
      }
      if (g->used == 0) sa->empty_bytes += more;
      g->size += more;
      sa->reserved += more;
      return AETHER_OK;
    }
    /* It cannot grow there (its reservation is full): start a new slab. */
  }
  uint64_t want = sa->reserved / 32 > need ? sa->reserved / 32 : need;
  want = AE_ALIGN_UP(want, sa->min_slab);
  ae_slab *s = desc_alloc(sa);
  ae_blk *b = desc_alloc(sa);
  if (s == NULL || b == NULL) {
    if (s) desc_free(sa, s);
    if (b) desc_free(sa, b);
    return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "device pool: no host memory for a slab descriptor");
  }
  uint64_t addr = 0;
  int rc = sa->be->alloc(sa->bstate, want, sa->slab_flags, &addr);
  if (rc == AETHER_ERR_OUT_OF_MEMORY && want > AE_ALIGN_UP(need, AE_SA_RUN_BYTES)) {
    /* The device is nearly full: settle for exactly what this request needs. */
    want = AE_ALIGN_UP(need, AE_SA_RUN_BYTES);
    rc = sa->be->alloc(sa->bstate, want, sa->slab_flags, &addr);
  }
  if (rc == AETHER_OK && sa->zero_new_slabs) {
    /* Memory fresh from a GPU runtime may hold another process's or pool's bytes: zero it once here. */
    rc = sa->be->memset(sa->bstate, addr, 0, want);
    if (rc == AETHER_OK) rc = sa->be->sync(sa->bstate);
    if (rc != AETHER_OK) (void)sa->be->release(sa->bstate, addr, want, sa->slab_flags);
  }
  if (rc != AETHER_OK) {
    desc_free(sa, s);
    desc_free(sa, b);
    return rc;
  }
  s->base = addr;
  s->size = want;
  s->first = s->last = b;
  s->next = sa->slabs;
  if (sa->slabs) sa->slabs->prev = s;
  sa->slabs = s;
  b->addr = addr;
  b->size = want;
  b->slab = s;
  bin_insert(sa, b);
  sa->reserved += want;
  sa->empty_bytes += want;
  sa->nslabs++;
  sa->slabs_acquired++;
  if (sa->be->resize) sa->growable = s;
  return AETHER_OK;
}

/* ------------------------------------------------------------------------------- compaction --- */
static bool blk_pinned(const ae_blk *b) { return b->is_run ? b->run->pins != 0 : b->pins != 0; }

/* Slide the used blocks of the window [l, r] (consecutive blocks of one slab, none pinned) down to the window's
 * start, so its free bytes become one block at its end, merged with a free block after it. Runs move whole
 * (their base follows), TLSF allocations keep their descriptor (its addr follows): handles reach both through
 * the descriptor, so nothing else changes. The free descriptors removed are reused for the new free block, so
 * this needs no memory. A failed copy leaves that block where it is, with a free block before it. */
static int slide(ae_sa *sa, ae_slab *s, ae_blk *l, ae_blk *r) {
  ae_blk *const before = l->prev_phys, *const after = r->next_phys;
  const uint64_t end = r->addr + r->size;
  ae_blk *spare = NULL, *last = before;
  uint64_t cursor = l->addr;
  int rc = AETHER_OK;
#define LINK(x)                      \
  do {                               \
    (x)->prev_phys = last;           \
    if (last) last->next_phys = (x); \
    else s->first = (x);             \
    last = (x);                      \
  } while (0)
  for (ae_blk *b = l, *next;; b = next) {
    next = b->next_phys;
    const bool done = b == r;
    if (b->is_free) {
      bin_remove(sa, b);
      b->next_phys = spare;
      spare = b;
    } else {
      if (rc == AETHER_OK && b->addr != cursor) {
        rc = sa->be->copy(sa->bstate, cursor, b->addr, b->size);
        if (rc == AETHER_OK) {
          sa->moved_bytes += b->size;
          b->addr = cursor;
          if (b->is_run) b->run->base = cursor;
        }
      }
      if (b->addr > cursor) { /* only after a failed copy: keep the hole before it */
        ae_blk *g = spare;
        spare = g->next_phys;
        memset(g, 0, sizeof *g);
        g->addr = cursor;
        g->size = b->addr - cursor;
        g->slab = s;
        LINK(g);
        bin_insert(sa, g);
      }
      LINK(b);
      cursor = b->addr + b->size;
    }
    if (done) break;
  }
  ae_blk *tail = NULL;
  if (cursor < end) {
    tail = spare;
    spare = tail->next_phys;
    memset(tail, 0, sizeof *tail);
    tail->addr = cursor;
    tail->size = end - cursor;
    tail->slab = s;
    LINK(tail);
  }
#undef LINK
  if (last) last->next_phys = after;
  if (after) after->prev_phys = last;
  else s->last = last;
  if (tail && after && after->is_free) {
    bin_remove(sa, after);
    tail->size += after->size;
    tail->next_phys = after->next_phys;
    if (after->next_phys) after->next_phys->prev_phys = tail;
    else s->last = tail;
    desc_free(sa, after);
  }
  if (tail) bin_insert(sa, tail);
  while (spare) {
    ae_blk *n = spare->next_phys;
    desc_free(sa, spare);
    spare = n;
  }
  sa->compactions++;
  if (rc == AETHER_OK) rc = sa->be->sync(sa->bstate);
  return rc;
}

/* Make room for size bytes without growing. Over every slab, find the window of consecutive unpinned blocks
 * that holds at least size free bytes and the fewest used bytes (two pointers over the block list: the right
 * end walks every block, the left end drops blocks while the window stays big enough), and slide it, unless it
 * would move more than max_move bytes (the pool grows instead). A window with nothing to move is a free block
 * the bounded best fit did not reach, returned as is. */
static ae_blk *compact_for(ae_sa *sa, uint64_t size, uint64_t max_move) {
  ae_slab *bs = NULL;
  ae_blk *bl = NULL, *br = NULL;
  uint64_t best = UINT64_MAX;
  for (ae_slab *s = sa->slabs; s; s = s->next) {
    if (s->size - s->used < size) continue;
    ae_blk *l = s->first;
    uint64_t free_b = 0, used_b = 0;
    for (ae_blk *r = s->first; r; r = r->next_phys) {
      if (!r->is_free && blk_pinned(r)) {
        l = r->next_phys;
        free_b = used_b = 0;
        continue;
      }
      if (r->is_free) free_b += r->size;
      else used_b += r->size;
      while (l != r) {
        const uint64_t lf = l->is_free ? l->size : 0;
        if (free_b - lf < size) break;
        free_b -= lf;
        used_b -= l->is_free ? 0 : l->size;
        l = l->next_phys;
      }
      if (free_b >= size && used_b < best) {
        best = used_b;
        bs = s;
        bl = l;
        br = r;
        if (best == 0) break;
      }
    }
    if (best == 0) break;
  }
  if (bs == NULL) return NULL;
  if (best == 0) return bl->is_free ? bl : br; /* a one-block window */
  if (best > max_move) return NULL;
  if (slide(sa, bs, bl, br) != AETHER_OK) return NULL;
  return tlsf_find(sa, size);
}

/* A block of exactly size bytes (a multiple of 256), compacting or growing the pool if nothing fits. */
static int block_alloc(ae_sa *sa, uint64_t size, ae_blk **out) {
  ae_blk *b = tlsf_find(sa, size);
  if (b == NULL) {
    /* Growing is cheap, moving bytes is not, so what we pay to avoid growing depends on how far above what it
     * has allocated the pool would grow: up to 5% it just grows; up to 9% it compacts only when that moves
     * little (at most twice the request); beyond, it moves up to max(4 x request, 1/32 of the pool) first. */
    const uint64_t after = sa->allocated + size, grown = sa->reserved + grow_step(sa);
    uint64_t max_move = 0;
    if (sa->movable && grown > after + after / 20) {
      const uint64_t dear = 4 * size > sa->reserved / 32 ? 4 * size : sa->reserved / 32;
      max_move = grown > after + after / 11 ? dear : 2 * size;
    }
    /* Nothing to move: a free block the bounded best fit did not reach can only be in the request's own bin. */
    b = max_move ? compact_for(sa, size, max_move) : bin_scan(sa, size);
  }
  if (b == NULL) {
    const int rc = grow(sa, size);
    if (rc != AETHER_OK) return rc;
    b = tlsf_find(sa, size);
    if (b == NULL) return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "device pool: a new slab did not fit %" PRIu64 " bytes", size);
  }
  const int rc = tlsf_take(sa, b, size);
  if (rc != AETHER_OK) return rc;
  *out = b;
  return AETHER_OK;
}

/* ------------------------------------------------------------------------------------ runs --- */
static void partial_push(ae_sa *sa, ae_run *r) {
  r->prev = NULL;
  r->next = sa->partial[r->cls];
  if (r->next) r->next->prev = r;
  sa->partial[r->cls] = r;
}

static void partial_remove(ae_sa *sa, ae_run *r) {
  if (r->prev) r->prev->next = r->next;
  else sa->partial[r->cls] = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
}

static int run_new(ae_sa *sa, uint32_t cls, ae_run **out) {
  const uint32_t slot = (cls + 1) * AE_SA_ALIGN;
  const uint32_t nslots = AE_SA_RUN_BYTES / slot < AE_SA_RUN_SLOTS ? AE_SA_RUN_BYTES / slot : AE_SA_RUN_SLOTS;
  ae_run *r = desc_alloc(sa);
  if (r == NULL) return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "device pool: no host memory for a run descriptor");
  ae_blk *b;
  const int rc = block_alloc(sa, (uint64_t)slot * nslots, &b);
  if (rc != AETHER_OK) {
    desc_free(sa, r);
    return rc;
  }
  b->is_run = 1;
  b->run = r;
  r->base = b->addr;
  r->blk = b;
  r->cls = (uint16_t)cls;
  r->nslots = (uint16_t)nslots;
  r->nfree = (uint16_t)nslots;
  for (uint32_t i = 0; i < 2; i++) {
    const uint32_t lo = i * 64;
    r->bits[i] = nslots >= lo + 64 ? ~0ull : nslots > lo ? (1ull << (nslots - lo)) - 1 : 0;
  }
  partial_push(sa, r);
  sa->empty_runs[cls]++;
  *out = r;
  return AETHER_OK;
}

static void release_empty_runs(ae_sa *sa);

int _ae_sa_alloc(ae_sa *sa, uint64_t size, ae_sa_block *out) {
  const uint64_t bytes = AE_ALIGN_UP(size, AE_SA_ALIGN);
  if (bytes <= AE_SA_SMALL_MAX) {
    const uint32_t cls = (uint32_t)(bytes / AE_SA_ALIGN) - 1;
    ae_run *r = sa->partial[cls];
    if (r == NULL) {
      const int rc = run_new(sa, cls, &r);
      if (rc != AETHER_OK) return rc;
    }
    const uint32_t w = r->bits[0] ? 0 : 1;
    const uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(r->bits[w]);
    r->bits[w] &= r->bits[w] - 1;
    if (r->nfree == r->nslots) sa->empty_runs[cls]--;
    if (--r->nfree == 0) partial_remove(sa, r);
    out->where = (void *)((uintptr_t)r | 1);
    out->index = i;
    out->bytes = bytes;
    sa->allocated += bytes;
    return AETHER_OK;
  }
  ae_blk *b;
  const int rc = block_alloc(sa, bytes, &b);
  if (rc != AETHER_OK) return rc;
  out->where = b;
  out->index = 0;
  out->bytes = b->size;
  sa->allocated += b->size;
  return AETHER_OK;
}

uint64_t _ae_sa_addr(const ae_sa_block *blk) {
  if ((uintptr_t)blk->where & 1) {
    const ae_run *r = (const ae_run *)((uintptr_t)blk->where & ~(uintptr_t)1);
    return r->base + blk->index * blk->bytes;
  }
  return ((const ae_blk *)blk->where)->addr;
}

void _ae_sa_pin(const ae_sa_block *blk) {
  if ((uintptr_t)blk->where & 1) ((ae_run *)((uintptr_t)blk->where & ~(uintptr_t)1))->pins++;
  else ((ae_blk *)blk->where)->pins++;
}

void _ae_sa_unpin(const ae_sa_block *blk) {
  if ((uintptr_t)blk->where & 1) ((ae_run *)((uintptr_t)blk->where & ~(uintptr_t)1))->pins--;
  else ((ae_blk *)blk->where)->pins--;
}

void _ae_sa_free(ae_sa *sa, const ae_sa_block *blk) {
  sa->allocated -= blk->bytes;
  if ((uintptr_t)blk->where & 1) {
    ae_run *r = (ae_run *)((uintptr_t)blk->where & ~(uintptr_t)1);
    const uint32_t i = (uint32_t)blk->index;
    r->bits[i / 64] |= 1ull << (i % 64);
    if (r->nfree++ == 0) partial_push(sa, r);
    if (r->nfree == r->nslots) {
      /* Keep one empty run per class (a free/alloc ping-pong must not rebuild a run each time); give further
       * empty runs back to the TLSF so their space serves other sizes. */
      if (sa->empty_runs[r->cls]++ >= 1) {
        sa->empty_runs[r->cls]--;
        partial_remove(sa, r);
        ae_blk *b = r->blk;
        desc_free(sa, r);
        tlsf_release(sa, b);
      }
    }
  } else {
    tlsf_release(sa, (ae_blk *)blk->where);
  }
  /* A pool with nothing live that holds more than it may keep: the empty runs kept for reuse go too, so its
   * slabs empty and the retain rule gives them back (a pool within retain, like a ping-pong, keeps them). */
  if (sa->allocated == 0 && sa->reserved > sa->retain) release_empty_runs(sa);
}

void _ae_sa_init(ae_sa *sa, const ae_backend_ops *be, void *bstate, uint64_t min_slab, uint64_t retain,
                 uint32_t slab_flags, bool zero_new_slabs, bool movable) {
  memset(sa, 0, sizeof *sa);
  sa->be = be;
  sa->bstate = bstate;
  sa->min_slab = min_slab;
  sa->retain = retain;
  sa->slab_flags = slab_flags;
  sa->zero_new_slabs = zero_new_slabs;
  sa->movable = movable;
}

/* Give the empty runs kept for reuse back to the TLSF (their blocks merge, slabs may empty). */
static void release_empty_runs(ae_sa *sa) {
  for (uint32_t c = 0; c < AE_SA_CLASSES; c++) {
    for (ae_run *r = sa->partial[c], *next; r; r = next) {
      next = r->next;
      if (r->nfree != r->nslots) continue;
      partial_remove(sa, r);
      sa->empty_runs[c]--;
      ae_blk *b = r->blk;
      desc_free(sa, r);
      tlsf_release(sa, b);
    }
  }
}

uint64_t _ae_sa_trim(ae_sa *sa) {
  const uint64_t before = sa->reserved, keep = sa->retain;
  sa->retain = UINT64_MAX; /* nothing is released while runs go back; the slab loop below does it */
  release_empty_runs(sa);
  sa->retain = keep;
  for (ae_slab *s = sa->slabs, *next; s; s = next) {
    next = s->next;
    /* An empty slab is one free block spanning it; the growable one gives its free tail back. */
    if (s->used == 0) slab_release(sa, s, s->first);
    else if (s == sa->growable && s->last->is_free && sa->be->resize) {
      ae_blk *b = s->last;
      const uint64_t cut = b->size & ~(uint64_t)(AE_SA_RUN_BYTES - 1);
      if (cut && sa->be->resize(sa->bstate, s->base, s->size, s->size - cut) == AETHER_OK) {
        bin_remove(sa, b);
        b->size -= cut;
        s->size -= cut;
        sa->reserved -= cut;
        if (b->size) {
          bin_insert(sa, b);
        } else {
          s->last = b->prev_phys;
          s->last->next_phys = NULL;
          desc_free(sa, b);
        }
      }
    }
  }
  return before - sa->reserved;
}

uint64_t _ae_sa_largest_free(const ae_sa *sa) {
  uint64_t best = 0;
  if (sa->fl_bitmap) {
    const int fl = 31 - __builtin_clz(sa->fl_bitmap);
    const int sl = 31 - __builtin_clz(sa->sl_bitmap[fl]);
    for (const ae_blk *b = sa->bins[fl][sl]; b; b = b->next_free)
      if (b->size > best) best = b->size;
  }
  for (int c = AE_SA_CLASSES - 1; c >= 0; c--)
    if (sa->partial[c]) {
      const uint64_t slot = (uint64_t)(c + 1) * AE_SA_ALIGN;
      if (slot > best) best = slot;
      break;
    }
  return best;
}

void _ae_sa_destroy(ae_sa *sa) {
  for (ae_slab *s = sa->slabs; s; s = s->next) (void)sa->be->release(sa->bstate, s->base, s->size, sa->slab_flags);
  for (desc_chunk *c = sa->desc_chunks, *next; c; c = next) {
    next = c->next;
    munmap(c, DESC_CHUNK);
  }
  memset(sa, 0, sizeof *sa);
}
