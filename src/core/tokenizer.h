/* The tokenizer: text <-> token ids, loaded from a Hugging Face tokenizer.json and giving the
 * same ids as the Hugging Face `tokenizers` library (the reference the tests compare against).
 *
 * Supported (anything else is refused at load time with an error naming the type and where it
 * sits in tokenizer.json):
 *   model          BPE (merges as "a b" strings or [a, b] pairs; byte_fallback, fuse_unk,
 *                  unk_token, ignore_merges, continuing_subword_prefix, end_of_word_suffix)
 *   normalizer     NFC, NFD, NFKC, NFKD, Prepend, Replace, Lowercase, Strip, StripAccents,
 *                  ByteLevel, Sequence
 *   pre_tokenizer  Split (regex or string; all five behaviours; invert), ByteLevel, Metaspace,
 *                  Digits, WhitespaceSplit, Sequence
 *   post_processor TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence
 *   decoder        ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, BPEDecoder, Sequence
 * This covers the byte-level BPE of GPT-2, Qwen2/3, Llama-3, GLM-4 and the SentencePiece-style
 * BPE of Llama-2, Mistral and Mixtral.
 *
 * Added tokens (tokenizer.json "added_tokens", plus any extra entry of tokenizer_config.json's
 * "added_tokens_decoder") are found in the raw text before normalization, leftmost-longest, with
 * lstrip/rstrip/single_word/normalized/special honoured as Hugging Face does.
 *
 * A loaded tokenizer is read-only and may be shared between threads: encode and decode keep
 * their working memory per call (the word cache is taken with a try-lock, so a second thread
 * never waits for it).
 *
 * Errors follow core/error.h: functions return 0 on success and -1 on failure, with the
 * message in om_last_error(). Returned buffers are malloc'd and owned by the caller (free()).
 */
#ifndef OM_TOKENIZER_H
#define OM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct om_tokenizer om_tokenizer;

/* Loads `path`: either a tokenizer.json file or a folder holding tokenizer.json (and, if
 * present, tokenizer_config.json, read for added_tokens_decoder and bos/eos tokens). */
int om_tokenizer_load(const char *path, om_tokenizer **out);
/* The same from memory: the text of tokenizer.json and, optionally (NULL), of
 * tokenizer_config.json. */
int om_tokenizer_load_buffer(const char *json, size_t len, const char *config_json, size_t config_len,
                             om_tokenizer **out);
void om_tokenizer_free(om_tokenizer *tok);

typedef struct {
    /* Apply the post-processor's template (e.g. Llama-2's leading <s>), as Hugging Face does
     * with add_special_tokens=True. */
    int add_special;
    /* Treat the text of special added tokens as plain text ("<|im_start|>" becomes several
     * ordinary tokens), as Hugging Face's split_special_tokens / encode_special_tokens. */
    int split_special;
} om_encode_options;

/* Encodes len bytes of UTF-8 text (need not be NUL-terminated). Fails, naming the byte offset,
 * on invalid UTF-8. On success *ids is a malloc'd array of *n ids (possibly NULL when *n is
 * 0). */
int om_tokenizer_encode(const om_tokenizer *tok, const char *text, size_t len, int add_special,
                        int32_t **ids, size_t *n);
int om_tokenizer_encode_ex(const om_tokenizer *tok, const char *text, size_t len,
                           const om_encode_options *opt, int32_t **ids, size_t *n);

/* Decodes ids to UTF-8 text exactly as Hugging Face's decode(ids, skip_special_tokens):
 * unknown ids are dropped, invalid byte sequences become U+FFFD. *out is NUL-terminated and
 * malloc'd; *out_len (may be NULL) receives its length. */
int om_tokenizer_decode(const om_tokenizer *tok, const int32_t *ids, size_t n, int skip_special,
                        char **out, size_t *out_len);

/* -1 when the piece is not a token (added tokens first, then the model's vocabulary). */
int32_t om_tokenizer_token_to_id(const om_tokenizer *tok, const char *piece, size_t len);
/* The token's text as stored in the vocabulary (byte-level tokens in their GPT-2 character
 * form, SentencePiece ones with their U+2581), NUL-terminated; NULL for an unknown id. */
const char *om_tokenizer_id_to_piece(const om_tokenizer *tok, int32_t id);
/* One more than the largest id in use (model vocabulary and added tokens). */
int32_t om_tokenizer_vocab_size(const om_tokenizer *tok);
/* Beginning/end-of-sequence and padding ids from tokenizer_config.json; -1 when unknown. */
int32_t om_tokenizer_bos_id(const om_tokenizer *tok);
int32_t om_tokenizer_eos_id(const om_tokenizer *tok);
int32_t om_tokenizer_pad_id(const om_tokenizer *tok);
/* 1 when id is an added token marked special (skipped by decode with skip_special). */
int om_tokenizer_is_special(const om_tokenizer *tok, int32_t id);

/* Streaming detokenizer: feeds ids one at a time and hands back the text that is final so
 * far. The pieces concatenate to exactly om_tokenizer_decode of all ids, and no piece ends
 * inside a UTF-8 character: bytes of an incomplete character (or a run of byte-fallback
 * tokens, whose validity is only known when the run ends) are held back until they resolve. */
typedef struct om_detok om_detok;

int om_detok_new(const om_tokenizer *tok, int skip_special, om_detok **out);
/* Appends id; text and len receive the newly final text (possibly empty), valid until the next
 * call on this detokenizer. */
int om_detok_push(om_detok *d, int32_t id, const char **text, size_t *len);
/* Ends the sequence: flushes what was held back (incomplete characters become U+FFFD). The
 * detokenizer is then empty and may be reused for a new sequence. */
int om_detok_finish(om_detok *d, const char **text, size_t *len);
void om_detok_free(om_detok *d);

#endif
