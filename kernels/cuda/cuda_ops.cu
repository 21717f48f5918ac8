/*
 * The cuda backend: matrices in device memory, BLAS-3 on cuBLAS, element-wise work in small
 * kernels (cuda_elementwise.cu), everything on one compute stream in issue order.
 *
 * Precision: fp32 operands compute in true fp32 (CUBLAS_COMPUTE_32F, TF32 off: the fp32 mode
 * is the accuracy reference for bf16); bf16 operands multiply in bf16 with fp32 accumulation
 * (cublasGemmEx, CUDA_R_16BF, CUBLAS_COMPUTE_32F); fp64 in fp64.
 *
 * Row-major views on column-major cuBLAS: a row-major m x n matrix with leading dimension ld
 * is the column-major n x m matrix with the same ld, i.e. its transpose. So row-major
 * C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: the operands swap places and keep
 * their transpose flags.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_impl.h"
extern "C" {
#include "core/log.h"
}
#include "core/knobs.h"
#include "kernels/cuda/device.h"

extern "C" mu_status_t mu_cuda_error(cudaError_t err, const char *what)
{
    return mu_error(MU_ERR_CUDA, "%s: %s (%d)", what, cudaGetErrorString(err), (int)err);
}

extern "C" mu_status_t mu_cublas_error(cublasStatus_t err, const char *what)
{
    return mu_error(MU_ERR_CUBLAS, "%s: %s (%d)", what, cublasGetStatusString(err), (int)err);
}

static bool cuda_can_use(char *why, size_t why_len)
{
    return mu_cuda_device_count(why, why_len) > 0;
}

/* cuBLAS's advice for Hopper: 32 MiB of workspace per handle. */
static const size_t BLAS_WORKSPACE_BYTES = (size_t)32 << 20;

static mu_status_t start_state(mu_cuda_state_t *st)
{
    MU_CUDA_CHECK(cudaGetDevice(&st->device));
    cudaDeviceProp prop;
    MU_CUDA_CHECK(cudaGetDeviceProperties(&prop, st->device));
    snprintf(st->device_name, sizeof st->device_name, "%s, sm_%d%d, %.0f GiB", prop.name,
             prop.major, prop.minor, (double)prop.totalGlobalMem / (1 << 30));
    MU_CUDA_CHECK(cudaStreamCreateWithFlags(&st->compute, cudaStreamNonBlocking));
    MU_CUBLAS_CHECK(cublasCreate(&st->blas));
    MU_CUBLAS_CHECK(cublasSetStream(st->blas, st->compute));
    /* Pure fp32 unless asked otherwise: TF32 would silently cut the fp32 mode to 10 bits. */
    MU_CUBLAS_CHECK(cublasSetMathMode(st->blas, CUBLAS_DEFAULT_MATH));
    MU_CUDA_CHECK(cudaMalloc(&st->blas_workspace, BLAS_WORKSPACE_BYTES));
    MU_CUBLAS_CHECK(cublasSetWorkspace(st->blas, st->blas_workspace, BLAS_WORKSPACE_BYTES));
    MU_CUDA_CHECK(cudaMalloc((void **)&st->reduce, sizeof(double)));
    MU_CUDA_CHECK(cudaMallocHost((void **)&st->reduce_host, sizeof(double)));
    return mu_cuda_syrk_configure(st, mu_knob(MU_KNOB_CUDA_SYRK));
}

static void cuda_fini(mu_backend_t *be)
{
    mu_cuda_state_t *st = mu_cuda_state(be);
    if (!st)
        return;
    if (st->compute)
        cudaStreamSynchronize(st->compute);
    if (st->blas)
        cublasDestroy(st->blas);
    cudaFree(st->staging);
    cudaFree(st->blas_workspace);
    cudaFree(st->block_ptrs);
    cudaFree(st->reduce);
    cudaFreeHost(st->reduce_host);
    if (st->compute)
        cudaStreamDestroy(st->compute);
    free(st);
    be->state = NULL;
}

static mu_status_t cuda_init(mu_backend_t *be)
{
    mu_cuda_state_t *st = (mu_cuda_state_t *)calloc(1, sizeof *st);
    if (!st)
        return mu_error(MU_ERR_NOMEM, "cuda: cannot allocate the backend state");
    be->state = st;
    const mu_status_t status = start_state(st);
    if (status != MU_OK)
        cuda_fini(be);
    return status;
}

static void cuda_describe(const mu_backend_t *be, char *out, size_t out_len)
{
    const mu_cuda_state_t *st = mu_cuda_state(be);
    char syrk[96];
    mu_cuda_syrk_describe(st, syrk, sizeof syrk);
    snprintf(out, out_len, "cuda (device %d: %s; SYRK: %s)", st->device, st->device_name, syrk);
}

