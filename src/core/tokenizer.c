/* The tokenizer's front: loading tokenizer.json (+ tokenizer_config.json), the encode
 * pipeline and the public functions of tokenizer.h.
 *
 * Encode follows Hugging Face's TokenizerImpl::encode step by step:
 *   1. added tokens that are not `normalized` are cut out of the raw text;
 *   2. each remaining piece is normalized on its own, then `normalized` added tokens are cut
 *      out of the result;
 *   3. the pre-tokenizers split each piece further (depth first here, which gives the same
 *      pieces as HF's breadth-first passes because every step splits a piece independently);
 *   4. BPE turns each final piece into ids; the post-processor adds template ids.
 * Empty pieces are dropped after every split, as HF does. */
#include "core/tokenizer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/tokenizer_internal.h"

/* The pattern HF's ByteLevel pre-tokenizer uses when use_regex is on. */
static const char GPT2_PATTERN[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ---- small JSON helpers ---------------------------------------------------------------------- */

static const cJSON *jget(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = jget(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int jbool(const cJSON *o, const char *k, int dflt) {
    const cJSON *v = jget(o, k);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return dflt;
}

/* A token id from JSON: a whole number in int32 range (checked before any cast). */
static int json_id(const cJSON *v, int32_t *id) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 2147483647.0) ||
        v->valuedouble != (double)(int32_t)v->valuedouble)
        return 0;
    *id = (int32_t)v->valuedouble;
    return 1;
}

/* A small count from JSON (Strip's start/stop); 0 when absent or not a number. */
static size_t json_count(const cJSON *v) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0)) return 0;
    return v->valuedouble > 1e6 ? 1000000 : (size_t)v->valuedouble;
}

static char *dupn(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* A single character given as a JSON string (Metaspace replacement, Strip content). */
static int one_char(const char *s, const char *path, char out[8], int *len, uint32_t *cp) {
    size_t n = s ? strlen(s) : 0;
    if (!n || tk_utf8_valid_prefix(s, n) != n || (size_t)tk_utf8_len((unsigned char)s[0]) != n)
        return om_errorf("tokenizer.json: %s must be a single character", path);
    memcpy(out, s, n);
    out[n] = 0;
    *len = (int)n;
    tk_utf8_decode(s, cp);
    return 0;
}

/* {"String": "..."} or {"Regex": "..."} */
static int parse_pattern(const cJSON *pat, const char *path, tk_regex *re, int *literal, char **lit, size_t *lit_len) {
    const char *s;
    int is_lit;
    if ((s = jstr(pat, "String"))) is_lit = 1;
    else if ((s = jstr(pat, "Regex"))) is_lit = 0;
    else return om_errorf("tokenizer.json: %s.pattern must be {\"String\": ...} or {\"Regex\": ...}", path);
    if (literal) *literal = is_lit;
    if (lit) {
        *lit = dupn(s, strlen(s));
        if (!*lit) return om_errorf("tokenizer: out of memory");
        *lit_len = strlen(s);
    }
    char where[300];
    snprintf(where, sizeof where, "%s.pattern", path);
    return tk_regex_compile(re, s, strlen(s), is_lit, where);
}

/* ---- normalizers ------------------------------------------------------------------------------ */

static int add_normalizer(om_tokenizer *t, tk_normalizer nz) {
    tk_normalizer *p = realloc(t->norms, (t->n_norms + 1) * sizeof *p);
    if (!p) return om_errorf("tokenizer: out of memory");
    t->norms = p;
    t->norms[t->n_norms++] = nz;
    return 0;
}

static int parse_normalizer(om_tokenizer *t, const cJSON *j, const char *path) {
    if (cJSON_IsNull(j) || !j) return 0;
    const char *type = jstr(j, "type");
    if (!type) return om_errorf("tokenizer.json: %s has no type", path);
    tk_normalizer nz;
    memset(&nz, 0, sizeof nz);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = jget(j, "normalizers");
        if (!cJSON_IsArray(list)) return om_errorf("tokenizer.json: %s.normalizers must be an array", path);
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, list) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.normalizers[%d]", path, i++);
            if (parse_normalizer(t, it, sub)) return -1;
        }
        return 0;
    }
    if (!strcmp(type, "NFC")) nz.kind = TK_NORM_NFC;
    else if (!strcmp(type, "NFD")) nz.kind = TK_NORM_NFD;
    else if (!strcmp(type, "NFKC")) nz.kind = TK_NORM_NFKC;
    else if (!strcmp(type, "NFKD")) nz.kind = TK_NORM_NFKD;
    else if (!strcmp(type, "Lowercase")) nz.kind = TK_NORM_LOWERCASE;
    else if (!strcmp(type, "StripAccents")) nz.kind = TK_NORM_STRIP_ACCENTS;
    else if (!strcmp(type, "ByteLevel")) nz.kind = TK_NORM_BYTELEVEL;
    else if (!strcmp(type, "Strip")) {
        nz.kind = TK_NORM_STRIP;
        nz.left = jbool(j, "strip_left", 1);
        nz.right = jbool(j, "strip_right", 1);
    } else if (!strcmp(type, "Prepend")) {
        const char *s = jstr(j, "prepend");
        if (!s) return om_errorf("tokenizer.json: %s.prepend must be a string", path);
        nz.kind = TK_NORM_PREPEND;
        nz.str = dupn(s, strlen(s));
        nz.str_len = strlen(s);
        if (!nz.str) return om_errorf("tokenizer: out of memory");
    } else if (!strcmp(type, "Replace")) {
        const char *c = jstr(j, "content");
        if (!c) return om_errorf("tokenizer.json: %s.content must be a string", path);
        nz.kind = TK_NORM_REPLACE;
        if (parse_pattern(jget(j, "pattern"), path, &nz.re, NULL, NULL, NULL)) return -1;
        nz.str = dupn(c, strlen(c));
        nz.str_len = strlen(c);
        if (!nz.str) {
            tk_regex_free(&nz.re);
            return om_errorf("tokenizer: out of memory");
        }
    } else {
        return om_errorf("tokenizer.json: unsupported normalizer type '%s' (at %s)", type, path);
    }
    if (add_normalizer(t, nz)) {
        free(nz.str);
        tk_regex_free(&nz.re);
        return -1;
    }
    return 0;
}

