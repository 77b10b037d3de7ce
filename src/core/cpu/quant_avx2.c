/* Quantized matmul tiles for AVX2 + FMA + F16C (CPUs without AVX-512). Same arithmetic as
 * the AVX-512 tiles (quant_avx512_impl.h; the activations' two 8-bit levels are described in
 * quant_internal.h), on 256-bit vectors: one 32-element block per vector, products through
 * vpmaddubsw (u8 x s8 -> int16 pair sums) and vpmaddwd. vpmaddubsw saturates at 32767, so its
 * unsigned factor must stay at most 127: the 4- to 6-bit codes do, and Q8_0's signed codes go
 * through the sign trick (|w| times x with the sign of w). Each block's two levels are combined
 * as 256 * (w . q) + w . q2 by the vpmaddwd multipliers (256 and 1), exact in int32. */
#include <immintrin.h>
#include <string.h>

#include "core/cpu/quant_internal.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE uint16_t ld16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

ALWAYS_INLINE uint32_t ld32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

ALWAYS_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- 32-element formats ---- */

/* 16 bytes of nibbles at p as 32 codes in element order (low nibbles, then high). */
ALWAYS_INLINE __m256i nibbles32(const uint8_t *p) {
    __m128i t = _mm_loadu_si128((const __m128i_u *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}

/* 0x10 in byte j where bit j of the 32 bits at p is set (Q5's fifth bits). */
ALWAYS_INLINE __m256i bits32(const uint8_t *p) {
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)ld32(p)), shuf);
    bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_and_si256(_mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1)), _mm256_set1_epi8(0x10));
}

typedef struct {
    __m256i q; /* unsigned codes; Q8_0: |code| */
    __m256i s; /* Q8_0: the signed codes, whose signs go to the activations */
    __m256 d, m;
} wblk;

ALWAYS_INLINE wblk load_wblk(om_dtype T, const uint8_t *b) {
    wblk w;
    w.m = _mm256_setzero_ps();
    w.s = _mm256_setzero_si256();
    if (T == OM_Q4_1 || T == OM_Q5_1) {
        __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128((int)ld32(b)));
        w.d = _mm256_broadcastss_ps(dm);
        w.m = _mm256_broadcastss_ps(_mm_movehdup_ps(dm));
    } else {
        w.d = _mm256_set1_ps(_cvtsh_ss(ld16(b)));
    }
    switch (T) {
    case OM_Q4_0: w.q = nibbles32(b + 2); break;
    case OM_Q4_1: w.q = nibbles32(b + 4); break;
    case OM_Q5_0: w.q = _mm256_or_si256(nibbles32(b + 6), bits32(b + 2)); break;
    case OM_Q5_1: w.q = _mm256_or_si256(nibbles32(b + 8), bits32(b + 4)); break;
    case OM_Q8_0:
        w.s = _mm256_loadu_si256((const __m256i_u *)(b + 2));
        w.q = _mm256_sign_epi8(w.s, w.s);
        break;
    default: w.q = _mm256_setzero_si256(); break;
    }
    return w;
}

typedef struct {
    __m256i q, q2;
    __m256 d;
    __m256i off; /* -offset * (256 sum1 + sum2) / 8 per lane */
    __m256 s8;   /* dsum / 8 per lane */
} ablk;

ALWAYS_INLINE ablk load_ablk(om_dtype T, const om_qact *a, int row, int b) {
    ablk x;
    size_t o = (size_t)row * (size_t)a->K + (size_t)b * 32, ib = (size_t)row * (size_t)a->nb + (size_t)b;
    x.q = _mm256_loadu_si256((const __m256i_u *)(a->q + o));
    x.q2 = _mm256_loadu_si256((const __m256i_u *)(a->q2 + o));
    x.d = _mm256_broadcast_ss(a->d + ib);
    int off8 = T == OM_Q4_0 ? 1 : T == OM_Q5_0 ? 2 : 0; /* offset / 8 */
    x.off = _mm256_set1_epi32(-off8 * (256 * a->sum1[ib] + a->sum2[ib]));
    x.s8 = _mm256_set1_ps(a->dsum[ib] * 0.125f);
    return x;
}

