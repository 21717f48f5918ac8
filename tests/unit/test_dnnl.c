/*
 * The dnnl backend's own promises (the shared kernel suites also run on it, as *_on_dnnl):
 * the fused alpha/beta product against the reference backend, primitives created once per
 * key and reused, fp64 routed to OpenBLAS, and bf16 with fp32 accumulation where the CPU has
 * AVX512-BF16 or AMX (skipped, saying so, where it has not).
 * Tolerances: fp32 as tests/unit/test_ops.c (8 k u_32, operands O(1)); bf16 products against
 * fp32 products of the same bf16-rounded inputs: one bf16 rounding of the output (2^-8
 * relative) on sums of size O(sqrt k), so 2^-8 * 4 sqrt(k); Polar Express in bf16: every
 * singular value within 0.35 of 1 (T = 8's band 0.25 widened by bf16 rounding amplified by
 * the iteration's slope at 1, as the cuda backend's bf16 check).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "kernels/dnnl/dnnl_impl.h"
#include "tests/support/harness.h"

#define TOL_PE_BF16_BAND 0.35

static double *random_host(int64_t n, uint64_t stream)
{
    double *h = malloc(sizeof(double) * (size_t)(n + 1));
    for (int64_t i = 0; i < n; i++)
        h[i] = mu_rng_normal(5, stream, (uint64_t)i);
    return h;
}

static void upload_new(mu_backend_t *be, const double *host, int64_t rows, int64_t cols,
                       mu_dtype_t dt, mu_mat_t *m)
{
    cr_assert_eq(mu_k_alloc(be, rows, cols, dt, m), MU_OK);
    cr_assert_eq(mu_k_upload(be, host, MU_DTYPE_F64, cols, m), MU_OK);
}

/* C = alpha op(A) op(B) + beta C with both transposes, on dnnl and on the reference. */
static double fused_error(mu_backend_t *dn, mu_backend_t *ref, mu_dtype_t dt, mu_trans_t ta,
                          mu_trans_t tb, double alpha, double beta)
{
    const int64_t m = 37, n = 53, k = 29;
    double *a = random_host(m * k, 1), *b = random_host(k * n, 2), *c = random_host(m * n, 3);
    const int64_t ar = ta == MU_TRANS ? k : m, ac = ta == MU_TRANS ? m : k;
    const int64_t br = tb == MU_TRANS ? n : k, bc = tb == MU_TRANS ? k : n;
    mu_mat_t da, db, dc, ra, rb, rc;
    upload_new(dn, a, ar, ac, dt, &da);
    upload_new(dn, b, br, bc, dt, &db);
    upload_new(dn, c, m, n, dt, &dc);
    upload_new(ref, a, ar, ac, dt, &ra);
    upload_new(ref, b, br, bc, dt, &rb);
    upload_new(ref, c, m, n, dt, &rc);
    cr_assert_eq(mu_k_gemm(dn, ta, tb, alpha, &da, &db, beta, &dc), MU_OK, "%s",
                 mu_error_message());
    cr_assert_eq(mu_k_gemm(ref, ta, tb, alpha, &ra, &rb, beta, &rc), MU_OK);
    const double err = th_max_abs_difference(dn, &dc, ref, &rc);
    mu_mat_t *all[] = {&da, &db, &dc};
    for (int i = 0; i < 3; i++)
        mu_k_release(dn, all[i]);
    mu_k_release(ref, &ra), mu_k_release(ref, &rb), mu_k_release(ref, &rc);
    free(a), free(b), free(c);
    return err;
}

Test(dnnl, fused_scale_and_sum_match_reference)
{
    mu_backend_t *dn = th_backend("dnnl"), *ref = th_backend("reference");
    const double tol = 8.0 * 29 * 0x1p-24 * 10.0;
    const double coeffs[][2] = {{1.0, 0.0}, {-2.5, 0.0}, {1.0, 1.0}, {0.75, -3.25}};
    for (int t = 0; t < 4; t++)
        for (int c = 0; c < 4; c++) {
            const mu_trans_t ta = (t & 1) ? MU_TRANS : MU_NO_TRANS;
            const mu_trans_t tb = (t & 2) ? MU_TRANS : MU_NO_TRANS;
            const double err =
                fused_error(dn, ref, MU_DTYPE_F32, ta, tb, coeffs[c][0], coeffs[c][1]);
            cr_expect_leq(err, tol, "trans %d/%d alpha %g beta %g: %.3e > %.3e", ta, tb,
                          coeffs[c][0], coeffs[c][1], err, tol);
        }
    mu_backend_destroy(&dn);
    mu_backend_destroy(&ref);
}

