#include "kernels/root_schedule.h"

#include <math.h>
#include <string.h>

static mu_status_t check_arguments(int p, double lower, int iters, mu_root_schedule_t *out)
{
    if (!out)
        return mu_error(MU_ERR_INVALID, "inverse root schedule: null schedule");
    if (p != 1 && p != 2 && p != 4)
        return mu_error(MU_ERR_INVALID, "inverse root schedule: p must be 1, 2 or 4, got %d", p);
    if (!(lower > 0.0 && lower <= 1.0))
        return mu_error(MU_ERR_INVALID,
                        "inverse root schedule: lower bound must be in (0, 1], got %g", lower);
    if (iters < 1 || iters > MU_ROOT_MAX_ITERS)
        return mu_error(MU_ERR_INVALID,
                        "inverse root schedule: iterations must be in [1, %d], got %d",
                        MU_ROOT_MAX_ITERS, iters);
    return MU_OK;
}

static void begin(int p, double lower, mu_root_schedule_t *out)
{
    memset(out, 0, sizeof *out);
    out->p = p;
    out->lower = lower;
    out->lo[0] = lower;
    out->hi[0] = 1.0;
}

/* Appends q as the next step and its image as the next interval. */
static void push(mu_root_schedule_t *s, const mu_root_coeff_t *q)
{
    const int k = s->iters++;
    s->step[k] = *q;
    mu_root_step_image(q, s->p, s->lo[k], s->hi[k], &s->lo[k + 1], &s->hi[k + 1]);
}

/* The next step: the minimax q on [max(l, cushion u), u], recentred so that its image of the
 * whole [l, u] is symmetric about 1. */
static mu_status_t push_express(mu_root_schedule_t *s, double cushion)
{
    const int k = s->iters;
    const double l = s->lo[k], u = s->hi[k];
    mu_root_coeff_t q;
    MU_CHECK(mu_root_minimax(s->p, fmax(l, cushion * u), u, &q, NULL));
    double lo, hi;
    mu_root_step_image(&q, s->p, l, u, &lo, &hi);
    const double g = pow(2.0 / (lo + hi), 1.0 / s->p); /* phi scales by g^p */
    q = (mu_root_coeff_t){q.a * g, q.b * g, q.c * g};
    push(s, &q);
    return MU_OK;
}

mu_status_t mu_root_schedule_express(int p, double lower, int iters, double cushion,
                                     mu_root_schedule_t *out)
{
    MU_CHECK(check_arguments(p, lower, iters, out));
    if (!(cushion >= 0.0 && cushion < 1.0))
        return mu_error(MU_ERR_INVALID, "inverse root schedule: cushion must be in [0, 1), got %g",
                        cushion);
    begin(p, lower, out);
    for (int k = 0; k < iters; k++)
        MU_CHECK(push_express(out, cushion));
    return MU_OK;
}

/* Guo and Higham's scaled start for a spectrum in [lower, 1]: N_0 = S_0 / g with
 * g = (alpha^(1/p) - lower) / ((p+1) (alpha^(1/p) - 1)), alpha = 1 / lower. */
static double newton_start(int p, double lower)
{
    const double root = pow(1.0 / lower, 1.0 / p);
    return root > 1.0 + 1e-12 ? (root - lower) / ((p + 1) * (root - 1.0)) : 1.0;
}

mu_status_t mu_root_schedule_newton(int p, double lower, int iters, mu_root_schedule_t *out)
{
    MU_CHECK(check_arguments(p, lower, iters, out));
    begin(p, lower, out);
    const double g = newton_start(p, lower), root_g = pow(g, 1.0 / p);
    for (int k = 0; k < iters; k++) {
        /* q(y) = ((p+1) - y / g) / (p g^(1/p)): M = ((p+1) I - N) / p on N = S / g. */
        const double gk = k == 0 ? g : 1.0, rk = k == 0 ? root_g : 1.0;
        const mu_root_coeff_t q = {(p + 1.0) / (p * rk), -1.0 / (p * rk * gk), 0.0};
        push(out, &q);
    }
    return MU_OK;
}

double mu_root_schedule_bound(const mu_root_schedule_t *s)
{
    return fmax(fabs(1.0 - s->lo[s->iters]), fabs(s->hi[s->iters] - 1.0));
}

static bool reaches(mu_root_schedule_t *s, double tol)
{
    return mu_root_schedule_bound(s) <= tol;
}

mu_status_t mu_root_schedule_for(int p, double lower, double tol, double cushion, bool newton,
                                 mu_root_schedule_t *out)
{
    /* Each prefix of a greedy schedule is the shorter schedule: grow (or cut) one. */
    if (newton) {
        MU_CHECK(mu_root_schedule_newton(p, lower, MU_ROOT_MAX_ITERS, out));
        for (out->iters = 1; out->iters < MU_ROOT_MAX_ITERS && !reaches(out, tol); out->iters++)
            ;
    } else {
        MU_CHECK(mu_root_schedule_express(p, lower, 1, cushion, out));
        while (out->iters < MU_ROOT_MAX_ITERS && !reaches(out, tol))
            MU_CHECK(push_express(out, cushion));
    }
    if (reaches(out, tol))
        return MU_OK;
    return mu_error(MU_ERR_NUMERIC,
                    "inverse root schedule: no %s schedule of at most %d steps reaches %g on "
                    "[%g, 1] for p = %d",
                    newton ? "Newton" : "Express", MU_ROOT_MAX_ITERS, tol, lower, p);
}

int mu_root_schedule_gemms(const mu_root_schedule_t *s)
{
    const int powers = s->p == 1 ? 0 : s->p == 2 ? 1 : 2;
    int gemms = 0;
    for (int k = 0; k < s->iters; k++) {
        const bool last = k + 1 == s->iters;
        gemms += (s->step[k].c != 0.0) + 1 + (last ? 0 : powers + 1);
    }
    return gemms;
}
