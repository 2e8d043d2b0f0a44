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

int query_run(strata_table *t, const strata_query *q, query_result **out, strata_err *err)
{
    *out = NULL;
    const strata_schema *sc = table_schema(t);
    int rc = qplan_check(q, sc, err);
    if (rc)
        return rc;
    double t0 = clock_mono_ms_frac();
    table_snapshot *snap = table_snapshot_acquire(t, q->from_ms, q->to_ms);
    if (!snap)
        return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
    qplan plan;
    exec x;
    rc = qplan_build(&plan, q, sc, snap, err);
    if (!rc)
        rc = qscan_run(&plan, t0, &x, err);
    table_snapshot_release(snap);
    if (rc == STRATA_ECORRUPT)
        table_report_damage(t, err->msg); /* a committed segment is damaged: say so beyond this answer */
    if (!rc) {
        rc = qresult_build(&x, out, err);
        if (!rc) {
            (*out)->rows_read = x.rows_read;
            (*out)->segments_read = x.segments_read;
            (*out)->elapsed_ms = clock_mono_ms_frac() - t0;
        }
        qctx_free(&x);
    }
    qplan_free(&plan);
    return rc;
}
