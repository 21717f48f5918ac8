/*
 * Known-answer tests for Polar Express and NS5 (kernels/orth.h).
 *
 * G = U diag(s) V^T with s log-spaced over [1/kappa, 1], kappa in {1, 10, 1e3, 1e6}, for
 * square, tall, wide, 1 x n, n x 1 and 1 x 1 shapes. With x_i = s_i / scale the normalized
 * singular values and f the schedule's scalar map, exact arithmetic would give
 * Q = U f(x) V^T, so ||Q - U V^T||_2 = max_i |f(x_i) - 1|. Two checks per case:
 *   model: ||Q - U f(x) V^T||_2 <= tol      (the matrix iteration follows its scalar model)
 *   bound: ||Q - U V^T||_2 <= B + tol       (B: the schedule's own bound, from fp64 interval
 *          propagation, over [x_min, x_max]; and over [l, 1] when the spectrum lies inside it)
 *
 * Tolerance: tol = 4 u f'(0), u the dtype's unit round-off and f'(0) = prod_t a_t the gain on
 * directions with tiny singular values, where round-off is amplified the most. Measured worst
 * cases: 0.66 u f'(0) in fp64 and 0.33 u f'(0) in fp32 (at kappa = 1e6); 4 leaves room for
 * other BLAS builds without hiding a wrong coefficient (which moves fp64 results by far more
 * than 4 u f'(0) = 3e-12).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/spectrum.h"
#include "tests/support/harness.h"

static const double TOL_FACTOR = 4.0;

typedef struct shape {
    int64_t rows, cols;
} shape_t;
static const shape_t shapes[] = {{48, 48}, {96, 40}, {40, 96}, {1, 37}, {37, 1}, {1, 1}};
static const double kappas[] = {1.0, 10.0, 1e3, 1e6};
enum { SHAPES = sizeof shapes / sizeof shapes[0], KAPPAS = sizeof kappas / sizeof kappas[0] };

static double dtype_tolerance(const mu_schedule_t *s, mu_dtype_t dtype)
{
    return TOL_FACTOR * mu_dtype_unit_roundoff(dtype) * mu_schedule_slope_at_zero(s);
}

typedef struct case_result {
    double model_error, polar_error, bound_actual, bound_lower, tol;
    bool inside; /* the normalized spectrum lies in [l, 1] */
} case_result_t;

static case_result_t run_case(mu_backend_t *be, const mu_orth_opts_t *o, const shape_t *sh,
                              double kappa, uint64_t seed)
{
    th_known_t m;
    th_known_make(sh->rows, sh->cols, kappa, seed, &m);
    mu_orth_report_t rep;
    double *q = th_orth(be, o, m.g, m.rows, m.cols, &rep);
    mu_orth_plan_t *plan = NULL;
    cr_assert_eq(mu_orth_plan_create(be, m.rows, m.cols, o, &plan), MU_OK);
    const mu_schedule_t *s = mu_orth_plan_schedule(plan);
    const double x_min = m.sigma[m.r - 1] / rep.scale, x_max = m.sigma[0] / rep.scale;
    case_result_t r = {
        .model_error = th_model_error(&m, q, s, rep.scale),
        .polar_error = th_polar_error(&m, q),
        .bound_actual = mu_schedule_error_bound(s, x_min, x_max),
        .bound_lower = mu_schedule_error_bound(s, o->lower, 1.0),
        .tol = dtype_tolerance(s, o->dtype),
        .inside = x_min >= o->lower && x_max <= 1.0,
    };
    mu_orth_plan_destroy(&plan);
    free(q);
    th_known_free(&m);
    return r;
}

/* Runs every shape and kappa; returns how many spectra were inside [l, 1]. */
static int check_all_cases(mu_orth_method_t method, mu_dtype_t dtype, mu_ns5_set_t ns5)
{
    mu_backend_t *be = th_backend("cpu");
    mu_orth_opts_t o;
    mu_orth_opts_default(&o);
    o.method = method;
    o.dtype = dtype;
    o.ns5_set = ns5;
    int inside = 0;
    for (int si = 0; si < SHAPES; si++)
        for (int ki = 0; ki < KAPPAS; ki++) {
            const case_result_t r = run_case(be, &o, &shapes[si], kappas[ki], 11 + (uint64_t)si);
            const char *what = mu_orth_method_name(method);
            cr_expect_leq(r.model_error, r.tol, "%s %s %ldx%ld kappa %g: model error %.3e > %.3e",
                          what, mu_dtype_name(dtype), (long)shapes[si].rows, (long)shapes[si].cols,
                          kappas[ki], r.model_error, r.tol);
            cr_expect_leq(r.polar_error, r.bound_actual + r.tol,
                          "%s %ldx%ld kappa %g: ||Q - UV^T|| %.3e > bound %.3e + %.3e", what,
                          (long)shapes[si].rows, (long)shapes[si].cols, kappas[ki], r.polar_error,
                          r.bound_actual, r.tol);
            if (r.inside) {
                inside++;
                cr_expect_leq(r.polar_error, r.bound_lower + r.tol,
                              "%s %ldx%ld kappa %g: ||Q - UV^T|| %.3e > bound on [l,1] %.3e", what,
                              (long)shapes[si].rows, (long)shapes[si].cols, kappas[ki],
                              r.polar_error, r.bound_lower);
            }
        }
    mu_backend_destroy(&be);
    return inside;
}

