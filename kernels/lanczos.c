#include "kernels/lanczos.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>

#include "kernels/probes.h"
#include "kernels/schedule.h"

/* A recurrence stops when the new direction is this small against the Ritz values: the
 * Krylov space is then invariant up to round-off (fp32 products carry ~1e-7 noise, which a
 * normalized w would turn into a spurious direction), and the Ritz values are within this of
 * the operator's. */
static const double LANCZOS_BREAKDOWN = 1e-3;

static double *vec(const mu_lanczos_t *lz, int i, int j)
{
    return lz->basis + ((size_t)i * (size_t)lz->k + (size_t)j) * (size_t)lz->n;
}

/* w <- w - (projections on all vectors 0..i of column j); returns ||w||. Classical
 * Gram-Schmidt twice (Giraud et al.: as good as modified Gram-Schmidt twice), so that both
 * passes are matrix-vector products: at n = 256 the recurrences' host arithmetic was half
 * of the adaptive sample's time as scalar dot products. */
static double orthogonalize(const mu_lanczos_t *lz, int i, int j, double *w)
{
    const int n = (int)lz->n, ld = lz->k * (int)lz->n;
    double c[MU_SCHEDULE_MAX_ITERS + 1];
    for (int pass = 0; pass < 2; pass++) {
        cblas_dgemv(CblasRowMajor, CblasNoTrans, i + 1, n, 1.0, vec(lz, 0, j), ld, w, 1, 0.0, c, 1);
        cblas_dgemv(CblasRowMajor, CblasTrans, i + 1, n, -1.0, vec(lz, 0, j), ld, c, 1, 1.0, w, 1);
    }
    return cblas_dnrm2(n, w, 1);
}

/* One step for every live column: z_j = (the operator) v_j came back in hz (n x k, row-major). */
static void advance(mu_lanczos_t *lz, const double *hz, double *w)
{
    const int i = lz->done;
    const int64_t n = lz->n;
    for (int j = 0; j < lz->k; j++) {
        if (lz->stopped[j])
            continue;
        const double *v = vec(lz, i, j);
        double alpha = 0.0;
        for (int64_t t = 0; t < n; t++) {
            w[t] = hz[t * lz->k + j];
            alpha += w[t] * v[t];
        }
        lz->alpha[i * lz->k + j] = alpha;
        lz->count[j] = i + 1;
        const double beta = orthogonalize(lz, i, j, w);
        if (!(beta > LANCZOS_BREAKDOWN * fabs(alpha)) || i + 1 >= n || i + 1 >= lz->steps) {
            lz->stopped[j] = true;
            continue;
        }
        lz->beta[i * lz->k + j] = beta;
        double *next = vec(lz, i + 1, j);
        for (int64_t t = 0; t < n; t++)
            next[t] = w[t] / beta;
    }
    lz->done++;
}

static mu_status_t init(mu_lanczos_t *lz, int64_t n, int k, int steps, const double *start,
                        int stride)
{
    *lz = (mu_lanczos_t){.k = k, .steps = steps, .n = n};
    lz->basis = malloc((size_t)(steps + 1) * (size_t)k * (size_t)n * sizeof *lz->basis);
    lz->alpha = calloc((size_t)(steps * k), sizeof *lz->alpha);
    lz->beta = calloc((size_t)(steps * k), sizeof *lz->beta);
    lz->count = calloc((size_t)k, sizeof *lz->count);
    lz->stopped = calloc((size_t)k, sizeof *lz->stopped);
    if (!lz->basis || !lz->alpha || !lz->beta || !lz->count || !lz->stopped)
        return mu_error(MU_ERR_NOMEM, "lanczos: cannot allocate %d vectors of %lld",
                        (steps + 1) * k, (long long)n);
    for (int j = 0; j < k; j++) {
        const double norm = mu_probes_column_norm(start, n, stride, j);
        for (int64_t t = 0; t < n; t++)
            vec(lz, 0, j)[t] = start[t * stride + j] / norm;
    }
    return MU_OK;
}

/* The current vectors of all columns as a row-major n x k block. */
static void current_block(const mu_lanczos_t *lz, double *out)
{
    for (int j = 0; j < lz->k; j++) {
        const double *v = vec(lz, lz->stopped[j] ? 0 : lz->done, j);
        for (int64_t t = 0; t < lz->n; t++)
            out[t * lz->k + j] = v[t];
    }
}

static bool live(const mu_lanczos_t *lz)
{
    for (int j = 0; j < lz->k; j++)
        if (!lz->stopped[j])
            return true;
    return false;
}

/* The device block (v: n x k; y: M's rows x k, for M^T M; z: n x k) and the host's copies. */
typedef struct block_work {
    mu_mat_t v, y, z;
    double *hx, *hz, *hw;
} block_work_t;