static mu_status_t cuda_alloc(mu_backend_t *be, int64_t rows, int64_t cols, mu_dtype_t dtype,
                              mu_mat_t *out)
{
    (void)be;
    *out = mu_mat_t{rows, cols, cols > 0 ? cols : 1, dtype, NULL};
    const size_t bytes = (size_t)(rows * cols) * mu_dtype_size(dtype);
    if (bytes == 0)
        return MU_OK;
    const cudaError_t err = cudaMalloc(&out->data, bytes);
    if (err != cudaSuccess) {
        out->data = NULL;
        return mu_error(MU_ERR_NOMEM, "cuda: cannot allocate %lld x %lld %s (%.1f MiB): %s",
                        (long long)rows, (long long)cols, mu_dtype_name(dtype),
                        (double)bytes / 1048576.0, cudaGetErrorString(err));
    }
    return MU_OK;
}

static void cuda_release(mu_backend_t *be, mu_mat_t *mat)
{
    (void)be;
    cudaFree(mat->data);
    *mat = mu_mat_t{0, 0, 0, MU_DTYPE_F32, NULL};
}

/* A device buffer of at least bytes, kept between calls. */
static mu_status_t staging(mu_cuda_state_t *st, size_t bytes, void **out)
{
    if (bytes > st->staging_bytes) {
        MU_CUDA_CHECK(cudaStreamSynchronize(st->compute)); /* the old buffer may be in use */
        cudaFree(st->staging);
        st->staging = NULL;
        st->staging_bytes = 0;
        MU_CUDA_CHECK(cudaMalloc(&st->staging, bytes));
        st->staging_bytes = bytes;
    }
    *out = st->staging;
    return MU_OK;
}

/* Host rows go up as they are (2-D copy), then convert on the device when dtypes differ. The
 * call returns once the host buffer may be reused. */
static mu_status_t cuda_upload(mu_backend_t *be, const void *host, mu_dtype_t host_dtype,
                               int64_t host_ld, mu_mat_t *dst)
{
    mu_cuda_state_t *st = mu_cuda_state(be);
    if (dst->rows * dst->cols == 0)
        return MU_OK;
    const size_t hs = mu_dtype_size(host_dtype);
    void *landing = dst->data;
    int64_t landing_ld = dst->ld;
    if (host_dtype != dst->dtype) {
        MU_CHECK(staging(st, (size_t)(dst->rows * dst->cols) * hs, &landing));
        landing_ld = dst->cols;
    }
    MU_CUDA_CHECK(cudaMemcpy2DAsync(landing, (size_t)landing_ld * hs, host, (size_t)host_ld * hs,
                                    (size_t)dst->cols * hs, (size_t)dst->rows,
                                    cudaMemcpyHostToDevice, st->compute));
    if (host_dtype != dst->dtype)
        MU_CHECK(mu_cuda_convert(st->compute, landing, host_dtype, landing_ld, dst->data,
                                 dst->dtype, dst->ld, dst->rows, dst->cols));
    MU_CUDA_CHECK(cudaStreamSynchronize(st->compute));
    return MU_OK;
}

static mu_status_t cuda_download(mu_backend_t *be, const mu_mat_t *src, void *host,
                                 mu_dtype_t host_dtype, int64_t host_ld)
{
    mu_cuda_state_t *st = mu_cuda_state(be);
    if (src->rows * src->cols == 0)
        return MU_OK;
    const size_t hs = mu_dtype_size(host_dtype);
    const void *from = src->data;
    int64_t from_ld = src->ld;
    if (host_dtype != src->dtype) {
        void *converted;
        MU_CHECK(staging(st, (size_t)(src->rows * src->cols) * hs, &converted));
        MU_CHECK(mu_cuda_convert(st->compute, src->data, src->dtype, src->ld, converted, host_dtype,
                                 src->cols, src->rows, src->cols));
        from = converted;
        from_ld = src->cols;
    }
    MU_CUDA_CHECK(cudaMemcpy2DAsync(host, (size_t)host_ld * hs, from, (size_t)from_ld * hs,
                                    (size_t)src->cols * hs, (size_t)src->rows,
                                    cudaMemcpyDeviceToHost, st->compute));
    MU_CUDA_CHECK(cudaStreamSynchronize(st->compute));
    return MU_OK;
}

static mu_status_t cuda_copy(mu_backend_t *be, const mu_mat_t *src, mu_mat_t *dst)
{
    mu_cuda_state_t *st = mu_cuda_state(be);
    if (src->rows * src->cols == 0)
        return MU_OK;
    if (src->dtype != dst->dtype)
        return mu_cuda_convert(st->compute, src->data, src->dtype, src->ld, dst->data, dst->dtype,
                               dst->ld, src->rows, src->cols);
    const size_t es = mu_dtype_size(src->dtype);
    MU_CUDA_CHECK(cudaMemcpy2DAsync(dst->data, (size_t)dst->ld * es, src->data,
                                    (size_t)src->ld * es, (size_t)src->cols * es, (size_t)src->rows,
                                    cudaMemcpyDeviceToDevice, st->compute));
    return MU_OK;
}

extern "C" cublasOperation_t mu_cuda_op(mu_trans_t t)
{
    return t == MU_TRANS ? CUBLAS_OP_T : CUBLAS_OP_N;
}

