/*
 * Coefficient schedules (kernels/schedule.h) against the published Polar Express table
 * (Amsel et al. 2025; l = 1e-3, T = 8, cushion 0.02407327424182761, safety 1.01 applied to
 * every row but the last) and against first principles (equioscillation).
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>

#include "kernels/schedule.h"

/* The table as published, before the safety division. */
static const mu_coeff_t published[8] = {
    {8.28721201814563, -23.595886519098837, 17.300387312530933},
    {4.107059111542203, -2.9478499167379106, 0.5448431082926601},
    {3.9486908534822946, -2.908902115962949, 0.5518191394370137},
    {3.3184196573706015, -2.488488024314874, 0.51004894012372},
    {2.300652019954817, -1.6689039845747493, 0.4188073119525673},
    {1.891301407787398, -1.2679958271945868, 0.37680408948524835},
    {1.8750014808534479, -1.2500016453999487, 0.3750001645474248},
    {1.875, -1.25, 0.375},
};

/* Row 7 of the exact greedy minimax schedule, from the same recurrence run in 60-digit
 * decimal arithmetic (Python's decimal module). The published row 7 differs from it by
 * 4.9e-12, 1.5e-11 and 2.5e-11 (relative): the rounding error of the fp64 monomial solve at
 * l/u = 0.9976, where that 4x4 system is ill-conditioned. */
static const mu_coeff_t exact_row7 = {1.8750014808442192482, -1.2500016453814815076,
                                      0.3750001645381862425};

/* 1e-12 relative, the acceptance criterion; our solver's own error is about 1e-15. */
static const double TABLE_TOL = 1e-12;
/* What the published row 7 can be held to, given its rounding error (see above). */
static const double PUBLISHED_ROW7_TOL = 3e-11;

static double rel(double a, double b)
{
    return fabs(a - b) / fabs(b);
}

static void expect_row(const mu_coeff_t *got, const mu_coeff_t *want, double tol, int row)
{
    cr_expect_leq(rel(got->a, want->a), tol, "row %d a: %.17g vs %.17g", row, got->a, want->a);
    cr_expect_leq(rel(got->b, want->b), tol, "row %d b: %.17g vs %.17g", row, got->b, want->b);
    cr_expect_leq(rel(got->c, want->c), tol, "row %d c: %.17g vs %.17g", row, got->c, want->c);
}

Test(schedule, reproduces_published_table_before_safety)
{
    mu_schedule_t s;
    cr_assert_eq(mu_schedule_polar_express(1e-3, 8, MU_PE_DEFAULT_CUSHION, 1.0, &s), MU_OK);
    for (int t = 0; t < 8; t++)
        expect_row(&s.step[t], &published[t], t == 6 ? PUBLISHED_ROW7_TOL : TABLE_TOL, t + 1);
    expect_row(&s.step[6], &exact_row7, TABLE_TOL, 7);
}

Test(schedule, safety_divides_every_row_but_the_last)
{
    const double safety = 1.01;
    mu_schedule_t s;
    cr_assert_eq(mu_schedule_polar_express(1e-3, 8, MU_PE_DEFAULT_CUSHION, safety, &s), MU_OK);
    for (int t = 0; t < 7; t++) {
        const mu_coeff_t want = {published[t].a / safety, published[t].b / pow(safety, 3),
                                 published[t].c / pow(safety, 5)};
        expect_row(&s.step[t], &want, t == 6 ? PUBLISHED_ROW7_TOL : TABLE_TOL, t + 1);
    }
    expect_row(&s.step[7], &published[7], TABLE_TOL, 8);
}

/* The minimax quintic equioscillates: 1 - p = +E, -E, +E, -E at l, q, r, u, and |1 - p| <= E
 * in between (checked on a fine grid). */
Test(minimax, equioscillates)
{
    const double intervals[][2] = {{1e-3, 1.0}, {0.024, 1.0}, {0.3, 1.7}, {0.99, 1.01}};
    for (size_t i = 0; i < sizeof intervals / sizeof intervals[0]; i++) {
        const double l = intervals[i][0], u = intervals[i][1];
        mu_coeff_t p;
        double e;
        cr_assert_eq(mu_minimax_odd_quintic(l, u, &p, &e), MU_OK);
        cr_expect(fabs(1.0 - mu_coeff_eval(&p, l) - e) <= 1e-12, "[%g,%g]: 1-p(l) != E", l, u);
        cr_expect(fabs(mu_coeff_eval(&p, u) - 1.0 - e) <= 1e-12, "[%g,%g]: p(u)-1 != E", l, u);
        double worst = 0.0;
        for (int k = 0; k <= 100000; k++) {
            const double x = l + (u - l) * k / 100000.0;
            worst = fmax(worst, fabs(1.0 - mu_coeff_eval(&p, x)));
        }
        cr_expect_leq(worst, e * (1.0 + 1e-9) + 1e-15, "[%g,%g]: max error %.3e exceeds E %.3e", l,
                      u, worst, e);
    }
}

