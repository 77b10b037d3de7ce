/* Shared between the quantized matmul kernel files (quant_*.c) only: the activations quantized
 * to integers, and the blocking of a quantized matmul, written once for every instruction set.
 *
 * y = x . w^T with w in a GGUF block format is computed much as ggml does: each row of x is
 * first quantized in blocks that line up with the weight's blocks (32 values for Q4_0..Q8_0,
 * 256 for the K-quants), then every weight block meets its activation block in integer dot
 * products (vpdpbusd / vpmaddubsw), scaled once per block in f32.
 *
 * Unlike ggml, an activation block is quantized in two 8-bit levels: q = round(x / d1) with
 * d1 = max|x| / 127, then the remainder q2 = round((x / d1 - q) * 256), so that
 * x ~ d1 / 256 * (256 q + q2) to about 16 bits relative to the block's largest value. Each
 * weight block then takes two integer dot products (256 * (w . q) + w . q2, exact in int32).
 * Why: real hidden states have outlier channels tens of times their RMS, and a single 8-bit
 * level rounds the other values of an outlier's block coarsely. Measured on SmolLM2-135M Q4_1,
 * one level (what llama.cpp does) moves the first token's log-probs by up to 0.21 from a
 * float32 reference and flips the greedy answer to "What is the capital of France?"; two
 * levels move them by 0.001. The second product costs about two instructions per weight
 * block and activation row (see docs/SPEED.md).
 *
 * Tiles: a tile computes R rows of y (R quantized rows of x) by C weight rows over the whole of
 * K, so that each loaded weight vector is used R times and each activation vector C times. The
 * rows of x are taken in chunks whose quantized form stays in L2, and for each group of C
 * weight rows every row group of the chunk passes while those weight rows are in L1: weights
 * stream from memory once per chunk. With M = 1 (decode) a tile is 1 x C and every weight byte
 * is read exactly once. */
#ifndef OM_QUANT_INTERNAL_H
#define OM_QUANT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/cpu/cpu_kernels.h"
#include "core/tensor.h"

/* Activation block sizes: per 32 values (the 32-element formats) or per 256 (the K-quants). */
#define OM_QA_SMALL 32
#define OM_QA_SUPER 256

/* M rows of x quantized in two levels. Row r, value k is
 *     x ~ d[r * nb + k / bsize] * (256 * q[r * K + k] + q2[r * K + k])     (bsize 32)
 *     x ~ d[r * nb + k / bsize] * q16[r * K + k]                           (bsize 256)
 * with |q|, |q2| <= 127 and q16 = 256 q + q2 (|q16| <= 32639). The 32-element formats take
 * the two 8-bit levels to vpdpbusd/vpmaddubsw with their 8-bit codes; the K-quants take q16
 * to vpdpwssd/vpmaddwd with 16-bit codes already multiplied by their sub-block scales, which
 * needs one product per value instead of two. Arrays are padded by 64 bytes so that vector
 * loads past a short row's end stay in the buffer. */
typedef struct om_qact {
    int M, K, bsize, nb; /* nb = K / bsize blocks per row */
    int8_t *q, *q2;      /* bsize 32 */
    int16_t *q16;        /* bsize 256 */
    float *d;            /* scale of each block: max |x| / 127 / 256 */
    int32_t *sum1;       /* bsize 32: sum of the block's q (for the formats' offsets) */
    int32_t *sum2;       /* bsize 32: sum of the block's q2 */
    float *dsum;         /* bsize 32: the block's sum of x as quantized, d * (256 sum1 + sum2) */
    int32_t *sum32;      /* bsize 256: sum of q16 over each 32 values (K / 32 per row) */
    void *mem;
} om_qact;

/* Allocates a for M rows of K values in blocks of bsize (nothing is quantized yet); returns 0
 * on success, -1 when out of memory or K is not a whole number of blocks. om_qact_free
 * releases it. */
int om_qact_alloc(om_qact *a, int bsize, int M, int K);
void om_qact_free(om_qact *a);

/* Quantizes one block of n (32 or 256) values of x in two levels; stores the block's scale
 * and returns the sums of the two levels' codes in *s1, *s2. The portable reference of the
 * SIMD versions in the kernel files (rounding by the 1.5 * 2^23 trick, exact for |t| < 2^22,
 * so no libm calls; NaN inputs become 0 rather than undefined conversions). */
