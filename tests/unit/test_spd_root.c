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
#include "kernels/inv_root_express.h"
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

typedef struct case_mats {
    mu_mat_t a, b, y;
    int n, k;
} case_mats_t;

static void upload_case(mu_backend_t *be, const spd_case_t *c, mu_dtype_t dt, bool with_b,
                        case_mats_t *m)
{
    *m = (case_mats_t){.n = c->n, .k = with_b ? c->k : c->n};
    cr_assert_eq(mu_k_alloc(be, m->n, m->n, dt, &m->a), MU_OK);
    cr_assert_eq(mu_k_alloc(be, m->n, m->k, dt, &m->y), MU_OK);
    cr_assert_eq(mu_k_upload(be, c->a, MU_DTYPE_F64, m->n, &m->a), MU_OK);
    if (with_b) {
        cr_assert_eq(mu_k_alloc(be, m->n, m->k, dt, &m->b), MU_OK);
        cr_assert_eq(mu_k_upload(be, c->b, MU_DTYPE_F64, m->k, &m->b), MU_OK);
    }
}

/* Y in fp64 (malloc'ed); releases the matrices. */
static double *download_result(mu_backend_t *be, case_mats_t *m)
{
    double *out = malloc(sizeof(double) * m->n * m->k);
    cr_assert_eq(mu_k_download(be, &m->y, out, MU_DTYPE_F64, m->k), MU_OK);
    mu_k_release(be, &m->a);
    mu_k_release(be, &m->b);
    mu_k_release(be, &m->y);
    return out;
}

/* Runs the root on the backend; returns Y (fp64, malloc'ed). */
static double *run_root(mu_backend_t *be, const spd_case_t *c, const mu_spd_root_opts_t *o,
                        mu_dtype_t dt, bool with_b, mu_spd_root_report_t *rep, mu_status_t *status)
{
    case_mats_t m;
    upload_case(be, c, dt, with_b, &m);
    *status = mu_spd_inv_root(be, &m.a, with_b ? &m.b : NULL, o, &m.y, rep);
    return download_result(be, &m);
}

/* The same with Inverse Root Express. */
static double *run_express(mu_backend_t *be, const spd_case_t *c, const mu_ire_opts_t *o,
                           mu_dtype_t dt, bool with_b, mu_ire_report_t *rep, mu_status_t *status)
{
    case_mats_t m;
    upload_case(be, c, dt, with_b, &m);
    *status = mu_inv_root_express(be, &m.a, with_b ? &m.b : NULL, o, &m.y, rep);
    return download_result(be, &m);
}

/* The two solvers under one oracle: coupled Newton (kernels/spd_root.h) and Inverse Root
 * Express (kernels/inv_root_express.h), each with its defaults. */
typedef enum root_method { ROOT_NEWTON, ROOT_EXPRESS } root_method_t;
static const root_method_t METHODS[] = {ROOT_NEWTON, ROOT_EXPRESS};
static const char *const METHOD_NAMES[] = {"newton", "express"};

static double *solve_default(mu_backend_t *be, root_method_t method, const spd_case_t *c, int p,
                             mu_dtype_t dt, bool with_b, mu_status_t *status)
{
    if (method == ROOT_NEWTON) {
        mu_spd_root_opts_t o;
        mu_spd_root_opts_default(&o, p);
        return run_root(be, c, &o, dt, with_b, NULL, status);
    }
    mu_ire_opts_t o;
    mu_ire_opts_default(&o, p);
    return run_express(be, c, &o, dt, with_b, NULL, status);
}

