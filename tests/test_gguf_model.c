/* Tests for loading GGUF checkpoints into the model families (src/models/gguf_adapter.c and the
 * GGUF paths of core/model.c and core/completion.c):
 *   - tiny random models of each architecture (llama, qwen2, qwen3, qwen3moe, glm4, glm4moe) are
 *     written twice from the same weights, as a Hugging Face folder (config.json + safetensors)
 *     and as a GGUF file laid out as llama.cpp's converter lays it out (llama.cpp's names,
 *     dimensions innermost first, experts stacked, Llama's q/k rows permuted for its rope, Llama
 *     3's rope scaling as rope_freqs); both go through om_model_load and must give the same
 *     logits. A GGUF whose Llama q/k rows were left unpermuted must not (the rope override is
 *     what makes the permuted rows right);
 *   - the tokenizer and chat template of a small GGUF vocabulary through om_text_model_load;
 *   - a SentencePiece vocabulary (Llama 2's, written into a GGUF as llama.cpp does) against
 *     transformers (tests/data/tokenizers/llama2_gguf_reference.json), which there also equals
 *     Llama 2's own tokenizer.json;
 *   - the real SmolLM2-135M-Instruct GGUF, when present (OMINIX_SMOLLM2_GGUF, or the default-model
 *     cache of scripts/fetch-default-model.sh): its config, tensor names and dtypes, and its
 *     tokenizer's ids on the tokenizer corpus against transformers
 *     (tests/data/tokenizers/smollm2_gguf_reference.json); skipped with a message otherwise;
 *   - bad files: architectures, metadata and tensors the adapter must refuse, with errors naming
 *     the file and the key or tensor. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "core/completion.h"
#include "core/error.h"
#include "core/gguf.h"
#include "core/model.h"
#include "core/rope.h"
#include "core/tensor.h"
#include "core/tokenizer.h"
#include "gguf_write.h"
#include "models/gguf_adapter.h"
#include "test_util.h"

/* om_last_error() never returns NULL. */
static int contains(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

/* ---- tiny models ---- */

enum { V = 40, H = 32, NL = 2, NH = 2, NKV = 1, HD = 16, F = 24, E = 4, TOPK = 2, EF = 8 };

typedef struct spec {
    const char *arch;       /* general.architecture */
    const char *model_type; /* config.json */
    int tied, bias, o_bias, qk_norm, f16, llama3;
    int permute;            /* llama: permute q/k rows as llama.cpp's converter does */
    int moe;                /* qwen3moe: every layer; glm4moe: layers after the first */
    int glm;                /* 1: GLM-4 (fused gate_up, output norms), 2: GLM-4-MoE, 3: Mixtral (Llama's
                               experts: block_sparse_moe, w1/w3/w2) */
    int n_rot;
    double theta;
} spec;

typedef struct hf_tensor {
    char name[128];
    int ndim;
    int64_t shape[2];
    float *data;
} hf_tensor;

typedef struct hf_model {
    hf_tensor t[256];
    int n;
} hf_model;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) & 0xffffff) / (float)(1 << 24) * 2.0f - 1.0f;
}

/* A tensor of values base + scale * uniform(-1, 1), rounded to f16 when the model is f16 so
 * that both files hold exactly the same numbers. */
static void add(hf_model *m, const spec *s, int ndim, int64_t d0, int64_t d1, float base, float scale, const char *fmt,
                ...) {
    hf_tensor *t = &m->t[m->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim == 2 ? d1 : 1;
    size_t n = (size_t)(d0 * t->shape[1]);
    t->data = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        float v = base + scale * frand();
        t->data[i] = s->f16 ? om_f16_to_f32(om_f32_to_f16(v)) : v;
    }
}

static const hf_tensor *find(const hf_model *m, const char *name) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->t[i].name, name)) return &m->t[i];
    return NULL;
}

static void free_model(hf_model *m) {
    for (int i = 0; i < m->n; i++) free(m->t[i].data);
    m->n = 0;
}

static void ffn(hf_model *m, const spec *s, const char *p, int f) {
    add(m, s, 2, f, H, 0, 0.3f, "%s.gate_proj.weight", p);
    add(m, s, 2, f, H, 0, 0.3f, "%s.up_proj.weight", p);
    add(m, s, 2, H, f, 0, 0.3f, "%s.down_proj.weight", p);
}

static int sparse_layer(const spec *s, int l) { return s->moe && (s->glm != 2 || l >= 1); }

static void build(hf_model *m, const spec *s) {
    add(m, s, 2, V, H, 0, 1.0f, "model.embed_tokens.weight");
    add(m, s, 1, H, 0, 1, 0.2f, "model.norm.weight");
    if (!s->tied) add(m, s, 2, V, H, 0, 0.3f, "lm_head.weight");
    for (int l = 0; l < NL; l++) {
        char p[64], q[96];
        snprintf(p, sizeof p, "model.layers.%d", l);
        add(m, s, 1, H, 0, 1, 0.2f, "%s.input_layernorm.weight", p);
        add(m, s, 1, H, 0, 1, 0.2f, "%s.post_attention_layernorm.weight", p);
        add(m, s, 2, NH * HD, H, 0, 0.4f, "%s.self_attn.q_proj.weight", p);
        add(m, s, 2, NKV * HD, H, 0, 0.4f, "%s.self_attn.k_proj.weight", p);
        add(m, s, 2, NKV * HD, H, 0, 0.4f, "%s.self_attn.v_proj.weight", p);
        add(m, s, 2, H, NH * HD, 0, 0.3f, "%s.self_attn.o_proj.weight", p);
        if (s->bias) {
            add(m, s, 1, NH * HD, 0, 0, 0.3f, "%s.self_attn.q_proj.bias", p);
            add(m, s, 1, NKV * HD, 0, 0, 0.3f, "%s.self_attn.k_proj.bias", p);
            add(m, s, 1, NKV * HD, 0, 0, 0.3f, "%s.self_attn.v_proj.bias", p);
        }
        if (s->o_bias) add(m, s, 1, H, 0, 0, 0.3f, "%s.self_attn.o_proj.bias", p);
        if (s->qk_norm) {
            add(m, s, 1, HD, 0, 1, 0.2f, "%s.self_attn.q_norm.weight", p);
            add(m, s, 1, HD, 0, 1, 0.2f, "%s.self_attn.k_norm.weight", p);
        }
        snprintf(q, sizeof q, "%s.mlp", p);
        if (s->glm == 1) {
            add(m, s, 1, H, 0, 1, 0.2f, "%s.post_self_attn_layernorm.weight", p);
            add(m, s, 1, H, 0, 1, 0.2f, "%s.post_mlp_layernorm.weight", p);
            add(m, s, 2, 2 * F, H, 0, 0.3f, "%s.mlp.gate_up_proj.weight", p);
            add(m, s, 2, H, F, 0, 0.3f, "%s.mlp.down_proj.weight", p);
        } else if (s->glm == 3) {
            add(m, s, 2, E, H, 0, 0.5f, "%s.block_sparse_moe.gate.weight", p);
            for (int e = 0; e < E; e++) {
                add(m, s, 2, F, H, 0, 0.3f, "%s.block_sparse_moe.experts.%d.w1.weight", p, e);
                add(m, s, 2, F, H, 0, 0.3f, "%s.block_sparse_moe.experts.%d.w3.weight", p, e);
                add(m, s, 2, H, F, 0, 0.3f, "%s.block_sparse_moe.experts.%d.w2.weight", p, e);
            }
        } else if (sparse_layer(s, l)) {
            add(m, s, 2, E, H, 0, 0.5f, "%s.mlp.gate.weight", p);
            for (int e = 0; e < E; e++) {
                char ep[128];
                snprintf(ep, sizeof ep, "%s.mlp.experts.%d", p, e);
                ffn(m, s, ep, EF);
            }
            if (s->glm == 2) {
                add(m, s, 1, E, 0, 0, 0.5f, "%s.mlp.gate.e_score_correction_bias", p);
                snprintf(q, sizeof q, "%s.mlp.shared_experts", p);
                ffn(m, s, q, EF);
            }
        } else {
            ffn(m, s, q, F);
        }
    }
}

