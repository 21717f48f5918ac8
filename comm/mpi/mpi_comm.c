/*
 * The MPI comm backend: host buffers, MPI_BYTE payloads, a duplicate of MPI_COMM_WORLD whose
 * errors return to the caller (MPI_ERRORS_RETURN) instead of aborting the job, so that every
 * failure is reported with the rank and the call.
 *
 * Deadlines: every collective is started nonblocking and polled until it completes or the
 * timeout passes (a dead or stalled peer would otherwise hang it forever: Open MPI's shared
 * memory transport does not notice a dead process). On timeout the rank holds a roll call on
 * a second communicator: it pings every peer and waits a short grace for the answers, which
 * every rank gives from inside any wait of its own. The peers that do not answer are the
 * missing ones; the failure names them, and the communicator is marked broken: every later
 * call fails at once, so the caller can report and exit without touching MPI again.
 */
#include <limits.h>
#include <mpi.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm/comm_impl.h"
#include "comm/mpi/mpi_check.h"
#include "comm/mpi/mpi_comm.h"
#include "comm/mpi/mpi_hierarchical.h"
#include "core/knobs.h"
#include "core/log.h"

typedef struct mpi_state {
    MPI_Comm comm;
    MPI_Comm roll;    /* the roll call's own communicator: its messages never meet data */
    double timeout_s; /* per collective */
    bool broken;      /* a deadline passed: the communicator is unusable */
    char why[512];    /* what broke it */
    mu_hier_t *hier;  /* --exchange hierarchical: the node-aware all-to-all, else NULL */
} mpi_state_t;

/* Without --comm-timeout: as long as NCCL's default (comm/nccl), for the largest wave on a
 * slow link. */
static const double MPI_DEFAULT_TIMEOUT_S = 300.0;
/* Polls spin this long before they start sleeping between tests: short collectives keep
 * their latency, long waits leave the core to the ranks that share it. */
static const double SPIN_S = 2e-3;
static const long NAP_NS = 50000;
/* How long a roll call waits for answers: a live peer answers within one poll of its own. */
static const double ROLL_CALL_GRACE_S = 2.0;
enum { TAG_PING = 1, TAG_PONG = 2 };

typedef struct mpi_request {
    MPI_Request request;
    int *counts;        /* 4 x size ints: MPI reads them until the operation completes */
    mu_hier_op_t *hier; /* instead, the stages of a hierarchical all-to-all */
} mpi_request_t;

static MPI_Comm world(const mu_comm_t *c)
{
    return ((const mpi_state_t *)c->state)->comm;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void nap(double waited)
{
    if (waited < SPIN_S) {
        sched_yield();
        return;
    }
    const struct timespec t = {0, NAP_NS};
    nanosleep(&t, NULL);
}

/* Answers every ping that has arrived (a peer's roll call). */
static void answer_roll_calls(const mpi_state_t *s)
{
    for (;;) {
        int flag = 0, token = 0;
        MPI_Status st;
        if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_PING, s->roll, &flag, &st) != MPI_SUCCESS || !flag)
            return;
        MPI_Recv(&token, 1, MPI_INT, st.MPI_SOURCE, TAG_PING, s->roll, MPI_STATUS_IGNORE);
        MPI_Request r;
        if (MPI_Isend(&token, 1, MPI_INT, st.MPI_SOURCE, TAG_PONG, s->roll, &r) == MPI_SUCCESS)
            MPI_Request_free(&r); /* eager: one int */
    }
}

