/* Internals of the Jinja interpreter shared by its files (jinja_value.c, jinja_lexer.c,
 * jinja_parser.c, jinja_eval.c, jinja_builtins.c): the value model, the AST and the render
 * context. Nothing outside src/core/jinja*.c includes this; the public surface is jinja.h.
 *
 * Values follow Python's semantics because the reference is jinja2 running on CPython:
 * strings are immutable UTF-8 with code-point indexing, dicts keep insertion order, ints are
 * 64-bit (overflow is an error rather than a silent wrap), and jinja2's Undefined is a value
 * of its own that carries the message it raises when it is used in a way that fails. */
#ifndef OM_JINJA_INTERNAL_H
#define OM_JINJA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/jinja.h"

/* ---- values ---------------------------------------------------------------------------- */

typedef enum {
    JV_UNDEFINED,
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST, /* also tuples: jlist.is_tuple */
    JV_DICT,
    JV_NS,   /* namespace(): a mutable dict reached through attributes */
    JV_FUNC, /* builtin function, bound method or macro */
    JV_LOOP, /* the `loop` variable of a for loop */
} jv_kind;

typedef struct jstr jstr;
typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jfunc jfunc;
typedef struct jloop jloop;

typedef struct jv {
    jv_kind kind;
    union {
        bool b;
        int64_t i;
        double f;
        jstr *s;    /* JV_STR; for JV_UNDEFINED the message it raises (may be NULL) */
        jlist *l;
        jdict *d;   /* JV_DICT and JV_NS */
        jfunc *fn;
        jloop *loop;
    } u;
} jv;

struct jstr {
    int32_t rc;
    bool ascii;  /* all bytes < 0x80: code-point index == byte index */
    size_t len;  /* bytes, excluding the NUL that always follows */
    char data[];
};

/* What a list stands for when it is not a plain list: dict views print and behave as
 * their own types (dict_keys([...]) is not indexable and not JSON serializable); a group
 * from the groupby filter is a tuple whose items are also .grouper and .list. */
typedef enum { JL_LIST, JL_KEYS, JL_VALUES, JL_ITEMS, JL_GROUP } jlist_view;
#define JL_IS_DICT_VIEW(l) ((l)->view >= JL_KEYS && (l)->view <= JL_ITEMS)

struct jlist {
    int32_t rc;
    bool is_tuple;
    uint8_t view; /* jlist_view */
    size_t n, cap;
    jv *items;
};

struct jdict {
    int32_t rc;
    size_t n, cap;
    jv *keys;
    jv *vals;
};

typedef struct jscope jscope;
typedef struct jnode jnode;

typedef enum { JF_BUILTIN, JF_METHOD, JF_MACRO, JF_LOOP_METHOD } jfunc_kind;

struct jfunc {
    int32_t rc;
    jfunc_kind kind;
    int id;           /* builtin or method id */
    const char *name; /* for messages */
    jv self;          /* JF_METHOD: the object; JF_LOOP_METHOD: the loop */
    const jnode *macro;
    jscope *closure;  /* JF_MACRO: scope the macro was defined in (held) */
};

struct jloop {
    int32_t rc;
    int64_t index0, length, depth;
    jlist *items;   /* the (filtered) sequence being iterated, for previtem/nextitem */
    jv last_changed; /* loop.changed() state; JV_UNDEFINED before the first call */
};

/* Constructors return owned references; the ones that allocate return a value of kind
 * JV_UNDEFINED with u.s == NULL and set the error when allocation fails or a size limit is
 * hit, so callers test with jv_failed(). */
jv jv_undef(void);
jv jv_undef_msg(jstr *msg); /* takes ownership */
jv jv_none(void);
jv jv_bool(bool b);
jv jv_int(int64_t i);
jv jv_float(double f);
jv jv_str(jstr *s); /* takes ownership */

jv jv_retain(jv v);
void jv_release(jv v);
bool jv_is_heap(jv v);

/* Strings. The allocation limit (jstr_set_limit, per thread) turns runaway templates that
 * build huge strings into an error instead of exhausting memory. */
void jstr_set_limit(size_t max_bytes);
jstr *jstr_alloc(size_t len); /* data uninitialized except the final NUL; NULL + error on failure */
jstr *jstr_new(const char *s, size_t len);
jstr *jstr_cstr(const char *s);
void jstr_finish(jstr *s); /* recompute the ascii flag after filling data */
jstr *jstr_retain(jstr *s);
void jstr_release(jstr *s);
size_t jstr_cplen(const jstr *s); /* length in code points */
jv jv_strn(const char *s, size_t len);
jv jv_cstr(const char *s);

