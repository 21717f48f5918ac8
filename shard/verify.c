/*
 * The certificate of every fast orthogonalization and the exact fallback behind it
 * (DESIGN.md, step 4).
 *
 * On the owner, right after Polar Express / NS5 / Gram, kernels/certificate.h judges Q as the
 * steepest-descent step for G: finite, no overshoot (||Q||_2 <= 1 + band), aligned with G
 * (Q^T G symmetric positive semidefinite on the probes) and achieving the descent (a bound on
 * <Q, G> / ||G||_* at least the plan's limit, or the layout's descent_min). The limits come
 * from the plan's schedule (mu_orth_plan_cert_limits). A zero input (zero momentum) gives a
 * zero update, which is right, and passes.
 *
 * After the compute phase of a group (a wave, or one matrix in local mode) the ranks agree
 * on the verdicts in one allreduce: three doubles per matrix (reason, value, limit), the
 * owner contributing and the others zeros, combined with MAX. Every failed matrix is then
 * solved by all ranks together, in entry order: the owner's G goes to fp64, through
 * mu_fallback_polar, and the fp64 result back into the owner's Q before the scatter. A
 * numerical failure there (ScaLAPACK's info > 0, agreed by all ranks) leaves Q zero and the
 * matrix's update skipped, never applied in part; a negative info is a bug in muond and
 * stops the step.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/knobs.h"
#include "core/log.h"
#include "core/npy.h"
#include "kernels/host_view.h"
#include "kernels/certificate.h"
#include "shard/certifier.h"

enum { DUMP_STEPS_MAX = 16 };

/* MUOND_DUMP_MOMENTUM, parsed once: where and at which steps owners write their G. */
typedef struct momentum_dump {
    char dir[512];
    long steps[DUMP_STEPS_MAX];
    int step_count; /* 0: no dump */
} momentum_dump_t;

struct mu_certifier {
    const mu_shard_env_t *env;
    momentum_dump_t dump;
    entry_check_t *checks;   /* per plan entry, this step */
    double *table;           /* the agreed verdicts: 3 per matrix of the largest group */
    mu_fallback_t *fallback; /* created on first use */
    bool force_fallback;
};

/* "DIR" or "DIR:S,S,...": a bad list is an error naming the variable. */
static mu_status_t parse_dump(momentum_dump_t *d)
{
    const char *spec = mu_knob(MU_KNOB_DUMP_MOMENTUM);
    *d = (momentum_dump_t){.steps = {1, 10, 100}, .step_count = 0};
    if (!spec)
        return MU_OK;
    const char *colon = strrchr(spec, ':');
    const size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (len == 0 || len >= sizeof d->dir)
        return mu_error(MU_ERR_INVALID, "MUOND_DUMP_MOMENTUM=%s: no directory, or too long", spec);
    memcpy(d->dir, spec, len);
    d->dir[len] = '\0';
    d->step_count = 3;
    if (!colon)
        return MU_OK;
    d->step_count = 0;
    for (const char *s = colon + 1; *s; s += *s == ',') {
        char *end;
        const long step = strtol(s, &end, 10);
        if (end == s || step < 1 || d->step_count == DUMP_STEPS_MAX || (*end && *end != ','))
            return mu_error(MU_ERR_INVALID,
                            "MUOND_DUMP_MOMENTUM=%s: steps must be up to %d positive integers, "
                            "comma-separated",
                            spec, DUMP_STEPS_MAX);
        d->steps[d->step_count++] = step;
        s = end;
    }
    return MU_OK;
}

