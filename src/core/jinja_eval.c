/* The Jinja evaluator: walks the AST with jinja2's runtime semantics.
 *
 * Scoping follows what jinja2 3.x compiles to: every iteration of a for loop, every macro
 * call and every {% with %} runs in a fresh scope whose assignments vanish when it ends
 * (so a {% set %} in a loop body is not seen by the next iteration or after the loop, which
 * is why templates use namespace()); {% if %} opens no scope. A macro sees the scope it was
 * defined in as it is at call time.
 *
 * Undefined values behave as jinja2's default Undefined: falsy, print as '', iterate as
 * empty, compare equal only to another Undefined, and raise their message ("'x' is
 * undefined", "'dict object' has no attribute 'y'") when an attribute, item, call or
 * arithmetic is applied to them. */
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/jinja_internal.h"

/* ---- scopes ----------------------------------------------------------------------------- */

struct jscope {
    int32_t rc;
    jscope *parent;
    const jdict *globals; /* the render variables, on the root scope only */
    const char **names;   /* template-owned names */
    jv *vals;
    size_t n, cap;
};

static jscope *scope_new(jscope *parent) {
    jscope *s = calloc(1, sizeof *s);
    if (!s) {
        om_errorf("out of memory");
        return NULL;
    }
    s->rc = 1;
    s->parent = parent;
    if (parent) parent->rc++;
    return s;
}

static void scope_clear(jscope *s) {
    size_t n = s->n;
    s->n = 0;
    for (size_t i = 0; i < n; i++) jv_release(s->vals[i]);
}

void jscope_release(jscope *s) {
    while (s && --s->rc == 0) {
        jscope *parent = s->parent;
        scope_clear(s);
        free(s->names);
        free(s->vals);
        free(s);
        s = parent;
    }
}

/* Ends a scope: its variables go now (a macro defined in it may keep the shell alive, and
 * clearing is what breaks the macro -> scope -> macro reference cycle). */
static void scope_pop(jctx *c) {
    jscope *s = c->scope;
    c->scope = s->parent;
    scope_clear(s);
    jscope_release(s);
}

static int scope_set(jscope *s, const char *name, jv v) {
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name)) {
            jv_release(s->vals[i]);
            s->vals[i] = v;
            return 0;
        }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        const char **nn = realloc(s->names, cap * sizeof *nn);
        if (!nn) goto oom;
        s->names = nn;
        jv *vv = realloc(s->vals, cap * sizeof *vv);
        if (!vv) goto oom;
        s->vals = vv;
        s->cap = cap;
    }
    s->names[s->n] = name;
    s->vals[s->n] = v;
    s->n++;
    return 0;
oom:
    jv_release(v);
    return om_errorf("out of memory");
}

static const jv *scope_lookup(const jscope *s, const char *name) {
    for (; s; s = s->parent) {
        for (size_t i = s->n; i-- > 0;)
            if (!strcmp(s->names[i], name)) return &s->vals[i];
        if (s->globals) {
            const jv *g = jdict_get_str(s->globals, name, strlen(name));
            if (g) return g;
        }
    }
    return NULL;
}

/* ---- errors ----------------------------------------------------------------------------- */

int jctx_error(jctx *c, const jnode *n, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return om_errorf("%s %d:%d: %s", c->t->name, n->line, n->col, msg);
}

/* Adds the position to an error recorded by a lower layer. */
static int locate(jctx *c, const jnode *n) {
    if (c->raised) return -1;
    return om_error_prefix("%s %d:%d: ", c->t->name, n->line, n->col);
}

int jctx_undefined_error(jctx *c, const jnode *n, jv u) {
    if (u.kind == JV_UNDEFINED && u.u.s) return jctx_error(c, n, "%s", u.u.s->data);
    return jctx_error(c, n, "undefined value");
}

static jv undef_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static jv undef_fmt(const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return jv_undef_msg(jstr_cstr(msg));
}

/* repr() of a key for "has no attribute 'x'" messages. */
static jv undef_missing(jv obj, jv key) {
    jbuf b = {0};
    if (jv_write_repr(&b, key)) {
        jbuf_free(&b);
        return jv_undef();
    }
    jv u;
    if (key.kind == JV_STR)
        u = undef_fmt("'%s' has no attribute %s", jv_object_repr(obj), b.p ? b.p : "''");
    else
        u = undef_fmt("%s has no element %s", jv_object_repr(obj), b.p ? b.p : "");
    jbuf_free(&b);
    return u;
}

/* Loop iterations and macro calls share one budget: a macro that calls itself twice per
 * level could otherwise run for ever within the depth limit. */
static int check_iterations(jctx *c, const jnode *n) {
    if (++c->iterations > c->lim.max_iterations)
        return jctx_error(c, n, "too many loop iterations and macro calls (limit %llu)",
                          (unsigned long long)c->lim.max_iterations);
    return 0;
}

/* ---- attribute and item access ---------------------------------------------------------- */

static jv make_method(jv self, int id) {
    jfunc *f = calloc(1, sizeof *f);
    if (!f) {
        om_errorf("out of memory");
        return jv_undef();
    }
    f->rc = 1;
    f->kind = self.kind == JV_LOOP ? JF_LOOP_METHOD : JF_METHOD;
    f->id = id;
    f->name = jinja_method_name(id);
    f->self = jv_retain(self);
    jv v = {.kind = JV_FUNC};
    v.u.fn = f;
    return v;
}

/* The undefined that the immutable sandbox returns for a mutating method; calling it raises
 * jinja2's SecurityError message. */
static jv unsafe_attr(jv obj, const char *name) {
    return undef_fmt("access to attribute '%s' of '%s' object is unsafe.", name,
                     obj.kind == JV_DICT ? "dict" : "list");
}

int jctx_getattr(jctx *c, const jnode *n, jv obj, const char *name, jv *out) {
    if (obj.kind == JV_UNDEFINED) return jctx_undefined_error(c, n, obj);
    if (obj.kind == JV_LOOP) return jinja_loop_attr(c, n, obj.u.loop, name, out);
    bool unsafe = false;
    int id = jinja_method_id(obj, name, &unsafe);
    if (unsafe) {
        *out = unsafe_attr(obj, name);
        return 0;
    }
    if (id >= 0) {
        *out = make_method(obj, id);
        return out->kind == JV_FUNC ? 0 : locate(c, n);
    }
    if (obj.kind == JV_DICT || obj.kind == JV_NS) {
        jv *v = jdict_get_str(obj.u.d, name, strlen(name));
        if (v) {
            *out = jv_retain(*v);
            return 0;
        }
    }
    if (obj.kind == JV_LIST && obj.u.l->view == JL_GROUP && obj.u.l->n == 2 &&
        (!strcmp(name, "grouper") || !strcmp(name, "list"))) {
        *out = jv_retain(obj.u.l->items[name[0] == 'l']);
        return 0;
    }
    jv key = jv_cstr(name);
    if (key.kind != JV_STR) return locate(c, n);
    *out = undef_missing(obj, key);
    jv_release(key);
    return 0;
}

