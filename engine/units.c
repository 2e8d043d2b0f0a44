/*
 * units.c — parsing and formatting of durations ("2m") and byte sizes ("64MiB").
 *
 * Both parsers read the leading digits into a uint64 with an overflow check per digit,
 * then look the remaining text up in a table of suffixes (an exact match, so trailing
 * junk is simply an unknown suffix) and multiply with a second overflow check. The
 * formatters walk the same tables from the largest unit down and use the first one that
 * divides the value. The grammar is in units.h.
 */
#include "engine/units.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "engine/error.h"
#include "engine/schema.h"

struct unit {
    const char *suffix;
    uint64_t mult;
};

/* Largest first: the formatter takes the first exact divisor. */
static const struct unit duration_units[] = {
    {"y", 365ull * 86400000ull},
    {"w", 7ull * 86400000ull},
    {"d", 86400000ull},
    {"h", 3600000ull},
    {"m", 60000ull},
    {"s", 1000ull},
    {"ms", 1ull},
};

#define KIB (1ull << 10)
#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define TIB (1ull << 40)
#define PIB (1ull << 50)

/* clang-format off */
static const struct unit byte_units[] = {
    {"", 1},           {"B", 1},
    {"KiB", KIB},      {"k", KIB},       {"K", KIB},       {"KB", 1000ull},
    {"MiB", MIB},      {"m", MIB},       {"M", MIB},       {"MB", 1000000ull},
    {"GiB", GIB},      {"g", GIB},       {"G", GIB},       {"GB", 1000000000ull},
    {"TiB", TIB},      {"t", TIB},       {"T", TIB},       {"TB", 1000000000000ull},
    {"PiB", PIB},      {"p", PIB},       {"P", PIB},       {"PB", 1000000000000000ull},
};
/* clang-format on */

/* Largest first, for units_format_bytes. */
static const struct unit byte_format_units[] = {
    {"PiB", PIB}, {"TiB", TIB}, {"GiB", GIB}, {"MiB", MIB}, {"KiB", KIB},
};

/* Reads "<digits><suffix>" into count * mult, where suffix is looked up in units. */
static int parse_scaled(const char *s, const struct unit *units, size_t nunits, uint64_t max,
                        uint64_t *out)
{
    if (!s || !(*s >= '0' && *s <= '9'))
        return STRATA_EINVAL;
    uint64_t count = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        uint64_t digit = (uint64_t)(*p - '0');
        if (count > (UINT64_MAX - digit) / 10)
            return STRATA_EINVAL;
        count = count * 10 + digit;
    }
    for (size_t i = 0; i < nunits; i++) {
        if (strcmp(p, units[i].suffix) != 0)
            continue;
        if (count != 0 && units[i].mult > max / count)
            return STRATA_EINVAL;
        *out = count * units[i].mult;
        return 0;
    }
    return STRATA_EINVAL;
}

int units_parse_duration_ms(const char *s, int64_t *out)
{
    uint64_t v;
    int rc = parse_scaled(s, duration_units, sizeof duration_units / sizeof duration_units[0],
                          (uint64_t)INT64_MAX, &v);
    if (rc == 0)
        *out = (int64_t)v;
    return rc;
}

int units_parse_bytes(const char *s, uint64_t *out)
{
    return parse_scaled(s, byte_units, sizeof byte_units / sizeof byte_units[0], UINT64_MAX, out);
}

void units_format_duration_ms(int64_t ms, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    bool neg = ms < 0;
    /* Magnitude without overflow for INT64_MIN. */
    uint64_t mag = neg ? (uint64_t)(-(ms + 1)) + 1 : (uint64_t)ms;
    const char *suffix = "s";
    uint64_t count = 0;
    if (mag != 0) {
        for (size_t i = 0; i < sizeof duration_units / sizeof duration_units[0]; i++) {
            if (mag % duration_units[i].mult == 0) {
                suffix = duration_units[i].suffix;
                count = mag / duration_units[i].mult;
                break;
            }
        }
    }
    snprintf(buf, cap, "%s%" PRIu64 "%s", neg ? "-" : "", count, suffix);
}

