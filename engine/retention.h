/*
 * retention.h — dropping a table's expired partitions (the schema's retention.raw).
 *
 * A partition expires when its end (the next partition's start) is at or before
 * now - retention.raw: with "retention": {"raw": "30d"} and day partitions, the partition
 * of 2024-01-01 goes once now passes 2024-01-31T00:00Z. retention.raw 0 (absent) keeps
 * everything.
 *
 * A sweep (retention_sweep) drops every expired partition, whole:
 *   1. checkpoints that only an expired partition holds at their highest value (rs/,
 *      ep/ and named ones; not cp/, which speaks for its own partition only) are first
 *      committed into the newest partition that stays, so table_source_resume and
 *      table_checkpoint_max answer as before the drop (manifest.h reads them as the
 *      highest over the partitions);
 *   2. each expired partition directory raw/<name> is renamed to raw/.expired-<name>
 *      (atomic: the partition is there whole or not at all), and raw/ is fsynced once
 *      after the renames;
 *   3. the partition leaves the table's list under its locks (merge, write, flush, table
 *      lock, so no append, flush or merge holds it); snapshots taken before keep their
 *      references to its segments and memtables and read them to the end;
 *   4. once raw/ is fsynced, the renamed trees are removed (never before: a crash must
 *      not bring back a partition whose MANIFEST lists files already gone; when that
 *      fsync fails they stay). table_open removes any raw/.expired-* left over.
 * A crash before a rename is durable may bring the partition back: it is dropped again
 * by the next sweep. Rows in memtables of an expired partition are dropped with it.
 *
 * A sweep that finds a merge of the table running (merge lock taken) does nothing: the
 * next one drops what expired.
 *
 * Rollup tiers (rollup.h). A tier with retention of its own (retention.1m, retention.1h,
 * at least retention.raw) outlives the raw rows: an expired partition is dropped only
 * once every such tier has sealed past its end with no dirty bucket, backfill or unsaved
 * change before it (rollup_raw_expiry_ready), so the rollup of a bucket is never lost
 * with the rows it was built from; until then it stays (report.waiting names it). Each
 * sweep also makes those tiers forget the buckets past their own retention
 * (rollup_expire). Tiers without one forget their buckets with the raw rows.
 *
 * Rows that arrive for an already expired partition are accepted like any other (an
 * append never fails for it, and a batch lands all or nothing) and dropped by the next
 * sweep: the serve loop sweeps about once a second, so they are visible to queries for
 * about that long at most. (Refusing them at ingest would turn one old event into the
 * failure of its whole batch; a Kafka replay after a restart reads them again and they
 * go the same way.)
 *
 * On-disk effects: raw/<partition> renamed to raw/.expired-<partition> and removed; the
 * newest staying partition's MANIFEST may be rewritten with carried checkpoints; the
 * write-ahead log files whose rows are all in segments or dropped are deleted (rows
 * dropped while only in memtables would otherwise come back at every start); the
 * rollup tiers' TIER manifests get their new floor first (rollup_store_commit_floor).
 */
#ifndef STRATA_RETENTION_H
#define STRATA_RETENTION_H

#include <stdint.h>

#include "engine/error.h"
#include "engine/table.h"

typedef struct retention_report {
    uint32_t partitions;   /* dropped by this sweep */
    uint64_t rows;         /* rows they held (segments and memtables) */
    char first[32], last[32]; /* the oldest and newest of them, by name */
    char waiting[32];         /* an expired partition kept until the rollup tiers that outlive
                               * raw rows hold it (built, clean, saved); "" when none */
    uint32_t tiers_expired;   /* tiers that forgot buckets past their own retention */
} retention_report;

/* Drops t's partitions expired at now_ms (wall clock, epoch ms), as above. Returns 0 with
 * rep filled (partitions 0: nothing expired, or no retention); on an error the partitions
 * dropped before it stay dropped (rep counts them) and the others stay: STRATA_EIO (a
 * rename, or the fsync of raw/ after them: the drop may not survive a crash), errors of
 * the checkpoint commit (then nothing is dropped; a failed directory fsync there fails
 * the table, as a flush's does), STRATA_ENOTFOUND when t was dropped. */
int retention_sweep(strata_table *t, int64_t now_ms, retention_report *rep /* OUT */,
                    strata_err *err);

#endif
