/*
 * units.h — durations and byte sizes as people write them in schemas, configs and flags:
 * "500ms", "2m", "7d" and "64MiB", "1GB", "64k". Parsing and the canonical text form.
 *
 * Durations are one non-negative integer count followed by exactly one unit, no spaces,
 * no sign, no fractions, no compounds ("1h30m" is refused; write "90m"):
 *
 *   unit | meaning            unit | meaning
 *   ms   | millisecond        d    | day (86400 s; UTC has no DST)
 *   s    | second             w    | week (7 d)
 *   m    | minute             y    | year, always 365 d
 *   h    | hour
 *
 * Byte sizes are a non-negative integer with an optional suffix:
 *
 *   (none), B                  bytes
 *   KiB MiB GiB TiB PiB        binary: 2^10, 2^20, 2^30, 2^40, 2^50
 *   k m g t p, K M G T P       binary as well (the short forms used by JVM and nginx configs)
 *   KB MB GB TB PB             decimal: 10^3, 10^6, 10^9, 10^12, 10^15
 *
 * Every parser checks for overflow and refuses trailing text. The formatters write the
 * largest unit that represents the value exactly, so parse(format(x)) == x for every
 * value the parser accepts.
 */
#ifndef STRATA_UNITS_H
#define STRATA_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Parses a duration such as "2m" into milliseconds. On success stores the value in *out
 * and returns 0. On failure (NULL or empty text, no unit, an unknown unit, a sign,
 * spaces, trailing text, or a value above INT64_MAX ms) returns STRATA_EINVAL and leaves
 * *out unchanged. */
int units_parse_duration_ms(const char *s, int64_t *out /* OUT */);

/* Parses a byte size such as "64MiB" or "65536". On success stores the value in *out and
 * returns 0; on failure (NULL or empty text, an unknown suffix, a sign, spaces, trailing
 * text, or a value above UINT64_MAX) returns STRATA_EINVAL and leaves *out unchanged. */
int units_parse_bytes(const char *s, uint64_t *out /* OUT */);

/* Writes ms with the largest unit that divides it exactly: 120000 -> "2m",
 * 1500 -> "1500ms", 0 -> "0s", 31536000000 -> "1y". Negative values get a leading '-'
 * (the parser refuses them; they only appear in messages). The text is NUL-terminated
 * and truncated to cap - 1 bytes; 24 bytes always suffice. Nothing is written when cap
 * is 0. */
void units_format_duration_ms(int64_t ms, char *buf, size_t cap);

/* Writes n with the largest binary unit that divides it exactly (67108864 -> "64MiB"),
 * else as plain digits (65537 -> "65537"; 0 -> "0"). NUL-terminated, truncated to
 * cap - 1 bytes; 24 bytes always suffice. Nothing is written when cap is 0. */
void units_format_bytes(uint64_t n, char *buf, size_t cap);

/* Parses an RFC 3339 time, s[0..len): "2024-01-31T13:45:00Z", with optional fractional
 * seconds (any number of digits; truncated to milliseconds), "Z"/"z" or a "+hh:mm" /
 * "-hh:mm" offset; 't' or ' ' also separate date and time; a date alone means midnight
 * UTC. The result is epoch milliseconds within STRATA_TS_MIN..STRATA_TS_MAX. Returns 0, or
 * STRATA_EINVAL (nothing written) for anything else, including impossible dates
 * (2023-02-29) and fields out of range. */
int units_parse_rfc3339_ms(const char *s, size_t len, int64_t *out /* OUT */);

/* Writes ms as "2024-01-31T13:45:00.123Z" (always with milliseconds) into buf
 * (at least 32 bytes). */
void units_format_rfc3339_ms(int64_t ms, char *buf, size_t cap);

#endif
