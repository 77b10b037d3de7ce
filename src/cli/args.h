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

/* The default model (SmolLM2-135M-Instruct, fetched by scripts/fetch-default-model.sh into
 * OMINIX_CACHE or ~/.cache/ominix) when --model is not given; prints an error and returns
 * NULL when it is not there. */
const char *cli_default_model(void);

/* The options `generate` and `chat` share: the model and its run, and sampling (NAN / -1 mean
 * "not given": the model's generation_config.json decides). */
typedef struct cli_sampling {
    const char *model, *system;
    int no_thinking;
    long max_tokens, threads, n_ctx;
    double temperature, top_p, min_p, repeat_penalty, presence_penalty, frequency_penalty;
    long top_k, seed;
} cli_sampling;

#define CLI_COMMON_HELP                                                                            \
    "  --model PATH             Hugging Face folder or .gguf file (default: the default model)\n" \
    "  --system TEXT            a system message\n"                                               \
    "  --no-thinking            ask thinking models to answer directly (enable_thinking=false)\n" \
    "  --threads N              CPU threads (default: all)\n"                                     \
    "  --ctx N                  context length\n"

#define CLI_SAMPLING_HELP                                                                          \
    "  --temperature T          0 is greedy (default: generation_config.json, else 0)\n"          \
    "  --top-k K, --top-p P, --min-p P\n"                                                         \
    "  --repeat-penalty R, --presence-penalty P, --frequency-penalty F\n"                         \
    "  --seed N                 random seed for sampling (default 0)\n"

void cli_sampling_init(cli_sampling *s, long max_tokens);
/* Consumes argv[*i] (and its value) when it is one of the shared options: returns 1 if it
 * was, 0 if it is another option, -1 on a bad value (error printed). */
int cli_sampling_option(cli_sampling *s, int argc, char **argv, int *i);
/* Overrides the model's defaults with the options given. */
struct om_sampler_params;
void cli_sampling_apply(const cli_sampling *s, struct om_sampler_params *p);

#endif
