/*
 * muond launch: the daemon and its trainers together, the analog of torchrun.
 *
 *     muond launch -n N [--layout F | --from-model SPEC] [muond run options] -- CMD ARGS...
 *
 * On one machine it starts `mpiexec -n N muond run` and N trainers (CMD), each told its rank;
 * inside a Slurm allocation it runs the two steps slurm/muond.sbatch runs (srun --mpi=pmix for
 * the daemon, srun --overlap for the trainers). Rank 0's output stays on the terminal, the
 * others' and the daemon's go to log files. Signals are forwarded, a failing trainer stops the
 * job, and everything is torn down by PID (launcher/supervise.h); the exit status is the
 * trainers'.
 */
#define _GNU_SOURCE /* asprintf */
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/transport.h"
#include "launcher/commands.h"
#include "launcher/launch.h"
#include "launcher/option_rows.h"
#include "launcher/options.h"
#include "shard/layout.h"

enum { LAUNCH_RANKS_MAX = 4096 };

#define FIELD(f) offsetof(mu_launch_settings_t, f)
static const mu_option_t launch_options[] = {
    {"ranks", "MUOND_RANKS", MU_OPT_INT, "N", "0", 0, LAUNCH_RANKS_MAX, NULL,
     "daemon ranks and trainers (-n N; 0: Slurm's task count inside an allocation)", FIELD(ranks)},
    MU_OPTION_LAYOUT("the model layout (JSON; see shard/layout.h)", FIELD(layout)),
    {"from-model", NULL, MU_OPT_STRING, "SPEC", NULL, 0, 0, NULL,
     "write the layout from a model instead: MODULE:FN or FILE.py:FN returning a "
     "torch.nn.Module (muond.layout_from_model) or a layout dict",
     FIELD(from_model)},
    {"method", NULL, MU_OPT_CHOICE, "M", "polar-express", 0, 0, "polar-express|ns5|gram|shampoo",
     "with --from-model: the hidden weights' method", FIELD(method)},
    {"schedule", NULL, MU_OPT_CHOICE, "S", "fixed", 0, 0, "fixed|adaptive",
     "with --from-model and a torch.nn.Module: fixed or adaptive Polar Express schedules "
     "(optimizer.polar_express.schedule)",
     FIELD(schedule)},
    {"gradient-mode", NULL, MU_OPT_CHOICE, "MODE", "local", 0, 0, "local|sharded",
     "with --from-model: local (DDP-style trainers) or sharded", FIELD(gradient_mode)},
    {"python", MU_KNOB_PYTHON_VAR, MU_OPT_STRING, "PATH", MU_KNOB_PYTHON_DEFAULT, 0, 0, NULL,
     "the Python that runs --from-model", FIELD(python)},
    {"slurm", NULL, MU_OPT_CHOICE, "WHEN", "auto", 0, 0, "auto|on|off",
     "start both with srun: auto (inside a Slurm allocation), on or off (mpiexec)", FIELD(slurm)},
    {"mpiexec", "MPIEXEC", MU_OPT_STRING, "PATH", "mpiexec", 0, 0, NULL,
     "the mpiexec that starts the daemon off Slurm", FIELD(mpiexec)},
    {"log-dir", "MUOND_LAUNCH_LOG_DIR", MU_OPT_STRING, "DIR", NULL, 0, 0, NULL,
     "where the daemon's and trainers 1..N-1's output goes (default: the run's private "
     "directory, removed after a clean end, kept after a failure)",
     FIELD(log_dir)},
    {"grace", NULL, MU_OPT_DOUBLE, "SECONDS", "30", 0.1, 86400, NULL,
     "how long the daemon may take to end after the trainers (and they after it) before it is "
     "stopped",
     FIELD(grace)},
    {"kill-after", NULL, MU_OPT_DOUBLE, "SECONDS", "15", 0.1, 86400, NULL,
     "after a stop (a signal, a failed trainer, the grace), how long before SIGKILL",
     FIELD(kill_after)},
};
#undef FIELD

