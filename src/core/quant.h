/* Block-quantized weight formats (ggml's, as stored in GGUF files): dequantization to f32 in
 * portable C. Every format has it, so any quantized tensor can be used through a dequantizing
 * path; the formats that matter for speed also have SIMD dot-product kernels (cpu/). */
#ifndef OM_QUANT_H
#define OM_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

/* dst[0..n) = the n elements (a whole number of blocks) starting at src. */
void om_dequantize(om_dtype t, const void *src, float *dst, size_t n);

/* The eight 6-bit sub-block scales and minimums of a Q4_K or Q5_K super-block, from its
 * 12 packed bytes (shared with the dot-product kernels, which must read them the same way). */
void om_q4k_scales(const uint8_t *packed, uint8_t sc[8], uint8_t mn[8]);

#endif
