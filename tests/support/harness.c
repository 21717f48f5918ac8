#include "tests/support/harness.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/npy.h"
#include "kernels/spectrum.h"

#ifndef MU_TEST_DATA
#error "MU_TEST_DATA must name tests/data"
#endif

static void *checked_malloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    cr_assert_not_null(p, "out of memory (%zu bytes)", bytes);
    return p;
}

void th_known_make(int64_t rows, int64_t cols, double kappa, uint64_t seed, th_known_t *out)
{
    const int64_t r = rows < cols ? rows : cols;
    *out = (th_known_t){.rows = rows, .cols = cols, .r = r};
    out->g = checked_malloc((size_t)(rows * cols) * sizeof(double));
    out->u = checked_malloc((size_t)(rows * r) * sizeof(double));
    out->v = checked_malloc((size_t)(cols * r) * sizeof(double));
    out->sigma = checked_malloc((size_t)r * sizeof(double));
    cr_assert_eq(mu_host_random_orthonormal(rows, r, seed, 1, out->u), MU_OK, "%s",
                 mu_error_message());
    cr_assert_eq(mu_host_random_orthonormal(cols, r, seed, 2, out->v), MU_OK, "%s",
                 mu_error_message());
    for (int64_t i = 0; i < r; i++)
        out->sigma[i] = r == 1 ? 1.0 : pow(kappa, -(double)i / (double)(r - 1));
    cr_assert_eq(mu_host_compose_svd(rows, cols, r, out->u, out->sigma, out->v, out->g), MU_OK);
}

void th_known_free(th_known_t *m)
{
    free(m->g);
    free(m->u);
    free(m->v);
    free(m->sigma);
    memset(m, 0, sizeof *m);
}

double th_relative_error(const double *got, const double *want, int64_t count)
{
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < count; i++) {
        num += (got[i] - want[i]) * (got[i] - want[i]);
        den += want[i] * want[i];
    }
    return sqrt(num / den);
}

double th_spectral_distance(const double *a, const double *b, int64_t rows, int64_t cols)
{
    double *d = checked_malloc((size_t)(rows * cols) * sizeof *d);
    for (int64_t i = 0; i < rows * cols; i++)
        d[i] = a[i] - b[i];
    double norm = NAN;
    cr_assert_eq(mu_host_spectral_norm(d, rows, cols, &norm), MU_OK, "%s", mu_error_message());
    free(d);
    return norm;
}

/* ||Q - U diag(target) V^T||_2. */
static double distance_to(const th_known_t *m, const double *q, const double *target)
{
    double *ref = checked_malloc((size_t)(m->rows * m->cols) * sizeof *ref);
    cr_assert_eq(mu_host_compose_svd(m->rows, m->cols, m->r, m->u, target, m->v, ref), MU_OK);
    const double d = th_spectral_distance(q, ref, m->rows, m->cols);
    free(ref);
    return d;
}

double th_polar_error(const th_known_t *m, const double *q)
{
    double *ones = checked_malloc((size_t)m->r * sizeof *ones);
    for (int64_t i = 0; i < m->r; i++)
        ones[i] = 1.0;
    const double d = distance_to(m, q, ones);
    free(ones);
    return d;
}

double th_model_error(const th_known_t *m, const double *q, const mu_schedule_t *s, double scale)
{
    double *target = checked_malloc((size_t)m->r * sizeof *target);
    for (int64_t i = 0; i < m->r; i++)
        target[i] = mu_schedule_eval(s, m->sigma[i] / scale);
    const double d = distance_to(m, q, target);
    free(target);
    return d;
}

double *th_orth(mu_backend_t *be, const mu_orth_opts_t *opts, const double *g, int64_t rows,
                int64_t cols, mu_orth_report_t *report)
{
    mu_orth_plan_t *plan = NULL;
    cr_assert_eq(mu_orth_plan_create(be, rows, cols, opts, &plan), MU_OK, "plan: %s",
                 mu_error_message());
    mu_mat_t dg, dq;
    cr_assert_eq(mu_k_alloc(be, rows, cols, opts->dtype, &dg), MU_OK);
    cr_assert_eq(mu_k_alloc(be, rows, cols, opts->dtype, &dq), MU_OK);
    cr_assert_eq(mu_k_upload(be, g, MU_DTYPE_F64, cols, &dg), MU_OK);
    cr_assert_eq(mu_orth_execute(plan, &dg, &dq, report), MU_OK, "orth: %s", mu_error_message());
    double *q = checked_malloc((size_t)(rows * cols) * sizeof *q);
    cr_assert_eq(mu_k_download(be, &dq, q, MU_DTYPE_F64, cols), MU_OK);
    mu_k_release(be, &dg);
    mu_k_release(be, &dq);
    mu_orth_plan_destroy(&plan);
    return q;
}

double th_max_abs_difference(mu_backend_t *x_be, const mu_mat_t *x, mu_backend_t *y_be,
                             const mu_mat_t *y)
{
    const size_t n = (size_t)(x->rows * x->cols);
    double *a = checked_malloc((n + 1) * sizeof *a), *b = checked_malloc((n + 1) * sizeof *b);
    cr_assert_eq(mu_k_download(x_be, x, a, MU_DTYPE_F64, x->cols), MU_OK);
    cr_assert_eq(mu_k_download(y_be, y, b, MU_DTYPE_F64, y->cols), MU_OK);
    double worst = 0.0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(a[i] - b[i]));
    free(a);
    free(b);
    return worst;
}

mu_backend_t *th_backend(const char *name)
{
    const char *under_test = getenv("MUOND_TEST_BACKEND");
    if (strcmp(name, "cpu") == 0 && under_test && *under_test)
        name = under_test;
    mu_backend_t *be = NULL;
    cr_assert_eq(mu_backend_create(name, &be), MU_OK, "backend %s: %s", name, mu_error_message());
    return be;
}

static int npy_only(const struct dirent *e)
{
    const size_t n = strlen(e->d_name);
    return n > 4 && strcmp(e->d_name + n - 4, ".npy") == 0;
}

int th_for_each_momentum(th_momentum_visit_fn *visit, void *ctx)
{
    const char *dir = MU_TEST_DATA "/momenta";
    struct dirent **names = NULL;
    const int count = scandir(dir, &names, npy_only, alphasort);
    cr_assert_gt(count, 0, "no recorded momenta in %s", dir);
    for (int i = 0; i < count; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        double *g = NULL;
        int64_t rows, cols;
        cr_assert_eq(mu_npy_read_matrix(path, &g, &rows, &cols), MU_OK, "%s", mu_error_message());
        visit(names[i]->d_name, g, rows, cols, ctx);
        free(g);
        free(names[i]);
    }
    free(names);
    return count;
}