ALWAYS_INLINE __m256 step32(om_dtype T, __m256 acc, const wblk *w, const ablk *x) {
    __m256i x1 = x->q, x2 = x->q2;
    if (T == OM_Q8_0) {
        x1 = _mm256_sign_epi8(x1, w->s);
        x2 = _mm256_sign_epi8(x2, w->s);
    }
    __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(w->q, x1), _mm256_set1_epi16(256));
    __m256i p2 = _mm256_madd_epi16(_mm256_maddubs_epi16(w->q, x2), _mm256_set1_epi16(1));
    __m256i is = _mm256_add_epi32(p1, p2);
    if (T == OM_Q4_0 || T == OM_Q5_0) is = _mm256_add_epi32(is, x->off);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_mul_ps(w->d, x->d), acc);
    if (T == OM_Q4_1 || T == OM_Q5_1) acc = _mm256_fmadd_ps(w->m, x->s8, acc);
    return acc;
}

ALWAYS_INLINE void tile32(om_dtype T, int R, int C, const om_qact *a, int m, const char *w, size_t ldw, float *y,
                          size_t ldy) {
    const size_t bb = T == OM_Q4_0 ? 18 : T == OM_Q4_1 ? 20 : T == OM_Q5_0 ? 22 : T == OM_Q5_1 ? 24 : 34;
    __m256 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps();
    for (int b = 0; b < a->nb; b++) {
        ablk x[4];
        for (int r = 0; r < R; r++) x[r] = load_ablk(T, a, m + r, b);
        for (int c = 0; c < C; c++) {
            const uint8_t *wb = (const uint8_t *)w + (size_t)c * ldw + (size_t)b * bb;
            _mm_prefetch((const char *)wb + OM_QPREFETCH, _MM_HINT_T0); /* blocks are <= 64 bytes */
            wblk wv = load_wblk(T, wb);
            for (int r = 0; r < R; r++) acc[r][c] = step32(T, acc[r][c], &wv, &x[r]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) y[(size_t)r * ldy + (size_t)c] = hsum(acc[r][c]);
}

/* ---- K-quants ---- */

/* Q4_K/Q5_K: codes of sub-blocks 2j (lo) and 2j+1 (hi), 32 each; scales as int16 vectors. */
typedef struct {
    __m256i lo[4], hi[4];
    __m256i sclo[4], schi[4];
    __m128i mins;
    float d, dmin;
} wq4k;

ALWAYS_INLINE wq4k load_q4k(om_dtype T, const uint8_t *b) {
    wq4k w;
    w.d = _cvtsh_ss(ld16(b));
    w.dmin = _cvtsh_ss(ld16(b + 2));
    /* The 12 bytes of 6-bit scales and minimums to 8 + 8 bytes (ggml's unpacking, which
     * core/quant.c does one at a time in om_q4k_scales). */
    uint32_t u[4];
    memcpy(u, b + 4, 12);
    const uint32_t k1 = 0x3f3f3f3fu, k2 = 0x0f0f0f0fu, k3 = 0x03030303u;
    u[3] = ((u[2] >> 4) & k2) | (((u[1] >> 6) & k3) << 4);
    uint32_t mins_lo = u[1] & k1;
    u[1] = (u[2] & k2) | (((u[0] >> 6) & k3) << 4);
    u[2] = mins_lo;
    u[0] &= k1;
    uint8_t sc[8];
    memcpy(sc, u, 8);
    w.mins = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)u[3], (int)u[2]));
    for (int j = 0; j < 4; j++) {
        w.sclo[j] = _mm256_set1_epi16(sc[2 * j]);
        w.schi[j] = _mm256_set1_epi16(sc[2 * j + 1]);
    }
    const uint8_t *qs = b + (T == OM_Q5_K ? 48 : 16);
    const __m256i lo4 = _mm256_set1_epi8(0x0F);
    __m256i qh = T == OM_Q5_K ? _mm256_loadu_si256((const __m256i_u *)(b + 16)) : _mm256_setzero_si256();
    for (int j = 0; j < 4; j++) {
        __m256i q4 = _mm256_loadu_si256((const __m256i_u *)(qs + 32 * j));
        w.lo[j] = _mm256_and_si256(q4, lo4);
        w.hi[j] = _mm256_and_si256(_mm256_srli_epi16(q4, 4), lo4);
        if (T == OM_Q5_K) {
            const __m256i one = _mm256_set1_epi8(1);
            __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(qh, (int)(2 * j)), one);
            __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(qh, (int)(2 * j + 1)), one);
            w.lo[j] = _mm256_or_si256(w.lo[j], _mm256_slli_epi16(h0, 4));
            w.hi[j] = _mm256_or_si256(w.hi[j], _mm256_slli_epi16(h1, 4));
        }
    }
    return w;
}

/* Q6_K: codes (q + 32, unsigned) of the 8 groups of 32 values, scales per int16 lane of the
 * vpmaddubsw results ([sc_2k x 8, sc_2k+1 x 8]), the 16 scales as int16. */
