/*
 * rollup.h — a table's rollup tiers: per tier (the schema's `rollups`), the
 * materialized time buckets of (bucket, dimensions) -> aggregate states, which buckets
 * are known, and which are dirty. The states are the query engine's own (query_agg.h),
 * made by the same scan over the same deduplicated rows (rollup_build.c), so a query
 * answered from a tier merges exactly what a scan of the raw rows would have made.
 *
 * What a tier knows. Buckets [built_from, sealed_through) are materialized: a bucket
 * there with rows has a record, one without has none (it is known empty). built_from is
 * where the table's rows started when the tier was first built; rows that arrive later
 * with older times (a backfill) make it build back to them. A bucket is
 * sealed once the watermark (the latest event time minus the schema's lateness) passes
 * its end. A row appended later whose time falls in [built_from, horizon) — the horizon
 * being the sealed end, or the end a seal in progress is building to — marks its
 * bucket dirty: a late event, a newer version of a row (the dedup key holds the time,
 * so both versions share a bucket) and a deletion all do. A dirty bucket is served from
 * raw rows until it is rebuilt; a bucket dirtied again while being rebuilt stays dirty
 * (each mark bumps the bucket's generation, and a rebuild clears only the generation it
 * read).
 *
 * Why a query never sees a wrong bucket. Marks are made under the table's lock in the
 * same hold that publishes the rows (table_append.c), and a query takes its view of the
 * tiers in the same hold as its table snapshot (table_snapshot_acquire): a clean bucket
 * of the view holds exactly the rows of the snapshot. A build sets its horizon before it
 * takes its snapshot, so a row the snapshot missed marks its bucket dirty.
 *
 * Tiers live in memory: a table opened again builds them anew from its raw rows (in
 * steps, in the background), and serves from raw rows meanwhile. When retention drops
 * raw partitions, a tier forgets the buckets before the earliest raw row kept. Memory
 * is bounded: past the set's limit (ROLLUP_MEMORY_DEFAULT unless
 * rollup_set_memory_limit says otherwise) the tier holding the most forgets its oldest
 * buckets, whose range raw rows then answer.
 *
 * Threads and ownership: a rollup_set belongs to its table (rollup_set_create at open,
 * rollup_set_free at close). Its own mutex guards it; rollup_note_rows and
 * rollup_view_acquire are called with the table's lock held (the table's lock is taken
 * first). A view is immutable and refcounted: rollup_view_acquire returns one the caller
 * releases with rollup_view_release. Buckets published in a view belong to it (shared
 * with later views by reference counts).
 */
#ifndef STRATA_ROLLUP_H
#define STRATA_ROLLUP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/error.h"
#include "engine/query.h"
#include "engine/query_agg.h"
#include "engine/row_batch.h"
#include "engine/schema.h"

#define ROLLUP_MAX_STATES STRATA_MAX_ROLLUP_STATES
#define ROLLUP_DICT_CHUNK 4096u
#define ROLLUP_DICT_CHUNKS 4096u /* 16M distinct values per dimension */
#define ROLLUP_MEMORY_DEFAULT (UINT64_C(1) << 30) /* a table's tiers, all together */

/* One materialized bucket of a tier: its rows are (dimension codes, states). Immutable
 * once published; shared by the views that list it. */
typedef struct rollup_bucket {
    int64_t start;
    uint32_t nrows;
    uint32_t *dims;    /* nrows * ndims codes into the tier's dictionaries */
    agg_state *states; /* nrows * nstates; a quantile's sk is a dds_packed (sketch.h) */
    uint64_t bytes;    /* memory it holds, sketches included */
    _Atomic int refs;
} rollup_bucket;

/* A tier as one view shows it. */
typedef struct rollup_tier_view {
    bool valid;        /* false: serves nothing (not built yet, or being rebuilt whole) */
    int64_t built_from, sealed_through;
    rollup_bucket **b; /* the buckets with rows, by start */
    uint32_t nb;
    int64_t *dirty;    /* starts of dirty buckets, sorted */
    uint32_t ndirty;
} rollup_tier_view;

typedef struct rollup_tier_pub rollup_tier_pub; /* rollup.c */

/* v rounded down to a multiple of I (> 0), negative v too: the start of v's bucket. */
static inline int64_t rollup_floor_to(int64_t v, int64_t I)
{
    int64_t q = v / I;
    if (v % I != 0 && v < 0)
        q--;
    return q * I;
}

/* The index of the first of b[0..n) (sorted by start) starting at s or later. */
static inline uint32_t rollup_buckets_lower(rollup_bucket *const *b, uint32_t n, int64_t s)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (b[mid]->start < s)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The index of the first of starts[0..n) (sorted) at s or later. */
static inline uint32_t rollup_starts_lower(const int64_t *starts, uint32_t n, int64_t s)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (starts[mid] < s)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

