/* muond root: Y = A^(-1/p) B for one SPD matrix read from .npy files, written as float64. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/npy.h"
#include "kernels/host_view.h"
#include "kernels/inv_root_express.h"
#include "kernels/spd_root.h"
#include "kernels/spectrum.h"
#include "launcher/commands.h"
#include "launcher/option_rows.h"
#include "launcher/options.h"

/* A must be symmetric up to the rounding of the program that wrote it (fp32 Gram products
 * carry about 1e-7 of relative asymmetry); beyond this it is an input error. */
static const double SYMMETRY_TOLERANCE = 1e-5;

typedef struct root_settings {
    const char *method, *dtype, *backend, *renormalize, *equilibrate;
    long p, iters, refine;
    double lambda_min, tol, cushion;
    bool residual;
} root_settings_t;

#define FIELD(f) offsetof(root_settings_t, f)
static const mu_option_t root_options[] = {
    {"p", NULL, MU_OPT_INT, "P", "2", 1, 4, NULL, "the root's order: 1 (a solve), 2 or 4",
     FIELD(p)},
    {"method", NULL, MU_OPT_CHOICE, "M", "express", 0, 0, "express|newton|eigh",
     "express: Inverse Root Express (minimax schedule); newton: coupled Newton (Guo-Higham, "
     "scaled start); eigh: fp64 LAPACK (Cholesky for p = 1, dsyevd otherwise)",
     FIELD(method)},
    {"lambda-min", NULL, MU_OPT_DOUBLE, "L", "0", 0, 1e300, NULL,
     "a lower bound of A's eigenvalues if known (0: Gershgorin's where positive, else a "
     "condition number up to 1e6 is assumed)",
     FIELD(lambda_min)},
    {"tol", NULL, MU_OPT_DOUBLE, "E", "0", 0, 0.999, NULL,
     "express: the fewest steps whose schedule bound on ||S_T - I||_2 is <= E; newton: stop "
     "at ||N - I||_F <= E (0: the dtype's unit round-off / the method's default)",
     FIELD(tol)},
    {"iters", NULL, MU_OPT_INT, "T", "0", 0, MU_ROOT_MAX_ITERS, NULL,
     "express: exactly T steps (0: from --tol)", FIELD(iters)},
    {"cushion", NULL, MU_OPT_DOUBLE, "C", "0.1", 0, 0.999999, NULL,
     "express: each step optimized on [max(l, C*u), u] (kernels/root_schedule.h says why)",
     FIELD(cushion)},
    {"refine", NULL, MU_OPT_INT, "N", "2", 0, MU_IRE_MAX_REFINE_STEPS, NULL,
     "p = 1: residual-correction steps (fp64 residual)", FIELD(refine)},
    {"renormalize", NULL, MU_OPT_CHOICE, "on|off", "on", 0, 0, "on|off",
     "express: recentre S by its trace before every step (compensated in Y)", FIELD(renormalize)},
    {"equilibrate", NULL, MU_OPT_CHOICE, "on|off", "on", 0, 0, "on|off",
     "express, p = 1: Jacobi/Ruiz scaling D A D (powers of two); ignored for p > 1",
     FIELD(equilibrate)},
    MU_OPTION_DTYPE("of express and newton", FIELD(dtype)),
    MU_OPTION_BACKEND(FIELD(backend)),
    {"residual", NULL, MU_OPT_FLAG, NULL, NULL, 0, 0, NULL,
     "print ||A X^p - I||_F and _2 of the root X = A^(-1/p) (computed too when B is given), "
     "and the relative error of Y against an fp64 eigendecomposition",
     FIELD(residual)},
};
#undef FIELD

static const mu_command_spec_t root_spec = {
    .name = "root",
    .usage = "A.npy B.npy|- OUT.npy [options]",
    .summary = "Reads a symmetric positive definite n x n matrix A and an n x k matrix B\n"
               "(float32/float64 .npy; '-' for B: the identity, so Y is A^(-1/p) itself) and\n"
               "writes Y = A^(-1/p) B to OUT.npy as float64. A bad, non-symmetric, mis-shaped\n"
               "or non-finite input is an error naming the file (exit status 2); OUT is then\n"
               "not touched.",
    .min_positional = 3,
    .max_positional = 3,
    .options = root_options,
    .option_count = sizeof root_options / sizeof root_options[0],
};

typedef struct root_job {
    const char *a_path, *b_path, *out_path;
    double *a, *b; /* row-major fp64; b NULL for the identity */
    int64_t n, k;
    const root_settings_t *s;
    mu_dtype_t dtype;
    mu_backend_t *be;
} root_job_t;

static mu_status_t check_finite(const char *path, const double *x, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        if (!isfinite(x[i]))
            return mu_error(MU_ERR_INVALID, "%s: entry %lld is not finite", path, (long long)i);
    return MU_OK;
}

