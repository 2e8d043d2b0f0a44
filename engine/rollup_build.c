/*
 * rollup_build.c — materializes rollup buckets (rollup.h) from a table's raw rows:
 * seals the buckets the watermark has passed and rebuilds dirty ones.
 *
 * A job (rollup_job_next) is either a range to seal or a list of dirty buckets. Its
 * buckets are computed by the query engine itself: one query over a table snapshot taken
 * after the job set its horizon, grouped by (tier interval, the tier's dimensions), with
 * the tier's states as aggregates (rollup_tier_states). Like any query it reads a finer
 * tier that covers it where that is cheaper (the 1h tier from the 1m tier), and raw rows
 * for the rest. So a bucket's states are made
 * from the deduplicated rows (superseded rows and deletions skipped, as every scan
 * does) by the very code a raw query runs, and merging them later gives what one pass
 * gives. Each group of the scan becomes a row of its bucket: its dimension strings
 * interned in the tier's dictionaries, its states moved (sketches and all) into the
 * bucket (a quantile's sketch packed: its non-empty buckets only). Scans run on one thread, and a seal takes at most ROLLUP_STEP_MS of time at
 * once, so a table opened with years of rows builds its tiers in steps while the
 * merge thread goes on with its other work.
 */
#include "engine/rollup_build.h"

#include <stdlib.h>
#include <string.h>

#include "engine/clock.h"
#include "engine/query_ctx.h"
#include "engine/query_rollup.h"
#include "engine/rollup.h"
#include "engine/sketch.h"

/* The earliest event time of t's rows at or after from (a source that starts before
 * from and ends after it counts as from); INT64_MAX when there is none. */
static int64_t earliest_time(strata_table *t, int64_t from)
{
    table_snapshot *s = table_snapshot_acquire(t, from, INT64_MAX);
    int64_t first = INT64_MAX;
    for (uint32_t i = 0; s && i < s->nparts && first == INT64_MAX; i++) {
        const snapshot_part *p = &s->parts[i];
        for (uint32_t j = 0; j < p->nsegs; j++) {
            const segment *g = p->segs[j];
            if (segment_nrows(g) > 0 && segment_max_time(g) >= from)
                first = segment_min_time(g) < first ? segment_min_time(g) : first;
        }
        for (uint32_t j = 0; j < p->nmts; j++)
            if (p->mt_rows[j] > 0 && memtable_max_time(p->mts[j]) >= from)
                first = memtable_min_time(p->mts[j]) < first ? memtable_min_time(p->mts[j]) : first;
    }
    table_snapshot_release(s);
    return first == INT64_MAX || first >= from ? first : from;
}

/* The latest event time of t's rows before `before` (a source that reaches past it
 * counts as just before it); INT64_MIN when there is none. */
static int64_t latest_time_before(strata_table *t, int64_t before)
{
    table_snapshot *s = table_snapshot_acquire(t, INT64_MIN, before);
    int64_t last = INT64_MIN;
    for (uint32_t i = 0; s && i < s->nparts; i++) {
        const snapshot_part *p = &s->parts[i];
        for (uint32_t j = 0; j < p->nsegs; j++) {
            const segment *g = p->segs[j];
            if (segment_nrows(g) > 0 && segment_min_time(g) < before)
                last = segment_max_time(g) > last ? segment_max_time(g) : last;
        }
        for (uint32_t j = 0; j < p->nmts; j++)
            if (p->mt_rows[j] > 0 && memtable_min_time(p->mts[j]) < before)
                last = memtable_max_time(p->mts[j]) > last ? memtable_max_time(p->mts[j]) : last;
    }
    table_snapshot_release(s);
    return last == INT64_MIN || last < before ? last : before - 1;
}

typedef struct bucket_list {
    rollup_bucket **b;
    uint32_t n, cap;
} bucket_list;

typedef struct group_ref {
    int64_t start; /* the group's bucket */
    uint32_t g;
} group_ref;

static int by_bucket(const void *pa, const void *pb)
{
    const group_ref *a = pa, *b = pb;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    return a->g < b->g ? -1 : a->g > b->g;
}

