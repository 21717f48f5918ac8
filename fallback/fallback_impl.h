/* Private to fallback/: the grid, and distributed matrices on it. */
#ifndef MU_FALLBACK_FALLBACK_IMPL_H
#define MU_FALLBACK_FALLBACK_IMPL_H

#include <stdbool.h>

#include "fallback/fallback.h"
#include "fallback/scalapack.h"

/* Square blocks of this size: pdgesvd and pdsyevd need MB = NB; 64 is ScaLAPACK's usual. */
enum { MU_BLOCK = 64 };

struct mu_fallback {
    mu_comm_t *comm;
    bool host_only; /* no MPI: LAPACK */
    bool have_grid;
    int system, context;
    int nprow, npcol, myrow, mycol;
    long step; /* of the solves now running (mu_fallback_set_step) */
};

/* A block-cyclic matrix on the grid: its descriptor and this process's local block. */
typedef struct dist {
    int desc[DESC_LEN];
    int m, n, local_rows, local_cols;
    double *local;
} dist_t;

mu_status_t mu_fallback_ensure_grid(mu_fallback_t *fb);

/* mu_scalapack_info on the worst info over all ranks (collective): ranks take one branch. */
mu_status_t mu_fallback_info(const mu_fallback_t *fb, int info, const char *routine);

/* A zeroed m x n block-cyclic matrix. */
mu_status_t mu_dist_create(const mu_fallback_t *fb, int m, int n, dist_t *out);
void mu_dist_free(dist_t *d);

/* Owner's column-major m x n array (ld m) <-> distribution (collective). */
mu_status_t mu_dist_scatter(const mu_fallback_t *fb, int owner, const double *owned, dist_t *d);
mu_status_t mu_dist_gather(const mu_fallback_t *fb, int owner, const dist_t *d, double *owned);

/* pdsyevd: a = z diag(w) z^T, w ascending and on every rank; a is destroyed. */
mu_status_t mu_dist_symmetric_eigen(const mu_fallback_t *fb, dist_t *a, dist_t *z, double *w);
/* Collective: rank 0's values on every rank. ScaLAPACK's drivers return singular values and
 * eigenvalues on every process, but not bitwise equal on all of them, and the callers choose
 * collective work from them (a numerical rank, a route): a rank that chose differently would
 * enter another ScaLAPACK call than the others and wait forever. */
mu_status_t mu_dist_agree_values(const mu_fallback_t *fb, double *values, int count);

/* Scales local column j of d (global index) by f(j): for Z diag(w). */
void mu_dist_scale_columns(const mu_fallback_t *fb, dist_t *d, const double *factor);

#endif
