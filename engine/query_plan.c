/*
 * query_plan.c — checks a query and decides what its scan reads (query_plan.h).
 *
 * Pruning happens at three levels, from the coarsest: the table snapshot holds only the
 * partitions that overlap [from, to) (table_snapshot_acquire); qplan_build lists only the
 * sources whose time range overlaps it, and marks a segment wholly inside it as answered
 * by its row count when the query only counts; the scan then asks qplan_granules which
 * granules of a segment to decode (min/max per granule and dictionary bitmaps, through
 * segment_prune_granules) and qplan_granule_time_const whether a granule's time column is
 * needed. A later choice between the raw rows and a rollup tier belongs in qplan_build.
 */
#include "engine/query_plan.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/memtable.h"
#include "engine/query_agg.h"
#include "engine/query_ctx.h"
#include "engine/units.h"

#define PARALLEL_MIN_ROWS 262144 /* below this a second thread costs more than it saves */
#define JOB_GRANULES 16           /* granules of a segment per scan job (131k rows) */

/* ---- checking the query ------------------------------------------------------------- */

/* Depth of the tree, or -1 when a predicate names a column of the wrong kind. */
static int expr_check(const query_expr *e, const strata_schema *sc, int depth, strata_err *err)
{
    if (depth > QUERY_MAX_DEPTH)
        return strata_err_set(err, STRATA_EINVAL, "where: nested more than %d deep", QUERY_MAX_DEPTH);
    if (e->kind == QX_PRED) {
        if (e->pred.col < 0 || e->pred.col >= sc->ncols)
            return strata_err_set(err, STRATA_EINVAL, "where: not a column");
        if (e->pred.op > SEGMENT_PRED_NOT_IN)
            return strata_err_set(err, STRATA_EINVAL, "where: unknown operator");
        return 0;
    }
    if (e->kind != QX_AND && e->kind != QX_OR)
        return strata_err_set(err, STRATA_EINVAL, "where: unknown node");
    for (uint32_t i = 0; i < e->nkids; i++) {
        int rc = expr_check(&e->kids[i], sc, depth + 1, err);
        if (rc)
            return rc;
    }
    return 0;
}

int qplan_fill_buckets(const strata_query *q, int64_t *first, uint64_t *n, strata_err *err)
{
    if (q->interval_ms <= 0)
        return strata_err_set(err, STRATA_EINVAL,
                              "fill: needs an interval (the time buckets to fill)");
    if (q->from_ms == INT64_MIN)
        return strata_err_set(err, STRATA_EINVAL,
                              "fill: needs a from (filling starts at the bucket holding it), "
                              "not the beginning of time");
    if (q->to_ms == INT64_MAX)
        return strata_err_set(err, STRATA_EINVAL,
                              "fill: needs a to (filling ends at the bucket holding the instant "
                              "before it), not the end of time");
    int64_t lo = qplan_floor_div64(q->from_ms, q->interval_ms);
    if (__builtin_mul_overflow(lo, q->interval_ms, first))
        return strata_err_set(err, STRATA_EINVAL,
                              "fill: the bucket holding from (%" PRId64 " ms) starts before the "
                              "earliest time",
                              q->from_ms);
    if (q->from_ms >= q->to_ms) {
        *n = 0;
        return 0;
    }
    int64_t hi = qplan_floor_div64(q->to_ms - 1, q->interval_ms);
    *n = (uint64_t)hi - (uint64_t)lo + 1; /* at most 2^64 - 2: from > INT64_MIN */
    return 0;
}

int qplan_fill_too_many(const strata_query *q, uint64_t nb, uint64_t ntuples, strata_err *err)
{
    char iv[24], rows[48], limit[96];
    units_format_duration_ms(q->interval_ms, iv, sizeof iv);
    uint64_t n;
    if (__builtin_mul_overflow(nb, ntuples ? ntuples : 1, &n))
        snprintf(rows, sizeof rows, "more than 18446744073709551615");
    else
        snprintf(rows, sizeof rows, "%s%" PRIu64, ntuples == 0 && q->ngroup ? "at least " : "", n);
    if (q->max_groups)
        snprintf(limit, sizeof limit, "more than the %" PRIu64 " groups a query may make",
                 q->max_groups);
    else
        snprintf(limit, sizeof limit, "more than can be held");
    if (ntuples == 0 || q->ngroup == 0)
        return strata_err_set(err, STRATA_EFULL,
                              "query: fill would answer %s rows (%" PRIu64 " buckets of %s between "
                              "from and to%s), %s; narrow from and to, widen the interval or "
                              "raise the limit",
                              rows, nb, iv, q->ngroup ? ", for each group" : "", limit);
    return strata_err_set(err, STRATA_EFULL,
                          "query: fill would answer %s rows (%" PRIu64 " buckets of %s for each "
                          "of %" PRIu64 " groups), %s; narrow from and to, widen the interval, "
                          "group by fewer columns or raise the limit",
                          rows, nb, iv, ntuples, limit);
}

