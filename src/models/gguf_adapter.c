/* The GGUF -> Hugging Face adapter (see gguf_adapter.h): a llama.cpp checkpoint given as the
 * config.json, tensors and tokenizer files a Hugging Face folder would hold, so that the model
 * families load it unchanged.
 *
 * What llama.cpp's converter (convert_hf_to_gguf.py) does, and what undoing it takes here:
 *   - names: gguf-py's tensor_mapping.py renames every tensor; the table below is its inverse
 *     for the architectures ominix runs. GLM-4 and GLM-4-MoE differ: GLM-4's
 *     post_attention_layernorm (the norm before the MLP) is ffn_norm and its
 *     post_self_attn_layernorm is post_attention_norm, while GLM-4-MoE's post_attention_layernorm
 *     is post_attention_norm.
 *   - shapes: ggml lists dimensions innermost first, so a [out, in] weight is stored as
 *     [in, out]; reversing the list gives the torch shape, with the bytes as they are.
 *   - experts: the per-expert matrices are stacked into one [E, out, in] tensor
 *     (ffn_*_exps); each expert is a contiguous slice of it, given as its own 2-D view.
 *   - rotary layout: for "llama" the converter permutes the rows of q_proj and k_proj within
 *     each head (LlamaModel.permute) from Hugging Face's halves pairing (i, i + d/2) to adjacent
 *     pairs (2i, 2i + 1), because llama.cpp runs LLM_ARCH_LLAMA with its "normal" rope. The
 *     permutation applies to q and k alike, so attention scores are unchanged as long as the
 *     rope pairs adjacent dimensions: the config says so with ominix.rope_interleaved (see
 *     core/rope.h) and the rows load as they are. qwen2, qwen3 and qwen3moe (NEOX rope) and
 *     glm4moe (NEOX) are stored unpermuted in Hugging Face's halves layout; glm4 (normal rope)
 *     is stored unpermuted too, and its Hugging Face model pairs adjacent dimensions already.
 *   - Llama 3 rope scaling is stored only as rope_freqs.weight, a divisor per frequency;
 *     the llama3 parameters that give those divisors are recovered and checked.
 *   - the tokenizer is stored as token strings, types, merges and ids; tokenizer.ggml.pre
 *     names the pre-tokenizer (a hash of the original tokenizer's output on a test string),
 *     mapped here to the Hugging Face pre-tokenizer it stands for. */
#include "models/gguf_adapter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json_util.h"
#include "core/llm_blocks.h"
#include "core/log.h"
#include "core/model.h"
#include "core/rope.h"

#define GGUF_MAX_LAYERS 4096

/* ---- architectures ---- */

typedef enum { A_LLAMA, A_QWEN2, A_QWEN3, A_QWEN3MOE, A_GLM4, A_GLM4MOE } arch_id;

typedef struct arch_info {
    const char *name;       /* general.architecture */
    const char *model_type; /* config.json */
    arch_id id;
} arch_info;

static const arch_info archs[] = {
    {"llama", "llama", A_LLAMA},          {"qwen2", "qwen2", A_QWEN2}, {"qwen3", "qwen3", A_QWEN3},
    {"qwen3moe", "qwen3_moe", A_QWEN3MOE}, {"glm4", "glm4", A_GLM4},    {"glm4moe", "glm4_moe", A_GLM4MOE},
};

static int find_arch(const om_gguf *g, const arch_info **out) {
    const char *name;
    if (om_gguf_get_string(g, "general.architecture", &name)) return -1;
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (!strcmp(archs[i].name, name)) {
            *out = &archs[i];
            return 0;
        }
    return om_errorf("%s: architecture '%.64s' is not supported (supported: llama, qwen2, qwen3, qwen3moe, glm4, "
                     "glm4moe)",
                     om_gguf_path(g), name);
}

/* ---- config.json ---- */

typedef struct cfg_ctx {
    const om_gguf *g;
    const arch_info *arch;
    cJSON *c;
    char key[160];
} cfg_ctx;

static const char *akey(cfg_ctx *x, const char *suffix) {
    snprintf(x->key, sizeof x->key, "%s.%s", x->arch->name, suffix);
    return x->key;
}

static int is_int_type(om_gguf_type t) {
    return t == OM_GGUF_UINT8 || t == OM_GGUF_INT8 || t == OM_GGUF_UINT16 || t == OM_GGUF_INT16 ||
           t == OM_GGUF_UINT32 || t == OM_GGUF_INT32 || t == OM_GGUF_UINT64 || t == OM_GGUF_INT64;
}

/* {arch}.<suffix> as an integer in [0, 2^30]: a scalar, or a per-layer array whose entries all
 * agree (llama.cpp writes head counts per layer for some models). */
static int arch_int(cfg_ctx *x, const char *suffix, int required, int64_t def, int64_t *out) {
    const char *key = akey(x, suffix);
    const om_gguf_kv *kv = om_gguf_find(x->g, key);
    int64_t v;
    if (!kv) {
        if (required) return om_errorf("%s: missing metadata '%s'", om_gguf_path(x->g), key);
        *out = def;
        return 0;
    }
    if (kv->type == OM_GGUF_ARRAY) {
        const om_gguf_array *a = &kv->arr;
        if (!is_int_type(a->type) || a->n == 0)
            return om_errorf("%s: metadata '%s' is an array of %llu %s, expected an integer", om_gguf_path(x->g), key,
                             (unsigned long long)a->n, om_gguf_type_name(a->type));
        v = om_gguf_array_int(a, 0);
        for (uint64_t i = 1; i < a->n; i++)
            if (om_gguf_array_int(a, i) != v)
                return om_errorf("%s: metadata '%s' differs between layers; per-layer values are not supported",
                                 om_gguf_path(x->g), key);
    } else if (om_gguf_get_i64(x->g, key, &v)) {
        return -1;
    }
    if (v < 0 || v > (1 << 30)) return om_errorf("%s: metadata '%s' is %lld, out of range", om_gguf_path(x->g), key,
                                                 (long long)v);
    *out = v;
    return 0;
}

static int arch_float(cfg_ctx *x, const char *suffix, double def, double *out) {
    return om_gguf_get_f64_or(x->g, akey(x, suffix), def, out);
}

static int arch_bool(cfg_ctx *x, const char *suffix, int def, int *out) {
    return om_gguf_get_bool_or(x->g, akey(x, suffix), def, out);
}

static int has_tensor(const om_gguf *g, const char *name) { return om_gguf_find_tensor(g, name) != NULL; }

static int add_num(cfg_ctx *x, const char *key, double v) {
    return cJSON_AddNumberToObject(x->c, key, v) ? 0 : om_errorf("out of memory");
}

static int add_bool(cfg_ctx *x, const char *key, int v) {
    return cJSON_AddBoolToObject(x->c, key, v) ? 0 : om_errorf("out of memory");
}

/* Llama 3's rope scaling. llama.cpp's converter stores it only as rope_freqs.weight, the
 * divisor of each of the n_rot/2 frequencies:
 *     1 where the wavelength 2 pi / f is under original / high_freq_factor,
 *     factor where it is over original / low_freq_factor,
 *     1 / ((1 - s) / factor + s) between, with s = (original / wavelength - low) / (high - low).
 * The divisors depend on (original, low, high) only through A = original / (high - low) and
 * B = low / (high - low) (s = A / wavelength - B, and the two thresholds are s = 1 and s = 0),
 * so A and B are fitted to the smoothed divisors and low = 1 chosen; with fewer than two
 * smoothed ones, Llama 3.1's values (1, 4, 8192) are tried. Either way the parameters must
 * reproduce every divisor, or the file is refused. */
static int llama3_divisor_ok(double f, double factor, double low, double high, double orig, double r) {
    double wl = 2 * M_PI / f, want;
    if (wl < orig / high) want = 1;
    else if (wl > orig / low) want = factor;
    else {
        double s = (orig / wl - low) / (high - low);
        want = 1 / ((1 - s) / factor + s);
    }
    return fabs(want - r) <= 1e-3 * fabs(r);
}