/* A square, finite and symmetric to SYMMETRY_TOLERANCE; then made exactly symmetric. */
static mu_status_t check_a(root_job_t *job, int64_t cols)
{
    if (job->n == 0 || job->n != cols)
        return mu_error(MU_ERR_INVALID, "%s: A must be square and non-empty, is %lld x %lld",
                        job->a_path, (long long)job->n, (long long)cols);
    MU_CHECK(check_finite(job->a_path, job->a, job->n * job->n));
    double skew = 0.0, norm = 0.0;
    for (int64_t i = 0; i < job->n; i++)
        for (int64_t j = 0; j < job->n; j++) {
            const double d = job->a[i * job->n + j] - job->a[j * job->n + i];
            skew += d * d;
            norm += job->a[i * job->n + j] * job->a[i * job->n + j];
        }
    if (sqrt(skew) > SYMMETRY_TOLERANCE * sqrt(norm))
        return mu_error(MU_ERR_INVALID, "%s: A is not symmetric (||A - A^T||_F / ||A||_F = %.2e)",
                        job->a_path, sqrt(skew / norm));
    for (int64_t i = 0; i < job->n; i++)
        for (int64_t j = i + 1; j < job->n; j++) {
            const double avg = 0.5 * (job->a[i * job->n + j] + job->a[j * job->n + i]);
            job->a[i * job->n + j] = job->a[j * job->n + i] = avg;
        }
    return MU_OK;
}

static mu_status_t load_inputs(root_job_t *job)
{
    int64_t cols = 0, b_rows = 0;
    MU_CHECK(mu_npy_read_matrix(job->a_path, &job->a, &job->n, &cols));
    MU_CHECK(check_a(job, cols));
    job->k = job->n;
    if (strcmp(job->b_path, "-") == 0)
        return MU_OK;
    MU_CHECK(mu_npy_read_matrix(job->b_path, &job->b, &b_rows, &job->k));
    if (b_rows != job->n || job->k == 0)
        return mu_error(MU_ERR_INVALID,
                        "%s: B must have A's %lld rows and a column, is %lld x %lld", job->b_path,
                        (long long)job->n, (long long)b_rows, (long long)job->k);
    return check_finite(job->b_path, job->b, job->n * job->k);
}

/* One backend solve (express or newton) of y = A^(-1/p) b (b NULL: the identity). */
static mu_status_t backend_solve(root_job_t *job, const double *b, int64_t k, double *y, bool log)
{
    const root_settings_t *s = job->s;
    mu_mat_t ma = {0}, mb = {0}, my = {0};
    mu_status_t status = MU_OK;
    MU_TRY(status, mu_k_alloc(job->be, job->n, job->n, job->dtype, &ma));
    MU_TRY(status, mu_k_alloc(job->be, job->n, k, job->dtype, &my));
    MU_TRY(status, mu_k_upload(job->be, job->a, MU_DTYPE_F64, job->n, &ma));
    if (b) {
        MU_TRY(status, mu_k_alloc(job->be, job->n, k, job->dtype, &mb));
        MU_TRY(status, mu_k_upload(job->be, b, MU_DTYPE_F64, k, &mb));
    }
    const double start = mu_seconds();
    if (status == MU_OK && strcmp(s->method, "express") == 0) {
        mu_ire_opts_t o;
        mu_ire_opts_default(&o, (int)s->p);
        o.lambda_min = s->lambda_min;
        o.tol = s->tol;
        o.iters = (int)s->iters;
        o.cushion = s->cushion;
        o.refine_steps = s->p == 1 ? (int)s->refine : 0;
        o.renormalize = strcmp(s->renormalize, "on") == 0;
        o.equilibrate = s->p == 1 && strcmp(s->equilibrate, "on") == 0;
        mu_ire_report_t r;
        status = mu_inv_root_express(job->be, &ma, b ? &mb : NULL, &o, &my, &r);
        MU_TRY(status, mu_k_synchronize(job->be));
        if (status == MU_OK && log)
            printf("express p=%ld %s: %d steps, %d GEMMs, %.3f ms; s = %.6e, l0 = %.3e (%s)%s, "
                   "schedule bound %.3e%s",
                   s->p, mu_dtype_name(job->dtype), r.iters, r.gemms, 1e3 * (mu_seconds() - start),
                   r.scale, r.lower, mu_ire_lower_source_name(r.lower_source),
                   r.equilibrated ? ", equilibrated" : "", r.bound, s->p == 1 ? "" : "\n");
        if (status == MU_OK && log && s->p == 1)
            printf("; residual %.3e -> %.3e after %ld refinement steps\n", r.residual_before,
                   r.residual_after, s->refine);
    } else if (status == MU_OK) {
        mu_spd_root_opts_t o;
        mu_spd_root_opts_default(&o, (int)s->p);
        o.lambda_min = s->lambda_min;
        o.tol = s->tol;
        o.refine_steps = (int)s->refine;
        mu_spd_root_report_t r;
        status = mu_spd_inv_root(job->be, &ma, b ? &mb : NULL, &o, &my, &r);
        MU_TRY(status, mu_k_synchronize(job->be));
        if (status == MU_OK && log)
            printf("newton p=%ld %s: %d steps, %d GEMMs, %.3f ms; ||N - I||_F = %.3e\n", s->p,
                   mu_dtype_name(job->dtype), r.iters, r.gemms, 1e3 * (mu_seconds() - start),
                   r.distance);
    }
    MU_TRY(status, mu_k_download(job->be, &my, y, MU_DTYPE_F64, k));
    mu_k_release(job->be, &ma);
    mu_k_release(job->be, &mb);
    mu_k_release(job->be, &my);
    return status;
}