/* ---- pre-tokenizers --------------------------------------------------------------------------------- */

static int add_pretok(om_tokenizer *t, tk_pretok p) {
    tk_pretok *q = realloc(t->pretoks, (t->n_pretoks + 1) * sizeof *q);
    if (!q) return om_errorf("tokenizer: out of memory");
    t->pretoks = q;
    t->pretoks[t->n_pretoks++] = p;
    return 0;
}

static int parse_prepend_scheme(const cJSON *j, const char *path, int *scheme) {
    const char *ps = jstr(j, "prepend_scheme");
    *scheme = TK_PREPEND_ALWAYS;
    if (ps) {
        if (!strcmp(ps, "always")) *scheme = TK_PREPEND_ALWAYS;
        else if (!strcmp(ps, "first")) *scheme = TK_PREPEND_FIRST;
        else if (!strcmp(ps, "never")) *scheme = TK_PREPEND_NEVER;
        else return om_errorf("tokenizer.json: %s.prepend_scheme '%s' is not always/first/never", path, ps);
    }
    /* the older add_prefix_space=false means never */
    const cJSON *aps = jget(j, "add_prefix_space");
    if (cJSON_IsFalse(aps)) *scheme = TK_PREPEND_NEVER;
    return 0;
}

static int parse_pretok(om_tokenizer *t, const cJSON *j, const char *path) {
    if (cJSON_IsNull(j) || !j) return 0;
    const char *type = jstr(j, "type");
    if (!type) return om_errorf("tokenizer.json: %s has no type", path);
    tk_pretok p;
    memset(&p, 0, sizeof p);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = jget(j, "pretokenizers");
        if (!cJSON_IsArray(list)) return om_errorf("tokenizer.json: %s.pretokenizers must be an array", path);
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, list) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.pretokenizers[%d]", path, i++);
            if (parse_pretok(t, it, sub)) return -1;
        }
        return 0;
    }
    if (!strcmp(type, "Split")) {
        p.kind = TK_PT_SPLIT;
        const char *b = jstr(j, "behavior");
        if (!b) return om_errorf("tokenizer.json: %s.behavior must be a string", path);
        if (!strcmp(b, "Removed")) p.behavior = TK_SPLIT_REMOVED;
        else if (!strcmp(b, "Isolated")) p.behavior = TK_SPLIT_ISOLATED;
        else if (!strcmp(b, "MergedWithPrevious")) p.behavior = TK_SPLIT_MERGED_PREV;
        else if (!strcmp(b, "MergedWithNext")) p.behavior = TK_SPLIT_MERGED_NEXT;
        else if (!strcmp(b, "Contiguous")) p.behavior = TK_SPLIT_CONTIGUOUS;
        else return om_errorf("tokenizer.json: unsupported split behavior '%s' (at %s.behavior)", b, path);
        p.invert = jbool(j, "invert", 0);
        if (parse_pattern(jget(j, "pattern"), path, &p.re, NULL, NULL, NULL)) return -1;
        p.has_re = 1;
    } else if (!strcmp(type, "ByteLevel")) {
        p.kind = TK_PT_BYTELEVEL;
        p.add_prefix_space = jbool(j, "add_prefix_space", 1);
        p.use_regex = jbool(j, "use_regex", 1);
        if (p.use_regex) {
            char where[300];
            snprintf(where, sizeof where, "%s (ByteLevel regex)", path);
            if (tk_regex_compile(&p.re, GPT2_PATTERN, strlen(GPT2_PATTERN), 0, where)) return -1;
            p.has_re = 1;
        }
    } else if (!strcmp(type, "Metaspace")) {
        p.kind = TK_PT_METASPACE;
        char sub[300];
        snprintf(sub, sizeof sub, "%s.replacement", path);
        if (one_char(jstr(j, "replacement"), sub, p.repl, &p.repl_len, &p.repl_cp)) return -1;
        if (parse_prepend_scheme(j, path, &p.prepend_scheme)) return -1;
        p.split = jbool(j, "split", 1);
    } else if (!strcmp(type, "Digits")) {
        p.kind = TK_PT_DIGITS;
        p.individual_digits = jbool(j, "individual_digits", 0);
    } else if (!strcmp(type, "WhitespaceSplit")) {
        p.kind = TK_PT_WHITESPACE_SPLIT;
    } else {
        return om_errorf("tokenizer.json: unsupported pre_tokenizer type '%s' (at %s)", type, path);
    }
    if (add_pretok(t, p)) {
        if (p.has_re) tk_regex_free(&p.re);
        return -1;
    }
    return 0;
}

