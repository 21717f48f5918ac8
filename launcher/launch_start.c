/* `muond launch`: the daemon's and the trainers' command lines, under mpiexec or srun; their
 * start, supervision, and what is said when something fails (see launch.h). */
#define _GNU_SOURCE /* asprintf */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "launcher/launch.h"

enum { TAIL_LINES = 30 }; /* mpiexec adds ~12 lines of its own after a rank failed */

/* Under Slurm one srun runs every trainer: task 0 keeps the terminal, the others write
 * MUOND_LOG_DIR/trainer.<task>.log (a directory every node sees, under Slurm across nodes). */
static char SLURM_WRAPPER[] = "if [ \"$SLURM_PROCID\" != 0 ]; then "
                              "exec \"$@\" >\"$MUOND_LOG_DIR/trainer.$SLURM_PROCID.log\" 2>&1; fi; "
                              "exec \"$@\"";

typedef struct arglist {
    int count;
    char *item[2 * MU_LAUNCH_ARGS_MAX];
    char storage[256];
    size_t used;
} arglist_t;

static void add(arglist_t *a, char *arg)
{
    if (a->count < 2 * MU_LAUNCH_ARGS_MAX - 1)
        a->item[a->count++] = arg;
    a->item[a->count] = NULL;
}

/* A formatted argument kept in the list's own storage. */
static void addf(arglist_t *a, const char *fmt, long value)
{
    char *at = a->storage + a->used;
    const int n = snprintf(at, sizeof a->storage - a->used, fmt, value);
    if (n > 0 && a->used + (size_t)n + 1 <= sizeof a->storage) {
        a->used += (size_t)n + 1;
        add(a, at);
    }
}

static void daemon_argv(mu_launch_t *j, arglist_t *a)
{
    if (j->slurm) {
        add(a, "srun");
        add(a, "--mpi=pmix"); /* Debian's Open MPI joins through PMIx only */
        add(a, "--overlap");
        add(a, "--kill-on-bad-exit=1");
    } else {
        add(a, (char *)j->s.mpiexec);
        add(a, "--oversubscribe");
    }
    add(a, "-n");
    addf(a, "%ld", j->ranks);
    add(a, j->self);
    add(a, "run");
    add(a, "--layout");
    add(a, j->layout);
    add(a, "--trainer");
    add(a, "socket");
    for (int i = 0; i < j->argv.run_count; i++)
        add(a, j->argv.run[i]);
}

static void slurm_trainers_argv(mu_launch_t *j, arglist_t *a)
{
    add(a, "srun");
    add(a, "--mpi=none");
    add(a, "--overlap");
    add(a, "-n");
    addf(a, "%ld", j->ranks);
    add(a, "sh");
    add(a, "-c");
    add(a, SLURM_WRAPPER);
    add(a, "sh");
    for (int i = 0; i < j->argv.cmd_count; i++)
        add(a, j->argv.cmd[i]);
}

static char *log_path(const mu_launch_t *j, const char *name)
{
    char *path = NULL;
    return asprintf(&path, "%s/%s", j->log_dir, name) < 0 ? NULL : path;
}

/* A trainer of the local job: the job's environment, and its rank as muond launch, torchrun
 * and torch.distributed name it. */
static mu_status_t start_local_trainer(mu_launch_t *j, int rank, mu_child_t *c)
{
    mu_child_env_t env = j->env;
    char value[16], size[16];
    snprintf(value, sizeof value, "%d", rank);
    snprintf(size, sizeof size, "%d", j->ranks);
    mu_status_t status = mu_launch_add_env(&env, "MUOND_RANK=%s", value);
    MU_TRY(status, mu_launch_add_env(&env, "RANK=%s", value));
    MU_TRY(status, mu_launch_add_env(&env, "LOCAL_RANK=%s", value));
    MU_TRY(status, mu_launch_add_env(&env, "LOCAL_WORLD_SIZE=%s", size));
    snprintf(c->role, sizeof c->role, "trainer %d", rank);
    c->log = NULL; /* rank 0 keeps the terminal */
    if (rank > 0) {
        char name[32];
        snprintf(name, sizeof name, "trainer.%d.log", rank);
        c->log = log_path(j, name);
    }
    MU_TRY(status, mu_child_start(c, j->argv.cmd, &env));
    for (int i = j->env.count; i < env.count; i++)
        free(env.item[i]);
    return status;
}

static mu_status_t start_all(mu_launch_t *j, mu_child_t *c, int *started)
{
    arglist_t a = {0};
    daemon_argv(j, &a);
    c[0] = (mu_child_t){.role = "muond", .is_daemon = true, .log = log_path(j, "muond.log")};
    MU_CHECK(mu_child_start(&c[0], a.item, &j->env));
    *started = 1;
    if (j->slurm) {
        arglist_t t = {0};
        slurm_trainers_argv(j, &t);
        c[1] = (mu_child_t){.role = "trainers (srun)"};
        MU_CHECK(mu_child_start(&c[1], t.item, &j->env));
        *started = 2;
        return MU_OK;
    }
    for (int r = 0; r < j->ranks; r++) {
        c[1 + r] = (mu_child_t){0};
        MU_CHECK(start_local_trainer(j, r, &c[1 + r]));
        *started = 2 + r;
    }
    return MU_OK;
}

/* The last lines of a child's log, for a failure report. */
static void print_tail(const char *path)
{
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return;
    char lines[TAIL_LINES][512];
    long n = 0;
    while (fgets(lines[n % TAIL_LINES], sizeof lines[0], f))
        n++;
    fclose(f);
    if (n == 0)
        return;
    fprintf(stderr, "muond launch: the end of %s:\n", path);
    for (long i = n > TAIL_LINES ? n - TAIL_LINES : 0; i < n; i++)
        fprintf(stderr, "  | %s%s", lines[i % TAIL_LINES],
                strchr(lines[i % TAIL_LINES], '\n') ? "" : "\n");
}

static void report_failures(const mu_child_t *c, int count)
{
    for (int i = 0; i < count; i++)
        if (c[i].log && mu_exit_code(c[i].wait_status) != 0)
            print_tail(c[i].log);
}

int mu_launch_run(mu_launch_t *j)
{
    const int count = j->slurm ? 2 : 1 + j->ranks;
    mu_child_t *c = calloc((size_t)count, sizeof *c);
    if (!c) {
        fprintf(stderr, "muond launch: out of memory\n");
        return 1;
    }
    fprintf(stderr, "muond launch: %d rank(s) under %s, layout %s (digest %016llx), logs in %s\n",
            j->ranks, j->slurm ? "srun" : "mpiexec", j->layout, (unsigned long long)j->digest,
            j->log_dir);
    mu_supervise_block_signals();
    int started = 0;
    const mu_status_t status = start_all(j, c, &started);
    if (status != MU_OK) {
        fprintf(stderr, "muond launch: %s\n", mu_error_message());
        for (int i = 0; i < started; i++)
            kill(-c[i].pid, SIGTERM);
    }
    const mu_supervise_opts_t o = {.grace_s = j->s.grace, .kill_s = j->s.kill_after};
    int code = mu_supervise(c, started, &o);
    if (status != MU_OK && code == 0)
        code = 1;
    if (code != 0)
        report_failures(c, started);
    for (int i = 0; i < count; i++)
        free((char *)c[i].log);
    free(c);
    return code;
}
