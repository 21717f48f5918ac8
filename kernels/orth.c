/* Plans, argument checks, normalization and dispatch for kernels/orth.h. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/orth_impl.h"

/* The adaptive sample's seed: one fixed value, so that a step's choice, and with it the
 * update, is the same on every run and backend. */
static const uint64_t ADAPTIVE_SEED = 0x5ced;

static const char *const method_names[MU_ORTH_METHOD_COUNT] = {
    [MU_ORTH_POLAR_EXPRESS] = "polar-express",
    [MU_ORTH_NS5] = "ns5",
    [MU_ORTH_GRAM] = "gram",
    [MU_ORTH_SVD] = "svd",
};

void mu_orth_opts_default(mu_orth_opts_t *opts)
{
    *opts = (mu_orth_opts_t){
        .method = MU_ORTH_POLAR_EXPRESS,
        .dtype = MU_DTYPE_F32,
        .iters = 0,
        .lower = MU_PE_DEFAULT_LOWER,
        .cushion = MU_PE_DEFAULT_CUSHION,
        .safety = MU_PE_DEFAULT_SAFETY,
        .ns5_set = MU_NS5_JORDAN,
        .gram_dtype = MU_DTYPE_F32,
        .schedule = MU_SCHEDULE_FIXED,
    };
}

const char *mu_orth_method_name(mu_orth_method_t method)
{
    if ((int)method < 0 || method >= MU_ORTH_METHOD_COUNT)
        return "unknown";
    return method_names[method];
}

mu_status_t mu_orth_method_parse(const char *name, mu_orth_method_t *out)
{
    for (int m = 0; m < MU_ORTH_METHOD_COUNT; m++) {
        if (name && strcmp(name, method_names[m]) == 0) {
            *out = (mu_orth_method_t)m;
            return MU_OK;
        }
    }
    return mu_error(MU_ERR_INVALID, "unknown method '%s' (polar-express, ns5, gram or svd)",
                    name ? name : "(null)");
}

/* NS5 normalizes by ||G||_F exactly, as Jordan's reference does; only Polar Express (and the
 * gram route, which runs its polynomials) uses the safety factor. */
static double normalization_safety(const mu_orth_opts_t *opts)
{
    return (opts->method == MU_ORTH_POLAR_EXPRESS || opts->method == MU_ORTH_GRAM) ? opts->safety
                                                                                   : 1.0;
}

static mu_status_t build_schedule(mu_orth_plan_t *plan)
{
    mu_orth_opts_t *o = &plan->opts;
    switch (o->method) {
    case MU_ORTH_POLAR_EXPRESS:
    case MU_ORTH_GRAM:
        if (o->iters == 0)
            o->iters = MU_PE_DEFAULT_ITERS;
        return mu_schedule_polar_express(o->lower, o->iters, o->cushion, o->safety,
                                         &plan->schedule);
    case MU_ORTH_NS5:
        if (o->iters == 0)
            o->iters = MU_NS5_DEFAULT_ITERS;
        return mu_schedule_ns5(o->ns5_set, o->iters, &plan->schedule);
    case MU_ORTH_SVD:
        o->iters = 0;
        plan->schedule.iters = 0;
        return MU_OK;
    default:
        return mu_error(MU_ERR_INVALID, "orth: unknown method %d", (int)o->method);
    }
}

/* Every candidate schedule of an adaptive plan, with its certificate limits. */
static mu_status_t build_menu(mu_orth_plan_t *plan)
{
    const mu_orth_opts_t *o = &plan->opts;
    if (o->method != MU_ORTH_POLAR_EXPRESS && o->method != MU_ORTH_GRAM)
        return mu_error(MU_ERR_INVALID,
                        "orth: adaptive schedules are Polar Express schedules "
                        "(polar-express or gram), not %s",
                        mu_orth_method_name(o->method));
    if (!(o->adaptive_tolerance >= 0.0 && o->adaptive_tolerance < 1.0))
        return mu_error(MU_ERR_INVALID, "orth: adaptive tolerance must be in [0, 1), got %g",
                        o->adaptive_tolerance);
    MU_CHECK(mu_adaptive_menu_create(o->lower, o->iters, o->cushion, o->safety, &plan->menu));
    plan->menu_limits = calloc((size_t)plan->menu.count, sizeof *plan->menu_limits);
    if (!plan->menu_limits)
        return mu_error(MU_ERR_NOMEM, "orth: cannot allocate %d schedules' limits",
                        plan->menu.count);
    const double step_flops =
        plan->method->flops((double)plan->short_side, (double)plan->long_side, 1);
    plan->adapt_pays = step_flops >= MU_ADAPTIVE_MIN_STEP_FLOPS;
    for (int i = 0; i < plan->menu.count; i++) {
        const mu_adaptive_choice_t *c = &plan->menu.choice[i];
        mu_cert_limits_for(&c->schedule, c->lower, normalization_safety(o), o->dtype,
                           &plan->menu_limits[i]);
    }
    return MU_OK;
}

