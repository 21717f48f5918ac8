/* Creation, views, the step entry point and the digest of the sharded optimizer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/clock.h"
#include "core/log.h"
#include "kernels/host_view.h"
#include "shard/certifier.h"
#include "shard/exchange.h"
#include "shard/plan_cache.h"
#include "shard/store.h"

/* Every part, each from the configuration alone (not collective: create agrees). */
static mu_status_t build(mu_optimizer_t *opt, const mu_io_provider_t *io)
{
    mu_shard_env_t *env = &opt->env;
    MU_CHECK(mu_shard_plan_build(env->layout, env->ranks, &opt->plan));
    env->plan = opt->plan;
    MU_CHECK(mu_store_create(env, io, &opt->store));
    MU_CHECK(mu_step_ctx_create(env, &opt->ctx));
    MU_CHECK(mu_certifier_create(env, &opt->certifier));
    MU_CHECK(mu_plan_cache_create(env, &opt->plans));
    if (mu_env_sharded(env))
        MU_CHECK(mu_exchange_create(env, opt->store, &opt->exchange));
    return MU_OK;
}

mu_status_t mu_optimizer_create(const mu_layout_t *layout, mu_comm_t *comm, mu_backend_t *be,
                                const mu_io_provider_t *io, mu_optimizer_t **out)
{
    if (!layout || !comm || !be || !out)
        return mu_error(MU_ERR_INVALID, "optimizer: null argument");
    *out = NULL;
    mu_optimizer_t *opt = calloc(1, sizeof *opt);
    if (!opt)
        return mu_error(MU_ERR_NOMEM, "optimizer: cannot allocate");
    opt->env = (mu_shard_env_t){.layout = layout,
                                .comm = comm,
                                .be = be,
                                .rank = mu_comm_rank(comm),
                                .ranks = mu_comm_size(comm)};
    mu_status_t status = mu_comm_agree(comm, build(opt, io));
    if (status != MU_OK) {
        mu_optimizer_destroy(&opt);
        return status;
    }
    MU_LOG(MU_LOG_INFO, MU_SUB_SHARD,
           "%s mode: %d parameters, %d matrices owned here, %d "
           "waves, %.1f MiB of weights and gradients",
           mu_env_sharded(&opt->env) ? "sharded" : "local", layout->param_count,
           opt->env.plan->rank_matrices[opt->env.rank], opt->env.plan->wave_count,
           (double)opt->store->io_bytes / 1048576.0);
    *out = opt;
    return MU_OK;
}

void mu_optimizer_set_hyper(mu_optimizer_t *opt, int p, const mu_hyper_t *hyper)
{
    opt->store->params[p].hyper = *hyper;
}

void mu_optimizer_destroy(mu_optimizer_t **opt)
{
    if (!opt || !*opt)
        return;
    mu_optimizer_t *o = *opt;
    mu_exchange_destroy(&o->exchange);
    mu_plan_cache_destroy(&o->plans);
    mu_certifier_destroy(&o->certifier);
    mu_step_ctx_destroy(&o->env, &o->ctx);
    mu_store_destroy(&o->env, &o->store);
    mu_shard_plan_destroy(&o->plan);
    free(o);
    *opt = NULL;
}

mu_status_t mu_optimizer_param(mu_optimizer_t *opt, int p, mu_param_view_t *view)
{
    if (!opt || !view || p < 0 || p >= opt->env.layout->param_count)
        return mu_error(MU_ERR_INVALID, "optimizer: no parameter %d", p);
    const param_state_t *ps = &opt->store->params[p];
    *view = (mu_param_view_t){ps->row_begin, ps->row_end, ps->w, ps->g};
    return MU_OK;
}

mu_status_t mu_optimizer_clear_momentum(mu_optimizer_t *opt, int p)
{
    if (!opt || p < 0 || p >= opt->env.layout->param_count)
        return mu_error(MU_ERR_INVALID, "optimizer: no parameter %d", p);
    mu_mat_t m = opt->store->params[p].m;
    return m.rows > 0 && m.cols > 0 ? mu_k_fill(opt->env.be, 0.0, &m) : MU_OK;
}

