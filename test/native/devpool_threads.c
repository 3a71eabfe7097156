/* devpool_threads.c: one device pool manager (host backend) shared by many threads, the workload TSan needs.
 * Each worker has its own context (two tenants, all three security levels): it allocates, writes a pattern,
 * reads it back, frees, and probes the refusals (another context's handle, a freed handle). All workers of
 * tenant "shared" also take read references to one shared object and read it while an owner thread writes
 * into it through its read-write reference. One reader thread walks the manager meanwhile: stats per context,
 * tenant and manager, the leak list, the audit ring; and, where libcrypto loads (not under MSan, which cannot
 * see into it), every record also goes to a hash-chained audit file written by the manager's writer thread, which
 * must verify at the end. Nothing may be live at the end and every byte read must be right.
 * Usage: devpool_threads [WORKERS] [OPS]   (default 4 2000).
 * Do not use this as a benchmark: the reader and the checks dominate. */
#include <aether.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#if defined(__has_feature)
#if __has_feature(memory_sanitizer)
#define NO_LIBCRYPTO 1 /* libcrypto is not instrumented: see unit_devpool.c */
#endif
#endif

#define MAX_WORKERS 16

static aether_devpool *dp;
static long workers = 4, ops = 2000;
static uint64_t object;
static uint32_t owner_ctx;
static uint64_t owner_ref;
static atomic_int stop;
static atomic_long bad, refused_ok;

static void *worker(void *arg) {
  const long id = (long)arg;
  char tenant[16];
  snprintf(tenant, sizeof tenant, id % 2 ? "shared" : "other%ld", id);
  uint32_t ctx = 0;
  if (aether_devpool_context(dp, tenant, id % 2 ? "julia" : "rust", (int)(id % 3), 0, &ctx) != AETHER_OK) {
    bad++;
    return NULL;
  }
  uint64_t ref = 0;
  if (id % 2 && aether_devpool_share_acquire(dp, ctx, object, AETHER_ACCESS_READ, &ref) != AETHER_OK) bad++;
  uint32_t rng = (uint32_t)id * 2654435761u + 1;
  unsigned char buf[2048], back[2048];
  for (long i = 0; i < ops; i++) {
    rng = rng * 1664525u + 1013904223u;
    const uint64_t size = 1 + (rng >> 8) % 2048;
    uint64_t h;
    if (aether_devpool_alloc(dp, ctx, size, 0, &h) != AETHER_OK) {
      bad++;
      continue;
    }
    memset(buf, (int)(i & 0xff), size);
    if (aether_devpool_write(dp, ctx, h, 0, buf, size) != AETHER_OK || aether_devpool_read(dp, ctx, h, 0, back, size) != AETHER_OK ||
        memcmp(buf, back, size) != 0)
      bad++;
    if (i % 64 == 0 && aether_devpool_read(dp, ctx + 1000, h, 0, back, 1) != AETHER_OK) refused_ok++;
    if (aether_devpool_free(dp, ctx, h) != AETHER_OK) bad++;
    if (i % 64 == 0 && aether_devpool_free(dp, ctx, h) == AETHER_ERR_STALE_HANDLE) refused_ok++;
    if (ref && i % 16 == 0 && aether_devpool_read(dp, ctx, ref, 0, back, 64) != AETHER_OK) bad++;
  }
  if (ref && aether_devpool_share_release(dp, ctx, ref) != AETHER_OK) bad++;
  return NULL;
}

static void *owner(void *arg) {
  (void)arg;
  unsigned char v = 0;
  while (!atomic_load(&stop)) {
    v++;
    if (aether_devpool_fill(dp, owner_ctx, owner_ref, 0, v, 4096) != AETHER_OK) bad++;
  }
  return NULL;
}

