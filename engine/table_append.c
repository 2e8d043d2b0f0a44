/*
 * table_append.c — appends to a table: every row of a batch or none, and for sourced
 * appends (a Kafka partition) the exactly-once bookkeeping of offsets: rows a time
 * partition already committed are dropped, each memtable records the offset range of
 * the rows it holds, and the table where each source partition stands. What a flush
 * commits from these (the cp/ and rs/ entries) is in table_flush.c; their format in
 * manifest.h; the maps in offset_map.h. The contract is in table.h.
 */
#include "engine/table_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine/clock.h"
#include "engine/rollup.h"

/* Bytes all memtables of t hold. Caller holds lock. */
static uint64_t memtables_bytes_locked(strata_table *t)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < t->nparts; i++) {
        partition *p = t->parts[i];
        if (p->active)
            total += memtable_bytes(p->active);
        for (uint32_t j = 0; j < p->nsealed; j++)
            total += memtable_bytes(p->sealed[j].mt);
    }
    return total;
}

/* Where sourced rows come from: rows of one (source, partition), offsets[r] for row r of
 * the batch, increasing; or, for a logged append (offsets NULL), row r at lsn + r, where
 * lsn is the batch's log record (taking nrows LSNs), set under write_lock. Rows of one
 * record may land in two memtables of a partition; distinct offsets keep cp/ exact. */
typedef struct row_source {
    const char *source;
    int32_t kpart;
    const int64_t *offsets;
    int64_t lsn;              /* offsets NULL: row r's offset is lsn + r */
    const bytebuf *payload;   /* offsets NULL: the batch's log form, to write at lsn */
} row_source;

static inline int64_t src_offset(const row_source *src, uint32_t r)
{
    return src->offsets ? src->offsets[r] : src->lsn + r;
}

/* ---- appends: prepare everything, then publish in one step ------------------------- *
 * An append either lands every row of its batch or none (a Kafka batch that failed half
 * way would otherwise land twice when it is read again). So all that can fail happens
 * first, per partition the batch touches (part_plan): the partition and its active
 * memtable are made, the rows are staged in the active memtable where readers do not
 * look, rows past its room go to fresh memtables no one sees yet, and the checkpoint
 * entries, sealed-list room and checkpoint copies that publishing needs are allocated.
 * A failure unstages and frees all of it. Then, under one hold of t->lock, every plan is
 * published (staged rows made visible, full memtables sealed, fresh ones installed):
 * nothing there can fail, and a snapshot sees the whole batch or none of it. What a
 * failed prepare leaves behind is inert: empty partitions and memtables, and checkpoint
 * entries with values every reader ignores (lo INT64_MAX, hi -1). */

typedef struct part_plan {
    partition *p;
    uint32_t *rows;      /* this partition's rows of the batch, in batch order */
    uint32_t n;
    uint32_t in_active;  /* rows staged in p->active */
    uint32_t nfresh;     /* memtables for rows past the active one's room */
    memtable **fresh;
    offset_map *fresh_src; /* ranges: the offsets of fresh[i]'s rows */
    offset_map *seal_cps;  /* nfresh copies of pending_cps: the active memtable and
                          * fresh[0..nfresh-2] are sealed at publish */
    dedup_src **fresh_dd;  /* dedup tables: fresh[i]'s source, attached */
    bool dd_begun;         /* dedup tables: p->dd holds this append's changes */
} part_plan;

static void plan_free(part_plan *pl)
{
    for (uint32_t i = 0; i < pl->nfresh; i++) {
        if (pl->fresh_dd && pl->fresh_dd[i]) {
            dedup_src_detach(pl->p->dd, pl->fresh_dd[i]);
            dedup_src_free(pl->fresh_dd[i]);
        }
        if (pl->fresh)
            memtable_unref(pl->fresh[i]);
        if (pl->fresh_src)
            offset_map_free(&pl->fresh_src[i]);
        if (pl->seal_cps)
            offset_map_free(&pl->seal_cps[i]);
    }
    free(pl->fresh);
    free(pl->fresh_src);
    free(pl->seal_cps);
    free(pl->fresh_dd);
    pl->fresh_dd = NULL;
    pl->fresh = NULL;
    pl->fresh_src = NULL;
    pl->seal_cps = NULL;
    pl->nfresh = 0;
}

