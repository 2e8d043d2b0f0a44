/*
 * crash_child.h — what the crash tests' children and parents share: the child opens the
 * table (saying why on stderr when it cannot), marks in a state file what it is doing
 * (byte 0: a letter, then a u64 count of the steps started) for the parent, which polls
 * it to kill the child inside a step; and a hash for rows that are a function of their
 * offset alone. Header-only: each crash test is one source file.
 */
#ifndef STRATA_CRASH_CHILD_H
#define STRATA_CRASH_CHILD_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/table.h"

static inline uint64_t crash_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    return x;
}

/* The child: the table in dir with schema s, or NULL (the reason on stderr). */
static inline strata_table *crash_child_open(const char *dir, const strata_schema *s)
{
    strata_err err = {0};
    strata_table *t = NULL;
    if (table_open(dir, s, &t, &err) != 0) {
        fprintf(stderr, "child: %s\n", err.msg);
        return NULL;
    }
    return t;
}

/* The child: the table (crash_child_open) and its state file opened for writing into
 * *fd; NULL when either fails. */
static inline strata_table *crash_child_begin(const char *dir, const strata_schema *s, const char *state, int *fd)
{
    strata_table *t = crash_child_open(dir, s);
    if (t && (*fd = open(state, O_WRONLY)) < 0) {
        fprintf(stderr, "child: %s: cannot open\n", state);
        table_close(t);
        t = NULL;
    }
    return t;
}

/* The child: the state file says `what` (a letter) with `started` steps begun. */
static inline void crash_state_mark(int fd, char what, uint64_t started)
{
    char buf[9];
    buf[0] = what;
    memcpy(buf + 1, &started, 8);
    if (pwrite(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf) {
        /* the parent then sees no step: the run fails loudly */
    }
}

/* The parent: the state file's letter (0 when none yet) and steps started. */
static inline char crash_state_read(int fd, uint64_t *started)
{
    char buf[9] = {0};
    *started = 0;
    if (pread(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf)
        return 0;
    memcpy(started, buf + 1, 8);
    return buf[0];
}

/* The parent: waits up to limit_ms for the child's first step; the steps started. */
static inline uint64_t crash_state_wait(int fd, int limit_ms)
{
    uint64_t started = 0;
    for (int waited = 0; waited < limit_ms && started == 0; waited++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
        crash_state_read(fd, &started);
    }
    return started;
}

#endif
