/* The test harness (see test_util.h). */
#include "test_util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int om_test_passed, om_test_failed;

int om_test_finish(void) {
    printf("%d passed, %d failed\n", om_test_passed, om_test_failed);
    return om_test_failed ? 1 : 0;
}

char *om_test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

int om_test_write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

const char *om_test_tmpdir(const char *name) {
    static char path[4096];
    char cmd[8400];
    snprintf(path, sizeof path, "%s/%s", OM_TMP_DIR, name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", path, path);
    if (system(cmd) != 0) return NULL;
    return path;
}

static void read_all(FILE *f, char *buf, size_t cap) {
    size_t used = 0;
    if (buf && cap) buf[0] = 0;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (buf && used + 1 < cap) {
            size_t take = n < cap - 1 - used ? n : cap - 1 - used;
            memcpy(buf + used, chunk, take);
            used += take;
            buf[used] = 0;
        }
    }
}

int om_test_run(const char *cmd, char *out, size_t out_cap, char *err, size_t err_cap) {
    char errpath[4096], full[16384];
    snprintf(errpath, sizeof errpath, "%s/stderr.%d.txt", OM_TMP_DIR, (int)getpid());
    mkdir(OM_TMP_DIR, 0755);
    snprintf(full, sizeof full, "%s 2>'%s'", cmd, errpath);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    read_all(p, out, out_cap);
    int st = pclose(p);
    FILE *e = fopen(errpath, "rb");
    if (e) {
        read_all(e, err, err_cap);
        fclose(e);
        remove(errpath);
    } else if (err && err_cap) {
        err[0] = 0;
    }
    if (st == -1) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

typedef struct {
    char name[96];
    int64_t rows, cols; /* cols 0: 1-D */
} tensor_spec;

int om_test_make_text_model(const char *dir, const char *tokenizer, int vocab, const char *eos_ids_json) {
    enum { H = 32, L = 2, NH = 2, NKV = 1, HD = 16, F = 64 };
    tensor_spec specs[64];
    int n = 0;
    snprintf(specs[n].name, sizeof specs[n].name, "model.embed_tokens.weight");
    specs[n].rows = vocab;
    specs[n++].cols = H;
    snprintf(specs[n].name, sizeof specs[n].name, "model.norm.weight");
    specs[n].rows = H;
    specs[n++].cols = 0;
    for (int l = 0; l < L; l++) {
        const struct {
            const char *suffix;
            int64_t rows, cols;
        } per[] = {{"input_layernorm.weight", H, 0},
                   {"post_attention_layernorm.weight", H, 0},
                   {"self_attn.q_proj.weight", NH * HD, H},
                   {"self_attn.k_proj.weight", NKV * HD, H},
                   {"self_attn.v_proj.weight", NKV * HD, H},
                   {"self_attn.o_proj.weight", H, NH * HD},
                   {"self_attn.q_norm.weight", HD, 0},
                   {"self_attn.k_norm.weight", HD, 0},
                   {"mlp.gate_proj.weight", F, H},
                   {"mlp.up_proj.weight", F, H},
                   {"mlp.down_proj.weight", H, F}};
        for (size_t i = 0; i < sizeof per / sizeof per[0]; i++) {
            snprintf(specs[n].name, sizeof specs[n].name, "model.layers.%d.%s", l, per[i].suffix);
            specs[n].rows = per[i].rows;
            specs[n++].cols = per[i].cols;
        }
    }
    /* Header JSON, then the data: every tensor bf16, drawn from a fixed generator. */
    size_t hcap = 16384, hlen = 0, offset = 0;
    char *header = malloc(hcap);
    if (!header) return -1;
    hlen += (size_t)snprintf(header + hlen, hcap - hlen, "{");
    for (int i = 0; i < n; i++) {
        size_t count = (size_t)specs[i].rows * (size_t)(specs[i].cols ? specs[i].cols : 1);
        if (specs[i].cols)
            hlen += (size_t)snprintf(header + hlen, hcap - hlen, "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[%lld,%lld],\"data_offsets\":[%zu,%zu]}",
                                     i ? "," : "", specs[i].name, (long long)specs[i].rows, (long long)specs[i].cols, offset,
                                     offset + 2 * count);
        else
            hlen += (size_t)snprintf(header + hlen, hcap - hlen, "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[%lld],\"data_offsets\":[%zu,%zu]}",
                                     i ? "," : "", specs[i].name, (long long)specs[i].rows, offset, offset + 2 * count);
        offset += 2 * count;
    }
    hlen += (size_t)snprintf(header + hlen, hcap - hlen, "}");
    while (hlen % 8) header[hlen++] = ' ';
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(header);
        return -1;
    }
    uint64_t hl = hlen;
    fwrite(&hl, 8, 1, f);
    fwrite(header, 1, hlen, f);
    free(header);
    uint32_t rng = 2024;
    for (int i = 0; i < n; i++) {
        size_t count = (size_t)specs[i].rows * (size_t)(specs[i].cols ? specs[i].cols : 1);
        int is_norm = specs[i].cols == 0;
        for (size_t j = 0; j < count; j++) {
            rng = rng * 1664525u + 1013904223u;
            float u = (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
            float v = is_norm ? 1.0f + 0.2f * u : u * 0.5f;
            uint32_t bits;
            memcpy(&bits, &v, 4);
            uint16_t b = (uint16_t)(bits >> 16);
            fwrite(&b, 2, 1, f);
        }
    }
    if (fclose(f) != 0) return -1;
    char cfg[2048];
    int len = snprintf(cfg, sizeof cfg,
                       "{\"architectures\": [\"Qwen3ForCausalLM\"], \"model_type\": \"qwen3\", \"hidden_size\": %d, "
                       "\"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"num_key_value_heads\": %d, "
                       "\"head_dim\": %d, \"intermediate_size\": %d, \"vocab_size\": %d, \"rms_norm_eps\": 1e-6, "
                       "\"rope_theta\": 1000000.0, \"max_position_embeddings\": 4096, \"tie_word_embeddings\": true, "
                       "\"eos_token_id\": %s}\n",
                       H, L, NH, NKV, HD, F, vocab, eos_ids_json);
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (om_test_write_file(path, cfg, (size_t)len)) return -1;
    len = snprintf(cfg, sizeof cfg, "{\"eos_token_id\": %s}\n", eos_ids_json);
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    if (om_test_write_file(path, cfg, (size_t)len)) return -1;
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cp '%s/tokenizers/%s/tokenizer.json' '%s/tokenizers/%s/tokenizer_config.json' '%s/'",
             OM_TEST_DATA_DIR, tokenizer, OM_TEST_DATA_DIR, tokenizer, dir);
    return system(cmd) == 0 ? 0 : -1;
}
