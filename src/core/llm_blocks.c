/* Decoder-only LM building blocks (see llm_blocks.h). */
#include "core/llm_blocks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json_util.h"

static int alloc_2d(om_backend *be, om_tensor *t, int64_t rows, int64_t cols) {
    if (rows <= 0 || cols <= 0) {
        *t = (om_tensor){0};
        return 0;
    }
    void *p = be->ops->alloc(be, (size_t)rows * (size_t)cols * sizeof(float));
    if (!p) return om_errorf("out of memory for a [%lld, %lld] activation buffer", (long long)rows, (long long)cols);
    *t = om_tensor_2d(p, OM_F32, rows, cols);
    return 0;
}

int om_llm_scratch_init(om_llm_scratch *sc, om_backend *be, const om_llm_dims *d) {
    memset(sc, 0, sizeof *sc);
    sc->be = be;
    sc->d = *d;
    const int64_t B = d->n_batch;
    int top_k = d->top_k > 0 ? d->top_k : 1;
    if (alloc_2d(be, &sc->x, B, d->hidden) || alloc_2d(be, &sc->xn, B, d->hidden) ||
        alloc_2d(be, &sc->tmp, B, d->hidden) || alloc_2d(be, &sc->q, B, d->q_dim) ||
        alloc_2d(be, &sc->attn, B, d->q_dim) || alloc_2d(be, &sc->k, B, d->kv_dim) ||
        alloc_2d(be, &sc->v, B, d->kv_dim) || alloc_2d(be, &sc->gate_up, B, 2 * (int64_t)d->ffn_dim) ||
        alloc_2d(be, &sc->act, B, d->ffn_dim) || alloc_2d(be, &sc->ffn_out, B, d->hidden) ||
        alloc_2d(be, &sc->logits, OM_LOGITS_CHUNK, d->n_vocab))
        goto fail;
    if (d->n_expert > 0) {
        if (alloc_2d(be, &sc->moe_in, B, d->hidden) || alloc_2d(be, &sc->moe_out, B, d->hidden) ||
            alloc_2d(be, &sc->router, B, d->n_expert))
            goto fail;
        sc->router_host = malloc((size_t)B * (size_t)d->n_expert * sizeof(float));
        sc->route_idx = malloc((size_t)B * (size_t)top_k * sizeof(int32_t));
        sc->route_w = malloc((size_t)B * (size_t)top_k * sizeof(float));
        sc->expert_rows = malloc((size_t)B * sizeof(int32_t));
        sc->expert_w = malloc((size_t)B * sizeof(float));
        if (!sc->router_host || !sc->route_idx || !sc->route_w || !sc->expert_rows || !sc->expert_w) {
            om_errorf("out of memory for expert routing");
            goto fail;
        }
    }
    sc->rows = malloc((size_t)B * sizeof(int32_t));
    if (!sc->rows) {
        om_errorf("out of memory for row indices");
        goto fail;
    }
    return 0;
fail:
    om_llm_scratch_free(sc);
    return -1;
}

void om_llm_scratch_free(om_llm_scratch *sc) {
    if (!sc->be) return;
    om_tensor *ts[] = {&sc->x,       &sc->xn,  &sc->tmp,     &sc->q,      &sc->attn,   &sc->k,      &sc->v,
                       &sc->gate_up, &sc->act, &sc->ffn_out, &sc->moe_in, &sc->moe_out, &sc->router, &sc->logits};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        if (ts[i]->data) sc->be->ops->dealloc(sc->be, ts[i]->data);
    free(sc->router_host);
    free(sc->route_idx);
    free(sc->route_w);
    free(sc->expert_rows);
    free(sc->expert_w);
    free(sc->rows);
    memset(sc, 0, sizeof *sc);
}

static om_tensor as_heads(const om_tensor *t, int heads, int head_dim) {
    int64_t shape[3] = {t->shape[0], heads, head_dim};
    return om_tensor_view(t->data, OM_F32, 3, shape);
}

static const om_tensor *opt(const om_tensor *t) { return t->data ? t : NULL; }

