/*
 * The certificate (kernels/certificate.h) against the truth: for every result below, the fp64
 * SVD of G says whether Q is within band (descent efficiency <Q, G> / ||G||_* at least the
 * plan's limit and ||Q||_2 at most 1 + its overshoot band; mu_host_descent), and the
 * certificate must catch the result exactly when it is not: no missed failure, no false alarm.
 *
 * The results: the fast paths muond runs (Polar Express with 8 and with 5 steps and with
 * adaptive schedules, NS5, the Gram route fixed and adaptive) on an adversarial set of spectra and
 * on real momentum matrices recorded from the example trainers (tests/data/momenta/,
 * MUOND_DUMP_MOMENTUM), within band but for the Gram route's fp32 overshoot on some of them; and
 * wrong results planted into Polar Express's answer (zero, halved, scaled up, the polar factor of
 * another matrix, one corrupted entry, a single polynomial step, a NaN), all out of band, and
 * the Gram route in fp32 on a spike over a bulk at the Gram matrix's round-off, which
 * overshoots (and so does it on one recorded momentum). Every verdict is printed, for the
 * record in docs/numerics.md.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "kernels/certificate.h"
#include "kernels/orth.h"
#include "kernels/spectrum.h"
#include "tests/support/harness.h"

typedef struct tally {
    int cases, caught, out_of_band, mismatches, false_alarms;
} tally_t;

/* The stated false alarms: within band, yet caught, because the bound is loose there (see
 * docs/numerics.md, "Where the bound is loose"). A wide-band schedule (Polar Express with 5
 * steps: every direction lands anywhere in [0.855, 1.145]) on a large matrix of very low
 * rank: the residual bound counts all min(m, n) directions, and the schedule bound's count
 * of the directions below its threshold is as pessimistic. Anything else caught within band,
 * and anything out of band that passes, fails the test. */
static const char *const STATED_FALSE_ALARMS[] = {
    "rank one, polar-express T=5",
};

static bool stated_false_alarm(const char *name)
{
    for (size_t i = 0; i < sizeof STATED_FALSE_ALARMS / sizeof STATED_FALSE_ALARMS[0]; i++)
        if (strcmp(name, STATED_FALSE_ALARMS[i]) == 0)
            return true;
    return false;
}

/* Q (fp64 host) judged against G by the certificate with `limits`, and by the truth. */
static void judge(mu_backend_t *be, const char *name, const double *g, const double *q,
                  int64_t rows, int64_t cols, const mu_cert_limits_t *limits, tally_t *t)
{
    mu_mat_t dg = {0}, dq = {0};
    cr_assert_eq(mu_k_alloc(be, rows, cols, MU_DTYPE_F32, &dg), MU_OK);
    cr_assert_eq(mu_k_alloc(be, rows, cols, MU_DTYPE_F32, &dq), MU_OK);
    cr_assert_eq(mu_k_upload(be, g, MU_DTYPE_F64, cols, &dg), MU_OK);
    cr_assert_eq(mu_k_upload(be, q, MU_DTYPE_F64, cols, &dq), MU_OK);
    mu_cert_t c;
    const mu_status_t status = mu_cert_measure(be, &dg, &dq, 0.0, limits, NULL, &c);
    cr_assert(status == MU_OK || status == MU_ERR_NUMERIC, "%s: %s", name, mu_error_message());
    const mu_cert_verdict_t verdict =
        status == MU_OK ? mu_cert_judge(&c, limits, NULL, NULL) : MU_CERT_NONFINITE;
    mu_error_clear();
    mu_host_descent_t truth = {0};
    bool finite = true;
    for (int64_t i = 0; i < rows * cols; i++)
        finite &= isfinite(q[i]) != 0;
    if (finite)
        cr_assert_eq(mu_host_descent(g, q, rows, cols, &truth), MU_OK);
    const bool out = !finite || !(truth.efficiency >= limits->descent) ||
                     !(truth.q_norm <= 1.0 + limits->overshoot);
    const bool caught = verdict != MU_CERT_PASS;
    const bool stated = caught && !out && stated_false_alarm(name);
    printf("certificate: %-34s %4lldx%-4lld descent %.4f (bound %.4f, limit %.4f) ||Q||_2 %.4f "
           "(estimate %.4f, limit %.4f): %-10s %s %s\n",
           name, (long long)rows, (long long)cols, truth.efficiency, c.descent_bound,
           limits->descent, truth.q_norm, c.q_norm, 1.0 + limits->overshoot,
           mu_cert_verdict_name(verdict), out ? "out of band" : "within band",
           caught == out ? "ok"
           : stated      ? "stated false alarm"
                         : "MISMATCH");
    cr_expect(caught == out || stated, "%s: the certificate says %s, the truth %s", name,
              mu_cert_verdict_name(verdict), out ? "out of band" : "within band");
    t->cases++;
    t->caught += caught;
    t->out_of_band += out;
    t->mismatches += caught != out && !stated;
    t->false_alarms += stated;
    mu_k_release(be, &dg);
    mu_k_release(be, &dq);
}

