/* audit.c: the audit trail of the device pools.
 *
 * Every operation appends a fixed-size record to a ring (one fetch-add for its sequence number, relaxed stores,
 * one release store of the slot's stamp): that is all the hot path pays. When a JSON Lines file is configured,
 * a writer thread drains the ring in order, formats each record, chains it and appends it to the file; the
 * producers then never run more than a ring ahead of the writer (they wait rather than lose a record).
 *
 * The chain: each line ends with "hash", the SHA-256 of the record (the line's bytes up to its ,"hash"), and
 * carries "prev", the previous record's hash (64 zeros for the first); "n" counts the file's records 1, 2, ...
 * So an edited line fails its own hash (or, if the forger recomputed it, the next line's prev); a removed or
 * moved line breaks n and prev where it was. Cutting records off the end leaves a valid shorter chain: pin the head
 * (the last hash) elsewhere to detect that. SHA-256 comes from OpenSSL's libcrypto, loaded at run time with
 * dlopen("libcrypto.so.3") so the library has no build-time dependency; without it no audit file is written. */
#include "devpool_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ----------------------------------------------------------------------------------- crypto --- */
typedef int evp_digest_fn(const void *data, size_t count, unsigned char *md, unsigned int *size, const void *type,
                          void *engine);
typedef const void *evp_sha256_fn(void);
typedef void *evp_md_fetch_fn(void *libctx, const char *algorithm, const char *properties);

static struct {
  pthread_once_t once;
  int status;
  char why[256];
  evp_digest_fn *digest;
  const void *md;
} crypto = {.once = PTHREAD_ONCE_INIT};

static void crypto_load(void) {
  const char *name = getenv("AETHER_CRYPTO_LIB");
  if (name == NULL || *name == '\0') name = "libcrypto.so.3";
  void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    const char *e = dlerror();
    snprintf(crypto.why, sizeof crypto.why, "cannot load %s (%s): install OpenSSL 3 (libssl3 / openssl-libs)", name,
             e ? e : "not found");
    crypto.status = AETHER_ERR_CRYPTO_UNAVAILABLE;
    return;
  }
  void *digest = dlsym(lib, "EVP_Digest");
  void *fetch = dlsym(lib, "EVP_MD_fetch");
  void *sha256 = dlsym(lib, "EVP_sha256");
  if (digest == NULL || (fetch == NULL && sha256 == NULL)) {
    snprintf(crypto.why, sizeof crypto.why, "%s has no EVP_Digest/EVP_sha256: not an OpenSSL libcrypto", name);
    crypto.status = AETHER_ERR_CRYPTO_UNAVAILABLE;
    dlclose(lib);
    return;
  }
  memcpy(&crypto.digest, &digest, sizeof digest);
  /* Fetch the implementation once (OpenSSL 3): EVP_sha256() would be looked up again on every digest. */
  if (fetch) {
    evp_md_fetch_fn *f;
    memcpy(&f, &fetch, sizeof fetch);
    crypto.md = f(NULL, "SHA256", NULL);
  }
  if (crypto.md == NULL && sha256) {
    evp_sha256_fn *f;
    memcpy(&f, &sha256, sizeof sha256);
    crypto.md = f();
  }
  if (crypto.md == NULL) {
    snprintf(crypto.why, sizeof crypto.why, "%s offers no SHA-256 implementation", name);
    crypto.status = AETHER_ERR_CRYPTO_UNAVAILABLE;
    return;
  }
  crypto.status = AETHER_OK;
}

int aether_audit_crypto_status(void) {
  pthread_once(&crypto.once, crypto_load);
  AE_RETURN_ERROR_IF(crypto.status != AETHER_OK, crypto.status, "SHA-256 unavailable: %s", crypto.why);
  return AETHER_OK;
}

int _ae_sha256(const void *data, size_t len, uint8_t out[32]) {
  pthread_once(&crypto.once, crypto_load);
  AE_RETURN_ERROR_IF(crypto.status != AETHER_OK, crypto.status, "SHA-256 unavailable: %s", crypto.why);
  unsigned int n = 0;
  AE_RETURN_ERROR_IF(crypto.digest(data, len, out, &n, crypto.md, NULL) != 1 || n != 32,
                     AETHER_ERR_CRYPTO_UNAVAILABLE, "libcrypto's EVP_Digest(SHA-256) failed");
  return AETHER_OK;
}

static void to_hex(const uint8_t *h, char out[65]) {
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    out[2 * i] = digits[h[i] >> 4];
    out[2 * i + 1] = digits[h[i] & 15];
  }
  out[64] = '\0';
}

