#include "kernels/certificate.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/lanczos.h"
#include "kernels/probes.h"

/* Stream id of the certificate's probes in the counter RNG. */
static const uint64_t CERT_STREAM = 0x6365727466ULL; /* "certf" */

/* Hutchinson's estimate of ||R||_F^2 is taken twice over: it falls below half the truth only
 * when few directions carry R (chi-square with k degrees of freedom below k/2), and then the
 * Cauchy-Schwarz step, which counts all min(m, n) directions, has slack of sqrt(min(m, n) /
 * few) to spare (docs/numerics.md). */
static const double HUTCHINSON_MARGIN = 2.0;

/* The packed operands' first FOLD * floor(mn / FOLD) entries as (mn / FOLD) x FOLD matrices A, B:
 * <Q, G> is the trace of A^T B, one GEMM whose inner dimension is long and whose output is
 * FOLD x FOLD. A 1 x mn by mn x 1 GEMM computes the same, but BLAS runs it several times slower
 * (at 512^2, 0.68 ms against 0.15 ms for a k-column pass over Q). */
enum { FOLD = 8 };

void mu_cert_opts_default(mu_cert_opts_t *opts)
{
    *opts = (mu_cert_opts_t){
        .probes = MU_CERT_DEFAULT_PROBES,
        .lanczos_probes = MU_CERT_DEFAULT_LANCZOS_PROBES,
        .lanczos_steps = MU_CERT_DEFAULT_LANCZOS_STEPS,
        .seed = 0xce27,
    };
}

/* The thresholds of the schedule bound: log-spaced over [1e-6, 1/2] of the normalized
 * singular value, where the best trade between the floor and the count below lies. */
static void schedule_floors(const mu_schedule_t *schedule, double scale, double roundoff,
                            mu_cert_limits_t *out)
{
    out->floors = MU_CERT_FLOORS;
    for (int j = 0; j < MU_CERT_FLOORS; j++) {
        const double x = 1e-6 * pow(0.5 / 1e-6, (double)j / (MU_CERT_FLOORS - 1));
        double lo, hi;
        mu_schedule_image(schedule, x, 1.0, &lo, &hi);
        out->threshold[j] = x * scale;
        out->floor[j] = fmax(0.0, lo - roundoff);
    }
}

void mu_cert_limits_for(const mu_schedule_t *schedule, double lower, double scale, mu_dtype_t dtype,
                        mu_cert_limits_t *out)
{
    double band = 0.0, roundoff = 0.0, top = 1.0, unused;
    if (schedule) {
        roundoff = mu_dtype_unit_roundoff(dtype) * mu_schedule_slope_at_zero(schedule);
        band = mu_schedule_error_bound(schedule, lower, 1.0) + roundoff;
        mu_schedule_image(schedule, 0.0, 1.0, &unused, &top); /* the largest f anywhere */
    }
    *out = (mu_cert_limits_t){
        .overshoot = fmax(top - 1.0 + roundoff, MU_CERT_MIN_OVERSHOOT),
        .descent = 1.0 - fmin(band + MU_CERT_UNREACHED_DESCENT, 0.5),
        .asymmetry = 0.25,
        .negativity = 0.25,
    };
    if (schedule)
        schedule_floors(schedule, scale, roundoff, out);
}

const char *mu_cert_verdict_name(mu_cert_verdict_t verdict)
{
    static const char *const names[] = {"pass", "non-finite", "overshoot", "descent", "misaligned"};
    return (unsigned)verdict < sizeof names / sizeof names[0] ? names[verdict] : "?";
}

/* ---- work ------------------------------------------------------------------------------ */

typedef struct cert_work {
    mu_mat_t g64, q64;        /* fp64 copies (operands()) */
    mu_mat_t v, y, z, w, dot; /* cols x k, rows x k, cols x k, rows x k, 1 x 1 */
    mu_mat_t fold;            /* FOLD x FOLD, for <Q, G> */
    double *hv, *hy, *hz, *hw;
} cert_work_t;

static void release_work(mu_backend_t *be, cert_work_t *cw)
{
    mu_mat_t *mats[] = {&cw->g64, &cw->q64, &cw->v, &cw->y, &cw->z, &cw->w, &cw->dot, &cw->fold};
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++)
        mu_k_release(be, mats[i]);
    free(cw->hv);
    free(cw->hy);
    free(cw->hz);
    free(cw->hw);
}

