/*
 * test_rollup.c — rollup tiers (engine/rollup.h, rollup_build.h, query_rollup.h):
 *   - the bookkeeping: the horizon a seal sets before its snapshot, dirty marks and
 *     their generations (a bucket marked again while it is rebuilt stays dirty), views
 *     that do not change under their reader, retention forgetting buckets;
 *   - packed quantile sketches merge exactly like the sketch they came from;
 *   - through a real table: random rows with late ones, newer versions and deletions,
 *     tiers advanced between batches, and random queries with source auto equal to the
 *     same query with source raw (count, min, max, integer sums exactly, float sums
 *     within 1e-9 relative, uniq and quantile identical), a fair share served by a tier;
 *   - appends, tier builds and queries on three threads at once (label concurrent);
 *   - tiers on disk (engine/rollup_store.h): saved after each build, merged as deltas pile
 *     up, restored at open exactly (same buckets, nothing built again, answers equal),
 *     rows flushed after the last save marking their buckets dirty at open, files a save
 *     cut short left behind removed, optimize leaving one segment per tier partition.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/query.h"
#include "engine/rollup.h"
#include "engine/rollup_build.h"
#include "engine/rollup_store.h"
#include "engine/schema_json.h"
#include "engine/sketch.h"
#include "engine/table.h"
#include "test.h"

#define MIN INT64_C(60000)
#define HOUR INT64_C(3600000)
#define D0 INT64_C(1704067200000) /* 2024-01-01 */

static const char *SCHEMA =
    "{\"columns\":[{\"name\":\"ts\",\"type\":\"timestamp\"},{\"name\":\"id\",\"type\":\"int64\"},"
    "{\"name\":\"country\",\"type\":\"string\"},{\"name\":\"amount\",\"type\":\"float64\"},"
    "{\"name\":\"qty\",\"type\":\"int64\"},{\"name\":\"version\",\"type\":\"int64\"},"
    "{\"name\":\"del\",\"type\":\"bool\"}],"
    "\"time_column\":\"ts\",\"dedup_key\":[\"id\",\"ts\"],\"version\":\"version\",\"deleted\":\"del\","
    "\"lateness\":\"2m\",\"storage\":{\"memtable_rows\":700},"
    "\"rollups\":[{\"interval\":\"1m\",\"dimensions\":[\"country\"],\"metrics\":[{\"fn\":\"count\"},"
    "{\"fn\":\"sum\",\"column\":\"amount\"},{\"fn\":\"sum\",\"column\":\"qty\"},{\"fn\":\"min\",\"column\":\"amount\"},"
    "{\"fn\":\"max\",\"column\":\"qty\"},{\"fn\":\"uniq\",\"column\":\"id\"},{\"fn\":\"quantile\",\"column\":\"amount\"}]},"
    "{\"interval\":\"1h\",\"metrics\":[{\"fn\":\"count\"},{\"fn\":\"sum\",\"column\":\"qty\"}]}]}";

enum { C_TS, C_ID, C_COUNTRY, C_AMOUNT, C_QTY, C_VERSION, C_DEL };

static void load_schema(strata_schema *s)
{
    strata_err err = {0};
    ASSERT_EQ(schema_json_parse_named(SCHEMA, strlen(SCHEMA), "r", s, &err), 0);
}

/* A fresh table of SCHEMA (into *s; retention.1m as given) in a new directory
 * $STRATA_TEST_TMP/NAME-PID, written into dir. */
static strata_table *open_table_at(const char *name, strata_schema *s, int64_t retention_1m_ms, char *dir, size_t cap)
{
    test_tmpdir(dir, cap, name);
    load_schema(s);
    s->retention_1m_ms = retention_1m_ms;
    strata_table *t = NULL;
    strata_err err = {0};
    ASSERT_EQ(table_open(dir, s, &t, &err), 0);
    return t;
}

static strata_table *open_table(const char *name, strata_schema *s)
{
    char dir[512];
    return open_table_at(name, s, 0, dir, sizeof dir);
}

/* ---- bookkeeping --------------------------------------------------------------------- */

/* rollup_job_next without a latest row before built_from (backfills step by max_span). */
static int rollup_job_next_(rollup_set *rs, int ti, int64_t watermark, int64_t first_ms, int64_t max_span,
                            uint32_t max_dirty, rollup_job *job)
{
    return rollup_job_next(rs, ti, watermark, first_ms, INT64_MIN, max_span, max_dirty, job);
}

