/*
 * muond bench fallback: what certification and the exact fallback cost, under mpiexec -n P.
 * For each shape, on a Gaussian matrix, rank 0 (the owner) times fp32 Polar Express and the
 * certificate after it (kernels/certificate.h); then every rank times the ScaLAPACK fallback of
 * the same matrix (fp64, owner rank 0, all P ranks on the grid; the slowest rank counts).
 * Reported as ratios taken in the same run: certificate / Polar Express and fallback /
 * Polar Express. Medians of --runs after --warmup.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/rng.h"
#include "fallback/fallback.h"
#include "kernels/orth.h"
#include "kernels/certificate.h"
#include "launcher/bench.h"
#include "launcher/commands.h"
#include "launcher/option_rows.h"
#include "launcher/options.h"
#include "launcher/runtime.h"

typedef struct fallback_settings {
    mu_str_list_t shapes;
    const char *backend;
    long runs, warmup, iters, blas_threads;
} fallback_settings_t;

#define FIELD(f) offsetof(fallback_settings_t, f)
static const mu_option_t fallback_options[] = {
    {"shape", NULL, MU_OPT_LIST, "RxC[,RxC...]", "512x512,1024x1024,2048x2048", 0, 0, NULL,
     "matrix shapes", FIELD(shapes)},
    {"runs", NULL, MU_OPT_INT, "N", "3", 1, 1000, NULL,
     "timed runs per measurement (the median is reported)", FIELD(runs)},
    MU_OPTION_WARMUP("runs", FIELD(warmup)),
    MU_OPTION_ITERS("5", 1, "Polar Express steps (5: the example layouts')", FIELD(iters)),
    MU_OPTION_BLAS_THREADS(FIELD(blas_threads)),
    MU_OPTION_BACKEND(FIELD(backend)),
};
#undef FIELD

static const mu_command_spec_t fallback_spec = {
    .name = "bench fallback",
    .usage = "[--shape RxC,...] [--runs N] [--iters T] [options]",
    .summary = "Times fp32 Polar Express and its certificate on rank 0, and the exact\n"
               "ScaLAPACK fallback (fp64) of the same Gaussian matrix on a grid over all ranks\n"
               "(run it under mpiexec -n P). Prints certificate / Polar Express and fallback /\n"
               "Polar Express, from the same run.",
    .min_positional = 0,
    .max_positional = 0,
    .options = fallback_options,
    .option_count = sizeof fallback_options / sizeof fallback_options[0],
};

typedef struct fallback_row {
    long rows, cols;
    double pe_ms, certificate_ms, fallback_ms;
    mu_fallback_report_t report;
} fallback_row_t;

/* Rank 0: median times of Polar Express and of its certificate on g (fp32). */
static mu_status_t time_fast_path(mu_backend_t *be, const fallback_settings_t *s,
                                  const double *g, fallback_row_t *row)
{
    mu_orth_opts_t o;
    mu_orth_opts_default(&o);
    o.iters = (int)s->iters;
    mu_orth_plan_t *plan = NULL;
    mu_mat_t dg = {0}, dq = {0};
    double *pe = malloc(sizeof *pe * (size_t)s->runs), *cert = malloc(sizeof *cert * (size_t)s->runs);
    mu_status_t status = pe && cert ? MU_OK : mu_error(MU_ERR_NOMEM, "bench: samples");
    MU_TRY(status, mu_orth_plan_create(be, row->rows, row->cols, &o, &plan));
    mu_cert_limits_t limits = {0};
    if (plan)
        mu_orth_plan_cert_limits(plan, &limits);
    MU_TRY(status, mu_k_alloc(be, row->rows, row->cols, MU_DTYPE_F32, &dg));
    MU_TRY(status, mu_k_alloc(be, row->rows, row->cols, MU_DTYPE_F32, &dq));
    MU_TRY(status, mu_k_upload(be, g, MU_DTYPE_F64, row->cols, &dg));
    for (long i = -s->warmup; status == MU_OK && i < s->runs; i++) {
        const double t0 = mu_seconds();
        mu_orth_report_t report = {0};
        status = mu_orth_execute(plan, &dg, &dq, &report);
        const double t1 = mu_seconds();
        mu_cert_t c;
        MU_TRY(status, mu_cert_measure(be, &dg, &dq, report.input_norm, &limits, NULL, &c));
        MU_TRY(status, mu_k_synchronize(be));
        if (i >= 0) {
            pe[i] = 1e3 * (t1 - t0);
            cert[i] = 1e3 * (mu_seconds() - t1);
        }
    }
    if (status == MU_OK) {
        row->pe_ms = mu_bench_median(pe, (int)s->runs);
        row->certificate_ms = mu_bench_median(cert, (int)s->runs);
    }
    free(pe);
    free(cert);
    mu_k_release(be, &dg);
    mu_k_release(be, &dq);
    mu_orth_plan_destroy(&plan);
    return status;
}

