/* The value model of the Jinja interpreter: reference-counted strings, lists and dicts with
 * Python's truthiness, equality, ordering, str()/repr() and json.dumps() formatting, so that
 * what a template prints matches what jinja2 prints on CPython byte for byte. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "core/error.h"
#include "core/jinja_internal.h"

/* ---- UTF-8 ------------------------------------------------------------------------------ */

int utf8_decode(const char *s, size_t len, size_t *pos) {
    const unsigned char *p = (const unsigned char *)s + *pos;
    size_t left = len - *pos;
    unsigned c = p[0];
    if (c < 0x80) {
        (*pos)++;
        return (int)c;
    }
    int n;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) {
        n = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4, cp = c & 0x07, min = 0x10000;
    } else {
        (*pos)++;
        return 0xfffd;
    }
    if ((size_t)n > left) {
        (*pos)++;
        return 0xfffd;
    }
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            (*pos)++;
            return 0xfffd;
        }
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        (*pos)++;
        return 0xfffd;
    }
    *pos += (size_t)n;
    return (int)cp;
}

size_t utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

bool py_isspace(uint32_t cp) {
    /* str.isspace(): bidirectional class WS, B or S, or category Zs. */
    if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20);
    switch (cp) {
    case 0x85: case 0xa0: case 0x1680: case 0x2028: case 0x2029: case 0x202f: case 0x205f:
    case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200a;
    }
}

/* ---- strings ---------------------------------------------------------------------------- */

static _Thread_local size_t str_limit = (size_t)64 << 20;

void jstr_set_limit(size_t max_bytes) { str_limit = max_bytes ? max_bytes : (size_t)64 << 20; }

jstr *jstr_alloc(size_t len) {
    if (len > str_limit) {
        om_errorf("string of %zu bytes exceeds the limit of %zu bytes", len, str_limit);
        return NULL;
    }
    jstr *s = malloc(sizeof *s + len + 1);
    if (!s) {
        om_errorf("out of memory");
        return NULL;
    }
    s->rc = 1;
    s->len = len;
    s->ascii = false;
    s->data[len] = 0;
    return s;
}

void jstr_finish(jstr *s) {
    bool ascii = true;
    for (size_t i = 0; i < s->len; i++)
        if ((unsigned char)s->data[i] >= 0x80) {
            ascii = false;
            break;
        }
    s->ascii = ascii;
}

jstr *jstr_new(const char *p, size_t len) {
    jstr *s = jstr_alloc(len);
    if (!s) return NULL;
    if (len) memcpy(s->data, p, len);
    jstr_finish(s);
    return s;
}

jstr *jstr_cstr(const char *p) { return jstr_new(p, strlen(p)); }

/* Strings with a negative count are a compiled template's constants: shared read-only by
 * concurrent renders, so they are never counted (and freed with the template). */
jstr *jstr_retain(jstr *s) {
    if (s && s->rc >= 0) s->rc++;
    return s;
}

void jstr_release(jstr *s) {
    if (s && s->rc >= 0 && --s->rc == 0) free(s);
}

size_t jstr_cplen(const jstr *s) {
    if (s->ascii) return s->len;
    size_t n = 0;
    for (size_t i = 0; i < s->len; i++)
        if (((unsigned char)s->data[i] & 0xc0) != 0x80) n++;
    return n;
}

/* ---- values ----------------------------------------------------------------------------- */

jv jv_undef(void) {
    jv v = {.kind = JV_UNDEFINED};
    v.u.s = NULL;
    return v;
}
jv jv_undef_msg(jstr *msg) {
    jv v = {.kind = JV_UNDEFINED};
    v.u.s = msg;
    return v;
}
jv jv_none(void) { return (jv){.kind = JV_NONE}; }
jv jv_bool(bool b) {
    jv v = {.kind = JV_BOOL};
    v.u.b = b;
    return v;
}
jv jv_int(int64_t i) {
    jv v = {.kind = JV_INT};
    v.u.i = i;
    return v;
}
jv jv_float(double f) {
    jv v = {.kind = JV_FLOAT};
    v.u.f = f;
    return v;
}
jv jv_str(jstr *s) {
    if (!s) return jv_undef();
    jv v = {.kind = JV_STR};
    v.u.s = s;
    return v;
}
jv jv_strn(const char *s, size_t len) { return jv_str(jstr_new(s, len)); }
jv jv_cstr(const char *s) { return jv_str(jstr_cstr(s)); }
jv jv_list(jlist *l) {
    jv v = {.kind = JV_LIST};
    v.u.l = l;
    return v;
}

