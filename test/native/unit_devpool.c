/* unit_devpool.c: the device pools from C on the host backend (what aether sanitize runs under ASan, UBSan, TSan
 * and MSan): contexts and handles, copies in and out with their bounds, every refused handle, quotas, wipes,
 * shared objects and ownership, growth, trim and compaction, stats and leaks, the audit ring and (where OpenSSL's
 * libcrypto can be loaded) a hash-chained audit file verified and then tampered with, trace parsing and replay,
 * and the benchmark loops with small counts.
 * Usage: unit_devpool [ROUNDS]   (ROUNDS repeats the allocation scenarios; default 2). */
#include <aether.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

/* Under MemorySanitizer the audit file is left out: its SHA-256 comes from OpenSSL's libcrypto, loaded with
 * dlopen and not instrumented, and MSan (which needs every line of the process instrumented, and has no run-time
 * suppressions) reports libcrypto's own reads of what it wrote itself. The ring is checked all the same. */
#if defined(__has_feature)
#if __has_feature(memory_sanitizer)
#define NO_LIBCRYPTO "MSan: libcrypto is not instrumented"
#endif
#endif

static long rounds = 2;

static const char *audit_file_skipped(void) {
#ifdef NO_LIBCRYPTO
  return NO_LIBCRYPTO;
#else
  return aether_audit_crypto_status() == AETHER_OK ? NULL : "no libcrypto here";
#endif
}
static aether_devpool *dp;

#define OK(call) CHECK((call) == AETHER_OK, "%s: %s", #call, aether_last_error())

static uint32_t context(const char *tenant, const char *runtime, int level, uint32_t flags) {
  uint32_t ctx = 0;
  OK(aether_devpool_context(dp, tenant, runtime, level, flags, &ctx));
  return ctx;
}

static void handles_and_copies(void) {
  const uint32_t a = context("alpha", "rust", AETHER_LEVEL_PUBLIC, 0);
  CHECK(context("alpha", "rust", AETHER_LEVEL_PUBLIC, 0) == a, "the same context twice got two ids");
  static const uint64_t sizes[] = {1, 255, 256, 257, 4096, 8193, 100000, 1 << 20, 3 << 20};
  enum { N = sizeof sizes / sizeof sizes[0] };
  uint64_t h[N];
  unsigned char buf[9000], back[9000];
  for (long r = 0; r < rounds; r++) {
    for (int i = 0; i < N; i++) {
      OK(aether_devpool_alloc(dp, a, sizes[i], i % 2 ? AETHER_ALLOC_ZERO : 0, &h[i]));
      uint64_t size = 0, addr = 0;
      OK(aether_devpool_size(dp, a, h[i], &size));
      CHECK(size == sizes[i], "size %llu for %llu", (unsigned long long)size, (unsigned long long)sizes[i]);
      if (i % 3 == 0) {
        OK(aether_devpool_address(dp, a, h[i], &addr));
        CHECK(addr % 256 == 0, "address %llx not 256-aligned", (unsigned long long)addr);
      }
      const uint64_t n = sizes[i] < sizeof buf ? sizes[i] : sizeof buf;
      for (uint64_t k = 0; k < n; k++) buf[k] = (unsigned char)(k * 13 + (uint64_t)i);
      OK(aether_devpool_write(dp, a, h[i], 0, buf, n));
      memset(back, 0, sizeof back);
      OK(aether_devpool_read(dp, a, h[i], 0, back, n));
      CHECK(memcmp(buf, back, n) == 0, "read back differs for %llu bytes", (unsigned long long)sizes[i]);
      OK(aether_devpool_fill(dp, a, h[i], sizes[i] - 1, 0x5a, 1));
      CHECK(aether_devpool_write(dp, a, h[i], sizes[i], buf, 1) == AETHER_ERR_OUT_OF_BOUNDS, "write past the end accepted");
      CHECK(aether_devpool_read(dp, a, h[i], UINT64_MAX, back, 2) == AETHER_ERR_OUT_OF_BOUNDS, "offset overflow accepted");
    }
    for (int i = 0; i < N; i++) OK(aether_devpool_free(dp, a, h[i]));
    CHECK(aether_devpool_free(dp, a, h[0]) == AETHER_ERR_STALE_HANDLE, "double free not refused as stale");
    CHECK(aether_devpool_read(dp, a, h[1], 0, back, 1) == AETHER_ERR_STALE_HANDLE, "read of a freed handle");
  }
  CHECK(aether_devpool_free(dp, a, 0x1234567890abcdefull) == AETHER_ERR_FORGED_HANDLE, "a forged handle accepted");
  CHECK(aether_devpool_alloc(dp, a, 0, 0, &h[0]) != AETHER_OK, "a 0-byte allocation accepted");
  uint32_t bad;
  CHECK(aether_devpool_context(dp, "no spaces", "rust", 0, 0, &bad) != AETHER_OK, "a bad tenant name accepted");
}

