/* devpool: the device memory pools (host backend) run multi-tenant programs against a model of handles,
 * quotas and shared objects.
 *
 * The input registers up to 6 security contexts (3 tenants, 3 runtimes, 3 levels, some isolated), then runs
 * allocations (zeroed or not, refused sizes and flags), frees, bounds-checked writes, reads and fills, sizes,
 * addresses, quotas set and lowered, shared objects created (immutable or not, with permission lists),
 * acquired for reading or writing (ownership moves), released to their end, trims, leak counts and stats, with
 * every handle used from the right context, the wrong context, the wrong tenant, after its free, as the wrong
 * kind, and forged (bits flipped, made up). Checked:
 * - every call's status is the model's: OK, FORGED_HANDLE, STALE_HANDLE, ACCESS_DENIED, OUT_OF_BOUNDS,
 *   QUOTA_EXCEEDED, READ_ONLY, NOT_OWNER, OUT_OF_RANGE or INVALID_ARGUMENT, and a refusal changes nothing;
 * - bytes read back are what the program wrote (zeroed allocations and new shared objects read as zeros
 *   after their initial bytes); a tenant's quota counts bytes rounded up to 256 and live allocations;
 * - live counts, leak listings and share_info (refcount, owner) agree with the model;
 * - nothing crashes, leaks or touches memory it should not (ASan, UBSan).
 * libFuzzer options: -max_len=2048
 */
#include "fuzz_helpers.h"

#include "aether.h"

#define MAX_CTX 6
#define MAX_H 96
#define MAX_SIZE 2048
#define MAX_OPS 200

static const char *const TENANTS[3] = {"acme", "bio.lab", "team-7"};
static const char *const RUNTIMES[3] = {"julia", "elixir", "runa"};
static const char *const PERMS[6] = {NULL, "", "*:r", "*:rw", "elixir:rw,*:r", "julia:r,runa:rw"};

enum { K_ALLOC = 1, K_OBJECT = 2, K_REF = 3 };
typedef struct h {
  int kind;
  uint64_t v;
  uint32_t ctx; /* owner (alloc, ref) or creator (object) */
  bool live;
  uint64_t size;
  uint8_t data[MAX_SIZE];  /* alloc, object: contents */
  uint8_t known[MAX_SIZE]; /* which bytes the model knows */
  int obj;                 /* ref: index of its object */
  int access;              /* ref */
  bool immutable;          /* object */
  int perms;               /* object */
  int refcount;            /* object */
  uint64_t owner_ref;      /* object */
} hnd;

typedef struct ctxm {
  uint32_t id;
  int tenant, runtime, level;
  bool isolated;
} ctxm;

static hnd H[MAX_H];
static int nh;
static ctxm C[MAX_CTX];
static int nc;
static uint64_t quota_bytes[3], quota_count[3], used_bytes[3], used_count[3];
static aether_devpool *dp;
static uint8_t io[MAX_SIZE];

static uint64_t charge_of(uint64_t size) { return (size + 255) & ~(uint64_t)255; }
static int tenant_of(uint32_t ctx) {
  for (int i = 0; i < nc; i++)
    if (C[i].id == ctx) return C[i].tenant;
  return -1;
}
static const ctxm *ctx_of(uint32_t id) {
  for (int i = 0; i < nc; i++)
    if (C[i].id == id) return &C[i];
  return NULL;
}
static hnd *find(uint64_t v) {
  for (int i = 0; i < nh; i++)
    if (H[i].v == v) return &H[i];
  return NULL;
}

static bool quota_ok(int t, uint64_t size) {
  const uint64_t b = used_bytes[t] + charge_of(size), c = used_count[t] + 1;
  return !((quota_bytes[t] && b > quota_bytes[t]) || (quota_count[t] && c > quota_count[t]));
}

static uint64_t cur_handle; /* the handle of the call being checked (for the known deviation above) */
static uint32_t cur_ctx;
static bool stale_ref_reused(uint64_t v, uint32_t ctx, int got, int want);

