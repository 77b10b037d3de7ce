/* The Qwen family: Qwen2 (q/k/v biases, optional sliding-window layers), Qwen3 (per-head q/k
 * RMSNorm, explicit head_dim) and Qwen3-MoE (top-k routed experts on the layers chosen by
 * decoder_sparse_step and mlp_only_layers). Parses their config.json fields, names their
 * checkpoint tensors, and composes the forward pass from the core's LM blocks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json_util.h"
#include "core/llm_blocks.h"
#include "core/model.h"
#include "core/rope.h"

typedef struct qwen_layer {
    om_tensor attn_norm, ffn_norm;
    om_attn_weights attn;
    int window;      /* sliding window of this layer, 0 for full attention */
    int sparse;      /* MoE layer */
    om_ffn_weights ffn;
    om_moe_weights moe;
} qwen_layer;

typedef struct qwen_model {
    int hidden, n_head, ffn_dim, moe_ffn_dim;
    float eps;
    om_rope_config rope;
    om_tensor embed, norm, lm_head;
    qwen_layer *layers;
} qwen_model;

#define CFG "config.json"

static int cfg_int(const cJSON *c, const char *key, int64_t def, int required, int *out) {
    int64_t v = def;
    if (required ? om_json_int(c, CFG, key, &v) : om_json_int_or(c, CFG, key, def, &v)) return -1;
    if (v < 0 || v > (1 << 30)) return om_errorf(CFG ": field '%s' is out of range (%lld)", key, (long long)v);
    *out = (int)v;
    return 0;
}

static int in_int_array(const cJSON *arr, int v) {
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        if (cJSON_IsNumber(e) && (int)e->valuedouble == v) return 1;
    }
    return 0;
}

static int load_ffn(om_model *m, om_ffn_weights *f, int hidden, int F, const char *prefix) {
    return om_model_tensor(m, &f->gate, 2, F, hidden, "%s.gate_proj.weight", prefix) ||
           om_model_tensor(m, &f->up, 2, F, hidden, "%s.up_proj.weight", prefix) ||
           om_model_tensor(m, &f->down, 2, hidden, F, "%s.down_proj.weight", prefix);
}

