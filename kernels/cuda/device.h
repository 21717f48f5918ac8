/* CUDA device discovery, safe on machines without a GPU or driver. */
#ifndef MU_KERNELS_CUDA_DEVICE_H
#define MU_KERNELS_CUDA_DEVICE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable CUDA devices; 0 when there is no driver or device, with the runtime's
 * explanation written into why. */
int mu_cuda_device_count(char *why, size_t why_len);

#ifdef __cplusplus
}
#endif

#endif
