/*
 * The cpu backend's operations against the reference backend's plain loops, op by op, for
 * both dtypes, both transpositions and a strided (ld > cols) view. Tolerance: the reference
 * accumulates in fp64, so fp32 results may differ by the fp32 rounding of k-term sums,
 * 8 k u_32 relative to the scale of the operands; fp64 by 8 k u_64.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "core/rng.h"
#include "kernels/host_view.h"
#include "tests/support/harness.h"

typedef struct pair {
    mu_backend_t *cpu, *ref;
} pair_t;

static pair_t backends(void)
{
    return (pair_t){th_backend("cpu"), th_backend("reference")};
}

static void release_pair(pair_t *p)
{
    mu_backend_destroy(&p->cpu);
    mu_backend_destroy(&p->ref);
}

/* Allocates the same random rows x cols matrix on both backends. */
static void twin(pair_t *p, int64_t rows, int64_t cols, mu_dtype_t dt, uint64_t stream,
                 mu_mat_t *on_cpu, mu_mat_t *on_ref)
{
    double *host = malloc(sizeof(double) * (size_t)(rows * cols + 1));
    for (int64_t i = 0; i < rows * cols; i++)
        host[i] = mu_rng_normal(42, stream, (uint64_t)i);
    cr_assert_eq(mu_k_alloc(p->cpu, rows, cols, dt, on_cpu), MU_OK);
    cr_assert_eq(mu_k_alloc(p->ref, rows, cols, dt, on_ref), MU_OK);
    cr_assert_eq(mu_k_upload(p->cpu, host, MU_DTYPE_F64, cols, on_cpu), MU_OK);
    cr_assert_eq(mu_k_upload(p->ref, host, MU_DTYPE_F64, cols, on_ref), MU_OK);
    free(host);
}

static double max_difference(pair_t *p, const mu_mat_t *a, const mu_mat_t *b)
{
    return th_max_abs_difference(p->cpu, a, p->ref, b);
}

/* Largest |c_ij - c_ji| of square c. */
static double asymmetry(mu_backend_t *be, const mu_mat_t *c)
{
    const int64_t n = c->rows;
    double *x = malloc(sizeof(double) * (size_t)(n * n + 1));
    cr_assert_eq(mu_k_download(be, c, x, MU_DTYPE_F64, n), MU_OK);
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++)
            worst = fmax(worst, fabs(x[i * n + j] - x[j * n + i]));
    free(x);
    return worst;
}

static double tolerance(mu_dtype_t dt, int64_t k)
{
    return 8.0 * (double)k * mu_dtype_unit_roundoff(dt) *
           10.0; /* operands are O(1), sums O(sqrt k) */
}

Test(ops, gemm_all_transpositions)
{
    pair_t p = backends();
    for (int dt = 0; dt < 2; dt++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                const int64_t m = 13, n = 17, k = 29;
                mu_mat_t a1, a2, b1, b2, c1, c2;
                twin(&p, ta ? k : m, ta ? m : k, (mu_dtype_t)dt, 1, &a1, &a2);
                twin(&p, tb ? n : k, tb ? k : n, (mu_dtype_t)dt, 2, &b1, &b2);
                twin(&p, m, n, (mu_dtype_t)dt, 3, &c1, &c2);
                cr_assert_eq(mu_k_gemm(p.cpu, ta, tb, 0.7, &a1, &b1, -0.3, &c1), MU_OK);
                cr_assert_eq(mu_k_gemm(p.ref, ta, tb, 0.7, &a2, &b2, -0.3, &c2), MU_OK);
                cr_expect_leq(max_difference(&p, &c1, &c2), tolerance(dt, k), "dt %d ta %d tb %d",
                              dt, ta, tb);
                mu_mat_t *all[] = {&a1, &b1, &c1};
                mu_mat_t *all_ref[] = {&a2, &b2, &c2};
                for (int i = 0; i < 3; i++) {
                    mu_k_release(p.cpu, all[i]);
                    mu_k_release(p.ref, all_ref[i]);
                }
            }
    release_pair(&p);
}

