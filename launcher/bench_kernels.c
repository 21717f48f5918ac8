/*
 * muond bench kernels: for each shape and method, the median time of the orthogonalization
 * after warm-up, its rate on the grouped FLOP count, that rate as a percentage of the GEMM
 * rate measured on the same shape in the same run, the speed relative to Polar Express, and
 * the accuracy max |s_i - 1| of the result (LAPACK, fp64). A table for people; JSON lines
 * with --json.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/rng.h"
#include "kernels/orth.h"
#include "kernels/spectrum.h"
#include "launcher/bench.h"
#include "launcher/commands.h"
#include "launcher/options.h"

typedef struct bench_settings {
    mu_str_list_t shapes, methods;
    const char *dtype, *gram_dtype, *backend;
    long iters, runs, warmup, seed;
    double kappa;
    bool json;
} bench_settings_t;

#define FIELD(f) offsetof(bench_settings_t, f)
static const mu_option_t bench_options[] = {
    {"shape", NULL, MU_OPT_LIST, "MxN", "1024x1024,1024x4096,512x4096", 0, 0, NULL,
     "matrix shapes (repeatable, or comma-separated)", FIELD(shapes)},
    {"method", NULL, MU_OPT_LIST, "M", "polar-express,ns5,gram", 0, 0, NULL,
     "methods: polar-express, ns5, gram, svd (repeatable, or comma-separated)", FIELD(methods)},
    {"dtype", NULL, MU_OPT_CHOICE, "D", "fp32", 0, 0, "fp32|fp64|bf16",
     "precision (bf16: bf16 storage, fp32 accumulation; cuda backend only)", FIELD(dtype)},
    {"gram-dtype", NULL, MU_OPT_CHOICE, "D", "fp32", 0, 0, "fp32|fp64",
     "precision of the Gram-side iteration", FIELD(gram_dtype)},
    {"iters", NULL, MU_OPT_INT, "T", "0", 0, MU_SCHEDULE_MAX_ITERS, NULL,
     "polynomial steps; 0 = each method's default", FIELD(iters)},
    {"runs", NULL, MU_OPT_INT, "N", "7", MU_BENCH_MIN_RUNS, 1000, NULL,
     "timed runs per measurement (the median is reported)", FIELD(runs)},
    {"warmup", NULL, MU_OPT_INT, "N", "1", 0, 100, NULL, "untimed runs first", FIELD(warmup)},
    {"seed", NULL, MU_OPT_INT, "S", "1", 0, 1e15, NULL, "seed of the random test matrices",
     FIELD(seed)},
    {"kappa", NULL, MU_OPT_DOUBLE, "K", "0", 0, 1e15, NULL,
     "0: Gaussian entries; K >= 1: singular values log-spaced over [1/K, 1]", FIELD(kappa)},
    {"backend", "MUOND_BACKEND", MU_OPT_STRING, "B", "auto", 0, 0, NULL,
     "kernel backend: auto (cuda when a GPU is usable, else cpu), cuda, cpu or reference",
     FIELD(backend)},
    {"json", NULL, MU_OPT_FLAG, NULL, NULL, 0, 0, NULL, "print JSON lines instead of a table",
     FIELD(json)},
};
#undef FIELD

static const mu_command_spec_t bench_spec = {
    .name = "bench kernels",
    .usage = "[--shape MxN]... [--method M]... [options]",
    .summary =
        "Times each method on a seeded random matrix of each shape (Gaussian entries, or\n"
        "a chosen condition number with --kappa; a square Gaussian matrix has kappa ~ n,\n"
        "so its smallest singular values lie below l and stay unconverged). Rates count the\n"
        "grouped FLOPs (SYRK as s^2 l); %gemm compares with the GEMM of the same shape\n"
        "(s x s times s x l) timed in the same run; vs-PE is Polar Express's time over the\n"
        "method's; max|s-1| is the result's worst singular value error (LAPACK, fp64).",
    .min_positional = 0,
    .max_positional = 0,
    .options = bench_options,
    .option_count = sizeof bench_options / sizeof bench_options[0],
};

typedef struct bench_shape {
    long rows, cols;
    mu_mat_t g, q, gemm_a, gemm_b, gemm_c;
    double gemm_gflops;
    double pe_ms; /* Polar Express's median on this shape, 0 until measured */
} bench_shape_t;

