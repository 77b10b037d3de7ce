/* Error reporting for library code: a function that fails records a one-line message
 * (naming the file, tensor, field or position at fault) and returns a non-zero status;
 * the caller reads the message with om_last_error(). Messages are per thread. */
#ifndef OM_ERROR_H
#define OM_ERROR_H

#include <stdarg.h>

/* Records the message and returns -1, so that `return om_errorf(...)` reads naturally. */
int om_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prepends context ("loading model: ") to the message already recorded; returns -1. */
int om_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *om_last_error(void);
void om_clear_error(void);

#endif