int qplan_check(const strata_query *q, const strata_schema *sc, strata_err *err)
{
    if (q->where) {
        int rc = expr_check(q->where, sc, 1, err);
        if (rc)
            return rc;
    }
    if (q->interval_ms < 0)
        return strata_err_set(err, STRATA_EINVAL, "interval: must be positive");
    if (q->naggs < 1 || q->naggs > QUERY_MAX_AGGS)
        return strata_err_set(err, STRATA_EINVAL, "select: between 1 and %d aggregates", QUERY_MAX_AGGS);
    if (q->ngroup < 0 || q->ngroup > QUERY_MAX_GROUP)
        return strata_err_set(err, STRATA_EINVAL, "group_by: at most %d columns", QUERY_MAX_GROUP);
    for (int g = 0; g < q->ngroup; g++)
        if (q->group_cols[g] < 0 || q->group_cols[g] >= sc->ncols)
            return strata_err_set(err, STRATA_EINVAL, "group_by[%d]: not a column", g);
    for (int a = 0; a < q->naggs; a++) {
        const query_agg *ag = &q->aggs[a];
        if (ag->fn == STRATA_AGG_COUNT)
            continue;
        if (ag->col < 0 || ag->col >= sc->ncols)
            return strata_err_set(err, STRATA_EINVAL, "select[%d].column: not a column", a);
        strata_type t = sc->cols[ag->col].type;
        if (t == STRATA_STRING && ag->fn != STRATA_AGG_UNIQ)
            return strata_err_set(err, STRATA_EINVAL,
                                  "select[%d]: %s of '%s' needs a numeric column, it is a string", a,
                                  strata_agg_name(ag->fn), sc->cols[ag->col].name);
        if (ag->fn == STRATA_AGG_QUANTILE && !(ag->q >= 0 && ag->q <= 1))
            return strata_err_set(err, STRATA_EINVAL, "select[%d].q: must be between 0 and 1", a);
    }
    int ncols = (q->interval_ms > 0) + q->ngroup + q->naggs;
    for (int o = 0; o < q->norder; o++)
        if (q->order[o].output_col < 0 || q->order[o].output_col >= ncols)
            return strata_err_set(err, STRATA_EINVAL, "order_by[%d]: not an output column", o);
    if (q->fill != QUERY_FILL_NONE) {
        if (q->fill != QUERY_FILL_ZERO && q->fill != QUERY_FILL_NULL)
            return strata_err_set(err, STRATA_EINVAL, "fill: unknown kind %d", (int)q->fill);
        int64_t first;
        uint64_t nb;
        int rc = qplan_fill_buckets(q, &first, &nb, err);
        if (rc)
            return rc;
        if (q->max_groups && nb > q->max_groups) /* before reading anything */
            return qplan_fill_too_many(q, nb, 0, err);
    }
    return 0;
}

/* ---- output columns ----------------------------------------------------------------- */

void qplan_columns(const strata_query *q, const strata_schema *sc, query_result *r)
{
    r->ncols = (q->interval_ms > 0) + q->ngroup + q->naggs;
    int c = 0;
    if (q->interval_ms > 0) {
        snprintf(r->names[c], QUERY_NAME_MAX, "time");
        r->types[c++] = "timestamp";
    }
    for (int g = 0; g < q->ngroup; g++) {
        snprintf(r->names[c], QUERY_NAME_MAX, "%s", sc->cols[q->group_cols[g]].name);
        r->types[c++] = strata_type_name(sc->cols[q->group_cols[g]].type);
    }
    for (int a = 0; a < q->naggs; a++) {
        snprintf(r->names[c], QUERY_NAME_MAX, "%s", q->aggs[a].name);
        r->types[c++] = qagg_type(sc, &q->aggs[a]);
    }
}