static void plan_abort(part_plan *pl)
{
    if (pl->dd_begun)
        dedup_append_abort(pl->p->dd);
    pl->dd_begun = false;
    if (pl->in_active)
        memtable_unstage(pl->p->active);
    pl->in_active = 0;
    plan_free(pl);
}

/* The fallible half of an append to one partition (see above). Caller holds write_lock
 * (and dedup_lock for a dedup table); on failure the caller aborts the plan. */
static int plan_prepare(strata_table *t, part_plan *pl, const row_batch *b, const row_source *src,
                        strata_err *err)
{
    partition *p = pl->p;
    if (p->active && table__due(t, p, clock_mono_ms()) && table__seal(t, p) != 0)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    if (!p->active) {
        memtable *mt = memtable_create(&t->schema, p->key, t->schema.memtable_max_rows, err);
        if (!mt)
            return err ? err->code : STRATA_ENOMEM;
        dedup_src *dd = NULL;
        if (p->dd && !(dd = table__dd_memtable(t, p, mt, err))) {
            memtable_unref(mt);
            return err ? err->code : STRATA_ENOMEM;
        }
        pthread_mutex_lock(&t->lock);
        p->active = mt;
        p->active_dd = dd;
        pthread_mutex_unlock(&t->lock);
        p->active_since_ms = clock_mono_ms();
    }
    uint64_t room = memtable_max_rows(p->active) - memtable_staged_rows(p->active);
    uint32_t k = pl->n < room ? pl->n : (uint32_t)room;
    int rc;
    if (k && (rc = memtable_stage(p->active, b, pl->rows, k, err)) != 0)
        return rc;
    pl->in_active = k;
    if (src && k) {
        /* The entry publishing will widen must exist now (widening cannot fail); until
         * then it holds the empty range, which resume points ignore. */
        pthread_mutex_lock(&t->lock);
        rc = offset_map_reserve(&p->active_src, src->source, src->kpart);
        pthread_mutex_unlock(&t->lock);
        if (rc)
            return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    }
    uint32_t left = pl->n - k, done = k;
    if (left == 0)
        return 0;
    uint64_t per = t->schema.memtable_max_rows ? t->schema.memtable_max_rows : 1;
    uint32_t nf = (uint32_t)((left + per - 1) / per);
    pl->fresh = calloc(nf, sizeof *pl->fresh);
    pl->fresh_src = calloc(nf, sizeof *pl->fresh_src);
    pl->seal_cps = calloc(nf, sizeof *pl->seal_cps);
    pl->fresh_dd = p->dd ? calloc(nf, sizeof *pl->fresh_dd) : NULL;
    if (!pl->fresh || !pl->fresh_src || !pl->seal_cps || (p->dd && !pl->fresh_dd))
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    pl->nfresh = nf;
    for (uint32_t i = 0; i < nf; i++) {
        if (!(pl->fresh[i] = memtable_create(&t->schema, p->key, per, err)))
            return err ? err->code : STRATA_ENOMEM;
        /* attached by plan_dedup, after the index may have been rebuilt: a rebuild
         * must not take these rows, not yet looked up, for indexed ones */
        if (p->dd && !(pl->fresh_dd[i] = dedup_src_new(pl->fresh[i], NULL, atomic_fetch_add(&t->mt_serial, 1) + 1)))
            return strata_err_set(err, STRATA_ENOMEM, "out of memory");
        uint32_t take = left < per ? left : (uint32_t)per;
        if ((rc = memtable_append(pl->fresh[i], b, pl->rows + done, take, err)) != 0)
            return rc;
        if (src && offset_map_set_range(&pl->fresh_src[i], src->source, src->kpart,
                                        src_offset(src, pl->rows[done]),
                                        src_offset(src, pl->rows[done + take - 1]) + 1) != 0)
            return strata_err_set(err, STRATA_ENOMEM, "out of memory");
        if (offset_map_copy(&pl->seal_cps[i], &t->pending_cps) != 0)
            return strata_err_set(err, STRATA_ENOMEM, "out of memory");
        done += take;
        left -= take;
    }
    pthread_mutex_lock(&t->lock);
    rc = table__sealed_reserve(p, nf);
    pthread_mutex_unlock(&t->lock);
    return rc ? strata_err_set(err, STRATA_ENOMEM, "out of memory") : 0;
}