static int qwen_load(om_model *m) {
    const cJSON *c = m->config;
    const int is_qwen2 = !strcmp(m->model_type, "qwen2");
    const int is_moe = !strcmp(m->model_type, "qwen3_moe");
    qwen_model *q = calloc(1, sizeof *q);
    if (!q) return om_errorf("out of memory");
    m->impl = q;
    om_model_hparams *hp = &m->hp;
    int n_kv = 0, head_dim = 0, tied, attn_bias, qk_norm = !is_qwen2;
    double eps;
    if (cfg_int(c, "hidden_size", 0, 1, &q->hidden) || cfg_int(c, "num_hidden_layers", 0, 1, &hp->n_layer) ||
        cfg_int(c, "num_attention_heads", 0, 1, &q->n_head) || cfg_int(c, "vocab_size", 0, 1, &hp->n_vocab) ||
        cfg_int(c, "intermediate_size", 0, !is_moe, &q->ffn_dim) ||
        cfg_int(c, "max_position_embeddings", 32768, 0, &hp->n_ctx_train))
        return -1;
    if (q->n_head == 0 || q->hidden == 0 || hp->n_layer == 0 || hp->n_vocab == 0)
        return om_errorf(CFG ": hidden_size, num_hidden_layers, num_attention_heads and vocab_size must be positive");
    if (cfg_int(c, "num_key_value_heads", q->n_head, 0, &n_kv) ||
        cfg_int(c, "head_dim", q->hidden / q->n_head, 0, &head_dim))
        return -1;
    if (n_kv == 0 || q->n_head % n_kv)
        return om_errorf(CFG ": num_attention_heads (%d) is not a multiple of num_key_value_heads (%d)", q->n_head, n_kv);
    if (head_dim == 0 || head_dim > 2 * OM_ROPE_MAX_PAIRS) return om_errorf(CFG ": head_dim %d is not supported", head_dim);
    if (om_json_float_or(c, CFG, "rms_norm_eps", 1e-6, &eps) || om_json_bool_or(c, CFG, "tie_word_embeddings", 0, &tied) ||
        om_json_bool_or(c, CFG, "attention_bias", is_qwen2, &attn_bias))
        return -1;
    q->eps = (float)eps;
    hp->n_kv_head = n_kv;
    hp->head_dim = head_dim;
    if (om_rope_config_parse(c, CFG, head_dim, 0, &q->rope)) return -1;

    /* Qwen2's optional sliding window: per layer from layer_types, else from max_window_layers. */
    int use_sliding = 0, window = 0, max_window_layers = hp->n_layer;
    if (om_json_bool_or(c, CFG, "use_sliding_window", 0, &use_sliding)) return -1;
    if (use_sliding && (cfg_int(c, "sliding_window", 0, 1, &window) ||
                        cfg_int(c, "max_window_layers", hp->n_layer, 0, &max_window_layers)))
        return -1;
    const cJSON *layer_types = cJSON_GetObjectItemCaseSensitive(c, "layer_types");

    /* Qwen3-MoE: which layers route through experts. */
    int n_expert = 0, top_k = 0, sparse_step = 1, norm_topk = 0;
    const cJSON *mlp_only = NULL;
    if (is_moe) {
        /* transformers 5 saves num_local_experts; released checkpoints say num_experts. */
        const char *experts_key = cJSON_GetObjectItemCaseSensitive(c, "num_experts") ? "num_experts" : "num_local_experts";
        if (cfg_int(c, experts_key, 0, 1, &n_expert) || cfg_int(c, "num_experts_per_tok", 0, 1, &top_k) ||
            cfg_int(c, "moe_intermediate_size", 0, 1, &q->moe_ffn_dim) ||
            cfg_int(c, "decoder_sparse_step", 1, 0, &sparse_step) || om_json_bool_or(c, CFG, "norm_topk_prob", 0, &norm_topk))
            return -1;
        if (n_expert > OM_MOE_MAX_EXPERTS || top_k == 0 || top_k > n_expert)
            return om_errorf(CFG ": num_experts_per_tok (%d) must be in 1..num_experts (%d), at most %d experts", top_k,
                             n_expert, OM_MOE_MAX_EXPERTS);
        mlp_only = cJSON_GetObjectItemCaseSensitive(c, "mlp_only_layers");
    }

    const int H = q->hidden, QD = q->n_head * head_dim, KVD = n_kv * head_dim;
    if (om_model_tensor(m, &q->embed, 2, hp->n_vocab, H, "model.embed_tokens.weight") ||
        om_model_tensor(m, &q->norm, 1, H, 0, "model.norm.weight"))
        return -1;
    if (tied) q->lm_head = q->embed;
    else if (om_model_tensor(m, &q->lm_head, 2, hp->n_vocab, H, "lm_head.weight")) return -1;

    q->layers = calloc((size_t)hp->n_layer, sizeof *q->layers);
    if (!q->layers) return om_errorf("out of memory");
    for (int i = 0; i < hp->n_layer; i++) {
        qwen_layer *L = &q->layers[i];
        om_attn_weights *a = &L->attn;
        char p[128];
        snprintf(p, sizeof p, "model.layers.%d", i);
        if (om_model_tensor(m, &L->attn_norm, 1, H, 0, "%s.input_layernorm.weight", p) ||
            om_model_tensor(m, &L->ffn_norm, 1, H, 0, "%s.post_attention_layernorm.weight", p) ||
            om_model_tensor(m, &a->wq, 2, QD, H, "%s.self_attn.q_proj.weight", p) ||
            om_model_tensor(m, &a->wk, 2, KVD, H, "%s.self_attn.k_proj.weight", p) ||
            om_model_tensor(m, &a->wv, 2, KVD, H, "%s.self_attn.v_proj.weight", p) ||
            om_model_tensor(m, &a->wo, 2, H, QD, "%s.self_attn.o_proj.weight", p))
            return -1;
        if (attn_bias && (om_model_tensor(m, &a->bq, 1, QD, 0, "%s.self_attn.q_proj.bias", p) ||
                          om_model_tensor(m, &a->bk, 1, KVD, 0, "%s.self_attn.k_proj.bias", p) ||
                          om_model_tensor(m, &a->bv, 1, KVD, 0, "%s.self_attn.v_proj.bias", p)))
            return -1;
        if (!is_qwen2 && attn_bias && om_model_tensor_opt(m, &a->bo, 1, H, 0, "%s.self_attn.o_proj.bias", p)) return -1;
        if (qk_norm && (om_model_tensor(m, &a->q_norm, 1, head_dim, 0, "%s.self_attn.q_norm.weight", p) ||
                        om_model_tensor(m, &a->k_norm, 1, head_dim, 0, "%s.self_attn.k_norm.weight", p)))
            return -1;
        if (use_sliding) {
            const cJSON *lt = cJSON_GetArrayItem(layer_types, i);
            int sliding = cJSON_IsString(lt) ? !strcmp(lt->valuestring, "sliding_attention") : i >= max_window_layers;
            L->window = sliding ? window : 0;
        }
        L->sparse = is_moe && n_expert > 0 && !in_int_array(mlp_only, i) && (i + 1) % (sparse_step ? sparse_step : 1) == 0;
        char fp[160];
        snprintf(fp, sizeof fp, "%s.mlp", p);
        if (!L->sparse) {
            if (q->ffn_dim == 0) return om_errorf(CFG ": layer %d is dense but intermediate_size is missing", i);
            if (load_ffn(m, &L->ffn, H, q->ffn_dim, fp)) return -1;
            continue;
        }
        om_moe_weights *e = &L->moe;
        e->n_expert = n_expert;
        e->top_k = top_k;
        e->scoring = OM_MOE_SOFTMAX;
        e->norm_topk_prob = norm_topk;
        e->routed_scaling = 1.0f;
        if (om_model_tensor(m, &e->router, 2, n_expert, H, "%s.mlp.gate.weight", p)) return -1;
        e->experts = calloc((size_t)n_expert, sizeof *e->experts);
        if (!e->experts) return om_errorf("out of memory");
        for (int x = 0; x < n_expert; x++) {
            char ep[192];
            snprintf(ep, sizeof ep, "%s.mlp.experts.%d", p, x);
            if (load_ffn(m, &e->experts[x], H, q->moe_ffn_dim, ep)) return -1;
        }
    }
    return 0;
}

