/*
 * merge.c — merges: several sorted segments into one (merge_segments: a k-way merge with
 * union dictionaries and a row filter; an input in the old order is re-sorted first), and a table's merges committed beside its
 * flushes (merge_table_once, merge_table_optimize). The selector is merge_select.c's; the
 * policy, the merge's order, memory bound and the commit's steps and crash behaviour are
 * written down in merge.h. Locks: t->merge_lock for the whole merge (one per table at a
 * time; retention takes it too, so a partition stays while a merge holds it), flush_lock
 * only for the commit, t->lock for reading and swapping the partition's lists.
 */
#include "engine/merge.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/clock.h"
#include "engine/table_internal.h"

/* ---- merge_segments ------------------------------------------------------------------- */

/* One input (a merge cursor): its current granule decoded, column by column (8-byte slots: int64 for int
 * types and for strings' union codes, double for float64), and the sort key images of
 * its current row (the time's bucket, then order_by: segment.h). An input not in that
 * order (a version-1 file spanning buckets) is decoded whole into all[] and read through
 * perm, its rows in sort key order; its "granules" are then runs of granule_rows rows of
 * perm. */
typedef struct mcursor {
    const segment *seg;
    uint32_t idx;
    uint32_t g, ng;       /* current granule, granules */
    uint32_t pos, n;      /* row in the granule, its rows */
    uint64_t row;         /* row number in the input */
    void *vals[STRATA_MAX_COLUMNS];
    uint32_t *remap[STRATA_MAX_COLUMNS]; /* input code -> union code (strings) */
    strata_str *const *dicts;            /* the union dictionaries, per column */
    uint64_t *key;        /* 1 + norder images of the current row */
    int64_t *all[STRATA_MAX_COLUMNS]; /* re-sorted input: every row's 8-byte slots */
    uint32_t *perm;       /* re-sorted input: its rows in sort key order; NULL otherwise */
} mcursor;

typedef struct merge_state {
    const strata_schema *sc;
    mcursor *cur;
    uint32_t ncur;
    mcursor **heap;
    uint32_t nheap;
    uint32_t *codes;      /* read buffer for string columns */
    segment_scratch scratch;
} merge_state;

/* Sort key part k (0 the time's bucket, k >= 1 order_by column k - 1) of a row whose
 * column c slot is slot(c). */
#define KEY_PART(sc, k, slot)                                                               \
    ((k) == 0 ? segment_sort_bucket_key(slot((sc)->time_col))                                \
              : segment_sort_key((sc)->cols[(sc)->order_by[(k) - 1]].type,                    \
                                 (uint64_t)slot((sc)->order_by[(k) - 1])))

static void cursor_key(const strata_schema *sc, mcursor *cu)
{
#define CUR_SLOT(c) (((const int64_t *)cu->vals[c])[cu->pos])
    for (int k = 0; k <= sc->norder; k++)
        cu->key[k] = KEY_PART(sc, k, CUR_SLOT);
#undef CUR_SLOT
}

/* a before b: sort key images, then input index. */
static inline bool cursor_less(int nkeys, const mcursor *a, const mcursor *b)
{
    for (int k = 0; k < nkeys; k++)
        if (a->key[k] != b->key[k])
            return a->key[k] < b->key[k];
    return a->idx < b->idx;
}

static void heap_down(merge_state *ms, uint32_t i)
{
    int norder = ms->sc->norder + 1;
    mcursor **h = ms->heap;
    for (;;) {
        uint32_t l = 2 * i + 1, best = i;
        if (l < ms->nheap && cursor_less(norder, h[l], h[best]))
            best = l;
        if (l + 1 < ms->nheap && cursor_less(norder, h[l + 1], h[best]))
            best = l + 1;
        if (best == i)
            return;
        mcursor *tmp = h[i];
        h[i] = h[best];
        h[best] = tmp;
        i = best;
    }
}

/* Rows of the cursor's granule g. */
static uint32_t cursor_granule_nrows(const mcursor *cu, uint32_t g)
{
    if (!cu->perm)
        return segment_granule_nrows(cu->seg, g);
    uint64_t gr = segment_granule_rows(cu->seg), left = segment_nrows(cu->seg) - g * gr;
    return (uint32_t)(left < gr ? left : gr);
}

