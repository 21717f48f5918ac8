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
#include "shard/certifier.h"
#include "shard/exchange.h"
#include "shard/plan_cache.h"
#include "shard/store.h"

/* ---- the step context ------------------------------------------------------------------ */

/* Local mode holds every owned matrix's full Q at once: owners compute them all before the
 * one agreement of the step. */
static int64_t owned_elements(const mu_shard_env_t *env)
{
    int64_t total = 1;
    for (int i = 0; i < env->layout->param_count; i++) {
        const mu_param_t *p = &env->layout->params[i];
        if (mu_method_is_matrix(p->method) && env->plan->owner_of[i] == env->rank)
            total += p->rows * p->cols;
    }
    return total;
}

mu_status_t mu_step_ctx_create(const mu_shard_env_t *env, mu_step_ctx_t **out)
{
    const size_t n = (size_t)env->layout->param_count + 1;
    mu_step_ctx_t *ctx = calloc(1, sizeof *ctx);
    *out = ctx;
    if (ctx) {
        ctx->skip = calloc(n, sizeof *ctx->skip);
        ctx->nonfinite = calloc(n, sizeof *ctx->nonfinite);
        ctx->first_bad_rank = calloc(n, sizeof *ctx->first_bad_rank);
        ctx->scratch_i64 = calloc(n, sizeof *ctx->scratch_i64);
    }
    if (!ctx || !ctx->skip || !ctx->nonfinite || !ctx->first_bad_rank || !ctx->scratch_i64)
        return mu_error(MU_ERR_NOMEM, "cannot allocate the step context");
    if (mu_env_sharded(env))
        return MU_OK;
    return mu_k_alloc(env->be, 1, owned_elements(env), MU_DTYPE_F32, &ctx->owner_q);
}

void mu_step_ctx_destroy(const mu_shard_env_t *env, mu_step_ctx_t **ctx)
{
    if (!*ctx)
        return;
    mu_k_release(env->be, &(*ctx)->owner_q);
    free((*ctx)->skip);
    free((*ctx)->nonfinite);
    free((*ctx)->first_bad_rank);
    free((*ctx)->scratch_i64);
    free(*ctx);
    *ctx = NULL;
}

void mu_step_record(mu_step_ctx_t *ctx, const mu_step_event_t *event)
{
    mu_step_stats_t *st = ctx->stats;
    if (st->event_count < MU_STEP_EVENTS_MAX)
        st->events[st->event_count++] = *event;
    st->events_total++;
    if (event->kind == MU_EVENT_SKIPPED_NONFINITE)
        st->skipped++;
}

/* ---- finite check: agreed before anything changes --------------------------------------- */

/* on_nonfinite abort: the job stops; the message names every parameter, rank and the step. */
static mu_status_t report_nonfinite(const mu_shard_env_t *env, const mu_step_ctx_t *ctx)
{
    char names[512] = "";
    int listed = 0;
    for (int p = 0; p < env->layout->param_count; p++) {
        if (ctx->nonfinite[p] == 0)
            continue;
        if (listed++ < 4) {
            char one[224];
            snprintf(one, sizeof one, "%s%s (%lld entries, first on rank %d)",
                     listed > 1 ? ", " : "", env->layout->params[p].name,
                     (long long)ctx->nonfinite[p], ctx->first_bad_rank[p]);
            strncat(names, one, sizeof names - strlen(names) - 1);
        }
    }
    return mu_error(MU_ERR_NUMERIC,
                    "step %ld: non-finite gradient in %s%s; on_nonfinite is abort: stopping with "
                    "no state of this step changed",
                    ctx->step, names, listed > 4 ? ", ..." : "");
}

/* The counts and the lowest rank of every parameter with NaN/Inf entries, agreed before any
 * state changes; under skip those parameters sit this step out. */
