/*
 * Inverse Root Express schedules (kernels/root_schedule.h) against their own scalar model,
 * phi(y) = y q(y)^p, evaluated on dense grids in double.
 *
 * Tolerances: the solver works in long double and reports phi's exact range over [l, u]
 * (endpoints and critical points), so a grid never exceeds it by more than double rounding
 * of phi (a few 1e-16, relative); a grid of 2e5 points spaced h apart comes within
 * phi'' h^2 of an interior extremum, which on these intervals is below 1e-6 of the level.
 */
#include <criterion/criterion.h>
#include <math.h>

#include "core/rng.h"
#include "kernels/root_schedule.h"

enum { GRID = 200000 };
static const int PS[] = {1, 2, 4};

/* The i-th of GRID points of [l, u], geometric where the interval is wide. */
static double grid_point(double l, double u, int i)
{
    const double t = (double)i / (GRID - 1);
    return u / l > 10.0 ? l * pow(u / l, t) : l + (u - l) * t;
}

static double grid_max_error(const mu_root_coeff_t *q, int p, double l, double u, double *qmin)
{
    double worst = 0.0;
    *qmin = INFINITY;
    for (int i = 0; i < GRID; i++) {
        const double y = grid_point(l, u, i);
        worst = fmax(worst, fabs(1.0 - mu_root_phi(q, p, y)));
        *qmin = fmin(*qmin, q->a + y * (q->b + y * q->c));
    }
    return worst;
}

/* For p = 1 the problem is min max |r(y)| over cubics r with r(0) = 1: the shifted Chebyshev
 * polynomial, with level 1 / T_3((u + l) / (u - l)). */
Test(root_minimax, p1_is_chebyshev)
{
    const double ls[] = {1e-6, 1e-3, 0.1, 0.5}, us[] = {1.0, 1.0, 2.0, 1.5};
    for (int i = 0; i < 4; i++) {
        mu_root_coeff_t q;
        double e;
        cr_assert_eq(mu_root_minimax(1, ls[i], us[i], &q, &e), MU_OK, "%s", mu_error_message());
        const double x = (us[i] + ls[i]) / (us[i] - ls[i]);
        const double want = 1.0 / (4 * x * x * x - 3 * x);
        cr_expect_leq(fabs(e - want), 1e-12 * want + 1e-15, "[%g, %g]: E %.17g, Chebyshev %.17g",
                      ls[i], us[i], e, want);
    }
}

/* The level is attained on the grid, never exceeded, and q stays positive. */
Test(root_minimax, equioscillates_with_positive_q)
{
    const double ls[] = {1e-6, 1e-3, 0.3, 0.99}, us[] = {1.0, 1.0, 1.7, 1.01};
    for (int ip = 0; ip < 3; ip++)
        for (int i = 0; i < 4; i++) {
            const int p = PS[ip];
            mu_root_coeff_t q;
            double e, qmin;
            cr_assert_eq(mu_root_minimax(p, ls[i], us[i], &q, &e), MU_OK, "%s", mu_error_message());
            const double grid = grid_max_error(&q, p, ls[i], us[i], &qmin);
            cr_expect_leq(grid, e * (1 + 1e-12) + 1e-16, "p=%d [%g, %g]: grid %.17g > E %.17g", p,
                          ls[i], us[i], grid, e);
            cr_expect_geq(grid, e * (1 - 1e-6), "p=%d [%g, %g]: grid %.17g, E %.17g", p, ls[i],
                          us[i], grid, e);
            cr_expect_gt(qmin, 0.0, "p=%d [%g, %g]: q <= 0 on the interval", p, ls[i], us[i]);
        }
}

/* No nearby quadratic does better: random relative perturbations of 1e-6..1e-2. */
Test(root_minimax, is_optimal_against_perturbations)
{
    for (int ip = 0; ip < 3; ip++) {
        const int p = PS[ip];
        mu_root_coeff_t q;
        double e, qmin;
        cr_assert_eq(mu_root_minimax(p, 1e-3, 1.0, &q, &e), MU_OK);
        for (int t = 0; t < 60; t++) {
            const double size = pow(10.0, -6.0 + 4.0 * (t % 5) / 4.0);
            const mu_root_coeff_t r = {
                q.a * (1 + size * mu_rng_normal(7, 1, 3 * t)),
                q.b * (1 + size * mu_rng_normal(7, 1, 3 * t + 1)),
                q.c * (1 + size * mu_rng_normal(7, 1, 3 * t + 2)),
            };
            const double worse = grid_max_error(&r, p, 1e-3, 1.0, &qmin);
            cr_expect_geq(worse, e * (1 - 1e-6), "p=%d: a perturbation (%g) reached %.10g < %.10g",
                          p, size, worse, e);
        }
    }
}

/* Every y in [l, 1], pushed through the steps one by one, stays in the schedule's intervals,
 * and the final interval is reached (the bound is not loose). */
