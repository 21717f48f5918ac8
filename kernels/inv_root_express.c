#include "kernels/inv_root_express.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/host_view.h"
#include "kernels/lanczos.h"
#include "kernels/probes.h"
#include "kernels/spd_root.h"

/* The mean eigenvalue may stray this far (relative to the interval's width, plus a few
 * hundred units of round-off) outside [l_k, u_k] before the iteration is declared lost. */
static const double TRACE_SLACK_WIDTH = 0.05;
static const double TRACE_SLACK_ROUNDOFF = 256.0;
/* Root certificate: Lanczos on R^T R from random signs. */
enum { CERT_STARTS = 2, CERT_STEPS = 10 };
static const uint64_t ROOT_CERT_SEED = 0x726f6f74ULL; /* "root" */

typedef struct ire_work {
    mu_mat_t s, s_next, s2, m, m2, m4;    /* n x n, working dtype */
    mu_mat_t y_next;                      /* n x k */
    mu_mat_t x, x_next;                   /* p = 1 with refinement: X -> A_w^-1 */
    mu_mat_t a0, b0, y64, r64, r, d, d64; /* p = 1 refinement: A_w, B_w, Y in fp64 */
} ire_work_t;

typedef struct ire_problem {
    mu_backend_t *be;
    const mu_mat_t *a, *b;
    mu_mat_t *y;
    mu_ire_opts_t opts;
    int64_t n, k;
    double *d; /* p = 1 equilibration: D's diagonal, or NULL */
    bool track_x, refine;
    mu_root_schedule_t sched;
    ire_work_t w;
} ire_problem_t;

void mu_ire_opts_default(mu_ire_opts_t *opts, int p)
{
    *opts = (mu_ire_opts_t){
        .p = p,
        .refine_steps = p == 1 ? MU_IRE_DEFAULT_REFINE_STEPS : 0,
        .cushion = MU_ROOT_DEFAULT_CUSHION,
        .renormalize = true,
        .equilibrate = p == 1,
    };
}

const char *mu_ire_lower_source_name(mu_ire_lower_source_t source)
{
    switch (source) {
    case MU_IRE_LOWER_GIVEN:
        return "given lambda_min";
    case MU_IRE_LOWER_GERSHGORIN:
        return "Gershgorin";
    case MU_IRE_LOWER_ASSUMED:
        return "assumed (kappa <= 1e6)";
    }
    return "?";
}

static mu_status_t check_arguments(const mu_mat_t *a, const mu_mat_t *b, const mu_mat_t *y,
                                   const mu_ire_opts_t *o)
{
    if (!a || !y || !o)
        return mu_error(MU_ERR_INVALID, "inverse root express: null argument");
    if (o->p != 1 && o->p != 2 && o->p != 4)
        return mu_error(MU_ERR_INVALID, "inverse root express: p must be 1, 2 or 4, got %d", o->p);
    if (a->rows != a->cols || a->rows == 0)
        return mu_error(MU_ERR_INVALID,
                        "inverse root express: A must be square and non-empty, is %lldx%lld",
                        (long long)a->rows, (long long)a->cols);
    const int64_t k = b ? b->cols : a->rows;
    if ((b && (b->rows != a->rows || b->dtype != a->dtype)) || y->rows != a->rows || y->cols != k ||
        y->dtype != a->dtype)
        return mu_error(MU_ERR_INVALID,
                        "inverse root express: B/Y shapes or dtypes do not match A");
    if (y->data == a->data || (b && y->data == b->data))
        return mu_error(MU_ERR_INVALID, "inverse root express: Y must not alias A or B");
    if (o->iters < 0 || o->iters > MU_ROOT_MAX_ITERS || !(o->tol >= 0.0 && o->tol < 1.0) ||
        o->lambda_min < 0.0 || o->refine_steps < 0 || o->refine_steps > MU_IRE_MAX_REFINE_STEPS)
        return mu_error(MU_ERR_INVALID,
                        "inverse root express: bad settings (iters in [0, %d], tol in [0, 1), "
                        "refine steps in [0, %d])",
                        MU_ROOT_MAX_ITERS, MU_IRE_MAX_REFINE_STEPS);
    if (!(o->cushion >= 0.0 && o->cushion < 1.0))
        return mu_error(MU_ERR_INVALID, "inverse root express: cushion must be in [0, 1), got %g",
                        o->cushion);
    if (o->equilibrate && o->p != 1)
        return mu_error(MU_ERR_INVALID, "inverse root express: equilibration applies to p = 1 only "
                                        "((DAD)^(-1/p) is not D^-1 A^(-1/p) D^-1 for p > 1)");
    return MU_OK;
}

