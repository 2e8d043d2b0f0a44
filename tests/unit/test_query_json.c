/*
 * test_query_json.c — the JSON query language (http/query_parse.c) and the answer writer
 * (http/query_answer.c).
 *
 * Valid queries: every form of from/to (RFC 3339 with fractions and offsets, dates,
 * epoch ms including negative ones, now-relative against a fixed now with every duration
 * unit), every interval, fill, function, operator and value type, nested or/and trees,
 * group_by, order_by, limit, default names, null meaning "not given", and the limits
 * themselves (depth 16, 10000 values, 32 aggregates, 16 group columns). Invalid
 * queries: a table of bad inputs, each with the text its message must contain (the field
 * path and the reason), *out left untouched. Answers: hand-built results written as exact
 * text (integers at the edges of int64/uint64, shortest floats, NaN/inf as null, escaped
 * and repaired strings), every output read back by jansson. Through the engine: parsed
 * queries run on a small table (a segment and a memtable) give exact answers (fill,
 * buckets aligned to the epoch, integer times in milliseconds), and every valid corpus
 * query runs. The corpus tests/corpus/query is replayed as well.
 *
 * JSON literals are written with ' for " (see J()) to keep them readable.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/error.h"
#include "engine/query.h"
#include "engine/row_batch.h"
#include "engine/schema.h"
#include "engine/table.h"
#include "http/query_answer.h"
#include "http/query_parse.h"
#include "test.h"

/* 2024-06-01T12:00:00Z */
#define NOW INT64_C(1717243200000)
#define JAN1 INT64_C(1704067200000) /* 2024-01-01T00:00:00Z */
#define HOUR INT64_C(3600000)

/* ---- helpers ------------------------------------------------------------------------------ */

/* The text with every ' turned into ". Returns a heap buffer kept until the next call
 * that wraps around (one of 4, rotating). */
static const char *J(const char *s)
{
    static char *bufs[4];
    static int next;
    int k = next++ & 3;
    size_t n = strlen(s);
    free(bufs[k]);
    bufs[k] = malloc(n + 1);
    if (!bufs[k])
        abort();
    for (size_t i = 0; i <= n; i++)
        bufs[k][i] = s[i] == '\'' ? '"' : s[i];
    return bufs[k];
}

