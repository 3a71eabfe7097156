/* select.c: which backend a manager opens. AETHER_DEVICE=auto|host|hip|cuda (auto when unset); auto takes a GPU
 * backend only when its runtime finds a device (HIP first: the specification is an AMD GPU framework), else the
 * host. A backend asked for by name that cannot be used is an error that says why, never a silent fallback. */
#include "backend.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *aether_device_kind_name(int kind) {
  switch (kind) {
    case AETHER_DEVICE_AUTO: return "auto";
    case AETHER_DEVICE_HOST: return "host";
    case AETHER_DEVICE_HIP: return "hip";
    case AETHER_DEVICE_CUDA: return "cuda";
    default: return "unknown";
  }
}

const ae_backend_ops *_ae_backend_get(int kind) {
  switch (kind) {
    case AETHER_DEVICE_HOST: return &_ae_backend_host;
    case AETHER_DEVICE_HIP: return &_ae_backend_hip;
    case AETHER_DEVICE_CUDA: return &_ae_backend_cuda;
    default: return NULL;
  }
}

int aether_device_probe(int kind, aether_device_info *out) {
  AE_RETURN_ERROR_IF(out == NULL, AETHER_ERR_INVALID_ARGUMENT, "aether_device_probe: out is NULL");
  const ae_backend_ops *be = _ae_backend_get(kind);
  AE_RETURN_ERROR_IF(be == NULL, AETHER_ERR_INVALID_ARGUMENT,
                     "aether_device_probe: kind %d is not 1 (host), 2 (hip) or 3 (cuda)", kind);
  return be->probe(out);
}

static int parse_env(int *kind) {
  const char *v = getenv("AETHER_DEVICE");
  if (v == NULL || *v == '\0') {
    *kind = AETHER_DEVICE_AUTO;
    return AETHER_OK;
  }
  for (int k = AETHER_DEVICE_AUTO; k <= AETHER_DEVICE_CUDA; k++)
    if (strcasecmp(v, aether_device_kind_name(k)) == 0) {
      *kind = k;
      return AETHER_OK;
    }
  return _ae_fail(AETHER_ERR_INVALID_ARGUMENT, "AETHER_DEVICE=%s is not one of auto, host, hip, cuda", v);
}

int _ae_backend_select(int requested, int device, const ae_backend_ops **out) {
  int kind = requested;
  if (kind == AETHER_DEVICE_DEFAULT) {
    const int rc = parse_env(&kind);
    if (rc != AETHER_OK) return rc;
  }
  AE_RETURN_ERROR_IF(kind < AETHER_DEVICE_AUTO || kind > AETHER_DEVICE_CUDA, AETHER_ERR_INVALID_ARGUMENT,
                     "backend %d is not -1 (from AETHER_DEVICE), 0 (auto), 1 (host), 2 (hip) or 3 (cuda)", kind);
  if (kind != AETHER_DEVICE_AUTO) {
    aether_device_info info;
    const int rc = _ae_backend_get(kind)->probe(&info);
    if (rc != AETHER_OK) {
      /* Keep the probe's own words: they name the library tried and what to install. */
      return _ae_fail(rc, "backend %s requested but unavailable: %s", aether_device_kind_name(kind), info.message);
    }
    AE_RETURN_ERROR_IF(device < 0 || device >= info.device_count, AETHER_ERR_NO_DEVICE,
                       "backend %s has %d device(s); device %d does not exist", aether_device_kind_name(kind),
                       info.device_count, device);
    *out = _ae_backend_get(kind);
    return AETHER_OK;
  }
  const int order[2] = {AETHER_DEVICE_HIP, AETHER_DEVICE_CUDA};
  for (int i = 0; i < 2; i++) {
    aether_device_info info;
    if (_ae_backend_get(order[i])->probe(&info) == AETHER_OK && device < info.device_count) {
      *out = _ae_backend_get(order[i]);
      return AETHER_OK;
    }
  }
  aether_clear_error(); /* the GPU probes' failures are the expected answer here, not an error */
  AE_RETURN_ERROR_IF(device != 0, AETHER_ERR_NO_DEVICE, "AETHER_DEVICE=auto found no GPU, and the host has only device 0");
  *out = &_ae_backend_host;
  return AETHER_OK;
}
