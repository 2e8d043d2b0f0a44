/*
 * test_event_json.c — JSON event decoding into rows: every column type, defaults for
 * missing and null fields, unknown fields (reported in order and landing without them, or
 * refusing the event under unknown_fields "reject", with a "did you mean"), times as epoch
 * ms and RFC 3339, integral numbers written with a fraction or exponent in integer columns
 * (read exactly, with the range and "not an integer" refusals), and a clear per-event error
 * (row not added) for every kind of bad event.
 *
 * The fast path (ingest/event_fast.c) against the jansson path: a table of tricky inputs
 * (each also marked as one the fast path must handle or must decline), several hundred
 * thousand random structured events (under both unknown_fields settings), the reference
 * order events (which the fast path must handle itself) and one decoder shared by two
 * threads. Every comparison is the full row: ints, the bits of doubles, the bytes of
 * strings; the unknown fields reported; and for the combined paths the error message too.
 * (tests/corpus/event is replayed by fuzz_replay_event_json.)
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>

#include "ingest/event_json.h"
#include "tools/order_gen.h"
#include "test.h"
#include "engine/units.h"

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
        {"{\"ts\": 1, \"i\": 1.5}", "i: 1.5 is not an integer"},
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
        if (units_parse_rfc3339_ms(ok[i].s, strlen(ok[i].s), &t) != 0)
            TEST_FAIL_("refused %s", ok[i].s);
        ASSERT_EQ(t, ok[i].want);
        char back[40];
        units_format_rfc3339_ms(t, back, sizeof back);
        int64_t t2;
        ASSERT_EQ(units_parse_rfc3339_ms(back, strlen(back), &t2), 0);
        ASSERT_EQ(t2, t);
    }
    const char *bad[] = {"", "2024", "2024-1-01", "2024-00-10", "2024-02-30", "2023-02-29",
                         "2024-01-01T", "2024-01-01T12:00", "2024-01-01T12:00:00", "2024-01-01T24:00:00Z",
                         "2024-01-01T12:60:00Z", "2024-01-01T12:00:00.Z", "2024-01-01T12:00:00+0100",
                         "2024-01-01T12:00:00Zx", " 2024-01-01", "2024-01-01T12:00:00+24:00"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (units_parse_rfc3339_ms(bad[i], strlen(bad[i]), &t) == 0)
            TEST_FAIL_("accepted '%s'", bad[i]);
}

/* ---- the fast path against the jansson path ------------------------------------------ */

/* Fails unless row ra of a and row rb of b hold the same values in every column. */
static void assert_same_row(const row_batch *a, uint32_t ra, const row_batch *b, uint32_t rb,
                            const char *text, size_t len)
{
    const strata_schema *s = a->schema;
    for (int c = 0; c < s->ncols; c++) {
        strata_type t = s->cols[c].type;
        if (strata_type_is_int(t)) {
            if (a->i[c][ra] != b->i[c][rb])
                TEST_FAIL_("%.*s: column %s: %lld vs %lld", (int)len, text, s->cols[c].name,
                           (long long)a->i[c][ra], (long long)b->i[c][rb]);
        } else if (t == STRATA_FLOAT64) {
            if (memcmp(&a->f[c][ra], &b->f[c][rb], sizeof(double)) != 0)
                TEST_FAIL_("%.*s: column %s: %.17g vs %.17g", (int)len, text, s->cols[c].name,
                           a->f[c][ra], b->f[c][rb]);
        } else {
            strata_str x = row_batch_get_str(a, c, ra), y = row_batch_get_str(b, c, rb);
            if (x.len != y.len || (x.len && memcmp(x.ptr, y.ptr, x.len) != 0))
                TEST_FAIL_("%.*s: column %s: '%.*s' vs '%.*s'", (int)len, text, s->cols[c].name,
                           (int)x.len, x.ptr, (int)y.len, y.ptr);
        }
    }
}

/* The unknown fields one decode reported, as "<len>:<bytes>;" each, in order. */
typedef struct key_list {
    char buf[16384];
    size_t len;
    int n;
    bool overflow;
} key_list;

static void record_key(void *ctx, const char *name, size_t len)
{
    key_list *l = ctx;
    char head[24];
    int h = snprintf(head, sizeof head, "%zu:", len);
    l->n++;
    if (l->len + (size_t)h + len + 2 > sizeof l->buf) {
        l->overflow = true;
        return;
    }
    memcpy(l->buf + l->len, head, (size_t)h);
    memcpy(l->buf + l->len + h, name, len);
    l->len += (size_t)h + len;
    l->buf[l->len++] = ';';
    l->buf[l->len] = 0;
}

static event_unknown_sink key_list_start(key_list *l)
{
    l->len = 0;
    l->n = 0;
    l->overflow = false;
    l->buf[0] = 0;
    return (event_unknown_sink){record_key, l};
}

static bool key_list_same(const key_list *a, const key_list *b)
{
    return a->n == b->n && a->len == b->len && a->overflow == b->overflow &&
           memcmp(a->buf, b->buf, a->len) == 0;
}

/* Three batches of one schema: jansson, fast path alone, combined (through a decoder), and
 * the unknown fields each reported for the last input. */
typedef struct paths {
    event_decoder *dec;
    row_batch jansson, fast, combined;
    key_list kj, kf, kc;
    uint64_t handled, declined;
} paths;

static void paths_init(paths *p, const strata_schema *s)
{
    memset(p, 0, sizeof *p);
    strata_err err = {0};
    p->dec = event_decoder_create(s, &err);
    ASSERT(p->dec != NULL);
    ASSERT_EQ(row_batch_init(&p->jansson, s, 0), 0);
    ASSERT_EQ(row_batch_init(&p->fast, s, 0), 0);
    ASSERT_EQ(row_batch_init(&p->combined, s, 0), 0);
}

static void paths_free(paths *p)
{
    event_decoder_free(p->dec);
    row_batch_free(&p->jansson);
    row_batch_free(&p->fast);
    row_batch_free(&p->combined);
}

