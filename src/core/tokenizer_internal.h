/* Internals shared by the tokenizer's files (tokenizer*.c); nothing here is public API.
 *
 *   tokenizer.c         loading tokenizer.json, the encode pipeline, the public functions
 *   tokenizer_bpe.c     vocabulary and merge tables, the BPE merge loop, the word cache
 *   tokenizer_text.c    UTF-8 and Unicode helpers, regexes (PCRE2 standing in for Oniguruma),
 *                       the added-token matcher, normalizers and pre-tokenizer splitting
 *   tokenizer_decode.c  decoders, run as a stream so that decode and streaming share one path
 */
#ifndef OM_TOKENIZER_INTERNAL_H
#define OM_TOKENIZER_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* ---- growable buffers ------------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len, cap;
} tk_buf;

int tk_buf_reserve(tk_buf *b, size_t extra);
int tk_buf_append(tk_buf *b, const void *p, size_t n);
void tk_buf_free(tk_buf *b);

typedef struct {
    int32_t *data;
    size_t len, cap;
} tk_ids;

int tk_ids_push(tk_ids *v, int32_t id);
int tk_ids_append(tk_ids *v, const int32_t *ids, size_t n);

typedef struct {
    size_t start, end;
    int flag; /* is_match, where a list of pieces carries it */
} tk_range;

typedef struct {
    tk_range *data;
    size_t len, cap;
} tk_ranges;

int tk_ranges_push(tk_ranges *v, size_t start, size_t end);
int tk_ranges_push_flag(tk_ranges *v, size_t start, size_t end, int flag);

/* ---- hashing and maps ------------------------------------------------------------------- */

uint64_t tk_hash(const void *p, size_t n);

/* String -> int32 map; keys are copied into an arena (offsets, so the arena may move). */
typedef struct {
    uint64_t hash;
    uint32_t off, len;
    int32_t val;
} tk_strmap_slot;

typedef struct {
    tk_strmap_slot *slots; /* len == 0 && off == UINT32_MAX marks an empty slot */
    size_t mask, count;
    tk_buf keys;
} tk_strmap;

int tk_strmap_init(tk_strmap *m, size_t expected);
void tk_strmap_free(tk_strmap *m);
/* Inserts or overwrites. */
int tk_strmap_put(tk_strmap *m, const char *k, size_t n, int32_t val);
/* The value, or -1. */
int32_t tk_strmap_get(const tk_strmap *m, const char *k, size_t n);

/* (uint64 key) -> two uint32 values; used for merges ((a,b) -> rank, new id) and trie edges. */
typedef struct {
    uint64_t key; /* UINT64_MAX: empty */
    uint32_t a, b;
} tk_u64map_slot;

typedef struct {
    tk_u64map_slot *slots;
    size_t mask, count;
} tk_u64map;

int tk_u64map_init(tk_u64map *m, size_t expected);
void tk_u64map_free(tk_u64map *m);
int tk_u64map_put(tk_u64map *m, uint64_t key, uint32_t a, uint32_t b);
const tk_u64map_slot *tk_u64map_get(const tk_u64map *m, uint64_t key);

/* ---- UTF-8 and Unicode ------------------------------------------------------------------- */

/* Length of the valid UTF-8 prefix; == n when all valid. */
size_t tk_utf8_valid_prefix(const char *s, size_t n);
/* Decodes the code point at s (valid UTF-8 assumed); returns its byte length. */
int tk_utf8_decode(const char *s, uint32_t *cp);
int tk_utf8_encode(uint32_t cp, char out[4]);
static inline int tk_utf8_len(unsigned char lead) {
    return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}
/* Appends bytes as Rust's String::from_utf8_lossy does (each maximal invalid subpart becomes
 * U+FFFD). If `final` is 0, an incomplete character at the end is not consumed: the number of
 * bytes consumed is returned so the caller can keep the rest for later. */
size_t tk_utf8_lossy_append(tk_buf *out, const unsigned char *s, size_t n, int final);

int tk_is_whitespace(uint32_t cp); /* Unicode White_Space, as Rust's char::is_whitespace */
int tk_is_numeric(uint32_t cp);    /* general category N*, as Rust's char::is_numeric */
int tk_is_word(uint32_t cp);       /* Rust regex \w */
int tk_is_mark(uint32_t cp);       /* general category M* */

/* ---- regexes ------------------------------------------------------------------------------- */

typedef struct {
    pcre2_code *code;
    int jit;
} tk_regex;

/* Compiles an Oniguruma-syntax pattern (as tokenizer.json's "Regex") or, if literal, a plain
 * string. On failure records an error naming `where`. */
