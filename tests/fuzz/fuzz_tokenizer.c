/* libFuzzer target for the tokenizer: the input is a prompt. Invalid UTF-8 must be refused;
 * valid text must encode under each committed tokenizer, and then:
 *   - decoding with the byte-level tokenizer (Qwen3) gives back the NFC form of the text when
 *     special-token text is encoded as text (byte-level BPE loses nothing else);
 *   - the streaming detokenizer's pieces are each valid UTF-8 and add up to decode's result.
 * The tokenizers are read from tests/data/tokenizers, found next to this file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tokenizer.h"
#include "core/tokenizer_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *NAMES[] = {"qwen3", "llama2", "synth_metaspace", "synth_split"};
#define N_TOK (sizeof NAMES / sizeof NAMES[0])
static om_tokenizer *toks[N_TOK];

static void load_all(void) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", __FILE__);
    char *cut = strstr(dir, "tests/fuzz/");
    if (!cut) abort();
    for (size_t i = 0; i < N_TOK; i++) {
        char path[4400];
        snprintf(path, sizeof path, "%.*stests/data/tokenizers/%s", (int)(cut - dir), dir, NAMES[i]);
        if (om_tokenizer_load(path, &toks[i])) abort();
    }
}

static void check_stream(const om_tokenizer *tok, const int32_t *ids, size_t n, const char *want, size_t want_len) {
    om_detok *d;
    if (om_detok_new(tok, 0, &d)) abort();
    tk_buf all = {0};
    for (size_t i = 0; i <= n; i++) {
        const char *p;
        size_t l;
        if (i < n ? om_detok_push(d, ids[i], &p, &l) : om_detok_finish(d, &p, &l)) abort();
        if (tk_utf8_valid_prefix(p, l) != l) abort();
        tk_buf_append(&all, p, l);
    }
    if (all.len != want_len || (want_len && memcmp(all.data, want, want_len))) abort();
    tk_buf_free(&all);
    om_detok_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!toks[0]) load_all();
    const char *text = (const char *)data;
    int valid = tk_utf8_valid_prefix(text, size) == size;
    for (size_t t = 0; t < N_TOK; t++) {
        int32_t *ids;
        size_t n;
        om_encode_options opt = {1, t == 0};
        int rc = om_tokenizer_encode_ex(toks[t], text, size, &opt, &ids, &n);
        if ((rc == 0) != valid) abort();
        if (rc) continue;
        char *out;
        size_t out_len;
        if (om_tokenizer_decode(toks[t], ids, n, 0, &out, &out_len)) abort();
        if (tk_utf8_valid_prefix(out, out_len) != out_len) abort();
        check_stream(toks[t], ids, n, out, out_len);
        if (t == 0) {
            tk_matcher m;
            tk_buf scratch[2] = {{0}, {0}};
            const char *nfc;
            size_t nfc_len;
            if (tk_matcher_init(&m) || tk_normalize(toks[0]->norms, toks[0]->n_norms, &m, text, size, scratch, &nfc, &nfc_len))
                abort();
            if (nfc_len != out_len || (out_len && memcmp(nfc, out, out_len))) abort();
            tk_matcher_free(&m);
            tk_buf_free(&scratch[0]);
            tk_buf_free(&scratch[1]);
        }
        free(out);
        free(ids);
    }
    return 0;
}
