/* libFuzzer target for the safetensors header parser: the input is a whole .safetensors file.
 * Whatever parses must be self-consistent: every tensor is found under its own name, its data
 * lies inside the input, and om_weights_get with its own shape succeeds for the dtypes ominix
 * computes with (bar misaligned data, which it must refuse). Reading the first and last byte
 * of each tensor lets AddressSanitizer catch an offset check that lets a pointer escape. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    om_weights *w = NULL;
    if (om_safetensors_parse(data, size, "fuzz.safetensors", &w) != 0) {
        if (w) abort(); /* a failed parse must not hand back a half-built result */
        return 0;
    }
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < om_weights_count(w); i++) {
        const om_weight_info *info = om_weights_at(w, i);
        if (om_weights_find(w, info->name) != info) abort();
        const uint8_t *p = info->data;
        if (p < data || p > data + size || info->nbytes > (size_t)(data + size - p)) abort();
        if (info->nbytes) sink ^= p[0] ^ p[info->nbytes - 1];
        if (info->supported) {
            om_tensor t;
            int rc = om_weights_get(w, info->name, info->ndim, info->shape, &t);
            int aligned = (uintptr_t)p % om_dtype_size(info->dtype) == 0;
            if ((rc == 0) != aligned) abort();
        }
    }
    (void)sink;
    om_weights_free(w);
    return 0;
}
