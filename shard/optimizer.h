/*
 * The sharded optimizer: this rank's part of every parameter and of the optimizer state, and
 * the step that updates them (DESIGN.md "One step").
 *
 * sharded gradient mode (FSDP-style trainers):
 *   each rank holds row shards of every parameter's weights W, gradient input G and state;
 *   a step is: finite check -> momentum on shards (M = beta M + G, U = G + beta M with
 *   Nesterov) -> row shards of U travel to each matrix's owner in waves (all-to-all) ->
 *   the owner orthogonalizes the full matrix -> rows of O travel back -> W = W (1 - lr wd)
 *   - lr scale(m, n) O on each shard. AdamW parameters are updated on their shards, locally.
 *   The exchange of wave k+1 is in flight while wave k is computed.
 * local gradient mode (DDP-style trainers):
 *   every rank holds full weights and hands in its full local gradient; each matrix's
 *   gradients are summed to its owner and averaged there, the owner keeps that matrix's
 *   momentum, updates it and broadcasts the new weights; AdamW gradients are averaged on every
 *   rank and every replica applies the same update.
 *
 * Memory: W and G of all parameters live in one host region (mu_optimizer_io), the part a
 * trainer sees; the optimizer state and exchange buffers live in the kernel backend's memory
 * (host memory on the cpu backend, the only one this layer drives so far).
 *
 * Every function that communicates is collective: all ranks call it, in the same order. A
 * failure is agreed on by all ranks (no rank is left waiting) and reported with the rank,
 * parameter and step.
 */
#ifndef MU_SHARD_OPTIMIZER_H
#define MU_SHARD_OPTIMIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "comm/comm.h"
#include "fallback/fallback.h"
#include "kernels/ops.h"
#include "shard/layout.h"
#include "shard/plan.h"

typedef struct mu_optimizer mu_optimizer_t;

typedef struct mu_param_view {
    int64_t row_begin, row_end; /* global rows held here: a shard, or all rows in local mode */
    mu_mat_t w;                 /* fp32 weights, (row_end - row_begin) x cols */
    mu_mat_t g;                 /* fp32 gradient input, same shape; overwritten by a step */
} mu_param_view_t;

/* Something a step did other than the fast path; every rank holds the same list. */
typedef enum mu_step_event_kind {
    MU_EVENT_FALLBACK_OVERSHOOT = 1, /* the certificate: ||Q||_2 above 1 + band */
    MU_EVENT_FALLBACK_MISALIGNED,    /* ... Q^T G not symmetric positive semidefinite */
    MU_EVENT_FALLBACK_DESCENT,       /* ... the descent bound below its limit */
    MU_EVENT_FALLBACK_NONFINITE,     /* the fast result had NaN or Inf entries */
    MU_EVENT_FALLBACK_FORCED,        /* "fallback": "always", or --force-fallback */
    MU_EVENT_SKIPPED_NONFINITE,      /* NaN/Inf in the gradient, on_nonfinite skip */
    MU_EVENT_FALLBACK_ROOT,          /* shampoo: a root failed ||X^2 A X^2 - I|| <= its limit */
} mu_step_event_kind_t;

typedef struct mu_step_event {
    mu_step_event_kind_t kind;
    int param;            /* layout index */
    int rank;             /* the owner (fallbacks); the lowest rank that saw NaN/Inf (skips) */
    double value, limit;  /* the failed certificate test's number and limit */
    int64_t nonfinite;    /* gradient entries (skips) */
    mu_fallback_report_t fallback; /* route, grid and time (fallbacks) */
    bool solved; /* fallbacks: false when it failed numerically (update skipped) */
} mu_step_event_t;

enum { MU_STEP_EVENTS_MAX = 32 };

typedef struct mu_step_stats {
    double momentum_s, exchange_s, compute_s, apply_s, total_s; /* this rank's wall times */
    double fallback_s;         /* of compute_s: in the exact fallback */
    int64_t bytes_sent;        /* by this rank in the exchange, to itself included */
    int64_t bytes_sent_remote; /* ... to other ranks only */
    int64_t zero_updates;      /* matrices whose momentum was exactly zero */
    int64_t fallbacks;         /* matrices solved by the fallback */
    int64_t skipped;           /* parameters whose update was skipped (NaN/Inf, failed fallback) */
    int event_count;           /* events[] holds the first MU_STEP_EVENTS_MAX */
    int64_t events_total;
    mu_step_event_t events[MU_STEP_EVENTS_MAX];
} mu_step_stats_t;

/* Where the weights-and-gradients region comes from: by default host memory from malloc, or
 * device memory from the backend when its matrices live there; the daemon passes one that
 * shares the region with the trainer (a memfd, or CUDA IPC). The region must be zeroed and
 * lie where be's matrices live (mu_backend_host_memory). */
typedef struct mu_io_provider {
    mu_status_t (*map)(void *ctx, mu_backend_t *be, size_t bytes, void **base);
    void (*unmap)(void *ctx, mu_backend_t *be, void *base, size_t bytes);
    void *ctx;
} mu_io_provider_t;

