/*
 * A dense row-major matrix view. The memory belongs to the backend that allocated it
 * (host memory for cpu/reference, device memory for cuda) and is released through that
 * same backend; a view never owns anything by itself.
 */
#ifndef MU_KERNELS_MATRIX_H
#define MU_KERNELS_MATRIX_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* fp32 and fp64 are compute types. bf16 (bfloat16: fp32's exponent, 8 mantissa bits) is a
 * storage type for the exchange: copies convert to and from it (round to nearest even), the
 * arithmetic kernels reject it. */
typedef enum mu_dtype { MU_DTYPE_F32 = 0, MU_DTYPE_F64 = 1, MU_DTYPE_BF16 = 2 } mu_dtype_t;

typedef struct mu_mat {
    int64_t rows, cols;
    int64_t ld; /* elements between the starts of consecutive rows; ld >= cols */
    mu_dtype_t dtype;
    void *data;
} mu_mat_t;

size_t mu_dtype_size(mu_dtype_t dtype);
const char *mu_dtype_name(mu_dtype_t dtype); /* "fp32" / "fp64" / "bf16" */
mu_status_t mu_dtype_parse(const char *name, mu_dtype_t *out);

/* Unit roundoff of the dtype (2^-24 for fp32, 2^-53 for fp64, 2^-8 for bf16). */
double mu_dtype_unit_roundoff(mu_dtype_t dtype);

/* fp32 <-> bf16, rounding to nearest even; NaN stays a (quiet) NaN, infinities stay. */
uint16_t mu_bf16_from_f32(float value);
float mu_bf16_to_f32(uint16_t value);

#endif