int tk_regex_compile(tk_regex *re, const char *pattern, size_t len, int literal, const char *where);
void tk_regex_free(tk_regex *re);

/* Working memory for matching: one per encode call, so that a tokenizer can be shared. */
typedef struct {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
} tk_matcher;

int tk_matcher_init(tk_matcher *m);
void tk_matcher_free(tk_matcher *m);

/* All matches of re in s as onig's find_iter yields them (an empty match right after the
 * previous match is skipped by one character). Appends (start, end) pairs to out. */
int tk_regex_find_all(const tk_regex *re, tk_matcher *m, const char *s, size_t n, tk_ranges *out);

/* ---- added tokens ---------------------------------------------------------------------------- */

typedef struct {
    char *content; /* as in tokenizer.json */
    size_t content_len;
    char *norm; /* content after the normalizer when normalized=true (NULL if unchanged) */
    size_t norm_len;
    int32_t id;
    uint8_t single_word, lstrip, rstrip, normalized, special;
} tk_added;

/* A byte trie over the added tokens of one kind (normalized or not); leftmost-longest. */
typedef struct {
    tk_u64map edges;  /* (node << 8 | byte) -> child node */
    int32_t *term;    /* per node: index into the added-token array, or -1 */
    size_t n_nodes;
    uint8_t first[32]; /* bitmap of first bytes, to skip most positions cheaply */
    int empty;
} tk_trie;

int tk_trie_build(tk_trie *t, const tk_added *added, size_t n, int normalized);
void tk_trie_free(tk_trie *t);

typedef struct {
    size_t start, end;
    int32_t added; /* index into the added-token array, or -1 for text */
} tk_segment;

typedef struct {
    tk_segment *data;
    size_t len, cap;
} tk_segments;

/* Splits s into text and added-token segments as HF's AddedVocabulary::find_matches, skipping
 * special tokens when split_special. Empty segments are not produced. */
int tk_find_added(const tk_trie *t, const tk_added *added, const char *s, size_t n,
                  int split_special, tk_segments *out);

/* ---- normalizers ------------------------------------------------------------------------------ */

enum {
    TK_NORM_NFC,
    TK_NORM_NFD,
    TK_NORM_NFKC,
    TK_NORM_NFKD,
    TK_NORM_PREPEND,
    TK_NORM_REPLACE,
    TK_NORM_LOWERCASE,
    TK_NORM_STRIP,
    TK_NORM_STRIP_ACCENTS,
    TK_NORM_BYTELEVEL,
};

typedef struct {
    int kind;
    char *str; /* Prepend text, Replace content */
    size_t str_len;
    tk_regex re; /* Replace pattern */
    int left, right;
} tk_normalizer;

/* Runs the normalizers over in[0..n); the result is either `in` itself (nothing changed) or
 * one of the two scratch buffers. */
int tk_normalize(const tk_normalizer *norms, size_t n_norms, tk_matcher *m, const char *in, size_t n,
                 tk_buf scratch[2], const char **out, size_t *out_len);

/* ---- pre-tokenizers ---------------------------------------------------------------------------- */

enum { TK_SPLIT_REMOVED, TK_SPLIT_ISOLATED, TK_SPLIT_MERGED_PREV, TK_SPLIT_MERGED_NEXT, TK_SPLIT_CONTIGUOUS };
enum { TK_PT_SPLIT, TK_PT_BYTELEVEL, TK_PT_METASPACE, TK_PT_DIGITS, TK_PT_WHITESPACE_SPLIT };
enum { TK_PREPEND_ALWAYS, TK_PREPEND_FIRST, TK_PREPEND_NEVER };

typedef struct {
    int kind;
    tk_regex re; /* Split; ByteLevel with use_regex (the GPT-2 pattern) */
    int has_re;
    int behavior, invert;
    int add_prefix_space, use_regex;
    char repl[8]; /* Metaspace replacement */
    int repl_len;
    uint32_t repl_cp;
    int prepend_scheme, split;
    int individual_digits;
} tk_pretok;

/* Splits s by the pre-tokenizer's pattern and behaviour (regex, or the character class of
 * Metaspace/Digits/WhitespaceSplit), appending the kept non-empty pieces to out. */
int tk_pretok_split(const tk_pretok *p, tk_matcher *m, const char *s, size_t n, tk_ranges *scratch,
                    tk_ranges *out);

/* The GPT-2 byte <-> character table of the ByteLevel pre-tokenizer and decoder. */
extern const uint16_t tk_byte_to_cp[256];
/* Byte for a code point of that table, or -1. */
int tk_cp_to_byte(uint32_t cp);

/* ---- BPE model ---------------------------------------------------------------------------------- */

