/*
 * rollup_store.h — rollup tiers on disk: each tier of a table is stored like a table of
 * its own, in segment files (segment_format.h, version 3: tier segments) under
 * <table dir>/rollup_<interval>/ (a second tier of the same interval: rollup_<interval>_2),
 * partitioned coarser than raw rows: by month for tiers finer than an hour, by year for
 * the others (directories "2026-11", "2026").
 *
 * What a save writes. A save takes the tier as of one instant (rollup_checkpoint_take,
 * under the table's lock) and writes, per tier partition touched since the last save,
 * one segment holding the buckets of the ranges that changed (a delta), then commits the
 * tier's manifest (TIER, below) listing the partition's segments in the order they
 * apply. A range a segment covers replaces every older bucket in it, so a rebuilt
 * bucket, or one emptied by deletions, is written once and wins; a bucket in
 * [built_from, sealed_through) that no segment holds is known empty.
 *
 * Merges. Deltas of one level in a row (ROLLUP_STORE_FAN_IN of them, consecutive in a
 * partition's order) are replaced by one segment a level up, written from the same
 * checkpoint (the tier holds every bucket in memory): it covers their ranges together
 * and holds the buckets as of the checkpoint, which every later segment of the partition
 * still overrides correctly (any change since a segment was written is in a segment
 * after it). optimize replaces every partition's segments by one. Levels stay below
 * ROLLUP_STORE_MAX_LEVEL (the top level's segments merge into one of the same level).
 *
 * Crash safety. New segments are written and fsynced first, then the manifest is
 * replaced (TIER.tmp, fsync, rename, fsync of the directory), then the segments it no
 * longer lists are removed. A crash leaves the old or the new manifest; segments it does
 * not list are removed when the table opens. The manifest holds raw_mark: every raw row
 * the saved buckets did not see is in a raw segment whose id is at least raw_mark, or
 * not yet in a segment (in memtables: in the write-ahead log, or still in Kafka, and
 * so published again at replay). So at open (rollup_persist.c) the buckets those rows
 * fall in are marked dirty, and rebuilt: nothing the tier says is stale. Dirty marks in
 * force at the save are in the manifest too.
 *
 * TIER FORMAT (file TIER in the tier's directory; little-endian):
 *   off size field
 *   0   8    magic "STRATIER"
 *   8   4    u32 format version = 1
 *   12  4    u32 flags = 0
 *   16  8    u64 generation (incremented by every save)
 *   24  8    u64 definition: XXH3 of the tier's segment columns (types and names, as
 *            rollup_store_columns makes them) and its interval; a tier whose schema
 *            changed does not match and is built anew
 *   32  8    u64 raw_mark (above)
 *   40  8    u64 next segment id
 *   48  1    u8 built (0: the tier has nothing yet; every field below is then ignored)
 *   49  8    i64 built_from
 *   57  8    i64 sealed_through
 *   65  8    i64 floor (the tier never builds before it: retention or memory forgot it)
 *   73  4    u32 ndirty, then ndirty x i64 dirty bucket starts (ascending)
 *   ...  4   u32 nsegs, then nsegs x SEG, in the order they apply
 *   end-8 8  u64 XXH3 of every byte before it
 * SEG: u64 id, i64 partition start (ms), u32 level, u64 rows, u64 file bytes,
 *      u32 nranges (>= 1), nranges x (i64 from, i64 to): the ranges of bucket starts
 *      it covers, ascending and disjoint, within its partition. The file is
 *      <partition name>/<id as 16 hex digits>.seg.
 *
 * TIER SEGMENT COLUMNS (rollup_store_columns): "start" (timestamp: the bucket's start;
 * the time column and the sort key), one string column per dimension (its name), then
 * per state k of the tier (rollup_tier_states) named "<fn>(<column>)" ("count" for
 * count; "s<k>" when that would be too long) and a field suffix:
 *   .n   uint64: values seen * 2 + (1 when the state holds a value)   every state
 *   .i   int64:  the integer sum, or the integer min/max               sum, min, max of
 *                                                                      integer columns
 *   .f   float64: the float sum (Neumaier), or float min/max           float sum/avg, float min/max
 *   .c   float64: the sum's compensation                               float sum/avg
 *   .sk  bytes: the sketch's stored form (sketch.h), empty for none    uniq, quantile
 * Rows are sorted by start; one bucket's rows are consecutive.
 *
 * Ownership and threads: a rollup_store belongs to its table (rollup_store_open at
 * open, rollup_store_close at close); saves of one table run one at a time (the caller
 * holds a lock), and never at once with the open. rollup_store_get_stats may be called
 * from any thread at any time: it reads a copy made at each commit, never waiting for a
 * save.
 */