Test(ops, syrk_symmetrize_and_elementwise)
{
    pair_t p = backends();
    for (int dt = 0; dt < 2; dt++)
        for (int t = 0; t < 2; t++) {
            mu_mat_t a1, a2, c1, c2;
            twin(&p, 11, 23, (mu_dtype_t)dt, 4, &a1, &a2);
            const int64_t n = t ? 23 : 11;
            twin(&p, n, n, (mu_dtype_t)dt, 5, &c1, &c2);
            /* beta != 0 needs a symmetric C on entry */
            cr_assert_eq(mu_k_symmetrize(p.cpu, &c1), MU_OK);
            cr_assert_eq(mu_k_symmetrize(p.ref, &c2), MU_OK);
            cr_assert_eq(mu_k_syrk(p.cpu, t, 1.3, &a1, 0.5, &c1), MU_OK);
            cr_assert_eq(mu_k_syrk(p.ref, t, 1.3, &a2, 0.5, &c2), MU_OK);
            cr_expect_eq(asymmetry(p.cpu, &c1), 0.0, "syrk leaves C symmetric (cpu)");
            cr_expect_eq(asymmetry(p.ref, &c2), 0.0, "syrk leaves C symmetric (reference)");
            cr_expect_leq(max_difference(&p, &c1, &c2), tolerance(dt, 23), "syrk dt %d t %d", dt,
                          t);
            cr_assert_eq(mu_k_add_identity(p.cpu, 2.0, &c1), MU_OK);
            cr_assert_eq(mu_k_add_identity(p.ref, 2.0, &c2), MU_OK);
            cr_assert_eq(mu_k_scale(p.cpu, -0.25, &c1), MU_OK);
            cr_assert_eq(mu_k_scale(p.ref, -0.25, &c2), MU_OK);
            double n1, n2, d1, d2;
            cr_assert_eq(mu_k_norm_frob(p.cpu, &c1, &n1), MU_OK);
            cr_assert_eq(mu_k_norm_frob(p.ref, &c2, &n2), MU_OK);
            cr_expect_leq(fabs(n1 - n2), 1e-5 * n2, "norm %g vs %g", n1, n2);
            cr_assert_eq(mu_k_dist_identity(p.cpu, &c1, &d1), MU_OK);
            cr_assert_eq(mu_k_dist_identity(p.ref, &c2, &d2), MU_OK);
            cr_expect_leq(fabs(d1 - d2), 1e-5 * d2);
            mu_k_release(p.cpu, &a1);
            mu_k_release(p.ref, &a2);
            mu_k_release(p.cpu, &c1);
            mu_k_release(p.ref, &c2);
        }
    release_pair(&p);
}

Test(ops, axpby_beta_zero_ignores_garbage)
{
    pair_t p = backends();
    mu_mat_t x1, x2, y1, y2;
    twin(&p, 5, 6, MU_DTYPE_F32, 6, &x1, &x2);
    twin(&p, 5, 6, MU_DTYPE_F32, 7, &y1, &y2);
    ((float *)y1.data)[3] = NAN;
    cr_assert_eq(mu_k_axpby(p.cpu, 2.0, &x1, 0.0, &y1), MU_OK);
    cr_assert_eq(mu_k_axpby(p.ref, 2.0, &x2, 0.0, &y2), MU_OK);
    cr_expect_eq(max_difference(&p, &y1, &y2), 0.0);
    int64_t bad = -1;
    cr_assert_eq(mu_k_count_nonfinite(p.cpu, &y1, &bad), MU_OK);
    cr_expect_eq(bad, 0);
    mu_k_release(p.cpu, &x1);
    mu_k_release(p.ref, &x2);
    mu_k_release(p.cpu, &y1);
    mu_k_release(p.ref, &y2);
    release_pair(&p);
}

/* A view into the middle of a larger allocation (ld > cols) is honoured by every BLAS call. */
Test(ops, strided_views)
{
    pair_t p = backends();
    mu_mat_t big1, big2, a1, a2, c1, c2;
    twin(&p, 12, 20, MU_DTYPE_F64, 8, &big1, &big2);
    twin(&p, 7, 7, MU_DTYPE_F64, 9, &c1, &c2);
    a1 = (mu_mat_t){7, 9, 20, MU_DTYPE_F64, (double *)big1.data + 2 * 20 + 3};
    a2 = (mu_mat_t){7, 9, 20, MU_DTYPE_F64, (double *)big2.data + 2 * 20 + 3};
    cr_assert_eq(mu_k_gemm(p.cpu, MU_NO_TRANS, MU_TRANS, 1.0, &a1, &a1, 0.0, &c1), MU_OK);
    cr_assert_eq(mu_k_gemm(p.ref, MU_NO_TRANS, MU_TRANS, 1.0, &a2, &a2, 0.0, &c2), MU_OK);
    cr_expect_leq(max_difference(&p, &c1, &c2), 1e-13);
    double n1, n2;
    cr_assert_eq(mu_k_norm_frob(p.cpu, &a1, &n1), MU_OK);
    cr_assert_eq(mu_k_norm_frob(p.ref, &a2, &n2), MU_OK);
    cr_expect_leq(fabs(n1 - n2), 1e-13 * n2);
    mu_k_release(p.cpu, &big1);
    mu_k_release(p.ref, &big2);
    mu_k_release(p.cpu, &c1);
    mu_k_release(p.ref, &c2);
    release_pair(&p);
}