TEST(dirty_marks_generations_and_views)
{
    strata_schema s;
    load_schema(&s);
    rollup_set *rs = rollup_set_create(&s);
    ASSERT(rs != NULL);
    rollup_job job;
    /* nothing to do before there are rows */
    ASSERT_EQ(rollup_job_next_(rs, 0, INT64_MIN, INT64_MAX, 0, 8, &job), STRATA_ENOTFOUND);
    /* a seal of [D0, D0 + 10m): the horizon moves before the snapshot */
    ASSERT_EQ(rollup_job_next_(rs, 0, D0 + 10 * MIN + 5, D0 + 7, 0, 8, &job), 0);
    ASSERT(job.whole);
    ASSERT(job.from == D0 && job.to == D0 + 10 * MIN);
    int64_t ts[] = {D0 + 3 * MIN + 1, D0 + 20 * MIN, D0 - 5};
    rollup_note_rows(rs, ts, NULL, 3); /* a row the seal's snapshot may miss: dirty */
    rollup_view *v0 = rollup_view_acquire(rs);
    ASSERT(v0 && v0->tiers[0].sealed_through == D0 && v0->tiers[0].ndirty == 1);
    rollup_bucket *b = rollup_bucket_new(rs, 0, D0 + 4 * MIN, 1);
    ASSERT(b != NULL);
    b->dims[0] = rollup_dict_intern(rs, 0, 0, (strata_str){"US", 2});
    b->states[0].n = 5;
    ASSERT_EQ(rollup_job_commit(rs, &job, &b, 1), 0);
    rollup_job_free(&job);
    rollup_view *v1 = rollup_view_acquire(rs);
    ASSERT(v1->tiers[0].sealed_through == D0 + 10 * MIN && v1->tiers[0].nb == 1);
    ASSERT(v1->tiers[0].ndirty == 1 && v1->tiers[0].dirty[0] == D0 + 3 * MIN);
    ASSERT(v0->tiers[0].nb == 0 && v0->tiers[0].sealed_through == D0); /* v0 unchanged */
    strata_str us = rollup_dict_value(rs, 0, 0, v1->tiers[0].b[0]->dims[0]);
    ASSERT(us.len == 2 && memcmp(us.ptr, "US", 2) == 0);
    /* the dirty bucket is rebuilt; a mark while it is rebuilt keeps it dirty */
    ASSERT_EQ(rollup_job_next_(rs, 0, D0 + 10 * MIN + 5, D0, 0, 8, &job), 0);
    ASSERT(!job.whole && job.ndirty == 1 && job.dirty[0] == D0 + 3 * MIN);
    int64_t again[] = {D0 + 3 * MIN + 9};
    rollup_note_rows(rs, again, NULL, 1);
    ASSERT_EQ(rollup_job_commit(rs, &job, NULL, 0), 0);
    rollup_job_free(&job);
    rollup_tier_stats st;
    rollup_get_stats(rs, 0, &st);
    ASSERT_U64_EQ(st.dirty, 1);
    ASSERT_EQ(rollup_job_next_(rs, 0, D0 + 10 * MIN + 5, D0, 0, 8, &job), 0);
    ASSERT_EQ(rollup_job_commit(rs, &job, NULL, 0), 0);
    rollup_job_free(&job);
    rollup_get_stats(rs, 0, &st);
    ASSERT_U64_EQ(st.dirty, 0);
    /* the row before built_from (D0 - 5) makes the tier build back to it; a mark in the
     * backfill's range while it runs stays */
    ASSERT(st.backfill);
    ASSERT_EQ(rollup_job_next_(rs, 0, D0 + 10 * MIN + 5, D0, 0, 8, &job), 0);
    ASSERT(job.whole && job.backfill && job.from == D0 - MIN && job.to == D0);
    int64_t during[] = {D0 - 30000};
    rollup_note_rows(rs, during, NULL, 1);
    rollup_bucket *old = rollup_bucket_new(rs, 0, D0 - MIN, 1);
    ASSERT(old != NULL);
    old->dims[0] = v1->tiers[0].b[0]->dims[0];
    ASSERT_EQ(rollup_job_commit(rs, &job, &old, 1), 0);
    rollup_job_free(&job);
    rollup_get_stats(rs, 0, &st);
    ASSERT(!st.backfill && st.built_from == D0 - MIN && st.buckets == 2 && st.dirty == 1);
    ASSERT_EQ(rollup_job_next_(rs, 0, D0 + 10 * MIN + 5, D0, 0, 8, &job), 0);
    ASSERT(!job.whole && job.ndirty == 1 && job.dirty[0] == D0 - MIN);
    ASSERT_EQ(rollup_job_commit(rs, &job, NULL, 0), 0); /* rebuilt: no rows after all */
    rollup_job_free(&job);
    rollup_get_stats(rs, 0, &st);
    ASSERT(st.buckets == 1 && st.dirty == 0);
    /* the seal's range grows no further than the watermark; a span limit cuts it */
    ASSERT_EQ(rollup_job_next_(rs, 0, D0 + 10 * MIN + 5, D0, 0, 8, &job), STRATA_ENOTFOUND);
    ASSERT_EQ(rollup_job_next_(rs, 0, D0 + 100 * MIN, D0, 30 * MIN, 8, &job), 0);
    ASSERT(job.whole && job.from == D0 + 10 * MIN && job.to == D0 + 40 * MIN);
    rollup_job_abandon(rs, &job); /* a failed seal: the range stays unsealed */
    rollup_job_free(&job);
    rollup_get_stats(rs, 0, &st);
    ASSERT(st.sealed_through == D0 + 10 * MIN);
    /* nine days without rows before the next one: sealed in the same job as its first step */
    int64_t day = 24 * HOUR;
    ASSERT_EQ(rollup_job_next_(rs, 0, D0 + 10 * day, D0 + 9 * day + 5 * MIN + 7, 30 * MIN, 8, &job), 0);
    ASSERT(job.whole && job.from == D0 + 10 * MIN && job.to == D0 + 9 * day + 35 * MIN);
    rollup_job_abandon(rs, &job);
    rollup_job_free(&job);
    /* retention forgets what the raw rows lost (a straddled bucket too) */
    rollup_forget_before(rs, D0 + 4 * MIN + 30000);
    rollup_get_stats(rs, 0, &st);
    ASSERT(st.built_from == D0 + 5 * MIN && st.buckets == 0);
    int64_t expired[] = {D0 + MIN}; /* before what retention kept: no backfill */
    rollup_note_rows(rs, expired, NULL, 1);
    rollup_get_stats(rs, 0, &st);
    ASSERT(!st.backfill);
    ASSERT(v1->tiers[0].nb == 1 && v1->tiers[0].b[0]->states[0].n == 5); /* a reader's view stays */
    rollup_view_release(v0);
    rollup_view_release(v1);
    rollup_set_free(rs);
}

