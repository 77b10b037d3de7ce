/* Tests for the safetensors reader (src/core/safetensors.c) and the JSON helpers
 * (src/core/json_util.c): valid single-file, sharded and oddly named checkpoints written here
 * from C, then one bad input per check the reader makes, asserting that loading fails and
 * that the message names the file and the tensor or field at fault. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/json_util.h"
#include "core/weights.h"
#include "test_util.h"

static char tmp[4096];

static const char *path_in(const char *name) {
    static char buf[4][4096];
    static int next;
    char *p = buf[next++ % 4];
    if (snprintf(p, 4096, "%s/%s", tmp, name) >= 4096) abort();
    return p;
}

static const char *dir_in(const char *name) {
    const char *p = path_in(name);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", p, p);
    if (system(cmd) != 0) return NULL;
    return p;
}

/* Writes a safetensors file: the 8-byte length `declared` (the header's own length when it is
 * (uint64_t)-1), the header padded with spaces to a multiple of 8 as real writers do, then
 * ndata bytes of data. */
static int write_st_len(const char *path, uint64_t declared, const char *header, const void *data, size_t ndata) {
    size_t hlen = strlen(header);
    size_t padded = (hlen + 7) / 8 * 8;
    size_t total = 8 + padded + ndata;
    uint8_t *buf = calloc(1, total);
    if (!buf) return -1;
    uint64_t n = declared == (uint64_t)-1 ? padded : declared;
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(n >> (8 * i));
    memcpy(buf + 8, header, hlen);
    memset(buf + 8 + hlen, ' ', padded - hlen);
    if (ndata) memcpy(buf + 8 + padded, data, ndata);
    int rc = om_test_write_file(path, buf, total);
    free(buf);
    return rc;
}

static int write_st(const char *path, const char *header, const void *data, size_t ndata) {
    return write_st_len(path, (uint64_t)-1, header, data, ndata);
}

