/*
 * muond bench schedules: fixed against adaptive Polar Express schedules (kernels/adaptive.h)
 * on recorded real matrices (tests/data/momenta: momenta the example trainers dumped). For
 * each matrix: the steps each applies, the median time of each (adaptive's includes its
 * Lanczos sample), and, exactly from fp64 SVDs, each result's descent per unit step
 * <Q, G> / (||Q||_2 ||G||_*) and its reach per direction <Q, U_r V_r^T> / (r ||Q||_2) (what
 * adaptive schedules match, kernels/adaptive.h), so that the time ratio is read beside what
 * it cost.
 * Ratios from the same run; the matrices are timed in alternation, fixed then adaptive.
 */
#include <dirent.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/npy.h"
#include "kernels/orth.h"
#include "kernels/spectrum.h"
#include "launcher/bench.h"
#include "launcher/commands.h"
#include "launcher/option_rows.h"
#include "launcher/options.h"

typedef struct schedules_settings {
    const char *dir, *backend;
    long runs, warmup, iters, blas_threads;
} schedules_settings_t;

#define FIELD(f) offsetof(schedules_settings_t, f)
static const mu_option_t schedules_options[] = {
    {"dir", NULL, MU_OPT_STRING, "DIR", "tests/data/momenta", 0, 0, NULL,
     "folder of 2-D .npy matrices (every *.npy in it, in name order)", FIELD(dir)},
    {"runs", NULL, MU_OPT_INT, "N", "21", MU_BENCH_MIN_RUNS, 10000, NULL,
     "timed runs per matrix and schedule (the median is reported)", FIELD(runs)},
    MU_OPTION_WARMUP("runs", FIELD(warmup)),
    MU_OPTION_ITERS("8", 2,
                    "the fixed schedule's steps (8: the layouts' default), the most "
                    "adaptive may take",
                    FIELD(iters)),
    MU_OPTION_BLAS_THREADS(FIELD(blas_threads)),
    MU_OPTION_BACKEND(FIELD(backend)),
};
#undef FIELD

static const mu_command_spec_t schedules_spec = {
    .name = "bench schedules",
    .usage = "[--dir DIR] [--runs N] [--iters T] [options]",
    .summary = "Times fp32 Polar Express with the fixed schedule (l = 1e-3, T) and with adaptive\n"
               "schedules (l', T' <= T chosen per matrix) on every .npy matrix in DIR, and\n"
               "measures each result's descent per unit step exactly (fp64 SVD). Prints steps,\n"
               "times and descent per matrix, and adaptive / fixed over all of them.",
    .min_positional = 0,
    .max_positional = 0,
    .options = schedules_options,
    .option_count = sizeof schedules_options / sizeof schedules_options[0],
};

typedef struct schedule_run {
    int iters;
    double lower, ms, descent, reach; /* per unit step, exact */
} schedule_run_t;

typedef struct matrix_case {
    const char *name;
    int64_t rows, cols;
    double *host;  /* fp64 row-major */
    double *polar; /* U_r V_r^T, fp64 */
    mu_mat_t g, q;
} matrix_case_t;

/* The exact descent and reach per unit step of the result in mc->q; mc->polar holds G's
 * polar factor U_r V_r^T. */
static mu_status_t exact_measures(mu_backend_t *be, const matrix_case_t *mc, schedule_run_t *out)
{
    const int64_t n = mc->rows * mc->cols;
    double *q = malloc((size_t)n * sizeof *q);
    if (!q)
        return mu_error(MU_ERR_NOMEM, "bench schedules: %s: cannot allocate Q", mc->name);
    mu_host_descent_t d;
    mu_status_t status = mu_k_download(be, &mc->q, q, MU_DTYPE_F64, mc->cols);
    MU_TRY(status, mu_host_descent(mc->host, q, mc->rows, mc->cols, &d));
    if (status == MU_OK && d.q_norm > 0.0 && d.rank > 0) {
        double along = 0.0;
        for (int64_t i = 0; i < n; i++)
            along += q[i] * mc->polar[i];
        out->descent = d.efficiency / d.q_norm;
        out->reach = along / ((double)d.rank * d.q_norm);
    }
    free(q);
    return status;
}

static mu_status_t time_schedule(mu_backend_t *be, mu_orth_plan_t *plan, matrix_case_t *mc,
                                 double *samples, long run, schedule_run_t *out)
{
    mu_orth_report_t report;
    const double start = mu_seconds();
    MU_CHECK(mu_orth_execute(plan, &mc->g, &mc->q, &report));
    MU_CHECK(mu_k_synchronize(be));
    if (run >= 0)
        samples[run] = 1e3 * (mu_seconds() - start);
    out->iters = report.iters;
    out->lower = report.lower;
    return MU_OK;
}