/* ---- preconditioning, on a host view of A ---- */

typedef struct spectrum_bounds {
    double frobenius, max_row_sum, gershgorin_low;
} spectrum_bounds_t;

/* D's diagonal: the power of two nearest a_ii^(-1/2). */
static mu_status_t equilibration(const double *a, int64_t n, double *d)
{
    for (int64_t i = 0; i < n; i++) {
        const double diag = a[i * n + i];
        if (!(diag > 0.0) || !isfinite(diag))
            return mu_error(MU_ERR_NUMERIC,
                            "inverse root express: A is not positive definite (a[%lld][%lld] = "
                            "%g)",
                            (long long)i, (long long)i, diag);
        d[i] = ldexp(1.0, -(int)lround(log2(diag) / 2.0));
    }
    return MU_OK;
}

/* Bounds of D A D (D = I when d is NULL). */
static void bounds_of(const double *a, const double *d, int64_t n, spectrum_bounds_t *out)
{
    double frob = 0.0, max_row = 0.0, low = INFINITY;
    for (int64_t i = 0; i < n; i++) {
        double off = 0.0, diag = 0.0;
        for (int64_t j = 0; j < n; j++) {
            const double v = a[i * n + j] * (d ? d[i] * d[j] : 1.0);
            frob += v * v;
            if (j == i)
                diag = v;
            else
                off += fabs(v);
        }
        max_row = fmax(max_row, fabs(diag) + off);
        low = fmin(low, diag - off);
    }
    *out = (spectrum_bounds_t){sqrt(frob), max_row, low};
}

static double lower_bound(const ire_problem_t *pr, const spectrum_bounds_t *bd, double s,
                          mu_ire_report_t *rep)
{
    double given = 0.0;
    if (pr->opts.lambda_min > 0.0) { /* of A; D A D's is at least lambda_min * min d_i^2 */
        double dmin = 1.0;
        for (int64_t i = 0; pr->d && i < pr->n; i++)
            dmin = i == 0 ? pr->d[i] : fmin(dmin, pr->d[i]);
        given = pr->opts.lambda_min * dmin * dmin / s;
    }
    const double gersh = bd->gershgorin_low / s;
    if (given <= 0.0 && gersh <= 0.0) {
        rep->lower_source = MU_IRE_LOWER_ASSUMED;
        return MU_SPD_ASSUMED_MIN_RATIO;
    }
    rep->lower_source = gersh > given ? MU_IRE_LOWER_GERSHGORIN : MU_IRE_LOWER_GIVEN;
    return fmin(fmax(given, gersh), 1.0);
}

/* S_0 = D A D / s, written through a host view. */
static mu_status_t write_start(ire_problem_t *pr, const double *a, double s)
{
    mu_host_view_t v;
    MU_CHECK(
        mu_host_view_begin(pr->be, &pr->w.s, MU_DTYPE_F64, MU_HOST_WRITE | MU_HOST_PACKED, &v));
    double *out = v.data;
    for (int64_t i = 0; i < pr->n; i++)
        for (int64_t j = 0; j < pr->n; j++)
            out[i * pr->n + j] = a[i * pr->n + j] * (pr->d ? pr->d[i] * pr->d[j] : 1.0) / s;
    return mu_host_view_end(pr->be, &v);
}

static mu_status_t precondition(ire_problem_t *pr, mu_ire_report_t *rep)
{
    mu_host_view_t v;
    MU_CHECK(mu_host_view_begin(pr->be, pr->a, MU_DTYPE_F64, MU_HOST_READ | MU_HOST_PACKED, &v));
    mu_status_t status = MU_OK;
    const double *a = v.data;
    if (pr->opts.equilibrate) {
        pr->d = malloc(sizeof(double) * (size_t)pr->n);
        status = pr->d ? equilibration(a, pr->n, pr->d)
                       : mu_error(MU_ERR_NOMEM, "inverse root express: no memory for D");
    }
    spectrum_bounds_t bd = {0};
    if (status == MU_OK)
        bounds_of(a, pr->d, pr->n, &bd);
    const double s = fmin(bd.frobenius, bd.max_row_sum);
    if (status == MU_OK && (!(s > 0.0) || !isfinite(s)))
        status = mu_error(MU_ERR_NUMERIC,
                          "inverse root express: ||A||_F = %g; A must be finite and non-zero",
                          bd.frobenius);
    if (status == MU_OK) {
        rep->scale = s;
        rep->lower = lower_bound(pr, &bd, s, rep);
        rep->equilibrated = pr->d != NULL;
        status = write_start(pr, a, s);
    }
    mu_host_view_release(&v);
    return status;
}

