/*
 * The Gram-specialized route to polar(G) = (G G^T)^(-1/2) G (kernels/orth.h).
 *
 * Every iterate of the direct method is X_k = Z_k X_0 with Z_k a polynomial in the Gram
 * matrix A = X_0 X_0^T, so the iteration can run on s x s matrices alone. The coupled pair
 *     R_k = X_k X_k^T = Z_k A Z_k,     P_k = a_k I + b_k R_k + c_k R_k^2,
 *     Z_{k+1} = P_k Z_k,               R_{k+1} = P_k R_k P_k
 * starts from Z_0 = I, R_0 = A and applies the same schedule as Polar Express; only the
 * last product Q = Z_T X_0 touches the long side. Cost for an s x l matrix:
 *     s^2 l (SYRK for A) + T * (s^3 + 2 s^3 + 4 s^3) + 2 s^2 l (final GEMM),
 * against T * (3 s^2 l + s^3) for the direct method: a win whenever l is a few times s.
 *
 * Precision: A squares the condition number, so the Gram side may run in fp64
 * (gram_dtype); the input is then converted once and the final product is done in fp64.
 *
 * Restart (Dao et al. 2026): R_k carries the rounding of every earlier step, which the
 * polynomials amplify most in the directions with the smallest singular values. After
 * gram_restart_after steps (3 by default) the iteration forms X_k = Z_k X_0 and starts again
 * from R = X_k X_k^T, Z = I, with the rest of the schedule, for 3 s^2 l more flops. Measured
 * in fp32 on the recorded momenta and a spike over a bulk at 2e-4 (bench/preconditioners.py):
 * without it ||Q||_2 reached 1.12 (blocks.0.proj), 1.10 (digits fc1) and 1.49 (the spike)
 * and the mean descent per unit step was 0.954; with it ||Q||_2 <= 1.0000 and 0.9997, Polar
 * Express's own at T = 8, on every matrix.
 */
#include "kernels/orth_impl.h"

enum {
    WORK_R = 0, /* R_k (s x s) */
    WORK_P = 1, /* P_k */
    WORK_T = 2, /* P_k R_k */
    WORK_Z = 3, /* Z_k */
    WORK_Z_NEXT = 4,
    WORK_G = 5, /* G in the Gram dtype, when it differs from the plan's dtype */
    WORK_Q = 6, /* Q in the Gram dtype, likewise */
    WORK_X = 7, /* X_k at the restart (rows x cols) */
};

enum { GRAM_DEFAULT_RESTART_AFTER = 3 };

/* The step after which the iteration restarts, or 0 for none: the schedule ends first, the
 * options turned it off, or an fp32 G lies so far from unit norm (beyond 1e+-30) that the
 * restart's product Z_k G, scaled only afterwards and with Z_k's entries still far from
 * converged, would overflow or underflow fp32 (a G near FLT_MAX did). */
static int restart_step(const mu_orth_plan_t *plan, double inv_scale)
{
    const int after = plan->opts.gram_restart_after;
    const int step = after == 0 ? GRAM_DEFAULT_RESTART_AFTER : after;
    const bool in_range =
        plan->opts.gram_dtype != MU_DTYPE_F32 || (inv_scale >= 1e-30 && inv_scale <= 1e30);
    return after < 0 || step >= plan->schedule.iters || !in_range ? 0 : step;
}

static bool converts(const mu_orth_plan_t *plan)
{
    return plan->opts.gram_dtype != plan->opts.dtype;
}

static mu_status_t gram_prepare(mu_orth_plan_t *plan)
{
    const mu_dtype_t gd = plan->opts.gram_dtype;
    const int64_t s = plan->short_side;
    for (int slot = WORK_R; slot <= WORK_Z_NEXT; slot++)
        MU_CHECK(mu_orth_alloc_work(plan, slot, s, s, gd));
    if (converts(plan)) {
        MU_CHECK(mu_orth_alloc_work(plan, WORK_G, plan->rows, plan->cols, gd));
        MU_CHECK(mu_orth_alloc_work(plan, WORK_Q, plan->rows, plan->cols, gd));
    }
    if (plan->opts.gram_restart_after >= 0) /* an adaptive plan's T is not known yet */
        MU_CHECK(mu_orth_alloc_work(plan, WORK_X, plan->rows, plan->cols, gd));
    return MU_OK;
}

/* P = c R^2 + b R + a I. */
static mu_status_t form_polynomial(mu_backend_t *be, const mu_coeff_t *p, const mu_mat_t *r,
                                   mu_mat_t *out)
{
    MU_CHECK(mu_k_copy(be, r, out));
    MU_CHECK(mu_k_syrk(be, MU_NO_TRANS, p->c, r, p->b, out));
    MU_CHECK(mu_k_add_identity(be, p->a, out));
    return MU_OK;
}