void om_llm_attention(om_llm_scratch *sc, om_tensor *out, const om_tensor *xn, const om_attn_weights *w,
                      const om_attn_shape *s, const om_rope *rope, om_kv_cache *kv, int layer, const int32_t *seq,
                      const int32_t *pos) {
    om_backend *be = sc->be;
    int64_t M = xn->shape[0];
    om_tensor q = om_tensor_rows(&sc->q, 0, M), k = om_tensor_rows(&sc->k, 0, M), v = om_tensor_rows(&sc->v, 0, M);
    om_tensor attn = om_tensor_rows(&sc->attn, 0, M);
    q.shape[1] = attn.shape[1] = (int64_t)s->n_head * s->head_dim;
    k.shape[1] = v.shape[1] = (int64_t)s->n_kv_head * s->head_dim;
    om_matmul(be, &q, xn, &w->wq, opt(&w->bq));
    om_matmul(be, &k, xn, &w->wk, opt(&w->bk));
    om_matmul(be, &v, xn, &w->wv, opt(&w->bv));
    om_tensor q3 = as_heads(&q, s->n_head, s->head_dim), k3 = as_heads(&k, s->n_kv_head, s->head_dim);
    om_tensor v3 = as_heads(&v, s->n_kv_head, s->head_dim), a3 = as_heads(&attn, s->n_head, s->head_dim);
    if (w->q_norm.data) om_rms_norm(be, &q3, &q3, &w->q_norm, s->norm_eps);
    if (w->k_norm.data) om_rms_norm(be, &k3, &k3, &w->k_norm, s->norm_eps);
    om_rope_apply(be, &q3, pos, rope);
    om_rope_apply(be, &k3, pos, rope);
    om_kv_store(be, kv, layer, &k3, &v3, seq, pos);
    om_attention(be, &a3, &q3, kv, layer, seq, pos, &s->params);
    om_matmul(be, out, &attn, &w->wo, opt(&w->bo));
}

void om_llm_ffn(om_llm_scratch *sc, om_tensor *out, const om_tensor *xn, const om_ffn_weights *w) {
    om_backend *be = sc->be;
    int64_t M = xn->shape[0];
    int64_t F = om_llm_ffn_dim(w);
    om_tensor gu = om_tensor_rows(&sc->gate_up, 0, M);
    om_tensor gate = gu, up = gu;
    if (w->gate_up.data) {
        gu.shape[1] = 2 * F;
        gu.stride[0] = 2 * F * (int64_t)sizeof(float);
        om_matmul(be, &gu, xn, &w->gate_up, NULL);
        gate = gu;
        gate.shape[1] = F;
        up = gate;
        up.data = (float *)gu.data + F;
    } else {
        /* Both halves in one buffer with rows of 2F, so the fused and split paths share it. */
        gate.shape[1] = F;
        gate.stride[0] = 2 * F * (int64_t)sizeof(float);
        up = gate;
        up.data = (float *)gu.data + F;
        om_matmul(be, &gate, xn, &w->gate, opt(&w->b_gate));
        om_matmul(be, &up, xn, &w->up, opt(&w->b_up));
    }
    om_tensor act = om_tensor_rows(&sc->act, 0, M);
    act.shape[1] = F;
    act.stride[0] = F * (int64_t)sizeof(float);
    om_silu_mul(be, &act, &gate, &up);
    om_matmul(be, out, &act, &w->down, opt(&w->b_down));
}

int64_t om_llm_ffn_dim(const om_ffn_weights *f) {
    return f->gate_up.data ? f->gate_up.shape[0] / 2 : f->gate.data ? f->gate.shape[0] : 0;
}

/* Indices of the k largest values of v[0..n), largest first; ties go to the lower index as
 * torch.topk does on CPU. */
static void top_k(const float *v, int n, int k, int32_t *idx) {
    for (int j = 0; j < k; j++) idx[j] = -1;
    for (int i = 0; i < n; i++) {
        int j = k;
        while (j > 0 && (idx[j - 1] < 0 || v[i] > v[idx[j - 1]])) j--;
        if (j >= k) continue;
        memmove(idx + j + 1, idx + j, (size_t)(k - j - 1) * sizeof(int32_t));
        idx[j] = i;
    }
}

