/*
 * muond bench roots: the GEMMs and the time that Inverse Root Express (kernels/
 * inv_root_express.h) and coupled Newton (the same engine with Newton's steps) need to reach
 * ||A X^p - I||_2 <= target for X = A^(-1/p), against an fp64 LAPACK eigendecomposition
 * (dsyevd, then Q diag(lambda^(-1/p)) Q^T), on SPD matrices of controlled spectrum
 * (lambda log-spaced over [1/kappa, 1], random eigenvectors), in one run.
 *
 * Steps: for each method the smallest T whose result meets the target, found by running
 * T = 1, 2, ... and measuring ||A X^p - I||_2 (exactly, fp64 SVD on the host, wherever the
 * certificate's lower estimate does not already exceed the target), so the answer
 * is what the arithmetic reached, not what the schedule's scalar model promises. The
 * iterations are told lambda_min (Shampoo knows its epsilon); the GEMM count is the
 * iteration's own, for B = I. Times are medians; the fp32 n x n GEMM's median is measured in
 * the same run and each time is also given in GEMMs of it.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "kernels/inv_root_express.h"
#include "kernels/spectrum.h"
#include "launcher/bench.h"
#include "launcher/commands.h"
#include "launcher/option_rows.h"
#include "launcher/options.h"

enum { MAX_SIZES = 4, MAX_KAPPAS = 6, MAX_PS = 3, METHODS = 2 };

typedef struct roots_settings {
    const char *sizes, *kappas, *ps, *backend;
    double target;
    long runs, warmup, seed, blas_threads;
} roots_settings_t;

#define FIELD(f) offsetof(roots_settings_t, f)
static const mu_option_t roots_options[] = {
    {"sizes", NULL, MU_OPT_STRING, "N,N", "256,1024", 0, 0, NULL, "matrix orders n", FIELD(sizes)},
    {"kappas", NULL, MU_OPT_STRING, "K,K", "1e2,1e3,1e4", 0, 0, NULL, "condition numbers",
     FIELD(kappas)},
    {"ps", NULL, MU_OPT_STRING, "P,P", "2,4", 0, 0, NULL, "root orders (1, 2 or 4)", FIELD(ps)},
    {"target", NULL, MU_OPT_DOUBLE, "E", "1e-2", 1e-12, 0.5, NULL,
     "the bound on ||A X^p - I||_2 each method must reach", FIELD(target)},
    {"runs", NULL, MU_OPT_INT, "N", "5", MU_BENCH_MIN_RUNS, 1000, NULL,
     "timed runs per method (the median is reported)", FIELD(runs)},
    MU_OPTION_WARMUP("runs", FIELD(warmup)),
    MU_OPTION_SEED("the matrices' eigenvectors", FIELD(seed)),
    MU_OPTION_BLAS_THREADS(FIELD(blas_threads)),
    MU_OPTION_BACKEND(FIELD(backend)),
};
#undef FIELD

static const mu_command_spec_t roots_spec = {
    .name = "bench roots",
    .usage = "[--sizes N,N] [--kappas K,K] [--ps P,P] [--target E] [options]",
    .summary = "For SPD A (n x n, condition number kappa) and X = A^(-1/p) in fp32: the fewest\n"
               "steps, the GEMMs and the median time with which Inverse Root Express and\n"
               "coupled Newton reach ||A X^p - I||_2 <= E (measured in fp64), against fp64\n"
               "LAPACK dsyevd; times also in units of the fp32 n x n GEMM measured in the run.",
    .min_positional = 0,
    .max_positional = 0,
    .options = roots_options,
    .option_count = sizeof roots_options / sizeof roots_options[0],
};

/* Comma-separated numbers; each must lie in [lo, hi]. */
static mu_status_t parse_list(const char *option, const char *text, double lo, double hi, int max,
                              double *out, int *count)
{
    *count = 0;
    for (const char *p = text; *p;) {
        char *end;
        const double v = strtod(p, &end);
        if (end == p || !(v >= lo && v <= hi) || *count == max || (*end && *end != ','))
            return mu_error(MU_ERR_INVALID,
                            "--%s %s: need up to %d numbers in [%g, %g], "
                            "comma-separated",
                            option, text, max, lo, hi);
        out[(*count)++] = v;
        p = *end ? end + 1 : end;
    }
    return *count ? MU_OK : mu_error(MU_ERR_INVALID, "--%s: empty list", option);
}

