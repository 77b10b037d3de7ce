/* The GGUF reader (see gguf.h).
 *
 * Layout (all little-endian; strings are a uint64 length and that many bytes, no NUL):
 *     "GGUF" | uint32 version | uint64 n_tensors | uint64 n_kv
 *     n_kv x      { string key | uint32 type | value }
 *                 value of an array: uint32 element type | uint64 count | count values
 *     n_tensors x { string name | uint32 n_dims | n_dims x uint64 ne | uint32 ggml type | uint64 offset }
 *     padding to general.alignment | tensor data (each tensor at data start + offset)
 *
 * The parser walks the file with a cursor whose every read is checked against the bytes that
 * remain, so a count can never make it allocate more than the file could describe: a string
 * takes at least 8 bytes, a metadata entry 13, a tensor info 24. Numeric metadata arrays stay
 * in the mapping; strings are copied out NUL-terminated (one buffer per string array) because
 * the mapping has no room for terminators. Keys and tensor names are looked up through
 * open-addressing hash tables, which also find duplicates while parsing. */
#include "core/gguf.h"
#include "core/weights.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

/* Arrays of arrays deeper than this are refused: no real file nests at all, and the limit
 * bounds the recursion a hostile file could ask for. */
#define GGUF_MAX_DEPTH 8
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4

/* ---- ggml tensor types ---- */

typedef struct ggml_type_info {
    const char *name;
    int block;          /* elements per block; 0: no such type id */
    int bytes;          /* bytes per block */
    om_dtype dtype;     /* OM_DTYPE_COUNT: ominix has no dtype for it */
} ggml_type_info;

/* ggml's type ids (ggml.h enum ggml_type; the gaps are ids ggml has retired). Block sizes and
 * bytes per block as ggml's type_traits give them. */
static const ggml_type_info ggml_types[] = {
    [0] = {"F32", 1, 4, OM_F32},
    [1] = {"F16", 1, 2, OM_F16},
    [2] = {"Q4_0", 32, 18, OM_Q4_0},
    [3] = {"Q4_1", 32, 20, OM_Q4_1},
    [6] = {"Q5_0", 32, 22, OM_Q5_0},
    [7] = {"Q5_1", 32, 24, OM_Q5_1},
    [8] = {"Q8_0", 32, 34, OM_Q8_0},
    [9] = {"Q8_1", 32, 36, OM_DTYPE_COUNT},
    [10] = {"Q2_K", 256, 84, OM_Q2_K},
    [11] = {"Q3_K", 256, 110, OM_Q3_K},
    [12] = {"Q4_K", 256, 144, OM_Q4_K},
    [13] = {"Q5_K", 256, 176, OM_Q5_K},
    [14] = {"Q6_K", 256, 210, OM_Q6_K},
    [15] = {"Q8_K", 256, 292, OM_DTYPE_COUNT},
    [16] = {"IQ2_XXS", 256, 66, OM_DTYPE_COUNT},
    [17] = {"IQ2_XS", 256, 74, OM_DTYPE_COUNT},
    [18] = {"IQ3_XXS", 256, 98, OM_DTYPE_COUNT},
    [19] = {"IQ1_S", 256, 50, OM_DTYPE_COUNT},
    [20] = {"IQ4_NL", 32, 18, OM_DTYPE_COUNT},
    [21] = {"IQ3_S", 256, 110, OM_DTYPE_COUNT},
    [22] = {"IQ2_S", 256, 82, OM_DTYPE_COUNT},
    [23] = {"IQ4_XS", 256, 136, OM_DTYPE_COUNT},
    [24] = {"I8", 1, 1, OM_DTYPE_COUNT},
    [25] = {"I16", 1, 2, OM_DTYPE_COUNT},
    [26] = {"I32", 1, 4, OM_DTYPE_COUNT},
    [27] = {"I64", 1, 8, OM_DTYPE_COUNT},
    [28] = {"F64", 1, 8, OM_DTYPE_COUNT},
    [29] = {"IQ1_M", 256, 56, OM_DTYPE_COUNT},
    [30] = {"BF16", 1, 2, OM_BF16},
    [34] = {"TQ1_0", 256, 54, OM_DTYPE_COUNT},
    [35] = {"TQ2_0", 256, 66, OM_DTYPE_COUNT},
    [39] = {"MXFP4", 32, 17, OM_DTYPE_COUNT},
};

static const ggml_type_info *ggml_type_find(uint32_t id) {
    if (id >= sizeof ggml_types / sizeof ggml_types[0] || ggml_types[id].block == 0) return NULL;
    return &ggml_types[id];
}

/* ---- metadata value types ---- */