void om_moe_route(const float *logits, const om_moe_weights *w, int32_t *idx, float *weight) {
    const int E = w->n_expert, K = w->top_k;
    float scores[OM_MOE_MAX_EXPERTS], choice[OM_MOE_MAX_EXPERTS];
    if (w->scoring == OM_MOE_SOFTMAX) {
        float mx = -INFINITY;
        for (int e = 0; e < E; e++) mx = logits[e] > mx ? logits[e] : mx;
        float sum = 0;
        for (int e = 0; e < E; e++) sum += scores[e] = expf(logits[e] - mx);
        for (int e = 0; e < E; e++) scores[e] /= sum;
    } else {
        for (int e = 0; e < E; e++) scores[e] = 1.0f / (1.0f + expf(-logits[e]));
    }
    for (int e = 0; e < E; e++) {
        float b = 0;
        if (w->score_bias.data) om_convert_to_f32(&b, (const char *)w->score_bias.data + e * om_dtype_size(w->score_bias.dtype), w->score_bias.dtype, 1);
        choice[e] = scores[e] + b;
    }
    if (w->n_group > 1) {
        /* Keep the topk_group groups whose two best experts score highest; the others' experts
         * drop to -inf, below any kept one (a correction bias can make kept choices negative). */
        int per = E / w->n_group;
        float gscore[OM_MOE_MAX_GROUPS];
        int32_t gidx[OM_MOE_MAX_GROUPS], best2[2];
        for (int g = 0; g < w->n_group; g++) {
            top_k(choice + g * per, per, 2 < per ? 2 : per, best2);
            gscore[g] = choice[g * per + best2[0]] + (per > 1 ? choice[g * per + best2[1]] : 0);
        }
        top_k(gscore, w->n_group, w->topk_group, gidx);
        for (int g = 0; g < w->n_group; g++) {
            int keep = 0;
            for (int j = 0; j < w->topk_group; j++) keep |= gidx[j] == g;
            if (!keep)
                for (int e = g * per; e < (g + 1) * per; e++) choice[e] = -INFINITY;
        }
    }
    top_k(choice, E, K, idx);
    float sum = 0;
    for (int j = 0; j < K; j++) sum += weight[j] = scores[idx[j]];
    if (w->norm_topk_prob) {
        float denom = w->scoring == OM_MOE_SIGMOID ? sum + 1e-20f : sum;
        for (int j = 0; j < K; j++) weight[j] /= denom;
    }
    for (int j = 0; j < K; j++) weight[j] *= w->routed_scaling;
}

void om_llm_moe(om_llm_scratch *sc, om_tensor *out, const om_tensor *xn, const om_moe_weights *w) {
    om_backend *be = sc->be;
    int64_t M = xn->shape[0];
    const int E = w->n_expert, K = w->top_k;
    om_tensor router = om_tensor_rows(&sc->router, 0, M);
    om_matmul(be, &router, xn, &w->router, NULL);
    be->ops->to_host(be, sc->router_host, &router);
    for (int64_t m = 0; m < M; m++)
        om_moe_route(sc->router_host + m * E, w, sc->route_idx + m * K, sc->route_w + m * K);
    if (w->shared.gate.data || w->shared.gate_up.data) om_llm_ffn(sc, out, xn, &w->shared);
    else om_zero(be, out);
    for (int e = 0; e < E; e++) {
        int n = 0;
        for (int64_t i = 0; i < M * K; i++) {
            if (sc->route_idx[i] != e) continue;
            sc->expert_rows[n] = (int32_t)(i / K);
            sc->expert_w[n] = sc->route_w[i];
            n++;
        }
        if (!n) continue;
        om_tensor in = om_tensor_rows(&sc->moe_in, 0, n), eo = om_tensor_rows(&sc->moe_out, 0, n);
        om_get_rows(be, &in, xn, sc->expert_rows);
        om_llm_ffn(sc, &eo, &in, &w->experts[e]);
        om_add_rows_scaled(be, out, &eo, sc->expert_rows, sc->expert_w);
    }
}

void om_llm_logits(om_llm_scratch *sc, const om_tensor *x, const int8_t *want, const om_tensor *lm_head, float *out) {
    om_backend *be = sc->be;
    int64_t M = x->shape[0], n = 0;
    for (int64_t m = 0; m < M; m++)
        if (!want || want[m]) sc->rows[n++] = (int32_t)m;
    const size_t V = (size_t)lm_head->shape[0];
    for (int64_t c = 0; c < n; c += OM_LOGITS_CHUNK) {
        int64_t cn = n - c < OM_LOGITS_CHUNK ? n - c : OM_LOGITS_CHUNK;
        om_tensor in = om_tensor_rows(&sc->tmp, 0, cn);
        om_get_rows(be, &in, x, sc->rows + c);
        om_tensor lg = om_tensor_rows(&sc->logits, 0, cn);
        om_matmul(be, &lg, &in, lm_head, NULL);
        be->ops->to_host(be, out + (size_t)c * V, &lg);
    }
}

/* ---- The standard decoder stack ---- */

#define CFG "config.json"

