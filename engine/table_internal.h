/*
 * table_internal.h — the inside of a strata_table, shared by the three files that
 * implement table.h, and by nothing else:
 *   table.c         open and recovery, partitions, segment handles, state, snapshots
 *   table_append.c  appends (all of a batch or none) and the offsets of sourced rows
 *   table_flush.c   when memtables are due, sealing, flushing and the commit
 *   merge.c         merges of a partition's segments, committed beside flushes
 *   retention.c     dropping expired partitions
 *
 * Locks (the contract is in table.h): write_lock serializes appends, flush_lock
 * serializes flushes, lock guards what readers and snapshots walk; each field says which
 * guards it. When both are needed, write_lock or flush_lock is taken before lock.
 * dedup_lock (dedup tables) is taken after write_lock or flush_lock and before lock.
 * merge_lock (merges and retention, one at a time) is taken before all of them.
 * Functions named table__* are internal to the three files; each says what its caller
 * must hold.
 */
#ifndef STRATA_TABLE_INTERNAL_H
#define STRATA_TABLE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/dedup.h"
#include "engine/manifest.h"
#include "engine/memtable.h"
#include "engine/memtable_flush.h"
#include "engine/merge.h"
#include "engine/offset_map.h"
#include "engine/table.h"
#include "engine/wal.h"

/* A committed segment as the table holds it: shared by its partition and by live
 * snapshots, each holding a reference; the last table__seg_unref closes and frees it. */
typedef struct table_seg {
    segment *seg;
    uint64_t id;
    _Atomic int refs;
    dedup_src *dd; /* dedup tables: its slot and delete vector (freed with the handle) */
} table_seg;

/* A sealed memtable waiting for its flush. */
typedef struct sealed_mt {
    memtable *mt;
    offset_map cps; /* the checkpoints noted before it was sealed (a copy of pending_cps) */
    offset_map src; /* ranges: the offsets of the sourced rows it holds; lock */
    dedup_src *dd;  /* dedup tables: its slot, delete vector and serial */
} sealed_mt;

typedef struct partition {
    int64_t key;
    char dir[3584];
    manifest man;       /* as committed; changed under flush_lock, read under lock */
    table_seg **segs;   /* lock */
    uint32_t nsegs, segs_cap;
    memtable *active;   /* appended under write_lock; pointer swapped under lock too */
    int64_t active_since_ms;
    offset_map active_src; /* ranges: the offsets of the sourced rows active holds; lock */
    sealed_mt *sealed;  /* lock */
    uint32_t nsealed, sealed_cap;
    /* Dedup tables (engine/dedup.h); NULL otherwise. dd and the sources' slots and
     * pending marks: dedup_lock; the sources' dv pointers: lock too. */
    dedup_part *dd;
    dedup_src *active_dd;  /* active's; set with active */
    uint64_t dd_committed; /* serial of the latest memtable committed (its marks durable) */
} partition;

