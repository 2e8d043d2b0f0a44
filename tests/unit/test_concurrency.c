/*
 * test_concurrency.c — readers and writers of one table at the same time, as the server
 * runs them: query threads (each query itself scanning on several threads) while one
 * thread appends batches and another flushes memtables into segments. Every answer must
 * be a whole number of batches (an append is visible all at once or not at all) with the
 * exact sums of those rows, never less than what was appended before the query began and
 * never more than what had begun to be appended by its end; a flush that swaps a memtable for its
 * segment mid-query neither loses nor doubles a row. Built with the tsan preset, this is
 * also the ThreadSanitizer's view of the table, memtable and query locks.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "engine/query.h"
#include "engine/table.h"
#include "test.h"

#define BATCH 1500
#define BATCHES 120

static _Atomic uint64_t appended_batches; /* batches whose append returned */
static _Atomic uint64_t started_batches;  /* batches whose append began */
static _Atomic bool writers_done;
static _Atomic uint64_t queries_run, flushes_run;

/* Every eighth of the stream, the appender waits (up to 20 s) until another flush and
 * two more queries have run since the last such point: on a loaded machine a paced stream
 * can otherwise end before the other threads get their turns, and the test would check
 * less than it claims. */
static void wait_for_interleaving(uint64_t *flushes_seen, uint64_t *queries_seen)
{
    for (int waited_ms = 0; waited_ms < 20000; waited_ms++) {
        if (atomic_load(&flushes_run) > *flushes_seen && atomic_load(&queries_run) >= *queries_seen + 2)
            break;
        usleep(1000);
    }
    *flushes_seen = atomic_load(&flushes_run);
    *queries_seen = atomic_load(&queries_run);
}

typedef struct shared {
    strata_table *t;
    int failures;
    char why[600];
} shared;

static void make_schema(strata_schema *s)
{
    schema_init(s);
    snprintf(s->name, sizeof s->name, "conc");
    const char *names[] = {"ts", "id", "tag"};
    strata_type types[] = {STRATA_TIMESTAMP, STRATA_INT64, STRATA_STRING};
    for (int i = 0; i < 3; i++) {
        snprintf(s->cols[i].name, sizeof s->cols[i].name, "%s", names[i]);
        s->cols[i].type = types[i];
    }
    s->ncols = 3;
    s->time_col = 0;
    s->memtable_max_rows = 4 * BATCH + 101; /* a batch overflows the active memtable now and then */
    s->memtable_max_age_ms = 3600 * 1000;
    schema_apply_default_order(s);
}

static void *appender(void *arg)
{
    shared *sh = arg;
    row_batch b;
    strata_err err = {0};
    if (row_batch_init(&b, table_schema(sh->t), BATCH) != 0)
        return NULL;
    static const char *tags[] = {"a", "b", "c"};
    uint64_t flushes_seen = 0, queries_seen = 0;
    for (uint64_t k = 0; k < BATCHES; k++) {
        if (k > 0 && k % (BATCHES / 8) == 0)
            wait_for_interleaving(&flushes_seen, &queries_seen);
        row_batch_clear(&b);
        for (uint64_t i = 0; i < BATCH; i++) {
            uint64_t id = k * BATCH + i;
            int64_t r = row_batch_add_row(&b);
            b.i[0][r] = 1704067200000 + (int64_t)(id % 3) * 86400000 + (int64_t)id; /* 3 days each */
            b.i[1][r] = (int64_t)id;
            row_batch_set_str(&b, 2, (uint32_t)r, tags[id % 3], 1);
        }
        atomic_store(&started_batches, k + 1);
        if (table_append(sh->t, &b, &err) != 0) {
            snprintf(sh->why, sizeof sh->why, "append: %.500s", err.msg);
            sh->failures++;
            break;
        }
        atomic_store(&appended_batches, k + 1);
        usleep(2000); /* a paced stream: flushes and queries interleave with it */
    }
    row_batch_free(&b);
    atomic_store(&writers_done, true);
    return NULL;
}

static void *flusher(void *arg)
{
    shared *sh = arg;
    strata_err err = {0};
    while (!atomic_load(&writers_done)) {
        if (table_flush(sh->t, true, &err) != 0) {
            snprintf(sh->why, sizeof sh->why, "flush: %.500s", err.msg);
            sh->failures++;
            return NULL;
        }
        atomic_fetch_add(&flushes_run, 1);
        usleep(2000);
    }
    return NULL;
}

