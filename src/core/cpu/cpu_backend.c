/* The CPU backend: implements the op table of backend.h on host memory with the persistent
 * threadpool. Every op splits its rows (or output columns, for matmul) across the pool's
 * threads with om_split_range, so no op needs a lock. The arithmetic inner loops come from
 * the SIMD kernel set chosen at run time (cpu_kernels.h). */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend.h"
#include "core/cpu/cpu_kernels.h"
#include "core/error.h"
#include "core/threadpool.h"

typedef struct cpu_backend {
    om_threadpool *pool;
    const om_cpu_kernels *kernels;
    /* Per-thread attention score rows, grown to the longest context seen. */
    float **scores;
    size_t scores_len;
    int n_threads;
} cpu_backend;

static cpu_backend *cpu(om_backend *be) { return be->impl; }

static float *row_f32(const om_tensor *t, int64_t r) { return (float *)((char *)t->data + r * t->stride[0]); }

/* ---- matmul ---- */

typedef struct {
    const om_cpu_kernels *k;
    om_tensor *y;
    const om_tensor *x, *w, *bias;
    long chunk;        /* columns a thread takes at a time (a multiple of 16) */
    atomic_long next;  /* the first column nobody has taken yet */
} matmul_task;

/* Columns [n0, n1) of y for every row of x. */
static void matmul_columns(const matmul_task *t, long n0, long n1) {
    int M = (int)t->x->shape[0], K = (int)t->x->shape[1];
    float *y = t->y->data;
    size_t ldy = (size_t)t->y->stride[0] / 4, ldx = (size_t)t->x->stride[0] / 4;
    om_matmul_fn fn = t->k->matmul[t->w->dtype];
    if (fn) {
        fn(M, K, t->x->data, ldx, t->w->data, (size_t)t->w->stride[0], y, ldy, (int)n0, (int)n1);
    } else {
        /* A format without its own kernel: dequantize 16 weight rows at a time to f32. */
        float *rows = malloc((size_t)16 * (size_t)K * sizeof(float));
        if (!rows) abort(); /* a few hundred KB at most; an op has no way to fail */
        for (long nb = n0; nb < n1; nb += 16) {
            int cnt = (int)(n1 - nb < 16 ? n1 - nb : 16);
            for (int r = 0; r < cnt; r++)
                om_convert_to_f32(rows + (size_t)r * (size_t)K, (const char *)t->w->data + (nb + r) * t->w->stride[0],
                                  t->w->dtype, (size_t)K);
            t->k->matmul[OM_F32](M, K, t->x->data, ldx, rows, (size_t)K * sizeof(float), y + nb, ldy, 0, cnt);
        }
        free(rows);
    }
    if (t->bias && t->bias->data) {
        for (int m = 0; m < M; m++) {
            float *yr = y + (size_t)m * ldy;
            for (long n = n0; n < n1; n++) {
                const char *b = (const char *)t->bias->data;
                float bv;
                om_convert_to_f32(&bv, b + n * (long)om_dtype_size(t->bias->dtype), t->bias->dtype, 1);
                yr[n] += bv;
            }
        }
    }
}

/* Threads take chunks of columns from a shared counter rather than fixed shares: on a busy
 * machine a thread whose core is taken by another process then holds up only its current
 * chunk, not a whole share. Chunks of 16-column blocks keep weight rows SIMD-aligned. */
static void matmul_worker(void *arg, int ith, int nth) {
    matmul_task *t = arg;
    const long N = (long)t->w->shape[0];
    for (;;) {
        long n0 = atomic_fetch_add(&t->next, t->chunk);
        if (n0 >= N) return;
        matmul_columns(t, n0, n0 + t->chunk < N ? n0 + t->chunk : N);
    }
}

static void cpu_matmul(om_backend *be, om_tensor *y, const om_tensor *x, const om_tensor *w, const om_tensor *bias) {
    /* Decode-sized products go in small chunks; larger ones in a few big chunks per thread,
     * since the prefill kernels reuse each block of x across the columns of a chunk. */
    const long N = (long)w->shape[0], nth = cpu(be)->n_threads;
    long chunk = x->shape[0] <= 16 ? 64 : (N / (4 * nth) + 15) / 16 * 16;
    if (chunk < 64) chunk = 64;
    matmul_task t = {cpu(be)->kernels, y, x, w, bias, chunk, 0};
    om_threadpool_run(cpu(be)->pool, matmul_worker, &t);
}

/* ---- rms norm ---- */

