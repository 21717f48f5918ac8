/*
 * Every process-wide environment knob of muond, declared once. A subcommand's own settings
 * live in its option table (launcher/options.h; a row's variable there overrides the row's
 * default); these are the ones below every command: read by the library layers (kernels,
 * comm, logging, the trainer transport) wherever muond runs, including inside trainers.
 *
 * `muond --help` lists this table, and `muond run` logs the knobs that are set with its
 * effective settings. The trainer library (libc only, no link to core) takes the variable
 * names from mu_knob_env, so there too each name is written once.
 */
#ifndef MU_CORE_KNOBS_H
#define MU_CORE_KNOBS_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The names that command options share (an option row's variable, read by the option parser
 * before the library would read it): spelled here once for both. */
#define MU_KNOB_BACKEND_VAR    "MUOND_BACKEND"
#define MU_KNOB_COMM_VAR       "MUOND_COMM"
#define MU_KNOB_PYTHON_VAR     "MUOND_PYTHON"
#define MU_KNOB_PYTHON_DEFAULT "/usr/bin/python3"

/* X(ID, variable, values, default, help) */
#define MU_KNOB_TABLE(X)                                                                           \
    X(LOG, "MUOND_LOG", "SPEC", "info",                                                            \
      "log levels: a level (error, warn, info, debug), then SUBSYSTEM=LEVEL overrides, e.g. "      \
      "'warn,kernels=debug'")                                                                      \
    X(BACKEND, MU_KNOB_BACKEND_VAR, "auto|cuda|cpu|dnnl|reference", "auto",                        \
      "the kernel backend wherever a command's --backend is auto")                                 \
    X(COMM, MU_KNOB_COMM_VAR, "auto|mpi|nccl|loopback", "auto",                                    \
      "the communicator wherever a command's --comm is auto")                                      \
    X(BLAS_CORE, "MUOND_BLAS_CORE", "auto|keep|NAME", "auto",                                      \
      "OpenBLAS kernels: auto picks them by CPU features where OpenBLAS fell back to a generic "   \
      "core, keep leaves OpenBLAS's choice, NAME forces a core (muond blas)")                      \
    X(GRAPHS, "MUOND_GRAPHS", "on|0|off", "on",                                                    \
      "CUDA graphs for the polynomial iterations; 0 or off runs every call as it comes "           \
      "(the baseline the graphs are measured against)")                                            \
    X(CUDA_DEVICE, "MUOND_CUDA_DEVICE", "N", "local rank mod devices",                             \
      "the GPU of every rank on the node (benchmarks)")                                            \
    X(CUDA_SYRK, "MUOND_CUDA_SYRK", "auto|syrk|gemm|blocks=N", "auto",                             \
      "how the CUDA backend forms symmetric products (benchmarks)")                                \
    X(PYTHON, MU_KNOB_PYTHON_VAR, "PATH", MU_KNOB_PYTHON_DEFAULT,                                  \
      "the Python of trainers, benchmark peers and muond launch's --python")                       \
    X(SOCKET_DIR, "MUOND_SOCKET_DIR", "DIR", "$XDG_RUNTIME_DIR/muond, else /tmp/muond-UID",        \
      "the private folder (0700) of the trainer sockets")                                          \
    X(JOB, "MUOND_JOB", "NAME", "slurm-JOB, or the Open MPI job id",                               \
      "names one job's sockets, so that two daemons on a node stay apart")                         \
    X(LAYOUT_DIGEST, "MUOND_LAYOUT_DIGEST", "HEX", "(unset)",                                      \
      "set by muond launch for its trainers: the layout digest the daemon must have")              \
    X(DUMP_MOMENTUM, "MUOND_DUMP_MOMENTUM", "DIR[:S,S,...]", "(unset)",                            \
      "each matrix's owner writes the momentum it orthogonalizes at steps S (default 1,10,100) "   \
      "to DIR/PARAM-sS.npy (float32): the real matrices of the certificate's tests")               \
    X(NODE_RANKS, "MUOND_NODE_RANKS", "N", "0 (the shared-memory groups)",                         \
      "--exchange hierarchical treats every N consecutive ranks as one node (tests on one host)")

#define MU_KNOB_ID_(id, env, values, fallback, help) MU_KNOB_##id,
typedef enum mu_knob_id { MU_KNOB_TABLE(MU_KNOB_ID_) MU_KNOB_COUNT } mu_knob_id_t;
#undef MU_KNOB_ID_

/* The variable's name; header-only, for the trainer library, which links no core. */
#define MU_KNOB_ENV_(id, env, values, fallback, help) env, /* in MU_KNOB_ID order */
static inline const char *mu_knob_env(mu_knob_id_t id)
{
    static const char *const names[MU_KNOB_COUNT] = {MU_KNOB_TABLE(MU_KNOB_ENV_)};
    return names[id];
}
#undef MU_KNOB_ENV_

typedef struct mu_knob {
    const char *env, *values, *fallback, *help;
} mu_knob_t;

const mu_knob_t *mu_knob_info(mu_knob_id_t id);

/* The variable's value when set and not empty, else NULL (its default applies). */
const char *mu_knob(mu_knob_id_t id);

/* The table, for --help: one entry per knob, its values, default and help. */
void mu_knobs_print_help(FILE *out);

/* "  MUOND_X = value" for every knob that is set, for the start-up settings dump. */
void mu_knobs_dump(FILE *out);

#ifdef __cplusplus
}
#endif

#endif
