/*
 * table.c — a table's partitions and their lifetime: open and recovery, new partitions,
 * the segment handles partitions and snapshots share, the table's state (failed,
 * dropped, damaged, statistics) and read snapshots. The contract (threads, locks,
 * recovery) is in table.h; appends are in table_append.c, flushes in table_flush.c, the
 * struct they share in table_internal.h.
 *
 * Segments are shared between the table and live snapshots through table_seg, a
 * reference-counted handle; a partition's segment list and memtable lists change only
 * under t->lock, so a snapshot taken under it sees every row exactly once.
 */
#include "engine/table_internal.h"

#include "engine/rollup.h"
#include "engine/rollup_store.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/fs.h"

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static void partition_free(partition *p)
{
    if (!p)
        return;
    for (uint32_t i = 0; i < p->nsegs; i++) {
        if (p->dd && p->segs[i]->dd)
            dedup_src_detach(p->dd, p->segs[i]->dd);
        table__seg_unref(p->segs[i]);
    }
    free(p->segs);
    memtable_unref(p->active);
    if (p->dd)
        dedup_src_detach(p->dd, p->active_dd);
    dedup_src_free(p->active_dd);
    for (uint32_t i = 0; i < p->nsealed; i++) {
        if (p->dd)
            dedup_src_detach(p->dd, p->sealed[i].dd);
        dedup_src_free(p->sealed[i].dd);
        memtable_unref(p->sealed[i].mt);
        offset_map_free(&p->sealed[i].cps);
        offset_map_free(&p->sealed[i].src);
    }
    offset_map_free(&p->active_src);
    free(p->sealed);
    manifest_free(&p->man);
    dedup_part_free(p->dd);
    free(p);
}

int table__add_segment(partition *p, table_seg *h)
{
    if (p->nsegs == p->segs_cap) {
        uint32_t cap = p->segs_cap ? p->segs_cap * 2 : 8;
        table_seg **s = realloc(p->segs, sizeof *s * cap);
        if (!s)
            return STRATA_ENOMEM;
        p->segs = s;
        p->segs_cap = cap;
    }
    p->segs[p->nsegs++] = h;
    return 0;
}

int table__seg_path(const char *dir, uint64_t id, char *out, size_t cap, strata_err *err)
{
    char name[32];
    manifest_segment_name(id, name, sizeof name);
    return fs_path(out, cap, err, "%s/%s", dir, name);
}

int table__seg_open(const char *dir, uint64_t id, table_seg **out, strata_err *err)
{
    char path[PATH_MAX + 32];
    int rc = table__seg_path(dir, id, path, sizeof path, err);
    if (rc)
        return rc;
    table_seg *h = calloc(1, sizeof *h);
    if (!h)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    rc = segment_open(path, &h->seg, err);
    if (rc) {
        free(h);
        return rc;
    }
    h->id = id;
    atomic_init(&h->refs, 1);
    *out = h;
    return 0;
}

void table__seg_unref(table_seg *h)
{
    if (h && atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) == 1) {
        dedup_src_free(h->dd);
        segment_close(h->seg);
        free(h);
    }
}

/* Dedup tables: h's source, with the delete vector p's manifest holds for it, attached
 * to p's index. */
static int seg_dedup_load(partition *p, table_seg *h, strata_err *err)
{
    if (!(h->dd = dedup_src_new(NULL, h->seg, 0)))
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    const manifest_dv *mdv = manifest_get_dv(&p->man, h->id);
    int rc = 0;
    if (mdv && (rc = dvec_deserialize(mdv->data, mdv->len, segment_nrows(h->seg), &h->dd->dv, err)) != 0) {
        strata_err_prefix(err, "%s/MANIFEST: segment %s", p->dir, segment_path(h->seg));
        return rc;
    }
    return dedup_src_attach(p->dd, h->dd, err);
}

dedup_src *table__dd_memtable(strata_table *t, partition *p, memtable *mt, strata_err *err)
{
    dedup_src *ds = dedup_src_new(mt, NULL, atomic_fetch_add(&t->mt_serial, 1) + 1);
    if (!ds) {
        strata_err_set(err, STRATA_ENOMEM, "out of memory");
        return NULL;
    }
    if (dedup_src_attach(p->dd, ds, err) != 0) {
        dedup_src_free(ds);
        return NULL;
    }
    return ds;
}

