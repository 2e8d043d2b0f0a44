/*
 * query_rollup.h — internal to the query_*.c files (the public API is engine/query.h):
 * how a query uses a rollup tier (engine/rollup.h).
 *
 * qrollup_covering finds the tiers that cover the query's shape: the tier's interval
 * divides the query's (any tier when the query has none), its dimensions hold every
 * group_by and where column, and it keeps the state of every aggregate. qrollup_pick
 * chooses among them by the rows each would have the query read. qrollup_split_range
 * cuts the query's range between the tier (whole sealed clean buckets) and raw rows (the
 * edges not aligned to the tier, the buckets not sealed yet, the dirty ones).
 * qrollup_merge adds the tier's rows of the served buckets that pass the where tree into
 * an exec's groups, merging their states as a scan's threads merge theirs: the answer is
 * what a scan of the same rows gives.
 *
 * Ownership: nothing here allocates beyond the exec it fills (its groups, pool and
 * sketches, freed with it) and scratch freed before returning.
 */
#ifndef STRATA_QUERY_ROLLUP_H
#define STRATA_QUERY_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#include "engine/query_ctx.h"
#include "engine/rollup.h"

#define QROLLUP_MAX_RANGES 16 /* raw ranges beside a tier; more dirty runs: all raw */

/* The tiers of sc whose shape covers q, as a bit mask (bit i: tier i); 0 with the
 * reasons each tier cannot in why. */
unsigned qrollup_covering(const strata_query *q, const strata_schema *sc, char *why, size_t cap);

typedef struct qrollup_split {
    int64_t from, to;   /* the tier serves its clean buckets in [from, to); from == to: none */
    uint32_t nraw;      /* raw rows serve these ranges */
    int64_t raw[QROLLUP_MAX_RANGES][2];
    uint64_t dirty;     /* dirty buckets in [from, to), served raw */
} qrollup_split;

/* Splits q's range between tier view tv (interval I) and raw rows. */
void qrollup_split_range(const strata_query *q, const rollup_tier_view *tv, int64_t I, qrollup_split *sp);

/* Which of the covering tiers answers q over snap, and how (*sp): the one whose clean
 * buckets in range hold the fewest rows, when reading them costs less than reading the
 * raw rows they stand for (a tier row is weighed as QROLLUP_ROW_COST raw rows, and
 * QROLLUP_SKETCH_ROW_COST when q merges sketches: uniq, quantile); with force (source
 * rollup), the one with the fewest rows whatever it costs. -1 (and *sp all raw) when none
 * serves. */
int qrollup_pick(const strata_query *q, const strata_schema *sc, const table_snapshot *snap, unsigned covering,
                 bool force, qrollup_split *sp /* OUT */, const char **why /* OUT */);

#define QROLLUP_ROW_COST 3
#define QROLLUP_SKETCH_ROW_COST 32

/* Merges the tier's rows of sp's clean buckets into x (q's groups). *buckets, *rows:
 * the buckets (with rows) and rows read. 0, or an error in x->err. */
int qrollup_merge(exec *x, const rollup_view *v, int tier, const qrollup_split *sp,
                  uint64_t *buckets /* OUT */, uint64_t *rows /* OUT */);

/* What served a query: the tier (-1: none), the split, the tier's buckets and rows read. */
typedef struct qexec_served {
    int tier;
    const char *why; /* tier -1 with covering tiers: why none served (a static string) */
    qrollup_split sp;
    uint64_t buckets, rows;
} qexec_served;

/* Runs checked query q over snap with the covering tiers (qrollup_covering's mask; 0: raw
 * rows only; force: source rollup) into *x: the raw ranges scanned, the tier's clean
 * buckets merged in. qs: room for QROLLUP_MAX_RANGES query copies that x refers to until
 * the caller frees it (qctx_free). 0, or an error (nothing to free). (query_exec.c) */
int qexec_run_states(const strata_query *q, const strata_schema *sc, const table_snapshot *snap, unsigned covering,
                     bool force, double t0, strata_query *qs, exec *x /* OUT */, qexec_served *used /* OUT */,
                     strata_err *err);

#endif
