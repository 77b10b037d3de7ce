/* Rotary position embedding tables from a Hugging Face config: rope_theta (or
 * rope_parameters.rope_theta), partial_rotary_factor, and the scaling kinds of
 * rope_scaling / rope_parameters: default, linear, dynamic (NTK), yarn, llama3. The formulas
 * follow transformers' modeling_rope_utils so that positions rotate identically. */
#ifndef OM_ROPE_H
#define OM_ROPE_H

#include <cjson/cJSON.h>

#include "core/backend.h"

typedef enum { OM_ROPE_DEFAULT, OM_ROPE_LINEAR, OM_ROPE_DYNAMIC, OM_ROPE_YARN, OM_ROPE_LLAMA3 } om_rope_kind;

typedef struct om_rope_config {
    om_rope_kind kind;
    double theta;
    int head_dim, n_rot;
    int interleaved;
    double factor;
    int max_position_embeddings, original_max_position_embeddings;
    double low_freq_factor, high_freq_factor;          /* llama3 */
    double beta_fast, beta_slow, attention_factor;     /* yarn */
    int truncate;                                      /* yarn */
} om_rope_config;

/* The config key that overrides the family's `interleaved`: true when each head's rotary
 * pairs are adjacent dimensions (2i, 2i+1), false when they are the halves (i, i + n_rot/2).
 * Hugging Face configs never carry it; the GGUF adapter sets it when llama.cpp's converter
 * has reordered the q/k rows (Llama: halves -> adjacent), so that the rows load unchanged. */
#define OM_ROPE_INTERLEAVED_KEY "ominix.rope_interleaved"

/* Reads the rope fields of config.json (`file` names it in errors); `interleaved` is the
 * pairing of the family's checkpoints unless the config says otherwise (see above). n_rot is
 * head_dim * partial_rotary_factor. */
int om_rope_config_parse(const cJSON *config, const char *file, int head_dim, int interleaved, om_rope_config *out);

/* The table for a forward pass whose largest position is max_pos (only dynamic NTK depends
 * on it). */
void om_rope_build(const om_rope_config *cfg, int max_pos, om_rope *out);

#endif
