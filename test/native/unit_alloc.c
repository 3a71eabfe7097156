/* unit_alloc.c: the safe allocator's API, scenario by scenario, from C (what aether sanitize runs under ASan,
 * UBSan, TSan and MSan with the instrumented library). Correct use first (sizes across every size class and the
 * huge path, alignment, calloc, realloc in place and moving, usable_size, stats, the live-block list, options,
 * backtraces), then every error kind the allocator must catch, with the allocator quiet and its log_path in a file:
 * the library's own detection must run clean under the sanitizers, and report what it should.
 * Usage: unit_alloc [ROUNDS]   (ROUNDS repeats the correct-use scenarios; default 3). */
#include <aether.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static long rounds = 3;

static void fill(unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i * 131u);
}
static int filled(const unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)(seed + i * 131u)) return 0;
  return 1;
}

static uint64_t errors_total(void) {
  aether_memory_stats s;
  aether_memory_get_stats(&s);
  uint64_t n = 0;
  for (int k = 0; k < AETHER_MEM_ERROR_KINDS; k++) n += s.errors[k];
  return n;
}

static void sizes_and_contents(void) {
  static const size_t sizes[] = {1, 7, 8, 15, 16, 17, 24, 31, 32, 48, 63, 64, 100, 255, 256, 1000, 4095, 4096,
                                 10000, 65536, 100000, 200000, 262144, 300000, 1 << 20, 3 << 20};
  enum { N = sizeof sizes / sizeof sizes[0] };
  unsigned char *p[N];
  for (long r = 0; r < rounds; r++) {
    for (int i = 0; i < N; i++) {
      p[i] = aether_safe_malloc(sizes[i]);
      CHECK(p[i] != NULL, "safe_malloc(%zu) returned NULL", sizes[i]);
      if (!p[i]) return;
      CHECK((uintptr_t)p[i] % 16 == 0, "safe_malloc(%zu) = %p is not 16-aligned", sizes[i], (void *)p[i]);
      CHECK(aether_safe_usable_size(p[i]) == sizes[i], "usable_size(%zu-byte block) = %zu", sizes[i],
            aether_safe_usable_size(p[i]));
      fill(p[i], sizes[i], (unsigned)(i + r));
    }
    for (int i = 0; i < N; i++) {
      CHECK(filled(p[i], sizes[i], (unsigned)(i + r)), "block of %zu bytes lost its contents", sizes[i]);
      aether_safe_free(p[i]);
      CHECK(aether_safe_usable_size(p[i]) == 0, "usable_size of a freed block is not 0");
    }
  }
  CHECK(aether_safe_malloc(0) == NULL, "safe_malloc(0) is not NULL");
  aether_safe_free(NULL);
}

static void calloc_aligned_realloc(void) {
  unsigned char *z = aether_safe_calloc(123, 7);
  CHECK(z != NULL, "calloc(123, 7) failed");
  int zero = 1;
  for (int i = 0; i < 123 * 7; i++) zero &= z[i] == 0;
  CHECK(zero, "calloc memory is not zeroed");
  aether_safe_free(z);
  CHECK(aether_safe_calloc(SIZE_MAX / 2, 4) == NULL, "calloc overflow did not fail");
  CHECK(aether_last_status() == AETHER_ERR_SIZE_OVERFLOW, "calloc overflow: status %d", aether_last_status());

  for (size_t a = 1; a <= ((size_t)1 << 20); a <<= 1) {
    unsigned char *p = aether_safe_aligned_alloc(a, 100);
    CHECK(p != NULL && (uintptr_t)p % a == 0, "aligned_alloc(%zu) = %p", a, (void *)p);
    if (p) fill(p, 100, 3), aether_safe_free(p);
  }
  CHECK(aether_safe_aligned_alloc(48, 100) == NULL, "aligned_alloc(48) did not fail");
  CHECK(aether_last_status() == AETHER_ERR_NOT_POWER_OF_TWO, "aligned_alloc(48): status %d", aether_last_status());

  /* Grow through several classes and into the huge path, then shrink: the prefix survives every move. */
  size_t n = 10;
  unsigned char *p = aether_safe_malloc(n);
  fill(p, n, 9);
  for (size_t next = 40; next <= ((size_t)2 << 20); next = next * 3 + 1) {
    unsigned char *q = aether_safe_realloc(p, next);
    CHECK(q != NULL, "realloc to %zu failed", next);
    if (!q) return;
    CHECK(filled(q, n, 9), "realloc %zu -> %zu lost data", n, next);
    fill(q, next, 9);
    p = q, n = next;
  }
  for (size_t next = n / 5; next >= 8; next /= 5) {
    unsigned char *q = aether_safe_realloc(p, next);
    CHECK(q != NULL && filled(q, next, 9), "shrinking realloc to %zu", next);
    if (!q) return;
    p = q, n = next;
  }
  CHECK(aether_safe_realloc(p, 0) == NULL, "realloc(p, 0) is not NULL");
  unsigned char *fresh = aether_safe_realloc(NULL, 33);
  CHECK(fresh != NULL && aether_safe_usable_size(fresh) == 33, "realloc(NULL, 33)");
  aether_safe_free(fresh);
}

