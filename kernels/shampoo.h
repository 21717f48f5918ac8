/*
 * Shampoo (Gupta, Koren and Singer 2018) for one m x n matrix, on the ops table: its owner
 * keeps the Kronecker statistics
 *     L = beta L + (1 - beta) G G^T   (m x m),    R = beta R + (1 - beta) G^T G   (n x n)
 * (beta = 1: the plain sums L = sum G G^T, R = sum G^T G) and updates with
 *     Q = c L_root G R_root,   L_root ~ A_L^(-1/4),  R_root ~ A_R^(-1/4),
 *     A = S / (1 - beta^t) + epsilon ||S / (1 - beta^t)||_F I      (S = L or R, step t)
 * the roots computed by Inverse Root Express (kernels/inv_root_express.h) at steps 1,
 * 1 + interval, 1 + 2 interval, ... and kept in between.
 *
 * with c such that ||Q||_F = sqrt(min(m, n)), the Frobenius norm of a full-rank polar factor.
 *
 * Why these choices:
 *  - the grafting c: Shampoo's own step length follows the statistics, which lag the
 *    gradient by 1 / (1 - beta) steps and their roots by up to `interval` more, so a gradient
 *    that grows faster than its history makes a step that grows with it. Without c, the
 *    digits CNN diverged at the matrix learning rate Muon uses (0.02, NaN by step 300; only
 *    0.01 trained). With c, Shampoo chooses the direction and Muon's rule the length, so the
 *    layout's learning rate and scale rule mean what they mean for polar-express.
 *  - G is what the owner receives, the momentum U (Muon's input): with beta = 0 and fresh
 *    roots, L^(-1/4) U R^(-1/4) = U (U^T U)^(-1/2) = the polar factor of U, Muon's update, so
 *    the layout's scale rule and learning rate carry over; beta > 0 adds Shampoo's memory.
 *  - epsilon is relative to ||A||_F >= lambda_max: lambda_min(A) >= epsilon ||.||_F, so
 *    kappa(A) <= (1 + epsilon) / epsilon whatever the gradients' scale, and that bound is the
 *    lambda_min Inverse Root Express needs (epsilon = 1e-4: kappa <= 1e4).
 *  - the roots are certified: ||X^2 A X^2 - I||_2 (mu_ire_certify, which says why the
 *    sandwich) against MU_SHAMPOO_ROOT_LIMIT. A failed root is the owner's to report; the
 *    caller then solves it exactly (the ScaLAPACK pdsyevd root, fallback/) into
 *    mu_shampoo_root and applies as usual.
 *
 * Everything a step does is deterministic: the same statistics and G give the same bits,
 * whichever rank owns the matrix.
 */
#ifndef MU_KERNELS_SHAMPOO_H
#define MU_KERNELS_SHAMPOO_H

#include <stdbool.h>

#include "kernels/inv_root_express.h"
#include "kernels/ops.h"

typedef struct mu_shampoo_opts {
    double beta;    /* [0, 1]; 1: sums */
    double epsilon; /* relative, (0, 1] */
    int interval;   /* steps between root computations, >= 1 */
} mu_shampoo_opts_t;

/* The defaults a layout that does not say uses: see shard/layout.h. */
#define MU_SHAMPOO_DEFAULT_BETA    0.95
#define MU_SHAMPOO_DEFAULT_EPSILON 1e-4
enum { MU_SHAMPOO_DEFAULT_INTERVAL = 10 };
/* The schedule's bound each root is computed to: ||S_T - I||_2 <= 1e-3 in exact arithmetic,
 * a root within 2.5e-4 of A^(-1/4), well under the fp32 floor at kappa = 1e4. */
#define MU_SHAMPOO_ROOT_TOL 1e-3
/* The certificate's limit on ||X^2 A X^2 - I||_2 (kernels/inv_root_express.h): the fp32
 * roots measure up to 1.5e-3 (n = 256, rank-10 statistics, kappa = 1e4; 5e-4 at n = 20-48
 * and 6e-4 at n = 512 and 1024), so 1e-2 leaves a factor 6 against false alarms, and still
 * fails a root 1% too large (4e-2) by a factor 4. */
