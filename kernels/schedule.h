/*
 * Coefficient schedules for odd degree-5 polynomial iterations X <- a X + b (XX^T) X + c (XX^T)^2
 * X.
 *
 * Polar Express (Amsel, Persson, Musco, Gower 2025, sec. 4 and App. G): step t uses the odd
 * quintic p_t that minimizes max |1 - p(x)| over the interval [l_t, u_t] known to hold the
 * singular values; then l_{t+1} = p_t(l_t) and u_{t+1} = 2 - l_{t+1}. Two finite-precision
 * devices from the paper:
 *  - cushion: p_t is optimized on [max(l_t, cushion*u_t), u_t] and rescaled so that it is
 *    centred about 1 on [l_t, u_t]; this stops early steps from being too aggressive for
 *    singular values that round-off pushed below l_t;
 *  - safety s: every step but the last is applied as p_t(x/s) (a/s, b/s^3, c/s^5), so
 *    round-off that lifts a singular value slightly above u_t is not thrown far off.
 *
 * Newton-Schulz NS5 uses one fixed quintic for every step.
 */
#ifndef MU_KERNELS_SCHEDULE_H
#define MU_KERNELS_SCHEDULE_H

#include "core/status.h"

/* Defaults of the published Polar Express schedule (Amsel et al. 2025, App. G). */
#define MU_PE_DEFAULT_LOWER   1e-3
#define MU_PE_DEFAULT_CUSHION 0.02407327424182761
#define MU_PE_DEFAULT_SAFETY  1.01

enum { MU_SCHEDULE_MAX_ITERS = 64 };

typedef struct mu_coeff {
    double a, b, c; /* p(x) = a x + b x^3 + c x^5 */
} mu_coeff_t;

typedef struct mu_schedule {
    int iters;
    mu_coeff_t step[MU_SCHEDULE_MAX_ITERS]; /* as applied: safety already folded in */
} mu_schedule_t;

typedef enum mu_ns5_set {
    MU_NS5_JORDAN,  /* (3.4445, -4.7750, 2.0315): fast, but settles in a band around 1 */
    MU_NS5_CLASSIC, /* (15/8, -10/8, 3/8): converges to 1, slowly from small values */
} mu_ns5_set_t;

/* The odd quintic minimizing max_{x in [l,u]} |1 - p(x)| (0 < l <= u), by the Remez
 * exchange; *max_error (may be NULL) receives that minimal maximum. */
mu_status_t mu_minimax_odd_quintic(double l, double u, mu_coeff_t *out, double *max_error);

/* The Polar Express schedule: lower in (0,1), iters in [1, MU_SCHEDULE_MAX_ITERS],
 * cushion in [0,1), safety >= 1. */
mu_status_t mu_schedule_polar_express(double lower, int iters, double cushion, double safety,
                                      mu_schedule_t *out);

mu_status_t mu_schedule_ns5(mu_ns5_set_t set, int iters, mu_schedule_t *out);
mu_status_t mu_ns5_set_parse(const char *name, mu_ns5_set_t *out);

/* p(x) for one step, and the whole composition p_T(...p_1(x)), in double precision. */
double mu_coeff_eval(const mu_coeff_t *p, double x);
double mu_schedule_eval(const mu_schedule_t *s, double x);

/* The exact image [*img_lo, *img_hi] of [lo, hi] (0 <= lo <= hi) under the composition,
 * propagated step by step through each quintic's endpoint and critical-point values. */
void mu_schedule_image(const mu_schedule_t *s, double lo, double hi, double *img_lo,
                       double *img_hi);

/* max |f(x) - 1| over x in [lo, hi]: the schedule's own error bound for singular values that
 * lie in [lo, hi] after normalization. */
double mu_schedule_error_bound(const mu_schedule_t *s, double lo, double hi);

/* f'(0) = product of the steps' a: the gain of the iteration on directions with tiny
 * singular values. Round-off lands in every direction, and there it is amplified the most,
 * so u * f'(0) is the scale of a dtype's attainable accuracy (about 6.7e3 u for the default
 * Polar Express schedule, 485 u for five NS5 steps). */
double mu_schedule_slope_at_zero(const mu_schedule_t *s);

/* Smallest T <= MU_SCHEDULE_MAX_ITERS whose Polar Express schedule (lower, cushion, safety)
 * has error bound <= tol on [lower, 1]; MU_ERR_NUMERIC if none does. */
mu_status_t mu_schedule_iters_for(double lower, double cushion, double safety, double tol,
                                  int *iters);

#endif