/* ---- what the scan reads -------------------------------------------------------------- */

static void collect_preds(qplan *p, const query_expr *e)
{
    if (e->kind == QX_PRED) {
        p->preds[p->npreds++] = e;
        p->need[e->pred.col] = true;
        return;
    }
    for (uint32_t i = 0; i < e->nkids; i++)
        collect_preds(p, &e->kids[i]);
}

uint32_t qplan_count_preds(const query_expr *e)
{
    if (e->kind == QX_PRED)
        return 1;
    uint32_t n = 0;
    for (uint32_t i = 0; i < e->nkids; i++)
        n += qplan_count_preds(&e->kids[i]);
    return n;
}

/* True when the answer is counts only, over all rows in range (no filter, buckets or
 * groups): a source wholly inside the range then answers from its row count. */
static bool counts_only(const strata_query *q)
{
    if (q->where || q->interval_ms > 0 || q->ngroup > 0)
        return false;
    for (int a = 0; a < q->naggs; a++)
        if (q->aggs[a].fn != STRATA_AGG_COUNT)
            return false;
    return true;
}

/* Whether a segment is read, and how; false when it has no row in range. */
static bool plan_segment(const qplan *p, const segment *seg, qplan_job *job)
{
    const strata_query *q = p->q;
    if (segment_nrows(seg) == 0 || segment_max_time(seg) < q->from_ms || segment_min_time(seg) >= q->to_ms)
        return false;
    *job = (qplan_job){seg, NULL, 0, QPLAN_SCAN, 0, segment_ngranules(seg), NULL};
    if (p->counts_only && segment_min_time(seg) >= q->from_ms && segment_max_time(seg) < q->to_ms)
        *job = (qplan_job){seg, NULL, segment_nrows(seg), QPLAN_COUNT_ROWS, 0, 0, NULL}; /* from the footer */
    return true;
}

/* Whether the snapshot's rows of a memtable are read; false when none can be in range. */
static bool plan_memtable(const qplan *p, const memtable *mt, uint64_t rows, qplan_job *job)
{
    const strata_query *q = p->q;
    if (rows == 0 || memtable_max_time(mt) < q->from_ms || memtable_min_time(mt) >= q->to_ms)
        return false;
    *job = (qplan_job){NULL, mt, rows, QPLAN_SCAN, 0, 0, NULL};
    return true;
}

/* Scan threads for nsources sources of total_rows rows in all (the snapshot's, before the
 * sources out of range are left out). */
static int plan_threads(const qplan *p, uint32_t nsources, uint64_t total_rows)
{
    int nthreads = p->q->threads;
    if (nthreads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        /* counts_only queries mostly read footers: a thread would cost more than it saves */
        nthreads = total_rows >= PARALLEL_MIN_ROWS && cores > 1 && !p->counts_only ? (int)cores : 1;
    }
    if (nthreads > QUERY_MAX_THREADS)
        nthreads = QUERY_MAX_THREADS;
    if ((uint32_t)nthreads > nsources)
        nthreads = nsources ? (int)nsources : 1;
    return nthreads;
}

