/*
 * SPD inverse roots on the BLACS grid: y = a^(-1/p) b (fallback/fallback.h).
 *
 * The owner's row-major n x k B, read column-major, is B^T (k x n); A is symmetric, so it reads
 * the same either way. The solvers want B as an n x k column-major matrix, so B^T is
 * distributed and transposed with pdtran, and the result transposed back before it returns.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/clock.h"
#include "fallback/fallback_impl.h"
#include "kernels/spectrum.h"

/* The right-hand side as a distributed n x k column-major matrix. */
static mu_status_t right_hand_side(const mu_fallback_t *fb, int owner, int n, int k,
                                   const double *b, bool identity, dist_t *out)
{
    dist_t bt = {0};
    mu_status_t status = mu_dist_create(fb, n, k, out);
    if (status == MU_OK && !identity)
        status = mu_dist_create(fb, k, n, &bt);
    status = mu_comm_agree(fb->comm, status);
    const int one = 1;
    if (status == MU_OK && identity) {
        const double zero = 0.0, unit = 1.0;
        pdlaset_("A", &n, &n, &zero, &unit, out->local, &one, &one, out->desc, 1);
    } else if (status == MU_OK) {
        status = mu_dist_scatter(fb, owner, b, &bt);
        const double alpha = 1.0, beta = 0.0;
        pdtran_(&n, &k, &alpha, bt.local, &one, &one, bt.desc, &beta, out->local, &one, &one,
                out->desc);
    }
    mu_dist_free(&bt);
    return status;
}

/* Transposes the n x k result back and delivers it to the owner as row-major n x k. */
static mu_status_t deliver(const mu_fallback_t *fb, int owner, const dist_t *x, double *y)
{
    dist_t xt = {0};
    const int one = 1;
    const double alpha = 1.0, beta = 0.0;
    mu_status_t status = mu_comm_agree(fb->comm, mu_dist_create(fb, x->n, x->m, &xt));
    if (status == MU_OK) {
        pdtran_(&xt.m, &xt.n, &alpha, x->local, &one, &one, x->desc, &beta, xt.local, &one, &one,
                xt.desc);
        status = mu_dist_gather(fb, owner, &xt, y);
    }
    mu_dist_free(&xt);
    return status;
}

/* The owner's A on the grid. */
static mu_status_t distribute_a(const mu_fallback_t *fb, int owner, const double *a, int n,
                                dist_t *ad)
{
    mu_status_t status = mu_comm_agree(fb->comm, mu_dist_create(fb, n, n, ad));
    return status == MU_OK ? mu_dist_scatter(fb, owner, a, ad) : status;
}

/* LU with partial pivoting, for an A that Cholesky found not positive definite. */
static mu_status_t lu_solve(const mu_fallback_t *fb, int owner, const double *a, dist_t *x)
{
    const int n = x->m, k = x->n, one = 1;
    dist_t ad = {0};
    int *pivots = NULL, info = 0;
    mu_status_t status = distribute_a(fb, owner, a, n, &ad);
    if (status == MU_OK) {
        pivots = malloc(sizeof *pivots * (size_t)(ad.local_rows + MU_BLOCK));
        status = mu_comm_agree(fb->comm,
                               pivots ? MU_OK : mu_error(MU_ERR_NOMEM, "fallback: pivots"));
    }
    if (status == MU_OK) {
        pdgesv_(&n, &k, ad.local, &one, &one, ad.desc, pivots, x->local, &one, &one, x->desc,
                &info);
        status = mu_fallback_info(fb, info, "pdgesv");
    }
    free(pivots);
    mu_dist_free(&ad);
    return status;
}

/* p = 1: Cholesky (pdposv); if A is not positive definite, LU (pdgesv). */
static mu_status_t solve(const mu_fallback_t *fb, int owner, const double *a, dist_t *x,
                         mu_fallback_report_t *rep)
{
    const int n = x->m, k = x->n, one = 1;
    dist_t ad = {0};
    int info = 0;
    rep->route = MU_FALLBACK_CHOLESKY;
    mu_status_t status = distribute_a(fb, owner, a, n, &ad);
    if (status == MU_OK) {
        pdposv_("U", &n, &k, ad.local, &one, &one, ad.desc, x->local, &one, &one, x->desc, &info,
                1);
        status = mu_fallback_info(fb, info, "pdposv");
    }
    mu_dist_free(&ad);
    if (status == MU_ERR_NUMERIC) { /* the factorization stopped before x was touched */
        mu_error_clear();
        rep->route = MU_FALLBACK_LU;
        status = lu_solve(fb, owner, a, x);
    }
    return status;
}

