/* End-to-end tests of the ominix CLI: `generate --json` output against the committed
 * transformers reference, and every bad input the issue names giving a one-line error that
 * names the file, tensor or field, with a non-zero exit (and never a crash: exit codes from
 * signals are >= 128 and fail these checks). Broken checkpoints are made by copying a good
 * one to a temporary folder and damaging one thing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "test_util.h"

static char out[1 << 16], err[1 << 14];

/* Runs the CLI with args; returns the exit status. */
static int cli(const char *args) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s", OM_CLI_PATH, args);
    return om_test_run(cmd, out, sizeof out, err, sizeof err);
}

static int one_line(const char *s) {
    const char *nl = strchr(s, '\n');
    return s[0] && (!nl || nl[1] == 0);
}

/* Expects failure with exit 1 or 2 and a single stderr line containing `needle`. */
static void expect_error(const char *what, const char *args, const char *needle) {
    int rc = cli(args);
    CHECKF(rc == 1 || rc == 2, "%s: exit status %d", what, rc);
    CHECKF(strstr(err, needle) != NULL, "%s: stderr lacks '%s': %s", what, needle, err);
    CHECKF(one_line(err), "%s: stderr is not one line: %s", what, err);
}

static const char *copy_model(const char *name, const char *as) {
    static char dir[4096];
    const char *tmp = om_test_tmpdir(as);
    char cmd[9000];
    snprintf(dir, sizeof dir, "%s/%s", tmp, name);
    snprintf(cmd, sizeof cmd, "cp -r '%s/models/%s' '%s/'", OM_TEST_DATA_DIR, name, tmp);
    if (system(cmd) != 0) return NULL;
    return dir;
}

/* Replaces the first occurrence of `from` in a file with `to` of the same length. */
static int patch_file(const char *path, const char *from, const char *to) {
    size_t len;
    char *buf = om_test_read_file(path, &len);
    if (!buf) return -1;
    char *p = memmem(buf, len, from, strlen(from));
    int rc = -1;
    if (p && strlen(from) == strlen(to)) {
        memcpy(p, to, strlen(to));
        rc = om_test_write_file(path, buf, len);
    }
    free(buf);
    return rc;
}