static void expect(int got, int want, const char *what) {
  FUZZ_ASSERT_MSG(got == want || stale_ref_reused(cur_handle, cur_ctx, got, want), "%s: %s (%s), the model says %s", what, aether_error_name(got), got ? aether_last_error() : "",
                  aether_error_name(want));
}

/* What resolving h as an allocation handle from ctx gives (the library's order: kind, forged, owner, stale). */
static int resolve_alloc(uint64_t v, uint32_t ctx) {
  const hnd *x = find(v);
  if (x == NULL) return AETHER_ERR_FORGED_HANDLE;
  if (x->kind != K_ALLOC) return AETHER_ERR_INVALID_ARGUMENT;
  if (x->ctx != ctx) return AETHER_ERR_ACCESS_DENIED;
  return x->live ? AETHER_OK : AETHER_ERR_STALE_HANDLE;
}
/* Reference slots are shared by every context, so a released reference is stale whoever held it (its owner is
 * not known once the slot is reused); a live one of another context is denied. */
static int resolve_ref(uint64_t v, uint32_t ctx) {
  const hnd *x = find(v);
  if (x == NULL || x->kind != K_REF) return AETHER_ERR_FORGED_HANDLE;
  if (!x->live) return AETHER_ERR_STALE_HANDLE;
  return x->ctx != ctx ? AETHER_ERR_ACCESS_DENIED : AETHER_OK;
}

/* A made-up handle carries 14 keyed check bits (the manager's key is random), so one in 16384 passes the check:
 * it is then refused for its kind, owner or generation instead of as forged. Any refusal is right for it. */
static bool stale_ref_reused(uint64_t v, uint32_t ctx, int got, int want) {
  (void)ctx;
  const hnd *x = find(v);
  if (x == NULL && v != 0 && want == AETHER_ERR_FORGED_HANDLE)
    return got == AETHER_ERR_FORGED_HANDLE || got == AETHER_ERR_INVALID_ARGUMENT || got == AETHER_ERR_ACCESS_DENIED ||
           got == AETHER_ERR_STALE_HANDLE;
  return false;
}
static int resolve_object(uint64_t v) {
  const hnd *x = find(v);
  if (x == NULL) return AETHER_ERR_FORGED_HANDLE;
  if (x->kind != K_OBJECT) return AETHER_ERR_INVALID_ARGUMENT;
  return x->live ? AETHER_OK : AETHER_ERR_STALE_HANDLE;
}

/* A handle for an operation: one the program holds, or a forged one (bits flipped, made up, zero). */
static uint64_t pick_handle_raw(fuzz_producer *p) {
  const uint8_t sel = fuzz_u8(p);
  const uint8_t bit = fuzz_u8(p);
  if (sel < 200 && nh > 0) return H[sel % nh].v;
  if (sel < 240 && nh > 0) {
    const uint64_t v = H[sel % nh].v ^ ((uint64_t)1 << (bit % 64));
    return find(v) ? v ^ 1 : v;
  }
  return sel == 255 ? 0 : fuzz_mix64(&(uint64_t){bit * 7919u + sel});
}
static uint64_t pick_handle(fuzz_producer *p) { return cur_handle = pick_handle_raw(p); }

static hnd *new_handle(int kind, uint64_t v, uint32_t ctx, uint64_t size) {
  FUZZ_ASSERT_MSG(find(v) == NULL, "handle %#llx issued twice", (unsigned long long)v);
  FUZZ_ASSERT_MSG(v != 0, "handle 0 issued");
  hnd *x = &H[nh++];
  memset(x, 0, sizeof *x);
  x->kind = kind, x->v = v, x->ctx = ctx, x->live = true, x->size = size;
  return x;
}

/* Copies through an allocation or a reference: returns the data holder (the allocation or the object). */
static hnd *holder(uint64_t v) {
  hnd *x = find(v);
  return x->kind == K_REF ? &H[x->obj] : x;
}

