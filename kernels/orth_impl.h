/* Private to kernels/: the plan and the per-method operations table behind kernels/orth.h. */
#ifndef MU_KERNELS_ORTH_IMPL_H
#define MU_KERNELS_ORTH_IMPL_H

#include "kernels/orth.h"

enum { ORTH_MAX_WORK = 8 };

struct mu_orth_method_ops {
    /* Allocates plan->work (and anything else the method keeps between executions). */
    mu_status_t (*prepare)(mu_orth_plan_t *plan);
    /* Q = orth(G) for a finite, non-zero G; X_0 = G * inv_scale. */
    mu_status_t (*run)(mu_orth_plan_t *plan, const mu_mat_t *g, mu_mat_t *q, double inv_scale);
    /* Optional, run split for recording (NULL: the method always runs whole): start writes
     * X_0 = G * inv_scale into the plan's work; iterate runs the steps on the plan's work
     * alone, waits for nothing, and says where the result lands (the same place each call).
     * prepare allocated what these need only if mu_backend_can_capture said so then. */
    mu_status_t (*start)(mu_orth_plan_t *plan, const mu_mat_t *g, double inv_scale);
    mu_status_t (*iterate)(mu_orth_plan_t *plan, const mu_mat_t **result);
    /* Grouped FLOPs for a matrix with short side s and long side l, T steps. */
    double (*flops)(double s, double l, int iters);
};

struct mu_orth_plan {
    mu_backend_t *be;
    mu_orth_opts_t opts;
    int64_t rows, cols;
    int64_t short_side, long_side;
    bool wide; /* rows <= cols: iterate on X X^T; otherwise on X^T X */
    mu_schedule_t schedule;
    mu_cert_limits_t cert_limits; /* from the schedule, once: the certificate's, every step */
    /* adaptive plans: the candidates and their limits; schedule and cert_limits above are
     * then the last execution's choice */
    mu_adaptive_menu_t menu;
    mu_cert_limits_t *menu_limits;
    bool adapt_pays;     /* the shape is large enough for the sample to pay (plan creation) */
    bool adapt_now;      /* this execution chooses (set by mu_orth_execute) */
    double chosen_lower; /* the last choice and its predictions, for the report */
    double predicted, reference;
    const struct mu_orth_method_ops *method;
    mu_mat_t work[ORTH_MAX_WORK]; /* released by mu_orth_plan_destroy */
    bool recordable;              /* prepared while the backend could record */
    mu_k_graph_t *steps;          /* the recorded iterate, or NULL before the first call */
    const mu_mat_t *steps_result; /* where it leaves the result */
    /* G and Q in the plan's dtype, for callers that hold them in another (an fp32 step
     * computing in bf16): allocated on the first such call, released with the plan. */
    mu_mat_t io_g, io_q;
};

extern const struct mu_orth_method_ops mu_orth_poly_ops; /* polar-express and ns5 */
extern const struct mu_orth_method_ops mu_orth_gram_ops;
extern const struct mu_orth_method_ops mu_orth_svd_ops;

/* Where the plan adapts this execution (adapt_now): choose the schedule from the normalized
 * Gram matrix a = X_0 X_0^T, which the method has just formed; plan->schedule is then the
 * choice. A no-op otherwise. */
mu_status_t mu_orth_adapt(mu_orth_plan_t *plan, const mu_mat_t *a);

/* Allocates plan->work[slot] as rows x cols of dtype. */
mu_status_t mu_orth_alloc_work(mu_orth_plan_t *plan, int slot, int64_t rows, int64_t cols,
                               mu_dtype_t dtype);

#endif
