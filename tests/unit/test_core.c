/* core/: the error convention, log specs, the environment knobs, the counter-based RNG and
 * the fault table. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include <stdlib.h>

#include "core/fault.h"
#include "core/knobs.h"
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

/* What mu_error_report prints for status, as "prog". */
static void report_to(char *buf, size_t size, mu_status_t status)
{
    buf[0] = '\0';
    FILE *f = fmemopen(buf, size, "w");
    cr_assert_not_null(f);
    mu_error_report(f, "prog", status);
    fclose(f);
}

Test(status, message_and_trail)
{
    cr_expect_eq(outer(), MU_ERR_IO);
    cr_expect_str_eq(mu_error_message(), "disk on fire (42)");
    char buf[1024];
    report_to(buf, sizeof buf, MU_ERR_IO);
    cr_expect_not_null(strstr(buf, "prog: IO: disk on fire (42)"), "%s", buf);
    cr_expect_not_null(strstr(buf, "test_core.c"), "trail lacks the frame: %s", buf);
    mu_error_clear();
    cr_expect_str_eq(mu_error_message(), "");
}

static int calls;

static mu_status_t counted(mu_status_t result)
{
    calls++;
    return result == MU_OK ? MU_OK : mu_error(result, "link %d failed", calls);
}

/* MU_TRY runs links only while the chain is OK, and a failed link leaves its frame. */
Test(status, try_stops_at_the_first_failure_and_leaves_a_frame)
{
    calls = 0;
    mu_status_t status = MU_OK;
    MU_TRY(status, counted(MU_OK));
    MU_TRY(status, counted(MU_ERR_NUMERIC));
    MU_TRY(status, counted(MU_OK)); /* skipped */
    cr_expect_eq(status, MU_ERR_NUMERIC);
    cr_expect_eq(calls, 2, "links after the failure ran: %d calls", calls);
    cr_expect_str_eq(mu_error_message(), "link 2 failed");
    char buf[1024];
    report_to(buf, sizeof buf, status);
    cr_expect_not_null(strstr(buf, "-> NUMERIC (counted(MU_ERR_NUMERIC))"), "%s", buf);
    cr_expect_null(strstr(buf, "counted(MU_OK)"), "a link that passed left a frame: %s", buf);
    mu_error_clear();
}

/* A first failure survives a second one met in cleanup, message and trail. */
Test(status, save_and_restore_keep_the_first_failure)
{
    cr_expect_eq(outer(), MU_ERR_IO);
    mu_error_saved_t saved;
    mu_error_save(MU_ERR_IO, &saved);
    (void)mu_error(MU_ERR_NOMEM, "cleanup went wrong too");
    cr_expect_eq(mu_error_restore(&saved), MU_ERR_IO);
    cr_expect_str_eq(mu_error_message(), "disk on fire (42)");
    char buf[1024];
    report_to(buf, sizeof buf, MU_ERR_IO);
    cr_expect_not_null(strstr(buf, "test_core.c"), "the restored trail lost its frame: %s", buf);
    mu_error_clear();
}

/* Every knob has a name, values, default and help; set means set and not empty; the help
 * and the dump come from the one table. */
Test(knobs, one_table_for_help_dump_and_reading)
{
    for (int i = 0; i < MU_KNOB_COUNT; i++) {
        const mu_knob_t *k = mu_knob_info((mu_knob_id_t)i);
        cr_expect(k->env && strncmp(k->env, "MUOND_", 6) == 0, "knob %d: %s", i, k->env);
        cr_expect(k->values && *k->values && k->fallback && *k->fallback && k->help && *k->help,
                  "%s lacks its values, default or help", k->env);
        cr_expect_str_eq(mu_knob_env((mu_knob_id_t)i), k->env);
    }
    cr_expect_str_eq(mu_knob_env(MU_KNOB_JOB), "MUOND_JOB");
    setenv("MUOND_JOB", "", 1);
    cr_expect_null(mu_knob(MU_KNOB_JOB), "an empty variable counts as unset");
    setenv("MUOND_JOB", "nightly", 1);
    cr_expect_str_eq(mu_knob(MU_KNOB_JOB), "nightly");
    char help[8192] = "", dump[1024] = "";
    FILE *f = fmemopen(help, sizeof help, "w");
    mu_knobs_print_help(f);
    fclose(f);
    for (int i = 0; i < MU_KNOB_COUNT; i++)
        cr_expect_not_null(strstr(help, mu_knob_info((mu_knob_id_t)i)->env), "%s", help);
    cr_expect_not_null(strstr(help, "/usr/bin/python3)"), "MUOND_PYTHON's default: %s", help);
    unsetenv("MUOND_GRAPHS");
    f = fmemopen(dump, sizeof dump, "w");
    mu_knobs_dump(f);
    fclose(f);
    cr_expect_not_null(strstr(dump, "MUOND_JOB"), "a set knob is missing from the dump: %s", dump);
    cr_expect_null(strstr(dump, "MUOND_GRAPHS"), "an unset knob was dumped: %s", dump);
    unsetenv("MUOND_JOB");
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