bool jv_is_heap(jv v) {
    switch (v.kind) {
    case JV_UNDEFINED: return v.u.s != NULL;
    case JV_STR: case JV_LIST: case JV_DICT: case JV_NS: case JV_FUNC: case JV_LOOP: return true;
    default: return false;
    }
}

jv jv_retain(jv v) {
    switch (v.kind) {
    case JV_UNDEFINED:
    case JV_STR: jstr_retain(v.u.s); break;
    case JV_LIST: v.u.l->rc++; break;
    case JV_DICT:
    case JV_NS: v.u.d->rc++; break;
    case JV_FUNC: v.u.fn->rc++; break;
    case JV_LOOP: v.u.loop->rc++; break;
    default: break;
    }
    return v;
}

void jv_release(jv v) {
    switch (v.kind) {
    case JV_UNDEFINED:
    case JV_STR: jstr_release(v.u.s); break;
    case JV_LIST:
        if (--v.u.l->rc == 0) {
            for (size_t i = 0; i < v.u.l->n; i++) jv_release(v.u.l->items[i]);
            free(v.u.l->items);
            free(v.u.l);
        }
        break;
    case JV_DICT:
    case JV_NS:
        if (--v.u.d->rc == 0) {
            jdict_clear(v.u.d);
            free(v.u.d->keys);
            free(v.u.d->vals);
            free(v.u.d);
        }
        break;
    case JV_FUNC:
        if (--v.u.fn->rc == 0) {
            jv_release(v.u.fn->self);
            if (v.u.fn->closure) jscope_release(v.u.fn->closure);
            free(v.u.fn);
        }
        break;
    case JV_LOOP:
        if (--v.u.loop->rc == 0) {
            if (v.u.loop->items) jv_release(jv_list(v.u.loop->items));
            jv_release(v.u.loop->last_changed);
            free(v.u.loop);
        }
        break;
    default: break;
    }
}

/* ---- lists and dicts -------------------------------------------------------------------- */

jlist *jlist_new(size_t cap) {
    jlist *l = calloc(1, sizeof *l);
    if (!l) {
        om_errorf("out of memory");
        return NULL;
    }
    l->rc = 1;
    if (cap) {
        l->items = malloc(cap * sizeof *l->items);
        if (!l->items) {
            free(l);
            om_errorf("out of memory");
            return NULL;
        }
        l->cap = cap;
    }
    return l;
}

int jlist_push(jlist *l, jv v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        jv *p = realloc(l->items, cap * sizeof *p);
        if (!p) {
            jv_release(v);
            return om_errorf("out of memory");
        }
        l->items = p;
        l->cap = cap;
    }
    l->items[l->n++] = v;
    return 0;
}

jdict *jdict_new(void) {
    jdict *d = calloc(1, sizeof *d);
    if (!d) {
        om_errorf("out of memory");
        return NULL;
    }
    d->rc = 1;
    return d;
}

jv *jdict_get_str(const jdict *d, const char *key, size_t klen) {
    for (size_t i = 0; i < d->n; i++) {
        const jv *k = &d->keys[i];
        if (k->kind == JV_STR && k->u.s->len == klen && memcmp(k->u.s->data, key, klen) == 0)
            return &d->vals[i];
    }
    return NULL;
}

jv *jdict_get(const jdict *d, jv key) {
    if (key.kind == JV_STR) return jdict_get_str(d, key.u.s->data, key.u.s->len);
    for (size_t i = 0; i < d->n; i++)
        if (jv_equal(d->keys[i], key)) return &d->vals[i];
    return NULL;
}

int jdict_set(jdict *d, jv key, jv val) {
    jv *slot = jdict_get(d, key);
    if (slot) {
        jv_release(*slot);
        *slot = val;
        jv_release(key);
        return 0;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        jv *k = realloc(d->keys, cap * sizeof *k);
        if (!k) goto oom;
        d->keys = k;
        jv *v = realloc(d->vals, cap * sizeof *v);
        if (!v) goto oom;
        d->vals = v;
        d->cap = cap;
    }
    d->keys[d->n] = key;
    d->vals[d->n] = val;
    d->n++;
    return 0;
oom:
    jv_release(key);
    jv_release(val);
    return om_errorf("out of memory");
}

