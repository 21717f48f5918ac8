/*
 * The sharded exchange (shard/exchange.h): schedules, buffers, packing and the pipeline's
 * posts and waits. The buffers' layout is the segment order of shard/exchange_impl.h;
 * payloads are in the layout's exchange dtype (fp32 or bf16), and copies convert.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fault.h"
#include "core/log.h"
#include "shard/exchange_impl.h"

static int64_t element_bytes(const mu_shard_env_t *env)
{
    return (int64_t)mu_dtype_size(env->layout->settings.exchange_dtype);
}

int64_t mu_exchange_rows(const mu_shard_env_t *env, int param, int rank, int64_t *begin)
{
    int64_t b, e;
    mu_shard_rows(env->layout->params[param].rows, env->ranks, rank, &b, &e);
    if (begin)
        *begin = b;
    return e - b;
}

/* ---- the segment order ------------------------------------------------------------------ */

/* Places a segment of rows rows at its peer's cursor and visits it; empty ones are not. */
static mu_status_t place(mu_exchange_t *ex, exchange_segment_t *seg, int64_t rows,
                         exchange_segment_fn visit, void *ctx)
{
    if (rows == 0)
        return MU_OK;
    seg->rows = rows;
    seg->bytes = rows * seg->cols * element_bytes(ex->env);
    seg->offset = ex->cursor[seg->peer];
    ex->cursor[seg->peer] += seg->bytes;
    return visit(ctx, seg);
}

mu_status_t mu_exchange_walk(mu_exchange_t *ex, int wave, exchange_side_t side,
                             const int64_t *displs, exchange_segment_fn visit, void *ctx)
{
    const mu_shard_env_t *env = ex->env;
    const int first = env->plan->wave_begin[wave];
    const int n = env->plan->wave_begin[wave + 1] - first;
    memcpy(ex->cursor, displs, sizeof *ex->cursor * (size_t)env->ranks);
    for (int k = 0; k < n; k++) {
        const mu_plan_entry_t *e = &env->plan->entries[first + k];
        exchange_segment_t seg = {
            .entry = k, .param = e->param, .cols = env->layout->params[e->param].cols};
        if (side == SHARD_SIDE) { /* this rank's rows, to or from the owner */
            seg.peer = e->owner;
            const int64_t rows = mu_exchange_rows(env, e->param, env->rank, &seg.first_row);
            MU_CHECK(place(ex, &seg, rows, visit, ctx));
            continue;
        }
        for (int r = 0; e->owner == env->rank && r < env->ranks; r++) { /* every peer's rows */
            seg.peer = r;
            const int64_t rows = mu_exchange_rows(env, e->param, r, &seg.first_row);
            MU_CHECK(place(ex, &seg, rows, visit, ctx));
        }
    }
    return MU_OK;
}

/* ---- the schedule ----------------------------------------------------------------------- */

static mu_status_t alloc_counts(alltoall_counts_t *c, int ranks)
{
    c->send_counts = calloc((size_t)ranks, sizeof(int64_t));
    c->send_displs = calloc((size_t)ranks, sizeof(int64_t));
    c->recv_counts = calloc((size_t)ranks, sizeof(int64_t));
    c->recv_displs = calloc((size_t)ranks, sizeof(int64_t));
    if (!c->send_counts || !c->send_displs || !c->recv_counts || !c->recv_displs)
        return mu_error(MU_ERR_NOMEM, "exchange: cannot allocate counts for %d ranks", ranks);
    return MU_OK;
}

static void free_counts(alltoall_counts_t *c)
{
    free(c->send_counts);
    free(c->send_displs);
    free(c->recv_counts);
    free(c->recv_displs);
}

static void finish_displacements(alltoall_counts_t *c, int ranks)
{
    c->send_total = c->recv_total = 0;
    for (int r = 0; r < ranks; r++) {
        c->send_displs[r] = c->send_total;
        c->recv_displs[r] = c->recv_total;
        c->send_total += c->send_counts[r];
        c->recv_total += c->recv_counts[r];
    }
}

/* Counting: a shard-side segment goes out in the gather and comes back in the scatter; an
 * owner-side one comes in in the gather and goes out in the scatter. */
static mu_status_t count_shard_side(void *ctx, const exchange_segment_t *seg)
{
    wave_schedule_t *ws = ctx;
    ws->gather.send_counts[seg->peer] += seg->bytes;
    ws->scatter.recv_counts[seg->peer] += seg->bytes;
    return MU_OK;
}