/* Rows of m times D's diagonal. */
static mu_status_t scale_rows(ire_problem_t *pr, mu_mat_t *m)
{
    mu_host_view_t v;
    MU_CHECK(mu_host_view_begin(pr->be, m, MU_DTYPE_F64, MU_HOST_READ_WRITE | MU_HOST_PACKED, &v));
    double *x = v.data;
    for (int64_t i = 0; i < m->rows; i++)
        for (int64_t j = 0; j < m->cols; j++)
            x[i * m->cols + j] *= pr->d[i];
    return mu_host_view_end(pr->be, &v);
}

/* ---- work ---- */

static mu_status_t alloc_work(ire_problem_t *pr)
{
    mu_backend_t *be = pr->be;
    const int64_t n = pr->n, k = pr->k;
    const mu_dtype_t dt = pr->a->dtype;
    mu_mat_t *square[] = {&pr->w.s, &pr->w.s_next, &pr->w.s2, &pr->w.m, &pr->w.m2, &pr->w.m4};
    for (size_t i = 0; i < sizeof square / sizeof square[0]; i++)
        MU_CHECK(mu_k_alloc(be, n, n, dt, square[i]));
    MU_CHECK(mu_k_alloc(be, n, k, dt, &pr->w.y_next));
    if (pr->track_x) {
        MU_CHECK(mu_k_alloc(be, n, n, dt, &pr->w.x));
        MU_CHECK(mu_k_alloc(be, n, n, dt, &pr->w.x_next));
    }
    if (pr->refine) {
        MU_CHECK(mu_k_alloc(be, n, n, MU_DTYPE_F64, &pr->w.a0));
        mu_mat_t *tall64[] = {&pr->w.b0, &pr->w.y64, &pr->w.r64, &pr->w.d64};
        for (size_t i = 0; i < sizeof tall64 / sizeof tall64[0]; i++)
            MU_CHECK(mu_k_alloc(be, n, k, MU_DTYPE_F64, tall64[i]));
        MU_CHECK(mu_k_alloc(be, n, k, dt, &pr->w.r));
        MU_CHECK(mu_k_alloc(be, n, k, dt, &pr->w.d));
    }
    return MU_OK;
}

static void release_work(ire_problem_t *pr)
{
    mu_mat_t *all[] = {&pr->w.s,      &pr->w.s_next, &pr->w.s2,     &pr->w.m,
                       &pr->w.m2,     &pr->w.m4,     &pr->w.y_next, &pr->w.x,
                       &pr->w.x_next, &pr->w.a0,     &pr->w.b0,     &pr->w.y64,
                       &pr->w.r64,    &pr->w.r,      &pr->w.d,      &pr->w.d64};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        mu_k_release(pr->be, all[i]);
    free(pr->d);
    pr->d = NULL;
}

static void swap(mu_mat_t *a, mu_mat_t *b)
{
    const mu_mat_t t = *a;
    *a = *b;
    *b = t;
}

/* Y_0 = D B (B = I when absent), X_0 = I; the refinement keeps A_w and B_w in fp64. */
static mu_status_t start(ire_problem_t *pr)
{
    mu_backend_t *be = pr->be;
    if (pr->b)
        MU_CHECK(mu_k_copy(be, pr->b, pr->y));
    else
        MU_CHECK(mu_k_set_identity(be, 1.0, pr->y));
    if (pr->d)
        MU_CHECK(scale_rows(pr, pr->y));
    if (pr->track_x)
        MU_CHECK(mu_k_set_identity(be, 1.0, &pr->w.x));
    if (pr->refine) {
        MU_CHECK(mu_k_copy(be, &pr->w.s, &pr->w.a0));
        MU_CHECK(mu_k_copy(be, pr->y, &pr->w.b0));
    }
    return MU_OK;
}

/* ---- the iteration ---- */

/* tr(S) / n from two norms: tr(S) = (||S||_F^2 + n - ||S - I||_F^2) / 2. */
static mu_status_t mean_eigenvalue(ire_problem_t *pr, double *mu)
{
    double frob, dist;
    MU_CHECK(mu_k_norm_frob(pr->be, &pr->w.s, &frob));
    MU_CHECK(mu_k_dist_identity(pr->be, &pr->w.s, &dist));
    *mu = (frob * frob + (double)pr->n - dist * dist) / (2.0 * (double)pr->n);
    return MU_OK;
}

