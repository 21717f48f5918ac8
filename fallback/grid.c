/* The BLACS grid over the communicator, and block-cyclic matrices on it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "comm/mpi/mpi_comm.h"
#include "core/log.h"
#include "fallback/fallback_impl.h"

/* BLACS_SET codes (BLACS's Bdef.h): repeatable and coherent combine topologies. */
enum { BLACS_TOPS_REPEAT = 15, BLACS_TOPS_COHERENT = 16 };

mu_status_t mu_scalapack_info(int info, const char *routine)
{
    if (info < 0)
        return mu_error(MU_ERR_SCALAPACK, "%s: argument %d is illegal (a bug in muond's call)",
                        routine, -info);
    if (info > 0)
        return mu_error(MU_ERR_NUMERIC, "%s: numerical failure (info %d)", routine, info);
    return MU_OK;
}

mu_status_t mu_fallback_info(const mu_fallback_t *fb, int info, const char *routine)
{
    /* ScaLAPACK may set info only where the failure was seen; every rank must branch alike */
    int64_t worst[2] = {info > 0 ? info : 0, info < 0 ? -(int64_t)info : 0};
    MU_CHECK(mu_comm_allreduce(fb->comm, worst, 2, MU_COMM_I64, MU_COMM_MAX));
    return mu_scalapack_info(worst[1] > 0 ? -(int)worst[1] : (int)worst[0], routine);
}

void mu_fallback_grid_shape(int ranks, int *nprow, int *npcol)
{
    int rows = 1;
    for (int r = 1; r * r <= ranks; r++)
        if (ranks % r == 0)
            rows = r;
    *nprow = rows;
    *npcol = ranks / rows;
}

const char *mu_fallback_route_name(mu_fallback_route_t route)
{
    switch (route) {
    case MU_FALLBACK_SVD:
        return "pdgesvd";
    case MU_FALLBACK_GRAM_EIGEN:
        return "pdsyevd (Gram)";
    case MU_FALLBACK_CHOLESKY:
        return "pdposv";
    case MU_FALLBACK_LU:
        return "pdgesv";
    case MU_FALLBACK_EIGEN:
        return "pdsyevd";
    default:
        return "LAPACK";
    }
}

mu_status_t mu_fallback_create(mu_comm_t *comm, mu_fallback_t **out)
{
    mu_fallback_t *fb = calloc(1, sizeof *fb);
    if (!fb)
        return mu_error(MU_ERR_NOMEM, "fallback: cannot allocate");
    MPI_Comm handle;
    fb->comm = comm;
    fb->host_only = mu_comm_mpi_handle(comm, &handle) != MU_OK;
    mu_error_clear(); /* not having MPI is an answer here, not an error */
    *out = fb;
    return MU_OK;
}

void mu_fallback_set_step(mu_fallback_t *fb, long step)
{
    fb->step = step;
}

mu_status_t mu_fallback_ensure_grid(mu_fallback_t *fb)
{
    if (fb->have_grid)
        return MU_OK;
    MPI_Comm handle;
    MU_CHECK(mu_comm_mpi_handle(fb->comm, &handle));
    mu_fallback_grid_shape(mu_comm_size(fb->comm), &fb->nprow, &fb->npcol);
    fb->system = Csys2blacs_handle(handle);
    fb->context = fb->system;
    Cblacs_gridinit(&fb->context, "Row", fb->nprow, fb->npcol);
    int yes = 1;
    Cblacs_set(fb->context, BLACS_TOPS_REPEAT, &yes);
    Cblacs_set(fb->context, BLACS_TOPS_COHERENT, &yes);
    int nprow, npcol;
    Cblacs_gridinfo(fb->context, &nprow, &npcol, &fb->myrow, &fb->mycol);
    if (nprow != fb->nprow || npcol != fb->npcol)
        return mu_error(MU_ERR_SCALAPACK, "rank %d: BLACS made a %dx%d grid, not %dx%d",
                        mu_comm_rank(fb->comm), nprow, npcol, fb->nprow, fb->npcol);
    fb->have_grid = true;
    MU_LOG(MU_LOG_INFO, MU_SUB_FALLBACK, "BLACS grid %d x %d for the ScaLAPACK fallback", fb->nprow,
           fb->npcol);
    return MU_OK;
}

void mu_fallback_destroy(mu_fallback_t **fb)
{
    if (!fb || !*fb)
        return;
    if ((*fb)->have_grid) {
        Cblacs_gridexit((*fb)->context);
        Cfree_blacs_system_handle((*fb)->system);
    }
    free(*fb);
    *fb = NULL;
}

mu_status_t mu_dist_create(const mu_fallback_t *fb, int m, int n, dist_t *out)
{
    const int zero = 0, block = MU_BLOCK;
    memset(out, 0, sizeof *out);
    out->m = m;
    out->n = n;
    out->local_rows = numroc_(&m, &block, &fb->myrow, &zero, &fb->nprow);
    out->local_cols = numroc_(&n, &block, &fb->mycol, &zero, &fb->npcol);
    const int lld = out->local_rows > 1 ? out->local_rows : 1;
    int info;
    descinit_(out->desc, &m, &n, &block, &block, &zero, &zero, &fb->context, &lld, &info);
    MU_CHECK(mu_fallback_info(fb, info, "descinit"));
    const size_t count = (size_t)lld * (size_t)(out->local_cols > 0 ? out->local_cols : 1);
    out->local = calloc(count, sizeof *out->local);
    /* collective: one rank short of memory must not leave the others inside the next routine */
    return mu_comm_agree(
        fb->comm,
        out->local ? MU_OK
                   : mu_error(MU_ERR_NOMEM, "fallback: cannot allocate %zu local elements", count));
}