int table__dd_manifest(strata_table *t, partition *p, manifest *next, uint64_t committed,
                       const dedup_src *extra, uint64_t extra_id, strata_err *err)
{
    (void)t;
    manifest_clear_dvs(next);
    bytebuf b = {0};
    int rc = 0;
    for (uint32_t i = 0; i <= p->nsegs && rc == 0; i++) {
        const dedup_src *ds = i < p->nsegs ? p->segs[i]->dd : extra;
        uint64_t id = i < p->nsegs ? p->segs[i]->id : extra_id;
        if (!ds || dvec_count(ds->dv) == 0)
            continue;
        bool listed = false; /* a segment a merge is replacing is no longer in next */
        for (uint32_t j = 0; j < next->nsegs && !listed; j++)
            listed = next->segs[j].id == id;
        if (!listed)
            continue;
        b.len = 0;
        if ((rc = dedup_durable_marks(p->dd, ds, ds->dv, committed, &b, err)) != 0)
            break;
        if (b.len > 8 && manifest_set_dv(next, id, b.data, (uint32_t)b.len) != 0)
            rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
    }
    buf_free(&b);
    return rc;
}

/* Loads one partition directory: manifest, cleanup of uncommitted files, segments. */
static int partition_recover(strata_table *t, int64_t key, const char *name, partition **out,
                             strata_err *err)
{
    partition *p = calloc(1, sizeof *p);
    if (!p || (t->schema.ndedup && !(p->dd = dedup_part_create(&t->schema)))) {
        free(p);
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    }
    p->key = key;
    int rc = fs_path(p->dir, sizeof p->dir, err, "%s/%s", t->raw_dir, name);
    if (rc == 0)
        rc = manifest_read(p->dir, &p->man, err);
    bool no_manifest = rc == STRATA_ENOTFOUND;
    if (no_manifest)
        rc = 0;
    if (rc)
        goto fail;
    DIR *d = opendir(p->dir);
    if (!d) {
        rc = strata_err_set(err, STRATA_EIO, "%s: %s", p->dir, strerror(errno));
        goto fail;
    }
    if (no_manifest) {
        /* A partition's MANIFEST is written when its directory is made, before any
         * segment: segments without one mean the MANIFEST was lost, and taking them for
         * uncommitted leftovers would delete committed rows. */
        struct dirent *e;
        uint32_t segs = 0;
        while ((e = readdir(d)) != NULL)
            segs += has_suffix(e->d_name, ".seg");
        if (segs) {
            closedir(d);
            rc = strata_err_set(err, STRATA_ECORRUPT,
                                "%s: MANIFEST is missing but %u segment file(s) are there; refusing to "
                                "guess which are committed (restore MANIFEST, or move the partition "
                                "directory away to drop its rows)",
                                p->dir, segs);
            goto fail;
        }
        rewinddir(d);
    }
    bool removed = false;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *fn = de->d_name;
        bool stray = has_suffix(fn, ".tmp");
        if (has_suffix(fn, ".seg")) {
            stray = true;
            for (uint32_t i = 0; i < p->man.nsegs && stray; i++) {
                char want[32];
                manifest_segment_name(p->man.segs[i].id, want, sizeof want);
                stray = strcmp(want, fn) != 0;
            }
        }
        if (stray) {
            char path[PATH_MAX + 300];
            if (fs_path(path, sizeof path, NULL, "%s/%s", p->dir, fn) == 0 && unlink(path) == 0)
                removed = true;
        }
    }
    closedir(d);
    int drc = removed ? fs_fsync_dir(p->dir) : 0;
    if (drc) {
        rc = strata_err_set(err, STRATA_EIO, "%s: fsync directory after removing uncommitted files: %s",
                            p->dir, strerror(-drc));
        goto fail;
    }
    for (uint32_t i = 0; i < p->man.nsegs; i++) {
        table_seg *h;
        if ((rc = table__seg_open(p->dir, p->man.segs[i].id, &h, err)) != 0) {
            strata_err_prefix(err, "table '%s': committed segment cannot be read", t->schema.name);
            goto fail;
        }
        if (segment_nrows(h->seg) && segment_max_time(h->seg) > atomic_load(&t->max_time))
            atomic_store(&t->max_time, segment_max_time(h->seg));
        if (segment_nrows(h->seg) != p->man.segs[i].rows) {
            rc = strata_err_set(err, STRATA_ECORRUPT,
                                "%s: holds %" PRIu64 " rows, its manifest says %" PRIu64,
                                segment_path(h->seg), segment_nrows(h->seg), p->man.segs[i].rows);
            table__seg_unref(h);
            goto fail;
        }
        if (p->dd && (rc = seg_dedup_load(p, h, err)) != 0) {
            table__seg_unref(h);
            goto fail;
        }
        if ((rc = table__add_segment(p, h)) != 0) {
            if (p->dd)
                dedup_src_detach(p->dd, h->dd);
            table__seg_unref(h);
            rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
            goto fail;
        }
        uint64_t next = p->man.segs[i].id + 1;
        if (next > atomic_load(&t->next_seg_id))
            atomic_store(&t->next_seg_id, next);
    }
    *out = p;
    return 0;
