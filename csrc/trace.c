/* trace.c: allocation traces for `aether pools replay`, parsed here in C so the parser can be fuzzed
 * (aether_trace_parse takes any bytes; every index is bounds-checked, nothing recurses).
 *
 * Two formats, told apart by the first line that is not blank or a '#' comment:
 * - ours: "a ID SIZE" allocates SIZE bytes under ID, "f ID" frees it ("alloc"/"free" also accepted). IDs are
 *   unsigned integers (decimal or 0x hex), reusable once freed.
 * - RMM: the CSV of RAPIDS RMM's logging_resource_adaptor, "Thread,Time,Action,Pointer,Size,Stream" (columns found
 *   by name in the header: a first line with a comma is taken for one). Actions: allocate, free or deallocate; "allocate failure" rows are skipped, as are
 *   frees of pointers the log never showed allocated (a log started mid-run).
 * IDs are renumbered densely (a freed one is reused), so a replay needs an array as long as the peak number of
 * live allocations, not a hash table. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trace_internal.h"

/* ----------------------------------------------------------------- ID map (linear probing) --- */
typedef struct idmap {
  uint64_t *keys;
  uint32_t *vals; /* dense id + 1; 0 = empty */
  uint64_t cap, n;
  uint32_t *free_ids; /* dense ids free for reuse (a stack) */
  uint64_t nfree, free_cap;
  uint32_t next_id;
} idmap;

static inline uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

static int idmap_grow(idmap *m) {
  const uint64_t nc = m->cap ? m->cap * 2 : 1024;
  uint64_t *k = calloc(nc, sizeof *k);
  uint32_t *v = calloc(nc, sizeof *v);
  if (!k || !v) {
    free(k);
    free(v);
    return -1;
  }
  for (uint64_t i = 0; i < m->cap; i++) {
    if (m->vals[i] == 0) continue;
    uint64_t j = mix(m->keys[i]) & (nc - 1);
    while (v[j]) j = (j + 1) & (nc - 1);
    k[j] = m->keys[i];
    v[j] = m->vals[i];
  }
  free(m->keys);
  free(m->vals);
  m->keys = k;
  m->vals = v;
  m->cap = nc;
  return 0;
}

/* Slot of key, or of the empty place where it would go. */
static uint64_t idmap_find(const idmap *m, uint64_t key) {
  uint64_t j = mix(key) & (m->cap - 1);
  while (m->vals[j] && m->keys[j] != key) j = (j + 1) & (m->cap - 1);
  return j;
}

/* Remove the entry at j, shifting later entries of the probe run back (no tombstones). */
static void idmap_erase(idmap *m, uint64_t j) {
  uint64_t i = j;
  for (;;) {
    m->vals[i] = 0;
    uint64_t k = i;
    for (;;) {
      k = (k + 1) & (m->cap - 1);
      if (m->vals[k] == 0) return;
      const uint64_t home = mix(m->keys[k]) & (m->cap - 1);
      /* Move k to i if its home is not cyclically in (i, k]. */
      const bool stays = i <= k ? (home > i && home <= k) : (home > i || home <= k);
      if (!stays) break;
    }
    m->keys[i] = m->keys[k];
    m->vals[i] = m->vals[k];
    i = k;
  }
}

static void idmap_free(idmap *m) {
  free(m->keys);
  free(m->vals);
  free(m->free_ids);
}

/* --------------------------------------------------------------------------------- the parser --- */
static int push_op(aether_trace *t, uint8_t kind, uint32_t id, uint64_t size) {
  if (t->n == t->cap) {
    const uint64_t nc = t->cap ? t->cap * 2 : 4096;
    ae_trace_op *o = realloc(t->ops, nc * sizeof *o);
    if (o == NULL) return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "trace: no memory for %" PRIu64 " operations", nc);
    t->ops = o;
    t->cap = nc;
  }
  t->ops[t->n++] = (ae_trace_op){.size = size, .id = id, .kind = kind};
  return AETHER_OK;
}

typedef struct parser {
  aether_trace *t;
  idmap ids;
  uint64_t *sizes; /* by dense id: the live allocation's size */
  uint64_t sizes_cap;
  uint64_t live_bytes;
  uint64_t line;
} parser;

