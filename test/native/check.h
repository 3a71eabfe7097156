/* check.h: the few lines every native scenario driver shares (mimalloc's test-api.c style): named checks that
 * count failures instead of stopping, and one verdict line at the end.
 *
 * A driver prints "FAIL <file>:<line>: <what>" for each failed check and, at the end, either "ok <summary>"
 * (exit 0) or "FAILED <n> check(s)" (exit 1). aether sanitize and the tests read that verdict; a sanitizer
 * report is told apart by the sanitizer's own exit code and log. */
#ifndef AETHER_TEST_CHECK_H
#define AETHER_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_failures;
static const char *check_scenario = "";

#define CHECK(cond, ...)                                                  \
  do {                                                                    \
    if (!(cond)) {                                                        \
      printf("FAIL %s:%d [%s]: ", __FILE__, __LINE__, check_scenario);   \
      printf(__VA_ARGS__);                                                \
      printf("\n");                                                       \
      fflush(stdout);                                                     \
      check_failures++;                                                   \
    }                                                                     \
  } while (0)

/* Run one named scenario function: its name is printed with any failure inside it. */
#define SCENARIO(fn)          \
  do {                        \
    check_scenario = #fn;     \
    fn();                     \
    check_scenario = "";      \
  } while (0)

/* The verdict: "ok <summary>" and 0, or "FAILED n check(s)" and 1. */
static inline int check_verdict(const char *summary) {
  if (check_failures) {
    printf("FAILED %d check(s)\n", check_failures);
    return 1;
  }
  printf("ok %s\n", summary);
  return 0;
}

/* A number from argv[i], or dflt when absent. */
static inline long check_arg(int argc, char **argv, int i, long dflt) { return argc > i ? atol(argv[i]) : dflt; }

#endif
