/*
 * The optimal odd quintic on [l, u] by the Remez exchange (Amsel et al. 2025, Alg. 3).
 *
 * Equioscillation: the optimal p has 1 - p = +E, -E, +E, -E at the nodes l < q < r < u, where
 * q and r are p's interior extrema. Each exchange step solves the 4x4 linear system for
 * (p, E) at the current nodes, then moves q and r to the new polynomial's extrema.
 *
 * Accuracy. The paper writes p in monomials x, x^3, x^5 and solves in fp64. Once l/u is near
 * 1 the four nodes nearly coincide and that system is ill-conditioned: at l/u = 0.9976 (the
 * seventh step of the published schedule) fp64 solves lose 11 digits, which is why the
 * published seventh row differs from the exact minimax polynomial by up to 2.5e-11. Two
 * changes keep every coefficient accurate to about 1e-15:
 *  - a shifted basis p(x) = x (alpha + beta t + gamma t^2), t = (x^2 - y0) / h, with y0 and h
 *    the centre and half-width of [l^2, u^2], so that t lies in [-1, 1];
 *  - extended precision (long double) for the solve and for the expansion back to monomials,
 *    which multiplies gamma's absolute error by (y0/h)^2 (about 1.8e5 at that seventh step).
 * Remez converges quadratically; it stops when the interior nodes no longer move. At the
 * optimum the levelled solution is stationary in the node positions (its derivative in q is
 * -p'(q) = 0), so a node error d costs only O(d^2) in the coefficients. It stops when the
 * nodes move by less than 1e-9 of the interval's width, or when the levelled error E stops
 * changing at long-double resolution (the paper's criterion, |dE| <= 1e-15, made 1000 times
 * finer): on intervals so narrow that E is near 1e-17 the nodes cannot be located better
 * than rounding allows, yet every polynomial with that E is equally good.
 */
#include <math.h>
#include <stdbool.h>

#include "kernels/minimax_impl.h"
#include "kernels/schedule.h"

typedef long double real;

/* Beyond this l/u the interval is narrower than the Remez system can resolve and the paper
 * switches to the limit polynomial (15x - 10x^3 + 3x^5)/8. We centre that limit on the
 * interval's midpoint m (p(x) = q(x/m)), where it is flat to third order (error 2.5 (d/m)^3
 * for half-width d); the paper centres it on u, which is 8 times worse. For the symmetric
 * intervals of the Polar Express recurrence (u = 2 - l) m is exactly 1, giving the published
 * limit row (1.875, -1.25, 0.375). */
static const double NARROW_INTERVAL_RATIO = 1.0 - 5e-6;
/* Converged when the nodes move by less than this fraction of u - l ... */
static const real NODE_SETTLED = 1e-9L;
/* ... or the levelled error changes by less than this (about 10 ulps of 1 in long double). */
static const real LEVEL_SETTLED = 1e-18L;
enum { REMEZ_MAX_STEPS = 100 };

typedef struct shifted_basis {
    real y0, h; /* t = (x^2 - y0) / h */
} shifted_basis_t;

bool mu_solve4l(real m[4][4], real rhs[4])
{
    for (int k = 0; k < 4; k++) {
        int pivot = k;
        for (int i = k + 1; i < 4; i++)
            if (fabsl(m[i][k]) > fabsl(m[pivot][k]))
                pivot = i;
        if (m[pivot][k] == 0)
            return false;
        for (int j = 0; j < 4; j++) {
            const real t = m[k][j];
            m[k][j] = m[pivot][j];
            m[pivot][j] = t;
        }
        const real t = rhs[k];
        rhs[k] = rhs[pivot];
        rhs[pivot] = t;
        for (int i = k + 1; i < 4; i++) {
            const real f = m[i][k] / m[k][k];
            for (int j = k; j < 4; j++)
                m[i][j] -= f * m[k][j];
            rhs[i] -= f * rhs[k];
        }
    }
    for (int i = 3; i >= 0; i--) {
        real sum = rhs[i];
        for (int j = i + 1; j < 4; j++)
            sum -= m[i][j] * rhs[j];
        rhs[i] = sum / m[i][i];
    }
    return true;
}

/* Solves for (alpha, beta, gamma, E) given the four nodes; signs alternate +,-,+,-. */
static mu_status_t solve_levelled(const shifted_basis_t *s, const real node[4], real sol[4])
{
    real m[4][4];
    for (int i = 0; i < 4; i++) {
        const real t = (node[i] * node[i] - s->y0) / s->h;
        m[i][0] = node[i];
        m[i][1] = node[i] * t;
        m[i][2] = node[i] * t * t;
        m[i][3] = (i % 2 == 0) ? 1 : -1;
        sol[i] = 1;
    }
    if (!mu_solve4l(m, sol))
        return mu_error(MU_ERR_NUMERIC, "minimax: singular Remez system");
    return MU_OK;
}

