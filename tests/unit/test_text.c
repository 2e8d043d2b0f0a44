/*
 * test_text.c — engine/text.c: UTF-8 validation, JSON string escaping (the output is
 * always valid JSON, checked by jansson), shortest doubles, strict uint64 parsing.
 */
#include "engine/text.h"

#include <jansson.h>
#include <math.h>

#include "test.h"

TEST(utf8_valid_and_invalid)
{
    ASSERT(text_utf8_valid("", 0));
    ASSERT(text_utf8_valid("plain ascii", 11));
    ASSERT(text_utf8_valid("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", 14));
    static const char *const bad[] = {
        "\xC3",             /* cut two-byte sequence */
        "\xC0\xAF",         /* overlong '/' */
        "\xE0\x80\xAF",     /* overlong, three bytes */
        "\xED\xA0\x80",     /* surrogate U+D800 */
        "\xF4\x90\x80\x80", /* above U+10FFFF */
        "\xFF",             /* never valid */
        "a\x80z",           /* lone continuation byte */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (text_utf8_valid(bad[i], strlen(bad[i])))
            TEST_FAIL_("bad[%zu] accepted as UTF-8", i);
    char s[] = "ok\xFF\xC3 \xC3\xA9";
    text_utf8_scrub(s);
    ASSERT_STR_EQ(s, "ok?? \xC3\xA9");
}

/* Escapes s, checks jansson reads the output back as a string, returns it (caller frees). */
static char *escape_and_read(const char *s, size_t n, char **decoded)
{
    bytebuf b = {0};
    text_json_string(&b, s, n);
    ASSERT(!b.oom);
    buf_put(&b, "", 1);
    json_error_t e;
    json_t *v = json_loads((const char *)b.data, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!v || !json_is_string(v))
        TEST_FAIL_("not a JSON string: %s (%s)", (const char *)b.data, e.text);
    *decoded = strdup(json_string_value(v));
    json_decref(v);
    return (char *)b.data;
}

TEST(json_string_escapes_and_stays_valid)
{
    char *dec;
    char *out = escape_and_read("a\"b\\c\nd\te\x01", 10, &dec);
    ASSERT_STR_EQ(out, "\"a\\\"b\\\\c\\nd\\te\\u0001\"");
    ASSERT_STR_EQ(dec, "a\"b\\c\nd\te\x01");
    free(out), free(dec);
    /* invalid UTF-8 becomes U+FFFD, one per bad byte; valid multibyte passes through */
    out = escape_and_read("x\xFF\xC3y\xC3\xA9", 6, &dec);
    ASSERT_STR_EQ(dec, "x\xEF\xBF\xBD\xEF\xBF\xBDy\xC3\xA9");
    free(out), free(dec);
    /* U+2028 and U+2029 are escaped for JavaScript */
    out = escape_and_read("\xE2\x80\xA8\xE2\x80\xA9", 6, &dec);
    ASSERT_STR_EQ(out, "\"\\u2028\\u2029\"");
    free(out), free(dec);
    /* every single byte value, alone, gives valid JSON */
    for (int c = 1; c < 256; c++) {
        char one = (char)c;
        out = escape_and_read(&one, 1, &dec);
        free(out), free(dec);
    }
}

TEST(shortest_double)
{
    char t[32];
    ASSERT_EQ(text_double_shortest(9.66, t, sizeof t), 4);
    ASSERT_STR_EQ(t, "9.66");
    text_double_shortest(0.1 + 0.2, t, sizeof t);
    ASSERT_STR_EQ(t, "0.30000000000000004");
    text_double_shortest(1e300, t, sizeof t);
    ASSERT_DBL_EQ(strtod(t, NULL), 1e300);
    bytebuf b = {0};
    text_put_json_double(&b, NAN);
    buf_put(&b, " ", 1);
    text_put_json_double(&b, -INFINITY);
    buf_put(&b, " ", 1);
    text_put_i64(&b, INT64_MIN);
    buf_put(&b, " ", 1);
    text_put_u64(&b, UINT64_MAX);
    buf_put(&b, "", 1);
    ASSERT_STR_EQ((const char *)b.data, "null null -9223372036854775808 18446744073709551615");
    buf_free(&b);
}

TEST(parse_u64_strict)
{
    uint64_t v = 7;
    ASSERT(text_parse_u64("0", &v) && v == 0);
    ASSERT(text_parse_u64("18446744073709551615", &v) && v == UINT64_MAX);
    static const char *const bad[] = {"", "18446744073709551616", "-1", "+1", " 1", "1 ", "1e3", "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 7;
        if (text_parse_u64(bad[i], &v) || v != 7)
            TEST_FAIL_("\"%s\" parsed", bad[i]);
    }
}

TEST_LIST(T(utf8_valid_and_invalid), T(json_string_escapes_and_stays_valid), T(shortest_double),
          T(parse_u64_strict))
