/*
 * Inverse p-th roots of symmetric positive definite matrices applied to a right-hand side,
 * Y = A^(-1/p) B for p = 1, 2, 4, by the coupled Newton iteration of Guo and Higham
 * ("A Schur-Newton method for the matrix p'th root and its inverse", SIMAX 28(3), 2006):
 *     M_k = ((p+1) I - N_k) / p,   Y_{k+1} = M_k Y_k,   N_{k+1} = M_k^p N_k,
 *     N_0 = A / c^p,  Y_0 = B / c,
 * so that N_k -> I and Y_k -> A^(-1/p) B using matrix products only. Scaled start: for a
 * spectrum in [lo, hi], c^p = (alpha^(1/p) hi - lo) / ((p+1)(alpha^(1/p) - 1)), alpha = hi/lo,
 * equalizes the two ends of the spectrum after the first step (the choice Guo and Higham
 * derive for real positive spectra). hi is taken as ||A||_F (never below lambda_max); lo is
 * the caller's bound, or hi * MU_SPD_ASSUMED_MIN_RATIO.
 *
 * p = 1 also carries X_k -> A^(-1) and finishes with residual-correction steps
 * (iterative refinement): R = B - A Y, Y <- Y + X R, which reduce the residual to about the
 * working precision's backward error even when Newton stopped early.
 */
#ifndef MU_KERNELS_SPD_ROOT_H
#define MU_KERNELS_SPD_ROOT_H

#include "kernels/ops.h"

/* When lambda_min is not given: assume a condition number up to 1e6. Eigenvalues below that
 * still converge (Newton's region is all of (0, (p+1) c^p)), only a few steps later. */
#define MU_SPD_ASSUMED_MIN_RATIO 1e-6

enum { MU_SPD_DEFAULT_MAX_ITERS = 60, MU_SPD_DEFAULT_REFINE_STEPS = 2 };

typedef struct mu_spd_root_opts {
    int p;             /* 1, 2 or 4 */
    double lambda_min; /* a lower bound of A's spectrum if known, else 0 */
    int max_iters;
    double tol;       /* stop once ||N - I||_F <= tol; 0 picks sqrt(n) * 4u of the dtype */
    int refine_steps; /* p = 1 only */
} mu_spd_root_opts_t;

typedef struct mu_spd_root_report {
    int iters;
    int gemms;              /* matrix products, refinement included */
    double distance;        /* final ||N - I||_F */
    double start_c;         /* the scaled start's c */
    double residual_newton; /* p = 1: ||B - A Y||_F / (||A||_F ||Y||_F + ||B||_F) after Newton */
    double residual_final;  /* ... after refinement */
} mu_spd_root_report_t;

void mu_spd_root_opts_default(mu_spd_root_opts_t *opts, int p);

/* y = A^(-1/p) b (b NULL: y = A^(-1/p)); a is n x n SPD, b is n x k, y is n x k (n x n).
 * Divergence (A not SPD, or hopelessly ill-conditioned) returns MU_ERR_NUMERIC. */
mu_status_t mu_spd_inv_root(mu_backend_t *be, const mu_mat_t *a, const mu_mat_t *b,
                            const mu_spd_root_opts_t *opts, mu_mat_t *y,
                            mu_spd_root_report_t *report);

#endif
