/* Shared pieces of the muond bench subcommands. */
#ifndef MU_LAUNCHER_BENCH_H
#define MU_LAUNCHER_BENCH_H

#include "core/status.h"

/* Minimum timed repetitions: a median of fewer says little on a shared machine. */
enum { MU_BENCH_MIN_RUNS = 5 };

double mu_bench_median(double *values, int count); /* sorts values in place */
mu_status_t mu_bench_parse_shape(const char *text, long *rows, long *cols);

int mu_bench_kernels(int argc, char **argv);
int mu_bench_step(int argc, char **argv);
int mu_bench_fallback(int argc, char **argv);
int mu_bench_trainer(int argc, char **argv);

#endif
