/* `ominix tokenize`: prints the token ids of a text (from the command line or stdin) under a
 * model's tokenizer. Only the tokenizer files are needed, so it works on a folder holding just
 * tokenizer.json (and tokenizer_config.json). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/completion.h"
#include "core/error.h"
#include "core/tokenizer.h"

static void usage(FILE *f) {
    fprintf(f, "usage: ominix tokenize [--model PATH] [options] [--] [TEXT...]\n"
               "  --model PATH       model folder, its tokenizer.json, or a .gguf file (default: the default model)\n"
               "  --json             print one JSON array on one line instead of space-separated ids\n"
               "  --add-special      add the template's special tokens (e.g. a leading <s>), as\n"
               "                     Hugging Face's add_special_tokens=True\n"
               "  --split-special    encode the text of special tokens as plain text\n"
               "Without TEXT the text is read from stdin, byte for byte (a final newline counts).\n"
               "Several TEXT arguments are joined with single spaces.\n");
}

static char *read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (n == cap) {
            char *p = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap *= 2);
            if (!p) {
                free(buf);
                return NULL;
            }
            buf = p;
        }
        size_t r = fread(buf + n, 1, cap - n, stdin);
        n += r;
        if (r == 0) break;
    }
    if (ferror(stdin)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL;
    int json = 0, first_text = argc;
    om_encode_options opt = {0, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            first_text = i + 1;
            break;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--add-special")) {
            opt.add_special = 1;
        } else if (!strcmp(a, "--split-special")) {
            opt.split_special = 1;
        } else if (!strcmp(a, "--model")) {
            if (!(model = cli_value(argc, argv, &i))) return 2;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "ominix tokenize: unknown option '%s' (see 'ominix tokenize --help')\n", a);
            return 2;
        } else {
            first_text = i;
            break;
        }
    }
    if (!model && !(model = cli_default_model())) return 1;

    char *text = NULL;
    size_t len = 0;
    if (first_text < argc) {
        for (int i = first_text; i < argc; i++) len += strlen(argv[i]) + 1;
        text = malloc(len);
        if (!text) {
            fprintf(stderr, "ominix tokenize: out of memory\n");
            return 1;
        }
        len = 0;
        for (int i = first_text; i < argc; i++) {
            if (i > first_text) text[len++] = ' ';
            size_t l = strlen(argv[i]);
            memcpy(text + len, argv[i], l);
            len += l;
        }
    } else if (!(text = read_stdin(&len))) {
        fprintf(stderr, "ominix tokenize: cannot read stdin\n");
        return 1;
    }

    /* A single-file checkpoint carries its tokenizer in its metadata: load it as a model
     * (only mapped, not read), else read the folder's tokenizer.json alone. */
    om_tokenizer *tok = NULL;
    om_text_model *tm = NULL;
    size_t mlen = strlen(model);
    int is_gguf = mlen > 5 && !strcmp(model + mlen - 5, ".gguf");
    if (is_gguf ? om_text_model_load(model, NULL, &tm) : om_tokenizer_load(model, &tok)) {
        fprintf(stderr, "ominix tokenize: %s\n", om_last_error());
        free(text);
        return 1;
    }
    if (tm && !(tok = tm->tok)) {
        fprintf(stderr, "ominix tokenize: %s has no tokenizer\n", model);
        free(text);
        om_text_model_free(tm);
        return 1;
    }
    int32_t *ids;
    size_t n;
    int rc = om_tokenizer_encode_ex(tok, text, len, &opt, &ids, &n);
    free(text);
    if (tm) om_text_model_free(tm);
    else om_tokenizer_free(tok);
    if (rc) {
        fprintf(stderr, "ominix tokenize: %s\n", om_last_error());
        return 1;
    }
    if (json) putchar('[');
    for (size_t i = 0; i < n; i++) printf(i ? (json ? ",%d" : " %d") : "%d", ids[i]);
    printf(json ? "]\n" : "\n");
    free(ids);
    return fflush(stdout) == 0 ? 0 : 1;
}