typedef struct rollup_view {
    struct rollup_set *rs;
    int ntiers;
    rollup_tier_view tiers[STRATA_MAX_ROLLUPS];
    rollup_tier_pub *pub[STRATA_MAX_ROLLUPS];
} rollup_view;

/* A tier's dictionaries: code -> string, append-only; strings never move, so a view's
 * codes stay readable while later codes are added. */
typedef struct rollup_dict {
    strata_str *chunk[ROLLUP_DICT_CHUNKS];
    uint32_t n;
    uint32_t *slots; /* open addressing: code + 1 (writer only) */
    uint32_t nslots;
    uint64_t bytes;
} rollup_dict;

typedef struct rollup_set rollup_set;

/* The states a tier keeps for its metrics (plus count, always): sum of an integer
 * column keeps two (the exact sum, and the float sum avg reads). *n <= ROLLUP_MAX_STATES
 * for a valid schema (schema_validate checks). */
void rollup_tier_states(const strata_schema *sc, const strata_rollup *r, query_agg *out /* OUT */,
                        int *n /* OUT */);
/* The state of tier r (states st[0..n)) that query aggregate a reads, or -1 when the tier
 * does not keep it. */
int rollup_state_for(const strata_schema *sc, const query_agg *st, int n, const query_agg *a);

/* NULL when sc has no rollups (or out of memory: then the table serves from raw rows). */
rollup_set *rollup_set_create(const strata_schema *sc);
void rollup_set_free(rollup_set *rs);

/* Rows rows[0..n) of a batch with times ts[] were published. Marks the sealed buckets
 * they touch dirty. Never fails (a mark that cannot be kept makes its tier rebuild
 * whole). Caller holds the table's lock. */
void rollup_note_rows(rollup_set *rs, const int64_t *ts, const uint32_t *rows, uint32_t n);

/* The tiers as they are now. NULL when out of memory (then queries read raw rows).
 * Caller holds the table's lock (see the top of this file). */
rollup_view *rollup_view_acquire(rollup_set *rs);
void rollup_view_release(rollup_view *v);

/* The string of code `code` of dimension d of tier `tier` (a code a view lists). */
strata_str rollup_dict_value(const rollup_set *rs, int tier, int d, uint32_t code);

/* The memory the set's buckets may hold (0: no limit); applied at the next commit. */
void rollup_set_memory_limit(rollup_set *rs, uint64_t bytes);

/* A tier's own retention: retention.1m for tiers finer than an hour, retention.1h for
 * the others; 0 when unset (the tier then goes with the raw rows). */
int64_t rollup_tier_retention(const strata_schema *sc, int tier);

/* Retention dropped every raw row before t_ms. A tier without retention of its own
 * forgets its buckets that start before it (a bucket straddling it too: the tier is
 * known from its end). A tier with its own retention outlives the raw rows: it keeps
 * its buckets, serves that range alone from now on, and never builds or marks before
 * t_ms again (late rows there are dropped by the next retention sweep). */
void rollup_forget_before(rollup_set *rs, int64_t t_ms);

/* The latest floor of the tiers that outlive raw rows: raw rows before it had expired
 * when they were saved (INT64_MIN: none). */
int64_t rollup_outliving_floor(rollup_set *rs);

/* True when raw rows before end_ms may expire: every tier that outlives them has sealed
 * past end_ms, has no dirty bucket, backfill or unsaved change before it. Else false
 * with *waiting_tier the first tier not ready (retention waits for it). */
bool rollup_raw_expiry_ready(rollup_set *rs, int64_t end_ms, int *waiting_tier /* OUT */);

/* Tiers with their own retention forget the buckets that ended by now_ms minus it.
 * Returns how many tiers forgot something. */
uint32_t rollup_expire(rollup_set *rs, int64_t now_ms);

/* ---- for the builder (rollup_build.c) ---------------------------------------------- */

typedef struct rollup_job {
    int tier;
    bool whole;        /* building [from, to) anew (a seal or a backfill), else rebuilding dirty */
    bool backfill;     /* [from, to) ends at built_from: the tier reaches back to older rows */
    int64_t from, to;  /* whole: the range */
    int64_t *dirty;    /* !whole: bucket starts to rebuild (sorted) */
    uint64_t *gens;    /* and their generations when read */
    uint32_t ndirty;
    uint64_t epoch;    /* the tier's when the job began (a reset since drops its result) */
} rollup_job;

/* The next job of tier `tier`: dirty buckets first (at most max_dirty), then a backfill
 * (rows arrived before built_from: the tier is built back to them, max_span at a time,
 * nearest first), else the seal of
 * the buckets up to `watermark`, at most max_span ms of them past the first row. first_ms:
 * the earliest row time at or after the tier's sealed end (or anywhere, for a tier never
 * built: where it starts), INT64_MAX when none; the stretch before it has no rows and is
 * sealed in the same job, however long. A tier never built starts at its first row, or
 * at the watermark when every row is later. last_before_ms: the latest row time before
 * built_from (INT64_MIN: none known), so a backfill spans the stretch without rows above
 * it in one job. Sets the horizon before returning, so take the
 * snapshot after. 0 with *job (free with rollup_job_free), STRATA_ENOTFOUND when there is
 * nothing to do, STRATA_ENOMEM. */
