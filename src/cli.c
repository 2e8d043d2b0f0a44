/*
 * cli.c — usage errors of the commands. See cli.h.
 */
#include "src/cli.h"

#include <stdarg.h>
#include <stdio.h>

int cli_bad_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "strata %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see strata %s --help)\n", cmd);
    va_end(ap);
    return 2;
}
