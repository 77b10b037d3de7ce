/* Chat templates (see chat_template.h): finding a model's template(s) and special tokens, and
 * preparing the variables the way transformers' apply_chat_template does before it renders
 * with the Jinja interpreter (jinja.h). */
#include "core/chat_template.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/jinja.h"

#define MAX_TEMPLATES 16

struct om_chat_template {
    size_t n;
    char *names[MAX_TEMPLATES];
    jinja_template *tpl[MAX_TEMPLATES];
    cJSON *special; /* object: bos_token, eos_token, ... (strings) */
};

static const char *const SPECIAL_TOKENS[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                             "pad_token", "cls_token", "mask_token"};

static om_chat_template *alloc_set(void) {
    om_chat_template *t = calloc(1, sizeof *t);
    if (!t) {
        om_errorf("out of memory");
        return NULL;
    }
    t->special = cJSON_CreateObject();
    if (!t->special) {
        free(t);
        om_errorf("out of memory");
        return NULL;
    }
    return t;
}

static int add_template(om_chat_template *t, const char *name, const char *src, size_t len) {
    if (t->n == MAX_TEMPLATES) return om_errorf("too many chat templates (at most %d)", MAX_TEMPLATES);
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->names[i], name)) return om_errorf("chat template '%s' given twice", name);
    char label[160];
    if (!strcmp(name, "default")) snprintf(label, sizeof label, "chat template");
    else snprintf(label, sizeof label, "chat template '%s'", name);
    jinja_template *j = jinja_compile(src, len, label);
    if (!j) return -1;
    char *nm = strdup(name);
    if (!nm) {
        jinja_template_free(j);
        return om_errorf("out of memory");
    }
    t->names[t->n] = nm;
    t->tpl[t->n] = j;
    t->n++;
    return 0;
}

om_chat_template *om_chat_template_create(const char *source, size_t len) {
    om_chat_template *t = alloc_set();
    if (!t) return NULL;
    if (add_template(t, "default", source, len)) {
        om_chat_template_free(t);
        return NULL;
    }
    return t;
}

void om_chat_template_free(om_chat_template *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->names[i]);
        jinja_template_free(t->tpl[i]);
    }
    cJSON_Delete(t->special);
    free(t);
}

bool om_chat_template_has(const om_chat_template *t, const char *name) {
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->names[i], name)) return true;
    return false;
}

/* ---- loading a model folder ------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            if (cap > ((size_t)256 << 20)) {
                free(buf);
                fclose(f);
                om_errorf("%s: file too large", path);
                return NULL;
            }
            char *p = realloc(buf, cap);
            if (!p) {
                free(buf);
                fclose(f);
                om_errorf("out of memory");
                return NULL;
            }
            buf = p;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    bool err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        om_errorf("%s: read error", path);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* A special token value: a string, or an AddedToken serialized as {"content": ...}. */
static const char *token_string(const cJSON *v) {
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsObject(v)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (cJSON_IsString(c)) return c->valuestring;
    }
    return NULL;
}

static int take_special_tokens(om_chat_template *t, const cJSON *cfg) {
    for (size_t i = 0; i < sizeof SPECIAL_TOKENS / sizeof SPECIAL_TOKENS[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, SPECIAL_TOKENS[i]);
        if (!v) continue;
        const char *s = token_string(v);
        cJSON_DeleteItemFromObjectCaseSensitive(t->special, SPECIAL_TOKENS[i]);
        if (s && !cJSON_AddStringToObject(t->special, SPECIAL_TOKENS[i], s)) return om_errorf("out of memory");
    }
    return 0;
}

static cJSON *read_json(const char *path, bool *missing) {
    size_t len;
    om_clear_error();
    char *text = read_file(path, &len);
    if (!text) {
        *missing = true;
        return NULL;
    }
    *missing = false;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    if (!j) om_errorf("%s: invalid JSON", path);
    return j;
}

