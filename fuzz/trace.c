/* trace: the allocation-trace parser (aether_trace_parse) on arbitrary text, against an independent parser of
 * both formats.
 *
 * The input is the trace. A model reads it as the documentation says: lines split at '\n', blank lines and
 * '#' comments skipped, the first other line choosing the format (a comma: RMM's CSV header, which must name
 * Action, Pointer and Size; else ours: "a|alloc ID SIZE" and "f|free ID", words in any case, numbers decimal
 * or 0x hex, sizes in [1, 2^40], an ID allocated again while live or freed while not live is malformed; RMM
 * rows: allocate, free/deallocate, allocate/allocation failure, frees of unknown pointers and zero-byte
 * allocations skipped). Checked:
 * - the parser accepts exactly what the model accepts, and refuses with MALFORMED;
 * - the counts (operations, allocations, frees, skipped rows, allocations never freed, peak live bytes, the
 *   dense ids a replay needs = the most allocations live at once) are the model's;
 * - the operations a replay runs are the trace's, in order, with dense ids that are live exactly when used;
 * - no out-of-bounds read (the buffer is exactly the input; ASan) and no undefined behaviour.
 * libFuzzer options: -max_len=4096
 */
#include "fuzz_helpers.h"

#include "aether.h"
#include "trace_internal.h"

#include <ctype.h>
#include <strings.h>

#define MAX_LIVE 4096

/* ------------------------------------------------------------------------------------ the model --- */
typedef struct {
  int format; /* 0 none yet, 1 ours, 2 rmm */
  int action, pointer, size;
  uint64_t keys[MAX_LIVE], sizes[MAX_LIVE];
  size_t live;
  uint64_t live_bytes, peak_bytes, peak_live, ops, allocs, frees, skipped;
  /* the expected operation sequence: kind (1 alloc, 2 free), the key, the size */
  uint8_t kind[8192];
  uint64_t key[8192], osize[8192];
  size_t n;
} model;

static bool blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* [b, e) trimmed (spaces and tabs before; spaces, tabs and a CR after), as a number: decimal, or 0x and at
 * most 16 hex digits. */
static bool number(const char *b, const char *e, uint64_t *out) {
  while (b < e && (*b == ' ' || *b == '\t')) b++;
  while (e > b && blank(e[-1])) e--;
  if (b == e) return false;
  uint64_t v = 0;
  if (e - b > 2 && b[0] == '0' && (b[1] == 'x' || b[1] == 'X')) {
    if (e - b - 2 > 16) return false;
    for (const char *p = b + 2; p < e; p++) {
      if (!isxdigit((unsigned char)*p)) return false;
      v = v * 16 + (uint64_t)(isdigit((unsigned char)*p) ? *p - '0' : tolower((unsigned char)*p) - 'a' + 10);
    }
  } else {
    for (const char *p = b; p < e; p++) {
      if (!isdigit((unsigned char)*p)) return false;
      const unsigned __int128 w = (unsigned __int128)v * 10 + (uint64_t)(*p - '0');
      if (w > UINT64_MAX) return false;
      v = (uint64_t)w;
    }
  }
  *out = v;
  return true;
}

static bool word(const char *b, const char *e, const char *w) { return (size_t)(e - b) == strlen(w) && strncasecmp(b, w, (size_t)(e - b)) == 0; }

static long find_key(const model *m, uint64_t k) {
  for (size_t i = 0; i < m->live; i++)
    if (m->keys[i] == k) return (long)i;
  return -1;
}

static bool m_alloc(model *m, uint64_t k, uint64_t size) {
  if (size == 0 || size > ((uint64_t)1 << 40) || find_key(m, k) >= 0 || m->live == MAX_LIVE || m->n == 8192) return false;
  m->keys[m->live] = k;
  m->sizes[m->live++] = size;
  m->live_bytes += size;
  if (m->live_bytes > m->peak_bytes) m->peak_bytes = m->live_bytes;
  if (m->live > m->peak_live) m->peak_live = m->live;
  m->allocs++;
  m->kind[m->n] = 1, m->key[m->n] = k, m->osize[m->n++] = size;
  return true;
}