/* Z <- P Z (Z = I at the start and after a restart, where the step is a copy). */
static mu_status_t advance_z(mu_orth_plan_t *plan, bool z_is_identity)
{
    mu_backend_t *be = plan->be;
    mu_mat_t *p = &plan->work[WORK_P];
    if (z_is_identity)
        return mu_k_copy(be, p, &plan->work[WORK_Z]);
    MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, p, &plan->work[WORK_Z], 0.0,
                       &plan->work[WORK_Z_NEXT]));
    const mu_mat_t swap = plan->work[WORK_Z];
    plan->work[WORK_Z] = plan->work[WORK_Z_NEXT];
    plan->work[WORK_Z_NEXT] = swap;
    return MU_OK;
}

/* R <- P R P, kept exactly symmetric. (Recomputing R = Z A Z from the Gram matrix instead
 * costs the same, but it is unstable: Z's rounding error does not commute with A, and the
 * polynomials amplify it without bound outside their interval; fp32 at kappa 100 diverged.) */
static mu_status_t advance_r(mu_orth_plan_t *plan)
{
    mu_backend_t *be = plan->be;
    mu_mat_t *r = &plan->work[WORK_R], *p = &plan->work[WORK_P], *t = &plan->work[WORK_T];
    MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, p, r, 0.0, t));
    MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, t, p, 0.0, r));
    MU_CHECK(mu_k_symmetrize(be, r));
    return MU_OK;
}

/* out = scale * (Z x) on the short side: Z x for a wide matrix, x Z for a tall one. */
static mu_status_t apply_z(mu_orth_plan_t *plan, double scale, const mu_mat_t *x, mu_mat_t *out)
{
    const mu_mat_t *z = &plan->work[WORK_Z];
    if (plan->wide)
        return mu_k_gemm(plan->be, MU_NO_TRANS, MU_NO_TRANS, scale, z, x, 0.0, out);
    return mu_k_gemm(plan->be, MU_NO_TRANS, MU_NO_TRANS, scale, x, z, 0.0, out);
}

/* X_k = Z_k X_0 into WORK_X and R = X_k X_k^T: the iteration starts again from X_k. */
static mu_status_t restart(mu_orth_plan_t *plan, const mu_mat_t *x0, double x0_scale)
{
    mu_mat_t *xk = &plan->work[WORK_X];
    MU_CHECK(apply_z(plan, x0_scale, x0, xk));
    const mu_trans_t side = plan->wide ? MU_NO_TRANS : MU_TRANS;
    return mu_k_syrk(plan->be, side, 1.0, xk, 0.0, &plan->work[WORK_R]);
}

static mu_status_t gram_run(mu_orth_plan_t *plan, const mu_mat_t *g, mu_mat_t *q, double inv_scale)
{
    mu_backend_t *be = plan->be;
    const mu_mat_t *gw = g;
    mu_mat_t *qw = q;
    if (converts(plan)) {
        MU_CHECK(mu_k_copy(be, g, &plan->work[WORK_G]));
        gw = &plan->work[WORK_G];
        qw = &plan->work[WORK_Q];
    }
    mu_mat_t *r = &plan->work[WORK_R];
    const mu_trans_t side = plan->wide ? MU_NO_TRANS : MU_TRANS;
    MU_CHECK(mu_k_syrk(be, side, inv_scale * inv_scale, gw, 0.0, r));
    MU_CHECK(mu_orth_adapt(plan, r)); /* an adaptive plan's T, from R_0 = A */

    const mu_schedule_t *sched = &plan->schedule;
    const int restart_at = restart_step(plan, inv_scale);
    const mu_mat_t *base = gw; /* Q = Z base * base_scale */
    double base_scale = inv_scale;
    for (int t = 0; t < sched->iters; t++) {
        if (t > 0 && t == restart_at) {
            MU_CHECK(restart(plan, base, base_scale));
            base = &plan->work[WORK_X];
            base_scale = 1.0;
        }
        MU_CHECK(form_polynomial(be, &sched->step[t], r, &plan->work[WORK_P]));
        MU_CHECK(advance_z(plan, t == 0 || t == restart_at));
        if (t + 1 < sched->iters && t + 1 != restart_at) /* an R never read is not formed */
            MU_CHECK(advance_r(plan));
    }
    MU_CHECK(apply_z(plan, base_scale, base, qw));
    if (converts(plan))
        MU_CHECK(mu_k_copy(be, qw, q));
    return MU_OK;
}

static double gram_flops(double s, double l, int iters)
{
    const double per_step = s * s * s;                       /* SYRK for R^2 */
    const double z_products = (iters - 1) * 2.0 * s * s * s; /* P Z after the first step */
    const double r_products = (iters - 1) * 4.0 * s * s * s; /* P R P but after the last */
    const double restart = iters > GRAM_DEFAULT_RESTART_AFTER ? 3.0 * s * s * l : 0.0;
    return s * s * l + iters * per_step + z_products + r_products + restart + 2.0 * s * s * l;
}

const struct mu_orth_method_ops mu_orth_gram_ops = {
    .prepare = gram_prepare,
    .run = gram_run,
    .flops = gram_flops,
};
