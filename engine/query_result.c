/*
 * query_result.c — the answer of a query from the groups its scan found (qresult_build in
 * query_ctx.h), and query_result_free (query.h).
 *
 * Each group becomes a row: its key cells (the bucket, then the group values, strings
 * copied out of the pool), then the final cell of each aggregate. With fill, the
 * (bucket, group tuple) pairs that had no rows are added after them: they are found by
 * asking the group table the scan built, with no second pass over the data. Then the
 * rows are ordered (a sort of row indexes: by order_by, then every key column, then the
 * row's place before the sort) and cut to the limit.
 *
 * fill happens here, not in the JSON layer: order_by and limit must see the filled rows (a
 * limit counts them), and every caller of query_run (not only POST /query) gets the same
 * answer. A query without fill takes none of it.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/query.h"
#include "engine/query_agg.h"
#include "engine/query_ctx.h"
#include "engine/query_groups.h"
#include "engine/query_plan.h"

static int cell_cmp(const query_cell *a, const query_cell *b)
{
    if (a->kind == QC_NULL || b->kind == QC_NULL)
        return (a->kind != QC_NULL) - (b->kind != QC_NULL);
    switch (a->kind) {
    case QC_INT: return (a->v.i > b->v.i) - (a->v.i < b->v.i);
    case QC_UINT: return (a->v.u > b->v.u) - (a->v.u < b->v.u);
    case QC_BOOL: return (int)a->v.b - (int)b->v.b;
    case QC_FLOAT: return (a->v.f > b->v.f) - (a->v.f < b->v.f);
    case QC_STR: {
        strata_str x = {a->v.s.ptr, a->v.s.len}, y = {b->v.s.ptr, b->v.s.len};
        return strata_str_cmp(x, y);
    }
    default: return 0;
    }
}

static _Thread_local const query_result *sort_res;
static _Thread_local const strata_query *sort_q;
static _Thread_local int sort_nkeys;

static int row_cmp(const void *pa, const void *pb)
{
    uint64_t ra = *(const uint64_t *)pa, rb = *(const uint64_t *)pb;
    for (int o = 0; o < sort_q->norder; o++) {
        int c = cell_cmp(query_result_cell(sort_res, ra, sort_q->order[o].output_col),
                         query_result_cell(sort_res, rb, sort_q->order[o].output_col));
        if (c)
            return sort_q->order[o].desc ? -c : c;
    }
    for (int k = 0; k < sort_nkeys; k++) {
        int c = cell_cmp(query_result_cell(sort_res, ra, k), query_result_cell(sort_res, rb, k));
        if (c)
            return c;
    }
    return (ra > rb) - (ra < rb);
}

/* Writes the key cells of an output row from a group key: the bucket (with buckets), then
 * the group values. STRATA_ENOMEM when a string copy fails; the cells written so far
 * are freed with the result. */
static int key_cells(const exec *x, const uint64_t *key, query_cell *row)
{
    const strata_query *q = x->q;
    int k = 0;
    if (q->interval_ms > 0) {
        row[0].kind = QC_INT;
        row[0].v.i = (int64_t)key[0];
        k = 1;
    }
    for (int g = 0; g < q->ngroup; g++, k++) {
        strata_type t = x->sc->cols[q->group_cols[g]].type;
        query_cell *cell = &row[k];
        if (t == STRATA_STRING) {
            strata_str s = x->pool.items[key[k]];
            cell->v.s.ptr = malloc(s.len + 1);
            if (!cell->v.s.ptr)
                return STRATA_ENOMEM;
            cell->kind = QC_STR;
            if (s.len)
                memcpy(cell->v.s.ptr, s.ptr, s.len);
            cell->v.s.ptr[s.len] = 0;
            cell->v.s.len = s.len;
        } else if (t == STRATA_FLOAT64) {
            cell->kind = QC_FLOAT;
            memcpy(&cell->v.f, &key[k], 8);
        } else if (t == STRATA_BOOL) {
            cell->kind = QC_BOOL;
            cell->v.b = key[k] != 0;
        } else {
            cell->kind = t == STRATA_UINT64 ? QC_UINT : QC_INT;
            cell->v.u = key[k];
        }
    }
    return 0;
}

/* The cell of aggregate a in a row a fill adds (no rows behind it): with QUERY_FILL_ZERO
 * count, uniq and sum are 0 (sum in the type it has otherwise), the rest null; with
 * QUERY_FILL_NULL all null. */
static void fill_cell(const exec *x, const query_agg *a, query_cell *c)
{
    memset(c, 0, sizeof *c); /* QC_NULL */
    if (x->q->fill != QUERY_FILL_ZERO)
        return;
    strata_type t = a->col >= 0 ? x->sc->cols[a->col].type : STRATA_UINT64;
    switch (a->fn) {
    case STRATA_AGG_COUNT:
    case STRATA_AGG_UNIQ: c->kind = QC_UINT; return;
    case STRATA_AGG_SUM:
        c->kind = !strata_type_is_int(t) ? QC_FLOAT : t == STRATA_UINT64 ? QC_UINT : QC_INT;
        return;
    default: return;
    }
}

/* For a fill: the distinct group tuples of the groups found (the key without its bucket)
 * into *tuples (left empty without group_by: then there is one, the empty tuple, counted
 * in *ntuples all the same), the buckets (*first, *nb) and the rows the answer will have,
 * *nrows. STRATA_EFULL past max_groups, STRATA_ENOMEM; the message in err. */
