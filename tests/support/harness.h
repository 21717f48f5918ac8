/*
 * Test support: matrices with known singular value decompositions and fp64 LAPACK error
 * measures. Failures inside the harness abort the calling Criterion test.
 */
#ifndef MU_TESTS_HARNESS_H
#define MU_TESTS_HARNESS_H

#include <stdint.h>

#include "kernels/orth.h"

/* G = U diag(sigma) V^T with sigma log-spaced over [1/kappa, 1] (sigma_0 = 1). */
typedef struct th_known {
    int64_t rows, cols, r;
    double *g;     /* rows x cols */
    double *u;     /* rows x r */
    double *sigma; /* r, descending */
    double *v;     /* cols x r */
} th_known_t;

void th_known_make(int64_t rows, int64_t cols, double kappa, uint64_t seed, th_known_t *out);
void th_known_free(th_known_t *m);

/* ||Q - U V^T||_2. */
double th_polar_error(const th_known_t *m, const double *q);

/* ||Q - U f(Sigma / scale) V^T||_2 for the schedule's scalar map f: how far the matrix
 * iteration strays from its own scalar model. */
double th_model_error(const th_known_t *m, const double *q, const mu_schedule_t *s, double scale);

/* ||a - b||_2 for two rows x cols matrices. */
double th_spectral_distance(const double *a, const double *b, int64_t rows, int64_t cols);

/* ||got - want||_F / ||want||_F over count values. */
double th_relative_error(const double *got, const double *want, int64_t count);

/* max |x_ij - y_ij| of two same-shape matrices, each on its own backend (read in fp64). */
double th_max_abs_difference(mu_backend_t *x_be, const mu_mat_t *x, mu_backend_t *y_be,
                             const mu_mat_t *y);

/* Runs one orthogonalization on the backend and returns Q (fp64, malloc'ed). */
double *th_orth(mu_backend_t *be, const mu_orth_opts_t *opts, const double *g, int64_t rows,
                int64_t cols, mu_orth_report_t *report);

/* Calls visit(name, G, rows, cols, ctx) for every recorded momentum in tests/data/momenta
 * (the .npy files, in name order, read as fp64); returns how many there were, at least one
 * (the test aborts otherwise). */
typedef void th_momentum_visit_fn(const char *name, const double *g, int64_t rows, int64_t cols,
                                  void *ctx);
int th_for_each_momentum(th_momentum_visit_fn *visit, void *ctx);

/* A backend for tests: "cpu" or "reference"; aborts the test if it cannot be created.
 * "cpu" stands for the fast host backend under test: MUOND_TEST_BACKEND=dnnl runs the same
 * suite on the dnnl backend (ctest's *_dnnl tests), against the same reference oracle. */
mu_backend_t *th_backend(const char *name);

#endif