/* ---- decoders ----------------------------------------------------------------------------------------- */

static void decoder_free(tk_decoder *d) {
    tk_regex_free(&d->re);
    free(d->pattern);
    free(d->content);
}

static int parse_decoder(om_tokenizer *t, const cJSON *j, const char *path) {
    if (cJSON_IsNull(j) || !j) return 0;
    const char *type = jstr(j, "type");
    if (!type) return om_errorf("tokenizer.json: %s has no type", path);
    t->has_decoder = 1;
    tk_decoder d;
    memset(&d, 0, sizeof d);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = jget(j, "decoders");
        if (!cJSON_IsArray(list)) return om_errorf("tokenizer.json: %s.decoders must be an array", path);
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, list) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.decoders[%d]", path, i++);
            if (parse_decoder(t, it, sub)) return -1;
        }
        return 0;
    }
    int rc = 0;
    if (!strcmp(type, "ByteLevel")) d.kind = TK_DEC_BYTELEVEL;
    else if (!strcmp(type, "ByteFallback")) d.kind = TK_DEC_BYTEFALLBACK;
    else if (!strcmp(type, "Fuse")) d.kind = TK_DEC_FUSE;
    else if (!strcmp(type, "Replace")) {
        d.kind = TK_DEC_REPLACE;
        const char *c = jstr(j, "content");
        if (!c) return om_errorf("tokenizer.json: %s.content must be a string", path);
        rc = parse_pattern(jget(j, "pattern"), path, &d.re, &d.literal, &d.pattern, &d.pattern_len);
        if (!rc && !(d.content = dupn(c, strlen(c)))) rc = om_errorf("tokenizer: out of memory");
        d.content_len = strlen(c);
    } else if (!strcmp(type, "Strip")) {
        d.kind = TK_DEC_STRIP;
        char sub[300];
        snprintf(sub, sizeof sub, "%s.content", path);
        char ch[8];
        int l = 0;
        rc = one_char(jstr(j, "content"), sub, ch, &l, &d.content_cp);
        if (!rc && !(d.content = dupn(ch, (size_t)l))) rc = om_errorf("tokenizer: out of memory");
        d.content_len = (size_t)l;
        const cJSON *a = jget(j, "start"), *b = jget(j, "stop");
        d.start = json_count(a);
        d.stop = json_count(b);
    } else if (!strcmp(type, "Metaspace")) {
        d.kind = TK_DEC_METASPACE;
        char sub[300];
        snprintf(sub, sizeof sub, "%s.replacement", path);
        rc = one_char(jstr(j, "replacement"), sub, d.repl, &d.repl_len, &d.repl_cp);
        if (!rc) rc = parse_prepend_scheme(j, path, &d.prepend_scheme);
    } else if (!strcmp(type, "BPEDecoder")) {
        d.kind = TK_DEC_BPE;
        const char *s = jstr(j, "suffix");
        if (!s) s = "</w>";
        if (!(d.pattern = dupn(s, strlen(s)))) rc = om_errorf("tokenizer: out of memory");
        d.pattern_len = strlen(s);
    } else {
        return om_errorf("tokenizer.json: unsupported decoder type '%s' (at %s)", type, path);
    }
    if (!rc) {
        tk_decoder *p = realloc(t->decs, (t->n_decs + 1) * sizeof *p);
        if (!p) rc = om_errorf("tokenizer: out of memory");
        else {
            t->decs = p;
            t->decs[t->n_decs++] = d;
            return 0;
        }
    }
    decoder_free(&d);
    return -1;
}

/* ---- post-processors -------------------------------------------------------------------------------------- */

static int append_ids(int32_t **v, size_t *n, const int32_t *ids, size_t k, int front) {
    if (!k) return 0;
    int32_t *p = realloc(*v, (*n + k + 1) * sizeof *p);
    if (!p) return om_errorf("tokenizer: out of memory");
    if (front) {
        memmove(p + k, p, *n * sizeof *p);
        memcpy(p, ids, k * sizeof *p);
    } else {
        memcpy(p + *n, ids, k * sizeof *p);
    }
    *v = p;
    *n += k;
    return 0;
}

/* Ids of ["token", id] as Roberta/Bert processors store cls and sep. */
static int pair_id(const cJSON *j, const char *k, const char *path, int32_t *id) {
    const cJSON *v = jget(j, k);
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !json_id(cJSON_GetArrayItem(v, 1), id))
        return om_errorf("tokenizer.json: %s.%s must be [token, id]", path, k);
    return 0;
}

