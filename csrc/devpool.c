/* devpool.c: device memory pools for many tenants: contexts and their pools, handles, quotas, secure wipe,
 * shared objects, statistics and leaks. The allocator inside a pool is suballoc.c, the audit trail audit.c.
 *
 * Concurrency. Each pool (one per security context) has its own mutex, held for the whole of an operation on
 * it (validation, allocation, copy), so a handle cannot be freed under a copy through it; contexts never wait
 * for each other. Handles index one table per manager whose slots are owned by one pool for good: a slot's
 * atomic word (generation, state, owning pool) is all another pool's thread ever reads, which is what lets it
 * tell "another context's handle" from "stale" or "forged" without that pool's lock. Tenants' quota counters
 * are atomics shared by the tenant's pools. Shared objects live under one manager-wide mutex, always taken
 * before a pool's mutex, never after.
 *
 * Handles. 64 bits: kind (2: allocation, shared object, reference), index (24), generation (24), check (14).
 * The check bits are a keyed hash of the rest (a per-manager random cookie), so a made-up value is recognised
 * as forged, not mistaken for a stale handle. A slot's generation grows by one per allocation; one that has
 * reached 2^24 - 1 is retired, so a handle value is never issued twice by a manager. */
#include "devpool_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#define AE_MAX_CONTEXTS 4096u
#define AE_MAX_TENANTS 4096u
#define AE_HASH_SLOTS 8192u /* twice the maximum entries: linear probing stays short */
#define SLOT_CHUNK_BITS 16
#define SLOT_CHUNK (1u << SLOT_CHUNK_BITS)
#define SLOT_CHUNKS 256u /* 2^24 slots */
#define SLOT_BATCH 64u   /* fresh slots a pool takes at once (a chunk holds a whole number of batches) */

#define KIND_ALLOC 1u
#define KIND_OBJECT 2u
#define KIND_REF 3u
#define GEN_MAX ((1u << 24) - 1)
#define CHECK_MASK 0x3fffull

enum { SLOT_LIVE = 1, SLOT_FREED = 2, SLOT_RETIRED = 3, SLOT_STATE = 0x0f, SLOT_PINNED = 0x10 };

/* A handle table entry: 32 bytes, so a 2 MiB chunk holds 65536. word = gen << 40 | state << 32 | pool id, the
 * state's SLOT_PINNED bit set once the device address was handed out (the allocation never moves again). */
typedef struct ae_slot {
  _Atomic uint64_t word;
  uint64_t size;  /* requested bytes */
  void *where;    /* the suballocator's descriptor (ae_sa_block.where) */
  uint64_t aux;   /* ae_sa_block.index; while free: the next free slot's index + 1 */
} ae_slot;
_Static_assert(sizeof(ae_slot) == 32, "a slot is 32 bytes");

typedef struct ae_tenant {
  char id[64];
  uint32_t index;
  _Atomic uint64_t bytes; /* allocated bytes (rounded to 256) across the tenant's pools: what the quota counts */
  _Atomic uint64_t count;
  _Atomic uint64_t max_bytes, max_count; /* 0: unlimited */
} ae_tenant;

typedef struct ae_pool {
  pthread_mutex_t lock;
  aether_context_info info;
  uint32_t id;
  ae_tenant *tenant;
  ae_sa sa;
  uint32_t free_slot; /* head of this pool's free slot list: index + 1, 0 if empty */
  uint64_t live_count, live_bytes, peak_live_bytes, peak_live_count, peak_reserved;
  uint64_t allocs, frees, quota_hits, wiped_bytes, shared_objects;
  _Atomic uint64_t denials; /* also counted where the lock is not held */
} ae_pool;

typedef struct ae_perm {
  char runtime[32]; /* "*": any runtime */
  int access;       /* AETHER_ACCESS_READ or _READ_WRITE */
} ae_perm;
#define MAX_PERMS 8

typedef struct ae_object {
  uint32_t gen, state; /* state: SLOT_LIVE / SLOT_FREED / SLOT_RETIRED; 0 never issued */
  uint32_t creator_ctx, flags;
  uint32_t next_free;  /* index + 1 */
  uint32_t nperms;
  ae_sa_block blk;
  uint64_t size, refcount, transfers, owner_ref;
  ae_perm perms[MAX_PERMS];
} ae_object;

typedef struct ae_ref {
  uint32_t gen, state;
  uint32_t ctx;
  int access;
  uint32_t object; /* index */
  uint32_t next_free;
} ae_ref;

struct aether_devpool {
  const ae_backend_ops *be;
  void *bstate;
  int device;
  uint32_t flags;
  uint64_t slab_bytes, retain_bytes;
  uint64_t cookie;
  pthread_mutex_t reg_lock; /* context and tenant registration */
  _Atomic uint32_t ncontexts;
  uint32_t ntenants;
  _Atomic(ae_pool *) pools[AE_MAX_CONTEXTS + 1]; /* by context id */
  ae_tenant *tenants[AE_MAX_TENANTS];
  uint16_t ctx_hash[AE_HASH_SLOTS];    /* context id, 0 = empty */
  uint16_t tenant_hash[AE_HASH_SLOTS]; /* tenant index + 1, 0 = empty */
  _Atomic(ae_slot *) chunks[SLOT_CHUNKS];
  _Atomic uint32_t next_slot;
  pthread_mutex_t share_lock; /* shared objects and references */
  ae_object *objects;
  ae_ref *refs;
  uint32_t nobjects, cap_objects, free_object;
  uint32_t nrefs, cap_refs, free_ref;
  ae_audit audit;
};

/* --------------------------------------------------------------------------------------- names --- */
const char *aether_security_level_name(int level) {
  switch (level) {
    case AETHER_LEVEL_PUBLIC: return "public";
    case AETHER_LEVEL_CONFIDENTIAL: return "confidential";
    case AETHER_LEVEL_SECRET: return "secret";
    default: return "unknown";
  }
}

void _ae_devpool_names(const aether_devpool *dp, uint32_t ctx, const char **tenant, const char **runtime,
                       const char **level) {
  *tenant = "-";
  *runtime = "-";
  *level = "-";
  if (ctx & AE_AUDIT_TENANT_FLAG) {
    /* The tenant was registered before its record was published (the ring's release/acquire orders it). */
    const uint32_t t = ctx & ~AE_AUDIT_TENANT_FLAG;
    if (t < AE_MAX_TENANTS && dp->tenants[t]) *tenant = dp->tenants[t]->id;
    return;
  }
  if (ctx == 0 || ctx > AE_MAX_CONTEXTS) return;
  const ae_pool *p = atomic_load_explicit(&((aether_devpool *)dp)->pools[ctx], memory_order_acquire);
  if (p == NULL) return;
  *tenant = p->info.tenant;
  *runtime = p->info.runtime;
  *level = aether_security_level_name(p->info.level);
}

/* ------------------------------------------------------------------------------------- handles --- */
static inline uint64_t check_bits(const aether_devpool *dp, uint64_t body) {
  uint64_t x = body ^ dp->cookie;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x & CHECK_MASK;
}

static inline uint64_t make_handle(const aether_devpool *dp, uint32_t kind, uint32_t index, uint32_t gen) {
  const uint64_t body = ((uint64_t)kind << 62) | ((uint64_t)index << 38) | ((uint64_t)gen << 14);
  return body | check_bits(dp, body);
}

static inline uint32_t h_kind(uint64_t h) { return (uint32_t)(h >> 62); }
static inline uint32_t h_index(uint64_t h) { return (uint32_t)(h >> 38) & 0xffffffu; }
static inline uint32_t h_gen(uint64_t h) { return (uint32_t)(h >> 14) & 0xffffffu; }
static inline bool h_checks(const aether_devpool *dp, uint64_t h) {
  return check_bits(dp, h & ~CHECK_MASK) == (h & CHECK_MASK);
}

static inline uint64_t slot_word(uint32_t gen, uint32_t state, uint32_t pool) {
  return ((uint64_t)gen << 40) | ((uint64_t)state << 32) | pool;
}

static inline ae_sa_block slot_block(const ae_slot *s) {
  return (ae_sa_block){.where = s->where, .index = s->aux, .bytes = AE_ALIGN_UP(s->size, AE_SA_ALIGN)};
}

static inline ae_slot *slot_at(aether_devpool *dp, uint32_t index) {
  ae_slot *c = atomic_load_explicit(&dp->chunks[index >> SLOT_CHUNK_BITS], memory_order_acquire);
  return c ? &c[index & (SLOT_CHUNK - 1)] : NULL;
}

static const char *kind_noun(uint32_t kind) {
  return kind == KIND_ALLOC ? "handle" : kind == KIND_OBJECT ? "shared object" : "reference";
}

/* The caller's pool, or NULL with the status set. */
static ae_pool *pool_of(aether_devpool *dp, uint32_t ctx, const char *fn) {
  ae_pool *p = ctx >= 1 && ctx <= AE_MAX_CONTEXTS ? atomic_load_explicit(&dp->pools[ctx], memory_order_acquire) : NULL;
  if (p == NULL) _ae_fail(AETHER_ERR_INVALID_ARGUMENT, "%s: context %u does not exist", fn, ctx);
  return p;
}

static inline void audit(aether_devpool *dp, uint32_t op, uint32_t ctx, uint64_t handle, uint64_t size, int result) {
  _ae_audit(&dp->audit, op, ctx, handle, size, result);
}

/* A refusal: counted, audited, and returned with its message already set. */
static int deny(aether_devpool *dp, ae_pool *p, uint32_t op, uint64_t handle, uint64_t size, int status) {
  atomic_fetch_add_explicit(&p->denials, 1, memory_order_relaxed);
  audit(dp, op, p->id, handle, size, status);
  return status;
}

