/* muond coeffs: print the Polar Express schedule, or an inverse-root schedule (Inverse Root
 * Express, or coupled Newton in the same scalar model), one "a b c" row per step. */
#include <stddef.h>
#include <stdio.h>

#include "core/log.h"
#include "kernels/root_schedule.h"
#include "kernels/schedule.h"
#include "launcher/commands.h"
#include "launcher/option_rows.h"
#include "launcher/options.h"

typedef struct coeffs_settings {
    double lower, cushion, safety, tol, root_cushion;
    long iters, p;
    bool inverse_root, newton;
} coeffs_settings_t;

#define FIELD(f) offsetof(coeffs_settings_t, f)
static const mu_option_t coeffs_options[] = {
    MU_OPTION_ITERS("8", 1, "number of steps (8: Polar Express's default in muond orth)",
                    FIELD(iters)),
    MU_OPTION_SCHEDULE("lower bound l of the normalized singular values (with --inverse-root: "
                       "of the eigenvalues of A/s, s >= lambda_max)",
                       FIELD(lower), FIELD(cushion), FIELD(safety)),
    {"inverse-root", NULL, MU_OPT_FLAG, NULL, NULL, 0, 0, NULL,
     "print the Inverse Root Express schedule for A^(-1/p) B instead: rows 'a b c' of "
     "q(y) = a + b y + c y^2; each step's interval and error, the bound and the GEMM count go "
     "to stderr (--cushion and --safety do not apply)",
     FIELD(inverse_root)},
    {"root-cushion", NULL, MU_OPT_DOUBLE, "C", "0.1", 0, 0.999999, NULL,
     "with --inverse-root: each step is optimized on [max(l, C*u), u], then centred on 1",
     FIELD(root_cushion)},
    {"p", NULL, MU_OPT_INT, "P", "2", 1, 4, NULL, "the root's order, 1, 2 or 4 (--inverse-root)",
     FIELD(p)},
    {"tol", NULL, MU_OPT_DOUBLE, "E", "0", 0, 1, NULL,
     "with --inverse-root: instead of --iters, the fewest steps whose bound ||S_T - I||_2 is "
     "at most E (0: use --iters)",
     FIELD(tol)},
    {"newton", NULL, MU_OPT_FLAG, NULL, NULL, 0, 0, NULL,
     "with --inverse-root: coupled Newton's steps (scaled start) in the same model, to compare",
     FIELD(newton)},
};
#undef FIELD

static const mu_command_spec_t coeffs_spec = {
    .name = "coeffs",
    .usage = "[--lower L] [--iters T] [--cushion C] [--safety S]\n"
             "       muond coeffs --inverse-root [--p P] [--lower L] [--iters T | --tol E] "
             "[--root-cushion C] [--newton]",
    .summary = "Computes the Polar Express schedule (Amsel et al. 2025) by the greedy minimax\n"
               "recurrence and prints one row 'a b c' per step (p(x) = a x + b x^3 + c x^5),\n"
               "17 significant digits, safety already applied. The error bound of the whole\n"
               "schedule on [L, 1] goes to stderr. With --inverse-root: the schedule of the\n"
               "coupled iteration M = q(S), Y <- M Y, S <- M^p S for A^(-1/p) B, from the\n"
               "minimax problem min_q max_{y in [l_k, u_k]} |1 - y q(y)^p| at each step.",
    .min_positional = 0,
    .max_positional = 0,
    .options = coeffs_options,
    .option_count = sizeof coeffs_options / sizeof coeffs_options[0],
};

static mu_status_t print_root_schedule(const coeffs_settings_t *s)
{
    mu_root_schedule_t sched;
    if (s->tol > 0.0)
        MU_CHECK(
            mu_root_schedule_for((int)s->p, s->lower, s->tol, s->root_cushion, s->newton, &sched));
    else if (s->newton)
        MU_CHECK(mu_root_schedule_newton((int)s->p, s->lower, (int)s->iters, &sched));
    else
        MU_CHECK(
            mu_root_schedule_express((int)s->p, s->lower, (int)s->iters, s->root_cushion, &sched));
    for (int k = 0; k < sched.iters; k++) {
        printf("%.17g %.17g %.17g\n", sched.step[k].a, sched.step[k].b, sched.step[k].c);
        MU_LOG(MU_LOG_INFO, MU_SUB_KERNELS, "step %d: [%.6e, %.6e] -> [%.6e, %.6e]", k + 1,
               sched.lo[k], sched.hi[k], sched.lo[k + 1], sched.hi[k + 1]);
    }
    MU_LOG(MU_LOG_INFO, MU_SUB_KERNELS,
           "%s, p = %ld: max |1 - lambda(S_T)| over S_0 in [%g, 1] after %d steps: %.3e "
           "(%d GEMMs for Y = I)",
           s->newton ? "coupled Newton" : "Inverse Root Express", s->p, s->lower, sched.iters,
           mu_root_schedule_bound(&sched), mu_root_schedule_gemms(&sched));
    return MU_OK;
}

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
    if (s.inverse_root) {
        status = print_root_schedule(&s);
        return status == MU_OK ? MU_EXIT_OK : mu_command_fail("coeffs", status);
    }
    if (s.tol > 0.0 || s.newton)
        return mu_command_fail("coeffs", mu_error(MU_ERR_INVALID, "--tol and --newton need "
                                                                  "--inverse-root"));
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
