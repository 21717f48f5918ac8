/*
 * Child processes of `muond launch`: the daemon (mpiexec or srun) and the trainers. Each
 * child runs in its own process group with the launcher's signal mask restored; its output
 * goes to a log file or stays on the launcher's terminal. The supervisor forwards the
 * launcher's stop signals, applies the job's policy (a failing trainer stops the job; the
 * daemon gets a grace period to end after its trainers) and tears everything down by PID:
 * every child and every process below it, found in /proc, ends before it returns.
 */
#ifndef MU_LAUNCHER_SUPERVISE_H
#define MU_LAUNCHER_SUPERVISE_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/status.h"

enum { MU_CHILD_ROLE_MAX = 48, MU_CHILD_ENV_MAX = 24 };

typedef struct mu_child {
    char role[MU_CHILD_ROLE_MAX]; /* "muond", "trainer 3": for messages */
    const char *log;              /* where its output goes; NULL: the launcher's terminal */
    bool is_daemon;
    pid_t pid;
    bool exited;
    int wait_status; /* when exited */
} mu_child_t;

/* Extra environment for a child: "NAME=VALUE" strings, set after fork. */
typedef struct mu_child_env {
    int count;
    char *item[MU_CHILD_ENV_MAX];
} mu_child_env_t;

/* Starts argv (searched on PATH) with env added to the launcher's environment. */
mu_status_t mu_child_start(mu_child_t *child, char *const argv[], const mu_child_env_t *env);

typedef struct mu_supervise_opts {
    double grace_s; /* how long the daemon may take to end after its trainers, and the
                       trainers after the daemon */
    double kill_s;  /* after a stop signal: how long before SIGKILL */
} mu_supervise_opts_t;

/* Runs the job to its end: returns the launcher's exit status (the first failing trainer's,
 * else the daemon's, else 0; 128 + S when the launcher itself got signal S). Call with
 * mu_supervise_block_signals() in effect since before the children started. */
int mu_supervise(mu_child_t *children, int count, const mu_supervise_opts_t *o);

/* Blocks SIGCHLD, SIGINT, SIGTERM and SIGHUP in the launcher (the supervisor takes them
 * synchronously); children get the previous mask back. */
void mu_supervise_block_signals(void);

/* The exit status a shell would report for a wait status (128 + signal for a signal). */
int mu_exit_code(int wait_status);

#endif
