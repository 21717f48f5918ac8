/*
 * One optimizer step, in both gradient modes (see shard/optimizer.h).
 *
 * Failures and collectives: a rank that fails locally (an orthogonalization that cannot run)
 * keeps taking part in every remaining collective of the step with a zero update in place of
 * the failed one, so that no peer waits forever; the ranks then agree on the outcome and all
 * report it. The finite check runs before any state changes, so non-finite gradients never
 * leave a step half-applied.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/fault.h"
#include "core/log.h"
#include "shard/optimizer_impl.h"

/* ---- finite check: agreed before anything changes --------------------------------------- */

/* on_nonfinite abort: the job stops; the message names every parameter, rank and the step. */
static mu_status_t report_nonfinite(const mu_optimizer_t *opt)
{
    char names[512] = "";
    int listed = 0;
    for (int p = 0; p < opt->layout->param_count; p++) {
        if (opt->nonfinite[p] == 0)
            continue;
        if (listed++ < 4) {
            char one[224];
            snprintf(one, sizeof one, "%s%s (%lld entries, first on rank %d)",
                     listed > 1 ? ", " : "", opt->layout->params[p].name,
                     (long long)opt->nonfinite[p], opt->first_bad_rank[p]);
            strncat(names, one, sizeof names - strlen(names) - 1);
        }
    }
    return mu_error(MU_ERR_NUMERIC,
                    "step %ld: non-finite gradient in %s%s; on_nonfinite is abort: stopping with "
                    "no state of this step changed",
                    opt->steps_done + 1, names, listed > 4 ? ", ..." : "");
}

/* The counts and the lowest rank of every parameter with NaN/Inf entries, agreed before any
 * state changes; under skip those parameters sit this step out. */
mu_status_t mu_step_finite_check(mu_optimizer_t *opt, mu_step_stats_t *st)
{
    const int n = opt->layout->param_count;
    int64_t any = 0;
    for (int p = 0; p < n; p++) {
        MU_CHECK(mu_k_count_nonfinite(opt->be, &opt->params[p].g, &opt->nonfinite[p]));
        opt->skip[p] = false;
        any += opt->nonfinite[p];
    }
    MU_CHECK(mu_comm_allreduce(opt->comm, &any, 1, MU_COMM_I64, MU_COMM_SUM));
    if (any == 0)
        return MU_OK;
    int64_t *first = opt->scratch_i64;
    for (int p = 0; p < n; p++)
        first[p] = opt->nonfinite[p] > 0 ? opt->rank : INT32_MAX;
    MU_CHECK(mu_comm_allreduce(opt->comm, opt->nonfinite, n, MU_COMM_I64, MU_COMM_SUM));
    MU_CHECK(mu_comm_allreduce(opt->comm, first, n, MU_COMM_I64, MU_COMM_MIN));
    for (int p = 0; p < n; p++)
        opt->first_bad_rank[p] = (int)first[p];
    if (opt->layout->settings.on_nonfinite == MU_NONFINITE_ABORT)
        return report_nonfinite(opt);
    for (int p = 0; p < n; p++) {
        if (opt->nonfinite[p] == 0)
            continue;
        opt->skip[p] = true;
        const mu_step_event_t e = {.kind = MU_EVENT_SKIPPED_NONFINITE,
                                   .param = p,
                                   .rank = opt->first_bad_rank[p],
                                   .nonfinite = opt->nonfinite[p]};
        mu_step_record(st, &e);
    }
    return MU_OK;
}

/* ---- orthogonalization with a plan per (shape, method) ---------------------------------- */

mu_status_t mu_step_find_plan(mu_optimizer_t *opt, const mu_param_t *p, mu_orth_plan_t **out)
{
    const mu_orth_method_t method = mu_method_orth(p->method);
    for (int i = 0; i < opt->plan_count; i++) {
        const cached_plan_t *c = &opt->plans[i];
        if (c->rows == p->rows && c->cols == p->cols && c->method == method) {
            *out = c->plan;
            return MU_OK;
        }
    }
    if (opt->plan_count == opt->plan_capacity) {
        const int capacity = opt->plan_capacity ? 2 * opt->plan_capacity : 8;
        cached_plan_t *grown = realloc(opt->plans, sizeof *grown * (size_t)capacity);
        if (!grown)
            return mu_error(MU_ERR_NOMEM, "rank %d: cannot grow the plan cache", opt->rank);
        opt->plans = grown;
        opt->plan_capacity = capacity;
    }
    mu_orth_opts_t o;
    mu_layout_orth_opts(opt->layout, p, &o);
    cached_plan_t *c = &opt->plans[opt->plan_count];
    *c = (cached_plan_t){p->rows, p->cols, method, NULL};
    MU_CHECK(mu_orth_plan_create(opt->be, p->rows, p->cols, &o, &c->plan));
    opt->plan_count++;
    *out = c->plan;
    return MU_OK;
}

