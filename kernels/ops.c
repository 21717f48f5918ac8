/* Validation and dispatch for the kernel ops table (see kernels/ops.h). */
#include "kernels/backend_impl.h"

static mu_status_t check_backend(const mu_backend_t *be, const char *op)
{
    if (!be || !be->ops)
        return mu_error(MU_ERR_INVALID, "%s: null backend", op);
    return MU_OK;
}

static mu_status_t check_mat(const mu_mat_t *m, const char *op, const char *arg)
{
    if (!m)
        return mu_error(MU_ERR_INVALID, "%s: %s is null", op, arg);
    if (m->rows < 0 || m->cols < 0 || m->ld < m->cols || m->ld < 1)
        return mu_error(MU_ERR_INVALID, "%s: %s has a bad shape (%lld x %lld, ld %lld)", op, arg,
                        (long long)m->rows, (long long)m->cols, (long long)m->ld);
    if (!m->data && m->rows > 0 && m->cols > 0)
        return mu_error(MU_ERR_INVALID, "%s: %s has no data", op, arg);
    if (m->dtype != MU_DTYPE_F32 && m->dtype != MU_DTYPE_F64 && m->dtype != MU_DTYPE_BF16)
        return mu_error(MU_ERR_INVALID, "%s: %s has an unknown dtype", op, arg);
    return MU_OK;
}

/* Arithmetic runs in fp32 or fp64; bf16 is a storage type, except on backends that compute
 * on bf16 operands with fp32 accumulation (cuda; dnnl on CPUs with AVX512-BF16 or AMX). */
static mu_status_t check_compute(const mu_backend_t *be, const mu_mat_t *m, const char *op,
                                 const char *arg)
{
    MU_CHECK(check_mat(m, op, arg));
    if (m->dtype == MU_DTYPE_BF16 && !be->bf16_compute)
        return mu_error(MU_ERR_INVALID,
                        "%s: %s is bf16, a storage type on the %s backend; compute in fp32", op,
                        arg, be->ops->name);
    return MU_OK;
}

static mu_status_t check_same_dtype(const mu_mat_t *a, const mu_mat_t *b, const char *op)
{
    if (a->dtype != b->dtype)
        return mu_error(MU_ERR_INVALID, "%s: operands mix %s and %s", op, mu_dtype_name(a->dtype),
                        mu_dtype_name(b->dtype));
    return MU_OK;
}

static mu_status_t check_same_shape(const mu_mat_t *a, const mu_mat_t *b, const char *op)
{
    if (a->rows != b->rows || a->cols != b->cols)
        return mu_error(MU_ERR_INVALID, "%s: shapes differ (%lld x %lld vs %lld x %lld)", op,
                        (long long)a->rows, (long long)a->cols, (long long)b->rows,
                        (long long)b->cols);
    return MU_OK;
}

static mu_status_t check_square(const mu_mat_t *m, const char *op)
{
    if (m->rows != m->cols)
        return mu_error(MU_ERR_INVALID, "%s: matrix must be square, is %lld x %lld", op,
                        (long long)m->rows, (long long)m->cols);
    return MU_OK;
}

mu_status_t mu_k_alloc(mu_backend_t *be, int64_t rows, int64_t cols, mu_dtype_t dtype,
                       mu_mat_t *out)
{
    MU_CHECK(check_backend(be, "alloc"));
    if (!out || rows < 0 || cols < 0)
        return mu_error(MU_ERR_INVALID, "alloc: bad shape %lld x %lld", (long long)rows,
                        (long long)cols);
    return be->ops->alloc(be, rows, cols, dtype, out);
}

void mu_k_release(mu_backend_t *be, mu_mat_t *mat)
{
    if (be && be->ops && mat && mat->data)
        be->ops->release(be, mat);
}

mu_status_t mu_k_upload(mu_backend_t *be, const void *host, mu_dtype_t host_dtype, int64_t host_ld,
                        mu_mat_t *dst)
{
    MU_CHECK(check_backend(be, "upload"));
    MU_CHECK(check_mat(dst, "upload", "dst"));
    if ((!host && dst->rows * dst->cols > 0) || host_ld < dst->cols)
        return mu_error(MU_ERR_INVALID, "upload: bad host buffer");
    return be->ops->upload(be, host, host_dtype, host_ld, dst);
}

mu_status_t mu_k_download(mu_backend_t *be, const mu_mat_t *src, void *host, mu_dtype_t host_dtype,
                          int64_t host_ld)
{
    MU_CHECK(check_backend(be, "download"));
    MU_CHECK(check_mat(src, "download", "src"));
    if ((!host && src->rows * src->cols > 0) || host_ld < src->cols)
        return mu_error(MU_ERR_INVALID, "download: bad host buffer");
    return be->ops->download(be, src, host, host_dtype, host_ld);
}

