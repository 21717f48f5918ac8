/*
 * The minimax quadratic of one Inverse Root Express step (kernels/root_schedule.h):
 * q minimizing max_{y in [l,u]} |1 - y q(y)^p| with q > 0.
 *
 * For fixed nodes l < y1 < y2 < u the levelled equations 1 - y_i q(y_i)^p = s_i E
 * (s = +, -, +, -) are nonlinear in q once p > 1, so each Remez exchange solves them by
 * Newton's method in (q, E), then moves y1, y2 to phi's extrema. Started cold on a wide
 * interval, Newton finds spurious levelled solutions for even p: q changes sign inside
 * [l, u], which q^p cannot see at four nodes, and the true error on the interval is then 1.
 * Continuation avoids them: the solve starts on [0.9 u, u], where the Taylor quadratic of
 * y^(-1/p) is already close to optimal, and lowers the left end by a factor of 4 per stage
 * down to l, each stage starting from the last one's q and nodes. Every result is checked:
 * q > 0 on [l, u], and the reported error is phi's exact range, not the levelled E.
 *
 * Arithmetic: long double, with q written in the shifted variable t = (y - y0) / h,
 * y0 and h the centre and half-width of the stage's interval, so that the 4x4 systems stay
 * well conditioned down to the narrowest intervals (as in minimax.c).
 */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "kernels/minimax_impl.h"
#include "kernels/root_schedule.h"

typedef long double real;

/* Narrower than this relative half-width, the minimax error (about (h/y0)^3) is below
 * double resolution and the Taylor quadratic of y^(-1/p) at the centre is as good. */
static const double NARROW_HALF_WIDTH = 1e-6;
static const real CONTINUATION_START = 0.9L; /* the first stage is [0.9 u, u] */
static const real CONTINUATION_FACTOR = 4.0L;
static const real NODE_SETTLED = 1e-10L;
static const real LEVEL_SETTLED = 1e-18L;
static const real NEWTON_SETTLED = 1e-17L;
enum { REMEZ_MAX_STEPS = 100, NEWTON_MAX_STEPS = 60, NEWTON_MAX_HALVINGS = 40 };

typedef struct stage {
    int p;
    real l, u, y0, h; /* t = (y - y0) / h */
    real node[4];
    real x[4]; /* alpha, beta, gamma (q in t) and the level E */
} stage_t;

/* v^e for the small exponents here (0..4). */
static real power(real v, int e)
{
    real r = 1;
    for (int i = 0; i < e; i++)
        r *= v;
    return r;
}

static real q_shifted(const stage_t *s, const real x[4], real y)
{
    const real t = (y - s->y0) / s->h;
    return x[0] + t * (x[1] + t * x[2]);
}

/* Residuals of the levelled equations at the nodes; false where q <= 0 at a node. */
static bool levelled_residual(const stage_t *s, const real x[4], real f[4])
{
    for (int i = 0; i < 4; i++) {
        const real q = q_shifted(s, x, s->node[i]);
        if (!(q > 0))
            return false;
        f[i] = 1 - s->node[i] * power(q, s->p) - ((i % 2 == 0) ? 1 : -1) * x[3];
    }
    return true;
}

static real max_abs(const real v[4])
{
    real m = 0;
    for (int i = 0; i < 4; i++)
        m = fmaxl(m, fabsl(v[i]));
    return m;
}

/* One damped Newton step on the levelled equations; false if it cannot make progress. */
static bool newton_step(stage_t *s, real *move)
{
    real f[4], jac[4][4];
    if (!levelled_residual(s, s->x, f))
        return false;
    const real before = max_abs(f);
    for (int i = 0; i < 4; i++) {
        const real y = s->node[i], t = (y - s->y0) / s->h;
        const real d = -s->p * y * power(q_shifted(s, s->x, y), s->p - 1);
        jac[i][0] = d;
        jac[i][1] = d * t;
        jac[i][2] = d * t * t;
        jac[i][3] = (i % 2 == 0) ? -1 : 1;
        f[i] = -f[i];
    }
    if (!mu_solve4l(jac, f))
        return false;
    for (int halving = 0; halving < NEWTON_MAX_HALVINGS; halving++) {
        const real lambda = ldexpl(1, -halving);
        real trial[4], g[4];
        for (int j = 0; j < 4; j++)
            trial[j] = s->x[j] + lambda * f[j];
        /* Accept the full step near the solution (where |F| is round-off), else descent. */
        if (levelled_residual(s, trial, g) && (halving == 0 || max_abs(g) < before)) {
            memcpy(s->x, trial, sizeof trial);
            *move = lambda * max_abs(f);
            return true;
        }
    }
    return false;
}

