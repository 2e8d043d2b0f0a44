/*
 * table_flush.c — flushes: when a memtable is due (full or old), sealing it with the
 * checkpoints noted so far, and writing sealed memtables as segments, each committed
 * with its partition's MANIFEST and then swapped in for the memtable in one step. The
 * contract is in table.h; the offsets a commit records (cp/, rs/) are laid down in
 * manifest.h.
 *
 * Order of a flush (partition_flush_one): segment file written and fsynced, opened and
 * checked; the next manifest built (segment added, noted checkpoints, cp/ and rs/);
 * MANIFEST replaced atomically; then, under t->lock, segment in, memtable out. A failure
 * before the rename removes the segment file and leaves the memtable sealed for a retry;
 * one after it (the directory fsync) fails the table.
 */
#include "engine/table_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/clock.h"

bool table__due(const strata_table *t, const partition *p, int64_t now)
{
    if (!p->active || memtable_nrows(p->active) == 0)
        return false;
    return memtable_bytes(p->active) >= t->schema.memtable_max_bytes ||
           memtable_nrows(p->active) >= memtable_max_rows(p->active) ||
           now - p->active_since_ms >= t->schema.memtable_max_age_ms;
}

int table__sealed_reserve(partition *p, uint32_t more)
{
    if (p->nsealed + more <= p->sealed_cap)
        return 0;
    uint32_t cap = p->sealed_cap ? p->sealed_cap : 4;
    while (cap < p->nsealed + more)
        cap *= 2;
    sealed_mt *ns = realloc(p->sealed, sizeof *ns * cap);
    if (!ns)
        return STRATA_ENOMEM;
    p->sealed = ns;
    p->sealed_cap = cap;
    return 0;
}

void table__seal_reserved(partition *p, offset_map *cps)
{
    sealed_mt s = {p->active, *cps, p->active_src, p->active_dd};
    memset(cps, 0, sizeof *cps);
    memset(&p->active_src, 0, sizeof p->active_src);
    p->sealed[p->nsealed++] = s;
    p->active = NULL;
    p->active_dd = NULL;
}

int table__seal(strata_table *t, partition *p)
{
    if (!p->active || memtable_nrows(p->active) == 0)
        return 0;
    offset_map cps;
    if (offset_map_copy(&cps, &t->pending_cps) != 0)
        return STRATA_ENOMEM;
    pthread_mutex_lock(&t->lock);
    int rc = table__sealed_reserve(p, 1);
    if (rc == 0)
        table__seal_reserved(p, &cps);
    pthread_mutex_unlock(&t->lock);
    offset_map_free(&cps);
    return rc;
}

/* Into next (the manifest being committed for p's sealed[0]): each source partition's
 * committed offset in p ("cp/", from sealed[0]'s rows) and the table-wide resume point
 * ("rs/": the lowest offset still only in memtables, else the position); manifest.h
 * has the rules. Caller holds flush_lock; takes lock. */
