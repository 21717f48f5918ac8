/*
 * The certificate of every fast orthogonalization and the exact fallback behind it
 * (DESIGN.md, step 4).
 *
 * On the owner, right after Polar Express / NS5 / Gram: a result with NaN or Inf fails; so
 * does one whose residual estimate ||QQ^T - I||_F / sqrt(s) exceeds the tolerance, the
 * layout's residual_tol or else the plan's own (kernels/residual.h: from the schedule's error
 * bound). A zero input (zero momentum) gives a zero update, which is right, and passes.
 *
 * After the compute phase of a group (a wave, or one matrix in local mode) the ranks agree
 * on the verdicts in one allreduce: three doubles per matrix (reason, residual, tolerance),
 * the owner contributing and the others zeros, combined with MAX. Every failed matrix is then
 * solved by all ranks together, in entry order: the owner's G goes to fp64, through
 * mu_fallback_polar, and the fp64 result back into the owner's Q before the scatter. A
 * numerical failure there (ScaLAPACK's info > 0, agreed by all ranks) leaves Q zero and the
 * matrix's update skipped, never applied in part; a negative info is a bug in muond and
 * stops the step.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "kernels/host_view.h"
#include "kernels/residual.h"
#include "shard/certifier.h"

struct mu_certifier {
    const mu_shard_env_t *env;
    entry_check_t *checks;   /* per plan entry, this step */
    double *table;           /* the agreed verdicts: 3 per matrix of the largest group */
    mu_fallback_t *fallback; /* created on first use */
    bool force_fallback;
};

mu_status_t mu_certifier_create(const mu_shard_env_t *env, mu_certifier_t **out)
{
    mu_certifier_t *c = calloc(1, sizeof *c);
    *out = c;
    if (c) {
        c->env = env;
        c->checks = calloc((size_t)env->plan->entry_count + 1, sizeof *c->checks);
        c->table = calloc(3 * (size_t)mu_shard_plan_largest_wave(env->plan), sizeof *c->table);
    }
    if (!c || !c->checks || !c->table)
        return mu_error(MU_ERR_NOMEM, "cannot allocate the certifier");
    return MU_OK;
}

void mu_certifier_destroy(mu_certifier_t **cert)
{
    if (!*cert)
        return;
    mu_fallback_destroy(&(*cert)->fallback);
    free((*cert)->checks);
    free((*cert)->table);
    free(*cert);
    *cert = NULL;
}

void mu_certifier_force_fallback(mu_certifier_t *cert, bool force)
{
    cert->force_fallback = force;
}

void mu_certifier_reset(mu_certifier_t *cert, int entry, const mu_mat_t *g, const mu_mat_t *q)
{
    cert->checks[entry] = (entry_check_t){0};
    if (g && q) {
        cert->checks[entry].g = *g;
        cert->checks[entry].q = *q;
    }
}

const entry_check_t *mu_certifier_check(const mu_certifier_t *cert, int entry)
{
    return &cert->checks[entry];
}

mu_status_t mu_certifier_judge(mu_certifier_t *cert, int entry, const mu_orth_plan_t *plan,
                               bool zero)
{
    const mu_shard_env_t *env = cert->env;
    entry_check_t *check = &cert->checks[entry];
    const mu_param_t *p = &env->layout->params[env->plan->entries[entry].param];
    const double own = env->layout->settings.residual_tol;
    check->tol = own > 0.0 ? own : mu_orth_plan_residual_tol(plan);
    if (cert->force_fallback || p->fallback_always) {
        check->verdict = MU_EVENT_FALLBACK_FORCED;
        return MU_OK;
    }
    if (zero)
        return MU_OK;
    mu_residual_t r;
    mu_residual_opts_t o;
    mu_residual_opts_certificate(&o);
    const mu_status_t status = mu_residual_measure(env->be, &check->q, &o, &r);
    if (status == MU_ERR_NUMERIC) {
        mu_error_clear();
        check->verdict = MU_EVENT_FALLBACK_NONFINITE;
        check->residual = INFINITY;
        return MU_OK;
    }
    MU_CHECK(status);
    check->residual = r.rms;
    if (!(r.rms <= check->tol))
        check->verdict = MU_EVENT_FALLBACK_RESIDUAL;
    return MU_OK;
}

/* One allreduce: every rank learns each entry's verdict, residual and tolerance. */
static mu_status_t agree_verdicts(mu_certifier_t *cert, int first, int count)
{
    const mu_shard_env_t *env = cert->env;
    double *table = cert->table;
    for (int i = 0; i < count; i++) {
        const entry_check_t *c = &cert->checks[first + i];
        const bool mine = env->plan->entries[first + i].owner == env->rank;
        table[3 * i] = mine ? c->verdict : 0;
        table[3 * i + 1] = mine && isfinite(c->residual) ? c->residual : mine ? 1e300 : 0;
        table[3 * i + 2] = mine ? c->tol : 0;
    }
    return mu_comm_allreduce(env->comm, table, 3 * count, MU_COMM_F64, MU_COMM_MAX);
}