/* The owner's fast path for plan entry `entry`, certified (shard/verify.c). */
mu_status_t mu_step_orthogonalize(mu_optimizer_t *opt, int entry, const mu_mat_t *g, mu_mat_t *q,
                                  bool *zero)
{
    const int param = opt->plan->entries[entry].param;
    const mu_param_t *p = &opt->layout->params[param];
    entry_check_t *check = &opt->checks[entry];
    *check = (entry_check_t){.g = *g, .q = *q};
    *zero = false;
    if (opt->skip[param]) /* NaN/Inf gradient: no update; the exchange still carries zeros */
        return mu_k_fill(opt->be, 0.0, q);
    mu_orth_plan_t *plan = NULL;
    MU_CHECK(mu_step_find_plan(opt, p, &plan));
    mu_orth_report_t report;
    const mu_status_t status = mu_orth_execute(plan, g, q, &report);
    if (status != MU_OK)
        return mu_error(status, "rank %d, step %ld: %s (%lldx%lld): %s", opt->rank,
                        opt->steps_done + 1, p->name, (long long)p->rows, (long long)p->cols,
                        mu_error_message());
    *zero = report.zero_input;
    return mu_verify_certify(opt, entry, plan, report.zero_input);
}

/* ---- local phases ------------------------------------------------------------------------ */

static mu_adamw_hyper_t adamw_hyper(const mu_optimizer_t *opt, int param)
{
    const mu_settings_t *s = &opt->layout->settings;
    const mu_hyper_t *h = &opt->params[param].hyper;
    return (mu_adamw_hyper_t){h->lr,        h->momentum,     s->adamw_beta2,
                              s->adamw_eps, h->weight_decay, opt->steps_done + 1};
}

/* Sharded mode: momentum on matrix shards (U replaces G), AdamW on the rest. */
static mu_status_t momentum_phase(mu_optimizer_t *opt)
{
    const mu_settings_t *s = &opt->layout->settings;
    for (int i = 0; i < opt->layout->param_count; i++) {
        const mu_param_t *p = &opt->layout->params[i];
        param_state_t *ps = &opt->params[i];
        if (ps->row_end == ps->row_begin)
            continue;
        if (opt->skip[i]) { /* momentum and moments stay unpolluted; zeros travel instead */
            MU_CHECK(mu_k_fill(opt->be, 0.0, &ps->g));
        } else if (mu_method_is_matrix(p->method)) {
            MU_CHECK(
                mu_k_momentum(opt->be, ps->hyper.momentum, s->nesterov, &ps->g, &ps->m, &ps->g));
        } else {
            const mu_adamw_hyper_t h = adamw_hyper(opt, i);
            MU_CHECK(mu_k_adamw(opt->be, &h, &ps->g, &ps->w, &ps->m1, &ps->m2));
        }
    }
    return MU_OK;
}

/* W = W (1 - lr wd) - lr scale O on this rank's rows of one wave's matrices. */
static mu_status_t apply_wave(mu_optimizer_t *opt, int wave)
{
    const mu_shard_plan_t *plan = opt->plan;
    for (int k = plan->wave_begin[wave]; k < plan->wave_begin[wave + 1]; k++) {
        const mu_param_t *p = &opt->layout->params[plan->entries[k].param];
        param_state_t *ps = &opt->params[plan->entries[k].param];
        if (ps->row_end == ps->row_begin || opt->skip[plan->entries[k].param])
            continue;
        const double scale = mu_scale_factor(opt->layout->settings.scale, p->rows, p->cols);
        MU_CHECK(mu_k_apply_update(opt->be, ps->hyper.lr, ps->hyper.weight_decay, scale, &ps->g,
                                   &ps->w));
    }
    return MU_OK;
}

/* An owner orthogonalizes its matrices of the wave. A local failure leaves a zero update in
 * place (the collectives go on) and is returned through *failure for the agreement. */
static mu_status_t compute_wave(mu_optimizer_t *opt, int wave, mu_step_stats_t *st,
                                mu_status_t *failure)
{
    const mu_shard_plan_t *plan = opt->plan;
    for (int k = plan->wave_begin[wave]; k < plan->wave_begin[wave + 1]; k++) {
        if (plan->entries[k].owner != opt->rank)
            continue;
        mu_mat_t g, q;
        mu_exchange_full_views(opt, wave, k - plan->wave_begin[wave], &g, &q);
        bool zero = false;
        const mu_status_t status = mu_step_orthogonalize(opt, k, &g, &q, &zero);
        if (status != MU_OK) {
            MU_LOG(MU_LOG_ERROR, MU_SUB_SHARD, "%s", mu_error_message());
            if (*failure == MU_OK)
                *failure = status;
            MU_CHECK(mu_k_fill(opt->be, 0.0, &q));
        }
        st->zero_updates += zero;
        mu_exchange_progress(opt);
    }
    return MU_OK;
}

