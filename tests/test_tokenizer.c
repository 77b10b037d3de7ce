/* Tokenizer test: ids and decoded text identical to Hugging Face `tokenizers` on the corpus for
 * every tokenizer under tests/data/tokenizers (references from tools/make_tokenizer_reference.py),
 * the streaming detokenizer against decode, and the error cases (invalid UTF-8, unsupported
 * types, bad JSON). */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/tokenizer.h"
#include "core/tokenizer_internal.h"
#include "test_util.h"

static int ids_equal(const int32_t *ids, size_t n, const cJSON *ref) {
    if (!cJSON_IsArray(ref) || (size_t)cJSON_GetArraySize(ref) != n) return 0;
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, ref) {
        if ((int32_t)it->valuedouble != ids[i++]) return 0;
    }
    return 1;
}

static void print_ids(const char *label, const int32_t *ids, size_t n, const cJSON *ref) {
    fprintf(stderr, "  %s ours:", label);
    for (size_t i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n  %s HF:  ", label);
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, ref) {
        if (i++ < 40) fprintf(stderr, " %d", (int)it->valuedouble);
    }
    fprintf(stderr, "\n");
}

static int32_t *json_ids(const cJSON *arr, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(arr);
    int32_t *ids = malloc((*n + 1) * sizeof *ids);
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) { ids[i++] = (int32_t)it->valuedouble; }
    return ids;
}

/* Streams ids through a detokenizer: every piece must be valid UTF-8 and the pieces must add up
 * to the full decode. */
static int stream_matches(const om_tokenizer *tok, const int32_t *ids, size_t n, int skip, const char *want) {
    om_detok *d;
    if (om_detok_new(tok, skip, &d)) return 0;
    tk_buf all = {0};
    int ok = 1;
    const char *piece;
    size_t len;
    for (size_t i = 0; i <= n; i++) {
        int rc = i < n ? om_detok_push(d, ids[i], &piece, &len) : om_detok_finish(d, &piece, &len);
        if (rc) {
            ok = 0;
            break;
        }
        if (tk_utf8_valid_prefix(piece, len) != len) {
            fprintf(stderr, "  streaming piece %zu is not valid UTF-8\n", i);
            ok = 0;
        }
        tk_buf_append(&all, piece, len);
    }
    tk_buf_append(&all, "", 0);
    if (ok && strcmp(all.data, want) != 0) {
        fprintf(stderr, "  streamed '%s' != decoded '%s'\n", all.data, want);
        ok = 0;
    }
    tk_buf_free(&all);
    om_detok_free(d);
    return ok;
}

static int decode_is(const om_tokenizer *tok, const int32_t *ids, size_t n, int skip, const cJSON *want) {
    char *out;
    size_t len;
    if (om_tokenizer_decode(tok, ids, n, skip, &out, &len)) return 0;
    int ok = cJSON_IsString(want) && strlen(want->valuestring) == len && !memcmp(out, want->valuestring, len);
    if (!ok) fprintf(stderr, "  decode(skip=%d) ours '%s' HF '%s'\n", skip, out, cJSON_IsString(want) ? want->valuestring : "?");
    free(out);
    return ok;
}

