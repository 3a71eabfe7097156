/* stress_structures.c: the concurrent stress of each lock-free structure, through the library's own verified
 * stress runner (aether_stress_*): every queue item carries its producer and sequence number and consumers check
 * order, counts and checksums; pool and allocator workers stamp the blocks they own and verify them before
 * freeing or handing them on. Meanwhile this thread polls the shared counters, as `aether stress` does, so the
 * runner's progress reporting races the workers too. Any violation fails the run; TSan watches every access.
 * Usage: stress_structures spsc|mpmc|pool|alloc [PRODUCERS] [CONSUMERS] [OPS]   (default 2 2 20000).
 * Do not use this as a benchmark. */
#include <aether.h>
#include <string.h>
#include <time.h>

#include "check.h"

int main(int argc, char **argv) {
  static const char *names[] = {"spsc", "mpmc", "pool", "alloc"};
  int target = -1;
  for (int i = 0; i < 4 && argc > 1; i++)
    if (strcmp(argv[1], names[i]) == 0) target = i;
  if (target < 0) {
    fprintf(stderr, "usage: %s spsc|mpmc|pool|alloc [PRODUCERS] [CONSUMERS] [OPS]\n", argv[0]);
    return 2;
  }
  const bool spsc = target == AETHER_STRESS_SPSC;
  aether_stress_config cfg = {
      .target = (uint32_t)target,
      .producers = spsc ? 1 : (uint32_t)check_arg(argc, argv, 2, 2),
      .consumers = spsc ? 1 : (uint32_t)check_arg(argc, argv, 3, 2),
      .inject = AETHER_STRESS_INJECT_NONE,
      .ops = (uint64_t)check_arg(argc, argv, 4, 20000),
      .capacity = target == AETHER_STRESS_POOL ? 0 : 256,
      .elem_size = target == AETHER_STRESS_ALLOC ? 4096 : target == AETHER_STRESS_POOL ? 192 : 24,
      .seed = 20261122,
  };
  aether_stress *s = aether_stress_start(&cfg);
  CHECK(s != NULL, "aether_stress_start(%s): %s", names[target], aether_last_error());
  if (!s) return check_verdict("");
  aether_stress_progress p;
  uint64_t polls = 0, last = 0;
  const struct timespec nap = {0, 1000000};
  for (;;) {
    CHECK(aether_stress_poll(s, &p) == AETHER_OK, "poll");
    CHECK(p.ops >= last, "the op counter went back from %llu to %llu", (unsigned long long)last, (unsigned long long)p.ops);
    last = p.ops;
    polls++;
    if (p.finished || p.violations) break;
    nanosleep(&nap, NULL);
  }
  char message[512] = "";
  const int64_t violations = aether_stress_finish(s, &p, message, sizeof message);
  CHECK(violations == 0, "%s: %lld violation(s): %s", names[target], (long long)violations, message);
  CHECK(p.ops >= cfg.ops, "%s: stopped after %llu of %llu operations", names[target], (unsigned long long)p.ops,
        (unsigned long long)cfg.ops);
  char summary[160];
  snprintf(summary, sizeof summary, "%s: %llu ops by %u+%u threads, max depth %llu, %llu polls", names[target],
           (unsigned long long)p.ops, cfg.producers, cfg.consumers, (unsigned long long)p.max_depth, (unsigned long long)polls);
  return check_verdict(summary);
}
