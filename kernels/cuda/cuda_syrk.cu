/*
 * Symmetric products on the cuda backend: C = alpha op(X) op(X)^T + beta C, returned
 * symmetric in full (kernels/ops.h), and the tiled mirror that symmetrize shares.
 *
 * Three ways to form the product, chosen per call (MUOND_CUDA_SYRK overrides, for benchmarks):
 *  - cuBLAS SYRK (fp32, fp64): half the flops, then the mirror;
 *  - a full GEMM: twice the flops, no mirror, and the only cuBLAS route for bf16;
 *  - blocked: the upper block triangle of an nb x nb block grid as one batched GEMM
 *    ((nb + 1) / 2nb of the flops), a GEMM for the column strip that nb does not divide, then
 *    the mirror. It lets bf16 exploit symmetry at sizes where the batch fills the GPU.
 * Row-major C (n x n) is the column-major C^T, so row-major upper is column-major lower.
 */
#include <stdio.h>
#include <string.h>

#include "kernels/cuda/cuda_impl.h"

namespace
{

constexpr int TILE = 32, TILE_ROWS = 8;

/* Lower := upper for the 32 x 32 tile (bi, bj), bi >= bj, through shared memory so that both
 * the reads of the source tile (bj, bi) and the writes are coalesced. */
template <typename T> __global__ void mirror_kernel(T *c, int64_t n, int64_t ld)
{
    __shared__ T tile[TILE][TILE + 1];
    const int64_t bi = blockIdx.y, bj = blockIdx.x;
    if (bj > bi)
        return;
    const int tx = threadIdx.x;
    for (int r = threadIdx.y; r < TILE; r += TILE_ROWS) {
        const int64_t row = bj * TILE + r, col = bi * TILE + tx;
        if (row < n && col < n)
            tile[r][tx] = c[row * ld + col];
    }
    __syncthreads();
    for (int r = threadIdx.y; r < TILE; r += TILE_ROWS) {
        const int64_t row = bi * TILE + r, col = bj * TILE + tx;
        if (row < n && col < row)
            c[row * ld + col] = tile[tx][r];
    }
}

template <typename T> mu_status_t mirror(cudaStream_t s, void *c, int64_t n, int64_t ld)
{
    const unsigned tiles = (unsigned)((n + TILE - 1) / TILE);
    mirror_kernel<T><<<dim3(tiles, tiles), dim3(TILE, TILE_ROWS), 0, s>>>((T *)c, n, ld);
    MU_CUDA_CHECK(cudaGetLastError());
    return MU_OK;
}

mu_status_t mirror_upper(cudaStream_t s, mu_mat_t *c)
{
    if (c->rows == 0)
        return MU_OK;
    switch (c->dtype) {
    case MU_DTYPE_F32:
        return mirror<float>(s, c->data, c->rows, c->ld);
    case MU_DTYPE_F64:
        return mirror<double>(s, c->data, c->rows, c->ld);
    case MU_DTYPE_BF16:
        return mirror<unsigned short>(s, c->data, c->rows, c->ld); /* a copy: bits suffice */
    }
    return mu_error(MU_ERR_INVALID, "cuda: unknown dtype %d", (int)c->dtype);
}

/* The operand and output pointers of the upper blocks (i <= j), one thread per block, on the
 * stream: computed on the device so that no host buffer has to outlive the call. */
__global__ void upper_block_pointers(const char *x, int64_t x_step, char *c, int64_t c_row_step,
                                     int64_t c_col_step, int nb, const void **left,
                                     const void **right, void **out)
{
    int rest = threadIdx.x, i = 0;
    if (rest >= nb * (nb + 1) / 2)
        return;
    while (rest >= nb - i)
        rest -= nb - i++;
    const int j = i + rest;
    left[threadIdx.x] = x + i * x_step;
    right[threadIdx.x] = x + j * x_step;
    out[threadIdx.x] = c + i * c_row_step + j * c_col_step;
}

/* The cuBLAS types of one storage dtype: bf16 and fp32 accumulate in fp32, fp64 in fp64. */
struct BlasTypes {
    cudaDataType_t data;
    cublasComputeType_t compute;
};

BlasTypes blas_types(mu_dtype_t dt)
{
    if (dt == MU_DTYPE_F64)
        return {CUDA_R_64F, CUBLAS_COMPUTE_64F};
    return {dt == MU_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F, CUBLAS_COMPUTE_32F};
}

mu_trans_t flip(mu_trans_t t)
{
    return t == MU_TRANS ? MU_NO_TRANS : MU_TRANS;
}

/* The upper block triangle as one batched GEMM. Row-major C_ij = op(X)_i op(X)_j^T is the
 * column-major call with X_j first (see cuda_ops.cu). */
mu_status_t upper_blocks(mu_cuda_state_t *st, mu_trans_t trans, double alpha, const mu_mat_t *x,
                         double beta, mu_mat_t *c, int nb, int64_t bs, int64_t k)
{
    const size_t es = mu_dtype_size(c->dtype);
    const int pairs = nb * (nb + 1) / 2;
    const void **left = (const void **)st->block_ptrs, **right = left + pairs;
    void **out = (void **)(right + pairs);
    const int64_t x_step = (int64_t)es * bs * (trans == MU_TRANS ? 1 : x->ld);
    upper_block_pointers<<<1, MU_CUDA_MAX_BLOCK_PAIRS, 0, st->compute>>>(
        (const char *)x->data, x_step, (char *)c->data, (int64_t)es * bs * c->ld,
        (int64_t)es * bs, nb, left, right, out);
    MU_CUDA_CHECK(cudaGetLastError());
    const BlasTypes t = blas_types(c->dtype);
    const float alpha32 = (float)alpha, beta32 = (float)beta;
    const bool f64 = c->dtype == MU_DTYPE_F64;
    MU_CUBLAS_CHECK(cublasGemmBatchedEx(
        st->blas, mu_cuda_op(flip(trans)), mu_cuda_op(trans), (int)bs, (int)bs, (int)k,
        f64 ? (const void *)&alpha : (const void *)&alpha32, right, t.data, (int)x->ld, left,
        t.data, (int)x->ld, f64 ? (const void *)&beta : (const void *)&beta32, out, t.data,
        (int)c->ld, pairs, t.compute, CUBLAS_GEMM_DEFAULT));
    return MU_OK;
}

/* The columns [lead, n) that nb equal blocks leave over: C[:, lead:] = op(X) op(X)[lead:]^T. */
mu_status_t tail_strip(mu_cuda_state_t *st, mu_trans_t trans, double alpha, const mu_mat_t *x,
                       double beta, mu_mat_t *c, int64_t lead, int64_t k)
{
    const int64_t n = c->rows, tail = n - lead;
    const size_t es = mu_dtype_size(c->dtype);
    mu_mat_t part = *x; /* op(X)'s rows [lead, n) */
    if (trans == MU_TRANS) {
        part.cols = tail;
        part.data = (char *)x->data + (size_t)lead * es;
    } else {
        part.rows = tail;
        part.data = (char *)x->data + (size_t)(lead * x->ld) * es;
    }
    mu_mat_t strip = {n, tail, c->ld, c->dtype, (char *)c->data + (size_t)lead * es};
    return mu_cuda_gemm_ex(st, trans, flip(trans), alpha, x, &part, beta, &strip, k);
}

mu_status_t blocked_product(mu_cuda_state_t *st, mu_trans_t trans, double alpha,
                            const mu_mat_t *x, double beta, mu_mat_t *c, int nb, int64_t k)
{
    const int64_t n = c->rows, bs = n / nb, lead = bs * nb;
    MU_CHECK(upper_blocks(st, trans, alpha, x, beta, c, nb, bs, k));
    if (lead < n)
        MU_CHECK(tail_strip(st, trans, alpha, x, beta, c, lead, k));
    return mirror_upper(st->compute, c);
}

mu_status_t cublas_syrk(mu_cuda_state_t *st, mu_trans_t trans, double alpha, const mu_mat_t *a,
                        double beta, mu_mat_t *c, int64_t k)
{
    const int n = (int)c->rows;
    const cublasOperation_t op = trans == MU_TRANS ? CUBLAS_OP_N : CUBLAS_OP_T;
    if (c->dtype == MU_DTYPE_F32) {
        const float alpha32 = (float)alpha, beta32 = (float)beta;
        MU_CUBLAS_CHECK(cublasSsyrk(st->blas, CUBLAS_FILL_MODE_LOWER, op, n, (int)k, &alpha32,
                                    (const float *)a->data, (int)a->ld, &beta32, (float *)c->data,
                                    (int)c->ld));
    } else {
        MU_CUBLAS_CHECK(cublasDsyrk(st->blas, CUBLAS_FILL_MODE_LOWER, op, n, (int)k, &alpha,
                                    (const double *)a->data, (int)a->ld, &beta, (double *)c->data,
                                    (int)c->ld));
    }
    return mirror_upper(st->compute, c);
}

/* The automatic choice, from the T = 5 sweep on an H100 (bench/gpu-syrk-sweep, docs/gpu.md):
 *  - bf16 blocks 512-row blocks once n >= 2048 and the inner dimension k >= 4096: 4096^2
 *    took 2.77 ms blocked against 3.05 by GEMM, 2048x8192 1.23 against 1.29; with k = 2048
 *    (a 2048^2 input) or n = 1024 the batch underfills the GPU and GEMM won (0.55 against
 *    0.58 ms, 0.33 against 0.38);
 *  - fp32 uses cuBLAS SYRK from n = 2048 (31.9 ms against 41.2 by GEMM at 4096^2, 4.3
 *    against 5.4 at 2048^2) and GEMM below (2.25 against 2.55 ms at 1024x4096);
 *  - fp64 (small Gram-side matrices only) always uses cuBLAS SYRK. */
mu_cuda_syrk_mode_t auto_mode(mu_dtype_t dt, int64_t n, int64_t k, int *nb)
{
    *nb = (int)(n / MU_CUDA_AUTO_BLOCK);
    if (*nb > MU_CUDA_AUTO_MAX_BLOCKS)
        *nb = MU_CUDA_AUTO_MAX_BLOCKS;
    switch (dt) {
    case MU_DTYPE_BF16:
        return n >= 2048 && k >= 4096 ? MU_CUDA_SYRK_BLOCKED : MU_CUDA_SYRK_GEMM;
    case MU_DTYPE_F32:
        return n >= 2048 ? MU_CUDA_SYRK_CUBLAS : MU_CUDA_SYRK_GEMM;
    case MU_DTYPE_F64:
        break;
    }
    return MU_CUDA_SYRK_CUBLAS;
}

} // namespace

