/* Tests of the CPU kernels and the threadpool.
 *
 * Every kernel set this CPU supports (portable, avx2, avx512) is compared with a naive
 * double-precision reference, for all weight dtypes, over shapes that hit every path: the
 * small-M tiles and the packed path, K tails of every size, column ranges that start past 0
 * and end mid-vector, weight rows at odd byte addresses and strides, and ldx/ldy larger than
 * the row. Tolerance: |y - ref| <= 1e-5 * sum_k |x_k * w_k| (f32 accumulation of K products
 * in any order errs by at most about K * 6e-8 of that sum, and much less in practice).
 * The threadpool must call every ith exactly once per run, across many runs, whether its
 * workers spin or sleep between runs. */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cpu/cpu_kernels.h"
#include "core/tensor.h"
#include "core/threadpool.h"
#include "test_util.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static float frand(void) { /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / (1 << 23)) - 1.0);
}

/* Stores v in dtype dt at p (any alignment); returns the value actually stored, as f32. */
static float store_w(om_dtype dt, char *p, float v) {
    if (dt == OM_F32) {
        memcpy(p, &v, 4);
        return v;
    }
    uint16_t h = dt == OM_BF16 ? om_f32_to_bf16(v) : om_f32_to_f16(v);
    memcpy(p, &h, 2);
    return dt == OM_BF16 ? om_bf16_to_f32(h) : om_f16_to_f32(h);
}

static const char *dtype_names[] = {"f32", "f16", "bf16"};

/* One matmul case; returns the number of mismatching outputs. */
static int check_matmul(const om_cpu_kernels *ks, om_dtype dt, int M, int K, int N, int n0, int n1, int misalign) {
    size_t sz = om_dtype_size(dt);
    size_t ldw = (size_t)K * sz + (misalign ? 6 : 0);
    size_t ldx = (size_t)K + (misalign ? 3 : 0);
    size_t ldy = (size_t)N + (misalign ? 5 : 0);
    char *wbuf = malloc(ldw * (size_t)N + 16);
    char *w = wbuf + (misalign ? 1 : 0);
    float *wf = malloc(sizeof(float) * (size_t)N * (size_t)K); /* the stored weights, as f32 */
    float *x = malloc(sizeof(float) * ((size_t)M * ldx + 1));
    float *y = malloc(sizeof(float) * (size_t)M * ldy);
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) wf[(size_t)n * K + k] = store_w(dt, w + (size_t)n * ldw + (size_t)k * sz, frand());
    for (size_t i = 0; i < (size_t)M * ldx; i++) x[i] = frand();
    const float sentinel = -12345.0f;
    for (size_t i = 0; i < (size_t)M * ldy; i++) y[i] = sentinel;

    ks->matmul[dt](M, K, x, ldx, w, ldw, y, ldy, n0, n1);

    int bad = 0;
    for (int m = 0; m < M; m++) {
        for (int n = 0; n < (int)ldy; n++) {
            float got = y[(size_t)m * ldy + n];
            if (n < n0 || n >= n1) {
                if (got != sentinel) bad++;
                continue;
            }
            double ref = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double p = (double)x[(size_t)m * ldx + k] * wf[(size_t)n * K + k];
                ref += p;
                mag += fabs(p);
            }
            if (!(fabs(got - ref) <= 1e-5 * mag + 1e-30)) {
                if (bad < 3)
                    fprintf(stderr, "  %s %s M=%d K=%d n=[%d,%d) misalign=%d: y[%d,%d] = %.8g, want %.8g\n", ks->name,
                            dtype_names[dt], M, K, n0, n1, misalign, m, n, got, ref);
                bad++;
            }
        }
    }
    free(wbuf);
    free(wf);
    free(x);
    free(y);
    return bad;
}

static void test_matmul(const om_cpu_kernels *ks) {
    static const int Ms[] = {1, 2, 3, 5, 8, 17, 40};
    static const int Ks[] = {1, 7, 16, 33, 64, 100, 1024};
    /* (N, n0, n1): a range inside one vector, one crossing several panels, a full matrix. */
    static const int ranges[][3] = {{13, 3, 11}, {75, 5, 74}, {36, 0, 36}};
    for (int dt = 0; dt < OM_FLOAT_DTYPES; dt++) {
        int cases = 0, failed = 0;
        for (size_t mi = 0; mi < sizeof Ms / sizeof *Ms; mi++)
            for (size_t ki = 0; ki < sizeof Ks / sizeof *Ks; ki++)
                for (size_t ri = 0; ri < sizeof ranges / sizeof *ranges; ri++)
                    for (int mis = 0; mis < 2; mis++) {
                        int bad = check_matmul(ks, (om_dtype)dt, Ms[mi], Ks[ki], ranges[ri][0], ranges[ri][1],
                                               ranges[ri][2], mis);
                        cases++;
                        failed += bad != 0;
                    }
        /* A K longer than every k block, with M on both sides of the small/packed switch. */
        for (int M = 1; M <= 33; M += 4) {
            cases++;
            failed += check_matmul(ks, (om_dtype)dt, M, 3000, 70, 2, 69, 1) != 0;
        }
        /* Large enough for the packed path's column blocks and row chunks to have several. */
        cases += 2;
        failed += check_matmul(ks, (om_dtype)dt, 200, 300, 700, 3, 697, 1) != 0;
        failed += check_matmul(ks, (om_dtype)dt, 800, 300, 40, 1, 39, 0) != 0;
        CHECKF(failed == 0, "%s matmul %s: %d of %d cases wrong", ks->name, dtype_names[dt], failed, cases);
    }
}

