/*
 * The svd method: the exact canonical polar factor in fp64 from LAPACK, for any backend
 * (the matrix goes through host memory). The oracle of the tests and the last resort.
 */
#include <stdlib.h>

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
    const size_t count = (size_t)(plan->rows * plan->cols);
    double *host_g = malloc(count * sizeof *host_g);
    double *host_q = malloc(count * sizeof *host_q);
    mu_status_t status = MU_OK;
    if (!host_g || !host_q) {
        status = mu_error(MU_ERR_NOMEM, "svd: cannot stage a %lldx%lld matrix on the host",
                          (long long)plan->rows, (long long)plan->cols);
        goto out_with_buffers;
    }
    MU_CHECK_GOTO(status, mu_k_download(plan->be, g, host_g, MU_DTYPE_F64, plan->cols),
                  out_with_buffers);
    MU_CHECK_GOTO(status, mu_host_polar(host_g, plan->rows, plan->cols, host_q), out_with_buffers);
    MU_CHECK_GOTO(status, mu_k_upload(plan->be, host_q, MU_DTYPE_F64, plan->cols, q),
                  out_with_buffers);
out_with_buffers:
    free(host_g);
    free(host_q);
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