/* One event stamped years ahead as a table's first row: the tier starts at the
 * watermark, not there; older rows then reach back in one job across the empty years. */
TEST(far_future_first_row_and_backfill_across_empty_years)
{
    strata_schema s;
    load_schema(&s);
    rollup_set *rs = rollup_set_create(&s);
    rollup_job job;
    int64_t year = 365 * 24 * HOUR, future = D0 + 70 * year, wm = D0 + 3 * year;
    ASSERT_EQ(rollup_job_next(rs, 0, wm, future, INT64_MIN, 24 * HOUR, 8, &job), STRATA_ENOTFOUND);
    rollup_tier_stats st;
    rollup_get_stats(rs, 0, &st);
    ASSERT(st.built_from == wm - wm % MIN && st.sealed_through == st.built_from);
    int64_t old[] = {D0 + 5 * MIN};
    rollup_note_rows(rs, old, NULL, 1);
    rollup_get_stats(rs, 0, &st);
    ASSERT(st.backfill);
    /* the latest row before built_from is D0 + 5m: one job covers the empty years too */
    ASSERT_EQ(rollup_job_next(rs, 0, wm, INT64_MAX, D0 + 5 * MIN, 24 * HOUR, 8, &job), 0);
    ASSERT(job.backfill && job.to == st.built_from && job.from == D0 + 5 * MIN);
    ASSERT_EQ(rollup_job_commit(rs, &job, NULL, 0), 0);
    rollup_job_free(&job);
    rollup_get_stats(rs, 0, &st);
    ASSERT(!st.backfill && st.built_from == D0 + 5 * MIN);
    rollup_set_free(rs);
}

TEST(packed_quantile_sketch_merges_exactly)
{
    uint64_t seed = 7;
    ddsketch *a = dds_create(), *b = dds_create(), *via_sketch = dds_create(), *via_packed = dds_create();
    ASSERT(a && b && via_sketch && via_packed);
    for (int i = 0; i < 5000; i++) {
        double v = ((double)(test_rand_next(&seed) % 200000) - 50000) / 7.0;
        ASSERT(dds_add(i % 3 ? a : b, i % 97 == 0 ? 0.0 : v));
    }
    ASSERT(dds_merge(via_sketch, a) && dds_merge(via_sketch, b));
    dds_packed *pa = dds_pack(a), *pb = dds_pack(b);
    ASSERT(pa && pb);
    ASSERT(dds_packed_bytes(pa) < dds_bytes(a) + 4096);
    ASSERT(dds_merge_packed(via_packed, pa) && dds_merge_packed(via_packed, pb));
    for (double q = 0; q <= 1.0; q += 0.01)
        ASSERT_DBL_EQ(dds_quantile(via_sketch, q), dds_quantile(via_packed, q));
    ASSERT_U64_EQ(via_sketch->count, via_packed->count);
    free(pa);
    free(pb);
    dds_free(a);
    dds_free(b);
    dds_free(via_sketch);
    dds_free(via_packed);
}

/* ---- through a table ----------------------------------------------------------------- */

static const char *const COUNTRIES[] = {"US", "DE", "FR", "JP"};

typedef struct sent {
    int64_t id, ts, version;
} sent;

