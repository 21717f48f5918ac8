/*
 * The kernels layer's backend interface: a table of matrix operations that every backend
 * (reference, cpu, cuda) fills, and the wrappers through which all algorithms call it.
 *
 * The algorithms (Polar Express, NS5, Gram inverse root, SPD roots, residual checks) are
 * written once over these wrappers; they never touch backend memory directly.
 *
 * Conventions for every operation:
 *  - Matrices are row-major views (kernels/matrix.h) allocated by the same backend.
 *  - Operands of one call share a dtype, except copy/upload/download, which convert.
 *  - Shapes and dtypes are validated once, in the wrappers (kernels/ops.c), so backends
 *    receive only consistent arguments; a mismatch returns MU_ERR_INVALID naming the call.
 *  - beta == 0 means "do not read the output": NaN in an uninitialised C never leaks through,
 *    as in BLAS.
 *  - Operations may run asynchronously; mu_k_synchronize waits for all issued work.
 */
#ifndef MU_KERNELS_OPS_H
#define MU_KERNELS_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "kernels/matrix.h"

typedef struct mu_backend mu_backend_t; /* opaque; see kernels/backend_impl.h */

typedef enum mu_trans { MU_NO_TRANS = 0, MU_TRANS = 1 } mu_trans_t;

/* ---- one typedef per kernel: a backend with a mismatched signature does not compile ---- */

/* out = a new rows x cols matrix (ld == cols), contents undefined. */
typedef mu_status_t mu_k_alloc_fn(mu_backend_t *be, int64_t rows, int64_t cols, mu_dtype_t dtype,
                                  mu_mat_t *out);
/* Releases what alloc gave and zeroes the view; a zeroed view is accepted and ignored. */
typedef void mu_k_release_fn(mu_backend_t *be, mu_mat_t *mat);
/* dst = host matrix (row-major, host_ld elements per row, host_dtype), converting dtypes. */
typedef mu_status_t mu_k_upload_fn(mu_backend_t *be, const void *host, mu_dtype_t host_dtype,
                                   int64_t host_ld, mu_mat_t *dst);
/* host = src, converting to host_dtype. */
typedef mu_status_t mu_k_download_fn(mu_backend_t *be, const mu_mat_t *src, void *host,
                                     mu_dtype_t host_dtype, int64_t host_ld);
/* dst = src (same shape; converts when the dtypes differ). */
typedef mu_status_t mu_k_copy_fn(mu_backend_t *be, const mu_mat_t *src, mu_mat_t *dst);
/* c = alpha * op(a) * op(b) + beta * c. */
typedef mu_status_t mu_k_gemm_fn(mu_backend_t *be, mu_trans_t trans_a, mu_trans_t trans_b,
                                 double alpha, const mu_mat_t *a, const mu_mat_t *b, double beta,
                                 mu_mat_t *c);
/* c = alpha * op(a) * op(a)^T + beta * c; op(a) = a or a^T. c is symmetric in full on
 * return: each backend fills its lower triangle however is cheapest (a mirror of the upper
 * after a triangular product, or nothing after a full one), so callers never symmetrize.
 * With beta != 0, c must be symmetric in full on entry. */
typedef mu_status_t mu_k_syrk_fn(mu_backend_t *be, mu_trans_t trans, double alpha,
                                 const mu_mat_t *a, double beta, mu_mat_t *c);
/* Copies the upper triangle of square c onto its lower triangle. */
typedef mu_status_t mu_k_symmetrize_fn(mu_backend_t *be, mu_mat_t *c);
/* y = alpha * x + beta * y. */
typedef mu_status_t mu_k_axpby_fn(mu_backend_t *be, double alpha, const mu_mat_t *x, double beta,
                                  mu_mat_t *y);
