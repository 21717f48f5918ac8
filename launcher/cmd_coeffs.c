/* muond coeffs: print the Polar Express schedule, one "a b c" row per step. */
#include <stddef.h>
#include <stdio.h>

#include "core/log.h"
#include "kernels/schedule.h"
#include "launcher/commands.h"
#include "launcher/option_rows.h"
#include "launcher/options.h"

typedef struct coeffs_settings {
    double lower, cushion, safety;
    long iters;
} coeffs_settings_t;

#define FIELD(f) offsetof(coeffs_settings_t, f)
static const mu_option_t coeffs_options[] = {
    MU_OPTION_ITERS("8", 1, "number of steps (8: Polar Express's default in muond orth)",
                    FIELD(iters)),
    MU_OPTION_SCHEDULE("lower bound l of the normalized singular values", FIELD(lower),
                       FIELD(cushion), FIELD(safety)),
};
#undef FIELD

static const mu_command_spec_t coeffs_spec = {
    .name = "coeffs",
    .usage = "[--lower L] [--iters T] [--cushion C] [--safety S]",
    .summary = "Computes the Polar Express schedule (Amsel et al. 2025) by the greedy minimax\n"
               "recurrence and prints one row 'a b c' per step (p(x) = a x + b x^3 + c x^5),\n"
               "17 significant digits, safety already applied. The error bound of the whole\n"
               "schedule on [L, 1] goes to stderr.",
    .min_positional = 0,
    .max_positional = 0,
    .options = coeffs_options,
    .option_count = sizeof coeffs_options / sizeof coeffs_options[0],
};

int mu_cmd_coeffs(int argc, char **argv)
{
    coeffs_settings_t s = {0};
    mu_parsed_t parsed;
    mu_status_t status = mu_options_parse(&coeffs_spec, argc, argv, &s, &parsed);
    if (status != MU_OK)
        return mu_command_fail("coeffs", status);
    if (parsed.help) {
        mu_options_print_help(&coeffs_spec, stdout);
        return MU_EXIT_OK;
    }
    mu_schedule_t sched;
    status = mu_schedule_polar_express(s.lower, (int)s.iters, s.cushion, s.safety, &sched);
    if (status != MU_OK)
        return mu_command_fail("coeffs", status);
    for (int t = 0; t < sched.iters; t++)
        printf("%.17g %.17g %.17g\n", sched.step[t].a, sched.step[t].b, sched.step[t].c);
    MU_LOG(MU_LOG_INFO, MU_SUB_KERNELS, "max |f(x) - 1| over [%g, 1] after %d steps: %.3e", s.lower,
           sched.iters, mu_schedule_error_bound(&sched, s.lower, 1.0));
    return MU_EXIT_OK;
}