int rollup_job_next(rollup_set *rs, int tier, int64_t watermark, int64_t first_ms, int64_t last_before_ms,
                    int64_t max_span, uint32_t max_dirty, rollup_job *job /* OUT */);
/* Publishes the buckets a job built (b[0..nb), sorted by start, inside the job's range or
 * dirty list; taken over, also on error). 0 or STRATA_ENOMEM (the job's buckets stay as
 * they were: dirty, or not sealed). */
int rollup_job_commit(rollup_set *rs, rollup_job *job, rollup_bucket **b, uint32_t nb);
/* A job that failed: its range is left unsealed (the horizon goes back). */
void rollup_job_abandon(rollup_set *rs, rollup_job *job);
void rollup_job_free(rollup_job *job);

/* The code of s in dimension d of tier `tier` (added when new). UINT32_MAX when out of
 * memory or the dictionary is full. Builder only (one at a time per set). */
uint32_t rollup_dict_intern(rollup_set *rs, int tier, int d, strata_str s);

/* A bucket of nrows rows with room for their codes and states (zeroed); NULL when out of
 * memory. rollup_bucket_unref frees it (and its states' sketches) with the last ref. */
rollup_bucket *rollup_bucket_new(const rollup_set *rs, int tier, int64_t start, uint32_t nrows);
void rollup_bucket_unref(const rollup_set *rs, int tier, rollup_bucket *b);

/* ---- saving and restoring, for rollup_store.c ---------------------------------------- */

/* A tier as of one instant, to save: what it knows, its buckets (the view's), and what
 * changed since the last save. */
typedef struct rollup_checkpoint {
    int tier;
    bool built;
    int64_t built_from, sealed_through, floor;
    const rollup_tier_view *v; /* buckets and dirty starts */
    rollup_tier_pub *pub;
    int64_t (*changed)[2];     /* ranges built or rebuilt since the last save, sorted */
    uint32_t nchanged;
    bool changed_all;          /* the tier was reset: write everything anew */
    bool meta_changed;         /* built_from or floor moved */
} rollup_checkpoint;

/* Takes tier ti's checkpoint and starts a new list of changes. Call it with the table's
 * lock held, like rollup_view_acquire, so the clean buckets hold exactly the rows
 * published so far. 0 or STRATA_ENOMEM. */
int rollup_checkpoint_take(rollup_set *rs, int tier, rollup_checkpoint *ck /* OUT */);
/* Releases ck; saved false puts its changes back for the next save. */
void rollup_checkpoint_done(rollup_set *rs, rollup_checkpoint *ck, bool saved);
/* True when tier ti changed since its last checkpoint. */
bool rollup_unsaved(rollup_set *rs, int tier);

/* Replaces tier ti with what a save held: built over [built_from, sealed_through), never
 * before floor, buckets b[0..nb) (sorted by start, their codes interned with
 * rollup_dict_intern; taken over, also on error) and the dirty starts. Before the table
 * is used (at open). 0 or STRATA_ENOMEM (the tier is then built anew). */
int rollup_tier_restore(rollup_set *rs, int tier, int64_t built_from, int64_t sealed_through, int64_t floor,
                        const int64_t *dirty, uint32_t ndirty, rollup_bucket **b, uint32_t nb);
/* The states tier ti keeps (rollup_tier_states), owned by the set. */
void rollup_tier_def(const rollup_set *rs, int tier, const query_agg **st, int *nstates);

/* ---- what a tier holds, for GET /tables and /metrics -------------------------------- */

typedef struct rollup_tier_stats {
    int64_t interval_ms;
    bool valid;
    int64_t built_from, sealed_through; /* INT64_MIN when not built */
    uint64_t buckets, rows, bytes;      /* materialized buckets (with rows), their rows, memory */
    uint64_t dirty;                     /* dirty buckets now */
    bool backfill;                      /* rows before built_from wait to be built */
    uint64_t builds, rebuilt_buckets, build_ns; /* since open */
    uint64_t memory_limit;              /* of the set (all tiers) */
    uint64_t forgotten_for_memory;      /* times the set forgot old buckets to stay under it */
} rollup_tier_stats;

int rollup_set_ntiers(const rollup_set *rs);
/* Tier `tier`'s dimensions as "a,b,c" into out (what tells two tiers of one interval
 * apart in /metrics and a query's stats). */
void rollup_dims_text(const strata_schema *sc, int tier, char *out, size_t cap);
void rollup_get_stats(rollup_set *rs, int tier, rollup_tier_stats *out /* OUT */);
/* Counts a build's time (for stats). */
void rollup_note_build(rollup_set *rs, int tier, uint64_t ns, uint32_t rebuilt);

#endif
