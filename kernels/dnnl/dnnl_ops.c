/*
 * The dnnl backend (kernels/dnnl/dnnl_impl.h): matrix products on oneDNN, fp32 and bf16;
 * element-wise work on the cpu backend's loops for fp32 and fp64 and on the reference
 * backend's dtype-generic ones for bf16 (memory-bound either way: O(n^2) next to the
 * products' O(n^3)); fp64 products on OpenBLAS, which oneDNN's CPU matmul does not take.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"
#include "kernels/dnnl/dnnl_impl.h"
#include "kernels/ref/ref_ops.h"

mu_status_t mu_dnnl_error(dnnl_status_t status, const char *what)
{
    static const char *const names[] = {
        [dnnl_success] = "success",
        [dnnl_out_of_memory] = "out of memory",
        [dnnl_invalid_arguments] = "invalid arguments",
        [dnnl_unimplemented] = "no implementation for these operands on this CPU",
        [dnnl_iterator_ends] = "iterator ends",
        [dnnl_runtime_error] = "runtime error",
        [dnnl_not_required] = "not required",
    };
    const int code = (int)status;
    const char *name = code >= 0 && code < (int)(sizeof names / sizeof names[0]) && names[code]
                           ? names[code]
                           : "unknown status";
    return mu_error(MU_ERR_DNNL, "oneDNN: %s: %s (%d)", what, name, code);
}

bool mu_dnnl_isa_has_bf16(dnnl_cpu_isa_t isa)
{
    /* The ISA values are nested bit sets: AMX's contains AVX512-BF16's. */
    return ((unsigned)isa & (unsigned)dnnl_cpu_isa_avx512_core_bf16) ==
           (unsigned)dnnl_cpu_isa_avx512_core_bf16;
}

const char *mu_dnnl_isa_name(dnnl_cpu_isa_t isa)
{
    switch (isa) {
    case dnnl_cpu_isa_avx512_core_amx:
        return "avx512_core_amx";
    case dnnl_cpu_isa_avx512_core_bf16:
        return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_vnni:
        return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core:
        return "avx512_core";
    case dnnl_cpu_isa_avx2_vnni:
        return "avx2_vnni";
    case dnnl_cpu_isa_avx2:
        return "avx2";
    case dnnl_cpu_isa_avx:
        return "avx";
    default:
        return "sse41 or older";
    }
}

/* fp32 products need oneDNN's AVX2 kernels at least to be worth choosing over OpenBLAS. */
static bool onednn_can_use(char *why, size_t why_len)
{
    const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    if (((unsigned)isa & (unsigned)dnnl_cpu_isa_avx2) == (unsigned)dnnl_cpu_isa_avx2)
        return true;
    snprintf(why, why_len, "oneDNN runs %s here (its matmul needs avx2 or better)",
             mu_dnnl_isa_name(isa));
    return false;
}

static mu_status_t onednn_init(mu_backend_t *be)
{
    dnnl_state_t *st = calloc(1, sizeof *st);
    if (!st)
        return mu_error(MU_ERR_NOMEM, "dnnl backend: cannot allocate its state");
    /* oneDNN's own process-wide primitive cache goes: this backend caches its primitives
     * itself, and oneDNN's treats descriptors that differ only in the stride of a size-1
     * dimension as one, so a product would get whichever kernel an earlier, merely
     * equivalent product created (its rounding differed in the last bits): results would
     * depend on what the process ran before, and digests across rank counts would differ. */
    dnnl_status_t made = dnnl_set_primitive_cache_capacity(0);
    if (made != dnnl_success) {
        free(st);
        return mu_dnnl_error(made, "switching off oneDNN's primitive cache");
    }
    st->isa = dnnl_get_effective_cpu_isa();
    made = dnnl_engine_create(&st->engine, dnnl_cpu, 0);
    if (made == dnnl_success)
        made = dnnl_stream_create(&st->stream, st->engine, dnnl_stream_default_flags);
    if (made != dnnl_success) {
        if (st->engine)
            dnnl_engine_destroy(st->engine);
        free(st);
        return mu_dnnl_error(made, "engine and stream");
    }
    be->state = st;
    be->bf16_compute = mu_dnnl_isa_has_bf16(st->isa);
    if (!be->bf16_compute)
        MU_LOG(MU_LOG_INFO, MU_SUB_KERNELS,
               "dnnl backend: oneDNN runs %s here, without bf16 instructions: fp32 only",
               mu_dnnl_isa_name(st->isa));
    return MU_OK;
}

static void onednn_fini(mu_backend_t *be)
{
    dnnl_state_t *st = be->state;
    if (!st)
        return;
    MU_LOG(MU_LOG_DEBUG, MU_SUB_KERNELS, "dnnl backend: %d primitives, %llu hits, %llu misses",
           st->entries, (unsigned long long)st->hits, (unsigned long long)st->misses);
    mu_dnnl_cache_clear(st);
    dnnl_stream_destroy(st->stream);
    dnnl_engine_destroy(st->engine);
    free(st);
    be->state = NULL;
}

