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
#include "shard/optimizer_impl.h"

/* Largest |difference| allowed between the owner's Q and the recomputation. Q's entries are
 * at most 1 in magnitude (an orthogonal factor), and a deterministic recomputation differs by
 * nothing at all; 1e-4 leaves room for BLAS builds that reorder sums, far below any fault
 * that changes the update. */
static const double SDC_TOLERANCE = 1e-4;

/* The matrix this step's check samples, round-robin over the plan; -1 when none is due. */
static int sampled_entry(const mu_optimizer_t *opt)
{
    const long step = opt->steps_done + 1;
    if (opt->check_every <= 0 || step % opt->check_every != 0 || opt->plan->entry_count == 0)
        return -1;
    return (int)((step / opt->check_every - 1) % opt->plan->entry_count);
}

/* Owner: G and Q of entry k side by side in host memory, for the checker. */
static mu_status_t stage_owner(mu_optimizer_t *opt, int k, float *host)
{
    const mu_param_t *p = &opt->layout->params[opt->plan->entries[k].param];
    const int64_t n = p->rows * p->cols;
    MU_CHECK(mu_k_download(opt->be, &opt->checks[k].g, host, MU_DTYPE_F32, p->cols));
    return mu_k_download(opt->be, &opt->checks[k].q, host + n, MU_DTYPE_F32, p->cols);
}

/* Checker: recomputes Q from the owner's G; returns the largest difference in *diff. */
static mu_status_t recompute(mu_optimizer_t *opt, int k, const float *host, double *diff)
{
    const mu_param_t *p = &opt->layout->params[opt->plan->entries[k].param];
    const int64_t n = p->rows * p->cols;
    mu_orth_plan_t *plan = NULL;
    mu_mat_t g = {0}, q = {0};
    float *mine = malloc(sizeof(float) * (size_t)n);
    mu_status_t status = mine ? mu_step_find_plan(opt, p, &plan)
                              : mu_error(MU_ERR_NOMEM, "rank %d: recheck", opt->rank);
    if (status == MU_OK)
        status = mu_k_alloc(opt->be, p->rows, p->cols, MU_DTYPE_F32, &g);
    if (status == MU_OK)
        status = mu_k_alloc(opt->be, p->rows, p->cols, MU_DTYPE_F32, &q);
    if (status == MU_OK)
        status = mu_k_upload(opt->be, host, MU_DTYPE_F32, p->cols, &g);
    if (status == MU_OK)
        status = mu_orth_execute(plan, &g, &q, NULL);
    if (status == MU_OK)
        status = mu_k_download(opt->be, &q, mine, MU_DTYPE_F32, p->cols);
    *diff = 0.0;
    for (int64_t i = 0; status == MU_OK && i < n; i++) {
        const double d = fabs((double)mine[i] - (double)host[n + i]);
        *diff = d > *diff || isnan(d) ? d : *diff;
    }
    mu_k_release(opt->be, &g);
    mu_k_release(opt->be, &q);
    free(mine);
    return status;
}

/* Moves the owner's G and Q to the checker and recomputes there; *diff on every rank. */
static mu_status_t compare(mu_optimizer_t *opt, int k, int owner, int checker, double *diff)
{
    const mu_param_t *p = &opt->layout->params[opt->plan->entries[k].param];
    const int64_t bytes = 2 * p->rows * p->cols * (int64_t)sizeof(float);
    const bool involved = opt->rank == owner || opt->rank == checker;
    float *host = involved ? malloc((size_t)bytes) : NULL;
    int64_t *counts = calloc(2 * (size_t)opt->ranks, sizeof *counts);
    mu_status_t status =
        (involved && !host) || !counts
            ? mu_error(MU_ERR_NOMEM, "rank %d: recheck: cannot allocate", opt->rank)
            : MU_OK;
    if (status == MU_OK && opt->rank == owner)
        status = stage_owner(opt, k, host);
    MU_CHECK(mu_comm_agree(opt->comm, status));
    counts[owner] = bytes; /* displacements (counts + ranks) stay 0 */
    if (owner != checker)  /* one rank: it rechecks itself, from its own copy */
        status = mu_comm_gatherv(opt->comm, host, opt->rank == owner ? bytes : 0, host, counts,
                                 counts + opt->ranks, checker);
    *diff = 0.0;
    if (status == MU_OK && opt->rank == checker)
        status = recompute(opt, k, host, diff);
    free(host);
    free(counts);
    MU_CHECK(mu_comm_agree(opt->comm, status));
    return mu_comm_allreduce(opt->comm, diff, 1, MU_COMM_F64, MU_COMM_MAX);
}

/* Injected sdc: the owner's certified Q changes after its check. */
static mu_status_t inject_sdc(mu_optimizer_t *opt, int k)
{
    const int param = opt->plan->entries[k].param;
    if (!mu_fault_fire(MU_FAULT_SDC, opt->rank, opt->steps_done + 1,
                       opt->layout->params[param].name))
        return MU_OK;
    mu_mat_t first = opt->checks[k].q;
    first.rows = first.cols = 1;
    float value = 0.0f;
    MU_CHECK(mu_k_download(opt->be, &first, &value, MU_DTYPE_F32, 1));
    value += 0.5f;
    return mu_k_upload(opt->be, &value, MU_DTYPE_F32, 1, &first);
}

mu_status_t mu_recheck_wave(mu_optimizer_t *opt, int wave, mu_status_t *failure)
{
    const int k = sampled_entry(opt);
    if (k < opt->plan->wave_begin[wave] || k >= opt->plan->wave_begin[wave + 1])
        return MU_OK;
    const int param = opt->plan->entries[k].param, owner = opt->plan->entries[k].owner;
    const int checker = (owner + 1) % opt->ranks;
    int64_t certified = opt->rank == owner && opt->checks[k].verdict == 0 && !opt->skip[param];
    if (opt->rank == owner && certified)
        MU_CHECK(inject_sdc(opt, k));
    MU_CHECK(mu_comm_bcast(opt->comm, &certified, sizeof certified, owner));
    if (!certified) /* a fallback's exact result, or no update: nothing fast to recheck */
        return MU_OK;
    double diff = 0.0;
    MU_CHECK(compare(opt, k, owner, checker, &diff));
    const mu_param_t *p = &opt->layout->params[param];
    if (diff <= SDC_TOLERANCE) {
        MU_LOG(MU_LOG_DEBUG, MU_SUB_SHARD, "step %ld: %s rechecked by rank %d: max diff %.3g",
               opt->steps_done + 1, p->name, checker, diff);
        return MU_OK;
    }
    opt->skip[param] = true; /* the corrupted update is not applied */
    const mu_status_t status = mu_error(
        MU_ERR_NUMERIC,
        "step %ld: silent-data-corruption check: owner rank %d's result for %s (%lldx%lld) "
        "differs from rank %d's recomputation by up to %.3g (tolerance %.0e); its update is "
        "skipped and the job stops",
        opt->steps_done + 1, owner, p->name, (long long)p->rows, (long long)p->cols, checker, diff,
        SDC_TOLERANCE);
    if (opt->rank == 0) /* every rank returns it; one says it as it happens */
        MU_LOG(MU_LOG_ERROR, MU_SUB_SHARD, "%s", mu_error_message());
    if (*failure == MU_OK)
        *failure = status;
    return MU_OK;
}
