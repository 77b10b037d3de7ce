/* `ominix bench`: prefill and decode speed of a model on a synthetic prompt, peak resident
 * memory, and the machine's measured read bandwidth beside the decode rate it allows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/generate.h"
#include "core/membw.h"
#include "core/threadpool.h"
#include "ominix/ominix.h"

/* Peak resident set (VmHWM) in bytes, from /proc. */
static size_t peak_rss_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %zu kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

static void usage(FILE *f) {
    fprintf(f, "usage: ominix bench --model DIR [--prompt-tokens P] [--gen-tokens G] [--threads N] [--json]\n"
               "  measures prefill of P tokens (default 512), then G greedy decode steps (default 64)\n");
}

int cmd_bench(int argc, char **argv) {
    const char *model_dir = NULL, *v;
    long n_prompt = 512, n_gen = 64, threads = 0;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--model")) {
            if (!(model_dir = cli_value(argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--prompt-tokens")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 1, 1 << 20, &n_prompt)) return 2;
        } else if (!strcmp(a, "--gen-tokens")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 1, 1 << 20, &n_gen)) return 2;
        } else if (!strcmp(a, "--threads")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 1, 1024, &threads)) return 2;
        } else {
            fprintf(stderr, "ominix bench: unknown option '%s' (see 'ominix bench --help')\n", a);
            return 2;
        }
    }
    if (!model_dir) {
        fprintf(stderr, "ominix bench: --model is required\n");
        return 2;
    }
    /* Bandwidth first, before the model's pages compete for the caches. */
    om_threadpool *pool = om_threadpool_create((int)threads);
    if (!pool) {
        fprintf(stderr, "ominix: %s\n", om_last_error());
        return 1;
    }
    double bw = om_measure_read_bandwidth(pool, (size_t)1 << 30);
    int n_threads = om_threadpool_size(pool);
    om_threadpool_free(pool);

    int rc = 1;
    om_model *model = NULL;
    om_context *ctx = NULL;
    int32_t *prompt = NULL;
    om_model_params mp = om_model_default_params();
    mp.n_threads = (int)threads;
    if (om_model_load(model_dir, &mp, &model)) {
        fprintf(stderr, "ominix: %s\n", om_last_error());
        goto done;
    }
    om_context_params cp = om_context_default_params();
    cp.n_ctx = (int)(n_prompt + n_gen);
    if (om_context_create(model, &cp, &ctx)) {
        fprintf(stderr, "ominix: %s\n", om_last_error());
        goto done;
    }
    prompt = malloc((size_t)n_prompt * sizeof *prompt);
    if (!prompt) goto done;
    /* A fixed pseudo-random prompt: the speed does not depend on which ids are used. */
    uint32_t s = 12345;
    for (long i = 0; i < n_prompt; i++) {
        s = s * 1664525u + 1013904223u;
        prompt[i] = (int32_t)((s >> 8) % (uint32_t)om_model_n_vocab(model));
    }
    om_generate_params gp = {.max_tokens = (int)n_gen, .ignore_eos = 1};
    om_generate_stats st;
    if (om_generate(ctx, prompt, (int)n_prompt, &gp, &st)) {
        fprintf(stderr, "ominix: %s\n", om_last_error());
        goto done;
    }
    double prefill = st.prompt_tokens / st.prefill_seconds;
    double decode = st.decode_steps > 0 ? st.decode_steps / st.decode_seconds : 0;
    size_t per_token = om_model_decode_bytes(model), weights = om_model_weight_bytes(model);
    size_t kv = om_context_kv_bytes(ctx), peak = peak_rss_bytes();
    double bound = bw * 1e9 / (double)per_token;
    if (json) {
        printf("{\"model\": \"%s\", \"threads\": %d, \"prompt_tokens\": %d, \"decode_steps\": %d, "
               "\"prefill_tokens_per_s\": %.3f, \"decode_tokens_per_s\": %.3f, \"peak_rss_bytes\": %zu, "
               "\"weights_bytes\": %zu, \"kv_cache_bytes\": %zu, \"decode_bytes_per_token\": %zu, "
               "\"read_bandwidth_gb_s\": %.3f, \"decode_bound_tokens_per_s\": %.3f}\n",
               model_dir, n_threads, st.prompt_tokens, st.decode_steps, prefill, decode, peak, weights, kv, per_token,
               bw, bound);
    } else {
        printf("model            %s (%s)\n", model_dir, om_model_type(model));
        printf("threads          %d\n", n_threads);
        printf("prefill          %d tokens, %.2f tokens/s\n", st.prompt_tokens, prefill);
        printf("decode           %d steps, %.2f tokens/s\n", st.decode_steps, decode);
        printf("peak memory      %.1f MiB (weights %.1f MiB + KV cache %.1f MiB reserved)\n", peak / 1048576.0,
               weights / 1048576.0, kv / 1048576.0);
        printf("read bandwidth   %.2f GB/s with %d threads\n", bw, n_threads);
        printf("decode bound     %.2f tokens/s (%.1f MiB read per token); decode reaches %.0f%%\n", bound,
               per_token / 1048576.0, 100.0 * decode / bound);
    }
    rc = 0;
done:
    free(prompt);
    om_context_free(ctx);
    om_model_free(model);
    return rc;
}