/* lenient: a free of an unknown key is skipped (RMM), else malformed (ours). */
static bool m_free(model *m, uint64_t k, bool lenient) {
  const long i = find_key(m, k);
  if (i < 0) {
    if (!lenient) return false;
    m->skipped++;
    return true;
  }
  if (m->n == 8192) return false;
  m->kind[m->n] = 2, m->key[m->n] = k, m->osize[m->n++] = m->sizes[i];
  m->live_bytes -= m->sizes[i];
  m->keys[i] = m->keys[m->live - 1];
  m->sizes[i] = m->sizes[m->live - 1];
  m->live--;
  m->frees++;
  return true;
}

/* Field c of a comma-separated line, untrimmed. */
static bool field(const char *s, const char *e, int c, const char **fb, const char **fe) {
  const char *b = s;
  for (const char *p = s;; p++) {
    if (p == e || *p == ',') {
      if (c-- == 0) {
        *fb = b;
        *fe = p;
        return true;
      }
      if (p == e) return false;
      b = p + 1;
    }
  }
}

static void trim(const char **b, const char **e) {
  while (*b < *e && **b == ' ') (*b)++;
  while (*e > *b && ((*e)[-1] == ' ' || (*e)[-1] == '\r')) (*e)--;
}

static bool model_line(model *m, const char *s, const char *e) {
  if (m->format == 0) {
    if (memchr(s, ',', (size_t)(e - s))) {
      m->format = 2;
      m->action = m->pointer = m->size = -1;
      const char *b, *f;
      for (int c = 0; field(s, e, c, &b, &f); c++) {
        trim(&b, &f);
        if (word(b, f, "Action")) m->action = c;
        else if (word(b, f, "Pointer")) m->pointer = c;
        else if (word(b, f, "Size")) m->size = c;
      }
      return m->action >= 0 && m->pointer >= 0 && m->size >= 0;
    }
    m->format = 1;
  }
  if (m->format == 1) {
    const char *tb[4], *te[4];
    int n = 0;
    for (const char *p = s; p < e;) {
      while (p < e && blank(*p)) p++;
      if (p == e) break;
      if (n == 4) return false;
      tb[n] = p;
      while (p < e && !blank(*p)) p++;
      te[n++] = p;
    }
    uint64_t id, size;
    if (n == 3 && (word(tb[0], te[0], "a") || word(tb[0], te[0], "alloc")))
      return number(tb[1], te[1], &id) && number(tb[2], te[2], &size) && m_alloc(m, id, size);
    if (n == 2 && (word(tb[0], te[0], "f") || word(tb[0], te[0], "free"))) return number(tb[1], te[1], &id) && m_free(m, id, false);
    return false;
  }
  const char *ab, *ae, *pb, *pe, *sb, *se;
  if (!field(s, e, m->action, &ab, &ae) || !field(s, e, m->pointer, &pb, &pe) || !field(s, e, m->size, &sb, &se)) return false;
  trim(&ab, &ae);
  uint64_t ptr, size;
  if (!number(pb, pe, &ptr)) return false;
  if (word(ab, ae, "allocate failure") || word(ab, ae, "allocation failure")) {
    m->skipped++;
    return true;
  }
  if (word(ab, ae, "allocate")) {
    if (!number(sb, se, &size)) return false;
    if (size == 0) {
      m->skipped++;
      return true;
    }
    return m_alloc(m, ptr, size);
  }
  if (word(ab, ae, "free") || word(ab, ae, "deallocate")) return m_free(m, ptr, true);
  return false;
}