static void add_col(strata_schema *s, const char *name, strata_type t)
{
    strata_column *c = &s->cols[s->ncols++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->type = t;
}

#define LONG_COL "a_column_name_that_is_exactly_sixty_bytes_long_0123456789abc"

/* The fuzz target's schema; extra adds int64 "n", int64 "time" and a 60-byte name. */
static void make_schema(strata_schema *s, bool extra)
{
    schema_init(s);
    snprintf(s->name, sizeof s->name, "orders");
    add_col(s, "ts", STRATA_TIMESTAMP);
    add_col(s, "country", STRATA_STRING);
    add_col(s, "amount", STRATA_FLOAT64);
    add_col(s, "user_id", STRATA_UINT64);
    add_col(s, "qty", STRATA_INT32);
    add_col(s, "ok", STRATA_BOOL);
    if (extra) {
        add_col(s, "n", STRATA_INT64);
        add_col(s, "time", STRATA_INT64);
        add_col(s, LONG_COL, STRATA_FLOAT64);
    }
    s->time_col = 0;
}

enum { C_TS, C_COUNTRY, C_AMOUNT, C_USER, C_QTY, C_OK, C_N, C_TIME, C_LONG };

static strata_schema SC, FUZZ_SC;

static void setup(void)
{
    make_schema(&SC, true);
    make_schema(&FUZZ_SC, false);
    strata_err err = {0};
    if (strlen(LONG_COL) != 60 || schema_validate(&SC, &err) != 0 ||
        schema_validate(&FUZZ_SC, &err) != 0)
        TEST_FAIL_("test schema: %s", err.msg);
}

static int parse_raw(const char *text, strata_query *q, strata_err *err)
{
    setup();
    return query_parse_json(text, strlen(text), &SC, NOW, q, err);
}

/* Parses json (with ' for ") and fails the test when it is refused. */
static void ok(const char *json, strata_query *q)
{
    strata_err err = {0};
    if (parse_raw(J(json), q, &err) != 0)
        TEST_FAIL_("refused: %s\n  query: %s", err.msg, json);
}

/* The one predicate of a parsed where. */
static const segment_pred *only_pred(const strata_query *q)
{
    if (!q->where || q->where->kind != QX_PRED)
        TEST_FAIL_("expected a single predicate");
    return &q->where->pred;
}

#define BASE "{'table':'orders','select':[{'fn':'count'}],"

/* ---- valid queries ------------------------------------------------------------------------ */

TEST(minimal_gets_defaults)
{
    strata_query q;
    ok("{'table':'orders','select':[{'fn':'count'}]}", &q);
    ASSERT(q.from_ms == INT64_MIN);
    ASSERT_EQ(q.to_ms, NOW);
    ASSERT_EQ(q.interval_ms, 0);
    ASSERT_EQ(q.fill, QUERY_FILL_NONE);
    ASSERT_EQ(q.naggs, 1);
    ASSERT_EQ(q.aggs[0].fn, STRATA_AGG_COUNT);
    ASSERT_EQ(q.aggs[0].col, -1);
    ASSERT_STR_EQ(q.aggs[0].name, "count");
    ASSERT(q.where == NULL);
    ASSERT_EQ(q.ngroup, 0);
    ASSERT_EQ(q.norder, 0);
    ASSERT_EQ(q.limit, -1);
    ASSERT_EQ(q.timeout_ms, 0);
    ASSERT_U64_EQ(q.max_groups, 0);
    query_free(&q);
}

TEST(null_means_absent)
{
    strata_query q;
    ok(BASE "'from':null,'to':null,'interval':null,'where':null,'group_by':null,"
            "'order_by':null,'limit':null}",
       &q);
    ASSERT(q.from_ms == INT64_MIN);
    ASSERT_EQ(q.to_ms, NOW);
    ASSERT_EQ(q.interval_ms, 0);
    ASSERT(q.where == NULL);
    ASSERT_EQ(q.limit, -1);
    query_free(&q);
    ok(BASE "'where':[]}", &q);
    ASSERT(q.where == NULL);
    query_free(&q);
}

TEST(text_need_not_be_terminated)
{
    const char *json = J("{'table':'orders','select':[{'fn':'count'}],'limit':5}XXXX");
    size_t len = strlen(json) - 4;
    strata_query q;
    strata_err err = {0};
    setup();
    ASSERT_EQ(query_parse_json(json, len, &SC, NOW, &q, &err), 0);
    ASSERT_EQ(q.limit, 5);
    query_free(&q);
}

static const struct {
    const char *text; /* JSON value, ' for " */
    int64_t ms;
} time_forms[] = {
    {"'2024-01-01T00:00:00Z'", JAN1},
    {"'2024-01-01t00:00:00z'", JAN1},
    {"'2024-01-01T00:00:00.123Z'", JAN1 + 123},
    {"'2024-01-01T00:00:00.5Z'", JAN1 + 500},
    {"'2024-01-01T00:00:00.123456789Z'", JAN1 + 123},
    {"'2024-01-01T00:00:00.999999Z'", JAN1 + 999},
    {"'2024-01-01T02:00:00+02:00'", JAN1},
    {"'2023-12-31T18:30:00-05:30'", JAN1},
    {"'2024-01-01T05:30:00.250+05:30'", JAN1 + 250},
    {"'2024-01-01'", JAN1},
    {"'2024-02-29T12:00:00Z'", JAN1 + (31 + 28) * 24 * HOUR + 12 * HOUR},
    {"'1969-12-31T00:00:00Z'", -86400000},
    {"'1970-01-01T00:00:00Z'", 0},
    {"1704067200000", JAN1},
    {"-86400000", -86400000},
    {"0", 0},
    {"'now'", NOW},
    {"'now-1h'", NOW - HOUR},
    {"'now-15m'", NOW - 15 * 60000},
    {"'now+1d'", NOW + 24 * HOUR},
    {"'now-500ms'", NOW - 500},
    {"'now-7d'", NOW - 7 * 24 * HOUR},
    {"'now-90s'", NOW - 90000},
    /* every duration unit of engine/units.h: ms s m h d w y */
    {"'now-1500ms'", NOW - 1500},
    {"'now-2s'", NOW - 2000},
    {"'now-3m'", NOW - 3 * 60000},
    {"'now-4h'", NOW - 4 * HOUR},
    {"'now-5d'", NOW - 5 * 24 * HOUR},
    {"'now-2w'", NOW - 14 * 24 * HOUR},
    {"'now-1y'", NOW - 365 * 24 * HOUR},
    {"'now-0s'", NOW},
};

TEST(every_time_form)
{
    for (size_t i = 0; i < sizeof time_forms / sizeof time_forms[0]; i++) {
        char json[512];
        strata_query q;
        /* as from, with a far-future to */
        snprintf(json, sizeof json, BASE "'from':%s,'to':'2100-01-01'}", time_forms[i].text);
        ok(json, &q);
        if (q.from_ms != time_forms[i].ms)
            TEST_FAIL_("from %s: %" PRId64 " vs %" PRId64, time_forms[i].text, q.from_ms,
                       time_forms[i].ms);
        query_free(&q);
        /* as to, with an early from */
        snprintf(json, sizeof json, BASE "'from':'1900-01-01','to':%s}", time_forms[i].text);
        ok(json, &q);
        if (q.to_ms != time_forms[i].ms)
            TEST_FAIL_("to %s: %" PRId64 " vs %" PRId64, time_forms[i].text, q.to_ms,
                       time_forms[i].ms);
        query_free(&q);
    }
}

TEST(time_range_extremes)
{
    strata_query q;
    ok(BASE "'from':-9223372036854775808,'to':9223372036854775807}", &q);
    ASSERT(q.from_ms == INT64_MIN);
    ASSERT(q.to_ms == INT64_MAX);
    query_free(&q);
    ok(BASE "'from':'0000-01-01T00:00:00Z','to':'9999-12-31T23:59:59.999Z'}", &q);
    ASSERT_EQ(q.from_ms, STRATA_TS_MIN);
    ASSERT_EQ(q.to_ms, STRATA_TS_MAX);
    query_free(&q);
    /* one millisecond wide */
    ok(BASE "'from':1704067200000,'to':'2024-01-01T00:00:00.001Z'}", &q);
    ASSERT_EQ(q.to_ms - q.from_ms, 1);
    query_free(&q);
}

TEST(every_interval)
{
    static const struct {
        const char *text;
        int64_t ms;
    } iv[] = {{"1s", 1000},      {"10s", 10000},   {"1m", 60000},       {"5m", 300000},
              {"90m", 5400000},  {"1h", 3600000},  {"1d", 86400000},    {"1000ms", 1000},
              {"24h", 86400000}, {"1500ms", 1500}, {"86400s", 86400000}};
    for (size_t i = 0; i < sizeof iv / sizeof iv[0]; i++) {
        char json[256];
        strata_query q;
        snprintf(json, sizeof json, BASE "'interval':'%s'}", iv[i].text);
        ok(json, &q);
        ASSERT_EQ(q.interval_ms, iv[i].ms);
        query_free(&q);
    }
}

TEST(fill_parses)
{
    static const struct {
        const char *text;
        query_fill fill;
    } fills[] = {{"'zero'", QUERY_FILL_ZERO}, {"'null'", QUERY_FILL_NULL},
                 {"'none'", QUERY_FILL_NONE}, {"null", QUERY_FILL_NONE}};
    for (size_t i = 0; i < sizeof fills / sizeof fills[0]; i++) {
        char json[256];
        strata_query q;
        snprintf(json, sizeof json, BASE "'from':'now-1d','interval':'1h','fill':%s}",
                 fills[i].text);
        ok(json, &q);
        ASSERT_EQ(q.fill, fills[i].fill);
        ASSERT_EQ(q.to_ms, NOW); /* to may be left out: it is now */
        query_free(&q);
    }
    strata_query q;
    ok(BASE "'fill':'none'}", &q); /* "none" needs nothing */
    ASSERT_EQ(q.fill, QUERY_FILL_NONE);
    query_free(&q);
    /* "time" is free as an output name when there are no buckets */
    ok("{'table':'orders','select':[{'fn':'count','as':'time'}]}", &q);
    ASSERT_STR_EQ(q.aggs[0].name, "time");
    query_free(&q);
}

TEST(every_function_and_default_names)
{
    strata_query q;
    ok("{'table':'orders','select':[{'fn':'count'},{'fn':'sum','column':'amount'},"
       "{'fn':'min','column':'qty'},{'fn':'max','column':'ts'},{'fn':'avg','column':'amount'},"
       "{'fn':'uniq','column':'country'},{'fn':'quantile','column':'amount','q':0.99},"
       "{'fn':'sum','column':'user_id'},{'fn':'uniq','column':'user_id'},"
       "{'fn':'quantile','column':'qty','q':0},{'fn':'max','column':'ok'}]}",
       &q);
    ASSERT_EQ(q.naggs, 11);
    static const struct {
        strata_agg fn;
        int col;
        const char *name;
    } want[] = {
        {STRATA_AGG_COUNT, -1, "count"},
        {STRATA_AGG_SUM, C_AMOUNT, "sum_amount"},
        {STRATA_AGG_MIN, C_QTY, "min_qty"},
        {STRATA_AGG_MAX, C_TS, "max_ts"},
        {STRATA_AGG_AVG, C_AMOUNT, "avg_amount"},
        {STRATA_AGG_UNIQ, C_COUNTRY, "uniq_country"},
        {STRATA_AGG_QUANTILE, C_AMOUNT, "quantile_amount"},
        {STRATA_AGG_SUM, C_USER, "sum_user_id"},
        {STRATA_AGG_UNIQ, C_USER, "uniq_user_id"},
        {STRATA_AGG_QUANTILE, C_QTY, "quantile_qty"},
        {STRATA_AGG_MAX, C_OK, "max_ok"},
    };
    for (int i = 0; i < 11; i++) {
        ASSERT_EQ(q.aggs[i].fn, want[i].fn);
        ASSERT_EQ(q.aggs[i].col, want[i].col);
        ASSERT_STR_EQ(q.aggs[i].name, want[i].name);
    }
    ASSERT_DBL_EQ(q.aggs[6].q, 0.99);
    ASSERT_DBL_EQ(q.aggs[9].q, 0.0);
    query_free(&q);

    ok("{'table':'orders','select':[{'fn':'count','as':'orders'},"
       "{'fn':'sum','column':'amount','as':'gmv'},"
       "{'fn':'quantile','column':'amount','q':1,'as':'p100'},"
       "{'fn':'sum','column':'" LONG_COL "','as':'x'}]}",
       &q);
    ASSERT_STR_EQ(q.aggs[0].name, "orders");
    ASSERT_STR_EQ(q.aggs[1].name, "gmv");
    ASSERT_STR_EQ(q.aggs[2].name, "p100");
    ASSERT_DBL_EQ(q.aggs[2].q, 1.0);
    ASSERT_EQ(q.aggs[3].col, C_LONG);
    query_free(&q);

    /* a 63-byte name is the longest */
    ok("{'table':'orders','select':[{'fn':'count','as':'"
       "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk'}]}",
       &q);
    ASSERT_EQ(strlen(q.aggs[0].name), 63);
    query_free(&q);
}

TEST(every_operator_and_value_type)
{
    strata_query q;
    ok(BASE "'where':["
            "{'column':'country','op':'=','value':'US'},"
            "{'column':'amount','op':'!=','value':1.5},"
            "{'column':'qty','op':'<','value':-2147483648},"
            "{'column':'qty','op':'<=','value':2147483647},"
            "{'column':'user_id','op':'>','value':'18446744073709551615'},"
            "{'column':'ts','op':'>=','value':'2024-01-01T00:00:00Z'},"
            "{'column':'country','op':'in','values':['paid','shipped','']},"
            "{'column':'user_id','op':'not_in','values':[1,'9223372036854775808',"
            "9223372036854775807]},"
            "{'column':'ok','op':'=','value':true},"
            "{'column':'ok','op':'!=','value':false},"
            "{'column':'amount','op':'>','value':3},"
            "{'column':'n','op':'=','value':-9223372036854775808},"
            "{'column':'ts','op':'<','value':1704067200000},"
            "{'column':'ts','op':'>','value':'now-1h'},"
            "{'column':'amount','op':'in','values':[]},"
            "{'column':'ts','op':'not_in','values':['2024-01-01',0]},"
            "{'column':'amount','op':'<=','value':1e300}]}",
       &q);
    const query_expr *w = q.where;
    ASSERT(w && w->kind == QX_AND);
    ASSERT_EQ(w->nkids, 17);
    for (uint32_t i = 0; i < w->nkids; i++) {
        ASSERT_EQ(w->kids[i].kind, QX_PRED);
        ASSERT(w->kids[i].pred.vals == w->kids[i].vals);
    }
    const query_expr *k = w->kids;
    ASSERT_EQ(k[0].pred.col, C_COUNTRY);
    ASSERT_EQ(k[0].pred.op, SEGMENT_PRED_EQ);
    ASSERT_EQ(k[0].pred.nvals, 1);
    ASSERT_EQ(k[0].vals[0].s.len, 2);
    ASSERT(memcmp(k[0].vals[0].s.ptr, "US", 2) == 0);
    ASSERT(k[0].vals[0].s.ptr == k[0].strs[0]);
    ASSERT_EQ(k[1].pred.op, SEGMENT_PRED_NE);
    ASSERT_DBL_EQ(k[1].vals[0].f, 1.5);
    ASSERT_EQ(k[2].pred.op, SEGMENT_PRED_LT);
    ASSERT_EQ(k[2].vals[0].i, INT32_MIN);
    ASSERT_EQ(k[3].pred.op, SEGMENT_PRED_LE);
    ASSERT_EQ(k[3].vals[0].i, INT32_MAX);
    ASSERT_EQ(k[4].pred.op, SEGMENT_PRED_GT);
    ASSERT_U64_EQ((uint64_t)k[4].vals[0].i, UINT64_MAX);
    ASSERT_EQ(k[5].pred.op, SEGMENT_PRED_GE);
    ASSERT_EQ(k[5].pred.col, C_TS);
    ASSERT_EQ(k[5].vals[0].i, JAN1);
    ASSERT_EQ(k[6].pred.op, SEGMENT_PRED_IN);
    ASSERT_EQ(k[6].pred.nvals, 3);
    ASSERT_EQ(k[6].vals[1].s.len, 7);
    ASSERT(memcmp(k[6].vals[1].s.ptr, "shipped", 7) == 0);
    ASSERT_EQ(k[6].vals[2].s.len, 0);
    ASSERT_EQ(k[7].pred.op, SEGMENT_PRED_NOT_IN);
    ASSERT_EQ(k[7].pred.nvals, 3);
    ASSERT_U64_EQ((uint64_t)k[7].vals[0].i, 1);
    ASSERT_U64_EQ((uint64_t)k[7].vals[1].i, UINT64_C(9223372036854775808));
    ASSERT_U64_EQ((uint64_t)k[7].vals[2].i, INT64_MAX);
    ASSERT(k[7].strs == NULL);
    ASSERT_EQ(k[8].pred.col, C_OK);
    ASSERT_EQ(k[8].vals[0].i, 1);
    ASSERT_EQ(k[9].vals[0].i, 0);
    ASSERT_DBL_EQ(k[10].vals[0].f, 3.0);
    ASSERT(k[11].vals[0].i == INT64_MIN);
    ASSERT_EQ(k[12].vals[0].i, JAN1);
    ASSERT_EQ(k[13].vals[0].i, NOW - HOUR);
    ASSERT_EQ(k[14].pred.op, SEGMENT_PRED_IN);
    ASSERT_EQ(k[14].pred.nvals, 0);
    ASSERT_EQ(k[15].pred.nvals, 2);
    ASSERT_EQ(k[15].vals[0].i, JAN1);
    ASSERT_EQ(k[15].vals[1].i, 0);
    ASSERT_DBL_EQ(k[16].vals[0].f, 1e300);
    query_free(&q);
    ASSERT(q.where == NULL);
}

/* Regression: {"column":"qty","op":"=","value":2.0} was refused ("got a number with a
 * fraction or exponent") though ingest takes 2.0 into the same column. An integral real
 * below 2^53 is that integer for timestamp, int64, int32 and uint64 columns, in value and in
 * values lists; -0.0 is 0. */
TEST(integral_reals_compare_with_integer_columns)
{
    strata_query q;
    ok(BASE "'where':["
            "{'column':'qty','op':'=','value':2.0},"
            "{'column':'qty','op':'=','value':-0.0},"
            "{'column':'n','op':'>','value':1e3},"
            "{'column':'n','op':'<','value':-9007199254740991.0},"
            "{'column':'user_id','op':'in','values':[1.0,9007199254740991.0,7]},"
            "{'column':'ts','op':'>=','value':1.7040672e12},"
            "{'column':'qty','op':'not_in','values':[-2147483648.0,2147483647e0]},"
            "{'column':'user_id','op':'=','value':-0.0}]}",
       &q);
    const query_expr *k = q.where->kids;
    ASSERT_EQ(q.where->nkids, 8);
    ASSERT_EQ(k[0].vals[0].i, 2);
    ASSERT_EQ(k[1].vals[0].i, 0);
    ASSERT_EQ(k[2].vals[0].i, 1000);
    ASSERT(k[3].vals[0].i == -INT64_C(9007199254740991));
    ASSERT_EQ(k[4].pred.nvals, 3);
    ASSERT_EQ(k[4].vals[0].i, 1);
    ASSERT(k[4].vals[1].i == INT64_C(9007199254740991));
    ASSERT_EQ(k[4].vals[2].i, 7);
    ASSERT_EQ(k[5].vals[0].i, JAN1);
    ASSERT_EQ(k[6].vals[0].i, INT32_MIN);
    ASSERT_EQ(k[6].vals[1].i, INT32_MAX);
    ASSERT_EQ(k[7].vals[0].i, 0);
    query_free(&q);
}

TEST(single_condition_is_the_root)
{
    strata_query q;
    ok(BASE "'where':[{'column':'qty','op':'>=','value':5}]}", &q);
    const segment_pred *p = only_pred(&q);
    ASSERT_EQ(p->col, C_QTY);
    ASSERT_EQ(p->op, SEGMENT_PRED_GE);
    ASSERT_EQ(p->vals[0].i, 5);
    query_free(&q);
    /* the uint64 beyond 2^63, as the string form the format asks for */
    ok(BASE "'where':[{'column':'user_id','op':'=','value':'18446744073709551615'}]}", &q);
    ASSERT_U64_EQ((uint64_t)only_pred(&q)->vals[0].i, UINT64_MAX);
    query_free(&q);
    ok(BASE "'where':[{'column':'user_id','op':'=','value':'9223372036854775808'}]}", &q);
    ASSERT_U64_EQ((uint64_t)only_pred(&q)->vals[0].i, UINT64_C(1) << 63);
    query_free(&q);
    ok(BASE "'where':[{'column':'user_id','op':'=','value':'0'}]}", &q);
    ASSERT_U64_EQ((uint64_t)only_pred(&q)->vals[0].i, 0);
    query_free(&q);
}

TEST(nested_or_and)
{
    strata_query q;
    ok(BASE "'where':[{'or':[{'column':'country','op':'=','value':'US'},"
            "{'and':[{'column':'amount','op':'>','value':100},"
            "{'column':'ok','op':'=','value':true}]}]}]}",
       &q);
    const query_expr *w = q.where;
    ASSERT(w && w->kind == QX_OR);
    ASSERT_EQ(w->nkids, 2);
    ASSERT_EQ(w->kids[0].kind, QX_PRED);
    ASSERT_EQ(w->kids[0].pred.col, C_COUNTRY);
    ASSERT_EQ(w->kids[1].kind, QX_AND);
    ASSERT_EQ(w->kids[1].nkids, 2);
    ASSERT_EQ(w->kids[1].kids[0].pred.col, C_AMOUNT);
    ASSERT_DBL_EQ(w->kids[1].kids[0].vals[0].f, 100.0);
    ASSERT_EQ(w->kids[1].kids[1].pred.col, C_OK);
    query_free(&q);

    /* a list of two: AND of a predicate and an OR of one */
    ok(BASE "'where':[{'column':'qty','op':'=','value':1},"
            "{'or':[{'column':'qty','op':'=','value':2}]}]}",
       &q);
    ASSERT_EQ(q.where->kind, QX_AND);
    ASSERT_EQ(q.where->nkids, 2);
    ASSERT_EQ(q.where->kids[1].kind, QX_OR);
    ASSERT_EQ(q.where->kids[1].nkids, 1);
    ASSERT_EQ(q.where->kids[1].kids[0].vals[0].i, 2);
    query_free(&q);
}

/* where: [ <depth-1 nested ors around one predicate> ] */
static char *nested(int depth, const char *leaf_value)
{
    size_t cap = 64 + (size_t)depth * 16 + 128;
    char *s = malloc(cap);
    if (!s)
        abort();
    size_t n = (size_t)snprintf(s, cap, BASE "'where':[");
    for (int d = 1; d < depth; d++)
        n += (size_t)snprintf(s + n, cap - n, "{'or':[");
    n += (size_t)snprintf(s + n, cap - n, "{'column':'qty','op':'=','value':%s}", leaf_value);
    for (int d = 1; d < depth; d++)
        n += (size_t)snprintf(s + n, cap - n, "]}");
    snprintf(s + n, cap - n, "]}");
    return s;
}

TEST(depth_limit)
{
    strata_query q;
    char *s = nested(QUERY_PARSE_MAX_DEPTH, "7");
    ok(s, &q);
    free(s);
    const query_expr *e = q.where;
    int depth = 1;
    while (e->kind == QX_OR) {
        ASSERT_EQ(e->nkids, 1);
        e = &e->kids[0];
        depth++;
    }
    ASSERT_EQ(depth, QUERY_PARSE_MAX_DEPTH);
    ASSERT_EQ(e->vals[0].i, 7);
    query_free(&q);

    strata_err err = {0};
    s = nested(QUERY_PARSE_MAX_DEPTH + 1, "7");
    ASSERT_EQ(parse_raw(J(s), &q, &err), STRATA_EINVAL);
    free(s);
    ASSERT_CONTAINS(err.msg, "where[0].or[0].or[0]");
    ASSERT_CONTAINS(err.msg, "nested more than 16 deep");

    /* a deep failure frees the partial tree (ASan's leak check watches) */
    s = nested(QUERY_PARSE_MAX_DEPTH, "'x'");
    ASSERT_EQ(parse_raw(J(s), &q, &err), STRATA_EINVAL);
    free(s);
    ASSERT_CONTAINS(err.msg, ".or[0].value: column 'qty' is int32, got a string");
    /* very deep JSON (deeper than the limit by far) is refused, not recursed into */
    s = nested(1000, "1");
    ASSERT_EQ(parse_raw(J(s), &q, &err), STRATA_EINVAL);
    free(s);
    ASSERT_CONTAINS(err.msg, "nested more than 16 deep");
}

static char *values_list(int n, const char *col)
{
    size_t cap = 128 + (size_t)n * 12;
    char *s = malloc(cap);
    if (!s)
        abort();
    size_t len = (size_t)snprintf(s, cap, BASE "'where':[{'column':'%s','op':'in','values':[", col);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, i ? ",'v%d'" : "'v%d'", i);
    snprintf(s + len, cap - len, "]}]}");
    return s;
}

