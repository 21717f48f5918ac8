/* Choosing OpenBLAS's core type by CPU features, before main (see kernels/cpu/blas_core.h). */
#define _GNU_SOURCE
#include "kernels/cpu/blas_core.h"

#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/knobs.h"

/* Set by the process that re-executed to "TARGET:PICKED:REASON": the core muond asked for,
 * the one OpenBLAS had picked, and why. Children inherit it, so a process tree re-executes
 * at most once (its descendants already carry OPENBLAS_CORETYPE). */
#define CHOSEN_MARKER "MUOND_BLAS_CORE_CHOSEN"

typedef enum how_chosen {
    BY_OPENBLAS,  /* OpenBLAS's own pick was already the best */
    BY_MUOND,     /* muond re-executed with OPENBLAS_CORETYPE (this process or a parent) */
    BY_USER,      /* OPENBLAS_CORETYPE was set by the user */
    KEPT,         /* MUOND_BLAS_CORE=keep */
    REFUSED,      /* MUOND_BLAS_CORE named a core whose instructions the CPU lacks */
    REEXEC_FAILED /* wanted to re-execute and could not */
} how_chosen_t;

/* One process-wide fact, settled before main and read-only afterwards. */
static struct {
    char vendor[32];
    char model[128];
    mu_isa_level_t level;
    how_chosen_t how;
    char target[32];  /* the core muond asked for (BY_MUOND, REEXEC_FAILED) */
    char picked[32];  /* the core OpenBLAS had picked by itself */
    char reason[64];  /* "features" or "MUOND_BLAS_CORE" */
    int exec_errno;   /* REEXEC_FAILED */
} blas;

static const struct {
    const char *core;
    mu_isa_level_t level;
} core_levels[] = {
    {"Sandybridge", MU_ISA_AVX},  {"Bulldozer", MU_ISA_AVX},     {"Piledriver", MU_ISA_AVX},
    {"Steamroller", MU_ISA_AVX},  {"Haswell", MU_ISA_AVX2},      {"Zen", MU_ISA_AVX2},
    {"Excavator", MU_ISA_AVX2},   {"SkylakeX", MU_ISA_AVX512},   {"Cooperlake", MU_ISA_AVX512_BF16},
    {"SapphireRapids", MU_ISA_AVX512_BF16},
};

static bool has_flag(const char *flags, const char *name)
{
    const size_t len = strlen(name);
    for (const char *p = flags; (p = strstr(p, name)) != NULL; p += len) {
        const bool starts = p == flags || p[-1] == ' ' || p[-1] == '\t';
        const bool ends = p[len] == '\0' || p[len] == ' ' || p[len] == '\n' || p[len] == '\t';
        if (starts && ends)
            return true;
    }
    return false;
}

mu_isa_level_t mu_isa_level_from_flags(const char *flags)
{
    if (!flags)
        return MU_ISA_GENERIC;
    const bool avx512 = has_flag(flags, "avx512f") && has_flag(flags, "avx512bw") &&
                        has_flag(flags, "avx512dq") && has_flag(flags, "avx512vl");
    if (avx512)
        return has_flag(flags, "avx512_bf16") ? MU_ISA_AVX512_BF16 : MU_ISA_AVX512;
    if (has_flag(flags, "avx2") && has_flag(flags, "fma"))
        return MU_ISA_AVX2;
    return has_flag(flags, "avx") ? MU_ISA_AVX : MU_ISA_GENERIC;
}

mu_isa_level_t mu_isa_level_of_core(const char *core)
{
    for (size_t i = 0; core && i < sizeof core_levels / sizeof core_levels[0]; i++)
        if (strcasecmp(core, core_levels[i].core) == 0)
            return core_levels[i].level;
    return MU_ISA_GENERIC;
}

const char *mu_isa_level_name(mu_isa_level_t level)
{
    static const char *const names[] = {"sse", "avx", "avx2", "avx512", "avx512-bf16"};
    return level >= MU_ISA_GENERIC && level <= MU_ISA_AVX512_BF16 ? names[level] : "?";
}

const char *mu_blas_core_better(const char *current_core, mu_isa_level_t cpu_level,
                                const char *vendor)
{
    if (mu_isa_level_of_core(current_core) >= cpu_level)
        return NULL;
    const bool amd = vendor && strcmp(vendor, "AuthenticAMD") == 0;
    switch (cpu_level) {
    case MU_ISA_AVX512_BF16:
        return "Cooperlake";
    case MU_ISA_AVX512:
        return "SkylakeX";
    case MU_ISA_AVX2:
        return amd ? "Zen" : "Haswell";
    case MU_ISA_AVX:
        return "Sandybridge";
    default:
        return NULL;
    }
}

/* The value of "key<spaces>: value" into out, when line is that key's line. */
static void take_field(const char *line, const char *key, char *out, size_t out_len)
{
    const size_t len = strlen(key);
    if (strncmp(line, key, len) != 0 || out[0])
        return;
    const char *colon = strchr(line + len, ':');
    if (!colon)
        return;
    snprintf(out, out_len, "%s", colon + 1 + (colon[1] == ' '));
    out[strcspn(out, "\n")] = '\0';
}

/* The first processor's vendor, model and level (the flags line is long: read by getline). */
static void read_cpuinfo(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        take_field(line, "vendor_id", blas.vendor, sizeof blas.vendor);
        take_field(line, "model name", blas.model, sizeof blas.model);
        if (strncmp(line, "flags", 5) == 0) {
            blas.level = mu_isa_level_from_flags(strchr(line, ':'));
            break;
        }
    }
    free(line);
    fclose(f);
}

