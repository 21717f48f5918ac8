/*
 * muond orth --method scalapack: the exact fallback (fallback/fallback.h) on one matrix, by
 * every rank mpiexec or srun started (alone: one process, a 1 x 1 grid). Rank 0 reads the
 * input, owns the matrix and writes the result; the other ranks lend their share of the grid.
 */
#include <math.h>
#include <mpi.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "comm/mpi/mpi_check.h"
#include "core/log.h"
#include "core/npy.h"
#include "fallback/fallback.h"
#include "kernels/spectrum.h"
#include "launcher/commands.h"
#include "launcher/placement.h"

typedef struct scalapack_job {
    const char *in_path, *out_path;
    mu_comm_t *comm;
    double *g, *q; /* rank 0: row-major rows x cols */
    int64_t shape[2];
} scalapack_job_t;

/* Rank 0 reads the input; every rank learns the outcome and the shape. */
static mu_status_t read_and_share(scalapack_job_t *job)
{
    mu_status_t status = MU_OK;
    if (mu_comm_rank(job->comm) == 0) {
        status = mu_npy_read_matrix(job->in_path, &job->g, &job->shape[0], &job->shape[1]);
        if (status == MU_OK && (job->shape[0] == 0 || job->shape[1] == 0))
            status = mu_error(MU_ERR_INVALID, "%s: the matrix is empty (%lld x %lld)",
                              job->in_path, (long long)job->shape[0], (long long)job->shape[1]);
        for (int64_t i = 0; status == MU_OK && i < job->shape[0] * job->shape[1]; i++)
            if (!isfinite(job->g[i]))
                status = mu_error(MU_ERR_INVALID, "%s: the matrix has NaN or infinite entries",
                                  job->in_path);
        job->q = status == MU_OK ? malloc(sizeof *job->q * (size_t)(job->shape[0] * job->shape[1]))
                                 : NULL;
        if (status == MU_OK && !job->q)
            status = mu_error(MU_ERR_NOMEM, "cannot allocate the result");
    }
    MU_CHECK(mu_comm_agree(job->comm, status));
    return mu_comm_bcast(job->comm, job->shape, sizeof job->shape, 0);
}

static mu_status_t write_result(const scalapack_job_t *job, bool residual)
{
    const int64_t count = job->shape[0] * job->shape[1];
    float *out = malloc(sizeof *out * (size_t)count);
    if (!out)
        return mu_error(MU_ERR_NOMEM, "cannot allocate the float32 result");
    for (int64_t i = 0; i < count; i++)
        out[i] = (float)job->q[i];
    mu_status_t status = MU_OK;
    if (residual) {
        double sigma_err = 0.0, gram_err = 0.0;
        status = mu_host_orthogonality(job->q, job->shape[0], job->shape[1], &sigma_err, &gram_err);
        if (status == MU_OK)
            printf("residual ||QQ^T - I||_2 (fp64 result): exact %.6e; max|s - 1| %.6e\n",
                   gram_err, sigma_err);
    }
    MU_TRY(status,
           mu_npy_write_matrix(job->out_path, out, MU_NPY_F32, job->shape[0], job->shape[1]));
    free(out);
    return status;
}

static mu_status_t solve(scalapack_job_t *job, bool residual)
{
    MU_CHECK(read_and_share(job));
    mu_fallback_t *fb = NULL;
    MU_CHECK(mu_fallback_create(job->comm, &fb));
    mu_fallback_report_t rep;
    mu_status_t status =
        mu_fallback_polar(fb, 0, job->shape[0], job->shape[1], job->g, job->q, &rep);
    if (status == MU_OK && mu_comm_rank(job->comm) == 0) {
        MU_LOG(MU_LOG_INFO, MU_SUB_LAUNCHER, "scalapack %lldx%lld fp64: %s on a %dx%d grid, "
               "rank %lld kept, %.3f s", (long long)job->shape[0], (long long)job->shape[1],
               mu_fallback_route_name(rep.route), rep.nprow, rep.npcol, (long long)rep.rank,
               rep.seconds);
        status = write_result(job, residual);
    }
    mu_fallback_destroy(&fb);
    return mu_comm_agree(job->comm, status);
}

static mu_status_t start_mpi(void)
{
    int initialized = 0;
    MU_MPI_CHECK(MPI_Initialized(&initialized));
    if (!initialized)
        MU_MPI_CHECK(MPI_Init(NULL, NULL));
    return MU_OK;
}

int mu_orth_scalapack(const char *in_path, const char *out_path, bool residual)
{
    const mu_status_t launch = mu_launch_prepare();
    if (launch != MU_OK)
        return mu_command_fail("orth", launch);
    const mu_status_t started = start_mpi();
    if (started != MU_OK)
        return mu_command_fail("orth", started);
    scalapack_job_t job = {.in_path = in_path, .out_path = out_path};
    mu_status_t status = mu_comm_create("mpi", &job.comm);
    MU_TRY(status, solve(&job, residual));
    const int rank = job.comm ? mu_comm_rank(job.comm) : 0;
    mu_comm_destroy(&job.comm);
    free(job.g);
    free(job.q);
    int code = MU_EXIT_OK;
    if (status != MU_OK) {
        char prog[64];
        snprintf(prog, sizeof prog, "orth (rank %d)", rank);
        code = mu_command_fail(prog, status);
    }
    MPI_Finalize();
    return code;
}
