/*
 * cli.h — what the commands' argument parsing shares: the message for a bad flag or
 * value, and its exit status. Usage errors exit 2 everywhere in strata.
 */
#ifndef STRATA_SRC_CLI_H
#define STRATA_SRC_CLI_H

/* Prints "strata CMD: <message>\n(see strata CMD --help)\n" on stderr; returns 2, the
 * exit status of bad usage, so a parser can `return cli_bad_usage(...)`. */
int cli_bad_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
