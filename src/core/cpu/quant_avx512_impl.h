/* The AVX-512 quantized matmul tiles, written once and compiled twice: by quant_avx512.c
 * (AVX-512 F/BW/VL/DQ: products through vpmaddubsw + vpmaddwd) and by quant_avx512vnni.c
 * (with OM_QUANT_VNNI: vpdpbusd and vpdpwssd, which multiply and accumulate in one
 * instruction). Include it from exactly those files, after defining OM_QUANT_FILL_NAME.
 *
 * 32-element formats: a zmm holds two blocks (64 int8 activations = 2 x 32), so every
 * instruction works on two blocks; an odd last block pairs with itself on the weight side and
 * with zeros on the activation side. The weight nibbles of two blocks are spread to
 * [lo0 hi0 lo1 hi1] (the element order of ggml's blocks) with one 128-bit lane shuffle.
 * Per block the two integer dot products (activations in two levels, see quant_internal.h)
 * land in 8 int32 lanes as 256 * (w . q) + w . q2. Groups of 16 blocks (groups16) reduce the
 * lanes of 8 pairs to one vector of 16 block sums and scale them with one gather of the
 * weights' f16 scales and one multiply-add; constant offsets of the unsigned codes (Q4_0:
 * q - 8, Q5_0: q - 16, and Q8_0 under VNNI, whose signed codes are shifted to unsigned by
 * xor 0x80) enter there as a minimum -offset * d_w against the block's sum of x, like the
 * minimum m_w of Q4_1/Q5_1. The blocks left over (fewer than 16) are scaled per pair
 * (step32): the int32 lanes by d_w * d_x, the offsets removed in the integer domain by
 * starting each level's accumulator at -offset * sum(level) / 8 in each of the block's 8
 * lanes, the minimum fused as m_w * (dsum / 8) per lane.
 *
 * K-quants (256-element super-blocks): the codes are widened to int16 and multiplied by their
 * integer sub-block scales once per weight row and super-block (Q6_K's offset of 32 taken off
 * first), then vpmaddwd / vpdpwssd meet them with the 16-bit activations q16: a whole
 * super-block is one exact int32 sum (|code x scale| <= 4096, |q16| <= 32639, 16 products per
 * lane: < 2^31) before its f32 scaling. The minimums of Q4_K/Q5_K use the activation sums
 * per 32 values (sum32). */
#include <immintrin.h>
#include <string.h>

#include "core/cpu/quant_internal.h"

#ifndef OM_QUANT_FILL_NAME
#error "define OM_QUANT_FILL_NAME before including quant_avx512_impl.h"
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* acc + sum of the 4 products u8 x s8 of each int32 lane. Under VNNI one instruction; without
 * it vpmaddubsw's int16 pair sums could saturate at 2 x 255 x 127, so callers pass codes of at
 * most 127 (Q8_0 uses the sign trick there). */
ALWAYS_INLINE __m512i dot_u8s8(__m512i acc, __m512i u, __m512i s) {
#ifdef OM_QUANT_VNNI
    return _mm512_dpbusd_epi32(acc, u, s);
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
#endif
}

/* acc + sum of the 2 products int16 x int16 of each int32 lane. */
ALWAYS_INLINE __m512i dot_i16(__m512i acc, __m512i a, __m512i b) {
#ifdef OM_QUANT_VNNI
    return _mm512_dpwssd_epi32(acc, a, b);
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
#endif
}

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

/* [v0 x 8, v1 x 8] from the first two lanes of v. */
ALWAYS_INLINE __m512 spread2_ps(__m128 v) {
    return _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                                 _mm512_castps128_ps512(v));
}

ALWAYS_INLINE __m512i spread2_epi32(__m128i v) {
    return _mm512_permutexvar_epi32(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                                    _mm512_castsi128_si512(v));
}

/* ---- 32-element formats ---- */