static void test_dot_axpy(const om_cpu_kernels *ks) {
    static const int ns[] = {0, 1, 7, 15, 16, 17, 33, 100, 1000};
    float a[1002], b[1002], y[1002], y0[1002];
    for (int i = 0; i < 1002; i++) a[i] = frand(), b[i] = frand(), y0[i] = frand();
    for (size_t t = 0; t < sizeof ns / sizeof *ns; t++) {
        int n = ns[t];
        /* a + 1: not 64-byte aligned. */
        double ref = 0, mag = 0;
        for (int i = 0; i < n; i++) ref += (double)a[i + 1] * b[i], mag += fabs((double)a[i + 1] * b[i]);
        float got = ks->dot_f32(a + 1, b, n);
        CHECKF(fabs(got - ref) <= 1e-5 * mag + 1e-30, "%s dot_f32 n=%d: %.8g, want %.8g", ks->name, n, got, ref);

        memcpy(y, y0, sizeof y);
        ks->axpy_f32(y + 1, a, 0.75f, n);
        int bad = y[0] != y0[0] || y[n + 1] != y0[n + 1];
        for (int i = 0; i < n; i++) {
            double want = (double)y0[i + 1] + 0.75 * a[i];
            if (!(fabs(y[i + 1] - want) <= 1e-6 * (fabs(y0[i + 1]) + fabs(0.75 * a[i])))) bad++;
        }
        CHECKF(bad == 0, "%s axpy_f32 n=%d: %d wrong", ks->name, n, bad);
    }
}

/* ---- threadpool ---- */

typedef struct {
    atomic_int calls[16];
    atomic_int bad_nth;
    int nth;
} pool_probe;

static void probe_fn(void *arg, int ith, int nth) {
    pool_probe *p = arg;
    if (nth != p->nth || ith < 0 || ith >= nth) {
        atomic_fetch_add(&p->bad_nth, 1);
        return;
    }
    atomic_fetch_add(&p->calls[ith], 1);
}

/* A run whose result depends on every thread's writes being visible to the caller. */
typedef struct {
    long *out;
    long n;
} sum_task;

static void fill_fn(void *arg, int ith, int nth) {
    sum_task *t = arg;
    long b, e;
    om_split_range(t->n, ith, nth, &b, &e);
    for (long i = b; i < e; i++) t->out[i] = i * 3 + 1;
}

static void test_pool(int n_threads, int runs) {
    om_threadpool *pool = om_threadpool_create(n_threads);
    CHECK(pool != NULL);
    if (!pool) return;
    int nth = om_threadpool_size(pool);
    if (n_threads > 0) CHECK(nth == n_threads);
    CHECK(nth >= 1 && nth <= 16);
    pool_probe p = {.nth = nth};
    for (int r = 0; r < runs; r++) {
        om_threadpool_run(pool, probe_fn, &p);
        /* Now and then let the workers fall asleep, so the futex path is exercised too. */
        if (r % 1000 == 999) usleep(2000);
    }
    int bad = atomic_load(&p.bad_nth);
    for (int i = 0; i < nth; i++) bad += atomic_load(&p.calls[i]) != runs;
    CHECKF(bad == 0, "pool of %d: %d threads with a wrong call count", nth, bad);

    long out[1000];
    sum_task t = {out, 1000};
    int wrong = 0;
    for (int r = 0; r < 200; r++) {
        memset(out, 0, sizeof out);
        om_threadpool_run(pool, fill_fn, &t);
        for (long i = 0; i < 1000; i++) wrong += out[i] != i * 3 + 1;
    }
    CHECKF(wrong == 0, "pool of %d: %d results not visible after run", nth, wrong);
    om_threadpool_free(pool);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--chosen")) {
        printf("%s\n", om_cpu_kernels_get()->name);
        return 0;
    }
    const om_cpu_kernels *sets[] = {om_cpu_kernels_portable(), om_cpu_kernels_avx2(), om_cpu_kernels_avx512()};
    const om_cpu_kernels *best = om_cpu_kernels_get();
    CHECK(best != NULL);
    for (int i = 0; i < 3; i++) {
        if (!sets[i]) {
            fprintf(stderr, "(kernel set %d not available on this CPU)\n", i);
            continue;
        }
        test_matmul(sets[i]);
        test_dot_axpy(sets[i]);
    }

    /* OMINIX_CPU forces a set no better than what the CPU has. */
    if (!getenv("OMINIX_CPU")) {
        char cmd[4096], out[64];
        snprintf(cmd, sizeof cmd, "OMINIX_CPU=portable '%s' --chosen", argv[0]);
        CHECK(om_test_run(cmd, out, sizeof out, NULL, 0) == 0 && !strcmp(out, "portable\n"));
        snprintf(cmd, sizeof cmd, "OMINIX_CPU=avx2 '%s' --chosen", argv[0]);
        CHECK(om_test_run(cmd, out, sizeof out, NULL, 0) == 0 &&
              !strcmp(out, sets[1] ? "avx2\n" : "portable\n"));
        snprintf(cmd, sizeof cmd, "'%s' --chosen", argv[0]);
        CHECK(om_test_run(cmd, out, sizeof out, NULL, 0) == 0 && !strncmp(out, best->name, strlen(best->name)));
    }

    test_pool(1, 1000);
    test_pool(4, 5000);
    test_pool(0, 5000);
    test_pool(2, 3000);
    return om_test_finish();
}