/* Llama 3's divisors as llama.cpp's converter computes them (LlamaModel.generate_extra_tensors). */
static void llama3_divisors(const spec *s, float *out) {
    const double factor = 8, low = 1, high = 4, orig = 256;
    for (int i = 0; i < s->n_rot / 2; i++) {
        double f = 1.0 / pow(s->theta, 2.0 * i / s->n_rot), wl = 2 * M_PI / f;
        if (wl < orig / high) out[i] = 1;
        else if (wl > orig / low) out[i] = (float)factor;
        else {
            double sm = (orig / wl - low) / (high - low);
            out[i] = (float)(1 / ((1 - sm) / factor + sm));
        }
    }
}

static void write_config(const spec *s, const char *dir) {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "model_type", s->model_type);
    cJSON_AddNumberToObject(c, "vocab_size", V);
    cJSON_AddNumberToObject(c, "hidden_size", H);
    cJSON_AddNumberToObject(c, "num_hidden_layers", NL);
    cJSON_AddNumberToObject(c, "num_attention_heads", NH);
    cJSON_AddNumberToObject(c, "num_key_value_heads", NKV);
    cJSON_AddNumberToObject(c, "head_dim", HD);
    cJSON_AddNumberToObject(c, "intermediate_size", F);
    cJSON_AddNumberToObject(c, "max_position_embeddings", 256);
    cJSON_AddNumberToObject(c, "rms_norm_eps", 1e-5);
    cJSON_AddNumberToObject(c, "rope_theta", s->theta);
    cJSON_AddNumberToObject(c, "partial_rotary_factor", (double)s->n_rot / HD);
    cJSON_AddBoolToObject(c, "tie_word_embeddings", s->tied);
    cJSON_AddBoolToObject(c, "attention_bias", s->bias);
    cJSON_AddNumberToObject(c, "eos_token_id", 2);
    if (s->llama3) {
        cJSON *r = cJSON_AddObjectToObject(c, "rope_scaling");
        cJSON_AddStringToObject(r, "rope_type", "llama3");
        cJSON_AddNumberToObject(r, "factor", 8);
        cJSON_AddNumberToObject(r, "low_freq_factor", 1);
        cJSON_AddNumberToObject(r, "high_freq_factor", 4);
        cJSON_AddNumberToObject(r, "original_max_position_embeddings", 256);
    }
    if (s->glm == 3) {
        cJSON_AddNumberToObject(c, "num_local_experts", E);
        cJSON_AddNumberToObject(c, "num_experts_per_tok", TOPK);
    } else if (s->moe && s->glm != 2) {
        cJSON_AddNumberToObject(c, "num_experts", E);
        cJSON_AddNumberToObject(c, "num_experts_per_tok", TOPK);
        cJSON_AddNumberToObject(c, "moe_intermediate_size", EF);
        cJSON_AddBoolToObject(c, "norm_topk_prob", 1);
    }
    if (s->glm == 2) {
        cJSON_AddNumberToObject(c, "n_routed_experts", E);
        cJSON_AddNumberToObject(c, "num_experts_per_tok", TOPK);
        cJSON_AddNumberToObject(c, "moe_intermediate_size", EF);
        cJSON_AddNumberToObject(c, "n_shared_experts", 1);
        cJSON_AddNumberToObject(c, "first_k_dense_replace", 1);
        cJSON_AddNumberToObject(c, "routed_scaling_factor", 1.5);
        cJSON_AddBoolToObject(c, "norm_topk_prob", 1);
        cJSON_AddBoolToObject(c, "use_qk_norm", s->qk_norm);
    }
    char *text = cJSON_Print(c);
    char path[4400];
    snprintf(path, sizeof path, "%s/config.json", dir);
    om_test_write_file(path, text, strlen(text));
    free(text);
    cJSON_Delete(c);
}

/* model.safetensors: the header padded to 8 bytes, then the data in order. */
static void write_safetensors(const hf_model *m, const spec *s, const char *dir) {
    gw_buf hdr = {0}, data = {0};
    gw_put(&hdr, "{", 1);
    for (int i = 0; i < m->n; i++) {
        const hf_tensor *t = &m->t[i];
        size_t n = (size_t)(t->shape[0] * t->shape[1]), begin = data.n;
        for (size_t k = 0; k < n; k++) {
            if (s->f16) {
                uint16_t h = om_f32_to_f16(t->data[k]);
                gw_put(&data, &h, 2);
            } else {
                gw_put(&data, &t->data[k], 4);
            }
        }
        char e[400];
        int len = t->ndim == 1 ? snprintf(e, sizeof e, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[%zu,%zu]}",
                                          i ? "," : "", t->name, s->f16 ? "F16" : "F32", (long long)t->shape[0], begin, data.n)
                               : snprintf(e, sizeof e,
                                          "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%zu,%zu]}",
                                          i ? "," : "", t->name, s->f16 ? "F16" : "F32", (long long)t->shape[0],
                                          (long long)t->shape[1], begin, data.n);
        gw_put(&hdr, e, (size_t)len);
    }
    gw_put(&hdr, "}", 1);
    while (hdr.n % 8) gw_put(&hdr, " ", 1);
    gw_buf file = {0};
    gw_le(&file, hdr.n, 8);
    gw_put(&file, hdr.p, hdr.n);
    gw_put(&file, data.p, data.n);
    char path[4400];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    om_test_write_file(path, file.p, file.n);
    free(hdr.p);
    free(data.p);
    free(file.p);
}

