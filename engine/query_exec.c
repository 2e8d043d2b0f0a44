/*
 * query_exec.c — runs a strata_query over a table snapshot (query_run), and the query's
 * own lifecycle (query_init, query_free). Semantics are in query.h.
 *
 * A query goes through four files, each with one job, over one execution context
 * (query_ctx.h, query_ctx.c):
 *   1. query_plan.c checks it against the schema, takes the snapshot's sources and
 *      decides what will be read: the sources in range, the segments a count answers
 *      from their footers, the columns, the threads (and, per granule while scanning,
 *      which granules and whether the time column);
 *   2. query_scan.c reads those sources block by block on every core, into per-thread
 *      groups (query_groups.c) and aggregate states (query_agg.c), and merges them;
 *   3. query_result.c turns the groups into rows: fill, order, limit.
 * query_run below is those steps in order, with the snapshot held for the scan.
 */
#include "engine/query.h"

#include <stdlib.h>
#include <string.h>

#include "engine/clock.h"
#include "engine/query_ctx.h"
#include "engine/query_plan.h"
#include "engine/query_rollup.h"
#include "engine/rollup.h"

void query_init(strata_query *q)
{
    memset(q, 0, sizeof *q);
    q->from_ms = INT64_MIN;
    q->to_ms = INT64_MAX;
    q->limit = -1;
}

void query_expr_free(query_expr *e)
{
    if (!e)
        return;
    for (uint32_t i = 0; i < e->nkids; i++)
        query_expr_free(&e->kids[i]);
    free(e->kids);
    if (e->strs)
        for (uint32_t i = 0; i < e->pred.nvals; i++)
            free(e->strs[i]);
    free(e->strs);
    free(e->vals);
    memset(e, 0, sizeof *e);
}

void query_free(strata_query *q)
{
    if (q->where) {
        query_expr_free(q->where);
        free(q->where);
        q->where = NULL;
    }
}

/* Plans q over snap and scans it: the groups and states in *out (qctx_free; its plan
 * pointer cleared, since the plan is freed here). 0, or an error with its message. */
static int qexec_states(const strata_query *q, const strata_schema *sc, const table_snapshot *snap, double t0,
                        exec *out, strata_err *err)
{
    qplan plan;
    int rc = qplan_build(&plan, q, sc, snap, err);
    if (!rc)
        rc = qscan_run(&plan, t0, out, err);
    qplan_free(&plan);
    if (!rc)
        out->plan = NULL;
    return rc;
}

/* The raw ranges of sp scanned into *x (one scan per range, merged), x->q set to q.
 * qs: room for sp->nraw query copies, which x's states refer to until it is freed. */
static int scan_raw_ranges(const strata_query *q, const strata_schema *sc, const table_snapshot *snap,
                           const qrollup_split *sp, double t0, strata_query *qs, exec *x, strata_err *err)
{
    uint32_t n = sp->nraw ? sp->nraw : 1; /* none: one empty range, for the exec the tier fills */
    int rc = 0;
    for (uint32_t i = 0; i < n && !rc; i++) {
        qs[i] = *q;
        qs[i].from_ms = sp->nraw ? sp->raw[i][0] : INT64_MIN; /* [MIN, MIN): no source at all */
        qs[i].to_ms = sp->nraw ? sp->raw[i][1] : INT64_MIN;
        qs[i].fill = QUERY_FILL_NONE;
        if (i == 0) {
            if ((rc = qexec_states(&qs[i], sc, snap, t0, x, err)) != 0)
                return rc; /* nothing to free */
            continue;
        }
        exec part;
        rc = qexec_states(&qs[i], sc, snap, t0, &part, err);
        if (!rc) {
            x->err = err;
            rc = qscan_merge(x, &part);
            qctx_free(&part);
        }
        if (!rc)
            rc = qctx_check_memory(x);
    }
    x->q = q; /* the same aggregates, buckets and groups; the result reads q's range and fill */
    if (rc)
        qctx_free(x);
    return rc;
}

int qexec_run_states(const strata_query *q, const strata_schema *sc, const table_snapshot *snap, unsigned covering,
                     bool force, double t0, strata_query *qs, exec *x, qexec_served *used, strata_err *err)
{
    memset(used, 0, sizeof *used);
    used->tier = qrollup_pick(q, sc, snap, covering, force, &used->sp, &used->why);
    int rc = scan_raw_ranges(q, sc, snap, &used->sp, t0, qs, x, err);
    if (!rc && used->sp.from < used->sp.to) {
        rc = qrollup_merge(x, snap->rollup, used->tier, &used->sp, &used->buckets, &used->rows);
        if (rc)
            qctx_free(x);
    }
    return rc;
}

/* Says in r what served the answer. */
static void note_served(query_result *r, const strata_schema *sc, const qexec_served *u)
{
    r->raw_ranges = u->sp.nraw;
    r->rollup_skipped = u->why;
    if (u->sp.from >= u->sp.to)
        return;
    r->rollup_interval_ms = sc->rollups[u->tier].interval_ms;
    rollup_dims_text(sc, u->tier, r->rollup_dims, sizeof r->rollup_dims);
    r->rollup_from = u->sp.from;
    r->rollup_to = u->sp.to;
    r->rollup_buckets = u->buckets;
    r->rollup_rows = u->rows;
    r->rollup_dirty = u->sp.dirty;
}

int query_run(strata_table *t, const strata_query *q, query_result **out, strata_err *err)
{
    *out = NULL;
    const strata_schema *sc = table_schema(t);
    int rc = qplan_check(q, sc, err);
    if (rc)
        return rc;
    unsigned covering = 0;
    if (q->source != QUERY_SOURCE_RAW && sc->nrollups > 0) {
        char why[512];
        covering = qrollup_covering(q, sc, why, sizeof why);
        if (!covering && q->source == QUERY_SOURCE_ROLLUP)
            return strata_err_set(err, STRATA_EINVAL, "source: no rollup tier can answer this query (%s)", why);
    } else if (q->source == QUERY_SOURCE_ROLLUP) {
        return strata_err_set(err, STRATA_EINVAL, "source: table '%s' has no rollups (\"rollups\" in its schema)",
                              sc->name);
    }
    double t0 = clock_mono_ms_frac();
    table_snapshot *snap = table_snapshot_acquire(t, q->from_ms, q->to_ms);
    if (!snap)
        return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
    strata_query qs[QROLLUP_MAX_RANGES];
    exec x;
    qexec_served used;
    rc = qexec_run_states(q, sc, snap, covering, q->source == QUERY_SOURCE_ROLLUP, t0, qs, &x, &used, err);
    int64_t raw_floor = snap->raw_floor;
    table_snapshot_release(snap);
    if (rc == STRATA_ECORRUPT)
        table_report_damage(t, err->msg); /* a committed segment is damaged: say so beyond this answer */
    if (!rc) {
        rc = qresult_build(&x, out, err);
        if (!rc) {
            query_result *r = *out;
            r->rows_read = x.rows_read;
            r->segments_read = x.segments_read;
            note_served(r, sc, &used);
            r->raw_expired = raw_floor != INT64_MIN && q->from_ms < raw_floor;
            r->raw_expired_before = raw_floor;
            if (r->raw_expired) { /* raw ranges wholly before the floor had no rows to read */
                uint32_t live = 0;
                for (uint32_t i = 0; i < used.sp.nraw; i++)
                    live += used.sp.raw[i][1] > raw_floor;
                r->raw_ranges = live;
            }
            r->elapsed_ms = clock_mono_ms_frac() - t0;
        }
        qctx_free(&x);
    }
    return rc;
}
