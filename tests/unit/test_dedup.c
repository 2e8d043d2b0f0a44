/*
 * test_dedup.c — every read deduplicated (engine/dedup.h), checked against a reference:
 * random streams of duplicates, updates, out-of-order and equal versions, and deletes go
 * through logged appends while memtables seal, flush, merge, get optimized and the table
 * is closed without a flush and reopened (the log replays); after every step random
 * queries (filters, groups, time buckets) must equal the same query evaluated over the
 * reference's latest row per key. Also: the delete vector itself, manifest round trips,
 * merges dropping superseded rows for good, and optimize leaving one row per key.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dedup.h"
#include "engine/dvec.h"
#include "engine/manifest.h"
#include "engine/merge.h"
#include "engine/query.h"
#include "engine/table.h"
#include "test.h"

#define HOUR INT64_C(3600000)
#define DAY INT64_C(86400000)
#define D0 INT64_C(1704067200000) /* 2024-01-01 */

/* ---- dvec ---------------------------------------------------------------------------- */

TEST(dvec_versions_share_and_stay_immutable)
{
    strata_err err = {0};
    uint64_t a[] = {3, 70000, 70001, 200000};
    dvec *d1, *d2;
    ASSERT_EQ(dvec_with_rows(NULL, a, 4, &d1, &err), 0);
    ASSERT_U64_EQ(dvec_count(d1), 4);
    uint64_t b[] = {4, 70000};
    ASSERT_EQ(dvec_with_rows(d1, b, 2, &d2, &err), 0);
    ASSERT_U64_EQ(dvec_count(d1), 4); /* the old version is unchanged */
    ASSERT(!dvec_test(d1, 4));
    ASSERT_U64_EQ(dvec_count(d2), 5);
    ASSERT(dvec_test(d2, 4) && dvec_test(d2, 70000) && dvec_test(d2, 200000) && !dvec_test(d2, 5));
    uint8_t mask[100];
    memset(mask, 1, sizeof mask);
    dvec_mask(d2, 69950, 100, mask);
    for (int i = 0; i < 100; i++)
        ASSERT_EQ(mask[i], (i == 50 || i == 51) ? 0 : 1);
    bytebuf buf = {0};
    uint64_t skip[] = {3};
    ASSERT_EQ(dvec_serialize(d2, skip, 1, &buf, &err), 0);
    dvec *d3;
    ASSERT_EQ(dvec_deserialize(buf.data, buf.len, 200001, &d3, &err), 0);
    ASSERT_U64_EQ(dvec_count(d3), 4);
    ASSERT(!dvec_test(d3, 3) && dvec_test(d3, 200000));
    dvec_unref(d3);
    dvec *bad = NULL;
    ASSERT_NE(dvec_deserialize(buf.data, buf.len, 200000, &bad, &err), 0); /* a row past the end */
    ASSERT_CONTAINS(err.msg, "past the segment");
    ASSERT_NE(dvec_deserialize(buf.data, buf.len - 1, 300000, &bad, &err), 0);
    ASSERT(bad == NULL);
    buf_free(&buf);
    dvec_unref(d1);
    dvec_unref(d2);
}

/* dvec_mask visits set bits word by word: it must clear exactly what dvec_test says, for
 * any range (unaligned starts and ends, empty chunks, past the last chunk). */
TEST(dvec_mask_agrees_with_dvec_test)
{
    uint64_t seed = 42;
    strata_err err = {0};
    for (int round = 0; round < 200; round++) {
        uint64_t n = 1 + test_rand_next(&seed) % 300, rows[300];
        uint64_t span = 1 + test_rand_next(&seed) % 300000;
        for (uint64_t i = 0; i < n; i++)
            rows[i] = test_rand_next(&seed) % span;
        dvec *d;
        ASSERT_EQ(dvec_with_rows(NULL, rows, n, &d, &err), 0);
        uint64_t r0 = test_rand_next(&seed) % (span + 70000);
        uint32_t len = 1 + (uint32_t)(test_rand_next(&seed) % 9000);
        static uint8_t mask[9000];
        memset(mask, 1, len);
        dvec_mask(d, r0, len, mask);
        for (uint32_t i = 0; i < len; i++)
            if (mask[i] != !dvec_test(d, r0 + i))
                TEST_FAIL_("round %d: row %" PRIu64 ": mask %u, test %d", round, r0 + i, mask[i], dvec_test(d, r0 + i));
        dvec_unref(d);
    }
}

/* ---- the reference --------------------------------------------------------------------- */

