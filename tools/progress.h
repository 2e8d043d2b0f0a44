/*
 * progress.h — progress lines for long-running commands (inspect --verify of a data
 * directory, gen, bulk loads): done/total, rate and ETA, redrawn in place on stderr at
 * most 4 times a second. Silent when stderr is not a terminal or when quiet is set, so
 * piped output and scripts see nothing of it.
 */
#ifndef STRATA_PROGRESS_H
#define STRATA_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct progress {
    const char *what, *unit;
    uint64_t total, done;
    double start, last_draw;
    bool enabled, drawn;
} progress;

/* total may be 0 when unknown (no ETA then). */
void progress_start(progress *p, const char *what, uint64_t total, const char *unit, bool quiet);
void progress_update(progress *p, uint64_t done);
/* Erases the line so other output can be printed (next update redraws). */
void progress_clear(progress *p);
/* Draws the final line and ends it with a newline. */
void progress_finish(progress *p);

#endif