static void stats_and_listing(void) {
  aether_memory_stats before, after;
  CHECK(aether_memory_get_stats(&before) == AETHER_OK, "get_stats failed");
  CHECK(aether_memory_get_stats(NULL) == AETHER_ERR_INVALID_ARGUMENT, "get_stats(NULL) accepted");
  void *blocks[40];
  size_t bytes = 0;
  for (int i = 0; i < 40; i++) {
    blocks[i] = aether_safe_malloc((size_t)(i + 1) * 50);
    bytes += (size_t)(i + 1) * 50;
  }
  aether_memory_get_stats(&after);
  CHECK(after.live_count == before.live_count + 40, "live_count %llu, expected %llu",
        (unsigned long long)after.live_count, (unsigned long long)before.live_count + 40);
  CHECK(aether_memory_usage() == before.live_bytes + bytes, "usage %zu, expected %llu", aether_memory_usage(),
        (unsigned long long)(before.live_bytes + bytes));
  aether_memory_block top[5];
  const size_t live = aether_memory_live_blocks(top, 5);
  CHECK(live == before.live_count + 40, "live_blocks total %zu", live);
  CHECK(top[0].size == 2000 && top[4].size == 1800, "largest blocks listed %llu .. %llu",
        (unsigned long long)top[0].size, (unsigned long long)top[4].size);
  CHECK(aether_memory_check_all() == 0, "check_all found damage in intact blocks");
  for (int i = 0; i < 40; i++) aether_safe_free(blocks[i]);
  CHECK(aether_memory_usage() == before.live_bytes, "usage not back to %llu", (unsigned long long)before.live_bytes);
}

static void options(void) {
  char v[64];
  CHECK(aether_memory_get_option("quarantine_bytes", v, sizeof v) > 0, "get quarantine_bytes");
  CHECK(aether_memory_set_option("quarantine_bytes", "1m") == AETHER_OK, "set quarantine_bytes 1m");
  aether_memory_get_option("quarantine_bytes", v, sizeof v);
  CHECK(strcmp(v, "1048576") == 0, "quarantine_bytes reads back '%s'", v);
  CHECK(aether_memory_set_option("quarantine_bytes", "-3") == AETHER_ERR_INVALID_ARGUMENT, "negative size accepted");
  CHECK(aether_memory_set_option("no_such_option", "1") == AETHER_ERR_INVALID_ARGUMENT, "unknown option accepted");
  CHECK(aether_memory_set_option("redzone", "64") == AETHER_ERR_BUSY, "redzone changed after first allocation");
  CHECK(aether_memory_set_option(NULL, "1") == AETHER_ERR_INVALID_ARGUMENT, "NULL name accepted");
  CHECK(aether_memory_get_option("quiet", v, 1) == AETHER_ERR_OUT_OF_RANGE, "a 1-byte buffer fit the value");
  CHECK(strlen(aether_last_error()) > 0, "no message for the last failure");
  aether_clear_error();
  CHECK(aether_last_status() == AETHER_OK && aether_last_error()[0] == '\0', "clear_error left a status");
  CHECK(aether_memory_set_option("quarantine_bytes", "256k") == AETHER_OK, "restore quarantine_bytes");
}

