#include "shard/synthetic.h"

#include <math.h>

#include "core/rng.h"
#include "kernels/host_view.h"

/* Distinct stream families, so gradients and weights never share random numbers. */
static const uint64_t GRADIENT_TAG = 0x6772616469656e74ULL; /* "gradient" */
static const uint64_t WEIGHT_TAG = 0x77656967687473ULL;     /* "weights" */
static const double WEIGHT_STD = 0.02;
/* A uniform variable on [-sqrt(3), sqrt(3)] has unit variance. */
static const double SQRT3 = 1.7320508075688772;

static void fill_uniform(uint64_t seed, uint64_t stream, double half_width, int64_t row_begin,
                         int64_t rows, int64_t cols, float *out, int64_t ld)
{
    for (int64_t i = 0; i < rows; i++) {
        const uint64_t base = (uint64_t)(row_begin + i) * (uint64_t)cols;
        for (int64_t j = 0; j < cols; j++) {
            const double u = mu_rng_uniform(seed, stream, base + (uint64_t)j);
            out[i * ld + j] = (float)((2.0 * u - 1.0) * half_width);
        }
    }
}

/* Local-mode gradients are rounded to multiples of 2^-12: their sum over up to 2^11 ranks is
 * then exact in fp32 in any order, so the averaged gradient does not depend on how the
 * reduction associates, and a serial computation reproduces it bit for bit. */
static const float LOCAL_QUANTUM = 0x1.0p-12f;

void mu_synthetic_gradient(uint64_t seed, int param, long step, int rank, int64_t row_begin,
                           int64_t rows, int64_t cols, float *out, int64_t ld)
{
    /* One stream per (parameter, rank, step); rank -1 maps to 0. */
    const uint64_t who = ((uint64_t)(uint32_t)param << 32) | (uint32_t)(rank + 1);
    const uint64_t stream = mu_rng_bits(seed ^ GRADIENT_TAG, who, (uint64_t)step);
    fill_uniform(seed, stream, SQRT3 / sqrt((double)cols), row_begin, rows, cols, out, ld);
    if (rank < 0)
        return;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            out[i * ld + j] = nearbyintf(out[i * ld + j] / LOCAL_QUANTUM) * LOCAL_QUANTUM;
}

void mu_synthetic_weights(uint64_t seed, int param, int64_t row_begin, int64_t rows, int64_t cols,
                          float *out, int64_t ld)
{
    const uint64_t stream = mu_rng_bits(seed ^ WEIGHT_TAG, (uint64_t)(uint32_t)param, 0);
    fill_uniform(seed, stream, SQRT3 * WEIGHT_STD, row_begin, rows, cols, out, ld);
}

/* Injected rank deficiency: a rank-one gradient a b^T with a fixed per parameter (and b per
 * step, so momentum stays in the same rank-one column space: still rank one). Local mode's
 * rounding keeps the sum over ranks exact, as for ordinary gradients. */
static const uint64_t RANK_ONE_TAG = 0x72616e6b6f6e65ULL; /* "rankone" */

void mu_synthetic_rank_one(uint64_t seed, int param, long step, int rank, int64_t row_begin,
                           int64_t rows, int64_t cols, float *out, int64_t ld)
{
    const uint64_t left = mu_rng_bits(seed ^ RANK_ONE_TAG, (uint64_t)(uint32_t)param, 0);
    const uint64_t right = mu_rng_bits(seed ^ RANK_ONE_TAG, (uint64_t)(uint32_t)param,
                                       (uint64_t)step);
    const double width = SQRT3 / sqrt((double)cols);
    for (int64_t i = 0; i < rows; i++) {
        const double a = 2.0 * mu_rng_uniform(seed, left, (uint64_t)(row_begin + i)) - 1.0;
        for (int64_t j = 0; j < cols; j++) {
            const double b = 2.0 * mu_rng_uniform(seed, right, (uint64_t)j) - 1.0;
            float v = (float)(a * b * width);
            if (rank >= 0)
                v = nearbyintf(v / LOCAL_QUANTUM) * LOCAL_QUANTUM;
            out[i * ld + j] = v;
        }
    }
}

mu_status_t mu_synthetic_init_weights(mu_optimizer_t *opt, uint64_t seed)
{
    mu_backend_t *be = mu_optimizer_backend(opt);
    for (int p = 0; p < mu_optimizer_layout(opt)->param_count; p++) {
        mu_param_view_t v;
        mu_host_view_t host;
        MU_CHECK(mu_optimizer_param(opt, p, &v));
        MU_CHECK(mu_host_view_begin(be, &v.w, MU_DTYPE_F32, MU_HOST_WRITE, &host));
        mu_synthetic_weights(seed, p, v.row_begin, v.row_end - v.row_begin, v.w.cols, host.data,
                             host.ld);
        MU_CHECK(mu_host_view_end(be, &host));
    }
    return MU_OK;
}

mu_status_t mu_synthetic_fill_gradients(mu_optimizer_t *opt, uint64_t seed)
{
    mu_backend_t *be = mu_optimizer_backend(opt);
    const mu_layout_t *layout = mu_optimizer_layout(opt);
    const long step = mu_optimizer_next_step(opt);
    /* sharded mode: one gradient, whoever holds its rows; local mode: each trainer its own */
    const int rank = layout->settings.grad_mode == MU_GRAD_SHARDED ? -1 : mu_optimizer_rank(opt);
    for (int p = 0; p < layout->param_count; p++) {
        mu_param_view_t v;
        mu_host_view_t host;
        MU_CHECK(mu_optimizer_param(opt, p, &v));
        MU_CHECK(mu_host_view_begin(be, &v.g, MU_DTYPE_F32, MU_HOST_WRITE, &host));
        mu_synthetic_gradient(seed, p, step, rank, v.row_begin, v.row_end - v.row_begin, v.g.cols,
                              host.data, host.ld);
        MU_CHECK(mu_host_view_end(be, &host));
    }
    return MU_OK;
}
