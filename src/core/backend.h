/* The compute backend interface. Model code is written once against these ops; a backend (CPU
 * now, CUDA later) implements them as a table of functions. Activations are f32 tensors in the
 * backend's memory; weights may be f32, f16 or bf16 and are used where they lie (for the CPU,
 * in the mmap'd checkpoint). Per-token host arrays (positions, sequence ids) are passed as
 * plain pointers; a device backend copies them over. */
#ifndef OM_BACKEND_H
#define OM_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "core/kv_cache.h"
#include "core/tensor.h"

#define OM_ROPE_MAX_PAIRS 256

/* Rotary position embedding for one model, precomputed from its config (see rope.h). */
typedef struct om_rope {
    int n_rot;           /* dimensions rotated per head (even, <= head_dim) */
    int interleaved;     /* 0: pairs (i, i + n_rot/2) as in rotate_half; 1: pairs (2i, 2i+1) */
    float attn_factor;   /* scales cos and sin (YaRN's mscale); 1 otherwise */
    float inv_freq[OM_ROPE_MAX_PAIRS];
} om_rope;

typedef struct om_attention_params {
    float scale;  /* applied to q.k, usually 1/sqrt(head_dim) */
    int window;   /* sliding window in positions; 0 for none */
} om_attention_params;

typedef struct om_backend om_backend;

typedef struct om_backend_ops {
    void (*destroy)(om_backend *be);
    /* Zeroed memory for activations; NULL on failure. */
    void *(*alloc)(om_backend *be, size_t bytes);
    void (*dealloc)(om_backend *be, void *ptr);

    /* y[M,N] = x[M,K] . w[N,K]^T (+ bias[N]); bias may be NULL. */
    void (*matmul)(om_backend *be, om_tensor *y, const om_tensor *x, const om_tensor *w, const om_tensor *bias);
    /* Each row r of x (last dimension D): y = x / sqrt(mean(x^2) + eps) * w, w of length D. */
    void (*rms_norm)(om_backend *be, om_tensor *y, const om_tensor *x, const om_tensor *w, float eps);
    /* x is [M, H, head_dim] f32, rotated in place; token m is at position pos[m]. */
    void (*rope)(om_backend *be, om_tensor *x, const int32_t *pos, const om_rope *rope);
    /* y = 0. */
    void (*zero)(om_backend *be, om_tensor *y);
    /* y += x, same shape. */
    void (*add)(om_backend *be, om_tensor *y, const om_tensor *x);
    /* y = silu(gate) * up, all [M, F]; gate and up may be column views of one tensor. */
    void (*silu_mul)(om_backend *be, om_tensor *y, const om_tensor *gate, const om_tensor *up);
    /* y[m, :] = table[ids[m], :] as f32 (embedding lookup, row gather). */
    void (*get_rows)(om_backend *be, om_tensor *y, const om_tensor *table, const int32_t *ids);
    /* y[rows[m], :] += scale[m] * x[m, :] (MoE combine); rows may repeat. */
    void (*add_rows_scaled)(om_backend *be, om_tensor *y, const om_tensor *x, const int32_t *rows, const float *scale);
    /* Stores k and v ([M, n_kv_head, head_dim]) of each token at (seq[m], pos[m]) of layer. */
    void (*kv_store)(om_backend *be, om_kv_cache *kv, int layer, const om_tensor *k, const om_tensor *v,
                     const int32_t *seq, const int32_t *pos);
    /* out[M, H*head_dim]: causal attention of q [M, H, head_dim] over the cached keys of each
     * token's sequence at positions <= pos[m] (and > pos[m] - window when windowed); query
     * heads share key heads in groups of H / n_kv_head. */
    void (*attention)(om_backend *be, om_tensor *out, const om_tensor *q, const om_kv_cache *kv, int layer,
                      const int32_t *seq, const int32_t *pos, const om_attention_params *p);
    /* Copies n floats from a backend tensor to host memory. */
    void (*to_host)(om_backend *be, float *dst, const om_tensor *src);
} om_backend_ops;

struct om_backend {
    const om_backend_ops *ops;
    const char *name;
    int n_threads;
    void *impl;
};

om_backend *om_backend_cpu_create(int n_threads);
static inline void om_backend_free(om_backend *be) {
    if (be) be->ops->destroy(be);
}

/* Model code calls these. */
static inline void om_matmul(om_backend *be, om_tensor *y, const om_tensor *x, const om_tensor *w, const om_tensor *bias) {
    be->ops->matmul(be, y, x, w, bias);
}
static inline void om_rms_norm(om_backend *be, om_tensor *y, const om_tensor *x, const om_tensor *w, float eps) {
    be->ops->rms_norm(be, y, x, w, eps);
}
static inline void om_rope_apply(om_backend *be, om_tensor *x, const int32_t *pos, const om_rope *rope) {
    be->ops->rope(be, x, pos, rope);
}
static inline void om_zero(om_backend *be, om_tensor *y) { be->ops->zero(be, y); }
static inline void om_add(om_backend *be, om_tensor *y, const om_tensor *x) { be->ops->add(be, y, x); }
static inline void om_silu_mul(om_backend *be, om_tensor *y, const om_tensor *gate, const om_tensor *up) {
    be->ops->silu_mul(be, y, gate, up);
}
static inline void om_get_rows(om_backend *be, om_tensor *y, const om_tensor *table, const int32_t *ids) {
    be->ops->get_rows(be, y, table, ids);
}
static inline void om_add_rows_scaled(om_backend *be, om_tensor *y, const om_tensor *x, const int32_t *rows,
                                      const float *scale) {
    be->ops->add_rows_scaled(be, y, x, rows, scale);
}
static inline void om_kv_store(om_backend *be, om_kv_cache *kv, int layer, const om_tensor *k, const om_tensor *v,
                               const int32_t *seq, const int32_t *pos) {
    be->ops->kv_store(be, kv, layer, k, v, seq, pos);
}
static inline void om_attention(om_backend *be, om_tensor *out, const om_tensor *q, const om_kv_cache *kv, int layer,
                                const int32_t *seq, const int32_t *pos, const om_attention_params *p) {
    be->ops->attention(be, out, q, kv, layer, seq, pos, p);
}

#endif
