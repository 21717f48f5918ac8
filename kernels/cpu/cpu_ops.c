/*
 * The cpu backend: BLAS-3 work on CBLAS (OpenBLAS, multithreaded), element-wise work in
 * typed loops. Everything not overridden here is the reference backend's host code.
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>

#include "core/log.h"
#include "kernels/backend_impl.h"
#include "kernels/cpu/blas_core.h"
#include "kernels/ref/ref_ops.h"

/* Tile edge for the transposing copy. Each tile row reads one element from each of TILE
 * rows that are ld apart, i.e. from TILE different pages at 1024 columns: small tiles keep
 * those pages in the TLB. Measured on a Haswell-class host at 1024^2 fp32: 0.28 ms with 8,
 * 0.36 ms with 16, 1.02 ms with 64. */
enum { SYMMETRIZE_TILE = 8 };

static CBLAS_TRANSPOSE to_cblas(mu_trans_t t)
{
    return t == MU_TRANS ? CblasTrans : CblasNoTrans;
}

/* Products with at most this many columns go column by column through GEMV: OpenBLAS's
 * GEMM packs all of A for every call, so the probes' and Lanczos' k-column products cost
 * more than the pass over A itself. Measured (1 thread, fp32, 512^2 A): k = 2, 177 us as one
 * GEMM against 71 us as two GEMVs; k = 4, 192 against 133; k = 8, 187 against 196. */
enum { GEMV_MAX_COLUMNS = 4 };

static void columns_by_gemv(mu_trans_t trans_a, double alpha, const mu_mat_t *a, const mu_mat_t *b,
                            double beta, mu_mat_t *c)
{
    const size_t size = mu_dtype_size(c->dtype);
    const int rows = (int)a->rows, cols = (int)a->cols;
    for (int64_t j = 0; j < c->cols; j++) {
        const char *x = (const char *)b->data + (size_t)j * size;
        char *y = (char *)c->data + (size_t)j * size;
        if (c->dtype == MU_DTYPE_F32)
            cblas_sgemv(CblasRowMajor, to_cblas(trans_a), rows, cols, (float)alpha, a->data,
                        (int)a->ld, (const float *)x, (int)b->ld, (float)beta, (float *)y,
                        (int)c->ld);
        else
            cblas_dgemv(CblasRowMajor, to_cblas(trans_a), rows, cols, alpha, a->data, (int)a->ld,
                        (const double *)x, (int)b->ld, beta, (double *)y, (int)c->ld);
    }
}

static mu_status_t cpu_gemm(mu_backend_t *be, mu_trans_t trans_a, mu_trans_t trans_b, double alpha,
                            const mu_mat_t *a, const mu_mat_t *b, double beta, mu_mat_t *c)
{
    (void)be;
    const int m = (int)c->rows, n = (int)c->cols;
    const int k = (int)(trans_a == MU_TRANS ? a->rows : a->cols);
    if (m == 0 || n == 0)
        return MU_OK;
    if (n <= GEMV_MAX_COLUMNS && trans_b == MU_NO_TRANS && k > 0) {
        columns_by_gemv(trans_a, alpha, a, b, beta, c);
        return MU_OK;
    }
    if (c->dtype == MU_DTYPE_F32)
        cblas_sgemm(CblasRowMajor, to_cblas(trans_a), to_cblas(trans_b), m, n, k, (float)alpha,
                    a->data, (int)a->ld, b->data, (int)b->ld, (float)beta, c->data, (int)c->ld);
    else
        cblas_dgemm(CblasRowMajor, to_cblas(trans_a), to_cblas(trans_b), m, n, k, alpha, a->data,
                    (int)a->ld, b->data, (int)b->ld, beta, c->data, (int)c->ld);
    return MU_OK;
}

static mu_status_t cpu_symmetrize(mu_backend_t *be, mu_mat_t *c);

