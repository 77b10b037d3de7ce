/* Text streaming (see text_stream.h). */
#include "core/text_stream.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define THINK_OPEN "<think>"
#define THINK_CLOSE "</think>"

typedef enum { STATE_START, STATE_REASONING, STATE_CONTENT } think_state;

struct om_text_stream {
    om_text_stream_params p;
    om_detok *detok;
    char *pending;
    size_t len, cap;
    think_state state;
    int at_segment_start; /* drop newlines that open a segment */
    int stopped, cancelled;
};

int om_text_stream_new(const om_tokenizer *tok, const om_text_stream_params *p, om_text_stream **out) {
    *out = NULL;
    om_text_stream *s = calloc(1, sizeof *s);
    if (!s) return om_errorf("out of memory");
    s->p = *p;
    if (om_detok_new(tok, 1, &s->detok)) {
        free(s);
        return -1;
    }
    s->state = !p->parse_reasoning ? STATE_CONTENT : p->reasoning_open ? STATE_REASONING : STATE_START;
    s->at_segment_start = p->parse_reasoning;
    *out = s;
    return 0;
}

void om_text_stream_free(om_text_stream *s) {
    if (!s) return;
    om_detok_free(s->detok);
    free(s->pending);
    free(s);
}

int om_text_stream_stopped(const om_text_stream *s) { return s->stopped; }

static int append(om_text_stream *s, const char *t, size_t n) {
    if (s->len + n + 1 > s->cap) {
        size_t cap = (s->len + n + 1) * 2;
        char *p = realloc(s->pending, cap);
        if (!p) return om_errorf("out of memory");
        s->pending = p;
        s->cap = cap;
    }
    memcpy(s->pending + s->len, t, n);
    s->len += n;
    s->pending[s->len] = 0;
    return 0;
}

static void emit(om_text_stream *s, om_text_kind kind, const char *t, size_t n) {
    if (s->at_segment_start) {
        while (n && (*t == '\n' || *t == '\r')) {
            t++;
            n--;
        }
        if (!n) return;
        s->at_segment_start = 0;
    }
    if (n && s->p.on_text && !s->cancelled && s->p.on_text(s->p.user, kind, t, n)) s->cancelled = 1;
}

/* Length of the longest suffix of text[0..n) that is a proper prefix of word. */
static size_t partial_suffix(const char *text, size_t n, const char *word) {
    size_t w = strlen(word);
    for (size_t k = w - 1 < n ? w - 1 : n; k > 0; k--)
        if (!memcmp(text + n - k, word, k)) return k;
    return 0;
}

/* Routes decided text through the think-tag state machine. Returns bytes consumed. */
static size_t route(om_text_stream *s, const char *t, size_t n, int final) {
    size_t used = 0;
    while (used < n) {
        const char *p = t + used;
        size_t left = n - used;
        if (s->state == STATE_START) {
            /* Only leading whitespace may come before the opening tag. */
            size_t ws = 0;
            while (ws < left && (p[ws] == ' ' || p[ws] == '\n' || p[ws] == '\r' || p[ws] == '\t')) ws++;
            size_t rest = left - ws, tl = strlen(THINK_OPEN);
            if (rest >= tl && !memcmp(p + ws, THINK_OPEN, tl)) {
                s->state = STATE_REASONING;
                s->at_segment_start = 1;
                used += ws + tl;
                continue;
            }
            if (!final && (rest == 0 || (rest < tl && !memcmp(p + ws, THINK_OPEN, rest)))) return used;
            s->state = STATE_CONTENT;
            continue;
        }
        if (s->state == STATE_REASONING) {
            const char *end = memmem(p, left, THINK_CLOSE, strlen(THINK_CLOSE));
            if (end) {
                emit(s, OM_TEXT_REASONING, p, (size_t)(end - p));
                s->state = STATE_CONTENT;
                s->at_segment_start = 1;
                used += (size_t)(end - p) + strlen(THINK_CLOSE);
                continue;
            }
            size_t hold = final ? 0 : partial_suffix(p, left, THINK_CLOSE);
            emit(s, OM_TEXT_REASONING, p, left - hold);
            return used + left - hold;
        }
        emit(s, OM_TEXT_CONTENT, p, left);
        return n;
    }
    return used;
}

static int process(om_text_stream *s, int final) {
    size_t safe = s->len;
    /* A stop string anywhere in the pending text ends everything there. */
    for (int i = 0; i < s->p.n_stop; i++) {
        const char *st = s->p.stop[i];
        if (!st[0]) continue;
        const char *hit = memmem(s->pending, s->len, st, strlen(st));
        if (hit && (size_t)(hit - s->pending) < safe) {
            safe = (size_t)(hit - s->pending);
            s->stopped = 1;
        }
    }
    if (!s->stopped && !final)
        for (int i = 0; i < s->p.n_stop; i++) {
            if (!s->p.stop[i][0]) continue;
            size_t k = partial_suffix(s->pending, s->len, s->p.stop[i]);
            if (s->len - k < safe) safe = s->len - k;
        }
    size_t used = route(s, s->pending, safe, final || s->stopped);
    if (s->stopped) {
        s->len = 0;
    } else {
        memmove(s->pending, s->pending + used, s->len - used);
        s->len -= used;
    }
    return s->stopped || s->cancelled;
}

int om_text_stream_push(om_text_stream *s, int32_t token) {
    if (s->stopped) return 1;
    const char *t;
    size_t n;
    if (om_detok_push(s->detok, token, &t, &n) || append(s, t, n)) return -1;
    return process(s, 0);
}

int om_text_stream_finish(om_text_stream *s) {
    if (s->stopped) return 0;
    const char *t;
    size_t n;
    if (om_detok_finish(s->detok, &t, &n) || append(s, t, n)) return -1;
    process(s, 1);
    return 0;
}
