/*
 * table.c — partitions, appends, flushes, recovery and snapshots of one table.
 * The contract (threads, locks, recovery) is in table.h.
 *
 * Segments are shared between the table and live snapshots through seg_handle, a
 * reference-counted wrapper; a partition's segment list and memtable lists change only
 * under t->lock, and a flush replaces "sealed memtable" by "segment" in one locked step
 * after the manifest that lists the segment is durable.
 */
#include "engine/table.h"
#include "engine/memtable_flush.h"
#include "engine/offset_map.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/fs.h"

typedef struct seg_handle {
    segment *seg;
    uint64_t id;
    _Atomic int refs;
} seg_handle;

typedef struct sealed_mt {
    memtable *mt;
    offset_map cps; /* the checkpoints noted before it was sealed (a copy of pending_cps) */
    offset_map src; /* ranges: the offsets of the sourced rows it holds; lock */
} sealed_mt;

typedef struct partition {
    int64_t key;
    char dir[3584];
    manifest man;       /* as committed; changed under flush_lock, read under lock */
    seg_handle **segs;  /* lock */
    uint32_t nsegs, segs_cap;
    memtable *active;   /* appended under write_lock; pointer swapped under lock too */
    int64_t active_since_ms;
    offset_map active_src; /* ranges: the offsets of the sourced rows active holds; lock */
    sealed_mt *sealed;  /* lock */
    uint32_t nsealed, sealed_cap;
} partition;