static mu_status_t count_owner_side(void *ctx, const exchange_segment_t *seg)
{
    wave_schedule_t *ws = ctx;
    ws->gather.recv_counts[seg->peer] += seg->bytes;
    ws->scatter.send_counts[seg->peer] += seg->bytes;
    return MU_OK;
}

/* Counts of one wave's gather and scatter, from this rank's point of view; zeros: one
 * displacement 0 per rank. */
static mu_status_t schedule_wave(mu_exchange_t *ex, int wave, const int64_t *zeros)
{
    const mu_shard_env_t *env = ex->env;
    wave_schedule_t *ws = &ex->waves[wave];
    MU_CHECK(alloc_counts(&ws->gather, env->ranks));
    MU_CHECK(alloc_counts(&ws->scatter, env->ranks));
    MU_CHECK(mu_exchange_walk(ex, wave, SHARD_SIDE, zeros, count_shard_side, ws));
    MU_CHECK(mu_exchange_walk(ex, wave, OWNER_SIDE, zeros, count_owner_side, ws));
    for (int k = env->plan->wave_begin[wave]; k < env->plan->wave_begin[wave + 1]; k++) {
        const mu_param_t *p = &env->layout->params[env->plan->entries[k].param];
        if (env->plan->entries[k].owner == env->rank)
            ws->full_elements += 2 * p->rows * p->cols;
    }
    finish_displacements(&ws->gather, env->ranks);
    finish_displacements(&ws->scatter, env->ranks);
    return MU_OK;
}

static mu_status_t alloc_buffers(mu_exchange_t *ex)
{
    const mu_shard_env_t *env = ex->env;
    int64_t most[4] = {1, 1, 1, 1}, full = 1;
    for (int w = 0; w < env->plan->wave_count; w++) {
        const wave_schedule_t *ws = &ex->waves[w];
        const int64_t sizes[4] = {ws->gather.send_total, ws->gather.recv_total,
                                  ws->scatter.send_total, ws->scatter.recv_total};
        for (int i = 0; i < 4; i++)
            most[i] = sizes[i] > most[i] ? sizes[i] : most[i];
        full = ws->full_elements > full ? ws->full_elements : full;
    }
    const mu_dtype_t dt = env->layout->settings.exchange_dtype;
    const int64_t es = element_bytes(env);
    for (int s = 0; s < EXCHANGE_SETS; s++) {
        exchange_set_t *set = &ex->sets[s];
        mu_mat_t *bufs[4] = {&set->gather_send, &set->gather_recv, &set->scatter_send,
                             &set->scatter_recv};
        for (int i = 0; i < 4; i++)
            MU_CHECK(mu_k_alloc(env->be, 1, (most[i] + es - 1) / es, dt, bufs[i]));
    }
    return mu_k_alloc(env->be, 1, full, MU_DTYPE_F32, &ex->full);
}

static mu_status_t build(mu_exchange_t *ex)
{
    const mu_shard_env_t *env = ex->env;
    ex->waves = calloc((size_t)(env->plan->wave_count + 1), sizeof *ex->waves);
    ex->cursor = calloc((size_t)env->ranks, sizeof *ex->cursor);
    int64_t *zeros = calloc((size_t)env->ranks, sizeof *zeros);
    mu_status_t status =
        ex->waves && ex->cursor && zeros
            ? MU_OK
            : mu_error(MU_ERR_NOMEM, "exchange: cannot allocate %d waves", env->plan->wave_count);
    for (int w = 0; w < env->plan->wave_count; w++)
        MU_TRY(status, schedule_wave(ex, w, zeros));
    free(zeros);
    MU_TRY(status, mu_transit_alloc(ex));
    MU_TRY(status, alloc_buffers(ex));
    return status;
}

mu_status_t mu_exchange_create(const mu_shard_env_t *env, mu_param_store_t *store,
                               mu_exchange_t **out)
{
    mu_exchange_t *ex = calloc(1, sizeof *ex);
    *out = ex;
    if (!ex)
        return mu_error(MU_ERR_NOMEM, "cannot allocate the exchange");
    *ex = (mu_exchange_t){.env = env, .store = store, .checksums = true};
    return build(ex);
}