static mu_status_t finite_check(mu_optimizer_t *opt, mu_step_ctx_t *ctx)
{
    const mu_shard_env_t *env = &opt->env;
    const int n = env->layout->param_count;
    int64_t any = 0;
    for (int p = 0; p < n; p++) {
        MU_CHECK(mu_k_count_nonfinite(env->be, &opt->store->params[p].g, &ctx->nonfinite[p]));
        ctx->skip[p] = false;
        any += ctx->nonfinite[p];
    }
    MU_CHECK(mu_comm_allreduce(env->comm, &any, 1, MU_COMM_I64, MU_COMM_SUM));
    if (any == 0)
        return MU_OK;
    int64_t *first = ctx->scratch_i64;
    for (int p = 0; p < n; p++)
        first[p] = ctx->nonfinite[p] > 0 ? env->rank : INT32_MAX;
    MU_CHECK(mu_comm_allreduce(env->comm, ctx->nonfinite, n, MU_COMM_I64, MU_COMM_SUM));
    MU_CHECK(mu_comm_allreduce(env->comm, first, n, MU_COMM_I64, MU_COMM_MIN));
    for (int p = 0; p < n; p++)
        ctx->first_bad_rank[p] = (int)first[p];
    if (env->layout->settings.on_nonfinite == MU_NONFINITE_ABORT)
        return report_nonfinite(env, ctx);
    for (int p = 0; p < n; p++) {
        if (ctx->nonfinite[p] == 0)
            continue;
        ctx->skip[p] = true;
        const mu_step_event_t e = {.kind = MU_EVENT_SKIPPED_NONFINITE,
                                   .param = p,
                                   .rank = ctx->first_bad_rank[p],
                                   .nonfinite = ctx->nonfinite[p]};
        mu_step_record(ctx, &e);
    }
    return MU_OK;
}

/* ---- orthogonalization with a plan per (shape, method) ---------------------------------- */

static void log_schedule(const mu_param_t *p, const mu_orth_report_t *r)
{
    if (r->predicted > 0.0)
        MU_LOG(MU_LOG_DEBUG, MU_SUB_SHARD,
               "schedule of %s: l = %g, T = %d (predicted reach %.5f, the fixed schedule's %.5f)",
               p->name, r->lower, r->iters, r->predicted, r->reference);
    else
        MU_LOG(MU_LOG_DEBUG, MU_SUB_SHARD,
               "schedule of %s: l = %g, T = %d (kept: too small for the sample to pay, or "
               "||G||_F out of its range)",
               p->name, r->lower, r->iters);
}

/* Shampoo's fast path on the owner: statistics, roots when due (certified), the update. */
static mu_status_t precondition(mu_optimizer_t *opt, mu_step_ctx_t *ctx, int entry,
                                const mu_mat_t *g, mu_mat_t *q, bool *zero)
{
    const int param = opt->env.plan->entries[entry].param;
    const mu_param_t *p = &opt->env.layout->params[param];
    mu_shampoo_t *shampoo = opt->store->params[param].shampoo;
    if (mu_fault_fire(MU_FAULT_BAD_ROOT, opt->env.rank, ctx->step, p->name))
        shampoo->inject_root_scale = 1.1; /* X^2 A X^2 = 1.46 I, far above the limit (1e-2) */
    mu_shampoo_report_t report;
    const mu_status_t status = mu_shampoo_step(shampoo, g, ctx->step, q, &report);
    shampoo->inject_root_scale = 0.0;
    if (status != MU_OK)
        return mu_error(status, "rank %d, step %ld: %s (%lldx%lld): shampoo: %s", opt->env.rank,
                        ctx->step, p->name, (long long)p->rows, (long long)p->cols,
                        mu_error_message());
    *zero = report.zero;
    if (report.refreshed)
        MU_LOG(MU_LOG_DEBUG, MU_SUB_SHARD,
               "roots of %s: ||X^2 A X^2 - I||_2 >= %.2e (L, %d GEMMs), %.2e (R, %d GEMMs)",
               p->name, report.side[0].cert.spectral, report.side[0].ire.gemms,
               report.side[1].cert.spectral, report.side[1].ire.gemms);
    return mu_certifier_judge_roots(opt->certifier, entry, shampoo, &report);
}

