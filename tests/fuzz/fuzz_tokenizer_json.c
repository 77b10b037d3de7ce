/* libFuzzer target for the tokenizer loader: the input is a tokenizer.json. Whatever loads must
 * then encode and decode a fixed multilingual text, with the streaming detokenizer agreeing
 * with decode; whatever fails must leave nothing behind (LeakSanitizer checks). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char TEXT[] = "Hello, world! <s> 12345 caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80\n\t  end ";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    om_tokenizer *tok = NULL;
    if (om_tokenizer_load_buffer((const char *)data, size, NULL, 0, &tok) != 0) {
        if (tok) abort();
        return 0;
    }
    for (int special = 0; special < 2; special++) {
        int32_t *ids;
        size_t n;
        if (om_tokenizer_encode(tok, TEXT, sizeof TEXT - 1, special, &ids, &n)) continue;
        char *out;
        size_t len;
        if (om_tokenizer_decode(tok, ids, n, 0, &out, &len) == 0) {
            om_detok *d;
            if (om_detok_new(tok, 0, &d) == 0) {
                size_t got = 0;
                const char *p;
                size_t l;
                for (size_t i = 0; i <= n; i++) {
                    if (i < n ? om_detok_push(d, ids[i], &p, &l) : om_detok_finish(d, &p, &l)) abort();
                    if (got + l > len || memcmp(out + got, p, l)) abort();
                    got += l;
                }
                if (got != len) abort();
                om_detok_free(d);
            }
            free(out);
        }
        free(ids);
    }
    om_tokenizer_free(tok);
    return 0;
}