/* Recentres S on 1 and returns the step's coefficients for the recentred S. */
static mu_status_t renormalize(ire_problem_t *pr, int step, mu_root_coeff_t *q,
                               mu_ire_report_t *rep)
{
    double mu;
    MU_CHECK(mean_eigenvalue(pr, &mu));
    const double lo = pr->sched.lo[step], hi = pr->sched.hi[step];
    const double slack =
        TRACE_SLACK_WIDTH * (hi - lo) + TRACE_SLACK_ROUNDOFF * mu_dtype_unit_roundoff(pr->a->dtype);
    const double outside = fmax(lo - mu, mu - hi);
    rep->worst_trace_offset = fmax(rep->worst_trace_offset, fmax(outside, 0.0));
    if (!isfinite(mu) || outside > slack)
        return mu_error(MU_ERR_NUMERIC,
                        "inverse root express: step %d: the mean eigenvalue %.6g of S left the "
                        "schedule's interval [%.6g, %.6g] (is A positive definite, and its "
                        "spectrum above lambda_min?)",
                        step + 1, mu, lo, hi);
    const double root = pow(mu, 1.0 / pr->opts.p);
    MU_CHECK(mu_k_scale(pr->be, 1.0 / mu, &pr->w.s));
    MU_CHECK(mu_k_scale(pr->be, 1.0 / root, pr->y));
    if (pr->track_x)
        MU_CHECK(mu_k_scale(pr->be, 1.0 / root, &pr->w.x));
    *q = (mu_root_coeff_t){q->a * root, q->b * root * mu, q->c * root * mu * mu};
    return MU_OK;
}

/* M = a I + b S + c S^2. */
static mu_status_t form_m(ire_problem_t *pr, const mu_root_coeff_t *q, mu_ire_report_t *rep)
{
    mu_backend_t *be = pr->be;
    MU_CHECK(mu_k_axpby(be, q->b, &pr->w.s, 0.0, &pr->w.m));
    if (q->c != 0.0) {
        MU_CHECK(mu_k_syrk(be, MU_NO_TRANS, 1.0, &pr->w.s, 0.0, &pr->w.s2));
        MU_CHECK(mu_k_axpby(be, q->c, &pr->w.s2, 1.0, &pr->w.m));
        rep->gemms++;
    }
    return mu_k_add_identity(be, q->a, &pr->w.m);
}

/* S <- M^p S, the powers by repeated SYRK (M is symmetric). */
static mu_status_t update_s(ire_problem_t *pr, mu_ire_report_t *rep)
{
    mu_backend_t *be = pr->be;
    const mu_mat_t *mp = &pr->w.m;
    if (pr->opts.p >= 2) {
        MU_CHECK(mu_k_syrk(be, MU_NO_TRANS, 1.0, &pr->w.m, 0.0, &pr->w.m2));
        mp = &pr->w.m2;
        rep->gemms++;
    }
    if (pr->opts.p == 4) {
        MU_CHECK(mu_k_syrk(be, MU_NO_TRANS, 1.0, &pr->w.m2, 0.0, &pr->w.m4));
        mp = &pr->w.m4;
        rep->gemms++;
    }
    MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, mp, &pr->w.s, 0.0, &pr->w.s_next));
    MU_CHECK(mu_k_symmetrize(be, &pr->w.s_next));
    swap(&pr->w.s, &pr->w.s_next);
    rep->gemms++;
    return MU_OK;
}

static mu_status_t express_step(ire_problem_t *pr, int step, mu_ire_report_t *rep)
{
    mu_backend_t *be = pr->be;
    mu_root_coeff_t q = pr->sched.step[step];
    if (pr->opts.renormalize)
        MU_CHECK(renormalize(pr, step, &q, rep));
    MU_CHECK(form_m(pr, &q, rep));
    MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, &pr->w.m, pr->y, 0.0, &pr->w.y_next));
    MU_CHECK(mu_k_copy(be, &pr->w.y_next, pr->y));
    if (!pr->b && !pr->d) /* Y is a polynomial in A: symmetric, and kept so (halves ||AY^p - I||) */
        MU_CHECK(mu_k_symmetrize(be, pr->y));
    rep->gemms++;
    if (pr->track_x) {
        MU_CHECK(
            mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, &pr->w.m, &pr->w.x, 0.0, &pr->w.x_next));
        swap(&pr->w.x, &pr->w.x_next);
        rep->gemms++;
    }
    if (step + 1 < pr->sched.iters)
        MU_CHECK(update_s(pr, rep));
    return MU_OK;
}