#define MU_SHAMPOO_ROOT_LIMIT 1e-2

typedef enum mu_shampoo_side { MU_SHAMPOO_LEFT = 0, MU_SHAMPOO_RIGHT = 1 } mu_shampoo_side_t;

typedef struct mu_shampoo {
    mu_backend_t *be;
    int64_t rows, cols;
    mu_shampoo_opts_t opts;
    mu_mat_t stat[2]; /* L (rows x rows), R (cols x cols), fp32, symmetric */
    mu_mat_t root[2]; /* L_root, R_root */
    mu_mat_t tmp;     /* rows x cols: L_root G */
    /* Fault injection (--inject bad-root): fresh roots are multiplied by this before their
     * certificate; 0: not armed. The caller arms it for one step. */
    double inject_root_scale;
} mu_shampoo_t;

/* What one side's root computation did. */
typedef struct mu_shampoo_side_report {
    bool zero; /* the statistic is zero (no gradient yet): no root, a zero update */
    mu_ire_report_t ire;
    mu_ire_cert_t cert;
} mu_shampoo_side_report_t;

typedef struct mu_shampoo_report {
    bool refreshed; /* roots computed this step */
    bool pass;      /* both roots certified (true when not refreshed) */
    bool zero;      /* the update is zero: a statistic (or G) is zero */
    mu_shampoo_side_report_t side[2];
} mu_shampoo_report_t;

void mu_shampoo_opts_default(mu_shampoo_opts_t *opts);

/* Zeroed statistics and roots for a rows x cols matrix on be (fp32). */
mu_status_t mu_shampoo_create(mu_backend_t *be, int64_t rows, int64_t cols,
                              const mu_shampoo_opts_t *opts, mu_shampoo_t **out);
void mu_shampoo_destroy(mu_shampoo_t **s);

/* Bytes the state holds: two statistics, two roots, one rows x cols product, fp32. */
int64_t mu_shampoo_state_bytes(int64_t rows, int64_t cols);
/* FLOPs of one step, the root computations amortized over the interval: the statistics'
 * products, the two applying GEMMs, and ~25 n^3 GEMMs per root (kernels/inv_root_express.h
 * at kappa = 1e4) every interval steps. For the owners' balance (shard/plan.c). */
double mu_shampoo_flops(int64_t rows, int64_t cols, int interval);

/* The root certificate's limit (MU_SHAMPOO_ROOT_LIMIT). */
double mu_shampoo_root_limit(void);

/* One step's fast part at step t (1-based): accumulates G into the statistics, computes and
 * certifies the roots when due (steps 1, 1 + interval, ..., or while a root is still zero),
 * and, unless a refreshed root failed its certificate, q = c L_root g R_root. On a failed
 * certificate q is left alone: the caller solves the failed roots exactly
 * (mu_shampoo_regularized, mu_shampoo_root) and then calls mu_shampoo_apply. */
mu_status_t mu_shampoo_step(mu_shampoo_t *s, const mu_mat_t *g, long t, mu_mat_t *q,
                            mu_shampoo_report_t *rep);

/* q = c L_root g R_root (c: the grafting above). */
mu_status_t mu_shampoo_apply(mu_shampoo_t *s, const mu_mat_t *g, mu_mat_t *q);

/* A of one side at step t into a (side x side, fp32), and its lambda_min bound; *zero when
 * the statistic is zero (a is then left alone). */
mu_status_t mu_shampoo_regularized(mu_shampoo_t *s, mu_shampoo_side_t side, long t, mu_mat_t *a,
                                   double *lambda_min, bool *zero);

/* The statistic and root of one side, for checkpoints and the exact fallback. */
mu_mat_t *mu_shampoo_statistic(mu_shampoo_t *s, mu_shampoo_side_t side);
mu_mat_t *mu_shampoo_root(mu_shampoo_t *s, mu_shampoo_side_t side);

#endif
