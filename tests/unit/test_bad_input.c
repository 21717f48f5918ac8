/*
 * Bad input never crashes (kernels/orth.h documents each outcome): NULL arguments, empty
 * shapes, mismatched operands, aliasing, NaN/Inf, zero and huge matrices, for every method.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "kernels/spectrum.h"
#include "tests/support/harness.h"

static const double SENTINEL = 12345.0;

/* How far from 1 a method's singular values may end: Jordan's NS5 settles in a band around 1
 * (about 0.3 wide, see test_polar.c); the others converge to fp32 accuracy here. */
static double sigma_tolerance(mu_orth_method_t m)
{
    return m == MU_ORTH_NS5 ? 0.35 : 1e-5;
}

typedef struct fixture {
    mu_backend_t *be;
    mu_orth_plan_t *plan;
    mu_mat_t g, q;
} fixture_t;

static void setup(fixture_t *f, mu_orth_method_t method, int64_t rows, int64_t cols)
{
    f->be = th_backend("cpu");
    mu_orth_opts_t o;
    mu_orth_opts_default(&o);
    o.method = method;
    cr_assert_eq(mu_orth_plan_create(f->be, rows, cols, &o, &f->plan), MU_OK);
    cr_assert_eq(mu_k_alloc(f->be, rows, cols, MU_DTYPE_F32, &f->g), MU_OK);
    cr_assert_eq(mu_k_alloc(f->be, rows, cols, MU_DTYPE_F32, &f->q), MU_OK);
}

static void teardown(fixture_t *f)
{
    mu_k_release(f->be, &f->g);
    mu_k_release(f->be, &f->q);
    mu_orth_plan_destroy(&f->plan);
    cr_expect_null(f->plan, "destroy must clear the caller's pointer");
    mu_backend_destroy(&f->be);
    cr_expect_null(f->be);
}

static void fill(mu_backend_t *be, mu_mat_t *m, double value)
{
    double *host = malloc(sizeof(double) * (size_t)(m->rows * m->cols));
    for (int64_t i = 0; i < m->rows * m->cols; i++)
        host[i] = value;
    cr_assert_eq(mu_k_upload(be, host, MU_DTYPE_F64, m->cols, m), MU_OK);
    free(host);
}

static double *download(mu_backend_t *be, const mu_mat_t *m)
{
    double *host = malloc(sizeof(double) * (size_t)(m->rows * m->cols));
    cr_assert_eq(mu_k_download(be, m, host, MU_DTYPE_F64, m->cols), MU_OK);
    return host;
}

Test(bad_input, null_and_empty_arguments)
{
    mu_backend_t *be = th_backend("cpu");
    mu_orth_opts_t o;
    mu_orth_opts_default(&o);
    mu_orth_plan_t *plan = (mu_orth_plan_t *)&o; /* must be overwritten with NULL on failure */
    cr_expect_eq(mu_orth_plan_create(be, 0, 5, &o, &plan), MU_ERR_INVALID);
    cr_expect_null(plan);
    cr_expect_eq(mu_orth_plan_create(be, 5, 0, &o, &plan), MU_ERR_INVALID);
    cr_expect_eq(mu_orth_plan_create(be, -1, 5, &o, &plan), MU_ERR_INVALID);
    cr_expect_eq(mu_orth_plan_create(NULL, 5, 5, &o, &plan), MU_ERR_INVALID);
    cr_expect_eq(mu_orth_plan_create(be, 5, 5, NULL, &plan), MU_ERR_INVALID);
    cr_expect_eq(mu_orth_plan_create(be, 5, 5, &o, NULL), MU_ERR_INVALID);
    o.lower = 2.0;
    cr_expect_eq(mu_orth_plan_create(be, 5, 5, &o, &plan), MU_ERR_INVALID, "lower = 2");
    mu_orth_opts_default(&o);
    o.method = (mu_orth_method_t)99;
    cr_expect_eq(mu_orth_plan_create(be, 5, 5, &o, &plan), MU_ERR_INVALID, "unknown method");
    cr_expect_eq(mu_orth_execute(NULL, NULL, NULL, NULL), MU_ERR_INVALID);
    mu_orth_plan_destroy(NULL);  /* harmless */
    mu_orth_plan_destroy(&plan); /* plan is NULL: harmless */
    mu_backend_destroy(&be);
}

Test(bad_input, mismatched_operands)
{
    fixture_t f;
    setup(&f, MU_ORTH_POLAR_EXPRESS, 6, 9);
    mu_mat_t wrong_shape, wrong_dtype;
    cr_assert_eq(mu_k_alloc(f.be, 9, 6, MU_DTYPE_F32, &wrong_shape), MU_OK);
    cr_assert_eq(mu_k_alloc(f.be, 6, 9, MU_DTYPE_F64, &wrong_dtype), MU_OK);
    fill(f.be, &f.g, 1.0);
    cr_expect_eq(mu_orth_execute(f.plan, &wrong_shape, &f.q, NULL), MU_ERR_INVALID);
    cr_expect_eq(mu_orth_execute(f.plan, &f.g, &wrong_shape, NULL), MU_ERR_INVALID);
    cr_expect_eq(mu_orth_execute(f.plan, &wrong_dtype, &f.q, NULL), MU_ERR_INVALID);
    cr_expect_eq(mu_orth_execute(f.plan, &f.g, NULL, NULL), MU_ERR_INVALID);
    cr_expect_eq(mu_orth_execute(f.plan, &f.g, &f.g, NULL), MU_ERR_INVALID, "Q aliases G");
    mu_k_release(f.be, &wrong_shape);
    mu_k_release(f.be, &wrong_dtype);
    teardown(&f);
}

