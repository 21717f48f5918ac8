/* muond orth: orthogonalize one matrix read from a .npy file, write the result as float32. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/npy.h"
#include "kernels/host_view.h"
#include "kernels/orth.h"
#include "kernels/residual.h"
#include "kernels/spectrum.h"
#include "launcher/commands.h"
#include "launcher/option_rows.h"
#include "launcher/options.h"

typedef struct orth_settings {
    const char *method, *dtype, *gram_dtype, *ns5, *backend, *schedule;
    long iters;
    double lower, cushion, safety;
    bool residual;
} orth_settings_t;

#define FIELD(f) offsetof(orth_settings_t, f)
static const mu_option_t orth_options[] = {
    {"method", NULL, MU_OPT_CHOICE, "M", "polar-express", 0, 0,
     "polar-express|ns5|gram|svd|scalapack",
     "orthogonalization method; scalapack: the exact fallback in fp64 on a BLACS grid over "
     "every rank mpiexec/srun started (the options below do not apply to it)",
     FIELD(method)},
    MU_OPTION_ITERS("0", 0, MU_ITERS_METHOD_DEFAULT, FIELD(iters)),
    MU_OPTION_SCHEDULE("Polar Express lower bound l (relative to ||G||_F)", FIELD(lower),
                       FIELD(cushion), FIELD(safety)),
    {"schedule", NULL, MU_OPT_CHOICE, "S", "fixed", 0, 0, "fixed|adaptive",
     "fixed: the schedule (l, T) above; adaptive: the fewest-steps schedule (l', T' <= T) "
     "predicted to reach G's directions within 0.5% of it, from a Lanczos sample of G's "
     "spectrum (polar-express and gram; matrices whose step costs under 2^20 FLOPs keep T)",
     FIELD(schedule)},
    MU_OPTION_DTYPE("of the computation", FIELD(dtype)),
    MU_OPTION_GRAM_DTYPE(FIELD(gram_dtype)),
    {"ns5", NULL, MU_OPT_CHOICE, "SET", "jordan", 0, 0, "jordan|classic", "NS5 coefficient set",
     FIELD(ns5)},
    MU_OPTION_BACKEND(FIELD(backend)),
    {"residual", NULL, MU_OPT_FLAG, NULL, NULL, 0, 0, NULL,
     "print the cheap residual estimate and the exact ||QQ^T - I||_2 and max|s - 1|, the "
     "certificate's numbers and verdict as the step would judge Q, and the exact descent "
     "efficiency <Q,G>/||G||_*, ||Q||_2 and distance from the polar factor (fp64 SVDs)",
     FIELD(residual)},
};
#undef FIELD

static const mu_command_spec_t orth_spec = {
    .name = "orth",
    .usage = "IN.npy OUT.npy [options]",
    .summary = "Reads a 2-D float32/float64 matrix G (C or Fortran order) from IN.npy and writes\n"
               "an approximation of its orthogonal polar factor U V^T (G = U S V^T) to OUT.npy as\n"
               "float32 of the same shape. A zero matrix gives a zero result. A bad, truncated or\n"
               "non-finite input is an error naming the file (exit status 2); OUT is then not\n"
               "touched.",
    .min_positional = 2,
    .max_positional = 2,
    .options = orth_options,
    .option_count = sizeof orth_options / sizeof orth_options[0],
};

typedef struct orth_job {
    const char *in_path, *out_path;
    double *host; /* row-major fp64, rows x cols */
    int64_t rows, cols;
    mu_orth_opts_t opts;
    mu_backend_t *be;
    mu_mat_t g, q;
    mu_cert_limits_t limits; /* the plan's certificate limits */
} orth_job_t;

