/*
 * query_ctx.h — internal to the query_*.c files, shared by them only (the public API is
 * engine/query.h): the execution context of one scan thread, `exec`, which every part of
 * a running query reads and writes, and the steps of a query that run over it.
 *
 * A query runs as: qplan_check, qplan_build (query_plan.h), qscan_run (query_scan.c: one
 * exec per thread, merged into one), qresult_build (query_result.c), in query_run
 * (query_exec.c). An exec holds the thread's groups and aggregate states
 * (query_groups.h, query_agg.h), its copies of the plan's decisions that the per-row
 * loops read, the per-source tables, the decoded block and the scratch of the steps.
 *
 * Ownership: the thread that scans with an exec owns it; qctx_init allocates its buffers
 * and qctx_free frees everything it holds (buffers, groups, sketches, the string pool),
 * also after qctx_init failed. An exec points into the query, the schema and the plan,
 * which outlive it. Only mem_total is shared between threads (atomic).
 */
#ifndef STRATA_QUERY_CTX_H
#define STRATA_QUERY_CTX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/block.h"
#include "engine/dvec.h"
#include "engine/memtable.h"
#include "engine/query.h"
#include "engine/query_groups.h"
#include "engine/query_plan.h"

/* Rows of a block: at most this many go through one pass of the scan. */
#define BLOCK_ROWS STRATA_BLOCK_ROWS

typedef struct pred_ref {
    const query_expr *e;
    lazy_table match; /* per source: code -> (matches ? 2 : 1) */
} pred_ref;

typedef struct exec {
    const strata_query *q;
    const strata_schema *sc;
    const qplan *plan;
    strata_err *err;
    bool need[STRATA_MAX_COLUMNS]; /* the plan's */
    str_pool pool;
    group_table groups;
    pred_ref *preds; /* the plan's predicates, each with its per-source match table */
    uint32_t npreds;
    lazy_table group_ids[QUERY_MAX_GROUP]; /* per source: code -> pool id + 1 */
    /* the current source */
    const segment *seg;
    const memtable *mt;
    /* decoded block */
    uint32_t n;
    const int64_t *iv[STRATA_MAX_COLUMNS];
    const double *fv[STRATA_MAX_COLUMNS];
    const uint32_t *cv[STRATA_MAX_COLUMNS];
    /* the decoded granule of each column in need: buf_rows values of 8 bytes, where
     * buf_rows is BLOCK_ROWS or the largest granule seen (grow_bufs) */
    void *buf[STRATA_MAX_COLUMNS];
    uint32_t buf_rows;
    segment_scratch scratch;
    /* BLOCK_ROWS long: x->n never passes BLOCK_ROWS */
    uint8_t *mask, *tmp_masks;
    uint32_t *sel, *gid; /* a block's selected rows and their groups */
    int agg_src[QUERY_MAX_AGGS]; /* the plan's: the aggregate whose state a reads */
    /* A granule wholly inside [from, to) and inside one time bucket needs no time column
     * unless the query reads it otherwise (qplan_granule_time_const): the block is then
     * marked ts_const with its bucket in ts_bucket, and the time column is not decoded. */
    bool ts_const;
    const dvec *dv;   /* the source's superseded rows (dedup), NULL: none */
    uint64_t row0;    /* the source row of the block's first row */
    int64_t ts_bucket;
    /* The plan's by_code: per source, dictionary code -> group + 1, so a row's group is
     * one array lookup. */
    bool by_code;
    lazy_table code_gid;
    uint64_t rows_read, segments_read;
    double deadline;
    /* memory of group state: sketches' bytes kept as they grow; the whole reported to a
     * counter all scan threads share, checked against q->max_memory after each block */
    uint64_t sketch_bytes, mem_reported;
    _Atomic uint64_t *mem_total;
    int rc;
} exec;

/* The string of dictionary code `code` of column col in the current source. */
static inline strata_str qctx_src_str(const exec *x, int col, uint32_t code)
{
    return x->seg ? segment_dict_value(x->seg, col, code) : memtable_dict_value(x->mt, col, code);
}

/* Sets x up for plan p, with the deadline t0 + the query's timeout (t0 on the clock of
 * clock_mono_ms_frac). 0, or STRATA_ENOMEM with the message in err; qctx_free x either
 * way. */
int qctx_init(exec *x, const qplan *p, strata_err *err, double t0);
void qctx_free(exec *x);

/* Starts reading a new source (a segment or a memtable): forgets the per-source tables. */
void qctx_source_begin(exec *x, const segment *seg, const memtable *mt);

/* out[i] = 1 where e holds for row i of the block. depth selects a scratch mask for
 * children. 0, or STRATA_ENOMEM with the message in x->err. */
int qctx_eval_expr(exec *x, const query_expr *e, uint8_t *out, int depth);

/* Reports this thread's growth to the query-wide counter; STRATA_EFULL past max_memory. */
int qctx_check_memory(exec *x);

/* STRATA_EFULL with the message in x->err: more groups than q->max_groups. */
int qctx_too_many_groups(const exec *x);

/* Runs plan p's jobs on p->nthreads threads, then merges their states into *out. 0, or an
 * error with its message in err; on error nothing is left to free. On success the caller
 * owns *out and frees it with qctx_free. t0: the query's start (clock_mono_ms_frac). */
int qscan_run(const qplan *p, double t0, exec *out /* OUT */, strata_err *err);

/* Merges src's groups and counters into dst's (the same query shape: aggregates, buckets,
 * group_by); src keeps its states and is freed by its owner. 0, or an error in dst->err. */
int qscan_merge(exec *dst, exec *src);

/* The answer from x's groups: columns, rows (fill, order, limit). 0 and *out, which the
 * caller frees with query_result_free; or STRATA_ENOMEM / STRATA_EFULL (a fill over
 * max_groups) with the message in err. x stays the caller's to free. */
int qresult_build(exec *x, query_result **out /* OUT */, strata_err *err);

#endif