static void test_generate_json(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/models/qwen3/reference.json", OM_TEST_DATA_DIR);
    char *text = om_test_read_file(path, NULL);
    cJSON *ref = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(ref != NULL);
    if (!ref) return;
    const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(ref, "cases"), 1);
    const cJSON *ids = cJSON_GetObjectItem(c, "prompt_ids"), *steps = cJSON_GetObjectItem(c, "steps");
    char prompt[4096] = "";
    for (int i = 0; i < cJSON_GetArraySize(ids); i++)
        snprintf(prompt + strlen(prompt), sizeof prompt - strlen(prompt), "%s%d", i ? "," : "",
                 (int)cJSON_GetArrayItem(ids, i)->valuedouble);
    int n_steps = cJSON_GetArraySize(steps);
    char args[8192];
    snprintf(args, sizeof args,
             "generate --model '%s/models/qwen3' --prompt-ids %s --max-tokens %d --temperature 0 --ignore-eos "
             "--logprobs 3 --json --threads 2",
             OM_TEST_DATA_DIR, prompt, n_steps);
    CHECKF(cli(args) == 0, "generate failed: %s", err);
    /* One JSON object per line: n_steps tokens, then the summary. */
    int line = 0, done = 0;
    for (char *s = out, *nl; *s; s = nl + 1) {
        nl = strchr(s, '\n');
        CHECK(nl != NULL);
        if (!nl) break;
        *nl = 0;
        cJSON *o = cJSON_Parse(s);
        CHECKF(o != NULL, "line %d is not JSON: %s", line, s);
        if (!o) break;
        if (line < n_steps) {
            const cJSON *st = cJSON_GetArrayItem(steps, line);
            CHECKF(cJSON_GetObjectItem(o, "id")->valuedouble == cJSON_GetObjectItem(st, "id")->valuedouble,
                   "step %d: id differs from the reference", line);
            double lp = cJSON_GetObjectItem(o, "logprob")->valuedouble;
            CHECK(lp - cJSON_GetObjectItem(st, "logprob")->valuedouble < 1e-3 &&
                  cJSON_GetObjectItem(st, "logprob")->valuedouble - lp < 1e-3);
            const cJSON *top = cJSON_GetObjectItem(o, "top_logprobs");
            CHECK(cJSON_GetArraySize(top) == 3);
            CHECK(cJSON_GetObjectItem(cJSON_GetArrayItem(top, 0), "id")->valuedouble ==
                  cJSON_GetObjectItem(o, "id")->valuedouble);
        } else {
            done = cJSON_IsTrue(cJSON_GetObjectItem(o, "done"));
            CHECK(cJSON_GetObjectItem(o, "prompt_tokens")->valuedouble == cJSON_GetArraySize(ids));
            CHECK(cJSON_GetObjectItem(o, "generated_tokens")->valuedouble == n_steps);
            CHECK(cJSON_GetObjectItem(o, "prefill_tokens_per_s")->valuedouble > 0);
            CHECK(cJSON_IsNumber(cJSON_GetObjectItem(o, "decode_tokens_per_s")));
        }
        cJSON_Delete(o);
        line++;
    }
    CHECKF(line == n_steps + 1 && done, "expected %d lines ending with the summary, got %d", n_steps + 1, line);

    /* Without --json: the ids, space-separated, on one line. */
    snprintf(args, sizeof args, "generate --model '%s/models/qwen3' --prompt-ids %s --max-tokens 3 --ignore-eos",
             OM_TEST_DATA_DIR, prompt);
    CHECK(cli(args) == 0);
    char expect[64];
    snprintf(expect, sizeof expect, "%d %d %d\n", (int)cJSON_GetObjectItem(cJSON_GetArrayItem(steps, 0), "id")->valuedouble,
             (int)cJSON_GetObjectItem(cJSON_GetArrayItem(steps, 1), "id")->valuedouble,
             (int)cJSON_GetObjectItem(cJSON_GetArrayItem(steps, 2), "id")->valuedouble);
    CHECKF(!strcmp(out, expect), "plain output '%s', expected '%s'", out, expect);
    cJSON_Delete(ref);
}