void mu_exchange_destroy(mu_exchange_t **exchange)
{
    mu_exchange_t *ex = *exchange;
    if (!ex)
        return;
    const mu_shard_env_t *env = ex->env;
    for (int w = 0; ex->waves && w < env->plan->wave_count; w++) {
        free_counts(&ex->waves[w].gather);
        free_counts(&ex->waves[w].scatter);
    }
    free(ex->waves);
    mu_transit_free(ex);
    for (int s = 0; s < EXCHANGE_SETS; s++) {
        exchange_set_t *set = &ex->sets[s];
        /* Requests left by a failed step: their outcome no longer matters, only that MPI lets
         * go of the buffers before they are freed. */
        if (set->gather_req && mu_comm_wait(env->comm, &set->gather_req) != MU_OK)
            mu_error_clear();
        if (set->scatter_req && mu_comm_wait(env->comm, &set->scatter_req) != MU_OK)
            mu_error_clear();
        mu_k_release(env->be, &set->gather_send);
        mu_k_release(env->be, &set->gather_recv);
        mu_k_release(env->be, &set->scatter_send);
        mu_k_release(env->be, &set->scatter_recv);
    }
    mu_k_release(env->be, &ex->full);
    free(ex->cursor);
    free(ex);
    *exchange = NULL;
}

void mu_exchange_set_checksums(mu_exchange_t *ex, bool on)
{
    ex->checksums = on;
}

void mu_exchange_wave_bytes(const mu_exchange_t *ex, int wave, int64_t *sent, int64_t *sent_remote)
{
    const wave_schedule_t *ws = &ex->waves[wave];
    const int self = ex->env->rank;
    *sent = ws->gather.send_total + ws->scatter.send_total;
    *sent_remote = ws->gather.send_total - ws->gather.send_counts[self] + ws->scatter.send_total -
                   ws->scatter.send_counts[self];
}

void mu_exchange_peer_bytes(const mu_exchange_t *ex, int64_t *to_peer)
{
    for (int r = 0; r < ex->env->ranks; r++) {
        to_peer[r] = 0;
        for (int w = 0; w < ex->env->plan->wave_count; w++)
            to_peer[r] += ex->waves[w].gather.send_counts[r] + ex->waves[w].scatter.send_counts[r];
    }
}

/* ---- packing ---------------------------------------------------------------------------- */

void mu_exchange_full_views(const mu_exchange_t *ex, int wave, int entry, mu_mat_t *g, mu_mat_t *q)
{
    const mu_shard_env_t *env = ex->env;
    const mu_plan_entry_t *entries = env->plan->entries + env->plan->wave_begin[wave];
    int64_t offset = 0;
    for (int k = 0; k < entry; k++)
        if (entries[k].owner == env->rank) {
            const mu_param_t *p = &env->layout->params[entries[k].param];
            offset += 2 * p->rows * p->cols;
        }
    const mu_param_t *p = &env->layout->params[entries[entry].param];
    float *base = (float *)ex->full.data + offset;
    *g = (mu_mat_t){p->rows, p->cols, p->cols, MU_DTYPE_F32, base};
    *q = (mu_mat_t){p->rows, p->cols, p->cols, MU_DTYPE_F32, base + p->rows * p->cols};
}

static exchange_set_t *set_of(mu_exchange_t *ex, int wave)
{
    return &ex->sets[wave % EXCHANGE_SETS];
}

/* What a packing walk moves: between the wave's matrices and buf, which way. */
typedef struct packing {
    mu_exchange_t *ex;
    int wave;
    mu_mat_t *buf;
    bool to_buffer;
} packing_t;

/* A rows x cols view of a segment in a 1 x n exchange buffer. */
static mu_mat_t segment_view(const mu_mat_t *buf, const exchange_segment_t *seg)
{
    return (mu_mat_t){.rows = seg->rows,
                      .cols = seg->cols,
                      .ld = seg->cols > 0 ? seg->cols : 1,
                      .dtype = buf->dtype,
                      .data = (char *)buf->data + seg->offset};
}

static mu_status_t move(const packing_t *pk, mu_mat_t *block, const exchange_segment_t *seg)
{
    mu_mat_t view = segment_view(pk->buf, seg);
    mu_backend_t *be = pk->ex->env->be;
    return pk->to_buffer ? mu_k_copy(be, block, &view) : mu_k_copy(be, &view, block);
}

/* Shard side: this rank's rows of U into the gather, or of O (into G) out of the scatter. */
static mu_status_t move_shard(void *ctx, const exchange_segment_t *seg)
{
    const packing_t *pk = ctx;
    return move(pk, &pk->ex->store->params[seg->param].g, seg);
}