TEST(value_list_limit)
{
    strata_query q;
    char *s = values_list(QUERY_PARSE_MAX_IN_VALUES, "country");
    ok(s, &q);
    free(s);
    const segment_pred *p = only_pred(&q);
    ASSERT_EQ(p->nvals, QUERY_PARSE_MAX_IN_VALUES);
    ASSERT_EQ(p->vals[9999].s.len, 5);
    ASSERT(memcmp(p->vals[9999].s.ptr, "v9999", 5) == 0);
    query_free(&q);
    strata_err err = {0};
    s = values_list(QUERY_PARSE_MAX_IN_VALUES + 1, "country");
    ASSERT_EQ(parse_raw(J(s), &q, &err), STRATA_EINVAL);
    free(s);
    ASSERT_CONTAINS(err.msg, "where[0].values: 10001 values, at most 10000 allowed");
    /* a bad value late in a string list frees the copies made so far */
    s = values_list(100, "country");
    char *bad = strstr(s, "'v50'");
    memcpy(bad, "12345", 5);
    ASSERT_EQ(parse_raw(J(s), &q, &err), STRATA_EINVAL);
    free(s);
    ASSERT_CONTAINS(err.msg, "where[0].values[50]: column 'country' is string, got an integer");
}

TEST(group_order_limit)
{
    strata_query q;
    ok("{'table':'orders','from':'2024-01-01','to':'2024-01-02','interval':'1h',"
       "'group_by':['country','ok'],"
       "'select':[{'fn':'count','as':'orders'},{'fn':'sum','column':'amount','as':'gmv'}],"
       "'order_by':[{'column':'gmv','desc':true},{'column':'time'},"
       "{'column':'country','desc':false},{'column':'orders','desc':null}],"
       "'limit':10}",
       &q);
    ASSERT_EQ(q.from_ms, JAN1);
    ASSERT_EQ(q.to_ms, JAN1 + 24 * HOUR);
    ASSERT_EQ(q.interval_ms, HOUR);
    ASSERT_EQ(q.ngroup, 2);
    ASSERT_EQ(q.group_cols[0], C_COUNTRY);
    ASSERT_EQ(q.group_cols[1], C_OK);
    ASSERT_EQ(q.norder, 4);
    /* output columns: time 0, country 1, ok 2, orders 3, gmv 4 */
    ASSERT_EQ(q.order[0].output_col, 4);
    ASSERT(q.order[0].desc);
    ASSERT_EQ(q.order[1].output_col, 0);
    ASSERT(!q.order[1].desc);
    ASSERT_EQ(q.order[2].output_col, 1);
    ASSERT(!q.order[2].desc);
    ASSERT_EQ(q.order[3].output_col, 3);
    ASSERT_EQ(q.limit, 10);
    query_free(&q);

    /* without interval the group columns come first; limit 0 is allowed */
    ok("{'table':'orders','group_by':['user_id'],'select':[{'fn':'count'}],"
       "'order_by':[{'column':'count'},{'column':'user_id','desc':true}],'limit':0}",
       &q);
    ASSERT_EQ(q.order[0].output_col, 1);
    ASSERT_EQ(q.order[1].output_col, 0);
    ASSERT(q.order[1].desc);
    ASSERT_EQ(q.limit, 0);
    query_free(&q);

    /* a column named "time" may be grouped when there are no buckets */
    ok(BASE "'group_by':['time','ts','amount']}", &q);
    ASSERT_EQ(q.group_cols[0], C_TIME);
    query_free(&q);
}

TEST(limits_of_lists)
{
    strata_query q;
    char json[8192];
    size_t n = (size_t)snprintf(json, sizeof json, "{'table':'orders','select':[");
    for (int i = 0; i < QUERY_MAX_AGGS; i++)
        n += (size_t)snprintf(json + n, sizeof json - n, "%s{'fn':'count','as':'c%d'}",
                              i ? "," : "", i);
    n += (size_t)snprintf(json + n, sizeof json - n, "],'order_by':[");
    for (int i = 0; i < QUERY_MAX_ORDER; i++)
        n += (size_t)snprintf(json + n, sizeof json - n, "%s{'column':'c%d'}", i ? "," : "", i);
    snprintf(json + n, sizeof json - n, "]}");
    ok(json, &q);
    ASSERT_EQ(q.naggs, QUERY_MAX_AGGS);
    ASSERT_STR_EQ(q.aggs[31].name, "c31");
    ASSERT_EQ(q.norder, QUERY_MAX_ORDER);
    ASSERT_EQ(q.order[15].output_col, 15);
    query_free(&q);
}

