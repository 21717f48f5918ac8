/*
 * Binding each rank to the hardware nearest it, with hwloc (--bind).
 *
 *   none  leave the process where the launcher put it
 *   core  split the cores this node's ranks were given evenly by local rank
 *   numa  give each local rank one NUMA node's cores and memory, round robin
 *   gpu   the cores and memory of the NUMA node nearest this rank's GPU (hwloc's PCI
 *         locality); without a GPU, core
 *   auto  gpu where this rank has a GPU, else core
 *
 * A cpuset the launcher imposed is respected: every set is cut from what the process may
 * already run on (its binding, within the cgroup's allowed cpus). When the launcher bound
 * each rank differently (mpiexec's default binding, Slurm's task/affinity), each rank divides
 * only its own set, so the launcher's placement stands.
 */
#ifndef MU_LAUNCHER_BIND_H
#define MU_LAUNCHER_BIND_H

#include <mpi.h>
#include <stddef.h>

#include "core/status.h"

#define MU_BIND_CHOICES "auto|none|core|numa|gpu"

typedef struct mu_bind_request {
    const char *mode; /* one of MU_BIND_CHOICES; NULL: auto */
    int local_rank, local_ranks;
    const char *gpu_bus_id; /* PCI bus id of this rank's GPU ("0000:65:00.0"), or NULL */
} mu_bind_request_t;

/* Binds this process (all its threads) and, for numa and gpu, its memory. Collective over
 * node, the communicator of this node's ranks. Writes what was done, in words, into report.
 * A binding the system refuses is reported there, not failed: the run goes on unbound. */
mu_status_t mu_bind_process(const mu_bind_request_t *r, MPI_Comm node, char *report, size_t len);

#endif
