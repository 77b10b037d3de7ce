/* The sampler: picks the next token from a row of logits. Temperature 0 is greedy. Otherwise
 * the logits go through, in this order: logit bias; repetition penalty (Hugging Face's: over
 * the prompt and the output, positive logits divided by it, negative ones multiplied);
 * presence and frequency penalties (OpenAI's: over the output only, minus presence if the token
 * occurred, minus frequency times its count); temperature; top-k; top-p (the smallest set of
 * most likely tokens whose probability reaches top_p); min-p (drop tokens whose probability is
 * below min_p times the most likely one's); then one draw from the rest. The generator is
 * seeded: the same seed and inputs give the same tokens. */
#ifndef OM_SAMPLER_H
#define OM_SAMPLER_H

#include <stdint.h>

typedef struct om_logit_bias {
    int32_t token;
    float bias;
} om_logit_bias;

typedef struct om_sampler_params {
    float temperature;        /* 0: greedy */
    int top_k;                /* 0: off */
    float top_p;              /* 1: off */
    float min_p;              /* 0: off */
    float repetition_penalty; /* 1: off */
    float presence_penalty;   /* 0: off */
    float frequency_penalty;  /* 0: off */
    const om_logit_bias *logit_bias;
    int n_logit_bias;
    uint64_t seed;
} om_sampler_params;

typedef struct om_sampler om_sampler;

om_sampler_params om_sampler_default_params(void);
/* Checks the parameters (error names the field) and allocates for n_vocab. */
int om_sampler_create(const om_sampler_params *p, int n_vocab, om_sampler **out);
void om_sampler_free(om_sampler *s);
/* Starts a new sequence: forgets the history, keeps the random state. */
void om_sampler_reset(om_sampler *s);
/* Records a prompt token (repetition penalty only) or a generated one (all penalties). */
void om_sampler_accept_prompt(om_sampler *s, int32_t token);
void om_sampler_accept(om_sampler *s, int32_t token);
/* The next token; logits are not modified. */
int32_t om_sampler_sample(om_sampler *s, const float *logits);
/* The probabilities the draw would use after all transformations (for tests), written to
 * probs[n_vocab]. */
void om_sampler_distribution(om_sampler *s, const float *logits, float *probs);

#endif
