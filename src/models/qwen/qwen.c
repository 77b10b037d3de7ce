/* The Qwen family: Qwen2 (q/k/v biases, optional sliding-window layers), Qwen3 (per-head q/k
 * RMSNorm, explicit head_dim) and Qwen3-MoE (top-k routed experts on the layers chosen by
 * decoder_sparse_step and mlp_only_layers). Parses their config.json fields and names their
 * checkpoint tensors; the forward pass is the core's decoder stack. */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/json_util.h"
#include "core/llm_blocks.h"
#include "core/model.h"
#include "core/rope.h"

#define CFG "config.json"

static const om_attn_names attn_names = {"q_proj", "k_proj", "v_proj", "o_proj", "q_norm", "k_norm"};
static const char *const mlp_names[3] = {"gate_proj", "up_proj", "down_proj"};

static int in_int_array(const cJSON *arr, int v) {
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        if (cJSON_IsNumber(e) && (int)e->valuedouble == v) return 1;
    }
    return 0;
}

static int qwen_load(om_model *m) {
    const cJSON *c = m->config;
    const int is_qwen2 = !strcmp(m->model_type, "qwen2");
    const int is_moe = !strcmp(m->model_type, "qwen3_moe");
    om_llm_model *lm;
    if (om_llm_model_create(m, 1e-6, &lm)) return -1;
    if (m->hp.n_ctx_train == 0) m->hp.n_ctx_train = 32768;
    int attn_bias;
    if (om_json_bool_or(c, CFG, "attention_bias", is_qwen2, &attn_bias)) return -1;
    if (om_rope_config_parse(c, CFG, m->hp.head_dim, 0, &lm->rope)) return -1;

    /* Qwen2's optional sliding window: per layer from layer_types, else from max_window_layers. */
    int use_sliding = 0, window = 0, max_window_layers = m->hp.n_layer;
    if (om_json_bool_or(c, CFG, "use_sliding_window", 0, &use_sliding)) return -1;
    if (use_sliding && (om_llm_config_int(c, "sliding_window", 0, 1, &window) ||
                        om_llm_config_int(c, "max_window_layers", m->hp.n_layer, 0, &max_window_layers)))
        return -1;
    const cJSON *layer_types = cJSON_GetObjectItemCaseSensitive(c, "layer_types");

    /* Qwen3-MoE: which layers route through experts. */
    int sparse_step = 1, moe_ffn = 0;
    om_moe_weights moe = {.scoring = OM_MOE_SOFTMAX, .routed_scaling = 1.0f};
    const cJSON *mlp_only = NULL;
    if (is_moe) {
        /* transformers 5 saves num_local_experts; released checkpoints say num_experts. */
        const char *experts_key = cJSON_GetObjectItemCaseSensitive(c, "num_experts") ? "num_experts" : "num_local_experts";
        if (om_llm_config_int(c, experts_key, 0, 1, &moe.n_expert) ||
            om_llm_config_int(c, "num_experts_per_tok", 0, 1, &moe.top_k) ||
            om_llm_config_int(c, "moe_intermediate_size", 0, 1, &moe_ffn) ||
            om_llm_config_int(c, "decoder_sparse_step", 1, 0, &sparse_step) ||
            om_json_bool_or(c, CFG, "norm_topk_prob", 0, &moe.norm_topk_prob))
            return -1;
        mlp_only = cJSON_GetObjectItemCaseSensitive(c, "mlp_only_layers");
    }
    if (om_llm_load_outer(m, lm, "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight")) return -1;

    /* Qwen2 biases q, k, v; Qwen3 with attention_bias all four, and normalises q and k. */
    const unsigned attn_flags = is_qwen2 ? (attn_bias ? OM_LOAD_QKV_BIAS : 0)
                                         : OM_LOAD_QK_NORM | (attn_bias ? OM_LOAD_QKV_BIAS | OM_LOAD_O_BIAS : 0);
    for (int i = 0; i < m->hp.n_layer; i++) {
        om_llm_layer *L = &lm->layers[i];
        char p[64], ap[96];
        snprintf(p, sizeof p, "model.layers.%d", i);
        snprintf(ap, sizeof ap, "%s.self_attn", p);
        if (om_model_tensor(m, &L->attn_norm, 1, lm->hidden, 0, "%s.input_layernorm.weight", p) ||
            om_model_tensor(m, &L->ffn_norm, 1, lm->hidden, 0, "%s.post_attention_layernorm.weight", p) ||
            om_llm_load_attn(m, lm, &L->attn, &attn_names, attn_flags, ap))
            return -1;
        if (use_sliding) {
            const cJSON *lt = cJSON_GetArrayItem(layer_types, i);
            int sliding = cJSON_IsString(lt) ? !strcmp(lt->valuestring, "sliding_attention") : i >= max_window_layers;
            L->window = sliding ? window : 0;
        }
        L->sparse = is_moe && moe.n_expert > 0 && !in_int_array(mlp_only, i) &&
                    (i + 1) % (sparse_step ? sparse_step : 1) == 0;
        snprintf(ap, sizeof ap, "%s.mlp", p);
        if (!L->sparse) {
            if (om_llm_load_ffn(m, &L->ffn, lm->hidden, lm->ffn_dim, 0, ap, mlp_names)) return -1;
            continue;
        }
        L->moe = moe;
        if (om_llm_load_moe(m, &L->moe, lm->hidden, moe_ffn, ap, "gate", "experts", mlp_names)) return -1;
    }
    return 0;
}

static const char *const qwen_types[] = {"qwen2", "qwen3", "qwen3_moe", NULL};

const om_family om_family_qwen = OM_LLM_FAMILY("qwen", qwen_types, qwen_load);
