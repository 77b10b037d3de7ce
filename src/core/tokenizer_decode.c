/* Decoding ids to text, as a stream: om_tokenizer_decode is the streaming detokenizer fed all
 * ids at once, so the two cannot disagree.
 *
 * Hugging Face runs its decoders as a chain over the list of token strings. Here each decoder
 * is a stage that receives the list one token at a time. Two stages (Fuse, ByteLevel) turn the
 * list into one growing string; stages after them receive chunks of that single token. Each
 * stage holds back only what a later token could still change:
 *   ByteLevel     bytes of an incomplete UTF-8 character
 *   ByteFallback  a run of <0xNN> tokens (HF turns the whole run into U+FFFD per byte if any
 *                 part of it is invalid, so nothing in it is final before the run ends)
 *   Strip         trailing characters that would be stripped if the text ended here
 *   BPEDecoder    the last token (its suffix becomes "" rather than " ")
 * A stage whose rule needs the whole single token (e.g. ByteFallback after Fuse) holds all of
 * its input until the end; no shipped tokenizer uses such an order. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/tokenizer_internal.h"

typedef struct tk_stage {
    const tk_decoder *dec;
    int fused_in; /* input is chunks of one token rather than a list of tokens */
    int hold_all;
    tk_buf held;
    tk_buf tmp;      /* this stage's output under construction */
    size_t n_in;     /* tokens received */
    size_t stripped; /* Strip on a fused input: leading characters removed so far */
    int lead_done;
} tk_stage;

static int feed(om_detok *d, size_t k, const char *s, size_t n);

static int out_append(om_detok *d, size_t k, const char *s, size_t n) { return feed(d, k + 1, s, n); }

/* ---- per-token rules (HF's decode_chain for one token) ----------------------------------------- */

static int apply_replace(om_detok *d, size_t k, const tk_decoder *dec, const char *s, size_t n) {
    tk_buf *o = &d->stages[k].tmp;
    o->len = 0;
    int rc = tk_buf_reserve(o, n);
    if (rc) return -1;
    if (dec->literal && dec->pattern_len) {
        /* the common case (U+2581 -> ' '): no regex machinery per token */
        size_t prev = 0;
        for (size_t i = 0; i + dec->pattern_len <= n && !rc;) {
            if (s[i] == dec->pattern[0] && !memcmp(s + i, dec->pattern, dec->pattern_len)) {
                rc = tk_buf_append(o, s + prev, i - prev) || tk_buf_append(o, dec->content, dec->content_len);
                i += dec->pattern_len;
                prev = i;
            } else {
                i++;
            }
        }
        if (!rc) rc = tk_buf_append(o, s + prev, n - prev);
    } else {
        tk_ranges hits = {0};
        tk_matcher m;
        if (tk_matcher_init(&m)) return -1;
        rc = tk_regex_find_all(&dec->re, &m, s, n, &hits);
        tk_matcher_free(&m);
        size_t prev = 0;
        for (size_t i = 0; i < hits.len && !rc; i++) {
            rc = tk_buf_append(o, s + prev, hits.data[i].start - prev) || tk_buf_append(o, dec->content, dec->content_len);
            prev = hits.data[i].end;
        }
        if (!rc) rc = tk_buf_append(o, s + prev, n - prev);
        free(hits.data);
    }
    return rc ? -1 : out_append(d, k, o->data, o->len);
}

static int is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

static int hexval(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

/* "<0xNN>" as HF reads it (u8::from_str_radix also takes a leading '+'); -1 if not one. */
static int byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    if (s[3] == '+') return is_hex(s[4]) ? hexval(s[4]) : -1;
    if (!is_hex(s[3]) || !is_hex(s[4])) return -1;
    return hexval(s[3]) * 16 + hexval(s[4]);
}

static int flush_byte_run(om_detok *d, size_t k, tk_stage *st) {
    if (!st->held.len) return 0;
    int rc = 0;
    if (tk_utf8_valid_prefix(st->held.data, st->held.len) == st->held.len) {
        rc = out_append(d, k, st->held.data, st->held.len);
    } else {
        for (size_t i = 0; i < st->held.len && !rc; i++) rc = out_append(d, k, "\xEF\xBF\xBD", 3);
    }
    st->held.len = 0;
    return rc;
}