/* The 32 4-bit codes of two blocks (16 bytes each at qs0, qs1) in element order. */
ALWAYS_INLINE __m512i nibbles2(const uint8_t *qs0, const uint8_t *qs1) {
    __m256i t = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i_u *)qs0)),
                                        _mm_loadu_si128((const __m128i_u *)qs1), 1);
    __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(t), _mm256_srli_epi16(t, 4), 1);
    v = _mm512_shuffle_i64x2(v, v, _MM_SHUFFLE(3, 1, 2, 0));
    return _mm512_and_si512(v, _mm512_set1_epi8(0x0F));
}

/* Weight side of a block pair: codes (unsigned, offset removed later; Q8_0 without VNNI:
 * signed), d_w per lane and, for Q4_1/Q5_1, m_w per lane. */
typedef struct {
    __m512i q;
    __m512 d, m;
    __mmask64 neg; /* Q8_0 without VNNI: the negative codes (q holds |code|) */
} wpair;

ALWAYS_INLINE wpair load_wpair(om_dtype T, const uint8_t *b0, const uint8_t *b1) {
    wpair w;
    w.m = _mm512_setzero_ps();
    w.neg = 0;
    if (T == OM_Q4_1 || T == OM_Q5_1) {
        /* d and m are adjacent f16: one dword per block, converted together. */
        __m128 dm = _mm_cvtph_ps(_mm_insert_epi32(_mm_cvtsi32_si128((int)ld32(b0)), (int)ld32(b1), 1));
        w.d = _mm512_permutexvar_ps(_mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0),
                                    _mm512_castps128_ps512(dm));
        w.m = _mm512_permutexvar_ps(_mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),
                                    _mm512_castps128_ps512(dm));
    } else {
        w.d = spread2_ps(_mm_cvtph_ps(_mm_insert_epi16(_mm_cvtsi32_si128(ld16(b0)), ld16(b1), 1)));
    }
    switch (T) {
    case OM_Q4_0: w.q = nibbles2(b0 + 2, b1 + 2); break;
    case OM_Q4_1: w.q = nibbles2(b0 + 4, b1 + 4); break;
    case OM_Q5_0:
    case OM_Q5_1: {
        int o = T == OM_Q5_1 ? 4 : 2;
        __mmask64 hb = (__mmask64)ld32(b0 + o) | ((__mmask64)ld32(b1 + o) << 32);
        w.q = _mm512_or_si512(nibbles2(b0 + o + 4, b1 + o + 4), _mm512_maskz_mov_epi8(hb, _mm512_set1_epi8(0x10)));
        break;
    }
    case OM_Q8_0: {
        __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i_u *)(b0 + 2))),
                                       _mm256_loadu_si256((const __m256i_u *)(b1 + 2)), 1);
#ifdef OM_QUANT_VNNI
        v = _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));
#else
        w.neg = _mm512_movepi8_mask(v);
        v = _mm512_abs_epi8(v);
#endif
        w.q = v;
        break;
    }
    default: w.q = _mm512_setzero_si512(); break;
    }
    return w;
}

/* Activation side of a block pair (the second one absent when `single`). */
typedef struct {
    __m512i q, q2;
    __m512 d;          /* d_x per lane */
    __m512i off, off2; /* starting values of the integer accumulators of the two levels */
    __m512 s8;         /* dsum / 8 per lane (Q4_1, Q5_1) */
} apair;

ALWAYS_INLINE int offset_shift(om_dtype T) { /* log2(offset / 8); -1: no offset */
#ifdef OM_QUANT_VNNI
    if (T == OM_Q8_0) return 4;
#endif
    return T == OM_Q4_0 ? 0 : T == OM_Q5_0 ? 1 : -1;
}

