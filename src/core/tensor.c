/* Tensor descriptors and dtype conversions (see tensor.h). */
#include "core/tensor.h"

#include <stdio.h>

#include "core/quant.h"

static const struct {
    const char *name;
    int block;
    size_t bytes;
} dtype_info[OM_DTYPE_COUNT] = {
    [OM_F32] = {"F32", 1, 4},      [OM_F16] = {"F16", 1, 2},        [OM_BF16] = {"BF16", 1, 2},
    [OM_Q4_0] = {"Q4_0", 32, 18},  [OM_Q4_1] = {"Q4_1", 32, 20},    [OM_Q5_0] = {"Q5_0", 32, 22},
    [OM_Q5_1] = {"Q5_1", 32, 24},  [OM_Q8_0] = {"Q8_0", 32, 34},    [OM_Q2_K] = {"Q2_K", 256, 84},
    [OM_Q3_K] = {"Q3_K", 256, 110}, [OM_Q4_K] = {"Q4_K", 256, 144}, [OM_Q5_K] = {"Q5_K", 256, 176},
    [OM_Q6_K] = {"Q6_K", 256, 210},
};

size_t om_dtype_size(om_dtype t) {
    return (unsigned)t < OM_DTYPE_COUNT && dtype_info[t].block == 1 ? dtype_info[t].bytes : 0;
}

const char *om_dtype_name(om_dtype t) { return (unsigned)t < OM_DTYPE_COUNT ? dtype_info[t].name : "?"; }

int om_dtype_is_quantized(om_dtype t) { return (unsigned)t < OM_DTYPE_COUNT && dtype_info[t].block > 1; }

int om_dtype_block_size(om_dtype t) { return (unsigned)t < OM_DTYPE_COUNT ? dtype_info[t].block : 0; }

size_t om_dtype_block_bytes(om_dtype t) { return (unsigned)t < OM_DTYPE_COUNT ? dtype_info[t].bytes : 0; }

size_t om_row_bytes(om_dtype t, int64_t n) {
    if ((unsigned)t >= OM_DTYPE_COUNT || n < 0 || n % dtype_info[t].block) return 0;
    return (size_t)(n / dtype_info[t].block) * dtype_info[t].bytes;
}

om_tensor om_tensor_view(void *data, om_dtype dtype, int ndim, const int64_t *shape) {
    om_tensor t = {0};
    t.dtype = dtype;
    t.ndim = ndim;
    t.data = data;
    int64_t s = (int64_t)om_dtype_size(dtype);
    for (int i = ndim - 1; i >= 0; i--) {
        t.shape[i] = shape[i];
        if (i == ndim - 1 && om_dtype_is_quantized(dtype)) {
            t.stride[i] = 0;
            s = (int64_t)om_row_bytes(dtype, shape[i]);
            continue;
        }
        t.stride[i] = s;
        s *= shape[i];
    }
    return t;
}

om_tensor om_tensor_2d(void *data, om_dtype dtype, int64_t rows, int64_t cols) {
    int64_t shape[2] = {rows, cols};
    return om_tensor_view(data, dtype, 2, shape);
}

int64_t om_tensor_nelements(const om_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

int om_tensor_is_contiguous(const om_tensor *t) {
    int64_t s = (int64_t)om_dtype_size(t->dtype);
    int last = t->ndim - 1;
    if (om_dtype_is_quantized(t->dtype)) {
        s = (int64_t)om_row_bytes(t->dtype, t->shape[last]);
        last--;
    }
    for (int i = last; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return 0;
        s *= t->shape[i];
    }
    return 1;
}

om_tensor om_tensor_rows(const om_tensor *t, int64_t first, int64_t count) {
    om_tensor r = *t;
    r.data = (char *)t->data + first * t->stride[0];
    r.shape[0] = count;
    return r;
}

const char *om_shape_str(const int64_t *shape, int ndim, char *buf, size_t size) {
    size_t used = 0;
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

float om_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (mant == 0) {
            u = sign;
        } else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400u)) {
                mant <<= 1;
                exp--;
            }
            mant &= 0x3ffu;
            u = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (mant << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t om_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    int32_t exp = (int32_t)((u >> 23) & 0xff) - 127 + 15;
    uint32_t mant = u & 0x7fffffu;
    if (((u >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00u);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        mant |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)exp << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1))) half++;
    return (uint16_t)half;
}

void om_convert_to_f32(float *dst, const void *src, om_dtype dtype, size_t n) {
    switch (dtype) {
    case OM_F32: memcpy(dst, src, n * 4); break;
    case OM_F16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = om_f16_to_f32(s[i]);
        break;
    }
    case OM_BF16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = om_bf16_to_f32(s[i]);
        break;
    }
    default: om_dequantize(dtype, src, dst, n); break;
    }
}
