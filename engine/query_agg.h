/*
 * query_agg.h — internal to the query_*.c files (the public API is engine/query.h): the
 * state of one aggregate for one group, and how it is updated, merged and finished.
 *
 * count counts rows; sum and avg keep an exact int64 (or uint64) sum with overflow checks
 * for integer columns and a Neumaier-compensated float sum otherwise (avg always the
 * float one); min and max keep the value in the column's kind; uniq keeps a HyperLogLog
 * and quantile a DDSketch (engine/sketch.h). qagg_update is per row, so it is inline here:
 * the scan's loops call it with no call in between.
 *
 * Ownership: states live in a group table's states array (query_groups.h), zeroed when a
 * group is made. A state's sketch is allocated by the first qagg_update that needs it,
 * moved or merged by qagg_merge, and freed by qagg_state_free, which the owner of the
 * group table calls for every state before freeing the table.
 */
#ifndef STRATA_QUERY_AGG_H
#define STRATA_QUERY_AGG_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/query.h"
#include "engine/query_ctx.h"
#include "engine/sketch.h"

/* (typedef'd as agg_state in query_groups.h) */
struct agg_state {
    int64_t i;      /* int sums (uint64 as bit pattern), int min/max */
    double f, comp; /* float sums (Neumaier), float min/max */
    uint64_t n;     /* values seen */
    bool has;
    void *sk;       /* hll or ddsketch */
};

/* Neumaier's compensated addition of v to the sum *f with compensation *c (branchless). */
static inline void qagg_neumaier_add(double *f, double *c, double v)
{
    double t = *f + v;
    double big_f = (*f - t) + v, big_v = (v - t) + *f;
    *c += fabs(*f) >= fabs(v) ? big_f : big_v;
    *f = t;
}

/* *sum += v for an integer column of type t (uint64 as its bit pattern); false when the
 * sum overflows (*sum then means nothing: the query fails). */
static inline bool qagg_add_int(strata_type t, int64_t *sum, int64_t v)
{
    if (t == STRATA_UINT64) {
        uint64_t r;
        if (__builtin_add_overflow((uint64_t)*sum, (uint64_t)v, &r))
            return false;
        *sum = (int64_t)r;
        return true;
    }
    return !__builtin_add_overflow(*sum, v, sum);
}

/* True when v comes before cur for min (mn) or max, compared as values of type t. */
static inline bool qagg_int_beats(strata_type t, bool mn, int64_t v, int64_t cur)
{
    return t == STRATA_UINT64 ? (mn ? (uint64_t)v < (uint64_t)cur : (uint64_t)v > (uint64_t)cur)
                              : (mn ? v < cur : v > cur);
}

/* Adds row i of x's decoded block to s, the state of aggregate a. 0; STRATA_EINVAL when
 * an integer sum overflows; STRATA_ENOMEM when a sketch cannot grow. */
static inline int qagg_update(exec *x, const query_agg *a, agg_state *s, uint32_t i)
{
    if (a->fn == STRATA_AGG_COUNT) {
        s->n++;
        return 0;
    }
    strata_type t = x->sc->cols[a->col].type;
    if (t == STRATA_STRING) { /* only uniq takes strings */
        strata_str v = qctx_src_str(x, a->col, x->cv[a->col][i]);
        if (!s->sk && !(s->sk = hll_create()))
            return STRATA_ENOMEM;
        uint64_t before = hll_bytes(s->sk);
        hll_add_hash(s->sk, sketch_hash_bytes(v.ptr, v.len));
        x->sketch_bytes += hll_bytes(s->sk) - before;
        s->n++;
        return 0;
    }
    bool is_int = strata_type_is_int(t);
    int64_t iv = is_int ? x->iv[a->col][i] : 0;
    double fv = is_int ? (t == STRATA_UINT64 ? (double)(uint64_t)iv : (double)iv) : x->fv[a->col][i];
    if (!is_int && isnan(fv) && a->fn != STRATA_AGG_UNIQ)
        return 0;
    switch (a->fn) {
    case STRATA_AGG_SUM:
    case STRATA_AGG_AVG:
        if (is_int && a->fn == STRATA_AGG_SUM) {
            if (!qagg_add_int(t, &s->i, iv))
                return STRATA_EINVAL;
        } else {
            qagg_neumaier_add(&s->f, &s->comp, fv);
        }
        break;
    case STRATA_AGG_MIN:
    case STRATA_AGG_MAX: {
        bool mn = a->fn == STRATA_AGG_MIN;
        if (is_int) {
            if (!s->has || qagg_int_beats(t, mn, iv, s->i))
                s->i = iv;
        } else if (!s->has || (mn ? fv < s->f : fv > s->f)) {
            s->f = fv;
        }
        break;
    }
    case STRATA_AGG_UNIQ: {
        if (!s->sk && !(s->sk = hll_create()))
            return STRATA_ENOMEM;
        uint64_t before = hll_bytes(s->sk);
        if (is_int) {
            hll_add_hash(s->sk, sketch_hash_u64((uint64_t)iv));
        } else {
            double z = fv == 0 ? 0.0 : fv; /* -0.0 and 0.0 are one value */
            uint64_t bits;
            memcpy(&bits, &z, 8);
            hll_add_hash(s->sk, sketch_hash_u64(bits));
        }
        x->sketch_bytes += hll_bytes(s->sk) - before;
        break;
    }
    case STRATA_AGG_QUANTILE: {
        if (!s->sk && !(s->sk = dds_create()))
            return STRATA_ENOMEM;
        uint64_t before = dds_bytes(s->sk);
        if (!dds_add(s->sk, fv))
            return STRATA_ENOMEM;
        x->sketch_bytes += dds_bytes(s->sk) - before;
        break;
    }
    default: break;
    }
    s->has = true;
    s->n++;
    return 0;
}

/* agg_src[a] for each aggregate of q: a itself, or an earlier aggregate whose state a
 * reads: quantiles of one column share a sketch, sum and avg of one float column share a
 * sum. Only the states of aggregates with agg_src[a] == a are updated and merged. */
void qagg_shared_states(const strata_query *q, const strata_schema *sc, int *agg_src /* OUT */);

/* Adds src into dst (the same aggregate a, of two groups with one key). Moves or merges
 * sketches: src may be left without its sketch. 0, STRATA_EINVAL when an integer sum
 * overflows, STRATA_ENOMEM. */
int qagg_merge(const strata_schema *sc, const query_agg *a, agg_state *dst, agg_state *src);

/* The answer of aggregate a from state s (null where it saw no value). */
void qagg_final_cell(const strata_schema *sc, const query_agg *a, const agg_state *s,
                     query_cell *c /* OUT */);

/* The result type name of aggregate a (a static string). */
const char *qagg_type(const strata_schema *sc, const query_agg *a);

/* Frees the sketch s holds as the state of aggregate a (if any). */
void qagg_state_free(const query_agg *a, agg_state *s);

#endif
