#include "comm/mpi/mpi_check.h"

/* The world rank where MPI can still say it, else -1. */
static int world_rank(void)
{
    int initialized = 0, finalized = 0, rank = -1;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (initialized && !finalized && MPI_Comm_rank(MPI_COMM_WORLD, &rank) != MPI_SUCCESS)
        rank = -1;
    return rank;
}

mu_status_t mu_mpi_failure(const char *call, int rc)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS)
        len = snprintf(text, sizeof text, "MPI error code %d", rc);
    const int rank = world_rank();
    if (rank < 0)
        return mu_error(MU_ERR_MPI, "%s failed: %.*s", call, len, text);
    return mu_error(MU_ERR_MPI, "rank %d: %s failed: %.*s", rank, call, len, text);
}