/* x = alpha * x. */
typedef mu_status_t mu_k_scale_fn(mu_backend_t *be, double alpha, mu_mat_t *x);
/* x += alpha * I (square x). */
typedef mu_status_t mu_k_add_identity_fn(mu_backend_t *be, double alpha, mu_mat_t *x);
/* x = alpha * I (square x). */
typedef mu_status_t mu_k_set_identity_fn(mu_backend_t *be, double alpha, mu_mat_t *x);
/* Every entry of x = value (any dtype, bf16 included). */
typedef mu_status_t mu_k_fill_fn(mu_backend_t *be, double value, mu_mat_t *x);
/* *out = ||x||_F, accumulated in double precision without overflow. */
typedef mu_status_t mu_k_norm_fn(mu_backend_t *be, const mu_mat_t *x, double *out);
/* *out = ||x - I||_F for square x. */
typedef mu_status_t mu_k_dist_identity_fn(mu_backend_t *be, const mu_mat_t *x, double *out);
/* *out = number of NaN or infinite entries of x. */
typedef mu_status_t mu_k_count_nonfinite_fn(mu_backend_t *be, const mu_mat_t *x, int64_t *out);
/* Waits for all work issued so far (a no-op on synchronous backends). */
typedef mu_status_t mu_k_synchronize_fn(mu_backend_t *be);

/* Optimizer updates, element by element (all operands one shape and dtype). */
/* m = beta m + g; u = g + beta m (Nesterov) or u = m. u may alias g. */
typedef mu_status_t mu_k_momentum_fn(mu_backend_t *be, double beta, bool nesterov,
                                     const mu_mat_t *g, mu_mat_t *m, mu_mat_t *u);
/* w = w (1 - lr wd) - lr scale o: decoupled weight decay, then the scaled update. */
typedef mu_status_t mu_k_apply_update_fn(mu_backend_t *be, double lr, double wd, double scale,
                                         const mu_mat_t *o, mu_mat_t *w);
typedef struct mu_adamw_hyper {
    double lr, beta1, beta2, eps, weight_decay;
    long step; /* 1-based, for the bias corrections */
} mu_adamw_hyper_t;
/* AdamW with decoupled weight decay (Loshchilov & Hutter 2019):
 * m1 = b1 m1 + (1-b1) g; m2 = b2 m2 + (1-b2) g^2;
 * w = w (1 - lr wd) - lr (m1 / (1-b1^t)) / (sqrt(m2 / (1-b2^t)) + eps). */
typedef mu_status_t mu_k_adamw_fn(mu_backend_t *be, const mu_adamw_hyper_t *h, const mu_mat_t *g,
                                  mu_mat_t *w, mu_mat_t *m1, mu_mat_t *m2);

/* A recorded sequence of a backend's calls, replayable with the same operands (a CUDA graph). */
typedef struct mu_k_graph mu_k_graph_t;
/* Optional, for backends whose calls only queue work (NULL where calls run as they come):
 * between capture_begin and capture_end the calls record instead of running; capture_end
 * always ends the recording (also after a failed call) and returns the graph; replay runs
 * it again on the same memory. No call inside may wait for the device. */
typedef mu_status_t mu_k_capture_begin_fn(mu_backend_t *be);
typedef mu_status_t mu_k_capture_end_fn(mu_backend_t *be, mu_k_graph_t **out);
typedef mu_status_t mu_k_replay_fn(mu_backend_t *be, mu_k_graph_t *graph);
typedef void mu_k_graph_destroy_fn(mu_backend_t *be, mu_k_graph_t *graph);

struct mu_kernel_ops {
    const char *name;
    /* Matrices live in host memory (the CPU may read and write .data directly). */
    bool host_memory;
    /* The arithmetic kernels accept bf16 operands (fp32 accumulation); otherwise bf16 is a
     * storage type that only copy, upload, download and fill take. A backend whose bf16
     * depends on the CPU sets it and lets init clear it (mu_backend_bf16_compute says). */
    bool bf16_compute;
    /* A test oracle (plain loops): "auto" never picks it for bf16, which it computes only so
     * that the fast backends' bf16 can be checked against it. */
    bool oracle;
    /* Whether this backend can run here; on false, writes the reason into why. */
    bool (*can_use)(char *why, size_t why_len);
    mu_status_t (*init)(mu_backend_t *be); /* sets be->state */
    void (*fini)(mu_backend_t *be);
    void (*describe)(const mu_backend_t *be, char *out, size_t out_len);
    /* Threads the backend may use on the host; NULL when it has no such knob. */
    mu_status_t (*set_threads)(mu_backend_t *be, int threads);

