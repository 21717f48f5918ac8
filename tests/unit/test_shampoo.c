/*
 * Shampoo (kernels/shampoo.h) against an fp64 Shampoo written here: the same statistics
 * accumulated in fp64, the same regularization, roots by LAPACK's eigendecomposition
 * (mu_host_spd_inv_root), Q = A_L^(-1/4) G A_R^(-1/4).
 *
 * Tolerance on ||Q - Q_ref||_F / ||Q_ref||_F: a root X with ||X^2 A X^2 - I|| = r is off by
 * about r / 4 relative in its worst direction, so in the worst case two roots at the
 * certificate's limit put Q within limit / 2 = 5e-3. That worst case needs G's weight in
 * A's smallest eigendirections, where round-off lives; these are epsilon's directions,
 * outside the range of the statistics G came from, and measured errors are 4e-5 to 6e-5.
 * ERROR_TOL = 1e-3 keeps 15x of margin over what was measured. The roots' residuals must
 * also sit 5x under the certificate's limit: the margin kernels/shampoo.h claims.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "kernels/shampoo.h"
#include "kernels/spectrum.h"
#include "tests/support/harness.h"

static const double ERROR_TOL = 1e-3;

typedef struct ref_shampoo {
    int64_t m, n;
    mu_shampoo_opts_t o;
    double *l, *r, *lroot, *rroot;
} ref_shampoo_t;

static void ref_init(ref_shampoo_t *ref, int64_t m, int64_t n, const mu_shampoo_opts_t *o)
{
    *ref = (ref_shampoo_t){m,
                           n,
                           *o,
                           calloc((size_t)(m * m), 8),
                           calloc((size_t)(n * n), 8),
                           calloc((size_t)(m * m), 8),
                           calloc((size_t)(n * n), 8)};
}

static void ref_free(ref_shampoo_t *ref)
{
    free(ref->l);
    free(ref->r);
    free(ref->lroot);
    free(ref->rroot);
}

/* s = beta s + alpha op(g) op(g)^T, in fp64. */
static void ref_accumulate(double *s, const double *g, int64_t m, int64_t n, bool left,
                           double alpha, double beta)
{
    const int64_t d = left ? m : n, inner = left ? n : m;
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < d; j++) {
            double sum = 0.0;
            for (int64_t k = 0; k < inner; k++)
                sum += left ? g[i * n + k] * g[j * n + k] : g[k * n + i] * g[k * n + j];
            s[i * d + j] = beta * s[i * d + j] + alpha * sum;
        }
}

static void ref_root(const double *s, int64_t d, double correction, double epsilon, double *root)
{
    double *a = malloc(sizeof(double) * (size_t)(d * d)), norm = 0.0;
    for (int64_t i = 0; i < d * d; i++) {
        a[i] = s[i] / correction;
        norm += a[i] * a[i];
    }
    for (int64_t i = 0; i < d; i++)
        a[i * d + i] += epsilon * sqrt(norm);
    cr_assert_eq(mu_host_spd_inv_root(a, NULL, d, d, 4, root), MU_OK);
    free(a);
}

static void matmul(const double *a, const double *b, int64_t m, int64_t k, int64_t n, double *c)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double sum = 0.0;
            for (int64_t r = 0; r < k; r++)
                sum += a[i * k + r] * b[r * n + j];
            c[i * n + j] = sum;
        }
}

