/* libFuzzer target for the Jinja interpreter: the input is template source. Whatever compiles
 * is rendered over a fixed conversation (messages with tool calls, tools, special tokens)
 * under small limits, so that runaway templates end in an error rather than a timeout; every
 * path must return cleanly and leave nothing behind (LeakSanitizer checks). Seed it with the
 * real templates: fuzz_chat_template tests/data/chat_templates */
#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "core/jinja.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char VARS[] =
    "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_generation_prompt\": true, \"documents\": null,"
    " \"enable_thinking\": false,"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Weather\","
    "   \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"},"
    "   \"days\": {\"type\": [\"integer\", \"null\"]}}, \"required\": [\"city\"]}}}],"
    " \"messages\": [{\"role\": \"system\", \"content\": \"You are helpful.\"},"
    "  {\"role\": \"user\", \"content\": \"Weather in Paris? caf\\u00e9 \\ud83d\\ude00\"},"
    "  {\"role\": \"assistant\", \"content\": \"\", \"reasoning_content\": \"Call the tool.\","
    "   \"tool_calls\": [{\"id\": \"call00001\", \"type\": \"function\","
    "   \"function\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 1.5}}}]},"
    "  {\"role\": \"tool\", \"tool_call_id\": \"call00001\", \"content\": \"sunny\"},"
    "  {\"role\": \"assistant\", \"content\": \"<think>\\nok\\n</think>\\n\\nIt is sunny.\"},"
    "  {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"thanks\"}]}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static cJSON *vars;
    if (!vars && !(vars = cJSON_Parse(VARS))) abort();
    jinja_template *t = jinja_compile((const char *)data, size, "chat template");
    if (!t) return 0;
    jinja_limits lim = {.max_output = 1 << 20, .max_depth = 40, .max_iterations = 20000};
    size_t len;
    char *out = jinja_render(t, vars, &lim, &len);
    free(out);
    jinja_template_free(t);
    return 0;
}