/* p = 2, 4: A = Z L Z^T, A^(-1/p) X = (Z L^(-1/2p)) (Z L^(-1/2p))^T X. */
static mu_status_t eigen_root(const mu_fallback_t *fb, int owner, const double *a, int p,
                              dist_t *x)
{
    const int n = x->m, k = x->n, one = 1;
    const double alpha = 1.0, beta = 0.0;
    dist_t ad = {0}, z = {0}, t = {0};
    double *w = malloc(sizeof *w * (size_t)n);
    mu_status_t status = w ? MU_OK : mu_error(MU_ERR_NOMEM, "fallback: cannot allocate");
    MU_TRY(status, mu_dist_create(fb, n, n, &z));
    MU_TRY(status, mu_dist_create(fb, n, k, &t));
    status = mu_comm_agree(fb->comm, status);
    MU_TRY(status, distribute_a(fb, owner, a, n, &ad));
    MU_TRY(status, mu_dist_symmetric_eigen(fb, &ad, &z, w));
    if (status == MU_OK && !(w[0] > 0.0)) /* w is agreed (mu_dist_symmetric_eigen) */
        status = mu_error(MU_ERR_NUMERIC, "fallback: A is not positive definite (smallest "
                                          "eigenvalue %g)", w[0]);
    if (status == MU_OK) {
        for (int i = 0; i < n; i++)
            w[i] = pow(w[i], -0.5 / p);
        mu_dist_scale_columns(fb, &z, w);
        pdgemm_("T", "N", &n, &k, &n, &alpha, z.local, &one, &one, z.desc, x->local, &one, &one,
                x->desc, &beta, t.local, &one, &one, t.desc, 1, 1);
        pdgemm_("N", "N", &n, &k, &n, &alpha, z.local, &one, &one, z.desc, t.local, &one, &one,
                t.desc, &beta, x->local, &one, &one, x->desc, 1, 1);
    }
    free(w);
    mu_dist_free(&ad);
    mu_dist_free(&z);
    mu_dist_free(&t);
    return status;
}

static mu_status_t distributed_root(mu_fallback_t *fb, int owner, int n, int k, const double *a,
                                    const double *b, int p, double *y, mu_fallback_report_t *rep)
{
    MU_CHECK(mu_fallback_ensure_grid(fb));
    rep->nprow = fb->nprow;
    rep->npcol = fb->npcol;
    rep->route = p == 1 ? MU_FALLBACK_CHOLESKY : MU_FALLBACK_EIGEN;
    /* only the owner knows whether b is the identity; every rank must take the same branch */
    int64_t owner_has_b = mu_comm_rank(fb->comm) == owner && b;
    MU_CHECK(mu_comm_allreduce(fb->comm, &owner_has_b, 1, MU_COMM_I64, MU_COMM_MAX));
    if (!owner_has_b && k != n)
        return mu_error(MU_ERR_INVALID, "fallback: no right-hand side, but k %d != n %d", k, n);
    dist_t x = {0};
    mu_status_t status = right_hand_side(fb, owner, n, k, b, !owner_has_b, &x);
    if (p == 1)
        MU_TRY(status, solve(fb, owner, a, &x, rep));
    else
        MU_TRY(status, eigen_root(fb, owner, a, p, &x));
    MU_TRY(status, deliver(fb, owner, &x, y));
    mu_dist_free(&x);
    return status;
}

mu_status_t mu_fallback_spd_inv_root(mu_fallback_t *fb, int owner, int64_t n, int64_t k,
                                     const double *a, const double *b, int p, double *y,
                                     mu_fallback_report_t *report)
{
    mu_fallback_report_t local;
    mu_fallback_report_t *rep = report ? report : &local;
    *rep = (mu_fallback_report_t){.route = MU_FALLBACK_LAPACK, .nprow = 1, .npcol = 1, .rank = n};
    /* shape and p are the same on every rank; pointers are the owner's alone (checked later) */
    if (!fb || n < 1 || k < 1 || n > INT32_MAX || k > INT32_MAX || (p != 1 && p != 2 && p != 4) ||
        (fb->host_only && !b && k != n))
        return mu_error(MU_ERR_INVALID, "fallback: bad SPD root arguments (n %lld, k %lld, p %d)",
                        (long long)n, (long long)k, p);
    const double start = mu_seconds();
    mu_status_t status = fb->host_only
                             ? mu_host_spd_inv_root(a, b, n, k, p, y)
                             : distributed_root(fb, owner, (int)n, (int)k, a, b, p, y, rep);
    rep->seconds = mu_seconds() - start;
    return status;
}
