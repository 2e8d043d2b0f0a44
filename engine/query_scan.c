/*
 * query_scan.c — reads the sources a plan lists and aggregates their rows, on one or more
 * threads, then merges the threads' states (qscan_run in query_ctx.h).
 *
 * Sources are segments (granules decoded into per-thread buffers, after the plan's
 * pruning: qplan_granules) and memtables (chunks read in place). A block is at most
 * BLOCK_ROWS (STRATA_BLOCK_ROWS, 8192) rows: a memtable chunk, or a granule as strata
 * writes it. A granule of another size (the format allows up to SEGMENT_MAX_GRANULE_ROWS) is
 * decoded whole into column buffers grown to fit it, then processed BLOCK_ROWS rows at a
 * time, so the masks, selections and scratch that the steps below use stay BLOCK_ROWS
 * long. Each block goes through:
 *   1. a selection mask: time range, then the where tree evaluated column-wise
 *      (qctx_eval_expr);
 *   2. grouping: a key of u64 words (time bucket, then group values; strings as ids in a
 *      query-wide string pool, via a per-source code -> id table) found in an
 *      open-addressing hash table of groups (query_groups.h);
 *   3. aggregate updates into per-group states (query_agg.h): exact int64 sums with
 *      overflow checks, Neumaier-compensated float sums, HLL, DDSketch.
 *
 * Threads: each has its own exec and takes the next job from a shared counter until none
 * is left or one thread fails (then all stop). The first thread is the caller's; the
 * others' groups are then merged into its own, string keys re-interned into its pool.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/clock.h"
#include "engine/memtable.h"
#include "engine/query_agg.h"
#include "engine/query_ctx.h"
#include "engine/query_groups.h"
#include "engine/query_plan.h"
#include "engine/sketch.h"

_Static_assert(BLOCK_ROWS == MEMTABLE_CHUNK_ROWS,
               "scan_memtable reads a memtable chunk in place as one block");
_Static_assert(SEGMENT_GRANULE_ROWS == BLOCK_ROWS,
               "scan_segment decodes a granule as strata writes it into one block: the common "
               "path does one process_block per granule");

/* Adds row i of x's decoded block to s, the state of aggregate a. 0; STRATA_EINVAL when
 * an integer sum overflows; STRATA_ENOMEM when a sketch cannot grow. */
static inline int agg_update(exec *x, const query_agg *a, agg_state *s, uint32_t i)
{
    if (a->fn == STRATA_AGG_COUNT) {
        s->n++;
        return 0;
    }
    strata_type t = x->sc->cols[a->col].type;
    if (t == STRATA_STRING) { /* only uniq takes strings */
        strata_str v = qctx_src_str(x, a->col, x->cv[a->col][i]);
        if (!s->sk && !(s->sk = hll_create()))
            return STRATA_ENOMEM;
        uint64_t before = hll_bytes(s->sk);
        hll_add_hash(s->sk, sketch_hash_bytes(v.ptr, v.len));
        x->sketch_bytes += hll_bytes(s->sk) - before;
        s->n++;
        return 0;
    }
    bool is_int = strata_type_is_int(t);
    int64_t iv = is_int ? x->iv[a->col][i] : 0;
    double fv = is_int ? (t == STRATA_UINT64 ? (double)(uint64_t)iv : (double)iv) : x->fv[a->col][i];
    if (!is_int && isnan(fv) && a->fn != STRATA_AGG_UNIQ)
        return 0;
    switch (a->fn) {
    case STRATA_AGG_SUM:
    case STRATA_AGG_AVG:
        if (is_int && a->fn == STRATA_AGG_SUM) {
            if (!qagg_add_int(t, &s->i, iv))
                return STRATA_EINVAL;
        } else {
            qagg_neumaier_add(&s->f, &s->comp, fv);
        }
        break;
    case STRATA_AGG_MIN:
    case STRATA_AGG_MAX: {
        bool mn = a->fn == STRATA_AGG_MIN;
        if (is_int) {
            if (!s->has || qagg_int_beats(t, mn, iv, s->i))
                s->i = iv;
        } else if (!s->has || (mn ? fv < s->f : fv > s->f)) {
            s->f = fv;
        }
        break;
    }
    case STRATA_AGG_UNIQ: {
        if (!s->sk && !(s->sk = hll_create()))
            return STRATA_ENOMEM;
        uint64_t before = hll_bytes(s->sk);
        if (is_int) {
            hll_add_hash(s->sk, sketch_hash_u64((uint64_t)iv));
        } else {
            double z = fv == 0 ? 0.0 : fv; /* -0.0 and 0.0 are one value */
            uint64_t bits;
            memcpy(&bits, &z, 8);
            hll_add_hash(s->sk, sketch_hash_u64(bits));
        }
        x->sketch_bytes += hll_bytes(s->sk) - before;
        break;
    }
    case STRATA_AGG_QUANTILE: {
        if (!s->sk && !(s->sk = dds_create()))
            return STRATA_ENOMEM;
        uint64_t before = dds_bytes(s->sk);
        if (!dds_add(s->sk, fv))
            return STRATA_ENOMEM;
        x->sketch_bytes += dds_bytes(s->sk) - before;
        break;
    }
    default: break;
    }
    s->has = true;
    s->n++;
    return 0;
}

