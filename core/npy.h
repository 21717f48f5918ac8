/*
 * NumPy .npy files holding one 2-D float32 or float64 matrix (format versions 1.0, 2.0, 3.0;
 * C or Fortran order; either byte order). Reading is strict: a wrong magic, an unknown dtype,
 * a shape that is not 2-D, truncated data or trailing bytes are errors whose message names
 * the file and what is wrong. Writing is atomic: a temporary file in the same directory is
 * written, flushed to disk and renamed over the target, so a failed write never leaves a
 * half-written OUT behind.
 */
#ifndef MU_CORE_NPY_H
#define MU_CORE_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum mu_npy_type { MU_NPY_F32, MU_NPY_F64 } mu_npy_type_t;

typedef struct mu_npy_header {
    mu_npy_type_t type;
    bool big_endian;
    bool fortran_order;
    int64_t rows, cols;
    size_t data_offset; /* bytes from the start of the file to the first element */
} mu_npy_header_t;

/* Parses the magic, version and header dictionary at the start of buf (len bytes).
 * `what` names the source in error messages (usually the path). */
mu_status_t mu_npy_parse_header(const uint8_t *buf, size_t len, const char *what,
                                mu_npy_header_t *out);

/* Reads a 2-D float32/float64 .npy into a newly malloc'ed row-major double array
 * (*data_out, rows*cols elements; NULL when the matrix is empty). The caller frees it. */
mu_status_t mu_npy_read_matrix(const char *path, double **data_out, int64_t *rows, int64_t *cols);

/* Writes a row-major matrix (float when type is MU_NPY_F32, double for MU_NPY_F64) as a
 * little-endian, C-order .npy, atomically. */
mu_status_t mu_npy_write_matrix(const char *path, const void *data, mu_npy_type_t type,
                                int64_t rows, int64_t cols);

#endif