static mu_status_t cpu_syrk(mu_backend_t *be, mu_trans_t trans, double alpha, const mu_mat_t *a,
                            double beta, mu_mat_t *c)
{
    const int n = (int)c->rows;
    const int k = (int)(trans == MU_TRANS ? a->rows : a->cols);
    if (n == 0)
        return MU_OK;
    if (c->dtype == MU_DTYPE_F32)
        cblas_ssyrk(CblasRowMajor, CblasUpper, to_cblas(trans), n, k, (float)alpha, a->data,
                    (int)a->ld, (float)beta, c->data, (int)c->ld);
    else
        cblas_dsyrk(CblasRowMajor, CblasUpper, to_cblas(trans), n, k, alpha, a->data, (int)a->ld,
                    beta, c->data, (int)c->ld);
    return cpu_symmetrize(be, c);
}

/* Lower := upper, tile by tile, so that the column-wise reads of the upper triangle stay in
 * cache and in the TLB. */
#define DEFINE_SYMMETRIZE(NAME, T)                                                                 \
    static void NAME(T *c, int64_t n, int64_t ld)                                                  \
    {                                                                                              \
        for (int64_t ib = 0; ib < n; ib += SYMMETRIZE_TILE)                                        \
            for (int64_t jb = 0; jb <= ib; jb += SYMMETRIZE_TILE)                                  \
                for (int64_t i = ib; i < n && i < ib + SYMMETRIZE_TILE; i++)                       \
                    for (int64_t j = jb; j < i && j < jb + SYMMETRIZE_TILE; j++)                   \
                        c[i * ld + j] = c[j * ld + i];                                             \
    }
DEFINE_SYMMETRIZE(symmetrize_f32, float)
DEFINE_SYMMETRIZE(symmetrize_f64, double)

static mu_status_t cpu_symmetrize(mu_backend_t *be, mu_mat_t *c)
{
    (void)be;
    if (c->dtype == MU_DTYPE_F32)
        symmetrize_f32(c->data, c->rows, c->ld);
    else
        symmetrize_f64(c->data, c->rows, c->ld);
    return MU_OK;
}

/* y = alpha x without reading y. Typed loops: the reference's generic ones convert every
 * element through double (4.5 ms at 1024^2 fp32 here, against 0.3 ms), and every
 * orthogonalization starts with this scaling. */
#define DEFINE_SCALED_COPY(NAME, T)                                                                \
    static void NAME(double alpha, const mu_mat_t *x, mu_mat_t *y)                                 \
    {                                                                                              \
        const T a = (T)alpha;                                                                      \
        for (int64_t i = 0; i < y->rows; i++) {                                                    \
            const T *xi = (const T *)x->data + i * x->ld;                                          \
            T *yi = (T *)y->data + i * y->ld;                                                      \
            for (int64_t j = 0; j < y->cols; j++)                                                  \
                yi[j] = a * xi[j];                                                                 \
        }                                                                                          \
    }
DEFINE_SCALED_COPY(scaled_copy_f32, float)
DEFINE_SCALED_COPY(scaled_copy_f64, double)

static mu_status_t cpu_axpby(mu_backend_t *be, double alpha, const mu_mat_t *x, double beta,
                             mu_mat_t *y)
{
    (void)be;
    if (beta == 0.0) { /* BLAS axpby would read y and turn 0*NaN into NaN */
        if (x->dtype == MU_DTYPE_F32)
            scaled_copy_f32(alpha, x, y);
        else
            scaled_copy_f64(alpha, x, y);
        return MU_OK;
    }
    const size_t size = mu_dtype_size(x->dtype);
    for (int64_t i = 0; i < y->rows; i++) {
        const void *xi = (const char *)x->data + (size_t)(i * x->ld) * size;
        void *yi = (char *)y->data + (size_t)(i * y->ld) * size;
        if (x->dtype == MU_DTYPE_F32)
            cblas_saxpby((int)y->cols, (float)alpha, xi, 1, (float)beta, yi, 1);
        else
            cblas_daxpby((int)y->cols, alpha, xi, 1, beta, yi, 1);
    }
    return MU_OK;
}

static mu_status_t cpu_scale(mu_backend_t *be, double alpha, mu_mat_t *x)
{
    (void)be;
    const size_t size = mu_dtype_size(x->dtype);
    for (int64_t i = 0; i < x->rows; i++) {
        void *xi = (char *)x->data + (size_t)(i * x->ld) * size;
        if (x->dtype == MU_DTYPE_F32)
            cblas_sscal((int)x->cols, (float)alpha, xi, 1);
        else
            cblas_dscal((int)x->cols, alpha, xi, 1);
    }
    return MU_OK;
}

