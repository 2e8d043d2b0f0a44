/*
 * query_plan.h — internal to the query_*.c files (the public API is engine/query.h): what
 * a query will read, decided before the scan starts.
 *
 * qplan_check refuses a query that does not fit the schema. qplan_build then takes the
 * table snapshot and decides: the columns to decode, the predicates of the where tree,
 * which aggregates share a state, how rows find their group, the sources to read (a
 * source wholly outside [from, to) is not listed; a segment wholly inside it answers a
 * counts-only query from its row count) and the number of scan threads. What can only be
 * decided while a segment is read, per granule, is decided here too, by functions the
 * scan calls: qplan_granules (granule pruning by time and the top-level AND predicates)
 * and qplan_granule_time_const (a granule whose time column need not be decoded).
 * A plan is read-only while the scan runs, shared by all its threads.
 *
 * Ownership: the caller holds the qplan (on its stack, say); qplan_build allocates its
 * arrays and qplan_free frees them, also after qplan_build failed. The plan points into
 * the query, the schema and the snapshot it was built from (their owner keeps them alive
 * until qplan_free): the jobs' segments and memtables are the snapshot's.
 */
#ifndef STRATA_QUERY_PLAN_H
#define STRATA_QUERY_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/dvec.h"
#include "engine/query.h"

#define QUERY_MAX_DEPTH 60  /* nesting of the where tree */
#define QUERY_MAX_THREADS 8 /* scan threads of one query */

typedef enum qplan_read {
    QPLAN_SCAN = 0,    /* decode the source's blocks and aggregate them */
    QPLAN_COUNT_ROWS,  /* counts-only, segment wholly in range: add its row count */
} qplan_read;

/* One unit of scanning: granules [g0, g1) of a segment (a big segment is cut into
 * several jobs, so the threads share it: a merged day is one segment), or a memtable with
 * the rows of the snapshot. */
typedef struct qplan_job {
    const segment *seg;
    const memtable *mt;
    uint64_t rows; /* memtable: the snapshot's rows; QPLAN_COUNT_ROWS: the segment's */
    qplan_read read;
    uint32_t g0, g1; /* segment: the granules of this job */
    const dvec *dv;  /* dedup tables: the source's superseded rows (NULL: none) */
} qplan_job;

typedef struct qplan {
    const strata_query *q;
    const strata_schema *sc;
    bool need[STRATA_MAX_COLUMNS]; /* columns the scan decodes */
    const query_expr **preds;      /* the where tree's predicates, in tree order */
    uint32_t npreds;
    /* agg_src[a]: the aggregate whose state a reads (a itself, or an earlier one that
     * keeps the same state: qagg_shared_states) */
    int agg_src[QUERY_MAX_AGGS];
    /* Grouping by one string column alone: a row's group comes from its dictionary code
     * (per source, code -> group), with no key built. */
    bool by_code;
    /* The time column is read for more than the range and the buckets (grouped by,
     * aggregated or filtered on): every granule then decodes it. */
    bool ts_other;
    bool counts_only; /* only counts over all rows in range: no where, buckets or groups */
    qplan_job *jobs;  /* the sources to read, in snapshot order */
    uint32_t njobs;
    int nthreads;     /* 1 to QUERY_MAX_THREADS */
} qplan;

/* 0, or STRATA_EINVAL with the message in err when q does not fit sc (a column that is not
 * one, an aggregate of the wrong kind, a where tree too deep, a fill without interval,
 * from or to) and STRATA_EFULL when a fill's buckets alone pass max_groups. */
int qplan_check(const strata_query *q, const strata_schema *sc, strata_err *err);

/* Plans checked query q over snap (see the top of this file). 0, or STRATA_ENOMEM with the
 * message in err; p is freed with qplan_free either way. */
int qplan_build(qplan *p, const strata_query *q, const strata_schema *sc,
                const table_snapshot *snap, strata_err *err);
void qplan_free(qplan *p);

/* keep[g] = 1 for each granule of seg that may hold rows of the range and the top-level
 * AND predicates, 0 for the others (keep: segment_ngranules(seg) bytes). */
void qplan_granules(const qplan *p, const segment *seg, uint8_t *keep);

/* True when granule g of seg is wholly inside [from, to) and inside one time bucket, and
 * the time column is not needed otherwise: the scan then does not decode it. *bucket: the
 * start of the bucket of the granule's earliest time (0 without buckets), set either way. */
bool qplan_granule_time_const(const qplan *p, const segment *seg, uint32_t g, int64_t *bucket);

/* The buckets a fill answers for q: *first, the start of the bucket holding from_ms, and
 * *n of them, up to the one holding to_ms - 1 (0 when from_ms >= to_ms). STRATA_EINVAL,
 * with the message in err, without an interval or a finite from and to, or when the
 * first bucket would start before the earliest int64 time. */
int qplan_fill_buckets(const strata_query *q, int64_t *first /* OUT */, uint64_t *n /* OUT */,
                       strata_err *err);
/* STRATA_EFULL, with the message in err: a fill of nb buckets for each of ntuples groups
 * (0: not known yet, before the scan) is over the row limit: max_groups, or what memory
 * can address when none. */
int qplan_fill_too_many(const strata_query *q, uint64_t nb, uint64_t ntuples, strata_err *err);

/* The predicates (leaves) of the where tree e. */
uint32_t qplan_count_preds(const query_expr *e);

/* The result's columns: r->ncols, names and types (static strings). */
void qplan_columns(const strata_query *q, const strata_schema *sc, query_result *r);

/* a / b rounded towards negative infinity (b != 0): the bucket number of a time. */
static inline int64_t qplan_floor_div64(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

#endif
