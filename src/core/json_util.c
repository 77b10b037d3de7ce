/* JSON file reading and typed config getters over cJSON (see json_util.h). */
#include "core/json_util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* Files larger than this are not configs or tokenizers; refusing them early beats trying to
 * allocate whatever a corrupt size says. */
#define OM_JSON_MAX_FILE ((size_t)1 << 30)

static int is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* "line L, column C" of byte `at` (both from 1), for messages a person can act on. */
static void line_col(const char *buf, size_t at, size_t *line, size_t *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < at; i++) {
        if (buf[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

int om_json_parse_buffer(const char *buf, size_t len, const char *label, cJSON **out) {
    *out = NULL;
    const char *end = NULL;
    /* cJSON_ParseWithLengthOpts reports the failure position through `end` as well as through
     * the global cJSON_GetErrorPtr; `end` is per call, so it stays right when threads parse at
     * the same time. */
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!root) {
        size_t at = (end && end >= buf && end <= buf + len) ? (size_t)(end - buf) : 0;
        size_t line, col;
        line_col(buf, at, &line, &col);
        if (len == 0) return om_errorf("%s: invalid JSON: empty", label);
        return om_errorf("%s: invalid JSON at byte %zu (line %zu, column %zu)", label, at, line, col);
    }
    /* Without require_null_terminated cJSON ignores what follows the value; only whitespace
     * may follow (safetensors writers pad headers with spaces; some tools with NULs). */
    size_t at = (end && end >= buf && end <= buf + len) ? (size_t)(end - buf) : len;
    for (size_t i = at; i < len; i++) {
        if (!is_json_space(buf[i]) && buf[i] != '\0') {
            size_t line, col;
            line_col(buf, i, &line, &col);
            cJSON_Delete(root);
            return om_errorf("%s: invalid JSON: unexpected content after the value at byte %zu (line %zu, column %zu)",
                             label, i, line, col);
        }
    }
    *out = root;
    return 0;
}

int om_json_read_file(const char *path, cJSON **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return om_errorf("%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return om_errorf("%s: cannot read: %s", path, strerror(errno));
    }
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        int e = errno;
        fclose(f);
        return om_errorf("%s: cannot read: %s", path, strerror(e));
    }
    if ((unsigned long)n > OM_JSON_MAX_FILE) {
        fclose(f);
        return om_errorf("%s: %ld bytes is too large for a JSON file (limit %zu)", path, n, OM_JSON_MAX_FILE);
    }
    char *buf = malloc((size_t)n + 1);
    if (!buf) {
        fclose(f);
        return om_errorf("%s: out of memory reading %ld bytes", path, n);
    }
    size_t got = fread(buf, 1, (size_t)n, f);
    int read_err = ferror(f);
    fclose(f);
    if (got != (size_t)n || read_err) {
        free(buf);
        return om_errorf("%s: cannot read: short read (%zu of %ld bytes)", path, got, n);
    }
    buf[n] = 0;
    int rc = om_json_parse_buffer(buf, (size_t)n, path, out);
    free(buf);
    return rc;
}

int om_json_as_int(const cJSON *v, int64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    /* The bounds are exact powers of two, so the comparisons are exact and the cast below is
     * defined (casting a double outside int64's range is undefined behaviour). */
    if (!isfinite(d) || d != floor(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0) return 0;
    *out = (int64_t)d;
    return 1;
}

/* The field, or NULL when absent or (if null_is_absent) JSON null. */
static const cJSON *field(const cJSON *obj, const char *key, int null_is_absent) {
    if (!cJSON_IsObject(obj)) return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (v && null_is_absent && cJSON_IsNull(v)) return NULL;
    return v;
}

static int int_value(const cJSON *v, const char *file, const char *key, int64_t *out) {
    if (!om_json_as_int(v, out)) return om_errorf("%s: field '%s' must be an integer", file, key);
    return 0;
}

int om_json_int(const cJSON *obj, const char *file, const char *key, int64_t *out) {
    const cJSON *v = field(obj, key, 1);
    if (!v) return om_errorf("%s: missing field '%s'", file, key);
    return int_value(v, file, key, out);
}

int om_json_int_or(const cJSON *obj, const char *file, const char *key, int64_t def, int64_t *out) {
    const cJSON *v = field(obj, key, 1);
    if (!v) {
        *out = def;
        return 0;
    }
    return int_value(v, file, key, out);
}

static int float_value(const cJSON *v, const char *file, const char *key, double *out) {
    if (!cJSON_IsNumber(v)) return om_errorf("%s: field '%s' must be a number", file, key);
    *out = v->valuedouble;
    return 0;
}

int om_json_float(const cJSON *obj, const char *file, const char *key, double *out) {
    const cJSON *v = field(obj, key, 1);
    if (!v) return om_errorf("%s: missing field '%s'", file, key);
    return float_value(v, file, key, out);
}

int om_json_float_or(const cJSON *obj, const char *file, const char *key, double def, double *out) {
    const cJSON *v = field(obj, key, 1);
    if (!v) {
        *out = def;
        return 0;
    }
    return float_value(v, file, key, out);
}

int om_json_bool_or(const cJSON *obj, const char *file, const char *key, int def, int *out) {
    const cJSON *v = field(obj, key, 1);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v)) return om_errorf("%s: field '%s' must be true or false", file, key);
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return 0;
}

int om_json_string(const cJSON *obj, const char *file, const char *key, const char **out) {
    const cJSON *v = field(obj, key, 1);
    if (!v) return om_errorf("%s: missing field '%s'", file, key);
    if (!cJSON_IsString(v)) return om_errorf("%s: field '%s' must be a string", file, key);
    *out = v->valuestring;
    return 0;
}

const char *om_json_string_or(const cJSON *obj, const char *file, const char *key, const char *def) {
    const cJSON *v = field(obj, key, 1);
    if (!v) return def;
    if (!cJSON_IsString(v)) {
        om_errorf("%s: field '%s' must be a string", file, key);
        return NULL;
    }
    return v->valuestring;
}

int om_json_int_list(const cJSON *obj, const char *file, const char *key, int64_t *out, int cap, int *n) {
    *n = 0;
    const cJSON *v = field(obj, key, 1);
    if (!v) return 0;
    if (cJSON_IsNumber(v)) {
        if (cap < 1) return om_errorf("%s: field '%s' has more than %d entries", file, key, cap);
        if (int_value(v, file, key, &out[0]) != 0) return -1;
        *n = 1;
        return 0;
    }
    if (!cJSON_IsArray(v)) return om_errorf("%s: field '%s' must be an integer or an array of integers", file, key);
    int count = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, v) {
        if (count >= cap) return om_errorf("%s: field '%s' has more than %d entries", file, key, cap);
        if (!om_json_as_int(item, &out[count]))
            return om_errorf("%s: field '%s': entry %d must be an integer", file, key, count);
        count++;
    }
    *n = count;
    return 0;
}
