/* runtime.c: what the HIP and CUDA backends share. Both runtimes have the same C shape (xMalloc(void **, size_t),
 * xMemcpy(dst, src, len, kind), an int error code where 0 is success), so one implementation serves both; hip.c
 * and cuda.c only name the library, the symbols and the memcpy kinds. The library is loaded with dlopen on
 * first use and kept for the life of the process (a GPU runtime does not survive dlclose well). */
#include "backend.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int gpu_count_fn(int *);
typedef int gpu_set_fn(int);
typedef int gpu_malloc_fn(void **, size_t);
typedef int gpu_free_fn(void *);
typedef int gpu_memset_fn(void *, int, size_t);
typedef int gpu_memcpy_fn(void *, const void *, size_t, int);
typedef int gpu_sync_fn(void);
typedef const char *gpu_errstr_fn(int);
typedef int gpu_meminfo_fn(size_t *, size_t *);
typedef int gpu_name_fn(char *, int, int);
typedef int gpu_props_fn(void *, int);

struct ae_gpu_runtime {
  const ae_gpu_names *names;
  void *lib;
  char path[192];
  gpu_count_fn *get_device_count;
  gpu_set_fn *set_device;
  gpu_malloc_fn *malloc_;
  gpu_free_fn *free_;
  gpu_memset_fn *memset_;
  gpu_memcpy_fn *memcpy_;
  gpu_sync_fn *synchronize;
  gpu_errstr_fn *error_string; /* optional */
  gpu_meminfo_fn *mem_get_info; /* optional */
  gpu_name_fn *device_name;     /* optional */
  gpu_props_fn *device_props;   /* optional */
};

/* One loaded runtime per backend (HIP, CUDA); a failed load is retried on the next call. */
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static ae_gpu_runtime runtimes[2];
static _Atomic(ae_gpu_runtime *) loaded[2];

typedef struct gpu_state {
  ae_gpu_runtime *rt;
  int device;
} gpu_state;

static int slot_of(const ae_gpu_names *names) { return names->label[0] == 'H' ? 0 : 1; }

static const char *error_text(const ae_gpu_runtime *rt, int code) {
  const char *s = rt->error_string ? rt->error_string(code) : NULL;
  return s ? s : "unknown error";
}

int _ae_gpu_load(const ae_gpu_names *names, ae_gpu_runtime **out) {
  const int slot = slot_of(names);
  ae_gpu_runtime *rt = atomic_load_explicit(&loaded[slot], memory_order_acquire);
  if (rt) {
    *out = rt;
    return AETHER_OK;
  }
  pthread_mutex_lock(&load_lock);
  rt = atomic_load_explicit(&loaded[slot], memory_order_relaxed);
  if (rt) {
    pthread_mutex_unlock(&load_lock);
    *out = rt;
    return AETHER_OK;
  }
  const char *override = getenv(names->env);
  const char *single[2] = {override, NULL};
  const char *const *candidates = (override && *override) ? single : names->libraries;
  void *lib = NULL;
  const char *found = NULL;
  char also[160] = "";
  char why[200] = "";
  for (size_t i = 0; candidates[i] && !lib; i++) {
    lib = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
    if (lib) {
      found = candidates[i];
      break;
    }
    if (why[0] == '\0') {
      const char *e = dlerror();
      snprintf(why, sizeof why, "%s", e ? e : candidates[i]);
    } else {
      const size_t used = strlen(also);
      snprintf(also + used, sizeof also - used, "%s%s", used ? ", " : "", candidates[i]);
    }
  }
  if (!lib) {
    pthread_mutex_unlock(&load_lock);
    return _ae_fail(AETHER_ERR_BACKEND_UNAVAILABLE, "%s runtime not found: %s%s%s%s; %s", names->label, why,
                    also[0] ? " (also tried " : "", also, also[0] ? ")" : "", names->install_hint);
  }
  rt = &runtimes[slot];
  memset(rt, 0, sizeof *rt);
  rt->names = names;
  rt->lib = lib;
  snprintf(rt->path, sizeof rt->path, "%s", found);
  void **fns[10] = {(void **)&rt->get_device_count, (void **)&rt->set_device, (void **)&rt->malloc_,
                    (void **)&rt->free_, (void **)&rt->memset_, (void **)&rt->memcpy_,
                    (void **)&rt->synchronize, (void **)&rt->error_string, (void **)&rt->mem_get_info,
                    (void **)&rt->device_name};
  for (int i = 0; i < 10; i++) {
    if (names->symbols[i] == NULL) continue;
    void *f = dlsym(lib, names->symbols[i]);
    if (f == NULL && i < 7) {
      dlclose(lib);
      pthread_mutex_unlock(&load_lock);
      return _ae_fail(AETHER_ERR_BACKEND_UNAVAILABLE, "%s runtime %s lacks %s: not a usable %s runtime", names->label,
                      found, names->symbols[i], names->label);
    }
    /* dlsym returns data pointers; POSIX guarantees they convert to function pointers. */
    memcpy(fns[i], &f, sizeof f);
  }
  if (names->props_symbol) {
    void *f = dlsym(lib, names->props_symbol);
    memcpy(&rt->device_props, &f, sizeof f);
  }
  atomic_store_explicit(&loaded[slot], rt, memory_order_release);
  pthread_mutex_unlock(&load_lock);
  *out = rt;
  return AETHER_OK;
}

