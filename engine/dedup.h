/*
 * dedup.h — ReplacingMergeTree semantics on every read: per key (the schema's dedup_key
 * columns), the table's content is the row with the greatest version (ties: the one
 * appended last); a winning row whose `deleted` column is true removes its key.
 *
 * MECHANISM: merge-on-write. Each time partition keeps a key index: key -> the winning row
 * (which source, which row). An append looks every new row's key up: a new key is added;
 * otherwise the loser (the older row, or the new row when its version is lower) is marked
 * in its source's delete vector (engine/dvec.h) in the same step that makes the new rows
 * visible, so a snapshot never sees both versions nor neither. Queries skip marked rows
 * and rows whose `deleted` is true; nothing is compared at read time, so a deduplicated
 * read costs a plain read plus a bit test per row. Merges drop marked rows for good
 * (merge.c's row filter).
 *
 * Why this and not read-time merging (ClickHouse's FINAL, DuckDB's arg_max): those sort
 * or hash every row of the range on every query (25-40x a plain sum on 10M rows); here the
 * work is done once per row, at append, and mostly against memtables (re-sent events are
 * recent). The dedup key includes the time column (schema.c refuses one that does not),
 * so a key lives in one time partition and each partition's index stands alone.
 *
 * THE INDEX. An open-addressing table (linear probing) of 8-byte entries:
 *   bits 63..40  24 bits of the key's 64-bit hash (XXH3 of the key values), never 0
 *   bits 39..24  the source's slot in the partition (dedup_src.slot)
 *   bits 23..0   the row in that source (sources hold at most 2^24 rows)
 * 0 is an empty entry. The home position comes from the hash's low 32 bits (multiply-
 * shift, so the capacity need not be a power of two); it grows by 1.5x at 80% load, so it
 * holds between 10 and 15 bytes per live key. The hash bits are a filter only: a match
 * is confirmed by comparing the stored row's key values, read from its memtable or, for a
 * segment, from its decoded granule (a small cache of granules keeps repeated lookups of
 * recent segments cheap). As entries keep no full hash, growing re-reads the keys of every
 * live row of the partition (dedup_part_rebuild), as opening a table does.
 *
 * DURABILITY. A delete-vector mark is durable with the MANIFEST commit of the row that
 * caused it: each mark made by a row in memtable M stays pending (with M's serial) until
 * M's flush commits; only then is it written in the partition's MANIFEST (manifest.h),
 * beside the segments it marks. So a crash never keeps a mark whose cause is lost (the
 * lost row would take its older version with it); the replay of the log or of Kafka makes
 * the same marks again, in the same order. Merges only drop rows whose marks are durable.
 *
 * Locks: every function here runs under the table's dedup_lock (table_internal.h), except
 * dedup_part_create/free; readers use only the dvec pointers, under the table lock.
 */
#ifndef STRATA_DEDUP_H
#define STRATA_DEDUP_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/buf.h"
#include "engine/dvec.h"
#include "engine/error.h"
#include "engine/memtable.h"
#include "engine/row_batch.h"
#include "engine/schema.h"
#include "engine/segment.h"

#define DEDUP_MAX_SOURCE_ROWS (UINT64_C(1) << 24)
#define DEDUP_MAX_SLOTS 65536u
#define DEDUP_NO_SLOT UINT32_MAX

/* What dedup keeps beside each source of a partition (its segments and memtables),
 * allocated by the table (dedup_src_new). mt or seg is borrowed: the holder keeps it
 * alive while the source is attached. */
typedef struct dedup_src {
    dvec *dv;        /* superseded rows as readers see them (NULL: none); the table lock
                      * guards the pointer */
    uint32_t slot;   /* in its partition's index, DEDUP_NO_SLOT when detached */
    uint64_t serial; /* memtables: the number of their rows' marks; segments: 0 */
    memtable *mt;
    segment *seg;
    uint64_t *hashes; /* memtables: each row's key hash, kept as appends look rows up, so
                       * growing the index re-reads no memtable key (freed with ds) */
} dedup_src;

dedup_src *dedup_src_new(memtable *mt, segment *seg, uint64_t serial);
/* Frees ds and its dv reference; ds must be detached. NULL is fine. */
void dedup_src_free(dedup_src *ds);

typedef struct dedup_part dedup_part;

/* The index of one partition of a table with schema sc (sc->ndedup > 0; borrowed). NULL
 * when out of memory. */
dedup_part *dedup_part_create(const strata_schema *sc);
void dedup_part_free(dedup_part *dp);

/* Gives ds a slot. 0, STRATA_EFULL (all slots used), STRATA_ENOMEM. */
int dedup_src_attach(dedup_part *dp, dedup_src *ds, strata_err *err);
/* Takes ds's slot back; no index entry may still name it. */
void dedup_src_detach(dedup_part *dp, dedup_src *ds);

/* Re-makes the index from the live rows of every attached source (rows not in their dv;
 * memtable rows up to memtable_nrows), with room for `more` keys. Used at open, to grow,
 * and to undo a commit that failed. 0, STRATA_ENOMEM, or a segment read error. */
