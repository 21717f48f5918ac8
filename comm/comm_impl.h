/* Private to comm/: what a communicator and a request hold. */
#ifndef MU_COMM_COMM_IMPL_H
#define MU_COMM_COMM_IMPL_H

#include "comm/comm.h"

struct mu_comm {
    const struct mu_comm_ops *ops;
    int rank, size;
    void *state; /* owned by the backend */
};

struct mu_comm_request {
    void *impl; /* owned by the backend that created the request */
};

extern const struct mu_comm_ops mu_comm_mpi_ops;
extern const struct mu_comm_ops mu_comm_loopback_ops;
#ifdef MUOND_HAVE_NCCL
extern const struct mu_comm_ops mu_comm_nccl_ops; /* comm/nccl/nccl_comm.c */
#endif

#endif