/* Decodes granule cu->g of every column (of a re-sorted input: gathers its rows). */
static int cursor_load(merge_state *ms, mcursor *cu, strata_err *err)
{
    const strata_schema *sc = ms->sc;
    cu->n = cursor_granule_nrows(cu, cu->g);
    cu->pos = 0;
    if (cu->perm) {
        const uint32_t *pr = cu->perm + (uint64_t)cu->g * segment_granule_rows(cu->seg);
        for (int c = 0; c < sc->ncols; c++)
            for (uint32_t i = 0; i < cu->n; i++)
                ((int64_t *)cu->vals[c])[i] = cu->all[c][pr[i]];
        cu->row = pr[0];
        cursor_key(sc, cu);
        return 0;
    }
    for (int c = 0; c < sc->ncols; c++) {
        int rc;
        if (sc->cols[c].type == STRATA_STRING) {
            rc = segment_read_codes(cu->seg, c, cu->g, ms->codes, &ms->scratch, err);
            int64_t *out = cu->vals[c];
            uint32_t dn = segment_dict_size(cu->seg, c);
            for (uint32_t i = 0; rc == 0 && i < cu->n; i++) {
                if (ms->codes[i] >= dn || cu->remap[c][ms->codes[i]] == UINT32_MAX)
                    rc = strata_err_set(err, STRATA_ECORRUPT, "%s: column '%s' granule %u: a code "
                                        "outside its dictionary or its bitmap index",
                                        segment_path(cu->seg), sc->cols[c].name, cu->g);
                else
                    out[i] = cu->remap[c][ms->codes[i]];
            }
        } else if (sc->cols[c].type == STRATA_FLOAT64) {
            rc = segment_read_floats(cu->seg, c, cu->g, cu->vals[c], &ms->scratch, err);
        } else {
            rc = segment_read_ints(cu->seg, c, cu->g, cu->vals[c], &ms->scratch, err);
        }
        if (rc)
            return rc;
    }
    cursor_key(sc, cu);
    return 0;
}

/* qsort's context for cursor_resort (qsort takes none). */
static _Thread_local const mcursor *resort_cu;
static _Thread_local const strata_schema *resort_sc;

/* Rows of the re-sorted input: sort key, then row number (stable). */
static int cmp_rows(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    const strata_schema *sc = resort_sc;
#define X_SLOT(c) (resort_cu->all[c][x])
#define Y_SLOT(c) (resort_cu->all[c][y])
    for (int k = 0; k <= sc->norder; k++) {
        uint64_t kx = KEY_PART(sc, k, X_SLOT), ky = KEY_PART(sc, k, Y_SLOT);
        if (kx != ky)
            return kx < ky ? -1 : 1;
    }
#undef X_SLOT
#undef Y_SLOT
    return (x > y) - (x < y);
}

/* Makes cu, an input whose rows are not in sort key order (segment_bucket_sorted false),
 * read them in that order: decodes it whole into cu->all and sorts cu->perm. Memory:
 * the input's rows x columns x 8 bytes, plus 4 per row. Leaves cu at its first row. */
static int cursor_resort(merge_state *ms, mcursor *cu, strata_err *err)
{
    const strata_schema *sc = ms->sc;
    uint64_t nrows = segment_nrows(cu->seg);
    for (int c = 0; c < sc->ncols; c++)
        if (!(cu->all[c] = malloc(8 * (size_t)(nrows + 1))))
            return strata_err_set(err, STRATA_ENOMEM, "merge: out of memory re-sorting %s",
                                  segment_path(cu->seg));
    uint32_t *perm = malloc(sizeof *perm * (size_t)(nrows + 1));
    if (!perm)
        return strata_err_set(err, STRATA_ENOMEM, "merge: out of memory re-sorting %s",
                              segment_path(cu->seg));
    uint64_t off = 0;
    for (cu->g = 0; cu->g < cu->ng; cu->g++) {
        if (segment_granule_nrows(cu->seg, cu->g) == 0)
            continue;
        int rc = cursor_load(ms, cu, err);
        if (rc == 0 && off + cu->n > nrows)
            rc = strata_err_set(err, STRATA_ECORRUPT, "%s: granules hold more than its %" PRIu64
                                " rows", segment_path(cu->seg), nrows);
        if (rc) {
            free(perm);
            return rc;
        }
        for (int c = 0; c < sc->ncols; c++)
            memcpy(cu->all[c] + off, cu->vals[c], 8 * (size_t)cu->n);
        off += cu->n;
    }
    if (off != nrows) {
        free(perm);
        return strata_err_set(err, STRATA_ECORRUPT, "%s: granules hold %" PRIu64 " rows, not %"
                              PRIu64, segment_path(cu->seg), off, nrows);
    }
    for (uint64_t r = 0; r < nrows; r++)
        perm[r] = (uint32_t)r;
    resort_cu = cu;
    resort_sc = sc;
    qsort(perm, nrows, sizeof *perm, cmp_rows);
    cu->perm = perm;
    uint32_t gr = segment_granule_rows(cu->seg);
    cu->ng = (uint32_t)((nrows + gr - 1) / gr);
    cu->g = 0;
    cu->row = 0;
    return 0;
}

