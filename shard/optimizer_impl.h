/* Private to shard/: the optimizer's state and the pieces of its step. */
#ifndef MU_SHARD_OPTIMIZER_IMPL_H
#define MU_SHARD_OPTIMIZER_IMPL_H

#include "shard/optimizer.h"

typedef struct param_state {
    int64_t row_begin, row_end; /* rows held here */
    mu_mat_t w, g;              /* views into the io region */
    mu_mat_t m;                 /* momentum: the shard (sharded), the full matrix on its owner
                                   (local), nothing for adamw parameters */
    mu_mat_t m1, m2;            /* AdamW moments, same rows as w */
    mu_hyper_t hyper;           /* what the next step applies (layout, or set by trainers) */
} param_state_t;

/* One all-to-all of a wave: byte counts and displacements per peer rank. */
typedef struct alltoall_counts {
    int64_t *send_counts, *send_displs, *recv_counts, *recv_displs;
    int64_t send_total, recv_total;
} alltoall_counts_t;

typedef struct wave_schedule {
    alltoall_counts_t gather;  /* shards of U to the owners */
    alltoall_counts_t scatter; /* rows of O back to the shard holders */
    int64_t full_elements;     /* fp32 elements of G and Q this rank holds as an owner */
} wave_schedule_t;

typedef struct cached_plan {
    int64_t rows, cols;
    mu_orth_method_t method;
    mu_orth_plan_t *plan;
} cached_plan_t;

/* The owner's verdict on one matrix of the step, and where its full G and Q are. */
typedef struct entry_check {
    int verdict; /* 0: certified; else a mu_step_event_kind_t fallback reason */
    double residual, tol;
    mu_mat_t g, q; /* owner only */
} entry_check_t;

/* Exchange buffers come in two sets: wave k+1's gather is in flight while wave k computes. */
enum { EXCHANGE_SETS = 2 };

typedef struct exchange_set {
    mu_mat_t gather_send, gather_recv, scatter_send, scatter_recv; /* 1 x n, exchange dtype */
    mu_comm_request_t *gather_req, *scatter_req;
} exchange_set_t;

/* Checksums of one wave's all-to-all (shard/transit.c), sized once for the largest wave. */
typedef struct transit_hashes {
    uint64_t *sent, *expected, *got; /* [peer * n + k], n = the wave's matrices */
    int64_t *counts, *displs;        /* bytes per peer for the hash all-to-all */
    int64_t *cursor;                 /* per peer, while walking a buffer's segments */
} transit_hashes_t;

struct mu_optimizer {
    const mu_layout_t *layout;
    mu_comm_t *comm;
    mu_backend_t *be;
    mu_shard_plan_t *plan;
    int rank, ranks;
    long steps_done;
    param_state_t *params;
    void *io_region;
    size_t io_bytes;
    mu_io_provider_t io; /* how io_region was obtained, to give it back */
    wave_schedule_t *waves;
    exchange_set_t sets[EXCHANGE_SETS];
    mu_mat_t full; /* fp32 arena for one wave's full G and Q (sharded) or one matrix (local) */
    cached_plan_t *plans;
    int plan_count, plan_capacity;
    int64_t *nonfinite;      /* per parameter, for the agreed finite check */
    int *first_bad_rank;     /* per parameter, the lowest rank with NaN/Inf in its gradient */
    int64_t *scratch_i64;    /* per parameter, for collectives */
    bool *skip;              /* per parameter, this step: no update (NaN/Inf, failed fallback) */
    entry_check_t *checks;   /* per plan entry, this step */
    mu_fallback_t *fallback; /* created on first use */
    bool force_fallback;
    long check_every;    /* silent-data-corruption recheck cadence; 0: off */
    bool verify_transit; /* checksums on every exchanged wave (shard/transit.c) */
    transit_hashes_t hashes;
};

static inline bool mu_opt_sharded(const mu_optimizer_t *opt)
{
    return opt->layout->settings.grad_mode == MU_GRAD_SHARDED;
}

/* shard/exchange.c */
/* The number of rows of param that rank holds (the row shard rule); *begin, when not NULL,
 * receives the first. */
int64_t mu_exchange_rows(const mu_optimizer_t *opt, int param, int rank, int64_t *begin);
mu_status_t mu_exchange_build(mu_optimizer_t *opt);
void mu_exchange_free(mu_optimizer_t *opt);
mu_status_t mu_exchange_post_gather(mu_optimizer_t *opt, int wave);
mu_status_t mu_exchange_wait_gather(mu_optimizer_t *opt, int wave);
mu_status_t mu_exchange_post_scatter(mu_optimizer_t *opt, int wave);
mu_status_t mu_exchange_wait_scatter(mu_optimizer_t *opt, int wave);
void mu_exchange_progress(mu_optimizer_t *opt);
/* Views of an owned matrix's full G and Q in the arena (entry index within the wave's list). */
void mu_exchange_full_views(mu_optimizer_t *opt, int wave, int entry, mu_mat_t *g, mu_mat_t *q);

/* shard/step.c */
mu_status_t mu_step_sharded(mu_optimizer_t *opt, mu_step_stats_t *stats);
mu_status_t mu_step_local(mu_optimizer_t *opt, mu_step_stats_t *stats);
mu_status_t mu_step_orthogonalize(mu_optimizer_t *opt, int entry, const mu_mat_t *g, mu_mat_t *q,
                                  bool *zero);
mu_status_t mu_step_finite_check(mu_optimizer_t *opt, mu_step_stats_t *stats);

/* shard/transit.c */
/* Collective, after a wave's gather (or scatter) arrived: checks every segment's checksum,
 * resends the wave once on a mismatch, and fails naming sender, receiver, parameter and
 * step if it arrives corrupted again. */
mu_status_t mu_transit_verify(mu_optimizer_t *opt, int wave, bool gather);
/* The checksum tables, sized for the largest wave (by mu_exchange_build and _free). */
mu_status_t mu_transit_alloc(mu_optimizer_t *opt);
void mu_transit_free(mu_optimizer_t *opt);

/* shard/recheck.c */
/* Sharded, after wave's verdicts: when this step is due, recomputes the sampled matrix of
 * the wave on another rank; a mismatch marks it skipped and is returned via *failure. */
mu_status_t mu_recheck_wave(mu_optimizer_t *opt, int wave, mu_status_t *failure);
mu_status_t mu_step_find_plan(mu_optimizer_t *opt, const mu_param_t *p, mu_orth_plan_t **out);

/* shard/verify.c */
/* Owner: certifies entry k's fast result in checks[k] (q NaN/Inf, residual, forced). */
mu_status_t mu_verify_certify(mu_optimizer_t *opt, int entry, const mu_orth_plan_t *plan,
                              bool zero);
/* Collective: agrees on the verdicts of entries [first, first + count), solves each failed
 * one with the fallback into its owner's Q, and marks the ones that could not be solved in
 * opt->skip. */
mu_status_t mu_verify_group(mu_optimizer_t *opt, int first, int count, mu_step_stats_t *stats);
/* Appends an event to the step's list (every rank the same). */
void mu_step_record(mu_step_stats_t *stats, const mu_step_event_t *event);

#endif