static int llama3_scaling(cfg_ctx *x, const om_gguf_tensor *t, double theta, int n_rot) {
    const char *path = om_gguf_path(x->g);
    const int half = n_rot / 2;
    if (t->dtype != OM_F32 || !t->supported || t->ne[0] != half || t->ne[1] != 1 || t->ne[2] != 1 || t->ne[3] != 1)
        return om_errorf("%s: tensor 'rope_freqs.weight' must be %d F32 values (it is %s with %lld)", path, half,
                         t->type_name, (long long)t->ne[0]);
    double r[OM_ROPE_MAX_PAIRS], f[OM_ROPE_MAX_PAIRS], factor = 0;
    int trivial = 1;
    for (int i = 0; i < half; i++) {
        float v;
        memcpy(&v, (const uint8_t *)t->data + 4 * (size_t)i, 4);
        if (!(v > 0) || !isfinite(v))
            return om_errorf("%s: tensor 'rope_freqs.weight'[%d] is %g; frequency divisors must be positive", path, i,
                             (double)v);
        r[i] = v;
        f[i] = pow(theta, -2.0 * i / n_rot);
        if (v > factor) factor = v;
        if (fabs(v - 1) > 1e-6) trivial = 0;
    }
    if (trivial) return 0;
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int ns = 0;
    for (int i = 0; i < half; i++) {
        if (fabs(r[i] - 1) < 1e-6 || fabs(r[i] - factor) < 1e-6 * factor) continue;
        double s = (1 / r[i] - 1 / factor) / (1 - 1 / factor), xi = f[i] / (2 * M_PI);
        sx += xi, sy += s, sxx += xi * xi, sxy += xi * s;
        ns++;
    }
    double low = 1, high = 4, orig = 8192;
    if (ns >= 2 && ns * sxx - sx * sx > 0) {
        double A = (ns * sxy - sx * sy) / (ns * sxx - sx * sx), B = -(sy - A * sx) / ns;
        if (A > 0 && B > 0) {
            high = 1 + 1 / B;
            orig = round(A / B);
        }
    }
    for (int i = 0; i < half; i++)
        if (!llama3_divisor_ok(f[i], factor, low, high, orig, r[i]))
            return om_errorf("%s: tensor 'rope_freqs.weight' does not follow Llama 3's rope scaling (divisor %d is "
                             "%g); other per-frequency scalings are not supported",
                             path, i, r[i]);
    cJSON *s = cJSON_AddObjectToObject(x->c, "rope_scaling");
    if (!s || !cJSON_AddStringToObject(s, "rope_type", "llama3") || !cJSON_AddNumberToObject(s, "factor", factor) ||
        !cJSON_AddNumberToObject(s, "low_freq_factor", low) || !cJSON_AddNumberToObject(s, "high_freq_factor", high) ||
        !cJSON_AddNumberToObject(s, "original_max_position_embeddings", orig))
        return om_errorf("out of memory");
    return 0;
}

/* rope.scaling.* (linear, yarn) as Hugging Face's rope_scaling. */
static int rope_scaling(cfg_ctx *x) {
    const char *path = om_gguf_path(x->g), *type;
    double factor;
    if (om_gguf_get_string_or(x->g, akey(x, "rope.scaling.type"), NULL, &type) ||
        arch_float(x, "rope.scaling.factor", 0, &factor))
        return -1;
    if (factor == 0 && arch_float(x, "rope.scale_linear", 0, &factor)) return -1; /* the old key */
    /* llama.cpp reads a missing type as linear; a factor of 0 (absent) or 1 scales nothing. */
    if (!type) type = "linear";
    if (!strcmp(type, "none") || factor == 0 || factor == 1) return 0;
    if (strcmp(type, "linear") != 0 && strcmp(type, "yarn") != 0)
        return om_errorf("%s: rope scaling '%.32s' (metadata '%s') is not supported (linear and yarn are)", path, type,
                         akey(x, "rope.scaling.type"));
    if (!(factor > 0))
        return om_errorf("%s: metadata '%s' is %g; it must be positive", path, akey(x, "rope.scaling.factor"), factor);
    cJSON *s = cJSON_AddObjectToObject(x->c, "rope_scaling");
    if (!s || !cJSON_AddStringToObject(s, "rope_type", type) || !cJSON_AddNumberToObject(s, "factor", factor))
        return om_errorf("out of memory");
    if (!strcmp(type, "linear")) return 0;
    int64_t orig;
    if (arch_int(x, "rope.scaling.original_context_length", 0, 0, &orig)) return -1;
    if (orig > 0 && !cJSON_AddNumberToObject(s, "original_max_position_embeddings", (double)orig))
        return om_errorf("out of memory");
    static const char *const keys[][2] = {{"rope.scaling.yarn_beta_fast", "beta_fast"},
                                          {"rope.scaling.yarn_beta_slow", "beta_slow"},
                                          {"rope.scaling.yarn_attn_factor", "attention_factor"}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        double v;
        if (!om_gguf_find(x->g, akey(x, keys[i][0]))) continue;
        if (arch_float(x, keys[i][0], 0, &v)) return -1;
        if (!cJSON_AddNumberToObject(s, keys[i][1], v)) return om_errorf("out of memory");
    }
    return 0;
}

/* eos_token_id: the end-of-sequence id and, when different, end-of-turn and end-of-message (a
 * chat model ends its turn with those). */
static int special_ids(cfg_ctx *x, int64_t n_vocab) {
    static const char *const eos_keys[] = {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                                           "tokenizer.ggml.eom_token_id"};
    uint32_t id;
    cJSON *eos = cJSON_CreateArray();
    if (!eos || !cJSON_AddItemToObject(x->c, "eos_token_id", eos)) {
        cJSON_Delete(eos);
        return om_errorf("out of memory");
    }
    for (size_t i = 0; i < sizeof eos_keys / sizeof eos_keys[0]; i++) {
        if (!om_gguf_find(x->g, eos_keys[i])) continue;
        if (om_gguf_get_u32(x->g, eos_keys[i], &id)) return -1;
        if (id >= n_vocab) continue; /* llama.cpp too ignores an id outside the vocabulary */
        int seen = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, eos) seen |= e->valuedouble == id;
        if (!seen) cJSON_AddItemToArray(eos, cJSON_CreateNumber(id));
    }
    if (om_gguf_find(x->g, "tokenizer.ggml.bos_token_id")) {
        if (om_gguf_get_u32(x->g, "tokenizer.ggml.bos_token_id", &id)) return -1;
        if (id < n_vocab && add_num(x, "bos_token_id", id)) return -1;
    }
    return 0;
}

/* The layers (by index) that have tensor "blk.N.<name>". */
static int layers_without(cfg_ctx *x, int n_layer, const char *name, cJSON **out) {
    *out = cJSON_CreateArray();
    if (!*out) return om_errorf("out of memory");
    for (int i = 0; i < n_layer; i++) {
        char t[96];
        snprintf(t, sizeof t, "blk.%d.%s", i, name);
        if (!has_tensor(x->g, t)) cJSON_AddItemToArray(*out, cJSON_CreateNumber(i));
    }
    return 0;
}

