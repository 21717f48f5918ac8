/* The MPI backend's own interface, for layers that call MPI libraries themselves (BLACS). */
#ifndef MU_COMM_MPI_COMM_H
#define MU_COMM_MPI_COMM_H

#include <mpi.h>

#include "comm/comm.h"

/* The MPI communicator behind c; MU_ERR_NOTSUP when c is not an mpi communicator. */
mu_status_t mu_comm_mpi_handle(const mu_comm_t *c, MPI_Comm *out);

#endif
