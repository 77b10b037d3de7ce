/* AVX2 + FMA + F16C kernels: the same structure as kernels_avx512.c at 8 floats a vector and
 * with 16 vector registers, which sets the tile sizes (a 6 x 16 register tile for prefill,
 * 2 rows of x by 4 weight rows for small M). AVX2 has no masked 16-bit loads, so K tails are
 * copied into a zeroed buffer first: no row is read past its end. */
#include <immintrin.h>
#include <string.h>

#include "core/cpu/kernels_internal.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* 8 weights at p (any alignment) as f32. */
ALWAYS_INLINE __m256 load_w(om_dtype dt, const char *p) {
    if (dt == OM_F32) return _mm256_loadu_ps((const float *)(const void *)p);
    __m128i h = _mm_loadu_si128((const __m128i_u *)p);
    if (dt == OM_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* The first n (< 8) weights at p; the rest of the vector is 0. */
ALWAYS_INLINE __m256 load_w_part(om_dtype dt, const char *p, int n) {
    _Alignas(32) char buf[32] = {0};
    memcpy(buf, p, (size_t)n * (dt == OM_F32 ? 4 : 2));
    return load_w(dt, buf);
}

ALWAYS_INLINE __m256 load_x_part(const float *p, int n) {
    _Alignas(32) float buf[8] = {0};
    memcpy(buf, p, (size_t)n * sizeof(float));
    return _mm256_load_ps(buf);
}

/* How far ahead of a stream of weights the kernels prefetch (see kernels_avx512.c). */
#define PREFETCH_AHEAD 8192

/* Sums of four vectors: lane i of the result is the sum of vector i. */
ALWAYS_INLINE __m128 reduce4(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- dot, axpy, sum ---- */

static float dot_f32(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    if (i < n) s1 = _mm256_fmadd_ps(load_x_part(a + i, n - i), load_x_part(b + i, n - i), s1);
    return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

static void axpy_f32(float *y, const float *x, float alpha, int n) {
    __m256 va = _mm256_set1_ps(alpha);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += alpha * x[i];
}

static float sum_f32(const float *a, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm_prefetch(OM_AHEAD(a + i, PREFETCH_AHEAD), _MM_HINT_T0);
        _mm_prefetch(OM_AHEAD(a + i, PREFETCH_AHEAD + 64), _MM_HINT_T0);
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(a + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(a + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(a + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(a + i + 24));
    }
    float tail = 0.0f;
    for (; i < n; i++) tail += a[i];
    return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3))) + tail;
}

/* ---- small M: dot products straight from the weight rows ---- */

/* y[r, c] for r < R (<= 2) rows of x and c < rows (<= 4) weight rows. Rows past `rows` repeat
 * row 0 (their results are not stored). As in kernels_avx512.c, every cache line is
 * prefetched PREFETCH_AHEAD bytes before its row stream reaches it. */
ALWAYS_INLINE void small_tile(om_dtype dt, int R, int K, const float *x, size_t ldx, const char *w, size_t ldw,
                              int rows, float *y, size_t ldy) {
    const size_t sz = dt == OM_F32 ? 4 : 2;
    const char *w0 = w, *w1 = rows > 1 ? w + ldw : w, *w2 = rows > 2 ? w + 2 * ldw : w,
               *w3 = rows > 3 ? w + 3 * ldw : w;
    __m256 acc[2][4];
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 4; c++) acc[r][c] = _mm256_setzero_ps();
    int k = 0;
    for (; k + 32 <= K; k += 32) {
        size_t off = (size_t)k * sz;
        for (size_t line = 0; line < 32 * sz; line += 64) {
            _mm_prefetch(OM_AHEAD(w0, PREFETCH_AHEAD + off + line), _MM_HINT_T0);
            _mm_prefetch(OM_AHEAD(w1, PREFETCH_AHEAD + off + line), _MM_HINT_T0);
            _mm_prefetch(OM_AHEAD(w2, PREFETCH_AHEAD + off + line), _MM_HINT_T0);
            _mm_prefetch(OM_AHEAD(w3, PREFETCH_AHEAD + off + line), _MM_HINT_T0);
        }
        for (int h = 0; h < 4; h++) {
            size_t o = off + (size_t)h * 8 * sz;
            __m256 v0 = load_w(dt, w0 + o), v1 = load_w(dt, w1 + o), v2 = load_w(dt, w2 + o), v3 = load_w(dt, w3 + o);
            for (int r = 0; r < R; r++) {
                __m256 xv = _mm256_loadu_ps(x + (size_t)r * ldx + k + h * 8);
                acc[r][0] = _mm256_fmadd_ps(v0, xv, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(v1, xv, acc[r][1]);
                acc[r][2] = _mm256_fmadd_ps(v2, xv, acc[r][2]);
                acc[r][3] = _mm256_fmadd_ps(v3, xv, acc[r][3]);
            }
        }
    }
    for (; k + 8 <= K; k += 8) {
        size_t off = (size_t)k * sz;
        __m256 v0 = load_w(dt, w0 + off), v1 = load_w(dt, w1 + off), v2 = load_w(dt, w2 + off),
               v3 = load_w(dt, w3 + off);
        for (int r = 0; r < R; r++) {
            __m256 xv = _mm256_loadu_ps(x + (size_t)r * ldx + k);
            acc[r][0] = _mm256_fmadd_ps(v0, xv, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(v1, xv, acc[r][1]);
            acc[r][2] = _mm256_fmadd_ps(v2, xv, acc[r][2]);
            acc[r][3] = _mm256_fmadd_ps(v3, xv, acc[r][3]);
        }
    }
    if (k < K) {
        int n = K - k;
        size_t off = (size_t)k * sz;
        __m256 v0 = load_w_part(dt, w0 + off, n), v1 = load_w_part(dt, w1 + off, n),
               v2 = load_w_part(dt, w2 + off, n), v3 = load_w_part(dt, w3 + off, n);
        for (int r = 0; r < R; r++) {
            __m256 xv = load_x_part(x + (size_t)r * ldx + k, n);
            acc[r][0] = _mm256_fmadd_ps(v0, xv, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(v1, xv, acc[r][1]);
            acc[r][2] = _mm256_fmadd_ps(v2, xv, acc[r][2]);
            acc[r][3] = _mm256_fmadd_ps(v3, xv, acc[r][3]);
        }
    }
    for (int r = 0; r < R; r++) {
        _Alignas(16) float s[4];
        _mm_store_ps(s, reduce4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
        for (int c = 0; c < rows; c++) y[(size_t)r * ldy + c] = s[c];
    }
}

/* ---- larger M: packed panels and an outer-product register tile ---- */

#define MR 6
#define NR 16
#define KC 256

/* In-register transpose of 8 rows of 8 floats: on return r[j] holds column j. */
ALWAYS_INLINE void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    /* u[4g + c], 128-bit lane L: rows 4g..4g+3 of column 4L + c */
    for (int g = 0; g < 8; g += 4) {
        u[g + 0] = _mm256_shuffle_ps(t[g], t[g + 2], 0x44);
        u[g + 1] = _mm256_shuffle_ps(t[g], t[g + 2], 0xee);
        u[g + 2] = _mm256_shuffle_ps(t[g + 1], t[g + 3], 0x44);
        u[g + 3] = _mm256_shuffle_ps(t[g + 1], t[g + 3], 0xee);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
        r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
    }
}

/* panel[k*NR + j] = w(j, k) as f32, 8 rows by 8 columns at a time. */
ALWAYS_INLINE void pack(om_dtype dt, const char *w, size_t ldw, int rows, int kc, float *panel) {
    const size_t sz = dt == OM_F32 ? 4 : 2;
    for (int j0 = 0; j0 < NR; j0 += 8) {
        int nrow = rows - j0 < 0 ? 0 : rows - j0 > 8 ? 8 : rows - j0;
        for (int k0 = 0; k0 < kc; k0 += 8) {
            int nk = kc - k0 < 8 ? kc - k0 : 8;
            __m256 r[8];
            for (int i = 0; i < 8; i++) {
                const char *p = w + (size_t)(j0 + i) * ldw + (size_t)k0 * sz;
                r[i] = i >= nrow ? _mm256_setzero_ps() : nk == 8 ? load_w(dt, p) : load_w_part(dt, p, nk);
            }
            transpose8(r);
            for (int i = 0; i < nk; i++) _mm256_store_ps(panel + (size_t)(k0 + i) * NR + j0, r[i]);
        }
    }
}

/* y[i, 0..ncols) (+)= x[i, 0..kc) . panel for i < MRC: 12 accumulators, 2 weight vectors and
 * a broadcast fill 15 of the 16 registers. The loops over i must be unrolled: otherwise GCC
 * keeps a copy of the accumulators in memory, stored on every k step (half the speed). */
ALWAYS_INLINE void micro_tile(int MRC, int kc, const float *x, size_t ldx, const float *panel, float *y, size_t ldy,
                              int ncols, int accumulate) {
    __m256 c0[MR], c1[MR];
    _Pragma("GCC unroll 16")
    for (int i = 0; i < MRC; i++) c0[i] = c1[i] = _mm256_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(panel + (size_t)k * NR), b1 = _mm256_load_ps(panel + (size_t)k * NR + 8);
        _Pragma("GCC unroll 16")
        for (int i = 0; i < MRC; i++) {
            __m256 a = _mm256_broadcast_ss(x + (size_t)i * ldx + k);
            c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
        }
    }
    _Pragma("GCC unroll 16")
    for (int i = 0; i < MRC; i++) {
        float *yr = y + (size_t)i * ldy;
        if (ncols == NR) {
            if (accumulate) {
                c0[i] = _mm256_add_ps(c0[i], _mm256_loadu_ps(yr));
                c1[i] = _mm256_add_ps(c1[i], _mm256_loadu_ps(yr + 8));
            }
            _mm256_storeu_ps(yr, c0[i]);
            _mm256_storeu_ps(yr + 8, c1[i]);
        } else {
            _Alignas(32) float s[NR];
            _mm256_store_ps(s, c0[i]);
            _mm256_store_ps(s + 8, c1[i]);
            for (int j = 0; j < ncols; j++) yr[j] = accumulate ? yr[j] + s[j] : s[j];
        }
    }
}

#define MICRO(n)                                                                                               \
    case n: micro_tile(n, kc, x, ldx, panel, y, ldy, ncols, accumulate); break;

static void micro(int mr, int kc, const float *x, size_t ldx, const float *panel, float *y, size_t ldy, int ncols,
                  int accumulate) {
    switch (mr) {
        MICRO(1) MICRO(2) MICRO(3) MICRO(4) MICRO(5) MICRO(6)
    default: break;
    }
}

_Static_assert(KC * NR <= OM_GEMM_PANEL_FLOATS, "panel does not fit the driver's buffer");

#define SMALL_R 2
/* Up to here the small tiles beat packing (cold weights, measured crossover about 22). */
#define SMALL_M_MAX 20

#define DEFINE_DTYPE(name, DT)                                                                                \
    static void small_##name(int R, int K, const float *x, size_t ldx, const char *w, size_t ldw, int rows,    \
                             float *y, size_t ldy) {                                                          \
        if (R == 1)                                                                                           \
            small_tile(DT, 1, K, x, ldx, w, ldw, rows, y, ldy);                                               \
        else                                                                                                  \
            small_tile(DT, 2, K, x, ldx, w, ldw, rows, y, ldy);                                               \
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

const om_cpu_kernels om_kernels_avx2_set = {
    .name = "avx2",
    .matmul = {[OM_F32] = matmul_f32, [OM_F16] = matmul_f16, [OM_BF16] = matmul_bf16},
    .dot_f32 = dot_f32,
    .axpy_f32 = axpy_f32,
    .sum_f32 = sum_f32,
};