static void onednn_describe(const mu_backend_t *be, char *out, size_t out_len)
{
    const dnnl_state_t *st = be->state;
    const dnnl_version_t *v = dnnl_version();
    snprintf(out, out_len, "dnnl (oneDNN %d.%d.%d, isa %s, bf16 %s, %d threads%s%s)", v->major,
             v->minor, v->patch, mu_dnnl_isa_name(st->isa), be->bf16_compute ? "yes" : "no",
             omp_get_max_threads(), st->impl[0] ? ", matmul " : "", st->impl);
}

static mu_status_t onednn_set_threads(mu_backend_t *be, int threads)
{
    omp_set_num_threads(threads);
    return mu_cpu_ops.set_threads(be, threads); /* the fp64 products and BLAS-1 loops */
}

/* Degenerate shapes and fp64 go where oneDNN does not: it has no CPU fp64 matmul. */
static mu_status_t onednn_gemm(mu_backend_t *be, mu_trans_t trans_a, mu_trans_t trans_b,
                             double alpha, const mu_mat_t *a, const mu_mat_t *b, double beta,
                             mu_mat_t *c)
{
    const int64_t k = trans_a == MU_TRANS ? a->rows : a->cols;
    if (c->rows == 0 || c->cols == 0)
        return MU_OK;
    if (c->dtype == MU_DTYPE_F64)
        return mu_cpu_ops.gemm(be, trans_a, trans_b, alpha, a, b, beta, c);
    if (k == 0)
        return mu_ref_gemm(be, trans_a, trans_b, alpha, a, b, beta, c);
    return mu_dnnl_matmul(be, trans_a, trans_b, alpha, a, b, beta, c);
}

static mu_status_t onednn_symmetrize(mu_backend_t *be, mu_mat_t *c)
{
    return c->dtype == MU_DTYPE_BF16 ? mu_ref_symmetrize(be, c) : mu_cpu_ops.symmetrize(be, c);
}

/* oneDNN has no SYRK: the full product op(A) op(A)^T (twice SYRK's flops, at bf16 rates
 * that is still far ahead), then the upper triangle mirrored, since the two halves of a
 * blocked product need not round alike and the ops contract promises exact symmetry. */
static mu_status_t onednn_syrk(mu_backend_t *be, mu_trans_t trans, double alpha, const mu_mat_t *a,
                             double beta, mu_mat_t *c)
{
    if (c->dtype == MU_DTYPE_F64)
        return mu_cpu_ops.syrk(be, trans, alpha, a, beta, c);
    const mu_trans_t other = trans == MU_TRANS ? MU_NO_TRANS : MU_TRANS;
    MU_CHECK(onednn_gemm(be, trans, other, alpha, a, a, beta, c));
    return onednn_symmetrize(be, c);
}

/* Element-wise: the cpu backend's BLAS-1 loops for fp32/fp64, the generic ones for bf16. */
#define BY_DTYPE(dtype, call_ref, call_cpu) ((dtype) == MU_DTYPE_BF16 ? (call_ref) : (call_cpu))

static mu_status_t onednn_axpby(mu_backend_t *be, double alpha, const mu_mat_t *x, double beta,
                              mu_mat_t *y)
{
    return BY_DTYPE(y->dtype, mu_ref_axpby(be, alpha, x, beta, y),
                    mu_cpu_ops.axpby(be, alpha, x, beta, y));
}

static mu_status_t onednn_scale(mu_backend_t *be, double alpha, mu_mat_t *x)
{
    return BY_DTYPE(x->dtype, mu_ref_scale(be, alpha, x), mu_cpu_ops.scale(be, alpha, x));
}

static mu_status_t onednn_norm_frob(mu_backend_t *be, const mu_mat_t *x, double *out)
{
    return BY_DTYPE(x->dtype, mu_ref_norm_frob(be, x, out), mu_cpu_ops.norm_frob(be, x, out));
}

const struct mu_kernel_ops mu_dnnl_ops = {
    .name = "dnnl",
    .host_memory = true,
    .bf16_compute = true, /* cleared by init where the CPU lacks AVX512-BF16 and AMX */
    .can_use = onednn_can_use,
    .init = onednn_init,
    .fini = onednn_fini,
    .describe = onednn_describe,
    .set_threads = onednn_set_threads,
    .alloc = mu_ref_alloc,
    .release = mu_ref_release,
    .upload = mu_ref_upload,
    .download = mu_ref_download,
    .copy = mu_ref_copy,
    .gemm = onednn_gemm,
    .syrk = onednn_syrk,
    .symmetrize = onednn_symmetrize,
    .axpby = onednn_axpby,
    .scale = onednn_scale,
    .add_identity = mu_ref_add_identity,
    .set_identity = mu_ref_set_identity,
    .fill = mu_ref_fill,
    .norm_frob = onednn_norm_frob,
    .dist_identity = mu_ref_dist_identity,
    .count_nonfinite = mu_ref_count_nonfinite,
    .synchronize = mu_ref_synchronize,
    .momentum = mu_ref_momentum,
    .apply_update = mu_ref_apply_update,
    .adamw = mu_ref_adamw,
};