/* One fp64 step; q receives the update. */
static void ref_step(ref_shampoo_t *ref, const double *g, long t, double *q)
{
    const double beta = ref->o.beta, alpha = beta >= 1 ? 1 : 1 - beta;
    ref_accumulate(ref->l, g, ref->m, ref->n, true, alpha, beta);
    ref_accumulate(ref->r, g, ref->m, ref->n, false, alpha, beta);
    const double correction = beta >= 1 ? 1 : 1 - pow(beta, (double)t);
    if ((t - 1) % ref->o.interval == 0) {
        ref_root(ref->l, ref->m, correction, ref->o.epsilon, ref->lroot);
        ref_root(ref->r, ref->n, correction, ref->o.epsilon, ref->rroot);
    }
    double *tmp = malloc(sizeof(double) * (size_t)(ref->m * ref->n));
    matmul(ref->lroot, g, ref->m, ref->m, ref->n, tmp);
    matmul(tmp, ref->rroot, ref->m, ref->n, ref->n, q);
    free(tmp);
    double norm = 0.0; /* grafted to ||Q||_F = sqrt(min(m, n)) */
    for (int64_t i = 0; i < ref->m * ref->n; i++)
        norm += q[i] * q[i];
    const double c = sqrt((double)(ref->m < ref->n ? ref->m : ref->n) / norm);
    for (int64_t i = 0; i < ref->m * ref->n; i++)
        q[i] *= c;
}

/* A gradient of known spectrum: condition number 30, a different one every step. */
static void gradient(int64_t m, int64_t n, long t, double *g)
{
    cr_assert_eq(mu_host_random_with_condition(m, n, 30.0, 100 + (uint64_t)t, g), MU_OK);
}

/* One Shampoo matrix on a backend with its G and Q (fp32 m x n), for the tests below. */
typedef struct one_matrix {
    mu_backend_t *be;
    mu_shampoo_t *s;
    mu_mat_t g, q;
    int64_t m, n;
} one_matrix_t;

static void open_matrix(const char *backend, int64_t m, int64_t n, const mu_shampoo_opts_t *o,
                        one_matrix_t *f)
{
    *f = (one_matrix_t){.be = th_backend(backend), .m = m, .n = n};
    cr_assert_eq(mu_shampoo_create(f->be, m, n, o, &f->s), MU_OK, "%s", mu_error_message());
    cr_assert_eq(mu_k_alloc(f->be, m, n, MU_DTYPE_F32, &f->g), MU_OK);
    cr_assert_eq(mu_k_alloc(f->be, m, n, MU_DTYPE_F32, &f->q), MU_OK);
}

static void close_matrix(one_matrix_t *f)
{
    mu_k_release(f->be, &f->g);
    mu_k_release(f->be, &f->q);
    mu_shampoo_destroy(&f->s);
    mu_backend_destroy(&f->be);
}

/* G = gradient(t); host (m x n, fp64) receives it when not NULL. */
static void upload_gradient(one_matrix_t *f, long t, double *host)
{
    double *g = host ? host : malloc(sizeof(double) * (size_t)(f->m * f->n));
    gradient(f->m, f->n, t, g);
    cr_assert_eq(mu_k_upload(f->be, g, MU_DTYPE_F64, f->n, &f->g), MU_OK);
    if (!host)
        free(g);
}

/* ||Q||_F */
static double q_norm(const one_matrix_t *f)
{
    double norm = -1.0;
    cr_assert_eq(mu_k_norm_frob(f->be, &f->q, &norm), MU_OK);
    return norm;
}

typedef struct run_result {
    double worst_error, worst_residual;
    int refreshes;
} run_result_t;

