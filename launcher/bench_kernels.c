/*
 * muond bench kernels: for each shape and method, the median time of the orthogonalization
 * after warm-up, its rate on the grouped FLOP count, that rate as a percentage of the best
 * GEMM rate measured on the same shape in the same run (on this backend and on every other
 * host backend present, so that a slow reference cannot flatter a result), the speed
 * relative to Polar Express and to the paper's Polar Express in numpy (the peer), and the
 * accuracy max |s_i - 1| of the result (LAPACK, fp64). A table for people; JSON lines with
 * --json.
 */
#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/rng.h"
#include "kernels/host_view.h"
#include "kernels/orth.h"
#include "kernels/spectrum.h"
#include "launcher/bench.h"
#include "launcher/commands.h"
#include "launcher/option_rows.h"
#include "launcher/options.h"

typedef struct bench_settings {
    mu_str_list_t shapes, methods;
    const char *dtype, *gram_dtype, *backend, *peer;
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
    MU_OPTION_DTYPE("of the computation", FIELD(dtype)),
    MU_OPTION_GRAM_DTYPE(FIELD(gram_dtype)),
    MU_OPTION_ITERS("0", 0, MU_ITERS_METHOD_DEFAULT, FIELD(iters)),
    {"runs", NULL, MU_OPT_INT, "N", "7", MU_BENCH_MIN_RUNS, 1000, NULL,
     "timed runs per measurement (the median is reported)", FIELD(runs)},
    MU_OPTION_WARMUP("runs", FIELD(warmup)),
    MU_OPTION_SEED("the random test matrices", FIELD(seed)),
    {"kappa", NULL, MU_OPT_DOUBLE, "K", "0", 0, 1e15, NULL,
     "0: Gaussian entries; K >= 1: singular values log-spaced over [1/K, 1]", FIELD(kappa)},
    MU_OPTION_BACKEND(FIELD(backend)),
    {"peer", NULL, MU_OPT_CHOICE, "P", "numpy", 0, 0, "numpy|none",
     "numpy: time the paper's Polar Express in numpy on each shape in the same run (host "
     "backends, fp32 and fp64; bench/polar_express_numpy.py, python3 from MUOND_PYTHON)",
     FIELD(peer)},
    MU_OPTION_JSON("print JSON lines instead of a table", FIELD(json)),
};
#undef FIELD

static const mu_command_spec_t bench_spec = {
    .name = "bench kernels",
    .usage = "[--shape MxN]... [--method M]... [options]",
    .summary =
        "Times each method on a seeded random matrix of each shape (Gaussian entries, or\n"
        "a chosen condition number with --kappa; a square Gaussian matrix has kappa ~ n,\n"
        "so its smallest singular values lie below l and stay unconverged). Rates count the\n"
        "grouped FLOPs (SYRK as s^2 l); %gemm compares with the best GEMM of the same shape\n"
        "(s x s times s x l) timed in the same run on this backend and on the other host\n"
        "backends present (cpu, dnnl); vs-PE is Polar Express's time over the method's;\n"
        "peer-ms and vs-peer time the paper's Polar Express in numpy on the same BLAS and\n"
        "threads (--peer); max|s-1| is the result's worst singular value error (LAPACK, fp64).",
    .min_positional = 0,
    .max_positional = 0,
    .options = bench_options,
    .option_count = sizeof bench_options / sizeof bench_options[0],
};

enum { RIVALS_MAX = 4 };

typedef struct gemm_call {
    mu_backend_t *be;
    mu_mat_t a, b, c;
    double flops;
} gemm_call_t;

typedef struct bench_shape {
    long rows, cols;
    mu_mat_t g, q;
    double gemm_gflops;      /* on the backend under test */
    double best_gemm_gflops; /* the best of it and its rivals */
    const char *best_gemm_backend;
    gemm_call_t own_gemm; /* this backend's GEMM, run in turn with the methods' runs */
    double pe_ms;          /* Polar Express's median on this shape, 0 until measured */
} bench_shape_t;

typedef struct bench_row {
    const char *method;
    int iters;
    double ms, gflops, max_sigma_error;
    double percent_of_gemm; /* the median over pairs of (method rate / own GEMM rate) */
    double percent_of_best; /* the method's median rate / the best backend's GEMM rate */
    double peer_ms, vs_peer, peer_max_sigma_error; /* peer_ms 0: no peer on this row */
} bench_row_t;

