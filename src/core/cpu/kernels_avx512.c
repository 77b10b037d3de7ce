/* AVX-512 kernels (F/BW/VL/DQ, with FMA and F16C), the pieces for the matmul blocking of
 * kernels_internal.h plus dot, axpy and sum. Weights are converted to f32 in registers:
 * bf16 -> f32 is a zero-extend and a shift, f16 -> f32 one vcvtph2ps; activations stay f32.
 * Tails (K or the column range not a multiple of 16) use masked loads and stores, which do not
 * fault on the masked-out bytes, so no row is ever read past its end. Measured figures and the
 * choices behind the constants are in docs/SPEED.md. */
#include <immintrin.h>

#include "core/cpu/kernels_internal.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* 16 weights at p (any alignment) as f32. */
ALWAYS_INLINE __m512 load_w(om_dtype dt, const char *p) {
    if (dt == OM_F32) return _mm512_loadu_ps(p);
    __m256i h = _mm256_loadu_si256((const __m256i_u *)p);
    if (dt == OM_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* The first n (< 16) weights at p; the rest of the vector is 0. */
ALWAYS_INLINE __m512 load_w_part(om_dtype dt, const char *p, __mmask16 m) {
    if (dt == OM_F32) return _mm512_maskz_loadu_ps(m, p);
    __m256i h = _mm256_maskz_loadu_epi16(m, p);
    if (dt == OM_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* How far ahead of a stream of weights the kernels prefetch (see small_tile). */
#define PREFETCH_AHEAD 8192

/* 32 bf16 weights at p as f32, split: *even gets elements 0, 2, .., 30 and *odd 1, 3, .., 31. */
ALWAYS_INLINE void load_bf16_pairs(const char *p, __m512 *even, __m512 *odd) {
    __m512i v = _mm512_loadu_si512(p);
    *even = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    *odd = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xffff0000u)));
}

static inline __mmask16 tail_mask(int n) { return (__mmask16)((1u << n) - 1u); }

/* Sums of four vectors: lane i of the result is the sum of vector i. */
ALWAYS_INLINE __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
    /* Fold halves so that 128-bit lane i holds four partial sums of vector i... */
    __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xee));
    __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xee));
    __m512 s = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xdd));
    /* ...then add within each lane and gather the lanes' first elements. */
    s = _mm512_add_ps(s, _mm512_permute_ps(s, 0x4e));
    s = _mm512_add_ps(s, _mm512_permute_ps(s, 0xb1));
    return _mm512_castps512_ps128(_mm512_maskz_compress_ps(0x1111, s));
}

/* ---- dot, axpy, sum ---- */

static float dot_f32(const float *a, const float *b, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

static void axpy_f32(float *y, const float *x, float alpha, int n) {
    __m512 va = _mm512_set1_ps(alpha);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        __m512 v = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

static float sum_f32(const float *a, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        /* As in the small tiles: ~10% more bandwidth than the hardware prefetcher alone. */
        for (int line = 0; line < 256; line += 64)
            _mm_prefetch(OM_AHEAD(a + i, PREFETCH_AHEAD + line), _MM_HINT_T0);
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(a + i));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(a + i + 16));
        s2 = _mm512_add_ps(s2, _mm512_loadu_ps(a + i + 32));
        s3 = _mm512_add_ps(s3, _mm512_loadu_ps(a + i + 48));
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_add_ps(s0, _mm512_loadu_ps(a + i));
    if (i < n) s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(tail_mask((int)(n - i)), a + i));
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* ---- small M: dot products straight from the weight rows ---- */

/* y[r, c] for r < R (<= 4) rows of x and c < rows (<= 4) weight rows. Rows past `rows` repeat
 * row 0 (their results are not stored), so the loop has no branches.
 * For decode this is the whole cost of a token, and it is memory bound: the hardware
 * prefetcher alone leaves a core at ~2/3 of its share of DRAM bandwidth, so every cache line is
 * prefetched PREFETCH_AHEAD bytes ahead of where each of the 4 row streams reads. With
 * contiguous rows, the 4 streams' prefetches together touch every byte of the next 4 rows
 * once. 8 KiB measured best of 2-24 KiB for K = 1024 and 3072 (docs/SPEED.md). */