static void test_bad_inputs(void) {
    char args[8192];
    const char *d;

    expect_error("missing folder", "generate --model /nonexistent/model --prompt-ids 1,2", "/nonexistent/model");

    d = om_test_tmpdir("empty");
    snprintf(args, sizeof args, "generate --model '%s' --prompt-ids 1", d);
    expect_error("no config.json", args, "config.json");

    d = copy_model("qwen2", "unknown_type");
    char cfg[4200];
    snprintf(cfg, sizeof cfg, "%s/config.json", d);
    CHECK(patch_file(cfg, "\"model_type\": \"qwen2\"", "\"model_type\": \"zzzz2\"") == 0);
    snprintf(args, sizeof args, "generate --model '%s' --prompt-ids 1", d);
    expect_error("unknown model_type", args, "unknown model_type 'zzzz2'");

    d = copy_model("qwen2", "bad_config");
    snprintf(cfg, sizeof cfg, "%s/config.json", d);
    CHECK(patch_file(cfg, "\"hidden_size\"", "\"hidden_sizX\"") == 0);
    snprintf(args, sizeof args, "generate --model '%s' --prompt-ids 1", d);
    expect_error("missing config field", args, "'hidden_size'");

    d = copy_model("qwen2", "not_json");
    snprintf(cfg, sizeof cfg, "%s/config.json", d);
    CHECK(om_test_write_file(cfg, "{\"model_type\": ", 15) == 0);
    snprintf(args, sizeof args, "generate --model '%s' --prompt-ids 1", d);
    expect_error("config not JSON", args, "config.json");

    char st[4300];
    d = copy_model("qwen2", "truncated");
    snprintf(st, sizeof st, "%s/model.safetensors", d);
    CHECK(truncate(st, 100000) == 0);
    snprintf(args, sizeof args, "generate --model '%s' --prompt-ids 1", d);
    expect_error("truncated safetensors", args, "model.safetensors");

    d = copy_model("qwen2", "header_len");
    snprintf(st, sizeof st, "%s/model.safetensors", d);
    {
        size_t len;
        char *buf = om_test_read_file(st, &len);
        CHECK(buf != NULL);
        if (buf) {
            buf[5] = 0x7f; /* header length far beyond the file */
            om_test_write_file(st, buf, len);
            free(buf);
        }
    }
    snprintf(args, sizeof args, "generate --model '%s' --prompt-ids 1", d);
    expect_error("bad header length", args, "model.safetensors");

    d = copy_model("qwen2", "header_json");
    snprintf(st, sizeof st, "%s/model.safetensors", d);
    CHECK(patch_file(st, "{\"__metadata__\"", "[\"__metadata__\"") == 0);
    snprintf(args, sizeof args, "generate --model '%s' --prompt-ids 1", d);
    expect_error("header not a JSON object", args, "model.safetensors");

    d = copy_model("qwen2", "offsets");
    snprintf(st, sizeof st, "%s/model.safetensors", d);
    CHECK(patch_file(st, "\"data_offsets\":[0,65536]", "\"data_offsets\":[0,95536]") == 0);
    snprintf(args, sizeof args, "generate --model '%s' --prompt-ids 1", d);
    expect_error("offsets out of range", args, "lm_head.weight");

    d = copy_model("qwen2", "missing_tensor");
    snprintf(st, sizeof st, "%s/model.safetensors", d);
    CHECK(patch_file(st, "\"model.norm.weight\"", "\"model.norm.weighX\"") == 0);
    snprintf(args, sizeof args, "generate --model '%s' --prompt-ids 1", d);
    expect_error("missing tensor", args, "'model.norm.weight'");

    d = copy_model("qwen2", "wrong_dtype");
    snprintf(st, sizeof st, "%s/model.safetensors", d);
    /* I16 has BF16's size, so the file stays valid; the space keeps the header's length. */
    CHECK(patch_file(st, "\"lm_head.weight\":{\"dtype\":\"BF16\",", "\"lm_head.weight\":{\"dtype\":\"I16\", ") == 0);
    snprintf(args, sizeof args, "generate --model '%s' --prompt-ids 1", d);
    int rc = cli(args);
    CHECKF(rc == 1 && strstr(err, "lm_head.weight") && one_line(err), "wrong dtype: rc %d, %s", rc, err);

    d = copy_model("qwen2", "wrong_shape");
    snprintf(cfg, sizeof cfg, "%s/config.json", d);
    CHECK(patch_file(cfg, "\"intermediate_size\": 128", "\"intermediate_size\": 100") == 0);
    snprintf(args, sizeof args, "generate --model '%s' --prompt-ids 1", d);
    expect_error("wrong shape", args, "gate_proj.weight");

    d = copy_model("qwen3", "missing_shard");
    snprintf(st, sizeof st, "%s/model-00002-of-00003.safetensors", d);
    CHECK(remove(st) == 0);
    snprintf(args, sizeof args, "generate --model '%s' --prompt-ids 1", d);
    expect_error("missing shard", args, "model-00002-of-00003.safetensors");

    snprintf(args, sizeof args, "generate --model '%s/models/qwen2' --prompt-ids 1,2,3,4,5,6,7 --ctx 4", OM_TEST_DATA_DIR);
    expect_error("prompt longer than the context", args, "longer than the context");

    snprintf(args, sizeof args, "generate --model '%s/models/qwen2' --prompt-ids 1,99999", OM_TEST_DATA_DIR);
    expect_error("token out of vocabulary", args, "99999");

    snprintf(args, sizeof args, "generate --model '%s/models/qwen2' --prompt-ids 1,x,3", OM_TEST_DATA_DIR);
    expect_error("bad prompt ids", args, "--prompt-ids");

    expect_error("unknown option", "generate --frobnicate", "--frobnicate");
    expect_error("unknown command", "frobnicate", "frobnicate");
}

