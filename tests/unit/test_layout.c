/* Layout parsing (shard/layout.h): defaults, overrides, flattening, digests and errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "shard/layout.h"

static mu_layout_t *parse_ok(const char *json)
{
    mu_layout_t *l = NULL;
    cr_assert_eq(mu_layout_parse(json, strlen(json), "test.json", &l), MU_OK, "%s",
                 mu_error_message());
    return l;
}

static void expect_error(const char *json, const char *fragment)
{
    mu_layout_t *l = (mu_layout_t *)json; /* must be set to NULL */
    cr_expect_eq(mu_layout_parse(json, strlen(json), "test.json", &l), MU_ERR_INVALID, "%s", json);
    cr_expect_null(l);
    cr_expect_not_null(strstr(mu_error_message(), fragment), "'%s' lacks '%s'", mu_error_message(),
                       fragment);
}

Test(layout, defaults_overrides_and_flattening)
{
    mu_layout_t *l = parse_ok("{\"parameters\": ["
                              "{\"name\": \"conv\", \"shape\": [8, 3, 2, 2], \"method\": \"gram\"},"
                              "{\"name\": \"b\", \"shape\": [8], \"method\": \"adamw\"},"
                              "{\"name\": \"w\", \"shape\": [4, 6], \"method\": \"ns5\", "
                              "\"lr\": 0.5, \"weight_decay\": 0.25}]}");
    cr_expect_eq(l->param_count, 3);
    cr_expect_eq(l->params[0].rows, 8);
    cr_expect_eq(l->params[0].cols, 12, "conv kernels flatten to out x in*kh*kw");
    cr_expect_eq(l->params[1].cols, 1, "vectors become n x 1");
    cr_expect_eq(l->params[0].lr, 0.02, "matrices default to the Muon lr");
    cr_expect_eq(l->params[1].lr, 3e-4, "adamw parameters default to the AdamW lr");
    cr_expect_eq(l->params[2].lr, 0.5);
    cr_expect_eq(l->params[2].weight_decay, 0.25);
    cr_expect_eq(l->settings.pe_iters, 8, "the published schedule's step count (issue 19)");
    cr_expect_eq(l->settings.descent_min, 0.0, "the certificate's limit comes from the plan");
    cr_expect_eq(l->settings.exchange_dtype, MU_DTYPE_F32);
    cr_expect_eq(l->settings.grad_mode, MU_GRAD_SHARDED);
    cr_expect(l->settings.nesterov);
    mu_layout_destroy(&l);
    cr_expect_null(l);
}

Test(layout, digest_tracks_what_must_agree)
{
    const char *a = "{\"parameters\": [{\"name\": \"w\", \"shape\": [4, 6], \"method\": \"ns5\"}]}";
    const char *b = "{\"optimizer\": {\"lr\": 0.03}, \"parameters\": [{\"name\": \"w\", \"shape\": "
                    "[4, 6], \"method\": \"ns5\"}]}";
    const char *c = "{\"parameters\": [{\"name\": \"w\", \"shape\": [6, 4], \"method\": \"ns5\"}]}";
    mu_layout_t *la = parse_ok(a), *la2 = parse_ok(a), *lb = parse_ok(b), *lc = parse_ok(c);
    cr_expect_eq(la->digest, la2->digest);
    cr_expect_neq(la->digest, lb->digest, "a setting changed");
    cr_expect_neq(la->digest, lc->digest, "a shape changed");
    mu_layout_destroy(&la);
    mu_layout_destroy(&la2);
    mu_layout_destroy(&lb);
    mu_layout_destroy(&lc);
}

Test(layout, scale_rules)
{
    cr_expect_float_eq(mu_scale_factor(MU_SCALE_SPECTRAL, 3072, 768), 2.0, 1e-15);
    cr_expect_float_eq(mu_scale_factor(MU_SCALE_SPECTRAL, 768, 3072), 1.0, 1e-15);
    cr_expect_float_eq(mu_scale_factor(MU_SCALE_RMS, 100, 400), 4.0, 1e-15);
    cr_expect_eq(mu_scale_factor(MU_SCALE_NONE, 5, 9), 1.0);
}