/* Python index for sequences: negative counts from the end; false when out of range. */
static bool seq_index(jv key, size_t len, size_t *idx) {
    int64_t i = key.kind == JV_BOOL ? key.u.b : key.u.i;
    if (i < 0) i += (int64_t)len;
    if (i < 0 || (uint64_t)i >= len) return false;
    *idx = (size_t)i;
    return true;
}

/* Byte offset of code point index i in s (i <= cplen). */
static size_t cp_offset(const jstr *s, size_t i) {
    if (s->ascii) return i;
    size_t pos = 0;
    while (i-- > 0 && pos < s->len) utf8_decode(s->data, s->len, &pos);
    return pos;
}

int jctx_getitem(jctx *c, const jnode *n, jv obj, jv key, jv *out) {
    if (obj.kind == JV_UNDEFINED) return jctx_undefined_error(c, n, obj);
    if (key.kind == JV_UNDEFINED && obj.kind != JV_DICT) return jctx_undefined_error(c, n, key);
    bool int_key = key.kind == JV_INT || key.kind == JV_BOOL;
    size_t idx;
    switch (obj.kind) {
    case JV_DICT: {
        jv *v = key.kind == JV_UNDEFINED ? NULL : jdict_get(obj.u.d, key);
        if (v) {
            *out = jv_retain(*v);
            return 0;
        }
        break;
    }
    case JV_LIST:
        if (int_key && !JL_IS_DICT_VIEW(obj.u.l) && seq_index(key, obj.u.l->n, &idx)) {
            *out = jv_retain(obj.u.l->items[idx]);
            return 0;
        }
        break;
    case JV_STR:
        if (int_key && seq_index(key, jstr_cplen(obj.u.s), &idx)) {
            size_t a = cp_offset(obj.u.s, idx), b = a;
            utf8_decode(obj.u.s->data, obj.u.s->len, &b);
            *out = jv_strn(obj.u.s->data + a, b - a);
            return out->kind == JV_STR ? 0 : locate(c, n);
        }
        break;
    default: break;
    }
    /* Not an item: jinja2 then tries the attribute of that name for string keys. */
    if (key.kind == JV_STR && obj.kind != JV_DICT)
        return jctx_getattr(c, n, obj, key.u.s->data, out);
    if (key.kind == JV_STR && obj.kind == JV_DICT) {
        bool unsafe = false;
        int id = jinja_method_id(obj, key.u.s->data, &unsafe);
        if (unsafe) {
            *out = unsafe_attr(obj, key.u.s->data);
            return 0;
        }
        if (id >= 0) {
            *out = make_method(obj, id);
            return out->kind == JV_FUNC ? 0 : locate(c, n);
        }
    }
    *out = undef_missing(obj, key);
    return 0;
}

int jctx_to_list(jctx *c, const jnode *n, jv v, jlist **out) {
    switch (v.kind) {
    case JV_UNDEFINED:
        *out = jlist_new(0);
        return *out ? 0 : locate(c, n);
    case JV_LIST:
        v.u.l->rc++;
        *out = v.u.l;
        return 0;
    case JV_DICT: {
        jlist *l = jlist_new(v.u.d->n);
        if (!l) return locate(c, n);
        for (size_t i = 0; i < v.u.d->n; i++) jlist_push(l, jv_retain(v.u.d->keys[i]));
        *out = l;
        return 0;
    }
    case JV_STR: {
        const jstr *s = v.u.s;
        jlist *l = jlist_new(jstr_cplen(s));
        if (!l) return locate(c, n);
        for (size_t pos = 0; pos < s->len;) {
            size_t a = pos;
            utf8_decode(s->data, s->len, &pos);
            jv ch = jv_strn(s->data + a, pos - a);
            if (ch.kind != JV_STR || jlist_push(l, ch)) {
                jv_release(jv_list(l));
                return locate(c, n);
            }
        }
        *out = l;
        return 0;
    }
    default:
        return jctx_error(c, n, "'%s' object is not iterable", jv_type_name(v));
    }
}

void jctx_track_namespace(jctx *c, jdict *d) {
    if (c->nns == c->capns) {
        size_t cap = c->capns ? c->capns * 2 : 8;
        jdict **p = realloc(c->namespaces, cap * sizeof *p);
        if (!p) return; /* only cycle-breaking is lost */
        c->namespaces = p;
        c->capns = cap;
    }
    d->rc++;
    c->namespaces[c->nns++] = d;
}

/* ---- expressions ------------------------------------------------------------------------ */

static int eval(jctx *c, const jnode *n, jv *out);
static int exec_body(jctx *c, jnode *const *items, size_t n);

static void args_free(jargs *a) {
    for (size_t i = 0; i < a->npos; i++) jv_release(a->pos[i]);
    for (size_t i = 0; i < a->nkw; i++) jv_release(a->kw[i]);
    free(a->pos);
    free(a->kw);
    memset(a, 0, sizeof *a);
}

/* Evaluates a node's call arguments (items and keywords); `first` is prepended (the value
 * a filter or test applies to is passed separately, so it is not used there). */
static int eval_args(jctx *c, const jnode *n, jargs *a) {
    memset(a, 0, sizeof *a);
    if (n->nitems) {
        a->pos = calloc(n->nitems, sizeof *a->pos);
        if (!a->pos) return om_errorf("out of memory");
    }
    if (n->nkw) {
        a->kw = calloc(n->nkw, sizeof *a->kw);
        if (!a->kw) {
            free(a->pos);
            return om_errorf("out of memory");
        }
    }
    a->kwnames = n->kwnames;
    for (size_t i = 0; i < n->nitems; i++) {
        if (eval(c, n->items[i], &a->pos[i])) {
            args_free(a);
            return -1;
        }
        a->npos++;
    }
    for (size_t i = 0; i < n->nkw; i++) {
        if (eval(c, n->kwvals[i], &a->kw[i])) {
            args_free(a);
            return -1;
        }
        a->nkw++;
    }
    return 0;
}