/* llama.cpp's name for a Hugging Face layer tensor (gguf-py's tensor_mapping.py for these
 * architectures), written out here independently of the adapter's table. */
static int gguf_name(const spec *s, const char *hf, char *out, size_t size) {
    static const char *const map[][2] = {
        {"input_layernorm.weight", "attn_norm.weight"},
        {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.k_proj.weight", "attn_k.weight"},
        {"self_attn.v_proj.weight", "attn_v.weight"},
        {"self_attn.q_proj.bias", "attn_q.bias"},
        {"self_attn.k_proj.bias", "attn_k.bias"},
        {"self_attn.v_proj.bias", "attn_v.bias"},
        {"self_attn.o_proj.weight", "attn_output.weight"},
        {"self_attn.o_proj.bias", "attn_output.bias"},
        {"self_attn.q_norm.weight", "attn_q_norm.weight"},
        {"self_attn.k_norm.weight", "attn_k_norm.weight"},
        {"mlp.gate_proj.weight", "ffn_gate.weight"},
        {"mlp.up_proj.weight", "ffn_up.weight"},
        {"mlp.down_proj.weight", "ffn_down.weight"},
        {"mlp.gate_up_proj.weight", "ffn_up.weight"},
        {"post_self_attn_layernorm.weight", "post_attention_norm.weight"},
        {"post_mlp_layernorm.weight", "post_ffw_norm.weight"},
        {"mlp.gate.weight", "ffn_gate_inp.weight"},
        {"block_sparse_moe.gate.weight", "ffn_gate_inp.weight"},
        {"mlp.gate.e_score_correction_bias", "exp_probs_b.bias"},
        {"mlp.shared_experts.gate_proj.weight", "ffn_gate_shexp.weight"},
        {"mlp.shared_experts.up_proj.weight", "ffn_up_shexp.weight"},
        {"mlp.shared_experts.down_proj.weight", "ffn_down_shexp.weight"},
    };
    if (!strcmp(hf, "model.embed_tokens.weight")) return snprintf(out, size, "token_embd.weight"), 1;
    if (!strcmp(hf, "model.norm.weight")) return snprintf(out, size, "output_norm.weight"), 1;
    if (!strcmp(hf, "lm_head.weight")) return snprintf(out, size, "output.weight"), 1;
    int l, pos = 0;
    if (sscanf(hf, "model.layers.%d.%n", &l, &pos) != 1 || !pos) return 0;
    const char *rest = hf + pos;
    if (!strcmp(rest, "post_attention_layernorm.weight"))
        return snprintf(out, size, "blk.%d.%s", l, s->glm == 2 ? "post_attention_norm.weight" : "ffn_norm.weight"), 1;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(rest, map[i][0])) return snprintf(out, size, "blk.%d.%s", l, map[i][1]), 1;
    return 0;
}

/* LlamaModel.permute: rows of each head reordered from (half, i) to (i, half). */
static void permute_rows(const float *src, float *dst, int64_t rows, int64_t cols) {
    int64_t heads = rows / HD;
    for (int64_t h = 0; h < heads; h++)
        for (int i = 0; i < HD / 2; i++)
            for (int j = 0; j < 2; j++)
                memcpy(dst + (h * HD + 2 * i + j) * cols, src + (h * HD + j * (HD / 2) + i) * cols,
                       (size_t)cols * sizeof(float));
}

static void put_tensor(gguf_w *w, const spec *s, const char *name, int n_dims, const int64_t *ne, const float *v,
                       size_t n) {
    if (s->f16 && n_dims > 1) {
        uint16_t *h = malloc(n * 2);
        for (size_t i = 0; i < n; i++) h[i] = om_f32_to_f16(v[i]);
        gw_tensor(w, name, 1, n_dims, ne, h, n * 2);
        free(h);
    } else {
        /* llama.cpp keeps 1-D tensors (norms, biases) in f32 */
        gw_tensor(w, name, 0, n_dims, ne, v, n * 4);
    }
}

/* The small byte-level vocabulary of the llama model's tokenizer. */
static const char *const vocab[V] = {
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "a", "b", "c", "d", "e", "f", "g", "h", "i", "l", "m", "n", "o",
    "r", "s", "t", "u", "w", "y", "\xc4\xa0", "\xc4\x8a", "ab", "\xc4\xa0" "a", "\xc4\xa0" "ab", "1", "2", "3",
    "<think>", "</think>", "!", "?", ",", ".", "he", "ll", "hell", "hello",
};

