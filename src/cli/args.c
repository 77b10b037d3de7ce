/* Option value parsing for the CLI (see args.h). */
#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "core/sampler.h"

int cli_int(const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "ominix: %s expects an integer in %ld..%ld, got '%s'\n", opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_float(const char *opt, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        fprintf(stderr, "ominix: %s expects a number, got '%s'\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_id_list(const char *opt, const char *s, int32_t **ids, int *n) {
    int cap = 16, count = 0;
    int32_t *v = malloc((size_t)cap * sizeof *v);
    const char *p = s;
    if (!v) return -1;
    while (*p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (errno || end == p || x < 0 || x > INT32_MAX || (*end && *end != ',')) {
            fprintf(stderr, "ominix: %s: entry %d is not a token id (at character %d of '%s')\n", opt, count + 1,
                    (int)(p - s) + 1, s);
            free(v);
            return -1;
        }
        if (count == cap) {
            int32_t *nv = realloc(v, (size_t)(cap *= 2) * sizeof *v);
            if (!nv) {
                free(v);
                return -1;
            }
            v = nv;
        }
        v[count++] = (int32_t)x;
        p = *end ? end + 1 : end;
    }
    if (!count) {
        fprintf(stderr, "ominix: %s is empty\n", opt);
        free(v);
        return -1;
    }
    *ids = v;
    *n = count;
    return 0;
}

const char *cli_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "ominix: option %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

void cli_sampling_init(cli_sampling *s, long max_tokens) {
    s->model = s->system = NULL;
    s->no_thinking = 0;
    s->max_tokens = max_tokens;
    s->threads = s->n_ctx = 0;
    s->temperature = s->top_p = s->min_p = s->repeat_penalty = NAN;
    s->presence_penalty = s->frequency_penalty = 0;
    s->top_k = -1;
    s->seed = 0;
}

int cli_sampling_option(cli_sampling *s, int argc, char **argv, int *i) {
    static const struct {
        const char *name;
        size_t offset;
    } floats[] = {
        {"--temperature", offsetof(cli_sampling, temperature)},
        {"--top-p", offsetof(cli_sampling, top_p)},
        {"--min-p", offsetof(cli_sampling, min_p)},
        {"--repeat-penalty", offsetof(cli_sampling, repeat_penalty)},
        {"--presence-penalty", offsetof(cli_sampling, presence_penalty)},
        {"--frequency-penalty", offsetof(cli_sampling, frequency_penalty)},
    };
    const char *a = argv[*i], *v;
    for (size_t k = 0; k < sizeof floats / sizeof floats[0]; k++) {
        if (strcmp(a, floats[k].name)) continue;
        if (!(v = cli_value(argc, argv, i))) return -1;
        return cli_float(a, v, (double *)((char *)s + floats[k].offset)) ? -1 : 1;
    }
    if (!strcmp(a, "--no-thinking")) {
        s->no_thinking = 1;
        return 1;
    }
    if (!strcmp(a, "--model") || !strcmp(a, "--system")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        *(a[2] == 'm' ? &s->model : &s->system) = v;
        return 1;
    }
    if (!strcmp(a, "--max-tokens")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        return cli_int(a, v, 0, 1 << 24, &s->max_tokens) ? -1 : 1;
    }
    if (!strcmp(a, "--threads")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        return cli_int(a, v, 1, 1024, &s->threads) ? -1 : 1;
    }
    if (!strcmp(a, "--ctx")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        return cli_int(a, v, 1, 1 << 24, &s->n_ctx) ? -1 : 1;
    }
    if (!strcmp(a, "--top-k")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        return cli_int(a, v, 0, 1 << 30, &s->top_k) ? -1 : 1;
    }
    if (!strcmp(a, "--seed")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        return cli_int(a, v, 0, 0x7fffffffL, &s->seed) ? -1 : 1;
    }
    return 0;
}

void cli_sampling_apply(const cli_sampling *s, om_sampler_params *p) {
    if (!isnan(s->temperature)) p->temperature = (float)s->temperature;
    if (s->top_k >= 0) p->top_k = (int)s->top_k;
    if (!isnan(s->top_p)) p->top_p = (float)s->top_p;
    if (!isnan(s->min_p)) p->min_p = (float)s->min_p;
    if (!isnan(s->repeat_penalty)) p->repetition_penalty = (float)s->repeat_penalty;
    p->presence_penalty = (float)s->presence_penalty;
    p->frequency_penalty = (float)s->frequency_penalty;
    p->seed = (uint64_t)s->seed;
}

const char *cli_default_model(void) {
    static char path[4096];
    const char *cache = getenv("OMINIX_CACHE"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (cache && cache[0]) snprintf(path, sizeof path, "%s", cache);
    else if (xdg && xdg[0]) snprintf(path, sizeof path, "%s/ominix", xdg);
    else snprintf(path, sizeof path, "%s/.cache/ominix", home ? home : ".");
    size_t n = strlen(path);
    snprintf(path + n, sizeof path - n, "/SmolLM2-135M-Instruct.Q4_1.gguf");
    if (access(path, R_OK) == 0) return path;
    fprintf(stderr, "ominix: no --model given and the default model %s is not there (run scripts/fetch-default-model.sh)\n",
            path);
    return NULL;
}
