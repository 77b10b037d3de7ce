/* Quantized matmul, portable part: the activation buffers every instruction set uses
 * (om_qact_alloc; the quantization itself is in quant_internal.h), the portable-C tiles (the
 * reference the SIMD tiles are tested against, and the kernels of CPUs without AVX2), and
 * om_quant_kernels_fill, which picks the tiles of an instruction-set level. Block layouts are
 * ggml's (see core/quant.c, which dequantizes them). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu/quant_internal.h"
#include "core/cpu/quant_kernels.h"
#include "core/quant.h"

/* ---- activations ---- */

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

int om_qact_alloc(om_qact *a, int bsize, int M, int K) {
    memset(a, 0, sizeof *a);
    if (M <= 0 || K <= 0 || K % bsize) return -1;
    int nb = K / bsize;
    size_t used = (size_t)M * (size_t)K;
    size_t nq = align64(used + 64), nd = align64((size_t)M * (size_t)nb * sizeof(float));
    size_t bytes = nd;
    if (bsize == OM_QA_SMALL)
        bytes += 2 * nq + 3 * nd;
    else
        bytes += 2 * nq + align64(used / 32 * sizeof(int32_t));
    char *mem = aligned_alloc(64, bytes);
    if (!mem) return -1;
    a->M = M, a->K = K, a->bsize = bsize, a->nb = nb, a->mem = mem;
    a->d = (float *)mem;
    char *rest = mem + nd;
    if (bsize == OM_QA_SMALL) {
        a->q = (int8_t *)rest;
        a->q2 = (int8_t *)(rest + nq);
        a->sum1 = (int32_t *)(rest + 2 * nq);
        a->sum2 = (int32_t *)(rest + 2 * nq + nd);
        a->dsum = (float *)(rest + 2 * nq + 2 * nd);
        /* the padding that vector loads past a short row's end may touch */
        memset(a->q + used, 0, nq - used);
        memset(a->q2 + used, 0, nq - used);
    } else {
        a->q16 = (int16_t *)rest;
        a->sum32 = (int32_t *)(rest + 2 * nq);
        memset(a->q16 + used, 0, 2 * nq - 2 * used);
    }
    return 0;
}

static void block32_portable(const float *x, int8_t *q1, int8_t *q2, float *d, int *s1, int *s2) {
    om_qact_block(x, OM_QA_SMALL, q1, q2, d, s1, s2);
}

static const om_qact_blocks blocks_portable = {block32_portable, om_qact_block256};

static int quantize_portable(om_qact *a, int bsize, int M, int K, const float *x, size_t ldx) {
    return om_qact_quantize_with(&blocks_portable, a, bsize, M, K, x, ldx);
}

void om_qact_free(om_qact *a) {
    free(a->mem);
    memset(a, 0, sizeof *a);
}

/* ---- per-thread reuse of the last quantized x (see om_qact_reuse) ---- */

typedef struct qcache {
    int (*quantize)(om_qact *, int, int, int, const float *, size_t);
    const float *x;
    size_t ldx;
    int bsize, M, K;
    float *xcopy; /* M * K values, rows packed */
    size_t cap;   /* floats xcopy holds */
    om_qact a;
} qcache;

/* The pointer lives in static TLS, where LeakSanitizer sees it while the thread lives; the
 * key's destructor frees the cache when a thread exits. */
static _Thread_local qcache *tl_cache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_free(void *p) {
    qcache *c = p;
    if (!c) return;
    om_qact_free(&c->a);
    free(c->xcopy);
    free(c);
    if (tl_cache == c) tl_cache = NULL;
}

static void cache_key_create(void) {
    if (pthread_key_create(&cache_key, cache_free) != 0) cache_key = (pthread_key_t)-1;
}

static int same_x(const qcache *c, const float *x, size_t ldx, int M, int K) {
    for (int m = 0; m < M; m++)
        if (memcmp(c->xcopy + (size_t)m * (size_t)K, x + (size_t)m * ldx, (size_t)K * sizeof(float))) return 0;
    return 1;
}

const om_qact *om_qact_reuse(int (*quantize)(om_qact *, int, int, int, const float *, size_t), int bsize, int M,
                             int K, const float *x, size_t ldx) {
    size_t n = (size_t)M * (size_t)K;
    if (n > OM_QA_REUSE_MAX) return NULL;
    qcache *c = tl_cache;
    if (c && c->quantize == quantize && c->x == x && c->ldx == ldx && c->bsize == bsize && c->M == M && c->K == K &&
        same_x(c, x, ldx, M, K))
        return &c->a;
    if (!c) {
        pthread_once(&cache_once, cache_key_create);
        if (cache_key == (pthread_key_t)-1 || !(c = calloc(1, sizeof *c))) return NULL;
        if (pthread_setspecific(cache_key, c) != 0) {
            free(c);
            return NULL;
        }
        tl_cache = c;
    }
    if (c->cap < n) {
        float *p = realloc(c->xcopy, n * sizeof(float));
        if (!p) return NULL;
        c->xcopy = p;
        c->cap = n;
    }
    om_qact_free(&c->a);
    c->x = NULL; /* invalid until quantized */
    if (quantize(&c->a, bsize, M, K, x, ldx) != 0) return NULL;
    for (int m = 0; m < M; m++) memcpy(c->xcopy + (size_t)m * (size_t)K, x + (size_t)m * ldx, (size_t)K * sizeof(float));
    c->quantize = quantize, c->x = x, c->ldx = ldx, c->bsize = bsize, c->M = M, c->K = K;
    return &c->a;
}