static inline void om_qact_block(const float *x, int n, int8_t *q1, int8_t *q2, float *d, int *s1, int *s2) {
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding and subtracting it rounds to even */
    float amax = 0.0f;
    for (int i = 0; i < n; i++) {
        float v = x[i] < 0.0f ? -x[i] : x[i];
        amax = v > amax ? v : amax;
    }
    /* The largest |x| maps to 127, so -128 never occurs (the AVX2 Q8_0 sign trick relies on
     * it). t - round(t) is exact, so q2 holds the remainder to 1/256. */
    float id = amax > 0.0f && amax <= 3.4e38f ? 127.0f / amax : 0.0f;
    int a1 = 0, a2 = 0;
    for (int i = 0; i < n; i++) {
        float t = x[i] * id;
        t = t == t ? t : 0.0f;
        t = t > 127.0f ? 127.0f : t < -127.0f ? -127.0f : t;
        float r = (t + magic) - magic;
        float t2 = ((t - r) * 256.0f + magic) - magic;
        t2 = t2 > 127.0f ? 127.0f : t2 < -127.0f ? -127.0f : t2; /* |t - r| <= 0.5: +-128 occur */
        int v1 = (int)r, v2 = (int)t2;
        q1[i] = (int8_t)v1;
        q2[i] = (int8_t)v2;
        a1 += v1;
        a2 += v2;
    }
    *d = id > 0.0f ? amax / 127.0f / 256.0f : 0.0f;
    *s1 = a1;
    *s2 = a2;
}

/* The same for a super-block of 256 values, stored as q16 = 256 q + q2, with the sums of q16
 * over each 32 values in sum32[8]. */
static inline void om_qact_block256(const float *x, int16_t *q16, float *d, int32_t *sum32) {
    int8_t q1[OM_QA_SUPER], q2[OM_QA_SUPER];
    int s1, s2;
    om_qact_block(x, OM_QA_SUPER, q1, q2, d, &s1, &s2);
    for (int j = 0; j < OM_QA_SUPER / 32; j++) {
        int s = 0;
        for (int i = 32 * j; i < 32 * j + 32; i++) {
            q16[i] = (int16_t)(256 * q1[i] + q2[i]);
            s += q16[i];
        }
        sum32[j] = s;
    }
}

/* A kernel file's block quantizers: om_qact_block for n = 32, om_qact_block256. */
typedef struct om_qact_blocks {
    void (*block32)(const float *x, int8_t *q1, int8_t *q2, float *d, int *s1, int *s2);
    void (*block256)(const float *x, int16_t *q16, float *d, int32_t *sum32);
} om_qact_blocks;

/* Quantizes rows [0, M) of x (row stride ldx floats) into a (see om_qact_alloc), block by
 * block with the given block quantizers. */
static inline int om_qact_quantize_with(const om_qact_blocks *f, om_qact *a, int bsize, int M, int K,
                                        const float *x, size_t ldx) {
    if (om_qact_alloc(a, bsize, M, K) != 0) return -1;
    const int nb = a->nb;
    for (int m = 0; m < M; m++) {
        const float *xr = x + (size_t)m * ldx;
        for (int b = 0; b < nb; b++) {
            size_t o = (size_t)m * (size_t)K + (size_t)b * (size_t)bsize, ib = (size_t)m * (size_t)nb + (size_t)b;
            if (bsize == OM_QA_SMALL) {
                int s1, s2;
                f->block32(xr + (size_t)b * OM_QA_SMALL, a->q + o, a->q2 + o, &a->d[ib], &s1, &s2);
                a->sum1[ib] = s1;
                a->sum2[ib] = s2;
                a->dsum[ib] = a->d[ib] * (float)(256 * s1 + s2);
            } else {
                f->block256(xr + (size_t)b * OM_QA_SUPER, a->q16 + o, &a->d[ib], a->sum32 + o / 32);
            }
        }
    }
    return 0;
}

/* One tile (see above): y[r * ldy + c] = row m + r of the activations . weight row c, for
 * r < R and c < C, where weight row c starts at w + c * ldw. */
typedef void (*om_qtile_fn)(int R, int C, const om_qact *a, int m, const char *w, size_t ldw, float *y,
                            size_t ldy);

typedef struct om_qmatmul_spec {
    /* om_qact_quantize_with with the block quantizer of the tile's instruction set */
    int (*quantize)(om_qact *a, int bsize, int M, int K, const float *x, size_t ldx);
    int bsize;      /* activation block size the tile expects */
    int r_max;      /* rows of x per tile */
    int c_max;      /* weight rows per tile */
    om_qtile_fn tile;
} om_qmatmul_spec;

