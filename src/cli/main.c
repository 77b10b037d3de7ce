/* The ominix command: dispatches to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} cli_command;

static const cli_command commands[] = {
    {"generate", cmd_generate, "generate text (or tokens) from a prompt"},
    {"chat", cmd_chat, "chat with a model in the terminal"},
    {"bench", cmd_bench, "measure prefill and decode speed and peak memory"},
    {"tokenize", cmd_tokenize, "print the token ids of a text"},
    {"chat-template", cmd_chat_template, "print the prompt a model's chat template makes of messages"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: ominix <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-16s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'ominix <command> --help' shows a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "ominix: unknown command '%s' (try 'ominix --help')\n", argv[1]);
    return 2;
}