static int do_alloc(parser *ps, uint64_t key, uint64_t size, const char *what) {
  aether_trace *t = ps->t;
  AE_RETURN_ERROR_IF(size == 0 || size > ((uint64_t)1 << 40), AETHER_ERR_MALFORMED,
                     "trace line %" PRIu64 ": size %" PRIu64 " is not in [1, 2^40]", ps->line, size);
  idmap *m = &ps->ids;
  if (m->n * 2 >= m->cap && idmap_grow(m) != 0) return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "trace: no memory");
  const uint64_t j = idmap_find(m, key);
  AE_RETURN_ERROR_IF(m->vals[j] != 0, AETHER_ERR_MALFORMED,
                     "trace line %" PRIu64 ": %s 0x%" PRIx64 " is allocated again without a free", ps->line, what, key);
  uint32_t id;
  if (m->nfree) {
    id = m->free_ids[--m->nfree];
  } else {
    AE_RETURN_ERROR_IF(m->next_id == UINT32_MAX - 1, AETHER_ERR_MALFORMED, "trace: too many live allocations");
    id = m->next_id++;
  }
  if (id >= ps->sizes_cap) {
    const uint64_t nc = ps->sizes_cap ? ps->sizes_cap * 2 : 1024;
    uint64_t *z = realloc(ps->sizes, nc * sizeof *z);
    if (z == NULL) return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "trace: no memory");
    ps->sizes = z;
    ps->sizes_cap = nc;
  }
  ps->sizes[id] = size;
  m->keys[j] = key;
  m->vals[j] = id + 1;
  m->n++;
  ps->live_bytes += size;
  if (ps->live_bytes > t->info.peak_live_bytes) t->info.peak_live_bytes = ps->live_bytes;
  t->info.allocs++;
  return push_op(t, AE_TRACE_ALLOC, id, size);
}

static int do_free(parser *ps, uint64_t key, bool lenient, const char *what) {
  aether_trace *t = ps->t;
  idmap *m = &ps->ids;
  const uint64_t j = m->cap ? idmap_find(m, key) : 0;
  if (m->cap == 0 || m->vals[j] == 0) {
    if (lenient) {
      t->info.skipped++;
      return AETHER_OK;
    }
    return _ae_fail(AETHER_ERR_MALFORMED, "trace line %" PRIu64 ": free of %s 0x%" PRIx64 ", which is not live",
                    ps->line, what, key);
  }
  const uint32_t id = m->vals[j] - 1;
  idmap_erase(m, j);
  m->n--;
  if (m->nfree == m->free_cap) {
    const uint64_t nc = m->free_cap ? m->free_cap * 2 : 1024;
    uint32_t *f = realloc(m->free_ids, nc * sizeof *f);
    if (f == NULL) return _ae_fail(AETHER_ERR_OUT_OF_MEMORY, "trace: no memory");
    m->free_ids = f;
    m->free_cap = nc;
  }
  m->free_ids[m->nfree++] = id;
  /* The op keeps the allocation's size so a replay can keep its live count without a lookup. */
  const uint64_t size = ps->sizes[id];
  ps->live_bytes -= size;
  t->info.frees++;
  return push_op(t, AE_TRACE_FREE, id, size);
}

/* A field [s, e) as an unsigned integer: decimal, or hex after 0x. */
static bool parse_uint(const char *s, const char *e, uint64_t *out) {
  while (s < e && (*s == ' ' || *s == '\t')) s++;
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
  if (s == e) return false;
  uint64_t v = 0;
  if (e - s > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s += 2;
    if (e - s > 16) return false;
    for (; s < e; s++) {
      const char c = *s;
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) return false;
      v = v << 4 | (uint64_t)d;
    }
  } else {
    for (; s < e; s++) {
      if (*s < '0' || *s > '9') return false;
      const uint64_t d = (uint64_t)(*s - '0');
      if (v > (UINT64_MAX - d) / 10) return false;
      v = v * 10 + d;
    }
  }
  *out = v;
  return true;
}

