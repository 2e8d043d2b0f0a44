/*
 * retention.c — a table's expired partitions dropped whole (retention_sweep), and the
 * leftovers of a sweep cut short removed at open. The rule, the steps and what a crash
 * leaves are written down in retention.h.
 *
 * Locks: a sweep holds merge_lock, write_lock and flush_lock (in that order, as merges
 * and table_writes_pause take them; then at most tries rollup_save_lock, which a save
 * holds while it flushes) for its whole length, so no merge, append or flush
 * holds a partition it drops; t->lock for each change of t->parts. A flush that copied
 * the partition list before the sweep and waits for flush_lock skips the dropped ones
 * (table__parts_keep_live, called by table_flush).
 */
#include "engine/retention.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/fs.h"
#include "engine/rollup.h"
#include "engine/table_internal.h"

#define EXPIRED_PREFIX ".expired-"

static int ptr_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(partition *const *)a, y = (uintptr_t)*(partition *const *)b;
    return x < y ? -1 : x > y;
}

void table__parts_keep_live(strata_table *t, partition **parts, uint32_t *n)
{
    /* Only pointers are compared: a dropped partition is freed memory. */
    pthread_mutex_lock(&t->lock);
    if (*n == 0 || (*n <= t->nparts && memcmp(parts, t->parts, sizeof *parts * *n) == 0)) {
        pthread_mutex_unlock(&t->lock); /* the usual case: nothing went */
        return;
    }
    partition **live = malloc(sizeof *live * (t->nparts + 1));
    uint32_t nlive = t->nparts;
    if (live && nlive)
        memcpy(live, t->parts, sizeof *live * nlive);
    pthread_mutex_unlock(&t->lock);
    if (!live) {
        *n = 0; /* no memory to tell: flush nothing this time (the next flush retries) */
        return;
    }
    qsort(live, nlive, sizeof *live, ptr_cmp);
    uint32_t k = 0;
    for (uint32_t i = 0; i < *n; i++)
        if (bsearch(&parts[i], live, nlive, sizeof *live, ptr_cmp))
            parts[k++] = parts[i];
    *n = k;
    free(live);
}

void table__expired_leftovers_remove(strata_table *t)
{
    DIR *d = opendir(t->raw_dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char path[PATH_MAX + 300];
        if (strncmp(de->d_name, EXPIRED_PREFIX, strlen(EXPIRED_PREFIX)) == 0 &&
            fs_path(path, sizeof path, NULL, "%s/%s", t->raw_dir, de->d_name) == 0)
            fs_remove_tree(path);
    }
    closedir(d);
}

/* Rows p holds in segments and memtables. Caller holds lock. */
static uint64_t partition_rows(const partition *p)
{
    uint64_t rows = 0;
    for (uint32_t i = 0; i < p->nsegs; i++)
        rows += segment_nrows(p->segs[i]->seg);
    if (p->active)
        rows += memtable_nrows(p->active);
    for (uint32_t i = 0; i < p->nsealed; i++)
        rows += memtable_nrows(p->sealed[i].mt);
    return rows;
}

/* Step 1 of retention.h: the checkpoints of parts[0..nexp) (other than cp/) that are
 * higher than keep's, committed into keep's manifest. Caller holds flush_lock. */
static int carry_checkpoints(strata_table *t, partition **exp, uint32_t nexp, partition *keep,
                             strata_err *err)
{
    manifest next;
    if (manifest_copy(&next, &keep->man) != 0)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    bool changed = false;
    int rc = 0;
    for (uint32_t i = 0; i < nexp && rc == 0; i++) {
        const manifest *m = &exp[i]->man;
        for (uint32_t k = 0; k < m->ncps && rc == 0; k++) {
            const manifest_checkpoint *c = &m->cps[k];
            if (strncmp(c->source, MANIFEST_CP_PREFIX, strlen(MANIFEST_CP_PREFIX)) == 0 ||
                c->next_offset <= manifest_get_checkpoint(&next, c->source, c->partition))
                continue;
            if (manifest_set_checkpoint(&next, c->source, c->partition, c->next_offset) != 0)
                rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
            changed = true;
        }
    }
    if (rc || !changed) {
        manifest_free(&next);
        return rc;
    }
    next.generation++;
    bool renamed = false;
    if ((rc = manifest_write(keep->dir, &next, &renamed, err)) != 0 && !renamed) {
        manifest_free(&next);
        return rc;
    }
    if (rc)
        table__fail(t, err ? err->msg : "manifest commit not durable");
    pthread_mutex_lock(&t->lock);
    manifest_free(&keep->man);
    keep->man = next;
    pthread_mutex_unlock(&t->lock);
    return rc;
}

