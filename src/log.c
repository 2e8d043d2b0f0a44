/*
 * log.c — stamped log lines on stderr for the long-running commands. See log.h.
 * One vfprintf per part under stdio's own stream lock; lines of several threads may
 * interleave only between parts, as they always could.
 */
#include "src/log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/clock.h"
#include "engine/units.h"

void log_line(const char *fmt, ...)
{
    char when[40];
    units_format_rfc3339_ms(clock_wall_ms(), when, sizeof when);
    fprintf(stderr, "%s strata: ", when);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void log_message(const char *msg)
{
    log_line("%s", msg);
}
