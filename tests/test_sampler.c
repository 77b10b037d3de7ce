/* Sampler tests: the sampled frequencies match the intended distribution (the softmax of the
 * transformed logits, computed here independently by sorting) within 5 standard errors per
 * token over 200,000 draws, for temperature, top-k, top-p, min-p and their mix; penalties and
 * logit bias transform the logits as Hugging Face and OpenAI define them; the same seed gives
 * the same tokens; a large vocabulary's top-p set equals the brute-force one; bad parameters
 * are refused with the field named. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/sampler.h"
#include "test_util.h"

#define DRAWS 200000

static int cmp_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* Intended distribution: softmax(l / T), then top-k, top-p, min-p, renormalised. */
static void intended(const float *l, int V, float T, int top_k, float top_p, float min_p, double *p) {
    double mx = -INFINITY, z = 0;
    for (int i = 0; i < V; i++) mx = fmax(mx, l[i] / T);
    for (int i = 0; i < V; i++) z += p[i] = exp(l[i] / T - mx);
    for (int i = 0; i < V; i++) p[i] /= z;
    double *sorted = malloc(sizeof(double) * V);
    memcpy(sorted, p, sizeof(double) * V);
    qsort(sorted, V, sizeof(double), cmp_desc);
    double cut = 0; /* keep p >= cut */
    if (top_k > 0 && top_k < V) cut = fmax(cut, sorted[top_k - 1]);
    if (top_p < 1) {
        double acc = 0;
        for (int j = 0; j < V; j++) {
            acc += sorted[j];
            if (acc >= top_p) {
                cut = fmax(cut, sorted[j]);
                break;
            }
        }
    }
    if (min_p > 0) cut = fmax(cut, min_p * sorted[0]);
    double kept = 0;
    for (int i = 0; i < V; i++) kept += p[i] = p[i] >= cut ? p[i] : 0;
    for (int i = 0; i < V; i++) p[i] /= kept;
    free(sorted);
}

static void check_frequencies(const char *what, const float *l, int V, om_sampler_params sp) {
    om_sampler *s;
    CHECK(om_sampler_create(&sp, V, &s) == 0);
    double *want = calloc(V, sizeof(double)), *freq = calloc(V, sizeof(double));
    intended(l, V, sp.temperature, sp.top_k, sp.top_p, sp.min_p, want);
    for (int i = 0; i < DRAWS; i++) freq[om_sampler_sample(s, l)] += 1.0 / DRAWS;
    int ok = 1;
    for (int i = 0; i < V; i++) {
        double se = sqrt(want[i] * (1 - want[i]) / DRAWS);
        if (fabs(freq[i] - want[i]) > 5 * se + 1e-9) {
            ok = 0;
            fprintf(stderr, "%s: token %d frequency %.5f, intended %.5f\n", what, i, freq[i], want[i]);
        }
    }
    CHECKF(ok, "%s: sampled frequencies differ from the intended distribution", what);
    free(want);
    free(freq);
    om_sampler_free(s);
}

