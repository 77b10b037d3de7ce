/* Reference test for every checkpoint under tests/data/models/: the tiny random-weight models
 * made by tools/make_reference.py with transformers, whose greedy steps and float32
 * log-probs are committed in reference.json. For each prompt it prefills, then walks the
 * reference's steps feeding the reference's token each time (so one near-tie cannot derail the
 * rest) and checks:
 *   - the greedy id equals the reference's wherever the reference's top-2 margin >= 1e-3;
 *   - the log-prob of the reference's token and of its top-5 are within 1e-3;
 * and, per model, that a prompt prefilled as one batch, token by token, and beside another
 * sequence in one mixed batch gives the same logits (within 5e-4 absolute: the one-row and
 * many-row matmul kernels sum in different orders, and f32 logits of ~10 carry ~1e-6 each). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/generate.h"
#include "ominix/ominix.h"
#include "test_util.h"

#define LOGPROB_TOL 1e-3
#define MARGIN_MIN 1e-3
#define BATCH_TOL 5e-4

static int32_t *json_ids(const cJSON *arr, int *n) {
    *n = cJSON_GetArraySize(arr);
    int32_t *ids = malloc((size_t)(*n ? *n : 1) * sizeof *ids);
    for (int i = 0; i < *n; i++) ids[i] = (int32_t)cJSON_GetArrayItem(arr, i)->valuedouble;
    return ids;
}

static void check_case(om_model *model, const char *name, const cJSON *c) {
    const char *case_name = cJSON_GetObjectItem(c, "name")->valuestring;
    int n_prompt;
    int32_t *prompt = json_ids(cJSON_GetObjectItem(c, "prompt_ids"), &n_prompt);
    const cJSON *steps = cJSON_GetObjectItem(c, "steps");
    int n_steps = cJSON_GetArraySize(steps);
    om_context_params cp = om_context_default_params();
    cp.n_ctx = n_prompt + n_steps + 1;
    om_context *ctx = NULL;
    CHECKF(om_context_create(model, &cp, &ctx) == 0, "%s: %s", name, om_last_error());
    if (!ctx) {
        free(prompt);
        return;
    }
    int32_t *seq = calloc((size_t)n_prompt, sizeof *seq), *pos = malloc((size_t)n_prompt * sizeof *pos);
    for (int i = 0; i < n_prompt; i++) pos[i] = i;
    om_batch b = {n_prompt, prompt, seq, pos, NULL};
    CHECKF(om_decode(ctx, &b) == 0, "%s/%s prefill: %s", name, case_name, om_last_error());
    int V = om_model_n_vocab(model), skipped = 0;
    double worst = 0;
    for (int s = 0; s < n_steps; s++) {
        const cJSON *st = cJSON_GetArrayItem(steps, s);
        const float *logits = om_get_logits(ctx, 0);
        int32_t ref_id = (int32_t)cJSON_GetObjectItem(st, "id")->valuedouble;
        double margin = cJSON_GetObjectItem(st, "top2_margin")->valuedouble;
        if (margin >= MARGIN_MIN) {
            int32_t got = om_argmax(logits, V);
            CHECKF(got == ref_id, "%s/%s step %d: greedy id %d, reference %d (margin %.2e)", name, case_name, s, got,
                   ref_id, margin);
        } else {
            skipped++;
        }
        double lp = om_logprob_of(logits, V, ref_id), ref_lp = cJSON_GetObjectItem(st, "logprob")->valuedouble;
        CHECKF(fabs(lp - ref_lp) <= LOGPROB_TOL, "%s/%s step %d: logprob %.6f, reference %.6f", name, case_name, s, lp,
               ref_lp);
        if (fabs(lp - ref_lp) > worst) worst = fabs(lp - ref_lp);
        const cJSON *tids = cJSON_GetObjectItem(st, "top_ids"), *tlps = cJSON_GetObjectItem(st, "top_logprobs");
        for (int k = 0; k < cJSON_GetArraySize(tids); k++) {
            int32_t id = (int32_t)cJSON_GetArrayItem(tids, k)->valuedouble;
            double r = cJSON_GetArrayItem(tlps, k)->valuedouble, g = om_logprob_of(logits, V, id);
            CHECKF(fabs(g - r) <= LOGPROB_TOL, "%s/%s step %d top %d (id %d): logprob %.6f, reference %.6f", name,
                   case_name, s, k, id, g, r);
            if (fabs(g - r) > worst) worst = fabs(g - r);
        }
        int32_t p = n_prompt + s, zero = 0;
        om_batch one = {1, &ref_id, &zero, &p, NULL};
        CHECKF(om_decode(ctx, &one) == 0, "%s/%s step %d: %s", name, case_name, s, om_last_error());
    }
    printf("%s/%s: %d prompt tokens, %d steps (%d near-ties not compared by id), worst logprob error %.2e\n", name,
           case_name, n_prompt, n_steps, skipped, worst);
    free(seq);
    free(pos);
    free(prompt);
    om_context_free(ctx);
}

static double max_abs_diff(const float *a, const float *b, int n) {
    double d = 0;
    for (int i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* The same prompt as one batch, one token at a time, and interleaved with a second sequence. */