typedef struct {
    __m256i q[8], sc[8];
    __m256i sc16;
    float d;
} wq6k;

ALWAYS_INLINE wq6k load_q6k(const uint8_t *b) {
    wq6k w;
    w.d = _cvtsh_ss(ld16(b + 208));
    __m128i sc8 = _mm_loadu_si128((const __m128i_u *)(b + 192));
    w.sc16 = _mm256_cvtepi8_epi16(sc8);
    for (int k = 0; k < 8; k++) {
        __m128i sel = _mm_set_epi8((char)(2 * k + 1), (char)(2 * k + 1), (char)(2 * k + 1), (char)(2 * k + 1),
                                   (char)(2 * k + 1), (char)(2 * k + 1), (char)(2 * k + 1), (char)(2 * k + 1),
                                   (char)(2 * k), (char)(2 * k), (char)(2 * k), (char)(2 * k), (char)(2 * k),
                                   (char)(2 * k), (char)(2 * k), (char)(2 * k));
        w.sc[k] = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, sel));
    }
    const __m256i lo4 = _mm256_set1_epi8(0x0F), lo2 = _mm256_set1_epi8(0x03);
    for (int h = 0; h < 2; h++) {
        __m256i l0 = _mm256_loadu_si256((const __m256i_u *)(b + 64 * h));
        __m256i l1 = _mm256_loadu_si256((const __m256i_u *)(b + 64 * h + 32));
        __m256i qh = _mm256_loadu_si256((const __m256i_u *)(b + 128 + 32 * h));
        __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(qh, lo2), 4);
        __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), lo2), 4);
        __m256i h2 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), lo2), 4);
        __m256i h3 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), lo2), 4);
        w.q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(l0, lo4), h0);
        w.q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, lo4), h1);
        w.q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), lo4), h2);
        w.q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), lo4), h3);
    }
    return w;
}