ALWAYS_INLINE apair load_apair(om_dtype T, const om_qact *a, int row, int b, int single) {
    apair x;
    size_t o = (size_t)row * (size_t)a->K + (size_t)b * 32;
    size_t ib = (size_t)row * (size_t)a->nb + (size_t)b;
    __mmask16 two = single ? 0x1 : 0x3;
    if (single) {
        x.q = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i_u *)(a->q + o)));
        x.q2 = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i_u *)(a->q2 + o)));
    } else {
        x.q = _mm512_loadu_si512(a->q + o);
        x.q2 = _mm512_loadu_si512(a->q2 + o);
    }
    x.d = spread2_ps(_mm512_castps512_ps128(_mm512_maskz_loadu_ps(two, a->d + ib)));
    x.off = x.off2 = _mm512_setzero_si512();
    x.s8 = _mm512_setzero_ps();
    int shift = offset_shift(T);
    if (shift >= 0) {
        __m512i s1 = spread2_epi32(_mm512_castsi512_si128(_mm512_maskz_loadu_epi32(two, a->sum1 + ib)));
        __m512i s2 = spread2_epi32(_mm512_castsi512_si128(_mm512_maskz_loadu_epi32(two, a->sum2 + ib)));
        x.off = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(s1, (unsigned)shift));
        x.off2 = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(s2, (unsigned)shift));
    }
    if (T == OM_Q4_1 || T == OM_Q5_1)
        x.s8 = _mm512_mul_ps(spread2_ps(_mm512_castps512_ps128(_mm512_maskz_loadu_ps(two, a->dsum + ib))),
                             _mm512_set1_ps(0.125f));
    return x;
}

ALWAYS_INLINE __m512 step32(om_dtype T, __m512 acc, const wpair *w, const apair *x) {
    __m512i is;
#ifndef OM_QUANT_VNNI
    if (T == OM_Q8_0) {
        /* |w| x (x with the sign of w): the same products, first factor unsigned. */
        __m512i xs = _mm512_mask_sub_epi8(x->q, w->neg, _mm512_setzero_si512(), x->q);
        __m512i xs2 = _mm512_mask_sub_epi8(x->q2, w->neg, _mm512_setzero_si512(), x->q2);
        is = _mm512_slli_epi32(dot_u8s8(_mm512_setzero_si512(), w->q, xs), 8);
        is = dot_u8s8(is, w->q, xs2);
    } else
#endif
    {
        is = _mm512_slli_epi32(dot_u8s8(x->off, w->q, x->q), 8);
        if (offset_shift(T) >= 0) is = _mm512_add_epi32(is, x->off2);
        is = dot_u8s8(is, w->q, x->q2);
    }
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(w->d, x->d), acc);
    if (T == OM_Q4_1 || T == OM_Q5_1) acc = _mm512_fmadd_ps(w->m, x->s8, acc);
    return acc;
}

/* The integer sums of a block pair of weights and the activations' two levels at x1, x2:
 * 8 lanes per block, without the offsets. */
ALWAYS_INLINE __m512i dot2(om_dtype T, const wpair *w, const int8_t *x1, const int8_t *x2) {
    __m512i q1 = _mm512_loadu_si512(x1), q2 = _mm512_loadu_si512(x2);
#ifndef OM_QUANT_VNNI
    if (T == OM_Q8_0) {
        q1 = _mm512_mask_sub_epi8(q1, w->neg, _mm512_setzero_si512(), q1);
        q2 = _mm512_mask_sub_epi8(q2, w->neg, _mm512_setzero_si512(), q2);
    }
#else
    (void)T;
#endif
    return dot_u8s8(_mm512_slli_epi32(dot_u8s8(_mm512_setzero_si512(), w->q, q1), 8), w->q, q2);
}

/* 8 vectors of [block 2p x 8 lanes | block 2p+1 x 8 lanes] -> the 16 blocks' sums, block
 * order[i] (see groups16) in lane i: three levels of unpack-and-add. */
