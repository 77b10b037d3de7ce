/* JSON helpers over cJSON: reading and parsing a JSON file with an error that names the file
 * and the position at fault, and typed getters for the fields of config.json-like objects.
 *
 * Every getter takes `file`, the label used in messages ("config.json", or
 * "config.json: rope_scaling" for a nested object), and records a one-line error through
 * om_errorf on failure:
 *     config.json: missing field 'hidden_size'
 *     config.json: field 'hidden_size' must be an integer
 * The *_or variants treat an absent field and a JSON null alike (Hugging Face configs write
 * null for "use the default") and return the default; a field that is present with the wrong
 * type is still an error, because silently using the default would hide a broken config.
 * `obj` may be NULL or a non-object (e.g. an optional sub-object that is absent): every field
 * is then absent. Functions returning int return 0 on success and -1 on error. */
#ifndef OM_JSON_UTIL_H
#define OM_JSON_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Reads and parses the JSON file at `path` into *out (caller frees with cJSON_Delete). Errors
 * name the file: cannot open/read, or "invalid JSON at byte N (line L, column C)". Trailing
 * content after the value other than whitespace is an error. */
int om_json_read_file(const char *path, cJSON **out);

/* Parses len bytes of JSON (need not be NUL-terminated) into *out; `label` names the source
 * in errors, as in om_json_read_file. Used for JSON embedded in other files (the safetensors
 * header). */
int om_json_parse_buffer(const char *buf, size_t len, const char *label, cJSON **out);

/* 1 when v is a JSON number holding an integer that fits int64 (2, 2.0 and 2e3 do; 2.5, NaN
 * and 1e300 do not), storing it in *out; 0 otherwise. Records no error. */
int om_json_as_int(const cJSON *v, int64_t *out);

/* Required integer field. */
int om_json_int(const cJSON *obj, const char *file, const char *key, int64_t *out);
/* Integer field; *out = def when absent or null. */
int om_json_int_or(const cJSON *obj, const char *file, const char *key, int64_t def, int64_t *out);
/* Required number field (an integer is accepted: 10000 for rope_theta). */
int om_json_float(const cJSON *obj, const char *file, const char *key, double *out);
/* Number field; *out = def when absent or null. */
int om_json_float_or(const cJSON *obj, const char *file, const char *key, double def, double *out);
/* Boolean field (true/false only); *out = def (0 or 1) when absent or null. */
int om_json_bool_or(const cJSON *obj, const char *file, const char *key, int def, int *out);
/* Required string field; *out points into obj (valid while obj lives). */
int om_json_string(const cJSON *obj, const char *file, const char *key, const char **out);
/* The string field, or def when absent or null. When the field holds something other than a
 * string, records an error and returns NULL; pass a non-NULL def to tell that apart from
 * "absent". The result points into obj (or is def). */
const char *om_json_string_or(const cJSON *obj, const char *file, const char *key, const char *def);
/* A field holding one integer or an array of integers (eos_token_id is either), stored in
 * out[0..*n). Absent or null gives *n = 0 and success. More than cap entries, or an entry that
 * is not an integer, is an error. */
int om_json_int_list(const cJSON *obj, const char *file, const char *key, int64_t *out, int cap, int *n);

#endif
