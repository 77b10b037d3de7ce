/* Building blocks of decoder-only transformer LMs, written once for every family: attention
 * with grouped-query heads over the KV cache (optional q/k/v/o biases, per-head q/k RMSNorm,
 * rotary embedding, sliding window), the gated SiLU feed-forward (separate or fused gate/up),
 * mixture-of-experts routing and dispatch (softmax or sigmoid scores, correction bias,
 * group-limited top-k, normalised and scaled weights, shared experts), and the final
 * projection to logits. A family fills the weight structs from its checkpoint names and calls
 * these in its layer order. Absent optional weights have data == NULL. */
#ifndef OM_LLM_BLOCKS_H
#define OM_LLM_BLOCKS_H

#include "core/backend.h"
#include "core/kv_cache.h"

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

/* Projects the rows m of x (not sc->tmp, which it uses) with want[m] != 0 (all rows when want is NULL) through lm_head
 * ([n_vocab, hidden]) and writes their logits, in order, to out (host, [count, n_vocab]). */
void om_llm_logits(om_llm_scratch *sc, const om_tensor *x, const int8_t *want, const om_tensor *lm_head, float *out);

#endif