int jdict_set_str(jdict *d, const char *key, jv val) {
    jv k = jv_cstr(key);
    if (k.kind != JV_STR) {
        jv_release(val);
        return -1;
    }
    return jdict_set(d, k, val);
}

void jdict_clear(jdict *d) {
    /* Values may hold the last reference to something that points back here (a namespace
     * stored in itself), so detach the arrays before releasing. */
    size_t n = d->n;
    d->n = 0;
    for (size_t i = 0; i < n; i++) {
        jv_release(d->keys[i]);
        jv_release(d->vals[i]);
    }
}

/* ---- Python semantics -------------------------------------------------------------------- */

bool jv_truthy(jv v) {
    switch (v.kind) {
    case JV_UNDEFINED:
    case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return v.u.s->len > 0;
    case JV_LIST: return v.u.l->n > 0;
    case JV_DICT: return v.u.d->n > 0;
    default: return true;
    }
}

static bool is_num(jv v) { return v.kind == JV_BOOL || v.kind == JV_INT || v.kind == JV_FLOAT; }
static double num_f(jv v) {
    return v.kind == JV_FLOAT ? v.u.f : v.kind == JV_INT ? (double)v.u.i : (double)v.u.b;
}
static int64_t num_i(jv v) { return v.kind == JV_INT ? v.u.i : (int64_t)v.u.b; }

static bool equal_depth(jv a, jv b, int depth) {
    if (depth > 500) return false;
    if (is_num(a) && is_num(b)) {
        if (a.kind == JV_FLOAT || b.kind == JV_FLOAT) return num_f(a) == num_f(b);
        return num_i(a) == num_i(b);
    }
    if (a.kind != b.kind) return false;
    switch (a.kind) {
    case JV_UNDEFINED:
    case JV_NONE: return true;
    case JV_STR:
        return a.u.s->len == b.u.s->len && memcmp(a.u.s->data, b.u.s->data, a.u.s->len) == 0;
    case JV_LIST:
        if (a.u.l == b.u.l) return true;
        if (a.u.l->is_tuple != b.u.l->is_tuple || JL_IS_DICT_VIEW(a.u.l) != JL_IS_DICT_VIEW(b.u.l) ||
            (JL_IS_DICT_VIEW(a.u.l) && a.u.l->view != b.u.l->view) || a.u.l->n != b.u.l->n)
            return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!equal_depth(a.u.l->items[i], b.u.l->items[i], depth + 1)) return false;
        return true;
    case JV_DICT:
        if (a.u.d == b.u.d) return true;
        if (a.u.d->n != b.u.d->n) return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            jv *o = jdict_get(b.u.d, a.u.d->keys[i]);
            if (!o || !equal_depth(a.u.d->vals[i], *o, depth + 1)) return false;
        }
        return true;
    case JV_NS: return a.u.d == b.u.d;
    case JV_FUNC: return a.u.fn == b.u.fn;
    case JV_LOOP: return a.u.loop == b.u.loop;
    default: return false;
    }
}

bool jv_equal(jv a, jv b) { return equal_depth(a, b, 0); }

const char *jv_type_name(jv v) {
    switch (v.kind) {
    case JV_UNDEFINED: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return "str";
    case JV_LIST: {
        static const char *const names[] = {"list", "dict_keys", "dict_values", "dict_items"};
        return v.u.l->is_tuple || !JL_IS_DICT_VIEW(v.u.l) ? (v.u.l->is_tuple ? "tuple" : "list")
                                                           : names[v.u.l->view];
    }
    case JV_DICT: return "dict";
    case JV_NS: return "TemplateNamespace";
    case JV_FUNC: return v.u.fn->kind == JF_MACRO ? "Macro" : "builtin_function_or_method";
    case JV_LOOP: return "LoopContext";
    }
    return "object";
}

const char *jv_object_repr(jv v) {
    switch (v.kind) {
    case JV_NONE: return "None";
    case JV_BOOL: return "bool object";
    case JV_INT: return "int object";
    case JV_FLOAT: return "float object";
    case JV_STR: return "str object";
    case JV_LIST: {
        static const char *const names[] = {"list object", "dict_keys object", "dict_values object",
                                             "dict_items object"};
        return v.u.l->is_tuple || !JL_IS_DICT_VIEW(v.u.l) ? (v.u.l->is_tuple ? "tuple object" : "list object")
                                                           : names[v.u.l->view];
    }
    case JV_DICT: return "dict object";
    case JV_NS: return "transformers.utils.chat_template_utils.TemplateNamespace object";
    case JV_FUNC: return v.u.fn->kind == JF_MACRO ? "jinja2.runtime.Macro object"
                                                   : "builtin_function_or_method object";
    case JV_LOOP: return "jinja2.runtime.LoopContext object";
    default: return "jinja2.runtime.Undefined object";
    }
}