Test(ops, wrappers_reject_inconsistent_arguments)
{
    mu_backend_t *be = th_backend("cpu");
    mu_mat_t a, b, c, d;
    cr_assert_eq(mu_k_alloc(be, 3, 4, MU_DTYPE_F32, &a), MU_OK);
    cr_assert_eq(mu_k_alloc(be, 5, 2, MU_DTYPE_F32, &b), MU_OK);
    cr_assert_eq(mu_k_alloc(be, 3, 2, MU_DTYPE_F64, &c), MU_OK);
    cr_assert_eq(mu_k_alloc(be, 3, 3, MU_DTYPE_F32, &d), MU_OK);
    cr_expect_eq(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1, &a, &b, 0, &c), MU_ERR_INVALID);
    cr_expect_eq(mu_k_gemm(be, MU_NO_TRANS, MU_TRANS, 1, &a, &a, 0, &d), MU_OK);
    cr_expect_eq(mu_k_gemm(be, MU_NO_TRANS, MU_TRANS, 1, &d, &d, 0, &d), MU_ERR_INVALID,
                 "aliased output");
    cr_expect_eq(mu_k_syrk(be, MU_NO_TRANS, 1, &a, 0, &c), MU_ERR_INVALID);
    cr_expect_eq(mu_k_symmetrize(be, &a), MU_ERR_INVALID, "not square");
    cr_expect_eq(mu_k_axpby(be, 1, &a, 1, &c), MU_ERR_INVALID);
    cr_expect_eq(mu_k_copy(be, &a, &b), MU_ERR_INVALID);
    cr_expect_eq(mu_k_norm_frob(be, &a, NULL), MU_ERR_INVALID);
    cr_expect_eq(mu_k_alloc(be, -1, 2, MU_DTYPE_F32, &a), MU_ERR_INVALID);
    mu_backend_t *none = NULL;
    cr_expect_eq(mu_backend_create("no-such-backend", &none), MU_ERR_INVALID);
    cr_expect_null(none);
    mu_k_release(be, &a);
    mu_k_release(be, &b);
    mu_k_release(be, &c);
    mu_k_release(be, &d);
    mu_backend_destroy(&be);
}

/* kernels/host_view.h on a host-memory backend: the matrix itself where it can be, else a
 * staged copy (another dtype, or a packed copy of a strided view) that is written back only
 * by mu_host_view_end, and only over the view's own elements. */
Test(host_view, in_place_staged_and_written_back)
{
    mu_backend_t *be = th_backend("cpu");
    mu_mat_t big;
    cr_assert_eq(mu_k_alloc(be, 4, 6, MU_DTYPE_F32, &big), MU_OK);
    float *cells = big.data;
    for (int i = 0; i < 24; i++)
        cells[i] = (float)i;
    mu_host_view_t v;
    cr_assert_eq(mu_host_view_begin(be, &big, MU_DTYPE_F32, MU_HOST_READ_WRITE, &v), MU_OK);
    cr_expect(!v.staged && v.data == big.data && v.ld == 6, "same dtype: the matrix itself");
    cr_assert_eq(mu_host_view_end(be, &v), MU_OK);

    /* fp64 view of the fp32 matrix: staged, converted both ways */
    cr_assert_eq(mu_host_view_begin(be, &big, MU_DTYPE_F64, MU_HOST_READ_WRITE, &v), MU_OK);
    cr_expect(v.staged && v.ld == 6);
    cr_expect_eq(((double *)v.data)[7], 7.0);
    ((double *)v.data)[7] = -1.5;
    mu_host_view_release(&v); /* dropped: the matrix keeps 7 */
    cr_expect_eq(cells[7], 7.0f);
    cr_assert_eq(mu_host_view_begin(be, &big, MU_DTYPE_F64, MU_HOST_READ_WRITE, &v), MU_OK);
    ((double *)v.data)[7] = -1.5;
    cr_assert_eq(mu_host_view_end(be, &v), MU_OK);
    cr_expect_eq(cells[7], -1.5f);
    cr_expect(v.data == NULL && !v.staged, "an ended view is empty");

    /* a 2 x 3 strided block, packed: a copy whose rows are contiguous; the neighbours stay */
    mu_mat_t block = {2, 3, 6, MU_DTYPE_F32, cells + 1 * 6 + 2}; /* rows 1-2, cols 2-4 */
    cr_assert_eq(
        mu_host_view_begin(be, &block, MU_DTYPE_F32, MU_HOST_READ_WRITE | MU_HOST_PACKED, &v),
        MU_OK);
    float *packed = v.data;
    cr_expect(v.staged && v.ld == 3, "a strided view asked for packed is copied");
    cr_expect_eq(packed[0], 8.0f);
    cr_expect_eq(packed[3], 14.0f);
    for (int i = 0; i < 6; i++)
        packed[i] = 100.0f + (float)i;
    cr_assert_eq(mu_host_view_end(be, &v), MU_OK);
    cr_expect_eq(cells[8], 100.0f);
    cr_expect_eq(cells[16], 105.0f);
    cr_expect_eq(cells[11], 11.0f, "a neighbour of the block changed");
    cr_expect_eq(cells[17], 17.0f, "a neighbour of the block changed");

    /* written only: the view starts as it likes, the matrix gets all of it */
    cr_assert_eq(mu_host_view_begin(be, &big, MU_DTYPE_F64, MU_HOST_WRITE, &v), MU_OK);
    for (int i = 0; i < 24; i++)
        ((double *)v.data)[i] = 0.25;
    cr_assert_eq(mu_host_view_end(be, &v), MU_OK);
    cr_expect_eq(cells[0], 0.25f);
    cr_expect_eq(cells[23], 0.25f);
    mu_k_release(be, &big);
    mu_backend_destroy(&be);
}
