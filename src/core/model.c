/* Loading a model folder, creating contexts, and running validated batches (see model.h and
 * include/ominix/ominix.h). Knows no family: it reads config.json's model_type, asks the
 * registry for the family and hands over. A .gguf file (or a folder holding one and no
 * config.json) goes through the model layer's GGUF adapter, which gives the same config and
 * Hugging Face tensor names. */
#include "core/model.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/json_util.h"
#include "core/log.h"

om_model_params om_model_default_params(void) { return (om_model_params){.n_threads = 0}; }

om_context_params om_context_default_params(void) {
    return (om_context_params){.n_ctx = 0, .n_seq_max = 1, .n_batch = 512};
}

static int read_eos(om_model *m) {
    char path[PATH_MAX];
    int64_t ids[OM_MAX_EOS];
    int n = 0;
    snprintf(path, sizeof path, "%s/generation_config.json", m->dir);
    struct stat st;
    if (stat(path, &st) == 0) {
        cJSON *gen = NULL;
        if (om_json_read_file(path, &gen)) return -1;
        int rc = om_json_int_list(gen, "generation_config.json", "eos_token_id", ids, OM_MAX_EOS, &n);
        cJSON_Delete(gen);
        if (rc) return -1;
    }
    if (n == 0 && om_json_int_list(m->config, "config.json", "eos_token_id", ids, OM_MAX_EOS, &n)) return -1;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= m->hp.n_vocab)
            return om_errorf("eos_token_id %lld is outside the vocabulary (%d)", (long long)ids[i], m->hp.n_vocab);
        m->eos_ids[i] = (int32_t)ids[i];
    }
    m->n_eos = n;
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* What `path` names: a Hugging Face folder (returns 0), or a GGUF checkpoint (returns 1 and
 * its file in gguf): a .gguf file, or a folder without config.json holding exactly one. */
static int checkpoint_kind(const char *path, char *gguf, size_t size) {
    struct stat st;
    if (stat(path, &st) != 0) return om_errorf("model '%s' does not exist", path);
    if (S_ISREG(st.st_mode)) {
        if (!ends_with(path, ".gguf"))
            return om_errorf("model '%s' is a file but not a .gguf checkpoint (give a model folder or a .gguf file)",
                             path);
        snprintf(gguf, size, "%s", path);
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) return om_errorf("model '%s' is neither a folder nor a .gguf file", path);
    char cfg[PATH_MAX];
    snprintf(cfg, sizeof cfg, "%s/config.json", path);
    if (stat(cfg, &st) == 0) return 0;
    DIR *d = opendir(path);
    if (!d) return om_errorf("model folder '%s': cannot list: %s", path, strerror(errno));
    int n = 0;
    char first[256] = "", second[256] = "";
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || !ends_with(de->d_name, ".gguf")) continue;
        if (n == 0) snprintf(first, sizeof first, "%s", de->d_name);
        else if (n == 1) snprintf(second, sizeof second, "%s", de->d_name);
        n++;
    }
    closedir(d);
    if (n == 0) return om_errorf("model folder '%s' has no config.json and no .gguf file", path);
    if (n > 1)
        return om_errorf("model folder '%s' has no config.json and %d .gguf files (%s, %s%s); name the file", path, n,
                         first, second, n > 2 ? ", ..." : "");
    size_t len = strlen(path);
    snprintf(gguf, size, "%s%s%s", path, len && path[len - 1] == '/' ? "" : "/", first);
    return 1;
}

int om_model_load(const char *dir, const om_model_params *params, om_model **out) {
    *out = NULL;
    om_model_params p = params ? *params : om_model_default_params();
    char path[PATH_MAX];
    int kind = checkpoint_kind(dir, path, sizeof path);
    if (kind < 0) return -1;
    om_model *m = calloc(1, sizeof *m);
    if (!m) return om_errorf("out of memory");
    if (kind == 1) {
        /* A GGUF file: the model layer gives it as a Hugging Face folder would be given. */
        om_checkpoint ck = {0};
        m->dir = strdup(path);
        if (om_checkpoint_open_gguf(path, &ck)) goto fail;
        m->config = ck.config;
        m->weights = ck.weights;
        m->tokenizer_json = ck.tokenizer_json;
        m->tokenizer_config = ck.tokenizer_config;
    } else {
        m->dir = strdup(dir);
        snprintf(path, sizeof path, "%s/config.json", dir);
        if (om_json_read_file(path, &m->config)) goto fail;
    }
    const char *type = om_json_string_or(m->config, "config.json", "model_type", "");
    if (!type) goto fail;
    if (!type[0]) {
        om_errorf("%s: missing field 'model_type'", path);
        goto fail;
    }
    m->model_type = strdup(type);
    m->family = om_family_find(type);
    if (!m->family) {
        om_errorf("%s: unknown model_type '%s' (supported: %s)", path, type, om_family_supported_types());
        goto fail;
    }
    m->backend = om_backend_cpu_create(p.n_threads);
    if (!m->backend) goto fail;
    if (!m->weights && om_weights_open_dir(dir, &m->weights)) goto fail;
    if (m->family->load(m)) {
        /* The family's messages say "config.json"; for a GGUF file say which file that was. */
        if (kind == 1 && strncmp(om_last_error(), path, strlen(path)) != 0) om_error_prefix("%s: ", path);
        goto fail;
    }
    if (read_eos(m)) goto fail;
    OM_INFO("loaded %s (%s family): %d layers, vocabulary %d", dir, m->family->name, m->hp.n_layer, m->hp.n_vocab);
    *out = m;
    return 0;
fail:
    om_model_free(m);
    return -1;
}

