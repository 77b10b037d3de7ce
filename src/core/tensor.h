/* Tensors: a dtype, a shape (outermost dimension first, as in safetensors and torch), byte
 * strides and a pointer into a backend's memory. Views are tensors that share the pointer with
 * other strides, so they cost nothing. Also the scalar conversions between f32, f16 and bf16. */
#ifndef OM_TENSOR_H
#define OM_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Element types. The first OM_FLOAT_DTYPES hold one value per element; the others are the
 * block-quantized formats of GGUF files (ggml's layouts: a block of 32 or 256 elements with its
 * scales), which only whole rows of can be addressed. */
typedef enum {
    OM_F32 = 0,
    OM_F16,
    OM_BF16,
    OM_Q4_0,
    OM_Q4_1,
    OM_Q5_0,
    OM_Q5_1,
    OM_Q8_0,
    OM_Q2_K,
    OM_Q3_K,
    OM_Q4_K,
    OM_Q5_K,
    OM_Q6_K,
    OM_DTYPE_COUNT
} om_dtype;

#define OM_FLOAT_DTYPES 3

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

/* Bytes per element of the float types; 0 for block-quantized ones (use om_row_bytes). */
size_t om_dtype_size(om_dtype t);
const char *om_dtype_name(om_dtype t);
int om_dtype_is_quantized(om_dtype t);
/* Elements per block (1 for float types) and bytes per block. */
int om_dtype_block_size(om_dtype t);
size_t om_dtype_block_bytes(om_dtype t);
/* Bytes of a row of n elements; 0 when n is not a whole number of blocks. */
size_t om_row_bytes(om_dtype t, int64_t n);

/* A contiguous tensor over `data` with the given shape. For block-quantized dtypes the stride
 * of the last dimension is 0 (elements are not addressable) and the others count whole rows. */
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

/* Converts n elements of any dtype to f32 (for block-quantized dtypes n is a whole number of
 * blocks and src starts at a block). */
void om_convert_to_f32(float *dst, const void *src, om_dtype dtype, size_t n);

#endif
