/* kernels/cpu/blas_core: reading the CPU's level from its flags, and which OpenBLAS core a
 * CPU of that level should run when OpenBLAS's own pick falls short. */
#include <criterion/criterion.h>
#include <string.h>

#include "kernels/cpu/blas_core.h"

/* Flag lines as /proc/cpuinfo prints them (abridged), one per machine class. */
static const char sapphire_rapids[] =
    ": fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 avx512f avx512dq avx512cd avx512bw "
    "avx512vl avx512_bf16 amx_bf16 amx_tile amx_int8\n";
static const char skylake_x[] = ": sse sse2 avx fma avx2 avx512f avx512dq avx512cd avx512bw avx512vl";
static const char zen3[] = ": sse sse2 ssse3 avx f16c fma avx2 bmi2 sha_ni vaes";
static const char sandy[] = ": sse sse2 ssse3 avx";
/* Substrings of real flags must not count: "avx512vl" is not "avx512", "avx2" not "avx". */
static const char decoys[] = ": sse avx512vl_x xavx2 avx512fx fma3";

Test(blas_core, level_from_flags)
{
    cr_expect_eq(mu_isa_level_from_flags(sapphire_rapids), MU_ISA_AVX512_BF16);
    cr_expect_eq(mu_isa_level_from_flags(skylake_x), MU_ISA_AVX512);
    cr_expect_eq(mu_isa_level_from_flags(zen3), MU_ISA_AVX2);
    cr_expect_eq(mu_isa_level_from_flags(sandy), MU_ISA_AVX);
    cr_expect_eq(mu_isa_level_from_flags(decoys), MU_ISA_GENERIC);
    cr_expect_eq(mu_isa_level_from_flags(NULL), MU_ISA_GENERIC);
}

Test(blas_core, level_of_core_names)
{
    cr_expect_eq(mu_isa_level_of_core("Prescott"), MU_ISA_GENERIC);
    cr_expect_eq(mu_isa_level_of_core("Nehalem"), MU_ISA_GENERIC);
    cr_expect_eq(mu_isa_level_of_core("zen"), MU_ISA_AVX2, "case-insensitive, as OpenBLAS");
    cr_expect_eq(mu_isa_level_of_core("Haswell"), MU_ISA_AVX2);
    cr_expect_eq(mu_isa_level_of_core("SkylakeX"), MU_ISA_AVX512);
    cr_expect_eq(mu_isa_level_of_core("Cooperlake"), MU_ISA_AVX512_BF16);
}

/* The case issue 17 measured: Debian's 0.3.21 picks Prescott on a Sapphire Rapids Xeon;
 * Cooperlake (its newest AVX-512 + BF16 kernels) ran sgemm 4.8x faster there. */
Test(blas_core, generic_core_on_new_xeon_is_replaced)
{
    cr_expect_str_eq(mu_blas_core_better("Prescott", MU_ISA_AVX512_BF16, "GenuineIntel"),
                     "Cooperlake");
    cr_expect_str_eq(mu_blas_core_better("Prescott", MU_ISA_AVX512, "GenuineIntel"), "SkylakeX");
    cr_expect_str_eq(mu_blas_core_better("Haswell", MU_ISA_AVX512, "GenuineIntel"), "SkylakeX");
    cr_expect_str_eq(mu_blas_core_better("Prescott", MU_ISA_AVX2, "GenuineIntel"), "Haswell");
    cr_expect_str_eq(mu_blas_core_better("Prescott", MU_ISA_AVX2, "AuthenticAMD"), "Zen");
    cr_expect_str_eq(mu_blas_core_better("Core2", MU_ISA_AVX, "GenuineIntel"), "Sandybridge");
}

Test(blas_core, good_core_is_left_alone)
{
    cr_expect_null(mu_blas_core_better("Zen", MU_ISA_AVX2, "AuthenticAMD"));
    cr_expect_null(mu_blas_core_better("Haswell", MU_ISA_AVX2, "AuthenticAMD"));
    cr_expect_null(mu_blas_core_better("Cooperlake", MU_ISA_AVX512_BF16, "GenuineIntel"));
    cr_expect_null(mu_blas_core_better("SkylakeX", MU_ISA_AVX2, "GenuineIntel"),
                   "a core above the CPU is the user's business, not a lag");
    cr_expect_null(mu_blas_core_better("Prescott", MU_ISA_GENERIC, "GenuineIntel"));
}

/* This very process: whatever the CPU, the constructor must have left it on a core that
 * uses all the CPU has (the suite runs without OPENBLAS_CORETYPE or MUOND_BLAS_CORE). */
Test(blas_core, this_process_runs_the_best_core)
{
    char how[256];
    mu_blas_core_describe(how, sizeof how);
    cr_expect(!mu_blas_core_lagging(), "OpenBLAS core lags the CPU (%s): %s",
              mu_isa_level_name(mu_blas_cpu_level()), how);
}
