/*
 * Inverse p-th roots of SPD matrices (kernels/spd_root.h) against an fp64 eigendecomposition
 * (LAPACK dsyevd): A = Q diag(lambda) Q^T, A^(-1/p) B = Q diag(lambda^(-1/p)) Q^T B.
 *
 * Tolerance: round-off perturbs A by about u ||A||, which moves the smallest eigenvalue by a
 * relative u kappa and its root lambda^(-1/p), the largest part of the result, by u kappa / p.
 * Adding n u for the n-term sums: tol = 10 (kappa / p + n) u. Measured (n = 48, k = 7, fp64):
 * 1.2e-15 at kappa 1; at kappa 1e5, 2.2e-12 (p = 1), 1.1e-12 (p = 2), 4.6e-13 (p = 4) against
 * tolerances of 1.1e-10, 5.6e-11, 2.8e-11.
 */
#include <criterion/criterion.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "kernels/spd_root.h"
#include "kernels/spectrum.h"
#include "tests/support/harness.h"

static const double TOL_FACTOR = 10.0;

typedef struct spd_case {
    int n, k;
    double *a, *b;      /* n x n SPD, n x k */
    double *q, *lambda; /* eigenvectors (columns of q) and eigenvalues */
} spd_case_t;

static void make_case(int n, int k, double kappa, double scale, uint64_t seed, spd_case_t *c)
{
    *c = (spd_case_t){.n = n, .k = k};
    c->a = malloc(sizeof(double) * n * n);
    c->b = malloc(sizeof(double) * n * k);
    c->q = malloc(sizeof(double) * n * n);
    c->lambda = malloc(sizeof(double) * n);
    cr_assert_eq(mu_host_random_orthonormal(n, n, seed, 5, c->q), MU_OK);
    for (int i = 0; i < n; i++)
        c->lambda[i] = scale * (n == 1 ? 1.0 : pow(kappa, -(double)i / (n - 1)));
    cr_assert_eq(mu_host_compose_svd(n, n, n, c->q, c->lambda, c->q, c->a), MU_OK);
    for (int i = 0; i < n * k; i++)
        c->b[i] = mu_rng_normal(seed, 6, (uint64_t)i);
}

static void free_case(spd_case_t *c)
{
    free(c->a);
    free(c->b);
    free(c->q);
    free(c->lambda);
}

/* Q diag(lambda^(-1/p)) Q^T B in fp64 (B = I when b is NULL). */
static double *reference(const spd_case_t *c, int p, bool with_b)
{
    const int n = c->n, k = with_b ? c->k : n;
    double *out = calloc((size_t)n * k, sizeof(double));
    double *qtb = calloc((size_t)n * k, sizeof(double));
    for (int i = 0; i < n; i++) /* qtb = diag(lambda^-1/p) Q^T B */
        for (int j = 0; j < k; j++) {
            double sum = 0.0;
            for (int r = 0; r < n; r++)
                sum += c->q[r * n + i] * (with_b ? c->b[r * k + j] : (r == j ? 1.0 : 0.0));
            qtb[i * k + j] = sum * pow(c->lambda[i], -1.0 / p);
        }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) {
            double sum = 0.0;
            for (int r = 0; r < n; r++)
                sum += c->q[i * n + r] * qtb[r * k + j];
            out[i * k + j] = sum;
        }
    free(qtb);
    return out;
}

static double relative_error(const double *got, const double *want, size_t count)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < count; i++) {
        num += (got[i] - want[i]) * (got[i] - want[i]);
        den += want[i] * want[i];
    }
    return sqrt(num / den);
}

/* Runs the root on the backend; returns Y (fp64, malloc'ed). */
static double *run_root(mu_backend_t *be, const spd_case_t *c, const mu_spd_root_opts_t *o,
                        mu_dtype_t dt, bool with_b, mu_spd_root_report_t *rep, mu_status_t *status)
{
    const int n = c->n, k = with_b ? c->k : n;
    mu_mat_t a, b = {0}, y;
    cr_assert_eq(mu_k_alloc(be, n, n, dt, &a), MU_OK);
    cr_assert_eq(mu_k_alloc(be, n, k, dt, &y), MU_OK);
    cr_assert_eq(mu_k_upload(be, c->a, MU_DTYPE_F64, n, &a), MU_OK);
    if (with_b) {
        cr_assert_eq(mu_k_alloc(be, n, k, dt, &b), MU_OK);
        cr_assert_eq(mu_k_upload(be, c->b, MU_DTYPE_F64, k, &b), MU_OK);
    }
    *status = mu_spd_inv_root(be, &a, with_b ? &b : NULL, o, &y, rep);
    double *out = malloc(sizeof(double) * n * k);
    cr_assert_eq(mu_k_download(be, &y, out, MU_DTYPE_F64, k), MU_OK);
    mu_k_release(be, &a);
    mu_k_release(be, &b);
    mu_k_release(be, &y);
    return out;
}

