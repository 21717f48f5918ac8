#include "kernels/ref/ref_ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend_impl.h"

enum { HOST_ALIGNMENT = 64 }; /* one cache line; also what AVX-512 loads prefer */

/* Element k of a buffer of any dtype, as double (exact for all three). */
static inline double load(const void *data, mu_dtype_t dtype, int64_t k)
{
    switch (dtype) {
    case MU_DTYPE_F32:
        return ((const float *)data)[k];
    case MU_DTYPE_BF16:
        return mu_bf16_to_f32(((const uint16_t *)data)[k]);
    default:
        return ((const double *)data)[k];
    }
}

/* Stores v; to bf16 it rounds through fp32 (exact when v came from fp32 or bf16). */
static inline void store(void *data, mu_dtype_t dtype, int64_t k, double v)
{
    switch (dtype) {
    case MU_DTYPE_F32:
        ((float *)data)[k] = (float)v;
        break;
    case MU_DTYPE_BF16:
        ((uint16_t *)data)[k] = mu_bf16_from_f32((float)v);
        break;
    default:
        ((double *)data)[k] = v;
    }
}

static inline double get(const mu_mat_t *m, int64_t i, int64_t j)
{
    return load(m->data, m->dtype, i * m->ld + j);
}

static inline void put(mu_mat_t *m, int64_t i, int64_t j, double v)
{
    store(m->data, m->dtype, i * m->ld + j, v);
}

/* Element (i, j) of op(m). */
static inline double get_op(const mu_mat_t *m, mu_trans_t t, int64_t i, int64_t j)
{
    return t == MU_TRANS ? get(m, j, i) : get(m, i, j);
}

mu_status_t mu_ref_alloc(mu_backend_t *be, int64_t rows, int64_t cols, mu_dtype_t dtype,
                         mu_mat_t *out)
{
    (void)be;
    const size_t bytes = (size_t)rows * (size_t)cols * mu_dtype_size(dtype);
    void *data = NULL;
    if (posix_memalign(&data, HOST_ALIGNMENT, bytes ? bytes : HOST_ALIGNMENT) != 0)
        return mu_error(MU_ERR_NOMEM, "cannot allocate a %lldx%lld %s matrix (%zu bytes)",
                        (long long)rows, (long long)cols, mu_dtype_name(dtype), bytes);
    *out = (mu_mat_t){
        .rows = rows, .cols = cols, .ld = cols > 0 ? cols : 1, .dtype = dtype, .data = data};
    return MU_OK;
}

void mu_ref_release(mu_backend_t *be, mu_mat_t *mat)
{
    (void)be;
    free(mat->data);
    *mat = (mu_mat_t){0};
}

void mu_host_copy_convert(const void *src, mu_dtype_t src_dtype, int64_t src_ld, void *dst,
                          mu_dtype_t dst_dtype, int64_t dst_ld, int64_t rows, int64_t cols)
{
    const size_t src_size = mu_dtype_size(src_dtype), dst_size = mu_dtype_size(dst_dtype);
    for (int64_t i = 0; i < rows; i++) {
        const char *s = (const char *)src + (size_t)(i * src_ld) * src_size;
        char *d = (char *)dst + (size_t)(i * dst_ld) * dst_size;
        if (src_dtype == dst_dtype) {
            memmove(d, s, (size_t)cols * src_size);
        } else if (src_dtype == MU_DTYPE_F32 && dst_dtype == MU_DTYPE_BF16) {
            for (int64_t j = 0; j < cols; j++) /* the exchange's hot path */
                ((uint16_t *)d)[j] = mu_bf16_from_f32(((const float *)s)[j]);
        } else {
            for (int64_t j = 0; j < cols; j++)
                store(d, dst_dtype, j, load(s, src_dtype, j));
        }
    }
}

mu_status_t mu_ref_upload(mu_backend_t *be, const void *host, mu_dtype_t host_dtype,
                          int64_t host_ld, mu_mat_t *dst)
{
    (void)be;
    mu_host_copy_convert(host, host_dtype, host_ld, dst->data, dst->dtype, dst->ld, dst->rows,
                         dst->cols);
    return MU_OK;
}

