#include "kernels/matrix.h"

#include <string.h>

size_t mu_dtype_size(mu_dtype_t dtype)
{
    return dtype == MU_DTYPE_F32 ? sizeof(float) : sizeof(double);
}

const char *mu_dtype_name(mu_dtype_t dtype)
{
    return dtype == MU_DTYPE_F32 ? "fp32" : "fp64";
}

mu_status_t mu_dtype_parse(const char *name, mu_dtype_t *out)
{
    if (name && (strcmp(name, "fp32") == 0 || strcmp(name, "float32") == 0)) {
        *out = MU_DTYPE_F32;
        return MU_OK;
    }
    if (name && (strcmp(name, "fp64") == 0 || strcmp(name, "float64") == 0)) {
        *out = MU_DTYPE_F64;
        return MU_OK;
    }
    return mu_error(MU_ERR_INVALID, "unknown dtype '%s' (expected fp32 or fp64)",
                    name ? name : "(null)");
}

double mu_dtype_unit_roundoff(mu_dtype_t dtype)
{
    return dtype == MU_DTYPE_F32 ? 0x1.0p-24 : 0x1.0p-53;
}
