#include "kernels/spectrum.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static mu_status_t lapack_status(lapack_int info, const char *routine)
{
    if (info < 0) /* an illegal argument: our bug, never the data's */
        return mu_error(MU_ERR_SCALAPACK, "%s: argument %d is illegal", routine, (int)-info);
    if (info > 0)
        return mu_error(MU_ERR_NUMERIC, "%s: did not converge (info %d)", routine, (int)info);
    return MU_OK;
}

static mu_status_t duplicate(const double *a, size_t count, double **out)
{
    *out = malloc((count ? count : 1) * sizeof **out);
    if (!*out)
        return mu_error(MU_ERR_NOMEM, "cannot allocate %zu doubles", count);
    memcpy(*out, a, count * sizeof **out);
    return MU_OK;
}

mu_status_t mu_host_singular_values(const double *a, int64_t rows, int64_t cols, double *sigma)
{
    double *work;
    MU_CHECK(duplicate(a, (size_t)(rows * cols), &work));
    /* No vectors are computed, but LAPACKE 3.11 still checks ldu/ldvt against the matrix. */
    const lapack_int unused_ld = (lapack_int)(rows > cols ? rows : cols);
    const lapack_int info =
        LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'N', (lapack_int)rows, (lapack_int)cols, work,
                       (lapack_int)cols, sigma, NULL, unused_ld, NULL, unused_ld);
    free(work);
    return lapack_status(info, "dgesdd");
}

mu_status_t mu_host_orthogonality(const double *q, int64_t rows, int64_t cols,
                                  double *max_sigma_error, double *max_gram_error)
{
    const int64_t k = min64(rows, cols);
    double *sigma = malloc((size_t)k * sizeof *sigma);
    if (!sigma)
        return mu_error(MU_ERR_NOMEM, "cannot allocate %lld singular values", (long long)k);
    const mu_status_t status = mu_host_singular_values(q, rows, cols, sigma);
    double worst_sigma = 0.0, worst_gram = 0.0;
    for (int64_t i = 0; status == MU_OK && i < k; i++) {
        worst_sigma = fmax(worst_sigma, fabs(sigma[i] - 1.0));
        worst_gram = fmax(worst_gram, fabs(sigma[i] * sigma[i] - 1.0));
    }
    free(sigma);
    MU_CHECK(status);
    if (max_sigma_error)
        *max_sigma_error = worst_sigma;
    if (max_gram_error)
        *max_gram_error = worst_gram;
    return MU_OK;
}

mu_status_t mu_host_spectral_norm(const double *a, int64_t rows, int64_t cols, double *out)
{
    const int64_t k = min64(rows, cols);
    double *sigma = malloc((size_t)(k ? k : 1) * sizeof *sigma);
    if (!sigma)
        return mu_error(MU_ERR_NOMEM, "cannot allocate %lld singular values", (long long)k);
    const mu_status_t status = k ? mu_host_singular_values(a, rows, cols, sigma) : MU_OK;
    *out = (status == MU_OK && k) ? sigma[0] : 0.0;
    free(sigma);
    return status;
}

typedef struct svd_factors {
    double *u, *sigma, *vt; /* rows x k, k, k x cols */
    int64_t k;
} svd_factors_t;

static void free_factors(svd_factors_t *f)
{
    free(f->u);
    free(f->sigma);
    free(f->vt);
}

static mu_status_t thin_svd(const double *g, int64_t rows, int64_t cols, svd_factors_t *f)
{
    f->k = min64(rows, cols);
    f->u = malloc((size_t)(rows * f->k) * sizeof *f->u);
    f->sigma = malloc((size_t)f->k * sizeof *f->sigma);
    f->vt = malloc((size_t)(f->k * cols) * sizeof *f->vt);
    double *work = NULL;
    if (!f->u || !f->sigma || !f->vt)
        return mu_error(MU_ERR_NOMEM, "svd: cannot allocate factors of %lldx%lld", (long long)rows,
                        (long long)cols);
    MU_CHECK(duplicate(g, (size_t)(rows * cols), &work));
    const lapack_int info =
        LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', (lapack_int)rows, (lapack_int)cols, work,
                       (lapack_int)cols, f->sigma, f->u, (lapack_int)f->k, f->vt, (lapack_int)cols);
    free(work);
    return lapack_status(info, "dgesdd");
}

/* The numerical rank of singular values sigma (descending), by mu_host_polar's cut. */
static int64_t numerical_rank(const double *sigma, int64_t k, int64_t rows, int64_t cols)
{
    const double tol = (double)(rows > cols ? rows : cols) * DBL_EPSILON * (k ? sigma[0] : 0.0);
    int64_t r = 0;
    while (r < k && sigma[r] > tol)
        r++;
    return r;
}