static int strip_token(om_detok *d, size_t k, const tk_decoder *dec, const char *s, size_t n) {
    size_t a = 0, b = n;
    for (size_t i = 0; i < dec->start && a < n; i++) {
        if (n - a < dec->content_len || memcmp(s + a, dec->content, dec->content_len)) break;
        a += dec->content_len;
    }
    for (size_t i = 0; i < dec->stop && b > a; i++) {
        if (b - a < dec->content_len || memcmp(s + b - dec->content_len, dec->content, dec->content_len)) break;
        b -= dec->content_len;
    }
    return out_append(d, k, s + a, b - a);
}

static int metaspace_token(om_detok *d, size_t k, const tk_decoder *dec, const char *s, size_t n, int first) {
    tk_buf *o = &d->stages[k].tmp;
    o->len = 0;
    int rc = tk_buf_reserve(o, n);
    size_t prev = 0;
    for (size_t i = 0; i + (size_t)dec->repl_len <= n && !rc;) {
        if (!memcmp(s + i, dec->repl, (size_t)dec->repl_len)) {
            rc = tk_buf_append(o, s + prev, i - prev);
            if (!rc && !(first && dec->prepend_scheme != TK_PREPEND_NEVER)) rc = tk_buf_append(o, " ", 1);
            i += (size_t)dec->repl_len;
            prev = i;
        } else {
            i += (size_t)tk_utf8_len((unsigned char)s[i]);
        }
    }
    if (!rc) rc = tk_buf_append(o, s + prev, n - prev);
    return rc ? -1 : out_append(d, k, o->data, o->len);
}

static int bpe_suffix_token(om_detok *d, size_t k, const tk_decoder *dec, const char *s, size_t n, int last) {
    tk_buf *o = &d->stages[k].tmp;
    o->len = 0;
    int rc = tk_buf_reserve(o, n);
    size_t prev = 0;
    for (size_t i = 0; dec->pattern_len && i + dec->pattern_len <= n && !rc;) {
        if (!memcmp(s + i, dec->pattern, dec->pattern_len)) {
            rc = tk_buf_append(o, s + prev, i - prev) || tk_buf_append(o, last ? "" : " ", last ? 0 : 1);
            i += dec->pattern_len;
            prev = i;
        } else {
            i++;
        }
    }
    if (!rc) rc = tk_buf_append(o, s + prev, n - prev);
    return rc ? -1 : out_append(d, k, o->data, o->len);
}

/* A token's bytes for the ByteLevel decoder: each character mapped back to its byte, or the
 * token's own UTF-8 when some character is not a byte character. */
static int bytelevel_bytes(tk_buf *dst, const char *s, size_t n) {
    size_t mark = dst->len;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += (size_t)tk_utf8_decode(s + i, &cp);
        int b = tk_cp_to_byte(cp);
        if (b < 0) {
            dst->len = mark;
            return tk_buf_append(dst, s, n);
        }
        char c = (char)b;
        if (tk_buf_append(dst, &c, 1)) return -1;
    }
    return 0;
}

static int bytelevel_emit(om_detok *d, size_t k, tk_stage *st, int final) {
    tk_buf *o = &st->tmp;
    o->len = 0;
    size_t used = tk_utf8_lossy_append(o, (const unsigned char *)st->held.data, st->held.len, final);
    if (used == (size_t)-1) return -1;
    if (used) {
        memmove(st->held.data, st->held.data + used, st->held.len - used);
        st->held.len -= used;
    }
    return o->len ? out_append(d, k, o->data, o->len) : 0;
}

/* ---- the stage machine --------------------------------------------------------------------------- */

