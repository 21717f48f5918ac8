/*
 * Checksums of the exchange (corruption in transit): after each all-to-all of a wave, every
 * sender's XXH3-64 of each (peer, matrix) segment it sent travels in a small all-to-all of its
 * own, and every receiver hashes what arrived. A mismatch anywhere is agreed by all ranks and
 * the wave's all-to-all is sent again from the untouched send buffers; a second mismatch
 * stops the job, the receiver naming the sender, the parameter and the step.
 *
 * Segments are walked the way exchange.c packs them: on the shard side (gather send, scatter
 * receive) one segment per wave matrix, to or from its owner; on the owner side (gather
 * receive, scatter send) one per owned matrix and peer rank.
 */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/fault.h"
#include "core/log.h"
#include "shard/optimizer_impl.h"

/* One wave's view of the optimizer's checksum tables (transit_hashes_t). */
typedef struct hash_table {
    int entries; /* n: the wave's matrices */
    uint64_t *sent, *expected, *got;
    int64_t *counts, *displs, *cursor;
} hash_table_t;

/* Hashes every segment of buf (host bytes, displs per peer) into out[peer * n + k]. */
static void hash_walk(const mu_optimizer_t *opt, int wave, bool owner_side, const char *buf,
                      const int64_t *displs, int64_t *cursor, uint64_t *out)
{
    const int first = opt->plan->wave_begin[wave];
    const int n = opt->plan->wave_begin[wave + 1] - first;
    const int64_t es = (int64_t)mu_dtype_size(opt->layout->settings.exchange_dtype);
    memcpy(cursor, displs, sizeof *cursor * (size_t)opt->ranks);
    for (int k = 0; k < n; k++) {
        const mu_plan_entry_t *e = &opt->plan->entries[first + k];
        const int64_t cols = opt->layout->params[e->param].cols;
        if (!owner_side) {
            const int64_t bytes = mu_exchange_rows(opt, e->param, opt->rank, NULL) * cols * es;
            out[e->owner * n + k] = XXH3_64bits(buf + cursor[e->owner], (size_t)bytes);
            cursor[e->owner] += bytes;
            continue;
        }
        for (int r = 0; e->owner == opt->rank && r < opt->ranks; r++) {
            const int64_t bytes = mu_exchange_rows(opt, e->param, r, NULL) * cols * es;
            out[r * n + k] = XXH3_64bits(buf + cursor[r], (size_t)bytes);
            cursor[r] += bytes;
        }
    }
}

/* buf's bytes as the CPU can read them: itself, or a host copy in *staged (to free). */
static mu_status_t host_bytes(mu_optimizer_t *opt, const mu_mat_t *buf, int64_t bytes,
                              const char **out, char **staged)
{
    *staged = NULL;
    *out = buf->data;
    if (mu_backend_host_memory(opt->be))
        return MU_OK;
    *staged = malloc((size_t)bytes + 1);
    if (!*staged)
        return mu_error(MU_ERR_NOMEM, "rank %d: cannot stage an exchange buffer", opt->rank);
    mu_mat_t whole = *buf;
    whole.cols = bytes / (int64_t)mu_dtype_size(buf->dtype);
    whole.ld = whole.cols > 0 ? whole.cols : 1;
    *out = *staged;
    return whole.cols > 0 ? mu_k_download(opt->be, &whole, *staged, buf->dtype, whole.ld) : MU_OK;
}

static int largest_wave(const mu_optimizer_t *opt)
{
    int most = 1;
    for (int w = 0; w < opt->plan->wave_count; w++) {
        const int n = opt->plan->wave_begin[w + 1] - opt->plan->wave_begin[w];
        most = n > most ? n : most;
    }
    return most;
}

mu_status_t mu_transit_alloc(mu_optimizer_t *opt)
{
    const size_t cells = (size_t)opt->ranks * (size_t)largest_wave(opt);
    transit_hashes_t *h = &opt->hashes;
    *h = (transit_hashes_t){.sent = malloc(cells * 8),
                            .expected = malloc(cells * 8),
                            .got = malloc(cells * 8),
                            .counts = malloc(sizeof(int64_t) * (size_t)opt->ranks),
                            .displs = malloc(sizeof(int64_t) * (size_t)opt->ranks),
                            .cursor = malloc(sizeof(int64_t) * (size_t)opt->ranks)};
    if (!h->sent || !h->expected || !h->got || !h->counts || !h->displs || !h->cursor)
        return mu_error(MU_ERR_NOMEM, "rank %d: cannot allocate checksums", opt->rank);
    return MU_OK;
}

void mu_transit_free(mu_optimizer_t *opt)
{
    transit_hashes_t *h = &opt->hashes;
    free(h->sent);
    free(h->expected);
    free(h->got);
    free(h->counts);
    free(h->displs);
    free(h->cursor);
    *h = (transit_hashes_t){0};
}