static void check_tokenizer(const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizers/%s", OM_TEST_DATA_DIR, name);
    om_tokenizer *tok;
    int rc = om_tokenizer_load(path, &tok);
    CHECKF(rc == 0, "loading %s: %s", name, om_last_error());
    if (rc) return;
    snprintf(path, sizeof path, "%s/tokenizers/%s_reference.json", OM_TEST_DATA_DIR, name);
    char *text = om_test_read_file(path, NULL);
    CHECKF(text != NULL, "reading %s", path);
    cJSON *ref = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECKF(ref != NULL, "parsing %s", path);
    if (!ref) {
        om_tokenizer_free(tok);
        return;
    }
    int n_cases = 0, n_same = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(ref, "cases")) {
        const char *s = cJSON_GetObjectItem(c, "text")->valuestring;
        size_t slen = strlen(s);
        int same = 1;
        int32_t *ids;
        size_t n;
        static const char *keys[3] = {"ids", "ids_special", "ids_split_special"};
        for (int v = 0; v < 3; v++) {
            om_encode_options o = {v == 1, v == 2};
            if (om_tokenizer_encode_ex(tok, s, slen, &o, &ids, &n)) {
                fprintf(stderr, "%s: encode failed on '%s': %s\n", name, s, om_last_error());
                same = 0;
                continue;
            }
            if (!ids_equal(ids, n, cJSON_GetObjectItem(c, keys[v]))) {
                fprintf(stderr, "%s: %s differ on '%s'\n", name, keys[v], s);
                print_ids(keys[v], ids, n, cJSON_GetObjectItem(c, keys[v]));
                same = 0;
            }
            free(ids);
        }
        ids = json_ids(cJSON_GetObjectItem(c, "ids_special"), &n);
        for (int skip = 0; skip < 2; skip++) {
            const cJSON *want = cJSON_GetObjectItem(c, skip ? "decoded_skip" : "decoded");
            if (cJSON_IsNull(want)) continue; /* HF panicked there (see the reference tool) */
            if (!decode_is(tok, ids, n, skip, want)) {
                fprintf(stderr, "%s: decode differs on '%s'\n", name, s);
                same = 0;
            }
            if (!stream_matches(tok, ids, n, skip, want->valuestring)) {
                fprintf(stderr, "%s: streaming differs on '%s'\n", name, s);
                same = 0;
            }
        }
        free(ids);
        CHECK(same);
        n_cases++;
        n_same += same;
    }
    int n_dec = 0, n_dec_same = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(ref, "decode_cases")) {
        size_t n;
        int32_t *ids = json_ids(cJSON_GetObjectItem(c, "ids"), &n);
        int same = 1;
        for (int skip = 0; skip < 2; skip++) {
            const cJSON *want = cJSON_GetObjectItem(c, skip ? "text_skip" : "text");
            if (cJSON_IsNull(want)) continue;
            if (!decode_is(tok, ids, n, skip, want) || !stream_matches(tok, ids, n, skip, want->valuestring)) {
                fprintf(stderr, "%s: decode case %d differs\n", name, n_dec);
                same = 0;
            }
        }
        free(ids);
        CHECK(same);
        n_dec++;
        n_dec_same += same;
    }
    printf("%s: %d/%d corpus strings identical to HF (ids x3, decode x2, streaming x2); %d/%d decode cases\n", name,
           n_same, n_cases, n_dec_same, n_dec);
    cJSON_Delete(ref);
    om_tokenizer_free(tok);
}

/* ---- error cases ---------------------------------------------------------------------------------- */

static const char *MINI_MODEL =
    "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\"]}";

static int load_json_text(const char *dir_name, const char *json, om_tokenizer **tok) {
    const char *dir = om_test_tmpdir(dir_name);
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    om_test_write_file(path, json, strlen(json));
    return om_tokenizer_load(dir, tok);
}

static void expect_load_error(const char *dir_name, const char *json, const char *want) {
    om_tokenizer *tok = NULL;
    int rc = load_json_text(dir_name, json, &tok);
    CHECKF(rc != 0 && strstr(om_last_error(), want), "%s: expected error containing \"%s\", got rc=%d \"%s\"", dir_name,
           want, rc, rc ? om_last_error() : "");
    om_tokenizer_free(tok);
}