static void backtraces(void) {
  CHECK(aether_memory_set_option("backtrace", "1") == AETHER_OK, "backtrace on");
  void *p = aether_safe_malloc(77);
  aether_memory_block b[1];
  aether_memory_live_blocks(b, 1);
  aether_memory_block all[64];
  const size_t n = aether_memory_live_blocks(all, 64);
  uint32_t id = 0;
  for (size_t i = 0; i < n && i < 64; i++)
    if (all[i].address == (uintptr_t)p) id = all[i].alloc_trace;
  CHECK(id != 0, "no allocation trace recorded with backtrace on");
  uint64_t frames[32];
  const size_t depth = aether_memory_trace(id, frames, 32);
  CHECK(depth > 0 && frames[0] != 0, "trace %u has %zu frames", id, depth);
  CHECK(aether_memory_trace(0xfffffff0u, frames, 32) == 0, "an unknown trace id has frames");
  aether_safe_free(p);
  aether_memory_set_option("backtrace", "0");
}

static int hook_calls;
static void hook(const aether_memory_event *e, void *arg) {
  (void)e;
  *(int *)arg += 1;
}

/* Every error kind, caught and recorded, nothing printed (quiet), nothing crashing. */
static void errors_caught(void) {
  aether_memory_set_option("quiet", "1");
  aether_memory_set_error_handler(hook, &hook_calls);
  aether_memory_event ev[AETHER_MEMORY_EVENT_RING];
  uint64_t seq = 0;
  const size_t old = aether_memory_errors(0, ev, AETHER_MEMORY_EVENT_RING);
  if (old) seq = ev[old - 1].seq;
  const uint64_t before = errors_total();

  unsigned char *d = aether_safe_malloc(32);
  aether_safe_free(d);
  aether_safe_free(d); /* double free */
  unsigned char *live = aether_safe_malloc(64);
  aether_safe_free(live + 8); /* interior pointer */
  int on_stack;
  aether_safe_free(&on_stack); /* never ours */
  aether_safe_free(live);
  unsigned char *o = aether_safe_malloc(24);
  o[24] = 0x41; /* one byte past the end: into the back guard */
  aether_safe_free(o);
  unsigned char *u = aether_safe_malloc(24);
  u[-1] = 0x41; /* one byte before: the front guard */
  aether_safe_free(u);
  CHECK(aether_safe_realloc(d, 64) == NULL, "realloc of a freed block succeeded");
  unsigned char *w = aether_safe_malloc(48);
  aether_safe_free(w);
  w[5] = 0x41; /* write after free, seen by check_all (the calling thread's quarantine) */
  CHECK(aether_memory_check_all() >= 1, "check_all missed a write after free");
  aether_memory_set_option("quarantine_bytes", "0");
  aether_safe_free(aether_safe_malloc(16)); /* the quarantine drains: the damaged block is reported again */
  aether_memory_set_option("quarantine_bytes", "256k");

  const size_t n = aether_memory_errors(seq, ev, AETHER_MEMORY_EVENT_RING);
  int seen[AETHER_MEM_ERROR_KINDS] = {0};
  for (size_t i = 0; i < n; i++)
    if (ev[i].kind < AETHER_MEM_ERROR_KINDS) seen[ev[i].kind]++;
  for (int k = 0; k < AETHER_MEM_ERROR_KINDS; k++)
    CHECK(seen[k] > 0, "%s was not reported", aether_memory_error_kind_name(k));
  CHECK(seen[AETHER_MEM_INVALID_FREE] >= 2, "invalid frees reported %d times, expected 2", seen[AETHER_MEM_INVALID_FREE]);
  CHECK(errors_total() - before == n, "stats count %llu errors, the event ring %zu",
        (unsigned long long)(errors_total() - before), n);
  CHECK(hook_calls == (int)n, "the handler ran %d times for %zu events", hook_calls, n);
  for (size_t i = 0; i < n; i++)
    if (ev[i].kind == AETHER_MEM_BUFFER_OVERFLOW) CHECK(ev[i].size == 24 && ev[i].detail == 24, "overflow detail %llu", (unsigned long long)ev[i].detail);
  aether_memory_set_error_handler(NULL, NULL);
  aether_memory_set_option("quiet", "0");
}

