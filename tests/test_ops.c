/* Core op tests on the CPU backend: rotary tables against transformers' modeling_rope_utils
 * (tests/data/rope_reference.json, made by tools/make_rope_reference.py), and each op against
 * a plain double-precision evaluation of its definition: RoPE (partial rotary, half-rotation
 * and interleaved pairs), RMSNorm over rows and over heads, causal grouped-query attention over
 * the KV cache with and without a sliding window, SiLU-gated product, row gather from f32/f16/
 * bf16 tables, scaled scatter-add, and MoE routing (softmax with and without normalisation;
 * sigmoid with correction bias, groups and scaling). Tolerances are stated per check. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/backend.h"
#include "core/error.h"
#include "core/kv_cache.h"
#include "core/llm_blocks.h"
#include "core/rope.h"
#include "test_util.h"

static uint32_t rng = 1;
static float frand(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static void test_rope_tables(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/rope_reference.json", OM_TEST_DATA_DIR);
    char *text = om_test_read_file(path, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECKF(root != NULL, "cannot read %s", path);
    if (!root) return;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        int head_dim = (int)cJSON_GetObjectItem(c, "head_dim")->valuedouble;
        int max_pos = (int)cJSON_GetObjectItem(c, "max_pos")->valuedouble;
        const cJSON *ref = cJSON_GetObjectItem(c, "inv_freq");
        om_rope_config cfg;
        int rc = om_rope_config_parse(cJSON_GetObjectItem(c, "config"), name, head_dim, 0, &cfg);
        CHECKF(rc == 0, "%s: %s", name, om_last_error());
        if (rc) continue;
        om_rope r;
        om_rope_build(&cfg, max_pos, &r);
        CHECKF(r.n_rot / 2 == cJSON_GetArraySize(ref), "%s: %d pairs, reference %d", name, r.n_rot / 2,
               cJSON_GetArraySize(ref));
        double worst = 0;
        for (int i = 0; i < r.n_rot / 2 && i < cJSON_GetArraySize(ref); i++) {
            double want = cJSON_GetArrayItem(ref, i)->valuedouble;
            worst = fmax(worst, fabs(r.inv_freq[i] - want) / want);
        }
        /* f32 tables: a few ulps of difference from torch's pow. */
        CHECKF(worst <= 2e-6, "%s: inverse frequency relative error %.2e", name, worst);
        double af = cJSON_GetObjectItem(c, "attention_factor")->valuedouble;
        CHECKF(fabs(r.attn_factor - af) <= 1e-6 * af, "%s: attention factor %.8f, reference %.8f", name, r.attn_factor, af);
    }
    cJSON_Delete(root);

    /* An unknown rope type and a bad factor are errors that name the field. */
    cJSON *bad = cJSON_Parse("{\"rope_scaling\": {\"rope_type\": \"longrope\", \"factor\": 2}}");
    om_rope_config cfg;
    CHECK(om_rope_config_parse(bad, "config.json", 64, 0, &cfg) != 0 && strstr(om_last_error(), "longrope"));
    cJSON_Delete(bad);
    bad = cJSON_Parse("{\"rope_scaling\": {\"rope_type\": \"linear\"}}");
    CHECK(om_rope_config_parse(bad, "config.json", 64, 0, &cfg) != 0 && strstr(om_last_error(), "factor"));
    cJSON_Delete(bad);
}

static void test_rope_apply(om_backend *be) {
    const int M = 3, H = 2, hd = 12;
    for (int interleaved = 0; interleaved < 2; interleaved++) {
        om_rope r = {0};
        r.n_rot = 8; /* partial: the last 4 dims of each head pass through */
        r.interleaved = interleaved;
        r.attn_factor = 1.1f;
        for (int i = 0; i < 4; i++) r.inv_freq[i] = powf(10000.0f, -2.0f * i / 8);
        float x[3 * 2 * 12], ref[3 * 2 * 12];
        int32_t pos[3] = {0, 5, 700};
        for (int i = 0; i < M * H * hd; i++) ref[i] = x[i] = frand();
        for (int m = 0; m < M; m++)
            for (int h = 0; h < H; h++) {
                float *v = ref + (m * H + h) * hd;
                for (int i = 0; i < 4; i++) {
                    int a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + 4;
                    double ang = (double)pos[m] * r.inv_freq[i], c = cos(ang) * 1.1, s = sin(ang) * 1.1;
                    double va = v[a], vb = v[b];
                    v[a] = (float)(va * c - vb * s);
                    v[b] = (float)(vb * c + va * s);
                }
            }
        int64_t shape[3] = {M, H, hd};
        om_tensor t = om_tensor_view(x, OM_F32, 3, shape);
        om_rope_apply(be, &t, pos, &r);
        double worst = 0;
        for (int i = 0; i < M * H * hd; i++) worst = fmax(worst, fabs(x[i] - ref[i]));
        CHECKF(worst <= 1e-4, "rope (interleaved %d): max error %.2e", interleaved, worst);
    }
}