int om_llm_config_int(const cJSON *c, const char *key, int64_t def, int required, int *out) {
    int64_t v = def;
    if (required ? om_json_int(c, CFG, key, &v) : om_json_int_or(c, CFG, key, def, &v)) return -1;
    if (v < 0 || v > (1 << 30)) return om_errorf(CFG ": field '%s' is out of range (%lld)", key, (long long)v);
    *out = (int)v;
    return 0;
}

int om_llm_model_create(om_model *m, double default_eps, om_llm_model **out) {
    const cJSON *c = m->config;
    om_model_hparams *hp = &m->hp;
    om_llm_model *lm = calloc(1, sizeof *lm);
    if (!lm) return om_errorf("out of memory");
    m->impl = lm;
    *out = lm;
    double eps;
    if (om_llm_config_int(c, "hidden_size", 0, 1, &lm->hidden) ||
        om_llm_config_int(c, "num_hidden_layers", 0, 1, &hp->n_layer) ||
        om_llm_config_int(c, "num_attention_heads", 0, 1, &lm->n_head) ||
        om_llm_config_int(c, "vocab_size", 0, 1, &hp->n_vocab) ||
        om_llm_config_int(c, "intermediate_size", 0, 0, &lm->ffn_dim) ||
        om_llm_config_int(c, "max_position_embeddings", 0, 0, &hp->n_ctx_train))
        return -1;
    if (lm->n_head == 0 || lm->hidden == 0 || hp->n_layer == 0 || hp->n_vocab == 0)
        return om_errorf(CFG ": hidden_size, num_hidden_layers, num_attention_heads and vocab_size must be positive");
    if (om_llm_config_int(c, "num_key_value_heads", lm->n_head, 0, &hp->n_kv_head) ||
        om_llm_config_int(c, "head_dim", lm->hidden / lm->n_head, 0, &hp->head_dim))
        return -1;
    if (hp->n_kv_head == 0 || lm->n_head % hp->n_kv_head)
        return om_errorf(CFG ": num_attention_heads (%d) is not a multiple of num_key_value_heads (%d)", lm->n_head,
                         hp->n_kv_head);
    if (hp->head_dim == 0 || hp->head_dim > 2 * OM_ROPE_MAX_PAIRS)
        return om_errorf(CFG ": head_dim %d is not supported", hp->head_dim);
    if (om_json_float_or(c, CFG, "rms_norm_eps", default_eps, &eps) ||
        om_json_bool_or(c, CFG, "tie_word_embeddings", 0, &lm->tied))
        return -1;
    lm->eps = (float)eps;
    lm->layers = calloc((size_t)hp->n_layer, sizeof *lm->layers);
    if (!lm->layers) return om_errorf("out of memory");
    return 0;
}

/* "<prefix>.<name>.<suffix>" with a shape check; optional parts may be absent. */
static int load_part(om_model *m, om_tensor *t, int optional, int ndim, int64_t d0, int64_t d1, const char *prefix,
                     const char *name, const char *suffix) {
    if (optional) return om_model_tensor_opt(m, t, ndim, d0, d1, "%s.%s.%s", prefix, name, suffix);
    return om_model_tensor(m, t, ndim, d0, d1, "%s.%s.%s", prefix, name, suffix);
}

int om_llm_load_outer(om_model *m, om_llm_model *lm, const char *embed, const char *norm, const char *lm_head) {
    const int64_t V = m->hp.n_vocab, H = lm->hidden;
    if (om_model_tensor(m, &lm->embed, 2, V, H, "%s", embed) || om_model_tensor(m, &lm->norm, 1, H, 0, "%s", norm))
        return -1;
    if (lm->tied) {
        lm->lm_head = lm->embed;
        return 0;
    }
    return om_model_tensor(m, &lm->lm_head, 2, V, H, "%s", lm_head);
}