/* Split [s, e) at whitespace into up to max tokens. */
static int tokens(const char *s, const char *e, const char **tb, const char **te, int max) {
  int n = 0;
  while (s < e) {
    while (s < e && (*s == ' ' || *s == '\t' || *s == '\r')) s++;
    if (s == e) break;
    if (n == max) return max + 1;
    tb[n] = s;
    while (s < e && *s != ' ' && *s != '\t' && *s != '\r') s++;
    te[n++] = s;
  }
  return n;
}

static bool token_is(const char *b, const char *e, const char *word) {
  const size_t n = strlen(word);
  return (size_t)(e - b) == n && strncasecmp(b, word, n) == 0;
}

static int parse_ours(parser *ps, const char *s, const char *e) {
  const char *tb[4], *te[4];
  const int n = tokens(s, e, tb, te, 3);
  uint64_t id = 0, size = 0;
  if ((n == 3) && (token_is(tb[0], te[0], "a") || token_is(tb[0], te[0], "alloc"))) {
    if (!parse_uint(tb[1], te[1], &id) || !parse_uint(tb[2], te[2], &size))
      return _ae_fail(AETHER_ERR_MALFORMED, "trace line %" PRIu64 ": expected 'a ID SIZE' with numbers", ps->line);
    return do_alloc(ps, id, size, "id");
  }
  if ((n == 2) && (token_is(tb[0], te[0], "f") || token_is(tb[0], te[0], "free"))) {
    if (!parse_uint(tb[1], te[1], &id))
      return _ae_fail(AETHER_ERR_MALFORMED, "trace line %" PRIu64 ": expected 'f ID' with a number", ps->line);
    return do_free(ps, id, false, "id");
  }
  return _ae_fail(AETHER_ERR_MALFORMED, "trace line %" PRIu64 ": expected 'a ID SIZE' or 'f ID'", ps->line);
}

typedef struct csv_cols {
  int action, pointer, size, count;
} csv_cols;

/* The field number col of the CSV line [s, e), as [*fb, *fe). */
static bool csv_field(const char *s, const char *e, int col, const char **fb, const char **fe) {
  int c = 0;
  const char *b = s;
  for (const char *p = s;; p++) {
    if (p == e || *p == ',') {
      if (c == col) {
        *fb = b;
        *fe = p;
        return true;
      }
      if (p == e) return false;
      c++;
      b = p + 1;
    }
  }
}

static int parse_rmm_header(parser *ps, const char *s, const char *e, csv_cols *cols) {
  cols->action = cols->pointer = cols->size = -1;
  cols->count = 0;
  const char *b, *f;
  for (int c = 0; csv_field(s, e, c, &b, &f); c++) {
    while (b < f && *b == ' ') b++;
    while (f > b && (f[-1] == ' ' || f[-1] == '\r')) f--;
    if (token_is(b, f, "Action")) cols->action = c;
    else if (token_is(b, f, "Pointer")) cols->pointer = c;
    else if (token_is(b, f, "Size")) cols->size = c;
    cols->count = c + 1;
  }
  AE_RETURN_ERROR_IF(cols->action < 0 || cols->pointer < 0 || cols->size < 0, AETHER_ERR_MALFORMED,
                     "trace line %" PRIu64 ": an RMM header needs Action, Pointer and Size columns", ps->line);
  return AETHER_OK;
}