static int call_macro(jctx *c, const jnode *n, jfunc *fn, jargs *a, jv *out) {
    const jnode *m = fn->macro;
    if (c->depth >= c->lim.max_depth)
        return jctx_error(c, n, "maximum recursion depth exceeded (%d nested macro calls)", c->lim.max_depth);
    if (check_iterations(c, n)) return -1;
    bool catch_varargs = m->op & 1, catch_kwargs = m->op & 2;
    if (a->npos > m->nparams && !catch_varargs)
        return jctx_error(c, n, "macro '%s' takes not more than %zu argument(s)", m->name, m->nparams);
    jscope *s = scope_new(fn->closure);
    if (!s) return locate(c, n);
    jscope *saved_scope = c->scope;
    c->scope = s;
    jdict *kwargs = jdict_new();
    jlist *varargs = jlist_new(0);
    int rc = -1;
    bool *used = a->nkw ? calloc(a->nkw, sizeof *used) : NULL;
    if (!kwargs || !varargs || (a->nkw && !used)) {
        locate(c, n);
        goto done;
    }
    varargs->is_tuple = true;
    for (size_t i = 0; i < m->nparams; i++) {
        const char *p = m->params[i];
        jv v;
        bool have = false;
        if (i < a->npos) {
            v = jv_retain(a->pos[i]);
            have = true;
        }
        for (size_t k = 0; k < a->nkw; k++)
            if (!strcmp(a->kwnames[k], p)) {
                if (have) {
                    jv_release(v);
                    jctx_error(c, n, "macro '%s' got multiple values for argument '%s'", m->name, p);
                    goto done;
                }
                v = jv_retain(a->kw[k]);
                used[k] = true;
                have = true;
            }
        if (!have) {
            size_t first_default = m->nparams - m->nitems2;
            if (i >= first_default) {
                /* defaults are evaluated at call time, in the macro's scope */
                if (eval(c, m->items2[i - first_default], &v)) goto done;
            } else {
                v = undef_fmt("parameter '%s' was not provided", p);
            }
        }
        if (scope_set(s, p, v)) {
            locate(c, n);
            goto done;
        }
    }
    for (size_t i = m->nparams; i < a->npos; i++)
        if (jlist_push(varargs, jv_retain(a->pos[i]))) {
            locate(c, n);
            goto done;
        }
    for (size_t k = 0; k < a->nkw; k++) {
        if (used[k]) continue;
        if (!catch_kwargs) {
            jctx_error(c, n, "macro '%s' takes no keyword argument '%s'", m->name, a->kwnames[k]);
            goto done;
        }
        if (jdict_set_str(kwargs, a->kwnames[k], jv_retain(a->kw[k]))) {
            locate(c, n);
            goto done;
        }
    }
    jv kv = {.kind = JV_DICT};
    kv.u.d = kwargs;
    kwargs = NULL;
    jv vv = jv_list(varargs);
    varargs = NULL;
    if (scope_set(s, "varargs", vv) || scope_set(s, "kwargs", kv)) {
        locate(c, n);
        goto done;
    }
    jbuf *saved_out = c->out;
    jbuf buf = {.max = c->lim.max_output};
    c->out = &buf;
    c->depth++;
    int r = exec_body(c, m->items, m->nitems);
    c->depth--;
    c->out = saved_out;
    if (r < 0) {
        jbuf_free(&buf);
        goto done;
    }
    jstr *str = jbuf_to_str(&buf);
    if (!str) {
        locate(c, n);
        goto done;
    }
    *out = jv_str(str);
    rc = 0;
done:
    free(used);
    if (kwargs) {
        jv kv2 = {.kind = JV_DICT};
        kv2.u.d = kwargs;
        jv_release(kv2);
    }
    if (varargs) jv_release(jv_list(varargs));
    c->scope = saved_scope;
    scope_clear(s);
    jscope_release(s);
    return rc;
}

int jctx_call_value(jctx *c, const jnode *n, jv fn, jargs *a, jv *out) {
    if (fn.kind == JV_UNDEFINED) return jctx_undefined_error(c, n, fn);
    if (fn.kind != JV_FUNC) return jctx_error(c, n, "'%s' object is not callable", jv_type_name(fn));
    jfunc *f = fn.u.fn;
    switch (f->kind) {
    case JF_MACRO: return call_macro(c, n, f, a, out);
    case JF_BUILTIN: return jinja_call_builtin(c, n, f->id, a, out);
    case JF_METHOD: return jinja_call_method(c, n, f->self, f->id, a, out);
    case JF_LOOP_METHOD: return jinja_call_loop_method(c, n, f->self.u.loop, f->id, a, out);
    }
    return jctx_error(c, n, "not callable");
}

static const struct {
    const char *name;
    int id;
} BUILTINS[] = {
    {"range", BI_RANGE},           {"namespace", BI_NAMESPACE},   {"dict", BI_DICT},
    {"raise_exception", BI_RAISE}, {"strftime_now", BI_STRFTIME},
};

static int lookup_name(jctx *c, const jnode *n, const char *name, jv *out) {
    const jv *v = scope_lookup(c->scope, name);
    if (v) {
        *out = jv_retain(*v);
        return 0;
    }
    for (size_t i = 0; i < sizeof BUILTINS / sizeof BUILTINS[0]; i++)
        if (!strcmp(BUILTINS[i].name, name)) {
            jfunc *f = calloc(1, sizeof *f);
            if (!f) return locate(c, n);
            f->rc = 1;
            f->kind = JF_BUILTIN;
            f->id = BUILTINS[i].id;
            f->name = BUILTINS[i].name;
            f->self = jv_undef();
            out->kind = JV_FUNC;
            out->u.fn = f;
            return 0;
        }
    *out = undef_fmt("'%s' is undefined", name);
    return 0;
}