/* Interior extrema of p: p'(x) = 0 is, in t, 5g t^2 + (3b + 4g y0/h) t + (a + 2b y0/h) = 0. */
static mu_status_t interior_extrema(const shifted_basis_t *s, const real sol[4], real *q, real *r)
{
    const real alpha = sol[0], beta = sol[1], gamma = sol[2], k = s->y0 / s->h;
    const real qa = 5 * gamma, qb = 3 * beta + 4 * gamma * k, qc = alpha + 2 * beta * k;
    const real disc = qb * qb - 4 * qa * qc;
    if (!(disc > 0) || qa == 0)
        return mu_error(MU_ERR_NUMERIC, "minimax: the quintic lost its interior extrema");
    /* Cancellation-free roots of the quadratic. */
    const real w = -(qb + copysignl(sqrtl(disc), qb)) / 2;
    const real t1 = fminl(w / qa, qc / w), t2 = fmaxl(w / qa, qc / w);
    const real y1 = s->y0 + s->h * t1, y2 = s->y0 + s->h * t2;
    if (!(y1 > 0) || !(y2 > 0))
        return mu_error(MU_ERR_NUMERIC, "minimax: extrema left the positive axis");
    *q = sqrtl(y1);
    *r = sqrtl(y2);
    return MU_OK;
}

static void to_monomial(const shifted_basis_t *s, const real sol[4], mu_coeff_t *out)
{
    const real alpha = sol[0], beta = sol[1], gamma = sol[2], k = s->y0 / s->h;
    out->a = (double)(alpha - beta * k + gamma * k * k);
    out->b = (double)(beta / s->h - 2 * gamma * k / s->h);
    out->c = (double)(gamma / (s->h * s->h));
}

static void narrow_limit(double l, double u, mu_coeff_t *out)
{
    const double m = 0.5 * (l + u);
    *out = (mu_coeff_t){15.0 / 8.0 / m, -10.0 / 8.0 / (m * m * m), 3.0 / 8.0 / (m * m * m * m * m)};
}

static double max_error_at_ends(const mu_coeff_t *p, double l, double u)
{
    return fmax(fabs(1.0 - mu_coeff_eval(p, l)), fabs(1.0 - mu_coeff_eval(p, u)));
}

mu_status_t mu_minimax_odd_quintic(double l, double u, mu_coeff_t *out, double *max_error)
{
    if (!out || !(l > 0.0) || !(u >= l) || !isfinite(u))
        return mu_error(MU_ERR_INVALID, "minimax: need 0 < l <= u, got l=%g u=%g", l, u);
    if (l / u >= NARROW_INTERVAL_RATIO) {
        narrow_limit(l, u, out);
        if (max_error)
            *max_error = max_error_at_ends(out, l, u);
        return MU_OK;
    }
    const real lo = l, hi = u;
    const shifted_basis_t basis = {.y0 = (lo * lo + hi * hi) / 2, .h = (hi * hi - lo * lo) / 2};
    real node[4] = {lo, (3 * lo + hi) / 4, (lo + 3 * hi) / 4, hi};
    const real width = hi - lo;
    real previous_level = INFINITY;
    for (int step = 0; step < REMEZ_MAX_STEPS; step++) {
        real sol[4], q = 0, r = 0;
        MU_CHECK(solve_levelled(&basis, node, sol));
        MU_CHECK(interior_extrema(&basis, sol, &q, &r));
        if (!(lo < q && q < r && r < hi))
            return mu_error(MU_ERR_NUMERIC, "minimax: extrema left [%g, %g]", l, u);
        const real move = fmaxl(fabsl(q - node[1]), fabsl(r - node[2])) / width;
        node[1] = q;
        node[2] = r;
        const bool level_settled = fabsl(sol[3] - previous_level) <= LEVEL_SETTLED;
        if (move <= NODE_SETTLED || level_settled) {
            to_monomial(&basis, sol, out);
            if (max_error)
                *max_error = (double)fabsl(sol[3]);
            return MU_OK;
        }
        previous_level = sol[3];
    }
    return mu_error(MU_ERR_NUMERIC, "minimax: Remez did not converge on [%g, %g]", l, u);
}
