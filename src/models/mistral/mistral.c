/* The Llama-architecture family: Llama (LlamaForCausalLM: optional attention_bias and mlp_bias,
 * explicit head_dim, llama3 rope scaling via the core's rope config), Mistral (the same with an
 * optional sliding window over every layer) and Mixtral (Mistral whose feed-forward is a sparse
 * mixture of experts: softmax over all experts, top-k, renormalised). Parses their config.json
 * fields and names their checkpoint tensors; the forward pass is the core's decoder stack. */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/json_util.h"
#include "core/llm_blocks.h"
#include "core/model.h"
#include "core/rope.h"

static const om_attn_names attn_names = {"q_proj", "k_proj", "v_proj", "o_proj", NULL, NULL};
static const char *const mlp_names[3] = {"gate_proj", "up_proj", "down_proj"};
/* Mixtral's experts keep the original Mistral names: w1 gate, w3 up, w2 down. */
static const char *const expert_names[3] = {"w1", "w3", "w2"};

static int mistral_load(om_model *m) {
    const cJSON *c = m->config;
    const int is_llama = !strcmp(m->model_type, "llama"), is_mixtral = !strcmp(m->model_type, "mixtral");
    om_llm_model *lm;
    /* transformers' rms_norm_eps defaults: 1e-5 for Mixtral, 1e-6 for Llama and Mistral. */
    if (om_llm_model_create(m, is_mixtral ? 1e-5 : 1e-6, &lm)) return -1;
    int attn_bias = 0, mlp_bias = 0, window = 0;
    om_moe_weights moe = {.scoring = OM_MOE_SOFTMAX, .norm_topk_prob = 1, .routed_scaling = 1.0f};
    if (om_json_bool_or(c, "config.json", "attention_bias", 0, &attn_bias) ||
        om_json_bool_or(c, "config.json", "mlp_bias", 0, &mlp_bias))
        return -1;
    /* Llama has no window; Mistral and Mixtral apply sliding_window to every layer when set
     * (null in most released configs). */
    if (!is_llama && om_llm_config_int(c, "sliding_window", 0, 0, &window)) return -1;
    if (is_mixtral && (om_llm_config_int(c, "num_local_experts", 0, 1, &moe.n_expert) ||
                       om_llm_config_int(c, "num_experts_per_tok", 2, 0, &moe.top_k)))
        return -1;
    if (om_rope_config_parse(c, "config.json", m->hp.head_dim, 0, &lm->rope)) return -1;
    m->hp.kv_window = window;
    if (om_llm_load_outer(m, lm, "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight")) return -1;

    const unsigned attn_flags = attn_bias ? OM_LOAD_QKV_BIAS | OM_LOAD_O_BIAS : 0;
    for (int i = 0; i < m->hp.n_layer; i++) {
        om_llm_layer *L = &lm->layers[i];
        char p[64], ap[96];
        snprintf(p, sizeof p, "model.layers.%d", i);
        snprintf(ap, sizeof ap, "%s.self_attn", p);
        L->window = window;
        if (om_model_tensor(m, &L->attn_norm, 1, lm->hidden, 0, "%s.input_layernorm.weight", p) ||
            om_model_tensor(m, &L->ffn_norm, 1, lm->hidden, 0, "%s.post_attention_layernorm.weight", p) ||
            om_llm_load_attn(m, lm, &L->attn, &attn_names, attn_flags, ap))
            return -1;
        if (!is_mixtral) {
            snprintf(ap, sizeof ap, "%s.mlp", p);
            if (om_llm_load_ffn(m, &L->ffn, lm->hidden, lm->ffn_dim, mlp_bias, ap, mlp_names)) return -1;
            continue;
        }
        L->sparse = 1;
        L->moe = moe;
        snprintf(ap, sizeof ap, "%s.block_sparse_moe", p);
        if (om_llm_load_moe(m, &L->moe, lm->hidden, lm->ffn_dim, ap, "gate", "experts", expert_names)) return -1;
    }
    return 0;
}

static const char *const mistral_types[] = {"llama", "mistral", "mixtral", NULL};

const om_family om_family_mistral = OM_LLM_FAMILY("mistral", mistral_types, mistral_load);