static mu_status_t settings_to_opts(const orth_settings_t *s, mu_orth_opts_t *o)
{
    mu_orth_opts_default(o);
    MU_CHECK(mu_orth_method_parse(s->method, &o->method));
    MU_CHECK(mu_dtype_parse(s->dtype, &o->dtype));
    MU_CHECK(mu_dtype_parse(s->gram_dtype, &o->gram_dtype));
    MU_CHECK(mu_ns5_set_parse(s->ns5, &o->ns5_set));
    MU_CHECK(mu_schedule_mode_parse(s->schedule, &o->schedule));
    o->iters = (int)s->iters;
    o->lower = s->lower;
    o->cushion = s->cushion;
    o->safety = s->safety;
    return MU_OK;
}

static mu_status_t load_input(orth_job_t *job)
{
    MU_CHECK(mu_npy_read_matrix(job->in_path, &job->host, &job->rows, &job->cols));
    if (job->rows == 0 || job->cols == 0)
        return mu_error(MU_ERR_INVALID, "%s: the matrix is empty (%lld x %lld)", job->in_path,
                        (long long)job->rows, (long long)job->cols);
    return MU_OK;
}

static mu_status_t orthogonalize(orth_job_t *job)
{
    mu_orth_plan_t *plan = NULL;
    MU_CHECK(mu_orth_plan_create(job->be, job->rows, job->cols, &job->opts, &plan));
    mu_status_t status;
    mu_orth_report_t report;
    MU_CHECK_GOTO(status, mu_k_upload(job->be, job->host, MU_DTYPE_F64, job->cols, &job->g),
                  out_with_plan);
    const double start = mu_seconds();
    status = mu_orth_execute(plan, &job->g, &job->q, &report);
    if (status == MU_ERR_NUMERIC && report.nonfinite > 0) {
        status = mu_error(MU_ERR_INVALID, "%s: the matrix has %lld NaN or infinite entries",
                          job->in_path, (long long)report.nonfinite);
        goto out_with_plan;
    }
    MU_CHECK_GOTO(status, status, out_with_plan);
    MU_CHECK_GOTO(status, mu_k_synchronize(job->be), out_with_plan);
    mu_orth_plan_cert_limits(plan, &job->limits); /* of the schedule it applied */
    MU_LOG(MU_LOG_INFO, MU_SUB_LAUNCHER, "%s %lldx%lld %s, %d steps: %.3f ms%s",
           mu_orth_method_name(job->opts.method), (long long)job->rows, (long long)job->cols,
           mu_dtype_name(job->opts.dtype), report.iters, 1e3 * (mu_seconds() - start),
           report.zero_input ? " (zero input: zero result)" : "");
    if (job->opts.schedule == MU_SCHEDULE_ADAPTIVE && report.predicted > 0.0)
        printf("adaptive schedule: l = %g, T = %d (predicted reach per direction %.5f, the "
               "fixed schedule's %.5f)\n",
               report.lower, report.iters, report.predicted, report.reference);
out_with_plan:
    mu_orth_plan_destroy(&plan);
    return status;
}

/* The certificate's numbers and verdict, as the step would judge this Q. */
static mu_status_t print_certificate(orth_job_t *job)
{
    mu_cert_t c;
    const mu_status_t status =
        mu_cert_measure(job->be, &job->g, &job->q, 0.0, &job->limits, NULL, &c);
    if (status == MU_ERR_NUMERIC) {
        printf("certificate: FAIL, non-finite (%s; would fall back)\n", mu_error_message());
        mu_error_clear();
        return MU_OK;
    }
    MU_CHECK(status);
    double value, limit;
    const mu_cert_verdict_t verdict = mu_cert_judge(&c, &job->limits, &value, &limit);
    printf("certificate: ||Q||_2 >= %.6f (limit %.4f); Q^T G asymmetry %.2e, negativity %.2e "
           "(limit %.2f); descent >= %.6f (residual bound %.6f, schedule bound %.6f; limit "
           "%.4f): %s%s\n",
           c.q_norm, 1.0 + job->limits.overshoot, c.asymmetry, c.negativity, job->limits.asymmetry,
           c.descent_bound, c.residual_bound, c.schedule_bound, job->limits.descent,
           verdict == MU_CERT_PASS ? "pass" : "FAIL, ",
           verdict == MU_CERT_PASS ? "" : mu_cert_verdict_name(verdict));
    return MU_OK;
}

