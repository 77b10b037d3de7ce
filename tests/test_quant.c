/* Tests of the GGUF block formats: dequantization and the quantized matmul kernels.
 *
 * 1. om_dequantize against tests/data/quant_reference.{bin,json}, written by
 *    tools/make_quant_reference.py with the `gguf` package's numpy implementation of ggml's
 *    formats (random blocks for all ten formats, gguf-quantized Gaussian rows for the five it
 *    can quantize). Required: bit-identical floats (both sides compute each value with the
 *    same float32 operations in the same order, so any difference is a layout bug).
 *
 * 2. Every quantized matmul of every kernel set this CPU runs (portable, avx2, avx512 with and
 *    without VNNI) against a double-precision dot product of x with the dequantized weights.
 *    The kernels quantize each activation block in two 8-bit levels (quant_internal.h):
 *    x ~ d1 * (q + q2 / 256) with d1 = max|x| / 127, so each x_k is off by at most d1 / 512,
 *    or d1 / 256 where the remainder rounds to 128 and is clamped to 127; the integer dot
 *    products are exact and the f32 scaling adds ~1e-7 relative per block. Bound checked for
 *    every output:
 *        |y - ref| <= sum_k |w_k| * d1(k) / 256 * 1.001 + 1e-5 * sum_k |w_k x_k|
 *    Typical error is far below that bound, since the rounding errors e_k of different k are
 *    independent: sum_k w_k e_k has variance sum_k w_k^2 (d1 / 256)^2 / 12, so relative to
 *    sqrt(sum_k w_k^2 x_k^2) (the size of a dot product of uncorrelated terms) the RMS error is
 *    about (max|x| / 127 / 256) / sqrt(12) / rms(x): 2-3e-5 for Gaussian x. (Relative to |y|
 *    itself it can be larger where y is small by cancellation, e.g. with the large minimums of
 *    random Q4_1/Q4_K blocks.) Each case must stay under 1e-4. For comparison, one 8-bit level
 *    (ggml's Q8_0/Q8_1/Q8_K activations) gives 0.5-0.8% by the same measure.
 *    Shapes cover the tile edges: M of 1 (decode) up to past the tile height, K with an odd
 *    number of blocks, column ranges starting past 0 and ending mid-tile, weight rows at odd
 *    addresses with padded strides, ldx/ldy larger than the row, and an M large enough for the
 *    driver to split the rows of x into chunks. Blocks of the largest codes and scales against
 *    constant x drive the integer sums to their int32 bounds.
 *
 * 3. The per-thread reuse of a quantized x (om_qact_reuse): x changed in place at the same
 *    address, or read with another shape, must be quantized again. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu/cpu_kernels.h"
#include "core/cpu/quant_kernels.h"
#include "core/quant.h"
#include "core/tensor.h"
#include "test_util.h"

static const struct {
    const char *name;
    om_dtype dt;
    int f16_fields[2]; /* byte offsets of the block's f16 scale fields; -1: none */
} formats[] = {
    {"Q4_0", OM_Q4_0, {0, -1}},   {"Q4_1", OM_Q4_1, {0, 2}},    {"Q5_0", OM_Q5_0, {0, -1}},
    {"Q5_1", OM_Q5_1, {0, 2}},    {"Q8_0", OM_Q8_0, {0, -1}},   {"Q2_K", OM_Q2_K, {80, 82}},
    {"Q3_K", OM_Q3_K, {108, -1}}, {"Q4_K", OM_Q4_K, {0, 2}},    {"Q5_K", OM_Q5_K, {0, 2}},
    {"Q6_K", OM_Q6_K, {208, -1}},
};
#define N_FORMATS (int)(sizeof formats / sizeof formats[0])

/* ---- 1. dequantization against gguf ---- */

static int64_t ulp_distance(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    if (ia < 0) ia = INT32_MIN - ia;
    if (ib < 0) ib = INT32_MIN - ib;
    return ia > ib ? (int64_t)ia - ib : (int64_t)ib - ia;
}

