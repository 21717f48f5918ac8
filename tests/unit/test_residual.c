/*
 * The cheap residual estimator (kernels/residual.h) against the exact ||Q Q^T - I||_2 from
 * LAPACK. By construction the estimate is a lower bound (a Rayleigh-type ratio); with the
 * default 4 probes and 3 power steps it must also come within a factor 2 of the exact value
 * on spectra whose largest defect is isolated, which is what a failed iteration looks like.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "kernels/residual.h"
#include "kernels/spectrum.h"
#include "tests/support/harness.h"

/* Q = U diag(s) V^T with s_i = 1 + defect_i: a nominally orthogonal matrix with known error. */
static double *make_defective(int64_t rows, int64_t cols, double worst, double *exact)
{
    th_known_t m;
    th_known_make(rows, cols, 1.0, 31, &m);
    for (int64_t i = 0; i < m.r; i++) /* small defects everywhere, one large one */
        m.sigma[i] = 1.0 + (i == m.r / 3 ? worst : 1e-3 * sin((double)i));
    double *q = malloc(sizeof(double) * (size_t)(rows * cols));
    cr_assert_eq(mu_host_compose_svd(rows, cols, m.r, m.u, m.sigma, m.v, q), MU_OK);
    cr_assert_eq(mu_host_orthogonality(q, rows, cols, NULL, exact), MU_OK);
    th_known_free(&m);
    return q;
}

static double estimate(mu_backend_t *be, const double *q, int64_t rows, int64_t cols, mu_dtype_t dt,
                       mu_status_t *status)
{
    mu_mat_t dq;
    cr_assert_eq(mu_k_alloc(be, rows, cols, dt, &dq), MU_OK);
    cr_assert_eq(mu_k_upload(be, q, MU_DTYPE_F64, cols, &dq), MU_OK);
    double est = NAN;
    *status = mu_residual_estimate(be, &dq, NULL, &est);
    mu_k_release(be, &dq);
    return est;
}

Test(residual, estimate_brackets_exact_value)
{
    mu_backend_t *be = th_backend("cpu");
    const int64_t shapes[][2] = {{40, 120}, {120, 40}, {64, 64}, {1, 50}};
    const double worsts[] = {0.5, 0.05, -0.2};
    for (size_t s = 0; s < 4; s++)
        for (size_t w = 0; w < 3; w++) {
            double exact;
            double *q = make_defective(shapes[s][0], shapes[s][1], worsts[w], &exact);
            mu_status_t status;
            const double est = estimate(be, q, shapes[s][0], shapes[s][1], MU_DTYPE_F64, &status);
            cr_expect_eq(status, MU_OK);
            cr_expect_leq(est, exact * (1 + 1e-12), "%ldx%ld: estimate %.4e above exact %.4e",
                          (long)shapes[s][0], (long)shapes[s][1], est, exact);
            cr_expect_geq(est, 0.5 * exact, "%ldx%ld worst %g: estimate %.4e, exact %.4e",
                          (long)shapes[s][0], (long)shapes[s][1], worsts[w], est, exact);
            free(q);
        }
    mu_backend_destroy(&be);
}

Test(residual, orthogonal_matrix_scores_round_off)
{
    mu_backend_t *be = th_backend("cpu");
    th_known_t m;
    th_known_make(30, 90, 1e4, 2, &m);
    double *q = malloc(sizeof(double) * 30 * 90);
    cr_assert_eq(mu_host_polar(m.g, 30, 90, q), MU_OK);
    mu_status_t status;
    cr_expect_leq(estimate(be, q, 30, 90, MU_DTYPE_F64, &status), 1e-13);
    cr_expect_leq(estimate(be, q, 30, 90, MU_DTYPE_F32, &status), 1e-5);
    free(q);
    th_known_free(&m);
    mu_backend_destroy(&be);
}

Test(residual, non_finite_and_bad_arguments)
{
    mu_backend_t *be = th_backend("cpu");
    double q[12] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, NAN, 0};
    mu_status_t status;
    estimate(be, q, 3, 4, MU_DTYPE_F64, &status);
    cr_expect_eq(status, MU_ERR_NUMERIC);
    mu_mat_t dq;
    cr_assert_eq(mu_k_alloc(be, 3, 4, MU_DTYPE_F64, &dq), MU_OK);
    mu_residual_opts_t o;
    mu_residual_opts_default(&o);
    o.probes = 0;
    double est;
    cr_expect_eq(mu_residual_estimate(be, &dq, &o, &est), MU_ERR_INVALID);
    cr_expect_eq(mu_residual_estimate(be, NULL, NULL, &est), MU_ERR_INVALID);
    mu_k_release(be, &dq);
    mu_backend_destroy(&be);
}

/* mu_host_descent, the exact steepest-descent metrics of `muond orth --residual`, on answers
 * known in closed form: for G = U diag(s) V^T of rank r (here made rank-deficient by zeroing
 * the smaller half of s), the polar factor U_r V_r^T has <Q,G> = sum s = ||G||_*, norm 1 and
 * distance 0; c U_r V_r^T scales the descent by c; an orthonormal completion (the full
 * U V^T) adds nothing to the descent but is far from the answer. Tolerance: fp64 SVDs of
 * O(1) 40x30 matrices, 1e-10. */
Test(descent, metrics_of_known_answers)
{
    th_known_t m;
    th_known_make(40, 30, 100.0, 7, &m);
    const int64_t r = m.r / 2, n = 40 * 30;
    double nuclear = 0.0;
    for (int64_t i = 0; i < m.r; i++) {
        m.sigma[i] = i < r ? m.sigma[i] : 0.0;
        nuclear += m.sigma[i];
    }
    double *g = malloc(sizeof(double) * (size_t)n), *q = malloc(sizeof(double) * (size_t)n);
    double *ones = malloc(sizeof(double) * (size_t)m.r);
    cr_assert_eq(mu_host_compose_svd(40, 30, m.r, m.u, m.sigma, m.v, g), MU_OK);
    cr_assert_eq(mu_host_polar(g, 40, 30, q), MU_OK);
    mu_host_descent_t d;
    cr_assert_eq(mu_host_descent(g, q, 40, 30, &d), MU_OK);
    cr_expect_eq(d.rank, r);
    cr_expect_leq(fabs(d.nuclear - nuclear), 1e-10 * nuclear);
    cr_expect_leq(fabs(d.efficiency - 1.0), 1e-10, "polar factor: efficiency %.15f", d.efficiency);
    cr_expect_leq(fabs(d.q_norm - 1.0), 1e-10);
    cr_expect_leq(d.polar_error, 1e-10);
    for (int64_t i = 0; i < n; i++)
        q[i] *= 0.5;
    cr_assert_eq(mu_host_descent(g, q, 40, 30, &d), MU_OK);
    cr_expect_leq(fabs(d.efficiency - 0.5), 1e-10, "half step: efficiency %.15f", d.efficiency);
    cr_expect_leq(fabs(d.polar_error - 0.5), 1e-10);
    for (int64_t i = 0; i < m.r; i++)
        ones[i] = 1.0;
    cr_assert_eq(mu_host_compose_svd(40, 30, m.r, m.u, ones, m.v, q), MU_OK); /* full U V^T */
    cr_assert_eq(mu_host_descent(g, q, 40, 30, &d), MU_OK);
    cr_expect_leq(fabs(d.efficiency - 1.0), 1e-10, "completion keeps the descent");
    cr_expect_leq(fabs(d.polar_error - 1.0), 1e-10, "but is a distance 1 from the answer");
    th_known_free(&m);
    free(g);
    free(q);
    free(ones);
}
