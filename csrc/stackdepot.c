/* stackdepot.c: the stack depot behind AETHER_BACKTRACE. Each allocation and free records its call stack; equal
 * stacks are stored once and named by a 32-bit id kept in the block header, so a report can show where a block
 * was allocated and freed. Capturing a stack costs microseconds (DWARF unwinding through libgcc), which is why
 * it is an option. */
#include "alloc_internal.h"

#include <execinfo.h>
#include <string.h>
#include <sys/mman.h>

#define TRACE_DEPTH 24
#define TRACE_SLOTS (1u << 16) /* distinct stacks kept; beyond that new stacks get id 0 */

typedef struct trace_entry {
  uint64_t hash; /* 0: empty */
  uint32_t depth;
  uint32_t pad;
  uint64_t frames[TRACE_DEPTH];
} trace_entry;

_Atomic int _ae_backtrace_on;
static trace_entry *table;
static uint32_t used;
static pthread_mutex_t depot_lock = PTHREAD_MUTEX_INITIALIZER;
/* backtrace() may allocate (libgcc_s is loaded on first use): a nested allocation records no stack. */
static __thread int in_capture __attribute__((tls_model("initial-exec")));

static uint64_t hash_frames(const uint64_t *f, uint32_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
  for (uint32_t i = 0; i < n; i++) {
    h ^= f[i];
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
  }
  return h | 1;
}

uint32_t _ae_trace_capture(int skip) {
  if (in_capture) return 0;
  in_capture = 1;
  void *buf[TRACE_DEPTH + 8];
  int n = backtrace(buf, TRACE_DEPTH + skip);
  uint32_t id = 0;
  if (n > skip) {
    uint64_t frames[TRACE_DEPTH];
    const uint32_t depth = (uint32_t)(n - skip);
    for (uint32_t i = 0; i < depth; i++) frames[i] = (uint64_t)(uintptr_t)buf[skip + i];
    const uint64_t h = hash_frames(frames, depth);
    pthread_mutex_lock(&depot_lock);
    if (table == NULL) {
      void *t = mmap(NULL, TRACE_SLOTS * sizeof(trace_entry), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      table = t == MAP_FAILED ? NULL : t;
    }
    if (table != NULL) {
      for (uint32_t i = (uint32_t)h & (TRACE_SLOTS - 1), probes = 0; probes < TRACE_SLOTS;
           i = (i + 1) & (TRACE_SLOTS - 1), probes++) {
        trace_entry *e = &table[i];
        if (e->hash == h && e->depth == depth && memcmp(e->frames, frames, depth * sizeof(uint64_t)) == 0) {
          id = i + 1;
          break;
        }
        if (e->hash == 0) {
          if (used + 1 >= TRACE_SLOTS * 3 / 4) break; /* keep probes short: the depot is full */
          e->hash = h;
          e->depth = depth;
          memcpy(e->frames, frames, depth * sizeof(uint64_t));
          used++;
          id = i + 1;
          break;
        }
      }
    }
    pthread_mutex_unlock(&depot_lock);
  }
  in_capture = 0;
  return id;
}

size_t aether_memory_trace(uint32_t id, uint64_t *frames, size_t max) {
  if (id == 0 || id > TRACE_SLOTS || frames == NULL) return 0;
  size_t n = 0;
  pthread_mutex_lock(&depot_lock);
  if (table != NULL && table[id - 1].hash != 0) {
    n = table[id - 1].depth;
    memcpy(frames, table[id - 1].frames, (n < max ? n : max) * sizeof(uint64_t));
  }
  pthread_mutex_unlock(&depot_lock);
  return n;
}

bool _ae_trace_valid(uint32_t id) { return id != 0 && id <= TRACE_SLOTS; }

void _ae_trace_atfork_prepare(void) { pthread_mutex_lock(&depot_lock); }
void _ae_trace_atfork_parent(void) { pthread_mutex_unlock(&depot_lock); }
void _ae_trace_atfork_child(void) { pthread_mutex_unlock(&depot_lock); }
