/* report.c: one reporter for every memory error: the diagnostic line, the event ring, the counters, the user
 * hook, and abort-on-error. Errors are rare, so a mutex here costs nothing on the allocation path. */
#include "alloc_internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static int sink_fd = -1;          /* -1: stderr */
static char sink_path[512];
static aether_memory_event ring[AETHER_MEMORY_EVENT_RING];
static uint64_t next_seq = 1;
static _Atomic uint64_t counts[AETHER_MEM_ERROR_KINDS];
static aether_memory_error_fn *_Atomic hook_fn;
static void *_Atomic hook_arg;

static const char *const kind_names[AETHER_MEM_ERROR_KINDS] = {
    "double-free", "invalid-free", "buffer-underflow", "buffer-overflow", "invalid-realloc", "use-after-free",
};

const char *aether_memory_error_kind_name(int kind) {
  return kind >= 0 && kind < AETHER_MEM_ERROR_KINDS ? kind_names[kind] : "unknown";
}

/* write(2), not stdio: no allocation and no buffering, so a report survives the crash that may follow it. */
static void write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n <= 0) return;
    buf += n;
    len -= (size_t)n;
  }
}

static void emit_locked(const char *line, size_t len) {
  char buf[1600];
  if (len > sizeof buf - 1) len = sizeof buf - 1;
  memcpy(buf, line, len);
  buf[len] = '\n';
  write_all(sink_fd >= 0 ? sink_fd : STDERR_FILENO, buf, len + 1);
}

void _ae_log_line(const char *line, size_t len) {
  pthread_mutex_lock(&report_lock);
  emit_locked(line, len);
  pthread_mutex_unlock(&report_lock);
}

aether_status _ae_report_set_log_file(const char *path) {
  AE_RETURN_ERROR_IF(strlen(path) >= sizeof sink_path, AETHER_ERR_OUT_OF_RANGE,
                     "option log_file: path longer than %zu bytes", sizeof sink_path - 1);
  int fd = -1;
  if (path[0] != '\0') {
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    AE_RETURN_ERROR_IF(fd < 0, AETHER_ERR_IO, "option log_file: cannot open '%s' for appending", path);
  }
  pthread_mutex_lock(&report_lock);
  if (sink_fd >= 0) close(sink_fd);
  sink_fd = fd;
  strcpy(sink_path, path);
  pthread_mutex_unlock(&report_lock);
  return AETHER_OK;
}

void _ae_report_get_log_file(char *out, size_t len) {
  pthread_mutex_lock(&report_lock);
  snprintf(out, len, "%s", sink_path);
  pthread_mutex_unlock(&report_lock);
}

/* abort() through a pointer the compiler cannot see through: before a call it knows never returns, ASan inserts
 * a stack unpoisoning that fails in a host it did not start (Bun), whose thread stacks it does not know. */
static void (*volatile abort_on_request)(void) = abort;

void _ae_abort_on_request(void) { abort_on_request(); }

void _ae_report_traced(aether_memory_error_kind kind, const void *addr, uint64_t size, uint64_t detail,
                       uint32_t alloc_trace, uint32_t free_trace, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof line) n = sizeof line - 1;

  atomic_fetch_add_explicit(&counts[kind], 1, memory_order_relaxed);
  aether_memory_event ev = {
      .address = (uint64_t)(uintptr_t)addr,
      .size = size,
      .detail = detail,
      .time_ns = _ae_now_ns(),
      .kind = (uint32_t)kind,
      .thread_id = _ae_thread_id(),
      .alloc_trace = _ae_trace_valid(alloc_trace) ? alloc_trace : 0,
      .free_trace = _ae_trace_valid(free_trace) ? free_trace : 0,
      .where_trace = atomic_load_explicit(&_ae_backtrace_on, memory_order_relaxed) ? _ae_trace_capture(2) : 0,
  };
  pthread_mutex_lock(&report_lock);
  ev.seq = next_seq++;
  ring[(ev.seq - 1) % AETHER_MEMORY_EVENT_RING] = ev;
  if (!AE_OPT(quiet)) emit_locked(line, (size_t)n);
  pthread_mutex_unlock(&report_lock);

  aether_memory_error_fn *fn = atomic_load_explicit(&hook_fn, memory_order_acquire);
  if (fn != NULL) fn(&ev, atomic_load_explicit(&hook_arg, memory_order_relaxed));
  if (AE_OPT(abort_on_error)) abort_on_request();
}

uint64_t _ae_error_count(int kind) { return atomic_load_explicit(&counts[kind], memory_order_relaxed); }

size_t aether_memory_errors(uint64_t after_seq, aether_memory_event *out, size_t max) {
  if (out == NULL || max == 0) return 0;
  size_t copied = 0;
  pthread_mutex_lock(&report_lock);
  uint64_t first = next_seq > AETHER_MEMORY_EVENT_RING ? next_seq - AETHER_MEMORY_EVENT_RING : 1;
  if (after_seq + 1 > first) first = after_seq + 1;
  for (uint64_t s = first; s < next_seq && copied < max; s++) out[copied++] = ring[(s - 1) % AETHER_MEMORY_EVENT_RING];
  pthread_mutex_unlock(&report_lock);
  return copied;
}

void aether_memory_set_error_handler(aether_memory_error_fn *fn, void *arg) {
  atomic_store_explicit(&hook_arg, arg, memory_order_relaxed);
  atomic_store_explicit(&hook_fn, fn, memory_order_release);
}

void _ae_report_atfork_prepare(void) { pthread_mutex_lock(&report_lock); }
void _ae_report_atfork_parent(void) { pthread_mutex_unlock(&report_lock); }
void _ae_report_atfork_child(void) { pthread_mutex_unlock(&report_lock); }
