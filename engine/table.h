/*
 * table.h — a table on disk and in memory: time partitions, each with its memtables
 * and its committed segments; appends, flushes, recovery and read snapshots.
 *
 * Directory layout: <data>/<table>/raw/<partition>/{MANIFEST, <id>.seg}. (The schema file
 * beside raw/ is written by the layer that parses JSON; the engine takes a parsed schema.)
 *
 * Threads and locks:
 *   - appenders (any number) serialize on the table's write lock; rows go to the active
 *     memtable of their partition. A memtable that is full (rows or bytes) or older than
 *     memtable_max_age_ms is sealed: it stays readable and waits for a flush.
 *   - table_flush writes sealed memtables as segments (segment fsynced, then the
 *     partition manifest committed atomically with the checkpoints noted when the memtable
 *     was sealed), then swaps segment for memtable in one step under the table lock.
 *     Flushes serialize among themselves and never hold the write lock while writing.
 *   - readers take a table_snapshot: the segments and memtables (with row counts) of the
 *     partitions at one instant. Every row is in exactly one of them.
 *
 * Recovery (table_open): for every partition directory, load the manifest, delete
 * MANIFEST.tmp and every *.seg the manifest does not list (a flush that crashed before its
 * commit), and open every listed segment (which checks its footer, dictionaries and
 * bitmaps). A listed segment that is missing or damaged makes table_open fail with a
 * message naming it: strata never silently serves less than it committed. A partition
 * gets an empty MANIFEST when its directory is made, before any segment, so segments in
 * a directory without one mean a lost MANIFEST: table_open fails then too, rather than
 * take committed segments for leftovers.
 */
#ifndef STRATA_TABLE_H
#define STRATA_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/dvec.h"
#include "engine/error.h"
#include "engine/manifest.h"
#include "engine/memtable.h"
#include "engine/row_batch.h"
#include "engine/schema.h"
#include "engine/segment.h"
#include "engine/wal.h"

typedef struct strata_table strata_table;

/* Opens (creating directories as needed) and recovers the table schema->name under
 * data_dir. *out is owned by the caller: table_close. */
int table_open(const char *data_dir, const strata_schema *schema, strata_table **out /* OUT */,
               strata_err *err);
/* Closes without flushing (rows only in memtables are dropped: call table_flush first).
 * Waits for no one: callers stop their threads first. */
void table_close(strata_table *t);

const strata_schema *table_schema(const strata_table *t);
/* The table's rollup tiers (engine/rollup.h), NULL when its schema has none. */
struct rollup_set *table_rollups(strata_table *t);
/* The latest event time appended or committed; INT64_MIN when none. */
int64_t table_max_time(strata_table *t);

/* Rollup tiers on disk (engine/rollup_store.h, rollup_persist.c). table_rollups_save
 * saves what the tiers built since the last save (optimize: and merges each tier
 * partition's segments into one); table_rollups_save_due does so when something is
 * unsaved and every_ms passed since the last save. 0 when there is nothing to do too. */
int table_rollups_save(strata_table *t, bool optimize, strata_err *err);
int table_rollups_save_due(strata_table *t, int64_t every_ms, strata_err *err);
struct rollup_store_tier_stats;
void table_rollup_store_stats(strata_table *t, int tier, struct rollup_store_tier_stats *out /* OUT */);
/* What restoring the tiers at open did worth a log line; "" when nothing. */
const char *table_rollup_note(const strata_table *t);

/* How far past the wall clock an event time may push what the table calls its latest
 * time (clock skew between producers and this host). */
#define TABLE_FUTURE_SKEW_MS INT64_C(300000)
/* The latest event time as the watermark and the late policy read it: table_max_time,
 * but never past now_ms (wall clock) + TABLE_FUTURE_SKEW_MS, so one event stamped years
 * ahead neither seals the future nor makes every other event late. INT64_MIN when none. */
int64_t table_latest_time(strata_table *t, int64_t now_ms);
const char *table_dir(const strata_table *t);

/* Appends every row of b, or none of them: on any error nothing of b is in the table or
 * visible to readers, and a snapshot sees all of b or none of it. Returns 0; STRATA_EINVAL
 * for a row whose time cannot be partitioned; STRATA_EFULL when the table's memtables
 * hold more than memory_budget_bytes — flush, then retry; STRATA_ENOMEM; STRATA_EIO (a
 * partition directory cannot be made durable, or the table failed: table_failure);
 * STRATA_ENOTFOUND when the table was dropped (table_mark_dropped). */
int table_append(strata_table *t, const row_batch *b, strata_err *err);

/* Appends b like table_append, and writes it, under the same lock, as one record of the
 * table's write-ahead log (engine/wal.h, under <table>/wal/; made by the first such
 * append): *lsn gets the record's number (0 when b has no rows). The rows are visible to
 * readers at once and durable once table_log_sync(t, *lsn) returned 0; a memtable
 * holding them is flushed by size and age like any other, its commit records how far
 * the log is covered (the cp/log and rs/log checkpoints of manifest.h), and log files
 * wholly covered are deleted. After a crash table_open replays every record the
 * segments do not cover, so each logged row is in the table exactly once. Errors as
 * table_append; a failed log write fails the table (STRATA_EIO). */