/* Pings every peer and lists, in `missing`, those that do not answer within the grace. */
static int roll_call(const mu_comm_t *c, char *missing, size_t len)
{
    mpi_state_t *s = c->state;
    char *answered = calloc((size_t)c->size, 1);
    int token = c->rank, count = 0, absent = 0;
    for (int r = 0; r < c->size; r++) {
        MPI_Request req;
        if (r != c->rank && MPI_Isend(&token, 1, MPI_INT, r, TAG_PING, s->roll, &req) == 0)
            MPI_Request_free(&req);
    }
    const double start = now_s();
    while (answered && count < c->size - 1 && now_s() - start < ROLL_CALL_GRACE_S) {
        answer_roll_calls(s);
        int flag = 0, reply = 0;
        MPI_Status st;
        if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_PONG, s->roll, &flag, &st) == MPI_SUCCESS && flag) {
            MPI_Recv(&reply, 1, MPI_INT, st.MPI_SOURCE, TAG_PONG, s->roll, MPI_STATUS_IGNORE);
            count += !answered[st.MPI_SOURCE];
            answered[st.MPI_SOURCE] = 1;
        } else {
            nap(now_s() - start);
        }
    }
    size_t used = 0;
    missing[0] = '\0';
    for (int r = 0; answered && r < c->size; r++)
        if (r != c->rank && !answered[r] && used < len)
            used += (size_t)snprintf(missing + used, len - used, "%s%d", absent++ ? ", " : "", r);
    free(answered);
    return absent;
}

/* Polls req until it completes or the deadline passes (then the roll call names who is
 * missing and the communicator breaks). */
static mu_status_t finish(mu_comm_t *c, MPI_Request *req, const char *what)
{
    mpi_state_t *s = c->state;
    const double start = now_s();
    for (;;) {
        int flag = 0;
        const int rc = MPI_Test(req, &flag, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS)
            return mu_mpi_failure(what, rc);
        if (flag)
            return MU_OK;
        const double waited = now_s() - start;
        if (waited > s->timeout_s)
            break;
        answer_roll_calls(s);
        nap(waited);
    }
    char missing[256];
    const int absent = roll_call(c, missing, sizeof missing);
    snprintf(s->why, sizeof s->why,
             "rank %d: %s did not complete within --comm-timeout %g s; %s%s%s", c->rank, what,
             s->timeout_s, absent ? "missing (no answer to a roll call): rank " : "",
             absent ? missing : "every peer answered a roll call (a mismatched collective?)",
             "; stopping");
    s->broken = true;
    return mu_error(MU_ERR_TIMEOUT, "%s", s->why);
}

static mu_status_t usable(const mu_comm_t *c)
{
    const mpi_state_t *s = c->state;
    return s->broken ? mu_error(MU_ERR_TIMEOUT, "%s", s->why) : MU_OK;
}

