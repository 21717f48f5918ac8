/*
 * fallback_check: the ScaLAPACK fallback (fallback/fallback.h), run collectively by whatever
 * group mpiexec starts (1..4 ranks: grids 1x1, 1x2, 1x3, 2x2), against the fp64 LAPACK
 * reference in one process (kernels/spectrum.h). With the argument "loopback" it runs without
 * MPI and checks the one-process LAPACK route the same way.
 *
 * Each case is owned by a different rank in turn, so that owners other than rank 0 scatter and
 * gather. The owner prints one line per case; the exit status is 1 if any check failed on any
 * rank.
 *
 * Tolerances. Two backward-stable fp64 solvers of the same problem agree to about
 * u * (the problem's condition number), u = 1.1e-16. For the polar factor of a full-rank G
 * that condition number is sigma_max / sigma_min = kappa; for the Gram route it is kappa^2
 * (the Gram matrix squares it); for the SPD roots it is cond(A). Each check allows
 * 1000 u cond (and never less than 1e-12): 1000 covers the dimension-dependent constants of
 * the SVD and eigen solvers at these sizes, and is still 4 to 6 orders of magnitude below what
 * a wrong answer (a transposed, unscaled or completed factor) would measure. The properties
 * that define the polar factor are checked directly too: Q^T Q = I on the retained rank, and
 * Q^T G symmetric positive semidefinite.
 */
#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <mpi.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fallback/fallback.h"
#include "kernels/orth.h"
#include "kernels/certificate.h"
#include "kernels/spectrum.h"

static const double UNIT_ROUNDOFF = DBL_EPSILON / 2;

typedef struct checker {
    mu_comm_t *comm;
    mu_fallback_t *fb;
    mu_backend_t *be; /* cpu: the fast path whose certificate must catch the bad cases */
    int rank, ranks, next_owner, failures;
} checker_t;

/* ---- matrices ---------------------------------------------------------------------------- */

/* rows x cols = U diag(sigma) V^T with random orthonormal U (rows x r), V (cols x r). */
static double *compose(int64_t rows, int64_t cols, int64_t r, const double *sigma, uint64_t seed)
{
    double *u = malloc(sizeof *u * (size_t)(rows * r)), *v = malloc(sizeof *v * (size_t)(cols * r));
    double *out = malloc(sizeof *out * (size_t)(rows * cols));
    if (!u || !v || !out || mu_host_random_orthonormal(rows, r, seed, 1, u) != MU_OK ||
        mu_host_random_orthonormal(cols, r, seed, 2, v) != MU_OK ||
        mu_host_compose_svd(rows, cols, r, u, sigma, v, out) != MU_OK) {
        fprintf(stderr, "fallback_check: cannot build a %lldx%lld matrix: %s\n", (long long)rows,
                (long long)cols, mu_error_message());
        exit(2);
    }
    free(u);
    free(v);
    return out;
}

/* sigma log-spaced over [1/kappa, 1]. */
static double *log_spaced(int64_t r, double kappa)
{
    double *s = malloc(sizeof *s * (size_t)r);
    for (int64_t i = 0; i < r; i++)
        s[i] = r == 1 ? 1.0 : pow(kappa, -(double)i / (double)(r - 1));
    return s;
}

static double *with_condition(int64_t rows, int64_t cols, double kappa, uint64_t seed)
{
    const int64_t r = rows < cols ? rows : cols;
    double *s = log_spaced(r, kappa), *g = compose(rows, cols, r, s, seed);
    free(s);
    return g;
}

/* ---- measures ---------------------------------------------------------------------------- */

static double frobenius(const double *a, int64_t count)
{
    double sum = 0.0;
    for (int64_t i = 0; i < count; i++)
        sum += a[i] * a[i];
    return sqrt(sum);
}

/* ||a - b||_F / ||b||_F */
static double relative_distance(const double *a, const double *b, int64_t count)
{
    double diff = 0.0;
    for (int64_t i = 0; i < count; i++)
        diff += (a[i] - b[i]) * (a[i] - b[i]);
    const double scale = frobenius(b, count);
    return sqrt(diff) / (scale > 0.0 ? scale : 1.0);
}

/* How far H = Q^T G is from symmetric positive semidefinite, relative to ||G||_F: the larger
 * of ||H - H^T||_F and minus the smallest eigenvalue of (H + H^T) / 2 (LAPACK dsyev). */