static void tenants_isolated_and_wiped(void) {
  const uint32_t mine = context("bravo", "julia", AETHER_LEVEL_SECRET, 0);
  const uint32_t theirs = context("charlie", "julia", AETHER_LEVEL_CONFIDENTIAL, AETHER_CONTEXT_ISOLATED);
  uint64_t h, g;
  OK(aether_devpool_alloc(dp, mine, 5000, 0, &h));
  OK(aether_devpool_fill(dp, mine, h, 0, 0xab, 5000));
  unsigned char b[16];
  CHECK(aether_devpool_read(dp, theirs, h, 0, b, 16) == AETHER_ERR_ACCESS_DENIED, "another tenant read my bytes");
  CHECK(aether_devpool_free(dp, theirs, h) == AETHER_ERR_ACCESS_DENIED, "another tenant freed my allocation");
  OK(aether_devpool_free(dp, mine, h));
  OK(aether_devpool_alloc(dp, theirs, 5000, 0, &g));
  OK(aether_devpool_read(dp, theirs, g, 0, b, 16));
  int zero = 1;
  for (int i = 0; i < 16; i++) zero &= b[i] != 0xab;
  CHECK(zero, "a new allocation shows another tenant's bytes");
  OK(aether_devpool_free(dp, theirs, g));
  aether_devpool_stats st;
  OK(aether_devpool_context_stats(dp, mine, &st));
  CHECK(st.wiped_bytes >= 4 * 5000, "secret free wiped %llu bytes, expected 4 passes", (unsigned long long)st.wiped_bytes);
}

static void quotas(void) {
  const uint32_t c = context("delta", "go", AETHER_LEVEL_PUBLIC, 0);
  OK(aether_devpool_set_quota(dp, "delta", 10000, 3));
  uint64_t h[4];
  OK(aether_devpool_alloc(dp, c, 4000, 0, &h[0]));
  OK(aether_devpool_alloc(dp, c, 4000, 0, &h[1]));
  CHECK(aether_devpool_alloc(dp, c, 4000, 0, &h[2]) == AETHER_ERR_QUOTA_EXCEEDED, "the byte quota let 12000 through");
  OK(aether_devpool_alloc(dp, c, 100, 0, &h[2]));
  CHECK(aether_devpool_alloc(dp, c, 100, 0, &h[3]) == AETHER_ERR_QUOTA_EXCEEDED, "the count quota let a 4th through");
  for (int i = 0; i < 3; i++) OK(aether_devpool_free(dp, c, h[i]));
  OK(aether_devpool_set_quota(dp, "delta", 0, 0));
}