static void test_norm_and_elementwise(om_backend *be) {
    const int M = 5, D = 40;
    float x[5 * 40], y[5 * 40], g[5 * 80];
    uint16_t w[40];
    float wf[40];
    for (int i = 0; i < D; i++) {
        w[i] = om_f32_to_bf16(1.0f + 0.3f * frand());
        wf[i] = om_bf16_to_f32(w[i]);
    }
    for (int i = 0; i < M * D; i++) x[i] = 3 * frand();
    om_tensor tx = om_tensor_2d(x, OM_F32, M, D), ty = om_tensor_2d(y, OM_F32, M, D), tw = om_tensor_2d(w, OM_BF16, 1, D);
    tw.ndim = 1;
    tw.shape[0] = D;
    tw.stride[0] = 2;
    om_rms_norm(be, &ty, &tx, &tw, 1e-6f);
    double worst = 0;
    for (int m = 0; m < M; m++) {
        double ss = 0;
        for (int i = 0; i < D; i++) ss += (double)x[m * D + i] * x[m * D + i];
        double inv = 1 / sqrt(ss / D + 1e-6);
        for (int i = 0; i < D; i++) worst = fmax(worst, fabs(y[m * D + i] - wf[i] * x[m * D + i] * inv));
    }
    CHECKF(worst <= 1e-5, "rms_norm: max error %.2e", worst);

    /* silu(gate) * up with gate and up as column halves of one [M, 2D] buffer. */
    for (int i = 0; i < M * 2 * D; i++) g[i] = 4 * frand();
    om_tensor gate = om_tensor_2d(g, OM_F32, M, D), up;
    gate.stride[0] = 2 * D * 4;
    up = gate;
    up.data = g + D;
    om_silu_mul(be, &ty, &gate, &up);
    worst = 0;
    for (int m = 0; m < M; m++)
        for (int i = 0; i < D; i++) {
            double a = g[m * 2 * D + i], b = g[m * 2 * D + D + i];
            worst = fmax(worst, fabs(y[m * D + i] - a / (1 + exp(-a)) * b));
        }
    CHECKF(worst <= 1e-5, "silu_mul: max error %.2e", worst);

    /* Row gather from tables of each dtype. */
    for (int dt = 0; dt < OM_FLOAT_DTYPES; dt++) {
        uint16_t t16[4 * 40];
        float t32[4 * 40];
        for (int i = 0; i < 4 * D; i++) {
            t32[i] = frand();
            t16[i] = dt == OM_F16 ? om_f32_to_f16(t32[i]) : om_f32_to_bf16(t32[i]);
        }
        om_tensor table = om_tensor_2d(dt == OM_F32 ? (void *)t32 : (void *)t16, (om_dtype)dt, 4, D);
        int32_t ids[3] = {3, 0, 3};
        om_tensor out = om_tensor_2d(y, OM_F32, 3, D);
        om_get_rows(be, &out, &table, ids);
        int ok = 1;
        for (int m = 0; m < 3; m++)
            for (int i = 0; i < D; i++) {
                float want = dt == OM_F32   ? t32[ids[m] * D + i]
                             : dt == OM_F16 ? om_f16_to_f32(t16[ids[m] * D + i])
                                            : om_bf16_to_f32(t16[ids[m] * D + i]);
                ok &= y[m * D + i] == want;
            }
        CHECKF(ok, "get_rows from %s table", om_dtype_name((om_dtype)dt));
    }

    /* Scatter-add with repeated targets. */
    float acc[3 * 40] = {0}, src[4 * 40];
    for (int i = 0; i < 4 * D; i++) src[i] = frand();
    int32_t rows[4] = {2, 0, 2, 1};
    float scale[4] = {0.5f, -1.0f, 2.0f, 0.25f};
    om_tensor ta = om_tensor_2d(acc, OM_F32, 3, D), ts = om_tensor_2d(src, OM_F32, 4, D);
    om_add_rows_scaled(be, &ta, &ts, rows, scale);
    worst = 0;
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < D; i++) {
            double want = 0;
            for (int m = 0; m < 4; m++)
                if (rows[m] == r) want += scale[m] * src[m * D + i];
            worst = fmax(worst, fabs(acc[r * D + i] - want));
        }
    CHECKF(worst <= 1e-6, "add_rows_scaled: max error %.2e", worst);
}