    mu_k_alloc_fn *alloc;
    mu_k_release_fn *release;
    mu_k_upload_fn *upload;
    mu_k_download_fn *download;
    mu_k_copy_fn *copy;
    mu_k_gemm_fn *gemm;
    mu_k_syrk_fn *syrk;
    mu_k_symmetrize_fn *symmetrize;
    mu_k_axpby_fn *axpby;
    mu_k_scale_fn *scale;
    mu_k_add_identity_fn *add_identity;
    mu_k_set_identity_fn *set_identity;
    mu_k_fill_fn *fill;
    mu_k_norm_fn *norm_frob;
    mu_k_dist_identity_fn *dist_identity;
    mu_k_count_nonfinite_fn *count_nonfinite;
    mu_k_synchronize_fn *synchronize;
    mu_k_momentum_fn *momentum;
    mu_k_apply_update_fn *apply_update;
    mu_k_adamw_fn *adamw;
    mu_k_capture_begin_fn *capture_begin; /* the four are NULL together */
    mu_k_capture_end_fn *capture_end;
    mu_k_replay_fn *replay;
    mu_k_graph_destroy_fn *graph_destroy;
};

/* ---- the wrappers every algorithm calls (validate, then dispatch) ---------------------- */

mu_k_alloc_fn mu_k_alloc;
mu_k_release_fn mu_k_release;
mu_k_upload_fn mu_k_upload;
mu_k_download_fn mu_k_download;
mu_k_copy_fn mu_k_copy;
mu_k_gemm_fn mu_k_gemm;
mu_k_syrk_fn mu_k_syrk;
mu_k_symmetrize_fn mu_k_symmetrize;
mu_k_axpby_fn mu_k_axpby;
mu_k_scale_fn mu_k_scale;
mu_k_add_identity_fn mu_k_add_identity;
mu_k_set_identity_fn mu_k_set_identity;
mu_k_fill_fn mu_k_fill;
mu_k_norm_fn mu_k_norm_frob;
mu_k_dist_identity_fn mu_k_dist_identity;
mu_k_count_nonfinite_fn mu_k_count_nonfinite;
mu_k_synchronize_fn mu_k_synchronize;
mu_k_momentum_fn mu_k_momentum;
mu_k_apply_update_fn mu_k_apply_update;
mu_k_adamw_fn mu_k_adamw;

/* ---- backend registry ----------------------------------------------------------------- */

/* Creates a backend by name: "auto" (or NULL) picks the first usable one in priority order
 * (cuda, cpu, dnnl, reference), unless the MUOND_BACKEND environment variable names one.
 * The choice, and why higher-priority backends were passed over, is logged. */
mu_status_t mu_backend_create(const char *name, mu_backend_t **out);
/* The same, for a run whose matrices must be host memory when need_host is not NULL (it says
 * why, e.g. trainers attached through host shared memory): "auto" passes over device-memory
 * backends, logging need_host, and naming one is an error that quotes it. */
mu_status_t mu_backend_create_for(const char *name, const char *need_host, mu_backend_t **out);
/* The same for work computed in dtype: "auto" passes over backends without arithmetic in it
 * (bf16: cpu and reference, and dnnl on a CPU without AVX512-BF16 or AMX). */
mu_status_t mu_backend_create_for_dtype(const char *name, const char *need_host, mu_dtype_t dtype,
                                        mu_backend_t **out);
void mu_backend_destroy(mu_backend_t **be);
const char *mu_backend_name(const mu_backend_t *be);
/* Whether the backend's matrices are host memory that the CPU may touch directly. */
bool mu_backend_host_memory(const mu_backend_t *be);
/* Whether its arithmetic kernels take bf16 operands (fp32 accumulation). */
bool mu_backend_bf16_compute(const mu_backend_t *be);
/* Whether it is a test oracle (the reference's plain loops), not a backend to measure. */
bool mu_backend_oracle(const mu_backend_t *be);
/* Whether the backend records graphs now (it has the ops and they are not switched off). */
bool mu_backend_can_capture(const mu_backend_t *be);
mu_k_capture_begin_fn mu_k_capture_begin;
mu_k_capture_end_fn mu_k_capture_end;
mu_k_replay_fn mu_k_replay;
/* Destroys *graph (NULL is fine) and sets it to NULL. */
void mu_k_graph_destroy(mu_backend_t *be, mu_k_graph_t **graph);
void mu_backend_describe(const mu_backend_t *be, char *out, size_t out_len);

/* Host threads for the backend's BLAS. Results depend on it (OpenBLAS rounds differently
 * for each thread count), so runs that must agree bit for bit use the same value. */
mu_status_t mu_backend_set_threads(mu_backend_t *be, int threads);

/* Names of all compiled-in backends in priority order; returns how many. */
int mu_backend_list(const char **names, int capacity);

#endif