static mu_status_t make_plans(mu_backend_t *be, const schedules_settings_t *s,
                              const matrix_case_t *mc, mu_orth_plan_t *plans[2])
{
    for (int a = 0; a < 2; a++) {
        mu_orth_opts_t o;
        mu_orth_opts_default(&o);
        o.iters = (int)s->iters;
        o.schedule = a ? MU_SCHEDULE_ADAPTIVE : MU_SCHEDULE_FIXED;
        MU_CHECK(mu_orth_plan_create(be, mc->rows, mc->cols, &o, &plans[a]));
    }
    return MU_OK;
}

/* Fixed (runs[0]) and adaptive (runs[1]) on one matrix, timed in alternation. */
static mu_status_t bench_matrix(mu_backend_t *be, const schedules_settings_t *s, matrix_case_t *mc,
                                schedule_run_t runs[2])
{
    mu_orth_plan_t *plans[2] = {NULL, NULL};
    double *samples[2] = {malloc(sizeof(double) * (size_t)s->runs),
                          malloc(sizeof(double) * (size_t)s->runs)};
    mu_status_t status = samples[0] && samples[1] ? MU_OK : mu_error(MU_ERR_NOMEM, "samples");
    MU_TRY(status, make_plans(be, s, mc, plans));
    for (long i = -s->warmup; status == MU_OK && i < s->runs; i++)
        for (int a = 0; a < 2 && status == MU_OK; a++)
            status = time_schedule(be, plans[a], mc, samples[a], i, &runs[a]);
    for (int a = 0; a < 2 && status == MU_OK; a++) {
        runs[a].ms = mu_bench_median(samples[a], (int)s->runs);
        MU_TRY(status, mu_orth_execute(plans[a], &mc->g, &mc->q, NULL));
        MU_TRY(status, exact_measures(be, mc, &runs[a]));
    }
    for (int a = 0; a < 2; a++) {
        mu_orth_plan_destroy(&plans[a]);
        free(samples[a]);
    }
    return status;
}

static mu_status_t load_case(mu_backend_t *be, const char *dir, const char *name, matrix_case_t *mc)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    *mc = (matrix_case_t){.name = name};
    MU_CHECK(mu_npy_read_matrix(path, &mc->host, &mc->rows, &mc->cols));
    if (mc->rows < 1 || mc->cols < 1)
        return mu_error(MU_ERR_INVALID, "%s: an empty matrix", path);
    mc->polar = malloc(sizeof *mc->polar * (size_t)(mc->rows * mc->cols));
    if (!mc->polar)
        return mu_error(MU_ERR_NOMEM, "%s: cannot allocate its polar factor", path);
    MU_CHECK(mu_host_polar(mc->host, mc->rows, mc->cols, mc->polar));
    MU_CHECK(mu_k_alloc(be, mc->rows, mc->cols, MU_DTYPE_F32, &mc->g));
    MU_CHECK(mu_k_alloc(be, mc->rows, mc->cols, MU_DTYPE_F32, &mc->q));
    return mu_k_upload(be, mc->host, MU_DTYPE_F64, mc->cols, &mc->g);
}

static void free_case(mu_backend_t *be, matrix_case_t *mc)
{
    mu_k_release(be, &mc->g);
    mu_k_release(be, &mc->q);
    free(mc->host);
    free(mc->polar);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.npy names in dir, sorted; *count of them. */
static mu_status_t list_matrices(const char *dir, char ***names, int *count)
{
    DIR *d = opendir(dir);
    if (!d)
        return mu_error(MU_ERR_IO, "--dir %s: cannot open the folder", dir);
    *names = NULL;
    *count = 0;
    mu_status_t status = MU_OK;
    for (struct dirent *e; status == MU_OK && (e = readdir(d));) {
        const size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".npy") != 0)
            continue;
        char **grown = realloc(*names, sizeof *grown * (size_t)(*count + 1));
        if (!grown || !(grown[*count] = strdup(e->d_name)))
            status = mu_error(MU_ERR_NOMEM, "bench schedules: the file list");
        if (grown)
            *names = grown;
        if (status == MU_OK)
            (*count)++;
    }
    closedir(d);
    if (status == MU_OK && *count == 0)
        status = mu_error(MU_ERR_INVALID, "--dir %s: no .npy matrix in it", dir);
    if (status == MU_OK)
        qsort(*names, (size_t)*count, sizeof **names, compare_names);
    return status;
}