static int parse_rmm(parser *ps, const char *s, const char *e, const csv_cols *cols) {
  const char *ab, *ae, *pb, *pe, *sb, *se;
  if (!csv_field(s, e, cols->action, &ab, &ae) || !csv_field(s, e, cols->pointer, &pb, &pe) ||
      !csv_field(s, e, cols->size, &sb, &se))
    return _ae_fail(AETHER_ERR_MALFORMED, "trace line %" PRIu64 ": fewer columns than the header", ps->line);
  while (ab < ae && *ab == ' ') ab++;
  while (ae > ab && (ae[-1] == ' ' || ae[-1] == '\r')) ae--;
  uint64_t ptr = 0, size = 0;
  if (!parse_uint(pb, pe, &ptr))
    return _ae_fail(AETHER_ERR_MALFORMED, "trace line %" PRIu64 ": Pointer is not a number", ps->line);
  if (token_is(ab, ae, "allocate failure") || token_is(ab, ae, "allocation failure")) {
    ps->t->info.skipped++;
    return AETHER_OK;
  }
  if (token_is(ab, ae, "allocate")) {
    if (!parse_uint(sb, se, &size))
      return _ae_fail(AETHER_ERR_MALFORMED, "trace line %" PRIu64 ": Size is not a number", ps->line);
    if (size == 0) { /* RMM logs zero-byte allocations (nullptr): nothing to replay */
      ps->t->info.skipped++;
      return AETHER_OK;
    }
    return do_alloc(ps, ptr, size, "pointer");
  }
  if (token_is(ab, ae, "free") || token_is(ab, ae, "deallocate")) return do_free(ps, ptr, true, "pointer");
  return _ae_fail(AETHER_ERR_MALFORMED, "trace line %" PRIu64 ": action '%.*s' is not allocate, free or deallocate",
                  ps->line, (int)(ae - ab > 32 ? 32 : ae - ab), ab);
}

int aether_trace_parse(const char *data, size_t len, aether_trace **out) {
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_trace_parse: out is NULL");
  *out = NULL;
  AE_RETURN_ERROR_IF(data == NULL && len != 0, AETHER_ERR_INVALID_ARGUMENT, "aether_trace_parse: data is NULL");
  aether_trace *t = calloc(1, sizeof *t);
  AE_RETURN_ERROR_IF(t == NULL, AETHER_ERR_OUT_OF_MEMORY, "aether_trace_parse: no memory");
  parser ps = {.t = t};
  csv_cols cols = {0};
  int rc = AETHER_OK;
  size_t i = 0;
  while (i < len && rc == AETHER_OK) {
    const char *nl = memchr(data + i, '\n', len - i);
    const char *s = data + i, *e = nl ? nl : data + len;
    i = (size_t)(e - data) + 1;
    ps.line++;
    const char *p = s;
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
    if (p == e || *p == '#') continue;
    if (t->info.format == 0) {
      /* A header with a comma is RMM's CSV (it must name Action, Pointer and Size); anything else is ours. */
      if (memchr(p, ',', (size_t)(e - p)) != NULL) {
        t->info.format = AETHER_TRACE_RMM;
        rc = parse_rmm_header(&ps, p, e, &cols);
        continue;
      }
      t->info.format = AETHER_TRACE_AETHER;
    }
    rc = t->info.format == AETHER_TRACE_RMM ? parse_rmm(&ps, p, e, &cols) : parse_ours(&ps, p, e);
  }
  if (rc == AETHER_OK && t->info.format == 0) t->info.format = AETHER_TRACE_AETHER; /* empty: a valid no-op */
  t->info.ops = t->n;
  t->info.ids = ps.ids.next_id;
  t->info.unfreed = ps.ids.n;
  idmap_free(&ps.ids);
  free(ps.sizes);
  if (rc != AETHER_OK) {
    aether_trace_free(t);
    return rc;
  }
  *out = t;
  return AETHER_OK;
}

int aether_trace_load(const char *path, aether_trace **out) {
  AE_RETURN_ERROR_IF(out == NULL || path == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_trace_load: path or out is NULL");
  *out = NULL;
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  AE_RETURN_ERROR_IF(fd < 0, AETHER_ERR_IO, "cannot open trace %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return _ae_fail(AETHER_ERR_IO, "trace %s is not a regular file", path);
  }
  if (st.st_size == 0) {
    close(fd);
    return aether_trace_parse("", 0, out);
  }
  void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  AE_RETURN_ERROR_IF(m == MAP_FAILED, AETHER_ERR_IO, "cannot map trace %s: %s", path, strerror(errno));
  const int rc = aether_trace_parse(m, (size_t)st.st_size, out);
  munmap(m, (size_t)st.st_size);
  return rc;
}

void aether_trace_free(aether_trace *t) {
  if (t == NULL) return;
  free(t->ops);
  free(t);
}

int aether_trace_get_info(const aether_trace *t, aether_trace_info *out) {
  AE_RETURN_ERROR_IF(t == NULL || out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_trace_get_info: trace or out is NULL");
  *out = t->info;
  return AETHER_OK;
}