extern "C" mu_status_t mu_cuda_syrk(mu_backend_t *be, mu_trans_t trans, double alpha,
                                    const mu_mat_t *a, double beta, mu_mat_t *c)
{
    mu_cuda_state_t *st = mu_cuda_state(be);
    const int64_t k = trans == MU_TRANS ? a->rows : a->cols;
    if (c->rows == 0)
        return MU_OK;
    int nb = st->syrk_blocks;
    mu_cuda_syrk_mode_t mode = st->syrk_mode;
    if (mode == MU_CUDA_SYRK_AUTO)
        mode = auto_mode(c->dtype, c->rows, k, &nb);
    if (mode == MU_CUDA_SYRK_CUBLAS && c->dtype == MU_DTYPE_BF16)
        mode = MU_CUDA_SYRK_GEMM; /* cuBLAS has no bf16 SYRK */
    if (mode == MU_CUDA_SYRK_BLOCKED && nb >= 2 && c->rows >= nb)
        return blocked_product(st, trans, alpha, a, beta, c, nb, k);
    if (mode == MU_CUDA_SYRK_CUBLAS)
        return cublas_syrk(st, trans, alpha, a, beta, c, k);
    return mu_cuda_gemm_ex(st, trans, flip(trans), alpha, a, a, beta, c, k); /* symmetric as is */
}

