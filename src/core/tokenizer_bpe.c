/* The BPE model of the tokenizer: vocabulary and merge tables read from tokenizer.json, the
 * merge loop, and the word cache.
 *
 * The merge loop is a transcription of Hugging Face's Word::merge_all (a min-heap of candidate
 * merges ordered by rank, then position), including its test for stale heap entries, which
 * compares only the merged id: when two different pairs merge to the same token, that test
 * decides the result, so we keep it as it is rather than "fixing" it. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/tokenizer_internal.h"

typedef struct tk_symbol {
    int32_t c;
    int32_t prev, next;
    uint32_t len; /* 0 marks a symbol merged into its left neighbour */
} tk_symbol;

typedef struct tk_merge {
    uint32_t rank, pos;
    int32_t new_id;
} tk_merge;

typedef struct tk_cache_slot {
    uint64_t hash;
    uint32_t key_off, key_len; /* key_len == UINT32_MAX: empty */
    uint32_t ids_off, n_ids;
} tk_cache_slot;

#define CACHE_MAX_WORD 256 /* as HF: longer pieces are not cached */
#define CACHE_SLOTS (1u << 17)

/* ---- loading --------------------------------------------------------------------------------- */

static int json_str(const cJSON *j, const char **s) {
    if (!cJSON_IsString(j) || !j->valuestring) return 0;
    *s = j->valuestring;
    return 1;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s);
    char *p = malloc(n + 1);
    if (p) memcpy(p, s, n + 1);
    return p;
}