static int eval_call(jctx *c, const jnode *n, jv *out) {
    jv fn;
    const jnode *callee = n->a;
    if (callee->kind == N_GETATTR) {
        /* obj.method(...) without materializing a bound method */
        jv obj;
        if (eval(c, callee->a, &obj)) return -1;
        if (obj.kind == JV_UNDEFINED) {
            int r = jctx_undefined_error(c, callee, obj);
            jv_release(obj);
            return r;
        }
        bool unsafe = false;
        int id = obj.kind == JV_LOOP ? -1 : jinja_method_id(obj, callee->name, &unsafe);
        if (unsafe) {
            jv_release(obj);
            return jctx_error(c, callee, "access to attribute '%s' of '%s' object is unsafe.", callee->name,
                              obj.kind == JV_DICT ? "dict" : "list");
        }
        if (id >= 0) {
            jargs a;
            if (eval_args(c, n, &a)) {
                jv_release(obj);
                return -1;
            }
            int r = jinja_call_method(c, n, obj, id, &a, out);
            args_free(&a);
            jv_release(obj);
            return r;
        }
        int r = jctx_getattr(c, callee, obj, callee->name, &fn);
        jv_release(obj);
        if (r) return -1;
    } else if (eval(c, callee, &fn)) {
        return -1;
    }
    if (fn.kind != JV_FUNC) {
        int r = fn.kind == JV_UNDEFINED ? jctx_undefined_error(c, n, fn)
                                        : jctx_error(c, n, "'%s' object is not callable", jv_type_name(fn));
        jv_release(fn);
        return r;
    }
    jargs a;
    if (eval_args(c, n, &a)) {
        jv_release(fn);
        return -1;
    }
    int r = jctx_call_value(c, n, fn, &a, out);
    args_free(&a);
    jv_release(fn);
    return r;
}

/* Python slicing on lists, tuples and strings (by code point). */
static int eval_slice(jctx *c, const jnode *n, jv obj, const jnode *sl, jv *out) {
    int64_t bound[3] = {0, 0, 1};
    bool given[3] = {false, false, false};
    const jnode *parts[3] = {sl->a, sl->b, sl->c};
    for (int i = 0; i < 3; i++) {
        if (!parts[i]) continue;
        jv v;
        if (eval(c, parts[i], &v)) return -1;
        if (v.kind == JV_NONE) {
            continue;
        } else if (v.kind == JV_INT || v.kind == JV_BOOL) {
            bound[i] = v.kind == JV_INT ? v.u.i : v.u.b;
            given[i] = true;
        } else if (v.kind == JV_UNDEFINED) {
            int r = jctx_undefined_error(c, parts[i], v);
            jv_release(v);
            return r;
        } else {
            jv_release(v);
            return jctx_error(c, parts[i], "slice indices must be integers or None");
        }
    }
    if (obj.kind == JV_UNDEFINED) return jctx_undefined_error(c, n, obj);
    if ((obj.kind != JV_LIST || JL_IS_DICT_VIEW(obj.u.l)) && obj.kind != JV_STR) {
        *out = undef_fmt("%s has no element slice", jv_object_repr(obj));
        return 0;
    }
    int64_t step = given[2] ? bound[2] : 1;
    if (step == 0) return jctx_error(c, n, "slice step cannot be zero");
    int64_t len = obj.kind == JV_LIST ? (int64_t)obj.u.l->n : (int64_t)jstr_cplen(obj.u.s);
    int64_t lower = step > 0 ? 0 : -1, upper = step > 0 ? len : len - 1;
    int64_t start, stop;
    if (!given[0]) {
        start = step < 0 ? upper : lower;
    } else {
        start = bound[0] < 0 ? bound[0] + len : bound[0];
        if (start < lower) start = lower;
        if (start > upper) start = upper;
    }
    if (!given[1]) {
        stop = step < 0 ? lower : upper;
    } else {
        stop = bound[1] < 0 ? bound[1] + len : bound[1];
        if (stop < lower) stop = lower;
        if (stop > upper) stop = upper;
    }
    if (obj.kind == JV_LIST) {
        jlist *l = jlist_new(0);
        if (!l) return locate(c, n);
        l->is_tuple = obj.u.l->is_tuple;
        for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
            if (jlist_push(l, jv_retain(obj.u.l->items[i]))) {
                jv_release(jv_list(l));
                return locate(c, n);
            }
            if (__builtin_add_overflow(i, step, &i)) break;
        }
        *out = jv_list(l);
        return 0;
    }
    const jstr *s = obj.u.s;
    size_t *off = NULL;
    if (!s->ascii) {
        off = malloc(((size_t)len + 1) * sizeof *off);
        if (!off) return jctx_error(c, n, "out of memory");
        size_t pos = 0;
        for (int64_t i = 0; i < len; i++) {
            off[i] = pos;
            utf8_decode(s->data, s->len, &pos);
        }
        off[len] = s->len;
    }
    jbuf b = {.max = c->lim.max_output};
    int rc = 0;
    for (int64_t i = start; !rc && (step > 0 ? i < stop : i > stop);) {
        if (off) rc = jbuf_put(&b, s->data + off[i], off[i + 1] - off[i]);
        else rc = jbuf_putc(&b, s->data[i]);
        if (__builtin_add_overflow(i, step, &i)) break;
    }
    free(off);
    if (rc) {
        jbuf_free(&b);
        return locate(c, n);
    }
    jstr *r = jbuf_to_str(&b);
    if (!r) return locate(c, n);
    *out = jv_str(r);
    return 0;
}

static bool num(jv v) { return v.kind == JV_INT || v.kind == JV_FLOAT || v.kind == JV_BOOL; }
static bool intlike(jv v) { return v.kind == JV_INT || v.kind == JV_BOOL; }
static int64_t ival(jv v) { return v.kind == JV_INT ? v.u.i : (int64_t)v.u.b; }
static double fval(jv v) { return v.kind == JV_FLOAT ? v.u.f : (double)ival(v); }

static const char *OPSYM[] = {"+", "-", "*", "/", "//", "%", "**"};

static int unsupported_operands(jctx *c, const jnode *n, int op, jv a, jv b) {
    return jctx_error(c, n, "unsupported operand type(s) for %s: '%s' and '%s'", OPSYM[op],
                      jv_type_name(a), jv_type_name(b));
}

static int repeat(jctx *c, const jnode *n, jv seq, int64_t times, jv *out) {
    if (times < 0) times = 0;
    if (seq.kind == JV_STR) {
        size_t len = seq.u.s->len;
        if (len && (uint64_t)times > c->lim.max_output / len)
            return jctx_error(c, n, "string repetition exceeds the limit of %zu bytes", c->lim.max_output);
        jstr *r = jstr_alloc(len * (size_t)times);
        if (!r) return locate(c, n);
        for (int64_t i = 0; i < times; i++) memcpy(r->data + (size_t)i * len, seq.u.s->data, len);
        r->ascii = seq.u.s->ascii;
        *out = jv_str(r);
        return 0;
    }
    size_t len = seq.u.l->n;
    if (len && (uint64_t)times > (uint64_t)(c->lim.max_output / 8) / len)
        return jctx_error(c, n, "list repetition too large");
    jlist *l = jlist_new(len * (size_t)times);
    if (!l) return locate(c, n);
    l->is_tuple = seq.u.l->is_tuple;
    for (int64_t i = 0; i < times; i++)
        for (size_t k = 0; k < len; k++) jlist_push(l, jv_retain(seq.u.l->items[k]));
    *out = jv_list(l);
    return 0;
}

