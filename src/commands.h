/*
 * commands.h — entry points of the strata subcommands, each taking argv from the
 * command name on and returning the process exit status.
 */
#ifndef STRATA_COMMANDS_H
#define STRATA_COMMANDS_H

int cmd_broker(int argc, char **argv);  /* src/cmd_broker.c */
int cmd_demo(int argc, char **argv);    /* src/cmd_demo.c */
int cmd_gen(int argc, char **argv);     /* src/cmd_gen.c */
int cmd_inspect(int argc, char **argv); /* src/cmd_inspect.c */
int cmd_serve(int argc, char **argv);   /* src/cmd_serve.c */

/* cmd_serve that calls ready(base_url, arg) once the server listens and every table is
 * open (base_url like "http://127.0.0.1:8686"), before it serves until a signal. */
typedef void (*serve_ready_fn)(const char *base_url, void *arg);
int cmd_serve_ready(int argc, char **argv, serve_ready_fn ready, void *arg); /* src/cmd_serve.c */

#endif