static int process_block(exec *x)
{
    const strata_query *q = x->q;
    uint32_t n = x->n;
    const int64_t *ts = x->iv[x->sc->time_col];
    uint8_t *mask = x->mask;
    if (x->ts_const)
        memset(mask, 1, n);
    else
        for (uint32_t i = 0; i < n; i++)
            mask[i] = ts[i] >= q->from_ms && ts[i] < q->to_ms;
    if (q->where) {
        uint8_t *wm = x->tmp_masks; /* depth 0 scratch; children use deeper ones */
        int rc = qctx_eval_expr(x, q->where, wm, 1);
        if (rc)
            return rc;
        for (uint32_t i = 0; i < n; i++)
            mask[i] &= wm[i];
    }
    if (x->dv) /* dedup: rows newer rows of their key superseded */
        dvec_mask(x->dv, x->row0, n, mask);
    if (x->sc->ndedup > 0 && x->sc->deleted_col >= 0) { /* dedup: a winning deletion */
        const int64_t *del = x->iv[x->sc->deleted_col];
        for (uint32_t i = 0; i < n; i++)
            mask[i] &= del[i] == 0;
    }
    x->rows_read += n;
    /* Phase 1: each selected row's group. Rows come in runs (segments are sorted by hour,
     * then the low-cardinality strings, then time; only the runs matter here), so the last key and the last time bucket are
     * kept and the hash table is only asked when the key changes. */
    uint64_t key[QUERY_MAX_GROUP + 1], last[QUERY_MAX_GROUP + 1];
    uint32_t klen = x->groups.klen, nsel = 0;
    int64_t last_gi = -1;
    int64_t b_lo = INT64_MAX, b_hi = INT64_MIN; /* [b_lo, b_hi): the bucket of b_lo */
    for (uint32_t i = 0; i < n && x->by_code; i++) {
        if (!mask[i])
            continue;
        uint32_t code = x->cv[q->group_cols[0]][i];
        lazy_table *lt = &x->code_gid;
        if (code >= lt->cap || !lt->v[code]) {
            if (!qgroups_lazy_reserve(lt, code))
                return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
            int64_t id = qgroups_pool_intern(&x->pool, qctx_src_str(x, q->group_cols[0], code));
            if (id < 0)
                return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
            key[0] = (uint64_t)id;
            int64_t gi = qgroups_find(&x->groups, key);
            if (gi < 0)
                return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
            if (q->max_groups && x->groups.n > q->max_groups)
                return qctx_too_many_groups(x);
            lt->v[code] = (uint32_t)gi + 1;
        }
        x->sel[nsel] = i;
        x->gid[nsel++] = lt->v[code] - 1;
    }
    for (uint32_t i = 0; i < n && !x->by_code; i++) {
        if (!mask[i])
            continue;
        uint32_t k = 0;
        if (q->interval_ms > 0 && x->ts_const) {
            key[k++] = (uint64_t)x->ts_bucket;
        } else if (q->interval_ms > 0) {
            if (ts[i] < b_lo || ts[i] >= b_hi) {
                b_lo = qplan_floor_div64(ts[i], q->interval_ms) * q->interval_ms;
                b_hi = b_lo > INT64_MAX - q->interval_ms ? INT64_MAX : b_lo + q->interval_ms;
            }
            key[k++] = (uint64_t)b_lo;
        }
        for (int g = 0; g < q->ngroup; g++) {
            int c = q->group_cols[g];
            strata_type t = x->sc->cols[c].type;
            if (t == STRATA_STRING) {
                uint32_t code = x->cv[c][i];
                lazy_table *lt = &x->group_ids[g];
                if (code >= lt->cap || !lt->v[code]) {
                    if (!qgroups_lazy_reserve(lt, code))
                        return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
                    int64_t id = qgroups_pool_intern(&x->pool, qctx_src_str(x, c, code));
                    if (id < 0)
                        return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
                    lt->v[code] = (uint32_t)id + 1;
                }
                key[k++] = lt->v[code] - 1;
            } else if (t == STRATA_FLOAT64) {
                double v = x->fv[c][i];
                if (v == 0)
                    v = 0.0; /* one group for -0.0 and 0.0 */
                memcpy(&key[k++], &v, 8);
            } else {
                key[k++] = (uint64_t)x->iv[c][i];
            }
        }
        if (k == 0)
            key[0] = 0; /* no buckets, no groups: the single group's key */
        bool same = last_gi >= 0;
        for (uint32_t w = 0; same && w < klen; w++)
            same = key[w] == last[w];
        if (!same) {
            last_gi = qgroups_find(&x->groups, key);
            if (last_gi < 0)
                return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
            if (q->max_groups && x->groups.n > q->max_groups)
                return qctx_too_many_groups(x);
            memcpy(last, key, sizeof *key * klen);
        }
        x->sel[nsel] = i;
        x->gid[nsel++] = (uint32_t)last_gi;
    }
    /* Phase 2: the aggregates, one tight loop per aggregate for the common ones. */
    for (int a = 0; a < q->naggs; a++) {
        if (x->agg_src[a] != a)
            continue;
        const query_agg *ag = &q->aggs[a];
        agg_state *st = x->groups.states + a;
        uint32_t na = x->groups.naggs;
        strata_type t = ag->col >= 0 ? x->sc->cols[ag->col].type : STRATA_INT64;
        /* Both loops walk runs of one group with the state in registers: a store and
         * reload per row would chain every addition through memory. */
        if (ag->fn == STRATA_AGG_COUNT) {
            for (uint32_t j = 0; j < nsel;) {
                uint32_t g = x->gid[j], e = j + 1;
                while (e < nsel && x->gid[e] == g)
                    e++;
                st[(uint64_t)g * na].n += e - j;
                j = e;
            }
            continue;
        }
        if ((ag->fn == STRATA_AGG_SUM || ag->fn == STRATA_AGG_AVG) && t == STRATA_FLOAT64) {
            /* Two compensated sums side by side (even and odd rows of a run), added
             * together at the run's end: the CPU overlaps their latency chains. */
            const double *fv = x->fv[ag->col];
            for (uint32_t j = 0; j < nsel;) {
                uint32_t g = x->gid[j], e = j + 1;
                while (e < nsel && x->gid[e] == g)
                    e++;
                agg_state *s = &st[(uint64_t)g * na];
                double f0 = s->f, c0 = s->comp, f1 = 0, c1 = 0;
                uint64_t cnt = 0;
                for (; j + 1 < e; j += 2) {
                    double v0 = fv[x->sel[j]], v1 = fv[x->sel[j + 1]];
                    if (v0 == v0) {
                        qagg_neumaier_add(&f0, &c0, v0);
                        cnt++;
                    }
                    if (v1 == v1) {
                        qagg_neumaier_add(&f1, &c1, v1);
                        cnt++;
                    }
                }
                if (j < e) {
                    double v0 = fv[x->sel[j]];
                    if (v0 == v0) {
                        qagg_neumaier_add(&f0, &c0, v0);
                        cnt++;
                    }
                    j++;
                }
                qagg_neumaier_add(&f0, &c0, f1);
                s->f = f0;
                s->comp = c0 + c1;
                s->n += cnt;
                s->has |= cnt > 0;
            }
            continue;
        }
        if (ag->fn == STRATA_AGG_QUANTILE && t == STRATA_FLOAT64) {
            const double *fv = x->fv[ag->col];
            double *run = (double *)x->tmp_masks; /* free in phase 2; BLOCK_ROWS * 8 bytes */
            for (uint32_t j = 0; j < nsel;) {
                uint32_t g = x->gid[j], m = 0;
                for (; j < nsel && x->gid[j] == g; j++)
                    run[m++] = fv[x->sel[j]];
                agg_state *s = &st[(uint64_t)g * na];
                if (!s->sk && !(s->sk = dds_create()))
                    return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
                ddsketch *d = s->sk;
                uint64_t before = dds_bytes(d), had = d->count;
                if (!dds_add_n(d, run, m))
                    return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
                x->sketch_bytes += dds_bytes(d) - before;
                s->n += d->count - had; /* NaN is not counted */
                s->has |= d->count > had;
            }
            continue;
        }
        for (uint32_t j = 0; j < nsel; j++) {
            int rc = agg_update(x, ag, &st[(uint64_t)x->gid[j] * na], x->sel[j]);
            if (rc == STRATA_EINVAL)
                return strata_err_set(x->err, STRATA_EINVAL, "query: sum of '%s' overflows 64 bits",
                                      x->sc->cols[ag->col].name);
            if (rc)
                return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
        }
    }
    if (q->timeout_ms > 0 && clock_mono_ms_frac() > x->deadline)
        return strata_err_set(x->err, STRATA_EFULL, "query: stopped after the time limit of %" PRId64 " ms",
                              q->timeout_ms);
    return qctx_check_memory(x);
}

