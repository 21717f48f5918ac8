/*
 * Inverse Root Express: Y = A^(-1/p) B (p = 1, 2, 4) for SPD A by the coupled iteration of
 * kernels/root_schedule.h on the ops table, so every backend runs the same steps:
 *     S_0 = A_w,  Y_0 = B_w,   per step  M = a I + b S + c S^2,  Y <- M Y,  S <- M^p S,
 * with the per-step minimax coefficients of the Inverse Root Express schedule. When B is
 * the identity (and A is not equilibrated) Y is a polynomial in A, symmetric in exact
 * arithmetic, and is symmetrized after each step.
 *
 * Preconditioning (../shared/seeds/003, sec. 5 C):
 *  - scale: A_w = A / s with s = min(||A||_F, max_i sum_j |a_ij|), both upper bounds of
 *    lambda_max (the second is Gershgorin's), so A_w's spectrum lies in (0, 1];
 *  - lower bound l_0 of A_w's spectrum: the caller's lambda_min / s, or Gershgorin's
 *    min_i (a_ii - sum_{j != i} |a_ij|) / s where that is positive and larger, else
 *    MU_SPD_ASSUMED_MIN_RATIO (a condition number up to 1e6 assumed);
 *  - p = 1 only, equilibration: A_w = D A D / s with D = diag(2^-round(log2(a_ii) / 2)).
 *    A^-1 = D (D A D)^-1 D, so the solve is exact in D; for p >= 2, (D A D)^(-1/p) is not
 *    related to A^(-1/p) by D, and equilibration is refused. For SPD matrices Ruiz's
 *    row-and-column equilibration reaches its fixed point after this one Jacobi sweep
 *    (|a_ij| <= sqrt(a_ii a_jj)); powers of two keep the scaling free of rounding.
 *
 * Renormalization (seed sec. 6.2): before each step, mu = tr(S) / n, S <- S / mu,
 * Y <- Y mu^(-1/p), and the step's q is replaced by q~(y) = mu^(1/p) q(mu y), which gives
 * exactly the same next S and Y in exact arithmetic (the minimax problem is covariant under
 * this rescaling). What it buys in finite precision: S stays centred on 1 whatever round-off
 * did to its scale, and mu is an early divergence check: the mean eigenvalue must lie in the
 * schedule's interval [l_k, u_k], or the iteration is stopped with MU_ERR_NUMERIC (A is not
 * SPD, or its spectrum is not in [lambda_min, s]).
 *
 * p = 1 refinement (seed sec. 6.4): the iteration also carries X -> A_w^-1, then 0..3 steps
 * R = B_w - A_w Y in fp64, Y <- Y + X R, with Y accumulated in fp64 (mixed-precision
 * iterative refinement: X only needs to be a rough inverse).
 */
#ifndef MU_KERNELS_INV_ROOT_EXPRESS_H
#define MU_KERNELS_INV_ROOT_EXPRESS_H

#include <stdbool.h>

#include "kernels/ops.h"
#include "kernels/root_schedule.h"

enum { MU_IRE_MAX_REFINE_STEPS = 3, MU_IRE_DEFAULT_REFINE_STEPS = 2 };

typedef struct mu_ire_opts {
    int p;             /* 1, 2 or 4 */
    double lambda_min; /* a lower bound of A's spectrum if known, else 0 */
    double tol;        /* steps: the fewest whose schedule bound is <= tol; 0: the dtype's u */
    int iters;         /* > 0: exactly this many steps instead */
    double cushion;    /* the schedule's (kernels/root_schedule.h) */
    bool newton;       /* coupled Newton's steps instead (scaled start), for comparisons */
    int refine_steps;  /* p = 1: 0..MU_IRE_MAX_REFINE_STEPS */
    bool renormalize;
    bool equilibrate; /* p = 1 only */
} mu_ire_opts_t;

typedef enum mu_ire_lower_source {
    MU_IRE_LOWER_GIVEN,
    MU_IRE_LOWER_GERSHGORIN,
    MU_IRE_LOWER_ASSUMED,
} mu_ire_lower_source_t;

typedef struct mu_ire_report {
    int iters, gemms;
    double scale;                       /* s */
    double lower;                       /* l_0 */
    mu_ire_lower_source_t lower_source; /* where l_0 came from */
    double bound;                       /* the schedule's ||S_T - I||_2 bound (exact arithmetic) */
    double worst_trace_offset;          /* max_k of mu_k's distance outside [l_k, u_k], 0 if in */
    double residual_before,
        residual_after; /* p = 1: ||B_w - A_w Y||_F / (||A_w|| ||Y|| + ||B_w||) */
    bool equilibrated;
} mu_ire_report_t;

void mu_ire_opts_default(mu_ire_opts_t *opts, int p);
const char *mu_ire_lower_source_name(mu_ire_lower_source_t source);

/* y = A^(-1/p) b (b NULL: y = A^(-1/p)); a is n x n SPD, b n x k, y n x k (n x n). */
mu_status_t mu_inv_root_express(mu_backend_t *be, const mu_mat_t *a, const mu_mat_t *b,
                                const mu_ire_opts_t *opts, mu_mat_t *y, mu_ire_report_t *report);

/* The root certificate: R = X^(p/2) A X^(p/2) - I for p = 2, 4 (A X - I for p = 1), zero
 * exactly when A X^p = I. Why the sandwich: a stored root X = A^(-1/p) + E, E of a few
 * units of round-off in no relation to A's eigenvectors, moves A X^p by terms like
 * A E X^(p-1), as large as kappa u, whereas X^(p/2) A X^(p/2) moves by at most about
 * sqrt(kappa) u: measured in fp64 for A^(-1/4) rounded to fp32 at n = 256, kappa = 1e4,
 * 9.6e-5 against 1.5e-6. A X^p - I would judge the rounding; the sandwich judges the root. */
typedef struct mu_ire_cert {
    double frobenius; /* ||R||_F */
    double spectral;  /* a Lanczos estimate of ||R||_2 (from below) */
    double limit;     /* the caller's limit on ||R||_2 */
    bool pass;        /* finite, spectral <= limit and frobenius <= sqrt(n) limit */
} mu_ire_cert_t;

/* Measures R on the backend (up to 3 products and a Lanczos run on R^T R) and judges it
 * against limit: the schedule's bound plus the caller's round-off allowance. */
mu_status_t mu_ire_certify(mu_backend_t *be, const mu_mat_t *a, const mu_mat_t *x, int p,
                           double limit, mu_ire_cert_t *out);

#endif
