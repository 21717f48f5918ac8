/* Shared pieces of the muond bench subcommands. */
#ifndef MU_LAUNCHER_BENCH_H
#define MU_LAUNCHER_BENCH_H

#include "core/status.h"

/* Minimum timed repetitions: a median of fewer says little on a shared machine. */
enum { MU_BENCH_MIN_RUNS = 5 };

double mu_bench_median(double *values, int count); /* sorts values in place */
mu_status_t mu_bench_parse_shape(const char *text, long *rows, long *cols);

/* The numpy peer of bench kernels (launcher/bench_peer.c, bench/polar_express_numpy.py):
 * the paper's Polar Express on the same shape, T, seed and BLAS threads. */
typedef struct mu_bench_peer_args {
    long rows, cols, runs, warmup, seed;
    int iters, threads;
    const char *dtype; /* "fp32" or "fp64" */
} mu_bench_peer_args_t;
typedef struct mu_bench_peer {
    double ms, max_sigma_error;
} mu_bench_peer_t;
mu_status_t mu_bench_numpy_peer(const mu_bench_peer_args_t *args, mu_bench_peer_t *out);

int mu_bench_kernels(int argc, char **argv);
int mu_bench_step(int argc, char **argv);
int mu_bench_fallback(int argc, char **argv);
int mu_bench_trainer(int argc, char **argv);

#endif
