/*
 * Where a rank runs: its node and local rank from the MPI runtime, its job and step from the
 * launcher's environment (Slurm's, else Open MPI's), and the launch itself checked.
 */
#ifndef MU_LAUNCHER_PLACEMENT_H
#define MU_LAUNCHER_PLACEMENT_H

#include <mpi.h>

#include "core/status.h"

typedef struct mu_placement {
    int node, nodes;             /* this node's index (by its lowest rank), and their number */
    int local_rank, local_ranks; /* among this node's ranks, in rank order */
    char host[64];
    char job[96]; /* "Slurm job 12 step 3", "mpiexec job 4711" or "no launcher" */
} mu_placement_t;

/* Before MPI_Init. A task of an srun step that did not start PMIx (--mpi=pmi2, --mpi=none)
 * cannot join Debian's Open MPI, which would abort in MPI_Init with a page about rebuilding
 * Open MPI; this refuses it and names the fix instead. An srun step with more tasks on this
 * node than cpus (--overcommit) makes Open MPI yield while it waits, as mpiexec
 * --oversubscribe does. */
mu_status_t mu_launch_prepare(void);

/* Collective over MPI_COMM_WORLD. *node_comm gets this node's ranks (MPI_Comm_free it). */
mu_status_t mu_placement_discover(mu_placement_t *p, MPI_Comm *node_comm);

#endif
