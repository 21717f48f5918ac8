/*
 * Which OpenBLAS kernels (its "core type") this process runs, and choosing them by CPU
 * features where OpenBLAS's own choice falls short.
 *
 * Debian's OpenBLAS (DYNAMIC_ARCH) picks its core from a table of CPU models, and a model
 * newer than the library (a Sapphire Rapids Xeon for 0.3.21) gets a generic core such as
 * Prescott: SSE3 kernels, 5x slower than the AVX-512 ones on the same chip. OpenBLAS reads
 * OPENBLAS_CORETYPE once, when it loads, so the only way to correct it is to set the
 * variable and re-execute the program before main. kernels/cpu/blas_core.c does that from
 * a constructor in every binary that links the cpu backend, at most once per process
 * tree (a marker variable says it was done), and records what it did for the log.
 *
 * Settings (environment):
 *   OPENBLAS_CORETYPE=NAME  the user's own choice: always kept, never second-guessed
 *                           (a warning says so when it is generic on a better CPU).
 *   MUOND_BLAS_CORE=auto    (default) choose by features when OpenBLAS fell short;
 *                  keep     never re-execute;
 *                  NAME     run core NAME (e.g. Haswell, SkylakeX, Cooperlake).
 */
#ifndef MU_KERNELS_CPU_BLAS_CORE_H
#define MU_KERNELS_CPU_BLAS_CORE_H

#include <stdbool.h>
#include <stddef.h>

/* What the CPU's instruction set allows OpenBLAS to use, lowest to highest. */
typedef enum mu_isa_level {
    MU_ISA_GENERIC = 0, /* SSE only */
    MU_ISA_AVX = 1,
    MU_ISA_AVX2 = 2,       /* AVX2 + FMA */
    MU_ISA_AVX512 = 3,     /* AVX-512 F, BW, DQ, VL */
    MU_ISA_AVX512_BF16 = 4 /* the above and AVX512_BF16 */
} mu_isa_level_t;

/* The level a /proc/cpuinfo "flags" line allows (space-separated flag names). */
mu_isa_level_t mu_isa_level_from_flags(const char *flags);
/* The level an OpenBLAS core name's kernels use (Prescott: generic; Haswell, Zen: avx2;
 * SkylakeX: avx512; Cooperlake, SapphireRapids: avx512-bf16); unknown names are generic. */
mu_isa_level_t mu_isa_level_of_core(const char *core);
const char *mu_isa_level_name(mu_isa_level_t level);

/* The core to ask OpenBLAS for on a CPU of this vendor ("GenuineIntel", "AuthenticAMD")
 * and level, or NULL when the current core already uses everything the CPU has. */
const char *mu_blas_core_better(const char *current_core, mu_isa_level_t cpu_level,
                                const char *vendor);

/* What this process runs and how it came to: a one-line account for the log and for
 * `muond blas`, e.g. "Cooperlake (chosen by muond from its features, the CPU has avx512-bf16;
 * OpenBLAS picked Prescott)". */
void mu_blas_core_describe(char *out, size_t out_len);
/* The core OpenBLAS runs now. */
const char *mu_blas_core_current(void);
/* The CPU's level, vendor and model line, read once from /proc/cpuinfo. */
mu_isa_level_t mu_blas_cpu_level(void);
const char *mu_blas_cpu_model(void);
/* True when the core runs below what the CPU allows (a generic core on an AVX2 CPU, say). */
bool mu_blas_core_lagging(void);

#endif