/* q = U[:, :r] V^T[:r, :] from g's thin SVD; returns r. */
static int64_t polar_from_factors(const svd_factors_t *f, int64_t rows, int64_t cols, double *q)
{
    const int64_t r = numerical_rank(f->sigma, f->k, rows, cols);
    memset(q, 0, (size_t)(rows * cols) * sizeof *q);
    if (r > 0)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)cols, (int)r, 1.0,
                    f->u, (int)f->k, f->vt, (int)cols, 0.0, q, (int)cols);
    return r;
}

mu_status_t mu_host_polar(const double *g, int64_t rows, int64_t cols, double *q)
{
    svd_factors_t f = {0};
    mu_status_t status = MU_OK;
    MU_TRY(status, thin_svd(g, rows, cols, &f));
    if (status == MU_OK)
        polar_from_factors(&f, rows, cols, q);
    free_factors(&f);
    return status;
}

mu_status_t mu_host_descent(const double *g, const double *q, int64_t rows, int64_t cols,
                            mu_host_descent_t *out)
{
    const size_t n = (size_t)(rows * cols);
    *out = (mu_host_descent_t){0};
    svd_factors_t f = {0};
    double *error = malloc((n + 1) * sizeof *error);
    mu_status_t status = error ? MU_OK
                               : mu_error(MU_ERR_NOMEM,
                                          "descent: cannot allocate for a %lldx%lld "
                                          "matrix",
                                          (long long)rows, (long long)cols);
    MU_TRY(status, thin_svd(g, rows, cols, &f)); /* one SVD of G: its sigma and its polar */
    if (status == MU_OK) {
        out->rank = polar_from_factors(&f, rows, cols, error);
        for (int64_t i = 0; i < f.k; i++)
            out->nuclear += f.sigma[i];
        for (size_t i = 0; i < n; i++) {
            out->descent += q[i] * g[i];
            error[i] = q[i] - error[i]; /* Q - U_r V_r^T */
        }
        out->efficiency = out->nuclear > 0.0 ? out->descent / out->nuclear : 0.0;
    }
    MU_TRY(status, mu_host_spectral_norm(error, rows, cols, &out->polar_error));
    MU_TRY(status, mu_host_spectral_norm(q, rows, cols, &out->q_norm));
    free_factors(&f);
    free(error);
    return status;
}

mu_status_t mu_host_random_orthonormal(int64_t rows, int64_t cols, uint64_t seed, uint64_t stream,
                                       double *out)
{
    if (rows < cols)
        return mu_error(MU_ERR_INVALID, "random orthonormal: need rows >= cols, got %lldx%lld",
                        (long long)rows, (long long)cols);
    for (int64_t i = 0; i < rows * cols; i++)
        out[i] = mu_rng_normal(seed, stream, (uint64_t)i);
    double *tau = malloc((size_t)(cols ? cols : 1) * sizeof *tau);
    if (!tau)
        return mu_error(MU_ERR_NOMEM, "random orthonormal: cannot allocate");
    lapack_int info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (lapack_int)rows, (lapack_int)cols, out,
                                     (lapack_int)cols, tau);
    if (info == 0)
        info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (lapack_int)rows, (lapack_int)cols,
                              (lapack_int)cols, out, (lapack_int)cols, tau);
    free(tau);
    return lapack_status(info, "dgeqrf/dorgqr");
}

mu_status_t mu_host_compose_svd(int64_t rows, int64_t cols, int64_t r, const double *u,
                                const double *sigma, const double *v, double *out)
{
    double *scaled = malloc((size_t)(rows * r + 1) * sizeof *scaled);
    if (!scaled)
        return mu_error(MU_ERR_NOMEM, "compose: cannot allocate %lldx%lld", (long long)rows,
                        (long long)r);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t k = 0; k < r; k++)
            scaled[i * r + k] = u[i * r + k] * sigma[k];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)cols, (int)r, 1.0, scaled,
                (int)(r ? r : 1), v, (int)(r ? r : 1), 0.0, out, (int)cols);
    free(scaled);
    return MU_OK;
}

