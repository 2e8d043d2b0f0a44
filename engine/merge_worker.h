/*
 * merge_worker.h — the background thread that keeps every table of a catalog merged
 * (merge.h) and within its retention (retention.h).
 *
 * One thread, at a lower priority than the rest of the process (nice +10 on its own
 * thread id), so ingest and queries come first. Each pass walks the catalog's tables:
 * a retention sweep (cheap when nothing expired), a few seals and rebuilds of its rollup
 * tiers (rollup_build.h), a save of what the tiers built (at most every
 * ROLLUP_SAVE_EVERY_MS; rollup_store.h), then the table's best merge
 * (merge_table_once; a table whose optimize runs, or that refuses writes, is passed
 * over). After a pass that merged or built something it pauses pause_ms and goes
 * again; after a pass with nothing to do it waits interval_ms. A table whose merges fail
 * (a full disk, a damaged segment) is left alone for 1, 2, 4 ... up to 60 s; a merge
 * that meets a damaged segment reports it (table_report_damage), so /health says so.
 *
 * The engine prints nothing: what a user should read (partitions dropped by retention,
 * merge failures and their end; failures logged at the 1st, 2nd, 4th, 8th... in a row)
 * goes to opts.log as one line each.
 *
 * Threads: start and stop from one thread. merge_worker_stop asks a merge in progress to
 * end (at its next granule; nothing is committed then) and joins the thread: call it
 * before catalog_close. Tables stay valid meanwhile: the worker holds each as a catalog
 * reference while it works on it.
 */
#ifndef STRATA_MERGE_WORKER_H
#define STRATA_MERGE_WORKER_H

#define ROLLUP_SAVE_EVERY_MS 10000

#include <stdint.h>

#include "engine/catalog.h"
#include "engine/error.h"
#include "engine/merge.h"

typedef struct merge_worker merge_worker;

typedef struct merge_worker_opts {
    int64_t interval_ms;  /* wait after a pass with nothing to do; 0: 500 */
    int64_t pause_ms;     /* wait after a pass that merged; 0: 50 */
    int nice;             /* added niceness of the thread; 0: 10 (negative: none) */
    const merge_policy *policy; /* NULL: merge_policy_default */
    void (*log)(const char *msg); /* NULL: nothing is told */
} merge_worker_opts;

/* Starts the worker over cat (borrowed: it must outlive the worker). o may be NULL.
 * Returns 0, STRATA_ENOMEM, or STRATA_EIO when the thread cannot start. */
int merge_worker_start(strata_catalog *cat, const merge_worker_opts *o, merge_worker **out /* OUT */,
                       strata_err *err);
/* Stops it (see above) and frees it; NULL is ignored. */
void merge_worker_stop(merge_worker *w);

#endif