int tk_bpe_load(tk_bpe *b, const cJSON *model) {
    memset(b, 0, sizeof *b);
    b->unk_id = -1;
    for (int i = 0; i < 256; i++) b->byte_fallback_id[i] = b->byte_char_id[i] = -1;

    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(vocab)) return om_errorf("tokenizer.json: model.vocab is missing or not an object");
    if (!cJSON_IsArray(merges)) return om_errorf("tokenizer.json: model.merges is missing or not an array");
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble != 0.0)
        return om_errorf("tokenizer.json: model.dropout %g is not supported (only deterministic BPE)",
                         dropout->valuedouble);

    int n_vocab = cJSON_GetArraySize(vocab);
    if (tk_strmap_init(&b->vocab, (size_t)n_vocab)) return -1;
    int64_t max_id = -1;
    size_t idx = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        double v = cJSON_IsNumber(it) ? it->valuedouble : -1;
        if (!it->string || v < 0 || v > 0x7ffffffe || v != (double)(int64_t)v)
            return om_errorf("tokenizer.json: model.vocab entry %zu ('%.60s') has no valid id", idx,
                             it->string ? it->string : "");
        if (tk_strmap_put(&b->vocab, it->string, strlen(it->string), (int32_t)v)) return -1;
        if ((int64_t)v > max_id) max_id = (int64_t)v;
        idx++;
    }
    /* ids index dense tables; refuse vocabularies whose ids are absurdly sparse */
    if (max_id >= (int64_t)n_vocab * 4 + (1 << 20))
        return om_errorf("tokenizer.json: model.vocab id %lld is far beyond its %d entries", (long long)max_id, n_vocab);
    b->n_ids = (int32_t)(max_id + 1);
    b->piece_off = malloc(((size_t)b->n_ids + 1) * sizeof *b->piece_off);
    b->piece_len = malloc(((size_t)b->n_ids + 1) * sizeof *b->piece_len);
    if (!b->piece_off || !b->piece_len) return om_errorf("tokenizer: out of memory");
    for (int32_t i = 0; i < b->n_ids; i++) b->piece_off[i] = UINT32_MAX;
    for (size_t i = 0; i <= b->vocab.mask; i++) {
        const tk_strmap_slot *s = &b->vocab.slots[i];
        if (s->off == UINT32_MAX) continue;
        b->piece_off[s->val] = s->off;
        b->piece_len[s->val] = s->len;
    }

    const char *s;
    if (json_str(cJSON_GetObjectItemCaseSensitive(model, "unk_token"), &s)) {
        b->unk_token = dup_str(s);
        if (!b->unk_token) return om_errorf("tokenizer: out of memory");
        b->unk_id = tk_strmap_get(&b->vocab, s, strlen(s));
    }
    if (json_str(cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix"), &s) && *s) {
        b->prefix = dup_str(s);
        if (!b->prefix) return om_errorf("tokenizer: out of memory");
        b->prefix_len = strlen(s);
    }
    if (json_str(cJSON_GetObjectItemCaseSensitive(model, "end_of_word_suffix"), &s) && *s) {
        b->suffix = dup_str(s);
        if (!b->suffix) return om_errorf("tokenizer: out of memory");
        b->suffix_len = strlen(s);
    }
    b->fuse_unk = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "fuse_unk"));
    b->byte_fallback = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback"));
    b->ignore_merges = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "ignore_merges"));

    for (int i = 0; i < 256; i++) {
        char name[8], enc[4];
        snprintf(name, sizeof name, "<0x%02X>", i);
        b->byte_fallback_id[i] = tk_strmap_get(&b->vocab, name, 6);
        int l = tk_utf8_encode(tk_byte_to_cp[i], enc);
        b->byte_char_id[i] = tk_strmap_get(&b->vocab, enc, (size_t)l);
    }
    /* characters seen just before a U+2581 inside a token (see tk_bpe_tokenize) */
    if (tk_strmap_init(&b->cut_block, 16)) return -1;
    b->cut_ok = tk_strmap_get(&b->vocab, "\xE2\x96\x81", 3) >= 0 && !b->prefix && !b->suffix && !b->ignore_merges;
    for (size_t i = 0; b->cut_ok && i <= b->vocab.mask; i++) {
        const tk_strmap_slot *sl = &b->vocab.slots[i];
        if (sl->off == UINT32_MAX) continue;
        const char *t = b->vocab.keys.data + sl->off;
        for (size_t k = 1; k + 3 <= sl->len; k++) {
            if (memcmp(t + k, "\xE2\x96\x81", 3)) continue;
            size_t q = k - 1;
            while (q > 0 && ((unsigned char)t[q] & 0xC0) == 0x80) q--;
            if (tk_strmap_put(&b->cut_block, t + q, k - q, 1)) return -1;
        }
    }
    b->byte_char_complete = 1;
    for (int i = 0; i < 256; i++)
        if (b->byte_char_id[i] < 0) b->byte_char_complete = 0;

    /* merges: "a b" strings or [a, b] pairs; a later duplicate overrides an earlier one, as
     * when HF collects them into its map */
    int n_merges = cJSON_GetArraySize(merges);
    if (tk_u64map_init(&b->merges, (size_t)n_merges)) return -1;
    tk_buf tmp = {0};
    uint32_t rank = 0;
    idx = 0;
    cJSON_ArrayForEach(it, merges) {
        const char *a, *c;
        size_t al, cl;
        if (cJSON_IsString(it)) {
            const char *line = it->valuestring;
            if (!strncmp(line, "#version", 8)) {
                idx++;
                continue;
            }
            const char *sp = strchr(line, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                tk_buf_free(&tmp);
                return om_errorf("tokenizer.json: model.merges[%zu] '%.60s' is not two tokens separated by one space",
                                 idx, line);
            }
            a = line;
            al = (size_t)(sp - line);
            c = sp + 1;
            cl = strlen(c);
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsString(cJSON_GetArrayItem(it, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 1))) {
            a = cJSON_GetArrayItem(it, 0)->valuestring;
            c = cJSON_GetArrayItem(it, 1)->valuestring;
            al = strlen(a);
            cl = strlen(c);
        } else {
            tk_buf_free(&tmp);
            return om_errorf("tokenizer.json: model.merges[%zu] is neither a string nor a pair of strings", idx);
        }
        int32_t ia = tk_strmap_get(&b->vocab, a, al), ic = tk_strmap_get(&b->vocab, c, cl);
        if (ia < 0 || ic < 0) {
            tk_buf_free(&tmp);
            return om_errorf("tokenizer.json: model.merges[%zu]: token '%.*s' is not in the vocabulary", idx,
                             (int)(ia < 0 ? (al > 60 ? 60 : al) : (cl > 60 ? 60 : cl)), ia < 0 ? a : c);
        }
        if (cl < b->prefix_len) {
            tk_buf_free(&tmp);
            return om_errorf("tokenizer.json: model.merges[%zu]: '%s' is shorter than the subword prefix", idx, c);
        }
        tmp.len = 0;
        if (tk_buf_append(&tmp, a, al) || tk_buf_append(&tmp, c + b->prefix_len, cl - b->prefix_len)) {
            tk_buf_free(&tmp);
            return -1;
        }
        int32_t inew = tk_strmap_get(&b->vocab, tmp.data, tmp.len);
        if (inew < 0) {
            om_errorf("tokenizer.json: model.merges[%zu]: merged token '%.60s' is not in the vocabulary", idx, tmp.data);
            tk_buf_free(&tmp);
            return -1;
        }
        if (tk_u64map_put(&b->merges, ((uint64_t)(uint32_t)ia << 32) | (uint32_t)ic, rank, (uint32_t)inew)) {
            tk_buf_free(&tmp);
            return -1;
        }
        rank++;
        idx++;
    }
    tk_buf_free(&tmp);
    return 0;
}

