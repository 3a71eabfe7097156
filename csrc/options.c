/* options.c: the safe allocator's options, one table: name, environment variable, default, help. */
#include "alloc_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ae_options _ae_opt = {
    .quarantine_bytes = 256 << 10,
    .abort_on_error = 0,
    .quiet = 0,
    .redzone = 8,
    .leak_report_max = 16,
};
size_t _ae_front_guard = 8;
size_t _ae_back_guard = 8;

typedef enum { OPT_SIZE, OPT_BOOL, OPT_PATH } opt_type;
typedef struct {
  const char *name;
  const char *env;
  opt_type type;
  size_t min, max; /* for OPT_SIZE */
  const char *help;
} opt_def;

static const opt_def option_table[] = {
    {"quarantine_bytes", "AETHER_QUARANTINE_BYTES", OPT_SIZE, 0, (size_t)1 << 40,
     "freed bytes each thread holds back before reuse (0 disables the quarantine)"},
    {"abort_on_error", "AETHER_ABORT_ON_ERROR", OPT_BOOL, 0, 1, "abort() after reporting a memory error"},
    {"log_file", "AETHER_LOG_FILE", OPT_PATH, 0, 0, "append diagnostics to this file instead of stderr"},
    {"redzone", "AETHER_REDZONE", OPT_SIZE, 8, 4096, "guard bytes on each side of a block"},
    {"leak_report_max", "AETHER_LEAK_REPORT_MAX", OPT_SIZE, 0, 1 << 20, "leaks listed by aether_check_leaks"},
    {"quiet", "AETHER_QUIET", OPT_BOOL, 0, 1, "record errors without printing them"},
    {"backtrace", "AETHER_BACKTRACE", OPT_BOOL, 0, 1, "record the call stack of every allocation and free"},
};

static const opt_def *find_option(const char *name) {
  for (size_t i = 0; i < sizeof option_table / sizeof option_table[0]; i++)
    if (strcmp(option_table[i].name, name) == 0) return &option_table[i];
  return NULL;
}

/* Sizes accept a plain number or a k/m/g suffix (powers of 1024). */
static int parse_size(const char *s, size_t *out) {
  if (s == NULL || *s == '\0' || *s == '-') return -1;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || end == s) return -1;
  unsigned shift = 0;
  if (*end != '\0') {
    switch (tolower((unsigned char)*end)) {
      case 'k': shift = 10; break;
      case 'm': shift = 20; break;
      case 'g': shift = 30; break;
      default: return -1;
    }
    end++;
    if (*end == 'b' || *end == 'B') end++;
    if (*end != '\0') return -1;
  }
  if (shift && v > (~0ull >> shift)) return -1;
  *out = (size_t)(v << shift);
  return 0;
}

static int parse_bool(const char *s, int *out) {
  if (strcmp(s, "1") == 0 || strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0) {
    *out = 1;
    return 0;
  }
  if (strcmp(s, "0") == 0 || strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "off") == 0 ||
      *s == '\0') {
    *out = 0;
    return 0;
  }
  return -1;
}

static void derive_guards(void) {
  const size_t back = AE_ALIGN_UP(_ae_opt.redzone, 8);
  size_t front = back;
  if ((sizeof(ae_header) + front) % 16 != 0) front += 8;
  _ae_front_guard = front;
  _ae_back_guard = back;
}

