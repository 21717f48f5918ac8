/*
 * npytool: helper for the command-line tests.
 *   npytool spectrum G.npy ROWS COLS KAPPA SEED [POLAR.npy]
 *       G = U diag(s) V^T (s log-spaced over [1/KAPPA, 1]) as float64; optionally its exact
 *       polar factor U V^T as float64.
 *   npytool spd A.npy N KAPPA SEED
 *       A = U diag(s) U^T, symmetric positive definite, s as above, as float64.
 *   npytool distance A.npy B.npy
 *       prints ||A - B||_2 (LAPACK, fp64) on stdout.
 *   npytool poison G.npy ROWS COLS
 *       a float32 matrix with one NaN.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "core/npy.h"
#include "kernels/spectrum.h"

static int fail(mu_status_t status)
{
    mu_error_report(stderr, "npytool", status);
    return 1;
}

/* spd: argv is "spd A N KAPPA SEED", read as "spectrum A N N KAPPA SEED" with V = U. */
static int spectrum(int argc, char **argv, bool spd)
{
    if (argc < (spd ? 6 : 7))
        return fprintf(stderr, "npytool spectrum G.npy ROWS COLS KAPPA SEED [POLAR.npy]\n"
                               "npytool spd A.npy N KAPPA SEED\n"),
               2;
    const int shift = spd ? 1 : 0;
    const int64_t rows = atol(argv[3]), cols = atol(argv[4 - shift]), r = rows < cols ? rows : cols;
    const double kappa = atof(argv[5 - shift]);
    const uint64_t seed = strtoull(argv[6 - shift], NULL, 10);
    double *u = malloc(sizeof(double) * rows * r), *v = malloc(sizeof(double) * cols * r);
    double *s = malloc(sizeof(double) * r), *g = malloc(sizeof(double) * rows * cols);
    mu_status_t st = mu_host_random_orthonormal(rows, r, seed, 1, u);
    if (st == MU_OK)
        st = mu_host_random_orthonormal(cols, r, seed, spd ? 1 : 2, v);
    for (int64_t i = 0; i < r; i++)
        s[i] = r == 1 ? 1.0 : pow(kappa, -(double)i / (double)(r - 1));
    if (st == MU_OK)
        st = mu_host_compose_svd(rows, cols, r, u, s, v, g);
    if (st == MU_OK)
        st = mu_npy_write_matrix(argv[2], g, MU_NPY_F64, rows, cols);
    if (st == MU_OK && !spd && argc > 7) {
        for (int64_t i = 0; i < r; i++)
            s[i] = 1.0;
        st = mu_host_compose_svd(rows, cols, r, u, s, v, g);
        if (st == MU_OK)
            st = mu_npy_write_matrix(argv[7], g, MU_NPY_F64, rows, cols);
    }
    free(u);
    free(v);
    free(s);
    free(g);
    return st == MU_OK ? 0 : fail(st);
}

static int distance(int argc, char **argv)
{
    if (argc < 4)
        return fprintf(stderr, "npytool distance A.npy B.npy\n"), 2;
    double *a = NULL, *b = NULL;
    int64_t ra, ca, rb, cb;
    mu_status_t st = mu_npy_read_matrix(argv[2], &a, &ra, &ca);
    if (st == MU_OK)
        st = mu_npy_read_matrix(argv[3], &b, &rb, &cb);
    if (st == MU_OK && (ra != rb || ca != cb))
        st = mu_error(MU_ERR_INVALID, "shapes differ");
    double d = NAN;
    if (st == MU_OK) {
        for (int64_t i = 0; i < ra * ca; i++)
            a[i] -= b[i];
        st = mu_host_spectral_norm(a, ra, ca, &d);
    }
    free(a);
    free(b);
    if (st != MU_OK)
        return fail(st);
    printf("%.6e\n", d);
    return 0;
}

static int poison(int argc, char **argv)
{
    if (argc < 5)
        return fprintf(stderr, "npytool poison G.npy ROWS COLS\n"), 2;
    const int64_t rows = atol(argv[3]), cols = atol(argv[4]);
    float *g = malloc(sizeof(float) * rows * cols);
    for (int64_t i = 0; i < rows * cols; i++)
        g[i] = (float)(i % 5) - 2.0f;
    g[rows * cols / 2] = NAN;
    const mu_status_t st = mu_npy_write_matrix(argv[2], g, MU_NPY_F32, rows, cols);
    free(g);
    return st == MU_OK ? 0 : fail(st);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "spectrum") == 0)
        return spectrum(argc, argv, false);
    if (argc >= 2 && strcmp(argv[1], "spd") == 0)
        return spectrum(argc, argv, true);
    if (argc >= 2 && strcmp(argv[1], "distance") == 0)
        return distance(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "poison") == 0)
        return poison(argc, argv);
    fprintf(stderr, "usage: npytool spectrum|spd|distance|poison ...\n");
    return 2;
}