int _ae_gpu_probe(const ae_gpu_names *names, int kind, aether_device_info *info) {
  memset(info, 0, sizeof *info);
  info->kind = kind;
  ae_gpu_runtime *rt;
  int rc = _ae_gpu_load(names, &rt);
  if (rc != AETHER_OK) {
    const char *override = getenv(names->env);
    snprintf(info->library, sizeof info->library, "%s",
             (override && *override) ? override : names->libraries[0]);
    snprintf(info->message, sizeof info->message, "%s", aether_last_error());
    info->status = rc;
    return rc;
  }
  snprintf(info->library, sizeof info->library, "%s", rt->path);
  int count = 0;
  const int e = rt->get_device_count(&count);
  if (e != 0 || count <= 0) {
    rc = e != 0 ? _ae_fail(AETHER_ERR_NO_DEVICE, "%s runtime %s found no device: %s (error %d)", names->label, rt->path,
                           error_text(rt, e), e)
                : _ae_fail(AETHER_ERR_NO_DEVICE, "%s runtime %s reports 0 devices", names->label, rt->path);
    snprintf(info->message, sizeof info->message, "%s", aether_last_error());
    info->status = rc;
    return rc;
  }
  info->device_count = count;
  if (rt->device_name) {
    char name[256] = "";
    if (rt->device_name(name, (int)sizeof name, 0) == 0) snprintf(info->name, sizeof info->name, "%s", name);
  }
  if (info->name[0] == '\0' && rt->device_props) {
    /* The properties struct grows with every runtime release (about 1 KiB today): give it ample room. */
    char *props = calloc(1, 16384);
    if (props && rt->device_props(props, 0) == 0) snprintf(info->name, sizeof info->name, "%.63s", props);
    free(props);
  }
  if (info->name[0] == '\0') snprintf(info->name, sizeof info->name, "%s device 0", names->label);
  if (rt->mem_get_info) {
    size_t free_b = 0, total = 0;
    if (rt->set_device(0) == 0 && rt->mem_get_info(&free_b, &total) == 0) info->total_bytes = total;
  }
  snprintf(info->message, sizeof info->message, "%d %s device(s) through %s", count, names->label, rt->path);
  info->status = AETHER_OK;
  return AETHER_OK;
}

/* Every call names the device first when it is not 0: the runtimes keep the current device per thread. */
#define GPU_ENTER(st)                                                                                     \
  do {                                                                                                    \
    if ((st)->device != 0) {                                                                              \
      const int e_ = (st)->rt->set_device((st)->device);                                                  \
      if (e_ != 0)                                                                                        \
        return _ae_fail(AETHER_ERR_DEVICE, "%s SetDevice(%d) failed: %s (error %d)", (st)->rt->names->label, \
                        (st)->device, error_text((st)->rt, e_), e_);                                      \
    }                                                                                                     \
  } while (0)

static int gpu_error(const gpu_state *st, const char *what, int e) {
  /* Error 2 is out of memory in both runtimes (hipErrorOutOfMemory, cudaErrorMemoryAllocation). */
  return _ae_fail(e == 2 ? AETHER_ERR_OUT_OF_MEMORY : AETHER_ERR_DEVICE, "%s %s failed: %s (error %d)",
                  st->rt->names->label, what, error_text(st->rt, e), e);
}