static void write_gguf(const hf_model *m, const spec *s, const char *path, int tokenizer) {
    gguf_w w;
    gw_init(&w);
    char k[128];
#define KEY(suffix) (snprintf(k, sizeof k, "%s.%s", s->arch, suffix), k)
    gw_kv_str(&w, "general.architecture", s->arch);
    gw_kv_u32(&w, KEY("block_count"), NL);
    gw_kv_u32(&w, KEY("context_length"), 256);
    gw_kv_u32(&w, KEY("embedding_length"), H);
    gw_kv_u32(&w, KEY("feed_forward_length"), F);
    gw_kv_u32(&w, KEY("attention.head_count"), NH);
    gw_kv_u32(&w, KEY("attention.head_count_kv"), NKV);
    gw_kv_u32(&w, KEY("attention.key_length"), HD);
    gw_kv_u32(&w, KEY("attention.value_length"), HD);
    gw_kv_f32(&w, KEY("rope.freq_base"), (float)s->theta);
    gw_kv_u32(&w, KEY("rope.dimension_count"), (uint32_t)s->n_rot);
    gw_kv_f32(&w, KEY("attention.layer_norm_rms_epsilon"), 1e-5f);
    if (s->moe) {
        gw_kv_u32(&w, KEY("expert_count"), E);
        gw_kv_u32(&w, KEY("expert_used_count"), TOPK);
        if (s->glm != 3) gw_kv_u32(&w, KEY("expert_feed_forward_length"), EF);
    }
    if (s->glm == 2) {
        gw_kv_u32(&w, KEY("expert_shared_count"), 1);
        gw_kv_u32(&w, KEY("leading_dense_block_count"), 1);
        gw_kv_f32(&w, KEY("expert_weights_scale"), 1.5f);
        gw_kv_bool(&w, KEY("expert_weights_norm"), 1);
        gw_kv_u32(&w, KEY("expert_gating_func"), 2);
    }
#undef KEY
    gw_kv_u32(&w, "tokenizer.ggml.eos_token_id", 2);
    if (tokenizer) {
        gw_kv_str(&w, "tokenizer.ggml.model", "gpt2");
        gw_kv_str(&w, "tokenizer.ggml.pre", "smollm");
        gw_kv_arr_str(&w, "tokenizer.ggml.tokens", vocab, V);
        int32_t types[V];
        for (int i = 0; i < V; i++) types[i] = i < 3 ? 3 : (i == 30 || i == 31) ? 4 : 1;
        gw_kv_arr_i32(&w, "tokenizer.ggml.token_type", types, V);
        const char *merges[] = {"\xc4\xa0 a", "a b", "\xc4\xa0" "a b", "h e", "l l", "he ll", "hell o"};
        gw_kv_arr_str(&w, "tokenizer.ggml.merges", merges, sizeof merges / sizeof merges[0]);
        gw_kv_u32(&w, "tokenizer.ggml.bos_token_id", 1);
        gw_kv_u32(&w, "tokenizer.ggml.padding_token_id", 2);
        gw_kv_bool(&w, "tokenizer.ggml.add_bos_token", 0);
        gw_kv_str(&w, "tokenizer.chat_template",
                  "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                  "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}");
    }
    if (s->llama3) {
        float d[HD / 2];
        llama3_divisors(s, d);
        gw_tensor(&w, "rope_freqs.weight", 0, 1, (int64_t[]){s->n_rot / 2}, d, (size_t)(s->n_rot / 2) * 4);
    }
    for (int i = 0; i < m->n; i++) {
        const hf_tensor *t = &m->t[i];
        char name[128];
        size_t n = (size_t)(t->shape[0] * t->shape[1]);
        int l, e, pos = 0;
        char which[16];
        /* Experts: expert 0 writes the stack of all of them, [E, out, in]. Mixtral's w1, w3 and
         * w2 are gate, up and down. */
        int mixtral = 0;
        if ((sscanf(t->name, "model.layers.%d.mlp.experts.%d.%15[a-z]_proj.weight%n", &l, &e, which, &pos) == 3 &&
             pos) ||
            (pos = 0, mixtral = 1,
             sscanf(t->name, "model.layers.%d.block_sparse_moe.experts.%d.%15[a-z0-9].weight%n", &l, &e, which, &pos) == 3 &&
                 pos)) {
            if (e != 0) continue;
            float *stack = malloc(n * E * sizeof(float));
            for (int x = 0; x < E; x++) {
                char en[128];
                if (mixtral) snprintf(en, sizeof en, "model.layers.%d.block_sparse_moe.experts.%d.%s.weight", l, x, which);
                else snprintf(en, sizeof en, "model.layers.%d.mlp.experts.%d.%s_proj.weight", l, x, which);
                memcpy(stack + (size_t)x * n, find(m, en)->data, n * sizeof(float));
            }
            if (mixtral) snprintf(which, sizeof which, "%s", !strcmp(which, "w1") ? "gate" : !strcmp(which, "w3") ? "up" : "down");
            snprintf(name, sizeof name, "blk.%d.ffn_%s_exps.weight", l, which);
            put_tensor(&w, s, name, 3, (int64_t[]){t->shape[1], t->shape[0], E}, stack, n * E);
            free(stack);
            continue;
        }
        if (!gguf_name(s, t->name, name, sizeof name)) {
            fprintf(stderr, "no GGUF name for %s\n", t->name);
            abort();
        }
        const float *v = t->data;
        float *perm = NULL;
        if (s->permute && (strstr(t->name, "q_proj") || strstr(t->name, "k_proj"))) {
            perm = malloc(n * sizeof(float));
            permute_rows(t->data, perm, t->shape[0], t->ndim == 2 ? t->shape[1] : 1);
            v = perm;
        }
        if (t->ndim == 1) put_tensor(&w, s, name, 1, (int64_t[]){t->shape[0]}, v, n);
        else put_tensor(&w, s, name, 2, (int64_t[]){t->shape[1], t->shape[0]}, v, n);
        free(perm);
    }
    size_t len;
    uint8_t *f = gw_finish(&w, &len);
    om_test_write_file(path, f, len);
    free(f);
    gw_free(&w);
}

/* Logits of every position of a fixed token sequence. */
static float *run(const char *path, int *ok) {
    static const int32_t tokens[] = {3, 7, 1, 20, 33, 5, 9, 12, 0, 39};
    enum { N = sizeof tokens / sizeof tokens[0] };
    om_model *m = NULL;
    om_context *c = NULL;
    float *out = NULL;
    *ok = 0;
    om_model_params mp = om_model_default_params();
    mp.n_threads = 1;
    if (om_model_load(path, &mp, &m)) {
        fprintf(stderr, "loading %s: %s\n", path, om_last_error());
        return NULL;
    }
    om_context_params cp = om_context_default_params();
    cp.n_ctx = 64;
    if (om_context_create(m, &cp, &c)) goto done;
    int32_t seq[N], pos[N];
    int8_t want[N];
    for (int i = 0; i < N; i++) seq[i] = 0, pos[i] = i, want[i] = 1;
    om_batch b = {N, tokens, seq, pos, want};
    if (om_decode(c, &b)) {
        fprintf(stderr, "decode %s: %s\n", path, om_last_error());
        goto done;
    }
    out = malloc(N * V * sizeof(float));
    for (int i = 0; i < N; i++) memcpy(out + i * V, om_get_logits(c, i), V * sizeof(float));
    *ok = N * V;
done:
    om_context_free(c);
    om_model_free(m);
    return out;
}

