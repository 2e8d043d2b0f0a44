/*
 * test_grafana_target.c — Grafana targets into strata queries (http/grafana_target.c):
 * the bucket ladder and its rounding to rollup tiers; Grafana's regex format undone
 * (escapes, (a|b) alternatives); builder payloads (functions, group_by forms, where text
 * with every operator, quoting, typed values, errors naming the condition); code payloads
 * (multi-values as lists, defaults, range and interval filled in); ad hoc filters (typed,
 * regex through the values callback, keys the table lacks left out); and every query made
 * here is one query_parse_json accepts.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/schema.h"
#include "http/grafana_target.h"
#include "http/query_parse.h"
#include "test.h"

static const int64_t M = 60000, H = 3600000;

static void schema_of(strata_schema *s, int64_t tier1, int64_t tier2)
{
    schema_init(s);
    snprintf(s->name, sizeof s->name, "orders");
    const char *names[] = {"ts", "country", "status", "amount", "qty", "uid", "ok"};
    strata_type types[] = {STRATA_TIMESTAMP, STRATA_STRING, STRATA_STRING, STRATA_FLOAT64,
                           STRATA_INT32,     STRATA_UINT64, STRATA_BOOL};
    for (int i = 0; i < 7; i++) {
        snprintf(s->cols[i].name, sizeof s->cols[i].name, "%s", names[i]);
        s->cols[i].type = types[i];
    }
    s->ncols = 7;
    s->time_col = 0;
    if (tier1)
        s->rollups[s->nrollups++].interval_ms = tier1;
    if (tier2)
        s->rollups[s->nrollups++].interval_ms = tier2;
}

/* Values callback: the countries. */
static int countries(void *arg, const char *column, json_t **out, strata_err *err)
{
    (void)arg;
    if (strcmp(column, "country") != 0)
        return strata_err_set(err, STRATA_EINVAL, "no values for %s", column);
    *out = json_pack("[s, s, s, s]", "DE", "FR", "US", "a.b");
    return 0;
}

/* Translates the target text (JSON) with ctx; the query's compact text into out, or the
 * error message. Returns the status. Every query made must parse. */