/* ---- the fast paths ----------------------------------------------------------------------- */

typedef struct fast_path {
    const char *name;
    mu_orth_method_t method;
    int iters;
    mu_schedule_mode_t schedule;
    int gram_restart_after; /* 0: the default restart, -1: none */
} fast_path_t;

enum { PE8, PE5, PE_ADAPTIVE, NS5, GRAM8, GRAM8_NO_RESTART, GRAM_ADAPTIVE, FAST_PATH_COUNT };

/* Adaptive plans judge each result by the limits of the schedule they chose for it. The Gram
 * route without its restart is the one fast path that goes wrong on real inputs (fp32
 * overshoot): it stays here so that the certificate is seen to catch that. */
static const fast_path_t FAST_PATHS[FAST_PATH_COUNT] = {
    [PE8] = {"polar-express T=8", MU_ORTH_POLAR_EXPRESS, 8, MU_SCHEDULE_FIXED, 0},
    [PE5] = {"polar-express T=5", MU_ORTH_POLAR_EXPRESS, 5, MU_SCHEDULE_FIXED, 0},
    [PE_ADAPTIVE] = {"polar-express adaptive", MU_ORTH_POLAR_EXPRESS, 8, MU_SCHEDULE_ADAPTIVE, 0},
    [NS5] = {"ns5", MU_ORTH_NS5, 5, MU_SCHEDULE_FIXED, 0},
    [GRAM8] = {"gram T=8", MU_ORTH_GRAM, 8, MU_SCHEDULE_FIXED, 0},
    [GRAM8_NO_RESTART] = {"gram T=8 without restart", MU_ORTH_GRAM, 8, MU_SCHEDULE_FIXED, -1},
    [GRAM_ADAPTIVE] = {"gram adaptive", MU_ORTH_GRAM, 8, MU_SCHEDULE_ADAPTIVE, 0},
};

/* Runs fp32 `fp` on g; *limits receives its plan's for this result. */
static double *run_fast_path(mu_backend_t *be, const fast_path_t *fp, const double *g, int64_t rows,
                             int64_t cols, mu_cert_limits_t *limits)
{
    mu_orth_opts_t o;
    mu_orth_opts_default(&o);
    o.method = fp->method;
    o.iters = fp->iters;
    o.schedule = fp->schedule;
    o.gram_restart_after = fp->gram_restart_after;
    mu_orth_plan_t *plan = NULL;
    mu_mat_t dg = {0}, dq = {0};
    double *q = malloc(sizeof *q * (size_t)(rows * cols));
    cr_assert(q);
    cr_assert_eq(mu_orth_plan_create(be, rows, cols, &o, &plan), MU_OK, "%s", mu_error_message());
    cr_assert_eq(mu_k_alloc(be, rows, cols, MU_DTYPE_F32, &dg), MU_OK);
    cr_assert_eq(mu_k_alloc(be, rows, cols, MU_DTYPE_F32, &dq), MU_OK);
    cr_assert_eq(mu_k_upload(be, g, MU_DTYPE_F64, cols, &dg), MU_OK);
    cr_assert_eq(mu_orth_execute(plan, &dg, &dq, NULL), MU_OK, "%s", mu_error_message());
    cr_assert_eq(mu_k_download(be, &dq, q, MU_DTYPE_F64, cols), MU_OK);
    mu_orth_plan_cert_limits(plan, limits);
    mu_k_release(be, &dg);
    mu_k_release(be, &dq);
    mu_orth_plan_destroy(&plan);
    return q;
}