/* Moves cu one row on; *done when it has no more. */
static int cursor_next(merge_state *ms, mcursor *cu, bool *done, strata_err *err)
{
    cu->row++;
    if (++cu->pos < cu->n) {
        if (cu->perm)
            cu->row = cu->perm[(uint64_t)cu->g * segment_granule_rows(cu->seg) + cu->pos];
        cursor_key(ms->sc, cu);
        *done = false;
        return 0;
    }
    for (;;) {
        if (++cu->g >= cu->ng) {
            *done = true;
            return 0;
        }
        if (cursor_granule_nrows(cu, cu->g) == 0)
            continue;
        *done = false;
        return cursor_load(ms, cu, err);
    }
}

int64_t merge_row_int(const merge_row_view *r, int col)
{
    const mcursor *cu = r->priv;
    return ((const int64_t *)cu->vals[col])[cu->pos];
}

double merge_row_float(const merge_row_view *r, int col)
{
    const mcursor *cu = r->priv;
    return ((const double *)cu->vals[col])[cu->pos];
}

strata_str merge_row_str(const merge_row_view *r, int col)
{
    const mcursor *cu = r->priv;
    return cu->dicts[col][((const int64_t *)cu->vals[col])[cu->pos]];
}

/* Union of string column c's dictionaries over the inputs (values with an empty bitmap
 * left out) into *dict / *ndict, and each input's remap (UINT32_MAX: a value left out).
 * A k-way merge of the sorted dictionaries. */
static int union_dict(segment *const *in, uint32_t n, int c, mcursor *cur, strata_str **dict,
                      uint32_t *ndict, strata_err *err)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += segment_dict_size(in[i], c);
    strata_str *d = malloc(sizeof *d * (total + 1));
    uint32_t *at = calloc(n, sizeof *at);
    if (!d || !at) {
        free(d);
        free(at);
        return strata_err_set(err, STRATA_ENOMEM, "merge: out of memory for dictionaries");
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t dn = segment_dict_size(in[i], c);
        for (uint32_t k = 0; k < dn; k++)
            cur[i].remap[c][k] = UINT32_MAX;
    }
    uint32_t nd = 0;
    for (;;) {
        /* The smallest current value over the inputs (n is small: a linear scan). */
        int best = -1;
        strata_str bv = {0};
        for (uint32_t i = 0; i < n; i++) {
            uint32_t dn = segment_dict_size(in[i], c);
            while (at[i] < dn && roaring_bitmap_is_empty(segment_dict_bitmap(in[i], c, at[i])))
                at[i]++;
            if (at[i] >= dn)
                continue;
            strata_str v = segment_dict_value(in[i], c, at[i]);
            if (best < 0 || strata_str_cmp(v, bv) < 0) {
                best = (int)i;
                bv = v;
            }
        }
        if (best < 0)
            break;
        d[nd] = bv;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t dn = segment_dict_size(in[i], c);
            if (at[i] < dn && strata_str_cmp(segment_dict_value(in[i], c, at[i]), bv) == 0)
                cur[i].remap[c][at[i]++] = nd;
        }
        nd++;
    }
    free(at);
    *dict = d;
    *ndict = nd;
    return 0;
}

/* The inputs must have the columns (names and types) and sort key of sc. */
static int check_input(const strata_schema *sc, const segment *s, strata_err *err)
{
    const strata_schema *ss = segment_schema(s);
    bool same = ss->ncols == sc->ncols && ss->norder == sc->norder && ss->time_col == sc->time_col;
    for (int c = 0; same && c < sc->ncols; c++)
        same = ss->cols[c].type == sc->cols[c].type && strcmp(ss->cols[c].name, sc->cols[c].name) == 0;
    for (int k = 0; same && k < sc->norder; k++)
        same = ss->order_by[k] == sc->order_by[k];
    if (!same)
        return strata_err_set(err, STRATA_EINVAL, "%s: its columns or sort key differ from table "
                              "'%s''s: it cannot be merged", segment_path(s), sc->name);
    return 0;
}