/* The interval image is exact: a dense sample never leaves it and comes close to both ends. */
Test(schedule, error_bound_matches_dense_sampling)
{
    mu_schedule_t s;
    cr_assert_eq(mu_schedule_polar_express(1e-3, 5, MU_PE_DEFAULT_CUSHION, 1.01, &s), MU_OK);
    double lo, hi, seen_lo = INFINITY, seen_hi = -INFINITY;
    mu_schedule_image(&s, 1e-3, 1.0, &lo, &hi);
    for (int k = 0; k <= 200000; k++) {
        const double x = 1e-3 * pow(1e3, k / 200000.0);
        const double y = mu_schedule_eval(&s, x);
        seen_lo = fmin(seen_lo, y);
        seen_hi = fmax(seen_hi, y);
    }
    cr_expect_geq(seen_lo, lo - 1e-12);
    cr_expect_leq(seen_hi, hi + 1e-12);
    cr_expect_leq(seen_lo - lo, 1e-6, "sampled minimum %.9f far above the bound %.9f", seen_lo, lo);
    cr_expect_leq(hi - seen_hi, 1e-6, "sampled maximum %.9f far below the bound %.9f", seen_hi, hi);
}

Test(schedule, more_steps_never_hurt_and_converge)
{
    double previous = INFINITY;
    for (int t = 1; t <= 10; t++) {
        mu_schedule_t s;
        cr_assert_eq(mu_schedule_polar_express(1e-3, t, MU_PE_DEFAULT_CUSHION, 1.01, &s), MU_OK);
        const double bound = mu_schedule_error_bound(&s, 1e-3, 1.0);
        cr_expect_leq(bound, previous + 4 * DBL_EPSILON, "T=%d bound %.3e above T-1's %.3e", t,
                      bound, previous);
        previous = bound;
    }
    cr_expect_leq(previous, 1e-14);
    int iters = 0;
    cr_assert_eq(mu_schedule_iters_for(1e-7, MU_PE_DEFAULT_CUSHION, 1.01, 1e-12, &iters), MU_OK);
    cr_expect(iters > 8 && iters < 20, "l = 1e-7 needs %d steps", iters);
}

Test(schedule, ns5_sets)
{
    mu_schedule_t s;
    cr_assert_eq(mu_schedule_ns5(MU_NS5_JORDAN, 5, &s), MU_OK);
    cr_expect_eq(s.iters, 5);
    cr_expect_eq(s.step[4].a, 3.4445);
    cr_expect_eq(s.step[0].b, -4.7750);
    cr_expect_eq(s.step[2].c, 2.0315);
    cr_assert_eq(mu_schedule_ns5(MU_NS5_CLASSIC, 3, &s), MU_OK);
    cr_expect_eq(s.step[0].a, 15.0 / 8.0);
    cr_expect_eq(s.step[1].b, -10.0 / 8.0);
    cr_expect_eq(s.step[2].c, 3.0 / 8.0);
    /* Classic NS5 fixes 1; Jordan's does not (that is its plateau). */
    cr_expect_eq(mu_coeff_eval(&s.step[0], 1.0), 1.0);
    cr_assert_eq(mu_schedule_ns5(MU_NS5_JORDAN, 1, &s), MU_OK);
    cr_expect_gt(fabs(mu_coeff_eval(&s.step[0], 1.0) - 1.0), 0.2);
}

Test(schedule, rejects_bad_arguments)
{
    mu_schedule_t s;
    cr_expect_eq(mu_schedule_polar_express(0.0, 8, 0.02, 1.01, &s), MU_ERR_INVALID);
    cr_expect_eq(mu_schedule_polar_express(1.0, 8, 0.02, 1.01, &s), MU_ERR_INVALID);
    cr_expect_eq(mu_schedule_polar_express(NAN, 8, 0.02, 1.01, &s), MU_ERR_INVALID);
    cr_expect_eq(mu_schedule_polar_express(1e-3, 0, 0.02, 1.01, &s), MU_ERR_INVALID);
    cr_expect_eq(mu_schedule_polar_express(1e-3, MU_SCHEDULE_MAX_ITERS + 1, 0.02, 1.01, &s),
                 MU_ERR_INVALID);
    cr_expect_eq(mu_schedule_polar_express(1e-3, 8, -0.1, 1.01, &s), MU_ERR_INVALID);
    cr_expect_eq(mu_schedule_polar_express(1e-3, 8, 0.02, 0.99, &s), MU_ERR_INVALID);
    cr_expect_eq(mu_schedule_polar_express(1e-3, 8, 0.02, 1.01, NULL), MU_ERR_INVALID);
    cr_expect_eq(mu_schedule_ns5(MU_NS5_JORDAN, 0, &s), MU_ERR_INVALID);
    mu_coeff_t p;
    cr_expect_eq(mu_minimax_odd_quintic(0.5, 0.4, &p, NULL), MU_ERR_INVALID);
    cr_expect_eq(mu_minimax_odd_quintic(0.0, 1.0, &p, NULL), MU_ERR_INVALID);
    cr_expect_eq(mu_minimax_odd_quintic(0.1, INFINITY, &p, NULL), MU_ERR_INVALID);
}

Test(schedule, long_and_narrow_schedules_are_computable)
{
    const double lowers[] = {1e-12, 0.5, 0.9, 0.99999, 0.999993};
    for (size_t i = 0; i < sizeof lowers / sizeof lowers[0]; i++) {
        mu_schedule_t s;
        cr_expect_eq(mu_schedule_polar_express(lowers[i], MU_SCHEDULE_MAX_ITERS,
                                               MU_PE_DEFAULT_CUSHION, 1.01, &s),
                     MU_OK, "l = %g: %s", lowers[i], mu_error_message());
        cr_expect_leq(mu_schedule_error_bound(&s, lowers[i], 1.0), 1e-14, "l = %g", lowers[i]);
    }
}