int om_llm_load_attn(om_model *m, const om_llm_model *lm, om_attn_weights *a, const om_attn_names *n, unsigned flags,
                     const char *prefix) {
    const int64_t H = lm->hidden, hd = m->hp.head_dim, QD = lm->n_head * hd, KVD = m->hp.n_kv_head * hd;
    const int bias = (flags & OM_LOAD_QKV_BIAS) != 0;
    if (load_part(m, &a->wq, 0, 2, QD, H, prefix, n->q, "weight") ||
        load_part(m, &a->wk, 0, 2, KVD, H, prefix, n->k, "weight") ||
        load_part(m, &a->wv, 0, 2, KVD, H, prefix, n->v, "weight") ||
        load_part(m, &a->wo, 0, 2, H, QD, prefix, n->o, "weight"))
        return -1;
    if (bias && (load_part(m, &a->bq, 0, 1, QD, 0, prefix, n->q, "bias") ||
                 load_part(m, &a->bk, 0, 1, KVD, 0, prefix, n->k, "bias") ||
                 load_part(m, &a->bv, 0, 1, KVD, 0, prefix, n->v, "bias")))
        return -1;
    if ((flags & OM_LOAD_O_BIAS) && load_part(m, &a->bo, 0, 1, H, 0, prefix, n->o, "bias")) return -1;
    if ((flags & OM_LOAD_QK_NORM) && (load_part(m, &a->q_norm, 0, 1, hd, 0, prefix, n->q_norm, "weight") ||
                                      load_part(m, &a->k_norm, 0, 1, hd, 0, prefix, n->k_norm, "weight")))
        return -1;
    return 0;
}

int om_llm_load_ffn(om_model *m, om_ffn_weights *f, int hidden, int F, int bias, const char *prefix,
                    const char *const names[3]) {
    if (F <= 0) return om_errorf("%s: the feed-forward size is missing from " CFG, prefix);
    if (!names[1])
        return load_part(m, &f->gate_up, 0, 2, 2 * (int64_t)F, hidden, prefix, names[0], "weight") ||
               load_part(m, &f->down, 0, 2, hidden, F, prefix, names[2], "weight");
    if (load_part(m, &f->gate, 0, 2, F, hidden, prefix, names[0], "weight") ||
        load_part(m, &f->up, 0, 2, F, hidden, prefix, names[1], "weight") ||
        load_part(m, &f->down, 0, 2, hidden, F, prefix, names[2], "weight"))
        return -1;
    if (bias && (load_part(m, &f->b_gate, 0, 1, F, 0, prefix, names[0], "bias") ||
                 load_part(m, &f->b_up, 0, 1, F, 0, prefix, names[1], "bias") ||
                 load_part(m, &f->b_down, 0, 1, hidden, 0, prefix, names[2], "bias")))
        return -1;
    return 0;
}

int om_llm_load_moe(om_model *m, om_moe_weights *e, int hidden, int F, const char *prefix, const char *router,
                    const char *experts, const char *const names[3]) {
    if (e->n_expert <= 0 || e->n_expert > OM_MOE_MAX_EXPERTS || e->top_k <= 0 || e->top_k > e->n_expert)
        return om_errorf(CFG ": %d experts with %d per token is not supported (at most %d experts)", e->n_expert,
                         e->top_k, OM_MOE_MAX_EXPERTS);
    if (load_part(m, &e->router, 0, 2, e->n_expert, hidden, prefix, router, "weight")) return -1;
    e->experts = calloc((size_t)e->n_expert, sizeof *e->experts);
    if (!e->experts) return om_errorf("out of memory");
    for (int x = 0; x < e->n_expert; x++) {
        char p[256];
        snprintf(p, sizeof p, "%s.%s.%d", prefix, experts, x);
        if (om_llm_load_ffn(m, &e->experts[x], hidden, F, 0, p, names)) return -1;
    }
    return 0;
}