/* T steps of backend Shampoo against the fp64 one. */
static run_result_t compare_steps(const char *backend, int64_t m, int64_t n,
                                  const mu_shampoo_opts_t *o, long steps)
{
    one_matrix_t f;
    open_matrix(backend, m, n, o, &f);
    ref_shampoo_t ref;
    ref_init(&ref, m, n, o);
    double *g = malloc(sizeof(double) * (size_t)(m * n)),
           *q = malloc(sizeof(double) * (size_t)(m * n));
    double *want = malloc(sizeof(double) * (size_t)(m * n));
    run_result_t res = {0};
    for (long t = 1; t <= steps; t++) {
        upload_gradient(&f, t, g);
        mu_shampoo_report_t rep;
        cr_assert_eq(mu_shampoo_step(f.s, &f.g, t, &f.q, &rep), MU_OK, "%s", mu_error_message());
        cr_assert(rep.pass, "step %ld: a root failed its certificate (%.3g, %.3g)", t,
                  rep.side[0].cert.spectral, rep.side[1].cert.spectral);
        cr_assert_eq(rep.refreshed, (t - 1) % o->interval == 0, "step %ld: refreshed %d", t,
                     rep.refreshed);
        if (rep.refreshed) {
            res.refreshes++;
            for (int side = 0; side < 2; side++)
                res.worst_residual = fmax(res.worst_residual, rep.side[side].cert.spectral);
        }
        ref_step(&ref, g, t, want);
        cr_assert_eq(mu_k_download(f.be, &f.q, q, MU_DTYPE_F64, n), MU_OK);
        res.worst_error = fmax(res.worst_error, th_relative_error(q, want, m * n));
    }
    free(g);
    free(q);
    free(want);
    ref_free(&ref);
    close_matrix(&f);
    return res;
}

static void expect_close(const char *backend, int64_t m, int64_t n, double beta, int interval)
{
    mu_shampoo_opts_t o;
    mu_shampoo_opts_default(&o);
    o.beta = beta;
    o.interval = interval;
    const long steps = 6;
    const run_result_t r = compare_steps(backend, m, n, &o, steps);
    const double limit = mu_shampoo_root_limit();
    printf("shampoo %s %lldx%lld beta %g interval %d: ||Q - Q_ref||_F / ||Q_ref||_F <= %.2e "
           "(tol %.2e), worst root residual %.2e (limit %.2e)\n",
           backend, (long long)m, (long long)n, beta, interval, r.worst_error, ERROR_TOL,
           r.worst_residual, limit);
    cr_assert_eq(r.refreshes, (steps - 1) / interval + 1);
    cr_assert_leq(r.worst_error, ERROR_TOL);
    /* The limit's margin against false alarms (kernels/shampoo.h) rests on this. */
    cr_assert_leq(r.worst_residual, limit / 5);
}

Test(shampoo, ema_matches_fp64_every_step)
{
    expect_close("cpu", 48, 20, 0.9, 1);
}

Test(shampoo, sums_match_fp64_with_an_interval)
{
    expect_close("cpu", 24, 40, 1.0, 3);
}

/* The example MLP's head: R is 256 x 256 of rank 10, 246 eigenvalues at epsilon's floor,
 * where the fp32 roots' residuals are largest (kernels/shampoo.h). */
Test(shampoo, rank_deficient_wide_matches_fp64)
{
    expect_close("cpu", 10, 256, 0.95, 1);
}

Test(shampoo, square_matches_fp64_on_dnnl)
{
    expect_close("dnnl", 32, 32, 0.95, 2);
}

/* beta = 0 with fresh roots: L^(-1/4) G R^(-1/4) is G's polar factor, Muon's update, but
 * for epsilon: with e = epsilon ||G G^T||_F (= epsilon ||G^T G||_F, both sides), Q is exactly
 * c U diag(f) V^T, f_i = sigma_i (sigma_i^2 + e)^(-1/2), c = sqrt(r) / ||f|| (the grafting),
 * so ||Q - U V^T||_2 = max_i |1 - c f_i|. The fp32 result must land within 1e-3 of it. */
static double regularized_polar_gap(const th_known_t *k, double epsilon)
{
    double sum4 = 0.0, f2 = 0.0, gap = 0.0;
    for (int64_t i = 0; i < k->r; i++)
        sum4 += pow(k->sigma[i], 4);
    const double e = epsilon * sqrt(sum4);
    for (int64_t i = 0; i < k->r; i++)
        f2 += k->sigma[i] * k->sigma[i] / (k->sigma[i] * k->sigma[i] + e);
    const double c = sqrt((double)k->r / f2);
    for (int64_t i = 0; i < k->r; i++)
        gap = fmax(gap, fabs(1.0 - c * k->sigma[i] / sqrt(k->sigma[i] * k->sigma[i] + e)));
    return gap;
}

