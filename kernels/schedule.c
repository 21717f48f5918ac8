#include "kernels/schedule.h"

#include <math.h>
#include <string.h>

/* Keller Jordan's NS5 coefficients (modded-nanogpt, 2024) and the classic Newton-Schulz
 * quintic, the degree-5 Taylor-type iteration whose fixed point 1 is reached quadratically. */
static const mu_coeff_t NS5_JORDAN = {3.4445, -4.7750, 2.0315};
static const mu_coeff_t NS5_CLASSIC = {15.0 / 8.0, -10.0 / 8.0, 3.0 / 8.0};

double mu_coeff_eval(const mu_coeff_t *p, double x)
{
    const double x2 = x * x;
    return x * (p->a + x2 * (p->b + x2 * p->c));
}

double mu_schedule_eval(const mu_schedule_t *s, double x)
{
    for (int t = 0; t < s->iters; t++)
        x = mu_coeff_eval(&s->step[t], x);
    return x;
}

/* Real roots y >= 0 of k2 y^2 + k1 y + k0 = 0; returns how many (0..2). */
static int nonnegative_quadratic_roots(double k2, double k1, double k0, double y[2])
{
    int n = 0;
    if (k2 == 0.0) {
        if (k1 != 0.0 && -k0 / k1 >= 0.0)
            y[n++] = -k0 / k1;
        return n;
    }
    const double disc = k1 * k1 - 4.0 * k2 * k0;
    if (disc < 0.0)
        return 0;
    const double w = -0.5 * (k1 + copysign(sqrt(disc), k1));
    const double roots[2] = {w / k2, w != 0.0 ? k0 / w : 0.0};
    for (int i = 0; i < 2; i++)
        if (roots[i] >= 0.0)
            y[n++] = roots[i];
    return n;
}

/* Image of [lo, hi] under one quintic: the extremes among endpoint values and the values at
 * the critical points (p'(x) = a + 3b x^2 + 5c x^4 = 0) inside the interval. */
static void step_image(const mu_coeff_t *p, double lo, double hi, double *img_lo, double *img_hi)
{
    double vmin = fmin(mu_coeff_eval(p, lo), mu_coeff_eval(p, hi));
    double vmax = fmax(mu_coeff_eval(p, lo), mu_coeff_eval(p, hi));
    double y[2];
    const int n = nonnegative_quadratic_roots(5.0 * p->c, 3.0 * p->b, p->a, y);
    for (int i = 0; i < n; i++) {
        const double x = sqrt(y[i]);
        if (x > lo && x < hi) {
            vmin = fmin(vmin, mu_coeff_eval(p, x));
            vmax = fmax(vmax, mu_coeff_eval(p, x));
        }
    }
    *img_lo = vmin;
    *img_hi = vmax;
}

void mu_schedule_image(const mu_schedule_t *s, double lo, double hi, double *img_lo, double *img_hi)
{
    for (int t = 0; t < s->iters; t++)
        step_image(&s->step[t], lo, hi, &lo, &hi);
    *img_lo = lo;
    *img_hi = hi;
}

double mu_schedule_error_bound(const mu_schedule_t *s, double lo, double hi)
{
    double img_lo, img_hi;
    mu_schedule_image(s, lo, hi, &img_lo, &img_hi);
    return fmax(fabs(1.0 - img_lo), fabs(img_hi - 1.0));
}

double mu_schedule_slope_at_zero(const mu_schedule_t *s)
{
    double slope = 1.0;
    for (int t = 0; t < s->iters; t++)
        slope *= s->step[t].a;
    return slope;
}

