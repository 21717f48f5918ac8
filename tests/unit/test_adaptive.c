/*
 * Adaptive Polar Express schedules (kernels/adaptive.h): the menu, the sample of a spectrum,
 * the choice, and adaptive plans on the recorded momenta against the fixed schedule, with the
 * exact fp64 measures (mu_host_descent, mu_host_polar).
 *
 * Tolerances, and why:
 *   - the sample's quadrature integrates polynomials of degree < 2 * 12 in A exactly, so on a
 *     spectrum of at most 12 distinct values each recurrence is exact up to fp32 products
 *     (1e-5 of the weights' sum is 100x their round-off);
 *   - adaptive results keep the fixed schedule's descent per unit step within 0.015: the
 *     choice's tolerance is 0.005 of the predicted reach, and on the recorded momenta the
 *     quadrature's blind spot, a tail of tiny singular values, cost at most 0.0096 of the
 *     descent (muond bench schedules); reach itself is not held to the fixed schedule's,
 *     since the quadrature cannot see that tail (docs/numerics.md, "Adaptive schedules").
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/adaptive.h"
#include "kernels/orth.h"
#include "kernels/spectrum.h"
#include "tests/support/harness.h"

Test(adaptive, the_menu_holds_every_candidate_and_the_fixed_schedule_last)
{
    mu_adaptive_menu_t menu;
    cr_assert_eq(
        mu_adaptive_menu_create(1e-3, 8, MU_PE_DEFAULT_CUSHION, MU_PE_DEFAULT_SAFETY, &menu),
        MU_OK);
    cr_assert_eq(menu.count, (8 - MU_ADAPTIVE_MIN_ITERS) * MU_ADAPTIVE_LOWERS + 1);
    cr_assert_eq(menu.reference, menu.count - 1);
    int previous_iters = 0;
    for (int i = 0; i < menu.count; i++) {
        const mu_adaptive_choice_t *c = &menu.choice[i];
        cr_assert_geq(c->iters, previous_iters, "the menu is ordered by T");
        previous_iters = c->iters;
        mu_schedule_t want;
        cr_assert_eq(mu_schedule_polar_express(c->lower, c->iters, MU_PE_DEFAULT_CUSHION,
                                               MU_PE_DEFAULT_SAFETY, &want),
                     MU_OK);
        cr_assert_eq(memcmp(&want, &c->schedule, sizeof want), 0, "candidate %d", i);
        cr_assert_gt(c->peak, 0.5, "candidate %d: F = %g", i, c->peak);
    }
    const mu_adaptive_choice_t *ref = &menu.choice[menu.reference];
    cr_assert(ref->lower == 1e-3 && ref->iters == 8);
    mu_adaptive_menu_free(&menu);
}

/* A diagonal Gram matrix with `distinct` values, each repeated. */
static mu_mat_t diagonal_gram(mu_backend_t *be, int64_t n, const double *values, int distinct)
{
    double *a = calloc((size_t)(n * n), sizeof *a);
    cr_assert(a);
    for (int64_t i = 0; i < n; i++)
        a[i * n + i] = values[i % distinct];
    mu_mat_t m = {0};
    cr_assert_eq(mu_k_alloc(be, n, n, MU_DTYPE_F32, &m), MU_OK);
    cr_assert_eq(mu_k_upload(be, a, MU_DTYPE_F64, n, &m), MU_OK);
    free(a);
    return m;
}

Test(adaptive, the_sample_is_exact_on_a_spectrum_of_few_values)
{
    mu_backend_t *be = th_backend("cpu");
    const double values[4] = {0.25, 1e-2, 1e-4, 0.04};
    mu_mat_t a = diagonal_gram(be, 64, values, 4);
    mu_spectrum_sample_t s;
    cr_assert_eq(mu_adaptive_sample(be, &a, 7, &s), MU_OK, "%s", mu_error_message());
    /* Each recurrence stops after 4 steps (an invariant Krylov space): nodes at the square
     * roots of the values; the weights of each recurrence sum to 1 and, with random-sign
     * starts on a diagonal matrix, are exactly 1/4 each. */
    cr_assert_eq(s.count, 4 * MU_ADAPTIVE_PROBES);
    for (int i = 0; i < s.count; i++) {
        bool found = false;
        for (int v = 0; v < 4; v++)
            found |= fabs(s.sigma[i] - sqrt(values[v])) <= 1e-5;
        cr_expect(found, "node %d at %g is none of the singular values", i, s.sigma[i]);
        cr_expect_float_eq(s.weight[i], 0.25, 1e-5);
    }
    mu_k_release(be, &a);
    mu_backend_destroy(&be);
}