Test(shampoo, beta_zero_is_the_regularized_polar_factor)
{
    th_known_t k;
    th_known_make(40, 24, 10.0, 9, &k);
    mu_shampoo_opts_t o;
    mu_shampoo_opts_default(&o);
    o.beta = 0.0;
    one_matrix_t f;
    open_matrix("cpu", 40, 24, &o, &f);
    cr_assert_eq(mu_k_upload(f.be, k.g, MU_DTYPE_F64, 24, &f.g), MU_OK);
    mu_shampoo_report_t rep;
    cr_assert_eq(mu_shampoo_step(f.s, &f.g, 1, &f.q, &rep), MU_OK);
    cr_assert(rep.pass && rep.refreshed && !rep.zero);
    double *qh = malloc(sizeof(double) * 40 * 24);
    cr_assert_eq(mu_k_download(f.be, &f.q, qh, MU_DTYPE_F64, 24), MU_OK);
    const double err = th_polar_error(&k, qh), want = regularized_polar_gap(&k, o.epsilon);
    printf("shampoo beta 0: ||Q - U V^T||_2 = %.4e, epsilon's exact gap %.4e\n", err, want);
    cr_assert_leq(fabs(err - want), 1e-3);
    free(qh);
    th_known_free(&k);
    close_matrix(&f);
}

/* No gradient yet: a zero update, and the roots are computed at the next step that has one,
 * interval or not. */
Test(shampoo, zero_statistics_wait_for_a_gradient)
{
    mu_shampoo_opts_t o;
    mu_shampoo_opts_default(&o);
    one_matrix_t f;
    open_matrix("cpu", 8, 6, &o, &f);
    cr_assert_eq(mu_k_fill(f.be, 0.0, &f.g), MU_OK);
    cr_assert_eq(mu_k_fill(f.be, 7.0, &f.q), MU_OK);
    mu_shampoo_report_t rep;
    cr_assert_eq(mu_shampoo_step(f.s, &f.g, 1, &f.q, &rep), MU_OK);
    double norm = q_norm(&f);
    cr_assert(rep.zero && rep.pass && norm == 0.0, "zero %d pass %d ||Q|| %g", rep.zero, rep.pass,
              norm);
    cr_assert_eq(mu_k_fill(f.be, 0.5, &f.g), MU_OK);
    cr_assert_eq(mu_shampoo_step(f.s, &f.g, 2, &f.q, &rep), MU_OK);
    norm = q_norm(&f);
    cr_assert(rep.refreshed && !rep.zero && norm > 0.0, "refreshed %d ||Q|| %g", rep.refreshed,
              norm);
    close_matrix(&f);
}

/* A statistic that is not SPD (as corrupted memory would leave it) fails the root
 * certificate and leaves Q alone; the exact root written in its place then applies. */
Test(shampoo, a_bad_statistic_fails_the_certificate)
{
    mu_shampoo_opts_t o;
    mu_shampoo_opts_default(&o);
    one_matrix_t f;
    open_matrix("cpu", 16, 12, &o, &f);
    upload_gradient(&f, 1, NULL);
    cr_assert_eq(mu_k_fill(f.be, 3.0, &f.q), MU_OK);
    /* L = -5 I before the step: L - 5 I + G G^T has negative eigenvalues. */
    cr_assert_eq(mu_k_set_identity(f.be, -5.0, mu_shampoo_statistic(f.s, MU_SHAMPOO_LEFT)), MU_OK);
    mu_shampoo_report_t rep;
    cr_assert_eq(mu_shampoo_step(f.s, &f.g, 1, &f.q, &rep), MU_OK, "%s", mu_error_message());
    cr_assert(!rep.pass && !rep.side[MU_SHAMPOO_LEFT].cert.pass, "the bad root passed (%.3g)",
              rep.side[MU_SHAMPOO_LEFT].cert.spectral);
    cr_assert(rep.side[MU_SHAMPOO_RIGHT].cert.pass);
    double norm = q_norm(&f);
    cr_assert_float_eq(norm, 3.0 * sqrt(16.0 * 12.0), 1e-4, "Q was written: %g", norm);
    /* The caller's exact root: identity in place of the left root gives Q = G R_root. */
    cr_assert_eq(mu_k_set_identity(f.be, 1.0, mu_shampoo_root(f.s, MU_SHAMPOO_LEFT)), MU_OK);
    cr_assert_eq(mu_shampoo_apply(f.s, &f.g, &f.q), MU_OK);
    norm = q_norm(&f);
    cr_assert(isfinite(norm) && norm > 0.0);
    close_matrix(&f);
}

