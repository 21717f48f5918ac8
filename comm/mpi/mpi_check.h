/*
 * The one adapter from MPI's error codes to muond statuses (core/status.h), for every caller
 * of MPI: the comm backend and the launcher's start-up (placement, binding).
 *
 *   MU_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &dup));
 *
 * records "rank R: MPI_Comm_dup(...) failed: <MPI's own text>" as MU_ERR_MPI, adds a trail
 * frame and returns it. Communicators whose errors should reach it need MPI_ERRORS_RETURN
 * (MPI_COMM_WORLD's default handler aborts the job first).
 */
#ifndef MU_COMM_MPI_CHECK_H
#define MU_COMM_MPI_CHECK_H

#include <mpi.h>

#include "core/status.h"

/* Records the failure of call with MPI return code rc; returns MU_ERR_MPI. */
mu_status_t mu_mpi_failure(const char *call, int rc);

#define MU_MPI_CHECK(call)                                                                         \
    do {                                                                                           \
        const int mu_mpi_rc_ = (call);                                                             \
        if (mu_mpi_rc_ != MPI_SUCCESS) {                                                           \
            const mu_status_t mu_mpi_status_ = mu_mpi_failure(#call, mu_mpi_rc_);                  \
            mu_error_trace(__FILE__, __LINE__, #call, mu_mpi_status_);                             \
            return mu_mpi_status_;                                                                 \
        }                                                                                          \
    } while (0)

#endif
