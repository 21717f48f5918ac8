#include "core/rng.h"

#include <math.h>
#include <xxhash.h>

uint64_t mu_rng_bits(uint64_t seed, uint64_t stream, uint64_t index)
{
    const uint64_t key[2] = {stream, index};
    return XXH3_64bits_withSeed(key, sizeof key, seed);
}

double mu_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index)
{
    /* The top 53 bits fill a double's mantissa exactly; the +0.5 keeps the value off 0 and 1. */
    const uint64_t bits = mu_rng_bits(seed, stream, index) >> 11;
    return ((double)bits + 0.5) * 0x1.0p-53;
}

double mu_rng_normal(uint64_t seed, uint64_t stream, uint64_t index)
{
    const double two_pi = 6.283185307179586476925286766559;
    const double u1 = mu_rng_uniform(seed, stream, 2 * index);
    const double u2 = mu_rng_uniform(seed, stream, 2 * index + 1);
    return sqrt(-2.0 * log(u1)) * cos(two_pi * u2);
}
