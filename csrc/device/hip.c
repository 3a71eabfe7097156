/* hip.c: AMD GPUs through the HIP runtime (libamdhip64.so), loaded with dlopen: no ROCm needed to build, and a
 * machine without it gets AETHER_ERR_BACKEND_UNAVAILABLE, one without a GPU AETHER_ERR_NO_DEVICE.
 * AETHER_HIP_LIB names another library to load (a path or a soname). */
#include "backend.h"

static const char *const hip_libraries[] = {"libamdhip64.so", "libamdhip64.so.6", "libamdhip64.so.5",
                                            "/opt/rocm/lib/libamdhip64.so", NULL};

static const ae_gpu_names hip_names = {
    .label = "HIP",
    .env = "AETHER_HIP_LIB",
    .libraries = hip_libraries,
    .install_hint = "install ROCm, or use AETHER_DEVICE=host",
    .symbols = {"hipGetDeviceCount", "hipSetDevice", "hipMalloc", "hipFree", "hipMemset", "hipMemcpy",
                "hipDeviceSynchronize", "hipGetErrorString", "hipMemGetInfo", "hipDeviceGetName"},
    .props_symbol = NULL,
    .memcpy_h2d = 1, /* hipMemcpyHostToDevice */
    .memcpy_d2d = 3, /* hipMemcpyDeviceToDevice */
    .memcpy_d2h = 2, /* hipMemcpyDeviceToHost */
};

static int hip_probe(aether_device_info *info) { return _ae_gpu_probe(&hip_names, AETHER_DEVICE_HIP, info); }
static int hip_open(int device, void **state) { return _ae_gpu_open(&hip_names, device, state); }

const ae_backend_ops _ae_backend_hip = {
    .name = "hip",
    .kind = AETHER_DEVICE_HIP,
    .probe = hip_probe,
    .open = hip_open,
    .close = _ae_gpu_close,
    .alloc = _ae_gpu_alloc,
    .release = _ae_gpu_release,
    .memset = _ae_gpu_memset,
    .to_device = _ae_gpu_to_device,
    .to_host = _ae_gpu_to_host,
    .copy = _ae_gpu_copy,
    .sync = _ae_gpu_sync,
    .host_view = NULL,
};