typedef struct bench_ctx {
    const bench_settings_t *s;
    mu_backend_t *be;
    mu_dtype_t dtype, gram_dtype;
    /* The other host backends present, for the GEMM reference only. */
    mu_backend_t *rivals[RIVALS_MAX];
    int rival_count;
} bench_ctx_t;

typedef mu_status_t (*timed_fn)(const bench_ctx_t *ctx, void *arg);

/* Median wall time in ms of fn on backend be over the configured warm-up and timed runs. */
static mu_status_t time_median(const bench_ctx_t *ctx, mu_backend_t *be, timed_fn fn, void *arg,
                               double *ms)
{
    double samples[1000];
    for (long i = 0; i < ctx->s->warmup; i++)
        MU_CHECK(fn(ctx, arg));
    MU_CHECK(mu_k_synchronize(be)); /* asynchronous backends: warm-up ends here */
    for (long i = 0; i < ctx->s->runs; i++) {
        const double start = mu_seconds();
        MU_CHECK(fn(ctx, arg));
        MU_CHECK(mu_k_synchronize(be));
        samples[i] = 1e3 * (mu_seconds() - start);
    }
    *ms = mu_bench_median(samples, (int)ctx->s->runs);
    return MU_OK;
}

static mu_status_t run_gemm(const bench_ctx_t *ctx, void *arg)
{
    (void)ctx;
    gemm_call_t *g = arg;
    return mu_k_gemm(g->be, MU_NO_TRANS, MU_NO_TRANS, 1.0, &g->a, &g->b, 0.0, &g->c);
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
static mu_status_t fill_random(const bench_ctx_t *ctx, mu_backend_t *be, mu_mat_t *m,
                               uint64_t stream, double kappa)
{
    const size_t count = (size_t)(m->rows * m->cols);
    mu_host_view_t v;
    MU_CHECK(mu_host_view_begin(be, m, MU_DTYPE_F64, MU_HOST_WRITE | MU_HOST_PACKED, &v));
    double *host = v.data;
    mu_status_t status = MU_OK;
    if (kappa >= 1.0)
        MU_TRY(status, mu_host_random_with_condition(m->rows, m->cols, kappa,
                                                     (uint64_t)ctx->s->seed + stream, host));
    else
        for (size_t i = 0; i < count; i++)
            host[i] = mu_rng_normal((uint64_t)ctx->s->seed, stream, i);
    MU_TRY(status, mu_host_view_end(be, &v));
    mu_host_view_release(&v);
    return status;
}

/* This shape's main product on backend be, B (s x s) times X (s x l), ready to run. */
static mu_status_t open_gemm(const bench_ctx_t *ctx, mu_backend_t *be, const bench_shape_t *sh,
                             gemm_call_t *g)
{
    const long s = sh->rows < sh->cols ? sh->rows : sh->cols;
    const long l = sh->rows < sh->cols ? sh->cols : sh->rows;
    *g = (gemm_call_t){.be = be, .flops = 2.0 * (double)s * (double)s * (double)l};
    MU_CHECK(mu_k_alloc(be, s, s, ctx->dtype, &g->a));
    MU_CHECK(mu_k_alloc(be, s, l, ctx->dtype, &g->b));
    MU_CHECK(mu_k_alloc(be, s, l, ctx->dtype, &g->c));
    MU_CHECK(fill_random(ctx, be, &g->a, 2, 0.0));
    return fill_random(ctx, be, &g->b, 3, 0.0);
}

static void close_gemm(gemm_call_t *g)
{
    if (!g->be)
        return;
    mu_k_release(g->be, &g->a);
    mu_k_release(g->be, &g->b);
    mu_k_release(g->be, &g->c);
    g->be = NULL;
}

/* Backend be's GEMM rate on this shape, measured on its own. */
static mu_status_t rate_gemm(const bench_ctx_t *ctx, mu_backend_t *be, bench_shape_t *sh,
                             double *gflops)
{
    gemm_call_t g;
    double ms = 0.0;
    mu_status_t status;
    MU_CHECK_GOTO(status, open_gemm(ctx, be, sh, &g), out_with_gemm);
    MU_CHECK_GOTO(status, time_median(ctx, be, run_gemm, &g, &ms), out_with_gemm);
    *gflops = g.flops / (ms * 1e6);
    if (*gflops > sh->best_gemm_gflops) {
        sh->best_gemm_gflops = *gflops;
        sh->best_gemm_backend = mu_backend_name(be);
    }
out_with_gemm:
    close_gemm(&g);
    return status;
}

/* Every rival's GEMM rate and this backend's, printed as one line; this backend's GEMM
 * stays open for the pairs. The rivals go first: a backend's idle threads spin for a while
 * after its last call (OpenBLAS's, OpenMP's), and they must not slow this backend's runs. */
static mu_status_t measure_gemm(const bench_ctx_t *ctx, bench_shape_t *sh)
{
    char rivals[384] = "";
    int used = 0;
    for (int i = 0; i < ctx->rival_count; i++) {
        double rate;
        MU_CHECK(rate_gemm(ctx, ctx->rivals[i], sh, &rate));
        used += snprintf(rivals + used, sizeof rivals - (size_t)used, ", %s %.1f",
                         mu_backend_name(ctx->rivals[i]), rate);
    }
    MU_CHECK(rate_gemm(ctx, ctx->be, sh, &sh->gemm_gflops));
    MU_CHECK(open_gemm(ctx, ctx->be, sh, &sh->own_gemm));
    if (!ctx->s->json)
        printf("# %ldx%ld: GEMM %s GFLOP/s: %s %.1f%s; best %s (%%best), %%gemm in pairs with "
               "%s's\n",
               sh->rows, sh->cols, mu_dtype_name(ctx->dtype), mu_backend_name(ctx->be),
               sh->gemm_gflops, rivals, sh->best_gemm_backend, mu_backend_name(ctx->be));
    return MU_OK;
}

static mu_status_t accuracy(const bench_ctx_t *ctx, const bench_shape_t *sh, double *max_err)
{
    mu_host_view_t q;
    MU_CHECK(mu_host_view_begin(ctx->be, &sh->q, MU_DTYPE_F64, MU_HOST_READ | MU_HOST_PACKED, &q));
    mu_status_t status = MU_OK;
    MU_TRY(status, mu_host_orthogonality(q.data, sh->rows, sh->cols, max_err, NULL));
    mu_host_view_release(&q);
    return status;
}

/* The peer runs where it means something: the same host BLAS, a dtype numpy has. */
static bool peer_applies(const bench_ctx_t *ctx)
{
    return strcmp(ctx->s->peer, "numpy") == 0 && mu_backend_host_memory(ctx->be) &&
           ctx->dtype != MU_DTYPE_BF16;
}

static mu_status_t open_peer(const bench_ctx_t *ctx, const bench_shape_t *sh, int iters,
                             mu_bench_peer_t **peer)
{
    const mu_bench_peer_args_t args = {
        .rows = sh->rows, .cols = sh->cols, .warmup = ctx->s->warmup, .seed = ctx->s->seed,
        .iters = iters, .threads = openblas_get_num_threads(), .dtype = mu_dtype_name(ctx->dtype)};
    MU_LOG(MU_LOG_INFO, MU_SUB_LAUNCHER, "bench: %ldx%ld numpy peer beside polar-express",
           sh->rows, sh->cols);
    return mu_bench_peer_open(&args, peer);
}

static mu_status_t time_once(const bench_ctx_t *ctx, mu_backend_t *be, timed_fn fn, void *arg,
                             double *ms)
{
    const double start = mu_seconds();
    MU_CHECK(fn(ctx, arg));
    MU_CHECK(mu_k_synchronize(be));
    *ms = 1e3 * (mu_seconds() - start);
    return MU_OK;
}

/* The timed runs, each followed by one run of the best GEMM and (with a peer) one call in
 * the peer: a slow moment of the machine then slows both sides of a pair, and the ratios are
 * medians over pairs, not ratios of medians taken at different moments. */
typedef struct paired {
    double method[1000], gemm[1000], peer[1000];
} paired_t;

static mu_status_t run_pairs(const bench_ctx_t *ctx, orth_call_t *call, mu_bench_peer_t *peer,
                             paired_t *t)
{
    for (long i = 0; i < ctx->s->warmup; i++)
        MU_CHECK(run_orth(ctx, call));
    MU_CHECK(mu_k_synchronize(ctx->be));
    for (long i = 0; i < ctx->s->runs; i++) {
        MU_CHECK(time_once(ctx, ctx->be, run_orth, call, &t->method[i]));
        gemm_call_t *g = &call->shape->own_gemm;
        MU_CHECK(time_once(ctx, g->be, run_gemm, g, &t->gemm[i]));
        if (peer)
            MU_CHECK(mu_bench_peer_run(peer, &t->peer[i]));
    }
    return MU_OK;
}

/* Medians of the pairs' times and ratios into row (flops: the method's per call). */
static void summarize_pairs(const bench_ctx_t *ctx, const bench_shape_t *sh, double flops,
                            bool with_peer, paired_t *t, bench_row_t *row)
{
    const int n = (int)ctx->s->runs;
    double ratio[1000];
    for (int i = 0; i < n; i++)
        ratio[i] = (flops / t->method[i]) / (sh->own_gemm.flops / t->gemm[i]);
    row->percent_of_gemm = 100.0 * mu_bench_median(ratio, n);
    if (with_peer) {
        for (int i = 0; i < n; i++)
            ratio[i] = t->peer[i] / t->method[i];
        row->vs_peer = mu_bench_median(ratio, n);
        row->peer_ms = mu_bench_median(t->peer, n);
    }
    row->ms = mu_bench_median(t->method, n);
    row->gflops = flops / (row->ms * 1e6);
    row->percent_of_best = 100.0 * row->gflops / sh->best_gemm_gflops;
}

static mu_status_t measure_method(const bench_ctx_t *ctx, bench_shape_t *sh, const char *name,
                                  bool with_peer, bench_row_t *row)
{
    mu_orth_opts_t opts;
    mu_orth_opts_default(&opts);
    MU_CHECK(mu_orth_method_parse(name, &opts.method));
    opts.dtype = ctx->dtype;
    opts.gram_dtype = ctx->gram_dtype;
    opts.iters = (int)ctx->s->iters;
    orth_call_t call = {.shape = sh};
    MU_CHECK(mu_orth_plan_create(ctx->be, sh->rows, sh->cols, &opts, &call.plan));
    const mu_schedule_t *sched = mu_orth_plan_schedule(call.plan);
    row->method = mu_orth_method_name(opts.method);
    row->iters = sched ? sched->iters : 0;
    mu_bench_peer_t *peer = NULL;
    paired_t *t = calloc(1, sizeof *t);
    mu_status_t status = t ? MU_OK : mu_error(MU_ERR_NOMEM, "bench: cannot allocate timings");
    if (status == MU_OK && with_peer)
        status = open_peer(ctx, sh, row->iters, &peer);
    MU_TRY(status, run_pairs(ctx, &call, peer, t));
    if (status == MU_OK)
        summarize_pairs(ctx, sh, mu_orth_plan_flops(call.plan), with_peer, t, row);
    const mu_status_t closed =
        mu_bench_peer_close(&peer, status == MU_OK ? &row->peer_max_sigma_error : NULL);
    if (status == MU_OK)
        status = closed;
    MU_TRY(status, accuracy(ctx, sh, &row->max_sigma_error));
    free(t);
    mu_orth_plan_destroy(&call.plan);
    return status;
}

static void print_table_header(void)
{
    printf("%-11s %-14s %-5s %3s %10s %9s %6s %6s %6s %10s %10s %8s\n", "shape", "method",
           "dtype", "T", "ms", "GFLOP/s", "%gemm", "%best", "vs-PE", "max|s-1|", "peer-ms",
           "vs-peer");
}

static void print_text_row(const bench_ctx_t *ctx, const bench_shape_t *sh, const bench_row_t *row,
                           double pct, double vs_pe)
{
    char shape[32], peer[48] = "         -        -";
    snprintf(shape, sizeof shape, "%ldx%ld", sh->rows, sh->cols);
    if (row->peer_ms > 0.0)
        snprintf(peer, sizeof peer, "%10.3f %7.2fx", row->peer_ms, row->vs_peer);
    printf("%-11s %-14s %-5s %3d %10.3f %9.1f %5.0f%% %5.0f%% %6.2f %10.2e %s\n", shape,
           row->method, mu_dtype_name(ctx->dtype), row->iters, row->ms, row->gflops, pct,
           row->percent_of_best, vs_pe, row->max_sigma_error, peer);
    fflush(stdout);
}

static void print_row(const bench_ctx_t *ctx, const bench_shape_t *sh, const bench_row_t *row)
{
    const double vs_pe = sh->pe_ms > 0.0 ? sh->pe_ms / row->ms : NAN;
    const double pct = row->percent_of_gemm;
    if (!ctx->s->json) {
        print_text_row(ctx, sh, row, pct, vs_pe);
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
    cJSON_AddNumberToObject(o, "best_gemm_gflops", sh->best_gemm_gflops);
    cJSON_AddStringToObject(o, "best_gemm_backend", sh->best_gemm_backend);
    cJSON_AddNumberToObject(o, "percent_of_gemm", pct);
    cJSON_AddNumberToObject(o, "percent_of_best_gemm", row->percent_of_best);
    if (row->peer_ms > 0.0) {
        cJSON_AddStringToObject(o, "peer", "numpy");
        cJSON_AddNumberToObject(o, "peer_ms", row->peer_ms);
        cJSON_AddNumberToObject(o, "peer_max_sigma_error", row->peer_max_sigma_error);
        cJSON_AddNumberToObject(o, "speedup_vs_peer", row->vs_peer);
    }
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
    mu_k_release(ctx->be, &sh->g);
    mu_k_release(ctx->be, &sh->q);
    close_gemm(&sh->own_gemm);
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
    MU_CHECK(fill_random(ctx, ctx->be, &sh->g, 1, ctx->s->kappa));
    MU_CHECK(measure_gemm(ctx, sh));
    for (int i = 0; i < ctx->s->methods.count; i++) {
        const char *name = ctx->s->methods.item[method_order(&ctx->s->methods, i)];
        MU_LOG(MU_LOG_INFO, MU_SUB_LAUNCHER, "bench: %ldx%ld %s (%ld runs)", sh->rows, sh->cols,
               name, ctx->s->runs);
        bench_row_t row = {0};
        const bool pe = strcmp(name, "polar-express") == 0;
        /* The peer draws a Gaussian G of its own: it has no --kappa. */
        MU_CHECK(measure_method(ctx, sh, name, pe && peer_applies(ctx) && ctx->s->kappa == 0.0,
                                &row));
        if (pe)
            sh->pe_ms = row.ms;
        print_row(ctx, sh, &row);
    }
    return MU_OK;
}

/* The other host backends that compute this dtype (the reference oracle left out),
 * for the GEMM reference; one that cannot start here is simply not a rival. */
static void open_rivals(bench_ctx_t *ctx)
{
    if (!mu_backend_host_memory(ctx->be))
        return;
    const char *names[8];
    const int count = mu_backend_list(names, 8);
    for (int i = 0; i < count && i < 8 && ctx->rival_count < RIVALS_MAX; i++) {
        if (strcmp(names[i], mu_backend_name(ctx->be)) == 0)
            continue;
        mu_backend_t *rival = NULL;
        if (mu_backend_create_for_dtype(names[i], "it is a host GEMM reference", ctx->dtype,
                                        &rival) == MU_OK &&
            !mu_backend_oracle(rival) &&
            (ctx->dtype != MU_DTYPE_BF16 || mu_backend_bf16_compute(rival)))
            ctx->rivals[ctx->rival_count++] = rival;
        else
            mu_backend_destroy(&rival), mu_error_clear();
    }
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
    MU_CHECK(mu_backend_create_for_dtype(s->backend, NULL, ctx->dtype, &ctx->be));
    open_rivals(ctx);
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
    MU_TRY(status, run_bench(&s, &ctx));
    mu_backend_destroy(&ctx.be);
    for (int i = 0; i < ctx.rival_count; i++)
        mu_backend_destroy(&ctx.rivals[i]);
    return status == MU_OK ? MU_EXIT_OK : mu_command_fail("bench kernels", status);
}
