/* Text machinery of the tokenizer: buffers and hash maps, UTF-8 and Unicode classes, regexes,
 * the added-token matcher, normalizers and pre-tokenizer splitting.
 *
 * Hugging Face `tokenizers` compiles tokenizer.json regexes with Oniguruma (Ruby syntax); we use
 * PCRE2 with JIT, translating the few escapes whose meaning differs (\s, \h, \w, (?m)) so that
 * the same text matches. Every splitting rule below mirrors the corresponding Rust code
 * (NormalizedString::split, AddedVocabulary::find_matches); comments name the differences
 * that matter for exactness. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "core/tokenizer_internal.h"

/* ---- buffers ------------------------------------------------------------------------------- */

int tk_buf_reserve(tk_buf *b, size_t extra) {
    if (extra > SIZE_MAX / 2 - b->len) return om_errorf("tokenizer: out of memory");
    size_t need = b->len + extra + 1; /* room for a terminating NUL */
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return om_errorf("tokenizer: out of memory");
    b->data = p;
    b->cap = cap;
    return 0;
}

int tk_buf_append(tk_buf *b, const void *p, size_t n) {
    if (tk_buf_reserve(b, n)) return -1;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

void tk_buf_free(tk_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int tk_ids_push(tk_ids *v, int32_t id) {
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = realloc(v->data, cap * sizeof *p);
        if (!p) return om_errorf("tokenizer: out of memory");
        v->data = p;
        v->cap = cap;
    }
    v->data[v->len++] = id;
    return 0;
}

int tk_ids_append(tk_ids *v, const int32_t *ids, size_t n) {
    if (v->len + n > v->cap) {
        size_t cap = v->cap ? v->cap : 64;
        while (cap < v->len + n) cap *= 2;
        int32_t *p = realloc(v->data, cap * sizeof *p);
        if (!p) return om_errorf("tokenizer: out of memory");
        v->data = p;
        v->cap = cap;
    }
    if (n) memcpy(v->data + v->len, ids, n * sizeof *ids);
    v->len += n;
    return 0;
}

int tk_ranges_push(tk_ranges *v, size_t start, size_t end) { return tk_ranges_push_flag(v, start, end, 0); }

int tk_ranges_push_flag(tk_ranges *v, size_t start, size_t end, int flag) {
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 32;
        tk_range *p = realloc(v->data, cap * sizeof *p);
        if (!p) return om_errorf("tokenizer: out of memory");
        v->data = p;
        v->cap = cap;
    }
    v->data[v->len].start = start;
    v->data[v->len].end = end;
    v->data[v->len].flag = flag;
    v->len++;
    return 0;
}

/* ---- hashing ---------------------------------------------------------------------------------- */

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    return x;
}

/* Words are short, so a simple 8-bytes-at-a-time multiply-mix beats anything fancier. */
uint64_t tk_hash(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xff51afd7ed558ccdULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, s, n);
        h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
    }
    return mix64(h);
}

/* ---- string map -------------------------------------------------------------------------------- */

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

int tk_strmap_init(tk_strmap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    size_t cap = pow2_at_least(expected * 2 + 1);
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots) return om_errorf("tokenizer: out of memory");
    for (size_t i = 0; i < cap; i++) {
        m->slots[i].off = UINT32_MAX;
        m->slots[i].len = 0;
    }
    m->mask = cap - 1;
    return 0;
}

void tk_strmap_free(tk_strmap *m) {
    free(m->slots);
    tk_buf_free(&m->keys);
    memset(m, 0, sizeof *m);
}

static int strmap_grow(tk_strmap *m) {
    size_t cap = (m->mask + 1) * 2;
    tk_strmap_slot *s = malloc(cap * sizeof *s);
    if (!s) return om_errorf("tokenizer: out of memory");
    for (size_t i = 0; i < cap; i++) {
        s[i].off = UINT32_MAX;
        s[i].len = 0;
    }
    for (size_t i = 0; i <= m->mask; i++) {
        tk_strmap_slot *o = &m->slots[i];
        if (o->off == UINT32_MAX) continue;
        size_t j = o->hash & (cap - 1);
        while (s[j].off != UINT32_MAX) j = (j + 1) & (cap - 1);
        s[j] = *o;
    }
    free(m->slots);
    m->slots = s;
    m->mask = cap - 1;
    return 0;
}

