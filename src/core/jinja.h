/* A Jinja interpreter for chat templates: the subset of Jinja2 that Hugging Face chat
 * templates use, with the semantics of jinja2's ImmutableSandboxedEnvironment as transformers
 * configures it (trim_blocks, lstrip_blocks, loop controls, default Undefined, its own tojson,
 * raise_exception and strftime_now). Templates compile once to an AST and render many times;
 * a compiled template is read-only while rendering, so threads may share it.
 *
 * Variables are given as a cJSON object (every value a chat template sees is JSON data).
 * Errors name the template and the position: "chat template 3:14: unsupported filter
 * 'wordwrap'"; raise_exception(msg) fails the render with msg itself. */
#ifndef OM_JINJA_H
#define OM_JINJA_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

typedef struct jinja_template jinja_template;

/* Compiles template source (UTF-8, len bytes). `name` prefixes error messages ("chat
 * template"). NULL on a syntax error or an unsupported construct (om_last_error()). */
jinja_template *jinja_compile(const char *src, size_t len, const char *name);
void jinja_template_free(jinja_template *t);

typedef struct {
    size_t max_output;      /* bytes of output and of any string built on the way; 0: 64 MiB */
    int max_depth;          /* nested macro calls; 0: 200 */
    uint64_t max_iterations; /* loop iterations plus macro calls in one render; 0: 50 million */
} jinja_limits;

/* Renders with the variables in `vars` (a JSON object, may be NULL). Returns a malloc'd,
 * NUL-terminated string (*out_len bytes, which may contain NULs only if the data does), or
 * NULL with the error set. limits may be NULL for the defaults. */
char *jinja_render(const jinja_template *t, const cJSON *vars, const jinja_limits *limits,
                   size_t *out_len);

#endif
