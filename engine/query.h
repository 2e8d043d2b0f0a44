/*
 * query.h — aggregate queries over one table: a time range, optional time buckets,
 * a filter (AND/OR tree of column predicates), group-by columns, aggregates, order and
 * limit. This is the engine side of POST /query; the JSON form is parsed elsewhere.
 *
 * Semantics (the contract the differential test holds the engine to):
 *   - rows with from <= time < to, and `where` true, are aggregated;
 *   - with interval_ms > 0 the first output column is "time": the row's time rounded down
 *     to a multiple of interval_ms (UTC-aligned buckets since the epoch);
 *   - then one column per group_by column, then one per aggregate, in select order;
 *   - groups with no rows are not returned (fill below is the exception); with neither
 *     interval nor group_by the answer is exactly one row, so a count over nothing is 0
 *     (sum/avg/min/max/quantile are null there, uniq is 0);
 *   - fill (QUERY_FILL_ZERO or QUERY_FILL_NULL; needs interval_ms > 0, from_ms > INT64_MIN
 *     and to_ms < INT64_MAX): the answer has a row for every bucket from the one holding
 *     from_ms to the one holding to_ms - 1, for every group tuple (the group_by values of
 *     a group, without its bucket) that some group of the answer has; without group_by
 *     that is the one empty tuple, so every bucket is returned even when no row matched.
 *     With group_by and no row matched, nothing is returned: no tuple is known. A row
 *     added this way has no rows behind it: with QUERY_FILL_ZERO count, sum and uniq are
 *     0 (sum in its usual type) and min, max, avg and quantile are null; with
 *     QUERY_FILL_NULL every aggregate is null, count too. Rows that had rows are as
 *     without fill. The first bucket may start before from_ms (buckets are aligned to the
 *     epoch, not to from_ms), exactly like the bucket of the earliest row without fill.
 *     buckets x tuples is bounded by max_groups (STRATA_EFULL, checked before the scan
 *     for the buckets alone); order and limit apply to the filled answer;
 *   - count: rows (uint64). sum: int64 for integer columns (exact; overflow is an error),
 *     float64 for float columns. min/max: the column's type. avg: float64 = sum / count.
 *     uniq: HyperLogLog estimate (uint64). quantile: DDSketch estimate (float64), within
 *     0.5% of the element of rank floor(q * (n - 1));
 *   - NaN float values are skipped by sum/avg/min/max/quantile (JSON has no NaN);
 *   - order: by the listed output columns (ties keep the default order), default: every
 *     output column before the aggregates, ascending; then limit (-1: none).
 * Reads see one snapshot: segments and memtable rows as of the start of the query.
 * Rollups: with source auto (or rollup), the sealed clean buckets of the coarsest tier
 * that covers the query (its dimensions hold group_by and where, its states the
 * aggregates, its interval divides the query's) are read from the tier and the rest from
 * raw rows: the same answer either way (float sums may differ in the last bits, within
 * 1e-9 relative; uniq and quantile merge the very sketches a scan makes).
 *
 * Ownership: the caller owns the strata_query (and its expression tree) and frees it
 * with query_free; query_run returns a result the caller frees with query_result_free.
 */
#ifndef STRATA_QUERY_H
#define STRATA_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/error.h"
#include "engine/schema.h"
#include "engine/segment.h"
#include "engine/table.h"

#define QUERY_MAX_AGGS 32
#define QUERY_MAX_GROUP 16
#define QUERY_MAX_ORDER 16
#define QUERY_NAME_MAX 64

typedef enum query_expr_kind { QX_PRED = 0, QX_AND, QX_OR } query_expr_kind;

typedef struct query_expr {
    query_expr_kind kind;
    segment_pred pred;      /* QX_PRED; pred.vals points at vals */
    segment_value *vals;    /* owned; strings in vals[i].s point into owned copies */
    char **strs;        /* owned string copies */
    uint32_t nkids;
    struct query_expr *kids; /* QX_AND / QX_OR; owned array */
} query_expr;

typedef struct query_agg {
    strata_agg fn;
    int col;      /* -1 for count */
    double q;     /* quantile */
    char name[QUERY_NAME_MAX];
} query_agg;

/* What an answer with time buckets holds for a bucket where a group has no rows. */
typedef enum query_fill {
    QUERY_FILL_NONE = 0, /* nothing: the row is left out */
    QUERY_FILL_ZERO,     /* a row: count, sum, uniq 0; min, max, avg, quantile null */
    QUERY_FILL_NULL,     /* a row: every aggregate null */
} query_fill;