int qplan_build(qplan *p, const strata_query *q, const strata_schema *sc,
                const table_snapshot *snap, strata_err *err)
{
    memset(p, 0, sizeof *p);
    p->q = q;
    p->sc = sc;
    int tc = sc->time_col;
    p->need[tc] = true;
    for (int g = 0; g < q->ngroup; g++)
        p->need[q->group_cols[g]] = true;
    for (int a = 0; a < q->naggs; a++)
        if (q->aggs[a].col >= 0)
            p->need[q->aggs[a].col] = true;
    qagg_shared_states(q, sc, p->agg_src);
    if (q->where) {
        p->preds = calloc(qplan_count_preds(q->where), sizeof *p->preds);
        if (!p->preds)
            return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
        collect_preds(p, q->where);
    }
    p->by_code = q->ngroup == 1 && q->interval_ms <= 0 && sc->cols[q->group_cols[0]].type == STRATA_STRING;
    for (int g = 0; g < q->ngroup; g++)
        p->ts_other |= q->group_cols[g] == tc;
    for (int a = 0; a < q->naggs; a++)
        p->ts_other |= q->aggs[a].col == tc;
    for (uint32_t i = 0; i < p->npreds; i++)
        p->ts_other |= p->preds[i]->pred.col == tc;
    p->counts_only = counts_only(q);
    if (sc->ndedup > 0 && sc->deleted_col >= 0) {
        /* a winning row may be a deletion: read the column, count no footer */
        p->need[sc->deleted_col] = true;
        p->counts_only = false;
    }

    uint64_t njobs_max = 0;
    uint64_t total_rows = 0;
    for (uint32_t i = 0; i < snap->nparts; i++) {
        njobs_max += snap->parts[i].nmts;
        for (uint32_t s = 0; s < snap->parts[i].nsegs; s++)
            njobs_max += segment_ngranules(snap->parts[i].segs[s]) / JOB_GRANULES + 1;
    }
    p->jobs = calloc(njobs_max + 1, sizeof *p->jobs);
    if (!p->jobs)
        return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
    for (uint32_t i = 0; i < snap->nparts; i++) {
        const snapshot_part *sp = &snap->parts[i];
        for (uint32_t s = 0; s < sp->nsegs; s++) {
            total_rows += segment_nrows(sp->segs[s]);
            qplan_job job;
            if (!plan_segment(p, sp->segs[s], &job))
                continue;
            job.dv = sp->seg_dv ? sp->seg_dv[s] : NULL;
            if (job.read == QPLAN_COUNT_ROWS)
                job.rows -= dvec_count(job.dv);
            if (job.read != QPLAN_SCAN) {
                p->jobs[p->njobs++] = job;
                continue;
            }
            for (uint32_t g = 0; g < job.g1; g += JOB_GRANULES) {
                p->jobs[p->njobs] = job;
                p->jobs[p->njobs].g0 = g;
                p->jobs[p->njobs].g1 = job.g1 - g > JOB_GRANULES ? g + JOB_GRANULES : job.g1;
                p->njobs++;
            }
            if (job.g1 == 0)
                p->jobs[p->njobs++] = job;
        }
        for (uint32_t m = 0; m < sp->nmts; m++) {
            total_rows += sp->mt_rows[m];
            if (plan_memtable(p, sp->mts[m], sp->mt_rows[m], &p->jobs[p->njobs])) {
                p->jobs[p->njobs].dv = sp->mt_dv ? sp->mt_dv[m] : NULL;
                p->njobs++;
            }
        }
    }
    p->nthreads = plan_threads(p, p->njobs, total_rows);
    return 0;
}

void qplan_free(qplan *p)
{
    free(p->preds);
    free(p->jobs);
    p->preds = NULL;
    p->jobs = NULL;
}

/* ---- decisions the scan asks for, per segment and per granule ---------------------------- */

/* Top-level AND predicates usable for granule pruning. */
static int prune_preds(const strata_query *q, int time_col, segment_pred *out, segment_value *tv)
{
    int n = 0;
    tv[0].i = q->from_ms;
    tv[1].i = q->to_ms;
    out[n++] = (segment_pred){time_col, SEGMENT_PRED_GE, 1, &tv[0]};
    out[n++] = (segment_pred){time_col, SEGMENT_PRED_LT, 1, &tv[1]};
    const query_expr *w = q->where;
    if (w && w->kind == QX_PRED)
        out[n++] = w->pred;
    else if (w && w->kind == QX_AND)
        for (uint32_t i = 0; i < w->nkids && n < 64; i++)
            if (w->kids[i].kind == QX_PRED)
                out[n++] = w->kids[i].pred;
    return n;
}

void qplan_granules(const qplan *p, const segment *seg, uint8_t *keep)
{
    segment_pred preds[66];
    segment_value tv[2];
    int np = prune_preds(p->q, p->sc->time_col, preds, tv);
    segment_prune_granules(seg, preds, np, keep);
}

bool qplan_granule_time_const(const qplan *p, const segment *seg, uint32_t g, int64_t *bucket)
{
    const strata_query *q = p->q;
    const segment_granule_meta *tg = segment_granule(seg, p->sc->time_col, g);
    int64_t tmin = (int64_t)tg->min, tmax = (int64_t)tg->max;
    int64_t iv = q->interval_ms;
    *bucket = iv > 0 ? qplan_floor_div64(tmin, iv) * iv : 0;
    return !p->ts_other && tmin >= q->from_ms && tmax < q->to_ms &&
           (iv <= 0 || qplan_floor_div64(tmin, iv) == qplan_floor_div64(tmax, iv));
}
