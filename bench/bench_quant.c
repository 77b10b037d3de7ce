/* Benchmark of the quantized matmul kernels (src/core/cpu/quant_*.c), for docs/SPEED.md.
 *
 *   bench_quant [threads] [what] [reps]   what: all (default), gemv, prefill
 *   bench_quant shape FORMAT N K M [calls]
 *   OMINIX_CPU=portable|avx2|avx512 picks a lower kernel set, OMINIX_CPU_VNNI=0 the AVX-512
 *   kernels without VNNI.
 *
 * gemv: M = 1 (decode) in GB/s of weight bytes, at SmolLM2-135M's shapes (N x K = 576 x 1536,
 * 1536 x 576, and the 49152 x 576 Q8_0 output layer) and a 7B model's (4096 x 4096,
 * 11008 x 4096), for Q4_1, Q8_0, Q4_0, Q4_K and Q6_K (the K-quants need K a multiple of 256,
 * so they skip K = 576). Two figures: "hot", one matrix called over and over (it stays in
 * L2/L3 when it fits, as a small model's layers may between tokens), and "stream", enough
 * distinct copies (>= 512 MiB) to leave the last-level cache.
 * prefill: M = 128 and 512 in GFLOP/s (2 M N K per call).
 * Work is split over the pool by column ranges in blocks of 16, as the CPU backend does.
 * shape: one matmul on the calling thread alone, timed in that thread's CPU time (best of 7),
 * which other processes on a shared machine disturb far less than wall time; the same
 * measure as bench/bench_quant_ggml.c gives for ggml's kernels. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cpu/cpu_kernels.h"
#include "core/cpu/quant_kernels.h"
#include "core/tensor.h"
#include "core/threadpool.h"

typedef struct {
    const om_cpu_kernels *k;
    om_dtype dt;
    int M, N, K;
    const float *x;
    const char *w;
    float *y;
} mm_task;

static void mm_worker(void *arg, int ith, int nth) {
    mm_task *t = arg;
    long blocks = (t->N + 15) / 16, b0, b1;
    om_split_range(blocks, ith, nth, &b0, &b1);
    int n0 = (int)(b0 * 16), n1 = (int)(b1 * 16 < t->N ? b1 * 16 : t->N);
    if (n0 >= n1) return;
    t->k->matmul[t->dt](t->M, t->K, t->x, (size_t)t->K, t->w, om_row_bytes(t->dt, t->K), t->y, (size_t)t->N, n0,
                        n1);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_u64(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Byte offsets of each format's f16 scale fields, set to small values so that the sums stay
 * finite (the kernels' speed does not depend on the values). */
static void fill_blocks(om_dtype dt, char *p, size_t bytes) {
    for (size_t i = 0; i + 8 <= bytes; i += 8) {
        uint64_t v = next_u64();
        memcpy(p + i, &v, 8);
    }
    int off[2] = {-1, -1};
    switch (dt) {
    case OM_Q4_0: case OM_Q5_0: case OM_Q8_0: off[0] = 0; break;
    case OM_Q4_1: case OM_Q5_1: case OM_Q4_K: case OM_Q5_K: off[0] = 0, off[1] = 2; break;
    case OM_Q6_K: off[0] = 208; break;
    default: break;
    }
    size_t bb = om_dtype_block_bytes(dt);
    uint16_t h = om_f32_to_f16(0.01f);
    for (size_t b = 0; b + bb <= bytes; b += bb)
        for (int j = 0; j < 2; j++)
            if (off[j] >= 0) memcpy(p + b + (size_t)off[j], &h, 2);
}

static char *alloc_weights(om_dtype dt, size_t bytes) {
    char *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    fill_blocks(dt, p, bytes);
    return p;
}

