/* Rotary tables (see rope.h). Frequencies are formed in f32 as torch forms them, from
 * base ** (2i / dim), so that the angles agree with the reference to the last bits. */
#include "core/rope.h"

#include <math.h>
#include <string.h>

#include "core/error.h"
#include "core/json_util.h"

static const cJSON *rope_params(const cJSON *config) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(config, "rope_parameters");
    if (cJSON_IsObject(p)) return p;
    p = cJSON_GetObjectItemCaseSensitive(config, "rope_scaling");
    return cJSON_IsObject(p) ? p : NULL;
}

int om_rope_config_parse(const cJSON *config, const char *file, int head_dim, int interleaved, om_rope_config *out) {
    memset(out, 0, sizeof *out);
    out->head_dim = head_dim;
    /* The family passes the pairing of its Hugging Face checkpoints; a checkpoint whose q/k rows
     * were reordered on conversion (GGUF) says which pairing its rows need instead. */
    if (om_json_bool_or(config, file, OM_ROPE_INTERLEAVED_KEY, interleaved, &interleaved)) return -1;
    out->interleaved = interleaved;
    const cJSON *p = rope_params(config);
    double theta = 10000.0, prf = 1.0;
    int64_t maxpos = 0;
    if (om_json_float_or(config, file, "rope_theta", 10000.0, &theta)) return -1;
    if (om_json_float_or(config, file, "partial_rotary_factor", 1.0, &prf)) return -1;
    if (om_json_int_or(config, file, "max_position_embeddings", 0, &maxpos)) return -1;
    out->max_position_embeddings = (int)maxpos;
    out->kind = OM_ROPE_DEFAULT;
    out->factor = 1.0;
    if (p) {
        if (om_json_float_or(p, file, "rope_theta", theta, &theta)) return -1;
        if (om_json_float_or(p, file, "partial_rotary_factor", prf, &prf)) return -1;
        const char *type = om_json_string_or(p, file, "rope_type", "");
        if (type && !type[0]) type = om_json_string_or(p, file, "type", "default");
        if (!type) return -1;
        if (!strcmp(type, "default")) out->kind = OM_ROPE_DEFAULT;
        else if (!strcmp(type, "linear")) out->kind = OM_ROPE_LINEAR;
        else if (!strcmp(type, "dynamic")) out->kind = OM_ROPE_DYNAMIC;
        else if (!strcmp(type, "yarn")) out->kind = OM_ROPE_YARN;
        else if (!strcmp(type, "llama3")) out->kind = OM_ROPE_LLAMA3;
        else return om_errorf("%s: unsupported rope type '%s'", file, type);
        int64_t orig = 0;
        if (om_json_int_or(config, file, "original_max_position_embeddings", maxpos, &orig)) return -1;
        if (om_json_int_or(p, file, "original_max_position_embeddings", orig, &orig)) return -1;
        out->original_max_position_embeddings = (int)orig;
        if (out->kind != OM_ROPE_DEFAULT) {
            double factor = 0;
            if (om_json_float_or(p, file, "factor", 0.0, &factor)) return -1;
            if (factor == 0.0 && out->kind == OM_ROPE_YARN && orig > 0) factor = (double)maxpos / (double)orig;
            if (!(factor > 0)) return om_errorf("%s: rope scaling needs a positive 'factor'", file);
            out->factor = factor;
        }
        if (om_json_float_or(p, file, "low_freq_factor", 1.0, &out->low_freq_factor)) return -1;
        if (om_json_float_or(p, file, "high_freq_factor", 4.0, &out->high_freq_factor)) return -1;
        if (om_json_float_or(p, file, "beta_fast", 32.0, &out->beta_fast)) return -1;
        if (om_json_float_or(p, file, "beta_slow", 1.0, &out->beta_slow)) return -1;
        if (om_json_float_or(p, file, "attention_factor", 0.0, &out->attention_factor)) return -1;
        if (out->kind == OM_ROPE_YARN && out->attention_factor == 0.0) {
            double mscale = 0, mscale_all = 0;
            if (om_json_float_or(p, file, "mscale", 0.0, &mscale)) return -1;
            if (om_json_float_or(p, file, "mscale_all_dim", 0.0, &mscale_all)) return -1;
            double f = out->factor;
#define OM_YARN_MSCALE(s, m) ((s) <= 1 ? 1.0 : 0.1 * (m) * log(s) + 1.0)
            out->attention_factor = (mscale != 0 && mscale_all != 0)
                                        ? OM_YARN_MSCALE(f, mscale) / OM_YARN_MSCALE(f, mscale_all)
                                        : OM_YARN_MSCALE(f, 1.0);
#undef OM_YARN_MSCALE
        }
        int truncate = 1;
        if (om_json_bool_or(p, file, "truncate", 1, &truncate)) return -1;
        out->truncate = truncate;
        if (out->kind == OM_ROPE_LLAMA3 && out->high_freq_factor == out->low_freq_factor)
            return om_errorf("%s: llama3 rope needs high_freq_factor != low_freq_factor", file);
    }
    if (!(theta > 0)) return om_errorf("%s: rope_theta must be positive", file);
    out->theta = theta;
    out->n_rot = (int)(head_dim * prf);
    if (out->n_rot <= 0 || out->n_rot > head_dim || out->n_rot % 2 || out->n_rot / 2 > OM_ROPE_MAX_PAIRS)
        return om_errorf("%s: rotary dimension %d (head_dim %d x partial_rotary_factor %g) is not supported", file,
                         out->n_rot, head_dim, prf);
    return 0;
}

