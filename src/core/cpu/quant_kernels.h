/* Matmul kernels for weights in GGUF block formats (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K,
 * Q6_K), used in place: the weight bytes are read straight from the (possibly mmap'd) file,
 * the activations are quantized to 8 bits on the fly and the dot products are integer (see
 * quant_internal.h). Formats without a kernel keep a NULL entry and go through the
 * dequantizing fallback of cpu_backend.c. */
#ifndef OM_QUANT_KERNELS_H
#define OM_QUANT_KERNELS_H

#include "core/cpu/cpu_kernels.h"

/* Instruction-set levels, as kernels.c numbers its sets. */
enum { OM_QUANT_PORTABLE = 0, OM_QUANT_AVX2 = 1, OM_QUANT_AVX512 = 2 };

/* Fills set->matmul[] for the quantized dtypes with the kernels of the given level; the caller
 * has checked that the CPU supports that level (AVX2+FMA+F16C; AVX-512 F/BW/VL/DQ). At the
 * AVX-512 level the VNNI variant (vpdpbusd) is chosen when the CPU has AVX512_VNNI, unless
 * OMINIX_CPU_VNNI=0. Entries for the float dtypes are left alone. */
void om_quant_kernels_fill(om_cpu_kernels *set, int level);

/* Whether om_quant_kernels_fill would choose the VNNI variant at the AVX-512 level now. */
int om_quant_avx512_vnni(void);

#endif