/* The buckets of [from, to) of tier ti, scanned from snap, appended to out. */
static int build_range(rollup_set *rs, int ti, const strata_schema *sc, const table_snapshot *snap, int64_t from,
                       int64_t to, bucket_list *out, strata_err *err)
{
    const strata_rollup *r = &sc->rollups[ti];
    strata_query q;
    query_init(&q);
    q.from_ms = from;
    q.to_ms = to;
    q.interval_ms = r->interval_ms;
    q.source = QUERY_SOURCE_RAW;
    q.threads = 1;
    q.ngroup = r->ndims;
    for (int d = 0; d < r->ndims; d++)
        q.group_cols[d] = r->dims[d];
    rollup_tier_states(sc, r, q.aggs, &q.naggs);
    /* From a finer tier when one covers this one (the 1h tier from the 1m tier): its clean
     * buckets hold the same states a scan would make; raw rows for the rest. */
    char why[8];
    unsigned covering = qrollup_covering(&q, sc, why, sizeof why) & ~(1u << ti);
    strata_query qs[QROLLUP_MAX_RANGES];
    exec x;
    qexec_served used;
    int rc = qexec_run_states(&q, sc, snap, covering, false, clock_mono_ms_frac(), qs, &x, &used, err);
    if (rc)
        return rc;
    uint64_t ng = x.groups.n;
    uint32_t klen = x.groups.klen, na = x.groups.naggs;
    group_ref *idx = malloc(sizeof *idx * (ng + 1));
    if (!idx) {
        qctx_free(&x);
        return strata_err_set(err, STRATA_ENOMEM, "rollup: out of memory");
    }
    for (uint64_t g = 0; g < ng; g++)
        idx[g] = (group_ref){(int64_t)x.groups.keys[g * klen], (uint32_t)g};
    qsort(idx, ng, sizeof *idx, by_bucket);
    for (uint64_t i = 0; i < ng && !rc;) {
        int64_t start = idx[i].start;
        uint64_t e = i;
        while (e < ng && idx[e].start == start)
            e++;
        rollup_bucket *b = rollup_bucket_new(rs, ti, start, (uint32_t)(e - i));
        if (!b || (out->n == out->cap && !(out->b = realloc(out->b, sizeof *out->b * (out->cap = out->cap ? out->cap * 2 : 64))))) {
            rollup_bucket_unref(rs, ti, b);
            rc = strata_err_set(err, STRATA_ENOMEM, "rollup: out of memory");
            break;
        }
        out->b[out->n++] = b;
        for (uint64_t k = i; k < e && !rc; k++) {
            uint32_t row = (uint32_t)(k - i);
            const uint64_t *key = x.groups.keys + (uint64_t)idx[k].g * klen;
            for (int d = 0; d < r->ndims; d++) {
                uint32_t code = rollup_dict_intern(rs, ti, d, x.pool.items[key[1 + d]]);
                if (code == UINT32_MAX) {
                    rc = strata_err_set(err, STRATA_ENOMEM, "rollup: out of memory (or over %u distinct values of '%s')",
                                        ROLLUP_DICT_CHUNK * ROLLUP_DICT_CHUNKS, sc->cols[r->dims[d]].name);
                    break;
                }
                b->dims[(uint64_t)row * (uint64_t)r->ndims + (uint64_t)d] = code;
            }
            agg_state *src = x.groups.states + (uint64_t)idx[k].g * na;
            for (uint32_t s = 0; s < na && !rc; s++) {
                agg_state *dst = &b->states[(uint64_t)row * na + s];
                *dst = src[s];
                src[s].sk = NULL; /* the bucket's now */
                if (dst->sk && q.aggs[s].fn == STRATA_AGG_QUANTILE) {
                    /* kept packed (rollup.h): its non-empty buckets only */
                    dds_packed *pk = dds_pack(dst->sk);
                    dds_free(dst->sk);
                    dst->sk = pk;
                    if (!pk)
                        rc = strata_err_set(err, STRATA_ENOMEM, "rollup: out of memory");
                    b->bytes += dds_packed_bytes(pk);
                } else if (dst->sk && q.aggs[s].fn == STRATA_AGG_UNIQ) {
                    hll_shrink(dst->sk);
                    b->bytes += hll_bytes(dst->sk);
                }
            }
        }
        i = e;
    }
    free(idx);
    qctx_free(&x);
    return rc;
}

