/*
 * query_rollup.c — a query's use of a rollup tier (query_rollup.h): which tier, which
 * part of the range it serves, and merging its rows into the query's groups.
 *
 * The tier's rows are (bucket, dimension codes, states). A row passes the where tree
 * when its codes do: each predicate's answer is kept per code (a tier's dictionary is
 * the tier's for good), so a string is compared once per query. Its group key is built
 * like the scan's (the query's bucket of the tier bucket's start, then the group_by
 * strings as ids of the exec's pool) and its states merged into the group's by
 * qagg_merge_from, which leaves the tier's states as they are.
 */
#include "engine/query_rollup.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/clock.h"
#include "engine/query_agg.h"
#include "engine/query_groups.h"
#include "engine/query_plan.h"
#include "engine/sketch.h"

static int dim_index(const strata_rollup *r, int col)
{
    for (int d = 0; d < r->ndims; d++)
        if (r->dims[d] == col)
            return d;
    return -1;
}

/* The first column of the where tree e that is not a dimension of r, or -1. */
static int where_outside(const query_expr *e, const strata_rollup *r)
{
    if (!e)
        return -1;
    if (e->kind == QX_PRED)
        return dim_index(r, e->pred.col) < 0 ? e->pred.col : -1;
    for (uint32_t k = 0; k < e->nkids; k++) {
        int c = where_outside(&e->kids[k], r);
        if (c >= 0)
            return c;
    }
    return -1;
}

static void say(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(why);
    if (len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why + len, cap - len, fmt, ap);
    va_end(ap);
}

static void interval_text(int64_t ms, char *out, size_t cap)
{
    if (ms % 3600000 == 0)
        snprintf(out, cap, "%" PRId64 "h", ms / 3600000);
    else
        snprintf(out, cap, "%" PRId64 "m", ms / 60000);
}

unsigned qrollup_covering(const strata_query *q, const strata_schema *sc, char *why, size_t cap)
{
    if (cap)
        why[0] = 0;
    int n = sc->nrollups;
    unsigned mask = 0;
    for (int i = 0; i < n; i++) {
        const strata_rollup *r = &sc->rollups[i];
        char iv[32];
        interval_text(r->interval_ms, iv, sizeof iv);
        const char *sep = why[0] ? "; " : "";
        if (q->interval_ms > 0 && q->interval_ms % r->interval_ms != 0) {
            say(why, cap, "%stier %s: the query's interval is not a multiple of it", sep, iv);
            continue;
        }
        int bad = -1;
        for (int g = 0; g < q->ngroup && bad < 0; g++)
            if (dim_index(r, q->group_cols[g]) < 0)
                bad = q->group_cols[g];
        if (bad >= 0) {
            say(why, cap, "%stier %s: group_by '%s' is not one of its dimensions", sep, iv, sc->cols[bad].name);
            continue;
        }
        if ((bad = where_outside(q->where, r)) >= 0) {
            say(why, cap, "%stier %s: where on '%s', which is not one of its dimensions", sep, iv, sc->cols[bad].name);
            continue;
        }
        query_agg st[ROLLUP_MAX_STATES];
        int ns;
        rollup_tier_states(sc, r, st, &ns);
        int miss = -1;
        for (int a = 0; a < q->naggs && miss < 0; a++)
            if (rollup_state_for(sc, st, ns, &q->aggs[a]) < 0)
                miss = a;
        if (miss >= 0) {
            const query_agg *a = &q->aggs[miss];
            say(why, cap, "%stier %s keeps no %s%s%s%s", sep, iv, strata_agg_name(a->fn), a->col >= 0 ? " of '" : "",
                a->col >= 0 ? sc->cols[a->col].name : "", a->col >= 0 ? "'" : "");
            continue;
        }
        mask |= 1u << i;
    }
    if (n == 0)
        say(why, cap, "table '%s' has no rollups", sc->name);
    return mask;
}

static void add_raw(qrollup_split *sp, int64_t lo, int64_t hi, bool *over)
{
    if (lo >= hi)
        return;
    if (sp->nraw > 0 && sp->raw[sp->nraw - 1][1] == lo) {
        sp->raw[sp->nraw - 1][1] = hi;
        return;
    }
    if (sp->nraw == QROLLUP_MAX_RANGES) {
        *over = true;
        return;
    }
    sp->raw[sp->nraw][0] = lo;
    sp->raw[sp->nraw][1] = hi;
    sp->nraw++;
}

