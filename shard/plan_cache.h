/* Private to shard/: one orthogonalization plan per (shape, method), made on first use and
 * kept for the optimizer's life (a plan holds its workspace: making one per step would
 * allocate every step). */
#ifndef MU_SHARD_PLAN_CACHE_H
#define MU_SHARD_PLAN_CACHE_H

#include "kernels/orth.h"
#include "shard/optimizer_impl.h"

mu_status_t mu_plan_cache_create(const mu_shard_env_t *env, mu_plan_cache_t **out);
void mu_plan_cache_destroy(mu_plan_cache_t **cache);

/* The plan for parameter p's shape and method, made now if it is the first. */
mu_status_t mu_plan_cache_find(mu_plan_cache_t *cache, const mu_param_t *p, mu_orth_plan_t **out);

#endif