static int run_job(strata_table *t, rollup_set *rs, rollup_job *job, strata_err *err)
{
    const strata_schema *sc = table_schema(t);
    int64_t I = sc->rollups[job->tier].interval_ms;
    int64_t lo = job->whole ? job->from : job->dirty[0];
    int64_t hi = job->whole ? job->to : job->dirty[job->ndirty - 1] + I;
    table_snapshot *snap = table_snapshot_acquire(t, lo, hi); /* after the job set its horizon */
    if (!snap)
        return strata_err_set(err, STRATA_ENOMEM, "rollup: out of memory");
    bucket_list bl = {0};
    int rc = 0;
    if (job->whole) {
        rc = build_range(rs, job->tier, sc, snap, job->from, job->to, &bl, err);
    } else {
        for (uint32_t i = 0; i < job->ndirty && !rc;) { /* runs of adjacent dirty buckets */
            uint32_t e = i + 1;
            while (e < job->ndirty && job->dirty[e] == job->dirty[e - 1] + I)
                e++;
            rc = build_range(rs, job->tier, sc, snap, job->dirty[i], job->dirty[e - 1] + I, &bl, err);
            i = e;
        }
    }
    table_snapshot_release(snap);
    if (!rc)
        rc = rollup_job_commit(rs, job, bl.b, bl.n);
    else
        for (uint32_t i = 0; i < bl.n; i++)
            rollup_bucket_unref(rs, job->tier, bl.b[i]);
    if (rc == STRATA_ENOMEM && !err->code)
        strata_err_set(err, rc, "rollup: out of memory");
    free(bl.b);
    return rc;
}

int rollup_advance(strata_table *t, const _Atomic bool *stop, uint32_t max_jobs, rollup_advance_report *rep,
                   strata_err *err)
{
    memset(rep, 0, sizeof *rep);
    rollup_set *rs = table_rollups(t);
    if (!rs)
        return 0;
    const strata_schema *sc = table_schema(t);
    int64_t now = clock_wall_ms(), mt = table_latest_time(t, now);
    int64_t watermark = mt == INT64_MIN ? INT64_MIN : mt - sc->lateness_ms;
    /* Rows older than retention.raw go at the next sweep: nothing can still change there,
     * so the tiers seal up to it even when no newer event moves the watermark (tiers that
     * outlive raw rows must hold them before they expire). */
    if (watermark != INT64_MIN && sc->retention_raw_ms > 0 && now - sc->retention_raw_ms > watermark)
        watermark = now - sc->retention_raw_ms;
    for (int ti = 0; ti < rollup_set_ntiers(rs); ti++) {
        for (uint32_t j = 0; j < max_jobs && !(stop && atomic_load(stop)); j++) {
            rollup_tier_stats ts;
            rollup_get_stats(rs, ti, &ts);
            if (watermark == INT64_MIN || (ts.sealed_through != INT64_MIN && ts.sealed_through + ts.interval_ms > watermark &&
                                           ts.dirty == 0 && !ts.backfill))
                break; /* nothing to seal, rebuild or backfill */
            int64_t first = earliest_time(t, ts.sealed_through); /* INT64_MIN when never built */
            int64_t last_before = ts.backfill ? latest_time_before(t, ts.built_from) : INT64_MIN;
            rollup_job job;
            int rc = rollup_job_next(rs, ti, watermark, first, last_before, ROLLUP_STEP_MS, ROLLUP_DIRTY_PER_JOB,
                                     &job);
            if (rc == STRATA_ENOTFOUND)
                break;
            if (rc)
                return strata_err_set(err, rc, "rollup: out of memory");
            double t0 = clock_mono_ms_frac();
            rc = run_job(t, rs, &job, err);
            if (rc) {
                rollup_job_abandon(rs, &job);
                rollup_job_free(&job);
                return rc;
            }
            rollup_note_build(rs, ti, (uint64_t)((clock_mono_ms_frac() - t0) * 1e6), job.whole ? 0 : job.ndirty);
            rep->jobs++;
            if (job.whole)
                rep->sealed_buckets += (uint64_t)((job.to - job.from) / sc->rollups[ti].interval_ms);
            else
                rep->rebuilt_buckets += job.ndirty;
            rollup_job_free(&job);
        }
    }
    return 0;
}