/* The default providers' halves, for providers that share what they allocate. */
mu_status_t mu_io_device_map(mu_backend_t *be, size_t bytes, void **base);
void mu_io_device_unmap(mu_backend_t *be, void *base, size_t bytes);

/* Collective. Borrows layout, comm, be and io (NULL: malloc): keep them alive until destroy. */
mu_status_t mu_optimizer_create(const mu_layout_t *layout, mu_comm_t *comm, mu_backend_t *be,
                                const mu_io_provider_t *io, mu_optimizer_t **out);

/* The region holding every parameter's W and G on this rank. */
void mu_optimizer_io_region(const mu_optimizer_t *opt, void **base, size_t *bytes);
void mu_optimizer_destroy(mu_optimizer_t **opt);

/* This rank's weights and gradient input of parameter p. */
mu_status_t mu_optimizer_param(mu_optimizer_t *opt, int p, mu_param_view_t *view);

/* Zeroes parameter p's momentum on this rank, as a restarted optimizer state holds it (fault
 * injection: the illcond fault plants its gradient into a fresh momentum). */
mu_status_t mu_optimizer_clear_momentum(mu_optimizer_t *opt, int p);

/*
 * One optimizer step (collective). Reads every G, updates every W. G is overwritten.
 * Every fast orthogonalization is certified on its owner (kernels/certificate.h); a failed one is
 * solved again by all ranks with the ScaLAPACK fallback, and if that fails too, that matrix's
 * update is skipped. A parameter with NaN or Inf gradient entries is skipped (its weights and
 * momentum stay as they were) under on_nonfinite "skip"; under "abort" the step returns
 * MU_ERR_NUMERIC naming it, the rank and the step, with no state changed. stats->events lists
 * what happened, the same on every rank.
 */
mu_status_t mu_optimizer_step(mu_optimizer_t *opt, mu_step_stats_t *stats);

/* The hyper-parameters (learning rate, weight decay, momentum) the next steps apply to
 * parameter p, until set again; the layout's at creation. Not collective, but every rank must
 * set the same values before a step (the daemon agrees on them first): replicas and shards
 * of one parameter must move together. */
void mu_optimizer_set_hyper(mu_optimizer_t *opt, int p, const mu_hyper_t *hyper);

/* Checksums on every exchanged wave, verified on receipt, one resend on a mismatch (sharded
 * mode; on by default). */
void mu_optimizer_set_transit_checks(mu_optimizer_t *opt, bool on);

/* Every `every` steps (0: never), one owner's certified result, round-robin over the
 * matrices, is recomputed by the next rank and compared (a silent-data-corruption check,
 * sharded mode); a mismatch skips that matrix's update and fails the step, naming both ranks,
 * the parameter and the step. */
void mu_optimizer_set_check_every(mu_optimizer_t *opt, long every);

/* XXH3 of this rank's own weights (all parameters, as held): in local mode every replica
 * must have the same; not collective. */
mu_status_t mu_optimizer_replica_digest(mu_optimizer_t *opt, uint64_t *digest);

/* Sends every matrix through the exact fallback (tests and timing). */
void mu_optimizer_force_fallback(mu_optimizer_t *opt, bool force);

/* One line describing an event, for logs and the trainers' DONE message. */
void mu_step_event_format(const mu_optimizer_t *opt, const mu_step_event_t *event, char *buf,
                          size_t size);

/* A 64-bit digest (XXH3) of all weights, parameter by parameter in global row order, the
 * same for any number of ranks (collective; every rank receives it). */
mu_status_t mu_optimizer_digest(mu_optimizer_t *opt, uint64_t *digest);

/* Collective: the Frobenius norm of all weights together, the same on every rank. Unlike the
 * digest it compares runs that round differently (cuda against cpu) by a tolerance. */
mu_status_t mu_optimizer_weights_norm(mu_optimizer_t *opt, double *norm);

const mu_shard_plan_t *mu_optimizer_plan(const mu_optimizer_t *opt);
const mu_layout_t *mu_optimizer_layout(const mu_optimizer_t *opt);
mu_backend_t *mu_optimizer_backend(const mu_optimizer_t *opt);
int mu_optimizer_rank(const mu_optimizer_t *opt);
long mu_optimizer_steps_done(const mu_optimizer_t *opt);
/* The step the next mu_optimizer_step takes (steps done + 1): the one number trainers,
 * faults and logs call "this step". */
long mu_optimizer_next_step(const mu_optimizer_t *opt);

/* Bytes this rank must send per step for its matrix shards in the ideal exchange: its shard
 * bytes out (gather) plus as many back (scatter), in the exchange dtype. */
int64_t mu_optimizer_ideal_bytes(const mu_optimizer_t *opt);
/* Sharded mode: the bytes this rank sends to each rank per step (to_peer[ranks]), and true.
 * Local mode: false (its transfers are MPI reductions and broadcasts, routed by MPI). */
bool mu_optimizer_peer_bytes(const mu_optimizer_t *opt, int64_t *to_peer);
/* The full fp32 bytes of every matrix parameter: what local mode reduces and broadcasts. */
int64_t mu_optimizer_matrix_bytes(const mu_optimizer_t *opt);

#endif