/* Decodes text with every path, fails on any difference; returns the fast path's code. */
static int compare_paths(paths *p, const char *text, size_t len)
{
    if (p->jansson.nrows >= 4096) {
        row_batch_clear(&p->jansson);
        row_batch_clear(&p->fast);
        row_batch_clear(&p->combined);
    }
    strata_err ej = {0}, ec = {0};
    uint32_t rows = p->fast.nrows;
    uint64_t nbytes = p->fast.nbytes;
    event_unknown_sink sj = key_list_start(&p->kj), sf = key_list_start(&p->kf),
                       sc_ = key_list_start(&p->kc);
    int rj = event_json_decode_jansson_reporting(text, len, &p->jansson, &sj, &ej);
    int rf = event_json_decode_fast_reporting(p->dec, text, len, &p->fast, &sf);
    int rc = event_decoder_decode_reporting(p->dec, text, len, &p->combined, &sc_, &ec);
    if (rj != 0 && p->kj.n != 0)
        TEST_FAIL_("%.*s: refused, yet %d unknown fields reported", (int)len, text, p->kj.n);
    if (!key_list_same(&p->kc, &p->kj))
        TEST_FAIL_("%.*s: unknown fields: combined '%s', jansson '%s'", (int)len, text, p->kc.buf,
                   p->kj.buf);
    if (rf == EVENT_JSON_DECLINED) {
        p->declined++;
        if (p->fast.nrows != rows || p->fast.nbytes != nbytes)
            TEST_FAIL_("%.*s: declined but changed the batch", (int)len, text);
        if (p->kf.n != 0)
            TEST_FAIL_("%.*s: declined but reported unknown fields '%s'", (int)len, text, p->kf.buf);
        if (rj == 0 && event_json_decode_jansson(text, len, &p->fast, &ej) != 0)
            TEST_FAIL_("%.*s: jansson changed its mind", (int)len, text); /* keeps the batches in step */
    } else {
        p->handled++;
        if (rf != 0 || rj != 0)
            TEST_FAIL_("%.*s: fast path %d, jansson %d (%s)", (int)len, text, rf, rj, ej.msg);
        assert_same_row(&p->jansson, p->jansson.nrows - 1, &p->fast, p->fast.nrows - 1, text, len);
        if (!key_list_same(&p->kf, &p->kj))
            TEST_FAIL_("%.*s: unknown fields: fast '%s', jansson '%s'", (int)len, text, p->kf.buf,
                       p->kj.buf);
    }
    if (rc != rj || (rj != 0 && strcmp(ec.msg, ej.msg) != 0))
        TEST_FAIL_("%.*s: combined %d '%s', jansson %d '%s'", (int)len, text, rc, ec.msg, rj, ej.msg);
    ASSERT_EQ(p->combined.nrows, p->jansson.nrows);
    if (rj == 0)
        assert_same_row(&p->jansson, p->jansson.nrows - 1, &p->combined, p->combined.nrows - 1,
                        text, len);
    return rf;
}

enum { ANY, HANDLED, DECLINED };

