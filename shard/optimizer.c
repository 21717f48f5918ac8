/* Creation, views, the step entry point and the digest of the sharded optimizer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/clock.h"
#include "core/log.h"
#include "shard/optimizer_impl.h"

enum { IO_ALIGNMENT = 64 }; /* each W and G starts on its own cache line */

static int64_t aligned(int64_t bytes)
{
    return (bytes + IO_ALIGNMENT - 1) / IO_ALIGNMENT * IO_ALIGNMENT;
}

/* Rows held: the shard in sharded mode, everything in local mode. */
static void held_rows(const mu_optimizer_t *opt, const mu_param_t *p, int64_t *begin, int64_t *end)
{
    if (mu_opt_sharded(opt)) {
        mu_shard_rows(p->rows, opt->ranks, opt->rank, begin, end);
    } else {
        *begin = 0;
        *end = p->rows;
    }
}

/* One zeroed host region for every W and G of this rank (the part trainers see). */
static mu_status_t build_io_region(mu_optimizer_t *opt)
{
    int64_t total = 0;
    for (int i = 0; i < opt->layout->param_count; i++) {
        const mu_param_t *p = &opt->layout->params[i];
        held_rows(opt, p, &opt->params[i].row_begin, &opt->params[i].row_end);
        total += 2 * aligned((opt->params[i].row_end - opt->params[i].row_begin) * p->cols * 4);
    }
    opt->io_bytes = (size_t)(total ? total : IO_ALIGNMENT);
    MU_CHECK(opt->io.map(opt->io.ctx, opt->be, opt->io_bytes, &opt->io_region));
    char *cursor = opt->io_region;
    for (int i = 0; i < opt->layout->param_count; i++) {
        param_state_t *ps = &opt->params[i];
        const int64_t rows = ps->row_end - ps->row_begin, cols = opt->layout->params[i].cols;
        ps->w = (mu_mat_t){rows, cols, cols, MU_DTYPE_F32, cursor};
        cursor += aligned(rows * cols * 4);
        ps->g = (mu_mat_t){rows, cols, cols, MU_DTYPE_F32, cursor};
        cursor += aligned(rows * cols * 4);
    }
    return MU_OK;
}

static mu_status_t zeroed(mu_optimizer_t *opt, int64_t rows, int64_t cols, mu_mat_t *out)
{
    MU_CHECK(mu_k_alloc(opt->be, rows, cols, MU_DTYPE_F32, out));
    return mu_k_fill(opt->be, 0.0, out);
}

/* Momentum for matrices (shard, or full on the owner in local mode); AdamW moments. */
static mu_status_t build_state(mu_optimizer_t *opt)
{
    for (int i = 0; i < opt->layout->param_count; i++) {
        const mu_param_t *p = &opt->layout->params[i];
        param_state_t *ps = &opt->params[i];
        const int64_t rows = ps->row_end - ps->row_begin;
        if (!mu_method_is_matrix(p->method)) {
            MU_CHECK(zeroed(opt, rows, p->cols, &ps->m1));
            MU_CHECK(zeroed(opt, rows, p->cols, &ps->m2));
        } else if (mu_opt_sharded(opt) || opt->plan->owner_of[i] == opt->rank) {
            MU_CHECK(zeroed(opt, rows, p->cols, &ps->m));
        }
    }
    return MU_OK;
}

/* Local mode needs one full Q at a time on the owner. */
static mu_status_t build_local_arena(mu_optimizer_t *opt)
{
    int64_t most = 1;
    for (int i = 0; i < opt->layout->param_count; i++) {
        const mu_param_t *p = &opt->layout->params[i];
        if (opt->plan->owner_of[i] == opt->rank && p->rows * p->cols > most)
            most = p->rows * p->cols;
    }
    return mu_k_alloc(opt->be, 1, most, MU_DTYPE_F32, &opt->full);
}

