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
};

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

/* Z <- P Z (Z_0 = I, so the first step is a copy). */
static mu_status_t advance_z(mu_orth_plan_t *plan, int step)
{
    mu_backend_t *be = plan->be;
    mu_mat_t *p = &plan->work[WORK_P];
    if (step == 0)
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

    const mu_schedule_t *sched = &plan->schedule;
    for (int t = 0; t < sched->iters; t++) {
        MU_CHECK(form_polynomial(be, &sched->step[t], r, &plan->work[WORK_P]));
        MU_CHECK(advance_z(plan, t));
        if (t + 1 < sched->iters) /* the last R would never be read */
            MU_CHECK(advance_r(plan));
    }
    const mu_mat_t *z = &plan->work[WORK_Z];
    if (plan->wide)
        MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, inv_scale, z, gw, 0.0, qw));
    else
        MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, inv_scale, gw, z, 0.0, qw));
    if (converts(plan))
        MU_CHECK(mu_k_copy(be, qw, q));
    return MU_OK;
}

static double gram_flops(double s, double l, int iters)
{
    const double per_step = s * s * s;                       /* SYRK for R^2 */
    const double z_products = (iters - 1) * 2.0 * s * s * s; /* P Z after the first step */
    const double r_products = (iters - 1) * 4.0 * s * s * s; /* P R P but after the last */
    return s * s * l + iters * per_step + z_products + r_products + 2.0 * s * s * l;
}

const struct mu_orth_method_ops mu_orth_gram_ops = {
    .prepare = gram_prepare,
    .run = gram_run,
    .flops = gram_flops,
};
