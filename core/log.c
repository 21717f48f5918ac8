#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/knobs.h"

static const char *const level_names[MU_LOG_LEVEL_COUNT] = {"ERROR", "WARN", "INFO", "DEBUG"};
static const char *const subsys_names[MU_SUB_COUNT] = {
    "core", "kernels", "comm", "shard", "fallback", "launcher", "client",
};

/* Process-wide logger state; see the header for why this one global is acceptable. */
static struct {
    mu_log_level_t threshold[MU_SUB_COUNT];
    int rank;
    long step;
    struct timespec start;
    bool started;
    bool configured; /* MUOND_LOG read */
} logger = {
    .threshold = {MU_LOG_INFO, MU_LOG_INFO, MU_LOG_INFO, MU_LOG_INFO, MU_LOG_INFO, MU_LOG_INFO,
                  MU_LOG_INFO},
    .rank = 0,
    .step = -1,
};

static int parse_level(const char *text, size_t len, mu_log_level_t *out)
{
    for (int i = 0; i < MU_LOG_LEVEL_COUNT; i++) {
        if (strlen(level_names[i]) == len && strncasecmp(text, level_names[i], len) == 0) {
            *out = (mu_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

static int parse_subsys(const char *text, size_t len, mu_subsys_t *out)
{
    for (int i = 0; i < MU_SUB_COUNT; i++) {
        if (strlen(subsys_names[i]) == len && strncmp(text, subsys_names[i], len) == 0) {
            *out = (mu_subsys_t)i;
            return 0;
        }
    }
    return -1;
}

/* One comma-separated item: "level" or "subsystem=level". */
static mu_status_t apply_item(const char *item, size_t len, mu_log_level_t next[MU_SUB_COUNT])
{
    const char *eq = memchr(item, '=', len);
    mu_log_level_t level;
    if (!eq) {
        if (parse_level(item, len, &level) != 0)
            return mu_error(MU_ERR_INVALID, "log spec: unknown level '%.*s'", (int)len, item);
        for (int s = 0; s < MU_SUB_COUNT; s++)
            next[s] = level;
        return MU_OK;
    }
    mu_subsys_t subsys;
    size_t name_len = (size_t)(eq - item);
    if (parse_subsys(item, name_len, &subsys) != 0)
        return mu_error(MU_ERR_INVALID, "log spec: unknown subsystem '%.*s'", (int)name_len, item);
    if (parse_level(eq + 1, len - name_len - 1, &level) != 0)
        return mu_error(MU_ERR_INVALID, "log spec: unknown level in '%.*s'", (int)len, item);
    next[subsys] = level;
    return MU_OK;
}

mu_status_t mu_log_configure(const char *spec)
{
    mu_log_level_t next[MU_SUB_COUNT];
    memcpy(next, logger.threshold, sizeof next);
    for (const char *p = spec; p && *p;) {
        size_t len = strcspn(p, ",");
        if (len > 0)
            MU_CHECK(apply_item(p, len, next));
        p += len;
        if (*p == ',')
            p++;
    }
    memcpy(logger.threshold, next, sizeof next);
    logger.configured = true;
    return MU_OK;
}

void mu_log_set_rank(int rank)
{
    logger.rank = rank;
}

void mu_log_set_step(long step)
{
    logger.step = step;
}

mu_status_t mu_log_configure_environment(void)
{
    logger.configured = true;
    const char *spec = mu_knob(MU_KNOB_LOG);
    return spec ? mu_log_configure(spec) : MU_OK;
}

/* Every program linking muond honours MUOND_LOG without calling anything: the first log
 * test applies it (at start-up, before threads exist). A bad spec is reported once and the
 * defaults stay. */
static void configure_from_environment(void)
{
    if (mu_log_configure_environment() != MU_OK)
        fprintf(stderr, "muond: ignoring %s: %s\n", mu_knob_env(MU_KNOB_LOG), mu_error_message());
}

bool mu_log_enabled(mu_log_level_t level, mu_subsys_t subsys)
{
    if (!logger.configured)
        configure_from_environment();
    return level <= logger.threshold[subsys];
}

static double elapsed_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (!logger.started) {
        logger.start = now;
        logger.started = true;
    }
    return (double)(now.tv_sec - logger.start.tv_sec) +
           1e-9 * (double)(now.tv_nsec - logger.start.tv_nsec);
}

void mu_log_write(mu_log_level_t level, mu_subsys_t subsys, const char *fmt, ...)
{
    char step[24] = "-";
    if (logger.step >= 0)
        snprintf(step, sizeof step, "%ld", logger.step);

    /* Format the whole line first so concurrent writers never interleave within a line. */
    char line[2048];
    int used = snprintf(line, sizeof line, "[%9.3fs r%d s%s] %-5s %s: ", elapsed_seconds(),
                        logger.rank, step, level_names[level], subsys_names[subsys]);
    va_list args;
    va_start(args, fmt);
    if (used > 0 && (size_t)used < sizeof line)
        vsnprintf(line + used, sizeof line - (size_t)used, fmt, args);
    va_end(args);
    fprintf(stderr, "%s\n", line);
}