ALWAYS_INLINE __m512i reduce16(const __m512i is[8]) {
    __m512i t[4], u[2];
    for (int i = 0; i < 4; i++)
        t[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(is[2 * i], is[2 * i + 1]),
                                _mm512_unpackhi_epi32(is[2 * i], is[2 * i + 1]));
    for (int i = 0; i < 2; i++)
        u[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(t[2 * i], t[2 * i + 1]),
                                _mm512_unpackhi_epi64(t[2 * i], t[2 * i + 1]));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(u[0], u[1], _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i32x4(u[0], u[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

/* R rows of x against C weight rows, 16 blocks at a time, scaling once per 16 blocks instead
 * of once per block: each block pair's integer sums (8 lanes per block) are reduced by a
 * transposing add tree to one vector holding the 16 blocks' sums (in the lane order `order`
 * below), the weights' 16 f16 scales (and minimums) come in one gather, and one multiply-add
 * per vector applies them. At M = 1 the per-block conversions, lane spreads and multiplies
 * were most of the work of a weight block. Constant offsets (Q4_0, Q5_0, Q8_0 under VNNI)
 * become a minimum of -offset * d_w against dsum. Returns the number of blocks done (a
 * multiple of 16); acc[r][c] receives the partial sums. */
ALWAYS_INLINE int groups16(om_dtype T, int R, int C, const om_qact *a, int m, const char *w, size_t ldw,
                           __m512 acc[4][4]) {
    const size_t bb = T == OM_Q4_0 ? 18 : T == OM_Q4_1 ? 20 : T == OM_Q5_0 ? 22 : T == OM_Q5_1 ? 24 : 34;
    const int nb = a->nb;
    /* lane i of the reduced vector holds block order[i] of the 16 */
    const __m512i order = _mm512_set_epi32(15, 13, 11, 9, 14, 12, 10, 8, 7, 5, 3, 1, 6, 4, 2, 0);
    const __m512i gidx = _mm512_mullo_epi32(order, _mm512_set1_epi32((int)bb));
    float offset = T == OM_Q4_0 ? -8.0f : T == OM_Q5_0 ? -16.0f : 0.0f;
#ifdef OM_QUANT_VNNI
    if (T == OM_Q8_0) offset = -128.0f;
#endif
    int b = 0;
    for (; b + 16 <= nb; b += 16) {
        __m512 da[4], ds[4];
        for (int r = 0; r < R; r++) {
            size_t ib = (size_t)(m + r) * (size_t)nb + (size_t)b;
            da[r] = _mm512_permutexvar_ps(order, _mm512_loadu_ps(a->d + ib));
            ds[r] = _mm512_permutexvar_ps(order, _mm512_loadu_ps(a->dsum + ib));
        }
        for (int c = 0; c < C; c++) {
            const uint8_t *wb = (const uint8_t *)w + (size_t)c * ldw + (size_t)b * bb;
            /* One row of x: each pair's codes are used as soon as they are unpacked. Several
             * rows: unpack the 8 pairs once. */
            wpair wp[8];
            /* Every path sets all 8 before reduce16 reads them; GCC cannot see it through R. */
            __m512i is[8] = {0};
            const int8_t *x1 = a->q + (size_t)m * (size_t)a->K + (size_t)b * 32;
            const int8_t *x2 = a->q2 + (size_t)m * (size_t)a->K + (size_t)b * 32;
            for (int p = 0; p < 8; p++) {
                const uint8_t *b0 = wb + (size_t)(2 * p) * bb;
                om_qprefetch(b0, OM_QPREFETCH);
                if (2 * bb > 64) om_qprefetch(b0, OM_QPREFETCH + 64);
                wp[p] = load_wpair(T, b0, b0 + bb);
                if (R == 1) is[p] = dot2(T, &wp[p], x1 + 64 * p, x2 + 64 * p);
            }
            /* the blocks' f16 d (and m) in the reduced order (gathered after the pairs: 8%
             * faster at M = 1 than before them) */
            __m512i g = _mm512_i32gather_epi32(gidx, wb, 1);
            __m512 dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g)), mw = _mm512_setzero_ps();
            if (T == OM_Q4_1 || T == OM_Q5_1)
                mw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(g, 16)));
            else if (offset != 0.0f)
                mw = _mm512_mul_ps(dw, _mm512_set1_ps(offset));
            for (int r = 0; r < R; r++) {
                if (R > 1)
                    for (int p = 0; p < 8; p++)
                        is[p] = dot2(T, &wp[p], x1 + (size_t)r * (size_t)a->K + 64 * p,
                                     x2 + (size_t)r * (size_t)a->K + 64 * p);
                __m512i sum = reduce16(is);
                acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(dw, da[r]), acc[r][c]);
                if (T != OM_Q8_0 || offset != 0.0f) acc[r][c] = _mm512_fmadd_ps(mw, ds[r], acc[r][c]);
            }
        }
    }
    return b;
}

