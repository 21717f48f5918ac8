/*
 * The MPI comm backend: host buffers, MPI_BYTE payloads, a duplicate of MPI_COMM_WORLD whose
 * errors return to the caller (MPI_ERRORS_RETURN) instead of aborting the job, so that every
 * failure is reported with the rank and the call.
 */
#include <limits.h>
#include <mpi.h>
#include <stdlib.h>

#include "comm/comm_impl.h"
#include "comm/mpi/mpi_comm.h"

typedef struct mpi_state {
    MPI_Comm comm;
} mpi_state_t;

typedef struct mpi_request {
    MPI_Request request;
    int *counts; /* 4 x size ints: MPI reads them until the operation completes */
} mpi_request_t;

/* The one adapter from MPI error codes to muond statuses. */
#define MU_MPI_CHECK(c, call)                                                                      \
    do {                                                                                           \
        const int mu_mpi_rc_ = (call);                                                             \
        if (mu_mpi_rc_ != MPI_SUCCESS)                                                             \
            return mpi_failure((c), #call, mu_mpi_rc_);                                            \
    } while (0)

static mu_status_t mpi_failure(const mu_comm_t *c, const char *call, int rc)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    return mu_error(MU_ERR_MPI, "rank %d: %s failed: %.*s", c->rank, call, len, text);
}

static MPI_Comm world(const mu_comm_t *c)
{
    return ((const mpi_state_t *)c->state)->comm;
}

static MPI_Datatype to_mpi(mu_comm_type_t type)
{
    switch (type) {
    case MU_COMM_F32:
        return MPI_FLOAT;
    case MU_COMM_F64:
        return MPI_DOUBLE;
    default:
        return MPI_INT64_T;
    }
}

static MPI_Op to_mpi_op(mu_comm_op_t op)
{
    return op == MU_COMM_SUM ? MPI_SUM : op == MU_COMM_MAX ? MPI_MAX : MPI_MIN;
}

/* MPI counts are int: refuse what does not fit rather than truncate. */
static mu_status_t to_int(const mu_comm_t *c, int64_t value, const char *what, int *out)
{
    if (value < 0 || value > INT_MAX)
        return mu_error(MU_ERR_INVALID, "rank %d: %s of %lld bytes does not fit MPI's int", c->rank,
                        what, (long long)value);
    *out = (int)value;
    return MU_OK;
}

static mu_status_t to_int_array(const mu_comm_t *c, const int64_t *in, int *out, const char *what)
{
    for (int r = 0; r < c->size; r++)
        MU_CHECK(to_int(c, in[r], what, &out[r]));
    return MU_OK;
}

/* counts = [send counts | send displs | recv counts | recv displs], each size ints. */
static mu_status_t convert_alltoallv(const mu_comm_t *c, const mu_alltoallv_args_t *a, int *counts)
{
    const int p = c->size;
    MU_CHECK(to_int_array(c, a->send_counts, counts, "alltoallv send count"));
    MU_CHECK(to_int_array(c, a->send_displs, counts + p, "alltoallv send displacement"));
    MU_CHECK(to_int_array(c, a->recv_counts, counts + 2 * p, "alltoallv recv count"));
    MU_CHECK(to_int_array(c, a->recv_displs, counts + 3 * p, "alltoallv recv displacement"));
    return MU_OK;
}

static mu_status_t mpi_alltoallv(mu_comm_t *c, const mu_alltoallv_args_t *a)
{
    int *counts = malloc(sizeof(int) * 4 * (size_t)c->size);
    if (!counts)
        return mu_error(MU_ERR_NOMEM, "rank %d: alltoallv: cannot allocate counts", c->rank);
    mu_status_t status = convert_alltoallv(c, a, counts);
    const int p = c->size;
    if (status == MU_OK) {
        const int rc = MPI_Alltoallv(a->send, counts, counts + p, MPI_BYTE, a->recv, counts + 2 * p,
                                     counts + 3 * p, MPI_BYTE, world(c));
        if (rc != MPI_SUCCESS)
            status = mpi_failure(c, "MPI_Alltoallv", rc);
    }
    free(counts);
    return status;
}

static mu_status_t mpi_ialltoallv(mu_comm_t *c, const mu_alltoallv_args_t *a,
                                  mu_comm_request_t **req)
{
    mu_comm_request_t *r = calloc(1, sizeof *r);
    mpi_request_t *impl = calloc(1, sizeof *impl);
    int *counts = malloc(sizeof(int) * 4 * (size_t)c->size);
    mu_status_t status = MU_OK;
    if (!r || !impl || !counts) {
        status = mu_error(MU_ERR_NOMEM, "rank %d: ialltoallv: cannot allocate", c->rank);
        goto out_with_allocations;
    }
    MU_CHECK_GOTO(status, convert_alltoallv(c, a, counts), out_with_allocations);
    const int p = c->size;
    const int rc = MPI_Ialltoallv(a->send, counts, counts + p, MPI_BYTE, a->recv, counts + 2 * p,
                                  counts + 3 * p, MPI_BYTE, world(c), &impl->request);
    if (rc != MPI_SUCCESS) {
        status = mpi_failure(c, "MPI_Ialltoallv", rc);
        goto out_with_allocations;
    }
    impl->counts = counts;
    r->impl = impl;
    *req = r;
    return MU_OK;
out_with_allocations:
    free(counts);
    free(impl);
    free(r);
    return status;
}