static void append_rows(strata_table *t, const strata_schema *s, uint64_t *seed, sent *log, uint32_t *nlog,
                        int64_t lo, int64_t hi, uint32_t n, bool revisit)
{
    strata_err err = {0};
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, s, n), 0);
    for (uint32_t i = 0; i < n; i++) {
        int64_t r = row_batch_add_row(&b);
        ASSERT(r >= 0);
        sent e;
        if (revisit && *nlog > 0) { /* a newer (or older, or deleting) version of a sent row */
            e = log[test_rand_next(seed) % *nlog];
            e.version += (int64_t)(test_rand_next(seed) % 5) - 1;
        } else {
            e = (sent){(int64_t)*nlog + 1, lo + (int64_t)(test_rand_next(seed) % (uint64_t)(hi - lo)), 0};
        }
        log[(*nlog)++] = e;
        b.i[C_TS][r] = e.ts;
        b.i[C_ID][r] = e.id;
        b.i[C_VERSION][r] = e.version;
        b.i[C_DEL][r] = revisit && test_rand_next(seed) % 10 == 0;
        b.i[C_QTY][r] = (int64_t)(test_rand_next(seed) % 9) + 1;
        b.f[C_AMOUNT][r] = (double)(test_rand_next(seed) % 100000) / 100.0 - 20;
        const char *c = COUNTRIES[test_rand_next(seed) % 4];
        ASSERT_EQ(row_batch_set_str(&b, C_COUNTRY, (uint32_t)r, c, (uint32_t)strlen(c)), 0);
    }
    ASSERT_EQ(table_append(t, &b, &err), 0);
    row_batch_free(&b);
}

static bool cells_equal(const query_agg *a, const query_cell *x, const query_cell *y)
{
    if (x->kind != y->kind)
        return false;
    switch (x->kind) {
    case QC_NULL: return true;
    case QC_FLOAT:
        if (a && (a->fn == STRATA_AGG_SUM || a->fn == STRATA_AGG_AVG))
            return fabs(x->v.f - y->v.f) <= 1e-9 * fmax(fmax(fabs(x->v.f), fabs(y->v.f)), 1e-300);
        return x->v.f == y->v.f;
    case QC_STR: return x->v.s.len == y->v.s.len && memcmp(x->v.s.ptr, y->v.s.ptr, x->v.s.len) == 0;
    case QC_BOOL: return x->v.b == y->v.b;
    default: return x->v.u == y->v.u;
    }
}

static void random_query(strata_query *q, uint64_t *seed, const strata_schema *s)
{
    query_init(q);
    static const int64_t ivs[] = {0, MIN, 2 * MIN, 90000, HOUR, 5 * MIN, 30000};
    q->interval_ms = ivs[test_rand_next(seed) % 7];
    if (test_rand_next(seed) % 4) {
        q->from_ms = D0 + (int64_t)(test_rand_next(seed) % (uint64_t)(6 * HOUR));
        q->to_ms = q->from_ms + 1 + (int64_t)(test_rand_next(seed) % (uint64_t)(4 * HOUR));
        if (test_rand_next(seed) % 2) {
            q->from_ms -= q->from_ms % MIN;
            q->to_ms -= q->to_ms % MIN;
        }
    }
    if (test_rand_next(seed) % 2)
        q->group_cols[q->ngroup++] = C_COUNTRY;
    static const struct { strata_agg fn; int col; } aggs[] = {
        {STRATA_AGG_COUNT, -1}, {STRATA_AGG_SUM, C_AMOUNT}, {STRATA_AGG_SUM, C_QTY}, {STRATA_AGG_AVG, C_QTY},
        {STRATA_AGG_AVG, C_AMOUNT}, {STRATA_AGG_MIN, C_AMOUNT}, {STRATA_AGG_MAX, C_QTY}, {STRATA_AGG_UNIQ, C_ID},
        {STRATA_AGG_QUANTILE, C_AMOUNT}};
    int n = 1 + (int)(test_rand_next(seed) % 4);
    for (int i = 0; i < n; i++) {
        int k = (int)(test_rand_next(seed) % 9);
        query_agg *a = &q->aggs[q->naggs];
        a->fn = aggs[k].fn;
        a->col = aggs[k].col;
        a->q = (double)(test_rand_next(seed) % 101) / 100.0;
        snprintf(a->name, sizeof a->name, "a%d", q->naggs++);
    }
    if (test_rand_next(seed) % 3 == 0) {
        q->where = calloc(1, sizeof *q->where);
        q->where->kind = QX_PRED;
        q->where->vals = calloc(1, sizeof *q->where->vals);
        q->where->strs = calloc(1, sizeof *q->where->strs);
        q->where->strs[0] = strdup(COUNTRIES[test_rand_next(seed) % 4]);
        q->where->vals[0].s = (strata_str){q->where->strs[0], (uint32_t)strlen(q->where->strs[0])};
        q->where->pred = (segment_pred){.col = C_COUNTRY, .op = test_rand_next(seed) % 2 ? SEGMENT_PRED_EQ : SEGMENT_PRED_NE,
                                        .nvals = 1, .vals = q->where->vals};
    }
    (void)s;
}