ALWAYS_INLINE void tile32(om_dtype T, int R, int C, const om_qact *a, int m, const char *w, size_t ldw, float *y,
                          size_t ldy) {
    const size_t bb = T == OM_Q4_0 ? 18 : T == OM_Q4_1 ? 20 : T == OM_Q5_0 ? 22 : T == OM_Q5_1 ? 24 : 34;
    const int nb = a->nb;
    __m512 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) acc[r][c] = _mm512_setzero_ps();
    int b0 = groups16(T, R, C, a, m, w, ldw, acc);
    for (int b = b0; b < nb; b += 2) {
        int single = b + 1 >= nb;
        apair x[4];
        for (int r = 0; r < R; r++) x[r] = load_apair(T, a, m + r, b, single);
        for (int c = 0; c < C; c++) {
            const uint8_t *b0 = (const uint8_t *)w + (size_t)c * ldw + (size_t)b * bb;
            om_qprefetch(b0, OM_QPREFETCH);
            if (2 * bb > 64) om_qprefetch(b0, OM_QPREFETCH + 64);
            wpair wp = load_wpair(T, b0, single ? b0 : b0 + bb);
            for (int r = 0; r < R; r++) acc[r][c] = step32(T, acc[r][c], &wp, &x[r]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) y[(size_t)r * ldy + (size_t)c] = _mm512_reduce_add_ps(acc[r][c]);
}

/* ---- K-quants ---- */

/* A K-quant super-block's weights as 8 vectors of 32 int16 (sub-block k: values 32k..32k+31)
 * holding code x sub-block scale, and for Q4_K/Q5_K dmin * minimum of each sub-block. */
typedef struct {
    __m512i w[8];
    __m256 mins; /* dmin * m_j, j < 8 */
    float d;
} wk16;

ALWAYS_INLINE wk16 load_k16(om_dtype T, const uint8_t *b) {
    wk16 w;
    if (T == OM_Q6_K) {
        w.d = _cvtsh_ss(ld16(b + 208));
        w.mins = _mm256_setzero_ps();
        __m512i s512 = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i_u *)(b + 192))));
        const __m512i lo4 = _mm512_set1_epi8(0x0F), lo2 = _mm512_set1_epi8(0x03), off = _mm512_set1_epi16(32);
        for (int h = 0; h < 2; h++) {
            __m512i ql = _mm512_loadu_si512(b + 64 * h);
            __m256i qh = _mm256_loadu_si256((const __m256i_u *)(b + 128 + 32 * h));
            __m512i hc = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
            __m512i h0 = _mm512_slli_epi16(_mm512_and_si512(hc, lo2), 4);
            __m512i h1 = _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(hc, 4), lo2), 4);
            __m512i v[2] = {_mm512_or_si512(_mm512_and_si512(ql, lo4), h0),
                            _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), lo4), h1)};
            for (int i = 0; i < 4; i++) {
                int k = 4 * h + i; /* values 32k..32k+31: groups 2k and 2k+1 of 16 */
                __m256i bytes = i & 1 ? _mm512_extracti64x4_epi64(v[i >> 1], 1) : _mm512_castsi512_si256(v[i >> 1]);
                __m512i idx = _mm512_inserti64x4(_mm512_set1_epi16((short)(2 * k)), _mm256_set1_epi16((short)(2 * k + 1)), 1);
                __m512i code = _mm512_sub_epi16(_mm512_cvtepu8_epi16(bytes), off);
                w.w[k] = _mm512_mullo_epi16(code, _mm512_permutexvar_epi16(idx, s512));
            }
        }
        return w;
    }
    /* Q4_K, Q5_K: d, dmin, 12 bytes of 6-bit scales and minimums, (Q5_K: qh[32]), qs[128].
     * The scales to 8 + 8 bytes with ggml's unpacking (core/quant.c: om_q4k_scales). */
    w.d = _cvtsh_ss(ld16(b));
    float dmin = _cvtsh_ss(ld16(b + 2));
    uint32_t u[4];
    memcpy(u, b + 4, 12);
    const uint32_t k1 = 0x3f3f3f3fu, k2 = 0x0f0f0f0fu, k3 = 0x03030303u;
    u[3] = ((u[2] >> 4) & k2) | (((u[1] >> 6) & k3) << 4);
    uint32_t mins_lo = u[1] & k1;
    u[1] = (u[2] & k2) | (((u[0] >> 6) & k3) << 4);
    u[2] = mins_lo;
    u[0] &= k1;
    /* bytes by shifts: a byte array stored as two dwords and read back as one qword stalled
     * store forwarding on every super-block */
    uint64_t sc = (uint64_t)u[0] | (uint64_t)u[1] << 32;
    w.mins = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, (int)u[3], (int)u[2]))),
                           _mm256_set1_ps(dmin));
    const uint8_t *qs = b + (T == OM_Q5_K ? 48 : 16);
    __m512i qh16 = T == OM_Q5_K ? _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i_u *)(b + 16)))
                                : _mm512_setzero_si512();
    const __m512i lo4 = _mm512_set1_epi16(0x0F), one = _mm512_set1_epi16(1);
    for (int p = 0; p < 4; p++) {
        __m512i z = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i_u *)(qs + 32 * p)));
        __m512i lo = _mm512_and_si512(z, lo4), hi = _mm512_srli_epi16(z, 4);
        if (T == OM_Q5_K) {
            lo = _mm512_or_si512(lo, _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh16, (unsigned)(2 * p)), one), 4));
            hi = _mm512_or_si512(hi, _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh16, (unsigned)(2 * p + 1)), one), 4));
        }
        w.w[2 * p] = _mm512_mullo_epi16(lo, _mm512_set1_epi16((short)((sc >> (16 * p)) & 0xFF)));
        w.w[2 * p + 1] = _mm512_mullo_epi16(hi, _mm512_set1_epi16((short)((sc >> (16 * p + 8)) & 0xFF)));
    }
    return w;
}

