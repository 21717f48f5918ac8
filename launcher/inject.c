#include "launcher/inject.h"

#include <math.h>
#include <string.h>

#include "core/fault.h"
#include "kernels/host_view.h"
#include "shard/synthetic.h"

/* illcond's rank-one gradient is scaled into fp32's subnormal range (2^-140 against the
 * smallest normal 2^-126: 1 / ||G||_F then exceeds fp32's range for any matrix of fewer than
 * 10^7 rows), as a loss scaled down too far would leave it, and lands in a
 * cleared momentum (a restarted optimizer state: otherwise the momentum the matrix carries
 * dominates it and nothing is wrong). It is finite, so it passes the gradient check, but
 * 1 / ||G||_F overflows fp32, so every fast method's normalized iterate, and its result, is
 * NaN: genuinely wrong, while the fp64 fallback solves the same matrix exactly
 * (docs/numerics.md, "illcond"). A rank-one gradient scaled up instead (1e6, the old
 * definition) is handled exactly by Polar Express and passes the certificate. */
static const float ILLCOND_SCALE = 0x1p-140f;

static int param_index(const mu_layout_t *layout, const char *name)
{
    for (int p = 0; p < layout->param_count; p++)
        if (strcmp(layout->params[p].name, name) == 0)
            return p;
    return -1;
}

static int first_matrix(const mu_layout_t *layout)
{
    for (int p = 0; p < layout->param_count; p++)
        if (mu_method_is_matrix(layout->params[p].method))
            return p;
    return 0;
}

mu_status_t mu_inject_setup(const mu_runtime_t *rt, const char *spec)
{
    if (!spec || !*spec)
        return MU_OK;
    MU_CHECK(mu_faults_parse(spec));
    for (int i = 0; i < mu_faults_count(); i++) {
        mu_fault_t *f = mu_fault_at(i);
        if (!f->param[0] && rt->layout->param_count > 0)
            strcpy(f->param, rt->layout->params[first_matrix(rt->layout)].name);
        const int p = param_index(rt->layout, f->param);
        if (p < 0)
            return mu_error(MU_ERR_INVALID, "--inject %s: %s has no parameter %s",
                            mu_fault_kind_name(f->kind), rt->layout->source, f->param);
        if (f->kind == MU_FAULT_ILLCOND && !mu_method_is_matrix(rt->layout->params[p].method))
            return mu_error(MU_ERR_INVALID, "--inject illcond: %s is not a matrix parameter",
                            f->param);
        if (f->rank >= rt->ranks)
            return mu_error(MU_ERR_INVALID, "--inject %s: rank=%d, but the job has %d rank(s)",
                            mu_fault_kind_name(f->kind), f->rank, rt->ranks);
    }
    return MU_OK;
}

/* nan-grad and inf-grad: one entry, in the last global row (whichever rank holds it) or,
 * with rank=R, in R's first row. */
static void plant_value(const mu_fault_t *f, const mu_param_view_t *v, int64_t param_rows,
                        const mu_host_view_t *e, float value)
{
    const int64_t rows = v->row_end - v->row_begin;
    if (rows == 0)
        return;
    if (f->rank >= 0)
        ((float *)e->data)[0] = value;
    else if (v->row_end == param_rows)
        ((float *)e->data)[(rows - 1) * e->ld] = value;
}

static mu_status_t plant(mu_runtime_t *rt, const mu_fault_t *f, uint64_t seed, long step)
{
    const int p = param_index(rt->layout, f->param);
    const int64_t param_rows = rt->layout->params[p].rows;
    mu_param_view_t v;
    mu_host_view_t e;
    MU_CHECK(mu_optimizer_param(rt->opt, p, &v));
    if (f->kind == MU_FAULT_ILLCOND)
        MU_CHECK(mu_optimizer_clear_momentum(rt->opt, p));
    const int64_t rows = v.row_end - v.row_begin;
    const bool local = rt->layout->settings.grad_mode == MU_GRAD_LOCAL;
    MU_CHECK(mu_host_view_begin(rt->be, &v.g, MU_DTYPE_F32,
                                f->kind == MU_FAULT_ILLCOND ? MU_HOST_WRITE : MU_HOST_READ_WRITE,
                                &e));
    float *values = e.data;
    switch (f->kind) {
    case MU_FAULT_NAN_GRAD:
        plant_value(f, &v, param_rows, &e, NAN);
        break;
    case MU_FAULT_INF_GRAD:
        plant_value(f, &v, param_rows, &e, INFINITY);
        break;
    case MU_FAULT_ZERO_GRAD:
        for (int64_t r = 0; r < rows; r++)
            memset(values + r * e.ld, 0, sizeof(float) * (size_t)v.g.cols);
        break;
    default: /* illcond (its momentum was cleared above) */
        mu_synthetic_rank_one(seed, p, step, local ? rt->rank : -1, v.row_begin, rows, v.g.cols,
                              values, e.ld);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < v.g.cols; c++)
                values[r * e.ld + c] *= ILLCOND_SCALE;
    }
    return mu_host_view_end(rt->be, &e);
}

static bool gradient_fault(mu_fault_kind_t kind)
{
    return kind == MU_FAULT_NAN_GRAD || kind == MU_FAULT_INF_GRAD || kind == MU_FAULT_ZERO_GRAD ||
           kind == MU_FAULT_ILLCOND;
}

mu_status_t mu_inject_gradients(mu_runtime_t *rt, uint64_t seed)
{
    const long step = mu_optimizer_next_step(rt->opt);
    for (int i = 0; i < mu_faults_count(); i++) { /* no faults: no iterations */
        const mu_fault_t *f = mu_fault_at(i);
        const mu_fault_t *fired =
            gradient_fault(f->kind) ? mu_fault_fire(f->kind, rt->rank, step, f->param) : NULL;
        if (fired)
            MU_CHECK(plant(rt, fired, seed, step));
    }
    return MU_OK;
}