int tk_strmap_put(tk_strmap *m, const char *k, size_t n, int32_t val) {
    if (n > UINT32_MAX || m->keys.len + n > UINT32_MAX - 1) return om_errorf("tokenizer: vocabulary too large");
    if ((m->count + 1) * 4 > (m->mask + 1) * 3 && strmap_grow(m)) return -1;
    uint64_t h = tk_hash(k, n);
    size_t j = h & m->mask;
    for (;;) {
        tk_strmap_slot *s = &m->slots[j];
        if (s->off == UINT32_MAX) break;
        if (s->hash == h && s->len == n && !memcmp(m->keys.data + s->off, k, n)) {
            s->val = val;
            return 0;
        }
        j = (j + 1) & m->mask;
    }
    uint32_t off = (uint32_t)m->keys.len;
    if (tk_buf_append(&m->keys, k, n) || tk_buf_append(&m->keys, "", 1)) return -1;
    tk_strmap_slot *s = &m->slots[j];
    s->hash = h;
    s->off = off;
    s->len = (uint32_t)n;
    s->val = val;
    m->count++;
    return 0;
}

int32_t tk_strmap_get(const tk_strmap *m, const char *k, size_t n) {
    if (!m->slots) return -1;
    uint64_t h = tk_hash(k, n);
    size_t j = h & m->mask;
    for (;;) {
        const tk_strmap_slot *s = &m->slots[j];
        if (s->off == UINT32_MAX) return -1;
        if (s->hash == h && s->len == n && !memcmp(m->keys.data + s->off, k, n)) return s->val;
        j = (j + 1) & m->mask;
    }
}

/* ---- u64 map ------------------------------------------------------------------------------------ */

int tk_u64map_init(tk_u64map *m, size_t expected) {
    size_t cap = pow2_at_least(expected * 2 + 1);
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots) return om_errorf("tokenizer: out of memory");
    for (size_t i = 0; i < cap; i++) m->slots[i].key = UINT64_MAX;
    m->mask = cap - 1;
    m->count = 0;
    return 0;
}

void tk_u64map_free(tk_u64map *m) {
    free(m->slots);
    memset(m, 0, sizeof *m);
}

int tk_u64map_put(tk_u64map *m, uint64_t key, uint32_t a, uint32_t b) {
    if ((m->count + 1) * 4 > (m->mask + 1) * 3) {
        size_t cap = (m->mask + 1) * 2;
        tk_u64map_slot *s = malloc(cap * sizeof *s);
        if (!s) return om_errorf("tokenizer: out of memory");
        for (size_t i = 0; i < cap; i++) s[i].key = UINT64_MAX;
        for (size_t i = 0; i <= m->mask; i++) {
            if (m->slots[i].key == UINT64_MAX) continue;
            size_t j = mix64(m->slots[i].key) & (cap - 1);
            while (s[j].key != UINT64_MAX) j = (j + 1) & (cap - 1);
            s[j] = m->slots[i];
        }
        free(m->slots);
        m->slots = s;
        m->mask = cap - 1;
    }
    size_t j = mix64(key) & m->mask;
    while (m->slots[j].key != UINT64_MAX && m->slots[j].key != key) j = (j + 1) & m->mask;
    if (m->slots[j].key == UINT64_MAX) m->count++;
    m->slots[j].key = key;
    m->slots[j].a = a;
    m->slots[j].b = b;
    return 0;
}

const tk_u64map_slot *tk_u64map_get(const tk_u64map *m, uint64_t key) {
    if (!m->slots) return NULL;
    size_t j = mix64(key) & m->mask;
    for (;;) {
        const tk_u64map_slot *s = &m->slots[j];
        if (s->key == key) return s;
        if (s->key == UINT64_MAX) return NULL;
        j = (j + 1) & m->mask;
    }
}

/* ---- UTF-8 ---------------------------------------------------------------------------------------- */

/* Length of the well-formed character at s[0..n), 0 if s[0] starts an ill-formed one, or
 * -k when the k available bytes are a valid but incomplete start. *bad receives the length of
 * the maximal ill-formed subpart (what Rust's Utf8Chunks reports as one error). */
static int utf8_check(const unsigned char *s, size_t n, int *bad) {
    unsigned c = s[0];
    *bad = 1;
    if (c < 0x80) return 1;
    int w;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        w = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        w = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        w = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    for (int i = 1; i < w; i++) {
        if ((size_t)i >= n) return -i;
        unsigned b = s[i];
        unsigned l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h) {
            *bad = i;
            return 0;
        }
    }
    return w;
}

size_t tk_utf8_valid_prefix(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        /* ASCII runs dominate real text; check eight bytes at a time. */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ULL) break;
            i += 8;
        }
        if (i >= n) break;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int bad, k = utf8_check(s + i, n - i, &bad);
        if (k <= 0) return i;
        i += (size_t)k;
    }
    return n;
}

