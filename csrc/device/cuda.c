/* cuda.c: NVIDIA GPUs through the CUDA runtime (libcudart.so), loaded with dlopen: no CUDA toolkit needed to
 * build, and a machine without it gets AETHER_ERR_BACKEND_UNAVAILABLE, one without a GPU (or driver)
 * AETHER_ERR_NO_DEVICE. AETHER_CUDA_LIB names another library to load (a path or a soname). */
#include "backend.h"

static const char *const cuda_libraries[] = {"libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0",
                                             "/usr/local/cuda/lib64/libcudart.so", NULL};

static const ae_gpu_names cuda_names = {
    .label = "CUDA",
    .env = "AETHER_CUDA_LIB",
    .libraries = cuda_libraries,
    .install_hint = "install the CUDA runtime and driver, or use AETHER_DEVICE=host",
    .symbols = {"cudaGetDeviceCount", "cudaSetDevice", "cudaMalloc", "cudaFree", "cudaMemset", "cudaMemcpy",
                "cudaDeviceSynchronize", "cudaGetErrorString", "cudaMemGetInfo", NULL},
    .props_symbol = "cudaGetDeviceProperties",
    .memcpy_h2d = 1, /* cudaMemcpyHostToDevice */
    .memcpy_d2d = 3, /* cudaMemcpyDeviceToDevice */
    .memcpy_d2h = 2, /* cudaMemcpyDeviceToHost */
};

static int cuda_probe(aether_device_info *info) { return _ae_gpu_probe(&cuda_names, AETHER_DEVICE_CUDA, info); }
static int cuda_open(int device, void **state) { return _ae_gpu_open(&cuda_names, device, state); }

const ae_backend_ops _ae_backend_cuda = {
    .name = "cuda",
    .kind = AETHER_DEVICE_CUDA,
    .probe = cuda_probe,
    .open = cuda_open,
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