/* NaN and Inf: MU_ERR_NUMERIC, the bad entries counted, Q untouched. */
static void check_nonfinite(mu_orth_method_t method, double bad)
{
    fixture_t f;
    setup(&f, method, 5, 8);
    double *host = malloc(sizeof(double) * 40);
    for (int i = 0; i < 40; i++)
        host[i] = (i % 7) - 3.0;
    host[3] = bad;
    host[17] = bad;
    cr_assert_eq(mu_k_upload(f.be, host, MU_DTYPE_F64, 8, &f.g), MU_OK);
    fill(f.be, &f.q, SENTINEL);
    mu_orth_report_t rep;
    cr_expect_eq(mu_orth_execute(f.plan, &f.g, &f.q, &rep), MU_ERR_NUMERIC, "%s with %g",
                 mu_orth_method_name(method), bad);
    cr_expect_eq(rep.nonfinite, 2);
    double *q = download(f.be, &f.q);
    for (int i = 0; i < 40; i++)
        cr_expect_eq(q[i], SENTINEL, "%s: Q[%d] was overwritten", mu_orth_method_name(method), i);
    free(q);
    free(host);
    teardown(&f);
}

Test(bad_input, nan_and_inf_every_method)
{
    for (int m = 0; m < MU_ORTH_METHOD_COUNT; m++) {
        check_nonfinite((mu_orth_method_t)m, NAN);
        check_nonfinite((mu_orth_method_t)m, INFINITY);
        check_nonfinite((mu_orth_method_t)m, -INFINITY);
    }
}

/* A zero matrix has no polar factor; muond returns a zero update and says so. */
Test(bad_input, zero_matrix_gives_zero_update_every_method)
{
    for (int m = 0; m < MU_ORTH_METHOD_COUNT; m++) {
        fixture_t f;
        setup(&f, (mu_orth_method_t)m, 4, 7);
        fill(f.be, &f.g, 0.0);
        fill(f.be, &f.q, NAN); /* garbage in Q must not survive */
        mu_orth_report_t rep;
        cr_expect_eq(mu_orth_execute(f.plan, &f.g, &f.q, &rep), MU_OK);
        cr_expect(rep.zero_input, "%s: zero input not reported", mu_orth_method_name(m));
        double *q = download(f.be, &f.q);
        for (int i = 0; i < 28; i++)
            cr_expect_eq(q[i], 0.0, "%s: Q[%d] = %g", mu_orth_method_name(m), i, q[i]);
        free(q);
        teardown(&f);
    }
}

/* Entries near FLT_MAX: the norm must not overflow (it is accumulated in double). */
Test(bad_input, huge_finite_fp32_matrix)
{
    for (int m = 0; m < MU_ORTH_METHOD_COUNT; m++) {
        fixture_t f;
        setup(&f, (mu_orth_method_t)m, 6, 10);
        th_known_t k;
        th_known_make(6, 10, 2.0, 1, &k);
        for (int i = 0; i < 60; i++) {
            k.g[i] *= 2.5e38;
            cr_assert_lt(fabs(k.g[i]), FLT_MAX, "the test matrix itself must be finite in fp32");
        }
        cr_assert_eq(mu_k_upload(f.be, k.g, MU_DTYPE_F64, 10, &f.g), MU_OK);
        mu_orth_report_t rep;
        cr_expect_eq(mu_orth_execute(f.plan, &f.g, &f.q, &rep), MU_OK, "%s", mu_error_message());
        cr_expect(isfinite(rep.input_norm) && rep.input_norm > FLT_MAX,
                  "norm %g should exceed FLT_MAX without overflowing", rep.input_norm);
        double *q = download(f.be, &f.q);
        double sigma_error;
        cr_assert_eq(mu_host_orthogonality(q, 6, 10, &sigma_error, NULL), MU_OK);
        cr_expect_leq(sigma_error, sigma_tolerance(m), "%s: max |s - 1| = %g",
                      mu_orth_method_name(m), sigma_error);
        free(q);
        th_known_free(&k);
        teardown(&f);
    }
}

Test(bad_input, one_by_one_every_method)
{
    for (int m = 0; m < MU_ORTH_METHOD_COUNT; m++) {
        fixture_t f;
        setup(&f, (mu_orth_method_t)m, 1, 1);
        fill(f.be, &f.g, -3.5);
        cr_expect_eq(mu_orth_execute(f.plan, &f.g, &f.q, NULL), MU_OK);
        double *q = download(f.be, &f.q);
        cr_expect(fabs(q[0] + 1.0) <= sigma_tolerance(m), "%s: polar(-3.5) = %g, want -1",
                  mu_orth_method_name(m), q[0]);
        free(q);
        teardown(&f);
    }
}
