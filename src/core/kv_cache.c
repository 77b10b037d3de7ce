/* KV cache allocation (see kv_cache.h). */
#include "core/kv_cache.h"

#include <stdlib.h>

#include "core/error.h"

int om_kv_cache_init(om_kv_cache *kv, int n_layer, int n_seq, int n_ctx, int n_kv_head, int head_dim) {
    *kv = (om_kv_cache){0};
    if (n_layer <= 0 || n_seq <= 0 || n_ctx <= 0 || n_kv_head <= 0 || head_dim <= 0)
        return om_errorf("kv cache: invalid size (layers %d, sequences %d, context %d)", n_layer, n_seq, n_ctx);
    kv->n_layer = n_layer;
    kv->n_seq = n_seq;
    kv->n_ctx = n_ctx;
    kv->n_kv_head = n_kv_head;
    kv->head_dim = head_dim;
    kv->pos_stride = (size_t)n_kv_head * (size_t)head_dim;
    kv->seq_stride = kv->pos_stride * (size_t)n_ctx;
    kv->layer_stride = kv->seq_stride * (size_t)n_seq;
    size_t total = kv->layer_stride * (size_t)n_layer;
    if (total / (size_t)n_layer != kv->layer_stride) return om_errorf("kv cache: size overflows");
    /* calloc maps zero pages lazily: resident memory grows only with the positions used. */
    kv->k = calloc(total, sizeof(float));
    kv->v = calloc(total, sizeof(float));
    if (!kv->k || !kv->v) {
        om_kv_cache_free(kv);
        return om_errorf("kv cache: out of memory for %zu bytes", 2 * total * sizeof(float));
    }
    return 0;
}

void om_kv_cache_free(om_kv_cache *kv) {
    free(kv->k);
    free(kv->v);
    kv->k = kv->v = NULL;
}

size_t om_kv_cache_bytes(const om_kv_cache *kv) {
    return 2 * kv->layer_stride * (size_t)kv->n_layer * sizeof(float);
}