static double max_diff(const float *a, const float *b, int n) {
    double d = 0;
    for (int i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static const char *tmp;

/* Writes the model both ways and compares; returns the largest logit difference (-1 on failure). */
static double compare(const spec *s, const char *label) {
    hf_model *m = calloc(1, sizeof *m);
    build(m, s);
    char dir[4200], gguf[4300];
    snprintf(dir, sizeof dir, "%s/%s", tmp, label);
    mkdir(dir, 0755);
    write_config(s, dir);
    write_safetensors(m, s, dir);
    snprintf(gguf, sizeof gguf, "%s/%s.gguf", tmp, label);
    write_gguf(m, s, gguf, !strcmp(s->arch, "llama"));
    free_model(m);
    free(m);
    int na, nb;
    float *a = run(dir, &na), *b = run(gguf, &nb);
    double d = -1;
    if (a && b && na == nb) {
        d = max_diff(a, b, na);
        double scale = 0;
        for (int i = 0; i < na; i++) scale = fmax(scale, fabs(a[i]));
        /* logits that are all ~0 would make any comparison pass */
        CHECKF(scale > 0.5, "%s: logits too small to compare (max %g)", label, scale);
    }
    free(a);
    free(b);
    return d;
}

static void test_logits(void) {
    const spec specs[] = {
        /* arch, model_type, tied, bias, o_bias, qk_norm, f16, llama3, permute, moe, glm, n_rot, theta */
        {"llama", "llama", 1, 0, 0, 0, 0, 0, 1, 0, 0, HD, 10000},
        {"llama", "llama", 0, 1, 1, 0, 1, 1, 1, 0, 0, HD, 100},
        {"llama", "mixtral", 0, 0, 0, 0, 0, 0, 1, 1, 3, HD, 10000},
        {"qwen2", "qwen2", 1, 1, 0, 0, 0, 0, 0, 0, 0, HD, 10000},
        {"qwen3", "qwen3", 0, 0, 0, 1, 1, 0, 0, 0, 0, HD, 1000000},
        {"qwen3moe", "qwen3_moe", 0, 0, 0, 1, 0, 0, 0, 1, 0, HD, 10000},
        {"glm4", "glm4", 0, 1, 0, 0, 0, 0, 0, 0, 1, HD / 2, 10000},
        {"glm4moe", "glm4_moe", 0, 1, 0, 1, 0, 0, 0, 1, 2, HD / 2, 10000},
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "%s_%zu", specs[i].model_type, i);
        double d = compare(&specs[i], label);
        printf("%-12s GGUF vs Hugging Face: max logit difference %.3g\n", label, d);
        /* The same weights; only the order of additions in q.k differs for permuted Llama rows. */
        CHECKF(d >= 0 && d < 1e-4, "%s: GGUF and Hugging Face logits differ by %g", label, d);
    }
    /* Negative control: Llama rows left in Hugging Face's order, read as llama.cpp's. */
    spec bad = specs[0];
    bad.permute = 0;
    double d = compare(&bad, "llama_unpermuted");
    printf("%-12s (negative control) max logit difference %.3g\n", "llama_unpermuted", d);
    CHECKF(d > 1e-2, "unpermuted Llama q/k rows gave the same logits (difference %g): the rope override is untested", d);
}

/* The llama3 rope parameters recovered from rope_freqs, and the config of the Llama model. */
static void test_config(void) {
    spec s = {"llama", "llama", 0, 1, 1, 0, 0, 1, 1, 0, 0, HD, 100};
    hf_model *m = calloc(1, sizeof *m);
    build(m, &s);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.gguf", tmp);
    write_gguf(m, &s, path, 1);
    free_model(m);
    free(m);
    om_gguf *g = NULL;
    CHECKF(om_gguf_open(path, &g) == 0, "%s", om_last_error());
    cJSON *c = NULL;
    CHECKF(g && om_gguf_to_config(g, &c) == 0, "%s", om_last_error());
    if (c) {
        const cJSON *r = cJSON_GetObjectItem(c, "rope_scaling");
        CHECK(r && !strcmp(cJSON_GetObjectItem(r, "rope_type")->valuestring, "llama3"));
        CHECK(r && fabs(cJSON_GetObjectItem(r, "factor")->valuedouble - 8) < 1e-5);
        CHECK(r && fabs(cJSON_GetObjectItem(r, "low_freq_factor")->valuedouble - 1) < 1e-6);
        CHECK(r && fabs(cJSON_GetObjectItem(r, "high_freq_factor")->valuedouble - 4) < 1e-3);
        CHECK(r && cJSON_GetObjectItem(r, "original_max_position_embeddings")->valuedouble == 256);
        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(c, OM_ROPE_INTERLEAVED_KEY)));
        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(c, "attention_bias")));
        CHECK(cJSON_IsFalse(cJSON_GetObjectItem(c, "tie_word_embeddings")));
        CHECK(cJSON_GetObjectItem(c, "vocab_size")->valuedouble == V);
        CHECK(cJSON_GetObjectItem(c, "num_hidden_layers")->valuedouble == NL);
        CHECK(fabs(cJSON_GetObjectItem(c, "rms_norm_eps")->valuedouble - 1e-5) < 1e-10);
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(c, "eos_token_id")) == 1);
    }
    cJSON_Delete(c);
    om_gguf_free(g);
}