enum { C_TS, C_ID, C_COUNTRY, C_AMOUNT, C_VERSION, C_DEL, NCOLS };
static const char *countries[] = {"US", "DE", "FR", "JP"};

typedef struct ref_row {
    bool present;
    int64_t ts, version, amount;
    int country;
    bool del;
} ref_row;

static void make_schema(strata_schema *s, bool string_key)
{
    schema_init(s);
    snprintf(s->name, sizeof s->name, "d");
    const char *names[] = {"ts", "id", "country", "amount", "version", "del"};
    strata_type types[] = {STRATA_TIMESTAMP, string_key ? STRATA_STRING : STRATA_INT64, STRATA_STRING,
                           STRATA_INT64,     STRATA_INT64, STRATA_BOOL};
    for (int i = 0; i < NCOLS; i++) {
        snprintf(s->cols[i].name, sizeof s->cols[i].name, "%s", names[i]);
        s->cols[i].type = types[i];
    }
    s->ncols = NCOLS;
    s->time_col = C_TS;
    s->ndedup = 2;
    s->dedup_cols[0] = C_ID;
    s->dedup_cols[1] = C_TS;
    s->version_col = C_VERSION;
    s->deleted_col = C_DEL;
    s->memtable_max_rows = 97; /* memtables seal often: keys move between memtables and segments */
    schema_apply_default_order(s);
}

/* Key k's time never changes (it is part of the key): spread over three days. */
static int64_t key_ts(uint32_t k)
{
    return D0 + (int64_t)((k * UINT64_C(2654435761)) % (uint64_t)(3 * DAY));
}

typedef struct world {
    strata_schema s;
    strata_table *t;
    char dir[4096];
    uint32_t nkeys;
    ref_row *ref;
    uint64_t seed;
    bool string_key;
} world;

static void append_random(world *w, uint32_t n)
{
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &w->s, n), 0);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = (uint32_t)(test_rand_next(&w->seed) % w->nkeys);
        int64_t r = row_batch_add_row(&b);
        ASSERT(r >= 0);
        int64_t version = (int64_t)(test_rand_next(&w->seed) % 6); /* equal and older versions too */
        int c = (int)(test_rand_next(&w->seed) % 4);
        int64_t amount = (int64_t)(test_rand_next(&w->seed) % 1000) - 100;
        bool del = test_rand_next(&w->seed) % 10 == 0;
        b.i[C_TS][r] = key_ts(k);
        if (w->string_key) {
            char id[32];
            snprintf(id, sizeof id, "order-%u", k);
            ASSERT_EQ(row_batch_set_str(&b, C_ID, (uint32_t)r, id, (uint32_t)strlen(id)), 0);
        } else {
            b.i[C_ID][r] = (int64_t)k * 1000003;
        }
        ASSERT_EQ(row_batch_set_str(&b, C_COUNTRY, (uint32_t)r, countries[c], (uint32_t)strlen(countries[c])), 0);
        b.i[C_AMOUNT][r] = amount;
        b.i[C_VERSION][r] = version;
        b.i[C_DEL][r] = del;
        ref_row *rr = &w->ref[k];
        if (!rr->present || version >= rr->version) /* ties: the last appended wins */
            *rr = (ref_row){true, key_ts(k), version, amount, c, del};
    }
    strata_err err = {0};
    uint64_t lsn;
    ASSERT_EQ(table_append_logged(w->t, &b, &lsn, &err), 0);
    ASSERT_EQ(table_log_sync(w->t, lsn, &err), 0);
    row_batch_free(&b);
}