fail:
    partition_free(p);
    return rc;
}

void table__partition_free(partition *p) { partition_free(p); }

static int parts_insert(strata_table *t, partition *p)
{
    if (t->nparts == t->parts_cap) {
        uint32_t cap = t->parts_cap ? t->parts_cap * 2 : 16;
        partition **np = realloc(t->parts, sizeof *np * cap);
        if (!np)
            return STRATA_ENOMEM;
        t->parts = np;
        t->parts_cap = cap;
    }
    uint32_t i = t->nparts;
    while (i > 0 && t->parts[i - 1]->key > p->key) {
        t->parts[i] = t->parts[i - 1];
        i--;
    }
    t->parts[i] = p;
    t->nparts++;
    return 0;
}

/* ---- the write-ahead log ------------------------------------------------------------ */

typedef struct replay_ctx {
    strata_table *t;
    row_batch b;
    uint64_t rows, skipped;
} replay_ctx;

/* One log record back into the table; a memory budget that fills up is flushed. */
static int replay_record(void *arg, uint64_t lsn, uint32_t count, const uint8_t *payload, uint32_t len,
                         strata_err *err)
{
    replay_ctx *rc = arg;
    int r = row_batch_decode(&rc->b, payload, len, err);
    if (r == 0 && rc->b.nrows != count)
        r = strata_err_set(err, STRATA_ECORRUPT, "%u rows for %u log positions", rc->b.nrows, count);
    if (r) {
        strata_err_prefix(err, "%s/: log record %" PRIu64, rc->t->log_dir, lsn);
        return r;
    }
    uint64_t skipped = 0;
    r = table__replay_append(rc->t, &rc->b, lsn, &skipped, err);
    if (r == STRATA_EFULL && (r = table_flush(rc->t, true, err)) == 0)
        r = table__replay_append(rc->t, &rc->b, lsn, &skipped, err);
    if (r == 0) {
        rc->rows += rc->b.nrows - skipped;
        rc->skipped += skipped;
    }
    return r;
}

/* Recovery of logged appends: every record the segments do not cover (from the resume
 * point the manifests hold) is appended again, through the same per-partition checks
 * (cp/log) as a Kafka replay; a torn last record, never acknowledged, is cut. The next
 * LSN is past every record and every checkpoint, so a new row is never taken for a
 * replay. */