static void test_dequantize_reference(void) {
    size_t json_len, bin_len;
    char *json = om_test_read_file(OM_TEST_DATA_DIR "/quant_reference.json", &json_len);
    char *bin = om_test_read_file(OM_TEST_DATA_DIR "/quant_reference.bin", &bin_len);
    CHECK(json && bin);
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    CHECK(root);
    const cJSON *fmts = cJSON_GetObjectItem(root, "formats");
    int n_seen = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, fmts) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(f, "name"));
        int fi = -1;
        for (int i = 0; i < N_FORMATS; i++)
            if (name && !strcmp(name, formats[i].name)) fi = i;
        CHECKF(fi >= 0, "unknown format %s", name ? name : "?");
        if (fi < 0) continue;
        om_dtype dt = formats[fi].dt;
        CHECK(cJSON_GetObjectItem(f, "block_size")->valueint == om_dtype_block_size(dt));
        CHECK((size_t)cJSON_GetObjectItem(f, "block_bytes")->valueint == om_dtype_block_bytes(dt));
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(f, "cases")) {
            size_t nb = (size_t)cJSON_GetObjectItem(c, "n_blocks")->valueint;
            size_t bo = (size_t)cJSON_GetObjectItem(c, "bytes_offset")->valueint;
            size_t vo = (size_t)cJSON_GetObjectItem(c, "values_offset")->valueint;
            size_t n = nb * (size_t)om_dtype_block_size(dt);
            CHECK(bo + nb * om_dtype_block_bytes(dt) <= bin_len && vo + n * 4 <= bin_len);
            if (!(bo + nb * om_dtype_block_bytes(dt) <= bin_len && vo + n * 4 <= bin_len)) continue;
            float *got = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
            om_dequantize(dt, bin + bo, got, n);
            memcpy(want, bin + vo, n * sizeof(float));
            size_t bad = 0;
            int64_t worst = 0;
            for (size_t i = 0; i < n; i++) {
                int64_t u = ulp_distance(got[i], want[i]);
                if (u > worst) worst = u;
                if (memcmp(&got[i], &want[i], 4)) {
                    if (!bad)
                        fprintf(stderr, "  %s %s: first difference at %zu: %.9g vs gguf %.9g\n", name,
                                cJSON_GetStringValue(cJSON_GetObjectItem(c, "kind")), i, got[i], want[i]);
                    bad++;
                }
            }
            CHECKF(bad == 0, "%s %s: %zu of %zu values differ from gguf (worst %lld ulp)", name,
                   cJSON_GetStringValue(cJSON_GetObjectItem(c, "kind")), bad, n, (long long)worst);
            free(got);
            free(want);
        }
        n_seen++;
    }
    CHECKF(n_seen == N_FORMATS, "reference holds %d of %d formats", n_seen, N_FORMATS);
    cJSON_Delete(root);
    free(json);
    free(bin);
}