static int arith(jctx *c, const jnode *n, int op, jv a, jv b, jv *out) {
    if (a.kind == JV_UNDEFINED) return jctx_undefined_error(c, n, a);
    if (b.kind == JV_UNDEFINED) return jctx_undefined_error(c, n, b);
    if (num(a) && num(b)) {
        bool both_int = intlike(a) && intlike(b);
        int64_t x = both_int ? ival(a) : 0, y = both_int ? ival(b) : 0, r;
        double fx = fval(a), fy = fval(b);
        switch (op) {
        case OP_ADD:
            if (both_int) {
                if (__builtin_add_overflow(x, y, &r)) return jctx_error(c, n, "integer overflow");
                *out = jv_int(r);
            } else {
                *out = jv_float(fx + fy);
            }
            return 0;
        case OP_SUB:
            if (both_int) {
                if (__builtin_sub_overflow(x, y, &r)) return jctx_error(c, n, "integer overflow");
                *out = jv_int(r);
            } else {
                *out = jv_float(fx - fy);
            }
            return 0;
        case OP_MUL:
            if (both_int) {
                if (__builtin_mul_overflow(x, y, &r)) return jctx_error(c, n, "integer overflow");
                *out = jv_int(r);
            } else {
                *out = jv_float(fx * fy);
            }
            return 0;
        case OP_DIV:
            if (fy == 0.0) return jctx_error(c, n, both_int ? "division by zero" : "float division by zero");
            *out = jv_float(fx / fy);
            return 0;
        case OP_FLOORDIV:
        case OP_MOD:
            if (both_int) {
                if (y == 0) return jctx_error(c, n, "integer division or modulo by zero");
                if (x == INT64_MIN && y == -1) return jctx_error(c, n, "integer overflow");
                int64_t q = x / y, m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) {
                    q--;
                    m += y;
                }
                *out = jv_int(op == OP_FLOORDIV ? q : m);
                return 0;
            }
            if (fy == 0.0)
                return jctx_error(c, n, op == OP_MOD ? "float modulo" : "float floor division by zero");
            {
                /* CPython's float_divmod */
                double mod = fmod(fx, fy), div = (fx - mod) / fy;
                if (mod != 0.0) {
                    if ((fy < 0) != (mod < 0)) {
                        mod += fy;
                        div -= 1.0;
                    }
                } else {
                    mod = copysign(0.0, fy);
                }
                double floordiv;
                if (div != 0.0) {
                    floordiv = floor(div);
                    if (div - floordiv > 0.5) floordiv += 1.0;
                } else {
                    floordiv = copysign(0.0, fx / fy);
                }
                *out = jv_float(op == OP_MOD ? mod : floordiv);
            }
            return 0;
        case OP_POW:
            if (both_int && y >= 0) {
                int64_t acc = 1, base = x;
                int64_t e = y;
                while (e > 0) {
                    if (e & 1) {
                        if (__builtin_mul_overflow(acc, base, &acc)) return jctx_error(c, n, "integer overflow");
                    }
                    e >>= 1;
                    if (e && __builtin_mul_overflow(base, base, &base)) return jctx_error(c, n, "integer overflow");
                }
                *out = jv_int(acc);
                return 0;
            }
            if (fx == 0.0 && fy < 0) return jctx_error(c, n, "0.0 cannot be raised to a negative power");
            *out = jv_float(pow(fx, fy));
            return 0;
        }
    }
    if (op == OP_ADD) {
        if (a.kind == JV_STR && b.kind == JV_STR) {
            size_t la = a.u.s->len, lb = b.u.s->len;
            jstr *r = jstr_alloc(la + lb);
            if (!r) return locate(c, n);
            memcpy(r->data, a.u.s->data, la);
            memcpy(r->data + la, b.u.s->data, lb);
            r->ascii = a.u.s->ascii && b.u.s->ascii;
            *out = jv_str(r);
            return 0;
        }
        if (a.kind == JV_LIST && b.kind == JV_LIST && a.u.l->is_tuple == b.u.l->is_tuple &&
            !JL_IS_DICT_VIEW(a.u.l) && !JL_IS_DICT_VIEW(b.u.l)) {
            jlist *l = jlist_new(a.u.l->n + b.u.l->n);
            if (!l) return locate(c, n);
            l->is_tuple = a.u.l->is_tuple;
            for (size_t i = 0; i < a.u.l->n; i++) jlist_push(l, jv_retain(a.u.l->items[i]));
            for (size_t i = 0; i < b.u.l->n; i++) jlist_push(l, jv_retain(b.u.l->items[i]));
            *out = jv_list(l);
            return 0;
        }
        if (a.kind == JV_STR || a.kind == JV_LIST)
            return jctx_error(c, n, "can only concatenate %s (not \"%s\") to %s", jv_type_name(a),
                              jv_type_name(b), jv_type_name(a));
    }
    if (op == OP_MUL) {
        if ((a.kind == JV_STR || (a.kind == JV_LIST && !JL_IS_DICT_VIEW(a.u.l))) && intlike(b))
            return repeat(c, n, a, ival(b), out);
        if ((b.kind == JV_STR || (b.kind == JV_LIST && !JL_IS_DICT_VIEW(b.u.l))) && intlike(a))
            return repeat(c, n, b, ival(a), out);
        if (a.kind == JV_STR || a.kind == JV_LIST || b.kind == JV_STR || b.kind == JV_LIST)
            return jctx_error(c, n, "can't multiply sequence by non-int of type '%s'",
                              jv_type_name(a.kind == JV_STR || a.kind == JV_LIST ? b : a));
    }
    if (op == OP_MOD && a.kind == JV_STR) return jinja_percent_format(c, n, a, b, out);
    return unsupported_operands(c, n, op, a, b);
}