int retention_sweep(strata_table *t, int64_t now_ms, retention_report *rep, strata_err *err)
{
    memset(rep, 0, sizeof *rep);
    rep->tiers_expired = rollup_expire(t->rollups, now_ms); /* tiers with retention of their own */
    int64_t keep_ms = t->schema.retention_raw_ms;
    if (keep_ms <= 0)
        return 0;
    int64_t cutoff = now_ms - keep_ms;
    strata_partition_by by = t->schema.partition_by;
    /* Partitions are sorted by key, and so by end: the expired ones are a prefix. */
    pthread_mutex_lock(&t->lock);
    bool any = t->nparts > 0 && schema_partition_next(by, t->parts[0]->key) <= cutoff;
    pthread_mutex_unlock(&t->lock);
    if (!any)
        return 0;

    if (pthread_mutex_trylock(&t->merge_lock) != 0)
        return 0; /* a merge runs (optimize): the next sweep drops them */
    pthread_mutex_lock(&t->write_lock);
    pthread_mutex_lock(&t->flush_lock);
    int rc = table__writes_refused(t, err);
    uint32_t nexp = 0;
    partition **exp = NULL;
    partition *keep = NULL;
    if (rc == 0) {
        pthread_mutex_lock(&t->lock);
        /* Tiers that outlive raw rows must hold them first (built, clean and saved): the
         * prefix of partitions they do is dropped now, the rest at a later sweep. No
         * append runs meanwhile (write_lock), so no mark can come in between. */
        int wt = -1;
        while (nexp < t->nparts && schema_partition_next(by, t->parts[nexp]->key) <= cutoff &&
               rollup_raw_expiry_ready(t->rollups, schema_partition_next(by, t->parts[nexp]->key), &wt))
            nexp++;
        if (wt >= 0 && nexp < t->nparts)
            schema_partition_name(by, t->parts[nexp]->key, rep->waiting, sizeof rep->waiting);
        exp = malloc(sizeof *exp * (nexp + 1));
        if (exp)
            memcpy(exp, t->parts, sizeof *exp * nexp);
        keep = nexp < t->nparts ? t->parts[t->nparts - 1] : NULL;
        pthread_mutex_unlock(&t->lock);
        if (!exp)
            rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
    }
    if (rc == 0 && keep && nexp)
        rc = carry_checkpoints(t, exp, nexp, keep, err);
    if (rc == 0 && nexp && t->rollups) {
        /* The tiers learn first, durably, that raw rows end where the drop ends: a tier
         * that outlives them answers that range alone from now on (its floor, saved, tells
         * the next start so too), the others forget it. A crash after this and before the
         * drop leaves rows the tiers already answer for, dropped by the next sweep. */
        pthread_mutex_lock(&t->lock);
        rollup_forget_before(t->rollups, schema_partition_next(by, exp[nexp - 1]->key));
        pthread_mutex_unlock(&t->lock);
        rc = table__rollups_commit_floor(t, schema_partition_next(by, exp[nexp - 1]->key), err);
        if (rc == STRATA_ENOTFOUND) { /* a save runs: the next sweep drops them */
            rc = 0;
            nexp = 0;
        }
    }
    uint32_t renamed = 0;
    for (uint32_t i = 0; i < nexp && rc == 0; i++) {
        partition *p = exp[i];
        char name[32], trash[PATH_MAX];
        schema_partition_name(by, p->key, name, sizeof name);
        if ((rc = fs_path(trash, sizeof trash, err, "%s/" EXPIRED_PREFIX "%s", t->raw_dir, name)) != 0)
            break;
        fs_remove_tree(trash); /* one an earlier sweep could not remove */
        if (rename(p->dir, trash) != 0 && errno != ENOENT) {
            rc = strata_err_set(err, STRATA_EIO, "%s: rename to %s: %s", p->dir, trash, strerror(errno));
            break;
        }
        renamed++;
        pthread_mutex_lock(&t->lock);
        uint64_t rows = partition_rows(p);
        /* It is t->parts[0]: every partition before it went the same way. */
        memmove(&t->parts[0], &t->parts[1], sizeof *t->parts * (t->nparts - 1));
        t->nparts--;
        /* in the same hold: no snapshot sees the tiers know rows the table lost */
        rollup_forget_before(t->rollups, schema_partition_next(by, p->key));
        if (t->raw_floor < schema_partition_next(by, p->key))
            t->raw_floor = schema_partition_next(by, p->key);
        pthread_mutex_unlock(&t->lock);
        table__partition_free(p);
        rep->partitions++;
        rep->rows += rows;
        snprintf(rep->last, sizeof rep->last, "%s", name);
        if (rep->partitions == 1)
            snprintf(rep->first, sizeof rep->first, "%s", name);
        atomic_fetch_add(&t->expired_partitions, 1);
        atomic_fetch_add(&t->expired_rows, rows);
    }
    /* The renames durable before any file goes: a crash must never bring back a
     * partition directory whose MANIFEST lists files already removed. */
    int drc = renamed ? fs_fsync_dir(t->raw_dir) : 0;
    if (drc) {
        if (rc == 0)
            rc = strata_err_set(err, STRATA_EIO, "%s: fsync directory after dropping expired "
                                "partitions: %s (they may come back after a crash, and go again)",
                                t->raw_dir, strerror(-drc));
    } else if (renamed) {
        table__expired_leftovers_remove(t);
        /* Logged rows the drop took while they were only in memtables (posted already
         * expired) must not come back at the next start: let the log go up to the rows
         * still in memory. */
        if (atomic_load(&t->log))
            table__log_forget_covered(t);
    }
    pthread_mutex_unlock(&t->flush_lock);
    pthread_mutex_unlock(&t->write_lock);
    pthread_mutex_unlock(&t->merge_lock);
    free(exp);
    return rc;
}