/* The owner's fast path for plan entry `entry`, judged by the certifier. */
static mu_status_t orthogonalize(mu_optimizer_t *opt, mu_step_ctx_t *ctx, int entry,
                                 const mu_mat_t *g, mu_mat_t *q, bool *zero)
{
    const mu_shard_env_t *env = &opt->env;
    const int param = env->plan->entries[entry].param;
    const mu_param_t *p = &env->layout->params[param];
    mu_certifier_reset(opt->certifier, entry, g, q);
    *zero = false;
    if (ctx->skip[param]) /* NaN/Inf gradient: no update; the exchange still carries zeros */
        return mu_k_fill(env->be, 0.0, q);
    if (p->method == MU_METHOD_SHAMPOO)
        return precondition(opt, ctx, entry, g, q, zero);
    mu_orth_plan_t *plan = NULL;
    MU_CHECK(mu_plan_cache_find(opt->plans, p, &plan));
    mu_orth_report_t report;
    const mu_status_t status = mu_orth_execute(plan, g, q, &report);
    if (status != MU_OK)
        return mu_error(status, "rank %d, step %ld: %s (%lldx%lld): %s", env->rank, ctx->step,
                        p->name, (long long)p->rows, (long long)p->cols, mu_error_message());
    *zero = report.zero_input;
    if (p->schedule == MU_SCHEDULE_ADAPTIVE)
        log_schedule(p, &report);
    MU_CHECK(mu_certifier_judge(opt->certifier, entry, plan, ctx->step, &report));
    return MU_OK;
}

/* ---- local phases ------------------------------------------------------------------------ */

static mu_adamw_hyper_t adamw_hyper(const mu_optimizer_t *opt, const mu_step_ctx_t *ctx, int param)
{
    const mu_settings_t *s = &opt->env.layout->settings;
    const mu_hyper_t *h = &opt->store->params[param].hyper;
    return (mu_adamw_hyper_t){h->lr,        h->momentum,     s->adamw_beta2,
                              s->adamw_eps, h->weight_decay, ctx->step};
}

/* Sharded mode: momentum on matrix shards (U replaces G), AdamW on the rest. */
static mu_status_t momentum_phase(mu_optimizer_t *opt, const mu_step_ctx_t *ctx)
{
    const mu_shard_env_t *env = &opt->env;
    const bool nesterov = env->layout->settings.nesterov;
    for (int i = 0; i < env->layout->param_count; i++) {
        const mu_param_t *p = &env->layout->params[i];
        param_state_t *ps = &opt->store->params[i];
        if (ps->row_end == ps->row_begin)
            continue;
        if (ctx->skip[i]) { /* momentum and moments stay unpolluted; zeros travel instead */
            MU_CHECK(mu_k_fill(env->be, 0.0, &ps->g));
        } else if (mu_method_is_matrix(p->method)) {
            MU_CHECK(mu_k_momentum(env->be, ps->hyper.momentum, nesterov, &ps->g, &ps->m, &ps->g));
        } else {
            const mu_adamw_hyper_t h = adamw_hyper(opt, ctx, i);
            MU_CHECK(mu_k_adamw(env->be, &h, &ps->g, &ps->w, &ps->m1, &ps->m2));
        }
    }
    return MU_OK;
}

/* W = W (1 - lr wd) - lr scale O on this rank's rows of one wave's matrices. */
static mu_status_t apply_wave(mu_optimizer_t *opt, const mu_step_ctx_t *ctx, int wave)
{
    const mu_shard_env_t *env = &opt->env;
    const mu_shard_plan_t *plan = env->plan;
    for (int k = plan->wave_begin[wave]; k < plan->wave_begin[wave + 1]; k++) {
        const int param = plan->entries[k].param;
        const mu_param_t *p = &env->layout->params[param];
        param_state_t *ps = &opt->store->params[param];
        if (ps->row_end == ps->row_begin || ctx->skip[param])
            continue;
        const double scale = mu_scale_factor(env->layout->settings.scale, p->rows, p->cols);
        MU_CHECK(mu_k_apply_update(env->be, ps->hyper.lr, ps->hyper.weight_decay, scale, &ps->g,
                                   &ps->w));
    }
    return MU_OK;
}