static mu_status_t mpi_test(mu_comm_t *c, mu_comm_request_t *req, bool *done)
{
    mpi_request_t *impl = req->impl;
    int flag = 0;
    MU_MPI_CHECK(c, MPI_Test(&impl->request, &flag, MPI_STATUS_IGNORE));
    *done = flag != 0;
    return MU_OK;
}

static mu_status_t mpi_wait(mu_comm_t *c, mu_comm_request_t **req)
{
    mpi_request_t *impl = (*req)->impl;
    const int rc = MPI_Wait(&impl->request, MPI_STATUS_IGNORE);
    free(impl->counts);
    free(impl);
    free(*req);
    *req = NULL;
    if (rc != MPI_SUCCESS)
        return mpi_failure(c, "MPI_Wait", rc);
    return MU_OK;
}

static mu_status_t mpi_allreduce(mu_comm_t *c, void *buf, int64_t count, mu_comm_type_t type,
                                 mu_comm_op_t op)
{
    int n = 0;
    MU_CHECK(to_int(c, count, "allreduce count", &n));
    MU_MPI_CHECK(c, MPI_Allreduce(MPI_IN_PLACE, buf, n, to_mpi(type), to_mpi_op(op), world(c)));
    return MU_OK;
}

static mu_status_t mpi_reduce(mu_comm_t *c, void *buf, int64_t count, mu_comm_type_t type,
                              mu_comm_op_t op, int root)
{
    int n = 0;
    MU_CHECK(to_int(c, count, "reduce count", &n));
    const void *send = c->rank == root ? MPI_IN_PLACE : buf;
    MU_MPI_CHECK(c, MPI_Reduce(send, buf, n, to_mpi(type), to_mpi_op(op), root, world(c)));
    return MU_OK;
}

static mu_status_t mpi_bcast(mu_comm_t *c, void *buf, int64_t bytes, int root)
{
    int n = 0;
    MU_CHECK(to_int(c, bytes, "bcast", &n));
    MU_MPI_CHECK(c, MPI_Bcast(buf, n, MPI_BYTE, root, world(c)));
    return MU_OK;
}

static mu_status_t mpi_gatherv(mu_comm_t *c, const void *send, int64_t bytes, void *recv,
                               const int64_t *counts, const int64_t *displs, int root)
{
    int n = 0, *icounts = NULL;
    MU_CHECK(to_int(c, bytes, "gatherv send", &n));
    mu_status_t status = MU_OK;
    if (c->rank == root) {
        icounts = malloc(sizeof(int) * 2 * (size_t)c->size);
        if (!icounts)
            return mu_error(MU_ERR_NOMEM, "rank %d: gatherv: cannot allocate", c->rank);
        status = to_int_array(c, counts, icounts, "gatherv count");
        if (status == MU_OK)
            status = to_int_array(c, displs, icounts + c->size, "gatherv displacement");
    }
    if (status == MU_OK) {
        const int rc = MPI_Gatherv(send, n, MPI_BYTE, recv, icounts,
                                   icounts ? icounts + c->size : NULL, MPI_BYTE, root, world(c));
        if (rc != MPI_SUCCESS)
            status = mpi_failure(c, "MPI_Gatherv", rc);
    }
    free(icounts);
    return status;
}

static mu_status_t mpi_barrier(mu_comm_t *c)
{
    MU_MPI_CHECK(c, MPI_Barrier(world(c)));
    return MU_OK;
}

static bool mpi_can_use(char *why, size_t why_len)
{
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (!initialized || finalized)
        snprintf(why, why_len, "the MPI runtime is not initialized");
    return initialized && !finalized;
}

static mu_status_t mpi_init(mu_comm_t *c)
{
    mpi_state_t *s = calloc(1, sizeof *s);
    if (!s)
        return mu_error(MU_ERR_NOMEM, "cannot allocate the MPI communicator state");
    c->state = s;
    c->rank = -1;
    MU_MPI_CHECK(c, MPI_Comm_dup(MPI_COMM_WORLD, &s->comm));
    MU_MPI_CHECK(c, MPI_Comm_set_errhandler(s->comm, MPI_ERRORS_RETURN));
    MU_MPI_CHECK(c, MPI_Comm_rank(s->comm, &c->rank));
    MU_MPI_CHECK(c, MPI_Comm_size(s->comm, &c->size));
    return MU_OK;
}

static void mpi_fini(mu_comm_t *c)
{
    mpi_state_t *s = c->state;
    if (s && s->comm != MPI_COMM_NULL && s->comm != 0)
        MPI_Comm_free(&s->comm);
    free(s);
    c->state = NULL;
}

const struct mu_comm_ops mu_comm_mpi_ops = {
    .name = "mpi",
    .can_use = mpi_can_use,
    .init = mpi_init,
    .fini = mpi_fini,
    .alltoallv = mpi_alltoallv,
    .ialltoallv = mpi_ialltoallv,
    .test = mpi_test,
    .wait = mpi_wait,
    .allreduce = mpi_allreduce,
    .reduce = mpi_reduce,
    .bcast = mpi_bcast,
    .gatherv = mpi_gatherv,
    .barrier = mpi_barrier,
};

mu_status_t mu_comm_mpi_handle(const mu_comm_t *c, MPI_Comm *out)
{
    if (c && c->ops->host_side) /* e.g. nccl: BLACS runs on its MPI side */
        c = c->ops->host_side(c);
    if (!c || c->ops != &mu_comm_mpi_ops)
        return mu_error(MU_ERR_NOTSUP, "the %s communicator has no MPI handle",
                        c ? c->ops->name : "(null)");
    *out = world(c);
    return MU_OK;
}
