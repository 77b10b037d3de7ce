/* CPU compute kernels behind the CPU backend. Each kernel exists as portable C and, where it
 * pays, as AVX2+FMA and AVX-512 versions in their own files (compiled with their own -m flags);
 * om_cpu_kernels() picks the best set the running CPU supports, once. Kernels work on a range
 * of output columns so that the backend can split work across threads. */
#ifndef OM_CPU_KERNELS_H
#define OM_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

/* y[m*ldy + n] = sum_k x[m*ldx + k] * w(n, k) for m in [0, M), n in [n0, n1).
 * w is row-major [N, K] in dtype wdt with row stride ldw_bytes; x and y are f32. */
typedef void (*om_matmul_fn)(int M, int K, const float *x, size_t ldx, const void *w, size_t ldw_bytes,
                             float *y, size_t ldy, int n0, int n1);

/* Dot product of f32 a and b of length n. */
typedef float (*om_dot_f32_fn)(const float *a, const float *b, int n);
/* y[i] += alpha * x[i] for i < n. */
typedef void (*om_axpy_f32_fn)(float *y, const float *x, float alpha, int n);
/* Sum of the n floats at a (reads at full memory speed; membw.c measures with it). */
typedef float (*om_sum_f32_fn)(const float *a, size_t n);

typedef struct om_cpu_kernels {
    const char *name; /* "avx512", "avx2", "portable" */
    om_matmul_fn matmul[OM_DTYPE_COUNT]; /* indexed by the weight's dtype */
    om_dot_f32_fn dot_f32;
    om_axpy_f32_fn axpy_f32;
    om_sum_f32_fn sum_f32;
} om_cpu_kernels;

/* The best kernels for this CPU; OMINIX_CPU=portable|avx2|avx512 forces a lower set. */
const om_cpu_kernels *om_cpu_kernels_get(void);

/* Each set, for tests that compare them; NULL where the CPU or the build lacks it. */
const om_cpu_kernels *om_cpu_kernels_portable(void);
const om_cpu_kernels *om_cpu_kernels_avx2(void);
const om_cpu_kernels *om_cpu_kernels_avx512(void);

#endif