static int log_recover(strata_table *t, strata_err *err)
{
    int64_t resume = table_source_resume(t, TABLE_LOG_SOURCE, 0);
    char cpname[MANIFEST_SOURCE_MAX];
    manifest_source_key(MANIFEST_CP_PREFIX, TABLE_LOG_SOURCE, cpname);
    int64_t cp = table_checkpoint_max(t, cpname, 0);
    uint64_t next = 1;
    if (resume > 0 && (uint64_t)resume > next)
        next = (uint64_t)resume;
    if (cp > 0 && (uint64_t)cp > next)
        next = (uint64_t)cp;
    struct stat st;
    if (stat(t->log_dir, &st) != 0) {
        t->log_next = next;
        return 0; /* no log yet: the first logged append makes it */
    }
    replay_ctx ctx = {.t = t};
    if (row_batch_init(&ctx.b, &t->schema, 0) != 0)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    wal_replay_report rep;
    int rc = wal_replay(t->log_dir, resume > 0 ? (uint64_t)resume : 0, replay_record, &ctx, &rep, err);
    row_batch_free(&ctx.b);
    if (rc)
        return rc;
    if (rep.end_lsn > next)
        next = rep.end_lsn;
    t->log_next = next;
    int n = 0;
    if (rep.records)
        n = snprintf(t->recovery_note, sizeof t->recovery_note,
                     "replayed %" PRIu64 " rows from %" PRIu64 " write-ahead log records", ctx.rows,
                     rep.records);
    if (ctx.skipped && n >= 0 && (size_t)n < sizeof t->recovery_note)
        n += snprintf(t->recovery_note + n, sizeof t->recovery_note - (size_t)n,
                      " (and skipped %" PRIu64 " rows of them that a partition's segments held already)",
                      ctx.skipped);
    if (rep.torn_bytes && n >= 0 && (size_t)n < sizeof t->recovery_note)
        snprintf(t->recovery_note + n, sizeof t->recovery_note - (size_t)n,
                 "%sdropped a torn last log record (%" PRIu64 " bytes at offset %" PRIu64 " of %s in "
                 WAL_DIR_NAME "/: written but never acknowledged)", n ? "; " : "", rep.torn_bytes,
                 rep.torn_offset, rep.torn_file);
    if ((rc = table__log_open(t, err)) == 0 && resume > 0)
        wal_forget_below(atomic_load(&t->log), (uint64_t)resume);
    return rc;
}

int table__log_open(strata_table *t, strata_err *err)
{
    if (atomic_load(&t->log))
        return 0;
    wal *w;
    int rc = wal_open(t->log_dir, t->log_next, &w, err);
    if (rc == 0)
        atomic_store(&t->log, w);
    return rc;
}

const char *table_recovery_note(const strata_table *t)
{
    return t->recovery_note;
}

/* Dedup tables, at open: the key index of every partition within the window is built
 * from its segments' live rows; the older ones start cold (dedup.h). */
static int dd_indexes_load(strata_table *t, strata_err *err)
{
    for (uint32_t i = 0; i < t->nparts; i++) {
        partition *p = t->parts[i];
        if (!p->dd)
            continue;
        int rc = table__dd_outside_window(t, p) ? dedup_part_cool(p->dd, err) : dedup_part_rebuild(p->dd, 0, err);
        if (rc) {
            char name[32];
            schema_partition_name(t->schema.partition_by, p->key, name, sizeof name);
            strata_err_prefix(err, "table '%s': partition %s: dedup index", t->schema.name, name);
            return rc;
        }
    }
    return 0;
}

bool table__dd_outside_window(strata_table *t, const partition *p)
{
    int64_t latest = atomic_load(&t->max_time);
    return latest != INT64_MIN && schema_partition_next(t->schema.partition_by, p->key) <= latest - t->schema.dedup_window_ms;
}