mu_status_t mu_host_random_with_condition(int64_t rows, int64_t cols, double kappa, uint64_t seed,
                                          double *out)
{
    if (!(kappa >= 1.0))
        return mu_error(MU_ERR_INVALID, "condition number must be >= 1, got %g", kappa);
    const int64_t r = min64(rows, cols);
    double *u = malloc((size_t)(rows * r) * sizeof *u);
    double *v = malloc((size_t)(cols * r) * sizeof *v);
    double *sigma = malloc((size_t)r * sizeof *sigma);
    mu_status_t status = MU_OK;
    if (!u || !v || !sigma) {
        status = mu_error(MU_ERR_NOMEM, "cannot allocate the factors of a %lldx%lld matrix",
                          (long long)rows, (long long)cols);
        goto out_with_factors;
    }
    for (int64_t i = 0; i < r; i++)
        sigma[i] = r == 1 ? 1.0 : pow(kappa, -(double)i / (double)(r - 1));
    MU_CHECK_GOTO(status, mu_host_random_orthonormal(rows, r, seed, 1, u), out_with_factors);
    MU_CHECK_GOTO(status, mu_host_random_orthonormal(cols, r, seed, 2, v), out_with_factors);
    MU_CHECK_GOTO(status, mu_host_compose_svd(rows, cols, r, u, sigma, v, out), out_with_factors);
out_with_factors:
    free(u);
    free(v);
    free(sigma);
    return status;
}

static mu_status_t host_solve(const double *a, int64_t n, int64_t k, double *y)
{
    double *f = NULL;
    MU_CHECK(duplicate(a, (size_t)(n * n), &f));
    lapack_int info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', (lapack_int)n, (lapack_int)k, f,
                                    (lapack_int)n, y, (lapack_int)k);
    if (info > 0) { /* not positive definite: LU */
        lapack_int *pivots = malloc(sizeof *pivots * (size_t)n);
        memcpy(f, a, sizeof *f * (size_t)(n * n));
        info = pivots ? LAPACKE_dgesv(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)k, f,
                                      (lapack_int)n, pivots, y, (lapack_int)k)
                      : -1;
        free(pivots);
    }
    free(f);
    return lapack_status(info, "dposv/dgesv");
}

/* y = Z diag(w^(-1/p)) Z^T y for a = Z diag(w) Z^T. */
static mu_status_t host_eigen_root(const double *a, int64_t n, int64_t k, int p, double *y)
{
    double *z = NULL, *w = malloc(sizeof *w * (size_t)n), *t = malloc(sizeof *t * (size_t)(n * k));
    mu_status_t status = (w && t) ? duplicate(a, (size_t)(n * n), &z)
                                  : mu_error(MU_ERR_NOMEM, "spd root: cannot allocate");
    MU_TRY(status, lapack_status(LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)n, z,
                                                (lapack_int)n, w),
                                 "dsyevd"));
    if (status == MU_OK && !(w[0] > 0.0))
        status = mu_error(MU_ERR_NUMERIC, "spd root: not positive definite (smallest "
                          "eigenvalue %g)", w[0]);
    if (status == MU_OK) {
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)k, (int)n, 1.0, z,
                    (int)n, y, (int)k, 0.0, t, (int)k);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < k; j++)
                t[i * k + j] *= pow(w[i], -1.0 / p);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)k, (int)n, 1.0, z,
                    (int)n, t, (int)k, 0.0, y, (int)k);
    }
    free(z);
    free(w);
    free(t);
    return status;
}

mu_status_t mu_host_spd_inv_root(const double *a, const double *b, int64_t n, int64_t k, int p,
                                 double *y)
{
    if (!a || !y || n < 1 || k < 1 || (p != 1 && p != 2 && p != 4) || (!b && k != n))
        return mu_error(MU_ERR_INVALID, "spd root: bad arguments (n %lld, k %lld, p %d)",
                        (long long)n, (long long)k, p);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < k; j++)
            y[i * k + j] = b ? b[i * k + j] : (i == j ? 1.0 : 0.0);
    return p == 1 ? host_solve(a, n, k, y) : host_eigen_root(a, n, k, p, y);
}

mu_status_t mu_host_root_residual(const double *a, const double *x, int64_t n, int p, double *frob,
                                  double *spectral)
{
    const size_t count = (size_t)(n * n);
    double *xp = malloc(count * sizeof *xp), *r = malloc(count * sizeof *r);
    mu_status_t status = xp && r ? MU_OK : mu_error(MU_ERR_NOMEM, "root residual: no memory");
    if (status == MU_OK) {
        memcpy(xp, x, count * sizeof *xp);
        for (int e = 1; e < p; e *= 2) { /* xp <- xp^2 until xp = X^p */
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, xp, n, xp, n, 0.0,
                        r, n);
            memcpy(xp, r, count * sizeof *xp);
        }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, a, n, xp, n, 0.0, r,
                    n);
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++)
            r[i * n + i] -= 1.0;
        for (size_t i = 0; i < count; i++)
            sum += r[i] * r[i];
        *frob = sqrt(sum);
        status = mu_host_spectral_norm(r, n, n, spectral);
    }
    free(xp);
    free(r);
    return status;
}