struct strata_table {
    strata_schema schema;
    char dir[3072];
    char raw_dir[3200];
    pthread_mutex_t lock, write_lock, flush_lock;
    /* Dedup tables: the key indexes and pending marks of every partition (dedup.h).
     * Taken after write_lock or flush_lock, before lock. */
    pthread_mutex_t dedup_lock;
    _Atomic uint64_t mt_serial; /* the last serial given to a memtable (dedup marks) */
    partition **parts; /* sorted by key; lock */
    uint32_t nparts, parts_cap;
    _Atomic uint64_t next_seg_id;
    offset_map pending_cps; /* checkpoints noted (table_note_checkpoint); write_lock */
    offset_map positions;   /* sourced appends: where each source partition stands; lock */
    memtable_flush_scratch flush_scratch; /* flush_lock */
    _Atomic uint64_t flushes, flush_ns, rows_flushed;
    _Atomic int64_t max_time; /* the latest event time appended or committed; INT64_MIN */
    _Atomic bool dropped;     /* set under write_lock + flush_lock: writes refused */
    _Atomic bool failed;      /* a commit's durability is unknown: writes refused */
    char fail_msg[512];       /* why failed; lock */
    uint64_t damage_count;    /* damaged segments met by readers; lock */
    char damage_msg[512];     /* the latest; lock */
    uint64_t flush_failures;  /* failed flushes since open; lock */
    uint64_t flush_failing;   /* failed flushes since the last one that worked; lock */
    int64_t flush_failing_since; /* monotonic ms of the first of those; lock */
    char flush_msg[512];      /* the latest failure's message; lock */
    /* The write-ahead log of logged appends (wal.h): opened by recovery when the table
     * has one, else by the first logged append; set under write_lock, then fixed until
     * close. Rows from it are sourced rows of TABLE_LOG_SOURCE, offset = their LSN. */
    _Atomic(wal *) log;
    char log_dir[3200];
    uint64_t log_next;        /* the LSN the log starts at when opened (set by table_open) */
    char recovery_note[1024]; /* what recovery did, for the caller's log; "" when nothing */
    /* Merges and retention (merge.c, retention.c). merge_lock: one merge or retention
     * sweep at a time; while it is held no partition leaves t->parts. */
    pthread_mutex_t merge_lock;
    _Atomic uint64_t merges, merge_ns, merge_rows, merge_rows_dropped, merge_bytes_written;
    _Atomic uint64_t expired_partitions, expired_rows;
    int64_t raw_floor; /* raw rows before it were dropped by retention (INT64_MIN: none known); lock */
    /* Rollup tiers (rollup.h): NULL without rollups. Rows are noted under lock as they
     * are published; the builder (rollup_build.c) works through rollup.h. */
    struct rollup_set *rollups;
    /* Their files (rollup_store.h, rollup_persist.c): NULL without rollups. Saves run one
     * at a time under rollup_save_lock (taken before lock). */
    struct rollup_store *rstore;
    pthread_mutex_t rollup_save_lock;
    _Atomic int64_t rollup_saved_ms; /* monotonic ms of the last save (0: none) */
    char rollup_note[1024];          /* what restoring the tiers did, for the caller's log */
};

/* ---- table_flush.c -------------------------------------------------------------------- */

/* Deletes the write-ahead log files whose rows are all in committed segments or dropped
 * (retention): below the lowest LSN still only in memtables. Caller holds flush_lock. */
void table__log_forget_covered(strata_table *t);

/* ---- rollup_persist.c ---------------------------------------------------------------- */

/* At open, after the partitions are recovered and before the log is replayed: restores
 * the saved tiers and marks the buckets of rows flushed since their save. */
int table__rollups_open(strata_table *t, strata_err *err);
/* Retention, before dropping the raw rows before from: the tiers' manifests say so first
 * (rollup_store_commit_floor). STRATA_ENOTFOUND when a save runs (the caller holds
 * flush_lock, which the save may wait for): drop nothing this time. */
int table__rollups_commit_floor(strata_table *t, int64_t from, strata_err *err);

/* ---- table.c ---------------------------------------------------------------------- */

/* The path of segment id in directory dir, into out. 0, or STRATA_EINVAL (err) when it
 * does not fit. */
int table__seg_path(const char *dir, uint64_t id, char *out, size_t cap, strata_err *err);
/* Opens segment id of directory dir as a handle holding one reference (*out). 0, or the
 * error of segment_open, or STRATA_ENOMEM. */
int table__seg_open(const char *dir, uint64_t id, table_seg **out /* OUT */, strata_err *err);
/* Drops a reference (h may be NULL); the last one closes the segment. */
void table__seg_unref(table_seg *h);
/* Appends h to p's segment list (the list takes the reference). 0 or STRATA_ENOMEM.
 * Caller holds lock, or owns p alone. */
int table__add_segment(partition *p, table_seg *h);
/* The partition of key, made (directory, empty MANIFEST, directory fsync) when new.
 * NULL with err on failure. Caller holds write_lock, not lock. */
partition *table__partition_get(strata_table *t, int64_t key, strata_err *err);
/* Why writes are refused (dropped, failed), as an error; 0 when they are not. Caller
 * holds write_lock or flush_lock. */
int table__writes_refused(strata_table *t, strata_err *err);
/* Fails the table (the first reason stays). Takes lock. */
void table__fail(strata_table *t, const char *why);

/* Opens t's write-ahead log at t->log_next. Caller holds write_lock (or owns t alone). */
int table__log_open(strata_table *t, strata_err *err);

/* Dedup tables: whether p lies wholly before the dedup window (dedup.h), by the latest
 * event time appended or committed. */
bool table__dd_outside_window(strata_table *t, const partition *p);
/* Dedup tables: a fresh memtable source for mt (next serial), attached to p's index.
 * NULL with err. Caller holds dedup_lock. */
