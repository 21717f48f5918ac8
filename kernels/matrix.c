#include "kernels/matrix.h"

#include <string.h>

size_t mu_dtype_size(mu_dtype_t dtype)
{
    switch (dtype) {
    case MU_DTYPE_F32:
        return sizeof(float);
    case MU_DTYPE_BF16:
        return sizeof(uint16_t);
    default:
        return sizeof(double);
    }
}

const char *mu_dtype_name(mu_dtype_t dtype)
{
    switch (dtype) {
    case MU_DTYPE_F32:
        return "fp32";
    case MU_DTYPE_BF16:
        return "bf16";
    default:
        return "fp64";
    }
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
    if (name && (strcmp(name, "bf16") == 0 || strcmp(name, "bfloat16") == 0)) {
        *out = MU_DTYPE_BF16;
        return MU_OK;
    }
    return mu_error(MU_ERR_INVALID, "unknown dtype '%s' (expected fp32, fp64 or bf16)",
                    name ? name : "(null)");
}

double mu_dtype_unit_roundoff(mu_dtype_t dtype)
{
    switch (dtype) {
    case MU_DTYPE_F32:
        return 0x1.0p-24;
    case MU_DTYPE_BF16:
        return 0x1.0p-8;
    default:
        return 0x1.0p-53;
    }
}

uint16_t mu_bf16_from_f32(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) /* NaN: keep the sign, force a quiet NaN */
        return (uint16_t)((bits >> 16) | 0x0040u);
    /* Round to nearest, ties to even: add 0x7fff plus the lowest kept bit, then truncate.
     * Overflow past the largest finite bf16 correctly becomes infinity. */
    const uint32_t lowest_kept = (bits >> 16) & 1u;
    return (uint16_t)((bits + 0x7fffu + lowest_kept) >> 16);
}

float mu_bf16_to_f32(uint16_t value)
{
    const uint32_t bits = (uint32_t)value << 16;
    float out;
    memcpy(&out, &bits, sizeof out);
    return out;
}