static void check_errors(void) {
    char json[2048];
    expect_load_error("tok_unigram", "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}",
                      "tokenizer.json: unsupported model type 'Unigram'");
    expect_load_error("tok_wordpiece", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}",
                      "unsupported model type 'WordPiece'");
    snprintf(json, sizeof json,
             "{%s, \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}, "
             "{\"type\": \"Precompiled\", \"precompiled_charsmap\": \"\"}]}}",
             MINI_MODEL);
    expect_load_error("tok_precompiled", json,
                      "tokenizer.json: unsupported normalizer type 'Precompiled' (at normalizer.normalizers[1])");
    snprintf(json, sizeof json, "{%s, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}}", MINI_MODEL);
    expect_load_error("tok_bertpre", json, "unsupported pre_tokenizer type 'BertPreTokenizer' (at pre_tokenizer)");
    snprintf(json, sizeof json, "{%s, \"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"WordPiece\"}]}}",
             MINI_MODEL);
    expect_load_error("tok_wpdec", json, "unsupported decoder type 'WordPiece' (at decoder.decoders[0])");
    snprintf(json, sizeof json, "{%s, \"post_processor\": {\"type\": \"Magic\"}}", MINI_MODEL);
    expect_load_error("tok_post", json, "unsupported post_processor type 'Magic'");
    /* bad JSON: the offset of the fault */
    expect_load_error("tok_badjson", "{\"model\": {\"type\": \"BPE\",, }}", "invalid JSON at byte offset 26");
    expect_load_error("tok_badutf8", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\xff\": 0}, \"merges\": []}}",
                      "tokenizer.json: invalid UTF-8 at byte offset 37");
    expect_load_error("tok_badmerge",
                      "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a c\"]}}",
                      "model.merges[0]: token 'c' is not in the vocabulary");
    expect_load_error("tok_badregex",
                      "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": "
                      "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(a\"}, \"behavior\": \"Isolated\", \"invert\": false}}",
                      "pre_tokenizer.pattern: cannot compile regex");
    om_tokenizer *tok = NULL;
    CHECK(om_tokenizer_load(OM_TMP_DIR "/no/such/dir", &tok) != 0 && strstr(om_last_error(), "cannot open"));

    /* merges as [a, b] pairs give the same result as "a b" strings */
    snprintf(json, sizeof json,
             "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, \"c\": 3, \"abc\": 4}, "
             "\"merges\": [[\"a\", \"b\"], [\"ab\", \"c\"]]}}");
    int rc = load_json_text("tok_pairs", json, &tok);
    CHECKF(rc == 0, "pair merges: %s", om_last_error());
    if (!rc) {
        int32_t *ids;
        size_t n;
        CHECK(om_tokenizer_encode(tok, "abcab", 5, 0, &ids, &n) == 0 && n == 2 && ids[0] == 4 && ids[1] == 2);
        free(ids);
        om_tokenizer_free(tok);
    }

    /* tokenizer_config.json: an extra added token from added_tokens_decoder, bos/eos as
     * {"content": ...} objects */
    {
        const char *dir = om_test_tmpdir("tok_config");
        char path[4200];
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        snprintf(json, sizeof json, "{%s, \"added_tokens\": [{\"id\": 3, \"content\": \"<s>\", \"special\": true}]}",
                 MINI_MODEL);
        om_test_write_file(path, json, strlen(json));
        snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
        const char *cfg = "{\"added_tokens_decoder\": {\"4\": {\"content\": \"<extra>\", \"special\": true, "
                          "\"normalized\": false}}, \"bos_token\": {\"content\": \"<s>\"}, \"eos_token\": \"<extra>\"}";
        om_test_write_file(path, cfg, strlen(cfg));
        rc = om_tokenizer_load(dir, &tok);
        CHECKF(rc == 0, "config: %s", om_last_error());
        if (!rc) {
            int32_t *ids;
            size_t n;
            CHECK(om_tokenizer_bos_id(tok) == 3 && om_tokenizer_eos_id(tok) == 4 && om_tokenizer_pad_id(tok) == -1);
            CHECK(om_tokenizer_encode(tok, "ab<extra>a", 10, 0, &ids, &n) == 0 && n == 3 && ids[0] == 2 && ids[1] == 4 &&
                  ids[2] == 0);
            free(ids);
            CHECK(om_tokenizer_is_special(tok, 4) && om_tokenizer_vocab_size(tok) == 5);
            om_tokenizer_free(tok);
        }
    }

    /* a decoder that needs the whole fused text (ByteFallback after Fuse) still streams exactly */
    snprintf(json, sizeof json,
             "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"<0x41>\": 1}, \"merges\": []}, "
             "\"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Fuse\"}, {\"type\": \"ByteFallback\"}]}}");
    rc = load_json_text("tok_holdall", json, &tok);
    CHECKF(rc == 0, "hold-all decoder: %s", om_last_error());
    if (!rc) {
        static const int32_t one[] = {1}, two[] = {0, 1};
        char *out;
        CHECK(om_tokenizer_decode(tok, one, 1, 0, &out, NULL) == 0 && !strcmp(out, "A"));
        free(out);
        CHECK(om_tokenizer_decode(tok, two, 2, 0, &out, NULL) == 0 && !strcmp(out, "a<0x41>"));
        free(out);
        CHECK(stream_matches(tok, two, 2, 0, "a<0x41>"));
        om_tokenizer_free(tok);
    }

    /* invalid UTF-8 input: the error names the byte offset */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tokenizers/qwen3", OM_TEST_DATA_DIR);
    if (om_tokenizer_load(dir, &tok) == 0) {
        int32_t *ids;
        size_t n;
        static const char *bad[] = {"abc\xff", "ab\xc3", "\xe4\xb8", "ok \xed\xa0\x80", "x\xc0\xafy"};
        static const size_t where[] = {3, 2, 0, 3, 1};
        for (int i = 0; i < 5; i++) {
            char want[64];
            snprintf(want, sizeof want, "byte offset %zu", where[i]);
            rc = om_tokenizer_encode(tok, bad[i], strlen(bad[i]), 0, &ids, &n);
            CHECKF(rc != 0 && strstr(om_last_error(), want), "invalid UTF-8 case %d: rc=%d '%s'", i, rc,
                   rc ? om_last_error() : "");
        }
        /* the API basics */
        CHECK(om_tokenizer_vocab_size(tok) == 151669);
        CHECK(om_tokenizer_eos_id(tok) == 151645);
        CHECK(om_tokenizer_pad_id(tok) == 151643);
        CHECK(om_tokenizer_bos_id(tok) == -1);
        CHECK(om_tokenizer_token_to_id(tok, "<|im_start|>", 12) == 151644);
        CHECK(om_tokenizer_is_special(tok, 151644) && !om_tokenizer_is_special(tok, 151667) && !om_tokenizer_is_special(tok, 9707));
        const char *p = om_tokenizer_id_to_piece(tok, 151667);
        CHECK(p && !strcmp(p, "<think>"));
        CHECK(om_tokenizer_id_to_piece(tok, 999999) == NULL);
        /* NUL bytes are text like any other */
        CHECK(om_tokenizer_encode(tok, "a\0b", 3, 0, &ids, &n) == 0 && n == 3);
        free(ids);
        om_tokenizer_free(tok);
    }
    snprintf(dir, sizeof dir, "%s/tokenizers/llama2/tokenizer.json", OM_TEST_DATA_DIR);
    if (om_tokenizer_load(dir, &tok) == 0) {
        CHECK(om_tokenizer_bos_id(tok) == 1 && om_tokenizer_eos_id(tok) == 2 && om_tokenizer_vocab_size(tok) == 32000);
        om_tokenizer_free(tok);
    }
}

