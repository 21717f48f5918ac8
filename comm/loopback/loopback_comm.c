/*
 * The loopback comm backend: one rank talking to itself. Collectives reduce to copies, so the
 * shard logic can be tested without launching MPI.
 */
#include <stdlib.h>
#include <string.h>

#include "comm/comm_impl.h"

static mu_status_t loop_alltoallv(mu_comm_t *c, const mu_alltoallv_args_t *a)
{
    (void)c;
    if (a->send_counts[0] != a->recv_counts[0])
        return mu_error(MU_ERR_INVALID, "loopback alltoallv: sends %lld bytes, receives %lld",
                        (long long)a->send_counts[0], (long long)a->recv_counts[0]);
    if (a->send_counts[0] > 0)
        memmove((char *)a->recv + a->recv_displs[0], (const char *)a->send + a->send_displs[0],
                (size_t)a->send_counts[0]);
    return MU_OK;
}

static mu_status_t loop_ialltoallv(mu_comm_t *c, const mu_alltoallv_args_t *a,
                                   mu_comm_request_t **req)
{
    MU_CHECK(loop_alltoallv(c, a));
    *req = calloc(1, sizeof **req);
    if (!*req)
        return mu_error(MU_ERR_NOMEM, "loopback: cannot allocate a request");
    return MU_OK;
}

static mu_status_t loop_test(mu_comm_t *c, mu_comm_request_t *req, bool *done)
{
    (void)c;
    (void)req;
    *done = true;
    return MU_OK;
}

static mu_status_t loop_wait(mu_comm_t *c, mu_comm_request_t **req)
{
    (void)c;
    free(*req);
    *req = NULL;
    return MU_OK;
}

static mu_status_t loop_allreduce(mu_comm_t *c, void *buf, int64_t count, mu_comm_type_t type,
                                  mu_comm_op_t op)
{
    (void)c, (void)buf, (void)count, (void)type, (void)op;
    return MU_OK; /* the reduction over one rank is its own value */
}

static mu_status_t loop_reduce(mu_comm_t *c, void *buf, int64_t count, mu_comm_type_t type,
                               mu_comm_op_t op, int root)
{
    (void)root;
    return loop_allreduce(c, buf, count, type, op);
}

static mu_status_t loop_bcast(mu_comm_t *c, void *buf, int64_t bytes, int root)
{
    (void)c, (void)buf, (void)bytes, (void)root;
    return MU_OK;
}

static mu_status_t loop_gatherv(mu_comm_t *c, const void *send, int64_t bytes, void *recv,
                                const int64_t *counts, const int64_t *displs, int root)
{
    (void)c, (void)root;
    if (counts[0] != bytes)
        return mu_error(MU_ERR_INVALID, "loopback gatherv: %lld bytes into %lld", (long long)bytes,
                        (long long)counts[0]);
    if (bytes > 0)
        memmove((char *)recv + displs[0], send, (size_t)bytes);
    return MU_OK;
}

static mu_status_t loop_barrier(mu_comm_t *c)
{
    (void)c;
    return MU_OK;
}

static bool loop_can_use(char *why, size_t why_len)
{
    (void)why, (void)why_len;
    return true;
}

static mu_status_t loop_init(mu_comm_t *c)
{
    c->rank = 0;
    c->size = 1;
    c->state = NULL;
    return MU_OK;
}

static void loop_fini(mu_comm_t *c)
{
    (void)c;
}

const struct mu_comm_ops mu_comm_loopback_ops = {
    .name = "loopback",
    .can_use = loop_can_use,
    .init = loop_init,
    .fini = loop_fini,
    .alltoallv = loop_alltoallv,
    .ialltoallv = loop_ialltoallv,
    .test = loop_test,
    .wait = loop_wait,
    .allreduce = loop_allreduce,
    .reduce = loop_reduce,
    .bcast = loop_bcast,
    .gatherv = loop_gatherv,
    .barrier = loop_barrier,
};