static void judge_fast_paths(mu_backend_t *be, const char *name, const double *g, int64_t rows,
                             int64_t cols, tally_t *t)
{
    for (size_t i = 0; i < FAST_PATH_COUNT; i++) {
        mu_cert_limits_t limits;
        double *q = run_fast_path(be, &FAST_PATHS[i], g, rows, cols, &limits);
        char label[400];
        snprintf(label, sizeof label, "%s, %s", name, FAST_PATHS[i].name);
        judge(be, label, g, q, rows, cols, &limits, t);
        free(q);
    }
}

/* ---- the adversarial set ------------------------------------------------------------------ */

/* U diag(sigma) V^T with random orthonormal U, V. */
static double *with_spectrum(int64_t rows, int64_t cols, int64_t r, const double *sigma,
                             uint64_t seed)
{
    double *u = malloc(sizeof *u * (size_t)(rows * r)), *v = malloc(sizeof *v * (size_t)(cols * r));
    double *g = malloc(sizeof *g * (size_t)(rows * cols));
    cr_assert(u && v && g);
    cr_assert_eq(mu_host_random_orthonormal(rows, r, seed, 1, u), MU_OK);
    cr_assert_eq(mu_host_random_orthonormal(cols, r, seed, 2, v), MU_OK);
    cr_assert_eq(mu_host_compose_svd(rows, cols, r, u, sigma, v, g), MU_OK);
    free(u);
    free(v);
    return g;
}

static double *gaussian(int64_t rows, int64_t cols, uint64_t seed)
{
    double *g = malloc(sizeof *g * (size_t)(rows * cols));
    cr_assert(g);
    for (int64_t i = 0; i < rows * cols; i++)
        g[i] = mu_rng_normal(seed, 7, (uint64_t)i);
    return g;
}

/* A rank-one spike over a flat bulk at `bulk` of it, of rank min(rows, cols). */
static double *spike_over_bulk(int64_t rows, int64_t cols, double bulk, uint64_t seed)
{
    const int64_t r = rows < cols ? rows : cols;
    double *sigma = malloc(sizeof *sigma * (size_t)r);
    cr_assert(sigma);
    sigma[0] = 1.0;
    for (int64_t i = 1; i < r; i++)
        sigma[i] = bulk * (1.0 - 0.5 * (double)i / (double)r);
    double *g = with_spectrum(rows, cols, r, sigma, seed);
    free(sigma);
    return g;
}

static double *log_spaced(int64_t rows, int64_t cols, int64_t r, double kappa, uint64_t seed)
{
    double *sigma = malloc(sizeof *sigma * (size_t)r);
    cr_assert(sigma);
    for (int64_t i = 0; i < r; i++)
        sigma[i] = r == 1 ? 1.0 : pow(kappa, -(double)i / (double)(r - 1));
    double *g = with_spectrum(rows, cols, r, sigma, seed);
    free(sigma);
    return g;
}

typedef struct input {
    const char *name;
    int64_t rows, cols;
    double *g;
} input_t;

static int adversarial_set(input_t *in)
{
    int n = 0;
    in[n++] = (input_t){"gaussian", 128, 96, gaussian(128, 96, 1)};
    in[n++] = (input_t){"wide gaussian", 64, 256, gaussian(64, 256, 2)};
    in[n++] = (input_t){"kappa 1e8", 160, 160, log_spaced(160, 160, 160, 1e8, 3)};
    in[n++] = (input_t){"rank 40 of 150 (issue 19)", 150, 150, log_spaced(150, 150, 40, 10, 4)};
    in[n++] = (input_t){"rank one", 300, 200, log_spaced(300, 200, 1, 1, 5)};
    in[n++] = (input_t){"rank 5", 200, 200, log_spaced(200, 200, 5, 1e2, 6)};
    in[n++] = (input_t){"spike over bulk at 1e-3", 96, 64, spike_over_bulk(96, 64, 1e-3, 7)};
    in[n++] = (input_t){"one column", 65, 1, log_spaced(65, 1, 1, 1, 8)};
    return n;
}