static mu_status_t print_residual(orth_job_t *job, const double *q_host)
{
    mu_residual_t r;
    double sigma_err, gram_err;
    const mu_status_t status = mu_residual_measure(job->be, &job->q, NULL, &r);
    if (status == MU_ERR_NUMERIC) { /* the fast result itself is NaN/Inf: say so, no more */
        mu_error_clear();
        return print_certificate(job);
    }
    MU_CHECK(status);
    MU_CHECK(mu_host_orthogonality(q_host, job->rows, job->cols, &sigma_err, &gram_err));
    printf("residual ||QQ^T - I||_2: estimate %.6e, exact %.6e; max|s - 1| %.6e\n", r.spectral,
           gram_err, sigma_err);
    MU_CHECK(print_certificate(job));
    mu_host_descent_t d;
    MU_CHECK(mu_host_descent(job->host, q_host, job->rows, job->cols, &d));
    printf("descent <Q,G>/||G||_*: exact %.9f (||G||_* %.6e, G of rank %lld); ||Q||_2 %.6e; "
           "||Q - U_r V_r^T||_2 %.6e\n",
           d.efficiency, d.nuclear, (long long)d.rank, d.q_norm, d.polar_error);
    return MU_OK;
}

/* Reads Q through a host view, optionally reports its residual, and writes it as float32. */
static mu_status_t store_output(orth_job_t *job, bool residual)
{
    const size_t count = (size_t)(job->rows * job->cols);
    float *out = malloc(count * sizeof *out);
    if (!out)
        return mu_error(MU_ERR_NOMEM, "cannot allocate the %lldx%lld result", (long long)job->rows,
                        (long long)job->cols);
    mu_host_view_t q;
    mu_status_t status = MU_OK;
    MU_TRY(status,
           mu_host_view_begin(job->be, &job->q, MU_DTYPE_F64, MU_HOST_READ | MU_HOST_PACKED, &q));
    if (residual)
        MU_TRY(status, print_residual(job, q.data));
    for (size_t i = 0; status == MU_OK && i < count; i++)
        out[i] = (float)((const double *)q.data)[i];
    MU_TRY(status, mu_npy_write_matrix(job->out_path, out, MU_NPY_F32, job->rows, job->cols));
    mu_host_view_release(&q);
    free(out);
    return status;
}

static mu_status_t run_job(orth_job_t *job, bool residual)
{
    MU_CHECK(load_input(job));
    MU_CHECK(mu_k_alloc(job->be, job->rows, job->cols, job->opts.dtype, &job->g));
    MU_CHECK(mu_k_alloc(job->be, job->rows, job->cols, job->opts.dtype, &job->q));
    MU_CHECK(orthogonalize(job));
    return store_output(job, residual);
}

int mu_cmd_orth(int argc, char **argv)
{
    orth_settings_t s = {0};
    mu_parsed_t parsed;
    orth_job_t job = {0};
    mu_status_t status = mu_options_parse(&orth_spec, argc, argv, &s, &parsed);
    if (status == MU_OK && parsed.help) {
        mu_options_print_help(&orth_spec, stdout);
        return MU_EXIT_OK;
    }
    if (status == MU_OK && strcmp(s.method, "scalapack") == 0)
        return mu_orth_scalapack(parsed.positional[0], parsed.positional[1], s.residual);
    MU_TRY(status, settings_to_opts(&s, &job.opts));
    MU_TRY(status, mu_backend_create_for_dtype(s.backend, NULL, job.opts.dtype, &job.be));
    if (status == MU_OK) {
        job.in_path = parsed.positional[0];
        job.out_path = parsed.positional[1];
        status = run_job(&job, s.residual);
    }
    mu_k_release(job.be, &job.g);
    mu_k_release(job.be, &job.q);
    mu_backend_destroy(&job.be);
    free(job.host);
    return status == MU_OK ? MU_EXIT_OK : mu_command_fail("orth", status);
}