static int compare_depth(jv a, jv b, const char *op, int *out, int depth) {
    if (is_num(a) && is_num(b)) {
        if (a.kind == JV_FLOAT || b.kind == JV_FLOAT) {
            double x = num_f(a), y = num_f(b);
            *out = x < y ? -1 : x > y ? 1 : 0;
        } else {
            int64_t x = num_i(a), y = num_i(b);
            *out = x < y ? -1 : x > y ? 1 : 0;
        }
        return 0;
    }
    if (a.kind == JV_STR && b.kind == JV_STR) {
        /* UTF-8 byte order is code point order, which is Python's string order. */
        size_t n = a.u.s->len < b.u.s->len ? a.u.s->len : b.u.s->len;
        int r = memcmp(a.u.s->data, b.u.s->data, n);
        *out = r < 0 ? -1 : r > 0 ? 1 : a.u.s->len < b.u.s->len ? -1 : a.u.s->len > b.u.s->len;
        return 0;
    }
    if (a.kind == JV_LIST && b.kind == JV_LIST && a.u.l->is_tuple == b.u.l->is_tuple &&
        !JL_IS_DICT_VIEW(a.u.l) && !JL_IS_DICT_VIEW(b.u.l) && depth < 500) {
        size_t n = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (equal_depth(a.u.l->items[i], b.u.l->items[i], depth + 1)) continue;
            return compare_depth(a.u.l->items[i], b.u.l->items[i], op, out, depth + 1);
        }
        *out = a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n;
        return 0;
    }
    om_errorf("'%s' not supported between instances of '%s' and '%s'", op, jv_type_name(a),
              jv_type_name(b));
    return -2;
}

int jv_compare(jv a, jv b, const char *op, int *out) { return compare_depth(a, b, op, out, 0); }

/* ---- output buffer ---------------------------------------------------------------------- */