void om_model_free(om_model *m) {
    if (!m) return;
    if (m->impl && m->family) m->family->free(m);
    om_weights_free(m->weights);
    om_backend_free(m->backend);
    cJSON_Delete(m->config);
    cJSON_Delete(m->tokenizer_json);
    cJSON_Delete(m->tokenizer_config);
    free(m->model_type);
    free(m->dir);
    free(m);
}

static int model_tensor(om_model *m, om_tensor *out, int optional, int ndim, int64_t d0, int64_t d1, const char *fmt,
                        va_list ap) {
    char name[512];
    vsnprintf(name, sizeof name, fmt, ap);
    int64_t shape[2] = {d0, d1};
    memset(out, 0, sizeof *out);
    if (!optional) return om_weights_get(m->weights, name, ndim, shape, out);
    int found = 0;
    return om_weights_get_optional(m->weights, name, ndim, shape, out, &found);
}

int om_model_tensor(om_model *m, om_tensor *out, int ndim, int64_t d0, int64_t d1, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = model_tensor(m, out, 0, ndim, d0, d1, fmt, ap);
    va_end(ap);
    return rc;
}

int om_model_tensor_opt(om_model *m, om_tensor *out, int ndim, int64_t d0, int64_t d1, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = model_tensor(m, out, 1, ndim, d0, d1, fmt, ap);
    va_end(ap);
    return rc;
}

int om_model_n_vocab(const om_model *m) { return m->hp.n_vocab; }
int om_model_n_ctx_train(const om_model *m) { return m->hp.n_ctx_train; }
const char *om_model_family(const om_model *m) { return m->family->name; }
const char *om_model_type(const om_model *m) { return m->model_type; }
size_t om_model_weight_bytes(const om_model *m) { return om_weights_file_bytes(m->weights); }
size_t om_model_decode_bytes(const om_model *m) {
    return m->family->decode_bytes ? m->family->decode_bytes(m) : om_weights_file_bytes(m->weights);
}

int om_model_eos_ids(const om_model *m, const int32_t **ids) {
    *ids = m->eos_ids;
    return m->n_eos;
}

int om_context_create(om_model *model, const om_context_params *params, om_context **out) {
    *out = NULL;
    om_context_params p = params ? *params : om_context_default_params();
    if (p.n_ctx <= 0) p.n_ctx = model->hp.n_ctx_train > 0 && model->hp.n_ctx_train < 4096 ? model->hp.n_ctx_train : 4096;
    if (p.n_seq_max <= 0) p.n_seq_max = 1;
    if (p.n_batch <= 0) p.n_batch = 512;
    om_context *c = calloc(1, sizeof *c);
    if (!c) return om_errorf("out of memory");
    c->model = model;
    c->n_ctx = p.n_ctx;
    c->n_seq_max = p.n_seq_max;
    c->n_batch = p.n_batch;
    c->seq_len = calloc((size_t)p.n_seq_max, sizeof(int32_t));
    c->tokens = calloc((size_t)p.n_seq_max * (size_t)p.n_ctx, sizeof(int32_t));
    if (!c->seq_len || !c->tokens) {
        om_errorf("out of memory");
        goto fail;
    }
    const om_model_hparams *hp = &model->hp;
    /* A batch may write n_batch positions past the oldest one its first token still sees. */
    int kv_slots = p.n_ctx;
    if (hp->kv_window > 0 && (long)hp->kv_window + p.n_batch - 1 < kv_slots) kv_slots = hp->kv_window + p.n_batch - 1;
    if (om_kv_cache_init(&c->kv, hp->n_layer, p.n_seq_max, kv_slots, hp->n_kv_head, hp->head_dim)) goto fail;
    if (model->family->context_init(c)) goto fail;
    *out = c;
    return 0;
fail:
    om_context_free(c);
    return -1;
}

