/* `ominix generate`: runs a model on a prompt of token ids and prints the generated tokens,
 * as ids or, with --json, as JSON Lines with log-probs and a closing summary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/generate.h"
#include "ominix/ominix.h"

typedef struct {
    int json, n_top, first;
    om_token_logprob *top;
} generate_out;

static int print_token(void *user, int32_t token, const float *logits, int n_vocab) {
    generate_out *o = user;
    if (!o->json) {
        printf(o->first ? "%d" : " %d", token);
        o->first = 0;
        fflush(stdout);
        return 0;
    }
    printf("{\"id\": %d, \"logprob\": %.9g, \"top_logprobs\": [", token, om_logprob_of(logits, n_vocab, token));
    if (o->n_top > 0) {
        om_top_logprobs(logits, n_vocab, o->n_top, o->top);
        int k = o->n_top < n_vocab ? o->n_top : n_vocab;
        for (int i = 0; i < k; i++)
            printf("%s{\"id\": %d, \"logprob\": %.9g}", i ? ", " : "", o->top[i].id, o->top[i].logprob);
    }
    printf("]}\n");
    fflush(stdout);
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: ominix generate --model DIR --prompt-ids ID,ID,... [options]\n"
               "  --max-tokens N     tokens to generate (default 32)\n"
               "  --temperature T    0 picks the most likely token (greedy)\n"
               "  --ignore-eos       keep generating past end-of-sequence tokens\n"
               "  --logprobs K       with --json: the K most likely tokens of each step\n"
               "  --json             JSON Lines: one object per token, then a summary\n"
               "  --threads N        CPU threads (default: all)\n"
               "  --ctx N            context length (default: prompt + max tokens)\n");
}

int cmd_generate(int argc, char **argv) {
    const char *model_dir = NULL, *ids_arg = NULL, *v;
    long max_tokens = 32, n_top = 0, threads = 0, n_ctx = 0;
    double temperature = 0;
    int json = 0, ignore_eos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--ignore-eos")) ignore_eos = 1;
        else if (!strcmp(a, "--model")) {
            if (!(model_dir = cli_value(argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--prompt-ids")) {
            if (!(ids_arg = cli_value(argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--max-tokens")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 0, 1 << 24, &max_tokens)) return 2;
        } else if (!strcmp(a, "--logprobs")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 0, 1000, &n_top)) return 2;
        } else if (!strcmp(a, "--threads")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 1, 1024, &threads)) return 2;
        } else if (!strcmp(a, "--ctx")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 1, 1 << 24, &n_ctx)) return 2;
        } else if (!strcmp(a, "--temperature")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_float(a, v, &temperature)) return 2;
        } else {
            fprintf(stderr, "ominix generate: unknown option '%s' (see 'ominix generate --help')\n", a);
            return 2;
        }
    }
    if (!model_dir || !ids_arg) {
        fprintf(stderr, "ominix generate: --model and --prompt-ids are required\n");
        usage(stderr);
        return 2;
    }
    if (temperature != 0) {
        fprintf(stderr, "ominix generate: only --temperature 0 (greedy) is supported so far\n");
        return 2;
    }
    int32_t *prompt = NULL;
    int n_prompt = 0;
    if (cli_id_list("--prompt-ids", ids_arg, &prompt, &n_prompt)) return 2;

    int rc = 1;
    om_model *model = NULL;
    om_context *ctx = NULL;
    generate_out out = {json, (int)n_top, 1, NULL};
    om_model_params mp = om_model_default_params();
    mp.n_threads = (int)threads;
    if (om_model_load(model_dir, &mp, &model)) {
        fprintf(stderr, "ominix: %s\n", om_last_error());
        goto done;
    }
    om_context_params cp = om_context_default_params();
    cp.n_ctx = n_ctx ? (int)n_ctx : n_prompt + (int)max_tokens;
    if (n_ctx == 0 && om_model_n_ctx_train(model) > 0 && cp.n_ctx > om_model_n_ctx_train(model))
        cp.n_ctx = om_model_n_ctx_train(model);
    if (n_prompt > cp.n_ctx) {
        fprintf(stderr, "ominix: prompt of %d tokens is longer than the context (%d positions)\n", n_prompt, cp.n_ctx);
        goto done;
    }
    if (om_context_create(model, &cp, &ctx)) {
        fprintf(stderr, "ominix: %s\n", om_last_error());
        goto done;
    }
    out.top = calloc((size_t)(n_top > 0 ? n_top : 1), sizeof *out.top);
    if (!out.top) goto done;
    om_generate_params gp = {.max_tokens = (int)max_tokens, .ignore_eos = ignore_eos, .on_token = print_token, .user = &out};
    om_generate_stats st;
    if (om_generate(ctx, prompt, n_prompt, &gp, &st)) {
        fprintf(stderr, "ominix: %s\n", om_last_error());
        goto done;
    }
    if (json) {
        printf("{\"done\": true, \"prompt_tokens\": %d, \"generated_tokens\": %d, \"prefill_tokens_per_s\": %.3f, "
               "\"decode_tokens_per_s\": %.3f}\n",
               st.prompt_tokens, st.generated_tokens, st.prefill_seconds > 0 ? st.prompt_tokens / st.prefill_seconds : 0.0,
               st.decode_seconds > 0 ? st.decode_steps / st.decode_seconds : 0.0);
    } else if (!out.first) {
        printf("\n");
    }
    rc = 0;
done:
    free(out.top);
    free(prompt);
    om_context_free(ctx);
    om_model_free(model);
    return rc;
}