ALWAYS_INLINE void small_tile(om_dtype dt, int R, int K, const float *x, size_t ldx, const char *w, size_t ldw,
                              int rows, float *y, size_t ldy) {
    const size_t sz = dt == OM_F32 ? 4 : 2;
    const char *w0 = w, *w1 = rows > 1 ? w + ldw : w, *w2 = rows > 2 ? w + 2 * ldw : w,
               *w3 = rows > 3 ? w + 3 * ldw : w;
    __m512 acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) acc[r][c] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 32 <= K; k += 32) {
        size_t off = (size_t)k * sz;
        for (size_t line = 0; line < 32 * sz; line += 64) {
            _mm_prefetch(OM_AHEAD(w0, PREFETCH_AHEAD + off + line), _MM_HINT_T0);
            _mm_prefetch(OM_AHEAD(w1, PREFETCH_AHEAD + off + line), _MM_HINT_T0);
            _mm_prefetch(OM_AHEAD(w2, PREFETCH_AHEAD + off + line), _MM_HINT_T0);
            _mm_prefetch(OM_AHEAD(w3, PREFETCH_AHEAD + off + line), _MM_HINT_T0);
        }
        if (dt == OM_BF16) {
            /* One 64-byte load per row: its 32-bit lanes hold pairs (even, odd) of bf16
             * weights, which become f32 by a shift (even) and a mask (odd); x is split into
             * its even and odd elements to match. 8-10% more GB/s than two 32-byte loads
             * with a zero-extend each (docs/SPEED.md). */
            const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
            __m512 e0, o0, e1, o1, e2, o2, e3, o3;
            load_bf16_pairs(w0 + off, &e0, &o0);
            load_bf16_pairs(w1 + off, &e1, &o1);
            load_bf16_pairs(w2 + off, &e2, &o2);
            load_bf16_pairs(w3 + off, &e3, &o3);
            for (int r = 0; r < R; r++) {
                const float *xr = x + (size_t)r * ldx + k;
                __m512 xa = _mm512_loadu_ps(xr), xb = _mm512_loadu_ps(xr + 16);
                __m512 xe = _mm512_permutex2var_ps(xa, ie, xb), xo = _mm512_permutex2var_ps(xa, io, xb);
                acc[r][0] = _mm512_fmadd_ps(o0, xo, _mm512_fmadd_ps(e0, xe, acc[r][0]));
                acc[r][1] = _mm512_fmadd_ps(o1, xo, _mm512_fmadd_ps(e1, xe, acc[r][1]));
                acc[r][2] = _mm512_fmadd_ps(o2, xo, _mm512_fmadd_ps(e2, xe, acc[r][2]));
                acc[r][3] = _mm512_fmadd_ps(o3, xo, _mm512_fmadd_ps(e3, xe, acc[r][3]));
            }
            continue;
        }
        for (int h = 0; h < 2; h++) {
            size_t o = off + (size_t)h * 16 * sz;
            __m512 v0 = load_w(dt, w0 + o), v1 = load_w(dt, w1 + o), v2 = load_w(dt, w2 + o), v3 = load_w(dt, w3 + o);
            for (int r = 0; r < R; r++) {
                __m512 xv = _mm512_loadu_ps(x + (size_t)r * ldx + k + h * 16);
                acc[r][0] = _mm512_fmadd_ps(v0, xv, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(v1, xv, acc[r][1]);
                acc[r][2] = _mm512_fmadd_ps(v2, xv, acc[r][2]);
                acc[r][3] = _mm512_fmadd_ps(v3, xv, acc[r][3]);
            }
        }
    }
    for (; k + 16 <= K; k += 16) {
        size_t off = (size_t)k * sz;
        __m512 v0 = load_w(dt, w0 + off), v1 = load_w(dt, w1 + off), v2 = load_w(dt, w2 + off),
               v3 = load_w(dt, w3 + off);
        for (int r = 0; r < R; r++) {
            __m512 xv = _mm512_loadu_ps(x + (size_t)r * ldx + k);
            acc[r][0] = _mm512_fmadd_ps(v0, xv, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(v1, xv, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(v2, xv, acc[r][2]);
            acc[r][3] = _mm512_fmadd_ps(v3, xv, acc[r][3]);
        }
    }
    if (k < K) {
        __mmask16 m = tail_mask(K - k);
        size_t off = (size_t)k * sz;
        __m512 v0 = load_w_part(dt, w0 + off, m), v1 = load_w_part(dt, w1 + off, m),
               v2 = load_w_part(dt, w2 + off, m), v3 = load_w_part(dt, w3 + off, m);
        for (int r = 0; r < R; r++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, x + (size_t)r * ldx + k);
            acc[r][0] = _mm512_fmadd_ps(v0, xv, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(v1, xv, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(v2, xv, acc[r][2]);
            acc[r][3] = _mm512_fmadd_ps(v3, xv, acc[r][3]);
        }
    }
    __mmask8 store = (__mmask8)((1u << rows) - 1u);
    for (int r = 0; r < R; r++)
        _mm_mask_storeu_ps(y + (size_t)r * ldy, store, reduce4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
}

/* ---- larger M: packed panels and an outer-product register tile ---- */

/* 12 x 32: 24 accumulators + 2 weight vectors + a broadcast of the 32 registers; 14 x 32 and a
 * k block of 128 measured no better (docs/SPEED.md). */
#define MR 12
#define NR 32
#define KC 256

/* In-register transpose of 16 rows of 16 floats: on return r[j] holds column j. */
ALWAYS_INLINE void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    /* u[4g + c], 128-bit lane L: rows 4g..4g+3 of column 4L + c */
    for (int g = 0; g < 16; g += 4) {
        u[g + 0] = _mm512_shuffle_ps(t[g], t[g + 2], 0x44);
        u[g + 1] = _mm512_shuffle_ps(t[g], t[g + 2], 0xee);
        u[g + 2] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0x44);
        u[g + 3] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0xee);
    }
    /* a 4x4 transpose of 128-bit lanes for each c */
    for (int c = 0; c < 4; c++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44), v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xee),
               v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44),
               v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xee);
        r[c] = _mm512_shuffle_f32x4(v0, v2, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(v0, v2, 0xdd);
        r[8 + c] = _mm512_shuffle_f32x4(v1, v3, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(v1, v3, 0xdd);
    }
}

