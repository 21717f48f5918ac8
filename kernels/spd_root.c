#include "kernels/spd_root.h"

#include <math.h>
#include <string.h>

/* Once ||N - I||_F is below this, Newton is in its quadratic regime: a step that fails to
 * halve the distance means round-off has been reached, and further steps only add noise. */
static const double QUADRATIC_REGIME = 1e-3;
/* ||N - I||_F beyond this means the iteration left Newton's region of convergence. */
static const double DIVERGED = 1e6;

typedef struct spd_work {
    mu_mat_t n, n_next, m, m2, m4; /* n x n */
    mu_mat_t y_next;               /* n x k */
    mu_mat_t x, x_next;            /* p = 1: the running A^-1 */
    mu_mat_t r;                    /* p = 1: residual, n x k */
} spd_work_t;

typedef struct spd_problem {
    mu_backend_t *be;
    const mu_mat_t *a, *b;
    mu_mat_t *y;
    mu_spd_root_opts_t opts;
    spd_work_t w;
} spd_problem_t;

void mu_spd_root_opts_default(mu_spd_root_opts_t *opts, int p)
{
    *opts = (mu_spd_root_opts_t){
        .p = p,
        .lambda_min = 0.0,
        .max_iters = MU_SPD_DEFAULT_MAX_ITERS,
        .tol = 0.0,
        .refine_steps = MU_SPD_DEFAULT_REFINE_STEPS,
    };
}

static mu_status_t check_arguments(const mu_mat_t *a, const mu_mat_t *b, const mu_mat_t *y,
                                   const mu_spd_root_opts_t *o)
{
    if (!a || !y || !o)
        return mu_error(MU_ERR_INVALID, "spd root: null argument");
    if (o->p != 1 && o->p != 2 && o->p != 4)
        return mu_error(MU_ERR_INVALID, "spd root: p must be 1, 2 or 4, got %d", o->p);
    if (a->rows != a->cols || a->rows == 0)
        return mu_error(MU_ERR_INVALID, "spd root: A must be square and non-empty, is %lldx%lld",
                        (long long)a->rows, (long long)a->cols);
    const int64_t k = b ? b->cols : a->rows;
    if ((b && (b->rows != a->rows || b->dtype != a->dtype)) || y->rows != a->rows || y->cols != k ||
        y->dtype != a->dtype)
        return mu_error(MU_ERR_INVALID, "spd root: B/Y shapes or dtypes do not match A");
    if (y->data == a->data || (b && y->data == b->data))
        return mu_error(MU_ERR_INVALID, "spd root: Y must not alias A or B");
    if (o->max_iters < 1 || o->refine_steps < 0 || o->lambda_min < 0.0)
        return mu_error(MU_ERR_INVALID, "spd root: bad iteration settings");
    return MU_OK;
}

/* c from the spectrum bounds [lo, hi] (see the header). */
static double scaled_start(int p, double lo, double hi)
{
    const double alpha = hi / lo;
    const double root = pow(alpha, 1.0 / p);
    if (!(root > 1.0 + 1e-12)) /* a single eigenvalue: c^p = hi */
        return pow(hi, 1.0 / p);
    return pow((root * hi - lo) / ((p + 1) * (root - 1.0)), 1.0 / p);
}

static mu_status_t alloc_work(spd_problem_t *pr)
{
    mu_backend_t *be = pr->be;
    const int64_t n = pr->a->rows, k = pr->y->cols;
    const mu_dtype_t dt = pr->a->dtype;
    mu_mat_t *square[] = {&pr->w.n, &pr->w.n_next, &pr->w.m, &pr->w.m2, &pr->w.m4};
    for (size_t i = 0; i < sizeof square / sizeof square[0]; i++)
        MU_CHECK(mu_k_alloc(be, n, n, dt, square[i]));
    MU_CHECK(mu_k_alloc(be, n, k, dt, &pr->w.y_next));
    if (pr->opts.p == 1) {
        MU_CHECK(mu_k_alloc(be, n, n, dt, &pr->w.x));
        MU_CHECK(mu_k_alloc(be, n, n, dt, &pr->w.x_next));
        MU_CHECK(mu_k_alloc(be, n, k, dt, &pr->w.r));
    }
    return MU_OK;
}