/* ---- one tokenizer shared by threads ---------------------------------------------------------------- */

typedef struct {
    const om_tokenizer *tok;
    const char *text;
    size_t len, n_want;
    const int32_t *want;
    int ok;
} thread_job;

static void *encode_many(void *arg) {
    thread_job *j = arg;
    j->ok = 1;
    for (int r = 0; r < 20 && j->ok; r++) {
        int32_t *ids;
        size_t n;
        if (om_tokenizer_encode(j->tok, j->text, j->len, 0, &ids, &n)) {
            j->ok = 0;
            break;
        }
        j->ok = n == j->n_want && !memcmp(ids, j->want, n * sizeof *ids);
        free(ids);
    }
    return NULL;
}

/* Threads encoding at once (one holds the word cache, the others go without) agree with a
 * lone encode. */
static void check_threads(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizers/qwen3", OM_TEST_DATA_DIR);
    om_tokenizer *tok;
    if (om_tokenizer_load(path, &tok)) return;
    snprintf(path, sizeof path, "%s/tokenizers/corpus.json", OM_TEST_DATA_DIR);
    char *json = om_test_read_file(path, NULL);
    cJSON *corpus = json ? cJSON_Parse(json) : NULL;
    free(json);
    tk_buf text = {0};
    const cJSON *it;
    cJSON_ArrayForEach(it, corpus) {
        tk_buf_append(&text, it->valuestring, strlen(it->valuestring));
        tk_buf_append(&text, "\n", 1);
    }
    int32_t *want;
    size_t n_want;
    int rc = om_tokenizer_encode(tok, text.data, text.len, 0, &want, &n_want);
    CHECK(rc == 0 && n_want > 1000);
    if (!rc) {
        pthread_t th[4];
        thread_job jobs[4];
        for (int i = 0; i < 4; i++) {
            jobs[i] = (thread_job){tok, text.data, text.len, n_want, want, 0};
            pthread_create(&th[i], NULL, encode_many, &jobs[i]);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            CHECKF(jobs[i].ok, "thread %d disagrees with a lone encode", i);
        }
        free(want);
    }
    tk_buf_free(&text);
    cJSON_Delete(corpus);
    om_tokenizer_free(tok);
}