/* beta = 0 must not read C: NaN there stays out, as in BLAS (kernels/ops.h). */
Test(dnnl, beta_zero_ignores_garbage_output)
{
    mu_backend_t *dn = th_backend("dnnl");
    double *a = random_host(16 * 16, 7);
    mu_mat_t da, dc;
    upload_new(dn, a, 16, 16, MU_DTYPE_F32, &da);
    cr_assert_eq(mu_k_alloc(dn, 16, 16, MU_DTYPE_F32, &dc), MU_OK);
    cr_assert_eq(mu_k_fill(dn, NAN, &dc), MU_OK);
    cr_assert_eq(mu_k_gemm(dn, MU_NO_TRANS, MU_TRANS, 1.0, &da, &da, 0.0, &dc), MU_OK);
    int64_t bad = -1;
    cr_assert_eq(mu_k_count_nonfinite(dn, &dc, &bad), MU_OK);
    cr_expect_eq(bad, 0, "%lld NaN leaked from the unread output", (long long)bad);
    mu_k_release(dn, &da), mu_k_release(dn, &dc);
    mu_backend_destroy(&dn);
    free(a);
}

/* A second run of a plan creates nothing: every product finds its primitive. */
Test(dnnl, primitives_are_created_once_per_plan)
{
    mu_backend_t *dn = th_backend("dnnl");
    const dnnl_state_t *st = dn->state; /* white-box: the cache's counters */
    mu_orth_opts_t o;
    mu_orth_opts_default(&o);
    o.iters = 5;
    double *g = random_host(48 * 96, 9);
    mu_orth_report_t report;
    free(th_orth(dn, &o, g, 48, 96, &report));
    const uint64_t misses = st->misses;
    cr_expect_gt(misses, 0);
    cr_expect_leq(misses, 2 * 5 + 1, "%llu primitives for T = 5", (unsigned long long)misses);
    free(th_orth(dn, &o, g, 48, 96, &report));
    cr_expect_eq(st->misses, misses, "the second run created %llu primitive(s)",
                 (unsigned long long)(st->misses - misses));
    cr_expect_gt(st->hits, 0);
    free(g);
    mu_backend_destroy(&dn);
}

Test(dnnl, fp64_products_run_on_openblas)
{
    mu_backend_t *dn = th_backend("dnnl"), *ref = th_backend("reference");
    const double err = fused_error(dn, ref, MU_DTYPE_F64, MU_TRANS, MU_NO_TRANS, 0.5, 2.0);
    cr_expect_leq(err, 8.0 * 29 * 0x1p-53 * 10.0, "fp64: %.3e", err);
    mu_backend_destroy(&dn);
    mu_backend_destroy(&ref);
}

static mu_backend_t *bf16_backend_or_skip(void)
{
    mu_backend_t *dn = th_backend("dnnl");
    if (!mu_backend_bf16_compute(dn)) {
        char d[256];
        mu_backend_describe(dn, d, sizeof d);
        mu_backend_destroy(&dn);
        cr_skip_test("no bf16 instructions on this CPU (%s): bf16 compute stays off", d);
    }
    return dn;
}

Test(dnnl, bf16_products_accumulate_in_fp32)
{
    mu_backend_t *dn = bf16_backend_or_skip(), *ref = th_backend("reference");
    /* The reference computes fp32 products of the same bf16-rounded operands (it reads
     * bf16 exactly); the one difference left is the output's bf16 rounding. */
    const double err = fused_error(dn, ref, MU_DTYPE_BF16, MU_NO_TRANS, MU_TRANS, 1.0, 0.5);
    cr_expect_leq(err, 0x1p-8 * 4.0 * sqrt(29.0) * 4.0, "bf16 vs reference: %.3e", err);
    mu_backend_destroy(&dn);
    mu_backend_destroy(&ref);
}

Test(dnnl, bf16_polar_express_stays_in_band)
{
    mu_backend_t *dn = bf16_backend_or_skip();
    mu_orth_opts_t o;
    mu_orth_opts_default(&o);
    o.dtype = MU_DTYPE_BF16;
    o.iters = 8;
    th_known_t m;
    th_known_make(64, 128, 100.0, 11, &m);
    mu_orth_report_t report;
    double *q = th_orth(dn, &o, m.g, m.rows, m.cols, &report);
    /* Q = U f(Sigma) V^T up to rounding, so ||Q - U V^T||_2 is max |f(sigma) - 1|. */
    const double band = th_polar_error(&m, q);
    cr_expect_leq(band, TOL_PE_BF16_BAND, "bf16 PE ||Q - UV^T||_2 = %.3f", band);
    free(q);
    th_known_free(&m);
    mu_backend_destroy(&dn);
}