Test(polar_express, known_answers_fp64)
{
    cr_expect_gt(check_all_cases(MU_ORTH_POLAR_EXPRESS, MU_DTYPE_F64, MU_NS5_JORDAN), 0,
                 "no spectrum fell inside [l, 1]: the [l,1] bound was never exercised");
}

Test(polar_express, known_answers_fp32)
{
    cr_expect_gt(check_all_cases(MU_ORTH_POLAR_EXPRESS, MU_DTYPE_F32, MU_NS5_JORDAN), 0);
}

Test(ns5, known_answers_jordan_fp64)
{
    check_all_cases(MU_ORTH_NS5, MU_DTYPE_F64, MU_NS5_JORDAN);
}

Test(ns5, known_answers_classic_fp32)
{
    check_all_cases(MU_ORTH_NS5, MU_DTYPE_F32, MU_NS5_CLASSIC);
}

/* Jordan's coefficients settle singular values in a band around 1 instead of at 1: the same
 * harness that accepts Polar Express must reject this result, with an error near 0.3. */
Test(ns5, jordan_plateau_is_rejected)
{
    mu_backend_t *be = th_backend("cpu");
    const shape_t sh = {48, 96};
    mu_orth_opts_t pe;
    mu_orth_opts_default(&pe);
    pe.dtype = MU_DTYPE_F64;
    mu_orth_opts_t ns = pe;
    ns.method = MU_ORTH_NS5;
    const case_result_t accepted = run_case(be, &pe, &sh, 10.0, 5);
    const case_result_t plateau = run_case(be, &ns, &sh, 10.0, 5);
    const double pe_acceptance = accepted.bound_actual + accepted.tol;
    cr_expect_leq(accepted.polar_error, pe_acceptance);
    cr_expect_gt(plateau.polar_error, pe_acceptance, "NS5 %.3e passed the PE acceptance %.3e",
                 plateau.polar_error, pe_acceptance);
    cr_expect(plateau.polar_error > 0.25 && plateau.polar_error < 0.35,
              "Jordan NS5 plateau is %.3f, expected about 0.3", plateau.polar_error);
    cr_expect_leq(plateau.model_error, plateau.tol, "NS5 strays from its scalar model");
    mu_backend_destroy(&be);
}

/* orth(G^T) = orth(G)^T: the tall path (X^T X, X B) must mirror the wide one exactly. */
Test(polar_express, transpose_symmetry)
{
    mu_backend_t *be = th_backend("cpu");
    th_known_t m;
    th_known_make(30, 70, 100.0, 3, &m);
    double *gt = malloc(sizeof(double) * 30 * 70);
    for (int i = 0; i < 30; i++)
        for (int j = 0; j < 70; j++)
            gt[j * 30 + i] = m.g[i * 70 + j];
    mu_orth_opts_t o;
    mu_orth_opts_default(&o);
    o.dtype = MU_DTYPE_F64;
    double *q = th_orth(be, &o, m.g, 30, 70, NULL);
    double *qt = th_orth(be, &o, gt, 70, 30, NULL);
    double worst = 0.0;
    for (int i = 0; i < 30; i++)
        for (int j = 0; j < 70; j++)
            worst = fmax(worst, fabs(q[i * 70 + j] - qt[j * 30 + i]));
    cr_expect_leq(worst, 1e-13, "orth(G^T) differs from orth(G)^T by %.3e", worst);
    free(q);
    free(qt);
    free(gt);
    th_known_free(&m);
    mu_backend_destroy(&be);
}

/* The cpu backend (BLAS) and the reference backend (plain loops) compute the same thing, to
 * twice each method's own tolerance (both backends err independently): 4 u f'(0) for the
 * direct methods, (kappa^2 + 1000) u for the Gram route (see test_gram.c), 1000 u for the
 * SVD. Measured at kappa 1e3, fp64: 2.5e-14, 1.7e-14, 1.4e-11 and 0 (same LAPACK call). */
static double backend_tolerance(mu_orth_plan_t *plan, const mu_orth_opts_t *o, double kappa)
{
    const double u = mu_dtype_unit_roundoff(o->dtype);
    switch (o->method) {
    case MU_ORTH_GRAM:
        return 2.0 * (kappa * kappa + 1000.0) * u;
    case MU_ORTH_SVD:
        return 2.0 * 1000.0 * u;
    default:
        return 2.0 * dtype_tolerance(mu_orth_plan_schedule(plan), o->dtype);
    }
}