static int contains(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

/* Opening `path` must fail with a message holding each of the given substrings. */
#define EXPECT_FILE_ERROR(path, ...)                                                         \
    do {                                                                                     \
        om_weights *w_ = NULL;                                                               \
        om_clear_error();                                                                    \
        int rc_ = om_weights_open_file(path, &w_);                                           \
        CHECKF(rc_ != 0 && w_ == NULL, "%s opened", path);                                   \
        const char *subs_[] = {__VA_ARGS__};                                                 \
        for (size_t i_ = 0; i_ < sizeof subs_ / sizeof subs_[0]; i_++)                       \
            CHECKF(contains(om_last_error(), subs_[i_]), "'%s' not in: %s", subs_[i_], om_last_error()); \
        om_weights_free(w_);                                                                 \
    } while (0)

#define EXPECT_DIR_ERROR(dir, ...)                                                           \
    do {                                                                                     \
        om_weights *w_ = NULL;                                                               \
        om_clear_error();                                                                    \
        int rc_ = om_weights_open_dir(dir, &w_);                                             \
        CHECKF(rc_ != 0 && w_ == NULL, "%s opened", dir);                                    \
        const char *subs_[] = {__VA_ARGS__};                                                 \
        for (size_t i_ = 0; i_ < sizeof subs_ / sizeof subs_[0]; i_++)                       \
            CHECKF(contains(om_last_error(), subs_[i_]), "'%s' not in: %s", subs_[i_], om_last_error()); \
        om_weights_free(w_);                                                                 \
    } while (0)

/* A small valid checkpoint: F32 [2, 3], BF16 [4], F16 [2, 2], I64 [3], a scalar F32. */
static const char *valid_header =
    "{\"__metadata__\": {\"format\": \"pt\"},"
    " \"a\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 24]},"
    " \"b\": {\"dtype\": \"BF16\", \"shape\": [4], \"data_offsets\": [24, 32]},"
    " \"c\": {\"dtype\": \"F16\", \"shape\": [2, 2], \"data_offsets\": [32, 40]},"
    " \"ids\": {\"dtype\": \"I64\", \"shape\": [3], \"data_offsets\": [40, 64]},"
    " \"s\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [64, 68]}}";

static size_t valid_data(uint8_t *d) {
    float a[6] = {0, 1, 2, 3, 4, 5};
    memcpy(d, a, 24);
    uint16_t b[4];
    for (int i = 0; i < 4; i++) b[i] = om_f32_to_bf16(1.5f * (float)i);
    memcpy(d + 24, b, 8);
    uint16_t c[4];
    for (int i = 0; i < 4; i++) c[i] = om_f32_to_f16(-0.25f * (float)i);
    memcpy(d + 32, c, 8);
    int64_t ids[3] = {7, 8, 9};
    memcpy(d + 40, ids, 24);
    float s = 42.0f;
    memcpy(d + 64, &s, 4);
    return 68;
}

static void check_valid(om_weights *w) {
    CHECK(om_weights_count(w) == 5);
    om_tensor t;
    int64_t sa[2] = {2, 3};
    CHECKF(om_weights_get(w, "a", 2, sa, &t) == 0, "%s", om_last_error());
    CHECK(t.dtype == OM_F32 && t.ndim == 2 && t.shape[0] == 2 && t.shape[1] == 3);
    CHECK(t.stride[0] == 12 && t.stride[1] == 4);
    CHECK(((const float *)t.data)[5] == 5.0f);
    int64_t sb[1] = {4};
    CHECK(om_weights_get(w, "b", 1, sb, &t) == 0 && t.dtype == OM_BF16);
    CHECK(om_bf16_to_f32(((const uint16_t *)t.data)[3]) == 4.5f);
    int64_t sc[2] = {2, 2};
    CHECK(om_weights_get(w, "c", 2, sc, &t) == 0 && t.dtype == OM_F16);
    CHECK(om_f16_to_f32(((const uint16_t *)t.data)[2]) == -0.5f);
    CHECK(om_weights_get(w, "s", 0, NULL, &t) == 0 && t.ndim == 0 && *(const float *)t.data == 42.0f);

    const om_weight_info *ids = om_weights_find(w, "ids");
    CHECK(ids && !ids->supported && strcmp(ids->dtype_name, "I64") == 0 && ids->nbytes == 24);
    CHECK(ids && ids->ndim == 1 && ids->shape[0] == 3 && ((const int64_t *)ids->data)[2] == 9);
    CHECK(om_weights_find(w, "__metadata__") == NULL);
    CHECK(om_weights_find(w, "nope") == NULL);

    int seen = 0;
    for (size_t i = 0; i < om_weights_count(w); i++) seen += om_weights_at(w, i) != NULL;
    CHECK(seen == 5 && om_weights_at(w, 5) == NULL);

    /* Unsupported dtype: names the tensor and the dtype. */
    int64_t sids[1] = {3};
    CHECK(om_weights_get(w, "ids", 1, sids, &t) != 0);
    CHECKF(contains(om_last_error(), "'ids'") && contains(om_last_error(), "I64"), "%s", om_last_error());
    CHECKF(contains(om_last_error(), "model.safetensors"), "%s", om_last_error());
    /* Wrong shape: names the tensor, both shapes and the file. */
    int64_t wrong[2] = {3, 2};
    CHECK(om_weights_get(w, "a", 2, wrong, &t) != 0);
    CHECKF(contains(om_last_error(), "'a'") && contains(om_last_error(), "[2, 3]") &&
               contains(om_last_error(), "[3, 2]") && contains(om_last_error(), "model.safetensors"),
           "%s", om_last_error());
    CHECK(om_weights_get(w, "a", 1, sa, &t) != 0 && contains(om_last_error(), "[2]"));
    /* Optional: absent is fine, present-but-wrong is still an error. */
    int found = -1;
    CHECK(om_weights_get_optional(w, "absent.bias", 1, sb, &t, &found) == 0 && found == 0);
    CHECK(om_weights_get_optional(w, "b", 1, sb, &t, &found) == 0 && found == 1 && t.dtype == OM_BF16);
    CHECK(om_weights_get_optional(w, "b", 1, sids, &t, &found) != 0 && found == 1);
}

static void test_single_file(void) {
    uint8_t data[68];
    size_t n = valid_data(data);
    const char *dir = dir_in("single");
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(write_st(path, valid_header, data, n) == 0);

    om_weights *w = NULL;
    CHECKF(om_weights_open_dir(dir, &w) == 0, "%s", om_last_error());
    if (w) {
        check_valid(w);
        const om_weight_info *a = om_weights_find(w, "a");
        CHECK(a && strcmp(a->file, path) == 0);
        size_t len = 0;
        char *raw = om_test_read_file(path, &len);
        CHECK(raw && om_weights_file_bytes(w) == len);
        free(raw);
        /* Missing tensor names the model folder and the tensor. */
        om_tensor t;
        int64_t s[2] = {4, 4};
        CHECK(om_weights_get(w, "model.layers.0.mlp.gate_proj.weight", 2, s, &t) != 0);
        CHECKF(contains(om_last_error(), "model folder") && contains(om_last_error(), dir) &&
                   contains(om_last_error(), "missing tensor 'model.layers.0.mlp.gate_proj.weight'"),
               "%s", om_last_error());
        om_weights_free(w);
    }

    w = NULL;
    CHECKF(om_weights_open_file(path, &w) == 0, "%s", om_last_error());
    if (w) {
        check_valid(w);
        om_weights_free(w);
    }

    /* The same bytes through the in-memory parser the fuzz target uses. */
    size_t len = 0;
    char *raw = om_test_read_file(path, &len);
    w = NULL;
    CHECK(raw && om_safetensors_parse((const uint8_t *)raw, len, "mem.safetensors", &w) == 0);
    if (w) {
        CHECK(om_weights_count(w) == 5 && strcmp(om_weights_find(w, "a")->file, "mem.safetensors") == 0);
        om_weights_free(w);
    }
    CHECK(om_safetensors_parse((const uint8_t *)raw, 5, "mem.safetensors", &w) != 0 && w == NULL);
    CHECK(contains(om_last_error(), "mem.safetensors"));
    free(raw);
}

/* Model folders that hold something other than model.safetensors. */
static void test_folder_layouts(void) {
    uint8_t data[68];
    size_t n = valid_data(data);
    char path[4200];

    const char *dir = dir_in("other_name");
    snprintf(path, sizeof path, "%s/consolidated.safetensors", dir);
    CHECK(write_st(path, valid_header, data, n) == 0);
    om_weights *w = NULL;
    CHECKF(om_weights_open_dir(dir, &w) == 0, "%s", om_last_error());
    CHECK(w && om_weights_count(w) == 5);
    om_weights_free(w);

    /* Two unrelated files and no index: ambiguous. */
    snprintf(path, sizeof path, "%s/extra.safetensors", dir);
    CHECK(write_st(path, valid_header, data, n) == 0);
    EXPECT_DIR_ERROR(dir, "model folder", dir, ".safetensors files");

    dir = dir_in("empty");
    EXPECT_DIR_ERROR(dir, "model folder", dir, "no model.safetensors");
    EXPECT_DIR_ERROR(path_in("does_not_exist"), "model folder", "does_not_exist");
    snprintf(path, sizeof path, "%s/model.safetensors", dir_in("not_a_dir"));
    CHECK(write_st(path, valid_header, data, n) == 0);
    EXPECT_DIR_ERROR(path, "not a directory");
}

/* Two shards and an index, including a tensor stored across the shard boundary of names. */
static void write_sharded(const char *dir, int with_second_shard) {
    char path[4200];
    float d1[4] = {1, 2, 3, 4};
    snprintf(path, sizeof path, "%s/model-00001-of-00002.safetensors", dir);
    CHECK(write_st(path,
                   "{\"model.embed_tokens.weight\": {\"dtype\": \"F32\", \"shape\": [2, 2], \"data_offsets\": [0, 16]}}",
                   d1, sizeof d1) == 0);
    if (with_second_shard) {
        uint16_t d2[6];
        for (int i = 0; i < 6; i++) d2[i] = om_f32_to_bf16((float)(10 + i));
        snprintf(path, sizeof path, "%s/model-00002-of-00002.safetensors", dir);
        CHECK(write_st(path,
                       "{\"model.norm.weight\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [0, 4]},"
                       " \"lm_head.weight\": {\"dtype\": \"BF16\", \"shape\": [2, 2], \"data_offsets\": [4, 12]}}",
                       d2, sizeof d2) == 0);
    }
}

static const char *index_json =
    "{\"metadata\": {\"total_size\": 28}, \"weight_map\": {"
    "\"model.embed_tokens.weight\": \"model-00001-of-00002.safetensors\","
    "\"model.norm.weight\": \"model-00002-of-00002.safetensors\","
    "\"lm_head.weight\": \"model-00002-of-00002.safetensors\"}}";

static int write_text(const char *dir, const char *name, const char *text) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return om_test_write_file(path, text, strlen(text));
}

