/*
 * manifest.h — the list of live segments of one partition, plus ingestion checkpoints,
 * committed atomically.
 *
 * FORMAT (file MANIFEST in the partition directory; little-endian), version 1:
 *   off size field
 *   0   8    magic "STRATMAN"
 *   8   4    u32 format version = 1
 *   12  4    u32 flags = 0
 *   16  8    u64 generation (incremented by every commit)
 *   24  4    u32 nsegments
 *   28  4    u32 ncheckpoints
 *   32  ...  nsegments x 44 bytes: u64 segment id, u64 rows, u64 file bytes,
 *            i64 min_time, i64 max_time, u32 level (0 = flushed, >0 = merged)
 *   ...      ncheckpoints x: u16 source length (1..255), source bytes (e.g. a Kafka
 *            topic), i32 partition, i64 next offset
 *   end-8 8  u64 XXH3 of every byte before it
 * Segment id N lives in file "<N as 16 hex digits>.seg" beside the manifest.
 *
 * Checkpoint names in use (the table and the Kafka consumer write them; values are offsets
 * unless said otherwise):
 *   cp/<source>  the partition's committed offset of (source, partition): rows with a lower
 *                offset are in this time partition's segments already (a replay drops them)
 *   rs/<source>  the table-wide resume point: where to read (source, partition) from after
 *                a restart (the highest over all time partitions counts)
 *   ep/<source>  the offset epoch of a Kafka partition whose offsets went backwards and were
 *                accepted as new data (value: the epoch); epoch N > 0 appends under the
 *                source "<source>#e<N>", with its own cp/ and rs/ entries
 *   other names  what table_note_checkpoint was given
 * <source> is "kafka:<topic>" for Kafka tables; partition is the Kafka partition.
 *
 * Commit: write MANIFEST.tmp, fsync it, rename over MANIFEST, fsync the directory. A
 * crash leaves either the old or the new manifest, never a mix; a stray MANIFEST.tmp is
 * deleted by recovery. Checkpoints ride in the same file, so rows and the offsets that
 * produced them become durable in one step.
 */
#ifndef STRATA_MANIFEST_H
#define STRATA_MANIFEST_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/error.h"

#define MANIFEST_NAME "MANIFEST"
#define MANIFEST_TMP_NAME "MANIFEST.tmp"
#define MANIFEST_SOURCE_MAX 256

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

typedef struct manifest {
    uint64_t generation;
    uint32_t nsegs, segs_cap;
    manifest_segment *segs;
    uint32_t ncps, cps_cap;
    manifest_checkpoint *cps;
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

#endif
