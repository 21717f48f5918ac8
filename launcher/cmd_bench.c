/* muond bench: dispatch to the benchmarks, plus their shared timing helpers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "launcher/bench.h"
#include "launcher/commands.h"

static int compare_doubles(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double mu_bench_median(double *values, int count)
{
    qsort(values, (size_t)count, sizeof *values, compare_doubles);
    return count % 2 ? values[count / 2] : 0.5 * (values[count / 2 - 1] + values[count / 2]);
}

mu_status_t mu_bench_parse_shape(const char *text, long *rows, long *cols)
{
    char tail;
    if (sscanf(text, "%ldx%ld%c", rows, cols, &tail) != 2 || *rows < 1 || *cols < 1 ||
        *rows > (1L << 20) || *cols > (1L << 20))
        return mu_error(MU_ERR_INVALID, "--shape: '%s' is not ROWSxCOLS with positive sizes", text);
    return MU_OK;
}

static void print_bench_usage(FILE *out)
{
    fprintf(out, "usage: muond bench <benchmark> [options]\n\n"
                 "benchmarks:\n"
                 "  kernels  time the orthogonalization kernels against the GEMM rate\n"
                 "  step     time the distributed optimizer step of a layout (under mpiexec)\n"
                 "  fallback time the residual certificate and the ScaLAPACK fallback against\n"
                 "           Polar Express (under mpiexec)\n"
                 "  schedules fixed against adaptive Polar Express schedules on recorded\n"
                 "           momenta: steps, time and exact descent per matrix\n"
                 "  roots    GEMMs and time to ||A X^p - I||_2 <= 1e-2: Inverse Root Express\n"
                 "           against coupled Newton and fp64 LAPACK dsyevd\n"
                 "  trainer  a PyTorch training step through muond (muond launch) against\n"
                 "           in-process torch AdamW and Muon, and the Python client's share\n"
                 "  scaling  strong and weak scaling of the step on 1..N Slurm nodes of this\n"
                 "           machine (slurm/local-cluster, root), set beside muond model\n");
}

int mu_cmd_bench(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_bench_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? MU_EXIT_USAGE : MU_EXIT_OK;
    }
    if (strcmp(argv[1], "kernels") == 0)
        return mu_bench_kernels(argc - 1, argv + 1);
    if (strcmp(argv[1], "step") == 0)
        return mu_bench_step(argc - 1, argv + 1);
    if (strcmp(argv[1], "fallback") == 0)
        return mu_bench_fallback(argc - 1, argv + 1);
    if (strcmp(argv[1], "schedules") == 0)
        return mu_bench_schedules(argc - 1, argv + 1);
    if (strcmp(argv[1], "trainer") == 0)
        return mu_bench_trainer(argc - 1, argv + 1);
    if (strcmp(argv[1], "roots") == 0)
        return mu_bench_roots(argc - 1, argv + 1);
    if (strcmp(argv[1], "scaling") == 0)
        return mu_bench_scaling(argc - 1, argv + 1);
    fprintf(stderr, "muond bench: unknown benchmark '%s'\n\n", argv[1]);
    print_bench_usage(stderr);
    return MU_EXIT_USAGE;
}