static void test_sharded(void) {
    const char *dir = dir_in("sharded");
    write_sharded(dir, 1);
    CHECK(write_text(dir, "model.safetensors.index.json", index_json) == 0);
    om_weights *w = NULL;
    CHECKF(om_weights_open_dir(dir, &w) == 0, "%s", om_last_error());
    if (w) {
        CHECK(om_weights_count(w) == 3);
        om_tensor t;
        int64_t s22[2] = {2, 2}, s2[1] = {2};
        CHECK(om_weights_get(w, "model.embed_tokens.weight", 2, s22, &t) == 0 && ((const float *)t.data)[3] == 4.0f);
        CHECK(om_weights_get(w, "lm_head.weight", 2, s22, &t) == 0 &&
              om_bf16_to_f32(((const uint16_t *)t.data)[0]) == 12.0f);
        CHECK(om_weights_get(w, "model.norm.weight", 1, s2, &t) == 0);
        const om_weight_info *i = om_weights_find(w, "model.norm.weight");
        CHECK(i && contains(i->file, "model-00002-of-00002.safetensors"));
        i = om_weights_find(w, "model.embed_tokens.weight");
        CHECK(i && contains(i->file, "model-00001-of-00002.safetensors"));
        /* The wrong-shape error names the shard that holds the tensor. */
        CHECK(om_weights_get(w, "model.norm.weight", 2, s22, &t) != 0);
        CHECKF(contains(om_last_error(), "model-00002-of-00002.safetensors") &&
                   contains(om_last_error(), "'model.norm.weight'"),
               "%s", om_last_error());
        om_weights_free(w);
    }

    /* A diffusers-style index name is found when model.safetensors.index.json is absent. */
    dir = dir_in("sharded_other_index");
    write_sharded(dir, 1);
    CHECK(write_text(dir, "diffusion_pytorch_model.safetensors.index.json", index_json) == 0);
    w = NULL;
    CHECKF(om_weights_open_dir(dir, &w) == 0, "%s", om_last_error());
    CHECK(w && om_weights_count(w) == 3);
    om_weights_free(w);

    /* Index errors. */
    dir = dir_in("index_not_json");
    write_sharded(dir, 1);
    CHECK(write_text(dir, "model.safetensors.index.json", "{\"weight_map\": {\"a\": ") == 0);
    EXPECT_DIR_ERROR(dir, "model.safetensors.index.json", "invalid JSON");

    dir = dir_in("index_no_map");
    write_sharded(dir, 1);
    CHECK(write_text(dir, "model.safetensors.index.json", "{\"metadata\": {}}") == 0);
    EXPECT_DIR_ERROR(dir, "model.safetensors.index.json", "weight_map");

    dir = dir_in("index_bad_value");
    write_sharded(dir, 1);
    CHECK(write_text(dir, "model.safetensors.index.json", "{\"weight_map\": {\"x\": 3}}") == 0);
    EXPECT_DIR_ERROR(dir, "model.safetensors.index.json", "'x'");

    dir = dir_in("index_escape");
    write_sharded(dir, 1);
    CHECK(write_text(dir, "model.safetensors.index.json", "{\"weight_map\": {\"x\": \"../other/model.safetensors\"}}") ==
          0);
    EXPECT_DIR_ERROR(dir, "model.safetensors.index.json", "'x'", "../other");

    dir = dir_in("shard_absent");
    write_sharded(dir, 0);
    CHECK(write_text(dir, "model.safetensors.index.json", index_json) == 0);
    EXPECT_DIR_ERROR(dir, "model-00002-of-00002.safetensors", "missing");

    dir = dir_in("tensor_not_in_shard");
    write_sharded(dir, 1);
    CHECK(write_text(dir, "model.safetensors.index.json",
                     "{\"weight_map\": {\"model.embed_tokens.weight\": \"model-00001-of-00002.safetensors\","
                     "\"model.layers.0.self_attn.q_proj.weight\": \"model-00002-of-00002.safetensors\"}}") == 0);
    EXPECT_DIR_ERROR(dir, "model-00002-of-00002.safetensors", "'model.layers.0.self_attn.q_proj.weight'");

    dir = dir_in("tensor_in_other_shard");
    write_sharded(dir, 1);
    CHECK(write_text(dir, "model.safetensors.index.json",
                     "{\"weight_map\": {\"model.norm.weight\": \"model-00001-of-00002.safetensors\","
                     "\"lm_head.weight\": \"model-00002-of-00002.safetensors\"}}") == 0);
    EXPECT_DIR_ERROR(dir, "'model.norm.weight'", "model-00001-of-00002.safetensors",
                     "model-00002-of-00002.safetensors");

    /* The same tensor in two shards. */
    dir = dir_in("tensor_twice");
    write_sharded(dir, 1);
    char path[4200];
    float d1[2] = {1, 2};
    snprintf(path, sizeof path, "%s/model-00002-of-00002.safetensors", dir);
    CHECK(write_st(path, "{\"model.embed_tokens.weight\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
                   d1, sizeof d1) == 0);
    CHECK(write_text(dir, "model.safetensors.index.json",
                     "{\"weight_map\": {\"model.embed_tokens.weight\": \"model-00001-of-00002.safetensors\","
                     "\"model.other\": \"model-00002-of-00002.safetensors\"}}") == 0);
    EXPECT_DIR_ERROR(dir, "'model.embed_tokens.weight'", "model-00001-of-00002.safetensors",
                     "model-00002-of-00002.safetensors");
}

