/* Text completion (see completion.h). */
#include "core/completion.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/json_util.h"
#include "core/model.h"

/* Hugging Face's generate() samples only when generation_config.json says do_sample, with its
 * temperature, top_k (default 50), top_p and repetition_penalty. */
static int read_sampling_defaults(const char *dir, om_sampler_params *sp) {
    *sp = om_sampler_default_params();
    sp->temperature = 0;
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    if (stat(path, &st) != 0) return 0;
    cJSON *g = NULL;
    if (om_json_read_file(path, &g)) return -1;
    const char *f = "generation_config.json";
    int do_sample = 0;
    double t = 1.0, top_p = 1.0, rep = 1.0;
    int64_t top_k = 50;
    int rc = om_json_bool_or(g, f, "do_sample", 0, &do_sample) || om_json_float_or(g, f, "temperature", 1.0, &t) ||
             om_json_float_or(g, f, "top_p", 1.0, &top_p) || om_json_int_or(g, f, "top_k", 50, &top_k) ||
             om_json_float_or(g, f, "repetition_penalty", 1.0, &rep);
    cJSON_Delete(g);
    if (rc) return -1;
    if (do_sample) {
        sp->temperature = (float)t;
        sp->top_p = (float)top_p;
        sp->top_k = top_k > 0 && top_k < INT_MAX ? (int)top_k : 0;
    }
    sp->repetition_penalty = (float)rep;
    return 0;
}

/* The tokenizer and chat template a single-file checkpoint (GGUF) carries, as the JSON of
 * tokenizer.json and tokenizer_config.json that the model layer made from it. The template's
 * special tokens (bos_token, ...) are kept for rendering, since a template made from source
 * text has none. */
static int load_checkpoint_tokenizer(om_text_model *tm) {
    const om_model *m = tm->model;
    char *json = cJSON_PrintUnformatted(m->tokenizer_json);
    char *cfg = m->tokenizer_config ? cJSON_PrintUnformatted(m->tokenizer_config) : NULL;
    int rc = !json || (m->tokenizer_config && !cfg) ? om_errorf("out of memory")
                                                     : om_tokenizer_load_buffer(json, strlen(json), cfg,
                                                                                cfg ? strlen(cfg) : 0, &tm->tok);
    free(json);
    free(cfg);
    if (rc) return om_error_prefix("%s: ", m->dir);
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(m->tokenizer_config, "chat_template");
    if (cJSON_IsArray(ct)) {
        /* named templates: the default one (the first when none is called that) */
        const cJSON *e, *pick = NULL;
        cJSON_ArrayForEach(e, ct) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
            if (!pick || (cJSON_IsString(name) && !strcmp(name->valuestring, "default"))) pick = e;
        }
        ct = pick ? cJSON_GetObjectItemCaseSensitive(pick, "template") : NULL;
    }
    if (!cJSON_IsString(ct)) return 0;
    tm->tmpl = om_chat_template_create(ct->valuestring, strlen(ct->valuestring));
    if (!tm->tmpl) return om_error_prefix("%s: ", m->dir);
    tm->template_vars = cJSON_CreateObject();
    if (!tm->template_vars) return om_errorf("out of memory");
    static const char *const specials[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m->tokenizer_config, specials[i]);
        if (cJSON_IsString(v) && !cJSON_AddStringToObject(tm->template_vars, specials[i], v->valuestring))
            return om_errorf("out of memory");
    }
    return 0;
}

int om_text_model_load(const char *dir, const om_model_params *p, om_text_model **out) {
    *out = NULL;
    om_text_model *tm = calloc(1, sizeof *tm);
    if (!tm) return om_errorf("out of memory");
    if (om_model_load(dir, p, &tm->model) || read_sampling_defaults(dir, &tm->defaults)) goto fail;
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    const int from_checkpoint = tm->model->tokenizer_json != NULL;
    if (from_checkpoint) {
        if (load_checkpoint_tokenizer(tm)) goto fail;
        snprintf(path, sizeof path, "%s", tm->model->dir);
        /* The JSON (some megabytes of cJSON for a 50k vocabulary) has served its purpose. */
        cJSON_Delete(tm->model->tokenizer_json);
        cJSON_Delete(tm->model->tokenizer_config);
        tm->model->tokenizer_json = tm->model->tokenizer_config = NULL;
    } else if (stat(path, &st) == 0) {
        if (om_tokenizer_load(dir, &tm->tok)) goto fail;
    }
    if (tm->tok) {
        if (om_tokenizer_vocab_size(tm->tok) > om_model_n_vocab(tm->model)) {
            om_errorf("%s: the tokenizer has %d tokens but the model's vocabulary has %d", path,
                      om_tokenizer_vocab_size(tm->tok), om_model_n_vocab(tm->model));
            goto fail;
        }
        tm->thinks = om_tokenizer_token_to_id(tm->tok, "<think>", 7) >= 0 &&
                     om_tokenizer_token_to_id(tm->tok, "</think>", 8) >= 0;
        /* A chat model's end-of-turn token ends generation even when generation_config.json
         * does not list it. */
        int32_t eos = om_tokenizer_eos_id(tm->tok);
        om_model *m = tm->model;
        int known = 0;
        for (int i = 0; i < m->n_eos; i++) known |= m->eos_ids[i] == eos;
        if (eos >= 0 && !known && m->n_eos < OM_MAX_EOS) m->eos_ids[m->n_eos++] = eos;
    }
    if (tm->tok && !from_checkpoint) {
        snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
        char jinja[PATH_MAX];
        snprintf(jinja, sizeof jinja, "%s/chat_template.jinja", dir);
        if (stat(path, &st) == 0 || stat(jinja, &st) == 0) {
            tm->tmpl = om_chat_template_load(dir);
            /* A folder without any template is fine (raw prompts only); a broken one is not. */
            if (!tm->tmpl && !strstr(om_last_error(), "no chat template")) goto fail;
            om_clear_error();
        }
    }
    *out = tm;
    return 0;
fail:
    om_text_model_free(tm);
    return -1;
}

