#include "kernels/probes.h"

#include <math.h>

#include "core/rng.h"

void mu_probes_gaussian(uint64_t seed, uint64_t stream, int64_t rows, int k, double *v)
{
    for (int64_t i = 0; i < rows * k; i++)
        v[i] = mu_rng_normal(seed, stream, (uint64_t)i);
}

void mu_probes_signs(uint64_t seed, uint64_t stream, int64_t rows, int k, double *v)
{
    uint64_t bits = 0;
    for (int64_t i = 0; i < rows * k; i++) {
        if (i % 64 == 0)
            bits = mu_rng_bits(seed, stream, (uint64_t)(i / 64));
        v[i] = bits >> (i % 64) & 1 ? 1.0 : -1.0;
    }
}

double mu_probes_column_norm(const double *m, int64_t rows, int k, int col)
{
    double sum = 0.0;
    for (int64_t i = 0; i < rows; i++)
        sum += m[i * k + col] * m[i * k + col];
    return sqrt(sum);
}

double mu_probes_power_ratio(double *v, const double *e, int64_t rows, int k)
{
    double worst = 0.0;
    for (int j = 0; j < k; j++) {
        const double ne = mu_probes_column_norm(e, rows, k, j);
        const double nv = mu_probes_column_norm(v, rows, k, j);
        const double ratio = nv > 0.0 ? ne / nv : 0.0;
        if (!isfinite(ratio))
            return ratio;
        worst = fmax(worst, ratio);
        if (ne > 0.0)
            for (int64_t i = 0; i < rows; i++)
                v[i * k + j] = e[i * k + j] / ne;
    }
    return worst;
}
