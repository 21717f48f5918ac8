/* Registry, argument checks and dispatch for the comm ops table (see comm/comm.h). */
#include <stdlib.h>
#include <string.h>

#include "comm/comm_impl.h"
#include "core/knobs.h"
#include "core/log.h"

/* Automatic choice stops at the first usable of mpi and loopback; nccl is named explicitly. */
static const struct mu_comm_ops *const registry[] = {
    &mu_comm_mpi_ops,
    &mu_comm_loopback_ops,
#ifdef MUOND_HAVE_NCCL
    &mu_comm_nccl_ops,
#endif
};
enum { REGISTRY_SIZE = sizeof registry / sizeof registry[0] };

static mu_status_t start(const struct mu_comm_ops *ops, mu_comm_t **out)
{
    mu_comm_t *c = calloc(1, sizeof *c);
    if (!c)
        return mu_error(MU_ERR_NOMEM, "cannot allocate a communicator");
    c->ops = ops;
    const mu_status_t status = ops->init(c);
    if (status != MU_OK) {
        free(c);
        MU_CHECK(status);
    }
    MU_LOG(MU_LOG_INFO, MU_SUB_COMM, "communicator: %s, rank %d of %d", ops->name, c->rank,
           c->size);
    *out = c;
    return MU_OK;
}

mu_status_t mu_comm_create(const char *name, mu_comm_t **out)
{
    if (!out)
        return mu_error(MU_ERR_INVALID, "comm: null output");
    *out = NULL;
    const char *env = mu_knob(MU_KNOB_COMM);
    if ((!name || strcmp(name, "auto") == 0) && env)
        name = env;
    const bool automatic = !name || strcmp(name, "auto") == 0;
    for (int i = 0; i < REGISTRY_SIZE; i++) {
        if (!automatic && strcmp(name, registry[i]->name) != 0)
            continue;
        char why[256] = "unknown reason";
        if (registry[i]->can_use(why, sizeof why))
            return start(registry[i], out);
        if (!automatic)
            return mu_error(MU_ERR_NOTSUP, "comm backend '%s' cannot run here: %s", name, why);
        MU_LOG(MU_LOG_DEBUG, MU_SUB_COMM, "comm %s unavailable: %s", registry[i]->name, why);
    }
    if (!automatic && strcmp(name, "nccl") == 0)
        return mu_error(MU_ERR_NOTSUP, "comm backend 'nccl': this build has no NCCL "
                                       "(configure with MUOND_CUDA=ON and NCCL installed)");
    return mu_error(MU_ERR_INVALID, "unknown comm backend '%s' (auto, mpi, nccl or loopback)",
                    name ? name : "(null)");
}

mu_status_t mu_comm_configure(mu_comm_t *c, const mu_comm_config_t *cfg)
{
    if (!c || !cfg)
        return mu_error(MU_ERR_INVALID, "comm configure: null argument");
    return c->ops->configure ? c->ops->configure(c, cfg) : MU_OK;
}

bool mu_comm_broken(const mu_comm_t *c)
{
    if (!c)
        return false;
    if (c->ops->broken)
        return c->ops->broken(c);
    return c->ops->host_side && mu_comm_broken(c->ops->host_side(c));
}