static void release_work(spd_problem_t *pr)
{
    mu_mat_t *all[] = {&pr->w.n,      &pr->w.n_next, &pr->w.m,      &pr->w.m2, &pr->w.m4,
                       &pr->w.y_next, &pr->w.x,      &pr->w.x_next, &pr->w.r};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        mu_k_release(pr->be, all[i]);
}

static void swap(mu_mat_t *a, mu_mat_t *b)
{
    const mu_mat_t t = *a;
    *a = *b;
    *b = t;
}

/* N_0 = A / c^p, Y_0 = B / c (or I / c), X_0 = I / c. */
static mu_status_t start(spd_problem_t *pr, double c)
{
    mu_backend_t *be = pr->be;
    MU_CHECK(mu_k_axpby(be, 1.0 / pow(c, pr->opts.p), pr->a, 0.0, &pr->w.n));
    if (pr->b)
        MU_CHECK(mu_k_axpby(be, 1.0 / c, pr->b, 0.0, pr->y));
    else
        MU_CHECK(mu_k_set_identity(be, 1.0 / c, pr->y));
    if (pr->opts.p == 1)
        MU_CHECK(mu_k_set_identity(be, 1.0 / c, &pr->w.x));
    return MU_OK;
}

/* The p-th power of the symmetric M, by repeated SYRK (M M^T = M^2). */
static mu_status_t power_of_m(spd_problem_t *pr, const mu_mat_t **out)
{
    mu_backend_t *be = pr->be;
    *out = &pr->w.m;
    if (pr->opts.p >= 2) {
        MU_CHECK(mu_k_syrk(be, MU_NO_TRANS, 1.0, &pr->w.m, 0.0, &pr->w.m2));
        *out = &pr->w.m2;
    }
    if (pr->opts.p == 4) {
        MU_CHECK(mu_k_syrk(be, MU_NO_TRANS, 1.0, &pr->w.m2, 0.0, &pr->w.m4));
        *out = &pr->w.m4;
    }
    return MU_OK;
}

static mu_status_t newton_step(spd_problem_t *pr, int *gemms)
{
    mu_backend_t *be = pr->be;
    const int p = pr->opts.p;
    MU_CHECK(mu_k_axpby(be, -1.0 / p, &pr->w.n, 0.0, &pr->w.m));
    MU_CHECK(mu_k_add_identity(be, (double)(p + 1) / p, &pr->w.m));

    MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, &pr->w.m, pr->y, 0.0, &pr->w.y_next));
    MU_CHECK(mu_k_copy(be, &pr->w.y_next, pr->y));
    if (p == 1) {
        MU_CHECK(
            mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, &pr->w.x, &pr->w.m, 0.0, &pr->w.x_next));
        swap(&pr->w.x, &pr->w.x_next);
    }
    const mu_mat_t *mp;
    MU_CHECK(power_of_m(pr, &mp));
    MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, mp, &pr->w.n, 0.0, &pr->w.n_next));
    MU_CHECK(mu_k_symmetrize(be, &pr->w.n_next));
    swap(&pr->w.n, &pr->w.n_next);
    /* M Y, X M (p = 1), the powers of M, M^p N */
    *gemms += 1 + (p == 1) + (p == 2 ? 1 : p == 4 ? 2 : 0) + 1;
    return MU_OK;
}

static mu_status_t iterate(spd_problem_t *pr, mu_spd_root_report_t *rep)
{
    const double tol = pr->opts.tol > 0.0
                           ? pr->opts.tol
                           : 4.0 * sqrt((double)pr->a->rows) * mu_dtype_unit_roundoff(pr->a->dtype);
    double previous = INFINITY;
    for (rep->iters = 0;; rep->iters++) {
        MU_CHECK(mu_k_dist_identity(pr->be, &pr->w.n, &rep->distance));
        if (!isfinite(rep->distance) || rep->distance > DIVERGED)
            return mu_error(MU_ERR_NUMERIC,
                            "spd root: Newton diverged after %d steps (is A positive definite?)",
                            rep->iters);
        const bool stalled = rep->distance < QUADRATIC_REGIME && rep->distance > 0.5 * previous;
        if (rep->distance <= tol || stalled)
            return MU_OK;
        if (rep->iters == pr->opts.max_iters)
            return mu_error(MU_ERR_NUMERIC,
                            "spd root: no convergence in %d steps (||N - I||_F = %.3g)", rep->iters,
                            rep->distance);
        previous = rep->distance;
        MU_CHECK(newton_step(pr, &rep->gemms));
    }
}