static void check_batching(om_model *model, const char *name, const int32_t *prompt, int n) {
    int V = om_model_n_vocab(model);
    om_context_params cp = om_context_default_params();
    cp.n_ctx = n + 1;
    cp.n_seq_max = 2;
    cp.n_batch = 64; /* smaller than long prompts, so om_decode splits them */
    om_context *ctx = NULL;
    if (om_context_create(model, &cp, &ctx)) {
        CHECKF(0, "%s: %s", name, om_last_error());
        return;
    }
    float *whole = malloc((size_t)V * n * sizeof(float)), *single = malloc((size_t)V * sizeof(float));
    int32_t *seq = calloc((size_t)2 * n, sizeof *seq), *pos = malloc((size_t)2 * n * sizeof *pos),
            *tok = malloc((size_t)2 * n * sizeof *tok);
    int8_t *want = malloc((size_t)2 * n);
    for (int i = 0; i < n; i++) {
        pos[i] = i;
        want[i] = 1;
    }
    om_batch b = {n, prompt, seq, pos, want};
    CHECK(om_decode(ctx, &b) == 0);
    for (int i = 0; i < n; i++) memcpy(whole + (size_t)i * V, om_get_logits(ctx, i), (size_t)V * sizeof(float));

    om_context_clear_seq(ctx, 0);
    double worst = 0;
    for (int i = 0; i < n; i++) {
        om_batch one = {1, prompt + i, seq, pos + i, NULL};
        CHECK(om_decode(ctx, &one) == 0);
        worst = fmax(worst, max_abs_diff(om_get_logits(ctx, 0), whole + (size_t)i * V, V));
    }
    CHECKF(worst <= BATCH_TOL, "%s: token-by-token prefill differs from batched prefill by %.3e", name, worst);

    /* Two sequences in one batch, tokens interleaved: sequence 1 gets the prompt reversed. */
    om_context_clear_seq(ctx, 0);
    for (int i = 0; i < n; i++) {
        tok[2 * i] = prompt[i];
        seq[2 * i] = 0;
        pos[2 * i] = i;
        tok[2 * i + 1] = prompt[n - 1 - i];
        seq[2 * i + 1] = 1;
        pos[2 * i + 1] = i;
        want[2 * i] = 1;
        want[2 * i + 1] = i == n - 1;
    }
    om_batch mixed = {2 * n, tok, seq, pos, want};
    CHECK(om_decode(ctx, &mixed) == 0);
    double worst_mixed = 0;
    for (int i = 0; i < n; i++) worst_mixed = fmax(worst_mixed, max_abs_diff(om_get_logits(ctx, i), whole + (size_t)i * V, V));
    memcpy(single, om_get_logits(ctx, n), (size_t)V * sizeof(float));
    CHECKF(worst_mixed <= BATCH_TOL, "%s: a sequence batched beside another differs by %.3e", name, worst_mixed);

    /* Sequence 1 alone must match its part of the mixed batch. */
    om_context_clear_seq(ctx, 1);
    for (int i = 0; i < n; i++) {
        tok[i] = prompt[n - 1 - i];
        seq[i] = 1;
        pos[i] = i;
    }
    om_batch alone = {n, tok, seq, pos, NULL};
    CHECK(om_decode(ctx, &alone) == 0);
    double d1 = max_abs_diff(om_get_logits(ctx, 0), single, V);
    CHECKF(d1 <= BATCH_TOL, "%s: second sequence alone differs from the mixed batch by %.3e", name, d1);
    printf("%s: batching of %d tokens: token-by-token %.1e, mixed %.1e, second sequence %.1e\n", name, n, worst,
           worst_mixed, d1);
    free(whole);
    free(single);
    free(seq);
    free(pos);
    free(tok);
    free(want);
    om_context_free(ctx);
}

int main(void) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/models", OM_TEST_DATA_DIR);
    DIR *d = opendir(dir);
    CHECKF(d != NULL, "no %s", dir);
    if (!d) return om_test_finish();
    struct dirent *e;
    int models = 0;
    char names[64][256];
    while ((e = readdir(d)) && models < 64)
        if (e->d_name[0] != '.') snprintf(names[models++], sizeof names[0], "%s", e->d_name);
    closedir(d);
    for (int i = 0; i < models; i++) {
        char mdir[4400], ref[4500];
        snprintf(mdir, sizeof mdir, "%.4000s/%.255s", dir, names[i]);
        snprintf(ref, sizeof ref, "%s/reference.json", mdir);
        char *text = om_test_read_file(ref, NULL);
        if (!text) continue;
        cJSON *root = cJSON_Parse(text);
        free(text);
        CHECKF(root != NULL, "%s: reference.json does not parse", names[i]);
        om_model *model = NULL;
        om_model_params mp = om_model_default_params();
        mp.n_threads = 2;
        CHECKF(om_model_load(mdir, &mp, &model) == 0, "%s: %s", names[i], om_last_error());
        if (model && root) {
            const cJSON *cases = cJSON_GetObjectItem(root, "cases"), *c;
            cJSON_ArrayForEach(c, cases) check_case(model, names[i], c);
            /* The longest prompt exercises batch splitting; cap it to keep the test quick. */
            const cJSON *longest = NULL;
            cJSON_ArrayForEach(c, cases) {
                if (!longest || cJSON_GetArraySize(cJSON_GetObjectItem(c, "prompt_ids")) >
                                    cJSON_GetArraySize(cJSON_GetObjectItem(longest, "prompt_ids")))
                    longest = c;
            }
            int n;
            int32_t *ids = json_ids(cJSON_GetObjectItem(longest, "prompt_ids"), &n);
            check_batching(model, names[i], ids, n < 150 ? n : 150);
            free(ids);
        }
        om_model_free(model);
        cJSON_Delete(root);
    }
    CHECKF(models > 0, "no reference models found");
    return om_test_finish();
}
