/* core/: the error convention, log specs and the counter-based RNG. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

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
