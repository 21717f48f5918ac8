/* Shared by the Remez solvers (minimax.c for odd quintics, root_minimax.c for inverse roots). */
#ifndef MU_KERNELS_MINIMAX_IMPL_H
#define MU_KERNELS_MINIMAX_IMPL_H

#include <stdbool.h>

/* Gaussian elimination with partial pivoting on a 4x4 system in extended precision: rhs
 * becomes the solution; false if the matrix is singular. */
bool mu_solve4l(long double m[4][4], long double rhs[4]);

#endif
