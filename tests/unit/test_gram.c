/*
 * The Gram route (kernels/gram.c) against the exact polar factor (LAPACK SVD, fp64) and
 * against the direct iteration running the same schedule.
 *
 * Tolerance for "equals the SVD polar where kappa^2 is representable": forming A = G G^T
 * perturbs its eigenvalues by about u ||A||, a relative u kappa^2 on the smallest one, which
 * moves that direction of the polar factor by the same order. So tol = (kappa^2 + 1000) u:
 * the second term covers ordinary round-off of a few hundred operations. Measured (fp64,
 * 48x96 and 96x40): 1.9e-15 at kappa 1, 1.9e-14 at 10, 1.9e-11 at 1e3, 4.6e-6 at 1e6.
 * The schedule is chosen so that its own error bound is below 1e-15 on the normalized
 * spectrum, making the polynomial's truncation error negligible.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "kernels/spectrum.h"
#include "tests/support/harness.h"

static const double EXTRA_ULPS = 1000.0;

typedef struct shape {
    int64_t rows, cols;
} shape_t;

static double frobenius(const th_known_t *m)
{
    double sum = 0.0;
    for (int64_t i = 0; i < m->r; i++)
        sum += m->sigma[i] * m->sigma[i];
    return sqrt(sum);
}

/* Options whose schedule converges (bound < 1e-15) on this matrix's normalized spectrum. */
static mu_orth_opts_t converging_opts(const th_known_t *m, mu_orth_method_t method,
                                      mu_dtype_t dtype)
{
    mu_orth_opts_t o;
    mu_orth_opts_default(&o);
    o.method = method;
    o.dtype = dtype;
    o.gram_dtype = dtype;
    const double x_min = m->sigma[m->r - 1] / (frobenius(m) * o.safety);
    o.lower = fmin(0.5 * x_min, MU_PE_DEFAULT_LOWER);
    int iters = 0;
    cr_assert_eq(mu_schedule_iters_for(o.lower, o.cushion, o.safety, 1e-15, &iters), MU_OK);
    o.iters = iters;
    return o;
}

static void check_against_svd(const shape_t *sh, double kappa, mu_dtype_t dtype)
{
    mu_backend_t *be = th_backend("cpu");
    th_known_t m;
    th_known_make(sh->rows, sh->cols, kappa, 21, &m);
    const mu_orth_opts_t o = converging_opts(&m, MU_ORTH_GRAM, dtype);
    double *q = th_orth(be, &o, m.g, m.rows, m.cols, NULL);
    double *exact = malloc(sizeof(double) * (size_t)(m.rows * m.cols));
    cr_assert_eq(mu_host_polar(m.g, m.rows, m.cols, exact), MU_OK);
    const double d = th_spectral_distance(q, exact, m.rows, m.cols);
    const double tol = (kappa * kappa + EXTRA_ULPS) * mu_dtype_unit_roundoff(dtype);
    cr_expect_leq(d, tol, "gram %s %ldx%ld kappa %g (T=%d): ||Q - polar||_2 = %.3e > %.3e",
                  mu_dtype_name(dtype), (long)sh->rows, (long)sh->cols, kappa, o.iters, d, tol);
    free(q);
    free(exact);
    th_known_free(&m);
    mu_backend_destroy(&be);
}

static const shape_t shapes[] = {{48, 96}, {96, 40}, {64, 64}, {1, 30}, {30, 1}};

Test(gram, equals_svd_polar_fp64)
{
    const double kappas[] = {1.0, 10.0, 1e3, 1e6};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t k = 0; k < sizeof kappas / sizeof kappas[0]; k++)
            check_against_svd(&shapes[s], kappas[k], MU_DTYPE_F64);
}

/* In fp32, kappa^2 u < 1 holds up to kappa ~ 4e3; test well inside it. */
Test(gram, equals_svd_polar_fp32)
{
    const double kappas[] = {1.0, 10.0, 100.0};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t k = 0; k < sizeof kappas / sizeof kappas[0]; k++)
            check_against_svd(&shapes[s], kappas[k], MU_DTYPE_F32);
}

/* Same schedule, same polynomial: the Gram route and the direct iteration agree, to the
 * same (kappa^2 + 1000) u (measured: 1.1e-15, 2.6e-13, 1.6e-10 at kappa 1, 100, 1e4). */