struct strata_table {
    strata_schema schema;
    char dir[3072];
    char raw_dir[3200];
    pthread_mutex_t lock, write_lock, flush_lock;
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
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void handle_unref(seg_handle *h)
{
    if (h && atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) == 1) {
        segment_close(h->seg);
        free(h);
    }
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static void partition_free(partition *p)
{
    if (!p)
        return;
    for (uint32_t i = 0; i < p->nsegs; i++)
        handle_unref(p->segs[i]);
    free(p->segs);
    memtable_unref(p->active);
    for (uint32_t i = 0; i < p->nsealed; i++) {
        memtable_unref(p->sealed[i].mt);
        offset_map_free(&p->sealed[i].cps);
        offset_map_free(&p->sealed[i].src);
    }
    offset_map_free(&p->active_src);
    free(p->sealed);
    manifest_free(&p->man);
    free(p);
}

static int partition_add_segment(partition *p, seg_handle *h)
{
    if (p->nsegs == p->segs_cap) {
        uint32_t cap = p->segs_cap ? p->segs_cap * 2 : 8;
        seg_handle **s = realloc(p->segs, sizeof *s * cap);
        if (!s)
            return STRATA_ENOMEM;
        p->segs = s;
        p->segs_cap = cap;
    }
    p->segs[p->nsegs++] = h;
    return 0;
}

/* The path of segment id in directory dir, into out. 0, or STRATA_EINVAL when it does
 * not fit. */
static int segment_file_path(const char *dir, uint64_t id, char *out, size_t cap, strata_err *err)
{
    char name[32];
    manifest_segment_name(id, name, sizeof name);
    return fs_path(out, cap, err, "%s/%s", dir, name);
}

static int open_segment_handle(const char *dir, uint64_t id, seg_handle **out, strata_err *err)
{
    char path[PATH_MAX + 32];
    int rc = segment_file_path(dir, id, path, sizeof path, err);
    if (rc)
        return rc;
    seg_handle *h = calloc(1, sizeof *h);
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

/* Loads one partition directory: manifest, cleanup of uncommitted files, segments. */
static int partition_recover(strata_table *t, int64_t key, const char *name, partition **out,
                             strata_err *err)
{
    partition *p = calloc(1, sizeof *p);
    if (!p)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
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
        seg_handle *h;
        if ((rc = open_segment_handle(p->dir, p->man.segs[i].id, &h, err)) != 0) {
            strata_err_prefix(err, "table '%s': committed segment cannot be read", t->schema.name);
            goto fail;
        }
        if (segment_nrows(h->seg) && segment_max_time(h->seg) > atomic_load(&t->max_time))
            atomic_store(&t->max_time, segment_max_time(h->seg));
        if (segment_nrows(h->seg) != p->man.segs[i].rows) {
            rc = strata_err_set(err, STRATA_ECORRUPT,
                                "%s: holds %" PRIu64 " rows, its manifest says %" PRIu64,
                                segment_path(h->seg), segment_nrows(h->seg), p->man.segs[i].rows);
            handle_unref(h);
            goto fail;
        }
        if ((rc = partition_add_segment(p, h)) != 0) {
            handle_unref(h);
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
    pthread_mutex_init(&t->lock, NULL);
    pthread_mutex_init(&t->write_lock, NULL);
    pthread_mutex_init(&t->flush_lock, NULL);
    atomic_init(&t->next_seg_id, 1);
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
    for (uint32_t i = 0; i < t->nparts; i++)
        partition_free(t->parts[i]);
    free(t->parts);
    offset_map_free(&t->pending_cps);
    offset_map_free(&t->positions);
    memtable_flush_scratch_free(&t->flush_scratch);
    pthread_mutex_destroy(&t->lock);
    pthread_mutex_destroy(&t->write_lock);
    pthread_mutex_destroy(&t->flush_lock);
    free(t);
}

const strata_schema *table_schema(const strata_table *t) { return &t->schema; }
const char *table_dir(const strata_table *t) { return t->dir; }

/* Finds or creates the partition for key. Caller holds write_lock (not lock). A new
 * partition's directory is made and the raw directory fsynced before it is used, so a
 * segment committed into it cannot lose its directory in a crash. */
static partition *partition_get(strata_table *t, int64_t key, strata_err *err)
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
    if (!p) {
        strata_err_set(err, STRATA_ENOMEM, "out of memory");
        return NULL;
    }
    p->key = key;
    char name[32];
    schema_partition_name(t->schema.partition_by, key, name, sizeof name);
    if (fs_path(p->dir, sizeof p->dir, err, "%s/%s", t->raw_dir, name) != 0 ||
        fs_mkdir(p->dir, NULL, err) != 0) {
        free(p);
        return NULL;
    }
    /* An empty MANIFEST first: from now on a segment here without a MANIFEST can only
     * mean a lost MANIFEST, never an uncommitted first flush (see partition_recover). */
    if (manifest_write(p->dir, &p->man, NULL, err) != 0) {
        free(p);
        return NULL;
    }
    int drc = fs_fsync_dir(t->raw_dir);
    if (drc) {
        strata_err_set(err, STRATA_EIO, "%s: fsync directory: %s", t->raw_dir, strerror(-drc));
        free(p);
        return NULL;
    }
    pthread_mutex_lock(&t->lock);
    int rc = parts_insert(t, p);
    pthread_mutex_unlock(&t->lock);
    if (rc) {
        strata_err_set(err, STRATA_ENOMEM, "out of memory");
        free(p);
        return NULL;
    }
    return p;
}

/* Room for `more` entries in p's sealed list. Caller holds lock. */
static int sealed_reserve(partition *p, uint32_t more)
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

/* Moves p's non-empty active memtable, with its offset ranges and the checkpoints *cps
 * (taken over), to the sealed list, which has room. Never fails. Caller holds
 * write_lock and lock. */
static void seal_reserved(partition *p, offset_map *cps)
{
    sealed_mt s = {p->active, *cps, p->active_src};
    memset(cps, 0, sizeof *cps);
    memset(&p->active_src, 0, sizeof p->active_src);
    p->sealed[p->nsealed++] = s;
    p->active = NULL;
}

/* Moves p's active memtable to its sealed list (nothing when it is empty). Caller holds
 * write_lock. */
static int partition_seal(strata_table *t, partition *p)
{
    if (!p->active || memtable_nrows(p->active) == 0)
        return 0;
    offset_map cps;
    if (offset_map_copy(&cps, &t->pending_cps) != 0)
        return STRATA_ENOMEM;
    pthread_mutex_lock(&t->lock);
    int rc = sealed_reserve(p, 1);
    if (rc == 0)
        seal_reserved(p, &cps);
    pthread_mutex_unlock(&t->lock);
    offset_map_free(&cps);
    return rc;
}

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

static bool memtable_due(const strata_table *t, const partition *p, int64_t now)
{
    if (!p->active || memtable_nrows(p->active) == 0)
        return false;
    return memtable_bytes(p->active) >= t->schema.memtable_max_bytes ||
           memtable_nrows(p->active) >= memtable_max_rows(p->active) ||
           now - p->active_since_ms >= t->schema.memtable_max_age_ms;
}

/* Where sourced rows come from: rows of one (source, partition), offsets[r] for row r of
 * the batch, increasing. */
typedef struct row_source {
    const char *source;
    int32_t kpart;
    const int64_t *offsets;
} row_source;

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
} part_plan;

static void plan_free(part_plan *pl)
{
    for (uint32_t i = 0; i < pl->nfresh; i++) {
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
    pl->fresh = NULL;
    pl->fresh_src = NULL;
    pl->seal_cps = NULL;
    pl->nfresh = 0;
}

static void plan_abort(part_plan *pl)
{
    if (pl->in_active)
        memtable_unstage(pl->p->active);
    pl->in_active = 0;
    plan_free(pl);
}

/* The fallible half of an append to one partition (see above). Caller holds write_lock;
 * on failure the caller aborts the plan. */
static int plan_prepare(strata_table *t, part_plan *pl, const row_batch *b, const row_source *src,
                        strata_err *err)
{
    partition *p = pl->p;
    if (p->active && memtable_due(t, p, now_ms()) && partition_seal(t, p) != 0)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    if (!p->active) {
        memtable *mt = memtable_create(&t->schema, p->key, t->schema.memtable_max_rows, err);
        if (!mt)
            return err ? err->code : STRATA_ENOMEM;
        pthread_mutex_lock(&t->lock);
        p->active = mt;
        pthread_mutex_unlock(&t->lock);
        p->active_since_ms = now_ms();
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
    if (!pl->fresh || !pl->fresh_src || !pl->seal_cps)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    pl->nfresh = nf;
    for (uint32_t i = 0; i < nf; i++) {
        if (!(pl->fresh[i] = memtable_create(&t->schema, p->key, per, err)))
            return err ? err->code : STRATA_ENOMEM;
        uint32_t take = left < per ? left : (uint32_t)per;
        if ((rc = memtable_append(pl->fresh[i], b, pl->rows + done, take, err)) != 0)
            return rc;
        if (src && offset_map_set_range(&pl->fresh_src[i], src->source, src->kpart,
                                        src->offsets[pl->rows[done]],
                                        src->offsets[pl->rows[done + take - 1]] + 1) != 0)
            return strata_err_set(err, STRATA_ENOMEM, "out of memory");
        if (offset_map_copy(&pl->seal_cps[i], &t->pending_cps) != 0)
            return strata_err_set(err, STRATA_ENOMEM, "out of memory");
        done += take;
        left -= take;
    }
    pthread_mutex_lock(&t->lock);
    rc = sealed_reserve(p, nf);
    pthread_mutex_unlock(&t->lock);
    return rc ? strata_err_set(err, STRATA_ENOMEM, "out of memory") : 0;
}

/* The infallible half: makes a prepared plan visible. Caller holds write_lock and lock. */
static void plan_publish(partition *p, part_plan *pl, const row_source *src, int64_t now)
{
    if (pl->in_active) {
        memtable_publish(p->active);
        if (src) {
            int64_t lo = src->offsets[pl->rows[0]], hi = src->offsets[pl->rows[pl->in_active - 1]] + 1;
            offset_map_widen(&p->active_src, src->source, src->kpart, lo, hi);
        }
    }
    if (pl->nfresh) {
        if (memtable_nrows(p->active) > 0) {
            seal_reserved(p, &pl->seal_cps[0]);
        } else {
            memtable_unref(p->active);
            offset_map_free(&p->active_src);
            p->active = NULL;
        }
        for (uint32_t i = 0; i < pl->nfresh; i++) {
            p->active = pl->fresh[i];
            p->active_src = pl->fresh_src[i];
            pl->fresh[i] = NULL;
            memset(&pl->fresh_src[i], 0, sizeof pl->fresh_src[i]);
            if (i + 1 < pl->nfresh)
                seal_reserved(p, &pl->seal_cps[i + 1]);
        }
        p->active_since_ms = now;
    }
    pl->in_active = 0;
    plan_free(pl);
}

/* Why writes are refused (dropped table, failed disk), as an error; 0 when they are not.
 * Caller holds write_lock or flush_lock. */
static int writes_refused(strata_table *t, strata_err *err)
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

/* table_append and table_append_sourced: all of the batch or none of it (see above). */
static int append_rows(strata_table *t, const row_batch *b, const row_source *src,
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
    part_plan *plans = NULL;
    uint32_t nplans = 0, plans_cap = 0;
    uint64_t dropped_rows = 0;
    int rc = 0;
    if (!rows || !done) {
        free(rows);
        free(done);
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    }
    pthread_mutex_lock(&t->write_lock);
    if ((rc = writes_refused(t, err)) != 0)
        goto out;
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
        partition *p = partition_get(t, key, err);
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
                if (src->offsets[prow[i]] >= cp)
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
    if (rc == 0 && src) {
        /* The position entry must exist too; until published it says where the batch
         * starts, which is where a reader of this source would resume anyway. */
        pthread_mutex_lock(&t->lock);
        if (offset_map_next(&t->positions, src->source, src->kpart) < 0 &&
            offset_map_set(&t->positions, src->source, src->kpart,
                           b->nrows ? src->offsets[0] : next_offset) != 0)
            rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
        pthread_mutex_unlock(&t->lock);
    }
    if (rc)
        goto out;
    /* Publish: nothing below can fail. */
    int64_t now = now_ms();
    pthread_mutex_lock(&t->lock);
    for (uint32_t i = 0; i < nplans; i++)
        plan_publish(plans[i].p, &plans[i], src, now);
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
    for (uint32_t i = 0; i < nplans; i++)
        plan_abort(&plans[i]);
    pthread_mutex_unlock(&t->write_lock);
    free(plans);
    free(rows);
    free(done);
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
    row_source src = {source, kpart, offsets};
    return append_rows(t, b, &src, next_offset, skipped, err);
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

int table_note_checkpoint(strata_table *t, const char *source, int32_t kpart,
                          int64_t next_offset)
{
    pthread_mutex_lock(&t->write_lock);
    int rc = offset_map_set(&t->pending_cps, source, kpart, next_offset);
    pthread_mutex_unlock(&t->write_lock);
    return rc;
}

static void table_fail(strata_table *t, const char *why)
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

void table_report_damage(strata_table *t, const char *msg)
{
    pthread_mutex_lock(&t->lock);
    t->damage_count++;
    snprintf(t->damage_msg, sizeof t->damage_msg, "%s", msg);
    pthread_mutex_unlock(&t->lock);
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

/* Writes p's oldest sealed memtable as a segment and commits it. Caller holds
 * flush_lock. */
static int partition_flush_one(strata_table *t, partition *p, strata_err *err)
{
    pthread_mutex_lock(&t->lock);
    sealed_mt s = p->sealed[0];
    memtable_ref(s.mt);
    pthread_mutex_unlock(&t->lock);

    uint64_t t0 = now_ns();
    uint64_t id = atomic_fetch_add(&t->next_seg_id, 1);
    char path[PATH_MAX + 32];
    segment_write_opts opts = {.codec = t->schema.codec};
    segment_info info;
    uint64_t nrows = memtable_nrows(s.mt);
    seg_handle *h = NULL;
    manifest next = {0};
    int rc = segment_file_path(p->dir, id, path, sizeof path, err);
    if (rc == 0)
        rc = memtable_write_segment(s.mt, nrows, path, &opts, &t->flush_scratch, &info, err);
    if (rc)
        goto done;
    if ((rc = open_segment_handle(p->dir, id, &h, err)) != 0) {
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
        table_fail(t, err ? err->msg : "manifest commit not durable");
    }

    /* Durable: publish segment in place of the memtable. */
    pthread_mutex_lock(&t->lock);
    manifest_free(&p->man);
    p->man = next;
    memset(&next, 0, sizeof next);
    int prc = partition_add_segment(p, h);
    if (prc)
        rc = prc;
    if (prc == 0) {
        h = NULL;
        offset_map_free(&p->sealed[0].cps);
        offset_map_free(&p->sealed[0].src);
        memtable_unref(p->sealed[0].mt);
        memmove(&p->sealed[0], &p->sealed[1], sizeof *p->sealed * (p->nsealed - 1));
        p->nsealed--;
    }
    pthread_mutex_unlock(&t->lock);
    if (rc == STRATA_ENOMEM) {
        /* Committed but not published: the memtable still serves the rows (once), and
         * the next start serves the segment. */
        table_fail(t, "out of memory publishing a committed segment");
        rc = strata_err_set(err, STRATA_ENOMEM, "out of memory publishing %s", path);
        goto done;
    }
    if (rc)
        goto done;
    atomic_fetch_add(&t->flushes, 1);
    atomic_fetch_add(&t->rows_flushed, nrows);
    atomic_fetch_add(&t->flush_ns, now_ns() - t0);
    goto done;
undo:
    unlink(path);
done:
    handle_unref(h);
    manifest_free(&next);
    memtable_unref(s.mt);
    return rc;
}

static void flush_outcome(strata_table *t, int rc, const strata_err *err, int64_t now);

int table_flush(strata_table *t, bool force, strata_err *err)
{
    int rc = 0;
    int64_t now = now_ms();
    pthread_mutex_lock(&t->write_lock);
    if ((rc = writes_refused(t, err)) != 0) {
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
        if (force ? parts[i]->active != NULL : memtable_due(t, parts[i], now))
            if (partition_seal(t, parts[i]) != 0)
                rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
    pthread_mutex_unlock(&t->write_lock);

    pthread_mutex_lock(&t->flush_lock);
    if (rc == 0)
        rc = writes_refused(t, err); /* dropped or failed while this flush waited */
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
    pthread_mutex_unlock(&t->flush_lock);
    free(parts);
    if (!refused && (rc || wrote))
        flush_outcome(t, rc, err, now);
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

uint64_t table_flush_trouble(strata_table *t, table_flush_record *out)
{
    pthread_mutex_lock(&t->lock);
    out->failures = t->flush_failures;
    out->failing = t->flush_failing;
    out->failing_for_ms = t->flush_failing ? now_ms() - t->flush_failing_since : 0;
    snprintf(out->message, sizeof out->message, "%s", t->flush_failing ? t->flush_msg : "");
    pthread_mutex_unlock(&t->lock);
    return out->failing;
}

bool table_flush_due(strata_table *t)
{
    int64_t now = now_ms();
    bool due = false;
    pthread_mutex_lock(&t->lock);
    for (uint32_t i = 0; i < t->nparts && !due; i++)
        due = t->parts[i]->nsealed > 0 || memtable_due(t, t->parts[i], now);
    pthread_mutex_unlock(&t->lock);
    return due;
}

void table_get_stats(strata_table *t, table_stats *st)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&t->lock);
    st->partitions = t->nparts;
    st->max_time = atomic_load(&t->max_time);
    for (uint32_t i = 0; i < t->nparts; i++) {
        partition *p = t->parts[i];
        for (uint32_t j = 0; j < p->nsegs; j++) {
            st->segments++;
            st->segment_rows += segment_nrows(p->segs[j]->seg);
            st->segment_bytes += segment_file_bytes(p->segs[j]->seg);
        }
        if (p->active) {
            st->memtables++;
            st->memtable_rows += memtable_nrows(p->active);
            st->memtable_bytes += memtable_bytes(p->active);
        }
        for (uint32_t j = 0; j < p->nsealed; j++) {
            st->memtables++;
            st->memtable_rows += memtable_nrows(p->sealed[j].mt);
            st->memtable_bytes += memtable_bytes(p->sealed[j].mt);
        }
    }
    pthread_mutex_unlock(&t->lock);
    st->flushes = atomic_load(&t->flushes);
    st->flush_ns = atomic_load(&t->flush_ns);
    st->rows_flushed = atomic_load(&t->rows_flushed);
}

/* ---- snapshots -------------------------------------------------------------------- */

typedef struct snap_priv {
    uint32_t nhandles;
    seg_handle **handles;
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
        for (uint32_t j = 0; j < p->nsegs; j++) {
            seg_handle *h = p->segs[j];
            atomic_fetch_add(&h->refs, 1);
            pv->handles[pv->nhandles++] = h;
            sp->segs[sp->nsegs++] = h->seg;
        }
        for (uint32_t j = 0; j < p->nsealed; j++) {
            memtable_ref(p->sealed[j].mt);
            sp->mt_rows[sp->nmts] = memtable_nrows(p->sealed[j].mt);
            sp->mts[sp->nmts++] = p->sealed[j].mt;
        }
        if (p->active) {
            memtable_ref(p->active);
            sp->mt_rows[sp->nmts] = memtable_nrows(p->active);
            sp->mts[sp->nmts++] = p->active;
        }
    }
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
    for (uint32_t i = 0; i < pv->nhandles; i++)
        handle_unref(pv->handles[i]);
    free(pv->handles);
    free(pv);
    if (s->parts) {
        for (uint32_t i = 0; i < s->nparts; i++) {
            for (uint32_t j = 0; j < s->parts[i].nmts; j++)
                memtable_unref(s->parts[i].mts[j]);
            free(s->parts[i].segs);
            free(s->parts[i].mts);
            free(s->parts[i].mt_rows);
        }
        free(s->parts);
    }
    free(s);
}