/* Owner: writes G to DIR/PARAM-sSTEP.npy when this step is listed ('/' in names becomes '_'). */
static mu_status_t dump_momentum(const mu_certifier_t *cert, const mu_param_t *p, long step,
                                 const mu_mat_t *g)
{
    const momentum_dump_t *d = &cert->dump;
    bool listed = false;
    for (int i = 0; i < d->step_count; i++)
        listed |= d->steps[i] == step;
    if (!listed)
        return MU_OK;
    char path[1024];
    const int n = snprintf(path, sizeof path, "%s/%s-s%ld.npy", d->dir, p->name, step);
    if (n < 0 || (size_t)n >= sizeof path)
        return mu_error(MU_ERR_INVALID, "MUOND_DUMP_MOMENTUM: the path for %s is too long",
                        p->name);
    for (char *c = path + strlen(d->dir) + 1; c < path + n; c++)
        *c = *c == '/' ? '_' : *c;
    mu_host_view_t view;
    MU_CHECK(
        mu_host_view_begin(cert->env->be, g, MU_DTYPE_F32, MU_HOST_READ | MU_HOST_PACKED, &view));
    const mu_status_t status = mu_npy_write_matrix(path, view.data, MU_NPY_F32, g->rows, g->cols);
    mu_host_view_release(&view);
    return status;
}

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
    return parse_dump(&c->dump);
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

/* The event kind of a failed certificate. */
static int fallback_reason(mu_cert_verdict_t verdict)
{
    switch (verdict) {
    case MU_CERT_OVERSHOOT:
        return MU_EVENT_FALLBACK_OVERSHOOT;
    case MU_CERT_MISALIGNED:
        return MU_EVENT_FALLBACK_MISALIGNED;
    case MU_CERT_DESCENT:
        return MU_EVENT_FALLBACK_DESCENT;
    default:
        return MU_EVENT_FALLBACK_NONFINITE;
    }
}

mu_status_t mu_certifier_judge(mu_certifier_t *cert, int entry, const mu_orth_plan_t *plan,
                               long step, const mu_orth_report_t *report)
{
    const bool zero = report->zero_input;
    const mu_shard_env_t *env = cert->env;
    entry_check_t *check = &cert->checks[entry];
    const mu_param_t *p = &env->layout->params[env->plan->entries[entry].param];
    if (!zero)
        MU_CHECK(dump_momentum(cert, p, step, &check->g));
    if (cert->force_fallback || p->fallback_always) {
        check->verdict = MU_EVENT_FALLBACK_FORCED;
        return MU_OK;
    }
    if (zero)
        return MU_OK;
    mu_cert_limits_t limits;
    mu_orth_plan_cert_limits(plan, &limits);
    if (env->layout->settings.descent_min > 0.0)
        limits.descent = env->layout->settings.descent_min;
    const mu_status_t status = mu_cert_measure(env->be, &check->g, &check->q, report->input_norm,
                                               &limits, NULL, &check->cert);
    if (status == MU_ERR_NUMERIC) {
        mu_error_clear();
        check->verdict = MU_EVENT_FALLBACK_NONFINITE;
        check->value = INFINITY;
        return MU_OK;
    }
    MU_CHECK(status);
    const mu_cert_verdict_t verdict =
        mu_cert_judge(&check->cert, &limits, &check->value, &check->limit);
    const mu_cert_t *c = &check->cert;
    MU_LOG(MU_LOG_DEBUG, MU_SUB_SHARD,
           "certificate of %s: ||Q||_2 >= %.4f, Q^T G asymmetry %.2e, negativity %.2e, descent >= "
           "%.4f (residual %.4f, schedule %.4f; limit %.4f): %s",
           p->name, c->q_norm, c->asymmetry, c->negativity, c->descent_bound, c->residual_bound,
           c->schedule_bound, limits.descent, mu_cert_verdict_name(verdict));
    if (verdict != MU_CERT_PASS)
        check->verdict = fallback_reason(verdict);
    return MU_OK;
}

/* The worse side's certificate number: Lanczos' ||R||_2 estimate, or ||R||_F / sqrt(n) where
 * that is larger (the certificate bounds both; kernels/inv_root_express.h). */
static double root_cert_worst(const mu_shampoo_t *s, const mu_shampoo_report_t *report)
{
    const int64_t dim[2] = {s->rows, s->cols};
    double worst = 0.0;
    for (int side = 0; side < 2; side++) {
        const mu_ire_cert_t *c = &report->side[side].cert;
        const double v = fmax(c->spectral, c->frobenius / sqrt((double)dim[side]));
        if (!report->side[side].zero)
            worst = isfinite(v) ? fmax(worst, v) : INFINITY;
    }
    return worst;
}