/* The core to re-execute with, or NULL; *reason says who wants it. */
static const char *wanted_core(const char *current, const char **reason)
{
    const char *mode = getenv(mu_knob_env(MU_KNOB_BLAS_CORE));
    if (mode && *mode && strcasecmp(mode, "auto") != 0) {
        *reason = mu_knob_env(MU_KNOB_BLAS_CORE);
        if (mu_isa_level_of_core(mode) > blas.level) { /* its kernels would fault: SIGILL */
            blas.how = REFUSED;
            snprintf(blas.target, sizeof blas.target, "%s", mode);
            return NULL;
        }
        return strcasecmp(mode, current) == 0 ? NULL : mode;
    }
    *reason = "features";
    return mu_blas_core_better(current, blas.level, blas.vendor);
}

/* Where a parent re-executed: what it asked for and why, from the marker. */
static void adopt_marker(const char *marker)
{
    blas.how = BY_MUOND;
    sscanf(marker, "%31[^:]:%31[^:]:%63s", blas.target, blas.picked, blas.reason);
}

static void reexecute(char **argv, const char *target, const char *reason)
{
    char marker[160];
    snprintf(marker, sizeof marker, "%s:%s:%s", target, blas.picked, reason);
    setenv("OPENBLAS_CORETYPE", target, 1);
    setenv(CHOSEN_MARKER, marker, 1);
    /* The binary's own path, not /proc/self/exe: the kernel names a process after the file
     * it executes, and "exe" would hide muond from pgrep, ps and the tests that find it. */
    char self[4096];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        execv(self, argv);
    }
    execv("/proc/self/exe", argv); /* the file was replaced (a rebuild) or is out of reach */
    /* Still here: run on with what OpenBLAS picked, and say so in the log. */
    blas.exec_errno = errno;
    blas.how = REEXEC_FAILED;
    snprintf(blas.target, sizeof blas.target, "%s", target);
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv(CHOSEN_MARKER);
}

/* glibc calls the executable's constructors with (argc, argv, envp); OpenBLAS's own
 * constructor has run by then (a library initializes before the program that links it). */
__attribute__((constructor)) static void select_blas_core(int argc, char **argv)
{
    (void)argc;
    read_cpuinfo();
    snprintf(blas.picked, sizeof blas.picked, "%s", openblas_get_corename());
    const char *marker = getenv(CHOSEN_MARKER);
    const char *user = getenv("OPENBLAS_CORETYPE");
    const char *mode = getenv(mu_knob_env(MU_KNOB_BLAS_CORE));
    if (marker && *marker) {
        adopt_marker(marker);
        return;
    }
    if (user && *user) {
        blas.how = BY_USER;
        return;
    }
    if (mode && strcasecmp(mode, "keep") == 0) {
        blas.how = KEPT;
        return;
    }
    const char *reason;
    const char *target = wanted_core(blas.picked, &reason);
    if (target && argv && argv[0])
        reexecute(argv, target, reason);
}

const char *mu_blas_core_current(void)
{
    return openblas_get_corename();
}

mu_isa_level_t mu_blas_cpu_level(void)
{
    return blas.level;
}

const char *mu_blas_cpu_model(void)
{
    return blas.model[0] ? blas.model : "unknown CPU";
}

bool mu_blas_core_lagging(void)
{
    return mu_isa_level_of_core(mu_blas_core_current()) < blas.level;
}

void mu_blas_core_describe(char *out, size_t out_len)
{
    const char *core = mu_blas_core_current();
    const char *cpu = mu_isa_level_name(blas.level);
    switch (blas.how) {
    case BY_MUOND:
        if (strcasecmp(core, blas.target) != 0)
            snprintf(out, out_len,
                     "%s (muond asked for %s, which this OpenBLAS does not have; it picked %s)",
                     core, blas.target, blas.picked);
        else
            snprintf(out, out_len,
                     "%s (chosen by muond from %s, the CPU has %s; OpenBLAS picked %s)", core,
                     strcmp(blas.reason, "features") == 0 ? "its features"
                                                          : mu_knob_env(MU_KNOB_BLAS_CORE),
                     cpu, blas.picked);
        return;
    case BY_USER:
        snprintf(out, out_len, "%s (OPENBLAS_CORETYPE, the user's choice; the CPU has %s)", core,
                 cpu);
        return;
    case KEPT:
        snprintf(out, out_len, "%s (%s=keep; the CPU has %s)", core, mu_knob_env(MU_KNOB_BLAS_CORE),
                 cpu);
        return;
    case REFUSED:
        snprintf(out, out_len, "%s (%s=%s refused: its kernels need %s, the CPU has %s)", core,
                 mu_knob_env(MU_KNOB_BLAS_CORE), blas.target,
                 mu_isa_level_name(mu_isa_level_of_core(blas.target)), cpu);
        return;
    case REEXEC_FAILED:
        snprintf(out, out_len, "%s (re-executing with OPENBLAS_CORETYPE=%s failed: %s)", core,
                 blas.target, strerror(blas.exec_errno));
        return;
    case BY_OPENBLAS:
        break;
    }
    snprintf(out, out_len, "%s (OpenBLAS's choice; the CPU has %s)", core, cpu);
}
