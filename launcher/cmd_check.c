/* muond check: validate a layout and explain its owner plan for a number of ranks. */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>

#include "launcher/commands.h"
#include "launcher/option_rows.h"
#include "launcher/options.h"
#include "shard/layout.h"
#include "shard/plan.h"

typedef struct check_settings {
    const char *layout;
    long ranks;
    bool json, print_digest;
} check_settings_t;

#define FIELD(f) offsetof(check_settings_t, f)
static const mu_option_t check_options[] = {
    MU_OPTION_LAYOUT("the layout to check", FIELD(layout)),
    {"ranks", NULL, MU_OPT_INT, "P", "1", 1, 1 << 20, NULL, "plan for this many ranks",
     FIELD(ranks)},
    MU_OPTION_JSON("print the plan as one JSON object", FIELD(json)),
    {"print-digest", NULL, MU_OPT_FLAG, NULL, NULL, 0, 0, NULL,
     "print only the layout's digest (what trainers pass as MUOND_LAYOUT_DIGEST)",
     FIELD(print_digest)},
};
#undef FIELD

static const mu_command_spec_t check_spec = {
    .name = "check",
    .usage = "--layout FILE [--ranks P] [--json]",
    .summary = "Validates a layout (every error names the parameter and field; exit status 2)\n"
               "and prints the owner plan for P ranks: per rank the matrices it owns, their\n"
               "FLOPs per step, the bytes it holds while orthogonalizing them, and the memory of\n"
               "its shards; then the imbalance (max/mean FLOPs) and the number of waves.",
    .min_positional = 0,
    .max_positional = 0,
    .options = check_options,
    .option_count = sizeof check_options / sizeof check_options[0],
};

static const double MIB = 1048576.0;

/* Bytes rank r keeps for its shards: W and G plus momentum (matrices) or two moments. */
static double shard_mib(const mu_layout_t *l, int ranks, int r)
{
    double bytes = 0.0;
    for (int i = 0; i < l->param_count; i++) {
        const mu_param_t *p = &l->params[i];
        int64_t b = 0, e = p->rows;
        if (l->settings.grad_mode == MU_GRAD_SHARDED)
            mu_shard_rows(p->rows, ranks, r, &b, &e);
        const double buffers = mu_method_is_matrix(p->method) ? 3.0 : 4.0;
        bytes += buffers * 4.0 * (double)((e - b) * p->cols);
    }
    return bytes / MIB;
}

static void print_text(const mu_layout_t *l, const mu_shard_plan_t *plan)
{
    const mu_settings_t *s = &l->settings;
    printf("layout %s (%s): %d parameters, %d matrices, digest %016llx\n", l->name, l->source,
           l->param_count, plan->entry_count, (unsigned long long)l->digest);
    printf("settings: %s gradients, exchange %s, wave budget %.4g MiB, polar-express T=%d l=%g "
           "(%s schedule), compute %s, scale %s\n",
           s->grad_mode == MU_GRAD_SHARDED ? "sharded" : "local", mu_dtype_name(s->exchange_dtype),
           (double)s->wave_budget_bytes / MIB, s->pe_iters, s->pe_lower,
           mu_schedule_mode_name(s->pe_schedule), mu_dtype_name(s->compute_dtype),
           s->scale == MU_SCALE_SPECTRAL ? "spectral"
           : s->scale == MU_SCALE_RMS    ? "rms"
                                         : "none");
    printf("plan for %d rank(s), %d wave(s):\n", plan->ranks, plan->wave_count);
    printf("%6s %9s %13s %11s %11s\n", "rank", "matrices", "GFLOP/step", "owner MiB", "shard MiB");
    for (int r = 0; r < plan->ranks; r++)
        printf("%6d %9d %13.2f %11.1f %11.1f\n", r, plan->rank_matrices[r],
               plan->rank_flops[r] / 1e9, (double)plan->rank_owner_bytes[r] / MIB,
               shard_mib(l, plan->ranks, r));
    printf("imbalance (max/mean FLOPs): %.4f\n", mu_shard_plan_imbalance(plan));
}

static void print_json(const mu_layout_t *l, const mu_shard_plan_t *plan)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "layout", l->name);
    cJSON_AddNumberToObject(o, "parameters", l->param_count);
    cJSON_AddNumberToObject(o, "matrices", plan->entry_count);
    cJSON_AddNumberToObject(o, "ranks", plan->ranks);
    cJSON_AddNumberToObject(o, "waves", plan->wave_count);
    cJSON_AddNumberToObject(o, "imbalance", mu_shard_plan_imbalance(plan));
    cJSON *ranks = cJSON_AddArrayToObject(o, "per_rank");
    for (int r = 0; r < plan->ranks; r++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "rank", r);
        cJSON_AddNumberToObject(e, "matrices", plan->rank_matrices[r]);
        cJSON_AddNumberToObject(e, "flops", plan->rank_flops[r]);
        cJSON_AddNumberToObject(e, "owner_bytes", (double)plan->rank_owner_bytes[r]);
        cJSON_AddNumberToObject(e, "shard_mib", shard_mib(l, plan->ranks, r));
        cJSON_AddItemToArray(ranks, e);
    }
    char *text = cJSON_PrintUnformatted(o);
    if (text)
        printf("%s\n", text);
    cJSON_free(text);
    cJSON_Delete(o);
}

int mu_cmd_check(int argc, char **argv)
{
    check_settings_t s = {0};
    mu_parsed_t parsed;
    mu_status_t status = mu_options_parse(&check_spec, argc, argv, &s, &parsed);
    if (status == MU_OK && parsed.help) {
        mu_options_print_help(&check_spec, stdout);
        return MU_EXIT_OK;
    }
    if (status == MU_OK && !s.layout)
        status = mu_error(MU_ERR_INVALID, "--layout FILE is required");
    mu_layout_t *layout = NULL;
    mu_shard_plan_t *plan = NULL;
    MU_TRY(status, mu_layout_load(s.layout, &layout));
    MU_TRY(status, mu_shard_plan_build(layout, (int)s.ranks, &plan));
    if (status == MU_OK && s.print_digest) {
        printf("%016llx\n", (unsigned long long)layout->digest);
    } else if (status == MU_OK) {
        if (s.json)
            print_json(layout, plan);
        else
            print_text(layout, plan);
    }
    mu_shard_plan_destroy(&plan);
    mu_layout_destroy(&layout);
    return status == MU_OK ? MU_EXIT_OK : mu_command_fail("check", status);
}