/* What may answer a query (rollup tiers: engine/rollup.h). */
typedef enum query_source {
    QUERY_SOURCE_AUTO = 0, /* the coarsest tier that covers the query, for its sealed clean
                            * buckets; raw rows for the rest */
    QUERY_SOURCE_RAW,      /* raw rows only */
    QUERY_SOURCE_ROLLUP,   /* as auto, but an error when no tier covers the query */
} query_source;

typedef struct query_order {
    int output_col; /* index into the result columns */
    bool desc;
} query_order;

typedef struct strata_query {
    int64_t from_ms, to_ms;
    int64_t interval_ms; /* 0: no time buckets */
    query_fill fill;     /* buckets without rows: left out (QUERY_FILL_NONE) or returned */
    query_source source; /* default QUERY_SOURCE_AUTO */
    int ngroup;
    int group_cols[QUERY_MAX_GROUP];
    int naggs;
    query_agg aggs[QUERY_MAX_AGGS];
    query_expr *where;   /* NULL: all rows */
    int norder;
    query_order order[QUERY_MAX_ORDER];
    int64_t limit;       /* -1: none */
    int64_t timeout_ms;  /* 0: none */
    uint64_t max_groups; /* 0: none; more groups is an error */
    uint64_t max_memory; /* bytes of group state (keys, aggregates, sketches, group strings)
                          * over all scan threads; 0: none; more is an error */
    int threads;         /* scan threads; 0: the cores, when the query reads enough rows */
} strata_query;

void query_init(strata_query *q);
/* Frees the expression tree (not q itself). */
void query_free(strata_query *q);
void query_expr_free(query_expr *e); /* frees what e owns, not e */

typedef enum query_cell_kind { QC_NULL = 0, QC_INT, QC_UINT, QC_FLOAT, QC_STR, QC_BOOL } query_cell_kind;

typedef struct query_cell {
    query_cell_kind kind;
    union {
        int64_t i;
        uint64_t u;
        double f;
        bool b;
        struct {
            char *ptr; /* owned by the result */
            uint32_t len;
        } s;
    } v;
} query_cell;

typedef struct query_result {
    int ncols;
    char names[QUERY_MAX_AGGS + QUERY_MAX_GROUP + 1][QUERY_NAME_MAX];
    const char *types[QUERY_MAX_AGGS + QUERY_MAX_GROUP + 1]; /* static type names */
    uint64_t nrows;
    query_cell *cells; /* nrows * ncols, row-major */
    uint64_t rows_read;     /* rows in the blocks scanned */
    uint64_t segments_read; /* segments with at least one block scanned */
    double elapsed_ms;
    /* What answered: rollup_interval_ms 0 when raw rows alone did; else the tier's
     * buckets in [rollup_from, rollup_to) but the dirty ones (rollup_dirty, read raw)
     * came from the tier (rollup_buckets with rows, rollup_rows of them), and raw_ranges
     * time ranges (the edges, unsealed and dirty buckets) from raw rows. */
    int64_t rollup_interval_ms;
    char rollup_dims[256]; /* its dimensions, "a,b,c" (two tiers may share an interval) */
    int64_t rollup_from, rollup_to;
    uint64_t rollup_buckets, rollup_rows, rollup_dirty;
    uint32_t raw_ranges;
    const char *rollup_skipped; /* a tier covers the query but raw rows alone answered it:
                                 * why (a static string); NULL otherwise */
    /* raw_expired: the query's range starts before the raw rows retention kept; they
     * end at raw_expired_before (raw rows before it are gone; a tier that outlives them
     * answered that range, when one covers the query). */
    bool raw_expired;
    int64_t raw_expired_before;
} query_result;

/* Runs q over t. Returns 0 and *out, or an error: STRATA_EINVAL for a query that does not
 * fit the table (message names the column) or a fill without interval, from or to,
 * STRATA_ECORRUPT / STRATA_EIO from reading, STRATA_EFULL when max_groups (groups found,
 * or the rows a fill would answer), max_memory or the timeout is passed. */
int query_run(strata_table *t, const strata_query *q, query_result **out /* OUT */,
              strata_err *err);
void query_result_free(query_result *r);

static inline const query_cell *query_result_cell(const query_result *r, uint64_t row, int col)
{
    return &r->cells[row * (uint64_t)r->ncols + (uint64_t)col];
}

#endif