static void qwen_free(om_model *m) {
    qwen_model *q = m->impl;
    if (q->layers)
        for (int i = 0; i < m->hp.n_layer; i++) free(q->layers[i].moe.experts);
    free(q->layers);
    free(q);
    m->impl = NULL;
}

static int qwen_context_init(om_context *ctx) {
    const om_model *m = ctx->model;
    const qwen_model *q = m->impl;
    om_llm_scratch *sc = calloc(1, sizeof *sc);
    if (!sc) return om_errorf("out of memory");
    int n_expert = 0, top_k = 0;
    for (int i = 0; i < m->hp.n_layer; i++)
        if (q->layers[i].sparse) {
            n_expert = q->layers[i].moe.n_expert;
            top_k = q->layers[i].moe.top_k;
        }
    om_llm_dims d = {
        .n_batch = ctx->n_batch,
        .hidden = q->hidden,
        .q_dim = q->n_head * m->hp.head_dim,
        .kv_dim = m->hp.n_kv_head * m->hp.head_dim,
        .ffn_dim = q->ffn_dim > q->moe_ffn_dim ? q->ffn_dim : q->moe_ffn_dim,
        .n_expert = n_expert,
        .top_k = top_k,
        .n_vocab = m->hp.n_vocab,
    };
    if (om_llm_scratch_init(sc, m->backend, &d)) {
        free(sc);
        return -1;
    }
    ctx->impl = sc;
    return 0;
}