void qrollup_split_range(const strata_query *q, const rollup_tier_view *tv, int64_t I, qrollup_split *sp)
{
    memset(sp, 0, sizeof *sp);
    int64_t a = INT64_MAX, b = INT64_MIN;
    if (tv && tv->valid && tv->built_from < tv->sealed_through) {
        a = q->from_ms <= tv->built_from ? tv->built_from
                                         : qplan_floor_div64(q->from_ms - 1, I) * I + I; /* rounded up */
        b = q->to_ms >= tv->sealed_through ? tv->sealed_through : qplan_floor_div64(q->to_ms, I) * I;
    }
    bool over = false;
    if (a >= b) {
        add_raw(sp, q->from_ms, q->to_ms, &over);
        return;
    }
    sp->from = a;
    sp->to = b;
    add_raw(sp, q->from_ms, a, &over);
    for (uint32_t i = rollup_starts_lower(tv->dirty, tv->ndirty, a); i < tv->ndirty && tv->dirty[i] < b; i++) {
        add_raw(sp, tv->dirty[i], tv->dirty[i] + I, &over);
        sp->dirty++;
    }
    add_raw(sp, b, q->to_ms, &over);
    if (over) { /* too scattered: raw rows serve it all */
        memset(sp, 0, sizeof *sp);
        add_raw(sp, q->from_ms, q->to_ms, &over);
    }
}

/* Rows of the tier's clean buckets in sp's range. */
static uint64_t tier_rows(const rollup_tier_view *tv, const qrollup_split *sp)
{
    uint32_t lo = rollup_buckets_lower(tv->b, tv->nb, sp->from), di = 0;
    uint64_t rows = 0;
    for (uint32_t i = lo; i < tv->nb && tv->b[i]->start < sp->to; i++) {
        while (di < tv->ndirty && tv->dirty[di] < tv->b[i]->start)
            di++;
        if (!(di < tv->ndirty && tv->dirty[di] == tv->b[i]->start))
            rows += tv->b[i]->nrows;
    }
    return rows;
}

/* Raw rows of snap's sources that overlap [from, to) (a source partly inside counts
 * whole: an estimate, on the high side). */
static uint64_t raw_rows(const table_snapshot *snap, int64_t from, int64_t to)
{
    uint64_t rows = 0;
    for (uint32_t i = 0; i < snap->nparts; i++) {
        const snapshot_part *p = &snap->parts[i];
        if (p->end <= from || p->key >= to)
            continue;
        for (uint32_t j = 0; j < p->nsegs; j++)
            if (segment_max_time(p->segs[j]) >= from && segment_min_time(p->segs[j]) < to)
                rows += segment_nrows(p->segs[j]);
        for (uint32_t j = 0; j < p->nmts; j++)
            rows += p->mt_rows[j];
    }
    return rows;
}

int qrollup_pick(const strata_query *q, const strata_schema *sc, const table_snapshot *snap, unsigned covering,
                 bool force, qrollup_split *sp, const char **why)
{
    *why = NULL;
    const rollup_view *v = snap->rollup;
    int best = -1;
    uint64_t best_rows = UINT64_MAX;
    qrollup_split cur;
    /* Raw rows before raw_floor expired: a tier that still holds that range must answer
     * it, whatever it costs, and the one reaching back furthest does. */
    bool expired = snap->raw_floor != INT64_MIN && q->from_ms < snap->raw_floor;
    force |= expired;
    for (int i = 0; v && i < v->ntiers; i++) {
        if (!(covering & (1u << i)))
            continue;
        qrollup_split_range(q, &v->tiers[i], sc->rollups[i].interval_ms, &cur);
        if (cur.from >= cur.to)
            continue;
        uint64_t rows = tier_rows(&v->tiers[i], &cur);
        if (expired && best >= 0 && cur.from != sp->from ? cur.from < sp->from : rows < best_rows) {
            best = i;
            best_rows = rows;
            *sp = cur;
        }
    }
    bool sketches = false;
    for (int a = 0; a < q->naggs; a++)
        sketches |= q->aggs[a].fn == STRATA_AGG_UNIQ || q->aggs[a].fn == STRATA_AGG_QUANTILE;
    uint64_t cost = sketches ? QROLLUP_SKETCH_ROW_COST : QROLLUP_ROW_COST;
    if (covering && best < 0)
        *why = "no whole sealed bucket of a covering tier in the range yet";
    if (best >= 0 && !force && best_rows * cost >= raw_rows(snap, sp->from, sp->to)) {
        best = -1;
        *why = "the raw rows cost less to read here than the tier's";
    }
    if (best < 0)
        qrollup_split_range(q, NULL, 1, sp);
    return best;
}