static const char *const type_names[OM_GGUF_TYPE_COUNT] = {
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64",
    "float64",
};

/* Bytes of a fixed-size value; 0 for string and array. */
static size_t type_size(om_gguf_type t) {
    switch (t) {
    case OM_GGUF_UINT8: case OM_GGUF_INT8: case OM_GGUF_BOOL: return 1;
    case OM_GGUF_UINT16: case OM_GGUF_INT16: return 2;
    case OM_GGUF_UINT32: case OM_GGUF_INT32: case OM_GGUF_FLOAT32: return 4;
    case OM_GGUF_UINT64: case OM_GGUF_INT64: case OM_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

const char *om_gguf_type_name(om_gguf_type t) {
    return (unsigned)t < OM_GGUF_TYPE_COUNT ? type_names[t] : "unknown";
}

static int is_signed(om_gguf_type t) {
    return t == OM_GGUF_INT8 || t == OM_GGUF_INT16 || t == OM_GGUF_INT32 || t == OM_GGUF_INT64;
}

static int is_unsigned(om_gguf_type t) {
    return t == OM_GGUF_UINT8 || t == OM_GGUF_UINT16 || t == OM_GGUF_UINT32 || t == OM_GGUF_UINT64;
}

/* ---- little-endian loads (the mapping is unaligned in general) ---- */

static uint64_t load_le(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
    return v;
}

static int64_t load_signed(const uint8_t *p, size_t n) {
    uint64_t v = load_le(p, n);
    if (n < 8 && (v >> (8 * n - 1)) & 1) v |= ~(uint64_t)0 << (8 * n); /* sign-extend */
    int64_t s;
    memcpy(&s, &v, sizeof s);
    return s;
}

static double load_float(const uint8_t *p, om_gguf_type t) {
    if (t == OM_GGUF_FLOAT32) {
        uint32_t u = (uint32_t)load_le(p, 4);
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    uint64_t u = load_le(p, 8);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* ---- the parsed file ---- */

/* Memory handed out while parsing, freed with the file: string copies and arrays. */
typedef struct gguf_block {
    struct gguf_block *next;
} gguf_block;

struct om_gguf {
    char *path;
    void *map; /* NULL when parsing a caller's buffer */
    const uint8_t *data;
    size_t size;
    uint32_t version;
    size_t alignment;
    size_t data_start;
    om_gguf_kv *kvs;
    size_t n_kv;
    om_gguf_tensor *tensors;
    size_t n_tensors;
    uint32_t *kv_slots, *tensor_slots; /* index + 1; 0 is empty */
    size_t kv_nslots, tensor_nslots;
    gguf_block *blocks;
};

static void *gguf_alloc(om_gguf *g, size_t n) {
    if (n > SIZE_MAX - sizeof(gguf_block) - 16) return NULL;
    /* The header is padded to 16 bytes so the payload suits any element type. */
    gguf_block *b = malloc(16 + n);
    if (!b) return NULL;
    b->next = g->blocks;
    g->blocks = b;
    return (char *)b + 16;
}

void om_gguf_free(om_gguf *g) {
    if (!g) return;
    while (g->blocks) {
        gguf_block *b = g->blocks;
        g->blocks = b->next;
        free(b);
    }
    free(g->kvs);
    free(g->tensors);
    free(g->kv_slots);
    free(g->tensor_slots);
    if (g->map) munmap(g->map, g->size);
    free(g->path);
    free(g);
}

/* ---- name tables ---- */

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* A table with room for n names at load factor at most 1/2. */
static uint32_t *table_new(size_t n, size_t *nslots) {
    size_t s = 16;
    while (s < 2 * n) s *= 2;
    *nslots = s;
    return calloc(s, sizeof(uint32_t));
}

/* Finds name among the entries whose names get_name returns; inserts index + 1 when absent
 * and insert is set. Returns the slot's value (0 when absent). */
typedef const char *(*name_of_fn)(const om_gguf *g, size_t i);

static uint32_t table_lookup(const om_gguf *g, uint32_t *slots, size_t nslots, name_of_fn name_of, const char *name,
                             uint32_t insert) {
    if (!nslots) return 0;
    size_t mask = nslots - 1;
    for (size_t i = (size_t)hash_name(name) & mask;; i = (i + 1) & mask) {
        if (slots[i] == 0) {
            if (insert) slots[i] = insert;
            return 0;
        }
        if (strcmp(name_of(g, slots[i] - 1), name) == 0) return slots[i];
    }
}

static const char *kv_name(const om_gguf *g, size_t i) { return g->kvs[i].key; }
static const char *tensor_name(const om_gguf *g, size_t i) { return g->tensors[i].name; }

/* ---- the cursor ---- */

typedef struct cursor {
    om_gguf *g;
    const uint8_t *p;
    size_t size, off;
    const char *label;
} cursor;

static size_t left(const cursor *c) { return c->size - c->off; }

/* Checks that n more bytes are there; `what` says what they would be ("tensor count"). */
static int need(cursor *c, size_t n, const char *what) {
    if (n > left(c))
        return om_errorf("%s: truncated: %s needs %zu bytes at offset %zu but the file has %zu bytes", c->label, what,
                         n, c->off, c->size);
    return 0;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what) {
    if (need(c, 4, what)) return -1;
    *v = (uint32_t)load_le(c->p + c->off, 4);
    c->off += 4;
    return 0;
}

static int rd_u64(cursor *c, uint64_t *v, const char *what) {
    if (need(c, 8, what)) return -1;
    *v = load_le(c->p + c->off, 8);
    c->off += 8;
    return 0;
}

/* A string: its bytes stay in the mapping (*s, *len). */
static int rd_str(cursor *c, const uint8_t **s, size_t *len, const char *what) {
    uint64_t n;
    *s = NULL;
    *len = 0;
    if (rd_u64(c, &n, what)) return -1;
    if (n > left(c))
        return om_errorf("%s: truncated: %s of %llu bytes at offset %zu runs past the end of the file (%zu bytes)",
                         c->label, what, (unsigned long long)n, c->off, c->size);
    *s = c->p + c->off;
    *len = (size_t)n;
    c->off += (size_t)n;
    return 0;
}

/* A NUL-terminated copy of len bytes at s. */
static char *copy_str(om_gguf *g, const uint8_t *s, size_t len) {
    char *d = gguf_alloc(g, len + 1);
    if (!d) return NULL;
    if (len) memcpy(d, s, len);
    d[len] = 0;
    return d;
}

/* Quotes up to 64 bytes of a name for messages, replacing bytes that would break the line. */
static const char *printable(const char *s, char *buf, size_t size) {
    size_t n = 0;
    for (; *s && n + 4 < size && n < 64; s++) buf[n++] = (*s >= 32 && *s != 127) ? *s : '?';
    if (*s) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = 0;
    return buf;
}

/* ---- metadata ---- */

static int parse_array(cursor *c, om_gguf_array *a, int depth, const char *key);

/* Reads a value of type t into kv (scalars and strings) for key. */
static int parse_value(cursor *c, om_gguf_kv *kv, const char *key) {
    char what[160];
    snprintf(what, sizeof what, "the value of metadata '%s'", key);
    size_t sz = type_size(kv->type);
    if (sz) {
        if (need(c, sz, what)) return -1;
        const uint8_t *p = c->p + c->off;
        if (kv->type == OM_GGUF_FLOAT32 || kv->type == OM_GGUF_FLOAT64) kv->v.f = load_float(p, kv->type);
        else if (kv->type == OM_GGUF_BOOL) {
            if (p[0] > 1)
                return om_errorf("%s: metadata '%s': bool value %u is neither 0 nor 1", c->label, key, p[0]);
            kv->v.b = p[0];
        } else if (is_signed(kv->type)) kv->v.i = load_signed(p, sz);
        else kv->v.u = load_le(p, sz);
        c->off += sz;
        return 0;
    }
    if (kv->type == OM_GGUF_STRING) {
        const uint8_t *s;
        size_t len;
        if (rd_str(c, &s, &len, what)) return -1;
        kv->str = copy_str(c->g, s, len);
        if (!kv->str) return om_errorf("%s: out of memory", c->label);
        kv->str_len = len;
        return 0;
    }
    return parse_array(c, &kv->arr, 0, key);
}

static int parse_array(cursor *c, om_gguf_array *a, int depth, const char *key) {
    char what[160];
    snprintf(what, sizeof what, "the array header of metadata '%s'", key);
    uint32_t t;
    uint64_t n;
    if (rd_u32(c, &t, what) || rd_u64(c, &n, what)) return -1;
    if (t >= OM_GGUF_TYPE_COUNT)
        return om_errorf("%s: metadata '%s': unknown array element type %u", c->label, key, t);
    a->type = (om_gguf_type)t;
    a->n = n;
    if (a->type == OM_GGUF_ARRAY && depth + 1 >= GGUF_MAX_DEPTH)
        return om_errorf("%s: metadata '%s': arrays nested more than %d deep", c->label, key, GGUF_MAX_DEPTH);
    /* The least bytes one element can take: the bound that keeps a hostile count from
     * allocating more than the file could hold. */
    size_t min = a->type == OM_GGUF_STRING ? 8 : a->type == OM_GGUF_ARRAY ? 12 : type_size(a->type);
    if (n > left(c) / min)
        return om_errorf("%s: truncated: metadata '%s' is an array of %llu %s values, more than the %zu bytes left "
                         "can hold",
                         c->label, key, (unsigned long long)n, om_gguf_type_name(a->type), left(c));
    snprintf(what, sizeof what, "an element of metadata '%s'", key);
    if (a->type == OM_GGUF_STRING) {
        /* Two passes: find every string and the total length, then copy them into one buffer. */
        const char **strs = gguf_alloc(c->g, (size_t)n * sizeof *strs + 1);
        size_t *lens = gguf_alloc(c->g, (size_t)n * sizeof *lens + 1);
        if (!strs || !lens) return om_errorf("%s: out of memory", c->label);
        size_t total = 0, start = c->off;
        for (uint64_t i = 0; i < n; i++) {
            const uint8_t *s;
            if (rd_str(c, &s, &lens[i], what)) return -1;
            total += lens[i] + 1; /* cannot overflow: bounded by the file size plus n */
        }
        char *buf = gguf_alloc(c->g, total + 1);
        if (!buf) return om_errorf("%s: out of memory", c->label);
        c->off = start;
        for (uint64_t i = 0; i < n; i++) {
            const uint8_t *s = NULL;
            if (rd_str(c, &s, &lens[i], what)) return -1; /* cannot fail: the first pass read it */
            if (lens[i]) memcpy(buf, s, lens[i]);
            buf[lens[i]] = 0;
            strs[i] = buf;
            buf += lens[i] + 1;
        }
        a->strs = strs;
        a->str_lens = lens;
        return 0;
    }
    if (a->type == OM_GGUF_ARRAY) {
        om_gguf_array *sub = gguf_alloc(c->g, (size_t)n * sizeof *sub + 1);
        if (!sub) return om_errorf("%s: out of memory", c->label);
        memset(sub, 0, (size_t)n * sizeof *sub);
        for (uint64_t i = 0; i < n; i++)
            if (parse_array(c, &sub[i], depth + 1, key)) return -1;
        a->arrays = sub;
        return 0;
    }
    size_t bytes = (size_t)n * min;
    a->data = c->p + c->off;
    if (a->type == OM_GGUF_BOOL)
        for (size_t i = 0; i < bytes; i++)
            if (a->data[i] > 1)
                return om_errorf("%s: metadata '%s': bool element %zu is %u, neither 0 nor 1", c->label, key, i,
                                 a->data[i]);
    c->off += bytes;
    return 0;
}

static int parse_kvs(cursor *c, uint64_t n_kv) {
    om_gguf *g = c->g;
    g->kvs = calloc(n_kv ? (size_t)n_kv : 1, sizeof *g->kvs);
    g->kv_slots = table_new((size_t)n_kv, &g->kv_nslots);
    if (!g->kvs || !g->kv_slots) return om_errorf("%s: out of memory", c->label);
    for (uint64_t i = 0; i < n_kv; i++) {
        char what[64], pbuf[80];
        snprintf(what, sizeof what, "metadata entry %llu", (unsigned long long)i);
        const uint8_t *s;
        size_t len;
        if (rd_str(c, &s, &len, what)) return -1;
        om_gguf_kv *kv = &g->kvs[i];
        kv->key = copy_str(g, s, len);
        if (!kv->key) return om_errorf("%s: out of memory", c->label);
        if (strlen(kv->key) != len)
            return om_errorf("%s: metadata entry %llu: key '%s' contains a NUL byte", c->label, (unsigned long long)i,
                             printable(kv->key, pbuf, sizeof pbuf));
        const char *key = printable(kv->key, pbuf, sizeof pbuf);
        uint32_t t;
        snprintf(what, sizeof what, "the type of metadata entry %llu", (unsigned long long)i);
        if (rd_u32(c, &t, what)) return -1;
        if (t >= OM_GGUF_TYPE_COUNT) return om_errorf("%s: metadata '%s': unknown value type %u", c->label, key, t);
        kv->type = (om_gguf_type)t;
        if (parse_value(c, kv, key)) return -1;
        if (table_lookup(g, g->kv_slots, g->kv_nslots, kv_name, kv->key, (uint32_t)(i + 1)))
            return om_errorf("%s: metadata '%s' appears twice", c->label, key);
        g->n_kv = (size_t)i + 1;
    }
    return 0;
}

/* ---- tensor infos ---- */

static int parse_tensor(cursor *c, uint64_t i) {
    om_gguf *g = c->g;
    om_gguf_tensor *t = &g->tensors[i];
    char what[128], pbuf[80];
    snprintf(what, sizeof what, "the name of tensor %llu", (unsigned long long)i);
    const uint8_t *s;
    size_t len;
    if (rd_str(c, &s, &len, what)) return -1;
    t->name = copy_str(g, s, len);
    if (!t->name) return om_errorf("%s: out of memory", c->label);
    const char *name = printable(t->name, pbuf, sizeof pbuf);
    if (strlen(t->name) != len) return om_errorf("%s: tensor %llu: name '%s' contains a NUL byte", c->label,
                                                 (unsigned long long)i, name);
    if (!len) return om_errorf("%s: tensor %llu has an empty name", c->label, (unsigned long long)i);
    snprintf(what, sizeof what, "the info of tensor '%s'", name);
    uint32_t n_dims, type;
    if (rd_u32(c, &n_dims, what)) return -1;
    if (n_dims > GGUF_MAX_DIMS)
        return om_errorf("%s: tensor '%s' has %u dimensions; at most %d are allowed", c->label, name, n_dims,
                         GGUF_MAX_DIMS);
    t->n_dims = (int)n_dims;
    uint64_t nelem = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if (d < (int)n_dims && rd_u64(c, &ne, what)) return -1;
        if (ne > (uint64_t)INT64_MAX)
            return om_errorf("%s: tensor '%s': dimension %d is %llu, out of range", c->label, name, d,
                             (unsigned long long)ne);
        if (ne != 0 && nelem > (uint64_t)INT64_MAX / ne)
            return om_errorf("%s: tensor '%s': %u dimensions multiply past 2^63 elements", c->label, name, n_dims);
        nelem *= ne;
        t->ne[d] = (int64_t)ne;
    }
    if (rd_u32(c, &type, what) || rd_u64(c, &t->offset, what)) return -1;
    const ggml_type_info *ti = ggml_type_find(type);
    if (!ti) return om_errorf("%s: tensor '%s' has unknown ggml type id %u", c->label, name, type);
    t->ggml_type = type;
    t->type_name = ti->name;
    t->dtype = ti->dtype;
    t->supported = ti->dtype != OM_DTYPE_COUNT;
    if (t->ne[0] % ti->block != 0)
        return om_errorf("%s: tensor '%s': rows of %lld elements are not a whole number of %s blocks of %d",
                         c->label, name, (long long)t->ne[0], ti->name, ti->block);
    /* Bytes: whole rows of blocks; nelem < 2^63 and bytes per block <= 292 keep this in range
     * of uint64 only after dividing by the block size first. */
    uint64_t blocks = nelem / (uint64_t)ti->block;
    if (blocks > (uint64_t)SIZE_MAX / (uint64_t)ti->bytes)
        return om_errorf("%s: tensor '%s' of %llu %s elements is too large", c->label, name,
                         (unsigned long long)nelem, ti->name);
    t->nbytes = (size_t)(blocks * (uint64_t)ti->bytes);
    if (t->offset % g->alignment != 0)
        return om_errorf("%s: tensor '%s': data offset %llu is not a multiple of the alignment %zu", c->label, name,
                         (unsigned long long)t->offset, g->alignment);
    if (table_lookup(g, g->tensor_slots, g->tensor_nslots, tensor_name, t->name, (uint32_t)(i + 1)))
        return om_errorf("%s: tensor '%s' appears twice", c->label, name);
    g->n_tensors = (size_t)i + 1;
    return 0;
}

/* ---- the whole file ---- */

static int parse(om_gguf *g) {
    cursor c = {g, g->data, g->size, 0, g->path};
    const char *label = g->path;
    if (g->size < 4 || memcmp(g->data, "GGUF", 4) != 0) {
        /* Name what the file starts with: a safetensors file or an HTML error page read as a
         * model is the usual mistake. */
        char got[16] = "";
        size_t n = g->size < 4 ? g->size : 4;
        for (size_t i = 0; i < n; i++) snprintf(got + 2 * i, 3, "%02x", g->data[i]);
        return om_errorf("%s: not a GGUF file (starts with %s%s, expected \"GGUF\")", label, n ? "bytes " : "",
                         n ? got : "nothing");
    }
    c.off = 4;
    uint64_t n_tensors, n_kv;
    if (rd_u32(&c, &g->version, "the header")) return -1;
    if (g->version != 2 && g->version != 3) {
        if (g->version == 1) return om_errorf("%s: GGUF version 1 is not supported (only 2 and 3)", label);
        if ((g->version & 0xffff) == 0)
            return om_errorf("%s: GGUF version %u is not supported (a big-endian file?); only 2 and 3", label,
                             g->version);
        return om_errorf("%s: GGUF version %u is not supported (only 2 and 3)", label, g->version);
    }
    if (rd_u64(&c, &n_tensors, "the header") || rd_u64(&c, &n_kv, "the header")) return -1;
    /* A metadata entry takes at least 13 bytes (key length, type, a one-byte value), a tensor
     * info 24 (name length, n_dims, type, offset). */
    if (n_kv > left(&c) / 13)
        return om_errorf("%s: truncated: the header promises %llu metadata entries; the %zu bytes left cannot hold them",
                         label, (unsigned long long)n_kv, left(&c));
    if (parse_kvs(&c, n_kv)) return -1;

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const om_gguf_kv *al = om_gguf_find(g, "general.alignment");
    if (al) {
        if (!is_unsigned(al->type) && !is_signed(al->type))
            return om_errorf("%s: metadata 'general.alignment' is %s, expected uint32", label,
                             om_gguf_type_name(al->type));
        uint64_t a = is_signed(al->type) ? (al->v.i < 0 ? 0 : (uint64_t)al->v.i) : al->v.u;
        if (a == 0 || (a & (a - 1)) != 0 || a > (1u << 30))
            return om_errorf("%s: metadata 'general.alignment' is %lld; it must be a power of two", label,
                             is_signed(al->type) ? (long long)al->v.i : (long long)al->v.u);
        g->alignment = (size_t)a;
    }

    if (n_tensors > left(&c) / 24)
        return om_errorf("%s: truncated: the header promises %llu tensors; the %zu bytes left cannot hold their infos",
                         label, (unsigned long long)n_tensors, left(&c));
    g->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors);
    g->tensor_slots = table_new((size_t)n_tensors, &g->tensor_nslots);
    if (!g->tensors || !g->tensor_slots) return om_errorf("%s: out of memory", label);
    for (uint64_t i = 0; i < n_tensors; i++)
        if (parse_tensor(&c, i)) return -1;

    /* The data section starts at the next multiple of the alignment. */
    size_t start = c.off + (g->alignment - c.off % g->alignment) % g->alignment;
    g->data_start = start;
    for (size_t i = 0; i < g->n_tensors; i++) {
        om_gguf_tensor *t = &g->tensors[i];
        char pbuf[80];
        if (start > g->size || t->offset > g->size - start || t->nbytes > g->size - start - t->offset)
            return om_errorf("%s: truncated: tensor '%s' (%s, %zu bytes at data offset %llu) runs past the end of "
                             "the file (%zu bytes, data section from byte %zu)",
                             label, printable(t->name, pbuf, sizeof pbuf), t->type_name, t->nbytes,
                             (unsigned long long)t->offset, g->size, start);
        t->data = g->data + start + t->offset;
    }
    return 0;
}

static om_gguf *gguf_new(const char *label) {
    om_gguf *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->path = strdup(label);
    if (!g->path) {
        free(g);
        return NULL;
    }
    return g;
}

int om_gguf_parse(const uint8_t *data, size_t size, const char *label, om_gguf **out) {
    *out = NULL;
    om_gguf *g = gguf_new(label);
    if (!g) return om_errorf("%s: out of memory", label);
    g->data = size ? data : (const uint8_t *)"";
    g->size = size;
    if (parse(g)) {
        om_gguf_free(g);
        return -1;
    }
    *out = g;
    return 0;
}

int om_gguf_open(const char *path, om_gguf **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return om_errorf("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return om_errorf("%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return om_errorf("%s: not a regular file", path);
    }
    om_gguf *g = gguf_new(path);
    if (!g) {
        close(fd);
        return om_errorf("%s: out of memory", path);
    }
    g->size = (size_t)st.st_size;
    if (g->size > 0) {
        /* mmap of an empty file fails; an empty file gets the "not a GGUF file" error instead. */
        void *map = mmap(NULL, g->size, PROT_READ, MAP_PRIVATE, fd, 0);
        int e = errno;
        if (map == MAP_FAILED) {
            close(fd);
            om_gguf_free(g);
            return om_errorf("%s: cannot mmap %zu bytes: %s", path, (size_t)st.st_size, strerror(e));
        }
        om_weights_advise(map, g->size);
        g->map = map;
        g->data = map;
    } else {
        g->data = (const uint8_t *)"";
    }
    close(fd); /* the mapping keeps the file alive */
    if (parse(g)) {
        om_gguf_free(g);
        return -1;
    }
    *out = g;
    return 0;
}

/* ---- queries ---- */

const char *om_gguf_path(const om_gguf *g) { return g->path; }
uint32_t om_gguf_version(const om_gguf *g) { return g->version; }
size_t om_gguf_alignment(const om_gguf *g) { return g->alignment; }
size_t om_gguf_file_size(const om_gguf *g) { return g->size; }
size_t om_gguf_kv_count(const om_gguf *g) { return g->n_kv; }
const om_gguf_kv *om_gguf_kv_at(const om_gguf *g, size_t i) { return i < g->n_kv ? &g->kvs[i] : NULL; }
size_t om_gguf_tensor_count(const om_gguf *g) { return g->n_tensors; }
const om_gguf_tensor *om_gguf_tensor_at(const om_gguf *g, size_t i) {
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const om_gguf_kv *om_gguf_find(const om_gguf *g, const char *key) {
    uint32_t s = table_lookup(g, g->kv_slots, g->kv_nslots, kv_name, key, 0);
    return s ? &g->kvs[s - 1] : NULL;
}

const om_gguf_tensor *om_gguf_find_tensor(const om_gguf *g, const char *name) {
    uint32_t s = table_lookup(g, g->tensor_slots, g->tensor_nslots, tensor_name, name, 0);
    return s ? &g->tensors[s - 1] : NULL;
}

int64_t om_gguf_array_int(const om_gguf_array *a, uint64_t i) {
    size_t sz = type_size(a->type);
    if (i >= a->n || !a->data || (!is_signed(a->type) && !is_unsigned(a->type) && a->type != OM_GGUF_BOOL)) return 0;
    const uint8_t *p = a->data + (size_t)i * sz;
    if (is_signed(a->type)) return load_signed(p, sz);
    return (int64_t)load_le(p, sz);
}

double om_gguf_array_float(const om_gguf_array *a, uint64_t i) {
    if (i >= a->n || !a->data) return 0;
    if (a->type == OM_GGUF_FLOAT32 || a->type == OM_GGUF_FLOAT64)
        return load_float(a->data + (size_t)i * type_size(a->type), a->type);
    if (is_unsigned(a->type)) return (double)(uint64_t)om_gguf_array_int(a, i);
    return (double)om_gguf_array_int(a, i);
}

/* ---- typed getters ---- */

static int wrong_type(const om_gguf *g, const om_gguf_kv *kv, const char *expected) {
    char pbuf[80];
    return om_errorf("%s: metadata '%s' is %s, expected %s", g->path, printable(kv->key, pbuf, sizeof pbuf),
                     om_gguf_type_name(kv->type), expected);
}

static int missing(const om_gguf *g, const char *key) {
    char pbuf[80];
    return om_errorf("%s: missing metadata '%s'", g->path, printable(key, pbuf, sizeof pbuf));
}

/* An integer value within [lo, hi] (as signed) or [0, uhi] (unsigned); `expected` names the
 * getter's type in errors. */
static int get_int(const om_gguf *g, const om_gguf_kv *kv, int want_signed, uint64_t umax, int64_t smin,
                   int64_t smax, const char *expected, uint64_t *uout, int64_t *sout) {
    char pbuf[80];
    if (!is_signed(kv->type) && !is_unsigned(kv->type)) return wrong_type(g, kv, expected);
    if (want_signed) {
        int64_t v;
        if (is_signed(kv->type)) v = kv->v.i;
        else if (kv->v.u > (uint64_t)INT64_MAX) goto range;
        else v = (int64_t)kv->v.u;
        if (v < smin || v > smax) goto range;
        *sout = v;
        return 0;
    }
    if (is_signed(kv->type) && kv->v.i < 0) goto range;
    uint64_t u = is_signed(kv->type) ? (uint64_t)kv->v.i : kv->v.u;
    if (u > umax) goto range;
    *uout = u;
    return 0;
range:
    if (is_signed(kv->type))
        return om_errorf("%s: metadata '%s' is %s %lld, out of range for %s", g->path,
                         printable(kv->key, pbuf, sizeof pbuf), om_gguf_type_name(kv->type), (long long)kv->v.i,
                         expected);
    return om_errorf("%s: metadata '%s' is %s %llu, out of range for %s", g->path,
                     printable(kv->key, pbuf, sizeof pbuf), om_gguf_type_name(kv->type), (unsigned long long)kv->v.u,
                     expected);
}

int om_gguf_get_u32_or(const om_gguf *g, const char *key, uint32_t def, uint32_t *out) {
    const om_gguf_kv *kv = om_gguf_find(g, key);
    uint64_t u = 0;
    if (!kv) {
        *out = def;
        return 0;
    }
    if (get_int(g, kv, 0, UINT32_MAX, 0, 0, "uint32", &u, NULL)) return -1;
    *out = (uint32_t)u;
    return 0;
}

int om_gguf_get_u64_or(const om_gguf *g, const char *key, uint64_t def, uint64_t *out) {
    const om_gguf_kv *kv = om_gguf_find(g, key);
    if (!kv) {
        *out = def;
        return 0;
    }
    return get_int(g, kv, 0, UINT64_MAX, 0, 0, "uint64", out, NULL);
}

int om_gguf_get_i64_or(const om_gguf *g, const char *key, int64_t def, int64_t *out) {
    const om_gguf_kv *kv = om_gguf_find(g, key);
    if (!kv) {
        *out = def;
        return 0;
    }
    return get_int(g, kv, 1, 0, INT64_MIN, INT64_MAX, "int64", NULL, out);
}

int om_gguf_get_f64_or(const om_gguf *g, const char *key, double def, double *out) {
    const om_gguf_kv *kv = om_gguf_find(g, key);
    if (!kv) {
        *out = def;
        return 0;
    }
    if (kv->type != OM_GGUF_FLOAT32 && kv->type != OM_GGUF_FLOAT64) return wrong_type(g, kv, "float32 or float64");
    *out = kv->v.f;
    return 0;
}

int om_gguf_get_f32_or(const om_gguf *g, const char *key, float def, float *out) {
    double d = def;
    if (om_gguf_get_f64_or(g, key, def, &d)) return -1;
    *out = (float)d;
    return 0;
}

int om_gguf_get_bool_or(const om_gguf *g, const char *key, int def, int *out) {
    const om_gguf_kv *kv = om_gguf_find(g, key);
    if (!kv) {
        *out = def;
        return 0;
    }
    if (kv->type != OM_GGUF_BOOL) return wrong_type(g, kv, "bool");
    *out = kv->v.b;
    return 0;
}

int om_gguf_get_string_or(const om_gguf *g, const char *key, const char *def, const char **out) {
    const om_gguf_kv *kv = om_gguf_find(g, key);
    if (!kv) {
        *out = def;
        return 0;
    }
    if (kv->type != OM_GGUF_STRING) return wrong_type(g, kv, "string");
    *out = kv->str;
    return 0;
}

int om_gguf_get_array_or(const om_gguf *g, const char *key, om_gguf_type elem, const om_gguf_array **out) {
    const om_gguf_kv *kv = om_gguf_find(g, key);
    *out = NULL;
    if (!kv) return 0;
    char expected[48];
    snprintf(expected, sizeof expected, "an array of %s", elem == OM_GGUF_TYPE_COUNT ? "any type" : om_gguf_type_name(elem));
    if (kv->type != OM_GGUF_ARRAY) return wrong_type(g, kv, expected);
    if (elem != OM_GGUF_TYPE_COUNT && kv->arr.type != elem) {
        char pbuf[80];
        return om_errorf("%s: metadata '%s' is an array of %s, expected %s", g->path,
                         printable(kv->key, pbuf, sizeof pbuf), om_gguf_type_name(kv->arr.type), expected);
    }
    *out = &kv->arr;
    return 0;
}

/* The required getters: absent is an error, otherwise the _or variant decides. */
#define REQUIRED(call) return om_gguf_find(g, key) ? (call) : missing(g, key)

int om_gguf_get_u32(const om_gguf *g, const char *key, uint32_t *out) { REQUIRED(om_gguf_get_u32_or(g, key, 0, out)); }
int om_gguf_get_u64(const om_gguf *g, const char *key, uint64_t *out) { REQUIRED(om_gguf_get_u64_or(g, key, 0, out)); }
int om_gguf_get_i64(const om_gguf *g, const char *key, int64_t *out) { REQUIRED(om_gguf_get_i64_or(g, key, 0, out)); }
int om_gguf_get_f64(const om_gguf *g, const char *key, double *out) { REQUIRED(om_gguf_get_f64_or(g, key, 0, out)); }
int om_gguf_get_f32(const om_gguf *g, const char *key, float *out) { REQUIRED(om_gguf_get_f32_or(g, key, 0, out)); }
int om_gguf_get_bool(const om_gguf *g, const char *key, int *out) { REQUIRED(om_gguf_get_bool_or(g, key, 0, out)); }
int om_gguf_get_string(const om_gguf *g, const char *key, const char **out) {
    REQUIRED(om_gguf_get_string_or(g, key, NULL, out));
}
int om_gguf_get_array(const om_gguf *g, const char *key, om_gguf_type elem, const om_gguf_array **out) {
    REQUIRED(om_gguf_get_array_or(g, key, elem, out));
}
