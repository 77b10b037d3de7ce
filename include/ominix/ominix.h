/* ominix public C API: load a model folder, create a context (KV cache for several
 * sequences), run batches of tokens through the model, read logits.
 *
 * Conventions: functions returning int return 0 on success and non-zero on failure; the
 * one-line message (naming the file, tensor, field or position at fault) is then available
 * from om_last_error() on the same thread. Handles are opaque; every create or load function has its
 * free function. A model is read-only once loaded and may serve several contexts. */
#ifndef OMINIX_H
#define OMINIX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct om_model om_model;
typedef struct om_context om_context;

const char *om_last_error(void);

typedef struct om_model_params {
    int n_threads; /* CPU threads; <= 0: one per online CPU */
} om_model_params;

om_model_params om_model_default_params(void);
/* Loads a Hugging Face model folder (config.json, *.safetensors); the family is chosen from
 * config.json's model_type / architectures. */
int om_model_load(const char *dir, const om_model_params *params, om_model **out);
void om_model_free(om_model *model);

int om_model_n_vocab(const om_model *model);
int om_model_n_ctx_train(const om_model *model);
/* The family's name ("qwen", ...) and config.json's model_type. */
const char *om_model_family(const om_model *model);
const char *om_model_type(const om_model *model);
/* End-of-sequence ids from generation_config.json (else config.json); returns the count. */
int om_model_eos_ids(const om_model *model, const int32_t **ids);
/* Bytes of the mapped checkpoint files. */
size_t om_model_weight_bytes(const om_model *model);
/* Bytes of weights one decode step reads (embedding lookups and unused experts excluded). */
size_t om_model_decode_bytes(const om_model *model);

typedef struct om_context_params {
    int n_ctx;     /* positions per sequence; <= 0: the model's trained context, capped at 4096 */
    int n_seq_max; /* sequences held at once (KV cache slots) */
    int n_batch;   /* most tokens per forward step; larger batches are split */
} om_context_params;

om_context_params om_context_default_params(void);
int om_context_create(om_model *model, const om_context_params *params, om_context **out);
void om_context_free(om_context *ctx);
int om_context_n_ctx(const om_context *ctx);
size_t om_context_kv_bytes(const om_context *ctx);

/* A batch of tokens, each with its sequence (KV slot) and position in that sequence. Tokens
 * of one sequence must come in order of position; the positions before a token's position
 * must already be in the cache or earlier in the batch. logits[i] != 0 asks for the logits
 * after token i (NULL: only the batch's last token). */
typedef struct om_batch {
    int n_tokens;
    const int32_t *token;
    const int32_t *seq;
    const int32_t *pos;
    const int8_t *logits;
} om_batch;

/* Runs the batch; validates ids, sequences and positions first. */
int om_decode(om_context *ctx, const om_batch *batch);
/* The logits (n_vocab floats) of the i-th token that asked for them in the last om_decode. */
const float *om_get_logits(const om_context *ctx, int i);
/* Forgets the cached positions of a sequence. */
void om_context_clear_seq(om_context *ctx, int seq);
/* Keeps the longest cached prefix of the sequence that equals tokens[0..n) and forgets the
 * rest; returns its length. The caller then decodes tokens from that position on. */
int om_context_reuse_prefix(om_context *ctx, int seq, const int32_t *tokens, int n);

#ifdef __cplusplus
}
#endif

#endif
