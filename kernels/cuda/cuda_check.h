/*
 * The CUDA and cuBLAS adapters of muond's error convention (core/status.h): a failing call
 * records "what: the library's own explanation (code)" and returns MU_ERR_CUDA or
 * MU_ERR_CUBLAS from the enclosing function, with a trail frame like MU_CHECK.
 */
#ifndef MU_KERNELS_CUDA_CHECK_H
#define MU_KERNELS_CUDA_CHECK_H

#include <cublas_api.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "core/status.h"

mu_status_t mu_cuda_error(cudaError_t err, const char *what);
mu_status_t mu_cublas_error(cublasStatus_t err, const char *what);

#ifdef __cplusplus
}
#endif

#define MU_CUDA_CHECK(call)                                                                        \
    do {                                                                                           \
        const cudaError_t mu_cuda_err_ = (call);                                                   \
        if (mu_cuda_err_ != cudaSuccess) {                                                         \
            mu_cuda_error(mu_cuda_err_, #call);                                                    \
            mu_error_trace(__FILE__, __LINE__, #call, MU_ERR_CUDA);                                \
            return MU_ERR_CUDA;                                                                    \
        }                                                                                          \
    } while (0)

#define MU_CUBLAS_CHECK(call)                                                                      \
    do {                                                                                           \
        const cublasStatus_t mu_cublas_err_ = (call);                                              \
        if (mu_cublas_err_ != CUBLAS_STATUS_SUCCESS) {                                             \
            mu_cublas_error(mu_cublas_err_, #call);                                                \
            mu_error_trace(__FILE__, __LINE__, #call, MU_ERR_CUBLAS);                              \
            return MU_ERR_CUBLAS;                                                                  \
        }                                                                                          \
    } while (0)

#endif
