/* `ominix generate`: runs a model on a prompt and prints what it generates. The prompt is text
 * (rendered through the model's chat template as one user message, or sent as is with --raw)
 * or token ids (--prompt-ids). Plain output streams the answer to stdout and any reasoning to
 * stderr; --json prints JSON Lines, one object per token with its log-probs and text, then a
 * summary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/completion.h"
#include "core/error.h"
#include "ominix/ominix.h"

typedef struct {
    int json, n_top, has_text;
    om_token_logprob *top;
    /* The token whose JSON line waits for the text its push releases. */
    int pending;
    int32_t id;
    float logprob;
    int n_pending_top;
    char *delta, *delta_reasoning;
    size_t delta_len, delta_cap, reasoning_len, reasoning_cap;
    /* Whole texts, for the summary. */
    char *all, *all_reasoning;
    size_t all_len, all_cap, all_r_len, all_r_cap;
    int plain_first;
} output;

static void grow_append(char **buf, size_t *len, size_t *cap, const char *t, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = (*len + n + 1) * 2;
        char *p = realloc(*buf, c);
        if (!p) return; /* the text is cut rather than the run failed */
        *buf = p;
        *cap = c;
    }
    memcpy(*buf + *len, t, n);
    *len += n;
    (*buf)[*len] = 0;
}

static void print_json_string(const char *s, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') printf("\\n");
        else if (c == '\r') printf("\\r");
        else if (c == '\t') printf("\\t");
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static void flush_token(output *o) {
    if (!o->pending) return;
    printf("{\"id\": %d, \"logprob\": %.9g, \"top_logprobs\": [", o->id, o->logprob);
    for (int i = 0; i < o->n_pending_top; i++)
        printf("%s{\"id\": %d, \"logprob\": %.9g}", i ? ", " : "", o->top[i].id, o->top[i].logprob);
    printf("]");
    if (o->has_text) {
        printf(", \"text\": ");
        print_json_string(o->delta ? o->delta : "", o->delta_len);
        if (o->reasoning_len) {
            printf(", \"reasoning\": ");
            print_json_string(o->delta_reasoning, o->reasoning_len);
        }
    }
    printf("}\n");
    fflush(stdout);
    o->pending = 0;
    o->delta_len = o->reasoning_len = 0;
}

static int on_token(void *user, int32_t token, const float *logits, int n_vocab) {
    output *o = user;
    if (!o->json) {
        if (!o->has_text) {
            printf(o->plain_first ? "%d" : " %d", token);
            o->plain_first = 0;
            fflush(stdout);
        }
        return 0;
    }
    flush_token(o);
    o->pending = 1;
    o->id = token;
    o->logprob = om_logprob_of(logits, n_vocab, token);
    o->n_pending_top = o->n_top < n_vocab ? o->n_top : n_vocab;
    if (o->n_top > 0) om_top_logprobs(logits, n_vocab, o->n_top, o->top);
    return 0;
}

static int on_text(void *user, om_text_kind kind, const char *t, size_t n) {
    output *o = user;
    if (kind == OM_TEXT_REASONING) grow_append(&o->all_reasoning, &o->all_r_len, &o->all_r_cap, t, n);
    else grow_append(&o->all, &o->all_len, &o->all_cap, t, n);
    if (o->json) {
        if (kind == OM_TEXT_REASONING) grow_append(&o->delta_reasoning, &o->reasoning_len, &o->reasoning_cap, t, n);
        else grow_append(&o->delta, &o->delta_len, &o->delta_cap, t, n);
        return 0;
    }
    FILE *f = kind == OM_TEXT_REASONING ? stderr : stdout;
    fwrite(t, 1, n, f);
    fflush(f);
    return 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: ominix generate (--prompt TEXT | --prompt-ids ID,ID,...) [options]\n"
            "  --prompt TEXT            a user message, rendered with the model's chat template\n"
            "  --raw                    send --prompt as is, without the chat template\n"
            "  --prompt-ids IDS         the prompt as token ids\n" CLI_COMMON_HELP
            "  --max-tokens N           tokens to generate (default 256)\n"
            CLI_SAMPLING_HELP
            "  --stop TEXT              stop before this text (repeatable)\n"
            "  --ignore-eos             keep generating past end-of-sequence tokens\n"
            "  --logprobs K             with --json: the K most likely tokens of each step\n"
            "  --json                   JSON Lines: one object per token, then a summary\n");
}

#define MAX_STOP 16

