#include "kernels/adaptive.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/lanczos.h"
#include "kernels/probes.h"

/* Stream id of the sample's starts in the counter RNG. */
static const uint64_t ADAPT_STREAM = 0x6164617074ULL; /* "adapt" */

/* The lower bounds tried: from the published schedule's 1e-3 to 0.2, where a two- or
 * three-step schedule suffices for a spectrum that lies high (the example MLP's last layer). */
static const double LOWERS[MU_ADAPTIVE_LOWERS] = {1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.2};

const char *mu_schedule_mode_name(mu_schedule_mode_t mode)
{
    return mode == MU_SCHEDULE_ADAPTIVE ? "adaptive" : "fixed";
}

mu_status_t mu_schedule_mode_parse(const char *name, mu_schedule_mode_t *out)
{
    if (name && strcmp(name, "fixed") == 0) {
        *out = MU_SCHEDULE_FIXED;
        return MU_OK;
    }
    if (name && strcmp(name, "adaptive") == 0) {
        *out = MU_SCHEDULE_ADAPTIVE;
        return MU_OK;
    }
    return mu_error(MU_ERR_INVALID, "unknown schedule '%s' (fixed or adaptive)",
                    name ? name : "(null)");
}

static mu_status_t make_choice(double lower, int iters, double cushion, double safety,
                               mu_adaptive_choice_t *c)
{
    c->lower = lower;
    c->iters = iters;
    MU_CHECK(mu_schedule_polar_express(lower, iters, cushion, safety, &c->schedule));
    double unused;
    mu_schedule_image(&c->schedule, 0.0, 1.0, &unused, &c->peak);
    return MU_OK;
}

mu_status_t mu_adaptive_menu_create(double lower, int iters, double cushion, double safety,
                                    mu_adaptive_menu_t *out)
{
    *out = (mu_adaptive_menu_t){0};
    const int shorter = iters > MU_ADAPTIVE_MIN_ITERS ? iters - MU_ADAPTIVE_MIN_ITERS : 0;
    out->choice = calloc((size_t)(shorter * MU_ADAPTIVE_LOWERS + 1), sizeof *out->choice);
    if (!out->choice)
        return mu_error(MU_ERR_NOMEM, "adaptive: cannot allocate the schedule menu");
    for (int t = MU_ADAPTIVE_MIN_ITERS; t < iters; t++)
        for (int j = 0; j < MU_ADAPTIVE_LOWERS; j++)
            MU_CHECK(make_choice(LOWERS[j], t, cushion, safety, &out->choice[out->count++]));
    out->reference = out->count;
    return make_choice(lower, iters, cushion, safety, &out->choice[out->count++]);
}

void mu_adaptive_menu_free(mu_adaptive_menu_t *menu)
{
    free(menu->choice);
    *menu = (mu_adaptive_menu_t){0};
}

static void quadrature(const mu_lanczos_t *lz, mu_spectrum_sample_t *out)
{
    out->count = 0;
    for (int j = 0; j < lz->k; j++) {
        double *nodes = out->sigma + out->count, *weights = out->weight + out->count;
        const int n = mu_lanczos_quadrature(lz, j, nodes, weights);
        for (int i = 0; i < n; i++) /* eigenvalues of X X^T -> singular values of X */
            nodes[i] = sqrt(fmax(nodes[i], 0.0));
        out->count += n;
    }
}

mu_status_t mu_adaptive_sample(mu_backend_t *be, const mu_mat_t *a, uint64_t seed,
                               mu_spectrum_sample_t *out)
{
    const int k = MU_ADAPTIVE_PROBES;
    double *start = malloc((size_t)a->rows * (size_t)k * sizeof *start);
    if (!start)
        return mu_error(MU_ERR_NOMEM, "adaptive: cannot allocate %lld x %d starts",
                        (long long)a->rows, k);
    mu_probes_signs(seed, ADAPT_STREAM, a->rows, k, start);
    mu_lanczos_t lz;
    const mu_status_t status =
        mu_lanczos_run(be, a, MU_LANCZOS_SYMMETRIC, start, k, k, MU_ADAPTIVE_STEPS, &lz);
    if (status == MU_OK)
        quadrature(&lz, out);
    mu_lanczos_free(&lz);
    free(start);
    return status;
}

double mu_adaptive_predict(const mu_adaptive_choice_t *c, const mu_spectrum_sample_t *sample)
{
    double reached = 0.0, count = 0.0;
    for (int i = 0; i < sample->count; i++) {
        reached += sample->weight[i] * mu_schedule_eval(&c->schedule, sample->sigma[i]);
        count += sample->weight[i];
    }
    /* A schedule that stays below 1 everywhere takes a shorter step, not a longer one. */
    return count > 0.0 ? reached / (fmax(c->peak, 1.0) * count) : 1.0;
}

int mu_adaptive_choose(const mu_adaptive_menu_t *menu, const mu_spectrum_sample_t *sample,
                       double tolerance, double *predicted, double *reference)
{
    const int ref = menu->reference;
    const double target = mu_adaptive_predict(&menu->choice[ref], sample) - tolerance;
    int best = ref;
    double best_value = -INFINITY;
    for (int i = 0; i < ref; i++) {
        const mu_adaptive_choice_t *c = &menu->choice[i];
        if (best != ref && c->iters > menu->choice[best].iters)
            break; /* the menu is ordered by T: a shorter schedule already qualified */
        const double value = mu_adaptive_predict(c, sample);
        if (value >= target && value > best_value) {
            best = i;
            best_value = value;
        }
    }
    if (predicted)
        *predicted = best == ref ? target + tolerance : best_value;
    if (reference)
        *reference = target + tolerance;
    return best;
}