Test(gram, matches_direct_iteration)
{
    mu_backend_t *be = th_backend("cpu");
    const double kappas[] = {1.0, 100.0, 1e4};
    for (size_t k = 0; k < sizeof kappas / sizeof kappas[0]; k++) {
        th_known_t m;
        th_known_make(40, 120, kappas[k], 4, &m);
        mu_orth_opts_t o;
        mu_orth_opts_default(&o);
        o.dtype = MU_DTYPE_F64;
        o.gram_dtype = MU_DTYPE_F64;
        double *direct = th_orth(be, &o, m.g, m.rows, m.cols, NULL);
        o.method = MU_ORTH_GRAM;
        double *gram = th_orth(be, &o, m.g, m.rows, m.cols, NULL);
        const double d = th_spectral_distance(direct, gram, m.rows, m.cols);
        const double tol = (kappas[k] * kappas[k] + EXTRA_ULPS) * mu_dtype_unit_roundoff(o.dtype);
        cr_expect_leq(d, tol, "kappa %g: gram and direct differ by %.3e", kappas[k], d);
        free(direct);
        free(gram);
        th_known_free(&m);
    }
    mu_backend_destroy(&be);
}

/* fp32 input with an fp64 Gram side: the conversion path gives fp64-quality orthogonality
 * up to fp32 rounding of the result. */
Test(gram, fp64_gram_side_for_fp32_data)
{
    mu_backend_t *be = th_backend("cpu");
    th_known_t m;
    th_known_make(32, 100, 10.0, 8, &m);
    mu_orth_opts_t o = converging_opts(&m, MU_ORTH_GRAM, MU_DTYPE_F32);
    o.gram_dtype = MU_DTYPE_F64;
    double *q = th_orth(be, &o, m.g, m.rows, m.cols, NULL);
    double sigma_error;
    cr_assert_eq(mu_host_orthogonality(q, m.rows, m.cols, &sigma_error, NULL), MU_OK);
    cr_expect_leq(sigma_error, 1e-6, "max |s - 1| = %.3e", sigma_error);
    free(q);
    th_known_free(&m);
    mu_backend_destroy(&be);
}

/* The restart (kernels/gram.c) in fp32, on the spectrum where the coupled iteration is past
 * its precision: one direction at 1 over a bulk at 2e-4 puts the bulk's squared singular
 * values at the Gram matrix's round-off. Without the restart ||Q||_2 reaches 1.5-2.1 (the
 * certificate catches it, tests/unit/test_certificate.c); with it, Q is as near the polar
 * factor as the direct iteration's (the bulk lies below l = 1e-3, so neither reaches it
 * fully: measured 0.42 for both). Bounds: 1e-3 on ||Q||_2 - 1, and 0.01 above the direct
 * iteration's distance. */
Test(gram, restart_keeps_fp32_within_band_past_its_precision)
{
    mu_backend_t *be = th_backend("cpu");
    const int64_t rows = 128, cols = 64, r = 64;
    double *sigma = malloc(sizeof *sigma * (size_t)r), *u = malloc(sizeof *u * (size_t)(rows * r)),
           *v = malloc(sizeof *v * (size_t)(cols * r)),
           *g = malloc(sizeof *g * (size_t)(rows * cols)),
           *exact = malloc(sizeof *exact * (size_t)(rows * cols));
    cr_assert(sigma && u && v && g && exact);
    for (int64_t i = 0; i < r; i++)
        sigma[i] = i == 0 ? 1.0 : 2e-4 * (1.0 - 0.5 * (double)i / (double)r);
    cr_assert_eq(mu_host_random_orthonormal(rows, r, 20, 1, u), MU_OK);
    cr_assert_eq(mu_host_random_orthonormal(cols, r, 20, 2, v), MU_OK);
    cr_assert_eq(mu_host_compose_svd(rows, cols, r, u, sigma, v, g), MU_OK);
    cr_assert_eq(mu_host_polar(g, rows, cols, exact), MU_OK);
    mu_orth_opts_t direct;
    mu_orth_opts_default(&direct);
    double *qd = th_orth(be, &direct, g, rows, cols, NULL);
    const double dist_direct = th_spectral_distance(qd, exact, rows, cols);
    free(qd);
    double norm[2], dist[2];
    for (int restart = 0; restart < 2; restart++) {
        mu_orth_opts_t o;
        mu_orth_opts_default(&o);
        o.method = MU_ORTH_GRAM;
        o.gram_restart_after = restart ? 0 : -1;
        double *q = th_orth(be, &o, g, rows, cols, NULL);
        mu_host_descent_t d;
        cr_assert_eq(mu_host_descent(g, q, rows, cols, &d), MU_OK);
        norm[restart] = d.q_norm;
        dist[restart] = th_spectral_distance(q, exact, rows, cols);
        free(q);
    }
    printf("gram fp32, spike over a bulk at 2e-4: ||Q||_2 %.4f without restart, %.6f with; "
           "||Q - polar||_2 %.4f, %.4f (direct iteration %.4f)\n",
           norm[0], norm[1], dist[0], dist[1], dist_direct);
    cr_expect_gt(norm[0], 1.05, "the case no longer needs the restart: pick a harder one");
    cr_expect_leq(fabs(norm[1] - 1.0), 1e-3);
    cr_expect_leq(dist[1], dist_direct + 0.01);
    free(sigma);
    free(u);
    free(v);
    free(g);
    free(exact);
    mu_backend_destroy(&be);
}
