/*
 * Private to kernels/dnnl/: the oneDNN backend's state and its error adapter.
 *
 * oneDNN (Debian's libdnnl 2.6) runs the BLAS-3 work as matmul primitives: fp32 and bf16
 * storage, fp32 accumulation, alpha as an output scale and beta as a sum post-op, so that
 * C = alpha op(A) op(B) + beta C is one primitive that reads C once. On a CPU with
 * AVX512-BF16 or AMX its bf16 matmul runs several times the fp32 rate; that is what this
 * backend is for. fp64 work (the certificate's references) stays on OpenBLAS.
 *
 * Creating a primitive costs far more than running a small one, so primitives are cached
 * per (shape, strides, transposes, dtype, alpha, beta): a Polar Express plan of T steps
 * needs about 2T + 1 of them per shape, created on the first step and reused afterwards,
 * as the cuda backend reuses its graphs.
 */
#ifndef MU_KERNELS_DNNL_IMPL_H
#define MU_KERNELS_DNNL_IMPL_H

#include <oneapi/dnnl/dnnl.h>
#include <stdbool.h>
#include <stdint.h>

#include "kernels/backend_impl.h"

/* Big enough for every (shape, coefficient) pair of a GPT-2-size layout's plans; beyond it
 * the least recently used primitive is destroyed. */
enum { DNNL_CACHE_ENTRIES = 256 };

typedef struct dnnl_matmul_key {
    int64_t m, n, k, lda, ldb, ldc;
    mu_trans_t trans_a, trans_b;
    mu_dtype_t dtype;
    float alpha, beta;
} dnnl_matmul_key_t;

typedef struct dnnl_matmul_entry {
    dnnl_matmul_key_t key;
    dnnl_primitive_t primitive;
    dnnl_memory_t a, b, c; /* descriptors only: each call points them at its operands */
    uint64_t last_used;
} dnnl_matmul_entry_t;

typedef struct dnnl_state {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_cpu_isa_t isa;
    char impl[96]; /* the implementation oneDNN chose for the latest new primitive */
    uint64_t clock, hits, misses;
    int entries;
    dnnl_matmul_entry_t cache[DNNL_CACHE_ENTRIES];
} dnnl_state_t;

/* Records "what: status name" and returns MU_ERR_DNNL. */
mu_status_t mu_dnnl_error(dnnl_status_t status, const char *what);

#define MU_DNNL_CHECK(call)                                                                        \
    do {                                                                                           \
        const dnnl_status_t mu_dnnl_status_ = (call);                                              \
        if (mu_dnnl_status_ != dnnl_success) {                                                     \
            mu_dnnl_error(mu_dnnl_status_, #call);                                                 \
            mu_error_trace(__FILE__, __LINE__, #call, MU_ERR_DNNL);                                \
            return MU_ERR_DNNL;                                                                    \
        }                                                                                          \
    } while (0)

/* The ISA oneDNN dispatches to, by name ("avx2", "avx512_core_amx", ...). */
const char *mu_dnnl_isa_name(dnnl_cpu_isa_t isa);
/* Whether oneDNN computes bf16 natively here (AVX512-BF16 or AMX). */
bool mu_dnnl_isa_has_bf16(dnnl_cpu_isa_t isa);

/* C = alpha op(A) op(B) + beta C through a cached primitive (kernels/dnnl/dnnl_matmul.c). */
mu_status_t mu_dnnl_matmul(mu_backend_t *be, mu_trans_t trans_a, mu_trans_t trans_b, double alpha,
                           const mu_mat_t *a, const mu_mat_t *b, double beta, mu_mat_t *c);
void mu_dnnl_cache_clear(dnnl_state_t *st);

#endif