int main(void) {
    const float l[8] = {1.5f, 0.2f, -0.3f, 2.1f, 0.9f, -2.0f, 1.4f, 0.0f};
    om_sampler_params sp = om_sampler_default_params();

    sp.temperature = 0.8f;
    check_frequencies("temperature 0.8", l, 8, sp);
    sp.temperature = 1.5f;
    sp.top_k = 3;
    check_frequencies("top-k 3", l, 8, sp);
    sp.top_k = 0;
    sp.top_p = 0.7f;
    check_frequencies("top-p 0.7", l, 8, sp);
    sp.top_p = 1.0f;
    sp.min_p = 0.3f;
    check_frequencies("min-p 0.3", l, 8, sp);
    sp.top_k = 5;
    sp.top_p = 0.9f;
    sp.min_p = 0.1f;
    sp.temperature = 0.7f;
    check_frequencies("top-k 5 + top-p 0.9 + min-p 0.1", l, 8, sp);

    /* Greedy, and a logit bias that overturns it. */
    om_sampler *s;
    sp = om_sampler_default_params();
    sp.temperature = 0;
    CHECK(om_sampler_create(&sp, 8, &s) == 0);
    CHECK(om_sampler_sample(s, l) == 3);
    om_sampler_free(s);
    om_logit_bias bias[2] = {{0, 1.0f}, {3, -100.0f}};
    sp.logit_bias = bias;
    sp.n_logit_bias = 2;
    CHECK(om_sampler_create(&sp, 8, &s) == 0);
    CHECK(om_sampler_sample(s, l) == 0); /* 1.5 + 1 beats the rest once 3 is pushed down */
    om_sampler_free(s);

    /* Penalties: repetition over prompt and output, presence/frequency over the output. */
    sp = om_sampler_default_params();
    sp.temperature = 1.0f;
    sp.repetition_penalty = 2.0f;
    sp.presence_penalty = 0.5f;
    sp.frequency_penalty = 0.25f;
    CHECK(om_sampler_create(&sp, 8, &s) == 0);
    om_sampler_accept_prompt(s, 0); /* positive logit 1.5 -> 0.75 */
    om_sampler_accept_prompt(s, 5); /* negative -2 -> -4 */
    om_sampler_accept(s, 3);        /* 2.1 / 2 - 0.5 - 2 * 0.25 */
    om_sampler_accept(s, 3);
    float probs[8];
    om_sampler_distribution(s, l, probs);
    float expect_l[8];
    memcpy(expect_l, l, sizeof l);
    expect_l[0] = 0.75f;
    expect_l[5] = -4.0f;
    expect_l[3] = 2.1f / 2 - 0.5f - 0.5f;
    double want[8];
    intended(expect_l, 8, 1.0f, 0, 1.0f, 0, want);
    double worst = 0;
    for (int i = 0; i < 8; i++) worst = fmax(worst, fabs(probs[i] - want[i]));
    CHECKF(worst < 1e-6, "penalised distribution differs by %.2e", worst);
    om_sampler_reset(s);
    om_sampler_distribution(s, l, probs);
    intended(l, 8, 1.0f, 0, 1.0f, 0, want);
    worst = 0;
    for (int i = 0; i < 8; i++) worst = fmax(worst, fabs(probs[i] - want[i]));
    CHECKF(worst < 1e-6, "after reset the distribution differs by %.2e", worst);
    om_sampler_free(s);

    /* Seeds: the same seed repeats, another seed differs. */
    const int V = 151936;
    float *big = malloc(sizeof(float) * V);
    uint32_t r = 7;
    for (int i = 0; i < V; i++) {
        r = r * 1664525u + 1013904223u;
        big[i] = (float)(r >> 8) / 1048576.0f; /* 24 random bits: ties are rare */
    }
    int32_t a[50], b[50], c[50];
    for (int run = 0; run < 3; run++) {
        sp = om_sampler_default_params();
        sp.temperature = 1.0f;
        sp.top_p = 0.95f;
        sp.seed = run < 2 ? 42 : 43;
        CHECK(om_sampler_create(&sp, V, &s) == 0);
        for (int i = 0; i < 50; i++) (run == 0 ? a : run == 1 ? b : c)[i] = om_sampler_sample(s, big);
        om_sampler_free(s);
    }
    CHECK(!memcmp(a, b, sizeof a));
    CHECK(memcmp(a, c, sizeof a) != 0);

    /* Large vocabulary: the growing selection finds exactly the brute-force top-p set. */
    sp = om_sampler_default_params();
    sp.temperature = 0.5f;
    sp.top_p = 0.9f;
    CHECK(om_sampler_create(&sp, V, &s) == 0);
    float *pb = malloc(sizeof(float) * V);
    double *wb = malloc(sizeof(double) * V);
    om_sampler_distribution(s, big, pb);
    intended(big, V, 0.5f, 0, 0.9f, 0, wb);
    int n_got = 0, n_want = 0;
    worst = 0;
    for (int i = 0; i < V; i++) {
        n_got += pb[i] > 0;
        n_want += wb[i] > 0;
        worst = fmax(worst, fabs(pb[i] - wb[i]));
    }
    CHECKF(n_got == n_want && worst < 1e-6, "top-p over 151936 tokens: %d kept, brute force %d, max diff %.2e", n_got,
           n_want, worst);
    om_sampler_free(s);
    free(pb);
    free(wb);
    free(big);

    /* Bad parameters name the field. */
    struct {
        om_sampler_params p;
        const char *field;
    } bad[5];
    for (int i = 0; i < 5; i++) bad[i].p = om_sampler_default_params();
    bad[0].p.temperature = -1;
    bad[0].field = "temperature";
    bad[1].p.top_p = 0;
    bad[1].field = "top_p";
    bad[2].p.min_p = 2;
    bad[2].field = "min_p";
    bad[3].p.repetition_penalty = 0;
    bad[3].field = "repetition_penalty";
    om_logit_bias oob = {99, 1.0f};
    bad[4].p.logit_bias = &oob;
    bad[4].p.n_logit_bias = 1;
    bad[4].field = "logit_bias";
    for (int i = 0; i < 5; i++) {
        s = NULL;
        CHECKF(om_sampler_create(&bad[i].p, 8, &s) != 0 && strstr(om_last_error(), bad[i].field), "bad %s accepted",
               bad[i].field);
        om_sampler_free(s);
    }
    return om_test_finish();
}