static void count_bytes(const mu_optimizer_t *opt, int wave, mu_step_stats_t *st)
{
    const wave_schedule_t *ws = &opt->waves[wave];
    st->bytes_sent += ws->gather.send_total + ws->scatter.send_total;
    st->bytes_sent_remote += ws->gather.send_total - ws->gather.send_counts[opt->rank] +
                             ws->scatter.send_total - ws->scatter.send_counts[opt->rank];
}

/* Ends wave w's scatter and applies it. */
static mu_status_t finish_wave(mu_optimizer_t *opt, int wave, mu_step_stats_t *st)
{
    double t = mu_seconds();
    MU_CHECK(mu_exchange_wait_scatter(opt, wave));
    st->exchange_s += mu_seconds() - t;
    t = mu_seconds();
    MU_CHECK(apply_wave(opt, wave));
    st->apply_s += mu_seconds() - t;
    return MU_OK;
}

/* The pipeline: gather k+1 is in flight while wave k computes; scatter k completes while
 * wave k+1 computes. */
static mu_status_t run_waves(mu_optimizer_t *opt, mu_step_stats_t *st, mu_status_t *failure)
{
    const int waves = opt->plan->wave_count;
    double t = mu_seconds();
    if (waves > 0)
        MU_CHECK(mu_exchange_post_gather(opt, 0));
    st->exchange_s += mu_seconds() - t;
    for (int w = 0; w < waves; w++) {
        t = mu_seconds();
        MU_CHECK(mu_exchange_wait_gather(opt, w));
        if (w + 1 < waves)
            MU_CHECK(mu_exchange_post_gather(opt, w + 1));
        st->exchange_s += mu_seconds() - t;
        t = mu_seconds();
        MU_CHECK(compute_wave(opt, w, st, failure));
        const double verify_start = mu_seconds();
        MU_CHECK(mu_verify_group(opt, opt->plan->wave_begin[w],
                                 opt->plan->wave_begin[w + 1] - opt->plan->wave_begin[w], st));
        MU_CHECK(mu_recheck_wave(opt, w, failure));
        st->fallback_s += mu_seconds() - verify_start;
        st->compute_s += mu_seconds() - t;
        t = mu_seconds();
        MU_CHECK(mu_exchange_post_scatter(opt, w));
        st->exchange_s += mu_seconds() - t;
        count_bytes(opt, w, st);
        if (w > 0)
            MU_CHECK(finish_wave(opt, w - 1, st));
    }
    if (waves > 0)
        MU_CHECK(finish_wave(opt, waves - 1, st));
    return MU_OK;
}

mu_status_t mu_step_sharded(mu_optimizer_t *opt, mu_step_stats_t *st)
{
    double t = mu_seconds();
    MU_CHECK(momentum_phase(opt));
    st->momentum_s += mu_seconds() - t;
    mu_status_t failure = MU_OK;
    MU_CHECK(run_waves(opt, st, &failure));
    return mu_comm_agree(opt->comm, failure);
}

/* ---- local gradient mode ---------------------------------------------------------------- */

/* AdamW parameters: average the replicas' gradients, then every replica updates alike. */
static mu_status_t local_adamw(mu_optimizer_t *opt)
{
    for (int i = 0; i < opt->layout->param_count; i++) {
        const mu_param_t *p = &opt->layout->params[i];
        param_state_t *ps = &opt->params[i];
        if (mu_method_is_matrix(p->method))
            continue;
        MU_CHECK(
            mu_comm_allreduce(opt->comm, ps->g.data, p->rows * p->cols, MU_COMM_F32, MU_COMM_SUM));
        if (opt->skip[i])
            continue;
        MU_CHECK(mu_k_scale(opt->be, 1.0 / opt->ranks, &ps->g));
        const mu_adamw_hyper_t h = adamw_hyper(opt, i);
        MU_CHECK(mu_k_adamw(opt->be, &h, &ps->g, &ps->w, &ps->m1, &ps->m2));
    }
    return MU_OK;
}

/* The owner of one matrix: averaged G -> momentum -> orthogonalize, certified; Q lands in
 * opt->full. A local failure skips the matrix (W stays) and is agreed at the end. */