/* Resolve an allocation handle for pool p (whose lock is held). Never touches memory through the handle. */
static int resolve(aether_devpool *dp, ae_pool *p, uint64_t h, const char *fn, ae_slot **out) {
  const uint32_t kind = h_kind(h);
  if (kind != KIND_ALLOC || !h_checks(dp, h)) {
    if ((kind == KIND_OBJECT || kind == KIND_REF) && h_checks(dp, h))
      return _ae_fail(AETHER_ERR_INVALID_ARGUMENT, "%s: 0x%016" PRIx64 " is a %s, not an allocation handle", fn, h,
                      kind_noun(kind));
    return _ae_fail(AETHER_ERR_FORGED_HANDLE, "%s: handle 0x%016" PRIx64 " was never issued (forged)", fn, h);
  }
  const uint32_t index = h_index(h), gen = h_gen(h);
  ae_slot *s = index < atomic_load_explicit(&dp->next_slot, memory_order_acquire) ? slot_at(dp, index) : NULL;
  const uint64_t w = s ? atomic_load_explicit(&s->word, memory_order_acquire) : 0;
  const uint32_t sgen = (uint32_t)(w >> 40), state = (uint32_t)(w >> 32) & SLOT_STATE, owner = (uint32_t)w;
  if (w == 0 || gen == 0 || gen > sgen)
    return _ae_fail(AETHER_ERR_FORGED_HANDLE, "%s: handle 0x%016" PRIx64 " was never issued (forged)", fn, h);
  if (owner != p->id) {
    const ae_pool *o = atomic_load_explicit(&dp->pools[owner], memory_order_acquire);
    if (o && o->tenant != p->tenant)
      return _ae_fail(AETHER_ERR_ACCESS_DENIED, "%s: handle 0x%016" PRIx64 " belongs to another tenant", fn, h);
    return _ae_fail(AETHER_ERR_ACCESS_DENIED,
                    "%s: handle 0x%016" PRIx64 " belongs to another context of tenant %s (share it as an object)", fn,
                    h, p->tenant->id);
  }
  if (gen != sgen || state != SLOT_LIVE)
    return _ae_fail(AETHER_ERR_STALE_HANDLE, "%s: handle 0x%016" PRIx64 " was freed (use after free or double free)",
                    fn, h);
  *out = s;
  return AETHER_OK;
}

/* Take a free slot for pool p (lock held): its index, or a negative status. */
static int64_t slot_take(aether_devpool *dp, ae_pool *p) {
  if (p->free_slot == 0) {
    const uint32_t base = atomic_fetch_add_explicit(&dp->next_slot, SLOT_BATCH, memory_order_relaxed);
    if (base >= SLOT_CHUNKS * SLOT_CHUNK) {
      atomic_fetch_sub_explicit(&dp->next_slot, SLOT_BATCH, memory_order_relaxed);
      return _ae_fail(AETHER_ERR_LIMIT_REACHED, "device pools: all 2^24 handle slots of this manager are in use");
    }
    const uint32_t c = base >> SLOT_CHUNK_BITS;
    if (atomic_load_explicit(&dp->chunks[c], memory_order_acquire) == NULL) {
      void *m = mmap(NULL, (size_t)SLOT_CHUNK * sizeof(ae_slot), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
      if (m == MAP_FAILED) {
        /* These indices are lost to every pool, which costs 64 slots out of 2^24: simpler than giving back. */
        return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "device pools: no host memory for the handle table");
      }
      ae_slot *expected = NULL;
      if (!atomic_compare_exchange_strong_explicit(&dp->chunks[c], &expected, m, memory_order_acq_rel,
                                                   memory_order_acquire))
        munmap(m, (size_t)SLOT_CHUNK * sizeof(ae_slot));
    }
    for (uint32_t i = SLOT_BATCH; i-- > 0;) {
      ae_slot *s = slot_at(dp, base + i);
      s->aux = p->free_slot;
      p->free_slot = base + i + 1;
    }
  }
  const uint32_t index = p->free_slot - 1;
  p->free_slot = (uint32_t)slot_at(dp, index)->aux;
  return index;
}

/* Give a freed slot back to p's list (lock held), or retire it when its generation is spent. */
static void slot_put(aether_devpool *dp, ae_pool *p, uint32_t index) {
  ae_slot *s = slot_at(dp, index);
  const uint32_t gen = (uint32_t)(atomic_load_explicit(&s->word, memory_order_relaxed) >> 40);
  if (gen >= GEN_MAX) {
    atomic_store_explicit(&s->word, slot_word(gen, SLOT_RETIRED, p->id), memory_order_release);
    return;
  }
  s->aux = p->free_slot;
  p->free_slot = index + 1;
}