static int choose_for(const mu_adaptive_menu_t *menu, const double *values, int distinct)
{
    mu_spectrum_sample_t s = {.count = distinct};
    for (int i = 0; i < distinct; i++) {
        s.sigma[i] = values[i];
        s.weight[i] = 1.0 / distinct;
    }
    return mu_adaptive_choose(menu, &s, MU_ADAPTIVE_DEFAULT_TOLERANCE, NULL, NULL);
}

Test(adaptive, a_compact_spectrum_takes_fewer_steps_than_a_long_one)
{
    mu_adaptive_menu_t menu;
    cr_assert_eq(
        mu_adaptive_menu_create(1e-3, 8, MU_PE_DEFAULT_CUSHION, MU_PE_DEFAULT_SAFETY, &menu),
        MU_OK);
    const double compact[3] = {0.3, 0.2, 0.15};
    const double long_tail[4] = {0.5, 0.05, 5e-3, 1.5e-3};
    const mu_adaptive_choice_t *c = &menu.choice[choose_for(&menu, compact, 3)];
    const mu_adaptive_choice_t *l = &menu.choice[choose_for(&menu, long_tail, 4)];
    printf("adaptive: compact spectrum: l = %g, T = %d; long tail: l = %g, T = %d\n", c->lower,
           c->iters, l->lower, l->iters);
    cr_expect_leq(c->iters, 4);
    cr_expect_geq(l->iters, 6, "directions down to 1.5e-3 need most of the schedule");
    cr_expect_leq(l->lower, 1.5e-3, "l above the smallest direction would give it up");
    cr_expect_lt(c->iters, l->iters);
    /* Tolerance 0: only the fixed schedule or one predicted at least as good qualifies. */
    mu_spectrum_sample_t s = {.count = 4};
    for (int i = 0; i < 4; i++) {
        s.sigma[i] = long_tail[i];
        s.weight[i] = 0.25;
    }
    double predicted, reference;
    const int i = mu_adaptive_choose(&menu, &s, 0.0, &predicted, &reference);
    cr_expect_geq(predicted, reference);
    cr_expect_eq(menu.choice[i].iters, 8);
    mu_adaptive_menu_free(&menu);
}

/* Q of an fp32 plan on g; *report receives what the plan said. */
static double *run_plan(mu_backend_t *be, mu_schedule_mode_t schedule, mu_orth_method_t method,
                        const double *g, int64_t rows, int64_t cols, mu_orth_report_t *report)
{
    mu_orth_opts_t o;
    mu_orth_opts_default(&o);
    o.method = method;
    o.schedule = schedule;
    return th_orth(be, &o, g, rows, cols, report);
}

static double per_unit_step_descent(const double *g, const double *q, int64_t rows, int64_t cols)
{
    mu_host_descent_t d;
    cr_assert_eq(mu_host_descent(g, q, rows, cols, &d), MU_OK);
    return d.efficiency / d.q_norm;
}

typedef struct momentum_ctx {
    mu_backend_t *be;
    int adapted;
} momentum_ctx_t;

