/*
 * Checksums of the exchange (corruption in transit): after each all-to-all of a wave, every
 * sender's XXH3-64 of each (peer, matrix) segment it sent travels in a small all-to-all of its
 * own, and every receiver hashes what arrived. A mismatch anywhere is agreed by all ranks and
 * the wave's all-to-all is sent again from the untouched send buffers; a second mismatch
 * stops the job, the receiver naming the sender, the parameter and the step.
 *
 * Segments are walked in the exchange's one segment order (mu_exchange_walk), the order the
 * buffers were packed in.
 */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/fault.h"
#include "core/log.h"
#include "kernels/host_view.h"
#include "shard/exchange_impl.h"

/* One wave's view of the checksum tables (transit_hashes_t). */
typedef struct hash_table {
    int entries; /* n: the wave's matrices */
    uint64_t *sent, *expected, *got;
    int64_t *counts, *displs;
} hash_table_t;

/* What a hashing walk reads and where it writes: out[peer * n + k]. */
typedef struct hashing {
    const char *bytes;
    uint64_t *out;
    int entries;
} hashing_t;

static mu_status_t hash_segment(void *ctx, const exchange_segment_t *seg)
{
    const hashing_t *h = ctx;
    h->out[seg->peer * h->entries + seg->entry] =
        XXH3_64bits(h->bytes + seg->offset, (size_t)seg->bytes);
    return MU_OK;
}

/* Hashes every segment of buf (bytes in use, displs per peer) through a host view. */
static mu_status_t hash_buffer(mu_exchange_t *ex, int wave, exchange_side_t side,
                               const mu_mat_t *buf, int64_t bytes, const int64_t *displs,
                               const hash_table_t *t, uint64_t *out)
{
    mu_mat_t used = *buf;
    used.cols = bytes / (int64_t)mu_dtype_size(buf->dtype);
    used.ld = used.cols > 0 ? used.cols : 1;
    mu_host_view_t v;
    MU_CHECK(mu_host_view_begin(ex->env->be, &used, buf->dtype, MU_HOST_READ, &v));
    hashing_t h = {v.data, out, t->entries};
    const mu_status_t status = mu_exchange_walk(ex, wave, side, displs, hash_segment, &h);
    mu_host_view_release(&v);
    MU_CHECK(status);
    return MU_OK;
}

mu_status_t mu_transit_alloc(mu_exchange_t *ex)
{
    const int ranks = ex->env->ranks;
    const size_t cells = (size_t)ranks * (size_t)mu_shard_plan_largest_wave(ex->env->plan);
    transit_hashes_t *h = &ex->hashes;
    *h = (transit_hashes_t){.sent = malloc(cells * 8),
                            .expected = malloc(cells * 8),
                            .got = malloc(cells * 8),
                            .counts = malloc(sizeof(int64_t) * (size_t)ranks),
                            .displs = malloc(sizeof(int64_t) * (size_t)ranks)};
    if (!h->sent || !h->expected || !h->got || !h->counts || !h->displs)
        return mu_error(MU_ERR_NOMEM, "cannot allocate checksums");
    return MU_OK;
}

void mu_transit_free(mu_exchange_t *ex)
{
    transit_hashes_t *h = &ex->hashes;
    free(h->sent);
    free(h->expected);
    free(h->got);
    free(h->counts);
    free(h->displs);
    *h = (transit_hashes_t){0};
}

/* The tables laid out for wave's n matrices, every segment "empty" until hashed. */
static hash_table_t table_for(mu_exchange_t *ex, int wave)
{
    const mu_shard_plan_t *plan = ex->env->plan;
    const int n = plan->wave_begin[wave + 1] - plan->wave_begin[wave], ranks = ex->env->ranks;
    transit_hashes_t *h = &ex->hashes;
    const hash_table_t t = {n, h->sent, h->expected, h->got, h->counts, h->displs};
    const uint64_t empty = XXH3_64bits(NULL, 0);
    for (size_t i = 0; i < (size_t)ranks * (size_t)n; i++)
        t.sent[i] = t.got[i] = empty;
    for (int r = 0; r < ranks; r++) {
        t.counts[r] = 8 * (int64_t)n;
        t.displs[r] = 8 * (int64_t)n * r;
    }
    return t;
}

/* The direction of one all-to-all: which buffers, and which side of the walk is sent. */
typedef struct direction {
    const char *name;
    const alltoall_counts_t *counts;
    mu_mat_t *send, *recv;
    exchange_side_t send_side;
} direction_t;

