/*
 * The silent-data-corruption check (mu_optimizer_set_check_every): a fault that corrupts an
 * owner's result after its residual check (a flaky core, a bad memory cell) passes every
 * other test. So now and then another rank recomputes one certified result from the same
 * input and compares: the same code on the same input gives the same floats, so any
 * difference above rounding noise is corruption.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "core/log.h"
#include "kernels/host_view.h"
#include "shard/certifier.h"
#include "shard/plan_cache.h"

/* Largest |difference| allowed between the owner's Q and the recomputation. Q's entries are
 * at most 1 in magnitude (an orthogonal factor), and a deterministic recomputation differs by
 * nothing at all; 1e-4 leaves room for BLAS builds that reorder sums, far below any fault
 * that changes the update. */
static const double SDC_TOLERANCE = 1e-4;

/* The matrix this step's check samples, round-robin over the plan; -1 when none is due. */
static int sampled_entry(const mu_optimizer_t *opt, long step)
{
    if (opt->check_every <= 0 || step % opt->check_every != 0 || opt->env.plan->entry_count == 0)
        return -1;
    return (int)((step / opt->check_every - 1) % opt->env.plan->entry_count);
}

/* Owner: G and Q of entry k side by side in host memory, for the checker. */
static mu_status_t stage_owner(mu_optimizer_t *opt, int k, float *host)
{
    const mu_param_t *p = &opt->env.layout->params[opt->env.plan->entries[k].param];
    const entry_check_t *check = mu_certifier_check(opt->certifier, k);
    MU_CHECK(mu_k_download(opt->env.be, &check->g, host, MU_DTYPE_F32, p->cols));
    MU_CHECK(
        mu_k_download(opt->env.be, &check->q, host + p->rows * p->cols, MU_DTYPE_F32, p->cols));
    return MU_OK;
}

/* The largest |a - b| over n values; NaN where any difference is NaN. */
static double largest_difference(const float *a, const float *b, int64_t n)
{
    double diff = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - (double)b[i]);
        diff = d > diff || isnan(d) ? d : diff;
    }
    return diff;
}

/* Checker: recomputes Q from the owner's G (host[0..n)) and compares it with the owner's Q
 * (host[n..2n)); the largest difference goes to *diff. */
static mu_status_t recompute(mu_optimizer_t *opt, int k, const float *host, double *diff)
{
    mu_backend_t *be = opt->env.be;
    const mu_param_t *p = &opt->env.layout->params[opt->env.plan->entries[k].param];
    const int64_t n = p->rows * p->cols;
    mu_orth_plan_t *plan = NULL;
    mu_mat_t g = {0}, q = {0};
    mu_host_view_t mine = {0};
    mu_status_t status = MU_OK;
    MU_TRY(status, mu_plan_cache_find(opt->plans, p, &plan));
    MU_TRY(status, mu_k_alloc(be, p->rows, p->cols, MU_DTYPE_F32, &g));
    MU_TRY(status, mu_k_alloc(be, p->rows, p->cols, MU_DTYPE_F32, &q));
    MU_TRY(status, mu_k_upload(be, host, MU_DTYPE_F32, p->cols, &g));
    MU_TRY(status, mu_orth_execute(plan, &g, &q, NULL));
    MU_TRY(status, mu_host_view_begin(be, &q, MU_DTYPE_F32, MU_HOST_READ | MU_HOST_PACKED, &mine));
    *diff = status == MU_OK ? largest_difference(mine.data, host + n, n) : 0.0;
    mu_host_view_release(&mine);
    mu_k_release(be, &g);
    mu_k_release(be, &q);
    return status;
}