typedef struct pred_cache {
    const query_expr *e;
    int dim;
    lazy_table m; /* code -> (matches ? 2 : 1) */
} pred_cache;

typedef struct rctx {
    const rollup_set *rs;
    int tier;
    pred_cache *pc;
    uint32_t npc;
} rctx;

static void collect(rctx *c, const query_expr *e, const strata_rollup *r)
{
    if (e->kind == QX_PRED) {
        c->pc[c->npc++] = (pred_cache){.e = e, .dim = dim_index(r, e->pred.col)};
        return;
    }
    for (uint32_t k = 0; k < e->nkids; k++)
        collect(c, &e->kids[k], r);
}

/* 1 when the row with codes passes e, 0 when not, -1 out of memory. */
static int eval(rctx *c, const query_expr *e, const uint32_t *codes)
{
    if (e->kind == QX_PRED) {
        pred_cache *p = NULL;
        for (uint32_t i = 0; i < c->npc && !p; i++)
            if (c->pc[i].e == e)
                p = &c->pc[i];
        uint32_t code = codes[p->dim];
        if (code >= p->m.cap || !p->m.v[code]) {
            if (!qgroups_lazy_reserve(&p->m, code))
                return -1;
            p->m.v[code] = segment_pred_match_str(&e->pred, rollup_dict_value(c->rs, c->tier, p->dim, code)) ? 2 : 1;
        }
        return p->m.v[code] == 2;
    }
    bool and = e->kind == QX_AND;
    for (uint32_t k = 0; k < e->nkids; k++) {
        int r = eval(c, &e->kids[k], codes);
        if (r < 0)
            return r;
        if (and && !r)
            return 0;
        if (!and && r)
            return 1;
    }
    return and ? 1 : 0;
}

/* A quantile state of a tier (its sketch packed) merged into dst. */
static int merge_packed(agg_state *dst, const agg_state *src, uint64_t *grown)
{
    *grown = 0;
    if (src->sk) {
        if (!dst->sk && !(dst->sk = dds_create()))
            return STRATA_ENOMEM;
        uint64_t before = dds_bytes(dst->sk);
        if (!dds_merge_packed(dst->sk, src->sk))
            return STRATA_ENOMEM;
        *grown = dds_bytes(dst->sk) - before;
    }
    dst->has |= src->has;
    dst->n += src->n;
    return 0;
}