/* ------------------------------------------------------------------------------------- wiping --- */
static void fill_random(void *buf, size_t len) {
  uint8_t *b = buf;
  while (len > 0) {
    const ssize_t n = getrandom(b, len, 0);
    if (n > 0) {
      b += n;
      len -= (size_t)n;
    } else if (n < 0 && errno != EINTR) {
      /* No kernel randomness (an old kernel, a seccomp filter): a splitmix64 stream seeded per call. */
      uint64_t x = _ae_random_u64();
      while (len > 0) {
        uint64_t z = (x += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        const size_t k = len < 8 ? len : 8;
        memcpy(b, &z, k);
        b += k;
        len -= k;
      }
    }
  }
}

/* Device memory without a host view is wiped and read back through a staging buffer. It is mapped per wipe
 * rather than kept on the stack: 256 KiB chunks keep the number of device transfers low, and every exported
 * function must stay within the 16 KiB stack budget that `aether stack` gates. */
#define STAGE_BYTES ((uint64_t)256 << 10)
static uint8_t *stage_map(void) {
  void *p = mmap(NULL, STAGE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}
static void stage_unmap(uint8_t *p) {
  if (p != NULL) munmap(p, STAGE_BYTES);
}

/* Overwrite [addr, addr+bytes) as the level says: secret: zero, 0xFF, random, zero; confidential: zero; public:
 * nothing. With AETHER_DEVPOOL_VERIFY_WIPE the range is read back and must be all zero. Adds the bytes written
 * (each pass counted) to *wiped. */
static int wipe(aether_devpool *dp, int level, uint64_t addr, uint64_t bytes, uint64_t *wiped) {
  const ae_backend_ops *be = dp->be;
  void *st = dp->bstate;
  int rc = AETHER_OK;
  if (level == AETHER_LEVEL_PUBLIC || bytes == 0) return AETHER_OK;
  if (level == AETHER_LEVEL_SECRET) {
    rc = be->memset(st, addr, 0x00, bytes);
    if (rc == AETHER_OK) rc = be->memset(st, addr, 0xFF, bytes);
    if (rc == AETHER_OK) {
      void *view = be->host_view ? be->host_view(st, addr) : NULL;
      if (view) {
        fill_random(view, bytes);
      } else {
        uint8_t *buf = stage_map();
        if (buf == NULL) rc = _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "no memory for the wipe's staging buffer");
        for (uint64_t off = 0; buf != NULL && off < bytes && rc == AETHER_OK; off += STAGE_BYTES) {
          const uint64_t n = bytes - off < STAGE_BYTES ? bytes - off : STAGE_BYTES;
          fill_random(buf, n);
          rc = be->to_device(st, addr + off, buf, n);
        }
        stage_unmap(buf);
      }
    }
    *wiped += rc == AETHER_OK ? 3 * bytes : 0;
  }
  if (rc == AETHER_OK) rc = be->memset(st, addr, 0x00, bytes);
  if (rc == AETHER_OK) rc = be->sync(st);
  if (rc != AETHER_OK) return _ae_fail(AETHER_ERR_WIPE_FAILED, "wipe of %" PRIu64 " bytes at 0x%" PRIx64 " failed: %s",
                                       bytes, addr, aether_last_error());
  *wiped += bytes;
  if (dp->flags & AETHER_DEVPOOL_VERIFY_WIPE) {
    void *view = be->host_view ? be->host_view(st, addr) : NULL;
    uint64_t bad = UINT64_MAX;
    if (view) {
      const uint8_t *v = view;
      for (uint64_t i = 0; i < bytes; i++)
        if (v[i] != 0) {
          bad = i;
          break;
        }
    } else {
      uint8_t *buf = stage_map();
      AE_RETURN_ERROR_IF(buf == NULL, AETHER_ERR_OUT_OF_MEMORY, "no memory for the wipe's staging buffer");
      for (uint64_t off = 0; off < bytes && bad == UINT64_MAX; off += STAGE_BYTES) {
        const uint64_t n = bytes - off < STAGE_BYTES ? bytes - off : STAGE_BYTES;
        rc = be->to_host(st, buf, addr + off, n);
        if (rc != AETHER_OK) {
          stage_unmap(buf);
          return _ae_fail(AETHER_ERR_WIPE_FAILED, "wipe verification could not read back 0x%" PRIx64 ": %s",
                          addr + off, aether_last_error());
        }
        for (uint64_t i = 0; i < n; i++)
          if (buf[i] != 0) {
            bad = off + i;
            break;
          }
      }
      stage_unmap(buf);
    }
    AE_RETURN_ERROR_IF(bad != UINT64_MAX, AETHER_ERR_WIPE_FAILED,
                       "wipe verification failed: byte %" PRIu64 " of %" PRIu64 " at 0x%" PRIx64 " is not zero", bad,
                       bytes, addr);
  }
  return AETHER_OK;
}

/* --------------------------------------------------------------------------------- the manager --- */
int aether_devpool_create(const aether_devpool_config *cfg, aether_devpool **out) {
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_devpool_create: out is NULL");
  *out = NULL;
  aether_devpool_config c = {.backend = AETHER_DEVICE_DEFAULT};
  if (cfg) c = *cfg;
  const uint64_t slab = c.slab_bytes ? c.slab_bytes : (2u << 20);
  AE_RETURN_ERROR_IF(slab % AE_SA_RUN_BYTES != 0 || slab > ((uint64_t)1 << 40), AETHER_ERR_OUT_OF_RANGE,
                     "aether_devpool_create: slab_bytes %" PRIu64 " is not a multiple of 64 KiB up to 2^40", slab);
  const uint32_t ring = c.audit_ring ? c.audit_ring : 65536;
  AE_RETURN_ERROR_IF(!AE_IS_POW2(ring) || ring < 64 || ring > (1u << 24), AETHER_ERR_OUT_OF_RANGE,
                     "aether_devpool_create: audit_ring %u is not a power of two in [64, 2^24]", ring);
  AE_RETURN_ERROR_IF(c.flags & ~(uint32_t)(AETHER_DEVPOOL_VERIFY_WIPE | AETHER_DEVPOOL_NO_ENV_AUDIT),
                     AETHER_ERR_INVALID_ARGUMENT, "aether_devpool_create: unknown flags 0x%x", c.flags);
  const ae_backend_ops *be;
  int rc = _ae_backend_select(c.backend, c.device, &be);
  if (rc != AETHER_OK) return rc;
  /* Asked for a process-wide audit log: without SHA-256 we refuse to run rather than run unaudited. */
  const char *env_log = (c.flags & AETHER_DEVPOOL_NO_ENV_AUDIT) ? NULL : getenv("AETHER_AUDIT_LOG");
  if (env_log && *env_log) {
    rc = aether_audit_crypto_status();
    if (rc != AETHER_OK) return _ae_fail(rc, "AETHER_AUDIT_LOG=%s refused: %s", env_log, aether_last_error());
  }
  /* The audit counters inside sit on their own cache lines, so the manager needs that alignment (calloc's 16
   * would not do). */
  aether_devpool *dp = aligned_alloc(_Alignof(aether_devpool), AE_ALIGN_UP(sizeof *dp, _Alignof(aether_devpool)));
  AE_RETURN_ERROR_IF(dp == NULL, AETHER_ERR_OUT_OF_MEMORY, "aether_devpool_create: no memory for the manager");
  memset(dp, 0, sizeof *dp);
  dp->be = be;
  dp->device = c.device;
  dp->flags = c.flags;
  dp->slab_bytes = slab;
  dp->retain_bytes = c.retain_bytes ? c.retain_bytes : (32u << 20);
  dp->cookie = _ae_random_u64();
  pthread_mutex_init(&dp->reg_lock, NULL);
  pthread_mutex_init(&dp->share_lock, NULL);
  rc = be->open(c.device, &dp->bstate);
  if (rc == AETHER_OK) rc = _ae_audit_init(&dp->audit, dp, ring);
  if (rc == AETHER_OK && env_log && *env_log) rc = _ae_audit_set_file(&dp->audit, 0, env_log);
  if (rc != AETHER_OK) {
    const int keep = rc;
    char msg[320];
    snprintf(msg, sizeof msg, "%s", aether_last_error());
    _ae_audit_destroy(&dp->audit);
    if (dp->bstate) be->close(dp->bstate);
    free(dp);
    return _ae_fail(keep, "%s", msg);
  }
  *out = dp;
  return AETHER_OK;
}

void _ae_devpool_backend(aether_devpool *dp, const ae_backend_ops **be, void **state) {
  *be = dp->be;
  *state = dp->bstate;
}

int aether_devpool_backend(const aether_devpool *dp) {
  AE_RETURN_ERROR_IF(dp == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_devpool_backend: dp is NULL");
  return dp->be->kind;
}

static bool valid_name(const char *s, size_t max) {
  if (s == NULL) return false;
  size_t n = 0;
  for (; s[n]; n++) {
    const char ch = s[n];
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                    strchr("_.:@/+-", ch) != NULL;
    if (!ok || n >= max) return false;
  }
  return n > 0;
}

static uint32_t fnv(const char *a, const char *b, uint32_t x, uint32_t y) {
  uint32_t h = 2166136261u;
  for (; *a; a++) h = (h ^ (uint8_t)*a) * 16777619u;
  h = (h ^ 0xff) * 16777619u;
  for (; b && *b; b++) h = (h ^ (uint8_t)*b) * 16777619u;
  h = (h ^ x) * 16777619u;
  h = (h ^ y) * 16777619u;
  return h;
}

/* The tenant named id, registered if new (reg_lock held); NULL with the status set when the table is full. */
static ae_tenant *tenant_get(aether_devpool *dp, const char *id) {
  uint32_t i = fnv(id, NULL, 0, 0) & (AE_HASH_SLOTS - 1);
  for (;; i = (i + 1) & (AE_HASH_SLOTS - 1)) {
    const uint16_t e = dp->tenant_hash[i];
    if (e == 0) break;
    if (strcmp(dp->tenants[e - 1]->id, id) == 0) return dp->tenants[e - 1];
  }
  if (dp->ntenants >= AE_MAX_TENANTS) {
    _ae_fail(AETHER_ERR_LIMIT_REACHED, "device pools: %u tenants already registered", AE_MAX_TENANTS);
    return NULL;
  }
  ae_tenant *t = calloc(1, sizeof *t);
  if (t == NULL) {
    _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "device pools: no memory for a tenant");
    return NULL;
  }
  snprintf(t->id, sizeof t->id, "%s", id);
  t->index = dp->ntenants;
  dp->tenants[dp->ntenants++] = t;
  dp->tenant_hash[i] = (uint16_t)(t->index + 1);
  return t;
}

int aether_devpool_context(aether_devpool *dp, const char *tenant, const char *runtime, int level, uint32_t flags,
                           uint32_t *ctx) {
  AE_RETURN_ERROR_IF(dp == NULL || ctx == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_devpool_context: dp or ctx is NULL");
  AE_RETURN_ERROR_IF(!valid_name(tenant, 63), AETHER_ERR_INVALID_ARGUMENT,
                     "aether_devpool_context: tenant '%s' is not 1..63 characters from [A-Za-z0-9_.:@/+-]",
                     tenant ? tenant : "(null)");
  AE_RETURN_ERROR_IF(!valid_name(runtime, 31), AETHER_ERR_INVALID_ARGUMENT,
                     "aether_devpool_context: runtime '%s' is not 1..31 characters from [A-Za-z0-9_.:@/+-]",
                     runtime ? runtime : "(null)");
  AE_RETURN_ERROR_IF(level < AETHER_LEVEL_PUBLIC || level > AETHER_LEVEL_SECRET, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_devpool_context: level %d is not 0 (public), 1 (confidential) or 2 (secret)", level);
  AE_RETURN_ERROR_IF(flags & ~(uint32_t)AETHER_CONTEXT_ISOLATED, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_devpool_context: unknown flags 0x%x", flags);
  pthread_mutex_lock(&dp->reg_lock);
  uint32_t i = fnv(tenant, runtime, (uint32_t)level, flags) & (AE_HASH_SLOTS - 1);
  for (;; i = (i + 1) & (AE_HASH_SLOTS - 1)) {
    const uint16_t e = dp->ctx_hash[i];
    if (e == 0) break;
    const ae_pool *p = atomic_load_explicit(&dp->pools[e], memory_order_relaxed);
    if (strcmp(p->info.tenant, tenant) == 0 && strcmp(p->info.runtime, runtime) == 0 && p->info.level == level &&
        p->info.flags == flags) {
      pthread_mutex_unlock(&dp->reg_lock);
      *ctx = e;
      return AETHER_OK;
    }
  }
  const uint32_t id = atomic_load_explicit(&dp->ncontexts, memory_order_relaxed) + 1;
  if (id > AE_MAX_CONTEXTS) {
    pthread_mutex_unlock(&dp->reg_lock);
    return _ae_fail(AETHER_ERR_LIMIT_REACHED, "device pools: %u contexts already registered", AE_MAX_CONTEXTS);
  }
  ae_tenant *t = tenant_get(dp, tenant);
  ae_pool *p = t ? calloc(1, sizeof *p) : NULL;
  if (p == NULL) {
    pthread_mutex_unlock(&dp->reg_lock);
    return t ? _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "device pools: no memory for a pool") : aether_last_status();
  }
  pthread_mutex_init(&p->lock, NULL);
  snprintf(p->info.tenant, sizeof p->info.tenant, "%s", tenant);
  snprintf(p->info.runtime, sizeof p->info.runtime, "%s", runtime);
  p->info.level = level;
  p->info.flags = flags;
  p->id = id;
  p->tenant = t;
  /* GPU memory comes back from the runtime holding whatever was there: a pool zeroes each new slab once. */
  /* Only public pools compact: moving a confidential or secret block would leave a stale copy of its bytes
   * behind in free space, which is exactly what their wipes exist to prevent. */
  _ae_sa_init(&p->sa, dp->be, dp->bstate, dp->slab_bytes, dp->retain_bytes,
              (flags & AETHER_CONTEXT_ISOLATED) ? AE_BACKEND_GUARD : 0, dp->be->host_view == NULL,
              level == AETHER_LEVEL_PUBLIC);
  atomic_store_explicit(&dp->pools[id], p, memory_order_release);
  atomic_store_explicit(&dp->ncontexts, id, memory_order_release);
  dp->ctx_hash[i] = (uint16_t)id;
  pthread_mutex_unlock(&dp->reg_lock);
  audit(dp, AETHER_AUDIT_CONTEXT, id, 0, 0, AETHER_OK);
  *ctx = id;
  return AETHER_OK;
}

int aether_devpool_context_info(const aether_devpool *dp, uint32_t ctx, aether_context_info *out) {
  AE_RETURN_ERROR_IF(dp == NULL || out == NULL, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_devpool_context_info: dp or out is NULL");
  ae_pool *p = pool_of((aether_devpool *)dp, ctx, "aether_devpool_context_info");
  if (p == NULL) return AETHER_ERR_INVALID_ARGUMENT;
  *out = p->info;
  return AETHER_OK;
}

int aether_devpool_set_quota(aether_devpool *dp, const char *tenant, uint64_t max_bytes, uint64_t max_count) {
  AE_RETURN_ERROR_IF(dp == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_devpool_set_quota: dp is NULL");
  AE_RETURN_ERROR_IF(!valid_name(tenant, 63), AETHER_ERR_INVALID_ARGUMENT,
                     "aether_devpool_set_quota: tenant '%s' is not 1..63 characters from [A-Za-z0-9_.:@/+-]",
                     tenant ? tenant : "(null)");
  pthread_mutex_lock(&dp->reg_lock);
  ae_tenant *t = tenant_get(dp, tenant);
  pthread_mutex_unlock(&dp->reg_lock);
  if (t == NULL) return aether_last_status();
  atomic_store_explicit(&t->max_bytes, max_bytes, memory_order_relaxed);
  atomic_store_explicit(&t->max_count, max_count, memory_order_relaxed);
  audit(dp, AETHER_AUDIT_QUOTA, AE_AUDIT_TENANT_FLAG | t->index, max_count, max_bytes, AETHER_OK);
  return AETHER_OK;
}

/* ------------------------------------------------------------------------------ alloc and free --- */
/* Charge the tenant's quota for one allocation of bytes; undone with uncharge. */
static int charge(ae_pool *p, uint64_t bytes, uint64_t size) {
  ae_tenant *t = p->tenant;
  const uint64_t max_b = atomic_load_explicit(&t->max_bytes, memory_order_relaxed);
  const uint64_t max_c = atomic_load_explicit(&t->max_count, memory_order_relaxed);
  const uint64_t nb = atomic_fetch_add_explicit(&t->bytes, bytes, memory_order_relaxed) + bytes;
  const uint64_t nc = atomic_fetch_add_explicit(&t->count, 1, memory_order_relaxed) + 1;
  if ((max_b && nb > max_b) || (max_c && nc > max_c)) {
    atomic_fetch_sub_explicit(&t->bytes, bytes, memory_order_relaxed);
    atomic_fetch_sub_explicit(&t->count, 1, memory_order_relaxed);
    p->quota_hits++;
    if (max_b && nb > max_b)
      return _ae_fail(AETHER_ERR_QUOTA_EXCEEDED,
                      "tenant %s: allocating %" PRIu64 " bytes would use %" PRIu64 " of its %" PRIu64 "-byte quota",
                      t->id, size, nb, max_b);
    return _ae_fail(AETHER_ERR_QUOTA_EXCEEDED, "tenant %s: a live allocation beyond its quota of %" PRIu64, t->id,
                    max_c);
  }
  return AETHER_OK;
}

static void uncharge(ae_pool *p, uint64_t bytes) {
  atomic_fetch_sub_explicit(&p->tenant->bytes, bytes, memory_order_relaxed);
  atomic_fetch_sub_explicit(&p->tenant->count, 1, memory_order_relaxed);
}

/* Allocate size bytes in p (lock held), charged to its tenant; updates the pool's live counters. */
static int pool_alloc(ae_pool *p, uint64_t size, ae_sa_block *blk) {
  const uint64_t bytes = AE_ALIGN_UP(size, AE_SA_ALIGN);
  int rc = charge(p, bytes, size);
  if (rc != AETHER_OK) return rc;
  rc = _ae_sa_alloc(&p->sa, size, blk);
  if (rc != AETHER_OK) {
    uncharge(p, bytes);
    return rc;
  }
  p->live_count++;
  p->live_bytes += size;
  if (p->live_bytes > p->peak_live_bytes) p->peak_live_bytes = p->live_bytes;
  if (p->live_count > p->peak_live_count) p->peak_live_count = p->live_count;
  if (p->sa.reserved > p->peak_reserved) p->peak_reserved = p->sa.reserved;
  return AETHER_OK;
}

static void pool_release(ae_pool *p, const ae_sa_block *blk, uint64_t size) {
  _ae_sa_free(&p->sa, blk);
  uncharge(p, blk->bytes);
  p->live_count--;
  p->live_bytes -= size;
}

int aether_devpool_alloc(aether_devpool *dp, uint32_t ctx, uint64_t size, uint32_t flags, uint64_t *handle) {
  AE_RETURN_ERROR_IF(dp == NULL || handle == NULL, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_devpool_alloc: dp or handle is NULL");
  *handle = 0;
  ae_pool *p = pool_of(dp, ctx, "aether_devpool_alloc");
  if (p == NULL) return AETHER_ERR_INVALID_ARGUMENT;
  if (AE_UNLIKELY(size == 0 || size > AE_SA_MAX_SIZE || (flags & ~(uint32_t)AETHER_ALLOC_ZERO))) {
    const int rc = size == 0 || size > AE_SA_MAX_SIZE
                       ? _ae_fail(AETHER_ERR_OUT_OF_RANGE, "aether_devpool_alloc: size %" PRIu64 " is not in [1, 2^40]", size)
                       : _ae_fail(AETHER_ERR_INVALID_ARGUMENT, "aether_devpool_alloc: unknown flags 0x%x", flags);
    return deny(dp, p, AETHER_AUDIT_ALLOC, 0, size, rc);
  }
  pthread_mutex_lock(&p->lock);
  ae_sa_block blk;
  int rc = pool_alloc(p, size, &blk);
  if (rc != AETHER_OK) {
    if (rc == AETHER_ERR_QUOTA_EXCEEDED) atomic_fetch_add_explicit(&p->denials, 1, memory_order_relaxed);
    audit(dp, AETHER_AUDIT_ALLOC, ctx, 0, size, rc);
    pthread_mutex_unlock(&p->lock);
    return rc;
  }
  const int64_t index = slot_take(dp, p);
  if (index < 0 ||
      ((flags & AETHER_ALLOC_ZERO) && (rc = dp->be->memset(dp->bstate, _ae_sa_addr(&blk), 0, blk.bytes)) != 0)) {
    rc = index < 0 ? (int)index : rc;
    if (index >= 0) slot_put(dp, p, (uint32_t)index);
    pool_release(p, &blk, size);
    audit(dp, AETHER_AUDIT_ALLOC, ctx, 0, size, rc);
    pthread_mutex_unlock(&p->lock);
    return rc;
  }
  ae_slot *s = slot_at(dp, (uint32_t)index);
  const uint32_t gen = (uint32_t)(atomic_load_explicit(&s->word, memory_order_relaxed) >> 40) + 1;
  s->size = size;
  s->where = blk.where;
  s->aux = blk.index;
  atomic_store_explicit(&s->word, slot_word(gen, SLOT_LIVE, p->id), memory_order_release);
  p->allocs++;
  const uint64_t h = make_handle(dp, KIND_ALLOC, (uint32_t)index, gen);
  audit(dp, AETHER_AUDIT_ALLOC, ctx, h, size, AETHER_OK);
  pthread_mutex_unlock(&p->lock);
  *handle = h;
  return AETHER_OK;
}

int aether_devpool_free(aether_devpool *dp, uint32_t ctx, uint64_t handle) {
  AE_RETURN_ERROR_IF(dp == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_devpool_free: dp is NULL");
  ae_pool *p = pool_of(dp, ctx, "aether_devpool_free");
  if (p == NULL) return AETHER_ERR_INVALID_ARGUMENT;
  pthread_mutex_lock(&p->lock);
  ae_slot *s;
  int rc = resolve(dp, p, handle, "aether_devpool_free", &s);
  if (rc != AETHER_OK) {
    deny(dp, p, AETHER_AUDIT_FREE, handle, 0, rc);
    pthread_mutex_unlock(&p->lock);
    return rc;
  }
  const uint32_t index = h_index(handle), gen = h_gen(handle);
  const uint64_t size = s->size;
  const ae_sa_block blk = slot_block(s);
  if ((atomic_load_explicit(&s->word, memory_order_relaxed) >> 32) & SLOT_PINNED) _ae_sa_unpin(&blk);
  /* From here the handle is stale for everyone, while the range stays allocated until it is wiped. */
  atomic_store_explicit(&s->word, slot_word(gen, SLOT_FREED, p->id), memory_order_release);
  if (p->info.level != AETHER_LEVEL_PUBLIC) {
    /* Wipe outside the lock: a multi-megabyte secret wipe must not stall the context's other threads (and the
     * range cannot move meanwhile: only public pools compact). */
    pthread_mutex_unlock(&p->lock);
    uint64_t wiped = 0;
    rc = wipe(dp, p->info.level, _ae_sa_addr(&blk), blk.bytes, &wiped);
    pthread_mutex_lock(&p->lock);
    p->wiped_bytes += wiped;
    audit(dp, AETHER_AUDIT_WIPE, ctx, handle, blk.bytes, rc);
  }
  if (rc == AETHER_OK) {
    pool_release(p, &blk, size);
  } else {
    /* A range whose wipe did not verify never serves another allocation: it stays reserved and uncounted. */
    uncharge(p, blk.bytes);
    p->live_count--;
    p->live_bytes -= size;
  }
  slot_put(dp, p, index);
  p->frees++;
  audit(dp, AETHER_AUDIT_FREE, ctx, handle, size, rc);
  pthread_mutex_unlock(&p->lock);
  return rc;
}

/* ------------------------------------------------------------------------------ shared objects --- */
static int parse_perms(const char *spec, ae_perm *perms, uint32_t *n) {
  *n = 0;
  if (spec == NULL) return AETHER_OK;
  const char *s = spec;
  while (*s) {
    const char *colon = strchr(s, ':');
    const char *end = strchr(s, ',');
    if (end == NULL) end = s + strlen(s);
    AE_RETURN_ERROR_IF(colon == NULL || colon > end || colon == s, AETHER_ERR_INVALID_ARGUMENT,
                       "permissions '%s': expected runtime:r or runtime:rw entries separated by ','", spec);
    const size_t rl = (size_t)(colon - s), al = (size_t)(end - colon - 1);
    AE_RETURN_ERROR_IF(*n >= MAX_PERMS, AETHER_ERR_OUT_OF_RANGE, "permissions '%s': at most %d entries", spec, MAX_PERMS);
    AE_RETURN_ERROR_IF(rl >= sizeof perms[0].runtime, AETHER_ERR_INVALID_ARGUMENT,
                       "permissions '%s': a runtime name longer than 31 characters", spec);
    ae_perm *p = &perms[(*n)++];
    memcpy(p->runtime, s, rl);
    p->runtime[rl] = '\0';
    AE_RETURN_ERROR_IF(strcmp(p->runtime, "*") != 0 && !valid_name(p->runtime, 31), AETHER_ERR_INVALID_ARGUMENT,
                       "permissions '%s': '%s' is not a runtime tag or '*'", spec, p->runtime);
    if (al == 1 && colon[1] == 'r') p->access = AETHER_ACCESS_READ;
    else if (al == 2 && colon[1] == 'r' && colon[2] == 'w') p->access = AETHER_ACCESS_READ_WRITE;
    else return _ae_fail(AETHER_ERR_INVALID_ARGUMENT, "permissions '%s': access for %s is not r or rw", spec, p->runtime);
    s = *end ? end + 1 : end;
  }
  return AETHER_OK;
}

/* What runtime may do with o: the creator's runtime anything, others what perms grant (exact tag before "*"). */
static int granted(const aether_devpool *dp, const ae_object *o, const char *runtime) {
  const ae_pool *creator = atomic_load_explicit(&((aether_devpool *)dp)->pools[o->creator_ctx], memory_order_acquire);
  if (strcmp(creator->info.runtime, runtime) == 0) return AETHER_ACCESS_READ_WRITE;
  int any = 0;
  for (uint32_t i = 0; i < o->nperms; i++) {
    if (strcmp(o->perms[i].runtime, runtime) == 0) return o->perms[i].access;
    if (strcmp(o->perms[i].runtime, "*") == 0) any = o->perms[i].access;
  }
  return any;
}

/* Grow a table of entries (share_lock held) so that index n exists. */
static int table_grow(void **table, uint32_t *cap, uint32_t n, size_t entry) {
  if (n < *cap) return AETHER_OK;
  AE_RETURN_ERROR_IF(n >= (1u << 24), AETHER_ERR_LIMIT_REACHED, "shared objects: all 2^24 slots are in use");
  const uint32_t nc = *cap ? *cap * 2 : 64;
  void *t = realloc(*table, (size_t)nc * entry);
  AE_RETURN_ERROR_IF(t == NULL, AETHER_ERR_OUT_OF_MEMORY, "shared objects: no memory for the table");
  memset((char *)t + (size_t)*cap * entry, 0, (size_t)(nc - *cap) * entry);
  *table = t;
  *cap = nc;
  return AETHER_OK;
}

static int64_t object_take(aether_devpool *dp) {
  if (dp->free_object) {
    const uint32_t i = dp->free_object - 1;
    dp->free_object = dp->objects[i].next_free;
    return i;
  }
  const int rc = table_grow((void **)&dp->objects, &dp->cap_objects, dp->nobjects, sizeof(ae_object));
  return rc != AETHER_OK ? rc : (int64_t)dp->nobjects++;
}

static int64_t ref_take(aether_devpool *dp) {
  if (dp->free_ref) {
    const uint32_t i = dp->free_ref - 1;
    dp->free_ref = dp->refs[i].next_free;
    return i;
  }
  const int rc = table_grow((void **)&dp->refs, &dp->cap_refs, dp->nrefs, sizeof(ae_ref));
  return rc != AETHER_OK ? rc : (int64_t)dp->nrefs++;
}

static void object_put(aether_devpool *dp, uint32_t i) {
  ae_object *o = &dp->objects[i];
  o->state = o->gen >= GEN_MAX ? SLOT_RETIRED : SLOT_FREED;
  if (o->state == SLOT_FREED) {
    o->next_free = dp->free_object;
    dp->free_object = i + 1;
  }
}

static void ref_put(aether_devpool *dp, uint32_t i) {
  ae_ref *r = &dp->refs[i];
  r->state = r->gen >= GEN_MAX ? SLOT_RETIRED : SLOT_FREED;
  if (r->state == SLOT_FREED) {
    r->next_free = dp->free_ref;
    dp->free_ref = i + 1;
  }
}

/* Resolve a shared object id (share_lock held). */
static int resolve_object(aether_devpool *dp, uint64_t h, const char *fn, ae_object **out) {
  if (h_kind(h) != KIND_OBJECT || !h_checks(dp, h)) {
    if (h_checks(dp, h) && h_kind(h) != 0)
      return _ae_fail(AETHER_ERR_INVALID_ARGUMENT, "%s: 0x%016" PRIx64 " is a %s, not a shared object", fn, h,
                      kind_noun(h_kind(h)));
    return _ae_fail(AETHER_ERR_FORGED_HANDLE, "%s: shared object 0x%016" PRIx64 " was never issued (forged)", fn, h);
  }
  const uint32_t i = h_index(h), gen = h_gen(h);
  ae_object *o = i < dp->nobjects ? &dp->objects[i] : NULL;
  if (o == NULL || o->state == 0 || gen == 0 || gen > o->gen)
    return _ae_fail(AETHER_ERR_FORGED_HANDLE, "%s: shared object 0x%016" PRIx64 " was never issued (forged)", fn, h);
  if (gen != o->gen || o->state != SLOT_LIVE)
    return _ae_fail(AETHER_ERR_STALE_HANDLE, "%s: shared object 0x%016" PRIx64 " was freed (its last reference went)",
                    fn, h);
  *out = o;
  return AETHER_OK;
}

/* Resolve a reference held by pool p (share_lock held). */
static int resolve_ref(aether_devpool *dp, const ae_pool *p, uint64_t h, const char *fn, ae_ref **out) {
  if (h_kind(h) != KIND_REF || !h_checks(dp, h))
    return _ae_fail(AETHER_ERR_FORGED_HANDLE, "%s: reference 0x%016" PRIx64 " was never issued (forged)", fn, h);
  const uint32_t i = h_index(h), gen = h_gen(h);
  ae_ref *r = i < dp->nrefs ? &dp->refs[i] : NULL;
  if (r == NULL || r->state == 0 || gen == 0 || gen > r->gen)
    return _ae_fail(AETHER_ERR_FORGED_HANDLE, "%s: reference 0x%016" PRIx64 " was never issued (forged)", fn, h);
  /* Generation first: a released slot is reused by any context, so an old reference must be named stale
   * whoever holds the slot now. */
  if (gen != r->gen || r->state != SLOT_LIVE)
    return _ae_fail(AETHER_ERR_STALE_HANDLE, "%s: reference 0x%016" PRIx64 " was released (use after release)", fn, h);
  if (r->ctx != p->id) {
    const ae_pool *o = atomic_load_explicit(&dp->pools[r->ctx], memory_order_acquire);
    return _ae_fail(AETHER_ERR_ACCESS_DENIED, "%s: reference 0x%016" PRIx64 " belongs to %s", fn, h,
                    o && o->tenant != p->tenant ? "another tenant" : "another context (acquire your own)");
  }
  *out = r;
  return AETHER_OK;
}

static uint64_t issue_ref(aether_devpool *dp, uint32_t ri, uint32_t ctx, int access, uint32_t object) {
  ae_ref *r = &dp->refs[ri];
  r->gen++;
  r->state = SLOT_LIVE;
  r->ctx = ctx;
  r->access = access;
  r->object = object;
  return make_handle(dp, KIND_REF, ri, r->gen);
}

int aether_devpool_share_create(aether_devpool *dp, uint32_t ctx, uint64_t size, uint32_t flags, const char *perms,
                                const void *init, uint64_t init_len, uint64_t *object, uint64_t *ref) {
  AE_RETURN_ERROR_IF(dp == NULL || object == NULL || ref == NULL, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_devpool_share_create: dp, object or ref is NULL");
  *object = *ref = 0;
  ae_pool *p = pool_of(dp, ctx, "aether_devpool_share_create");
  if (p == NULL) return AETHER_ERR_INVALID_ARGUMENT;
  ae_perm parsed[MAX_PERMS];
  uint32_t nperms = 0;
  int rc = AETHER_OK;
  if (size == 0 || size > AE_SA_MAX_SIZE)
    rc = _ae_fail(AETHER_ERR_OUT_OF_RANGE, "aether_devpool_share_create: size %" PRIu64 " is not in [1, 2^40]", size);
  else if (flags & ~(uint32_t)AETHER_SHARE_IMMUTABLE)
    rc = _ae_fail(AETHER_ERR_INVALID_ARGUMENT, "aether_devpool_share_create: unknown flags 0x%x", flags);
  else if (init_len > size || (init_len && init == NULL))
    rc = _ae_fail(AETHER_ERR_OUT_OF_BOUNDS, "aether_devpool_share_create: %" PRIu64 " initial bytes for a %" PRIu64
                                            "-byte object", init_len, size);
  else if (p->info.flags & AETHER_CONTEXT_ISOLATED)
    rc = _ae_fail(AETHER_ERR_ACCESS_DENIED, "aether_devpool_share_create: context %u is isolated: it shares nothing", ctx);
  else
    rc = parse_perms(perms, parsed, &nperms);
  if (rc != AETHER_OK) return deny(dp, p, AETHER_AUDIT_SHARE_CREATE, 0, size, rc);

  pthread_mutex_lock(&dp->share_lock);
  const int64_t oi = object_take(dp);
  const int64_t ri = oi >= 0 ? ref_take(dp) : oi;
  if (ri < 0) {
    if (oi >= 0) object_put(dp, (uint32_t)oi);
    audit(dp, AETHER_AUDIT_SHARE_CREATE, ctx, 0, size, (int)ri);
    pthread_mutex_unlock(&dp->share_lock);
    return (int)ri;
  }
  ae_sa_block blk;
  pthread_mutex_lock(&p->lock);
  rc = pool_alloc(p, size, &blk);
  if (rc == AETHER_OK) {
    /* Nothing of the pool's past may leak to other runtimes: the object starts as init, then zeros. */
    /* Objects are reached outside their pool's lock, so they never move. */
    _ae_sa_pin(&blk);
    const uint64_t addr = _ae_sa_addr(&blk);
    rc = init_len ? dp->be->to_device(dp->bstate, addr, init, init_len) : AETHER_OK;
    if (rc == AETHER_OK) rc = dp->be->memset(dp->bstate, addr + init_len, 0, blk.bytes - init_len);
    if (rc == AETHER_OK) rc = dp->be->sync(dp->bstate);
    if (rc != AETHER_OK) {
      _ae_sa_unpin(&blk);
      pool_release(p, &blk, size);
    } else {
      p->shared_objects++;
    }
  }
  if (rc == AETHER_ERR_QUOTA_EXCEEDED) atomic_fetch_add_explicit(&p->denials, 1, memory_order_relaxed);
  pthread_mutex_unlock(&p->lock);
  if (rc != AETHER_OK) {
    ref_put(dp, (uint32_t)ri);
    object_put(dp, (uint32_t)oi);
    audit(dp, AETHER_AUDIT_SHARE_CREATE, ctx, 0, size, rc);
    pthread_mutex_unlock(&dp->share_lock);
    return rc;
  }
  ae_object *o = &dp->objects[oi];
  o->gen++;
  o->state = SLOT_LIVE;
  o->creator_ctx = ctx;
  o->flags = flags;
  o->blk = blk;
  o->size = size;
  o->refcount = 1;
  o->transfers = 0;
  o->nperms = nperms;
  memcpy(o->perms, parsed, sizeof parsed[0] * nperms);
  const bool immutable = flags & AETHER_SHARE_IMMUTABLE;
  const uint64_t oh = make_handle(dp, KIND_OBJECT, (uint32_t)oi, o->gen);
  const uint64_t rh = issue_ref(dp, (uint32_t)ri, ctx, immutable ? AETHER_ACCESS_READ : AETHER_ACCESS_READ_WRITE,
                                (uint32_t)oi);
  o->owner_ref = immutable ? 0 : rh;
  audit(dp, AETHER_AUDIT_SHARE_CREATE, ctx, oh, size, AETHER_OK);
  audit(dp, AETHER_AUDIT_ACQUIRE, ctx, rh, size, AETHER_OK);
  pthread_mutex_unlock(&dp->share_lock);
  *object = oh;
  *ref = rh;
  return AETHER_OK;
}

int aether_devpool_share_acquire(aether_devpool *dp, uint32_t ctx, uint64_t object, int access, uint64_t *ref) {
  AE_RETURN_ERROR_IF(dp == NULL || ref == NULL, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_devpool_share_acquire: dp or ref is NULL");
  *ref = 0;
  ae_pool *p = pool_of(dp, ctx, "aether_devpool_share_acquire");
  if (p == NULL) return AETHER_ERR_INVALID_ARGUMENT;
  if (access != AETHER_ACCESS_READ && access != AETHER_ACCESS_READ_WRITE)
    return deny(dp, p, AETHER_AUDIT_ACQUIRE, object, 0,
                _ae_fail(AETHER_ERR_INVALID_ARGUMENT, "aether_devpool_share_acquire: access %d is not 1 (read) or 3 "
                                                      "(read-write)", access));
  pthread_mutex_lock(&dp->share_lock);
  ae_object *o;
  int rc = resolve_object(dp, object, "aether_devpool_share_acquire", &o);
  if (rc == AETHER_OK) {
    const ae_pool *creator = atomic_load_explicit(&dp->pools[o->creator_ctx], memory_order_acquire);
    const int may = granted(dp, o, p->info.runtime);
    if (p->info.flags & AETHER_CONTEXT_ISOLATED)
      rc = _ae_fail(AETHER_ERR_ACCESS_DENIED, "aether_devpool_share_acquire: context %u is isolated: it shares nothing",
                    ctx);
    else if (creator->tenant != p->tenant)
      rc = _ae_fail(AETHER_ERR_ACCESS_DENIED, "aether_devpool_share_acquire: object 0x%016" PRIx64
                                              " belongs to another tenant", object);
    else if (access == AETHER_ACCESS_READ_WRITE && (o->flags & AETHER_SHARE_IMMUTABLE))
      rc = _ae_fail(AETHER_ERR_READ_ONLY, "aether_devpool_share_acquire: object 0x%016" PRIx64 " is immutable", object);
    else if ((may & access) != access)
      rc = _ae_fail(AETHER_ERR_ACCESS_DENIED, "aether_devpool_share_acquire: runtime %s may not %s object 0x%016" PRIx64,
                    p->info.runtime, access == AETHER_ACCESS_READ ? "read" : "write", object);
  }
  if (rc != AETHER_OK) {
    deny(dp, p, AETHER_AUDIT_ACQUIRE, object, 0, rc);
    pthread_mutex_unlock(&dp->share_lock);
    return rc;
  }
  const int64_t ri = ref_take(dp);
  if (ri < 0) {
    audit(dp, AETHER_AUDIT_ACQUIRE, ctx, object, 0, (int)ri);
    pthread_mutex_unlock(&dp->share_lock);
    return (int)ri;
  }
  o = &dp->objects[h_index(object)]; /* ref_take may not move objects, but be exact about it */
  const uint64_t rh = issue_ref(dp, (uint32_t)ri, ctx, access, h_index(object));
  o->refcount++;
  if (access == AETHER_ACCESS_READ_WRITE) {
    /* Ownership moves here: the previous owner's reference may still read, but no longer write. */
    o->owner_ref = rh;
    o->transfers++;
    audit(dp, AETHER_AUDIT_TRANSFER, ctx, object, o->size, AETHER_OK);
  }
  audit(dp, AETHER_AUDIT_ACQUIRE, ctx, rh, o->size, AETHER_OK);
  pthread_mutex_unlock(&dp->share_lock);
  *ref = rh;
  return AETHER_OK;
}

/* Drop the object's last reference: wipe by the creator's level and free (share_lock held). */
static int object_destroy(aether_devpool *dp, uint32_t oi, uint32_t ctx, uint64_t oh) {
  ae_object *o = &dp->objects[oi];
  ae_pool *c = atomic_load_explicit(&dp->pools[o->creator_ctx], memory_order_acquire);
  uint64_t wiped = 0;
  int rc = AETHER_OK;
  if (c->info.level != AETHER_LEVEL_PUBLIC) {
    rc = wipe(dp, c->info.level, _ae_sa_addr(&o->blk), o->blk.bytes, &wiped);
    audit(dp, AETHER_AUDIT_WIPE, ctx, oh, o->blk.bytes, rc);
  }
  pthread_mutex_lock(&c->lock);
  c->wiped_bytes += wiped;
  _ae_sa_unpin(&o->blk);
  if (rc == AETHER_OK) {
    pool_release(c, &o->blk, o->size);
  } else {
    uncharge(c, o->blk.bytes);
    c->live_count--;
    c->live_bytes -= o->size;
  }
  c->shared_objects--;
  c->frees++;
  pthread_mutex_unlock(&c->lock);
  audit(dp, AETHER_AUDIT_FREE, ctx, oh, o->size, rc);
  object_put(dp, oi);
  return rc;
}

int aether_devpool_share_release(aether_devpool *dp, uint32_t ctx, uint64_t ref) {
  AE_RETURN_ERROR_IF(dp == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_devpool_share_release: dp is NULL");
  ae_pool *p = pool_of(dp, ctx, "aether_devpool_share_release");
  if (p == NULL) return AETHER_ERR_INVALID_ARGUMENT;
  pthread_mutex_lock(&dp->share_lock);
  ae_ref *r;
  int rc = resolve_ref(dp, p, ref, "aether_devpool_share_release", &r);
  if (rc != AETHER_OK) {
    deny(dp, p, AETHER_AUDIT_RELEASE, ref, 0, rc);
    pthread_mutex_unlock(&dp->share_lock);
    return rc;
  }
  const uint32_t oi = r->object;
  ae_object *o = &dp->objects[oi];
  ref_put(dp, h_index(ref));
  if (o->owner_ref == ref) o->owner_ref = 0; /* nobody writes until someone acquires read-write */
  audit(dp, AETHER_AUDIT_RELEASE, ctx, ref, o->size, AETHER_OK);
  if (--o->refcount == 0) rc = object_destroy(dp, oi, ctx, make_handle(dp, KIND_OBJECT, oi, o->gen));
  pthread_mutex_unlock(&dp->share_lock);
  return rc;
}

int aether_devpool_share_info(aether_devpool *dp, uint64_t object, aether_share_info *out) {
  AE_RETURN_ERROR_IF(dp == NULL || out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_devpool_share_info: dp or out is NULL");
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&dp->share_lock);
  ae_object *o;
  const int rc = resolve_object(dp, object, "aether_devpool_share_info", &o);
  if (rc == AETHER_OK) {
    out->size = o->size;
    out->refcount = o->refcount;
    out->owner_ref = o->owner_ref;
    out->transfers = o->transfers;
    out->creator_ctx = o->creator_ctx;
    out->owner_ctx = o->owner_ref ? dp->refs[h_index(o->owner_ref)].ctx : 0;
    out->flags = o->flags;
  }
  pthread_mutex_unlock(&dp->share_lock);
  return rc;
}

/* ----------------------------------------------------------------------------------- copies --- */
enum { IO_WRITE, IO_READ, IO_FILL, IO_SIZE, IO_ADDRESS };
static const uint32_t io_op[] = {AETHER_AUDIT_WRITE, AETHER_AUDIT_READ, AETHER_AUDIT_FILL, AETHER_AUDIT_SIZE,
                                 AETHER_AUDIT_ADDRESS};
static const char *const io_fn[] = {"aether_devpool_write", "aether_devpool_read", "aether_devpool_fill",
                                    "aether_devpool_size", "aether_devpool_address"};

/* The operation itself, once the range [addr, addr+size) is known to be the caller's. */
static int io_do(aether_devpool *dp, int kind, uint64_t addr, uint64_t size, uint64_t offset, void *buf, int value,
                 uint64_t len, uint64_t *out) {
  switch (kind) {
    case IO_SIZE: *out = size; return AETHER_OK;
    case IO_ADDRESS: *out = addr; return AETHER_OK;
    default: break;
  }
  if (offset > size || len > size - offset)
    return _ae_fail(AETHER_ERR_OUT_OF_BOUNDS,
                    "%s: [%" PRIu64 ", %" PRIu64 "+%" PRIu64 ") is outside the %" PRIu64 "-byte allocation", io_fn[kind],
                    offset, offset, len, size);
  if (len == 0) return AETHER_OK;
  AE_RETURN_ERROR_IF(buf == NULL && kind != IO_FILL, AETHER_ERR_INVALID_ARGUMENT, "%s: %s is NULL", io_fn[kind],
                     kind == IO_WRITE ? "src" : "dst");
  if (kind == IO_WRITE) return dp->be->to_device(dp->bstate, addr + offset, buf, len);
  if (kind == IO_READ) return dp->be->to_host(dp->bstate, buf, addr + offset, len);
  const int rc = dp->be->memset(dp->bstate, addr + offset, value, len);
  return rc == AETHER_OK ? dp->be->sync(dp->bstate) : rc;
}

static int io_ref(aether_devpool *dp, ae_pool *p, int kind, uint64_t h, uint64_t offset, void *buf, int value,
                  uint64_t len, uint64_t *out) {
  pthread_mutex_lock(&dp->share_lock);
  ae_ref *r;
  int rc = resolve_ref(dp, p, h, io_fn[kind], &r);
  ae_object *o = rc == AETHER_OK ? &dp->objects[r->object] : NULL;
  if (rc == AETHER_OK && (kind == IO_WRITE || kind == IO_FILL)) {
    if (o->flags & AETHER_SHARE_IMMUTABLE)
      rc = _ae_fail(AETHER_ERR_READ_ONLY, "%s: shared object behind 0x%016" PRIx64 " is immutable", io_fn[kind], h);
    else if (r->access != AETHER_ACCESS_READ_WRITE)
      rc = _ae_fail(AETHER_ERR_READ_ONLY, "%s: reference 0x%016" PRIx64 " was acquired for reading", io_fn[kind], h);
    else if (o->owner_ref != h)
      rc = _ae_fail(AETHER_ERR_NOT_OWNER,
                    "%s: reference 0x%016" PRIx64 " no longer owns its object (ownership was transferred)", io_fn[kind],
                    h);
  }
  if (rc == AETHER_OK) rc = io_do(dp, kind, _ae_sa_addr(&o->blk), o->size, offset, buf, value, len, out);
  if (rc != AETHER_OK && rc != AETHER_ERR_DEVICE) atomic_fetch_add_explicit(&p->denials, 1, memory_order_relaxed);
  audit(dp, io_op[kind], p->id, h, kind >= IO_SIZE ? (o ? o->size : 0) : len, rc);
  pthread_mutex_unlock(&dp->share_lock);
  return rc;
}

static int io(aether_devpool *dp, uint32_t ctx, int kind, uint64_t h, uint64_t offset, void *buf, int value,
              uint64_t len, uint64_t *out) {
  AE_RETURN_ERROR_IF(dp == NULL, AETHER_ERR_INVALID_ARGUMENT, "%s: dp is NULL", io_fn[kind]);
  ae_pool *p = pool_of(dp, ctx, io_fn[kind]);
  if (p == NULL) return AETHER_ERR_INVALID_ARGUMENT;
  if (h_kind(h) == KIND_REF && h_checks(dp, h)) return io_ref(dp, p, kind, h, offset, buf, value, len, out);
  pthread_mutex_lock(&p->lock);
  ae_slot *s;
  int rc = resolve(dp, p, h, io_fn[kind], &s);
  if (rc == AETHER_OK && kind == IO_ADDRESS) {
    /* The caller now holds a raw device address: the allocation must never move again. */
    const uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
    if (!((w >> 32) & SLOT_PINNED)) {
      const ae_sa_block blk = slot_block(s);
      _ae_sa_pin(&blk);
      atomic_store_explicit(&s->word, w | ((uint64_t)SLOT_PINNED << 32), memory_order_release);
    }
  }
  if (rc == AETHER_OK) {
    const ae_sa_block blk = slot_block(s);
    rc = io_do(dp, kind, _ae_sa_addr(&blk), s->size, offset, buf, value, len, out);
  }
  if (rc != AETHER_OK && rc != AETHER_ERR_DEVICE) atomic_fetch_add_explicit(&p->denials, 1, memory_order_relaxed);
  audit(dp, io_op[kind], ctx, h, kind >= IO_SIZE ? (rc == AETHER_OK ? *out : 0) : len, rc);
  pthread_mutex_unlock(&p->lock);
  return rc;
}

int aether_devpool_write(aether_devpool *dp, uint32_t ctx, uint64_t handle, uint64_t offset, const void *src,
                         uint64_t len) {
  return io(dp, ctx, IO_WRITE, handle, offset, (void *)src, 0, len, NULL);
}

int aether_devpool_read(aether_devpool *dp, uint32_t ctx, uint64_t handle, uint64_t offset, void *dst, uint64_t len) {
  return io(dp, ctx, IO_READ, handle, offset, dst, 0, len, NULL);
}

int aether_devpool_fill(aether_devpool *dp, uint32_t ctx, uint64_t handle, uint64_t offset, int value, uint64_t len) {
  AE_RETURN_ERROR_IF(value < 0 || value > 255, AETHER_ERR_OUT_OF_RANGE, "aether_devpool_fill: value %d is not a byte",
                     value);
  return io(dp, ctx, IO_FILL, handle, offset, NULL, value, len, NULL);
}

int aether_devpool_size(aether_devpool *dp, uint32_t ctx, uint64_t handle, uint64_t *size) {
  AE_RETURN_ERROR_IF(size == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_devpool_size: size is NULL");
  *size = 0;
  return io(dp, ctx, IO_SIZE, handle, 0, NULL, 0, 0, size);
}

int aether_devpool_address(aether_devpool *dp, uint32_t ctx, uint64_t handle, uint64_t *address) {
  AE_RETURN_ERROR_IF(address == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_devpool_address: address is NULL");
  *address = 0;
  return io(dp, ctx, IO_ADDRESS, handle, 0, NULL, 0, 0, address);
}

int64_t aether_devpool_trim(aether_devpool *dp, uint32_t ctx) {
  AE_RETURN_ERROR_IF(dp == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_devpool_trim: dp is NULL");
  ae_pool *p = pool_of(dp, ctx, "aether_devpool_trim");
  if (p == NULL) return AETHER_ERR_INVALID_ARGUMENT;
  pthread_mutex_lock(&p->lock);
  const uint64_t released = _ae_sa_trim(&p->sa);
  audit(dp, AETHER_AUDIT_TRIM, ctx, 0, released, AETHER_OK);
  pthread_mutex_unlock(&p->lock);
  return (int64_t)released;
}

/* ------------------------------------------------------------------------------ stats and leaks --- */
static void pool_stats(ae_pool *p, aether_devpool_stats *o) {
  pthread_mutex_lock(&p->lock);
  const uint64_t largest = _ae_sa_largest_free(&p->sa);
  const uint64_t total_free = p->sa.reserved - p->sa.allocated;
  o->live_count += p->live_count;
  o->live_bytes += p->live_bytes;
  o->reserved_bytes += p->sa.reserved;
  o->total_free += total_free;
  if (largest > o->largest_free) o->largest_free = largest;
  o->peak_live_bytes += p->peak_live_bytes;
  o->peak_reserved_bytes += p->peak_reserved;
  o->peak_live_count += p->peak_live_count;
  o->slabs += p->sa.nslabs;
  o->slabs_acquired += p->sa.slabs_acquired;
  o->slabs_released += p->sa.slabs_released;
  o->compactions += p->sa.compactions;
  o->moved_bytes += p->sa.moved_bytes;
  o->allocs += p->allocs;
  o->frees += p->frees;
  o->denials += atomic_load_explicit(&p->denials, memory_order_relaxed);
  o->quota_hits += p->quota_hits;
  o->wiped_bytes += p->wiped_bytes;
  o->shared_objects += p->shared_objects;
  o->contexts++;
  pthread_mutex_unlock(&p->lock);
}

static void finish_stats(aether_devpool_stats *o) {
  o->fragmentation = o->total_free ? 1.0 - (double)o->largest_free / (double)o->total_free : 0.0;
  if (o->fragmentation < 0) o->fragmentation = 0;
}

int aether_devpool_context_stats(aether_devpool *dp, uint32_t ctx, aether_devpool_stats *out) {
  AE_RETURN_ERROR_IF(dp == NULL || out == NULL, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_devpool_context_stats: dp or out is NULL");
  memset(out, 0, sizeof *out);
  ae_pool *p = pool_of(dp, ctx, "aether_devpool_context_stats");
  if (p == NULL) return AETHER_ERR_INVALID_ARGUMENT;
  pool_stats(p, out);
  finish_stats(out);
  return AETHER_OK;
}

int aether_devpool_tenant_stats(aether_devpool *dp, const char *tenant, aether_devpool_stats *out) {
  AE_RETURN_ERROR_IF(dp == NULL || out == NULL || tenant == NULL, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_devpool_tenant_stats: dp, tenant or out is NULL");
  memset(out, 0, sizeof *out);
  const uint32_t n = atomic_load_explicit(&dp->ncontexts, memory_order_acquire);
  bool found = false;
  for (uint32_t i = 1; i <= n; i++) {
    ae_pool *p = atomic_load_explicit(&dp->pools[i], memory_order_acquire);
    if (p && strcmp(p->info.tenant, tenant) == 0) {
      pool_stats(p, out);
      found = true;
    }
  }
  AE_RETURN_ERROR_IF(!found, AETHER_ERR_INVALID_ARGUMENT, "aether_devpool_tenant_stats: tenant %s has no context",
                     tenant);
  finish_stats(out);
  return AETHER_OK;
}

int aether_devpool_get_stats(aether_devpool *dp, aether_devpool_stats *out) {
  AE_RETURN_ERROR_IF(dp == NULL || out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_devpool_get_stats: dp or out is NULL");
  memset(out, 0, sizeof *out);
  const uint32_t n = atomic_load_explicit(&dp->ncontexts, memory_order_acquire);
  for (uint32_t i = 1; i <= n; i++) {
    ae_pool *p = atomic_load_explicit(&dp->pools[i], memory_order_acquire);
    if (p) pool_stats(p, out);
  }
  finish_stats(out);
  return AETHER_OK;
}

size_t aether_devpool_check_leaks(aether_devpool *dp, aether_devpool_leak *out, size_t max) {
  if (dp == NULL) {
    _ae_fail(AETHER_ERR_INVALID_ARGUMENT, "aether_devpool_check_leaks: dp is NULL");
    return 0;
  }
  if (out == NULL) max = 0;
  size_t n = 0;
  const uint32_t slots = atomic_load_explicit(&dp->next_slot, memory_order_acquire);
  for (uint32_t i = 0; i < slots && i < SLOT_CHUNKS * SLOT_CHUNK; i++) {
    ae_slot *s = slot_at(dp, i);
    if (s == NULL) {
      i |= SLOT_CHUNK - 1; /* a chunk not mapped yet: skip it */
      continue;
    }
    const uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
    if (((w >> 32) & SLOT_STATE) != SLOT_LIVE) continue;
    if (n < max) {
      /* The size is read without the owner's lock: exact once the pools are quiet, which is when leaks are
       * checked; a racing free can at worst show the size of the allocation it replaced. */
      ae_pool *p = atomic_load_explicit(&dp->pools[(uint32_t)w], memory_order_acquire);
      pthread_mutex_lock(&p->lock);
      const uint64_t w2 = atomic_load_explicit(&s->word, memory_order_relaxed);
      out[n] = (aether_devpool_leak){.handle = make_handle(dp, KIND_ALLOC, i, (uint32_t)(w2 >> 40)),
                                     .size = s->size, .ctx = (uint32_t)w2, .kind = AETHER_LEAK_ALLOCATION};
      pthread_mutex_unlock(&p->lock);
    }
    n++;
  }
  pthread_mutex_lock(&dp->share_lock);
  for (uint32_t i = 0; i < dp->nobjects; i++) {
    const ae_object *o = &dp->objects[i];
    if (o->state != SLOT_LIVE) continue;
    if (n < max)
      out[n] = (aether_devpool_leak){.handle = make_handle(dp, KIND_OBJECT, i, o->gen), .size = o->size,
                                     .ctx = o->creator_ctx, .kind = AETHER_LEAK_SHARED_OBJECT};
    n++;
  }
  pthread_mutex_unlock(&dp->share_lock);
  return n;
}

/* ----------------------------------------------------------------------------------- audit API --- */
size_t aether_devpool_audit_read(aether_devpool *dp, uint64_t after_seq, aether_audit_record *out, size_t max) {
  if (dp == NULL || (out == NULL && max > 0)) {
    _ae_fail(AETHER_ERR_INVALID_ARGUMENT, "aether_devpool_audit_read: dp or out is NULL");
    return 0;
  }
  return _ae_audit_read(&dp->audit, after_seq, out, max);
}

uint64_t aether_devpool_audit_seq(aether_devpool *dp) {
  return dp ? atomic_load_explicit(&dp->audit.head, memory_order_acquire) : 0;
}

int aether_devpool_set_audit_log(aether_devpool *dp, uint32_t ctx, const char *path) {
  AE_RETURN_ERROR_IF(dp == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_devpool_set_audit_log: dp is NULL");
  if (ctx != 0 && pool_of(dp, ctx, "aether_devpool_set_audit_log") == NULL) return AETHER_ERR_INVALID_ARGUMENT;
  return _ae_audit_set_file(&dp->audit, ctx, path);
}

int aether_devpool_audit_flush(aether_devpool *dp) {
  AE_RETURN_ERROR_IF(dp == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_devpool_audit_flush: dp is NULL");
  return _ae_audit_flush(&dp->audit);
}

/* ------------------------------------------------------------------------------------ teardown --- */
void aether_devpool_destroy(aether_devpool *dp) {
  if (dp == NULL) return;
  /* Secret bytes must not outlive the manager in a slab the backend hands to someone else: wipe what is live. */
  const uint32_t slots = atomic_load_explicit(&dp->next_slot, memory_order_acquire);
  for (uint32_t i = 0; i < slots; i++) {
    ae_slot *s = slot_at(dp, i);
    if (s == NULL) {
      i |= SLOT_CHUNK - 1;
      continue;
    }
    const uint64_t w = atomic_load_explicit(&s->word, memory_order_relaxed);
    if (((w >> 32) & SLOT_STATE) != SLOT_LIVE) continue;
    ae_pool *p = atomic_load_explicit(&dp->pools[(uint32_t)w], memory_order_relaxed);
    uint64_t wiped = 0;
    const uint64_t h = make_handle(dp, KIND_ALLOC, i, (uint32_t)(w >> 40));
    const ae_sa_block blk = slot_block(s);
    const int rc = wipe(dp, p->info.level, _ae_sa_addr(&blk), blk.bytes, &wiped);
    if (p->info.level != AETHER_LEVEL_PUBLIC) audit(dp, AETHER_AUDIT_WIPE, p->id, h, AE_ALIGN_UP(s->size, AE_SA_ALIGN), rc);
    audit(dp, AETHER_AUDIT_FREE, p->id, h, s->size, rc);
  }
  for (uint32_t i = 0; i < dp->nobjects; i++) {
    ae_object *o = &dp->objects[i];
    if (o->state != SLOT_LIVE) continue;
    ae_pool *c = atomic_load_explicit(&dp->pools[o->creator_ctx], memory_order_relaxed);
    uint64_t wiped = 0;
    const int rc = wipe(dp, c->info.level, _ae_sa_addr(&o->blk), o->blk.bytes, &wiped);
    audit(dp, AETHER_AUDIT_FREE, o->creator_ctx, make_handle(dp, KIND_OBJECT, i, o->gen), o->size, rc);
  }
  _ae_audit_destroy(&dp->audit); /* drains the ring into the files first */
  const uint32_t n = atomic_load_explicit(&dp->ncontexts, memory_order_acquire);
  for (uint32_t i = 1; i <= n; i++) {
    ae_pool *p = atomic_load_explicit(&dp->pools[i], memory_order_relaxed);
    if (p == NULL) continue;
    _ae_sa_destroy(&p->sa);
    pthread_mutex_destroy(&p->lock);
    free(p);
  }
  for (uint32_t i = 0; i < dp->ntenants; i++) free(dp->tenants[i]);
  for (uint32_t c = 0; c < SLOT_CHUNKS; c++) {
    ae_slot *m = atomic_load_explicit(&dp->chunks[c], memory_order_relaxed);
    if (m) munmap(m, (size_t)SLOT_CHUNK * sizeof(ae_slot));
  }
  free(dp->objects);
  free(dp->refs);
  dp->be->close(dp->bstate);
  pthread_mutex_destroy(&dp->reg_lock);
  pthread_mutex_destroy(&dp->share_lock);
  free(dp);
}
