/*
 * commands.h — entry points of the strata subcommands, each taking argv from the
 * command name on and returning the process exit status.
 */
#ifndef STRATA_COMMANDS_H
#define STRATA_COMMANDS_H

int cmd_broker(int argc, char **argv);  /* tools/broker_cmd.c */
int cmd_demo(int argc, char **argv);    /* src/demo.c */
int cmd_gen(int argc, char **argv);     /* tools/gen.c */
int cmd_inspect(int argc, char **argv); /* tools/inspect.c */
int cmd_serve(int argc, char **argv);   /* src/serve.c */

#endif
