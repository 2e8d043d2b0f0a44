/*
 * rollup_build.h — keeping a table's rollup tiers (rollup.h) up to date: sealing the
 * buckets the watermark has passed and rebuilding the dirty ones, from the raw rows
 * (rollup_build.c says how).
 *
 * The merge thread calls rollup_advance on every pass (merge_worker.c); tests and tools
 * may call it directly. Calls for one table must not overlap (one builder per table).
 */
#ifndef STRATA_ROLLUP_BUILD_H
#define STRATA_ROLLUP_BUILD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/error.h"
#include "engine/table.h"

#define ROLLUP_STEP_MS INT64_C(86400000) /* a seal builds at most a day of buckets at once */
#define ROLLUP_DIRTY_PER_JOB 256u        /* dirty buckets rebuilt by one job */

typedef struct rollup_advance_report {
    uint32_t jobs;            /* seals and rebuilds done */
    uint64_t sealed_buckets;  /* buckets sealed (with rows or without) */
    uint64_t rebuilt_buckets; /* dirty buckets rebuilt */
} rollup_advance_report;

/* Up to max_jobs jobs per tier of t (0 when t has no rollups), stopping early when *stop
 * (may be NULL) is set. 0, or an error with its message (the job's range stays unsealed
 * or dirty, and is tried again on the next call). */
int rollup_advance(strata_table *t, const _Atomic bool *stop, uint32_t max_jobs, rollup_advance_report *rep /* OUT */,
                   strata_err *err);

#endif