/* The processors of a Sequence apply in order, each wrapping what the previous produced. */
static int parse_post(om_tokenizer *t, const cJSON *j, const char *path) {
    if (cJSON_IsNull(j) || !j) return 0;
    const char *type = jstr(j, "type");
    if (!type) return om_errorf("tokenizer.json: %s has no type", path);
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = jget(j, "processors");
        if (!cJSON_IsArray(list)) return om_errorf("tokenizer.json: %s.processors must be an array", path);
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, list) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.processors[%d]", path, i++);
            if (parse_post(t, it, sub)) return -1;
        }
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) return 0; /* only adjusts offsets */
    if (!strcmp(type, "RobertaProcessing") || !strcmp(type, "BertProcessing")) {
        int32_t cls = 0, sep = 0;
        if (pair_id(j, "cls", path, &cls) || pair_id(j, "sep", path, &sep)) return -1;
        return append_ids(&t->prefix_ids, &t->n_prefix, &cls, 1, 1) || append_ids(&t->suffix_ids, &t->n_suffix, &sep, 1, 0);
    }
    if (!strcmp(type, "TemplateProcessing")) {
        const cJSON *single = jget(j, "single"), *specials = jget(j, "special_tokens");
        if (!cJSON_IsArray(single)) return om_errorf("tokenizer.json: %s.single must be an array", path);
        int32_t *pre = NULL, *suf = NULL;
        size_t npre = 0, nsuf = 0;
        int seen_seq = 0, i = 0, rc = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, single) {
            const cJSON *sp = jget(it, "SpecialToken");
            if (jget(it, "Sequence")) {
                seen_seq = 1;
            } else if (sp) {
                const char *name = jstr(sp, "id");
                const cJSON *entry = name ? jget(specials, name) : NULL;
                const cJSON *ids = entry ? jget(entry, "ids") : NULL;
                if (!cJSON_IsArray(ids)) {
                    rc = om_errorf("tokenizer.json: %s.single[%d]: special token '%s' is not in special_tokens", path, i,
                                   name ? name : "?");
                    break;
                }
                const cJSON *x;
                cJSON_ArrayForEach(x, ids) {
                    int32_t id;
                    if (!json_id(x, &id)) {
                        rc = om_errorf("tokenizer.json: %s.special_tokens['%s'].ids holds a bad id", path, name);
                        break;
                    }
                    if (seen_seq ? append_ids(&suf, &nsuf, &id, 1, 0) : append_ids(&pre, &npre, &id, 1, 0)) {
                        rc = -1;
                        break;
                    }
                }
                if (rc) break;
            } else {
                rc = om_errorf("tokenizer.json: %s.single[%d] is neither SpecialToken nor Sequence", path, i);
                break;
            }
            i++;
        }
        if (!rc) rc = append_ids(&t->prefix_ids, &t->n_prefix, pre, npre, 1) ||
                      append_ids(&t->suffix_ids, &t->n_suffix, suf, nsuf, 0);
        free(pre);
        free(suf);
        return rc ? -1 : 0;
    }
    return om_errorf("tokenizer.json: unsupported post_processor type '%s' (at %s)", type, path);
}

/* ---- added tokens ----------------------------------------------------------------------------------------- */

/* As HF's AddedVocabulary::add_tokens: a token already known (added or in the model) keeps
 * that id; a new one takes the next id after the model's vocabulary (the JSON id is only a
 * hint there too). */
static int add_token(om_tokenizer *t, const cJSON *j, int32_t *next_id, const char *path) {
    const char *content = jstr(j, "content");
    if (!content) return om_errorf("tokenizer.json: %s.content must be a string", path);
    size_t len = strlen(content);
    if (!len) return 0;
    tk_added a;
    memset(&a, 0, sizeof a);
    a.special = (uint8_t)jbool(j, "special", 0);
    a.single_word = (uint8_t)jbool(j, "single_word", 0);
    a.lstrip = (uint8_t)jbool(j, "lstrip", 0);
    a.rstrip = (uint8_t)jbool(j, "rstrip", 0);
    a.normalized = (uint8_t)jbool(j, "normalized", !a.special);
    int32_t idx = tk_strmap_get(&t->added_map, content, len);
    if (idx >= 0) a.id = t->added[idx].id;
    else if ((a.id = tk_strmap_get(&t->bpe.vocab, content, len)) < 0) a.id = (*next_id)++;
    a.content = dupn(content, len);
    a.content_len = len;
    if (!a.content) return om_errorf("tokenizer: out of memory");
    if (a.normalized && t->n_norms) {
        tk_matcher m;
        tk_buf scratch[2] = {{0}, {0}};
        const char *o;
        size_t ol;
        int rc = tk_matcher_init(&m);
        if (!rc) rc = tk_normalize(t->norms, t->n_norms, &m, content, len, scratch, &o, &ol);
        if (!rc && (ol != len || memcmp(o, content, len))) {
            a.norm = dupn(o, ol);
            a.norm_len = ol;
            if (!a.norm) rc = om_errorf("tokenizer: out of memory");
        }
        tk_matcher_free(&m);
        tk_buf_free(&scratch[0]);
        tk_buf_free(&scratch[1]);
        if (rc) {
            free(a.content);
            return -1;
        }
    }
    if (idx >= 0) { /* same content again: the later properties win */
        free(t->added[idx].content);
        free(t->added[idx].norm);
        t->added[idx] = a;
        return 0;
    }
    tk_added *p = realloc(t->added, (t->n_added + 1) * sizeof *p);
    if (!p) {
        free(a.content);
        free(a.norm);
        return om_errorf("tokenizer: out of memory");
    }
    t->added = p;
    t->added[t->n_added] = a;
    return tk_strmap_put(&t->added_map, content, len, (int32_t)t->n_added++);
}