dedup_src *table__dd_memtable(strata_table *t, partition *p, memtable *mt, strata_err *err);
/* Dedup tables: the marks of p's segments durable once memtables up to serial committed
 * are, as next's delete vectors (replacing what it had); extra (may be NULL) is one more
 * segment (id extra_id) with its dv. Caller holds dedup_lock. */
int table__dd_manifest(strata_table *t, partition *p, manifest *next, uint64_t committed,
                       const dedup_src *extra, uint64_t extra_id, strata_err *err);

/* ---- table_append.c --------------------------------------------------------------- */

/* Appends b, read back from log record lsn by recovery: the rows a partition committed
 * already are dropped (counted in *skipped). Errors as table_append. */
int table__replay_append(strata_table *t, const row_batch *b, uint64_t lsn, uint64_t *skipped,
                         strata_err *err);
/* Frees a partition no longer in t->parts (its segments and memtables unreferenced;
 * snapshots keep theirs). */
void table__partition_free(partition *p);

/* ---- table_flush.c ---------------------------------------------------------------- */

/* True when p's active memtable is non-empty and full (rows or bytes) or old. */
bool table__due(const strata_table *t, const partition *p, int64_t now);
/* Room for `more` entries in p's sealed list. 0 or STRATA_ENOMEM. Caller holds lock. */
int table__sealed_reserve(partition *p, uint32_t more);
/* Moves p's non-empty active memtable, with its offset ranges and the checkpoints *cps
 * (taken over: *cps is left empty), to the sealed list, which has room. Never fails.
 * Caller holds write_lock and lock. */
void table__seal_reserved(partition *p, offset_map *cps);
/* Seals p's active memtable (nothing when it is empty). 0 or STRATA_ENOMEM (nothing
 * changed). Caller holds write_lock; takes lock. */
int table__seal(strata_table *t, partition *p);

/* ---- merge_dedup.c (dedup tables' side of a merge) -------------------------------- */

typedef struct merge_dd {
    uint32_t n;        /* inputs */
    dvec **drop;       /* per input: rows with durable marks, which the merge drops */
    uint32_t **maps;   /* per input: row -> output row, UINT32_MAX when dropped */
    uint64_t *rows;    /* per input: its rows */
    uint64_t next_out; /* output rows numbered so far */
    dvec *out_dv;      /* the output's marks (merge_dd_prepare) */
} merge_dd;

/* Before the merge: droppable rows and empty maps for in[0..n). Takes dedup_lock. */
int merge_dd_begin(strata_table *t, partition *p, table_seg *const *in, uint32_t n, merge_dd *md,
                   strata_err *err);
/* The merge's row filter (ctx: the merge_dd). */
bool merge_dd_keep(void *ctx, const merge_row_view *row);
/* Before the MANIFEST is written: the output h's marks (h NULL: every row was dropped),
 * its slot, and next's delete vectors. Caller holds flush_lock and dedup_lock. */
int merge_dd_prepare(strata_table *t, partition *p, table_seg *const *in, table_seg *h, uint64_t id,
                     manifest *next, merge_dd *md, strata_err *err);
/* After the MANIFEST is written: index entries and pending marks move to h, inputs give
 * their slots back, h gets its dv. Caller holds dedup_lock and lock. Never fails. */
void merge_dd_publish(partition *p, table_seg *const *in, table_seg *h, merge_dd *md);
/* After merge_dd_prepare, when the MANIFEST write failed: h's slot back. */
void merge_dd_unprepare(partition *p, table_seg *h);
void merge_dd_free(merge_dd *md);

/* ---- merge.c, retention.c ---------------------------------------------------------- */

/* Fills the merge and retention fields of st (table_get_stats). Takes lock. */
void table__merge_stats(strata_table *t, table_stats *st);
/* Keeps in parts[0..*n) only the partitions still in t->parts (retention may have dropped
 * some since the caller copied them). Caller holds flush_lock (so none goes meanwhile);
 * takes lock. */
void table__parts_keep_live(strata_table *t, partition **parts, uint32_t *n);
/* Removes the partition directories a retention sweep renamed away but did not finish
 * removing (raw/.expired-*). For table_open; errors are ignored (tried again next open). */
void table__expired_leftovers_remove(strata_table *t);

#endif