/* An owner orthogonalizes its matrices of the wave. A local failure leaves a zero update in
 * place (the collectives go on) and is returned through *failure for the agreement. */
static mu_status_t compute_wave(mu_optimizer_t *opt, mu_step_ctx_t *ctx, int wave,
                                mu_status_t *failure)
{
    const mu_shard_plan_t *plan = opt->env.plan;
    for (int k = plan->wave_begin[wave]; k < plan->wave_begin[wave + 1]; k++) {
        if (plan->entries[k].owner != opt->env.rank)
            continue;
        mu_mat_t g, q;
        mu_exchange_full_views(opt->exchange, wave, k - plan->wave_begin[wave], &g, &q);
        bool zero = false;
        const mu_status_t status = orthogonalize(opt, ctx, k, &g, &q, &zero);
        if (status != MU_OK) {
            MU_LOG(MU_LOG_ERROR, MU_SUB_SHARD, "%s", mu_error_message());
            if (*failure == MU_OK)
                *failure = status;
            MU_CHECK(mu_k_fill(opt->env.be, 0.0, &q));
        }
        ctx->stats->zero_updates += zero;
        MU_CHECK(mu_exchange_progress(opt->exchange));
    }
    return MU_OK;
}

static void count_bytes(const mu_optimizer_t *opt, int wave, mu_step_stats_t *st)
{
    int64_t sent, remote;
    mu_exchange_wave_bytes(opt->exchange, wave, &sent, &remote);
    st->bytes_sent += sent;
    st->bytes_sent_remote += remote;
}

/* Ends wave w's scatter and applies it. */
static mu_status_t finish_wave(mu_optimizer_t *opt, mu_step_ctx_t *ctx, int wave)
{
    mu_step_stats_t *st = ctx->stats;
    double t = mu_seconds();
    MU_CHECK(mu_exchange_wait_scatter(opt->exchange, wave, ctx->step));
    st->exchange_s += mu_seconds() - t;
    t = mu_seconds();
    MU_CHECK(apply_wave(opt, ctx, wave));
    st->apply_s += mu_seconds() - t;
    return MU_OK;
}

/* Wave w's matrices: computed on their owners, certified and fallen back, rechecked. */
static mu_status_t judge_wave(mu_optimizer_t *opt, mu_step_ctx_t *ctx, int w, mu_status_t *failure)
{
    const mu_shard_plan_t *plan = opt->env.plan;
    MU_CHECK(compute_wave(opt, ctx, w, failure));
    const double verify_start = mu_seconds();
    MU_CHECK(mu_certifier_agree(opt->certifier, ctx, plan->wave_begin[w],
                                plan->wave_begin[w + 1] - plan->wave_begin[w]));
    MU_CHECK(mu_recheck_wave(opt, ctx, w, failure));
    ctx->stats->fallback_s += mu_seconds() - verify_start;
    return MU_OK;
}

/* The pipeline: gather k+1 is in flight while wave k computes; scatter k completes while
 * wave k+1 computes. */
static mu_status_t run_waves(mu_optimizer_t *opt, mu_step_ctx_t *ctx, mu_status_t *failure)
{
    mu_exchange_t *ex = opt->exchange;
    mu_step_stats_t *st = ctx->stats;
    const int waves = opt->env.plan->wave_count;
    double t = mu_seconds();
    if (waves > 0)
        MU_CHECK(mu_exchange_post_gather(ex, 0));
    st->exchange_s += mu_seconds() - t;
    for (int w = 0; w < waves; w++) {
        t = mu_seconds();
        MU_CHECK(mu_exchange_wait_gather(ex, w, ctx->step));
        if (w + 1 < waves)
            MU_CHECK(mu_exchange_post_gather(ex, w + 1));
        st->exchange_s += mu_seconds() - t;
        t = mu_seconds();
        MU_CHECK(judge_wave(opt, ctx, w, failure));
        st->compute_s += mu_seconds() - t;
        t = mu_seconds();
        MU_CHECK(mu_exchange_post_scatter(ex, w));
        st->exchange_s += mu_seconds() - t;
        count_bytes(opt, w, st);
        if (w > 0)
            MU_CHECK(finish_wave(opt, ctx, w - 1));
    }
    if (waves > 0)
        MU_CHECK(finish_wave(opt, ctx, waves - 1));
    return MU_OK;
}