static void check_root(root_method_t method, int p, mu_dtype_t dt, double kappa, bool with_b,
                       double scale)
{
    mu_backend_t *be = th_backend("cpu");
    spd_case_t c;
    make_case(48, 7, kappa, scale, 17, &c);
    mu_status_t status;
    double *y = solve_default(be, method, &c, p, dt, with_b, &status);
    cr_assert_eq(status, MU_OK, "%s p=%d kappa %g: %s", METHOD_NAMES[method], p, kappa,
                 mu_error_message());
    double *want = reference(&c, p, with_b);
    const double err = th_relative_error(y, want, (int64_t)c.n * (with_b ? c.k : c.n));
    const double tol = TOL_FACTOR * (kappa / p + c.n) * mu_dtype_unit_roundoff(dt);
    cr_expect_leq(err, tol, "%s p=%d %s kappa %g B %d: relative error %.3e > %.3e",
                  METHOD_NAMES[method], p, mu_dtype_name(dt), kappa, with_b, err, tol);
    free(y);
    free(want);
    free_case(&c);
    mu_backend_destroy(&be);
}

/* Every method, p in {1, 2, 4}, condition numbers up to max_kappa, with and without B. */
static void check_all(mu_dtype_t dt, double max_kappa)
{
    const int ps[] = {1, 2, 4};
    const double kappas[] = {1.0, 10.0, 1e3, 1e5};
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4 && kappas[j] <= max_kappa; j++) {
                check_root(METHODS[m], ps[i], dt, kappas[j], true, 1.0);
                check_root(METHODS[m], ps[i], dt, kappas[j], false, 1.0);
            }
}

Test(spd_root, matches_eigendecomposition_fp64)
{
    check_all(MU_DTYPE_F64, 1e5);
}

Test(spd_root, matches_eigendecomposition_fp32)
{
    check_all(MU_DTYPE_F32, 1e3);
}