/* ---- tables for decode --------------------------------------------------------------------------------------- */

static int build_id_tables(om_tokenizer *t) {
    int32_t n = t->bpe.n_ids;
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].id + 1 > n) n = t->added[i].id + 1;
    t->vocab_size = n;
    size_t sz = (size_t)n + 1;
    t->dec_piece = calloc(sz, sizeof *t->dec_piece);
    t->dec_len = calloc(sz, sizeof *t->dec_len);
    t->skip_id = calloc(sz, 1);
    t->special_id = calloc(sz, 1);
    if (!t->dec_piece || !t->dec_len || !t->skip_id || !t->special_id) return om_errorf("tokenizer: out of memory");
    for (int32_t i = 0; i < t->bpe.n_ids; i++) {
        if (t->bpe.piece_off[i] == UINT32_MAX) continue;
        t->dec_piece[i] = t->bpe.vocab.keys.data + t->bpe.piece_off[i];
        t->dec_len[i] = t->bpe.piece_len[i];
    }
    tk_strmap specials;
    if (tk_strmap_init(&specials, t->n_added + 1)) return -1;
    for (size_t i = 0; i < t->n_added; i++) {
        const tk_added *a = &t->added[i];
        t->dec_piece[a->id] = a->norm ? a->norm : a->content;
        t->dec_len[a->id] = (uint32_t)(a->norm ? a->norm_len : a->content_len);
        if (a->special) {
            t->special_id[a->id] = 1;
            if (tk_strmap_put(&specials, a->content, a->content_len, 1)) {
                tk_strmap_free(&specials);
                return -1;
            }
        }
    }
    /* HF's skip test looks up the token's text among the special contents */
    for (int32_t i = 0; i < n; i++)
        if (t->dec_piece[i] && tk_strmap_get(&specials, t->dec_piece[i], t->dec_len[i]) >= 0) t->skip_id[i] = 1;
    tk_strmap_free(&specials);
    return 0;
}

/* ---- loading ------------------------------------------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 65536) {
            cap = cap ? cap * 2 : 1 << 20;
            char *p = realloc(buf, cap + 1);
            if (!p) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            buf = p;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static cJSON *parse_json(const char *buf, size_t len, const char *name, const char *where) {
    /* cJSON passes bytes through unchecked; everything downstream relies on valid UTF-8 */
    size_t valid = tk_utf8_valid_prefix(buf, len);
    if (valid != len) {
        om_errorf("%s: invalid UTF-8 at byte offset %zu%s%s%s", name, valid, where ? " (" : "", where ? where : "",
                  where ? ")" : "");
        return NULL;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!j) {
        size_t off = end && end >= buf ? (size_t)(end - buf) : 0;
        om_errorf("%s: invalid JSON at byte offset %zu%s%s%s", name, off, where ? " (" : "", where ? where : "",
                  where ? ")" : "");
    }
    return j;
}

static cJSON *parse_json_file(const char *path, const char *name, int required, int *failed) {
    *failed = 0;
    size_t len;
    char *buf = read_file(path, &len);
    if (!buf) {
        if (!required && errno == ENOENT) return NULL;
        *failed = 1;
        om_errorf("%s: cannot read %s: %s", name, path, strerror(errno));
        return NULL;
    }
    cJSON *j = parse_json(buf, len, name, path);
    if (!j) *failed = 1;
    free(buf);
    return j;
}

/* "token" or {"content": "token", ...} */
static int32_t config_token_id(const om_tokenizer *t, const cJSON *cfg, const char *key) {
    const cJSON *v = jget(cfg, key);
    const char *s = cJSON_IsString(v) ? v->valuestring : jstr(v, "content");
    return s ? om_tokenizer_token_to_id(t, s, strlen(s)) : -1;
}

