/* The counterpart of `bench_quant shape` for ggml's (llama.cpp's) CPU kernels: one
 * y = x . w^T of a quantized weight, single-threaded, timed in the thread's CPU time (best of
 * 7). Not built by CMake (ominix does not depend on llama.cpp); against a llama.cpp build made
 * for the same CPU (-DGGML_NATIVE=ON, e.g. the one llama-cpp-python vendors):
 *
 *   L=path/to/llama.cpp
 *   cc -O2 -std=c11 -I$L/ggml/include bench/bench_quant_ggml.c -L$L/build/bin -lggml -lggml-base \
 *      -lggml-cpu -Wl,-rpath,$L/build/bin -o bench_quant_ggml
 *   ./bench_quant_ggml Q4_1 1536 576 1        # FORMAT N K M [calls]
 *
 * Weights are random bytes with small f16 scales, as in bench_quant; ggml quantizes the
 * activations itself (Q8_0/Q8_1/Q8_K, one 8-bit level) as part of the timed call. ggml's
 * graph runs on the calling thread (n_threads = 1), so its CPU time is the whole cost. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ggml-cpu.h"
#include "ggml.h"

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s FORMAT N K M [calls]\n", argv[0]);
        return 2;
    }
    static const struct {
        const char *name;
        enum ggml_type type;
        int f16_at[2]; /* byte offsets of the block's f16 scale fields */
    } types[] = {
        {"Q4_0", GGML_TYPE_Q4_0, {0, -1}}, {"Q4_1", GGML_TYPE_Q4_1, {0, 2}}, {"Q5_0", GGML_TYPE_Q5_0, {0, -1}},
        {"Q5_1", GGML_TYPE_Q5_1, {0, 2}},  {"Q8_0", GGML_TYPE_Q8_0, {0, -1}}, {"Q4_K", GGML_TYPE_Q4_K, {0, 2}},
        {"Q5_K", GGML_TYPE_Q5_K, {0, 2}},  {"Q6_K", GGML_TYPE_Q6_K, {208, -1}},
    };
    int ti = -1;
    for (int i = 0; i < (int)(sizeof types / sizeof types[0]); i++)
        if (!strcmp(argv[1], types[i].name)) ti = i;
    if (ti < 0) {
        fprintf(stderr, "unknown format %s\n", argv[1]);
        return 2;
    }
    int N = atoi(argv[2]), K = atoi(argv[3]), M = atoi(argv[4]);
    double flop = 2.0 * M * N * (double)K;
    int calls = argc > 5 ? atoi(argv[5]) : (int)(1e9 / flop) + 1;
    enum ggml_type t = types[ti].type;
    size_t rb = ggml_row_size(t, K);
    struct ggml_init_params params = {(size_t)N * rb + (size_t)M * K * 12 + (size_t)M * N * 4 + (256u << 20), NULL, false};
    struct ggml_context *ctx = ggml_init(params);
    struct ggml_tensor *w = ggml_new_tensor_2d(ctx, t, K, N), *x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, K, M);
    unsigned char *wd = w->data;
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < (size_t)N * rb; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        wd[i] = (unsigned char)(s >> 56);
    }
    size_t bb = ggml_type_size(t);
    ggml_fp16_t h = ggml_fp32_to_fp16(0.01f);
    for (size_t b = 0; b + bb <= (size_t)N * rb; b += bb)
        for (int j = 0; j < 2; j++)
            if (types[ti].f16_at[j] >= 0) memcpy(wd + b + types[ti].f16_at[j], &h, 2);
    float *xd = x->data;
    for (size_t i = 0; i < (size_t)M * K; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        xd[i] = (float)((int)(s % 2001) - 1000) * 1e-3f;
    }
    struct ggml_tensor *y = ggml_mul_mat(ctx, w, x);
    struct ggml_cgraph *gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, y);
    ggml_graph_compute_with_ctx(ctx, gf, 1);
    double best = 1e30;
    for (int r = 0; r < 7; r++) {
        double t0 = thread_cpu_s();
        for (int i = 0; i < calls; i++) ggml_graph_compute_with_ctx(ctx, gf, 1);
        double sec = (thread_cpu_s() - t0) / calls;
        if (sec < best) best = sec;
    }
    printf("ggml   %s N=%d K=%d M=%d: %.1f us, %.2f GB/s of weights, %.1f GFLOP/s\n", argv[1], N, K, M, best * 1e6,
           (double)N * rb / best * 1e-9, flop / best * 1e-9);
    ggml_free(ctx);
    return 0;
}