mu_status_t mu_optimizer_step(mu_optimizer_t *opt, mu_step_stats_t *stats)
{
    mu_step_stats_t local;
    mu_step_stats_t *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    if (!opt)
        return mu_error(MU_ERR_INVALID, "optimizer: null");
    mu_step_ctx_t *ctx = opt->ctx;
    ctx->step = mu_optimizer_next_step(opt);
    ctx->stats = st;
    const double start = mu_seconds();
    mu_status_t status = MU_OK;
    MU_TRY(status, mu_step_run(opt, ctx));
    st->total_s = mu_seconds() - start;
    ctx->stats = NULL;
    if (status == MU_ERR_TIMEOUT) { /* the comm layer knows no steps: add it */
        char why[640];
        snprintf(why, sizeof why, "%s", mu_error_message());
        return mu_error(status, "step %ld: %s", ctx->step, why);
    }
    if (status != MU_OK)
        return status;
    opt->steps_done++;
    return MU_OK;
}

void mu_optimizer_set_transit_checks(mu_optimizer_t *opt, bool on)
{
    if (opt && opt->exchange)
        mu_exchange_set_checksums(opt->exchange, on);
}

void mu_optimizer_set_check_every(mu_optimizer_t *opt, long every)
{
    if (opt)
        opt->check_every = every;
}

void mu_optimizer_force_fallback(mu_optimizer_t *opt, bool force)
{
    if (opt)
        mu_certifier_force_fallback(opt->certifier, force);
}

mu_status_t mu_optimizer_replica_digest(mu_optimizer_t *opt, uint64_t *digest)
{
    XXH3_state_t *h = XXH3_createState();
    if (!h)
        return mu_error(MU_ERR_NOMEM, "replica digest: cannot allocate the hash state");
    XXH3_64bits_reset(h);
    mu_status_t status = MU_OK;
    for (int p = 0; status == MU_OK && p < opt->env.layout->param_count; p++) {
        const mu_mat_t *w = &opt->store->params[p].w;
        mu_host_view_t v;
        MU_TRY(status,
               mu_host_view_begin(opt->env.be, w, MU_DTYPE_F32, MU_HOST_READ | MU_HOST_PACKED, &v));
        if (status == MU_OK)
            XXH3_64bits_update(h, v.data, sizeof(float) * (size_t)(w->rows * w->cols));
        mu_host_view_release(&v);
    }
    *digest = XXH3_64bits_digest(h);
    XXH3_freeState(h);
    return status;
}

/* Buffers of the digest: rank 0 gathers into `gathered`. */
typedef struct digest_buffers {
    float *gathered;
    int64_t *counts, *displs;
} digest_buffers_t;

/* Parameter p's weights gathered to rank 0 in global row order (local mode: rank 0's
 * replica); hashed there. */
static mu_status_t gather_param(mu_optimizer_t *opt, int p, const mu_host_view_t *mine,
                                XXH3_state_t *h, const digest_buffers_t *b)
{
    const mu_shard_env_t *env = &opt->env;
    const mu_param_t *param = &env->layout->params[p];
    const int64_t row_bytes = param->cols * 4;
    if (!mu_env_sharded(env)) {
        if (env->rank == 0)
            XXH3_64bits_update(h, mine->data, (size_t)(param->rows * row_bytes));
        return MU_OK;
    }
    for (int r = 0; r < env->ranks; r++) {
        int64_t begin, end;
        mu_shard_rows(param->rows, env->ranks, r, &begin, &end);
        b->counts[r] = (end - begin) * row_bytes;
        b->displs[r] = begin * row_bytes;
    }
    const param_state_t *ps = &opt->store->params[p];
    MU_CHECK(mu_comm_gatherv(env->comm, mine->data, (ps->row_end - ps->row_begin) * row_bytes,
                             b->gathered, b->counts, b->displs, 0));
    if (env->rank == 0)
        XXH3_64bits_update(h, b->gathered, (size_t)(param->rows * row_bytes));
    return MU_OK;
}

/* Hashes parameter p's weights in global row order on rank 0. */
static mu_status_t digest_param(mu_optimizer_t *opt, int p, XXH3_state_t *h,
                                const digest_buffers_t *b)
{
    if (!mu_env_sharded(&opt->env) && opt->env.rank != 0)
        return MU_OK; /* local mode: rank 0's replica stands for all */
    const mu_mat_t *w = &opt->store->params[p].w;
    mu_host_view_t mine;
    MU_CHECK(
        mu_host_view_begin(opt->env.be, w, MU_DTYPE_F32, MU_HOST_READ | MU_HOST_PACKED, &mine));
    const mu_status_t status = gather_param(opt, p, &mine, h, b);
    mu_host_view_release(&mine);
    MU_CHECK(status);
    return MU_OK;
}

