/*
 * muond blas: which OpenBLAS kernels muond runs on this CPU (kernels/cpu/blas_core.h), and
 * `muond blas -- CMD ...` to run another program (a numpy or PyTorch trainer, a test) with
 * the same choice: by the time main runs, muond has set OPENBLAS_CORETYPE where OpenBLAS
 * fell short, and CMD inherits it.
 */
#include <cblas.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kernels/cpu/blas_core.h"
#include "launcher/commands.h"
#include "launcher/option_rows.h"
#include "launcher/options.h"

typedef struct blas_settings {
    bool json, check;
} blas_settings_t;

#define FIELD(f) offsetof(blas_settings_t, f)
static const mu_option_t blas_options[] = {
    MU_OPTION_JSON("print one JSON object", FIELD(json)),
    {"check", NULL, MU_OPT_FLAG, NULL, NULL, 0, 0, NULL,
     "exit 1 when OpenBLAS runs kernels below what the CPU allows", FIELD(check)},
};
#undef FIELD

static const mu_command_spec_t blas_spec = {
    .name = "blas",
    .usage = "[--json] [--check] | -- CMD [ARGS...]",
    .summary = "Prints the CPU's instruction-set level and the OpenBLAS core type muond runs, and\n"
               "how it was chosen. Where Debian's OpenBLAS does not know the CPU model and picks a\n"
               "generic core, muond sets OPENBLAS_CORETYPE by the CPU's features and re-executes\n"
               "itself once before main; OPENBLAS_CORETYPE set by the user is kept, and\n"
               "MUOND_BLAS_CORE=keep|NAME switches the choice off or forces a core.\n"
               "'muond blas -- CMD ARGS' runs CMD with that same environment (for trainers and\n"
               "scripts started outside muond launch, which passes it on by itself).",
    .min_positional = 0,
    .max_positional = 0,
    .options = blas_options,
    .option_count = sizeof blas_options / sizeof blas_options[0],
};

static int run_with_choice(char **command)
{
    execvp(command[0], command);
    fprintf(stderr, "muond blas: cannot run '%s': %s\n", command[0], strerror(errno));
    return errno == ENOENT ? MU_EXIT_USAGE : MU_EXIT_FAILURE;
}

static void print_report(bool json)
{
    char how[256];
    mu_blas_core_describe(how, sizeof how);
    const char *level = mu_isa_level_name(mu_blas_cpu_level());
    const char *core = mu_blas_core_current();
    const char *core_level = mu_isa_level_name(mu_isa_level_of_core(core));
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "cpu", mu_blas_cpu_model());
        cJSON_AddStringToObject(o, "cpu_level", level);
        cJSON_AddStringToObject(o, "core", core);
        cJSON_AddStringToObject(o, "core_level", core_level);
        cJSON_AddBoolToObject(o, "lagging", mu_blas_core_lagging());
        cJSON_AddStringToObject(o, "how", how);
        cJSON_AddStringToObject(o, "openblas", openblas_get_config());
        char *text = cJSON_PrintUnformatted(o);
        if (text)
            printf("%s\n", text);
        cJSON_free(text);
        cJSON_Delete(o);
        return;
    }
    printf("cpu:      %s (%s)\n", mu_blas_cpu_model(), level);
    printf("openblas: %s\n", openblas_get_config());
    printf("core:     %s\n", how);
    printf("verdict:  %s\n", mu_blas_core_lagging() ? "LAGGING: kernels below what the CPU allows"
                                                    : "ok: the kernels use what the CPU allows");
}

int mu_cmd_blas(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--") == 0) {
        if (argc < 3) {
            fprintf(stderr, "muond blas: '--' needs a command to run\n");
            return MU_EXIT_USAGE;
        }
        return run_with_choice(argv + 2);
    }
    blas_settings_t s = {0};
    mu_parsed_t parsed;
    const mu_status_t status = mu_options_parse(&blas_spec, argc, argv, &s, &parsed);
    if (status != MU_OK)
        return mu_command_fail("blas", status);
    if (parsed.help) {
        mu_options_print_help(&blas_spec, stdout);
        return MU_EXIT_OK;
    }
    print_report(s.json);
    return s.check && mu_blas_core_lagging() ? MU_EXIT_FAILURE : MU_EXIT_OK;
}