int _ae_gpu_open(const ae_gpu_names *names, int device, void **state) {
  ae_gpu_runtime *rt;
  int rc = _ae_gpu_load(names, &rt);
  if (rc != AETHER_OK) return rc;
  int count = 0;
  const int e = rt->get_device_count(&count);
  if (e != 0) return _ae_fail(AETHER_ERR_NO_DEVICE, "%s runtime %s found no device: %s (error %d)", names->label,
                              rt->path, error_text(rt, e), e);
  AE_RETURN_ERROR_IF(count <= 0, AETHER_ERR_NO_DEVICE, "%s runtime %s reports 0 devices", names->label, rt->path);
  AE_RETURN_ERROR_IF(device < 0 || device >= count, AETHER_ERR_NO_DEVICE, "%s device %d does not exist (%d found)",
                     names->label, device, count);
  gpu_state *st = calloc(1, sizeof *st);
  AE_RETURN_ERROR_IF(st == NULL, AETHER_ERR_OUT_OF_MEMORY, "%s backend: no memory for its state", names->label);
  st->rt = rt;
  st->device = device;
  const int s = rt->set_device(device);
  if (s != 0) {
    rc = gpu_error(st, "SetDevice", s);
    free(st);
    return rc;
  }
  *state = st;
  return AETHER_OK;
}

void _ae_gpu_close(void *state) { free(state); }

int _ae_gpu_alloc(void *state, uint64_t size, uint32_t flags, uint64_t *addr) {
  (void)flags; /* no guard pages on a device: isolation there is the pools never sharing a slab */
  gpu_state *st = state;
  GPU_ENTER(st);
  void *p = NULL;
  const int e = st->rt->malloc_(&p, (size_t)size);
  if (e != 0) return gpu_error(st, "Malloc", e);
  AE_RETURN_ERROR_IF(p == NULL, AETHER_ERR_OUT_OF_MEMORY, "%s Malloc(%" PRIu64 ") returned NULL", st->rt->names->label,
                     size);
  *addr = (uint64_t)(uintptr_t)p;
  return AETHER_OK;
}

int _ae_gpu_release(void *state, uint64_t addr, uint64_t size, uint32_t flags) {
  (void)size;
  (void)flags;
  gpu_state *st = state;
  GPU_ENTER(st);
  const int e = st->rt->free_((void *)(uintptr_t)addr);
  return e != 0 ? gpu_error(st, "Free", e) : AETHER_OK;
}

int _ae_gpu_memset(void *state, uint64_t addr, int value, uint64_t len) {
  gpu_state *st = state;
  GPU_ENTER(st);
  const int e = st->rt->memset_((void *)(uintptr_t)addr, value, (size_t)len);
  return e != 0 ? gpu_error(st, "Memset", e) : AETHER_OK;
}

int _ae_gpu_to_device(void *state, uint64_t dst, const void *src, uint64_t len) {
  gpu_state *st = state;
  GPU_ENTER(st);
  const int e = st->rt->memcpy_((void *)(uintptr_t)dst, src, (size_t)len, st->rt->names->memcpy_h2d);
  return e != 0 ? gpu_error(st, "Memcpy (host to device)", e) : AETHER_OK;
}

int _ae_gpu_to_host(void *state, void *dst, uint64_t src, uint64_t len) {
  gpu_state *st = state;
  GPU_ENTER(st);
  const int e = st->rt->memcpy_(dst, (const void *)(uintptr_t)src, (size_t)len, st->rt->names->memcpy_d2h);
  return e != 0 ? gpu_error(st, "Memcpy (device to host)", e) : AETHER_OK;
}

/* Memcpy between overlapping device ranges is undefined in both runtimes: when dst < src overlaps, copy front
 * to back in pieces no longer than the distance, so a piece never overwrites source bytes not yet copied. */
int _ae_gpu_copy(void *state, uint64_t dst, uint64_t src, uint64_t len) {
  gpu_state *st = state;
  GPU_ENTER(st);
  if (dst == src || len == 0) return AETHER_OK;
  AE_RETURN_ERROR_IF(dst > src && dst < src + len, AETHER_ERR_UNSUPPORTED,
                     "%s copy: an overlapping move towards higher addresses is not supported", st->rt->names->label);
  const uint64_t step = (dst < src && src - dst < len) ? src - dst : len;
  for (uint64_t off = 0; off < len; off += step) {
    const uint64_t n = len - off < step ? len - off : step;
    const int e = st->rt->memcpy_((void *)(uintptr_t)(dst + off), (const void *)(uintptr_t)(src + off), (size_t)n,
                                  st->rt->names->memcpy_d2d);
    if (e != 0) return gpu_error(st, "Memcpy (device to device)", e);
  }
  return AETHER_OK;
}

int _ae_gpu_sync(void *state) {
  gpu_state *st = state;
  GPU_ENTER(st);
  const int e = st->rt->synchronize();
  return e != 0 ? gpu_error(st, "DeviceSynchronize", e) : AETHER_OK;
}
