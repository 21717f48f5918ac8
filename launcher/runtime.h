/*
 * The daemon's runtime: the MPI process group, the layout, the communicator, the kernel
 * backend and the optimizer, started and stopped together. Start-up is collective and
 * agreed: if any rank fails (a bad layout, an unusable backend), every rank returns the
 * failure and reports it, and none is left waiting.
 */
#ifndef MU_LAUNCHER_RUNTIME_H
#define MU_LAUNCHER_RUNTIME_H

#include <stdbool.h>

#include "comm/comm.h"
#include "launcher/bind.h"
#include "launcher/option_rows.h"
#include "launcher/options.h"
#include "launcher/placement.h"
#include "kernels/ops.h"
#include "shard/layout.h"
#include "shard/optimizer.h"

/* The option-table rows of the daemon commands that choose the communicator, the kernel
 * backend and the binding (run, bench step): one wording for both. */
// clang-format off
#define MU_RUNTIME_BACKEND_OPTIONS(comm_field, timeout_field, backend_field, bind_field)           \
    {"comm", MU_KNOB_COMM_VAR, MU_OPT_CHOICE, "C", "auto", 0, 0, "auto|mpi|nccl|loopback",             \
     "communicator: auto (nccl with the cuda backend, else mpi), mpi, nccl or loopback",          \
     comm_field},                                                                                  \
    {"comm-timeout", "MUOND_COMM_TIMEOUT", MU_OPT_DOUBLE, "S", "0", 0, 86400, NULL,                \
     "a collective still running after S seconds fails the step, naming the ranks that do not "  \
     "answer (mpi), or aborts the communicator (nccl) (0: 300 s)",                                \
     timeout_field},                                                                               \
    MU_OPTION_BACKEND(backend_field),                                                              \
    {"bind", "MUOND_BIND", MU_OPT_CHOICE, "HOW", "auto", 0, 0, MU_BIND_CHOICES,                    \
     "hwloc binding within the cpus the launcher gave: core (split the node's cores by local "    \
     "rank), numa (a NUMA node each), gpu (the NUMA node nearest the rank's GPU), auto (gpu "      \
     "with a GPU, else core) or none",                                                            \
     bind_field}

/* How the exchange's all-to-all is routed (comm/mpi/mpi_hierarchical.h). */
#define MU_EXCHANGE_OPTION(field)                                                                  \
    {"exchange", "MUOND_EXCHANGE", MU_OPT_CHOICE, "HOW", "flat", 0, 0, "flat|hierarchical",        \
     "the exchange's all-to-all: flat (every rank to every peer) or hierarchical (within each "   \
     "node, then between nodes along one rank per node: fewer peers, the same bytes; mpi only)",  \
     field}

/* The wave-checksum switch (shard/transit.c), for the commands that run steps. */
#define MU_WAVE_CHECKSUMS_OPTION(field)                                                            \
    {"wave-checksums", "MUOND_WAVE_CHECKSUMS", MU_OPT_CHOICE, "ON", "on", 0, 0, "on|off",          \
     "an XXH3 checksum per exchanged segment, verified on receipt; a mismatch resends the wave "  \
     "once, a second one stops the job naming sender, receiver, parameter and step",              \
     field}
// clang-format on

typedef struct mu_runtime_opts {
    const char *layout_path;
    const char *comm;      /* auto | mpi | nccl | loopback */
    const char *backend;   /* auto | cuda | cpu | reference */
    const char *bind;      /* one of MU_BIND_CHOICES; NULL: auto */
    double comm_timeout_s; /* 0: the comm backend's default */
    const char *exchange;  /* flat | hierarchical; NULL: flat */
    int blas_threads;
    const mu_io_provider_t *io; /* NULL: weights and gradients in private memory */
    bool io_device;             /* io shares device memory (trainers open it by CUDA IPC) */
    bool without_layout;        /* no model: no layout, no optimizer (rt->opt stays NULL) */
} mu_runtime_opts_t;

typedef struct mu_runtime {
    bool mpi_started;
    int rank, ranks; /* rank is -1 while MPI is being started */
    mu_placement_t place; /* node, local rank, host, job (one node of one rank without MPI) */
    int stopped_by;       /* the stop signal every rank agreed on (launcher/stop.h), or 0 */
    mu_layout_t *layout;
    mu_comm_t *comm;
    mu_backend_t *be;
    mu_optimizer_t *opt;
} mu_runtime_t;

/* MPI_Init (or a singleton when not launched by mpiexec/srun), the binding, then everything
 * else. */
mu_status_t mu_runtime_start(const mu_runtime_opts_t *o, int *argc, char ***argv, mu_runtime_t *rt);
/* Tears down in reverse order and finalizes MPI; safe after a failed start. */
void mu_runtime_stop(mu_runtime_t *rt);

/* Reports a failure as "muond CMD (rank R): STATUS: message" and returns the exit status. */
int mu_runtime_fail(const mu_runtime_t *rt, const char *command, mu_status_t status);

/* The frame of every daemon subcommand: parse argv against spec into settings, print --help,
 * start the runtime with the options runtime_opts takes from the settings, run body on every
 * rank (its failure is agreed), stop, and return the exit status: 128 + the signal when body
 * ended early on an agreed stop signal (rt->stopped_by). */
typedef mu_status_t (*mu_runtime_body_fn)(mu_runtime_t *rt, const void *settings);
int mu_runtime_main(const char *prog, const mu_command_spec_t *spec, int argc, char **argv,
                    void *settings, mu_runtime_opts_t (*runtime_opts)(const void *settings),
                    mu_runtime_body_fn body);

#endif