int cmd_generate(int argc, char **argv) {
    const char *ids_arg = NULL, *text = NULL, *v;
    const char *stop[MAX_STOP];
    int n_stop = 0, raw = 0, json = 0, ignore_eos = 0;
    long n_top = 0;
    cli_sampling sampling;
    cli_sampling_init(&sampling, 256);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int sr = cli_sampling_option(&sampling, argc, argv, &i);
        if (sr < 0) return 2;
        if (sr > 0) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--ignore-eos")) ignore_eos = 1;
        else if (!strcmp(a, "--raw")) raw = 1;
        else if (!strcmp(a, "--prompt-ids")) {
            if (!(ids_arg = cli_value(argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--prompt")) {
            if (!(text = cli_value(argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--stop")) {
            if (!(v = cli_value(argc, argv, &i))) return 2;
            if (n_stop == MAX_STOP) {
                fprintf(stderr, "ominix generate: at most %d --stop strings\n", MAX_STOP);
                return 2;
            }
            stop[n_stop++] = v;
        } else if (!strcmp(a, "--logprobs")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_int(a, v, 0, 1000, &n_top)) return 2;
        } else {
            fprintf(stderr, "ominix generate: unknown option '%s' (see 'ominix generate --help')\n", a);
            return 2;
        }
    }
    if (!ids_arg == !text) {
        fprintf(stderr, "ominix generate: one of --prompt or --prompt-ids is required\n");
        return 2;
    }
    const char *model_dir = sampling.model, *system_text = sampling.system;
    const long max_tokens = sampling.max_tokens, n_ctx = sampling.n_ctx;
    const int no_thinking = sampling.no_thinking;
    if (!model_dir && !(model_dir = cli_default_model())) return 1;
    int32_t *prompt = NULL;
    int n_prompt = 0;
    if (ids_arg && cli_id_list("--prompt-ids", ids_arg, &prompt, &n_prompt)) return 2;

    int rc = 1;
    om_text_model *tm = NULL;
    om_context *ctx = NULL;
    char *rendered = NULL;
    cJSON *messages = NULL;
    output out = {.json = json, .n_top = (int)n_top, .plain_first = 1};
    om_model_params mp = om_model_default_params();
    mp.n_threads = (int)sampling.threads;
    if (om_text_model_load(model_dir, &mp, &tm)) goto fail;
    out.has_text = tm->tok != NULL;
    int reasoning_open = 0;
    if (text) {
        if (!tm->tok) {
            om_errorf("model folder '%s' has no tokenizer.json (give --prompt-ids instead)", model_dir);
            goto fail;
        }
        if (raw) {
            rendered = strdup(text);
        } else {
            messages = cJSON_CreateArray();
            if (system_text) {
                cJSON *m = cJSON_CreateObject();
                cJSON_AddStringToObject(m, "role", "system");
                cJSON_AddStringToObject(m, "content", system_text);
                cJSON_AddItemToArray(messages, m);
            }
            cJSON *m = cJSON_CreateObject();
            cJSON_AddStringToObject(m, "role", "user");
            cJSON_AddStringToObject(m, "content", text);
            cJSON_AddItemToArray(messages, m);
            if (!(rendered = om_text_model_render(tm, messages, NULL, no_thinking ? 0 : -1))) goto fail;
            reasoning_open = om_prompt_opens_reasoning(rendered);
        }
        if (!rendered || om_text_model_encode(tm, rendered, !raw, &prompt, &n_prompt)) goto fail;
    }
    om_context_params cp = om_context_default_params();
    cp.n_ctx = n_ctx ? (int)n_ctx : n_prompt + (int)max_tokens;
    if (n_ctx == 0 && om_model_n_ctx_train(tm->model) > 0 && cp.n_ctx > om_model_n_ctx_train(tm->model))
        cp.n_ctx = om_model_n_ctx_train(tm->model);
    if (n_prompt > cp.n_ctx) {
        fprintf(stderr, "ominix: prompt of %d tokens is longer than the context (%d positions)\n", n_prompt, cp.n_ctx);
        goto done;
    }
    if (om_context_create(tm->model, &cp, &ctx)) goto fail;
    out.top = calloc((size_t)(n_top > 0 ? n_top : 1), sizeof *out.top);
    if (!out.top) goto fail;

    om_completion_params p = {.sampling = tm->defaults, .max_tokens = (int)max_tokens, .ignore_eos = ignore_eos,
                              .stop = stop, .n_stop = n_stop, .reasoning_open = reasoning_open,
                              .on_text = on_text, .on_token = on_token, .user = &out};
    cli_sampling_apply(&sampling, &p.sampling);
    om_completion_result res;
    if (om_complete(tm, ctx, prompt, n_prompt, &p, &res)) goto fail;
    if (json) {
        flush_token(&out);
        const om_generate_stats *st = &res.stats;
        printf("{\"done\": true, \"prompt_tokens\": %d, \"generated_tokens\": %d, \"prefill_tokens_per_s\": %.3f, "
               "\"decode_tokens_per_s\": %.3f, \"finish_reason\": \"%s\"",
               st->prompt_tokens, st->generated_tokens, st->prefill_seconds > 0 ? st->prompt_tokens / st->prefill_seconds : 0.0,
               st->decode_seconds > 0 ? st->decode_steps / st->decode_seconds : 0.0, res.finish_reason);
        if (out.has_text) {
            printf(", \"text\": ");
            print_json_string(out.all ? out.all : "", out.all_len);
            if (out.all_r_len) {
                printf(", \"reasoning\": ");
                print_json_string(out.all_reasoning, out.all_r_len);
            }
        }
        printf("}\n");
    } else {
        printf("\n");
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "ominix: %s\n", om_last_error());
done:
    free(out.top);
    free(out.delta);
    free(out.delta_reasoning);
    free(out.all);
    free(out.all_reasoning);
    free(prompt);
    free(rendered);
    cJSON_Delete(messages);
    om_context_free(ctx);
    om_text_model_free(tm);
    return rc;
}
