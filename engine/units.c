/*
 * units.c — parsing and formatting of durations ("2m") and byte sizes ("64MiB").
 *
 * Both parsers read the leading digits into a uint64 with an overflow check per digit,
 * then look the remaining text up in a table of suffixes (an exact match, so trailing
 * junk is simply an unknown suffix) and multiply with a second overflow check. The
 * formatters walk the same tables from the largest unit down and use the first one that
 * divides the value. The grammar is in units.h.
 */
#include "units.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

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

/* Largest first, for strata_format_bytes. */
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

int strata_parse_duration_ms(const char *s, int64_t *out)
{
    uint64_t v;
    int rc = parse_scaled(s, duration_units, sizeof duration_units / sizeof duration_units[0],
                          (uint64_t)INT64_MAX, &v);
    if (rc == 0)
        *out = (int64_t)v;
    return rc;
}

int strata_parse_bytes(const char *s, uint64_t *out)
{
    return parse_scaled(s, byte_units, sizeof byte_units / sizeof byte_units[0], UINT64_MAX, out);
}

void strata_format_duration_ms(int64_t ms, char *buf, size_t cap)
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

void strata_format_bytes(uint64_t n, char *buf, size_t cap)
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
