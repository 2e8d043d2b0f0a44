/*
 * test_units.c — durations and byte sizes (engine/units.c): every unit and suffix, the
 * limits (INT64_MAX ms, UINT64_MAX bytes) and one past them, malformed text (signs,
 * spaces, fractions, compounds, unknown units, trailing junk), and format -> parse round
 * trips for edge values and random values.
 */
#include <stdint.h>

#include "engine/error.h"
#include "test.h"
#include "engine/units.h"

static int64_t dur(const char *s)
{
    int64_t v = -12345;
    int rc = units_parse_duration_ms(s, &v);
    if (rc != 0)
        TEST_FAIL_("duration \"%s\" refused with %d", s, rc);
    return v;
}

static uint64_t bytes(const char *s)
{
    uint64_t v = 12345;
    int rc = units_parse_bytes(s, &v);
    if (rc != 0)
        TEST_FAIL_("size \"%s\" refused with %d", s, rc);
    return v;
}

TEST(duration_units)
{
    ASSERT_EQ(dur("500ms"), 500);
    ASSERT_EQ(dur("0ms"), 0);
    ASSERT_EQ(dur("0s"), 0);
    ASSERT_EQ(dur("1s"), 1000);
    ASSERT_EQ(dur("2m"), 120000);
    ASSERT_EQ(dur("1h"), 3600000);
    ASSERT_EQ(dur("7d"), 7LL * 86400000);
    ASSERT_EQ(dur("2w"), 14LL * 86400000);
    ASSERT_EQ(dur("1y"), 365LL * 86400000);
    ASSERT_EQ(dur("730d"), 730LL * 86400000);
    ASSERT_EQ(dur("007s"), 7000);
    ASSERT_EQ(dur("90m"), 5400000);
}

TEST(duration_limits)
{
    ASSERT_EQ(dur("9223372036854775807ms"), INT64_MAX);
    ASSERT_EQ(dur("9223372036854775s"), 9223372036854775000LL);
    ASSERT_EQ(dur("106751991167d"), 106751991167LL * 86400000);
    int64_t v = 77;
    ASSERT_EQ(units_parse_duration_ms("9223372036854775808ms", &v), STRATA_EINVAL);
    ASSERT_EQ(units_parse_duration_ms("9223372036854776s", &v), STRATA_EINVAL);
    ASSERT_EQ(units_parse_duration_ms("106751991168d", &v), STRATA_EINVAL);
    ASSERT_EQ(units_parse_duration_ms("292471209y", &v), STRATA_EINVAL);
    ASSERT_EQ(units_parse_duration_ms("99999999999999999999999ms", &v), STRATA_EINVAL);
    ASSERT_EQ(v, 77); /* unchanged on failure */
}

TEST(duration_malformed)
{
    static const char *const bad[] = {
        "",      "s",     "ms",  "1",   "1000", "-1s",  "+1s",  " 1s",  "1s ",  "1 s",
        "1.5s",  "1h30m", "1S",  "1M",  "1sec", "1min", "1hr",  "1ms1", "1mss", "0x10s",
        "1e3ms", "1µs",   "1us", "1ns", "s1",   "1dd",  "1s\n", "1d ",  "１s",  "1,000ms",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 5;
        if (units_parse_duration_ms(bad[i], &v) != STRATA_EINVAL)
            TEST_FAIL_("duration \"%s\" accepted as %" PRId64, bad[i], v);
        ASSERT_EQ(v, 5);
    }
    int64_t v = 5;
    ASSERT_EQ(units_parse_duration_ms(NULL, &v), STRATA_EINVAL);
}

