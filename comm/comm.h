/*
 * The communicator layer: collectives the optimizer needs, behind one ops table with an MPI
 * backend (CPU, host buffers), a single-rank loopback backend (tests without mpiexec) and,
 * in CUDA builds, an NCCL backend (device buffers over NCCL, host buffers over MPI).
 *
 * Conventions:
 *  - Byte counts and displacements are int64_t; a backend that cannot express a count (MPI's
 *    int) returns MU_ERR_INVALID naming it rather than truncating.
 *  - Every rank calls each collective in the same order (MPI semantics).
 *  - Failures return a status (MPI errors are set to return, not abort) with the rank named.
 *  - The caller initializes the runtime (MPI_Init) before creating an mpi communicator and
 *    finalizes it after destroying it.
 */
#ifndef MU_COMM_COMM_H
#define MU_COMM_COMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef struct mu_comm mu_comm_t;
typedef struct mu_comm_request mu_comm_request_t;

typedef enum mu_comm_type { MU_COMM_F32, MU_COMM_F64, MU_COMM_I64 } mu_comm_type_t;
typedef enum mu_comm_op { MU_COMM_SUM, MU_COMM_MAX, MU_COMM_MIN } mu_comm_op_t;

/* A personalized all-to-all: rank r sends send_counts[d] bytes from send + send_displs[d] to
 * each rank d and receives recv_counts[s] bytes at recv + recv_displs[s] from each rank s. */
typedef struct mu_alltoallv_args {
    const void *send;
    const int64_t *send_counts, *send_displs;
    void *recv;
    const int64_t *recv_counts, *recv_displs;
} mu_alltoallv_args_t;

/* ---- one typedef per operation --------------------------------------------------------- */
typedef mu_status_t mu_c_alltoallv_fn(mu_comm_t *c, const mu_alltoallv_args_t *a);
/* Starts an all-to-all; the buffers must stay untouched until wait returns. */
typedef mu_status_t mu_c_ialltoallv_fn(mu_comm_t *c, const mu_alltoallv_args_t *a,
                                       mu_comm_request_t **req);
/* Lets a started operation progress; *done tells whether it finished (req stays valid). */
typedef mu_status_t mu_c_test_fn(mu_comm_t *c, mu_comm_request_t *req, bool *done);
/* Finishes a started operation and frees the request (sets *req to NULL). */
typedef mu_status_t mu_c_wait_fn(mu_comm_t *c, mu_comm_request_t **req);
/* In place: buf (count elements) becomes the reduction over all ranks. */
typedef mu_status_t mu_c_allreduce_fn(mu_comm_t *c, void *buf, int64_t count, mu_comm_type_t type,
                                      mu_comm_op_t op);
/* In place at root (other ranks' buf is only read). */
typedef mu_status_t mu_c_reduce_fn(mu_comm_t *c, void *buf, int64_t count, mu_comm_type_t type,
                                   mu_comm_op_t op, int root);
typedef mu_status_t mu_c_bcast_fn(mu_comm_t *c, void *buf, int64_t bytes, int root);
/* Root receives counts[s] bytes from each rank s at recv + displs[s]. */
typedef mu_status_t mu_c_gatherv_fn(mu_comm_t *c, const void *send, int64_t bytes, void *recv,
                                    const int64_t *counts, const int64_t *displs, int root);
typedef mu_status_t mu_c_barrier_fn(mu_comm_t *c);

/* How alltoallv routes: straight to every peer, or node-aware in two stages (mpi only). */
typedef enum mu_exchange_route {
    MU_EXCHANGE_DEFAULT = 0, /* leave as it is (flat when never set) */
    MU_EXCHANGE_FLAT,
    MU_EXCHANGE_HIERARCHICAL,
} mu_exchange_route_t;

/* What a backend needs from its caller (mu_comm_configure). */
typedef struct mu_comm_config {
    void *device_stream; /* the kernel backend's compute stream (cudaStream_t), or NULL */
    double timeout_s;    /* a collective running longer fails with MU_ERR_TIMEOUT; 0 keeps
                            the backend's default */
    mu_exchange_route_t exchange; /* collective when it changes */
} mu_comm_config_t;

struct mu_comm_ops {
    const char *name;
    bool (*can_use)(char *why, size_t why_len);
    mu_status_t (*init)(mu_comm_t *c); /* sets rank, size and state */
    void (*fini)(mu_comm_t *c);
    /* Optional (NULL: nothing to configure). */
    mu_status_t (*configure)(mu_comm_t *c, const mu_comm_config_t *cfg);
    /* Optional (NULL: never): a deadline passed and the communicator cannot be used again. */
    bool (*broken)(const mu_comm_t *c);
    /* Optional: the communicator that carries this one's host buffers (MPI under NCCL). */
    mu_comm_t *(*host_side)(const mu_comm_t *c);
    mu_c_alltoallv_fn *alltoallv;
    mu_c_ialltoallv_fn *ialltoallv;
    mu_c_test_fn *test;
    mu_c_wait_fn *wait;
    mu_c_allreduce_fn *allreduce;
    mu_c_reduce_fn *reduce;
    mu_c_bcast_fn *bcast;
    mu_c_gatherv_fn *gatherv;
    mu_c_barrier_fn *barrier;
};

/* "auto" (or NULL) picks mpi when the MPI runtime is initialized, else loopback; the
 * MUOND_COMM environment variable overrides "auto". "nccl" is never chosen automatically
 * here: it fits only a device-memory kernel backend, which the caller knows about. The
 * choice is logged. */
mu_status_t mu_comm_create(const char *name, mu_comm_t **out);
/* Passes cfg to backends that take one (nccl); MU_OK and nothing done for the others. */
mu_status_t mu_comm_configure(mu_comm_t *c, const mu_comm_config_t *cfg);
/* Whether a collective missed its deadline (--comm-timeout): every later call fails at
 * once, and the caller must end without further collectives (MPI_Finalize included). */
bool mu_comm_broken(const mu_comm_t *c);
/* Whether this build has the named backend. */
bool mu_comm_compiled_in(const char *name);
void mu_comm_destroy(mu_comm_t **c);
int mu_comm_rank(const mu_comm_t *c);
int mu_comm_size(const mu_comm_t *c);
const char *mu_comm_name(const mu_comm_t *c);

/* ---- the wrappers callers use --------------------------------------------------------- */
mu_c_alltoallv_fn mu_comm_alltoallv;
mu_c_ialltoallv_fn mu_comm_ialltoallv;
mu_c_test_fn mu_comm_test;
mu_c_wait_fn mu_comm_wait;
mu_c_allreduce_fn mu_comm_allreduce;
mu_c_reduce_fn mu_comm_reduce;
mu_c_bcast_fn mu_comm_bcast;
mu_c_gatherv_fn mu_comm_gatherv;
mu_c_barrier_fn mu_comm_barrier;

/* Every rank's status becomes the worst (largest) one: ranks agree on failure and no rank is
 * left waiting in a later collective. Returns MU_OK when all ranks were OK; otherwise the
 * agreed status, with a message naming how many ranks failed if this rank itself did not. */
mu_status_t mu_comm_agree(mu_comm_t *c, mu_status_t local);

#endif