/* Tiles prefetch the weight bytes this far ahead of where each of their C row streams reads.
 * The rows of a tile are contiguous, so together the C streams prefetch the bytes of the next
 * tiles exactly once. Without it a core streamed weights from DRAM at about half the rate it
 * computes on cached ones (docs/SPEED.md). */
#ifndef OM_QPREFETCH
#define OM_QPREFETCH 8192
#endif

/* Prefetches the line at p + off, which may lie past the end of p's object: the address is
 * formed as an integer, since such a pointer may not be formed in C (a prefetch never
 * faults). */
static inline void om_qprefetch(const void *p, size_t off) {
    __builtin_prefetch((const void *)((uintptr_t)p + off), 0, 3);
}

/* The calling thread's quantized copy of x, for the calls of one matmul that a backend splits
 * into column chunks: when x is small (M * K <= OM_QA_REUSE_MAX values), the last x a thread
 * quantized is kept, with a copy of its values, and returned when the same x (same address,
 * shape and quantizer, and bitwise the same values) comes again. Otherwise it quantizes x
 * with `quantize` into the thread's cache and returns that, or returns NULL when x is too
 * large to keep (the caller quantizes it for this call only) or memory ran out. Why: the CPU
 * backend hands decode-sized matmuls out in chunks of 64 columns; quantizing x (and
 * allocating its buffers) again for each chunk made decode GEMVs 30% slower. Comparing the
 * values costs a few percent of quantizing them. The cache is freed when its thread exits. */
#define OM_QA_REUSE_MAX 16384
const om_qact *om_qact_reuse(int (*quantize)(om_qact *, int, int, int, const float *, size_t), int bsize, int M,
                             int K, const float *x, size_t ldx);

/* Bytes of one level of quantized activations a chunk of rows may take, so that both levels
 * stay in L2 with room to spare. */
#define OM_QA_CHUNK_BYTES (512u << 10)

/* The matmul contract of cpu_kernels.h for a quantized weight, with the tiles of `s`. An op
 * cannot fail, so a failed allocation (of at most M * K * 2.3 bytes) aborts, as the
 * dequantizing fallback in cpu_backend.c does. */
static inline void om_qmatmul_drive(const om_qmatmul_spec *s, int M, int K, const float *x, size_t ldx,
                                    const void *w, size_t ldw, float *y, size_t ldy, int n0, int n1) {
    if (M <= 0 || n0 >= n1) return;
    if (K <= 0) {
        for (int m = 0; m < M; m++)
            for (int n = n0; n < n1; n++) y[(size_t)m * ldy + (size_t)n] = 0.0f;
        return;
    }
    om_qact own;
    const om_qact *pa = om_qact_reuse(s->quantize, s->bsize, M, K, x, ldx);
    if (!pa) {
        if (s->quantize(&own, s->bsize, M, K, x, ldx) != 0) abort();
        pa = &own;
    }
    const om_qact *a = pa;
    const char *wb = (const char *)w;
    int mc = (int)(OM_QA_CHUNK_BYTES / (unsigned)K);
    mc -= mc % s->r_max;
    if (mc < s->r_max) mc = s->r_max;
    for (int m0 = 0; m0 < M; m0 += mc) {
        int m1 = M - m0 < mc ? M : m0 + mc;
        for (int n = n0; n < n1; n += s->c_max) {
            int C = n1 - n < s->c_max ? n1 - n : s->c_max;
            for (int m = m0; m < m1; m += s->r_max) {
                int R = m1 - m < s->r_max ? m1 - m : s->r_max;
                s->tile(R, C, a, m, wb + (size_t)n * ldw, ldw, y + (size_t)m * ldy + n, ldy);
            }
        }
    }
    if (pa == &own) om_qact_free(&own);
}

/* Per instruction set: fills set->matmul[] for the formats that set has kernels for. */
void om_quant_fill_portable(om_cpu_kernels *set);
#if defined(__x86_64__) || defined(__i386__)
void om_quant_fill_avx2(om_cpu_kernels *set);
void om_quant_fill_avx512(om_cpu_kernels *set);
void om_quant_fill_avx512vnni(om_cpu_kernels *set);
extern const int om_quant_avx512vnni_built; /* 0: the VNNI file was compiled as a stub */
#endif

#endif