mu_status_t mu_certifier_judge_roots(mu_certifier_t *cert, int entry, mu_shampoo_t *shampoo,
                                     const mu_shampoo_report_t *report)
{
    entry_check_t *check = &cert->checks[entry];
    const mu_param_t *p = &cert->env->layout->params[cert->env->plan->entries[entry].param];
    check->shampoo = shampoo;
    if (!report->refreshed) /* the roots in use were judged when they were computed */
        return MU_OK;
    if (cert->force_fallback || p->fallback_always) {
        check->verdict = MU_EVENT_FALLBACK_FORCED;
        return MU_OK;
    }
    check->value = root_cert_worst(shampoo, report);
    check->limit = mu_shampoo_root_limit();
    MU_LOG(MU_LOG_DEBUG, MU_SUB_SHARD, "root certificate of %s: %.3e (limit %.3e): %s", p->name,
           check->value, check->limit, report->pass ? "pass" : "FAIL");
    if (!report->pass)
        check->verdict = MU_EVENT_FALLBACK_ROOT;
    return MU_OK;
}

/* One allreduce: every rank learns each entry's verdict, value and limit. */
static mu_status_t agree_verdicts(mu_certifier_t *cert, int first, int count)
{
    const mu_shard_env_t *env = cert->env;
    double *table = cert->table;
    for (int i = 0; i < count; i++) {
        const entry_check_t *c = &cert->checks[first + i];
        const bool mine = env->plan->entries[first + i].owner == env->rank;
        table[3 * i] = mine ? c->verdict : 0;
        table[3 * i + 1] = mine && isfinite(c->value) ? c->value : mine ? 1e300 : 0;
        table[3 * i + 2] = mine ? c->limit : 0;
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

/* All ranks solve one side's root of a shampoo matrix exactly (the pdsyevd root) into the
 * owner's state; a zero statistic (agreed from the owner) keeps its zero root. */
static mu_status_t exact_root(mu_certifier_t *cert, int entry, mu_shampoo_side_t side, long step,
                              mu_fallback_report_t *report)
{
    const mu_shard_env_t *env = cert->env;
    const int owner = env->plan->entries[entry].owner;
    const mu_param_t *p = &env->layout->params[env->plan->entries[entry].param];
    const int64_t n = side == MU_SHAMPOO_LEFT ? p->rows : p->cols;
    mu_shampoo_t *s = cert->checks[entry].shampoo;
    mu_mat_t a = {0};
    mu_host_view_t a64 = {0}, y64 = {0};
    int64_t zero = 0;
    mu_status_t status = MU_OK;
    if (env->rank == owner) {
        bool is_zero = false;
        double lambda_min = 0.0;
        MU_TRY(status, mu_k_alloc(env->be, n, n, MU_DTYPE_F32, &a));
        MU_TRY(status, mu_shampoo_regularized(s, side, step, &a, &lambda_min, &is_zero));
        zero = is_zero;
        MU_TRY(status,
               mu_host_view_begin(env->be, &a, MU_DTYPE_F64, MU_HOST_READ | MU_HOST_PACKED, &a64));
        MU_TRY(status, mu_host_view_begin(env->be, mu_shampoo_root(s, side), MU_DTYPE_F64,
                                          MU_HOST_WRITE | MU_HOST_PACKED, &y64));
    }
    MU_TRY(status, mu_comm_agree(env->comm, status));
    MU_TRY(status, mu_comm_bcast(env->comm, &zero, sizeof zero, owner));
    mu_fallback_report_t one = {0};
    if (status == MU_OK && !zero)
        status = mu_fallback_spd_inv_root(cert->fallback, owner, n, n, a64.data, NULL, 4, y64.data,
                                          &one);
    report->route = one.route;
    report->nprow = one.nprow;
    report->npcol = one.npcol;
    report->seconds += one.seconds;
    if (status == MU_OK && !zero)
        status = mu_host_view_end(env->be, &y64);
    mu_host_view_release(&y64);
    mu_host_view_release(&a64);
    mu_k_release(env->be, &a);
    return status;
}

/* Shampoo: both roots exactly, then the owner's Q = L_root G R_root. When a root cannot be
 * solved (MU_ERR_NUMERIC), both roots and Q become zero: the update is skipped, and the next
 * step computes the roots afresh (a zero root is always due, kernels/shampoo.h). */
static mu_status_t exact_roots(mu_certifier_t *cert, int entry, long step,
                               mu_fallback_report_t *report)
{
    const bool mine = cert->env->plan->entries[entry].owner == cert->env->rank;
    entry_check_t *check = &cert->checks[entry];
    mu_status_t status = exact_root(cert, entry, MU_SHAMPOO_LEFT, step, report);
    MU_TRY(status, exact_root(cert, entry, MU_SHAMPOO_RIGHT, step, report));
    if (mine && status == MU_OK)
        status = mu_shampoo_apply(check->shampoo, &check->g, &check->q);
    if (!mine || status != MU_ERR_NUMERIC)
        return status;
    mu_status_t cleared = MU_OK;
    for (int side = 0; side < 2; side++)
        MU_TRY(cleared, mu_k_fill(cert->env->be, 0.0, mu_shampoo_root(check->shampoo, side)));
    MU_TRY(cleared, mu_k_fill(cert->env->be, 0.0, &check->q));
    return cleared == MU_OK ? status : cleared;
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
    mu_host_view_t g64 = {0}, q64 = {0};
    mu_status_t status = MU_OK;
    if (p->method == MU_METHOD_SHAMPOO) {
        status = exact_roots(cert, entry, ctx->step, &event->fallback);
    } else {
        MU_TRY(status, owner_views(cert, entry, owner == env->rank, &g64, &q64));
        MU_TRY(status, mu_fallback_polar(cert->fallback, owner, p->rows, p->cols, g64.data,
                                         q64.data, &event->fallback));
    }
    event->solved = status == MU_OK;
    if (status == MU_ERR_NUMERIC) { /* agreed inside the fallback: skip this update */
        MU_LOG(MU_LOG_WARN, MU_SUB_SHARD,
               "step %ld: the fallback for %s failed (%s); its update "
               "is skipped",
               ctx->step, p->name, mu_error_message());
        mu_error_clear();
        ctx->skip[param] = true;
    }
    if (p->method != MU_METHOD_SHAMPOO)
        status = store_result(cert, entry, status, &q64);
    else if (status == MU_ERR_NUMERIC) /* exact_roots left Q zero */
        status = MU_OK;
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
                                 .value = table[3 * i + 1],
                                 .limit = table[3 * i + 2]};
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
    switch (e->kind) {
    case MU_EVENT_FALLBACK_OVERSHOOT:
        snprintf(why, sizeof why, "overshoot ||Q||_2 %.4g > %.4g", e->value, e->limit);
        break;
    case MU_EVENT_FALLBACK_MISALIGNED:
        snprintf(why, sizeof why, "misaligned Q^T G %.3g > %.3g", e->value, e->limit);
        break;
    case MU_EVENT_FALLBACK_DESCENT:
        snprintf(why, sizeof why, "descent %.4g < %.4g", e->value, e->limit);
        break;
    case MU_EVENT_FALLBACK_NONFINITE:
        snprintf(why, sizeof why, "non-finite fast result");
        break;
    case MU_EVENT_FALLBACK_ROOT:
        snprintf(why, sizeof why, "root ||X^2 A X^2 - I|| %.3g > %.3g", e->value, e->limit);
        break;
    default:
        snprintf(why, sizeof why, "forced");
    }
    snprintf(buf, size, "%s (%lldx%lld, owner rank %d): fallback, %s -> %s on a %dx%d grid, "
             "%.3f s%s", p->name, (long long)p->rows, (long long)p->cols, e->rank, why,
             mu_fallback_route_name(e->fallback.route), e->fallback.nprow, e->fallback.npcol,
             e->fallback.seconds, e->solved ? "" : ", FAILED: update skipped");
}