static void shared_objects(void) {
  const uint32_t creator = context("echo", "python", AETHER_LEVEL_PUBLIC, 0);
  const uint32_t reader = context("echo", "julia", AETHER_LEVEL_PUBLIC, 0);
  const uint32_t writer = context("echo", "elixir", AETHER_LEVEL_PUBLIC, 0);
  const uint32_t stranger = context("foxtrot", "julia", AETHER_LEVEL_PUBLIC, 0);
  const char init[] = "shared bytes";
  uint64_t obj, ref, rref, wref, sref;
  OK(aether_devpool_share_create(dp, creator, 4096, 0, "julia:r,elixir:rw", init, sizeof init, &obj, &ref));
  OK(aether_devpool_share_acquire(dp, reader, obj, AETHER_ACCESS_READ, &rref));
  char back[sizeof init];
  OK(aether_devpool_read(dp, reader, rref, 0, back, sizeof back));
  CHECK(memcmp(back, init, sizeof init) == 0, "a reader sees '%s'", back);
  CHECK(aether_devpool_write(dp, reader, rref, 0, "x", 1) != AETHER_OK, "a read reference wrote");
  CHECK(aether_devpool_share_acquire(dp, stranger, obj, AETHER_ACCESS_READ, &sref) == AETHER_ERR_ACCESS_DENIED,
        "another tenant acquired the object");
  OK(aether_devpool_share_acquire(dp, writer, obj, AETHER_ACCESS_READ_WRITE, &wref));
  CHECK(aether_devpool_write(dp, creator, ref, 0, "y", 1) == AETHER_ERR_NOT_OWNER, "the old owner still writes");
  OK(aether_devpool_write(dp, writer, wref, 0, "z", 1));
  aether_share_info info;
  OK(aether_devpool_share_info(dp, obj, &info));
  CHECK(info.refcount == 3 && info.transfers == 1 && info.owner_ctx == writer, "refcount %llu, transfers %llu",
        (unsigned long long)info.refcount, (unsigned long long)info.transfers);
  OK(aether_devpool_share_release(dp, reader, rref));
  OK(aether_devpool_share_release(dp, writer, wref));
  OK(aether_devpool_share_release(dp, creator, ref));
  CHECK(aether_devpool_share_info(dp, obj, &info) != AETHER_OK, "the object outlived its last reference");
}

static void growth_trim_stats_leaks(void) {
  const uint32_t c = context("golf", "rust", AETHER_LEVEL_PUBLIC, 0);
  uint64_t h[64];
  for (int i = 0; i < 64; i++) OK(aether_devpool_alloc(dp, c, 50000 + (uint64_t)i * 1000, 0, &h[i]));
  for (int i = 0; i < 64; i += 2) OK(aether_devpool_free(dp, c, h[i]));
  aether_devpool_stats st;
  OK(aether_devpool_context_stats(dp, c, &st));
  CHECK(st.live_count == 32 && st.slabs >= 1, "live %llu, slabs %llu", (unsigned long long)st.live_count,
        (unsigned long long)st.slabs);
  aether_devpool_leak leaks[8];
  CHECK(aether_devpool_check_leaks(dp, leaks, 8) == 32, "leaks listed: not the 32 live allocations");
  for (int i = 1; i < 64; i += 2) OK(aether_devpool_free(dp, c, h[i]));
  CHECK(aether_devpool_trim(dp, c) >= 0, "trim failed: %s", aether_last_error());
  OK(aether_devpool_get_stats(dp, &st));
  CHECK(st.live_count == 0, "%llu allocations live after freeing everything", (unsigned long long)st.live_count);
  CHECK(aether_devpool_check_leaks(dp, NULL, 0) == 0, "leaks reported with nothing live");
}

static void audit(void) {
  const uint64_t seq = aether_devpool_audit_seq(dp);
  CHECK(seq > 0, "no audit record after all that");
  aether_audit_record rec[32];
  const size_t n = aether_devpool_audit_read(dp, seq > 32 ? seq - 32 : 0, rec, 32);
  CHECK(n > 0 && rec[n - 1].seq == seq, "the ring's newest record is not seq %llu", (unsigned long long)seq);
  CHECK(strcmp(aether_audit_op_name(AETHER_AUDIT_ALLOC), "alloc") == 0, "audit op name");
  if (audit_file_skipped()) return;
  char path[64];
  snprintf(path, sizeof path, "/tmp/aether-unit-devpool-%d.jsonl", (int)getpid());
  unlink(path);
  OK(aether_devpool_set_audit_log(dp, 0, path));
  const uint32_t c = context("hotel", "rust", AETHER_LEVEL_PUBLIC, 0);
  uint64_t h;
  OK(aether_devpool_alloc(dp, c, 1000, 0, &h));
  OK(aether_devpool_free(dp, c, h));
  OK(aether_devpool_audit_flush(dp));
  aether_audit_verify_result vr;
  OK(aether_audit_verify_file(path, &vr));
  CHECK(vr.records >= 2, "%llu records verified", (unsigned long long)vr.records);
  OK(aether_devpool_set_audit_log(dp, 0, NULL));
  /* Tamper with a digit of the first record's size: the chain must break there. */
  FILE *f = fopen(path, "r+");
  if (f) {
    char line[1024];
    if (fgets(line, sizeof line, f)) {
      char *size = strstr(line, "\"size\":");
      if (size) {
        fseek(f, (long)(size - line) + 7, SEEK_SET);
        fputc(size[7] == '9' ? '8' : '9', f);
      }
    }
    fclose(f);
    CHECK(aether_audit_verify_file(path, &vr) == AETHER_ERR_TAMPERED && vr.bad_line == 1, "tampering not found (line %llu)",
          (unsigned long long)vr.bad_line);
  }
  unlink(path);
}