static void test_attention(om_backend *be) {
    const int H = 4, KV = 2, hd = 16, n_ctx = 40, n_seq = 2;
    om_kv_cache kv;
    CHECK(om_kv_cache_init(&kv, 2, n_seq, n_ctx, KV, hd) == 0);
    /* Fill both sequences' caches of layer 1 with 30 positions. */
    const int n = 30;
    float *k = malloc(sizeof(float) * n * KV * hd), *v = malloc(sizeof(float) * n * KV * hd);
    int32_t seq[30], pos[30];
    for (int s = 0; s < n_seq; s++) {
        for (int i = 0; i < n * KV * hd; i++) {
            k[i] = frand();
            v[i] = frand();
        }
        for (int i = 0; i < n; i++) {
            seq[i] = s;
            pos[i] = i;
        }
        int64_t shape[3] = {n, KV, hd};
        om_tensor tk = om_tensor_view(k, OM_F32, 3, shape), tv = om_tensor_view(v, OM_F32, 3, shape);
        om_kv_store(be, &kv, 1, &tk, &tv, seq, pos);
    }
    /* Queries at mixed sequences and positions. */
    const int M = 4;
    int32_t qs[4] = {0, 1, 0, 1}, qp[4] = {0, 29, 17, 5};
    float q[4 * 4 * 16], out[4 * 4 * 16];
    for (int i = 0; i < M * H * hd; i++) q[i] = 2 * frand();
    for (int window = 0; window <= 6; window += 6) {
        int64_t shape[3] = {M, H, hd};
        om_tensor tq = om_tensor_view(q, OM_F32, 3, shape), to = om_tensor_view(out, OM_F32, 3, shape);
        om_attention_params p = {0.25f, window};
        om_attention(be, &to, &tq, &kv, 1, qs, qp, &p);
        double worst = 0;
        for (int m = 0; m < M; m++)
            for (int h = 0; h < H; h++) {
                int g = h / (H / KV), first = window && qp[m] - window + 1 > 0 ? qp[m] - window + 1 : 0;
                double w[40], mx = -1e300, sum = 0;
                for (int j = first; j <= qp[m]; j++) {
                    const float *kr = om_kv_k(&kv, 1, qs[m], j) + g * hd;
                    double d = 0;
                    for (int i = 0; i < hd; i++) d += (double)q[(m * H + h) * hd + i] * kr[i];
                    w[j] = d * 0.25;
                    mx = fmax(mx, w[j]);
                }
                for (int j = first; j <= qp[m]; j++) sum += w[j] = exp(w[j] - mx);
                for (int i = 0; i < hd; i++) {
                    double o = 0;
                    for (int j = first; j <= qp[m]; j++) o += w[j] / sum * om_kv_v(&kv, 1, qs[m], j)[g * hd + i];
                    worst = fmax(worst, fabs(out[(m * H + h) * hd + i] - o));
                }
            }
        CHECKF(worst <= 1e-5, "attention (window %d): max error %.2e", window, worst);
    }

    /* A ring of 10 slots holding positions 0..29 answers windowed queries near the end
     * exactly as the full cache does. */
    om_kv_cache ring;
    CHECK(om_kv_cache_init(&ring, 2, n_seq, 10, KV, hd) == 0);
    for (int s = 0; s < n_seq; s++)
        for (int i = 0; i < n; i++) {
            int64_t shape[3] = {1, KV, hd};
            om_tensor tk = om_tensor_view(om_kv_k(&kv, 1, s, i), OM_F32, 3, shape);
            om_tensor tv = om_tensor_view(om_kv_v(&kv, 1, s, i), OM_F32, 3, shape);
            int32_t ss = s, pp = i;
            om_kv_store(be, &ring, 1, &tk, &tv, &ss, &pp);
        }
    int32_t rs[2] = {0, 1}, rp[2] = {29, 25};
    float out_full[2 * 4 * 16], out_ring[2 * 4 * 16];
    int64_t qshape[3] = {2, H, hd};
    om_tensor tq = om_tensor_view(q, OM_F32, 3, qshape);
    om_tensor tf = om_tensor_view(out_full, OM_F32, 3, qshape), tr = om_tensor_view(out_ring, OM_F32, 3, qshape);
    om_attention_params p = {0.25f, 6};
    om_attention(be, &tf, &tq, &kv, 1, rs, rp, &p);
    om_attention(be, &tr, &tq, &ring, 1, rs, rp, &p);
    CHECKF(!memcmp(out_full, out_ring, sizeof out_full), "windowed attention over a ring cache differs from the full cache");
    om_kv_cache_free(&ring);
    free(k);
    free(v);
    om_kv_cache_free(&kv);
}