static int contains(jctx *c, const jnode *n, jv needle, jv hay, bool *out) {
    switch (hay.kind) {
    case JV_UNDEFINED: *out = false; return 0;
    case JV_STR:
        if (needle.kind != JV_STR)
            return jctx_error(c, n, "'in <string>' requires string as left operand, not %s", jv_type_name(needle));
        if (!needle.u.s->len) {
            *out = true;
            return 0;
        }
        *out = memmem(hay.u.s->data, hay.u.s->len, needle.u.s->data, needle.u.s->len) != NULL;
        return 0;
    case JV_LIST:
        *out = false;
        for (size_t i = 0; i < hay.u.l->n && !*out; i++) *out = jv_equal(needle, hay.u.l->items[i]);
        return 0;
    case JV_DICT:
        *out = needle.kind != JV_UNDEFINED && jdict_get(hay.u.d, needle) != NULL;
        return 0;
    default:
        return jctx_error(c, n, "argument of type '%s' is not iterable", jv_type_name(hay));
    }
}

static int compare_op(jctx *c, const jnode *n, int op, jv a, jv b, bool *out) {
    switch (op) {
    case CMP_EQ: *out = jv_equal(a, b); return 0;
    case CMP_NE: *out = !jv_equal(a, b); return 0;
    case CMP_IN: return contains(c, n, a, b, out);
    case CMP_NOTIN:
        if (contains(c, n, a, b, out)) return -1;
        *out = !*out;
        return 0;
    default: break;
    }
    if (a.kind == JV_UNDEFINED) return jctx_undefined_error(c, n, a);
    if (b.kind == JV_UNDEFINED) return jctx_undefined_error(c, n, b);
    static const char *sym[] = {"==", "!=", "<", "<=", ">", ">="};
    int r;
    if (jv_compare(a, b, sym[op], &r) < 0) return locate(c, n);
    *out = op == CMP_LT ? r < 0 : op == CMP_LE ? r <= 0 : op == CMP_GT ? r > 0 : r >= 0;
    return 0;
}

static int apply_filter(jctx *c, const jnode *f, jv v, jv *out) {
    jargs a;
    if (eval_args(c, f, &a)) return -1;
    bool unknown = false;
    int r = jinja_filter(c, f, f->name, v, &a, out, &unknown);
    args_free(&a);
    if (r && unknown) return jctx_error(c, f, "unsupported filter '%s'", f->name);
    return r;
}

/* Applies a filter chain parsed with a NULL innermost operand (filter blocks, set blocks). */
static int apply_filter_chain(jctx *c, const jnode *f, jv v, jv *out) {
    if (!f) {
        *out = v;
        return 0;
    }
    jv inner;
    if (f->a) {
        if (apply_filter_chain(c, f->a, v, &inner)) return -1;
    } else {
        inner = v;
    }
    int r = apply_filter(c, f, inner, out);
    jv_release(inner);
    return r;
}

static int eval(jctx *c, const jnode *n, jv *out) {
    switch (n->kind) {
    case N_CONST:
        *out = jv_retain(n->value);
        return 0;
    case N_NAME: return lookup_name(c, n, n->name, out);
    case N_GETATTR: {
        jv obj;
        if (eval(c, n->a, &obj)) return -1;
        int r = jctx_getattr(c, n, obj, n->name, out);
        jv_release(obj);
        return r;
    }
    case N_GETITEM: {
        jv obj, key;
        if (eval(c, n->a, &obj)) return -1;
        if (n->b->kind == N_SLICE) {
            int r = eval_slice(c, n, obj, n->b, out);
            jv_release(obj);
            return r;
        }
        if (eval(c, n->b, &key)) {
            jv_release(obj);
            return -1;
        }
        int r = jctx_getitem(c, n, obj, key, out);
        jv_release(obj);
        jv_release(key);
        return r;
    }
    case N_CALL: return eval_call(c, n, out);
    case N_FILTER: {
        jv v;
        if (eval(c, n->a, &v)) return -1;
        int r = apply_filter(c, n, v, out);
        jv_release(v);
        return r;
    }
    case N_TEST: {
        jv v;
        jargs a;
        if (eval(c, n->a, &v)) return -1;
        if (eval_args(c, n, &a)) {
            jv_release(v);
            return -1;
        }
        bool unknown = false, res = false;
        int r = jinja_test(c, n, n->name, v, &a, &res, &unknown);
        args_free(&a);
        jv_release(v);
        if (r) return unknown ? jctx_error(c, n, "unsupported test '%s'", n->name) : -1;
        *out = jv_bool(res);
        return 0;
    }
    case N_NEG:
    case N_POS: {
        jv v;
        if (eval(c, n->a, &v)) return -1;
        int r = 0;
        if (v.kind == JV_UNDEFINED) r = jctx_undefined_error(c, n, v);
        else if (intlike(v)) {
            if (n->kind == N_NEG && ival(v) == INT64_MIN) r = jctx_error(c, n, "integer overflow");
            else *out = jv_int(n->kind == N_NEG ? -ival(v) : ival(v));
        } else if (v.kind == JV_FLOAT) *out = jv_float(n->kind == N_NEG ? -v.u.f : v.u.f);
        else r = jctx_error(c, n, "bad operand type for unary %s: '%s'", n->kind == N_NEG ? "-" : "+", jv_type_name(v));
        jv_release(v);
        return r;
    }
    case N_NOT: {
        jv v;
        if (eval(c, n->a, &v)) return -1;
        *out = jv_bool(!jv_truthy(v));
        jv_release(v);
        return 0;
    }
    case N_AND:
    case N_OR: {
        jv a;
        if (eval(c, n->a, &a)) return -1;
        bool t = jv_truthy(a);
        if ((n->kind == N_AND) != t) {
            *out = a;
            return 0;
        }
        jv_release(a);
        return eval(c, n->b, out);
    }
    case N_BINOP: {
        jv a, b;
        if (eval(c, n->a, &a)) return -1;
        if (eval(c, n->b, &b)) {
            jv_release(a);
            return -1;
        }
        int r = arith(c, n, n->op, a, b, out);
        jv_release(a);
        jv_release(b);
        return r;
    }
    case N_CONCAT: {
        jbuf b = {.max = c->lim.max_output};
        for (size_t i = 0; i < n->nitems; i++) {
            jv v;
            if (eval(c, n->items[i], &v)) {
                jbuf_free(&b);
                return -1;
            }
            int r = jv_write_str(&b, v);
            jv_release(v);
            if (r) {
                jbuf_free(&b);
                return locate(c, n);
            }
        }
        jstr *s = jbuf_to_str(&b);
        if (!s) return locate(c, n);
        *out = jv_str(s);
        return 0;
    }
    case N_COMPARE: {
        jv left;
        if (eval(c, n->a, &left)) return -1;
        bool res = true;
        for (size_t i = 0; i < n->nitems && res; i++) {
            jv right;
            if (eval(c, n->items[i], &right)) {
                jv_release(left);
                return -1;
            }
            int r = compare_op(c, n, n->ops[i], left, right, &res);
            jv_release(left);
            left = right;
            if (r) {
                jv_release(left);
                return -1;
            }
        }
        jv_release(left);
        *out = jv_bool(res);
        return 0;
    }
    case N_CONDEXPR: {
        jv t;
        if (eval(c, n->a, &t)) return -1;
        bool truth = jv_truthy(t);
        jv_release(t);
        if (truth) return eval(c, n->b, out);
        if (n->c) return eval(c, n->c, out);
        *out = undef_fmt("the inline if-expression on line %d evaluated to false and no else section was defined.",
                         n->line);
        return 0;
    }
    case N_LIST:
    case N_TUPLE: {
        jlist *l = jlist_new(n->nitems);
        if (!l) return locate(c, n);
        l->is_tuple = n->kind == N_TUPLE;
        for (size_t i = 0; i < n->nitems; i++) {
            jv v;
            if (eval(c, n->items[i], &v)) {
                jv_release(jv_list(l));
                return -1;
            }
            jlist_push(l, v); /* capacity reserved */
        }
        *out = jv_list(l);
        return 0;
    }
    case N_DICT: {
        jdict *d = jdict_new();
        if (!d) return locate(c, n);
        jv dv = {.kind = JV_DICT};
        dv.u.d = d;
        for (size_t i = 0; i < n->nitems; i++) {
            jv k, v;
            if (eval(c, n->items[i], &k)) {
                jv_release(dv);
                return -1;
            }
            if (eval(c, n->items2[i], &v)) {
                jv_release(k);
                jv_release(dv);
                return -1;
            }
            if (k.kind == JV_LIST && !k.u.l->is_tuple) {
                jv_release(k);
                jv_release(v);
                jv_release(dv);
                return jctx_error(c, n->items[i], "unhashable type: 'list'");
            }
            if (jdict_set(d, k, v)) {
                jv_release(dv);
                return locate(c, n);
            }
        }
        *out = dv;
        return 0;
    }
    default:
        return jctx_error(c, n, "internal error: statement evaluated as an expression");
    }
}