/* Collects the ids and the concatenated "text" of a --json run. */
static int parse_json_run(const char *o, int32_t *ids, int cap, char *text, size_t text_cap, char *finish) {
    int n = 0;
    text[0] = 0;
    const char *s = o;
    while (*s) {
        const char *nl = strchr(s, '\n');
        if (!nl) break;
        char *line = strndup(s, (size_t)(nl - s));
        cJSON *j = cJSON_Parse(line);
        free(line);
        s = nl + 1;
        if (!j) return -1;
        if (cJSON_IsTrue(cJSON_GetObjectItem(j, "done"))) {
            const cJSON *fr = cJSON_GetObjectItem(j, "finish_reason");
            if (finish && cJSON_IsString(fr)) snprintf(finish, 16, "%s", fr->valuestring);
        } else if (n < cap) {
            ids[n++] = (int32_t)cJSON_GetObjectItem(j, "id")->valuedouble;
            const cJSON *t = cJSON_GetObjectItem(j, "text");
            if (cJSON_IsString(t)) strncat(text, t->valuestring, text_cap - strlen(text) - 1);
        }
        cJSON_Delete(j);
    }
    return n;
}

/* Text in, text out on a random-weight Qwen3 with the real Qwen3 tokenizer: the text path
 * must agree with the token path and with the tokenizer, and sampling must follow its seed. */