mu_status_t mu_k_copy(mu_backend_t *be, const mu_mat_t *src, mu_mat_t *dst)
{
    MU_CHECK(check_backend(be, "copy"));
    MU_CHECK(check_mat(src, "copy", "src"));
    MU_CHECK(check_mat(dst, "copy", "dst"));
    MU_CHECK(check_same_shape(src, dst, "copy"));
    return be->ops->copy(be, src, dst);
}

static void op_shape(const mu_mat_t *m, mu_trans_t t, int64_t *rows, int64_t *cols)
{
    *rows = t == MU_TRANS ? m->cols : m->rows;
    *cols = t == MU_TRANS ? m->rows : m->cols;
}

mu_status_t mu_k_gemm(mu_backend_t *be, mu_trans_t trans_a, mu_trans_t trans_b, double alpha,
                      const mu_mat_t *a, const mu_mat_t *b, double beta, mu_mat_t *c)
{
    MU_CHECK(check_backend(be, "gemm"));
    MU_CHECK(check_compute(be, a, "gemm", "A"));
    MU_CHECK(check_compute(be, b, "gemm", "B"));
    MU_CHECK(check_compute(be, c, "gemm", "C"));
    MU_CHECK(check_same_dtype(a, b, "gemm"));
    MU_CHECK(check_same_dtype(a, c, "gemm"));
    int64_t am, ak, bk, bn;
    op_shape(a, trans_a, &am, &ak);
    op_shape(b, trans_b, &bk, &bn);
    if (ak != bk || c->rows != am || c->cols != bn)
        return mu_error(MU_ERR_INVALID, "gemm: %lldx%lld times %lldx%lld into %lldx%lld",
                        (long long)am, (long long)ak, (long long)bk, (long long)bn,
                        (long long)c->rows, (long long)c->cols);
    if (a->data == c->data || b->data == c->data)
        return mu_error(MU_ERR_INVALID, "gemm: output aliases an input");
    return be->ops->gemm(be, trans_a, trans_b, alpha, a, b, beta, c);
}

mu_status_t mu_k_syrk(mu_backend_t *be, mu_trans_t trans, double alpha, const mu_mat_t *a,
                      double beta, mu_mat_t *c)
{
    MU_CHECK(check_backend(be, "syrk"));
    MU_CHECK(check_compute(be, a, "syrk", "A"));
    MU_CHECK(check_compute(be, c, "syrk", "C"));
    MU_CHECK(check_same_dtype(a, c, "syrk"));
    MU_CHECK(check_square(c, "syrk"));
    const int64_t n = trans == MU_TRANS ? a->cols : a->rows;
    if (c->rows != n)
        return mu_error(MU_ERR_INVALID, "syrk: A gives %lldx%lld, C is %lldx%lld", (long long)n,
                        (long long)n, (long long)c->rows, (long long)c->cols);
    if (a->data == c->data)
        return mu_error(MU_ERR_INVALID, "syrk: output aliases the input");
    return be->ops->syrk(be, trans, alpha, a, beta, c);
}

mu_status_t mu_k_symmetrize(mu_backend_t *be, mu_mat_t *c)
{
    MU_CHECK(check_backend(be, "symmetrize"));
    MU_CHECK(check_compute(be, c, "symmetrize", "C"));
    MU_CHECK(check_square(c, "symmetrize"));
    return be->ops->symmetrize(be, c);
}

mu_status_t mu_k_axpby(mu_backend_t *be, double alpha, const mu_mat_t *x, double beta, mu_mat_t *y)
{
    MU_CHECK(check_backend(be, "axpby"));
    MU_CHECK(check_compute(be, x, "axpby", "X"));
    MU_CHECK(check_compute(be, y, "axpby", "Y"));
    MU_CHECK(check_same_dtype(x, y, "axpby"));
    MU_CHECK(check_same_shape(x, y, "axpby"));
    return be->ops->axpby(be, alpha, x, beta, y);
}

mu_status_t mu_k_scale(mu_backend_t *be, double alpha, mu_mat_t *x)
{
    MU_CHECK(check_backend(be, "scale"));
    MU_CHECK(check_compute(be, x, "scale", "X"));
    return be->ops->scale(be, alpha, x);
}

mu_status_t mu_k_add_identity(mu_backend_t *be, double alpha, mu_mat_t *x)
{
    MU_CHECK(check_backend(be, "add_identity"));
    MU_CHECK(check_compute(be, x, "add_identity", "X"));
    MU_CHECK(check_square(x, "add_identity"));
    return be->ops->add_identity(be, alpha, x);
}

mu_status_t mu_k_set_identity(mu_backend_t *be, double alpha, mu_mat_t *x)
{
    MU_CHECK(check_backend(be, "set_identity"));
    MU_CHECK(check_compute(be, x, "set_identity", "X"));
    MU_CHECK(check_square(x, "set_identity"));
    return be->ops->set_identity(be, alpha, x);
}

mu_status_t mu_k_fill(mu_backend_t *be, double value, mu_mat_t *x)
{
    MU_CHECK(check_backend(be, "fill"));
    MU_CHECK(check_mat(x, "fill", "X"));
    return be->ops->fill(be, value, x);
}