int tk_utf8_decode(const char *str, uint32_t *cp) {
    const unsigned char *s = (const unsigned char *)str;
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xE0) {
        *cp = ((c & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (c < 0xF0) {
        *cp = ((c & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((c & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

int tk_utf8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t tk_utf8_lossy_append(tk_buf *out, const unsigned char *s, size_t n, int final) {
    if (!n) return 0;
    size_t i = 0, run = 0; /* s[run..i) is valid and not yet copied */
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int bad, k = utf8_check(s + i, n - i, &bad);
        if (k > 0) {
            i += (size_t)k;
            continue;
        }
        if (tk_buf_append(out, s + run, i - run)) return (size_t)-1;
        if (k < 0 && !final) return i; /* incomplete character at the end: keep it */
        if (tk_buf_append(out, "\xEF\xBF\xBD", 3)) return (size_t)-1;
        i += k < 0 ? (size_t)(-k) : (size_t)bad;
        run = i;
    }
    if (tk_buf_append(out, s + run, i - run)) return (size_t)-1;
    return n;
}

/* ---- Unicode classes -------------------------------------------------------------------------------- */

int tk_is_whitespace(uint32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 9 && c <= 13);
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

int tk_is_numeric(uint32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

int tk_is_mark(uint32_t c) {
    if (c < 0x300) return 0;
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_MC || k == UTF8PROC_CATEGORY_ME;
}

/* Rust regex's \w: Alphabetic, marks, decimal digits, connector punctuation, join controls.
 * Alphabetic beyond letters and Nl adds a few symbol ranges (circled and squared letters). */
int tk_is_word(uint32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (c == 0x200C || c == 0x200D) return 1;
    if ((c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) ||
        (c >= 0x1F170 && c <= 0x1F189))
        return 1;
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_ND) || k == UTF8PROC_CATEGORY_NL ||
           k == UTF8PROC_CATEGORY_PC;
}

/* ---- byte-level table ------------------------------------------------------------------------------- */

const uint16_t tk_byte_to_cp[256] = {
    256, 257, 258, 259, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 270, 271,
    272, 273, 274, 275, 276, 277, 278, 279, 280, 281, 282, 283, 284, 285, 286, 287,
    288, 33,  34,  35,  36,  37,  38,  39,  40,  41,  42,  43,  44,  45,  46,  47,
    48,  49,  50,  51,  52,  53,  54,  55,  56,  57,  58,  59,  60,  61,  62,  63,
    64,  65,  66,  67,  68,  69,  70,  71,  72,  73,  74,  75,  76,  77,  78,  79,
    80,  81,  82,  83,  84,  85,  86,  87,  88,  89,  90,  91,  92,  93,  94,  95,
    96,  97,  98,  99,  100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
    112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 289,
    290, 291, 292, 293, 294, 295, 296, 297, 298, 299, 300, 301, 302, 303, 304, 305,
    306, 307, 308, 309, 310, 311, 312, 313, 314, 315, 316, 317, 318, 319, 320, 321,
    322, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 323, 174, 175,
    176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191,
    192, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 204, 205, 206, 207,
    208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220, 221, 222, 223,
    224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239,
    240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253, 254, 255,
};

int tk_cp_to_byte(uint32_t cp) {
    if (cp < 256) return tk_byte_to_cp[cp] == cp ? (int)cp : -1;
    if (cp > 323) return -1;
    /* The remapped bytes are, in order: 0-32, 127-160, 173. */
    uint32_t k = cp - 256;
    if (k <= 32) return (int)k;
    if (k <= 66) return (int)(k - 33 + 127);
    return 173;
}

/* ---- regexes ----------------------------------------------------------------------------------------- */

/* Oniguruma's \s is Unicode White_Space; PCRE2's (with UCP) also takes U+180E. */
#define WS_CLASS "\\t-\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"
/* Oniguruma's \w takes all numbers and alphabetic symbols; PCRE2's takes letters and numbers. */
#define WORD_CLASS "\\p{Alphabetic}\\p{L}\\p{M}\\p{N}\\p{Pc}"

static int translate_onig(const char *p, size_t n, tk_buf *out) {
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char e = p[i + 1];
            const char *rep = NULL;
            char tmp[32];
            switch (e) {
            case 's': rep = in_class ? WS_CLASS : "[" WS_CLASS "]"; break;
            case 'S': rep = in_class ? "\\S" : "[^" WS_CLASS "]"; break;
            case 'h': rep = in_class ? "0-9a-fA-F" : "[0-9a-fA-F]"; break; /* Ruby: hex digit */
            case 'H': rep = in_class ? "\\x{0}-/:-@G-`g-\\x{10ffff}" : "[^0-9a-fA-F]"; break;
            case 'w': rep = in_class ? WORD_CLASS : "[" WORD_CLASS "]"; break;
            case 'W': rep = in_class ? "\\W" : "[^" WORD_CLASS "]"; break;
            case 'u':
                /* \uHHHH is Oniguruma's; PCRE2 wants \x{HHHH}. */
{
                size_t k = 0;
                while (k < 4 && i + 2 + k < n && p[i + 2 + k] && strchr("0123456789abcdefABCDEF", p[i + 2 + k])) k++;
                if (k == 4) {
                    snprintf(tmp, sizeof tmp, "\\x{%.4s}", p + i + 2);
                    if (tk_buf_append(out, tmp, strlen(tmp))) return -1;
                    i += 5;
                    continue;
                }
                break;
            }
            default: break;
            }
            if (rep) {
                if (tk_buf_append(out, rep, strlen(rep))) return -1;
            } else if (tk_buf_append(out, p + i, 2)) {
                return -1;
            }
            i++;
            continue;
        }
        if (in_class) {
            if (c == '[' && i + 1 < n && p[i + 1] == ':') {
                /* POSIX class [:alpha:] inside a bracket expression: copy through its ']' */
                const char *end = memchr(p + i + 2, ']', n - i - 2);
                if (end) {
                    size_t len = (size_t)(end - (p + i)) + 1;
                    if (tk_buf_append(out, p + i, len)) return -1;
                    i += len - 1;
                    continue;
                }
            }
            if (c == '[') in_class++;
            else if (c == ']') in_class--;
        } else if (c == '[') {
            in_class = 1;
            if (tk_buf_append(out, "[", 1)) return -1;
            /* a ']' right after '[' or '[^' is a literal */
            if (i + 1 < n && p[i + 1] == '^') {
                if (tk_buf_append(out, "^", 1)) return -1;
                i++;
            }
            if (i + 1 < n && p[i + 1] == ']') {
                if (tk_buf_append(out, "\\]", 2)) return -1;
                i++;
            }
            continue;
        } else if (c == '(' && i + 2 < n && p[i + 1] == '?') {
            /* Ruby's (?m) is dot-matches-newline, PCRE2's (?s). */
            size_t k = i + 2;
            while (k < n && strchr("imx-", p[k]) && p[k]) k++;
            if (k > i + 2 && k < n && (p[k] == ':' || p[k] == ')')) {
                if (tk_buf_append(out, "(?", 2)) return -1;
                for (size_t j = i + 2; j < k; j++) {
                    char o = p[j] == 'm' ? 's' : p[j];
                    if (tk_buf_append(out, &o, 1)) return -1;
                }
                i = k - 1;
                continue;
            }
        }
        if (tk_buf_append(out, &c, 1)) return -1;
    }
    return 0;
}

int tk_regex_compile(tk_regex *re, const char *pattern, size_t len, int literal, const char *where) {
    memset(re, 0, sizeof *re);
    tk_buf tr = {0};
    const char *pat = pattern;
    size_t plen = len;
    uint32_t opts = PCRE2_UTF | PCRE2_NO_UTF_CHECK;
    if (literal) {
        opts |= PCRE2_LITERAL;
    } else {
        /* Ruby's ^ and $ are line anchors; '.' already excludes only \n in both. */
        opts |= PCRE2_UCP | PCRE2_MULTILINE | PCRE2_ALT_CIRCUMFLEX;
        if (translate_onig(pattern, len, &tr)) return -1;
        pat = tr.data ? tr.data : "";
        plen = tr.len;
    }
    if (tk_utf8_valid_prefix(pattern, len) != len) {
        tk_buf_free(&tr);
        return om_errorf("tokenizer.json: %s: pattern is not valid UTF-8", where);
    }
    int err;
    PCRE2_SIZE eoff;
    re->code = pcre2_compile((PCRE2_SPTR)pat, plen, opts, &err, &eoff, NULL);
    if (!re->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        om_errorf("tokenizer.json: %s: cannot compile regex '%.*s' (as '%.*s'): %s at offset %zu", where,
                  (int)(len > 200 ? 200 : len), pattern, (int)(plen > 200 ? 200 : plen), pat, (char *)msg,
                  (size_t)eoff);
        tk_buf_free(&tr);
        return -1;
    }
    tk_buf_free(&tr);
    re->jit = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;
    return 0;
}

void tk_regex_free(tk_regex *re) {
    if (re->code) pcre2_code_free(re->code);
    re->code = NULL;
}

int tk_matcher_init(tk_matcher *m) {
    memset(m, 0, sizeof *m);
    m->md = pcre2_match_data_create(1, NULL);
    m->mctx = pcre2_match_context_create(NULL);
    if (!m->md || !m->mctx) {
        tk_matcher_free(m);
        return om_errorf("tokenizer: out of memory");
    }
    return 0;
}

void tk_matcher_free(tk_matcher *m) {
    if (m->md) pcre2_match_data_free(m->md);
    if (m->mctx) pcre2_match_context_free(m->mctx);
    if (m->jstack) pcre2_jit_stack_free(m->jstack);
    memset(m, 0, sizeof *m);
}

int tk_regex_find_all(const tk_regex *re, tk_matcher *m, const char *s, size_t n, tk_ranges *out) {
    size_t pos = 0;
    size_t last_end = SIZE_MAX;
    while (pos <= n) {
        int rc;
        if (re->jit)
            rc = pcre2_jit_match(re->code, (PCRE2_SPTR)s, n, pos, 0, m->md, m->mctx);
        else
            rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, m->md, m->mctx);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT && (!m->jstack)) {
            /* The default 32 KiB machine stack is too small for this text: give it room. */
            m->jstack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, NULL);
            if (!m->jstack) return om_errorf("tokenizer: out of memory");
            pcre2_jit_stack_assign(m->mctx, NULL, m->jstack);
            continue;
        }
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return om_errorf("tokenizer: regex match failed: %s", (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
        size_t st = ov[0], en = ov[1];
        if (en < st) en = st; /* \K can report these; treat as empty */
        if (st == en && last_end == en) {
            /* as onig's find_iter: no empty match right after the previous match */
            pos += pos < n ? (size_t)tk_utf8_len((unsigned char)s[pos]) : 1;
            continue;
        }
        if (tk_ranges_push(out, st, en)) return -1;
        pos = en;
        last_end = en;
    }
    return 0;
}

/* ---- added-token trie -------------------------------------------------------------------------------------- */

int tk_trie_build(tk_trie *t, const tk_added *added, size_t n, int normalized) {
    memset(t, 0, sizeof *t);
    size_t total = 1;
    for (size_t i = 0; i < n; i++)
        if (added[i].normalized == normalized) total += normalized && added[i].norm ? added[i].norm_len : added[i].content_len;
    if (tk_u64map_init(&t->edges, total)) return -1;
    t->term = malloc(total * sizeof *t->term);
    if (!t->term) return om_errorf("tokenizer: out of memory");
    t->term[0] = -1;
    t->n_nodes = 1;
    t->empty = 1;
    for (size_t i = 0; i < n; i++) {
        if (added[i].normalized != normalized) continue;
        const char *p = normalized && added[i].norm ? added[i].norm : added[i].content;
        size_t len = normalized && added[i].norm ? added[i].norm_len : added[i].content_len;
        if (!len) continue;
        uint32_t node = 0;
        for (size_t k = 0; k < len; k++) {
            unsigned char b = (unsigned char)p[k];
            uint64_t key = ((uint64_t)node << 8) | b;
            const tk_u64map_slot *e = tk_u64map_get(&t->edges, key);
            if (e) {
                node = e->a;
            } else {
                uint32_t child = (uint32_t)t->n_nodes++;
                t->term[child] = -1;
                if (tk_u64map_put(&t->edges, key, child, 0)) return -1;
                node = child;
            }
        }
        t->term[node] = (int32_t)i;
        t->first[(unsigned char)p[0] >> 3] |= (uint8_t)(1u << ((unsigned char)p[0] & 7));
        t->empty = 0;
    }
    return 0;
}

void tk_trie_free(tk_trie *t) {
    tk_u64map_free(&t->edges);
    free(t->term);
    memset(t, 0, sizeof *t);
}

static int segments_push(tk_segments *v, size_t start, size_t end, int32_t added) {
    if (start == end && added < 0) return 0; /* HF drops empty splits */
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        tk_segment *p = realloc(v->data, cap * sizeof *p);
        if (!p) return om_errorf("tokenizer: out of memory");
        v->data = p;
        v->cap = cap;
    }
    v->data[v->len].start = start;
    v->data[v->len].end = end;
    v->data[v->len].added = added;
    v->len++;
    return 0;
}

static int ends_with_word(const char *s, size_t n) {
    if (!n) return 0;
    size_t i = n - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    uint32_t cp;
    tk_utf8_decode(s + i, &cp);
    return tk_is_word(cp);
}

static int starts_with_word(const char *s, size_t n) {
    if (!n) return 0;
    uint32_t cp;
    tk_utf8_decode(s, &cp);
    return tk_is_word(cp);
}

int tk_find_added(const tk_trie *t, const tk_added *added, const char *s, size_t n, int split_special,
                  tk_segments *out) {
    if (t->empty) return segments_push(out, 0, n, -1);
    size_t start_offset = 0, p = 0;
    while (p < n) {
        unsigned char c = (unsigned char)s[p];
        if (!(t->first[c >> 3] & (1u << (c & 7)))) {
            p++;
            continue;
        }
        /* longest token starting at p */
        uint32_t node = 0;
        int32_t best = -1;
        size_t best_end = 0;
        for (size_t k = p; k < n; k++) {
            const tk_u64map_slot *e = tk_u64map_get(&t->edges, ((uint64_t)node << 8) | (unsigned char)s[k]);
            if (!e) break;
            node = e->a;
            if (t->term[node] >= 0) {
                best = t->term[node];
                best_end = k + 1;
            }
        }
        if (best < 0) {
            p++;
            continue;
        }
        const tk_added *a = &added[best];
        size_t start = p, stop = best_end;
        p = best_end; /* the matcher resumes after the match whether or not it is used */
        if (split_special && a->special) continue;
        if (a->single_word) {
            int start_space = start == 0 || !ends_with_word(s, start);
            int stop_space = stop == n || !starts_with_word(s + stop, n - stop);
            if (!start_space || !stop_space) continue;
        }
        if (a->lstrip) {
            size_t ns = start;
            while (ns > 0) {
                size_t q = ns - 1;
                while (q > 0 && ((unsigned char)s[q] & 0xC0) == 0x80) q--;
                uint32_t cp;
                tk_utf8_decode(s + q, &cp);
                if (!tk_is_whitespace(cp)) break;
                ns = q;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (a->rstrip) {
            while (stop < n) {
                uint32_t cp;
                int l = tk_utf8_decode(s + stop, &cp);
                if (!tk_is_whitespace(cp)) break;
                stop += (size_t)l;
            }
        }
        if (start_offset < start && segments_push(out, start_offset, start, -1)) return -1;
        if (segments_push(out, start, stop, best)) return -1;
        start_offset = stop;
    }
    if (start_offset < n && segments_push(out, start_offset, n, -1)) return -1;
    return 0;
}

/* ---- normalizers ----------------------------------------------------------------------------------------------- */

static int has_byte_at_least(const char *s, size_t n, unsigned char lim) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= lim) return 1;
    return 0;
}

/* Whether NFC can be cut before this character: it is a starter that never composes with what
 * precedes it and has no canonical decomposition of its own (else it might be a singleton or an
 * exclusion). Below U+0300 all characters qualify; above, marks and anything with a nonzero
 * combining class do not (every second half of a composition is one of those, apart from the
 * Hangul jamo, excluded too). */
static int nfc_boundary(uint32_t cp) {
    if (cp < 0x300) return 1;
    if (cp >= 0x1100 && cp <= 0x11FF) return 0;
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
    if (p->combining_class || p->category == UTF8PROC_CATEGORY_MN || p->category == UTF8PROC_CATEGORY_MC ||
        p->category == UTF8PROC_CATEGORY_ME)
        return 0;
    return !(p->decomp_seqindex != UINT16_MAX && p->decomp_type == 0);
}

static int unicode_normalize(int kind, const char *s, size_t n, tk_buf *out);

/* NFC is local: between two cut points the result depends only on the text there. Copy runs
 * of boundary characters and normalize only the stretches around the others, from the cut
 * before the preceding character to the next cut. Returns 0 with *changed = 0 when there is
 * nothing to do. */
static int nfc_by_regions(const char *s, size_t n, tk_buf *out, int *changed) {
    size_t copied = 0, prev_start = 0, i = 0;
    tk_buf tmp = {0};
    *changed = 0;
    while (i < n) {
        if ((unsigned char)s[i] < 0xCC) {
            prev_start = i;
            i += (size_t)tk_utf8_len((unsigned char)s[i]);
            continue;
        }
        uint32_t cp;
        int l = tk_utf8_decode(s + i, &cp);
        if (nfc_boundary(cp)) {
            prev_start = i;
            i += (size_t)l;
            continue;
        }
        size_t start = i > 0 ? prev_start : 0, end = i + (size_t)l;
        while (end < n) {
            l = tk_utf8_decode(s + end, &cp);
            if (nfc_boundary(cp)) break;
            end += (size_t)l;
        }
        if (!*changed) {
            out->len = 0;
            *changed = 1;
        }
        if (tk_buf_append(out, s + copied, start - copied) || unicode_normalize(TK_NORM_NFC, s + start, end - start, &tmp) ||
            tk_buf_append(out, tmp.data, tmp.len)) {
            tk_buf_free(&tmp);
            return -1;
        }
        copied = i = prev_start = end;
    }
    int rc = *changed ? tk_buf_append(out, s + copied, n - copied) : 0;
    tk_buf_free(&tmp);
    return rc;
}

static int unicode_normalize(int kind, const char *s, size_t n, tk_buf *out) {
    int opts = UTF8PROC_STABLE;
    switch (kind) {
    case TK_NORM_NFC: opts |= UTF8PROC_COMPOSE; break;
    case TK_NORM_NFD: opts |= UTF8PROC_DECOMPOSE; break;
    case TK_NORM_NFKC: opts |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    default: opts |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    }
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst, (utf8proc_option_t)opts);
    if (r < 0) {
        free(dst);
        return om_errorf("tokenizer: unicode normalization failed: %s", utf8proc_errmsg(r));
    }
    out->len = 0;
    int rc = tk_buf_append(out, dst, (size_t)r);
    free(dst);
    return rc;
}

static int apply_normalizer(const tk_normalizer *nz, tk_matcher *m, const char *s, size_t n, tk_buf *out,
                            int *changed) {
    *changed = 0;
    out->len = 0;
    switch (nz->kind) {
    case TK_NORM_NFC:
        return nfc_by_regions(s, n, out, changed);
    case TK_NORM_NFD:
    case TK_NORM_NFKC:
    case TK_NORM_NFKD:
        if (!has_byte_at_least(s, n, 0x80)) return 0;
        *changed = 1;
        return unicode_normalize(nz->kind, s, n, out);
    case TK_NORM_PREPEND:
        if (!n) return 0;
        *changed = 1;
        return tk_buf_append(out, nz->str, nz->str_len) || tk_buf_append(out, s, n) ? -1 : 0;
    case TK_NORM_REPLACE: {
        tk_ranges r = {0};
        if (tk_regex_find_all(&nz->re, m, s, n, &r)) {
            free(r.data);
            return -1;
        }
        if (!r.len) {
            free(r.data);
            return 0;
        }
        *changed = 1;
        size_t prev = 0;
        int rc = 0;
        for (size_t i = 0; i < r.len && !rc; i++) {
            rc = tk_buf_append(out, s + prev, r.data[i].start - prev) || tk_buf_append(out, nz->str, nz->str_len);
            prev = r.data[i].end;
        }
        if (!rc) rc = tk_buf_append(out, s + prev, n - prev);
        free(r.data);
        return rc ? -1 : 0;
    }
    case TK_NORM_LOWERCASE: {
        *changed = 1;
        if (tk_buf_reserve(out, n)) return -1;
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            i += (size_t)tk_utf8_decode(s + i, &cp);
            char enc[8];
            int l;
            if (cp == 0x130) { /* the one unconditional multi-character lowercase mapping */
                memcpy(enc, "i\xCC\x87", 3);
                l = 3;
            } else {
                uint32_t lc = cp < 0x80 ? (cp >= 'A' && cp <= 'Z' ? cp + 32 : cp)
                                        : (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
                l = tk_utf8_encode(lc, enc);
            }
            if (tk_buf_append(out, enc, (size_t)l)) return -1;
        }
        return 0;
    }
    case TK_NORM_STRIP: {
        size_t a = 0, b = n;
        if (nz->left)
            while (a < b) {
                uint32_t cp;
                int l = tk_utf8_decode(s + a, &cp);
                if (!tk_is_whitespace(cp)) break;
                a += (size_t)l;
            }
        if (nz->right)
            while (b > a) {
                size_t q = b - 1;
                while (q > a && ((unsigned char)s[q] & 0xC0) == 0x80) q--;
                uint32_t cp;
                tk_utf8_decode(s + q, &cp);
                if (!tk_is_whitespace(cp)) break;
                b = q;
            }
        if (a == 0 && b == n) return 0;
        *changed = 1;
        return tk_buf_append(out, s + a, b - a);
    }
    case TK_NORM_STRIP_ACCENTS: {
        *changed = 1;
        if (tk_buf_reserve(out, n)) return -1;
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            int l = tk_utf8_decode(s + i, &cp);
            if (!tk_is_mark(cp) && tk_buf_append(out, s + i, (size_t)l)) return -1;
            i += (size_t)l;
        }
        return 0;
    }
    case TK_NORM_BYTELEVEL: {
        *changed = 1;
        if (tk_buf_reserve(out, n * 2)) return -1;
        for (size_t i = 0; i < n; i++) {
            char enc[4];
            int l = tk_utf8_encode(tk_byte_to_cp[(unsigned char)s[i]], enc);
            memcpy(out->data + out->len, enc, (size_t)l);
            out->len += (size_t)l;
        }
        out->data[out->len] = 0;
        return 0;
    }
    }
    return om_errorf("tokenizer: unknown normalizer");
}

int tk_normalize(const tk_normalizer *norms, size_t n_norms, tk_matcher *m, const char *in, size_t n,
                 tk_buf scratch[2], const char **out, size_t *out_len) {
    const char *cur = in;
    size_t cur_len = n;
    int which = 0;
    for (size_t i = 0; i < n_norms; i++) {
        int changed;
        if (apply_normalizer(&norms[i], m, cur, cur_len, &scratch[which], &changed)) return -1;
        if (changed) {
            cur = scratch[which].data ? scratch[which].data : "";
            cur_len = scratch[which].len;
            which ^= 1;
        }
    }
    *out = cur;
    *out_len = cur_len;
    return 0;
}

/* ---- pre-tokenizer splitting ------------------------------------------------------------------------------------- */

/* The (range, is_match) list of HF's Pattern::find_matches: covering s, in order. */
static int find_matches(const tk_pretok *p, tk_matcher *m, const char *s, size_t n, tk_ranges *ranges) {
    ranges->len = 0;
    if (p->has_re) {
        tk_ranges hits = {0};
        if (tk_regex_find_all(&p->re, m, s, n, &hits)) {
            free(hits.data);
            return -1;
        }
        size_t prev = 0;
        int rc = 0;
        for (size_t i = 0; i < hits.len && !rc; i++) {
            if (prev != hits.data[i].start) rc = tk_ranges_push_flag(ranges, prev, hits.data[i].start, 0);
            if (!rc) rc = tk_ranges_push_flag(ranges, hits.data[i].start, hits.data[i].end, 1);
            prev = hits.data[i].end;
        }
        if (!rc && prev != n) rc = tk_ranges_push_flag(ranges, prev, n, 0);
        free(hits.data);
        return rc;
    }
    /* character predicate: every matching character is a match of its own */
    size_t last = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = tk_utf8_decode(s + i, &cp);
        int hit;
        switch (p->kind) {
        case TK_PT_METASPACE: hit = cp == p->repl_cp; break;
        case TK_PT_DIGITS: hit = tk_is_numeric(cp); break;
        default: hit = tk_is_whitespace(cp); break;
        }
        if (hit) {
            if (last < i && tk_ranges_push_flag(ranges, last, i, 0)) return -1;
            if (tk_ranges_push_flag(ranges, i, i + (size_t)l, 1)) return -1;
            last = i + (size_t)l;
        }
        i += (size_t)l;
    }
    if (last < n && tk_ranges_push_flag(ranges, last, n, 0)) return -1;
    return 0;
}