mu_status_t mu_orth_adapt(mu_orth_plan_t *plan, const mu_mat_t *a)
{
    if (!plan->adapt_now)
        return MU_OK;
    mu_spectrum_sample_t sample;
    MU_CHECK(mu_adaptive_sample(plan->be, a, ADAPTIVE_SEED, &sample));
    const double tol = plan->opts.adaptive_tolerance > 0.0 ? plan->opts.adaptive_tolerance
                                                           : MU_ADAPTIVE_DEFAULT_TOLERANCE;
    const int i = mu_adaptive_choose(&plan->menu, &sample, tol, &plan->predicted, &plan->reference);
    plan->schedule = plan->menu.choice[i].schedule;
    plan->cert_limits = plan->menu_limits[i];
    plan->chosen_lower = plan->menu.choice[i].lower;
    return MU_OK;
}

static const struct mu_orth_method_ops *method_ops(mu_orth_method_t method)
{
    switch (method) {
    case MU_ORTH_GRAM:
        return &mu_orth_gram_ops;
    case MU_ORTH_SVD:
        return &mu_orth_svd_ops;
    default:
        return &mu_orth_poly_ops;
    }
}

mu_status_t mu_orth_alloc_work(mu_orth_plan_t *plan, int slot, int64_t rows, int64_t cols,
                               mu_dtype_t dtype)
{
    return mu_k_alloc(plan->be, rows, cols, dtype, &plan->work[slot]);
}

mu_status_t mu_orth_plan_create(mu_backend_t *be, int64_t rows, int64_t cols,
                                const mu_orth_opts_t *opts, mu_orth_plan_t **out)
{
    if (!be || !opts || !out)
        return mu_error(MU_ERR_INVALID, "orth: null argument");
    *out = NULL;
    if (rows <= 0 || cols <= 0)
        return mu_error(MU_ERR_INVALID, "orth: empty shape %lld x %lld", (long long)rows,
                        (long long)cols);
    if (opts->dtype == MU_DTYPE_BF16 && !mu_backend_bf16_compute(be))
        return mu_error(MU_ERR_INVALID,
                        "orth: bf16 is a storage type on the %s backend; compute in fp32 or "
                        "fp64 (bf16 with fp32 accumulation needs the cuda backend, or dnnl on a CPU "
                        "with AVX512-BF16 or AMX)",
                        mu_backend_name(be));
    if (opts->gram_dtype == MU_DTYPE_BF16 ||
        (opts->dtype == MU_DTYPE_BF16 && opts->method == MU_ORTH_GRAM))
        return mu_error(MU_ERR_INVALID, "orth: the Gram-side iteration needs fp32 or fp64 (its "
                                        "R_k approach I, which bf16 cannot resolve)");
    if (rows > INT_MAX || cols > INT_MAX) /* BLAS takes int dimensions */
        return mu_error(MU_ERR_INVALID, "orth: %lld x %lld exceeds BLAS's int dimensions",
                        (long long)rows, (long long)cols);
    mu_orth_plan_t *plan = calloc(1, sizeof *plan);
    if (!plan)
        return mu_error(MU_ERR_NOMEM, "orth: cannot allocate a plan");
    plan->be = be;
    plan->opts = *opts;
    plan->rows = rows;
    plan->cols = cols;
    plan->wide = rows <= cols;
    plan->short_side = plan->wide ? rows : cols;
    plan->long_side = plan->wide ? cols : rows;
    plan->method = method_ops(opts->method);

    mu_status_t status;
    MU_CHECK_GOTO(status, build_schedule(plan), out_with_plan);
    mu_cert_limits_for(mu_orth_plan_schedule(plan), plan->opts.lower,
                       normalization_safety(&plan->opts), plan->opts.dtype, &plan->cert_limits);
    if (opts->schedule == MU_SCHEDULE_ADAPTIVE)
        MU_CHECK_GOTO(status, build_menu(plan), out_with_plan);
    MU_CHECK_GOTO(status, plan->method->prepare(plan), out_with_plan);
    /* A recording fixes T; adaptive plans change it from one execution to the next. */
    plan->recordable =
        plan->method->iterate && mu_backend_can_capture(be) && opts->schedule == MU_SCHEDULE_FIXED;
    *out = plan;
    return MU_OK;
out_with_plan:
    mu_orth_plan_destroy(&plan);
    return status;
}

