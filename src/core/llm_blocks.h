/* Building blocks of decoder-only transformer LMs, written once for every family: attention
 * with grouped-query heads over the KV cache (optional q/k/v/o biases, per-head q/k RMSNorm,
 * rotary embedding, sliding window), the gated SiLU feed-forward (separate or fused gate/up,
 * optional biases), mixture-of-experts routing and dispatch (softmax or sigmoid scores,
 * correction bias, group-limited top-k, normalised and scaled weights, shared experts), and the
 * final projection to logits. A family fills the weight structs from its checkpoint names and
 * calls these in its layer order. Absent optional weights have data == NULL.
 *
 * Below the blocks, the standard decoder stack most such LMs are (om_llm_model): a family that
 * is one parses its config and names its tensors with the om_llm_load_* helpers, and uses the
 * stack's forward, context and size functions as its om_family entries. */
#ifndef OM_LLM_BLOCKS_H
#define OM_LLM_BLOCKS_H

#include <cjson/cJSON.h>

#include "core/backend.h"
#include "core/kv_cache.h"
#include "core/model.h"
#include "core/rope.h"

typedef struct om_attn_weights {
    om_tensor wq, wk, wv, wo;         /* [n_head*hd, hidden], [n_kv*hd, hidden] x2, [hidden, n_head*hd] */
    om_tensor bq, bk, bv, bo;         /* optional biases */
    om_tensor q_norm, k_norm;         /* optional per-head RMSNorm weights [hd] */
} om_attn_weights;

typedef struct om_attn_shape {
    int n_head, n_kv_head, head_dim;
    float norm_eps; /* for q_norm / k_norm */
    om_attention_params params;
} om_attn_shape;

typedef struct om_ffn_weights {
    om_tensor gate, up, down; /* [F, hidden], [F, hidden], [hidden, F] */
    om_tensor gate_up;        /* alternative to gate and up: fused [2F, hidden], gate rows first */
    om_tensor b_gate, b_up, b_down; /* optional biases (with gate and up, not gate_up) */
} om_ffn_weights;

/* Families reject checkpoints beyond these when loading. */
#define OM_MOE_MAX_EXPERTS 1024
#define OM_MOE_MAX_GROUPS 64

typedef enum { OM_MOE_SOFTMAX, OM_MOE_SIGMOID } om_moe_scoring;

typedef struct om_moe_weights {
    int n_expert, top_k;
    om_moe_scoring scoring;
    int norm_topk_prob;
    float routed_scaling; /* multiplies the routing weights; 1 for none */
    int n_group, topk_group; /* group-limited routing; n_group <= 1 for none */
    om_tensor router;        /* [n_expert, hidden] */
    om_tensor score_bias;    /* optional [n_expert]: added for choosing experts only */
    om_ffn_weights *experts; /* n_expert entries */
    om_ffn_weights shared;   /* optional shared expert (gate/up/down data NULL when absent) */
} om_moe_weights;

/* The largest sizes one context's batches need. */
typedef struct om_llm_dims {
    int n_batch, hidden, q_dim, kv_dim, ffn_dim, n_expert, top_k, n_vocab;
} om_llm_dims;

/* Activation buffers of one context, each with room for n_batch rows. */
typedef struct om_llm_scratch {
    om_backend *be;
    om_llm_dims d;
    om_tensor x, xn, tmp;        /* [n_batch, hidden] */
    om_tensor q, attn;           /* [n_batch, q_dim] */
    om_tensor k, v;              /* [n_batch, kv_dim] */
    om_tensor gate_up, act;      /* [n_batch, 2*ffn_dim], [n_batch, ffn_dim] */
    om_tensor ffn_out;           /* [n_batch, hidden] */
    om_tensor moe_in, moe_out;   /* [n_batch, hidden] */
    om_tensor router;            /* [n_batch, n_expert] */
    om_tensor logits;            /* [OM_LOGITS_CHUNK, n_vocab] */
    float *router_host;          /* [n_batch * n_expert] */
    int32_t *route_idx;          /* [n_batch * top_k] */
    float *route_w;              /* [n_batch * top_k] */
    int32_t *expert_rows;        /* [n_batch] */
    float *expert_w;             /* [n_batch] */
    int32_t *rows;               /* [n_batch] */
} om_llm_scratch;

#define OM_LOGITS_CHUNK 16

int om_llm_scratch_init(om_llm_scratch *sc, om_backend *be, const om_llm_dims *dims);
void om_llm_scratch_free(om_llm_scratch *sc);

/* out[M, hidden] = attention block of xn[M, hidden] for tokens at (seq[m], pos[m]). */
void om_llm_attention(om_llm_scratch *sc, om_tensor *out, const om_tensor *xn, const om_attn_weights *w,
                      const om_attn_shape *s, const om_rope *rope, om_kv_cache *kv, int layer, const int32_t *seq,
                      const int32_t *pos);

/* out[M, hidden] = down(silu(gate(xn)) * up(xn)). */
void om_llm_ffn(om_llm_scratch *sc, om_tensor *out, const om_tensor *xn, const om_ffn_weights *w);

/* out[M, hidden] = sum over each token's chosen experts of weight * expert(xn) (+ shared). */
void om_llm_moe(om_llm_scratch *sc, om_tensor *out, const om_tensor *xn, const om_moe_weights *w);