/* One random query, run on the table and on the reference's logical rows. */
static void check_random_query(world *w)
{
    strata_query q;
    query_init(&q);
    q.from_ms = INT64_MIN / 2;
    q.to_ms = INT64_MAX / 2;
    uint64_t r = test_rand_next(&w->seed);
    if (r % 3 == 0) { /* a time range */
        q.from_ms = D0 + (int64_t)(test_rand_next(&w->seed) % (uint64_t)(3 * DAY));
        q.to_ms = q.from_ms + (int64_t)(test_rand_next(&w->seed) % (uint64_t)(2 * DAY));
    }
    bool by_country = (r >> 3) % 2, by_day = (r >> 4) % 3 == 0;
    int where_country = (r >> 6) % 3 == 0 ? (int)((r >> 8) % 4) : -1;
    if (by_day)
        q.interval_ms = DAY;
    if (by_country)
        q.group_cols[q.ngroup++] = C_COUNTRY;
    q.aggs[0] = (query_agg){STRATA_AGG_COUNT, -1, 0, "n"};
    q.aggs[1] = (query_agg){STRATA_AGG_SUM, C_AMOUNT, 0, "s"};
    q.aggs[2] = (query_agg){STRATA_AGG_MAX, C_VERSION, 0, "v"};
    q.naggs = 3;
    if (where_country >= 0) {
        query_expr *e = calloc(1, sizeof *e);
        e->kind = QX_PRED;
        e->vals = calloc(1, sizeof *e->vals);
        e->strs = calloc(1, sizeof *e->strs);
        e->strs[0] = strdup(countries[where_country]);
        e->vals[0].s.ptr = e->strs[0];
        e->vals[0].s.len = (uint32_t)strlen(e->strs[0]);
        e->pred.col = C_COUNTRY;
        e->pred.op = SEGMENT_PRED_EQ;
        e->pred.vals = e->vals;
        e->pred.nvals = 1;
        q.where = e;
    }
    /* the reference: groups (day bucket x country) of the latest live row per key */
    enum { NB = 8, NG = NB * 4 };
    int64_t cnt[NG] = {0}, sum[NG] = {0}, vmax[NG];
    for (int i = 0; i < NG; i++)
        vmax[i] = INT64_MIN;
    for (uint32_t k = 0; k < w->nkeys; k++) {
        const ref_row *rr = &w->ref[k];
        if (!rr->present || rr->del || rr->ts < q.from_ms || rr->ts >= q.to_ms)
            continue;
        if (where_country >= 0 && rr->country != where_country)
            continue;
        int b = by_day ? (int)((rr->ts - D0) / DAY) + 1 : 0;
        int g = b * 4 + (by_country ? rr->country : 0);
        cnt[g]++;
        sum[g] += rr->amount;
        if (rr->version > vmax[g])
            vmax[g] = rr->version;
    }
    query_result *res;
    strata_err err = {0};
    ASSERT_EQ(query_run(w->t, &q, &res, &err), 0);
    int out = 0;
    int base = (by_day ? 1 : 0) + (by_country ? 1 : 0);
    for (uint64_t row = 0; row < res->nrows; row++) {
        int b = 0, c = 0;
        if (by_day)
            b = (int)((query_result_cell(res, row, 0)->v.i - D0) / DAY) + 1;
        if (by_country) {
            const query_cell *cc = query_result_cell(res, row, by_day ? 1 : 0);
            for (c = 0; c < 4 && (strlen(countries[c]) != cc->v.s.len || memcmp(countries[c], cc->v.s.ptr, cc->v.s.len)); c++)
                ;
        }
        int g = b * 4 + c;
        uint64_t n = query_result_cell(res, row, base)->v.u;
        if (n == 0 && cnt[g] == 0)
            continue; /* the count(*) of an empty table answers one row of 0 */
        if ((int64_t)n != cnt[g] || query_result_cell(res, row, base + 1)->v.i != sum[g] ||
            query_result_cell(res, row, base + 2)->v.i != vmax[g])
            TEST_FAIL_("query (range %" PRId64 "..%" PRId64 ", day %d, country %d, where %d): group %d: "
                       "count %" PRIu64 " sum %" PRId64 " max %" PRId64 ", reference %" PRId64 " %" PRId64
                       " %" PRId64,
                       q.from_ms, q.to_ms, by_day, by_country, where_country, g, n,
                       query_result_cell(res, row, base + 1)->v.i, query_result_cell(res, row, base + 2)->v.i,
                       cnt[g], sum[g], vmax[g]);
        out++;
    }
    int want = 0;
    for (int i = 0; i < NG; i++)
        want += cnt[i] > 0;
    ASSERT_EQ(out, want);
    query_result_free(res);
    query_free(&q);
}

static void reopen(world *w, bool flush_first)
{
    strata_err err = {0};
    if (flush_first)
        ASSERT_EQ(table_flush(w->t, true, &err), 0);
    table_close(w->t);
    ASSERT_EQ(table_open(w->dir, &w->s, &w->t, &err), 0);
}

/* The last checks of a test: random queries, again after a reopen (the log replays), then
 * the table closed and the reference freed. */
static void check_then_reopen_and_close(world *w)
{
    for (int i = 0; i < 10; i++)
        check_random_query(w);
    reopen(w, false);
    for (int i = 0; i < 10; i++)
        check_random_query(w);
    table_close(w->t);
    free(w->ref);
}