static int moe_config(cfg_ctx *x, int n_layer) {
    const char *path = om_gguf_path(x->g);
    int64_t n_expert, top_k, ffn;
    int norm;
    if (arch_int(x, "expert_count", 1, 0, &n_expert) || arch_int(x, "expert_used_count", 1, 0, &top_k) ||
        arch_bool(x, "expert_weights_norm", 1, &norm))
        return -1;
    if (x->arch->id == A_LLAMA) {
        /* Mixtral: the experts' size is intermediate_size. */
        return add_num(x, "num_local_experts", (double)n_expert) || add_num(x, "num_experts_per_tok", (double)top_k);
    }
    if (arch_int(x, "expert_feed_forward_length", 1, 0, &ffn)) return -1;
    if (add_num(x, "num_experts_per_tok", (double)top_k) || add_num(x, "moe_intermediate_size", (double)ffn) ||
        add_bool(x, "norm_topk_prob", norm))
        return -1;
    if (x->arch->id == A_QWEN3MOE) {
        /* llama.cpp runs every layer that has a router as MoE; say the others are dense. */
        cJSON *dense;
        if (layers_without(x, n_layer, "ffn_gate_inp.weight", &dense)) return -1;
        cJSON_AddItemToObject(x->c, "mlp_only_layers", dense);
        return add_num(x, "num_experts", (double)n_expert) || add_num(x, "decoder_sparse_step", 1);
    }
    /* GLM-4-MoE */
    int64_t n_shared, first_dense, n_group, topk_group, gating;
    double scale;
    if (arch_int(x, "expert_shared_count", 0, -1, &n_shared) ||
        arch_int(x, "leading_dense_block_count", 0, 0, &first_dense) || arch_int(x, "expert_group_count", 0, 1, &n_group) ||
        arch_int(x, "expert_group_used_count", 0, 1, &topk_group) || arch_int(x, "expert_gating_func", 0, 2, &gating) ||
        arch_float(x, "expert_weights_scale", 1.0, &scale))
        return -1;
    if (gating != 2) /* llama.cpp's LLAMA_EXPERT_GATING_FUNC_TYPE_SIGMOID */
        return om_errorf("%s: metadata '%s' is %lld; GLM-4-MoE routes with sigmoid (2)", path,
                         akey(x, "expert_gating_func"), (long long)gating);
    if (n_shared < 0) {
        /* Not written by older converters: count it from the shared experts' size. */
        n_shared = 0;
        for (int i = 0; i < n_layer && ffn > 0; i++) {
            char t[96];
            snprintf(t, sizeof t, "blk.%d.ffn_gate_shexp.weight", i);
            const om_gguf_tensor *s = om_gguf_find_tensor(x->g, t);
            if (s) {
                n_shared = s->ne[1] / ffn;
                break;
            }
        }
    }
    return add_num(x, "n_routed_experts", (double)n_expert) || add_num(x, "n_shared_experts", (double)n_shared) ||
           add_num(x, "first_k_dense_replace", (double)first_dense) || add_num(x, "n_group", (double)n_group) ||
           add_num(x, "topk_group", (double)topk_group) || add_num(x, "routed_scaling_factor", scale) ||
           add_bool(x, "use_qk_norm", has_tensor(x->g, "blk.0.attn_q_norm.weight"));
}

int om_gguf_to_config(const om_gguf *g, cJSON **out) {
    *out = NULL;
    cfg_ctx x = {.g = g};
    const char *path = om_gguf_path(g);
    if (find_arch(g, &x.arch)) return -1;
    x.c = cJSON_CreateObject();
    if (!x.c) return om_errorf("out of memory");
    int64_t blocks, nextn, hidden, n_head, n_kv, ffn, head_dim, v_dim, ctx, n_rot;
    double eps, theta;
    if (arch_int(&x, "block_count", 1, 0, &blocks) || arch_int(&x, "nextn_predict_layers", 0, 0, &nextn) ||
        arch_int(&x, "embedding_length", 1, 0, &hidden) || arch_int(&x, "attention.head_count", 1, 0, &n_head) ||
        arch_int(&x, "attention.head_count_kv", 0, n_head, &n_kv) || arch_int(&x, "feed_forward_length", 0, 0, &ffn) ||
        arch_int(&x, "context_length", 0, 0, &ctx) || arch_float(&x, "attention.layer_norm_rms_epsilon", 0, &eps) ||
        arch_float(&x, "rope.freq_base", 10000.0, &theta))
        goto fail;
    /* The deepest released models have under 200 layers; the bound keeps a corrupt count from
     * making the per-layer scans below run for hours. */
    if (blocks > GGUF_MAX_LAYERS) {
        om_errorf("%s: %s.block_count %lld is more than the %d layers supported", path, x.arch->name, (long long)blocks,
                  GGUF_MAX_LAYERS);
        goto fail;
    }
    if (n_head == 0 || hidden == 0 || nextn >= blocks) {
        om_errorf("%s: %s.block_count %lld (of which %lld next-token prediction layers), embedding_length %lld and "
                  "attention.head_count %lld do not describe a model",
                  path, x.arch->name, (long long)blocks, (long long)nextn, (long long)hidden, (long long)n_head);
        goto fail;
    }
    if (arch_int(&x, "attention.key_length", 0, hidden / n_head, &head_dim) ||
        arch_int(&x, "attention.value_length", 0, head_dim, &v_dim) || arch_int(&x, "rope.dimension_count", 0, head_dim, &n_rot))
        goto fail;
    if (v_dim != head_dim) {
        om_errorf("%s: attention.value_length %lld differs from key_length %lld; not supported", path, (long long)v_dim,
                  (long long)head_dim);
        goto fail;
    }
    const om_gguf_tensor *embd = om_gguf_find_tensor(g, "token_embd.weight");
    if (!embd || embd->n_dims != 2) {
        om_errorf("%s: no 2-D tensor 'token_embd.weight' (the token embedding)", path);
        goto fail;
    }
    const int64_t n_layer = blocks - nextn, n_vocab = embd->ne[1];
    int moe = 0;
    if (om_gguf_find(g, akey(&x, "expert_count"))) {
        int64_t e;
        if (arch_int(&x, "expert_count", 0, 0, &e)) goto fail;
        moe = e > 0;
    }
    const char *type = x.arch->model_type;
    if (x.arch->id == A_LLAMA && moe) type = "mixtral";
    if ((x.arch->id == A_QWEN3MOE || x.arch->id == A_GLM4MOE) && !moe) {
        om_errorf("%s: a %s model without %s", path, x.arch->name, akey(&x, "expert_count"));
        goto fail;
    }
    if (!cJSON_AddStringToObject(x.c, "model_type", type) || add_num(&x, "hidden_size", (double)hidden) ||
        add_num(&x, "num_hidden_layers", (double)n_layer) || add_num(&x, "num_attention_heads", (double)n_head) ||
        add_num(&x, "num_key_value_heads", (double)n_kv) || add_num(&x, "head_dim", (double)head_dim) ||
        add_num(&x, "vocab_size", (double)n_vocab) || add_num(&x, "rope_theta", theta) ||
        add_num(&x, "partial_rotary_factor", (double)n_rot / (double)head_dim) ||
        add_bool(&x, "tie_word_embeddings", !has_tensor(g, "output.weight")) ||
        add_bool(&x, "attention_bias", has_tensor(g, "blk.0.attn_q.bias") || has_tensor(g, "blk.0.attn_qkv.bias")))
        goto fail;
    if ((ffn > 0 && add_num(&x, "intermediate_size", (double)ffn)) ||
        (ctx > 0 && add_num(&x, "max_position_embeddings", (double)ctx)) ||
        (eps > 0 && add_num(&x, "rms_norm_eps", eps)) || (nextn > 0 && add_num(&x, "num_nextn_predict_layers", (double)nextn)))
        goto fail;
    if (x.arch->id == A_LLAMA) {
        /* The converter permuted q/k for adjacent-pair rope (see the top of this file). */
        if (add_bool(&x, OM_ROPE_INTERLEAVED_KEY, 1) || add_bool(&x, "mlp_bias", has_tensor(g, "blk.0.ffn_up.bias")))
            goto fail;
    }
    const om_gguf_tensor *freqs = om_gguf_find_tensor(g, "rope_freqs.weight");
    if (freqs) {
        if (n_rot < 2 || n_rot % 2 || n_rot / 2 > OM_ROPE_MAX_PAIRS) {
            om_errorf("%s: rotary dimension %lld is not supported", path, (long long)n_rot);
            goto fail;
        }
        if (llama3_scaling(&x, freqs, theta, (int)n_rot)) goto fail;
    } else if (rope_scaling(&x)) {
        goto fail;
    }
    if (moe && moe_config(&x, (int)n_layer)) goto fail;
    if (special_ids(&x, n_vocab)) goto fail;
    *out = x.c;
    return 0;
fail:
    cJSON_Delete(x.c);
    return -1;
}

/* ---- tokenizer.json ---- */

/* GPT-2's byte-level alphabet (bytes_to_unicode): printable Latin-1 bytes stand for themselves,
 * the other 68 bytes for U+0100 onwards in byte order. */
static uint32_t byte_char[256];

static void init_byte_chars(void) {
    if (byte_char['!']) return;
    uint32_t next = 256;
    for (int b = 0; b < 256; b++) {
        int self = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        byte_char[b] = self ? (uint32_t)b : next++;
    }
}

static int in_byte_alphabet(uint32_t cp) {
    return (cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255) ||
           (cp >= 256 && cp < 256 + 68);
}