int jbuf_put(jbuf *b, const char *s, size_t n) {
    if (!n) return 0;
    if (b->len + n + 1 > b->cap) {
        size_t limit = b->max ? b->max : (size_t)64 << 20;
        if (b->len + n > limit)
            return om_errorf("output exceeds the limit of %zu bytes", limit);
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return om_errorf("out of memory");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

int jbuf_putc(jbuf *b, char c) { return jbuf_put(b, &c, 1); }

int jbuf_printf(jbuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return om_errorf("formatting failed");
    if ((size_t)n < sizeof tmp) return jbuf_put(b, tmp, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big) return om_errorf("out of memory");
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = jbuf_put(b, big, (size_t)n);
    free(big);
    return rc;
}

void jbuf_free(jbuf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

jstr *jbuf_to_str(jbuf *b) {
    jstr *s = jstr_new(b->p ? b->p : "", b->len);
    jbuf_free(b);
    return s;
}

/* ---- str() and repr() ------------------------------------------------------------------- */

void jv_format_float(double f, char *out, size_t cap) {
    if (isnan(f)) {
        snprintf(out, cap, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(out, cap, f < 0 ? "-inf" : "inf");
        return;
    }
    /* Shortest digit string that reads back to the same double, laid out as Python's
     * float_repr_style 'short': exponent form when the decimal point falls before the
     * fourth leading zero or beyond 16 digits. */
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, f);
        if (strtod(e, NULL) == f) break;
    }
    const char *p = e;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    char digits[24];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    int exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    int decpt = exp10 + 1;
    char buf[64];
    size_t o = 0;
    if (neg) buf[o++] = '-';
    if (decpt <= -4 || decpt > 16) {
        buf[o++] = digits[0];
        if (nd > 1) {
            buf[o++] = '.';
            for (int i = 1; i < nd; i++) buf[o++] = digits[i];
        }
        snprintf(buf + o, sizeof buf - o, "e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    } else if (decpt <= 0) {
        buf[o++] = '0';
        buf[o++] = '.';
        for (int i = 0; i < -decpt; i++) buf[o++] = '0';
        for (int i = 0; i < nd; i++) buf[o++] = digits[i];
        buf[o] = 0;
    } else if (decpt >= nd) {
        for (int i = 0; i < nd; i++) buf[o++] = digits[i];
        for (int i = nd; i < decpt; i++) buf[o++] = '0';
        buf[o++] = '.';
        buf[o++] = '0';
        buf[o] = 0;
    } else {
        for (int i = 0; i < decpt; i++) buf[o++] = digits[i];
        buf[o++] = '.';
        for (int i = decpt; i < nd; i++) buf[o++] = digits[i];
        buf[o] = 0;
    }
    snprintf(out, cap, "%s", buf);
}

static bool py_isprintable(uint32_t cp) {
    if (cp == ' ') return true;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CN: case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP: case UTF8PROC_CATEGORY_ZS:
        return false;
    default:
        return true;
    }
}

static int write_str_repr(jbuf *b, const jstr *s) {
    bool has_sq = memchr(s->data, '\'', s->len) != NULL;
    bool has_dq = memchr(s->data, '"', s->len) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    if (jbuf_putc(b, q)) return -1;
    size_t i = 0;
    while (i < s->len) {
        size_t start = i;
        uint32_t cp = (uint32_t)utf8_decode(s->data, s->len, &i);
        int rc;
        if (cp == (uint32_t)q || cp == '\\') {
            char e[2] = {'\\', (char)cp};
            rc = jbuf_put(b, e, 2);
        } else if (cp == '\t') {
            rc = jbuf_put(b, "\\t", 2);
        } else if (cp == '\n') {
            rc = jbuf_put(b, "\\n", 2);
        } else if (cp == '\r') {
            rc = jbuf_put(b, "\\r", 2);
        } else if (cp < 0x20 || cp == 0x7f) {
            rc = jbuf_printf(b, "\\x%02x", cp);
        } else if (cp < 0x7f || py_isprintable(cp)) {
            rc = jbuf_put(b, s->data + start, i - start);
        } else if (cp <= 0xff) {
            rc = jbuf_printf(b, "\\x%02x", cp);
        } else if (cp <= 0xffff) {
            rc = jbuf_printf(b, "\\u%04x", cp);
        } else {
            rc = jbuf_printf(b, "\\U%08x", cp);
        }
        if (rc) return -1;
    }
    return jbuf_putc(b, q);
}

static int write_repr_depth(jbuf *b, jv v, int depth);

static int write_dict_repr(jbuf *b, const jdict *d, int depth) {
    if (jbuf_putc(b, '{')) return -1;
    for (size_t i = 0; i < d->n; i++) {
        if (i && jbuf_put(b, ", ", 2)) return -1;
        if (write_repr_depth(b, d->keys[i], depth + 1) || jbuf_put(b, ": ", 2) ||
            write_repr_depth(b, d->vals[i], depth + 1))
            return -1;
    }
    return jbuf_putc(b, '}');
}

static int write_repr_depth(jbuf *b, jv v, int depth) {
    if (depth > 500) return om_errorf("maximum recursion depth exceeded while getting the repr");
    char num[64];
    switch (v.kind) {
    case JV_UNDEFINED: return jbuf_put(b, "Undefined", 9);
    case JV_NONE: return jbuf_put(b, "None", 4);
    case JV_BOOL: return v.u.b ? jbuf_put(b, "True", 4) : jbuf_put(b, "False", 5);
    case JV_INT: return jbuf_printf(b, "%lld", (long long)v.u.i);
    case JV_FLOAT:
        jv_format_float(v.u.f, num, sizeof num);
        return jbuf_put(b, num, strlen(num));
    case JV_STR: return write_str_repr(b, v.u.s);
    case JV_LIST: {
        const jlist *l = v.u.l;
        if (JL_IS_DICT_VIEW(l) && jbuf_printf(b, "%s(", jv_type_name(v))) return -1;
        if (jbuf_putc(b, l->is_tuple ? '(' : '[')) return -1;
        for (size_t i = 0; i < l->n; i++) {
            if (i && jbuf_put(b, ", ", 2)) return -1;
            if (write_repr_depth(b, l->items[i], depth + 1)) return -1;
        }
        if (l->is_tuple && l->n == 1 && jbuf_putc(b, ',')) return -1;
        if (jbuf_putc(b, l->is_tuple ? ')' : ']')) return -1;
        return JL_IS_DICT_VIEW(l) ? jbuf_putc(b, ')') : 0;
    }
    case JV_DICT: return write_dict_repr(b, v.u.d, depth);
    case JV_NS:
        if (jbuf_put(b, "<Namespace ", 11) || write_dict_repr(b, v.u.d, depth)) return -1;
        return jbuf_putc(b, '>');
    case JV_FUNC:
        if (v.u.fn->kind == JF_MACRO) return jbuf_printf(b, "<Macro '%s'>", v.u.fn->name);
        return jbuf_printf(b, "<built-in method %s>", v.u.fn->name);
    case JV_LOOP:
        return jbuf_printf(b, "<LoopContext %lld/%lld>", (long long)v.u.loop->index0 + 1,
                           (long long)v.u.loop->length);
    }
    return 0;
}

int jv_write_repr(jbuf *b, jv v) { return write_repr_depth(b, v, 0); }

int jv_write_str(jbuf *b, jv v) {
    if (v.kind == JV_STR) return jbuf_put(b, v.u.s->data, v.u.s->len);
    if (v.kind == JV_UNDEFINED) return 0;
    return jv_write_repr(b, v);
}

jstr *jv_to_str(jv v) {
    if (v.kind == JV_STR) return jstr_retain(v.u.s);
    jbuf b = {0};
    if (jv_write_str(&b, v)) {
        jbuf_free(&b);
        return NULL;
    }
    return jbuf_to_str(&b);
}

/* ---- json.dumps ------------------------------------------------------------------------- */

static int json_string(jbuf *b, const char *s, size_t len, bool ascii) {
    if (jbuf_putc(b, '"')) return -1;
    size_t i = 0, run = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char tmp[16];
        size_t start = i;
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c == '\b') esc = "\\b";
        else if (c == '\f') esc = "\\f";
        else if (c < 0x20) {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            esc = tmp;
        } else if (c >= 0x80 && ascii) {
            uint32_t cp = (uint32_t)utf8_decode(s, len, &i);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                snprintf(tmp, sizeof tmp, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
            } else {
                snprintf(tmp, sizeof tmp, "\\u%04x", cp);
            }
            if (jbuf_put(b, s + run, start - run) || jbuf_put(b, tmp, strlen(tmp))) return -1;
            run = i;
            continue;
        }
        if (esc) {
            if (jbuf_put(b, s + run, i - run) || jbuf_put(b, esc, strlen(esc))) return -1;
            run = i + 1;
        }
        i++;
    }
    if (jbuf_put(b, s + run, len - run)) return -1;
    return jbuf_putc(b, '"');
}

