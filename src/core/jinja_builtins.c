/* Filters, tests, methods and global functions of the Jinja interpreter: jinja2's built-in
 * filters and tests, the Python str/dict/list methods templates call, transformers'
 * additions (tojson with json.dumps options, raise_exception, strftime_now, namespace with its
 * underscore check) and the `loop` object. Each follows the Python definition closely enough
 * to print the same bytes, including Python's error messages where a template can trigger
 * them. String operations work on code points, as Python's str does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <utf8proc.h>

#include "core/error.h"
#include "core/jinja_internal.h"

/* ---- helpers ---------------------------------------------------------------------------- */

/* Whether c is one of the characters of set; NUL is never (strchr would find the terminator). */
static bool in_set(const char *set, char c) { return c && strchr(set, c); }

static int locate(jctx *c, const jnode *n) {
    if (c->raised) return -1;
    return om_error_prefix("%s %d:%d: ", c->t->name, n->line, n->col);
}

static jv dict_value(jdict *d) {
    jv v = {.kind = JV_DICT};
    v.u.d = d;
    return v;
}

static jv str_or_fail(jstr *s) { return s ? jv_str(s) : jv_undef(); }

/* Code points of a string (caller frees). */
static uint32_t *cps_of(const jstr *s, size_t *n) {
    uint32_t *cp = malloc((s->len + 1) * sizeof *cp);
    if (!cp) {
        om_errorf("out of memory");
        return NULL;
    }
    size_t k = 0;
    for (size_t pos = 0; pos < s->len;) cp[k++] = (uint32_t)utf8_decode(s->data, s->len, &pos);
    *n = k;
    return cp;
}

static jstr *str_of_cps(const uint32_t *cp, size_t n) {
    jbuf b = {0};
    for (size_t i = 0; i < n; i++) {
        char u[4];
        size_t l = utf8_encode(cp[i], u);
        if (jbuf_put(&b, u, l)) {
            jbuf_free(&b);
            return NULL;
        }
    }
    return jbuf_to_str(&b);
}

static bool is_intlike(jv v) { return v.kind == JV_INT || v.kind == JV_BOOL; }
static int64_t as_int(jv v) { return v.kind == JV_INT ? v.u.i : (int64_t)v.u.b; }
static bool is_number(jv v) { return is_intlike(v) || v.kind == JV_FLOAT; }
static double as_float(jv v) { return v.kind == JV_FLOAT ? v.u.f : (double)as_int(v); }

static bool want_int(jctx *c, const jnode *n, jv v, const char *what, int64_t *out) {
    if (!is_intlike(v)) {
        jctx_error(c, n, "%s must be an integer, not '%s'", what, jv_type_name(v));
        return false;
    }
    *out = as_int(v);
    return true;
}

static bool want_str(jctx *c, const jnode *n, jv v, const char *what) {
    if (v.kind != JV_STR) {
        jctx_error(c, n, "%s must be str, not %s", what, jv_type_name(v));
        return false;
    }
    return true;
}

int jargs_bind(jctx *c, const jnode *n, const char *fname, const jparam *params, size_t nparams, jargs *a,
               jv *slots, bool *given) {
    for (size_t i = 0; i < nparams; i++) {
        slots[i] = jv_undef();
        given[i] = false;
    }
    if (a->npos > nparams)
        return jctx_error(c, n, "%s() takes at most %zu argument%s (%zu given)", fname, nparams,
                          nparams == 1 ? "" : "s", a->npos);
    for (size_t i = 0; i < a->npos; i++) {
        slots[i] = a->pos[i];
        given[i] = true;
    }
    for (size_t k = 0; k < a->nkw; k++) {
        size_t i = 0;
        while (i < nparams && strcmp(params[i].name, a->kwnames[k])) i++;
        if (i == nparams)
            return jctx_error(c, n, "%s() got an unexpected keyword argument '%s'", fname, a->kwnames[k]);
        if (given[i]) return jctx_error(c, n, "%s() got multiple values for argument '%s'", fname, a->kwnames[k]);
        slots[i] = a->kw[k];
        given[i] = true;
    }
    for (size_t i = 0; i < nparams; i++)
        if (!given[i] && !params[i].has_default)
            return jctx_error(c, n, "%s() missing required argument '%s'", fname, params[i].name);
    return 0;
}

#define BIND(fname, ...)                                                                   \
    static const jparam P_[] = {__VA_ARGS__};                                              \
    jv arg[sizeof P_ / sizeof P_[0]];                                                       \
    bool has[sizeof P_ / sizeof P_[0]];                                                     \
    if (jargs_bind(c, n, fname, P_, sizeof P_ / sizeof P_[0], a, arg, has)) return -1;
#define NOARGS(fname)                                                                      \
    if (a->npos || a->nkw) return jctx_error(c, n, "%s() takes no arguments", fname);

/* Python str.strip family: which: 1 left, 2 right, 3 both; chars NULL means whitespace. */
static jstr *strip_str(const jstr *s, const jstr *chars, int which) {
    size_t n;
    uint32_t *cp = cps_of(s, &n);
    if (!cp) return NULL;
    size_t nc = 0;
    uint32_t *cc = NULL;
    if (chars && !(cc = cps_of(chars, &nc))) {
        free(cp);
        return NULL;
    }
    size_t lo = 0, hi = n;
    if (which & 1)
        while (lo < hi) {
            bool in = false;
            if (cc) {
                for (size_t k = 0; k < nc && !in; k++) in = cc[k] == cp[lo];
            } else {
                in = py_isspace(cp[lo]);
            }
            if (!in) break;
            lo++;
        }
    if (which & 2)
        while (hi > lo) {
            bool in = false;
            if (cc) {
                for (size_t k = 0; k < nc && !in; k++) in = cc[k] == cp[hi - 1];
            } else {
                in = py_isspace(cp[hi - 1]);
            }
            if (!in) break;
            hi--;
        }
    jstr *r = str_of_cps(cp + lo, hi - lo);
    free(cp);
    free(cc);
    return r;
}

/* Byte-level search helpers (UTF-8 substring search is byte search). */
static const char *find_bytes(const char *h, size_t hl, const char *nd, size_t nl) {
    if (!nl) return h;
    return memmem(h, hl, nd, nl);
}

static size_t cp_count_bytes(const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80) n++;
    return n;
}

static size_t cp_to_byte(const jstr *s, int64_t cpi) {
    if (cpi <= 0) return 0;
    if (s->ascii) return (size_t)cpi < s->len ? (size_t)cpi : s->len;
    size_t pos = 0;
    while (cpi-- > 0 && pos < s->len) utf8_decode(s->data, s->len, &pos);
    return pos;
}

/* Python's [start:end] bounds for find/count/startswith, in bytes. */
static void sub_bounds(const jstr *s, jv start, jv end, size_t *b0, size_t *b1) {
    int64_t len = (int64_t)jstr_cplen(s);
    int64_t st = is_intlike(start) ? as_int(start) : 0, en = is_intlike(end) ? as_int(end) : len;
    if (st < 0) st = st + len < 0 ? 0 : st + len;
    if (en < 0) en = en + len < 0 ? 0 : en + len;
    if (en > len) en = len;
    if (st > len) st = len;
    *b0 = cp_to_byte(s, st);
    *b1 = en < st ? *b0 : cp_to_byte(s, en);
}

static jstr *replace_str(const jstr *s, const jstr *old, const jstr *new_, int64_t count) {
    jbuf b = {0};
    size_t pos = 0;
    int64_t done = 0;
    if (!old->len) {
        /* Python inserts the replacement before every code point and at the end */
        for (size_t i = 0; i <= s->len;) {
            if (count < 0 || done < count) {
                if (jbuf_put(&b, new_->data, new_->len)) goto fail;
                done++;
            }
            if (i == s->len) break;
            size_t j = i;
            utf8_decode(s->data, s->len, &j);
            if (jbuf_put(&b, s->data + i, j - i)) goto fail;
            i = j;
        }
        return jbuf_to_str(&b);
    }
    while (count < 0 || done < count) {
        const char *hit = find_bytes(s->data + pos, s->len - pos, old->data, old->len);
        if (!hit) break;
        size_t at = (size_t)(hit - s->data);
        if (jbuf_put(&b, s->data + pos, at - pos) || jbuf_put(&b, new_->data, new_->len)) goto fail;
        pos = at + old->len;
        done++;
    }
    if (jbuf_put(&b, s->data + pos, s->len - pos)) goto fail;
    return jbuf_to_str(&b);
fail:
    jbuf_free(&b);
    return NULL;
}

/* Python str.split / rsplit. */
static int split_str(jctx *c, const jnode *n, const jstr *s, jv sepv, int64_t maxsplit, bool right, jv *out) {
    jlist *l = jlist_new(0);
    if (!l) return locate(c, n);
    if (sepv.kind == JV_STR) {
        const jstr *sep = sepv.u.s;
        if (!sep->len) {
            jv_release(jv_list(l));
            return jctx_error(c, n, "empty separator");
        }
        if (!right) {
            size_t pos = 0;
            int64_t done = 0;
            for (;;) {
                const char *hit = maxsplit < 0 || done < maxsplit
                                      ? find_bytes(s->data + pos, s->len - pos, sep->data, sep->len) : NULL;
                size_t end = hit ? (size_t)(hit - s->data) : s->len;
                if (jlist_push(l, jv_strn(s->data + pos, end - pos))) goto fail;
                if (!hit) break;
                pos = end + sep->len;
                done++;
            }
        } else {
            /* collect from the right, then reverse */
            size_t end = s->len;
            int64_t done = 0;
            for (;;) {
                const char *hit = NULL;
                if ((maxsplit < 0 || done < maxsplit) && end >= sep->len) {
                    for (size_t p = end - sep->len + 1; p-- > 0;)
                        if (!memcmp(s->data + p, sep->data, sep->len)) {
                            hit = s->data + p;
                            break;
                        }
                }
                size_t start = hit ? (size_t)(hit - s->data) + sep->len : 0;
                if (jlist_push(l, jv_strn(s->data + start, end - start))) goto fail;
                if (!hit) break;
                end = (size_t)(hit - s->data);
                done++;
            }
            for (size_t i = 0; i < l->n / 2; i++) {
                jv t = l->items[i];
                l->items[i] = l->items[l->n - 1 - i];
                l->items[l->n - 1 - i] = t;
            }
        }
    } else {
        /* runs of whitespace; leading/trailing whitespace yields no empty strings */
        size_t n2;
        uint32_t *cp = cps_of(s, &n2);
        if (!cp) goto fail;
        jlist *parts = l;
        int64_t done = 0;
        if (!right) {
            size_t i = 0;
            while (i < n2) {
                while (i < n2 && py_isspace(cp[i])) i++;
                if (i == n2) break;
                size_t j = i;
                if (maxsplit >= 0 && done >= maxsplit) {
                    j = n2; /* the remainder keeps its trailing whitespace, as in Python */
                } else {
                    while (j < n2 && !py_isspace(cp[j])) j++;
                }
                jstr *w = str_of_cps(cp + i, j - i);
                if (!w || jlist_push(parts, jv_str(w))) {
                    free(cp);
                    goto fail;
                }
                done++;
                i = j;
                if (maxsplit >= 0 && done > maxsplit) break;
            }
        } else {
            size_t j = n2;
            while (j > 0) {
                while (j > 0 && py_isspace(cp[j - 1])) j--;
                if (!j) break;
                size_t i = j;
                if (maxsplit >= 0 && done >= maxsplit) {
                    i = 0; /* the remainder keeps its leading whitespace, as in Python */
                } else {
                    while (i > 0 && !py_isspace(cp[i - 1])) i--;
                }
                jstr *w = str_of_cps(cp + i, j - i);
                if (!w || jlist_push(parts, jv_str(w))) {
                    free(cp);
                    goto fail;
                }
                done++;
                j = i;
                if (maxsplit >= 0 && done > maxsplit) break;
            }
            for (size_t i = 0; i < l->n / 2; i++) {
                jv t = l->items[i];
                l->items[i] = l->items[l->n - 1 - i];
                l->items[l->n - 1 - i] = t;
            }
        }
        free(cp);
    }
    *out = jv_list(l);
    return 0;
fail:
    jv_release(jv_list(l));
    return locate(c, n);
}

static uint32_t cp_upper(uint32_t c) { return (uint32_t)utf8proc_toupper((utf8proc_int32_t)c); }
static uint32_t cp_lower(uint32_t c) { return (uint32_t)utf8proc_tolower((utf8proc_int32_t)c); }
static uint32_t cp_title(uint32_t c) { return (uint32_t)utf8proc_totitle((utf8proc_int32_t)c); }
static bool cp_cased(uint32_t c) {
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT;
}
static bool cp_alpha(uint32_t c) {
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}
static bool cp_numeric(uint32_t c) {
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}
static bool cp_decimal(uint32_t c) { return utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_ND; }
static bool cp_word(uint32_t c) { return c == '_' || cp_alpha(c) || cp_numeric(c); }

enum { CASE_UPPER, CASE_LOWER, CASE_TITLE, CASE_CAPITALIZE, CASE_SWAP };

/* The unconditional multi-character mappings of Unicode's SpecialCasing.txt that Python's
 * str.upper()/lower()/title() apply (how: 0 upper, 1 lower, 2 title); NULL when the simple
 * one-to-one mapping applies. Greek iota-subscript forms are left to the simple mapping. */
static const uint32_t *special_case(uint32_t ch, int how) {
    static const struct {
        uint32_t cp;
        uint32_t upper[3], lower[3], title[3];
    } T[] = {
        {0x00df, {0x53, 0x53}, {0}, {0x53, 0x73}},
        {0x0130, {0}, {0x69, 0x307}, {0}},
        {0x0149, {0x2bc, 0x4e}, {0}, {0x2bc, 0x4e}},
        {0x01f0, {0x4a, 0x30c}, {0}, {0x4a, 0x30c}},
        {0x0390, {0x399, 0x308, 0x301}, {0}, {0x399, 0x308, 0x301}},
        {0x03b0, {0x3a5, 0x308, 0x301}, {0}, {0x3a5, 0x308, 0x301}},
        {0x0587, {0x535, 0x552}, {0}, {0x535, 0x582}},
        {0x1e96, {0x48, 0x331}, {0}, {0x48, 0x331}},
        {0x1e97, {0x54, 0x308}, {0}, {0x54, 0x308}},
        {0x1e98, {0x57, 0x30a}, {0}, {0x57, 0x30a}},
        {0x1e99, {0x59, 0x30a}, {0}, {0x59, 0x30a}},
        {0x1e9a, {0x41, 0x2be}, {0}, {0x41, 0x2be}},
        {0xfb00, {0x46, 0x46}, {0}, {0x46, 0x66}},
        {0xfb01, {0x46, 0x49}, {0}, {0x46, 0x69}},
        {0xfb02, {0x46, 0x4c}, {0}, {0x46, 0x6c}},
        {0xfb03, {0x46, 0x46, 0x49}, {0}, {0x46, 0x66, 0x69}},
        {0xfb04, {0x46, 0x46, 0x4c}, {0}, {0x46, 0x66, 0x6c}},
        {0xfb05, {0x53, 0x54}, {0}, {0x53, 0x74}},
        {0xfb06, {0x53, 0x54}, {0}, {0x53, 0x74}},
        {0xfb13, {0x544, 0x546}, {0}, {0x544, 0x576}},
        {0xfb14, {0x544, 0x535}, {0}, {0x544, 0x565}},
        {0xfb15, {0x544, 0x53b}, {0}, {0x544, 0x56b}},
        {0xfb16, {0x54e, 0x546}, {0}, {0x54e, 0x576}},
        {0xfb17, {0x544, 0x53d}, {0}, {0x544, 0x56d}},
    };
    if (ch < 0xdf) return NULL;
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        if (T[i].cp == ch) {
            const uint32_t *m = how == 0 ? T[i].upper : how == 1 ? T[i].lower : T[i].title;
            return m[0] ? m : NULL;
        }
    return NULL;
}