/* R = B - A Y (B = I when absent); *relative = ||R||_F / (||A||_F ||Y||_F + ||B||_F). */
static mu_status_t residual(spd_problem_t *pr, double *relative)
{
    mu_backend_t *be = pr->be;
    double norm_a, norm_y, norm_b, norm_r;
    if (pr->b) {
        MU_CHECK(mu_k_copy(be, pr->b, &pr->w.r));
        MU_CHECK(mu_k_norm_frob(be, pr->b, &norm_b));
    } else {
        MU_CHECK(mu_k_set_identity(be, 1.0, &pr->w.r));
        norm_b = sqrt((double)pr->a->rows);
    }
    MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, -1.0, pr->a, pr->y, 1.0, &pr->w.r));
    MU_CHECK(mu_k_norm_frob(be, pr->a, &norm_a));
    MU_CHECK(mu_k_norm_frob(be, pr->y, &norm_y));
    MU_CHECK(mu_k_norm_frob(be, &pr->w.r, &norm_r));
    *relative = norm_r / (norm_a * norm_y + norm_b);
    return MU_OK;
}

/* Y <- Y + X (B - A Y), with X ~ A^-1 from the iteration. */
static mu_status_t refine(spd_problem_t *pr, mu_spd_root_report_t *rep)
{
    MU_CHECK(residual(pr, &rep->residual_newton));
    rep->residual_final = rep->residual_newton;
    rep->gemms++;
    for (int step = 0; step < pr->opts.refine_steps; step++) {
        MU_CHECK(mu_k_gemm(pr->be, MU_NO_TRANS, MU_NO_TRANS, 1.0, &pr->w.x, &pr->w.r, 1.0, pr->y));
        MU_CHECK(residual(pr, &rep->residual_final));
        rep->gemms += 2; /* the correction and the next residual */
    }
    return MU_OK;
}

mu_status_t mu_spd_inv_root(mu_backend_t *be, const mu_mat_t *a, const mu_mat_t *b,
                            const mu_spd_root_opts_t *opts, mu_mat_t *y,
                            mu_spd_root_report_t *report)
{
    mu_spd_root_report_t local;
    mu_spd_root_report_t *rep = report ? report : &local;
    memset(rep, 0, sizeof *rep);
    if (!be)
        return mu_error(MU_ERR_INVALID, "spd root: null backend");
    MU_CHECK(check_arguments(a, b, y, opts));
    spd_problem_t pr = {.be = be, .a = a, .b = b, .y = y, .opts = *opts};

    double hi;
    MU_CHECK(mu_k_norm_frob(be, a, &hi));
    if (!(hi > 0.0) || !isfinite(hi))
        return mu_error(MU_ERR_NUMERIC, "spd root: ||A||_F = %g; A must be finite and non-zero",
                        hi);
    const double lo =
        opts->lambda_min > 0.0 ? fmin(opts->lambda_min, hi) : hi * MU_SPD_ASSUMED_MIN_RATIO;
    rep->start_c = scaled_start(opts->p, lo, hi);

    mu_status_t status;
    MU_CHECK_GOTO(status, alloc_work(&pr), out_with_work);
    MU_CHECK_GOTO(status, start(&pr, rep->start_c), out_with_work);
    MU_CHECK_GOTO(status, iterate(&pr, rep), out_with_work);
    if (opts->p == 1)
        MU_CHECK_GOTO(status, refine(&pr, rep), out_with_work);
out_with_work:
    release_work(&pr);
    return status;
}
