/*
 * segment_prune.c — predicates over segment values and the pruning built on them: which
 * granules min/max (or, for strings, the dictionary) proves hold no matching row, and
 * the exact rows of a string predicate from the bitmap index. Contract in segment.h
 * ("predicates and pruning").
 *
 * Works on an open segment through segment.h's reader functions only. The segment_pred_match_*
 * functions are the reference semantics; every range test below must keep a granule
 * whenever one of its rows could match them (NaN satisfies only != and not in; strings
 * compare in dictionary order, so a comparison selects a contiguous range of codes).
 */
#include <stdlib.h>
#include <string.h>

#include "engine/segment.h"

static int cmp_int(strata_type t, int64_t a, int64_t b)
{
    if (t == STRATA_UINT64)
        return (uint64_t)a < (uint64_t)b ? -1 : (uint64_t)a > (uint64_t)b;
    return a < b ? -1 : a > b;
}

static bool op_holds(segment_pred_op op, int c)
{
    switch (op) {
    case SEGMENT_PRED_EQ: return c == 0;
    case SEGMENT_PRED_NE: return c != 0;
    case SEGMENT_PRED_LT: return c < 0;
    case SEGMENT_PRED_LE: return c <= 0;
    case SEGMENT_PRED_GT: return c > 0;
    case SEGMENT_PRED_GE: return c >= 0;
    default: return false;
    }
}

bool segment_pred_match_int(strata_type t, const segment_pred *p, int64_t v)
{
    if (p->op == SEGMENT_PRED_IN || p->op == SEGMENT_PRED_NOT_IN) {
        bool found = false;
        for (uint32_t i = 0; i < p->nvals && !found; i++)
            found = p->vals[i].i == v;
        return found == (p->op == SEGMENT_PRED_IN);
    }
    return p->nvals >= 1 && op_holds(p->op, cmp_int(t, v, p->vals[0].i));
}

bool segment_pred_match_float(const segment_pred *p, double v)
{
    if (p->op == SEGMENT_PRED_IN || p->op == SEGMENT_PRED_NOT_IN) {
        bool found = false;
        for (uint32_t i = 0; i < p->nvals && !found; i++)
            found = p->vals[i].f == v;
        return found == (p->op == SEGMENT_PRED_IN);
    }
    if (p->nvals < 1)
        return false;
    double x = p->vals[0].f;
    switch (p->op) {
    case SEGMENT_PRED_EQ: return v == x;
    case SEGMENT_PRED_NE: return v != x;
    case SEGMENT_PRED_LT: return v < x;
    case SEGMENT_PRED_LE: return v <= x;
    case SEGMENT_PRED_GT: return v > x;
    case SEGMENT_PRED_GE: return v >= x;
    default: return false;
    }
}

bool segment_pred_match_str(const segment_pred *p, strata_str v)
{
    if (p->op == SEGMENT_PRED_IN || p->op == SEGMENT_PRED_NOT_IN) {
        bool found = false;
        for (uint32_t i = 0; i < p->nvals && !found; i++)
            found = strata_str_cmp(p->vals[i].s, v) == 0;
        return found == (p->op == SEGMENT_PRED_IN);
    }
    return p->nvals >= 1 && op_holds(p->op, strata_str_cmp(v, p->vals[0].s));
}

/* May granule [lo, hi] (int order of t) hold a row matching p? */
static bool range_may_match_int(strata_type t, const segment_pred *p, int64_t lo, int64_t hi)
{
    switch (p->op) {
    case SEGMENT_PRED_EQ: return cmp_int(t, lo, p->vals[0].i) <= 0 && cmp_int(t, p->vals[0].i, hi) <= 0;
    case SEGMENT_PRED_NE: return !(lo == hi && lo == p->vals[0].i);
    case SEGMENT_PRED_LT: return cmp_int(t, lo, p->vals[0].i) < 0;
    case SEGMENT_PRED_LE: return cmp_int(t, lo, p->vals[0].i) <= 0;
    case SEGMENT_PRED_GT: return cmp_int(t, hi, p->vals[0].i) > 0;
    case SEGMENT_PRED_GE: return cmp_int(t, hi, p->vals[0].i) >= 0;
    case SEGMENT_PRED_IN:
        for (uint32_t i = 0; i < p->nvals; i++)
            if (cmp_int(t, lo, p->vals[i].i) <= 0 && cmp_int(t, p->vals[i].i, hi) <= 0)
                return true;
        return false;
    case SEGMENT_PRED_NOT_IN:
        if (lo != hi)
            return true;
        for (uint32_t i = 0; i < p->nvals; i++)
            if (p->vals[i].i == lo)
                return false;
        return true;
    }
    return true;
}

