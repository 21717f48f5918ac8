/*
 * What a step does besides the fast path (shard/verify.c, shard/step.c), on one process
 * (loopback communicator; the fallback then uses LAPACK):
 *   - a NaN gradient under on_nonfinite "skip" leaves that parameter's weights and momentum
 *     exactly as they were, so that its later steps equal a run that never saw the bad step;
 *   - under "abort" the step fails naming the parameter, rank and step, and changes nothing;
 *   - a subnormal gradient (the illcond fault's: every fast method's result is NaN) fails the
 *     certificate and is solved by the fallback, while a rank-one gradient of normal size,
 *     which Polar Express handles exactly, passes it;
 *   - --force-fallback sends every matrix there.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "shard/optimizer.h"
#include "tests/support/harness.h"

static const char *LAYOUT_FMT =
    "{\"optimizer\": {\"on_nonfinite\": \"%s\"},"
    " \"parameters\": [{\"name\": \"m\", \"shape\": [12, 8], \"method\": \"polar-express\"},"
    "                  {\"name\": \"b\", \"shape\": [8], \"method\": \"adamw\"}]}";

typedef struct rig {
    mu_layout_t *layout;
    mu_comm_t *comm;
    mu_backend_t *be;
    mu_optimizer_t *opt;
} rig_t;

static void rig_open(rig_t *r, const char *policy)
{
    char text[512];
    snprintf(text, sizeof text, LAYOUT_FMT, policy);
    cr_assert_eq(mu_layout_parse(text, strlen(text), "test", &r->layout), MU_OK, "%s",
                 mu_error_message());
    cr_assert_eq(mu_comm_create("loopback", &r->comm), MU_OK);
    r->be = th_backend("cpu");
    cr_assert_eq(mu_optimizer_create(r->layout, r->comm, r->be, NULL, &r->opt), MU_OK);
    for (int p = 0; p < 2; p++) { /* nonzero starting weights */
        mu_param_view_t v;
        cr_assert_eq(mu_optimizer_param(r->opt, p, &v), MU_OK);
        float *w = v.w.data;
        for (int64_t i = 0; i < v.w.rows * v.w.cols; i++)
            w[i] = 0.01f * (float)cos(0.3 * (double)i + p);
    }
}

static void rig_close(rig_t *r)
{
    mu_optimizer_destroy(&r->opt);
    mu_backend_destroy(&r->be);
    mu_comm_destroy(&r->comm);
    mu_layout_destroy(&r->layout);
}

/* Gradient of parameter p at `step`: full rank (uniform), rank one (a b^T), the same scaled
 * into fp32's subnormal range, or full rank with one NaN. */
typedef enum { FULL, RANK_ONE, SUBNORMAL, WITH_NAN } kind_t;

static void fill(rig_t *r, int p, int step, kind_t kind)
{
    mu_param_view_t v;
    cr_assert_eq(mu_optimizer_param(r->opt, p, &v), MU_OK);
    float *g = v.g.data;
    for (int64_t i = 0; i < v.g.rows; i++)
        for (int64_t j = 0; j < v.g.cols; j++)
            g[i * v.g.ld + j] = kind == RANK_ONE || kind == SUBNORMAL
                                    ? (float)(sin(1.0 + (double)i) * cos(2.0 + (double)j)) *
                                          (kind == SUBNORMAL ? 0x1p-140f : 1.0f)
                                    : (float)(mu_rng_uniform(5, (uint64_t)(p * 100 + step),
                                                             (uint64_t)(i * v.g.cols + j)) -
                                              0.5);
    if (kind == WITH_NAN)
        g[v.g.rows * v.g.ld - 1] = NAN;
}

static void weights(rig_t *r, int p, float *out)
{
    mu_param_view_t v;
    cr_assert_eq(mu_optimizer_param(r->opt, p, &v), MU_OK);
    memcpy(out, v.w.data, sizeof(float) * (size_t)(v.w.rows * v.w.cols));
}

static void step_ok(rig_t *r, mu_step_stats_t *st)
{
    cr_assert_eq(mu_optimizer_step(r->opt, st), MU_OK, "%s", mu_error_message());
}