static int load_json(om_tokenizer *t, const cJSON *root, const cJSON *cfg) {
    if (!cJSON_IsObject(root)) return om_errorf("tokenizer.json: top level is not an object");
    const cJSON *model = jget(root, "model");
    if (!cJSON_IsObject(model)) return om_errorf("tokenizer.json: no model object");
    const char *type = jstr(model, "type");
    if (type ? strcmp(type, "BPE") != 0 : !jget(model, "merges"))
        return om_errorf("tokenizer.json: unsupported model type '%s' (at model.type; only BPE is supported)",
                         type ? type : "(none)");
    if (tk_bpe_load(&t->bpe, model)) return -1;
    if (parse_normalizer(t, jget(root, "normalizer"), "normalizer")) return -1;
    if (parse_pretok(t, jget(root, "pre_tokenizer"), "pre_tokenizer")) return -1;
    if (parse_post(t, jget(root, "post_processor"), "post_processor")) return -1;
    if (parse_decoder(t, jget(root, "decoder"), "decoder")) return -1;

    if (tk_strmap_init(&t->added_map, 64)) return -1;
    int32_t next_id = (int32_t)t->bpe.vocab.count;
    const cJSON *added = jget(root, "added_tokens");
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added))
        return om_errorf("tokenizer.json: added_tokens must be an array");
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, added) {
        char path[64];
        snprintf(path, sizeof path, "added_tokens[%d]", i++);
        if (add_token(t, it, &next_id, path)) return -1;
    }
    /* transformers also registers tokenizer_config.json's added_tokens_decoder entries */
    const cJSON *atd = cfg ? jget(cfg, "added_tokens_decoder") : NULL;
    if (!cJSON_IsObject(atd)) atd = NULL;
    cJSON_ArrayForEach(it, atd) {
        const char *c = jstr(it, "content");
        if (!c || tk_strmap_get(&t->added_map, c, strlen(c)) >= 0) continue;
        char path[300];
        snprintf(path, sizeof path, "tokenizer_config.json added_tokens_decoder[%.200s]", it->string ? it->string : "?");
        if (add_token(t, it, &next_id, path)) return -1;
    }
    if (tk_trie_build(&t->trie_raw, t->added, t->n_added, 0) || tk_trie_build(&t->trie_norm, t->added, t->n_added, 1))
        return -1;
    if (build_id_tables(t)) return -1;

    const tk_pretok *last = t->n_pretoks ? &t->pretoks[t->n_pretoks - 1] : NULL;
    t->raw_bytes_fast = last && last->kind == TK_PT_BYTELEVEL && t->bpe.byte_char_complete && !t->bpe.prefix &&
                        !t->bpe.suffix;

    t->bos_id = t->eos_id = t->pad_id = -1;
    if (cfg) {
        t->bos_id = config_token_id(t, cfg, "bos_token");
        t->eos_id = config_token_id(t, cfg, "eos_token");
        t->pad_id = config_token_id(t, cfg, "pad_token");
    }
    return 0;
}

/* Builds the tokenizer from parsed JSON; takes ownership of (and frees) root and cfg. */
static int build(cJSON *root, cJSON *cfg, const char *where, om_tokenizer **out) {
    om_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        cJSON_Delete(root);
        cJSON_Delete(cfg);
        return om_errorf("tokenizer: out of memory");
    }
    pthread_mutex_init(&t->cache_lock, NULL);
    int rc = load_json(t, root, cfg);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    if (rc) {
        om_error_prefix("loading %s: ", where);
        om_tokenizer_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

int om_tokenizer_load(const char *path, om_tokenizer **out) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0) return om_errorf("tokenizer: cannot open %s: %s", path, strerror(errno));
    char json_path[4096], cfg_path[4096];
    if (S_ISDIR(st.st_mode)) {
        snprintf(json_path, sizeof json_path, "%s/tokenizer.json", path);
        snprintf(cfg_path, sizeof cfg_path, "%s/tokenizer_config.json", path);
    } else {
        snprintf(json_path, sizeof json_path, "%s", path);
        const char *slash = strrchr(path, '/');
        if (slash) snprintf(cfg_path, sizeof cfg_path, "%.*s/tokenizer_config.json", (int)(slash - path), path);
        else snprintf(cfg_path, sizeof cfg_path, "tokenizer_config.json");
    }
    int failed;
    cJSON *root = parse_json_file(json_path, "tokenizer.json", 1, &failed);
    if (!root) return -1;
    cJSON *cfg = parse_json_file(cfg_path, "tokenizer_config.json", 0, &failed);
    if (failed) {
        cJSON_Delete(root);
        return -1;
    }
    return build(root, cfg, json_path, out);
}

int om_tokenizer_load_buffer(const char *json, size_t len, const char *config_json, size_t config_len,
                             om_tokenizer **out) {
    *out = NULL;
    cJSON *root = parse_json(json, len, "tokenizer.json", NULL);
    if (!root) return -1;
    cJSON *cfg = NULL;
    if (config_json && !(cfg = parse_json(config_json, config_len, "tokenizer_config.json", NULL))) {
        cJSON_Delete(root);
        return -1;
    }
    return build(root, cfg, "tokenizer.json", out);
}

