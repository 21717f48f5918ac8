/* Shampoo's statistics, roots and update for one matrix: see kernels/shampoo.h. */
#include "kernels/shampoo.h"

#include <math.h>
#include <stdlib.h>

/* GEMMs per root, the planning figure: Inverse Root Express took 22-27 at kappa = 1e4, p = 4
 * (muond bench roots). */
static const double ROOT_GEMMS = 25.0;

void mu_shampoo_opts_default(mu_shampoo_opts_t *opts)
{
    *opts = (mu_shampoo_opts_t){MU_SHAMPOO_DEFAULT_BETA, MU_SHAMPOO_DEFAULT_EPSILON,
                                MU_SHAMPOO_DEFAULT_INTERVAL};
}

int64_t mu_shampoo_state_bytes(int64_t rows, int64_t cols)
{
    return (int64_t)sizeof(float) * (2 * rows * rows + 2 * cols * cols + rows * cols);
}

double mu_shampoo_flops(int64_t rows, int64_t cols, int interval)
{
    const double m = (double)rows, n = (double)cols;
    const double per_step = 4.0 * m * n * (m + n); /* the two SYRKs and the two GEMMs */
    return per_step + ROOT_GEMMS * 2.0 * (m * m * m + n * n * n) / (interval > 0 ? interval : 1);
}

double mu_shampoo_root_limit(void)
{
    return MU_SHAMPOO_ROOT_LIMIT;
}

void mu_shampoo_destroy(mu_shampoo_t **s)
{
    if (!s || !*s)
        return;
    for (int side = 0; side < 2; side++) {
        mu_k_release((*s)->be, &(*s)->stat[side]);
        mu_k_release((*s)->be, &(*s)->root[side]);
    }
    mu_k_release((*s)->be, &(*s)->tmp);
    free(*s);
    *s = NULL;
}

mu_status_t mu_shampoo_create(mu_backend_t *be, int64_t rows, int64_t cols,
                              const mu_shampoo_opts_t *opts, mu_shampoo_t **out)
{
    if (!be || !opts || !out || rows < 1 || cols < 1 || !(opts->beta >= 0 && opts->beta <= 1) ||
        !(opts->epsilon > 0 && opts->epsilon <= 1) || opts->interval < 1)
        return mu_error(MU_ERR_INVALID, "shampoo: bad shape or options");
    mu_shampoo_t *s = calloc(1, sizeof *s);
    *out = s;
    if (!s)
        return mu_error(MU_ERR_NOMEM, "shampoo: cannot allocate");
    *s = (mu_shampoo_t){.be = be, .rows = rows, .cols = cols, .opts = *opts};
    const int64_t dim[2] = {rows, cols};
    mu_status_t status = MU_OK;
    for (int side = 0; side < 2; side++) {
        MU_TRY(status, mu_k_alloc(be, dim[side], dim[side], MU_DTYPE_F32, &s->stat[side]));
        MU_TRY(status, mu_k_alloc(be, dim[side], dim[side], MU_DTYPE_F32, &s->root[side]));
        MU_TRY(status, mu_k_fill(be, 0.0, &s->stat[side]));
        MU_TRY(status, mu_k_fill(be, 0.0, &s->root[side]));
    }
    MU_TRY(status, mu_k_alloc(be, rows, cols, MU_DTYPE_F32, &s->tmp));
    if (status != MU_OK)
        mu_shampoo_destroy(out);
    return status;
}

mu_mat_t *mu_shampoo_statistic(mu_shampoo_t *s, mu_shampoo_side_t side)
{
    return &s->stat[side];
}

mu_mat_t *mu_shampoo_root(mu_shampoo_t *s, mu_shampoo_side_t side)
{
    return &s->root[side];
}

/* 1 - beta^t: the EMA's bias correction; sums (beta = 1) have none. */
static double bias_correction(const mu_shampoo_opts_t *o, long t)
{
    return o->beta >= 1.0 ? 1.0 : 1.0 - pow(o->beta, (double)t);
}

static mu_status_t accumulate(mu_shampoo_t *s, const mu_mat_t *g)
{
    const double beta = s->opts.beta, alpha = beta >= 1.0 ? 1.0 : 1.0 - beta;
    MU_CHECK(mu_k_syrk(s->be, MU_NO_TRANS, alpha, g, beta, &s->stat[MU_SHAMPOO_LEFT]));
    return mu_k_syrk(s->be, MU_TRANS, alpha, g, beta, &s->stat[MU_SHAMPOO_RIGHT]);
}

mu_status_t mu_shampoo_regularized(mu_shampoo_t *s, mu_shampoo_side_t side, long t, mu_mat_t *a,
                                   double *lambda_min, bool *zero)
{
    double norm = 0.0;
    MU_CHECK(mu_k_norm_frob(s->be, &s->stat[side], &norm));
    norm /= bias_correction(&s->opts, t);
    *zero = norm == 0.0;
    *lambda_min = s->opts.epsilon * norm;
    if (*zero)
        return MU_OK;
    MU_CHECK(mu_k_axpby(s->be, 1.0 / bias_correction(&s->opts, t), &s->stat[side], 0.0, a));
    return mu_k_add_identity(s->be, *lambda_min, a);
}