/* One file per defect; each must fail naming the file and what is wrong. */
static void test_bad_files(void) {
    uint8_t data[64] = {0};
    const char *p;

    EXPECT_FILE_ERROR(path_in("nonexistent.safetensors"), "nonexistent.safetensors", "cannot open");

    p = path_in("short.safetensors");
    CHECK(om_test_write_file(p, "\x10\0\0", 3) == 0);
    EXPECT_FILE_ERROR(p, "short.safetensors", "too short");
    p = path_in("empty.safetensors");
    CHECK(om_test_write_file(p, "", 0) == 0);
    EXPECT_FILE_ERROR(p, "empty.safetensors", "too short");

    p = path_in("len_past_end.safetensors");
    CHECK(write_st_len(p, 1000, "{}", NULL, 0) == 0);
    EXPECT_FILE_ERROR(p, "len_past_end.safetensors", "header length 1000", "past the end");

    p = path_in("len_absurd.safetensors");
    CHECK(write_st_len(p, (uint64_t)1 << 40, "{}", NULL, 0) == 0);
    EXPECT_FILE_ERROR(p, "len_absurd.safetensors", "100 MB");
    p = path_in("len_huge.safetensors");
    CHECK(write_st_len(p, UINT64_MAX - 3, "{}", NULL, 0) == 0);
    EXPECT_FILE_ERROR(p, "len_huge.safetensors", "header length");

    p = path_in("not_json.safetensors");
    CHECK(write_st(p, "{\"a\": {\"dtype\": \"F32\",, }}", data, 4) == 0);
    EXPECT_FILE_ERROR(p, "not_json.safetensors", "header", "invalid JSON at byte", "line 1");

    p = path_in("trailing.safetensors");
    CHECK(write_st(p, "{} x", data, 4) == 0);
    EXPECT_FILE_ERROR(p, "trailing.safetensors", "invalid JSON", "after the value");

    p = path_in("zero_len.safetensors");
    CHECK(write_st_len(p, 0, "", data, 8) == 0);
    EXPECT_FILE_ERROR(p, "zero_len.safetensors", "invalid JSON");

    p = path_in("array.safetensors");
    CHECK(write_st(p, "[1, 2, 3]", data, 4) == 0);
    EXPECT_FILE_ERROR(p, "array.safetensors", "not a JSON object");

    p = path_in("entry_not_object.safetensors");
    CHECK(write_st(p, "{\"w\": 5}", data, 4) == 0);
    EXPECT_FILE_ERROR(p, "entry_not_object.safetensors", "'w'", "not a JSON object");

    p = path_in("bad_dtype.safetensors");
    CHECK(write_st(p, "{\"w\": {\"dtype\": \"F33\", \"shape\": [1], \"data_offsets\": [0, 4]}}", data, 4) == 0);
    EXPECT_FILE_ERROR(p, "bad_dtype.safetensors", "'w'", "unknown dtype 'F33'");
    p = path_in("dtype_number.safetensors");
    CHECK(write_st(p, "{\"w\": {\"dtype\": 32, \"shape\": [1], \"data_offsets\": [0, 4]}}", data, 4) == 0);
    EXPECT_FILE_ERROR(p, "dtype_number.safetensors", "'w'", "dtype");
    p = path_in("no_dtype.safetensors");
    CHECK(write_st(p, "{\"w\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", data, 4) == 0);
    EXPECT_FILE_ERROR(p, "no_dtype.safetensors", "'w'", "missing field 'dtype'");

    p = path_in("shape_not_array.safetensors");
    CHECK(write_st(p, "{\"w\": {\"dtype\": \"F32\", \"shape\": 1, \"data_offsets\": [0, 4]}}", data, 4) == 0);
    EXPECT_FILE_ERROR(p, "shape_not_array.safetensors", "'w'", "shape", "array");
    p = path_in("no_shape.safetensors");
    CHECK(write_st(p, "{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", data, 4) == 0);
    EXPECT_FILE_ERROR(p, "no_shape.safetensors", "'w'", "missing field 'shape'");
    p = path_in("negative_dim.safetensors");
    CHECK(write_st(p, "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, -1], \"data_offsets\": [0, 4]}}", data, 4) == 0);
    EXPECT_FILE_ERROR(p, "negative_dim.safetensors", "'w'", "shape[1]", "non-negative");
    p = path_in("fraction_dim.safetensors");
    CHECK(write_st(p, "{\"w\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", data, 4) == 0);
    EXPECT_FILE_ERROR(p, "fraction_dim.safetensors", "'w'", "shape[0]");
    p = path_in("string_dim.safetensors");
    CHECK(write_st(p, "{\"w\": {\"dtype\": \"F32\", \"shape\": [\"1\"], \"data_offsets\": [0, 4]}}", data, 4) == 0);
    EXPECT_FILE_ERROR(p, "string_dim.safetensors", "'w'", "shape[0]");
    p = path_in("five_dims.safetensors");
    CHECK(write_st(p, "{\"w\": {\"dtype\": \"F32\", \"shape\": [1, 1, 1, 1, 1], \"data_offsets\": [0, 4]}}", data,
                   4) == 0);
    EXPECT_FILE_ERROR(p, "five_dims.safetensors", "'w'", "5 dimensions");
    p = path_in("overflow.safetensors");
    CHECK(write_st(p,
                   "{\"w\": {\"dtype\": \"F32\", \"shape\": [4503599627370496, 4503599627370496, 4503599627370496],"
                   " \"data_offsets\": [0, 4]}}",
                   data, 4) == 0);
    EXPECT_FILE_ERROR(p, "overflow.safetensors", "'w'", "too large");
    p = path_in("dim_too_big.safetensors");
    CHECK(write_st(p, "{\"w\": {\"dtype\": \"F32\", \"shape\": [1e300], \"data_offsets\": [0, 4]}}", data, 4) == 0);
    EXPECT_FILE_ERROR(p, "dim_too_big.safetensors", "'w'", "shape[0]");

    p = path_in("offsets_range.safetensors");
    CHECK(write_st(p, "{\"model.norm.weight\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [10, 900]}}", data,
                   16) == 0);
    EXPECT_FILE_ERROR(p, "offsets_range.safetensors", "'model.norm.weight'", "[10, 900] out of range",
                      "data section is 16 bytes");
    p = path_in("offsets_reversed.safetensors");
    CHECK(write_st(p, "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}", data, 16) == 0);
    EXPECT_FILE_ERROR(p, "offsets_reversed.safetensors", "'w'", "[8, 4]", "begin after end");
    p = path_in("offsets_one.safetensors");
    CHECK(write_st(p, "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4]}}", data, 16) == 0);
    EXPECT_FILE_ERROR(p, "offsets_one.safetensors", "'w'", "data_offsets");
    p = path_in("offsets_negative.safetensors");
    CHECK(write_st(p, "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", data, 16) == 0);
    EXPECT_FILE_ERROR(p, "offsets_negative.safetensors", "'w'", "data_offsets");
    p = path_in("offsets_missing.safetensors");
    CHECK(write_st(p, "{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", data, 16) == 0);
    EXPECT_FILE_ERROR(p, "offsets_missing.safetensors", "'w'", "missing field 'data_offsets'");
    p = path_in("size_mismatch.safetensors");
    CHECK(write_st(p, "{\"w\": {\"dtype\": \"BF16\", \"shape\": [2, 3], \"data_offsets\": [0, 16]}}", data, 16) == 0);
    EXPECT_FILE_ERROR(p, "size_mismatch.safetensors", "'w'", "[2, 3]", "BF16", "[0, 16]");
    p = path_in("duplicate.safetensors");
    CHECK(write_st(p,
                   "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
                   " \"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
                   data, 16) == 0);
    EXPECT_FILE_ERROR(p, "duplicate.safetensors", "'w'", "twice");

    /* A valid file cut short: the last tensor's offsets now run past the data. */
    uint8_t vdata[68];
    size_t n = valid_data(vdata);
    p = path_in("truncated.safetensors");
    CHECK(write_st(p, valid_header, vdata, n - 10) == 0);
    EXPECT_FILE_ERROR(p, "truncated.safetensors", "out of range", "data section is");

    /* Sub-byte dtypes parse when their bits fill whole bytes, and not otherwise. */
    p = path_in("f4.safetensors");
    CHECK(write_st(p, "{\"w\": {\"dtype\": \"F4\", \"shape\": [2, 4], \"data_offsets\": [0, 4]}}", data, 4) == 0);
    om_weights *w = NULL;
    CHECKF(om_weights_open_file(p, &w) == 0, "%s", om_last_error());
    CHECK(w && om_weights_count(w) == 1 && !om_weights_at(w, 0)->supported);
    om_weights_free(w);
    p = path_in("f4_odd.safetensors");
    CHECK(write_st(p, "{\"w\": {\"dtype\": \"F4\", \"shape\": [3], \"data_offsets\": [0, 2]}}", data, 2) == 0);
    EXPECT_FILE_ERROR(p, "f4_odd.safetensors", "'w'", "F4");

    /* A header that is not padded leaves f32 data misaligned: it parses, but cannot be used in
     * place, and says so. */
    p = path_in("unaligned.safetensors");
    {
        const char *h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        size_t hl = strlen(h);
        uint8_t buf[256] = {0};
        buf[0] = (uint8_t)hl;
        memcpy(buf + 8, h, hl);
        CHECK(hl % 4 != 0 && om_test_write_file(p, buf, 8 + hl + 4) == 0);
        w = NULL;
        CHECKF(om_weights_open_file(p, &w) == 0, "%s", om_last_error());
        om_tensor t;
        int64_t s1[1] = {1};
        CHECK(w && om_weights_get(w, "w", 1, s1, &t) != 0 && contains(om_last_error(), "aligned"));
        om_weights_free(w);
    }
}

