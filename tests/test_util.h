/* A minimal test harness: CHECK records a failure with file and line and carries on;
 * om_test_finish prints "N passed, N failed" and returns the exit status. Also helpers for
 * the test fixtures (reading files, running the CLI). */
#ifndef OM_TEST_UTIL_H
#define OM_TEST_UTIL_H

#include <stddef.h>
#include <stdio.h>

extern int om_test_passed, om_test_failed;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (cond) {                                                                   \
            om_test_passed++;                                                         \
        } else {                                                                      \
            om_test_failed++;                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);  \
        }                                                                             \
    } while (0)

#define CHECKF(cond, ...)                                                             \
    do {                                                                              \
        if (cond) {                                                                   \
            om_test_passed++;                                                         \
        } else {                                                                      \
            om_test_failed++;                                                         \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
        }                                                                             \
    } while (0)

int om_test_finish(void);

/* Reads a whole file (NUL-terminated); NULL if it cannot. Caller frees. */
char *om_test_read_file(const char *path, size_t *len);
/* Writes len bytes to path; 0 on success. */
int om_test_write_file(const char *path, const void *data, size_t len);
/* A fresh empty directory under OM_TMP_DIR named after `name`; returns its path (static). */
const char *om_test_tmpdir(const char *name);
/* Runs a shell command, capturing stdout and stderr (each truncated to cap bytes, may be
 * NULL); returns the exit status, or -1 if it could not run. */
int om_test_run(const char *cmd, char *out, size_t out_cap, char *err, size_t err_cap);

#endif

/* Writes a random-weight Qwen3 checkpoint (hidden 32, 2 layers, 2 query heads / 1 KV head of
 * 16, FFN 64, tied embeddings, bf16) with the vocabulary of the tokenizer in
 * tests/data/tokenizers/<tokenizer>/, whose files it copies beside it, into dir. Meant for
 * tests of the text paths, whose results are checked for consistency rather than against a
 * reference. Returns 0 on success. */
int om_test_make_text_model(const char *dir, const char *tokenizer, int vocab, const char *eos_ids_json);