typedef struct {
    tk_strmap vocab;
    uint32_t *piece_off; /* id -> offset of its text in vocab.keys, UINT32_MAX if unused */
    uint32_t *piece_len;
    int32_t n_ids;       /* one more than the largest model id */
    tk_u64map merges;    /* (left id << 32 | right id) -> (rank, merged id) */
    int32_t unk_id;      /* -1 when there is no unk_token */
    char *unk_token;
    int fuse_unk, byte_fallback, ignore_merges;
    char *prefix, *suffix; /* continuing_subword_prefix, end_of_word_suffix (NULL if none) */
    size_t prefix_len, suffix_len;
    int32_t byte_fallback_id[256]; /* <0xNN> ids, -1 if missing */
    int32_t byte_char_id[256];     /* ids of the GPT-2 byte characters, -1 if missing */
    int byte_char_complete;        /* all 256 present: raw bytes can index byte_char_id */
    int cut_ok;                    /* long pieces may be cut before U+2581 (tk_bpe_tokenize) */
    tk_strmap cut_block;           /* characters that must not precede such a cut */
} tk_bpe;

struct cJSON;
/* Reads model.vocab / model.merges and the BPE options. */
int tk_bpe_load(tk_bpe *b, const struct cJSON *model);
void tk_bpe_free(tk_bpe *b);

/* Per-call BPE scratch. */
typedef struct {
    struct tk_symbol *sym;
    size_t sym_cap;
    struct tk_merge *heap;
    size_t heap_cap;
    tk_buf key; /* a piece mapped to byte characters, when needed */
} tk_bpe_work;

void tk_bpe_work_free(tk_bpe_work *w);

/* The word cache: piece -> ids, bounded; cleared when full. */
typedef struct {
    struct tk_cache_slot *slots;
    size_t mask, count, max_count;
    tk_buf keys;
    tk_ids ids;
} tk_cache;

void tk_cache_free(tk_cache *c);

/* Tokenizes one pre-token. If raw_bytes, `s` holds the bytes before the byte-level mapping
 * (only when bpe->byte_char_complete and no prefix/suffix): the mapping is folded in. */
int tk_bpe_tokenize(const tk_bpe *b, tk_bpe_work *w, tk_cache *cache, const char *s, size_t n,
                    int raw_bytes, tk_ids *out);

/* ---- decoders ------------------------------------------------------------------------------------ */

enum { TK_DEC_BYTELEVEL, TK_DEC_REPLACE, TK_DEC_BYTEFALLBACK, TK_DEC_FUSE, TK_DEC_STRIP, TK_DEC_METASPACE, TK_DEC_BPE };

typedef struct {
    int kind;
    tk_regex re; /* Replace */
    int literal;
    char *pattern; /* Replace pattern (literal), BPEDecoder suffix */
    size_t pattern_len;
    char *content; /* Replace content, Strip content character */
    size_t content_len;
    uint32_t content_cp;
    size_t start, stop; /* Strip */
    char repl[8];      /* Metaspace */
    int repl_len;
    uint32_t repl_cp;
    int prepend_scheme;
} tk_decoder;

/* ---- the tokenizer ------------------------------------------------------------------------------- */

struct om_tokenizer {
    tk_bpe bpe;

    tk_normalizer *norms;
    size_t n_norms;
    tk_pretok *pretoks;
    size_t n_pretoks;
    tk_decoder *decs;
    size_t n_decs;
    int has_decoder;

    int32_t *prefix_ids, *suffix_ids; /* post-processor, single sequence */
    size_t n_prefix, n_suffix;

    tk_added *added;
    size_t n_added;
    tk_strmap added_map; /* content -> index in added */
    tk_trie trie_raw, trie_norm;

    int32_t vocab_size;
    /* per id (0..vocab_size): decode text (added tokens first), and whether decode with
     * skip_special drops it (HF tests the text against the special tokens' contents) */
    const char **dec_piece;
    uint32_t *dec_len;
    uint8_t *skip_id;
    uint8_t *special_id;

    int32_t bos_id, eos_id, pad_id;

    /* ByteLevel (without regex) is the last pre-tokenizer and the vocabulary holds all byte
     * characters: pieces reach BPE as raw bytes, skipping the mapped copy. */
    int raw_bytes_fast;

    pthread_mutex_t cache_lock;
    tk_cache cache;
};

/* Decode stream (tokenizer_decode.c). */
struct om_detok {
    const om_tokenizer *tok;
    int skip_special;
    size_t n_tokens; /* tokens passed to the first stage so far */
    tk_buf out;      /* text produced by the current call */
    struct tk_stage *stages;
    size_t n_stages;
};

#endif