void tk_bpe_free(tk_bpe *b) {
    tk_strmap_free(&b->vocab);
    tk_strmap_free(&b->cut_block);
    tk_u64map_free(&b->merges);
    free(b->piece_off);
    free(b->piece_len);
    free(b->unk_token);
    free(b->prefix);
    free(b->suffix);
    memset(b, 0, sizeof *b);
}

void tk_bpe_work_free(tk_bpe_work *w) {
    free(w->sym);
    free(w->heap);
    tk_buf_free(&w->key);
    memset(w, 0, sizeof *w);
}

/* ---- cache --------------------------------------------------------------------------------------- */

static int cache_init(tk_cache *c) {
    c->slots = malloc(CACHE_SLOTS * sizeof *c->slots);
    if (!c->slots) return -1;
    for (size_t i = 0; i < CACHE_SLOTS; i++) c->slots[i].key_len = UINT32_MAX;
    c->mask = CACHE_SLOTS - 1;
    c->count = 0;
    c->max_count = CACHE_SLOTS / 2;
    return 0;
}

void tk_cache_free(tk_cache *c) {
    free(c->slots);
    tk_buf_free(&c->keys);
    free(c->ids.data);
    memset(c, 0, sizeof *c);
}

static tk_cache_slot *cache_find(tk_cache *c, const char *k, size_t n, uint64_t h) {
    size_t j = h & c->mask;
    for (;;) {
        tk_cache_slot *s = &c->slots[j];
        if (s->key_len == UINT32_MAX) return s;
        if (s->hash == h && s->key_len == n && !memcmp(c->keys.data + s->key_off, k, n)) return s;
        j = (j + 1) & c->mask;
    }
}

/* Best effort: a failure to cache only costs speed. */
static void cache_put(tk_cache *c, const char *k, size_t n, uint64_t h, const int32_t *ids, size_t n_ids) {
    if (!c->slots && cache_init(c)) return;
    if (c->count >= c->max_count) {
        /* full: start over rather than stop caching, so long texts keep benefiting */
        for (size_t i = 0; i <= c->mask; i++) c->slots[i].key_len = UINT32_MAX;
        c->count = 0;
        c->keys.len = 0;
        c->ids.len = 0;
    }
    tk_cache_slot *s = cache_find(c, k, n, h);
    if (s->key_len != UINT32_MAX) return;
    size_t koff = c->keys.len, ioff = c->ids.len;
    if (tk_buf_append(&c->keys, k, n) || tk_ids_append(&c->ids, ids, n_ids)) return;
    s->hash = h;
    s->key_off = (uint32_t)koff;
    s->key_len = (uint32_t)n;
    s->ids_off = (uint32_t)ioff;
    s->n_ids = (uint32_t)n_ids;
    c->count++;
}

/* ---- merging -------------------------------------------------------------------------------------- */

static int heap_less(const tk_merge *a, const tk_merge *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(tk_merge *h, size_t *n, tk_merge m) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&m, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = m;
}

static tk_merge heap_pop(tk_merge *h, size_t *n) {
    tk_merge top = h[0], last = h[--(*n)];
    size_t i = 0, len = *n;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= len) break;
        size_t r = l + 1, m = (r < len && heap_less(&h[r], &h[l])) ? r : l;
        if (!heap_less(&h[m], &last)) break;
        h[i] = h[m];
        i = m;
    }
    if (len) h[i] = last;
    return top;
}

static int work_reserve(tk_bpe_work *w, size_t n_sym) {
    if (n_sym > w->sym_cap) {
        size_t cap = w->sym_cap ? w->sym_cap : 64;
        while (cap < n_sym) cap *= 2;
        tk_symbol *s = realloc(w->sym, cap * sizeof *s);
        if (!s) return om_errorf("tokenizer: out of memory");
        w->sym = s;
        w->sym_cap = cap;
    }
    return 0;
}

static const tk_u64map_slot *merge_of(const tk_bpe *b, int32_t l, int32_t r) {
    return tk_u64map_get(&b->merges, ((uint64_t)(uint32_t)l << 32) | (uint32_t)r);
}