static aether_status apply(const opt_def *d, const char *value, bool from_env) {
  if (d->type == OPT_SIZE) {
    size_t v;
    AE_RETURN_ERROR_IF(parse_size(value, &v) != 0, AETHER_ERR_INVALID_ARGUMENT,
                       "option %s: '%s' is not a byte count (digits with an optional k, m or g)", d->name, value);
    AE_RETURN_ERROR_IF(v < d->min || v > d->max, AETHER_ERR_OUT_OF_RANGE, "option %s: %zu is outside [%zu, %zu]",
                       d->name, v, d->min, d->max);
    if (strcmp(d->name, "quarantine_bytes") == 0) {
      atomic_store_explicit(&_ae_opt.quarantine_bytes, v, memory_order_relaxed);
    } else if (strcmp(d->name, "redzone") == 0) {
      /* Blocks already handed out carry the old guard sizes, so the redzone is fixed at first use. */
      AE_RETURN_ERROR_IF(!from_env && atomic_load_explicit(&_ae_heap_used, memory_order_acquire), AETHER_ERR_BUSY,
                         "option redzone: can only be set before the first allocation (use AETHER_REDZONE)");
      _ae_opt.redzone = v;
      derive_guards();
    } else {
      atomic_store_explicit(&_ae_opt.leak_report_max, v, memory_order_relaxed);
    }
  } else if (d->type == OPT_BOOL) {
    int b;
    AE_RETURN_ERROR_IF(parse_bool(value, &b) != 0, AETHER_ERR_INVALID_ARGUMENT,
                       "option %s: '%s' is not a boolean (1/0, true/false, yes/no, on/off)", d->name, value);
    _Atomic int *target = strcmp(d->name, "abort_on_error") == 0 ? &_ae_opt.abort_on_error
                          : strcmp(d->name, "quiet") == 0          ? &_ae_opt.quiet
                                                                   : &_ae_backtrace_on;
    atomic_store_explicit(target, b, memory_order_relaxed);
  } else {
    return _ae_report_set_log_file(value);
  }
  return AETHER_OK;
}

void _ae_options_load_env(void) {
  for (size_t i = 0; i < sizeof option_table / sizeof option_table[0]; i++) {
    const char *v = getenv(option_table[i].env);
    if (v == NULL) continue;
    if (apply(&option_table[i], v, true) != AETHER_OK) {
      /* A bad environment value must not stop the program: say so once and keep the default. */
      char line[480];
      int n = snprintf(line, sizeof line, "AETHER MEMORY: ignoring %s=%s: %s", option_table[i].env, v,
                       aether_last_error());
      if (n > 0) _ae_log_line(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    }
  }
}

aether_status aether_memory_set_option(const char *name, const char *value) {
  AE_RETURN_ERROR_IF(name == NULL || value == NULL, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_memory_set_option: name and value must not be NULL");
  const opt_def *d = find_option(name);
  AE_RETURN_ERROR_IF(d == NULL, AETHER_ERR_INVALID_ARGUMENT,
                     "unknown option '%s' (quarantine_bytes, abort_on_error, log_file, redzone, leak_report_max, quiet, backtrace)",
                     name);
  _ae_init_fast();
  return apply(d, value, false);
}

int aether_memory_get_option(const char *name, char *out, size_t len) {
  AE_RETURN_ERROR_IF(name == NULL || out == NULL || len == 0, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_memory_get_option: name and out must not be NULL, len not 0");
  const opt_def *d = find_option(name);
  AE_RETURN_ERROR_IF(d == NULL, AETHER_ERR_INVALID_ARGUMENT, "unknown option '%s'", name);
  _ae_init_fast();
  int n;
  char path[512];
  if (strcmp(name, "quarantine_bytes") == 0) n = snprintf(out, len, "%zu", AE_OPT(quarantine_bytes));
  else if (strcmp(name, "redzone") == 0) n = snprintf(out, len, "%zu", _ae_opt.redzone);
  else if (strcmp(name, "leak_report_max") == 0) n = snprintf(out, len, "%zu", AE_OPT(leak_report_max));
  else if (strcmp(name, "abort_on_error") == 0) n = snprintf(out, len, "%d", AE_OPT(abort_on_error));
  else if (strcmp(name, "quiet") == 0) n = snprintf(out, len, "%d", AE_OPT(quiet));
  else if (strcmp(name, "backtrace") == 0) n = snprintf(out, len, "%d", atomic_load(&_ae_backtrace_on));
  else {
    _ae_report_get_log_file(path, sizeof path);
    n = snprintf(out, len, "%s", path);
  }
  AE_RETURN_ERROR_IF(n < 0 || (size_t)n >= len, AETHER_ERR_OUT_OF_RANGE, "option %s: value does not fit in %zu bytes",
                     name, len);
  return n;
}