TEST(bytes_suffixes)
{
    ASSERT_U64_EQ(bytes("65536"), 65536);
    ASSERT_U64_EQ(bytes("0"), 0);
    ASSERT_U64_EQ(bytes("100B"), 100);
    ASSERT_U64_EQ(bytes("64KiB"), 65536);
    ASSERT_U64_EQ(bytes("64MiB"), 64ull << 20);
    ASSERT_U64_EQ(bytes("1GiB"), 1ull << 30);
    ASSERT_U64_EQ(bytes("2TiB"), 2ull << 40);
    ASSERT_U64_EQ(bytes("3PiB"), 3ull << 50);
    ASSERT_U64_EQ(bytes("64KB"), 64000);
    ASSERT_U64_EQ(bytes("64MB"), 64000000);
    ASSERT_U64_EQ(bytes("1GB"), 1000000000);
    ASSERT_U64_EQ(bytes("5TB"), 5000000000000ull);
    ASSERT_U64_EQ(bytes("7PB"), 7000000000000000ull);
    ASSERT_U64_EQ(bytes("64k"), 65536);
    ASSERT_U64_EQ(bytes("64m"), 64ull << 20);
    ASSERT_U64_EQ(bytes("1g"), 1ull << 30);
    ASSERT_U64_EQ(bytes("1t"), 1ull << 40);
    ASSERT_U64_EQ(bytes("1p"), 1ull << 50);
    ASSERT_U64_EQ(bytes("64K"), 65536);
    ASSERT_U64_EQ(bytes("64M"), 64ull << 20);
    ASSERT_U64_EQ(bytes("2G"), 2ull << 30);
}

TEST(bytes_limits)
{
    ASSERT_U64_EQ(bytes("18446744073709551615"), UINT64_MAX);
    ASSERT_U64_EQ(bytes("18446744073709551615B"), UINT64_MAX);
    ASSERT_U64_EQ(bytes("16383PiB"), 16383ull << 50);
    ASSERT_U64_EQ(bytes("17179869183GiB"), 17179869183ull << 30);
    ASSERT_U64_EQ(bytes("18446744073709551KB"), 18446744073709551000ull);
    uint64_t v = 9;
    ASSERT_EQ(units_parse_bytes("18446744073709551616", &v), STRATA_EINVAL);
    ASSERT_EQ(units_parse_bytes("16384PiB", &v), STRATA_EINVAL);
    ASSERT_EQ(units_parse_bytes("17179869184GiB", &v), STRATA_EINVAL);
    ASSERT_EQ(units_parse_bytes("18446744073709552KB", &v), STRATA_EINVAL);
    ASSERT_EQ(units_parse_bytes("100000000000000000000", &v), STRATA_EINVAL);
    ASSERT_U64_EQ(v, 9);
}

TEST(bytes_malformed)
{
    static const char *const bad[] = {
        "",      "B",     "KiB",  "-1",     "+1",   " 1",     "1 ",    "1 KiB", "1.5GiB", "1kib",
        "1kb",   "1Kb",   "1KIB", "1EiB",   "1Ki",  "1mb",    "1gb",   "1GiBs", "0x10",   "1e6",
        "1_000", "1,000", "1b",   "1KiB\n", "KiB1", "1bytes", "1GiB ", "1MiB1", "1 ",     "1i",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 5;
        if (units_parse_bytes(bad[i], &v) != STRATA_EINVAL)
            TEST_FAIL_("size \"%s\" accepted as %" PRIu64, bad[i], v);
        ASSERT_U64_EQ(v, 5);
    }
    uint64_t v = 5;
    ASSERT_EQ(units_parse_bytes(NULL, &v), STRATA_EINVAL);
}

static void check_dur_fmt(int64_t ms, const char *want)
{
    char buf[32];
    units_format_duration_ms(ms, buf, sizeof buf);
    ASSERT_STR_EQ(buf, want);
}