/* Random queries with source auto against source raw; returns how many a tier served. */
static int compare_queries(strata_table *t, const strata_schema *s, uint64_t *seed, int n)
{
    int served = 0;
    for (int k = 0; k < n; k++) {
        strata_query q;
        random_query(&q, seed, s);
        query_result *ra = NULL, *rr = NULL;
        strata_err ea = {0}, er = {0};
        /* rollup takes a covering tier even where auto reads raw rows as cheaper */
        q.source = k % 2 ? QUERY_SOURCE_AUTO : QUERY_SOURCE_ROLLUP;
        int rc = query_run(t, &q, &ra, &ea);
        if (rc == STRATA_EINVAL && q.source == QUERY_SOURCE_ROLLUP) { /* no tier covers it */
            q.source = QUERY_SOURCE_AUTO;
            rc = query_run(t, &q, &ra, &ea);
        }
        ASSERT_EQ(rc, 0);
        q.source = QUERY_SOURCE_RAW;
        ASSERT_EQ(query_run(t, &q, &rr, &er), 0);
        served += ra->rollup_interval_ms > 0;
        ASSERT_U64_EQ(ra->nrows, rr->nrows);
        ASSERT_EQ(ra->ncols, rr->ncols);
        int first_agg = ra->ncols - q.naggs;
        for (uint64_t row = 0; row < ra->nrows; row++)
            for (int c = 0; c < ra->ncols; c++) {
                const query_agg *a = c >= first_agg ? &q.aggs[c - first_agg] : NULL;
                if (!cells_equal(a, query_result_cell(ra, row, c), query_result_cell(rr, row, c)))
                    TEST_FAIL_("query %d row %" PRIu64 " column %d (%s) differs (tier %" PRId64 " ms)", k, row, c,
                               ra->names[c], ra->rollup_interval_ms);
            }
        query_result_free(ra);
        query_result_free(rr);
        query_free(&q);
    }
    return served;
}

TEST(auto_equals_raw_over_a_changing_table)
{
    strata_schema s;
    strata_table *t = open_table("rollup", &s);
    strata_err err = {0};
    uint64_t seed = 99;
    uint32_t cap = 40000, nlog = 0;
    sent *log = calloc(cap, sizeof *log);
    int served = 0;
    for (int round = 0; round < 12; round++) {
        int64_t lo = D0 + round * 30 * MIN, hi = lo + 30 * MIN;
        append_rows(t, &s, &seed, log, &nlog, lo, hi, 1500, false);
        if (round >= 2) { /* late rows into sealed buckets, and other versions of sent ones */
            append_rows(t, &s, &seed, log, &nlog, D0, lo, 60, false);
            append_rows(t, &s, &seed, log, &nlog, 0, 0, 80, true);
        }
        served += compare_queries(t, &s, &seed, 20); /* dirty buckets, before a rebuild */
        if (round % 3 == 0)
            ASSERT_EQ(table_flush(t, true, &err), 0);
        rollup_advance_report rep;
        ASSERT_EQ(rollup_advance(t, NULL, 100, &rep, &err), 0);
        served += compare_queries(t, &s, &seed, 20);
    }
    rollup_tier_stats st;
    rollup_get_stats(table_rollups(t), 0, &st);
    ASSERT(st.valid && st.rebuilt_buckets > 0 && st.sealed_through > D0 + 5 * HOUR);
    ASSERT_GT(served, 100); /* of 480: otherwise the comparison proves little */
    table_close(t);
    free(log);
}

/* Past the memory limit the tiers forget their oldest buckets: memory stays under it,
 * the forgotten range is answered from raw rows, and answers stay equal. */
TEST(memory_limit_forgets_oldest_buckets)
{
    strata_schema s;
    strata_table *t = open_table("rollup-mem", &s);
    strata_err err = {0};
    rollup_set_memory_limit(table_rollups(t), 600 * 1024);
    uint64_t seed = 21;
    uint32_t nlog = 0;
    sent *log = calloc(20000, sizeof *log);
    for (int round = 0; round < 12; round++) {
        append_rows(t, &s, &seed, log, &nlog, D0 + round * 30 * MIN, D0 + (round + 1) * 30 * MIN, 1500, false);
        rollup_advance_report rep;
        ASSERT_EQ(rollup_advance(t, NULL, 100, &rep, &err), 0);
    }
    rollup_tier_stats a, b;
    rollup_get_stats(table_rollups(t), 0, &a);
    rollup_get_stats(table_rollups(t), 1, &b);
    ASSERT(a.forgotten_for_memory > 0);
    ASSERT_LE(a.bytes + b.bytes, 600 * 1024);
    ASSERT(a.built_from > D0 && a.sealed_through > D0 + 5 * HOUR); /* still sealing new buckets */
    ASSERT_GT(compare_queries(t, &s, &seed, 60), 5);
    table_close(t);
    free(log);
}