#ifndef STRATA_ROLLUP_STORE_H
#define STRATA_ROLLUP_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/error.h"
#include "engine/rollup.h"
#include "engine/schema.h"

#define ROLLUP_STORE_FAN_IN 4
#define ROLLUP_STORE_MAX_LEVEL 6
#define ROLLUP_STORE_GRANULE_ROWS 512u

typedef struct rollup_store rollup_store;

typedef struct rollup_store_tier_stats {
    uint64_t segments, rows, bytes; /* listed in the manifest */
    uint64_t saves, merges;         /* since open */
    uint64_t generation;
    int64_t last_save_ms;           /* wall clock; 0: none since open */
} rollup_store_tier_stats;

/* Opens the store of a table in table_dir and restores each stored tier into rs
 * (rollup_tier_restore). A tier whose files are missing starts empty; one whose
 * definition changed is removed and one whose files are damaged is moved aside
 * (rollup_<interval>.damaged): both are built again from raw rows, and note (cap bytes)
 * says so. *raw_mark: the lowest raw_mark of the tiers restored (UINT64_MAX when none
 * was). 0 with *out, or an error (STRATA_EIO, STRATA_ENOMEM) that keeps the table shut. */
int rollup_store_open(const char *table_dir, const strata_schema *sc, rollup_set *rs, rollup_store **out,
                      uint64_t *raw_mark /* OUT */, char *note, size_t cap, strata_err *err);
void rollup_store_close(rollup_store *st);

/* Saves checkpoint ck of its tier (above). raw_mark: the next raw segment id when ck was
 * taken. optimize: every partition's segments merged into one. 0 or an error (nothing
 * committed; the caller gives the changes back with rollup_checkpoint_done). */
int rollup_store_save(rollup_store *st, const rollup_checkpoint *ck, uint64_t raw_mark, bool optimize,
                      strata_err *err);

/* Retention is about to drop every raw row before `from`: each tier's manifest says so
 * at once, as committed (its segments, sealed range and dirty buckets unchanged): a
 * tier that outlives raw rows gets the floor (it never builds before it again), the
 * others forget before it. Written before the drop, so no start after a crash reads a
 * tier that would be built again from rows that are gone. 0 or an error (retention then
 * waits). */
int rollup_store_commit_floor(rollup_store *st, int64_t from, strata_err *err);

void rollup_store_get_stats(rollup_store *st, int tier, rollup_store_tier_stats *out /* OUT */);

/* The segments a tier directory's TIER lists, in the order they apply (for strata
 * inspect): 0 with *out (the caller frees it) and *n, or an error (STRATA_ENOTFOUND: no
 * TIER file). */
typedef struct rollup_store_entry {
    uint64_t id;
    char partition[32]; /* "2026-11", "2026" */
    char path[4200];
    uint32_t level;
    uint64_t rows, bytes;
    int64_t from, to;   /* the bucket starts it covers: from its first range to its last */
} rollup_store_entry;
int rollup_store_list(const char *tier_dir, rollup_store_entry **out /* OUT */, uint32_t *n /* OUT */,
                      strata_err *err);

/* The segment schema of tier `tier` (the columns above), into out. */
void rollup_store_columns(const strata_schema *sc, int tier, strata_schema *out /* OUT */);

/* The tier's directory name ("rollup_1m", "rollup_1m_2") into out. */
void rollup_store_dir_name(const strata_schema *sc, int tier, char *out, size_t cap);

#endif