static jstr *case_str(const jstr *s, int mode) {
    if (s->ascii) {
        jstr *r = jstr_alloc(s->len);
        if (!r) return NULL;
        bool prev_cased = false;
        for (size_t i = 0; i < s->len; i++) {
            char ch = s->data[i];
            bool up = ch >= 'A' && ch <= 'Z', lo = ch >= 'a' && ch <= 'z';
            char u = lo ? (char)(ch - 32) : ch, l = up ? (char)(ch + 32) : ch;
            switch (mode) {
            case CASE_UPPER: r->data[i] = u; break;
            case CASE_LOWER: r->data[i] = l; break;
            case CASE_TITLE: r->data[i] = prev_cased ? l : u; break;
            case CASE_CAPITALIZE: r->data[i] = i == 0 ? u : l; break;
            default: r->data[i] = up ? l : lo ? u : ch; break;
            }
            prev_cased = up || lo;
        }
        r->ascii = true;
        return r;
    }
    size_t n;
    uint32_t *cp = cps_of(s, &n);
    if (!cp) return NULL;
    /* full case mappings can expand (ß -> SS), at most three code points each */
    uint32_t *res = malloc((3 * n + 1) * sizeof *res);
    if (!res) {
        free(cp);
        om_errorf("out of memory");
        return NULL;
    }
    size_t o = 0;
    bool prev_cased = false;
    for (size_t i = 0; i < n; i++) {
        uint32_t ch = cp[i];
        bool cased = cp_cased(ch);
        int how; /* 0 upper, 1 lower, 2 title */
        switch (mode) {
        case CASE_UPPER: how = 0; break;
        case CASE_LOWER: how = 1; break;
        case CASE_TITLE: how = prev_cased ? 1 : 2; break;
        case CASE_CAPITALIZE: how = i == 0 ? 2 : 1; break;
        default: how = cp_upper(ch) != ch ? 1 : cp_lower(ch) != ch ? 0 : 1; break;
        }
        const uint32_t *special = special_case(ch, how);
        if (special) {
            for (int k = 0; k < 3 && special[k]; k++) res[o++] = special[k];
        } else if (how == 1 && ch == 0x3a3) {
            /* Greek capital sigma lowers to final sigma at the end of a word */
            bool next_cased = i + 1 < n && cp_cased(cp[i + 1]);
            res[o++] = prev_cased && !next_cased ? 0x3c2 : 0x3c3;
        } else {
            res[o++] = how == 0 ? cp_upper(ch) : how == 1 ? cp_lower(ch) : cp_title(ch);
        }
        prev_cased = cased;
    }
    jstr *r = str_of_cps(res, o);
    free(cp);
    free(res);
    return r;
}

/* jinja2's title filter: each piece between runs of [-\s({[<] gets piece[0].upper() +
 * piece[1:].lower(), with Python's full case mappings. */
static jstr *jinja_title(const jstr *s) {
    size_t n;
    uint32_t *cp = cps_of(s, &n);
    if (!cp) return NULL;
    jbuf b = {0};
    size_t i = 0;
    int rc = 0;
    while (i < n && !rc) {
        size_t j = i;
        bool delim = cp[i] == '-' || py_isspace(cp[i]) || cp[i] == '(' || cp[i] == '{' || cp[i] == '[' || cp[i] == '<';
        while (j < n) {
            bool d = cp[j] == '-' || py_isspace(cp[j]) || cp[j] == '(' || cp[j] == '{' || cp[j] == '[' || cp[j] == '<';
            if (d != delim) break;
            j++;
        }
        jstr *first = str_of_cps(cp + i, 1), *rest = str_of_cps(cp + i + 1, j - i - 1);
        jstr *fu = first ? case_str(first, CASE_UPPER) : NULL, *rl = rest ? case_str(rest, CASE_LOWER) : NULL;
        rc = !fu || !rl || jbuf_put(&b, fu->data, fu->len) || jbuf_put(&b, rl->data, rl->len);
        jstr_release(first);
        jstr_release(rest);
        jstr_release(fu);
        jstr_release(rl);
        i = j;
    }
    free(cp);
    if (rc) {
        jbuf_free(&b);
        return NULL;
    }
    return jbuf_to_str(&b);
}

static bool is_line_break(uint32_t c) {
    return c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || c == 0x1c || c == 0x1d || c == 0x1e ||
           c == 0x85 || c == 0x2028 || c == 0x2029;
}

/* str.splitlines(keepends) */
static jlist *splitlines(const jstr *s, bool keepends) {
    size_t n;
    uint32_t *cp = cps_of(s, &n);
    if (!cp) return NULL;
    jlist *l = jlist_new(0);
    size_t i = 0;
    while (l && i < n) {
        size_t j = i;
        while (j < n && !is_line_break(cp[j])) j++;
        size_t eol = j;
        if (j < n) j += (cp[j] == '\r' && j + 1 < n && cp[j + 1] == '\n') ? 2 : 1;
        jstr *line = str_of_cps(cp + i, (keepends ? j : eol) - i);
        if (!line || jlist_push(l, jv_str(line))) {
            jv_release(jv_list(l));
            l = NULL;
        }
        i = j;
    }
    free(cp);
    return l;
}

/* ---- attribute getters (jinja2's make_attrgetter) ---------------------------------------- */

/* Follows "a.b.0" with environment.getitem semantics; parts that are digits index. */
static int attr_path(jctx *c, const jnode *n, jv item, jv path, jv *out) {
    if (path.kind != JV_STR) {
        if (is_intlike(path)) return jctx_getitem(c, n, item, path, out);
        return jctx_error(c, n, "attribute must be a string");
    }
    jv curv = jv_retain(item);
    const char *p = path.u.s->data, *end = p + path.u.s->len;
    while (1) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t len = dot ? (size_t)(dot - p) : (size_t)(end - p);
        bool digits = len > 0;
        for (size_t i = 0; i < len; i++) digits = digits && p[i] >= '0' && p[i] <= '9';
        jv key = digits ? jv_int(strtoll(p, NULL, 10)) : jv_strn(p, len);
        if (!digits && key.kind != JV_STR) {
            jv_release(curv);
            return locate(c, n);
        }
        jv next;
        int r = jctx_getitem(c, n, curv, key, &next);
        jv_release(key);
        jv_release(curv);
        if (r) return -1;
        curv = next;
        if (!dot) break;
        p = dot + 1;
    }
    *out = curv;
    return 0;
}

/* Lower-cases strings for case-insensitive sorting and uniqueness (jinja2's ignore_case). */
static jv fold_case(jv v, bool case_sensitive) {
    if (case_sensitive || v.kind != JV_STR) return jv_retain(v);
    return str_or_fail(case_str(v.u.s, CASE_LOWER));
}

/* Stable merge sort of keys[] with parallel values, errors from comparisons propagate. */
static int merge_sort(jv *keys, jv *vals, size_t n, bool reverse, jv *tk, jv *tv) {
    if (n < 2) return 0;
    size_t h = n / 2;
    if (merge_sort(keys, vals, h, reverse, tk, tv) || merge_sort(keys + h, vals + h, n - h, reverse, tk, tv))
        return -1;
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int r;
        if (jv_compare(keys[j], keys[i], "<", &r) < 0) return -1;
        bool take_right = reverse ? r > 0 : r < 0;
        if (take_right) {
            tk[k] = keys[j];
            tv[k++] = vals[j++];
        } else {
            tk[k] = keys[i];
            tv[k++] = vals[i++];
        }
    }
    while (i < h) {
        tk[k] = keys[i];
        tv[k++] = vals[i++];
    }
    while (j < n) {
        tk[k] = keys[j];
        tv[k++] = vals[j++];
    }
    memcpy(keys, tk, n * sizeof *keys);
    memcpy(vals, tv, n * sizeof *vals);
    return 0;
}

/* The sort key of one item: the item, item[pair_index] (dictsort) or an attribute path,
 * with strings lower-cased unless case_sensitive. */
static int sort_key(jctx *c, const jnode *n, jv item, jv attribute, int pair_index, bool cs, jv *out) {
    jv k;
    if (pair_index >= 0) {
        k = jv_retain(item.u.l->items[pair_index]);
    } else if (attribute.kind != JV_UNDEFINED && attribute.kind != JV_NONE) {
        if (attr_path(c, n, item, attribute, &k)) return -1;
    } else {
        k = jv_retain(item);
    }
    if (k.kind == JV_UNDEFINED) {
        *out = k;
        return 0;
    }
    *out = fold_case(k, cs);
    jv_release(k);
    return out->kind == JV_UNDEFINED ? locate(c, n) : 0;
}

/* Sorts the items of a list by key, stably (Python's sorted); returns a new list. */
static int sort_items(jctx *c, const jnode *n, const jlist *items, jv attribute, int pair_index, bool cs,
                      bool reverse, jlist **out) {
    size_t cnt = items->n;
    jv *keys = calloc(cnt + 1, sizeof *keys), *vals = calloc(cnt + 1, sizeof *vals);
    jv *tk = calloc(cnt + 1, sizeof *tk), *tv = calloc(cnt + 1, sizeof *tv);
    int rc = -1;
    size_t made = 0;
    if (!keys || !vals || !tk || !tv) {
        jctx_error(c, n, "out of memory");
        goto done;
    }
    for (; made < cnt; made++) {
        if (sort_key(c, n, items->items[made], attribute, pair_index, cs, &keys[made])) goto done;
        vals[made] = jv_retain(items->items[made]);
    }
    if (cnt > 1)
        for (size_t i = 0; i < cnt; i++)
            if (keys[i].kind == JV_UNDEFINED) {
                jctx_undefined_error(c, n, keys[i]);
                goto done;
            }
    if (merge_sort(keys, vals, cnt, reverse, tk, tv)) {
        locate(c, n);
        goto done;
    }
    jlist *l = jlist_new(cnt);
    if (!l) {
        locate(c, n);
        goto done;
    }
    for (size_t i = 0; i < cnt; i++) {
        jlist_push(l, vals[i]);
        vals[i] = jv_none();
    }
    *out = l;
    rc = 0;
done:
    for (size_t i = 0; i < made; i++) {
        jv_release(keys[i]);
        jv_release(vals[i]);
    }
    free(keys);
    free(vals);
    free(tk);
    free(tv);
    return rc;
}

/* ---- tests ------------------------------------------------------------------------------ */

static const char *const TESTS[] = {
    "defined", "undefined", "none", "boolean", "false", "true", "integer", "float", "number",
    "string", "mapping", "iterable", "sequence", "callable", "odd", "even", "divisibleby",
    "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan",
    ">", "ge", ">=", "in", "sameas", "lower", "upper", "escaped", "filter", "test",
};

bool jinja_test_exists(const char *name) {
    for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++)
        if (!strcmp(TESTS[i], name)) return true;
    return false;
}

static int test_compare(jctx *c, const jnode *n, jv v, jv other, const char *op, int want, bool *out) {
    if (v.kind == JV_UNDEFINED) return jctx_undefined_error(c, n, v);
    if (other.kind == JV_UNDEFINED) return jctx_undefined_error(c, n, other);
    int r;
    if (jv_compare(v, other, op, &r) < 0) return locate(c, n);
    switch (want) {
    case 0: *out = r < 0; break;
    case 1: *out = r <= 0; break;
    case 2: *out = r > 0; break;
    default: *out = r >= 0; break;
    }
    return 0;
}