TEST(fast_path_agrees_on_tricky_inputs)
{
    setup();
    static const struct {
        const char *text;
        size_t len; /* 0: strlen */
        int want;
    } cases[] = {
        {"{\"ts\":1704067200123,\"i\":-5,\"u\":18,\"n\":7,\"f\":12.34,\"b\":true,\"s\":\"US\"}", 0, HANDLED},
        {" \t\r\n{ \"ts\" :\t1 ,\n\"s\"\r: \"x\" } \n\t", 0, HANDLED},
        {"\f{\"ts\":1}", 0, DECLINED},
        {"{\"ts\":1}\v", 0, DECLINED},
        {"{\"ts\":1} x", 0, DECLINED},
        {"{\"ts\":1}{}", 0, DECLINED},
        {"{\"ts\":1}\0", 9, DECLINED},
        {"{\"ts\":1,}", 0, DECLINED},
        {"{\"ts\":1,,\"i\":2}", 0, DECLINED},
        {"{\"ts\":1 \"i\":2}", 0, DECLINED},
        {"{\"ts\"1}", 0, DECLINED},
        {"{\"ts\":1", 0, DECLINED},
        {"{}", 0, DECLINED},
        {"", 0, DECLINED},
        {"null", 0, DECLINED},
        {"[{\"ts\":1}]", 0, DECLINED},
        {"\xef\xbb\xbf{\"ts\":1}", 0, DECLINED},
        /* strings and escapes */
        {"{\"ts\":1,\"s\":\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"}", 0, HANDLED},
        {"{\"ts\":1,\"s\":\"h\\u00e9 \\u20AC \\ud83d\\ude00\"}", 0, HANDLED},
        {"{\"ts\":1,\"s\":\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \x7f\"}", 0, HANDLED},
        {"{\"ts\":1,\"s\":\"a\\u0000b\"}", 0, HANDLED},
        {"{\"ts\":1,\"s\":\"\\ud83d\"}", 0, DECLINED},
        {"{\"ts\":1,\"s\":\"\\ude00\"}", 0, DECLINED},
        {"{\"ts\":1,\"s\":\"\\ud83d\\u0041\"}", 0, DECLINED},
        {"{\"ts\":1,\"s\":\"\\ud83dx\"}", 0, DECLINED},
        {"{\"ts\":1,\"s\":\"\\u12G4\"}", 0, DECLINED},
        {"{\"ts\":1,\"s\":\"\\u00\"}", 0, DECLINED},
        {"{\"ts\":1,\"s\":\"\\x\"}", 0, DECLINED},
        {"{\"ts\":1,\"s\":\"\xff\"}", 0, DECLINED},
        {"{\"ts\":1,\"s\":\"\xc0\x80\"}", 0, DECLINED},
        {"{\"ts\":1,\"s\":\"\xed\xa0\x80\"}", 0, DECLINED},
        {"{\"ts\":1,\"s\":\"\xf4\x90\x80\x80\"}", 0, DECLINED},
        {"{\"ts\":1,\"s\":\"\xe2\x82\"}", 0, DECLINED},
        {"{\"ts\":1,\"s\":\"a\x01\"}", 0, DECLINED},
        {"{\"ts\":1,\"s\":\"a\0b\"}", 16, DECLINED},
        {"{\"ts\":1,\"extra\":\"\\ud800\"}", 0, DECLINED},
        {"{\"ts\":1,\"extra\":\"\xc3\"}", 0, DECLINED},
        /* keys */
        {"{\"ts\":1,\"ts\":2}", 0, DECLINED},
        {"{\"ts\":1,\"x\":1,\"y\":2,\"x\":3}", 0, DECLINED},
        {"{\"ts\":1,\"x\":1,\"y\":2,\"z\":3,\"xx\":4}", 0, HANDLED},
        {"{\"t\\u0073\":5}", 0, DECLINED},
        {"{\"ts\":5,\"t\\u0073\":6}", 0, DECLINED},
        {"{\"ts\":1,\"s\\u0000\":\"x\"}", 0, DECLINED},
        {"{\"ts\":1,\"\":2,\"TS\":3,\"ts \":4,\"\xc3\xa9\":5}", 0, HANDLED},
        /* numbers */
        {"{\"ts\":1,\"i\":9223372036854775807,\"f\":-9223372036854775808}", 0, HANDLED},
        {"{\"ts\":1,\"i\":-9223372036854775808}", 0, HANDLED},
        {"{\"ts\":1,\"i\":9223372036854775808}", 0, DECLINED},
        {"{\"ts\":1,\"i\":-9223372036854775809}", 0, DECLINED},
        {"{\"ts\":1,\"extra\":123456789012345678901}", 0, DECLINED},
        {"{\"ts\":1,\"i\":-0,\"f\":-0}", 0, HANDLED},
        {"{\"ts\":1,\"f\":-0.0}", 0, HANDLED},
        {"{\"ts\":1,\"f\":-0e999}", 0, HANDLED},
        {"{\"ts\":1,\"f\":1e308}", 0, HANDLED},
        {"{\"ts\":1,\"f\":1e309}", 0, DECLINED},
        {"{\"ts\":1,\"extra\":-1e309}", 0, DECLINED},
        {"{\"ts\":1,\"f\":0.1e-400}", 0, HANDLED},
        {"{\"ts\":1,\"f\":4.9e-324}", 0, HANDLED},
        {"{\"ts\":1,\"f\":2.4e-324}", 0, HANDLED},
        {"{\"ts\":1,\"f\":1.7976931348623157e308}", 0, HANDLED},
        {"{\"ts\":1,\"f\":1.7976931348623159e308}", 0, DECLINED},
        {"{\"ts\":1,\"f\":9007199254740993.0}", 0, HANDLED},
        /* 2^64 and 5 * 2^64: the fast path's mantissa wrapped to 0 and gave 0.0 */
        {"{\"ts\":1,\"f\":18446744073709551616.0}", 0, HANDLED},
        {"{\"ts\":1,\"f\":-92233720368547758080.00e-3}", 0, HANDLED},
        {"{\"ts\":1,\"f\":9007199254740993}", 0, HANDLED},
        {"{\"ts\":1,\"f\":2.2250738585072011e-308}", 0, HANDLED},
        {"{\"ts\":1,\"f\":0.30000000000000004}", 0, HANDLED},
        {"{\"ts\":1,\"f\":123456789012345678e-10}", 0, HANDLED},
        {"{\"ts\":1,\"f\":1e22,\"extra\":1e23}", 0, HANDLED},
        {"{\"ts\":1,\"f\":1E-2}", 0, HANDLED},
        {"{\"ts\":1,\"f\":1e99999999999999999999}", 0, DECLINED},
        {"{\"ts\":1,\"f\":1e-99999999999999999999}", 0, HANDLED},
        {"{\"ts\":1,\"i\":01}", 0, DECLINED},
        {"{\"ts\":1,\"i\":00}", 0, DECLINED},
        {"{\"ts\":1,\"i\":-}", 0, DECLINED},
        {"{\"ts\":1,\"i\":+1}", 0, DECLINED},
        {"{\"ts\":1,\"f\":.5}", 0, DECLINED},
        {"{\"ts\":1,\"f\":1.}", 0, DECLINED},
        {"{\"ts\":1,\"f\":1e}", 0, DECLINED},
        {"{\"ts\":1,\"f\":1e+}", 0, DECLINED},
        {"{\"ts\":1,\"i\":1x}", 0, DECLINED},
        {"{\"ts\":1,\"i\":1-2}", 0, DECLINED},
        {"{\"ts\":1,\"f\":NaN}", 0, DECLINED},
        {"{\"ts\":1,\"f\":Infinity}", 0, DECLINED},
        {"{\"ts\":1,\"f\":0x10}", 0, DECLINED},
        /* literals, null, nesting */
        {"{\"ts\":1,\"b\":false}", 0, HANDLED},
        {"{\"ts\":1,\"b\":truex}", 0, DECLINED},
        {"{\"ts\":1,\"b\":True}", 0, DECLINED},
        {"{\"ts\":1,\"b\":nul}", 0, DECLINED},
        {"{\"ts\":1,\"s\":null,\"i\":null,\"f\":null,\"b\":null,\"u\":null,\"t2\":null}", 0, HANDLED},
        {"{\"ts\":null}", 0, DECLINED},
        {"{\"i\":1}", 0, DECLINED},
        {"{\"ts\":1,\"extra\":{\"a\":[1,2]}}", 0, DECLINED},
        {"{\"ts\":1,\"extra\":[]}", 0, DECLINED},
        /* column rules */
        {"{\"ts\":\"2024-01-01T12:00:00.123+01:00\",\"t2\":\"2024-02-29\"}", 0, HANDLED},
        {"{\"ts\":\"2024-01-01T00:00:00\\u005a\"}", 0, HANDLED},
        {"{\"ts\":\"2023-02-29T00:00:00Z\"}", 0, DECLINED},
        {"{\"ts\":253402300799999}", 0, HANDLED},
        {"{\"ts\":253402300800000}", 0, DECLINED},
        {"{\"ts\":-62167219200001}", 0, DECLINED},
        {"{\"ts\":1.0}", 0, HANDLED},
        {"{\"ts\":true}", 0, DECLINED},
        {"{\"ts\":1,\"t2\":1.5}", 0, DECLINED},
        {"{\"ts\":1,\"u\":\"18446744073709551615\"}", 0, HANDLED},
        {"{\"ts\":1,\"u\":\"\\u0031\\u0032\"}", 0, HANDLED},
        {"{\"ts\":1,\"u\":\"007\"}", 0, HANDLED},
        {"{\"ts\":1,\"u\":\"18446744073709551616\"}", 0, DECLINED},
        {"{\"ts\":1,\"u\":\"\\t-1\"}", 0, DECLINED},
        {"{\"ts\":1,\"u\":\"12\\u00003\"}", 0, DECLINED},
        {"{\"ts\":1,\"u\":\"\"}", 0, DECLINED},
        {"{\"ts\":1,\"u\":-1}", 0, DECLINED},
        {"{\"ts\":1,\"u\":1.0}", 0, HANDLED},
        {"{\"ts\":1,\"n\":2147483647}", 0, HANDLED},
        {"{\"ts\":1,\"n\":-2147483649}", 0, DECLINED},
        {"{\"ts\":1,\"i\":\"5\"}", 0, DECLINED},
        {"{\"ts\":1,\"f\":\"1.5\"}", 0, DECLINED},
        {"{\"ts\":1,\"b\":1}", 0, DECLINED},
        {"{\"ts\":1,\"s\":42}", 0, DECLINED},
    };
    paths p;
    paths_init(&p, &sc);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t len = cases[k].len ? cases[k].len : strlen(cases[k].text);
        int rf = compare_paths(&p, cases[k].text, len);
        if (cases[k].want == HANDLED && rf != 0)
            TEST_FAIL_("fast path declined: %s", cases[k].text);
        if (cases[k].want == DECLINED && rf != EVENT_JSON_DECLINED)
            TEST_FAIL_("fast path handled: %s", cases[k].text);
    }
    /* The values themselves, for a few. */
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &sc, 0), 0);
    const char *ev = "{\"ts\":1,\"f\":-0.0,\"s\":\"a\\u0000\\ud83d\\ude00\",\"u\":\"18446744073709551615\"}";
    ASSERT_EQ(event_json_decode_fast(NULL, ev, strlen(ev), &b), 0);
    ASSERT_EQ(b.nrows, 1);
    ASSERT_DBL_EQ(b.f[4][0], -0.0);
    strata_str s = row_batch_get_str(&b, 6, 0);
    ASSERT_EQ(s.len, 6);
    ASSERT_EQ(memcmp(s.ptr, "a\0\xf0\x9f\x98\x80", 6), 0);
    ASSERT_U64_EQ((uint64_t)b.i[2][0], UINT64_MAX);
    ev = "{\"ts\":1,\"f\":18446744073709551616.0}";
    ASSERT_EQ(event_json_decode_fast(NULL, ev, strlen(ev), &b), 0);
    ASSERT_DBL_EQ(b.f[4][1], 18446744073709551616.0);
    row_batch_free(&b);
    paths_free(&p);
}

/* {"qty": 2.0} into an integer column was "expected an integer, got a number with a
 * fraction": many producers write integral numbers with a fraction or an exponent. */