typedef struct root_case {
    int64_t n;
    double kappa;
    int p;
    double *a; /* fp64 host */
    double *x; /* a result, fp64 host */
    mu_mat_t da, dx;
} root_case_t;

typedef struct method_result {
    int iters, gemms;
    double residual, ms;
    bool reached;
} method_result_t;

static mu_status_t make_case(mu_backend_t *be, int64_t n, double kappa, long seed, root_case_t *c)
{
    *c = (root_case_t){.n = n, .kappa = kappa};
    const size_t count = (size_t)(n * n);
    double *q = malloc(count * sizeof *q), *lambda = malloc((size_t)n * sizeof *lambda);
    c->a = malloc(count * sizeof *c->a);
    c->x = malloc(count * sizeof *c->x);
    mu_status_t status = q && lambda && c->a && c->x
                             ? MU_OK
                             : mu_error(MU_ERR_NOMEM, "bench roots: n %lld", (long long)n);
    for (int64_t i = 0; status == MU_OK && i < n; i++)
        lambda[i] = pow(kappa, -(double)i / (double)(n - 1));
    MU_TRY(status, mu_host_random_orthonormal(n, n, (uint64_t)seed, 1, q));
    MU_TRY(status, mu_host_compose_svd(n, n, n, q, lambda, q, c->a));
    MU_TRY(status, mu_k_alloc(be, n, n, MU_DTYPE_F32, &c->da));
    MU_TRY(status, mu_k_alloc(be, n, n, MU_DTYPE_F32, &c->dx));
    MU_TRY(status, mu_k_upload(be, c->a, MU_DTYPE_F64, n, &c->da));
    free(q);
    free(lambda);
    return status;
}

static void free_case(mu_backend_t *be, root_case_t *c)
{
    mu_k_release(be, &c->da);
    mu_k_release(be, &c->dx);
    free(c->a);
    free(c->x);
}

static void method_opts(const root_case_t *c, int method, int iters, mu_ire_opts_t *o)
{
    mu_ire_opts_default(o, c->p);
    o->lambda_min = 1.0 / c->kappa;
    o->iters = iters;
    o->newton = method == 1;
    o->refine_steps = 0; /* p = 1: the comparison is of the iterations themselves */
    o->equilibrate = false;
}

/* One solve with T steps; *ms its wall time. */
static mu_status_t solve(mu_backend_t *be, root_case_t *c, int method, int iters,
                         mu_ire_report_t *rep, double *ms)
{
    mu_ire_opts_t o;
    method_opts(c, method, iters, &o);
    const double start = mu_seconds();
    MU_CHECK(mu_inv_root_express(be, &c->da, NULL, &o, &c->dx, rep));
    MU_CHECK(mu_k_synchronize(be));
    *ms = 1e3 * (mu_seconds() - start);
    return MU_OK;
}

/* ||A X^p - I||_2 of the result in c->dx: first the certificate's Lanczos estimate of
 * ||X^(p/2) A X^(p/2) - I||_2 from below, the same matrix up to rounding for an X that is a
 * polynomial in A, so a result it puts above the target is taken as above it; exactly (fp64
 * SVD of A X^p - I) otherwise. */
static mu_status_t residual(mu_backend_t *be, const roots_settings_t *s, root_case_t *c,
                            double *out)
{
    mu_ire_cert_t cert;
    MU_CHECK(mu_ire_certify(be, &c->da, &c->dx, c->p, s->target, &cert));
    *out = cert.spectral;
    if (!(cert.spectral <= s->target))
        return MU_OK;
    double frob;
    MU_CHECK(mu_k_download(be, &c->dx, c->x, MU_DTYPE_F64, c->n));
    return mu_host_root_residual(c->a, c->x, c->n, c->p, &frob, out);
}

