/* Text completion: what the CLI and the server share above the token level. A text model is a
 * model with its tokenizer and chat template; a completion renders messages through the
 * template (or takes raw text), encodes, samples with the sampler, stops at end-of-sequence
 * ids, stop strings or max tokens, and streams UTF-8 text deltas with reasoning told apart. */
#ifndef OM_COMPLETION_H
#define OM_COMPLETION_H

#include <cjson/cJSON.h>

#include "core/chat_template.h"
#include "core/generate.h"
#include "core/sampler.h"
#include "core/text_stream.h"
#include "core/tokenizer.h"
#include "ominix/ominix.h"

typedef struct om_text_model {
    om_model *model;
    om_tokenizer *tok;          /* NULL when the folder has no tokenizer.json */
    om_chat_template *tmpl;     /* NULL when it has no chat template */
    cJSON *template_vars;       /* special tokens the template sees when they do not come with it
                                   (a GGUF file's bos_token, eos_token, ...); NULL for folders */
    int thinks;                 /* the vocabulary has <think> and </think> */
    om_sampler_params defaults; /* sampling of generation_config.json (greedy unless do_sample) */
} om_text_model;

/* Loads the model, and the tokenizer and chat template when the folder (or the GGUF file) has
 * them. */
int om_text_model_load(const char *dir, const om_model_params *p, om_text_model **out);
void om_text_model_free(om_text_model *tm);

/* Renders messages (and tools, may be NULL) with add_generation_prompt; enable_thinking < 0
 * leaves the template's default. Returns a malloc'd string or NULL with the error set. */
char *om_text_model_render(const om_text_model *tm, const cJSON *messages, const cJSON *tools, int enable_thinking);
/* Encodes a prompt: templated text as is (the template wrote the special tokens), raw text
 * with the tokenizer's own special tokens (as Hugging Face's tokenizer(text) does). */
int om_text_model_encode(const om_text_model *tm, const char *text, int templated, int32_t **ids, int *n);

typedef struct om_completion_params {
    om_sampler_params sampling;
    int max_tokens;
    int ignore_eos;
    const char *const *stop;
    int n_stop;
    int reasoning_open;  /* the prompt opened <think> (see om_prompt_opens_reasoning) */
    int seq;
    int reuse_cache;
    om_text_fn on_text;  /* text deltas (may be NULL) */
    om_token_fn on_token; /* each token with its logits, before its text (may be NULL) */
    void *user;
} om_completion_params;

typedef struct om_completion_result {
    om_generate_stats stats;
    const char *finish_reason; /* "stop" (end-of-sequence or stop string) or "length" */
} om_completion_result;

int om_complete(om_text_model *tm, om_context *ctx, const int32_t *prompt, int n_prompt,
                const om_completion_params *p, om_completion_result *res);

/* 1 when a rendered prompt ends inside an opened <think> (templates that force reasoning). */
int om_prompt_opens_reasoning(const char *prompt);

#endif
