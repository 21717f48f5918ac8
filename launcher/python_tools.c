/* The subcommands written in Python, each a script of bench/ run by Debian's python3 with this
 * tree's package and client library on the path and MUOND set to this binary:
 *   bench trainer  PyTorch trainers through muond against in-process torch optimizers
 *   bench scaling  the step on 1..N namespace nodes (slurm/local-cluster), with the model
 *   model          the step's phases predicted from layout, plan, kernels and network */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launcher/bench.h"
#include "launcher/commands.h"

enum { PYTHON_ARGS_MAX = 64 };

/* Replaces this process with python3 SCRIPT argv[1..]; returns only on failure. */
static int run_script(const char *command, const char *script, int argc, char **argv)
{
    char self[1024];
    if (argc > PYTHON_ARGS_MAX)
        return mu_command_fail(command, mu_error(MU_ERR_INVALID, "too many arguments (%d)", argc));
    const mu_status_t found = mu_self_path(self, sizeof self);
    if (found != MU_OK)
        return mu_command_fail(command, found);
    const char *python = mu_python_path();
    char *args[PYTHON_ARGS_MAX + 3] = {(char *)python, (char *)script};
    for (int i = 1; i < argc; i++)
        args[i + 1] = argv[i];
    setenv("MUOND", self, 1);
    setenv("MUOND_SOURCE_DIR", MUOND_SOURCE_DIR, 0);
    setenv("MUOND_CLIENT_LIB", MUOND_CLIENT_LIB_PATH, 0);
    const char *path = getenv("PYTHONPATH");
    char pythonpath[4096];
    snprintf(pythonpath, sizeof pythonpath, "%s%s%s", MUOND_PYTHON_DIR, path ? ":" : "",
             path ? path : "");
    setenv("PYTHONPATH", pythonpath, 1);
    execv(python, args);
    fprintf(stderr, "muond %s: cannot run %s: %s (set MUOND_PYTHON)\n", command, python,
            strerror(errno));
    return MU_EXIT_FAILURE;
}

int mu_bench_trainer(int argc, char **argv)
{
    return run_script("bench trainer", MUOND_BENCH_DIR "/trainer_step.py", argc, argv);
}

int mu_bench_scaling(int argc, char **argv)
{
    return run_script("bench scaling", MUOND_BENCH_DIR "/scaling.py", argc, argv);
}

int mu_cmd_model(int argc, char **argv)
{
    return run_script("model", MUOND_BENCH_DIR "/scaling_model.py", argc, argv);
}
