/*
 * step_reference: the optimizer's arithmetic on full matrices in one process, the oracle of
 * the distributed tests. It calls the kernels directly and shares nothing with the sharding,
 * exchange or communication code (shard/plan.c, exchange.c, step.c, comm/), only the layout,
 * the synthetic data and the orthogonalization options every owner uses.
 *
 *   step_reference LAYOUT STEPS SEED [RANKS]
 *
 * prints "digest XXXXXXXXXXXXXXXX" (the same digest as `muond run --digest`). RANKS matters in
 * local gradient mode only: how many trainers' gradients are averaged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <xxhash.h>

#include "kernels/orth.h"
#include "kernels/shampoo.h"
#include "shard/layout.h"
#include "shard/synthetic.h"

typedef struct full_param {
    mu_mat_t w, g, m, m1, m2, q, round_trip;
    mu_orth_plan_t *plan;
    mu_shampoo_t *shampoo; /* shampoo parameters */
} full_param_t;

static int fail(const char *what, mu_status_t status)
{
    fprintf(stderr, "step_reference: %s: %s: %s\n", what, mu_strerror(status), mu_error_message());
    return 1;
}

#define TRY(call)                                                                                  \
    do {                                                                                           \
        const mu_status_t try_status_ = (call);                                                    \
        if (try_status_ != MU_OK)                                                                  \
            return try_status_;                                                                    \
    } while (0)

static mu_status_t zeroed(mu_backend_t *be, int64_t r, int64_t c, mu_dtype_t dt, mu_mat_t *m)
{
    TRY(mu_k_alloc(be, r, c, dt, m));
    return mu_k_fill(be, 0.0, m);
}

static mu_status_t setup(mu_backend_t *be, const mu_layout_t *l, int i, uint64_t seed,
                         full_param_t *fp)
{
    const mu_param_t *p = &l->params[i];
    TRY(zeroed(be, p->rows, p->cols, MU_DTYPE_F32, &fp->w));
    TRY(zeroed(be, p->rows, p->cols, MU_DTYPE_F32, &fp->g));
    mu_synthetic_weights(seed, i, 0, p->rows, p->cols, fp->w.data, fp->w.ld);
    if (!mu_method_is_matrix(p->method)) {
        TRY(zeroed(be, p->rows, p->cols, MU_DTYPE_F32, &fp->m1));
        return zeroed(be, p->rows, p->cols, MU_DTYPE_F32, &fp->m2);
    }
    TRY(zeroed(be, p->rows, p->cols, MU_DTYPE_F32, &fp->m));
    TRY(zeroed(be, p->rows, p->cols, MU_DTYPE_F32, &fp->q));
    TRY(zeroed(be, p->rows, p->cols, l->settings.exchange_dtype, &fp->round_trip));
    if (p->method == MU_METHOD_SHAMPOO) {
        mu_shampoo_opts_t so;
        mu_layout_shampoo_opts(l, &so);
        return mu_shampoo_create(be, p->rows, p->cols, &so, &fp->shampoo);
    }
    mu_orth_opts_t o;
    mu_layout_orth_opts(l, p, &o);
    return mu_orth_plan_create(be, p->rows, p->cols, &o, &fp->plan);
}

/* The gradient every rank's optimizer sees: sharded, the common one; local, the average. */
static mu_status_t gradient(mu_backend_t *be, const mu_layout_t *l, int i, long step, uint64_t seed,
                            int ranks, full_param_t *fp)
{
    const mu_param_t *p = &l->params[i];
    float *g = fp->g.data;
    if (l->settings.grad_mode == MU_GRAD_SHARDED) {
        mu_synthetic_gradient(seed, i, step, -1, 0, p->rows, p->cols, g, fp->g.ld);
        return MU_OK;
    }
    float *one = malloc(sizeof(float) * (size_t)(p->rows * p->cols));
    if (!one)
        return mu_error(MU_ERR_NOMEM, "out of memory");
    for (int64_t k = 0; k < p->rows * p->cols; k++)
        g[k] = 0.0f;
    for (int r = 0; r < ranks; r++) { /* exact: local gradients are quantized */
        mu_synthetic_gradient(seed, i, step, r, 0, p->rows, p->cols, one, p->cols);
        for (int64_t k = 0; k < p->rows * p->cols; k++)
            g[k] += one[k];
    }
    free(one);
    return mu_k_scale(be, 1.0 / ranks, &fp->g);
}

