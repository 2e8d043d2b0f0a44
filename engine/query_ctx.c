/*
 * query_ctx.c — the execution context of a scan thread (query_ctx.h): setting it up from
 * the plan and freeing it, the per-source reset, the where tree evaluated over a block,
 * and the limits every part checks (memory of group state, the number of groups).
 *
 * The where tree is evaluated column-wise into byte masks, one scratch mask per nesting
 * level (tmp_masks). A string predicate is answered per dictionary code, through a
 * per-source table code -> match filled lazily, so each distinct string of a source is
 * compared once.
 */
#include "engine/query_ctx.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine/query_agg.h"
#include "engine/units.h"

int qctx_init(exec *x, const qplan *p, strata_err *err, double t0)
{
    const strata_query *q = p->q;
    const strata_schema *sc = p->sc;
    memset(x, 0, sizeof *x);
    x->q = q;
    x->sc = sc;
    x->plan = p;
    x->err = err;
    x->deadline = t0 + (double)q->timeout_ms;
    memcpy(x->need, p->need, sizeof x->need);
    memcpy(x->agg_src, p->agg_src, sizeof x->agg_src);
    x->by_code = p->by_code;
    x->groups.klen = (uint32_t)((q->interval_ms > 0) + q->ngroup);
    if (x->groups.klen == 0)
        x->groups.klen = 1; /* the single group's key is 0 */
    x->groups.naggs = (uint32_t)q->naggs;
    int depth = 2;
    if (q->where) {
        x->preds = calloc(p->npreds, sizeof *x->preds);
        if (!x->preds)
            return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
        for (uint32_t i = 0; i < p->npreds; i++)
            x->preds[i].e = p->preds[i];
        x->npreds = p->npreds;
        depth = QUERY_MAX_DEPTH + 3; /* one scratch mask per nesting level */
    }
    x->mask = malloc(BLOCK_ROWS);
    x->sel = malloc(sizeof *x->sel * BLOCK_ROWS);
    x->gid = malloc(sizeof *x->gid * BLOCK_ROWS);
    /* at least 8 * BLOCK_ROWS: phase 2 gathers doubles there */
    x->tmp_masks = malloc((size_t)BLOCK_ROWS * (size_t)(depth < 8 ? 8 : depth));
    x->buf_rows = BLOCK_ROWS;
    for (int c = 0; c < sc->ncols; c++)
        if (x->need[c] && !(x->buf[c] = malloc(8 * (size_t)x->buf_rows)))
            return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
    if (!x->mask || !x->tmp_masks || !x->sel || !x->gid)
        return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
    return 0;
}

void qctx_free(exec *x)
{
    for (uint64_t gi = 0; gi < x->groups.n; gi++)
        for (uint32_t a = 0; a < x->groups.naggs; a++)
            qagg_state_free(&x->q->aggs[a], &x->groups.states[gi * x->groups.naggs + a]);
    qgroups_table_free(&x->groups);
    for (uint32_t i = 0; i < x->npreds; i++)
        free(x->preds[i].match.v);
    free(x->preds);
    for (int g = 0; g < QUERY_MAX_GROUP; g++)
        free(x->group_ids[g].v);
    for (int c = 0; c < STRATA_MAX_COLUMNS; c++)
        free(x->buf[c]);
    free(x->mask);
    free(x->tmp_masks);
    free(x->sel);
    free(x->gid);
    free(x->code_gid.v);
    segment_scratch_free(&x->scratch);
    qgroups_pool_free(&x->pool);
}

void qctx_source_begin(exec *x, const segment *seg, const memtable *mt)
{
    x->seg = seg;
    x->mt = mt;
    for (uint32_t i = 0; i < x->npreds; i++)
        if (x->preds[i].match.v)
            memset(x->preds[i].match.v, 0, sizeof(uint32_t) * x->preds[i].match.cap);
    for (int g = 0; g < x->q->ngroup; g++)
        if (x->group_ids[g].v)
            memset(x->group_ids[g].v, 0, sizeof(uint32_t) * x->group_ids[g].cap);
    if (x->code_gid.v)
        memset(x->code_gid.v, 0, sizeof(uint32_t) * x->code_gid.cap);
}