static mu_status_t alloc_block_work(mu_backend_t *be, const mu_mat_t *m, mu_lanczos_operator_t op,
                                    int k, block_work_t *w)
{
    const int64_t n = m->cols;
    MU_CHECK(mu_k_alloc(be, n, k, m->dtype, &w->v));
    if (op == MU_LANCZOS_GRAM)
        MU_CHECK(mu_k_alloc(be, m->rows, k, m->dtype, &w->y));
    MU_CHECK(mu_k_alloc(be, n, k, m->dtype, &w->z));
    w->hx = malloc((size_t)n * (size_t)k * sizeof *w->hx);
    w->hz = malloc((size_t)n * (size_t)k * sizeof *w->hz);
    w->hw = malloc((size_t)n * sizeof *w->hw);
    if (!w->hx || !w->hz || !w->hw)
        return mu_error(MU_ERR_NOMEM, "lanczos: cannot allocate a %lld x %d block", (long long)n,
                        k);
    return MU_OK;
}

static void release_block_work(mu_backend_t *be, block_work_t *w)
{
    mu_k_release(be, &w->v);
    mu_k_release(be, &w->y);
    mu_k_release(be, &w->z);
    free(w->hx);
    free(w->hz);
    free(w->hw);
}

/* z = (the operator) v. */
static mu_status_t apply(mu_backend_t *be, const mu_mat_t *m, mu_lanczos_operator_t op,
                         block_work_t *w)
{
    if (op == MU_LANCZOS_SYMMETRIC)
        return mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, m, &w->v, 0.0, &w->z);
    MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, m, &w->v, 0.0, &w->y));
    return mu_k_gemm(be, MU_TRANS, MU_NO_TRANS, 1.0, m, &w->y, 0.0, &w->z);
}

static mu_status_t run(mu_backend_t *be, const mu_mat_t *m, mu_lanczos_operator_t op,
                       block_work_t *w, mu_lanczos_t *lz)
{
    while (live(lz)) {
        current_block(lz, w->hx);
        MU_CHECK(mu_k_upload(be, w->hx, MU_DTYPE_F64, lz->k, &w->v));
        MU_CHECK(apply(be, m, op, w));
        MU_CHECK(mu_k_download(be, &w->z, w->hz, MU_DTYPE_F64, lz->k));
        advance(lz, w->hz, w->hw);
    }
    return MU_OK;
}

mu_status_t mu_lanczos_run(mu_backend_t *be, const mu_mat_t *m, mu_lanczos_operator_t op,
                           const double *start, int stride, int k, int steps, mu_lanczos_t *out)
{
    *out = (mu_lanczos_t){0};
    if (!be || !m || !start || k < 1 || k > stride || steps < 1 || steps > MU_SCHEDULE_MAX_ITERS ||
        (op == MU_LANCZOS_SYMMETRIC && m->rows != m->cols))
        return mu_error(MU_ERR_INVALID, "lanczos: bad arguments");
    MU_CHECK(init(out, m->cols, k, steps, start, stride));
    block_work_t w = {0};
    mu_status_t status = alloc_block_work(be, m, op, k, &w);
    if (status == MU_OK)
        status = run(be, m, op, &w, out);
    release_block_work(be, &w);
    return status;
}

static int tridiagonal(const mu_lanczos_t *lz, int j, double *d, double *e)
{
    const int n = lz->count[j];
    for (int i = 0; i < n; i++) {
        d[i] = lz->alpha[i * lz->k + j];
        e[i] = i + 1 < n ? lz->beta[i * lz->k + j] : 0.0;
    }
    return n;
}

double mu_lanczos_largest(const mu_lanczos_t *lz, int j)
{
    double d[MU_SCHEDULE_MAX_ITERS], e[MU_SCHEDULE_MAX_ITERS];
    const int n = tridiagonal(lz, j, d, e);
    if (n == 0 || LAPACKE_dstev(LAPACK_COL_MAJOR, 'N', n, d, e, NULL, 1) != 0)
        return NAN;
    return d[n - 1];
}

int mu_lanczos_quadrature(const mu_lanczos_t *lz, int j, double *nodes, double *weights)
{
    double e[MU_SCHEDULE_MAX_ITERS], z[MU_SCHEDULE_MAX_ITERS * MU_SCHEDULE_MAX_ITERS];
    const int n = tridiagonal(lz, j, nodes, e);
    if (n == 0 || LAPACKE_dstev(LAPACK_COL_MAJOR, 'V', n, nodes, e, z, n) != 0)
        return 0;
    for (int i = 0; i < n; i++)
        weights[i] = z[(size_t)i * (size_t)n] * z[(size_t)i * (size_t)n]; /* row 0, column i */
    return n;
}

void mu_lanczos_free(mu_lanczos_t *lz)
{
    free(lz->basis);
    free(lz->alpha);
    free(lz->beta);
    free(lz->count);
    free(lz->stopped);
    *lz = (mu_lanczos_t){0};
}
