/* The model-agnostic model and context, and the interface every model family implements. The
 * core holds a model's checkpoint (weights, config.json), its backend and the few numbers any
 * causal LM has; a family (src/models/<name>/) parses its own config fields, names its own
 * tensors and composes its forward pass from core ops. The table of families lives with the
 * families (src/models/registry.c), so the core names none of them. */
#ifndef OM_MODEL_H
#define OM_MODEL_H

#include <cjson/cJSON.h>

#include "core/backend.h"
#include "core/kv_cache.h"
#include "core/weights.h"
#include "ominix/ominix.h"

#define OM_MAX_EOS 8

typedef struct om_model_hparams {
    int n_vocab;
    int n_layer;
    int n_kv_head;
    int head_dim;
    int n_ctx_train;
    /* Sliding window shared by every layer (0: some layer attends to the whole context); the
     * KV cache then keeps only the window (plus one batch) per sequence. */
    int kv_window;
} om_model_hparams;

typedef struct om_family om_family;

struct om_model {
    const om_family *family;
    char *dir; /* the model folder, or the checkpoint file (.gguf) */
    char *model_type;
    cJSON *config;
    om_weights *weights;
    /* What a single-file checkpoint (GGUF) carries in place of a folder's tokenizer.json and
     * tokenizer_config.json (special tokens, chat_template); NULL for folders. */
    cJSON *tokenizer_json, *tokenizer_config;
    om_backend *backend;
    om_model_hparams hp;
    int32_t eos_ids[OM_MAX_EOS];
    int n_eos;
    void *impl; /* the family's own state */
};

struct om_context {
    om_model *model;
    om_kv_cache kv;
    int n_ctx, n_seq_max, n_batch;
    int32_t *seq_len; /* cached positions per sequence */
    int32_t *tokens;  /* [n_seq_max][n_ctx]: the token at each cached position */
    float *logits;    /* [n_logits, n_vocab] on the host */
    int n_logits, logits_cap;
    void *impl; /* the family's scratch buffers */
};

struct om_family {
    const char *name;
    /* config.json model_type values it runs (NULL-terminated). */
    const char *const *model_types;
    /* Reads model->config and model->weights; fills model->hp and model->impl. */
    int (*load)(om_model *model);
    void (*free)(om_model *model);
    /* Allocates per-context scratch for batches of up to ctx->n_batch tokens. */
    int (*context_init)(om_context *ctx);
    void (*context_free)(om_context *ctx);
    /* Runs a batch (already validated, at most n_batch tokens) and writes the logits of the
     * tokens with want_logits set, in order, to logits_out ([count, n_vocab]). */
    int (*forward)(om_context *ctx, const om_batch *batch, const int8_t *want_logits, float *logits_out);
    /* Bytes of weights one decode step reads (for the benchmark's bandwidth bound). */
    size_t (*decode_bytes)(const om_model *model);
};

/* The checkpoint tensor whose name is formatted from fmt, with exactly the given shape (d1 is
 * ignored for 1-D). Errors name the tensor and the file. */
int om_model_tensor(om_model *m, om_tensor *out, int ndim, int64_t d0, int64_t d1, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Like om_model_tensor, but an absent tensor leaves out zeroed (data NULL) and succeeds. */
int om_model_tensor_opt(om_model *m, om_tensor *out, int ndim, int64_t d0, int64_t d1, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* A checkpoint in another format, given as what a Hugging Face folder would hold: config.json
 * (with model_type), the tensors under their Hugging Face names, and tokenizer.json /
 * tokenizer_config.json when the file carries a tokenizer (else NULL). */
typedef struct om_checkpoint {
    cJSON *config;
    om_weights *weights;
    cJSON *tokenizer_json;
    cJSON *tokenizer_config;
} om_checkpoint;

/* Defined by the model layer (src/models/gguf_adapter.c), which knows llama.cpp's architecture
 * and tensor names: reads a .gguf file into *out (all four freed by the caller on success). */
int om_checkpoint_open_gguf(const char *path, om_checkpoint *out);

/* Defined by the model layer (src/models/registry.c). NULL when no family runs it. */
const om_family *om_family_find(const char *model_type);
/* "qwen2, qwen3, ..." for error messages. */
const char *om_family_supported_types(void);

#endif
