/* The Jinja lexer: splits template source into data and tag tokens the way jinja2's lexer
 * does with transformers' settings. The whitespace rules are the part chat templates depend
 * on most and the easiest to get subtly wrong, so they follow jinja2's regexes closely:
 *   - newlines are normalized to \n and one trailing newline is dropped;
 *   - "{%-", "{{-", "{#-" strip all whitespace before the tag; "-%}", "-}}", "-#}" all after;
 *   - trim_blocks: a block or comment tag eats the one newline that follows it ("+%}" keeps it);
 *   - lstrip_blocks: spaces and tabs between a line start and a block or comment tag are
 *     removed ("{%+" keeps them); variable tags are never lstripped;
 *   - inside brackets, "}}" and "%}" are operators, not tag ends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/jinja_internal.h"

typedef struct {
    jinja_template *t;
    const char *src;
    size_t n;
    jtoken *toks;
    size_t ntoks, cap;
    /* incremental position -> line:column */
    size_t loc_pos;
    int loc_line, loc_col;
} lexer;

static void loc(lexer *lx, size_t pos, int *line, int *col) {
    if (pos < lx->loc_pos) {
        lx->loc_pos = 0;
        lx->loc_line = 1;
        lx->loc_col = 1;
    }
    while (lx->loc_pos < pos && lx->loc_pos < lx->n) {
        unsigned char c = (unsigned char)lx->src[lx->loc_pos++];
        if (c == '\n') {
            lx->loc_line++;
            lx->loc_col = 1;
        } else if ((c & 0xc0) != 0x80) {
            lx->loc_col++;
        }
    }
    *line = lx->loc_line;
    *col = lx->loc_col;
}

static int lex_error(lexer *lx, size_t pos, const char *fmt, const char *arg) {
    int line, col;
    loc(lx, pos, &line, &col);
    char msg[256];
    snprintf(msg, sizeof msg, fmt, arg);
    return om_errorf("%s %d:%d: %s", lx->t->name, line, col, msg);
}

static jtoken *push(lexer *lx, jtok_kind kind, size_t pos) {
    if (lx->ntoks == lx->cap) {
        size_t cap = lx->cap ? lx->cap * 2 : 256;
        jtoken *p = realloc(lx->toks, cap * sizeof *p);
        if (!p) {
            om_errorf("out of memory");
            return NULL;
        }
        lx->toks = p;
        lx->cap = cap;
    }
    jtoken *tk = &lx->toks[lx->ntoks++];
    memset(tk, 0, sizeof *tk);
    tk->kind = kind;
    loc(lx, pos, &tk->line, &tk->col);
    return tk;
}

static int push_data(lexer *lx, size_t pos, size_t len) {
    if (!len) return 0;
    jtoken *tk = push(lx, T_DATA, pos);
    if (!tk) return -1;
    tk->s = lx->src + pos;
    tk->len = len;
    return 0;
}

/* Python's \s at src[pos]: returns the byte length of the whitespace char, 0 if none. */
static size_t space_at(const lexer *lx, size_t pos) {
    if (pos >= lx->n) return 0;
    size_t p = pos;
    int cp = utf8_decode(lx->src, lx->n, &p);
    return py_isspace((uint32_t)cp) ? p - pos : 0;
}

static size_t skip_space(const lexer *lx, size_t pos) {
    size_t k;
    while ((k = space_at(lx, pos))) pos += k;
    return pos;
}

/* Length of the text [start, end) once trailing Unicode whitespace is removed (str.rstrip). */
static size_t rstrip_len(const lexer *lx, size_t start, size_t end) {
    size_t e = end;
    while (e > start) {
        size_t b = e - 1;
        while (b > start && ((unsigned char)lx->src[b] & 0xc0) == 0x80) b--;
        size_t p = b;
        int cp = utf8_decode(lx->src, lx->n, &p);
        if (!py_isspace((uint32_t)cp)) break;
        e = b;
    }
    return e - start;
}