void om_llm_model_free(om_model *m) {
    om_llm_model *lm = m->impl;
    if (lm->layers)
        for (int i = 0; i < m->hp.n_layer; i++) free(lm->layers[i].moe.experts);
    free(lm->layers);
    free(lm);
    m->impl = NULL;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

int om_llm_context_init(om_context *ctx) {
    const om_model *m = ctx->model;
    const om_llm_model *lm = m->impl;
    om_llm_dims d = {
        .n_batch = ctx->n_batch,
        .hidden = lm->hidden,
        .q_dim = lm->n_head * m->hp.head_dim,
        .kv_dim = m->hp.n_kv_head * m->hp.head_dim,
        .n_vocab = m->hp.n_vocab,
    };
    for (int i = 0; i < m->hp.n_layer; i++) {
        const om_llm_layer *L = &lm->layers[i];
        int64_t F = om_llm_ffn_dim(&L->ffn);
        if (L->sparse) {
            F = max64(om_llm_ffn_dim(&L->moe.experts[0]), om_llm_ffn_dim(&L->moe.shared));
            d.n_expert = (int)max64(d.n_expert, L->moe.n_expert);
            d.top_k = (int)max64(d.top_k, L->moe.top_k);
        }
        d.ffn_dim = (int)max64(d.ffn_dim, F);
    }
    om_llm_scratch *sc = calloc(1, sizeof *sc);
    if (!sc) return om_errorf("out of memory");
    if (om_llm_scratch_init(sc, m->backend, &d)) {
        free(sc);
        return -1;
    }
    ctx->impl = sc;
    return 0;
}

void om_llm_context_free(om_context *ctx) {
    om_llm_scratch_free(ctx->impl);
    free(ctx->impl);
    ctx->impl = NULL;
}

int om_llm_forward(om_context *ctx, const om_batch *b, const int8_t *want, float *logits) {
    const om_model *m = ctx->model;
    const om_llm_model *lm = m->impl;
    om_llm_scratch *sc = ctx->impl;
    om_backend *be = m->backend;
    const int64_t M = b->n_tokens;
    int max_pos = 0;
    for (int64_t i = 0; i < M; i++) max_pos = b->pos[i] > max_pos ? b->pos[i] : max_pos;
    om_rope rope;
    om_rope_build(&lm->rope, max_pos, &rope);
    om_attn_shape shape = {lm->n_head, m->hp.n_kv_head, m->hp.head_dim, lm->eps, {0, 0}};
    shape.params.scale = 1.0f / sqrtf((float)m->hp.head_dim);

    om_tensor x = om_tensor_rows(&sc->x, 0, M), xn = om_tensor_rows(&sc->xn, 0, M), t = om_tensor_rows(&sc->tmp, 0, M);
    om_get_rows(be, &x, &lm->embed, b->token);
    for (int i = 0; i < m->hp.n_layer; i++) {
        const om_llm_layer *L = &lm->layers[i];
        om_rms_norm(be, &xn, &x, &L->attn_norm, lm->eps);
        shape.params.window = L->window;
        om_llm_attention(sc, &t, &xn, &L->attn, &shape, &rope, &ctx->kv, i, b->seq, b->pos);
        if (L->attn_out_norm.data) om_rms_norm(be, &t, &t, &L->attn_out_norm, lm->eps);
        om_add(be, &x, &t);
        om_rms_norm(be, &xn, &x, &L->ffn_norm, lm->eps);
        if (L->sparse) om_llm_moe(sc, &t, &xn, &L->moe);
        else om_llm_ffn(sc, &t, &xn, &L->ffn);
        if (L->ffn_out_norm.data) om_rms_norm(be, &t, &t, &L->ffn_out_norm, lm->eps);
        om_add(be, &x, &t);
    }
    om_rms_norm(be, &xn, &x, &lm->norm, lm->eps);
    om_llm_logits(sc, &xn, want, &lm->lm_head, logits);
    return 0;
}

/* Bytes of the tensors given, absent ones counting 0. */
static size_t bytes_of(const om_tensor *const *ts, size_t n) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (ts[i]->data) total += (size_t)om_tensor_nelements(ts[i]) * om_dtype_size(ts[i]->dtype);
    return total;
}

static size_t ffn_bytes(const om_ffn_weights *f) {
    const om_tensor *ts[] = {&f->gate, &f->up, &f->down, &f->gate_up, &f->b_gate, &f->b_up, &f->b_down};
    return bytes_of(ts, sizeof ts / sizeof ts[0]);
}

size_t om_llm_decode_bytes(const om_model *m) {
    const om_llm_model *lm = m->impl;
    const om_tensor *top[] = {&lm->norm, &lm->lm_head};
    size_t total = bytes_of(top, 2);
    for (int i = 0; i < m->hp.n_layer; i++) {
        const om_llm_layer *L = &lm->layers[i];
        const om_attn_weights *a = &L->attn;
        const om_tensor *ts[] = {&L->attn_norm, &L->ffn_norm, &L->attn_out_norm, &L->ffn_out_norm,
                                 &a->wq,        &a->wk,       &a->wv,            &a->wo,
                                 &a->bq,        &a->bk,       &a->bv,            &a->bo,
                                 &a->q_norm,    &a->k_norm,   &L->moe.router,    &L->moe.score_bias};
        total += bytes_of(ts, sizeof ts / sizeof ts[0]);
        /* A token reads top_k of the experts, and the shared one. */
        if (L->sparse) total += (size_t)L->moe.top_k * ffn_bytes(&L->moe.experts[0]) + ffn_bytes(&L->moe.shared);
        else total += ffn_bytes(&L->ffn);
    }
    return total;
}
