/* core/: the error convention, log specs, the counter-based RNG and the fault table. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "core/fault.h"
#include "core/log.h"
#include "core/rng.h"
#include "core/status.h"

static mu_status_t inner(void)
{
    return mu_error(MU_ERR_IO, "disk on fire (%d)", 42);
}

static mu_status_t outer(void)
{
    MU_CHECK(inner());
    return MU_OK;
}

Test(status, message_and_trail)
{
    cr_expect_eq(outer(), MU_ERR_IO);
    cr_expect_str_eq(mu_error_message(), "disk on fire (42)");
    char buf[1024] = "";
    FILE *f = fmemopen(buf, sizeof buf, "w");
    mu_error_report(f, "prog", MU_ERR_IO);
    fclose(f);
    cr_expect_not_null(strstr(buf, "prog: IO: disk on fire (42)"), "%s", buf);
    cr_expect_not_null(strstr(buf, "test_core.c"), "trail lacks the frame: %s", buf);
    mu_error_clear();
    cr_expect_str_eq(mu_error_message(), "");
}

Test(status, every_status_has_a_name)
{
    for (int s = 0; s < MU_STATUS_COUNT; s++)
        cr_expect(mu_strerror((mu_status_t)s) && strlen(mu_strerror((mu_status_t)s)) > 1);
    cr_expect_str_eq(mu_strerror(MU_ERR_SCALAPACK), "SCALAPACK");
    cr_expect_str_eq(mu_strerror((mu_status_t)999), "UNKNOWN");
}

Test(log, specs)
{
    cr_expect_eq(mu_log_configure("warn,kernels=debug"), MU_OK);
    cr_expect(mu_log_enabled(MU_LOG_DEBUG, MU_SUB_KERNELS));
    cr_expect_not(mu_log_enabled(MU_LOG_INFO, MU_SUB_COMM));
    cr_expect(mu_log_enabled(MU_LOG_WARN, MU_SUB_COMM));
    cr_expect_eq(mu_log_configure("loud"), MU_ERR_INVALID);
    cr_expect_eq(mu_log_configure("nosuch=info"), MU_ERR_INVALID);
    cr_expect(mu_log_enabled(MU_LOG_DEBUG, MU_SUB_KERNELS), "a bad spec must change nothing");
}

Test(rng, pure_function_of_its_counters)
{
    cr_expect_eq(mu_rng_bits(1, 2, 3), mu_rng_bits(1, 2, 3));
    cr_expect_neq(mu_rng_bits(1, 2, 3), mu_rng_bits(1, 2, 4));
    cr_expect_neq(mu_rng_bits(1, 2, 3), mu_rng_bits(1, 3, 3));
    cr_expect_neq(mu_rng_bits(1, 2, 3), mu_rng_bits(2, 2, 3));
    double sum = 0, sum2 = 0, lo = 1, hi = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        const double u = mu_rng_uniform(7, 1, (uint64_t)i);
        lo = fmin(lo, u);
        hi = fmax(hi, u);
        const double z = mu_rng_normal(7, 2, (uint64_t)i);
        sum += z;
        sum2 += z * z;
    }
    cr_expect(lo > 0.0 && hi < 1.0);
    /* Mean and variance of n normals: standard errors 1/sqrt(n) and sqrt(2/n); 5 sigma. */
    cr_expect_leq(fabs(sum / n), 5.0 / sqrt(n));
    cr_expect_leq(fabs(sum2 / n - 1.0), 5.0 * sqrt(2.0 / n));
}

Test(fault, parse_and_fire)
{
    cr_assert_eq(mu_faults_parse("nan-grad:param=w1:step=3,stall:rank=2:ms=250,bitflip:times=2"),
                 MU_OK, "%s", mu_error_message());
    cr_expect(mu_faults_armed);
    cr_expect_eq(mu_faults_count(), 3);
    /* A gradient fault fires at every match of its step; not at other steps or parameters. */
    cr_expect_null(mu_fault_fire(MU_FAULT_NAN_GRAD, 0, 2, "w1"));
    cr_expect_null(mu_fault_fire(MU_FAULT_NAN_GRAD, 0, 3, "w2"));
    cr_expect_not_null(mu_fault_fire(MU_FAULT_NAN_GRAD, 0, 3, "w1"));
    cr_expect_not_null(mu_fault_fire(MU_FAULT_NAN_GRAD, 1, 3, "w1"));
    /* An event fault fires once unless told, on its rank only, with its parameters. */
    cr_expect_null(mu_fault_fire(MU_FAULT_STALL, 1, 5, NULL));
    const mu_fault_t *stall = mu_fault_fire(MU_FAULT_STALL, 2, 5, NULL);
    cr_assert_not_null(stall);
    cr_expect_eq(stall->ms, 250);
    cr_expect_null(mu_fault_fire(MU_FAULT_STALL, 2, 6, NULL));
    cr_expect_not_null(mu_fault_fire(MU_FAULT_BITFLIP, 0, 1, NULL));
    cr_expect_not_null(mu_fault_fire(MU_FAULT_BITFLIP, 0, 1, NULL));
    cr_expect_null(mu_fault_fire(MU_FAULT_BITFLIP, 0, 1, NULL), "times=2 fired a third time");
    mu_faults_clear();
    cr_expect(!mu_faults_armed);
    cr_expect_null(mu_fault_fire(MU_FAULT_NAN_GRAD, 0, 3, "w1"));
}

Test(fault, bad_specs_name_the_item)
{
    static const struct {
        const char *spec, *message;
    } bad[] = {
        {"melt", "unknown fault 'melt'"},
        {"stall:ms", "'ms' is not key=value"},
        {"stall:rank=-1", "rank=-1 is not an integer >= 0"},
        {"kill:step=0", "step=0 is not an integer >= 1"},
        {"kill:colour=red", "unknown key 'colour'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_eq(mu_faults_parse(bad[i].spec), MU_ERR_INVALID, "%s", bad[i].spec);
        cr_expect_not_null(strstr(mu_error_message(), bad[i].message), "%s: %s", bad[i].spec,
                           mu_error_message());
        cr_expect(!mu_faults_armed, "a bad spec left faults armed");
    }
}