/* The text before a tag as jinja2's OptionalLStrip rule leaves it. */
static size_t strip_before(const lexer *lx, size_t start, size_t end, char sign, bool lstrip,
                           bool line_starting) {
    if (sign == '-') return rstrip_len(lx, start, end);
    if (sign == '+' || !lstrip) return end - start;
    size_t l = end;
    while (l > start && lx->src[l - 1] != '\n') l--;
    if (l == start && !line_starting) return end - start;
    if (l == end) return end - start; /* \s+ must match something */
    for (size_t p = l; p < end;) {
        size_t k = space_at(lx, p);
        if (!k) return end - start;
        p += k;
    }
    return l - start;
}

static bool is_name_start(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}
static bool is_name_char(unsigned char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes a string literal body with Python's unicode-escape rules into the arena. */
static int decode_string(lexer *lx, size_t pos, const char *s, size_t len, jtoken *tk) {
    char *out = jarena_alloc(lx->t, len + 1);
    if (!out) return -1;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        if (s[i] != '\\' || i + 1 >= len) {
            out[o++] = s[i++];
            continue;
        }
        char c = s[i + 1];
        i += 2;
        uint32_t cp;
        int digits = 0;
        switch (c) {
        case '\n': continue;
        case '\\': out[o++] = '\\'; continue;
        case '\'': out[o++] = '\''; continue;
        case '"': out[o++] = '"'; continue;
        case 'a': out[o++] = '\a'; continue;
        case 'b': out[o++] = '\b'; continue;
        case 'f': out[o++] = '\f'; continue;
        case 'n': out[o++] = '\n'; continue;
        case 'r': out[o++] = '\r'; continue;
        case 't': out[o++] = '\t'; continue;
        case 'v': out[o++] = '\v'; continue;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        case 'N': return lex_error(lx, pos, "%s", "unsupported \\N{...} escape in a string literal");
        default:
            if (c >= '0' && c <= '7') {
                cp = (uint32_t)(c - '0');
                for (int k = 0; k < 2 && i < len && s[i] >= '0' && s[i] <= '7'; k++)
                    cp = cp * 8 + (uint32_t)(s[i++] - '0');
                char u[4];
                size_t ul = utf8_encode(cp, u);
                memcpy(out + o, u, ul); /* octal escapes are at most 4 source bytes */
                o += ul;
                continue;
            }
            out[o++] = '\\';
            out[o++] = c;
            continue;
        }
        cp = 0;
        for (int k = 0; k < digits; k++) {
            int h = i < len ? hexval(s[i]) : -1;
            if (h < 0) return lex_error(lx, pos, "%s", "truncated escape in a string literal");
            cp = cp * 16 + (uint32_t)h;
            i++;
        }
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return lex_error(lx, pos, "%s", "invalid code point escape in a string literal");
        char u[4];
        size_t ul = utf8_encode(cp, u);
        memcpy(out + o, u, ul); /* the escape took at least ul source bytes */
        o += ul;
    }
    out[o] = 0;
    tk->s = out;
    tk->len = o;
    return 0;
}

/* Matches jinja2's float_re at pos (digits with optional '_' separators, a fraction and/or an
 * exponent); returns its length or 0. */
static size_t match_digits(const char *s, size_t n, size_t p) {
    size_t start = p;
    if (p >= n || !is_digit(s[p])) return 0;
    while (p < n && (is_digit(s[p]) || (s[p] == '_' && p + 1 < n && is_digit(s[p + 1])))) p++;
    return p - start;
}

static size_t match_float(const lexer *lx, size_t pos) {
    const char *s = lx->src;
    size_t n = lx->n;
    if (pos > 0 && s[pos - 1] == '.') return 0;
    size_t p = pos + match_digits(s, n, pos);
    if (p == pos) return 0;
    bool frac = false;
    if (p < n && s[p] == '.') {
        size_t d = match_digits(s, n, p + 1);
        if (d) {
            p += 1 + d;
            frac = true;
        }
    }
    if (p < n && (s[p] == 'e' || s[p] == 'E')) {
        size_t q = p + 1;
        if (q < n && (s[q] == '+' || s[q] == '-')) q++;
        size_t d = match_digits(s, n, q);
        if (d) return q + d - pos;
    }
    return frac ? p - pos : 0;
}