/* A counts-only query over a source wholly in range: n rows more in the single group. */
static int add_counts(exec *x, uint64_t n)
{
    uint64_t key = 0;
    int64_t gi = qgroups_find(&x->groups, &key);
    if (gi < 0)
        return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
    for (int a = 0; a < x->q->naggs; a++)
        x->groups.states[(uint64_t)gi * x->groups.naggs + (uint64_t)a].n += n;
    return 0;
}

/* Grows the column buffers to hold rows values (a granule larger than any before). */
static int grow_bufs(exec *x, uint32_t rows)
{
    for (int c = 0; c < x->sc->ncols; c++) {
        if (!x->need[c])
            continue;
        free(x->buf[c]);
        if (!(x->buf[c] = malloc(8 * (size_t)rows))) {
            x->buf_rows = 0; /* so the next segment grows them all again */
            return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory for granules of %u rows",
                                  rows);
        }
    }
    x->buf_rows = rows;
    return 0;
}

/* Points the columns read from buf at rows [off, off + x->n) of the decoded granule. */
static void point_at(exec *x, uint32_t off)
{
    for (int c = 0; c < x->sc->ncols; c++) {
        if (!x->need[c] || (x->ts_const && c == x->sc->time_col))
            continue;
        strata_type t = x->sc->cols[c].type;
        if (strata_type_is_int(t))
            x->iv[c] = (const int64_t *)x->buf[c] + off;
        else if (t == STRATA_FLOAT64)
            x->fv[c] = (const double *)x->buf[c] + off;
        else
            x->cv[c] = (const uint32_t *)x->buf[c] + off;
    }
}

