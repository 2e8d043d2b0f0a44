/*
 * rollup_persist.c — a table's rollup tiers and their files (rollup_store.h), as the
 * table sees them: restored at open before the write-ahead log is replayed, saved in
 * the background and at shutdown.
 *
 * Open: the store restores each saved tier. Every raw row its buckets did not see is
 * in a raw segment with an id at or above the save's raw_mark, or not in a segment
 * (published again by the log replay that follows, or by Kafka): the time column of
 * each such segment is read and the buckets it falls in are marked dirty, so they are
 * rebuilt before a query trusts them. Segment ids never go back below the mark (the
 * table's next id is raised to it), so a later segment cannot hide under it.
 *
 * Save: under the table's lock, each tier's checkpoint and the next segment id are
 * taken at one instant (so the clean buckets hold exactly the rows published by then).
 * Then the table is flushed before the store commits anything built from those rows: a
 * saved bucket never holds a row that is not in a segment (rows of the log would come
 * back by its replay, but Kafka rows only in memtables come back only when the consumer
 * reads them again, and until then the restored bucket would count rows the raw rows
 * lack). The table is flushed before the checkpoint too, so the rows the buckets saw are
 * mostly in segments below raw_mark and a start marks dirty only the buckets of the few
 * rows published in between. Memtables flush within a second anyway
 * (storage.memtable_age), so this costs little. Saves run one at a time
 * (rollup_save_lock).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/clock.h"
#include "engine/rollup.h"
#include "engine/rollup_store.h"
#include "engine/segment.h"
#include "engine/table_internal.h"

/* Marks the buckets of every row of segment g dirty (tiers restored from a save that
 * did not see it). */
static int note_segment_rows(strata_table *t, const segment *g, strata_err *err)
{
    int tc = segment_schema(g)->time_col;
    uint32_t gr = segment_granule_rows(g);
    int64_t *ts = malloc(sizeof *ts * ((size_t)gr + 1));
    segment_scratch sc = {0};
    int rc = ts ? 0 : strata_err_set(err, STRATA_ENOMEM, "out of memory");
    for (uint32_t k = 0; k < segment_ngranules(g) && !rc; k++) {
        if ((rc = segment_read_ints(g, tc, k, ts, &sc, err)) == 0)
            rollup_note_rows(t->rollups, ts, NULL, segment_granule_nrows(g, k));
    }
    segment_scratch_free(&sc);
    free(ts);
    return rc;
}

int table__rollups_open(strata_table *t, strata_err *err)
{
    if (!t->rollups)
        return 0;
    uint64_t mark;
    int rc = rollup_store_open(t->dir, &t->schema, t->rollups, &t->rstore, &mark, t->rollup_note,
                               sizeof t->rollup_note, err);
    if (rc || mark == UINT64_MAX)
        return rc;
    t->raw_floor = rollup_outliving_floor(t->rollups); /* where the raw rows they outlive ended */
    uint64_t noted = 0;
    for (uint32_t i = 0; i < t->nparts && !rc; i++) {
        partition *p = t->parts[i];
        for (uint32_t j = 0; j < p->nsegs && !rc; j++)
            if (p->segs[j]->id >= mark) {
                rc = note_segment_rows(t, p->segs[j]->seg, err);
                noted += segment_nrows(p->segs[j]->seg);
            }
    }
    if (atomic_load(&t->next_seg_id) < mark)
        atomic_store(&t->next_seg_id, mark);
    if (!rc && noted) {
        size_t len = strlen(t->rollup_note);
        snprintf(t->rollup_note + len, sizeof t->rollup_note - len,
                 "%srollup tiers: %" PRIu64 " raw rows were flushed after the last save; their buckets are rebuilt",
                 len ? "; " : "", noted);
    }
    return rc;
}

int table_rollups_save(strata_table *t, bool optimize, strata_err *err)
{
    if (!t->rollups || !t->rstore)
        return 0;
    int n = rollup_set_ntiers(t->rollups), rc = 0;
    rollup_checkpoint ck[STRATA_MAX_ROLLUPS];
    memset(ck, 0, sizeof ck);
    pthread_mutex_lock(&t->rollup_save_lock);
    if ((rc = table_flush(t, true, err)) != 0) { /* most rows below the mark */
        pthread_mutex_unlock(&t->rollup_save_lock);
        return rc;
    }
    pthread_mutex_lock(&t->lock);
    uint64_t mark = atomic_load(&t->next_seg_id);
    int taken = 0;
    for (; taken < n && !rc; taken++)
        rc = rollup_checkpoint_take(t->rollups, taken, &ck[taken]);
    pthread_mutex_unlock(&t->lock);
    if (rc) {
        taken--;
        strata_err_set(err, rc, "rollup save: out of memory");
    }
    if (!rc)
        rc = table_flush(t, true, err); /* every row the buckets hold in a segment first */
    int saved = 0;
    for (; saved < taken && !rc; saved++) {
        if ((rc = rollup_store_save(t->rstore, &ck[saved], mark, optimize, err)) != 0)
            break;
        rollup_checkpoint_done(t->rollups, &ck[saved], true);
    }
    for (int i = saved; i < taken; i++)
        rollup_checkpoint_done(t->rollups, &ck[i], false);
    atomic_store(&t->rollup_saved_ms, clock_mono_ms());
    pthread_mutex_unlock(&t->rollup_save_lock);
    return rc;
}

int table__rollups_commit_floor(strata_table *t, int64_t from, strata_err *err)
{
    if (!t->rstore)
        return 0;
    /* The sweep holds flush_lock, and a save holds rollup_save_lock while it flushes:
     * never wait for a save here (the next sweep tries again). */
    if (pthread_mutex_trylock(&t->rollup_save_lock) != 0)
        return STRATA_ENOTFOUND;
    int rc = rollup_store_commit_floor(t->rstore, from, err);
    pthread_mutex_unlock(&t->rollup_save_lock);
    return rc;
}

int table_rollups_save_due(strata_table *t, int64_t every_ms, strata_err *err)
{
    if (!t->rollups || !t->rstore)
        return 0;
    bool unsaved = false;
    for (int i = 0; i < rollup_set_ntiers(t->rollups); i++)
        unsaved |= rollup_unsaved(t->rollups, i);
    if (!unsaved || clock_mono_ms() - atomic_load(&t->rollup_saved_ms) < every_ms)
        return 0;
    return table_rollups_save(t, false, err);
}

void table_rollup_store_stats(strata_table *t, int tier, rollup_store_tier_stats *out)
{
    rollup_store_get_stats(t->rstore, tier, out); /* (a copy: never waits for a save) */
}

const char *table_rollup_note(const strata_table *t) { return t->rollup_note; }