static char log_path[64];

static void leaks_reported(void) {
  const size_t base = aether_check_leaks();
  void *p = aether_safe_malloc(4321);
  CHECK(aether_check_leaks() == base + 1, "a live block is not counted as a leak");
  aether_safe_free(p);
  CHECK(aether_check_leaks() == base, "leaks not back to %zu", base);
  FILE *f = fopen(log_path, "r");
  CHECK(f != NULL, "the log_path file %s was not written", log_path);
  if (!f) return;
  char line[512];
  int leak_line = 0, errors = 0;
  while (fgets(line, sizeof line, f)) {
    if (strstr(line, "AETHER MEMORY: ") && strstr(line, "leaked")) leak_line = 1;
    if (strncmp(line, "AETHER MEMORY ERROR: ", 21) == 0) errors++;
  }
  fclose(f);
  CHECK(leak_line, "no leak report in the log_path");
  CHECK(errors == 0, "%d error line(s) logged while quiet", errors);
}

static void names(void) {
  CHECK(strcmp(aether_error_name(AETHER_ERR_DOUBLE_FREE), "AETHER_ERR_DOUBLE_FREE") == 0, "error name");
  CHECK(strcmp(aether_error_name(12345), "AETHER_ERR_UNKNOWN") == 0, "unknown error name");
  CHECK(strcmp(aether_memory_error_kind_name(AETHER_MEM_USE_AFTER_FREE), "use-after-free") == 0, "kind name");
  CHECK(strcmp(aether_memory_error_kind_name(-1), "unknown") == 0, "unknown kind name");
  CHECK(aether_version()[0] != '\0' && aether_variant()[0] != '\0', "version and variant");
  char model[128];
  CHECK(aether_cpu_model(model, sizeof model) >= 0, "cpu_model failed");
  CHECK(aether_cpu_model(NULL, 0) < 0, "cpu_model(NULL) accepted");
}

/* The C pair loop on several threads (the benchmark harness's thread start and join). */
static void bench_loop(void) {
  aether_bench_result r;
  CHECK(aether_bench_alloc(AETHER_BENCH_SAFE, 100, 2000, 3, &r) == AETHER_OK && r.ops == 6000, "bench_alloc safe");
  CHECK(aether_bench_alloc(AETHER_BENCH_UNCHECKED, 64, 2000, 2, &r) == AETHER_OK, "bench_alloc unchecked");
  CHECK(aether_bench_alloc(AETHER_BENCH_SAFE, 0, 10, 1, &r) < 0, "bench_alloc size 0 accepted");
}

int main(int argc, char **argv) {
  rounds = check_arg(argc, argv, 1, 3);
  snprintf(log_path, sizeof log_path, "/tmp/aether-unit-alloc-%d.log_path", (int)getpid());
  aether_memory_init();
  CHECK(aether_memory_set_option("log_file", log_path) == AETHER_OK, "log_file");
  SCENARIO(names);
  SCENARIO(sizes_and_contents);
  SCENARIO(calloc_aligned_realloc);
  SCENARIO(stats_and_listing);
  SCENARIO(options);
  SCENARIO(backtraces);
  SCENARIO(errors_caught);
  SCENARIO(bench_loop);
  SCENARIO(leaks_reported);
  aether_memory_set_option("log_file", "");
  unlink(log_path);
  char summary[64];
  snprintf(summary, sizeof summary, "%ld round(s)", rounds);
  return check_verdict(summary);
}