/* The next UTF-8 character of s[*i..n); 0 when the bytes there are not valid UTF-8. */
static int utf8_next(const unsigned char *s, size_t n, size_t *i, uint32_t *cp) {
    unsigned char c = s[*i];
    int len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (!len || *i + (size_t)len > n) return 0;
    uint32_t v = len == 1 ? c : len == 2 ? c & 0x1fu : len == 3 ? c & 0x0fu : c & 0x07u;
    for (int k = 1; k < len; k++) {
        if ((s[*i + (size_t)k] & 0xc0) != 0x80) return 0;
        v = (v << 6) | (s[*i + (size_t)k] & 0x3fu);
    }
    *i += (size_t)len;
    *cp = v;
    return 1;
}

/* Whether the token is spelled in the byte-level alphabet (as every token of a Hugging Face
 * byte-level vocabulary is). */
static int byte_level_spelled(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        if (!utf8_next((const unsigned char *)s, n, &i, &cp) || !in_byte_alphabet(cp)) return 0;
    }
    return 1;
}

static size_t put_utf8(char *d, uint32_t cp) {
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    d[0] = (char)(0xc0 | (cp >> 6));
    d[1] = (char)(0x80 | (cp & 0x3f));
    return 2; /* byte-level characters are all below U+0800 */
}

/* The byte-level spelling of raw text (llama.cpp stores some added tokens as the text itself). */
static char *respell(const char *s, size_t n) {
    char *d = malloc(2 * n + 1);
    if (!d) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += put_utf8(d + k, byte_char[(unsigned char)s[i]]);
    d[k] = 0;
    return d;
}

/* A string -> id table with the last id winning, as a Python dict built from the token list
 * does (llama.cpp and transformers both build one). */
typedef struct str_table {
    const char **keys;
    int32_t *ids;
    size_t n;
} str_table;

static uint64_t fnv(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int str_table_init(str_table *t, size_t count) {
    t->n = 16;
    while (t->n < 2 * count) t->n *= 2;
    t->keys = calloc(t->n, sizeof *t->keys);
    t->ids = calloc(t->n, sizeof *t->ids);
    return t->keys && t->ids ? 0 : -1;
}

static void str_table_put(str_table *t, const char *key, int32_t id) {
    size_t i = (size_t)fnv(key) & (t->n - 1);
    while (t->keys[i] && strcmp(t->keys[i], key) != 0) i = (i + 1) & (t->n - 1);
    t->keys[i] = key;
    t->ids[i] = id;
}

/* The id of the len bytes at key; -1 when absent. */
static int32_t str_table_get(const str_table *t, const char *key, size_t len) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)key[i]) * 1099511628211ull;
    for (size_t i = (size_t)h & (t->n - 1); t->keys[i]; i = (i + 1) & (t->n - 1))
        if (!strncmp(t->keys[i], key, len) && t->keys[i][len] == 0) return t->ids[i];
    return -1;
}

static void str_table_free(str_table *t) {
    free(t->keys);
    free(t->ids);
}

/* Pre-tokenizers, by tokenizer.ggml.pre, as llama.cpp groups the names (llama-vocab.cpp) and
 * as the original tokenizer.json files spell them. */
typedef enum { PRE_GPT2, PRE_DIGITS, PRE_LLAMA3, PRE_QWEN2, PRE_GLM4, PRE_TEKKEN, PRE_GPT4O } pre_kind;

static const struct {
    const char *name;
    pre_kind kind;
} pre_names[] = {
    {"default", PRE_GPT2},       {"gpt-2", PRE_GPT2},          {"phi-2", PRE_GPT2},        {"mpt", PRE_GPT2},
    {"olmo", PRE_GPT2},          {"jais", PRE_GPT2},           {"exaone4", PRE_GPT2},      {"mellum", PRE_GPT2},
    {"smollm", PRE_DIGITS},      {"starcoder", PRE_DIGITS},    {"refact", PRE_DIGITS},     {"codeshell", PRE_DIGITS},
    {"exaone", PRE_DIGITS},      {"minerva-7b", PRE_DIGITS},   {"llama3", PRE_LLAMA3},     {"llama-v3", PRE_LLAMA3},
    {"llama-bpe", PRE_LLAMA3},   {"falcon3", PRE_LLAMA3},      {"falcon-h1", PRE_LLAMA3},  {"pixtral", PRE_LLAMA3},
    {"midm-2.0", PRE_LLAMA3},    {"lfm2", PRE_LLAMA3},         {"dbrx", PRE_LLAMA3},       {"smaug-bpe", PRE_LLAMA3},
    {"qwen2", PRE_QWEN2},        {"deepseek-r1-qwen", PRE_QWEN2}, {"kormo", PRE_QWEN2},    {"megrez", PRE_QWEN2},
    {"glm4", PRE_GLM4},          {"chatglm-bpe", PRE_GLM4},    {"tekken", PRE_TEKKEN},     {"gpt-4o", PRE_GPT4O},
    {"llama4", PRE_GPT4O},
};

static const char RE_LLAMA3[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
                                "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char RE_QWEN2[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
                               "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char RE_TEKKEN[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?"
    "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*"
    "[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char RE_GPT4O[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|"
    "'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|"
    "'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* The pieces of tokenizer.json, built with cJSON_Parse from text where that reads best. */
static cJSON *byte_level(int use_regex) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "type", "ByteLevel");
    cJSON_AddBoolToObject(j, "add_prefix_space", 0);
    cJSON_AddBoolToObject(j, "trim_offsets", 1);
    cJSON_AddBoolToObject(j, "use_regex", use_regex);
    return j;
}

static cJSON *pre_tokenizer(pre_kind kind) {
    if (kind == PRE_GPT2) return byte_level(1);
    cJSON *seq = cJSON_CreateObject(), *list = cJSON_CreateArray(), *first = cJSON_CreateObject();
    cJSON_AddStringToObject(seq, "type", "Sequence");
    cJSON_AddItemToObject(seq, "pretokenizers", list);
    cJSON_AddItemToArray(list, first);
    if (kind == PRE_DIGITS) {
        /* Single digits, then GPT-2's regex: SmolLM's and StarCoder's tokenizer.json. */
        cJSON_AddStringToObject(first, "type", "Digits");
        cJSON_AddBoolToObject(first, "individual_digits", 1);
        cJSON_AddItemToArray(list, byte_level(1));
        return seq;
    }
    const char *re = kind == PRE_QWEN2 ? RE_QWEN2 : kind == PRE_TEKKEN ? RE_TEKKEN : kind == PRE_GPT4O ? RE_GPT4O : RE_LLAMA3;
    cJSON_AddStringToObject(first, "type", "Split");
    cJSON *pat = cJSON_AddObjectToObject(first, "pattern");
    cJSON_AddStringToObject(pat, "Regex", re);
    cJSON_AddStringToObject(first, "behavior", "Isolated");
    cJSON_AddBoolToObject(first, "invert", 0);
    cJSON_AddItemToArray(list, byte_level(0));
    return seq;
}

/* bos/eos added around every encoding (add_special), as Hugging Face's TemplateProcessing:
 * "single" is [bos] A [eos]; "pair" (which Hugging Face requires, though ominix encodes single
 * texts only) repeats it for B with type id 1. */
static void template_piece(cJSON *list, const char *special, const char *seq, int type_id) {
    cJSON *item = cJSON_CreateObject();
    cJSON *s = cJSON_AddObjectToObject(item, special ? "SpecialToken" : "Sequence");
    cJSON_AddStringToObject(s, "id", special ? special : seq);
    cJSON_AddNumberToObject(s, "type_id", type_id);
    cJSON_AddItemToArray(list, item);
}

static cJSON *post_processor(const char *bos, int32_t bos_id, const char *eos, int32_t eos_id) {
    cJSON *p = cJSON_CreateObject(), *specials = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", "TemplateProcessing");
    cJSON *single = cJSON_AddArrayToObject(p, "single"), *pair = cJSON_AddArrayToObject(p, "pair");
    for (int part = 0; part < 2; part++) {
        cJSON *list = part ? pair : single;
        for (int seq = 0; seq <= part; seq++) {
            if (bos) template_piece(list, bos, NULL, seq);
            template_piece(list, NULL, seq ? "B" : "A", seq);
            if (eos) template_piece(list, eos, NULL, seq);
        }
    }
    const char *names[2] = {bos, eos};
    int32_t ids[2] = {bos_id, eos_id};
    for (int w = 0; w < 2; w++) {
        if (!names[w] || cJSON_GetObjectItemCaseSensitive(specials, names[w])) continue;
        cJSON *e = cJSON_AddObjectToObject(specials, names[w]);
        cJSON_AddStringToObject(e, "id", names[w]);
        cJSON_AddItemToArray(cJSON_AddArrayToObject(e, "ids"), cJSON_CreateNumber(ids[w]));
        cJSON_AddItemToArray(cJSON_AddArrayToObject(e, "tokens"), cJSON_CreateString(names[w]));
    }
    cJSON_AddItemToObject(p, "special_tokens", specials);
    return p;
}