void om_context_free(om_context *c) {
    if (!c) return;
    if (c->impl) c->model->family->context_free(c);
    om_kv_cache_free(&c->kv);
    free(c->seq_len);
    free(c->tokens);
    free(c->logits);
    free(c);
}

int om_context_n_ctx(const om_context *c) { return c->n_ctx; }
size_t om_context_kv_bytes(const om_context *c) { return om_kv_cache_bytes(&c->kv); }

void om_context_clear_seq(om_context *c, int seq) {
    if (seq >= 0 && seq < c->n_seq_max) c->seq_len[seq] = 0;
}

int om_context_reuse_prefix(om_context *c, int seq, const int32_t *tokens, int n) {
    if (seq < 0 || seq >= c->n_seq_max) return 0;
    const int32_t *have = c->tokens + (size_t)seq * (size_t)c->n_ctx;
    int len = c->seq_len[seq], keep = 0;
    while (keep < len && keep < n && have[keep] == tokens[keep]) keep++;
    /* A ring cache has overwritten older positions with the later ones being dropped, so
     * only a cache that the new tokens extend as a whole can be kept. */
    if (c->kv.n_ctx < c->n_ctx && keep < len) keep = 0;
    c->seq_len[seq] = keep;
    return keep;
}

static int validate_batch(om_context *c, const om_batch *b) {
    if (b->n_tokens <= 0) return om_errorf("batch is empty");
    if (!b->token || !b->seq || !b->pos) return om_errorf("batch lacks tokens, sequences or positions");
    /* Positions must extend each sequence without gaps; track the length as the batch goes. */
    int32_t *len = malloc((size_t)c->n_seq_max * sizeof(int32_t));
    if (!len) return om_errorf("out of memory");
    memcpy(len, c->seq_len, (size_t)c->n_seq_max * sizeof(int32_t));
    int rc = 0;
    for (int i = 0; i < b->n_tokens && !rc; i++) {
        int32_t t = b->token[i], s = b->seq[i], pos = b->pos[i];
        if (t < 0 || t >= c->model->hp.n_vocab)
            rc = om_errorf("token id %d at batch index %d is outside the vocabulary (%d)", t, i, c->model->hp.n_vocab);
        else if (s < 0 || s >= c->n_seq_max)
            rc = om_errorf("sequence %d at batch index %d is out of range (context holds %d)", s, i, c->n_seq_max);
        else if (pos < 0 || pos >= c->n_ctx)
            rc = om_errorf("position %d of sequence %d is beyond the context of %d positions", pos, s, c->n_ctx);
        else if (pos > len[s])
            rc = om_errorf("position %d of sequence %d leaves a gap (sequence has %d positions)", pos, s, len[s]);
        else
            len[s] = pos + 1;
    }
    free(len);
    return rc;
}

int om_decode(om_context *c, const om_batch *b) {
    if (validate_batch(c, b)) return -1;
    int n_want = 0;
    for (int i = 0; i < b->n_tokens; i++) n_want += b->logits ? b->logits[i] != 0 : i == b->n_tokens - 1;
    const size_t V = (size_t)c->model->hp.n_vocab;
    if (n_want > c->logits_cap) {
        float *l = realloc(c->logits, (size_t)n_want * V * sizeof(float));
        if (!l) return om_errorf("out of memory for %d rows of logits", n_want);
        c->logits = l;
        c->logits_cap = n_want;
    }
    int8_t *want = malloc((size_t)b->n_tokens);
    if (!want) return om_errorf("out of memory");
    for (int i = 0; i < b->n_tokens; i++) want[i] = b->logits ? b->logits[i] != 0 : i == b->n_tokens - 1;
    int done = 0, rc = 0;
    for (int first = 0; first < b->n_tokens && !rc; first += c->n_batch) {
        int n = b->n_tokens - first < c->n_batch ? b->n_tokens - first : c->n_batch;
        om_batch part = {n, b->token + first, b->seq + first, b->pos + first, NULL};
        rc = c->model->family->forward(c, &part, want + first, c->logits + (size_t)done * V);
        for (int i = first; i < first + n; i++) done += want[i];
    }
    free(want);
    if (rc) return -1;
    for (int i = 0; i < b->n_tokens; i++) {
        c->seq_len[b->seq[i]] = b->pos[i] + 1;
        c->tokens[(size_t)b->seq[i] * (size_t)c->n_ctx + (size_t)b->pos[i]] = b->token[i];
    }
    c->n_logits = n_want;
    return 0;
}

const float *om_get_logits(const om_context *c, int i) {
    if (i < 0 || i >= c->n_logits) return NULL;
    return c->logits + (size_t)i * (size_t)c->model->hp.n_vocab;
}
