#include "kernels/host_view.h"

#include <stdlib.h>

mu_status_t mu_host_view_begin(mu_backend_t *be, const mu_mat_t *m, mu_dtype_t dtype,
                               mu_host_access_t access, mu_host_view_t *view)
{
    *view = (mu_host_view_t){
        .data = m->data, .ld = m->ld, .dtype = dtype, .target = *m, .access = access};
    const bool packed = m->ld == m->cols || m->rows <= 1;
    if (mu_backend_host_memory(be) && m->dtype == dtype && (packed || !(access & MU_HOST_PACKED)))
        return MU_OK;
    const size_t count = (size_t)(m->rows * m->cols);
    view->data = malloc(count * mu_dtype_size(dtype) + 1); /* + 1: a 0 x n matrix */
    if (!view->data) {
        *view = (mu_host_view_t){0};
        return mu_error(MU_ERR_NOMEM, "cannot stage a %lldx%lld %s matrix in host memory",
                        (long long)m->rows, (long long)m->cols, mu_dtype_name(dtype));
    }
    view->staged = true;
    view->ld = m->cols > 0 ? m->cols : 1;
    if (!(access & MU_HOST_READ) || count == 0)
        return MU_OK;
    const mu_status_t status = mu_k_download(be, m, view->data, dtype, view->ld);
    if (status != MU_OK) {
        free(view->data);
        *view = (mu_host_view_t){0};
    }
    MU_CHECK(status);
    return MU_OK;
}

void mu_host_view_release(mu_host_view_t *view)
{
    if (view->staged)
        free(view->data);
    *view = (mu_host_view_t){0};
}

mu_status_t mu_host_view_end(mu_backend_t *be, mu_host_view_t *view)
{
    const bool write_back =
        view->staged && (view->access & MU_HOST_WRITE) && view->target.rows * view->target.cols > 0;
    const mu_status_t status =
        write_back ? mu_k_upload(be, view->data, view->dtype, view->ld, &view->target) : MU_OK;
    mu_host_view_release(view);
    MU_CHECK(status);
    return MU_OK;
}