int table_open(const char *data_dir, const strata_schema *schema, strata_table **out,
               strata_err *err)
{
    *out = NULL;
    int rc = schema_validate(schema, err);
    if (rc)
        return rc;
    if (strlen(data_dir) > 2900)
        return strata_err_set(err, STRATA_EINVAL, "data directory path is too long");
    strata_table *t = calloc(1, sizeof *t);
    if (t)
        atomic_init(&t->max_time, INT64_MIN);
    if (!t)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    t->schema = *schema;
    schema_apply_default_order(&t->schema);
    t->rollups = rollup_set_create(&t->schema); /* NULL without rollups (or memory: raw rows serve) */
    pthread_mutex_init(&t->lock, NULL);
    pthread_mutex_init(&t->write_lock, NULL);
    pthread_mutex_init(&t->flush_lock, NULL);
    pthread_mutex_init(&t->dedup_lock, NULL);
    pthread_mutex_init(&t->merge_lock, NULL); /* merge.c, retention.c */
    pthread_mutex_init(&t->rollup_save_lock, NULL);
    atomic_init(&t->next_seg_id, 1);
    t->raw_floor = INT64_MIN;
    if ((rc = fs_path(t->dir, sizeof t->dir, err, "%s/%s", data_dir, schema->name)) != 0 ||
        (rc = fs_path(t->raw_dir, sizeof t->raw_dir, err, "%s/raw", t->dir)) != 0)
        goto fail;
    struct stat st;
    bool made = stat(t->raw_dir, &st) != 0;
    if ((rc = fs_mkdir_p(t->raw_dir, err)) != 0)
        goto fail;
    int drc = made ? fs_fsync_dir(t->dir) : 0;
    if (drc) {
        rc = strata_err_set(err, STRATA_EIO, "%s: fsync directory: %s", t->dir, strerror(-drc));
        goto fail;
    }
    table__expired_leftovers_remove(t); /* retention.c: a sweep cut short by a crash */
    DIR *d = opendir(t->raw_dir);
    if (!d) {
        rc = strata_err_set(err, STRATA_EIO, "%s: %s", t->raw_dir, strerror(errno));
        goto fail;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int64_t key;
        if (de->d_name[0] == '.' ||
            schema_partition_parse(t->schema.partition_by, de->d_name, &key) != 0)
            continue; /* not ours: leave it alone */
        partition *p;
        if ((rc = partition_recover(t, key, de->d_name, &p, err)) != 0)
            break;
        if (parts_insert(t, p) != 0) {
            partition_free(p);
            rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
            break;
        }
    }
    closedir(d);
    if (rc)
        goto fail;
    if ((rc = dd_indexes_load(t, err)) != 0)
        goto fail;
    if ((rc = table__rollups_open(t, err)) != 0) /* before the log replay marks its rows */
        goto fail;
    if ((rc = fs_path(t->log_dir, sizeof t->log_dir, err, "%s/" WAL_DIR_NAME, t->dir)) != 0 ||
        (rc = log_recover(t, err)) != 0)
        goto fail;
    *out = t;
    return 0;
fail:
    table_close(t);
    return rc;
}

void table_close(strata_table *t)
{
    if (!t)
        return;
    wal_close(atomic_load(&t->log));
    for (uint32_t i = 0; i < t->nparts; i++)
        partition_free(t->parts[i]);
    free(t->parts);
    offset_map_free(&t->pending_cps);
    offset_map_free(&t->positions);
    memtable_flush_scratch_free(&t->flush_scratch);
    rollup_store_close(t->rstore);
    rollup_set_free(t->rollups);
    pthread_mutex_destroy(&t->rollup_save_lock);
    pthread_mutex_destroy(&t->lock);
    pthread_mutex_destroy(&t->write_lock);
    pthread_mutex_destroy(&t->flush_lock);
    pthread_mutex_destroy(&t->dedup_lock);
    pthread_mutex_destroy(&t->merge_lock);
    free(t);
}

const strata_schema *table_schema(const strata_table *t) { return &t->schema; }
struct rollup_set *table_rollups(strata_table *t) { return t->rollups; }
int64_t table_max_time(strata_table *t) { return atomic_load(&t->max_time); }

int64_t table_latest_time(strata_table *t, int64_t now_ms)
{
    int64_t m = atomic_load(&t->max_time), cap = now_ms + TABLE_FUTURE_SKEW_MS;
    return m == INT64_MIN || m <= cap ? m : cap;
}
const char *table_dir(const strata_table *t) { return t->dir; }

/* A new partition's directory is made and the raw directory fsynced before it is used,
 * so a segment committed into it cannot lose its directory in a crash. */
