/* Shared pieces of the muond bench subcommands. */
#ifndef MU_LAUNCHER_BENCH_H
#define MU_LAUNCHER_BENCH_H

#include "core/status.h"

/* Minimum timed repetitions: a median of fewer says little on a shared machine. */
enum { MU_BENCH_MIN_RUNS = 5 };

double mu_bench_median(double *values, int count); /* sorts values in place */
mu_status_t mu_bench_parse_shape(const char *text, long *rows, long *cols);

/* The numpy peer of bench kernels (launcher/bench_peer.c, bench/polar_express_numpy.py):
 * the paper's Polar Express on the same shape, T, seed and BLAS threads, in a process that
 * times one call per request, so that its runs alternate with muond's. */
typedef struct mu_bench_peer_args {
    long rows, cols, warmup, seed;
    int iters, threads;
    const char *dtype; /* "fp32" or "fp64" */
} mu_bench_peer_args_t;
typedef struct mu_bench_peer mu_bench_peer_t;
/* Starts the peer; it has generated its matrix and run its warm-up when this returns. */
mu_status_t mu_bench_peer_open(const mu_bench_peer_args_t *args, mu_bench_peer_t **out);
/* One timed call in the peer: its wall time in ms. */
mu_status_t mu_bench_peer_run(mu_bench_peer_t *peer, double *ms);
/* Ends the peer and sets *peer to NULL; with max_sigma_error, its last result's accuracy
 * (NULL: abandon it after an error). */
mu_status_t mu_bench_peer_close(mu_bench_peer_t **peer, double *max_sigma_error);

int mu_bench_kernels(int argc, char **argv);
int mu_bench_step(int argc, char **argv);
int mu_bench_fallback(int argc, char **argv);
int mu_bench_schedules(int argc, char **argv);
int mu_bench_trainer(int argc, char **argv);
int mu_bench_scaling(int argc, char **argv);
int mu_bench_roots(int argc, char **argv);

#endif