extern "C" mu_status_t mu_cuda_gemm_ex(mu_cuda_state_t *st, mu_trans_t ta, mu_trans_t tb, double alpha,
                           const mu_mat_t *a, const mu_mat_t *b, double beta, mu_mat_t *c,
                           int64_t k)
{
    const int m = (int)c->rows, n = (int)c->cols;
    if (c->dtype == MU_DTYPE_F64) {
        MU_CUBLAS_CHECK(cublasDgemm(st->blas, mu_cuda_op(tb), mu_cuda_op(ta), n, m, (int)k, &alpha,
                                    (const double *)b->data, (int)b->ld, (const double *)a->data,
                                    (int)a->ld, &beta, (double *)c->data, (int)c->ld));
        return MU_OK;
    }
    const float alpha32 = (float)alpha, beta32 = (float)beta;
    const cudaDataType_t type = c->dtype == MU_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    MU_CUBLAS_CHECK(cublasGemmEx(st->blas, mu_cuda_op(tb), mu_cuda_op(ta), n, m, (int)k, &alpha32,
                                 b->data, type, (int)b->ld, a->data, type, (int)a->ld, &beta32,
                                 c->data, type, (int)c->ld, CUBLAS_COMPUTE_32F,
                                 CUBLAS_GEMM_DEFAULT));
    return MU_OK;
}

static mu_status_t cuda_gemm(mu_backend_t *be, mu_trans_t trans_a, mu_trans_t trans_b, double alpha,
                             const mu_mat_t *a, const mu_mat_t *b, double beta, mu_mat_t *c)
{
    if (c->rows == 0 || c->cols == 0)
        return MU_OK;
    const int64_t k = trans_a == MU_TRANS ? a->rows : a->cols;
    return mu_cuda_gemm_ex(mu_cuda_state(be), trans_a, trans_b, alpha, a, b, beta, c, k);
}

static mu_status_t cuda_synchronize(mu_backend_t *be)
{
    MU_CUDA_CHECK(cudaStreamSynchronize(mu_cuda_state(be)->compute));
    return MU_OK;
}

/* ---- graphs: the compute stream's work recorded once, replayed with one launch ---------- */

struct mu_k_graph {
    cudaGraphExec_t exec;
};

/* Thread-local capture: other threads (the NCCL communicator's) keep using CUDA freely. */
static mu_status_t cuda_capture_begin(mu_backend_t *be)
{
    MU_CUDA_CHECK(
        cudaStreamBeginCapture(mu_cuda_state(be)->compute, cudaStreamCaptureModeThreadLocal));
    return MU_OK;
}

static mu_status_t cuda_capture_end(mu_backend_t *be, mu_k_graph_t **out)
{
    cudaGraph_t graph = NULL;
    MU_CUDA_CHECK(cudaStreamEndCapture(mu_cuda_state(be)->compute, &graph));
    cudaGraphExec_t exec = NULL;
    const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    MU_CUDA_CHECK(err);
    *out = (mu_k_graph_t *)malloc(sizeof **out);
    if (!*out) {
        cudaGraphExecDestroy(exec);
        return mu_error(MU_ERR_NOMEM, "cuda: cannot allocate a graph handle");
    }
    (*out)->exec = exec;
    return MU_OK;
}

static mu_status_t cuda_replay(mu_backend_t *be, mu_k_graph_t *graph)
{
    MU_CUDA_CHECK(cudaGraphLaunch(graph->exec, mu_cuda_state(be)->compute));
    return MU_OK;
}

static void cuda_graph_destroy(mu_backend_t *be, mu_k_graph_t *graph)
{
    (void)be;
    cudaGraphExecDestroy(graph->exec);
    free(graph);
}

extern "C" void *mu_cuda_backend_stream(mu_backend_t *be)
{
    return be && be->ops == &mu_cuda_ops ? (void *)mu_cuda_state(be)->compute : NULL;
}

extern "C" const struct mu_kernel_ops mu_cuda_ops = {
    .name = "cuda",
    .host_memory = false,
    .bf16_compute = true,
    .oracle = false,
    .can_use = cuda_can_use,
    .init = cuda_init,
    .fini = cuda_fini,
    .describe = cuda_describe,
    .set_threads = NULL,
    .alloc = cuda_alloc,
    .release = cuda_release,
    .upload = cuda_upload,
    .download = cuda_download,
    .copy = cuda_copy,
    .gemm = cuda_gemm,
    .syrk = mu_cuda_syrk,
    .symmetrize = mu_cuda_symmetrize,
    .axpby = mu_cuda_axpby,
    .scale = mu_cuda_scale,
    .add_identity = mu_cuda_add_identity,
    .set_identity = mu_cuda_set_identity,
    .fill = mu_cuda_fill,
    .norm_frob = mu_cuda_norm_frob,
    .dist_identity = mu_cuda_dist_identity,
    .count_nonfinite = mu_cuda_count_nonfinite,
    .synchronize = cuda_synchronize,
    .momentum = mu_cuda_momentum,
    .apply_update = mu_cuda_apply_update,
    .adamw = mu_cuda_adamw,
    .capture_begin = cuda_capture_begin,
    .capture_end = cuda_capture_end,
    .replay = cuda_replay,
    .graph_destroy = cuda_graph_destroy,
};
