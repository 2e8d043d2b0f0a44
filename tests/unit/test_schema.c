/*
 * test_schema.c — engine/schema.c: type and function names, defaults, the partition
 * arithmetic (key, next, name, parse) for hour/day/month around the epoch, before 1970,
 * across leap days and month ends, with random round trips checked against an
 * independent day-by-day calendar; and each schema_validate() rule, with the field its
 * message must name.
 */
#include <stdint.h>

#include "engine/error.h"
#include "engine/schema.h"
#include "test.h"

#define HOUR 3600000LL
#define DAY 86400000LL

/* ---- names ---------------------------------------------------------------------------- */

TEST(type_and_agg_names)
{
    for (int t = STRATA_TIMESTAMP; t <= STRATA_STRING; t++)
        ASSERT_EQ(strata_type_parse(strata_type_name((strata_type)t)), t);
    ASSERT_STR_EQ(strata_type_name(STRATA_FLOAT64), "float64");
    ASSERT(strata_type_name((strata_type)0) == NULL);
    ASSERT_STR_EQ(strata_type_name(STRATA_BYTES), "bytes"); /* rollup tier segments only: */
    ASSERT_EQ(strata_type_parse("bytes"), 0);                /* never a table column */
    ASSERT(strata_type_name((strata_type)9) == NULL);
    ASSERT_EQ(strata_type_parse("int128"), 0);
    ASSERT_EQ(strata_type_parse(""), 0);
    ASSERT_EQ(strata_type_parse("Int64"), 0);
    for (int a = STRATA_AGG_COUNT; a <= STRATA_AGG_QUANTILE; a++)
        ASSERT_EQ(strata_agg_parse(strata_agg_name((strata_agg)a)), a);
    ASSERT(strata_agg_name((strata_agg)0) == NULL);
    ASSERT_EQ(strata_agg_parse("median"), 0);
}

TEST(init_defaults)
{
    strata_schema s;
    memset(&s, 0x5A, sizeof s);
    schema_init(&s);
    ASSERT_EQ(s.ncols, 0);
    ASSERT_EQ(s.name[0], 0);
    ASSERT_EQ(s.time_col, -1);
    ASSERT_EQ(s.ndedup, 0);
    ASSERT_EQ(s.version_col, -1);
    ASSERT_EQ(s.deleted_col, -1);
    ASSERT_EQ(s.partition_by, STRATA_PART_DAY);
    ASSERT_EQ(s.lateness_ms, 120000);
    ASSERT_EQ(s.late_policy, STRATA_LATE_UPDATE);
    ASSERT_EQ(s.late_bound_ms, 0);
    ASSERT_EQ(s.unknown_fields, STRATA_UNKNOWN_FIELDS_IGNORE);
    ASSERT_EQ(s.codec, STRATA_CODEC_LZ4);
    ASSERT_U64_EQ(s.memtable_max_rows, 1048576);
    ASSERT_U64_EQ(s.memtable_max_bytes, 64ull << 20);
    ASSERT_EQ(s.memtable_max_age_ms, 1000);
    ASSERT_U64_EQ(s.memory_budget_bytes, 512ull << 20);
    ASSERT(!s.kafka.enabled);
    ASSERT_EQ(s.nrollups, 0);
    ASSERT_EQ(s.retention_raw_ms, 0);
}

/* ---- partitions ---------------------------------------------------------------------- */

static int64_t key_of(strata_partition_by by, const char *name)
{
    int64_t k = 0;
    int rc = schema_partition_parse(by, name, &k);
    if (rc != 0)
        TEST_FAIL_("partition name \"%s\" refused with %d", name, rc);
    return k;
}

static void check_name(strata_partition_by by, int64_t key, const char *want)
{
    char buf[32];
    schema_partition_name(by, key, buf, sizeof buf);
    ASSERT_STR_EQ(buf, want);
}