int table_append_logged(strata_table *t, const row_batch *b, uint64_t *lsn /* OUT */,
                        strata_err *err);
/* Returns once log record lsn, and every one before it, is durable: one fdatasync
 * covers every record written while the previous one ran (group commit). 0, or
 * STRATA_EIO when the log failed (the table then fails: table_failure). */
int table_log_sync(strata_table *t, uint64_t lsn, strata_err *err);
/* True when log record lsn is durable already. */
bool table_log_durable(strata_table *t, uint64_t lsn);
/* The write-ahead log's figures (all 0 while the table has none). */
void table_log_stats(strata_table *t, wal_stats *out /* OUT */);
/* The source name logged rows are appended under (the cp/ and rs/ checkpoints of
 * manifest.h name it), Kafka partition 0. */
#define TABLE_LOG_SOURCE "log"
/* What table_open's recovery did worth a log line (log records replayed, a torn tail
 * cut), "" when nothing. Valid until table_close. */
const char *table_recovery_note(const strata_table *t);

/* Exactly-once appends from an ordered source (a Kafka partition). Every row of b comes
 * from (source, kpart) with offset offsets[r], increasing; next_offset is where the
 * source stands after this batch (past rows that were not appended, e.g. dead letters).
 * Rows a time partition has already committed (offset below that partition's committed
 * offset: a replay after a restart) are dropped and counted in *skipped (may be NULL).
 * Each flush commits, with its segment, the partition's committed offset and the
 * table-wide resume point: the lowest offset still only in memtables, else the position.
 * So after any crash, reading the source again from table_source_resume and appending
 * through this function puts every row in the table exactly once. Errors as table_append;
 * STRATA_EINVAL when source is too long (over 250 bytes). */
int table_append_sourced(strata_table *t, const row_batch *b, const char *source, int32_t kpart,
                         const int64_t *offsets, int64_t next_offset, uint64_t *skipped,
                         strata_err *err);
/* Where to read (source, kpart) from after a restart (the highest resume point any
 * partition committed), or -1 when no flush ever recorded one. */
int64_t table_source_resume(strata_table *t, const char *source, int32_t kpart);
/* Stops counting (source, kpart)'s position toward resume points (the source partition
 * went to another node after a full flush). */
void table_source_forget(strata_table *t, const char *source, int32_t kpart);

/* The highest value any partition committed for checkpoint (name, kpart) (a name given
 * to table_note_checkpoint), or -1 when none did. */
int64_t table_checkpoint_max(strata_table *t, const char *name, int32_t kpart);

/* Records that the rows appended so far include (source, partition) up to next_offset
 * (exclusive). Memtables sealed after this carry it to their manifest commit. */
int table_note_checkpoint(strata_table *t, const char *source, int32_t kpart,
                          int64_t next_offset);

/* Seals memtables (all non-empty ones with force, else only full or old ones) and writes
 * every sealed memtable as a segment. Returns 0 or the first error (the failed memtable
 * stays sealed and readable; a later flush retries it). A failure after a manifest was
 * replaced (its directory fsync failed) cannot be retried: the table then fails (below).
 * STRATA_ENOTFOUND once the table was dropped. */
int table_flush(strata_table *t, bool force, strata_err *err);

/* A failed table: a commit whose durability is unknown (the directory fsync after a
 * manifest rename failed). Its segments stay as committed, reads go on, and every append
 * and flush is refused with the reason until a restart re-reads what the disk holds.
 * Returns true with the reason in buf when t failed; false (buf "") otherwise. */
bool table_failure(strata_table *t, char *buf, size_t cap);

/* Damage found while reading committed segments (a checksum or decode failure a query
 * met): table_report_damage records it (a count and the latest message);
 * table_damage returns the count and writes the latest message into buf. Reads of other
 * data go on; the damage stays reported until a restart re-opens the table. */
bool table_report_damage(strata_table *t, const char *msg); /* true: a message not the latest */
uint64_t table_damage(strata_table *t, char *buf, size_t cap);

/* Dropping: table_writes_pause waits for an append or flush in progress and holds every
 * later one back; table_writes_resume lets them go on, or, with dropped, refuses them for
 * good (STRATA_ENOTFOUND, "was dropped"). The catalog pauses a table around the rename
 * that drops it, so nothing of the old table is written where a new table of the same
 * name may live, and a drop that fails leaves the table as it was. Reads and snapshots
 * go on throughout. Every pause is followed by one resume, from the same thread. */
void table_writes_pause(strata_table *t);
void table_writes_resume(strata_table *t, bool dropped);

/* Flushes that fail without failing the table (a segment that cannot be written: a
 * full disk, a directory removed under the server) leave their rows in memory and are
 * retried; this record makes them visible. failures: since open; failing: since the
 * last flush that wrote a segment (0: flushes work), for failing_for_ms, the latest
 * message in message (""). Returns failing. */
