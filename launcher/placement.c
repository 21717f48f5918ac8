#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "launcher/placement.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm/mpi/mpi_check.h"

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

/* This srun step's tasks on this node, from SLURM_STEP_TASKS_PER_NODE ("4", "2(x3),1": a
 * count per node, run-length encoded) and SLURM_NODEID; 0 when unknown. */
static int step_tasks_on_this_node(void)
{
    const char *list = getenv("SLURM_STEP_TASKS_PER_NODE");
    const int node = atoi(env_or("SLURM_NODEID", "0"));
    for (int first = 0; list && *list;) {
        char *end;
        const long tasks = strtol(list, &end, 10);
        long repeat = 1;
        if (end[0] == '(' && end[1] == 'x') {
            repeat = strtol(end + 2, &end, 10);
            end += *end == ')';
        }
        if (end == list || tasks < 0 || repeat < 1)
            return 0;
        if (node < first + repeat)
            return (int)tasks;
        first += (int)repeat;
        list = *end == ',' ? end + 1 : end;
    }
    return 0;
}

/* Open MPI spins while it waits. Under mpiexec --oversubscribe it knows to yield instead;
 * under srun it does not, and ranks sharing a core then wait out each other's time slices
 * (measured: a 50 ms ScaLAPACK solve took 15 s with 4 ranks on 2 cores). */
static void yield_when_oversubscribed(void)
{
    cpu_set_t cpus;
    const int tasks = step_tasks_on_this_node();
    if (tasks == 0 || sched_getaffinity(0, sizeof cpus, &cpus) != 0 || tasks <= CPU_COUNT(&cpus))
        return;
    setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
}

mu_status_t mu_launch_prepare(void)
{
    yield_when_oversubscribed();
    /* srun sets SLURM_STEP_ID in its tasks (a batch script has none); PMIx sets PMIX_RANK;
     * mpiexec inside an allocation sets OMPI_COMM_WORLD_RANK. */
    if (!getenv("SLURM_STEP_ID") || getenv("PMIX_RANK") || getenv("OMPI_COMM_WORLD_RANK"))
        return MU_OK;
    return mu_error(MU_ERR_INVALID,
                    "Slurm task %s of job %s step %s was started with srun --mpi=%s, but "
                    "Debian's Open MPI joins a job only through PMIx: launch muond with "
                    "`srun --mpi=pmix` (or set MpiDefault=pmix in slurm.conf)",
                    env_or("SLURM_PROCID", "?"), env_or("SLURM_JOB_ID", "?"),
                    env_or("SLURM_STEP_ID", "?"), env_or("SLURM_MPI_TYPE", "none"));
}

static void describe_job(mu_placement_t *p)
{
    const char *slurm_job = getenv("SLURM_JOB_ID"), *ompi_job = getenv("OMPI_MCA_ess_base_jobid");
    if (slurm_job && *slurm_job)
        snprintf(p->job, sizeof p->job, "Slurm job %s step %s", slurm_job,
                 env_or("SLURM_STEP_ID", "batch"));
    else if (ompi_job && *ompi_job)
        snprintf(p->job, sizeof p->job, "mpiexec job %s", ompi_job);
    else
        snprintf(p->job, sizeof p->job, "no launcher");
}

mu_status_t mu_placement_discover(mu_placement_t *p, MPI_Comm *node_comm)
{
    int rank;
    MU_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    MU_MPI_CHECK(
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, node_comm));
    MU_MPI_CHECK(MPI_Comm_rank(*node_comm, &p->local_rank));
    MU_MPI_CHECK(MPI_Comm_size(*node_comm, &p->local_ranks));
    /* The nodes are numbered by their lowest ranks: one leader each. */
    MPI_Comm leaders;
    MU_MPI_CHECK(
        MPI_Comm_split(MPI_COMM_WORLD, p->local_rank == 0 ? 0 : MPI_UNDEFINED, rank, &leaders));
    int node[2] = {0, 1};
    if (leaders != MPI_COMM_NULL) {
        MU_MPI_CHECK(MPI_Comm_rank(leaders, &node[0]));
        MU_MPI_CHECK(MPI_Comm_size(leaders, &node[1]));
        MU_MPI_CHECK(MPI_Comm_free(&leaders));
    }
    MU_MPI_CHECK(MPI_Bcast(node, 2, MPI_INT, 0, *node_comm));
    p->node = node[0];
    p->nodes = node[1];
    if (gethostname(p->host, sizeof p->host) != 0)
        snprintf(p->host, sizeof p->host, "?");
    p->host[sizeof p->host - 1] = '\0';
    describe_job(p);
    return MU_OK;
}
