/* libFuzzer target for the GGUF reader and the GGUF -> Hugging Face adapter: the input is a whole
 * .gguf file. Whatever parses must be self-consistent: every key and tensor is found under its
 * own name, every tensor's data lies inside the input (its first and last byte are read, so
 * AddressSanitizer catches an offset check that lets a pointer escape), every array element can
 * be read, and the typed getters either succeed or fail cleanly on every key. Then the adapter
 * builds the config, the tokenizer JSON and the renamed tensor views, whose data must lie inside
 * the input too. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"
#include "core/weights.h"
#include "models/gguf_adapter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t sink;

static void touch_array(const om_gguf_array *a) {
    for (uint64_t i = 0; i < a->n; i++) {
        if (a->type == OM_GGUF_STRING) {
            if (strlen(a->strs[i]) > a->str_lens[i]) abort();
            if (a->str_lens[i]) sink ^= (unsigned char)a->strs[i][a->str_lens[i] - 1];
        } else if (a->type == OM_GGUF_ARRAY) {
            touch_array(&a->arrays[i]);
        } else {
            double f = om_gguf_array_float(a, i);
            uint64_t bits;
            memcpy(&bits, &f, sizeof bits);
            sink ^= (uint64_t)om_gguf_array_int(a, i) ^ bits;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    om_gguf *g = NULL;
    if (om_gguf_parse(data, size, "fuzz.gguf", &g) != 0) {
        if (g) abort(); /* a failed parse must not hand back a half-built result */
        return 0;
    }
    for (size_t i = 0; i < om_gguf_kv_count(g); i++) {
        const om_gguf_kv *kv = om_gguf_kv_at(g, i);
        if (om_gguf_find(g, kv->key) != kv) abort();
        uint32_t u32;
        uint64_t u64;
        int64_t i64;
        double f;
        int b;
        const char *s;
        const om_gguf_array *a;
        /* each getter either succeeds or records an error; none may crash */
        (void)om_gguf_get_u32(g, kv->key, &u32);
        (void)om_gguf_get_u64(g, kv->key, &u64);
        (void)om_gguf_get_i64(g, kv->key, &i64);
        (void)om_gguf_get_f64(g, kv->key, &f);
        (void)om_gguf_get_bool(g, kv->key, &b);
        if (om_gguf_get_string(g, kv->key, &s) == 0 && strlen(s) > kv->str_len) abort();
        if (om_gguf_get_array(g, kv->key, OM_GGUF_TYPE_COUNT, &a) == 0) touch_array(a);
    }
    for (size_t i = 0; i < om_gguf_tensor_count(g); i++) {
        const om_gguf_tensor *t = om_gguf_tensor_at(g, i);
        if (om_gguf_find_tensor(g, t->name) != t) abort();
        const uint8_t *p = t->data;
        if (p < data || p > data + size || t->nbytes > (size_t)(data + size - p)) abort();
        if (t->offset % om_gguf_alignment(g) != 0) abort();
        if (t->nbytes) sink ^= p[0] ^ p[t->nbytes - 1];
    }
    cJSON *config = NULL, *tj = NULL, *tc = NULL;
    if (om_gguf_to_tokenizer(g, &tj, &tc) == 0 && tj) {
        char *text = cJSON_PrintUnformatted(tj);
        if (text) sink ^= (unsigned char)text[0];
        free(text);
    }
    cJSON_Delete(tj);
    cJSON_Delete(tc);
    om_weights *w = NULL;
    if (om_gguf_to_config(g, &config) == 0 && om_gguf_to_weights(g, config, &w) == 0) {
        g = NULL; /* the weights own it now */
        for (size_t i = 0; i < om_weights_count(w); i++) {
            const om_weight_info *info = om_weights_at(w, i);
            const uint8_t *p = info->data;
            if (om_weights_find(w, info->name) != info) abort();
            if (p < data || p > data + size || info->nbytes > (size_t)(data + size - p)) abort();
            if (info->nbytes) sink ^= p[0] ^ p[info->nbytes - 1];
        }
        om_weights_free(w);
    }
    cJSON_Delete(config);
    om_gguf_free(g);
    return 0;
}