void mu_dist_free(dist_t *d)
{
    free(d->local);
    d->local = NULL;
}

/* The descriptor of the owner's whole matrix: one block, held at the owner's grid place. */
static mu_status_t owner_descriptor(const mu_fallback_t *fb, int owner, int m, int n, int *desc)
{
    const int row = owner / fb->npcol, col = owner % fb->npcol; /* "Row" order */
    /* descinit checks LLD against the rows this grid row holds: all m of them in the owner's row */
    const int lld = fb->myrow == row ? (m > 1 ? m : 1) : 1;
    const int mb = m > 0 ? m : 1, nb = n > 0 ? n : 1;
    int info;
    descinit_(desc, &m, &n, &mb, &nb, &row, &col, &fb->context, &lld, &info);
    return mu_fallback_info(fb, info, "descinit");
}

mu_status_t mu_dist_scatter(const mu_fallback_t *fb, int owner, const double *owned, dist_t *d)
{
    int desc[DESC_LEN];
    MU_CHECK(owner_descriptor(fb, owner, d->m, d->n, desc));
    const int one = 1;
    const double dummy = 0.0;
    pdgemr2d_(&d->m, &d->n, owned ? owned : &dummy, &one, &one, desc, d->local, &one, &one, d->desc,
              &fb->context);
    return MU_OK;
}

mu_status_t mu_dist_gather(const mu_fallback_t *fb, int owner, const dist_t *d, double *owned)
{
    int desc[DESC_LEN];
    MU_CHECK(owner_descriptor(fb, owner, d->m, d->n, desc));
    const int one = 1;
    double dummy = 0.0;
    pdgemr2d_(&d->m, &d->n, d->local, &one, &one, d->desc, owned ? owned : &dummy, &one, &one, desc,
              &fb->context);
    return MU_OK;
}

void mu_dist_scale_columns(const mu_fallback_t *fb, dist_t *d, const double *factor)
{
    const int lld = d->local_rows > 1 ? d->local_rows : 1;
    for (int lc = 0; lc < d->local_cols; lc++) {
        /* local column lc is global column: block (lc / B) * npcol + mycol, offset lc % B */
        const int global = ((lc / MU_BLOCK) * fb->npcol + fb->mycol) * MU_BLOCK + lc % MU_BLOCK;
        for (int lr = 0; lr < d->local_rows; lr++)
            d->local[(size_t)lc * (size_t)lld + (size_t)lr] *= factor[global];
    }
}

/*
 * pdsyevd's workspace query sizes WORK from this process's own share of the matrix, but its
 * pdstedc (pdlasrt) and pdormtr steps need up to NP (NB + NQ) and NB^2 + (NP + NQ + NB) NB,
 * which a process holding few columns underestimates (seen on 1x3 and 2x2 grids as "PDORMTR
 * parameter 16 illegal", and pdsyevd then returns info 0 with wrong vectors). Every rank
 * therefore takes the largest query plus those two bounds for the largest share, which sits
 * on grid place (0, 0).
 */
static mu_status_t eigen_workspace(const mu_fallback_t *fb, int n, double query, int *lwork)
{
    const int zero = 0, block = MU_BLOCK;
    const int64_t np = numroc_(&n, &block, &zero, &zero, &fb->nprow);
    const int64_t nq = numroc_(&n, &block, &zero, &zero, &fb->npcol);
    int64_t need = (int64_t)query + 1;
    MU_CHECK(mu_comm_allreduce(fb->comm, &need, 1, MU_COMM_I64, MU_COMM_MAX));
    need +=
        2 * (int64_t)n + np * (MU_BLOCK + nq) + (int64_t)MU_BLOCK * (MU_BLOCK + np + nq + MU_BLOCK);
    if (need > INT32_MAX)
        return mu_error(MU_ERR_INVALID, "fallback: pdsyevd workspace for n %d exceeds int", n);
    *lwork = (int)need;
    return MU_OK;
}

mu_status_t mu_dist_agree_values(const mu_fallback_t *fb, double *values, int count)
{
    return mu_comm_bcast(fb->comm, values, (int64_t)count * (int64_t)sizeof *values, 0);
}

mu_status_t mu_dist_symmetric_eigen(const mu_fallback_t *fb, dist_t *a, dist_t *z, double *w)
{
    const int n = a->m, one = 1;
    int lwork = -1, liwork = -1, info = 0, iquery = 0;
    double query = 0.0;
    pdsyevd_("V", "U", &n, a->local, &one, &one, a->desc, w, z->local, &one, &one, z->desc, &query,
             &lwork, &iquery, &liwork, &info, 1, 1);
    MU_CHECK(mu_fallback_info(fb, info, "pdsyevd (workspace query)"));
    MU_CHECK(eigen_workspace(fb, n, query, &lwork));
    liwork = iquery > 1 ? iquery : 1;
    double *work = malloc(sizeof *work * (size_t)lwork);
    int *iwork = malloc(sizeof *iwork * (size_t)liwork);
    /* a failed allocation must not leave the other ranks inside pdsyevd */
    mu_status_t status = mu_comm_agree(
        fb->comm, (work && iwork) ? MU_OK : mu_error(MU_ERR_NOMEM, "fallback: pdsyevd workspace"));
    if (status == MU_OK) {
        pdsyevd_("V", "U", &n, a->local, &one, &one, a->desc, w, z->local, &one, &one, z->desc,
                 work, &lwork, iwork, &liwork, &info, 1, 1);
        status = mu_fallback_info(fb, info, "pdsyevd");
    }
    if (status == MU_OK) /* rank 0's eigenvalues everywhere (see mu_dist_agree_values) */
        status = mu_dist_agree_values(fb, w, n);
    free(work);
    free(iwork);
    return status;
}