static int merge_all(const tk_bpe *b, tk_bpe_work *w, size_t n) {
    tk_symbol *sym = w->sym;
    if (n < 2) return 0;
    /* each merge pushes at most two entries and there are at most n-1 merges */
    size_t cap_needed = 3 * n;
    if (cap_needed > w->heap_cap) {
        tk_merge *h = realloc(w->heap, cap_needed * sizeof *h);
        if (!h) return om_errorf("tokenizer: out of memory");
        w->heap = h;
        w->heap_cap = cap_needed;
    }
    tk_merge *heap = w->heap;
    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        const tk_u64map_slot *m = merge_of(b, sym[i].c, sym[i + 1].c);
        if (m) heap_push(heap, &hn, (tk_merge){m->a, (uint32_t)i, (int32_t)m->b});
    }
    while (hn) {
        tk_merge top = heap_pop(heap, &hn);
        tk_symbol *cur = &sym[top.pos];
        if (cur->len == 0 || cur->next == -1) continue;
        size_t next_pos = (size_t)cur->next;
        tk_symbol right = sym[next_pos];
        const tk_u64map_slot *m = merge_of(b, cur->c, right.c);
        if (!m || (int32_t)m->b != top.new_id) continue; /* stale entry */
        cur->c = top.new_id;
        cur->len += right.len;
        cur->next = right.next;
        sym[next_pos].len = 0;
        if (right.next > -1 && (size_t)right.next < n) sym[right.next].prev = (int32_t)top.pos;
        if (cur->prev >= 0) {
            const tk_u64map_slot *pm = merge_of(b, sym[cur->prev].c, cur->c);
            if (pm) heap_push(heap, &hn, (tk_merge){pm->a, (uint32_t)cur->prev, (int32_t)pm->b});
        }
        if (cur->next >= 0 && (size_t)cur->next < n) {
            const tk_u64map_slot *nm = merge_of(b, cur->c, sym[cur->next].c);
            if (nm) heap_push(heap, &hn, (tk_merge){nm->a, top.pos, (int32_t)nm->b});
        }
    }
    return 0;
}

static int add_symbol(tk_bpe_work *w, size_t *n, int32_t c, uint32_t len) {
    if (work_reserve(w, *n + 1)) return -1;
    tk_symbol *s = &w->sym[*n];
    s->c = c;
    s->len = len;
    s->prev = *n ? (int32_t)(*n - 1) : -1;
    s->next = -1;
    if (*n) w->sym[*n - 1].next = (int32_t)*n;
    (*n)++;
    return 0;
}

/* HF's BPE::merge_word: one symbol per character (with the subword prefix/suffix), falling back
 * to <0xNN> tokens, then to the unk token (fused when fuse_unk). */
static int initial_symbols(const tk_bpe *b, tk_bpe_work *w, const char *s, size_t n, size_t *n_sym) {
    *n_sym = 0;
    int32_t unk = -1;
    uint32_t unk_len = 0;
    tk_buf piece = {0};
    int rc = 0;
    for (size_t i = 0; i < n && !rc;) {
        size_t l = (size_t)tk_utf8_len((unsigned char)s[i]);
        if (l > n - i) l = n - i;
        const char *p = s + i;
        size_t pl = l;
        if ((i > 0 && b->prefix) || (i + l == n && b->suffix)) {
            piece.len = 0;
            if ((i > 0 && b->prefix && tk_buf_append(&piece, b->prefix, b->prefix_len)) || tk_buf_append(&piece, p, l) ||
                (i + l == n && b->suffix && tk_buf_append(&piece, b->suffix, b->suffix_len))) {
                rc = -1;
                break;
            }
            p = piece.data;
            pl = piece.len;
        }
        i += l;
        int32_t id = tk_strmap_get(&b->vocab, p, pl);
        if (id >= 0) {
            if (unk >= 0) {
                rc = add_symbol(w, n_sym, unk, unk_len);
                unk = -1;
            }
            if (!rc) rc = add_symbol(w, n_sym, id, (uint32_t)l);
            continue;
        }
        if (b->byte_fallback) {
            int all = 1;
            for (size_t k = 0; k < pl; k++)
                if (b->byte_fallback_id[(unsigned char)p[k]] < 0) all = 0;
            if (all) {
                /* as HF: a pending unk stays pending across byte-fallback tokens */
                for (size_t k = 0; k < pl && !rc; k++) rc = add_symbol(w, n_sym, b->byte_fallback_id[(unsigned char)p[k]], 1);
                continue;
            }
        }
        if (b->unk_token) {
            if (b->unk_id < 0) {
                rc = om_errorf("tokenizer: unk_token '%s' is not in the vocabulary", b->unk_token);
                break;
            }
            if (unk >= 0 && b->fuse_unk) {
                unk_len += (uint32_t)l;
            } else {
                if (unk >= 0) rc = add_symbol(w, n_sym, unk, unk_len);
                unk = b->unk_id;
                unk_len = (uint32_t)l;
            }
        }
    }
    if (!rc && unk >= 0) rc = add_symbol(w, n_sym, unk, unk_len);
    tk_buf_free(&piece);
    return rc;
}

