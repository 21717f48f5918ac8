/*
 * The exact polar factor on the BLACS grid (fallback/fallback.h).
 *
 * Orientation: ScaLAPACK is column-major. The owner's row-major rows x cols G, read
 * column-major, is G^T (cols x rows); since polar(G^T) = polar(G)^T, computing the polar factor
 * of that column-major matrix and writing it back in place gives polar(G) in row-major, with no
 * transposition anywhere.
 *
 * Allocation failures are agreed (mu_comm_agree) before the next collective call, so that one
 * rank short of memory makes every rank return instead of leaving the others waiting.
 */
#include <float.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>

#include "core/clock.h"
#include "core/fault.h"
#include "fallback/fallback_impl.h"
#include "kernels/spectrum.h"

/* Gram route only when the squared condition number costs at most ~u / 1e-5 = 1e-11. */
static const double GRAM_MIN_EIGEN_RATIO = 1e-5;

/* pdgesvd's workspace; NULL when out of memory, or when a fallback-nomem fault says so. */
static double *svd_workspace(const mu_fallback_t *fb, int lwork)
{
    if (mu_fault_fire(MU_FAULT_FALLBACK_NOMEM, mu_comm_rank(fb->comm), fb->step, NULL))
        return NULL;
    return malloc(sizeof(double) * (size_t)lwork);
}

/* pdgesvd of a (destroyed): s, u and vt out. */
static mu_status_t svd(const mu_fallback_t *fb, dist_t *a, double *s, dist_t *u, dist_t *vt)
{
    const int m = a->m, n = a->n, one = 1;
    int lwork = -1, info = 0;
    double query = 0.0;
    pdgesvd_("V", "V", &m, &n, a->local, &one, &one, a->desc, s, u->local, &one, &one, u->desc,
             vt->local, &one, &one, vt->desc, &query, &lwork, &info, 1, 1);
    MU_CHECK(mu_fallback_info(fb, info, "pdgesvd (workspace query)"));
    lwork = (int)query + 1;
    double *work = svd_workspace(fb, lwork);
    const mu_status_t mine = work ? MU_OK
                                  : mu_error(MU_ERR_NOMEM,
                                             "fallback: no memory for pdgesvd's workspace "
                                             "(%lld bytes)",
                                             8LL * lwork);
    mu_status_t status = MU_OK;
    MU_TRY(status, mu_comm_agree(fb->comm, mine));
    if (status == MU_OK) {
        pdgesvd_("V", "V", &m, &n, a->local, &one, &one, a->desc, s, u->local, &one, &one, u->desc,
                 vt->local, &one, &one, vt->desc, work, &lwork, &info, 1, 1);
        status = mu_fallback_info(fb, info, "pdgesvd");
    }
    if (status == MU_OK) /* rank 0's singular values everywhere (see mu_dist_agree_values) */
        status = mu_dist_agree_values(fb, s, m < n ? m : n);
    free(work);
    return status;
}

/* Q = U[:, :r] VT[:r, :] with r the numerical rank (the same cut as mu_host_polar). */
static mu_status_t polar_by_svd(const mu_fallback_t *fb, dist_t *a, dist_t *q, int64_t *rank)
{
    const int m = a->m, n = a->n, k = m < n ? m : n, one = 1;
    dist_t u = {0}, vt = {0};
    double *s = malloc(sizeof *s * (size_t)k);
    mu_status_t status = s ? MU_OK : mu_error(MU_ERR_NOMEM, "fallback: cannot allocate");
    MU_TRY(status, mu_dist_create(fb, m, k, &u));
    MU_TRY(status, mu_dist_create(fb, k, n, &vt));
    status = mu_comm_agree(fb->comm, status);
    MU_TRY(status, svd(fb, a, s, &u, &vt));
    if (status == MU_OK) { /* s is agreed (svd), so is r */
        const double tol = (m > n ? m : n) * DBL_EPSILON * s[0];
        int r = 0;
        while (r < k && s[r] > tol)
            r++;
        *rank = r;
        const double alpha = 1.0, beta = 0.0;
        if (r > 0)
            pdgemm_("N", "N", &m, &n, &r, &alpha, u.local, &one, &one, u.desc, vt.local, &one, &one,
                    vt.desc, &beta, q->local, &one, &one, q->desc, 1, 1);
    }
    free(s);
    mu_dist_free(&u);
    mu_dist_free(&vt);
    return status;
}

/* half = Z diag(w^(-1/2)) Z^T = C^(-1/2), from the eigenpairs (z is scaled in place). */
static void inverse_square_root(const mu_fallback_t *fb, dist_t *z, double *w, dist_t *half)
{
    const int s = z->m, one = 1;
    const double alpha = 1.0, beta = 0.0;
    for (int i = 0; i < s; i++)
        w[i] = pow(w[i], -0.25); /* (Z L^(-1/4)) (Z L^(-1/4))^T: symmetric by construction */
    mu_dist_scale_columns(fb, z, w);
    pdgemm_("N", "T", &s, &s, &s, &alpha, z->local, &one, &one, z->desc, z->local, &one, &one,
            z->desc, &beta, half->local, &one, &one, half->desc, 1, 1);
}