/* Lookup by name stays right with thousands of tensors (the hash table grows many times). */
static void test_many_tensors(void) {
    enum { N = 5000 };
    size_t cap = (size_t)N * 96 + 16;
    char *h = malloc(cap);
    float *d = malloc(N * sizeof *d);
    size_t used = 0;
    used += (size_t)snprintf(h + used, cap - used, "{");
    for (int i = 0; i < N; i++) {
        used += (size_t)snprintf(h + used, cap - used,
                                 "%s\"model.layers.%d.w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [%d, %d]}",
                                 i ? "," : "", i, 4 * i, 4 * i + 4);
        d[i] = (float)i;
    }
    snprintf(h + used, cap - used, "}");
    const char *p = path_in("many.safetensors");
    CHECK(write_st(p, h, d, N * sizeof *d) == 0);
    om_weights *w = NULL;
    CHECKF(om_weights_open_file(p, &w) == 0, "%s", om_last_error());
    if (w) {
        CHECK(om_weights_count(w) == N);
        int bad = 0;
        for (int i = 0; i < N; i++) {
            char name[64];
            snprintf(name, sizeof name, "model.layers.%d.w", i);
            const om_weight_info *info = om_weights_find(w, name);
            if (!info || *(const float *)info->data != (float)i) bad++;
        }
        CHECK(bad == 0);
        CHECK(om_weights_find(w, "model.layers.5000.w") == NULL);
        om_weights_free(w);
    }
    free(h);
    free(d);
}