static double polar_defect(const double *q, const double *g, int64_t rows, int64_t cols)
{
    double *h = calloc((size_t)(cols * cols), sizeof *h), *w = malloc(sizeof *w * (size_t)cols);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)cols, (int)cols, (int)rows, 1.0, q,
                (int)cols, g, (int)cols, 0.0, h, (int)cols);
    double asym = 0.0;
    for (int64_t i = 0; i < cols; i++)
        for (int64_t j = 0; j < i; j++) {
            const double d = h[i * cols + j] - h[j * cols + i];
            asym += 2.0 * d * d;
            h[i * cols + j] = h[j * cols + i] = 0.5 * (h[i * cols + j] + h[j * cols + i]);
        }
    const lapack_int info = LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', (lapack_int)cols, h,
                                          (lapack_int)cols, w);
    const double smallest = info == 0 ? w[0] : -INFINITY; /* a failure must not pass */
    free(h);
    free(w);
    return fmax(sqrt(asym), -smallest) / frobenius(g, rows * cols);
}

/* ---- reporting --------------------------------------------------------------------------- */

static void verdict(checker_t *c, const char *name, const char *what, double value, double tol)
{
    const bool ok = value <= tol && isfinite(value);
    printf("fallback_check ranks %d: %-22s %-26s %.2e (tolerance %.1e) %s\n", c->ranks, name,
           what, value, tol, ok ? "ok" : "FAILED");
    c->failures += !ok;
}

static void expect_status(checker_t *c, const char *name, mu_status_t got, mu_status_t want)
{
    const bool ok = got == want;
    if (!ok || c->rank == 0)
        printf("fallback_check ranks %d: rank %d: %-22s status %s, expected %s%s%s %s\n",
               c->ranks, c->rank, name, mu_strerror(got), mu_strerror(want),
               got != MU_OK ? ": " : "", got != MU_OK ? mu_error_message() : "",
               ok ? "ok" : "FAILED");
    c->failures += !ok;
    mu_error_clear();
}

static int take_owner(checker_t *c)
{
    return c->next_owner++ % c->ranks;
}

/* ---- polar cases ------------------------------------------------------------------------- */

typedef struct polar_case {
    const char *name;
    int64_t rows, cols;
    double *g;
    double condition;    /* of the problem the route solves; sets the tolerance */
    int64_t expect_rank; /* -1: full */
    bool expect_gram;    /* with more than one rank */
} polar_case_t;

/* The optimizer's fast path (fp32 Polar Express, default schedule) on g, as the owner in a
 * step would run it, and its certificate's verdict (kernels/certificate.h); *truth says
 * whether the result is really out of band, from the fp64 SVD (mu_host_descent). */
typedef struct detection {
    mu_cert_t cert;
    mu_cert_verdict_t verdict;
    mu_host_descent_t truth;
    bool out_of_band;
} detection_t;

static bool run_fast_path(checker_t *c, const polar_case_t *pc, detection_t *d)
{
    mu_orth_opts_t o;
    mu_orth_opts_default(&o);
    mu_orth_plan_t *plan = NULL;
    mu_mat_t g = {0}, q = {0};
    mu_cert_limits_t limits;
    double *qh = malloc(sizeof *qh * (size_t)(pc->rows * pc->cols));
    bool ok = qh && mu_orth_plan_create(c->be, pc->rows, pc->cols, &o, &plan) == MU_OK &&
              mu_k_alloc(c->be, pc->rows, pc->cols, MU_DTYPE_F32, &g) == MU_OK &&
              mu_k_alloc(c->be, pc->rows, pc->cols, MU_DTYPE_F32, &q) == MU_OK &&
              mu_k_upload(c->be, pc->g, MU_DTYPE_F64, pc->cols, &g) == MU_OK &&
              mu_orth_execute(plan, &g, &q, NULL) == MU_OK &&
              mu_k_download(c->be, &q, qh, MU_DTYPE_F64, pc->cols) == MU_OK &&
              mu_host_descent(pc->g, qh, pc->rows, pc->cols, &d->truth) == MU_OK;
    if (ok) {
        mu_orth_plan_cert_limits(plan, &limits);
        const mu_status_t measured = mu_cert_measure(c->be, &g, &q, 0.0, &limits, NULL, &d->cert);
        d->verdict = measured == MU_ERR_NUMERIC ? MU_CERT_NONFINITE
                                                : mu_cert_judge(&d->cert, &limits, NULL, NULL);
        ok = measured == MU_OK || measured == MU_ERR_NUMERIC;
        d->out_of_band = !(d->truth.efficiency >= limits.descent) ||
                         !(d->truth.q_norm <= 1.0 + limits.overshoot);
    }
    if (!ok) /* the check itself could not run: that must not count as either verdict */
        printf("fallback_check: %s: the fast path could not run: %s FAILED\n", pc->name,
               mu_error_message());
    free(qh);
    mu_k_release(c->be, &g);
    mu_k_release(c->be, &q);
    mu_orth_plan_destroy(&plan);
    mu_error_clear();
    return ok;
}