/* The tokenizer and template of the small vocabulary, through om_text_model_load. */
static void test_text_model(void) {
    char path[4200];
    snprintf(path, sizeof path, "%s/llama_0.gguf", tmp); /* written by test_logits */
    om_text_model *tm = NULL;
    om_model_params mp = om_model_default_params();
    mp.n_threads = 1;
    CHECKF(om_text_model_load(path, &mp, &tm) == 0, "%s", om_last_error());
    if (!tm) return;
    CHECK(tm->tok && tm->tmpl && tm->thinks);
    struct {
        const char *text;
        int32_t ids[8];
        int n;
    } cases[] = {
        {"ab", {24}, 1},
        {" ab", {26}, 1},
        {"a b", {3, 22, 4}, 3},
        {"hello!", {39, 32}, 2},
        {"<|im_start|>ab<|im_end|>", {1, 24, 2}, 3},
        {"123", {27, 28, 29}, 3},   /* digits one by one: smollm's pre-tokenizer */
        {" 12", {22, 27, 28}, 3},
        {"<think>a</think>", {30, 3, 31}, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        int rc = om_tokenizer_encode(tm->tok, cases[i].text, strlen(cases[i].text), 0, &ids, &n);
        int same = rc == 0 && n == (size_t)cases[i].n && !memcmp(ids, cases[i].ids, n * sizeof *ids);
        CHECKF(same, "'%s': %zu ids, first %d", cases[i].text, n, n ? ids[0] : -1);
        free(ids);
    }
    CHECK(om_tokenizer_bos_id(tm->tok) == 1 && om_tokenizer_eos_id(tm->tok) == 2 && om_tokenizer_pad_id(tm->tok) == 2);
    CHECK(om_tokenizer_is_special(tm->tok, 0) && !om_tokenizer_is_special(tm->tok, 30));
    cJSON *msgs = cJSON_Parse("[{\"role\":\"user\",\"content\":\"hello\"}]");
    char *prompt = om_text_model_render(tm, msgs, NULL, -1);
    CHECKF(prompt && !strcmp(prompt, "<|im_start|><|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"),
           "prompt: %s", prompt ? prompt : om_last_error());
    free(prompt);
    cJSON_Delete(msgs);
    /* end of sequence from the file */
    const int32_t *eos;
    int n_eos = om_model_eos_ids(tm->model, &eos);
    CHECK(n_eos == 1 && eos[0] == 2);
    om_text_model_free(tm);
}

/* ---- the real SmolLM2 file ---- */

static const char *smollm2_path(char *buf, size_t size) {
    const char *env = getenv("OMINIX_SMOLLM2_GGUF");
    if (env && *env) return env;
    const char *cache = getenv("OMINIX_CACHE"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (cache && *cache) snprintf(buf, size, "%s/SmolLM2-135M-Instruct.Q4_1.gguf", cache);
    else if (xdg && *xdg) snprintf(buf, size, "%s/ominix/SmolLM2-135M-Instruct.Q4_1.gguf", xdg);
    else snprintf(buf, size, "%s/.cache/ominix/SmolLM2-135M-Instruct.Q4_1.gguf", home ? home : "");
    return buf;
}

/* The tokenizer made from a GGUF (tokenizer.json and tokenizer_config.json as cJSON) against the
 * reference ids of tools/make_gguf_tokenizer_reference.py on the tokenizer corpus. */
static void check_tokenizer(const cJSON *tj, const cJSON *tc, const char *reference) {
    char ref_path[4200];
    snprintf(ref_path, sizeof ref_path, "%s/tokenizers/%s", OM_TEST_DATA_DIR, reference);
    char *text = om_test_read_file(ref_path, NULL);
    cJSON *ref = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECKF(ref != NULL, "%s", ref_path);
    om_tokenizer *tok = NULL;
    if (tj && tc) {
        char *js = cJSON_PrintUnformatted(tj), *cs = cJSON_PrintUnformatted(tc);
        CHECKF(om_tokenizer_load_buffer(js, strlen(js), cs, strlen(cs), &tok) == 0, "%s", om_last_error());
        free(js);
        free(cs);
    }
    if (tok && ref) {
        int n_cases = 0, bad = 0;
        const cJSON *cs;
        cJSON_ArrayForEach(cs, cJSON_GetObjectItem(ref, "cases")) {
            const char *s = cJSON_GetObjectItem(cs, "text")->valuestring;
            static const char *const keys[2] = {"ids", "ids_special"};
            for (int k = 0; k < 2; k++) {
                const cJSON *want = cJSON_GetObjectItem(cs, keys[k]);
                int32_t *ids = NULL;
                size_t n = 0;
                int same = om_tokenizer_encode(tok, s, strlen(s), k, &ids, &n) == 0 &&
                           n == (size_t)cJSON_GetArraySize(want);
                for (size_t i = 0; same && i < n; i++) same = ids[i] == cJSON_GetArrayItem(want, (int)i)->valueint;
                if (!same && bad++ < 5) fprintf(stderr, "%s: %s differs on '%s'\n", reference, keys[k], s);
                if (k == 0 && same) {
                    char *dec = NULL;
                    same = om_tokenizer_decode(tok, ids, n, 0, &dec, NULL) == 0 &&
                           !strcmp(dec, cJSON_GetObjectItem(cs, "decoded")->valuestring);
                    if (!same && bad++ < 5) fprintf(stderr, "%s: decode differs on '%s'\n", reference, s);
                    free(dec);
                }
                free(ids);
            }
            n_cases++;
        }
        CHECKF(bad == 0 && n_cases > 500, "%s: %d of %d strings differ", reference, bad, n_cases);
        printf("%s: %d strings, %d differ\n", reference, n_cases, bad);
    }
    om_tokenizer_free(tok);
    cJSON_Delete(ref);
}

static const char **sorted_tokens;
static int cmp_token(const void *a, const void *b) {
    return strcmp(sorted_tokens[*(const int32_t *)a], sorted_tokens[*(const int32_t *)b]);
}

/* A SentencePiece vocabulary (Llama 2's) written into a GGUF as llama.cpp's converter writes one:
 * tokens, scores (minus the rank of the first merge making each piece, as the reference tool
 * scores them), types, no merges. */
static void test_spm(void) {
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizers/llama2/tokenizer.json", OM_TEST_DATA_DIR);
    char *text = om_test_read_file(path, NULL);
    cJSON *src = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(src != NULL);
    if (!src) return;
    const cJSON *model = cJSON_GetObjectItem(src, "model"), *vocab = cJSON_GetObjectItem(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItem(model, "merges");
    int n = cJSON_GetArraySize(vocab), n_merges = cJSON_GetArraySize(merges);
    const char **tokens = calloc((size_t)n, sizeof *tokens);
    float *scores = malloc((size_t)n * sizeof *scores);
    int32_t *types = malloc((size_t)n * sizeof *types);
    const cJSON *v;
    cJSON_ArrayForEach(v, vocab) tokens[v->valueint] = v->string;
    for (int i = 0; i < n; i++) scores[i] = -(float)(n_merges + i);
    /* a piece's score: minus the rank of the first merge that makes it (pieces looked up by
     * binary search over the tokens sorted by their bytes) */
    int32_t *order = malloc((size_t)n * sizeof *order);
    char *made = calloc((size_t)n, 1);
    for (int i = 0; i < n; i++) order[i] = i;
    sorted_tokens = tokens;
    qsort(order, (size_t)n, sizeof *order, cmp_token);
    int rank = 0;
    cJSON_ArrayForEach(v, merges) {
        char joined[512];
        if (cJSON_IsString(v)) {
            const char *sp = strchr(v->valuestring, ' ');
            snprintf(joined, sizeof joined, "%.*s%s", (int)(sp - v->valuestring), v->valuestring, sp + 1);
        } else {
            snprintf(joined, sizeof joined, "%s%s", cJSON_GetArrayItem(v, 0)->valuestring, cJSON_GetArrayItem(v, 1)->valuestring);
        }
        int lo = 0, hi = n - 1;
        while (lo <= hi) {
            int mid = (lo + hi) / 2, c = strcmp(tokens[order[mid]], joined);
            if (c == 0) {
                if (!made[order[mid]]) scores[order[mid]] = -(float)rank, made[order[mid]] = 1;
                break;
            }
            if (c < 0) lo = mid + 1;
            else hi = mid - 1;
        }
        rank++;
    }
    free(order);
    free(made);
    for (int i = 0; i < n; i++) {
        size_t len = strlen(tokens[i]);
        types[i] = i == 0 ? 2 : i < 3 ? 3 : (len == 6 && !strncmp(tokens[i], "<0x", 3) && tokens[i][5] == '>') ? 6 : 1;
    }
    gguf_w w;
    gw_init(&w);
    gw_kv_str(&w, "tokenizer.ggml.model", "llama");
    gw_kv_str(&w, "tokenizer.ggml.pre", "default");
    gw_kv_arr_str(&w, "tokenizer.ggml.tokens", tokens, (size_t)n);
    gw_kv_arr_f32(&w, "tokenizer.ggml.scores", scores, (size_t)n);
    gw_kv_arr_i32(&w, "tokenizer.ggml.token_type", types, (size_t)n);
    gw_kv_u32(&w, "tokenizer.ggml.bos_token_id", 1);
    gw_kv_u32(&w, "tokenizer.ggml.eos_token_id", 2);
    gw_kv_u32(&w, "tokenizer.ggml.unknown_token_id", 0);
    gw_kv_bool(&w, "tokenizer.ggml.add_bos_token", 1);
    gw_kv_bool(&w, "tokenizer.ggml.add_eos_token", 0);
    size_t len;
    uint8_t *file = gw_finish(&w, &len);
    gw_free(&w);
    om_gguf *g = NULL;
    cJSON *tj = NULL, *tc = NULL;
    CHECKF(om_gguf_parse(file, len, "llama2-vocab.gguf", &g) == 0, "%s", om_last_error());
    CHECKF(g && om_gguf_to_tokenizer(g, &tj, &tc) == 0 && tj && tc, "%s", om_last_error());
    check_tokenizer(tj, tc, "llama2_gguf_reference.json");
    cJSON_Delete(tj);
    cJSON_Delete(tc);
    om_gguf_free(g);
    free(file);
    free(tokens);
    free(scores);
    free(types);
    cJSON_Delete(src);
}

static void test_smollm2(void) {
    char buf[4096];
    const char *path = smollm2_path(buf, sizeof buf);
    struct stat st;
    if (stat(path, &st) != 0) {
        printf("SKIPPED: SmolLM2 checks: %s is absent (scripts/fetch-default-model.sh fetches it; or set "
               "OMINIX_SMOLLM2_GGUF)\n",
               path);
        return;
    }
    om_gguf *g = NULL;
    CHECKF(om_gguf_open(path, &g) == 0, "%s", om_last_error());
    if (!g) return;
    cJSON *c = NULL, *tj = NULL, *tc = NULL;
    CHECKF(om_gguf_to_config(g, &c) == 0, "%s", om_last_error());
    CHECKF(om_gguf_to_tokenizer(g, &tj, &tc) == 0, "%s", om_last_error());
    if (c) {
        struct {
            const char *key;
            double v;
        } want[] = {{"hidden_size", 576},       {"num_hidden_layers", 30}, {"num_attention_heads", 9},
                    {"num_key_value_heads", 3}, {"head_dim", 64},          {"intermediate_size", 1536},
                    {"vocab_size", 49152},      {"rope_theta", 100000},    {"max_position_embeddings", 8192},
                    {"partial_rotary_factor", 1}, {"bos_token_id", 1}};
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
            const cJSON *v = cJSON_GetObjectItem(c, want[i].key);
            CHECKF(cJSON_IsNumber(v) && v->valuedouble == want[i].v, "config %s", want[i].key);
        }
        CHECK(!strcmp(cJSON_GetObjectItem(c, "model_type")->valuestring, "llama"));
        CHECK(fabs(cJSON_GetObjectItem(c, "rms_norm_eps")->valuedouble - 1e-5) < 1e-9);
        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(c, "tie_word_embeddings")));
        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(c, OM_ROPE_INTERLEAVED_KEY)));
        CHECK(!cJSON_GetObjectItem(c, "rope_scaling"));
    }
    /* the tokenizer against transformers on the corpus */
    check_tokenizer(tj, tc, "smollm2_gguf_reference.json");
    /* tensors: Hugging Face names over the file's quantized data */
    om_weights *w = NULL;
    if (c && om_gguf_to_weights(g, c, &w) == 0) {
        g = NULL; /* owned by w */
        const om_weight_info *q = om_weights_find(w, "model.layers.29.self_attn.q_proj.weight");
        CHECK(q && q->dtype == OM_Q4_1 && q->ndim == 2 && q->shape[0] == 576 && q->shape[1] == 576);
        const om_weight_info *e = om_weights_find(w, "model.embed_tokens.weight");
        CHECK(e && e->dtype == OM_Q8_0 && e->shape[0] == 49152 && e->shape[1] == 576);
        const om_weight_info *n = om_weights_find(w, "model.layers.0.post_attention_layernorm.weight");
        CHECK(n && n->dtype == OM_F32 && n->ndim == 1);
        CHECK(om_weights_count(w) == 272 && !om_weights_find(w, "lm_head.weight"));
        om_tensor t;
        CHECKF(om_weights_get(w, "model.layers.3.mlp.down_proj.weight", 2, (int64_t[]){576, 1536}, &t) == 0, "%s",
               om_last_error());
    } else {
        CHECKF(0, "weights: %s", om_last_error());
    }
    om_weights_free(w);
    cJSON_Delete(c);
    cJSON_Delete(tj);
    cJSON_Delete(tc);
    om_gguf_free(g);
}

