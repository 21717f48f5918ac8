#include "kernels/cuda/device.h"

#include "core/knobs.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
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
    const char *forced = mu_knob(MU_KNOB_CUDA_DEVICE);
    const int device = forced ? std::atoi(forced) : local_rank % count;
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

extern "C" int mu_cuda_current_bus_id(char *bus_id, size_t len)
{
    int device = -1;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetPCIBusId(bus_id, (int)len, device) != cudaSuccess)
        return -1;
    return 0;
}

static_assert(sizeof(cudaIpcMemHandle_t) == 64, "the protocol carries 64-byte IPC handles");

extern "C" int mu_cuda_ipc_export(void *base, unsigned char handle[64], char *bus_id,
                                  size_t bus_id_len, char *why, size_t why_len)
{
    cudaIpcMemHandle_t h;
    cudaError_t err = cudaIpcGetMemHandle(&h, base);
    int device = -1;
    if (err == cudaSuccess)
        err = cudaGetDevice(&device);
    if (err == cudaSuccess)
        err = cudaDeviceGetPCIBusId(bus_id, (int)bus_id_len, device);
    if (err != cudaSuccess) {
        std::snprintf(why, why_len, "exporting the trainer region by CUDA IPC: %s (%d)",
                      cudaGetErrorString(err), (int)err);
        return -1;
    }
    std::memcpy(handle, &h, sizeof h);
    return 0;
}