static void traces_and_benches(void) {
  const char text[] = "# a small trace\na 1 1000\na 2 300000\nf 1\na 3 512\nf 2\nf 3\n";
  aether_trace *t = NULL;
  OK(aether_trace_parse(text, sizeof text - 1, &t));
  aether_trace_info ti;
  OK(aether_trace_get_info(t, &ti));
  CHECK(ti.allocs == 3 && ti.frees == 3 && ti.format == AETHER_TRACE_AETHER, "trace info");
  const uint32_t c = context("india", "rust", AETHER_LEVEL_PUBLIC, 0);
  aether_replay_result rr;
  aether_replay_point pts[4];
  aether_bench_result al, fl;
  OK(aether_devpool_replay(dp, c, t, &rr, &al, &fl, pts, 4));
  CHECK(rr.allocs == 3 && rr.failures == 0, "replay: %llu allocs, %llu failures", (unsigned long long)rr.allocs,
        (unsigned long long)rr.failures);
  aether_trace_free(t);
  const char bad[] = "a 1 10\nz 9\n";
  CHECK(aether_trace_parse(bad, sizeof bad - 1, &t) == AETHER_ERR_MALFORMED, "a malformed trace parsed");
  const char rmm[] = "Thread,Time,Action,Pointer,Size,Stream\n1,0,allocate,0x10,256,0\n1,1,free,0x10,256,0\n";
  OK(aether_trace_parse(rmm, sizeof rmm - 1, &t));
  OK(aether_trace_get_info(t, &ti));
  CHECK(ti.format == AETHER_TRACE_RMM && ti.allocs == 1, "RMM trace info");
  aether_trace_free(t);
  aether_bench_result b;
  OK(aether_bench_devpool(dp, c, AETHER_BENCH_DEVPOOL_POOL, 4096, 200, &b));
  OK(aether_bench_devpool(dp, c, AETHER_BENCH_DEVPOOL_RAW, 4096, 20, &b));
  OK(aether_bench_devpool_live(dp, c, 1024, 200, &al, &fl));
}

int main(int argc, char **argv) {
  rounds = check_arg(argc, argv, 1, 2);
  aether_device_info info;
  CHECK(aether_device_probe(AETHER_DEVICE_HOST, &info) == AETHER_OK, "the host backend is not usable: %s", info.message);
  aether_devpool_config cfg = {.backend = AETHER_DEVICE_HOST, .slab_bytes = 1 << 20, .retain_bytes = 2 << 20,
                               .audit_ring = 4096, .flags = AETHER_DEVPOOL_VERIFY_WIPE | AETHER_DEVPOOL_NO_ENV_AUDIT};
  OK(aether_devpool_create(&cfg, &dp));
  if (!dp) return check_verdict("");
  CHECK(aether_devpool_backend(dp) == AETHER_DEVICE_HOST, "backend %d", aether_devpool_backend(dp));
  SCENARIO(handles_and_copies);
  SCENARIO(tenants_isolated_and_wiped);
  SCENARIO(quotas);
  SCENARIO(shared_objects);
  SCENARIO(growth_trim_stats_leaks);
  SCENARIO(audit);
  SCENARIO(traces_and_benches);
  aether_devpool_destroy(dp);
  char summary[128];
  const char *skipped = audit_file_skipped();
  snprintf(summary, sizeof summary, "%ld round(s), audit file %s%s%s", rounds, skipped ? "skipped (" : "verified",
           skipped ? skipped : "", skipped ? ")" : "");
  return check_verdict(summary);
}