mu_status_t mu_k_norm_frob(mu_backend_t *be, const mu_mat_t *x, double *out)
{
    MU_CHECK(check_backend(be, "norm_frob"));
    MU_CHECK(check_compute(be, x, "norm_frob", "X"));
    if (!out)
        return mu_error(MU_ERR_INVALID, "norm_frob: null output");
    return be->ops->norm_frob(be, x, out);
}

mu_status_t mu_k_dist_identity(mu_backend_t *be, const mu_mat_t *x, double *out)
{
    MU_CHECK(check_backend(be, "dist_identity"));
    MU_CHECK(check_compute(be, x, "dist_identity", "X"));
    MU_CHECK(check_square(x, "dist_identity"));
    if (!out)
        return mu_error(MU_ERR_INVALID, "dist_identity: null output");
    return be->ops->dist_identity(be, x, out);
}

mu_status_t mu_k_count_nonfinite(mu_backend_t *be, const mu_mat_t *x, int64_t *out)
{
    MU_CHECK(check_backend(be, "count_nonfinite"));
    MU_CHECK(check_mat(x, "count_nonfinite", "X"));
    if (!out)
        return mu_error(MU_ERR_INVALID, "count_nonfinite: null output");
    return be->ops->count_nonfinite(be, x, out);
}

mu_status_t mu_k_synchronize(mu_backend_t *be)
{
    MU_CHECK(check_backend(be, "synchronize"));
    return be->ops->synchronize(be);
}

static mu_status_t check_capture(mu_backend_t *be, const char *op)
{
    MU_CHECK(check_backend(be, op));
    if (!be->ops->capture_begin)
        return mu_error(MU_ERR_INVALID, "%s: the %s backend records no graphs", op,
                        be->ops->name);
    return MU_OK;
}

mu_status_t mu_k_capture_begin(mu_backend_t *be)
{
    MU_CHECK(check_capture(be, "capture_begin"));
    return be->ops->capture_begin(be);
}

mu_status_t mu_k_capture_end(mu_backend_t *be, mu_k_graph_t **out)
{
    MU_CHECK(check_capture(be, "capture_end"));
    *out = NULL;
    return be->ops->capture_end(be, out);
}

mu_status_t mu_k_replay(mu_backend_t *be, mu_k_graph_t *graph)
{
    MU_CHECK(check_capture(be, "replay"));
    if (!graph)
        return mu_error(MU_ERR_INVALID, "replay: null graph");
    return be->ops->replay(be, graph);
}

void mu_k_graph_destroy(mu_backend_t *be, mu_k_graph_t **graph)
{
    if (be && graph && *graph && be->ops->graph_destroy)
        be->ops->graph_destroy(be, *graph);
    if (graph)
        *graph = NULL;
}

mu_status_t mu_k_momentum(mu_backend_t *be, double beta, bool nesterov, const mu_mat_t *g,
                          mu_mat_t *m, mu_mat_t *u)
{
    MU_CHECK(check_backend(be, "momentum"));
    MU_CHECK(check_compute(be, g, "momentum", "G"));
    MU_CHECK(check_compute(be, m, "momentum", "M"));
    MU_CHECK(check_compute(be, u, "momentum", "U"));
    MU_CHECK(check_same_dtype(g, m, "momentum"));
    MU_CHECK(check_same_dtype(g, u, "momentum"));
    MU_CHECK(check_same_shape(g, m, "momentum"));
    MU_CHECK(check_same_shape(g, u, "momentum"));
    return be->ops->momentum(be, beta, nesterov, g, m, u);
}

mu_status_t mu_k_apply_update(mu_backend_t *be, double lr, double wd, double scale,
                              const mu_mat_t *o, mu_mat_t *w)
{
    MU_CHECK(check_backend(be, "apply_update"));
    MU_CHECK(check_compute(be, o, "apply_update", "O"));
    MU_CHECK(check_compute(be, w, "apply_update", "W"));
    MU_CHECK(check_same_dtype(o, w, "apply_update"));
    MU_CHECK(check_same_shape(o, w, "apply_update"));
    return be->ops->apply_update(be, lr, wd, scale, o, w);
}

mu_status_t mu_k_adamw(mu_backend_t *be, const mu_adamw_hyper_t *h, const mu_mat_t *g, mu_mat_t *w,
                       mu_mat_t *m1, mu_mat_t *m2)
{
    MU_CHECK(check_backend(be, "adamw"));
    if (!h || h->step < 1)
        return mu_error(MU_ERR_INVALID, "adamw: hyper-parameters missing or step < 1");
    const mu_mat_t *all[] = {g, w, m1, m2};
    for (int i = 0; i < 4; i++) {
        MU_CHECK(check_compute(be, all[i], "adamw", "operand"));
        MU_CHECK(check_same_dtype(g, all[i], "adamw"));
        MU_CHECK(check_same_shape(g, all[i], "adamw"));
    }
    return be->ops->adamw(be, h, g, w, m1, m2);
}