static int translate(const strata_schema *s, const char *target, const grafana_ctx *ctx, char *out,
                     size_t cap, grafana_format *fmt)
{
    json_error_t je;
    json_t *t = json_loads(target, 0, &je);
    if (!t)
        TEST_FAIL_("bad test JSON %s: %s", target, je.text);
    json_t *q = NULL;
    strata_err err = {0};
    grafana_shape shape;
    int rc = grafana_target_query(s, t, ctx, &q, &shape, &err);
    if (fmt)
        *fmt = shape.format;
    json_decref(t);
    if (rc) {
        snprintf(out, cap, "%s", err.msg);
        return rc;
    }
    char *text = json_dumps(q, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(q);
    snprintf(out, cap, "%s", text);
    strata_query sq;
    if (query_parse_json(text, strlen(text), s, 1704067200000, &sq, &err) != 0)
        TEST_FAIL_("the query %s does not parse: %s", text, err.msg);
    query_free(&sq);
    free(text);
    return 0;
}

TEST(bucket_ladder)
{
    strata_schema s;
    schema_of(&s, 0, 0);
    ASSERT_EQ(grafana_bucket_ms(&s, 0, H, 0, 0), 1000);
    ASSERT_EQ(grafana_bucket_ms(&s, 0, H, 1500, 0), 2000);
    ASSERT_EQ(grafana_bucket_ms(&s, 0, H, 60000, 0), M);
    ASSERT_EQ(grafana_bucket_ms(&s, 0, H, 1000, 100), 60000); /* 36 s a point -> 1m */
    ASSERT_EQ(grafana_bucket_ms(&s, 0, 2 * H, 1000, 10), 15 * M);
    ASSERT_EQ(grafana_bucket_ms(&s, 0, 400 * 24 * H, 1000, 100), 24 * H); /* capped at 1d */
    ASSERT_EQ(grafana_bucket_ms(&s, INT64_MIN, INT64_MAX, 0, 1000), 1000); /* no range */
    ASSERT_EQ(grafana_bucket_ms(&s, 0, H, 7 * H, 0), 12 * H);
}

TEST(bucket_rounds_to_tiers)
{
    strata_schema s;
    schema_of(&s, M, H);
    ASSERT_EQ(grafana_bucket_ms(&s, 0, H, 30000, 0), M);     /* finer than 1m, within 2x */
    ASSERT_EQ(grafana_bucket_ms(&s, 0, H, 15000, 0), 15000); /* 4x finer: stays */
    ASSERT_EQ(grafana_bucket_ms(&s, 0, H, 90000, 0), 2 * M);
    ASSERT_EQ(grafana_bucket_ms(&s, 0, H, 3 * H, 0), 3 * H);
    strata_schema f;
    schema_of(&f, 7 * M, 0);
    ASSERT_EQ(grafana_bucket_ms(&f, 0, H, 10 * M, 0), 14 * M); /* 10m -> a multiple of 7m */
    ASSERT_EQ(grafana_bucket_ms(&f, 0, H, 5 * M, 0), 7 * M);   /* 5m -> 7m, within 2x */
    ASSERT_EQ(grafana_bucket_ms(&f, 0, H, 2 * M, 0), 2 * M);
}

TEST(regex_format_undone)
{
    char out[64];
    grafana_unescape("prod\\.eu", 8, out, sizeof out);
    ASSERT_STR_EQ(out, "prod.eu");
    grafana_unescape("a\\\\b\\(c\\)", 9, out, sizeof out);
    ASSERT_STR_EQ(out, "a\\b(c)");
    grafana_unescape("trailing\\", 9, out, sizeof out);
    ASSERT_STR_EQ(out, "trailing\\");
    grafana_unescape("abcdef", 6, out, 4);
    ASSERT_STR_EQ(out, "abc");
    json_t *a = grafana_alternatives("(US|a\\.b|x\\|y)");
    char *t = json_dumps(a, JSON_COMPACT);
    ASSERT_STR_EQ(t, "[\"US\",\"a.b\",\"x|y\"]");
    free(t);
    json_decref(a);
    a = grafana_alternatives("prod\\.eu");
    t = json_dumps(a, JSON_COMPACT);
    ASSERT_STR_EQ(t, "[\"prod.eu\"]");
    free(t);
    json_decref(a);
    a = grafana_alternatives("()");
    ASSERT_EQ(json_array_size(a), 1);
    json_decref(a);
}

TEST(builder_payloads)
{
    strata_schema s;
    schema_of(&s, 0, 0);
    grafana_ctx ctx = {.from_ms = 0, .to_ms = H, .interval_ms = 60000, .max_points = 1000};
    char q[2048];
    grafana_format fmt;
    ASSERT_EQ(translate(&s, "{\"refId\":\"A\",\"target\":\"orders\",\"payload\":{}}", &ctx, q, sizeof q, &fmt), 0);
    ASSERT_STR_EQ(q, "{\"from\":0,\"interval\":\"1m\",\"select\":[{\"fn\":\"count\"}],\"table\":\"orders\",\"to\":3600000}");
    ASSERT_EQ(fmt, GRAFANA_SERIES);
    ASSERT_EQ(translate(&s, "{\"refId\":\"A\",\"payload\":{\"fn\":\"p99\",\"column\":\"amount\","
                            "\"group_by\":[\"country\",\"status\"],\"format\":\"table\"}}", &ctx, q, sizeof q, &fmt), 0);
    ASSERT_CONTAINS(q, "{\"as\":\"p99_amount\",\"column\":\"amount\",\"fn\":\"quantile\",\"q\":0.98999999999999999}");
    ASSERT_CONTAINS(q, "\"group_by\":[\"country\",\"status\"]");
    ASSERT(!strstr(q, "interval")); /* a table without interval: no buckets */
    ASSERT_EQ(fmt, GRAFANA_TABLE);
    ASSERT_EQ(translate(&s, "{\"refId\":\"A\",\"payload\":{\"group_by\":\"(country|status)\"}}", &ctx, q, sizeof q, NULL), 0);
    ASSERT_CONTAINS(q, "\"group_by\":[\"country\",\"status\"]");
    ASSERT_EQ(translate(&s, "{\"refId\":\"A\",\"payload\":{\"group_by\":\"country, status\"}}", &ctx, q, sizeof q, NULL), 0);
    ASSERT_CONTAINS(q, "\"group_by\":[\"country\",\"status\"]");
    ASSERT_EQ(translate(&s, "{\"refId\":\"A\",\"payload\":{\"fn\":\"p90\",\"column\":\"amount\",\"as\":\"slow\"}}", &ctx, q, sizeof q, NULL), 0);
    ASSERT_CONTAINS(q, "\"as\":\"slow\"");
    ASSERT_EQ(translate(&s, "{\"refId\":\"A\",\"payload\":{\"fn\":\"sum\"}}", &ctx, q, sizeof q, NULL), STRATA_EINVAL);
    ASSERT_STR_EQ(q, "target A: sum needs a column");
    ASSERT_EQ(translate(&s, "{\"refId\":\"B\",\"payload\":{\"format\":\"graph\"}}", &ctx, q, sizeof q, NULL), STRATA_EINVAL);
    ASSERT_CONTAINS(q, "target B: payload.format: 'graph'");
}

TEST(builder_where_text)
{
    strata_schema s;
    schema_of(&s, 0, 0);
    grafana_ctx ctx = {.from_ms = 0, .to_ms = H, .values = countries};
    char q[4096];
    struct {
        const char *where, *want;
    } ok[] = {
        {"country = (US|a\\\\.b)", "{\"column\":\"country\",\"op\":\"in\",\"values\":[\"US\",\"a.b\"]}"},
        {"country = a\\\\.b", "{\"column\":\"country\",\"op\":\"=\",\"value\":\"a.b\"}"},
        {"status != (x|y)", "{\"column\":\"status\",\"op\":\"not_in\",\"values\":[\"x\",\"y\"]}"},
        {" amount>=2.5 ,qty<3", "{\"column\":\"amount\",\"op\":\">=\",\"value\":2.5},{\"column\":\"qty\",\"op\":\"<\",\"value\":3}"},
        {"status = 'a, b'", "{\"column\":\"status\",\"op\":\"=\",\"value\":\"a, b\"}"},
        {"uid <= 18446744073709551615", "{\"column\":\"uid\",\"op\":\"<=\",\"value\":\"18446744073709551615\"}"},
        {"ok = true", "{\"column\":\"ok\",\"op\":\"=\",\"value\":true}"},
        {"ts >= 2024-01-01T00:00:00Z", "{\"column\":\"ts\",\"op\":\">=\",\"value\":\"2024-01-01T00:00:00Z\"}"},
        {"ts < 1704067200000", "{\"column\":\"ts\",\"op\":\"<\",\"value\":1704067200000}"},
        {"country =~ (U.|F.)", "{\"column\":\"country\",\"op\":\"in\",\"values\":[\"FR\",\"US\"]}"},
        {"country !~ .*\\\\..*", "{\"column\":\"country\",\"op\":\"not_in\",\"values\":[\"a.b\"]}"},
        {"country =~ nothing", "{\"column\":\"country\",\"op\":\"in\",\"values\":[]}"},
        {"", NULL},
        {"status = paid and qty > 2 AND country = US", "{\"column\":\"status\",\"op\":\"=\",\"value\":\"paid\"},{\"column\":\"qty\",\"op\":\">\",\"value\":2},{\"column\":\"country\",\"op\":\"=\",\"value\":\"US\"}"},
        {"status = US,DE, qty = 3.0", "{\"column\":\"status\",\"op\":\"=\",\"value\":\"US,DE\"},{\"column\":\"qty\",\"op\":\"=\",\"value\":3}"},
        {"status = 'rock and roll', qty < 9,", "{\"column\":\"status\",\"op\":\"=\",\"value\":\"rock and roll\"},{\"column\":\"qty\",\"op\":\"<\",\"value\":9}]"},
        {"country = .*", "{\"column\":\"country\",\"op\":\"in\",\"values\":[\"DE\",\"FR\",\"US\",\"a.b\"]}"},
        {"country != (U.|a\\\\.b)", "{\"column\":\"country\",\"op\":\"not_in\",\"values\":[\"US\",\"a.b\"]}"},
        {"country = 'x', status = \\\"y\\\"", "{\"column\":\"status\",\"op\":\"=\",\"value\":\"y\"}"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char t[512];
        snprintf(t, sizeof t, "{\"refId\":\"A\",\"payload\":{\"where\":\"%s\"}}", ok[i].where);
        if (translate(&s, t, &ctx, q, sizeof q, NULL) != 0)
            TEST_FAIL_("where %s refused: %s", ok[i].where, q);
        if (ok[i].want)
            ASSERT_CONTAINS(q, ok[i].want);
        else
            ASSERT(!strstr(q, "where"));
    }
    struct {
        const char *where, *msg;
    } bad[] = {
        {"contry = US", "condition 1: no column 'contry' in table 'orders' (did you mean 'country'?)"},
        {"country == US", "'==' is not an operator here: write '='"},
        {"country =", "'country =' needs a value"},
        {"country US", "condition 1: expected an operator"},
        {"country = US, 3 = x", "condition 2: no column '3'"},
        {"qty = 2.5", "column 'qty' is int32, got '2.5'"},
        {"uid = -1", "column 'uid' is uint64"},
        {"ok = yes", "column 'ok' is bool"},
        {"amount = x", "column 'amount' is float64"},
        {"amount =~ 1", "=~ needs a string column"},
        {"country =~ (", "bad regular expression '('"},
        {"status =~ x", "no values for status"},
        {"qty < (1|2)", "column 'qty' is int32, got '(1|2)'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char t[512];
        snprintf(t, sizeof t, "{\"refId\":\"C\",\"payload\":{\"where\":\"%s\"}}", bad[i].where);
        if (translate(&s, t, &ctx, q, sizeof q, NULL) != STRATA_EINVAL)
            TEST_FAIL_("where %s accepted: %s", bad[i].where, q);
        ASSERT_CONTAINS(q, "target C: ");
        ASSERT_CONTAINS(q, bad[i].msg);
    }
    grafana_ctx none = {.from_ms = 0, .to_ms = H};
    ASSERT_EQ(translate(&s, "{\"refId\":\"A\",\"payload\":{\"where\":\"country =~ x\"}}", &none, q, sizeof q, NULL), STRATA_EINVAL);
    ASSERT_CONTAINS(q, "regular expressions are not taken here");
}

TEST(code_payloads)
{
    strata_schema s;
    schema_of(&s, M, 0);
    grafana_ctx ctx = {.from_ms = 0, .to_ms = H, .interval_ms = 30000, .max_points = 1000};
    char q[4096];
    grafana_format fmt;
    ASSERT_EQ(translate(&s, "{\"refId\":\"A\",\"target\":\"orders\",\"payload\":{\"select\":[{\"fn\":\"sum\","
                            "\"column\":\"amount\"}],\"where\":[{\"column\":\"country\",\"op\":\"=\",\"value\":[\"US\","
                            "\"DE\"]},{\"or\":[{\"column\":\"status\",\"op\":\"!=\",\"value\":[\"x\"]},{\"column\":"
                            "\"qty\",\"op\":\">\",\"value\":1}]}],\"limit\":5,\"source\":\"raw\"}}", &ctx, q, sizeof q, &fmt), 0);
    ASSERT_CONTAINS(q, "{\"column\":\"country\",\"op\":\"in\",\"values\":[\"US\",\"DE\"]}");
    ASSERT_CONTAINS(q, "{\"column\":\"status\",\"op\":\"not_in\",\"values\":[\"x\"]}");
    ASSERT_CONTAINS(q, "\"interval\":\"1m\""); /* 30 s rounded to the 1m tier */
    ASSERT_CONTAINS(q, "\"limit\":5");
    ASSERT_EQ(fmt, GRAFANA_SERIES);
    /* the payload's own range and interval win; interval null means none */
    ASSERT_EQ(translate(&s, "{\"refId\":\"A\",\"payload\":{\"select\":[{\"fn\":\"count\"}],\"from\":\"now-1d\","
                            "\"to\":\"now\",\"interval\":\"5m\"}}", &ctx, q, sizeof q, NULL), 0);
    ASSERT_CONTAINS(q, "\"from\":\"now-1d\"");
    ASSERT_CONTAINS(q, "\"interval\":\"5m\"");
    ASSERT_EQ(translate(&s, "{\"refId\":\"A\",\"payload\":{\"where\":[],\"interval\":null,\"format\":\"table\"}}",
                        &ctx, q, sizeof q, &fmt), 0);
    ASSERT(!strstr(q, "interval"));
    ASSERT_CONTAINS(q, "\"select\":[{\"fn\":\"count\"}]");
    ASSERT_EQ(translate(&s, "{\"refId\":\"A\",\"payload\":{\"select\":[{\"fn\":\"count\"}],\"interval\":\"auto\","
                            "\"format\":\"table\"}}", &ctx, q, sizeof q, &fmt), 0);
    ASSERT_CONTAINS(q, "\"interval\":\"1m\"");
    ASSERT_EQ(fmt, GRAFANA_TABLE);
    /* no range: no from and to */
    grafana_ctx open = {.from_ms = INT64_MIN, .to_ms = INT64_MAX};
    ASSERT_EQ(translate(&s, "{\"refId\":\"A\",\"payload\":{\"select\":[{\"fn\":\"count\"}]}}", &open, q, sizeof q, NULL), 0);
    ASSERT(!strstr(q, "from") && !strstr(q, "\"to\""));
    ASSERT_EQ(translate(&s, "{\"refId\":\"A\",\"payload\":{\"select\":[],\"where\":{\"a\":1}}}", &ctx, q, sizeof q, NULL),
              STRATA_EINVAL);
    ASSERT_CONTAINS(q, "payload.where: expected a list");
}

TEST(adhoc_filters)
{
    strata_schema s;
    schema_of(&s, 0, 0);
    json_error_t je;
    json_t *f = json_loads("[{\"key\":\"country\",\"operator\":\"=\",\"value\":\"a.b\"},"
                           "{\"key\":\"nosuch\",\"operator\":\"=\",\"value\":\"x\"},"
                           "{\"key\":\"qty\",\"operator\":\">\",\"value\":\"3\"},"
                           "{\"key\":\"country\",\"operator\":\"!~\",\"value\":\"D.\"},"
                           "{\"key\":\"status\",\"operator\":\"=|\",\"values\":[\"p\",\"q\"]}]", 0, &je);
    grafana_ctx ctx = {.from_ms = 0, .to_ms = H, .filters = f, .values = countries};
    char q[4096];
    ASSERT_EQ(translate(&s, "{\"refId\":\"A\",\"payload\":{\"where\":\"status = paid\"}}", &ctx, q, sizeof q, NULL), 0);
    ASSERT_CONTAINS(q, "\"where\":[{\"column\":\"status\",\"op\":\"=\",\"value\":\"paid\"},"
                       "{\"column\":\"country\",\"op\":\"=\",\"value\":\"a.b\"},"
                       "{\"column\":\"qty\",\"op\":\">\",\"value\":3},"
                       "{\"column\":\"country\",\"op\":\"not_in\",\"values\":[\"DE\"]},"
                       "{\"column\":\"status\",\"op\":\"in\",\"values\":[\"p\",\"q\"]}]");
    json_decref(f);
    f = json_loads("[{\"key\":\"qty\",\"operator\":\"<>\",\"value\":\"3\"}]", 0, &je);
    ctx.filters = f;
    ASSERT_EQ(translate(&s, "{\"refId\":\"A\",\"payload\":{}}", &ctx, q, sizeof q, NULL), STRATA_EINVAL);
    ASSERT_CONTAINS(q, "target A: ad hoc filter 1: unknown operator '<>'");
    json_decref(f);
    f = json_loads("[{\"key\":\"qty\",\"operator\":\"=\",\"value\":\"many\"}]", 0, &je);
    ctx.filters = f;
    ASSERT_EQ(translate(&s, "{\"refId\":\"A\",\"payload\":{}}", &ctx, q, sizeof q, NULL), STRATA_EINVAL);
    ASSERT_CONTAINS(q, "column 'qty' is int32, got 'many'");
    json_decref(f);
}

TEST_LIST(T(bucket_ladder), T(bucket_rounds_to_tiers), T(regex_format_undone), T(builder_payloads),
          T(builder_where_text), T(code_payloads), T(adhoc_filters))