typedef struct totals {
    double ms[2], steps[2];
    double worst_loss[2], mean_loss[2]; /* of descent and of reach */
    int count;
} totals_t;

static void print_row(const matrix_case_t *mc, const schedule_run_t r[2], totals_t *t)
{
    char shape[32];
    snprintf(shape, sizeof shape, "%lldx%lld", (long long)mc->rows, (long long)mc->cols);
    const double loss[2] = {r[0].descent - r[1].descent, r[0].reach - r[1].reach};
    printf("%-34s %-8s %2d %8.3f %8.5f %7.4f  %6.3g %2d %8.3f %8.5f %7.4f  %6.3f %7.4f %7.4f\n",
           mc->name, shape, r[0].iters, r[0].ms, r[0].descent, r[0].reach, r[1].lower, r[1].iters,
           r[1].ms, r[1].descent, r[1].reach, r[1].ms / r[0].ms, loss[0], loss[1]);
    fflush(stdout);
    for (int a = 0; a < 2; a++) {
        t->ms[a] += r[a].ms;
        t->steps[a] += r[a].iters;
        t->worst_loss[a] = t->count ? fmax(t->worst_loss[a], loss[a]) : loss[a];
        t->mean_loss[a] += loss[a];
    }
    t->count++;
}

static void print_totals(const totals_t *t)
{
    printf("# over %d matrices: adaptive / fixed time %.3f (sum of medians %.3f / %.3f ms), "
           "steps %.3f (mean %.2f / %.2f)\n"
           "# lost per unit step, adaptive against fixed: descent mean %.4f, worst %.4f; reach "
           "mean %.4f, worst %.4f\n",
           t->count, t->ms[1] / t->ms[0], t->ms[1], t->ms[0], t->steps[1] / t->steps[0],
           t->steps[1] / t->count, t->steps[0] / t->count, t->mean_loss[0] / t->count,
           t->worst_loss[0], t->mean_loss[1] / t->count, t->worst_loss[1]);
}

static mu_status_t bench_all(mu_backend_t *be, const schedules_settings_t *s, char **names,
                             int count)
{
    totals_t totals = {0};
    mu_status_t status = MU_OK;
    for (int i = 0; i < count && status == MU_OK; i++) {
        matrix_case_t mc;
        schedule_run_t runs[2] = {{0}};
        status = load_case(be, s->dir, names[i], &mc);
        MU_TRY(status, bench_matrix(be, s, &mc, runs));
        if (status == MU_OK)
            print_row(&mc, runs, &totals);
        free_case(be, &mc);
    }
    if (status == MU_OK)
        print_totals(&totals);
    return status;
}

static mu_status_t run(mu_backend_t *be, const schedules_settings_t *s)
{
    char **names = NULL;
    int count = 0;
    mu_status_t status = list_matrices(s->dir, &names, &count);
    if (status == MU_OK) {
        printf("# muond bench schedules: fp32 Polar Express on %d matrices of %s, fixed "
               "(l = 1e-3, T = %ld) and adaptive (tolerance %.3g); median of %ld runs; exact, "
               "per unit step: descent = <Q,G> / (||Q||_2 ||G||_*), reach = <Q, U_r V_r^T> / "
               "(r ||Q||_2)\n"
               "%-34s %-8s %2s %8s %8s %7s  %6s %2s %8s %8s %7s  %6s %7s %7s\n",
               count, s->dir, s->iters, MU_ADAPTIVE_DEFAULT_TOLERANCE, s->runs, "matrix", "shape",
               "T", "fixed ms", "descent", "reach", "l'", "T'", "adapt ms", "descent", "reach",
               "ratio", "lost d", "lost r");
        status = bench_all(be, s, names, count);
    }
    for (int i = 0; i < count; i++)
        free(names[i]);
    free(names);
    return status;
}

/* One process, no MPI: the benchmark times kernels on this host alone. */
int mu_bench_schedules(int argc, char **argv)
{
    schedules_settings_t s = {0};
    mu_parsed_t parsed;
    mu_backend_t *be = NULL;
    mu_status_t status = mu_options_parse(&schedules_spec, argc, argv, &s, &parsed);
    if (status == MU_OK && parsed.help) {
        mu_options_print_help(&schedules_spec, stdout);
        return MU_EXIT_OK;
    }
    MU_TRY(status, mu_backend_create_for_dtype(s.backend, NULL, MU_DTYPE_F32, &be));
    MU_TRY(status, mu_backend_set_threads(be, (int)s.blas_threads));
    MU_TRY(status, run(be, &s));
    mu_backend_destroy(&be);
    return status == MU_OK ? MU_EXIT_OK : mu_command_fail("bench schedules", status);
}
