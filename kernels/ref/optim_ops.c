/*
 * Element-wise optimizer updates on host memory, shared by the reference and cpu backends
 * (they are memory-bound: BLAS has nothing to add). One loop body per operation, expanded for
 * fp32 and fp64. The arithmetic is written out in a fixed order so that every rank, and the
 * single-process reference used by the tests, produce the same bits from the same inputs.
 */
#include <math.h>

#include "kernels/ref/ref_ops.h"

#define ROW(m, T, i)  ((T *)(m)->data + (i) * (m)->ld)
#define CROW(m, T, i) ((const T *)(m)->data + (i) * (m)->ld)

#define DEFINE_MOMENTUM(NAME, T)                                                                   \
    static void NAME(T beta, bool nesterov, const mu_mat_t *g, mu_mat_t *m, mu_mat_t *u)           \
    {                                                                                              \
        for (int64_t i = 0; i < g->rows; i++) {                                                    \
            const T *gi = CROW(g, T, i);                                                           \
            T *mi = ROW(m, T, i), *ui = ROW(u, T, i);                                              \
            for (int64_t j = 0; j < g->cols; j++) {                                                \
                const T grad = gi[j];                                                              \
                const T mom = beta * mi[j] + grad;                                                 \
                mi[j] = mom;                                                                       \
                ui[j] = nesterov ? grad + beta * mom : mom;                                        \
            }                                                                                      \
        }                                                                                          \
    }
DEFINE_MOMENTUM(momentum_f32, float)
DEFINE_MOMENTUM(momentum_f64, double)

mu_status_t mu_ref_momentum(mu_backend_t *be, double beta, bool nesterov, const mu_mat_t *g,
                            mu_mat_t *m, mu_mat_t *u)
{
    (void)be;
    if (g->dtype == MU_DTYPE_F32)
        momentum_f32((float)beta, nesterov, g, m, u);
    else
        momentum_f64(beta, nesterov, g, m, u);
    return MU_OK;
}

#define DEFINE_APPLY(NAME, T)                                                                      \
    static void NAME(T decay, T step, const mu_mat_t *o, mu_mat_t *w)                              \
    {                                                                                              \
        for (int64_t i = 0; i < w->rows; i++) {                                                    \
            const T *oi = CROW(o, T, i);                                                           \
            T *wi = ROW(w, T, i);                                                                  \
            for (int64_t j = 0; j < w->cols; j++)                                                  \
                wi[j] = wi[j] * decay - step * oi[j];                                              \
        }                                                                                          \
    }
DEFINE_APPLY(apply_f32, float)
DEFINE_APPLY(apply_f64, double)

mu_status_t mu_ref_apply_update(mu_backend_t *be, double lr, double wd, double scale,
                                const mu_mat_t *o, mu_mat_t *w)
{
    (void)be;
    const double decay = 1.0 - lr * wd, step = lr * scale;
    if (w->dtype == MU_DTYPE_F32)
        apply_f32((float)decay, (float)step, o, w);
    else
        apply_f64(decay, step, o, w);
    return MU_OK;
}

#define DEFINE_ADAMW(NAME, T, SQRT)                                                                \
    static void NAME(const mu_adamw_hyper_t *h, const mu_mat_t *g, mu_mat_t *w, mu_mat_t *m1,      \
                     mu_mat_t *m2)                                                                 \
    {                                                                                              \
        const T b1 = (T)h->beta1, b2 = (T)h->beta2, eps = (T)h->eps;                               \
        const T decay = (T)(1.0 - h->lr * h->weight_decay);                                        \
        const T c1 = (T)(1.0 / (1.0 - pow(h->beta1, (double)h->step)));                            \
        const T c2 = (T)(1.0 / (1.0 - pow(h->beta2, (double)h->step)));                            \
        const T lr = (T)h->lr;                                                                     \
        for (int64_t i = 0; i < g->rows; i++) {                                                    \
            const T *gi = CROW(g, T, i);                                                           \
            T *wi = ROW(w, T, i), *ai = ROW(m1, T, i), *bi = ROW(m2, T, i);                        \
            for (int64_t j = 0; j < g->cols; j++) {                                                \
                const T grad = gi[j];                                                              \
                ai[j] = b1 * ai[j] + (1 - b1) * grad;                                              \
                bi[j] = b2 * bi[j] + (1 - b2) * grad * grad;                                       \
                wi[j] = wi[j] * decay - lr * (ai[j] * c1) / (SQRT(bi[j] * c2) + eps);              \
            }                                                                                      \
        }                                                                                          \
    }
DEFINE_ADAMW(adamw_f32, float, sqrtf)
DEFINE_ADAMW(adamw_f64, double, sqrt)

mu_status_t mu_ref_adamw(mu_backend_t *be, const mu_adamw_hyper_t *h, const mu_mat_t *g,
                         mu_mat_t *w, mu_mat_t *m1, mu_mat_t *m2)
{
    (void)be;
    if (g->dtype == MU_DTYPE_F32)
        adamw_f32(h, g, w, m1, m2);
    else
        adamw_f64(h, g, w, m1, m2);
    return MU_OK;
}