TEST(integral_numbers_with_a_fraction_or_exponent_fit_integer_columns)
{
    setup();
    paths p;
    paths_init(&p, &sc);
    enum { TS = 0, I = 1, U = 2, N = 3, T2 = 7 };
    static const struct {
        int col;
        const char *num;
        int64_t want;
    } ok[] = {
        {I, "2.0", 2},
        {I, "2.00", 2},
        {I, "1e3", 1000},
        {I, "1E+3", 1000},
        {I, "1.0E2", 100},
        {I, "20e-1", 2},
        {I, "-0.0", 0},
        {I, "0e5", 0},
        {I, "0.000e-7", 0},
        {I, "9223372036854775807.0", INT64_MAX},
        {I, "9.223372036854775807e18", INT64_MAX},
        {I, "-9.223372036854775808e18", INT64_MIN},
        {I, "-9223372036854775808.000", INT64_MIN},
        {I, "9007199254740993.0", 9007199254740993}, /* not a double: read exactly */
        {I, "12345678901234567890000e-4", 1234567890123456789},
        {I, "0.00000000000000000000000000000000000000000000000000000000001e59", 1},
        {U, "1.0", 1},
        {U, "-0.0", 0},
        {U, "1.8446744073709551615e19", (int64_t)UINT64_MAX}, /* beyond 2^63-1 without a string */
        {N, "2147483647.0", INT32_MAX},
        {N, "-2.147483648e9", INT32_MIN},
        {TS, "1.7e12", 1700000000000},
        {TS, "1.704067200123e12", 1704067200123},
        {T2, "2.53402300799999e14", STRATA_TS_MAX},
        {T2, "-6.2167219200000e13", STRATA_TS_MIN},
    };
    static const char *const names[] = {"ts", "i", "u", "n", "f", "b", "s", "t2"};
    char ev[512];
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        int c = ok[k].col;
        if (c == TS)
            snprintf(ev, sizeof ev, "{\"ts\":%s,\"i\":5}", ok[k].num);
        else
            snprintf(ev, sizeof ev, "{\"ts\":1,\"%s\":%s}", names[c], ok[k].num);
        if (compare_paths(&p, ev, strlen(ev)) != 0)
            TEST_FAIL_("fast path declined: %s", ev);
        if (p.fast.i[c][p.fast.nrows - 1] != ok[k].want || p.jansson.i[c][p.jansson.nrows - 1] != ok[k].want)
            TEST_FAIL_("%s: %lld / %lld, want %lld", ev, (long long)p.fast.i[c][p.fast.nrows - 1],
                       (long long)p.jansson.i[c][p.jansson.nrows - 1], (long long)ok[k].want);
    }

    /* Refused, by both paths with the same message (compare_paths), which is exactly this. */
    char long_num[128], long_msg[160];
    snprintf(long_num, sizeof long_num, "1.%0*d1", 70, 0);
    snprintf(long_msg, sizeof long_msg, "i: %.40s... is not an integer", long_num);
    static const char *const i64 = "out of int64 range (-9223372036854775808 to 9223372036854775807)";
    struct {
        int col;
        const char *num;
        char msg[160];
    } bad[] = {
        {I, "2.5", "i: 2.5 is not an integer"},
        {I, "2.50", "i: 2.50 is not an integer"},
        {I, "-1e-1", "i: -1e-1 is not an integer"},
        {I, "2.0000000000000001", "i: 2.0000000000000001 is not an integer"}, /* 2.0 as a double */
        {I, "9007199254740993.5", "i: 9007199254740993.5 is not an integer"},
        {I, "1e-400", "i: 1e-400 is not an integer"}, /* 0.0 as a double */
        {I, "1e19", ""},
        {I, "9.3e18", ""},
        {I, "9223372036854775808.0", ""},
        {I, "-9.223372036854775809e18", ""},
        {I, "1e99999999999999999999", "malformed JSON"}, /* jansson: real number overflow */
        {I, "1e400", "malformed JSON"},
        {I, long_num, ""},
        {U, "-1.0", "u: -1.0 is negative, the column is uint64"},
        {U, "-1e25", "u: -1e25 is negative, the column is uint64"},
        {U, "-0.5", "u: -0.5 is not an integer"},
        {U, "1.8446744073709551616e19",
         "u: 1.8446744073709551616e19 is out of uint64 range (0 to 18446744073709551615)"},
        {N, "2147483648", "n: 2147483648 is out of int32 range (-2147483648 to 2147483647)"},
        {N, "2147483648.0", "n: 2147483648.0 is out of int32 range (-2147483648 to 2147483647)"},
        {N, "-2.147483649e9", "n: -2.147483649e9 is out of int32 range (-2147483648 to 2147483647)"},
        {TS, "1.5", "ts: 1.5 is not an integer (epoch milliseconds)"},
        {TS, "2.534023008e14", "ts: 2.534023008e14 ms is outside years 0000-9999"},
        {T2, "-6.2167219200001e13", "t2: -6.2167219200001e13 ms is outside years 0000-9999"},
        {5, "1.0", "b: expected true or false, got a number with a fraction"},
        {6, "1e3", "s: expected a string, got a number with a fraction"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        if (bad[k].msg[0] == 0)
            snprintf(bad[k].msg, sizeof bad[k].msg, "i: %s is %s", bad[k].num, i64);
        if (bad[k].num == long_num)
            snprintf(bad[k].msg, sizeof bad[k].msg, "%s", long_msg);
    }
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int c = bad[k].col;
        if (c == TS)
            snprintf(ev, sizeof ev, "{\"ts\":%s}", bad[k].num);
        else
            snprintf(ev, sizeof ev, "{\"ts\":1,\"%s\":%s}", names[c], bad[k].num);
        if (compare_paths(&p, ev, strlen(ev)) != EVENT_JSON_DECLINED)
            TEST_FAIL_("fast path handled: %s", ev);
        strata_err err = {0};
        row_batch b;
        ASSERT_EQ(row_batch_init(&b, &sc, 0), 0);
        ASSERT_EQ(event_json_decode(ev, strlen(ev), &b, &err), STRATA_EINVAL);
        ASSERT_EQ(b.nrows, 0);
        row_batch_free(&b);
        if (strcmp(bad[k].msg, "malformed JSON") == 0)
            ASSERT_CONTAINS(err.msg, "real number overflow");
        else
            ASSERT_STR_EQ(err.msg, bad[k].msg);
    }

    /* Events the fast path declines: the jansson path finds the number's text behind
     * nested values, strings holding brackets and commas, escaped keys, odd spacing. */
    char longer[400];
    snprintf(longer, sizeof longer, "{\"ts\":1,\"i\":2.%0*d}", 300, 0); /* too long for the fast path */
    static const struct {
        const char *text;
        int64_t i, u;
    } behind[] = {
        {"{\"ts\":1,\"extra\":{\"a\":[1,\"}],\\\"{\"]},\"i\":2.0,\"u\":3e0}", 2, 3},
        {" { \"ts\" : 1 ,\n\"x\" : [ ] ,\t\"\\u0069\" : 1E+3 , \"u\":\r\n7.00 } ", 1000, 7},
        {"{\"u\":1e1,\"ts\":1.0,\"\\\"\":[[[]]],\"i\":-4.0e0}", -4, 10},
        {"{\"ts\":1,\"x\":\"a\\\\\",\"i\":5e1,\"y\":{},\"u\":0.5e1}", 50, 5},
        {NULL, 2, 0},
    };
    for (size_t k = 0; k < sizeof behind / sizeof behind[0]; k++) {
        const char *text = behind[k].text ? behind[k].text : longer;
        if (compare_paths(&p, text, strlen(text)) != EVENT_JSON_DECLINED)
            TEST_FAIL_("fast path handled: %s", text);
        uint32_t last = p.jansson.nrows - 1;
        if (p.jansson.i[I][last] != behind[k].i || p.jansson.i[U][last] != behind[k].u)
            TEST_FAIL_("%s: i %lld, u %lld", text, (long long)p.jansson.i[I][last],
                       (long long)p.jansson.i[U][last]);
    }
    const char *frac = "{\"ts\":1,\"extra\":[{\"i\":2.5}],\"i\":2.25}";
    strata_err err = {0};
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &sc, 0), 0);
    ASSERT_EQ(event_json_decode(frac, strlen(frac), &b, &err), STRATA_EINVAL);
    ASSERT_STR_EQ(err.msg, "i: 2.25 is not an integer");
    row_batch_free(&b);
    paths_free(&p);
}