Test(layout, errors_name_the_field)
{
    expect_error("[1, 2]", "must be a JSON object");
    expect_error("{}", "parameters: is missing");
    expect_error("{\"parameters\": []}", "parameters: is empty");
    expect_error("{\"parameters\": [{\"shape\": [2, 2], \"method\": \"ns5\"}]}",
                 "parameters[0]: name: is missing");
    expect_error("{\"parameters\": [{\"name\": \"x\", \"shape\": [2, 2.5], \"method\": \"ns5\"}]}",
                 "parameters[0] (\"x\"): shape: dimension 1 must be a positive integer");
    expect_error("{\"parameters\": [{\"name\": \"x\", \"shape\": [2, 2, 2, 2, 2], \"method\": "
                 "\"ns5\"}]}",
                 "must have 1 to 4 dimensions");
    expect_error("{\"parameters\": [{\"name\": \"x\", \"shape\": [2, 2], \"method\": \"ns5\", "
                 "\"lr\": -1}]}",
                 "parameters[0] (\"x\"): lr: -1 is outside");
    expect_error("{\"optimizer\": {\"momentum\": 1.5}, \"parameters\": [{\"name\": \"x\", "
                 "\"shape\": [2, 2], \"method\": \"ns5\"}]}",
                 "optimizer: momentum: 1.5 is outside");
    expect_error("{\"optimizer\": {\"polar_express\": {\"iters\": 2.5}}, \"parameters\": "
                 "[{\"name\": \"x\", \"shape\": [2, 2], \"method\": \"ns5\"}]}",
                 "optimizer.polar_express: iters: must be an integer");
    expect_error("{\"exchange\": {\"dtype\": \"fp16\"}, \"parameters\": [{\"name\": \"x\", "
                 "\"shape\": [2, 2], \"method\": \"ns5\"}]}",
                 "exchange: dtype: must be one of fp32, bf16");
    expect_error("{\"optimizer\": {\"compute_dtype\": \"fp64\"}, \"parameters\": [{\"name\": "
                 "\"x\", \"shape\": [2, 2], \"method\": \"ns5\"}]}",
                 "optimizer: compute_dtype: must be one of fp32, bf16");
    expect_error("{\"gradient_mode\": \"mixed\", \"parameters\": [{\"name\": \"x\", \"shape\": "
                 "[2, 2], \"method\": \"ns5\"}]}",
                 "gradient_mode: must be one of sharded, local");
    expect_error("{\"parameters\": [{\"name\": \"x\", \"shape\": [2, 2], \"method\": \"ns5\"}], "
                 "\"extra\": 1}",
                 "extra: unknown key");
    expect_error("{\"parameters\": [{\"name\": \"x\", \"shape\": [2, 2], \"method\": \"ns5\", "
                 "\"color\": \"red\"}]}",
                 "parameters[0] (\"x\"): color: unknown key");
}

Test(layout, descent_min_overrides_the_certificate_limit)
{
    mu_layout_t *l =
        parse_ok("{\"optimizer\": {\"descent_min\": 0.8}, \"parameters\": "
                 "[{\"name\": \"w\", \"shape\": [4, 6], \"method\": \"polar-express\"}]}");
    cr_expect_eq(l->settings.descent_min, 0.8);
    mu_layout_destroy(&l);
    expect_error("{\"optimizer\": {\"descent_min\": 1.5}, \"parameters\": "
                 "[{\"name\": \"w\", \"shape\": [4, 6], \"method\": \"polar-express\"}]}",
                 "descent_min");
    expect_error("{\"optimizer\": {\"residual_tol\": 0.3}, \"parameters\": "
                 "[{\"name\": \"w\", \"shape\": [4, 6], \"method\": \"polar-express\"}]}",
                 "residual_tol");
}

Test(layout, missing_file_is_an_io_error)
{
    mu_layout_t *l = NULL;
    cr_expect_eq(mu_layout_load("/nonexistent/layout.json", &l), MU_ERR_IO);
    cr_expect_not_null(strstr(mu_error_message(), "/nonexistent/layout.json"));
}

/* compute_dtype reaches the matrix methods' plans (gram excepted: its R_k -> I needs fp32),
 * changes the digest when set, and leaves fp32 layouts' digests as they were. */
