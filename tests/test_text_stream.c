/* Text streaming tests with the real Qwen3 tokenizer: the text is encoded, then fed back one
 * token at a time as a model would generate it. Checks that reasoning and answer are told
 * apart, that stop strings (also ones spread over several tokens, and ones that only look like
 * a stop string for a while) end the text exactly before them, that held-back text is flushed
 * at the end, and that no delta splits a UTF-8 character. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/text_stream.h"
#include "core/tokenizer.h"
#include "test_util.h"

typedef struct {
    char text[2][1024];
    int deltas;
    int split_utf8;
} collected;

static int on_text(void *user, om_text_kind kind, const char *t, size_t n) {
    collected *c = user;
    /* A delta must not end inside a multi-byte character. */
    size_t i = n;
    while (i > 0 && ((unsigned char)t[i - 1] & 0xC0) == 0x80) i--;
    if (i > 0) {
        unsigned char lead = (unsigned char)t[i - 1];
        size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
        if (n - (i - 1) != want) c->split_utf8 = 1;
    }
    strncat(c->text[kind], t, n);
    c->deltas++;
    return 0;
}

static int run(const om_tokenizer *tok, const char *text, const char *const *stop, int n_stop, int reasoning,
               int open, collected *c) {
    memset(c, 0, sizeof *c);
    int32_t *ids = NULL;
    size_t n = 0;
    if (om_tokenizer_encode(tok, text, strlen(text), 0, &ids, &n)) return -1;
    om_text_stream_params p = {stop, n_stop, reasoning, open, on_text, c};
    om_text_stream *s;
    if (om_text_stream_new(tok, &p, &s)) {
        free(ids);
        return -1;
    }
    int stopped = 0;
    for (size_t i = 0; i < n && !stopped; i++) stopped = om_text_stream_push(s, ids[i]);
    if (!stopped) om_text_stream_finish(s);
    stopped = om_text_stream_stopped(s);
    om_text_stream_free(s);
    free(ids);
    return stopped;
}

int main(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizers/qwen3", OM_TEST_DATA_DIR);
    om_tokenizer *tok = NULL;
    CHECKF(om_tokenizer_load(path, &tok) == 0, "%s", om_last_error());
    if (!tok) return om_test_finish();
    collected c;

    CHECK(run(tok, "<think>\nThe user greets me.\n</think>\n\nHello! How can I help?", NULL, 0, 1, 0, &c) == 0);
    CHECKF(!strcmp(c.text[OM_TEXT_REASONING], "The user greets me.\n"), "reasoning '%s'", c.text[1]);
    CHECKF(!strcmp(c.text[OM_TEXT_CONTENT], "Hello! How can I help?"), "content '%s'", c.text[0]);

    /* No tags: all answer; parsing off: tags stay in the text. */
    CHECK(run(tok, "Just an answer.", NULL, 0, 1, 0, &c) == 0);
    CHECK(!strcmp(c.text[OM_TEXT_CONTENT], "Just an answer.") && !c.text[1][0]);
    CHECK(run(tok, "<think>x</think>y", NULL, 0, 0, 0, &c) == 0);
    CHECK(!strcmp(c.text[OM_TEXT_CONTENT], "<think>x</think>y"));
    /* The prompt opened the reasoning already. */
    CHECK(run(tok, "pondering</think>done", NULL, 0, 1, 1, &c) == 0);
    CHECK(!strcmp(c.text[OM_TEXT_REASONING], "pondering") && !strcmp(c.text[OM_TEXT_CONTENT], "done"));
    /* Reasoning cut off by the end of generation is still delivered. */
    CHECK(run(tok, "<think>unfinished thought", NULL, 0, 1, 0, &c) == 0);
    CHECK(!strcmp(c.text[OM_TEXT_REASONING], "unfinished thought"));

    /* Stop strings. */
    const char *stops[] = {"END OF TEXT", "###"};
    CHECK(run(tok, "The answer is 42. END OF TEXT and more", stops, 2, 0, 0, &c) == 1);
    CHECKF(!strcmp(c.text[OM_TEXT_CONTENT], "The answer is 42. "), "stopped text '%s'", c.text[0]);
    CHECK(run(tok, "a ## b ### c", stops, 2, 0, 0, &c) == 1);
    CHECKF(!strcmp(c.text[OM_TEXT_CONTENT], "a ## b "), "near-miss text '%s'", c.text[0]);
    CHECK(run(tok, "ends with END OF TE", stops, 2, 0, 0, &c) == 0);
    CHECKF(!strcmp(c.text[OM_TEXT_CONTENT], "ends with END OF TE"), "held-back tail '%s'", c.text[0]);
    CHECK(run(tok, "<think>plan ###</think>answer", stops, 2, 1, 0, &c) == 1);
    CHECK(!strcmp(c.text[OM_TEXT_REASONING], "plan ") && !c.text[0][0]);

    /* Multi-byte text arrives whole, character by character. */
    CHECK(run(tok, "日本語のテキスト 👩‍👩‍👧 émoji 🇫🇷 done", NULL, 0, 0, 0, &c) == 0);
    CHECK(!strcmp(c.text[OM_TEXT_CONTENT], "日本語のテキスト 👩‍👩‍👧 émoji 🇫🇷 done"));
    CHECK(!c.split_utf8 && c.deltas > 3);

    om_tokenizer_free(tok);
    return om_test_finish();
}