static bool mpi_broken(const mu_comm_t *c)
{
    return c->state && ((const mpi_state_t *)c->state)->broken;
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

static mu_status_t mpi_ialltoallv(mu_comm_t *c, const mu_alltoallv_args_t *a,
                                  mu_comm_request_t **req)
{
    MU_CHECK(usable(c));
    mu_comm_request_t *r = calloc(1, sizeof *r);
    mpi_request_t *impl = calloc(1, sizeof *impl);
    int *counts = malloc(sizeof(int) * 4 * (size_t)c->size);
    mu_status_t status = MU_OK;
    if (!r || !impl || !counts) {
        status = mu_error(MU_ERR_NOMEM, "rank %d: ialltoallv: cannot allocate", c->rank);
        goto out_with_allocations;
    }
    MU_CHECK_GOTO(status, convert_alltoallv(c, a, counts), out_with_allocations);
    mu_hier_t *hier = ((mpi_state_t *)c->state)->hier;
    if (hier) {
        MU_CHECK_GOTO(status, mu_hier_start(hier, a, &impl->hier), out_with_allocations);
        free(counts);
        r->impl = impl;
        *req = r;
        return MU_OK;
    }
    const int p = c->size;
    const int rc = MPI_Ialltoallv(a->send, counts, counts + p, MPI_BYTE, a->recv, counts + 2 * p,
                                  counts + 3 * p, MPI_BYTE, world(c), &impl->request);
    if (rc != MPI_SUCCESS) {
        status = mu_mpi_failure("MPI_Ialltoallv", rc);
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

/* A hierarchical all-to-all moves on through every stage whose request has completed. */
static mu_status_t test_hierarchical(mu_hier_op_t *op, bool *done)
{
    *done = false;
    for (;;) {
        int flag = 0;
        MU_MPI_CHECK(MPI_Test(mu_hier_request(op), &flag, MPI_STATUS_IGNORE));
        if (!flag)
            return MU_OK;
        MU_CHECK(mu_hier_advance(op, done));
        if (*done)
            return MU_OK;
    }
}

static mu_status_t mpi_test(mu_comm_t *c, mu_comm_request_t *req, bool *done)
{
    MU_CHECK(usable(c));
    mpi_request_t *impl = req->impl;
    if (impl->hier)
        return test_hierarchical(impl->hier, done);
    int flag = 0;
    MU_MPI_CHECK(MPI_Test(&impl->request, &flag, MPI_STATUS_IGNORE));
    *done = flag != 0;
    return MU_OK;
}

/* Each stage under the deadline, then the local work that starts the next. */
static mu_status_t wait_hierarchical(mu_comm_t *c, mu_hier_op_t *op)
{
    for (bool done = false; !done;)
        if (mu_hier_request(op) && *mu_hier_request(op) != MPI_REQUEST_NULL) {
            MU_CHECK(finish(c, mu_hier_request(op), mu_hier_stage(op)));
            MU_CHECK(mu_hier_advance(op, &done));
        } else {
            MU_CHECK(mu_hier_advance(op, &done));
        }
    return MU_OK;
}

static mu_status_t mpi_wait(mu_comm_t *c, mu_comm_request_t **req)
{
    mpi_request_t *impl = (*req)->impl;
    mu_status_t status = usable(c);
    if (status == MU_OK)
        status = impl->hier ? wait_hierarchical(c, impl->hier)
                            : finish(c, &impl->request, "MPI_Ialltoallv");
    mu_hier_free(&impl->hier);
    free(impl->counts);
    free(impl);
    free(*req);
    *req = NULL;
    return status;
}

static mu_status_t mpi_alltoallv(mu_comm_t *c, const mu_alltoallv_args_t *a)
{
    mu_comm_request_t *req = NULL;
    MU_CHECK(mpi_ialltoallv(c, a, &req));
    return mpi_wait(c, &req);
}

/* Starts a collective (rc from its MPI_I* call) and finishes it under the deadline. */
static mu_status_t run(mu_comm_t *c, int rc, MPI_Request *req, const char *what)
{
    if (rc != MPI_SUCCESS)
        return mu_mpi_failure(what, rc);
    return finish(c, req, what);
}

static mu_status_t mpi_allreduce(mu_comm_t *c, void *buf, int64_t count, mu_comm_type_t type,
                                 mu_comm_op_t op)
{
    int n = 0;
    MPI_Request req;
    MU_CHECK(usable(c));
    MU_CHECK(to_int(c, count, "allreduce count", &n));
    return run(c, MPI_Iallreduce(MPI_IN_PLACE, buf, n, to_mpi(type), to_mpi_op(op), world(c), &req),
               &req, "MPI_Iallreduce");
}

static mu_status_t mpi_reduce(mu_comm_t *c, void *buf, int64_t count, mu_comm_type_t type,
                              mu_comm_op_t op, int root)
{
    int n = 0;
    MPI_Request req;
    MU_CHECK(usable(c));
    MU_CHECK(to_int(c, count, "reduce count", &n));
    const void *send = c->rank == root ? MPI_IN_PLACE : buf;
    return run(c, MPI_Ireduce(send, buf, n, to_mpi(type), to_mpi_op(op), root, world(c), &req),
               &req, "MPI_Ireduce");
}

static mu_status_t mpi_bcast(mu_comm_t *c, void *buf, int64_t bytes, int root)
{
    int n = 0;
    MPI_Request req;
    MU_CHECK(usable(c));
    MU_CHECK(to_int(c, bytes, "bcast", &n));
    return run(c, MPI_Ibcast(buf, n, MPI_BYTE, root, world(c), &req), &req, "MPI_Ibcast");
}

static mu_status_t mpi_gatherv(mu_comm_t *c, const void *send, int64_t bytes, void *recv,
                               const int64_t *counts, const int64_t *displs, int root)
{
    int n = 0, *icounts = NULL;
    MU_CHECK(usable(c));
    MU_CHECK(to_int(c, bytes, "gatherv send", &n));
    mu_status_t status = MU_OK;
    if (c->rank == root) {
        icounts = malloc(sizeof(int) * 2 * (size_t)c->size);
        if (!icounts)
            return mu_error(MU_ERR_NOMEM, "rank %d: gatherv: cannot allocate", c->rank);
        status = to_int_array(c, counts, icounts, "gatherv count");
        MU_TRY(status, to_int_array(c, displs, icounts + c->size, "gatherv displacement"));
    }
    if (status == MU_OK) {
        MPI_Request req;
        status =
            run(c,
                MPI_Igatherv(send, n, MPI_BYTE, recv, icounts, icounts ? icounts + c->size : NULL,
                             MPI_BYTE, root, world(c), &req),
                &req, "MPI_Igatherv");
    }
    free(icounts);
    return status;
}

static mu_status_t mpi_barrier(mu_comm_t *c)
{
    MPI_Request req;
    MU_CHECK(usable(c));
    return run(c, MPI_Ibarrier(world(c), &req), &req, "MPI_Ibarrier");
}

/* Collective when the exchange changes (every rank configures alike). */
static mu_status_t mpi_configure(mu_comm_t *c, const mu_comm_config_t *cfg)
{
    mpi_state_t *s = c->state;
    if (cfg->timeout_s > 0)
        s->timeout_s = cfg->timeout_s;
    if (cfg->exchange == MU_EXCHANGE_HIERARCHICAL && !s->hier) {
        const char *split = mu_knob(MU_KNOB_NODE_RANKS);
        MU_CHECK(mu_hier_create(s->comm, split ? atoi(split) : 0, &s->hier));
        const int nodes = mu_hier_nodes(s->hier);
        /* One node, or one rank per node: the two stages are the flat all-to-all plus copies. */
        const bool trivial = nodes == 1 || nodes == c->size;
        MU_LOG(MU_LOG_INFO, MU_SUB_COMM,
               "exchange: hierarchical (within each of %d node(s), then "
               "between nodes)%s",
               nodes, trivial ? ": the same as flat here, which runs" : "");
        if (trivial)
            mu_hier_destroy(&s->hier);
    } else if (cfg->exchange == MU_EXCHANGE_FLAT) {
        mu_hier_destroy(&s->hier);
    }
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
    s->comm = s->roll = MPI_COMM_NULL;
    s->timeout_s = MPI_DEFAULT_TIMEOUT_S;
    MU_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &s->comm));
    MU_MPI_CHECK(MPI_Comm_set_errhandler(s->comm, MPI_ERRORS_RETURN));
    MU_MPI_CHECK(MPI_Comm_dup(s->comm, &s->roll));
    MU_MPI_CHECK(MPI_Comm_rank(s->comm, &c->rank));
    MU_MPI_CHECK(MPI_Comm_size(s->comm, &c->size));
    return MU_OK;
}

static void mpi_fini(mu_comm_t *c)
{
    mpi_state_t *s = c->state;
    if (s && !s->broken)
        mu_hier_destroy(&s->hier);
    /* A broken communicator is left alone: freeing it may wait for the missing peer. */
    if (s && !s->broken && s->roll != MPI_COMM_NULL && s->roll != 0)
        MPI_Comm_free(&s->roll);
    if (s && !s->broken && s->comm != MPI_COMM_NULL && s->comm != 0)
        MPI_Comm_free(&s->comm);
    free(s);
    c->state = NULL;
}

const struct mu_comm_ops mu_comm_mpi_ops = {
    .name = "mpi",
    .can_use = mpi_can_use,
    .init = mpi_init,
    .fini = mpi_fini,
    .configure = mpi_configure,
    .broken = mpi_broken,
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