static int lex_number(lexer *lx, size_t *pos) {
    const char *s = lx->src;
    size_t p = *pos;
    size_t flen = match_float(lx, p);
    char buf[128];
    if (flen) {
        size_t o = 0;
        for (size_t i = 0; i < flen && o + 1 < sizeof buf; i++)
            if (s[p + i] != '_') buf[o++] = s[p + i];
        buf[o] = 0;
        jtoken *tk = push(lx, T_FLOAT, p);
        if (!tk) return -1;
        tk->f = strtod(buf, NULL);
        *pos = p + flen;
        return 0;
    }
    int base = 10;
    size_t q = p;
    if (s[p] == '0' && p + 1 < lx->n && s[p + 1] && strchr("bBoOxX", s[p + 1])) {
        char b = (char)(s[p + 1] | 0x20);
        base = b == 'b' ? 2 : b == 'o' ? 8 : 16;
        q = p + 2;
    }
    uint64_t v = 0;
    size_t nd = 0;
    bool overflow = false;
    if (base == 10 && s[p] == '0') {
        /* "0(_?0)*": a zero literal may only continue with zeros */
        q = p + 1;
        while (q < lx->n && (s[q] == '0' || (s[q] == '_' && q + 1 < lx->n && s[q + 1] == '0'))) q++;
        nd = 1;
    } else {
        while (q < lx->n) {
            int h = hexval(s[q]);
            if (s[q] == '_' && q + 1 < lx->n && hexval(s[q + 1]) >= 0 && hexval(s[q + 1]) < base) {
                q++;
                continue;
            }
            if (h < 0 || h >= base) break;
            if (v > (UINT64_MAX - (uint64_t)h) / (uint64_t)base) overflow = true;
            v = v * (uint64_t)base + (uint64_t)h;
            nd++;
            q++;
        }
    }
    if (!nd) return lex_error(lx, p, "%s", "invalid integer literal");
    if (overflow || v > (uint64_t)INT64_MAX)
        return lex_error(lx, p, "%s", "integer literal too large");
    jtoken *tk = push(lx, T_INT, p);
    if (!tk) return -1;
    tk->i = (int64_t)v;
    *pos = q;
    return 0;
}

static const char *const OPS2[] = {"//", "**", "==", "!=", ">=", "<="};
static const char OPS1[] = "+-/*%~[](){}><=.:|,;";
static const char *const OPS1S[] = {"+", "-", "/", "*", "%", "~", "[", "]", "(", ")",
                                    "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"};