static bool solve_levelled(stage_t *s)
{
    for (int it = 0; it < NEWTON_MAX_STEPS; it++) {
        real move;
        if (!newton_step(s, &move))
            return false;
        if (move <= NEWTON_SETTLED * fmaxl(1, max_abs(s->x)))
            return true;
    }
    return true; /* the exchange loop decides whether the nodes settled */
}

/* phi's interior extrema: (2p+1) gamma t^2 + ((p+1) beta + 2 p gamma k) t + alpha + p beta k
 * = 0 with k = y0 / h (q + p y q' = 0 in the shifted variable). */
static bool interior_extrema(const stage_t *s, real *y1, real *y2)
{
    const int p = s->p;
    const real k = s->y0 / s->h;
    const real qa = (2 * p + 1) * s->x[2], qb = (p + 1) * s->x[1] + 2 * p * s->x[2] * k,
               qc = s->x[0] + p * s->x[1] * k;
    const real disc = qb * qb - 4 * qa * qc;
    if (qa == 0 || !(disc > 0))
        return false;
    const real w = -(qb + copysignl(sqrtl(disc), qb)) / 2;
    const real t1 = fminl(w / qa, qc / w), t2 = fmaxl(w / qa, qc / w);
    *y1 = s->y0 + s->h * t1;
    *y2 = s->y0 + s->h * t2;
    return s->l < *y1 && *y1 < *y2 && *y2 < s->u;
}

static bool remez(stage_t *s)
{
    real previous = INFINITY;
    for (int step = 0; step < REMEZ_MAX_STEPS; step++) {
        real y1, y2;
        if (!solve_levelled(s) || !interior_extrema(s, &y1, &y2))
            return false;
        const real move = fmaxl(fabsl(y1 - s->node[1]), fabsl(y2 - s->node[2])) / (s->u - s->l);
        s->node[1] = y1;
        s->node[2] = y2;
        if (move <= NODE_SETTLED || fabsl(s->x[3] - previous) <= LEVEL_SETTLED)
            return true;
        previous = s->x[3];
    }
    return false;
}

/* Moves q between the monomial form (m: a, b, c) and the stage's shifted form. */
static void to_shifted(stage_t *s, const real m[3])
{
    s->x[0] = m[0] + s->y0 * (m[1] + s->y0 * m[2]);
    s->x[1] = (m[1] + 2 * m[2] * s->y0) * s->h;
    s->x[2] = m[2] * s->h * s->h;
}

static void to_monomial(const stage_t *s, real m[3])
{
    m[2] = s->x[2] / (s->h * s->h);
    m[1] = s->x[1] / s->h - 2 * m[2] * s->y0;
    m[0] = s->x[0] - s->y0 * (m[1] + s->y0 * m[2]);
}

static void set_interval(stage_t *s, real l, real u)
{
    s->l = l;
    s->u = u;
    s->y0 = (l + u) / 2;
    s->h = (u - l) / 2;
    s->node[0] = l;
    s->node[3] = u;
}

/* The quadratic Taylor polynomial of y^(-1/p) at y0, in monomials. */
static void taylor(int p, real y0, real m[3])
{
    const real e = -1.0L / p;
    const real f0 = powl(y0, e), f1 = e * f0 / y0, f2 = e * (e - 1) * f0 / (y0 * y0) / 2;
    m[0] = f0 - f1 * y0 + f2 * y0 * y0;
    m[1] = f1 - 2 * f2 * y0;
    m[2] = f2;
}