static pred_ref *pred_of(exec *x, const query_expr *e)
{
    for (uint32_t i = 0; i < x->npreds; i++)
        if (x->preds[i].e == e)
            return &x->preds[i];
    return NULL;
}

int qctx_eval_expr(exec *x, const query_expr *e, uint8_t *out, int depth)
{
    uint32_t n = x->n;
    if (e->kind == QX_PRED) {
        const segment_pred *p = &e->pred;
        strata_type t = x->sc->cols[p->col].type;
        if (strata_type_is_int(t)) {
            const int64_t *v = x->iv[p->col];
            for (uint32_t i = 0; i < n; i++)
                out[i] = segment_pred_match_int(t, p, v[i]);
        } else if (t == STRATA_FLOAT64) {
            const double *v = x->fv[p->col];
            for (uint32_t i = 0; i < n; i++)
                out[i] = segment_pred_match_float(p, v[i]);
        } else {
            pred_ref *pr = pred_of(x, e);
            const uint32_t *c = x->cv[p->col];
            for (uint32_t i = 0; i < n; i++) {
                uint32_t code = c[i];
                if (code >= pr->match.cap || !pr->match.v[code]) {
                    if (!qgroups_lazy_reserve(&pr->match, code))
                        return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
                    pr->match.v[code] = segment_pred_match_str(p, qctx_src_str(x, p->col, code)) ? 2 : 1;
                }
                out[i] = pr->match.v[code] == 2;
            }
        }
        return 0;
    }
    uint8_t *tmp = x->tmp_masks + (size_t)depth * BLOCK_ROWS;
    bool and = e->kind == QX_AND;
    memset(out, and ? 1 : 0, n);
    for (uint32_t k = 0; k < e->nkids; k++) {
        int rc = qctx_eval_expr(x, &e->kids[k], tmp, depth + 1);
        if (rc)
            return rc;
        if (and)
            for (uint32_t i = 0; i < n; i++)
                out[i] &= tmp[i];
        else
            for (uint32_t i = 0; i < n; i++)
                out[i] |= tmp[i];
    }
    return 0;
}

/* Bytes of group state this thread holds: the group table, the group-by strings and the
 * sketches. */
static uint64_t exec_mem_bytes(const exec *x)
{
    const group_table *g = &x->groups;
    const str_pool *p = &x->pool;
    return g->cap * ((uint64_t)(g->klen ? g->klen : 1) * 8 + (uint64_t)(g->naggs ? g->naggs : 1) * sizeof(agg_state)) +
           g->nslots * 4 + (uint64_t)p->cap * (sizeof(strata_str) + 8) + (uint64_t)p->nslots * 4 +
           p->bytes + x->sketch_bytes;
}

int qctx_check_memory(exec *x)
{
    if (!x->q->max_memory || !x->mem_total)
        return 0;
    uint64_t now = exec_mem_bytes(x);
    uint64_t total;
    if (now > x->mem_reported) {
        total = atomic_fetch_add(x->mem_total, now - x->mem_reported) + (now - x->mem_reported);
        x->mem_reported = now;
    } else {
        total = atomic_load(x->mem_total);
    }
    if (total > x->q->max_memory) {
        char limit[32];
        units_format_bytes(x->q->max_memory, limit, sizeof limit);
        return strata_err_set(x->err, STRATA_EFULL,
                              "query: needs more than its memory limit of %s for its groups "
                              "(%" PRIu64 " groups so far); narrow the query or raise the limit",
                              limit, x->groups.n);
    }
    return 0;
}

int qctx_too_many_groups(const exec *x)
{
    return strata_err_set(x->err, STRATA_EFULL,
                          "query: more than %" PRIu64 " groups; narrow the query or raise the limit",
                          x->q->max_groups);
}
