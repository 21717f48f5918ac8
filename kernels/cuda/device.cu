#include "kernels/cuda/device.h"

#include <cstdio>
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