/* Tokens of one {{ }} or {% %} tag, from pos to its end; leaves pos after the end. */
static int lex_tag(lexer *lx, size_t *ppos, bool block, bool *line_starting) {
    const char *s = lx->src;
    size_t n = lx->n, pos = *ppos, tag_start = pos;
    char stack[256];
    size_t depth = 0;
    for (;;) {
        pos = skip_space(lx, pos);
        if (pos >= n)
            return lex_error(lx, tag_start, "%s",
                             block ? "unexpected end of template inside a block tag"
                                   : "unexpected end of template inside a variable tag");
        if (!depth) {
            size_t end = 0;
            bool trimmed_newline = false;
            if (block) {
                if (s[pos] == '+' && pos + 2 < n && s[pos + 1] == '%' && s[pos + 2] == '}') {
                    end = pos + 3;
                } else if (s[pos] == '-' && pos + 2 < n && s[pos + 1] == '%' && s[pos + 2] == '}') {
                    end = skip_space(lx, pos + 3);
                } else if (s[pos] == '%' && pos + 1 < n && s[pos + 1] == '}') {
                    end = pos + 2;
                    if (end < n && s[end] == '\n') {
                        end++;
                        trimmed_newline = true;
                    }
                }
            } else {
                if (s[pos] == '-' && pos + 2 < n && s[pos + 1] == '}' && s[pos + 2] == '}')
                    end = skip_space(lx, pos + 3);
                else if (s[pos] == '}' && pos + 1 < n && s[pos + 1] == '}')
                    end = pos + 2;
            }
            if (end) {
                if (!push(lx, block ? T_BLOCK_END : T_VAR_END, pos)) return -1;
                *line_starting = trimmed_newline || (end > pos && s[end - 1] == '\n');
                *ppos = end;
                return 0;
            }
        }
        unsigned char c = (unsigned char)s[pos];
        if (is_digit((char)c)) {
            if (lex_number(lx, &pos)) return -1;
        } else if (is_name_start(c)) {
            size_t q = pos;
            while (q < n && is_name_char((unsigned char)s[q])) q++;
            jtoken *tk = push(lx, T_NAME, pos);
            if (!tk) return -1;
            tk->s = jarena_strdup(lx->t, s + pos, q - pos);
            if (!tk->s) return -1;
            tk->len = q - pos;
            pos = q;
        } else if (c == '\'' || c == '"') {
            size_t q = pos + 1;
            while (q < n && s[q] != (char)c) q += s[q] == '\\' && q + 1 < n ? 2 : 1;
            if (q >= n) return lex_error(lx, pos, "%s", "unterminated string literal");
            jtoken *tk = push(lx, T_STRING, pos);
            if (!tk || decode_string(lx, pos, s + pos + 1, q - pos - 1, tk)) return -1;
            pos = q + 1;
        } else {
            const char *op = NULL;
            for (size_t k = 0; k < sizeof OPS2 / sizeof OPS2[0]; k++)
                if (pos + 1 < n && s[pos] == OPS2[k][0] && s[pos + 1] == OPS2[k][1]) op = OPS2[k];
            if (!op) {
                const char *f = c ? strchr(OPS1, (char)c) : NULL;
                if (!f) {
                    char ch[8] = {0};
                    size_t p2 = pos;
                    utf8_decode(s, n, &p2);
                    memcpy(ch, s + pos, p2 - pos < 7 ? p2 - pos : 7);
                    return lex_error(lx, pos, "unexpected char '%s'", ch);
                }
                op = OPS1S[f - OPS1];
            }
            size_t ol = strlen(op);
            if (ol == 1 && (c == '(' || c == '[' || c == '{')) {
                if (depth == sizeof stack) return lex_error(lx, pos, "%s", "brackets nested too deeply");
                stack[depth++] = c == '(' ? ')' : c == '[' ? ']' : '}';
            } else if (ol == 1 && (c == ')' || c == ']' || c == '}')) {
                char ch[2] = {(char)c, 0};
                if (!depth) return lex_error(lx, pos, "unexpected '%s'", ch);
                if (stack[depth - 1] != (char)c) {
                    char msg[64];
                    snprintf(msg, sizeof msg, "unexpected '%c', expected '%c'", c, stack[depth - 1]);
                    return lex_error(lx, pos, "%s", msg);
                }
                depth--;
            }
            jtoken *tk = push(lx, T_OP, pos);
            if (!tk) return -1;
            tk->s = op;
            tk->len = ol;
            pos += ol;
        }
    }
}

/* After "{% raw %}": the raw text up to "{% endraw %}". */
static int lex_raw(lexer *lx, size_t *ppos, bool *line_starting) {
    const char *s = lx->src;
    size_t n = lx->n, start = *ppos;
    for (size_t q = start; q + 1 < n; q++) {
        if (s[q] != '{' || s[q + 1] != '%') continue;
        size_t p = q + 2;
        char sign = 0;
        if (p < n && (s[p] == '-' || s[p] == '+')) sign = s[p++];
        p = skip_space(lx, p);
        if (p + 6 > n || memcmp(s + p, "endraw", 6) != 0) continue;
        p = skip_space(lx, p + 6);
        size_t end = 0;
        if (p + 2 < n && s[p] == '+' && s[p + 1] == '%' && s[p + 2] == '}') end = p + 3;
        else if (p + 2 < n && s[p] == '-' && s[p + 1] == '%' && s[p + 2] == '}') end = skip_space(lx, p + 3);
        else if (p + 1 < n && s[p] == '%' && s[p + 1] == '}') {
            end = p + 2;
            if (end < n && s[end] == '\n') end++;
        }
        if (!end) continue;
        if (push_data(lx, start, strip_before(lx, start, q, sign, true, *line_starting))) return -1;
        *line_starting = s[end - 1] == '\n';
        *ppos = end;
        return 0;
    }
    return lex_error(lx, start, "%s", "missing end of raw directive");
}

