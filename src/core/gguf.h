/* The GGUF reader: llama.cpp's single-file checkpoint format, mmap'd read-only.
 *
 * A GGUF file is a header ("GGUF", version, tensor count, metadata count), typed metadata
 * (key -> value: integers, floats, bools, strings, arrays of any of these, arrays of arrays),
 * tensor infos (name, up to 4 dimensions listed innermost first, ggml type, offset) and, at the
 * next multiple of general.alignment (32 by default), the tensor data. Versions 2 and 3 share
 * this layout; version 1 (32-bit counts) and big-endian files are refused.
 *
 * Everything in the file is untrusted: every count and length is checked against the bytes
 * left before anything is allocated or read, sizes are overflow-checked, tensor data must lie
 * inside the file at an aligned offset, and a tensor type id ggml does not define is an error.
 * A bad file gives one line naming the file and the key or tensor at fault (core/error.h).
 *
 * This is the container only: it knows no architecture. Mapping llama.cpp's names to a model
 * family's is the model layer's job (src/models/gguf_adapter.c). */
#ifndef OM_GGUF_H
#define OM_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"

/* Metadata value types, numbered as in the file. */
typedef enum {
    OM_GGUF_UINT8 = 0,
    OM_GGUF_INT8 = 1,
    OM_GGUF_UINT16 = 2,
    OM_GGUF_INT16 = 3,
    OM_GGUF_UINT32 = 4,
    OM_GGUF_INT32 = 5,
    OM_GGUF_FLOAT32 = 6,
    OM_GGUF_BOOL = 7,
    OM_GGUF_STRING = 8,
    OM_GGUF_ARRAY = 9,
    OM_GGUF_UINT64 = 10,
    OM_GGUF_INT64 = 11,
    OM_GGUF_FLOAT64 = 12,
    OM_GGUF_TYPE_COUNT
} om_gguf_type;

/* An array value. Numeric and bool elements stay packed little-endian in the mapping (and may
 * be unaligned): read them with om_gguf_array_int / om_gguf_array_float. Strings are copied
 * out, NUL-terminated (they may also contain NULs: use str_len). Arrays of arrays hold their
 * children in `arrays`. */
typedef struct om_gguf_array {
    om_gguf_type type; /* element type */
    uint64_t n;
    const uint8_t *data;               /* numeric elements */
    const char *const *strs;           /* OM_GGUF_STRING: n strings */
    const size_t *str_lens;
    const struct om_gguf_array *arrays; /* OM_GGUF_ARRAY: n arrays */
} om_gguf_array;

typedef struct om_gguf_kv {
    const char *key;
    om_gguf_type type;
    union {
        uint64_t u; /* unsigned integer types */
        int64_t i;  /* signed integer types */
        double f;   /* float32 / float64 */
        int b;      /* bool: 0 or 1 */
    } v;
    const char *str; /* OM_GGUF_STRING, NUL-terminated copy */
    size_t str_len;
    om_gguf_array arr; /* OM_GGUF_ARRAY */
} om_gguf_kv;

typedef struct om_gguf_tensor {
    const char *name;
    int n_dims;
    int64_t ne[4];      /* dimensions innermost first, as the file lists them (ne[0] = columns);
                           unused ones are 1 */
    uint32_t ggml_type; /* the file's type id */
    const char *type_name; /* "F32", "Q4_1", ... */
    int supported;      /* 0 for ggml types ominix has no dtype for (IQ*, I8, F64, ...) */
    om_dtype dtype;     /* when supported */
    uint64_t offset;    /* from the start of the data section */
    const void *data;
    size_t nbytes;
} om_gguf_tensor;

typedef struct om_gguf om_gguf;

/* Maps and parses the file at path. */
int om_gguf_open(const char *path, om_gguf **out);
/* Parses size bytes at data (a whole file; not copied: it must outlive the result). `label`
 * names it in errors. The entry point of the fuzz target. */
int om_gguf_parse(const uint8_t *data, size_t size, const char *label, om_gguf **out);
void om_gguf_free(om_gguf *g);

const char *om_gguf_path(const om_gguf *g);
uint32_t om_gguf_version(const om_gguf *g);
size_t om_gguf_alignment(const om_gguf *g);
size_t om_gguf_file_size(const om_gguf *g);
/* "uint32", "string", ... */
const char *om_gguf_type_name(om_gguf_type t);

size_t om_gguf_kv_count(const om_gguf *g);
const om_gguf_kv *om_gguf_kv_at(const om_gguf *g, size_t i);
/* NULL when absent (no error recorded). */
const om_gguf_kv *om_gguf_find(const om_gguf *g, const char *key);

size_t om_gguf_tensor_count(const om_gguf *g);
const om_gguf_tensor *om_gguf_tensor_at(const om_gguf *g, size_t i);
const om_gguf_tensor *om_gguf_find_tensor(const om_gguf *g, const char *name);

/* Typed getters: 0 on success, -1 with an error naming the file and the key when it is absent
 * or has another type ("...: metadata 'llama.block_count' is string, expected uint32"). The
 * integer getters take any integer type whose value fits the result (files differ in which
 * width they write); the float getter takes float32 and float64. The _or variants return def
 * when the key is absent but still fail on a wrong type. */
int om_gguf_get_u32(const om_gguf *g, const char *key, uint32_t *out);
int om_gguf_get_u64(const om_gguf *g, const char *key, uint64_t *out);
int om_gguf_get_i64(const om_gguf *g, const char *key, int64_t *out);
int om_gguf_get_f64(const om_gguf *g, const char *key, double *out);
int om_gguf_get_f32(const om_gguf *g, const char *key, float *out);
int om_gguf_get_bool(const om_gguf *g, const char *key, int *out);
int om_gguf_get_string(const om_gguf *g, const char *key, const char **out);
/* An array whose elements have type elem (OM_GGUF_TYPE_COUNT: any). */
int om_gguf_get_array(const om_gguf *g, const char *key, om_gguf_type elem, const om_gguf_array **out);

int om_gguf_get_u32_or(const om_gguf *g, const char *key, uint32_t def, uint32_t *out);
int om_gguf_get_u64_or(const om_gguf *g, const char *key, uint64_t def, uint64_t *out);
int om_gguf_get_i64_or(const om_gguf *g, const char *key, int64_t def, int64_t *out);
int om_gguf_get_f64_or(const om_gguf *g, const char *key, double def, double *out);
int om_gguf_get_f32_or(const om_gguf *g, const char *key, float def, float *out);
int om_gguf_get_bool_or(const om_gguf *g, const char *key, int def, int *out);
/* *out = def (which may be NULL) when absent. */
int om_gguf_get_string_or(const om_gguf *g, const char *key, const char *def, const char **out);
/* *out = NULL when absent. */
int om_gguf_get_array_or(const om_gguf *g, const char *key, om_gguf_type elem, const om_gguf_array **out);

/* Element i (< a->n) of an integer or bool array, widened; 0 when the array holds neither. */
int64_t om_gguf_array_int(const om_gguf_array *a, uint64_t i);
/* Element i of a float (or integer) array as a double. */
double om_gguf_array_float(const om_gguf_array *a, uint64_t i);

#endif
