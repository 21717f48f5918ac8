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
#include "kernels/residual.h"
#include "shard/optimizer_impl.h"

void mu_step_record(mu_step_stats_t *st, const mu_step_event_t *event)
{
    if (st->event_count < MU_STEP_EVENTS_MAX)
        st->events[st->event_count++] = *event;
    st->events_total++;
    if (event->kind == MU_EVENT_SKIPPED_NONFINITE)
        st->skipped++;
}

mu_status_t mu_verify_certify(mu_optimizer_t *opt, int entry, const mu_orth_plan_t *plan,
                              bool zero)
{
    entry_check_t *check = &opt->checks[entry];
    const mu_param_t *p = &opt->layout->params[opt->plan->entries[entry].param];
    const double own = opt->layout->settings.residual_tol;
    check->tol = own > 0.0 ? own : mu_orth_plan_residual_tol(plan);
    if (opt->force_fallback || p->fallback_always) {
        check->verdict = MU_EVENT_FALLBACK_FORCED;
        return MU_OK;
    }
    if (zero)
        return MU_OK;
    mu_residual_t r;
    mu_residual_opts_t o;
    mu_residual_opts_certificate(&o);
    const mu_status_t status = mu_residual_measure(opt->be, &check->q, &o, &r);
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
static mu_status_t agree_verdicts(mu_optimizer_t *opt, int first, int count, double *table)
{
    for (int i = 0; i < count; i++) {
        const entry_check_t *c = &opt->checks[first + i];
        const bool mine = opt->plan->entries[first + i].owner == opt->rank;
        table[3 * i] = mine ? c->verdict : 0;
        table[3 * i + 1] = mine && isfinite(c->residual) ? c->residual : mine ? 1e300 : 0;
        table[3 * i + 2] = mine ? c->tol : 0;
    }
    return mu_comm_allreduce(opt->comm, table, 3 * count, MU_COMM_F64, MU_COMM_MAX);
}

/* The owner's fp64 copy of G for the fallback, and room for the result; NULL elsewhere. */
static mu_status_t owner_buffers(mu_optimizer_t *opt, int entry, bool mine, double **g64,
                                 double **q64)
{
    const mu_param_t *p = &opt->layout->params[opt->plan->entries[entry].param];
    mu_status_t status = MU_OK;
    *g64 = *q64 = NULL;
    if (mine) {
        const size_t count = (size_t)(p->rows * p->cols);
        *g64 = malloc(count * sizeof **g64);
        *q64 = malloc(count * sizeof **q64);
        status = *g64 && *q64 ? mu_k_download(opt->be, &opt->checks[entry].g, *g64,
                                              MU_DTYPE_F64, p->cols)
                              : mu_error(MU_ERR_NOMEM, "rank %d: no memory for the fallback "
                                                       "of %s", opt->rank, p->name);
    }
    return mu_comm_agree(opt->comm, status);
}

/* All ranks solve entry `entry` exactly; the owner's Q receives it (or zeros). */
static mu_status_t fall_back(mu_optimizer_t *opt, int entry, mu_step_event_t *event)
{
    const int owner = opt->plan->entries[entry].owner, param = opt->plan->entries[entry].param;
    const mu_param_t *p = &opt->layout->params[param];
    const bool mine = owner == opt->rank;
    if (!opt->fallback)
        MU_CHECK(mu_fallback_create(opt->comm, &opt->fallback));
    double *g64, *q64;
    mu_status_t status = owner_buffers(opt, entry, mine, &g64, &q64);
    if (status == MU_OK)
        status = mu_fallback_polar(opt->fallback, owner, p->rows, p->cols, g64, q64,
                                   &event->fallback);
    event->solved = status == MU_OK;
    if (status == MU_ERR_NUMERIC) { /* agreed inside the fallback: skip this update */
        MU_LOG(MU_LOG_WARN, MU_SUB_SHARD, "step %ld: the fallback for %s failed (%s); its update "
               "is skipped", opt->steps_done + 1, p->name, mu_error_message());
        mu_error_clear();
        opt->skip[param] = true;
        status = mine ? mu_k_fill(opt->be, 0.0, &opt->checks[entry].q) : MU_OK;
    } else if (status == MU_OK && mine) {
        status = mu_k_upload(opt->be, q64, MU_DTYPE_F64, p->cols, &opt->checks[entry].q);
    }
    free(g64);
    free(q64);
    return mu_comm_agree(opt->comm, status);
}

mu_status_t mu_verify_group(mu_optimizer_t *opt, int first, int count, mu_step_stats_t *st)
{
    if (count < 1)
        return MU_OK;
    double *table = malloc(sizeof *table * (size_t)(3 * count));
    MU_CHECK(mu_comm_agree(opt->comm, table ? MU_OK
                                            : mu_error(MU_ERR_NOMEM, "rank %d: verdict table",
                                                       opt->rank)));
    mu_status_t status = agree_verdicts(opt, first, count, table);
    for (int i = 0; status == MU_OK && i < count; i++) {
        if (table[3 * i] == 0)
            continue;
        const int entry = first + i;
        mu_step_event_t event = {.kind = (mu_step_event_kind_t)table[3 * i],
                                 .param = opt->plan->entries[entry].param,
                                 .rank = opt->plan->entries[entry].owner,
                                 .residual = table[3 * i + 1],
                                 .tol = table[3 * i + 2]};
        status = fall_back(opt, entry, &event);
        st->fallbacks++;
        st->skipped += !event.solved;
        mu_step_record(st, &event);
    }
    free(table);
    return status;
}

void mu_step_event_format(const mu_optimizer_t *opt, const mu_step_event_t *e, char *buf,
                          size_t size)
{
    const mu_param_t *p = &opt->layout->params[e->param];
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