static mu_status_t step_sharded(mu_optimizer_t *opt, mu_step_ctx_t *ctx)
{
    double t = mu_seconds();
    MU_CHECK(momentum_phase(opt, ctx));
    ctx->stats->momentum_s += mu_seconds() - t;
    mu_status_t failure = MU_OK;
    MU_CHECK(run_waves(opt, ctx, &failure));
    return mu_comm_agree(opt->env.comm, failure);
}

/* ---- local gradient mode ---------------------------------------------------------------- */

/* AdamW parameters: average the replicas' gradients, then every replica updates alike. */
static mu_status_t local_adamw(mu_optimizer_t *opt, const mu_step_ctx_t *ctx)
{
    const mu_shard_env_t *env = &opt->env;
    for (int i = 0; i < env->layout->param_count; i++) {
        const mu_param_t *p = &env->layout->params[i];
        param_state_t *ps = &opt->store->params[i];
        if (mu_method_is_matrix(p->method))
            continue;
        MU_CHECK(
            mu_comm_allreduce(env->comm, ps->g.data, p->rows * p->cols, MU_COMM_F32, MU_COMM_SUM));
        if (ctx->skip[i])
            continue;
        MU_CHECK(mu_k_scale(env->be, 1.0 / env->ranks, &ps->g));
        const mu_adamw_hyper_t h = adamw_hyper(opt, ctx, i);
        MU_CHECK(mu_k_adamw(env->be, &h, &ps->g, &ps->w, &ps->m1, &ps->m2));
    }
    return MU_OK;
}

/* The owner of one matrix: averaged G -> momentum -> orthogonalize, certified; Q lands in
 * ctx->owner_q at q_offset. A local failure skips the matrix (W stays) and is agreed at the
 * end. */
static mu_status_t local_owner_compute(mu_optimizer_t *opt, mu_step_ctx_t *ctx, int entry,
                                       int64_t q_offset, mu_status_t *failure)
{
    const mu_shard_env_t *env = &opt->env;
    const int param = env->plan->entries[entry].param;
    const mu_param_t *p = &env->layout->params[param];
    param_state_t *ps = &opt->store->params[param];
    mu_certifier_reset(opt->certifier, entry, NULL, NULL);
    if (ctx->skip[param])
        return MU_OK;
    MU_CHECK(mu_k_scale(env->be, 1.0 / env->ranks, &ps->g));
    MU_CHECK(mu_k_momentum(env->be, ps->hyper.momentum, env->layout->settings.nesterov, &ps->g,
                           &ps->m, &ps->g));
    mu_mat_t q = {p->rows, p->cols, p->cols, MU_DTYPE_F32, (float *)ctx->owner_q.data + q_offset};
    bool zero = false;
    const mu_status_t status = orthogonalize(opt, ctx, entry, &ps->g, &q, &zero);
    if (status != MU_OK) {
        MU_LOG(MU_LOG_ERROR, MU_SUB_SHARD, "%s", mu_error_message());
        if (*failure == MU_OK)
            *failure = status;
        mu_certifier_reset(opt->certifier, entry, NULL, NULL);
        ctx->skip[param] = true; /* W stays as it was; the broadcast still happens */
    }
    ctx->stats->zero_updates += zero;
    return MU_OK;
}

/* Every owner computes all its matrices, all ranks agree once (and fall back), then every
 * owner applies its own: the owners work at the same time. (Agreeing after each matrix made
 * them take turns: measured on 2 ranks, compute 1934 ms against 1854 on one.) */
