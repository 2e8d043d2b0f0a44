/*
 * test_http_ingest.c — an NDJSON request body into rows (ingest/http_ingest.c), whatever
 * pieces it arrives in: the same body cut at every byte, in pieces of 1, 2, 3, 7, 64 and
 * 4096 bytes, at random places, and whole, lands the same rows with the same answer
 * (blank lines, rejected lines with their line numbers, a line over the event limit
 * skipped to its newline and reported, a byte order mark dropped, a last line without
 * its newline, CRLF line ends). A request the caller aborts lands nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/query.h"
#include "ingest/http_ingest.h"
#include "test.h"

static void make_schema(strata_schema *s)
{
    schema_init(s);
    snprintf(s->name, sizeof s->name, "t");
    const char *names[] = {"ts", "k", "n"};
    strata_type types[] = {STRATA_TIMESTAMP, STRATA_STRING, STRATA_INT64};
    for (int c = 0; c < 3; c++) {
        snprintf(s->cols[c].name, sizeof s->cols[c].name, "%s", names[c]);
        s->cols[c].type = types[c];
    }
    s->ncols = 3;
    s->time_col = 0;
    s->memtable_max_age_ms = 3600 * 1000;
    schema_apply_default_order(s);
}

/* What one request gave: rows landed, the answer's counts and JSON, the table's count and
 * sum(n). */
typedef struct outcome {
    uint64_t rows, rejected, blank, count;
    int64_t sum;
    char *answer; /* malloc'd */
} outcome;

/* Feeds body to a fresh table in pieces: cuts[i] is where piece i ends (ncuts of them,
 * the last = len). */
static outcome run(const char *body, size_t len, const size_t *cuts, size_t ncuts, bool abort_it)
{
    static int seq;
    char dir[4096];
    char name[64];
    snprintf(name, sizeof name, "http-ingest-%d", seq++);
    test_tmpdir(dir, sizeof dir, name);
    strata_schema s;
    make_schema(&s);
    strata_err err = {0};
    strata_table *t;
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    http_ingest_pool pool;
    http_ingest_pool_init(&pool, 1u << 30);
    http_ingest in;
    ASSERT_EQ(http_ingest_begin(&in, &pool, t, &err), 0);
    size_t at = 0;
    for (size_t i = 0; i < ncuts; i++) {
        http_ingest_feed(&in, body + at, cuts[i] - at);
        at = cuts[i];
    }
    ASSERT_EQ(at, len);
    if (abort_it)
        http_ingest_abort(&in);
    outcome o = {0};
    http_ingest_fault f = http_ingest_finish(&in, &o.rows);
    ASSERT_EQ(f, abort_it ? HTTP_INGEST_ABORTED : HTTP_INGEST_OK);
    if (!abort_it)
        ASSERT_EQ(table_log_sync(t, in.lsn, &err), 0);
    json_t *j = ndjson_answer_json(&in.answer, o.rows, &s);
    o.answer = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    o.rejected = in.answer.rejected;
    o.blank = in.answer.blank;
    http_ingest_end(&in);

    strata_query q;
    query_init(&q);
    q.naggs = 2;
    q.aggs[0] = (query_agg){.fn = STRATA_AGG_COUNT, .col = -1};
    q.aggs[1] = (query_agg){.fn = STRATA_AGG_SUM, .col = 2};
    query_result *res;
    ASSERT_EQ(query_run(t, &q, &res, &err), 0);
    o.count = query_result_cell(res, 0, 0)->v.u;
    o.sum = o.count ? query_result_cell(res, 0, 1)->v.i : 0;
    query_result_free(res);
    query_free(&q);
    table_close(t);
    http_ingest_pool_destroy(&pool);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir); /* over a thousand runs: keep none */
    ASSERT_EQ(system(cmd), 0);
    return o;
}

static void same(const outcome *a, const outcome *b, const char *how)
{
    if (a->rows != b->rows || a->rejected != b->rejected || a->blank != b->blank || a->count != b->count ||
        a->sum != b->sum || strcmp(a->answer, b->answer) != 0)
        TEST_FAIL_("%s: %llu rows, %llu rejected, %llu blank, sum %lld, %s; whole: %llu, %llu, %llu, %lld, %s",
                   how, (unsigned long long)b->rows, (unsigned long long)b->rejected,
                   (unsigned long long)b->blank, (long long)b->sum, b->answer, (unsigned long long)a->rows,
                   (unsigned long long)a->rejected, (unsigned long long)a->blank, (long long)a->sum, a->answer);
}

/* The test body: a byte order mark, good lines, a blank one, a CRLF one, a malformed one,
 * one of the wrong type, a line over the event limit, more good lines, and a last line
 * without a newline. */