static double yarn_correction_dim(double rotations, int dim, double base, double maxpos) {
    return (dim * log(maxpos / (rotations * 2 * M_PI))) / (2 * log(base));
}

void om_rope_build(const om_rope_config *cfg, int max_pos, om_rope *out) {
    const int dim = cfg->n_rot, half = dim / 2;
    double base = cfg->theta;
    memset(out, 0, sizeof *out);
    out->n_rot = dim;
    out->interleaved = cfg->interleaved;
    out->attn_factor = 1.0f;
    if (cfg->kind == OM_ROPE_DYNAMIC) {
        double seq_len = max_pos + 1 > cfg->max_position_embeddings ? max_pos + 1 : cfg->max_position_embeddings;
        double mp = cfg->max_position_embeddings > 0 ? cfg->max_position_embeddings : seq_len;
        base = base * pow(cfg->factor * seq_len / mp - (cfg->factor - 1), (double)dim / (dim - 2));
    }
    for (int i = 0; i < half; i++) {
        float exponent = (float)(2 * i) / (float)dim;
        float pos_freq = powf((float)base, exponent);
        out->inv_freq[i] = 1.0f / pos_freq;
    }
    switch (cfg->kind) {
    case OM_ROPE_LINEAR:
        for (int i = 0; i < half; i++) out->inv_freq[i] = (float)(out->inv_freq[i] / cfg->factor);
        break;
    case OM_ROPE_YARN: {
        double low = yarn_correction_dim(cfg->beta_fast, dim, base, cfg->original_max_position_embeddings);
        double high = yarn_correction_dim(cfg->beta_slow, dim, base, cfg->original_max_position_embeddings);
        if (cfg->truncate) {
            low = floor(low);
            high = ceil(high);
        }
        if (low < 0) low = 0;
        if (high > dim - 1) high = dim - 1;
        if (low == high) high += 0.001;
        for (int i = 0; i < half; i++) {
            float pos_freq = powf((float)base, (float)(2 * i) / (float)dim);
            float extrap = 1.0f / pos_freq;
            float interp = 1.0f / ((float)cfg->factor * pos_freq);
            float ramp = (float)(((float)i - low) / (high - low));
            ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
            float extrap_factor = 1.0f - ramp;
            out->inv_freq[i] = interp * (1.0f - extrap_factor) + extrap * extrap_factor;
        }
        out->attn_factor = (float)cfg->attention_factor;
        break;
    }
    case OM_ROPE_LLAMA3: {
        double old = cfg->original_max_position_embeddings;
        double low_wl = old / cfg->low_freq_factor, high_wl = old / cfg->high_freq_factor;
        for (int i = 0; i < half; i++) {
            float f = out->inv_freq[i];
            float wl = (float)(2 * M_PI) / f;
            float scaled = wl > low_wl ? (float)(f / cfg->factor) : f;
            if (!(wl < high_wl) && !(wl > low_wl)) {
                float smooth = (float)((old / wl - cfg->low_freq_factor) / (cfg->high_freq_factor - cfg->low_freq_factor));
                scaled = (1 - smooth) * scaled / (float)cfg->factor + smooth * scaled;
            }
            out->inv_freq[i] = scaled;
        }
        break;
    }
    default: break;
    }
}