ALWAYS_INLINE void tile256(om_dtype T, int R, int C, const om_qact *a, int m, const char *w, size_t ldw, float *y,
                           size_t ldy) {
    const size_t bb = T == OM_Q4_K ? 144 : T == OM_Q5_K ? 176 : 210;
    const int nb = a->nb;
    const size_t n16 = (size_t)a->K / 16;
    __m256 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        for (int c = 0; c < C; c++) {
            const uint8_t *wb = (const uint8_t *)w + (size_t)c * ldw + (size_t)b * bb;
            for (size_t line = 0; line < bb; line += 64) _mm_prefetch((const char *)wb + OM_QPREFETCH + line, _MM_HINT_T0);
            if (T == OM_Q6_K) {
                wq6k wv = load_q6k(wb);
                for (int r = 0; r < R; r++) {
                    size_t o = (size_t)(m + r) * (size_t)a->K + (size_t)b * 256, o16 = (size_t)(m + r) * n16 + (size_t)b * 16;
                    __m256i is1 = _mm256_setzero_si256(), is2 = _mm256_setzero_si256();
                    for (int k = 0; k < 8; k++) {
                        __m256i a1 = _mm256_loadu_si256((const __m256i_u *)(a->q + o + 32 * k));
                        __m256i a2 = _mm256_loadu_si256((const __m256i_u *)(a->q2 + o + 32 * k));
                        is1 = _mm256_add_epi32(is1, _mm256_madd_epi16(_mm256_maddubs_epi16(wv.q[k], a1), wv.sc[k]));
                        is2 = _mm256_add_epi32(is2, _mm256_madd_epi16(_mm256_maddubs_epi16(wv.q[k], a2), wv.sc[k]));
                    }
                    /* codes are q + 32: subtract 32 * sum_g sc_g * bsum16_g per level */
                    __m256i b1 = _mm256_loadu_si256((const __m256i_u *)(a->bsum16 + o16));
                    __m256i b2 = _mm256_loadu_si256((const __m256i_u *)(a->bsum16_2 + o16));
                    is1 = _mm256_sub_epi32(is1, _mm256_slli_epi32(_mm256_madd_epi16(wv.sc16, b1), 5));
                    is2 = _mm256_sub_epi32(is2, _mm256_slli_epi32(_mm256_madd_epi16(wv.sc16, b2), 5));
                    __m256 f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is1), _mm256_set1_ps(256.0f), _mm256_cvtepi32_ps(is2));
                    float da = a->d[(size_t)(m + r) * (size_t)nb + (size_t)b];
                    acc[r][c] = _mm256_fmadd_ps(f, _mm256_set1_ps(wv.d * da), acc[r][c]);
                }
            } else {
                wq4k wv = load_q4k(T, wb);
                for (int r = 0; r < R; r++) {
                    size_t o = (size_t)(m + r) * (size_t)a->K + (size_t)b * 256, o16 = (size_t)(m + r) * n16 + (size_t)b * 16;
                    __m256i is1 = _mm256_setzero_si256(), is2 = _mm256_setzero_si256();
                    for (int j = 0; j < 4; j++) {
                        const int8_t *p1 = a->q + o + 64 * j, *p2 = a->q2 + o + 64 * j;
                        __m256i a1l = _mm256_loadu_si256((const __m256i_u *)p1);
                        __m256i a1h = _mm256_loadu_si256((const __m256i_u *)(p1 + 32));
                        __m256i a2l = _mm256_loadu_si256((const __m256i_u *)p2);
                        __m256i a2h = _mm256_loadu_si256((const __m256i_u *)(p2 + 32));
                        is1 = _mm256_add_epi32(is1, _mm256_madd_epi16(_mm256_maddubs_epi16(wv.lo[j], a1l), wv.sclo[j]));
                        is1 = _mm256_add_epi32(is1, _mm256_madd_epi16(_mm256_maddubs_epi16(wv.hi[j], a1h), wv.schi[j]));
                        is2 = _mm256_add_epi32(is2, _mm256_madd_epi16(_mm256_maddubs_epi16(wv.lo[j], a2l), wv.sclo[j]));
                        is2 = _mm256_add_epi32(is2, _mm256_madd_epi16(_mm256_maddubs_epi16(wv.hi[j], a2h), wv.schi[j]));
                    }
                    /* minimums: sum_j mins_j * (bsum16[2j] + bsum16[2j+1]), both levels */
                    __m256i b1 = _mm256_loadu_si256((const __m256i_u *)(a->bsum16 + o16));
                    __m256i b2 = _mm256_loadu_si256((const __m256i_u *)(a->bsum16_2 + o16));
                    __m128i s1 = _mm_hadd_epi16(_mm256_castsi256_si128(b1), _mm256_extracti128_si256(b1, 1));
                    __m128i s2 = _mm_hadd_epi16(_mm256_castsi256_si128(b2), _mm256_extracti128_si256(b2, 1));
                    __m128i mn = _mm_add_epi32(_mm_slli_epi32(_mm_madd_epi16(wv.mins, s1), 8), _mm_madd_epi16(wv.mins, s2));
                    __m256 f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is1), _mm256_set1_ps(256.0f), _mm256_cvtepi32_ps(is2));
                    float da = a->d[(size_t)(m + r) * (size_t)nb + (size_t)b];
                    acc[r][c] = _mm256_fmadd_ps(f, _mm256_set1_ps(wv.d * da), acc[r][c]);
                    acc[r][c] = _mm256_fmadd_ps(_mm256_zextps128_ps256(_mm_cvtepi32_ps(mn)),
                                                _mm256_set1_ps(-wv.dmin * da), acc[r][c]);
                }
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) y[(size_t)r * ldy + (size_t)c] = hsum(acc[r][c]);
}

/* ---- instantiation ---- */

ALWAYS_INLINE int hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* 8 int32 in [-127, 127] to 8 bytes at p. */
ALWAYS_INLINE void store8(int8_t *p, __m256i v) {
    __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64((__m128i_u *)p, _mm_packs_epi16(w, w));
}

/* om_qact_block (quant_internal.h) on 8 values per instruction. vmaxps returns its second
 * operand when either is NaN, so NaN inputs are skipped by the max and clamped to -127 after
 * scaling, never converted undefined. */