/* The tables laid out for wave's n matrices, every segment "empty" until hashed. */
static hash_table_t table_for(mu_optimizer_t *opt, int wave)
{
    const int n = opt->plan->wave_begin[wave + 1] - opt->plan->wave_begin[wave];
    transit_hashes_t *h = &opt->hashes;
    const hash_table_t t = {n, h->sent, h->expected, h->got, h->counts, h->displs, h->cursor};
    const uint64_t empty = XXH3_64bits(NULL, 0);
    for (size_t i = 0; i < (size_t)opt->ranks * (size_t)n; i++)
        t.sent[i] = t.got[i] = empty;
    for (int r = 0; r < opt->ranks; r++) {
        t.counts[r] = 8 * (int64_t)n;
        t.displs[r] = 8 * (int64_t)n * r;
    }
    return t;
}

/* The direction of one all-to-all: which buffers, and which side of the walk each is. */
typedef struct direction {
    const char *name;
    const alltoall_counts_t *counts;
    mu_mat_t *send, *recv;
    bool send_owner_side;
} direction_t;

/* Receiver: the first segment that differs, as "rank S -> rank R, PARAM"; returns how many. */
static int mismatches(const mu_optimizer_t *opt, int wave, const hash_table_t *t, char *where,
                      size_t len)
{
    int count = 0;
    for (int r = 0; r < opt->ranks; r++)
        for (int k = 0; k < t->entries; k++) {
            const int i = r * t->entries + k;
            if (t->got[i] == t->expected[i])
                continue;
            if (count++ == 0)
                snprintf(
                    where, len, "rank %d -> rank %d, %s", r, opt->rank,
                    opt->layout->params[opt->plan->entries[opt->plan->wave_begin[wave] + k].param]
                        .name);
        }
    return count;
}

/* Injected bitflip: one bit of the first segment another rank sent here. */
static void flip_a_bit(mu_optimizer_t *opt, const direction_t *d)
{
    if (!mu_backend_host_memory(opt->be)) /* device buffers: not planted (host memory only) */
        return;
    for (int r = 0; r < opt->ranks; r++)
        if (r != opt->rank && d->counts->recv_counts[r] > 0) {
            if (mu_fault_fire(MU_FAULT_BITFLIP, opt->rank, opt->steps_done + 1, NULL))
                ((unsigned char *)d->recv->data)[d->counts->recv_displs[r]] ^= 0x10;
            return;
        }
}

/* One verification of what arrived; *bad receives the agreed number of bad segments. */
static mu_status_t verify_once(mu_optimizer_t *opt, int wave, const direction_t *d, hash_table_t *t,
                               char *where, size_t len, int64_t *bad)
{
    const char *bytes;
    char *staged;
    MU_CHECK(host_bytes(opt, d->send, d->counts->send_total, &bytes, &staged));
    hash_walk(opt, wave, d->send_owner_side, bytes, d->counts->send_displs, t->cursor, t->sent);
    free(staged);
    MU_CHECK(host_bytes(opt, d->recv, d->counts->recv_total, &bytes, &staged));
    hash_walk(opt, wave, !d->send_owner_side, bytes, d->counts->recv_displs, t->cursor, t->got);
    free(staged);
    const mu_alltoallv_args_t a = {t->sent,     t->counts, t->displs,
                                   t->expected, t->counts, t->displs};
    MU_CHECK(mu_comm_alltoallv(opt->comm, &a));
    *bad = mismatches(opt, wave, t, where, len);
    return mu_comm_allreduce(opt->comm, bad, 1, MU_COMM_I64, MU_COMM_SUM);
}

static mu_status_t verify(mu_optimizer_t *opt, int wave, const direction_t *d, hash_table_t *t)
{
    const long step = opt->steps_done + 1;
    char where[256] = "";
    int64_t bad = 0;
    for (int attempt = 0;; attempt++) {
        flip_a_bit(opt, d);
        MU_CHECK(verify_once(opt, wave, d, t, where, sizeof where, &bad));
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
        MU_CHECK(mu_comm_alltoallv(opt->comm, &a));
    }
    const mu_status_t mine =
        where[0] ? mu_error(MU_ERR_PROTOCOL,
                            "step %ld: the %s of wave %d arrived corrupted twice (%s; checksum "
                            "mismatch after one resend); stopping",
                            step, d->name, wave, where)
                 : MU_OK;
    MU_CHECK(mu_comm_agree(opt->comm, mine));
    return mu_error(MU_ERR_PROTOCOL, "step %ld: corrupted exchange (see the receiver)", step);
}

mu_status_t mu_transit_verify(mu_optimizer_t *opt, int wave, bool gather)
{
    exchange_set_t *set = &opt->sets[wave % EXCHANGE_SETS];
    const wave_schedule_t *ws = &opt->waves[wave];
    const direction_t d =
        gather
            ? (direction_t){"gather", &ws->gather, &set->gather_send, &set->gather_recv, false}
            : (direction_t){"scatter", &ws->scatter, &set->scatter_send, &set->scatter_recv, true};
    hash_table_t t = table_for(opt, wave);
    return verify(opt, wave, &d, &t);
}
