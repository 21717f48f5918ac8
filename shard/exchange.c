/*
 * The sharded exchange: per wave, one all-to-all gathers the row shards of U to the owners and
 * one all-to-all scatters the rows of O back.
 *
 * Buffer layout, identical on every rank because the plan is:
 *  - gather send: grouped by destination owner (rank order); within an owner, the wave's
 *    entries in plan order, this rank's rows of each;
 *  - gather recv (an owner): grouped by source rank; within a source, the owner's entries in
 *    plan order, that source's rows of each;
 *  - the scatter mirrors both.
 * Payloads are in the layout's exchange dtype (fp32 or bf16); copies convert.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fault.h"
#include "core/log.h"
#include "shard/optimizer_impl.h"

static int64_t element_bytes(const mu_optimizer_t *opt)
{
    return (int64_t)mu_dtype_size(opt->layout->settings.exchange_dtype);
}

static const mu_plan_entry_t *wave_entries(const mu_optimizer_t *opt, int wave, int *count)
{
    *count = opt->plan->wave_begin[wave + 1] - opt->plan->wave_begin[wave];
    return opt->plan->entries + opt->plan->wave_begin[wave];
}

int64_t mu_exchange_rows(const mu_optimizer_t *opt, int param, int rank, int64_t *begin)
{
    int64_t b, e;
    mu_shard_rows(opt->layout->params[param].rows, opt->ranks, rank, &b, &e);
    if (begin)
        *begin = b;
    return e - b;
}

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

/* Counts of one wave's gather and scatter, from this rank's point of view. */
static mu_status_t schedule_wave(mu_optimizer_t *opt, int wave, wave_schedule_t *ws)
{
    MU_CHECK(alloc_counts(&ws->gather, opt->ranks));
    MU_CHECK(alloc_counts(&ws->scatter, opt->ranks));
    int n;
    const mu_plan_entry_t *entries = wave_entries(opt, wave, &n);
    const int64_t es = element_bytes(opt);
    for (int k = 0; k < n; k++) {
        const mu_param_t *p = &opt->layout->params[entries[k].param];
        const int64_t mine =
            mu_exchange_rows(opt, entries[k].param, opt->rank, NULL) * p->cols * es;
        ws->gather.send_counts[entries[k].owner] += mine;
        ws->scatter.recv_counts[entries[k].owner] += mine;
        if (entries[k].owner != opt->rank)
            continue;
        ws->full_elements += 2 * p->rows * p->cols;
        for (int r = 0; r < opt->ranks; r++) {
            const int64_t theirs = mu_exchange_rows(opt, entries[k].param, r, NULL) * p->cols * es;
            ws->gather.recv_counts[r] += theirs;
            ws->scatter.send_counts[r] += theirs;
        }
    }
    finish_displacements(&ws->gather, opt->ranks);
    finish_displacements(&ws->scatter, opt->ranks);
    return MU_OK;
}

static mu_status_t alloc_buffers(mu_optimizer_t *opt)
{
    int64_t most[4] = {1, 1, 1, 1}, full = 1;
    for (int w = 0; w < opt->plan->wave_count; w++) {
        const wave_schedule_t *ws = &opt->waves[w];
        const int64_t sizes[4] = {ws->gather.send_total, ws->gather.recv_total,
                                  ws->scatter.send_total, ws->scatter.recv_total};
        for (int i = 0; i < 4; i++)
            most[i] = sizes[i] > most[i] ? sizes[i] : most[i];
        full = ws->full_elements > full ? ws->full_elements : full;
    }
    const mu_dtype_t dt = opt->layout->settings.exchange_dtype;
    const int64_t es = element_bytes(opt);
    for (int s = 0; s < EXCHANGE_SETS; s++) {
        exchange_set_t *set = &opt->sets[s];
        mu_mat_t *bufs[4] = {&set->gather_send, &set->gather_recv, &set->scatter_send,
                             &set->scatter_recv};
        for (int i = 0; i < 4; i++)
            MU_CHECK(mu_k_alloc(opt->be, 1, (most[i] + es - 1) / es, dt, bufs[i]));
    }
    return mu_k_alloc(opt->be, 1, full, MU_DTYPE_F32, &opt->full);
}

mu_status_t mu_exchange_build(mu_optimizer_t *opt)
{
    opt->waves = calloc((size_t)(opt->plan->wave_count + 1), sizeof *opt->waves);
    if (!opt->waves)
        return mu_error(MU_ERR_NOMEM, "exchange: cannot allocate %d waves", opt->plan->wave_count);
    for (int w = 0; w < opt->plan->wave_count; w++)
        MU_CHECK(schedule_wave(opt, w, &opt->waves[w]));
    MU_CHECK(mu_transit_alloc(opt));
    return alloc_buffers(opt);
}

static void free_counts(alltoall_counts_t *c)
{
    free(c->send_counts);
    free(c->send_displs);
    free(c->recv_counts);
    free(c->recv_displs);
}