/* The certificate must catch the fast result exactly when it is out of band. */
static void check_detection(checker_t *c, const polar_case_t *pc)
{
    detection_t d = {0};
    if (!run_fast_path(c, pc, &d)) {
        c->failures++;
        return;
    }
    const bool caught = d.verdict != MU_CERT_PASS;
    printf("fallback_check ranks %d: %-22s fast path: descent %.6f (bound %.6f), ||Q||_2 %.6f "
           "(estimate %.6f): %s, %s %s\n",
           c->ranks, pc->name, d.truth.efficiency, d.cert.descent_bound, d.truth.q_norm,
           d.cert.q_norm, mu_cert_verdict_name(d.verdict),
           d.out_of_band ? "out of band" : "within band",
           caught == d.out_of_band ? "ok" : "FAILED");
    c->failures += caught != d.out_of_band;
}

static void check_polar(checker_t *c, const polar_case_t *pc)
{
    const int owner = take_owner(c);
    const bool mine = c->rank == owner;
    const int64_t count = pc->rows * pc->cols;
    double *q = mine ? calloc((size_t)count, sizeof *q) : NULL;
    mu_fallback_report_t rep;
    mu_status_t status =
        mu_fallback_polar(c->fb, owner, pc->rows, pc->cols, mine ? pc->g : NULL, q, &rep);
    expect_status(c, pc->name, status, MU_OK);
    if (mine && status == MU_OK) {
        double *ref = malloc(sizeof *ref * (size_t)count);
        mu_host_polar(pc->g, pc->rows, pc->cols, ref);
        printf("fallback_check ranks %d: %-22s owner %d, grid %dx%d, route %s, rank %lld, "
               "%.3f s\n", c->ranks, pc->name, owner, rep.nprow, rep.npcol,
               mu_fallback_route_name(rep.route), (long long)rep.rank, rep.seconds);
        const double tol = fmax(1e-12, 1e3 * UNIT_ROUNDOFF * pc->condition);
        verdict(c, pc->name, "distance to LAPACK", relative_distance(q, ref, count), tol);
        verdict(c, pc->name, "Q^T G not SPSD", polar_defect(q, pc->g, pc->rows, pc->cols), 1e-12);
        const int64_t short_side = pc->rows < pc->cols ? pc->rows : pc->cols;
        const int64_t want_rank = pc->expect_rank < 0 ? short_side : pc->expect_rank;
        if (rep.route != MU_FALLBACK_LAPACK)
            verdict(c, pc->name, "rank kept minus expected",
                    fabs((double)(rep.rank - want_rank)), 0.0);
        if (rep.route != MU_FALLBACK_LAPACK)
            verdict(c, pc->name, "Gram route as expected",
                    (rep.route == MU_FALLBACK_GRAM_EIGEN) != pc->expect_gram, 0.0);
        free(ref);
        check_detection(c, pc);
    }
    free(q);
}

/* Twice the same input: the same bits (repeatable BLACS combines). */
static void check_repeatable(checker_t *c, const polar_case_t *pc)
{
    const int owner = take_owner(c);
    const bool mine = c->rank == owner;
    const int64_t count = pc->rows * pc->cols;
    double *first = mine ? malloc(sizeof *first * (size_t)count) : NULL;
    double *second = mine ? malloc(sizeof *second * (size_t)count) : NULL;
    const double *g = mine ? pc->g : NULL;
    expect_status(c, "repeatable (1)",
                  mu_fallback_polar(c->fb, owner, pc->rows, pc->cols, g, first, NULL), MU_OK);
    expect_status(c, "repeatable (2)",
                  mu_fallback_polar(c->fb, owner, pc->rows, pc->cols, g, second, NULL), MU_OK);
    if (mine)
        verdict(c, pc->name, "run-to-run differing bits",
                memcmp(first, second, sizeof *first * (size_t)count) != 0, 0.0);
    free(first);
    free(second);
}

