/* The one logger: levelled messages to stderr (library code never prints to stdout). */
#ifndef OM_LOG_H
#define OM_LOG_H

typedef enum { OM_LOG_DEBUG, OM_LOG_INFO, OM_LOG_WARN, OM_LOG_ERROR, OM_LOG_NONE } om_log_level;

void om_log_set_level(om_log_level level);
void om_log(om_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define OM_DEBUG(...) om_log(OM_LOG_DEBUG, __VA_ARGS__)
#define OM_INFO(...) om_log(OM_LOG_INFO, __VA_ARGS__)
#define OM_WARN(...) om_log(OM_LOG_WARN, __VA_ARGS__)

#endif
