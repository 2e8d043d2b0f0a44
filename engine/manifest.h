/*
 * manifest.h — the list of live segments of one partition, plus ingestion checkpoints,
 * committed atomically.
 *
 * FORMAT (file MANIFEST in the partition directory; little-endian), version 1, and
 * version 2 when some segment has a delete vector (dedup tables, engine/dedup.h):
 *   off size field
 *   0   8    magic "STRATMAN"
 *   8   4    u32 format version = 1
 *   12  4    u32 flags = 0
 *   16  8    u64 generation (incremented by every commit)
 *   24  4    u32 nsegments
 *   28  4    u32 ncheckpoints
 *   32  ...  nsegments x 44 bytes: u64 segment id, u64 rows, u64 file bytes,
 *            i64 min_time, i64 max_time, u32 level (0 = flushed, >0 = merged)
 *   ...      ncheckpoints x CHECKPOINT (below)
 *   version 2 only:
 *   ...  4    u32 ndvs
 *   ...      ndvs x DV: u64 segment id (listed above, at most one DV each), u32 L >= 1,
 *            L bytes: the rows of that segment superseded by newer rows of their key, a
 *            CRoaring bitmap in its portable serialization (engine/dvec.h). A segment
 *            without a DV has none superseded. Written with the commit of the rows that
 *            superseded them (dedup.h: durability), so the rows and the marks they make
 *            are durable in one step.
 *   end-8 8  u64 XXH3 of every byte before it
 * Segment id N lives in file "<N as 16 hex digits>.seg" beside the manifest.
 *
 * CHECKPOINT (6 + L + 8 bytes; back to back, no padding)
 *   off  size field
 *   0    2    u16 L, the name's length (1..255)
 *   2    L    name bytes, no NUL (e.g. "cp/kafka:orders")
 *   2+L  4    i32 partition of the source (a Kafka partition)
 *   6+L  8    i64 value (an offset, unless said otherwise)
 * A (name, partition) pair appears at most once. Entries keep the order in which they
 * first entered the partition's manifest (a commit starts from the previous manifest,
 * changes values in place and appends new pairs); none is ever removed.
 *
 * CHECKPOINT NAMES. <source> is what the table's appends name the source:
 * "kafka:<topic>" for Kafka tables, "kafka:<topic>#e<N>" for epoch N > 0 (below), and
 * "log" (partition 0) for rows of the table's write-ahead log (engine/wal.h), whose
 * offset is the row's LSN: its record's LSN plus its index in the record. So cp/log says
 * which logged rows of a time partition are in its segments, and rs/log from where the
 * log must be replayed; log files wholly below it are deleted.
 * Example, cp/ of kafka:orders, partition 3, value 1500 (29 bytes):
 *   0f 00 | 63 70 2f 6b 61 66 6b 61 3a 6f 72 64 65 72 73 | 03 00 00 00 | dc 05 00 00 00 00 00 00
 *
 *   cp/<source>  this time partition's committed offset of (source, partition): every
 *                row of it with a lower offset that falls in this time partition is in
 *                this manifest's segments.
 *     written:   by each flush commit of this partition (table_flush), for each (source,
 *                partition) whose rows the flushed memtable holds: the higher of the old
 *                value and one past the highest offset among those rows. -1 (as good as
 *                no entry) can be written for a source whose append into the memtable
 *                failed before its rows became visible.
 *     read back: from the committed manifest in memory (loaded by table_open, replaced
 *                by each commit): table_append_sourced drops the rows of (source,
 *                partition) in this time partition with an offset below it (a replay
 *                after a restart) and counts them as skipped.
 *   rs/<source>  the table-wide resume point of (source, partition) at the commit: where
 *                reading it again puts every row not yet in a segment into the table.
 *     written:   by each flush commit of any partition, for each (source, partition)
 *                the table has a position for (appended with table_append_sourced since
 *                table_open, not dropped with table_source_forget): the lowest offset of
 *                its rows still only in memtables (of any partition, except the one this
 *                commit makes durable), else its position (the next_offset of the latest
 *                append).
 *     read back: table_source_resume: the highest value over every partition's
 *                committed manifest (older partitions hold older, lower values), -1 when
 *                none. The Kafka consumer starts the partition there (or at the group's
 *                committed offset, when that is later).
 *   ep/<source>  written by the Kafka consumer (table_note_checkpoint), source without
 *                "#e<N>": the offset epoch of a Kafka partition whose offsets went
 *                backwards and were accepted as new data (value: the epoch N). Epoch
 *                N > 0 appends under the source "<source>#e<N>", with its own cp/ and
 *                rs/ entries. Read back with table_checkpoint_max (highest value).
 *   other names  what table_note_checkpoint was given: every memtable sealed after the
 *                note carries the (name, partition, value) to its commit, which sets it
 *                as is. Read back with table_checkpoint_max.
 * Names are at most 255 bytes: table_append_sourced refuses a source whose "cp/<source>"
 * would be longer. These names and rules are part of version 1: a reader that knows
 * only the layout sees named checkpoints; a change of meaning needs a new version.
 *
 * Commit: write MANIFEST.tmp, fsync it, rename over MANIFEST, fsync the directory. A
 * crash leaves either the old or the new manifest, never a mix; a stray MANIFEST.tmp is
 * deleted by recovery. Checkpoints ride in the same file, so rows and the offsets that
 * produced them become durable in one step.
 *
 * Memory: a manifest struct owns its arrays (manifest_free); functions that fail with
 * STRATA_ENOMEM leave it as it was.
 */