TEST(partition_epoch)
{
    ASSERT_EQ(schema_partition_key(STRATA_PART_HOUR, 0), 0);
    ASSERT_EQ(schema_partition_key(STRATA_PART_DAY, 0), 0);
    ASSERT_EQ(schema_partition_key(STRATA_PART_MONTH, 0), 0);
    ASSERT_EQ(schema_partition_key(STRATA_PART_HOUR, HOUR - 1), 0);
    ASSERT_EQ(schema_partition_key(STRATA_PART_DAY, DAY - 1), 0);
    ASSERT_EQ(schema_partition_key(STRATA_PART_MONTH, 31 * DAY - 1), 0);
    ASSERT_EQ(schema_partition_key(STRATA_PART_MONTH, 31 * DAY), 31 * DAY);
    check_name(STRATA_PART_HOUR, 0, "1970-01-01T00");
    check_name(STRATA_PART_DAY, 0, "1970-01-01");
    check_name(STRATA_PART_MONTH, 0, "1970-01");
    ASSERT_EQ(schema_partition_next(STRATA_PART_HOUR, 0), HOUR);
    ASSERT_EQ(schema_partition_next(STRATA_PART_DAY, 0), DAY);
    ASSERT_EQ(schema_partition_next(STRATA_PART_MONTH, 0), 31 * DAY);
    ASSERT_EQ(key_of(STRATA_PART_MONTH, "1970-02"), 31 * DAY);
}

TEST(partition_before_1970)
{
    /* One millisecond before the epoch belongs to the last hour/day/month of 1969. */
    ASSERT_EQ(schema_partition_key(STRATA_PART_HOUR, -1), -HOUR);
    ASSERT_EQ(schema_partition_key(STRATA_PART_DAY, -1), -DAY);
    ASSERT_EQ(schema_partition_key(STRATA_PART_MONTH, -1), -31 * DAY);
    check_name(STRATA_PART_HOUR, -HOUR, "1969-12-31T23");
    check_name(STRATA_PART_DAY, -DAY, "1969-12-31");
    check_name(STRATA_PART_MONTH, -31 * DAY, "1969-12");
    ASSERT_EQ(schema_partition_key(STRATA_PART_HOUR, -HOUR), -HOUR);
    ASSERT_EQ(schema_partition_key(STRATA_PART_HOUR, -HOUR - 1), -2 * HOUR);
    ASSERT_EQ(schema_partition_next(STRATA_PART_MONTH, -31 * DAY), 0);
    ASSERT_EQ(schema_partition_next(STRATA_PART_DAY, -DAY), 0);
    ASSERT_EQ(key_of(STRATA_PART_DAY, "1969-12-31"), -DAY);
    ASSERT_EQ(key_of(STRATA_PART_HOUR, "1969-12-31T23"), -HOUR);
    /* 1900 was not a leap year, 1600 was. */
    int64_t feb1900 = key_of(STRATA_PART_MONTH, "1900-02");
    ASSERT_EQ(schema_partition_next(STRATA_PART_MONTH, feb1900) - feb1900, 28 * DAY);
    ASSERT_EQ(feb1900, strata_days_from_civil(1900, 2, 1) * DAY);
    int64_t feb1600 = key_of(STRATA_PART_MONTH, "1600-02");
    ASSERT_EQ(schema_partition_next(STRATA_PART_MONTH, feb1600) - feb1600, 29 * DAY);
    check_name(STRATA_PART_DAY, strata_days_from_civil(1, 1, 1) * DAY, "0001-01-01");
    ASSERT_EQ(key_of(STRATA_PART_DAY, "0001-01-01"), strata_days_from_civil(1, 1, 1) * DAY);
}

TEST(partition_leap_years)
{
    int64_t feb29 = key_of(STRATA_PART_DAY, "2024-02-29");
    ASSERT_EQ(feb29, 1709164800000LL);
    ASSERT_EQ(schema_partition_key(STRATA_PART_DAY, feb29 + DAY - 1), feb29);
    check_name(STRATA_PART_DAY, schema_partition_next(STRATA_PART_DAY, feb29), "2024-03-01");
    check_name(STRATA_PART_HOUR, feb29 + 23 * HOUR + 59 * 60000, "2024-02-29T23");
    int64_t feb = schema_partition_key(STRATA_PART_MONTH, feb29);
    check_name(STRATA_PART_MONTH, feb, "2024-02");
    ASSERT_EQ(schema_partition_next(STRATA_PART_MONTH, feb) - feb, 29 * DAY);
    int64_t feb23 = key_of(STRATA_PART_MONTH, "2023-02");
    ASSERT_EQ(schema_partition_next(STRATA_PART_MONTH, feb23) - feb23, 28 * DAY);
    int64_t feb2000 = key_of(STRATA_PART_MONTH, "2000-02");
    ASSERT_EQ(schema_partition_next(STRATA_PART_MONTH, feb2000) - feb2000, 29 * DAY);
    int64_t feb2100 = key_of(STRATA_PART_MONTH, "2100-02");
    ASSERT_EQ(schema_partition_next(STRATA_PART_MONTH, feb2100) - feb2100, 28 * DAY);
    /* Days that do not exist are refused. */
    int64_t k = 42;
    ASSERT_EQ(schema_partition_parse(STRATA_PART_DAY, "2023-02-29", &k), STRATA_EINVAL);
    ASSERT_EQ(schema_partition_parse(STRATA_PART_DAY, "2100-02-29", &k), STRATA_EINVAL);
    ASSERT_EQ(schema_partition_parse(STRATA_PART_DAY, "2024-02-30", &k), STRATA_EINVAL);
    ASSERT_EQ(k, 42);
}