int merge_segments(const strata_schema *sc, segment *const *in, uint32_t n, const char *path,
                   const merge_opts *o, merge_out *out, strata_err *err)
{
    static const merge_opts none = {0};
    if (!o)
        o = &none;
    memset(out, 0, sizeof *out);
    merge_state ms = {.sc = sc};
    uint32_t *remaps[STRATA_MAX_COLUMNS] = {0}; /* per column: the inputs' remaps, back to back */
    strata_str *dicts[STRATA_MAX_COLUMNS] = {0};
    void *gbuf[STRATA_MAX_COLUMNS] = {0};
    segment_writer *w = NULL;
    uint32_t granule = o->granule_rows ? o->granule_rows : SEGMENT_GRANULE_ROWS;
    uint64_t total = 0;
    uint32_t maxg = 0;
    int rc = 0;
    for (uint32_t i = 0; i < n; i++) {
        if ((rc = check_input(sc, in[i], err)) != 0)
            return rc;
        total += segment_nrows(in[i]);
        maxg = segment_granule_rows(in[i]) > maxg ? segment_granule_rows(in[i]) : maxg;
    }
    if (total >= SEGMENT_MAX_ROWS)
        return strata_err_set(err, STRATA_EINVAL, "merge: %" PRIu64 " rows are over the segment "
                              "limit", total);
    out->rows_read = total;
    ms.cur = calloc(n + 1, sizeof *ms.cur);
    ms.heap = calloc(n + 1, sizeof *ms.heap);
    ms.codes = malloc(sizeof *ms.codes * ((size_t)maxg + 1));
    if (!ms.cur || !ms.heap || !ms.codes)
        goto oom;
    ms.ncur = n;

    w = segment_writer_open(path, sc, &(segment_write_opts){.codec = STRATA_CODEC_ZSTD,
                                                             .granule_rows = granule}, err);
    if (!w) {
        rc = err ? err->code : STRATA_EIO;
        goto done;
    }
    for (int c = 0; c < sc->ncols; c++) {
        if (sc->cols[c].type != STRATA_STRING)
            continue;
        uint64_t sum = 0;
        for (uint32_t i = 0; i < n; i++)
            sum += segment_dict_size(in[i], c);
        remaps[c] = malloc(sizeof *remaps[c] * (sum + 1));
        if (!remaps[c])
            goto oom;
        uint64_t off = 0;
        for (uint32_t i = 0; i < n; i++) {
            ms.cur[i].remap[c] = remaps[c] + off;
            off += segment_dict_size(in[i], c);
        }
        uint32_t nd = 0;
        if ((rc = union_dict(in, n, c, ms.cur, &dicts[c], &nd, err)) != 0 ||
            (rc = segment_writer_set_dict(w, c, dicts[c], nd, err)) != 0)
            goto done;
    }
    for (int c = 0; c < sc->ncols; c++)
        if (!(gbuf[c] = malloc(8 * (size_t)granule)))
            goto oom;

    /* Cursors on their first row, in a heap. */
    for (uint32_t i = 0; i < n; i++) {
        mcursor *cu = &ms.cur[i];
        cu->seg = in[i];
        cu->idx = i;
        cu->ng = segment_ngranules(in[i]);
        cu->dicts = dicts;
        uint32_t gr = segment_granule_rows(in[i]);
        cu->key = malloc(sizeof *cu->key * ((size_t)sc->norder + 1));
        if (!cu->key)
            goto oom;
        for (int c = 0; c < sc->ncols; c++)
            if (!(cu->vals[c] = malloc(8 * ((size_t)gr + 1))))
                goto oom;
        if (!segment_bucket_sorted(in[i]) && segment_nrows(in[i]) > 0) {
            if ((rc = cursor_resort(&ms, cu, err)) != 0)
                goto done;
            out->inputs_resorted++;
        }
        while (cu->g < cu->ng && cursor_granule_nrows(cu, cu->g) == 0)
            cu->g++;
        if (cu->g >= cu->ng)
            continue;
        if ((rc = cursor_load(&ms, cu, err)) != 0)
            goto done;
        ms.heap[ms.nheap++] = cu;
    }
    for (uint32_t i = ms.nheap / 2 + 1; i-- > 0;)
        heap_down(&ms, i);

    uint32_t m = 0; /* rows in the output granule */
    uint64_t popped = 0;
    while (ms.nheap) {
        mcursor *cu = ms.heap[0];
        bool keep = true;
        if (o->keep) {
            merge_row_view v = {cu->idx, cu->row, cu};
            keep = o->keep(o->keep_ctx, &v);
        }
        if (keep) {
            for (int c = 0; c < sc->ncols; c++) {
                if (sc->cols[c].type == STRATA_STRING)
                    ((uint32_t *)gbuf[c])[m] = (uint32_t)((const int64_t *)cu->vals[c])[cu->pos];
                else
                    memcpy((char *)gbuf[c] + 8 * (size_t)m, (const char *)cu->vals[c] + 8 * (size_t)cu->pos, 8);
            }
            if (++m == granule) {
                if ((rc = segment_writer_add_granule(w, m, (const void *const *)gbuf, err)) != 0)
                    goto done;
                out->info.nrows += m;
                m = 0;
            }
        } else {
            out->rows_dropped++;
        }
        bool finished;
        if ((rc = cursor_next(&ms, cu, &finished, err)) != 0)
            goto done;
        if (finished)
            ms.heap[0] = ms.heap[--ms.nheap];
        heap_down(&ms, 0);
        if ((++popped & 8191) == 0 && o->stop && atomic_load(o->stop)) {
            rc = strata_err_set(err, STRATA_EINVAL, "merge stopped (the server is stopping)");
            goto done;
        }
    }
    if (m) {
        if ((rc = segment_writer_add_granule(w, m, (const void *const *)gbuf, err)) != 0)
            goto done;
        out->info.nrows += m;
    }
    if (out->info.nrows == 0) {
        segment_writer_abort(w); /* every row dropped: no segment */
        w = NULL;
        memset(&out->info, 0, sizeof out->info);
        goto done;
    }
    rc = segment_writer_finish(w, &out->info, err);
    w = NULL;
    goto done;
oom:
    rc = strata_err_set(err, STRATA_ENOMEM, "merge: out of memory writing %s", path);
done:
    if (w)
        segment_writer_abort(w);
    if (ms.cur)
        for (uint32_t i = 0; i < n; i++) {
            free(ms.cur[i].key);
            free(ms.cur[i].perm);
            for (int c = 0; c < sc->ncols; c++) {
                free(ms.cur[i].vals[c]);
                free(ms.cur[i].all[c]);
            }
        }
    for (int c = 0; c < sc->ncols; c++) {
        free(remaps[c]);
        free(dicts[c]);
        free(gbuf[c]);
    }
    free(ms.cur);
    free(ms.heap);
    free(ms.codes);
    segment_scratch_free(&ms.scratch);
    return rc;
}

