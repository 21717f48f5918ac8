/*
 * The svd method: the exact canonical polar factor in fp64 from LAPACK, for any backend
 * (the matrix goes through host memory). The oracle of the tests and the last resort.
 */
#include "kernels/host_view.h"
#include "kernels/orth_impl.h"
#include "kernels/spectrum.h"

static mu_status_t svd_prepare(mu_orth_plan_t *plan)
{
    (void)plan;
    return MU_OK;
}

static mu_status_t svd_run(mu_orth_plan_t *plan, const mu_mat_t *g, mu_mat_t *q, double inv_scale)
{
    (void)inv_scale; /* the polar factor does not depend on the scale of G */
    mu_host_view_t host_g, host_q;
    MU_CHECK(mu_host_view_begin(plan->be, g, MU_DTYPE_F64, MU_HOST_READ | MU_HOST_PACKED, &host_g));
    mu_status_t status = MU_OK;
    MU_TRY(status,
           mu_host_view_begin(plan->be, q, MU_DTYPE_F64, MU_HOST_WRITE | MU_HOST_PACKED, &host_q));
    MU_TRY(status, mu_host_polar(host_g.data, plan->rows, plan->cols, host_q.data));
    MU_TRY(status, mu_host_view_end(plan->be, &host_q));
    mu_host_view_release(&host_q);
    mu_host_view_release(&host_g);
    return status;
}

static double svd_flops(double s, double l, int iters)
{
    /* Not a grouped polynomial; report the usual dense SVD estimate (Golub & Van Loan,
     * 4 s^2 l + 8 s^3 for values and thin vectors) plus the U V^T product. */
    (void)iters;
    return 4.0 * s * s * l + 8.0 * s * s * s + 2.0 * s * s * l;
}

const struct mu_orth_method_ops mu_orth_svd_ops = {
    .prepare = svd_prepare,
    .run = svd_run,
    .flops = svd_flops,
};