/* The fewest steps that reach the target (a NUMERIC stop, a diverged iteration, counts as not
 * reaching it), then the median time of that many. */
static mu_status_t bench_method(mu_backend_t *be, const roots_settings_t *s, root_case_t *c,
                                int method, method_result_t *out)
{
    *out = (method_result_t){.residual = INFINITY};
    mu_ire_report_t rep;
    double ms;
    for (int t = 1; t <= MU_ROOT_MAX_ITERS && !out->reached; t++) {
        const mu_status_t status = solve(be, c, method, t, &rep, &ms);
        if (status == MU_ERR_NUMERIC)
            continue;
        MU_CHECK(status);
        MU_CHECK(residual(be, s, c, &out->residual));
        out->iters = t;
        out->gemms = rep.gemms;
        out->reached = out->residual <= s->target;
    }
    if (!out->reached)
        return MU_OK;
    double *samples = malloc(sizeof(double) * (size_t)s->runs);
    if (!samples)
        return mu_error(MU_ERR_NOMEM, "bench roots: samples");
    mu_status_t status = MU_OK;
    for (long i = -s->warmup; i < s->runs && status == MU_OK; i++) {
        status = solve(be, c, method, out->iters, &rep, &ms);
        if (i >= 0)
            samples[i] = ms;
    }
    if (status == MU_OK)
        out->ms = mu_bench_median(samples, (int)s->runs);
    free(samples);
    return status;
}

/* fp64 LAPACK on the host: dsyevd and the product, median wall time. */
static mu_status_t bench_eigh(const roots_settings_t *s, root_case_t *c, double *ms, double *res)
{
    double *samples = malloc(sizeof(double) * (size_t)s->runs);
    if (!samples)
        return mu_error(MU_ERR_NOMEM, "bench roots: samples");
    mu_status_t status = MU_OK;
    for (long i = -s->warmup; i < s->runs && status == MU_OK; i++) {
        const double start = mu_seconds();
        status = mu_host_spd_inv_root(c->a, NULL, c->n, c->n, c->p, c->x);
        if (i >= 0)
            samples[i] = 1e3 * (mu_seconds() - start);
    }
    double frob;
    MU_TRY(status, mu_host_root_residual(c->a, c->x, c->n, c->p, &frob, res));
    if (status == MU_OK)
        *ms = mu_bench_median(samples, (int)s->runs);
    free(samples);
    return status;
}

/* The median fp32 n x n GEMM on the backend: the unit the times are also given in. */
static mu_status_t bench_gemm(mu_backend_t *be, const roots_settings_t *s, root_case_t *c,
                              double *ms)
{
    double *samples = malloc(sizeof(double) * (size_t)s->runs);
    mu_mat_t out = {0};
    mu_status_t status = samples ? MU_OK : mu_error(MU_ERR_NOMEM, "bench roots: samples");
    MU_TRY(status, mu_k_alloc(be, c->n, c->n, MU_DTYPE_F32, &out));
    for (long i = -s->warmup; i < s->runs && status == MU_OK; i++) {
        const double start = mu_seconds();
        status = mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, &c->da, &c->da, 0.0, &out);
        MU_TRY(status, mu_k_synchronize(be));
        if (i >= 0)
            samples[i] = 1e3 * (mu_seconds() - start);
    }
    if (status == MU_OK)
        *ms = mu_bench_median(samples, (int)s->runs);
    mu_k_release(be, &out);
    free(samples);
    return status;
}

static void print_method(const method_result_t *r, double gemm_ms)
{
    if (!r->reached)
        printf(" | %2s %5s %9.2e %8s %7s", "-", "-", r->residual, "-", "-");
    else
        printf(" | %2d %5d %9.2e %8.2f %7.1f", r->iters, r->gemms, r->residual, r->ms,
               r->ms / gemm_ms);
}