/* ---- beside each other ---------------------------------------------------------------- */

typedef struct conc {
    strata_table *t;
    const strata_schema *s;
    atomic_bool stop;
    atomic_int failures;
    sent *log;
    uint32_t nlog;
} conc;

/* Rows in time order with late ones and other versions mixed in (no ASSERT here: only the
 * test's own thread may jump out). */
static void *appender(void *arg)
{
    conc *c = arg;
    uint64_t seed = 5;
    strata_err err = {0};
    row_batch b;
    if (row_batch_init(&b, c->s, 256) != 0) {
        atomic_fetch_add(&c->failures, 1);
        return NULL;
    }
    for (int round = 0; round < 120; round++) {
        row_batch_clear(&b);
        for (int i = 0; i < 200; i++) {
            int64_t r = row_batch_add_row(&b);
            sent e;
            uint64_t kind = test_rand_next(&seed) % 10;
            if (kind == 0 && c->nlog) {
                e = c->log[test_rand_next(&seed) % c->nlog];
                e.version++;
            } else {
                int64_t now = D0 + round * 3 * MIN, back = kind == 1 ? 2 * HOUR : 2 * MIN;
                e = (sent){(int64_t)c->nlog + 1, now - (int64_t)(test_rand_next(&seed) % (uint64_t)back), 0};
            }
            c->log[c->nlog++] = e;
            b.i[C_TS][r] = e.ts < D0 ? D0 : e.ts;
            b.i[C_ID][r] = e.id;
            b.i[C_VERSION][r] = e.version;
            b.i[C_QTY][r] = (int64_t)(test_rand_next(&seed) % 9) + 1;
            b.f[C_AMOUNT][r] = (double)(test_rand_next(&seed) % 10000) / 10.0;
            const char *cc = COUNTRIES[test_rand_next(&seed) % 4];
            row_batch_set_str(&b, C_COUNTRY, (uint32_t)r, cc, (uint32_t)strlen(cc));
        }
        if (table_append(c->t, &b, &err) != 0)
            atomic_fetch_add(&c->failures, 1);
        if (round % 20 == 0 && table_flush(c->t, true, &err) != 0)
            atomic_fetch_add(&c->failures, 1);
    }
    row_batch_free(&b);
    return NULL;
}

static void *builder(void *arg)
{
    conc *c = arg;
    while (!atomic_load(&c->stop)) {
        rollup_advance_report rep;
        strata_err err = {0};
        if (rollup_advance(c->t, &c->stop, 4, &rep, &err) != 0)
            atomic_fetch_add(&c->failures, 1);
    }
    return NULL;
}

static void *querier(void *arg)
{
    conc *c = arg;
    uint64_t seed = 11;
    while (!atomic_load(&c->stop)) {
        strata_query q;
        random_query(&q, &seed, c->s);
        q.source = test_rand_next(&seed) % 2 ? QUERY_SOURCE_AUTO : QUERY_SOURCE_RAW;
        query_result *r = NULL;
        strata_err err = {0};
        if (query_run(c->t, &q, &r, &err) != 0)
            atomic_fetch_add(&c->failures, 1);
        query_result_free(r);
        query_free(&q);
    }
    return NULL;
}

/* Appends, tier builds and queries at once (the tsan preset runs this): nothing fails,
 * and once the appends stop and the tiers catch up, auto equals raw. */
TEST(appends_builds_and_queries_beside_each_other)
{
    strata_schema s;
    conc c = {.s = &s, .log = calloc(30000, sizeof(sent))};
    c.t = open_table("rollup-conc", &s);
    strata_err err = {0};
    pthread_t ta, tb, tq;
    ASSERT_EQ(pthread_create(&ta, NULL, appender, &c), 0);
    ASSERT_EQ(pthread_create(&tb, NULL, builder, &c), 0);
    ASSERT_EQ(pthread_create(&tq, NULL, querier, &c), 0);
    pthread_join(ta, NULL);
    atomic_store(&c.stop, true);
    pthread_join(tb, NULL);
    pthread_join(tq, NULL);
    ASSERT_EQ(atomic_load(&c.failures), 0);
    rollup_advance_report rep;
    do
        ASSERT_EQ(rollup_advance(c.t, NULL, 100, &rep, &err), 0);
    while (rep.jobs > 0);
    uint64_t seed = 3;
    ASSERT_GT(compare_queries(c.t, &s, &seed, 60), 10);
    table_close(c.t);
    free(c.log);
}

