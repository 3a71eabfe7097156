/* audit: the hash-chained audit-log verifier (aether_audit_verify_buffer) on logs built and then tampered with.
 *
 * Most inputs describe records (sequence numbers, times, tenants, runtimes, levels, contexts, operations,
 * handles, sizes, results); the target writes them as the device pools' JSON Lines, chaining each line's
 * SHA-256 (computed here by an independent implementation) into the next one's "prev", then applies one
 * tampering: a byte changed, a line removed, two lines swapped, a line duplicated, the file cut short, or a
 * field changed by a forger who recomputes that line's hash. Checked:
 * - an intact log verifies, every record counted, the head the last record's hash;
 * - each tampering is caught at the line where the chain breaks, as TAMPERED (or MALFORMED when the change
 *   breaks the syntax); a log cut at a line boundary, or forged on its last line, is a valid shorter or
 *   different chain (which is why the head must be pinned elsewhere), and the head says so;
 * - on arbitrary bytes (the other inputs) the verifier returns OK, TAMPERED or MALFORMED, counts the records
 *   before the bad line, and reads nothing outside the buffer (ASan).
 * libFuzzer options: -max_len=4096
 */
#include "fuzz_helpers.h"

#include "aether.h"

/* -------------------------------------------------------------------------- SHA-256 (FIPS 180-4) --- */
static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
    0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
    0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
    0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const uint8_t *p) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    const uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    const uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
  for (int i = 0; i < 64; i++) {
    const uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
    const uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
  }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

static void sha256_hex(const char *msg, size_t len, char out[65]) {
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  size_t i = 0;
  for (; i + 64 <= len; i += 64) sha256_block(h, (const uint8_t *)msg + i);
  uint8_t tail[128] = {0};
  const size_t rest = len - i;
  memcpy(tail, msg + i, rest);
  tail[rest] = 0x80;
  const size_t blocks = rest + 9 > 64 ? 2 : 1;
  const uint64_t bits = (uint64_t)len * 8;
  for (int b = 0; b < 8; b++) tail[blocks * 64 - 1 - b] = (uint8_t)(bits >> (8 * b));
  for (size_t b = 0; b < blocks; b++) sha256_block(h, tail + 64 * b);
  for (int b = 0; b < 8; b++) snprintf(out + 8 * b, 9, "%08x", h[b]);
}

/* ------------------------------------------------------------------------------------- the log --- */
#define MAX_RECORDS 12
static const char *const TENANTS[4] = {"acme", "tenant-2", "bio.lab", "x@y/z+w"};
static const char *const RUNTIMES[4] = {"julia", "elixir", "runa", "cuda:0"};
static const char *const LEVELS[3] = {"public", "confidential", "secret"};
static const char *const OPS[6] = {"alloc", "free", "write", "read", "share_create", "quota"};
static const char *const RESULTS[4] = {"ok", "AETHER_ERR_STALE_HANDLE", "AETHER_ERR_ACCESS_DENIED", "AETHER_ERR_QUOTA_EXCEEDED"};

static char lines[MAX_RECORDS + 1][640];
static size_t nlines;
static char hashes[MAX_RECORDS + 1][65];

/* Line i (without newline), chained to prev; returns its length and writes its hash. */
static size_t render(char *out, uint64_t n, const char *prev, fuzz_producer *p, char hash[65]) {
  const uint32_t seq = fuzz_u32(p), t = fuzz_u32(p);
  const uint8_t who = fuzz_u8(p), ctx = fuzz_u8(p), what = fuzz_u8(p);
  const uint64_t handle = fuzz_u64(p);
  const uint32_t size = fuzz_u32(p);
  int len = snprintf(out, 640,
                     "{\"n\":%llu,\"seq\":%u,\"time\":\"2026-11-22T%02u:%02u:%02u.%09uZ\",\"tenant\":\"%s\",\"runtime\":\"%s\","
                     "\"level\":\"%s\",\"ctx\":%u,\"op\":\"%s\",\"handle\":\"0x%016llx\",\"size\":%u,\"result\":\"%s\","
                     "\"prev\":\"%s\"",
                     (unsigned long long)n, seq, t % 24, t / 24 % 60, t / 1440 % 60, t % 1000000000u, TENANTS[who & 3],
                     RUNTIMES[who >> 2 & 3], LEVELS[(who >> 4) % 3], ctx, OPS[what % 6], (unsigned long long)handle, size,
                     RESULTS[what / 6 % 4], prev);
  sha256_hex(out, (size_t)len, hash);
  len += snprintf(out + len, 640 - (size_t)len, ",\"hash\":\"%s\"}", hash);
  return (size_t)len;
}

