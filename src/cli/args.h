/* Small helpers the CLI commands share for parsing option values. */
#ifndef OM_CLI_ARGS_H
#define OM_CLI_ARGS_H

#include <stdint.h>

/* Parses a whole decimal integer in [lo, hi] for option `opt`; prints an error and returns -1. */
int cli_int(const char *opt, const char *s, long lo, long hi, long *out);
int cli_float(const char *opt, const char *s, double *out);
/* Parses "12,7,99" into a malloc'd array; prints an error naming the position and returns -1. */
int cli_id_list(const char *opt, const char *s, int32_t **ids, int *n);
/* The value after option argv[*i], advancing *i; prints an error when it is missing. */
const char *cli_value(int argc, char **argv, int *i);

#endif