/* Q = A C^(-1/2) (tall) or C^(-1/2) A (wide), C the short-side Gram matrix; *usable = false
 * when C is too ill-conditioned for this route (q is not written then; a is kept). */
static mu_status_t polar_by_gram(const mu_fallback_t *fb, const dist_t *a, dist_t *q, bool *usable)
{
    const int m = a->m, n = a->n, s = m < n ? m : n, one = 1;
    const bool tall = m >= n;
    const double alpha = 1.0, beta = 0.0;
    dist_t c = {0}, z = {0}, half = {0};
    double *w = malloc(sizeof *w * (size_t)s);
    mu_status_t status = w ? MU_OK : mu_error(MU_ERR_NOMEM, "fallback: cannot allocate");
    MU_TRY(status, mu_dist_create(fb, s, s, &c));
    MU_TRY(status, mu_dist_create(fb, s, s, &z));
    MU_TRY(status, mu_dist_create(fb, s, s, &half));
    status = mu_comm_agree(fb->comm, status);
    if (status == MU_OK) {
        const int k = tall ? m : n;
        pdsyrk_("U", tall ? "T" : "N", &s, &k, &alpha, a->local, &one, &one, a->desc, &beta,
                c.local, &one, &one, c.desc, 1, 1);
        status = mu_dist_symmetric_eigen(fb, &c, &z, w);
    }
    /* w is agreed (mu_dist_symmetric_eigen), so is the choice */
    *usable = status == MU_OK && w[s - 1] > 0.0 && w[0] >= GRAM_MIN_EIGEN_RATIO * w[s - 1];
    if (*usable) {
        inverse_square_root(fb, &z, w, &half);
        if (tall)
            pdgemm_("N", "N", &m, &n, &n, &alpha, a->local, &one, &one, a->desc, half.local, &one,
                    &one, half.desc, &beta, q->local, &one, &one, q->desc, 1, 1);
        else
            pdgemm_("N", "N", &m, &n, &m, &alpha, half.local, &one, &one, half.desc, a->local, &one,
                    &one, a->desc, &beta, q->local, &one, &one, q->desc, 1, 1);
    }
    free(w);
    mu_dist_free(&c);
    mu_dist_free(&z);
    mu_dist_free(&half);
    return status;
}

static mu_status_t distributed_polar(mu_fallback_t *fb, int owner, int m, int n, const double *g,
                                     double *q, mu_fallback_report_t *rep)
{
    dist_t a = {0}, result = {0};
    mu_status_t status = mu_dist_create(fb, m, n, &a);
    MU_TRY(status, mu_dist_create(fb, m, n, &result));
    status = mu_comm_agree(fb->comm, status);
    MU_TRY(status, mu_dist_scatter(fb, owner, g, &a));
    bool done = false;
    const int s = m < n ? m : n, l = m < n ? n : m;
    if (status == MU_OK && l >= 2 * s) { /* the Gram route pays off */
        rep->route = MU_FALLBACK_GRAM_EIGEN;
        rep->rank = s;
        MU_TRY(status, polar_by_gram(fb, &a, &result, &done));
        if (status == MU_ERR_NUMERIC) { /* the eigensolver gave up: the SVD may not */
            mu_error_clear();
            status = MU_OK;
        }
    }
    if (status == MU_OK && !done) {
        rep->route = MU_FALLBACK_SVD;
        MU_TRY(status, polar_by_svd(fb, &a, &result, &rep->rank));
    }
    MU_TRY(status, mu_dist_gather(fb, owner, &result, q));
    mu_dist_free(&a);
    mu_dist_free(&result);
    return status;
}

mu_status_t mu_fallback_polar(mu_fallback_t *fb, int owner, int64_t rows, int64_t cols,
                              const double *g, double *q, mu_fallback_report_t *report)
{
    mu_fallback_report_t local;
    mu_fallback_report_t *rep = report ? report : &local;
    *rep = (mu_fallback_report_t){.route = MU_FALLBACK_LAPACK, .nprow = 1, .npcol = 1, .rank = -1};
    if (!fb || rows < 1 || cols < 1 || rows > INT32_MAX || cols > INT32_MAX)
        return mu_error(MU_ERR_INVALID, "fallback: bad arguments (%lldx%lld)", (long long)rows,
                        (long long)cols);
    const double start = mu_seconds();
    mu_status_t status = MU_OK;
    if (fb->host_only) {
        MU_TRY(status, mu_host_polar(g, rows, cols, q));
    } else {
        MU_CHECK(mu_fallback_ensure_grid(fb));
        rep->nprow = fb->nprow;
        rep->npcol = fb->npcol;
        /* column-major view: cols x rows (see the top of the file) */
        MU_TRY(status, distributed_polar(fb, owner, (int)cols, (int)rows, g, q, rep));
    }
    rep->seconds = mu_seconds() - start;
    return status;
}