void mu_orth_plan_destroy(mu_orth_plan_t **plan)
{
    if (!plan || !*plan)
        return;
    for (int i = 0; i < ORTH_MAX_WORK; i++)
        mu_k_release((*plan)->be, &(*plan)->work[i]);
    mu_k_release((*plan)->be, &(*plan)->io_g);
    mu_k_release((*plan)->be, &(*plan)->io_q);
    mu_k_graph_destroy((*plan)->be, &(*plan)->steps);
    mu_adaptive_menu_free(&(*plan)->menu);
    free((*plan)->menu_limits);
    free(*plan);
    *plan = NULL;
}

/* G and Q have the plan's shape and one dtype: the plan's, or another it converts from and
 * to (fp32 operands of a bf16 plan). */
static mu_status_t check_operands(const mu_orth_plan_t *plan, const mu_mat_t *g, const mu_mat_t *q)
{
    const mu_mat_t *both[] = {g, q};
    for (int i = 0; i < 2; i++) {
        const mu_mat_t *m = both[i];
        const char *name = i ? "Q" : "G";
        if (!m)
            return mu_error(MU_ERR_INVALID, "orth: %s is null", name);
        if (m->rows != plan->rows || m->cols != plan->cols || m->dtype != g->dtype)
            return mu_error(MU_ERR_INVALID,
                            "orth: %s is %lldx%lld %s, the plan is for %lldx%lld (%s operands)",
                            name, (long long)m->rows, (long long)m->cols,
                            mu_dtype_name(m->dtype), (long long)plan->rows,
                            (long long)plan->cols, mu_dtype_name(g->dtype));
    }
    if (g->data == q->data)
        return mu_error(MU_ERR_INVALID, "orth: Q must not alias G");
    return MU_OK;
}

/* Records the method's steps once per plan, i.e. per (shape, method, T, dtype): a step then
 * costs one graph launch instead of a launch per kernel, which is most of the time of a
 * layer's small matrices. */
static mu_status_t record_steps(mu_orth_plan_t *plan)
{
    MU_CHECK(mu_k_capture_begin(plan->be));
    const mu_status_t iterated = plan->method->iterate(plan, &plan->steps_result);
    mu_k_graph_t *graph = NULL;
    const mu_status_t ended = mu_k_capture_end(plan->be, &graph);
    if (iterated != MU_OK || ended != MU_OK) {
        mu_k_graph_destroy(plan->be, &graph);
        return iterated != MU_OK ? iterated : ended;
    }
    plan->steps = graph;
    return MU_OK;
}

static mu_status_t run_method(mu_orth_plan_t *plan, const mu_mat_t *g, mu_mat_t *q,
                              double inv_scale)
{
    if (!plan->recordable || !mu_backend_can_capture(plan->be))
        return plan->method->run(plan, g, q, inv_scale);
    MU_CHECK(plan->method->start(plan, g, inv_scale));
    if (!plan->steps)
        MU_CHECK(record_steps(plan));
    MU_CHECK(mu_k_replay(plan->be, plan->steps));
    return mu_k_copy(plan->be, plan->steps_result, q);
}

/* Operands held in another dtype: G converted in, the method on the plan's copies, Q
 * converted out. The checks and the norm above ran on the caller's G, so an fp32 value
 * beyond bf16's range is reported as it is, not as the infinity it would round to. */
