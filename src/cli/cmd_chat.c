/* `ominix chat`: an interactive multi-turn chat in the terminal. Each turn renders the whole
 * conversation with the model's chat template and decodes only what the KV cache does not
 * already hold, streams the answer (reasoning dimmed on a terminal, to stderr otherwise), and
 * reports its speed. /reset starts over, /exit (or end of input) quits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/completion.h"
#include "core/error.h"
#include "ominix/ominix.h"

typedef struct {
    int tty;
    int in_reasoning;
    char *answer, *reasoning;
    size_t answer_len, answer_cap, reasoning_len, reasoning_cap;
} chat_turn;

static void append(char **buf, size_t *len, size_t *cap, const char *t, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = (*len + n + 1) * 2;
        char *p = realloc(*buf, c);
        if (!p) return;
        *buf = p;
        *cap = c;
    }
    memcpy(*buf + *len, t, n);
    *len += n;
    (*buf)[*len] = 0;
}

static int on_text(void *user, om_text_kind kind, const char *t, size_t n) {
    chat_turn *c = user;
    if (kind == OM_TEXT_REASONING) {
        append(&c->reasoning, &c->reasoning_len, &c->reasoning_cap, t, n);
        if (c->tty) {
            if (!c->in_reasoning) fputs("\033[2m", stdout);
            fwrite(t, 1, n, stdout);
        } else {
            fwrite(t, 1, n, stderr);
        }
        c->in_reasoning = 1;
    } else {
        append(&c->answer, &c->answer_len, &c->answer_cap, t, n);
        if (c->in_reasoning && c->tty) fputs("\033[0m\n", stdout);
        c->in_reasoning = 0;
        fwrite(t, 1, n, stdout);
    }
    fflush(stdout);
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: ominix chat [options]\n" CLI_COMMON_HELP
               "  --max-tokens N           most tokens per answer (default 1024)\n" CLI_SAMPLING_HELP
               "In the chat: /reset forgets the conversation, /exit quits.\n");
}

static cJSON *message(const char *role, const char *content) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", role);
    cJSON_AddStringToObject(m, "content", content);
    return m;
}

int cmd_chat(int argc, char **argv) {
    cli_sampling sampling;
    cli_sampling_init(&sampling, 1024);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int sr = cli_sampling_option(&sampling, argc, argv, &i);
        if (sr < 0) return 2;
        if (sr > 0) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "ominix chat: unknown option '%s' (see 'ominix chat --help')\n", a);
            return 2;
        }
    }
    const char *model_dir = sampling.model, *system_text = sampling.system;
    const long max_tokens = sampling.max_tokens;
    const int no_thinking = sampling.no_thinking;
    if (!model_dir && !(model_dir = cli_default_model())) return 1;
    om_text_model *tm = NULL;
    om_context *ctx = NULL;
    om_model_params mp = om_model_default_params();
    mp.n_threads = (int)sampling.threads;
    if (om_text_model_load(model_dir, &mp, &tm)) goto fail;
    if (!tm->tok || !tm->tmpl) {
        om_errorf("model folder '%s' has no %s; chat needs both tokenizer.json and a chat template", model_dir,
                  !tm->tok ? "tokenizer.json" : "chat template");
        goto fail;
    }
    om_context_params cp = om_context_default_params();
    cp.n_ctx = (int)sampling.n_ctx;
    if (om_context_create(tm->model, &cp, &ctx)) goto fail;

    const int tty_in = isatty(0), tty_out = isatty(1);
    cJSON *history = cJSON_CreateArray();
    if (system_text) cJSON_AddItemToArray(history, message("system", system_text));
    char *line = NULL;
    size_t line_cap = 0;
    if (tty_in) fprintf(stderr, "ominix chat: %s (%s). /reset forgets the conversation, /exit quits.\n", model_dir,
                        om_model_type(tm->model));
    for (;;) {
        if (tty_in) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        ssize_t got = getline(&line, &line_cap, stdin);
        if (got < 0) break;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (got == 0) continue;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
        if (!strcmp(line, "/reset")) {
            cJSON_Delete(history);
            history = cJSON_CreateArray();
            if (system_text) cJSON_AddItemToArray(history, message("system", system_text));
            om_context_clear_seq(ctx, 0);
            fprintf(stderr, "[conversation reset]\n");
            continue;
        }
        cJSON_AddItemToArray(history, message("user", line));
        int32_t *ids = NULL;
        int n = 0;
        char *prompt = om_text_model_render(tm, history, NULL, no_thinking ? 0 : -1);
        if (!prompt || om_text_model_encode(tm, prompt, 1, &ids, &n)) {
            fprintf(stderr, "ominix: %s\n", om_last_error());
            cJSON_DeleteItemFromArray(history, cJSON_GetArraySize(history) - 1);
            free(prompt);
            continue;
        }
        int room = om_context_n_ctx(ctx) - n;
        if (room < 1) {
            fprintf(stderr, "ominix: the conversation (%d tokens) fills the context of %d; /reset to start over\n", n,
                    om_context_n_ctx(ctx));
            cJSON_DeleteItemFromArray(history, cJSON_GetArraySize(history) - 1);
            free(prompt);
            free(ids);
            continue;
        }
        chat_turn turn = {.tty = tty_out};
        om_completion_params p = {.sampling = tm->defaults,
                                  .max_tokens = room < max_tokens ? room : (int)max_tokens,
                                  .reasoning_open = om_prompt_opens_reasoning(prompt),
                                  .reuse_cache = 1,
                                  .on_text = on_text,
                                  .user = &turn};
        cli_sampling_apply(&sampling, &p.sampling);
        om_completion_result res;
        int rc = om_complete(tm, ctx, ids, n, &p, &res);
        if (turn.in_reasoning && turn.tty) fputs("\033[0m", stdout);
        printf("\n");
        fflush(stdout); /* the answer ends before the turn's statistics on stderr */
        if (rc) {
            fprintf(stderr, "ominix: %s\n", om_last_error());
            cJSON_DeleteItemFromArray(history, cJSON_GetArraySize(history) - 1);
        } else {
            const om_generate_stats *st = &res.stats;
            fprintf(stderr, "[%d tokens, %.1f tokens/s; prompt %d tokens, %d from cache, %.1f tokens/s]\n",
                    st->generated_tokens, st->decode_seconds > 0 ? st->decode_steps / st->decode_seconds : 0.0,
                    st->prompt_tokens, st->cached_tokens,
                    st->prefill_seconds > 0 ? (st->prompt_tokens - st->cached_tokens) / st->prefill_seconds : 0.0);
            cJSON *m = message("assistant", turn.answer ? turn.answer : "");
            if (turn.reasoning_len) cJSON_AddStringToObject(m, "reasoning_content", turn.reasoning);
            cJSON_AddItemToArray(history, m);
        }
        free(turn.answer);
        free(turn.reasoning);
        free(prompt);
        free(ids);
    }
    free(line);
    cJSON_Delete(history);
    om_context_free(ctx);
    om_text_model_free(tm);
    return 0;
fail:
    fprintf(stderr, "ominix: %s\n", om_last_error());
    om_context_free(ctx);
    om_text_model_free(tm);
    return 1;
}
