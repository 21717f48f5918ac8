/*
 * Lanczos on a symmetric operator given by a matrix M on the backend: M^T M, or M itself
 * when M is symmetric; k independent recurrences at once, so every step is one GEMM (M) or
 * a GEMM pair (M^T M) for all k columns, and the recurrences' arithmetic (full
 * reorthogonalization, the tridiagonal matrices) runs in double on the host. Two users:
 *   - the certificate (kernels/certificate.c): the largest Ritz value of Q^T Q, a lower bound
 *     on ||Q||_2^2 that reaches it in a few steps even when only a few directions overshoot;
 *   - adaptive schedules (kernels/adaptive.c): Gauss quadrature nodes and weights of the
 *     Gram matrix X X^T's spectral measure seen from each start (stochastic Lanczos
 *     quadrature).
 */
#ifndef MU_KERNELS_LANCZOS_H
#define MU_KERNELS_LANCZOS_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/ops.h"

typedef struct mu_lanczos {
    int k, steps, done;
    int64_t n;            /* the operator's order */
    double *basis;        /* (steps + 1) x k x n, vector i of column j at (i * k + j) * n */
    double *alpha, *beta; /* steps x k: the tridiagonal matrices, column by column */
    int *count;           /* k: alphas of each column so far */
    bool *stopped;        /* k */
} mu_lanczos_t;

typedef enum mu_lanczos_operator {
    MU_LANCZOS_GRAM,     /* M^T M, of order M's columns */
    MU_LANCZOS_SYMMETRIC /* M itself, square and symmetric */
} mu_lanczos_operator_t;

/* Runs at most `steps` steps (<= MU_SCHEDULE_MAX_ITERS) of each recurrence on the operator,
 * started from the first k columns of the row-major block `start` (n x stride). A recurrence
 * stops early where its Krylov space becomes invariant up to round-off. out is set up even
 * on failure (free it). */
mu_status_t mu_lanczos_run(mu_backend_t *be, const mu_mat_t *m, mu_lanczos_operator_t op,
                           const double *start, int stride, int k, int steps, mu_lanczos_t *out);

/* The largest eigenvalue of column j's tridiagonal matrix (NaN if it has none). */
double mu_lanczos_largest(const mu_lanczos_t *lz, int j);

/* Column j's Gauss quadrature: its tridiagonal matrix's eigenvalues (nodes) and the squared
 * first components of their eigenvectors (weights, summing to 1), at most `steps` of each.
 * Returns how many (0 if LAPACK fails or the column has none). */
int mu_lanczos_quadrature(const mu_lanczos_t *lz, int j, double *nodes, double *weights);

void mu_lanczos_free(mu_lanczos_t *lz);

#endif