/* ---- merges of a table ---------------------------------------------------------------- */

/* Merges p's segments [first, first+count) (as p->man lists them) into one of level
 * level, and commits it (merge.h). Caller holds t->merge_lock and no other. */
static int partition_merge(strata_table *t, partition *p, uint32_t first, uint32_t count,
                           uint32_t level, const merge_opts *o, merge_report *rep, strata_err *err)
{
    uint64_t t0 = (uint64_t)clock_mono_ns();
    table_seg **in = calloc(count + 1, sizeof *in);
    segment **segs = calloc(count + 1, sizeof *segs);
    uint64_t *ids = calloc(count + 1, sizeof *ids);
    if (!in || !segs || !ids) {
        free(in);
        free(segs);
        free(ids);
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    }
    uint64_t bytes_read = 0;
    int rc = 0;
    pthread_mutex_lock(&t->lock);
    if (first + count > p->man.nsegs)
        rc = strata_err_set(err, STRATA_EINVAL, "merge: the partition has %u segments, not %u",
                            p->man.nsegs, first + count);
    for (uint32_t i = 0; i < count && rc == 0; i++) {
        ids[i] = p->man.segs[first + i].id;
        bytes_read += p->man.segs[first + i].bytes;
        for (uint32_t j = 0; j < p->nsegs && !in[i]; j++)
            if (p->segs[j]->id == ids[i])
                in[i] = p->segs[j];
        if (!in[i]) {
            rc = strata_err_set(err, STRATA_EINVAL, "merge: segment %016" PRIx64 " is listed but not open",
                                ids[i]);
            break;
        }
        atomic_fetch_add(&in[i]->refs, 1);
        segs[i] = in[i]->seg;
    }
    pthread_mutex_unlock(&t->lock);

    uint64_t id = atomic_fetch_add(&t->next_seg_id, 1);
    char path[PATH_MAX + 32];
    merge_out mo = {0};
    table_seg *h = NULL;
    manifest next = {0};
    bool wrote = false, dd_locked = false;
    merge_dd md = {0};
    merge_opts mopts = o ? *o : (merge_opts){0};
    if (rc == 0 && p->dd && (rc = merge_dd_begin(t, p, in, count, &md, err)) == 0) {
        /* dedup: superseded rows with durable marks go (merge_dedup.c) */
        mopts.keep = merge_dd_keep;
        mopts.keep_ctx = &md;
    }
    if (rc == 0)
        rc = table__seg_path(p->dir, id, path, sizeof path, err);
    if (rc == 0)
        rc = merge_segments(&t->schema, segs, count, path, &mopts, &mo, err);
    if (rc)
        goto done;
    wrote = mo.info.nrows > 0;
    if (wrote) {
        if ((rc = table__seg_open(p->dir, id, &h, err)) != 0)
            goto undo;
        if (segment_nrows(h->seg) != mo.info.nrows) {
            rc = strata_err_set(err, STRATA_ECORRUPT, "%s: holds %" PRIu64 " rows, the merge wrote %" PRIu64,
                                path, segment_nrows(h->seg), mo.info.nrows);
            goto undo;
        }
    }

    /* The commit: flushes wait for it, never for the merge above. */
    pthread_mutex_lock(&t->flush_lock);
    if ((rc = table__writes_refused(t, err)) != 0) {
        pthread_mutex_unlock(&t->flush_lock);
        goto undo;
    }
    uint32_t at = UINT32_MAX;
    for (uint32_t i = 0; i < p->man.nsegs && at == UINT32_MAX; i++)
        if (p->man.segs[i].id == ids[0])
            at = i;
    for (uint32_t i = 1; i < count && at != UINT32_MAX; i++)
        if (at + i >= p->man.nsegs || p->man.segs[at + i].id != ids[i])
            at = UINT32_MAX;
    if (at == UINT32_MAX) {
        pthread_mutex_unlock(&t->flush_lock);
        rc = strata_err_set(err, STRATA_EINVAL, "merge: the partition's segments changed under it");
        goto undo;
    }
    if (manifest_copy(&next, &p->man) != 0) {
        pthread_mutex_unlock(&t->flush_lock);
        rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
        goto undo;
    }
    next.generation++;
    for (uint32_t i = 0; i < count; i++)
        manifest_set_dv(&next, ids[i], NULL, 0);
    memmove(&next.segs[at + (wrote ? 1 : 0)], &next.segs[at + count],
            sizeof *next.segs * (next.nsegs - at - count));
    next.nsegs -= count - (wrote ? 1 : 0);
    if (wrote)
        next.segs[at] = (manifest_segment){id, mo.info.nrows, mo.info.bytes, mo.info.min_time,
                                           mo.info.max_time, level};
    if (p->dd) {
        pthread_mutex_lock(&t->dedup_lock);
        dd_locked = true;
        if ((rc = merge_dd_prepare(t, p, in, h, id, &next, &md, err)) != 0) {
            pthread_mutex_unlock(&t->dedup_lock);
            dd_locked = false;
            pthread_mutex_unlock(&t->flush_lock);
            goto undo;
        }
    }
    bool renamed = false, durable = true;
    if ((rc = manifest_write(p->dir, &next, &renamed, err)) != 0 && !renamed) {
        if (dd_locked) {
            merge_dd_unprepare(p, h);
            pthread_mutex_unlock(&t->dedup_lock);
            dd_locked = false;
        }
        pthread_mutex_unlock(&t->flush_lock);
        goto undo;
    }
    if (rc) {
        /* MANIFEST was replaced but the directory fsync failed: either version may come
         * back after a crash, so every file of both stays, and the table takes no more
         * writes until a restart (as a flush's commit). */
        table__fail(t, err ? err->msg : "merge commit not durable");
        durable = false;
        rc = 0;
    }
    /* Publish: the inputs out, the output in their place, in one step. */
    pthread_mutex_lock(&t->lock);
    if (dd_locked)
        merge_dd_publish(p, in, h, &md);
    manifest_free(&p->man);
    p->man = next;
    memset(&next, 0, sizeof next);
    uint32_t k = 0;
    bool placed = false;
    for (uint32_t j = 0; j < p->nsegs; j++) {
        bool input = false;
        for (uint32_t i = 0; i < count && !input; i++)
            input = p->segs[j] == in[i];
        if (!input) {
            p->segs[k++] = p->segs[j];
        } else {
            table__seg_unref(p->segs[j]); /* the partition's reference; ours keeps it open */
            if (!placed && h) {
                p->segs[k++] = h;
                h = NULL;
            }
            placed = true;
        }
    }
    p->nsegs = k;
    pthread_mutex_unlock(&t->lock);
    if (dd_locked)
        pthread_mutex_unlock(&t->dedup_lock);
    dd_locked = false;
    pthread_mutex_unlock(&t->flush_lock);

    if (durable)
        for (uint32_t i = 0; i < count; i++) {
            char old[PATH_MAX + 32];
            if (table__seg_path(p->dir, ids[i], old, sizeof old, NULL) == 0)
                unlink(old); /* a crash before this leaves it unlisted: recovery deletes it */
        }
    uint64_t ns = (uint64_t)clock_mono_ns() - t0;
    atomic_fetch_add(&t->merges, 1);
    atomic_fetch_add(&t->merge_ns, ns);
    atomic_fetch_add(&t->merge_rows, mo.rows_read);
    atomic_fetch_add(&t->merge_rows_dropped, mo.rows_dropped);
    atomic_fetch_add(&t->merge_bytes_written, mo.info.bytes);
    rep->merged = true;
    schema_partition_name(t->schema.partition_by, p->key, rep->partition, sizeof rep->partition);
    rep->inputs = count;
    rep->level = level;
    rep->rows = mo.rows_read;
    rep->rows_dropped = mo.rows_dropped;
    rep->bytes_read = bytes_read;
    rep->bytes_written = mo.info.bytes;
    rep->seconds = (double)ns / 1e9;
    goto done;
undo:
    if (wrote)
        unlink(path);
done:
    merge_dd_free(&md);
    table__seg_unref(h);
    manifest_free(&next);
    for (uint32_t i = 0; i < count; i++)
        table__seg_unref(in[i]);
    free(in);
    free(segs);
    free(ids);
    return rc;
}