/* Brute force over all expert subsets would be overkill; choose by sorting instead. */
static void test_moe_route(void) {
    const int E = 8;
    float logits[8] = {0.3f, -1.2f, 2.5f, 0.9f, 2.4f, -0.1f, 1.7f, 0.0f};
    om_moe_weights w = {0};
    w.n_expert = E;
    w.top_k = 3;
    w.scoring = OM_MOE_SOFTMAX;
    w.routed_scaling = 1.0f;
    int32_t idx[3];
    float wt[3];
    for (int norm = 0; norm < 2; norm++) {
        w.norm_topk_prob = norm;
        om_moe_route(logits, &w, idx, wt);
        double z = 0;
        for (int e = 0; e < E; e++) z += exp(logits[e]);
        double p2 = exp(2.5) / z, p4 = exp(2.4) / z, p6 = exp(1.7) / z, s = norm ? p2 + p4 + p6 : 1;
        CHECK(idx[0] == 2 && idx[1] == 4 && idx[2] == 6);
        CHECKF(fabs(wt[0] - p2 / s) < 1e-6 && fabs(wt[1] - p4 / s) < 1e-6 && fabs(wt[2] - p6 / s) < 1e-6,
               "softmax routing weights (norm %d)", norm);
    }
    /* Sigmoid scores, a correction bias that changes the choice, 4 groups of 2, keep 2 groups. */
    float bias[8] = {0, 0, 0, 0, -0.5f, 0, 0, 0.9f};
    w.scoring = OM_MOE_SIGMOID;
    w.norm_topk_prob = 1;
    w.routed_scaling = 2.5f;
    w.n_group = 4;
    w.topk_group = 2;
    w.top_k = 2;
    w.score_bias = om_tensor_2d(bias, OM_F32, 1, 8);
    om_moe_route(logits, &w, idx, wt);
    /* choice = sigmoid + bias: group scores (sum of both members) decide groups {1: e2,e3} and
     * {3: e6,e7}; best two among them are e7 (sigmoid 0 + 0.9 = 1.4) and e2 (0.924). */
    double s[8];
    for (int e = 0; e < E; e++) s[e] = 1 / (1 + exp(-logits[e]));
    CHECKF(idx[0] == 7 && idx[1] == 2, "group-limited routing chose %d, %d", idx[0], idx[1]);
    double denom = s[7] + s[2] + 1e-20;
    CHECKF(fabs(wt[0] - 2.5 * s[7] / denom) < 1e-6 && fabs(wt[1] - 2.5 * s[2] / denom) < 1e-6,
           "sigmoid routing weights %f %f", wt[0], wt[1]);
}

int main(void) {
    test_rope_tables();
    test_moe_route();
    for (int threads = 1; threads <= 3; threads += 2) {
        om_backend *be = om_backend_cpu_create(threads);
        CHECK(be != NULL);
        if (!be) break;
        test_rope_apply(be);
        test_norm_and_elementwise(be);
        test_attention(be);
        om_backend_free(be);
    }
    return om_test_finish();
}