static mu_status_t bench_case(mu_backend_t *be, const roots_settings_t *s, root_case_t *c)
{
    method_result_t r[METHODS];
    double gemm_ms = 0.0, eigh_ms = 0.0, eigh_res = 0.0;
    MU_CHECK(bench_gemm(be, s, c, &gemm_ms));
    for (int m = 0; m < METHODS; m++)
        MU_CHECK(bench_method(be, s, c, m, &r[m]));
    MU_CHECK(bench_eigh(s, c, &eigh_ms, &eigh_res));
    printf("%5lld %6.0e %d %8.3f", (long long)c->n, c->kappa, c->p, gemm_ms);
    for (int m = 0; m < METHODS; m++)
        print_method(&r[m], gemm_ms);
    printf(" | %8.2f %7.1f %8.1e |", eigh_ms, eigh_ms / gemm_ms, eigh_res);
    if (r[0].reached && r[1].reached)
        printf(" %5.2f %5.2f", r[0].ms / r[1].ms, r[0].ms / eigh_ms);
    printf("\n");
    fflush(stdout);
    return MU_OK;
}

static mu_status_t run(mu_backend_t *be, const roots_settings_t *s)
{
    double sizes[MAX_SIZES], kappas[MAX_KAPPAS], ps[MAX_PS];
    int ns, nk, np;
    MU_CHECK(parse_list("sizes", s->sizes, 2, 16384, MAX_SIZES, sizes, &ns));
    MU_CHECK(parse_list("kappas", s->kappas, 1, 1e8, MAX_KAPPAS, kappas, &nk));
    MU_CHECK(parse_list("ps", s->ps, 1, 4, MAX_PS, ps, &np));
    for (int i = 0; i < np; i++)
        if (ps[i] != 1 && ps[i] != 2 && ps[i] != 4)
            return mu_error(MU_ERR_INVALID, "--ps %s: each p must be 1, 2 or 4", s->ps);
    printf("# muond bench roots: fp32 X = A^(-1/p), fewest steps T to ||A X^p - I||_2 <= %.0e "
           "(fp64, exact); lambda_min given; median of %ld runs; GEMM: fp32 n x n ms; "
           "'xG': time in GEMMs\n"
           "%5s %6s %s %8s | %-37s | %-37s | %-26s | %s\n"
           "%5s %6s %s %8s | %2s %5s %9s %8s %7s | %2s %5s %9s %8s %7s | %8s %7s %8s | %s\n",
           s->target, s->runs, "n", "kappa", "p", "GEMM ms", "express", "newton", "eigh (fp64)",
           "time ratio", "", "", "", "", "T", "GEMMs", "||R||_2", "ms", "xG", "T", "GEMMs",
           "||R||_2", "ms", "xG", "ms", "xG", "||R||_2", "e/n e/eigh");
    for (int i = 0; i < ns; i++)
        for (int j = 0; j < nk; j++)
            for (int k = 0; k < np; k++) {
                root_case_t c;
                mu_status_t status = make_case(be, (int64_t)sizes[i], kappas[j], s->seed, &c);
                c.p = (int)ps[k];
                MU_TRY(status, bench_case(be, s, &c));
                free_case(be, &c);
                MU_CHECK(status);
            }
    return MU_OK;
}

/* One process, no MPI: the benchmark times kernels on this host alone. */
int mu_bench_roots(int argc, char **argv)
{
    roots_settings_t s = {0};
    mu_parsed_t parsed;
    mu_backend_t *be = NULL;
    mu_status_t status = mu_options_parse(&roots_spec, argc, argv, &s, &parsed);
    if (status == MU_OK && parsed.help) {
        mu_options_print_help(&roots_spec, stdout);
        return MU_EXIT_OK;
    }
    MU_TRY(status, mu_backend_create_for_dtype(s.backend, NULL, MU_DTYPE_F32, &be));
    MU_TRY(status, mu_backend_set_threads(be, (int)s.blas_threads));
    MU_TRY(status, run(be, &s));
    mu_backend_destroy(&be);
    return status == MU_OK ? MU_EXIT_OK : mu_command_fail("bench roots", status);
}
