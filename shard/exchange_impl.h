/*
 * Private to shard/exchange.c and shard/transit.c: the exchange's state, and the one
 * definition of how a wave's matrices are laid out in the buffers (the segment order), which
 * the schedule, the packing and the checksums all walk.
 *
 * Segment order, identical on every rank because the plan is:
 *  - shard side (gather send, scatter receive): grouped by the owner (rank order, through
 *    the displacements); within an owner, the wave's entries in plan order, this rank's rows
 *    of each;
 *  - owner side (gather receive, scatter send): grouped by the peer rank; within a peer, the
 *    owner's entries in plan order, that peer's rows of each.
 * Empty segments (a rank that holds no rows) are not visited.
 */
#ifndef MU_SHARD_EXCHANGE_IMPL_H
#define MU_SHARD_EXCHANGE_IMPL_H

#include "shard/exchange.h"

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
} transit_hashes_t;

struct mu_exchange {
    const mu_shard_env_t *env;
    mu_param_store_t *store;
    wave_schedule_t *waves;
    exchange_set_t sets[EXCHANGE_SETS];
    mu_mat_t full;   /* fp32 arena for one wave's full G and Q */
    int64_t *cursor; /* per peer, while walking segments */
    bool checksums;
    transit_hashes_t hashes;
};

typedef enum exchange_side { SHARD_SIDE, OWNER_SIDE } exchange_side_t;

typedef struct exchange_segment {
    int peer;          /* the rank at the other end */
    int entry;         /* index within the wave's entries */
    int param;         /* layout index */
    int64_t first_row; /* of the full matrix: the peer's first row (owner side) */
    int64_t rows, cols;
    int64_t offset; /* bytes from the buffer's start */
    int64_t bytes;
} exchange_segment_t;

typedef mu_status_t (*exchange_segment_fn)(void *ctx, const exchange_segment_t *segment);

/* Calls visit for every segment of side in wave, offsets from displs (per peer, bytes);
 * stops at and returns the first failure. */
mu_status_t mu_exchange_walk(mu_exchange_t *ex, int wave, exchange_side_t side,
                             const int64_t *displs, exchange_segment_fn visit, void *ctx);

/* shard/transit.c */
/* Collective, after a wave's gather (or scatter) arrived: checks every segment's checksum,
 * resends the wave once on a mismatch, and fails naming sender, receiver, parameter and
 * step if it arrives corrupted again. */
mu_status_t mu_transit_verify(mu_exchange_t *ex, int wave, bool gather, long step);
/* The checksum tables, sized for the largest wave. */
mu_status_t mu_transit_alloc(mu_exchange_t *ex);
void mu_transit_free(mu_exchange_t *ex);

#endif