/* ---- portable tiles ---- */

static float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return om_f16_to_f32(h);
}

/* One 32-element weight block as signed integers q[32] with y = d * q + m. */
static void unpack32(om_dtype t, const uint8_t *b, int8_t *q, float *d, float *m) {
    *d = f16_at(b);
    *m = 0.0f;
    switch (t) {
    case OM_Q8_0:
        memcpy(q, b + 2, 32);
        break;
    case OM_Q4_0:
    case OM_Q4_1: {
        const uint8_t *qs = b + (t == OM_Q4_1 ? 4 : 2);
        int off = t == OM_Q4_0 ? 8 : 0;
        if (t == OM_Q4_1) *m = f16_at(b + 2);
        for (int j = 0; j < 16; j++) {
            q[j] = (int8_t)((qs[j] & 0xF) - off);
            q[j + 16] = (int8_t)((qs[j] >> 4) - off);
        }
        break;
    }
    case OM_Q5_0:
    case OM_Q5_1: {
        const uint8_t *p = b + (t == OM_Q5_1 ? 4 : 2);
        int off = t == OM_Q5_0 ? 16 : 0;
        if (t == OM_Q5_1) *m = f16_at(b + 2);
        uint32_t qh;
        memcpy(&qh, p, 4);
        const uint8_t *qs = p + 4;
        for (int j = 0; j < 16; j++) {
            q[j] = (int8_t)(((qs[j] & 0xF) | (((qh >> j) & 1) << 4)) - off);
            q[j + 16] = (int8_t)(((qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - off);
        }
        break;
    }
    default: break;
    }
}

static int dot_i8(const int8_t *a, const int8_t *b, int n) {
    int s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* 32-element formats: sum over blocks of d_w * d_x * (q_w . (256 q + q2)) + m_w * dsum. */
static inline void tile32(om_dtype t, int R, int C, const om_qact *a, int m, const char *w, size_t ldw, float *y,
                          size_t ldy) {
    const size_t bb = om_dtype_block_bytes(t);
    for (int c = 0; c < C; c++) {
        const uint8_t *wr = (const uint8_t *)w + (size_t)c * ldw;
        float acc[4] = {0};
        for (int b = 0; b < a->nb; b++) {
            int8_t q[32];
            float d, mn;
            unpack32(t, wr + (size_t)b * bb, q, &d, &mn);
            for (int r = 0; r < R; r++) {
                size_t ib = (size_t)(m + r) * (size_t)a->nb + (size_t)b;
                int s = 256 * dot_i8(q, a->q + ib * 32, 32) + dot_i8(q, a->q2 + ib * 32, 32);
                acc[r] += d * a->d[ib] * (float)s + mn * a->dsum[ib];
            }
        }
        for (int r = 0; r < R; r++) y[(size_t)r * ldy + (size_t)c] = acc[r];
    }
}

/* K-quants: one 256-element super-block as integers q[256] (Q6_K: signed), the integer scale
 * of each 16 values sc16[16], and for Q4_K/Q5_K the minimum of each 32 values mn[8]:
 * y = d * sc16 * q - dmin * mn. */
static void unpack256(om_dtype t, const uint8_t *b, int8_t *q, int sc16[16], int mn[8], float *d, float *dmin) {
    if (t == OM_Q6_K) {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        *d = f16_at(b + 208);
        *dmin = 0.0f;
        for (int h = 0; h < 2; h++, ql += 64, qh += 32, q += 128)
            for (int l = 0; l < 32; l++) {
                q[l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                q[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                q[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                q[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        for (int g = 0; g < 16; g++) sc16[g] = sc[g];
        for (int j = 0; j < 8; j++) mn[j] = 0;
        return;
    }
    /* Q4_K, Q5_K: d, dmin, 12 bytes of scales, (Q5_K: qh[32]), qs[128]. */
    *d = f16_at(b);
    *dmin = f16_at(b + 2);
    uint8_t sc[8], m8[8];
    om_q4k_scales(b + 4, sc, m8);
    for (int j = 0; j < 8; j++) {
        sc16[2 * j] = sc16[2 * j + 1] = sc[j];
        mn[j] = m8[j];
    }
    const uint8_t *qh = b + 16, *qs = b + (t == OM_Q5_K ? 48 : 16);
    for (int j = 0; j < 4; j++, qs += 32)
        for (int l = 0; l < 32; l++) {
            int lo = qs[l] & 0xF, hi = qs[l] >> 4;
            if (t == OM_Q5_K) {
                lo |= ((qh[l] >> (2 * j)) & 1) << 4;
                hi |= ((qh[l] >> (2 * j + 1)) & 1) << 4;
            }
            q[64 * j + l] = (int8_t)lo;
            q[64 * j + 32 + l] = (int8_t)hi;
        }
}

static inline void tile256(om_dtype t, int R, int C, const om_qact *a, int m, const char *w, size_t ldw, float *y,
                           size_t ldy) {
    const size_t bb = om_dtype_block_bytes(t);
    for (int c = 0; c < C; c++) {
        const uint8_t *wr = (const uint8_t *)w + (size_t)c * ldw;
        float acc[4] = {0};
        for (int b = 0; b < a->nb; b++) {
            int8_t q[256];
            int sc16[16], mn[8];
            float d, dmin;
            unpack256(t, wr + (size_t)b * bb, q, sc16, mn, &d, &dmin);
            for (int r = 0; r < R; r++) {
                size_t o = (size_t)(m + r) * (size_t)a->K + (size_t)b * 256;
                const int16_t *x16 = a->q16 + o;
                const int32_t *s32 = a->sum32 + o / 32;
                /* sum_g sc_g * (q . q16) reaches 2^31 only at the formats' extremes: int64 */
                long long s = 0, smin = 0;
                for (int g = 0; g < 16; g++) {
                    int dg = 0;
                    for (int i = 16 * g; i < 16 * g + 16; i++) dg += q[i] * x16[i];
                    s += (long long)sc16[g] * dg;
                }
                for (int j = 0; j < 8; j++) smin += (long long)mn[j] * s32[j];
                float da = a->d[(size_t)(m + r) * (size_t)a->nb + (size_t)b];
                acc[r] += da * (d * (float)s - dmin * (float)smin);
            }
        }
        for (int r = 0; r < R; r++) y[(size_t)r * ldy + (size_t)c] = acc[r];
    }
}

#define PORTABLE_KERNEL(name, DT, TILE, BS)                                                                   \
    static void tile_##name(int R, int C, const om_qact *a, int m, const char *w, size_t ldw, float *y,      \
                            size_t ldy) {                                                                     \
        TILE(DT, R, C, a, m, w, ldw, y, ldy);                                                                 \
    }                                                                                                         \
    static const om_qmatmul_spec spec_##name = {quantize_portable, BS, 4, 4, tile_##name};                                       \
    static void matmul_##name(int M, int K, const float *x, size_t ldx, const void *w, size_t ldw, float *y, \
                              size_t ldy, int n0, int n1) {                                                   \
        om_qmatmul_drive(&spec_##name, M, K, x, ldx, w, ldw, y, ldy, n0, n1);                                 \
    }

PORTABLE_KERNEL(q4_0, OM_Q4_0, tile32, OM_QA_SMALL)
PORTABLE_KERNEL(q4_1, OM_Q4_1, tile32, OM_QA_SMALL)
PORTABLE_KERNEL(q5_0, OM_Q5_0, tile32, OM_QA_SMALL)
PORTABLE_KERNEL(q5_1, OM_Q5_1, tile32, OM_QA_SMALL)
PORTABLE_KERNEL(q8_0, OM_Q8_0, tile32, OM_QA_SMALL)
PORTABLE_KERNEL(q4_k, OM_Q4_K, tile256, OM_QA_SUPER)
PORTABLE_KERNEL(q5_k, OM_Q5_K, tile256, OM_QA_SUPER)
PORTABLE_KERNEL(q6_k, OM_Q6_K, tile256, OM_QA_SUPER)

void om_quant_fill_portable(om_cpu_kernels *set) {
    set->matmul[OM_Q4_0] = matmul_q4_0;
    set->matmul[OM_Q4_1] = matmul_q4_1;
    set->matmul[OM_Q5_0] = matmul_q5_0;
    set->matmul[OM_Q5_1] = matmul_q5_1;
    set->matmul[OM_Q8_0] = matmul_q8_0;
    set->matmul[OM_Q4_K] = matmul_q4_k;
    set->matmul[OM_Q5_K] = matmul_q5_k;
    set->matmul[OM_Q6_K] = matmul_q6_k;
}

/* ---- choice by level ---- */

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* AVX512_VNNI: cpuid leaf 7, ecx bit 11. The caller has checked that AVX-512 state is on. */
static int cpu_has_avx512vnni(void) {
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (c >> 11) & 1;
}
#endif

int om_quant_avx512_vnni(void) {
#if defined(__x86_64__) || defined(__i386__)
    const char *v = getenv("OMINIX_CPU_VNNI");
    return om_quant_avx512vnni_built && cpu_has_avx512vnni() && !(v && !strcmp(v, "0"));
#else
    return 0;
#endif
}

void om_quant_kernels_fill(om_cpu_kernels *set, int level) {
    om_quant_fill_portable(set);
#if defined(__x86_64__) || defined(__i386__)
    if (level >= OM_QUANT_AVX2) om_quant_fill_avx2(set);
    if (level >= OM_QUANT_AVX512) {
        if (om_quant_avx512_vnni())
            om_quant_fill_avx512vnni(set);
        else
            om_quant_fill_avx512(set);
    }
#else
    (void)level;
#endif
}

