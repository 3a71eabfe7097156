/* qbench_harness.h: the two-thread queue benchmark loops, written once and stamped out for every queue, so
 * aether's queues (csrc/lockfree_bench.c) and the C++ queues they are compared with (bench/native/cxx_queues.cpp,
 * built only by the benchmark) run exactly the same loop. Valid C11 and C++11: it uses GCC's __atomic
 * builtins, not <stdatomic.h>.
 *
 * Thread 0 is the producer and thread 1 the consumer; the includer's launcher pins them to CPUs 0 and 1 and
 * returns the wall time from their common start to the last one's end.
 *   throughput  thread 0 pushes 0, 1, ..., items-1 (spinning while full); thread 1 pops them (spinning while
 *               empty) and checks each is the next expected value (FIFO, nothing lost or duplicated). With
 *               samples != NULL the consumer also times every slice of AEQB_SLICE items: on a shared machine
 *               the median slice shows the queue's rate without the slices a preempted thread stalled.
 *   round trip  thread 0 pushes i into q1 and waits for it on q2; thread 1 pops from q1 and pushes it into
 *               q2. With samples != NULL every round trip is timed with AEQB_TICKS() (the includer's clock).
 * Spinning is a plain retry loop, no pause instruction, for every queue alike.
 *
 * AEQB_DEFINE(name, Q, push, pop) defines name_throughput and name_round_trip (ae-style bench functions
 * void fn(void *job, uint32_t index)); push(Q *q, uint64_t v) -> bool and pop(Q *q, uint64_t *v) -> bool
 * must be inline-able. */
#ifndef AETHER_QBENCH_HARNESS_H
#define AETHER_QBENCH_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#define AEQB_SLICE 65536u

typedef struct aeqb_job {
  void *q1, *q2;       /* q2: the echo queue of a round trip */
  uint64_t items;      /* items moved, or round trips */
  uint32_t *samples;   /* round trip: ticks per trip (items of them); throughput: ticks per slice (items /
                          AEQB_SLICE of them); NULL: untimed */
  int failed;          /* set (relaxed) when the consumer saw an unexpected value */
} aeqb_job;

/* The consumer's slice clock: call after each item i. */
static inline void aeqb_slice(uint32_t *s, uint64_t i, uint64_t *last) {
  if (s != 0 && ((i + 1) & (AEQB_SLICE - 1)) == 0) {
    const uint64_t now = AEQB_TICKS(), d = now - *last;
    s[i / AEQB_SLICE] = d > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)d;
    *last = now;
  }
}

static inline void aeqb_fail(aeqb_job *j) { __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED); }

#define AEQB_DEFINE(NAME, Q, PUSH, POP)                                                             \
  static void NAME##_throughput(void *arg, uint32_t index) {                                         \
    aeqb_job *j = (aeqb_job *)arg;                                                                   \
    Q *q = (Q *)j->q1;                                                                               \
    const uint64_t n = j->items;                                                                     \
    if (index == 0) {                                                                                \
      for (uint64_t i = 0; i < n; i++)                                                               \
        while (!PUSH(q, i)) {                                                                        \
        }                                                                                            \
    } else {                                                                                         \
      uint64_t v = 0, last = j->samples ? AEQB_TICKS() : 0;                                          \
      for (uint64_t i = 0; i < n; i++) {                                                             \
        while (!POP(q, &v)) {                                                                        \
        }                                                                                            \
        if (v != i) aeqb_fail(j);                                                                    \
        aeqb_slice(j->samples, i, &last);                                                            \
      }                                                                                              \
    }                                                                                                \
  }                                                                                                  \
  static void NAME##_round_trip(void *arg, uint32_t index) {                                         \
    aeqb_job *j = (aeqb_job *)arg;                                                                   \
    Q *q1 = (Q *)j->q1;                                                                              \
    Q *q2 = (Q *)j->q2;                                                                              \
    const uint64_t n = j->items;                                                                     \
    uint64_t v = 0;                                                                                  \
    if (index == 0) {                                                                                \
      uint32_t *s = j->samples;                                                                      \
      for (uint64_t i = 0; i < n; i++) {                                                             \
        const uint64_t t0 = s ? AEQB_TICKS() : 0;                                                    \
        while (!PUSH(q1, i)) {                                                                       \
        }                                                                                            \
        while (!POP(q2, &v)) {                                                                       \
        }                                                                                            \
        if (s) {                                                                                     \
          const uint64_t d = AEQB_TICKS() - t0;                                                      \
          s[i] = d > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)d;                                        \
        }                                                                                            \
        if (v != i) aeqb_fail(j);                                                                    \
      }                                                                                              \
    } else {                                                                                         \
      for (uint64_t i = 0; i < n; i++) {                                                             \
        while (!POP(q1, &v)) {                                                                       \
        }                                                                                            \
        while (!PUSH(q2, v)) {                                                                       \
        }                                                                                            \
      }                                                                                              \
    }                                                                                                \
  }

#endif
