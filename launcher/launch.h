/*
 * Private to `muond launch` (cmd_launch.c reads the command line, prepares the run directory,
 * the layout and the environment; launch_start.c starts the daemon and the trainers, under
 * mpiexec or srun, and supervises them).
 */
#ifndef MU_LAUNCHER_LAUNCH_H
#define MU_LAUNCHER_LAUNCH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"
#include "launcher/supervise.h"

enum { MU_LAUNCH_ARGS_MAX = 256 };

typedef struct mu_launch_settings {
    long ranks;
    const char *layout, *from_model, *method, *schedule, *gradient_mode, *python, *slurm, *log_dir;
    const char *mpiexec;
    double grace, kill_after;
} mu_launch_settings_t;

/* The command line, split: launch's own options, those for `muond run`, and the trainer
 * command after `--` (each NULL-terminated). */
typedef struct mu_launch_argv {
    int own_count, run_count, cmd_count;
    char *own[MU_LAUNCH_ARGS_MAX], *run[MU_LAUNCH_ARGS_MAX], *cmd[MU_LAUNCH_ARGS_MAX];
} mu_launch_argv_t;

typedef struct mu_launch {
    mu_launch_settings_t s;
    mu_launch_argv_t argv;
    bool slurm; /* srun for both steps */
    int ranks;
    char run_dir[512]; /* private (0700), in the sockets' directory */
    char log_dir[512];
    char layout[1024];
    char job_name[64];
    char self[1024]; /* this muond binary */
    uint64_t digest;
    mu_child_env_t env; /* what every child gets */
} mu_launch_t;

/* Appends "fmt with value" (e.g. "MUOND_JOB=%s") to env. */
mu_status_t mu_launch_add_env(mu_child_env_t *env, const char *fmt, const char *value);

/* Starts the daemon and the trainers and supervises them to the end: the exit status. */
int mu_launch_run(mu_launch_t *launch);

#endif