Test(certificate, fast_paths_on_the_adversarial_set_are_judged_right)
{
    mu_backend_t *be = th_backend("cpu");
    input_t in[16];
    const int n = adversarial_set(in);
    tally_t t = {0};
    for (int i = 0; i < n; i++) {
        judge_fast_paths(be, in[i].name, in[i].g, in[i].rows, in[i].cols, &t);
        free(in[i].g);
    }
    printf("certificate: adversarial set: %d results, %d out of band, %d caught, %d stated false "
           "alarm(s), %d mismatches\n",
           t.cases, t.out_of_band, t.caught, t.false_alarms, t.mismatches);
    cr_expect_eq(t.mismatches, 0);
    mu_backend_destroy(&be);
}

/* ---- the real matrices -------------------------------------------------------------------- */

typedef struct momentum_ctx {
    mu_backend_t *be;
    tally_t *tally;
} momentum_ctx_t;

static void judge_momentum(const char *name, const double *g, int64_t rows, int64_t cols, void *ctx)
{
    const momentum_ctx_t *c = ctx;
    judge_fast_paths(c->be, name, g, rows, cols, c->tally);
}

Test(certificate, fast_paths_on_recorded_momenta_are_judged_right)
{
    mu_backend_t *be = th_backend("cpu");
    tally_t t = {0};
    momentum_ctx_t ctx = {be, &t};
    th_for_each_momentum(judge_momentum, &ctx);
    printf("certificate: recorded momenta: %d results, %d out of band, %d caught, %d mismatches\n",
           t.cases, t.out_of_band, t.caught, t.mismatches);
    cr_expect_eq(t.mismatches, 0);
    cr_expect_eq(t.false_alarms, 0);
    mu_backend_destroy(&be);
}

/* ---- wrong results ------------------------------------------------------------------------ */

typedef enum wrong {
    ZERO,
    HALVED,
    SCALED_UP,
    OTHER_MATRIX,
    CORRUPTED_ENTRY,
    ONE_STEP,
    NAN_ENTRY,
    WRONG_COUNT
} wrong_t;

static const char *const WRONG_NAMES[WRONG_COUNT] = {"zero",          "halved",
                                                     "scaled by 1.3", "polar factor of another G",
                                                     "one entry + 4", "one polynomial step",
                                                     "one NaN"};

/* Polar Express's (8 steps) answer for g, made wrong. */
static double *plant(mu_backend_t *be, wrong_t kind, const double *g, int64_t rows, int64_t cols)
{
    const int64_t n = rows * cols;
    const fast_path_t pe = {"", MU_ORTH_POLAR_EXPRESS, kind == ONE_STEP ? 1 : 8, MU_SCHEDULE_FIXED,
                            0};
    mu_cert_limits_t unused;
    double *other = kind == OTHER_MATRIX ? gaussian(rows, cols, 99) : NULL;
    double *q = run_fast_path(be, &pe, other ? other : g, rows, cols, &unused);
    free(other);
    for (int64_t i = 0; i < n; i++)
        q[i] *= kind == ZERO ? 0.0 : kind == HALVED ? 0.5 : kind == SCALED_UP ? 1.3 : 1.0;
    if (kind == CORRUPTED_ENTRY)
        q[n / 2] += 4.0;
    if (kind == NAN_ENTRY)
        q[n / 3] = NAN;
    return q;
}

