/* The generation loop: prefill a prompt as one batch (split by the context's n_batch), then
 * decode one token at a time, picking each token from the logits, until max_tokens or an
 * end-of-sequence id. A callback sees every generated token with its logits. Also log-prob
 * helpers shared by the CLI and the server. */
#ifndef OM_GENERATE_H
#define OM_GENERATE_H

#include <stdint.h>

#include "ominix/ominix.h"

typedef struct om_token_logprob {
    int32_t id;
    float logprob;
} om_token_logprob;

/* Index of the largest logit (the lowest index among equals). */
int32_t om_argmax(const float *logits, int n);
/* log_softmax(logits)[id], computed in double. */
float om_logprob_of(const float *logits, int n, int32_t id);
/* The k most likely tokens with their log-probabilities, most likely first. */
void om_top_logprobs(const float *logits, int n, int k, om_token_logprob *out);

/* Picks the next token from logits; return < 0 to stop with an error already recorded. */
typedef int32_t (*om_pick_fn)(void *user, const float *logits, int n_vocab);
/* Sees each generated token; return non-zero to stop generating. */
typedef int (*om_token_fn)(void *user, int32_t token, const float *logits, int n_vocab);

typedef struct om_generate_params {
    int max_tokens;
    int ignore_eos;
    int seq;            /* the context's sequence slot to use */
    int reuse_cache;    /* keep the part of the prompt already in the sequence's cache */
    om_pick_fn pick;    /* NULL: greedy */
    void *pick_user;
    om_token_fn on_token;
    void *user;
} om_generate_params;

typedef struct om_generate_stats {
    int prompt_tokens, generated_tokens;
    int decode_steps; /* forward passes after the prefill */
    int cached_tokens; /* prompt tokens found in the cache, not recomputed */
    double prefill_seconds, decode_seconds;
    int stopped_by_eos;
} om_generate_stats;

/* Runs the prompt (all of it, or with reuse_cache what is not cached yet) and generates. */
int om_generate(om_context *ctx, const int32_t *prompt, int n_prompt, const om_generate_params *p, om_generate_stats *stats);

double om_now_seconds(void);

#endif