/* One token for stage k, by HF's rules for a list element (index st->n_in). */
static int stage_token(om_detok *d, size_t k, const char *s, size_t n) {
    tk_stage *st = &d->stages[k];
    const tk_decoder *dec = st->dec;
    size_t index = st->n_in++;
    switch (dec->kind) {
    case TK_DEC_REPLACE: return apply_replace(d, k, dec, s, n);
    case TK_DEC_FUSE: return out_append(d, k, s, n);
    case TK_DEC_STRIP: return strip_token(d, k, dec, s, n);
    case TK_DEC_METASPACE: return metaspace_token(d, k, dec, s, n, index == 0);
    case TK_DEC_BYTEFALLBACK: {
        int b = byte_token(s, n);
        if (b >= 0) {
            char c = (char)b;
            return tk_buf_append(&st->held, &c, 1);
        }
        return flush_byte_run(d, k, st) || out_append(d, k, s, n) ? -1 : 0;
    }
    case TK_DEC_BPE: {
        /* emit the previous token, now known not to be the last */
        int rc = 0;
        if (index > 0) rc = bpe_suffix_token(d, k, dec, st->held.data ? st->held.data : "", st->held.len, 0);
        st->held.len = 0;
        return rc || tk_buf_append(&st->held, s, n) ? -1 : 0;
    }
    case TK_DEC_BYTELEVEL:
        if (bytelevel_bytes(&st->held, s, n)) return -1;
        return bytelevel_emit(d, k, st, 0);
    }
    return om_errorf("tokenizer: unknown decoder");
}

/* A chunk of the single fused token for stage k. */
static int stage_chunk(om_detok *d, size_t k, const char *s, size_t n) {
    tk_stage *st = &d->stages[k];
    const tk_decoder *dec = st->dec;
    switch (dec->kind) {
    case TK_DEC_FUSE: return out_append(d, k, s, n);
    case TK_DEC_METASPACE: return metaspace_token(d, k, dec, s, n, 1);
    case TK_DEC_REPLACE: return apply_replace(d, k, dec, s, n); /* single-character pattern only */
    case TK_DEC_STRIP: {
        size_t a = 0;
        while (!st->lead_done && a < n) {
            if (st->stripped < dec->start && n - a >= dec->content_len && !memcmp(s + a, dec->content, dec->content_len)) {
                a += dec->content_len;
                st->stripped++;
            } else {
                st->lead_done = 1;
            }
        }
        if (!dec->stop) return a < n ? out_append(d, k, s + a, n - a) : 0;
        if (tk_buf_append(&st->held, s + a, n - a)) return -1;
        /* keep back up to `stop` trailing content characters */
        size_t keep = 0, e = st->held.len;
        while (keep < dec->stop && e >= dec->content_len &&
               !memcmp(st->held.data + e - dec->content_len, dec->content, dec->content_len)) {
            e -= dec->content_len;
            keep++;
        }
        int rc = e ? out_append(d, k, st->held.data, e) : 0;
        if (e) {
            memmove(st->held.data, st->held.data + e, st->held.len - e);
            st->held.len -= e;
        }
        return rc;
    }
    default: return om_errorf("tokenizer: decoder stage cannot stream");
    }
}

static int feed(om_detok *d, size_t k, const char *s, size_t n) {
    if (k == d->n_stages) return tk_buf_append(&d->out, s, n);
    tk_stage *st = &d->stages[k];
    if (st->hold_all) return tk_buf_append(&st->held, s, n);
    return st->fused_in ? stage_chunk(d, k, s, n) : stage_token(d, k, s, n);
}

static int finish(om_detok *d, size_t k) {
    if (k == d->n_stages) return 0;
    tk_stage *st = &d->stages[k];
    int rc = 0;
    if (st->hold_all) {
        /* the whole single token, by the list rules */
        tk_buf all = st->held;
        memset(&st->held, 0, sizeof st->held);
        st->hold_all = 0;
        st->fused_in = 0;
        st->n_in = 0;
        rc = stage_token(d, k, all.data ? all.data : "", all.len);
        tk_buf_free(&all);
        st->hold_all = 1;
        st->fused_in = 1;
    }
    if (!rc) switch (st->dec->kind) {
        case TK_DEC_BYTEFALLBACK: rc = flush_byte_run(d, k, st); break;
        case TK_DEC_BYTELEVEL: rc = bytelevel_emit(d, k, st, 1); break;
        case TK_DEC_BPE:
            if (st->n_in > 0) rc = bpe_suffix_token(d, k, st->dec, st->held.data ? st->held.data : "", st->held.len, 1);
            break;
        default: break; /* Strip: what is held is what would be stripped */
        }
    st->held.len = 0;
    st->n_in = 0;
    st->stripped = 0;
    st->lead_done = 0;
    if (rc) return -1;
    return finish(d, k + 1);
}