Test(certificate, wrong_results_are_out_of_band_and_caught)
{
    mu_backend_t *be = th_backend("cpu");
    input_t in[16];
    const int n = adversarial_set(in);
    tally_t t = {0};
    for (int i = 0; i < n; i++) {
        mu_cert_limits_t limits;
        double *unused =
            run_fast_path(be, &FAST_PATHS[PE8], in[i].g, in[i].rows, in[i].cols, &limits);
        free(unused);
        for (int w = 0; w < WRONG_COUNT; w++) {
            if (in[i].cols == 1 && (w == OTHER_MATRIX || w == ONE_STEP))
                continue; /* a column's polar factor is its direction, whatever the path */
            double *q = plant(be, (wrong_t)w, in[i].g, in[i].rows, in[i].cols);
            char label[400];
            snprintf(label, sizeof label, "%s, %s", in[i].name, WRONG_NAMES[w]);
            judge(be, label, in[i].g, q, in[i].rows, in[i].cols, &limits, &t);
            free(q);
        }
        free(in[i].g);
    }
    printf("certificate: planted wrong results: %d, %d out of band, %d caught, %d mismatches\n",
           t.cases, t.out_of_band, t.caught, t.mismatches);
    cr_expect_eq(t.mismatches, 0);
    mu_backend_destroy(&be);
}

/* The Gram route in fp32 on a spike over a bulk whose squared singular values, 4e-8 of the
 * spike's, sit at the fp32 Gram matrix's round-off: its inverse root amplifies that round-off
 * into directions that overshoot (Polar Express, on the same matrices, is right). */
/* Without its restart the Gram route overshoots here (1.5 to 2.0) and is caught; with it,
 * and Polar Express, the results are within band and pass. */
Test(certificate, gram_route_past_its_precision_overshoots_and_is_caught)
{
    mu_backend_t *be = th_backend("cpu");
    const int64_t shapes[][2] = {{128, 64}, {256, 96}, {64, 192}};
    const int paths[] = {GRAM8_NO_RESTART, GRAM8, PE8};
    tally_t t = {0};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int64_t rows = shapes[i][0], cols = shapes[i][1];
        double *g = spike_over_bulk(rows, cols, 2e-4, 20 + i);
        for (size_t j = 0; j < sizeof paths / sizeof paths[0]; j++) {
            mu_cert_limits_t limits;
            double *q = run_fast_path(be, &FAST_PATHS[paths[j]], g, rows, cols, &limits);
            char label[128];
            snprintf(label, sizeof label, "spike over bulk at 2e-4, %s", FAST_PATHS[paths[j]].name);
            judge(be, label, g, q, rows, cols, &limits, &t);
            free(q);
        }
        free(g);
    }
    cr_expect_eq(t.mismatches, 0);
    cr_expect_eq(t.caught, 3, "the unrestarted Gram route's three overshoots, and nothing else");
    mu_backend_destroy(&be);
}

Test(certificate, zero_input_passes_and_bad_arguments_are_refused)
{
    mu_backend_t *be = th_backend("cpu");
    mu_mat_t g = {0}, q = {0}, small = {0};
    cr_assert_eq(mu_k_alloc(be, 6, 4, MU_DTYPE_F32, &g), MU_OK);
    cr_assert_eq(mu_k_alloc(be, 6, 4, MU_DTYPE_F32, &q), MU_OK);
    cr_assert_eq(mu_k_alloc(be, 4, 6, MU_DTYPE_F32, &small), MU_OK);
    cr_assert_eq(mu_k_fill(be, 0.0, &g), MU_OK);
    cr_assert_eq(mu_k_fill(be, 0.0, &q), MU_OK);
    mu_cert_t c;
    cr_expect_eq(mu_cert_measure(be, &g, &q, 0.0, NULL, NULL, &c), MU_OK);
    cr_expect_eq(c.descent_bound, 1.0, "G = 0: every Q is a steepest-descent step");
    cr_expect_eq(mu_cert_measure(be, &g, &small, 0.0, NULL, NULL, &c), MU_ERR_INVALID);
    cr_expect(strstr(mu_error_message(), "G is 6x4") != NULL, "%s", mu_error_message());
    mu_cert_opts_t o;
    mu_cert_opts_default(&o);
    o.lanczos_probes = o.probes + 1;
    cr_expect_eq(mu_cert_measure(be, &g, &q, 0.0, NULL, &o, &c), MU_ERR_INVALID);
    mu_error_clear();
    mu_k_release(be, &g);
    mu_k_release(be, &q);
    mu_k_release(be, &small);
    mu_backend_destroy(&be);
}
