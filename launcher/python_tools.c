/* muond bench trainer: PyTorch trainers through muond against in-process torch optimizers
 * (bench/trainer_step.py, run by Debian's python3 with this tree's package and library). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launcher/bench.h"
#include "launcher/commands.h"

enum { BENCH_ARGS_MAX = 64 };

int mu_bench_trainer(int argc, char **argv)
{
    char self[1024];
    if (argc > BENCH_ARGS_MAX)
        return mu_command_fail("bench trainer",
                               mu_error(MU_ERR_INVALID, "too many arguments (%d)", argc));
    const mu_status_t found = mu_self_path(self, sizeof self);
    if (found != MU_OK)
        return mu_command_fail("bench trainer", found);
    const char *python = mu_python_path();
    char *args[BENCH_ARGS_MAX + 3] = {(char *)python, MUOND_BENCH_DIR "/trainer_step.py"};
    for (int i = 1; i < argc; i++)
        args[i + 1] = argv[i];
    setenv("MUOND", self, 1);
    setenv("MUOND_CLIENT_LIB", MUOND_CLIENT_LIB_PATH, 0);
    const char *path = getenv("PYTHONPATH");
    char pythonpath[4096];
    snprintf(pythonpath, sizeof pythonpath, "%s%s%s", MUOND_PYTHON_DIR, path ? ":" : "",
             path ? path : "");
    setenv("PYTHONPATH", pythonpath, 1);
    execv(python, args);
    fprintf(stderr, "muond bench trainer: cannot run %s: %s (set MUOND_PYTHON)\n", python,
            strerror(errno));
    return MU_EXIT_FAILURE;
}