#ifndef STRATA_MANIFEST_H
#define STRATA_MANIFEST_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/error.h"

#define MANIFEST_NAME "MANIFEST"
#define MANIFEST_TMP_NAME "MANIFEST.tmp"
#define MANIFEST_SOURCE_MAX 256 /* a checkpoint name and its NUL */

/* Prefixes of the checkpoint names above. */
#define MANIFEST_CP_PREFIX "cp/"
#define MANIFEST_RS_PREFIX "rs/"
#define MANIFEST_EP_PREFIX "ep/"

typedef struct manifest_segment {
    uint64_t id;
    uint64_t rows;
    uint64_t bytes;
    int64_t min_time, max_time;
    uint32_t level;
} manifest_segment;

typedef struct manifest_checkpoint {
    char source[MANIFEST_SOURCE_MAX];
    int32_t partition;
    int64_t next_offset;
} manifest_checkpoint;

typedef struct manifest_dv {
    uint64_t seg_id;
    uint32_t len;
    uint8_t *data; /* owned */
} manifest_dv;

typedef struct manifest {
    uint64_t generation;
    uint32_t nsegs, segs_cap;
    manifest_segment *segs;
    uint32_t ncps, cps_cap;
    manifest_checkpoint *cps;
    uint32_t ndvs, dvs_cap;
    manifest_dv *dvs;
} manifest;

/* Reads dir/MANIFEST into m (which the caller then frees with manifest_free). Returns
 * STRATA_ENOTFOUND when there is none, STRATA_ECORRUPT / STRATA_EVERSION with a message
 * naming the file when it is damaged or of an unknown version. */
int manifest_read(const char *dir, manifest *m /* OUT */, strata_err *err);
/* Commits m as dir/MANIFEST (see above). m->generation is written as is. *renamed (may be
 * NULL) tells a failure before the commit point from one after it: false, the old
 * MANIFEST stands (and nothing the new one lists may be assumed committed); true, MANIFEST
 * was replaced but the directory fsync failed, so a crash may leave either version: the
 * files the new one lists must be kept. */
int manifest_write(const char *dir, const manifest *m, bool *renamed /* OUT */, strata_err *err);
void manifest_free(manifest *m);
/* Deep copy; 0 or STRATA_ENOMEM. */
int manifest_copy(manifest *dst, const manifest *src);
/* Delete vectors: manifest_set_dv copies len bytes as segment seg_id's (replacing any;
 * len 0 removes it), 0 or STRATA_ENOMEM; manifest_get_dv returns it or NULL (valid until
 * m changes); manifest_clear_dvs removes them all. */
int manifest_set_dv(manifest *m, uint64_t seg_id, const void *p, uint32_t len);
const manifest_dv *manifest_get_dv(const manifest *m, uint64_t seg_id);
void manifest_clear_dvs(manifest *m);
/* Appends a segment entry; 0 or STRATA_ENOMEM. */
int manifest_add_segment(manifest *m, const manifest_segment *s);
/* Removes the entry with this id; returns 0 or STRATA_ENOTFOUND. */
int manifest_remove_segment(manifest *m, uint64_t id);
/* Sets (source, partition)'s next offset, adding the entry if new. 0, STRATA_EINVAL for
 * an empty or too long source, or STRATA_ENOMEM. */
int manifest_set_checkpoint(manifest *m, const char *source, int32_t partition, int64_t next);
/* The next offset of (source, partition), or -1 when absent. */
int64_t manifest_get_checkpoint(const manifest *m, const char *source, int32_t partition);
/* Writes "<id as 16 hex digits>.seg" into out (at least 24 bytes). */
void manifest_segment_name(uint64_t id, char *out, size_t cap);
/* Writes the checkpoint name "<prefix><source>" (prefix: MANIFEST_CP_PREFIX, ...) into
 * out, MANIFEST_SOURCE_MAX bytes. False when it is too long for a manifest (out then
 * holds a cut name). */
bool manifest_source_key(const char *prefix, const char *source, char *out);

#endif