static mu_status_t solve(root_job_t *job, const double *b, int64_t k, double *y, bool log)
{
    if (strcmp(job->s->method, "eigh") != 0)
        return backend_solve(job, b, k, y, log);
    const double start = mu_seconds();
    MU_CHECK(mu_host_spd_inv_root(job->a, b, job->n, k, (int)job->s->p, y));
    if (log)
        printf("eigh p=%ld fp64: %.3f ms\n", job->s->p, 1e3 * (mu_seconds() - start));
    return MU_OK;
}

static double relative_error(const double *got, const double *want, size_t count)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < count; i++) {
        num += (got[i] - want[i]) * (got[i] - want[i]);
        den += want[i] * want[i];
    }
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

/* The root X (Y itself when B is the identity), its residual, and Y against fp64 eigh. */
static mu_status_t print_residual(root_job_t *job, const double *y)
{
    const size_t nk = (size_t)(job->n * job->k), nn = (size_t)(job->n * job->n);
    double *want = malloc(nk * sizeof *want), *x = job->b ? malloc(nn * sizeof *x) : NULL;
    mu_status_t status = want && (x || !job->b) ? MU_OK : mu_error(MU_ERR_NOMEM, "root: no memory");
    MU_TRY(status, mu_host_spd_inv_root(job->a, job->b, job->n, job->k, (int)job->s->p, want));
    if (job->b)
        MU_TRY(status, solve(job, NULL, job->n, x, false));
    double frob = 0.0, spectral = 0.0;
    MU_TRY(status,
           mu_host_root_residual(job->a, job->b ? x : y, job->n, (int)job->s->p, &frob, &spectral));
    if (status == MU_OK)
        printf("residual ||A X^p - I||: _F %.6e, _2 %.6e; ||Y - Y_eigh||_F / ||Y_eigh||_F "
               "%.6e\n",
               frob, spectral, relative_error(y, want, nk));
    free(want);
    free(x);
    return status;
}

static mu_status_t run_job(root_job_t *job)
{
    MU_CHECK(load_inputs(job));
    const size_t nk = (size_t)(job->n * job->k);
    double *y = malloc(nk * sizeof *y);
    if (!y)
        return mu_error(MU_ERR_NOMEM, "root: cannot allocate the %lldx%lld result",
                        (long long)job->n, (long long)job->k);
    mu_status_t status = solve(job, job->b, job->k, y, true);
    if (job->s->residual)
        MU_TRY(status, print_residual(job, y));
    MU_TRY(status, mu_npy_write_matrix(job->out_path, y, MU_NPY_F64, job->n, job->k));
    free(y);
    return status;
}

int mu_cmd_root(int argc, char **argv)
{
    root_settings_t s = {0};
    mu_parsed_t parsed;
    root_job_t job = {.s = &s};
    mu_status_t status = mu_options_parse(&root_spec, argc, argv, &s, &parsed);
    if (status == MU_OK && parsed.help) {
        mu_options_print_help(&root_spec, stdout);
        return MU_EXIT_OK;
    }
    if (status == MU_OK && s.p == 3)
        status = mu_error(MU_ERR_INVALID, "--p must be 1, 2 or 4, got 3");
    MU_TRY(status, mu_dtype_parse(s.dtype, &job.dtype));
    if (status == MU_OK && strcmp(s.method, "eigh") != 0)
        status = mu_backend_create_for_dtype(s.backend, NULL, job.dtype, &job.be);
    if (status == MU_OK) {
        job.a_path = parsed.positional[0];
        job.b_path = parsed.positional[1];
        job.out_path = parsed.positional[2];
        status = run_job(&job);
    }
    mu_backend_destroy(&job.be);
    free(job.a);
    free(job.b);
    return status == MU_OK ? MU_EXIT_OK : mu_command_fail("root", status);
}