extern "C" mu_status_t mu_cuda_symmetrize(mu_backend_t *be, mu_mat_t *c)
{
    return mirror_upper(mu_cuda_state(be)->compute, c);
}

extern "C" mu_status_t mu_cuda_syrk_configure(mu_cuda_state_t *st, const char *spec)
{
    st->syrk_mode = MU_CUDA_SYRK_AUTO;
    int blocks = 0;
    if (!spec || !*spec || strcmp(spec, "auto") == 0)
        ;
    else if (strcmp(spec, "syrk") == 0)
        st->syrk_mode = MU_CUDA_SYRK_CUBLAS;
    else if (strcmp(spec, "gemm") == 0)
        st->syrk_mode = MU_CUDA_SYRK_GEMM;
    else if (sscanf(spec, "blocks=%d", &blocks) == 1 && blocks >= 2 &&
             blocks <= MU_CUDA_MAX_BLOCKS)
        st->syrk_mode = MU_CUDA_SYRK_BLOCKED;
    else
        return mu_error(MU_ERR_INVALID,
                        "MUOND_CUDA_SYRK='%s': expected auto, syrk, gemm or blocks=N (2..%d)",
                        spec, MU_CUDA_MAX_BLOCKS);
    st->syrk_blocks = blocks;
    if (!st->block_ptrs)
        MU_CUDA_CHECK(
            cudaMalloc((void **)&st->block_ptrs, 3 * MU_CUDA_MAX_BLOCK_PAIRS * sizeof(void *)));
    return MU_OK;
}

extern "C" void mu_cuda_syrk_describe(const mu_cuda_state_t *st, char *out, size_t out_len)
{
    switch (st->syrk_mode) {
    case MU_CUDA_SYRK_AUTO:
        snprintf(out, out_len, "auto by dtype and size");
        return;
    case MU_CUDA_SYRK_CUBLAS:
        snprintf(out, out_len, "cuBLAS SYRK");
        return;
    case MU_CUDA_SYRK_GEMM:
        snprintf(out, out_len, "GEMM");
        return;
    case MU_CUDA_SYRK_BLOCKED:
        snprintf(out, out_len, "%d x %d blocks", st->syrk_blocks, st->syrk_blocks);
        return;
    }
}
