/*
 * A layout describes a model's parameters and the optimizer settings, read from JSON:
 *
 *   {
 *     "name": "gpt2-small",                                         (optional)
 *     "optimizer": {                                                (optional, defaults below)
 *       "lr": 0.02, "momentum": 0.95, "nesterov": true, "weight_decay": 0,
 *       "scale": "spectral" | "rms" | "none",
 *       "polar_express": {"lower": 1e-3, "iters": 8,
 *                         "schedule": "fixed" | "adaptive"},  (adaptive: kernels/adaptive.h,
 *                                          each matrix its own (l, T <= iters) every step)
 *       "adamw": {"lr": 3e-4, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0},
 *       "shampoo": {"beta": 0.95, "epsilon": 1e-4, "interval": 10, "max_dim": 4096},
 *                                       (kernels/shampoo.h: the statistics' EMA, 1 for sums;
 *                                        epsilon relative to ||L||_F, in [1e-5, 1]; steps
 *                                        between root computations; the largest side a
 *                                        shampoo matrix may have, at most 16384)
 *       "descent_min": 0.9,             (default: from the schedule, kernels/certificate.h)
 *       "on_nonfinite": "skip" | "abort",
 *       "compute_dtype": "fp32" | "bf16"  (of polar-express and ns5; bf16 needs a backend
 *                                          with bf16 arithmetic; gram stays fp32)
 *     },
 *     "exchange": {"dtype": "fp32" | "bf16", "wave_budget_mib": 1024},
 *     "gradient_mode": "sharded" | "local",
 *     "parameters": [
 *       {"name": "h.0.attn.qkv", "shape": [768, 2304], "method": "polar-express",
 *        "lr": 0.02, "weight_decay": 0.0,                          (lr, weight_decay optional)
 *        "fallback": "auto" | "always",    (always: solve exactly with ScaLAPACK every step)
 *        "schedule": "fixed" | "adaptive"} (polar-express and gram; default: the global one)
 *     ]
 *   }
 *
 * Shapes have 1 to 4 dimensions and are flattened to rows x cols = dims[0] x (product of the
 * rest): a conv kernel [out, in, kh, kw] becomes out x in*kh*kw, a bias [n] becomes n x 1.
 * Matrix methods (polar-express, ns5, gram, shampoo) need at least 2 dimensions; adamw takes
 * any. A shampoo matrix's owner keeps an m x m and an n x n statistic and their roots
 * (4 (2 m^2 + 2 n^2 + m n) bytes), so sides above shampoo.max_dim are refused.
 * Unknown keys are errors (a typo must not silently become a default). Every error names the
 * file, the parameter (index and name) and the field.
 *
 * The layout is a value: read-only after loading, freed with mu_layout_destroy.
 */
#ifndef MU_SHARD_LAYOUT_H
#define MU_SHARD_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "kernels/matrix.h"
#include "kernels/orth.h"

enum { MU_PARAM_NAME_MAX = 128, MU_PARAM_MAX_DIMS = 4 };

typedef enum mu_method {
    MU_METHOD_POLAR_EXPRESS = 0,
    MU_METHOD_NS5,
    MU_METHOD_GRAM,
    MU_METHOD_ADAMW,
    MU_METHOD_SHAMPOO, /* after adamw: the method's number is in every layout's digest */
    MU_METHOD_COUNT
} mu_method_t;

typedef enum mu_scale_rule { MU_SCALE_SPECTRAL, MU_SCALE_RMS, MU_SCALE_NONE } mu_scale_rule_t;
typedef enum mu_grad_mode { MU_GRAD_SHARDED, MU_GRAD_LOCAL } mu_grad_mode_t;
/* What a step does with a parameter whose gradient has NaN or Inf entries: skip that
 * parameter's update (its momentum and weights stay as they were), or stop the job. */
typedef enum mu_nonfinite_policy { MU_NONFINITE_SKIP, MU_NONFINITE_ABORT } mu_nonfinite_policy_t;

typedef struct mu_param {
    char name[MU_PARAM_NAME_MAX];
    int ndim;
    int64_t dims[MU_PARAM_MAX_DIMS];
    int64_t rows, cols; /* the flattened matrix */
    mu_method_t method;
    double lr, weight_decay; /* effective values: the parameter's own or the global ones */
    bool fallback_always;    /* solved by the exact fallback every step, not the fast path */
    mu_schedule_mode_t schedule; /* polar-express and gram; fixed for the others */
} mu_param_t;