static void *walker(void *arg) {
  (void)arg;
  long walks = 0;
  aether_devpool_stats st;
  aether_devpool_leak leaks[16];
  aether_audit_record rec[64];
  while (!atomic_load(&stop)) {
    aether_devpool_get_stats(dp, &st);
    aether_devpool_tenant_stats(dp, "shared", &st);
    aether_devpool_context_stats(dp, owner_ctx, &st);
    aether_devpool_check_leaks(dp, leaks, 16);
    const uint64_t seq = aether_devpool_audit_seq(dp);
    aether_devpool_audit_read(dp, seq > 64 ? seq - 64 : 0, rec, 64);
    walks++;
  }
  return (void *)walks;
}

int main(int argc, char **argv) {
  workers = check_arg(argc, argv, 1, 4);
  ops = check_arg(argc, argv, 2, 2000);
  if (workers < 1 || workers > MAX_WORKERS) workers = 4;
  aether_devpool_config cfg = {.backend = AETHER_DEVICE_HOST, .slab_bytes = 1 << 20, .audit_ring = 1024,
                               .flags = AETHER_DEVPOOL_NO_ENV_AUDIT};
  CHECK(aether_devpool_create(&cfg, &dp) == AETHER_OK, "create: %s", aether_last_error());
  if (!dp) return check_verdict("");
  CHECK(aether_devpool_context(dp, "shared", "python", AETHER_LEVEL_PUBLIC, 0, &owner_ctx) == AETHER_OK, "owner context");
  CHECK(aether_devpool_share_create(dp, owner_ctx, 4096, 0, "*:r", NULL, 0, &object, &owner_ref) == AETHER_OK,
        "share_create: %s", aether_last_error());
  char audit[64] = "";
  uint64_t seq0 = 0; /* records issued before the file was attached are not in it */
#ifndef NO_LIBCRYPTO
  if (aether_audit_crypto_status() == AETHER_OK) {
    snprintf(audit, sizeof audit, "/tmp/aether-devpool-threads-%d.jsonl", (int)getpid());
    unlink(audit);
    CHECK(aether_devpool_set_audit_log(dp, 0, audit) == AETHER_OK, "audit file: %s", aether_last_error());
    seq0 = aether_devpool_audit_seq(dp);
  }
#endif
  pthread_t w[MAX_WORKERS], o, k;
  pthread_create(&o, NULL, owner, NULL);
  pthread_create(&k, NULL, walker, NULL);
  for (long i = 0; i < workers; i++) pthread_create(&w[i], NULL, worker, (void *)i);
  for (long i = 0; i < workers; i++) pthread_join(w[i], NULL);
  atomic_store(&stop, 1);
  void *walks;
  pthread_join(o, NULL);
  pthread_join(k, &walks);
  CHECK(aether_devpool_share_release(dp, owner_ctx, owner_ref) == AETHER_OK, "last release");
  aether_devpool_stats st;
  aether_devpool_get_stats(dp, &st);
  CHECK(bad == 0, "%ld operation(s) failed or read wrong bytes", (long)bad);
  CHECK(st.live_count == 0 && aether_devpool_check_leaks(dp, NULL, 0) == 0, "%llu allocation(s) live at the end",
        (unsigned long long)st.live_count);
  CHECK(refused_ok > 0, "no bad handle was refused");
  uint64_t records = 0;
  if (audit[0]) {
    CHECK(aether_devpool_audit_flush(dp) == AETHER_OK, "audit flush: %s", aether_last_error());
    aether_audit_verify_result vr;
    CHECK(aether_audit_verify_file(audit, &vr) == AETHER_OK, "audit file: line %llu: %s", (unsigned long long)vr.bad_line, vr.reason);
    CHECK(vr.records == aether_devpool_audit_seq(dp) - seq0, "%llu records in the file, %llu issued since it was attached",
          (unsigned long long)vr.records, (unsigned long long)(aether_devpool_audit_seq(dp) - seq0));
    records = vr.records;
  }
  aether_devpool_destroy(dp);
  if (audit[0]) unlink(audit);
  char summary[128];
  snprintf(summary, sizeof summary, "%ld workers x %ld ops, %ld refusals, %ld walks, %llu audit records verified", workers, ops,
           (long)refused_ok, (long)walks, (unsigned long long)records);
  return check_verdict(summary);
}