int dedup_part_rebuild(dedup_part *dp, uint64_t more, strata_err *err);

/* THE WINDOW. A partition whose time lies outside the table's dedup window (the schema's
 * dedup_window before its latest event time) goes cold: its index keeps only the rows
 * appended since (a late event, an update of an old order), and a key not among them is
 * looked for in its segments: those whose time range holds the key's time, and in them
 * only the granules whose time range does (the time is part of the key), decoded through
 * the granule cache; the live row (not superseded) with an equal key is the one. So old
 * partitions cost no memory per key, and answers stay exact however old the superseded
 * row. dedup_part_cool makes dp cold (its index then holds memtable rows only); 0 or
 * STRATA_ENOMEM (dp stays warm). */
int dedup_part_cool(dedup_part *dp, strata_err *err);
bool dedup_part_cold(const dedup_part *dp);

/* Sizes an empty index for `keys` keys at once (nothing when it holds any, or on failure):
 * a stream moving into a new time partition fills it about as full as the last one, and
 * growing from nothing would rebuild it a dozen times on the way. */
void dedup_part_presize(dedup_part *dp, uint64_t keys);

/* Live keys indexed; bytes the index keeps (entries, slots, pending marks); bytes of
 * what appends use meanwhile (decoded granules, undo lists), which dedup_part_trim
 * frees (the table trims a partition at each flush commit). */
uint64_t dedup_part_keys(const dedup_part *dp);
uint64_t dedup_part_bytes(const dedup_part *dp);
uint64_t dedup_part_scratch_bytes(const dedup_part *dp);
void dedup_part_trim(dedup_part *dp);

/* ---- appends: begin, rows, stage dvs, then commit or abort ------------------------- */

/* Makes room for nrows rows of one append (may grow the index: dedup_part_rebuild, which
 * takes every published row of every attached memtable for indexed, so a memtable whose
 * rows this append looks up must be attached after this call, or hold them unpublished).
 * 0 or an error (nothing changed that matters). */
int dedup_append_begin(dedup_part *dp, uint32_t nrows, strata_err *err);
/* The key hash of every row of b (a table with schema sc), into out[0..b->nrows): done
 * before the append takes its locks. */
void dedup_hash_rows(const strata_schema *sc, const row_batch *b, uint64_t *out);
/* Asks the CPU for the index entry a key of hash h starts at (a lookup a few rows ahead). */
void dedup_prefetch(const dedup_part *dp, uint64_t h);
/* Row r of b (key hash h), which the append puts at row `row` of memtable source dst
 * (attached): looks its key up and decides the winner; the loser is noted for the dvs.
 * Rows of one append go in order. 0, or a read error of the older row's segment (the
 * append then aborts). */
int dedup_append_row(dedup_part *dp, const row_batch *b, uint32_t r, uint64_t h, dedup_src *dst, uint64_t row,
                     strata_err *err);
/* Builds the new dv versions of the sources with losers. 0 or STRATA_ENOMEM. */
int dedup_append_stage(dedup_part *dp, strata_err *err);
/* Puts the staged dvs in place (caller holds the table lock). Never fails. */
void dedup_append_commit(dedup_part *dp);
/* Undoes every change of the append in progress. Never fails. */
void dedup_append_abort(dedup_part *dp);

/* ---- flushes and merges ----------------------------------------------------------------- */

/* Rows of source `from` moved to source `to` (attached), row r to map[r] (UINT32_MAX: the
 * row was dropped, which only a superseded row with a durable mark may be): index entries
 * and pending marks follow; *to_dv gets the marks of from's current dv that were not
 * dropped, added to base (may be NULL), as a new dvec (the caller installs it). Several
 * calls may feed one target. 0 or STRATA_ENOMEM (nothing changed). With to_dv NULL no dv
 * is built and the call cannot fail (to move entries back after a failed commit). */
int dedup_move(dedup_part *dp, dedup_src *from, dedup_src *to, const uint32_t *map, uint64_t nrows,
               const dvec *base, dvec **to_dv /* OUT */, strata_err *err);
/* dv's rows through map (row r -> map[r], UINT32_MAX: gone), added to base (may be NULL),
 * as a new dvec in *out. 0 or STRATA_ENOMEM. */
int dedup_translate_dv(const dvec *dv, const uint32_t *map, uint64_t nrows, const dvec *base, dvec **out,
                       strata_err *err);
/* Marks of ds that are durable once the memtables of serial <= committed are: its dv
 * minus its pending marks of later serials, appended to out as dvec_serialize does. */
int dedup_durable_marks(dedup_part *dp, const dedup_src *ds, const dvec *dv, uint64_t committed,
                        bytebuf *out, strata_err *err);
/* Rows of ds whose marks are durable (as dedup_durable_marks), into *out as a new dvec:
 * what a merge may drop. */
int dedup_durable_dv(dedup_part *dp, const dedup_src *ds, uint64_t committed, dvec **out /* OUT */,
                     strata_err *err);
/* The memtables of serial <= committed are in segments now: their pending marks are
 * durable and forgotten. */
void dedup_committed(dedup_part *dp, uint64_t committed);

#endif
