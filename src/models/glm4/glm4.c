/* The GLM-4 family: GLM-4 (Glm4ForCausalLM, e.g. GLM-4-9B-0414) and GLM-4-MoE
 * (Glm4MoeForCausalLM, GLM-4.5 / 4.5-Air). Parses their config.json fields and names their
 * checkpoint tensors; the forward pass is the core's decoder stack. As transformers runs them:
 *   - both rotate only head_dim * partial_rotary_factor dimensions (0.5 when the config omits
 *     it); GLM-4 rotates adjacent pairs (2i, 2i+1), GLM-4-MoE the halves (i, i + n_rot/2);
 *   - GLM-4 normalises each block's output again before its residual add
 *     (post_self_attn_layernorm, post_mlp_layernorm) and fuses gate and up (mlp.gate_up_proj);
 *   - GLM-4-MoE routes by sigmoid scores plus e_score_correction_bias (for choosing only),
 *     within the topk_group best of n_group groups, weights normalised then scaled by
 *     routed_scaling_factor, plus shared experts; its first first_k_dense_replace layers are
 *     dense. */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/json_util.h"
#include "core/llm_blocks.h"
#include "core/model.h"
#include "core/rope.h"

#define CFG "config.json"

static const om_attn_names attn_names = {"q_proj", "k_proj", "v_proj", "o_proj", "q_norm", "k_norm"};
static const char *const fused_names[3] = {"gate_up_proj", NULL, "down_proj"};
static const char *const mlp_names[3] = {"gate_proj", "up_proj", "down_proj"};

/* The routed-expert fields of a GLM-4-MoE config; F is one expert's size, shared_F the shared
 * experts' (n_shared_experts x moe_intermediate_size). */
static int parse_moe(const cJSON *c, om_moe_weights *e, int *F, int *shared_F, int *first_dense) {
    int n_shared = 0;
    double scaling = 1.0;
    e->scoring = OM_MOE_SIGMOID;
    if (om_llm_config_int(c, "n_routed_experts", 0, 1, &e->n_expert) ||
        om_llm_config_int(c, "num_experts_per_tok", 0, 1, &e->top_k) ||
        om_llm_config_int(c, "moe_intermediate_size", 0, 1, F) ||
        om_llm_config_int(c, "n_shared_experts", 1, 0, &n_shared) ||
        om_llm_config_int(c, "n_group", 1, 0, &e->n_group) || om_llm_config_int(c, "topk_group", 1, 0, &e->topk_group) ||
        om_llm_config_int(c, "first_k_dense_replace", 1, 0, first_dense) ||
        om_json_bool_or(c, CFG, "norm_topk_prob", 1, &e->norm_topk_prob) ||
        om_json_float_or(c, CFG, "routed_scaling_factor", 1.0, &scaling))
        return -1;
    e->routed_scaling = (float)scaling;
    *shared_F = n_shared * *F;
    if (e->n_group < 1 || e->n_group > OM_MOE_MAX_GROUPS || e->n_expert % e->n_group ||
        e->topk_group < 1 || e->topk_group > e->n_group ||
        (e->n_group > 1 && e->top_k > e->topk_group * (e->n_expert / e->n_group)))
        return om_errorf(CFG ": n_group %d / topk_group %d do not fit %d experts with %d per token", e->n_group,
                         e->topk_group, e->n_expert, e->top_k);
    return 0;
}

static int glm4_load(om_model *m) {
    const cJSON *c = m->config;
    const int is_moe = !strcmp(m->model_type, "glm4_moe");
    om_llm_model *lm;
    /* transformers' rms_norm_eps defaults: 1.5625e-7 for GLM-4, 1e-5 for GLM-4-MoE. */
    if (om_llm_model_create(m, is_moe ? 1e-5 : 1.5625e-7, &lm)) return -1;
    int attn_bias = 0, qk_norm = 0, F = 0, shared_F = 0, first_dense = m->hp.n_layer;
    om_moe_weights moe = {0};
    if (om_json_bool_or(c, CFG, "attention_bias", !is_moe, &attn_bias) ||
        om_json_bool_or(c, CFG, "use_qk_norm", 0, &qk_norm) || (is_moe && parse_moe(c, &moe, &F, &shared_F, &first_dense)))
        return -1;
    if (om_rope_config_parse(c, CFG, m->hp.head_dim, !is_moe, &lm->rope)) return -1;
    /* transformers' GLM configs default partial_rotary_factor to 0.5, not 1. */
    if (!cJSON_GetObjectItemCaseSensitive(c, "partial_rotary_factor") &&
        !cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "rope_parameters"), "partial_rotary_factor") &&
        !cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "rope_scaling"), "partial_rotary_factor")) {
        if (m->hp.head_dim % 4) return om_errorf(CFG ": head_dim %d / 2 is not an even rotary size", m->hp.head_dim);
        lm->rope.n_rot = m->hp.head_dim / 2;
    }
    if (om_llm_load_outer(m, lm, "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight")) return -1;

    /* GLM-4's o_proj has no bias whatever attention_bias says; GLM-4-MoE's q/k norms are
     * present only with use_qk_norm (GLM-4 has none). */
    const unsigned attn_flags = (attn_bias ? OM_LOAD_QKV_BIAS : 0) | (is_moe && qk_norm ? OM_LOAD_QK_NORM : 0);
    for (int i = 0; i < m->hp.n_layer; i++) {
        om_llm_layer *L = &lm->layers[i];
        const int64_t H = lm->hidden;
        char p[64], ap[96];
        snprintf(p, sizeof p, "model.layers.%d", i);
        snprintf(ap, sizeof ap, "%s.self_attn", p);
        if (om_model_tensor(m, &L->attn_norm, 1, H, 0, "%s.input_layernorm.weight", p) ||
            om_model_tensor(m, &L->ffn_norm, 1, H, 0, "%s.post_attention_layernorm.weight", p) ||
            om_llm_load_attn(m, lm, &L->attn, &attn_names, attn_flags, ap))
            return -1;
        snprintf(ap, sizeof ap, "%s.mlp", p);
        if (!is_moe) {
            if (om_model_tensor(m, &L->attn_out_norm, 1, H, 0, "%s.post_self_attn_layernorm.weight", p) ||
                om_model_tensor(m, &L->ffn_out_norm, 1, H, 0, "%s.post_mlp_layernorm.weight", p) ||
                om_llm_load_ffn(m, &L->ffn, lm->hidden, lm->ffn_dim, 0, ap, fused_names))
                return -1;
            continue;
        }
        if (i < first_dense) {
            if (om_llm_load_ffn(m, &L->ffn, lm->hidden, lm->ffn_dim, 0, ap, mlp_names)) return -1;
            continue;
        }
        L->sparse = 1;
        L->moe = moe;
        char sp[128];
        snprintf(sp, sizeof sp, "%s.shared_experts", ap);
        if (om_llm_load_moe(m, &L->moe, lm->hidden, F, ap, "gate", "experts", mlp_names) ||
            om_model_tensor(m, &L->moe.score_bias, 1, moe.n_expert, 0, "%s.gate.e_score_correction_bias", ap) ||
            (shared_F > 0 && om_llm_load_ffn(m, &L->moe.shared, lm->hidden, shared_F, 0, sp, mlp_names)))
            return -1;
    }
    return 0;
}

static const char *const glm4_types[] = {"glm4", "glm4_moe", NULL};

const om_family om_family_glm4 = OM_LLM_FAMILY("glm4", glm4_types, glm4_load);