void mu_exchange_free(mu_optimizer_t *opt)
{
    for (int w = 0; opt->waves && w < opt->plan->wave_count; w++) {
        free_counts(&opt->waves[w].gather);
        free_counts(&opt->waves[w].scatter);
    }
    free(opt->waves);
    opt->waves = NULL;
    mu_transit_free(opt);
    for (int s = 0; s < EXCHANGE_SETS; s++) {
        exchange_set_t *set = &opt->sets[s];
        mu_comm_wait(opt->comm, &set->gather_req);
        mu_comm_wait(opt->comm, &set->scatter_req);
        mu_k_release(opt->be, &set->gather_send);
        mu_k_release(opt->be, &set->gather_recv);
        mu_k_release(opt->be, &set->scatter_send);
        mu_k_release(opt->be, &set->scatter_recv);
    }
    mu_k_release(opt->be, &opt->full);
}

/* A rows x cols view into a 1 x n exchange buffer, byte_offset bytes from its start. */
static mu_mat_t segment(const mu_mat_t *buf, int64_t byte_offset, int64_t rows, int64_t cols)
{
    return (mu_mat_t){.rows = rows,
                      .cols = cols,
                      .ld = cols > 0 ? cols : 1,
                      .dtype = buf->dtype,
                      .data = (char *)buf->data + byte_offset};
}

/* Rows [begin, begin + rows) of a full row-major matrix view. */
static mu_mat_t row_block(const mu_mat_t *m, int64_t begin, int64_t rows)
{
    mu_mat_t v = *m;
    v.rows = rows;
    v.data = (char *)m->data + (size_t)(begin * m->ld) * mu_dtype_size(m->dtype);
    return v;
}

void mu_exchange_full_views(mu_optimizer_t *opt, int wave, int entry, mu_mat_t *g, mu_mat_t *q)
{
    int n;
    const mu_plan_entry_t *entries = wave_entries(opt, wave, &n);
    int64_t offset = 0;
    for (int k = 0; k < entry; k++)
        if (entries[k].owner == opt->rank) {
            const mu_param_t *p = &opt->layout->params[entries[k].param];
            offset += 2 * p->rows * p->cols;
        }
    const mu_param_t *p = &opt->layout->params[entries[entry].param];
    float *base = (float *)opt->full.data + offset;
    *g = (mu_mat_t){p->rows, p->cols, p->cols, MU_DTYPE_F32, base};
    *q = (mu_mat_t){p->rows, p->cols, p->cols, MU_DTYPE_F32, base + p->rows * p->cols};
}

static exchange_set_t *set_of(mu_optimizer_t *opt, int wave)
{
    return &opt->sets[wave % EXCHANGE_SETS];
}

/* Copies a matrix block into an exchange buffer segment (to_buffer) or back out of it. */
static mu_status_t move(mu_optimizer_t *opt, mu_mat_t *block, mu_mat_t *seg, bool to_buffer)
{
    return to_buffer ? mu_k_copy(opt->be, block, seg) : mu_k_copy(opt->be, seg, block);
}

/* This rank's rows of every wave matrix (its g views) <-> a buffer grouped by owner: packs the
 * gather (U out) and unpacks the scatter (O in). */
static mu_status_t move_shards(mu_optimizer_t *opt, int wave, const int64_t *displs, mu_mat_t *buf,
                               bool to_buffer, int64_t *cursor)
{
    memcpy(cursor, displs, sizeof *cursor * (size_t)opt->ranks);
    int n;
    const mu_plan_entry_t *entries = wave_entries(opt, wave, &n);
    for (int k = 0; k < n; k++) {
        param_state_t *ps = &opt->params[entries[k].param];
        const int64_t rows = ps->row_end - ps->row_begin;
        if (rows == 0)
            continue;
        mu_mat_t seg = segment(buf, cursor[entries[k].owner], rows, ps->g.cols);
        MU_CHECK(move(opt, &ps->g, &seg, to_buffer));
        cursor[entries[k].owner] += rows * ps->g.cols * element_bytes(opt);
    }
    return MU_OK;
}

/* An owner's full matrices (G or Q) <-> a buffer grouped by peer rank: unpacks the gather
 * (assembling G from every rank's rows) and packs the scatter (every rank's rows of Q). */
static mu_status_t move_owned(mu_optimizer_t *opt, int wave, const int64_t *displs, mu_mat_t *buf,
                              bool to_buffer, int64_t *cursor)
{
    memcpy(cursor, displs, sizeof *cursor * (size_t)opt->ranks);
    int n;
    const mu_plan_entry_t *entries = wave_entries(opt, wave, &n);
    for (int k = 0; k < n; k++) {
        if (entries[k].owner != opt->rank)
            continue;
        mu_mat_t g, q;
        mu_exchange_full_views(opt, wave, k, &g, &q);
        const mu_mat_t *full = to_buffer ? &q : &g;
        for (int r = 0; r < opt->ranks; r++) {
            int64_t begin;
            const int64_t rows = mu_exchange_rows(opt, entries[k].param, r, &begin);
            if (rows == 0)
                continue;
            mu_mat_t block = row_block(full, begin, rows);
            mu_mat_t seg = segment(buf, cursor[r], rows, full->cols);
            MU_CHECK(move(opt, &block, &seg, to_buffer));
            cursor[r] += rows * full->cols * element_bytes(opt);
        }
    }
    return MU_OK;
}