static void test_json_util(void) {
    const char *p = path_in("config.json");
    const char *cfg = "{\"hidden_size\": 64, \"rope_theta\": 10000, \"rms_norm_eps\": 1e-6, \"tie\": true,"
                      " \"act\": \"silu\", \"none\": null, \"half\": 2.5, \"name\": 7, \"eos\": [1, 2, 3],"
                      " \"eos1\": 5, \"eos_bad\": [1, \"x\"], \"big\": 1e300, \"neg\": -3, \"sub\": {\"x\": 1}}";
    CHECK(om_test_write_file(p, cfg, strlen(cfg)) == 0);
    cJSON *root = NULL;
    CHECKF(om_json_read_file(p, &root) == 0, "%s", om_last_error());

    int64_t i = 0;
    double f = 0;
    CHECK(om_json_int(root, "config.json", "hidden_size", &i) == 0 && i == 64);
    CHECK(om_json_int(root, "config.json", "neg", &i) == 0 && i == -3);
    CHECK(om_json_int(root, "config.json", "missing_size", &i) != 0);
    CHECKF(strcmp(om_last_error(), "config.json: missing field 'missing_size'") == 0, "%s", om_last_error());
    CHECK(om_json_int(root, "config.json", "none", &i) != 0 && contains(om_last_error(), "missing field 'none'"));
    CHECK(om_json_int(root, "config.json", "half", &i) != 0);
    CHECKF(strcmp(om_last_error(), "config.json: field 'half' must be an integer") == 0, "%s", om_last_error());
    CHECK(om_json_int(root, "config.json", "act", &i) != 0 && contains(om_last_error(), "'act' must be an integer"));
    CHECK(om_json_int(root, "config.json", "big", &i) != 0);
    CHECK(om_json_int_or(root, "config.json", "absent", 7, &i) == 0 && i == 7);
    CHECK(om_json_int_or(root, "config.json", "none", 8, &i) == 0 && i == 8);
    CHECK(om_json_int_or(root, "config.json", "hidden_size", 8, &i) == 0 && i == 64);
    CHECK(om_json_int_or(root, "config.json", "act", 8, &i) != 0);
    CHECK(om_json_int_or(NULL, "config.json", "x", 9, &i) == 0 && i == 9);

    CHECK(om_json_float(root, "config.json", "rope_theta", &f) == 0 && f == 10000.0);
    CHECK(om_json_float(root, "config.json", "rms_norm_eps", &f) == 0 && f == 1e-6);
    CHECK(om_json_float(root, "config.json", "absent", &f) != 0 && contains(om_last_error(), "missing field 'absent'"));
    CHECK(om_json_float(root, "config.json", "act", &f) != 0 && contains(om_last_error(), "'act' must be a number"));
    CHECK(om_json_float_or(root, "config.json", "absent", 0.5, &f) == 0 && f == 0.5);
    CHECK(om_json_float_or(root, "config.json", "none", 0.25, &f) == 0 && f == 0.25);
    CHECK(om_json_float_or(root, "config.json", "tie", 0.25, &f) != 0);

    int b = -1;
    CHECK(om_json_bool_or(root, "config.json", "tie", 0, &b) == 0 && b == 1);
    CHECK(om_json_bool_or(root, "config.json", "absent", 0, &b) == 0 && b == 0);
    CHECK(om_json_bool_or(root, "config.json", "none", 1, &b) == 0 && b == 1);
    CHECK(om_json_bool_or(root, "config.json", "hidden_size", 0, &b) != 0 &&
          contains(om_last_error(), "'hidden_size' must be true or false"));

    const char *s = NULL;
    CHECK(om_json_string(root, "config.json", "act", &s) == 0 && strcmp(s, "silu") == 0);
    CHECK(om_json_string(root, "config.json", "absent", &s) != 0);
    CHECK(strcmp(om_json_string_or(root, "config.json", "act", "gelu"), "silu") == 0);
    CHECK(strcmp(om_json_string_or(root, "config.json", "absent", "gelu"), "gelu") == 0);
    CHECK(strcmp(om_json_string_or(root, "config.json", "none", "gelu"), "gelu") == 0);
    CHECK(om_json_string_or(root, "config.json", "name", "gelu") == NULL &&
          contains(om_last_error(), "config.json: field 'name' must be a string"));

    int64_t ids[4];
    int n = -1;
    CHECK(om_json_int_list(root, "config.json", "eos", ids, 4, &n) == 0 && n == 3 && ids[2] == 3);
    CHECK(om_json_int_list(root, "config.json", "eos1", ids, 4, &n) == 0 && n == 1 && ids[0] == 5);
    CHECK(om_json_int_list(root, "config.json", "absent", ids, 4, &n) == 0 && n == 0);
    CHECK(om_json_int_list(root, "config.json", "none", ids, 4, &n) == 0 && n == 0);
    CHECK(om_json_int_list(root, "config.json", "eos", ids, 2, &n) != 0 && contains(om_last_error(), "more than 2"));
    CHECK(om_json_int_list(root, "config.json", "eos_bad", ids, 4, &n) != 0 &&
          contains(om_last_error(), "'eos_bad': entry 1"));
    CHECK(om_json_int_list(root, "config.json", "act", ids, 4, &n) != 0);

    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(root, "sub");
    CHECK(om_json_int(sub, "config.json: sub", "y", &i) != 0 &&
          strcmp(om_last_error(), "config.json: sub: missing field 'y'") == 0);
    cJSON_Delete(root);

    /* Parse errors name the file and the position. */
    p = path_in("broken.json");
    CHECK(om_test_write_file(p, "{\n  \"a\": 1,\n  \"b\": ]\n}", 22) == 0);
    root = NULL;
    CHECK(om_json_read_file(p, &root) != 0 && root == NULL);
    CHECKF(contains(om_last_error(), "broken.json") && contains(om_last_error(), "invalid JSON at byte 19") &&
               contains(om_last_error(), "line 3, column 8"),
           "%s", om_last_error());
    p = path_in("two_values.json");
    CHECK(om_test_write_file(p, "{} {}", 5) == 0);
    CHECK(om_json_read_file(p, &root) != 0 && contains(om_last_error(), "two_values.json"));
    p = path_in("empty.json");
    CHECK(om_test_write_file(p, "", 0) == 0);
    CHECK(om_json_read_file(p, &root) != 0 && contains(om_last_error(), "empty.json"));
    CHECK(om_json_read_file(path_in("no_such.json"), &root) != 0 && contains(om_last_error(), "no_such.json") &&
          contains(om_last_error(), "cannot open"));
    p = path_in("ws.json");
    CHECK(om_test_write_file(p, "\n [1, 2] \n\n", 11) == 0);
    CHECK(om_json_read_file(p, &root) == 0 && cJSON_GetArraySize(root) == 2);
    cJSON_Delete(root);
}

int main(void) {
    const char *t = om_test_tmpdir("safetensors");
    if (!t) {
        fprintf(stderr, "cannot make the tmp dir\n");
        return 1;
    }
    snprintf(tmp, sizeof tmp, "%s", t);
    test_single_file();
    test_folder_layouts();
    test_sharded();
    test_bad_files();
    test_many_tensors();
    test_json_util();
    return om_test_finish();
}
