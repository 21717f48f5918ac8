#include "kernels/cuda/device.h"

#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>

extern "C" int mu_cuda_device_count(char *why, size_t why_len)
{
    /* Without a driver, cudaGetDeviceCount fails (cudaErrorInsufficientDriver) and leaves
     * the count untouched, so it must start at 0. */
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        std::snprintf(why, why_len, "cudaGetDeviceCount: %s (%d)", cudaGetErrorString(err),
                      (int)err);
        return 0;
    }
    if (count == 0)
        std::snprintf(why, why_len, "the CUDA runtime reports no devices");
    return count;
}

extern "C" int mu_cuda_select_device(int local_rank, char *why, size_t why_len)
{
    const int count = mu_cuda_device_count(why, why_len);
    if (count <= 0)
        return -1;
    const char *forced = std::getenv("MUOND_CUDA_DEVICE");
    const int device = forced && *forced ? std::atoi(forced) : local_rank % count;
    if (device < 0 || device >= count) {
        std::snprintf(why, why_len, "MUOND_CUDA_DEVICE=%s: this node has devices 0..%d", forced,
                      count - 1);
        return -1;
    }
    const cudaError_t err = cudaSetDevice(device);
    if (err != cudaSuccess) {
        std::snprintf(why, why_len, "cudaSetDevice(%d): %s", device, cudaGetErrorString(err));
        return -1;
    }
    return device;
}