/* Dedup tables: decides the winner of every key the plan's rows touch and stages the
 * delete vectors that change (dedup.h). Caller holds write_lock and dedup_lock; on
 * failure the caller aborts the plan. */
static int plan_dedup(strata_table *t, part_plan *pl, const row_batch *b, const uint64_t *hashes,
                      strata_err *err)
{
    partition *p = pl->p;
    int rc = dedup_append_begin(p->dd, pl->n, err);
    if (rc)
        return rc;
    pl->dd_begun = true;
    for (uint32_t j = 0; j < pl->nfresh; j++)
        if ((rc = dedup_src_attach(p->dd, pl->fresh_dd[j], err)) != 0)
            return rc;
    uint64_t before = pl->in_active ? memtable_staged_rows(p->active) - pl->in_active : 0;
    uint64_t per = t->schema.memtable_max_rows ? t->schema.memtable_max_rows : 1;
    enum { AHEAD = 8 }; /* index entries are fetched this many rows ahead */
    for (uint32_t i = 0; i < pl->n && i < AHEAD; i++)
        dedup_prefetch(p->dd, hashes[pl->rows[i]]);
    for (uint32_t i = 0; i < pl->n && rc == 0; i++) {
        if (i + AHEAD < pl->n)
            dedup_prefetch(p->dd, hashes[pl->rows[i + AHEAD]]);
        uint32_t r = pl->rows[i];
        if (i < pl->in_active) {
            rc = dedup_append_row(p->dd, b, r, hashes[r], p->active_dd, before + i, err);
        } else {
            uint64_t j = (i - pl->in_active) / per, fr = (i - pl->in_active) % per;
            rc = dedup_append_row(p->dd, b, r, hashes[r], pl->fresh_dd[j], fr, err);
        }
    }
    return rc ? rc : dedup_append_stage(p->dd, err);
}

/* The infallible half: makes a prepared plan visible. Caller holds write_lock and lock
 * (and dedup_lock for a dedup table). */
static void plan_publish(partition *p, part_plan *pl, const row_source *src, int64_t now)
{
    if (pl->dd_begun)
        dedup_append_commit(p->dd);
    pl->dd_begun = false;
    if (pl->in_active) {
        memtable_publish(p->active);
        if (src) {
            int64_t lo = src_offset(src, pl->rows[0]), hi = src_offset(src, pl->rows[pl->in_active - 1]) + 1;
            offset_map_widen(&p->active_src, src->source, src->kpart, lo, hi);
        }
    }
    if (pl->nfresh) {
        if (memtable_nrows(p->active) > 0) {
            table__seal_reserved(p, &pl->seal_cps[0]);
        } else {
            memtable_unref(p->active);
            offset_map_free(&p->active_src);
            p->active = NULL;
            if (p->dd)
                dedup_src_detach(p->dd, p->active_dd);
            dedup_src_free(p->active_dd);
            p->active_dd = NULL;
        }
        for (uint32_t i = 0; i < pl->nfresh; i++) {
            p->active = pl->fresh[i];
            p->active_src = pl->fresh_src[i];
            if (pl->fresh_dd) {
                p->active_dd = pl->fresh_dd[i];
                pl->fresh_dd[i] = NULL;
            }
            pl->fresh[i] = NULL;
            memset(&pl->fresh_src[i], 0, sizeof pl->fresh_src[i]);
            if (i + 1 < pl->nfresh)
                table__seal_reserved(p, &pl->seal_cps[i + 1]);
        }
        p->active_since_ms = now;
    }
    pl->in_active = 0;
    plan_free(pl);
}