static mu_status_t local_owner_compute(mu_optimizer_t *opt, int entry, mu_step_stats_t *st,
                                       mu_status_t *failure)
{
    const int param = opt->plan->entries[entry].param;
    const mu_param_t *p = &opt->layout->params[param];
    const mu_settings_t *s = &opt->layout->settings;
    param_state_t *ps = &opt->params[param];
    opt->checks[entry] = (entry_check_t){0};
    if (opt->skip[param])
        return MU_OK;
    MU_CHECK(mu_k_scale(opt->be, 1.0 / opt->ranks, &ps->g));
    MU_CHECK(mu_k_momentum(opt->be, ps->hyper.momentum, s->nesterov, &ps->g, &ps->m, &ps->g));
    mu_mat_t q = {p->rows, p->cols, p->cols, MU_DTYPE_F32, opt->full.data};
    bool zero = false;
    const mu_status_t status = mu_step_orthogonalize(opt, entry, &ps->g, &q, &zero);
    if (status != MU_OK) {
        MU_LOG(MU_LOG_ERROR, MU_SUB_SHARD, "%s", mu_error_message());
        if (*failure == MU_OK)
            *failure = status;
        opt->checks[entry] = (entry_check_t){0};
        opt->skip[param] = true; /* W stays as it was; the broadcast still happens */
    }
    st->zero_updates += zero;
    return MU_OK;
}

/* Each matrix in turn: the owner computes, all ranks agree (and fall back), the owner applies. */
static mu_status_t local_matrices(mu_optimizer_t *opt, mu_step_stats_t *st, mu_status_t *failure)
{
    const mu_shard_plan_t *plan = opt->plan;
    const mu_settings_t *s = &opt->layout->settings;
    for (int k = 0; k < plan->entry_count; k++) {
        const int param = plan->entries[k].param;
        const bool mine = plan->entries[k].owner == opt->rank;
        if (mine)
            MU_CHECK(local_owner_compute(opt, k, st, failure));
        const double t = mu_seconds();
        MU_CHECK(mu_verify_group(opt, k, 1, st));
        st->fallback_s += mu_seconds() - t;
        if (!mine || opt->skip[param])
            continue;
        const mu_param_t *p = &opt->layout->params[param];
        const mu_hyper_t *h = &opt->params[param].hyper;
        const double scale = mu_scale_factor(s->scale, p->rows, p->cols);
        MU_CHECK(mu_k_apply_update(opt->be, h->lr, h->weight_decay, scale, &opt->checks[k].q,
                                   &opt->params[param].w));
    }
    return MU_OK;
}

/* Injected bitflip in local mode: one bit of a broadcast weight lands wrong on this replica
 * (the divergence check's replica digest is what catches it). */
static void flip_replica_bit(mu_optimizer_t *opt)
{
    if (!mu_fault_fire(MU_FAULT_BITFLIP, opt->rank, opt->steps_done + 1, NULL) ||
        !mu_backend_host_memory(opt->be))
        return;
    for (int p = 0; p < opt->layout->param_count; p++)
        if (opt->params[p].w.rows > 0) {
            ((unsigned char *)opt->params[p].w.data)[0] ^= 0x10;
            return;
        }
}

mu_status_t mu_step_local(mu_optimizer_t *opt, mu_step_stats_t *st)
{
    const mu_shard_plan_t *plan = opt->plan;
    double t = mu_seconds();
    MU_CHECK(local_adamw(opt));
    st->momentum_s += mu_seconds() - t;
    t = mu_seconds();
    for (int k = 0; k < plan->entry_count; k++) { /* gradients summed to the owners */
        const mu_param_t *p = &opt->layout->params[plan->entries[k].param];
        MU_CHECK(mu_comm_reduce(opt->comm, opt->params[plan->entries[k].param].g.data,
                                p->rows * p->cols, MU_COMM_F32, MU_COMM_SUM,
                                plan->entries[k].owner));
        st->bytes_sent += opt->rank == plan->entries[k].owner ? 0 : p->rows * p->cols * 4;
    }
    st->exchange_s += mu_seconds() - t;
    mu_status_t failure = MU_OK;
    t = mu_seconds();
    MU_CHECK(local_matrices(opt, st, &failure));
    st->compute_s += mu_seconds() - t;
    t = mu_seconds();
    for (int k = 0; k < plan->entry_count; k++) { /* updated weights to every replica */
        const mu_param_t *p = &opt->layout->params[plan->entries[k].param];
        MU_CHECK(mu_comm_bcast(opt->comm, opt->params[plan->entries[k].param].w.data,
                               p->rows * p->cols * 4, plan->entries[k].owner));
    }
    st->exchange_s += mu_seconds() - t;
    st->bytes_sent_remote = st->bytes_sent;
    flip_replica_bit(opt);
    return mu_comm_agree(opt->comm, failure);
}