/* A root scaled by 1.01 after it was computed (a silent error) is caught: X^2 A X^2 is then
 * 1.0406 I, a residual of 4e-2 against the limit of 1e-2. */
Test(shampoo, a_perturbed_root_is_caught)
{
    mu_shampoo_opts_t o;
    mu_shampoo_opts_default(&o);
    one_matrix_t f;
    open_matrix("cpu", 20, 20, &o, &f);
    upload_gradient(&f, 3, NULL);
    mu_mat_t a;
    cr_assert_eq(mu_k_alloc(f.be, 20, 20, MU_DTYPE_F32, &a), MU_OK);
    mu_shampoo_report_t rep;
    cr_assert_eq(mu_shampoo_step(f.s, &f.g, 1, &f.q, &rep), MU_OK);
    cr_assert(rep.pass);
    double lambda_min = 0.0;
    bool zero = true;
    cr_assert_eq(mu_shampoo_regularized(f.s, MU_SHAMPOO_LEFT, 1, &a, &lambda_min, &zero), MU_OK);
    cr_assert(!zero && lambda_min > 0.0);
    mu_mat_t *root = mu_shampoo_root(f.s, MU_SHAMPOO_LEFT);
    mu_ire_cert_t cert;
    const double limit = mu_shampoo_root_limit();
    cr_assert_eq(mu_ire_certify(f.be, &a, root, 4, limit, &cert), MU_OK);
    cr_assert(cert.pass, "the computed root fails (%.3g)", cert.spectral);
    cr_assert_eq(mu_k_scale(f.be, 1.01, root), MU_OK);
    cr_assert_eq(mu_ire_certify(f.be, &a, root, 4, limit, &cert), MU_OK);
    cr_assert(!cert.pass, "1.01 X passed: %.3g <= %.3g", cert.spectral, limit);
    mu_k_release(f.be, &a);
    close_matrix(&f);
}

Test(shampoo, bad_arguments)
{
    mu_backend_t *be = th_backend("cpu");
    mu_shampoo_opts_t o;
    mu_shampoo_opts_default(&o);
    mu_shampoo_t *s = NULL;
    o.beta = 1.5;
    cr_assert_eq(mu_shampoo_create(be, 4, 4, &o, &s), MU_ERR_INVALID);
    mu_shampoo_opts_default(&o);
    o.interval = 0;
    cr_assert_eq(mu_shampoo_create(be, 4, 4, &o, &s), MU_ERR_INVALID);
    mu_shampoo_opts_default(&o);
    cr_assert_eq(mu_shampoo_create(be, 4, 3, &o, &s), MU_OK);
    mu_mat_t g, q;
    cr_assert_eq(mu_k_alloc(be, 3, 4, MU_DTYPE_F32, &g), MU_OK);
    cr_assert_eq(mu_k_alloc(be, 3, 4, MU_DTYPE_F32, &q), MU_OK);
    mu_shampoo_report_t rep;
    cr_assert_eq(mu_shampoo_step(s, &g, 1, &q, &rep), MU_ERR_INVALID);
    cr_assert(strstr(mu_error_message(), "4x3") != NULL, "%s", mu_error_message());
    mu_k_release(be, &g);
    mu_k_release(be, &q);
    mu_shampoo_destroy(&s);
    mu_backend_destroy(&be);
}
