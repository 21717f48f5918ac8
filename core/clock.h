/* The one monotonic clock the daemon times itself with (phases, benchmarks, deadlines). */
#ifndef MU_CORE_CLOCK_H
#define MU_CORE_CLOCK_H

#include <time.h>

/* Seconds since an arbitrary fixed point; only differences mean anything. */
static inline double mu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#endif