int qrollup_merge(exec *x, const rollup_view *v, int ti, const qrollup_split *sp, uint64_t *buckets, uint64_t *rows)
{
    *buckets = *rows = 0;
    if (sp->from >= sp->to)
        return 0;
    const strata_query *q = x->q;
    const strata_schema *sc = x->sc;
    const strata_rollup *r = &sc->rollups[ti];
    const rollup_tier_view *tv = &v->tiers[ti];
    query_agg st[ROLLUP_MAX_STATES];
    int ns, sm[QUERY_MAX_AGGS], gdim[QUERY_MAX_GROUP];
    rollup_tier_states(sc, r, st, &ns);
    for (int a = 0; a < q->naggs; a++)
        sm[a] = rollup_state_for(sc, st, ns, &q->aggs[a]);
    for (int g = 0; g < q->ngroup; g++)
        gdim[g] = dim_index(r, q->group_cols[g]);
    rctx c = {.rs = v->rs, .tier = ti};
    lazy_table gl[QUERY_MAX_GROUP];
    memset(gl, 0, sizeof gl);
    int rc = 0;
    if (q->where) {
        c.pc = calloc(qplan_count_preds(q->where), sizeof *c.pc);
        if (!c.pc)
            return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
        collect(&c, q->where, r);
    }
    uint32_t lo = rollup_buckets_lower(tv->b, tv->nb, sp->from), di = 0;
    uint64_t key[QUERY_MAX_GROUP + 1], last[QUERY_MAX_GROUP + 1];
    uint32_t nd = (uint32_t)r->ndims, klen = x->groups.klen;
    int64_t last_gi = -1;
    for (uint32_t bi = lo; bi < tv->nb && tv->b[bi]->start < sp->to && !rc; bi++) {
        const rollup_bucket *b = tv->b[bi];
        while (di < tv->ndirty && tv->dirty[di] < b->start)
            di++;
        if (di < tv->ndirty && tv->dirty[di] == b->start)
            continue; /* dirty: its rows come from the raw ranges */
        (*buckets)++;
        *rows += b->nrows;
        for (uint32_t row = 0; row < b->nrows && !rc; row++) {
            const uint32_t *codes = b->dims + (uint64_t)row * nd;
            if (q->where) {
                int pass = eval(&c, q->where, codes);
                if (pass < 0)
                    rc = strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
                if (pass <= 0)
                    continue;
            }
            uint32_t k = 0;
            if (q->interval_ms > 0)
                key[k++] = (uint64_t)(qplan_floor_div64(b->start, q->interval_ms) * q->interval_ms);
            for (int g = 0; g < q->ngroup && !rc; g++) {
                uint32_t code = codes[gdim[g]];
                if (code >= gl[g].cap || !gl[g].v[code]) {
                    int64_t id = qgroups_lazy_reserve(&gl[g], code)
                                     ? qgroups_pool_intern(&x->pool, rollup_dict_value(v->rs, ti, gdim[g], code))
                                     : -1;
                    if (id < 0) {
                        rc = strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
                        break;
                    }
                    gl[g].v[code] = (uint32_t)id + 1;
                }
                key[k++] = gl[g].v[code] - 1;
            }
            if (rc)
                break;
            if (k == 0)
                key[0] = 0;
            /* rows of a bucket, and buckets of one query bucket, often share a group */
            bool same = last_gi >= 0;
            for (uint32_t w = 0; same && w < klen; w++)
                same = key[w] == last[w];
            if (!same) {
                last_gi = qgroups_find(&x->groups, key);
                if (last_gi < 0) {
                    rc = strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
                    break;
                }
                if (q->max_groups && x->groups.n > q->max_groups) {
                    rc = qctx_too_many_groups(x);
                    break;
                }
                memcpy(last, key, sizeof *key * klen);
            }
            int64_t gi = last_gi;
            const agg_state *src = b->states + (uint64_t)row * (uint64_t)ns;
            for (int a = 0; a < q->naggs && !rc; a++) {
                if (x->agg_src[a] != a)
                    continue;
                uint64_t grown;
                agg_state *dst = &x->groups.states[(uint64_t)gi * x->groups.naggs + (uint64_t)a];
                int mr = q->aggs[a].fn == STRATA_AGG_QUANTILE ? merge_packed(dst, &src[sm[a]], &grown)
                                                              : qagg_merge_from(sc, &q->aggs[a], dst, &src[sm[a]], &grown);
                x->sketch_bytes += grown;
                if (mr == STRATA_EINVAL)
                    rc = strata_err_set(x->err, STRATA_EINVAL, "query: sum of '%s' overflows 64 bits",
                                        sc->cols[q->aggs[a].col].name);
                else if (mr)
                    rc = strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
            }
        }
        if (!rc && (bi & 63) == 63) {
            if (q->timeout_ms > 0 && clock_mono_ms_frac() > x->deadline)
                rc = strata_err_set(x->err, STRATA_EFULL, "query: stopped after the time limit of %" PRId64 " ms",
                                    q->timeout_ms);
            else
                rc = qctx_check_memory(x);
        }
    }
    if (!rc)
        rc = qctx_check_memory(x);
    for (uint32_t i = 0; i < c.npc; i++)
        free(c.pc[i].m.v);
    free(c.pc);
    for (int g = 0; g < QUERY_MAX_GROUP; g++)
        free(gl[g].v);
    return rc;
}