/* tokenizer_config.json: the special tokens as strings, add_bos/add_eos and the chat
 * template(s): tokenizer.chat_template, plus tokenizer.chat_template.<name> ones as a named list. */
static int tokenizer_config(const om_gguf *g, const om_gguf_array *tokens, int add_bos, int add_eos, cJSON **out) {
    static const char *const specials[][2] = {{"bos_token", "tokenizer.ggml.bos_token_id"},
                                              {"eos_token", "tokenizer.ggml.eos_token_id"},
                                              {"unk_token", "tokenizer.ggml.unknown_token_id"},
                                              {"pad_token", "tokenizer.ggml.padding_token_id"}};
    cJSON *c = cJSON_CreateObject();
    if (!c) return om_errorf("out of memory");
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
        uint32_t id;
        if (!om_gguf_find(g, specials[i][1])) continue;
        if (om_gguf_get_u32(g, specials[i][1], &id)) goto fail;
        if (tokens && id < tokens->n) cJSON_AddStringToObject(c, specials[i][0], tokens->strs[id]);
    }
    cJSON_AddBoolToObject(c, "add_bos_token", add_bos);
    cJSON_AddBoolToObject(c, "add_eos_token", add_eos);
    const char *tmpl;
    if (om_gguf_get_string_or(g, "tokenizer.chat_template", NULL, &tmpl)) goto fail;
    cJSON *named = cJSON_CreateArray();
    const char *prefix = "tokenizer.chat_template.";
    for (size_t i = 0; i < om_gguf_kv_count(g); i++) {
        const om_gguf_kv *kv = om_gguf_kv_at(g, i);
        if (strncmp(kv->key, prefix, strlen(prefix)) != 0 || kv->type != OM_GGUF_STRING) continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", kv->key + strlen(prefix));
        cJSON_AddStringToObject(e, "template", kv->str);
        cJSON_AddItemToArray(named, e);
    }
    if (cJSON_GetArraySize(named) > 0) {
        if (tmpl) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", "default");
            cJSON_AddStringToObject(e, "template", tmpl);
            cJSON_InsertItemInArray(named, 0, e);
        }
        cJSON_AddItemToObject(c, "chat_template", named);
    } else {
        cJSON_Delete(named);
        if (tmpl) cJSON_AddStringToObject(c, "chat_template", tmpl);
    }
    *out = c;
    return 0;
fail:
    cJSON_Delete(c);
    return -1;
}

/* tokenizer.json for tokenizer.ggml.model "gpt2": byte-level BPE. As transformers builds it
 * from a GGUF file (integrations/gguf), vocabulary entries not spelled in the byte alphabet are
 * respelled into it, and the tokens typed CONTROL (3) and USER_DEFINED (4) that are spelled in
 * it become added tokens (special and not), so that they are matched whole in text. */
static cJSON *gpt2_tokenizer(const om_gguf *g, const om_gguf_array *tokens, const om_gguf_array *types,
                             const om_gguf_array *merges, pre_kind pre, int add_bos, int add_eos) {
    init_byte_chars();
    cJSON *t = cJSON_CreateObject(), *vocab = cJSON_CreateObject(), *added = cJSON_CreateArray();
    char **spelled = calloc(tokens->n ? (size_t)tokens->n : 1, sizeof *spelled);
    str_table table = {0};
    if (!t || !vocab || !added || !spelled || str_table_init(&table, (size_t)tokens->n)) goto oom;
    cJSON_AddStringToObject(t, "version", "1.0");
    cJSON_AddNullToObject(t, "truncation");
    cJSON_AddNullToObject(t, "padding");
    cJSON_AddItemToObject(t, "added_tokens", added);
    for (uint64_t i = 0; i < tokens->n; i++) {
        const char *s = tokens->strs[i];
        size_t n = tokens->str_lens[i];
        if (n == 0 || strlen(s) != n) continue; /* empty, or with a NUL: no text maps to it */
        int ok = byte_level_spelled(s, n);
        int type = types && i < types->n ? (int)om_gguf_array_int(types, i) : 1;
        if (ok && (type == 3 || type == 4)) {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddNumberToObject(a, "id", (double)i);
            cJSON_AddStringToObject(a, "content", s);
            cJSON_AddBoolToObject(a, "single_word", 0);
            cJSON_AddBoolToObject(a, "lstrip", 0);
            cJSON_AddBoolToObject(a, "rstrip", 0);
            cJSON_AddBoolToObject(a, "normalized", 0);
            cJSON_AddBoolToObject(a, "special", type == 3);
            cJSON_AddItemToArray(added, a);
        }
        if (!ok && !(spelled[i] = respell(s, n))) goto oom;
        str_table_put(&table, spelled[i] ? spelled[i] : s, (int32_t)i);
    }
    for (size_t k = 0; k < table.n; k++)
        if (table.keys[k]) cJSON_AddItemToObject(vocab, table.keys[k], cJSON_CreateNumber(table.ids[k]));
    if (pre == PRE_QWEN2) {
        cJSON *nfc = cJSON_AddObjectToObject(t, "normalizer");
        cJSON_AddStringToObject(nfc, "type", "NFC");
    } else {
        cJSON_AddNullToObject(t, "normalizer");
    }
    cJSON_AddItemToObject(t, "pre_tokenizer", pre_tokenizer(pre));
    uint32_t bos = 0, eos = 0;
    const char *bos_s = NULL, *eos_s = NULL;
    if (add_bos && om_gguf_find(g, "tokenizer.ggml.bos_token_id") &&
        !om_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &bos) && bos < tokens->n)
        bos_s = tokens->strs[bos];
    if (add_eos && om_gguf_find(g, "tokenizer.ggml.eos_token_id") &&
        !om_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &eos) && eos < tokens->n)
        eos_s = tokens->strs[eos];
    if (bos_s || eos_s) cJSON_AddItemToObject(t, "post_processor", post_processor(bos_s, (int32_t)bos, eos_s, (int32_t)eos));
    else cJSON_AddNullToObject(t, "post_processor");
    cJSON *dec = byte_level(1);
    cJSON_ReplaceItemInObject(dec, "add_prefix_space", cJSON_CreateBool(1));
    cJSON_AddItemToObject(t, "decoder", dec);
    cJSON *model = cJSON_AddObjectToObject(t, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", 0);
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    /* Llama 3's and Tekken's tokenizer.json look a word up whole before merging (llama.cpp's
     * ignore_merges for those pre-tokenizers). */
    cJSON_AddBoolToObject(model, "ignore_merges", pre == PRE_LLAMA3 || pre == PRE_TEKKEN);
    cJSON_AddItemToObject(model, "vocab", vocab);
    vocab = NULL;
    cJSON *m = cJSON_AddArrayToObject(model, "merges");
    for (uint64_t i = 0; merges && i < merges->n; i++) cJSON_AddItemToArray(m, cJSON_CreateString(merges->strs[i]));
    for (uint64_t i = 0; i < tokens->n; i++) free(spelled[i]);
    free(spelled);
    str_table_free(&table);
    return t;
oom:
    if (spelled)
        for (uint64_t i = 0; i < tokens->n; i++) free(spelled[i]);
    free(spelled);
    str_table_free(&table);
    cJSON_Delete(vocab);
    if (t && !cJSON_GetObjectItemCaseSensitive(t, "added_tokens")) cJSON_Delete(added);
    cJSON_Delete(t);
    om_errorf("%s: out of memory building the tokenizer", om_gguf_path(g));
    return NULL;
}

/* ---- SentencePiece vocabularies (tokenizer.ggml.model "llama") ---- */