int jinja_test(jctx *c, const jnode *n, const char *name, jv v, jargs *a, bool *out, bool *unknown) {
    *unknown = false;
    const char *t = name;
    if (!strcmp(t, "defined")) { NOARGS(t); *out = v.kind != JV_UNDEFINED; return 0; }
    if (!strcmp(t, "undefined")) { NOARGS(t); *out = v.kind == JV_UNDEFINED; return 0; }
    if (!strcmp(t, "none")) { NOARGS(t); *out = v.kind == JV_NONE; return 0; }
    if (!strcmp(t, "boolean")) { NOARGS(t); *out = v.kind == JV_BOOL; return 0; }
    if (!strcmp(t, "false")) { NOARGS(t); *out = v.kind == JV_BOOL && !v.u.b; return 0; }
    if (!strcmp(t, "true")) { NOARGS(t); *out = v.kind == JV_BOOL && v.u.b; return 0; }
    if (!strcmp(t, "integer")) { NOARGS(t); *out = v.kind == JV_INT; return 0; }
    if (!strcmp(t, "float")) { NOARGS(t); *out = v.kind == JV_FLOAT; return 0; }
    if (!strcmp(t, "number")) { NOARGS(t); *out = is_number(v); return 0; }
    if (!strcmp(t, "string")) { NOARGS(t); *out = v.kind == JV_STR; return 0; }
    if (!strcmp(t, "mapping")) { NOARGS(t); *out = v.kind == JV_DICT; return 0; }
    if (!strcmp(t, "iterable")) {
        NOARGS(t);
        *out = v.kind == JV_UNDEFINED || v.kind == JV_STR || v.kind == JV_LIST || v.kind == JV_DICT ||
               v.kind == JV_LOOP;
        return 0;
    }
    if (!strcmp(t, "sequence")) {
        NOARGS(t);
        *out = v.kind == JV_UNDEFINED || v.kind == JV_STR || (v.kind == JV_LIST && !JL_IS_DICT_VIEW(v.u.l)) ||
               v.kind == JV_DICT;
        return 0;
    }
    if (!strcmp(t, "callable")) { NOARGS(t); *out = v.kind == JV_FUNC || v.kind == JV_UNDEFINED; return 0; }
    if (!strcmp(t, "odd") || !strcmp(t, "even") || !strcmp(t, "divisibleby")) {
        bool odd = !strcmp(t, "odd"), div = !strcmp(t, "divisibleby");
        jv num = jv_int(2);
        if (div) {
            BIND(t, {"num", false});
            num = arg[0];
        } else {
            NOARGS(t);
        }
        if (v.kind == JV_UNDEFINED) return jctx_undefined_error(c, n, v);
        if (!is_number(v) || !is_number(num))
            return jctx_error(c, n, "unsupported operand type(s) for %%: '%s' and '%s'", jv_type_name(v),
                              jv_type_name(num));
        double m;
        if (is_intlike(v) && is_intlike(num)) {
            if (!as_int(num)) return jctx_error(c, n, "integer division or modulo by zero");
            int64_t r = as_int(num) == -1 ? 0 : as_int(v) % as_int(num);
            if (r && ((r < 0) != (as_int(num) < 0))) r += as_int(num);
            m = (double)r;
        } else {
            if (as_float(num) == 0.0) return jctx_error(c, n, "float modulo");
            m = fmod(as_float(v), as_float(num));
            if (m != 0.0 && ((m < 0) != (as_float(num) < 0))) m += as_float(num);
        }
        *out = div ? m == 0.0 : odd ? m == 1.0 : m == 0.0;
        return 0;
    }
    if (!strcmp(t, "eq") || !strcmp(t, "equalto") || !strcmp(t, "==") || !strcmp(t, "ne") ||
        !strcmp(t, "!=")) {
        BIND(t, {"other", false});
        *out = jv_equal(v, arg[0]) == (t[0] == 'e' || t[0] == '=');
        return 0;
    }
    static const struct { const char *name; int want; const char *op; } ORD[] = {
        {"lt", 0, "<"}, {"lessthan", 0, "<"}, {"<", 0, "<"}, {"le", 1, "<="}, {"<=", 1, "<="},
        {"gt", 2, ">"}, {"greaterthan", 2, ">"}, {">", 2, ">"}, {"ge", 3, ">="}, {">=", 3, ">="},
    };
    for (size_t i = 0; i < sizeof ORD / sizeof ORD[0]; i++)
        if (!strcmp(t, ORD[i].name)) {
            BIND(t, {"other", false});
            return test_compare(c, n, v, arg[0], ORD[i].op, ORD[i].want, out);
        }
    if (!strcmp(t, "in")) {
        BIND(t, {"seq", false});
        jv seq = arg[0];
        switch (seq.kind) {
        case JV_UNDEFINED: *out = false; return 0;
        case JV_STR:
            if (v.kind != JV_STR)
                return jctx_error(c, n, "'in <string>' requires string as left operand, not %s", jv_type_name(v));
            *out = find_bytes(seq.u.s->data, seq.u.s->len, v.u.s->data, v.u.s->len) != NULL;
            return 0;
        case JV_LIST:
            *out = false;
            for (size_t i = 0; i < seq.u.l->n && !*out; i++) *out = jv_equal(v, seq.u.l->items[i]);
            return 0;
        case JV_DICT: *out = v.kind != JV_UNDEFINED && jdict_get(seq.u.d, v); return 0;
        default: return jctx_error(c, n, "argument of type '%s' is not iterable", jv_type_name(seq));
        }
    }
    if (!strcmp(t, "sameas")) {
        BIND(t, {"other", false});
        jv o = arg[0];
        if (v.kind != o.kind) *out = false;
        else if (v.kind == JV_NONE || v.kind == JV_UNDEFINED) *out = v.kind == JV_NONE;
        else if (v.kind == JV_BOOL) *out = v.u.b == o.u.b;
        else if (v.kind == JV_INT) *out = v.u.i == o.u.i && v.u.i >= -5 && v.u.i <= 256;
        else if (v.kind == JV_FLOAT) *out = false;
        else *out = v.u.s == o.u.s; /* pointer identity for heap values */
        return 0;
    }
    if (!strcmp(t, "lower") || !strcmp(t, "upper")) {
        NOARGS(t);
        jstr *s = jv_to_str(v);
        if (!s) return locate(c, n);
        size_t cnt;
        uint32_t *cp = cps_of(s, &cnt);
        jstr_release(s);
        if (!cp) return locate(c, n);
        bool any = false, ok = true, lower = t[0] == 'l';
        for (size_t i = 0; i < cnt; i++) {
            utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)cp[i]);
            if (k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LT) {
                if (lower) ok = false;
                else any = true;
            } else if (k == UTF8PROC_CATEGORY_LL) {
                if (lower) any = true;
                else ok = false;
            }
        }
        free(cp);
        *out = any && ok;
        return 0;
    }
    if (!strcmp(t, "escaped")) { NOARGS(t); *out = false; return 0; }
    if (!strcmp(t, "filter") || !strcmp(t, "test")) {
        NOARGS(t);
        *out = v.kind == JV_STR && (t[0] == 'f' ? jinja_filter_exists(v.u.s->data) : jinja_test_exists(v.u.s->data));
        return 0;
    }
    *unknown = true;
    return -1;
}

/* Calls a test by name for select/reject: args after the name are the test's arguments. */
static int call_test_named(jctx *c, const jnode *n, jv name, jv v, jv *targs, size_t ntargs, const char **kwnames,
                           jv *kw, size_t nkw, bool *out) {
    if (name.kind != JV_STR) return jctx_error(c, n, "test name must be a string");
    jargs a = {.pos = targs, .npos = ntargs, .kwnames = kwnames, .kw = kw, .nkw = nkw};
    bool unknown = false;
    int r = jinja_test(c, n, name.u.s->data, v, &a, out, &unknown);
    if (r && unknown) return jctx_error(c, n, "No test named '%s'.", name.u.s->data);
    return r;
}

/* ---- tojson ----------------------------------------------------------------------------- */

static int do_tojson(jctx *c, const jnode *n, jv v, jargs *a, jv *out) {
    BIND("tojson", {"ensure_ascii", true}, {"indent", true}, {"separators", true}, {"sort_keys", true});
    jjson_opts o = {.item_sep = ", ", .item_sep_len = 2, .key_sep = ": ", .key_sep_len = 2};
    o.ensure_ascii = has[0] && jv_truthy(arg[0]);
    o.sort_keys = has[3] && jv_truthy(arg[3]);
    char spaces[256];
    jv indent = has[1] ? arg[1] : jv_none();
    if (indent.kind == JV_INT || indent.kind == JV_BOOL) {
        int64_t w = as_int(indent);
        if (w < 0) w = 0;
        if (w > (int64_t)sizeof spaces) return jctx_error(c, n, "tojson indent too large");
        memset(spaces, ' ', (size_t)w);
        o.indent = spaces;
        o.indent_len = (size_t)w;
    } else if (indent.kind == JV_STR) {
        o.indent = indent.u.s->data;
        o.indent_len = indent.u.s->len;
    } else if (indent.kind != JV_NONE) {
        return jctx_error(c, n, "tojson indent must be an integer, a string or None");
    }
    if (o.indent) {
        o.item_sep = ",";
        o.item_sep_len = 1;
    }
    if (has[2] && arg[2].kind != JV_NONE) {
        jv s = arg[2];
        if (s.kind != JV_LIST || s.u.l->n != 2 || s.u.l->items[0].kind != JV_STR || s.u.l->items[1].kind != JV_STR)
            return jctx_error(c, n, "tojson separators must be a pair of strings");
        o.item_sep = s.u.l->items[0].u.s->data;
        o.item_sep_len = s.u.l->items[0].u.s->len;
        o.key_sep = s.u.l->items[1].u.s->data;
        o.key_sep_len = s.u.l->items[1].u.s->len;
    }
    jbuf b = {.max = c->lim.max_output};
    if (jv_write_json(&b, v, &o)) {
        jbuf_free(&b);
        return locate(c, n);
    }
    *out = str_or_fail(jbuf_to_str(&b));
    return out->kind == JV_STR ? 0 : locate(c, n);
}

/* ---- %-formatting ----------------------------------------------------------------------- */

int jinja_percent_format(jctx *c, const jnode *n, jv fmt, jv args, jv *out) {
    const jstr *f = fmt.u.s;
    jbuf b = {.max = c->lim.max_output};
    size_t argi = 0;
    bool tuple = args.kind == JV_LIST && args.u.l->is_tuple;
    bool mapping = args.kind == JV_DICT;
    size_t nargs = tuple ? args.u.l->n : 1;
    for (size_t i = 0; i < f->len; i++) {
        if (f->data[i] != '%') {
            if (jbuf_putc(&b, f->data[i])) goto fail_loc;
            continue;
        }
        if (++i >= f->len) {
            jbuf_free(&b);
            return jctx_error(c, n, "incomplete format");
        }
        jv arg = jv_undef();
        bool have_key = false;
        if (f->data[i] == '(') {
            size_t e = i + 1;
            while (e < f->len && f->data[e] != ')') e++;
            if (!mapping || e >= f->len) {
                jbuf_free(&b);
                return jctx_error(c, n, "format requires a mapping");
            }
            jv *v = jdict_get_str(args.u.d, f->data + i + 1, e - i - 1);
            if (!v) {
                jbuf_free(&b);
                return jctx_error(c, n, "format key not found");
            }
            arg = *v;
            have_key = true;
            i = e + 1;
        }
        char spec[32] = "%";
        size_t sl = 1;
        while (i < f->len && in_set("-+ #0", f->data[i]) && sl < 8) spec[sl++] = f->data[i++];
        while (i < f->len && f->data[i] >= '0' && f->data[i] <= '9' && sl < 16) spec[sl++] = f->data[i++];
        if (i < f->len && f->data[i] == '.') {
            spec[sl++] = f->data[i++];
            while (i < f->len && f->data[i] >= '0' && f->data[i] <= '9' && sl < 24) spec[sl++] = f->data[i++];
        }
        if (i >= f->len) {
            jbuf_free(&b);
            return jctx_error(c, n, "incomplete format");
        }
        char conv = f->data[i];
        if (conv == '%') {
            if (jbuf_putc(&b, '%')) goto fail_loc;
            continue;
        }
        if (!have_key) {
            if (argi >= nargs || mapping) {
                jbuf_free(&b);
                return jctx_error(c, n, "not enough arguments for format string");
            }
            arg = tuple ? args.u.l->items[argi] : args;
            argi++;
        }
        int rc = 0;
        char tmp[512];
        if (conv == 's' || conv == 'r') {
            jbuf sb = {0};
            rc = conv == 's' ? jv_write_str(&sb, arg) : jv_write_repr(&sb, arg);
            if (!rc) {
                spec[sl++] = 's';
                spec[sl] = 0;
                if (sl == 2) rc = jbuf_put(&b, sb.p ? sb.p : "", sb.len);
                else rc = jbuf_printf(&b, spec, sb.p ? sb.p : "");
            }
            jbuf_free(&sb);
        } else if (in_set("dioxXc", conv)) {
            if (!is_number(arg)) {
                jbuf_free(&b);
                return jctx_error(c, n, "%%%c format: a real number is required, not %s", conv, jv_type_name(arg));
            }
            if (arg.kind == JV_FLOAT && !(fabs(arg.u.f) < 9.2e18)) {
                jbuf_free(&b);
                return jctx_error(c, n, "cannot convert %g to a 64-bit integer", arg.u.f);
            }
            long long iv = arg.kind == JV_FLOAT ? (long long)arg.u.f : (long long)as_int(arg);
            spec[sl++] = 'l';
            spec[sl++] = 'l';
            spec[sl++] = conv == 'i' ? 'd' : conv;
            spec[sl] = 0;
            snprintf(tmp, sizeof tmp, spec, iv);
            rc = jbuf_put(&b, tmp, strlen(tmp));
        } else if (in_set("eEfFgG", conv)) {
            if (!is_number(arg)) {
                jbuf_free(&b);
                return jctx_error(c, n, "must be real number, not %s", jv_type_name(arg));
            }
            spec[sl++] = conv;
            spec[sl] = 0;
            snprintf(tmp, sizeof tmp, spec, as_float(arg));
            rc = jbuf_put(&b, tmp, strlen(tmp));
        } else {
            jbuf_free(&b);
            return jctx_error(c, n, "unsupported format character '%c'", conv);
        }
        if (rc) goto fail_loc;
    }
    if (!mapping && argi < nargs) {
        jbuf_free(&b);
        return jctx_error(c, n, "not all arguments converted during string formatting");
    }
    *out = str_or_fail(jbuf_to_str(&b));
    return out->kind == JV_STR ? 0 : locate(c, n);
fail_loc:
    jbuf_free(&b);
    return locate(c, n);
}

/* Python's format(value, spec) for the format-spec mini-language ([[fill]align][sign][#][0]
 * [width][,|_][.precision][type]) on str, int, bool and float; other types only with an
 * empty spec. Appends to b. */