static char *make_body(size_t *len)
{
    size_t cap = EVENT_JSON_MAX_BYTES + 8192;
    char *b = malloc(cap);
    ASSERT(b);
    size_t n = 0;
    n += (size_t)snprintf(b + n, cap - n, "\xEF\xBB\xBF");
    for (int i = 0; i < 20; i++)
        n += (size_t)snprintf(b + n, cap - n, "{\"ts\": %d, \"k\": \"v%d\", \"n\": %d}\n", 1704067200 + i, i % 3, i);
    n += (size_t)snprintf(b + n, cap - n, "\n   \n");
    n += (size_t)snprintf(b + n, cap - n, "{\"ts\": 1704067300, \"k\": \"crlf\", \"n\": 100}\r\n");
    n += (size_t)snprintf(b + n, cap - n, "{\"ts\": 1704067301, \"k\": \n");
    n += (size_t)snprintf(b + n, cap - n, "{\"ts\": 1704067302, \"k\": \"x\", \"n\": \"seven\"}\n");
    n += (size_t)snprintf(b + n, cap - n, "{\"ts\": 1704067303, \"k\": \"");
    memset(b + n, 'z', EVENT_JSON_MAX_BYTES + 10); /* over the limit: skipped, reported */
    n += EVENT_JSON_MAX_BYTES + 10;
    n += (size_t)snprintf(b + n, cap - n, "\", \"n\": 1}\n");
    for (int i = 0; i < 5; i++)
        n += (size_t)snprintf(b + n, cap - n, "{\"ts\": %d, \"k\": \"after\", \"n\": %d}\n", 1704067400 + i, 1000 + i);
    n += (size_t)snprintf(b + n, cap - n, "{\"ts\": 1704067500, \"k\": \"last\", \"n\": 5000}");
    *len = n;
    return b;
}

TEST(whole_body_lands_what_it_should)
{
    size_t len;
    char *body = make_body(&len);
    size_t cut = len;
    outcome o = run(body, len, &cut, 1, false);
    ASSERT_U64_EQ(o.rows, 27); /* 20 + crlf + 5 after + last */
    ASSERT_U64_EQ(o.count, 27);
    ASSERT_EQ(o.sum, 190 + 100 + 5010 + 5000);
    ASSERT_U64_EQ(o.blank, 2);
    ASSERT_U64_EQ(o.rejected, 3);
    ASSERT_CONTAINS(o.answer, "\"line\":24");
    ASSERT_CONTAINS(o.answer, "\"line\":25");
    ASSERT_CONTAINS(o.answer, "\"line\":26");
    free(o.answer);
    free(body);
}

TEST(any_cut_of_the_body_lands_the_same)
{
    size_t len;
    char *body = make_body(&len);
    size_t whole_cut = len;
    outcome whole = run(body, len, &whole_cut, 1, false);
    size_t *cuts = malloc(sizeof *cuts * (len + 1));
    ASSERT(cuts);
    /* Fixed piece sizes. */
    static const size_t sizes[] = {1, 2, 3, 7, 64, 4096, 65536};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = 0;
        for (size_t at = sizes[k]; at < len; at += sizes[k])
            cuts[n++] = at;
        cuts[n++] = len;
        outcome o = run(body, len, cuts, n, false);
        char how[64];
        snprintf(how, sizeof how, "pieces of %zu bytes", sizes[k]);
        same(&whole, &o, how);
        free(o.answer);
    }
    /* Two pieces, cut at every byte of the lines around the long one and the end. */
    const char *mark = strstr(body, "{\"ts\": 1704067300");
    ASSERT(mark);
    size_t from = (size_t)(mark - body);
    for (size_t at = 1; at < len; at++) {
        if (at > 200 && at < from && at % 37 != 0)
            continue; /* the first lines: every 37th cut is enough */
        if (at > from + 300 && at < len - 400 && at % 4099 != 0)
            continue; /* inside the long line: a few cuts */
        size_t two[2] = {at, len};
        outcome o = run(body, len, two, 2, false);
        char how[64];
        snprintf(how, sizeof how, "cut at byte %zu", at);
        same(&whole, &o, how);
        free(o.answer);
    }
    /* Random cuts. */
    uint64_t seed = 42;
    for (int round = 0; round < 20; round++) {
        size_t n = 0;
        for (size_t at = 0;;) {
            at += 1 + test_rand_next(&seed) % 300;
            if (at >= len)
                break;
            cuts[n++] = at;
        }
        cuts[n++] = len;
        outcome o = run(body, len, cuts, n, false);
        same(&whole, &o, "random cuts");
        free(o.answer);
    }
    free(cuts);
    free(whole.answer);
    free(body);
}

TEST(aborted_request_lands_nothing)
{
    size_t len;
    char *body = make_body(&len);
    size_t cut = len / 2;
    size_t cuts[2] = {cut, len};
    outcome o = run(body, len, cuts, 2, true);
    ASSERT_U64_EQ(o.rows, 0);
    ASSERT_U64_EQ(o.count, 0);
    free(o.answer);
    free(body);
}

TEST_LIST(T(whole_body_lands_what_it_should), T(any_cut_of_the_body_lands_the_same), T(aborted_request_lands_nothing))
