/* Chat templates: turns a conversation (OpenAI-style messages, tools, flags) into the prompt
 * text a model was trained on, by rendering the model's Jinja chat template exactly as
 * transformers' tokenizer.apply_chat_template(..., tokenize=False) does: same variables
 * (messages, tools, documents, add_generation_prompt, the special tokens, extra keyword
 * variables), same message normalization (keys whose value is null are dropped; reasoning
 * given as reasoning_content, thinking or reasoning is also passed under the other names
 * templates read), same choice between named templates ("tool_use" when tools are given). */
#ifndef OM_CHAT_TEMPLATE_H
#define OM_CHAT_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct om_chat_template om_chat_template;

/* One template from source text, named "default"; no special tokens (pass bos_token and
 * eos_token in extra if the template uses them). NULL on a syntax error or an unsupported
 * construct, with the message naming line:column (om_last_error()). */
om_chat_template *om_chat_template_create(const char *source, size_t len);

/* The template(s) of a Hugging Face model folder, found as transformers finds them:
 * chat_template.jinja and additional_chat_templates/<name>.jinja when present, otherwise
 * tokenizer_config.json's "chat_template" (a string, or a list of {name, template}). The
 * special tokens (bos_token, eos_token, unk_token, sep_token, pad_token, cls_token,
 * mask_token; strings or AddedToken objects) come from tokenizer_config.json, or from
 * special_tokens_map.json for old folders. NULL with the error set on failure. */
om_chat_template *om_chat_template_load(const char *model_dir);

void om_chat_template_free(om_chat_template *t);

/* Whether the folder/template set has a template of that name. */
bool om_chat_template_has(const om_chat_template *t, const char *name);

typedef struct {
    const cJSON *messages;  /* array of message objects (required, not empty) */
    const cJSON *tools;     /* array of tool definitions, or NULL (templates see None) */
    const cJSON *documents; /* array or NULL */
    bool add_generation_prompt;
    const cJSON *extra;     /* object of further variables (enable_thinking, date_string, ...)
                               or NULL; they override the special tokens */
    const char *template_name; /* NULL: "tool_use" if tools are given and it exists, else "default" */
} om_chat_inputs;

/* Renders the prompt. Returns a malloc'd NUL-terminated string (*out_len bytes), or NULL
 * with the error set: a template's raise_exception() message as is, other errors prefixed
 * with "chat template L:C: ". */
char *om_chat_template_render(const om_chat_template *t, const om_chat_inputs *in, size_t *out_len);

#endif