/* Receiver: the first segment that differs, as "rank S -> rank R, PARAM"; returns how many. */
static int mismatches(const mu_exchange_t *ex, int wave, const hash_table_t *t, char *where,
                      size_t len)
{
    const mu_shard_env_t *env = ex->env;
    int count = 0;
    for (int r = 0; r < env->ranks; r++)
        for (int k = 0; k < t->entries; k++) {
            const int i = r * t->entries + k;
            if (t->got[i] == t->expected[i])
                continue;
            const int param = env->plan->entries[env->plan->wave_begin[wave] + k].param;
            if (count++ == 0)
                snprintf(where, len, "rank %d -> rank %d, %s", r, env->rank,
                         env->layout->params[param].name);
        }
    return count;
}

/* Injected bitflip: one bit of the first segment another rank sent here. */
static void flip_a_bit(const mu_exchange_t *ex, const direction_t *d, long step)
{
    const mu_shard_env_t *env = ex->env;
    if (!mu_backend_host_memory(env->be)) /* device buffers: not planted (host memory only) */
        return;
    for (int r = 0; r < env->ranks; r++)
        if (r != env->rank && d->counts->recv_counts[r] > 0) {
            if (mu_fault_fire(MU_FAULT_BITFLIP, env->rank, step, NULL))
                ((unsigned char *)d->recv->data)[d->counts->recv_displs[r]] ^= 0x10;
            return;
        }
}

static exchange_side_t other_side(exchange_side_t side)
{
    return side == SHARD_SIDE ? OWNER_SIDE : SHARD_SIDE;
}

/* One verification of what arrived; *bad receives the agreed number of bad segments. */
static mu_status_t verify_once(mu_exchange_t *ex, int wave, const direction_t *d, hash_table_t *t,
                               char *where, size_t len, int64_t *bad)
{
    const alltoall_counts_t *c = d->counts;
    MU_CHECK(
        hash_buffer(ex, wave, d->send_side, d->send, c->send_total, c->send_displs, t, t->sent));
    MU_CHECK(hash_buffer(ex, wave, other_side(d->send_side), d->recv, c->recv_total, c->recv_displs,
                         t, t->got));
    const mu_alltoallv_args_t a = {t->sent,     t->counts, t->displs,
                                   t->expected, t->counts, t->displs};
    MU_CHECK(mu_comm_alltoallv(ex->env->comm, &a));
    *bad = mismatches(ex, wave, t, where, len);
    return mu_comm_allreduce(ex->env->comm, bad, 1, MU_COMM_I64, MU_COMM_SUM);
}

static mu_status_t verify(mu_exchange_t *ex, int wave, const direction_t *d, hash_table_t *t,
                          long step)
{
    char where[256] = "";
    int64_t bad = 0;
    for (int attempt = 0;; attempt++) {
        flip_a_bit(ex, d, step);
        MU_CHECK(verify_once(ex, wave, d, t, where, sizeof where, &bad));
        if (bad == 0)
            return MU_OK;
        if (attempt == 1)
            break;
        if (where[0])
            MU_LOG(MU_LOG_WARN, MU_SUB_SHARD,
                   "step %ld: checksum mismatch in the %s of wave %d (%s); sending it again", step,
                   d->name, wave, where);
        const mu_alltoallv_args_t a = {d->send->data,          d->counts->send_counts,
                                       d->counts->send_displs, d->recv->data,
                                       d->counts->recv_counts, d->counts->recv_displs};
        MU_CHECK(mu_comm_alltoallv(ex->env->comm, &a));
    }
    const mu_status_t mine =
        where[0] ? mu_error(MU_ERR_PROTOCOL,
                            "step %ld: the %s of wave %d arrived corrupted twice (%s; checksum "
                            "mismatch after one resend); stopping",
                            step, d->name, wave, where)
                 : MU_OK;
    MU_CHECK(mu_comm_agree(ex->env->comm, mine));
    return mu_error(MU_ERR_PROTOCOL, "step %ld: corrupted exchange (see the receiver)", step);
}

mu_status_t mu_transit_verify(mu_exchange_t *ex, int wave, bool gather, long step)
{
    exchange_set_t *set = &ex->sets[wave % EXCHANGE_SETS];
    const wave_schedule_t *ws = &ex->waves[wave];
    const direction_t d = gather ? (direction_t){"gather", &ws->gather, &set->gather_send,
                                                 &set->gather_recv, SHARD_SIDE}
                                 : (direction_t){"scatter", &ws->scatter, &set->scatter_send,
                                                 &set->scatter_recv, OWNER_SIDE};
    hash_table_t t = table_for(ex, wave);
    return verify(ex, wave, &d, &t, step);
}
