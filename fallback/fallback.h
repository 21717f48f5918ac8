/*
 * The exact fallback: when a fast orthogonalization fails its residual check, the whole rank
 * group solves that matrix with ScaLAPACK in double precision (DESIGN.md, step 4).
 *
 *  - A BLACS process grid over the communicator, as square as the group size allows
 *    (P = 4: 2 x 2; P = 3: 1 x 3), created on first use and reused; its combines are set to
 *    repeatable topologies, so the same input on the same grid gives the same bits.
 *  - The owner's matrix travels to a block-cyclic distribution with pdgemr2d, is solved, and
 *    comes back to the owner the same way.
 *  - Polar factor: the canonical one, U_r V_r^T with r the numerical rank (singular values above
 *    max(m,n) eps s_max; exact zeros are not completed into an arbitrary orthonormal set). By
 *    pdgesvd, or, for a matrix at least twice as long as it is short whose Gram matrix is well
 *    enough conditioned (lambda_min / lambda_max >= 1e-5, so that the squared condition number
 *    costs at most ~1e-11), by pdsyevd of the Gram matrix: Q = G (G^T G)^(-1/2).
 *  - SPD inverse roots A^(-1/p) B by pdsyevd; p = 1 by pdposv, or pdgesv when A is not positive
 *    definite.
 *  - A communicator without MPI (loopback: one process) uses LAPACK directly.
 *
 * Every function is collective: all ranks call it with the same owner and shape. Matrices are
 * row-major doubles on the owner (others pass NULL). ScaLAPACK's info is decoded in one place:
 * negative is a bug in muond's call (MU_ERR_SCALAPACK), positive a numerical failure
 * (MU_ERR_NUMERIC): the caller skips that matrix's update, never applies it in part.
 */
#ifndef MU_FALLBACK_FALLBACK_H
#define MU_FALLBACK_FALLBACK_H

#include <stdint.h>

#include "comm/comm.h"

typedef struct mu_fallback mu_fallback_t;

typedef enum mu_fallback_route {
    MU_FALLBACK_SVD,        /* polar: pdgesvd */
    MU_FALLBACK_GRAM_EIGEN, /* polar: pdsyevd of the Gram matrix */
    MU_FALLBACK_CHOLESKY,   /* SPD root, p = 1: pdposv */
    MU_FALLBACK_LU,         /* SPD root, p = 1, A not positive definite: pdgesv */
    MU_FALLBACK_EIGEN,      /* SPD root, p = 2, 4: pdsyevd */
    MU_FALLBACK_LAPACK,     /* one process, LAPACK */
} mu_fallback_route_t;

typedef struct mu_fallback_report {
    mu_fallback_route_t route;
    int nprow, npcol;
    int64_t rank; /* numerical rank kept (-1: not counted, the LAPACK route) */
    double seconds;
} mu_fallback_report_t;

/* Not collective: the grid is built by the first solve. Borrows comm. */
mu_status_t mu_fallback_create(mu_comm_t *comm, mu_fallback_t **out);
/* Collective once a grid exists. */
void mu_fallback_destroy(mu_fallback_t **fb);

/* The step the next solves belong to (for messages and fault injection); 0: none. */
void mu_fallback_set_step(mu_fallback_t *fb, long step);

/* The grid a group of `ranks` processes uses (nprow <= npcol, nprow as large as divides). */
void mu_fallback_grid_shape(int ranks, int *nprow, int *npcol);
const char *mu_fallback_route_name(mu_fallback_route_t route);

/* q = polar(g) on the owner; g is rows x cols. */
mu_status_t mu_fallback_polar(mu_fallback_t *fb, int owner, int64_t rows, int64_t cols,
                              const double *g, double *q, mu_fallback_report_t *report);

/* y = a^(-1/p) b on the owner (b NULL: the identity); a is n x n SPD, b and y are n x k. */
mu_status_t mu_fallback_spd_inv_root(mu_fallback_t *fb, int owner, int64_t n, int64_t k,
                                     const double *a, const double *b, int p, double *y,
                                     mu_fallback_report_t *report);

#endif