/* panel[k*NR + j] = w(j, k) as f32, 16 rows by 16 columns at a time. */
ALWAYS_INLINE void pack(om_dtype dt, const char *w, size_t ldw, int rows, int kc, float *panel) {
    const size_t sz = dt == OM_F32 ? 4 : 2;
    for (int j0 = 0; j0 < NR; j0 += 16) {
        int nrow = rows - j0 < 0 ? 0 : rows - j0 > 16 ? 16 : rows - j0;
        for (int k0 = 0; k0 < kc; k0 += 16) {
            int nk = kc - k0 < 16 ? kc - k0 : 16;
            __m512 r[16];
            if (nk == 16) {
                for (int i = 0; i < 16; i++)
                    r[i] = i < nrow ? load_w(dt, w + (size_t)(j0 + i) * ldw + (size_t)k0 * sz) : _mm512_setzero_ps();
            } else {
                __mmask16 m = tail_mask(nk);
                for (int i = 0; i < 16; i++)
                    r[i] = i < nrow ? load_w_part(dt, w + (size_t)(j0 + i) * ldw + (size_t)k0 * sz, m)
                                    : _mm512_setzero_ps();
            }
            transpose16(r);
            for (int i = 0; i < nk; i++) _mm512_store_ps(panel + (size_t)(k0 + i) * NR + j0, r[i]);
        }
    }
}

/* y[i, 0..ncols) (+)= x[i, 0..kc) . panel for i < MRC. Each k step: two vectors of weights,
 * MRC broadcasts of x (loads that use no vector ALU port), 2 * MRC FMAs. The loops over i
 * must be unrolled: otherwise GCC keeps a copy of the accumulators in memory, stored on
 * every k step. */