/* ---- the CLI ------------------------------------------------------------------------------------------ */

static void check_cli(void) {
    char cmd[8192], out[4096], err[4096];
    snprintf(cmd, sizeof cmd, "'%s' tokenize --model '%s/tokenizers/qwen3' 'Hello world' '<|im_start|>'", OM_CLI_PATH,
             OM_TEST_DATA_DIR);
    int rc = om_test_run(cmd, out, sizeof out, err, sizeof err);
    CHECKF(rc == 0 && !strcmp(out, "9707 1879 220 151644\n"), "tokenize args: rc=%d out='%s' err='%s'", rc, out, err);
    snprintf(cmd, sizeof cmd, "printf 'Hello world' | '%s' tokenize --model '%s/tokenizers/llama2' --json --add-special",
             OM_CLI_PATH, OM_TEST_DATA_DIR);
    rc = om_test_run(cmd, out, sizeof out, err, sizeof err);
    CHECKF(rc == 0 && !strcmp(out, "[1,22557,1526]\n"), "tokenize stdin: rc=%d out='%s' err='%s'", rc, out, err);
    snprintf(cmd, sizeof cmd, "'%s' tokenize --model '%s/tokenizers/llama2' -- --json", OM_CLI_PATH, OM_TEST_DATA_DIR);
    rc = om_test_run(cmd, out, sizeof out, err, sizeof err);
    CHECKF(rc == 0 && !strcmp(out, "1939 3371\n"), "tokenize --: rc=%d out='%s' err='%s'", rc, out, err);
    snprintf(cmd, sizeof cmd, "printf 'a\\377' | '%s' tokenize --model '%s/tokenizers/llama2'", OM_CLI_PATH,
             OM_TEST_DATA_DIR);
    rc = om_test_run(cmd, out, sizeof out, err, sizeof err);
    CHECKF(rc == 1 && strstr(err, "byte offset 1"), "tokenize bad UTF-8: rc=%d err='%s'", rc, err);
    /* Without --model the default model is used; with an empty cache that is a clear error. */
    snprintf(cmd, sizeof cmd, "OMINIX_CACHE=/nonexistent '%s' tokenize 'x'", OM_CLI_PATH);
    rc = om_test_run(cmd, out, sizeof out, err, sizeof err);
    CHECKF(rc == 1 && strstr(err, "--model") && strstr(err, "fetch-default-model"),
           "tokenize without --model or default model: rc=%d err='%s'", rc, err);
}

int main(void) {
    check_cli();
    /* the real ones, then small ones trained by the reference tool for the other options */
    static const char *names[] = {"qwen3", "llama2", "synth_bytelevel", "synth_metaspace", "synth_suffix",
                                  "synth_split", "synth_nodecoder", "synth_regex"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) check_tokenizer(names[i]);
    check_errors();
    check_threads();
    return om_test_finish();
}