static void check_against_model(const mu_root_schedule_t *s)
{
    double worst = 0.0;
    for (int i = 0; i < GRID; i += 7) {
        double y = grid_point(s->lower, 1.0, i);
        for (int k = 0; k < s->iters; k++) {
            y = mu_root_phi(&s->step[k], s->p, y);
            const double slack = 1e-13 * (1 + fabs(y));
            cr_assert(y >= s->lo[k + 1] - slack && y <= s->hi[k + 1] + slack,
                      "p=%d l=%g step %d: %.17g outside [%.17g, %.17g]", s->p, s->lower, k + 1, y,
                      s->lo[k + 1], s->hi[k + 1]);
        }
        worst = fmax(worst, fabs(1.0 - y));
    }
    const double bound = mu_root_schedule_bound(s);
    cr_expect_geq(worst, 0.5 * bound - 1e-15, "p=%d l=%g: the grid reaches %.3e of bound %.3e",
                  s->p, s->lower, worst, bound);
}

Test(root_schedule, matches_scalar_model)
{
    const double lowers[] = {1e-2, 1e-4, 1e-6};
    const double cushions[] = {0.0, MU_ROOT_DEFAULT_CUSHION};
    for (int ip = 0; ip < 3; ip++)
        for (int il = 0; il < 3; il++)
            for (int ic = 0; ic < 2; ic++) {
                mu_root_schedule_t s;
                cr_assert_eq(mu_root_schedule_express(PS[ip], lowers[il], 4, cushions[ic], &s),
                             MU_OK, "%s", mu_error_message());
                check_against_model(&s);
                cr_assert_eq(mu_root_schedule_newton(PS[ip], lowers[il], 6, &s), MU_OK);
                check_against_model(&s);
            }
}

/* Newton's scaled start sends y = g to 1 exactly; later steps are ((p+1) - y) / p. */
Test(root_schedule, newton_is_guo_higham)
{
    mu_root_schedule_t s;
    cr_assert_eq(mu_root_schedule_newton(2, 1e-4, 3, &s), MU_OK);
    cr_expect_float_eq(s.hi[1], 1.0, 1e-15, "the first step's maximum is 1");
    cr_expect_float_eq(s.step[1].a, 1.5, 1e-15);
    cr_expect_float_eq(s.step[1].b, -0.5, 1e-15);
    cr_expect_eq(s.step[1].c, 0.0);
}

/* The fewest steps: T reaches tol, T - 1 does not; and Express needs under half Newton's. */
Test(root_schedule, fewest_steps_and_gemm_counts)
{
    for (int ip = 0; ip < 3; ip++) {
        const int p = PS[ip];
        mu_root_schedule_t e, shorter, n;
        cr_assert_eq(mu_root_schedule_for(p, 1e-4, 1e-2, MU_ROOT_DEFAULT_CUSHION, false, &e),
                     MU_OK);
        cr_assert_eq(mu_root_schedule_for(p, 1e-4, 1e-2, 0, true, &n), MU_OK);
        cr_expect_leq(mu_root_schedule_bound(&e), 1e-2);
        cr_assert_eq(
            mu_root_schedule_express(p, 1e-4, e.iters - 1, MU_ROOT_DEFAULT_CUSHION, &shorter),
            MU_OK);
        cr_expect_gt(mu_root_schedule_bound(&shorter), 1e-2, "p=%d: %d steps already reach it", p,
                     e.iters - 1);
        cr_expect_lt(2 * e.iters, n.iters, "p=%d: express %d steps, newton %d", p, e.iters,
                     n.iters);
        /* S^2, M Y, the powers of M and M^p S per step; the last step skips the S update. */
        const int per_step = p == 1 ? 3 : p == 2 ? 4 : 5;
        cr_expect_eq(mu_root_schedule_gemms(&e), per_step * e.iters - (per_step - 2), "p=%d", p);
        cr_expect_eq(mu_root_schedule_gemms(&n), (per_step - 1) * n.iters - (per_step - 2),
                     "p=%d (Newton: no S^2)", p);
    }
}

Test(root_schedule, rejects_bad_arguments)
{
    mu_root_schedule_t s;
    mu_root_coeff_t q;
    cr_expect_eq(mu_root_schedule_express(3, 1e-3, 4, 0.1, &s), MU_ERR_INVALID, "p = 3");
    cr_expect_eq(mu_root_schedule_express(2, 0.0, 4, 0.1, &s), MU_ERR_INVALID, "lower = 0");
    cr_expect_eq(mu_root_schedule_express(2, 1e-3, 0, 0.1, &s), MU_ERR_INVALID, "0 steps");
    cr_expect_eq(mu_root_schedule_express(2, 1e-3, MU_ROOT_MAX_ITERS + 1, 0.1, &s), MU_ERR_INVALID);
    cr_expect_eq(mu_root_schedule_express(2, 1e-3, 4, 1.0, &s), MU_ERR_INVALID, "cushion 1");
    cr_expect_eq(mu_root_minimax(2, 1.0, 0.5, &q, NULL), MU_ERR_INVALID, "l > u");
    cr_expect_eq(mu_root_schedule_for(2, 1e-3, 0.0, 0.1, false, &s), MU_ERR_NUMERIC,
                 "tol 0 cannot be reached");
}