/* ---- p = 1 refinement ---- */

/* r64 = B_w - A_w y64 in fp64; *relative = ||R|| / (||A_w|| ||Y|| + ||B_w||). */
static mu_status_t residual64(ire_problem_t *pr, double *relative)
{
    mu_backend_t *be = pr->be;
    double na, ny, nb, nr;
    MU_CHECK(mu_k_copy(be, &pr->w.b0, &pr->w.r64));
    MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, -1.0, &pr->w.a0, &pr->w.y64, 1.0, &pr->w.r64));
    MU_CHECK(mu_k_norm_frob(be, &pr->w.a0, &na));
    MU_CHECK(mu_k_norm_frob(be, &pr->w.y64, &ny));
    MU_CHECK(mu_k_norm_frob(be, &pr->w.b0, &nb));
    MU_CHECK(mu_k_norm_frob(be, &pr->w.r64, &nr));
    *relative = nr / (na * ny + nb);
    return MU_OK;
}

/* Y <- Y + X R with R in fp64 and Y accumulated in fp64. */
static mu_status_t refine(ire_problem_t *pr, mu_ire_report_t *rep)
{
    mu_backend_t *be = pr->be;
    const mu_mat_t *x = pr->track_x ? &pr->w.x : &pr->w.y_next; /* Y_0 = I: X is Y itself */
    if (!pr->track_x)
        MU_CHECK(mu_k_copy(be, pr->y, &pr->w.y_next));
    MU_CHECK(mu_k_copy(be, pr->y, &pr->w.y64));
    MU_CHECK(residual64(pr, &rep->residual_before));
    rep->residual_after = rep->residual_before;
    rep->gemms++;
    for (int step = 0; step < pr->opts.refine_steps; step++) {
        MU_CHECK(mu_k_copy(be, &pr->w.r64, &pr->w.r));
        MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, x, &pr->w.r, 0.0, &pr->w.d));
        MU_CHECK(mu_k_copy(be, &pr->w.d, &pr->w.d64));
        MU_CHECK(mu_k_axpby(be, 1.0, &pr->w.d64, 1.0, &pr->w.y64));
        MU_CHECK(residual64(pr, &rep->residual_after));
        rep->gemms += 2;
    }
    return mu_k_copy(be, &pr->w.y64, pr->y);
}

/* Y = s^(-1/p) D Y_w. */
static mu_status_t unscale(ire_problem_t *pr, const mu_ire_report_t *rep)
{
    MU_CHECK(mu_k_scale(pr->be, pow(rep->scale, -1.0 / pr->opts.p), pr->y));
    return pr->d ? scale_rows(pr, pr->y) : MU_OK;
}

static mu_status_t plan_schedule(ire_problem_t *pr, const mu_ire_report_t *rep)
{
    const mu_ire_opts_t *o = &pr->opts;
    if (o->iters > 0 && o->newton)
        return mu_root_schedule_newton(o->p, rep->lower, o->iters, &pr->sched);
    if (o->iters > 0)
        return mu_root_schedule_express(o->p, rep->lower, o->iters, o->cushion, &pr->sched);
    /* The bound is evaluated in double: a few ulps of 1 is as low as it can show. */
    const double tol =
        o->tol > 0.0 ? o->tol : fmax(mu_dtype_unit_roundoff(pr->a->dtype), 4 * DBL_EPSILON);
    return mu_root_schedule_for(o->p, rep->lower, tol, o->cushion, o->newton, &pr->sched);
}

static mu_status_t solve(ire_problem_t *pr, mu_ire_report_t *rep)
{
    MU_CHECK(alloc_work(pr));
    MU_CHECK(precondition(pr, rep));
    MU_CHECK(plan_schedule(pr, rep));
    rep->bound = mu_root_schedule_bound(&pr->sched);
    MU_CHECK(start(pr));
    for (rep->iters = 0; rep->iters < pr->sched.iters; rep->iters++)
        MU_CHECK(express_step(pr, rep->iters, rep));
    if (pr->refine)
        MU_CHECK(refine(pr, rep));
    return unscale(pr, rep);
}