typedef struct {
    om_tensor *y;
    const om_tensor *x, *w;
    float eps;
    long rows;
    int dim;
    float *wf; /* norm weight as f32 */
} norm_task;

static void rms_norm_worker(void *arg, int ith, int nth) {
    norm_task *t = arg;
    long r0, r1;
    om_split_range(t->rows, ith, nth, &r0, &r1);
    const int D = t->dim;
    for (long r = r0; r < r1; r++) {
        /* Rows of a [M, H, D] tensor viewed as M*H rows of D; inner dims are contiguous. */
        const float *xr = (const float *)((const char *)t->x->data + r * (long)D * 4);
        float *yr = (float *)((char *)t->y->data + r * (long)D * 4);
        if (t->x->ndim == 2) {
            xr = row_f32(t->x, r);
            yr = row_f32(t->y, r);
        }
        double ss = 0;
        for (int i = 0; i < D; i++) ss += (double)xr[i] * xr[i];
        float inv = 1.0f / sqrtf((float)(ss / D) + t->eps);
        for (int i = 0; i < D; i++) yr[i] = t->wf[i] * (xr[i] * inv);
    }
}

static void cpu_rms_norm(om_backend *be, om_tensor *y, const om_tensor *x, const om_tensor *w, float eps) {
    int D = (int)x->shape[x->ndim - 1];
    long rows = (long)(om_tensor_nelements(x) / D);
    float wf_stack[4096];
    float *wf = D <= 4096 ? wf_stack : malloc((size_t)D * 4);
    if (!wf) abort();
    om_convert_to_f32(wf, w->data, w->dtype, (size_t)D);
    norm_task t = {y, x, w, eps, rows, D, wf};
    om_threadpool_run(cpu(be)->pool, rms_norm_worker, &t);
    if (wf != wf_stack) free(wf);
}

/* ---- rope ---- */

typedef struct {
    om_tensor *x;
    const int32_t *pos;
    const om_rope *rope;
} rope_task;

static void rope_worker(void *arg, int ith, int nth) {
    rope_task *t = arg;
    long M = (long)t->x->shape[0], m0, m1;
    int H = (int)t->x->shape[1], hd = (int)t->x->shape[2];
    int half = t->rope->n_rot / 2;
    float cs[OM_ROPE_MAX_PAIRS], sn[OM_ROPE_MAX_PAIRS];
    om_split_range(M, ith, nth, &m0, &m1);
    for (long m = m0; m < m1; m++) {
        /* The angle is formed in f32 as the reference implementations do. */
        float p = (float)t->pos[m];
        for (int i = 0; i < half; i++) {
            float a = p * t->rope->inv_freq[i];
            cs[i] = cosf(a) * t->rope->attn_factor;
            sn[i] = sinf(a) * t->rope->attn_factor;
        }
        float *xm = row_f32(t->x, m);
        for (int h = 0; h < H; h++) {
            float *v = xm + (size_t)h * (size_t)hd;
            if (t->rope->interleaved) {
                for (int i = 0; i < half; i++) {
                    float a = v[2 * i], b = v[2 * i + 1];
                    v[2 * i] = a * cs[i] - b * sn[i];
                    v[2 * i + 1] = b * cs[i] + a * sn[i];
                }
            } else {
                for (int i = 0; i < half; i++) {
                    float a = v[i], b = v[i + half];
                    v[i] = a * cs[i] - b * sn[i];
                    v[i + half] = b * cs[i] + a * sn[i];
                }
            }
        }
    }
}

static void cpu_rope(om_backend *be, om_tensor *x, const int32_t *pos, const om_rope *rope) {
    rope_task t = {x, pos, rope};
    om_threadpool_run(cpu(be)->pool, rope_worker, &t);
}

/* ---- element-wise ---- */

typedef struct {
    om_tensor *y;
    const om_tensor *a, *b;
} binary_task;

static void add_worker(void *arg, int ith, int nth) {
    binary_task *t = arg;
    long M = (long)t->y->shape[0], m0, m1;
    long D = (long)(om_tensor_nelements(t->y) / M);
    om_split_range(M, ith, nth, &m0, &m1);
    for (long m = m0; m < m1; m++) {
        float *y = row_f32(t->y, m);
        const float *x = row_f32(t->a, m);
        for (long i = 0; i < D; i++) y[i] += x[i];
    }
}

static void cpu_zero(om_backend *be, om_tensor *y) {
    long M = (long)y->shape[0];
    size_t row = (size_t)(om_tensor_nelements(y) / M) * sizeof(float);
    for (long m = 0; m < M; m++) memset(row_f32(y, m), 0, row);
}