static int io_expect(uint64_t v, uint32_t ctx, bool writing, uint64_t off, uint64_t len) {
  const hnd *x = find(v);
  int st;
  if (x && x->kind == K_REF) {
    st = resolve_ref(v, ctx);
    if (st == AETHER_OK && writing) {
      const hnd *o = &H[x->obj];
      if (o->immutable || x->access != AETHER_ACCESS_READ_WRITE) st = AETHER_ERR_READ_ONLY;
      else if (o->owner_ref != v) st = AETHER_ERR_NOT_OWNER;
    }
  } else {
    st = resolve_alloc(v, ctx);
  }
  if (st != AETHER_OK) return st;
  const uint64_t size = holder(v)->size;
  return off > size || len > size - off ? AETHER_ERR_OUT_OF_BOUNDS : AETHER_OK;
}

static void object_gone(hnd *o) {
  o->live = false;
  const int t = tenant_of(o->ctx);
  used_bytes[t] -= charge_of(o->size);
  used_count[t]--;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  aether_memory_set_option("quiet", "1");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_producer p = fuzz_producer_make(data, size);
  const uint8_t setup = fuzz_u8(&p);
  aether_devpool_config cfg = {.backend = AETHER_DEVICE_HOST, .slab_bytes = (uint64_t)64 << 10,
                               .retain_bytes = setup & 1 ? 0 : UINT64_MAX, .audit_ring = 64,
                               .flags = AETHER_DEVPOOL_NO_ENV_AUDIT | (setup & 2 ? AETHER_DEVPOOL_VERIFY_WIPE : 0)};
  FUZZ_ASSERT_MSG(aether_devpool_create(&cfg, &dp) == AETHER_OK, "create: %s", aether_last_error());
  nh = nc = 0;
  memset(quota_bytes, 0, sizeof quota_bytes);
  memset(quota_count, 0, sizeof quota_count);
  memset(used_bytes, 0, sizeof used_bytes);
  memset(used_count, 0, sizeof used_count);
  const int want_ctx = 1 + (setup >> 2) % MAX_CTX;
  for (int i = 0; i < want_ctx; i++) {
    const uint8_t b = fuzz_u8(&p);
    ctxm c = {0, b % 3, b / 3 % 3, b / 9 % 3, (b & 0xc0) == 0xc0};
    uint32_t id = 0;
    expect(aether_devpool_context(dp, TENANTS[c.tenant], RUNTIMES[c.runtime], c.level, c.isolated ? AETHER_CONTEXT_ISOLATED : 0, &id),
           AETHER_OK, "context");
    const ctxm *same = NULL;
    for (int k = 0; k < nc; k++)
      if (C[k].tenant == c.tenant && C[k].runtime == c.runtime && C[k].level == c.level && C[k].isolated == c.isolated) same = &C[k];
    if (same) {
      FUZZ_ASSERT_MSG(id == same->id, "the same context got ids %u and %u", id, same->id);
      continue;
    }
    for (int k = 0; k < nc; k++) FUZZ_ASSERT_MSG(C[k].id != id, "two contexts got id %u", id);
    c.id = id;
    C[nc++] = c;
    FUZZ_LOG("context %u: %s/%s level %d%s", id, TENANTS[c.tenant], RUNTIMES[c.runtime], c.level, c.isolated ? " isolated" : "");
  }
  uint32_t bad_id = 0;
  expect(aether_devpool_context(dp, "bad name!", "julia", 0, 0, &bad_id), AETHER_ERR_INVALID_ARGUMENT, "a bad tenant name");

  for (unsigned i = 0; i < MAX_OPS && !fuzz_empty(&p); i++) {
    const uint8_t op = fuzz_u8(&p) % 12;
    const ctxm *c = &C[fuzz_u8(&p) % nc];
    const uint32_t ctx = c->id;
    cur_ctx = ctx;
    cur_handle = 0;
    char label[48];
    snprintf(label, sizeof label, "op %u", i);
    switch (op) {
      case 0: case 1: { /* alloc */
        const uint8_t mode = fuzz_u8(&p);
        uint64_t sz = fuzz_range64(&p, 1, MAX_SIZE);
        uint32_t flags = mode & 1 ? AETHER_ALLOC_ZERO : 0;
        int want = quota_ok(c->tenant, sz) ? AETHER_OK : AETHER_ERR_QUOTA_EXCEEDED;
        if (mode % 16 == 14) sz = 0, want = AETHER_ERR_OUT_OF_RANGE;
        if (mode % 16 == 15) flags |= 0x40, want = AETHER_ERR_INVALID_ARGUMENT;
        if (nh == MAX_H) break;
        uint64_t v = 0;
        FUZZ_LOG("op %u: alloc ctx %u size %llu flags %#x", i, ctx, (unsigned long long)sz, flags);
        expect(aether_devpool_alloc(dp, ctx, sz, flags, &v), want, label);
        if (want != AETHER_OK) {
          FUZZ_ASSERT(v == 0);
          break;
        }
        hnd *x = new_handle(K_ALLOC, v, ctx, sz);
        if (flags & AETHER_ALLOC_ZERO) memset(x->known, 1, sz); /* data[] is already zero */
        used_bytes[c->tenant] += charge_of(sz);
        used_count[c->tenant]++;
        break;
      }
      case 2: { /* free */
        const uint64_t v = pick_handle(&p);
        const int want = resolve_alloc(v, ctx);
        FUZZ_LOG("op %u: free %#llx from ctx %u", i, (unsigned long long)v, ctx);
        expect(aether_devpool_free(dp, ctx, v), want, label);
        if (want == AETHER_OK) {
          hnd *x = find(v);
          x->live = false;
          used_bytes[c->tenant] -= charge_of(x->size);
          used_count[c->tenant]--;
        }
        break;
      }
      case 3: case 4: case 5: { /* write, fill, read */
        const uint64_t v = pick_handle(&p);
        const uint16_t off = fuzz_u16(&p), len = fuzz_u16(&p) % (MAX_SIZE + 64);
        const uint8_t val = fuzz_u8(&p);
        const uint64_t o = off % (MAX_SIZE + 64);
        const bool writing = op != 5;
        const int want = io_expect(v, ctx, writing, o, len);
        FUZZ_LOG("op %u: %s %#llx [%llu, +%u) from ctx %u", i, op == 3 ? "write" : op == 4 ? "fill" : "read",
                 (unsigned long long)v, (unsigned long long)o, len, ctx);
        if (op == 3) {
          for (uint16_t k = 0; k < len && k < MAX_SIZE; k++) io[k] = (uint8_t)(val + k * 13);
          expect(aether_devpool_write(dp, ctx, v, o, io, len), want, label);
        } else if (op == 4) {
          expect(aether_devpool_fill(dp, ctx, v, o, val, len), want, label);
        } else {
          memset(io, 0xEE, sizeof io);
          expect(aether_devpool_read(dp, ctx, v, o, io, len), want, label);
        }
        if (want != AETHER_OK || len == 0) break;
        hnd *x = holder(v);
        for (uint64_t k = 0; k < len; k++) {
          if (op == 5) {
            if (x->known[o + k])
              FUZZ_ASSERT_MSG(io[k] == x->data[o + k], "%s: byte %llu of %#llx reads %#x, the program left %#x", label,
                              (unsigned long long)(o + k), (unsigned long long)v, io[k], x->data[o + k]);
          } else {
            x->data[o + k] = op == 3 ? io[k] : val;
            x->known[o + k] = 1;
          }
        }
        break;
      }
      case 6: { /* size and address */
        const uint64_t v = pick_handle(&p);
        const hnd *x = find(v);
        const int want = x && x->kind == K_REF ? resolve_ref(v, ctx) : resolve_alloc(v, ctx);
        uint64_t got = 0, addr = 0;
        expect(aether_devpool_size(dp, ctx, v, &got), want, label);
        if (want == AETHER_OK) FUZZ_ASSERT_MSG(got == holder(v)->size, "%s: size %llu, the model %llu", label, (unsigned long long)got,
                                               (unsigned long long)holder(v)->size);
        expect(aether_devpool_address(dp, ctx, v, &addr), want, label);
        if (want == AETHER_OK) FUZZ_ASSERT(addr != 0);
        break;
      }
      case 7: { /* quota for a tenant: off, generous, tight */
        const int t = fuzz_u8(&p) % 3;
        const uint8_t q = fuzz_u8(&p);
        quota_bytes[t] = q % 3 == 0 ? 0 : (uint64_t)(q % 16 + 1) * 512;
        quota_count[t] = q % 5 == 0 ? 0 : q % 7 + 1;
        FUZZ_LOG("op %u: quota %s %llu bytes %llu allocations", i, TENANTS[t], (unsigned long long)quota_bytes[t],
                 (unsigned long long)quota_count[t]);
        expect(aether_devpool_set_quota(dp, TENANTS[t], quota_bytes[t], quota_count[t]), AETHER_OK, label);
        break;
      }
      case 8: { /* share_create */
        const uint8_t mode = fuzz_u8(&p);
        const uint64_t sz = fuzz_range64(&p, 0, MAX_SIZE);
        const uint64_t init_len = fuzz_range64(&p, 0, MAX_SIZE + 8);
        const bool immutable = mode & 1;
        const int perms = mode / 2 % 7; /* 6: an invalid list */
        int want = AETHER_OK;
        if (sz == 0) want = AETHER_ERR_OUT_OF_RANGE;
        else if (init_len > sz) want = AETHER_ERR_OUT_OF_BOUNDS;
        else if (c->isolated) want = AETHER_ERR_ACCESS_DENIED;
        else if (perms == 6) want = AETHER_ERR_INVALID_ARGUMENT;
        else if (!quota_ok(c->tenant, sz)) want = AETHER_ERR_QUOTA_EXCEEDED;
        if (nh + 2 > MAX_H) break;
        for (uint64_t k = 0; k < init_len && k < MAX_SIZE; k++) io[k] = (uint8_t)(mode + k * 7);
        uint64_t obj = 0, ref = 0;
        FUZZ_LOG("op %u: share_create ctx %u size %llu init %llu%s perms %s", i, ctx, (unsigned long long)sz,
                 (unsigned long long)init_len, immutable ? " immutable" : "", perms == 6 ? "bad" : PERMS[perms] ? PERMS[perms] : "NULL");
        expect(aether_devpool_share_create(dp, ctx, sz, immutable ? AETHER_SHARE_IMMUTABLE : 0, perms == 6 ? "julia=rw" : PERMS[perms],
                                           io, init_len, &obj, &ref),
               want, label);
        if (want != AETHER_OK) break;
        hnd *o = new_handle(K_OBJECT, obj, ctx, sz);
        memcpy(o->data, io, init_len);
        memset(o->known, 1, sz); /* init, then zeros */
        o->immutable = immutable, o->perms = perms, o->refcount = 1, o->owner_ref = immutable ? 0 : ref;
        hnd *r = new_handle(K_REF, ref, ctx, 0);
        r->obj = (int)(o - H);
        r->access = immutable ? AETHER_ACCESS_READ : AETHER_ACCESS_READ_WRITE;
        used_bytes[c->tenant] += charge_of(sz);
        used_count[c->tenant]++;
        break;
      }
      case 9: { /* acquire */
        const uint64_t v = pick_handle(&p);
        const uint8_t a = fuzz_u8(&p);
        const int access = a % 5 == 4 ? 2 : a & 1 ? AETHER_ACCESS_READ_WRITE : AETHER_ACCESS_READ;
        int want = access == 2 ? AETHER_ERR_INVALID_ARGUMENT : resolve_object(v);
        if (want == AETHER_OK) {
          const hnd *o = find(v);
          const ctxm *creator = ctx_of(o->ctx);
          int may = 0;
          if (creator->runtime == c->runtime) {
            may = AETHER_ACCESS_READ_WRITE;
          } else if (PERMS[o->perms] != NULL) {
            /* the exact runtime's entry first, else the '*' entry */
            char spec[64];
            snprintf(spec, sizeof spec, "%s", PERMS[o->perms]);
            int any = 0, exact = -1;
            for (char *e = strtok(spec, ","); e; e = strtok(NULL, ",")) {
              char *colon = strchr(e, ':');
              *colon = 0;
              const int acc = strcmp(colon + 1, "rw") == 0 ? AETHER_ACCESS_READ_WRITE : AETHER_ACCESS_READ;
              if (strcmp(e, RUNTIMES[c->runtime]) == 0 && exact < 0) exact = acc;
              if (strcmp(e, "*") == 0) any = acc;
            }
            may = exact >= 0 ? exact : any;
          }
          if (c->isolated) want = AETHER_ERR_ACCESS_DENIED;
          else if (creator->tenant != c->tenant) want = AETHER_ERR_ACCESS_DENIED;
          else if (access == AETHER_ACCESS_READ_WRITE && o->immutable) want = AETHER_ERR_READ_ONLY;
          else if ((may & access) != access) want = AETHER_ERR_ACCESS_DENIED;
        }
        if (nh == MAX_H) break;
        uint64_t ref = 0;
        FUZZ_LOG("op %u: acquire %#llx access %d from ctx %u", i, (unsigned long long)v, access, ctx);
        expect(aether_devpool_share_acquire(dp, ctx, v, access, &ref), want, label);
        if (want != AETHER_OK) break;
        hnd *o = find(v);
        hnd *r = new_handle(K_REF, ref, ctx, 0);
        r->obj = (int)(o - H);
        r->access = access;
        o->refcount++;
        if (access == AETHER_ACCESS_READ_WRITE) o->owner_ref = ref;
        break;
      }
      case 10: { /* release */
        const uint64_t v = pick_handle(&p);
        const int want = resolve_ref(v, ctx);
        FUZZ_LOG("op %u: release %#llx from ctx %u", i, (unsigned long long)v, ctx);
        expect(aether_devpool_share_release(dp, ctx, v), want, label);
        if (want != AETHER_OK) break;
        hnd *r = find(v);
        hnd *o = &H[r->obj];
        r->live = false;
        if (o->owner_ref == v) o->owner_ref = 0;
        if (--o->refcount == 0) object_gone(o);
        break;
      }
      default: { /* share_info, leaks, stats, trim */
        const uint64_t v = pick_handle(&p);
        aether_share_info si;
        const int want = resolve_object(v);
        expect(aether_devpool_share_info(dp, v, &si), want, "share_info");
        if (want == AETHER_OK) {
          const hnd *o = find(v);
          FUZZ_ASSERT_MSG(si.size == o->size && si.refcount == (uint64_t)o->refcount && si.owner_ref == o->owner_ref &&
                              si.creator_ctx == o->ctx,
                          "share_info: size %llu refcount %llu owner %#llx, the model %llu %d %#llx", (unsigned long long)si.size,
                          (unsigned long long)si.refcount, (unsigned long long)si.owner_ref, (unsigned long long)o->size,
                          o->refcount, (unsigned long long)o->owner_ref);
        }
        uint64_t live = 0;
        for (int k = 0; k < nh; k++) live += (H[k].kind == K_ALLOC || H[k].kind == K_OBJECT) && H[k].live;
        FUZZ_ASSERT_MSG(aether_devpool_check_leaks(dp, NULL, 0) == live, "check_leaks: %zu, the model %llu",
                        aether_devpool_check_leaks(dp, NULL, 0), (unsigned long long)live);
        aether_devpool_stats st;
        expect(aether_devpool_get_stats(dp, &st), AETHER_OK, "stats");
        FUZZ_ASSERT_MSG(st.live_count == live, "stats: live_count %llu, the model %llu", (unsigned long long)st.live_count,
                        (unsigned long long)live);
        FUZZ_ASSERT(aether_devpool_trim(dp, ctx) >= 0);
        break;
      }
    }
  }
  aether_devpool_destroy(dp);
  dp = NULL;
  FUZZ_LOG("done: no finding");
  return 0;
}