static int fill_plan(const exec *x, group_table *tuples, int64_t *first, uint64_t *nb,
                     uint64_t *ntuples, uint64_t *nrows, strata_err *err)
{
    const strata_query *q = x->q;
    int rc = qplan_fill_buckets(q, first, nb, err);
    if (rc)
        return rc;
    *ntuples = 1;
    if (q->ngroup > 0) {
        tuples->klen = (uint32_t)q->ngroup;
        for (uint64_t gi = 0; gi < x->groups.n; gi++)
            if (qgroups_find(tuples, x->groups.keys + gi * x->groups.klen + 1) < 0)
                return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
        *ntuples = tuples->n;
    }
    uint64_t rows;
    if (__builtin_mul_overflow(*nb, *ntuples, &rows) || (q->max_groups && rows > q->max_groups) ||
        rows > SIZE_MAX / sizeof(query_cell) / (uint64_t)(1 + QUERY_MAX_GROUP + QUERY_MAX_AGGS))
        return qplan_fill_too_many(q, *nb, *ntuples, err);
    /* every group found is one of these (its bucket and its tuple are); the max only
     * guards the cells against a mistake in that reasoning */
    *nrows = rows > x->groups.n ? rows : x->groups.n;
    return 0;
}

int qresult_build(exec *x, query_result **out, strata_err *err)
{
    const strata_query *q = x->q;
    query_result *r = calloc(1, sizeof *r);
    if (!r)
        return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
    int nk = (q->interval_ms > 0) + q->ngroup;
    qplan_columns(q, x->sc, r);
    /* With neither buckets nor groups there is always exactly one row. */
    if (nk == 0 && x->groups.n == 0) {
        uint64_t none = 0;
        if (qgroups_find(&x->groups, &none) < 0) {
            free(r);
            return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
        }
    }
    uint64_t ng = x->groups.n, nrows = ng;
    group_table tuples = {0};
    int64_t first = 0;
    uint64_t nb = 0, ntuples = 0;
    if (q->fill != QUERY_FILL_NONE) {
        int rc = fill_plan(x, &tuples, &first, &nb, &ntuples, &nrows, err);
        if (rc) {
            qgroups_table_free(&tuples);
            free(r);
            return rc;
        }
    }
    query_cell *cells = calloc(nrows * (uint64_t)r->ncols + 1, sizeof *cells);
    if (!cells) {
        qgroups_table_free(&tuples);
        free(r);
        return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
    }
    r->cells = cells;
    r->nrows = nrows; /* rows not written yet are null cells: nothing to free */
    int rc = 0;
    for (uint64_t gi = 0; gi < ng && !rc; gi++) {
        query_cell *row = cells + gi * (uint64_t)r->ncols;
        rc = key_cells(x, x->groups.keys + gi * x->groups.klen, row);
        const agg_state *st = x->groups.states + gi * x->groups.naggs;
        for (int a = 0; a < q->naggs && !rc; a++)
            qagg_final_cell(x->sc, &q->aggs[a], &st[x->agg_src[a]], &row[nk + a]);
    }
    /* fill: every (bucket, tuple) the scan found no rows for, after the ng rows it did */
    uint64_t at = ng;
    for (uint64_t t = 0; t < ntuples && !rc; t++) {
        uint64_t key[QUERY_MAX_GROUP + 1];
        if (q->ngroup > 0)
            memcpy(key + 1, tuples.keys + t * tuples.klen, sizeof *key * tuples.klen);
        for (uint64_t b = 0; b < nb && !rc; b++) {
            key[0] = (uint64_t)first + b * (uint64_t)q->interval_ms; /* <= to - 1 */
            if (qgroups_lookup(&x->groups, key) >= 0)
                continue;
            if (at == nrows) /* cannot happen: every group found is one of nb x ntuples */
                break;
            query_cell *row = cells + at++ * (uint64_t)r->ncols;
            rc = key_cells(x, key, row);
            for (int a = 0; a < q->naggs && !rc; a++)
                fill_cell(x, &q->aggs[a], &row[nk + a]);
        }
    }
    qgroups_table_free(&tuples);
    if (rc) {
        query_result_free(r);
        return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
    }
    nrows = r->nrows = at;
    /* Order, then limit: sort row indexes, then permute. */
    uint64_t *idx = malloc(sizeof *idx * (nrows + 1));
    query_cell *sorted = calloc(nrows * (uint64_t)r->ncols + 1, sizeof *sorted);
    if (!idx || !sorted) {
        free(idx);
        free(sorted);
        query_result_free(r);
        return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
    }
    for (uint64_t i = 0; i < nrows; i++)
        idx[i] = i;
    sort_res = r;
    sort_q = q;
    sort_nkeys = nk;
    qsort(idx, nrows, sizeof *idx, row_cmp);
    uint64_t keep = q->limit >= 0 && (uint64_t)q->limit < nrows ? (uint64_t)q->limit : nrows;
    for (uint64_t i = 0; i < nrows; i++) {
        query_cell *src = cells + idx[i] * (uint64_t)r->ncols;
        if (i < keep) {
            memcpy(sorted + i * (uint64_t)r->ncols, src, sizeof *src * (size_t)r->ncols);
        } else {
            for (int cc = 0; cc < r->ncols; cc++)
                if (src[cc].kind == QC_STR)
                    free(src[cc].v.s.ptr);
        }
    }
    free(idx);
    free(cells);
    r->cells = sorted;
    r->nrows = keep;
    *out = r;
    return 0;
}

void query_result_free(query_result *r)
{
    if (!r)
        return;
    for (uint64_t i = 0; i < r->nrows * (uint64_t)r->ncols; i++)
        if (r->cells[i].kind == QC_STR)
            free(r->cells[i].v.s.ptr);
    free(r->cells);
    free(r);
}