Test(layout, compute_dtype)
{
    const char *plain = "{\"parameters\": [{\"name\": \"w\", \"shape\": [4, 6], \"method\": "
                        "\"polar-express\"}, {\"name\": \"g\", \"shape\": [6, 4], \"method\": "
                        "\"gram\"}]}";
    const char *fp32 = "{\"optimizer\": {\"compute_dtype\": \"fp32\"}, \"parameters\": [{\"name\": "
                       "\"w\", \"shape\": [4, 6], \"method\": \"polar-express\"}, {\"name\": "
                       "\"g\", \"shape\": [6, 4], \"method\": \"gram\"}]}";
    const char *bf16 = "{\"optimizer\": {\"compute_dtype\": \"bf16\"}, \"parameters\": [{\"name\": "
                       "\"w\", \"shape\": [4, 6], \"method\": \"polar-express\"}, {\"name\": "
                       "\"g\", \"shape\": [6, 4], \"method\": \"gram\"}]}";
    mu_layout_t *lp = parse_ok(plain), *l32 = parse_ok(fp32), *l16 = parse_ok(bf16);
    cr_expect_eq(lp->settings.compute_dtype, MU_DTYPE_F32);
    cr_expect_eq(lp->digest, l32->digest, "fp32 spelled out is the default");
    cr_expect_neq(lp->digest, l16->digest, "bf16 compute must agree between ranks");
    mu_orth_opts_t o;
    mu_layout_orth_opts(l16, &l16->params[0], &o);
    cr_expect_eq(o.dtype, MU_DTYPE_BF16);
    mu_layout_orth_opts(l16, &l16->params[1], &o);
    cr_expect_eq(o.dtype, MU_DTYPE_F32, "gram stays fp32");
    mu_layout_destroy(&lp);
    mu_layout_destroy(&l32);
    mu_layout_destroy(&l16);
}

Test(layout, schedules_global_and_per_parameter)
{
    mu_layout_t *l = parse_ok("{\"optimizer\": {\"polar_express\": {\"schedule\": \"adaptive\"}},"
                              "\"parameters\": ["
                              "{\"name\": \"a\", \"shape\": [8, 8], \"method\": \"polar-express\"},"
                              "{\"name\": \"b\", \"shape\": [8, 8], \"method\": \"gram\", "
                              "\"schedule\": \"fixed\"},"
                              "{\"name\": \"c\", \"shape\": [8, 8], \"method\": \"ns5\"},"
                              "{\"name\": \"d\", \"shape\": [8], \"method\": \"adamw\"}]}");
    cr_expect_eq(l->settings.pe_schedule, MU_SCHEDULE_ADAPTIVE);
    cr_expect_eq(l->params[0].schedule, MU_SCHEDULE_ADAPTIVE);
    cr_expect_eq(l->params[1].schedule, MU_SCHEDULE_FIXED);
    cr_expect_eq(l->params[2].schedule, MU_SCHEDULE_FIXED, "ns5 has no schedule to adapt");
    mu_orth_opts_t o;
    mu_layout_orth_opts(l, &l->params[0], &o);
    cr_expect_eq(o.schedule, MU_SCHEDULE_ADAPTIVE);
    mu_layout_destroy(&l);

    /* An explicit "fixed" is the default: the digest stays; "adaptive" changes it. */
    const char *plain = "{\"parameters\": [{\"name\": \"a\", \"shape\": [8, 8], \"method\": "
                        "\"polar-express\"}]}";
    const char *fixed = "{\"parameters\": [{\"name\": \"a\", \"shape\": [8, 8], \"method\": "
                        "\"polar-express\", \"schedule\": \"fixed\"}]}";
    const char *adaptive = "{\"parameters\": [{\"name\": \"a\", \"shape\": [8, 8], \"method\": "
                           "\"polar-express\", \"schedule\": \"adaptive\"}]}";
    mu_layout_t *lp = parse_ok(plain), *lf = parse_ok(fixed), *la = parse_ok(adaptive);
    cr_expect_eq(lp->digest, lf->digest);
    cr_expect_neq(lp->digest, la->digest);
    mu_layout_destroy(&lp);
    mu_layout_destroy(&lf);
    mu_layout_destroy(&la);

    expect_error("{\"parameters\": [{\"name\": \"c\", \"shape\": [8, 8], \"method\": \"ns5\", "
                 "\"schedule\": \"adaptive\"}]}",
                 "parameters[0] (\"c\"): schedule: applies to polar-express and gram only");
    expect_error("{\"parameters\": [{\"name\": \"a\", \"shape\": [8, 8], \"method\": "
                 "\"polar-express\", \"schedule\": \"adaptiv\"}]}",
                 "schedule: must be one of fixed, adaptive");
    expect_error("{\"optimizer\": {\"polar_express\": {\"schedule\": 1}}, \"parameters\": []}",
                 "optimizer.polar_express: schedule: must be a string");
}

