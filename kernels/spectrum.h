/*
 * Host-side fp64 dense linear algebra on LAPACK(E): the exact references that the tests,
 * the benchmark's accuracy column and the svd method are built on. All matrices are
 * row-major double arrays owned by the caller.
 */
#ifndef MU_KERNELS_SPECTRUM_H
#define MU_KERNELS_SPECTRUM_H

#include <stdint.h>

#include "core/status.h"

/* sigma[0..min(rows,cols)) = singular values of a, descending. */
mu_status_t mu_host_singular_values(const double *a, int64_t rows, int64_t cols, double *sigma);

/* For a (nominally) orthogonal q: max_i |sigma_i - 1| and max_i |sigma_i^2 - 1|, the latter
 * being ||Q Q^T - I||_2 on the short side. Either output may be NULL. */
mu_status_t mu_host_orthogonality(const double *q, int64_t rows, int64_t cols,
                                  double *max_sigma_error, double *max_gram_error);

/* ||a||_2 (largest singular value). */
mu_status_t mu_host_spectral_norm(const double *a, int64_t rows, int64_t cols, double *out);

/* The canonical polar factor U_r V_r^T of g, where r counts the singular values above
 * max(rows, cols) * eps * sigma_max (LAPACK's numerical-rank convention): directions g does
 * not have stay zero instead of receiving an arbitrary orthonormal completion. */
mu_status_t mu_host_polar(const double *g, int64_t rows, int64_t cols, double *q);

/* How well q serves as the steepest-descent step for g under the spectral norm (docs/numerics.md
 * "What the update must be"): the best step of norm 1 is the polar factor U_r V_r^T, whose
 * descent <G, O> is the nuclear norm ||G||_*. All from an fp64 SVD of g and of q. */
typedef struct mu_host_descent {
    double nuclear;     /* ||G||_* */
    double descent;     /* <Q, G> */
    double efficiency;  /* <Q, G> / ||G||_* (1 for the polar factor; 0 when G = 0) */
    double q_norm;      /* ||Q||_2: above 1 is an overshoot of the promised step size */
    double polar_error; /* ||Q - U_r V_r^T||_2, the distance from the exact answer */
    int64_t rank;       /* r, G's numerical rank (mu_host_polar's convention) */
} mu_host_descent_t;
mu_status_t mu_host_descent(const double *g, const double *q, int64_t rows, int64_t cols,
                            mu_host_descent_t *out);

/* y = a^(-1/p) b for SPD a (n x n), b n x k (NULL: the identity, k = n), p in {1, 2, 4}:
 * p = 1 by Cholesky (LU when a is not positive definite), others by the eigendecomposition.
 * A non-positive eigenvalue (p = 2, 4) is MU_ERR_NUMERIC. */
mu_status_t mu_host_spd_inv_root(const double *a, const double *b, int64_t n, int64_t k, int p,
                                 double *y);

/* R = a x^p - I for a computed root x ~ a^(-1/p) (both n x n, p in {1, 2, 4}): ||R||_F and
 * ||R||_2 (LAPACK SVD), in fp64. */
mu_status_t mu_host_root_residual(const double *a, const double *x, int64_t n, int p, double *frob,
                                  double *spectral);

/* out (rows x cols, rows >= cols) with orthonormal columns: QR of a seeded Gaussian matrix. */
mu_status_t mu_host_random_orthonormal(int64_t rows, int64_t cols, uint64_t seed, uint64_t stream,
                                       double *out);

/* out = U diag(sigma) V^T with U rows x r, V cols x r (both row-major). */
mu_status_t mu_host_compose_svd(int64_t rows, int64_t cols, int64_t r, const double *u,
                                const double *sigma, const double *v, double *out);

/* out (rows x cols) = U diag(sigma) V^T with random orthonormal U, V (seeded) and sigma
 * log-spaced over [1/kappa, 1]: a matrix of known condition number kappa. */
mu_status_t mu_host_random_with_condition(int64_t rows, int64_t cols, double kappa, uint64_t seed,
                                          double *out);

#endif
