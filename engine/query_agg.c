/*
 * query_agg.c — aggregate states past the per-row update (query_agg.h): which aggregates
 * share a state, merging the states of two scan threads, the final answer of a state,
 * its result type, and freeing its sketch.
 *
 * A merge is the update's algebra applied to whole states: integer sums add with the same
 * overflow check, float sums add both parts of the other compensated sum, min/max compare,
 * sketches merge (or move, when the destination has none yet).
 */
#include "engine/query_agg.h"

#include "engine/query_plan.h"

void qagg_shared_states(const strata_query *q, const strata_schema *sc, int *agg_src)
{
    for (int a = 0; a < q->naggs; a++) {
        const query_agg *A = &q->aggs[a];
        agg_src[a] = a;
        bool fsum = (A->fn == STRATA_AGG_SUM || A->fn == STRATA_AGG_AVG) && A->col >= 0 &&
                    sc->cols[A->col].type == STRATA_FLOAT64;
        for (int b = 0; b < a && agg_src[a] == a; b++) {
            const query_agg *B = &q->aggs[b];
            if (B->col != A->col || agg_src[b] != b)
                continue;
            if ((A->fn == STRATA_AGG_QUANTILE && B->fn == STRATA_AGG_QUANTILE) ||
                (fsum && (B->fn == STRATA_AGG_SUM || B->fn == STRATA_AGG_AVG)))
                agg_src[a] = b;
        }
    }
}

int qagg_merge(const strata_schema *sc, const query_agg *a, agg_state *dst, agg_state *src)
{
    if (!src->has && a->fn != STRATA_AGG_COUNT && !src->sk) {
        dst->n += src->n;
        return 0;
    }
    strata_type t = a->col >= 0 ? sc->cols[a->col].type : STRATA_UINT64;
    bool is_int = strata_type_is_int(t);
    switch (a->fn) {
    case STRATA_AGG_SUM:
    case STRATA_AGG_AVG:
        if (is_int && a->fn == STRATA_AGG_SUM) {
            if (!qagg_add_int(t, &dst->i, src->i))
                return STRATA_EINVAL;
        } else {
            qagg_neumaier_add(&dst->f, &dst->comp, src->f);
            qagg_neumaier_add(&dst->f, &dst->comp, src->comp);
        }
        break;
    case STRATA_AGG_MIN:
    case STRATA_AGG_MAX: {
        bool mn = a->fn == STRATA_AGG_MIN;
        if (!dst->has) {
            dst->i = src->i;
            dst->f = src->f;
        } else if (is_int) {
            if (qagg_int_beats(t, mn, src->i, dst->i))
                dst->i = src->i;
        } else if (mn ? src->f < dst->f : src->f > dst->f) {
            dst->f = src->f;
        }
        break;
    }
    case STRATA_AGG_UNIQ:
        if (!dst->sk) {
            dst->sk = src->sk;
            src->sk = NULL;
        } else if (src->sk) {
            hll_merge(dst->sk, src->sk);
        }
        break;
    case STRATA_AGG_QUANTILE:
        if (!dst->sk) {
            dst->sk = src->sk;
            src->sk = NULL;
        } else if (src->sk && !dds_merge(dst->sk, src->sk)) {
            return STRATA_ENOMEM;
        }
        break;
    default: break;
    }
    dst->has |= src->has;
    dst->n += src->n;
    return 0;
}

static uint64_t sketch_bytes(const query_agg *a, const agg_state *s)
{
    if (!s->sk)
        return 0;
    return a->fn == STRATA_AGG_UNIQ ? hll_bytes(s->sk) : a->fn == STRATA_AGG_QUANTILE ? dds_bytes(s->sk) : 0;
}

int qagg_merge_from(const strata_schema *sc, const query_agg *a, agg_state *dst, const agg_state *src,
                    uint64_t *grown)
{
    agg_state tmp = *src;
    uint64_t before = sketch_bytes(a, dst);
    *grown = 0;
    if (src->sk && !dst->sk) {
        /* an empty sketch of dst's own, so qagg_merge merges into it and takes nothing */
        if (a->fn == STRATA_AGG_UNIQ)
            dst->sk = hll_create();
        else if (a->fn == STRATA_AGG_QUANTILE)
            dst->sk = dds_create();
        if (!dst->sk)
            return STRATA_ENOMEM;
    }
    int rc = qagg_merge(sc, a, dst, &tmp);
    *grown = sketch_bytes(a, dst) - before;
    return rc;
}

void qagg_final_cell(const strata_schema *sc, const query_agg *a, const agg_state *s, query_cell *c)
{
    strata_type t = a->col >= 0 ? sc->cols[a->col].type : STRATA_UINT64;
    memset(c, 0, sizeof *c);
    switch (a->fn) {
    case STRATA_AGG_COUNT:
        c->kind = QC_UINT;
        c->v.u = s->n;
        return;
    case STRATA_AGG_UNIQ:
        c->kind = QC_UINT;
        c->v.u = s->sk ? hll_estimate(s->sk) : 0;
        return;
    default: break;
    }
    if (!s->has)
        return; /* null */
    bool is_int = strata_type_is_int(t);
    switch (a->fn) {
    case STRATA_AGG_SUM:
        if (is_int) {
            c->kind = t == STRATA_UINT64 ? QC_UINT : QC_INT;
            c->v.i = s->i;
        } else {
            c->kind = QC_FLOAT;
            c->v.f = s->f + s->comp;
        }
        return;
    case STRATA_AGG_AVG:
        c->kind = QC_FLOAT;
        c->v.f = (s->f + s->comp) / (double)s->n;
        return;
    case STRATA_AGG_MIN:
    case STRATA_AGG_MAX:
        if (!is_int) {
            c->kind = QC_FLOAT;
            c->v.f = s->f;
        } else if (t == STRATA_BOOL) {
            c->kind = QC_BOOL;
            c->v.b = s->i != 0;
        } else {
            c->kind = t == STRATA_UINT64 ? QC_UINT : QC_INT;
            c->v.i = s->i;
        }
        return;
    case STRATA_AGG_QUANTILE:
        c->kind = QC_FLOAT;
        c->v.f = dds_quantile(s->sk, a->q);
        return;
    default: return;
    }
}

const char *qagg_type(const strata_schema *sc, const query_agg *a)
{
    strata_type t = a->col >= 0 ? sc->cols[a->col].type : STRATA_UINT64;
    switch (a->fn) {
    case STRATA_AGG_COUNT:
    case STRATA_AGG_UNIQ: return "uint64";
    case STRATA_AGG_AVG:
    case STRATA_AGG_QUANTILE: return "float64";
    case STRATA_AGG_SUM:
        return t == STRATA_FLOAT64 ? "float64" : t == STRATA_UINT64 ? "uint64" : "int64";
    default: return strata_type_name(t);
    }
}

void qagg_state_free(const query_agg *a, agg_state *s)
{
    if (a->fn == STRATA_AGG_UNIQ)
        hll_free(s->sk);
    else if (a->fn == STRATA_AGG_QUANTILE)
        dds_free(s->sk);
    s->sk = NULL;
}
