/*
 * merge.h — background merges of a partition's segments: which adjacent segments to
 * merge (merge_select, a pure function of the manifest), how several sorted segments
 * become one (merge_segments), and the merge of a table's partition committed next to
 * its flushes (merge_table_once for the background worker, merge_table_optimize for
 * POST /tables/{name}/optimize). Retention is retention.h's; the thread that runs both
 * is merge_worker.h's.
 *
 * THE SELECTOR (merge_select). Among the segments of one partition, in manifest order
 * (flush order), a candidate is a run of 2..max_fan_in adjacent segments such that
 *   - the merged segment stays bounded: the run's rows <= max_rows and the run's bytes
 *     <= max_bytes (bytes estimated as the inputs' sum; a zstd rewrite of lz4 input is
 *     smaller in practice);
 *   - its segments are of similar size: the largest is at most max_size_ratio times the
 *     smallest, in bytes counted as at least small_bytes and in rows counted as at least
 *     small_rows (so a run of tiny flushes always qualifies, and a big segment is not
 *     rewritten to absorb one small one);
 *   - it is balanced: no input is over 1.5 times the rest of the run, in bytes and in
 *     rows (sizes counted as above), so a segment is rewritten only when at least 2/3 of
 *     its size joins it;
 *   - a run larger than big_run_bytes has at least big_min_fan_in segments: big data is
 *     rewritten only when that removes several segments, which bounds how often a row is
 *     rewritten (its level) to about log_big_min_fan_in(max_bytes / big_run_bytes) more
 *     times once its segment is big.
 * The chosen candidate has the lowest cost per segment removed:
 *   score = (run bytes + fixed_cost_bytes * run length) / (run length - 1),
 * ties going to the earlier run. The fixed cost stands for the per-segment work (open,
 * footer, seeks) and makes longer runs of tiny segments win over shorter ones. The output
 * gets level max(input levels) + 1, capped at MERGE_MAX_LEVEL (flushes write level 0).
 * Defaults (merge_policy_default), and why:
 *   max_fan_in 10        memory of a merge: one granule per column per input
 *   max_rows 16Mi rows   the size bound of a segment ("bounded segments"): 2048 granules
 *   max_bytes 1 GiB      ... and bytes; a query thread reads a segment in minutes at worst
 *   max_size_ratio 4     tiers of similar size, as tiered compaction: in bytes AND in
 *                        rows (a well-compressed segment of millions of rows is small
 *                        in bytes, yet rewriting it for every 1 s flush cost 340 times
 *                        the rows ingested, found by a black-box trial)
 *   small_bytes 256 KiB  flushes of a quiet table are all "similar"; with small_rows
 *   small_rows 16384     this bounds what one tiny flush can make a merge rewrite:
 *                        4 x 256 KiB and 4 x 16384 rows
 *   big_run_bytes 64 MiB above this a merge must remove at least 3 segments
 *   big_min_fan_in 4
 *   fixed_cost_bytes 1 MiB
 * So segments per partition stay bounded under any ingest pattern: runs of similar small
 * segments always merge, and each size tier holds fewer than about max(big_min_fan_in,
 * max_size_ratio) segments before it merges into the next.
 *
 * THE MERGE (merge_segments). The inputs are sorted by the sort key: the hour of the
 * time (SEGMENT_SORT_BUCKET_MS), then the schema's order_by (segment.h), so they are
 * merged k-way, never sorted whole: one cursor per input holds one decoded granule per
 * column, a heap orders the cursors by their current row's sort key (the same
 * order-preserving images memtable_flush.c sorts by: the bucket and signed ints with the
 * sign bit flipped, strings by their code in the union dictionary, floats by their IEEE
 * total order), ties broken by input index, so rows equal in the sort key keep input
 * (manifest) order then row order: the merge is stable, and "ingested last" stays last.
 * An input written before the bucket was part of the key (format version 1: sorted by
 * order_by alone) whose rows span more than one bucket is not in that order: it alone is
 * decoded whole and its row numbers sorted in memory (stably) before the merge, which
 * costs its rows x columns x 8 bytes once; every merge output is in the new order, so
 * such inputs disappear as merges go on. Version-1 files within one bucket (every fresh
 * flush, and every segment of an hour-partitioned table) are in both orders already. String
 * columns get the union of the inputs' dictionaries (each sorted: a k-way union; values
 * whose bitmap is empty, left by a filter in an earlier merge, are left out) and every
 * code is remapped. Rows pass the filter (merge_opts.keep, default keep all) and are
 * written in granules through segment_writer with zstd. Memory: inputs x columns x one
 * granule of 8-byte values, the union dictionaries and the remaps; nothing proportional
 * to the rows, except for a re-sorted version-1 input (above).
 *
 * THE COMMIT (merge_table_once, merge_table_optimize). Per table, one merge at a time (a
 * merge lock). The inputs are taken (references) under the table lock; the merged segment
 * is written and fsynced under no lock, opened and checked; then under flush_lock (held
 * only for this step, so flushes wait for a commit, never for a merge): a table that was
 * dropped or failed meanwhile aborts the merge (the new file is deleted); the next
 * manifest is the partition's current one with the inputs replaced by the output in
 * their place (checkpoints carried over as they are), committed with manifest_write;
 * then under the table lock the partition's segment list changes in one step. Snapshots
 * hold references to the old segments and read them to the end. Last, the inputs' files
 * are unlinked. A crash before the commit leaves the new file unlisted, after it the old
 * files unlisted: table_open deletes *.seg files the manifest does not list, either way.
 * A commit whose directory fsync failed fails the table (as a flush's does) and keeps the
 * old files, which the old manifest, if it comes back, still lists.
 *
 * On-disk effects: one new file <id>.seg per merge in the partition directory, MANIFEST
 * replaced, the inputs' files removed.
 */