/* ---- statements ------------------------------------------------------------------------- */

enum { FLOW_NORMAL = 0, FLOW_BREAK = 1, FLOW_CONTINUE = 2 };

/* Binds a value to an assignment target (name or tuple of names) in the current scope. */
static int assign(jctx *c, const jnode *target, jv v) {
    if (target->kind == N_NAME) {
        if (scope_set(c->scope, target->name, v)) return locate(c, target);
        return 0;
    }
    /* tuple unpacking */
    jlist *l;
    if (jctx_to_list(c, target, v, &l)) {
        jv_release(v);
        return -1;
    }
    jv_release(v);
    int r = 0;
    if (l->n < target->nitems)
        r = jctx_error(c, target, "not enough values to unpack (expected %zu, got %zu)", target->nitems, l->n);
    else if (l->n > target->nitems)
        r = jctx_error(c, target, "too many values to unpack (expected %zu)", target->nitems);
    for (size_t i = 0; !r && i < target->nitems; i++)
        if (scope_set(c->scope, target->items[i]->name, jv_retain(l->items[i]))) r = locate(c, target);
    jv_release(jv_list(l));
    return r;
}

static int exec_for(jctx *c, const jnode *n) {
    jv seqv;
    if (eval(c, n->b, &seqv)) return -1;
    jlist *items;
    int r = jctx_to_list(c, n->b, seqv, &items);
    jv_release(seqv);
    if (r) return -1;
    if (n->c) {
        /* "for x in xs if cond": filter first, so loop.length and loop.last see only the
         * items that pass */
        jlist *kept = jlist_new(items->n);
        if (!kept) {
            jv_release(jv_list(items));
            return locate(c, n);
        }
        for (size_t i = 0; i < items->n; i++) {
            jscope *s = scope_new(c->scope);
            if (!s) r = locate(c, n);
            jv t = jv_undef();
            if (!r) {
                c->scope = s;
                r = assign(c, n->a, jv_retain(items->items[i]));
                if (!r) r = eval(c, n->c, &t);
                scope_pop(c);
            }
            if (!r && jv_truthy(t)) r = jlist_push(kept, jv_retain(items->items[i])) ? locate(c, n) : 0;
            jv_release(t);
            if (r) break;
        }
        jv_release(jv_list(items));
        items = kept;
        if (r) {
            jv_release(jv_list(items));
            return -1;
        }
    }
    if (!items->n) {
        jv_release(jv_list(items));
        return n->nitems2 ? exec_body(c, n->items2, n->nitems2) : 0;
    }
    jloop *lp = calloc(1, sizeof *lp);
    if (!lp) {
        jv_release(jv_list(items));
        return locate(c, n);
    }
    lp->rc = 1;
    lp->length = (int64_t)items->n;
    lp->depth = 1;
    lp->items = items;
    lp->last_changed = jv_undef();
    jv loopv = {.kind = JV_LOOP};
    loopv.u.loop = lp;
    int flow = 0;
    for (size_t i = 0; i < items->n; i++) {
        if (check_iterations(c, n)) {
            flow = -1;
            break;
        }
        lp->index0 = (int64_t)i;
        jscope *s = scope_new(c->scope);
        if (!s) {
            flow = locate(c, n);
            break;
        }
        c->scope = s;
        flow = assign(c, n->a, jv_retain(items->items[i]));
        if (!flow) flow = scope_set(s, "loop", jv_retain(loopv)) ? locate(c, n) : 0;
        if (!flow) flow = exec_body(c, n->items, n->nitems);
        scope_pop(c);
        if (flow == FLOW_CONTINUE) flow = 0;
        if (flow) break;
    }
    jv_release(loopv);
    return flow < 0 ? -1 : 0;
}

static int exec_set(jctx *c, const jnode *n) {
    jv v;
    if (eval(c, n->b, &v)) return -1;
    const jnode *t = n->a;
    if (t->kind == N_GETATTR) {
        jv ns;
        if (lookup_name(c, t->a, t->a->name, &ns)) {
            jv_release(v);
            return -1;
        }
        int r = 0;
        if (ns.kind != JV_NS) {
            r = jctx_error(c, t, "cannot assign attribute on non-namespace object");
        } else if (t->name[0] == '_') {
            r = jctx_error(c, t,
                           "Chat templates cannot store underscore-prefixed attributes on a namespace, but got "
                           "'%s'. Please rename the attribute.",
                           t->name);
        } else {
            r = jdict_set_str(ns.u.d, t->name, v) ? locate(c, t) : 0;
            v = jv_none();
        }
        jv_release(v);
        jv_release(ns);
        return r;
    }
    return assign(c, t, v);
}