/* One merge a SentencePiece vocabulary implies: token `merged` is left + right. */
typedef struct spm_merge {
    int32_t left, right, merged;
    float score;
    int left_len, right_len; /* in characters */
    uint32_t seq;            /* order of discovery, for a stable sort */
} spm_merge;

static int spm_score_desc;

#define SPM_MAX_MERGED 1024

/* transformers' generate_merges: by the merged token's score (descending when the file has
 * scores, else by its id ascending), then by the lengths of the two halves, in the same
 * direction; ties keep their order of discovery. */
static int spm_merge_cmp(const void *pa, const void *pb) {
    const spm_merge *a = pa, *b = pb;
    int d = 0;
    if (a->score != b->score) d = a->score < b->score ? -1 : 1;
    else if (a->left_len != b->left_len) d = a->left_len < b->left_len ? -1 : 1;
    else if (a->right_len != b->right_len) d = a->right_len < b->right_len ? -1 : 1;
    if (d) return spm_score_desc ? -d : d;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Within one token, by the ids of the halves (generate_merges' local sort). */
static int spm_local_cmp(const void *pa, const void *pb) {
    const spm_merge *a = pa, *b = pb;
    if (a->left != b->left) return a->left < b->left ? -1 : 1;
    return (a->right > b->right) - (a->right < b->right);
}

static int utf8_chars(const char *s, size_t n) {
    int c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

static cJSON *added_token(int64_t id, const char *content, int special) {
    cJSON *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "id", (double)id);
    cJSON_AddStringToObject(a, "content", content);
    cJSON_AddBoolToObject(a, "single_word", 0);
    cJSON_AddBoolToObject(a, "lstrip", 0);
    cJSON_AddBoolToObject(a, "rstrip", 0);
    cJSON_AddBoolToObject(a, "normalized", 0);
    cJSON_AddBoolToObject(a, "special", special);
    return a;
}

/* tokenizer.json for a SentencePiece vocabulary (Llama 2, Mistral): BPE with byte fallback over
 * merges derived from the pieces' scores as transformers derives them (the file has no merges),
 * and, as llama.cpp and the models' own tokenizer.json do, U+2581 prepended to the text
 * (tokenizer.ggml.add_space_prefix, true unless the file says otherwise) and spaces written as
 * U+2581. UNKNOWN (2) and CONTROL (3) tokens are special added tokens, USER_DEFINED (4) plain
 * ones. */
static cJSON *spm_tokenizer(const om_gguf *g, const om_gguf_array *tokens, const om_gguf_array *types,
                            const om_gguf_array *scores, int add_space, int add_bos, int add_eos) {
    const char *path = om_gguf_path(g);
    cJSON *t = cJSON_CreateObject(), *vocab = cJSON_CreateObject(), *added = cJSON_CreateArray(), *merges = NULL;
    str_table table = {0};
    spm_merge *m = NULL;
    size_t nm = 0, cap = 0;
    if (!t || !vocab || !added || str_table_init(&table, (size_t)tokens->n)) goto oom;
    cJSON_AddItemToObject(t, "added_tokens", added);
    for (uint64_t i = 0; i < tokens->n; i++) {
        const char *s = tokens->strs[i];
        if (tokens->str_lens[i] == 0 || strlen(s) != tokens->str_lens[i]) continue;
        str_table_put(&table, s, (int32_t)i);
        int type = types && i < types->n ? (int)om_gguf_array_int(types, i) : 1;
        if (type == 2 || type == 3 || type == 4) cJSON_AddItemToArray(added, added_token((int64_t)i, s, type != 4));
    }
    for (size_t k = 0; k < table.n; k++)
        if (table.keys[k]) cJSON_AddItemToObject(vocab, table.keys[k], cJSON_CreateNumber(table.ids[k]));
    /* the merges: every split of every token into two tokens */
    uint32_t seq = 0;
    for (uint64_t i = 0; i < tokens->n; i++) {
        const char *s = tokens->strs[i];
        size_t n = tokens->str_lens[i];
        /* Each split costs a lookup of the whole piece, so a piece of n bytes costs n^2; real
         * pieces are under a hundred bytes, and longer ones are left unmade rather than let a
         * corrupt file take minutes. */
        if (n < 2 || n > SPM_MAX_MERGED || str_table_get(&table, s, n) != (int32_t)i) continue;
        float score = scores ? (float)om_gguf_array_float(scores, i) : (float)i;
        size_t first = nm;
        for (size_t b = 1; b < n; b++) {
            if (((unsigned char)s[b] & 0xc0) == 0x80) continue; /* inside a character */
            int32_t l = str_table_get(&table, s, b), r = str_table_get(&table, s + b, n - b);
            if (l < 0 || r < 0) continue;
            if (nm == cap) {
                size_t c2 = cap ? 2 * cap : 4096;
                spm_merge *m2 = realloc(m, c2 * sizeof *m2);
                if (!m2) goto oom;
                m = m2;
                cap = c2;
            }
            m[nm++] = (spm_merge){l, r, (int32_t)i, score, utf8_chars(s, b), utf8_chars(s + b, n - b), 0};
        }
        if (nm > first) qsort(m + first, nm - first, sizeof *m, spm_local_cmp);
        for (size_t k = first; k < nm; k++) m[k].seq = seq++;
    }
    spm_score_desc = scores != NULL;
    if (nm) qsort(m, nm, sizeof *m, spm_merge_cmp);
    cJSON *model = cJSON_CreateObject();
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    uint32_t unk;
    if (om_gguf_find(g, "tokenizer.ggml.unknown_token_id") &&
        !om_gguf_get_u32(g, "tokenizer.ggml.unknown_token_id", &unk) && unk < tokens->n)
        cJSON_AddStringToObject(model, "unk_token", tokens->strs[unk]);
    else
        cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", 1);
    cJSON_AddBoolToObject(model, "byte_fallback", 1);
    cJSON_AddBoolToObject(model, "ignore_merges", 0);
    cJSON_AddItemToObject(model, "vocab", vocab);
    vocab = NULL;
    merges = cJSON_AddArrayToObject(model, "merges");
    for (size_t k = 0; k < nm; k++) {
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(tokens->strs[m[k].left]));
        cJSON_AddItemToArray(pair, cJSON_CreateString(tokens->strs[m[k].right]));
        cJSON_AddItemToArray(merges, pair);
    }
    cJSON *norm = cJSON_CreateObject(), *list = cJSON_CreateArray();
    cJSON_AddStringToObject(norm, "type", "Sequence");
    cJSON_AddItemToObject(norm, "normalizers", list);
    if (add_space) {
        cJSON *pre = cJSON_CreateObject();
        cJSON_AddStringToObject(pre, "type", "Prepend");
        cJSON_AddStringToObject(pre, "prepend", "\xe2\x96\x81");
        cJSON_AddItemToArray(list, pre);
    }
    cJSON *rep = cJSON_CreateObject();
    cJSON_AddStringToObject(rep, "type", "Replace");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(rep, "pattern"), "String", " ");
    cJSON_AddStringToObject(rep, "content", "\xe2\x96\x81");
    cJSON_AddItemToArray(list, rep);
    cJSON_AddItemToObject(t, "normalizer", norm);
    cJSON_AddNullToObject(t, "pre_tokenizer");
    uint32_t bos = 0, eos = 0;
    const char *bos_s = NULL, *eos_s = NULL;
    if (add_bos && om_gguf_find(g, "tokenizer.ggml.bos_token_id") &&
        !om_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &bos) && bos < tokens->n)
        bos_s = tokens->strs[bos];
    if (add_eos && om_gguf_find(g, "tokenizer.ggml.eos_token_id") &&
        !om_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &eos) && eos < tokens->n)
        eos_s = tokens->strs[eos];
    if (bos_s || eos_s) cJSON_AddItemToObject(t, "post_processor", post_processor(bos_s, (int32_t)bos, eos_s, (int32_t)eos));
    else cJSON_AddNullToObject(t, "post_processor");
    cJSON *dec = cJSON_Parse(add_space ? "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":"
                                         "\"\\u2581\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"
                                         "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}"
                                       : "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":"
                                         "\"\\u2581\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]}");
    cJSON_AddItemToObject(t, "decoder", dec);
    cJSON_AddItemToObject(t, "model", model);
    free(m);
    str_table_free(&table);
    return t;