/* Best-of-`reps` seconds per call, cycling over `copies` weight matrices in w. */
static double time_matmul(om_threadpool *pool, const om_cpu_kernels *k, om_dtype dt, int M, int N, int K,
                          const char *w, int copies, int calls, int reps) {
    float *x = malloc(sizeof(float) * (size_t)M * K), *y = malloc(sizeof(float) * (size_t)M * N);
    for (size_t i = 0; i < (size_t)M * K; i++) x[i] = (float)((int)(next_u64() % 2001) - 1000) * 1e-3f;
    size_t wbytes = (size_t)N * om_row_bytes(dt, K);
    mm_task t = {k, dt, M, N, K, x, w, y};
    double best = 1e30;
    int c = 0;
    om_threadpool_run(pool, mm_worker, &t); /* warm-up */
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        for (int i = 0; i < calls; i++) {
            t.w = w + (size_t)(c++ % copies) * wbytes;
            x[0] = (float)(i & 1); /* a new x each call, as in decode (see om_qact_reuse) */
            om_threadpool_run(pool, mm_worker, &t);
        }
        double s = (now_s() - t0) / calls;
        if (s < best) best = s;
    }
    free(x);
    free(y);
    return best;
}

static const om_dtype gemv_types[] = {OM_Q4_1, OM_Q8_0, OM_Q4_0, OM_Q4_K, OM_Q6_K};
#define N_GEMV_TYPES (int)(sizeof gemv_types / sizeof gemv_types[0])
static const struct {
    const char *label;
    int N, K;
} shapes[] = {
    {"SmolLM2 down 576x1536", 576, 1536},   {"SmolLM2 gate/up 1536x576", 1536, 576},
    {"SmolLM2 lm_head 49152x576", 49152, 576}, {"7B q/o 4096x4096", 4096, 4096},
    {"7B gate/up 11008x4096", 11008, 4096},
};
#define N_SHAPES (int)(sizeof shapes / sizeof shapes[0])

static void bench_gemv(om_threadpool *pool, const om_cpu_kernels *k, int reps) {
    printf("\nM = 1 (decode), GB/s of weights; hot: one matrix reused, stream: >= 512 MiB of copies\n");
    printf("%-28s", "shape");
    for (int t = 0; t < N_GEMV_TYPES; t++) printf(" %8s hot/stream  ", om_dtype_name(gemv_types[t]));
    printf("\n");
    for (int s = 0; s < N_SHAPES; s++) {
        printf("%-28s", shapes[s].label);
        for (int t = 0; t < N_GEMV_TYPES; t++) {
            om_dtype dt = gemv_types[t];
            int N = shapes[s].N, K = shapes[s].K;
            size_t rb = om_row_bytes(dt, K);
            /* SmolLM2's output layer is Q8_0; the K-quants need K % 256 == 0. */
            if (!rb || (N == 49152 && dt != OM_Q8_0) || !k->matmul[dt]) {
                printf(" %20s", "-");
                continue;
            }
            size_t wbytes = (size_t)N * rb;
            int copies = (int)((512u << 20) / wbytes) + 1;
            char *w = alloc_weights(dt, wbytes * (size_t)copies);
            int calls_hot = (int)(2e8 / (double)wbytes) + 1, calls_stream = copies;
            double hot = time_matmul(pool, k, dt, 1, N, K, w, 1, calls_hot, reps);
            double stream = time_matmul(pool, k, dt, 1, N, K, w, copies, calls_stream, reps > 3 ? 3 : reps);
            printf(" %6.1f / %5.1f GB/s", (double)wbytes / hot * 1e-9, (double)wbytes / stream * 1e-9);
            fflush(stdout);
            free(w);
        }
        printf("\n");
    }
}

