/* report.c (preload): the JSON report a process writes at exit under `aether run`.
 *
 * One file per process, <AETHER_RUN_REPORT_DIR>/aether-report-<pid>.json, so a program that forks or execs
 * children (make, git, a shell script) yields one report each. Written with write(2) from a fixed buffer: the
 * process is exiting and the allocator is the one being reported on. Stack frames are written as addresses with
 * their module and offset (dladdr); `aether run` turns them into function and file:line with addr2line. */
#include "../alloc_internal.h"
#include "preload.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct writer {
  int fd;
  size_t n;
  char buf[1 << 16];
} writer;

static void flush(writer *w) {
  size_t off = 0;
  while (off < w->n) {
    ssize_t k = write(w->fd, w->buf + off, w->n - off);
    if (k <= 0) break;
    off += (size_t)k;
  }
  w->n = 0;
}

static void put(writer *w, const char *s, size_t len) {
  while (len > 0) {
    if (w->n == sizeof w->buf) flush(w);
    size_t k = sizeof w->buf - w->n < len ? sizeof w->buf - w->n : len;
    memcpy(w->buf + w->n, s, k);
    w->n += k;
    s += k;
    len -= k;
  }
}

static void puts_(writer *w, const char *s) { put(w, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void printf_(writer *w, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (k > 0) put(w, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

static void json_string(writer *w, const char *s, size_t len) {
  put(w, "\"", 1);
  for (size_t i = 0; i < len; i++) {
    const unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      put(w, "\\", 1);
      put(w, (const char *)&c, 1);
    } else if (c < 0x20 || c >= 0x7f) {
      printf_(w, "\\u%04x", c); /* bytes outside ASCII are escaped one by one: exact, if not pretty */
    } else {
      put(w, (const char *)&c, 1);
    }
  }
  put(w, "\"", 1);
}

static void frames(writer *w, uint32_t id) {
  uint64_t f[32];
  const size_t n = aether_memory_trace(id, f, 32);
  puts_(w, "[");
  for (size_t i = 0; i < n && i < 32; i++) {
    Dl_info info;
    memset(&info, 0, sizeof info);
    printf_(w, "%s{\"addr\":\"0x%" PRIx64 "\"", i ? "," : "", f[i]);
    if (dladdr((void *)(uintptr_t)f[i], &info) != 0 && info.dli_fname != NULL) {
      puts_(w, ",\"module\":");
      json_string(w, info.dli_fname, strlen(info.dli_fname));
      printf_(w, ",\"base\":\"0x%" PRIxPTR "\"", (uintptr_t)info.dli_fbase);
      if (info.dli_sname != NULL) {
        puts_(w, ",\"symbol\":");
        json_string(w, info.dli_sname, strlen(info.dli_sname));
        printf_(w, ",\"symbolOffset\":%" PRIuPTR, (uintptr_t)f[i] - (uintptr_t)info.dli_saddr);
      }
    }
    puts_(w, "}");
  }
  puts_(w, "]");
}

/* /proc/self/cmdline: NUL-separated arguments. */
static void argv_json(writer *w) {
  char buf[8192];
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
  if (fd >= 0) close(fd);
  puts_(w, "[");
  size_t start = 0;
  for (ssize_t i = 0; i < n; i++) {
    if (buf[i] != '\0') continue;
    if (start > 0) puts_(w, ",");
    json_string(w, buf + start, (size_t)i - start);
    start = (size_t)i + 1;
  }
  puts_(w, "]");
}

void _ae_preload_write_report(void) {
  const char *dir = getenv("AETHER_RUN_REPORT_DIR");
  if (dir == NULL || *dir == '\0') return;
  char path[4096];
  snprintf(path, sizeof path, "%s/aether-report-%d.json", dir, (int)getpid());
  writer *w = mmap(NULL, sizeof(writer), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (w == MAP_FAILED) return;
  w->n = 0;
  w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (w->fd < 0) {
    munmap(w, sizeof(writer));
    return;
  }

  aether_memory_stats st;
  aether_memory_get_stats(&st);
  char exe[4096];
  ssize_t elen = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (elen < 0) elen = 0;

  printf_(w, "{\"pid\":%d,\"ppid\":%d,\"exe\":", (int)getpid(), (int)getppid());
  json_string(w, exe, (size_t)elen);
  puts_(w, ",\"argv\":");
  argv_json(w);
  printf_(w,
          ",\"stats\":{\"totalAllocs\":%" PRIu64 ",\"totalFrees\":%" PRIu64 ",\"totalBytes\":%" PRIu64
          ",\"peakBytes\":%" PRIu64 ",\"liveCount\":%" PRIu64 ",\"liveBytes\":%" PRIu64 ",\"reservedBytes\":%" PRIu64 "}",
          st.total_allocs, st.total_frees, st.total_bytes, st.peak_bytes, st.live_count, st.live_bytes,
          st.reserved_bytes);
  puts_(w, ",\"errors\":{");
  for (int k = 0; k < AETHER_MEM_ERROR_KINDS; k++)
    printf_(w, "%s\"%s\":%" PRIu64, k ? "," : "", aether_memory_error_kind_name(k), st.errors[k]);
  puts_(w, "}");

  static aether_memory_event events[AETHER_MEMORY_EVENT_RING];
  const size_t ne = aether_memory_errors(0, events, AETHER_MEMORY_EVENT_RING);
  puts_(w, ",\"events\":[");
  for (size_t i = 0; i < ne; i++) {
    const aether_memory_event *e = &events[i];
    printf_(w,
            "%s{\"seq\":%" PRIu64 ",\"kind\":\"%s\",\"address\":\"0x%" PRIx64 "\",\"size\":%" PRIu64
            ",\"detail\":%" PRIu64 ",\"thread\":%u",
            i ? "," : "", e->seq, aether_memory_error_kind_name((int)e->kind), e->address, e->size, e->detail,
            e->thread_id);
    puts_(w, ",\"allocStack\":");
    frames(w, e->alloc_trace);
    puts_(w, ",\"freeStack\":");
    frames(w, e->free_trace);
    puts_(w, ",\"whereStack\":");
    frames(w, e->where_trace);
    puts_(w, "}");
  }
  puts_(w, "]");

  /* The largest live blocks, with their allocation stacks. */
  const char *max_env = getenv("AETHER_RUN_LEAKS_MAX");
  size_t max = max_env ? strtoul(max_env, NULL, 10) : 20;
  if (max > 100000) max = 100000;
  const size_t blen = AE_ALIGN_UP((max + 1) * sizeof(aether_memory_block), 4096);
  aether_memory_block *blocks = mmap(NULL, blen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  size_t live = 0;
  if (blocks != MAP_FAILED) live = aether_memory_live_blocks(blocks, max);
  printf_(w, ",\"leaks\":{\"count\":%zu,\"bytes\":%" PRIu64 ",\"largest\":[", live, st.live_bytes);
  for (size_t i = 0; blocks != MAP_FAILED && i < live && i < max; i++) {
    printf_(w, "%s{\"address\":\"0x%" PRIx64 "\",\"size\":%" PRIu64 ",\"allocStack\":", i ? "," : "",
            blocks[i].address, blocks[i].size);
    frames(w, blocks[i].alloc_trace);
    puts_(w, "}");
  }
  puts_(w, "]}}\n");
  if (blocks != MAP_FAILED) munmap(blocks, blen);
  flush(w);
  close(w->fd);
  munmap(w, sizeof(writer));
}
