/* Tensors: a dtype, a shape (outermost dimension first, as in safetensors and torch), byte
 * strides and a pointer into a backend's memory. Views are tensors that share the pointer with
 * other strides, so they cost nothing. Also the scalar conversions between f32, f16 and bf16. */
#ifndef OM_TENSOR_H
#define OM_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum { OM_F32 = 0, OM_F16, OM_BF16, OM_DTYPE_COUNT } om_dtype;

#define OM_MAX_DIMS 4

struct om_backend;

typedef struct om_tensor {
    om_dtype dtype;
    int ndim;
    int64_t shape[OM_MAX_DIMS];  /* shape[0] is the outermost dimension */
    int64_t stride[OM_MAX_DIMS]; /* in bytes */
    void *data;
    struct om_backend *backend; /* NULL: host memory */
} om_tensor;

size_t om_dtype_size(om_dtype t);
const char *om_dtype_name(om_dtype t);

/* A contiguous tensor over `data` with the given shape. */
om_tensor om_tensor_view(void *data, om_dtype dtype, int ndim, const int64_t *shape);
om_tensor om_tensor_2d(void *data, om_dtype dtype, int64_t rows, int64_t cols);
int64_t om_tensor_nelements(const om_tensor *t);
int om_tensor_is_contiguous(const om_tensor *t);
/* Rows [first, first + count) of a 2-D tensor. */
om_tensor om_tensor_rows(const om_tensor *t, int64_t first, int64_t count);
/* Formats the shape as "[a, b, c]" into buf. */
const char *om_shape_str(const int64_t *shape, int ndim, char *buf, size_t size);

static inline float om_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Round to nearest even; NaN stays NaN. */
static inline uint16_t om_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float om_f16_to_f32(uint16_t h);
uint16_t om_f32_to_f16(float f);

/* Converts n elements of any dtype to f32. */
void om_convert_to_f32(float *dst, const void *src, om_dtype dtype, size_t n);

#endif