int tk_pretok_split(const tk_pretok *p, tk_matcher *m, const char *s, size_t n, tk_ranges *scratch, tk_ranges *out) {
    out->len = 0;
    if (!n) return 0;
    if (find_matches(p, m, s, n, scratch)) return -1;
    int behavior = p->behavior;
    if (p->kind == TK_PT_METASPACE) behavior = TK_SPLIT_MERGED_NEXT;
    else if (p->kind == TK_PT_DIGITS) behavior = p->individual_digits ? TK_SPLIT_ISOLATED : TK_SPLIT_CONTIGUOUS;
    else if (p->kind == TK_PT_WHITESPACE_SPLIT) behavior = TK_SPLIT_REMOVED;
    else if (p->kind == TK_PT_BYTELEVEL) behavior = TK_SPLIT_ISOLATED;
    size_t k = scratch->len;
    tk_range *r = scratch->data;
    if (p->kind == TK_PT_SPLIT && p->invert)
        for (size_t i = 0; i < k; i++) r[i].flag = !r[i].flag;
    switch (behavior) {
    case TK_SPLIT_ISOLATED:
        for (size_t i = 0; i < k; i++)
            if (tk_ranges_push(out, r[i].start, r[i].end)) return -1;
        break;
    case TK_SPLIT_REMOVED:
        for (size_t i = 0; i < k; i++)
            if (!r[i].flag && tk_ranges_push(out, r[i].start, r[i].end)) return -1;
        break;
    case TK_SPLIT_CONTIGUOUS: {
        int prev = 0;
        for (size_t i = 0; i < k; i++) {
            if (r[i].flag == prev && out->len) out->data[out->len - 1].end = r[i].end;
            else if (tk_ranges_push(out, r[i].start, r[i].end)) return -1;
            prev = r[i].flag;
        }
        break;
    }
    case TK_SPLIT_MERGED_PREV: {
        int prev = 0;
        for (size_t i = 0; i < k; i++) {
            if (r[i].flag && !prev && out->len) out->data[out->len - 1].end = r[i].end;
            else if (tk_ranges_push(out, r[i].start, r[i].end)) return -1;
            prev = r[i].flag;
        }
        break;
    }
    case TK_SPLIT_MERGED_NEXT: {
        int prev = 0;
        for (size_t i = k; i-- > 0;) {
            if (r[i].flag && !prev && out->len) out->data[out->len - 1].start = r[i].start;
            else if (tk_ranges_push(out, r[i].start, r[i].end)) return -1;
            prev = r[i].flag;
        }
        for (size_t a = 0, b = out->len; a + 1 < b; a++, b--) {
            tk_range t = out->data[a];
            out->data[a] = out->data[b - 1];
            out->data[b - 1] = t;
        }
        break;
    }
    }
    /* drop empty pieces (HF filters them after every split) */
    size_t w = 0;
    for (size_t i = 0; i < out->len; i++)
        if (out->data[i].start < out->data[i].end) out->data[w++] = out->data[i];
    out->len = w;
    return 0;
}