mu_status_t mu_inv_root_express(mu_backend_t *be, const mu_mat_t *a, const mu_mat_t *b,
                                const mu_ire_opts_t *opts, mu_mat_t *y, mu_ire_report_t *report)
{
    mu_ire_report_t local;
    mu_ire_report_t *rep = report ? report : &local;
    memset(rep, 0, sizeof *rep);
    if (!be)
        return mu_error(MU_ERR_INVALID, "inverse root express: null backend");
    MU_CHECK(check_arguments(a, b, y, opts));
    ire_problem_t pr = {.be = be, .a = a, .b = b, .y = y, .opts = *opts, .n = a->rows};
    pr.k = b ? b->cols : a->rows;
    pr.refine = opts->p == 1 && opts->refine_steps > 0;
    pr.track_x = pr.refine && (b || opts->equilibrate); /* else Y_0 = I and X = Y */
    const mu_status_t status = solve(&pr, rep);
    release_work(&pr);
    return status;
}

/* ---- certificate ---- */

static mu_status_t spectral_estimate(mu_backend_t *be, const mu_mat_t *r, double *out)
{
    const int64_t n = r->rows;
    double *start = malloc(sizeof(double) * (size_t)(n * CERT_STARTS));
    if (!start)
        return mu_error(MU_ERR_NOMEM, "root certificate: no memory for the Lanczos start");
    mu_probes_signs(ROOT_CERT_SEED, 0, n, CERT_STARTS, start);
    mu_lanczos_t lz;
    const int steps = (int)(n < CERT_STEPS ? n : CERT_STEPS);
    const mu_status_t status =
        mu_lanczos_run(be, r, MU_LANCZOS_GRAM, start, CERT_STARTS, CERT_STARTS, steps, &lz);
    double top = 0.0;
    for (int j = 0; status == MU_OK && j < CERT_STARTS; j++) {
        const double ritz = mu_lanczos_largest(&lz, j);
        top = isfinite(ritz) ? fmax(top, ritz) : NAN;
        if (!isfinite(top))
            break;
    }
    mu_lanczos_free(&lz);
    free(start);
    *out = isfinite(top) ? sqrt(fmax(top, 0.0)) : NAN;
    return status;
}

/* r = A X^p - I (t: scratch for the powers). */
/* R = X^(p/2) A X^(p/2) - I for even p (a symmetric sandwich), A X - I for p = 1: see
 * mu_ire_certify in the header for why not A X^p - I. */
static mu_status_t root_residual(mu_backend_t *be, const mu_mat_t *a, const mu_mat_t *x, int p,
                                 mu_mat_t t[2], mu_mat_t *r)
{
    if (p == 1) {
        MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, a, x, 0.0, r));
        return mu_k_add_identity(be, -1.0, r);
    }
    const mu_mat_t *half = x;
    if (p == 4) {
        MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, x, x, 0.0, &t[0]));
        half = &t[0];
    }
    MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, half, a, 0.0, &t[1]));
    MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, &t[1], half, 0.0, r));
    return mu_k_add_identity(be, -1.0, r);
}

mu_status_t mu_ire_certify(mu_backend_t *be, const mu_mat_t *a, const mu_mat_t *x, int p,
                           double limit, mu_ire_cert_t *out)
{
    if (!be || !a || !x || !out || (p != 1 && p != 2 && p != 4) || a->rows != a->cols ||
        x->rows != a->rows || x->cols != a->cols || x->dtype != a->dtype)
        return mu_error(MU_ERR_INVALID, "root certificate: need square A and X of one shape and "
                                        "dtype, p in {1, 2, 4}");
    const int64_t n = a->rows;
    *out = (mu_ire_cert_t){.limit = limit};
    mu_mat_t t[2] = {0}, r = {0};
    mu_status_t status = MU_OK;
    MU_TRY(status, mu_k_alloc(be, n, n, a->dtype, &t[0]));
    MU_TRY(status, mu_k_alloc(be, n, n, a->dtype, &t[1]));
    MU_TRY(status, mu_k_alloc(be, n, n, a->dtype, &r));
    MU_TRY(status, root_residual(be, a, x, p, t, &r));
    MU_TRY(status, mu_k_norm_frob(be, &r, &out->frobenius));
    if (status == MU_OK && isfinite(out->frobenius))
        status = spectral_estimate(be, &r, &out->spectral);
    else
        out->spectral = NAN;
    out->pass = status == MU_OK && isfinite(out->frobenius) && out->spectral <= limit &&
                out->frobenius <= sqrt((double)n) * limit;
    mu_k_release(be, &t[0]);
    mu_k_release(be, &t[1]);
    mu_k_release(be, &r);
    return status;
}