Test(polar_express, cpu_matches_reference_backend)
{
    mu_backend_t *cpu = th_backend("cpu"), *ref = th_backend("reference");
    const double kappa = 1e3;
    th_known_t m;
    th_known_make(24, 40, kappa, 9, &m);
    mu_orth_opts_t o;
    mu_orth_opts_default(&o);
    o.dtype = MU_DTYPE_F64; /* fp64 throughout: the reference accumulates fp32 in fp64 */
    o.gram_dtype = MU_DTYPE_F64;
    for (int method = 0; method < MU_ORTH_METHOD_COUNT; method++) {
        o.method = (mu_orth_method_t)method;
        mu_orth_plan_t *plan = NULL;
        cr_assert_eq(mu_orth_plan_create(cpu, m.rows, m.cols, &o, &plan), MU_OK);
        double *a = th_orth(cpu, &o, m.g, m.rows, m.cols, NULL);
        double *b = th_orth(ref, &o, m.g, m.rows, m.cols, NULL);
        const double d = th_spectral_distance(a, b, m.rows, m.cols);
        const double tol = backend_tolerance(plan, &o, kappa);
        cr_expect_leq(d, tol, "%s: cpu and reference differ by %.3e > %.3e",
                      mu_orth_method_name(o.method), d, tol);
        mu_orth_plan_destroy(&plan);
        free(a);
        free(b);
    }
    th_known_free(&m);
    mu_backend_destroy(&cpu);
    mu_backend_destroy(&ref);
}

/* A bf16 plan takes fp32 operands (an fp32 step computing in bf16): the result is exactly the
 * bf16 run on G rounded to bf16, widened back, and it stays within the bf16 band (0.35, as
 * tests/unit/test_dnnl.c argues). Run on the reference backend, whose bf16 is the oracle, and
 * on the backend under test where it computes bf16. */
static void check_bf16_conversion(mu_backend_t *be)
{
    mu_orth_opts_t o;
    mu_orth_opts_default(&o);
    o.dtype = MU_DTYPE_BF16;
    o.iters = 8;
    th_known_t m;
    th_known_make(24, 40, 100.0, 13, &m);
    mu_orth_plan_t *plan = NULL;
    cr_assert_eq(mu_orth_plan_create(be, m.rows, m.cols, &o, &plan), MU_OK, "%s",
                 mu_error_message());
    mu_mat_t g32, q32, g16, q16;
    const mu_dtype_t types[] = {MU_DTYPE_F32, MU_DTYPE_BF16};
    mu_mat_t *gs[] = {&g32, &g16}, *qs[] = {&q32, &q16};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(mu_k_alloc(be, m.rows, m.cols, types[i], gs[i]), MU_OK);
        cr_assert_eq(mu_k_alloc(be, m.rows, m.cols, types[i], qs[i]), MU_OK);
    }
    cr_assert_eq(mu_k_upload(be, m.g, MU_DTYPE_F64, m.cols, &g32), MU_OK);
    cr_assert_eq(mu_k_copy(be, &g32, &g16), MU_OK);
    cr_assert_eq(mu_orth_execute(plan, &g32, &q32, NULL), MU_OK, "%s", mu_error_message());
    cr_assert_eq(mu_orth_execute(plan, &g16, &q16, NULL), MU_OK, "%s", mu_error_message());
    const size_t n = (size_t)(m.rows * m.cols);
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    cr_assert_eq(mu_k_download(be, &q32, a, MU_DTYPE_F64, m.cols), MU_OK);
    cr_assert_eq(mu_k_download(be, &q16, b, MU_DTYPE_F64, m.cols), MU_OK);
    cr_expect_eq(memcmp(a, b, n * sizeof *a), 0, "%s: converted run differs from the bf16 run",
                 mu_backend_name(be));
    const double band = th_polar_error(&m, a);
    cr_expect_leq(band, 0.35, "%s: bf16 ||Q - UV^T||_2 = %.3f", mu_backend_name(be), band);
    for (int i = 0; i < 2; i++) {
        mu_k_release(be, gs[i]);
        mu_k_release(be, qs[i]);
    }
    free(a), free(b);
    mu_orth_plan_destroy(&plan);
    th_known_free(&m);
}

Test(polar_express, bf16_plan_converts_fp32_operands)
{
    mu_backend_t *ref = th_backend("reference"), *be = th_backend("cpu");
    check_bf16_conversion(ref);
    if (mu_backend_bf16_compute(be))
        check_bf16_conversion(be);
    mu_backend_destroy(&ref);
    mu_backend_destroy(&be);
}