static int capture(jctx *c, jnode *const *items, size_t nitems, jv *out) {
    jbuf *saved = c->out;
    jbuf buf = {.max = c->lim.max_output};
    c->out = &buf;
    int r = exec_body(c, items, nitems);
    c->out = saved;
    if (r < 0) {
        jbuf_free(&buf);
        return -1;
    }
    jstr *s = jbuf_to_str(&buf);
    if (!s) return -1;
    *out = jv_str(s);
    return r;
}

static int exec_node(jctx *c, const jnode *n) {
    switch (n->kind) {
    case N_TEXT: return jbuf_put(c->out, n->value.u.s->data, n->value.u.s->len) ? locate(c, n) : 0;
    case N_PRINT: {
        jv v;
        if (eval(c, n->a, &v)) return -1;
        int r = jv_write_str(c->out, v);
        jv_release(v);
        return r ? locate(c, n) : 0;
    }
    case N_IF: {
        jv t;
        if (eval(c, n->a, &t)) return -1;
        bool truth = jv_truthy(t);
        jv_release(t);
        return truth ? exec_body(c, n->items, n->nitems) : exec_body(c, n->items2, n->nitems2);
    }
    case N_FOR: return exec_for(c, n);
    case N_SET: return exec_set(c, n);
    case N_SETBLOCK: {
        jv body, v;
        int r = capture(c, n->items, n->nitems, &body);
        if (r < 0) return -1;
        if (apply_filter_chain(c, n->b, body, &v)) return -1;
        if (assign(c, n->a, v)) return -1;
        return r;
    }
    case N_MACRO: {
        jfunc *f = calloc(1, sizeof *f);
        if (!f) return locate(c, n);
        f->rc = 1;
        f->kind = JF_MACRO;
        f->name = n->name;
        f->macro = n;
        f->self = jv_undef();
        f->closure = c->scope;
        c->scope->rc++;
        jv v = {.kind = JV_FUNC};
        v.u.fn = f;
        return scope_set(c->scope, n->name, v) ? locate(c, n) : 0;
    }
    case N_FILTERBLOCK: {
        jv body, v;
        int r = capture(c, n->items, n->nitems, &body);
        if (r < 0) return -1;
        if (apply_filter_chain(c, n->b, body, &v)) return -1;
        int w = jv_write_str(c->out, v);
        jv_release(v);
        return w ? locate(c, n) : r;
    }
    case N_WITH: {
        jv vals[64];
        for (size_t i = 0; i < n->nparams; i++)
            if (eval(c, n->items2[i], &vals[i])) {
                while (i-- > 0) jv_release(vals[i]);
                return -1;
            }
        jscope *s = scope_new(c->scope);
        if (!s) {
            for (size_t i = 0; i < n->nparams; i++) jv_release(vals[i]);
            return locate(c, n);
        }
        c->scope = s;
        int r = 0;
        for (size_t i = 0; i < n->nparams; i++)
            if (!r && scope_set(s, n->params[i], vals[i])) r = locate(c, n);
            else if (r) jv_release(vals[i]);
        if (!r) r = exec_body(c, n->items, n->nitems);
        scope_pop(c);
        return r;
    }
    case N_BREAK: return FLOW_BREAK;
    case N_CONTINUE: return FLOW_CONTINUE;
    case N_BODY: return exec_body(c, n->items, n->nitems);
    default:
        return jctx_error(c, n, "internal error: expression executed as a statement");
    }
}

static int exec_body(jctx *c, jnode *const *items, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int r = exec_node(c, items[i]);
        if (r) return r;
    }
    return 0;
}

/* ---- render ----------------------------------------------------------------------------- */

static char *render(const jinja_template *t, const cJSON *vars, const jinja_limits *limits, size_t *out_len);

/* Numbers print as Python prints them, with '.' whatever locale the host program chose;
 * uselocale() switches this thread only. */
char *jinja_render(const jinja_template *t, const cJSON *vars, const jinja_limits *limits, size_t *out_len) {
    locale_t c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    locale_t prev = c_locale ? uselocale(c_locale) : (locale_t)0;
    char *out = render(t, vars, limits, out_len);
    if (c_locale) {
        uselocale(prev);
        freelocale(c_locale);
    }
    return out;
}

static char *render(const jinja_template *t, const cJSON *vars, const jinja_limits *limits, size_t *out_len) {
    jctx c = {.t = t};
    if (limits) c.lim = *limits;
    if (!c.lim.max_output) c.lim.max_output = (size_t)64 << 20;
    if (!c.lim.max_depth) c.lim.max_depth = 200;
    if (!c.lim.max_iterations) c.lim.max_iterations = 50000000;
    jstr_set_limit(c.lim.max_output);

    if (vars && !cJSON_IsObject(vars)) {
        om_errorf("%s: variables must be a JSON object", t->name);
        return NULL;
    }
    jv globals = vars ? jv_from_cjson(vars) : jv_undef();
    if (vars && globals.kind != JV_DICT) return NULL;
    jscope *root = scope_new(NULL);
    if (!root) {
        jv_release(globals);
        return NULL;
    }
    if (globals.kind == JV_DICT) root->globals = globals.u.d;
    jscope *top = scope_new(root); /* template-level {% set %} shadows the variables */
    jbuf out = {.max = c.lim.max_output};
    c.out = &out;
    c.scope = top;
    int r = top ? exec_body(&c, t->root->items, t->root->nitems) : -1;
    if (top) scope_pop(&c);
    jscope_release(root);
    /* namespaces may reference themselves; empty them all to break such cycles */
    for (size_t i = 0; i < c.nns; i++) {
        jdict_clear(c.namespaces[i]);
        jv nv = {.kind = JV_NS};
        nv.u.d = c.namespaces[i];
        jv_release(nv);
    }
    free(c.namespaces);
    jv_release(globals);
    jstr_set_limit(0);
    if (r < 0) {
        jbuf_free(&out);
        return NULL;
    }
    if (!out.p) {
        out.p = malloc(1);
        if (!out.p) {
            om_errorf("out of memory");
            return NULL;
        }
        out.p[0] = 0;
    }
    if (out_len) *out_len = out.len;
    return out.p;
}
