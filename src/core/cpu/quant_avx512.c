/* Quantized matmul tiles for AVX-512 F/BW/VL/DQ without VNNI (products via vpmaddubsw and
 * vpmaddwd); the code is in quant_avx512_impl.h, shared with the VNNI build. */
#define OM_QUANT_FILL_NAME om_quant_fill_avx512
#include "core/cpu/quant_avx512_impl.h"
