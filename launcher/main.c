/* muond: the command-line entry point. Dispatches to subcommands (launcher/cmd_*.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/knobs.h"
#include "core/log.h"
#include "launcher/commands.h"

typedef struct subcommand {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} subcommand_t;

static const subcommand_t subcommands[] = {
    {"run", "the optimizer daemon (one rank per trainer, under mpiexec or srun)", mu_cmd_run},
    {"launch", "the daemon and N trainers together, like torchrun (mpiexec, or srun)",
     mu_cmd_launch},
    {"check", "validate a layout and print its owner plan", mu_cmd_check},
    {"orth", "orthogonalize one matrix from a .npy file (polar-express, ns5, gram, svd, scalapack)",
     mu_cmd_orth},
    {"coeffs", "print the Polar Express (or, --inverse-root, Inverse Root Express) schedule",
     mu_cmd_coeffs},
    {"root", "A^(-1/p) B for one SPD matrix from .npy files (express, newton, eigh)", mu_cmd_root},
    {"blas", "the OpenBLAS kernels muond runs on this CPU; 'blas -- CMD' runs CMD with them",
     mu_cmd_blas},
    {"bench",
     "benchmarks: 'bench kernels' (orthogonalization), 'bench step' (distributed step), "
     "'bench fallback' (the exact ScaLAPACK solve against the fast path), 'bench scaling' "
     "(1..N nodes)",
     mu_cmd_bench},
    {"model", "predict the step's phases at cluster scale, or validate against bench scaling",
     mu_cmd_model},
};
enum { SUBCOMMAND_COUNT = sizeof subcommands / sizeof subcommands[0] };

/* A bad file, option or layout (exit status 2) gets its one line: the message names what is
 * wrong, and the call trail would only bury it. Internal failures, and every failure under
 * MUOND_LOG=debug, get the trail too. */
int mu_command_fail(const char *command, mu_status_t status)
{
    char prog[128];
    snprintf(prog, sizeof prog, "muond %s", command);
    const bool user_input = status == MU_ERR_INVALID || status == MU_ERR_IO;
    if (user_input && !mu_log_enabled(MU_LOG_DEBUG, MU_SUB_LAUNCHER))
        mu_error_report_line(stderr, prog, status);
    else
        mu_error_report(stderr, prog, status);
    return user_input ? MU_EXIT_USAGE : MU_EXIT_FAILURE;
}

mu_status_t mu_self_path(char *out, size_t out_len)
{
    const ssize_t n = readlink("/proc/self/exe", out, out_len - 1);
    if (n <= 0)
        return mu_error(MU_ERR_IO, "cannot find the muond binary (/proc/self/exe): %s",
                        strerror(errno));
    out[n] = '\0';
    return MU_OK;
}

const char *mu_python_path(void)
{
    const char *python = mu_knob(MU_KNOB_PYTHON);
    return python ? python : MU_KNOB_PYTHON_DEFAULT;
}

static void print_usage(FILE *out)
{
    fprintf(out, "usage: muond <command> [options]   (muond <command> --help for details)\n\n"
                 "muond is a sharded optimizer daemon for Muon-style orthogonalized updates.\n\n"
                 "commands:\n");
    for (int i = 0; i < SUBCOMMAND_COUNT; i++)
        fprintf(out, "  %-8s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(out, "\nenvironment (every command; a command's own options and their variables are in "
                 "its --help):\n");
    mu_knobs_print_help(out);
}

int main(int argc, char **argv)
{
    if (mu_log_configure_environment() != MU_OK)
        return mu_command_fail("(MUOND_LOG)", MU_ERR_INVALID);
    if (argc < 2) {
        print_usage(stderr);
        return MU_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_usage(stdout);
        return MU_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("muond %s\n", MUOND_VERSION);
        return MU_EXIT_OK;
    }
    for (int i = 0; i < SUBCOMMAND_COUNT; i++)
        if (strcmp(argv[1], subcommands[i].name) == 0)
            return subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "muond: unknown command '%s'\n\n", argv[1]);
    print_usage(stderr);
    return MU_EXIT_USAGE;
}
