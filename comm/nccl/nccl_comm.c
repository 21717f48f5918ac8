/*
 * The NCCL comm backend, for the cuda kernel backend whose matrices live in device memory.
 *
 *  - Device buffers travel over NCCL on this rank's communication stream; host buffers (the
 *    small control messages: verdicts, counts, digests) over an inner MPI communicator, which
 *    also bootstraps NCCL (rank 0's unique id, broadcast) and serves BLACS (fallback/).
 *  - Ordering: before a collective the communication stream waits for an event recorded on
 *    the kernel backend's compute stream (mu_comm_configure), so it reads finished data; the
 *    blocking operations return after the communication stream has drained, so later compute
 *    work sees the result. ialltoallv returns at once; its wait drains.
 *  - The all-to-all(v) is a group of ncclSend/ncclRecv pairs, one per peer with bytes to move.
 *  - Waiting polls the stream and ncclCommGetAsyncError; an asynchronous NCCL failure or a
 *    collective still running after the timeout aborts the communicator (ncclCommAbort) and
 *    returns MU_ERR_NCCL / MU_ERR_TIMEOUT naming the rank: no rank hangs in a dead collective.
 */
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm_impl.h"
#include "comm/mpi/mpi_comm.h"
#include "core/clock.h"
#include "core/log.h"

/* Without --comm-timeout: long enough for the largest wave on a slow link, short enough that
 * a dead peer ends the job within minutes rather than at the Slurm time limit. */
#define NCCL_DEFAULT_TIMEOUT_S 300.0

typedef struct nccl_state {
    mu_comm_t *host; /* the inner MPI communicator */
    ncclComm_t nccl;
    cudaStream_t stream;      /* communication stream */
    cudaStream_t compute;     /* the kernel backend's stream (NULL: default stream) */
    cudaEvent_t compute_done; /* recorded on compute, waited on by stream */
    cudaEvent_t comm_done;    /* recorded on stream after a blocking collective */
    double timeout_s;
    bool aborted;
} nccl_state_t;

typedef struct nccl_request {
    cudaEvent_t done;                /* device operation: recorded after the group */
    mu_comm_request_t *host_request; /* host operation: the inner MPI request */
} nccl_request_t;

static nccl_state_t *state_of(const mu_comm_t *c)
{
    return (nccl_state_t *)c->state;
}

static mu_status_t nccl_failure(const mu_comm_t *c, const char *call, ncclResult_t rc)
{
    const char *detail = ncclGetLastError(NULL);
    return mu_error(MU_ERR_NCCL, "rank %d: %s failed: %s (%d)%s%s", c->rank, call,
                    ncclGetErrorString(rc), (int)rc, detail ? ": " : "", detail ? detail : "");
}

static mu_status_t cuda_failure(const mu_comm_t *c, const char *call, cudaError_t err)
{
    return mu_error(MU_ERR_CUDA, "rank %d: %s failed: %s (%d)", c->rank, call,
                    cudaGetErrorString(err), (int)err);
}