static int load_file_templates(om_chat_template *t, const char *dir) {
    char path[4096];
    size_t len;
    snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
    char *src = read_file(path, &len);
    if (src) {
        int r = add_template(t, "default", src, len);
        free(src);
        if (r) return om_error_prefix("%s: ", path);
    }
    snprintf(path, sizeof path, "%s/additional_chat_templates", dir);
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        size_t nl = strlen(e->d_name);
        if (nl <= 6 || strcmp(e->d_name + nl - 6, ".jinja")) continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(nl - 6), e->d_name);
        char fpath[4352];
        snprintf(fpath, sizeof fpath, "%s/%s", path, e->d_name);
        src = read_file(fpath, &len);
        if (!src) {
            rc = om_errorf("%s: cannot read", fpath);
            break;
        }
        rc = add_template(t, name, src, len);
        free(src);
        if (rc) om_error_prefix("%s: ", fpath);
    }
    closedir(d);
    return rc;
}

om_chat_template *om_chat_template_load(const char *model_dir) {
    om_chat_template *t = alloc_set();
    if (!t) return NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", model_dir);
    bool missing;
    cJSON *cfg = read_json(path, &missing);
    if (!cfg && !missing) goto fail;
    if (cfg && !cJSON_IsObject(cfg)) {
        om_errorf("%s: not a JSON object", path);
        goto fail;
    }
    if (load_file_templates(t, model_dir)) goto fail;
    if (!t->n && cfg) {
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
        if (cJSON_IsString(ct)) {
            if (add_template(t, "default", ct->valuestring, strlen(ct->valuestring))) {
                om_error_prefix("%s: ", path);
                goto fail;
            }
        } else if (cJSON_IsArray(ct)) {
            const cJSON *e;
            cJSON_ArrayForEach(e, ct) {
                const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
                const cJSON *tpl = cJSON_GetObjectItemCaseSensitive(e, "template");
                if (!cJSON_IsString(name) || !cJSON_IsString(tpl)) {
                    om_errorf("%s: chat_template entries need a string name and template", path);
                    goto fail;
                }
                if (add_template(t, name->valuestring, tpl->valuestring, strlen(tpl->valuestring))) {
                    om_error_prefix("%s: ", path);
                    goto fail;
                }
            }
        } else if (ct && !cJSON_IsNull(ct)) {
            om_errorf("%s: chat_template must be a string or a list of {name, template}", path);
            goto fail;
        }
    }
    if (!t->n) {
        om_errorf("%s: no chat template (no chat_template.jinja and no chat_template in tokenizer_config.json)",
                  model_dir);
        goto fail;
    }
    if (cfg && take_special_tokens(t, cfg)) goto fail;
    if (!cfg || !cJSON_GetObjectItemCaseSensitive(cfg, "added_tokens_decoder")) {
        /* old folders keep the special tokens in special_tokens_map.json */
        snprintf(path, sizeof path, "%s/special_tokens_map.json", model_dir);
        cJSON *map = read_json(path, &missing);
        if (map && take_special_tokens(t, map)) {
            cJSON_Delete(map);
            goto fail;
        }
        cJSON_Delete(map);
    }
    cJSON_Delete(cfg);
    return t;
fail:
    cJSON_Delete(cfg);
    om_chat_template_free(t);
    return NULL;
}

/* ---- rendering -------------------------------------------------------------------------- */

/* The names a message's reasoning comes under; the first is what templates read. */
static const char *const REASONING_FIELDS[] = {"reasoning_content", "thinking", "reasoning"};

/* A message as transformers passes it to the template: null-valued keys dropped, and the
 * reasoning aliased as {"thinking": r, **message, "reasoning_content": r}. */
static cJSON *normalize_message(const cJSON *m) {
    const cJSON *reasoning = NULL;
    for (size_t i = 0; i < 3 && !reasoning; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, REASONING_FIELDS[i]);
        if (v && !cJSON_IsNull(v)) reasoning = v;
    }
    cJSON *out = cJSON_CreateObject();
    if (!out) return NULL;
    if (reasoning) {
        const cJSON *th = cJSON_GetObjectItemCaseSensitive(m, "thinking");
        const cJSON *val = th && !cJSON_IsNull(th) ? th : reasoning;
        if (!cJSON_AddItemToObject(out, "thinking", cJSON_Duplicate(val, true))) goto fail;
    }
    const cJSON *e;
    bool had_rc = false;
    cJSON_ArrayForEach(e, m) {
        if (cJSON_IsNull(e) || !e->string) continue;
        if (reasoning && !strcmp(e->string, "thinking")) continue;
        const cJSON *val = e;
        if (reasoning && !strcmp(e->string, "reasoning_content")) {
            val = reasoning;
            had_rc = true;
        }
        cJSON *dup = cJSON_Duplicate(val, true);
        if (!dup) goto fail;
        cJSON_AddItemToObject(out, e->string, dup);
    }
    if (reasoning && !had_rc && !cJSON_AddItemToObject(out, "reasoning_content", cJSON_Duplicate(reasoning, true)))
        goto fail;
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

