/* Logger implementation: OMINIX_LOG=debug|info|warn|error|none sets the initial level. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int om_log_level_current = -1;

static om_log_level level_from_env(void) {
    const char *s = getenv("OMINIX_LOG");
    if (!s) return OM_LOG_WARN;
    if (!strcmp(s, "debug")) return OM_LOG_DEBUG;
    if (!strcmp(s, "info")) return OM_LOG_INFO;
    if (!strcmp(s, "error")) return OM_LOG_ERROR;
    if (!strcmp(s, "none")) return OM_LOG_NONE;
    return OM_LOG_WARN;
}

void om_log_set_level(om_log_level level) { om_log_level_current = (int)level; }

void om_log(om_log_level level, const char *fmt, ...) {
    if (om_log_level_current < 0) om_log_level_current = (int)level_from_env();
    if ((int)level < om_log_level_current) return;
    static const char *names[] = {"debug", "info", "warn", "error"};
    fprintf(stderr, "ominix %s: ", names[level]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