/* Where fp32 probe products can neither overflow nor lose bits to subnormals. */
static const double SAFE_NORM_MIN = 1e-15, SAFE_NORM_MAX = 1e15;

/* The operands the GEMMs run on: the matrices themselves, or fp64 copies (G scaled to unit
 * Frobenius norm) for bf16, whose rounding (2^-8 on every probe product) would swamp
 * ||R||_F, and for a G so large or small that fp32 products would overflow or underflow.
 * *g_norm is ||G||_F (on entry: the caller's, or 0 to measure it); *g_scale the factor G was
 * divided by (1 when it was not). */
static mu_status_t operands(mu_backend_t *be, const mu_mat_t *g, const mu_mat_t *q, cert_work_t *cw,
                            const mu_mat_t **gp, const mu_mat_t **qp, double *g_norm,
                            double *g_scale)
{
    *gp = g;
    *qp = q;
    *g_scale = 1.0;
    if (g->dtype != MU_DTYPE_BF16) {
        if (!(*g_norm > 0.0)) /* the caller did not know it */
            MU_CHECK(mu_k_norm_frob(be, g, g_norm));
        if (g->dtype == MU_DTYPE_F64 || (*g_norm >= SAFE_NORM_MIN && *g_norm <= SAFE_NORM_MAX) ||
            *g_norm == 0.0)
            return MU_OK;
    }
    MU_CHECK(mu_k_alloc(be, g->rows, g->cols, MU_DTYPE_F64, &cw->g64));
    MU_CHECK(mu_k_alloc(be, q->rows, q->cols, MU_DTYPE_F64, &cw->q64));
    MU_CHECK(mu_k_copy(be, g, &cw->g64));
    MU_CHECK(mu_k_copy(be, q, &cw->q64));
    if (g->dtype == MU_DTYPE_BF16)
        MU_CHECK(mu_k_norm_frob(be, &cw->g64, g_norm));
    if (*g_norm > 0.0 && isfinite(*g_norm)) {
        MU_CHECK(mu_k_scale(be, 1.0 / *g_norm, &cw->g64));
        *g_scale = *g_norm;
    }
    *gp = &cw->g64;
    *qp = &cw->q64;
    return MU_OK;
}

static mu_status_t alloc_work(mu_backend_t *be, int64_t rows, int64_t cols, int k, mu_dtype_t dt,
                              cert_work_t *cw)
{
    MU_CHECK(mu_k_alloc(be, cols, k, dt, &cw->v));
    MU_CHECK(mu_k_alloc(be, rows, k, dt, &cw->y));
    MU_CHECK(mu_k_alloc(be, cols, k, dt, &cw->z));
    MU_CHECK(mu_k_alloc(be, rows, k, dt, &cw->w));
    MU_CHECK(mu_k_alloc(be, 1, 1, dt, &cw->dot));
    MU_CHECK(mu_k_alloc(be, FOLD, FOLD, dt, &cw->fold));
    const size_t wide = (size_t)(rows > cols ? rows : cols) * (size_t)k;
    cw->hv = malloc(wide * sizeof *cw->hv);
    cw->hy = malloc(wide * sizeof *cw->hy);
    cw->hz = malloc(wide * sizeof *cw->hz);
    cw->hw = malloc(wide * sizeof *cw->hw);
    if (!cw->hv || !cw->hy || !cw->hz || !cw->hw)
        return mu_error(MU_ERR_NOMEM, "certificate: cannot allocate %lld probe entries",
                        (long long)wide);
    return MU_OK;
}

/* A row of a (as a 1 x cols matrix) and the same row as a cols x 1 column. */
static mu_mat_t row_of(const mu_mat_t *a, int64_t i, bool as_column)
{
    char *base = (char *)a->data + (size_t)(i * a->ld) * mu_dtype_size(a->dtype);
    if (as_column)
        return (mu_mat_t){.rows = a->cols, .cols = 1, .ld = 1, .dtype = a->dtype, .data = base};
    return (mu_mat_t){.rows = 1, .cols = a->cols, .ld = a->cols, .dtype = a->dtype, .data = base};
}

static mu_mat_t folded(const mu_mat_t *a, int64_t offset, int64_t rows, int64_t cols)
{
    char *base = (char *)a->data + (size_t)offset * mu_dtype_size(a->dtype);
    return (mu_mat_t){.rows = rows, .cols = cols, .ld = cols, .dtype = a->dtype, .data = base};
}