typedef struct bench_row {
    const char *method;
    int iters;
    double ms, gflops, max_sigma_error;
} bench_row_t;

typedef struct bench_ctx {
    const bench_settings_t *s;
    mu_backend_t *be;
    mu_dtype_t dtype, gram_dtype;
} bench_ctx_t;

typedef mu_status_t (*timed_fn)(const bench_ctx_t *ctx, void *arg);

/* Median wall time in ms of fn over the configured warm-up and timed runs. */
static mu_status_t time_median(const bench_ctx_t *ctx, timed_fn fn, void *arg, double *ms)
{
    double samples[1000];
    for (long i = 0; i < ctx->s->warmup; i++)
        MU_CHECK(fn(ctx, arg));
    MU_CHECK(mu_k_synchronize(ctx->be)); /* asynchronous backends: warm-up ends here */
    for (long i = 0; i < ctx->s->runs; i++) {
        const double start = mu_seconds();
        MU_CHECK(fn(ctx, arg));
        MU_CHECK(mu_k_synchronize(ctx->be));
        samples[i] = 1e3 * (mu_seconds() - start);
    }
    *ms = mu_bench_median(samples, (int)ctx->s->runs);
    return MU_OK;
}

static mu_status_t run_gemm(const bench_ctx_t *ctx, void *arg)
{
    bench_shape_t *sh = arg;
    return mu_k_gemm(ctx->be, MU_NO_TRANS, MU_NO_TRANS, 1.0, &sh->gemm_a, &sh->gemm_b, 0.0,
                     &sh->gemm_c);
}

typedef struct orth_call {
    mu_orth_plan_t *plan;
    bench_shape_t *shape;
} orth_call_t;

static mu_status_t run_orth(const bench_ctx_t *ctx, void *arg)
{
    (void)ctx;
    orth_call_t *call = arg;
    return mu_orth_execute(call->plan, &call->shape->g, &call->shape->q, NULL);
}

/* Gaussian entries, or (kappa >= 1, for the input matrix only) a known condition number. */
static mu_status_t fill_random(const bench_ctx_t *ctx, mu_mat_t *m, uint64_t stream, double kappa)
{
    const size_t count = (size_t)(m->rows * m->cols);
    double *host = malloc(count * sizeof *host);
    if (!host)
        return mu_error(MU_ERR_NOMEM, "bench: cannot allocate %zu elements", count);
    mu_status_t status = MU_OK;
    if (kappa >= 1.0)
        status = mu_host_random_with_condition(m->rows, m->cols, kappa,
                                               (uint64_t)ctx->s->seed + stream, host);
    else
        for (size_t i = 0; i < count; i++)
            host[i] = mu_rng_normal((uint64_t)ctx->s->seed, stream, i);
    if (status == MU_OK)
        status = mu_k_upload(ctx->be, host, MU_DTYPE_F64, m->cols, m);
    free(host);
    return status;
}

/* The GEMM rate of this shape's main product, B (s x s) times X (s x l). */
static mu_status_t measure_gemm(const bench_ctx_t *ctx, bench_shape_t *sh)
{
    const long s = sh->rows < sh->cols ? sh->rows : sh->cols;
    const long l = sh->rows < sh->cols ? sh->cols : sh->rows;
    MU_CHECK(mu_k_alloc(ctx->be, s, s, ctx->dtype, &sh->gemm_a));
    MU_CHECK(mu_k_alloc(ctx->be, s, l, ctx->dtype, &sh->gemm_b));
    MU_CHECK(mu_k_alloc(ctx->be, s, l, ctx->dtype, &sh->gemm_c));
    MU_CHECK(fill_random(ctx, &sh->gemm_a, 2, 0.0));
    MU_CHECK(fill_random(ctx, &sh->gemm_b, 3, 0.0));
    double ms;
    MU_CHECK(time_median(ctx, run_gemm, sh, &ms));
    sh->gemm_gflops = 2.0 * (double)s * (double)s * (double)l / (ms * 1e6);
    return MU_OK;
}