static void tier_counts(strata_table *t, rollup_tier_stats *st, rollup_store_tier_stats *fs)
{
    for (int i = 0; i < 2; i++) {
        rollup_get_stats(table_rollups(t), i, &st[i]);
        table_rollup_store_stats(t, i, &fs[i]);
    }
}

TEST(tiers_saved_merged_and_restored)
{
    strata_schema s;
    char dir[512];
    strata_table *t = open_table_at("rollup_store", &s, 0, dir, sizeof dir);
    strata_err err = {0};
    uint64_t seed = 7;
    uint32_t nlog = 0;
    sent *log = calloc(40000, sizeof *log);
    rollup_advance_report rep;
    rollup_store_tier_stats fs[2];
    rollup_tier_stats st[2];
    for (int round = 0; round < 14; round++) {
        int64_t lo = D0 + round * 30 * MIN;
        append_rows(t, &s, &seed, log, &nlog, lo, lo + 30 * MIN, 1200, false);
        if (round >= 2) {
            append_rows(t, &s, &seed, log, &nlog, D0, lo, 40, false);
            append_rows(t, &s, &seed, log, &nlog, 0, 0, 40, true);
        }
        ASSERT_EQ(table_flush(t, true, &err), 0);
        ASSERT_EQ(rollup_advance(t, NULL, 100, &rep, &err), 0);
        ASSERT_EQ(table_rollups_save(t, false, &err), 0);
        tier_counts(t, st, fs);
        /* deltas merge FAN_IN at a time: a partition never piles up more than a few per level */
        ASSERT(fs[0].segments <= 3 * ROLLUP_STORE_MAX_LEVEL && fs[0].saves == (uint64_t)round + 1);
    }
    ASSERT_GT(fs[0].merges, 1);
    rollup_tier_stats before[2];
    tier_counts(t, before, fs);
    ASSERT(before[0].valid && before[0].buckets > 0 && before[0].dirty == 0);
    table_close(t);

    /* Restored exactly: the same buckets, nothing built again, answers equal raw. */
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    tier_counts(t, st, fs);
    for (int i = 0; i < 2; i++) {
        ASSERT(st[i].valid && st[i].sealed_through == before[i].sealed_through &&
               st[i].built_from == before[i].built_from);
        ASSERT_U64_EQ(st[i].buckets, before[i].buckets);
        ASSERT_U64_EQ(st[i].rows, before[i].rows);
        ASSERT_U64_EQ(st[i].dirty, 0);
        ASSERT_U64_EQ(st[i].builds, 0);
    }
    ASSERT_GT(compare_queries(t, &s, &seed, 40), 15);

    /* Rows flushed after the last save: their buckets are dirty at the next open. */
    append_rows(t, &s, &seed, log, &nlog, D0, D0 + 5 * HOUR, 30, false);
    append_rows(t, &s, &seed, log, &nlog, 0, 0, 30, true);
    ASSERT_EQ(table_flush(t, true, &err), 0);
    table_close(t);
    /* and what a save cut short leaves: a segment the manifest does not list, a TIER.tmp */
    char stray[1200], tmp[1200];
    snprintf(stray, sizeof stray, "%s/r/rollup_1m/2024-01/00000000000fffff.seg", dir);
    snprintf(tmp, sizeof tmp, "%s/r/rollup_1m/TIER.tmp", dir);
    FILE *f = fopen(stray, "w");
    ASSERT(f != NULL);
    fputs("half a segment", f);
    fclose(f);
    ASSERT((f = fopen(tmp, "w")) != NULL);
    fclose(f);
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    struct stat sb;
    ASSERT(stat(stray, &sb) != 0 && stat(tmp, &sb) != 0);
    tier_counts(t, st, fs);
    ASSERT_GT(st[0].dirty, 0);
    ASSERT_GT(st[1].dirty, 0);
    ASSERT_CONTAINS(table_rollup_note(t), "flushed after the last save");
    compare_queries(t, &s, &seed, 30);
    ASSERT_EQ(rollup_advance(t, NULL, 100, &rep, &err), 0);
    tier_counts(t, st, fs);
    ASSERT_U64_EQ(st[0].dirty, 0);
    ASSERT_GT(compare_queries(t, &s, &seed, 30), 10);

    /* optimize: one segment per tier partition (one month, one year here) */
    ASSERT_EQ(table_rollups_save(t, true, &err), 0);
    tier_counts(t, st, fs);
    ASSERT_U64_EQ(fs[0].segments, 1);
    ASSERT_U64_EQ(fs[1].segments, 1);
    rollup_tier_stats opt[2];
    memcpy(opt, st, sizeof opt);
    table_close(t);
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    tier_counts(t, st, fs);
    ASSERT_U64_EQ(st[0].buckets, opt[0].buckets);
    ASSERT_U64_EQ(st[0].rows, opt[0].rows);
    ASSERT_GT(compare_queries(t, &s, &seed, 30), 10);
    table_close(t);
    free(log);
}