ALWAYS_INLINE void tile256(om_dtype T, int R, int C, const om_qact *a, int m, const char *w, size_t ldw, float *y,
                           size_t ldy) {
    const size_t bb = T == OM_Q4_K ? 144 : T == OM_Q5_K ? 176 : 210;
    const int nb = a->nb;
    __m512 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) acc[r][c] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        float da[4];
        __m256 xs[4]; /* d_x * the activation sums per 32 values (for the minimums) */
        for (int r = 0; r < R; r++) {
            size_t ib = (size_t)(m + r) * (size_t)nb + (size_t)b;
            da[r] = a->d[ib];
            if (T != OM_Q6_K)
                xs[r] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i_u *)(a->sum32 + ib * 8))),
                                      _mm256_set1_ps(da[r]));
        }
        for (int c = 0; c < C; c++) {
            const uint8_t *wb = (const uint8_t *)w + (size_t)c * ldw + (size_t)b * bb;
            for (size_t line = 0; line < bb; line += 64) om_qprefetch(wb, OM_QPREFETCH + line);
            wk16 wv = load_k16(T, wb);
            for (int r = 0; r < R; r++) {
                const int16_t *x16 = a->q16 + (size_t)(m + r) * (size_t)a->K + (size_t)b * 256;
                /* two chains of dependent multiply-adds, not one of 8 */
                __m512i is0 = _mm512_setzero_si512(), is1 = _mm512_setzero_si512();
                for (int k = 0; k < 8; k += 2) {
                    is0 = dot_i16(is0, wv.w[k], _mm512_loadu_si512(x16 + 32 * k));
                    is1 = dot_i16(is1, wv.w[k + 1], _mm512_loadu_si512(x16 + 32 * k + 32));
                }
                __m512i is = _mm512_add_epi32(is0, is1);
                acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_set1_ps(wv.d * da[r]), acc[r][c]);
                if (T != OM_Q6_K)
                    acc[r][c] = _mm512_fnmadd_ps(_mm512_zextps256_ps512(wv.mins), _mm512_zextps256_ps512(xs[r]), acc[r][c]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) y[(size_t)r * ldy + (size_t)c] = _mm512_reduce_add_ps(acc[r][c]);
}