static void check_root(int p, mu_dtype_t dt, double kappa, bool with_b, double scale)
{
    mu_backend_t *be = th_backend("cpu");
    spd_case_t c;
    make_case(48, 7, kappa, scale, 17, &c);
    mu_spd_root_opts_t o;
    mu_spd_root_opts_default(&o, p);
    mu_spd_root_report_t rep;
    mu_status_t status;
    double *y = run_root(be, &c, &o, dt, with_b, &rep, &status);
    cr_assert_eq(status, MU_OK, "p=%d kappa %g: %s", p, kappa, mu_error_message());
    double *want = reference(&c, p, with_b);
    const double err = relative_error(y, want, (size_t)c.n * (with_b ? c.k : c.n));
    const double tol = TOL_FACTOR * (kappa / p + c.n) * mu_dtype_unit_roundoff(dt);
    cr_expect_leq(err, tol, "p=%d %s kappa %g: relative error %.3e > %.3e", p, mu_dtype_name(dt),
                  kappa, err, tol);
    free(y);
    free(want);
    free_case(&c);
    mu_backend_destroy(&be);
}

Test(spd_root, matches_eigendecomposition_fp64)
{
    const int ps[] = {1, 2, 4};
    const double kappas[] = {1.0, 10.0, 1e3, 1e5};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            check_root(ps[i], MU_DTYPE_F64, kappas[j], true, 1.0);
            check_root(ps[i], MU_DTYPE_F64, kappas[j], false, 1.0);
        }
}

Test(spd_root, matches_eigendecomposition_fp32)
{
    const int ps[] = {1, 2, 4};
    const double kappas[] = {1.0, 10.0, 1e3};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            check_root(ps[i], MU_DTYPE_F32, kappas[j], true, 1.0);
}

/* Scale invariance: A and 1e6 A (or 1e-6 A) differ only by the scaled start. */
Test(spd_root, any_scale)
{
    check_root(2, MU_DTYPE_F64, 100.0, true, 1e6);
    check_root(4, MU_DTYPE_F64, 100.0, true, 1e-6);
}

/* p = 1: residual-correction steps reduce ||B - A Y|| below what Newton alone leaves. */
Test(spd_root, refinement_reduces_residual)
{
    mu_backend_t *be = th_backend("cpu");
    spd_case_t c;
    make_case(48, 7, 1e4, 1.0, 3, &c);
    mu_spd_root_opts_t o;
    mu_spd_root_opts_default(&o, 1);
    mu_spd_root_report_t rep;
    mu_status_t status;
    double *y = run_root(be, &c, &o, MU_DTYPE_F32, true, &rep, &status);
    cr_assert_eq(status, MU_OK, "%s", mu_error_message());
    cr_expect_lt(rep.residual_final, 0.5 * rep.residual_newton,
                 "refinement did not reduce the residual: %.3e -> %.3e", rep.residual_newton,
                 rep.residual_final);
    free(y);
    free_case(&c);
    mu_backend_destroy(&be);
}

/* An indefinite A leaves Newton's region of convergence: a clear NUMERIC error. */
Test(spd_root, indefinite_matrix_is_reported)
{
    mu_backend_t *be = th_backend("cpu");
    spd_case_t c;
    make_case(16, 3, 10.0, 1.0, 4, &c);
    c.lambda[15] = -0.5; /* one negative eigenvalue */
    cr_assert_eq(mu_host_compose_svd(16, 16, 16, c.q, c.lambda, c.q, c.a), MU_OK);
    mu_spd_root_opts_t o;
    mu_spd_root_opts_default(&o, 2);
    mu_status_t status;
    double *y = run_root(be, &c, &o, MU_DTYPE_F64, true, NULL, &status);
    cr_expect_eq(status, MU_ERR_NUMERIC, "got %s: %s", mu_strerror(status), mu_error_message());
    free(y);
    free_case(&c);
    mu_backend_destroy(&be);
}

Test(spd_root, rejects_bad_arguments)
{
    mu_backend_t *be = th_backend("cpu");
    mu_mat_t a, b, y;
    cr_assert_eq(mu_k_alloc(be, 4, 4, MU_DTYPE_F64, &a), MU_OK);
    cr_assert_eq(mu_k_alloc(be, 5, 2, MU_DTYPE_F64, &b), MU_OK);
    cr_assert_eq(mu_k_alloc(be, 4, 2, MU_DTYPE_F64, &y), MU_OK);
    mu_k_set_identity(be, 1.0, &a);
    mu_spd_root_opts_t o;
    mu_spd_root_opts_default(&o, 3);
    cr_expect_eq(mu_spd_inv_root(be, &a, NULL, &o, &y, NULL), MU_ERR_INVALID, "p = 3");
    mu_spd_root_opts_default(&o, 2);
    cr_expect_eq(mu_spd_inv_root(be, &a, &b, &o, &y, NULL), MU_ERR_INVALID, "B rows != n");
    cr_expect_eq(mu_spd_inv_root(be, NULL, NULL, &o, &y, NULL), MU_ERR_INVALID);
    cr_expect_eq(mu_spd_inv_root(be, &a, NULL, &o, &y, NULL), MU_ERR_INVALID,
                 "A^-1/2 needs a 4x4 Y, Y is 4x2");
    cr_expect_eq(mu_spd_inv_root(be, &a, NULL, &o, &a, NULL), MU_ERR_INVALID, "Y aliases A");
    mu_mat_t y_square;
    cr_assert_eq(mu_k_alloc(be, 4, 4, MU_DTYPE_F64, &y_square), MU_OK);
    mu_k_scale(be, 0.0, &a);
    cr_expect_eq(mu_spd_inv_root(be, &a, NULL, &o, &y_square, NULL), MU_ERR_NUMERIC, "A = 0");
    mu_k_release(be, &y_square);
    mu_k_release(be, &a);
    mu_k_release(be, &b);
    mu_k_release(be, &y);
    mu_backend_destroy(&be);
}
