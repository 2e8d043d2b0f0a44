/*
 * text.h — the text jobs every layer shares: UTF-8 validation, JSON string escaping,
 * the shortest decimal form of a double, and strict decimal uint64 parsing.
 *
 * Nothing here allocates except through the caller's bytebuf (engine/buf.h), whose
 * out-of-memory flag records a failed put; the caller checks it once at the end.
 */
#ifndef STRATA_TEXT_H
#define STRATA_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/buf.h"

/* Length of the valid UTF-8 sequence at s[0..n) (n >= 1), or 0 when s[0] does not start
 * one: overlong forms, surrogates, values above U+10FFFF and cut sequences are invalid. */
size_t text_utf8_len(const unsigned char *s, size_t n);
/* Whether s[0..n) is wholly valid UTF-8. */
bool text_utf8_valid(const char *s, size_t n);
/* Replaces, in place, every byte of the NUL-terminated s that is not part of a valid UTF-8
 * sequence with '?' (for messages that quote input bytes or cut a character in two). */
void text_utf8_scrub(char *s);

/* Appends s[0..n) to b as a JSON string, quotes included: '"', '\\' and control characters
 * escaped (\n \r \t, else \u00XX), U+2028/U+2029 escaped (JavaScript line terminators),
 * every byte that is not part of a valid UTF-8 sequence replaced by U+FFFD, so the output
 * is valid JSON whatever the input. On out of memory b->oom is set. */
void text_json_string(bytebuf *b, const char *s, size_t n);

/* The shortest "%.15g".."%.17g" text that reads back as exactly d (9.66, not
 * 9.6600000000000001) into out[cap]; returns its length. cap of 32 always suffices for a
 * finite d. */
size_t text_double_shortest(double d, char *out, size_t cap);

/* Decimal integers and JSON numbers appended to b; a double that is not finite is written
 * as null (JSON has no NaN nor Infinity). */
void text_put_u64(bytebuf *b, uint64_t v);
void text_put_i64(bytebuf *b, int64_t v);
void text_put_json_double(bytebuf *b, double d);

/* Parses a non-empty NUL-terminated string of decimal digits (no sign, no space) into a
 * uint64; false on anything else or on overflow, *out then unchanged. */
bool text_parse_u64(const char *p, uint64_t *out /* OUT */);

#endif
