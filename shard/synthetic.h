/*
 * Synthetic trainer data for `muond run --trainer synthetic`, benchmarks and tests. Every
 * value is a pure function of (seed, parameter, step, rank, global row, column) through the
 * counter RNG, so any sharding of the same model produces the same numbers.
 *
 *  - Gradients: uniform with zero mean and variance 1/cols (i.e. unit-variance entries scaled
 *    by 1/sqrt(cols), which keeps matrices of different widths comparable). Uniform rather than
 *    normal: one hash per element keeps generation far below the step's cost.
 *  - Initial weights: uniform with standard deviation 0.02 (GPT-2's initialization scale).
 */
#ifndef MU_SHARD_SYNTHETIC_H
#define MU_SHARD_SYNTHETIC_H

#include <stdint.h>

#include "shard/optimizer.h"

/* Rows [row_begin, row_begin + rows) of parameter `param`'s gradient at `step` into out
 * (row-major, ld floats per row). rank < 0 gives the rank-independent gradient of sharded
 * mode; rank >= 0 gives that trainer's own local gradient (local mode). */
void mu_synthetic_gradient(uint64_t seed, int param, long step, int rank, int64_t row_begin,
                           int64_t rows, int64_t cols, float *out, int64_t ld);

/* The same rows of an injected rank-one gradient (for fallback tests): a b^T with a fixed per
 * parameter and b per step, so that momentum stays rank one too. */
void mu_synthetic_rank_one(uint64_t seed, int param, long step, int rank, int64_t row_begin,
                           int64_t rows, int64_t cols, float *out, int64_t ld);

void mu_synthetic_weights(uint64_t seed, int param, int64_t row_begin, int64_t rows, int64_t cols,
                          float *out, int64_t ld);

/* The synthetic trainer of `muond run --trainer synthetic` and of `muond bench step`: every
 * rank writes its rows of the initial weights (once, before the first step) and of the next
 * step's gradients (before each step) into opt's io region, through a host view. */
mu_status_t mu_synthetic_init_weights(mu_optimizer_t *opt, uint64_t seed);
mu_status_t mu_synthetic_fill_gradients(mu_optimizer_t *opt, uint64_t seed);

#endif
