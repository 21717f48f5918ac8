/* The parameter store (shard/store.h): the io region and the optimizer state. */
#include "shard/store.h"

#include <stdlib.h>
#include <string.h>

enum { IO_ALIGNMENT = 64 }; /* each W and G starts on its own cache line */

static int64_t aligned(int64_t bytes)
{
    return (bytes + IO_ALIGNMENT - 1) / IO_ALIGNMENT * IO_ALIGNMENT;
}

/* Rows held: the shard in sharded mode, everything in local mode. */
static void held_rows(const mu_shard_env_t *env, const mu_param_t *p, int64_t *begin, int64_t *end)
{
    if (mu_env_sharded(env)) {
        mu_shard_rows(p->rows, env->ranks, env->rank, begin, end);
    } else {
        *begin = 0;
        *end = p->rows;
    }
}

/* One zeroed region for every W and G of this rank (the part trainers see). */
static mu_status_t build_io_region(const mu_shard_env_t *env, mu_param_store_t *st)
{
    int64_t total = 0;
    for (int i = 0; i < env->layout->param_count; i++) {
        const mu_param_t *p = &env->layout->params[i];
        held_rows(env, p, &st->params[i].row_begin, &st->params[i].row_end);
        total += 2 * aligned((st->params[i].row_end - st->params[i].row_begin) * p->cols * 4);
    }
    st->io_bytes = (size_t)(total ? total : IO_ALIGNMENT);
    MU_CHECK(st->io.map(st->io.ctx, env->be, st->io_bytes, &st->io_region));
    char *cursor = st->io_region;
    for (int i = 0; i < env->layout->param_count; i++) {
        param_state_t *ps = &st->params[i];
        const int64_t rows = ps->row_end - ps->row_begin, cols = env->layout->params[i].cols;
        ps->w = (mu_mat_t){rows, cols, cols, MU_DTYPE_F32, cursor};
        cursor += aligned(rows * cols * 4);
        ps->g = (mu_mat_t){rows, cols, cols, MU_DTYPE_F32, cursor};
        cursor += aligned(rows * cols * 4);
    }
    return MU_OK;
}

static mu_status_t zeroed(mu_backend_t *be, int64_t rows, int64_t cols, mu_mat_t *out)
{
    MU_CHECK(mu_k_alloc(be, rows, cols, MU_DTYPE_F32, out));
    return mu_k_fill(be, 0.0, out);
}

/* Momentum for matrices (shard, or full on the owner in local mode); AdamW moments; Shampoo's
 * statistics on the owner. */
static mu_status_t build_state(const mu_shard_env_t *env, mu_param_store_t *st)
{
    for (int i = 0; i < env->layout->param_count; i++) {
        const mu_param_t *p = &env->layout->params[i];
        param_state_t *ps = &st->params[i];
        const int64_t rows = ps->row_end - ps->row_begin;
        if (p->method == MU_METHOD_SHAMPOO && env->plan->owner_of[i] == env->rank) {
            mu_shampoo_opts_t o;
            mu_layout_shampoo_opts(env->layout, &o);
            MU_CHECK(mu_shampoo_create(env->be, p->rows, p->cols, &o, &ps->shampoo));
        }
        if (!mu_method_is_matrix(p->method)) {
            MU_CHECK(zeroed(env->be, rows, p->cols, &ps->m1));
            MU_CHECK(zeroed(env->be, rows, p->cols, &ps->m2));
        } else if (mu_env_sharded(env) || env->plan->owner_of[i] == env->rank) {
            MU_CHECK(zeroed(env->be, rows, p->cols, &ps->m));
        }
    }
    return MU_OK;
}

static mu_status_t heap_map(void *ctx, mu_backend_t *be, size_t bytes, void **base)
{
    (void)ctx, (void)be;
    *base = NULL;
    if (posix_memalign(base, IO_ALIGNMENT, bytes) != 0)
        return mu_error(MU_ERR_NOMEM, "cannot allocate %.1f MiB for weights and gradients",
                        (double)bytes / 1048576.0);
    memset(*base, 0, bytes);
    return MU_OK;
}

static void heap_unmap(void *ctx, mu_backend_t *be, void *base, size_t bytes)
{
    (void)ctx, (void)be, (void)bytes;
    free(base);
}

/* Device-memory backends: the region is one backend matrix of bytes / 4 floats, zeroed. */
mu_status_t mu_io_device_map(mu_backend_t *be, size_t bytes, void **base)
{
    mu_mat_t region;
    MU_CHECK(mu_k_alloc(be, 1, (int64_t)(bytes / 4), MU_DTYPE_F32, &region));
    *base = region.data;
    return mu_k_fill(be, 0.0, &region);
}

void mu_io_device_unmap(mu_backend_t *be, void *base, size_t bytes)
{
    const int64_t floats = (int64_t)(bytes / 4);
    mu_mat_t region = {1, floats, floats, MU_DTYPE_F32, base};
    mu_k_release(be, &region);
}

static mu_status_t default_map(void *ctx, mu_backend_t *be, size_t bytes, void **base)
{
    return mu_backend_host_memory(be) ? heap_map(ctx, be, bytes, base)
                                      : mu_io_device_map(be, bytes, base);
}

static void default_unmap(void *ctx, mu_backend_t *be, void *base, size_t bytes)
{
    if (mu_backend_host_memory(be))
        heap_unmap(ctx, be, base, bytes);
    else
        mu_io_device_unmap(be, base, bytes);
}

static const mu_io_provider_t default_io = {default_map, default_unmap, NULL};

mu_status_t mu_store_create(const mu_shard_env_t *env, const mu_io_provider_t *io,
                            mu_param_store_t **out)
{
    mu_param_store_t *st = calloc(1, sizeof *st);
    *out = st;
    if (st)
        st->params = calloc((size_t)env->layout->param_count + 1, sizeof *st->params);
    if (!st || !st->params)
        return mu_error(MU_ERR_NOMEM, "cannot allocate parameter state");
    st->io = io ? *io : default_io;
    for (int i = 0; i < env->layout->param_count; i++)
        mu_layout_hyper(env->layout, i, &st->params[i].hyper);
    MU_CHECK(build_io_region(env, st));
    return build_state(env, st);
}

void mu_store_destroy(const mu_shard_env_t *env, mu_param_store_t **store)
{
    mu_param_store_t *st = *store;
    if (!st)
        return;
    for (int i = 0; st->params && i < env->layout->param_count; i++) {
        mu_k_release(env->be, &st->params[i].m);
        mu_k_release(env->be, &st->params[i].m1);
        mu_k_release(env->be, &st->params[i].m2);
        mu_shampoo_destroy(&st->params[i].shampoo);
    }
    if (st->io_region)
        st->io.unmap(st->io.ctx, env->be, st->io_region, st->io_bytes);
    free(st->params);
    free(st);
    *store = NULL;
}
