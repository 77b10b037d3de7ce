/* Benchmark of the CPU matmul kernels, for docs/SPEED.md.
 *
 *   bench_kernels [threads] [what]     what: all (default), pool, bw, gemv, small, prefill
 *   OMINIX_CPU=portable|avx2|avx512 picks a lower kernel set.
 *
 * Prints the threadpool's dispatch latency, the machine's read bandwidth (membw.c), the GEMV
 * (M = 1) rate in GB/s of weights for Qwen3-0.6B's shapes, the time of small-M matmuls (where
 * the small-tile and packed paths meet), and GFLOP/s of prefill-sized matmuls. Work is split
 * over the pool by column ranges in blocks of 16, as the CPU backend does. Decode reads each
 * weight once per token and the whole model does not fit in the cache, so the GEMV runs over
 * enough distinct copies of the matrix to exceed the last-level cache: the figure is what the
 * weights cost from DRAM. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cpu/cpu_kernels.h"
#include "core/membw.h"
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
    size_t ldw = (size_t)t->K * om_dtype_size(t->dt);
    t->k->matmul[t->dt](t->M, t->K, t->x, (size_t)t->K, t->w, ldw, t->y, (size_t)t->N, n0, n1);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *alloc_filled(size_t bytes) {
    unsigned char *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    /* Small values in every dtype: bytes 0x3c3c.. are 1.06 (f16), 0.0115 (bf16), 0.0115 (f32). */
    memset(p, 0x3c, bytes);
    return p;
}

/* Best-of-`reps` seconds per call of an M x N x K matmul, cycling over `copies` distinct weight
 * matrices in `w`. */
static double time_matmul(om_threadpool *pool, const om_cpu_kernels *k, om_dtype dt, int M, int N, int K,
                          const char *w, int copies, int calls, int reps) {
    float *x = alloc_filled(sizeof(float) * (size_t)M * K);
    for (size_t i = 0; i < (size_t)M * K; i++) x[i] = 0.001f * (float)(i % 97);
    float *y = alloc_filled(sizeof(float) * (size_t)M * N);
    size_t wbytes = (size_t)N * K * om_dtype_size(dt);
    mm_task t = {k, dt, M, N, K, x, w, y};
    double best = 1e30;
    int c = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        for (int i = 0; i < calls; i++) {
            t.w = w + (size_t)(c++ % copies) * wbytes;
            om_threadpool_run(pool, mm_worker, &t);
        }
        double dt_s = (now_s() - t0) / calls;
        if (dt_s < best) best = dt_s;
    }
    free(x);
    free(y);
    return best;
}

static void empty_task(void *arg, int ith, int nth) { (void)arg, (void)ith, (void)nth; }

/* Microseconds per om_threadpool_run of an empty task: back to back (workers spinning), and
 * after 5 ms of idleness (workers asleep on the futex). */
static void bench_pool(om_threadpool *pool) {
    const int n = 200000;
    double t0 = now_s();
    for (int i = 0; i < n; i++) om_threadpool_run(pool, empty_task, NULL);
    double hot = (now_s() - t0) / n;
    double cold = 0;
    const int m = 50;
    for (int i = 0; i < m; i++) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
        t0 = now_s();
        om_threadpool_run(pool, empty_task, NULL);
        cold += now_s() - t0;
    }
    printf("threadpool run, empty task: %.2f us back to back, %.1f us after 5 ms idle\n", hot * 1e6, cold / m * 1e6);
}

static const char *dt_name(om_dtype dt) { return dt == OM_F32 ? "f32" : dt == OM_F16 ? "f16" : "bf16"; }

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    const char *what = argc > 2 ? argv[2] : "all";
    int all = !strcmp(what, "all");
    om_threadpool *pool = om_threadpool_create(threads);
    if (!pool) return 1;
    const om_cpu_kernels *k = om_cpu_kernels_get();
    printf("kernels %s, %d threads\n", k->name, om_threadpool_size(pool));

    if (all || !strcmp(what, "pool")) bench_pool(pool);

    double bw = 0;
    if (all || !strcmp(what, "bw") || !strcmp(what, "gemv")) {
        bw = om_measure_read_bandwidth(pool, (size_t)1 << 30);
        printf("read bandwidth (1 GiB buffer)          %7.2f GB/s\n", bw);
    }

    /* A region of ~1.2 GiB holds the cold weight copies. */
    const size_t region = (size_t)1200 << 20;
    if (all || !strcmp(what, "gemv")) {
        static const int shapes[][2] = {{3072, 1024}, {1024, 3072}, {151936, 1024}};
        for (int dt = 0; dt < OM_FLOAT_DTYPES; dt++) {
            if (dt == OM_F32 && !all) continue;
            for (int s = 0; s < 3; s++) {
                int N = shapes[s][0], K = shapes[s][1];
                size_t wbytes = (size_t)N * K * om_dtype_size((om_dtype)dt);
                int copies = (int)(region / wbytes);
                if (copies < 2) copies = 2;
                char *w = alloc_filled(wbytes * (size_t)copies);
                int calls = copies < 400 ? copies : 400;
                double sec = time_matmul(pool, k, (om_dtype)dt, 1, N, K, w, copies, calls, 3);
                double gbs = (double)wbytes / sec * 1e-9;
                printf("gemv %-4s N=%6d K=%4d  %8.1f us  %6.2f GB/s", dt_name((om_dtype)dt), N, K, sec * 1e6, gbs);
                if (bw > 0) printf("  (%3.0f%% of read bandwidth)", 100.0 * gbs / bw);
                printf("\n");
                free(w);
            }
        }
    }

    if (all || !strcmp(what, "small")) {
        /* Cold weights, as in decode with a few sequences or a speculative draft. */
        int N = 3072, K = 1024;
        size_t wbytes = (size_t)N * K * 2;
        int copies = (int)(region / wbytes);
        char *w = alloc_filled(wbytes * (size_t)copies);
        static const int Ms[] = {1, 2, 3, 4, 6, 8, 9, 12, 16, 24, 32};
        for (size_t i = 0; i < sizeof Ms / sizeof *Ms; i++) {
            double sec = time_matmul(pool, k, OM_BF16, Ms[i], N, K, w, copies, 100, 3);
            printf("small bf16 M=%2d N=%d K=%d  %8.1f us  %6.2f GB/s  %6.1f GFLOP/s\n", Ms[i], N, K, sec * 1e6,
                   (double)wbytes / sec * 1e-9, 2.0 * Ms[i] * N * K / sec * 1e-9);
        }
        free(w);
    }

    if (all || !strcmp(what, "prefill")) {
        static const int shapes[][3] = {{512, 3072, 1024}, {512, 1024, 3072}, {128, 3072, 1024}, {64, 3072, 1024}};
        for (int dt = 0; dt < OM_FLOAT_DTYPES; dt++) {
            for (int s = 0; s < 4; s++) {
                int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                size_t wbytes = (size_t)N * K * om_dtype_size((om_dtype)dt);
                char *w = alloc_filled(wbytes);
                double sec = time_matmul(pool, k, (om_dtype)dt, M, N, K, w, 1, 3, 3);
                printf("prefill %-4s M=%3d N=%4d K=%4d  %8.2f ms  %6.1f GFLOP/s\n", dt_name((om_dtype)dt), M, N, K,
                       sec * 1e3, 2.0 * M * N * K / sec * 1e-9);
                free(w);
            }
        }
    }
    om_threadpool_free(pool);
    return 0;
}