TEST(uint64_strings_are_plain_decimals)
{
    /* strtoull used to take "\t-1" as 2^64-1 and "12\u00003" as 12 */
    setup();
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &sc, 0), 0);
    const char *bad[] = {"{\"ts\":1,\"u\":\"\\t-1\"}", "{\"ts\":1,\"u\":\"\\n5\"}",
                         "{\"ts\":1,\"u\":\"12\\u00003\"}", "{\"ts\":1,\"u\":\" 1\"}",
                         "{\"ts\":1,\"u\":\"+1\"}", "{\"ts\":1,\"u\":\"-0\"}",
                         "{\"ts\":1,\"u\":\"1 \"}", "{\"ts\":1,\"u\":\"0x10\"}"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        strata_err err = {0};
        if (decode(&b, bad[k], &err) != STRATA_EINVAL)
            TEST_FAIL_("accepted: %s", bad[k]);
        ASSERT_CONTAINS(err.msg, "is not a uint64");
    }
    strata_err err = {0};
    ASSERT_EQ(decode(&b, "{\"ts\":1,\"u\":\"0007\"}", &err), 0);
    ASSERT_EQ(b.i[2][0], 7);
    row_batch_free(&b);
}

TEST(column_lookup_by_exact_name)
{
    /* names sharing length, ends and middle; a 63-byte name; a duplicate name keeps the
     * first column, as schema_column_index does */
    strata_schema s;
    schema_init(&s);
    const char *names[] = {"ts", "ab", "ba", "aab", "aba", "baa", "x", "X", "ab_", "ab"};
    for (int c = 0; c < 10; c++) {
        snprintf(s.cols[c].name, sizeof s.cols[c].name, "%s", names[c]);
        s.cols[c].type = c ? STRATA_INT64 : STRATA_TIMESTAMP;
        s.cols[c].def_i = -c;
    }
    memset(s.cols[10].name, 'k', STRATA_NAME_MAX - 1);
    s.cols[10].type = STRATA_INT64;
    s.ncols = 11;
    s.time_col = 0;
    paths p;
    paths_init(&p, &s);
    char ev[512];
    snprintf(ev, sizeof ev,
             "{\"ts\":1,\"ab\":1,\"ba\":2,\"aab\":3,\"aba\":4,\"baa\":5,\"x\":6,\"X\":7,\"ab_\":8,"
             "\"%s\":9,\"%sk\":10,\"a\":11,\"b\":12,\"abb\":13}",
             s.cols[10].name, s.cols[10].name);
    ASSERT_EQ(compare_paths(&p, ev, strlen(ev)), 0);
    for (int c = 1; c < 9; c++)
        ASSERT_EQ(p.fast.i[c][0], c);
    ASSERT_EQ(p.fast.i[9][0], -9); /* the second "ab" is never matched */
    ASSERT_EQ(p.fast.i[10][0], 9);
    /* a decoder used with a batch of another schema builds that schema's lookup */
    strata_schema copy = s;
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &copy, 0), 0);
    ASSERT_EQ(event_json_decode_fast(p.dec, ev, strlen(ev), &b), 0);
    assert_same_row(&p.fast, 0, &b, 0, ev, strlen(ev));
    row_batch_free(&b);
    paths_free(&p);
}

/* ---- random structured events ---------------------------------------------------------- */

typedef struct gen_text {
    char buf[4096];
    size_t len;
} gen_text;

static void gput(gen_text *t, const char *s, size_t n)
{
    if (t->len + n < sizeof t->buf) {
        memcpy(t->buf + t->len, s, n);
        t->len += n;
    }
}

static void gputs(gen_text *t, const char *s)
{
    gput(t, s, strlen(s));
}