/* ---- 2. quantized matmul kernels ---- */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t next_u64(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static float frand(void) { return (float)((next_u64() >> 40) * (1.0 / (1 << 23)) - 1.0); } /* [-1, 1) */

static float gauss(void) { /* Box-Muller: activations shaped like real hidden states */
    double u = ((next_u64() >> 11) + 0.5) * (1.0 / 9007199254740992.0), v = (next_u64() >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* Random valid blocks: random bytes, with the f16 scale fields set to moderate values. With
 * `extreme`, every other byte is fill (0x00 or 0xff: the largest codes, scales and minimums;
 * Q6_K's int8 scales at -128 or -1), which drives the integer sums to their bounds. */
static void random_blocks(int fi, uint8_t *p, size_t n_blocks, int extreme, uint8_t fill) {
    size_t bb = om_dtype_block_bytes(formats[fi].dt);
    for (size_t i = 0; i < n_blocks * bb; i++) p[i] = extreme ? fill : (uint8_t)(next_u64() >> 56);
    if (extreme && formats[fi].dt == OM_Q6_K)
        for (size_t b = 0; b < n_blocks; b++) memset(p + b * bb + 192, fill ? 0xff : 0x80, 16);
    for (size_t b = 0; b < n_blocks; b++)
        for (int j = 0; j < 2; j++) {
            int off = formats[fi].f16_fields[j];
            if (off < 0) continue;
            uint16_t h = om_f32_to_f16(frand() * 0.05f);
            memcpy(p + b * bb + (size_t)off, &h, 2);
        }
}

typedef struct {
    const char *label;
    om_cpu_kernels ks;
} kernel_set;

/* One case: returns 1 if every output is within its bound. */
/* rel_out: the largest relative RMS error, sqrt(sum err^2 / sum_outputs sum_k (w_k x_k)^2). */
static int check_case_x(const kernel_set *set, int fi, int M, int K, int N, int n0, int n1, int misalign,
                        double *rel_out, int extreme) {
    om_dtype dt = formats[fi].dt;
    om_matmul_fn fn = set->ks.matmul[dt];
    if (!fn) return 1;
    size_t rb = om_row_bytes(dt, K), ldw = rb + (misalign ? 3 : 0);
    size_t ldx = (size_t)K + (misalign ? 5 : 0), ldy = (size_t)N + (misalign ? 3 : 0);
    int bs = om_dtype_block_size(dt) == 32 ? 32 : 256;
    uint8_t *wbuf = malloc(ldw * (size_t)N + 8), *w = wbuf + (misalign ? 1 : 0);
    float *wf = malloc(sizeof(float) * (size_t)N * (size_t)K);
    float *x = malloc(sizeof(float) * ((size_t)M * ldx + 1));
    float *y = malloc(sizeof(float) * (size_t)M * ldy);
    for (int n = 0; n < N; n++) {
        random_blocks(fi, w + (size_t)n * ldw, rb / om_dtype_block_bytes(dt), extreme, n & 1 ? 0xff : 0x00);
        om_dequantize(dt, w + (size_t)n * ldw, wf + (size_t)n * (size_t)K, (size_t)K);
    }
    for (size_t i = 0; i < (size_t)M * ldx; i++) x[i] = extreme ? (float)(1 - 2 * (int)((i / ldx) & 1)) : gauss();
    const float sentinel = -12345.0f;
    for (size_t i = 0; i < (size_t)M * ldy; i++) y[i] = sentinel;
    fn(M, K, x, ldx, w, ldw, y, ldy, n0, n1);
    int ok = 1;
    double err2 = 0, ref2 = 0;
    for (int m = 0; m < M && ok; m++) {
        const float *xr = x + (size_t)m * ldx;
        for (int n = 0; n < (int)ldy; n++) {
            float got = y[(size_t)m * ldy + (size_t)n];
            if (n < n0 || n >= n1) {
                if (got != sentinel) {
                    fprintf(stderr, "  %s %s M=%d K=%d: wrote column %d outside [%d, %d)\n", set->label,
                            formats[fi].name, M, K, n, n0, n1);
                    ok = 0;
                    break;
                }
                continue;
            }
            const float *wr = wf + (size_t)n * (size_t)K;
            double ref = 0, bound = 0, mag = 0, spread = 0;
            for (int b = 0; b < K / bs; b++) {
                float amax = 0;
                for (int i = 0; i < bs; i++) amax = fmaxf(amax, fabsf(xr[b * bs + i]));
                double dh = amax / 127.0 / 256.0;
                for (int i = 0; i < bs; i++) {
                    int k = b * bs + i;
                    ref += (double)xr[k] * wr[k];
                    mag += fabs((double)xr[k] * wr[k]);
                    spread += (double)xr[k] * wr[k] * xr[k] * wr[k];
                    bound += fabs((double)wr[k]) * dh;
                }
            }
            bound = bound * 1.001 + 1e-5 * mag + 1e-30;
            double e = fabs((double)got - ref);
            err2 += e * e;
            ref2 += spread;
            if (!(e <= bound)) {
                fprintf(stderr, "  %s %s M=%d K=%d N=%d [%d,%d) mis=%d: y[%d][%d] = %.7g, want %.7g (bound %.3g)\n",
                        set->label, formats[fi].name, M, K, N, n0, n1, misalign, m, n, got, ref, bound);
                ok = 0;
                break;
            }
        }
    }
    double rel = ref2 > 0 ? sqrt(err2 / ref2) : 0;
    if (extreme) rel = 0; /* constant x: the rounding errors are not independent */
    if (rel_out && rel > *rel_out) *rel_out = rel;
    if (ok && rel > 1e-4) {
        fprintf(stderr, "  %s %s M=%d K=%d: relative RMS error %.2e\n", set->label, formats[fi].name, M, K, rel);
        ok = 0;
    }
    free(wbuf);
    free(wf);
    free(x);
    free(y);
    return ok;
}

static int check_case(const kernel_set *set, int fi, int M, int K, int N, int n0, int n1, int misalign, double *rel_out) {
    return check_case_x(set, fi, M, K, N, n0, n1, misalign, rel_out, 0);
}

static void test_kernels(const kernel_set *set) {
    static const int Ms[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 17};
    for (int fi = 0; fi < N_FORMATS; fi++) {
        om_dtype dt = formats[fi].dt;
        if (!set->ks.matmul[dt]) continue;
        int big = om_dtype_block_size(dt) == 256;
        const int Ks32[] = {32, 96, 224, 576, 1024}, Ks256[] = {256, 768, 1536};
        const int *Ks = big ? Ks256 : Ks32;
        int nK = big ? 3 : 5;
        int cases = 0, failed = 0;
        double worst_rel = 0;
        for (int mi = 0; mi < (int)(sizeof Ms / sizeof Ms[0]); mi++)
            for (int ki = 0; ki < nK; ki++) {
                int M = Ms[mi], K = Ks[ki];
                int N = 37, n0 = (mi + ki) % 3 == 0 ? 0 : 5, n1 = (mi + ki) % 2 ? N : N - 6;
                cases++;
                if (!check_case(set, fi, M, K, N, n0, n1, (mi + ki) & 1, &worst_rel)) failed++;
            }
        CHECKF(failed == 0, "%s %s: %d of %d cases out of bounds", set->label, formats[fi].name, failed, cases);
        fprintf(stderr, "  %-16s %-5s %d cases, worst relative RMS error %.2e\n", set->label, formats[fi].name, cases,
                worst_rel);
    }
    /* The largest codes and scales with constant x: the integer sums at their bounds. */
    for (int fi = 0; fi < N_FORMATS; fi++) {
        if (!set->ks.matmul[formats[fi].dt]) continue;
        int K = om_dtype_block_size(formats[fi].dt) == 256 ? 1024 : 256;
        CHECKF(check_case_x(set, fi, 5, K, 8, 0, 8, 0, NULL, 1), "%s %s: extreme blocks", set->label,
               formats[fi].name);
    }
    /* Rows of x split into chunks (512 KiB of int8 activations): M * K beyond that. */
    double rel = 0;
    CHECK(check_case(set, 4 /* Q8_0 */, 300, 4096, 9, 0, 9, 1, &rel));
    CHECK(check_case(set, 7 /* Q4_K */, 130, 8192, 5, 1, 5, 0, &rel));
}

/* The kernels keep the last small x a thread quantized (om_qact_reuse): a changed value at the
 * same address, or the same address with another shape, must be quantized again. */
static void test_reuse(const kernel_set *set) {
    om_dtype dt = OM_Q4_1;
    const int K = 256, N = 8;
    size_t rb = om_row_bytes(dt, K);
    uint8_t *w = malloc(rb * N);
    float *wf = malloc(sizeof(float) * K * N), *x = malloc(sizeof(float) * 2 * K), y[2 * N];
    random_blocks(1, w, rb * N / om_dtype_block_bytes(dt), 0, 0);
    om_dequantize(dt, w, wf, (size_t)K * N);
    for (int i = 0; i < 2 * K; i++) x[i] = gauss();
    int bad = 0;
    for (int step = 0; step < 6; step++) {
        /* steps: first call, same x again, one value changed, ldx changed (2 rows), M back to 1,
         * the other half of the tile range */
        int M = step == 3 ? 2 : 1, n0 = step == 5 ? 4 : 0;
        if (step == 2) x[K - 1] = -x[K - 1] + 0.5f;
        set->ks.matmul[dt](M, K, x, (size_t)K, w, rb, y, N, n0, N);
        for (int m = 0; m < M; m++)
            for (int n = n0; n < N; n++) {
                double ref = 0, mag = 0;
                for (int k = 0; k < K; k++) {
                    ref += (double)x[m * K + k] * wf[n * K + k];
                    mag += fabs((double)x[m * K + k] * wf[n * K + k]);
                }
                if (fabs(y[m * N + n] - ref) > 1e-3 * mag) bad++;
            }
    }
    CHECKF(bad == 0, "%s: %d outputs wrong after x changed in place", set->label, bad);
    free(w);
    free(wf);
    free(x);
}

int main(void) {
    test_dequantize_reference();

    kernel_set sets[4];
    int n_sets = 0;
    const om_cpu_kernels *base[3] = {om_cpu_kernels_portable(), om_cpu_kernels_avx2(), om_cpu_kernels_avx512()};
    static const char *labels[] = {"portable", "avx2", "avx512"};
    for (int level = 0; level < 3; level++) {
        if (!base[level]) continue;
        for (int vnni = 1; vnni >= 0; vnni--) {
            if (vnni == 0 && level < 2) continue;
            if (vnni == 1 && level == 2 && (setenv("OMINIX_CPU_VNNI", "1", 1), !om_quant_avx512_vnni())) continue;
            setenv("OMINIX_CPU_VNNI", vnni ? "1" : "0", 1);
            kernel_set *s = &sets[n_sets++];
            s->ks = *base[level];
            om_quant_kernels_fill(&s->ks, level);
            s->label = level < 2 ? labels[level] : om_quant_avx512_vnni() ? "avx512-vnni" : "avx512";
        }
    }
    unsetenv("OMINIX_CPU_VNNI");
    for (int i = 0; i < n_sets; i++) {
        test_kernels(&sets[i]);
        test_reuse(&sets[i]);
    }
    /* The quantized formats with a kernel in every set: at least the five the project needs. */
    static const om_dtype needed[] = {OM_Q8_0, OM_Q4_0, OM_Q4_1, OM_Q4_K, OM_Q6_K};
    for (int i = 0; i < n_sets; i++)
        for (int j = 0; j < 5; j++) CHECKF(sets[i].ks.matmul[needed[j]], "%s lacks %s", sets[i].label, om_dtype_name(needed[j]));
    return om_test_finish();
}
