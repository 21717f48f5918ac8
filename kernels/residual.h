/*
 * How orthogonal is Q? The exact answer, ||Q Q^T - I||_2 on the short side (= max |s_i^2 - 1|),
 * needs an SVD (kernels/spectrum.h, for tests). The cheap estimate here costs a few
 * matrix-vector products: k seeded Gaussian probes v go through E = Q Q^T v - v (short side),
 * and a few power steps on the symmetric E-operator sharpen max ||E v|| / ||v|| towards the
 * largest |s_i^2 - 1|. The estimate never exceeds the exact value. Each power step is two
 * GEMMs with k columns, 4 k s l flops: with 4 probes and 3 steps, 48 s l flops against
 * 3 s^2 l for a single Polar Express step.
 */
#ifndef MU_KERNELS_RESIDUAL_H
#define MU_KERNELS_RESIDUAL_H

#include <stdint.h>

#include "kernels/ops.h"

enum { MU_RESIDUAL_DEFAULT_PROBES = 4, MU_RESIDUAL_DEFAULT_POWER_STEPS = 3 };

typedef struct mu_residual_opts {
    int probes;      /* k >= 1 */
    int power_steps; /* >= 1; 1 means the plain probe estimate */
    uint64_t seed;
} mu_residual_opts_t;

void mu_residual_opts_default(mu_residual_opts_t *opts);
/* *estimate ~ ||Q Q^T - I||_2 (short side); NaN or Inf in Q gives MU_ERR_NUMERIC. */
mu_status_t mu_residual_estimate(mu_backend_t *be, const mu_mat_t *q,
                                 const mu_residual_opts_t *opts, double *estimate);

/*
 * Two numbers from the same probes (a diagnostic of orthogonality, printed by muond orth
 * --residual; the step's certificate is kernels/certificate.h, which judges the descent
 * instead, since the target of a rank-deficient G is a partial isometry, not an orthogonal Q):
 *   rms      ~ ||Q Q^T - I||_F / sqrt(s): the root mean square of s_i^2 - 1 over the short
 *              side, from the first (plain) probes, where E[||E v||^2] / E[||v||^2] is exactly
 *              that mean for Gaussian v;
 *   spectral ~ ||Q Q^T - I||_2, refined by the power steps (as mu_residual_estimate).
 */
typedef struct mu_residual {
    double rms, spectral;
} mu_residual_t;

/* Non-finite Q: MU_ERR_NUMERIC, as mu_residual_estimate. */
mu_status_t mu_residual_measure(mu_backend_t *be, const mu_mat_t *q,
                                const mu_residual_opts_t *opts, mu_residual_t *out);

#endif
