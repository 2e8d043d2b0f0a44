/*
 * event_fast.h — what the two event decoding paths (event_json.c with jansson, event_fast.c
 * by hand) share beyond the public event_json.h: the one rule for uint64 values given as
 * strings, so both paths apply literally the same code.
 */
#ifndef STRATA_EVENT_FAST_H
#define STRATA_EVENT_FAST_H

#include <stddef.h>
#include <stdint.h>

/* Reads s[0..len) as a uint64 written in decimal: one or more ASCII digits and nothing
 * else (no sign, no space, no NUL), value at most 2^64-1; leading zeros are fine. Returns 0
 * with *out set, or -1 (*out untouched). */
int event_uint64_from_decimal(const char *s, size_t len, uint64_t *out /* OUT */);

#endif