#ifndef STRATA_MERGE_H
#define STRATA_MERGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/error.h"
#include "engine/manifest.h"
#include "engine/segment.h"
#include "engine/table.h"

#define MERGE_MAX_LEVEL 15
/* Inputs of one merge of merge_table_optimize (more segments take several passes). */
#define MERGE_OPTIMIZE_FAN_IN 16

/* ---- the selector --------------------------------------------------------------------- */

typedef struct merge_policy {
    uint32_t max_fan_in;
    uint64_t max_rows, max_bytes;
    double max_size_ratio;
    uint64_t small_bytes;
    uint64_t small_rows;
    uint64_t big_run_bytes;
    uint32_t big_min_fan_in;
    uint64_t fixed_cost_bytes;
} merge_policy;

/* The defaults above. */
void merge_policy_default(merge_policy *p /* OUT */);

/* A chosen run: segs[first .. first+count). */
typedef struct merge_pick {
    uint32_t first, count;
    uint32_t level;   /* the output's level */
    uint64_t rows, bytes;
    double score;     /* lower is better */
} merge_pick;

/* The best run of segs[0..n) under pol (see above); false when no run qualifies. Pure:
 * reads only its arguments. */
bool merge_select(const manifest_segment *segs, uint32_t n, const merge_policy *pol,
                  merge_pick *out /* OUT */);

/* ---- the merge ------------------------------------------------------------------------ */

/* One row of the merged stream, as the filter sees it: which input and which row of it;
 * its values through merge_row_*. Valid during the call only. */
typedef struct merge_row_view {
    uint32_t input; /* index into the inputs (manifest order) */
    uint64_t row;   /* row number inside that input */
    const void *priv;
} merge_row_view;

int64_t merge_row_int(const merge_row_view *r, int col);     /* int types, uint64 as bits */
double merge_row_float(const merge_row_view *r, int col);    /* float64 */
strata_str merge_row_str(const merge_row_view *r, int col);  /* string; valid during the call */

/* Per-row filter: return false to drop the row from the merged segment. */
typedef bool (*merge_keep_fn)(void *ctx, const merge_row_view *row);