static mu_status_t convert_in(mu_orth_plan_t *plan, const mu_mat_t *g)
{
    if (!plan->io_g.data) {
        MU_CHECK(mu_k_alloc(plan->be, plan->rows, plan->cols, plan->opts.dtype, &plan->io_g));
        MU_CHECK(mu_k_alloc(plan->be, plan->rows, plan->cols, plan->opts.dtype, &plan->io_q));
    }
    return mu_k_copy(plan->be, g, &plan->io_g);
}

/* An adaptive plan starts each execution from its fixed schedule (the menu's reference),
 * and chooses (mu_orth_adapt) where the sample pays (MU_ADAPTIVE_MIN_STEP_FLOPS) and is safe
 * in fp32: for ||G||_F in [1e-15, 1e15], where products with G neither overflow nor go
 * subnormal. */
static void start_adapting(mu_orth_plan_t *plan, double norm)
{
    plan->adapt_now = false;
    if (plan->opts.schedule != MU_SCHEDULE_ADAPTIVE)
        return;
    const int ref = plan->menu.reference;
    plan->schedule = plan->menu.choice[ref].schedule;
    plan->cert_limits = plan->menu_limits[ref];
    plan->chosen_lower = plan->menu.choice[ref].lower;
    plan->predicted = plan->reference = 0.0;
    plan->adapt_now = plan->adapt_pays && norm >= 1e-15 && norm <= 1e15;
}

static void finish_adapting(mu_orth_plan_t *plan, mu_orth_report_t *r)
{
    plan->adapt_now = false;
    r->iters = plan->schedule.iters;
    r->lower = plan->opts.method == MU_ORTH_NS5 ? 0.0 : plan->opts.lower;
    if (plan->opts.schedule == MU_SCHEDULE_ADAPTIVE) {
        r->lower = plan->chosen_lower;
        r->predicted = plan->predicted;
        r->reference = plan->reference;
    }
}

mu_status_t mu_orth_execute(mu_orth_plan_t *plan, const mu_mat_t *g, mu_mat_t *q,
                            mu_orth_report_t *report)
{
    mu_orth_report_t local;
    mu_orth_report_t *r = report ? report : &local;
    memset(r, 0, sizeof *r);
    if (!plan)
        return mu_error(MU_ERR_INVALID, "orth: null plan");
    MU_CHECK(check_operands(plan, g, q));

    MU_CHECK(mu_k_count_nonfinite(plan->be, g, &r->nonfinite));
    if (r->nonfinite > 0)
        return mu_error(MU_ERR_NUMERIC, "orth: G has %lld non-finite entries",
                        (long long)r->nonfinite);
    MU_CHECK(mu_k_norm_frob(plan->be, g, &r->input_norm));
    if (r->input_norm == 0.0) {
        r->zero_input = true;
        /* 0 * G rather than scaling Q: Q may hold garbage, and 0 * NaN is NaN. */
        return mu_k_axpby(plan->be, 0.0, g, 0.0, q);
    }
    r->scale = r->input_norm * normalization_safety(&plan->opts);
    const bool converted = g->dtype != plan->opts.dtype;
    if (converted)
        MU_CHECK(convert_in(plan, g));
    const mu_mat_t *x = converted ? &plan->io_g : g;
    start_adapting(plan, r->input_norm);
    const mu_status_t status = run_method(plan, x, converted ? &plan->io_q : q, 1.0 / r->scale);
    finish_adapting(plan, r);
    MU_CHECK(status);
    return converted ? mu_k_copy(plan->be, &plan->io_q, q) : MU_OK;
}

const mu_schedule_t *mu_orth_plan_schedule(const mu_orth_plan_t *plan)
{
    return plan && plan->opts.method != MU_ORTH_SVD ? &plan->schedule : NULL;
}

void mu_orth_plan_cert_limits(const mu_orth_plan_t *plan, mu_cert_limits_t *out)
{
    *out = plan->cert_limits;
}

double mu_orth_plan_flops(const mu_orth_plan_t *plan)
{
    return plan ? mu_orth_flops(plan->opts.method, plan->rows, plan->cols, plan->schedule.iters)
                : 0.0;
}

double mu_orth_flops(mu_orth_method_t method, int64_t rows, int64_t cols, int iters)
{
    const double s = (double)(rows < cols ? rows : cols), l = (double)(rows < cols ? cols : rows);
    return method_ops(method)->flops(s, l, iters);
}