#define MU_NCCL_CHECK(c, call)                                                                     \
    do {                                                                                           \
        const ncclResult_t mu_nccl_rc_ = (call);                                                   \
        if (mu_nccl_rc_ != ncclSuccess && mu_nccl_rc_ != ncclInProgress)                           \
            return nccl_failure((c), #call, mu_nccl_rc_);                                          \
    } while (0)

#define MU_COMM_CUDA_CHECK(c, call)                                                                \
    do {                                                                                           \
        const cudaError_t mu_cuda_rc_ = (call);                                                    \
        if (mu_cuda_rc_ != cudaSuccess)                                                            \
            return cuda_failure((c), #call, mu_cuda_rc_);                                          \
    } while (0)

/* Whether ptr is device (or managed) memory; host and unregistered pointers are not. */
static bool on_device(const void *ptr)
{
    struct cudaPointerAttributes attr;
    if (!ptr || cudaPointerGetAttributes(&attr, ptr) != cudaSuccess) {
        cudaGetLastError(); /* an unregistered host pointer is not an error worth keeping */
        return false;
    }
    return attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged;
}

static ncclDataType_t to_nccl(mu_comm_type_t type)
{
    return type == MU_COMM_F32 ? ncclFloat32 : type == MU_COMM_F64 ? ncclFloat64 : ncclInt64;
}

static ncclRedOp_t to_nccl_op(mu_comm_op_t op)
{
    return op == MU_COMM_SUM ? ncclSum : op == MU_COMM_MAX ? ncclMax : ncclMin;
}

/* The communication stream waits for all compute work issued so far. */
static mu_status_t after_compute(mu_comm_t *c)
{
    nccl_state_t *s = state_of(c);
    if (s->aborted)
        return mu_error(MU_ERR_NCCL, "rank %d: the NCCL communicator was aborted", c->rank);
    MU_COMM_CUDA_CHECK(c, cudaEventRecord(s->compute_done, s->compute));
    MU_COMM_CUDA_CHECK(c, cudaStreamWaitEvent(s->stream, s->compute_done, 0));
    return MU_OK;
}

/* Polls until done is reached, watching for asynchronous NCCL errors and the deadline. */
static mu_status_t drain(mu_comm_t *c, cudaEvent_t done, const char *what)
{
    nccl_state_t *s = state_of(c);
    const double deadline = mu_seconds() + s->timeout_s;
    for (;;) {
        const cudaError_t q = cudaEventQuery(done);
        if (q == cudaSuccess)
            return MU_OK;
        if (q != cudaErrorNotReady)
            return cuda_failure(c, what, q);
        ncclResult_t async = ncclSuccess;
        MU_NCCL_CHECK(c, ncclCommGetAsyncError(s->nccl, &async));
        if (async != ncclSuccess && async != ncclInProgress) {
            ncclCommAbort(s->nccl);
            s->aborted = true;
            return nccl_failure(c, what, async);
        }
        if (mu_seconds() > deadline) {
            ncclCommAbort(s->nccl);
            s->aborted = true;
            return mu_error(MU_ERR_TIMEOUT,
                            "rank %d: %s still running after %.0f s (a peer is stalled or "
                            "dead); the NCCL communicator was aborted",
                            c->rank, what, s->timeout_s);
        }
        sched_yield();
    }
}

static mu_status_t record_and_drain(mu_comm_t *c, const char *what)
{
    nccl_state_t *s = state_of(c);
    MU_COMM_CUDA_CHECK(c, cudaEventRecord(s->comm_done, s->stream));
    return drain(c, s->comm_done, what);
}

/* The group of sends and receives of one all-to-all(v), on the communication stream. */
static mu_status_t launch_alltoallv(mu_comm_t *c, const mu_alltoallv_args_t *a)
{
    nccl_state_t *s = state_of(c);
    MU_CHECK(after_compute(c));
    MU_NCCL_CHECK(c, ncclGroupStart());
    for (int peer = 0; peer < c->size; peer++) {
        if (a->send_counts[peer] > 0)
            MU_NCCL_CHECK(c, ncclSend((const char *)a->send + a->send_displs[peer],
                                      (size_t)a->send_counts[peer], ncclUint8, peer, s->nccl,
                                      s->stream));
        if (a->recv_counts[peer] > 0)
            MU_NCCL_CHECK(c, ncclRecv((char *)a->recv + a->recv_displs[peer],
                                      (size_t)a->recv_counts[peer], ncclUint8, peer, s->nccl,
                                      s->stream));
    }
    MU_NCCL_CHECK(c, ncclGroupEnd());
    return MU_OK;
}

static bool device_args(const mu_alltoallv_args_t *a)
{
    return on_device(a->send) || on_device(a->recv);
}

static mu_status_t nccl_alltoallv(mu_comm_t *c, const mu_alltoallv_args_t *a)
{
    if (!device_args(a))
        return mu_comm_alltoallv(state_of(c)->host, a);
    MU_CHECK(launch_alltoallv(c, a));
    return record_and_drain(c, "all-to-all");
}

static mu_status_t nccl_ialltoallv(mu_comm_t *c, const mu_alltoallv_args_t *a,
                                   mu_comm_request_t **req)
{
    nccl_request_t *r = calloc(1, sizeof *r);
    mu_comm_request_t *outer = calloc(1, sizeof *outer);
    if (!r || !outer) {
        free(r);
        free(outer);
        return mu_error(MU_ERR_NOMEM, "rank %d: cannot allocate a request", c->rank);
    }
    outer->impl = r;
    mu_status_t status;
    if (!device_args(a)) {
        status = mu_comm_ialltoallv(state_of(c)->host, a, &r->host_request);
    } else {
        status = launch_alltoallv(c, a);
        cudaError_t err = cudaSuccess;
        if (status == MU_OK)
            err = cudaEventCreateWithFlags(&r->done, cudaEventDisableTiming);
        if (status == MU_OK && err == cudaSuccess)
            err = cudaEventRecord(r->done, state_of(c)->stream);
        if (status == MU_OK && err != cudaSuccess)
            status = cuda_failure(c, "recording the all-to-all's event", err);
    }
    if (status != MU_OK) {
        if (r->done)
            cudaEventDestroy(r->done);
        free(r);
        free(outer);
        return status;
    }
    *req = outer;
    return MU_OK;
}

static mu_status_t nccl_test(mu_comm_t *c, mu_comm_request_t *req, bool *done)
{
    nccl_request_t *r = req->impl;
    if (r->host_request)
        return mu_comm_test(state_of(c)->host, r->host_request, done);
    const cudaError_t q = cudaEventQuery(r->done);
    if (q != cudaSuccess && q != cudaErrorNotReady)
        return cuda_failure(c, "cudaEventQuery", q);
    *done = q == cudaSuccess;
    return MU_OK;
}

static mu_status_t nccl_wait(mu_comm_t *c, mu_comm_request_t **req)
{
    nccl_request_t *r = (*req)->impl;
    mu_status_t status;
    if (r->host_request) {
        status = mu_comm_wait(state_of(c)->host, &r->host_request);
    } else {
        status = drain(c, r->done, "all-to-all");
        cudaEventDestroy(r->done);
    }
    free(r);
    free(*req);
    *req = NULL;
    return status;
}

static mu_status_t nccl_allreduce(mu_comm_t *c, void *buf, int64_t count, mu_comm_type_t type,
                                  mu_comm_op_t op)
{
    nccl_state_t *s = state_of(c);
    if (!on_device(buf))
        return mu_comm_allreduce(s->host, buf, count, type, op);
    MU_CHECK(after_compute(c));
    MU_NCCL_CHECK(c, ncclAllReduce(buf, buf, (size_t)count, to_nccl(type), to_nccl_op(op), s->nccl,
                                   s->stream));
    return record_and_drain(c, "all-reduce");
}

static mu_status_t nccl_reduce(mu_comm_t *c, void *buf, int64_t count, mu_comm_type_t type,
                               mu_comm_op_t op, int root)
{
    nccl_state_t *s = state_of(c);
    if (!on_device(buf))
        return mu_comm_reduce(s->host, buf, count, type, op, root);
    MU_CHECK(after_compute(c));
    MU_NCCL_CHECK(c, ncclReduce(buf, buf, (size_t)count, to_nccl(type), to_nccl_op(op), root,
                                s->nccl, s->stream));
    return record_and_drain(c, "reduce");
}

static mu_status_t nccl_bcast(mu_comm_t *c, void *buf, int64_t bytes, int root)
{
    nccl_state_t *s = state_of(c);
    if (!on_device(buf))
        return mu_comm_bcast(s->host, buf, bytes, root);
    MU_CHECK(after_compute(c));
    MU_NCCL_CHECK(c, ncclBroadcast(buf, buf, (size_t)bytes, ncclUint8, root, s->nccl, s->stream));
    return record_and_drain(c, "broadcast");
}

/* NCCL has no gatherv: the root receives from every rank in one group. */
static mu_status_t nccl_gatherv(mu_comm_t *c, const void *send, int64_t bytes, void *recv,
                                const int64_t *counts, const int64_t *displs, int root)
{
    nccl_state_t *s = state_of(c);
    if (!on_device(send) && !(c->rank == root && on_device(recv)))
        return mu_comm_gatherv(s->host, send, bytes, recv, counts, displs, root);
    MU_CHECK(after_compute(c));
    MU_NCCL_CHECK(c, ncclGroupStart());
    if (bytes > 0)
        MU_NCCL_CHECK(c, ncclSend(send, (size_t)bytes, ncclUint8, root, s->nccl, s->stream));
    for (int peer = 0; c->rank == root && peer < c->size; peer++)
        if (counts[peer] > 0)
            MU_NCCL_CHECK(c, ncclRecv((char *)recv + displs[peer], (size_t)counts[peer], ncclUint8,
                                      peer, s->nccl, s->stream));
    MU_NCCL_CHECK(c, ncclGroupEnd());
    return record_and_drain(c, "gather");
}

static mu_status_t nccl_barrier(mu_comm_t *c)
{
    MU_CHECK(record_and_drain(c, "barrier"));
    return mu_comm_barrier(state_of(c)->host);
}

static mu_status_t nccl_configure(mu_comm_t *c, const mu_comm_config_t *cfg)
{
    nccl_state_t *s = state_of(c);
    if (cfg->exchange == MU_EXCHANGE_HIERARCHICAL)
        return mu_error(MU_ERR_NOTSUP, "--exchange hierarchical is the mpi communicator's; NCCL "
                                       "routes its all-to-all by the topology it detects");
    s->compute = (cudaStream_t)cfg->device_stream;
    if (cfg->timeout_s > 0)
        s->timeout_s = cfg->timeout_s;
    return MU_OK;
}

static mu_comm_t *nccl_host_side(const mu_comm_t *c)
{
    return state_of(c)->host;
}

static bool nccl_can_use(char *why, size_t why_len)
{
    int initialized = 0, devices = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
        snprintf(why, why_len, "NCCL is bootstrapped over MPI, which is not initialized");
        return false;
    }
    const cudaError_t err = cudaGetDeviceCount(&devices);
    if (err != cudaSuccess || devices == 0) {
        snprintf(why, why_len, "no CUDA device (%s)",
                 err != cudaSuccess ? cudaGetErrorString(err) : "the runtime reports none");
        cudaGetLastError();
        return false;
    }
    return true;
}

/* Rank 0's unique id reaches every rank over MPI (with whether rank 0 got one, so that no
 * rank waits for a communicator rank 0 cannot make); then every rank joins. */
static mu_status_t start_nccl(mu_comm_t *c, nccl_state_t *s)
{
    struct {
        int64_t ok;
        ncclUniqueId id;
    } boot = {0};
    if (c->rank == 0)
        boot.ok = ncclGetUniqueId(&boot.id) == ncclSuccess;
    MU_CHECK(mu_comm_bcast(s->host, &boot, sizeof boot, 0));
    if (!boot.ok)
        return mu_error(MU_ERR_NCCL, "rank 0: ncclGetUniqueId failed: %s",
                        c->rank == 0 ? ncclGetLastError(NULL) : "(see rank 0)");
    MU_NCCL_CHECK(c, ncclCommInitRank(&s->nccl, c->size, boot.id, c->rank));
    MU_COMM_CUDA_CHECK(c, cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
    MU_COMM_CUDA_CHECK(c, cudaEventCreateWithFlags(&s->compute_done, cudaEventDisableTiming));
    MU_COMM_CUDA_CHECK(c, cudaEventCreateWithFlags(&s->comm_done, cudaEventDisableTiming));
    int version = 0;
    ncclGetVersion(&version);
    MU_LOG(MU_LOG_INFO, MU_SUB_COMM, "NCCL %d.%d.%d communicator of %d ranks", version / 10000,
           version / 100 % 100, version % 100, c->size);
    return MU_OK;
}

static void nccl_fini(mu_comm_t *c)
{
    nccl_state_t *s = state_of(c);
    if (!s)
        return;
    if (s->stream)
        cudaStreamSynchronize(s->stream);
    if (s->nccl && !s->aborted)
        ncclCommDestroy(s->nccl);
    if (s->compute_done)
        cudaEventDestroy(s->compute_done);
    if (s->comm_done)
        cudaEventDestroy(s->comm_done);
    if (s->stream)
        cudaStreamDestroy(s->stream);
    mu_comm_destroy(&s->host);
    free(s);
    c->state = NULL;
}

static mu_status_t nccl_init(mu_comm_t *c)
{
    nccl_state_t *s = calloc(1, sizeof *s);
    if (!s)
        return mu_error(MU_ERR_NOMEM, "cannot allocate the NCCL communicator");
    s->timeout_s = NCCL_DEFAULT_TIMEOUT_S;
    c->state = s;
    mu_status_t status = mu_comm_create("mpi", &s->host);
    if (status == MU_OK) {
        c->rank = mu_comm_rank(s->host);
        c->size = mu_comm_size(s->host);
        /* Every rank learns whether every rank joined, so none waits in a half-made comm. */
        status = mu_comm_agree(s->host, start_nccl(c, s));
    }
    if (status != MU_OK)
        nccl_fini(c);
    return status;
}

const struct mu_comm_ops mu_comm_nccl_ops = {
    .name = "nccl",
    .can_use = nccl_can_use,
    .init = nccl_init,
    .fini = nccl_fini,
    .configure = nccl_configure,
    .host_side = nccl_host_side,
    .alltoallv = nccl_alltoallv,
    .ialltoallv = nccl_ialltoallv,
    .test = nccl_test,
    .wait = nccl_wait,
    .allreduce = nccl_allreduce,
    .reduce = nccl_reduce,
    .bcast = nccl_bcast,
    .gatherv = nccl_gatherv,
    .barrier = nccl_barrier,
};