static int tokenize_word(const tk_bpe *b, tk_bpe_work *w, tk_cache *cache, const char *s, size_t n, int raw_bytes,
                         tk_ids *out) {
    if (!n) return 0;
    if (b->ignore_merges) {
        const char *k = s;
        size_t kn = n;
        if (raw_bytes) {
            w->key.len = 0;
            if (tk_buf_reserve(&w->key, 2 * n)) return -1;
            for (size_t i = 0; i < n; i++) {
                char enc[4];
                int l = tk_utf8_encode(tk_byte_to_cp[(unsigned char)s[i]], enc);
                memcpy(w->key.data + w->key.len, enc, (size_t)l);
                w->key.len += (size_t)l;
            }
            k = w->key.data;
            kn = w->key.len;
        }
        int32_t id = tk_strmap_get(&b->vocab, k, kn);
        if (id >= 0) return tk_ids_push(out, id);
    }
    uint64_t h = 0;
    if (cache && n < CACHE_MAX_WORD) {
        h = tk_hash(s, n);
        if (cache->slots) {
            tk_cache_slot *slot = cache_find(cache, s, n, h);
            if (slot->key_len != UINT32_MAX)
                return slot->n_ids ? tk_ids_append(out, cache->ids.data + slot->ids_off, slot->n_ids) : 0;
        }
    }
    size_t n_sym = 0;
    if (raw_bytes) {
        if (work_reserve(w, n)) return -1;
        for (size_t i = 0; i < n; i++) {
            tk_symbol *sy = &w->sym[i];
            sy->c = b->byte_char_id[(unsigned char)s[i]];
            sy->len = 1;
            sy->prev = (int32_t)i - 1;
            sy->next = i + 1 < n ? (int32_t)(i + 1) : -1;
        }
        n_sym = n;
    } else if (initial_symbols(b, w, s, n, &n_sym)) {
        return -1;
    }
    if (merge_all(b, w, n_sym)) return -1;
    size_t first = out->len;
    for (size_t i = 0; i < n_sym; i++)
        if (w->sym[i].len && tk_ids_push(out, w->sym[i].c)) return -1;
    /* (a word can come out empty: unknown characters without an unk token are dropped) */
    if (cache && n < CACHE_MAX_WORD) cache_put(cache, s, n, h, out->len > first ? out->data + first : NULL, out->len - first);
    return 0;
}

/* A SentencePiece-style model without a pre-tokenizer hands BPE whole sentences (HF merges a
 * 4 MB text as one word, with a heap as large). The result is the same when the text is cut
 * before a U+2581 wherever no vocabulary token contains the character there and the U+2581
 * side by side: a merge across the cut would have to produce such a token. Cutting keeps the
 * heap small and lets the word cache see words. */
#define CUT_MIN 64

static int safe_cut(const tk_bpe *b, const char *s, size_t i) {
    size_t q = i - 1;
    while (q > 0 && ((unsigned char)s[q] & 0xC0) == 0x80) q--;
    size_t l = i - q;
    /* an unknown character becomes byte-fallback or unk symbols: do not reason about those */
    return tk_strmap_get(&b->vocab, s + q, l) >= 0 && tk_strmap_get(&b->cut_block, s + q, l) < 0;
}

int tk_bpe_tokenize(const tk_bpe *b, tk_bpe_work *w, tk_cache *cache, const char *s, size_t n, int raw_bytes,
                    tk_ids *out) {
    if (raw_bytes || !b->cut_ok || n < CUT_MIN) return tokenize_word(b, w, cache, s, n, raw_bytes, out);
    size_t start = 0;
    for (size_t i = 1; i + 3 <= n; i++) {
        if ((unsigned char)s[i] != 0xE2 || (unsigned char)s[i + 1] != 0x96 || (unsigned char)s[i + 2] != 0x81) continue;
        if (!safe_cut(b, s, i)) continue;
        if (tokenize_word(b, w, cache, s + start, i - start, 0, out)) return -1;
        start = i;
    }
    return tokenize_word(b, w, cache, s + start, n - start, 0, out);
}