static void bench_prefill(om_threadpool *pool, const om_cpu_kernels *k, int reps) {
    static const int Ms[] = {128, 512};
    printf("\nprefill, GFLOP/s (2 M N K per call)\n");
    printf("%-28s %5s", "shape", "M");
    for (int t = 0; t < N_GEMV_TYPES; t++) printf(" %8s", om_dtype_name(gemv_types[t]));
    printf("\n");
    for (int s = 0; s < N_SHAPES; s++) {
        if (shapes[s].N == 49152) continue;
        for (int mi = 0; mi < 2; mi++) {
            int M = Ms[mi], N = shapes[s].N, K = shapes[s].K;
            printf("%-28s %5d", shapes[s].label, M);
            for (int t = 0; t < N_GEMV_TYPES; t++) {
                om_dtype dt = gemv_types[t];
                size_t rb = om_row_bytes(dt, K);
                if (!rb || !k->matmul[dt]) {
                    printf(" %8s", "-");
                    continue;
                }
                char *w = alloc_weights(dt, (size_t)N * rb);
                double flop = 2.0 * M * N * (double)K;
                int calls = (int)(2e9 / flop) + 1;
                double sec = time_matmul(pool, k, dt, M, N, K, w, 1, calls, reps);
                printf(" %8.1f", flop / sec * 1e-9);
                fflush(stdout);
                free(w);
            }
            printf("\n");
        }
    }
}

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int bench_shape(const om_cpu_kernels *k, int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: bench_quant shape FORMAT N K M [calls]\n");
        return 2;
    }
    om_dtype dt = OM_DTYPE_COUNT;
    for (int t = 0; t < OM_DTYPE_COUNT; t++)
        if (!strcmp(om_dtype_name((om_dtype)t), argv[2])) dt = (om_dtype)t;
    int N = atoi(argv[3]), K = atoi(argv[4]), M = atoi(argv[5]);
    size_t rb = dt < OM_DTYPE_COUNT ? om_row_bytes(dt, K) : 0;
    if (!rb || N <= 0 || M <= 0 || !k->matmul[dt]) {
        fprintf(stderr, "no kernel for %s with K = %d\n", argv[2], K);
        return 2;
    }
    size_t wbytes = (size_t)N * rb;
    double flop = 2.0 * M * N * (double)K;
    int calls = argc > 6 ? atoi(argv[6]) : (int)(1e9 / flop) + 1;
    char *w = alloc_weights(dt, wbytes);
    float *x = malloc(sizeof(float) * (size_t)M * K), *y = malloc(sizeof(float) * (size_t)M * N);
    for (size_t i = 0; i < (size_t)M * K; i++) x[i] = (float)((int)(next_u64() % 2001) - 1000) * 1e-3f;
    k->matmul[dt](M, K, x, (size_t)K, w, rb, y, (size_t)N, 0, N);
    double best = 1e30;
    for (int r = 0; r < 7; r++) {
        double t0 = thread_cpu_s();
        for (int i = 0; i < calls; i++) {
            x[0] = (float)(i & 1); /* a new x each call, as in decode (see om_qact_reuse) */
            k->matmul[dt](M, K, x, (size_t)K, w, rb, y, (size_t)N, 0, N);
        }
        double sec = (thread_cpu_s() - t0) / calls;
        if (sec < best) best = sec;
    }
    printf("ominix %s N=%d K=%d M=%d: %.1f us, %.2f GB/s of weights, %.1f GFLOP/s\n", argv[2], N, K, M, best * 1e6,
           (double)wbytes / best * 1e-9, flop / best * 1e-9);
    free(w);
    free(x);
    free(y);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "shape")) {
        om_cpu_kernels k = *om_cpu_kernels_get();
        return bench_shape(&k, argc, argv);
    }
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    const char *what = argc > 2 ? argv[2] : "all";
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    om_threadpool *pool = om_threadpool_create(threads);
    if (!pool) return 1;
    /* The chosen set, with the quantized kernels of its level filled in (the same as
     * kernels.c does for the backend). */
    om_cpu_kernels k = *om_cpu_kernels_get();
    int level = !strcmp(k.name, "avx512") ? OM_QUANT_AVX512 : !strcmp(k.name, "avx2") ? OM_QUANT_AVX2 : OM_QUANT_PORTABLE;
    om_quant_kernels_fill(&k, level);
    printf("kernels: %s%s, threads: %d\n", k.name, level == OM_QUANT_AVX512 && om_quant_avx512_vnni() ? "+vnni" : "",
           om_threadpool_size(pool));
    if (!strcmp(what, "all") || !strcmp(what, "gemv")) bench_gemv(pool, &k, reps);
    if (!strcmp(what, "all") || !strcmp(what, "prefill")) bench_prefill(pool, &k, reps);
    om_threadpool_free(pool);
    return 0;
}