int merge_table_once(strata_table *t, const merge_policy *pol, const merge_opts *o,
                     merge_report *rep, strata_err *err)
{
    memset(rep, 0, sizeof *rep);
    if (o && o->skip_if_busy) {
        if (pthread_mutex_trylock(&t->merge_lock) != 0)
            return 0;
    } else {
        pthread_mutex_lock(&t->merge_lock);
    }
    partition *best = NULL;
    merge_pick pick = {0};
    pthread_mutex_lock(&t->lock);
    for (uint32_t i = 0; i < t->nparts; i++) {
        merge_pick mp;
        partition *p = t->parts[i];
        if (merge_select(p->man.segs, p->man.nsegs, pol, &mp) && (!best || mp.score < pick.score)) {
            best = p;
            pick = mp;
        }
    }
    pthread_mutex_unlock(&t->lock);
    int rc = 0;
    if (best && (rc = table__writes_refused(t, err)) == 0)
        rc = partition_merge(t, best, pick.first, pick.count, pick.level, o, rep, err);
    pthread_mutex_unlock(&t->merge_lock);
    return rc;
}

void merge_optimize_report_free(optimize_report *r)
{
    free(r->parts);
    memset(r, 0, sizeof *r);
}

/* One pass of optimize over the first *limit segments of p: greedy groups of adjacent
 * segments within the bounds, each of 2+ merged (or one alone holding durably superseded
 * rows, in a dedup table). *merged counts merges; *limit shrinks
 * with them. Caller holds merge_lock. */