/* One side's root by Inverse Root Express, certified. A diverged iteration is a failed
 * certificate, not an error: the caller falls back. */
static mu_status_t refresh_side(mu_shampoo_t *s, mu_shampoo_side_t side, long t, mu_mat_t *a,
                                mu_shampoo_side_report_t *rep)
{
    double lambda_min = 0.0;
    MU_CHECK(mu_shampoo_regularized(s, side, t, a, &lambda_min, &rep->zero));
    if (rep->zero) {
        rep->cert.pass = true;
        return mu_k_fill(s->be, 0.0, &s->root[side]);
    }
    mu_ire_opts_t o;
    mu_ire_opts_default(&o, 4);
    o.lambda_min = lambda_min;
    o.tol = MU_SHAMPOO_ROOT_TOL;
    const double limit = mu_shampoo_root_limit();
    const mu_status_t status = mu_inv_root_express(s->be, a, NULL, &o, &s->root[side], &rep->ire);
    if (status == MU_ERR_NUMERIC) {
        mu_error_clear();
        rep->cert = (mu_ire_cert_t){.frobenius = INFINITY, .spectral = INFINITY, .limit = limit};
        return MU_OK;
    }
    MU_CHECK(status);
    if (s->inject_root_scale != 0.0)
        MU_CHECK(mu_k_scale(s->be, s->inject_root_scale, &s->root[side]));
    return mu_ire_certify(s->be, a, &s->root[side], 4, limit, &rep->cert);
}

/* Roots are due at steps 1, 1 + interval, ..., and whenever one is still zero (no gradient
 * had reached the statistics at the last computation). */
static mu_status_t roots_due(mu_shampoo_t *s, long t, bool *due)
{
    double norm[2] = {0.0, 0.0};
    for (int side = 0; side < 2; side++)
        MU_CHECK(mu_k_norm_frob(s->be, &s->root[side], &norm[side]));
    *due = (t - 1) % s->opts.interval == 0 || norm[0] == 0.0 || norm[1] == 0.0;
    return MU_OK;
}

static mu_status_t refresh(mu_shampoo_t *s, long t, mu_shampoo_report_t *rep)
{
    const int64_t n = s->rows > s->cols ? s->rows : s->cols;
    mu_mat_t work = {0};
    MU_CHECK(mu_k_alloc(s->be, n, n, MU_DTYPE_F32, &work));
    const int64_t dim[2] = {s->rows, s->cols};
    mu_status_t status = MU_OK;
    for (int side = 0; side < 2 && status == MU_OK; side++) {
        mu_mat_t a = {dim[side], dim[side], work.ld, MU_DTYPE_F32, work.data};
        status = refresh_side(s, (mu_shampoo_side_t)side, t, &a, &rep->side[side]);
    }
    mu_k_release(s->be, &work);
    rep->pass = rep->side[0].cert.pass && rep->side[1].cert.pass;
    return status;
}

mu_status_t mu_shampoo_apply(mu_shampoo_t *s, const mu_mat_t *g, mu_mat_t *q)
{
    MU_CHECK(mu_k_gemm(s->be, MU_NO_TRANS, MU_NO_TRANS, 1.0, &s->root[MU_SHAMPOO_LEFT], g, 0.0,
                       &s->tmp));
    MU_CHECK(mu_k_gemm(s->be, MU_NO_TRANS, MU_NO_TRANS, 1.0, &s->tmp, &s->root[MU_SHAMPOO_RIGHT],
                       0.0, q));
    double norm = 0.0; /* grafting onto Muon's step length (kernels/shampoo.h) */
    MU_CHECK(mu_k_norm_frob(s->be, q, &norm));
    const double polar_norm = sqrt((double)(s->rows < s->cols ? s->rows : s->cols));
    return norm > 0.0 && isfinite(norm) ? mu_k_scale(s->be, polar_norm / norm, q) : MU_OK;
}

mu_status_t mu_shampoo_step(mu_shampoo_t *s, const mu_mat_t *g, long t, mu_mat_t *q,
                            mu_shampoo_report_t *rep)
{
    if (!s || !g || !q || !rep || g->rows != s->rows || g->cols != s->cols || t < 1)
        return mu_error(MU_ERR_INVALID, "shampoo step: G must be %lldx%lld and t >= 1",
                        s ? (long long)s->rows : 0LL, s ? (long long)s->cols : 0LL);
    *rep = (mu_shampoo_report_t){.pass = true};
    MU_CHECK(accumulate(s, g));
    MU_CHECK(roots_due(s, t, &rep->refreshed));
    if (rep->refreshed)
        MU_CHECK(refresh(s, t, rep));
    rep->zero = rep->side[0].zero || rep->side[1].zero;
    return rep->pass ? mu_shampoo_apply(s, g, q) : MU_OK;
}