/* ---- files the adapter refuses ---- */

typedef void (*fill_fn)(gguf_w *w);

static void base_kv(gguf_w *w, const char *arch) {
    char k[96];
    gw_kv_str(w, "general.architecture", arch);
    snprintf(k, sizeof k, "%s.block_count", arch);
    gw_kv_u32(w, k, 1);
    snprintf(k, sizeof k, "%s.embedding_length", arch);
    gw_kv_u32(w, k, 32);
    snprintf(k, sizeof k, "%s.attention.head_count", arch);
    gw_kv_u32(w, k, 2);
}

static const float zeros[64 * 32];
static void embd(gguf_w *w) { gw_tensor(w, "token_embd.weight", 0, 2, (int64_t[]){32, 4}, zeros, 4 * 32 * 4); }

static void bad_arch(gguf_w *w) {
    base_kv(w, "gpt2");
    embd(w);
}
static void bad_no_arch(gguf_w *w) { embd(w); }
static void bad_arch_type(gguf_w *w) { gw_kv_u32(w, "general.architecture", 7); }
static void bad_block_type(gguf_w *w) {
    gw_kv_str(w, "general.architecture", "llama");
    gw_kv_str(w, "llama.block_count", "thirty");
}
static void bad_no_embd(gguf_w *w) { base_kv(w, "llama"); }
static void bad_heads(gguf_w *w) {
    base_kv(w, "qwen2");
    int32_t kv[2] = {1, 2};
    gw_kv_arr_i32(w, "qwen2.attention.head_count_kv", kv, 2);
    embd(w);
}
static void bad_rope(gguf_w *w) {
    base_kv(w, "llama");
    gw_kv_str(w, "llama.rope.scaling.type", "longrope");
    gw_kv_f32(w, "llama.rope.scaling.factor", 4);
    embd(w);
}
static void bad_freqs(gguf_w *w) {
    base_kv(w, "llama");
    float f[8] = {1, 2, 1, 3, 1, 5, 1, 2};
    gw_tensor(w, "rope_freqs.weight", 0, 1, (int64_t[]){8}, f, sizeof f);
    embd(w);
}
static void bad_exps(gguf_w *w) {
    base_kv(w, "qwen3moe");
    gw_kv_u32(w, "qwen3moe.expert_count", 4);
    gw_kv_u32(w, "qwen3moe.expert_used_count", 2);
    gw_kv_u32(w, "qwen3moe.expert_feed_forward_length", 8);
    embd(w);
    gw_tensor(w, "blk.0.ffn_up_exps.weight", 0, 2, (int64_t[]){32, 8}, zeros, 32 * 8 * 4);
}
static void bad_tokenizer(gguf_w *w) {
    base_kv(w, "llama");
    embd(w);
    const char *t[] = {"a", "b"};
    gw_kv_arr_str(w, "tokenizer.ggml.tokens", t, 2);
    gw_kv_str(w, "tokenizer.ggml.model", "bert");
}
static void bad_split(gguf_w *w) {
    base_kv(w, "llama");
    gw_kv_u32(w, "split.count", 3);
    embd(w);
}
static void bad_missing_tensor(gguf_w *w) {
    base_kv(w, "llama");
    embd(w);
    gw_tensor(w, "output_norm.weight", 0, 1, (int64_t[]){32}, zeros, 32 * 4);
    gw_tensor(w, "blk.0.attn_norm.weight", 0, 1, (int64_t[]){32}, zeros, 32 * 4);
    gw_tensor(w, "blk.0.ffn_norm.weight", 0, 1, (int64_t[]){32}, zeros, 32 * 4);
}
static void bad_shape(gguf_w *w) {
    base_kv(w, "llama");
    embd(w);
    gw_tensor(w, "output_norm.weight", 0, 1, (int64_t[]){16}, zeros, 16 * 4);
}
static void bad_moe_missing(gguf_w *w) {
    base_kv(w, "glm4moe");
    embd(w);
}