/* Scale invariance: A and 1e6 A (or 1e-6 A) differ only by the scaled start. */
Test(spd_root, any_scale)
{
    for (int m = 0; m < 2; m++) {
        check_root(METHODS[m], 2, MU_DTYPE_F64, 100.0, true, 1e6);
        check_root(METHODS[m], 4, MU_DTYPE_F64, 100.0, false, 1e-6);
    }
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

/* An indefinite A leaves the iterations' region of convergence: a clear NUMERIC error. */
Test(spd_root, indefinite_matrix_is_reported)
{
    mu_backend_t *be = th_backend("cpu");
    spd_case_t c;
    make_case(16, 3, 10.0, 1.0, 4, &c);
    c.lambda[15] = -0.5; /* one negative eigenvalue */
    cr_assert_eq(mu_host_compose_svd(16, 16, 16, c.q, c.lambda, c.q, c.a), MU_OK);
    for (int m = 0; m < 2; m++) {
        mu_status_t status;
        free(solve_default(be, METHODS[m], &c, 2, MU_DTYPE_F64, true, &status));
        cr_expect_eq(status, MU_ERR_NUMERIC, "%s: got %s: %s", METHOD_NAMES[m], mu_strerror(status),
                     mu_error_message());
    }
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

/* ---- Inverse Root Express (kernels/inv_root_express.h), same oracle and tolerance ---- */

static double *express_case(const spd_case_t *c, const mu_ire_opts_t *o, mu_dtype_t dt, bool with_b,
                            mu_ire_report_t *rep)
{
    mu_backend_t *be = th_backend("cpu");
    mu_status_t status;
    double *y = run_express(be, c, o, dt, with_b, rep, &status);
    cr_assert_eq(status, MU_OK, "p=%d: %s", o->p, mu_error_message());
    mu_backend_destroy(&be);
    return y;
}

static double express_error(const spd_case_t *c, const mu_ire_opts_t *o, mu_dtype_t dt, bool with_b,
                            mu_ire_report_t *rep)
{
    double *y = express_case(c, o, dt, with_b, rep);
    double *want = reference(c, o->p, with_b);
    const double err = th_relative_error(y, want, (int64_t)c->n * (with_b ? c->k : c->n));
    free(y);
    free(want);
    return err;
}

/* Same engine, same stopping rule: the minimax steps reach the tolerance with fewer GEMMs. */
Test(inv_root_express, fewer_gemms_than_coupled_newton)
{
    const int ps[] = {1, 2, 4};
    spd_case_t c;
    make_case(48, 7, 1e4, 1.0, 5, &c);
    for (int i = 0; i < 3; i++) {
        mu_ire_opts_t o;
        mu_ire_opts_default(&o, ps[i]);
        o.lambda_min = c.lambda[c.n - 1];
        o.refine_steps = 0;
        mu_ire_report_t express, newton;
        const double tol = TOL_FACTOR * (1e4 / ps[i] + c.n) * mu_dtype_unit_roundoff(MU_DTYPE_F64);
        cr_expect_leq(express_error(&c, &o, MU_DTYPE_F64, true, &express), tol, "p=%d", ps[i]);
        o.newton = true;
        cr_expect_leq(express_error(&c, &o, MU_DTYPE_F64, true, &newton), tol, "p=%d", ps[i]);
        cr_expect_lt(express.gemms, newton.gemms, "p=%d: express %d GEMMs, newton %d", ps[i],
                     express.gemms, newton.gemms);
        cr_expect_eq(express.lower_source, MU_IRE_LOWER_GIVEN);
    }
    free_case(&c);
}

/* The trace renormalization is compensated: with and without it the results agree to
 * round-off (fp64, kappa 1e3: both are within 1e-12 of the root, so of each other). */
Test(inv_root_express, renormalization_is_neutral)
{
    spd_case_t c;
    make_case(48, 7, 1e3, 1.0, 8, &c);
    mu_ire_opts_t o;
    mu_ire_opts_default(&o, 2);
    double *on = express_case(&c, &o, MU_DTYPE_F64, true, NULL);
    o.renormalize = false;
    double *off = express_case(&c, &o, MU_DTYPE_F64, true, NULL);
    const double diff = th_relative_error(on, off, (int64_t)c.n * c.k);
    cr_expect_leq(diff, 1e-11, "renormalized and plain iterations differ by %.3e", diff);
    free(on);
    free(off);
    free_case(&c);
}

/* p = 1 in fp32: fp64 residual corrections take ||B - A Y|| (relative) from fp32's level to
 * below fp32's unit round-off. */
Test(inv_root_express, refinement_reaches_below_fp32_roundoff)
{
    spd_case_t c;
    make_case(48, 7, 1e4, 1.0, 3, &c);
    mu_ire_opts_t o;
    mu_ire_opts_default(&o, 1);
    mu_ire_report_t rep;
    free(express_case(&c, &o, MU_DTYPE_F32, true, &rep));
    cr_expect_lt(rep.residual_after, mu_dtype_unit_roundoff(MU_DTYPE_F32), "refined residual %.3e",
                 rep.residual_after);
    cr_expect_lt(rep.residual_after, rep.residual_before / 100, "%.3e -> %.3e", rep.residual_before,
                 rep.residual_after);
    free_case(&c);
}

/* Rows and columns scaled by powers of two spread over 2^-8..2^8: A = D A0 D has a
 * condition number near 1e10 although A0's is 10. Equilibration undoes D exactly, so the
 * error is A0's: A^-1 B = D^-1 A0^-1 (D^-1 B). */
Test(inv_root_express, equilibration_undoes_row_scaling)
{
    spd_case_t c;
    make_case(32, 5, 10.0, 1.0, 9, &c);
    double *dinv = malloc(sizeof(double) * c.n);
    for (int i = 0; i < c.n; i++)
        dinv[i] = ldexp(1.0, (int)(mu_rng_uniform(9, 2, (uint64_t)i) * 17.0) - 8);
    spd_case_t scaled = c;
    scaled.a = malloc(sizeof(double) * c.n * c.n);
    scaled.b = malloc(sizeof(double) * c.n * c.k);
    for (int i = 0; i < c.n; i++) {
        for (int j = 0; j < c.n; j++)
            scaled.a[i * c.n + j] = c.a[i * c.n + j] / (dinv[i] * dinv[j]);
        for (int j = 0; j < c.k; j++) {
            scaled.b[i * c.k + j] = c.b[i * c.k + j];
            c.b[i * c.k + j] *= dinv[i];
        }
    }
    mu_ire_opts_t o;
    mu_ire_opts_default(&o, 1);
    mu_ire_report_t rep;
    double *y = express_case(&scaled, &o, MU_DTYPE_F64, true, &rep);
    double *want = reference(&c, 1, true);
    for (int i = 0; i < c.n; i++)
        for (int j = 0; j < c.k; j++)
            want[i * c.k + j] *= dinv[i];
    cr_expect(rep.equilibrated);
    const double err = th_relative_error(y, want, (int64_t)c.n * c.k);
    const double tol = TOL_FACTOR * (10.0 + c.n) * mu_dtype_unit_roundoff(MU_DTYPE_F64);
    cr_expect_leq(err, tol, "equilibrated solve: relative error %.3e > %.3e", err, tol);
    free(y);
    free(want);
    free(dinv);
    free(scaled.a);
    free(scaled.b);
    free_case(&c);
}

/* Diagonally dominant A: Gershgorin's lower bound is positive and is the one used. */
Test(inv_root_express, gershgorin_lower_bound)
{
    mu_backend_t *be = th_backend("cpu");
    enum { N = 24 };
    double a[N * N];
    for (int i = 0; i < N; i++)
        for (int j = 0; j <= i; j++)
            a[i * N + j] = a[j * N + i] =
                i == j ? 2.0 + i / (double)N : 0.02 * mu_rng_normal(10, 1, (uint64_t)(i * N + j));
    mu_mat_t ma, my;
    cr_assert_eq(mu_k_alloc(be, N, N, MU_DTYPE_F64, &ma), MU_OK);
    cr_assert_eq(mu_k_alloc(be, N, N, MU_DTYPE_F64, &my), MU_OK);
    cr_assert_eq(mu_k_upload(be, a, MU_DTYPE_F64, N, &ma), MU_OK);
    mu_ire_opts_t o;
    mu_ire_opts_default(&o, 4);
    mu_ire_report_t rep;
    cr_assert_eq(mu_inv_root_express(be, &ma, NULL, &o, &my, &rep), MU_OK, "%s",
                 mu_error_message());
    cr_expect_eq(rep.lower_source, MU_IRE_LOWER_GERSHGORIN, "lower bound from %s",
                 mu_ire_lower_source_name(rep.lower_source));
    cr_expect_gt(rep.lower, 0.3, "Gershgorin gives l_0 = %g", rep.lower);
    mu_ire_cert_t cert;
    cr_assert_eq(mu_ire_certify(be, &ma, &my, 4, 1e-12, &cert), MU_OK);
    cr_expect(cert.pass, "||A X^4 - I||_2 ~ %.3e", cert.spectral);
    mu_k_release(be, &ma);
    mu_k_release(be, &my);
    mu_backend_destroy(&be);
}

/* ---- the root certificate ---- */

typedef struct cert_case {
    mu_backend_t *be;
    spd_case_t c;
    mu_mat_t a, x;
    double *root; /* A^(-1/p), fp64 */
} cert_case_t;

static void cert_setup(cert_case_t *t, int p)
{
    t->be = th_backend("cpu");
    make_case(40, 1, 100.0, 1.0, 12, &t->c);
    t->root = reference(&t->c, p, false);
    cr_assert_eq(mu_k_alloc(t->be, 40, 40, MU_DTYPE_F64, &t->a), MU_OK);
    cr_assert_eq(mu_k_alloc(t->be, 40, 40, MU_DTYPE_F64, &t->x), MU_OK);
    cr_assert_eq(mu_k_upload(t->be, t->c.a, MU_DTYPE_F64, 40, &t->a), MU_OK);
}

static mu_ire_cert_t certify(cert_case_t *t, int p, const double *x)
{
    cr_assert_eq(mu_k_upload(t->be, x, MU_DTYPE_F64, 40, &t->x), MU_OK);
    mu_ire_cert_t cert;
    cr_assert_eq(mu_ire_certify(t->be, &t->a, &t->x, p, 1e-3, &cert), MU_OK, "%s",
                 mu_error_message());
    return cert;
}

static void cert_teardown(cert_case_t *t)
{
    mu_k_release(t->be, &t->a);
    mu_k_release(t->be, &t->x);
    free(t->root);
    free_case(&t->c);
    mu_backend_destroy(&t->be);
}

/* The exact root passes; a root scaled by 1.01 (R = (1.01^p - 1) I), a symmetric rank-one
 * error along A's smallest eigenvector, and a NaN each fail. The Lanczos estimate is a lower
 * bound, within 10% of the true ||R||_2 for these. */
Test(root_certificate, catches_injected_bad_roots)
{
    const int ps[] = {2, 4};
    for (int ip = 0; ip < 2; ip++) {
        const int p = ps[ip];
        cert_case_t t;
        cert_setup(&t, p);
        const int n = t.c.n;
        double *x = malloc(sizeof(double) * n * n);
        cr_expect(certify(&t, p, t.root).pass, "p=%d: the exact root fails", p);
        for (int i = 0; i < n * n; i++)
            x[i] = 1.01 * t.root[i];
        mu_ire_cert_t cert = certify(&t, p, x);
        const double want = pow(1.01, p) - 1.0;
        cr_expect(!cert.pass, "p=%d: 1.01 X passes", p);
        cr_expect(cert.spectral <= want * (1 + 1e-9) && cert.spectral >= 0.9 * want,
                  "p=%d: estimate %.6e, ||R||_2 = %.6e", p, cert.spectral, want);
        const double *v = t.c.q + (n - 1); /* column n-1 of Q, stride n */
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                x[i * n + j] = t.root[i * n + j] + 1e-2 * v[i * n] * v[j * n];
        cr_expect(!certify(&t, p, x).pass, "p=%d: a rank-one error passes", p);
        memcpy(x, t.root, sizeof(double) * n * n);
        x[5 * n + 7] = NAN;
        cr_expect(!certify(&t, p, x).pass, "p=%d: a NaN passes", p);
        free(x);
        cert_teardown(&t);
    }
}

Test(inv_root_express, rejects_bad_arguments)
{
    mu_backend_t *be = th_backend("cpu");
    mu_mat_t a, b, y;
    cr_assert_eq(mu_k_alloc(be, 4, 4, MU_DTYPE_F64, &a), MU_OK);
    cr_assert_eq(mu_k_alloc(be, 5, 2, MU_DTYPE_F64, &b), MU_OK);
    cr_assert_eq(mu_k_alloc(be, 4, 4, MU_DTYPE_F64, &y), MU_OK);
    mu_k_set_identity(be, 1.0, &a);
    mu_ire_opts_t o;
    mu_ire_opts_default(&o, 3);
    cr_expect_eq(mu_inv_root_express(be, &a, NULL, &o, &y, NULL), MU_ERR_INVALID, "p = 3");
    mu_ire_opts_default(&o, 2);
    cr_expect_eq(mu_inv_root_express(be, &a, &b, &o, &y, NULL), MU_ERR_INVALID, "B rows != n");
    cr_expect_eq(mu_inv_root_express(be, &a, NULL, &o, &a, NULL), MU_ERR_INVALID, "Y aliases A");
    o.equilibrate = true;
    cr_expect_eq(mu_inv_root_express(be, &a, NULL, &o, &y, NULL), MU_ERR_INVALID,
                 "equilibration with p = 2");
    mu_ire_opts_default(&o, 2);
    o.tol = 1.5;
    cr_expect_eq(mu_inv_root_express(be, &a, NULL, &o, &y, NULL), MU_ERR_INVALID, "tol 1.5");
    mu_ire_opts_default(&o, 2);
    mu_k_scale(be, 0.0, &a);
    cr_expect_eq(mu_inv_root_express(be, &a, NULL, &o, &y, NULL), MU_ERR_NUMERIC, "A = 0");
    mu_ire_cert_t cert;
    cr_expect_eq(mu_ire_certify(be, &a, &b, 2, 1e-2, &cert), MU_ERR_INVALID, "X is 5x2");
    mu_k_release(be, &a);
    mu_k_release(be, &b);
    mu_k_release(be, &y);
    mu_backend_destroy(&be);
}