static int optimize_pass(strata_table *t, partition *p, const merge_policy *pol, uint32_t *limit,
                         optimize_part *op, strata_err *err)
{
    uint32_t i = 0;
    while (i < *limit) {
        uint32_t count = 0, level = 0;
        uint64_t rows = 0, bytes = 0;
        pthread_mutex_lock(&t->lock);
        while (i + count < *limit && count < MERGE_OPTIMIZE_FAN_IN) {
            const manifest_segment *s = &p->man.segs[i + count];
            if (count && (rows + s->rows > pol->max_rows || bytes + s->bytes > pol->max_bytes))
                break;
            rows += s->rows;
            bytes += s->bytes;
            level = s->level > level ? s->level : level;
            count++;
        }
        /* Dedup: a segment alone is rewritten while it holds superseded rows whose marks
         * are durable (the MANIFEST lists them), so optimize leaves one row per key. */
        bool marked = count == 1 && p->dd && manifest_get_dv(&p->man, p->man.segs[i].id);
        pthread_mutex_unlock(&t->lock);
        if (count < 2 && !marked) {
            i += 1;
            continue;
        }
        merge_report rep;
        memset(&rep, 0, sizeof rep);
        int rc = partition_merge(t, p, i, count, level + 1 > MERGE_MAX_LEVEL ? MERGE_MAX_LEVEL : level + 1,
                                 NULL, &rep, err);
        if (rc)
            return rc;
        op->merges++;
        op->rows += rep.rows;
        op->rows_dropped += rep.rows_dropped;
        op->bytes_written += rep.bytes_written;
        *limit -= count - 1;
        i += 1;
    }
    return 0;
}