/* table_append and table_append_sourced: all of the batch or none of it (see above). */
static int append_rows(strata_table *t, const row_batch *b, row_source *src,
                       int64_t next_offset, uint64_t *skipped, strata_err *err)
{
    char cpname[MANIFEST_SOURCE_MAX];
    if (src && !manifest_source_key(MANIFEST_CP_PREFIX, src->source, cpname))
        return strata_err_set(err, STRATA_EINVAL, "source name '%.40s...' is too long", src->source);
    if (b->nrows == 0 && !src)
        return 0;
    const strata_schema *sc = &t->schema;
    uint32_t *rows = malloc(sizeof *rows * (b->nrows + 1));
    uint8_t *done = calloc(b->nrows + 1, 1);
    bool dedup = sc->ndedup > 0;
    uint64_t *hashes = dedup ? malloc(sizeof *hashes * (b->nrows + 1)) : NULL;
    if (dedup && hashes)
        dedup_hash_rows(sc, b, hashes); /* before the locks */
    part_plan *plans = NULL;
    uint32_t nplans = 0, plans_cap = 0;
    uint64_t dropped_rows = 0;
    int rc = 0;
    if (!rows || !done || (dedup && !hashes)) {
        free(rows);
        free(done);
        free(hashes);
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    }
    pthread_mutex_lock(&t->write_lock);
    if (dedup)
        pthread_mutex_lock(&t->dedup_lock);
    if ((rc = table__writes_refused(t, err)) != 0)
        goto out;
    if (src && src->payload) {
        /* A logged append: its rows take the LSN of the record written below, so they
         * enter memtables in log order (the cp/ rule of manifest.h needs it). */
        if (!atomic_load(&t->log) && (rc = table__log_open(t, err)) != 0)
            goto out;
        src->lsn = (int64_t)wal_next_lsn(atomic_load(&t->log));
        next_offset = src->lsn + b->nrows;
    }
    pthread_mutex_lock(&t->lock);
    uint64_t used = memtables_bytes_locked(t);
    pthread_mutex_unlock(&t->lock);
    if (used > sc->memory_budget_bytes) {
        rc = strata_err_set(err, STRATA_EFULL,
                            "table '%s': memtables hold %" PRIu64 " bytes, over the budget of %" PRIu64
                            "; flush first",
                            sc->name, used, sc->memory_budget_bytes);
        goto out;
    }
    const int64_t *ts = b->i[sc->time_col];
    int64_t batch_max = INT64_MIN;
    for (uint32_t r = 0; r < b->nrows; r++) {
        batch_max = ts[r] > batch_max ? ts[r] : batch_max;
        if (ts[r] < STRATA_TS_MIN || ts[r] > STRATA_TS_MAX) {
            rc = strata_err_set(err, STRATA_EINVAL,
                                "row %u: time %" PRId64 " is outside the supported range "
                                "(years 0000 to 9999); nothing was appended",
                                r, ts[r]);
            goto out;
        }
    }
    /* Group rows by partition, keeping their order within each partition. Batches
     * nearly always hit one or two partitions, so a pass per distinct key is cheap. */
    uint32_t used_rows = 0;
    for (uint32_t first = 0; first < b->nrows; first++) {
        if (done[first])
            continue;
        int64_t key = schema_partition_key(sc->partition_by, ts[first]);
        uint32_t *prow = rows + used_rows, n = 0;
        for (uint32_t r = first; r < b->nrows; r++)
            if (!done[r] && schema_partition_key(sc->partition_by, ts[r]) == key) {
                prow[n++] = r;
                done[r] = 1;
            }
        used_rows += n;
        partition *p = table__partition_get(t, key, err);
        if (!p) {
            rc = err ? err->code : STRATA_ENOMEM;
            goto out;
        }
        if (src) {
            /* Rows this partition already committed (a replay after a restart) are
             * dropped: each sourced row lands exactly once. */
            pthread_mutex_lock(&t->lock);
            int64_t cp = manifest_get_checkpoint(&p->man, cpname, src->kpart);
            pthread_mutex_unlock(&t->lock);
            uint32_t kept = 0;
            for (uint32_t i = 0; i < n; i++)
                if (src_offset(src, prow[i]) >= cp)
                    prow[kept++] = prow[i];
            dropped_rows += n - kept;
            n = kept;
        }
        if (n == 0)
            continue;
        if (nplans == plans_cap) {
            uint32_t cap = plans_cap ? plans_cap * 2 : 4;
            part_plan *np = realloc(plans, sizeof *np * cap);
            if (!np) {
                rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
                goto out;
            }
            plans = np;
            plans_cap = cap;
        }
        plans[nplans++] = (part_plan){.p = p, .rows = prow, .n = n};
    }
    for (uint32_t i = 0; i < nplans && rc == 0; i++)
        rc = plan_prepare(t, &plans[i], b, src, err);
    for (uint32_t i = 0; i < nplans && rc == 0 && dedup; i++)
        rc = plan_dedup(t, &plans[i], b, hashes, err);
    if (rc == 0 && src) {
        /* The position entry must exist too; until published it says where the batch
         * starts, which is where a reader of this source would resume anyway. */
        pthread_mutex_lock(&t->lock);
        if (offset_map_next(&t->positions, src->source, src->kpart) < 0 &&
            offset_map_set(&t->positions, src->source, src->kpart,
                           b->nrows ? src_offset(src, 0) : next_offset) != 0)
            rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
        pthread_mutex_unlock(&t->lock);
    }
    if (rc == 0 && src && src->payload) {
        uint64_t lsn;
        rc = wal_append(atomic_load(&t->log), src->payload->data, src->payload->len, b->nrows, &lsn, err);
        if (rc == STRATA_EIO)
            table__fail(t, err ? err->msg : "write-ahead log failed");
    }
    if (rc)
        goto out;
    /* Publish: nothing below can fail. */
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&t->lock);
    for (uint32_t i = 0; i < nplans; i++) {
        plan_publish(plans[i].p, &plans[i], src, now);
        rollup_note_rows(t->rollups, ts, plans[i].rows, plans[i].n); /* late rows dirty sealed buckets */
    }
    if (src)
        offset_map_set(&t->positions, src->source, src->kpart, next_offset);
    pthread_mutex_unlock(&t->lock);
    nplans = 0;
    if (skipped)
        *skipped += dropped_rows;
    if (b->nrows) {
        int64_t cur = atomic_load(&t->max_time);
        while (batch_max > cur && !atomic_compare_exchange_weak(&t->max_time, &cur, batch_max))
            ;
    }