static const mu_command_spec_t launch_spec = {
    .name = "launch",
    .usage = "-n N [--layout FILE | --from-model SPEC] [muond run options] -- CMD [ARGS...]",
    .summary =
        "Starts the N-rank daemon (mpiexec; under Slurm, srun --mpi=pmix) and N trainers running\n"
        "CMD, like torchrun. Each trainer gets MUOND_RANK (and RANK, LOCAL_RANK, WORLD_SIZE),\n"
        "MUOND_LAYOUT, MUOND_LAYOUT_DIGEST, MUOND_JOB, MUOND_RUN_DIR, PYTHONPATH with the muond\n"
        "package and OMP_NUM_THREADS=1 unless set. Options of `muond run` (e.g. --checkpoint-dir)\n"
        "before the `--` go to the daemon. Rank 0's output stays here; the daemon's and the other\n"
        "trainers' go to log files. SIGINT/SIGTERM/SIGHUP are forwarded (a second one kills), a\n"
        "trainer that fails stops the job, and every process is torn down by PID. The exit\n"
        "status is the first failing trainer's, else the daemon's, else 0 (128 + S after a\n"
        "signal S).",
    .min_positional = 0,
    .max_positional = 0,
    .options = launch_options,
    .option_count = sizeof launch_options / sizeof launch_options[0],
};

static const mu_option_t *find_option(const mu_command_spec_t *spec, const char *arg)
{
    const size_t len = strcspn(arg + 2, "=");
    for (int i = 0; i < spec->option_count; i++)
        if (strlen(spec->options[i].name) == len &&
            strncmp(spec->options[i].name, arg + 2, len) == 0)
            return &spec->options[i];
    return NULL;
}

static mu_status_t push(char **list, int *count, char *arg)
{
    if (*count >= MU_LAUNCH_ARGS_MAX - 1)
        return mu_error(MU_ERR_INVALID, "launch: more than %d arguments", MU_LAUNCH_ARGS_MAX - 2);
    list[(*count)++] = arg;
    return MU_OK;
}

/* One option before `--` (and its value, when separate): launch's, or the daemon's. */
static mu_status_t sort_option(mu_launch_argv_t *a, int argc, char **argv, int *i)
{
    char *arg = argv[*i];
    if (strncmp(arg, "-n", 2) == 0) { /* -n N or -nN, as mpiexec and torchrun spell it */
        MU_CHECK(push(a->own, &a->own_count, "--ranks"));
        if (arg[2] != '\0')
            return push(a->own, &a->own_count, arg + 2);
        if (++*i >= argc)
            return mu_error(MU_ERR_INVALID, "launch: -n needs a rank count");
        return push(a->own, &a->own_count, argv[*i]);
    }
    if (strncmp(arg, "--", 2) != 0)
        return mu_error(MU_ERR_INVALID,
                        "launch: '%s' before '--': the trainer command goes "
                        "after '--' (muond launch --help)",
                        arg);
    const mu_option_t *opt = find_option(&launch_spec, arg);
    const bool own = opt || strcmp(arg, "--help") == 0;
    if (!opt)
        opt = find_option(mu_run_command_spec(), arg);
    if (!own && !opt)
        return mu_error(MU_ERR_INVALID,
                        "launch: unknown option '%s' (neither muond launch's nor "
                        "muond run's; see their --help)",
                        arg);
    if (!own && (strncmp(arg, "--trainer", 9) == 0 || strncmp(arg, "--print-socket", 14) == 0))
        return mu_error(MU_ERR_INVALID, "launch: %s is muond launch's to choose", arg);
    char **list = own ? a->own : a->run;
    int *count = own ? &a->own_count : &a->run_count;
    MU_CHECK(push(list, count, arg));
    if (opt && opt->type != MU_OPT_FLAG && !strchr(arg, '=')) {
        if (++*i >= argc)
            return mu_error(MU_ERR_INVALID, "launch: %s needs a value", arg);
        MU_CHECK(push(list, count, argv[*i]));
    }
    return MU_OK;
}

static mu_status_t split_argv(int argc, char **argv, mu_launch_argv_t *a)
{
    *a = (mu_launch_argv_t){0};
    a->own[a->own_count++] = argv[0];
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++)
        MU_CHECK(sort_option(a, argc, argv, &i));
    for (i++; i < argc; i++)
        MU_CHECK(push(a->cmd, &a->cmd_count, argv[i]));
    return MU_OK;
}

/* ---- the run's private directory -------------------------------------------------------- */