bool mu_comm_compiled_in(const char *name)
{
    for (int i = 0; i < REGISTRY_SIZE; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return true;
    return false;
}

void mu_comm_destroy(mu_comm_t **c)
{
    if (!c || !*c)
        return;
    (*c)->ops->fini(*c);
    free(*c);
    *c = NULL;
}

int mu_comm_rank(const mu_comm_t *c)
{
    return c->rank;
}

int mu_comm_size(const mu_comm_t *c)
{
    return c->size;
}

const char *mu_comm_name(const mu_comm_t *c)
{
    return c->ops->name;
}

static mu_status_t check_counts(const mu_comm_t *c, const int64_t *counts, const int64_t *displs,
                                const char *what)
{
    for (int r = 0; r < c->size; r++)
        if (counts[r] < 0 || displs[r] < 0)
            return mu_error(MU_ERR_INVALID,
                            "rank %d: %s: negative count or displacement for "
                            "rank %d",
                            c->rank, what, r);
    return MU_OK;
}

static mu_status_t check_alltoallv(const mu_comm_t *c, const mu_alltoallv_args_t *a)
{
    if (!c || !a || !a->send_counts || !a->send_displs || !a->recv_counts || !a->recv_displs)
        return mu_error(MU_ERR_INVALID, "alltoallv: null argument");
    MU_CHECK(check_counts(c, a->send_counts, a->send_displs, "alltoallv send"));
    MU_CHECK(check_counts(c, a->recv_counts, a->recv_displs, "alltoallv recv"));
    return MU_OK;
}

mu_status_t mu_comm_alltoallv(mu_comm_t *c, const mu_alltoallv_args_t *a)
{
    MU_CHECK(check_alltoallv(c, a));
    return c->ops->alltoallv(c, a);
}

mu_status_t mu_comm_ialltoallv(mu_comm_t *c, const mu_alltoallv_args_t *a, mu_comm_request_t **req)
{
    MU_CHECK(check_alltoallv(c, a));
    if (!req)
        return mu_error(MU_ERR_INVALID, "ialltoallv: null request");
    return c->ops->ialltoallv(c, a, req);
}

mu_status_t mu_comm_test(mu_comm_t *c, mu_comm_request_t *req, bool *done)
{
    if (!c || !req || !done)
        return mu_error(MU_ERR_INVALID, "comm test: null argument");
    return c->ops->test(c, req, done);
}

mu_status_t mu_comm_wait(mu_comm_t *c, mu_comm_request_t **req)
{
    if (!c || !req)
        return mu_error(MU_ERR_INVALID, "comm wait: null argument");
    if (!*req)
        return MU_OK;
    return c->ops->wait(c, req);
}

mu_status_t mu_comm_allreduce(mu_comm_t *c, void *buf, int64_t count, mu_comm_type_t type,
                              mu_comm_op_t op)
{
    if (!c || (!buf && count > 0) || count < 0)
        return mu_error(MU_ERR_INVALID, "allreduce: bad arguments");
    return c->ops->allreduce(c, buf, count, type, op);
}

mu_status_t mu_comm_reduce(mu_comm_t *c, void *buf, int64_t count, mu_comm_type_t type,
                           mu_comm_op_t op, int root)
{
    if (!c || (!buf && count > 0) || count < 0 || root < 0 || root >= c->size)
        return mu_error(MU_ERR_INVALID, "reduce: bad arguments (root %d)", root);
    return c->ops->reduce(c, buf, count, type, op, root);
}

mu_status_t mu_comm_bcast(mu_comm_t *c, void *buf, int64_t bytes, int root)
{
    if (!c || (!buf && bytes > 0) || bytes < 0 || root < 0 || root >= c->size)
        return mu_error(MU_ERR_INVALID, "bcast: bad arguments (root %d)", root);
    return c->ops->bcast(c, buf, bytes, root);
}

mu_status_t mu_comm_gatherv(mu_comm_t *c, const void *send, int64_t bytes, void *recv,
                            const int64_t *counts, const int64_t *displs, int root)
{
    if (!c || bytes < 0 || root < 0 || root >= c->size)
        return mu_error(MU_ERR_INVALID, "gatherv: bad arguments (root %d)", root);
    if (c->rank == root && (!counts || !displs))
        return mu_error(MU_ERR_INVALID, "gatherv: the root needs counts and displacements");
    if (c->rank == root)
        MU_CHECK(check_counts(c, counts, displs, "gatherv"));
    return c->ops->gatherv(c, send, bytes, recv, counts, displs, root);
}

mu_status_t mu_comm_barrier(mu_comm_t *c)
{
    if (!c)
        return mu_error(MU_ERR_INVALID, "barrier: null communicator");
    return c->ops->barrier(c);
}

mu_status_t mu_comm_agree(mu_comm_t *c, mu_status_t local)
{
    if (local != MU_OK && mu_comm_broken(c)) /* keep the message: it names the missing rank */
        return local;
    /* One collective: every rank adds 1 at its own status, so the sums say how many ranks
     * ended in each status; the worst is the largest one present. */
    int64_t ranks_with[MU_STATUS_COUNT] = {0};
    const int own = (int)local >= 0 && local < MU_STATUS_COUNT ? (int)local : MU_ERR_INVALID;
    ranks_with[own] = 1;
    MU_CHECK(mu_comm_allreduce(c, ranks_with, MU_STATUS_COUNT, MU_COMM_I64, MU_COMM_SUM));
    int worst = MU_OK;
    int64_t failed = 0;
    for (int s = MU_OK + 1; s < MU_STATUS_COUNT; s++) {
        failed += ranks_with[s];
        if (ranks_with[s] > 0)
            worst = s;
    }
    if (worst == MU_OK)
        return MU_OK;
    if (local == MU_OK)
        return mu_error((mu_status_t)worst, "%lld of %d ranks failed (see their messages)",
                        (long long)failed, c->size);
    return local;
}