static bool continuation(int p, double l, double u, real m[3])
{
    stage_t s = {.p = p};
    set_interval(&s, fmaxl(l, CONTINUATION_START * u), u);
    taylor(p, s.y0, m);
    s.node[1] = s.y0 - s.h / 2; /* the extrema of a cubic error: Chebyshev points */
    s.node[2] = s.y0 + s.h / 2;
    for (;;) {
        to_shifted(&s, m); /* the level E carries over from the last stage */
        if (!remez(&s))
            return false;
        to_monomial(&s, m);
        if (s.l <= l)
            return true;
        const real y1 = s.node[1], y2 = s.node[2];
        set_interval(&s, fmaxl(l, s.l / CONTINUATION_FACTOR), u);
        s.node[1] = y1;
        s.node[2] = y2;
    }
}

double mu_root_phi(const mu_root_coeff_t *q, int p, double y)
{
    return y * (double)power(q->a + y * (q->b + y * q->c), p);
}

void mu_root_step_image(const mu_root_coeff_t *q, int p, double lo, double hi, double *img_lo,
                        double *img_hi)
{
    double vmin = fmin(mu_root_phi(q, p, lo), mu_root_phi(q, p, hi));
    double vmax = fmax(mu_root_phi(q, p, lo), mu_root_phi(q, p, hi));
    /* Critical points: a + (p+1) b y + (2p+1) c y^2 = 0 (or q = 0, where phi = 0). */
    const double k2 = (2 * p + 1) * q->c, k1 = (p + 1) * q->b, k0 = q->a;
    double roots[2];
    int count = 0;
    if (k2 == 0.0) {
        if (k1 != 0.0)
            roots[count++] = -k0 / k1;
    } else if (k1 * k1 - 4 * k2 * k0 >= 0.0) {
        const double w = -0.5 * (k1 + copysign(sqrt(k1 * k1 - 4 * k2 * k0), k1));
        roots[count++] = w / k2;
        if (w != 0.0)
            roots[count++] = k0 / w;
    }
    for (int i = 0; i < count; i++)
        if (roots[i] > lo && roots[i] < hi) {
            vmin = fmin(vmin, mu_root_phi(q, p, roots[i]));
            vmax = fmax(vmax, mu_root_phi(q, p, roots[i]));
        }
    *img_lo = vmin;
    *img_hi = vmax;
}

/* min of q over [l, u]: the endpoints and, for a convex q, its vertex. */
static double min_of_q(const mu_root_coeff_t *q, double l, double u)
{
    double m = fmin(q->a + l * (q->b + l * q->c), q->a + u * (q->b + u * q->c));
    if (q->c > 0.0) {
        const double v = -q->b / (2 * q->c);
        if (v > l && v < u)
            m = fmin(m, q->a + v * (q->b + v * q->c));
    }
    return m;
}

mu_status_t mu_root_minimax(int p, double l, double u, mu_root_coeff_t *out, double *max_error)
{
    if (!out || (p != 1 && p != 2 && p != 4) || !(l > 0.0) || !(u >= l) || !isfinite(u))
        return mu_error(MU_ERR_INVALID,
                        "inverse root minimax: need p in {1, 2, 4} and 0 < l <= u, got p=%d "
                        "l=%g u=%g",
                        p, l, u);
    real m[3];
    if ((u - l) / (u + l) < NARROW_HALF_WIDTH)
        taylor(p, ((real)l + u) / 2, m);
    else if (!continuation(p, l, u, m))
        return mu_error(MU_ERR_NUMERIC, "inverse root minimax: Remez failed on [%g, %g], p=%d", l,
                        u, p);
    *out = (mu_root_coeff_t){(double)m[0], (double)m[1], (double)m[2]};
    if (!(min_of_q(out, l, u) > 0.0))
        return mu_error(MU_ERR_NUMERIC,
                        "inverse root minimax: the quadratic on [%g, %g] (p=%d) is not positive", l,
                        u, p);
    if (max_error) {
        double lo, hi;
        mu_root_step_image(out, p, l, u, &lo, &hi);
        *max_error = fmax(fabs(1.0 - lo), fabs(hi - 1.0));
    }
    return MU_OK;
}