static int json_newline(jbuf *b, const jjson_opts *o, int level) {
    if (!o->indent) return 0;
    if (jbuf_putc(b, '\n')) return -1;
    for (int i = 0; i < level; i++)
        if (jbuf_put(b, o->indent, o->indent_len)) return -1;
    return 0;
}

static int json_float(jbuf *b, double f) {
    if (isnan(f)) return jbuf_put(b, "NaN", 3);
    if (isinf(f)) return f < 0 ? jbuf_put(b, "-Infinity", 9) : jbuf_put(b, "Infinity", 8);
    char num[64];
    jv_format_float(f, num, sizeof num);
    return jbuf_put(b, num, strlen(num));
}

static int json_key(jbuf *b, jv k, const jjson_opts *o) {
    switch (k.kind) {
    case JV_STR: return json_string(b, k.u.s->data, k.u.s->len, o->ensure_ascii);
    case JV_BOOL: return jbuf_put(b, k.u.b ? "\"true\"" : "\"false\"", k.u.b ? 6 : 7);
    case JV_NONE: return jbuf_put(b, "\"null\"", 6);
    case JV_INT: return jbuf_printf(b, "\"%lld\"", (long long)k.u.i);
    case JV_FLOAT: {
        jbuf t = {0};
        if (json_float(&t, k.u.f)) return -1;
        int rc = jbuf_putc(b, '"') || jbuf_put(b, t.p, t.len) || jbuf_putc(b, '"');
        jbuf_free(&t);
        return rc ? -1 : 0;
    }
    default:
        return om_errorf("keys must be str, int, float, bool or None, not %s", jv_type_name(k));
    }
}