char *om_chat_template_render(const om_chat_template *t, const om_chat_inputs *in, size_t *out_len) {
    if (!in || !cJSON_IsArray(in->messages)) {
        om_errorf("chat template: messages must be a JSON array");
        return NULL;
    }
    if (!cJSON_GetArraySize(in->messages)) {
        om_errorf("Cannot apply chat template to an empty conversation. Provide at least one message.");
        return NULL;
    }
    if (in->tools && !cJSON_IsArray(in->tools) && !cJSON_IsNull(in->tools)) {
        om_errorf("chat template: tools must be a JSON array");
        return NULL;
    }
    if (in->extra && !cJSON_IsObject(in->extra)) {
        om_errorf("chat template: extra variables must be a JSON object");
        return NULL;
    }
    bool have_tools = in->tools && !cJSON_IsNull(in->tools);
    const char *want = in->template_name;
    if (!want) want = have_tools && om_chat_template_has(t, "tool_use") ? "tool_use" : "default";
    const jinja_template *tpl = NULL;
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->names[i], want)) tpl = t->tpl[i];
    if (!tpl) {
        if (in->template_name) om_errorf("chat template '%s' not found", want);
        else om_errorf("This model has multiple chat templates with no default specified!");
        return NULL;
    }

    cJSON *vars = cJSON_Duplicate(t->special, true);
    if (!vars) {
        om_errorf("out of memory");
        return NULL;
    }
    char *result = NULL;
    const cJSON *e;
    if (in->extra) {
        cJSON_ArrayForEach(e, in->extra) {
            if (!strcmp(e->string, "messages") || !strcmp(e->string, "tools") || !strcmp(e->string, "documents") ||
                !strcmp(e->string, "add_generation_prompt")) {
                om_errorf("chat template: extra variable '%s' would replace an input", e->string);
                goto done;
            }
            cJSON_DeleteItemFromObjectCaseSensitive(vars, e->string);
            cJSON *dup = cJSON_Duplicate(e, true);
            if (!dup) goto oom;
            cJSON_AddItemToObject(vars, e->string, dup);
        }
    }
    cJSON *msgs = cJSON_AddArrayToObject(vars, "messages");
    if (!msgs) goto oom;
    int idx = 0;
    cJSON_ArrayForEach(e, in->messages) {
        if (!cJSON_IsObject(e)) {
            om_errorf("Chat messages should be dicts, but message %d is not a JSON object", idx);
            goto done;
        }
        cJSON *m = normalize_message(e);
        if (!m) goto oom;
        cJSON_AddItemToArray(msgs, m);
        idx++;
    }
    cJSON *tools = have_tools ? cJSON_Duplicate(in->tools, true) : cJSON_CreateNull();
    cJSON *docs = in->documents && !cJSON_IsNull(in->documents) ? cJSON_Duplicate(in->documents, true)
                                                                 : cJSON_CreateNull();
    if (!tools || !docs) {
        cJSON_Delete(tools);
        cJSON_Delete(docs);
        goto oom;
    }
    cJSON_AddItemToObject(vars, "tools", tools);
    cJSON_AddItemToObject(vars, "documents", docs);
    if (!cJSON_AddBoolToObject(vars, "add_generation_prompt", in->add_generation_prompt)) goto oom;
    result = jinja_render(tpl, vars, NULL, out_len);
    goto done;
oom:
    om_errorf("out of memory");
done:
    cJSON_Delete(vars);
    return result;
}