mu_status_t mu_ref_download(mu_backend_t *be, const mu_mat_t *src, void *host,
                            mu_dtype_t host_dtype, int64_t host_ld)
{
    (void)be;
    mu_host_copy_convert(src->data, src->dtype, src->ld, host, host_dtype, host_ld, src->rows,
                         src->cols);
    return MU_OK;
}

mu_status_t mu_ref_copy(mu_backend_t *be, const mu_mat_t *src, mu_mat_t *dst)
{
    (void)be;
    mu_host_copy_convert(src->data, src->dtype, src->ld, dst->data, dst->dtype, dst->ld, src->rows,
                         src->cols);
    return MU_OK;
}

mu_status_t mu_ref_gemm(mu_backend_t *be, mu_trans_t trans_a, mu_trans_t trans_b, double alpha,
                        const mu_mat_t *a, const mu_mat_t *b, double beta, mu_mat_t *c)
{
    (void)be;
    const int64_t inner = trans_a == MU_TRANS ? a->rows : a->cols;
    for (int64_t i = 0; i < c->rows; i++) {
        for (int64_t j = 0; j < c->cols; j++) {
            double sum = 0.0;
            for (int64_t k = 0; k < inner; k++)
                sum += get_op(a, trans_a, i, k) * get_op(b, trans_b, k, j);
            const double old = beta == 0.0 ? 0.0 : beta * get(c, i, j);
            put(c, i, j, alpha * sum + old);
        }
    }
    return MU_OK;
}

mu_status_t mu_ref_syrk(mu_backend_t *be, mu_trans_t trans, double alpha, const mu_mat_t *a,
                        double beta, mu_mat_t *c)
{
    const int64_t inner = trans == MU_TRANS ? a->rows : a->cols;
    for (int64_t i = 0; i < c->rows; i++) {
        for (int64_t j = i; j < c->cols; j++) {
            double sum = 0.0;
            for (int64_t k = 0; k < inner; k++)
                sum += get_op(a, trans, i, k) * get_op(a, trans, j, k);
            const double old = beta == 0.0 ? 0.0 : beta * get(c, i, j);
            put(c, i, j, alpha * sum + old);
        }
    }
    return mu_ref_symmetrize(be, c);
}

mu_status_t mu_ref_symmetrize(mu_backend_t *be, mu_mat_t *c)
{
    (void)be;
    for (int64_t i = 0; i < c->rows; i++)
        for (int64_t j = 0; j < i; j++)
            put(c, i, j, get(c, j, i));
    return MU_OK;
}

mu_status_t mu_ref_axpby(mu_backend_t *be, double alpha, const mu_mat_t *x, double beta,
                         mu_mat_t *y)
{
    (void)be;
    for (int64_t i = 0; i < y->rows; i++)
        for (int64_t j = 0; j < y->cols; j++) {
            const double old = beta == 0.0 ? 0.0 : beta * get(y, i, j);
            put(y, i, j, alpha * get(x, i, j) + old);
        }
    return MU_OK;
}

mu_status_t mu_ref_scale(mu_backend_t *be, double alpha, mu_mat_t *x)
{
    (void)be;
    for (int64_t i = 0; i < x->rows; i++)
        for (int64_t j = 0; j < x->cols; j++)
            put(x, i, j, alpha * get(x, i, j));
    return MU_OK;
}

mu_status_t mu_ref_add_identity(mu_backend_t *be, double alpha, mu_mat_t *x)
{
    (void)be;
    for (int64_t i = 0; i < x->rows; i++)
        put(x, i, i, get(x, i, i) + alpha);
    return MU_OK;
}

mu_status_t mu_ref_set_identity(mu_backend_t *be, double alpha, mu_mat_t *x)
{
    (void)be;
    for (int64_t i = 0; i < x->rows; i++)
        for (int64_t j = 0; j < x->cols; j++)
            put(x, i, j, i == j ? alpha : 0.0);
    return MU_OK;
}