/* <Q, G>: folded when both are packed (the rest of mn mod FOLD entries as a row by a column),
 * else row by row. */
static mu_status_t inner_product(mu_backend_t *be, const mu_mat_t *q, const mu_mat_t *g,
                                 cert_work_t *cw, double *out)
{
    const int64_t n = q->rows * q->cols, main = n - n % FOLD;
    double fold[FOLD * FOLD], rest = 0.0;
    *out = 0.0;
    if (q->ld != q->cols || g->ld != g->cols) {
        for (int64_t i = 0; i < q->rows; i++) {
            const mu_mat_t qi = row_of(q, i, false), gi = row_of(g, i, true);
            MU_CHECK(
                mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, &qi, &gi, i ? 1.0 : 0.0, &cw->dot));
        }
        return mu_k_download(be, &cw->dot, out, MU_DTYPE_F64, 1);
    }
    if (main > 0) {
        const mu_mat_t a = folded(q, 0, main / FOLD, FOLD), b = folded(g, 0, main / FOLD, FOLD);
        MU_CHECK(mu_k_gemm(be, MU_TRANS, MU_NO_TRANS, 1.0, &a, &b, 0.0, &cw->fold));
        MU_CHECK(mu_k_download(be, &cw->fold, fold, MU_DTYPE_F64, FOLD));
        for (int j = 0; j < FOLD; j++)
            *out += fold[j * FOLD + j];
    }
    if (main < n) {
        const mu_mat_t a = folded(q, main, 1, n - main), b = folded(g, main, n - main, 1);
        MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, &a, &b, 0.0, &cw->dot));
        MU_CHECK(mu_k_download(be, &cw->dot, &rest, MU_DTYPE_F64, 1));
    }
    *out += rest;
    return MU_OK;
}

/* ---- the descent bound and the alignment, from one probe block ---------------------------- */

/* Y = G V, Z = Q^T Y, W = Q Z: R V = Y - W with R = G - Q Q^T G, and V^T Z = V^T Q^T G V. */
static mu_status_t descent_probes(mu_backend_t *be, const mu_mat_t *g, const mu_mat_t *q, int k,
                                  cert_work_t *cw)
{
    MU_CHECK(mu_k_upload(be, cw->hv, MU_DTYPE_F64, k, &cw->v));
    MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, g, &cw->v, 0.0, &cw->y));
    MU_CHECK(mu_k_gemm(be, MU_TRANS, MU_NO_TRANS, 1.0, q, &cw->y, 0.0, &cw->z));
    MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, q, &cw->z, 0.0, &cw->w));
    MU_CHECK(mu_k_download(be, &cw->y, cw->hy, MU_DTYPE_F64, k));
    MU_CHECK(mu_k_download(be, &cw->z, cw->hz, MU_DTYPE_F64, k));
    return mu_k_download(be, &cw->w, cw->hw, MU_DTYPE_F64, k);
}

/* rho^2 = sum ||Q^T G v||^2 / sum ||G v||^2: for Q = U f(S) V^T the mean of f^2 weighted by
 * sigma^2 (Hutchinson twice, with the same probes), so it reads the f of G's large
 * directions, which the schedule bound takes on trust. */
static double reach(const cert_work_t *cw, int64_t rows, int64_t cols, int k)
{
    double zz = 0.0, yy = 0.0;
    for (int64_t i = 0; i < cols * k; i++)
        zz += cw->hz[i] * cw->hz[i];
    for (int64_t i = 0; i < rows * k; i++)
        yy += cw->hy[i] * cw->hy[i];
    return yy > 0.0 ? sqrt(zz / yy) : 0.0;
}

/* Hutchinson: E ||R v||^2 = ||R||_F^2 for v ~ N(0, I). */
static double residual_energy(const cert_work_t *cw, int64_t rows, int k)
{
    double sum = 0.0;
    for (int64_t i = 0; i < rows * k; i++) {
        const double d = cw->hy[i] - cw->hw[i];
        sum += d * d;
    }
    return sum / k;
}