static mu_status_t accuracy(const bench_ctx_t *ctx, const bench_shape_t *sh, double *max_err)
{
    const size_t count = (size_t)(sh->rows * sh->cols);
    double *host = malloc(count * sizeof *host);
    if (!host)
        return mu_error(MU_ERR_NOMEM, "bench: cannot allocate %zu elements", count);
    mu_status_t status = mu_k_download(ctx->be, &sh->q, host, MU_DTYPE_F64, sh->cols);
    if (status == MU_OK)
        status = mu_host_orthogonality(host, sh->rows, sh->cols, max_err, NULL);
    free(host);
    return status;
}

static mu_status_t measure_method(const bench_ctx_t *ctx, bench_shape_t *sh, const char *name,
                                  bench_row_t *row)
{
    mu_orth_opts_t opts;
    mu_orth_opts_default(&opts);
    MU_CHECK(mu_orth_method_parse(name, &opts.method));
    opts.dtype = ctx->dtype;
    opts.gram_dtype = ctx->gram_dtype;
    opts.iters = (int)ctx->s->iters;
    orth_call_t call = {.shape = sh};
    MU_CHECK(mu_orth_plan_create(ctx->be, sh->rows, sh->cols, &opts, &call.plan));
    mu_status_t status;
    MU_CHECK_GOTO(status, time_median(ctx, run_orth, &call, &row->ms), out_with_plan);
    MU_CHECK_GOTO(status, accuracy(ctx, sh, &row->max_sigma_error), out_with_plan);
    const mu_schedule_t *sched = mu_orth_plan_schedule(call.plan);
    row->method = mu_orth_method_name(opts.method);
    row->iters = sched ? sched->iters : 0;
    row->gflops = mu_orth_plan_flops(call.plan) / (row->ms * 1e6);
out_with_plan:
    mu_orth_plan_destroy(&call.plan);
    return status;
}

static void print_table_header(void)
{
    printf("%-11s %-14s %-5s %3s %10s %9s %6s %6s %10s\n", "shape", "method", "dtype", "T", "ms",
           "GFLOP/s", "%gemm", "vs-PE", "max|s-1|");
}

static void print_row(const bench_ctx_t *ctx, const bench_shape_t *sh, const bench_row_t *row)
{
    const double vs_pe = sh->pe_ms > 0.0 ? sh->pe_ms / row->ms : NAN;
    const double pct = 100.0 * row->gflops / sh->gemm_gflops;
    if (!ctx->s->json) {
        char shape[32];
        snprintf(shape, sizeof shape, "%ldx%ld", sh->rows, sh->cols);
        printf("%-11s %-14s %-5s %3d %10.3f %9.1f %5.0f%% %6.2f %10.2e\n", shape, row->method,
               mu_dtype_name(ctx->dtype), row->iters, row->ms, row->gflops, pct, vs_pe,
               row->max_sigma_error);
        fflush(stdout);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "bench", "kernels");
    cJSON_AddStringToObject(o, "backend", mu_backend_name(ctx->be));
    cJSON_AddNumberToObject(o, "rows", (double)sh->rows);
    cJSON_AddNumberToObject(o, "cols", (double)sh->cols);
    cJSON_AddStringToObject(o, "method", row->method);
    cJSON_AddStringToObject(o, "dtype", mu_dtype_name(ctx->dtype));
    cJSON_AddNumberToObject(o, "iters", row->iters);
    cJSON_AddNumberToObject(o, "runs", (double)ctx->s->runs);
    cJSON_AddNumberToObject(o, "kappa", ctx->s->kappa);
    cJSON_AddNumberToObject(o, "median_ms", row->ms);
    cJSON_AddNumberToObject(o, "gflops", row->gflops);
    cJSON_AddNumberToObject(o, "gemm_gflops", sh->gemm_gflops);
    cJSON_AddNumberToObject(o, "percent_of_gemm", pct);
    if (isfinite(vs_pe))
        cJSON_AddNumberToObject(o, "speedup_vs_polar_express", vs_pe);
    cJSON_AddNumberToObject(o, "max_sigma_error", row->max_sigma_error);
    char *text = cJSON_PrintUnformatted(o);
    if (text)
        printf("%s\n", text);
    fflush(stdout);
    cJSON_free(text);
    cJSON_Delete(o);
}

static void release_shape(const bench_ctx_t *ctx, bench_shape_t *sh)
{
    mu_mat_t *all[] = {&sh->g, &sh->q, &sh->gemm_a, &sh->gemm_b, &sh->gemm_c};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        mu_k_release(ctx->be, all[i]);
}

