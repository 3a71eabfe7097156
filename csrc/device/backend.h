/* backend.h: the contract every device backend implements, one file each behind it: host.c (device memory
 * emulated with mmap), hip.c (libamdhip64.so) and cuda.c (libcudart.so), the last two loaded with dlopen so the
 * library has no build-time dependency on either SDK (runtime.c holds what they share).
 *
 * As in mimalloc's prim.h, every function returns an error code as an int where 0 is success; a failure is a
 * negative aether_status and the calling thread's message (aether_last_error) says what the runtime answered.
 * Device memory is named by a 64-bit device address. The pools above never dereference one: every byte moves
 * through memset / to_device / to_host, so the same pool code runs unchanged on a GPU. */
#ifndef AETHER_DEVICE_BACKEND_H
#define AETHER_DEVICE_BACKEND_H

#include "../internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ae_backend_ops.alloc flags. */
enum {
  AE_BACKEND_GUARD = 1u << 0, /* surround the range with inaccessible pages where the backend can (host) */
};

typedef struct ae_backend_ops {
  const char *name; /* "host", "hip", "cuda" */
  int kind;         /* AETHER_DEVICE_HOST / _HIP / _CUDA */
  /* Fill *info (never NULL). Returns 0 if the backend can be opened, AETHER_ERR_BACKEND_UNAVAILABLE if its
   * runtime library is absent, AETHER_ERR_NO_DEVICE if the runtime finds no device; info->message says which. */
  int (*probe)(aether_device_info *info);
  /* Open device `device` (an index < device_count); *state is what every other call takes. */
  int (*open)(int device, void **state);
  void (*close)(void *state);
  /* size bytes of device memory at *addr (aligned to at least 256), or AETHER_ERR_OUT_OF_MEMORY. Memory from
   * alloc is zero on the host backend (fresh pages); on a GPU its contents are undefined. */
  int (*alloc)(void *state, uint64_t size, uint32_t flags, uint64_t *addr);
  /* Give back a range from alloc (its current size and the same flags). */
  int (*release)(void *state, uint64_t addr, uint64_t size, uint32_t flags);
  /* Optional (NULL if the backend cannot): grow or shrink a range from alloc in place, from old_size to
   * new_size bytes (multiples of 64 KiB). Growing adds zeroed bytes after the old end; shrinking gives the tail
   * back. AETHER_ERR_UNSUPPORTED when the range cannot grow that far where it is. */
  int (*resize)(void *state, uint64_t addr, uint64_t old_size, uint64_t new_size);
  int (*memset)(void *state, uint64_t addr, int value, uint64_t len);
  int (*to_device)(void *state, uint64_t dst, const void *src, uint64_t len);
  int (*to_host)(void *state, void *dst, uint64_t src, uint64_t len);
  /* Device to device, memmove semantics: the ranges may overlap (compaction slides blocks down). */
  int (*copy)(void *state, uint64_t dst, uint64_t src, uint64_t len);
  /* Wait until every operation issued so far has completed. */
  int (*sync)(void *state);
  /* A host pointer through which the range may be touched directly, or NULL when device memory is not host
   * addressable (the GPU backends). Used only for fast paths that have a backend-call equivalent. */
  void *(*host_view)(void *state, uint64_t addr);
} ae_backend_ops;

extern const ae_backend_ops _ae_backend_host;
extern const ae_backend_ops _ae_backend_hip;
extern const ae_backend_ops _ae_backend_cuda;

/* The backend of a concrete kind (HOST, HIP, CUDA), or NULL. */
const ae_backend_ops *_ae_backend_get(int kind);

/* Resolve a requested kind (AETHER_DEVICE_DEFAULT reads AETHER_DEVICE; AUTO picks HIP, then CUDA, when one
 * finds a device, else HOST) to a backend that can be opened. Asking for an absent backend by name is an
 * error (AETHER_ERR_BACKEND_UNAVAILABLE or AETHER_ERR_NO_DEVICE), never a silent fallback to the host. */
int _ae_backend_select(int requested, int device, const ae_backend_ops **out);

/* ---- shared by hip.c and cuda.c: a GPU runtime whose C API has the CUDA shape, loaded with dlopen ---- */
typedef struct ae_gpu_names {
  const char *label;            /* "HIP", "CUDA" */
  const char *env;              /* environment variable naming the library to load instead ("AETHER_HIP_LIB") */
  const char *const *libraries; /* NULL-terminated candidates, tried in order */
  const char *install_hint;     /* what to install when none loads */
  /* Symbol names, in this order: GetDeviceCount, SetDevice, Malloc, Free, Memset, Memcpy,
   * DeviceSynchronize, GetErrorString, MemGetInfo, DeviceGetName (the last two optional). */
  const char *symbols[10];
  /* Optional: xGetDeviceProperties(void *prop, int device), whose struct begins with char name[256] in both
   * runtimes; used for the device name when there is no DeviceGetName. */
  const char *props_symbol;
  int memcpy_h2d, memcpy_d2h, memcpy_d2d; /* the runtime's memcpy kind values */
} ae_gpu_names;

typedef struct ae_gpu_runtime ae_gpu_runtime;
/* Load the runtime (once per process; the answer is cached). Returns 0, or AETHER_ERR_BACKEND_UNAVAILABLE. */
int _ae_gpu_load(const ae_gpu_names *names, ae_gpu_runtime **out);
int _ae_gpu_probe(const ae_gpu_names *names, int kind, aether_device_info *info);
int _ae_gpu_open(const ae_gpu_names *names, int device, void **state);
void _ae_gpu_close(void *state);
int _ae_gpu_alloc(void *state, uint64_t size, uint32_t flags, uint64_t *addr);
int _ae_gpu_release(void *state, uint64_t addr, uint64_t size, uint32_t flags);
int _ae_gpu_memset(void *state, uint64_t addr, int value, uint64_t len);
int _ae_gpu_to_device(void *state, uint64_t dst, const void *src, uint64_t len);
int _ae_gpu_to_host(void *state, void *dst, uint64_t src, uint64_t len);
int _ae_gpu_copy(void *state, uint64_t dst, uint64_t src, uint64_t len);
int _ae_gpu_sync(void *state);

#endif
