/*
 * Private to shard/: the parameter store, every parameter's data on this rank.
 *
 * W and G of all parameters share one host region (the io region, what a trainer sees; see
 * mu_io_provider_t), each on its own cache line; the optimizer state (momentum, AdamW moments)
 * lives in the backend's memory. In sharded mode a rank holds rows [row_begin, row_end) of
 * everything (the row shard rule); in local mode all rows of W and G, and momentum only for
 * the matrices it owns. A shampoo matrix's statistics and roots live on its owner, whole, in
 * both modes.
 */
#ifndef MU_SHARD_STORE_H
#define MU_SHARD_STORE_H

#include "kernels/shampoo.h"
#include "shard/optimizer_impl.h"

typedef struct param_state {
    int64_t row_begin, row_end; /* rows held here */
    mu_mat_t w, g;              /* views into the io region */
    mu_mat_t m;                 /* momentum: the shard (sharded), the full matrix on its owner
                                   (local), nothing for adamw parameters */
    mu_mat_t m1, m2;            /* AdamW moments, same rows as w */
    mu_shampoo_t *shampoo;      /* shampoo parameters, on their owner: statistics and roots */
    mu_hyper_t hyper;           /* what the next step applies (layout, or set by trainers) */
} param_state_t;

struct mu_param_store {
    param_state_t *params; /* one per layout parameter */
    void *io_region;
    size_t io_bytes;
    mu_io_provider_t io; /* how io_region was obtained, to give it back */
};

/* Not collective; the optimizer agrees on the outcome. io NULL: host or device memory as the
 * backend keeps its matrices. */
mu_status_t mu_store_create(const mu_shard_env_t *env, const mu_io_provider_t *io,
                            mu_param_store_t **out);
void mu_store_destroy(const mu_shard_env_t *env, mu_param_store_t **store);

#endif