/* Asymmetry and negativity of M = V^T Z (k x k). */
static mu_status_t alignment(const cert_work_t *cw, int64_t cols, int k, mu_cert_t *out)
{
    double m[64 * 64], s[64 * 64], eig[64], skew = 0.0, sym = 0.0;
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) {
            double sum = 0.0;
            for (int64_t i = 0; i < cols; i++)
                sum += cw->hv[i * k + a] * cw->hz[i * k + b];
            m[a * k + b] = sum;
        }
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) {
            s[a * k + b] = 0.5 * (m[a * k + b] + m[b * k + a]);
            const double kk = 0.5 * (m[a * k + b] - m[b * k + a]);
            skew += kk * kk;
            sym += s[a * k + b] * s[a * k + b];
        }
    if (LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', k, s, k, eig) != 0)
        return mu_error(MU_ERR_NUMERIC, "certificate: the probe compression has no eigenvalues");
    const double top = fmax(fabs(eig[0]), fabs(eig[k - 1]));
    out->asymmetry = sym > 0.0 ? sqrt(skew / sym) : 0.0;
    out->negativity = top > 0.0 ? fmax(0.0, -eig[0]) / top : 0.0;
    return MU_OK;
}

/* ||Q||_2 >= sqrt(largest Ritz value of Q^T Q), started from the first k probe columns
 * (kernels/lanczos.h: plain power steps from a random start stall where only a few
 * directions overshoot). */
static mu_status_t spectral_norm(mu_backend_t *be, const mu_mat_t *q, int k, int stride, int steps,
                                 const cert_work_t *cw, double *out)
{
    mu_lanczos_t lz;
    const mu_status_t status =
        mu_lanczos_run(be, q, MU_LANCZOS_GRAM, cw->hv, stride, k, steps, &lz);
    double top = 0.0;
    for (int j = 0; status == MU_OK && j < k; j++) {
        const double ritz = mu_lanczos_largest(&lz, j);
        top = isfinite(ritz) ? fmax(top, ritz) : ritz; /* a NaN must reach the caller */
        if (!isfinite(top))
            break;
    }
    mu_lanczos_free(&lz);
    *out = sqrt(fmax(top, 0.0)) * (isfinite(top) ? 1.0 : NAN);
    return status;
}

static mu_status_t check_args(const mu_mat_t *g, const mu_mat_t *q, const mu_cert_opts_t *o)
{
    if (!g || !q || o->probes < 1 || o->probes > 64 || o->lanczos_probes < 1 ||
        o->lanczos_probes > o->probes || o->lanczos_steps < 1 ||
        o->lanczos_steps > MU_SCHEDULE_MAX_ITERS)
        return mu_error(MU_ERR_INVALID, "certificate: bad arguments");
    if (g->rows != q->rows || g->cols != q->cols || g->dtype != q->dtype)
        return mu_error(MU_ERR_INVALID, "certificate: G is %lldx%lld %s, Q %lldx%lld %s",
                        (long long)g->rows, (long long)g->cols, mu_dtype_name(g->dtype),
                        (long long)q->rows, (long long)q->cols, mu_dtype_name(q->dtype));
    if (g->rows == 0 || g->cols == 0)
        return mu_error(MU_ERR_INVALID, "certificate: empty matrix");
    return MU_OK;
}

/* The two lower bounds on <Q, G> / ||G||_* (docs/numerics.md), each valid for Q = U f(S) V^T
 * with f >= 0, the better one counts:
 *   residual: the lost descent is at most sqrt(2 s ||R||_F^2 estimate) (Cauchy-Schwarz over
 *             the s = min(m, n) directions); tight when the schedule's band is narrow;
 *   schedule: every direction with sigma >= t ||G||_F has f >= floor(t), so those carry at
 *             most <Q, G> / floor(t) of ||G||_*, and the others at most s t ||G||_F; the best
 *             threshold t counts. Tight when the band is wide (few steps, NS5) and s t small. */
/* The schedule's promise f >= floor for sigma >= t ||G||_F implies rho^2 >= floor^2 (1 - s t^2)
 * (at most s t^2 of ||G||_F^2 lies below); a result that reads well below it, a Q scaled down
 * or stopped early, breaks the promise, and the bound from that threshold is not used. The
 * factor leaves room for the probes' spread. */
static const double REACH_MARGIN = 0.9;