void om_tokenizer_free(om_tokenizer *t) {
    if (!t) return;
    tk_bpe_free(&t->bpe);
    for (size_t i = 0; i < t->n_norms; i++) {
        free(t->norms[i].str);
        tk_regex_free(&t->norms[i].re);
    }
    free(t->norms);
    for (size_t i = 0; i < t->n_pretoks; i++)
        if (t->pretoks[i].has_re) tk_regex_free(&t->pretoks[i].re);
    free(t->pretoks);
    for (size_t i = 0; i < t->n_decs; i++) decoder_free(&t->decs[i]);
    free(t->decs);
    free(t->prefix_ids);
    free(t->suffix_ids);
    for (size_t i = 0; i < t->n_added; i++) {
        free(t->added[i].content);
        free(t->added[i].norm);
    }
    free(t->added);
    tk_strmap_free(&t->added_map);
    tk_trie_free(&t->trie_raw);
    tk_trie_free(&t->trie_norm);
    free(t->dec_piece);
    free(t->dec_len);
    free(t->skip_id);
    free(t->special_id);
    tk_cache_free(&t->cache);
    pthread_mutex_destroy(&t->cache_lock);
    free(t);
}

/* ---- encode ---------------------------------------------------------------------------------------------------- */

typedef struct {
    const om_tokenizer *tok;
    tk_matcher m;
    tk_bpe_work bw;
    tk_cache *cache;
    tk_ids out;
    tk_buf norm[2];
    tk_segments seg_raw, seg_norm;
    tk_buf *lvl_buf, *lvl_map; /* per pre-tokenizer: its rewritten input, a mapped piece */
    tk_ranges *lvl_pieces;
    tk_ranges scratch;
} enc_ctx;

static int pretokenize(enc_ctx *c, size_t k, const char *s, size_t n, int at_start);

/* Pieces of s (rewritten into lvl_buf[k] when needed) go on to the next pre-tokenizer. */
static int pretok_pieces(enc_ctx *c, size_t k, const char *s, size_t n, int at_start, int split) {
    const tk_pretok *p = &c->tok->pretoks[k];
    tk_ranges *pieces = &c->lvl_pieces[k];
    pieces->len = 0;
    if (split) {
        if (tk_pretok_split(p, &c->m, s, n, &c->scratch, pieces)) return -1;
    } else if (n && tk_ranges_push(pieces, 0, n)) {
        return -1;
    }
    int last = k + 1 == c->tok->n_pretoks;
    for (size_t i = 0; i < pieces->len; i++) {
        const char *ps = s + pieces->data[i].start;
        size_t pn = pieces->data[i].end - pieces->data[i].start;
        int first = at_start && pieces->data[i].start == 0;
        if (p->kind == TK_PT_BYTELEVEL) {
            if (last && c->tok->raw_bytes_fast) {
                if (tk_bpe_tokenize(&c->tok->bpe, &c->bw, c->cache, ps, pn, 1, &c->out)) return -1;
                continue;
            }
            tk_buf *mb = &c->lvl_map[k];
            mb->len = 0;
            if (tk_buf_reserve(mb, 2 * pn)) return -1;
            for (size_t b = 0; b < pn; b++) {
                char enc[4];
                int l = tk_utf8_encode(tk_byte_to_cp[(unsigned char)ps[b]], enc);
                memcpy(mb->data + mb->len, enc, (size_t)l);
                mb->len += (size_t)l;
            }
            if (pretokenize(c, k + 1, mb->data, mb->len, first)) return -1;
        } else if (pretokenize(c, k + 1, ps, pn, first)) {
            return -1;
        }
    }
    return 0;
}

static int pretokenize(enc_ctx *c, size_t k, const char *s, size_t n, int at_start) {
    if (!n) return 0;
    const om_tokenizer *t = c->tok;
    if (k == t->n_pretoks) return tk_bpe_tokenize(&t->bpe, &c->bw, c->cache, s, n, 0, &c->out);
    const tk_pretok *p = &t->pretoks[k];
    tk_buf *b = &c->lvl_buf[k];
    switch (p->kind) {
    case TK_PT_BYTELEVEL:
        if (p->add_prefix_space && s[0] != ' ') {
            b->len = 0;
            if (tk_buf_append(b, " ", 1) || tk_buf_append(b, s, n)) return -1;
            s = b->data;
            n = b->len;
        }
        return pretok_pieces(c, k, s, n, at_start, p->use_regex);
    case TK_PT_METASPACE: {
        b->len = 0;
        int prepend = p->prepend_scheme == TK_PREPEND_ALWAYS || (p->prepend_scheme == TK_PREPEND_FIRST && at_start);
        /* the spaces are replaced first, so a leading space counts as the replacement */
        if (prepend && !(s[0] == ' ' || (n >= (size_t)p->repl_len && !memcmp(s, p->repl, (size_t)p->repl_len))) &&
            tk_buf_append(b, p->repl, (size_t)p->repl_len))
            return -1;
        for (size_t i = 0; i < n; i++) {
            if (s[i] == ' ' ? tk_buf_append(b, p->repl, (size_t)p->repl_len) : tk_buf_append(b, s + i, 1)) return -1;
        }
        return pretok_pieces(c, k, b->data, b->len, at_start, p->split);
    }
    default:
        return pretok_pieces(c, k, s, n, at_start, 1);
    }
}