Test(dnnl, refuses_bf16_where_the_cpu_lacks_it)
{
    mu_backend_t *dn = th_backend("dnnl");
    if (mu_backend_bf16_compute(dn)) {
        mu_backend_destroy(&dn);
        cr_skip_test("this CPU computes bf16: nothing to refuse");
    }
    mu_orth_opts_t o;
    mu_orth_opts_default(&o);
    o.dtype = MU_DTYPE_BF16;
    mu_orth_plan_t *plan = NULL;
    cr_expect_eq(mu_orth_plan_create(dn, 8, 8, &o, &plan), MU_ERR_INVALID);
    cr_expect_not_null(strstr(mu_error_message(), "AVX512-BF16 or AMX"), "%s",
                       mu_error_message());
    mu_backend_destroy(&dn);
}

/* Digests are bitwise across rank counts, and the owner's matrices sit at addresses that
 * depend on the plan: a product must not round differently at another address. (oneDNN's
 * unpacked small-gemm path does: a 33-term dot product differed between two offsets.) */
static bool same_at_offsets(mu_backend_t *dn, int64_t m, int64_t n, int64_t k, mu_trans_t ta,
                            mu_trans_t tb)
{
    enum { OFFSETS = 16 };
    const int64_t ar = ta == MU_TRANS ? k : m, ac = ta == MU_TRANS ? m : k;
    const int64_t br = tb == MU_TRANS ? n : k, bc = tb == MU_TRANS ? k : n;
    float *a = malloc(sizeof(float) * (size_t)(m * k + OFFSETS));
    float *b = malloc(sizeof(float) * (size_t)(br * bc + OFFSETS));
    float *c = malloc(sizeof(float) * (size_t)(m * n + OFFSETS));
    float *first = malloc(sizeof(float) * (size_t)(m * n));
    bool same = true;
    for (int off = 0; off < OFFSETS && same; off++) {
        for (int64_t i = 0; i < m * k; i++)
            a[off + i] = (float)mu_rng_normal(3, 1, (uint64_t)i);
        for (int64_t i = 0; i < br * bc; i++)
            b[off + i] = (float)mu_rng_normal(3, 2, (uint64_t)i);
        mu_mat_t ma = {.rows = ar, .cols = ac, .ld = ac, .dtype = MU_DTYPE_F32, .data = a + off};
        mu_mat_t mb = {.rows = br, .cols = bc, .ld = bc, .dtype = MU_DTYPE_F32, .data = b + off};
        mu_mat_t mc = {.rows = m, .cols = n, .ld = n, .dtype = MU_DTYPE_F32, .data = c + off};
        cr_assert_eq(mu_k_gemm(dn, ta, tb, 1.0, &ma, &mb, 0.0, &mc), MU_OK);
        if (off == 0)
            memcpy(first, c, sizeof(float) * (size_t)(m * n));
        else
            same = memcmp(first, c + off, sizeof(float) * (size_t)(m * n)) == 0;
    }
    free(a), free(b), free(c), free(first);
    return same;
}

Test(dnnl, products_do_not_depend_on_operand_addresses)
{
    mu_backend_t *dn = th_backend("dnnl");
    const int64_t shapes[][3] = {{1, 1, 33}, {1, 33, 1}, {7, 7, 5},    {2, 2, 9},
                                 {21, 21, 6}, {64, 48, 64}, {100, 100, 100}, {256, 192, 320}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++) {
            const int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
            const mu_trans_t ta = (t & 1) ? MU_TRANS : MU_NO_TRANS;
            const mu_trans_t tb = (t & 2) ? MU_TRANS : MU_NO_TRANS;
            cr_expect(same_at_offsets(dn, m, n, k, ta, tb),
                      "%lldx%lldx%lld (trans %d/%d): the result depends on where the operands lie",
                      (long long)m, (long long)n, (long long)k, ta, tb);
        }
    mu_backend_destroy(&dn);
}

/* oneDNN's process-wide primitive cache treats descriptors differing only in the stride of a
 * size-1 dimension as one, which made a product's rounding depend on what ran before it
 * (docs/cpu.md); the backend keeps its own cache and switches oneDNN's off. */
Test(dnnl, onednn_global_cache_is_off)
{
    mu_backend_t *dn = th_backend("dnnl");
    int capacity = -1;
    cr_assert_eq(dnnl_get_primitive_cache_capacity(&capacity), dnnl_success);
    cr_expect_eq(capacity, 0, "oneDNN's primitive cache holds %d entries", capacity);
    mu_backend_destroy(&dn);
}
