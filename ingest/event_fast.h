/*
 * event_fast.h — what the two event decoding paths (event_json.c with jansson, event_fast.c
 * by hand) share beyond the public event_json.h: the one rule for uint64 values given as
 * strings and the one rule for numbers with a fraction or exponent in integer columns, so
 * both paths apply literally the same code.
 */
#ifndef STRATA_EVENT_FAST_H
#define STRATA_EVENT_FAST_H

#include <stddef.h>
#include <stdint.h>

#include "engine/schema.h"

/* Reads s[0..len) as a uint64 written in decimal: one or more ASCII digits and nothing
 * else (no sign, no space, no NUL), value at most 2^64-1; leading zeros are fine. Returns 0
 * with *out set, or -1 (*out untouched). */
int event_uint64_from_decimal(const char *s, size_t len, uint64_t *out /* OUT */);

/* What a number written with a fraction or an exponent is worth to an integer column. */
typedef enum event_int_verdict {
    EVENT_INT_OK = 0,   /* an integer in the column's range: 2.0, 1e3, -0.0, 1.7e12 */
    EVENT_INT_FRACTION, /* not an integer: 2.5, 1e-400 (however close to one) */
    EVENT_INT_NEGATIVE, /* below zero, for a uint64 column: -1.0 (-0.0 is 0) */
    EVENT_INT_RANGE,    /* an integer outside the column's range: 1e19 for int64 */
    EVENT_INT_INVALID,  /* not a JSON number token, or type is not an integer type */
} event_int_verdict;

/* Reads the JSON number token s[0..len) (-?[0-9]+(.[0-9]+)?([eE][+-]?[0-9]+)?, the text
 * of a number jansson accepted) exactly, from its digits and exponent, never through a
 * double: 9007199254740993.0 is 9007199254740993 and 2.0000000000000001 is not an
 * integer. For a column of type (STRATA_TIMESTAMP, STRATA_INT64, STRATA_INT32 or
 * STRATA_UINT64) returns EVENT_INT_OK with *out set (a uint64 as its bit pattern) when the
 * value is an integer within the column's range (timestamp: STRATA_TS_MIN..STRATA_TS_MAX);
 * else the first of EVENT_INT_FRACTION, EVENT_INT_NEGATIVE (uint64 only), EVENT_INT_RANGE
 * that applies, or EVENT_INT_INVALID; *out is untouched then. Exponents beyond +-10^15
 * saturate, which cannot change the verdict of a token shorter than 10^14 bytes. */
event_int_verdict event_int_from_number(strata_type type, const char *s, size_t len,
                                        int64_t *out /* OUT */);

#endif