/* Owner side: a peer's rows of the full G out of the gather, or of Q into the scatter. */
static mu_status_t move_owned(void *ctx, const exchange_segment_t *seg)
{
    const packing_t *pk = ctx;
    mu_mat_t g, q;
    mu_exchange_full_views(pk->ex, pk->wave, seg->entry, &g, &q);
    mu_mat_t block = pk->to_buffer ? q : g;
    block.rows = seg->rows;
    block.data = (char *)block.data + (size_t)(seg->first_row * block.ld) * sizeof(float);
    return move(pk, &block, seg);
}

static mu_status_t pack(mu_exchange_t *ex, int wave, exchange_side_t side, const int64_t *displs,
                        mu_mat_t *buf, bool to_buffer)
{
    packing_t pk = {ex, wave, buf, to_buffer};
    return mu_exchange_walk(ex, wave, side, displs, side == SHARD_SIDE ? move_shard : move_owned,
                            &pk);
}

/* ---- the pipeline ----------------------------------------------------------------------- */

static mu_alltoallv_args_t args_of(const alltoall_counts_t *c, const mu_mat_t *send, mu_mat_t *recv)
{
    return (mu_alltoallv_args_t){send->data, c->send_counts, c->send_displs,
                                 recv->data, c->recv_counts, c->recv_displs};
}

mu_status_t mu_exchange_post_gather(mu_exchange_t *ex, int wave)
{
    exchange_set_t *set = set_of(ex, wave);
    const alltoall_counts_t *c = &ex->waves[wave].gather;
    MU_CHECK(pack(ex, wave, SHARD_SIDE, c->send_displs, &set->gather_send, true));
    const mu_alltoallv_args_t a = args_of(c, &set->gather_send, &set->gather_recv);
    return mu_comm_ialltoallv(ex->env->comm, &a, &set->gather_req);
}

/* Injected stall and kill: inside the step's first exchange wait, where peers wait too. */
static void stall_or_die(const mu_exchange_t *ex, int wave, long step)
{
    if (wave != 0)
        return;
    const mu_fault_t *f = mu_fault_fire(MU_FAULT_STALL, ex->env->rank, step, NULL);
    if (f) {
        const struct timespec t = {f->ms / 1000, (f->ms % 1000) * 1000000L};
        nanosleep(&t, NULL);
    }
    if (mu_fault_fire(MU_FAULT_KILL, ex->env->rank, step, NULL)) {
        fflush(stderr);
        raise(SIGKILL);
    }
}

mu_status_t mu_exchange_wait_gather(mu_exchange_t *ex, int wave, long step)
{
    exchange_set_t *set = set_of(ex, wave);
    stall_or_die(ex, wave, step);
    MU_CHECK(mu_comm_wait(ex->env->comm, &set->gather_req));
    if (ex->checksums)
        MU_CHECK(mu_transit_verify(ex, wave, true, step));
    return pack(ex, wave, OWNER_SIDE, ex->waves[wave].gather.recv_displs, &set->gather_recv, false);
}

mu_status_t mu_exchange_post_scatter(mu_exchange_t *ex, int wave)
{
    exchange_set_t *set = set_of(ex, wave);
    const alltoall_counts_t *c = &ex->waves[wave].scatter;
    MU_CHECK(pack(ex, wave, OWNER_SIDE, c->send_displs, &set->scatter_send, true));
    const mu_alltoallv_args_t a = args_of(c, &set->scatter_send, &set->scatter_recv);
    return mu_comm_ialltoallv(ex->env->comm, &a, &set->scatter_req);
}

mu_status_t mu_exchange_wait_scatter(mu_exchange_t *ex, int wave, long step)
{
    exchange_set_t *set = set_of(ex, wave);
    MU_CHECK(mu_comm_wait(ex->env->comm, &set->scatter_req));
    if (ex->checksums)
        MU_CHECK(mu_transit_verify(ex, wave, false, step));
    return pack(ex, wave, SHARD_SIDE, ex->waves[wave].scatter.recv_displs, &set->scatter_recv,
                false);
}

mu_status_t mu_exchange_progress(mu_exchange_t *ex)
{
    for (int s = 0; s < EXCHANGE_SETS; s++) {
        bool done;
        if (ex->sets[s].gather_req)
            MU_CHECK(mu_comm_test(ex->env->comm, ex->sets[s].gather_req, &done));
        if (ex->sets[s].scatter_req)
            MU_CHECK(mu_comm_test(ex->env->comm, ex->sets[s].scatter_req, &done));
    }
    return MU_OK;
}