static void compare_on(const char *name, const double *g, int64_t rows, int64_t cols, void *ctx)
{
    momentum_ctx_t *c = ctx;
    mu_backend_t *be = c->be;
    mu_orth_report_t fixed_r, adapt_r;
    double *fixed = run_plan(be, MU_SCHEDULE_FIXED, MU_ORTH_POLAR_EXPRESS, g, rows, cols, &fixed_r);
    double *adapt =
        run_plan(be, MU_SCHEDULE_ADAPTIVE, MU_ORTH_POLAR_EXPRESS, g, rows, cols, &adapt_r);
    const double df = per_unit_step_descent(g, fixed, rows, cols);
    const double da = per_unit_step_descent(g, adapt, rows, cols);
    const double step_flops = mu_orth_flops(MU_ORTH_POLAR_EXPRESS, rows, cols, 1);
    printf("adaptive: %-36s %4lldx%-4lld l = %-6g T = %d: descent per unit step %.5f (fixed "
           "%.5f)\n",
           name, (long long)rows, (long long)cols, adapt_r.lower, adapt_r.iters, da, df);
    cr_expect_leq(adapt_r.iters, fixed_r.iters);
    cr_expect_geq(da, df - 0.015, "%s: adaptive lost %.4f of the descent", name, df - da);
    if (step_flops < MU_ADAPTIVE_MIN_STEP_FLOPS)
        cr_expect(adapt_r.iters == fixed_r.iters && adapt_r.predicted == 0.0,
                  "%s: too small to adapt, yet it did", name);
    c->adapted += adapt_r.iters < fixed_r.iters;
    free(fixed);
    free(adapt);
}

Test(adaptive, recorded_momenta_keep_their_descent_in_fewer_steps)
{
    momentum_ctx_t ctx = {th_backend("cpu"), 0};
    const int count = th_for_each_momentum(compare_on, &ctx);
    cr_expect_geq(ctx.adapted, count / 2, "only %d of %d matrices took fewer steps", ctx.adapted,
                  count);
    mu_backend_destroy(&ctx.be);
}

Test(adaptive, adaptive_gram_matches_adaptive_polar_express_choice)
{
    mu_backend_t *be = th_backend("cpu");
    th_known_t m;
    th_known_make(96, 160, 30.0, 5, &m);
    mu_orth_report_t pe, gram;
    double *q1 = run_plan(be, MU_SCHEDULE_ADAPTIVE, MU_ORTH_POLAR_EXPRESS, m.g, 96, 160, &pe);
    double *q2 = run_plan(be, MU_SCHEDULE_ADAPTIVE, MU_ORTH_GRAM, m.g, 96, 160, &gram);
    /* Both sample the same Gram matrix (formed the same way: SYRK of G scaled by 1/scale^2). */
    cr_expect_eq(pe.iters, gram.iters);
    cr_expect(pe.lower == gram.lower);
    cr_expect_lt(pe.iters, MU_PE_DEFAULT_ITERS, "kappa 30 needs fewer than 8 steps");
    cr_expect_lt(th_polar_error(&m, q1), 0.05);
    cr_expect_lt(th_polar_error(&m, q2), 0.05);
    free(q1);
    free(q2);
    th_known_free(&m);
    mu_backend_destroy(&be);
}

Test(adaptive, ns5_and_bad_tolerances_are_refused)
{
    mu_backend_t *be = th_backend("cpu");
    mu_orth_opts_t o;
    mu_orth_opts_default(&o);
    o.schedule = MU_SCHEDULE_ADAPTIVE;
    o.method = MU_ORTH_NS5;
    mu_orth_plan_t *plan = NULL;
    cr_expect_eq(mu_orth_plan_create(be, 32, 32, &o, &plan), MU_ERR_INVALID);
    cr_expect(strstr(mu_error_message(), "ns5") != NULL, "%s", mu_error_message());
    cr_expect_null(plan);
    o.method = MU_ORTH_POLAR_EXPRESS;
    o.adaptive_tolerance = 1.5;
    cr_expect_eq(mu_orth_plan_create(be, 32, 32, &o, &plan), MU_ERR_INVALID);
    cr_expect_null(plan);
    mu_schedule_mode_t mode;
    cr_expect_eq(mu_schedule_mode_parse("adaptive", &mode), MU_OK);
    cr_expect_eq(mode, MU_SCHEDULE_ADAPTIVE);
    cr_expect_eq(mu_schedule_mode_parse("adaptve", &mode), MU_ERR_INVALID);
    mu_error_clear();
    mu_backend_destroy(&be);
}
