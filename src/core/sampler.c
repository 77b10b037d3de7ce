/* The sampler (see sampler.h). Top-k, top-p and min-p only need the most likely tokens, so
 * candidates are found by a bounded selection that grows until it covers the requested
 * probability mass, instead of sorting the whole vocabulary every step. */
#include "core/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

typedef struct {
    float v;
    int32_t id;
} scored;

struct om_sampler {
    om_sampler_params p;
    om_logit_bias *bias;
    int n_vocab;
    uint64_t rng[4];
    float *work;       /* transformed logits */
    int32_t *cand;     /* candidate ids, most likely first */
    int32_t *prompt_seen; /* tokens for the repetition penalty: 1 if seen */
    int32_t *count;    /* occurrences in the output */
    int32_t *touched;  /* ids whose entries above are non-zero, to reset cheaply */
    int n_touched;
    scored *sorted;    /* for the full sort, when a short selection is not enough */
};

om_sampler_params om_sampler_default_params(void) {
    return (om_sampler_params){.temperature = 1.0f, .top_p = 1.0f, .repetition_penalty = 1.0f};
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** */
static uint64_t next_u64(uint64_t *s) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static double next_unit(uint64_t *s) { return (double)(next_u64(s) >> 11) * 0x1.0p-53; }

int om_sampler_create(const om_sampler_params *p, int n_vocab, om_sampler **out) {
    *out = NULL;
    if (!(p->temperature >= 0) || !isfinite(p->temperature)) return om_errorf("temperature must be >= 0");
    if (p->top_k < 0) return om_errorf("top_k must be >= 0");
    if (!(p->top_p > 0 && p->top_p <= 1)) return om_errorf("top_p must be in (0, 1]");
    if (!(p->min_p >= 0 && p->min_p <= 1)) return om_errorf("min_p must be in [0, 1]");
    if (!(p->repetition_penalty > 0) || !isfinite(p->repetition_penalty))
        return om_errorf("repetition_penalty must be > 0");
    if (!isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty))
        return om_errorf("presence_penalty and frequency_penalty must be finite");
    for (int i = 0; i < p->n_logit_bias; i++) {
        if (p->logit_bias[i].token < 0 || p->logit_bias[i].token >= n_vocab)
            return om_errorf("logit_bias: token %d is outside the vocabulary (%d)", p->logit_bias[i].token, n_vocab);
        if (isnan(p->logit_bias[i].bias)) return om_errorf("logit_bias: bias of token %d is not a number", p->logit_bias[i].token);
    }
    om_sampler *s = calloc(1, sizeof *s);
    if (!s) return om_errorf("out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->work = malloc((size_t)n_vocab * sizeof(float));
    s->cand = malloc((size_t)n_vocab * sizeof(int32_t));
    s->prompt_seen = calloc((size_t)n_vocab, sizeof(int32_t));
    s->count = calloc((size_t)n_vocab, sizeof(int32_t));
    s->touched = malloc((size_t)n_vocab * sizeof(int32_t));
    s->sorted = malloc((size_t)n_vocab * sizeof(scored));
    s->bias = p->n_logit_bias ? malloc((size_t)p->n_logit_bias * sizeof *s->bias) : NULL;
    if (!s->work || !s->cand || !s->sorted || !s->prompt_seen || !s->count || !s->touched || (p->n_logit_bias && !s->bias)) {
        om_sampler_free(s);
        return om_errorf("out of memory");
    }
    if (p->n_logit_bias) memcpy(s->bias, p->logit_bias, (size_t)p->n_logit_bias * sizeof *s->bias);
    s->p.logit_bias = s->bias;
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
    *out = s;
    return 0;
}

void om_sampler_free(om_sampler *s) {
    if (!s) return;
    free(s->work);
    free(s->cand);
    free(s->prompt_seen);
    free(s->count);
    free(s->touched);
    free(s->sorted);
    free(s->bias);
    free(s);
}

void om_sampler_reset(om_sampler *s) {
    for (int i = 0; i < s->n_touched; i++) s->prompt_seen[s->touched[i]] = s->count[s->touched[i]] = 0;
    s->n_touched = 0;
}

static void touch(om_sampler *s, int32_t t) {
    if (!s->prompt_seen[t] && !s->count[t]) s->touched[s->n_touched++] = t;
}

void om_sampler_accept_prompt(om_sampler *s, int32_t t) {
    if (t < 0 || t >= s->n_vocab) return;
    touch(s, t);
    s->prompt_seen[t] = 1;
}

void om_sampler_accept(om_sampler *s, int32_t t) {
    if (t < 0 || t >= s->n_vocab) return;
    touch(s, t);
    s->count[t]++;
}

static void apply_biases(om_sampler *s, const float *logits) {
    memcpy(s->work, logits, (size_t)s->n_vocab * sizeof(float));
    for (int i = 0; i < s->p.n_logit_bias; i++) s->work[s->bias[i].token] += s->bias[i].bias;
    const om_sampler_params *p = &s->p;
    for (int i = 0; i < s->n_touched; i++) {
        int32_t t = s->touched[i];
        float *l = &s->work[t];
        if (p->repetition_penalty != 1.0f) *l = *l > 0 ? *l / p->repetition_penalty : *l * p->repetition_penalty;
        if (s->count[t]) *l -= p->presence_penalty + p->frequency_penalty * (float)s->count[t];
    }
}

/* The n largest entries of v (n small), largest first, into idx. */
static int select_top(const float *v, int len, int n, int32_t *idx) {
    if (n > len) n = len;
    int filled = 0;
    for (int i = 0; i < len; i++) {
        if (filled == n && !(v[i] > v[idx[n - 1]])) continue;
        if (v[i] == -INFINITY && filled == n) continue;
        int j = filled < n ? filled++ : n - 1;
        while (j > 0 && v[i] > v[idx[j - 1]]) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    return filled;
}

static int cmp_scored(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Every id, most likely first. */
static int sort_all(om_sampler *s) {
    for (int i = 0; i < s->n_vocab; i++) s->sorted[i] = (scored){s->work[i], i};
    qsort(s->sorted, (size_t)s->n_vocab, sizeof(scored), cmp_scored);
    for (int i = 0; i < s->n_vocab; i++) s->cand[i] = s->sorted[i].id;
    return s->n_vocab;
}

/* Fills s->cand with the candidates after top-k/top-p/min-p and s->work[cand] with their
 * probabilities (normalised over the candidates); returns how many. */
static int candidates(om_sampler *s) {
    const om_sampler_params *p = &s->p;
    const int V = s->n_vocab;
    float *w = s->work;
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) {
        w[i] /= p->temperature; /* divided, not multiplied by the inverse, as transformers does */
        if (w[i] > mx) mx = w[i];
    }
    double z = 0;
    for (int i = 0; i < V; i++) z += exp((double)w[i] - mx);
    int limit = p->top_k > 0 && p->top_k < V ? p->top_k : V;
    int need_order = limit < V || p->top_p < 1.0f;
    int n;
    if (need_order) {
        /* A short selection usually holds top_k tokens or the top_p mass; when it does not,
         * sort everything once. */
        int want = limit < 256 ? limit : 256;
        n = select_top(w, V, want, s->cand);
        double mass = 0;
        for (int j = 0; j < n; j++) mass += exp((double)w[s->cand[j]] - mx) / z;
        if (!(n >= limit || n == V || (p->top_p < 1.0f && mass >= p->top_p))) n = sort_all(s);
        if (n > limit) n = limit;
        if (p->top_p < 1.0f) {
            double mass = 0;
            int keep = 0;
            while (keep < n) {
                mass += exp((double)w[s->cand[keep]] - mx) / z;
                keep++;
                if (mass >= p->top_p) break;
            }
            n = keep;
        }
    } else {
        n = 0;
        for (int i = 0; i < V; i++) s->cand[n++] = i;
    }
    double pmax = exp((double)w[need_order ? s->cand[0] : 0] - mx) / z;
    if (!need_order)
        for (int i = 0; i < V; i++) pmax = fmax(pmax, exp((double)w[i] - mx) / z);
    int kept = 0;
    double total = 0;
    for (int j = 0; j < n; j++) {
        int32_t t = s->cand[j];
        double pr = exp((double)w[t] - mx) / z;
        if (p->min_p > 0 && pr < p->min_p * pmax) continue;
        s->cand[kept++] = t;
        total += pr;
    }
    for (int j = 0; j < kept; j++) w[s->cand[j]] = (float)(exp((double)w[s->cand[j]] - mx) / z / total);
    return kept;
}

int32_t om_sampler_sample(om_sampler *s, const float *logits) {
    apply_biases(s, logits);
    if (s->p.temperature == 0.0f) {
        int32_t best = 0;
        for (int i = 1; i < s->n_vocab; i++)
            if (s->work[i] > s->work[best]) best = i;
        return best;
    }
    int n = candidates(s);
    if (n == 0) return 0;
    double r = next_unit(s->rng), acc = 0;
    for (int j = 0; j < n; j++) {
        acc += s->work[s->cand[j]];
        if (r < acc) return s->cand[j];
    }
    return s->cand[n - 1];
}

void om_sampler_distribution(om_sampler *s, const float *logits, float *probs) {
    apply_biases(s, logits);
    memset(probs, 0, (size_t)s->n_vocab * sizeof(float));
    if (s->p.temperature == 0.0f) {
        int32_t best = 0;
        for (int i = 1; i < s->n_vocab; i++)
            if (s->work[i] > s->work[best]) best = i;
        probs[best] = 1;
        return;
    }
    int n = candidates(s);
    for (int j = 0; j < n; j++) probs[s->cand[j]] = s->work[s->cand[j]];
}