/* Moves the owner's G and Q to the checker and recomputes there; *diff on every rank. */
static mu_status_t compare(mu_optimizer_t *opt, int k, int owner, int checker, double *diff)
{
    const mu_shard_env_t *env = &opt->env;
    const mu_param_t *p = &env->layout->params[env->plan->entries[k].param];
    const int64_t bytes = 2 * p->rows * p->cols * (int64_t)sizeof(float);
    const bool involved = env->rank == owner || env->rank == checker;
    float *host = involved ? malloc((size_t)bytes) : NULL;
    int64_t *counts = calloc(2 * (size_t)env->ranks, sizeof *counts);
    mu_status_t status =
        (involved && !host) || !counts ? mu_error(MU_ERR_NOMEM, "recheck: cannot allocate") : MU_OK;
    if (env->rank == owner)
        MU_TRY(status, stage_owner(opt, k, host));
    status = mu_comm_agree(env->comm, status);
    if (status == MU_OK)
        counts[owner] = bytes; /* displacements (counts + ranks) stay 0 */
    if (owner != checker)      /* one rank: it rechecks itself, from its own copy */
        MU_TRY(status, mu_comm_gatherv(env->comm, host, env->rank == owner ? bytes : 0, host,
                                       counts, counts + env->ranks, checker));
    *diff = 0.0;
    if (env->rank == checker)
        MU_TRY(status, recompute(opt, k, host, diff));
    free(host);
    free(counts);
    MU_CHECK(mu_comm_agree(env->comm, status));
    return mu_comm_allreduce(env->comm, diff, 1, MU_COMM_F64, MU_COMM_MAX);
}

/* Injected sdc: the owner's certified Q changes after its check. */
static mu_status_t inject_sdc(mu_optimizer_t *opt, int k, long step)
{
    const int param = opt->env.plan->entries[k].param;
    if (!mu_fault_fire(MU_FAULT_SDC, opt->env.rank, step, opt->env.layout->params[param].name))
        return MU_OK;
    mu_mat_t first = mu_certifier_check(opt->certifier, k)->q;
    first.rows = first.cols = 1;
    mu_host_view_t v;
    MU_CHECK(mu_host_view_begin(opt->env.be, &first, MU_DTYPE_F32, MU_HOST_READ_WRITE, &v));
    *(float *)v.data += 0.5f;
    MU_CHECK(mu_host_view_end(opt->env.be, &v));
    return MU_OK;
}

/* A recomputation that differs: the update is not applied and the job stops. */
static mu_status_t report_corruption(const mu_shard_env_t *env, mu_step_ctx_t *ctx, int param,
                                     int owner, int checker, double diff)
{
    const mu_param_t *p = &env->layout->params[param];
    ctx->skip[param] = true;
    const mu_status_t status = mu_error(
        MU_ERR_NUMERIC,
        "step %ld: silent-data-corruption check: owner rank %d's result for %s (%lldx%lld) "
        "differs from rank %d's recomputation by up to %.3g (tolerance %.0e); its update is "
        "skipped and the job stops",
        ctx->step, owner, p->name, (long long)p->rows, (long long)p->cols, checker, diff,
        SDC_TOLERANCE);
    if (env->rank == 0) /* every rank returns it; one says it as it happens */
        MU_LOG(MU_LOG_ERROR, MU_SUB_SHARD, "%s", mu_error_message());
    return status;
}

mu_status_t mu_recheck_wave(mu_optimizer_t *opt, mu_step_ctx_t *ctx, int wave, mu_status_t *failure)
{
    const mu_shard_env_t *env = &opt->env;
    const int k = sampled_entry(opt, ctx->step);
    if (k < env->plan->wave_begin[wave] || k >= env->plan->wave_begin[wave + 1])
        return MU_OK;
    const int param = env->plan->entries[k].param, owner = env->plan->entries[k].owner;
    const int checker = (owner + 1) % env->ranks;
    /* A shampoo result depends on the owner's statistics, which no other rank holds: its
     * roots are certified instead, and the sample moves on. */
    if (env->layout->params[param].method == MU_METHOD_SHAMPOO)
        return MU_OK;
    int64_t certified = env->rank == owner && mu_certifier_check(opt->certifier, k)->verdict == 0 &&
                        !ctx->skip[param];
    if (env->rank == owner && certified)
        MU_CHECK(inject_sdc(opt, k, ctx->step));
    MU_CHECK(mu_comm_bcast(env->comm, &certified, sizeof certified, owner));
    if (!certified) /* a fallback's exact result, or no update: nothing fast to recheck */
        return MU_OK;
    double diff = 0.0;
    MU_CHECK(compare(opt, k, owner, checker, &diff));
    if (diff <= SDC_TOLERANCE) {
        MU_LOG(MU_LOG_DEBUG, MU_SUB_SHARD, "step %ld: %s rechecked by rank %d: max diff %.3g",
               ctx->step, env->layout->params[param].name, checker, diff);
        return MU_OK;
    }
    const mu_status_t status = report_corruption(env, ctx, param, owner, checker, diff);
    if (*failure == MU_OK)
        *failure = status;
    return MU_OK;
}