/* A polar case: rows x cols with r singular values, `tiny` of them (the last) at 1e-9 apart
 * by relative 1e-12 (near-duplicates far below l), the rest log-spaced over [1/kappa, 1]. */
static double *with_tiny(int64_t rows, int64_t cols, int64_t tiny, double kappa, uint64_t seed)
{
    const int64_t r = rows < cols ? rows : cols;
    double *s = log_spaced(r, kappa);
    for (int64_t i = r - tiny; i < r; i++)
        s[i] = 1e-9 * (1.0 - 1e-12 * (double)(i - (r - tiny)));
    double *g = compose(rows, cols, r, s, seed);
    free(s);
    return g;
}

/*
 * Hard inputs for both sides: the fallback must reproduce LAPACK's answer on each, and the
 * fast path's certificate (fp32 Polar Express, default schedule) must pass its result exactly
 * when the result is within band by the fp64 truth (check_detection). Polar Express reaches
 * every one of these within band (the directions it leaves unreached carry little of the
 * nuclear norm), so a certificate that fails any of them is a false alarm; the out-of-band
 * side, results that are really wrong, is tests/unit/test_certificate.c.
 */
static void polar_cases(checker_t *c)
{
    double *s40 = log_spaced(40, 1e2); /* rank-deficient: 40 of 150 directions */
    polar_case_t cases[] = {
        {"square kappa 1e8", 300, 300, with_condition(300, 300, 1e8, 1), 1e8, -1, false},
        {"tall kappa 1e2", 520, 130, with_condition(520, 130, 1e2, 2), 1e4, -1, true},
        {"wide kappa 1e2", 130, 520, with_condition(130, 520, 1e2, 3), 1e4, -1, true},
        {"tall kappa 1e6", 520, 130, with_condition(520, 130, 1e6, 4), 1e6, -1, false},
        {"rank 40 of 150", 200, 150, compose(200, 150, 40, s40, 5), 1e2, 40, false},
        {"24 tiny sigmas", 200, 160, with_tiny(200, 160, 24, 10, 6), 1e9, -1, false},
        {"near-duplicate tiny", 170, 150, with_tiny(170, 150, 40, 1e3, 10), 1e9, -1, false},
        {"outlier row x 1e6", 256, 192, with_condition(256, 192, 10, 7), 1e7, -1, false},
        {"one column", 65, 1, with_condition(65, 1, 1, 8), 1, -1, true},
        {"one by one", 1, 1, with_condition(1, 1, 1, 9), 1, -1, false},
    };
    polar_case_t *outlier = &cases[7];
    for (int64_t j = 0; j < outlier->cols; j++)
        outlier->g[17 * outlier->cols + j] *= 1e6;
    const int count = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < count; i++)
        check_polar(c, &cases[i]);
    check_repeatable(c, &cases[0]);
    for (int i = 0; i < count; i++)
        free(cases[i].g);
    free(s40);
}

/* ---- SPD roots --------------------------------------------------------------------------- */

typedef struct spd_case {
    const char *name;
    int64_t n, k;
    int p;
    bool identity; /* b = NULL */
    double *a, *b;
    double condition;
} spd_case_t;

static void check_spd(checker_t *c, const spd_case_t *sc)
{
    const int owner = take_owner(c);
    const bool mine = c->rank == owner;
    const int64_t count = sc->n * sc->k;
    double *y = mine ? calloc((size_t)count, sizeof *y) : NULL;
    const double *b = sc->identity ? NULL : sc->b;
    mu_fallback_report_t rep;
    mu_status_t status = mu_fallback_spd_inv_root(c->fb, owner, sc->n, sc->k, mine ? sc->a : NULL,
                                                  mine ? b : NULL, sc->p, y, &rep);
    expect_status(c, sc->name, status, MU_OK);
    if (mine && status == MU_OK) {
        double *ref = malloc(sizeof *ref * (size_t)count);
        mu_host_spd_inv_root(sc->a, b, sc->n, sc->k, sc->p, ref);
        printf("fallback_check ranks %d: %-22s owner %d, grid %dx%d, route %s, %.3f s\n",
               c->ranks, sc->name, owner, rep.nprow, rep.npcol, mu_fallback_route_name(rep.route),
               rep.seconds);
        verdict(c, sc->name, "distance to LAPACK", relative_distance(y, ref, count),
                fmax(1e-12, 1e3 * UNIT_ROUNDOFF * sc->condition));
        free(ref);
    }
    free(y);
}