static char buf[(MAX_RECORDS + 2) * 640];

static size_t join(size_t skip, size_t swap, size_t dup) {
  size_t len = 0;
  for (size_t i = 0; i < nlines; i++) {
    size_t j = i;
    if (i == skip) continue;
    if (swap < nlines - 1 && (i == swap || i == swap + 1)) j = i == swap ? swap + 1 : swap;
    for (int rep = 0; rep < (i == dup ? 2 : 1); rep++) {
      const size_t l = strlen(lines[j]);
      memcpy(buf + len, lines[j], l);
      len += l;
      buf[len++] = '\n';
    }
  }
  return len;
}

static void expect(int st, const aether_audit_verify_result *r, int want, uint64_t line, uint64_t records, const char *what) {
  FUZZ_ASSERT_MSG(st == want || (want == AETHER_ERR_TAMPERED && st == AETHER_ERR_MALFORMED && line != 0),
                  "%s: %s (line %llu: %s), expected %s", what, aether_error_name(st), (unsigned long long)r->bad_line,
                  r->reason, aether_error_name(want));
  FUZZ_ASSERT_MSG(r->bad_line == line, "%s: bad line %llu, expected %llu (%s)", what, (unsigned long long)r->bad_line,
                  (unsigned long long)line, r->reason);
  FUZZ_ASSERT_MSG(r->records == records, "%s: %llu records verified, expected %llu", what, (unsigned long long)r->records,
                  (unsigned long long)records);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int crypto = -1;
  if (crypto < 0) crypto = aether_audit_crypto_status() == AETHER_OK;
  if (!crypto) return 0; /* no libcrypto here: the verifier cannot run (its refusal is tested elsewhere) */
  aether_audit_verify_result r;
  fuzz_producer p = fuzz_producer_make(data, size);
  const uint8_t mode = fuzz_u8(&p);
  if (mode & 1) { /* arbitrary bytes */
    const char *d = (const char *)data + 1;
    const size_t n = size ? size - 1 : 0;
    const int st = aether_audit_verify_buffer(d, n, &r);
    FUZZ_LOG("arbitrary bytes: %s, line %llu (%s), %llu records", aether_error_name(st), (unsigned long long)r.bad_line,
             r.reason, (unsigned long long)r.records);
    FUZZ_ASSERT_MSG(st == AETHER_OK || st == AETHER_ERR_TAMPERED || st == AETHER_ERR_MALFORMED, "status %s", aether_error_name(st));
    size_t nl = 0;
    for (size_t i = 0; i < n; i++) nl += d[i] == '\n';
    const size_t total = nl + (n && d[n - 1] != '\n');
    if (st == AETHER_OK) FUZZ_ASSERT(r.bad_line == 0 && r.records == total);
    else FUZZ_ASSERT(r.bad_line >= 1 && r.bad_line <= total && r.records == r.bad_line - 1 && r.reason[0] != '\0');
    /* head: the last good record's hash (64 zeros before any), whatever the refusal */
    FUZZ_ASSERT_MSG(strlen(r.head) == 64, "head %s after %s", r.head, aether_error_name(st));
    return 0;
  }
  nlines = 1 + fuzz_u8(&p) % MAX_RECORDS;
  char prev[65];
  memset(prev, '0', 64);
  prev[64] = 0;
  for (size_t i = 0; i < nlines; i++) {
    render(lines[i], i + 1, prev, &p, hashes[i]);
    memcpy(prev, hashes[i], 65);
  }
  size_t len = join(SIZE_MAX, SIZE_MAX, SIZE_MAX);
  int st = aether_audit_verify_buffer(buf, len, &r);
  FUZZ_LOG("%zu records: %s", nlines, aether_error_name(st));
  expect(st, &r, AETHER_OK, 0, nlines, "intact log");
  FUZZ_ASSERT_MSG(strcmp(r.head, hashes[nlines - 1]) == 0, "intact log: head %s, the last hash %s", r.head, hashes[nlines - 1]);

  const uint8_t kind = fuzz_u8(&p) % 6;
  const size_t j = fuzz_u8(&p) % nlines;
  const uint16_t pos = fuzz_u16(&p);
  uint8_t byte = fuzz_u8(&p);
  switch (kind) {
    case 0: { /* one byte of line j changed (never into or out of a newline) */
      const size_t l = strlen(lines[j]), at = pos % l;
      if (byte == (uint8_t)lines[j][at] || byte == '\n' || byte == 0) byte = lines[j][at] == 'x' ? 'y' : 'x';
      lines[j][at] = (char)byte;
      len = join(SIZE_MAX, SIZE_MAX, SIZE_MAX);
      FUZZ_LOG("line %zu, byte %zu changed to %#x", j + 1, at, byte);
      st = aether_audit_verify_buffer(buf, len, &r);
      expect(st, &r, AETHER_ERR_TAMPERED, j + 1, j, "a changed byte");
      break;
    }
    case 1: /* line j removed: the next line's n (or, for the last line, nothing) tells */
      len = join(j, SIZE_MAX, SIZE_MAX);
      FUZZ_LOG("line %zu removed", j + 1);
      st = aether_audit_verify_buffer(buf, len, &r);
      if (j == nlines - 1) expect(st, &r, AETHER_OK, 0, nlines - 1, "the last line removed");
      else expect(st, &r, AETHER_ERR_TAMPERED, j + 1, j, "a removed line");
      break;
    case 2: /* lines j and j+1 swapped */
      if (nlines < 2) break;
      {
        const size_t s = j < nlines - 1 ? j : nlines - 2;
        len = join(SIZE_MAX, s, SIZE_MAX);
        FUZZ_LOG("lines %zu and %zu swapped", s + 1, s + 2);
        st = aether_audit_verify_buffer(buf, len, &r);
        expect(st, &r, AETHER_ERR_TAMPERED, s + 1, s, "swapped lines");
      }
      break;
    case 3: /* line j duplicated */
      len = join(SIZE_MAX, SIZE_MAX, j);
      FUZZ_LOG("line %zu duplicated", j + 1);
      st = aether_audit_verify_buffer(buf, len, &r);
      expect(st, &r, AETHER_ERR_TAMPERED, j + 2, j + 1, "a duplicated line");
      break;
    case 4: { /* cut short */
      const size_t cut = pos % (len + 1);
      size_t whole = 0, nl = 0;
      for (size_t i = 0; i < cut; i++)
        if (buf[i] == '\n') nl++, whole = i + 1;
      FUZZ_LOG("cut to %zu of %zu bytes", cut, len);
      st = aether_audit_verify_buffer(buf, cut, &r);
      if (cut == whole || cut == whole + strlen(lines[nl])) /* at a line boundary (or just before its newline) */
        expect(st, &r, AETHER_OK, 0, cut == whole ? nl : nl + 1, "cut at a line boundary");
      else
        expect(st, &r, AETHER_ERR_MALFORMED, nl + 1, nl, "cut inside a line");
      break;
    }
    default: { /* a forger changes line j's size field and recomputes its hash */
      char *s = strstr(lines[j], "\"size\":");
      FUZZ_ASSERT(s != NULL);
      s[7] = s[7] == '9' ? '1' : '9';
      char *h = strstr(lines[j], ",\"hash\":\"");
      sha256_hex(lines[j], (size_t)(h - lines[j]), hashes[j]);
      memcpy(h + 9, hashes[j], 64);
      len = join(SIZE_MAX, SIZE_MAX, SIZE_MAX);
      FUZZ_LOG("line %zu forged with its hash recomputed", j + 1);
      st = aether_audit_verify_buffer(buf, len, &r);
      if (j == nlines - 1) {
        expect(st, &r, AETHER_OK, 0, nlines, "a forged last line");
        FUZZ_ASSERT_MSG(strcmp(r.head, hashes[j]) == 0, "a forged last line: the head is not the forged hash");
      } else {
        expect(st, &r, AETHER_ERR_TAMPERED, j + 2, j + 1, "a forged line");
      }
      break;
    }
  }
  FUZZ_LOG("done: no finding");
  return 0;
}