static void qwen_context_free(om_context *ctx) {
    om_llm_scratch_free(ctx->impl);
    free(ctx->impl);
    ctx->impl = NULL;
}

static int qwen_forward(om_context *ctx, const om_batch *b, const int8_t *want, float *logits) {
    const om_model *m = ctx->model;
    const qwen_model *q = m->impl;
    om_llm_scratch *sc = ctx->impl;
    om_backend *be = m->backend;
    const int64_t M = b->n_tokens;
    int max_pos = 0;
    for (int i = 0; i < M; i++) max_pos = b->pos[i] > max_pos ? b->pos[i] : max_pos;
    om_rope rope;
    om_rope_build(&q->rope, max_pos, &rope);
    om_attn_shape shape = {q->n_head, m->hp.n_kv_head, m->hp.head_dim, q->eps, {0, 0}};
    shape.params.scale = 1.0f / sqrtf((float)m->hp.head_dim);

    om_tensor x = om_tensor_rows(&sc->x, 0, M), xn = om_tensor_rows(&sc->xn, 0, M), t = om_tensor_rows(&sc->tmp, 0, M);
    om_get_rows(be, &x, &q->embed, b->token);
    for (int i = 0; i < m->hp.n_layer; i++) {
        const qwen_layer *L = &q->layers[i];
        om_rms_norm(be, &xn, &x, &L->attn_norm, q->eps);
        shape.params.window = L->window;
        om_llm_attention(sc, &t, &xn, &L->attn, &shape, &rope, &ctx->kv, i, b->seq, b->pos);
        om_add(be, &x, &t);
        om_rms_norm(be, &xn, &x, &L->ffn_norm, q->eps);
        if (L->sparse) om_llm_moe(sc, &t, &xn, &L->moe);
        else om_llm_ffn(sc, &t, &xn, &L->ffn);
        om_add(be, &x, &t);
    }
    om_rms_norm(be, &xn, &x, &q->norm, q->eps);
    om_llm_logits(sc, &xn, want, &q->lm_head, logits);
    return 0;
}

static size_t tensor_bytes(const om_tensor *t) {
    return t->data ? (size_t)om_tensor_nelements(t) * om_dtype_size(t->dtype) : 0;
}

static size_t ffn_bytes(const om_ffn_weights *f) {
    return tensor_bytes(&f->gate) + tensor_bytes(&f->up) + tensor_bytes(&f->down) + tensor_bytes(&f->gate_up);
}

static size_t qwen_decode_bytes(const om_model *m) {
    const qwen_model *q = m->impl;
    size_t total = tensor_bytes(&q->norm) + tensor_bytes(&q->lm_head);
    for (int i = 0; i < m->hp.n_layer; i++) {
        const qwen_layer *L = &q->layers[i];
        const om_attn_weights *a = &L->attn;
        const om_tensor *ts[] = {&L->attn_norm, &L->ffn_norm, &a->wq, &a->wk, &a->wv, &a->wo, &a->bq,
                                 &a->bk,        &a->bv,       &a->bo, &a->q_norm, &a->k_norm};
        for (size_t j = 0; j < sizeof ts / sizeof ts[0]; j++) total += tensor_bytes(ts[j]);
        if (!L->sparse) {
            total += ffn_bytes(&L->ffn);
            continue;
        }
        /* A token reads top_k of the experts. */
        total += tensor_bytes(&L->moe.router) + (size_t)L->moe.top_k * ffn_bytes(&L->moe.experts[0]);
    }
    return total;
}

static const char *const qwen_types[] = {"qwen2", "qwen3", "qwen3_moe", NULL};

const om_family om_family_qwen = {
    .name = "qwen",
    .model_types = qwen_types,
    .load = qwen_load,
    .free = qwen_free,
    .context_init = qwen_context_init,
    .context_free = qwen_context_free,
    .forward = qwen_forward,
    .decode_bytes = qwen_decode_bytes,
};
