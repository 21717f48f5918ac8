/*
 * Adaptive Polar Express schedules: for each matrix, the schedule (l, T) with the fewest steps
 * whose result is predicted to reach G's directions as far as the fixed schedule's does,
 * instead of one (l, T) for every matrix.
 *
 * What is matched: the mean, over G's directions, of f(sigma) / F, where f is the
 * schedule's scalar map (Q = U f(Sigma) V^T), F its largest value on [0, 1] (a step of
 * spectral norm F would be scaled back to 1), and the directions are counted, not weighted
 * by sigma. The polar factor reaches every direction by exactly 1; msign keeps the
 * directions and drops the scales. Matching the descent per unit step instead,
 * sum sigma f / (F sum sigma), lets a schedule give up every direction below a few 1e-3
 * of ||G||_F for a 0.3% loss of descent: on the main job (digits CNN, 4 seeds) that trained
 * to a mean test loss of 0.397 against the fixed schedule's 0.267, about as badly as T = 5;
 * matching directions, 0.297 (docs/numerics.md, "Adaptive schedules").
 *
 * Where the directions lie comes from stochastic Lanczos quadrature: k Lanczos recurrences
 * on the Gram matrix A = X X^T (the short side; kernels/lanczos.h), each a Gauss quadrature
 * of A's spectral measure seen from a random-sign start, X = G / scale the iteration's
 * input. Both methods form A before their first step anyway (SYRK), so the sample costs
 * k-column products with an s x s matrix, not passes over G. For a candidate f,
 *     predicted(f) = sum_i w_i f(x_i) / (max(F, 1) sum_i w_i),   x_i = sqrt(node_i).
 * The fixed schedule's prediction on the same nodes is the reference, so the quadrature's
 * bias (its few nodes cannot resolve a tail of tiny singular values, which then sits in one
 * node) falls on both sides alike.
 *
 * The candidates are every l of a fixed grid with every T in [2, the fixed T]; the schedules
 * are computed once, when the menu is made (with the orthogonalization plan, which the step
 * caches per shape).
 */
#ifndef MU_KERNELS_ADAPTIVE_H
#define MU_KERNELS_ADAPTIVE_H

#include <stdint.h>

#include "kernels/ops.h"
#include "kernels/schedule.h"

typedef enum mu_schedule_mode { MU_SCHEDULE_FIXED = 0, MU_SCHEDULE_ADAPTIVE } mu_schedule_mode_t;

const char *mu_schedule_mode_name(mu_schedule_mode_t mode);
mu_status_t mu_schedule_mode_parse(const char *name, mu_schedule_mode_t *out);

/* Defaults: 4 recurrences of 12 steps (on the recorded momenta, 8 steps chose schedules up to
 * 1.8% short of the fixed schedule's descent per unit step, 12 at most 1%); a tolerance of
 * 0.5% of the predicted reach. */
#define MU_ADAPTIVE_DEFAULT_TOLERANCE 0.005
enum {
    MU_ADAPTIVE_PROBES = 4,
    MU_ADAPTIVE_STEPS = 12,
    MU_ADAPTIVE_MIN_ITERS = 2,
    MU_ADAPTIVE_LOWERS = 8,
    MU_ADAPTIVE_NODES = MU_ADAPTIVE_PROBES * MU_ADAPTIVE_STEPS,
};

/* Matrices whose polynomial step costs fewer FLOPs than this keep the fixed schedule: there
 * the sample's fixed cost (about 50 us on the CPU backend, from 16 x 9 to 128 x 128: its
 * allocations, host arithmetic and LAPACK calls) exceeds what the steps it saves give back;
 * measured with muond bench schedules, where the digits CNN's conv layers took 1.4-3.7x the
 * fixed schedule's time when they adapted. */
#define MU_ADAPTIVE_MIN_STEP_FLOPS 1048576.0

typedef struct mu_adaptive_choice {
    double lower;
    int iters;
    double peak; /* F: the schedule's largest value on [0, 1] (below 1 for some short ones) */
    mu_schedule_t schedule;
} mu_adaptive_choice_t;

typedef struct mu_adaptive_menu {
    int count;
    int reference; /* the fixed schedule's index */
    mu_adaptive_choice_t *choice;
} mu_adaptive_menu_t;

/* The candidates for a plan whose fixed schedule is Polar Express (lower, iters, cushion,
 * safety); the fixed schedule is one of them. */
mu_status_t mu_adaptive_menu_create(double lower, int iters, double cushion, double safety,
                                    mu_adaptive_menu_t *out);
void mu_adaptive_menu_free(mu_adaptive_menu_t *menu);

/* The quadrature of X X^T's spectral measure, as normalized singular values and weights
 * (the weights of each recurrence sum to 1). */
typedef struct mu_spectrum_sample {
    int count;
    double sigma[MU_ADAPTIVE_NODES], weight[MU_ADAPTIVE_NODES];
} mu_spectrum_sample_t;

/* Samples X's spectrum from its Gram matrix a = X X^T (s x s, symmetric): one GEMM of k
 * columns per Lanczos step on the backend, seeded (the same sample on every backend and
 * run). */
mu_status_t mu_adaptive_sample(mu_backend_t *be, const mu_mat_t *a, uint64_t seed,
                               mu_spectrum_sample_t *out);

/* predicted(f) of the header comment for one candidate: its mean reach per direction. */
double mu_adaptive_predict(const mu_adaptive_choice_t *c, const mu_spectrum_sample_t *sample);

/* The fewest-steps candidate whose prediction is at least the reference's less tolerance
 * (among those with the fewest steps, the best predicted); the reference itself at the fixed
 * T. *predicted and *reference (may be NULL) receive both predictions. */
int mu_adaptive_choose(const mu_adaptive_menu_t *menu, const mu_spectrum_sample_t *sample,
                       double tolerance, double *predicted, double *reference);

#endif