/* ---- instantiation ---- */

/* om_qact_block (quant_internal.h) on 16 values per instruction: the two levels of n values
 * as 16-lane int32 vectors passed to `out`. vmaxps returns its second operand when either is
 * NaN, so NaN inputs are skipped by the max and clamped to -127 after scaling, never
 * converted undefined. */
ALWAYS_INLINE float qlevels(const float *x, int n, __m512i *l1, __m512i *l2) {
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    __m512 vmax = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) vmax = _mm512_max_ps(_mm512_and_ps(_mm512_loadu_ps(x + i), absmask), vmax);
    float amax = _mm512_reduce_max_ps(vmax);
    float id = amax > 0.0f && amax <= 3.4e38f ? 127.0f / amax : 0.0f;
    const __m512 vid = _mm512_set1_ps(id), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
    for (int i = 0; i < n; i += 16) {
        __m512 t = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), vid), lo), hi);
        __m512 r = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m512 t2 = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_sub_ps(t, r), _mm512_set1_ps(256.0f)),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        t2 = _mm512_min_ps(_mm512_max_ps(t2, lo), hi);
        l1[i / 16] = _mm512_cvtps_epi32(r);
        l2[i / 16] = _mm512_cvtps_epi32(t2);
    }
    return id > 0.0f ? amax / 127.0f / 256.0f : 0.0f;
}

static void qblock32(const float *x, int8_t *q1, int8_t *q2, float *d, int *s1, int *s2) {
    __m512i l1[2], l2[2];
    *d = qlevels(x, 32, l1, l2);
    for (int i = 0; i < 2; i++) {
        _mm_storeu_si128((__m128i_u *)(q1 + 16 * i), _mm512_cvtepi32_epi8(l1[i]));
        _mm_storeu_si128((__m128i_u *)(q2 + 16 * i), _mm512_cvtepi32_epi8(l2[i]));
    }
    *s1 = _mm512_reduce_add_epi32(_mm512_add_epi32(l1[0], l1[1]));
    *s2 = _mm512_reduce_add_epi32(_mm512_add_epi32(l2[0], l2[1]));
}

static void qblock256(const float *x, int16_t *q16, float *d, int32_t *sum32) {
    __m512i l1[16], l2[16];
    *d = qlevels(x, 256, l1, l2);
    for (int j = 0; j < 8; j++) {
        __m512i a = _mm512_add_epi32(_mm512_slli_epi32(l1[2 * j], 8), l2[2 * j]);
        __m512i b = _mm512_add_epi32(_mm512_slli_epi32(l1[2 * j + 1], 8), l2[2 * j + 1]);
        _mm256_storeu_si256((__m256i_u *)(q16 + 32 * j), _mm512_cvtepi32_epi16(a));
        _mm256_storeu_si256((__m256i_u *)(q16 + 32 * j + 16), _mm512_cvtepi32_epi16(b));
        sum32[j] = _mm512_reduce_add_epi32(_mm512_add_epi32(a, b));
    }
}