typedef struct mu_settings {
    double lr, momentum, weight_decay;
    bool nesterov;
    mu_scale_rule_t scale;
    double pe_lower;
    int pe_iters;
    mu_schedule_mode_t pe_schedule;
    double adamw_lr, adamw_beta1, adamw_beta2, adamw_eps, adamw_weight_decay;
    mu_dtype_t exchange_dtype; /* fp32 or bf16 */
    int64_t wave_budget_bytes;
    mu_grad_mode_t grad_mode;
    double descent_min; /* the certificate's descent limit; 0: each plan's own
                           (mu_orth_plan_cert_limits) */
    mu_nonfinite_policy_t on_nonfinite;
    mu_dtype_t compute_dtype; /* fp32 or bf16: the polynomial iterations' precision */
    double shampoo_beta, shampoo_epsilon;
    int shampoo_interval;
    int64_t shampoo_max_dim;
} mu_settings_t;

typedef struct mu_layout {
    char name[MU_PARAM_NAME_MAX];
    char source[512]; /* the file it came from, for messages */
    mu_settings_t settings;
    int param_count;
    mu_param_t *params;
    uint64_t digest; /* of everything that must agree between ranks and trainers */
} mu_layout_t;

/* The hyper-parameters a step applies to one parameter. momentum is Muon's beta for matrix
 * methods and AdamW's beta1 for adamw parameters. Trainers may set them per step (the
 * protocol's STEP); the layout gives the values used otherwise. */
typedef struct mu_hyper {
    double lr, weight_decay, momentum;
} mu_hyper_t;

/* Polar Express steps of a layout that does not say: T = 8, the published schedule's, whose
 * band on [1e-3, 1] is round-off (E = 2e-15), so the certificate's residual bound is tight.
 * T = 5 (modded-nanogpt's, this default until issue 19) puts every direction anywhere in
 * [0.855, 1.145]; on the main job its updates ended at a mean test loss of 0.370 against 0.267
 * for T = 8 (4 seeds). A layout may still ask for it ("iters": 5). */
enum { MU_LAYOUT_DEFAULT_PE_ITERS = 8 };

/* The layout's hyper-parameters of parameter p. */
void mu_layout_hyper(const mu_layout_t *layout, int p, mu_hyper_t *out);

/* Reads and validates a layout file. */
mu_status_t mu_layout_load(const char *path, mu_layout_t **out);
/* The same from text in memory; `what` names the source in messages. */
mu_status_t mu_layout_parse(const char *text, size_t len, const char *what, mu_layout_t **out);
void mu_layout_destroy(mu_layout_t **layout);

bool mu_method_is_matrix(mu_method_t method);
const char *mu_method_name(mu_method_t method);
/* Matrix methods orthogonalized by kernels/orth.h (all but shampoo). */
bool mu_method_is_orth(mu_method_t method);
mu_orth_method_t mu_method_orth(mu_method_t method); /* orth methods only */

/* The update scale of an m x n matrix under a rule: spectral sqrt(max(1, m/n)),
 * rms 0.2 sqrt(max(m, n)) (matches AdamW's update RMS), none 1. */
double mu_scale_factor(mu_scale_rule_t rule, int64_t rows, int64_t cols);

/* The orthogonalization options the optimizer uses for a matrix parameter: fp32, the
 * layout's Polar Express lower bound and step count (NS5 keeps its own default count), the
 * parameter's schedule. */
void mu_layout_orth_opts(const mu_layout_t *layout, const mu_param_t *p, mu_orth_opts_t *out);

/* Bytes an owner holds for one matrix while orthogonalizing it (G and Q in fp32). */
int64_t mu_param_owner_bytes(const mu_param_t *p);

/* The FLOPs of one step of matrix parameter p on its owner, for the owners' balance. */
double mu_layout_param_flops(const mu_layout_t *layout, const mu_param_t *p);

/* The Shampoo options of the layout (kernels/shampoo.h). */
struct mu_shampoo_opts;
void mu_layout_shampoo_opts(const mu_layout_t *layout, struct mu_shampoo_opts *out);

#endif
