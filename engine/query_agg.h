/*
 * query_agg.h — internal to the query_*.c files (the public API is engine/query.h): the
 * state of one aggregate for one group, and how it is updated, merged and finished.
 *
 * count counts rows; sum and avg keep an exact int64 (or uint64) sum with overflow checks
 * for integer columns and a Neumaier-compensated float sum otherwise (avg always the
 * float one); min and max keep the value in the column's kind; uniq keeps a HyperLogLog
 * and quantile a DDSketch (engine/sketch.h). The per-row update reads the scan's decoded
 * block, so it lives with the scan loop (query_scan.c: agg_update), inline, built from the
 * inline helpers here that merging uses too.
 *
 * Ownership: states live in a group table's states array (query_groups.h), zeroed when a
 * group is made. A state's sketch is allocated by the first update that needs it,
 * moved or merged by qagg_merge, and freed by qagg_state_free, which the owner of the
 * group table calls for every state before freeing the table.
 */
#ifndef STRATA_QUERY_AGG_H
#define STRATA_QUERY_AGG_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/query.h"
#include "engine/sketch.h"

/* (typedef'd as agg_state in query_groups.h) */
typedef struct agg_state agg_state; /* C11: the same typedef as query_groups.h */
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

/* agg_src[a] for each aggregate of q: a itself, or an earlier aggregate whose state a
 * reads: quantiles of one column share a sketch, sum and avg of one float column share a
 * sum. Only the states of aggregates with agg_src[a] == a are updated and merged. */
void qagg_shared_states(const strata_query *q, const strata_schema *sc, int *agg_src /* OUT */);

/* Adds src into dst (the same aggregate a, of two groups with one key). Moves or merges
 * sketches: src may be left without its sketch. 0, STRATA_EINVAL when an integer sum
 * overflows, STRATA_ENOMEM. */
int qagg_merge(const strata_schema *sc, const query_agg *a, agg_state *dst, agg_state *src);

/* Adds src into dst like qagg_merge, leaving src as it was (its sketch is merged into
 * one of dst's own). *grown: bytes dst's sketch grew by. 0, STRATA_EINVAL, STRATA_ENOMEM. */
int qagg_merge_from(const strata_schema *sc, const query_agg *a, agg_state *dst, const agg_state *src,
                    uint64_t *grown /* OUT */);

/* The answer of aggregate a from state s (null where it saw no value). */
void qagg_final_cell(const strata_schema *sc, const query_agg *a, const agg_state *s,
                     query_cell *c /* OUT */);

/* The result type name of aggregate a (a static string). */
const char *qagg_type(const strata_schema *sc, const query_agg *a);

/* Frees the sketch s holds as the state of aggregate a (if any). */
void qagg_state_free(const query_agg *a, agg_state *s);

#endif