/* Lists and dicts. Appending takes ownership of the value. */
jlist *jlist_new(size_t cap);
int jlist_push(jlist *l, jv v);
jv jv_list(jlist *l); /* takes ownership */
jdict *jdict_new(void);
int jdict_set(jdict *d, jv key, jv val); /* takes ownership of both; replaces in place */
int jdict_set_str(jdict *d, const char *key, jv val);
jv *jdict_get_str(const jdict *d, const char *key, size_t klen); /* borrowed; NULL if absent */
jv *jdict_get(const jdict *d, jv key); /* borrowed; NULL if absent */
void jdict_clear(jdict *d);

/* Python semantics. */
bool jv_truthy(jv v);
bool jv_equal(jv a, jv b);
/* Three-way comparison for <, <=, >, >= and sorting; returns -2 with the error set when the
 * two types are not orderable (TypeError in Python). op names the operator for the message. */
int jv_compare(jv a, jv b, const char *op, int *out);
const char *jv_type_name(jv v);  /* Python's type name: 'str', 'int', 'dict', ... */
const char *jv_object_repr(jv v); /* jinja2's object_type_repr: 'dict object', 'None', ... */

/* A growable byte buffer, also the render output. */
typedef struct {
    char *p;
    size_t len, cap;
    size_t max; /* 0: unlimited */
} jbuf;
int jbuf_put(jbuf *b, const char *s, size_t n);
int jbuf_putc(jbuf *b, char c);
int jbuf_printf(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void jbuf_free(jbuf *b);
jstr *jbuf_to_str(jbuf *b); /* consumes the buffer */

/* str(v) and repr(v) as Python prints them; append to the buffer. */
int jv_write_str(jbuf *b, jv v);
int jv_write_repr(jbuf *b, jv v);
jstr *jv_to_str(jv v); /* str(v) as a new string (shares v's string when it is one) */
void jv_format_float(double f, char *out, size_t cap); /* Python repr(float) */

/* json.dumps(v, ensure_ascii, indent, separators, sort_keys) as transformers' tojson. */
typedef struct {
    bool ensure_ascii;
    bool sort_keys;
    const char *indent; /* NULL: no newlines */
    size_t indent_len;
    const char *item_sep, *key_sep;
    size_t item_sep_len, key_sep_len;
} jjson_opts;
int jv_write_json(jbuf *b, jv v, const jjson_opts *o);

/* cJSON -> value (deep copy). Integral numbers become ints: cJSON does not keep whether the
 * text was "1" or "1.0". */
jv jv_from_cjson(const cJSON *j);

/* UTF-8 helpers. */
int utf8_decode(const char *s, size_t len, size_t *pos); /* code point, advances pos; U+FFFD on bad byte */
size_t utf8_encode(uint32_t cp, char out[4]);
bool py_isspace(uint32_t cp); /* Python str.isspace() for one code point */

/* ---- AST -------------------------------------------------------------------------------- */

typedef enum {
    /* expressions */
    N_CONST, N_NAME, N_GETATTR, N_GETITEM, N_SLICE, N_CALL, N_FILTER, N_TEST,
    N_NEG, N_POS, N_NOT, N_AND, N_OR, N_BINOP, N_CONCAT, N_COMPARE, N_CONDEXPR,
    N_LIST, N_TUPLE, N_DICT,
    /* statements */
    N_TEXT, N_PRINT, N_IF, N_FOR, N_SET, N_SETBLOCK, N_MACRO, N_FILTERBLOCK, N_WITH,
    N_BREAK, N_CONTINUE, N_BODY,
} jnode_kind;

typedef enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW } jbinop;
typedef enum { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE, CMP_IN, CMP_NOTIN } jcmpop;

struct jnode {
    jnode_kind kind;
    int line, col;
    int op;           /* jbinop / jcmpop / negated test / for: recursive */
    const char *name; /* NUL-terminated, owned by the template arena */
    jv value;         /* N_CONST, N_TEXT (a JV_STR) */
    jnode *a, *b, *c; /* operands; meaning depends on kind (see jinja_parser.c) */
    jnode **items;    /* arguments, list items, statement bodies, compare operands */
    size_t nitems;
    jnode **items2;   /* else bodies, dict values, macro parameter defaults */
    size_t nitems2;
    const char **kwnames; /* keyword argument names (parallel to kwvals) */
    jnode **kwvals;
    size_t nkw;
    int *ops;         /* N_COMPARE: one jcmpop per operand after the first */
    const char **params; /* N_MACRO parameter names */
    size_t nparams;
};

/* A template owns its source (newline-normalized), its tokens' decoded strings and its
 * nodes; everything lives in one arena freed with the template. */
typedef struct jarena_block jarena_block;
struct jinja_template {
    char *name; /* for messages: "chat template" */
    jarena_block *arena;
    jnode *root; /* N_BODY */
    jv *consts;  /* string constants referenced by nodes, released with the template */
    size_t nconsts;
};