typedef struct reader {
    shared *sh;
    int failures;
    char why[600];
} reader;

static void *query_loop(void *arg)
{
    reader *rd = arg;
    strata_query q;
    query_init(&q);
    q.naggs = 3;
    q.aggs[0] = (query_agg){.fn = STRATA_AGG_COUNT, .col = -1};
    q.aggs[1] = (query_agg){.fn = STRATA_AGG_SUM, .col = 1};
    q.aggs[2] = (query_agg){.fn = STRATA_AGG_MAX, .col = 1};
    q.threads = 2;
    bool last = false;
    while (!last && rd->failures == 0) {
        last = atomic_load(&writers_done);
        uint64_t lo = atomic_load(&appended_batches);
        query_result *res;
        strata_err err = {0};
        if (query_run(rd->sh->t, &q, &res, &err) != 0) {
            snprintf(rd->why, sizeof rd->why, "query: %.500s", err.msg);
            rd->failures++;
            break;
        }
        uint64_t hi = atomic_load(&started_batches);
        uint64_t n = query_result_cell(res, 0, 0)->v.u;
        int64_t sum = query_result_cell(res, 0, 1)->v.i;
        uint64_t batches = n / BATCH;
        /* Appends publish a batch at once, in order: the rows are ids 0..n-1. */
        int64_t want_sum = (int64_t)(n * (n ? n - 1 : 0) / 2);
        if (n % BATCH != 0 || batches < lo || batches > hi || sum != want_sum ||
            (n && query_result_cell(res, 0, 2)->v.i != (int64_t)n - 1)) {
            snprintf(rd->why, sizeof rd->why,
                     "saw %llu rows (sum %lld, want %lld) with %llu..%llu batches appended",
                     (unsigned long long)n, (long long)sum, (long long)want_sum, (unsigned long long)lo,
                     (unsigned long long)hi);
            rd->failures++;
        }
        query_result_free(res);
        atomic_fetch_add(&queries_run, 1);
    }
    query_free(&q);
    return NULL;
}

TEST(queries_during_appends_and_flushes_see_whole_batches)
{
    char dir[2048];
    const char *base = getenv("STRATA_TEST_TMP");
    snprintf(dir, sizeof dir, "%s/concurrency-%d", base ? base : "/tmp", (int)getpid());
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    ASSERT_EQ(system(cmd), 0);
    strata_schema s;
    make_schema(&s);
    strata_err err = {0};
    shared sh = {0};
    ASSERT_EQ(table_open(dir, &s, &sh.t, &err), 0);
    reader rd[2] = {{&sh, 0, ""}, {&sh, 0, ""}};
    pthread_t ta, tf, tq[2];
    ASSERT_EQ(pthread_create(&tq[0], NULL, query_loop, &rd[0]), 0);
    ASSERT_EQ(pthread_create(&tq[1], NULL, query_loop, &rd[1]), 0);
    ASSERT_EQ(pthread_create(&tf, NULL, flusher, &sh), 0);
    ASSERT_EQ(pthread_create(&ta, NULL, appender, &sh), 0);
    pthread_join(ta, NULL);
    pthread_join(tf, NULL);
    pthread_join(tq[0], NULL);
    pthread_join(tq[1], NULL);
    if (sh.failures)
        TEST_FAIL_("%s", sh.why);
    for (int i = 0; i < 2; i++)
        if (rd[i].failures)
            TEST_FAIL_("reader %d: %s", i, rd[i].why);
    ASSERT_EQ(atomic_load(&appended_batches), BATCHES);
    ASSERT_GE(atomic_load(&queries_run), 14);
    ASSERT_GE(atomic_load(&flushes_run), 7);
    /* Everything flushed: one last answer from segments alone. */
    ASSERT_EQ(table_flush(sh.t, true, &err), 0);
    table_stats st;
    table_get_stats(sh.t, &st);
    ASSERT_EQ(st.memtable_rows, 0);
    ASSERT_U64_EQ(st.segment_rows, (uint64_t)BATCH * BATCHES);
    table_close(sh.t);
    fprintf(stderr, "  %llu queries, %llu flushes during %d appends\n",
            (unsigned long long)atomic_load(&queries_run), (unsigned long long)atomic_load(&flushes_run),
            BATCHES);
}

TEST_LIST(T(queries_during_appends_and_flushes_see_whole_batches))
