/*
 * Private to shard/: how the optimizer's state is divided, and who owns each part.
 *
 *  - mu_shard_env_t, the configuration: layout, comm, backend, shard plan and this rank's
 *    place, fixed at creation, read by every part and written by none (optimizer.c builds it).
 *  - the parameter store (shard/store.h): every parameter's W and G in the io region, its
 *    momentum or AdamW moments, its hyper-parameters. The phases of the step read and update
 *    it; checkpoints save and restore it.
 *  - the exchange (shard/exchange.h; exchange.c and transit.c): the waves' all-to-all
 *    schedules, the two buffer sets, the owners' full G and Q, the checksums, and the one
 *    segment order that packing and hashing share.
 *  - the certifier (shard/certifier.h; verify.c, and recheck.c beside it): each matrix's
 *    verdict, the agreed verdict table, the ScaLAPACK fallback handle.
 *  - the plan cache (shard/plan_cache.h): one orthogonalization plan per shape and method.
 *  - the step context (below; step.c resets it): what one step learns as it goes, the
 *    parameters it skips, the non-finite counts and the stats. It is passed to every phase;
 *    nothing of it outlives the step.
 * struct mu_optimizer holds the configuration and a handle to each part, nothing else.
 */
#ifndef MU_SHARD_OPTIMIZER_IMPL_H
#define MU_SHARD_OPTIMIZER_IMPL_H

#include "shard/optimizer.h"

typedef struct mu_shard_env {
    const mu_layout_t *layout;
    mu_comm_t *comm;
    mu_backend_t *be;
    const mu_shard_plan_t *plan;
    int rank, ranks;
} mu_shard_env_t;

static inline bool mu_env_sharded(const mu_shard_env_t *env)
{
    return env->layout->settings.grad_mode == MU_GRAD_SHARDED;
}

/* What one step carries from phase to phase. */
typedef struct mu_step_ctx {
    long step;              /* the step being taken (steps done + 1) */
    mu_step_stats_t *stats; /* the caller's, zeroed at the start */
    bool *skip;             /* per parameter: no update this step (NaN/Inf, failed fallback,
                               failed recheck, failed fast path in local mode) */
    int64_t *nonfinite;     /* per parameter: NaN/Inf gradient entries, summed over ranks */
    int *first_bad_rank;    /* per parameter: the lowest rank that saw them */
    int64_t *scratch_i64;   /* per parameter, for collectives */
    mu_mat_t owner_q;       /* local mode: every owned matrix's full Q, in plan order */
} mu_step_ctx_t;

typedef struct mu_param_store mu_param_store_t;
typedef struct mu_exchange mu_exchange_t;
typedef struct mu_certifier mu_certifier_t;
typedef struct mu_plan_cache mu_plan_cache_t;

struct mu_optimizer {
    mu_shard_env_t env;
    mu_shard_plan_t *plan; /* env.plan: built at creation from the layout, freed at destroy */
    long steps_done;       /* its own progress: what checkpoints record and steps advance */
    long check_every;      /* silent-data-corruption recheck cadence; 0: off */
    mu_param_store_t *store;
    mu_exchange_t *exchange; /* sharded mode only */
    mu_certifier_t *certifier;
    mu_plan_cache_t *plans;
    mu_step_ctx_t *ctx;
};

/* shard/step.c */
mu_status_t mu_step_ctx_create(const mu_shard_env_t *env, mu_step_ctx_t **out);
void mu_step_ctx_destroy(const mu_shard_env_t *env, mu_step_ctx_t **ctx);
/* The finite check, then the step of the layout's gradient mode. */
mu_status_t mu_step_run(mu_optimizer_t *opt, mu_step_ctx_t *ctx);
/* Appends an event to the step's list (every rank the same). */
void mu_step_record(mu_step_ctx_t *ctx, const mu_step_event_t *event);

#endif
