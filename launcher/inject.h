/*
 * The launcher's side of fault injection (core/fault.h): checks the planted faults against
 * the layout, and plants the gradient faults (nan-grad, inf-grad, zero-grad, illcond) into
 * the gradients a step is about to read, from any trainer.
 */
#ifndef MU_LAUNCHER_INJECT_H
#define MU_LAUNCHER_INJECT_H

#include <stdint.h>

#include "launcher/runtime.h"

/* Parses spec (NULL or "": nothing planted) and checks every named parameter exists, and that
 * illcond names a matrix; a fault without a parameter gets the layout's first matrix (or
 * first parameter). */
mu_status_t mu_inject_setup(const mu_runtime_t *rt, const char *spec);

/* Before step steps_done + 1: plants the gradient faults that fire now on this rank. seed
 * makes illcond's rank-one gradient the same for any number of ranks. */
mu_status_t mu_inject_gradients(mu_runtime_t *rt, uint64_t seed);

#endif
