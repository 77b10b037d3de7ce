/* The generation loop and log-prob helpers (see generate.h). */
#include "core/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/model.h"

double om_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int32_t om_argmax(const float *logits, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

static double log_sum_exp(const float *logits, int n) {
    float mx = logits[om_argmax(logits, n)];
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    return mx + log(sum);
}

float om_logprob_of(const float *logits, int n, int32_t id) { return (float)(logits[id] - log_sum_exp(logits, n)); }

void om_top_logprobs(const float *logits, int n, int k, om_token_logprob *out) {
    if (k > n) k = n;
    double lse = log_sum_exp(logits, n);
    int filled = 0;
    for (int i = 0; i < n; i++) {
        if (filled == k && logits[i] <= logits[out[k - 1].id]) continue;
        int j = filled < k ? filled++ : k - 1;
        while (j > 0 && logits[i] > logits[out[j - 1].id]) {
            out[j] = out[j - 1];
            j--;
        }
        out[j].id = i;
    }
    for (int j = 0; j < k; j++) out[j].logprob = (float)(logits[out[j].id] - lse);
}

static int is_eos(const om_model *m, int32_t t) {
    for (int i = 0; i < m->n_eos; i++)
        if (m->eos_ids[i] == t) return 1;
    return 0;
}

int om_generate(om_context *ctx, const int32_t *prompt, int n_prompt, const om_generate_params *p, om_generate_stats *st) {
    memset(st, 0, sizeof *st);
    const int V = ctx->model->hp.n_vocab;
    const int32_t seq = p->seq;
    if (n_prompt <= 0) return om_errorf("the prompt is empty");
    if (n_prompt + (p->max_tokens > 0 ? p->max_tokens - 1 : 0) > ctx->n_ctx)
        return om_errorf("prompt of %d tokens plus %d to generate exceeds the context of %d positions", n_prompt,
                         p->max_tokens, ctx->n_ctx);
    st->prompt_tokens = n_prompt;
    int first = 0;
    if (p->reuse_cache) {
        /* At least the last prompt token is run again: its logits start the generation. */
        first = om_context_reuse_prefix(ctx, seq, prompt, n_prompt - 1);
    } else {
        om_context_clear_seq(ctx, seq);
    }
    st->cached_tokens = first;
    const int n_run = n_prompt - first;
    int32_t *seqs = malloc((size_t)n_run * sizeof(int32_t)), *pos = malloc((size_t)n_run * sizeof(int32_t));
    if (!seqs || !pos) {
        free(seqs);
        free(pos);
        return om_errorf("out of memory");
    }
    for (int i = 0; i < n_run; i++) {
        seqs[i] = seq;
        pos[i] = first + i;
    }
    double t0 = om_now_seconds();
    om_batch b = {n_run, prompt + first, seqs, pos, NULL};
    int rc = om_decode(ctx, &b);
    free(seqs);
    free(pos);
    st->prefill_seconds = om_now_seconds() - t0;
    if (rc) return -1;
    int32_t n_pos = n_prompt;
    double t1 = om_now_seconds();
    for (int g = 0; g < p->max_tokens; g++) {
        const float *logits = om_get_logits(ctx, 0);
        int32_t tok = p->pick ? p->pick(p->pick_user, logits, V) : om_argmax(logits, V);
        if (tok < 0) return -1;
        st->generated_tokens++;
        int stop = p->on_token ? p->on_token(p->user, tok, logits, V) : 0;
        if (!p->ignore_eos && is_eos(ctx->model, tok)) {
            st->stopped_by_eos = 1;
            break;
        }
        if (stop || g + 1 == p->max_tokens) break;
        om_batch one = {1, &tok, &seq, &n_pos, NULL};
        if (om_decode(ctx, &one)) return -1;
        n_pos++;
        st->decode_steps++;
    }
    st->decode_seconds = om_now_seconds() - t1;
    return 0;
}