oom:
    free(m);
    str_table_free(&table);
    cJSON_Delete(vocab);
    if (t && !cJSON_GetObjectItemCaseSensitive(t, "added_tokens")) cJSON_Delete(added);
    cJSON_Delete(t);
    om_errorf("%s: out of memory building the tokenizer", path);
    return NULL;
}

int om_gguf_to_tokenizer(const om_gguf *g, cJSON **tokenizer_json, cJSON **tokenizer_config_out) {
    *tokenizer_json = *tokenizer_config_out = NULL;
    const char *path = om_gguf_path(g), *model, *pre_name, *hf_json;
    const om_gguf_array *tokens, *types, *merges;
    if (om_gguf_get_array_or(g, "tokenizer.ggml.tokens", OM_GGUF_STRING, &tokens)) return -1;
    if (om_gguf_get_string_or(g, "tokenizer.huggingface.json", NULL, &hf_json)) return -1;
    if (!tokens && !hf_json) return 0;
    int add_bos, add_eos;
    pre_kind pre = PRE_GPT2;
    if (om_gguf_get_string_or(g, "tokenizer.ggml.model", "gpt2", &model) ||
        om_gguf_get_string_or(g, "tokenizer.ggml.pre", "default", &pre_name) ||
        om_gguf_get_array_or(g, "tokenizer.ggml.token_type", OM_GGUF_TYPE_COUNT, &types) ||
        om_gguf_get_array_or(g, "tokenizer.ggml.merges", OM_GGUF_STRING, &merges))
        return -1;
    size_t k = 0;
    while (k < sizeof pre_names / sizeof pre_names[0] && strcmp(pre_names[k].name, pre_name) != 0) k++;
    if (k < sizeof pre_names / sizeof pre_names[0]) pre = pre_names[k].kind;
    else if (!hf_json) OM_WARN("%s: unknown tokenizer.ggml.pre '%.64s'; splitting text as GPT-2 does", path, pre_name);
    if (types && !is_int_type(types->type))
        return om_errorf("%s: metadata 'tokenizer.ggml.token_type' is an array of %s, expected integers", path,
                         om_gguf_type_name(types->type));
    /* llama.cpp adds BOS by default for SentencePiece vocabularies and Llama 3's pre-tokenizer;
     * files mostly say so explicitly. */
    const int spm = !strcmp(model, "llama");
    if (om_gguf_get_bool_or(g, "tokenizer.ggml.add_bos_token", spm || pre == PRE_LLAMA3 || pre == PRE_TEKKEN,
                            &add_bos) ||
        om_gguf_get_bool_or(g, "tokenizer.ggml.add_eos_token", 0, &add_eos))
        return -1;
    cJSON *tj = NULL, *tc = NULL;
    if (hf_json) {
        /* The original tokenizer.json, embedded: nothing to rebuild. */
        char label[4200];
        snprintf(label, sizeof label, "%s: metadata 'tokenizer.huggingface.json'", path);
        if (om_json_parse_buffer(hf_json, strlen(hf_json), label, &tj)) return -1;
    } else if (!strcmp(model, "gpt2")) {
        if (!merges) return om_errorf("%s: a gpt2 tokenizer without tokenizer.ggml.merges", path);
        if (!(tj = gpt2_tokenizer(g, tokens, types, merges, pre, add_bos, add_eos))) return -1;
    } else if (spm) {
        const om_gguf_array *scores;
        int add_space;
        if (om_gguf_get_array_or(g, "tokenizer.ggml.scores", OM_GGUF_TYPE_COUNT, &scores) ||
            om_gguf_get_bool_or(g, "tokenizer.ggml.add_space_prefix", 1, &add_space))
            return -1;
        if (scores && scores->type != OM_GGUF_FLOAT32 && scores->type != OM_GGUF_FLOAT64)
            return om_errorf("%s: metadata 'tokenizer.ggml.scores' is an array of %s, expected float32", path,
                             om_gguf_type_name(scores->type));
        if (!(tj = spm_tokenizer(g, tokens, types, scores, add_space, add_bos, add_eos))) return -1;
    } else {
        return om_errorf("%s: tokenizer.ggml.model '%.32s' is not supported (gpt2 and llama are)", path, model);
    }
    if (tokenizer_config(g, tokens, add_bos, add_eos, &tc)) {
        cJSON_Delete(tj);
        return -1;
    }
    *tokenizer_json = tj;
    *tokenizer_config_out = tc;
    return 0;
}

/* ---- tensors ---- */

typedef struct wlist {
    om_weight_info *v;
    size_t n, cap;
} wlist;

static void wlist_free(wlist *l) {
    for (size_t i = 0; i < l->n; i++) free((char *)l->v[i].name);
    free(l->v);
}

/* Appends `name` over nbytes at data with the torch shape (outermost first). */
static int wlist_add(wlist *l, const om_gguf_tensor *t, const char *name, int ndim, const int64_t *shape,
                     const void *data, size_t nbytes) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        om_weight_info *v = realloc(l->v, cap * sizeof *v);
        if (!v) return om_errorf("out of memory");
        l->v = v;
        l->cap = cap;
    }
    om_weight_info *w = &l->v[l->n];
    memset(w, 0, sizeof *w);
    w->name = strdup(name);
    if (!w->name) return om_errorf("out of memory");
    w->dtype_name = t->type_name;
    w->supported = t->supported;
    w->dtype = t->dtype;
    w->ndim = ndim;
    for (int d = 0; d < ndim; d++) w->shape[d] = shape[d];
    w->data = data;
    w->nbytes = nbytes;
    l->n++;
    return 0;
}

/* The tensor under `name` with the dimensions reversed into torch order. */
static int add_whole(wlist *l, const om_gguf_tensor *t, const char *name) {
    int64_t shape[4];
    for (int d = 0; d < t->n_dims; d++) shape[d] = t->ne[t->n_dims - 1 - d];
    return wlist_add(l, t, name, t->n_dims, shape, t->data, t->nbytes);
}

/* Rows [first, first + count) of a 2-D tensor (or elements of a 1-D one) under `name`. */
static int add_rows(wlist *l, const om_gguf_tensor *t, const char *name, int64_t first, int64_t count) {
    int64_t rows = t->n_dims == 1 ? t->ne[0] : t->ne[1];
    size_t row_bytes = rows ? t->nbytes / (size_t)rows : 0;
    const uint8_t *p = (const uint8_t *)t->data + (size_t)first * row_bytes;
    if (t->n_dims == 1) return wlist_add(l, t, name, 1, &count, p, (size_t)count * row_bytes);
    int64_t shape[2] = {count, t->ne[0]};
    return wlist_add(l, t, name, 2, shape, p, (size_t)count * row_bytes);
}

/* Hugging Face's name for "blk.N.<base>" (base without .weight/.bias) in the architecture, or
 * NULL for a name it has no counterpart for. `glm_fused_up`: the block has ffn_up but no
 * ffn_gate, GLM-4's fused gate_up_proj. */
static const char *hf_layer_name(arch_id a, const char *base, int glm_fused_up) {
    static const char *const common[][2] = {
        {"attn_norm", "input_layernorm"},         {"attn_q", "self_attn.q_proj"},
        {"attn_k", "self_attn.k_proj"},           {"attn_v", "self_attn.v_proj"},
        {"attn_output", "self_attn.o_proj"},      {"attn_q_norm", "self_attn.q_norm"},
        {"attn_k_norm", "self_attn.k_norm"},      {"ffn_norm", "post_attention_layernorm"},
        {"ffn_gate", "mlp.gate_proj"},            {"ffn_down", "mlp.down_proj"},
        {"ffn_gate_shexp", "mlp.shared_experts.gate_proj"}, {"ffn_up_shexp", "mlp.shared_experts.up_proj"},
        {"ffn_down_shexp", "mlp.shared_experts.down_proj"},
    };
    if (!strcmp(base, "ffn_up")) return a == A_GLM4 && glm_fused_up ? "mlp.gate_up_proj" : "mlp.up_proj";
    if (!strcmp(base, "ffn_gate_inp")) return a == A_LLAMA ? "block_sparse_moe.gate" : "mlp.gate";
    if (!strcmp(base, "post_attention_norm"))
        return a == A_GLM4 ? "post_self_attn_layernorm" : a == A_GLM4MOE ? "post_attention_layernorm" : NULL;
    if (!strcmp(base, "post_ffw_norm")) return a == A_GLM4 ? "post_mlp_layernorm" : NULL;
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
        if (!strcmp(common[i][0], base)) return common[i][1];
    return NULL;
}