/* Sharded mode sends U and O in the exchange dtype: round them the same way. */
static mu_status_t exchange_rounding(mu_backend_t *be, const mu_layout_t *l, full_param_t *fp,
                                     mu_mat_t *x)
{
    if (l->settings.grad_mode != MU_GRAD_SHARDED)
        return MU_OK;
    TRY(mu_k_copy(be, x, &fp->round_trip));
    return mu_k_copy(be, &fp->round_trip, x);
}

/* The owner's fast path. The reference has no exact fallback: a shampoo root that fails its
 * certificate stops it (the digest tests' layouts must not need one). */
static mu_status_t orthogonalize(full_param_t *fp, long step)
{
    if (!fp->shampoo)
        return mu_orth_execute(fp->plan, &fp->g, &fp->q, NULL);
    mu_shampoo_report_t rep;
    TRY(mu_shampoo_step(fp->shampoo, &fp->g, step, &fp->q, &rep));
    if (!rep.pass)
        return mu_error(MU_ERR_NUMERIC, "step %ld: a shampoo root failed its certificate", step);
    return MU_OK;
}

static mu_status_t update(mu_backend_t *be, const mu_layout_t *l, int i, long step,
                          full_param_t *fp)
{
    const mu_param_t *p = &l->params[i];
    const mu_settings_t *s = &l->settings;
    if (!mu_method_is_matrix(p->method)) {
        const mu_adamw_hyper_t h = {p->lr,        s->adamw_beta1,  s->adamw_beta2,
                                    s->adamw_eps, p->weight_decay, step};
        return mu_k_adamw(be, &h, &fp->g, &fp->w, &fp->m1, &fp->m2);
    }
    TRY(mu_k_momentum(be, s->momentum, s->nesterov, &fp->g, &fp->m, &fp->g));
    TRY(exchange_rounding(be, l, fp, &fp->g));
    TRY(orthogonalize(fp, step));
    TRY(exchange_rounding(be, l, fp, &fp->q));
    return mu_k_apply_update(be, p->lr, p->weight_decay,
                             mu_scale_factor(s->scale, p->rows, p->cols), &fp->q, &fp->w);
}

static uint64_t digest(const mu_layout_t *l, const full_param_t *fps)
{
    XXH3_state_t *h = XXH3_createState();
    XXH3_64bits_reset(h);
    for (int i = 0; i < l->param_count; i++)
        XXH3_64bits_update(h, fps[i].w.data,
                           sizeof(float) * (size_t)(l->params[i].rows * l->params[i].cols));
    const uint64_t d = XXH3_64bits_digest(h);
    XXH3_freeState(h);
    return d;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: step_reference LAYOUT STEPS SEED [RANKS]\n");
        return 2;
    }
    const long steps = atol(argv[2]);
    const uint64_t seed = strtoull(argv[3], NULL, 10);
    const int ranks = argc > 4 ? atoi(argv[4]) : 1;
    mu_layout_t *l = NULL;
    mu_backend_t *be = NULL;
    mu_status_t st = mu_layout_load(argv[1], &l);
    if (st != MU_OK)
        return fail("layout", st);
    /* The backend the daemon under test runs (MUOND_BACKEND: the suite pins cpu, the dnnl
     * digest test dnnl): digests are bitwise per backend, not across backends. */
    const char *backend = getenv("MUOND_BACKEND");
    if ((st = mu_backend_create(backend && *backend ? backend : "cpu", &be)) != MU_OK ||
        (st = mu_backend_set_threads(be, 1)))
        return fail("backend", st);
    full_param_t *fps = calloc((size_t)l->param_count, sizeof *fps);
    for (int i = 0; i < l->param_count; i++)
        if ((st = setup(be, l, i, seed, &fps[i])) != MU_OK)
            return fail(l->params[i].name, st);
    for (long t = 1; t <= steps; t++)
        for (int i = 0; i < l->param_count; i++)
            if ((st = gradient(be, l, i, t, seed, ranks, &fps[i])) != MU_OK ||
                (st = update(be, l, i, t, &fps[i])) != MU_OK)
                return fail(l->params[i].name, st);
    printf("digest %016llx\n", (unsigned long long)digest(l, fps));
    for (int i = 0; i < l->param_count; i++) {
        mu_mat_t *all[] = {&fps[i].w,  &fps[i].g, &fps[i].m,         &fps[i].m1,
                           &fps[i].m2, &fps[i].q, &fps[i].round_trip};
        for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
            mu_k_release(be, all[k]);
        mu_orth_plan_destroy(&fps[i].plan);
        mu_shampoo_destroy(&fps[i].shampoo);
    }
    free(fps);
    mu_backend_destroy(&be);
    mu_layout_destroy(&l);
    return 0;
}
