#include "shard/plan_cache.h"

#include <stdlib.h>

typedef struct cached_plan {
    int64_t rows, cols;
    mu_orth_method_t method;
    mu_schedule_mode_t schedule;
    mu_orth_plan_t *plan;
} cached_plan_t;

struct mu_plan_cache {
    const mu_shard_env_t *env;
    cached_plan_t *plans;
    int count, capacity;
};

mu_status_t mu_plan_cache_create(const mu_shard_env_t *env, mu_plan_cache_t **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return mu_error(MU_ERR_NOMEM, "cannot allocate the plan cache");
    (*out)->env = env;
    return MU_OK;
}

void mu_plan_cache_destroy(mu_plan_cache_t **cache)
{
    if (!*cache)
        return;
    for (int i = 0; i < (*cache)->count; i++)
        mu_orth_plan_destroy(&(*cache)->plans[i].plan);
    free((*cache)->plans);
    free(*cache);
    *cache = NULL;
}

static mu_status_t grow(mu_plan_cache_t *cache)
{
    const int capacity = cache->capacity ? 2 * cache->capacity : 8;
    cached_plan_t *grown = realloc(cache->plans, sizeof *grown * (size_t)capacity);
    if (!grown)
        return mu_error(MU_ERR_NOMEM, "cannot grow the plan cache");
    cache->plans = grown;
    cache->capacity = capacity;
    return MU_OK;
}

mu_status_t mu_plan_cache_find(mu_plan_cache_t *cache, const mu_param_t *p, mu_orth_plan_t **out)
{
    const mu_orth_method_t method = mu_method_orth(p->method);
    for (int i = 0; i < cache->count; i++) {
        const cached_plan_t *c = &cache->plans[i];
        if (c->rows == p->rows && c->cols == p->cols && c->method == method &&
            c->schedule == p->schedule) {
            *out = c->plan;
            return MU_OK;
        }
    }
    if (cache->count == cache->capacity)
        MU_CHECK(grow(cache));
    mu_orth_opts_t o;
    mu_layout_orth_opts(cache->env->layout, p, &o);
    cached_plan_t *c = &cache->plans[cache->count];
    *c = (cached_plan_t){p->rows, p->cols, method, p->schedule, NULL};
    MU_CHECK(mu_orth_plan_create(cache->env->be, p->rows, p->cols, &o, &c->plan));
    cache->count++;
    *out = c->plan;
    return MU_OK;
}