typedef enum walk { PACK_GATHER, UNPACK_GATHER, PACK_SCATTER, UNPACK_SCATTER } walk_t;

static mu_status_t walk_buffers(mu_optimizer_t *opt, int wave, walk_t walk)
{
    int64_t *cursor = malloc(sizeof *cursor * (size_t)opt->ranks);
    if (!cursor)
        return mu_error(MU_ERR_NOMEM, "rank %d: exchange: cannot allocate", opt->rank);
    exchange_set_t *set = set_of(opt, wave);
    const wave_schedule_t *ws = &opt->waves[wave];
    mu_status_t status;
    switch (walk) {
    case PACK_GATHER:
        status = move_shards(opt, wave, ws->gather.send_displs, &set->gather_send, true, cursor);
        break;
    case UNPACK_GATHER:
        status = move_owned(opt, wave, ws->gather.recv_displs, &set->gather_recv, false, cursor);
        break;
    case PACK_SCATTER:
        status = move_owned(opt, wave, ws->scatter.send_displs, &set->scatter_send, true, cursor);
        break;
    default:
        status = move_shards(opt, wave, ws->scatter.recv_displs, &set->scatter_recv, false, cursor);
    }
    free(cursor);
    return status;
}

static mu_alltoallv_args_t args_of(const alltoall_counts_t *c, const mu_mat_t *send, mu_mat_t *recv)
{
    return (mu_alltoallv_args_t){send->data, c->send_counts, c->send_displs,
                                 recv->data, c->recv_counts, c->recv_displs};
}

mu_status_t mu_exchange_post_gather(mu_optimizer_t *opt, int wave)
{
    exchange_set_t *set = set_of(opt, wave);
    MU_CHECK(walk_buffers(opt, wave, PACK_GATHER));
    const mu_alltoallv_args_t a =
        args_of(&opt->waves[wave].gather, &set->gather_send, &set->gather_recv);
    return mu_comm_ialltoallv(opt->comm, &a, &set->gather_req);
}

/* Injected stall and kill: inside the step's first exchange wait, where peers wait too. */
static void stall_or_die(const mu_optimizer_t *opt, int wave)
{
    const long step = opt->steps_done + 1;
    if (wave != 0)
        return;
    const mu_fault_t *f = mu_fault_fire(MU_FAULT_STALL, opt->rank, step, NULL);
    if (f) {
        const struct timespec t = {f->ms / 1000, (f->ms % 1000) * 1000000L};
        nanosleep(&t, NULL);
    }
    if (mu_fault_fire(MU_FAULT_KILL, opt->rank, step, NULL)) {
        fflush(stderr);
        raise(SIGKILL);
    }
}

mu_status_t mu_exchange_wait_gather(mu_optimizer_t *opt, int wave)
{
    stall_or_die(opt, wave);
    MU_CHECK(mu_comm_wait(opt->comm, &set_of(opt, wave)->gather_req));
    if (opt->verify_transit)
        MU_CHECK(mu_transit_verify(opt, wave, true));
    return walk_buffers(opt, wave, UNPACK_GATHER);
}

mu_status_t mu_exchange_post_scatter(mu_optimizer_t *opt, int wave)
{
    exchange_set_t *set = set_of(opt, wave);
    MU_CHECK(walk_buffers(opt, wave, PACK_SCATTER));
    const mu_alltoallv_args_t a =
        args_of(&opt->waves[wave].scatter, &set->scatter_send, &set->scatter_recv);
    return mu_comm_ialltoallv(opt->comm, &a, &set->scatter_req);
}

mu_status_t mu_exchange_wait_scatter(mu_optimizer_t *opt, int wave)
{
    MU_CHECK(mu_comm_wait(opt->comm, &set_of(opt, wave)->scatter_req));
    if (opt->verify_transit)
        MU_CHECK(mu_transit_verify(opt, wave, false));
    return walk_buffers(opt, wave, UNPACK_SCATTER);
}

/* Nonblocking collectives advance only inside MPI calls: poke the ones in flight. */
void mu_exchange_progress(mu_optimizer_t *opt)
{
    for (int s = 0; s < EXCHANGE_SETS; s++) {
        bool done;
        if (opt->sets[s].gather_req)
            mu_comm_test(opt->comm, opt->sets[s].gather_req, &done);
        if (opt->sets[s].scatter_req)
            mu_comm_test(opt->comm, opt->sets[s].scatter_req, &done);
    }
}
