/* The muond subcommands and their shared exit-status convention. */
#ifndef MU_LAUNCHER_COMMANDS_H
#define MU_LAUNCHER_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/status.h"

/* Exit statuses: 2 means the input or the invocation was wrong (a bad file, option or
 * layout), so retrying the same command cannot help; 1 is any other failure. */
enum { MU_EXIT_OK = 0, MU_EXIT_FAILURE = 1, MU_EXIT_USAGE = 2 };
/* A run that stopped cleanly on signal S exits 128 + S, as a shell reports a signal death. */
enum { MU_EXIT_SIGNAL_BASE = 128 };

/* Reports the error (message and trail) on stderr and returns the exit status for it. */
int mu_command_fail(const char *command, mu_status_t status);

/* The running muond binary's path (for the processes it starts to call back). */
mu_status_t mu_self_path(char *out, size_t out_len);
/* The python3 that runs muond's Python parts: MUOND_PYTHON, else Debian's /usr/bin/python3. */
const char *mu_python_path(void);

int mu_cmd_run(int argc, char **argv);
int mu_cmd_launch(int argc, char **argv);
/* muond run's option table (muond launch passes the daemon's options on). */
struct mu_command_spec;
const struct mu_command_spec *mu_run_command_spec(void);
int mu_cmd_check(int argc, char **argv);

/* Each takes argv[0] = the subcommand's own name. */
int mu_cmd_orth(int argc, char **argv);
/* muond orth --method scalapack: collective over the processes mpiexec/srun started. */
int mu_orth_scalapack(const char *in_path, const char *out_path, bool residual);
int mu_cmd_coeffs(int argc, char **argv);
int mu_cmd_root(int argc, char **argv);
int mu_cmd_blas(int argc, char **argv);
int mu_cmd_bench(int argc, char **argv);
int mu_cmd_model(int argc, char **argv);

#endif