TEST(partition_month_ends)
{
    static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t key = key_of(STRATA_PART_MONTH, "2024-01");
    for (unsigned m = 1; m <= 12; m++) {
        int64_t next = schema_partition_next(STRATA_PART_MONTH, key);
        ASSERT_EQ(next - key, (int64_t)mdays[m - 1] * DAY);
        /* The last millisecond of the month is still in it, the next one is not. */
        ASSERT_EQ(schema_partition_key(STRATA_PART_MONTH, next - 1), key);
        ASSERT_EQ(schema_partition_key(STRATA_PART_MONTH, next), next);
        char want[16], last[16];
        snprintf(want, sizeof want, "2024-%02u", m);
        check_name(STRATA_PART_MONTH, key, want);
        snprintf(last, sizeof last, "2024-%02u-%02u", m, mdays[m - 1]);
        check_name(STRATA_PART_DAY, schema_partition_key(STRATA_PART_DAY, next - 1), last);
        char bad[16];
        snprintf(bad, sizeof bad, "2024-%02u-%02u", m, mdays[m - 1] + 1);
        int64_t k;
        ASSERT_EQ(schema_partition_parse(STRATA_PART_DAY, bad, &k), STRATA_EINVAL);
        key = next;
    }
    check_name(STRATA_PART_MONTH, key, "2025-01");
    check_name(STRATA_PART_HOUR, key - 1, "2024-12-31T23");
}

TEST(partition_parse_malformed)
{
    static const struct {
        strata_partition_by by;
        const char *name;
    } bad[] = {
        {STRATA_PART_DAY, ""},
        {STRATA_PART_DAY, "2024-1-01"},
        {STRATA_PART_DAY, "2024-01-1"},
        {STRATA_PART_DAY, "2024-13-01"},
        {STRATA_PART_DAY, "2024-00-01"},
        {STRATA_PART_DAY, "2024-01-00"},
        {STRATA_PART_DAY, "2024-01-32"},
        {STRATA_PART_DAY, "2024-01-01x"},
        {STRATA_PART_DAY, "2024-01-01T00"},
        {STRATA_PART_DAY, "2024-01"},
        {STRATA_PART_DAY, " 2024-01-01"},
        {STRATA_PART_DAY, "2024-+1-01"},
        {STRATA_PART_DAY, "24-01-01"},
        {STRATA_PART_HOUR, "2024-01-01"},
        {STRATA_PART_HOUR, "2024-01-01T24"},
        {STRATA_PART_HOUR, "2024-01-01T1"},
        {STRATA_PART_HOUR, "2024-01-01 10"},
        {STRATA_PART_MONTH, "2024-01-01"},
        {STRATA_PART_MONTH, "2024"},
        {STRATA_PART_MONTH, "2024-1"},
        {STRATA_PART_MONTH, "2024-13"},
        {STRATA_PART_MONTH, "tmp"},
        {STRATA_PART_MONTH, ".."},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t k = 7;
        if (schema_partition_parse(bad[i].by, bad[i].name, &k) != STRATA_EINVAL)
            TEST_FAIL_("partition name \"%s\" (by %d) accepted as %" PRId64, bad[i].name,
                       (int)bad[i].by, k);
        ASSERT_EQ(k, 7);
    }
}