Test(layout, shampoo_settings_limits_and_digest)
{
    static const char *const plain = "{\"parameters\": [{\"name\": \"w\", \"shape\": [40, 30], "
                                     "\"method\": \"polar-express\"}]}";
    mu_layout_t *l = parse_ok("{\"optimizer\": {\"shampoo\": {\"beta\": 1, \"epsilon\": 1e-3, "
                              "\"interval\": 5, \"max_dim\": 64}}, \"parameters\": ["
                              "{\"name\": \"w\", \"shape\": [40, 30], \"method\": \"shampoo\"}]}");
    cr_expect_eq(l->params[0].method, MU_METHOD_SHAMPOO);
    cr_expect(mu_method_is_matrix(MU_METHOD_SHAMPOO) && !mu_method_is_orth(MU_METHOD_SHAMPOO));
    cr_expect_str_eq(mu_method_name(MU_METHOD_SHAMPOO), "shampoo");
    cr_expect_eq(l->settings.shampoo_beta, 1.0);
    cr_expect_eq(l->settings.shampoo_epsilon, 1e-3);
    cr_expect_eq(l->settings.shampoo_interval, 5);
    cr_expect_eq(l->settings.shampoo_max_dim, 64);
    cr_expect_gt(mu_layout_param_flops(l, &l->params[0]), 2.0 * 40 * 30 * 70,
                 "at least the two applying products");
    const uint64_t digest = l->digest;
    mu_layout_destroy(&l);
    /* The shampoo settings count only where a shampoo matrix uses them: layouts without one
     * keep the digests they had before the method existed. */
    l = parse_ok(plain);
    const uint64_t before = l->digest;
    mu_layout_destroy(&l);
    l = parse_ok("{\"optimizer\": {\"shampoo\": {\"interval\": 7}}, \"parameters\": [{\"name\": "
                 "\"w\", \"shape\": [40, 30], \"method\": \"polar-express\"}]}");
    cr_expect_eq(l->digest, before);
    mu_layout_destroy(&l);
    l = parse_ok("{\"optimizer\": {\"shampoo\": {\"beta\": 1, \"epsilon\": 1e-3, \"interval\": "
                 "6, \"max_dim\": 64}}, \"parameters\": [{\"name\": \"w\", \"shape\": [40, 30], "
                 "\"method\": \"shampoo\"}]}");
    cr_expect_neq(l->digest, digest, "the interval is in the digest");
    mu_layout_destroy(&l);
    expect_error("{\"optimizer\": {\"shampoo\": {\"epsilon\": 1e-6}}, \"parameters\": [{\"name\": "
                 "\"w\", \"shape\": [4, 3], \"method\": \"shampoo\"}]}",
                 "optimizer.shampoo: epsilon: 1e-06 is outside [1e-05, 1]");
    expect_error("{\"optimizer\": {\"shampoo\": {\"interval\": 2.5}}, \"parameters\": [{\"name\": "
                 "\"w\", \"shape\": [4, 3], \"method\": \"shampoo\"}]}",
                 "optimizer.shampoo: interval: must be an integer");
    expect_error("{\"optimizer\": {\"shampoo\": {\"order\": 4}}, \"parameters\": [{\"name\": "
                 "\"w\", \"shape\": [4, 3], \"method\": \"shampoo\"}]}",
                 "optimizer.shampoo: order: unknown key");
    expect_error("{\"parameters\": [{\"name\": \"b\", \"shape\": [4], \"method\": \"shampoo\"}]}",
                 "a matrix method needs a shape of at least 2 dimensions");
    expect_error("{\"optimizer\": {\"shampoo\": {\"max_dim\": 32}}, \"parameters\": [{\"name\": "
                 "\"w\", \"shape\": [40, 30], \"method\": \"shampoo\"}]}",
                 "parameters[0] (\"w\"): shape: shampoo keeps a 40x40 and a 30x30 statistic");
    expect_error("{\"parameters\": [{\"name\": \"w\", \"shape\": [4, 3], \"method\": \"shampoo\", "
                 "\"schedule\": \"adaptive\"}]}",
                 "schedule: applies to polar-express and gram only");
}