out:
    for (uint32_t i = nplans; i-- > 0;)
        plan_abort(&plans[i]);
    if (dedup)
        pthread_mutex_unlock(&t->dedup_lock);
    pthread_mutex_unlock(&t->write_lock);
    free(plans);
    free(rows);
    free(done);
    free(hashes);
    return rc;
}

int table_append(strata_table *t, const row_batch *b, strata_err *err)
{
    return append_rows(t, b, NULL, 0, NULL, err);
}

int table_append_sourced(strata_table *t, const row_batch *b, const char *source, int32_t kpart,
                         const int64_t *offsets, int64_t next_offset, uint64_t *skipped,
                         strata_err *err)
{
    row_source src = {source, kpart, offsets, 0, NULL};
    return append_rows(t, b, &src, next_offset, skipped, err);
}

/* The log form of a batch is built in a buffer each appending thread keeps (a fresh
 * one would be faulted in anew for every request: about 2% of bulk ingest); one over
 * LOG_BUF_KEEP is let go after use. */
#define LOG_BUF_KEEP (UINT64_C(16) << 20)
static pthread_key_t log_buf_key;
static pthread_once_t log_buf_once = PTHREAD_ONCE_INIT;

static void log_buf_free(void *p)
{
    buf_free(p);
    free(p);
}

