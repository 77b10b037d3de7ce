/* The Jinja parser: tokens to an AST, following the grammar and operator precedence of
 * jinja2's parser.py (condexpr < or < and < not < compare < +,- < ~ < *,/,//,% < ** < unary <
 * postfix, then filters and tests), so that expressions group exactly as in jinja2.
 * Unknown filters, tests and unsupported tags are reported here, at compile time, with their
 * position, as jinja2 reports unknown filters when it compiles a template.
 *
 * Node fields by kind (see jnode in jinja_internal.h):
 *   N_GETATTR a.name | N_GETITEM a[b] | N_SLICE a:b:c | N_CALL a(items, kw) |
 *   N_FILTER a|name(items, kw), a NULL inside filter blocks | N_TEST a is name(items, kw) |
 *   N_COMPARE a (ops[i] items[i])... | N_CONDEXPR b if a else c | N_DICT items: items2 |
 *   N_IF if a: items else items2 | N_FOR for a in b if c: items else items2 |
 *   N_SET a = b | N_SETBLOCK a = items piped through b | N_MACRO name(params=items2): items |
 *   N_FILTERBLOCK items piped through b | N_WITH params = items2: items. */
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/jinja_internal.h"

/* ---- arena ------------------------------------------------------------------------------ */

struct jarena_block {
    jarena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *jarena_alloc(jinja_template *t, size_t n) {
    n = (n + 15) & ~(size_t)15;
    jarena_block *b = t->arena;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        b = malloc(sizeof *b + cap);
        if (!b) {
            om_errorf("out of memory");
            return NULL;
        }
        b->next = t->arena;
        b->used = 0;
        b->cap = cap;
        t->arena = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *jarena_strdup(jinja_template *t, const char *s, size_t n) {
    char *p = jarena_alloc(t, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* ---- parser state ----------------------------------------------------------------------- */

typedef struct {
    jinja_template *t;
    jtoken *toks;
    size_t ntoks, pos;
    int depth;      /* recursion depth, bounded so hostile templates cannot blow the stack */
    int loops;      /* enclosing for loops (break/continue are only valid inside one) */
    /* every jv constant made while parsing, released with the template */
    jv *consts;
    size_t nconsts, capconsts;
} parser;

#define MAX_DEPTH 200

static jtoken *cur(parser *p) { return &p->toks[p->pos]; }
static jtoken *look(parser *p) { return &p->toks[p->pos + 1 < p->ntoks ? p->pos + 1 : p->pos]; }
static void advance(parser *p) {
    if (p->pos + 1 < p->ntoks) p->pos++;
}

static const char *tok_desc(const jtoken *tk, char *buf, size_t cap) {
    switch (tk->kind) {
    case T_EOF: return "end of template";
    case T_DATA: return "template data";
    case T_VAR_BEGIN: return "begin of print statement";
    case T_VAR_END: return "end of print statement";
    case T_BLOCK_BEGIN: return "begin of statement block";
    case T_BLOCK_END: return "end of statement block";
    case T_STRING: return "string";
    case T_INT: return "integer";
    case T_FLOAT: return "float";
    case T_NAME:
    case T_OP: snprintf(buf, cap, "%.*s", (int)(tk->len > 64 ? 64 : tk->len), tk->s); return buf;
    }
    return "?";
}

static int perr_at(parser *p, int line, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int perr_at(parser *p, int line, int col, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return om_errorf("%s %d:%d: %s", p->t->name, line, col, msg);
}
#define perr(p, tk, ...) perr_at((p), (tk)->line, (tk)->col, __VA_ARGS__)

static bool is_op(const jtoken *tk, const char *op) {
    return tk->kind == T_OP && strcmp(tk->s, op) == 0;
}
static bool is_name(const jtoken *tk, const char *name) {
    return tk->kind == T_NAME && strcmp(tk->s, name) == 0;
}

static int expect_op(parser *p, const char *op) {
    jtoken *tk = cur(p);
    if (!is_op(tk, op)) {
        char b[80];
        return perr(p, tk, "expected '%s', got '%s'", op, tok_desc(tk, b, sizeof b));
    }
    advance(p);
    return 0;
}

static int expect_kind(parser *p, jtok_kind kind, const char *what) {
    jtoken *tk = cur(p);
    if (tk->kind != kind) {
        char b[80];
        return perr(p, tk, "expected %s, got '%s'", what, tok_desc(tk, b, sizeof b));
    }
    advance(p);
    return 0;
}

static jnode *node(parser *p, jnode_kind kind, const jtoken *at) {
    jnode *n = jarena_alloc(p->t, sizeof *n);
    if (!n) return NULL;
    n->kind = kind;
    n->line = at->line;
    n->col = at->col;
    n->value = jv_undef();
    return n;
}

/* Template constants are made immortal (see jstr_retain) and kept in a list to be freed with
 * the template. Only strings are heap constants. */
static int keep_const(parser *p, jv v) {
    if (!jv_is_heap(v)) return 0;
    if (p->nconsts == p->capconsts) {
        size_t cap = p->capconsts ? p->capconsts * 2 : 32;
        jv *c = realloc(p->consts, cap * sizeof *c);
        if (!c) {
            jv_release(v);
            return om_errorf("out of memory");
        }
        p->consts = c;
        p->capconsts = cap;
    }
    p->consts[p->nconsts++] = v;
    v.u.s->rc = -1;
    return 0;
}

/* A growable array of node pointers, copied into the arena when complete. */
typedef struct {
    jnode **v;
    size_t n, cap;
} nodevec;

static int nv_push(nodevec *nv, jnode *n) {
    if (nv->n == nv->cap) {
        size_t cap = nv->cap ? nv->cap * 2 : 8;
        jnode **v = realloc(nv->v, cap * sizeof *v);
        if (!v) return om_errorf("out of memory");
        nv->v = v;
        nv->cap = cap;
    }
    nv->v[nv->n++] = n;
    return 0;
}

static jnode **nv_finish(parser *p, nodevec *nv, size_t *n) {
    *n = nv->n;
    jnode **out = NULL;
    if (nv->n) {
        out = jarena_alloc(p->t, nv->n * sizeof *out);
        if (out) memcpy(out, nv->v, nv->n * sizeof *out);
    }
    free(nv->v);
    nv->v = NULL;
    nv->n = nv->cap = 0;
    return out;
}

/* ---- expressions ------------------------------------------------------------------------ */

static jnode *parse_expression(parser *p, bool with_condexpr);
static jnode *parse_tuple(parser *p, bool simplified, bool with_condexpr, const char *extra_end,
                          bool explicit_parens);
static jnode *parse_unary(parser *p, bool with_filter);
static jnode *parse_primary(parser *p);
static jnode *parse_postfix(parser *p, jnode *n);
static jnode *parse_filter(parser *p, jnode *n, bool start_inline);

static bool enter(parser *p) {
    if (++p->depth > MAX_DEPTH) {
        perr(p, cur(p), "expression nested too deeply");
        return false;
    }
    return true;
}
static jnode *leave(parser *p, jnode *n) {
    p->depth--;
    return n;
}

/* Call arguments "(a, b, key=c)" into items and keyword arrays. */
static int parse_call_args(parser *p, jnode *n) {
    if (expect_op(p, "(")) return -1;
    nodevec args = {0}, kwv = {0};
    const char **kwn = NULL;
    size_t nkwn = 0;
    bool need_comma = false;
    int rc = -1;
    while (!is_op(cur(p), ")")) {
        if (need_comma) {
            if (expect_op(p, ",")) goto out;
            if (is_op(cur(p), ")")) break;
        }
        jtoken *tk = cur(p);
        if (is_op(tk, "*") || is_op(tk, "**")) {
            perr(p, tk, "unsupported construct: %s arguments in a call", tk->s);
            goto out;
        }
        if (tk->kind == T_NAME && is_op(look(p), "=")) {
            advance(p);
            advance(p);
            jnode *v = parse_expression(p, true);
            if (!v) goto out;
            const char **k2 = realloc(kwn, (nkwn + 1) * sizeof *k2);
            if (!k2) {
                om_errorf("out of memory");
                goto out;
            }
            kwn = k2;
            kwn[nkwn++] = tk->s;
            if (nv_push(&kwv, v)) goto out;
        } else {
            if (kwv.n) {
                perr(p, tk, "positional argument follows keyword argument");
                goto out;
            }
            jnode *v = parse_expression(p, true);
            if (!v || nv_push(&args, v)) goto out;
        }
        need_comma = true;
    }
    if (expect_op(p, ")")) goto out;
    n->items = nv_finish(p, &args, &n->nitems);
    n->kwvals = nv_finish(p, &kwv, &n->nkw);
    if (nkwn) {
        n->kwnames = jarena_alloc(p->t, nkwn * sizeof *n->kwnames);
        if (!n->kwnames) goto out;
        memcpy(n->kwnames, kwn, nkwn * sizeof *kwn);
    }
    rc = 0;
out:
    free(args.v);
    free(kwv.v);
    free(kwn);
    return rc;
}

/* A dotted name after '|' or 'is'. */
static const char *parse_dotted_name(parser *p) {
    jtoken *tk = cur(p);
    if (tk->kind != T_NAME) {
        char b[80];
        perr(p, tk, "expected name, got '%s'", tok_desc(tk, b, sizeof b));
        return NULL;
    }
    advance(p);
    if (!is_op(cur(p), ".")) return tk->s;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", tk->s);
    while (is_op(cur(p), ".")) {
        advance(p);
        jtoken *t2 = cur(p);
        if (t2->kind != T_NAME) {
            perr(p, t2, "expected name after '.'");
            return NULL;
        }
        size_t l = strlen(buf);
        snprintf(buf + l, sizeof buf - l, ".%s", t2->s);
        advance(p);
    }
    return jarena_strdup(p->t, buf, strlen(buf));
}

static jnode *parse_filter(parser *p, jnode *n, bool start_inline) {
    while (is_op(cur(p), "|") || start_inline) {
        if (!start_inline) advance(p);
        start_inline = false;
        jtoken *at = cur(p);
        const char *name = parse_dotted_name(p);
        if (!name) return NULL;
        if (!jinja_filter_exists(name)) {
            perr(p, at, "unsupported filter '%s'", name);
            return NULL;
        }
        jnode *f = node(p, N_FILTER, at);
        if (!f) return NULL;
        f->a = n;
        f->name = name;
        if (is_op(cur(p), "(") && parse_call_args(p, f)) return NULL;
        n = f;
    }
    return n;
}

static jnode *parse_test(parser *p, jnode *n) {
    jtoken *is_tok = cur(p);
    advance(p); /* 'is' */
    bool negated = false;
    if (is_name(cur(p), "not")) {
        advance(p);
        negated = true;
    }
    jtoken *at = cur(p);
    const char *name = parse_dotted_name(p);
    if (!name) return NULL;
    if (!jinja_test_exists(name)) {
        perr(p, at, "unsupported test '%s'", name);
        return NULL;
    }
    jnode *t = node(p, N_TEST, at);
    if (!t) return NULL;
    t->a = n;
    t->name = name;
    jtoken *tk = cur(p);
    if (is_op(tk, "(")) {
        if (parse_call_args(p, t)) return NULL;
    } else if ((tk->kind == T_NAME || tk->kind == T_STRING || tk->kind == T_INT || tk->kind == T_FLOAT ||
                is_op(tk, "[") || is_op(tk, "{")) &&
               !is_name(tk, "else") && !is_name(tk, "or") && !is_name(tk, "and")) {
        if (is_name(tk, "is")) {
            perr(p, tk, "You cannot chain multiple tests with is");
            return NULL;
        }
        jnode *arg = parse_primary(p);
        if (!arg) return NULL;
        arg = parse_postfix(p, arg);
        if (!arg) return NULL;
        t->items = jarena_alloc(p->t, sizeof *t->items);
        if (!t->items) return NULL;
        t->items[0] = arg;
        t->nitems = 1;
    }
    if (!negated) return t;
    jnode *nt = node(p, N_NOT, is_tok);
    if (!nt) return NULL;
    nt->a = t;
    return nt;
}

static jnode *parse_subscribed(parser *p) {
    jtoken *at = cur(p);
    jnode *args[3] = {NULL, NULL, NULL};
    if (is_op(cur(p), ":")) {
        advance(p);
    } else {
        jnode *e = parse_expression(p, true);
        if (!e) return NULL;
        if (!is_op(cur(p), ":")) return e;
        advance(p);
        args[0] = e;
    }
    if (!is_op(cur(p), ":") && !is_op(cur(p), "]") && !is_op(cur(p), ",")) {
        if (!(args[1] = parse_expression(p, true))) return NULL;
    }
    if (is_op(cur(p), ":")) {
        advance(p);
        if (!is_op(cur(p), "]") && !is_op(cur(p), ",")) {
            if (!(args[2] = parse_expression(p, true))) return NULL;
        }
    }
    jnode *s = node(p, N_SLICE, at);
    if (!s) return NULL;
    s->a = args[0];
    s->b = args[1];
    s->c = args[2];
    return s;
}

static jnode *parse_postfix(parser *p, jnode *n) {
    for (;;) {
        jtoken *tk = cur(p);
        if (is_op(tk, ".")) {
            advance(p);
            jtoken *at = cur(p);
            if (at->kind == T_NAME) {
                jnode *g = node(p, N_GETATTR, at);
                if (!g) return NULL;
                g->a = n;
                g->name = at->s;
                advance(p);
                n = g;
            } else if (at->kind == T_INT) {
                jnode *k = node(p, N_CONST, at), *g = node(p, N_GETITEM, at);
                if (!k || !g) return NULL;
                k->value = jv_int(at->i);
                g->a = n;
                g->b = k;
                advance(p);
                n = g;
            } else {
                perr(p, at, "expected name or number after '.'");
                return NULL;
            }
        } else if (is_op(tk, "[")) {
            advance(p);
            nodevec args = {0};
            while (!is_op(cur(p), "]")) {
                if (args.n && expect_op(p, ",")) {
                    free(args.v);
                    return NULL;
                }
                jnode *s = parse_subscribed(p);
                if (!s || nv_push(&args, s)) {
                    free(args.v);
                    return NULL;
                }
            }
            if (expect_op(p, "]")) {
                free(args.v);
                return NULL;
            }
            jnode *g = node(p, N_GETITEM, tk);
            if (!g) {
                free(args.v);
                return NULL;
            }
            g->a = n;
            if (args.n == 1) {
                g->b = args.v[0];
                free(args.v);
            } else {
                jnode *t = node(p, N_TUPLE, tk);
                if (!t) {
                    free(args.v);
                    return NULL;
                }
                t->items = nv_finish(p, &args, &t->nitems);
                g->b = t;
            }
            n = g;
        } else if (is_op(tk, "(")) {
            jnode *c = node(p, N_CALL, tk);
            if (!c) return NULL;
            c->a = n;
            if (parse_call_args(p, c)) return NULL;
            n = c;
        } else {
            return n;
        }
    }
}

static jnode *parse_filter_expr(parser *p, jnode *n) {
    for (;;) {
        jtoken *tk = cur(p);
        if (is_op(tk, "|")) {
            if (!(n = parse_filter(p, n, false))) return NULL;
        } else if (is_name(tk, "is")) {
            if (!(n = parse_test(p, n))) return NULL;
        } else if (is_op(tk, "(")) {
            jnode *c = node(p, N_CALL, tk);
            if (!c) return NULL;
            c->a = n;
            if (parse_call_args(p, c)) return NULL;
            n = c;
        } else {
            return n;
        }
    }
}

static jnode *parse_list_or_dict(parser *p, bool dict) {
    jtoken *at = cur(p);
    advance(p);
    const char *close = dict ? "}" : "]";
    nodevec keys = {0}, vals = {0};
    while (!is_op(cur(p), close)) {
        if (keys.n && expect_op(p, ",")) goto fail;
        if (is_op(cur(p), close)) break;
        jnode *k = parse_expression(p, true);
        if (!k || nv_push(&keys, k)) goto fail;
        if (dict) {
            if (expect_op(p, ":")) goto fail;
            jnode *v = parse_expression(p, true);
            if (!v || nv_push(&vals, v)) goto fail;
        }
    }
    if (expect_op(p, close)) goto fail;
    jnode *n = node(p, dict ? N_DICT : N_LIST, at);
    if (!n) goto fail;
    n->items = nv_finish(p, &keys, &n->nitems);
    n->items2 = nv_finish(p, &vals, &n->nitems2);
    return n;
fail:
    free(keys.v);
    free(vals.v);
    return NULL;
}

static jnode *parse_primary(parser *p) {
    if (!enter(p)) return NULL;
    jtoken *tk = cur(p);
    jnode *n = NULL;
    if (tk->kind == T_NAME) {
        n = node(p, N_CONST, tk);
        if (!n) return NULL;
        if (!strcmp(tk->s, "true") || !strcmp(tk->s, "True")) n->value = jv_bool(true);
        else if (!strcmp(tk->s, "false") || !strcmp(tk->s, "False")) n->value = jv_bool(false);
        else if (!strcmp(tk->s, "none") || !strcmp(tk->s, "None")) n->value = jv_none();
        else {
            n->kind = N_NAME;
            n->name = tk->s;
        }
        advance(p);
    } else if (tk->kind == T_STRING) {
        /* adjacent string literals concatenate, as in Python */
        jbuf b = {0};
        while (cur(p)->kind == T_STRING) {
            if (jbuf_put(&b, cur(p)->s, cur(p)->len)) {
                jbuf_free(&b);
                return NULL;
            }
            advance(p);
        }
        n = node(p, N_CONST, tk);
        jstr *s = jbuf_to_str(&b);
        if (!n || !s) {
            jstr_release(s);
            return NULL;
        }
        n->value = jv_str(s);
        if (keep_const(p, n->value)) return NULL;
    } else if (tk->kind == T_INT || tk->kind == T_FLOAT) {
        n = node(p, N_CONST, tk);
        if (!n) return NULL;
        n->value = tk->kind == T_INT ? jv_int(tk->i) : jv_float(tk->f);
        advance(p);
    } else if (is_op(tk, "(")) {
        advance(p);
        n = parse_tuple(p, false, true, NULL, true);
        if (!n || expect_op(p, ")")) return NULL;
    } else if (is_op(tk, "[")) {
        n = parse_list_or_dict(p, false);
    } else if (is_op(tk, "{")) {
        n = parse_list_or_dict(p, true);
    } else {
        char b[80];
        perr(p, tk, "unexpected '%s'", tok_desc(tk, b, sizeof b));
        return NULL;
    }
    return leave(p, n);
}

static jnode *parse_unary(parser *p, bool with_filter) {
    if (!enter(p)) return NULL;
    jtoken *tk = cur(p);
    jnode *n;
    if (is_op(tk, "-") || is_op(tk, "+")) {
        advance(p);
        jnode *operand = parse_unary(p, false);
        if (!operand) return NULL;
        n = node(p, is_op(tk, "-") ? N_NEG : N_POS, tk);
        if (!n) return NULL;
        n->a = operand;
    } else {
        n = parse_primary(p);
    }
    if (!n || !(n = parse_postfix(p, n))) return NULL;
    if (with_filter && !(n = parse_filter_expr(p, n))) return NULL;
    return leave(p, n);
}

static jnode *binop(parser *p, const jtoken *at, int op, jnode *a, jnode *b) {
    jnode *n = node(p, N_BINOP, at);
    if (!n) return NULL;
    n->op = op;
    n->a = a;
    n->b = b;
    return n;
}

static jnode *parse_pow(parser *p) {
    jnode *l = parse_unary(p, true);
    while (l && is_op(cur(p), "**")) {
        jtoken *at = cur(p);
        advance(p);
        jnode *r = parse_unary(p, true);
        l = r ? binop(p, at, OP_POW, l, r) : NULL;
    }
    return l;
}

static jnode *parse_math2(parser *p) {
    jnode *l = parse_pow(p);
    for (;;) {
        jtoken *at = cur(p);
        int op = is_op(at, "*") ? OP_MUL : is_op(at, "/") ? OP_DIV : is_op(at, "//") ? OP_FLOORDIV
               : is_op(at, "%") ? OP_MOD : -1;
        if (!l || op < 0) return l;
        advance(p);
        jnode *r = parse_pow(p);
        l = r ? binop(p, at, op, l, r) : NULL;
    }
}

static jnode *parse_concat(parser *p) {
    jtoken *at = cur(p);
    jnode *first = parse_math2(p);
    if (!first || !is_op(cur(p), "~")) return first;
    nodevec args = {0};
    if (nv_push(&args, first)) return NULL;
    while (is_op(cur(p), "~")) {
        advance(p);
        jnode *r = parse_math2(p);
        if (!r || nv_push(&args, r)) {
            free(args.v);
            return NULL;
        }
    }
    jnode *n = node(p, N_CONCAT, at);
    if (!n) {
        free(args.v);
        return NULL;
    }
    n->items = nv_finish(p, &args, &n->nitems);
    return n;
}

static jnode *parse_math1(parser *p) {
    jnode *l = parse_concat(p);
    for (;;) {
        jtoken *at = cur(p);
        int op = is_op(at, "+") ? OP_ADD : is_op(at, "-") ? OP_SUB : -1;
        if (!l || op < 0) return l;
        advance(p);
        jnode *r = parse_concat(p);
        l = r ? binop(p, at, op, l, r) : NULL;
    }
}

static jnode *parse_compare(parser *p) {
    jtoken *at = cur(p);
    jnode *first = parse_math1(p);
    if (!first) return NULL;
    nodevec operands = {0};
    int ops[64];
    for (;;) {
        jtoken *tk = cur(p);
        int op = -1;
        if (is_op(tk, "==")) op = CMP_EQ;
        else if (is_op(tk, "!=")) op = CMP_NE;
        else if (is_op(tk, "<")) op = CMP_LT;
        else if (is_op(tk, "<=")) op = CMP_LE;
        else if (is_op(tk, ">")) op = CMP_GT;
        else if (is_op(tk, ">=")) op = CMP_GE;
        else if (is_name(tk, "in")) op = CMP_IN;
        else if (is_name(tk, "not") && is_name(look(p), "in")) {
            op = CMP_NOTIN;
            advance(p);
        }
        if (op < 0) break;
        if (operands.n == 64) {
            free(operands.v);
            perr(p, tk, "comparison chain too long");
            return NULL;
        }
        advance(p);
        jnode *r = parse_math1(p);
        if (!r || nv_push(&operands, r)) {
            free(operands.v);
            return NULL;
        }
        ops[operands.n - 1] = op;
    }
    if (!operands.n) return first;
    jnode *n = node(p, N_COMPARE, at);
    if (!n) {
        free(operands.v);
        return NULL;
    }
    n->a = first;
    n->ops = jarena_alloc(p->t, operands.n * sizeof *n->ops);
    if (!n->ops) {
        free(operands.v);
        return NULL;
    }
    memcpy(n->ops, ops, operands.n * sizeof *ops);
    n->items = nv_finish(p, &operands, &n->nitems);
    return n;
}

static jnode *parse_not(parser *p) {
    jtoken *tk = cur(p);
    if (is_name(tk, "not")) {
        if (!enter(p)) return NULL;
        advance(p);
        jnode *operand = parse_not(p);
        if (!operand) return NULL;
        jnode *n = node(p, N_NOT, tk);
        if (!n) return NULL;
        n->a = operand;
        return leave(p, n);
    }
    return parse_compare(p);
}

static jnode *parse_and(parser *p) {
    jnode *l = parse_not(p);
    while (l && is_name(cur(p), "and")) {
        jtoken *at = cur(p);
        advance(p);
        jnode *r = parse_not(p);
        jnode *n = r ? node(p, N_AND, at) : NULL;
        if (!n) return NULL;
        n->a = l;
        n->b = r;
        l = n;
    }
    return l;
}

static jnode *parse_or(parser *p) {
    jnode *l = parse_and(p);
    while (l && is_name(cur(p), "or")) {
        jtoken *at = cur(p);
        advance(p);
        jnode *r = parse_and(p);
        jnode *n = r ? node(p, N_OR, at) : NULL;
        if (!n) return NULL;
        n->a = l;
        n->b = r;
        l = n;
    }
    return l;
}

static jnode *parse_condexpr(parser *p) {
    if (!enter(p)) return NULL;
    jnode *e1 = parse_or(p);
    while (e1 && is_name(cur(p), "if")) {
        jtoken *at = cur(p);
        advance(p);
        jnode *test = parse_or(p);
        if (!test) return NULL;
        jnode *e3 = NULL;
        if (is_name(cur(p), "else")) {
            advance(p);
            if (!(e3 = parse_condexpr(p))) return NULL;
        }
        jnode *n = node(p, N_CONDEXPR, at);
        if (!n) return NULL;
        n->a = test;
        n->b = e1;
        n->c = e3;
        e1 = n;
    }
    return e1 ? leave(p, e1) : NULL;
}

static jnode *parse_expression(parser *p, bool with_condexpr) {
    return with_condexpr ? parse_condexpr(p) : parse_or(p);
}

static bool is_tuple_end(parser *p, const char *extra_end) {
    jtoken *tk = cur(p);
    if (tk->kind == T_VAR_END || tk->kind == T_BLOCK_END || tk->kind == T_EOF || is_op(tk, ")"))
        return true;
    return extra_end && is_name(tk, extra_end);
}

static jnode *parse_tuple(parser *p, bool simplified, bool with_condexpr, const char *extra_end,
                          bool explicit_parens) {
    jtoken *at = cur(p);
    nodevec args = {0};
    bool is_tuple = false;
    for (;;) {
        if (args.n && expect_op(p, ",")) goto fail;
        if (is_tuple_end(p, extra_end)) break;
        jnode *e = simplified ? parse_primary(p) : parse_expression(p, with_condexpr);
        if (!e || nv_push(&args, e)) goto fail;
        if (is_op(cur(p), ",")) is_tuple = true;
        else break;
    }
    if (!is_tuple) {
        if (args.n) {
            jnode *e = args.v[0];
            free(args.v);
            return e;
        }
        if (!explicit_parens) {
            char b[80];
            perr(p, cur(p), "Expected an expression, got '%s'", tok_desc(cur(p), b, sizeof b));
            goto fail;
        }
    }
    jnode *t = node(p, N_TUPLE, at);
    if (!t) goto fail;
    t->items = nv_finish(p, &args, &t->nitems);
    return t;
fail:
    free(args.v);
    return NULL;
}

/* Assignment target: a name, a tuple of names, or (for set) namespace.attr. */
static jnode *parse_assign_target(parser *p, bool with_tuple, bool name_only, const char *extra_end,
                                  bool with_namespace) {
    jtoken *tk = cur(p);
    if (with_namespace && tk->kind == T_NAME && is_op(look(p), ".")) {
        advance(p);
        advance(p);
        jtoken *attr = cur(p);
        if (attr->kind != T_NAME) {
            perr(p, attr, "expected attribute name after '.'");
            return NULL;
        }
        advance(p);
        jnode *ns = node(p, N_NAME, tk), *g = node(p, N_GETATTR, attr);
        if (!ns || !g) return NULL;
        ns->name = tk->s;
        g->a = ns;
        g->name = attr->s;
        return g;
    }
    jnode *t;
    if (name_only) {
        if (tk->kind != T_NAME) {
            char b[80];
            perr(p, tk, "expected name, got '%s'", tok_desc(tk, b, sizeof b));
            return NULL;
        }
        t = node(p, N_NAME, tk);
        if (!t) return NULL;
        t->name = tk->s;
        advance(p);
    } else {
        t = with_tuple ? parse_tuple(p, true, true, extra_end, false) : parse_primary(p);
        if (!t) return NULL;
    }
    bool ok = t->kind == N_NAME;
    if (t->kind == N_TUPLE) {
        ok = t->nitems > 0;
        for (size_t i = 0; i < t->nitems; i++)
            if (t->items[i]->kind != N_NAME) ok = false;
    }
    if (!ok || (t->kind == N_NAME && (!strcmp(t->name, "true") || !strcmp(t->name, "false") ||
                                      !strcmp(t->name, "none")))) {
        perr(p, tk, "can't assign to this expression");
        return NULL;
    }
    return t;
}

/* ---- statements ------------------------------------------------------------------------- */

static int subparse(parser *p, const char *const *end_tags, size_t nend, const char *block,
                    jtoken *block_tok, nodevec *body);

/* Parses "...%}" body up to one of end_tags; leaves the parser at that tag's name (dropped
 * when drop is set). */
static int parse_statements(parser *p, const char *const *end_tags, size_t nend, bool drop,
                            const char *block, jtoken *block_tok, jnode ***items, size_t *nitems) {
    if (expect_kind(p, T_BLOCK_END, "end of statement block")) return -1;
    nodevec body = {0};
    if (subparse(p, end_tags, nend, block, block_tok, &body)) {
        free(body.v);
        return -1;
    }
    if (drop) advance(p);
    *items = nv_finish(p, &body, nitems);
    return 0;
}

static jnode *parse_statement(parser *p);

static jnode *parse_if(parser *p, jtoken *kw) {
    static const char *const ends[] = {"elif", "else", "endif"};
    jnode *n = node(p, N_IF, kw);
    if (!n || !(n->a = parse_tuple(p, false, false, NULL, false))) return NULL;
    if (parse_statements(p, ends, 3, false, "if", kw, &n->items, &n->nitems)) return NULL;
    jtoken *tk = cur(p);
    advance(p);
    if (is_name(tk, "elif")) {
        jnode *e = parse_if(p, tk);
        if (!e) return NULL;
        n->items2 = jarena_alloc(p->t, sizeof *n->items2);
        if (!n->items2) return NULL;
        n->items2[0] = e;
        n->nitems2 = 1;
    } else if (is_name(tk, "else")) {
        static const char *const endif[] = {"endif"};
        if (parse_statements(p, endif, 1, true, "if", kw, &n->items2, &n->nitems2)) return NULL;
    }
    return n;
}

static jnode *parse_for(parser *p, jtoken *kw) {
    static const char *const ends[] = {"endfor", "else"};
    static const char *const endfor[] = {"endfor"};
    jnode *n = node(p, N_FOR, kw);
    if (!n || !(n->a = parse_assign_target(p, true, false, "in", false))) return NULL;
    if (!is_name(cur(p), "in")) {
        char b[80];
        perr(p, cur(p), "expected 'in', got '%s'", tok_desc(cur(p), b, sizeof b));
        return NULL;
    }
    advance(p);
    if (!(n->b = parse_tuple(p, false, false, "recursive", false))) return NULL;
    if (is_name(cur(p), "if")) {
        advance(p);
        if (!(n->c = parse_expression(p, true))) return NULL;
    }
    if (is_name(cur(p), "recursive")) {
        perr(p, cur(p), "unsupported construct: recursive for loops");
        return NULL;
    }
    p->loops++;
    int rc = parse_statements(p, ends, 2, false, "for", kw, &n->items, &n->nitems);
    p->loops--;
    if (rc) return NULL;
    jtoken *tk = cur(p);
    advance(p);
    if (is_name(tk, "else") &&
        parse_statements(p, endfor, 1, true, "for", kw, &n->items2, &n->nitems2))
        return NULL;
    return n;
}

static jnode *parse_set(parser *p, jtoken *kw) {
    static const char *const ends[] = {"endset"};
    jnode *target = parse_assign_target(p, true, false, NULL, true);
    if (!target) return NULL;
    if (is_op(cur(p), "=")) {
        advance(p);
        jnode *n = node(p, N_SET, kw);
        if (!n) return NULL;
        n->a = target;
        if (!(n->b = parse_tuple(p, false, true, NULL, false))) return NULL;
        return n;
    }
    if (target->kind != N_NAME) {
        perr(p, kw, "unsupported construct: block set of a tuple or namespace attribute");
        return NULL;
    }
    jnode *n = node(p, N_SETBLOCK, kw);
    if (!n) return NULL;
    n->a = target;
    if (is_op(cur(p), "|") && !(n->b = parse_filter(p, NULL, false))) return NULL;
    if (parse_statements(p, ends, 1, true, "set", kw, &n->items, &n->nitems)) return NULL;
    return n;
}

static bool mentions_name(const jnode *n, const char *name, int depth);

static bool mentions_list(jnode *const *items, size_t k, const char *name, int depth) {
    for (size_t i = 0; i < k; i++)
        if (mentions_name(items[i], name, depth + 1)) return true;
    return false;
}

/* Whether a macro body refers to `name` (jinja2 lets a macro take extra positional or
 * keyword arguments only when its body uses varargs or kwargs). */
static bool mentions_name(const jnode *n, const char *name, int depth) {
    if (!n || depth > 2 * MAX_DEPTH) return false;
    if (n->kind == N_NAME && !strcmp(n->name, name)) return true;
    if (n->kind == N_MACRO) return false; /* a nested macro has its own */
    return mentions_name(n->a, name, depth + 1) || mentions_name(n->b, name, depth + 1) ||
           mentions_name(n->c, name, depth + 1) || mentions_list(n->items, n->nitems, name, depth) ||
           mentions_list(n->items2, n->nitems2, name, depth) || mentions_list(n->kwvals, n->nkw, name, depth);
}

static jnode *parse_macro(parser *p, jtoken *kw) {
    static const char *const ends[] = {"endmacro"};
    jnode *n = node(p, N_MACRO, kw);
    jtoken *name = cur(p);
    if (!n || name->kind != T_NAME) {
        if (n) perr(p, name, "expected macro name");
        return NULL;
    }
    n->name = name->s;
    advance(p);
    if (expect_op(p, "(")) return NULL;
    const char *params[64];
    nodevec defaults = {0};
    size_t np = 0;
    while (!is_op(cur(p), ")")) {
        if (np && expect_op(p, ",")) goto fail;
        jtoken *a = cur(p);
        if (a->kind != T_NAME) {
            perr(p, a, "expected parameter name");
            goto fail;
        }
        if (np == 64) {
            perr(p, a, "too many macro parameters");
            goto fail;
        }
        params[np++] = a->s;
        advance(p);
        if (is_op(cur(p), "=")) {
            advance(p);
            jnode *d = parse_expression(p, true);
            if (!d || nv_push(&defaults, d)) goto fail;
        } else if (defaults.n) {
            perr(p, a, "non-default argument follows default argument");
            goto fail;
        }
    }
    if (expect_op(p, ")")) goto fail;
    n->params = jarena_alloc(p->t, (np ? np : 1) * sizeof *n->params);
    if (!n->params) goto fail;
    memcpy(n->params, params, np * sizeof *params);
    n->nparams = np;
    n->items2 = nv_finish(p, &defaults, &n->nitems2);
    /* break/continue in a macro body do not reach the caller's loop */
    int saved = p->loops;
    p->loops = 0;
    int rc = parse_statements(p, ends, 1, true, "macro", kw, &n->items, &n->nitems);
    p->loops = saved;
    if (rc) return NULL;
    n->op = (mentions_list(n->items, n->nitems, "varargs", 0) ? 1 : 0) |
            (mentions_list(n->items, n->nitems, "kwargs", 0) ? 2 : 0);
    return n;
fail:
    free(defaults.v);
    return NULL;
}

static jnode *parse_with(parser *p, jtoken *kw) {
    static const char *const ends[] = {"endwith"};
    jnode *n = node(p, N_WITH, kw);
    if (!n) return NULL;
    const char *names[64];
    nodevec vals = {0};
    size_t nn = 0;
    while (cur(p)->kind != T_BLOCK_END) {
        if (nn && expect_op(p, ",")) goto fail;
        jtoken *a = cur(p);
        if (a->kind != T_NAME || nn == 64) {
            perr(p, a, "unsupported construct: 'with' target must be a name");
            goto fail;
        }
        names[nn++] = a->s;
        advance(p);
        if (expect_op(p, "=")) goto fail;
        jnode *v = parse_expression(p, true);
        if (!v || nv_push(&vals, v)) goto fail;
    }
    n->params = jarena_alloc(p->t, (nn ? nn : 1) * sizeof *n->params);
    if (!n->params) goto fail;
    memcpy(n->params, names, nn * sizeof *names);
    n->nparams = nn;
    n->items2 = nv_finish(p, &vals, &n->nitems2);
    return parse_statements(p, ends, 1, true, "with", kw, &n->items, &n->nitems) ? NULL : n;
fail:
    free(vals.v);
    return NULL;
}

/* Tags that only wrap a body here: {% generation %} (transformers' assistant-mask marker)
 * and {% block %} (which renders in place in a template that extends nothing). */
static jnode *parse_wrapper(parser *p, jtoken *kw, const char *end) {
    const char *ends[] = {end};
    if (!strcmp(kw->s, "block")) {
        if (cur(p)->kind != T_NAME) {
            perr(p, cur(p), "expected block name");
            return NULL;
        }
        advance(p);
        while (is_name(cur(p), "scoped") || is_name(cur(p), "required")) advance(p);
    }
    jnode *n = node(p, N_BODY, kw);
    if (!n || parse_statements(p, ends, 1, true, kw->s, kw, &n->items, &n->nitems)) return NULL;
    if (!strcmp(kw->s, "block") && cur(p)->kind == T_NAME) advance(p);
    return n;
}

static jnode *parse_statement(parser *p) {
    jtoken *kw = cur(p);
    if (kw->kind != T_NAME) {
        perr(p, kw, "tag name expected");
        return NULL;
    }
    if (!enter(p)) return NULL;
    advance(p);
    const char *s = kw->s;
    jnode *n = NULL;
    if (!strcmp(s, "if")) n = parse_if(p, kw);
    else if (!strcmp(s, "for")) n = parse_for(p, kw);
    else if (!strcmp(s, "set")) n = parse_set(p, kw);
    else if (!strcmp(s, "macro")) n = parse_macro(p, kw);
    else if (!strcmp(s, "with")) n = parse_with(p, kw);
    else if (!strcmp(s, "generation")) n = parse_wrapper(p, kw, "endgeneration");
    else if (!strcmp(s, "block")) n = parse_wrapper(p, kw, "endblock");
    else if (!strcmp(s, "print")) {
        n = node(p, N_PRINT, kw);
        if (n && !(n->a = parse_tuple(p, false, true, NULL, false))) n = NULL;
    } else if (!strcmp(s, "filter")) {
        static const char *const ends[] = {"endfilter"};
        n = node(p, N_FILTERBLOCK, kw);
        if (n && !(n->b = parse_filter(p, NULL, true))) n = NULL;
        if (n && parse_statements(p, ends, 1, true, "filter", kw, &n->items, &n->nitems)) n = NULL;
    } else if (!strcmp(s, "break") || !strcmp(s, "continue")) {
        if (!p->loops) {
            perr(p, kw, "'%s' outside of a loop", s);
            return NULL;
        }
        n = node(p, s[0] == 'b' ? N_BREAK : N_CONTINUE, kw);
    } else if (!strcmp(s, "call") || !strcmp(s, "include") || !strcmp(s, "import") ||
               !strcmp(s, "from") || !strcmp(s, "extends") || !strcmp(s, "autoescape") ||
               !strcmp(s, "do") || !strcmp(s, "trans")) {
        perr(p, kw, "unsupported tag '%s'", s);
        return NULL;
    } else {
        perr(p, kw, "unknown tag '%s'", s);
        return NULL;
    }
    return n ? leave(p, n) : NULL;
}

static int subparse(parser *p, const char *const *end_tags, size_t nend, const char *block,
                    jtoken *block_tok, nodevec *body) {
    for (;;) {
        jtoken *tk = cur(p);
        if (tk->kind == T_EOF) {
            if (!nend) return 0;
            char want[160] = "";
            for (size_t i = 0; i < nend; i++) {
                size_t l = strlen(want);
                snprintf(want + l, sizeof want - l, "%s'%s'", i ? " or " : "", end_tags[i]);
            }
            return perr(p, block_tok, "unexpected end of template: '%s' is never closed (expected %s)",
                        block, want);
        }
        if (tk->kind == T_DATA) {
            jnode *n = node(p, N_TEXT, tk);
            if (!n) return -1;
            n->value = jv_strn(tk->s, tk->len);
            if (n->value.kind != JV_STR || keep_const(p, n->value) || nv_push(body, n)) return -1;
            advance(p);
        } else if (tk->kind == T_VAR_BEGIN) {
            advance(p);
            jnode *e = parse_tuple(p, false, true, NULL, false);
            if (!e) return -1;
            jnode *n = node(p, N_PRINT, tk);
            if (!n) return -1;
            n->a = e;
            if (nv_push(body, n) || expect_kind(p, T_VAR_END, "end of print statement")) return -1;
        } else if (tk->kind == T_BLOCK_BEGIN) {
            advance(p);
            jtoken *name = cur(p);
            for (size_t i = 0; i < nend; i++)
                if (is_name(name, end_tags[i])) return 0;
            if (name->kind == T_NAME && (!strncmp(name->s, "end", 3) || !strcmp(name->s, "else") ||
                                         !strcmp(name->s, "elif"))) {
                if (block)
                    return perr(p, name, "unexpected '%s' inside '%s' (opened at %d:%d)", name->s,
                                block, block_tok->line, block_tok->col);
                return perr(p, name, "unexpected '%s'", name->s);
            }
            jnode *n = parse_statement(p);
            if (!n || nv_push(body, n) || expect_kind(p, T_BLOCK_END, "end of statement block"))
                return -1;
        } else {
            char b[80];
            return perr(p, tk, "unexpected '%s'", tok_desc(tk, b, sizeof b));
        }
    }
}

/* ---- compile ---------------------------------------------------------------------------- */

static void template_free_arena(jinja_template *t) {
    jarena_block *b = t->arena;
    while (b) {
        jarena_block *next = b->next;
        free(b);
        b = next;
    }
}

static jinja_template *compile(const char *src, size_t len, const char *name);

/* Float literals parse with '.' whatever locale the host program chose (see jinja_render). */
jinja_template *jinja_compile(const char *src, size_t len, const char *name) {
    locale_t c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    locale_t prev = c_locale ? uselocale(c_locale) : (locale_t)0;
    jinja_template *t = compile(src, len, name);
    if (c_locale) {
        uselocale(prev);
        freelocale(c_locale);
    }
    return t;
}

static jinja_template *compile(const char *src, size_t len, const char *name) {
    jinja_template *t = calloc(1, sizeof *t);
    if (!t) {
        om_errorf("out of memory");
        return NULL;
    }
    t->name = strdup(name ? name : "template");
    if (!t->name) {
        free(t);
        om_errorf("out of memory");
        return NULL;
    }
    jtoken *toks = NULL;
    size_t ntoks = 0;
    if (jinja_lex(t, src, len, &toks, &ntoks)) {
        jinja_template_free(t);
        return NULL;
    }
    parser p = {.t = t, .toks = toks, .ntoks = ntoks};
    nodevec body = {0};
    int rc = subparse(&p, NULL, 0, NULL, NULL, &body);
    jnode *root = rc ? NULL : node(&p, N_BODY, &toks[0]);
    if (root) root->items = nv_finish(&p, &body, &root->nitems);
    free(body.v);
    free(toks);
    /* the constants' references are handed to the template as one list */
    t->consts = p.consts;
    t->nconsts = p.nconsts;
    if (!root) {
        jinja_template_free(t);
        return NULL;
    }
    t->root = root;
    return t;
}

void jinja_template_free(jinja_template *t) {
    if (!t) return;
    for (size_t i = 0; i < t->nconsts; i++) free(t->consts[i].u.s);
    free(t->consts);
    template_free_arena(t);
    free(t->name);
    free(t);
}