static mu_status_t check_pe_arguments(double lower, int iters, double cushion, double safety)
{
    if (!(lower > 0.0 && lower < 1.0))
        return mu_error(MU_ERR_INVALID, "polar express: lower bound must be in (0, 1), got %g",
                        lower);
    if (iters < 1 || iters > MU_SCHEDULE_MAX_ITERS)
        return mu_error(MU_ERR_INVALID, "polar express: iterations must be in [1, %d], got %d",
                        MU_SCHEDULE_MAX_ITERS, iters);
    if (!(cushion >= 0.0 && cushion < 1.0))
        return mu_error(MU_ERR_INVALID, "polar express: cushion must be in [0, 1), got %g",
                        cushion);
    if (!(safety >= 1.0 && isfinite(safety)))
        return mu_error(MU_ERR_INVALID, "polar express: safety must be >= 1, got %g", safety);
    return MU_OK;
}

mu_status_t mu_schedule_polar_express(double lower, int iters, double cushion, double safety,
                                      mu_schedule_t *out)
{
    if (!out)
        return mu_error(MU_ERR_INVALID, "polar express: null schedule");
    MU_CHECK(check_pe_arguments(lower, iters, cushion, safety));
    memset(out, 0, sizeof *out);
    double l = lower, u = 1.0;
    for (int t = 0; t < iters; t++) {
        mu_coeff_t p;
        MU_CHECK(mu_minimax_odd_quintic(fmax(l, cushion * u), u, &p, NULL));
        /* Re-centre about 1 on the true [l, u]: 1 - k p(l) = k p(u) - 1. */
        const double k = 2.0 / (mu_coeff_eval(&p, l) + mu_coeff_eval(&p, u));
        p = (mu_coeff_t){k * p.a, k * p.b, k * p.c};
        /* Once converged, rounding can put p(l) a hair above 1; the interval is then [1, 1]. */
        l = fmin(mu_coeff_eval(&p, l), 1.0);
        u = 2.0 - l;
        out->step[t] = p;
    }
    /* p(x/s) for every step but the last, which must keep 1 as its fixed point. */
    for (int t = 0; t + 1 < iters; t++) {
        mu_coeff_t *p = &out->step[t];
        p->a /= safety;
        p->b /= safety * safety * safety;
        p->c /= safety * safety * safety * safety * safety;
    }
    out->iters = iters;
    return MU_OK;
}

mu_status_t mu_schedule_ns5(mu_ns5_set_t set, int iters, mu_schedule_t *out)
{
    if (!out)
        return mu_error(MU_ERR_INVALID, "ns5: null schedule");
    if (iters < 1 || iters > MU_SCHEDULE_MAX_ITERS)
        return mu_error(MU_ERR_INVALID, "ns5: iterations must be in [1, %d], got %d",
                        MU_SCHEDULE_MAX_ITERS, iters);
    memset(out, 0, sizeof *out);
    const mu_coeff_t p = set == MU_NS5_JORDAN ? NS5_JORDAN : NS5_CLASSIC;
    for (int t = 0; t < iters; t++)
        out->step[t] = p;
    out->iters = iters;
    return MU_OK;
}

mu_status_t mu_ns5_set_parse(const char *name, mu_ns5_set_t *out)
{
    if (name && strcmp(name, "jordan") == 0) {
        *out = MU_NS5_JORDAN;
        return MU_OK;
    }
    if (name && strcmp(name, "classic") == 0) {
        *out = MU_NS5_CLASSIC;
        return MU_OK;
    }
    return mu_error(MU_ERR_INVALID, "unknown NS5 coefficient set '%s' (jordan or classic)",
                    name ? name : "(null)");
}

mu_status_t mu_schedule_iters_for(double lower, double cushion, double safety, double tol,
                                  int *iters)
{
    for (int t = 1; t <= MU_SCHEDULE_MAX_ITERS; t++) {
        mu_schedule_t s;
        MU_CHECK(mu_schedule_polar_express(lower, t, cushion, safety, &s));
        if (mu_schedule_error_bound(&s, lower, 1.0) <= tol) {
            *iters = t;
            return MU_OK;
        }
    }
    return mu_error(MU_ERR_NUMERIC,
                    "polar express: no schedule of at most %d steps reaches %g on "
                    "[%g, 1]",
                    MU_SCHEDULE_MAX_ITERS, tol, lower);
}
