/*
 * Inverse Root Express schedules: the coupled iteration for Y = A^(-1/p) B,
 *     M_k = q_k(S_k),  Y_{k+1} = M_k Y_k,  S_{k+1} = M_k^p S_k,  S_0 = A / s,  Y_0 = B,
 * with q_k(y) = a + b y + c y^2, drives the eigenvalues of S_k = (A/s) X_k^p to 1 through
 * the scalar map phi(y) = y q(y)^p (X_k = M_{k-1} ... M_0 commutes with A). Step k picks the
 * q that minimizes max |1 - phi(y)| over the interval [l_k, u_k] known to hold S_k's
 * spectrum, and the next interval is the exact image phi([l_k, u_k]) (the seed of
 * ../shared/seeds/003, sec. 5 B and 6.1; Polar Express's greedy recurrence for odd quintics,
 * Amsel et al. 2025, ported to inverse roots).
 *
 * The minimax q (root_minimax.c) equioscillates: 1 - phi = +E, -E, +E, -E at l < y1 < y2 < u,
 * the interior nodes being phi's extrema, the roots of a + (p+1) b y + (2p+1) c y^2 = 0.
 *
 * Newton's coupled iteration (Guo-Higham, kernels/spd_root.h) is the fixed choice
 * q(y) = ((p+1) - y) / p; mu_root_newton_step gives it here so that one scalar model bounds
 * both.
 */
#ifndef MU_KERNELS_ROOT_SCHEDULE_H
#define MU_KERNELS_ROOT_SCHEDULE_H

#include <stdbool.h>

#include "core/status.h"

enum { MU_ROOT_MAX_ITERS = 32 };

typedef struct mu_root_coeff {
    double a, b, c; /* q(y) = a + b y + c y^2 */
} mu_root_coeff_t;

typedef struct mu_root_schedule {
    int p, iters;
    double lower; /* l_0: S_0's spectrum is assumed in [lower, 1] */
    mu_root_coeff_t step[MU_ROOT_MAX_ITERS];
    double lo[MU_ROOT_MAX_ITERS + 1], hi[MU_ROOT_MAX_ITERS + 1]; /* [l_k, u_k]; k = iters: the
                                                                    final interval */
} mu_root_schedule_t;

/* The quadratic q minimizing max_{y in [l,u]} |1 - y q(y)^p| with q > 0 on [l, u]
 * (0 < l <= u, p in {1, 2, 4}); *max_error (may be NULL) receives the attained maximum,
 * evaluated exactly from phi's extrema. */
mu_status_t mu_root_minimax(int p, double l, double u, mu_root_coeff_t *out, double *max_error);

/* phi(y) = y q(y)^p. */
double mu_root_phi(const mu_root_coeff_t *q, int p, double y);

/* The exact image [*img_lo, *img_hi] of [lo, hi] (0 <= lo <= hi) under one step's phi:
 * extremes among the endpoint values and the interior critical points' values. */
void mu_root_step_image(const mu_root_coeff_t *q, int p, double lo, double hi, double *img_lo,
                        double *img_hi);

/* The Inverse Root Express schedule of `iters` steps for p from S_0's spectrum in [lower, 1].
 * cushion in [0, 1): each step's q is optimized on [max(l_k, cushion u_k), u_k] and rescaled
 * so that its image of the whole [l_k, u_k] is centred on 1 (Polar Express's device, Amsel
 * et al. 2025, sec. 4.4). Why: in fp32 the first steps' q on a wide interval has large
 * cancelling coefficients (|a| + |b| + |c| about 40 on [3e-5, 1]); their rounding lands in
 * the directions of A's large eigenvalues and stays there. Measured (muond root, n = 256,
 * kappa = 1e4, fp32, converged): ||A X^2 - I||_2 0.28 with no cushion, 8.8e-3 with 0.1, coupled
 * Newton 4.3e-3; the steps to a bound of 1e-2 did not change for l >= 1e-4. */
#define MU_ROOT_DEFAULT_CUSHION 0.1
mu_status_t mu_root_schedule_express(int p, double lower, int iters, double cushion,
                                     mu_root_schedule_t *out);

/* Coupled Newton from the same normalization (S_0 = A/s in [lower, 1]): step 0 carries the
 * scaled start (q_0(y) = ((p+1) - y/c^p) / (p c)), later steps c = 1. */
mu_status_t mu_root_schedule_newton(int p, double lower, int iters, mu_root_schedule_t *out);

/* max |1 - y| over the final interval: ||S_T - I||_2 for every S_0 with spectrum in [lower, 1]. */
double mu_root_schedule_bound(const mu_root_schedule_t *s);

/* The fewest steps (<= MU_ROOT_MAX_ITERS) whose Express (cushion as above) or Newton
 * schedule reaches bound <= tol; MU_ERR_NUMERIC if none does. */
mu_status_t mu_root_schedule_for(int p, double lower, double tol, double cushion, bool newton,
                                 mu_root_schedule_t *out);

/* Matrix products the coupled iteration spends on the schedule: per step S^2 (where c != 0),
 * M Y, the powers M^2, M^4 (p >= 2) and M^p S, except on the last step, which skips S. */
int mu_root_schedule_gemms(const mu_root_schedule_t *s);

#endif