static const om_qact_blocks qblocks = {qblock32, qblock256};

static int quantize(om_qact *a, int bsize, int M, int K, const float *x, size_t ldx) {
    return om_qact_quantize_with(&qblocks, a, bsize, M, K, x, ldx);
}

/* Tiles with R and C known at compile time keep their accumulators in registers; C < 4 (the
 * last columns of a range) takes the generic body. Each shape is its own function: inlined
 * together into one, the bodies' accumulators were spilled to the stack on every block. */
#define OM_Q512_SHAPE(name, DT, TILE, R)                                                                      \
    static __attribute__((noinline)) void tile_##name##_##R(const om_qact *a, int m, const char *w,           \
                                                            size_t ldw, float *y, size_t ldy) {               \
        TILE(DT, R, 4, a, m, w, ldw, y, ldy);                                                                 \
    }
#define OM_Q512_KERNEL(name, DT, TILE, BS)                                                                   \
    OM_Q512_SHAPE(name, DT, TILE, 1)                                                                          \
    OM_Q512_SHAPE(name, DT, TILE, 2)                                                                          \
    OM_Q512_SHAPE(name, DT, TILE, 3)                                                                          \
    OM_Q512_SHAPE(name, DT, TILE, 4)                                                                          \
    static void tile_##name(int R, int C, const om_qact *a, int m, const char *w, size_t ldw, float *y,      \
                            size_t ldy) {                                                                     \
        if (C == 4) {                                                                                         \
            switch (R) {                                                                                      \
            case 1: tile_##name##_1(a, m, w, ldw, y, ldy); return;                                            \
            case 2: tile_##name##_2(a, m, w, ldw, y, ldy); return;                                            \
            case 3: tile_##name##_3(a, m, w, ldw, y, ldy); return;                                            \
            default: tile_##name##_4(a, m, w, ldw, y, ldy); return;                                           \
            }                                                                                                 \
        }                                                                                                     \
        TILE(DT, R, C, a, m, w, ldw, y, ldy);                                                                 \
    }                                                                                                         \
    static const om_qmatmul_spec spec_##name = {quantize, BS, 4, 4, tile_##name};                                       \
    static void matmul_##name(int M, int K, const float *x, size_t ldx, const void *w, size_t ldw, float *y, \
                              size_t ldy, int n0, int n1) {                                                   \
        om_qmatmul_drive(&spec_##name, M, K, x, ldx, w, ldw, y, ldy, n0, n1);                                 \
    }

OM_Q512_KERNEL(q4_0, OM_Q4_0, tile32, OM_QA_SMALL)
OM_Q512_KERNEL(q4_1, OM_Q4_1, tile32, OM_QA_SMALL)
OM_Q512_KERNEL(q5_0, OM_Q5_0, tile32, OM_QA_SMALL)
OM_Q512_KERNEL(q5_1, OM_Q5_1, tile32, OM_QA_SMALL)
OM_Q512_KERNEL(q8_0, OM_Q8_0, tile32, OM_QA_SMALL)
OM_Q512_KERNEL(q4_k, OM_Q4_K, tile256, OM_QA_SUPER)
OM_Q512_KERNEL(q5_k, OM_Q5_K, tile256, OM_QA_SUPER)
OM_Q512_KERNEL(q6_k, OM_Q6_K, tile256, OM_QA_SUPER)

void OM_QUANT_FILL_NAME(om_cpu_kernels *set) {
    set->matmul[OM_Q4_0] = matmul_q4_0;
    set->matmul[OM_Q4_1] = matmul_q4_1;
    set->matmul[OM_Q5_0] = matmul_q5_0;
    set->matmul[OM_Q5_1] = matmul_q5_1;
    set->matmul[OM_Q8_0] = matmul_q8_0;
    set->matmul[OM_Q4_K] = matmul_q4_k;
    set->matmul[OM_Q5_K] = matmul_q5_k;
    set->matmul[OM_Q6_K] = matmul_q6_k;
}
