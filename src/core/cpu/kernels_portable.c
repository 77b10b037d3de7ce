/* Portable C kernels: the reference the SIMD sets are tested against and the fallback on any
 * CPU. Written so that the compiler's auto-vectorizer does well (fixed-size inner loops over
 * independent accumulators) but with no intrinsics. Weight rows may sit at any byte address,
 * so every weight element is read with memcpy. */
#include <string.h>

#include "core/cpu/kernels_internal.h"
#include "core/tensor.h"

/* Eight partial sums: a single running sum would serialize on the add latency, and the
 * compiler may not reorder float additions by itself. */
static float dot_f32(const float *a, const float *b, int n) {
    float s[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
    for (; i < n; i++) s[0] += a[i] * b[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static void axpy_f32(float *y, const float *x, float alpha, int n) {
    for (int i = 0; i < n; i++) y[i] += alpha * x[i];
}

static float sum_f32(const float *a, size_t n) {
    float s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += a[i + j];
    for (; i < n; i++) s[0] += a[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static inline float load_w(om_dtype dt, const char *p) {
    if (dt == OM_F32) {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, p, 2);
    return dt == OM_BF16 ? om_bf16_to_f32(h) : om_f16_to_f32(h);
}

/* Converts n (<= SMALL_CHUNK) weights starting at p to f32. One memcpy takes care of the
 * alignment, so that the conversion loop is a plain loop the compiler can vectorize. */
#define SMALL_CHUNK 256
static inline void convert_row(om_dtype dt, const char *p, int n, float *dst) {
    if (dt == OM_F32) {
        memcpy(dst, p, (size_t)n * 4);
        return;
    }
    uint16_t h[SMALL_CHUNK];
    memcpy(h, p, (size_t)n * 2);
    if (dt == OM_BF16)
        for (int i = 0; i < n; i++) dst[i] = om_bf16_to_f32(h[i]);
    else
        for (int i = 0; i < n; i++) dst[i] = om_f16_to_f32(h[i]);
}

/* The small tile converts each weight row in chunks and takes dot products with every x row
 * while the chunk is hot. */

static inline void small_tile(om_dtype dt, int R, int K, const float *x, size_t ldx, const char *w, size_t ldw,
                              int rows, float *y, size_t ldy) {
    size_t sz = om_dtype_size(dt);
    float acc[4][4] = {{0}};
    float buf[SMALL_CHUNK];
    for (int k0 = 0; k0 < K; k0 += SMALL_CHUNK) {
        int kc = K - k0 < SMALL_CHUNK ? K - k0 : SMALL_CHUNK;
        for (int c = 0; c < rows; c++) {
            convert_row(dt, w + (size_t)c * ldw + (size_t)k0 * sz, kc, buf);
            for (int r = 0; r < R; r++) acc[r][c] += dot_f32(buf, x + (size_t)r * ldx + k0, kc);
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < rows; c++) y[(size_t)r * ldy + c] = acc[r][c];
}

#define NR 8
#define MR 4
#define KC 256

static inline void pack(om_dtype dt, const char *w, size_t ldw, int rows, int kc, float *panel) {
    size_t sz = om_dtype_size(dt);
    for (int j = 0; j < NR; j++) {
        const char *row = w + (size_t)j * ldw;
        for (int k = 0; k < kc; k++) panel[k * NR + j] = j < rows ? load_w(dt, row + (size_t)k * sz) : 0.0f;
    }
}

static void micro(int mr, int kc, const float *x, size_t ldx, const float *panel, float *y, size_t ldy, int ncols,
                  int accumulate) {
    float c[MR][NR] = {{0}};
    for (int k = 0; k < kc; k++) {
        const float *b = panel + k * NR;
        for (int i = 0; i < MR; i++) {
            float a = i < mr ? x[(size_t)i * ldx + k] : 0.0f;
            for (int j = 0; j < NR; j++) c[i][j] += a * b[j];
        }
    }
    for (int i = 0; i < mr; i++) {
        float *yr = y + (size_t)i * ldy;
        for (int j = 0; j < ncols; j++) yr[j] = accumulate ? yr[j] + c[i][j] : c[i][j];
    }
}

#define DEFINE_DTYPE(name, DT)                                                                                \
    static void small_##name(int R, int K, const float *x, size_t ldx, const char *w, size_t ldw, int rows,    \
                             float *y, size_t ldy) {                                                          \
        small_tile(DT, R, K, x, ldx, w, ldw, rows, y, ldy);                                                   \
    }                                                                                                         \
    static void pack_##name(const char *w, size_t ldw, int rows, int kc, float *panel) {                      \
        pack(DT, w, ldw, rows, kc, panel);                                                                    \
    }                                                                                                         \
    static const om_gemm_pieces pieces_##name = {MR, NR, KC, 4, 4, small_##name, pack_##name, micro};        \
    static void matmul_##name(int M, int K, const float *x, size_t ldx, const void *w, size_t ldw, float *y, \
                              size_t ldy, int n0, int n1) {                                                   \
        om_gemm_drive(&pieces_##name, om_dtype_size(DT), M, K, x, ldx, w, ldw, y, ldy, n0, n1);               \
    }

DEFINE_DTYPE(f32, OM_F32)
DEFINE_DTYPE(f16, OM_F16)
DEFINE_DTYPE(bf16, OM_BF16)

const om_cpu_kernels om_kernels_portable_set = {
    .name = "portable",
    .matmul = {[OM_F32] = matmul_f32, [OM_F16] = matmul_f16, [OM_BF16] = matmul_bf16},
    .dot_f32 = dot_f32,
    .axpy_f32 = axpy_f32,
    .sum_f32 = sum_f32,
};