/* The owner's fp64 views of G (read) and Q (written) for the fallback; empty elsewhere. */
static mu_status_t owner_views(mu_certifier_t *cert, int entry, bool mine, mu_host_view_t *g64,
                               mu_host_view_t *q64)
{
    const entry_check_t *check = &cert->checks[entry];
    mu_backend_t *be = cert->env->be;
    mu_status_t status = MU_OK;
    *g64 = *q64 = (mu_host_view_t){0};
    if (mine) {
        MU_TRY(status,
               mu_host_view_begin(be, &check->g, MU_DTYPE_F64, MU_HOST_READ | MU_HOST_PACKED, g64));
        MU_TRY(status, mu_host_view_begin(be, &check->q, MU_DTYPE_F64,
                                          MU_HOST_WRITE | MU_HOST_PACKED, q64));
    }
    return mu_comm_agree(cert->env->comm, status);
}

/* After the solve: the owner's Q receives the result, or zeros when the fallback failed
 * numerically (the update is then skipped). */
static mu_status_t store_result(mu_certifier_t *cert, int entry, mu_status_t solved,
                                mu_host_view_t *q64)
{
    if (solved == MU_OK)
        return mu_host_view_end(cert->env->be, q64);
    mu_host_view_release(q64);
    if (solved != MU_ERR_NUMERIC || cert->env->plan->entries[entry].owner != cert->env->rank)
        return solved;
    mu_mat_t q = cert->checks[entry].q;
    return mu_k_fill(cert->env->be, 0.0, &q);
}

/* All ranks solve entry `entry` exactly; the owner's Q receives it (or zeros). */
static mu_status_t fall_back(mu_certifier_t *cert, mu_step_ctx_t *ctx, int entry,
                             mu_step_event_t *event)
{
    const mu_shard_env_t *env = cert->env;
    const int owner = env->plan->entries[entry].owner, param = env->plan->entries[entry].param;
    const mu_param_t *p = &env->layout->params[param];
    if (!cert->fallback)
        MU_CHECK(mu_fallback_create(env->comm, &cert->fallback));
    mu_fallback_set_step(cert->fallback, ctx->step);
    mu_host_view_t g64, q64;
    mu_status_t status = MU_OK;
    MU_TRY(status, owner_views(cert, entry, owner == env->rank, &g64, &q64));
    MU_TRY(status, mu_fallback_polar(cert->fallback, owner, p->rows, p->cols, g64.data, q64.data,
                                     &event->fallback));
    event->solved = status == MU_OK;
    if (status == MU_ERR_NUMERIC) { /* agreed inside the fallback: skip this update */
        MU_LOG(MU_LOG_WARN, MU_SUB_SHARD,
               "step %ld: the fallback for %s failed (%s); its update "
               "is skipped",
               ctx->step, p->name, mu_error_message());
        mu_error_clear();
        ctx->skip[param] = true;
    }
    status = store_result(cert, entry, status, &q64);
    mu_host_view_release(&g64);
    return mu_comm_agree(env->comm, status);
}

mu_status_t mu_certifier_agree(mu_certifier_t *cert, mu_step_ctx_t *ctx, int first, int count)
{
    if (count < 1)
        return MU_OK;
    const mu_shard_env_t *env = cert->env;
    MU_CHECK(agree_verdicts(cert, first, count));
    const double *table = cert->table;
    for (int i = 0; i < count; i++) {
        if (table[3 * i] == 0)
            continue;
        const int entry = first + i;
        mu_step_event_t event = {.kind = (mu_step_event_kind_t)table[3 * i],
                                 .param = env->plan->entries[entry].param,
                                 .rank = env->plan->entries[entry].owner,
                                 .residual = table[3 * i + 1],
                                 .tol = table[3 * i + 2]};
        mu_status_t status = MU_OK;
        MU_TRY(status, fall_back(cert, ctx, entry, &event));
        ctx->stats->fallbacks++;
        ctx->stats->skipped += !event.solved;
        mu_step_record(ctx, &event);
        if (status != MU_OK)
            return status;
    }
    return MU_OK;
}

void mu_step_event_format(const mu_optimizer_t *opt, const mu_step_event_t *e, char *buf,
                          size_t size)
{
    const mu_param_t *p = &opt->env.layout->params[e->param];
    if (e->kind == MU_EVENT_SKIPPED_NONFINITE) {
        snprintf(buf, size, "%s: skipped, %lld non-finite gradient entries (first on rank %d); "
                 "weights and momentum unchanged", p->name, (long long)e->nonfinite, e->rank);
        return;
    }
    char why[96];
    if (e->kind == MU_EVENT_FALLBACK_RESIDUAL)
        snprintf(why, sizeof why, "residual %.3g > tolerance %.3g", e->residual, e->tol);
    else
        snprintf(why, sizeof why, "%s", e->kind == MU_EVENT_FALLBACK_NONFINITE
                                            ? "non-finite fast result"
                                            : "forced");
    snprintf(buf, size, "%s (%lldx%lld, owner rank %d): fallback, %s -> %s on a %dx%d grid, "
             "%.3f s%s", p->name, (long long)p->rows, (long long)p->cols, e->rank, why,
             mu_fallback_route_name(e->fallback.route), e->fallback.nprow, e->fallback.npcol,
             e->fallback.seconds, e->solved ? "" : ", FAILED: update skipped");
}