static void cpu_add(om_backend *be, om_tensor *y, const om_tensor *x) {
    binary_task t = {y, x, NULL};
    om_threadpool_run(cpu(be)->pool, add_worker, &t);
}

static void silu_mul_worker(void *arg, int ith, int nth) {
    binary_task *t = arg;
    long M = (long)t->y->shape[0], m0, m1;
    long F = (long)t->y->shape[1];
    om_split_range(M, ith, nth, &m0, &m1);
    for (long m = m0; m < m1; m++) {
        float *y = row_f32(t->y, m);
        const float *g = row_f32(t->a, m), *u = row_f32(t->b, m);
        for (long i = 0; i < F; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

static void cpu_silu_mul(om_backend *be, om_tensor *y, const om_tensor *gate, const om_tensor *up) {
    binary_task t = {y, gate, up};
    om_threadpool_run(cpu(be)->pool, silu_mul_worker, &t);
}

/* ---- row gather / scatter ---- */

static void cpu_get_rows(om_backend *be, om_tensor *y, const om_tensor *table, const int32_t *ids) {
    long M = (long)y->shape[0];
    size_t D = (size_t)table->shape[1];
    for (long m = 0; m < M; m++)
        om_convert_to_f32(row_f32(y, m), (const char *)table->data + (int64_t)ids[m] * table->stride[0], table->dtype, D);
}

typedef struct {
    om_tensor *y;
    const om_tensor *x;
    const int32_t *rows;
    const float *scale;
} scatter_task;

static void add_rows_scaled_worker(void *arg, int ith, int nth) {
    scatter_task *t = arg;
    /* Split by columns: two tokens may target the same output row. */
    long D = (long)t->y->shape[1], c0, c1;
    om_split_range(D, ith, nth, &c0, &c1);
    for (long m = 0; m < (long)t->x->shape[0]; m++) {
        float *y = row_f32(t->y, t->rows[m]);
        const float *x = row_f32(t->x, m);
        float s = t->scale[m];
        for (long i = c0; i < c1; i++) y[i] += s * x[i];
    }
}

static void cpu_add_rows_scaled(om_backend *be, om_tensor *y, const om_tensor *x, const int32_t *rows,
                                const float *scale) {
    scatter_task t = {y, x, rows, scale};
    om_threadpool_run(cpu(be)->pool, add_rows_scaled_worker, &t);
}

/* ---- KV cache and attention ---- */

static void cpu_kv_store(om_backend *be, om_kv_cache *kv, int layer, const om_tensor *k, const om_tensor *v,
                         const int32_t *seq, const int32_t *pos) {
    size_t n = kv->pos_stride * sizeof(float);
    for (long m = 0; m < (long)k->shape[0]; m++) {
        memcpy(om_kv_k(kv, layer, seq[m], pos[m]), row_f32(k, m), n);
        memcpy(om_kv_v(kv, layer, seq[m], pos[m]), row_f32(v, m), n);
    }
}

typedef struct {
    cpu_backend *cb;
    om_tensor *out;
    const om_tensor *q;
    const om_kv_cache *kv;
    int layer;
    const int32_t *seq, *pos;
    const om_attention_params *p;
} attention_task;

/* One work item is a token and a key head: the query heads that share that key head walk its
 * keys and values together, so each cached row is read once per group rather than once per
 * query head (decode reads the KV cache from memory; with GQA that halves or quarters it). */
static void attention_worker(void *arg, int ith, int nth) {
    attention_task *t = arg;
    const om_cpu_kernels *k = t->cb->kernels;
    long M = (long)t->q->shape[0];
    int H = (int)t->q->shape[1], hd = (int)t->q->shape[2], KV = t->kv->n_kv_head;
    int group = H / KV;
    float *scores = t->cb->scores[ith]; /* [group][span] */
    long i0, i1;
    om_split_range(M * KV, ith, nth, &i0, &i1);
    for (long i = i0; i < i1; i++) {
        long m = i / KV;
        int kvh = (int)(i % KV);
        int p = t->pos[m], s = t->seq[m];
        int first = 0;
        if (t->p->window > 0 && p - t->p->window + 1 > 0) first = p - t->p->window + 1;
        const int span = p - first + 1;
        const float *q = row_f32(t->q, m) + (size_t)kvh * (size_t)group * (size_t)hd;
        float *o = row_f32(t->out, m) + (size_t)kvh * (size_t)group * (size_t)hd;
        for (int j = first; j <= p; j++) {
            const float *kr = om_kv_k(t->kv, t->layer, s, j) + (size_t)kvh * (size_t)hd;
            for (int g = 0; g < group; g++)
                scores[(size_t)g * (size_t)span + (size_t)(j - first)] = k->dot_f32(q + (size_t)g * (size_t)hd, kr, hd) * t->p->scale;
        }
        for (int g = 0; g < group; g++) {
            float *sc = scores + (size_t)g * (size_t)span, mx = -INFINITY, sum = 0;
            for (int j = 0; j < span; j++) mx = sc[j] > mx ? sc[j] : mx;
            for (int j = 0; j < span; j++) sum += sc[j] = expf(sc[j] - mx);
            float inv = 1.0f / sum;
            for (int j = 0; j < span; j++) sc[j] *= inv;
        }
        memset(o, 0, (size_t)group * (size_t)hd * sizeof(float));
        for (int j = first; j <= p; j++) {
            const float *vr = om_kv_v(t->kv, t->layer, s, j) + (size_t)kvh * (size_t)hd;
            for (int g = 0; g < group; g++)
                k->axpy_f32(o + (size_t)g * (size_t)hd, vr, scores[(size_t)g * (size_t)span + (size_t)(j - first)], hd);
        }
    }
}

static void cpu_attention(om_backend *be, om_tensor *out, const om_tensor *q, const om_kv_cache *kv, int layer,
                          const int32_t *seq, const int32_t *pos, const om_attention_params *p) {
    cpu_backend *cb = cpu(be);
    /* Scores of one group of query heads over every cached position. */
    size_t need = (size_t)kv->n_ctx * (size_t)(q->shape[1] / kv->n_kv_head);
    if (cb->scores_len < need) {
        for (int i = 0; i < cb->n_threads; i++) {
            float *s = realloc(cb->scores[i], need * sizeof(float));
            if (!s) abort(); /* tens of KB per thread; contexts reserve far more */
            cb->scores[i] = s;
        }
        cb->scores_len = need;
    }
    attention_task t = {cb, out, q, kv, layer, seq, pos, p};
    om_threadpool_run(cb->pool, attention_worker, &t);
}

static void cpu_to_host(om_backend *be, float *dst, const om_tensor *src) {
    long M = (long)src->shape[0];
    size_t row = (size_t)(om_tensor_nelements(src) / M) * sizeof(float);
    for (long m = 0; m < M; m++) memcpy((char *)dst + (size_t)m * row, row_f32(src, m), row);
}

/* ---- lifetime ---- */

static void *cpu_alloc(om_backend *be, size_t bytes) {
    /* 64-byte alignment for the AVX-512 kernels' loads. */
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
    memset(p, 0, bytes);
    return p;
}

static void cpu_dealloc(om_backend *be, void *p) { free(p); }

static void cpu_destroy(om_backend *be) {
    cpu_backend *cb = cpu(be);
    om_threadpool_free(cb->pool);
    for (int i = 0; i < cb->n_threads; i++) free(cb->scores[i]);
    free(cb->scores);
    free(cb);
    free(be);
}

static const om_backend_ops cpu_ops = {
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .dealloc = cpu_dealloc,
    .matmul = cpu_matmul,
    .rms_norm = cpu_rms_norm,
    .rope = cpu_rope,
    .zero = cpu_zero,
    .add = cpu_add,
    .silu_mul = cpu_silu_mul,
    .get_rows = cpu_get_rows,
    .add_rows_scaled = cpu_add_rows_scaled,
    .kv_store = cpu_kv_store,
    .attention = cpu_attention,
    .to_host = cpu_to_host,
};

om_backend *om_backend_cpu_create(int n_threads) {
    om_backend *be = calloc(1, sizeof *be);
    cpu_backend *cb = calloc(1, sizeof *cb);
    if (!be || !cb) {
        free(be);
        free(cb);
        om_errorf("cpu backend: out of memory");
        return NULL;
    }
    cb->pool = om_threadpool_create(n_threads);
    if (!cb->pool) {
        free(be);
        free(cb);
        return NULL;
    }
    cb->n_threads = om_threadpool_size(cb->pool);
    cb->scores = calloc((size_t)cb->n_threads, sizeof(float *));
    cb->kernels = om_cpu_kernels_get();
    be->ops = &cpu_ops;
    be->name = "cpu";
    be->n_threads = cb->n_threads;
    be->impl = cb;
    if (!cb->scores) {
        cpu_destroy(be);
        om_errorf("cpu backend: out of memory");
        return NULL;
    }
    return be;
}
