/* Per-thread last-error message (see error.h). */
#include "core/error.h"

#include <stdio.h>
#include <string.h>

#define OM_ERROR_MAX 1024
static _Thread_local char om_error_message[OM_ERROR_MAX];

int om_errorf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(om_error_message, sizeof om_error_message, fmt, ap);
    va_end(ap);
    return -1;
}

int om_error_prefix(const char *fmt, ...) {
    char prefix[OM_ERROR_MAX], old[OM_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, om_error_message, sizeof old);
    size_t n = strlen(prefix);
    memcpy(om_error_message, prefix, n + 1);
    /* The joined message is cut to the buffer, like every message here. */
    size_t room = sizeof om_error_message - n - 1;
    size_t m = strnlen(old, room);
    memcpy(om_error_message + n, old, m);
    om_error_message[n + m] = 0;
    return -1;
}

const char *om_last_error(void) { return om_error_message[0] ? om_error_message : "unknown error"; }

void om_clear_error(void) { om_error_message[0] = 0; }