/* ---- public ---------------------------------------------------------------------------------------- */

int om_detok_new(const om_tokenizer *tok, int skip_special, om_detok **out) {
    *out = NULL;
    om_detok *d = calloc(1, sizeof *d);
    if (!d) return om_errorf("tokenizer: out of memory");
    d->tok = tok;
    d->skip_special = skip_special;
    d->n_stages = tok->n_decs;
    if (d->n_stages) {
        d->stages = calloc(d->n_stages, sizeof *d->stages);
        if (!d->stages) {
            free(d);
            return om_errorf("tokenizer: out of memory");
        }
    }
    int fused = 0;
    for (size_t i = 0; i < d->n_stages; i++) {
        tk_stage *st = &d->stages[i];
        const tk_decoder *dec = &tok->decs[i];
        st->dec = dec;
        st->fused_in = fused;
        if (fused) {
            int single_char_literal = dec->kind == TK_DEC_REPLACE && dec->literal && dec->pattern_len &&
                                      (size_t)tk_utf8_len((unsigned char)dec->pattern[0]) == dec->pattern_len;
            st->hold_all = !(dec->kind == TK_DEC_FUSE || dec->kind == TK_DEC_METASPACE || dec->kind == TK_DEC_STRIP ||
                             single_char_literal);
        }
        if (dec->kind == TK_DEC_FUSE || dec->kind == TK_DEC_BYTELEVEL) fused = 1;
    }
    *out = d;
    return 0;
}

int om_detok_push(om_detok *d, int32_t id, const char **text, size_t *len) {
    const om_tokenizer *t = d->tok;
    d->out.len = 0;
    if (tk_buf_reserve(&d->out, 0)) return -1;
    d->out.data[0] = 0;
    *text = d->out.data;
    *len = 0;
    if (id < 0 || id >= t->vocab_size || !t->dec_piece[id]) return 0; /* HF drops unknown ids */
    if (d->skip_special && t->skip_id[id]) return 0;
    const char *s = t->dec_piece[id];
    size_t n = t->dec_len[id];
    int rc;
    if (!t->has_decoder) /* HF joins the tokens with spaces */
        rc = (d->n_tokens && tk_buf_append(&d->out, " ", 1)) || tk_buf_append(&d->out, s, n) ? -1 : 0;
    else
        rc = feed(d, 0, s, n);
    d->n_tokens++;
    *text = d->out.data;
    *len = d->out.len;
    return rc;
}

int om_detok_finish(om_detok *d, const char **text, size_t *len) {
    d->out.len = 0;
    if (tk_buf_reserve(&d->out, 0)) return -1;
    d->out.data[0] = 0;
    int rc = finish(d, 0);
    d->n_tokens = 0;
    *text = d->out.data;
    *len = d->out.len;
    return rc;
}

void om_detok_free(om_detok *d) {
    if (!d) return;
    for (size_t i = 0; i < d->n_stages; i++) {
        tk_buf_free(&d->stages[i].held);
        tk_buf_free(&d->stages[i].tmp);
    }
    free(d->stages);
    tk_buf_free(&d->out);
    free(d);
}

int om_tokenizer_decode(const om_tokenizer *tok, const int32_t *ids, size_t n, int skip_special, char **out,
                        size_t *out_len) {
    *out = NULL;
    if (out_len) *out_len = 0;
    om_detok *d;
    if (om_detok_new(tok, skip_special, &d)) return -1;
    tk_buf all = {0};
    int rc = tk_buf_reserve(&all, 0);
    const char *piece;
    size_t len;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = om_detok_push(d, ids[i], &piece, &len);
        if (!rc) rc = tk_buf_append(&all, piece, len);
    }
    if (!rc) rc = om_detok_finish(d, &piece, &len);
    if (!rc) rc = tk_buf_append(&all, piece, len);
    om_detok_free(d);
    if (rc) {
        tk_buf_free(&all);
        return -1;
    }
    *out = all.data;
    if (out_len) *out_len = all.len;
    return 0;
}