partition *table__partition_get(strata_table *t, int64_t key, strata_err *err)
{
    pthread_mutex_lock(&t->lock);
    uint32_t lo = 0, hi = t->nparts;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (t->parts[mid]->key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    partition *p = lo < t->nparts && t->parts[lo]->key == key ? t->parts[lo] : NULL;
    pthread_mutex_unlock(&t->lock);
    if (p)
        return p;
    p = calloc(1, sizeof *p);
    if (!p || (t->schema.ndedup && !(p->dd = dedup_part_create(&t->schema)))) {
        free(p);
        strata_err_set(err, STRATA_ENOMEM, "out of memory");
        return NULL;
    }
    p->key = key;
    char name[32];
    schema_partition_name(t->schema.partition_by, key, name, sizeof name);
    if (fs_path(p->dir, sizeof p->dir, err, "%s/%s", t->raw_dir, name) != 0 ||
        fs_mkdir(p->dir, NULL, err) != 0) {
        dedup_part_free(p->dd);
        free(p);
        return NULL;
    }
    /* An empty MANIFEST first: from now on a segment here without a MANIFEST can only
     * mean a lost MANIFEST, never an uncommitted first flush (see partition_recover). */
    if (manifest_write(p->dir, &p->man, NULL, err) != 0) {
        dedup_part_free(p->dd);
        free(p);
        return NULL;
    }
    int drc = fs_fsync_dir(t->raw_dir);
    if (drc) {
        strata_err_set(err, STRATA_EIO, "%s: fsync directory: %s", t->raw_dir, strerror(-drc));
        dedup_part_free(p->dd);
        free(p);
        return NULL;
    }
    pthread_mutex_lock(&t->lock);
    int rc = parts_insert(t, p);
    partition *prev = NULL; /* the newest partition before this one */
    for (uint32_t i = 0; i < t->nparts; i++)
        if (t->parts[i]->key < key && (!prev || t->parts[i]->key > prev->key))
            prev = t->parts[i];
    bool newest = rc == 0 && t->nparts && t->parts[t->nparts - 1] == p;
    pthread_mutex_unlock(&t->lock);
    if (rc) {
        strata_err_set(err, STRATA_ENOMEM, "out of memory");
        dedup_part_free(p->dd);
        free(p);
        return NULL;
    }
    /* Dedup: a stream entering a new partition fills it about as the one before (the
     * caller holds dedup_lock for dedup tables: table_append). */
    if (p->dd && newest && prev && prev->dd && !dedup_part_cold(prev->dd))
        dedup_part_presize(p->dd, dedup_part_keys(prev->dd) + dedup_part_keys(prev->dd) / 5);
    return p;
}

int table__writes_refused(strata_table *t, strata_err *err)
{
    if (atomic_load(&t->dropped))
        return strata_err_set(err, STRATA_ENOTFOUND, "table '%s' was dropped", t->schema.name);
    if (atomic_load(&t->failed)) {
        pthread_mutex_lock(&t->lock);
        int rc = strata_err_set(err, STRATA_EIO, "table '%s' refuses writes after an I/O error "
                                "(restart strata once the disk is sound): %s",
                                t->schema.name, t->fail_msg);
        pthread_mutex_unlock(&t->lock);
        return rc;
    }
    return 0;
}

void table__fail(strata_table *t, const char *why)
{
    pthread_mutex_lock(&t->lock);
    if (!atomic_load(&t->failed))
        snprintf(t->fail_msg, sizeof t->fail_msg, "%s", why);
    atomic_store(&t->failed, true);
    pthread_mutex_unlock(&t->lock);
}

bool table_failure(strata_table *t, char *buf, size_t cap)
{
    if (!atomic_load(&t->failed)) {
        if (cap)
            buf[0] = 0;
        return false;
    }
    pthread_mutex_lock(&t->lock);
    snprintf(buf, cap, "%s", t->fail_msg);
    pthread_mutex_unlock(&t->lock);
    return true;
}

bool table_report_damage(strata_table *t, const char *msg)
{
    pthread_mutex_lock(&t->lock);
    t->damage_count++;
    bool fresh = strncmp(t->damage_msg, msg, sizeof t->damage_msg - 1) != 0;
    snprintf(t->damage_msg, sizeof t->damage_msg, "%s", msg);
    pthread_mutex_unlock(&t->lock);
    return fresh;
}

uint64_t table_damage(strata_table *t, char *buf, size_t cap)
{
    pthread_mutex_lock(&t->lock);
    uint64_t n = t->damage_count;
    if (cap)
        snprintf(buf, cap, "%s", n ? t->damage_msg : "");
    pthread_mutex_unlock(&t->lock);
    return n;
}

void table_writes_pause(strata_table *t)
{
    /* Both writer locks: an append or a flush in progress finishes first (in that order,
     * as table_flush takes them), and none starts until the resume. */
    pthread_mutex_lock(&t->write_lock);
    pthread_mutex_lock(&t->flush_lock);
}

void table_writes_resume(strata_table *t, bool dropped)
{
    if (dropped)
        atomic_store(&t->dropped, true);
    pthread_mutex_unlock(&t->flush_lock);
    pthread_mutex_unlock(&t->write_lock);
}

bool table_storage_missing(strata_table *t, char *buf, size_t cap)
{
    struct stat st;
    if (stat(t->raw_dir, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (cap)
            buf[0] = 0;
        return false;
    }
    snprintf(buf, cap, "%s: %s", t->raw_dir, errno == ENOENT || errno == 0 ? "missing" : strerror(errno));
    return true;
}

void table_get_stats(strata_table *t, table_stats *st)
{
    memset(st, 0, sizeof *st);
    bool dedup = t->schema.ndedup > 0;
    if (dedup)
        pthread_mutex_lock(&t->dedup_lock);
    pthread_mutex_lock(&t->lock);
    st->partitions = t->nparts;
    st->max_time = atomic_load(&t->max_time);
    for (uint32_t i = 0; i < t->nparts; i++) {
        partition *p = t->parts[i];
        for (uint32_t j = 0; j < p->nsegs; j++) {
            st->segments++;
            st->segment_rows += segment_nrows(p->segs[j]->seg);
            st->segment_bytes += segment_file_bytes(p->segs[j]->seg);
            if (p->segs[j]->dd)
                st->superseded_rows += dvec_count(p->segs[j]->dd->dv);
        }
        if (p->active) {
            st->memtables++;
            st->memtable_rows += memtable_nrows(p->active);
            st->memtable_bytes += memtable_bytes(p->active);
            if (p->active_dd)
                st->superseded_rows += dvec_count(p->active_dd->dv);
        }
        for (uint32_t j = 0; j < p->nsealed; j++) {
            st->memtables++;
            st->memtable_rows += memtable_nrows(p->sealed[j].mt);
            st->memtable_bytes += memtable_bytes(p->sealed[j].mt);
            if (p->sealed[j].dd)
                st->superseded_rows += dvec_count(p->sealed[j].dd->dv);
        }
        if (p->dd) {
            st->dedup_keys += dedup_part_keys(p->dd);
            st->dedup_index_bytes += dedup_part_bytes(p->dd);
            st->dedup_scratch_bytes += dedup_part_scratch_bytes(p->dd);
            st->dedup_cold_partitions += dedup_part_cold(p->dd);
        }
    }
    pthread_mutex_unlock(&t->lock);
    if (dedup)
        pthread_mutex_unlock(&t->dedup_lock);
    st->flushes = atomic_load(&t->flushes);
    st->flush_ns = atomic_load(&t->flush_ns);
    st->rows_flushed = atomic_load(&t->rows_flushed);
    table__merge_stats(t, st); /* merge.c */
}

/* ---- snapshots -------------------------------------------------------------------- */

/* What a snapshot holds besides what it shows: a reference to every segment. */
typedef struct snap_priv {
    uint32_t nhandles;
    table_seg **handles;
} snap_priv;

table_snapshot *table_snapshot_acquire(strata_table *t, int64_t from_ms, int64_t to_ms)
{
    table_snapshot *s = calloc(1, sizeof *s);
    snap_priv *pv = calloc(1, sizeof *pv);
    if (!s || !pv) {
        free(s);
        free(pv);
        return NULL;
    }
    s->priv = pv;
    pthread_mutex_lock(&t->lock);
    s->raw_floor = t->raw_floor;
    s->parts = calloc(t->nparts + 1, sizeof *s->parts);
    uint32_t total_segs = 0;
    for (uint32_t i = 0; i < t->nparts; i++)
        total_segs += t->parts[i]->nsegs;
    pv->handles = calloc(total_segs + 1, sizeof *pv->handles);
    if (!s->parts || !pv->handles)
        goto oom;
    for (uint32_t i = 0; i < t->nparts; i++) {
        partition *p = t->parts[i];
        int64_t end = schema_partition_next(t->schema.partition_by, p->key);
        if (end <= from_ms || p->key >= to_ms)
            continue;
        snapshot_part *sp = &s->parts[s->nparts++];
        sp->key = p->key;
        sp->end = end;
        sp->segs = calloc(p->nsegs + 1, sizeof *sp->segs);
        sp->mts = calloc(p->nsealed + 2, sizeof *sp->mts);
        sp->mt_rows = calloc(p->nsealed + 2, sizeof *sp->mt_rows);
        if (!sp->segs || !sp->mts || !sp->mt_rows)
            goto oom;
        if (p->dd) {
            sp->seg_dv = calloc(p->nsegs + 1, sizeof *sp->seg_dv);
            sp->mt_dv = calloc(p->nsealed + 2, sizeof *sp->mt_dv);
            if (!sp->seg_dv || !sp->mt_dv)
                goto oom;
        }
        for (uint32_t j = 0; j < p->nsegs; j++) {
            table_seg *h = p->segs[j];
            atomic_fetch_add(&h->refs, 1);
            pv->handles[pv->nhandles++] = h;
            if (sp->seg_dv && h->dd && h->dd->dv) {
                dvec_ref(h->dd->dv);
                sp->seg_dv[sp->nsegs] = h->dd->dv;
            }
            sp->segs[sp->nsegs++] = h->seg;
        }
        for (uint32_t j = 0; j < p->nsealed; j++) {
            memtable_ref(p->sealed[j].mt);
            if (sp->mt_dv && p->sealed[j].dd && p->sealed[j].dd->dv) {
                dvec_ref(p->sealed[j].dd->dv);
                sp->mt_dv[sp->nmts] = p->sealed[j].dd->dv;
            }
            sp->mt_rows[sp->nmts] = memtable_nrows(p->sealed[j].mt);
            sp->mts[sp->nmts++] = p->sealed[j].mt;
        }
        if (p->active) {
            memtable_ref(p->active);
            if (sp->mt_dv && p->active_dd && p->active_dd->dv) {
                dvec_ref(p->active_dd->dv);
                sp->mt_dv[sp->nmts] = p->active_dd->dv;
            }
            sp->mt_rows[sp->nmts] = memtable_nrows(p->active);
            sp->mts[sp->nmts++] = p->active;
        }
    }
    /* the tiers as of this same instant (rollup.h: why a clean bucket matches the rows) */
    if (t->rollups && !(s->rollup = rollup_view_acquire(t->rollups)))
        goto oom;
    pthread_mutex_unlock(&t->lock);
    return s;
oom:
    pthread_mutex_unlock(&t->lock);
    table_snapshot_release(s);
    return NULL;
}

void table_snapshot_release(table_snapshot *s)
{
    if (!s)
        return;
    snap_priv *pv = s->priv;
    rollup_view_release(s->rollup);
    for (uint32_t i = 0; i < pv->nhandles; i++)
        table__seg_unref(pv->handles[i]);
    free(pv->handles);
    free(pv);
    if (s->parts) {
        for (uint32_t i = 0; i < s->nparts; i++) {
            for (uint32_t j = 0; j < s->parts[i].nmts; j++)
                memtable_unref(s->parts[i].mts[j]);
            for (uint32_t j = 0; s->parts[i].seg_dv && j < s->parts[i].nsegs; j++)
                dvec_unref(s->parts[i].seg_dv[j]);
            for (uint32_t j = 0; s->parts[i].mt_dv && j < s->parts[i].nmts; j++)
                dvec_unref(s->parts[i].mt_dv[j]);
            free(s->parts[i].seg_dv);
            free(s->parts[i].mt_dv);
            free(s->parts[i].segs);
            free(s->parts[i].mts);
            free(s->parts[i].mt_rows);
        }
        free(s->parts);
    }
    free(s);
}
