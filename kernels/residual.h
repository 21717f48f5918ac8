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
#include "kernels/schedule.h"

enum { MU_RESIDUAL_DEFAULT_PROBES = 4, MU_RESIDUAL_DEFAULT_POWER_STEPS = 3 };

typedef struct mu_residual_opts {
    int probes;      /* k >= 1 */
    int power_steps; /* >= 1; 1 means the plain probe estimate */
    uint64_t seed;
} mu_residual_opts_t;

void mu_residual_opts_default(mu_residual_opts_t *opts);
/* The certificate's options: the default probes and no power steps, since the pass test reads
 * only the plain probes' RMS (the spectral value is then the plain-probe maximum). A third
 * of the default cost. */
void mu_residual_opts_certificate(mu_residual_opts_t *opts);

/* *estimate ~ ||Q Q^T - I||_2 (short side); NaN or Inf in Q gives MU_ERR_NUMERIC. */
mu_status_t mu_residual_estimate(mu_backend_t *be, const mu_mat_t *q,
                                 const mu_residual_opts_t *opts, double *estimate);

/*
 * The certificate the optimizer checks after every fast orthogonalization. Two numbers from
 * the same probes:
 *   rms      ~ ||Q Q^T - I||_F / sqrt(s): the root mean square of s_i^2 - 1 over the short
 *              side, from the first (plain) probes, where E[||E v||^2] / E[||v||^2] is exactly
 *              that mean for Gaussian v;
 *   spectral ~ ||Q Q^T - I||_2, refined by the power steps (as mu_residual_estimate).
 * The pass test is on rms (see mu_residual_tol): Polar Express promises nothing for singular
 * values below l ||G||_F, and a square random matrix always has a few, which the spectral
 * norm sees at full weight (about 0.9 for a 768 x 768 Gaussian G) while they are a small share
 * of the update. The spectral value is reported alongside, for the step report.
 */
typedef struct mu_residual {
    double rms, spectral;
} mu_residual_t;

/* Non-finite Q: MU_ERR_NUMERIC, as mu_residual_estimate. */
mu_status_t mu_residual_measure(mu_backend_t *be, const mu_mat_t *q,
                                const mu_residual_opts_t *opts, mu_residual_t *out);

/* The share of short-side directions the pass threshold allows to stay unreached (s_i ~ 0):
 * their defect s_i^2 - 1 ~ -1 adds this much to the mean square. With 1/16 a Muon update keeps
 * at least ~94% of its intended Frobenius energy, and a 768 x 768 Gaussian G (about 1.5% of
 * its singular values below l = 1e-3) passes, while kappa = 1e8, a rank-deficient G or one
 * huge row (most directions below l) fail. */
#define MU_RESIDUAL_UNREACHED_SHARE (1.0 / 16.0)

/*
 * The pass threshold on rms for a schedule, from its own error bound: singular values in
 * [lower, 1] land in [1 - E, 1 + E] with E = mu_schedule_error_bound(lower, 1), plus the
 * round-off of the dtype amplified by the iteration, d = u * f'(0) (mu_schedule_slope_at_zero);
 * so each promised direction has |s^2 - 1| <= band = (1 + E + d)^2 - 1, and
 *   tol = sqrt(band^2 + MU_RESIDUAL_UNREACHED_SHARE).
 * A NULL schedule (the exact SVD method) has band = 0. Default Polar Express (l = 1e-3, T = 8,
 * fp32): about 0.25; T = 5: about 0.4; NS5, whose error bound on [1e-3, 1] is loose, certifies
 * little beyond finiteness.
 */
double mu_residual_tol(const mu_schedule_t *schedule, double lower, mu_dtype_t dtype);

#endif