/* Granules [g0, g1) of seg. The job holding granule 0 counts the segment as read when
 * any of its granules is, so a segment cut into several jobs counts once. */
static int scan_segment(exec *x, const segment *seg, uint32_t g0, uint32_t g1)
{
    if (segment_granule_rows(seg) > x->buf_rows) {
        int rc = grow_bufs(x, segment_granule_rows(seg));
        if (rc)
            return rc;
    }
    if (x->seg != seg || x->mt)
        qctx_source_begin(x, seg, NULL); /* the next job of the same segment keeps its tables */
    uint32_t ng = segment_ngranules(seg);
    uint8_t *keep = malloc(ng ? ng : 1);
    if (!keep)
        return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
    qplan_granules(x->plan, seg, keep);
    bool any = false;
    int rc = 0;
    if (g1 > ng)
        g1 = ng;
    for (uint32_t g = 0; g0 == 0 && g < ng && !any; g++)
        any = keep[g];
    for (uint32_t g = g0; g < g1 && rc == 0; g++) {
        if (!keep[g])
            continue;
        uint32_t rows = segment_granule_nrows(seg, g);
        x->ts_const = qplan_granule_time_const(x->plan, seg, g, &x->ts_bucket);
        for (int c = 0; c < x->sc->ncols && rc == 0; c++) {
            if (!x->need[c] || (x->ts_const && c == x->sc->time_col))
                continue;
            strata_type t = x->sc->cols[c].type;
            if (strata_type_is_int(t)) {
                rc = segment_read_ints(seg, c, g, x->buf[c], &x->scratch, x->err);
                x->iv[c] = x->buf[c];
            } else if (t == STRATA_FLOAT64) {
                rc = segment_read_floats(seg, c, g, x->buf[c], &x->scratch, x->err);
                x->fv[c] = x->buf[c];
            } else {
                rc = segment_read_codes(seg, c, g, x->buf[c], &x->scratch, x->err);
                x->cv[c] = x->buf[c];
            }
        }
        /* One block for a granule strata wrote; a bigger one a block at a time. */
        for (uint32_t off = 0; off < rows && rc == 0; off += BLOCK_ROWS) {
            x->n = rows - off < BLOCK_ROWS ? rows - off : BLOCK_ROWS;
            x->row0 = (uint64_t)g * segment_granule_rows(seg) + off;
            if (off)
                point_at(x, off);
            rc = process_block(x);
        }
    }
    free(keep);
    if (any)
        x->segments_read++;
    return rc;
}