mu_status_t mu_ref_fill(mu_backend_t *be, double value, mu_mat_t *x)
{
    (void)be;
    const size_t row_bytes = (size_t)x->cols * mu_dtype_size(x->dtype);
    for (int64_t i = 0; i < x->rows; i++) {
        char *row = (char *)x->data + (size_t)(i * x->ld) * mu_dtype_size(x->dtype);
        if (value == 0.0 && !signbit(value)) { /* all-zero bits in every dtype */
            memset(row, 0, row_bytes);
            continue;
        }
        for (int64_t j = 0; j < x->cols; j++)
            store(row, x->dtype, j, value);
    }
    return MU_OK;
}

/* sqrt(sum of squares) of x - shift*I, scaled by the largest magnitude so that fp64 data near
 * the overflow threshold does not overflow while squaring (LAPACK's dlassq idea, two passes). */
static double norm_of_shifted(const mu_mat_t *x, double shift)
{
    double biggest = 0.0;
    for (int64_t i = 0; i < x->rows; i++)
        for (int64_t j = 0; j < x->cols; j++)
            biggest = fmax(biggest, fabs(get(x, i, j) - (i == j ? shift : 0.0)));
    if (biggest == 0.0 || !isfinite(biggest))
        return biggest;
    double sum = 0.0;
    for (int64_t i = 0; i < x->rows; i++)
        for (int64_t j = 0; j < x->cols; j++) {
            const double v = (get(x, i, j) - (i == j ? shift : 0.0)) / biggest;
            sum += v * v;
        }
    return biggest * sqrt(sum);
}

mu_status_t mu_ref_norm_frob(mu_backend_t *be, const mu_mat_t *x, double *out)
{
    (void)be;
    *out = norm_of_shifted(x, 0.0);
    return MU_OK;
}

mu_status_t mu_ref_dist_identity(mu_backend_t *be, const mu_mat_t *x, double *out)
{
    (void)be;
    *out = norm_of_shifted(x, 1.0);
    return MU_OK;
}

mu_status_t mu_ref_count_nonfinite(mu_backend_t *be, const mu_mat_t *x, int64_t *out)
{
    (void)be;
    int64_t count = 0;
    for (int64_t i = 0; i < x->rows; i++)
        for (int64_t j = 0; j < x->cols; j++)
            count += !isfinite(get(x, i, j));
    *out = count;
    return MU_OK;
}

mu_status_t mu_ref_synchronize(mu_backend_t *be)
{
    (void)be;
    return MU_OK;
}

bool mu_host_backend_can_use(char *why, size_t why_len)
{
    (void)why;
    (void)why_len;
    return true;
}

mu_status_t mu_host_backend_init(mu_backend_t *be)
{
    be->state = NULL;
    return MU_OK;
}

void mu_host_backend_fini(mu_backend_t *be)
{
    (void)be;
}

static void ref_describe(const mu_backend_t *be, char *out, size_t out_len)
{
    (void)be;
    snprintf(out, out_len, "reference (plain loops, fp64 accumulation; a test oracle, slow)");
}

const struct mu_kernel_ops mu_reference_ops = {
    .name = "reference",
    .host_memory = true,
    /* bf16 operands, fp64 accumulation, results rounded to bf16: the oracle for the fast
     * backends' bf16 (fp32 accumulation), and never chosen by "auto" for bf16 work. */
    .bf16_compute = true,
    .oracle = true,
    .can_use = mu_host_backend_can_use,
    .init = mu_host_backend_init,
    .fini = mu_host_backend_fini,
    .describe = ref_describe,
    .alloc = mu_ref_alloc,
    .release = mu_ref_release,
    .upload = mu_ref_upload,
    .download = mu_ref_download,
    .copy = mu_ref_copy,
    .gemm = mu_ref_gemm,
    .syrk = mu_ref_syrk,
    .symmetrize = mu_ref_symmetrize,
    .axpby = mu_ref_axpby,
    .scale = mu_ref_scale,
    .add_identity = mu_ref_add_identity,
    .set_identity = mu_ref_set_identity,
    .fill = mu_ref_fill,
    .norm_frob = mu_ref_norm_frob,
    .dist_identity = mu_ref_dist_identity,
    .count_nonfinite = mu_ref_count_nonfinite,
    .synchronize = mu_ref_synchronize,
    .momentum = mu_ref_momentum,
    .apply_update = mu_ref_apply_update,
    .adamw = mu_ref_adamw,
};