static int json_value(jbuf *b, jv v, const jjson_opts *o, int level) {
    if (level > 500) return om_errorf("maximum recursion depth exceeded while encoding a JSON object");
    switch (v.kind) {
    case JV_NONE: return jbuf_put(b, "null", 4);
    case JV_BOOL: return v.u.b ? jbuf_put(b, "true", 4) : jbuf_put(b, "false", 5);
    case JV_INT: return jbuf_printf(b, "%lld", (long long)v.u.i);
    case JV_FLOAT: return json_float(b, v.u.f);
    case JV_STR: return json_string(b, v.u.s->data, v.u.s->len, o->ensure_ascii);
    case JV_LIST: {
        const jlist *l = v.u.l;
        if (JL_IS_DICT_VIEW(l)) return om_errorf("Object of type %s is not JSON serializable", jv_type_name(v));
        if (!l->n) return jbuf_put(b, "[]", 2);
        if (jbuf_putc(b, '[') || json_newline(b, o, level + 1)) return -1;
        for (size_t i = 0; i < l->n; i++) {
            if (i && (jbuf_put(b, o->item_sep, o->item_sep_len) || json_newline(b, o, level + 1)))
                return -1;
            if (json_value(b, l->items[i], o, level + 1)) return -1;
        }
        if (json_newline(b, o, level)) return -1;
        return jbuf_putc(b, ']');
    }
    case JV_DICT: {
        const jdict *d = v.u.d;
        if (!d->n) return jbuf_put(b, "{}", 2);
        size_t *order = malloc(d->n * sizeof *order);
        if (!order) return om_errorf("out of memory");
        for (size_t i = 0; i < d->n; i++) order[i] = i;
        if (o->sort_keys) {
            /* insertion sort keeps it simple and stable; dicts here are small */
            for (size_t i = 1; i < d->n; i++) {
                size_t x = order[i], j = i;
                while (j > 0) {
                    int r;
                    if (jv_compare(d->keys[order[j - 1]], d->keys[x], "<", &r) < 0) {
                        free(order);
                        return -1;
                    }
                    if (r <= 0) break;
                    order[j] = order[j - 1];
                    j--;
                }
                order[j] = x;
            }
        }
        int rc = jbuf_putc(b, '{') || json_newline(b, o, level + 1);
        for (size_t i = 0; !rc && i < d->n; i++) {
            if (i) rc = jbuf_put(b, o->item_sep, o->item_sep_len) || json_newline(b, o, level + 1);
            if (!rc) rc = json_key(b, d->keys[order[i]], o) || jbuf_put(b, o->key_sep, o->key_sep_len) ||
                          json_value(b, d->vals[order[i]], o, level + 1);
        }
        free(order);
        if (rc || json_newline(b, o, level)) return -1;
        return jbuf_putc(b, '}');
    }
    default:
        return om_errorf("Object of type %s is not JSON serializable", jv_type_name(v));
    }
}

int jv_write_json(jbuf *b, jv v, const jjson_opts *o) { return json_value(b, v, o, 0); }

/* ---- cJSON ------------------------------------------------------------------------------ */

jv jv_from_cjson(const cJSON *j) {
    if (!j || cJSON_IsNull(j)) return jv_none();
    if (cJSON_IsBool(j)) return jv_bool(cJSON_IsTrue(j));
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (isfinite(d) && d == floor(d) && fabs(d) < 9.2e18) return jv_int((int64_t)d);
        return jv_float(d);
    }
    if (cJSON_IsString(j)) return jv_cstr(j->valuestring ? j->valuestring : "");
    if (cJSON_IsArray(j)) {
        jlist *l = jlist_new((size_t)cJSON_GetArraySize(j));
        if (!l) return jv_undef();
        for (const cJSON *c = j->child; c; c = c->next) {
            jv v = jv_from_cjson(c);
            if (v.kind == JV_UNDEFINED || jlist_push(l, v)) {
                jv_release(jv_list(l));
                return jv_undef();
            }
        }
        return jv_list(l);
    }
    if (cJSON_IsObject(j)) {
        jdict *d = jdict_new();
        if (!d) return jv_undef();
        jv dv = {.kind = JV_DICT};
        dv.u.d = d;
        for (const cJSON *c = j->child; c; c = c->next) {
            jv v = jv_from_cjson(c);
            if (v.kind == JV_UNDEFINED || jdict_set_str(d, c->string ? c->string : "", v)) {
                jv_release(dv);
                return jv_undef();
            }
        }
        return dv;
    }
    om_errorf("unsupported JSON value");
    return jv_undef();
}