TEST(table_name)
{
    char name[STRATA_NAME_MAX + 1];
    strata_err err = {0};
    const char *t = J("{'select':[],'table':'orders','whatever':1}");
    ASSERT_EQ(query_parse_table_name(t, strlen(t), name, sizeof name, &err), 0);
    ASSERT_STR_EQ(name, "orders");

    static const struct {
        const char *json, *needle;
    } bad[] = {
        {"{'select':[]}", "table: required"},
        {"{'table':null}", "table: required"},
        {"{'table':5}", "table: expected a table name (a string), got an integer"},
        {"{'table':''}", "table: must not be empty"},
        {"[]", "expected a query (a JSON object), got an array"},
        {"{'table':", "malformed JSON at line 1 column"},
        {"", "malformed JSON"},
        {"{'table':'abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmn'}",
         "table: name too long (66 bytes, at most 64)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memcpy(name, "unchanged", 10);
        t = J(bad[i].json);
        err.msg[0] = 0;
        ASSERT_EQ(query_parse_table_name(t, strlen(t), name, sizeof name, &err), STRATA_EINVAL);
        ASSERT_CONTAINS(err.msg, bad[i].needle);
        ASSERT_STR_EQ(name, "unchanged");
    }
    ASSERT_EQ(query_parse_table_name(NULL, 0, name, sizeof name, &err), STRATA_EINVAL);
}

/* ---- invalid queries ---------------------------------------------------------------------- */

static const struct {
    const char *json; /* ' for " */
    const char *needle;
} invalid[] = {
    /* the document */
    {"{'table':", "malformed JSON at line 1 column"},
    {"", "malformed JSON"},
    {"{'table':'orders','table':'orders','select':[{'fn':'count'}]}", "duplicate object key"},
    {BASE "'limit':99999999999999999999}", "write integers above 9223372036854775807 as decimal"},
    {"[{'table':'orders'}]", "expected a query (a JSON object), got an array"},
    {"'orders'", "malformed JSON at line 1 column 8: '[' or '{' expected"},
    {"{'select':[{'fn':'count'}]}", "table: required"},
    {"{'table':['orders'],'select':[{'fn':'count'}]}", "table: expected a table name"},
    {"{'table':'other','select':[{'fn':'count'}]}", "table: 'other' is not the table 'orders'"},
    {BASE "'grup_by':['country']}", "unknown key 'grup_by' (did you mean 'group_by'?)"},
    {BASE "'colour':1}", "unknown key 'colour' (expected one of table, from, to"},
    /* from, to */
    {BASE "'from':'yesterday'}", "from: 'yesterday' is not a time (expected RFC 3339"},
    {BASE "'from':1.5}", "from: expected a time (RFC 3339"},
    {BASE "'from':true}", "from: expected a time"},
    {BASE "'to':'2023-02-29'}", "to: '2023-02-29' is not a time"},
    {BASE "'to':'2024-01-01T00:00:00'}", "to: '2024-01-01T00:00:00' is not a time"},
    {BASE "'to':'2024-01-01T25:00:00Z'}", "to: '2024-01-01T25:00:00Z' is not a time"},
    {BASE "'from':'now-1x'}", "from: 'now-1x' is not a time (after \"now\""},
    {BASE "'from':'now - 1h'}", "from: 'now - 1h' is not a time"},
    {BASE "'from':'now-'}", "from: 'now-' is not a time"},
    {BASE "'from':'nowhere'}", "from: 'nowhere' is not a time"},
    {BASE "'from':'now-1h30m'}", "from: 'now-1h30m' is not a time"},
    {BASE "'from':'now-1H'}", "from: 'now-1H' is not a time"},
    {BASE "'from':'now-1mo'}", "from: 'now-1mo' is not a time"},
    {BASE "'from':'now-1.5h'}", "from: 'now-1.5h' is not a time"},
    {BASE "'from':'now-1 h'}", "from: 'now-1 h' is not a time"},
    {BASE "'from':'now-9999999999999999y'}", "from: 'now-9999999999999999y' is not a time"},
    {BASE "'from':'now+9223372036854775807ms'}", "from: 'now+9223372036854775807ms' is not a time"},
    {BASE "'from':'2024-01-02','to':'2024-01-01'}",
     "from: 2024-01-02T00:00:00Z is not before to: 2024-01-01T00:00:00Z"},
    {BASE "'from':'2024-01-01T00:00:00.5Z','to':'2024-01-01T00:00:00.5Z'}",
     "from: 2024-01-01T00:00:00.500Z is not before to: 2024-01-01T00:00:00.500Z"},
    {BASE "'from':'now+1h'}",
     "from: 2024-06-01T13:00:00Z is not before to: 2024-06-01T12:00:00Z (now)"},
    {BASE "'to':-9223372036854775808}", "from: the beginning of time is not before to"},
    {BASE "'from':9223372036854775807,'to':9223372036854775807}",
     "from: 9223372036854775807 ms is not before to: 9223372036854775807 ms"},
    /* interval */
    {BASE "'interval':'500ms'}", "interval: '500ms' is out of range (from 1s to 1d)"},
    {BASE "'interval':'2d'}", "interval: '2d' is out of range"},
    {BASE "'interval':'0s'}", "interval: '0s' is out of range"},
    {BASE "'interval':'1x'}",
     "interval: '1x' is not a duration (a whole number and one unit of ms, s, m, h, d, such as "
     "\"1m\")"},
    {BASE "'interval':'1w'}", "interval: '1w' is out of range (from 1s to 1d)"},
    {BASE "'interval':'999ms'}", "interval: '999ms' is out of range"},
    {BASE "'interval':'1.5m'}", "interval: '1.5m' is not a duration"},
    {BASE "'interval':'1H'}", "interval: '1H' is not a duration"},
    /* fill */
    {BASE "'from':'now-1d','fill':'zero'}",
     "fill: \"zero\" needs \"interval\", the time buckets it fills (such as \"interval\": "
     "\"1h\")"},
    {BASE "'interval':'1h','fill':'zero'}",
     "fill: \"zero\" needs \"from\" (filling starts at the bucket holding from, such as "
     "\"from\": \"now-1d\"; without it the query starts at the beginning of time)"},
    {BASE "'interval':'1h','fill':'null','from':null}", "fill: \"null\" needs \"from\""},
    {BASE "'interval':'1h','fill':'null','from':-9223372036854775808}",
     "fill: \"null\" needs \"from\""},
    {BASE "'interval':'1h','fill':'zero','from':0,'to':9223372036854775807}",
     "fill: \"zero\" needs \"to\" before the end of time (leave \"to\" out for now)"},
    {BASE "'interval':'1h','from':'now-1d','fill':'zeros'}",
     "fill: unknown fill 'zeros' (did you mean 'zero'?)"},
    {BASE "'interval':'1h','from':'now-1d','fill':'previous'}",
     "fill: unknown fill 'previous' (expected one of none, zero, null)"},
    {BASE "'interval':'1h','from':'now-1d','fill':0}",
     "fill: expected one of \"none\", \"zero\", \"null\", got an integer"},
    {BASE "'interval':'1h','from':'now-1d','fill':true}", "fill: expected one of"},
    {BASE "'interval':'1h','from':'now-1d','fil':'zero'}",
     "unknown key 'fil' (did you mean 'fill'?)"},
    {BASE "'interval':'-1m'}", "interval: '-1m' is not a duration"},
    {BASE "'interval':60000}",
     "interval: expected a duration string such as \"1m\", got an integer"},
    /* select */
    {"{'table':'orders'}", "select: required"},
    {"{'table':'orders','select':[]}", "select: needs at least one aggregate"},
    {"{'table':'orders','select':{'fn':'count'}}",
     "select: expected an array of aggregates, got an object"},
    {"{'table':'orders','select':['count']}", "select[0]: expected an aggregate"},
    {"{'table':'orders','select':[{'fn':'median','column':'amount'}]}",
     "select[0].fn: unknown function 'median' (expected one of count, sum, min, max, avg, uniq, "
     "quantile)"},
    {"{'table':'orders','select':[{'column':'amount'}]}", "select[0].fn: required"},
    {"{'table':'orders','select':[{'fn':1}]}", "select[0].fn: expected a function name"},
    {"{'table':'orders','select':[{'fn':'count','column':'amount'}]}",
     "select[0].column: count takes no column"},
    {"{'table':'orders','select':[{'fn':'count'},{'fn':'sum'}]}",
     "select[1].column: required for sum"},
    {"{'table':'orders','select':[{'fn':'sum','column':'country'}]}",
     "select[0].column: sum needs a numeric column, 'country' is a string"},
    {"{'table':'orders','select':[{'fn':'avg','column':'country'}]}",
     "select[0].column: avg needs a numeric column"},
    {"{'table':'orders','select':[{'fn':'min','column':'country'}]}",
     "select[0].column: min needs a numeric column"},
    {"{'table':'orders','select':[{'fn':'quantile','column':'country','q':0.5}]}",
     "select[0].column: quantile needs a numeric column"},
    {"{'table':'orders','select':[{'fn':'sum','column':'amout'}]}",
     "select[0].column: no column 'amout' in table 'orders' (did you mean 'amount'?)"},
    {"{'table':'orders','select':[{'fn':'sum','column':'zzzzzz'}]}",
     "select[0].column: no column 'zzzzzz' in table 'orders'"},
    {"{'table':'orders','select':[{'fn':'sum','column':7}]}",
     "select[0].column: expected a column name"},
    {"{'table':'orders','select':[{'fn':'quantile','column':'amount'}]}",
     "select[0].q: required for quantile"},
    {"{'table':'orders','select':[{'fn':'quantile','column':'amount','q':1.5}]}",
     "select[0].q: 1.5 is not between 0 and 1"},
    {"{'table':'orders','select':[{'fn':'quantile','column':'amount','q':-0.1}]}",
     "select[0].q: -0.1 is not between 0 and 1"},
    {"{'table':'orders','select':[{'fn':'quantile','column':'amount','q':'0.5'}]}",
     "select[0].q: expected a number between 0 and 1, got a string"},
    {"{'table':'orders','select':[{'fn':'sum','column':'amount','q':0.5}]}",
     "select[0].q: only quantile takes q"},
    {"{'table':'orders','select':[{'fn':'sum','colum':'amount'}]}",
     "select[0]: unknown key 'colum' (did you mean 'column'?)"},
    {"{'table':'orders','select':[{'fn':'count','as':'gmv'},{'fn':'count','as':'x'},"
     "{'fn':'max','column':'qty'},{'fn':'sum','column':'amount','as':'gmv'}]}",
     "select[3].as: 'gmv' is used twice"},
    {"{'table':'orders','select':[{'fn':'count'},{'fn':'count'}]}",
     "select[1].as: 'count' is used twice (it is the default name; set \"as\")"},
    {"{'table':'orders','select':[{'fn':'count','as':''}]}", "select[0].as: must not be empty"},
    {"{'table':'orders','select':[{'fn':'count','as':5}]}",
     "select[0].as: expected an output name"},
    {"{'table':'orders','select':[{'fn':'count','as':"
     "'abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl'}]}",
     "select[0].as: too long (64 bytes, at most 63)"},
    {"{'table':'orders','group_by':['country'],'select':[{'fn':'count','as':'country'}]}",
     "select[0].as: 'country' is used twice"},
    /* "time" is taken by the bucket column: say so, not "used twice" (it is written once) */
    {"{'table':'orders','interval':'1m','select':[{'fn':'count','as':'time'}]}",
     "select[0].as: 'time' is the name of the time bucket column that interval adds; choose "
     "another name"},
    {"{'table':'orders','interval':'1m','select':[{'fn':'count'},{'fn':'sum','column':'qty',"
     "'as':'time'}]}",
     "select[1].as: 'time' is the name of the time bucket column that interval adds"},
    /* without interval, "time" is taken only by a group column of that name */
    {"{'table':'orders','group_by':['time'],'select':[{'fn':'count','as':'time'}]}",
     "select[0].as: 'time' is used twice"},
    {"{'table':'orders','select':[{'fn':'avg','column':'" LONG_COL "'}]}",
     "select[0].as: the default name 'avg_" LONG_COL "' is longer than 63 bytes; set \"as\""},
    /* where */
    {BASE "'where':{'column':'qty','op':'=','value':1}}", "where: expected an array of conditions"},
    {BASE "'where':[5]}", "where[0]: expected a condition (an object), got an integer"},
    {BASE "'where':[{'column':'country','op':'=','value':'US'},{'column':'contry','op':'=','value':"
          "'US'}]}",
     "where[1].column: no column 'contry' in table 'orders' (did you mean 'country'?)"},
    {BASE "'where':[{'op':'=','value':1}]}", "where[0].column: required"},
    {BASE "'where':[{'column':'qty','value':1}]}", "where[0].op: required"},
    {BASE "'where':[{'column':'qty','op':'==','value':1}]}",
     "where[0].op: unknown operator '==' (expected one of =, !=, <, <=, >, >=, in, not_in)"},
    {BASE "'where':[{'column':'qty','op':5,'value':1}]}", "where[0].op: expected an operator"},
    {BASE "'where':[{'column':'qty','op':'='}]}", "where[0].value: required with operator '='"},
    {BASE "'where':[{'column':'qty','op':'in','value':1}]}",
     "where[0].value: operator 'in' takes a list in \"values\""},
    {BASE "'where':[{'column':'qty','op':'=','values':[1]}]}",
     "where[0].values: operator '=' compares with one \"value\""},
    {BASE "'where':[{'column':'qty','op':'not_in'}]}",
     "where[0].values: required with operator 'not_in'"},
    {BASE "'where':[{'column':'qty','op':'in','values':1}]}",
     "where[0].values: expected an array of values"},
    {BASE "'where':[{'column':'qty','op':'=','vale':1}]}",
     "where[0]: unknown key 'vale' (did you mean 'value'?)"},
    {BASE "'where':[{'column':'amount','op':'=','value':'12.5'}]}",
     "where[0].value: column 'amount' is float64, got a string"},
    {BASE "'where':[{'column':'amount','op':'=','value':null}]}",
     "where[0].value: column 'amount' is float64, got null"},
    {BASE "'where':[{'column':'qty','op':'=','value':3000000000}]}",
     "where[0].value: 3000000000 is out of range for int32 column 'qty'"},
    {BASE "'where':[{'column':'qty','op':'=','value':-2147483649}]}",
     "where[0].value: -2147483649 is out of range for int32 column 'qty'"},
    {BASE "'where':[{'column':'qty','op':'=','value':1.5}]}",
     "where[0].value: 1.5 is not an integer (column 'qty' is int32)"},
    /* integral reals: only exact integers in range, and only below 2^53 */
    {BASE "'where':[{'column':'n','op':'=','value':2.5}]}",
     "where[0].value: 2.5 is not an integer (column 'n' is int64)"},
    {BASE "'where':[{'column':'ts','op':'=','value':1704067200000.5}]}",
     "where[0].value: 1704067200000.5 is not an integer (column 'ts' is timestamp)"},
    {BASE "'where':[{'column':'n','op':'=','value':1e-300}]}",
     "where[0].value: 1e-300 is not an integer (column 'n' is int64)"},
    {BASE "'where':[{'column':'qty','op':'in','values':[1,2.0,2.5]}]}",
     "where[0].values[2]: 2.5 is not an integer (column 'qty' is int32)"},
    {BASE "'where':[{'column':'qty','op':'=','value':3e9}]}",
     "where[0].value: 3e9 is out of range for int32 column 'qty'"},
    {BASE "'where':[{'column':'qty','op':'=','value':-2147483649.0}]}",
     "where[0].value: -2147483649.0 is out of range for int32 column 'qty'"},
    {BASE "'where':[{'column':'user_id','op':'=','value':-1.0}]}",
     "where[0].value: -1.0 is out of range for uint64 column 'user_id'"},
    {BASE "'where':[{'column':'n','op':'=','value':1e19}]}",
     "where[0].value: 1e19 is out of range for int64 column 'n'"},
    {BASE "'where':[{'column':'n','op':'=','value':-1e300}]}",
     "where[0].value: -1e300 is out of range for int64 column 'n'"},
    {BASE "'where':[{'column':'user_id','op':'=','value':1e20}]}",
     "where[0].value: 1e20 is out of range for uint64 column 'user_id'"},
    {BASE "'where':[{'column':'user_id','op':'=','value':1e19}]}",
     "where[0].value: 1e19 is too large to be read exactly from a number with a fraction or "
     "exponent (2^53 or more; column 'user_id' is uint64); write the value as an integer or a "
     "decimal string"},
    {BASE "'where':[{'column':'n','op':'not_in','values':[9007199254740993.0]}]}",
     "where[0].values[0]: 9007199254740992.0 is too large to be read exactly from a number "
     "with a fraction or exponent (2^53 or more; column 'n' is int64); write the value as an "
     "integer"},
    {BASE "'where':[{'column':'n','op':'=','value':-9007199254740992.0}]}",
     "where[0].value: -9007199254740992.0 is too large to be read exactly"},
    {BASE "'where':[{'column':'ts','op':'<','value':-1e16}]}",
     "where[0].value: -1e16 is too large to be read exactly"},
    {BASE "'where':[{'column':'n','op':'=','value':'5'}]}",
     "where[0].value: column 'n' is int64, got a string"},
    {BASE "'where':[{'column':'user_id','op':'=','value':-1}]}",
     "where[0].value: -1 is out of range for uint64 column 'user_id'"},
    {BASE "'where':[{'column':'user_id','op':'=','value':'12a'}]}",
     "where[0].value: '12a' is not a uint64 for column 'user_id'"},
    {BASE "'where':[{'column':'user_id','op':'=','value':'18446744073709551616'}]}",
     "where[0].value: '18446744073709551616' is not a uint64"},
    {BASE "'where':[{'column':'user_id','op':'=','value':'-5'}]}",
     "where[0].value: '-5' is not a uint64"},
    {BASE "'where':[{'column':'user_id','op':'=','value':''}]}",
     "where[0].value: '' is not a uint64"},
    {BASE "'where':[{'column':'user_id','op':'=','value':1.5}]}",
     "where[0].value: 1.5 is not an integer (column 'user_id' is uint64)"},
    {BASE "'where':[{'column':'ok','op':'=','value':1}]}",
     "where[0].value: column 'ok' is bool, got an integer"},
    {BASE "'where':[{'column':'country','op':'=','value':5}]}",
     "where[0].value: column 'country' is string, got an integer"},
    {BASE "'where':[{'column':'country','op':'=','value':['US']}]}",
     "where[0].value: column 'country' is string, got an array"},
    {BASE "'where':[{'column':'ts','op':'>','value':'noon'}]}",
     "where[0].value: 'noon' is not a time"},
    {BASE "'where':[{'column':'ts','op':'>','value':1.5}]}",
     "where[0].value: 1.5 is not an integer (column 'ts' is timestamp)"},
    {BASE "'where':[{'column':'country','op':'in','values':['a',2]}]}",
     "where[0].values[1]: column 'country' is string, got an integer"},
    {BASE "'where':[{'or':[{'column':'qty','op':'=','value':1},"
          "{'and':[{'column':'amount','op':'=','value':'x'}]}]}]}",
     "where[0].or[1].and[0].value: column 'amount' is float64, got a string"},
    {BASE "'where':[{'column':'qty','op':'=','value':1},{'or':[]}]}",
     "where[1].or: needs at least one condition"},
    {BASE "'where':[{'and':{}}]}", "where[0].and: expected an array of conditions, got an object"},
    {BASE "'where':[{'or':[{'column':'qty','op':'=','value':1}],'column':'qty'}]}",
     "where[0]: an \"or\" or \"and\" condition has no other keys"},
    {BASE "'where':[{'or':[{'column':'qty','op':'=','value':1}],'and':[]}]}",
     "where[0]: an \"or\" or \"and\" condition has no other keys"},
    {BASE "'where':[{'or':[{'column':'qty','op':'=','value':1},{'column':'qty','op':'=','value':2,'"
          "x':1}]}]}",
     "where[0].or[1]: unknown key 'x'"},
    /* group_by */
    {BASE "'group_by':'country'}", "group_by: expected an array of column names"},
    {BASE "'group_by':['contry']}",
     "group_by[0]: no column 'contry' in table 'orders' (did you mean 'country'?)"},
    {BASE "'group_by':['country','country']}", "group_by[1]: 'country' is listed twice"},
    {BASE "'group_by':[5]}", "group_by[0]: expected a column name"},
    {BASE "'interval':'1m','group_by':['time']}",
     "group_by[0]: 'time' is also the name of the time bucket"},
    {BASE "'group_by':['ts','ts','ts','ts','ts','ts','ts','ts','ts','ts','ts','ts','ts','ts','ts',"
          "'ts','ts']}",
     "group_by: 17 columns, at most 16 allowed"},
    /* order_by */
    {"{'table':'orders','select':[{'fn':'sum','column':'amount','as':'gmv'}],"
     "'order_by':[{'column':'gmvv'}]}",
     "order_by[0].column: no output column 'gmvv' (did you mean 'gmv'?)"},
    {"{'table':'orders','interval':'1h','group_by':['country'],'select':[{'fn':'count'}],"
     "'order_by':[{'column':'user_id'}]}",
     "order_by[0].column: no output column 'user_id' (the output columns are time, country, "
     "count)"},
    {BASE "'order_by':['count']}", "order_by[0]: expected an object such as"},
    {BASE "'order_by':{'column':'count'}}", "order_by: expected an array"},
    {BASE "'order_by':[{'column':'count','desc':'yes'}]}",
     "order_by[0].desc: expected true or false, got a string"},
    {BASE "'order_by':[{'desc':true}]}", "order_by[0].column: required"},
    {BASE "'order_by':[{'column':1}]}", "order_by[0].column: expected an output column name"},
    {BASE "'order_by':[{'column':'count','dsc':true}]}",
     "order_by[0]: unknown key 'dsc' (did you mean 'desc'?)"},
    {BASE "'order_by':[{'column':'count'},{'column':'count'},{'column':'count'},{'column':'count'},"
          "{'column':'count'},{'column':'count'},{'column':'count'},{'column':'count'},"
          "{'column':'count'},{'column':'count'},{'column':'count'},{'column':'count'},"
          "{'column':'count'},{'column':'count'},{'column':'count'},{'column':'count'},"
          "{'column':'count'}]}",
     "order_by: 17 entries, at most 16 allowed"},
    /* limit */
    {BASE "'limit':-1}", "limit: -1 is negative"},
    {BASE "'limit':1.5}", "limit: expected a non-negative integer, got a number"},
    {BASE "'limit':'10'}", "limit: expected a non-negative integer, got a string"},
};

TEST(invalid_queries)
{
    size_t n = sizeof invalid / sizeof invalid[0];
    for (size_t i = 0; i < n; i++) {
        strata_query q;
        memset(&q, 0xA5, sizeof q);
        strata_err err = {0};
        int rc = parse_raw(J(invalid[i].json), &q, &err);
        if (rc == 0) {
            query_free(&q);
            TEST_FAIL_("invalid[%zu] accepted: %s", i, invalid[i].json);
        }
        ASSERT_EQ(rc, STRATA_EINVAL);
        if (!strstr(err.msg, invalid[i].needle))
            TEST_FAIL_("invalid[%zu]: message \"%s\" lacks \"%s\"\n  query: %s", i, err.msg,
                       invalid[i].needle, invalid[i].json);
        for (size_t b = 0; b < sizeof q; b++)
            if (((unsigned char *)&q)[b] != 0xA5)
                TEST_FAIL_("invalid[%zu]: *out was changed", i);
    }
    ASSERT_GE(n, 40);
    fprintf(stderr, "%zu invalid queries refused\n", n);
}

TEST(too_many_aggregates)
{
    char json[4096];
    size_t n = (size_t)snprintf(json, sizeof json, "{'table':'orders','select':[");
    for (int i = 0; i <= QUERY_MAX_AGGS; i++)
        n += (size_t)snprintf(json + n, sizeof json - n, "%s{'fn':'count','as':'c%d'}",
                              i ? "," : "", i);
    snprintf(json + n, sizeof json - n, "]}");
    strata_query q;
    strata_err err = {0};
    ASSERT_EQ(parse_raw(J(json), &q, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "select: 33 aggregates, at most 32 allowed");
}

TEST(invalid_utf8_and_nul_input)
{
    strata_query q;
    strata_err err = {0};
    const char bad_utf8[] =
        "{\"table\":\"orders\",\"select\":[{\"fn\":\"count\",\"as\":\"\xff\"}]}";
    ASSERT_EQ(parse_raw(bad_utf8, &q, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "malformed JSON");
    const char *nul = J(BASE "'where':[{'column':'country','op':'=','value':'a\\u0000b'}]}");
    ASSERT_EQ(parse_raw(nul, &q, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "malformed JSON");
    /* a NUL byte in the text ends nothing: the length rules */
    const char with_nul[] = "{\"table\":\"orders\"\0,\"select\":[]}";
    setup();
    ASSERT_EQ(query_parse_json(with_nul, sizeof with_nul - 1, &SC, NOW, &q, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "malformed JSON");
    ASSERT_EQ(query_parse_json(NULL, 0, &SC, NOW, &q, &err), STRATA_EINVAL);

    /* messages are valid UTF-8: jansson quotes bad bytes, and %.64s may cut a character */
    const char quoted[] = "{\"table\":\"orders\",\"select\":[{\"fn\":\"count\"}],\"x\xff\xfe\":1}";
    ASSERT_EQ(parse_raw(quoted, &q, &err), STRATA_EINVAL);
    json_t *m = json_string(err.msg);
    ASSERT(m != NULL);
    json_decref(m);
    char cut[512];
    size_t n = (size_t)snprintf(cut, sizeof cut, BASE "'a");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(cut + n, sizeof cut - n, "\xc3\xa9");
    snprintf(cut + n, sizeof cut - n, "':1}");
    ASSERT_EQ(parse_raw(J(cut), &q, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "unknown key 'a\xc3\xa9");
    m = json_string(err.msg);
    ASSERT(m != NULL);
    json_decref(m);
    ASSERT_CONTAINS(err.msg, "\xc3\xa9?'");
}

/* ---- answers ------------------------------------------------------------------------------- */

static query_result *new_result(int ncols, uint64_t nrows)
{
    query_result *r = calloc(1, sizeof *r);
    ASSERT(r);
    r->ncols = ncols;
    r->nrows = nrows;
    r->cells = calloc(nrows * (uint64_t)ncols + 1, sizeof *r->cells);
    ASSERT(r->cells);
    return r;
}

static query_cell *cell(query_result *r, uint64_t row, int col)
{
    return &r->cells[row * (uint64_t)r->ncols + (uint64_t)col];
}

static void set_str(query_result *r, uint64_t row, int col, const char *s, size_t n)
{
    query_cell *c = cell(r, row, col);
    c->kind = QC_STR;
    c->v.s.ptr = malloc(n + 1);
    ASSERT(c->v.s.ptr);
    memcpy(c->v.s.ptr, s, n);
    c->v.s.len = (uint32_t)n;
}

/* jansson must read text back; flags as for json_loadb (JSON_ALLOW_NUL is added: strings
 * may hold \u0000). Returns the tree. */
static json_t *reads_back(const char *text, size_t len, size_t flags)
{
    json_error_t jerr;
    json_t *j = json_loadb(text, len, flags | JSON_ALLOW_NUL, &jerr);
    if (!j)
        TEST_FAIL_("output is not JSON (%s at %d:%d): %s", jerr.text, jerr.line, jerr.column, text);
    return j;
}

TEST(result_exact_text)
{
    query_result *r = new_result(4, 5);
    snprintf(r->names[0], QUERY_NAME_MAX, "time");
    r->types[0] = "timestamp";
    snprintf(r->names[1], QUERY_NAME_MAX, "country");
    r->types[1] = "string";
    snprintf(r->names[2], QUERY_NAME_MAX, "n");
    r->types[2] = "uint64";
    snprintf(r->names[3], QUERY_NAME_MAX, "v");
    r->types[3] = "float64";
    /* row 0 */
    cell(r, 0, 0)->kind = QC_INT;
    cell(r, 0, 0)->v.i = JAN1;
    set_str(r, 0, 1, "US", 2);
    cell(r, 0, 2)->kind = QC_UINT;
    cell(r, 0, 2)->v.u = UINT64_MAX;
    cell(r, 0, 3)->kind = QC_FLOAT;
    cell(r, 0, 3)->v.f = 0.1;
    /* row 1 */
    cell(r, 1, 0)->kind = QC_INT;
    cell(r, 1, 0)->v.i = INT64_MIN;
    set_str(r, 1, 1, "a\"b\\c\nd\x01\x1f\t\r\b\x7f/", 14);
    cell(r, 1, 2)->kind = QC_UINT;
    cell(r, 1, 2)->v.u = 0;
    cell(r, 1, 3)->kind = QC_FLOAT;
    cell(r, 1, 3)->v.f = 1e300;
    /* row 2: invalid UTF-8 (a stray byte, an overlong NUL, a cut-off sequence), NaN */
    cell(r, 2, 0)->kind = QC_INT;
    cell(r, 2, 0)->v.i = 0;
    set_str(r, 2, 1, "\xff\xc0\x80ok\xe2\x82", 7);
    cell(r, 2, 2)->kind = QC_NULL;
    cell(r, 2, 3)->kind = QC_FLOAT;
    cell(r, 2, 3)->v.f = NAN;
    /* row 3: valid multibyte text and a JavaScript line separator, infinity, bools */
    cell(r, 3, 0)->kind = QC_INT;
    cell(r, 3, 0)->v.i = INT64_MAX;
    set_str(r, 3, 1, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xe2\x80\xa8\xe2\x80\xa9\xed\xa0\x80",
            18);
    cell(r, 3, 2)->kind = QC_BOOL;
    cell(r, 3, 2)->v.b = true;
    cell(r, 3, 3)->kind = QC_FLOAT;
    cell(r, 3, 3)->v.f = -INFINITY;
    /* row 4: an embedded NUL, shortest floats of 16 and 17 digits */
    cell(r, 4, 0)->kind = QC_INT;
    cell(r, 4, 0)->v.i = -1;
    set_str(r, 4, 1, "a\0b", 3);
    cell(r, 4, 2)->kind = QC_BOOL;
    cell(r, 4, 2)->v.b = false;
    cell(r, 4, 3)->kind = QC_FLOAT;
    cell(r, 4, 3)->v.f = 1.0 / 3.0;
    r->rows_read = 123456789;
    r->segments_read = 7;
    r->elapsed_ms = 1.23456;

    size_t len = 0;
    char *text = query_answer_json(r, NULL, &len);
    ASSERT(text);
    ASSERT_EQ(len, strlen(text));
    const char *want =
        "{\"columns\":[{\"name\":\"time\",\"type\":\"timestamp\"},"
        "{\"name\":\"country\",\"type\":\"string\"},{\"name\":\"n\",\"type\":\"uint64\"},"
        "{\"name\":\"v\",\"type\":\"float64\"}],"
        "\"rows\":["
        "[1704067200000,\"US\",18446744073709551615,0.1],"
        "[-9223372036854775808,\"a\\\"b\\\\c\\nd\\u0001\\u001f\\t\\r\\u0008\x7f/\",0,1e+300],"
        "[0,\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdok\xef\xbf\xbd\xef\xbf\xbd\",null,null],"
        "[9223372036854775807,\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\\u2028\\u2029"
        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\",true,null],"
        "[-1,\"a\\u0000b\",false,0.3333333333333333]],"
        "\"stats\":{\"rows_read\":123456789,\"segments_read\":7,\"elapsed_ms\":1.235,"
        "\"source\":\"raw\"}}";
    ASSERT_STR_EQ(text, want);

    /* jansson reads it back (integers beyond int64 only as reals) */
    json_t *j = reads_back(text, len, JSON_DECODE_INT_AS_REAL);
    json_t *rows = json_object_get(j, "rows");
    ASSERT_EQ(json_array_size(rows), 5);
    ASSERT_STR_EQ(json_string_value(json_array_get(json_array_get(rows, 1), 1)),
                  "a\"b\\c\nd\x01\x1f\t\r\b\x7f/");
    ASSERT_EQ(json_string_length(json_array_get(json_array_get(rows, 4), 1)), 3);
    ASSERT_DBL_EQ(json_real_value(json_array_get(json_array_get(rows, 1), 3)), 1e300);
    ASSERT_DBL_EQ(json_real_value(json_array_get(json_array_get(rows, 4), 3)), 1.0 / 3.0);
    json_decref(j);
    free(text);

    /* len may be NULL */
    text = query_answer_json(r, NULL, NULL);
    ASSERT(text);
    ASSERT_STR_EQ(text, want);
    free(text);
    query_result_free(r); /* frees the strings too */
}

TEST(result_floats_round_trip)
{
    static const struct {
        double v;
        const char *text;
    } f[] = {
        {0.1, "0.1"},
        {1e300, "1e+300"},
        {1.5e-300, "1.5e-300"},
        {100, "100"},
        {-0.0, "-0"},
        {0, "0"},
        {1234.5, "1234.5"},
        {123456789012345678.0, "1.2345678901234568e+17"},
        {0.30000000000000004, "0.30000000000000004"},
        {5e-324, "4.94065645841247e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {-2.5, "-2.5"},
        {9007199254740993.0, "9007199254740992"},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        query_result *r = new_result(1, 1);
        snprintf(r->names[0], QUERY_NAME_MAX, "x");
        r->types[0] = "float64";
        r->cells[0].kind = QC_FLOAT;
        r->cells[0].v.f = f[i].v;
        size_t len;
        char *text = query_answer_json(r, NULL, &len);
        ASSERT(text);
        char want[256];
        snprintf(
            want, sizeof want,
            "{\"columns\":[{\"name\":\"x\",\"type\":\"float64\"}],\"rows\":[[%s]],"
            "\"stats\":{\"rows_read\":0,\"segments_read\":0,\"elapsed_ms\":0,\"source\":\"raw\"}}",
            f[i].text);
        ASSERT_STR_EQ(text, want);
        json_t *j = reads_back(text, len, JSON_DECODE_INT_AS_REAL);
        double back =
            json_number_value(json_array_get(json_array_get(json_object_get(j, "rows"), 0), 0));
        ASSERT(back == f[i].v);
        json_decref(j);
        free(text);
        query_result_free(r);
    }
}

TEST(result_empty_and_stats)
{
    query_result *r = new_result(1, 0);
    snprintf(r->names[0], QUERY_NAME_MAX, "na\"me");
    r->types[0] = NULL;
    r->rows_read = UINT64_MAX;
    r->elapsed_ms = NAN;
    size_t len;
    char *text = query_answer_json(r, NULL, &len);
    ASSERT(text);
    ASSERT_STR_EQ(text, "{\"columns\":[{\"name\":\"na\\\"me\",\"type\":null}],\"rows\":[],"
                        "\"stats\":{\"rows_read\":18446744073709551615,\"segments_read\":0,"
                        "\"elapsed_ms\":null,\"source\":\"raw\"}}");
    json_decref(reads_back(text, len, JSON_DECODE_INT_AS_REAL));
    free(text);
    query_result_free(r);
}

TEST(result_large_reads_back)
{
    const uint64_t rows = 100000;
    query_result *r = new_result(3, rows);
    snprintf(r->names[0], QUERY_NAME_MAX, "time");
    r->types[0] = "timestamp";
    snprintf(r->names[1], QUERY_NAME_MAX, "k");
    r->types[1] = "string";
    snprintf(r->names[2], QUERY_NAME_MAX, "sum_amount");
    r->types[2] = "float64";
    uint64_t seed = 42;
    for (uint64_t i = 0; i < rows; i++) {
        cell(r, i, 0)->kind = QC_INT;
        cell(r, i, 0)->v.i = JAN1 + (int64_t)i * 60000;
        char s[16];
        size_t n = (size_t)(test_rand_next(&seed) % sizeof s);
        for (size_t b = 0; b < n; b++)
            s[b] = (char)(test_rand_next(&seed) & 0xFF); /* arbitrary bytes */
        set_str(r, i, 1, s, n);
        uint64_t bits = test_rand_next(&seed);
        double d;
        memcpy(&d, &bits, sizeof d); /* arbitrary doubles, NaNs and infinities included */
        cell(r, i, 2)->kind = QC_FLOAT;
        cell(r, i, 2)->v.f = d;
    }
    size_t len;
    char *text = query_answer_json(r, NULL, &len);
    ASSERT(text);
    json_t *j = reads_back(text, len, 0);
    json_t *jr = json_object_get(j, "rows");
    ASSERT_EQ(json_array_size(jr), rows);
    for (uint64_t i = 0; i < rows; i++) {
        json_t *row = json_array_get(jr, i);
        ASSERT_EQ(json_integer_value(json_array_get(row, 0)), JAN1 + (int64_t)i * 60000);
        double d = cell(r, i, 2)->v.f;
        json_t *x = json_array_get(row, 2);
        if (isfinite(d))
            ASSERT(json_number_value(x) == d);
        else
            ASSERT(json_is_null(x));
        /* strings: valid bytes pass unchanged, so ASCII-only inputs compare equal */
        const query_cell *c = cell(r, i, 1);
        bool ascii = true;
        for (uint32_t b = 0; b < c->v.s.len; b++)
            ascii = ascii && (unsigned char)c->v.s.ptr[b] < 0x80;
        if (ascii) {
            json_t *s = json_array_get(row, 1);
            ASSERT_EQ(json_string_length(s), c->v.s.len);
            ASSERT(memcmp(json_string_value(s), c->v.s.ptr, c->v.s.len) == 0);
        }
    }
    json_decref(j);
    free(text);
    query_result_free(r);
}

TEST(error_body)
{
    size_t len;
    char *b = query_answer_error("where[0].value: column 'amount' is float64, got a string", &len);
    ASSERT(b);
    ASSERT_STR_EQ(b, "{\"error\":\"where[0].value: column 'amount' is float64, got a string\"}");
    ASSERT_EQ(len, strlen(b));
    free(b);
    b = query_answer_error("say \"hi\"\n\\ \x01 \xff end", &len);
    ASSERT_STR_EQ(b, "{\"error\":\"say \\\"hi\\\"\\n\\\\ \\u0001 \xef\xbf\xbd end\"}");
    json_t *j = reads_back(b, len, 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(j, "error")),
                  "say \"hi\"\n\\ \x01 \xef\xbf\xbd end");
    json_decref(j);
    free(b);
    b = query_answer_error(NULL, NULL);
    ASSERT_STR_EQ(b, "{\"error\":\"unknown error\"}");
    free(b);
    /* every message of the invalid table becomes a valid body */
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        strata_query q;
        strata_err err = {0};
        ASSERT_NE(parse_raw(J(invalid[i].json), &q, &err), 0);
        b = query_answer_error(err.msg, &len);
        ASSERT(b);
        j = reads_back(b, len, 0);
        ASSERT_STR_EQ(json_string_value(json_object_get(j, "error")), err.msg);
        json_decref(j);
        free(b);
    }
}

/* ---- the corpus ---------------------------------------------------------------------------- */

static void corpus_dir(char *out, size_t cap)
{
    const char *env = getenv("STRATA_QUERY_CORPUS");
    if (env) {
        snprintf(out, cap, "%s", env);
        return;
    }
    /* tests/unit/test_query_json.c -> tests/corpus/query */
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    int dirlen = slash ? (int)(slash - file) : 1;
    snprintf(out, cap, "%.*s/../corpus/query", dirlen, slash ? file : ".");
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 20;
    char *buf = malloc(cap + 1);
    if (!buf)
        abort();
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* ---- through the engine -------------------------------------------------------------------- */

static strata_table *open_table(char *dir, size_t cap)
{
    const char *base = getenv("STRATA_TEST_TMP");
    snprintf(dir, cap, "%.1900s/query-json-%d", base ? base : "/tmp", (int)getpid());
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    ASSERT_EQ(system(cmd), 0);
    setup();
    strata_schema s = FUZZ_SC;
    schema_apply_default_order(&s);
    strata_table *t = NULL;
    strata_err err = {0};
    if (table_open(dir, &s, &t, &err) != 0)
        TEST_FAIL_("table_open: %s", err.msg);
    static const struct {
        int64_t ts;
        const char *country;
        double amount;
        uint64_t user;
        int32_t qty;
        bool ok;
    } rows[] = {
        {JAN1, "US", 10.5, 1, 1, true},
        {JAN1 + HOUR, "US", 20, UINT64_MAX, 2, false},
        {JAN1 + HOUR + 1, "DE", 5.25, 3, 3, true},
        {JAN1 + 2 * HOUR, "FR\"\n", 1, 4, 4, true},
        {JAN1 + 30 * 24 * HOUR, "US", 100, 5, 5, true}, /* outside the range queried */
    };
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, table_schema(t), 16), 0);
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        int64_t j = row_batch_add_row(&b);
        b.i[0][j] = rows[r].ts;
        ASSERT_EQ(row_batch_set_str(&b, 1, (uint32_t)j, rows[r].country,
                                    (uint32_t)strlen(rows[r].country)),
                  0);
        b.f[2][j] = rows[r].amount;
        b.i[3][j] = (int64_t)rows[r].user;
        b.i[4][j] = rows[r].qty;
        b.i[5][j] = rows[r].ok;
        if (r == 2) { /* the first rows go to a segment, the rest stay in a memtable */
            ASSERT_EQ(table_append(t, &b, &err), 0);
            ASSERT_EQ(table_flush(t, true, &err), 0);
            row_batch_clear(&b);
        }
    }
    ASSERT_EQ(table_append(t, &b, &err), 0);
    row_batch_free(&b);
    return t;
}

static void close_table(strata_table *t, const char *dir)
{
    table_close(t);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ASSERT_EQ(system(cmd), 0);
}

/* Parses json against t, runs it, returns the answer without its "stats". */
static char *run_json(strata_table *t, const char *json)
{
    strata_query q;
    strata_err err = {0};
    if (query_parse_json(json, strlen(json), table_schema(t), NOW, &q, &err) != 0)
        TEST_FAIL_("refused: %s\n  query: %s", err.msg, json);
    query_result *r = NULL;
    int rc = query_run(t, &q, &r, &err);
    if (rc != 0) {
        query_free(&q);
        TEST_FAIL_("query_run: %s\n  query: %s", err.msg, json);
    }
    size_t len;
    char *text = query_answer_json(r, &q, &len);
    query_result_free(r);
    query_free(&q);
    ASSERT(text);
    json_decref(reads_back(text, len, JSON_DECODE_INT_AS_REAL));
    char *stats = strstr(text, ",\"stats\":{");
    ASSERT(stats);
    *stats = 0;
    return text;
}

TEST(answers_from_the_engine)
{
    char dir[2048];
    strata_table *t = open_table(dir, sizeof dir);
    char *text =
        run_json(t, J("{'table':'orders','from':'2024-01-01','to':'2024-01-02','interval':'1h',"
                      "'group_by':['country'],'select':[{'fn':'count','as':'n'},"
                      "{'fn':'sum','column':'amount','as':'gmv'},{'fn':'max','column':'user_id'}],"
                      "'where':[{'or':[{'column':'ok','op':'=','value':true},"
                      "{'column':'user_id','op':'=','value':'18446744073709551615'}]}],"
                      "'order_by':[{'column':'time'},{'column':'country'}]}"));
    ASSERT_STR_EQ(text,
                  "{\"columns\":[{\"name\":\"time\",\"type\":\"timestamp\"},"
                  "{\"name\":\"country\",\"type\":\"string\"},"
                  "{\"name\":\"n\",\"type\":\"uint64\"},{\"name\":\"gmv\",\"type\":\"float64\"},"
                  "{\"name\":\"max_user_id\",\"type\":\"uint64\"}],\"rows\":["
                  "[1704067200000,\"US\",1,10.5,1],"
                  "[1704070800000,\"DE\",1,5.25,3],"
                  "[1704070800000,\"US\",1,20,18446744073709551615],"
                  "[1704074400000,\"FR\\\"\\n\",1,1,4]]");
    free(text);

    /* no buckets, no groups: one row; a filter that matches nothing still counts 0 */
    text = run_json(t, J("{'table':'orders','to':'2024-01-02',"
                         "'select':[{'fn':'count'},{'fn':'avg','column':'amount'}],"
                         "'where':[{'column':'country','op':'in','values':[]}]}"));
    ASSERT_STR_EQ(text, "{\"columns\":[{\"name\":\"count\",\"type\":\"uint64\"},"
                        "{\"name\":\"avg_amount\",\"type\":\"float64\"}],\"rows\":[[0,null]]");
    free(text);

    /* order by an aggregate, descending, and limit */
    text = run_json(t, J("{'table':'orders','from':'2024-01-01','to':'now',"
                         "'group_by':['country'],'select':[{'fn':'sum','column':'qty','as':'q'}],"
                         "'order_by':[{'column':'q','desc':true}],'limit':2}"));
    ASSERT_STR_EQ(text,
                  "{\"columns\":[{\"name\":\"country\",\"type\":\"string\"},"
                  "{\"name\":\"q\",\"type\":\"int64\"}],\"rows\":[[\"US\",8],[\"FR\\\"\\n\",4]]");
    free(text);
    close_table(t, dir);
}

/* Buckets with no rows were left out of every answer, so charts had gaps where they
 * wanted zeros: "fill" returns every bucket of [from, to) for every group the answer has. */
TEST(empty_buckets_are_returned_with_fill)
{
    char dir[2048];
    strata_table *t = open_table(dir, sizeof dir);
    static const char cols[] =
        "{\"columns\":[{\"name\":\"time\",\"type\":\"timestamp\"},"
        "{\"name\":\"country\",\"type\":\"string\"},{\"name\":\"n\",\"type\":\"uint64\"},"
        "{\"name\":\"gmv\",\"type\":\"float64\"},{\"name\":\"sq\",\"type\":\"int64\"},"
        "{\"name\":\"min_qty\",\"type\":\"int32\"},"
        "{\"name\":\"avg_amount\",\"type\":\"float64\"}],";
    const char *q = "{'table':'orders','from':'2024-01-01','to':'2024-01-01T04:00:00Z',"
                    "'interval':'1h','fill':'%s','group_by':['country'],"
                    "'select':[{'fn':'count','as':'n'},{'fn':'sum','column':'amount','as':'gmv'},"
                    "{'fn':'sum','column':'qty','as':'sq'},{'fn':'min','column':'qty'},"
                    "{'fn':'avg','column':'amount'}]%s}";
    char json[1024];
    /* zero: 4 buckets x the 3 countries that have rows, in time order, then by country */
    snprintf(json, sizeof json, q, "zero", "");
    char *text = run_json(t, J(json));
    ASSERT(strncmp(text, cols, strlen(cols)) == 0);
    ASSERT_STR_EQ(text + strlen(cols),
                  "\"rows\":["
                  "[1704067200000,\"DE\",0,0,0,null,null],"
                  "[1704067200000,\"FR\\\"\\n\",0,0,0,null,null],"
                  "[1704067200000,\"US\",1,10.5,1,1,10.5],"
                  "[1704070800000,\"DE\",1,5.25,3,3,5.25],"
                  "[1704070800000,\"FR\\\"\\n\",0,0,0,null,null],"
                  "[1704070800000,\"US\",1,20,2,2,20],"
                  "[1704074400000,\"DE\",0,0,0,null,null],"
                  "[1704074400000,\"FR\\\"\\n\",1,1,4,4,1],"
                  "[1704074400000,\"US\",0,0,0,null,null],"
                  "[1704078000000,\"DE\",0,0,0,null,null],"
                  "[1704078000000,\"FR\\\"\\n\",0,0,0,null,null],"
                  "[1704078000000,\"US\",0,0,0,null,null]]");
    free(text);
    /* null: the same rows, every aggregate of an empty bucket null, count too */
    snprintf(json, sizeof json, q, "null", "");
    text = run_json(t, J(json));
    ASSERT_STR_EQ(text + strlen(cols),
                  "\"rows\":["
                  "[1704067200000,\"DE\",null,null,null,null,null],"
                  "[1704067200000,\"FR\\\"\\n\",null,null,null,null,null],"
                  "[1704067200000,\"US\",1,10.5,1,1,10.5],"
                  "[1704070800000,\"DE\",1,5.25,3,3,5.25],"
                  "[1704070800000,\"FR\\\"\\n\",null,null,null,null,null],"
                  "[1704070800000,\"US\",1,20,2,2,20],"
                  "[1704074400000,\"DE\",null,null,null,null,null],"
                  "[1704074400000,\"FR\\\"\\n\",1,1,4,4,1],"
                  "[1704074400000,\"US\",null,null,null,null,null],"
                  "[1704078000000,\"DE\",null,null,null,null,null],"
                  "[1704078000000,\"FR\\\"\\n\",null,null,null,null,null],"
                  "[1704078000000,\"US\",null,null,null,null,null]]");
    free(text);
    /* none: today's answer, the empty buckets left out */
    snprintf(json, sizeof json, q, "none", "");
    text = run_json(t, J(json));
    ASSERT_STR_EQ(text + strlen(cols),
                  "\"rows\":["
                  "[1704067200000,\"US\",1,10.5,1,1,10.5],"
                  "[1704070800000,\"DE\",1,5.25,3,3,5.25],"
                  "[1704070800000,\"US\",1,20,2,2,20],"
                  "[1704074400000,\"FR\\\"\\n\",1,1,4,4,1]]");
    free(text);
    /* order_by and limit apply after filling: a limit counts filled rows */
    snprintf(json, sizeof json, q, "zero", ",'order_by':[{'column':'time','desc':true}],'limit':4");
    text = run_json(t, J(json));
    ASSERT_STR_EQ(text + strlen(cols),
                  "\"rows\":["
                  "[1704078000000,\"DE\",0,0,0,null,null],"
                  "[1704078000000,\"FR\\\"\\n\",0,0,0,null,null],"
                  "[1704078000000,\"US\",0,0,0,null,null],"
                  "[1704074400000,\"DE\",0,0,0,null,null]]");
    free(text);
    snprintf(json, sizeof json, q, "zero",
             ",'order_by':[{'column':'n','desc':true},{'column':'gmv','desc':true}],'limit':3");
    text = run_json(t, J(json));
    ASSERT_STR_EQ(text + strlen(cols),
                  "\"rows\":["
                  "[1704070800000,\"US\",1,20,2,2,20],"
                  "[1704067200000,\"US\",1,10.5,1,1,10.5],"
                  "[1704070800000,\"DE\",1,5.25,3,3,5.25]]");
    free(text);
    /* without group_by every bucket is returned, even when nothing matched */
    text = run_json(t, J("{'table':'orders','from':'2024-01-01','to':'2024-01-01T04:00:00Z',"
                         "'interval':'1h','fill':'zero','select':[{'fn':'count'}],"
                         "'where':[{'column':'country','op':'in','values':[]}]}"));
    ASSERT_STR_EQ(text, "{\"columns\":[{\"name\":\"time\",\"type\":\"timestamp\"},"
                        "{\"name\":\"count\",\"type\":\"uint64\"}],\"rows\":["
                        "[1704067200000,0],[1704070800000,0],[1704074400000,0],"
                        "[1704078000000,0]]");
    free(text);
    /* with group_by and nothing matched no group is known: nothing to fill */
    text = run_json(t, J("{'table':'orders','from':'2024-01-01','to':'2024-01-01T04:00:00Z',"
                         "'interval':'1h','fill':'zero','group_by':['country'],"
                         "'select':[{'fn':'count'}],"
                         "'where':[{'column':'country','op':'in','values':[]}]}"));
    ASSERT(strstr(text, "\"rows\":[]"));
    free(text);
    /* to defaults to now: one bucket per day from 2024-05-30 to 2024-06-01 (now is noon) */
    text = run_json(t, J("{'table':'orders','from':'2024-05-30','interval':'1d','fill':'null',"
                         "'select':[{'fn':'count'}]}"));
    ASSERT_STR_EQ(text, "{\"columns\":[{\"name\":\"time\",\"type\":\"timestamp\"},"
                        "{\"name\":\"count\",\"type\":\"uint64\"}],\"rows\":["
                        "[1717027200000,null],[1717113600000,null],[1717200000000,null]]");
    free(text);
    close_table(t, dir);
}

/* Buckets are aligned to the epoch (time rounded down to a multiple of the interval since
 * 1970-01-01T00:00:00Z), not to from: with 7m and from at midnight the first bucket starts
 * at 23:54 the day before (1704066840000), with or without fill, and holds only the rows
 * from midnight on. */
TEST(time_buckets_align_to_the_epoch_not_to_from)
{
    char dir[2048];
    strata_table *t = open_table(dir, sizeof dir);
    char *text = run_json(t, J("{'table':'orders','from':'2024-01-01T00:00:00Z',"
                               "'to':'2024-01-01T03:00:00Z','interval':'7m',"
                               "'select':[{'fn':'count'}]}"));
    ASSERT_STR_EQ(text, "{\"columns\":[{\"name\":\"time\",\"type\":\"timestamp\"},"
                        "{\"name\":\"count\",\"type\":\"uint64\"}],\"rows\":["
                        "[1704066840000,1],[1704070620000,2],[1704074400000,1]]");
    free(text);
    /* fill: from the bucket holding from (23:54) to the one holding to - 1 (02:56), 27 */
    text = run_json(t, J("{'table':'orders','from':'2024-01-01T00:00:00Z',"
                         "'to':'2024-01-01T03:00:00Z','interval':'7m','fill':'zero',"
                         "'select':[{'fn':'count'}]}"));
    size_t n = strlen(text);
    char *whole = malloc(n + 2); /* run_json cut the answer before "stats" */
    ASSERT(whole);
    memcpy(whole, text, n);
    memcpy(whole + n, "}", 2);
    json_t *j = reads_back(whole, n + 1, 0);
    free(whole);
    json_t *rows = json_object_get(j, "rows");
    ASSERT_EQ(json_array_size(rows), 27);
    ASSERT_EQ(json_integer_value(json_array_get(json_array_get(rows, 0), 0)), 1704066840000);
    ASSERT_EQ(json_integer_value(json_array_get(json_array_get(rows, 0), 1)), 1);
    ASSERT_EQ(json_integer_value(json_array_get(json_array_get(rows, 26), 0)), 1704077760000);
    for (size_t i = 1; i < 27; i++)
        ASSERT_EQ(json_integer_value(json_array_get(json_array_get(rows, i), 0)) -
                      json_integer_value(json_array_get(json_array_get(rows, i - 1), 0)),
                  420000);
    json_decref(j);
    free(text);
    /* an interval that divides a day starts its buckets at UTC midnight */
    text = run_json(t, J("{'table':'orders','from':'2024-01-01T00:30:00Z',"
                         "'to':'2024-01-01T03:00:00Z','interval':'90m',"
                         "'select':[{'fn':'count'}]}"));
    ASSERT_STR_EQ(text, "{\"columns\":[{\"name\":\"time\",\"type\":\"timestamp\"},"
                        "{\"name\":\"count\",\"type\":\"uint64\"}],\"rows\":["
                        "[1704067200000,2],[1704072600000,1]]");
    free(text);
    close_table(t, dir);
}

/* An integer from/to is epoch milliseconds (not seconds): 1704070800000 is the same
 * instant as "2024-01-01T01:00:00Z"; 1704070800 (seconds by mistake) is 1970-01-20. */
TEST(epoch_integers_are_milliseconds)
{
    char dir[2048];
    strata_table *t = open_table(dir, sizeof dir);
    const char *want = "{\"columns\":[{\"name\":\"count\",\"type\":\"uint64\"}],\"rows\":[[3]]";
    char *text = run_json(t, J("{'table':'orders','from':1704070800000,'to':1704153600000,"
                               "'select':[{'fn':'count'}]}"));
    ASSERT_STR_EQ(text, want);
    free(text);
    text = run_json(t, J("{'table':'orders','from':'2024-01-01T01:00:00Z','to':'2024-01-02',"
                         "'select':[{'fn':'count'}]}"));
    ASSERT_STR_EQ(text, want);
    free(text);
    text = run_json(t, J("{'table':'orders','from':1704070800,'to':1704153600000,"
                         "'select':[{'fn':'count'}]}"));
    ASSERT_STR_EQ(text, "{\"columns\":[{\"name\":\"count\",\"type\":\"uint64\"}],\"rows\":[[4]]");
    free(text);
    close_table(t, dir);
}

/* Everything the parser accepts, the engine runs: every valid corpus query. */
TEST(engine_runs_every_valid_corpus_query)
{
    char dir[2048], cdir[4096];
    strata_table *t = open_table(dir, sizeof dir);
    corpus_dir(cdir, sizeof cdir);
    DIR *d = opendir(cdir);
    if (!d)
        TEST_FAIL_("corpus directory %s: %s", cdir, strerror(errno));
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (strncmp(de->d_name, "valid_", 6) != 0 || nl < 5 ||
            strcmp(de->d_name + nl - 5, ".json") != 0)
            continue;
        char path[8300];
        snprintf(path, sizeof path, "%s/%s", cdir, de->d_name);
        size_t len;
        char *json = read_all(path, &len);
        ASSERT(json);
        free(run_json(t, json));
        free(json);
        n++;
    }
    closedir(d);
    ASSERT_GE(n, 15);
    close_table(t, dir);
}

TEST(corpus_replay)
{
    char dir[4096];
    setup();
    corpus_dir(dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d)
        TEST_FAIL_("corpus directory %s: %s (set STRATA_QUERY_CORPUS)", dir, strerror(errno));
    int nvalid = 0, ninvalid = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        size_t nl = strlen(name);
        if (nl < 5 || strcmp(name + nl - 5, ".json") != 0)
            continue;
        char path[8300];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        size_t len;
        char *text = read_all(path, &len);
        if (!text)
            TEST_FAIL_("%s: %s", path, strerror(errno));
        strata_query q;
        strata_err err = {0};
        int rc = query_parse_json(text, len, &FUZZ_SC, NOW, &q, &err);
        free(text);
        if (strncmp(name, "valid_", 6) == 0) {
            if (rc != 0)
                TEST_FAIL_("%s should parse: %s", name, err.msg);
            query_free(&q);
            nvalid++;
        } else if (strncmp(name, "invalid_", 8) == 0) {
            if (rc == 0) {
                query_free(&q);
                TEST_FAIL_("%s should be refused", name);
            }
            ASSERT(err.msg[0]);
            if (!test_corpus_expect(dir, name, err.msg))
                TEST_FAIL_("corpus expectation not met");
            ninvalid++;
        } else {
            TEST_FAIL_("%s: corpus files are named valid_* or invalid_*", name);
        }
    }
    closedir(d);
    fprintf(stderr, "corpus: %d valid, %d invalid\n", nvalid, ninvalid);
    ASSERT_GE(nvalid, 15);
    ASSERT_GE(ninvalid, 15);
}

TEST_LIST(T(minimal_gets_defaults), T(null_means_absent), T(text_need_not_be_terminated),
          T(every_time_form), T(time_range_extremes), T(every_interval),
          T(every_function_and_default_names), T(every_operator_and_value_type),
          T(integral_reals_compare_with_integer_columns),
          T(single_condition_is_the_root), T(nested_or_and), T(depth_limit), T(value_list_limit),
          T(group_order_limit), T(limits_of_lists), T(table_name), T(invalid_queries),
          T(too_many_aggregates), T(invalid_utf8_and_nul_input), T(result_exact_text),
          T(result_floats_round_trip), T(result_empty_and_stats), T(result_large_reads_back),
          T(error_body), T(answers_from_the_engine), T(empty_buckets_are_returned_with_fill),
          T(time_buckets_align_to_the_epoch_not_to_from), T(epoch_integers_are_milliseconds),
          T(fill_parses), T(engine_runs_every_valid_corpus_query), T(corpus_replay))