void units_format_bytes(uint64_t n, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    if (n != 0) {
        for (size_t i = 0; i < sizeof byte_format_units / sizeof byte_format_units[0]; i++) {
            if (n % byte_format_units[i].mult == 0) {
                snprintf(buf, cap, "%" PRIu64 "%s", n / byte_format_units[i].mult,
                         byte_format_units[i].suffix);
                return;
            }
        }
    }
    snprintf(buf, cap, "%" PRIu64, n);
}

/* ---- RFC 3339 times ---------------------------------------------------------------- */

static bool digits(const char *s, size_t len, size_t at, size_t n, int *out)
{
    if (at + n > len)
        return false;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[at + i] < '0' || s[at + i] > '9')
            return false;
        v = v * 10 + (s[at + i] - '0');
    }
    *out = v;
    return true;
}

static int days_in_month(int64_t y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

int units_parse_rfc3339_ms(const char *s, size_t len, int64_t *out)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
    if (!digits(s, len, 0, 4, &y) || len < 10 || s[4] != '-' || !digits(s, len, 5, 2, &mo) ||
        s[7] != '-' || !digits(s, len, 8, 2, &d))
        return STRATA_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return STRATA_EINVAL;
    size_t at = 10;
    int64_t offset_min = 0;
    if (at < len) {
        if (s[at] != 'T' && s[at] != 't' && s[at] != ' ')
            return STRATA_EINVAL;
        at++;
        if (!digits(s, len, at, 2, &h) || at + 2 >= len || s[at + 2] != ':' ||
            !digits(s, len, at + 3, 2, &mi) || at + 5 >= len || s[at + 5] != ':' ||
            !digits(s, len, at + 6, 2, &sec))
            return STRATA_EINVAL;
        at += 8;
        if (h > 23 || mi > 59 || sec > 60) /* 60: a leap second, counted as :59.999 */
            return STRATA_EINVAL;
        if (at < len && s[at] == '.') {
            at++;
            size_t start = at;
            int scale = 100;
            while (at < len && s[at] >= '0' && s[at] <= '9') {
                ms += (s[at] - '0') * scale;
                scale /= 10;
                at++;
            }
            if (at == start)
                return STRATA_EINVAL;
        }
        if (sec == 60) {
            sec = 59;
            ms = 999;
        }
        if (at >= len)
            return STRATA_EINVAL; /* a time needs a zone */
        if (s[at] == 'Z' || s[at] == 'z') {
            at++;
        } else if (s[at] == '+' || s[at] == '-') {
            int oh, om;
            if (!digits(s, len, at + 1, 2, &oh) || at + 3 >= len || s[at + 3] != ':' ||
                !digits(s, len, at + 4, 2, &om) || oh > 23 || om > 59)
                return STRATA_EINVAL;
            offset_min = (s[at] == '+' ? 1 : -1) * (int64_t)(oh * 60 + om);
            at += 6;
        } else {
            return STRATA_EINVAL;
        }
    }
    if (at != len)
        return STRATA_EINVAL;
    int64_t t = strata_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400000 +
                ((int64_t)h * 3600 + mi * 60 + sec) * 1000 + ms - offset_min * 60000;
    if (t < STRATA_TS_MIN || t > STRATA_TS_MAX)
        return STRATA_EINVAL;
    *out = t;
    return 0;
}

void units_format_rfc3339_ms(int64_t ms, char *buf, size_t cap)
{
    int64_t days = ms / 86400000 - (ms % 86400000 < 0);
    int64_t rem = ms - days * 86400000;
    int64_t y;
    unsigned m, d;
    strata_civil_from_days(days, &y, &m, &d);
    snprintf(buf, cap, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02d.%03dZ", y, m, d, (int)(rem / 3600000),
             (int)(rem / 60000 % 60), (int)(rem / 1000 % 60), (int)(rem % 1000));
}
