/*
 * Polar Express and NS5 applied directly to X (kernels/orth.h). One step of
 * p(X) = a X + b (X X^T) X + c (X X^T)^2 X, grouped for BLAS-3:
 *     A = X X^T                    SYRK,  s^2 l
 *     B = c A^2 + b A + a I        SYRK of the symmetric A (A A^T = A^2), s^3
 *     X <- B X                     GEMM,  2 s^2 l
 * for a wide s x l matrix; a tall one uses X^T X and X B instead, with no transposed copy.
 * Folding a I into B saves the separate X copy that "a X + B X" would need.
 */
#include "kernels/orth_impl.h"

enum { WORK_X = 0, WORK_A = 1, WORK_B = 2, WORK_Y = 3 };

static mu_status_t poly_prepare(mu_orth_plan_t *plan)
{
    const mu_dtype_t dt = plan->opts.dtype;
    const int64_t s = plan->short_side;
    MU_CHECK(mu_orth_alloc_work(plan, WORK_X, plan->rows, plan->cols, dt));
    MU_CHECK(mu_orth_alloc_work(plan, WORK_A, s, s, dt));
    MU_CHECK(mu_orth_alloc_work(plan, WORK_B, s, s, dt));
    if (mu_backend_can_capture(plan->be)) /* the second matrix of the recorded steps */
        MU_CHECK(mu_orth_alloc_work(plan, WORK_Y, plan->rows, plan->cols, dt));
    return MU_OK;
}

/* B = c A^2 + b A + a I from X (A and B are s x s work matrices); a_ready: A = X X^T is
 * already in place (an adaptive plan formed it to choose the schedule). */
static mu_status_t step_polynomial(mu_orth_plan_t *plan, const mu_coeff_t *p, const mu_mat_t *x,
                                   bool a_ready)
{
    mu_backend_t *be = plan->be;
    mu_mat_t *a = &plan->work[WORK_A], *b = &plan->work[WORK_B];
    if (!a_ready)
        MU_CHECK(mu_k_syrk(be, plan->wide ? MU_NO_TRANS : MU_TRANS, 1.0, x, 0.0, a));
    MU_CHECK(mu_k_copy(be, a, b));
    MU_CHECK(mu_k_syrk(be, MU_NO_TRANS, p->c, a, p->b, b));
    MU_CHECK(mu_k_add_identity(be, p->a, b));
    return MU_OK;
}

/* T steps from X_0 in cur, ping-ponging with next; *last is where the result lands. */
static mu_status_t run_steps(mu_orth_plan_t *plan, mu_mat_t *cur, mu_mat_t *next, bool a_ready,
                             const mu_mat_t **last)
{
    mu_backend_t *be = plan->be;
    const mu_schedule_t *sched = &plan->schedule;
    for (int t = 0; t < sched->iters; t++) {
        MU_CHECK(step_polynomial(plan, &sched->step[t], cur, a_ready && t == 0));
        const mu_mat_t *b = &plan->work[WORK_B];
        if (plan->wide)
            MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, b, cur, 0.0, next));
        else
            MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, cur, b, 0.0, next));
        mu_mat_t *t_swap = cur;
        cur = next;
        next = t_swap;
    }
    *last = cur;
    return MU_OK;
}

/* Called whole, the steps ping-pong between Q and one work matrix, starting where the last
 * lands in Q: no copy out. An adaptive plan forms the first A = X_0 X_0^T from G (as
 * inv_scale^2 G G^T) and chooses T before X_0 is placed. */
static mu_status_t poly_run(mu_orth_plan_t *plan, const mu_mat_t *g, mu_mat_t *q, double inv_scale)
{
    mu_mat_t *x = &plan->work[WORK_X], *a = &plan->work[WORK_A];
    const bool a_ready = plan->adapt_now;
    if (a_ready) {
        const mu_trans_t side = plan->wide ? MU_NO_TRANS : MU_TRANS;
        MU_CHECK(mu_k_syrk(plan->be, side, inv_scale * inv_scale, g, 0.0, a));
        MU_CHECK(mu_orth_adapt(plan, a));
    }
    mu_mat_t *cur = plan->schedule.iters % 2 == 0 ? q : x;
    const mu_mat_t *last;
    MU_CHECK(mu_k_axpby(plan->be, inv_scale, g, 0.0, cur));
    return run_steps(plan, cur, cur == q ? x : q, a_ready, &last);
}

/* Recorded, they ping-pong between two plan-owned matrices, so that one recording serves
 * every Q of the plan's shape; orth.c copies the result out. */
static mu_status_t poly_start(mu_orth_plan_t *plan, const mu_mat_t *g, double inv_scale)
{
    return mu_k_axpby(plan->be, inv_scale, g, 0.0, &plan->work[WORK_X]);
}

static mu_status_t poly_iterate(mu_orth_plan_t *plan, const mu_mat_t **result)
{
    return run_steps(plan, &plan->work[WORK_X], &plan->work[WORK_Y], false, result);
}

static double poly_flops(double s, double l, int iters)
{
    return iters * (3.0 * s * s * l + s * s * s);
}

const struct mu_orth_method_ops mu_orth_poly_ops = {
    .prepare = poly_prepare,
    .run = poly_run,
    .start = poly_start,
    .iterate = poly_iterate,
    .flops = poly_flops,
};