static int scan_memtable(exec *x, const memtable *mt, uint64_t rows)
{
    qctx_source_begin(x, NULL, mt);
    x->ts_const = false;
    int rc = 0;
    for (uint64_t ch = 0; ch * MEMTABLE_CHUNK_ROWS < rows && rc == 0; ch++) {
        uint64_t left = rows - ch * MEMTABLE_CHUNK_ROWS;
        x->n = left < MEMTABLE_CHUNK_ROWS ? (uint32_t)left : MEMTABLE_CHUNK_ROWS;
        x->row0 = ch * MEMTABLE_CHUNK_ROWS;
        for (int c = 0; c < x->sc->ncols; c++) {
            if (!x->need[c])
                continue;
            strata_type t = x->sc->cols[c].type;
            if (strata_type_is_int(t))
                x->iv[c] = memtable_chunk_ints(mt, c, ch);
            else if (t == STRATA_FLOAT64)
                x->fv[c] = memtable_chunk_floats(mt, c, ch);
            else
                x->cv[c] = memtable_chunk_codes(mt, c, ch);
        }
        rc = process_block(x);
    }
    return rc;
}

static int scan_job(exec *x, const qplan_job *job)
{
    if (job->read == QPLAN_COUNT_ROWS) {
        x->segments_read++;
        return add_counts(x, job->rows); /* from the footer; nothing decoded */
    }
    x->dv = job->dv;
    return job->seg ? scan_segment(x, job->seg, job->g0, job->g1) : scan_memtable(x, job->mt, job->rows);
}

/* ---- threads -------------------------------------------------------------------------- */

typedef struct worker {
    exec x;
    strata_err err;
    const qplan_job *jobs;
    uint32_t njobs;
    _Atomic uint32_t *next;
    _Atomic int *stop;
    int rc;
} worker;

static void *worker_run(void *p)
{
    worker *w = p;
    for (;;) {
        if (atomic_load(w->stop))
            break;
        uint32_t j = atomic_fetch_add(w->next, 1);
        if (j >= w->njobs)
            break;
        w->rc = scan_job(&w->x, &w->jobs[j]);
        if (w->rc) {
            atomic_store(w->stop, 1);
            break;
        }
    }
    return NULL;
}