typedef struct table_flush_record {
    uint64_t failures;
    uint64_t failing;
    int64_t failing_for_ms;
    char message[512];
} table_flush_record;
uint64_t table_flush_trouble(strata_table *t, table_flush_record *out /* OUT */);

/* True, with the path and reason in buf, when the table's directory of partitions is not
 * there any more (moved or deleted while the table is open): reads go on from open
 * files, but nothing new can be written. A stat, cheap enough for every /health. */
bool table_storage_missing(strata_table *t, char *buf, size_t cap);

/* True when some memtable is due for sealing or some sealed memtable awaits a flush. */
bool table_flush_due(strata_table *t);

typedef struct table_stats {
    uint64_t partitions;
    uint64_t segments;
    uint64_t segment_rows;
    uint64_t segment_bytes;
    uint64_t memtables;
    uint64_t memtable_rows;
    uint64_t memtable_bytes;
    uint64_t flushes;       /* since open */
    uint64_t flush_ns;      /* total time in flushes since open */
    uint64_t rows_flushed;  /* since open */
    int64_t max_time;       /* latest event time appended or committed; INT64_MIN: none.
                             * The watermark is max_time - the schema's lateness. */
    /* Merges (engine/merge.h) and retention (engine/retention.h), since open. */
    uint64_t merges;
    uint64_t merge_ns;             /* total time in merges */
    uint64_t merge_rows;           /* rows read by merges */
    uint64_t merge_rows_dropped;   /* rows merges' filters dropped */
    uint64_t merge_bytes_written;  /* bytes of the segments merges wrote */
    uint64_t max_partition_segments; /* segments of the partition holding the most (now) */
    uint64_t expired_partitions;   /* partitions retention dropped */
    uint64_t expired_rows;         /* rows they held */
    /* Dedup tables (engine/dedup.h), now: */
    uint64_t superseded_rows;   /* rows held (segments, memtables) that newer versions
                                 * replaced; queries skip them, merges remove them */
    uint64_t dedup_keys;        /* keys in the partitions' indexes (each with its winner) */
    uint64_t dedup_index_bytes; /* memory those indexes keep */
    uint64_t dedup_scratch_bytes; /* and what appends use meanwhile (freed at flushes) */
    uint64_t dedup_cold_partitions; /* partitions outside the window: keys looked up on disk */
} table_stats;
void table_get_stats(strata_table *t, table_stats *st /* OUT */);

/* ---- storage, segment by segment (table_segments.c) ----------------------------------- */

typedef struct table_storage_seg {
    uint64_t id, rows, bytes;
    int64_t min_time, max_time;
    uint32_t level; /* 0: flushed from memory; above: merged that many times over */
} table_storage_seg;

typedef struct table_storage_part {
    int64_t key;       /* partition start, epoch ms */
    char name[32];     /* its directory name: 2024-01-31 */
    size_t first_seg;  /* its segments: segs[first_seg .. first_seg + nsegs) */
    uint32_t nsegs;
    uint64_t rows, bytes;  /* of its segments */
    uint64_t memtable_rows; /* rows not yet flushed */
} table_storage_part;

typedef struct table_storage {
    table_storage_part *parts; /* by key */
    size_t nparts;
    table_storage_seg *segs;
    size_t nsegs;
} table_storage;

/* Every partition of t with its committed segments and memtable rows, as of one instant:
 * 0 and *out (the caller frees it with table_storage_free), or STRATA_ENOMEM. */
int table_list_segments(strata_table *t, table_storage *out /* OUT */, strata_err *err);
void table_storage_free(table_storage *s);

/* ---- snapshots -------------------------------------------------------------------- */

typedef struct snapshot_part {
    int64_t key;     /* partition start, epoch ms */
    int64_t end;     /* next partition's start */
    uint32_t nsegs;
    segment **segs;
    uint32_t nmts;
    memtable **mts;
    uint64_t *mt_rows; /* rows of mts[i] in this snapshot */
    /* Dedup tables: the rows of segs[i] and mts[i] superseded in this snapshot (dvec.h;
     * NULL: none, and both arrays NULL for tables without dedup). Every query skips them
     * (and, with the schema's `deleted` column, rows where it is true). */
    dvec **seg_dv;
    dvec **mt_dv;
} snapshot_part;

typedef struct table_snapshot {
    uint32_t nparts;
    snapshot_part *parts; /* ordered by key */
    /* Tables with rollups: the tiers at the same instant (engine/rollup.h); NULL otherwise. */
    struct rollup_view *rollup;
    /* Raw rows before it were dropped by retention (INT64_MIN: none yet): tiers that
     * outlive them answer that range alone. */
    int64_t raw_floor;
    void *priv;
} table_snapshot;

/* A consistent view of the table; valid until table_snapshot_release. Partitions are
 * limited to those overlapping [from_ms, to_ms) (use INT64_MIN/INT64_MAX for all).
 * Returns NULL when out of memory. */
table_snapshot *table_snapshot_acquire(strata_table *t, int64_t from_ms, int64_t to_ms);
void table_snapshot_release(table_snapshot *s);

#endif
