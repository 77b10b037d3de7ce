/* The subcommands of the ominix CLI; each lives in its own cmd_*.c and returns the exit status. */
#ifndef OM_CLI_COMMANDS_H
#define OM_CLI_COMMANDS_H

int cmd_generate(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_chat_template(int argc, char **argv);

#endif