static void qblock(const float *x, int n, int8_t *q1, int8_t *q2, float *d, int *s1, int *s2, int16_t *b1,
                   int16_t *b2) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 vmax = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) vmax = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), absmask), vmax);
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float amax = _mm_cvtss_f32(m4);
    float id = amax > 0.0f && amax <= 3.4e38f ? 127.0f / amax : 0.0f;
    const __m256 vid = _mm256_set1_ps(id), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    __m256i acc1 = _mm256_setzero_si256(), acc2 = _mm256_setzero_si256(), g1 = acc1, g2 = acc2;
    for (int i = 0; i < n; i += 8) {
        __m256 t = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vid), lo), hi);
        __m256 r = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256 t2 = _mm256_round_ps(_mm256_mul_ps(_mm256_sub_ps(t, r), _mm256_set1_ps(256.0f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        t2 = _mm256_min_ps(_mm256_max_ps(t2, lo), hi);
        __m256i i1 = _mm256_cvtps_epi32(r), i2 = _mm256_cvtps_epi32(t2);
        store8(q1 + i, i1);
        store8(q2 + i, i2);
        acc1 = _mm256_add_epi32(acc1, i1);
        acc2 = _mm256_add_epi32(acc2, i2);
        if (n == OM_QA_SUPER) {
            g1 = _mm256_add_epi32(g1, i1);
            g2 = _mm256_add_epi32(g2, i2);
            if (i % 16 == 8) {
                b1[i / 16] = (int16_t)hsum_epi32(g1);
                b2[i / 16] = (int16_t)hsum_epi32(g2);
                g1 = g2 = _mm256_setzero_si256();
            }
        }
    }
    *d = id > 0.0f ? amax / 127.0f / 256.0f : 0.0f;
    *s1 = hsum_epi32(acc1);
    *s2 = hsum_epi32(acc2);
}

static int quantize(om_qact *a, int bsize, int M, int K, const float *x, size_t ldx) {
    return om_qact_quantize_with(qblock, a, bsize, M, K, x, ldx);
}

/* Each tile shape is its own function, so that its accumulators get registers of their own
 * (inlined into one function, the shapes' accumulators went through the stack). AVX2 has 16
 * vector registers: tiles are at most 2 rows of x by 4 weight rows. */
#define OM_Q256_SHAPE(name, DT, TILE, R)                                                                      \
    static __attribute__((noinline)) void tile_##name##_##R(const om_qact *a, int m, const char *w,           \
                                                            size_t ldw, float *y, size_t ldy) {               \
        TILE(DT, R, 4, a, m, w, ldw, y, ldy);                                                                 \
    }
#define OM_Q256_KERNEL(name, DT, TILE, BS)                                                                   \
    OM_Q256_SHAPE(name, DT, TILE, 1)                                                                          \
    OM_Q256_SHAPE(name, DT, TILE, 2)                                                                          \
    static void tile_##name(int R, int C, const om_qact *a, int m, const char *w, size_t ldw, float *y,      \
                            size_t ldy) {                                                                     \
        if (C == 4 && R == 1)                                                                                 \
            tile_##name##_1(a, m, w, ldw, y, ldy);                                                            \
        else if (C == 4 && R == 2)                                                                            \
            tile_##name##_2(a, m, w, ldw, y, ldy);                                                            \
        else                                                                                                  \
            TILE(DT, R, C, a, m, w, ldw, y, ldy);                                                             \
    }                                                                                                         \
    static const om_qmatmul_spec spec_##name = {quantize, BS, 2, 4, tile_##name};                                       \
    static void matmul_##name(int M, int K, const float *x, size_t ldx, const void *w, size_t ldw, float *y, \
                              size_t ldy, int n0, int n1) {                                                   \
        om_qmatmul_drive(&spec_##name, M, K, x, ldx, w, ldw, y, ldy, n0, n1);                                 \
    }

OM_Q256_KERNEL(q4_0, OM_Q4_0, tile32, OM_QA_SMALL)
OM_Q256_KERNEL(q4_1, OM_Q4_1, tile32, OM_QA_SMALL)
OM_Q256_KERNEL(q5_0, OM_Q5_0, tile32, OM_QA_SMALL)
OM_Q256_KERNEL(q5_1, OM_Q5_1, tile32, OM_QA_SMALL)
OM_Q256_KERNEL(q8_0, OM_Q8_0, tile32, OM_QA_SMALL)
OM_Q256_KERNEL(q4_k, OM_Q4_K, tile256, OM_QA_SUPER)
OM_Q256_KERNEL(q5_k, OM_Q5_K, tile256, OM_QA_SUPER)
OM_Q256_KERNEL(q6_k, OM_Q6_K, tile256, OM_QA_SUPER)

void om_quant_fill_avx2(om_cpu_kernels *set) {
    set->matmul[OM_Q4_0] = matmul_q4_0;
    set->matmul[OM_Q4_1] = matmul_q4_1;
    set->matmul[OM_Q5_0] = matmul_q5_0;
    set->matmul[OM_Q5_1] = matmul_q5_1;
    set->matmul[OM_Q8_0] = matmul_q8_0;
    set->matmul[OM_Q4_K] = matmul_q4_k;
    set->matmul[OM_Q5_K] = matmul_q5_k;
    set->matmul[OM_Q6_K] = matmul_q6_k;
}