const char *aether_audit_op_name(int op) {
  static const char *const names[] = {"unknown", "context", "alloc", "free", "write", "read", "fill", "address",
                                      "wipe", "share_create", "acquire", "release", "transfer", "quota", "trim",
                                      "size"};
  return op >= 1 && op < (int)(sizeof names / sizeof names[0]) ? names[op] : "unknown";
}

/* --------------------------------------------------------------------------------------- ring --- */
int _ae_audit_init(ae_audit *a, aether_devpool *dp, uint32_t ring) {
  memset(a, 0, sizeof *a);
  a->dp = dp;
  void *m = mmap(NULL, (size_t)ring * sizeof(ae_audit_slot), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  AE_RETURN_ERROR_IF(m == MAP_FAILED, AETHER_ERR_OUT_OF_MEMORY, "audit ring of %u records: mmap failed", ring);
  a->ring = m;
  a->mask = ring - 1;
  pthread_mutex_init(&a->lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&a->wake, &ca);
  pthread_cond_init(&a->flushed, &ca);
  pthread_cond_init(&a->space, &ca);
  pthread_mutex_init(&a->space_lock, NULL);
  pthread_condattr_destroy(&ca);
  return AETHER_OK;
}

/* Tell producers waiting for ring space that the writer moved on (tail stored before this, seq_cst). */
static void wake_producers(ae_audit *a) {
  if (atomic_load_explicit(&a->space_waiters, memory_order_seq_cst) == 0) return;
  pthread_mutex_lock(&a->space_lock);
  pthread_cond_broadcast(&a->space);
  pthread_mutex_unlock(&a->space_lock);
}

static void wake_writer(ae_audit *a) {
  pthread_mutex_lock(&a->lock);
  pthread_cond_signal(&a->wake);
  pthread_mutex_unlock(&a->lock);
}

void _ae_audit(ae_audit *a, uint32_t op, uint32_t ctx, uint64_t handle, uint64_t size, int result) {
  const uint64_t s = atomic_fetch_add_explicit(&a->head, 1, memory_order_relaxed);
  if (atomic_load_explicit(&a->sinks_active, memory_order_acquire) &&
      AE_UNLIKELY(s - atomic_load_explicit(&a->tail, memory_order_acquire) > a->mask)) {
    /* Backpressure: the slot we are about to fill must have been written to the files first. Sleep rather
     * than spin: on a small machine the spinning would take the writer's CPU. */
    while (s - atomic_load_explicit(&a->tail, memory_order_seq_cst) > a->mask) {
      /* Lock order: the writer takes space_lock while holding its lock, so wake it without space_lock. */
      if (atomic_load_explicit(&a->writer_idle, memory_order_seq_cst)) wake_writer(a);
      pthread_mutex_lock(&a->space_lock);
      atomic_fetch_add_explicit(&a->space_waiters, 1, memory_order_seq_cst);
      if (s - atomic_load_explicit(&a->tail, memory_order_seq_cst) > a->mask) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += 1000000;
        if (until.tv_nsec >= 1000000000) {
          until.tv_sec++;
          until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&a->space, &a->space_lock, &until);
      }
      atomic_fetch_sub_explicit(&a->space_waiters, 1, memory_order_relaxed);
      pthread_mutex_unlock(&a->space_lock);
    }
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ae_audit_slot *slot = &a->ring[s & a->mask];
  /* Seqlock write: stamp 0 (in progress) ordered before the data, the final stamp after it. */
  atomic_store_explicit(&slot->stamp, 0, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  atomic_store_explicit(&slot->w[0], s + 1, memory_order_relaxed);
  atomic_store_explicit(&slot->w[1], (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec, memory_order_relaxed);
  atomic_store_explicit(&slot->w[2], handle, memory_order_relaxed);
  atomic_store_explicit(&slot->w[3], size, memory_order_relaxed);
  atomic_store_explicit(&slot->w[4], (uint64_t)ctx | ((uint64_t)(uint32_t)result << 32), memory_order_relaxed);
  atomic_store_explicit(&slot->w[5], (uint64_t)op | ((uint64_t)_ae_thread_id() << 32), memory_order_relaxed);
  atomic_store_explicit(&slot->stamp, s + 1, memory_order_release);
  if (atomic_load_explicit(&a->sinks_active, memory_order_relaxed)) {
    /* Pairs with the writer's fence between setting writer_idle and re-reading head: one of us sees the other. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&a->writer_idle, memory_order_relaxed)) wake_writer(a);
  }
}

/* Copy the record of sequence number seq (1-based) if the slot still holds it. */
static bool ring_read(const ae_audit *a, uint64_t seq, aether_audit_record *r) {
  ae_audit_slot *slot = &a->ring[(seq - 1) & a->mask];
  const uint64_t s1 = atomic_load_explicit(&slot->stamp, memory_order_acquire);
  if (s1 != seq) return false;
  uint64_t w[6];
  for (int i = 0; i < 6; i++) w[i] = atomic_load_explicit(&slot->w[i], memory_order_relaxed);
  atomic_thread_fence(memory_order_acquire);
  if (atomic_load_explicit(&slot->stamp, memory_order_relaxed) != seq) return false;
  r->seq = w[0];
  r->time_ns = w[1];
  r->handle = w[2];
  r->size = w[3];
  r->ctx = (uint32_t)w[4];
  r->result = (int32_t)(uint32_t)(w[4] >> 32);
  r->op = (uint32_t)w[5];
  r->thread_id = (uint32_t)(w[5] >> 32);
  return true;
}

size_t _ae_audit_read(ae_audit *a, uint64_t after_seq, aether_audit_record *out, size_t max) {
  const uint64_t head = atomic_load_explicit(&a->head, memory_order_acquire);
  const uint64_t cap = a->mask + 1;
  uint64_t first = after_seq + 1;
  if (head >= cap && first <= head - cap) first = head - cap + 1;
  size_t n = 0;
  for (uint64_t seq = first; seq <= head && n < max; seq++)
    if (ring_read(a, seq, &out[n])) n++;
  return n;
}

/* ------------------------------------------------------------------------------------- sinks --- */
struct ae_sink {
  ae_sink *next;
  uint32_t ctx;       /* 0: every record */
  int fd;
  int error;          /* the first write error, kept (the file is then left alone) */
  uint64_t n;         /* records in the file */
  uint64_t start_seq; /* records with seq <= start_seq predate this file */
  uint8_t prev[32];   /* the hash of the file's last record */
  off_t known_size;   /* the file's size after our last write: any other size means another writer appended */
  char path[256];
  aether_audit_record *pending; /* records taken from the ring, formatted only when written (see sink_write_out) */
  size_t npending;
  char *buf; /* formatted lines on their way to the file */
  size_t len, cap;
};

#define SINK_BUF (256u * 1024u)
#define SINK_PENDING 512u
#define LINE_MAX_BYTES 640

static int sink_sync(ae_sink *k, off_t size);
static size_t sink_format(ae_audit *a, ae_sink *k, const aether_audit_record *r, char *line);

static int write_lines(ae_sink *k) {
  size_t off = 0;
  while (off < k->len && k->error == 0) {
    const ssize_t w = write(k->fd, k->buf + off, k->len - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      k->error = errno;
      break;
    }
    off += (size_t)w;
  }
  k->len = 0;
  return k->error ? AETHER_ERR_IO : AETHER_OK;
}

/* Write the pending records as the file's next lines. Several writers may share one file (two managers in a
 * process under AETHER_AUDIT_LOG, or two processes): each takes the file's lock for its batch and, when the
 * file grew since its own last write, continues the chain from the last record there instead of its own. */
static int sink_write_out(ae_audit *a, ae_sink *k) {
  if (k->npending == 0 || k->error) {
    k->npending = 0;
    return k->error ? AETHER_ERR_IO : AETHER_OK;
  }
  int rc = AETHER_OK;
  while (flock(k->fd, LOCK_EX) != 0)
    if (errno != EINTR) {
      k->error = errno;
      k->npending = 0;
      return AETHER_ERR_IO;
    }
  struct stat st;
  if (fstat(k->fd, &st) != 0) {
    k->error = errno;
  } else if (st.st_size != k->known_size && (rc = sink_sync(k, st.st_size)) != AETHER_OK) {
    k->error = EBADMSG; /* the file's last record does not verify: never extend a chain from it */
  } else {
    off_t size = st.st_size;
    for (size_t i = 0; i < k->npending && k->error == 0; i++) {
      if (k->cap - k->len < LINE_MAX_BYTES + 1) {
        size += (off_t)k->len;
        (void)write_lines(k);
      }
      k->len += sink_format(a, k, &k->pending[i], k->buf + k->len);
      k->n++;
    }
    size += (off_t)k->len;
    (void)write_lines(k);
    k->known_size = size;
  }
  k->npending = 0;
  flock(k->fd, LOCK_UN);
  return k->error ? (rc != AETHER_OK ? rc : AETHER_ERR_IO) : AETHER_OK;
}

/* A small appender: the writer formats every record, so no printf on this path. */
typedef struct outbuf {
  char *p;
} outbuf;
static inline void put(outbuf *o, const char *s, size_t n) {
  memcpy(o->p, s, n);
  o->p += n;
}
#define PUT_LIT(o, lit) put((o), (lit), sizeof(lit) - 1)
static inline void put_str(outbuf *o, const char *s) { put(o, s, strlen(s)); }
static void put_u64(outbuf *o, uint64_t v) {
  char tmp[20];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) *o->p++ = tmp[--n];
}
static void put_hex(outbuf *o, const uint8_t *h, size_t bytes) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < bytes; i++) {
    *o->p++ = digits[h[i] >> 4];
    *o->p++ = digits[h[i] & 15];
  }
}

/* ISO 8601 UTC with nanoseconds; the part up to the seconds is formatted once per second. */
static void put_time(outbuf *o, uint64_t ns) {
  static _Thread_local uint64_t cached_sec = UINT64_MAX;
  static _Thread_local char cached[24];
  const uint64_t sec = ns / 1000000000ull;
  if (sec != cached_sec) {
    const time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
    cached_sec = sec;
  }
  put_str(o, cached);
  char frac[11] = ".000000000";
  uint32_t f = (uint32_t)(ns % 1000000000ull);
  for (int i = 9; i >= 1; i--) {
    frac[i] = (char)('0' + f % 10);
    f /= 10;
  }
  put(o, frac, 10);
  *o->p++ = 'Z';
}

/* Format r as this sink's next line, newline included, at line; returns its length and sets k->prev to the
 * record's hash. */
static size_t sink_format(ae_audit *a, ae_sink *k, const aether_audit_record *r, char *line) {
  const char *tenant, *runtime, *level;
  _ae_devpool_names(a->dp, r->ctx, &tenant, &runtime, &level);
  outbuf o = {line};
  PUT_LIT(&o, "{\"n\":");
  put_u64(&o, k->n + 1);
  PUT_LIT(&o, ",\"seq\":");
  put_u64(&o, r->seq);
  PUT_LIT(&o, ",\"time\":\"");
  put_time(&o, r->time_ns);
  PUT_LIT(&o, "\",\"tenant\":\"");
  put_str(&o, tenant);
  PUT_LIT(&o, "\",\"runtime\":\"");
  put_str(&o, runtime);
  PUT_LIT(&o, "\",\"level\":\"");
  put_str(&o, level);
  PUT_LIT(&o, "\",\"ctx\":");
  put_u64(&o, (r->ctx & AE_AUDIT_TENANT_FLAG) ? 0u : r->ctx);
  PUT_LIT(&o, ",\"op\":\"");
  put_str(&o, aether_audit_op_name((int)r->op));
  PUT_LIT(&o, "\",\"handle\":\"0x");
  uint8_t hb[8];
  for (int i = 0; i < 8; i++) hb[i] = (uint8_t)(r->handle >> (56 - 8 * i));
  put_hex(&o, hb, 8);
  PUT_LIT(&o, "\",\"size\":");
  put_u64(&o, r->size);
  PUT_LIT(&o, ",\"result\":\"");
  put_str(&o, r->result == AETHER_OK ? "ok" : aether_error_name(r->result));
  PUT_LIT(&o, "\",\"prev\":\"");
  put_hex(&o, k->prev, 32);
  *o.p++ = '"';
  /* The sink exists only if SHA-256 is available, so this cannot fail. */
  (void)_ae_sha256(line, (size_t)(o.p - line), k->prev);
  PUT_LIT(&o, ",\"hash\":\"");
  put_hex(&o, k->prev, 32);
  PUT_LIT(&o, "\"}\n");
  return (size_t)(o.p - line);
}

static void sink_append(ae_audit *a, ae_sink *k, const aether_audit_record *r) {
  if (k->error) return;
  if (k->ctx != 0 && k->ctx != r->ctx) return;
  if (r->seq <= k->start_seq) return;
  if (k->npending == SINK_PENDING) (void)sink_write_out(a, k);
  k->pending[k->npending++] = *r;
}

static void sink_close(ae_audit *a, ae_sink *k) {
  if (k->fd >= 0) {
    (void)sink_write_out(a, k);
    fdatasync(k->fd);
    close(k->fd);
  }
  free(k->pending);
  free(k->buf);
  free(k);
}

/* --------------------------------------------------------------------------------- verifying --- */
/* A flat JSON object of string and unsigned-integer values, as the writer produces: {"k":"v","k2":12,...}.
 * Strings may not contain a backslash or a control character (the writer never escapes). */
typedef struct jfield {
  const char *key, *val;
  size_t klen, vlen;
  size_t start; /* offset of the ',' (or '{') before the key */
  bool str;
} jfield;

#define MAX_FIELDS 24

static int parse_record(const char *s, size_t len, jfield *f, int *nf, const char **why) {
  size_t i = 0;
  int n = 0;
  if (len < 2 || s[0] != '{' || s[len - 1] != '}') {
    *why = "not a JSON object";
    return -1;
  }
  i = 1;
  if (s[i] == '}') {
    *why = "an empty object";
    return -1;
  }
  for (;;) {
    if (n == MAX_FIELDS) {
      *why = "too many fields";
      return -1;
    }
    jfield *x = &f[n];
    x->start = i - 1;
    if (s[i] != '"') {
      *why = "a key is not a string";
      return -1;
    }
    x->key = s + ++i;
    while (i < len && s[i] != '"') {
      if (s[i] == '\\' || (unsigned char)s[i] < 0x20) {
        *why = "an escape or control character in a key";
        return -1;
      }
      i++;
    }
    if (i >= len) {
      *why = "an unterminated key";
      return -1;
    }
    x->klen = (size_t)(s + i - x->key);
    i++;
    if (i >= len || s[i] != ':') {
      *why = "a key without ':'";
      return -1;
    }
    i++;
    if (i < len && s[i] == '"') {
      x->str = true;
      x->val = s + ++i;
      while (i < len && s[i] != '"') {
        if (s[i] == '\\' || (unsigned char)s[i] < 0x20) {
          *why = "an escape or control character in a value";
          return -1;
        }
        i++;
      }
      if (i >= len) {
        *why = "an unterminated string";
        return -1;
      }
      x->vlen = (size_t)(s + i - x->val);
      i++;
    } else {
      x->str = false;
      x->val = s + i;
      while (i < len && s[i] >= '0' && s[i] <= '9') i++;
      x->vlen = (size_t)(s + i - x->val);
      if (x->vlen == 0 || x->vlen > 20) {
        *why = "a value that is neither a string nor an unsigned integer";
        return -1;
      }
    }
    n++;
    if (i >= len) {
      *why = "a truncated object";
      return -1;
    }
    if (s[i] == '}') {
      if (i != len - 1) {
        *why = "text after the object";
        return -1;
      }
      break;
    }
    if (s[i] != ',') {
      *why = "fields not separated by ','";
      return -1;
    }
    i++;
  }
  *nf = n;
  return 0;
}

static const jfield *field(const jfield *f, int n, const char *key) {
  const size_t kl = strlen(key);
  for (int i = 0; i < n; i++)
    if (f[i].klen == kl && memcmp(f[i].key, key, kl) == 0) return &f[i];
  return NULL;
}

static bool parse_u64(const jfield *x, uint64_t *v) {
  if (x == NULL || x->str) return false;
  uint64_t r = 0;
  for (size_t i = 0; i < x->vlen; i++) {
    const uint64_t d = (uint64_t)(x->val[i] - '0');
    if (r > (UINT64_MAX - d) / 10) return false;
    r = r * 10 + d;
  }
  *v = r;
  return true;
}

static bool is_hex64(const jfield *x) {
  if (x == NULL || !x->str || x->vlen != 64) return false;
  for (size_t i = 0; i < 64; i++) {
    const char c = x->val[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

static const char *const REQUIRED[] = {"n", "seq", "time", "tenant", "runtime", "level", "ctx", "op", "handle",
                                       "size", "result", "prev", "hash"};

static int verify_fail(aether_audit_verify_result *out, int status, uint64_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int verify_fail(aether_audit_verify_result *out, int status, uint64_t line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(out->reason, sizeof out->reason, fmt, ap);
  va_end(ap);
  out->bad_line = line;
  return _ae_fail(status, "audit log: line %" PRIu64 ": %s", line, out->reason);
}

/* Check one record line (without its newline) against the chain so far. On success updates prev and n. */
static int verify_line(const char *s, size_t len, uint64_t lineno, uint8_t prev[32], uint64_t *expect_n,
                       aether_audit_verify_result *out) {
  jfield f[MAX_FIELDS];
  int nf = 0;
  const char *why = NULL;
  if (parse_record(s, len, f, &nf, &why) != 0)
    return verify_fail(out, AETHER_ERR_MALFORMED, lineno, "not an audit record (%s)", why);
  for (size_t i = 0; i < sizeof REQUIRED / sizeof REQUIRED[0]; i++)
    if (field(f, nf, REQUIRED[i]) == NULL)
      return verify_fail(out, AETHER_ERR_MALFORMED, lineno, "not an audit record (no \"%s\")", REQUIRED[i]);
  const jfield *hash = field(f, nf, "hash");
  const jfield *prevf = field(f, nf, "prev");
  uint64_t n = 0;
  if (hash != &f[nf - 1]) return verify_fail(out, AETHER_ERR_MALFORMED, lineno, "\"hash\" is not the last field");
  if (!is_hex64(hash) || !is_hex64(prevf))
    return verify_fail(out, AETHER_ERR_MALFORMED, lineno, "\"prev\" and \"hash\" must be 64 lowercase hex digits");
  if (!parse_u64(field(f, nf, "n"), &n)) return verify_fail(out, AETHER_ERR_MALFORMED, lineno, "\"n\" is not a number");
  uint8_t h[32];
  char hex[65];
  const int rc = _ae_sha256(s, hash->start, h);
  if (rc != AETHER_OK) return rc;
  to_hex(h, hex);
  if (memcmp(hex, hash->val, 64) != 0) {
    return verify_fail(out, AETHER_ERR_TAMPERED, lineno,
                       "record n=%" PRIu64 " was changed: its hash does not match its content", n);
  }
  if (n != *expect_n) {
    if (n > *expect_n)
      return verify_fail(out, AETHER_ERR_TAMPERED, lineno,
                         "record n=%" PRIu64 " follows n=%" PRIu64 ": record(s) removed or moved", n, *expect_n - 1);
    return verify_fail(out, AETHER_ERR_TAMPERED, lineno,
                       "record n=%" PRIu64 " where n=%" PRIu64 " was expected: records reordered or duplicated", n,
                       *expect_n);
  }
  to_hex(prev, hex);
  if (memcmp(hex, prevf->val, 64) != 0) {
    if (lineno == 1)
      return verify_fail(out, AETHER_ERR_TAMPERED, lineno, "the first record's prev is not 64 zeros");
    return verify_fail(out, AETHER_ERR_TAMPERED, lineno,
                       "record n=%" PRIu64 " does not chain to line %" PRIu64 " (its prev is not that record's hash: "
                       "line %" PRIu64 " or this one was changed)",
                       n, lineno - 1, lineno - 1);
  }
  memcpy(prev, h, 32);
  (*expect_n)++;
  return AETHER_OK;
}

int aether_audit_verify_buffer(const char *data, size_t len, aether_audit_verify_result *out) {
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_audit_verify_buffer: out is NULL");
  memset(out, 0, sizeof *out);
  AE_RETURN_ERROR_IF(data == NULL && len != 0, AETHER_ERR_INVALID_ARGUMENT, "aether_audit_verify_buffer: data is NULL");
  int rc = aether_audit_crypto_status();
  if (rc != AETHER_OK) return rc;
  uint8_t prev[32] = {0};
  uint64_t expect_n = 1, lineno = 0;
  size_t i = 0;
  char head[65];
  to_hex(prev, head);
  while (i < len) {
    const char *nl = memchr(data + i, '\n', len - i);
    const size_t end = nl ? (size_t)(nl - data) : len;
    lineno++;
    if (end == i)
      rc = verify_fail(out, AETHER_ERR_MALFORMED, lineno, "an empty line (records are never empty)");
    else
      rc = verify_line(data + i, end - i, lineno, prev, &expect_n, out);
    if (rc != AETHER_OK) {
      snprintf(out->head, sizeof out->head, "%s", head);
      return rc;
    }
    to_hex(prev, head);
    out->records++;
    i = end + 1;
  }
  snprintf(out->head, sizeof out->head, "%s", head);
  return AETHER_OK;
}

int aether_audit_verify_file(const char *path, aether_audit_verify_result *out) {
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_audit_verify_file: out is NULL");
  memset(out, 0, sizeof *out);
  AE_RETURN_ERROR_IF(path == NULL || *path == '\0', AETHER_ERR_INVALID_ARGUMENT, "aether_audit_verify_file: no path");
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  AE_RETURN_ERROR_IF(fd < 0, AETHER_ERR_IO, "cannot open audit log %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return _ae_fail(AETHER_ERR_IO, "audit log %s is not a regular file", path);
  }
  if (st.st_size == 0) {
    close(fd);
    return aether_audit_verify_buffer("", 0, out);
  }
  void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  AE_RETURN_ERROR_IF(m == MAP_FAILED, AETHER_ERR_IO, "cannot map audit log %s: %s", path, strerror(errno));
  const int rc = aether_audit_verify_buffer(m, (size_t)st.st_size, out);
  munmap(m, (size_t)st.st_size);
  return rc;
}

/* Take the chain from the file's last record (size bytes long, read under the file's lock): it must end with a
 * complete record whose own hash verifies. An empty file starts a new chain. */
static int sink_sync(ae_sink *k, off_t size) {
  const char *path = k->path;
  k->known_size = size;
  if (size == 0) {
    memset(k->prev, 0, sizeof k->prev);
    k->n = 0;
    return AETHER_OK;
  }
  /* Read the tail: the last line is at most LINE_MAX_BYTES long. */
  char tail[LINE_MAX_BYTES * 2];
  const off_t want = size < (off_t)sizeof tail ? size : (off_t)sizeof tail;
  const ssize_t got = pread(k->fd, tail, (size_t)want, size - want);
  AE_RETURN_ERROR_IF(got != want, AETHER_ERR_IO, "cannot read audit log %s: %s", path, strerror(errno));
  AE_RETURN_ERROR_IF(tail[got - 1] != '\n', AETHER_ERR_TAMPERED,
                     "audit log %s ends with an incomplete record; verify it (aether audit verify) before appending",
                     path);
  ssize_t b = got - 2;
  while (b >= 0 && tail[b] != '\n') b--;
  AE_RETURN_ERROR_IF(b < 0 && want < size, AETHER_ERR_MALFORMED, "audit log %s: its last line is too long", path);
  const char *line = tail + b + 1;
  const size_t len = (size_t)(got - 1 - (b + 1));
  jfield f[MAX_FIELDS];
  int nf = 0;
  const char *why = NULL;
  uint64_t n = 0;
  if (parse_record(line, len, f, &nf, &why) != 0 || !parse_u64(field(f, nf, "n"), &n) || field(f, nf, "hash") == NULL)
    return _ae_fail(AETHER_ERR_MALFORMED, "audit log %s: the last line is not an audit record", path);
  /* Its own hash must verify: never extend a chain from a forged last record. */
  uint8_t h[32];
  char hex[65];
  int rc = _ae_sha256(line, field(f, nf, "hash")->start, h);
  if (rc != AETHER_OK) return rc;
  to_hex(h, hex);
  AE_RETURN_ERROR_IF(!is_hex64(field(f, nf, "hash")) || memcmp(hex, field(f, nf, "hash")->val, 64) != 0,
                     AETHER_ERR_TAMPERED, "audit log %s: the last record's hash does not match its content", path);
  memcpy(k->prev, h, 32);
  k->n = n;
  return AETHER_OK;
}

/* Open (or continue) an audit file; the chain goes on from its last record. */
static int sink_open(ae_sink *k, const char *path) {
  AE_RETURN_ERROR_IF(strlen(path) >= sizeof k->path, AETHER_ERR_INVALID_ARGUMENT, "audit log path is too long");
  snprintf(k->path, sizeof k->path, "%s", path);
  k->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  AE_RETURN_ERROR_IF(k->fd < 0, AETHER_ERR_IO, "cannot open audit log %s: %s", path, strerror(errno));
  while (flock(k->fd, LOCK_EX) != 0)
    if (errno != EINTR) return _ae_fail(AETHER_ERR_IO, "cannot lock audit log %s: %s", path, strerror(errno));
  struct stat st;
  int rc = fstat(k->fd, &st) != 0 ? _ae_fail(AETHER_ERR_IO, "cannot stat audit log %s: %s", path, strerror(errno))
                                  : sink_sync(k, st.st_size);
  flock(k->fd, LOCK_UN);
  return rc;
}

/* ------------------------------------------------------------------------------------ writer --- */
static void *writer_main(void *arg) {
  ae_audit *a = arg;
  uint64_t cursor = atomic_load_explicit(&a->tail, memory_order_acquire);
  pthread_mutex_lock(&a->lock);
  for (;;) {
    const uint64_t head = atomic_load_explicit(&a->head, memory_order_acquire);
    if (a->sinks == NULL) cursor = head; /* nothing to write to: records before a new file are not its own */
    while (cursor < head) {
      aether_audit_record r;
      /* A producer took this seq but may not have published it yet: it will within a few instructions. */
      unsigned spins = 0;
      while (!ring_read(a, cursor + 1, &r)) {
        if (++spins > 64) {
          pthread_mutex_unlock(&a->lock);
          sched_yield();
          pthread_mutex_lock(&a->lock);
        }
      }
      for (ae_sink *k = a->sinks; k; k = k->next) sink_append(a, k, &r);
      cursor++;
      /* Publish progress every 16 records (a ring has at least 64), so a waiting producer moves on soon. */
      if ((cursor & 15) == 0) {
        atomic_store_explicit(&a->tail, cursor, memory_order_seq_cst);
        wake_producers(a);
      }
    }
    for (ae_sink *k = a->sinks; k; k = k->next) (void)sink_write_out(a, k);
    atomic_store_explicit(&a->tail, cursor, memory_order_seq_cst);
    wake_producers(a);
    if (a->flush_target != 0 && cursor >= a->flush_target) {
      int st = AETHER_OK;
      for (ae_sink *k = a->sinks; k; k = k->next) {
        if (k->error == 0 && fdatasync(k->fd) != 0) k->error = errno;
        if (k->error) st = AETHER_ERR_IO;
      }
      a->flush_status = st;
      a->flush_target = 0;
      pthread_cond_broadcast(&a->flushed);
    }
    if (a->stop && cursor >= atomic_load_explicit(&a->head, memory_order_acquire)) break;
    atomic_store_explicit(&a->writer_idle, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&a->head, memory_order_relaxed) == cursor && !a->stop && a->flush_target == 0) {
      /* The timeout bounds the cost of any wakeup lost to a producer that saw writer_idle == 0. */
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      ts.tv_nsec += 20 * 1000000;
      if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
      }
      pthread_cond_timedwait(&a->wake, &a->lock, &ts);
    }
    atomic_store_explicit(&a->writer_idle, 0, memory_order_relaxed);
  }
  pthread_mutex_unlock(&a->lock);
  return NULL;
}

int _ae_audit_set_file(ae_audit *a, uint32_t ctx, const char *path) {
  const bool stop_only = path == NULL || *path == '\0';
  ae_sink *k = NULL;
  if (!stop_only) {
    int rc = aether_audit_crypto_status();
    if (rc != AETHER_OK)
      return _ae_fail(rc, "audit log %s refused: SHA-256 unavailable (%s)", path, crypto.why);
    k = calloc(1, sizeof *k);
    AE_RETURN_ERROR_IF(k == NULL, AETHER_ERR_OUT_OF_MEMORY, "no memory for an audit sink");
    k->fd = -1;
    k->ctx = ctx;
    k->cap = SINK_BUF;
    k->buf = malloc(k->cap);
    k->pending = malloc(SINK_PENDING * sizeof *k->pending);
    rc = k->buf && k->pending ? sink_open(k, path)
                              : _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "no memory for an audit buffer");
    if (rc != AETHER_OK) {
      sink_close(a, k);
      return rc;
    }
  }
  pthread_mutex_lock(&a->lock);
  /* Replace this scope's file, if any. */
  for (ae_sink **pp = &a->sinks; *pp;) {
    ae_sink *old = *pp;
    if (old->ctx == ctx) {
      *pp = old->next;
      sink_close(a, old);
    } else {
      pp = &old->next;
    }
  }
  if (k) {
    const uint64_t head = atomic_load_explicit(&a->head, memory_order_acquire);
    k->start_seq = head;
    if (a->sinks == NULL) {
      /* The writer starts from now: producers must not wait for records no file will hold. */
      atomic_store_explicit(&a->tail, head, memory_order_release);
    }
    k->next = a->sinks;
    a->sinks = k;
    atomic_store_explicit(&a->sinks_active, 1, memory_order_seq_cst);
    if (!a->writer_started) {
      if (pthread_create(&a->writer, NULL, writer_main, a) != 0) {
        a->sinks = k->next;
        sink_close(a, k);
        if (a->sinks == NULL) atomic_store_explicit(&a->sinks_active, 0, memory_order_seq_cst);
        pthread_mutex_unlock(&a->lock);
        return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "cannot start the audit writer thread");
      }
      a->writer_started = true;
    }
  } else if (a->sinks == NULL) {
    atomic_store_explicit(&a->sinks_active, 0, memory_order_seq_cst);
  }
  pthread_mutex_unlock(&a->lock);
  return AETHER_OK;
}

int _ae_audit_flush(ae_audit *a) {
  pthread_mutex_lock(&a->lock);
  if (!a->writer_started || a->sinks == NULL) {
    pthread_mutex_unlock(&a->lock);
    return AETHER_OK;
  }
  const uint64_t target = atomic_load_explicit(&a->head, memory_order_acquire);
  a->flush_target = target ? target : 1;
  a->flush_status = AETHER_OK;
  pthread_cond_signal(&a->wake);
  while (a->flush_target != 0) pthread_cond_wait(&a->flushed, &a->lock);
  const int st = a->flush_status;
  char path[256] = "";
  int err = 0;
  for (ae_sink *k = a->sinks; k; k = k->next)
    if (k->error) {
      snprintf(path, sizeof path, "%s", k->path);
      err = k->error;
      break;
    }
  pthread_mutex_unlock(&a->lock);
  AE_RETURN_ERROR_IF(st != AETHER_OK, st, "audit log %s: write failed: %s", path, strerror(err));
  return AETHER_OK;
}

void _ae_audit_destroy(ae_audit *a) {
  if (a->ring == NULL) return;
  if (a->writer_started) {
    pthread_mutex_lock(&a->lock);
    a->stop = true;
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->writer, NULL);
  }
  for (ae_sink *k = a->sinks, *next; k; k = next) {
    next = k->next;
    sink_close(a, k);
  }
  munmap(a->ring, (size_t)(a->mask + 1) * sizeof(ae_audit_slot));
  pthread_mutex_destroy(&a->lock);
  pthread_cond_destroy(&a->wake);
  pthread_cond_destroy(&a->flushed);
  pthread_cond_destroy(&a->space);
  pthread_mutex_destroy(&a->space_lock);
  memset(a, 0, sizeof *a);
}
