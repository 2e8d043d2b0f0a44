/*
 * main.c — the strata command line: dispatches `strata <command>` to its implementation.
 *
 * Each command lives in its own file, src/cmd_<name>.c (the libraries it calls are in
 * tools/, http/, ingest/ and engine/), and takes argc/argv from the command name on; this
 * file owns only the top-level help and the dispatch table.
 */
#include <stdio.h>
#include <string.h>

#include "src/commands.h"

#define STRATA_VERSION "0.1.0"

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"demo", cmd_demo, "embedded broker + live order stream + server: try strata in one command"},
    {"serve", cmd_serve, "serve tables over HTTP: ingest, query, metrics"},
    {"inspect", cmd_inspect, "read segment files and data directories offline"},
    {"broker", cmd_broker, "run an embedded Kafka-protocol broker (development, tests)"},
    {"gen", cmd_gen, "generate order events: NDJSON to stdout or produced to Kafka"},
};

static void usage(FILE *f)
{
    fprintf(f, "strata %s — a columnar time-series OLAP store for event streams\n\n"
               "usage: strata <command> [options]\n\ncommands:\n",
            STRATA_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n`strata <command> --help` documents each command's flags.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "help") == 0 && argc == 3) { /* strata help CMD: CMD --help */
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
            if (strcmp(argv[2], commands[i].name) == 0) {
                char *help_argv[] = {argv[2], "--help", NULL};
                return commands[i].run(2, help_argv);
            }
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("strata %s\n", STRATA_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "strata: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