/* (query_ctx.h) String keys are re-interned into dst's pool. */
int qscan_merge(exec *dst, exec *src)
{
    const strata_query *q = dst->q;
    uint64_t key[QUERY_MAX_GROUP + 1];
    uint32_t klen = dst->groups.klen;
    int first = q->interval_ms > 0;
    for (uint64_t gi = 0; gi < src->groups.n; gi++) {
        memcpy(key, src->groups.keys + gi * klen, sizeof *key * klen);
        for (int g = 0; g < q->ngroup; g++)
            if (dst->sc->cols[q->group_cols[g]].type == STRATA_STRING) {
                int64_t id = qgroups_pool_intern(&dst->pool, src->pool.items[key[first + g]]);
                if (id < 0)
                    return strata_err_set(dst->err, STRATA_ENOMEM, "query: out of memory");
                key[first + g] = (uint64_t)id;
            }
        int64_t di = qgroups_find(&dst->groups, key);
        if (di < 0)
            return strata_err_set(dst->err, STRATA_ENOMEM, "query: out of memory");
        if (q->max_groups && dst->groups.n > q->max_groups)
            return qctx_too_many_groups(dst);
        for (int a = 0; a < q->naggs; a++) {
            if (dst->agg_src[a] != a)
                continue;
            int rc = qagg_merge(dst->sc, &q->aggs[a], &dst->groups.states[(uint64_t)di * dst->groups.naggs + (uint64_t)a],
                                &src->groups.states[gi * src->groups.naggs + (uint64_t)a]);
            if (rc == STRATA_EINVAL)
                return strata_err_set(dst->err, STRATA_EINVAL, "query: sum of '%s' overflows 64 bits",
                                      dst->sc->cols[q->aggs[a].col].name);
            if (rc)
                return strata_err_set(dst->err, STRATA_ENOMEM, "query: out of memory");
        }
    }
    dst->rows_read += src->rows_read;
    dst->segments_read += src->segments_read;
    return 0;
}

int qscan_run(const qplan *p, double t0, exec *out, strata_err *err)
{
    int nthreads = p->nthreads, rc = 0;
    worker *ws = calloc((size_t)nthreads, sizeof *ws);
    pthread_t th[QUERY_MAX_THREADS];
    _Atomic uint32_t next = 0;
    _Atomic int stop = 0;
    _Atomic uint64_t mem_total = 0;
    int started = 0;
    if (!ws)
        rc = strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
    for (int i = 0; i < nthreads && !rc; i++) {
        worker *w = &ws[i];
        if (qctx_init(&w->x, p, &w->err, t0) != 0) {
            *err = w->err;
            rc = err->code ? err->code : STRATA_ENOMEM;
            qctx_free(&w->x);
            w->x.q = NULL;
            break;
        }
        w->x.mem_total = &mem_total;
        w->jobs = p->jobs;
        w->njobs = p->njobs;
        w->next = &next;
        w->stop = &stop;
        started = i + 1;
    }
    if (!rc) {
        for (int i = 1; i < started; i++)
            if (pthread_create(&th[i], NULL, worker_run, &ws[i]) != 0) {
                ws[i].rc = strata_err_set(&ws[i].err, STRATA_ENOMEM, "query: cannot start a thread");
                started = i; /* the others are still joined below */
                break;
            }
        worker_run(&ws[0]);
        for (int i = 1; i < started; i++)
            pthread_join(th[i], NULL);
        for (int i = 0; i < started && !rc; i++)
            if (ws[i].rc) {
                *err = ws[i].err;
                rc = ws[i].rc;
            }
        for (int i = 1; i < started && !rc; i++) {
            ws[0].x.err = err;
            rc = qscan_merge(&ws[0].x, &ws[i].x);
            if (!rc)
                rc = qctx_check_memory(&ws[0].x);
        }
    }
    if (!rc) {
        *out = ws[0].x; /* the caller's now: not freed below */
        out->err = err;
        out->mem_total = NULL;
        ws[0].x.q = NULL;
    }
    for (int i = 0; ws && i < nthreads; i++)
        if (ws[i].x.q)
            qctx_free(&ws[i].x);
    free(ws);
    return rc;
}
