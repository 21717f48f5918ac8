/*
 * A host view of a backend matrix: the one way code outside a backend reads or edits a
 * matrix's values with the CPU, whether the backend keeps them in host memory or on a device.
 *
 *   mu_host_view_t v;
 *   MU_CHECK(mu_host_view_begin(be, &m, MU_DTYPE_F64, MU_HOST_READ, &v));
 *   ... read v.data (rows x cols, v.ld elements per row, v.dtype) ...
 *   mu_host_view_release(&v);              (a read view; a written one: mu_host_view_end)
 *
 * Where the matrix is host memory in the asked dtype, the view is the matrix itself (no copy,
 * edits land in place). Otherwise the view is a staged host copy: filled from the matrix when
 * it is read, written back (converting) by mu_host_view_end when it is written, then freed.
 */
#ifndef MU_KERNELS_HOST_VIEW_H
#define MU_KERNELS_HOST_VIEW_H

#include <stdbool.h>

#include "kernels/ops.h"

typedef enum mu_host_access {
    MU_HOST_READ = 1,  /* the view starts with the matrix's values */
    MU_HOST_WRITE = 2, /* the view's values become the matrix's at the end */
    MU_HOST_READ_WRITE = MU_HOST_READ | MU_HOST_WRITE,
    MU_HOST_PACKED = 4, /* or'ed in: the caller needs ld == cols (a copy where m is a sub-view) */
} mu_host_access_t;

typedef struct mu_host_view {
    void *data; /* rows x cols values of dtype, ld elements per row */
    int64_t ld;
    mu_dtype_t dtype;
    mu_mat_t target; /* the viewed matrix */
    mu_host_access_t access;
    bool staged; /* data is a copy that mu_host_view_end frees */
} mu_host_view_t;

/* Opens a view of m in dtype. Fails (NOMEM) only when a copy is needed and cannot be made;
 * the view is then empty and mu_host_view_end is a no-op. */
mu_status_t mu_host_view_begin(mu_backend_t *be, const mu_mat_t *m, mu_dtype_t dtype,
                               mu_host_access_t access, mu_host_view_t *view);

/* Writes a staged writable view back into its matrix, then releases it. The copy is freed
 * even when the write-back fails. */
mu_status_t mu_host_view_end(mu_backend_t *be, mu_host_view_t *view);

/* Frees a staged copy without writing it back and empties the view (a no-op on an empty
 * one): the end of a read view, or of a written one whose values are to be dropped. */
void mu_host_view_release(mu_host_view_t *view);

#endif
