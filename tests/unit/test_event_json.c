/*
 * test_event_json.c — JSON event decoding into rows: every column type, defaults for
 * missing and null fields, unknown fields ignored, times as epoch ms and RFC 3339, and a
 * clear per-event error (row not added) for every kind of bad event.
 */
#include "event_json.h"
#include "test.h"
#include "units.h"

static strata_schema sc;

static void setup(void)
{
    schema_init(&sc);
    snprintf(sc.name, sizeof sc.name, "ev");
    const char *names[] = {"ts", "i", "u", "n", "f", "b", "s", "t2"};
    strata_type types[] = {STRATA_TIMESTAMP, STRATA_INT64, STRATA_UINT64, STRATA_INT32,
                           STRATA_FLOAT64,   STRATA_BOOL,  STRATA_STRING, STRATA_TIMESTAMP};
    for (int c = 0; c < 8; c++) {
        snprintf(sc.cols[c].name, sizeof sc.cols[c].name, "%s", names[c]);
        sc.cols[c].type = types[c];
    }
    sc.ncols = 8;
    sc.time_col = 0;
    sc.cols[3].def_i = 7;
    snprintf(sc.cols[6].def_s, sizeof sc.cols[6].def_s, "none");
}

static int decode(row_batch *b, const char *text, strata_err *err)
{
    return event_json_decode(text, strlen(text), b, err);
}

TEST(every_type_and_defaults)
{
    setup();
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &sc, 0), 0);
    strata_err err = {0};
    ASSERT_EQ(decode(&b, "{\"ts\": 1704067200123, \"i\": -5, \"u\": \"18446744073709551615\", "
                         "\"n\": 2147483647, \"f\": 1.5, \"b\": true, \"s\": \"h\\u00e9\", "
                         "\"t2\": \"2024-01-01T01:00:00.5+01:00\", \"extra\": [1, {\"x\": 2}]}",
                     &err), 0);
    ASSERT_EQ(b.nrows, 1);
    ASSERT_EQ(b.i[0][0], 1704067200123);
    ASSERT_EQ(b.i[1][0], -5);
    ASSERT_U64_EQ((uint64_t)b.i[2][0], UINT64_MAX);
    ASSERT_EQ(b.i[3][0], 2147483647);
    ASSERT_DBL_EQ(b.f[4][0], 1.5);
    ASSERT_EQ(b.i[5][0], 1);
    strata_str s = row_batch_get_str(&b, 6, 0);
    ASSERT_EQ(s.len, 3);
    ASSERT_EQ(memcmp(s.ptr, "h\xc3\xa9", 3), 0);
    ASSERT_EQ(b.i[7][0], 1704067200500);
    /* Missing and null fields take the defaults; integers are fine for floats. */
    ASSERT_EQ(decode(&b, "{\"ts\": \"2024-01-01\", \"s\": null, \"f\": 3}", &err), 0);
    ASSERT_EQ(b.i[0][1], 1704067200000);
    ASSERT_EQ(b.i[3][1], 7);
    s = row_batch_get_str(&b, 6, 1);
    ASSERT_EQ(s.len, 4);
    ASSERT_DBL_EQ(b.f[4][1], 3.0);
    row_batch_free(&b);
}

TEST(bad_events_are_refused_with_the_field_named)
{
    setup();
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &sc, 0), 0);
    struct {
        const char *text, *word;
    } bad[] = {
        {"not json", "malformed JSON"},
        {"{\"ts\": 1", "malformed JSON"},
        {"[1, 2]", "object"},
        {"\"ts\"", "object"},
        {"{\"i\": 1}", "ts"},
        {"{\"ts\": null}", "ts"},
        {"{\"ts\": 1.5}", "ts"},
        {"{\"ts\": \"2024-13-45T25:61:00Z\"}", "RFC 3339"},
        {"{\"ts\": \"2023-02-29\"}", "RFC 3339"},
        {"{\"ts\": 1, \"i\": \"5\"}", "i: expected an integer"},
        {"{\"ts\": 1, \"i\": 1.5}", "i: expected an integer"},
        {"{\"ts\": 1, \"n\": 2147483648}", "int32"},
        {"{\"ts\": 1, \"u\": -1}", "negative"},
        {"{\"ts\": 1, \"u\": \"12x\"}", "uint64"},
        {"{\"ts\": 1, \"u\": \"18446744073709551616\"}", "uint64"},
        {"{\"ts\": 1, \"f\": \"abc\"}", "f: expected a number"},
        {"{\"ts\": 1, \"b\": 1}", "b: expected true or false"},
        {"{\"ts\": 1, \"s\": 42}", "s: expected a string"},
        {"{\"ts\": 1, \"s\": {\"a\": 1}}", "s: expected a string"},
        {"{\"ts\": 1, \"ts\": 2}", "malformed JSON"},
        {"{\"ts\": 253402300800000}", "0000-9999"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        strata_err err = {0};
        if (decode(&b, bad[i].text, &err) != STRATA_EINVAL)
            TEST_FAIL_("accepted: %s", bad[i].text);
        if (!strstr(err.msg, bad[i].word))
            TEST_FAIL_("%s: message '%s' lacks '%s'", bad[i].text, err.msg, bad[i].word);
        ASSERT_EQ(b.nrows, 0); /* nothing half-added */
    }
    row_batch_free(&b);
}

TEST(rfc3339_forms)
{
    int64_t t;
    struct {
        const char *s;
        int64_t want;
    } ok[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"1970-01-01T00:00:00.001Z", 1},
        {"1970-01-01t00:00:00.0019z", 1},
        {"1970-01-01 00:00:01+00:00", 1000},
        {"1970-01-01T01:00:00+01:00", 0},
        {"1969-12-31T19:00:00-05:00", 0},
        {"1969-12-31T23:59:59.999Z", -1},
        {"2024-02-29T12:00:00Z", 1709208000000},
        {"2016-12-31T23:59:60Z", 1483228799999},
        {"2024-01-01", 1704067200000},
        {"0000-01-01T00:00:00Z", STRATA_TS_MIN},
        {"9999-12-31T23:59:59.999Z", STRATA_TS_MAX},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (strata_parse_rfc3339_ms(ok[i].s, strlen(ok[i].s), &t) != 0)
            TEST_FAIL_("refused %s", ok[i].s);
        ASSERT_EQ(t, ok[i].want);
        char back[40];
        strata_format_rfc3339_ms(t, back, sizeof back);
        int64_t t2;
        ASSERT_EQ(strata_parse_rfc3339_ms(back, strlen(back), &t2), 0);
        ASSERT_EQ(t2, t);
    }
    const char *bad[] = {"", "2024", "2024-1-01", "2024-00-10", "2024-02-30", "2023-02-29",
                         "2024-01-01T", "2024-01-01T12:00", "2024-01-01T12:00:00", "2024-01-01T24:00:00Z",
                         "2024-01-01T12:60:00Z", "2024-01-01T12:00:00.Z", "2024-01-01T12:00:00+0100",
                         "2024-01-01T12:00:00Zx", " 2024-01-01", "2024-01-01T12:00:00+24:00"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (strata_parse_rfc3339_ms(bad[i], strlen(bad[i]), &t) == 0)
            TEST_FAIL_("accepted '%s'", bad[i]);
}

TEST_LIST(T(every_type_and_defaults), T(bad_events_are_refused_with_the_field_named), T(rfc3339_forms))
