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

/* How syrk forms its product (cuda_syrk.cu; MUOND_CUDA_SYRK). */
typedef enum mu_cuda_syrk_mode {
    MU_CUDA_SYRK_AUTO,    /* per call, by dtype and size */
    MU_CUDA_SYRK_CUBLAS,  /* cuBLAS SYRK, then the mirror (bf16: GEMM) */
    MU_CUDA_SYRK_GEMM,    /* the full product by GEMM */
    MU_CUDA_SYRK_BLOCKED, /* the upper block triangle by batched GEMM, then the mirror */
} mu_cuda_syrk_mode_t;

enum {
    MU_CUDA_MAX_BLOCKS = 16, /* block rows of a blocked product */
    MU_CUDA_MAX_BLOCK_PAIRS = MU_CUDA_MAX_BLOCKS * (MU_CUDA_MAX_BLOCKS + 1) / 2,
    MU_CUDA_AUTO_BLOCK = 512,    /* rows per block of the automatic choice */
    MU_CUDA_AUTO_MAX_BLOCKS = 8, /* the most block rows it makes (the largest measured) */
};

typedef struct mu_cuda_state {
    int device;
    char device_name[sizeof(((struct cudaDeviceProp *)0)->name) + 64];
    cudaStream_t compute; /* every kernel and cuBLAS call of this backend, in order */
    cublasHandle_t blas;
    mu_cuda_syrk_mode_t syrk_mode;
    int syrk_blocks;   /* block rows when syrk_mode is MU_CUDA_SYRK_BLOCKED */
    void **block_ptrs; /* device: 3 x MU_CUDA_MAX_BLOCK_PAIRS operand and output pointers */
    void *blas_workspace; /* cuBLAS's, set explicitly so that graph capture never allocates */
    void *staging;        /* device bytes for dtype conversion on upload and download */
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

cublasOperation_t mu_cuda_op(mu_trans_t t);
/* Row-major C = alpha op(A) op(B) + beta C with inner dimension k (cuda_ops.cu). */
mu_status_t mu_cuda_gemm_ex(mu_cuda_state_t *st, mu_trans_t ta, mu_trans_t tb, double alpha,
                            const mu_mat_t *a, const mu_mat_t *b, double beta, mu_mat_t *c,
                            int64_t k);

/* Symmetric products and the mirror (cuda_syrk.cu). configure reads a MUOND_CUDA_SYRK value
 * (NULL: auto) and allocates the pointer arrays. */
mu_status_t mu_cuda_syrk_configure(mu_cuda_state_t *st, const char *spec);
void mu_cuda_syrk_describe(const mu_cuda_state_t *st, char *out, size_t out_len);
mu_k_syrk_fn mu_cuda_syrk;
mu_k_symmetrize_fn mu_cuda_symmetrize;

/* Element-wise work on the compute stream (cuda_elementwise.cu). Operands are validated by
 * kernels/ops.c; bf16 operands compute in fp32. */
mu_status_t mu_cuda_convert(cudaStream_t s, const void *src, mu_dtype_t src_dtype, int64_t src_ld,
                            void *dst, mu_dtype_t dst_dtype, int64_t dst_ld, int64_t rows,
                            int64_t cols);
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