/* All ranks: the median of the slowest rank's fallback time. */
static mu_status_t time_fallback(mu_runtime_t *rt, mu_fallback_t *fb, const fallback_settings_t *s,
                                 const double *g, double *q, fallback_row_t *row)
{
    double *samples = malloc(sizeof *samples * (size_t)s->runs);
    MU_CHECK(mu_comm_agree(rt->comm, samples ? MU_OK : mu_error(MU_ERR_NOMEM, "bench: samples")));
    mu_status_t status = MU_OK;
    for (long i = -s->warmup; status == MU_OK && i < s->runs; i++) {
        status = mu_comm_barrier(rt->comm);
        MU_TRY(status, mu_fallback_polar(fb, 0, row->rows, row->cols, g, q, &row->report));
        double seconds = row->report.seconds;
        MU_TRY(status, mu_comm_allreduce(rt->comm, &seconds, 1, MU_COMM_F64, MU_COMM_MAX));
        if (i >= 0)
            samples[i] = 1e3 * seconds;
    }
    if (status == MU_OK)
        row->fallback_ms = mu_bench_median(samples, (int)s->runs);
    free(samples);
    return status;
}

static void print_row(const mu_runtime_t *rt, const fallback_row_t *r)
{
    char shape[48], grid[16];
    snprintf(shape, sizeof shape, "%ldx%ld", r->rows, r->cols);
    snprintf(grid, sizeof grid, "%dx%d", r->report.nprow, r->report.npcol);
    printf("%-11s %5d %5s %10.1f %10.2f %8.2f%% %12.1f %9.2fx  %s\n", shape, rt->ranks, grid,
           r->pe_ms, r->certificate_ms, 100.0 * r->certificate_ms / r->pe_ms, r->fallback_ms,
           r->fallback_ms / r->pe_ms, mu_fallback_route_name(r->report.route));
    fflush(stdout);
}

static mu_status_t bench_one(mu_runtime_t *rt, mu_fallback_t *fb, const fallback_settings_t *s,
                             fallback_row_t *row)
{
    const bool owner = rt->rank == 0;
    const size_t count = (size_t)(row->rows * row->cols);
    double *g = owner ? malloc(sizeof *g * count) : NULL, *q = owner ? malloc(sizeof *q * count)
                                                                     : NULL;
    mu_status_t status = !owner || (g && q) ? MU_OK : mu_error(MU_ERR_NOMEM, "bench: matrix");
    for (size_t i = 0; owner && status == MU_OK && i < count; i++)
        g[i] = mu_rng_normal(1, 0x62656e6368ULL, i); /* "bench" */
    if (owner && status == MU_OK)
        status = time_fast_path(rt->be, s, g, row);
    status = mu_comm_agree(rt->comm, status);
    MU_TRY(status, time_fallback(rt, fb, s, g, q, row));
    if (status == MU_OK && owner)
        print_row(rt, row);
    free(g);
    free(q);
    return status;
}

static mu_status_t body(mu_runtime_t *rt, const void *settings)
{
    const fallback_settings_t *s = settings;
    fallback_row_t rows[MU_LIST_MAX] = {0};
    for (int i = 0; i < s->shapes.count; i++)
        MU_CHECK(mu_bench_parse_shape(s->shapes.item[i], &rows[i].rows, &rows[i].cols));
    mu_fallback_t *fb = NULL;
    MU_CHECK(mu_fallback_create(rt->comm, &fb));
    if (rt->rank == 0)
        printf("# muond bench fallback: %d rank(s); fp32 Polar Express (T = %ld) and its "
               "certificate on rank 0, the fp64 fallback on all ranks; median of %ld runs\n"
               "%-11s %5s %5s %10s %10s %9s %12s %10s  %s\n",
               rt->ranks, s->iters, s->runs, "shape", "ranks", "grid", "PE ms", "cert ms",
               "cert/PE", "fallback ms", "fb/PE", "route");
    mu_status_t status = MU_OK;
    for (int i = 0; i < s->shapes.count && status == MU_OK; i++) {
        MU_LOG(MU_LOG_INFO, MU_SUB_LAUNCHER, "bench fallback: %ldx%ld", rows[i].rows,
               rows[i].cols);
        status = bench_one(rt, fb, s, &rows[i]);
    }
    mu_fallback_destroy(&fb);
    return status;
}

static mu_runtime_opts_t runtime_opts(const void *settings)
{
    const fallback_settings_t *s = settings;
    return (mu_runtime_opts_t){.comm = "auto", .backend = s->backend,
                               .blas_threads = (int)s->blas_threads, .without_layout = true};
}

int mu_bench_fallback(int argc, char **argv)
{
    fallback_settings_t s = {0};
    return mu_runtime_main("bench fallback", &fallback_spec, argc, argv, &s, runtime_opts,
                           body);
}
