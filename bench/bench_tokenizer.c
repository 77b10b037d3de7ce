/* Tokenizer benchmark, C side: loads a tokenizer, encodes a text file several times on one
 * thread and prints the time, throughput and a checksum of the ids, to set against
 * bench/bench_tokenizer.py (Hugging Face `tokenizers`) on the same file.
 *
 *   bench_tokenizer TOKENIZER_DIR TEXT_FILE [RUNS]
 *
 * "first" is the first encode (empty word cache), "best" the fastest of the runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/tokenizer.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) *len = (size_t)n;
    return buf;
}

/* FNV-1a over the ids as 32-bit little-endian words (as bench_tokenizer.py). */
static unsigned long long checksum(const int32_t *ids, size_t n) {
    unsigned long long h = 0xCBF29CE484222325ULL;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)ids[i];
        for (int k = 0; k < 4; k++) {
            h ^= (v >> (8 * k)) & 0xFF;
            h *= 0x100000001B3ULL;
        }
    }
    return h;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_tokenizer TOKENIZER_DIR TEXT_FILE [RUNS]\n");
        return 2;
    }
    int runs = argc > 3 ? atoi(argv[3]) : 5;
    if (runs < 1) runs = 1;
    size_t len;
    char *text = read_all(argv[2], &len);
    if (!text) {
        fprintf(stderr, "cannot read %s\n", argv[2]);
        return 1;
    }
    double t0 = now();
    om_tokenizer *tok;
    if (om_tokenizer_load(argv[1], &tok)) {
        fprintf(stderr, "%s\n", om_last_error());
        free(text);
        return 1;
    }
    double load = now() - t0, first = 0, best = 1e30;
    int32_t *ids = NULL;
    size_t n = 0;
    for (int r = 0; r < runs; r++) {
        free(ids);
        t0 = now();
        if (om_tokenizer_encode(tok, text, len, 0, &ids, &n)) {
            fprintf(stderr, "%s\n", om_last_error());
            return 1;
        }
        double t = now() - t0;
        if (r == 0) first = t;
        if (t < best) best = t;
    }
    char *dec;
    size_t dec_len;
    t0 = now();
    if (om_tokenizer_decode(tok, ids, n, 0, &dec, &dec_len)) {
        fprintf(stderr, "%s\n", om_last_error());
        return 1;
    }
    double tdec = now() - t0;
    const char *tname = strrchr(argv[1], '/') && strrchr(argv[1], '/')[1] ? strrchr(argv[1], '/') + 1 : argv[1];
    const char *fname = strrchr(argv[2], '/') ? strrchr(argv[2], '/') + 1 : argv[2];
    printf("ominix (1 thread): %s %s %zu bytes -> %zu ids, checksum %016llx%s\n", tname, fname, len, n,
           checksum(ids, n), dec_len == len && !memcmp(dec, text, len) ? ", decode round-trips" : "");
    printf("  load %.0f ms; encode first %.1f ms, best %.1f ms = %.2f MB/s, %.2f M tokens/s; decode %.1f ms (%zu bytes)\n",
           load * 1e3, first * 1e3, best * 1e3, (double)len / best / 1e6, (double)n / best / 1e6, tdec * 1e3, dec_len);
    free(dec);
    free(ids);
    free(text);
    om_tokenizer_free(tok);
    return 0;
}
