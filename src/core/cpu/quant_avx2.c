/* Quantized matmul tiles for AVX2 + FMA + F16C (CPUs without AVX-512). Same arithmetic as
 * the AVX-512 tiles (quant_avx512_impl.h; the activations' two 8-bit levels are described in
 * quant_internal.h), on 256-bit vectors: one 32-element block per vector, products through
 * vpmaddubsw (u8 x s8 -> int16 pair sums) and vpmaddwd. vpmaddubsw saturates at 32767, so its
 * unsigned factor must stay at most 127: the 4- to 6-bit codes do, and Q8_0's signed codes go
 * through the sign trick (|w| times x with the sign of w). Each block's two levels are combined
 * as 256 * (w . q) + w . q2 by the vpmaddwd multipliers (256 and 1), exact in int32. The
 * K-quants use 16-bit codes times scales against the 16-bit activations with vpmaddwd, as
 * the AVX-512 tiles do. Scaling is per block here (the 16-block grouping of the AVX-512 tiles
 * is not done for AVX2). */
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
            om_qprefetch(wb, OM_QPREFETCH); /* blocks are <= 64 bytes */
            wblk wv = load_wblk(T, wb);
            for (int r = 0; r < R; r++) acc[r][c] = step32(T, acc[r][c], &wv, &x[r]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) y[(size_t)r * ldy + (size_t)c] = hsum(acc[r][c]);
}

/* ---- K-quants ---- */

/* The codes of a K-quant super-block are widened to int16 and multiplied by their sub-block
 * scales (Q6_K's offset of 32 taken off first), one sub-block of 32 values (two vectors) at a
 * time, and met with the 16-bit activations q16 by vpmaddwd. Each of the two vectors of a
 * sub-block has its own int32 accumulator: 16 products per lane at most, so the sums stay
 * below 2^31 (|code x scale| <= 4096, |q16| <= 32639); they meet in f32. */

typedef struct {
    uint64_t sc; /* byte j: the scale of sub-block j (kept in a register: see load_kscales) */
    __m256 mins; /* dmin * m_j */
    float d;
} kscales;

ALWAYS_INLINE kscales load_kscales(om_dtype T, const uint8_t *b) {
    kscales k;
    if (T == OM_Q6_K) {
        k.d = _cvtsh_ss(ld16(b + 208));
        k.mins = _mm256_setzero_ps();
        k.sc = 0;
        return k;
    }
    /* The 12 bytes of 6-bit scales and minimums to 8 + 8 bytes (ggml's unpacking, which
     * core/quant.c does one at a time in om_q4k_scales). */
    k.d = _cvtsh_ss(ld16(b));
    float dmin = _cvtsh_ss(ld16(b + 2));
    uint32_t u[4];
    memcpy(u, b + 4, 12);
    const uint32_t k1 = 0x3f3f3f3fu, k2 = 0x0f0f0f0fu, k3 = 0x03030303u;
    u[3] = ((u[2] >> 4) & k2) | (((u[1] >> 6) & k3) << 4);
    uint32_t mins_lo = u[1] & k1;
    u[1] = (u[2] & k2) | (((u[0] >> 6) & k3) << 4);
    u[2] = mins_lo;
    u[0] &= k1;
    /* not memcpy to bytes: two dwords stored and read back as one qword stall store forwarding */
    k.sc = (uint64_t)u[0] | (uint64_t)u[1] << 32;
    k.mins = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, (int)u[3], (int)u[2]))),
                           _mm256_set1_ps(dmin));
    return k;
}

/* Sub-block k (values 32k..32k+31) of a super-block as code x scale in two int16 vectors. */
ALWAYS_INLINE void load_sub16(om_dtype T, const uint8_t *b, const kscales *ks, int k, __m256i *w0, __m256i *w1) {
    if (T == OM_Q6_K) {
        /* values 128h + 32i + l: ql[64h + 32(i&1) + l] nibble i>>1, qh[32h + l] bits 2i..2i+1 */
        int h = k >> 2, i = k & 3;
        __m256i ql = _mm256_loadu_si256((const __m256i_u *)(b + 64 * h + 32 * (i & 1)));
        __m256i qh = _mm256_loadu_si256((const __m256i_u *)(b + 128 + 32 * h));
        if (i >> 1) ql = _mm256_srli_epi16(ql, 4);
        qh = _mm256_srli_epi16(qh, 2 * i);
        __m256i bytes = _mm256_or_si256(_mm256_and_si256(ql, _mm256_set1_epi8(0x0F)),
                                        _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x03)), 4));
        const __m256i off = _mm256_set1_epi16(32);
        __m256i c0 = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(bytes)), off);
        __m256i c1 = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm256_extracti128_si256(bytes, 1)), off);
        const int8_t *sc = (const int8_t *)(b + 192);
        *w0 = _mm256_mullo_epi16(c0, _mm256_set1_epi16(sc[2 * k]));
        *w1 = _mm256_mullo_epi16(c1, _mm256_set1_epi16(sc[2 * k + 1]));
        return;
    }
    const uint8_t *qs = b + (T == OM_Q5_K ? 48 : 16) + 32 * (k >> 1);
    __m256i z0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i_u *)qs));
    __m256i z1 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i_u *)(qs + 16)));
    if (k & 1) {
        z0 = _mm256_srli_epi16(z0, 4);
        z1 = _mm256_srli_epi16(z1, 4);
    } else {
        z0 = _mm256_and_si256(z0, _mm256_set1_epi16(0x0F));
        z1 = _mm256_and_si256(z1, _mm256_set1_epi16(0x0F));
    }
    if (T == OM_Q5_K) {
        const __m256i one = _mm256_set1_epi16(1);
        __m256i h0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i_u *)(b + 16)));
        __m256i h1 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i_u *)(b + 32)));
        z0 = _mm256_or_si256(z0, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h0, k), one), 4));
        z1 = _mm256_or_si256(z1, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h1, k), one), 4));
    }
    __m256i s = _mm256_set1_epi16((short)((ks->sc >> (8 * k)) & 0xFF));
    *w0 = _mm256_mullo_epi16(z0, s);
    *w1 = _mm256_mullo_epi16(z1, s);
}

