/* The KV cache: keys and values of every layer for several sequences at once, sized once per
 * context (n_seq sequences of n_ctx slots each). Layout per layer: [seq][slot][kv_head][head_dim],
 * f32. Position p lives in slot p % n_ctx: a context of more positions than slots keeps a ring
 * of the most recent ones, which is all a sliding-window model attends to. Memory is reserved
 * up front and touched only as slots fill. */
#ifndef OM_KV_CACHE_H
#define OM_KV_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct om_kv_cache {
    int n_layer, n_seq, n_ctx, n_kv_head, head_dim;
    size_t pos_stride;   /* floats between positions: n_kv_head * head_dim */
    size_t seq_stride;   /* floats between sequences */
    size_t layer_stride; /* floats between layers */
    float *k, *v;
} om_kv_cache;

int om_kv_cache_init(om_kv_cache *kv, int n_layer, int n_seq, int n_ctx, int n_kv_head, int head_dim);
void om_kv_cache_free(om_kv_cache *kv);
size_t om_kv_cache_bytes(const om_kv_cache *kv);

static inline float *om_kv_k(const om_kv_cache *kv, int layer, int seq, int pos) {
    return kv->k + (size_t)layer * kv->layer_stride + (size_t)seq * kv->seq_stride +
           (size_t)(pos % kv->n_ctx) * kv->pos_stride;
}
static inline float *om_kv_v(const om_kv_cache *kv, int layer, int seq, int pos) {
    return kv->v + (size_t)layer * kv->layer_stride + (size_t)seq * kv->seq_stride +
           (size_t)(pos % kv->n_ctx) * kv->pos_stride;
}

#endif