static bool range_may_match_float(const segment_pred *p, double lo, double hi, bool has_nan)
{
    /* NaN rows satisfy only != and not in. */
    switch (p->op) {
    case SEGMENT_PRED_EQ: return lo <= p->vals[0].f && p->vals[0].f <= hi;
    case SEGMENT_PRED_NE: return has_nan || !(lo == hi && lo == p->vals[0].f);
    case SEGMENT_PRED_LT: return lo < p->vals[0].f;
    case SEGMENT_PRED_LE: return lo <= p->vals[0].f;
    case SEGMENT_PRED_GT: return hi > p->vals[0].f;
    case SEGMENT_PRED_GE: return hi >= p->vals[0].f;
    case SEGMENT_PRED_IN:
        for (uint32_t i = 0; i < p->nvals; i++)
            if (lo <= p->vals[i].f && p->vals[i].f <= hi)
                return true;
        return false;
    case SEGMENT_PRED_NOT_IN:
        if (has_nan || lo != hi)
            return true;
        for (uint32_t i = 0; i < p->nvals; i++)
            if (p->vals[i].f == lo)
                return false;
        return true;
    }
    return true;
}

/* Codes c with match(c) form, for comparisons, a contiguous range [from, to). */
static void str_code_range(const segment *s, const segment_pred *p, uint32_t *from, uint32_t *to)
{
    uint32_t n = segment_dict_size(s, p->col);
    strata_str v = p->vals[0].s;
    uint32_t lb = segment_dict_lower_bound(s, p->col, v.ptr, v.len);
    bool found = lb < n && strata_str_cmp(segment_dict_value(s, p->col, lb), v) == 0;
    uint32_t ub = lb + (found ? 1 : 0); /* first code > v */
    switch (p->op) {
    case SEGMENT_PRED_EQ: *from = lb; *to = ub; break;
    case SEGMENT_PRED_LT: *from = 0; *to = lb; break;
    case SEGMENT_PRED_LE: *from = 0; *to = ub; break;
    case SEGMENT_PRED_GT: *from = ub; *to = n; break;
    case SEGMENT_PRED_GE: *from = lb; *to = n; break;
    default: *from = 0; *to = n; break;
    }
}

static bool granule_may_match(const segment *s, const segment_pred *p, uint32_t g)
{
    const strata_schema *sc = segment_schema(s);
    if (p->col < 0 || p->col >= sc->ncols)
        return true;
    if (p->nvals < 1)
        return p->op == SEGMENT_PRED_NOT_IN; /* IN () matches nothing, NOT IN () everything */
    const segment_granule_meta *gr = segment_granule(s, p->col, g);
    strata_type t = sc->cols[p->col].type;
    if (t == STRATA_BYTES)
        return true; /* opaque values: nothing to prune by */
    if (strata_type_is_int(t))
        return range_may_match_int(t, p, (int64_t)gr->min, (int64_t)gr->max);
    if (t == STRATA_FLOAT64) {
        double lo, hi;
        memcpy(&lo, &gr->min, 8);
        memcpy(&hi, &gr->max, 8);
        return range_may_match_float(p, lo, hi, gr->flags & SEGMENT_GRANULE_HAS_NAN);
    }
    uint32_t lo = (uint32_t)gr->min, hi = (uint32_t)gr->max;
    if (p->op == SEGMENT_PRED_IN || p->op == SEGMENT_PRED_NOT_IN) {
        bool any_in = false, single_excluded = false;
        for (uint32_t i = 0; i < p->nvals; i++) {
            int64_t code = segment_dict_find(s, p->col, p->vals[i].s.ptr, p->vals[i].s.len);
            if (code >= lo && code <= hi)
                any_in = true;
            if (lo == hi && code == lo)
                single_excluded = true;
        }
        return p->op == SEGMENT_PRED_IN ? any_in : !single_excluded;
    }
    if (p->op == SEGMENT_PRED_NE) {
        int64_t code = segment_dict_find(s, p->col, p->vals[0].s.ptr, p->vals[0].s.len);
        return !(lo == hi && code == lo);
    }
    uint32_t from, to;
    str_code_range(s, p, &from, &to);
    return from < to && from <= hi && lo < to;
}

void segment_prune_granules(const segment *s, const segment_pred *preds, int npreds, uint8_t *keep)
{
    for (uint32_t g = 0; g < segment_ngranules(s); g++) {
        keep[g] = 1;
        for (int i = 0; i < npreds && keep[g]; i++)
            keep[g] = granule_may_match(s, &preds[i], g);
    }
}

roaring_bitmap_t *segment_pred_rows(const segment *s, const segment_pred *p)
{
    const strata_schema *sc = segment_schema(s);
    if (p->col < 0 || p->col >= sc->ncols || sc->cols[p->col].type != STRATA_STRING)
        return NULL;
    uint32_t dict_n = segment_dict_size(s, p->col);
    const roaring_bitmap_t **pick = malloc(sizeof *pick * (dict_n ? dict_n : 1));
    if (!pick)
        return NULL;
    size_t n = 0;
    for (uint32_t code = 0; code < dict_n; code++)
        if (segment_pred_match_str(p, segment_dict_value(s, p->col, code)))
            pick[n++] = segment_dict_bitmap(s, p->col, code);
    roaring_bitmap_t *r = n ? roaring_bitmap_or_many(n, pick) : roaring_bitmap_create();
    free(pick);
    return r;
}
