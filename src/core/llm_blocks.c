/* Decoder-only LM building blocks (see llm_blocks.h). */
#include "core/llm_blocks.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

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
    int64_t F = w->gate_up.data ? w->gate_up.shape[0] / 2 : w->gate.shape[0];
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
        om_matmul(be, &gate, xn, &w->gate, NULL);
        om_matmul(be, &up, xn, &w->up, NULL);
    }
    om_tensor act = om_tensor_rows(&sc->act, 0, M);
    act.shape[1] = F;
    act.stride[0] = F * (int64_t)sizeof(float);
    om_silu_mul(be, &act, &gate, &up);
    om_matmul(be, out, &act, &w->down, NULL);
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
        /* Keep the topk_group groups whose two best experts score highest. */
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
                for (int e = g * per; e < (g + 1) * per; e++) choice[e] = 0.0f;
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