/* Chooses top_k experts from one token's router logits: idx[top_k], weight[top_k]. */
void om_moe_route(const float *logits, const om_moe_weights *w, int32_t *idx, float *weight);

/* Rows of the intermediate activation of f: F. */
int64_t om_llm_ffn_dim(const om_ffn_weights *f);

/* Projects the rows m of x (not sc->tmp, which it uses) with want[m] != 0 (all rows when want is NULL) through lm_head
 * ([n_vocab, hidden]) and writes their logits, in order, to out (host, [count, n_vocab]). */
void om_llm_logits(om_llm_scratch *sc, const om_tensor *x, const int8_t *want, const om_tensor *lm_head, float *out);

/* ---- The standard decoder stack ----
 * Token embedding; n_layer layers of x += attn(rms_norm(x)), x += ffn_or_moe(rms_norm(x));
 * a final RMSNorm; the output projection. Where a layer has them, attn_out_norm and
 * ffn_out_norm normalise a block's output before its residual add (a "sandwich" layer).
 * model->impl points to an om_llm_model. */

typedef struct om_llm_layer {
    om_tensor attn_norm, ffn_norm;         /* RMSNorm weights before attention / feed-forward */
    om_tensor attn_out_norm, ffn_out_norm; /* optional RMSNorm weights of the blocks' outputs */
    om_attn_weights attn;
    int window; /* sliding window of this layer, 0 for full attention */
    int sparse; /* 1: the feed-forward is moe, 0: ffn */
    om_ffn_weights ffn;
    om_moe_weights moe;
} om_llm_layer;

typedef struct om_llm_model {
    /* From config.json (om_llm_model_create). */
    int hidden, n_head;
    int ffn_dim; /* intermediate_size, 0 when absent */
    int tied;    /* tie_word_embeddings */
    float eps;   /* rms_norm_eps */
    om_rope_config rope; /* parsed by the family: it knows its rotary layout */
    om_tensor embed, norm, lm_head;
    om_llm_layer *layers; /* hp.n_layer entries, zeroed */
} om_llm_model;

/* Allocates model->impl as an om_llm_model with its layers and reads the config.json fields
 * every such model has: hidden_size, num_hidden_layers, num_attention_heads, vocab_size
 * (required), num_key_value_heads, head_dim, intermediate_size, max_position_embeddings,
 * rms_norm_eps (default_eps when absent), tie_word_embeddings; fills model->hp. */
int om_llm_model_create(om_model *model, double default_eps, om_llm_model **out);
/* An integer field of config.json in 0..2^30; def when absent unless required. */
int om_llm_config_int(const cJSON *config, const char *key, int64_t def, int required, int *out);

/* The checkpoint names of an attention block's parts, under the prefix given at load time. */
typedef struct om_attn_names {
    const char *q, *k, *v, *o, *q_norm, *k_norm;
} om_attn_names;

enum {
    OM_LOAD_QKV_BIAS = 1, /* <q|k|v>.bias */
    OM_LOAD_O_BIAS = 2,   /* <o>.bias */
    OM_LOAD_QK_NORM = 4,  /* <q_norm|k_norm>.weight, [head_dim] each */
};

/* The family names its tensors; these add PyTorch's ".weight" / ".bias" and check shapes. */
/* embed, norm and (unless lm->tied) lm_head. */
int om_llm_load_outer(om_model *model, om_llm_model *lm, const char *embed, const char *norm, const char *lm_head);
/* "<prefix>.<n->q>.weight" etc. with the optional parts chosen by flags (OM_LOAD_*). */
int om_llm_load_attn(om_model *model, const om_llm_model *lm, om_attn_weights *a, const om_attn_names *n,
                     unsigned flags, const char *prefix);
/* A gated FFN of intermediate size F: "<prefix>.<names[0..2]>.weight" are gate, up, down;
 * names[1] == NULL means names[0] is the fused gate_up [2F, hidden]. bias: also the .bias of
 * each (unfused only). */
int om_llm_load_ffn(om_model *model, om_ffn_weights *f, int hidden, int F, int bias, const char *prefix,
                    const char *const names[3]);
/* The router "<prefix>.<router>.weight" [n_expert, hidden] and n_expert experts
 * "<prefix>.<experts>.<e>.<names[i]>.weight" of size F; e->n_expert is set by the caller, as are
 * the routing fields. Allocates e->experts (freed by om_llm_model_free). */
int om_llm_load_moe(om_model *model, om_moe_weights *e, int hidden, int F, const char *prefix, const char *router,
                    const char *experts, const char *const names[3]);

/* om_family entries for an om_llm_model. */
void om_llm_model_free(om_model *model);
int om_llm_context_init(om_context *ctx);
void om_llm_context_free(om_context *ctx);
int om_llm_forward(om_context *ctx, const om_batch *batch, const int8_t *want_logits, float *logits_out);
size_t om_llm_decode_bytes(const om_model *model);

/* The om_family of a family whose load fills an om_llm_model:
 *     const om_family om_family_x = OM_LLM_FAMILY("x", x_types, x_load); */
#define OM_LLM_FAMILY(family_name, types, load_fn)                                                                 \
    {                                                                                                              \
        .name = (family_name), .model_types = (types), .load = (load_fn), .free = om_llm_model_free,               \
        .context_init = om_llm_context_init, .context_free = om_llm_context_free, .forward = om_llm_forward,     \
        .decode_bytes = om_llm_decode_bytes,                                                                       \
    }

#endif
