/*
 * Orthogonalization: Q ~ polar(G) = U V^T for G = U S V^T, by one of
 *   polar-express  Polar Express: the adaptive minimax quintic schedule (kernels/schedule.h),
 *                  applied directly to X = G / (||G||_F * safety), each step grouped as
 *                  A = X X^T (SYRK), B = b A + c A^2 (SYRK of A), X <- a X + B X (GEMM);
 *   ns5            Newton-Schulz with one fixed quintic (Jordan's or the classic set),
 *                  X = G / ||G||_F;
 *   gram           the same polynomials run on the small Gram matrix, in the coupled form
 *                  R_k = Z_k A Z_k, Z_{k+1} = p_k(R_k) Z_k with A = X X^T, so that
 *                  Q = Z_T X = (G G^T)^(-1/2) G up to the schedule's error; O(s^3) per step
 *                  instead of O(s^2 l) for an s x l matrix, s the short side;
 *   svd            the exact (canonical) polar factor from LAPACK's SVD in fp64.
 * All work happens on the short side: a tall matrix is handled as its transpose implicitly.
 *
 * Inputs and outcomes (documented, tested):
 *   - NULL arguments, an empty shape (0 rows or columns), a G or Q whose shape or dtype differs
 *     from the plan's, or Q aliasing G: MU_ERR_INVALID, nothing written.
 *   - G with NaN or Inf: MU_ERR_NUMERIC, Q untouched, report->nonfinite counts the bad entries.
 *   - G == 0: Q = 0 (a zero update), MU_OK, report->zero_input set.
 */
#ifndef MU_KERNELS_ORTH_H
#define MU_KERNELS_ORTH_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/adaptive.h"
#include "kernels/certificate.h"
#include "kernels/ops.h"
#include "kernels/schedule.h"

typedef enum mu_orth_method {
    MU_ORTH_POLAR_EXPRESS = 0,
    MU_ORTH_NS5,
    MU_ORTH_GRAM,
    MU_ORTH_SVD,
    MU_ORTH_METHOD_COUNT
} mu_orth_method_t;

/* Default step counts: 8 is the length of the published Polar Express table, whose error
 * bound on [1e-3, 1] is below fp32 resolution; 5 is Jordan's NS5 choice. */
enum { MU_PE_DEFAULT_ITERS = 8, MU_NS5_DEFAULT_ITERS = 5 };

typedef struct mu_orth_opts {
    mu_orth_method_t method;
    mu_dtype_t dtype;      /* of the iteration (G and Q may be held in another, see execute) */
    int iters;             /* T; 0 picks the method's default */
    double lower;          /* l: singular values below l * ||G||_F are not promised to reach 1 */
    double cushion;        /* Polar Express cushion (see schedule.h) */
    double safety;         /* Polar Express safety s >= 1 (normalization and coefficients) */
    mu_ns5_set_t ns5_set;  /* NS5 coefficient set */
    mu_dtype_t gram_dtype; /* precision of the Gram-side iteration (gram method) */
    int gram_restart_after; /* gram: restart from X_k after this many steps; 0: 3 (the
                               default, kernels/gram.c), negative: never */
    /* adaptive (polar-express and gram): each execution picks its own (l, T), T <= iters,
     * from a sample of G's spectrum (kernels/adaptive.h); lower and iters are then the fixed
     * schedule it is measured against */
    mu_schedule_mode_t schedule;
    double adaptive_tolerance; /* 0: MU_ADAPTIVE_DEFAULT_TOLERANCE */
} mu_orth_opts_t;

typedef struct mu_orth_report {
    double input_norm; /* ||G||_F */
    double scale;      /* X_0 = G / scale */
    bool zero_input;   /* G was zero and Q was set to zero */
    int64_t nonfinite; /* NaN/Inf entries found in G */
    int iters;         /* polynomial steps applied (0 for svd) */
    double lower;      /* the lower bound of the schedule applied (0 for ns5 and svd) */
    double predicted;  /* adaptive: the chosen schedule's predicted reach per direction */
    double reference;  /* adaptive: the fixed schedule's, on the same sample */
} mu_orth_report_t;

typedef struct mu_orth_plan mu_orth_plan_t;

void mu_orth_opts_default(mu_orth_opts_t *opts);
const char *mu_orth_method_name(mu_orth_method_t method);
mu_status_t mu_orth_method_parse(const char *name, mu_orth_method_t *out);

/* A plan fixes backend, shape, dtype and method, computes the schedule and allocates the
 * workspace once; execute it any number of times. The plan borrows be (keep it alive). */
mu_status_t mu_orth_plan_create(mu_backend_t *be, int64_t rows, int64_t cols,
                                const mu_orth_opts_t *opts, mu_orth_plan_t **out);
void mu_orth_plan_destroy(mu_orth_plan_t **plan);

/* Q = orth(G); report may be NULL. G and Q share a dtype: the plan's, or another that the
 * plan converts from and to (an fp32 step computing in bf16), through copies it keeps. */
mu_status_t mu_orth_execute(mu_orth_plan_t *plan, const mu_mat_t *g, mu_mat_t *q,
                            mu_orth_report_t *report);

/* The schedule the plan applied last (before any execution, the fixed one; NULL for svd). */
const mu_schedule_t *mu_orth_plan_schedule(const mu_orth_plan_t *plan);

/* The certificate's limits for the plan's last result, made once per schedule with the plan
 * (mu_cert_limits_for: from the schedule's own error bound on [lower, 1] and the dtype's
 * round-off). */
void mu_orth_plan_cert_limits(const mu_orth_plan_t *plan, mu_cert_limits_t *out);

/* Floating-point operations of one execution in the grouped form, exploiting symmetry where
 * the kernels do (SYRK counted as s^2 l, not 2 s^2 l). Used by the benchmark. */
double mu_orth_plan_flops(const mu_orth_plan_t *plan);

/* The same count without a plan: the cost model behind owner assignment. */
double mu_orth_flops(mu_orth_method_t method, int64_t rows, int64_t cols, int iters);

#endif
