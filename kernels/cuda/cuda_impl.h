/* Private to kernels/cuda/: the backend's state and the element-wise kernels' launchers. */
#ifndef MU_KERNELS_CUDA_IMPL_H
#define MU_KERNELS_CUDA_IMPL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_check.h"
#ifdef __cplusplus
extern "C" {
#endif
#include "kernels/backend_impl.h"
#ifdef __cplusplus
}
#endif

typedef struct mu_cuda_state {
    int device;
    char device_name[sizeof(((cudaDeviceProp *)0)->name) + 64];
    cudaStream_t compute; /* every kernel and cuBLAS call of this backend, in order */
    cublasHandle_t blas;
    bool syrk_as_gemm; /* MUOND_CUDA_SYRK=gemm: full GEMM instead of cuBLAS SYRK */
    void *staging;     /* device bytes for dtype conversion on upload and download */
    size_t staging_bytes;
    double *reduce;      /* device: one double (sum) and one long long (count) */
    double *reduce_host; /* pinned mirror of reduce */
} mu_cuda_state_t;

static inline mu_cuda_state_t *mu_cuda_state(const mu_backend_t *be)
{
    return (mu_cuda_state_t *)be->state;
}

#ifdef __cplusplus
extern "C" {
#endif

/* Element-wise work on the compute stream (cuda_elementwise.cu). Operands are validated by
 * kernels/ops.c; bf16 operands compute in fp32. */
mu_status_t mu_cuda_convert(cudaStream_t s, const void *src, mu_dtype_t src_dtype, int64_t src_ld,
                            void *dst, mu_dtype_t dst_dtype, int64_t dst_ld, int64_t rows,
                            int64_t cols);
mu_k_symmetrize_fn mu_cuda_symmetrize;
mu_k_axpby_fn mu_cuda_axpby;
mu_k_scale_fn mu_cuda_scale;
mu_k_add_identity_fn mu_cuda_add_identity;
mu_k_set_identity_fn mu_cuda_set_identity;
mu_k_fill_fn mu_cuda_fill;
mu_k_norm_fn mu_cuda_norm_frob;
mu_k_dist_identity_fn mu_cuda_dist_identity;
mu_k_count_nonfinite_fn mu_cuda_count_nonfinite;
mu_k_momentum_fn mu_cuda_momentum;
mu_k_apply_update_fn mu_cuda_apply_update;
mu_k_adamw_fn mu_cuda_adamw;

#ifdef __cplusplus
}
#endif

#endif
