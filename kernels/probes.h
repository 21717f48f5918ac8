/*
 * Host-side helpers for the randomized probes of kernels/residual.c and kernels/certificate.c:
 * blocks of k seeded Gaussian columns, stored row-major (rows x k) in double, that go through
 * a backend's GEMMs and come back for the arithmetic on their columns.
 */
#ifndef MU_KERNELS_PROBES_H
#define MU_KERNELS_PROBES_H

#include <stdint.h>

/* v[0..rows*k) = standard normal draws of (seed, stream): the same probes on every backend. */
void mu_probes_gaussian(uint64_t seed, uint64_t stream, int64_t rows, int k, double *v);

/* v[0..rows*k) = random signs (Rademacher) of (seed, stream), 64 per draw: for Hutchinson's
 * trace estimates as good as Gaussians (lower variance, E[v v^T] = I too) at a fraction of
 * the cost, which the step's certificate pays on every matrix. */
void mu_probes_signs(uint64_t seed, uint64_t stream, int64_t rows, int k, double *v);

/* ||m[:, col]||_2 of a row-major rows x k block. */
double mu_probes_column_norm(const double *m, int64_t rows, int k, int col);

/* One power step's reading: the largest ||e_j|| / ||v_j|| over the k columns, after which
 * v_j <- e_j / ||e_j|| (unchanged where e_j = 0). A non-finite ratio is returned at once,
 * since fmax would silently drop a NaN. */
double mu_probes_power_ratio(double *v, const double *e, int64_t rows, int k);

#endif