ALWAYS_INLINE void micro_tile(int MRC, int kc, const float *x, size_t ldx, const float *panel, float *y, size_t ldy,
                              int ncols, int accumulate) {
    __m512 c0[MR], c1[MR];
    _Pragma("GCC unroll 16")
    for (int i = 0; i < MRC; i++) c0[i] = c1[i] = _mm512_setzero_ps();
    const float *xr[MR];
    _Pragma("GCC unroll 16")
    for (int i = 0; i < MRC; i++) xr[i] = x + (size_t)i * ldx;
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(panel + (size_t)k * NR), b1 = _mm512_load_ps(panel + (size_t)k * NR + 16);
        _Pragma("GCC unroll 16")
        for (int i = 0; i < MRC; i++) {
            __m512 a = _mm512_set1_ps(xr[i][k]);
            c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
        }
    }
    __mmask16 m0 = ncols >= 16 ? 0xffff : tail_mask(ncols);
    __mmask16 m1 = ncols >= 32 ? 0xffff : ncols > 16 ? tail_mask(ncols - 16) : 0;
    _Pragma("GCC unroll 16")
    for (int i = 0; i < MRC; i++) {
        float *yr = y + (size_t)i * ldy;
        if (accumulate) {
            c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, yr));
            c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, yr + 16));
        }
        _mm512_mask_storeu_ps(yr, m0, c0[i]);
        _mm512_mask_storeu_ps(yr + 16, m1, c1[i]);
    }
}

#define MICRO(n)                                                                                               \
    case n: micro_tile(n, kc, x, ldx, panel, y, ldy, ncols, accumulate); break;

static void micro(int mr, int kc, const float *x, size_t ldx, const float *panel, float *y, size_t ldy, int ncols,
                  int accumulate) {
    switch (mr) {
        MICRO(1) MICRO(2) MICRO(3) MICRO(4) MICRO(5) MICRO(6) MICRO(7) MICRO(8) MICRO(9) MICRO(10) MICRO(11)
        MICRO(12)
    default: break;
    }
}

_Static_assert(KC * NR <= OM_GEMM_PANEL_FLOATS, "panel does not fit the driver's buffer");

#define SMALL_R 4
/* Up to here the small tiles beat packing (cold weights, measured crossover about 20). */
#define SMALL_M_MAX 16

#define DEFINE_DTYPE(name, DT)                                                                                \
    static void small_##name(int R, int K, const float *x, size_t ldx, const char *w, size_t ldw, int rows,    \
                             float *y, size_t ldy) {                                                          \
        switch (R) {                                                                                          \
        case 1: small_tile(DT, 1, K, x, ldx, w, ldw, rows, y, ldy); break;                                    \
        case 2: small_tile(DT, 2, K, x, ldx, w, ldw, rows, y, ldy); break;                                    \
        case 3: small_tile(DT, 3, K, x, ldx, w, ldw, rows, y, ldy); break;                                    \
        default: small_tile(DT, 4, K, x, ldx, w, ldw, rows, y, ldy); break;                                   \
        }                                                                                                     \
    }                                                                                                         \
    static void pack_##name(const char *w, size_t ldw, int rows, int kc, float *panel) {                      \
        pack(DT, w, ldw, rows, kc, panel);                                                                    \
    }                                                                                                         \
    static const om_gemm_pieces pieces_##name = {MR, NR, KC, SMALL_M_MAX, SMALL_R, small_##name, pack_##name, \
                                                 micro};                                                      \
    static void matmul_##name(int M, int K, const float *x, size_t ldx, const void *w, size_t ldw, float *y, \
                              size_t ldy, int n0, int n1) {                                                   \
        om_gemm_drive(&pieces_##name, DT == OM_F32 ? 4 : 2, M, K, x, ldx, w, ldw, y, ldy, n0, n1);            \
    }

DEFINE_DTYPE(f32, OM_F32)
DEFINE_DTYPE(f16, OM_F16)
DEFINE_DTYPE(bf16, OM_BF16)

const om_cpu_kernels om_kernels_avx512_set = {
    .name = "avx512",
    .matmul = {[OM_F32] = matmul_f32, [OM_F16] = matmul_f16, [OM_BF16] = matmul_bf16},
    .dot_f32 = dot_f32,
    .axpy_f32 = axpy_f32,
    .sum_f32 = sum_f32,
};