static void log_buf_key_make(void)
{
    pthread_key_create(&log_buf_key, log_buf_free);
}

/* This thread's buffer (freed when the thread ends), or NULL when out of memory. */
static bytebuf *log_buf_get(void)
{
    pthread_once(&log_buf_once, log_buf_key_make);
    bytebuf *b = pthread_getspecific(log_buf_key);
    if (!b && (b = calloc(1, sizeof *b)) != NULL && pthread_setspecific(log_buf_key, b) != 0) {
        free(b);
        b = NULL;
    }
    return b;
}

int table_append_logged(strata_table *t, const row_batch *b, uint64_t *lsn, strata_err *err)
{
    *lsn = 0;
    if (b->nrows == 0)
        return 0;
    bytebuf *payload = log_buf_get();
    if (!payload)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    payload->len = 0;
    payload->oom = false;
    if (row_batch_encode(b, payload) != 0) {
        buf_free(payload);
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    }
    row_source src = {TABLE_LOG_SOURCE, 0, NULL, 0, payload};
    int rc = append_rows(t, b, &src, 0, NULL, err);
    if (payload->cap > LOG_BUF_KEEP)
        buf_free(payload);
    if (rc == 0)
        *lsn = (uint64_t)src.lsn;
    return rc;
}

int table__replay_append(strata_table *t, const row_batch *b, uint64_t lsn, uint64_t *skipped,
                         strata_err *err)
{
    int64_t off = (int64_t)lsn;
    row_source src = {TABLE_LOG_SOURCE, 0, NULL, off, NULL};
    return append_rows(t, b, &src, off + (int64_t)b->nrows, skipped, err);
}

int table_log_sync(strata_table *t, uint64_t lsn, strata_err *err)
{
    if (lsn == 0)
        return 0;
    int rc = wal_sync(atomic_load(&t->log), lsn, err);
    if (rc)
        table__fail(t, err ? err->msg : "write-ahead log failed");
    return rc;
}

void table_log_stats(strata_table *t, wal_stats *out)
{
    wal *w = atomic_load(&t->log);
    if (w)
        wal_get_stats(w, out);
    else
        memset(out, 0, sizeof *out);
}

bool table_log_durable(strata_table *t, uint64_t lsn)
{
    return lsn == 0 || wal_durable(atomic_load(&t->log), lsn);
}

int64_t table_source_resume(strata_table *t, const char *source, int32_t kpart)
{
    char name[MANIFEST_SOURCE_MAX];
    if (!manifest_source_key(MANIFEST_RS_PREFIX, source, name))
        return -1;
    return table_checkpoint_max(t, name, kpart);
}

int64_t table_checkpoint_max(strata_table *t, const char *name, int32_t kpart)
{
    int64_t best = -1;
    pthread_mutex_lock(&t->lock);
    for (uint32_t i = 0; i < t->nparts; i++) {
        int64_t v = manifest_get_checkpoint(&t->parts[i]->man, name, kpart);
        if (v > best)
            best = v;
    }
    pthread_mutex_unlock(&t->lock);
    return best;
}

void table_source_forget(strata_table *t, const char *source, int32_t kpart)
{
    pthread_mutex_lock(&t->lock);
    offset_map_remove(&t->positions, source, kpart);
    pthread_mutex_unlock(&t->lock);
}

int table_note_checkpoint(strata_table *t, const char *source, int32_t kpart,
                          int64_t next_offset)
{
    pthread_mutex_lock(&t->write_lock);
    int rc = offset_map_set(&t->pending_cps, source, kpart, next_offset);
    pthread_mutex_unlock(&t->write_lock);
    return rc;
}