static void spd_cases(checker_t *c)
{
    const int64_t n = 150, k = 70;
    double *lambda = log_spaced(n, 1e4);
    double *u = malloc(sizeof *u * (size_t)(n * n));
    mu_host_random_orthonormal(n, n, 11, 1, u);
    double *spd = malloc(sizeof *spd * (size_t)(n * n));
    mu_host_compose_svd(n, n, n, u, lambda, u, spd); /* U diag(lambda) U^T */
    lambda[n / 2] = -lambda[n / 2];                   /* one negative eigenvalue */
    double *indefinite = malloc(sizeof *indefinite * (size_t)(n * n));
    mu_host_compose_svd(n, n, n, u, lambda, u, indefinite);
    double *b = with_condition(n, k, 10, 12);
    spd_case_t cases[] = {
        {"A^-1 B (Cholesky)", n, k, 1, false, spd, b, 1e4},
        {"A^-1/2 B", n, k, 2, false, spd, b, 1e4},
        {"A^-1/4 B", n, k, 4, false, spd, b, 1e4},
        {"A^-1/2 (identity)", n, n, 2, true, spd, NULL, 1e4},
        {"indefinite A^-1 B (LU)", n, k, 1, false, indefinite, b, 1e4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_spd(c, &cases[i]);

    /* p = 2 of an indefinite A has no real answer: every rank must say so */
    const int owner = take_owner(c);
    const bool mine = c->rank == owner;
    double *y = mine ? malloc(sizeof *y * (size_t)(n * k)) : NULL;
    expect_status(c, "indefinite A^-1/2 B",
                  mu_fallback_spd_inv_root(c->fb, owner, n, k, mine ? indefinite : NULL,
                                           mine ? b : NULL, 2, y, NULL),
                  MU_ERR_NUMERIC);
    expect_status(c, "p = 3 refused", mu_fallback_spd_inv_root(c->fb, 0, n, k, spd, b, 3, y, NULL),
                  MU_ERR_INVALID);
    expect_status(c, "0 x 5 polar refused", mu_fallback_polar(c->fb, 0, 0, 5, spd, y, NULL),
                  MU_ERR_INVALID);
    free(y);
    free(lambda);
    free(u);
    free(spd);
    free(indefinite);
    free(b);
}

static int finish(checker_t *c)
{
    int64_t failures = c->failures;
    mu_comm_allreduce(c->comm, &failures, 1, MU_COMM_I64, MU_COMM_SUM);
    if (c->rank == 0)
        printf("fallback_check ranks %d: %lld failed check(s)\n", c->ranks, (long long)failures);
    return failures == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    const bool loopback = argc > 1 && strcmp(argv[1], "loopback") == 0;
    if (!loopback)
        MPI_Init(&argc, &argv);
    checker_t c = {0};
    if (mu_comm_create(loopback ? "loopback" : "mpi", &c.comm) != MU_OK ||
        mu_fallback_create(c.comm, &c.fb) != MU_OK) {
        fprintf(stderr, "fallback_check: cannot start: %s\n", mu_error_message());
        return 2;
    }
    if (mu_backend_create("cpu", &c.be) != MU_OK) {
        fprintf(stderr, "fallback_check: no cpu backend: %s\n", mu_error_message());
        return 2;
    }
    c.rank = mu_comm_rank(c.comm);
    c.ranks = mu_comm_size(c.comm);
    polar_cases(&c);
    spd_cases(&c);
    const int exit_status = finish(&c);
    mu_fallback_destroy(&c.fb);
    mu_backend_destroy(&c.be);
    mu_comm_destroy(&c.comm);
    if (!loopback)
        MPI_Finalize();
    return exit_status;
}