int merge_table_optimize(strata_table *t, const int64_t *part_key, const merge_policy *pol,
                         optimize_report *rep, strata_err *err)
{
    memset(rep, 0, sizeof *rep);
    uint64_t t0 = (uint64_t)clock_mono_ns();
    int rc = table_flush(t, true, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&t->merge_lock);
    /* Partitions stay while merge_lock is held (retention takes it to drop one). */
    pthread_mutex_lock(&t->lock);
    uint32_t n = 0;
    partition **parts = malloc(sizeof *parts * (t->nparts + 1));
    if (parts)
        for (uint32_t i = 0; i < t->nparts; i++)
            if (!part_key || t->parts[i]->key == *part_key)
                parts[n++] = t->parts[i];
    pthread_mutex_unlock(&t->lock);
    rep->parts = calloc(n + 1, sizeof *rep->parts);
    if (!parts || !rep->parts) {
        rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
        goto done;
    }
    if (part_key && n == 0) {
        char name[32];
        schema_partition_name(t->schema.partition_by, *part_key, name, sizeof name);
        rc = strata_err_set(err, STRATA_ENOTFOUND, "table '%s' has no partition '%s'", t->schema.name, name);
        goto done;
    }
    if ((rc = table__writes_refused(t, err)) != 0)
        goto done;
    for (uint32_t k = 0; k < n && rc == 0; k++) {
        partition *p = parts[k];
        optimize_part *op = &rep->parts[rep->nparts++];
        schema_partition_name(t->schema.partition_by, p->key, op->partition, sizeof op->partition);
        pthread_mutex_lock(&t->lock);
        uint32_t limit = p->man.nsegs; /* flushes append after these: they are not ours */
        pthread_mutex_unlock(&t->lock);
        op->segments_before = limit;
        for (;;) {
            uint32_t before = op->merges;
            if ((rc = optimize_pass(t, p, pol, &limit, op, err)) != 0 || op->merges == before)
                break;
        }
        op->segments_after = limit;
        rep->segments_before += op->segments_before;
        rep->segments_after += op->segments_after;
        rep->merges += op->merges;
        rep->rows += op->rows;
        rep->rows_dropped += op->rows_dropped;
        rep->bytes_written += op->bytes_written;
    }
done:
    pthread_mutex_unlock(&t->merge_lock);
    free(parts);
    rep->seconds = (double)((uint64_t)clock_mono_ns() - t0) / 1e9;
    return rc;
}

/* table_get_stats' figures of merges and retention. Takes lock. */
void table__merge_stats(strata_table *t, table_stats *st)
{
    pthread_mutex_lock(&t->lock);
    for (uint32_t i = 0; i < t->nparts; i++)
        if (t->parts[i]->nsegs > st->max_partition_segments)
            st->max_partition_segments = t->parts[i]->nsegs;
    pthread_mutex_unlock(&t->lock);
    st->merges = atomic_load(&t->merges);
    st->merge_ns = atomic_load(&t->merge_ns);
    st->merge_rows = atomic_load(&t->merge_rows);
    st->merge_rows_dropped = atomic_load(&t->merge_rows_dropped);
    st->merge_bytes_written = atomic_load(&t->merge_bytes_written);
    st->expired_partitions = atomic_load(&t->expired_partitions);
    st->expired_rows = atomic_load(&t->expired_rows);
}