void *jarena_alloc(jinja_template *t, size_t n);
char *jarena_strdup(jinja_template *t, const char *s, size_t n);

/* ---- lexer ------------------------------------------------------------------------------ */

typedef enum {
    T_EOF, T_DATA, T_VAR_BEGIN, T_VAR_END, T_BLOCK_BEGIN, T_BLOCK_END,
    T_NAME, T_STRING, T_INT, T_FLOAT, T_OP,
} jtok_kind;

typedef struct {
    jtok_kind kind;
    int line, col;
    const char *s; /* T_DATA, T_NAME, T_STRING (decoded), T_OP: the text; NUL-terminated */
    size_t len;
    int64_t i;
    double f;
} jtoken;

/* Tokenizes with jinja2's default delimiters and transformers' trim_blocks/lstrip_blocks.
 * The token array and its strings live in the template arena. */
int jinja_lex(jinja_template *t, const char *src, size_t len, jtoken **toks, size_t *ntoks);

/* ---- evaluation ------------------------------------------------------------------------- */

typedef struct jctx jctx;

/* Builtin globals (range, namespace, dict, raise_exception, strftime_now, ...). */
typedef enum {
    BI_RANGE, BI_NAMESPACE, BI_DICT, BI_RAISE, BI_STRFTIME,
} jbuiltin;

/* Call arguments as evaluated: positional then keyword. */
typedef struct {
    jv *pos;
    size_t npos;
    const char **kwnames;
    jv *kw;
    size_t nkw;
} jargs;

/* Reports a runtime error located at node n: "<template name> L:C: message"; returns -1. */
int jctx_error(jctx *c, const jnode *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The error an Undefined raises when it is used (its message, or a generic one). */
int jctx_undefined_error(jctx *c, const jnode *n, jv u);
/* Calls a callable value (macro, builtin, bound method) with evaluated arguments. */
int jctx_call_value(jctx *c, const jnode *n, jv fn, jargs *a, jv *out);
/* jinja2's getattr/getitem as the sandbox does them (attribute first vs. item first). */
int jctx_getattr(jctx *c, const jnode *n, jv obj, const char *name, jv *out);
int jctx_getitem(jctx *c, const jnode *n, jv obj, jv key, jv *out);
/* Iterates a value as Python's iter() would into a fresh list (dict -> keys, str -> chars,
 * undefined -> empty); errors for non-iterables. */
int jctx_to_list(jctx *c, const jnode *n, jv v, jlist **out);
void jctx_track_namespace(jctx *c, jdict *d);

/* Filters, tests, methods and builtin functions (jinja_builtins.c). Each returns 0 with an
 * owned *out, or -1 with the error set. `unknown` is set (and -1 returned without an error)
 * when the name does not exist, so the caller can report it at the right position. */
int jinja_filter(jctx *c, const jnode *n, const char *name, jv v, jargs *a, jv *out, bool *unknown);
bool jinja_filter_exists(const char *name);
int jinja_test(jctx *c, const jnode *n, const char *name, jv v, jargs *a, bool *out, bool *unknown);
bool jinja_test_exists(const char *name);
/* Method lookup: the id of `name` on v's type, or -1. unsafe is set for the mutating list and
 * dict methods the immutable sandbox refuses. */
int jinja_method_id(jv v, const char *name, bool *unsafe);
int jinja_call_method(jctx *c, const jnode *n, jv self, int id, jargs *a, jv *out);
const char *jinja_method_name(int id);
int jinja_call_builtin(jctx *c, const jnode *n, int id, jargs *a, jv *out);
int jinja_loop_attr(jctx *c, const jnode *n, jloop *l, const char *name, jv *out);
int jinja_call_loop_method(jctx *c, const jnode *n, jloop *l, int id, jargs *a, jv *out);

/* Binds evaluated arguments to named parameters (has_default false: required), borrowing
 * the values into slots; given[i] tells which were passed. Used by filters and methods so
 * that keyword arguments work as in Python. */
typedef struct {
    const char *name;
    bool has_default;
} jparam;
int jargs_bind(jctx *c, const jnode *n, const char *fname, const jparam *params, size_t nparams,
               jargs *a, jv *slots, bool *given);

/* Python's str % args (also the format filter). */
int jinja_percent_format(jctx *c, const jnode *n, jv fmt, jv args, jv *out);
/* Releases a scope (macros hold the scope they were defined in). */
void jscope_release(jscope *s);

/* The state of one render. */
struct jctx {
    const jinja_template *t;
    jbuf *out;
    jscope *scope;
    jinja_limits lim;
    int depth;            /* macro call depth */
    uint64_t iterations;  /* loop iterations and macro calls so far */
    jdict **namespaces;   /* every namespace created, cleared at the end to break cycles */
    size_t nns, capns;
    bool raised;          /* the error came from raise_exception: message as is */
};

#endif