ALWAYS_INLINE void tile256(om_dtype T, int R, int C, const om_qact *a, int m, const char *w, size_t ldw, float *y,
                           size_t ldy) {
    const size_t bb = T == OM_Q4_K ? 144 : T == OM_Q5_K ? 176 : 210;
    const int nb = a->nb;
    __m256 acc[2][4];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        for (int c = 0; c < C; c++) {
            const uint8_t *wb = (const uint8_t *)w + (size_t)c * ldw + (size_t)b * bb;
            for (size_t line = 0; line < bb; line += 64) om_qprefetch(wb, OM_QPREFETCH + line);
            kscales ks = load_kscales(T, wb);
            __m256i i0[2], i1[2];
            for (int r = 0; r < R; r++) i0[r] = i1[r] = _mm256_setzero_si256();
            for (int k = 0; k < 8; k++) {
                __m256i w0, w1;
                load_sub16(T, wb, &ks, k, &w0, &w1);
                for (int r = 0; r < R; r++) {
                    const int16_t *x16 = a->q16 + (size_t)(m + r) * (size_t)a->K + (size_t)b * 256 + 32 * k;
                    i0[r] = _mm256_add_epi32(i0[r], _mm256_madd_epi16(w0, _mm256_loadu_si256((const __m256i_u *)x16)));
                    i1[r] = _mm256_add_epi32(i1[r], _mm256_madd_epi16(w1, _mm256_loadu_si256((const __m256i_u *)(x16 + 16))));
                }
            }
            for (int r = 0; r < R; r++) {
                size_t ib = (size_t)(m + r) * (size_t)nb + (size_t)b;
                float da = a->d[ib];
                __m256 f = _mm256_add_ps(_mm256_cvtepi32_ps(i0[r]), _mm256_cvtepi32_ps(i1[r]));
                acc[r][c] = _mm256_fmadd_ps(f, _mm256_set1_ps(ks.d * da), acc[r][c]);
                if (T != OM_Q6_K) {
                    __m256 xs = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i_u *)(a->sum32 + ib * 8)));
                    acc[r][c] = _mm256_fnmadd_ps(ks.mins, _mm256_mul_ps(xs, _mm256_set1_ps(da)), acc[r][c]);
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

/* om_qact_block (quant_internal.h) on 8 values per instruction: the two levels of n values as
 * 8-lane int32 vectors in l1, l2. vmaxps returns its second operand when either is NaN, so
 * NaN inputs are skipped by the max and clamped to -127 after scaling, never converted
 * undefined. */
ALWAYS_INLINE float qlevels(const float *x, int n, __m256i *l1, __m256i *l2) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 vmax = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) vmax = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), absmask), vmax);
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float amax = _mm_cvtss_f32(m4);
    float id = amax > 0.0f && amax <= 3.4e38f ? 127.0f / amax : 0.0f;
    const __m256 vid = _mm256_set1_ps(id), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    for (int i = 0; i < n; i += 8) {
        __m256 t = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vid), lo), hi);
        __m256 r = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256 t2 = _mm256_round_ps(_mm256_mul_ps(_mm256_sub_ps(t, r), _mm256_set1_ps(256.0f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        t2 = _mm256_min_ps(_mm256_max_ps(t2, lo), hi);
        l1[i / 8] = _mm256_cvtps_epi32(r);
        l2[i / 8] = _mm256_cvtps_epi32(t2);
    }
    return id > 0.0f ? amax / 127.0f / 256.0f : 0.0f;
}

static void qblock32(const float *x, int8_t *q1, int8_t *q2, float *d, int *s1, int *s2) {
    __m256i l1[4], l2[4];
    *d = qlevels(x, 32, l1, l2);
    for (int i = 0; i < 4; i++) {
        store8(q1 + 8 * i, l1[i]);
        store8(q2 + 8 * i, l2[i]);
    }
    *s1 = hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(l1[0], l1[1]), _mm256_add_epi32(l1[2], l1[3])));
    *s2 = hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(l2[0], l2[1]), _mm256_add_epi32(l2[2], l2[3])));
}

static void qblock256(const float *x, int16_t *q16, float *d, int32_t *sum32) {
    __m256i l1[32], l2[32];
    *d = qlevels(x, 256, l1, l2);
    for (int j = 0; j < 8; j++) {
        __m256i s = _mm256_setzero_si256();
        for (int i = 4 * j; i < 4 * j + 4; i += 2) {
            __m256i a = _mm256_add_epi32(_mm256_slli_epi32(l1[i], 8), l2[i]);
            __m256i b = _mm256_add_epi32(_mm256_slli_epi32(l1[i + 1], 8), l2[i + 1]);
            /* packs works per 128-bit lane: put the 16 values back in order */
            __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xd8);
            _mm256_storeu_si256((__m256i_u *)(q16 + 8 * i), p);
            s = _mm256_add_epi32(s, _mm256_add_epi32(a, b));
        }
        sum32[j] = hsum_epi32(s);
    }
}

static const om_qact_blocks qblocks = {qblock32, qblock256};

static int quantize(om_qact *a, int bsize, int M, int K, const float *x, size_t ldx) {
    return om_qact_quantize_with(&qblocks, a, bsize, M, K, x, ldx);
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
