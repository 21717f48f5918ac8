/*
 * Counter-based random numbers: every value is a pure function of (seed, stream, index),
 * hashed with XXH3 (libxxhash). No generator state exists, so any rank can produce any element
 * of any stream in any order and get the same number: synthetic gradients and test matrices do
 * not depend on how the work is split.
 */
#ifndef MU_CORE_RNG_H
#define MU_CORE_RNG_H

#include <stdint.h>

/* 64 uniformly distributed bits. */
uint64_t mu_rng_bits(uint64_t seed, uint64_t stream, uint64_t index);

/* Uniform in the open interval (0, 1); never exactly 0, so log() of it is finite. */
double mu_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index);

/* Standard normal (Box-Muller over the uniforms at 2*index and 2*index+1). */
double mu_rng_normal(uint64_t seed, uint64_t stream, uint64_t index);

#endif