/* Polar Express first when requested, so that every other row can report vs-PE. */
static int method_order(const mu_str_list_t *methods, int i)
{
    int pe = -1;
    for (int j = 0; j < methods->count; j++)
        if (strcmp(methods->item[j], "polar-express") == 0)
            pe = j;
    if (pe < 0)
        return i;
    return i == 0 ? pe : (i <= pe ? i - 1 : i);
}

static mu_status_t bench_shape(const bench_ctx_t *ctx, bench_shape_t *sh)
{
    MU_CHECK(mu_k_alloc(ctx->be, sh->rows, sh->cols, ctx->dtype, &sh->g));
    MU_CHECK(mu_k_alloc(ctx->be, sh->rows, sh->cols, ctx->dtype, &sh->q));
    MU_CHECK(fill_random(ctx, &sh->g, 1, ctx->s->kappa));
    MU_CHECK(measure_gemm(ctx, sh));
    if (!ctx->s->json)
        printf("# %ldx%ld: GEMM (%ld x %ld) x (%ld x %ld) %s: %.1f GFLOP/s\n", sh->rows, sh->cols,
               sh->gemm_a.rows, sh->gemm_a.cols, sh->gemm_b.rows, sh->gemm_b.cols,
               mu_dtype_name(ctx->dtype), sh->gemm_gflops);
    for (int i = 0; i < ctx->s->methods.count; i++) {
        const char *name = ctx->s->methods.item[method_order(&ctx->s->methods, i)];
        MU_LOG(MU_LOG_INFO, MU_SUB_LAUNCHER, "bench: %ldx%ld %s (%ld runs)", sh->rows, sh->cols,
               name, ctx->s->runs);
        bench_row_t row;
        MU_CHECK(measure_method(ctx, sh, name, &row));
        if (strcmp(name, "polar-express") == 0)
            sh->pe_ms = row.ms;
        print_row(ctx, sh, &row);
    }
    return MU_OK;
}

static mu_status_t run_bench(const bench_settings_t *s, bench_ctx_t *ctx)
{
    MU_CHECK(mu_dtype_parse(s->dtype, &ctx->dtype));
    MU_CHECK(mu_dtype_parse(s->gram_dtype, &ctx->gram_dtype));
    for (int i = 0; i < s->methods.count; i++) {
        mu_orth_method_t m;
        MU_CHECK(mu_orth_method_parse(s->methods.item[i], &m));
    }
    bench_shape_t shapes[MU_LIST_MAX] = {0};
    for (int i = 0; i < s->shapes.count; i++)
        MU_CHECK(mu_bench_parse_shape(s->shapes.item[i], &shapes[i].rows, &shapes[i].cols));
    MU_CHECK(mu_backend_create(s->backend, &ctx->be));
    char description[256];
    mu_backend_describe(ctx->be, description, sizeof description);
    if (s->kappa != 0.0 && s->kappa < 1.0)
        return mu_error(MU_ERR_INVALID, "--kappa: %g is neither 0 nor >= 1", s->kappa);
    if (!s->json) {
        printf("# muond bench kernels: backend %s\n# median of %ld runs after %ld warm-up; ",
               description, s->runs, s->warmup);
        if (s->kappa >= 1.0)
            printf("input: singular values log-spaced over [1/%g, 1]\n", s->kappa);
        else
            printf("input: Gaussian entries\n");
        print_table_header();
    }
    mu_status_t status = MU_OK;
    for (int i = 0; i < s->shapes.count && status == MU_OK; i++) {
        status = bench_shape(ctx, &shapes[i]);
        release_shape(ctx, &shapes[i]);
    }
    return status;
}

int mu_bench_kernels(int argc, char **argv)
{
    bench_settings_t s = {0};
    mu_parsed_t parsed;
    mu_status_t status = mu_options_parse(&bench_spec, argc, argv, &s, &parsed);
    if (status == MU_OK && parsed.help) {
        mu_options_print_help(&bench_spec, stdout);
        return MU_EXIT_OK;
    }
    bench_ctx_t ctx = {.s = &s};
    if (status == MU_OK)
        status = run_bench(&s, &ctx);
    mu_backend_destroy(&ctx.be);
    return status == MU_OK ? MU_EXIT_OK : mu_command_fail("bench kernels", status);
}
