/* regression_driver.c: replays inputs through a fuzz target without libFuzzer (zstd's regression_driver.c), so
 * the committed corpora run on any machine with a C compiler: `aether fuzz --regression` builds each target
 * with plain gcc and this main(), then runs it over fuzz/corpus/<target>/.
 *
 * Usage: <target> [-v] FILE|DIR...   (directories are read one level deep, files in name order)
 * Each input is read whole and passed once to LLVMFuzzerTestOneInput, as libFuzzer would. A target signals a
 * finding by aborting (FUZZ_ASSERT) or by crashing, so the driver prints the name of each input before it
 * runs it ("running <path>" on stderr): the last such line names the input that failed. At the end it prints
 * "replayed N inputs (B bytes)" and exits 0; with no input at all it says so and exits 2. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz_helpers.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static size_t inputs, total_bytes;

static void run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "regression: cannot open %s: %s\n", path, strerror(errno));
    exit(2);
  }
  size_t cap = 4096, len = 0;
  uint8_t *buf = malloc(cap);
  FUZZ_ASSERT(buf != NULL);
  size_t n;
  while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
    len += n;
    if (len == cap) {
      cap *= 2;
      buf = realloc(buf, cap);
      FUZZ_ASSERT(buf != NULL);
    }
  }
  fclose(f);
  fprintf(stderr, "running %s (%zu bytes)\n", path, len);
  /* An exact-size copy, so a target that reads past the end of its input is caught by ASan here too. */
  uint8_t *exact = malloc(len ? len : 1);
  FUZZ_ASSERT(exact != NULL);
  memcpy(exact, buf, len);
  free(buf);
  LLVMFuzzerTestOneInput(exact, len);
  free(exact);
  inputs++;
  total_bytes += len;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void run_path(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "regression: %s: %s\n", path, strerror(errno));
    exit(2);
  }
  if (!S_ISDIR(st.st_mode)) {
    run_file(path);
    return;
  }
  DIR *d = opendir(path);
  if (d == NULL) {
    fprintf(stderr, "regression: cannot read %s: %s\n", path, strerror(errno));
    exit(2);
  }
  char **names = NULL;
  size_t count = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (count == cap) {
      cap = cap ? 2 * cap : 64;
      names = realloc(names, cap * sizeof *names);
      FUZZ_ASSERT(names != NULL);
    }
    const size_t len = strlen(path) + strlen(e->d_name) + 2;
    names[count] = malloc(len);
    FUZZ_ASSERT(names[count] != NULL);
    snprintf(names[count], len, "%s/%s", path, e->d_name);
    count++;
  }
  closedir(d);
  qsort(names, count, sizeof *names, by_name);
  for (size_t i = 0; i < count; i++) {
    struct stat fs;
    if (stat(names[i], &fs) == 0 && S_ISREG(fs.st_mode)) run_file(names[i]);
    free(names[i]);
  }
  free(names);
}

int main(int argc, char **argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  int first = 1;
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    setenv("FUZZ_VERBOSE", "1", 1);
    first = 2;
  }
  if (first >= argc) {
    fprintf(stderr, "usage: %s [-v] FILE|DIR...\n", argv[0]);
    return 2;
  }
  for (int i = first; i < argc; i++) run_path(argv[i]);
  if (inputs == 0) {
    fprintf(stderr, "regression: no input found in the given paths\n");
    return 2;
  }
  fprintf(stderr, "replayed %zu inputs (%zu bytes)\n", inputs, total_bytes);
  return 0;
}