void om_text_model_free(om_text_model *tm) {
    if (!tm) return;
    om_chat_template_free(tm->tmpl);
    cJSON_Delete(tm->template_vars);
    om_tokenizer_free(tm->tok);
    om_model_free(tm->model);
    free(tm);
}

char *om_text_model_render(const om_text_model *tm, const cJSON *messages, const cJSON *tools, int enable_thinking) {
    if (!tm->tmpl) {
        om_errorf("model folder '%s' has no chat template (use a raw prompt)", tm->model->dir);
        return NULL;
    }
    cJSON *extra = tm->template_vars ? cJSON_Duplicate(tm->template_vars, 1) : cJSON_CreateObject();
    if (!extra) {
        om_errorf("out of memory");
        return NULL;
    }
    if (enable_thinking >= 0) cJSON_AddBoolToObject(extra, "enable_thinking", enable_thinking);
    om_chat_inputs in = {.messages = messages, .tools = tools, .add_generation_prompt = true, .extra = extra};
    size_t len;
    char *text = om_chat_template_render(tm->tmpl, &in, &len);
    cJSON_Delete(extra);
    return text;
}

int om_text_model_encode(const om_text_model *tm, const char *text, int templated, int32_t **ids, int *n) {
    if (!tm->tok) return om_errorf("model folder '%s' has no tokenizer.json", tm->model->dir);
    size_t count = 0;
    if (om_tokenizer_encode(tm->tok, text, strlen(text), !templated, ids, &count)) return -1;
    if (count == 0) {
        free(*ids);
        *ids = NULL;
        return om_errorf("the prompt encodes to no tokens");
    }
    *n = (int)count;
    return 0;
}

int om_prompt_opens_reasoning(const char *prompt) {
    size_t n = strlen(prompt);
    while (n && (prompt[n - 1] == '\n' || prompt[n - 1] == ' ')) n--;
    return n >= 7 && !memcmp(prompt + n - 7, "<think>", 7);
}

typedef struct {
    const om_completion_params *p;
    om_sampler *sampler;
    om_text_stream *stream;
    int stopped_by_text, failed;
} completion_run;

static int32_t pick(void *user, const float *logits, int n_vocab) {
    completion_run *r = user;
    return om_sampler_sample(r->sampler, logits);
}

static int on_token(void *user, int32_t token, const float *logits, int n_vocab) {
    completion_run *r = user;
    om_sampler_accept(r->sampler, token);
    if (r->p->on_token && r->p->on_token(r->p->user, token, logits, n_vocab)) return 1;
    if (!r->stream) return 0;
    int rc = om_text_stream_push(r->stream, token);
    if (rc < 0) r->failed = 1;
    if (rc) r->stopped_by_text = 1;
    return rc != 0;
}

int om_complete(om_text_model *tm, om_context *ctx, const int32_t *prompt, int n_prompt, const om_completion_params *p,
                om_completion_result *res) {
    memset(res, 0, sizeof *res);
    completion_run r = {.p = p};
    if (om_sampler_create(&p->sampling, om_model_n_vocab(tm->model), &r.sampler)) return -1;
    for (int i = 0; i < n_prompt; i++) om_sampler_accept_prompt(r.sampler, prompt[i]);
    if (tm->tok) {
        om_text_stream_params sp = {p->stop, p->n_stop, tm->thinks, p->reasoning_open, p->on_text, p->user};
        if (om_text_stream_new(tm->tok, &sp, &r.stream)) {
            om_sampler_free(r.sampler);
            return -1;
        }
    }
    om_generate_params gp = {.max_tokens = p->max_tokens, .ignore_eos = p->ignore_eos, .seq = p->seq,
                             .reuse_cache = p->reuse_cache, .pick = pick, .pick_user = &r, .on_token = on_token,
                             .user = &r};
    int rc = om_generate(ctx, prompt, n_prompt, &gp, &res->stats);
    if (rc == 0 && r.stream && !r.stopped_by_text && om_text_stream_finish(r.stream)) rc = -1;
    if (rc == 0 && r.failed) rc = -1;
    res->finish_reason = res->stats.stopped_by_eos || r.stopped_by_text ? "stop" : "length";
    om_text_stream_free(r.stream);
    om_sampler_free(r.sampler);
    return rc;
}