static int set_source_checkpoints(strata_table *t, partition *p, manifest *next)
{
    char name[MANIFEST_SOURCE_MAX];
    int rc = 0;
    pthread_mutex_lock(&t->lock);
    const offset_map *mine = &p->sealed[0].src;
    for (uint32_t i = 0; i < mine->n && !rc; i++) {
        const offset_entry *c = &mine->e[i];
        if (!manifest_source_key(MANIFEST_CP_PREFIX, c->name, name))
            continue;
        int64_t old = manifest_get_checkpoint(next, name, c->partition);
        rc = manifest_set_checkpoint(next, name, c->partition, c->next > old ? c->next : old);
    }
    for (uint32_t i = 0; i < t->positions.n && !rc; i++) {
        const offset_entry *pos = &t->positions.e[i];
        int64_t resume = pos->next;
        for (uint32_t q = 0; q < t->nparts; q++) {
            partition *o = t->parts[q];
            int64_t v = offset_map_lo(&o->active_src, pos->name, pos->partition);
            if (v >= 0 && v < resume)
                resume = v;
            for (uint32_t j = (o == p); j < o->nsealed; j++) {
                v = offset_map_lo(&o->sealed[j].src, pos->name, pos->partition);
                if (v >= 0 && v < resume)
                    resume = v;
            }
        }
        if (manifest_source_key(MANIFEST_RS_PREFIX, pos->name, name))
            rc = manifest_set_checkpoint(next, name, pos->partition, resume);
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

/* Dedup tables, a flush of memtable s into segment h (id, nrows rows, written in the
 * order of t->flush_scratch.perm): gives h its source, moves the index and pending marks
 * to its rows (*inv: memtable row -> segment row; *seg_dv: its delete vector, installed
 * at the swap) and puts the durable marks of p's segments in next. Caller holds
 * flush_lock and dedup_lock. */
static int dd_flush_prepare(strata_table *t, partition *p, const sealed_mt *s, table_seg *h, uint64_t id,
                            uint64_t nrows, manifest *next, uint32_t **inv, dvec **seg_dv, strata_err *err)
{
    if (!(h->dd = dedup_src_new(NULL, h->seg, 0)) || !(*inv = malloc(sizeof **inv * (nrows + 1))))
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    int rc = dedup_src_attach(p->dd, h->dd, err);
    if (rc)
        return rc;
    const uint32_t *perm = t->flush_scratch.perm;
    for (uint64_t i = 0; i < nrows; i++)
        (*inv)[perm[i]] = (uint32_t)i;
    if ((rc = dedup_move(p->dd, s->dd, h->dd, *inv, nrows, NULL, seg_dv, err)) != 0)
        return rc;
    /* h's marks as the commit will see them (durable_marks reads ds->dv) */
    h->dd->dv = *seg_dv;
    rc = table__dd_manifest(t, p, next, s->dd->serial, h->dd, id, err);
    h->dd->dv = NULL;
    return rc;
}

/* Undoes dd_flush_prepare after a failed commit: index entries and pending marks go back
 * to the memtable's rows. Never fails. */
static void dd_flush_undo(partition *p, const sealed_mt *s, table_seg *h, uint64_t nrows,
                          const memtable_flush_scratch *fs)
{
    if (!h || !h->dd || h->dd->slot == DEDUP_NO_SLOT)
        return;
    dedup_move(p->dd, h->dd, s->dd, fs->perm, nrows, NULL, NULL, NULL);
    dedup_src_detach(p->dd, h->dd);
}

/* Writes p's oldest sealed memtable as a segment and commits it. Caller holds
 * flush_lock. */
static int partition_flush_one(strata_table *t, partition *p, strata_err *err)
{
    pthread_mutex_lock(&t->lock);
    sealed_mt s = p->sealed[0];
    memtable_ref(s.mt);
    pthread_mutex_unlock(&t->lock);

    uint64_t t0 = (uint64_t)clock_mono_ns();
    uint64_t id = atomic_fetch_add(&t->next_seg_id, 1);
    char path[PATH_MAX + 32];
    segment_write_opts opts = {.codec = t->schema.codec};
    segment_info info;
    uint64_t nrows = memtable_nrows(s.mt);
    table_seg *h = NULL;
    manifest next = {0};
    bool dd_locked = false;
    uint32_t *inv = NULL;
    dvec *seg_dv = NULL;
    int rc = table__seg_path(p->dir, id, path, sizeof path, err);
    if (rc == 0)
        rc = memtable_write_segment(s.mt, nrows, path, &opts, &t->flush_scratch, &info, err);
    if (rc)
        goto done;
    if ((rc = table__seg_open(p->dir, id, &h, err)) != 0) {
        unlink(path);
        goto done;
    }
    if (manifest_copy(&next, &p->man) != 0) {
        rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
        goto undo;
    }
    next.generation++;
    manifest_segment ms = {id, info.nrows, info.bytes, info.min_time, info.max_time, 0};
    if (manifest_add_segment(&next, &ms) != 0) {
        rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
        goto undo;
    }
    if (p->dd) {
        /* Appends wait from here to the swap: the index moves to the segment's rows and
         * the marks the memtable's rows made become durable with this commit. */
        pthread_mutex_lock(&t->dedup_lock);
        dd_locked = true;
        if ((rc = dd_flush_prepare(t, p, &s, h, id, nrows, &next, &inv, &seg_dv, err)) != 0)
            goto undo;
    }
    for (uint32_t i = 0; i < s.cps.n; i++)
        if (manifest_set_checkpoint(&next, s.cps.e[i].name, s.cps.e[i].partition, s.cps.e[i].next) != 0) {
            rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
            goto undo;
        }
    if (set_source_checkpoints(t, p, &next) != 0) {
        rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
        goto undo;
    }
    bool renamed = false;
    if ((rc = manifest_write(p->dir, &next, &renamed, err)) != 0 && !renamed)
        goto undo;
    if (rc) {
        /* MANIFEST was replaced but the directory fsync failed: the commit may or may not
         * survive a crash. The segment it lists must stay, and this table takes no more
         * writes until a restart re-reads what the disk really holds. */
        table__fail(t, err ? err->msg : "manifest commit not durable");
    }

    /* Durable: publish segment in place of the memtable. */
    pthread_mutex_lock(&t->lock);
    manifest_free(&p->man);
    p->man = next;
    memset(&next, 0, sizeof next);
    int prc = table__add_segment(p, h);
    if (prc)
        rc = prc;
    if (prc == 0) {
        if (p->dd) {
            h->dd->dv = seg_dv;
            seg_dv = NULL;
            p->dd_committed = s.dd->serial;
            dedup_committed(p->dd, p->dd_committed);
            dedup_src_detach(p->dd, p->sealed[0].dd);
            dedup_src_free(p->sealed[0].dd);
            s.dd = NULL;
            dedup_part_trim(p->dd); /* appends decode again what they need */
        }
        h = NULL;
        offset_map_free(&p->sealed[0].cps);
        offset_map_free(&p->sealed[0].src);
        memtable_unref(p->sealed[0].mt);
        memmove(&p->sealed[0], &p->sealed[1], sizeof *p->sealed * (p->nsealed - 1));
        p->nsealed--;
    }
    pthread_mutex_unlock(&t->lock);
    if (dd_locked && rc) /* not published: the index goes back to the memtable's rows */
        dd_flush_undo(p, &s, h, nrows, &t->flush_scratch);
    if (dd_locked)
        pthread_mutex_unlock(&t->dedup_lock);
    dd_locked = false;
    if (rc == STRATA_ENOMEM) {
        /* Committed but not published: the memtable still serves the rows (once), and
         * the next start serves the segment. */
        table__fail(t, "out of memory publishing a committed segment");
        rc = strata_err_set(err, STRATA_ENOMEM, "out of memory publishing %s", path);
        goto done;
    }
    if (rc)
        goto done;
    atomic_fetch_add(&t->flushes, 1);
    atomic_fetch_add(&t->rows_flushed, nrows);
    atomic_fetch_add(&t->flush_ns, (uint64_t)clock_mono_ns() - t0);
    goto done;
undo:
    if (dd_locked)
        dd_flush_undo(p, &s, h, nrows, &t->flush_scratch);
    unlink(path);
done:
    if (dd_locked)
        pthread_mutex_unlock(&t->dedup_lock);
    if (h && h->dd && p->dd)
        dedup_src_detach(p->dd, h->dd); /* (a detached source is left alone) */
    table__seg_unref(h);
    dvec_unref(seg_dv);
    free(inv);
    manifest_free(&next);
    memtable_unref(s.mt);
    return rc;
}

/* Keeps the record table_flush_trouble reads: a failure counts and keeps its message
 * (the first of a run sets since), a flush that wrote something ends the run. */
static void flush_outcome(strata_table *t, int rc, const strata_err *err, int64_t now)
{
    pthread_mutex_lock(&t->lock);
    if (rc == 0) {
        t->flush_failing = 0;
    } else {
        if (t->flush_failing++ == 0)
            t->flush_failing_since = now;
        t->flush_failures++;
        snprintf(t->flush_msg, sizeof t->flush_msg, "%s", err && err->msg[0] ? err->msg : strata_strerror(rc));
    }
    pthread_mutex_unlock(&t->lock);
}

/* Deletes the log files the segments now cover: every record below the lowest LSN still
 * only in memtables (else below the log's position) is in a committed segment, or was
 * dropped by retention. Caller holds flush_lock (so no commit runs meanwhile). */
void table__log_forget_covered(strata_table *t)
{
    pthread_mutex_lock(&t->lock);
    int64_t low = offset_map_next(&t->positions, TABLE_LOG_SOURCE, 0);
    for (uint32_t q = 0; q < t->nparts && low >= 0; q++) {
        partition *o = t->parts[q];
        int64_t v = offset_map_lo(&o->active_src, TABLE_LOG_SOURCE, 0);
        if (v >= 0 && v < low)
            low = v;
        for (uint32_t j = 0; j < o->nsealed; j++) {
            v = offset_map_lo(&o->sealed[j].src, TABLE_LOG_SOURCE, 0);
            if (v >= 0 && v < low)
                low = v;
        }
    }
    pthread_mutex_unlock(&t->lock);
    if (low > 0)
        wal_forget_below(atomic_load(&t->log), (uint64_t)low);
}

/* Dedup tables: partitions that left the window give their key index up (dedup.h); one
 * that cannot (out of memory) stays warm and is tried again at the next flush. Caller
 * holds flush_lock. */
static void dd_cool_old_partitions(strata_table *t, partition **parts, uint32_t n)
{
    pthread_mutex_lock(&t->dedup_lock);
    for (uint32_t i = 0; i < n; i++)
        if (parts[i]->dd && !dedup_part_cold(parts[i]->dd) && table__dd_outside_window(t, parts[i]))
            dedup_part_cool(parts[i]->dd, NULL);
    pthread_mutex_unlock(&t->dedup_lock);
}

int table_flush(strata_table *t, bool force, strata_err *err)
{
    int rc = 0;
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&t->write_lock);
    if ((rc = table__writes_refused(t, err)) != 0) {
        pthread_mutex_unlock(&t->write_lock);
        return rc;
    }
    pthread_mutex_lock(&t->lock);
    uint32_t nparts = t->nparts;
    partition **parts = malloc(sizeof *parts * (nparts + 1));
    if (parts && nparts)
        memcpy(parts, t->parts, sizeof *parts * nparts);
    pthread_mutex_unlock(&t->lock);
    if (!parts) {
        pthread_mutex_unlock(&t->write_lock);
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < nparts && rc == 0; i++)
        if (force ? parts[i]->active != NULL : table__due(t, parts[i], now))
            if (table__seal(t, parts[i]) != 0)
                rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
    pthread_mutex_unlock(&t->write_lock);

    pthread_mutex_lock(&t->flush_lock);
    table__parts_keep_live(t, parts, &nparts); /* retention.c may have dropped some meanwhile */
    if (rc == 0)
        rc = table__writes_refused(t, err); /* dropped or failed while this flush waited */
    bool wrote = false, refused = rc != 0;
    for (uint32_t i = 0; i < nparts && rc == 0; i++) {
        for (;;) {
            pthread_mutex_lock(&t->lock);
            bool any = parts[i]->nsealed > 0;
            pthread_mutex_unlock(&t->lock);
            if (!any || (rc = partition_flush_one(t, parts[i], err)) != 0)
                break;
            wrote = true;
        }
    }
    if (wrote && atomic_load(&t->log))
        table__log_forget_covered(t);
    if (t->schema.ndedup)
        dd_cool_old_partitions(t, parts, nparts);
    pthread_mutex_unlock(&t->flush_lock);
    free(parts);
    if (!refused && (rc || wrote))
        flush_outcome(t, rc, err, now);
    return rc;
}

uint64_t table_flush_trouble(strata_table *t, table_flush_record *out)
{
    pthread_mutex_lock(&t->lock);
    out->failures = t->flush_failures;
    out->failing = t->flush_failing;
    out->failing_for_ms = t->flush_failing ? clock_mono_ms() - t->flush_failing_since : 0;
    snprintf(out->message, sizeof out->message, "%s", t->flush_failing ? t->flush_msg : "");
    pthread_mutex_unlock(&t->lock);
    return out->failing;
}

bool table_flush_due(strata_table *t)
{
    int64_t now = clock_mono_ms();
    bool due = false;
    pthread_mutex_lock(&t->lock);
    for (uint32_t i = 0; i < t->nparts && !due; i++)
        due = t->parts[i]->nsealed > 0 || table__due(t, t->parts[i], now);
    pthread_mutex_unlock(&t->lock);
    return due;
}

