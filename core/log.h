/*
 * Logging by level and subsystem. Every line carries the elapsed time, the rank and the step:
 *
 *   [   0.153s r0 s12] INFO  kernels: backend cpu (OpenBLAS 0.3.21, 2 threads)
 *
 * MU_LOG tests the level before evaluating its arguments, so a filtered-out line costs one
 * comparison and formats nothing. The logger is process-wide state (like stderr itself):
 * configure it once at start, before other threads exist.
 */
#ifndef MU_CORE_LOG_H
#define MU_CORE_LOG_H

#include <stdbool.h>

#include "core/status.h"

typedef enum mu_log_level {
    MU_LOG_ERROR = 0,
    MU_LOG_WARN,
    MU_LOG_INFO,
    MU_LOG_DEBUG,
    MU_LOG_LEVEL_COUNT
} mu_log_level_t;

typedef enum mu_subsys {
    MU_SUB_CORE = 0,
    MU_SUB_KERNELS,
    MU_SUB_COMM,
    MU_SUB_SHARD,
    MU_SUB_FALLBACK,
    MU_SUB_LAUNCHER,
    MU_SUB_CLIENT,
    MU_SUB_COUNT
} mu_subsys_t;

/* Applies a spec such as "info", "warn,kernels=debug" or "debug,core=info".
 * A bare level sets every subsystem; name=level overrides one. */
mu_status_t mu_log_configure(const char *spec);

/* Applies MUOND_LOG (core/knobs.h), strictly: a bad spec is an error (MU_ERR_INVALID).
 * Programs that do not call it get MUOND_LOG applied at their first log line, leniently. */
mu_status_t mu_log_configure_environment(void);

void mu_log_set_rank(int rank);
void mu_log_set_step(long step); /* negative: outside any step, printed as "s-" */

bool mu_log_enabled(mu_log_level_t level, mu_subsys_t subsys);

void mu_log_write(mu_log_level_t level, mu_subsys_t subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define MU_LOG(level, subsys, ...)                                                                 \
    do {                                                                                           \
        if (mu_log_enabled((level), (subsys)))                                                     \
            mu_log_write((level), (subsys), __VA_ARGS__);                                          \
    } while (0)

#endif