static mu_status_t digest_all(mu_optimizer_t *opt, XXH3_state_t *h, uint64_t *digest)
{
    const mu_shard_env_t *env = &opt->env;
    int64_t largest = 1;
    for (int p = 0; p < env->layout->param_count; p++) {
        const mu_param_t *param = &env->layout->params[p];
        largest = param->rows * param->cols > largest ? param->rows * param->cols : largest;
    }
    digest_buffers_t b = {
        .gathered = env->rank == 0 ? malloc(sizeof(float) * (size_t)largest) : NULL,
        .counts = calloc((size_t)env->ranks, sizeof *b.counts),
        .displs = calloc((size_t)env->ranks, sizeof *b.displs),
    };
    mu_status_t status = MU_OK;
    if ((env->rank == 0 && !b.gathered) || !b.counts || !b.displs)
        status = mu_error(MU_ERR_NOMEM, "digest: cannot allocate");
    status = mu_comm_agree(env->comm, status);
    for (int p = 0; status == MU_OK && p < env->layout->param_count; p++)
        status = digest_param(opt, p, h, &b);
    if (status == MU_OK) {
        *digest = env->rank == 0 ? XXH3_64bits_digest(h) : 0;
        status = mu_comm_bcast(env->comm, digest, sizeof *digest, 0);
    }
    free(b.gathered);
    free(b.counts);
    free(b.displs);
    return status;
}

mu_status_t mu_optimizer_weights_norm(mu_optimizer_t *opt, double *norm)
{
    if (!opt || !norm)
        return mu_error(MU_ERR_INVALID, "weights norm: null argument");
    double squares = 0.0;
    for (int p = 0; p < opt->env.layout->param_count; p++) {
        double n = 0.0;
        MU_CHECK(mu_k_norm_frob(opt->env.be, &opt->store->params[p].w, &n));
        squares += n * n;
    }
    /* Local mode replicates the weights: every rank already holds the whole sum. */
    if (mu_env_sharded(&opt->env))
        MU_CHECK(mu_comm_allreduce(opt->env.comm, &squares, 1, MU_COMM_F64, MU_COMM_SUM));
    *norm = sqrt(squares);
    return MU_OK;
}

mu_status_t mu_optimizer_digest(mu_optimizer_t *opt, uint64_t *digest)
{
    if (!opt || !digest)
        return mu_error(MU_ERR_INVALID, "digest: null argument");
    XXH3_state_t *h = XXH3_createState();
    if (!h)
        return mu_error(MU_ERR_NOMEM, "digest: cannot allocate the hash state");
    XXH3_64bits_reset(h);
    const mu_status_t status = digest_all(opt, h, digest);
    XXH3_freeState(h);
    return status;
}

void mu_optimizer_io_region(const mu_optimizer_t *opt, void **base, size_t *bytes)
{
    *base = opt->store->io_region;
    *bytes = opt->store->io_bytes;
}

const mu_shard_plan_t *mu_optimizer_plan(const mu_optimizer_t *opt)
{
    return opt->env.plan;
}

const mu_layout_t *mu_optimizer_layout(const mu_optimizer_t *opt)
{
    return opt->env.layout;
}

mu_backend_t *mu_optimizer_backend(const mu_optimizer_t *opt)
{
    return opt->env.be;
}

int mu_optimizer_rank(const mu_optimizer_t *opt)
{
    return opt->env.rank;
}

long mu_optimizer_steps_done(const mu_optimizer_t *opt)
{
    return opt->steps_done;
}

long mu_optimizer_next_step(const mu_optimizer_t *opt)
{
    return opt->steps_done + 1;
}

int64_t mu_optimizer_ideal_bytes(const mu_optimizer_t *opt)
{
    const mu_layout_t *layout = opt->env.layout;
    const int64_t es = (int64_t)mu_dtype_size(layout->settings.exchange_dtype);
    int64_t shard = 0;
    for (int i = 0; i < layout->param_count; i++)
        if (mu_method_is_matrix(layout->params[i].method))
            shard += (opt->store->params[i].row_end - opt->store->params[i].row_begin) *
                     layout->params[i].cols * es;
    return 2 * shard;
}

bool mu_optimizer_peer_bytes(const mu_optimizer_t *opt, int64_t *to_peer)
{
    if (!opt->exchange)
        return false;
    mu_exchange_peer_bytes(opt->exchange, to_peer);
    return true;
}

int64_t mu_optimizer_matrix_bytes(const mu_optimizer_t *opt)
{
    const mu_layout_t *layout = opt->env.layout;
    int64_t bytes = 0;
    for (int i = 0; i < layout->param_count; i++)
        if (mu_method_is_matrix(layout->params[i].method))
            bytes += layout->params[i].rows * layout->params[i].cols * 4;
    return bytes;
}