/* "{%(-|+|)\s*raw\s*(-%}\s*|%})" at q: returns the position after it, or 0. */
static size_t match_raw_begin(const lexer *lx, size_t q) {
    const char *s = lx->src;
    size_t n = lx->n, p = q + 2;
    if (p < n && (s[p] == '-' || s[p] == '+')) p++;
    p = skip_space(lx, p);
    if (p + 3 > n || memcmp(s + p, "raw", 3) != 0) return 0;
    p = skip_space(lx, p + 3);
    if (p + 2 < n && s[p] == '-' && s[p + 1] == '%' && s[p + 2] == '}') return skip_space(lx, p + 3);
    if (p + 1 < n && s[p] == '%' && s[p + 1] == '}') return p + 2;
    return 0;
}

int jinja_lex(jinja_template *t, const char *src, size_t len, jtoken **toks, size_t *ntoks) {
    /* Normalize newlines (\r\n and \r become \n) and drop one trailing newline, as jinja2
     * does before lexing; the normalized source lives in the arena for data tokens. */
    char *norm = jarena_alloc(t, len + 1);
    if (!norm) return -1;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            norm[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            norm[n++] = src[i];
        }
    }
    if (n && norm[n - 1] == '\n') n--;
    norm[n] = 0;

    lexer lx = {.t = t, .src = norm, .n = n, .loc_line = 1, .loc_col = 1};
    size_t pos = 0;
    bool line_starting = true;
    while (pos < n) {
        size_t q = pos;
        while (q + 1 < n && !(norm[q] == '{' && (norm[q + 1] == '{' || norm[q + 1] == '%' || norm[q + 1] == '#')))
            q++;
        if (q + 1 >= n) {
            if (push_data(&lx, pos, n - pos)) goto fail;
            break;
        }
        char kind = norm[q + 1];
        char sign = q + 2 < n && (norm[q + 2] == '-' || norm[q + 2] == '+') ? norm[q + 2] : 0;
        size_t raw_end = kind == '%' ? match_raw_begin(&lx, q) : 0;
        size_t keep = strip_before(&lx, pos, q, sign, kind != '{', line_starting);
        if (push_data(&lx, pos, keep)) goto fail;
        if (raw_end) {
            pos = raw_end;
            line_starting = norm[raw_end - 1] == '\n';
            if (lex_raw(&lx, &pos, &line_starting)) goto fail;
            continue;
        }
        size_t body = q + 2 + (sign ? 1 : 0);
        if (kind == '#') {
            size_t e = body;
            while (e + 1 < n && !(norm[e] == '#' && norm[e + 1] == '}')) e++;
            if (e + 1 >= n) {
                lex_error(&lx, q, "%s", "missing end of comment tag");
                goto fail;
            }
            size_t end = e + 2;
            if (e > body && norm[e - 1] == '-') {
                end = skip_space(&lx, end);
            } else if (!(e > body && norm[e - 1] == '+') && end < n && norm[end] == '\n') {
                end++;
            }
            line_starting = norm[end - 1] == '\n';
            pos = end;
            continue;
        }
        bool block = kind == '%';
        if (!push(&lx, block ? T_BLOCK_BEGIN : T_VAR_BEGIN, q)) goto fail;
        pos = body;
        if (lex_tag(&lx, &pos, block, &line_starting)) goto fail;
    }
    if (!push(&lx, T_EOF, n)) goto fail;
    *toks = lx.toks;
    *ntoks = lx.ntoks;
    return 0;
fail:
    free(lx.toks);
    return -1;
}
