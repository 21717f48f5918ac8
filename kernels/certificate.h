/*
 * The certificate of one fast orthogonalization (DESIGN.md, step 4; the derivation is in
 * docs/numerics.md, "The certificate"). The update must be a steepest-descent step for G
 * under the spectral norm: the best Q with ||Q||_2 <= 1 achieves <Q, G> = ||G||_*, and the
 * canonical one is U_r V_r^T, of G's rank. The certificate judges exactly that, from a few
 * seeded probe blocks, without an SVD:
 *
 *   finite       Q has no NaN or Inf;
 *   overshoot    ||Q||_2 <= 1 + band: Lanczos on Q^T Q (its largest Ritz value is a lower
 *                bound of ||Q||_2^2, and finds a few overshooting directions that plain power
 *                steps miss);
 *   aligned      Q^T G is symmetric positive semidefinite, as it must be for Q = U f(S) V^T,
 *                checked on the probes' k x k compression V^T Q^T G V: a Q computed from the
 *                wrong G, or a corrupted one, is neither;
 *   descent      <Q, G> / ||G||_* >= 1 - eps, through the larger of two lower bounds, both
 *                valid for Q = U f(S) V^T with f >= 0 (every polynomial method): a residual
 *                bound, the lost descent sum s_i (1 - f_i)_+ <= sqrt(min(m, n)) ||R||_F with
 *                R = G - Q Q^T G (||R||_F^2 from Hutchinson probes, taken twice over), tight
 *                for narrow-band schedules; and a schedule bound from the least f the schedule
 *                gives above a threshold and the count below it, tight for wide bands and
 *                small matrices, used only where the probes' sigma^2-weighted f agrees with
 *                the schedule's promise. <Q, G> itself is exact (one dot product).
 *
 * Cost: one pass over G, 2 + 2 * lanczos_steps GEMM passes over Q with few columns and one
 * dot product, against 6 T m n s flops for Polar Express (docs/numerics.md, "The certificate").
 */
#ifndef MU_KERNELS_CERTIFICATE_H
#define MU_KERNELS_CERTIFICATE_H

#include <stdint.h>

#include "kernels/ops.h"
#include "kernels/schedule.h"

enum {
    MU_CERT_DEFAULT_PROBES = 8,
    MU_CERT_DEFAULT_LANCZOS_PROBES = 2,
    MU_CERT_DEFAULT_LANCZOS_STEPS = 6,
};

typedef struct mu_cert_opts {
    int probes;         /* k in [1, 64]: the descent and alignment block */
    int lanczos_probes; /* in [1, k]: the first columns start the Lanczos recurrences */
    int lanczos_steps;  /* in [1, MU_SCHEDULE_MAX_ITERS] */
    uint64_t seed;
} mu_cert_opts_t;

void mu_cert_opts_default(mu_cert_opts_t *opts);

/* What the certificate measured. */
typedef struct mu_cert {
    double inner;          /* <Q, G>, exact */
    double deficit_bound;  /* sqrt(2 s ||R||_F^2): the residual bound's lost descent */
    double residual_bound; /* <Q, G> / (<Q, G> + deficit_bound) */
    double schedule_bound; /* from the schedule's band and s l ||G||_F (0: no schedule) */
    double descent_bound;  /* the larger: <= <Q, G> / ||G||_*; 0 when <Q, G> <= 0 */
    double reach;          /* sqrt of the sigma^2-weighted mean of f^2 (probes) */
    double q_norm;         /* Lanczos estimate of ||Q||_2, never above it */
    double asymmetry;      /* ||K||_F / ||S||_F for the probe compression M = S + K */
    double negativity;     /* max(0, -lambda_min(S)) / max |lambda(S)| */
} mu_cert_t;

enum { MU_CERT_FLOORS = 48 };

/* The pass limits. */
typedef struct mu_cert_limits {
    double overshoot;  /* band: ||Q||_2 <= 1 + band */
    double descent;    /* 1 - eps: the descent bound must reach it */
    double asymmetry;  /* at most */
    double negativity; /* at most */
    /* The schedule's model, for the descent bound: for each of `floors` thresholds t_j
     * (relative to ||G||_F), the least f the schedule gives a singular value sigma >=
     * t_j ||G||_F, round-off d taken off (0 floors: no schedule, no bound from it). */
    int floors;
    double threshold[MU_CERT_FLOORS], floor[MU_CERT_FLOORS];
} mu_cert_limits_t;

/* The share of the optimal descent a certified update may lose to the directions the
 * schedule does not promise to reach (below l): at most a tenth, a tenth shorter step in
 * first-order progress. A genuinely wrong result (zero, misaligned, stopped early) loses far
 * more. */
#define MU_CERT_UNREACHED_DESCENT 0.10
/* The least overshoot band: a step at most 5% longer than the scale rule promises, in
 * whatever directions. A schedule that overshoots by design (few steps) gets its own bound. */
#define MU_CERT_MIN_OVERSHOOT 0.05

/*
 * The limits for a schedule's results (NULL: an exact method) on inputs normalized by
 * ||G||_F * scale. With E the schedule's error bound on [lower, 1] and d = u * f'(0) its
 * round-off amplification (kernels/schedule.h):
 *   overshoot = max(F - 1 + d, MU_CERT_MIN_OVERSHOOT), F the largest value the schedule
 *               takes on [0, 1] (its overshoot by design),
 *   descent   = 1 - min(E + MU_CERT_UNREACHED_DESCENT, 1/2),
 * and the alignment limits 1/4 (both), which fp32 and bf16 round-off stay far below and a
 * wrong Q far above (its compression is a random matrix: asymmetry and negativity near 1).
 */
void mu_cert_limits_for(const mu_schedule_t *schedule, double lower, double scale, mu_dtype_t dtype,
                        mu_cert_limits_t *out);

typedef enum mu_cert_verdict {
    MU_CERT_PASS = 0,
    MU_CERT_NONFINITE,
    MU_CERT_OVERSHOOT,
    MU_CERT_DESCENT,
    MU_CERT_MISALIGNED,
} mu_cert_verdict_t;

/* "pass", "non-finite", "overshoot", "descent", "misaligned". */
const char *mu_cert_verdict_name(mu_cert_verdict_t verdict);

/* Measures Q against G (same shape, one backend; bf16 operands, and a G whose norm fp32
 * products cannot carry, are judged through fp64 copies), with g_norm = ||G||_F where the
 * caller has it (the fast path's report; 0: measured here), the schedule model of limits
 * (NULL: the residual bound alone) and opts (NULL: the defaults). Q or G with NaN or Inf:
 * MU_ERR_NUMERIC. G = 0 gives descent bound 1. */
mu_status_t mu_cert_measure(mu_backend_t *be, const mu_mat_t *g, const mu_mat_t *q, double g_norm,
                            const mu_cert_limits_t *limits, const mu_cert_opts_t *opts,
                            mu_cert_t *out);

/* The first test that fails, in the order overshoot, alignment, descent; *value and *limit
 * (either may be NULL) receive its number and limit (for a pass: the descent's). */
mu_cert_verdict_t mu_cert_judge(const mu_cert_t *cert, const mu_cert_limits_t *limits,
                                double *value, double *limit);

#endif