static void gprintf(gen_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void gprintf(gen_text *t, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        gput(t, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A random code point, written raw or as \u escapes (surrogate pairs above U+FFFF). */
static void gen_char(gen_text *t, uint64_t *rs)
{
    uint64_t r = test_rand_next(rs);
    uint32_t cp;
    switch (r % 8) {
    case 0: cp = 0x80 + (uint32_t)(r >> 8) % 0x780; break;
    case 1: cp = 0x800 + (uint32_t)(r >> 8) % 0xF800; break;
    case 2: cp = 0x10000 + (uint32_t)(r >> 8) % 0x100000; break;
    case 3: cp = (uint32_t)(r >> 8) % 0x20; break;
    default: cp = 0x20 + (uint32_t)(r >> 8) % 0x5F; break;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF)
        cp = 'S';
    bool escape = cp < 0x20 || cp == '"' || cp == '\\' || (r >> 40) % 4 == 0;
    if (escape && cp == '\n' && (r >> 44) % 2)
        gputs(t, "\\n");
    else if (escape && cp < 0x10000)
        gprintf(t, (r >> 45) % 2 ? "\\u%04x" : "\\u%04X", cp);
    else if (escape)
        gprintf(t, "\\u%04x\\u%04x", 0xD800 + ((cp - 0x10000) >> 10), 0xDC00 + ((cp - 0x10000) & 0x3FF));
    else {
        char u[4];
        size_t n;
        if (cp < 0x80)
            u[0] = (char)cp, n = 1;
        else if (cp < 0x800)
            u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
        else if (cp < 0x10000)
            u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3F)),
            u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
        else
            u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3F)),
            u[2] = (char)(0x80 | (cp >> 6 & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
        gput(t, u, n);
    }
}

static void gen_value(gen_text *t, uint64_t *rs, int col_hint)
{
    uint64_t r = test_rand_next(rs);
    unsigned kind = col_hint >= 0 && r % 4 ? (unsigned)col_hint : (unsigned)(r >> 4) % 13;
    uint64_t x = test_rand_next(rs);
    switch (kind) {
    case 0: /* int, small to full range */
        gprintf(t, "%lld", (long long)(x >> (x % 64)) * ((r >> 20) % 2 ? -1 : 1));
        break;
    case 1: { /* a random double, printed with a random precision */
        double d;
        memcpy(&d, &x, sizeof d);
        if (!isfinite(d))
            d = (double)(int64_t)x / 1e6;
        gprintf(t, "%.*g", 1 + (int)((r >> 8) % 18), d);
        break;
    }
    case 2: /* decimal with few digits, as amounts are written */
        gprintf(t, "%s%llu.%0*llu", (r >> 8) % 5 ? "" : "-", (unsigned long long)(x % 100000),
                1 + (int)((r >> 12) % 4), (unsigned long long)((x >> 20) % 10000));
        break;
    case 3: { /* mantissa digits, a point somewhere, and an exponent near 10^+-22 or anywhere */
        char m[32];
        int n = snprintf(m, sizeof m, "%llu", (unsigned long long)(x >> (x % 64)));
        int point = (int)((r >> 24) % (unsigned)(n + 1));
        long long e = (r >> 8) % 4 ? (long long)((x >> 7) % 61) - 30 : (long long)((x >> 7) % 700) - 350;
        if (point > 0 && point < n)
            gprintf(t, "%.*s.%s%s%lld", point, m, m + point, (r >> 12) % 2 ? "e" : "E", e);
        else
            gprintf(t, "%s%s%lld", m, (r >> 12) % 2 ? "e" : "E", e);
        break;
    }
    case 4: case 5: { /* a string */
        gputs(t, "\"");
        unsigned n = (unsigned)(x % 24);
        for (unsigned k = 0; k < n; k++)
            gen_char(t, rs);
        gputs(t, "\"");
        break;
    }
    case 6: /* a time */
        if (x % 2)
            gprintf(t, "%lld", (long long)(STRATA_TS_MIN + (int64_t)(x % (uint64_t)(STRATA_TS_MAX - STRATA_TS_MIN + 2))));
        else {
            char tm[40];
            units_format_rfc3339_ms((int64_t)(x % 4102444800000), tm, sizeof tm);
            gprintf(t, "\"%s\"", tm);
        }
        break;
    case 7: /* uint64 as a decimal string or a number */
        gprintf(t, (r >> 8) % 2 ? "\"%llu\"" : "%llu", (unsigned long long)(x >> (r >> 16) % 2));
        break;
    case 8: gputs(t, (r >> 8) % 2 ? "true" : "false"); break;
    case 9: gputs(t, "null"); break;
    case 10: { /* something unusual */
        static const char *const odd[] = {"{}", "[1]", "{\"a\":{\"b\":[]}}", "01", "-", "1.",
                                          "1e999", "-1e999", "1e-999", "tru", "\"\\ud800\"",
                                          "\"\\x\"", "99999999999999999999", "\"\xff\""};
        gputs(t, odd[x % (sizeof odd / sizeof odd[0])]);
        break;
    }
    case 12: { /* an integer written with a fraction or an exponent: integral, or nearly */
        unsigned long long u = x >> (x % 64);
        const char *sign = (r >> 20) % 2 ? "-" : "";
        char m[32];
        int n = snprintf(m, sizeof m, "%llu", u);
        switch ((r >> 8) % 7) {
        case 0: gprintf(t, "%s%s.%.*s", sign, m, 1 + (int)((r >> 12) % 3), "000"); break;
        case 1: gprintf(t, "%s%se%s0", sign, m, (r >> 12) % 2 ? "+" : ""); break;
        case 2: gprintf(t, "%s%s00E-2", sign, m); break;
        case 3: /* d.ddd e(n-1): always u; e(n-2): u / 10 */
        case 4:
            gprintf(t, "%s%c.%se%d", sign, m[0], n > 1 ? m + 1 : "0", n - 1 - (int)((r >> 8) % 7 == 4));
            break;
        case 5: gprintf(t, "%s%s.00000000000000000001", sign, m); break;
        default: /* at the edges of the int32, int64 and uint64 ranges */
            gputs(t, (const char *[]){"2147483647.0", "-2.147483648e9", "2.147483648e9",
                                      "9.223372036854775807e18", "-9223372036854775808.0",
                                      "9.223372036854775808e18", "1.8446744073709551615e19",
                                      "18446744073709551616.0", "-0.0", "0e99",
                                      "2.53402300799999e14", "-6.2167219200001e13"}[x % 12]);
            break;
        }
        break;
    }
    default: gprintf(t, "%d", (int)(x % 2000) - 1000); break;
    }
}

/* A random event for the schema of setup(): mostly well-formed, now and then broken. */
static void gen_event(gen_text *t, uint64_t *rs)
{
    static const char *const keys[] = {"ts", "i", "u", "n", "f", "b", "s", "t2",
                                       "extra", "x", "", "TS", "ss", "\xc3\xa9"};
    static const int hints[] = {6, 0, 7, 11, 1, 8, 4, 6, -1, -1, -1, -1, -1, -1};
    static const char *const ws[] = {"", "", "", " ", "\n", "\t ", "\r\n"};
    uint64_t r = test_rand_next(rs);
    t->len = 0;
    gputs(t, ws[r % 7]);
    gputs(t, "{");
    unsigned n = 1 + (unsigned)((r >> 8) % 12);
    uint32_t used = 0;
    for (unsigned k = 0; k < n; k++) {
        uint64_t q = test_rand_next(rs);
        unsigned key = k == 0 && q % 8 ? 0 : (unsigned)((q >> 4) % 14);
        if ((used & (1u << key)) && q % 64) /* mostly no duplicates */
            continue;
        used |= 1u << key;
        if (t->len > 1 && t->buf[t->len - 1] != '{')
            gputs(t, ",");
        gputs(t, ws[(q >> 12) % 7]);
        gprintf(t, "\"%s\"%s:%s", keys[key], ws[(q >> 16) % 7], ws[(q >> 20) % 7]);
        gen_value(t, rs, hints[key]);
        gputs(t, ws[(q >> 24) % 7]);
    }
    gputs(t, "}");
    gputs(t, ws[(r >> 16) % 7]);
    if ((r >> 24) % 32 == 0 && t->len) /* a corrupted byte */
        t->buf[(r >> 32) % t->len] = (char)(r >> 40);
    if ((r >> 48) % 64 == 0) /* cut short */
        t->len = (r >> 54) % (t->len + 1);
}

TEST(random_structured_events_agree)
{
    setup();
    paths p;
    paths_init(&p, &sc);
    uint64_t rs = 0x9E3779B97F4A7C15u;
    gen_text t;
    const int n = 300000;
    for (int k = 0; k < n; k++) {
        gen_event(&t, &rs);
        compare_paths(&p, t.buf, t.len);
    }
    fprintf(stderr, "random events: %llu handled by the fast path, %llu declined\n",
            (unsigned long long)p.handled, (unsigned long long)p.declined);
    ASSERT_GT(p.handled, n / 4); /* the comparison means something */
    paths_free(&p);
    /* The same kind of events into a table that rejects unknown fields. */
    strata_schema strict = sc;
    strict.unknown_fields = STRATA_UNKNOWN_FIELDS_REJECT;
    paths_init(&p, &strict);
    for (int k = 0; k < n / 3; k++) {
        gen_event(&t, &rs);
        compare_paths(&p, t.buf, t.len);
    }
    fprintf(stderr, "random events, unknown fields rejected: %llu handled, %llu declined\n",
            (unsigned long long)p.handled, (unsigned long long)p.declined);
    ASSERT_GT(p.handled, n / 3 / 16); /* events with known fields only */
    paths_free(&p);
}

TEST(fast_path_handles_order_events)
{
    strata_schema os;
    order_gen_schema(&os);
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.count = 100000;
    o.duplicates = 0.1;
    o.late = 0.05;
    strata_err err = {0};
    order_gen *g = order_gen_create(&o, &err);
    ASSERT(g != NULL);
    paths p;
    paths_init(&p, &os);
    char buf[ORDER_GEN_JSON_MAX];
    order_gen_msg msg;
    while (order_gen_next_json(g, buf, sizeof buf, &msg) == 1)
        if (compare_paths(&p, buf, msg.len) != 0)
            TEST_FAIL_("fast path declined an order event: %s", buf);
    ASSERT_EQ(p.handled, 100000);
    order_gen_free(g);
    /* and the malformed ones the generator makes are all declined */
    for (uint64_t k = 0; k < 2 * ORDER_BAD_NKINDS; k++) {
        int len = order_gen_format_bad((order_gen_bad_kind)(k % ORDER_BAD_NKINDS), k, buf, sizeof buf);
        ASSERT_GE(len, 0);
        ASSERT_EQ(compare_paths(&p, buf, (size_t)len), EVENT_JSON_DECLINED);
    }
    paths_free(&p);
}

/* ---- unknown fields ---------------------------------------------------------------------- */

TEST(unknown_fields_are_reported_in_order_by_both_paths)
{
    setup();
    paths p;
    paths_init(&p, &sc);
    static const struct {
        const char *text;
        int want;          /* HANDLED or DECLINED by the fast path */
        int rc;            /* of the jansson path */
        const char *keys;  /* reported, as key_list writes them */
    } cases[] = {
        {"{\"ts\":1,\"i\":2}", HANDLED, 0, ""},
        {"{\"amout\":5,\"ts\":1,\"Country\":\"US\"}", HANDLED, 0, "5:amout;7:Country;"},
        {"{\"ts\":1,\"extra\":null,\"\":1,\"\xc3\xa9\":true,\"i\":null}", HANDLED, 0, "5:extra;0:;2:\xc3\xa9;"},
        /* nested values: the key is the unknown field, its inner keys are not looked at */
        {"{\"ts\":1,\"user\":{\"id\":5,\"i\":1},\"tags\":[1,2]}", DECLINED, 0, "4:user;4:tags;"},
        /* an escaped key is reported decoded */
        {"{\"ts\":1,\"a\\u0062\":1,\"s\\u0031\":\"x\"}", DECLINED, 0, "2:ab;2:s1;"},
        /* a refused event reports nothing */
        {"{\"ts\":1,\"x\":1,\"i\":\"bad\"}", DECLINED, STRATA_EINVAL, ""},
        {"{\"x\":1}", DECLINED, STRATA_EINVAL, ""},
        {"{\"ts\":1,\"x\":1,\"x\":2}", DECLINED, STRATA_EINVAL, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *text = cases[i].text;
        int rf = compare_paths(&p, text, strlen(text));
        if ((rf == 0) != (cases[i].want == HANDLED))
            TEST_FAIL_("%s: fast path %s", text, rf == 0 ? "handled it" : "declined");
        strata_err err = {0};
        row_batch b;
        ASSERT_EQ(row_batch_init(&b, &sc, 0), 0);
        ASSERT_EQ(event_json_decode_jansson(text, strlen(text), &b, &err), cases[i].rc);
        row_batch_free(&b);
        ASSERT_STR_EQ(p.kj.buf, cases[i].keys);
        ASSERT_STR_EQ(p.kc.buf, cases[i].keys);
    }
    /* the row lands without them: {"amout":5,"ts":1,"Country":"US"} left every default */
    ASSERT_EQ(p.fast.i[1][1], 0);
    ASSERT_EQ(p.fast.i[3][1], 7);
    /* more unknown keys than the fast path remembers: jansson reports every one, in order */
    char big[8192];
    size_t n = (size_t)snprintf(big, sizeof big, "{\"ts\":1");
    char want[8192];
    size_t wn = 0;
    for (int k = 0; k < 300; k++) {
        n += (size_t)snprintf(big + n, sizeof big - n, ",\"k%d\":%d", k, k);
        wn += (size_t)snprintf(want + wn, sizeof want - wn, "%d:k%d;", k < 10 ? 2 : k < 100 ? 3 : 4, k);
    }
    n += (size_t)snprintf(big + n, sizeof big - n, "}");
    ASSERT_EQ(compare_paths(&p, big, n), EVENT_JSON_DECLINED);
    ASSERT_EQ(p.kj.n, 300);
    ASSERT_STR_EQ(p.kj.buf, want);
    paths_free(&p);
}

/* ts, amount, country, event_id: the columns a new user misspells */
static void setup_orders(strata_schema *s, strata_unknown_fields mode)
{
    schema_init(s);
    snprintf(s->name, sizeof s->name, "orders");
    const char *names[] = {"ts", "amount", "country", "event_id"};
    strata_type types[] = {STRATA_TIMESTAMP, STRATA_FLOAT64, STRATA_STRING, STRATA_UINT64};
    for (int c = 0; c < 4; c++) {
        snprintf(s->cols[c].name, sizeof s->cols[c].name, "%s", names[c]);
        s->cols[c].type = types[c];
    }
    s->ncols = 4;
    s->time_col = 0;
    s->unknown_fields = mode;
}

#define REJECTS "; this table rejects events with unknown fields (unknown_fields: reject)"

TEST(unknown_fields_reject_names_the_first_with_a_suggestion)
{
    strata_schema os;
    setup_orders(&os, STRATA_UNKNOWN_FIELDS_REJECT);
    paths p;
    paths_init(&p, &os);
    char long_key[200], long_event[300], long_msg[300];
    memset(long_key, 'k', 100);
    long_key[100] = 0;
    snprintf(long_event, sizeof long_event, "{\"ts\":1,\"%s\":1}", long_key);
    snprintf(long_msg, sizeof long_msg, "%.64s...: unknown field" REJECTS, long_key);
    /* a key cut in the middle of a character would not be UTF-8: the cut moves before it */
    char utf8_key[100], utf8_event[200], utf8_msg[300];
    memset(utf8_key, 'a', 63);
    snprintf(utf8_key + 63, sizeof utf8_key - 63, "\xc3\xa9\xc3\xa9");
    snprintf(utf8_event, sizeof utf8_event, "{\"ts\":1,\"%s\":1}", utf8_key);
    snprintf(utf8_msg, sizeof utf8_msg, "%.63s...: unknown field" REJECTS, utf8_key);
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"{\"ts\":1,\"amout\":5}", "amout: unknown field (did you mean 'amount'?)" REJECTS},
        {"{\"Country\":\"US\",\"ts\":1}", "Country: unknown field (did you mean 'country'?)" REJECTS},
        {"{\"ts\":1,\"COUNTRY\":\"US\"}", "COUNTRY: unknown field (did you mean 'country'?)" REJECTS},
        {"{\"ts\":1,\"eventid\":5}", "eventid: unknown field (did you mean 'event_id'?)" REJECTS},
        {"{\"ts\":1,\"extra\":null}", "extra: unknown field" REJECTS},
        {"{\"ts\":1,\"user\":{\"id\":1}}", "user: unknown field" REJECTS},
        {"{\"ts\":1,\"x\":1}", "x: unknown field" REJECTS},
        /* the first field at fault, in the event's order */
        {"{\"ts\":1,\"amount\":\"x\",\"amout\":5}", "amount: expected a number, got a string"},
        {"{\"ts\":1,\"amout\":5,\"amount\":\"x\"}", "amout: unknown field (did you mean 'amount'?)" REJECTS},
        {"{\"amout\":5}", "ts: the time field is missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0] + 2; i++) {
        const char *text = i < sizeof cases / sizeof cases[0] ? cases[i].text
                           : i == sizeof cases / sizeof cases[0] ? long_event : utf8_event;
        const char *msg = i < sizeof cases / sizeof cases[0] ? cases[i].msg
                          : i == sizeof cases / sizeof cases[0] ? long_msg : utf8_msg;
        ASSERT_EQ(compare_paths(&p, text, strlen(text)), EVENT_JSON_DECLINED);
        strata_err err = {0};
        ASSERT_EQ(event_decoder_decode(p.dec, text, strlen(text), &p.combined, &err), STRATA_EINVAL);
        ASSERT_STR_EQ(err.msg, msg);
    }
    ASSERT_EQ(p.combined.nrows, 0);
    /* events with known fields only still take the fast path */
    const char *ok = "{\"ts\":1,\"amount\":2.5,\"country\":\"US\",\"event_id\":7}";
    ASSERT_EQ(compare_paths(&p, ok, strlen(ok)), 0);
    ASSERT_EQ(p.kj.n, 0);
    ASSERT_DBL_EQ(p.fast.f[1][0], 2.5);
    paths_free(&p);
}

TEST(missing_time_field_names_a_key_like_it)
{
    strata_schema os;
    setup_orders(&os, STRATA_UNKNOWN_FIELDS_IGNORE);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &os, 0), 0);
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"{\"TS\":1,\"amount\":2}", "ts: the time field is missing (the event has 'TS': did you mean 'ts'?)"},
        {"{\"amout\":2,\"tss\":1}", "ts: the time field is missing (the event has 'tss': did you mean 'ts'?)"},
        {"{\"time\":1}", "ts: the time field is missing"},
        {"{\"amount\":1,\"ts\":null}", "ts: the time field is missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        strata_err err = {0};
        ASSERT_EQ(event_json_decode(cases[i].text, strlen(cases[i].text), &b, &err), STRATA_EINVAL);
        ASSERT_STR_EQ(err.msg, cases[i].msg);
    }
    ASSERT_EQ(b.nrows, 0);
    row_batch_free(&b);
}