static void test_text_generation(void) {
    const char *dir = om_test_tmpdir("text_model");
    CHECK(dir && om_test_make_text_model(dir, "qwen3", 151936, "[151645, 151643]") == 0);
    char mdir[4096], args[16384];
    snprintf(mdir, sizeof mdir, "%s", dir);

    /* The chat-templated prompt, as `ominix chat-template` renders it, tokenized. */
    char msgs[4300];
    snprintf(msgs, sizeof msgs, "%s/messages.json", mdir);
    const char *conv = "[{\"role\": \"user\", \"content\": \"What is the capital of France?\"}]";
    CHECK(om_test_write_file(msgs, conv, strlen(conv)) == 0);
    snprintf(args, sizeof args, "chat-template --model '%s' --messages '%s' --add-generation-prompt", mdir, msgs);
    CHECKF(cli(args) == 0, "chat-template: %s", err);
    CHECK(strstr(out, "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n") != NULL);
    char rendered[4096];
    snprintf(rendered, sizeof rendered, "%.4000s", out);
    char rpath[4300];
    snprintf(rpath, sizeof rpath, "%s/rendered.txt", mdir);
    om_test_write_file(rpath, rendered, strlen(rendered));
    snprintf(args, sizeof args, "tokenize --model '%s' --json < '%s'", mdir, rpath);
    CHECKF(cli(args) == 0, "tokenize: %s", err);
    cJSON *arr = cJSON_Parse(out);
    CHECK(cJSON_IsArray(arr));
    char ids_arg[4096] = "";
    for (int i = 0; i < cJSON_GetArraySize(arr); i++)
        snprintf(ids_arg + strlen(ids_arg), sizeof ids_arg - strlen(ids_arg), "%s%d", i ? "," : "",
                 (int)cJSON_GetArrayItem(arr, i)->valuedouble);
    cJSON_Delete(arr);

    int32_t a[64], b[64];
    char ta[8192], tb[8192], finish[16] = "";
    snprintf(args, sizeof args,
             "generate --model '%s' --prompt 'What is the capital of France?' --max-tokens 12 --temperature 0 --json",
             mdir);
    CHECKF(cli(args) == 0, "generate --prompt: %s", err);
    int na = parse_json_run(out, a, 64, ta, sizeof ta, finish);
    snprintf(args, sizeof args, "generate --model '%s' --prompt-ids %s --max-tokens 12 --temperature 0 --json", mdir,
             ids_arg);
    CHECKF(cli(args) == 0, "generate --prompt-ids: %s", err);
    int nb = parse_json_run(out, b, 64, tb, sizeof tb, NULL);
    CHECKF(na > 0 && na == nb && !memcmp(a, b, sizeof(int32_t) * (size_t)na) && !strcmp(ta, tb),
           "text prompt and its token ids generate differently (%d vs %d tokens)", na, nb);
    CHECK(!strcmp(finish, "stop") || !strcmp(finish, "length"));

    /* Plain output is the same text. */
    snprintf(args, sizeof args,
             "generate --model '%s' --prompt 'What is the capital of France?' --max-tokens 12 --temperature 0", mdir);
    CHECK(cli(args) == 0);
    size_t lo = strlen(out);
    CHECKF(lo > 0 && out[lo - 1] == '\n' && !strncmp(out, ta, lo - 1) && strlen(ta) == lo - 1, "plain '%s' vs json '%s'",
           out, ta);

    /* Sampling: the same seed repeats, another seed differs. */
    int32_t s1[64], s2[64], s3[64];
    const char *fmt = "generate --model '%s' --prompt hello --raw --max-tokens 16 --ignore-eos --temperature 1.0 "
                      "--top-p 0.95 --seed %d --json";
    snprintf(args, sizeof args, fmt, mdir, 7);
    CHECK(cli(args) == 0);
    int n1 = parse_json_run(out, s1, 64, ta, sizeof ta, NULL);
    snprintf(args, sizeof args, fmt, mdir, 7);
    CHECK(cli(args) == 0);
    int n2 = parse_json_run(out, s2, 64, tb, sizeof tb, NULL);
    snprintf(args, sizeof args, fmt, mdir, 8);
    CHECK(cli(args) == 0);
    int n3 = parse_json_run(out, s3, 64, tb, sizeof tb, NULL);
    CHECK(n1 == 16 && n2 == 16 && n3 == 16);
    CHECK(!memcmp(s1, s2, sizeof s1[0] * 16));
    CHECK(memcmp(s1, s3, sizeof s1[0] * 16) != 0);

    /* Chat: the first answer equals generate's; the second turn reuses the cached prefix;
     * /reset forgets; /exit ends. */
    snprintf(args, sizeof args, "generate --model '%s' --prompt hello --max-tokens 6 --temperature 0", mdir);
    CHECK(cli(args) == 0);
    char first[4096];
    snprintf(first, sizeof first, "%.4000s", out);
    snprintf(args, sizeof args,
             "printf 'hello\\nand then?\\n/reset\\nhello\\n/exit\\nnever read\\n' | %s chat --model '%s' "
             "--max-tokens 6 --temperature 0",
             OM_CLI_PATH, mdir);
    int rc = om_test_run(args, out, sizeof out, err, sizeof err);
    CHECKF(rc == 0, "chat exit %d: %s", rc, err);
    CHECKF(!strncmp(out, first, strlen(first)), "chat's first answer '%s' differs from generate's '%s'", out, first);
    const char *third = out;
    for (int k = 0; k < 2 && third; k++) third = strchr(third, '\n') ? strchr(third, '\n') + 1 : NULL;
    CHECKF(third && !strncmp(third, first, strlen(first)), "the answer after /reset differs: '%s'", out);
    int turns = 0, cached_second = -1;
    for (const char *e = err; e && *e; e = strchr(e, '\n') ? strchr(e, '\n') + 1 : NULL) {
        int gen, prompt_tokens, cached;
        if (sscanf(e, "[%d tokens, %*f tokens/s; prompt %d tokens, %d from cache", &gen, &prompt_tokens, &cached) == 3) {
            if (turns == 1) cached_second = cached;
            turns++;
        }
    }
    CHECKF(turns == 3, "chat reported %d turns: %s", turns, err);
    CHECKF(cached_second > 5, "the second turn reused %d cached tokens", cached_second);
    CHECK(strstr(err, "[conversation reset]") != NULL);

    /* Bad text input. */
    snprintf(args, sizeof args, "generate --model '%s' --prompt \"$(printf 'bad \\377 byte')\" --raw", mdir);
    expect_error("invalid UTF-8 prompt", args, "UTF-8");
    snprintf(args, sizeof args, "generate --model '%s' --prompt hi --temperature -1", mdir);
    expect_error("negative temperature", args, "temperature");
    snprintf(args, sizeof args, "generate --model '%s/models/qwen2' --prompt hi", OM_TEST_DATA_DIR);
    expect_error("text prompt without a tokenizer", args, "tokenizer.json");
}

int main(void) {
    test_text_generation();
    test_generate_json();
    test_bad_inputs();
    return om_test_finish();
}
