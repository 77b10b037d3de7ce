/* Tests for the GGUF reader (src/core/gguf.c): a file with metadata of every value type, nested
 * arrays, a custom alignment and tensors of float and block-quantized types, written here from C
 * and read back through every getter; then one broken file per check the reader makes (wrong
 * magic, unsupported version, truncated header / metadata / tensor infos / tensor data,
 * unknown value and tensor types, misaligned offsets, duplicates, bad alignment, rows that are
 * not whole blocks, metadata of the wrong type), each of which must fail with one line naming
 * the file and the key or tensor at fault. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/gguf.h"
#include "gguf_write.h"
#include "test_util.h"

/* om_last_error() never returns NULL. */
static int contains(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

/* Parsing buf must fail with one line holding each of the given substrings. */
#define EXPECT_PARSE_ERROR(buf, len, ...)                                                               \
    do {                                                                                                \
        om_gguf *g_ = NULL;                                                                             \
        om_clear_error();                                                                               \
        int rc_ = om_gguf_parse(buf, len, "bad.gguf", &g_);                                             \
        CHECKF(rc_ != 0 && g_ == NULL, "line %d: parsed", __LINE__);                                    \
        const char *e_ = om_last_error();                                                               \
        CHECKF(contains(e_, "bad.gguf") && !strchr(e_, '\n'), "line %d: message: %s", __LINE__, e_);    \
        const char *subs_[] = {__VA_ARGS__};                                                            \
        for (size_t i_ = 0; i_ < sizeof subs_ / sizeof subs_[0]; i_++)                                  \
            CHECKF(contains(e_, subs_[i_]), "line %d: '%s' not in: %s", __LINE__, subs_[i_], e_);       \
        om_gguf_free(g_);                                                                               \
    } while (0)

/* ---- a valid file ---- */

static const float t_f32[2][3] = {{1, 2, 3}, {4, 5, 6}};
static const uint16_t t_f16[4] = {0x3c00, 0x4000, 0x4200, 0x4400}; /* 1, 2, 3, 4 */

/* The kv and tensors of the well-formed test file; `alignment` 0 leaves general.alignment out. */
static void write_good(gguf_w *w, uint32_t alignment) {
    gw_init(w);
    if (alignment) {
        w->alignment = alignment;
        gw_kv_u32(w, "general.alignment", alignment);
    }
    gw_kv_str(w, "general.architecture", "llama");
    gw_le(gw_key(w, "t.u8", GW_U8), 200, 1);
    gw_le(gw_key(w, "t.i8", GW_I8), (uint8_t)-5, 1);
    gw_le(gw_key(w, "t.u16", GW_U16), 60000, 2);
    gw_le(gw_key(w, "t.i16", GW_I16), (uint16_t)-300, 2);
    gw_kv_u32(w, "t.u32", 4000000000u);
    gw_kv_i32(w, "t.i32", -7);
    gw_kv_f32(w, "t.f32", 0.5f);
    gw_kv_bool(w, "t.bool", 1);
    gw_kv_u64(w, "t.u64", 1ull << 40);
    gw_le(gw_key(w, "t.i64", GW_I64), (uint64_t)(int64_t)-(1ll << 40), 8);
    double d = 2.25;
    uint64_t du;
    memcpy(&du, &d, 8);
    gw_le(gw_key(w, "t.f64", GW_F64), du, 8);
    gw_kv_str(w, "t.str", "h\xc3\xa9llo");
    const char *strs[] = {"a", "", "bc d"};
    gw_kv_arr_str(w, "t.strs", strs, 3);
    const int32_t ints[] = {3, -1, 2};
    gw_kv_arr_i32(w, "t.ints", ints, 3);
    /* [[1, 2], ["x"]] */
    gw_buf *b = gw_key(w, "t.nested", GW_ARR);
    gw_u32(b, GW_ARR);
    gw_u64(b, 2);
    gw_u32(b, GW_U16);
    gw_u64(b, 2);
    gw_le(b, 1, 2);
    gw_le(b, 2, 2);
    gw_u32(b, GW_STR);
    gw_u64(b, 1);
    gw_str(b, "x");
    gw_buf *e = gw_key(w, "t.empty", GW_ARR);
    gw_u32(e, GW_F32);
    gw_u64(e, 0);

    gw_tensor(w, "f32", 0, 2, (int64_t[]){3, 2}, t_f32, sizeof t_f32);
    gw_tensor(w, "f16", 1, 1, (int64_t[]){4}, t_f16, sizeof t_f16);
    uint8_t q41[2 * 20];
    for (size_t i = 0; i < sizeof q41; i++) q41[i] = (uint8_t)i;
    gw_tensor(w, "q4_1", 3, 2, (int64_t[]){32, 2}, q41, sizeof q41);
    gw_tensor(w, "iq2", 16, 1, (int64_t[]){256}, (uint8_t[66]){0}, 66);
}

static void test_good(uint32_t alignment) {
    gguf_w w;
    write_good(&w, alignment);
    size_t len;
    uint8_t *file = gw_finish(&w, &len);
    om_gguf *g = NULL;
    om_clear_error();
    int rc = om_gguf_parse(file, len, "good.gguf", &g);
    CHECKF(rc == 0, "parse: %s", om_last_error());
    if (rc) goto done;
    CHECK(om_gguf_version(g) == 3);
    CHECK(om_gguf_alignment(g) == (alignment ? alignment : 32));
    CHECK(om_gguf_kv_count(g) == (alignment ? 18u : 17u));
    uint32_t u32;
    uint64_t u64;
    int64_t i64;
    double f64;
    float f32;
    int bl;
    const char *s;
    const om_gguf_array *a;
    CHECK(om_gguf_get_u32(g, "t.u8", &u32) == 0 && u32 == 200);
    CHECK(om_gguf_get_i64(g, "t.i8", &i64) == 0 && i64 == -5);
    CHECK(om_gguf_get_u32(g, "t.u16", &u32) == 0 && u32 == 60000);
    CHECK(om_gguf_get_i64(g, "t.i16", &i64) == 0 && i64 == -300);
    CHECK(om_gguf_get_u32(g, "t.u32", &u32) == 0 && u32 == 4000000000u);
    CHECK(om_gguf_get_i64(g, "t.i32", &i64) == 0 && i64 == -7);
    CHECK(om_gguf_get_f32(g, "t.f32", &f32) == 0 && f32 == 0.5f);
    CHECK(om_gguf_get_bool(g, "t.bool", &bl) == 0 && bl == 1);
    CHECK(om_gguf_get_u64(g, "t.u64", &u64) == 0 && u64 == 1ull << 40);
    CHECK(om_gguf_get_i64(g, "t.i64", &i64) == 0 && i64 == -(1ll << 40));
    CHECK(om_gguf_get_f64(g, "t.f64", &f64) == 0 && f64 == 2.25);
    CHECK(om_gguf_get_string(g, "t.str", &s) == 0 && strcmp(s, "h\xc3\xa9llo") == 0);
    CHECK(om_gguf_get_array(g, "t.strs", OM_GGUF_STRING, &a) == 0 && a->n == 3 && !strcmp(a->strs[0], "a") &&
          a->str_lens[1] == 0 && !strcmp(a->strs[2], "bc d"));
    CHECK(om_gguf_get_array(g, "t.ints", OM_GGUF_INT32, &a) == 0 && a->n == 3 && om_gguf_array_int(a, 1) == -1 &&
          om_gguf_array_float(a, 2) == 2.0);
    CHECK(om_gguf_get_array(g, "t.nested", OM_GGUF_ARRAY, &a) == 0 && a->n == 2 && a->arrays[0].type == OM_GGUF_UINT16 &&
          om_gguf_array_int(&a->arrays[0], 1) == 2 && !strcmp(a->arrays[1].strs[0], "x"));
    CHECK(om_gguf_get_array(g, "t.empty", OM_GGUF_TYPE_COUNT, &a) == 0 && a->n == 0);
    /* _or variants: absent gives the default */
    CHECK(om_gguf_get_u32_or(g, "nope", 9, &u32) == 0 && u32 == 9);
    CHECK(om_gguf_get_string_or(g, "nope", NULL, &s) == 0 && s == NULL);
    CHECK(om_gguf_get_array_or(g, "nope", OM_GGUF_STRING, &a) == 0 && a == NULL);
    CHECK(om_gguf_get_f32_or(g, "t.f32", 3.0f, &f32) == 0 && f32 == 0.5f);

    CHECK(om_gguf_tensor_count(g) == 4);
    const om_gguf_tensor *t = om_gguf_find_tensor(g, "f32");
    CHECK(t && t->n_dims == 2 && t->ne[0] == 3 && t->ne[1] == 2 && t->ne[2] == 1 && t->supported &&
          t->dtype == OM_F32 && t->nbytes == sizeof t_f32 && memcmp(t->data, t_f32, sizeof t_f32) == 0);
    size_t align = om_gguf_alignment(g);
    CHECK(t && ((const uint8_t *)t->data - file) % align == 0);
    t = om_gguf_find_tensor(g, "f16");
    CHECK(t && t->dtype == OM_F16 && t->nbytes == 8 && memcmp(t->data, t_f16, 8) == 0 && t->offset % align == 0);
    t = om_gguf_find_tensor(g, "q4_1");
    CHECK(t && t->dtype == OM_Q4_1 && !strcmp(t->type_name, "Q4_1") && t->nbytes == 40 &&
          ((const uint8_t *)t->data)[39] == 39);
    t = om_gguf_find_tensor(g, "iq2");
    CHECK(t && !t->supported && !strcmp(t->type_name, "IQ2_XXS") && t->nbytes == 66);
    CHECK(om_gguf_find_tensor(g, "absent") == NULL);
    CHECK(om_gguf_tensor_at(g, 2) == om_gguf_find_tensor(g, "q4_1"));

    /* typed getters on the wrong type name the key, the type it has and the one asked for */
    om_clear_error();
    CHECK(om_gguf_get_u32(g, "t.str", &u32) != 0);
    CHECKF(contains(om_last_error(), "good.gguf: metadata 't.str' is string, expected uint32"), "%s", om_last_error());
    CHECK(om_gguf_get_string(g, "t.u32", &s) != 0);
    CHECKF(contains(om_last_error(), "'t.u32' is uint32, expected string"), "%s", om_last_error());
    CHECK(om_gguf_get_bool(g, "t.i32", &bl) != 0 && contains(om_last_error(), "expected bool"));
    CHECK(om_gguf_get_f32(g, "t.bool", &f32) != 0 && contains(om_last_error(), "'t.bool' is bool, expected float32"));
    CHECK(om_gguf_get_array(g, "t.strs", OM_GGUF_INT32, &a) != 0);
    CHECKF(contains(om_last_error(), "'t.strs' is an array of string, expected an array of int32"), "%s",
           om_last_error());
    CHECK(om_gguf_get_array(g, "t.u8", OM_GGUF_INT32, &a) != 0 && contains(om_last_error(), "is uint8"));
    /* integers of the wrong range */
    CHECK(om_gguf_get_u32(g, "t.i32", &u32) != 0);
    CHECKF(contains(om_last_error(), "'t.i32' is int32 -7, out of range for uint32"), "%s", om_last_error());
    CHECK(om_gguf_get_u32(g, "t.u64", &u32) != 0 && contains(om_last_error(), "out of range for uint32"));
    CHECK(om_gguf_get_u32_or(g, "t.str", 1, &u32) != 0); /* _or still checks the type */
    CHECK(om_gguf_get_u32(g, "nope", &u32) != 0 && contains(om_last_error(), "good.gguf: missing metadata 'nope'"));
done:
    om_gguf_free(g);
    free(file);
    gw_free(&w);
}

/* ---- broken files ---- */

static uint8_t *good_file(size_t *len) {
    gguf_w w;
    write_good(&w, 0);
    uint8_t *f = gw_finish(&w, len);
    gw_free(&w);
    return f;
}

/* A file with one metadata entry written by `fill` and one F32 tensor. */
typedef void (*fill_fn)(gguf_w *w);

static uint8_t *file_with(fill_fn fill, size_t *len) {
    gguf_w w;
    gw_init(&w);
    fill(&w);
    uint8_t *f = gw_finish(&w, len);
    gw_free(&w);
    return f;
}

static void fill_dup_key(gguf_w *w) {
    gw_kv_u32(w, "k", 1);
    gw_kv_u32(w, "k", 2);
}
static void fill_dup_tensor(gguf_w *w) {
    gw_tensor(w, "t", 0, 1, (int64_t[]){2}, t_f32, 8);
    gw_tensor(w, "t", 0, 1, (int64_t[]){2}, t_f32, 8);
}
static void fill_unknown_type(gguf_w *w) { gw_tensor(w, "blk.0.attn_q.weight", 5, 1, (int64_t[]){2}, t_f32, 8); }
static void fill_big_type(gguf_w *w) { gw_tensor(w, "w", 1000, 1, (int64_t[]){2}, t_f32, 8); }
static void fill_5_dims(gguf_w *w) {
    gw_tensor(w, "five", 0, 5, (int64_t[]){1, 1, 1, 1, 2}, t_f32, 8);
}
static void fill_partial_block(gguf_w *w) { gw_tensor(w, "q", 8, 2, (int64_t[]){48, 1}, t_f32, 24); }
static void fill_bad_alignment(gguf_w *w) { gw_kv_u32(w, "general.alignment", 24); }
static void fill_string_alignment(gguf_w *w) { gw_kv_str(w, "general.alignment", "32"); }
static void fill_bool_2(gguf_w *w) { gw_le(gw_key(w, "flag", GW_BOOL), 2, 1); }
static void fill_unknown_value_type(gguf_w *w) { gw_le(gw_key(w, "odd", 13), 0, 4); }
static void fill_unknown_elem_type(gguf_w *w) {
    gw_buf *b = gw_key(w, "arr", GW_ARR);
    gw_u32(b, 77);
    gw_u64(b, 0);
}
static void fill_deep(gguf_w *w) {
    gw_buf *b = gw_key(w, "deep", GW_ARR);
    for (int i = 0; i < 20; i++) {
        gw_u32(b, GW_ARR);
        gw_u64(b, 1);
    }
    gw_u32(b, GW_U8);
    gw_u64(b, 0);
}
static void fill_huge_array(gguf_w *w) {
    gw_buf *b = gw_key(w, "tokenizer.ggml.tokens", GW_ARR);
    gw_u32(b, GW_STR);
    gw_u64(b, 1ull << 60);
}
static void fill_huge_string(gguf_w *w) {
    gw_buf *b = gw_key(w, "general.name", GW_STR);
    gw_u64(b, UINT64_MAX);
}
static void fill_huge_dims(gguf_w *w) {
    gw_tensor(w, "huge", 0, 2, (int64_t[]){1ll << 30, 1ll << 30}, t_f32, 8);
}
static void fill_nul_key(gguf_w *w) {
    gw_strn(&w->kv, "a\0b", 3);
    gw_u32(&w->kv, GW_U8);
    gw_le(&w->kv, 1, 1);
    w->n_kv++;
}

static void test_bad(void) {
    size_t len;
    uint8_t *f = good_file(&len);

    /* magic */
    uint8_t *b = malloc(len);
    memcpy(b, f, len);
    memcpy(b, "PK\x03\x04", 4);
    EXPECT_PARSE_ERROR(b, len, "not a GGUF file", "504b0304");
    EXPECT_PARSE_ERROR(b, 0, "not a GGUF file", "nothing");
    EXPECT_PARSE_ERROR(b, 3, "not a GGUF file");

    /* version */
    memcpy(b, f, len);
    b[4] = 1;
    EXPECT_PARSE_ERROR(b, len, "GGUF version 1 is not supported");
    b[4] = 4;
    EXPECT_PARSE_ERROR(b, len, "GGUF version 4 is not supported", "only 2 and 3");
    b[4] = 0;
    b[7] = 3; /* 3 written big-endian */
    EXPECT_PARSE_ERROR(b, len, "version 50331648", "big-endian");
    memcpy(b, f, len);
    b[4] = 2; /* version 2 has the same layout */
    om_gguf *g = NULL;
    CHECKF(om_gguf_parse(b, len, "v2.gguf", &g) == 0 && om_gguf_version(g) == 2, "%s", om_last_error());
    om_gguf_free(g);

    /* truncation at every length: always an error (never a crash), naming what was cut */
    int ok = 1;
    for (size_t n = 0; n < len; n++) {
        om_gguf *t = NULL;
        if (om_gguf_parse(f, n, "cut.gguf", &t) == 0) {
            ok = 0;
            om_gguf_free(t);
            fprintf(stderr, "truncated to %zu bytes, parsed\n", n);
        } else if (!contains(om_last_error(), "cut.gguf") || strchr(om_last_error(), '\n')) {
            ok = 0;
            fprintf(stderr, "truncated to %zu bytes: %s\n", n, om_last_error());
        }
    }
    CHECK(ok);
    EXPECT_PARSE_ERROR(f, 10, "truncated", "the header");
    EXPECT_PARSE_ERROR(f, 40, "truncated", "metadata");
    EXPECT_PARSE_ERROR(f, len - 1, "truncated", "tensor 'iq2'", "runs past the end");

    /* counts the file cannot hold */
    memcpy(b, f, len);
    memset(b + 16, 0xff, 8); /* n_kv */
    EXPECT_PARSE_ERROR(b, len, "truncated", "metadata entries");
    memcpy(b, f, len);
    memset(b + 8, 0x7f, 8); /* n_tensors */
    EXPECT_PARSE_ERROR(b, len, "truncated", "tensors");
    free(b);
    free(f);

    /* one bad entry each */
    struct {
        fill_fn fill;
        const char *want[3];
    } cases[] = {
        {fill_dup_key, {"metadata 'k' appears twice"}},
        {fill_dup_tensor, {"tensor 't' appears twice"}},
        {fill_unknown_type, {"tensor 'blk.0.attn_q.weight' has unknown ggml type id 5"}},
        {fill_big_type, {"tensor 'w' has unknown ggml type id 1000"}},
        {fill_5_dims, {"tensor 'five' has 5 dimensions"}},
        {fill_partial_block, {"tensor 'q'", "48 elements", "Q8_0 blocks of 32"}},
        {fill_bad_alignment, {"'general.alignment' is 24", "power of two"}},
        {fill_string_alignment, {"'general.alignment' is string, expected uint32"}},
        {fill_bool_2, {"metadata 'flag'", "bool value 2"}},
        {fill_unknown_value_type, {"metadata 'odd'", "unknown value type 13"}},
        {fill_unknown_elem_type, {"metadata 'arr'", "unknown array element type 77"}},
        {fill_deep, {"metadata 'deep'", "nested more than"}},
        {fill_huge_array, {"truncated", "'tokenizer.ggml.tokens'", "array of 1152921504606846976 string"}},
        {fill_huge_string, {"truncated", "metadata 'general.name'"}},
        {fill_huge_dims, {"truncated", "tensor 'huge'", "runs past the end"}},
        {fill_nul_key, {"contains a NUL byte"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *c = file_with(cases[i].fill, &len);
        EXPECT_PARSE_ERROR(c, len, cases[i].want[0], cases[i].want[1] ? cases[i].want[1] : "",
                           cases[i].want[2] ? cases[i].want[2] : "");
        free(c);
    }

    /* a tensor whose offset is not a multiple of the alignment */
    gguf_w w;
    gw_init(&w);
    gw_tensor(&w, "a", 0, 1, (int64_t[]){2}, t_f32, 8);
    gw_tensor(&w, "b", 0, 1, (int64_t[]){2}, t_f32, 8);
    uint8_t *c = gw_finish(&w, &len);
    /* the offset of "b" is the last 8 bytes of its info; move it to 8 */
    size_t off_pos = 24 + w.kv.n + w.ti.n - 8;
    CHECK(c[off_pos] == 32);
    c[off_pos] = 8;
    EXPECT_PARSE_ERROR(c, len, "tensor 'b'", "offset 8 is not a multiple of the alignment 32");
    free(c);
    gw_free(&w);
}

/* om_gguf_open on real files: a good one, a missing one, an empty one. */
static void test_open(void) {
    const char *dir = om_test_tmpdir("gguf");
    char path[4200];
    size_t len;
    uint8_t *f = good_file(&len);
    snprintf(path, sizeof path, "%s/good.gguf", dir);
    CHECK(om_test_write_file(path, f, len) == 0);
    om_gguf *g = NULL;
    CHECKF(om_gguf_open(path, &g) == 0, "%s", om_last_error());
    if (g) {
        CHECK(om_gguf_file_size(g) == len && !strcmp(om_gguf_path(g), path));
        const om_gguf_tensor *t = om_gguf_find_tensor(g, "f32");
        CHECK(t && memcmp(t->data, t_f32, sizeof t_f32) == 0);
    }
    om_gguf_free(g);
    free(f);
    snprintf(path, sizeof path, "%s/missing.gguf", dir);
    CHECK(om_gguf_open(path, &g) != 0 && contains(om_last_error(), "missing.gguf: cannot open"));
    snprintf(path, sizeof path, "%s/empty.gguf", dir);
    CHECK(om_test_write_file(path, "", 0) == 0);
    CHECK(om_gguf_open(path, &g) != 0 && contains(om_last_error(), "empty.gguf: not a GGUF file"));
    CHECK(om_gguf_open(dir, &g) != 0 && contains(om_last_error(), "not a regular file"));
}

int main(void) {
    test_good(0);
    test_good(64);
    test_bad();
    test_open();
    return om_test_finish();
}