TEST(likely_column_of_a_misspelled_field)
{
    strata_schema os;
    setup_orders(&os, STRATA_UNKNOWN_FIELDS_IGNORE);
    ASSERT_STR_EQ(event_json_likely_column(&os, "Amount"), "amount");
    ASSERT_STR_EQ(event_json_likely_column(&os, "AMOUNT"), "amount");
    ASSERT_STR_EQ(event_json_likely_column(&os, "amout"), "amount");
    ASSERT_STR_EQ(event_json_likely_column(&os, "amonut"), "amount");
    ASSERT_STR_EQ(event_json_likely_column(&os, "countrys"), "country");
    ASSERT(event_json_likely_column(&os, "countries") == NULL); /* three edits */
    ASSERT(event_json_likely_column(&os, "x") == NULL);
    ASSERT(event_json_likely_column(&os, "t") == NULL); /* one edit, but all of the word */
    ASSERT(event_json_likely_column(&os, "device") == NULL);
    char big[300];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    ASSERT(event_json_likely_column(&os, big) == NULL);
}

typedef struct thread_arg {
    const event_decoder *dec;
    const strata_schema *schema;
    uint64_t seed;
    uint64_t sum, rows;
    int failed;
} thread_arg;

static void *decode_thread(void *argp)
{
    thread_arg *a = argp;
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.count = 50000;
    o.seed = a->seed;
    order_gen *g = order_gen_create(&o, NULL);
    row_batch b;
    if (!g || row_batch_init(&b, a->schema, 0) != 0) {
        a->failed = 1;
        return NULL;
    }
    char buf[ORDER_GEN_JSON_MAX];
    order_gen_msg msg;
    while (order_gen_next_json(g, buf, sizeof buf, &msg) == 1) {
        strata_err err;
        if (event_decoder_decode(a->dec, buf, msg.len, &b, &err) != 0)
            a->failed = 1;
        a->sum += (uint64_t)b.i[ORDER_COL_EVENT_ID][b.nrows - 1];
        a->rows++;
        if (b.nrows == 1024)
            row_batch_clear(&b);
    }
    row_batch_free(&b);
    order_gen_free(g);
    return NULL;
}