static void run_stream(const char *name, uint64_t seed, bool string_key, int64_t window)
{
    world w = {0};
    w.seed = seed;
    w.string_key = string_key;
    w.nkeys = 400;
    w.ref = calloc(w.nkeys, sizeof *w.ref);
    test_tmpdir(w.dir, sizeof w.dir, name);
    make_schema(&w.s, string_key);
    if (window)
        w.s.dedup_window_ms = window;
    strata_err err = {0};
    ASSERT_EQ(table_open(w.dir, &w.s, &w.t, &err), 0);
    merge_policy pol;
    merge_policy_default(&pol);
    pol.small_rows = 1; /* merge the tiny segments of this test as it goes */
    pol.small_bytes = 1;
    for (int step = 0; step < 160; step++) {
        uint64_t op = test_rand_next(&w.seed) % 20;
        if (op < 12) {
            append_random(&w, 1 + (uint32_t)(test_rand_next(&w.seed) % 150));
        } else if (op < 15) {
            ASSERT_EQ(table_flush(w.t, op == 14, &err), 0);
        } else if (op < 17) {
            merge_report rep;
            ASSERT_EQ(merge_table_once(w.t, &pol, NULL, &rep, &err), 0);
        } else if (op == 17) {
            optimize_report rep;
            ASSERT_EQ(merge_table_optimize(w.t, NULL, &pol, &rep, &err), 0);
            merge_optimize_report_free(&rep);
        } else {
            reopen(&w, op == 18); /* 19: without a flush, the log replays */
        }
        for (int i = 0; i < 3; i++)
            check_random_query(&w);
    }
    /* optimize leaves one row per key: every row a segment holds is the winner of its key */
    optimize_report rep;
    ASSERT_EQ(merge_table_optimize(w.t, NULL, &pol, &rep, &err), 0);
    merge_optimize_report_free(&rep);
    table_snapshot *snap = table_snapshot_acquire(w.t, INT64_MIN, INT64_MAX);
    uint64_t physical = 0, present = 0;
    for (uint32_t p = 0; p < snap->nparts; p++)
        for (uint32_t i = 0; i < snap->parts[p].nsegs; i++) {
            physical += segment_nrows(snap->parts[p].segs[i]);
            ASSERT_U64_EQ(dvec_count(snap->parts[p].seg_dv[i]), 0);
        }
    for (uint32_t k = 0; k < w.nkeys; k++)
        present += w.ref[k].present;
    ASSERT_U64_EQ(physical, present); /* deleted keys keep their winning row (a tombstone) */
    table_snapshot_release(snap);
    table_stats st;
    table_get_stats(w.t, &st);
    if (window) {
        ASSERT_GE(st.dedup_cold_partitions, 1);
        ASSERT_LT(st.dedup_keys, present); /* the cold partitions' keys are not in memory */
    } else {
        ASSERT_EQ(st.dedup_cold_partitions, 0);
        ASSERT_U64_EQ(st.dedup_keys, present);
    }
    check_then_reopen_and_close(&w);
}

TEST(random_streams_int_key)
{
    for (uint64_t seed = 1; seed <= 4; seed++)
        run_stream("dedup_int", seed * 7919, false, 0);
}

TEST(random_streams_string_key)
{
    for (uint64_t seed = 1; seed <= 3; seed++)
        run_stream("dedup_str", seed * 104729, true, 0);
}

/* A window of one day over keys of three: the older partitions go cold (no keys in
 * memory) and their keys are found on disk, by time, when newer versions arrive. */
TEST(random_streams_cold_partitions)
{
    for (uint64_t seed = 1; seed <= 3; seed++)
        run_stream("dedup_cold", seed * 15485863, seed == 2, DAY);
}

/* A superseded row in a committed segment is marked in the MANIFEST with the commit of
 * the row that superseded it, and a merge drops it for good. */