static int format_spec(jctx *c, const jnode *n, jv v, const char *spec, size_t sl, jbuf *b) {
    if (!sl || (v.kind != JV_STR && !is_number(v))) {
        if (sl) return jctx_error(c, n, "unsupported format string passed to %s.__format__", jv_type_name(v));
        return jv_write_str(b, v) ? locate(c, n) : 0;
    }
    size_t i = 0;
    uint32_t fill = ' ';
    char align = 0, sign = '-', type = 0, grouping = 0;
    bool alt = false, zero = false;
    int64_t width = -1, prec = -1;
    size_t p0 = 0;
    uint32_t first = (uint32_t)utf8_decode(spec, sl, &p0);
    if (p0 < sl && in_set("<>=^", spec[p0])) {
        fill = first;
        align = spec[p0];
        i = p0 + 1;
    } else if (in_set("<>=^", spec[0])) {
        align = spec[0];
        i = 1;
    }
    if (i < sl && (spec[i] == '+' || spec[i] == '-' || spec[i] == ' ')) sign = spec[i++];
    if (i < sl && spec[i] == '#') {
        alt = true;
        i++;
    }
    if (i < sl && spec[i] == '0') {
        zero = true;
        i++;
    }
    if (i < sl && spec[i] >= '0' && spec[i] <= '9') {
        width = 0;
        while (i < sl && spec[i] >= '0' && spec[i] <= '9' && width < 100000) width = width * 10 + (spec[i++] - '0');
    }
    if (i < sl && (spec[i] == ',' || spec[i] == '_')) grouping = spec[i++];
    if (i < sl && spec[i] == '.') {
        i++;
        prec = 0;
        if (i >= sl || spec[i] < '0' || spec[i] > '9') return jctx_error(c, n, "Format specifier missing precision");
        while (i < sl && spec[i] >= '0' && spec[i] <= '9' && prec < 100000) prec = prec * 10 + (spec[i++] - '0');
    }
    bool bad_type = false;
    if (i < sl) {
        type = spec[i++];
        bad_type = !in_set("sdnxXobcfFeEgG%", type);
    }
    if (i < sl || bad_type)
        return jctx_error(c, n, "Invalid format specifier '%.*s'", (int)sl, spec);
    if (zero && !align) {
        fill = '0';
        align = '=';
    }
    if (width > (int64_t)c->lim.max_output || prec > 1000) return jctx_error(c, n, "format width or precision too large");

    char body[1200];
    const char *prefix = "";
    jstr *sbody = NULL;
    if (v.kind == JV_STR) {
        if (type && type != 's') return jctx_error(c, n, "Unknown format code '%c' for object of type 'str'", type);
        if (sign != '-' || align == '=') return jctx_error(c, n, "Sign not allowed in string format specifier");
        size_t len = v.u.s->len;
        if (prec >= 0 && (size_t)prec < jstr_cplen(v.u.s)) {
            size_t pos = 0;
            for (int64_t k = 0; k < prec; k++) utf8_decode(v.u.s->data, v.u.s->len, &pos);
            len = pos;
        }
        sbody = jstr_new(v.u.s->data, len);
        if (!sbody) return locate(c, n);
        if (!align) align = '<';
    } else {
        bool int_form = is_intlike(v) && (!type || in_set("dnxXobc", type));
        if (is_intlike(v) && !type && prec >= 0) return jctx_error(c, n, "Precision not allowed in integer format specifier");
        if (v.kind == JV_FLOAT && in_set("dnxXobc", type))
            return jctx_error(c, n, "Unknown format code '%c' for object of type 'float'", type);
        bool neg;
        char digits[1100];
        if (int_form) {
            int64_t x = as_int(v);
            neg = x < 0;
            uint64_t u = neg ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
            if (type == 'c') {
                char ub[4];
                size_t ul = utf8_encode((uint32_t)u, ub);
                memcpy(digits, ub, ul);
                digits[ul] = 0;
                neg = false;
            } else {
                int base = type == 'x' || type == 'X' ? 16 : type == 'o' ? 8 : type == 'b' ? 2 : 10;
                char tmp[70];
                int k = 0;
                do {
                    int d = (int)(u % (uint64_t)base);
                    tmp[k++] = (char)(d < 10 ? '0' + d : (type == 'X' ? 'A' : 'a') + d - 10);
                    u /= (uint64_t)base;
                } while (u);
                int group = grouping ? (base == 10 ? 3 : 4) : 0, o = 0;
                for (int j = k - 1; j >= 0; j--) {
                    digits[o++] = tmp[j];
                    if (group && j > 0 && j % group == 0) digits[o++] = grouping;
                }
                digits[o] = 0;
                if (alt && base != 10) prefix = type == 'x' ? "0x" : type == 'X' ? "0X" : type == 'o' ? "0o" : "0b";
            }
        } else {
            double x = as_float(v);
            neg = signbit(x) && !isnan(x);
            double ax = fabs(x);
            char t = type ? type : (prec >= 0 ? 'g' : 'r');
            if (t == '%') ax *= 100.0;
            if (isinf(ax) || isnan(ax)) {
                bool up = t == 'F' || t == 'E' || t == 'G';
                snprintf(digits, sizeof digits, "%s", isnan(ax) ? (up ? "NAN" : "nan") : (up ? "INF" : "inf"));
            } else if (t == 'r') {
                jv_format_float(ax, digits, sizeof digits);
            } else {
                int pr = prec >= 0 ? (int)prec : 6;
                char cf = t == '%' ? 'f' : t;
                char f[16];
                snprintf(f, sizeof f, "%%.%d%c", pr, cf);
                snprintf(digits, sizeof digits, f, ax);
                if (!type && !strpbrk(digits, ".e")) strcat(digits, ".0");
            }
            if (grouping && !isinf(ax) && !isnan(ax)) {
                /* insert separators into the integer part */
                char tmp[1100];
                size_t intlen = strcspn(digits, ".e");
                size_t o = 0;
                for (size_t j = 0; j < intlen; j++) {
                    tmp[o++] = digits[j];
                    size_t left = intlen - j - 1;
                    if (left && left % 3 == 0) tmp[o++] = grouping;
                }
                snprintf(tmp + o, sizeof tmp - o, "%s", digits + intlen);
                snprintf(digits, sizeof digits, "%s", tmp);
            }
            if (t == '%') strcat(digits, "%");
        }
        const char *sg = neg ? "-" : sign == '+' ? "+" : sign == ' ' ? " " : "";
        snprintf(body, sizeof body, "%s%s", sg, prefix);
        size_t head = strlen(body);
        snprintf(body + head, sizeof body - head, "%s", digits);
        if (!align) align = '>';
        if (align == '=') {
            /* padding goes between the sign/prefix and the digits */
            int64_t len = (int64_t)cp_count_bytes(body, strlen(body));
            jbuf pad = {0};
            int rc = jbuf_put(&pad, body, head);
            char fu[4];
            size_t fl = utf8_encode(fill, fu);
            for (int64_t k = len; k < width && !rc; k++) rc = jbuf_put(&pad, fu, fl);
            if (!rc) rc = jbuf_put(&pad, body + head, strlen(body + head));
            if (rc) {
                jbuf_free(&pad);
                return locate(c, n);
            }
            sbody = jbuf_to_str(&pad);
            if (!sbody) return locate(c, n);
            width = -1;
        } else {
            sbody = jstr_cstr(body);
            if (!sbody) return locate(c, n);
        }
    }
    int64_t len = (int64_t)jstr_cplen(sbody);
    int64_t pad = width > len ? width - len : 0;
    int64_t left = align == '>' ? pad : align == '^' ? pad / 2 : 0;
    char fu[4];
    size_t fl = utf8_encode(fill, fu);
    int rc = 0;
    for (int64_t k = 0; k < left && !rc; k++) rc = jbuf_put(b, fu, fl);
    if (!rc) rc = jbuf_put(b, sbody->data, sbody->len);
    for (int64_t k = left; k < pad && !rc; k++) rc = jbuf_put(b, fu, fl);
    jstr_release(sbody);
    return rc ? locate(c, n) : 0;
}

/* str.format with {}, {0}, {name}, !r/!s and format specs (no nested fields or attribute
 * access in field names). */
static int str_format(jctx *c, const jnode *n, const jstr *f, jargs *a, jv *out) {
    jbuf b = {.max = c->lim.max_output};
    size_t auto_idx = 0;
    int numbering = 0; /* 1 automatic, 2 manual */
    for (size_t i = 0; i < f->len; i++) {
        char ch = f->data[i];
        if (ch == '}' ) {
            if (i + 1 < f->len && f->data[i + 1] == '}') {
                i++;
                if (jbuf_putc(&b, '}')) goto fail_loc;
                continue;
            }
            jbuf_free(&b);
            return jctx_error(c, n, "Single '}' encountered in format string");
        }
        if (ch != '{') {
            if (jbuf_putc(&b, ch)) goto fail_loc;
            continue;
        }
        if (i + 1 < f->len && f->data[i + 1] == '{') {
            i++;
            if (jbuf_putc(&b, '{')) goto fail_loc;
            continue;
        }
        size_t e = i + 1;
        while (e < f->len && f->data[e] != '}') e++;
        if (e >= f->len) {
            jbuf_free(&b);
            return jctx_error(c, n, "Single '{' encountered in format string");
        }
        const char *field = f->data + i + 1;
        size_t fl = e - i - 1;
        char conv = 0;
        const char *colon = memchr(field, ':', fl), *spec = NULL;
        size_t specl = 0;
        if (colon) {
            spec = colon + 1;
            specl = fl - (size_t)(colon - field) - 1;
            fl = (size_t)(colon - field);
            if (memchr(spec, '{', specl)) {
                jbuf_free(&b);
                return jctx_error(c, n, "unsupported construct: nested fields in a format spec");
            }
        }
        const char *bang = memchr(field, '!', fl);
        if (bang) {
            if ((size_t)(bang - field) + 2 != fl) {
                jbuf_free(&b);
                return jctx_error(c, n, "invalid conversion in format string");
            }
            conv = bang[1];
            fl = (size_t)(bang - field);
        }
        jv v = jv_undef();
        bool found = false;
        if (!fl) {
            if (numbering == 2) {
                jbuf_free(&b);
                return jctx_error(c, n, "cannot switch from manual field specification to automatic field numbering");
            }
            numbering = 1;
            if (auto_idx < a->npos) {
                v = a->pos[auto_idx];
                found = true;
            }
            auto_idx++;
            if (!found) {
                jbuf_free(&b);
                return jctx_error(c, n, "Replacement index %zu out of range for positional args tuple", auto_idx - 1);
            }
        } else if (field[0] >= '0' && field[0] <= '9') {
            if (numbering == 1) {
                jbuf_free(&b);
                return jctx_error(c, n, "cannot switch from automatic field numbering to manual field specification");
            }
            numbering = 2;
            size_t idx = (size_t)strtoull(field, NULL, 10);
            if (idx >= a->npos) {
                jbuf_free(&b);
                return jctx_error(c, n, "Replacement index %zu out of range for positional args tuple", idx);
            }
            v = a->pos[idx];
        } else {
            for (size_t k = 0; k < a->nkw; k++)
                if (strlen(a->kwnames[k]) == fl && !memcmp(a->kwnames[k], field, fl)) {
                    v = a->kw[k];
                    found = true;
                }
            if (!found) {
                jbuf_free(&b);
                return jctx_error(c, n, "format key '%.*s' not found", (int)fl, field);
            }
        }
        if (conv) {
            jbuf cb = {0};
            if (conv == 'r' ? jv_write_repr(&cb, v) : jv_write_str(&cb, v)) {
                jbuf_free(&cb);
                goto fail_loc;
            }
            jstr *cs = jbuf_to_str(&cb);
            if (!cs) goto fail_loc;
            int r = format_spec(c, n, jv_str(cs), spec, specl, &b);
            jstr_release(cs);
            if (r) {
                jbuf_free(&b);
                return -1;
            }
        } else if (format_spec(c, n, v, spec, specl, &b)) {
            jbuf_free(&b);
            return -1;
        }
        i = e;
    }
    *out = str_or_fail(jbuf_to_str(&b));
    return out->kind == JV_STR ? 0 : locate(c, n);
fail_loc:
    jbuf_free(&b);
    return locate(c, n);
}

/* ---- methods ---------------------------------------------------------------------------- */

enum {
    M_STARTSWITH, M_ENDSWITH, M_SPLIT, M_RSPLIT, M_STRIP, M_LSTRIP, M_RSTRIP, M_REPLACE, M_UPPER, M_LOWER,
    M_TITLE, M_CAPITALIZE, M_SWAPCASE, M_FIND, M_RFIND, M_INDEX, M_RINDEX, M_COUNT, M_FORMAT, M_JOIN,
    M_SPLITLINES, M_ISDIGIT, M_ISALPHA, M_ISALNUM, M_ISSPACE, M_ISUPPER, M_ISLOWER, M_ISNUMERIC,
    M_ISDECIMAL, M_ZFILL, M_CENTER, M_LJUST, M_RJUST, M_PARTITION, M_RPARTITION, M_REMOVEPREFIX,
    M_REMOVESUFFIX, M_EXPANDTABS,
    M_ITEMS, M_KEYS, M_VALUES, M_GET, M_DICT_COPY,
    M_LIST_INDEX, M_LIST_COUNT, M_LIST_COPY,
    M_LOOP_CYCLE, M_LOOP_CHANGED,
    M_COUNT_ALL
};

static const char *const STR_METHODS[] = {
    [M_STARTSWITH] = "startswith", [M_ENDSWITH] = "endswith", [M_SPLIT] = "split", [M_RSPLIT] = "rsplit",
    [M_STRIP] = "strip", [M_LSTRIP] = "lstrip", [M_RSTRIP] = "rstrip", [M_REPLACE] = "replace",
    [M_UPPER] = "upper", [M_LOWER] = "lower", [M_TITLE] = "title", [M_CAPITALIZE] = "capitalize",
    [M_SWAPCASE] = "swapcase", [M_FIND] = "find", [M_RFIND] = "rfind", [M_INDEX] = "index",
    [M_RINDEX] = "rindex", [M_COUNT] = "count", [M_FORMAT] = "format", [M_JOIN] = "join",
    [M_SPLITLINES] = "splitlines", [M_ISDIGIT] = "isdigit", [M_ISALPHA] = "isalpha", [M_ISALNUM] = "isalnum",
    [M_ISSPACE] = "isspace", [M_ISUPPER] = "isupper", [M_ISLOWER] = "islower", [M_ISNUMERIC] = "isnumeric",
    [M_ISDECIMAL] = "isdecimal", [M_ZFILL] = "zfill", [M_CENTER] = "center", [M_LJUST] = "ljust",
    [M_RJUST] = "rjust", [M_PARTITION] = "partition", [M_RPARTITION] = "rpartition",
    [M_REMOVEPREFIX] = "removeprefix", [M_REMOVESUFFIX] = "removesuffix", [M_EXPANDTABS] = "expandtabs",
    [M_ITEMS] = "items", [M_KEYS] = "keys", [M_VALUES] = "values", [M_GET] = "get", [M_DICT_COPY] = "copy",
    [M_LIST_INDEX] = "index", [M_LIST_COUNT] = "count", [M_LIST_COPY] = "copy",
    [M_LOOP_CYCLE] = "cycle", [M_LOOP_CHANGED] = "changed",
};

const char *jinja_method_name(int id) { return id >= 0 && id < M_COUNT_ALL ? STR_METHODS[id] : "?"; }