/* fp32: squares summed in double, which cannot overflow ((3.4e38)^2 < 1.8e308); cblas_snrm2
 * returns a float and would turn a large but finite matrix's norm into Inf.
 * fp64: BLAS dnrm2 per row (it scales internally), rows combined with hypot. */
static double norm_f32(const mu_mat_t *x)
{
    double sum = 0.0;
    for (int64_t i = 0; i < x->rows; i++) {
        const float *row = (const float *)x->data + i * x->ld;
        double row_sum = 0.0;
        for (int64_t j = 0; j < x->cols; j++)
            row_sum += (double)row[j] * (double)row[j];
        sum += row_sum;
    }
    return sqrt(sum);
}

static double norm_f64(const mu_mat_t *x)
{
    double total = 0.0;
    for (int64_t i = 0; i < x->rows; i++)
        total = hypot(total, cblas_dnrm2((int)x->cols, (const double *)x->data + i * x->ld, 1));
    return total;
}

static mu_status_t cpu_norm_frob(mu_backend_t *be, const mu_mat_t *x, double *out)
{
    (void)be;
    *out = x->dtype == MU_DTYPE_F32 ? norm_f32(x) : norm_f64(x);
    return MU_OK;
}

/* Non-finite means an all-ones exponent; testing the bits lets the loop vectorize. */
static int64_t nonfinite_f32(const mu_mat_t *x)
{
    int64_t count = 0;
    for (int64_t i = 0; i < x->rows; i++) {
        const uint32_t *row = (const uint32_t *)x->data + i * x->ld;
        for (int64_t j = 0; j < x->cols; j++)
            count += (row[j] & 0x7f800000u) == 0x7f800000u;
    }
    return count;
}

static mu_status_t cpu_count_nonfinite(mu_backend_t *be, const mu_mat_t *x, int64_t *out)
{
    if (x->dtype != MU_DTYPE_F32)
        return mu_ref_count_nonfinite(be, x, out);
    *out = nonfinite_f32(x);
    return MU_OK;
}

static mu_status_t cpu_set_threads(mu_backend_t *be, int threads)
{
    (void)be;
    openblas_set_num_threads(threads);
    return MU_OK;
}

/* A core below what the CPU allows costs up to 5x on every product: say so loudly. */
static mu_status_t cpu_init(mu_backend_t *be)
{
    if (mu_blas_core_lagging()) {
        char core[256];
        mu_blas_core_describe(core, sizeof core);
        MU_LOG(MU_LOG_WARN, MU_SUB_KERNELS,
               "OpenBLAS runs core %s: slower kernels than this CPU allows (unset "
               "OPENBLAS_CORETYPE and MUOND_BLAS_CORE to let muond choose)",
               core);
    }
    return mu_host_backend_init(be);
}

static void cpu_describe(const mu_backend_t *be, char *out, size_t out_len)
{
    (void)be;
    char core[256];
    mu_blas_core_describe(core, sizeof core);
    snprintf(out, out_len, "cpu (%s, %d threads; core %s)", openblas_get_config(),
             openblas_get_num_threads(), core);
}

const struct mu_kernel_ops mu_cpu_ops = {
    .name = "cpu",
    .host_memory = true,
    .can_use = mu_host_backend_can_use,
    .init = cpu_init,
    .fini = mu_host_backend_fini,
    .describe = cpu_describe,
    .set_threads = cpu_set_threads,
    .alloc = mu_ref_alloc,
    .release = mu_ref_release,
    .upload = mu_ref_upload,
    .download = mu_ref_download,
    .copy = mu_ref_copy,
    .gemm = cpu_gemm,
    .syrk = cpu_syrk,
    .symmetrize = cpu_symmetrize,
    .axpby = cpu_axpby,
    .scale = cpu_scale,
    .add_identity = mu_ref_add_identity,
    .set_identity = mu_ref_set_identity,
    .fill = mu_ref_fill,
    .norm_frob = cpu_norm_frob,
    .dist_identity = mu_ref_dist_identity,
    .count_nonfinite = cpu_count_nonfinite,
    .synchronize = mu_ref_synchronize,
    .momentum = mu_ref_momentum,
    .apply_update = mu_ref_apply_update,
    .adamw = mu_ref_adamw,
};
