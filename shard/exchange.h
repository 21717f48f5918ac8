/*
 * Private to shard/: the sharded exchange (DESIGN.md "One step", steps 2 and 5). Per wave, one
 * all-to-all gathers the row shards of U to the owners and one scatters the rows of O back;
 * wave k+1's gather is in flight while wave k computes. The exchange owns the schedules, the
 * buffers, the owners' full G and Q and the checksums of what travels (shard/transit.c).
 */
#ifndef MU_SHARD_EXCHANGE_H
#define MU_SHARD_EXCHANGE_H

#include "shard/store.h"

/* Borrows env and store for its life. Not collective. */
mu_status_t mu_exchange_create(const mu_shard_env_t *env, mu_param_store_t *store,
                               mu_exchange_t **out);
void mu_exchange_destroy(mu_exchange_t **ex);

/* Checksums on every exchanged wave, one resend on a mismatch (on from creation). */
void mu_exchange_set_checksums(mu_exchange_t *ex, bool on);

/* The number of rows of param that rank holds (the row shard rule); *begin, when not NULL,
 * receives the first. */
int64_t mu_exchange_rows(const mu_shard_env_t *env, int param, int rank, int64_t *begin);

/* Collective, in this order per wave: post the gather, wait for it (the owners' G is then
 * whole), compute, post the scatter, wait for it (every shard's O is then in its G). step
 * names the step in messages and fault injection. */
mu_status_t mu_exchange_post_gather(mu_exchange_t *ex, int wave);
mu_status_t mu_exchange_wait_gather(mu_exchange_t *ex, int wave, long step);
mu_status_t mu_exchange_post_scatter(mu_exchange_t *ex, int wave);
mu_status_t mu_exchange_wait_scatter(mu_exchange_t *ex, int wave, long step);

/* Nonblocking collectives advance only inside MPI calls: pokes the ones in flight. */
mu_status_t mu_exchange_progress(mu_exchange_t *ex);

/* Views of an owned matrix's full G and Q (entry: the index within the wave's list). */
void mu_exchange_full_views(const mu_exchange_t *ex, int wave, int entry, mu_mat_t *g, mu_mat_t *q);

/* Bytes this rank sends in wave's gather and scatter: all, and to other ranks only. */
void mu_exchange_wave_bytes(const mu_exchange_t *ex, int wave, int64_t *sent, int64_t *sent_remote);
/* Bytes this rank sends to each rank (to_peer[ranks]) in one step, all waves, both ways. */
void mu_exchange_peer_bytes(const mu_exchange_t *ex, int64_t *to_peer);

#endif
