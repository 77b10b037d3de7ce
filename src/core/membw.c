/* Measures memory read bandwidth (see membw.h). Each thread first writes its own share of the
 * buffer, so that on a multi-socket machine the pages sit near the thread that reads them, as
 * a model's weights do after the first token; then all threads sum their shares at once. */
#include "core/membw.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cpu/cpu_kernels.h"
#include "core/error.h"

#define RUNS 5

typedef struct {
    float *buf;
    size_t n;
    const om_cpu_kernels *k;
    float sums[64];
} read_task;

static void touch_share(void *arg, int ith, int nth) {
    read_task *t = arg;
    long b, e;
    om_split_range((long)t->n, ith, nth, &b, &e);
    memset(t->buf + b, 0, (size_t)(e - b) * sizeof(float));
}

static void read_share(void *arg, int ith, int nth) {
    read_task *t = arg;
    long b, e;
    om_split_range((long)t->n, ith, nth, &b, &e);
    /* Kept, so that the reads cannot be dropped. */
    t->sums[ith & 63] += t->k->sum_f32(t->buf + b, (size_t)(e - b));
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double om_measure_read_bandwidth(om_threadpool *pool, size_t bytes) {
    read_task t = {0};
    t.n = bytes / sizeof(float);
    t.k = om_cpu_kernels_get();
    if (t.n == 0) {
        om_errorf("measuring read bandwidth: a buffer of %zu bytes is too small", bytes);
        return 0.0;
    }
    size_t alloc = (t.n * sizeof(float) + 63) / 64 * 64;
    t.buf = aligned_alloc(64, alloc);
    if (!t.buf) {
        om_errorf("measuring read bandwidth: cannot allocate %zu bytes", alloc);
        return 0.0;
    }
    om_threadpool_run(pool, touch_share, &t);
    double best = 0.0;
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_s();
        om_threadpool_run(pool, read_share, &t);
        double dt = now_s() - t0;
        double gbs = dt > 0 ? (double)(t.n * sizeof(float)) / dt * 1e-9 : 0.0;
        if (gbs > best) best = gbs;
    }
    free(t.buf);
    return best;
}
