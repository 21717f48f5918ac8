/*
 * Option-table rows that several commands share, each defined once so that a name, its
 * variable, range, default and wording cannot drift apart between commands. A command's
 * table (launcher/options.h) lists them by macro, with its own field.
 */
#ifndef MU_LAUNCHER_OPTION_ROWS_H
#define MU_LAUNCHER_OPTION_ROWS_H

#include "core/knobs.h"
#include "kernels/schedule.h"
#include "launcher/options.h"

// clang-format off
#define MU_OPTION_LAYOUT(help, field)                                                              \
    {"layout", "MUOND_LAYOUT", MU_OPT_STRING, "FILE", NULL, 0, 0, NULL, help, field}

#define MU_OPTION_BACKEND(field)                                                                   \
    {"backend", MU_KNOB_BACKEND_VAR, MU_OPT_STRING, "B", "auto", 0, 0, NULL,                       \
     "kernel backend: auto (cuda when a GPU is usable, else cpu; bf16 on a CPU: dnnl), cuda, "    \
     "cpu, dnnl or reference",                                                                     \
     field}

#define MU_OPTION_BLAS_THREADS(field)                                                              \
    {"blas-threads", "MUOND_BLAS_THREADS", MU_OPT_INT, "N", "1", 1, 1024, NULL,                    \
     "BLAS threads per rank", field}

/* what: "the synthetic data" */
#define MU_OPTION_SEED(what, field)                                                                \
    {"seed", NULL, MU_OPT_INT, "S", "1", 0, 1e15, NULL, "seed of " what, field}

/* what: "runs", "steps" */
#define MU_OPTION_WARMUP(what, field)                                                              \
    {"warmup", NULL, MU_OPT_INT, "N", "1", 0, 100, NULL, "untimed " what " first", field}

#define MU_OPTION_JSON(help, field)                                                                \
    {"json", NULL, MU_OPT_FLAG, NULL, NULL, 0, 0, NULL, help, field}

/* Polynomial steps. Where 0 is allowed it means the method's default (MU_PE_DEFAULT_ITERS,
 * MU_NS5_DEFAULT_ITERS); where a command needs a count, its default is one of those or the
 * layouts' (MU_LAYOUT_DEFAULT_PE_ITERS), and help says which. */
#define MU_OPTION_ITERS(default_value, min, help, field)                                           \
    {"iters", NULL, MU_OPT_INT, "T", default_value, min, MU_SCHEDULE_MAX_ITERS, NULL, help, field}
#define MU_ITERS_METHOD_DEFAULT "polynomial steps; 0 = the method's default (polar-express and " \
                                "gram 8, ns5 5)"

/* The Polar Express schedule's shape (kernels/schedule.h): lower bound, cushion, safety. */
#define MU_OPTION_SCHEDULE(lower_help, lower_field, cushion_field, safety_field)                   \
    {"lower", NULL, MU_OPT_DOUBLE, "L", "1e-3", 1e-300, 0.999999, NULL, lower_help, lower_field},  \
    {"cushion", NULL, MU_OPT_DOUBLE, "C", "0.02407327424182761", 0, 0.999999, NULL,                \
     "cushion: each step is optimized on [max(l, C*u), u]", cushion_field},                        \
    {"safety", NULL, MU_OPT_DOUBLE, "S", "1.01", 1, 1e6, NULL,                                     \
     "safety: every step but the last is applied as p(x/S)", safety_field}

#define MU_OPTION_DTYPE(what, field)                                                               \
    {"dtype", NULL, MU_OPT_CHOICE, "D", "fp32", 0, 0, "fp32|fp64|bf16",                            \
     "precision " what " (bf16: bf16 storage, fp32 accumulation; cuda, or dnnl on "               \
     "AVX512-BF16/AMX)", field}

#define MU_OPTION_GRAM_DTYPE(field)                                                                \
    {"gram-dtype", NULL, MU_OPT_CHOICE, "D", "fp32", 0, 0, "fp32|fp64",                            \
     "precision of the Gram-side iteration (gram method)", field}
// clang-format on

#endif
