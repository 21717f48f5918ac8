/*
 * The shard plan: who holds which rows, who owns which matrix, and in which wave each matrix
 * travels. Every rank builds the same plan from the same layout and rank count, with no
 * communication (DESIGN.md "Roles").
 *
 *  - Row shards: rank r of P holds rows [floor(r m / P), floor((r+1) m / P)) of an m x n
 *    parameter; some ranks may hold none.
 *  - Owners: longest-processing-time-first over the matrices' FLOP cost (kernels/orth.h's cost
 *    model with the layout's step count): the costliest matrix goes to the least-loaded rank,
 *    ties broken by parameter index and then by rank.
 *  - Waves: matrices in LPT order are cut into waves so that no owner holds more than the
 *    layout's wave budget of full matrices (G and Q in fp32) at once. Within a wave each
 *    owner's matrices are ordered by shape, so same-shape matrices run back to back on one
 *    cached kernel plan.
 */
#ifndef MU_SHARD_PLAN_H
#define MU_SHARD_PLAN_H

#include <stdint.h>
#include <stdio.h>

#include "shard/layout.h"

typedef struct mu_plan_entry {
    int param; /* index into the layout's parameters */
    int owner;
    double flops;
    int64_t owner_bytes; /* G and Q in fp32 on the owner */
} mu_plan_entry_t;

typedef struct mu_shard_plan {
    int ranks;
    int entry_count;          /* matrix parameters */
    mu_plan_entry_t *entries; /* grouped by wave; in a wave, by owner, shape, parameter */
    int wave_count;
    int *wave_begin;    /* wave w is entries[wave_begin[w] .. wave_begin[w+1]) */
    int *owner_of;      /* per parameter: its owner, or -1 for adamw parameters */
    double *rank_flops; /* per rank: the FLOPs it owns */
    int64_t *rank_owner_bytes;
    int *rank_matrices;
} mu_shard_plan_t;

mu_status_t mu_shard_plan_build(const mu_layout_t *layout, int ranks, mu_shard_plan_t **out);
void mu_shard_plan_destroy(mu_shard_plan_t **plan);

/* max over ranks / mean over ranks of owned FLOPs (1 = perfect; 0 when nothing to own). */
double mu_shard_plan_imbalance(const mu_shard_plan_t *plan);

/* The most matrices any wave holds (at least 1): what per-wave tables are sized for. */
int mu_shard_plan_largest_wave(const mu_shard_plan_t *plan);

/* The row shard rule. */
void mu_shard_rows(int64_t rows, int ranks, int rank, int64_t *begin, int64_t *end);

#endif