static void test_bad(void) {
    struct {
        fill_fn fill;
        const char *want[2];
    } cases[] = {
        {bad_arch, {"architecture 'gpt2' is not supported", "qwen3moe"}},
        {bad_no_arch, {"missing metadata 'general.architecture'"}},
        {bad_arch_type, {"metadata 'general.architecture' is uint32, expected string"}},
        {bad_block_type, {"metadata 'llama.block_count' is string"}},
        {bad_no_embd, {"token_embd.weight"}},
        {bad_heads, {"'qwen2.attention.head_count_kv' differs between layers"}},
        {bad_rope, {"rope scaling 'longrope'", "llama.rope.scaling.type"}},
        {bad_freqs, {"rope_freqs.weight", "Llama 3"}},
        {bad_exps, {"blk.0.ffn_up_exps.weight", "3-D"}},
        {bad_tokenizer, {"tokenizer.ggml.model 'bert' is not supported"}},
        {bad_split, {"split files"}},
        {bad_moe_missing, {"glm4moe", "expert_count"}},
        {bad_missing_tensor, {"missing tensor 'model.layers.0.self_attn.q_proj.weight'"}},
        {bad_shape, {"tensor 'model.norm.weight' has shape [16], expected [32]"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gguf_w w;
        gw_init(&w);
        cases[i].fill(&w);
        size_t len;
        uint8_t *f = gw_finish(&w, &len);
        gw_free(&w);
        char path[4200];
        snprintf(path, sizeof path, "%s/bad%zu.gguf", tmp, i);
        om_test_write_file(path, f, len);
        free(f);
        om_model *m = NULL;
        om_clear_error();
        int rc = om_model_load(path, NULL, &m);
        const char *e = om_last_error();
        CHECKF(rc != 0 && !m, "case %zu loaded", i);
        /* one line, naming the file once */
        CHECKF(contains(e, path) && !contains(strstr(e, path) + strlen(path), path) && !strchr(e, '\n'), "case %zu: %s",
               i, e);
        for (int k = 0; k < 2 && cases[i].want[k]; k++)
            CHECKF(contains(e, cases[i].want[k]), "case %zu: '%s' not in: %s", i, cases[i].want[k], e);
        om_model_free(m);
    }

    /* folders: one .gguf and no config.json loads it; two are ambiguous; a non-.gguf file is refused */
    char dir[4200], cmd[9000];
    snprintf(dir, sizeof dir, "%s/one", tmp);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/llama_0.gguf' '%s/m.gguf'", dir, tmp, dir);
    CHECK(system(cmd) == 0);
    om_model *m = NULL;
    CHECKF(om_model_load(dir, NULL, &m) == 0 && !strcmp(om_model_type(m), "llama"), "%s", om_last_error());
    om_model_free(m);
    m = NULL;
    snprintf(cmd, sizeof cmd, "cp '%s/m.gguf' '%s/n.gguf'", dir, dir);
    CHECK(system(cmd) == 0);
    CHECK(om_model_load(dir, NULL, &m) != 0 && contains(om_last_error(), "2 .gguf files"));
    snprintf(cmd, sizeof cmd, "%s/one/m.gguf.txt", tmp);
    om_test_write_file(cmd, "x", 1);
    CHECK(om_model_load(cmd, NULL, &m) != 0 && contains(om_last_error(), "not a .gguf checkpoint"));
    snprintf(cmd, sizeof cmd, "%s/nothing", tmp);
    CHECK(om_model_load(cmd, NULL, &m) != 0 && contains(om_last_error(), "does not exist"));
}

int main(void) {
    tmp = om_test_tmpdir("gguf_model");
    test_logits();
    test_config();
    test_text_model();
    test_spm();
    test_smollm2();
    test_bad();
    return om_test_finish();
}