int jinja_method_id(jv v, const char *name, bool *unsafe) {
    *unsafe = false;
    int lo = 0, hi = -1;
    if (v.kind == JV_STR) {
        lo = M_STARTSWITH;
        hi = M_EXPANDTABS;
    } else if (v.kind == JV_DICT) {
        static const char *const bad[] = {"clear", "pop", "popitem", "setdefault", "update"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
            if (!strcmp(bad[i], name)) *unsafe = true;
        lo = M_ITEMS;
        hi = M_DICT_COPY;
    } else if (v.kind == JV_LIST && !JL_IS_DICT_VIEW(v.u.l)) {
        if (!v.u.l->is_tuple) {
            static const char *const bad[] = {"append", "clear", "pop", "reverse", "insert", "sort", "extend",
                                              "remove"};
            for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                if (!strcmp(bad[i], name)) *unsafe = true;
        }
        lo = M_LIST_INDEX;
        hi = v.u.l->is_tuple ? M_LIST_COUNT : M_LIST_COPY;
    }
    if (*unsafe) return -1;
    for (int i = lo; i <= hi; i++)
        if (!strcmp(STR_METHODS[i], name)) return i;
    return -1;
}

static int pad_str(jctx *c, const jnode *n, const jstr *s, jv width, jv fill, int mode, jv *out) {
    int64_t w;
    if (!want_int(c, n, width, "width", &w)) return -1;
    uint32_t fc = ' ';
    if (fill.kind == JV_STR) {
        if (jstr_cplen(fill.u.s) != 1) return jctx_error(c, n, "The fill character must be exactly one character long");
        size_t p = 0;
        fc = (uint32_t)utf8_decode(fill.u.s->data, fill.u.s->len, &p);
    }
    int64_t len = (int64_t)jstr_cplen(s);
    if (w <= len) {
        *out = jv_str(jstr_retain((jstr *)s));
        return 0;
    }
    if ((uint64_t)w > c->lim.max_output) return jctx_error(c, n, "width too large");
    int64_t pad = w - len, left;
    if (mode == 0) left = pad / 2 + (pad & w & 1); /* center, as CPython */
    else if (mode == 1) left = 0;                   /* ljust */
    else left = pad;                                /* rjust */
    char u[4];
    size_t ul = utf8_encode(fc, u);
    jbuf b = {.max = c->lim.max_output};
    int rc = 0;
    for (int64_t i = 0; i < left && !rc; i++) rc = jbuf_put(&b, u, ul);
    if (!rc) rc = jbuf_put(&b, s->data, s->len);
    for (int64_t i = left; i < pad && !rc; i++) rc = jbuf_put(&b, u, ul);
    if (rc) {
        jbuf_free(&b);
        return locate(c, n);
    }
    *out = str_or_fail(jbuf_to_str(&b));
    return out->kind == JV_STR ? 0 : locate(c, n);
}

static int str_method(jctx *c, const jnode *n, const jstr *s, int id, jargs *a, jv *out) {
    const char *mn = STR_METHODS[id];
    switch (id) {
    case M_STARTSWITH:
    case M_ENDSWITH: {
        BIND(mn, {"prefix", false}, {"start", true}, {"end", true});
        size_t b0, b1;
        sub_bounds(s, arg[1], arg[2], &b0, &b1);
        jv pre = arg[0];
        size_t np = pre.kind == JV_LIST && pre.u.l->is_tuple ? pre.u.l->n : 1;
        bool res = false;
        for (size_t i = 0; i < np && !res; i++) {
            jv p = pre.kind == JV_LIST && pre.u.l->is_tuple ? pre.u.l->items[i] : pre;
            if (p.kind != JV_STR)
                return jctx_error(c, n, "%s first arg must be str or a tuple of str, not %s", mn, jv_type_name(p));
            size_t pl = p.u.s->len;
            if (pl > b1 - b0) continue;
            res = id == M_STARTSWITH ? !memcmp(s->data + b0, p.u.s->data, pl)
                                     : !memcmp(s->data + b1 - pl, p.u.s->data, pl);
        }
        *out = jv_bool(res);
        return 0;
    }
    case M_SPLIT:
    case M_RSPLIT: {
        BIND(mn, {"sep", true}, {"maxsplit", true});
        int64_t maxsplit = -1;
        if (has[1] && !want_int(c, n, arg[1], "maxsplit", &maxsplit)) return -1;
        if (has[0] && arg[0].kind != JV_NONE && arg[0].kind != JV_STR)
            return jctx_error(c, n, "must be str or None, not %s", jv_type_name(arg[0]));
        return split_str(c, n, s, arg[0], maxsplit, id == M_RSPLIT, out);
    }
    case M_STRIP:
    case M_LSTRIP:
    case M_RSTRIP: {
        BIND(mn, {"chars", true});
        if (has[0] && arg[0].kind != JV_NONE && arg[0].kind != JV_STR)
            return jctx_error(c, n, "%s arg must be None or str", mn);
        *out = str_or_fail(strip_str(s, arg[0].kind == JV_STR ? arg[0].u.s : NULL,
                                     id == M_STRIP ? 3 : id == M_LSTRIP ? 1 : 2));
        return out->kind == JV_STR ? 0 : locate(c, n);
    }
    case M_REPLACE: {
        BIND(mn, {"old", false}, {"new", false}, {"count", true});
        int64_t count = -1;
        if (!want_str(c, n, arg[0], "replace() argument 1") || !want_str(c, n, arg[1], "replace() argument 2"))
            return -1;
        if (has[2] && !want_int(c, n, arg[2], "count", &count)) return -1;
        *out = str_or_fail(replace_str(s, arg[0].u.s, arg[1].u.s, count));
        return out->kind == JV_STR ? 0 : locate(c, n);
    }
    case M_UPPER: case M_LOWER: case M_TITLE: case M_CAPITALIZE: case M_SWAPCASE: {
        NOARGS(mn);
        int mode = id == M_UPPER ? CASE_UPPER : id == M_LOWER ? CASE_LOWER : id == M_TITLE ? CASE_TITLE
                 : id == M_CAPITALIZE ? CASE_CAPITALIZE : CASE_SWAP;
        *out = str_or_fail(case_str(s, mode));
        return out->kind == JV_STR ? 0 : locate(c, n);
    }
    case M_FIND: case M_RFIND: case M_INDEX: case M_RINDEX: case M_COUNT: {
        BIND(mn, {"sub", false}, {"start", true}, {"end", true});
        if (!want_str(c, n, arg[0], "argument")) return -1;
        const jstr *sub = arg[0].u.s;
        size_t b0, b1;
        sub_bounds(s, arg[1], arg[2], &b0, &b1);
        int64_t len = (int64_t)jstr_cplen(s);
        if (id == M_COUNT) {
            int64_t cnt = 0;
            if (!sub->len) {
                int64_t st = is_intlike(arg[1]) ? as_int(arg[1]) : 0;
                if (st < 0) st = st + len < 0 ? 0 : st + len;
                cnt = st > len ? 0 : (int64_t)cp_count_bytes(s->data + b0, b1 - b0) + 1;
            } else {
                for (size_t p = b0; p + sub->len <= b1;) {
                    const char *h = find_bytes(s->data + p, b1 - p, sub->data, sub->len);
                    if (!h) break;
                    cnt++;
                    p = (size_t)(h - s->data) + sub->len;
                }
            }
            *out = jv_int(cnt);
            return 0;
        }
        int64_t found = -1;
        if (sub->len <= b1 - b0) {
            if (id == M_FIND || id == M_INDEX) {
                const char *h = find_bytes(s->data + b0, b1 - b0, sub->data, sub->len);
                if (h) found = (int64_t)cp_count_bytes(s->data, (size_t)(h - s->data));
            } else {
                for (size_t p = b1 - sub->len + 1; p-- > b0;)
                    if (!memcmp(s->data + p, sub->data, sub->len)) {
                        found = (int64_t)cp_count_bytes(s->data, p);
                        break;
                    }
            }
        }
        if (found < 0 && (id == M_INDEX || id == M_RINDEX)) return jctx_error(c, n, "substring not found");
        *out = jv_int(found);
        return 0;
    }
    case M_FORMAT: return str_format(c, n, s, a, out);
    case M_JOIN: {
        BIND(mn, {"iterable", false});
        jlist *l;
        if (jctx_to_list(c, n, arg[0], &l)) return -1;
        jbuf b = {.max = c->lim.max_output};
        int rc = 0;
        for (size_t i = 0; i < l->n && !rc; i++) {
            if (l->items[i].kind != JV_STR) {
                rc = jctx_error(c, n, "sequence item %zu: expected str instance, %s found", i,
                                jv_type_name(l->items[i]));
                break;
            }
            if ((i && jbuf_put(&b, s->data, s->len)) || jbuf_put(&b, l->items[i].u.s->data, l->items[i].u.s->len))
                rc = locate(c, n);
        }
        jv_release(jv_list(l));
        if (rc) {
            jbuf_free(&b);
            return -1;
        }
        *out = str_or_fail(jbuf_to_str(&b));
        return out->kind == JV_STR ? 0 : locate(c, n);
    }
    case M_SPLITLINES: {
        BIND(mn, {"keepends", true});
        jlist *l = splitlines(s, has[0] && jv_truthy(arg[0]));
        if (!l) return locate(c, n);
        *out = jv_list(l);
        return 0;
    }
    case M_ISDIGIT: case M_ISALPHA: case M_ISALNUM: case M_ISSPACE: case M_ISUPPER: case M_ISLOWER:
    case M_ISNUMERIC: case M_ISDECIMAL: {
        NOARGS(mn);
        if (id == M_ISUPPER || id == M_ISLOWER) {
            jargs none = {0};
            bool unknown, res;
            jv self = {.kind = JV_STR};
            self.u.s = (jstr *)s;
            if (jinja_test(c, n, id == M_ISUPPER ? "upper" : "lower", self, &none, &res, &unknown)) return -1;
            *out = jv_bool(res);
            return 0;
        }
        size_t cnt;
        uint32_t *cp = cps_of(s, &cnt);
        if (!cp) return locate(c, n);
        bool ok = cnt > 0;
        for (size_t i = 0; i < cnt && ok; i++) {
            uint32_t ch = cp[i];
            switch (id) {
            case M_ISDIGIT:
                ok = cp_decimal(ch) || ch == 0xb2 || ch == 0xb3 || ch == 0xb9 || (ch >= 0x2070 && ch <= 0x2079);
                break;
            case M_ISALPHA: ok = cp_alpha(ch); break;
            case M_ISALNUM: ok = cp_alpha(ch) || cp_numeric(ch); break;
            case M_ISSPACE: ok = py_isspace(ch); break;
            case M_ISNUMERIC: ok = cp_numeric(ch); break;
            default: ok = cp_decimal(ch); break;
            }
        }
        free(cp);
        *out = jv_bool(ok);
        return 0;
    }
    case M_ZFILL: {
        BIND(mn, {"width", false});
        int64_t w;
        if (!want_int(c, n, arg[0], "width", &w)) return -1;
        int64_t len = (int64_t)jstr_cplen(s);
        if (w <= len) {
            *out = jv_str(jstr_retain((jstr *)s));
            return 0;
        }
        if ((uint64_t)w > c->lim.max_output) return jctx_error(c, n, "width too large");
        jbuf b = {.max = c->lim.max_output};
        size_t sign = s->len && (s->data[0] == '+' || s->data[0] == '-') ? 1 : 0;
        int rc = jbuf_put(&b, s->data, sign);
        for (int64_t i = 0; i < w - len && !rc; i++) rc = jbuf_putc(&b, '0');
        if (!rc) rc = jbuf_put(&b, s->data + sign, s->len - sign);
        if (rc) {
            jbuf_free(&b);
            return locate(c, n);
        }
        *out = str_or_fail(jbuf_to_str(&b));
        return out->kind == JV_STR ? 0 : locate(c, n);
    }
    case M_CENTER: case M_LJUST: case M_RJUST: {
        BIND(mn, {"width", false}, {"fillchar", true});
        return pad_str(c, n, s, arg[0], arg[1], id == M_CENTER ? 0 : id == M_LJUST ? 1 : 2, out);
    }
    case M_PARTITION: case M_RPARTITION: {
        BIND(mn, {"sep", false});
        if (!want_str(c, n, arg[0], "sep")) return -1;
        const jstr *sep = arg[0].u.s;
        if (!sep->len) return jctx_error(c, n, "empty separator");
        const char *h = NULL;
        if (id == M_PARTITION) {
            h = find_bytes(s->data, s->len, sep->data, sep->len);
        } else if (sep->len <= s->len) {
            for (size_t p = s->len - sep->len + 1; p-- > 0;)
                if (!memcmp(s->data + p, sep->data, sep->len)) {
                    h = s->data + p;
                    break;
                }
        }
        jlist *l = jlist_new(3);
        if (!l) return locate(c, n);
        l->is_tuple = true;
        if (h) {
            size_t at = (size_t)(h - s->data);
            jlist_push(l, jv_strn(s->data, at));
            jlist_push(l, jv_str(jstr_retain((jstr *)sep)));
            jlist_push(l, jv_strn(s->data + at + sep->len, s->len - at - sep->len));
        } else if (id == M_PARTITION) {
            jlist_push(l, jv_str(jstr_retain((jstr *)s)));
            jlist_push(l, jv_cstr(""));
            jlist_push(l, jv_cstr(""));
        } else {
            jlist_push(l, jv_cstr(""));
            jlist_push(l, jv_cstr(""));
            jlist_push(l, jv_str(jstr_retain((jstr *)s)));
        }
        for (size_t i = 0; i < l->n; i++)
            if (l->items[i].kind != JV_STR) {
                jv_release(jv_list(l));
                return locate(c, n);
            }
        *out = jv_list(l);
        return 0;
    }
    case M_REMOVEPREFIX: case M_REMOVESUFFIX: {
        BIND(mn, {"affix", false});
        if (!want_str(c, n, arg[0], "argument")) return -1;
        const jstr *x = arg[0].u.s;
        bool hit = x->len <= s->len &&
                   !memcmp(id == M_REMOVEPREFIX ? s->data : s->data + s->len - x->len, x->data, x->len);
        if (!hit || !x->len) {
            *out = jv_str(jstr_retain((jstr *)s));
            return 0;
        }
        *out = jv_strn(id == M_REMOVEPREFIX ? s->data + x->len : s->data, s->len - x->len);
        return out->kind == JV_STR ? 0 : locate(c, n);
    }
    case M_EXPANDTABS: {
        BIND(mn, {"tabsize", true});
        int64_t ts = 8;
        if (has[0] && !want_int(c, n, arg[0], "tabsize", &ts)) return -1;
        jbuf b = {.max = c->lim.max_output};
        int64_t col = 0;
        int rc = 0;
        for (size_t pos = 0; pos < s->len && !rc;) {
            size_t st = pos;
            int ch = utf8_decode(s->data, s->len, &pos);
            if (ch == '\t') {
                int64_t k = ts > 0 ? ts - col % ts : 0;
                for (int64_t i = 0; i < k && !rc; i++) rc = jbuf_putc(&b, ' ');
                col += k;
            } else {
                rc = jbuf_put(&b, s->data + st, pos - st);
                col = ch == '\n' || ch == '\r' ? 0 : col + 1;
            }
        }
        if (rc) {
            jbuf_free(&b);
            return locate(c, n);
        }
        *out = str_or_fail(jbuf_to_str(&b));
        return out->kind == JV_STR ? 0 : locate(c, n);
    }
    }
    return jctx_error(c, n, "internal error: unknown string method");
}

int jinja_call_method(jctx *c, const jnode *n, jv self, int id, jargs *a, jv *out) {
    const char *mn = STR_METHODS[id];
    if (self.kind == JV_STR) return str_method(c, n, self.u.s, id, a, out);
    if (self.kind == JV_DICT) {
        const jdict *d = self.u.d;
        switch (id) {
        case M_ITEMS: case M_KEYS: case M_VALUES: {
            NOARGS(mn);
            jlist *l = jlist_new(d->n);
            if (!l) return locate(c, n);
            for (size_t i = 0; i < d->n; i++) {
                jv item;
                if (id == M_ITEMS) {
                    jlist *pair = jlist_new(2);
                    if (!pair) {
                        jv_release(jv_list(l));
                        return locate(c, n);
                    }
                    pair->is_tuple = true;
                    jlist_push(pair, jv_retain(d->keys[i]));
                    jlist_push(pair, jv_retain(d->vals[i]));
                    item = jv_list(pair);
                } else {
                    item = jv_retain(id == M_KEYS ? d->keys[i] : d->vals[i]);
                }
                jlist_push(l, item);
            }
            l->view = id == M_ITEMS ? JL_ITEMS : id == M_KEYS ? JL_KEYS : JL_VALUES;
            *out = jv_list(l);
            return 0;
        }
        case M_GET: {
            BIND(mn, {"key", false}, {"default", true});
            jv *v = arg[0].kind == JV_UNDEFINED ? NULL : jdict_get(d, arg[0]);
            *out = v ? jv_retain(*v) : has[1] ? jv_retain(arg[1]) : jv_none();
            return 0;
        }
        case M_DICT_COPY: {
            NOARGS(mn);
            jdict *nd = jdict_new();
            if (!nd) return locate(c, n);
            for (size_t i = 0; i < d->n; i++)
                if (jdict_set(nd, jv_retain(d->keys[i]), jv_retain(d->vals[i]))) {
                    jv_release(dict_value(nd));
                    return locate(c, n);
                }
            *out = dict_value(nd);
            return 0;
        }
        }
    }
    if (self.kind == JV_LIST) {
        const jlist *l = self.u.l;
        switch (id) {
        case M_LIST_INDEX: {
            BIND(mn, {"value", false});
            for (size_t i = 0; i < l->n; i++)
                if (jv_equal(l->items[i], arg[0])) {
                    *out = jv_int((int64_t)i);
                    return 0;
                }
            return jctx_error(c, n, "value is not in list");
        }
        case M_LIST_COUNT: {
            BIND(mn, {"value", false});
            int64_t cnt = 0;
            for (size_t i = 0; i < l->n; i++) cnt += jv_equal(l->items[i], arg[0]);
            *out = jv_int(cnt);
            return 0;
        }
        case M_LIST_COPY: {
            NOARGS(mn);
            jlist *nl = jlist_new(l->n);
            if (!nl) return locate(c, n);
            for (size_t i = 0; i < l->n; i++) jlist_push(nl, jv_retain(l->items[i]));
            *out = jv_list(nl);
            return 0;
        }
        }
    }
    return jctx_error(c, n, "internal error: method on a wrong type");
}

/* ---- loop ------------------------------------------------------------------------------- */

int jinja_loop_attr(jctx *c, const jnode *n, jloop *l, const char *name, jv *out) {
    int64_t i = l->index0, len = l->length;
    if (!strcmp(name, "index")) *out = jv_int(i + 1);
    else if (!strcmp(name, "index0")) *out = jv_int(i);
    else if (!strcmp(name, "revindex")) *out = jv_int(len - i);
    else if (!strcmp(name, "revindex0")) *out = jv_int(len - i - 1);
    else if (!strcmp(name, "first")) *out = jv_bool(i == 0);
    else if (!strcmp(name, "last")) *out = jv_bool(i == len - 1);
    else if (!strcmp(name, "length")) *out = jv_int(len);
    else if (!strcmp(name, "depth")) *out = jv_int(l->depth);
    else if (!strcmp(name, "depth0")) *out = jv_int(l->depth - 1);
    else if (!strcmp(name, "previtem")) {
        *out = i > 0 ? jv_retain(l->items->items[i - 1]) : jv_undef_msg(jstr_cstr("there is no previous item"));
    } else if (!strcmp(name, "nextitem")) {
        *out = i + 1 < len ? jv_retain(l->items->items[i + 1]) : jv_undef_msg(jstr_cstr("there is no next item"));
    } else if (!strcmp(name, "cycle") || !strcmp(name, "changed")) {
        jfunc *f = calloc(1, sizeof *f);
        if (!f) return jctx_error(c, n, "out of memory");
        f->rc = 1;
        f->kind = JF_LOOP_METHOD;
        f->id = name[1] == 'y' ? M_LOOP_CYCLE : M_LOOP_CHANGED;
        f->name = STR_METHODS[f->id];
        l->rc++;
        f->self.kind = JV_LOOP;
        f->self.u.loop = l;
        out->kind = JV_FUNC;
        out->u.fn = f;
    } else {
        char msg[256];
        snprintf(msg, sizeof msg, "'jinja2.runtime.LoopContext object' has no attribute '%s'", name);
        *out = jv_undef_msg(jstr_cstr(msg));
    }
    return 0;
}

int jinja_call_loop_method(jctx *c, const jnode *n, jloop *l, int id, jargs *a, jv *out) {
    if (a->nkw) return jctx_error(c, n, "loop.%s() takes no keyword arguments", STR_METHODS[id]);
    if (id == M_LOOP_CYCLE) {
        if (!a->npos) return jctx_error(c, n, "no items for cycling given");
        *out = jv_retain(a->pos[(size_t)l->index0 % a->npos]);
        return 0;
    }
    jlist *vals = jlist_new(a->npos);
    if (!vals) return locate(c, n);
    vals->is_tuple = true;
    for (size_t i = 0; i < a->npos; i++) jlist_push(vals, jv_retain(a->pos[i]));
    jv v = jv_list(vals);
    if (l->last_changed.kind != JV_UNDEFINED && jv_equal(l->last_changed, v)) {
        jv_release(v);
        *out = jv_bool(false);
        return 0;
    }
    jv_release(l->last_changed);
    l->last_changed = v;
    *out = jv_bool(true);
    return 0;
}

/* ---- global functions ------------------------------------------------------------------- */

static int namespace_set_checked(jctx *c, const jnode *n, jdict *d, jv key, jv val) {
    if (key.kind == JV_STR && key.u.s->len && key.u.s->data[0] == '_') {
        jctx_error(c, n,
                   "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '%s'. "
                   "Please rename the attribute.",
                   key.u.s->data);
        jv_release(key);
        jv_release(val);
        return -1;
    }
    return jdict_set(d, key, val) ? locate(c, n) : 0;
}

/* dict(*args, **kwargs) semantics shared by dict() and namespace(). */
static int build_dict(jctx *c, const jnode *n, const char *fname, jargs *a, bool ns, jdict **out) {
    if (a->npos > 1) return jctx_error(c, n, "%s expected at most 1 argument, got %zu", fname, a->npos);
    jdict *d = jdict_new();
    if (!d) return locate(c, n);
    int rc = 0;
    if (a->npos) {
        jv src = a->pos[0];
        if (src.kind == JV_DICT || src.kind == JV_NS) {
            for (size_t i = 0; i < src.u.d->n && !rc; i++) {
                jv k = jv_retain(src.u.d->keys[i]), v = jv_retain(src.u.d->vals[i]);
                rc = ns ? namespace_set_checked(c, n, d, k, v) : (jdict_set(d, k, v) ? locate(c, n) : 0);
            }
        } else if (src.kind == JV_LIST) {
            for (size_t i = 0; i < src.u.l->n && !rc; i++) {
                jv p = src.u.l->items[i];
                if (p.kind != JV_LIST || p.u.l->n != 2) {
                    rc = jctx_error(c, n, "dictionary update sequence element #%zu has the wrong length", i);
                    break;
                }
                jv k = jv_retain(p.u.l->items[0]), v = jv_retain(p.u.l->items[1]);
                rc = ns ? namespace_set_checked(c, n, d, k, v) : (jdict_set(d, k, v) ? locate(c, n) : 0);
            }
        } else if (src.kind != JV_UNDEFINED) {
            rc = jctx_error(c, n, "'%s' object is not iterable", jv_type_name(src));
        }
    }
    for (size_t i = 0; i < a->nkw && !rc; i++) {
        jv k = jv_cstr(a->kwnames[i]);
        if (k.kind != JV_STR) {
            rc = locate(c, n);
            break;
        }
        jv v = jv_retain(a->kw[i]);
        rc = ns ? namespace_set_checked(c, n, d, k, v) : (jdict_set(d, k, v) ? locate(c, n) : 0);
    }
    if (rc) {
        jv_release(dict_value(d));
        return -1;
    }
    *out = d;
    return 0;
}

int jinja_call_builtin(jctx *c, const jnode *n, int id, jargs *a, jv *out) {
    switch (id) {
    case BI_RANGE: {
        if (a->nkw) return jctx_error(c, n, "range() takes no keyword arguments");
        if (!a->npos || a->npos > 3) return jctx_error(c, n, "range expected 1 to 3 arguments, got %zu", a->npos);
        int64_t v[3] = {0, 0, 1};
        for (size_t i = 0; i < a->npos; i++) {
            if (a->pos[i].kind == JV_UNDEFINED) return jctx_undefined_error(c, n, a->pos[i]);
            if (!is_intlike(a->pos[i]))
                return jctx_error(c, n, "'%s' object cannot be interpreted as an integer", jv_type_name(a->pos[i]));
        }
        if (a->npos == 1) v[1] = as_int(a->pos[0]);
        else {
            v[0] = as_int(a->pos[0]);
            v[1] = as_int(a->pos[1]);
            if (a->npos == 3) v[2] = as_int(a->pos[2]);
        }
        if (!v[2]) return jctx_error(c, n, "range() arg 3 must not be zero");
        /* the span may not fit in int64 (range(-2**62, 2**62)); then it is too big anyway */
        int64_t cnt = 0, span;
        if (v[2] > 0 && v[1] > v[0])
            cnt = __builtin_sub_overflow(v[1], v[0], &span) ? INT64_MAX : (span - 1) / v[2] + 1;
        if (v[2] < 0 && v[1] < v[0])
            cnt = __builtin_sub_overflow(v[0], v[1], &span) || v[2] == INT64_MIN ? INT64_MAX
                                                                                 : (span - 1) / -v[2] + 1;
        if (cnt > 100000)
            return jctx_error(c, n, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
        jlist *l = jlist_new((size_t)cnt);
        if (!l) return locate(c, n);
        for (int64_t i = 0; i < cnt; i++) jlist_push(l, jv_int(v[0] + i * v[2]));
        *out = jv_list(l);
        return 0;
    }
    case BI_NAMESPACE: {
        jdict *d;
        if (build_dict(c, n, "namespace", a, true, &d)) return -1;
        jctx_track_namespace(c, d);
        out->kind = JV_NS;
        out->u.d = d;
        return 0;
    }
    case BI_DICT: {
        jdict *d;
        if (build_dict(c, n, "dict", a, false, &d)) return -1;
        *out = dict_value(d);
        return 0;
    }
    case BI_RAISE: {
        BIND("raise_exception", {"message", false});
        jstr *s = jv_to_str(arg[0]);
        if (!s) return locate(c, n);
        c->raised = true;
        om_errorf("%s", s->data);
        jstr_release(s);
        return -1;
    }
    case BI_STRFTIME: {
        BIND("strftime_now", {"format", false});
        if (!want_str(c, n, arg[0], "strftime() argument 1")) return -1;
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        size_t cap = 256 + arg[0].u.s->len * 8;
        char *buf = malloc(cap);
        if (!buf) return jctx_error(c, n, "out of memory");
        size_t len = arg[0].u.s->len ? strftime(buf, cap, arg[0].u.s->data, &tm) : 0;
        *out = jv_strn(buf, len);
        free(buf);
        return out->kind == JV_STR ? 0 : locate(c, n);
    }
    }
    return jctx_error(c, n, "unsupported function");
}

/* ---- filters ---------------------------------------------------------------------------- */

static const char *const FILTERS[] = {
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
    "first", "float", "forceescape", "format", "groupby", "indent", "int", "items", "join", "last", "length", "list",
    "lower", "map", "max", "min", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select",
    "selectattr", "sort", "string", "sum", "title", "tojson", "trim", "unique", "upper", "wordcount",
};

bool jinja_filter_exists(const char *name) {
    for (size_t i = 0; i < sizeof FILTERS / sizeof FILTERS[0]; i++)
        if (!strcmp(FILTERS[i], name)) return true;
    return false;
}

/* Python's float() of a string: decimal, exponent, inf/nan, surrounding whitespace. */
static bool parse_py_float(const jstr *s, double *out) {
    jstr *t = strip_str(s, NULL, 3);
    if (!t) return false;
    char *buf = malloc(t->len + 1);
    bool ok = false;
    if (buf) {
        size_t o = 0;
        bool bad = t->len == 0;
        for (size_t i = 0; i < t->len; i++) {
            char ch = t->data[i];
            if (ch == '_') {
                bool between = i > 0 && i + 1 < t->len && t->data[i - 1] >= '0' && t->data[i - 1] <= '9' &&
                               t->data[i + 1] >= '0' && t->data[i + 1] <= '9';
                if (!between) bad = true;
                continue;
            }
            if (ch == 'x' || ch == 'X' || ch == 'p' || ch == 'P') bad = true; /* no hex floats */
            buf[o++] = ch;
        }
        buf[o] = 0;
        if (!bad) {
            char *end;
            *out = strtod(buf, &end);
            ok = end != buf && *end == 0;
        }
        free(buf);
    }
    jstr_release(t);
    return ok;
}

/* Python's int(str, base). */
static bool parse_py_int(const jstr *s, int64_t base, int64_t *out) {
    jstr *t = strip_str(s, NULL, 3);
    if (!t) return false;
    const char *p = t->data, *e = t->data + t->len;
    bool neg = false, ok = false;
    if (p < e && (*p == '+' || *p == '-')) neg = *p++ == '-';
    if (base == 0) {
        /* int(s, 0): the prefix decides, and a plain number may not start with 0 */
        base = 10;
        if (e - p > 2 && p[0] == '0') {
            char x = (char)(p[1] | 0x20);
            base = x == 'x' ? 16 : x == 'o' ? 8 : x == 'b' ? 2 : 10;
        }
        if (base == 10 && e - p > 1 && p[0] == '0') {
            for (const char *q = p; q < e; q++)
                if (*q != '0' && *q != '_') {
                    jstr_release(t);
                    return false;
                }
        }
    }
    if (base < 2 || base > 36) {
        jstr_release(t);
        return false;
    }
    if (base == 16 && e - p > 2 && p[0] == '0' && (p[1] | 0x20) == 'x') p += 2;
    else if (base == 8 && e - p > 2 && p[0] == '0' && (p[1] | 0x20) == 'o') p += 2;
    else if (base == 2 && e - p > 2 && p[0] == '0' && (p[1] | 0x20) == 'b') p += 2;
    uint64_t v = 0;
    size_t nd = 0;
    bool overflow = false, prev_us = true;
    for (; p < e; p++) {
        if (*p == '_' && !prev_us) {
            prev_us = true;
            continue;
        }
        int d = *p >= '0' && *p <= '9' ? *p - '0' : (*p | 0x20) >= 'a' && (*p | 0x20) <= 'z' ? (*p | 0x20) - 'a' + 10 : 99;
        if (d >= base) break;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) overflow = true;
        v = v * (uint64_t)base + (uint64_t)d;
        nd++;
        prev_us = false;
    }
    if (p == e && nd && !prev_us && !overflow && v <= (uint64_t)INT64_MAX) {
        *out = neg ? -(int64_t)v : (int64_t)v;
        ok = true;
    }
    jstr_release(t);
    return ok;
}

static double py_round(double x, int64_t nd) {
    if (!isfinite(x)) return x;
    if (nd >= 0) {
        if (nd > 300) return x;
        char buf[512];
        snprintf(buf, sizeof buf, "%.*f", (int)nd, x);
        return strtod(buf, NULL);
    }
    double p = pow(10.0, (double)-nd);
    double y = x / p;
    double r = nearbyint(y); /* round half to even in the default rounding mode */
    return r * p;
}

static int do_sort_like(jctx *c, const jnode *n, jv v, jv attribute, bool case_sensitive, bool reverse, jv *out) {
    jlist *items;
    if (jctx_to_list(c, n, v, &items)) return -1;
    jlist *sorted;
    int r = sort_items(c, n, items, attribute, -1, case_sensitive, reverse, &sorted);
    jv_release(jv_list(items));
    if (r) return -1;
    *out = jv_list(sorted);
    return 0;
}

/* Applies a named filter to one item, for map('name', ...). */
static int call_filter_named(jctx *c, const jnode *n, jv name, jv item, jv *fargs, size_t nf, const char **kwnames,
                             jv *kw, size_t nkw, jv *out) {
    if (name.kind != JV_STR) return jctx_error(c, n, "filter name must be a string");
    jargs a = {.pos = fargs, .npos = nf, .kwnames = kwnames, .kw = kw, .nkw = nkw};
    bool unknown = false;
    int r = jinja_filter(c, n, name.u.s->data, item, &a, out, &unknown);
    if (r && unknown) return jctx_error(c, n, "No filter named '%s'.", name.u.s->data);
    return r;
}

static int do_select(jctx *c, const jnode *n, const char *fname, jv v, jargs *a, bool attr, bool select, jv *out) {
    jlist *res = jlist_new(0);
    if (!res) return locate(c, n);
    if (!jv_truthy(v)) {
        *out = jv_list(res);
        return 0;
    }
    size_t off = attr ? 1 : 0;
    if (attr && !a->npos) {
        jv_release(jv_list(res));
        return jctx_error(c, n, "%s() missing required argument 'attr'", fname);
    }
    jlist *items;
    if (jctx_to_list(c, n, v, &items)) {
        jv_release(jv_list(res));
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < items->n && !rc; i++) {
        jv item = items->items[i], x;
        if (attr) {
            if (attr_path(c, n, item, a->pos[0], &x)) {
                rc = -1;
                break;
            }
        } else {
            x = jv_retain(item);
        }
        bool keep;
        if (a->npos > off) {
            rc = call_test_named(c, n, a->pos[off], x, a->pos + off + 1, a->npos - off - 1, a->kwnames, a->kw,
                                 a->nkw, &keep);
        } else {
            keep = jv_truthy(x);
        }
        jv_release(x);
        if (!rc && keep == select && jlist_push(res, jv_retain(item))) rc = locate(c, n);
    }
    jv_release(jv_list(items));
    if (rc) {
        jv_release(jv_list(res));
        return -1;
    }
    *out = jv_list(res);
    return 0;
}

static int do_map(jctx *c, const jnode *n, jv v, jargs *a, jv *out) {
    jlist *res = jlist_new(0);
    if (!res) return locate(c, n);
    if (!jv_truthy(v)) {
        *out = jv_list(res);
        return 0;
    }
    jlist *items;
    if (jctx_to_list(c, n, v, &items)) {
        jv_release(jv_list(res));
        return -1;
    }
    int rc = 0;
    jv attribute = jv_undef(), deflt = jv_undef();
    bool by_attr = false, has_default = false;
    if (!a->npos) {
        for (size_t k = 0; k < a->nkw; k++) {
            if (!strcmp(a->kwnames[k], "attribute")) {
                attribute = a->kw[k];
                by_attr = true;
            } else if (!strcmp(a->kwnames[k], "default")) {
                deflt = a->kw[k];
                has_default = true;
            } else {
                rc = jctx_error(c, n, "Unexpected keyword argument '%s'", a->kwnames[k]);
            }
        }
        if (!rc && !by_attr) rc = jctx_error(c, n, "map requires a filter argument");
    }
    for (size_t i = 0; i < items->n && !rc; i++) {
        jv r;
        if (by_attr) {
            rc = attr_path(c, n, items->items[i], attribute, &r);
            if (!rc && r.kind == JV_UNDEFINED && has_default) {
                jv_release(r);
                r = jv_retain(deflt);
            }
        } else {
            rc = call_filter_named(c, n, a->pos[0], items->items[i], a->pos + 1, a->npos - 1, a->kwnames, a->kw,
                                   a->nkw, &r);
        }
        if (!rc && jlist_push(res, r)) rc = locate(c, n);
    }
    jv_release(jv_list(items));
    if (rc) {
        jv_release(jv_list(res));
        return -1;
    }
    *out = jv_list(res);
    return 0;
}

/* groupby(attribute): items sorted by the attribute, then runs of equal keys as
 * (grouper, list) tuples; the grouper keeps the case of the run's first item. */
static int do_groupby(jctx *c, const jnode *n, jv v, jv attribute, jv deflt, bool cs, jv *out) {
    jlist *items;
    if (jctx_to_list(c, n, v, &items)) return -1;
    size_t cnt = items->n;
    jv *keys = calloc(cnt + 1, sizeof *keys), *vals = calloc(cnt + 1, sizeof *vals);
    jv *tk = calloc(cnt + 1, sizeof *tk), *tv = calloc(cnt + 1, sizeof *tv);
    jlist *res = NULL;
    int rc = keys && vals && tk && tv ? 0 : jctx_error(c, n, "out of memory");
    size_t made = 0;
    for (; !rc && made < cnt; made++) {
        jv k;
        if (attr_path(c, n, items->items[made], attribute, &k)) {
            rc = -1;
            break;
        }
        if (k.kind == JV_UNDEFINED && deflt.kind != JV_UNDEFINED) {
            jv_release(k);
            k = jv_retain(deflt);
        }
        keys[made] = fold_case(k, cs);
        jv_release(k);
        vals[made] = jv_retain(items->items[made]);
    }
    if (!rc && cnt > 1)
        for (size_t i = 0; i < cnt && !rc; i++)
            if (keys[i].kind == JV_UNDEFINED) rc = jctx_undefined_error(c, n, keys[i]);
    if (!rc && merge_sort(keys, vals, cnt, false, tk, tv)) rc = locate(c, n);
    if (!rc && !(res = jlist_new(0))) rc = locate(c, n);
    for (size_t i = 0; !rc && i < cnt;) {
        size_t j = i + 1;
        while (j < cnt && jv_equal(keys[i], keys[j])) j++;
        jlist *group = jlist_new(j - i), *pair = jlist_new(2);
        jv grouper;
        if (!group || !pair || attr_path(c, n, vals[i], attribute, &grouper)) {
            if (group) jv_release(jv_list(group));
            if (pair) jv_release(jv_list(pair));
            rc = -1;
            break;
        }
        if (grouper.kind == JV_UNDEFINED && deflt.kind != JV_UNDEFINED) {
            jv_release(grouper);
            grouper = jv_retain(deflt);
        }
        for (size_t k = i; k < j; k++) jlist_push(group, jv_retain(vals[k]));
        pair->is_tuple = true;
        pair->view = JL_GROUP;
        jlist_push(pair, grouper);
        jlist_push(pair, jv_list(group));
        if (jlist_push(res, jv_list(pair))) rc = locate(c, n);
        i = j;
    }
    for (size_t i = 0; i < made; i++) {
        jv_release(keys[i]);
        jv_release(vals[i]);
    }
    free(keys);
    free(vals);
    free(tk);
    free(tv);
    jv_release(jv_list(items));
    if (rc) {
        if (res) jv_release(jv_list(res));
        return -1;
    }
    *out = jv_list(res);
    return 0;
}

static jstr *html_escape(const jstr *s) {
    jbuf b = {0};
    for (size_t i = 0; i < s->len; i++) {
        const char *r = NULL;
        switch (s->data[i]) {
        case '&': r = "&amp;"; break;
        case '<': r = "&lt;"; break;
        case '>': r = "&gt;"; break;
        case '"': r = "&#34;"; break;
        case '\'': r = "&#39;"; break;
        }
        if (r ? jbuf_put(&b, r, strlen(r)) : jbuf_putc(&b, s->data[i])) {
            jbuf_free(&b);
            return NULL;
        }
    }
    return jbuf_to_str(&b);
}

static int do_indent(jctx *c, const jnode *n, jv v, jargs *a, jv *out) {
    BIND("indent", {"width", true}, {"first", true}, {"blank", true});
    jstr *ind = NULL;
    if (has[0] && arg[0].kind == JV_STR) {
        ind = jstr_retain(arg[0].u.s);
    } else {
        int64_t w = 4;
        if (has[0] && !want_int(c, n, arg[0], "width", &w)) return -1;
        if (w < 0) w = 0;
        if ((uint64_t)w > c->lim.max_output) return jctx_error(c, n, "indent width too large");
        ind = jstr_alloc((size_t)w);
        if (!ind) return locate(c, n);
        memset(ind->data, ' ', (size_t)w);
        ind->ascii = true;
    }
    bool first = has[1] && jv_truthy(arg[1]), blank = has[2] && jv_truthy(arg[2]);
    jstr *s0 = jv_to_str(v);
    jbuf tmp = {0};
    /* s += "\n" then splitlines(), as jinja2 does */
    if (!s0 || jbuf_put(&tmp, s0->data, s0->len) || jbuf_putc(&tmp, '\n')) {
        jstr_release(s0);
        jstr_release(ind);
        jbuf_free(&tmp);
        return locate(c, n);
    }
    jstr_release(s0);
    jstr *s = jbuf_to_str(&tmp);
    jlist *lines = s ? splitlines(s, false) : NULL;
    jstr_release(s);
    if (!lines) {
        jstr_release(ind);
        return locate(c, n);
    }
    jbuf b = {.max = c->lim.max_output};
    int rc = 0;
    if (first) rc = jbuf_put(&b, ind->data, ind->len);
    for (size_t i = 0; i < lines->n && !rc; i++) {
        const jstr *line = lines->items[i].u.s;
        if (i) {
            rc = jbuf_putc(&b, '\n');
            if (!rc && (blank || line->len)) rc = jbuf_put(&b, ind->data, ind->len);
        }
        if (!rc) rc = jbuf_put(&b, line->data, line->len);
    }
    jv_release(jv_list(lines));
    jstr_release(ind);
    if (rc) {
        jbuf_free(&b);
        return locate(c, n);
    }
    *out = str_or_fail(jbuf_to_str(&b));
    return out->kind == JV_STR ? 0 : locate(c, n);
}

static int len_of(jctx *c, const jnode *n, jv v, int64_t *out) {
    switch (v.kind) {
    case JV_UNDEFINED: *out = 0; return 0;
    case JV_STR: *out = (int64_t)jstr_cplen(v.u.s); return 0;
    case JV_LIST: *out = (int64_t)v.u.l->n; return 0;
    case JV_DICT: *out = (int64_t)v.u.d->n; return 0;
    case JV_LOOP: *out = v.u.loop->length; return 0;
    default: return jctx_error(c, n, "object of type '%s' has no len()", jv_type_name(v));
    }
}

int jinja_filter(jctx *c, const jnode *n, const char *name, jv v, jargs *a, jv *out, bool *unknown) {
    *unknown = false;
    const char *f = name;
    if (!strcmp(f, "tojson")) return do_tojson(c, n, v, a, out);
    if (!strcmp(f, "trim")) {
        BIND(f, {"chars", true});
        jstr *s = jv_to_str(v);
        if (!s) return locate(c, n);
        if (has[0] && arg[0].kind != JV_NONE && arg[0].kind != JV_STR) {
            jstr_release(s);
            return jctx_error(c, n, "strip arg must be None or str");
        }
        *out = str_or_fail(strip_str(s, arg[0].kind == JV_STR ? arg[0].u.s : NULL, 3));
        jstr_release(s);
        return out->kind == JV_STR ? 0 : locate(c, n);
    }
    if (!strcmp(f, "length") || !strcmp(f, "count")) {
        NOARGS(f);
        int64_t len = 0;
        if (len_of(c, n, v, &len)) return -1;
        *out = jv_int(len);
        return 0;
    }
    if (!strcmp(f, "default") || !strcmp(f, "d")) {
        BIND(f, {"default_value", true}, {"boolean", true});
        bool use = v.kind == JV_UNDEFINED || (has[1] && jv_truthy(arg[1]) && !jv_truthy(v));
        *out = use ? (has[0] ? jv_retain(arg[0]) : jv_cstr("")) : jv_retain(v);
        return out->kind == JV_UNDEFINED && use && !has[0] ? locate(c, n) : 0;
    }
    if (!strcmp(f, "join")) {
        BIND(f, {"d", true}, {"attribute", true});
        jstr *sep = has[0] ? jv_to_str(arg[0]) : jstr_cstr("");
        if (!sep) return locate(c, n);
        jlist *items;
        if (jctx_to_list(c, n, v, &items)) {
            jstr_release(sep);
            return -1;
        }
        jbuf b = {.max = c->lim.max_output};
        int rc = 0;
        for (size_t i = 0; i < items->n && !rc; i++) {
            jv x;
            if (has[1] && arg[1].kind != JV_NONE) {
                if (attr_path(c, n, items->items[i], arg[1], &x)) {
                    rc = -1;
                    break;
                }
            } else {
                x = jv_retain(items->items[i]);
            }
            if ((i && jbuf_put(&b, sep->data, sep->len)) || jv_write_str(&b, x)) rc = locate(c, n);
            jv_release(x);
        }
        jv_release(jv_list(items));
        jstr_release(sep);
        if (rc) {
            jbuf_free(&b);
            return -1;
        }
        *out = str_or_fail(jbuf_to_str(&b));
        return out->kind == JV_STR ? 0 : locate(c, n);
    }
    if (!strcmp(f, "upper") || !strcmp(f, "lower") || !strcmp(f, "capitalize") || !strcmp(f, "title")) {
        NOARGS(f);
        jstr *s = jv_to_str(v);
        if (!s) return locate(c, n);
        jstr *r = f[0] == 'u' ? case_str(s, CASE_UPPER) : f[0] == 'l' ? case_str(s, CASE_LOWER)
                : f[0] == 'c' ? case_str(s, CASE_CAPITALIZE) : jinja_title(s);
        jstr_release(s);
        *out = str_or_fail(r);
        return r ? 0 : locate(c, n);
    }
    if (!strcmp(f, "items")) {
        NOARGS(f);
        if (v.kind == JV_UNDEFINED) {
            jlist *l = jlist_new(0);
            if (!l) return locate(c, n);
            *out = jv_list(l);
            return 0;
        }
        if (v.kind != JV_DICT) return jctx_error(c, n, "Can only get item pairs from a mapping.");
        jargs none = {0};
        return jinja_call_method(c, n, v, M_ITEMS, &none, out);
    }
    if (!strcmp(f, "list")) {
        NOARGS(f);
        jlist *l;
        if (jctx_to_list(c, n, v, &l)) return -1;
        if (v.kind == JV_LIST) {
            /* list() makes a new list, never a tuple */
            jlist *copy = jlist_new(l->n);
            if (!copy) {
                jv_release(jv_list(l));
                return locate(c, n);
            }
            for (size_t i = 0; i < l->n; i++) jlist_push(copy, jv_retain(l->items[i]));
            jv_release(jv_list(l));
            l = copy;
        }
        *out = jv_list(l);
        return 0;
    }
    if (!strcmp(f, "first") || !strcmp(f, "last")) {
        NOARGS(f);
        jlist *l;
        if (jctx_to_list(c, n, v, &l)) return -1;
        if (!l->n) *out = jv_undef_msg(jstr_cstr(f[0] == 'f' ? "No first item, sequence was empty."
                                                              : "No last item, sequence was empty."));
        else *out = jv_retain(l->items[f[0] == 'f' ? 0 : l->n - 1]);
        jv_release(jv_list(l));
        return 0;
    }
    if (!strcmp(f, "reverse")) {
        NOARGS(f);
        if (v.kind == JV_STR) {
            size_t cnt;
            uint32_t *cp = cps_of(v.u.s, &cnt);
            if (!cp) return locate(c, n);
            for (size_t i = 0; i < cnt / 2; i++) {
                uint32_t t = cp[i];
                cp[i] = cp[cnt - 1 - i];
                cp[cnt - 1 - i] = t;
            }
            *out = str_or_fail(str_of_cps(cp, cnt));
            free(cp);
            return out->kind == JV_STR ? 0 : locate(c, n);
        }
        jlist *l;
        if (jctx_to_list(c, n, v, &l)) return jctx_error(c, n, "argument must be iterable");
        jlist *r = jlist_new(l->n);
        if (!r) {
            jv_release(jv_list(l));
            return locate(c, n);
        }
        for (size_t i = l->n; i-- > 0;) jlist_push(r, jv_retain(l->items[i]));
        jv_release(jv_list(l));
        *out = jv_list(r);
        return 0;
    }
    if (!strcmp(f, "replace")) {
        BIND(f, {"old", false}, {"new", false}, {"count", true});
        int64_t count = -1;
        if (has[2] && arg[2].kind != JV_NONE && !want_int(c, n, arg[2], "count", &count)) return -1;
        jstr *s = jv_to_str(v), *o = jv_to_str(arg[0]), *nw = jv_to_str(arg[1]);
        jstr *r = s && o && nw ? replace_str(s, o, nw, count) : NULL;
        jstr_release(s);
        jstr_release(o);
        jstr_release(nw);
        *out = str_or_fail(r);
        return r ? 0 : locate(c, n);
    }
    if (!strcmp(f, "string")) {
        NOARGS(f);
        *out = str_or_fail(jv_to_str(v));
        return out->kind == JV_STR ? 0 : locate(c, n);
    }
    if (!strcmp(f, "safe")) {
        NOARGS(f);
        *out = jv_retain(v);
        return 0;
    }
    if (!strcmp(f, "e") || !strcmp(f, "escape") || !strcmp(f, "forceescape")) {
        NOARGS(f);
        jstr *s = jv_to_str(v);
        jstr *r = s ? html_escape(s) : NULL;
        jstr_release(s);
        *out = str_or_fail(r);
        return r ? 0 : locate(c, n);
    }
    if (!strcmp(f, "int")) {
        BIND(f, {"default", true}, {"base", true});
        int64_t base = 10;
        if (has[1] && !want_int(c, n, arg[1], "base", &base)) return -1;
        int64_t iv;
        double fv;
        if (v.kind == JV_STR && parse_py_int(v.u.s, base, &iv)) *out = jv_int(iv);
        else if (is_intlike(v)) *out = jv_int(as_int(v));
        else if (v.kind == JV_FLOAT && isfinite(v.u.f) && fabs(v.u.f) < 9.2e18) *out = jv_int((int64_t)v.u.f);
        else if (v.kind == JV_STR && parse_py_float(v.u.s, &fv) && isfinite(fv) && fabs(fv) < 9.2e18)
            *out = jv_int((int64_t)fv);
        else *out = has[0] ? jv_retain(arg[0]) : jv_int(0);
        return 0;
    }
    if (!strcmp(f, "float")) {
        BIND(f, {"default", true});
        double fv;
        if (is_number(v)) *out = jv_float(as_float(v));
        else if (v.kind == JV_STR && parse_py_float(v.u.s, &fv)) *out = jv_float(fv);
        else *out = has[0] ? jv_retain(arg[0]) : jv_float(0.0);
        return 0;
    }
    if (!strcmp(f, "abs")) {
        NOARGS(f);
        if (v.kind == JV_UNDEFINED) return jctx_undefined_error(c, n, v);
        if (is_intlike(v)) {
            if (as_int(v) == INT64_MIN) return jctx_error(c, n, "integer overflow");
            *out = jv_int(as_int(v) < 0 ? -as_int(v) : as_int(v));
        } else if (v.kind == JV_FLOAT) {
            *out = jv_float(fabs(v.u.f));
        } else {
            return jctx_error(c, n, "bad operand type for abs(): '%s'", jv_type_name(v));
        }
        return 0;
    }
    if (!strcmp(f, "round")) {
        BIND(f, {"precision", true}, {"method", true});
        int64_t prec = 0;
        if (has[0] && !want_int(c, n, arg[0], "precision", &prec)) return -1;
        const char *method = has[1] && arg[1].kind == JV_STR ? arg[1].u.s->data : "common";
        if (v.kind == JV_UNDEFINED) return jctx_undefined_error(c, n, v);
        if (!is_number(v)) return jctx_error(c, n, "type %s doesn't define __round__ method", jv_type_name(v));
        if (strcmp(method, "common") && strcmp(method, "ceil") && strcmp(method, "floor"))
            return jctx_error(c, n, "method must be common, ceil or floor");
        if (!strcmp(method, "common")) {
            if (is_intlike(v) && prec >= 0) {
                *out = jv_int(as_int(v));
            } else if (is_intlike(v)) {
                /* int.__round__ with negative digits: to a multiple of 10**-prec, ties to even */
                int64_t x = as_int(v), m = 1;
                for (int64_t k = 0; k < -prec && m <= INT64_MAX / 10; k++) m *= 10;
                int64_t q = x / m, r = x % m;
                if (r < 0) {
                    q--;
                    r += m;
                }
                if (2 * r > m || (2 * r == m && (q & 1))) q++;
                if (__builtin_mul_overflow(q, m, &x)) return jctx_error(c, n, "integer overflow");
                *out = jv_int(x);
            } else {
                *out = jv_float(py_round(as_float(v), prec));
            }
        } else {
            double p = pow(10.0, (double)prec), x = as_float(v) * p;
            *out = jv_float((method[0] == 'c' ? ceil(x) : floor(x)) / p);
        }
        return 0;
    }
    if (!strcmp(f, "center")) {
        BIND(f, {"width", true});
        jstr *s = jv_to_str(v);
        if (!s) return locate(c, n);
        int r = pad_str(c, n, s, has[0] ? arg[0] : jv_int(80), jv_undef(), 0, out);
        jstr_release(s);
        return r;
    }
    if (!strcmp(f, "indent")) return do_indent(c, n, v, a, out);
    if (!strcmp(f, "wordcount")) {
        NOARGS(f);
        jstr *s = jv_to_str(v);
        if (!s) return locate(c, n);
        size_t cnt;
        uint32_t *cp = cps_of(s, &cnt);
        jstr_release(s);
        if (!cp) return locate(c, n);
        int64_t words = 0;
        for (size_t i = 0; i < cnt; i++)
            if (cp_word(cp[i]) && (i == 0 || !cp_word(cp[i - 1]))) words++;
        free(cp);
        *out = jv_int(words);
        return 0;
    }
    if (!strcmp(f, "format")) {
        if (a->npos && a->nkw) return jctx_error(c, n, "can't handle positional and keyword arguments at the same time");
        jstr *s = jv_to_str(v);
        if (!s) return locate(c, n);
        jv args;
        if (a->nkw) {
            jdict *d = jdict_new();
            if (!d) {
                jstr_release(s);
                return locate(c, n);
            }
            for (size_t i = 0; i < a->nkw; i++) jdict_set_str(d, a->kwnames[i], jv_retain(a->kw[i]));
            args = dict_value(d);
        } else {
            jlist *l = jlist_new(a->npos);
            if (!l) {
                jstr_release(s);
                return locate(c, n);
            }
            l->is_tuple = true;
            for (size_t i = 0; i < a->npos; i++) jlist_push(l, jv_retain(a->pos[i]));
            args = jv_list(l);
        }
        int r = jinja_percent_format(c, n, jv_str(s), args, out);
        jv_release(args);
        jstr_release(s);
        return r;
    }
    if (!strcmp(f, "sort")) {
        BIND(f, {"reverse", true}, {"case_sensitive", true}, {"attribute", true});
        return do_sort_like(c, n, v, arg[2], has[1] && jv_truthy(arg[1]), has[0] && jv_truthy(arg[0]), out);
    }
    if (!strcmp(f, "dictsort")) {
        BIND(f, {"case_sensitive", true}, {"by", true}, {"reverse", true});
        if (v.kind == JV_UNDEFINED) return jctx_undefined_error(c, n, v);
        if (v.kind != JV_DICT) return jctx_error(c, n, "'%s' object has no attribute 'items'", jv_type_name(v));
        int pos = 0;
        if (has[1] && arg[1].kind == JV_STR && !strcmp(arg[1].u.s->data, "value")) pos = 1;
        else if (has[1] && !(arg[1].kind == JV_STR && !strcmp(arg[1].u.s->data, "key")))
            return jctx_error(c, n, "You can only sort by either \"key\" or \"value\"");
        jargs none = {0};
        jv items;
        if (jinja_call_method(c, n, v, M_ITEMS, &none, &items)) return -1;
        jlist *sorted;
        int r = sort_items(c, n, items.u.l, jv_undef(), pos, has[0] && jv_truthy(arg[0]),
                           has[2] && jv_truthy(arg[2]), &sorted);
        jv_release(items);
        if (r) return -1;
        *out = jv_list(sorted);
        return 0;
    }
    if (!strcmp(f, "unique")) {
        BIND(f, {"case_sensitive", true}, {"attribute", true});
        bool cs = has[0] && jv_truthy(arg[0]);
        jlist *items;
        if (jctx_to_list(c, n, v, &items)) return -1;
        jlist *res = jlist_new(0), *seen = jlist_new(0);
        int rc = res && seen ? 0 : locate(c, n);
        for (size_t i = 0; i < items->n && !rc; i++) {
            jv k;
            if (has[1] && arg[1].kind != JV_NONE) {
                if (attr_path(c, n, items->items[i], arg[1], &k)) {
                    rc = -1;
                    break;
                }
            } else {
                k = jv_retain(items->items[i]);
            }
            jv key = fold_case(k, cs);
            jv_release(k);
            if ((key.kind == JV_LIST && !key.u.l->is_tuple) || key.kind == JV_DICT) {
                rc = jctx_error(c, n, "unhashable type: '%s'", jv_type_name(key));
                jv_release(key);
                break;
            }
            bool dup = false;
            for (size_t s = 0; s < seen->n && !dup; s++) dup = jv_equal(seen->items[s], key);
            if (dup) {
                jv_release(key);
                continue;
            }
            if (jlist_push(seen, key) || jlist_push(res, jv_retain(items->items[i]))) rc = locate(c, n);
        }
        jv_release(jv_list(items));
        if (seen) jv_release(jv_list(seen));
        if (rc) {
            if (res) jv_release(jv_list(res));
            return -1;
        }
        *out = jv_list(res);
        return 0;
    }
    if (!strcmp(f, "min") || !strcmp(f, "max")) {
        BIND(f, {"case_sensitive", true}, {"attribute", true});
        jlist *items;
        if (jctx_to_list(c, n, v, &items)) return -1;
        if (!items->n) {
            jv_release(jv_list(items));
            *out = jv_undef_msg(jstr_cstr("No aggregated item, sequence was empty."));
            return 0;
        }
        /* the first best item wins, as with Python's min() and max() */
        bool cs = has[0] && jv_truthy(arg[0]), is_max = f[1] == 'a';
        size_t best = 0;
        jv best_key;
        int rc = sort_key(c, n, items->items[0], has[1] ? arg[1] : jv_undef(), -1, cs, &best_key);
        for (size_t i = 1; i < items->n && !rc; i++) {
            jv k;
            if (sort_key(c, n, items->items[i], has[1] ? arg[1] : jv_undef(), -1, cs, &k)) {
                rc = -1;
                break;
            }
            int r;
            if (k.kind == JV_UNDEFINED || best_key.kind == JV_UNDEFINED) {
                rc = jctx_undefined_error(c, n, k.kind == JV_UNDEFINED ? k : best_key);
            } else if (jv_compare(k, best_key, is_max ? ">" : "<", &r) < 0) {
                rc = locate(c, n);
            } else if (is_max ? r > 0 : r < 0) {
                jv_release(best_key);
                best_key = k;
                k = jv_none();
                best = i;
            }
            jv_release(k);
        }
        if (!rc) {
            jv_release(best_key);
            *out = jv_retain(items->items[best]);
        } else if (best_key.kind != JV_UNDEFINED || best_key.u.s) {
            jv_release(best_key);
        }
        jv_release(jv_list(items));
        return rc;
    }
    if (!strcmp(f, "sum")) {
        BIND(f, {"attribute", true}, {"start", true});
        jlist *items;
        if (jctx_to_list(c, n, v, &items)) return -1;
        jv acc = has[1] ? jv_retain(arg[1]) : jv_int(0);
        int rc = 0;
        for (size_t i = 0; i < items->n && !rc; i++) {
            jv x;
            if (has[0] && arg[0].kind != JV_NONE) {
                if (attr_path(c, n, items->items[i], arg[0], &x)) {
                    rc = -1;
                    break;
                }
            } else {
                x = jv_retain(items->items[i]);
            }
            if (!is_number(acc) || !is_number(x)) {
                rc = jctx_error(c, n, "unsupported operand type(s) for +: '%s' and '%s'", jv_type_name(acc),
                                jv_type_name(x));
            } else if (is_intlike(acc) && is_intlike(x)) {
                int64_t s;
                if (__builtin_add_overflow(as_int(acc), as_int(x), &s)) rc = jctx_error(c, n, "integer overflow");
                else acc = jv_int(s);
            } else {
                acc = jv_float(as_float(acc) + as_float(x));
            }
            jv_release(x);
        }
        jv_release(jv_list(items));
        if (rc) {
            jv_release(acc);
            return -1;
        }
        *out = acc;
        return 0;
    }
    if (!strcmp(f, "groupby")) {
        BIND(f, {"attribute", false}, {"default", true}, {"case_sensitive", true});
        return do_groupby(c, n, v, arg[0], has[1] ? arg[1] : jv_undef(), has[2] && jv_truthy(arg[2]), out);
    }
    if (!strcmp(f, "map")) return do_map(c, n, v, a, out);
    if (!strcmp(f, "select")) return do_select(c, n, f, v, a, false, true, out);
    if (!strcmp(f, "reject")) return do_select(c, n, f, v, a, false, false, out);
    if (!strcmp(f, "selectattr")) return do_select(c, n, f, v, a, true, true, out);
    if (!strcmp(f, "rejectattr")) return do_select(c, n, f, v, a, true, false, out);
    if (!strcmp(f, "attr")) {
        BIND(f, {"name", false});
        if (v.kind == JV_UNDEFINED) return jctx_undefined_error(c, n, v);
        if (!want_str(c, n, arg[0], "attribute name")) return -1;
        /* getattr only: dict keys are not attributes */
        if (v.kind == JV_DICT) {
            bool unsafe;
            if (jinja_method_id(v, arg[0].u.s->data, &unsafe) < 0) {
                *out = jv_undef_msg(jstr_cstr("no such attribute"));
                return 0;
            }
        }
        return jctx_getattr(c, n, v, arg[0].u.s->data, out);
    }
    if (!strcmp(f, "batch")) {
        BIND(f, {"linecount", false}, {"fill_with", true});
        int64_t cnt;
        if (!want_int(c, n, arg[0], "linecount", &cnt)) return -1;
        if (cnt <= 0) return jctx_error(c, n, "linecount must be positive");
        jlist *items;
        if (jctx_to_list(c, n, v, &items)) return -1;
        jlist *res = jlist_new(0);
        jlist *cur = NULL;
        int rc = res ? 0 : locate(c, n);
        for (size_t i = 0; i < items->n && !rc; i++) {
            if (!cur && !(cur = jlist_new((size_t)cnt))) rc = locate(c, n);
            if (!rc) jlist_push(cur, jv_retain(items->items[i]));
            if (!rc && cur->n == (size_t)cnt) {
                rc = jlist_push(res, jv_list(cur)) ? locate(c, n) : 0;
                cur = NULL;
            }
        }
        if (!rc && cur) {
            if (has[1] && arg[1].kind != JV_NONE)
                while (cur->n < (size_t)cnt) jlist_push(cur, jv_retain(arg[1]));
            rc = jlist_push(res, jv_list(cur)) ? locate(c, n) : 0;
            cur = NULL;
        }
        if (cur) jv_release(jv_list(cur));
        jv_release(jv_list(items));
        if (rc) {
            if (res) jv_release(jv_list(res));
            return -1;
        }
        *out = jv_list(res);
        return 0;
    }
    *unknown = true;
    return -1;
}
