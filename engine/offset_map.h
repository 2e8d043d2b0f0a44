/*
 * offset_map.h — the in-memory bookkeeping of exactly-once appends: a small map from a
 * (name, partition) key to an offset range, in insertion order.
 *
 * The name is a source ("kafka:<topic>") or a checkpoint name ("ids", "ep/kafka:<topic>");
 * the partition is the source's (a Kafka partition). The table keeps three kinds of map:
 *   - what a memtable holds (range maps): for each source partition, the lowest offset
 *     of its rows (lo) and one past the highest (next). An entry made ahead of its rows
 *     (offset_map_reserve) holds the empty range lo = INT64_MAX, next = -1, which every
 *     reader ignores;
 *   - where each source stands (next only: the offset it will deliver next);
 *   - checkpoints noted with table_note_checkpoint (next only: the value noted).
 * What becomes of them in a partition's MANIFEST (the cp/ and rs/ entries) is written
 * down in manifest.h.
 *
 * Maps are small (one entry per source partition a table reads) and scanned linearly.
 * Entries stay in the order they were added: a commit writes manifest entries in map
 * order, so the same appends give the same manifest bytes. A map is zero-initialized,
 * owns its entries (offset_map_free) and is not thread-safe: the table guards each map
 * with one of its locks.
 */
#ifndef STRATA_OFFSET_MAP_H
#define STRATA_OFFSET_MAP_H

#include <stdint.h>

#include "engine/error.h"

/* Names are 1..OFFSET_NAME_MAX-1 bytes, as a manifest checkpoint's source. */
#define OFFSET_NAME_MAX 256

typedef struct offset_entry {
    char name[OFFSET_NAME_MAX];
    int32_t partition;
    int64_t lo;   /* range maps: the lowest offset held; INT64_MAX while empty */
    int64_t next; /* one past the highest offset held, or the next offset; -1 while empty */
} offset_entry;

typedef struct offset_map {
    offset_entry *e; /* n entries, in insertion order */
    uint32_t n, cap;
} offset_map;

/* The entry of (name, partition), or NULL. Valid until the map next changes. */
offset_entry *offset_map_find(const offset_map *m, const char *name, int32_t partition);

/* Makes sure (name, partition) has an entry (a new one holds the empty range), so that
 * offset_map_widen cannot fail later. Returns 0; STRATA_EINVAL for an empty or too long
 * name; STRATA_ENOMEM (the map is unchanged). */
int offset_map_reserve(offset_map *m, const char *name, int32_t partition);

/* Sets (name, partition)'s next offset, adding the entry if new (lo then INT64_MAX).
 * Errors as offset_map_reserve. */
int offset_map_set(offset_map *m, const char *name, int32_t partition, int64_t next);

/* Sets (name, partition)'s range to [lo, next), adding the entry if new. Errors as
 * offset_map_reserve. */
int offset_map_set_range(offset_map *m, const char *name, int32_t partition, int64_t lo,
                         int64_t next);

/* Widens the reserved entry of (name, partition) to take in [lo, next): lo becomes the
 * lower of the two, next the higher. Never fails; does nothing when there is no entry. */
void offset_map_widen(offset_map *m, const char *name, int32_t partition, int64_t lo, int64_t next);

/* The next offset of (name, partition), or -1 when absent. */
int64_t offset_map_next(const offset_map *m, const char *name, int32_t partition);
/* The lowest offset of (name, partition), or -1 when absent (INT64_MAX when empty). */
int64_t offset_map_lo(const offset_map *m, const char *name, int32_t partition);

/* Removes (name, partition)'s entry if there is one; the last entry takes its place. */
void offset_map_remove(offset_map *m, const char *name, int32_t partition);

/* Makes dst (its old contents are not freed) a copy of src. 0, or STRATA_ENOMEM with dst
 * empty. */
int offset_map_copy(offset_map *dst, const offset_map *src);

/* Frees the entries; m is empty (and reusable) after. */
void offset_map_free(offset_map *m);

#endif
