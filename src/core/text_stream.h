/* Text streaming on top of token generation: turns generated ids into UTF-8 text deltas
 * (never splitting a character), stops at stop strings (the text before the stop string is
 * emitted, the stop string itself is not), and tells reasoning from answer for models that
 * think in <think>...</think>. Text that might be the start of a stop string or of a tag is
 * held back until it is decided, so no delta ever has to be taken back. */
#ifndef OM_TEXT_STREAM_H
#define OM_TEXT_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "core/tokenizer.h"

typedef enum { OM_TEXT_CONTENT = 0, OM_TEXT_REASONING = 1 } om_text_kind;

/* Receives a delta of text of one kind; return non-zero to stop generating. */
typedef int (*om_text_fn)(void *user, om_text_kind kind, const char *text, size_t len);

typedef struct om_text_stream_params {
    const char *const *stop; /* stop strings (may be NULL) */
    int n_stop;
    int parse_reasoning;  /* split <think>...</think> from the answer */
    int reasoning_open;   /* the prompt already opened <think>: output starts as reasoning */
    om_text_fn on_text;
    void *user;
} om_text_stream_params;

typedef struct om_text_stream om_text_stream;

int om_text_stream_new(const om_tokenizer *tok, const om_text_stream_params *p, om_text_stream **out);
void om_text_stream_free(om_text_stream *s);
/* Feeds a generated token. Returns 1 when a stop string was found (or on_text asked to stop),
 * 0 to go on, -1 on error. */
int om_text_stream_push(om_text_stream *s, int32_t token);
/* Flushes what was held back (at the end of generation). */
int om_text_stream_finish(om_text_stream *s);
/* 1 once a stop string ended the text. */
int om_text_stream_stopped(const om_text_stream *s);

#endif
