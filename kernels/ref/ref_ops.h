/*
 * The reference backend's operations on host memory. Plain loops, fp64 accumulation,
 * written to be obviously correct: they are the oracle the optimized backends are tested
 * against. The cpu backend reuses the ones BLAS cannot speed up (memory-bound element-wise
 * work, allocation, conversion).
 */
#ifndef MU_KERNELS_REF_OPS_H
#define MU_KERNELS_REF_OPS_H

#include "kernels/ops.h"

mu_k_alloc_fn mu_ref_alloc;
mu_k_release_fn mu_ref_release;
mu_k_upload_fn mu_ref_upload;
mu_k_download_fn mu_ref_download;
mu_k_copy_fn mu_ref_copy;
mu_k_gemm_fn mu_ref_gemm;
mu_k_syrk_fn mu_ref_syrk;
mu_k_symmetrize_fn mu_ref_symmetrize;
mu_k_axpby_fn mu_ref_axpby;
mu_k_scale_fn mu_ref_scale;
mu_k_add_identity_fn mu_ref_add_identity;
mu_k_set_identity_fn mu_ref_set_identity;
mu_k_fill_fn mu_ref_fill;
mu_k_norm_fn mu_ref_norm_frob;
mu_k_dist_identity_fn mu_ref_dist_identity;
mu_k_count_nonfinite_fn mu_ref_count_nonfinite;
mu_k_synchronize_fn mu_ref_synchronize;
mu_k_momentum_fn mu_ref_momentum;
mu_k_apply_update_fn mu_ref_apply_update;
mu_k_adamw_fn mu_ref_adamw;

/* Lifecycle of a host backend that keeps no state (reference, cpu). */
bool mu_host_backend_can_use(char *why, size_t why_len);
mu_status_t mu_host_backend_init(mu_backend_t *be);
void mu_host_backend_fini(mu_backend_t *be);

/* Converting copy between two host row-major buffers. */
void mu_host_copy_convert(const void *src, mu_dtype_t src_dtype, int64_t src_ld, void *dst,
                          mu_dtype_t dst_dtype, int64_t dst_ld, int64_t rows, int64_t cols);

#endif
