/* A small GGUF writer for the tests: builds a file in memory (metadata of every type, tensor
 * infos, aligned data) so that tests/test_gguf*.c can make valid files and then break them
 * on purpose, without Python or a download. Header-only (static functions) because two test
 * programs use it and each test program is one .c file plus test_util.c. */
#ifndef OM_TEST_GGUF_WRITE_H
#define OM_TEST_GGUF_WRITE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct gw_buf {
    uint8_t *p;
    size_t n, cap;
} gw_buf;

static inline void gw_put(gw_buf *b, const void *data, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) abort();
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
}

static inline void gw_le(gw_buf *b, uint64_t v, int bytes) {
    uint8_t tmp[8];
    for (int i = 0; i < bytes; i++) tmp[i] = (uint8_t)(v >> (8 * i));
    gw_put(b, tmp, (size_t)bytes);
}

static inline void gw_u32(gw_buf *b, uint32_t v) { gw_le(b, v, 4); }
static inline void gw_u64(gw_buf *b, uint64_t v) { gw_le(b, v, 8); }
static inline void gw_strn(gw_buf *b, const char *s, size_t n) {
    gw_u64(b, n);
    gw_put(b, s, n);
}
static inline void gw_str(gw_buf *b, const char *s) { gw_strn(b, s, strlen(s)); }
static inline void gw_f32v(gw_buf *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    gw_u32(b, u);
}

/* Value type ids as in the file. */
enum { GW_U8, GW_I8, GW_U16, GW_I16, GW_U32, GW_I32, GW_F32, GW_BOOL, GW_STR, GW_ARR, GW_U64, GW_I64, GW_F64 };

typedef struct gguf_w {
    uint32_t version;
    uint64_t alignment;
    gw_buf kv, ti, data;
    uint64_t n_kv, n_tensors;
} gguf_w;

static inline void gw_init(gguf_w *w) {
    memset(w, 0, sizeof *w);
    w->version = 3;
    w->alignment = 32;
}

static inline void gw_free(gguf_w *w) {
    free(w->kv.p);
    free(w->ti.p);
    free(w->data.p);
}

/* A key and its type; the caller writes the value into w->kv. */
static inline gw_buf *gw_key(gguf_w *w, const char *key, uint32_t type) {
    gw_str(&w->kv, key);
    gw_u32(&w->kv, type);
    w->n_kv++;
    return &w->kv;
}

static inline void gw_kv_u32(gguf_w *w, const char *key, uint32_t v) { gw_u32(gw_key(w, key, GW_U32), v); }
static inline void gw_kv_i32(gguf_w *w, const char *key, int32_t v) { gw_u32(gw_key(w, key, GW_I32), (uint32_t)v); }
static inline void gw_kv_u64(gguf_w *w, const char *key, uint64_t v) { gw_u64(gw_key(w, key, GW_U64), v); }
static inline void gw_kv_f32(gguf_w *w, const char *key, float v) { gw_f32v(gw_key(w, key, GW_F32), v); }
static inline void gw_kv_bool(gguf_w *w, const char *key, int v) { gw_le(gw_key(w, key, GW_BOOL), (uint64_t)v, 1); }
static inline void gw_kv_str(gguf_w *w, const char *key, const char *v) { gw_str(gw_key(w, key, GW_STR), v); }

static inline void gw_kv_arr_str(gguf_w *w, const char *key, const char *const *v, size_t n) {
    gw_buf *b = gw_key(w, key, GW_ARR);
    gw_u32(b, GW_STR);
    gw_u64(b, n);
    for (size_t i = 0; i < n; i++) gw_str(b, v[i]);
}

static inline void gw_kv_arr_i32(gguf_w *w, const char *key, const int32_t *v, size_t n) {
    gw_buf *b = gw_key(w, key, GW_ARR);
    gw_u32(b, GW_I32);
    gw_u64(b, n);
    for (size_t i = 0; i < n; i++) gw_u32(b, (uint32_t)v[i]);
}

static inline void gw_kv_arr_f32(gguf_w *w, const char *key, const float *v, size_t n) {
    gw_buf *b = gw_key(w, key, GW_ARR);
    gw_u32(b, GW_F32);
    gw_u64(b, n);
    for (size_t i = 0; i < n; i++) gw_f32v(b, v[i]);
}

/* A tensor with dims listed innermost first (ne[0] = columns), its data appended at the next
 * multiple of the alignment. */
static inline void gw_tensor(gguf_w *w, const char *name, uint32_t ggml_type, int n_dims, const int64_t *ne,
                      const void *data, size_t nbytes) {
    size_t pad = (size_t)((w->alignment - w->data.n % w->alignment) % w->alignment);
    static const uint8_t zeros[256];
    while (pad) {
        size_t k = pad < sizeof zeros ? pad : sizeof zeros;
        gw_put(&w->data, zeros, k);
        pad -= k;
    }
    gw_str(&w->ti, name);
    gw_u32(&w->ti, (uint32_t)n_dims);
    for (int d = 0; d < n_dims; d++) gw_u64(&w->ti, (uint64_t)ne[d]);
    gw_u32(&w->ti, ggml_type);
    gw_u64(&w->ti, w->data.n);
    gw_put(&w->data, data, nbytes);
    w->n_tensors++;
}

/* The whole file; *len bytes, malloc'd. */
static inline uint8_t *gw_finish(const gguf_w *w, size_t *len) {
    gw_buf b = {0};
    gw_put(&b, "GGUF", 4);
    gw_u32(&b, w->version);
    gw_u64(&b, w->n_tensors);
    gw_u64(&b, w->n_kv);
    gw_put(&b, w->kv.p, w->kv.n);
    gw_put(&b, w->ti.p, w->ti.n);
    size_t pad = (size_t)((w->alignment - b.n % w->alignment) % w->alignment);
    for (size_t i = 0; i < pad; i++) gw_put(&b, "", 1);
    gw_put(&b, w->data.p, w->data.n);
    *len = b.n;
    return b.p;
}

#endif