static void descent_bounds(const mu_cert_limits_t *lim, int64_t s, double residual_energy,
                           double g_norm, mu_cert_t *out)
{
    const double inner = out->inner;
    out->deficit_bound = sqrt(HUTCHINSON_MARGIN * (double)s * residual_energy);
    out->residual_bound = inner > 0.0 ? inner / (inner + out->deficit_bound) : 0.0;
    out->schedule_bound = 0.0;
    for (int j = 0; lim && inner > 0.0 && j < lim->floors; j++) {
        const double t = lim->threshold[j], floor = lim->floor[j];
        const bool kept = out->reach * out->reach >=
                          REACH_MARGIN * floor * floor * fmax(0.0, 1.0 - (double)s * t * t);
        if (floor > 0.0 && kept)
            out->schedule_bound =
                fmax(out->schedule_bound, inner / (inner / floor + (double)s * t * g_norm));
    }
    out->descent_bound = fmax(out->residual_bound, out->schedule_bound);
    if (g_norm == 0.0)
        out->descent_bound = 1.0; /* G = 0: every Q is a steepest-descent step */
}

static mu_status_t measure(mu_backend_t *be, const mu_mat_t *g, const mu_mat_t *q, double g_norm,
                           const mu_cert_limits_t *lim, const mu_cert_opts_t *o, cert_work_t *cw,
                           mu_cert_t *out)
{
    const mu_mat_t *gp, *qp;
    double g_scale;
    MU_CHECK(operands(be, g, q, cw, &gp, &qp, &g_norm, &g_scale));
    const int64_t rows = g->rows, cols = g->cols, s = rows < cols ? rows : cols;
    const int k = o->probes;
    MU_CHECK(alloc_work(be, rows, cols, k, gp->dtype, cw));
    MU_CHECK(inner_product(be, qp, gp, cw, &out->inner));
    if (!isfinite(out->inner)) /* NaN or Inf in Q (or G) reaches <Q, G> */
        return mu_error(MU_ERR_NUMERIC, "certificate: Q has non-finite entries");
    mu_probes_signs(o->seed, CERT_STREAM, cols, k, cw->hv);
    MU_CHECK(descent_probes(be, gp, qp, k, cw));
    out->reach = reach(cw, rows, cols, k);
    descent_bounds(lim, s, residual_energy(cw, rows, k), g_norm / g_scale, out);
    MU_CHECK(alignment(cw, cols, k, out));
    MU_CHECK(spectral_norm(be, qp, o->lanczos_probes, k, o->lanczos_steps, cw, &out->q_norm));
    if (!isfinite(out->inner) || !isfinite(out->deficit_bound) || !isfinite(out->q_norm) ||
        !isfinite(out->asymmetry) || !isfinite(g_norm))
        return mu_error(MU_ERR_NUMERIC, "certificate: non-finite probe products (G or Q)");
    out->inner *= g_scale; /* in G's own units */
    out->deficit_bound *= g_scale;
    return MU_OK;
}

mu_status_t mu_cert_measure(mu_backend_t *be, const mu_mat_t *g, const mu_mat_t *q, double g_norm,
                            const mu_cert_limits_t *limits, const mu_cert_opts_t *opts,
                            mu_cert_t *out)
{
    mu_cert_opts_t defaults;
    mu_cert_opts_default(&defaults);
    const mu_cert_opts_t *o = opts ? opts : &defaults;
    if (!be || !out)
        return mu_error(MU_ERR_INVALID, "certificate: bad arguments");
    MU_CHECK(check_args(g, q, o));
    *out = (mu_cert_t){0};
    cert_work_t cw = {0};
    const mu_status_t status = measure(be, g, q, g_norm, limits, o, &cw, out);
    release_work(be, &cw);
    return status;
}

mu_cert_verdict_t mu_cert_judge(const mu_cert_t *c, const mu_cert_limits_t *lim, double *value,
                                double *limit)
{
    double v = c->descent_bound, l = lim->descent;
    mu_cert_verdict_t verdict = MU_CERT_PASS;
    if (!(c->q_norm <= 1.0 + lim->overshoot)) {
        verdict = MU_CERT_OVERSHOOT;
        v = c->q_norm, l = 1.0 + lim->overshoot;
    } else if (!(c->asymmetry <= lim->asymmetry)) {
        verdict = MU_CERT_MISALIGNED;
        v = c->asymmetry, l = lim->asymmetry;
    } else if (!(c->negativity <= lim->negativity)) {
        verdict = MU_CERT_MISALIGNED;
        v = c->negativity, l = lim->negativity;
    } else if (!(c->descent_bound >= lim->descent)) {
        verdict = MU_CERT_DESCENT;
    }
    if (value)
        *value = v;
    if (limit)
        *limit = l;
    return verdict;
}