Test(step_policy, nan_skip_leaves_weights_and_momentum_unpolluted)
{
    rig_t a = {0}, b = {0};
    rig_open(&a, "skip");
    rig_open(&b, "skip");
    mu_step_stats_t st;
    float before[96], after[96], bias_before[8], bias_after[8];
    for (int p = 0; p < 2; p++) { /* step 1: the same on both */
        fill(&a, p, 1, FULL);
        fill(&b, p, 1, FULL);
    }
    step_ok(&a, &st);
    step_ok(&b, &st);
    weights(&a, 0, before);
    weights(&a, 1, bias_before);
    fill(&a, 0, 2, WITH_NAN); /* a's step 2: NaN in m, b as usual */
    fill(&a, 1, 2, FULL);
    step_ok(&a, &st);
    cr_assert_eq(st.event_count, 1);
    cr_expect_eq(st.events[0].kind, MU_EVENT_SKIPPED_NONFINITE);
    cr_expect_eq(st.events[0].param, 0);
    cr_expect_eq(st.events[0].rank, 0);
    cr_expect_eq(st.events[0].nonfinite, 1);
    cr_expect_eq(st.skipped, 1);
    weights(&a, 0, after);
    weights(&a, 1, bias_after);
    cr_expect_eq(memcmp(before, after, sizeof before), 0, "m changed in the skipped step");
    cr_expect_neq(memcmp(bias_before, bias_after, sizeof bias_before), 0, "b was not updated");
    for (int p = 0; p < 2; p++) { /* a's step 3 is b's step 2: m must come out identical */
        fill(&a, p, 3, FULL);
        fill(&b, p, 3, FULL);
    }
    step_ok(&a, &st);
    cr_expect_eq(st.event_count, 0, "a NaN reached the state: step 3 still had events");
    step_ok(&b, &st);
    weights(&a, 0, before);
    weights(&b, 0, after);
    cr_expect_eq(memcmp(before, after, sizeof before), 0,
                 "m after skip + step differs from a run without the bad step");
    rig_close(&a);
    rig_close(&b);
}

Test(step_policy, nan_abort_names_parameter_rank_and_step)
{
    rig_t a = {0};
    rig_open(&a, "abort");
    mu_step_stats_t st;
    fill(&a, 0, 1, FULL);
    fill(&a, 1, 1, FULL);
    step_ok(&a, &st);
    float m_before[96], b_before[8], m_after[96], b_after[8];
    weights(&a, 0, m_before);
    weights(&a, 1, b_before);
    fill(&a, 0, 2, FULL);
    fill(&a, 1, 2, WITH_NAN);
    cr_assert_eq(mu_optimizer_step(a.opt, &st), MU_ERR_NUMERIC);
    const char *msg = mu_error_message();
    cr_expect(strstr(msg, "step 2") && strstr(msg, " b (1 entries, first on rank 0)") &&
                  strstr(msg, "abort"),
              "message: %s", msg);
    mu_error_clear();
    weights(&a, 0, m_after);
    weights(&a, 1, b_after);
    cr_expect_eq(memcmp(m_before, m_after, sizeof m_before), 0);
    cr_expect_eq(memcmp(b_before, b_after, sizeof b_before), 0);
    cr_expect_eq(mu_optimizer_steps_done(a.opt), 1);
    rig_close(&a);
}

Test(step_policy, subnormal_gradient_is_caught_and_solved)
{
    rig_t a = {0};
    rig_open(&a, "skip");
    mu_step_stats_t st;
    fill(&a, 0, 1, RANK_ONE); /* handled exactly by the fast path: no event */
    fill(&a, 1, 1, FULL);
    step_ok(&a, &st);
    cr_expect_eq(st.event_count, 0, "a rank-one gradient passes the certificate");
    rig_close(&a);
    rig_open(&a, "skip");
    fill(&a, 0, 1, SUBNORMAL);
    fill(&a, 1, 1, FULL);
    step_ok(&a, &st);
    cr_assert_eq(st.event_count, 1);
    const mu_step_event_t *e = &st.events[0];
    cr_expect_eq(e->kind, MU_EVENT_FALLBACK_NONFINITE);
    cr_expect_eq(e->param, 0);
    cr_expect(e->solved);
    cr_expect_eq(e->fallback.route, MU_FALLBACK_LAPACK);
    cr_expect_eq(st.fallbacks, 1);
    cr_expect_eq(st.skipped, 0);
    char line[384];
    mu_step_event_format(a.opt, e, line, sizeof line);
    cr_expect(strstr(line, "m (12x8, owner rank 0): fallback, non-finite fast result") != NULL,
              "%s", line);
    rig_close(&a);
}

Test(step_policy, force_fallback_sends_every_matrix)
{
    rig_t a = {0};
    rig_open(&a, "skip");
    mu_optimizer_force_fallback(a.opt, true);
    mu_step_stats_t st;
    fill(&a, 0, 1, FULL);
    fill(&a, 1, 1, FULL);
    step_ok(&a, &st);
    cr_assert_eq(st.event_count, 1);
    cr_expect_eq(st.events[0].kind, MU_EVENT_FALLBACK_FORCED);
    cr_expect(st.events[0].solved);
    float w[96];
    weights(&a, 0, w);
    for (int i = 0; i < 96; i++)
        cr_assert(isfinite(w[i]));
    rig_close(&a);
}