static mu_status_t local_matrices(mu_optimizer_t *opt, mu_step_ctx_t *ctx, mu_status_t *failure)
{
    const mu_shard_env_t *env = &opt->env;
    const mu_shard_plan_t *plan = env->plan;
    int64_t offset = 0;
    for (int k = 0; k < plan->entry_count; k++)
        if (plan->entries[k].owner == env->rank) {
            const mu_param_t *p = &env->layout->params[plan->entries[k].param];
            MU_CHECK(local_owner_compute(opt, ctx, k, offset, failure));
            offset += p->rows * p->cols;
        }
    const double t = mu_seconds();
    MU_CHECK(mu_certifier_agree(opt->certifier, ctx, 0, plan->entry_count));
    ctx->stats->fallback_s += mu_seconds() - t;
    for (int k = 0; k < plan->entry_count; k++) {
        const int param = plan->entries[k].param;
        if (plan->entries[k].owner != env->rank || ctx->skip[param])
            continue;
        const mu_param_t *p = &env->layout->params[param];
        const mu_hyper_t *h = &opt->store->params[param].hyper;
        const double scale = mu_scale_factor(env->layout->settings.scale, p->rows, p->cols);
        MU_CHECK(mu_k_apply_update(env->be, h->lr, h->weight_decay, scale,
                                   &mu_certifier_check(opt->certifier, k)->q,
                                   &opt->store->params[param].w));
    }
    return MU_OK;
}

/* Injected bitflip in local mode: one bit of a broadcast weight lands wrong on this replica
 * (the divergence check's replica digest is what catches it). */
static void flip_replica_bit(mu_optimizer_t *opt, long step)
{
    if (!mu_fault_fire(MU_FAULT_BITFLIP, opt->env.rank, step, NULL) ||
        !mu_backend_host_memory(opt->env.be))
        return;
    for (int p = 0; p < opt->env.layout->param_count; p++)
        if (opt->store->params[p].w.rows > 0) {
            ((unsigned char *)opt->store->params[p].w.data)[0] ^= 0x10;
            return;
        }
}

/* Gradients summed to the owners (to_owner), or updated weights to every replica. */
static mu_status_t local_transfers(mu_optimizer_t *opt, bool to_owner, mu_step_stats_t *st)
{
    const mu_shard_env_t *env = &opt->env;
    const mu_shard_plan_t *plan = env->plan;
    for (int k = 0; k < plan->entry_count; k++) {
        const int param = plan->entries[k].param, owner = plan->entries[k].owner;
        const mu_param_t *p = &env->layout->params[param];
        param_state_t *ps = &opt->store->params[param];
        if (to_owner) {
            MU_CHECK(mu_comm_reduce(env->comm, ps->g.data, p->rows * p->cols, MU_COMM_F32,
                                    MU_COMM_SUM, owner));
            st->bytes_sent += env->rank == owner ? 0 : p->rows * p->cols * 4;
        } else {
            MU_CHECK(mu_comm_bcast(env->comm, ps->w.data, p->rows * p->cols * 4, owner));
        }
    }
    return MU_OK;
}

static mu_status_t step_local(mu_optimizer_t *opt, mu_step_ctx_t *ctx)
{
    mu_step_stats_t *st = ctx->stats;
    double t = mu_seconds();
    MU_CHECK(local_adamw(opt, ctx));
    st->momentum_s += mu_seconds() - t;
    t = mu_seconds();
    MU_CHECK(local_transfers(opt, true, st));
    st->exchange_s += mu_seconds() - t;
    mu_status_t failure = MU_OK;
    t = mu_seconds();
    MU_CHECK(local_matrices(opt, ctx, &failure));
    st->compute_s += mu_seconds() - t;
    t = mu_seconds();
    MU_CHECK(local_transfers(opt, false, st));
    st->exchange_s += mu_seconds() - t;
    st->bytes_sent_remote = st->bytes_sent;
    flip_replica_bit(opt, ctx->step);
    return mu_comm_agree(opt->env.comm, failure);
}

mu_status_t mu_step_run(mu_optimizer_t *opt, mu_step_ctx_t *ctx)
{
    const double start = mu_seconds();
    mu_status_t status = MU_OK;
    MU_TRY(status, finite_check(opt, ctx));
    ctx->stats->momentum_s = mu_seconds() - start;
    if (status != MU_OK)
        return status;
    if (mu_env_sharded(&opt->env))
        MU_CHECK(step_sharded(opt, ctx));
    else
        MU_CHECK(step_local(opt, ctx));
    return MU_OK;
}