TEST(marks_are_committed_with_their_cause_and_merges_drop_them)
{
    world w = {0};
    w.nkeys = 50;
    w.seed = 5;
    w.ref = calloc(w.nkeys, sizeof *w.ref);
    test_tmpdir(w.dir, sizeof w.dir, "dedup_marks");
    make_schema(&w.s, false);
    w.s.memtable_max_rows = 1000;
    strata_err err = {0};
    ASSERT_EQ(table_open(w.dir, &w.s, &w.t, &err), 0);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &w.s, 8), 0);
    for (int round = 0; round < 2; round++) {
        row_batch_clear(&b);
        for (int k = 0; k < 5; k++) {
            int64_t r = row_batch_add_row(&b);
            b.i[C_TS][r] = D0 + k;
            b.i[C_ID][r] = k;
            b.i[C_VERSION][r] = round;
            b.i[C_AMOUNT][r] = 10 * round + k;
            ASSERT_EQ(row_batch_set_str(&b, C_COUNTRY, (uint32_t)r, "US", 2), 0);
        }
        ASSERT_EQ(table_append(w.t, &b, &err), 0);
        ASSERT_EQ(table_flush(w.t, true, &err), 0);
    }
    row_batch_free(&b);
    char pdir[4200];
    snprintf(pdir, sizeof pdir, "%s/d/raw/2024-01-01", w.dir);
    manifest m;
    ASSERT_EQ(manifest_read(pdir, &m, &err), 0);
    ASSERT_EQ(m.nsegs, 2);
    ASSERT_EQ(m.ndvs, 1); /* the first segment's 5 rows, marked by the second's commit */
    ASSERT_U64_EQ(m.dvs[0].seg_id, m.segs[0].id);
    manifest_free(&m);
    for (uint32_t k = 0; k < 5; k++)
        w.ref[k] = (ref_row){true, D0 + k, 1, 10 + k, 0, false};
    for (int i = 0; i < 5; i++)
        check_random_query(&w);
    reopen(&w, false);
    for (int i = 0; i < 5; i++)
        check_random_query(&w);
    merge_policy pol;
    merge_policy_default(&pol);
    pol.small_rows = 1;
    pol.small_bytes = 1;
    merge_report rep;
    ASSERT_EQ(merge_table_once(w.t, &pol, NULL, &rep, &err), 0);
    ASSERT(rep.merged);
    ASSERT_U64_EQ(rep.rows_dropped, 5);
    ASSERT_EQ(manifest_read(pdir, &m, &err), 0);
    ASSERT_EQ(m.nsegs, 1);
    ASSERT_U64_EQ(m.segs[0].rows, 5);
    ASSERT_EQ(m.ndvs, 0);
    manifest_free(&m);
    for (int i = 0; i < 5; i++)
        check_random_query(&w);
    /* One segment alone, whose rows superseded each other within its memtable: optimize
     * rewrites it, one row per key. */
    ASSERT_EQ(row_batch_init(&b, &w.s, 8), 0);
    for (int v = 1; v <= 3; v++) {
        int64_t r = row_batch_add_row(&b);
        b.i[C_TS][r] = D0 + 5 * DAY;
        b.i[C_ID][r] = 7;
        b.i[C_VERSION][r] = v;
        b.i[C_AMOUNT][r] = 100 + v;
        ASSERT_EQ(row_batch_set_str(&b, C_COUNTRY, (uint32_t)r, "US", 2), 0);
    }
    w.ref[7] = (ref_row){true, D0 + 5 * DAY, 3, 103, 0, false};
    ASSERT_EQ(table_append(w.t, &b, &err), 0);
    row_batch_free(&b);
    ASSERT_EQ(table_flush(w.t, true, &err), 0);
    char pdir5[4200];
    snprintf(pdir5, sizeof pdir5, "%s/d/raw/2024-01-06", w.dir);
    ASSERT_EQ(manifest_read(pdir5, &m, &err), 0);
    ASSERT_EQ(m.nsegs, 1);
    ASSERT_U64_EQ(m.segs[0].rows, 3);
    ASSERT_EQ(m.ndvs, 1);
    manifest_free(&m);
    optimize_report orep;
    ASSERT_EQ(merge_table_optimize(w.t, NULL, &pol, &orep, &err), 0);
    merge_optimize_report_free(&orep);
    ASSERT_EQ(manifest_read(pdir5, &m, &err), 0);
    ASSERT_EQ(m.nsegs, 1);
    ASSERT_U64_EQ(m.segs[0].rows, 1);
    ASSERT_EQ(m.ndvs, 0);
    manifest_free(&m);
    for (int i = 0; i < 5; i++)
        check_random_query(&w);
    table_close(w.t);
    free(w.ref);
}

/* ---- beside flushes, merges and queries ------------------------------------------------- */

typedef struct writer_arg {
    world *w;
    int batches;
} writer_arg;

#define NEW_PER_BATCH 20
static _Atomic bool writer_done;

/* Batch b adds keys b*20 .. b*20+19 (version 0) and updates 30 earlier keys (version b):
 * after any whole batch the logical rows are a multiple of 20. */