/* Years 0000..9999 (the names' 4-digit range) round-trip at both ends, for every kind. */
TEST(partition_supported_range)
{
    static const strata_partition_by bys[] = {STRATA_PART_HOUR, STRATA_PART_DAY, STRATA_PART_MONTH};
    const int64_t first = strata_days_from_civil(0, 1, 1) * DAY;
    const int64_t last = strata_days_from_civil(10000, 1, 1) * DAY - 1;
    ASSERT_EQ(first, -62167219200000LL);
    ASSERT_EQ(last, 253402300799999LL);
    for (size_t b = 0; b < 3; b++) {
        for (int64_t ts = first; ts <= first + 40 * DAY; ts += 7 * HOUR) {
            char name[32];
            int64_t key = schema_partition_key(bys[b], ts);
            schema_partition_name(bys[b], key, name, sizeof name);
            ASSERT_EQ(key_of(bys[b], name), key);
        }
        for (int64_t ts = last; ts >= last - 40 * DAY; ts -= 7 * HOUR) {
            char name[32];
            int64_t key = schema_partition_key(bys[b], ts);
            schema_partition_name(bys[b], key, name, sizeof name);
            ASSERT_EQ(key_of(bys[b], name), key);
        }
    }
    check_name(STRATA_PART_HOUR, schema_partition_key(STRATA_PART_HOUR, last), "9999-12-31T23");
    check_name(STRATA_PART_MONTH, schema_partition_key(STRATA_PART_MONTH, first), "0000-01");
}

/* An independent calendar: walks day by day from 1970-01-01 (or backwards), so the
 * random tests do not just check Hinnant's algorithm against itself. */
static void walk_civil(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t yy = 1970;
    int64_t left = days;
#define LEAP(x) (((x) % 4 == 0 && (x) % 100 != 0) || (x) % 400 == 0)
    while (left < 0) {
        yy--;
        left += LEAP(yy) ? 366 : 365;
    }
    while (left >= (LEAP(yy) ? 366 : 365)) {
        left -= LEAP(yy) ? 366 : 365;
        yy++;
    }
    unsigned mm = 0;
    for (;;) {
        unsigned len = mdays[mm] + (mm == 1 && LEAP(yy) ? 1 : 0);
        if (left < len)
            break;
        left -= len;
        mm++;
    }
#undef LEAP
    *y = yy;
    *m = mm + 1;
    *d = (unsigned)left + 1;
}

TEST(partition_random_round_trips)
{
    static const strata_partition_by bys[] = {STRATA_PART_HOUR, STRATA_PART_DAY, STRATA_PART_MONTH};
    uint64_t seed = 0xC0FFEE1234567ull;
    /* Times between years 1000 and 9000. */
    const int64_t lo = (strata_days_from_civil(1000, 1, 1)) * DAY;
    const int64_t hi = (strata_days_from_civil(9000, 1, 1)) * DAY;
    for (int i = 0; i < 20000; i++) {
        uint64_t r = test_rand_next(&seed);
        int64_t ts = lo + (int64_t)(r % (uint64_t)(hi - lo));
        if (i % 4 == 0) /* half of the time near the epoch */
            ts = (int64_t)(r % (200 * 365 * (uint64_t)DAY)) - 100 * 365 * DAY;
        strata_partition_by by = bys[i % 3];
        int64_t key = schema_partition_key(by, ts);
        int64_t next = schema_partition_next(by, key);
        if (!(key <= ts && ts < next))
            TEST_FAIL_("by %d: ts %" PRId64 " not in [%" PRId64 ", %" PRId64 ")", (int)by, ts, key,
                       next);
        ASSERT_EQ(schema_partition_key(by, key), key);
        ASSERT_EQ(schema_partition_key(by, next - 1), key);
        ASSERT_EQ(schema_partition_key(by, next), next);
        char name[32];
        schema_partition_name(by, key, name, sizeof name);
        ASSERT_EQ(key_of(by, name), key);

        /* The name agrees with the independent calendar. */
        int64_t days = ts >= 0 ? ts / DAY : -((-ts + DAY - 1) / DAY);
        int64_t y;
        unsigned m, d;
        walk_civil(days, &y, &m, &d);
        int64_t y2;
        unsigned m2, d2;
        strata_civil_from_days(days, &y2, &m2, &d2);
        ASSERT_EQ(y, y2);
        ASSERT_EQ(m, m2);
        ASSERT_EQ(d, d2);
        ASSERT_EQ(strata_days_from_civil(y, m, d), days);
        char want[32];
        int hour = (int)((ts - days * DAY) / HOUR);
        if (by == STRATA_PART_HOUR)
            snprintf(want, sizeof want, "%04" PRId64 "-%02u-%02uT%02d", y, m, d, hour);
        else if (by == STRATA_PART_DAY)
            snprintf(want, sizeof want, "%04" PRId64 "-%02u-%02u", y, m, d);
        else
            snprintf(want, sizeof want, "%04" PRId64 "-%02u", y, m);
        ASSERT_STR_EQ(name, want);
    }
}