static model M;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *d = (const char *)data;
  memset(&M, 0, sizeof M);
  bool ok = true;
  for (size_t i = 0; i < size && ok;) {
    const char *nl = memchr(d + i, '\n', size - i);
    const char *s = d + i, *e = nl ? nl : d + size;
    i = (size_t)(e - d) + 1;
    while (s < e && blank(*s)) s++;
    if (s == e || *s == '#') continue;
    ok = model_line(&M, s, e);
  }
  aether_trace *t = NULL;
  const int st = aether_trace_parse(d, size, &t);
  FUZZ_LOG("parse: %s (%s); the model %s", aether_error_name(st), st ? aether_last_error() : "ok", ok ? "accepts" : "refuses");
  if (M.n == 8192 || M.live == MAX_LIVE) { /* beyond the model's arrays: only the outcome's kind is checked */
    FUZZ_ASSERT(st == AETHER_OK || st == AETHER_ERR_MALFORMED);
    aether_trace_free(t);
    return 0;
  }
  FUZZ_ASSERT_MSG(ok ? st == AETHER_OK : st == AETHER_ERR_MALFORMED, "parse: %s (%s), the model %s",
                  aether_error_name(st), st ? aether_last_error() : "ok", ok ? "accepts" : "refuses");
  if (!ok) {
    FUZZ_ASSERT(t == NULL);
    return 0;
  }
  aether_trace_info info;
  FUZZ_ASSERT(aether_trace_get_info(t, &info) == AETHER_OK);
  const uint32_t fmt = M.format == 2 ? AETHER_TRACE_RMM : AETHER_TRACE_AETHER;
  FUZZ_ASSERT_MSG(info.format == fmt && info.ops == M.n && info.allocs == M.allocs && info.frees == M.frees &&
                      info.skipped == M.skipped && info.unfreed == M.live && info.peak_live_bytes == M.peak_bytes &&
                      info.ids == M.peak_live,
                  "info: format %u ops %llu allocs %llu frees %llu skipped %llu unfreed %llu peak %llu ids %llu; the model "
                  "%u %zu %llu %llu %llu %zu %llu %llu",
                  info.format, (unsigned long long)info.ops, (unsigned long long)info.allocs, (unsigned long long)info.frees,
                  (unsigned long long)info.skipped, (unsigned long long)info.unfreed, (unsigned long long)info.peak_live_bytes,
                  (unsigned long long)info.ids, fmt, M.n, (unsigned long long)M.allocs, (unsigned long long)M.frees,
                  (unsigned long long)M.skipped, M.live, (unsigned long long)M.peak_bytes, (unsigned long long)M.peak_live);
  /* The replay's operations: the same kinds and sizes in order, dense ids live exactly when used. */
  static uint64_t dense_key[MAX_LIVE];
  static bool dense_live[MAX_LIVE];
  memset(dense_live, 0, sizeof dense_live);
  for (size_t k = 0; k < M.n; k++) {
    const ae_trace_op *o = &t->ops[k];
    FUZZ_ASSERT_MSG(o->kind == (M.kind[k] == 1 ? AE_TRACE_ALLOC : AE_TRACE_FREE) && o->size == M.osize[k],
                    "operation %zu: kind %u size %llu, the trace says %s of %llu", k, o->kind, (unsigned long long)o->size,
                    M.kind[k] == 1 ? "alloc" : "free", (unsigned long long)M.osize[k]);
    FUZZ_ASSERT_MSG(o->id < info.ids, "operation %zu: dense id %u is not below %llu", k, o->id, (unsigned long long)info.ids);
    if (M.kind[k] == 1) {
      FUZZ_ASSERT_MSG(!dense_live[o->id], "operation %zu: dense id %u handed out while live", k, o->id);
      dense_live[o->id] = true;
      dense_key[o->id] = M.key[k];
    } else {
      FUZZ_ASSERT_MSG(dense_live[o->id] && dense_key[o->id] == M.key[k], "operation %zu: frees dense id %u, not the one of key %#llx", k,
                      o->id, (unsigned long long)M.key[k]);
      dense_live[o->id] = false;
    }
  }
  aether_trace_free(t);
  FUZZ_LOG("done: no finding");
  return 0;
}