static mu_status_t build(mu_optimizer_t *opt)
{
    MU_CHECK(mu_shard_plan_build(opt->layout, opt->ranks, &opt->plan));
    opt->params = calloc((size_t)opt->layout->param_count, sizeof *opt->params);
    const size_t n = (size_t)opt->layout->param_count;
    opt->nonfinite = calloc(n, sizeof *opt->nonfinite);
    opt->first_bad_rank = calloc(n, sizeof *opt->first_bad_rank);
    opt->scratch_i64 = calloc(n, sizeof *opt->scratch_i64);
    opt->skip = calloc(n, sizeof *opt->skip);
    opt->checks = calloc((size_t)(opt->plan->entry_count + 1), sizeof *opt->checks);
    if (!opt->params || !opt->nonfinite || !opt->first_bad_rank || !opt->scratch_i64 ||
        !opt->skip || !opt->checks)
        return mu_error(MU_ERR_NOMEM, "rank %d: cannot allocate parameter state", opt->rank);
    for (int i = 0; i < opt->layout->param_count; i++)
        mu_layout_hyper(opt->layout, i, &opt->params[i].hyper);
    MU_CHECK(build_io_region(opt));
    MU_CHECK(build_state(opt));
    return mu_opt_sharded(opt) ? mu_exchange_build(opt) : build_local_arena(opt);
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

mu_status_t mu_optimizer_create(const mu_layout_t *layout, mu_comm_t *comm, mu_backend_t *be,
                                const mu_io_provider_t *io, mu_optimizer_t **out)
{
    if (!layout || !comm || !be || !out)
        return mu_error(MU_ERR_INVALID, "optimizer: null argument");
    *out = NULL;
    mu_optimizer_t *opt = calloc(1, sizeof *opt);
    if (!opt)
        return mu_error(MU_ERR_NOMEM, "optimizer: cannot allocate");
    *opt = (mu_optimizer_t){.layout = layout,
                            .comm = comm,
                            .be = be,
                            .rank = mu_comm_rank(comm),
                            .ranks = mu_comm_size(comm),
                            .io = io ? *io : default_io,
                            .verify_transit = true};
    mu_status_t status = mu_comm_agree(comm, build(opt));
    if (status != MU_OK) {
        mu_optimizer_destroy(&opt);
        return status;
    }
    MU_LOG(MU_LOG_INFO, MU_SUB_SHARD,
           "%s mode: %d parameters, %d matrices owned here, %d "
           "waves, %.1f MiB of weights and gradients",
           mu_opt_sharded(opt) ? "sharded" : "local", layout->param_count,
           opt->plan->rank_matrices[opt->rank], opt->plan->wave_count,
           (double)opt->io_bytes / 1048576.0);
    *out = opt;
    return MU_OK;
}

void mu_optimizer_set_hyper(mu_optimizer_t *opt, int p, const mu_hyper_t *hyper)
{
    opt->params[p].hyper = *hyper;
}

void mu_optimizer_destroy(mu_optimizer_t **opt)
{
    if (!opt || !*opt)
        return;
    mu_optimizer_t *o = *opt;
    if (o->plan && mu_opt_sharded(o))
        mu_exchange_free(o);
    else
        mu_k_release(o->be, &o->full);
    for (int i = 0; o->params && i < o->layout->param_count; i++) {
        mu_k_release(o->be, &o->params[i].m);
        mu_k_release(o->be, &o->params[i].m1);
        mu_k_release(o->be, &o->params[i].m2);
    }
    for (int i = 0; i < o->plan_count; i++)
        mu_orth_plan_destroy(&o->plans[i].plan);
    free(o->plans);
    free(o->params);
    free(o->nonfinite);
    free(o->first_bad_rank);
    free(o->scratch_i64);
    free(o->skip);
    free(o->checks);
    mu_fallback_destroy(&o->fallback);
    if (o->io_region)
        o->io.unmap(o->io.ctx, o->be, o->io_region, o->io_bytes);
    mu_shard_plan_destroy(&o->plan);
    free(o);
    *opt = NULL;
}

mu_status_t mu_optimizer_param(mu_optimizer_t *opt, int p, mu_param_view_t *view)
{
    if (!opt || !view || p < 0 || p >= opt->layout->param_count)
        return mu_error(MU_ERR_INVALID, "optimizer: no parameter %d", p);
    const param_state_t *ps = &opt->params[p];
    *view = (mu_param_view_t){ps->row_begin, ps->row_end, ps->w, ps->g};
    return MU_OK;
}

mu_status_t mu_optimizer_step(mu_optimizer_t *opt, mu_step_stats_t *stats)
{
    mu_step_stats_t local;
    mu_step_stats_t *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    if (!opt)
        return mu_error(MU_ERR_INVALID, "optimizer: null");
    const double start = mu_seconds();
    mu_status_t status = mu_step_finite_check(opt, st);
    st->momentum_s = mu_seconds() - start;
    if (status == MU_OK)
        status = mu_opt_sharded(opt) ? mu_step_sharded(opt, st) : mu_step_local(opt, st);
    st->total_s = mu_seconds() - start;
    if (status == MU_ERR_TIMEOUT) { /* the comm layer knows no steps: add it */
        char why[640];
        snprintf(why, sizeof why, "%s", mu_error_message());
        return mu_error(status, "step %ld: %s", opt->steps_done + 1, why);
    }
    MU_CHECK(status);
    opt->steps_done++;
    return MU_OK;
}

void mu_optimizer_set_transit_checks(mu_optimizer_t *opt, bool on)
{
    if (opt)
        opt->verify_transit = on;
}

void mu_optimizer_set_check_every(mu_optimizer_t *opt, long every)
{
    if (opt)
        opt->check_every = every;
}

mu_status_t mu_optimizer_replica_digest(mu_optimizer_t *opt, uint64_t *digest)
{
    XXH3_state_t *h = XXH3_createState();
    if (!h)
        return mu_error(MU_ERR_NOMEM, "replica digest: cannot allocate the hash state");
    XXH3_64bits_reset(h);
    mu_status_t status = MU_OK;
    for (int p = 0; status == MU_OK && p < opt->layout->param_count; p++) {
        const mu_mat_t *w = &opt->params[p].w;
        float *host = malloc(sizeof(float) * (size_t)(w->rows * w->cols + 1));
        status = host ? mu_k_download(opt->be, w, host, MU_DTYPE_F32, w->cols)
                      : mu_error(MU_ERR_NOMEM, "replica digest: cannot stage %s",
                                 opt->layout->params[p].name);
        if (status == MU_OK)
            XXH3_64bits_update(h, host, sizeof(float) * (size_t)(w->rows * w->cols));
        free(host);
    }
    *digest = XXH3_64bits_digest(h);
    XXH3_freeState(h);
    return status;
}

void mu_optimizer_force_fallback(mu_optimizer_t *opt, bool force)
{
    if (opt)
        opt->force_fallback = force;
}

/* Buffers of the digest: rank 0 gathers into `gathered`; `staged` holds this rank's weights
 * when the backend keeps them in device memory (NULL when they are host memory already). */
typedef struct digest_buffers {
    float *gathered, *staged;
    int64_t *counts, *displs;
} digest_buffers_t;

/* This rank's weights of parameter p, readable by the CPU. */
static mu_status_t host_weights(mu_optimizer_t *opt, int p, float *staged, const void **out)
{
    const mu_mat_t *w = &opt->params[p].w;
    *out = w->data;
    if (!staged)
        return MU_OK;
    MU_CHECK(mu_k_download(opt->be, w, staged, MU_DTYPE_F32, w->cols));
    *out = staged;
    return MU_OK;
}

/* Hashes parameter p's weights in global row order on rank 0. */
static mu_status_t digest_param(mu_optimizer_t *opt, int p, XXH3_state_t *h,
                                const digest_buffers_t *b)
{
    const mu_param_t *param = &opt->layout->params[p];
    const param_state_t *ps = &opt->params[p];
    const int64_t row_bytes = param->cols * 4;
    int64_t *counts = b->counts, *displs = b->displs;
    const void *mine = NULL;
    if (!mu_opt_sharded(opt)) {
        if (opt->rank == 0) {
            MU_CHECK(host_weights(opt, p, b->staged, &mine));
            XXH3_64bits_update(h, mine, (size_t)(param->rows * row_bytes));
        }
        return MU_OK;
    }
    MU_CHECK(host_weights(opt, p, b->staged, &mine));
    for (int r = 0; r < opt->ranks; r++) {
        int64_t begin, end;
        mu_shard_rows(param->rows, opt->ranks, r, &begin, &end);
        counts[r] = (end - begin) * row_bytes;
        displs[r] = begin * row_bytes;
    }
    MU_CHECK(mu_comm_gatherv(opt->comm, mine, (ps->row_end - ps->row_begin) * row_bytes,
                             b->gathered, counts, displs, 0));
    if (opt->rank == 0)
        XXH3_64bits_update(h, b->gathered, (size_t)(param->rows * row_bytes));
    return MU_OK;
}

static mu_status_t digest_all(mu_optimizer_t *opt, XXH3_state_t *h, uint64_t *digest)
{
    int64_t largest = 1;
    for (int p = 0; p < opt->layout->param_count; p++) {
        const mu_param_t *param = &opt->layout->params[p];
        largest = param->rows * param->cols > largest ? param->rows * param->cols : largest;
    }
    const bool staged = !mu_backend_host_memory(opt->be);
    digest_buffers_t b = {
        .gathered = opt->rank == 0 ? malloc(sizeof(float) * (size_t)largest) : NULL,
        .staged = staged ? malloc(sizeof(float) * (size_t)largest) : NULL,
        .counts = calloc((size_t)opt->ranks, sizeof *b.counts),
        .displs = calloc((size_t)opt->ranks, sizeof *b.displs),
    };
    mu_status_t status = MU_OK;
    if ((opt->rank == 0 && !b.gathered) || (staged && !b.staged) || !b.counts || !b.displs)
        status = mu_error(MU_ERR_NOMEM, "rank %d: digest: cannot allocate", opt->rank);
    status = mu_comm_agree(opt->comm, status);
    for (int p = 0; status == MU_OK && p < opt->layout->param_count; p++)
        status = digest_param(opt, p, h, &b);
    if (status == MU_OK) {
        *digest = opt->rank == 0 ? XXH3_64bits_digest(h) : 0;
        status = mu_comm_bcast(opt->comm, digest, sizeof *digest, 0);
    }
    free(b.gathered);
    free(b.staged);
    free(b.counts);
    free(b.displs);
    return status;
}

mu_status_t mu_optimizer_weights_norm(mu_optimizer_t *opt, double *norm)
{
    if (!opt || !norm)
        return mu_error(MU_ERR_INVALID, "weights norm: null argument");
    double squares = 0.0;
    for (int p = 0; p < opt->layout->param_count; p++) {
        double n = 0.0;
        MU_CHECK(mu_k_norm_frob(opt->be, &opt->params[p].w, &n));
        squares += n * n;
    }
    /* Local mode replicates the weights: every rank already holds the whole sum. */
    if (mu_opt_sharded(opt))
        MU_CHECK(mu_comm_allreduce(opt->comm, &squares, 1, MU_COMM_F64, MU_COMM_SUM));
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
    *base = opt->io_region;
    *bytes = opt->io_bytes;
}

const mu_shard_plan_t *mu_optimizer_plan(const mu_optimizer_t *opt)
{
    return opt->plan;
}

long mu_optimizer_steps_done(const mu_optimizer_t *opt)
{
    return opt->steps_done;
}

int64_t mu_optimizer_ideal_bytes(const mu_optimizer_t *opt)
{
    const int64_t es = (int64_t)mu_dtype_size(opt->layout->settings.exchange_dtype);
    int64_t shard = 0;
    for (int i = 0; i < opt->layout->param_count; i++)
        if (mu_method_is_matrix(opt->layout->params[i].method))
            shard += (opt->params[i].row_end - opt->params[i].row_begin) *
                     opt->layout->params[i].cols * es;
    return 2 * shard;
}