/* Consecutive partitions tile the time line: next(key) is the key of the next one. */
TEST(partition_sequences)
{
    static const strata_partition_by bys[] = {STRATA_PART_HOUR, STRATA_PART_DAY, STRATA_PART_MONTH};
    for (size_t b = 0; b < 3; b++) {
        int64_t key = schema_partition_key(bys[b], strata_days_from_civil(1968, 11, 15) * DAY);
        char prev[32] = "";
        for (int i = 0; i < 2000; i++) {
            char name[32];
            schema_partition_name(bys[b], key, name, sizeof name);
            ASSERT(strcmp(prev, name) < 0); /* names sort like times */
            memcpy(prev, name, sizeof prev);
            int64_t next = schema_partition_next(bys[b], key);
            ASSERT_GT(next, key);
            ASSERT_EQ(schema_partition_key(bys[b], next - 1), key);
            key = next;
        }
    }
}

/* ---- validation ------------------------------------------------------------------------ */

static void add_col(strata_schema *s, const char *name, strata_type t)
{
    strata_column *c = &s->cols[s->ncols++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->type = t;
}

/* ts, event_id, country, amount, user_id, deleted, version. */
static void base_schema(strata_schema *s)
{
    schema_init(s);
    snprintf(s->name, sizeof s->name, "orders");
    add_col(s, "ts", STRATA_TIMESTAMP);
    add_col(s, "event_id", STRATA_UINT64);
    add_col(s, "country", STRATA_STRING);
    add_col(s, "amount", STRATA_FLOAT64);
    add_col(s, "user_id", STRATA_INT64);
    add_col(s, "deleted", STRATA_BOOL);
    add_col(s, "version", STRATA_INT32);
    s->time_col = 0;
}

static strata_schema S;

static void expect_invalid(const strata_schema *s, const char *needle)
{
    strata_err err = {0};
    int rc = schema_validate(s, &err);
    if (rc != STRATA_EINVAL)
        TEST_FAIL_("expected EINVAL naming \"%s\", got %d", needle, rc);
    ASSERT_EQ(err.code, STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, needle);
}

static void expect_valid(const strata_schema *s)
{
    strata_err err = {0};
    int rc = schema_validate(s, &err);
    if (rc != 0)
        TEST_FAIL_("expected valid, got %d: %s", rc, err.msg);
}

TEST(validate_base_and_full)
{
    base_schema(&S);
    expect_valid(&S);
    schema_apply_default_order(&S);
    ASSERT_EQ(S.norder, 2);
    ASSERT_EQ(S.order_by[0], 2);
    ASSERT_EQ(S.order_by[1], 0);
    S.ndedup = 2;
    S.dedup_cols[0] = 1;
    S.dedup_cols[1] = 0;
    S.version_col = 6;
    S.deleted_col = 5;
    S.nrollups = 2;
    S.rollups[0].interval_ms = 60000;
    S.rollups[0].ndims = 1;
    S.rollups[0].dims[0] = 2;
    S.rollups[0].nmetrics = 4;
    S.rollups[0].metrics[0] = (strata_rollup_metric){STRATA_AGG_COUNT, -1};
    S.rollups[0].metrics[1] = (strata_rollup_metric){STRATA_AGG_SUM, 3};
    S.rollups[0].metrics[2] = (strata_rollup_metric){STRATA_AGG_UNIQ, 2};
    S.rollups[0].metrics[3] = (strata_rollup_metric){STRATA_AGG_QUANTILE, 4};
    S.rollups[1].interval_ms = 3600000;
    S.rollups[1].nmetrics = 1;
    S.rollups[1].metrics[0] = (strata_rollup_metric){STRATA_AGG_MAX, 0};
    S.retention_raw_ms = 30 * DAY;
    S.kafka.enabled = true;
    snprintf(S.kafka.topic, sizeof S.kafka.topic, "orders");
    expect_valid(&S);
}

/* A dedup key of column c and the time column (0 in base_schema). */
static void set_dedup_key(strata_schema *s, int c)
{
    s->ndedup = 2;
    s->dedup_cols[0] = c;
    s->dedup_cols[1] = s->time_col;
}

TEST(default_order_skips_dedup_key)
{
    base_schema(&S);
    add_col(&S, "order_ref", STRATA_STRING);
    add_col(&S, "city", STRATA_STRING);
    set_dedup_key(&S, 7);
    schema_apply_default_order(&S);
    ASSERT_EQ(S.norder, 3);
    ASSERT_EQ(S.order_by[0], 2);
    ASSERT_EQ(S.order_by[1], 8);
    ASSERT_EQ(S.order_by[2], 0);
    /* An existing order is kept. */
    S.norder = 1;
    S.order_by[0] = 4;
    schema_apply_default_order(&S);
    ASSERT_EQ(S.norder, 1);
    ASSERT_EQ(S.order_by[0], 4);
}

TEST(validate_names)
{
    static const char *const bad[] = {"", "1abc", "a-b", "a b", "é", "a.b", "a\"b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        base_schema(&S);
        snprintf(S.name, sizeof S.name, "%s", bad[i]);
        expect_invalid(&S, "name: ");
        base_schema(&S);
        snprintf(S.cols[3].name, sizeof S.cols[3].name, "%s", bad[i]);
        expect_invalid(&S, "columns[3].name");
    }
    base_schema(&S);
    memset(S.name, 'a', sizeof S.name); /* no terminator */
    expect_invalid(&S, "name: ");
    base_schema(&S);
    memset(S.name, 'a', sizeof S.name - 1);
    S.name[sizeof S.name - 1] = 0; /* 63 characters: the longest allowed */
    expect_valid(&S);
    base_schema(&S);
    snprintf(S.name, sizeof S.name, "_Orders_2");
    expect_valid(&S);
    base_schema(&S);
    snprintf(S.cols[4].name, sizeof S.cols[4].name, "amount");
    expect_invalid(&S, "columns[4].name: 'amount' is declared twice");
}

TEST(validate_columns)
{
    base_schema(&S);
    S.ncols = 0;
    expect_invalid(&S, "columns: ");
    base_schema(&S);
    S.cols[2].type = (strata_type)0;
    expect_invalid(&S, "columns[2].type");
    base_schema(&S);
    S.cols[2].type = (strata_type)99;
    expect_invalid(&S, "columns[2].type");
    base_schema(&S);
    S.cols[6].def_i = (int64_t)INT32_MAX + 1;
    expect_invalid(&S, "columns[6].default");
    S.cols[6].def_i = INT32_MIN;
    expect_valid(&S);
    base_schema(&S);
    S.cols[5].def_i = 2;
    expect_invalid(&S, "columns[5].default");
}

TEST(validate_time_column)
{
    base_schema(&S);
    S.time_col = -1;
    expect_invalid(&S, "time_column");
    S.time_col = 7;
    expect_invalid(&S, "time_column");
    S.time_col = 4;
    expect_invalid(&S, "time_column: 'user_id' has type int64");
}

TEST(validate_order_by)
{
    base_schema(&S);
    S.norder = 2;
    S.order_by[0] = 2;
    S.order_by[1] = 9;
    expect_invalid(&S, "order_by[1]");
    S.order_by[1] = 2;
    expect_invalid(&S, "order_by[1]: 'country' is listed twice");
    S.norder = 8;
    expect_invalid(&S, "order_by");
    S.norder = 1;
    S.order_by[0] = 3; /* a float sort key is allowed */
    expect_valid(&S);
    base_schema(&S);
    S.partition_by = (strata_partition_by)3;
    expect_invalid(&S, "partition_by");
}

TEST(validate_dedup)
{
    base_schema(&S);
    set_dedup_key(&S, 3);
    expect_invalid(&S, "dedup_key: 'amount' has type float64");
    set_dedup_key(&S, 5);
    expect_invalid(&S, "dedup_key: 'deleted' has type bool");
    set_dedup_key(&S, 12);
    expect_invalid(&S, "dedup_key[0]: not a column");
    set_dedup_key(&S, 2); /* strings are fine keys */
    expect_valid(&S);
    /* The time column must be in the key, so a key never changes partition. */
    S.ndedup = 1;
    expect_invalid(&S, "dedup_key: must include the time column 'ts'");
    S.dedup_cols[0] = 0; /* the time alone is a key */
    expect_valid(&S);
    set_dedup_key(&S, 0);
    expect_invalid(&S, "dedup_key: 'ts' is listed twice");
    S.ndedup = STRATA_MAX_DEDUP_COLS + 1;
    expect_invalid(&S, "dedup_key: at most 8 columns");

    base_schema(&S);
    S.version_col = 6;
    expect_invalid(&S, "version: needs a dedup_key");
    set_dedup_key(&S, 1);
    expect_valid(&S);
    S.version_col = 3;
    expect_invalid(&S, "version: 'amount' has type float64");
    S.version_col = 5;
    expect_invalid(&S, "version: 'deleted' has type bool");
    S.version_col = 0; /* the time is in every key, so it cannot be the version */
    expect_invalid(&S, "version: 'ts' is in the dedup_key");
    S.version_col = 40;
    expect_invalid(&S, "version: not a column");

    base_schema(&S);
    S.deleted_col = 5;
    expect_invalid(&S, "deleted: needs a dedup_key");
    set_dedup_key(&S, 1);
    expect_valid(&S);
    S.deleted_col = 4;
    expect_invalid(&S, "deleted: 'user_id' must be a bool column");
}

static void one_rollup(strata_schema *s)
{
    base_schema(s);
    s->nrollups = 1;
    s->rollups[0].interval_ms = 60000;
    s->rollups[0].nmetrics = 1;
    s->rollups[0].metrics[0] = (strata_rollup_metric){STRATA_AGG_COUNT, -1};
}

TEST(validate_rollups)
{
    one_rollup(&S);
    expect_valid(&S);
    S.rollups[0].interval_ms = 90000;
    expect_invalid(&S, "rollups[0].interval");
    one_rollup(&S);
    S.rollups[0].interval_ms = 300000; /* 5m */
    strata_err e = {0};
    ASSERT_EQ(schema_validate(&S, &e), 0);
    one_rollup(&S);
    S.nrollups = 2;
    S.rollups[1] = S.rollups[0];
    expect_invalid(&S, "rollups[1]: the same interval and dimensions as rollups[0]");
    S.rollups[1].ndims = 1; /* the same interval with other dimensions is another tier */
    S.rollups[1].dims[0] = 2;
    ASSERT_EQ(schema_validate(&S, &e), 0);
    one_rollup(&S);
    S.nrollups = 5;
    expect_invalid(&S, "rollups: ");
    one_rollup(&S);
    S.rollups[0].ndims = 1;
    S.rollups[0].dims[0] = 3;
    expect_invalid(&S, "rollups[0].dimensions[0]: 'amount' is float64");
    S.rollups[0].dims[0] = 20;
    expect_invalid(&S, "rollups[0].dimensions[0]: not a column");
    S.rollups[0].ndims = 2;
    S.rollups[0].dims[0] = 2;
    S.rollups[0].dims[1] = 2;
    expect_invalid(&S, "rollups[0].dimensions[1]: listed twice");
    one_rollup(&S);
    S.rollups[0].nmetrics = 0;
    expect_invalid(&S, "rollups[0].metrics");
    one_rollup(&S);
    S.rollups[0].metrics[0] = (strata_rollup_metric){STRATA_AGG_AVG, 3};
    expect_invalid(&S, "rollups[0].metrics[0].fn");
    S.rollups[0].metrics[0] = (strata_rollup_metric){(strata_agg)0, 3};
    expect_invalid(&S, "rollups[0].metrics[0].fn");
    S.rollups[0].metrics[0] = (strata_rollup_metric){STRATA_AGG_COUNT, 3};
    expect_invalid(&S, "rollups[0].metrics[0].column: count takes no column");
    S.rollups[0].metrics[0] = (strata_rollup_metric){STRATA_AGG_SUM, -1};
    expect_invalid(&S, "rollups[0].metrics[0].column");
    S.rollups[0].metrics[0] = (strata_rollup_metric){STRATA_AGG_SUM, 2};
    expect_invalid(&S, "rollups[0].metrics[0].column: sum of 'country' needs a numeric column");
    S.rollups[0].metrics[0] = (strata_rollup_metric){STRATA_AGG_QUANTILE, 5};
    expect_invalid(&S, "rollups[0].metrics[0].column: quantile of 'deleted'");
    S.rollups[0].metrics[0] = (strata_rollup_metric){STRATA_AGG_UNIQ, 2};
    expect_valid(&S);
    S.rollups[0].metrics[0] = (strata_rollup_metric){STRATA_AGG_MIN, 0};
    expect_valid(&S);
}

TEST(validate_durations_and_storage)
{
    base_schema(&S);
    S.retention_1m_ms = -1;
    expect_invalid(&S, "retention");
    base_schema(&S);
    S.lateness_ms = -1;
    expect_invalid(&S, "lateness");
    S.lateness_ms = 0;
    expect_valid(&S);
    base_schema(&S);
    S.late_bound_ms = -5;
    expect_invalid(&S, "late_bound");
    base_schema(&S);
    S.codec = (strata_codec)7;
    expect_invalid(&S, "storage.compression");
    base_schema(&S);
    S.unknown_fields = (strata_unknown_fields)2;
    expect_invalid(&S, "unknown_fields");
    S.unknown_fields = STRATA_UNKNOWN_FIELDS_REJECT;
    expect_valid(&S);
    base_schema(&S);
    S.memtable_max_rows = 0;
    expect_invalid(&S, "storage.memtable_rows");
    S.memtable_max_rows = (1u << 24) + 1;
    expect_invalid(&S, "storage.memtable_rows");
    S.memtable_max_rows = 1u << 24;
    expect_valid(&S);
    base_schema(&S);
    S.memtable_max_bytes = 65535;
    expect_invalid(&S, "storage.memtable_bytes");
    S.memtable_max_bytes = 65536;
    expect_valid(&S);
    base_schema(&S);
    S.memtable_max_age_ms = 0;
    expect_invalid(&S, "storage.memtable_age");
    base_schema(&S);
    S.memory_budget_bytes = S.memtable_max_bytes - 1;
    expect_invalid(&S, "storage.memory_budget");
    S.memory_budget_bytes = S.memtable_max_bytes;
    expect_valid(&S);
}

TEST(validate_kafka)
{
    base_schema(&S);
    S.kafka.enabled = true;
    expect_invalid(&S, "kafka.topic: required");
    snprintf(S.kafka.topic, sizeof S.kafka.topic, "orders");
    expect_valid(&S);
    S.kafka.nprops = STRATA_MAX_KAFKA_PROPS + 1;
    expect_invalid(&S, "kafka.properties");
    /* Disabled Kafka settings are not looked at. */
    S.kafka.enabled = false;
    expect_valid(&S);
}

TEST(validate_leaves_schema_unchanged)
{
    one_rollup(&S);
    S.rollups[0].interval_ms = 5;
    static strata_schema copy;
    memcpy(&copy, &S, sizeof copy);
    strata_err err;
    ASSERT_EQ(schema_validate(&S, &err), STRATA_EINVAL);
    ASSERT(memcmp(&copy, &S, sizeof copy) == 0);
    ASSERT_EQ(schema_validate(&S, NULL), STRATA_EINVAL); /* err may be NULL */
}

TEST(column_index)
{
    base_schema(&S);
    ASSERT_EQ(schema_column_index(&S, "ts"), 0);
    ASSERT_EQ(schema_column_index(&S, "version"), 6);
    ASSERT_EQ(schema_column_index(&S, "nope"), -1);
    ASSERT_EQ(schema_column_index(&S, ""), -1);
    ASSERT_EQ(schema_column_index(&S, "TS"), -1);
}

TEST_LIST(T(type_and_agg_names), T(init_defaults), T(partition_epoch), T(partition_before_1970),
          T(partition_leap_years), T(partition_month_ends), T(partition_parse_malformed),
          T(partition_supported_range), T(partition_random_round_trips), T(partition_sequences),
          T(validate_base_and_full), T(default_order_skips_dedup_key), T(validate_names),
          T(validate_columns), T(validate_time_column), T(validate_order_by), T(validate_dedup),
          T(validate_rollups), T(validate_durations_and_storage), T(validate_kafka),
          T(validate_leaves_schema_unchanged), T(column_index))