static mu_status_t make_private_dir(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return mu_error(MU_ERR_IO, "launch: cannot create %s: %s", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
        return mu_error(MU_ERR_IO, "launch: %s is not a directory of this user", dir);
    return MU_OK;
}

static void remove_flat_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

mu_status_t mu_launch_add_env(mu_child_env_t *env, const char *fmt, const char *value)
{
    if (env->count >= MU_CHILD_ENV_MAX)
        return mu_error(MU_ERR_INVALID, "launch: too many environment variables");
    char *item = NULL;
    if (asprintf(&item, fmt, value) < 0)
        return mu_error(MU_ERR_NOMEM, "launch: out of memory");
    env->item[env->count++] = item;
    return MU_OK;
}

static void free_env(mu_child_env_t *env)
{
    for (int i = 0; i < env->count; i++)
        free(env->item[i]);
    env->count = 0;
}

/* Runs argv to its end (before any child of the job starts): 0 or its exit status. */
static int run_now(char *const argv[], const mu_child_env_t *env)
{
    mu_child_t helper = {.role = "layout writer"};
    if (mu_child_start(&helper, argv, env) != MU_OK)
        return 127;
    int status = 0;
    while (waitpid(helper.pid, &status, 0) < 0 && errno == EINTR) {
    }
    return mu_exit_code(status);
}

/* --from-model: the layout, written by muond.layout_from_model into the run directory. */
static mu_status_t layout_from_model(mu_launch_t *j)
{
    snprintf(j->layout, sizeof j->layout, "%s/layout.json", j->run_dir);
    char *argv[] = {(char *)j->s.python,
                    "-m",
                    "muond",
                    "layout",
                    (char *)j->s.from_model,
                    "--out",
                    j->layout,
                    "--method",
                    (char *)j->s.method,
                    "--schedule",
                    (char *)j->s.schedule,
                    "--gradient-mode",
                    (char *)j->s.gradient_mode,
                    NULL};
    const int code = run_now(argv, &j->env);
    if (code != 0)
        return mu_error(MU_ERR_INVALID,
                        "launch: --from-model %s: the layout writer (%s -m "
                        "muond layout) exited with status %d",
                        j->s.from_model, j->s.python, code);
    return MU_OK;
}

static mu_status_t choose_layout(mu_launch_t *j)
{
    if (!!j->s.layout == !!j->s.from_model)
        return mu_error(MU_ERR_INVALID,
                        "launch: give the model's layout as --layout FILE or --from-model SPEC "
                        "(one of them)");
    if (j->s.from_model)
        MU_CHECK(layout_from_model(j));
    else
        snprintf(j->layout, sizeof j->layout, "%s", j->s.layout);
    mu_layout_t *layout = NULL;
    MU_CHECK(mu_layout_load(j->layout, &layout));
    j->digest = layout->digest;
    mu_layout_destroy(&layout);
    return MU_OK;
}

static mu_status_t choose_ranks(mu_launch_t *j)
{
    const char *slurm_job = getenv("SLURM_JOB_ID");
    j->slurm = strcmp(j->s.slurm, "on") == 0 || (strcmp(j->s.slurm, "auto") == 0 && slurm_job);
    if (j->slurm && !slurm_job)
        return mu_error(MU_ERR_INVALID, "launch: --slurm on outside a Slurm allocation (run it "
                                        "inside sbatch or salloc)");
    j->ranks = (int)j->s.ranks;
    if (j->ranks == 0 && j->slurm && getenv("SLURM_NTASKS"))
        j->ranks = atoi(getenv("SLURM_NTASKS"));
    if (j->ranks < 1)
        return mu_error(MU_ERR_INVALID, "launch: how many ranks? (-n N)");
    return MU_OK;
}

/* The run directory lives in the sockets' private directory (MUOND_SOCKET_DIR, ...). */
static mu_status_t make_run_dir(mu_launch_t *j)
{
    char base[512];
    if (muond_socket_dir(base, sizeof base) != 0)
        return mu_error(MU_ERR_INVALID, "launch: the socket directory path is too long");
    MU_CHECK(make_private_dir(base));
    snprintf(j->job_name, sizeof j->job_name, "launch-%d", (int)getpid());
    if (snprintf(j->run_dir, sizeof j->run_dir, "%s/%s", base, j->job_name) >=
        (int)sizeof j->run_dir)
        return mu_error(MU_ERR_INVALID, "launch: the run directory path is too long");
    MU_CHECK(make_private_dir(j->run_dir));
    snprintf(j->log_dir, sizeof j->log_dir, "%s", j->s.log_dir ? j->s.log_dir : j->run_dir);
    return j->s.log_dir ? make_private_dir(j->log_dir) : MU_OK;
}

/* What every child sees: the job's name, the layout and where the muond pieces are. */
static mu_status_t common_env(mu_launch_t *j)
{
    const char *job = getenv("MUOND_JOB");
    const char *pythonpath = getenv("PYTHONPATH");
    char ranks[16];
    snprintf(ranks, sizeof ranks, "%d", j->ranks);
    MU_CHECK(mu_launch_add_env(&j->env, "MUOND_JOB=%s", job && *job ? job : j->job_name));
    MU_CHECK(mu_launch_add_env(&j->env, "MUOND_RUN_DIR=%s", j->run_dir));
    MU_CHECK(mu_launch_add_env(&j->env, "MUOND_LOG_DIR=%s", j->log_dir));
    MU_CHECK(mu_launch_add_env(&j->env, "MUOND=%s", j->self));
    MU_CHECK(mu_launch_add_env(&j->env, "MUOND_CLIENT_LIB=%s", MUOND_CLIENT_LIB_PATH));
    MU_CHECK(mu_launch_add_env(&j->env, "MUOND_RANKS=%s", ranks));
    MU_CHECK(mu_launch_add_env(&j->env, "WORLD_SIZE=%s", ranks));
    if (pythonpath && *pythonpath) {
        char *joined = NULL;
        if (asprintf(&joined, "%s:%s", MUOND_PYTHON_DIR, pythonpath) < 0)
            return mu_error(MU_ERR_NOMEM, "launch: out of memory");
        MU_CHECK(mu_launch_add_env(&j->env, "PYTHONPATH=%s", joined));
        free(joined);
    } else {
        MU_CHECK(mu_launch_add_env(&j->env, "PYTHONPATH=%s", MUOND_PYTHON_DIR));
    }
    if (!getenv("OMP_NUM_THREADS")) /* N trainers on one node: one thread each, as torchrun */
        MU_CHECK(mu_launch_add_env(&j->env, "OMP_NUM_THREADS=%s", "1"));
    if (geteuid() == 0 && !getenv("OMPI_ALLOW_RUN_AS_ROOT")) {
        MU_CHECK(mu_launch_add_env(&j->env, "OMPI_ALLOW_RUN_AS_ROOT=%s", "1"));
        MU_CHECK(mu_launch_add_env(&j->env, "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=%s", "1"));
    }
    return MU_OK;
}

static mu_status_t layout_env(mu_launch_t *j)
{
    char digest[32];
    snprintf(digest, sizeof digest, "%016llx", (unsigned long long)j->digest);
    MU_CHECK(mu_launch_add_env(&j->env, "MUOND_LAYOUT=%s", j->layout));
    return mu_launch_add_env(&j->env, "MUOND_LAYOUT_DIGEST=%s", digest);
}

static mu_status_t prepare(mu_launch_t *j, int argc, char **argv)
{
    MU_CHECK(split_argv(argc, argv, &j->argv));
    mu_parsed_t parsed;
    MU_CHECK(mu_options_parse(&launch_spec, j->argv.own_count, j->argv.own, &j->s, &parsed));
    if (parsed.help) {
        mu_options_print_help(&launch_spec, stdout);
        printf("\nmuond run's options (passed to the daemon) are listed by 'muond run --help'.\n");
        exit(MU_EXIT_OK);
    }
    if (j->argv.cmd_count == 0)
        return mu_error(MU_ERR_INVALID, "launch: no trainer command (put it after '--', e.g. "
                                        "muond launch -n 4 --layout F -- python3 train.py)");
    MU_CHECK(mu_self_path(j->self, sizeof j->self));
    MU_CHECK(choose_ranks(j));
    MU_CHECK(make_run_dir(j));
    MU_CHECK(common_env(j));
    MU_CHECK(choose_layout(j));
    return layout_env(j);
}

int mu_cmd_launch(int argc, char **argv)
{
    static mu_launch_t j; /* large; one per process */
    mu_status_t status = prepare(&j, argc, argv);
    int code = MU_EXIT_USAGE;
    if (status == MU_OK)
        code = mu_launch_run(&j);
    else
        mu_command_fail("launch", status);
    /* Kept only when it holds the logs of a job that failed. */
    const bool keep = status == MU_OK && code != 0 && strcmp(j.log_dir, j.run_dir) == 0;
    if (j.run_dir[0] && !keep)
        remove_flat_dir(j.run_dir);
    else if (keep)
        fprintf(stderr, "muond launch: logs kept in %s\n", j.run_dir);
    free_env(&j.env);
    return code;
}
