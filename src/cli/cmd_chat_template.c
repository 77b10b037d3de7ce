/* `ominix chat-template`: prints the prompt a model's chat template makes of a conversation,
 * exactly as transformers' apply_chat_template(tokenize=False) would, with nothing added
 * (no trailing newline). Only the folder's tokenizer_config.json (or chat_template.jinja)
 * is needed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/chat_template.h"
#include "core/completion.h"
#include "core/error.h"

static void usage(FILE *f) {
    fprintf(f, "usage: ominix chat-template [--model PATH] --messages FILE.json [options]\n"
               "  --model PATH             model folder (tokenizer_config.json or chat_template.jinja) or\n"
               "                           .gguf file (default: the default model)\n"
               "  --messages FILE.json     a JSON array of messages, or an object with \"messages\"\n"
               "                           (and optionally \"tools\"); '-' reads stdin\n"
               "  --tools FILE.json        a JSON array of tool definitions (OpenAI style)\n"
               "  --add-generation-prompt  end with the header of the assistant's turn\n"
               "  --no-thinking            set enable_thinking=false (Qwen3-style templates)\n"
               "  --var NAME=JSON          set a further template variable, e.g. --var 'date_string=\"1 Jan 2025\"'\n"
               "  --template NAME          use the named template of a folder that has several\n");
}

static cJSON *read_json_file(const char *path) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "ominix chat-template: cannot open %s\n", path);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *p = realloc(buf, cap *= 2);
            if (!p) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (!r) break;
    }
    if (f != stdin) fclose(f);
    if (!buf) {
        fprintf(stderr, "ominix chat-template: out of memory reading %s\n", path);
        return NULL;
    }
    cJSON *j = cJSON_ParseWithLength(buf, n);
    free(buf);
    if (!j) fprintf(stderr, "ominix chat-template: %s is not valid JSON\n", path);
    return j;
}

int cmd_chat_template(int argc, char **argv) {
    const char *model = NULL, *messages_path = NULL, *tools_path = NULL, *name = NULL;
    bool gen_prompt = false;
    cJSON *extra = cJSON_CreateObject();
    int status = 2;
    cJSON *msgs_doc = NULL, *tools_doc = NULL;
    om_chat_template *t = NULL;
    om_text_model *tm = NULL;
    if (!extra) {
        fprintf(stderr, "ominix chat-template: out of memory\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            status = 0;
            goto done;
        } else if (!strcmp(a, "--model")) {
            if (!(model = cli_value(argc, argv, &i))) goto done;
        } else if (!strcmp(a, "--messages")) {
            if (!(messages_path = cli_value(argc, argv, &i))) goto done;
        } else if (!strcmp(a, "--tools")) {
            if (!(tools_path = cli_value(argc, argv, &i))) goto done;
        } else if (!strcmp(a, "--template")) {
            if (!(name = cli_value(argc, argv, &i))) goto done;
        } else if (!strcmp(a, "--add-generation-prompt")) {
            gen_prompt = true;
        } else if (!strcmp(a, "--no-thinking")) {
            cJSON_DeleteItemFromObjectCaseSensitive(extra, "enable_thinking");
            cJSON_AddFalseToObject(extra, "enable_thinking");
        } else if (!strcmp(a, "--var")) {
            const char *v = cli_value(argc, argv, &i);
            if (!v) goto done;
            const char *eq = strchr(v, '=');
            if (!eq || eq == v) {
                fprintf(stderr, "ominix chat-template: --var wants NAME=JSON, got '%s'\n", v);
                goto done;
            }
            cJSON *val = cJSON_Parse(eq + 1);
            if (!val) {
                fprintf(stderr, "ominix chat-template: --var %.*s: the value is not valid JSON\n", (int)(eq - v), v);
                goto done;
            }
            char key[256];
            snprintf(key, sizeof key, "%.*s", (int)(eq - v), v);
            cJSON_DeleteItemFromObjectCaseSensitive(extra, key);
            cJSON_AddItemToObject(extra, key, val);
        } else {
            fprintf(stderr, "ominix chat-template: unknown option '%s' (see 'ominix chat-template --help')\n", a);
            goto done;
        }
    }
    if (!messages_path) {
        fprintf(stderr, "ominix chat-template: --messages is required\n");
        goto done;
    }
    if (!model && !(model = cli_default_model())) {
        status = 1;
        goto done;
    }
    status = 1;
    if (!(msgs_doc = read_json_file(messages_path))) goto done;
    const cJSON *messages = msgs_doc, *tools = NULL;
    if (cJSON_IsObject(msgs_doc)) {
        messages = cJSON_GetObjectItemCaseSensitive(msgs_doc, "messages");
        tools = cJSON_GetObjectItemCaseSensitive(msgs_doc, "tools");
    }
    if (!cJSON_IsArray(messages)) {
        fprintf(stderr, "ominix chat-template: %s: expected a JSON array of messages\n", messages_path);
        goto done;
    }
    if (tools_path) {
        if (!(tools_doc = read_json_file(tools_path))) goto done;
        tools = tools_doc;
    }
    /* A .gguf carries its template (and the special tokens it sees) in its metadata. */
    size_t mlen = strlen(model);
    if (mlen > 5 && !strcmp(model + mlen - 5, ".gguf")) {
        if (om_text_model_load(model, NULL, &tm)) {
            fprintf(stderr, "ominix chat-template: %s\n", om_last_error());
            goto done;
        }
        if (!tm->tmpl) {
            fprintf(stderr, "ominix chat-template: %s has no chat template\n", model);
            goto done;
        }
        const cJSON *v;
        cJSON_ArrayForEach(v, tm->template_vars) {
            if (!cJSON_GetObjectItemCaseSensitive(extra, v->string))
                cJSON_AddItemToObject(extra, v->string, cJSON_Duplicate(v, 1));
        }
    } else if (!(t = om_chat_template_load(model))) {
        fprintf(stderr, "ominix chat-template: %s\n", om_last_error());
        goto done;
    }
    om_chat_inputs in = {
        .messages = messages,
        .tools = tools,
        .add_generation_prompt = gen_prompt,
        .extra = extra,
        .template_name = name,
    };
    size_t len = 0;
    char *out = om_chat_template_render(tm ? tm->tmpl : t, &in, &len);
    if (!out) {
        fprintf(stderr, "ominix chat-template: %s\n", om_last_error());
        goto done;
    }
    status = fwrite(out, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : 1;
    free(out);
done:
    om_chat_template_free(t);
    om_text_model_free(tm);
    cJSON_Delete(msgs_doc);
    cJSON_Delete(tools_doc);
    cJSON_Delete(extra);
    return status;
}