TEST(one_decoder_many_threads)
{
    strata_schema os;
    order_gen_schema(&os);
    strata_err err = {0};
    event_decoder *dec = event_decoder_create(&os, &err);
    ASSERT(dec != NULL);
    thread_arg a[2] = {{dec, &os, 1, 0, 0, 0}, {dec, &os, 2, 0, 0, 0}};
    pthread_t th[2];
    for (int k = 0; k < 2; k++)
        ASSERT_EQ(pthread_create(&th[k], NULL, decode_thread, &a[k]), 0);
    for (int k = 0; k < 2; k++)
        pthread_join(th[k], NULL);
    /* the same streams decoded alone, with jansson */
    for (int k = 0; k < 2; k++) {
        ASSERT_EQ(a[k].failed, 0);
        ASSERT_EQ(a[k].rows, 50000);
        order_gen_opts o;
        order_gen_opts_default(&o);
        o.count = 50000;
        o.seed = a[k].seed;
        order_gen *g = order_gen_create(&o, NULL);
        row_batch b;
        ASSERT_EQ(row_batch_init(&b, &os, 0), 0);
        char buf[ORDER_GEN_JSON_MAX];
        order_gen_msg msg;
        uint64_t sum = 0;
        while (order_gen_next_json(g, buf, sizeof buf, &msg) == 1) {
            ASSERT_EQ(event_json_decode_jansson(buf, msg.len, &b, &err), 0);
            sum += (uint64_t)b.i[ORDER_COL_EVENT_ID][b.nrows - 1];
            row_batch_clear(&b);
        }
        ASSERT_U64_EQ(sum, a[k].sum);
        row_batch_free(&b);
        order_gen_free(g);
    }
    event_decoder_free(dec);
}

TEST_LIST(T(every_type_and_defaults), T(bad_events_are_refused_with_the_field_named), T(rfc3339_forms),
          T(fast_path_agrees_on_tricky_inputs),
          T(integral_numbers_with_a_fraction_or_exponent_fit_integer_columns),
          T(uint64_strings_are_plain_decimals),
          T(column_lookup_by_exact_name), T(random_structured_events_agree),
          T(fast_path_handles_order_events), T(unknown_fields_are_reported_in_order_by_both_paths),
          T(unknown_fields_reject_names_the_first_with_a_suggestion),
          T(missing_time_field_names_a_key_like_it), T(likely_column_of_a_misspelled_field),
          T(one_decoder_many_threads))