TEST(duration_format)
{
    check_dur_fmt(0, "0s");
    check_dur_fmt(1, "1ms");
    check_dur_fmt(500, "500ms");
    check_dur_fmt(1500, "1500ms");
    check_dur_fmt(1000, "1s");
    check_dur_fmt(90000, "90s");
    check_dur_fmt(120000, "2m");
    check_dur_fmt(3600000, "1h");
    check_dur_fmt(86400000, "1d");
    check_dur_fmt(7LL * 86400000, "1w");
    check_dur_fmt(30LL * 86400000, "30d");
    check_dur_fmt(90LL * 86400000, "90d");
    check_dur_fmt(365LL * 86400000, "1y");
    check_dur_fmt(730LL * 86400000, "2y");
    check_dur_fmt(INT64_MAX, "9223372036854775807ms");
    check_dur_fmt(-120000, "-2m");
    check_dur_fmt(INT64_MIN, "-9223372036854775808ms");
    /* Truncation keeps the terminator; cap 0 writes nothing. */
    char small[4] = "xyz";
    units_format_duration_ms(120000000, small, sizeof small); /* "2000m" */
    ASSERT_STR_EQ(small, "200");
    char none[2] = "q";
    units_format_duration_ms(1, none, 0);
    ASSERT_EQ(none[0], 'q');
}

static void check_bytes_fmt(uint64_t n, const char *want)
{
    char buf[32];
    units_format_bytes(n, buf, sizeof buf);
    ASSERT_STR_EQ(buf, want);
}

TEST(bytes_format)
{
    check_bytes_fmt(0, "0");
    check_bytes_fmt(1, "1");
    check_bytes_fmt(1000, "1000");
    check_bytes_fmt(1024, "1KiB");
    check_bytes_fmt(65536, "64KiB");
    check_bytes_fmt(65537, "65537");
    check_bytes_fmt(64ull << 20, "64MiB");
    check_bytes_fmt(512ull << 20, "512MiB");
    check_bytes_fmt(1536ull << 20, "1536MiB");
    check_bytes_fmt(1ull << 30, "1GiB");
    check_bytes_fmt(1ull << 40, "1TiB");
    check_bytes_fmt(1ull << 50, "1PiB");
    check_bytes_fmt(1ull << 63, "8192PiB");
    check_bytes_fmt(UINT64_MAX, "18446744073709551615");
    check_bytes_fmt(64000000, "62500KiB");
    char none[2] = "q";
    units_format_bytes(1, none, 0);
    ASSERT_EQ(none[0], 'q');
}

static void dur_round_trip(int64_t ms)
{
    char buf[32];
    units_format_duration_ms(ms, buf, sizeof buf);
    int64_t back = -1;
    if (units_parse_duration_ms(buf, &back) != 0 || back != ms)
        TEST_FAIL_("duration %" PRId64 " -> \"%s\" -> %" PRId64, ms, buf, back);
}

static void bytes_round_trip(uint64_t n)
{
    char buf[32];
    units_format_bytes(n, buf, sizeof buf);
    uint64_t back = 1;
    if (units_parse_bytes(buf, &back) != 0 || back != n)
        TEST_FAIL_("size %" PRIu64 " -> \"%s\" -> %" PRIu64, n, buf, back);
}

TEST(round_trips)
{
    static const int64_t units[] = {1, 1000, 60000, 3600000, 86400000, 604800000, 31536000000};
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++)
        for (int64_t k = 0; k < 200; k++)
            dur_round_trip(k * units[u]);
    dur_round_trip(INT64_MAX);
    dur_round_trip(INT64_MAX / 31536000000 * 31536000000);
    for (int sh = 0; sh < 64; sh++) {
        bytes_round_trip(1ull << sh);
        bytes_round_trip((1ull << sh) - 1);
        bytes_round_trip((1ull << sh) + 1);
        bytes_round_trip(UINT64_MAX << sh);
    }
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 20000; i++) {
        uint64_t r = test_rand_next(&seed);
        /* Values that are multiples of a unit, and arbitrary ones. */
        dur_round_trip((int64_t)(r >> 1));
        dur_round_trip((int64_t)((r >> 30) % 1000000) * units[r % 7]);
        bytes_round_trip(r);
        bytes_round_trip((r >> 40) << (r % 24 + 10));
    }
}

TEST_LIST(T(duration_units), T(duration_limits), T(duration_malformed), T(bytes_suffixes),
          T(bytes_limits), T(bytes_malformed), T(duration_format), T(bytes_format), T(round_trips))