static void enc_free(enc_ctx *c) {
    tk_matcher_free(&c->m);
    tk_bpe_work_free(&c->bw);
    free(c->out.data);
    tk_buf_free(&c->norm[0]);
    tk_buf_free(&c->norm[1]);
    free(c->seg_raw.data);
    free(c->seg_norm.data);
    for (size_t i = 0; i < c->tok->n_pretoks; i++) {
        tk_buf_free(&c->lvl_buf[i]);
        tk_buf_free(&c->lvl_map[i]);
        free(c->lvl_pieces[i].data);
    }
    free(c->lvl_buf);
    free(c->lvl_map);
    free(c->lvl_pieces);
    free(c->scratch.data);
}

static int encode_text(enc_ctx *c, const char *text, size_t len, int split_special) {
    const om_tokenizer *t = c->tok;
    if (tk_find_added(&t->trie_raw, t->added, text, len, split_special, &c->seg_raw)) return -1;
    for (size_t i = 0; i < c->seg_raw.len; i++) {
        const tk_segment *sg = &c->seg_raw.data[i];
        if (sg->added >= 0) {
            if (tk_ids_push(&c->out, t->added[sg->added].id)) return -1;
            continue;
        }
        const char *ns;
        size_t nn;
        if (tk_normalize(t->norms, t->n_norms, &c->m, text + sg->start, sg->end - sg->start, c->norm, &ns, &nn)) return -1;
        if (!nn) continue;
        c->seg_norm.len = 0;
        if (tk_find_added(&t->trie_norm, t->added, ns, nn, split_special, &c->seg_norm)) return -1;
        for (size_t j = 0; j < c->seg_norm.len; j++) {
            const tk_segment *sn = &c->seg_norm.data[j];
            if (sn->added >= 0) {
                if (tk_ids_push(&c->out, t->added[sn->added].id)) return -1;
            } else if (pretokenize(c, 0, ns + sn->start, sn->end - sn->start, sg->start == 0 && sn->start == 0)) {
                return -1;
            }
        }
    }
    return 0;
}

int om_tokenizer_encode_ex(const om_tokenizer *t, const char *text, size_t len, const om_encode_options *opt,
                           int32_t **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    if (!text && len) return om_errorf("tokenizer: NULL text");
    size_t valid = len ? tk_utf8_valid_prefix(text, len) : 0;
    if (valid != len)
        return om_errorf("tokenizer: invalid UTF-8 in input at byte offset %zu (byte 0x%02X)", valid,
                         (unsigned char)text[valid]);
    enc_ctx c;
    memset(&c, 0, sizeof c);
    c.tok = t;
    int rc = tk_matcher_init(&c.m);
    if (!rc && t->n_pretoks) {
        c.lvl_buf = calloc(t->n_pretoks, sizeof *c.lvl_buf);
        c.lvl_map = calloc(t->n_pretoks, sizeof *c.lvl_map);
        c.lvl_pieces = calloc(t->n_pretoks, sizeof *c.lvl_pieces);
        if (!c.lvl_buf || !c.lvl_map || !c.lvl_pieces) rc = om_errorf("tokenizer: out of memory");
    }
    if (rc) {
        enc_free(&c);
        return -1;
    }
    /* The word cache is shared; a thread that finds it busy goes without rather than wait.
     * It is the only state encode mutates, which is why the tokenizer pointer is const. */
    om_tokenizer *mut = (om_tokenizer *)t;
    int locked = pthread_mutex_trylock(&mut->cache_lock) == 0;
    c.cache = locked ? &mut->cache : NULL;
    int add_special = opt && opt->add_special;
    if (add_special) rc = tk_ids_append(&c.out, t->prefix_ids, t->n_prefix);
    if (!rc) rc = encode_text(&c, text ? text : "", len, opt && opt->split_special);
    if (!rc && add_special) rc = tk_ids_append(&c.out, t->suffix_ids, t->n_suffix);
    if (locked) pthread_mutex_unlock(&mut->cache_lock);
    if (!rc) {
        *ids = c.out.data;
        *n = c.out.len;
        c.out.data = NULL;
    }
    enc_free(&c);
    return rc;
}

int om_tokenizer_encode(const om_tokenizer *t, const char *text, size_t len, int add_special, int32_t **ids, size_t *n) {
    om_encode_options o = {add_special, 0};
    return om_tokenizer_encode_ex(t, text, len, &o, ids, n);
}

/* ---- lookups ----------------------------------------------------------------------------------------------- */

int32_t om_tokenizer_token_to_id(const om_tokenizer *t, const char *piece, size_t len) {
    int32_t idx = tk_strmap_get(&t->added_map, piece, len);
    if (idx >= 0) return t->added[idx].id;
    return tk_strmap_get(&t->bpe.vocab, piece, len);
}

const char *om_tokenizer_id_to_piece(const om_tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->vocab_size) return NULL;
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].id == id) return t->added[i].content;
    return t->dec_piece[id];
}

int32_t om_tokenizer_vocab_size(const om_tokenizer *t) { return t->vocab_size; }
int32_t om_tokenizer_bos_id(const om_tokenizer *t) { return t->bos_id; }
int32_t om_tokenizer_eos_id(const om_tokenizer *t) { return t->eos_id; }
int32_t om_tokenizer_pad_id(const om_tokenizer *t) { return t->pad_id; }

int om_tokenizer_is_special(const om_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->vocab_size && t->special_id[id];
}