/* A tier's own retention (retention.1m here): rollup_expire forgets its buckets past it,
 * and the next save drops the tier partitions wholly before them; the 1h tier, without
 * retention of its own, keeps everything while the raw rows stay. */
TEST(tier_retention_forgets_and_drops_partitions)
{
    strata_schema s;
    char dir[512];
    strata_table *t = open_table_at("rollup_ttl", &s, 20 * 86400000LL, dir, sizeof dir);
    strata_err err = {0};
    uint64_t seed = 11;
    uint32_t nlog = 0;
    sent *log = calloc(4000, sizeof *log);
    int64_t jan = D0, mar = D0 + 60 * 86400000LL; /* two tier partitions of the 1m tier */
    append_rows(t, &s, &seed, log, &nlog, jan, jan + HOUR, 500, false);
    append_rows(t, &s, &seed, log, &nlog, mar, mar + HOUR, 500, false);
    rollup_advance_report rep;
    for (int i = 0; i < 50; i++)
        ASSERT_EQ(rollup_advance(t, NULL, 100, &rep, &err), 0);
    ASSERT_EQ(table_rollups_save(t, false, &err), 0);
    rollup_store_tier_stats fs;
    table_rollup_store_stats(t, 0, &fs);
    ASSERT_U64_EQ(fs.segments, 2); /* 2024-01 and 2024-03 */
    ASSERT_EQ(rollup_expire(table_rollups(t), mar + 10 * 86400000LL), 1u); /* January is past 20 days */
    rollup_tier_stats st[2];
    rollup_get_stats(table_rollups(t), 0, &st[0]);
    rollup_get_stats(table_rollups(t), 1, &st[1]);
    ASSERT(st[0].built_from > jan + 30 * 86400000LL && st[1].built_from <= jan);
    ASSERT_EQ(table_rollups_save(t, false, &err), 0);
    table_rollup_store_stats(t, 0, &fs);
    ASSERT_U64_EQ(fs.segments, 1);
    char jan_dir[1200];
    snprintf(jan_dir, sizeof jan_dir, "%s/r/rollup_1m/2024-01", dir);
    DIR *d = opendir(jan_dir); /* the directory may stay; its segments go */
    for (struct dirent *de; d && (de = readdir(d)) != NULL;)
        ASSERT(strstr(de->d_name, ".seg") == NULL);
    if (d)
        closedir(d);
    table_close(t);
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    rollup_get_stats(table_rollups(t), 0, &st[1]);
    ASSERT(st[1].built_from == st[0].built_from); /* the save kept where it starts */
    table_close(t);
    free(log);
}

/* A tier saved before it had anything (a table without rows) opens again without a word:
 * its TIER holds no segment and says "not built". */
TEST(empty_tiers_saved_and_opened_quietly)
{
    strata_schema s;
    char dir[512];
    strata_table *t = open_table_at("rollup_empty", &s, 0, dir, sizeof dir);
    strata_err err = {0};
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(table_rollups_save(t, false, &err), 0);
        table_close(t);
        ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
        ASSERT_STR_EQ(table_rollup_note(t), "");
    }
    char aside[1200];
    snprintf(aside, sizeof aside, "%s/r/rollup_1m.damaged", dir);
    struct stat sb;
    ASSERT(stat(aside, &sb) != 0);
    table_close(t);
}

/* A kill during a tier's first save (no TIER committed yet) leaves TIER.tmp and segments no
 * manifest lists: the next open removes them, as it does after later saves. */
TEST(first_save_cut_short_leaves_nothing_after_open)
{
    strata_schema s;
    char dir[512];
    strata_table *t = open_table_at("rollup_first_cut", &s, 0, dir, sizeof dir);
    table_close(t);
    char cmd[4000], tmp[1200], seg[1200];
    snprintf(tmp, sizeof tmp, "%s/r/rollup_1m/TIER.tmp", dir);
    snprintf(seg, sizeof seg, "%s/r/rollup_1m/2024-01/0000000000000001.seg", dir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/r/rollup_1m/2024-01' && echo cut > '%s' && echo cut > '%s'", dir, tmp, seg);
    ASSERT_EQ(system(cmd), 0);
    strata_err err = {0};
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    struct stat sb;
    ASSERT(stat(tmp, &sb) != 0);
    ASSERT(stat(seg, &sb) != 0);
    table_close(t);
}

TEST_LIST(T(tiers_saved_merged_and_restored), T(empty_tiers_saved_and_opened_quietly),
          T(first_save_cut_short_leaves_nothing_after_open), T(tier_retention_forgets_and_drops_partitions), T(dirty_marks_generations_and_views), T(far_future_first_row_and_backfill_across_empty_years),
          T(packed_quantile_sketch_merges_exactly),
          T(auto_equals_raw_over_a_changing_table), T(memory_limit_forgets_oldest_buckets),
          T(appends_builds_and_queries_beside_each_other))