typedef struct merge_opts {
    merge_keep_fn keep;        /* NULL: keep every row */
    void *keep_ctx;
    uint32_t granule_rows;     /* 0: SEGMENT_GRANULE_ROWS (tests use small granules) */
    const atomic_bool *stop;   /* may be NULL; when it turns true the merge ends with
                                * STRATA_EINVAL "merge stopped" and leaves nothing */
    bool skip_if_busy;         /* merge_table_once: when another merge of the table runs
                                * (optimize), return at once, nothing merged */
} merge_opts;

typedef struct merge_out {
    uint64_t rows_read;   /* rows of the inputs */
    uint64_t rows_dropped; /* rows the filter dropped */
    uint32_t inputs_resorted; /* inputs not in sort key order, re-sorted in memory */
    segment_info info;    /* of the written segment; info.nrows 0: every row was dropped
                           * and no file was written */
} merge_out;

/* Merges in[0..n) (each sorted by the sort key, or a version-1 file sorted by sc's
 * order_by, with sc's columns) into a new segment file at path (must not exist), zstd,
 * sorted by the sort key (bucket, order_by), filtered by o->keep (o may be
 * NULL). On error no file is left at path. Returns 0 or an error naming the file:
 * STRATA_EINVAL (an input of other columns or sort key, over SEGMENT_MAX_ROWS rows,
 * stopped), STRATA_ENOMEM, a read error of an input (STRATA_ECORRUPT, STRATA_EIO), or
 * segment_writer's. */
int merge_segments(const strata_schema *sc, segment *const *in, uint32_t n, const char *path,
                   const merge_opts *o, merge_out *out /* OUT */, strata_err *err);

/* ---- merges of a table ---------------------------------------------------------------- */

typedef struct merge_report {
    bool merged;           /* false: nothing to merge */
    char partition[32];    /* its name */
    uint32_t inputs;       /* segments merged */
    uint32_t level;
    uint64_t rows, rows_dropped, bytes_read, bytes_written;
    double seconds;
} merge_report;

/* Runs the best merge of t (merge_select over every partition; the lowest score wins),
 * committed as above. 0 with rep->merged false when no partition has a run to merge.
 * Errors: those of merge_segments, STRATA_ENOTFOUND (dropped), STRATA_EIO (the commit
 * failed, or the table refuses writes: table_failure). Takes t's merge lock (waits for a
 * merge in progress), then flush_lock for the commit only. o may be NULL. */
int merge_table_once(strata_table *t, const merge_policy *pol, const merge_opts *o,
                     merge_report *rep /* OUT */, strata_err *err);

/* What merge_table_optimize did to one partition. */
typedef struct optimize_part {
    char partition[32];
    uint32_t segments_before, segments_after, merges;
    uint64_t rows, rows_dropped, bytes_written; /* rows_dropped: superseded rows (dedup) */
} optimize_part;

typedef struct optimize_report {
    uint32_t nparts;       /* partitions looked at */
    optimize_part *parts;  /* malloc'd: free with merge_optimize_report_free */
    uint32_t segments_before, segments_after, merges;
    uint64_t rows, rows_dropped, bytes_written;
    double seconds;
} optimize_report;
void merge_optimize_report_free(optimize_report *r);

/* Merges now: flushes every memtable (table_flush, force), then merges the segments of
 * the partition starting at *part_key (every partition when part_key is NULL) into as few
 * segments as pol's max_rows and max_bytes allow: adjacent segments packed greedily in
 * manifest order, merged MERGE_OPTIMIZE_FAN_IN at a time until one pass changes nothing.
 * In a dedup table a segment left alone is rewritten too while it holds superseded rows,
 * so every key keeps one row (its latest version; a deleted key its deletion).
 * Returns 0 with rep filled (free it), STRATA_ENOTFOUND when there is no such partition
 * (or the table was dropped), or the first error of a flush or merge (rep then says what
 * was done before it). */
int merge_table_optimize(strata_table *t, const int64_t *part_key, const merge_policy *pol,
                         optimize_report *rep /* OUT */, strata_err *err);

#endif
