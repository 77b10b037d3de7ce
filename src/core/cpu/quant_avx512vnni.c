/* Quantized matmul tiles for AVX-512 with AVX512_VNNI (vpdpbusd, vpdpwssd: multiply and
 * accumulate in one instruction); compiled with -mavx512vnni by its own CMake rule, chosen at
 * run time only where cpuid reports the extension (quant_portable.c). The code is in
 * quant_avx512_impl.h, shared with the plain AVX-512 build. A build without that rule (or a
 * compiler without the flag) compiles this file as a stub that fills the plain AVX-512 tiles. */
#include "core/cpu/quant_internal.h"

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
const int om_quant_avx512vnni_built = 1;
#define OM_QUANT_VNNI 1
#define OM_QUANT_FILL_NAME om_quant_fill_avx512vnni
#include "core/cpu/quant_avx512_impl.h"
#else
const int om_quant_avx512vnni_built = 0;
void om_quant_fill_avx512vnni(om_cpu_kernels *set) { om_quant_fill_avx512(set); }
#endif