/* The decimal number (at most 6 digits: layer and expert indices) at s, with *end after it;
 * -1 when there is none. */
static int parse_index(const char *s, const char **end) {
    int v = 0, n = 0;
    for (; s[n] >= '0' && s[n] <= '9'; n++) {
        if (n == 6) return -1;
        v = v * 10 + (s[n] - '0');
    }
    *end = s + n;
    return n ? v : -1;
}

/* Maps one "blk.N.<rest>" tensor. Returns 1 when it is not one this table knows (kept under
 * its GGUF name), 0 when mapped, -1 on error. */
static int map_layer_tensor(const om_gguf *g, arch_id a, const om_gguf_tensor *t, const cJSON *config, wlist *l) {
    const char *path = om_gguf_path(g);
    const char *rest;
    if (strncmp(t->name, "blk.", 4) != 0) return 1;
    int layer = parse_index(t->name + 4, &rest);
    if (layer < 0 || *rest != '.') return 1;
    rest++;
    const char *dot = strrchr(rest, '.');
    if (!dot || (strcmp(dot, ".weight") != 0 && strcmp(dot, ".bias") != 0)) return 1;
    const char *suffix = dot + 1;
    char base[64];
    if ((size_t)(dot - rest) >= sizeof base) return 1;
    memcpy(base, rest, (size_t)(dot - rest));
    base[dot - rest] = 0;
    char prefix[48], name[256];
    snprintf(prefix, sizeof prefix, "model.layers.%d", layer);

    /* GLM-4-MoE's routing bias: "e_score_correction_bias" is one word in Hugging Face. */
    if (!strcmp(base, "exp_probs_b")) {
        snprintf(name, sizeof name, "%s.mlp.gate.e_score_correction_bias", prefix);
        return add_whole(l, t, name);
    }
    /* Stacked experts [E, out, in]: one view per expert. */
    static const char *const exps[][3] = {{"ffn_gate_exps", "w1", "gate_proj"},
                                          {"ffn_up_exps", "w3", "up_proj"},
                                          {"ffn_down_exps", "w2", "down_proj"}};
    for (int k = 0; k < 3; k++) {
        if (strcmp(base, exps[k][0]) != 0) continue;
        if (t->n_dims != 3 || strcmp(suffix, "weight") != 0)
            return om_errorf("%s: tensor '%s' should be a 3-D weight [experts, out, in]", path, t->name);
        int64_t E = t->ne[2], shape[2] = {t->ne[1], t->ne[0]};
        if (E < 1 || E > OM_MOE_MAX_EXPERTS)
            return om_errorf("%s: tensor '%s' stacks %lld experts; 1 to %d are supported", path, t->name, (long long)E,
                             OM_MOE_MAX_EXPERTS);
        size_t per = E ? t->nbytes / (size_t)E : 0;
        for (int64_t e = 0; e < E; e++) {
            if (a == A_LLAMA) snprintf(name, sizeof name, "%s.block_sparse_moe.experts.%lld.%s.weight", prefix, (long long)e, exps[k][1]);
            else snprintf(name, sizeof name, "%s.mlp.experts.%lld.%s.weight", prefix, (long long)e, exps[k][2]);
            if (wlist_add(l, t, name, 2, shape, (const uint8_t *)t->data + (size_t)e * per, per)) return -1;
        }
        return 0;
    }
    /* Old Mixtral files: one tensor per expert, "blk.N.ffn_gate.E.weight". */
    const char *edot = strchr(base, '.'), *eend = "";
    int expert = edot ? parse_index(edot + 1, &eend) : -1;
    if (a == A_LLAMA && expert >= 0 && *eend == 0) {
        size_t wl = (size_t)(edot - base);
        const char *w = wl == 8 && !strncmp(base, "ffn_gate", 8)   ? "w1"
                        : wl == 6 && !strncmp(base, "ffn_up", 6)   ? "w3"
                        : wl == 8 && !strncmp(base, "ffn_down", 8) ? "w2"
                                                                   : NULL;
        if (!w) return 1;
        snprintf(name, sizeof name, "%s.block_sparse_moe.experts.%d.%s.%s", prefix, expert, w, suffix);
        return add_whole(l, t, name);
    }
    /* Fused q/k/v rows. */
    if (!strcmp(base, "attn_qkv")) {
        int64_t n_head = 0, n_kv = 0, hd = 0;
        om_json_int(config, "config", "num_attention_heads", &n_head);
        om_json_int(config, "config", "num_key_value_heads", &n_kv);
        om_json_int(config, "config", "head_dim", &hd);
        int64_t q = n_head * hd, kv = n_kv * hd, rows = t->n_dims == 1 ? t->ne[0] : t->ne[1];
        if ((t->n_dims != 1 && t->n_dims != 2) || rows != q + 2 * kv)
            return om_errorf("%s: tensor '%s' has %lld rows; q, k and v of this model take %lld", path, t->name,
                             (long long)rows, (long long)(q + 2 * kv));
        const char *parts[3] = {"q_proj", "k_proj", "v_proj"};
        int64_t first[3] = {0, q, q + kv}, count[3] = {q, kv, kv};
        for (int k = 0; k < 3; k++) {
            snprintf(name, sizeof name, "%s.self_attn.%s.%s", prefix, parts[k], suffix);
            if (add_rows(l, t, name, first[k], count[k])) return -1;
        }
        return 0;
    }
    char gate[96];
    snprintf(gate, sizeof gate, "blk.%d.ffn_gate.weight", layer);
    const char *hf = hf_layer_name(a, base, !om_gguf_find_tensor(g, gate));
    if (!hf) return 1;
    snprintf(name, sizeof name, "%s.%s.%s", prefix, hf, suffix);
    return add_whole(l, t, name);
}

static void release_gguf(void *g) { om_gguf_free(g); }

int om_gguf_to_weights(om_gguf *g, const cJSON *config, om_weights **out) {
    *out = NULL;
    const arch_info *arch = NULL;
    if (find_arch(g, &arch)) return -1;
    wlist l = {0};
    int rc = 0;
    for (size_t i = 0; i < om_gguf_tensor_count(g) && !rc; i++) {
        const om_gguf_tensor *t = om_gguf_tensor_at(g, i);
        if (!strcmp(t->name, "token_embd.weight")) rc = add_whole(&l, t, "model.embed_tokens.weight");
        else if (!strcmp(t->name, "output_norm.weight")) rc = add_whole(&l, t, "model.norm.weight");
        else if (!strcmp(t->name, "output.weight")) rc = add_whole(&l, t, "lm_head.weight");
        else if (!strcmp(t->name, "rope_freqs.weight")) continue; /* read into the config */
        else {
            int r = map_layer_tensor(g, arch->id, t, config, &l);
            /* Anything else keeps its GGUF name: nothing asks for it, and nothing is lost. */
            rc = r == 1 ? add_whole(&l, t, t->name) : r;
        }
    }
    if (!rc) rc = om_weights_from_list(om_gguf_path(g), om_gguf_path(g), om_gguf_file_size(g), l.v, l.n, g,
                                       release_gguf, out);
    wlist_free(&l);
    return rc ? -1 : 0;
}

/* ---- the hook the core calls ---- */

int om_checkpoint_open_gguf(const char *path, om_checkpoint *out) {
    memset(out, 0, sizeof *out);
    om_gguf *g;
    if (om_gguf_open(path, &g)) return -1;
    uint32_t splits;
    if (om_gguf_get_u32_or(g, "split.count", 1, &splits)) goto fail;
    if (splits > 1) {
        om_errorf("%s: one of %u split files; merge them first (llama-gguf-split --merge)", path, splits);
        goto fail;
    }
    if (om_gguf_to_config(g, &out->config) ||
        om_gguf_to_tokenizer(g, &out->tokenizer_json, &out->tokenizer_config) ||
        om_gguf_to_weights(g, out->config, &out->weights))
        goto fail;
    return 0;
fail:
    cJSON_Delete(out->config);
    cJSON_Delete(out->tokenizer_json);
    cJSON_Delete(out->tokenizer_config);
    memset(out, 0, sizeof *out);
    om_gguf_free(g);
    return -1;
}