static void *writer_main(void *p)
{
    writer_arg *a = p;
    world *w = a->w;
    row_batch b;
    strata_err err = {0};
    if (row_batch_init(&b, &w->s, 64) != 0)
        return NULL;
    for (int bi = 0; bi < a->batches; bi++) {
        row_batch_clear(&b);
        for (int i = 0; i < NEW_PER_BATCH + 30; i++) {
            uint32_t k = i < NEW_PER_BATCH ? (uint32_t)(bi * NEW_PER_BATCH + i)
                                           : (uint32_t)(test_rand_next(&w->seed) % (uint64_t)((bi + 1) * NEW_PER_BATCH));
            int64_t v = i < NEW_PER_BATCH ? 0 : bi;
            int64_t r = row_batch_add_row(&b);
            int64_t amount = (int64_t)(test_rand_next(&w->seed) % 1000);
            b.i[C_TS][r] = key_ts(k);
            b.i[C_ID][r] = k;
            row_batch_set_str(&b, C_COUNTRY, (uint32_t)r, "US", 2);
            b.i[C_AMOUNT][r] = amount;
            b.i[C_VERSION][r] = v;
            ref_row *rr = &w->ref[k];
            if (!rr->present || v >= rr->version)
                *rr = (ref_row){true, key_ts(k), v, amount, 0, false};
        }
        if (table_append(w->t, &b, &err) != 0) {
            fprintf(stderr, "append: %s\n", err.msg);
            abort();
        }
    }
    row_batch_free(&b);
    atomic_store(&writer_done, true);
    return NULL;
}

static _Atomic bool busy_stop;

static void *flusher_main(void *p)
{
    world *w = p;
    strata_err err = {0};
    while (!atomic_load(&busy_stop))
        if (table_flush(w->t, false, &err) != 0)
            abort();
    return NULL;
}

TEST(appends_beside_flushes_merges_and_queries)
{
    world w = {0};
    w.seed = 99;
    w.nkeys = 300 * NEW_PER_BATCH;
    w.ref = calloc(w.nkeys, sizeof *w.ref);
    test_tmpdir(w.dir, sizeof w.dir, "dedup_concurrent");
    make_schema(&w.s, false);
    w.s.memtable_max_age_ms = 1;
    strata_err err = {0};
    ASSERT_EQ(table_open(w.dir, &w.s, &w.t, &err), 0);
    writer_arg wa = {&w, 300};
    pthread_t wt, ft;
    atomic_store(&busy_stop, false);
    atomic_store(&writer_done, false);
    ASSERT_EQ(pthread_create(&wt, NULL, writer_main, &wa), 0);
    ASSERT_EQ(pthread_create(&ft, NULL, flusher_main, &w), 0);
    merge_policy pol;
    merge_policy_default(&pol);
    pol.small_rows = 1;
    pol.small_bytes = 1;
    int merges = 0;
    for (int i = 0; i < 300 || !atomic_load(&writer_done); i++) {
        merge_report rep;
        ASSERT_EQ(merge_table_once(w.t, &pol, NULL, &rep, &err), 0);
        merges += rep.merged;
        strata_query q;
        query_init(&q);
        q.from_ms = INT64_MIN / 2;
        q.to_ms = INT64_MAX / 2;
        q.aggs[0] = (query_agg){STRATA_AGG_COUNT, -1, 0, "n"};
        q.naggs = 1;
        query_result *res;
        ASSERT_EQ(query_run(w.t, &q, &res, &err), 0);
        /* whole batches, each key once */
        ASSERT_EQ(query_result_cell(res, 0, 0)->v.u % NEW_PER_BATCH, 0);
        query_result_free(res);
    }
    pthread_join(wt, NULL);
    atomic_store(&busy_stop, true);
    pthread_join(ft, NULL);
    ASSERT_EQ(table_flush(w.t, true, &err), 0);
    for (merge_report rep = {.merged = true}; rep.merged; merges += rep.merged)
        ASSERT_EQ(merge_table_once(w.t, &pol, NULL, &rep, &err), 0);
    ASSERT_GT(merges, 2);
    check_then_reopen_and_close(&w);
}

TEST_LIST(T(dvec_mask_agrees_with_dvec_test), T(appends_beside_flushes_merges_and_queries), T(random_streams_cold_partitions), T(dvec_versions_share_and_stay_immutable), T(random_streams_int_key), T(random_streams_string_key),
          T(marks_are_committed_with_their_cause_and_merges_drop_them))
