/*
 * json_util.h — small jansson helpers shared by the JSON parsers (table schemas, events and
 * queries): field paths for error messages, "did you mean" suggestions, null-as-absent
 * member lookup, the unknown-key check, and integral reals for integer columns.
 */
#ifndef STRATA_JSON_UTIL_H
#define STRATA_JSON_UTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/error.h"
#include "engine/schema.h"

/* "an object", "a string", "an integer", "a number", "true", ... for messages. */
const char *jutil_kind(const json_t *v);
/* Sets err to "<path>: expected <expected>, got <kind>" and returns STRATA_EINVAL. */
int jutil_type_error(strata_err *err, const char *path, const char *expected, const json_t *v);

/* The value at obj[key], or NULL when absent or null (null means "not given"). */
json_t *jutil_member(json_t *obj, const char *key);

/* "parent.key" / "parent[i]" into out[cap]; a path longer than cap is cut short. */
void jutil_path_key(char *out, size_t cap, const char *parent, const char *key);
void jutil_path_index(char *out, size_t cap, const char *parent, size_t i);

/* Edit distance with adjacent transpositions (optimal string alignment), for words of at
 * most 64 bytes; SIZE_MAX for longer ones. */
size_t jutil_edit_distance(const char *a, const char *b);
/* The candidate closest to word when it is near enough to be a likely typo (distance at
 * most 2 and shorter than the word), else NULL. */
const char *jutil_closest(const char *word, const char *const *cands, size_t n);
/* "a, b, c" into out[cap] (cut short when it does not fit). */
void jutil_join_names(const char *const *names, size_t n, char *out, size_t cap);

/* Refuses any key of obj not in allowed[0..n): sets err to "<path>: unknown key 'k' (did
 * you mean 'x'?)" or "... (expected one of a, b, c)" (no "<path>: " at the top level, path
 * "") and returns STRATA_EINVAL; 0 when every key is allowed. Used by every JSON object a
 * user writes (schemas, queries, configs), so they all word it the same. */
int jutil_check_keys(strata_err *err, json_t *obj, const char *path, const char *const *allowed,
                     size_t n);

/* What a JSON real (jansson keeps only its double) is worth to an integer column. Unlike
 * ingest (event_int_from_number reads the token's text), query and schema parsers have
 * only the double. An integer written below 2^53 in magnitude is that double exactly; from
 * 2^53 on the double may be a rounded neighbour (9007199254740993.0 arrives as
 * 9007199254740992), so those are refused, 2^53 itself included. (A fraction closer to an
 * integer than the double can tell, such as 2.0000000000000001, reads as that integer.) */
typedef enum jutil_real_verdict {
    JUTIL_REAL_INT = 0,   /* an integer in the column's range, |d| < 2^53: 2.0, 1e3, -0.0 */
    JUTIL_REAL_FRACTION,  /* not an integer: 2.5, 1e-300 */
    JUTIL_REAL_NEGATIVE,  /* below zero, for a uint64 column: -1.0 (-0.0 is 0) */
    JUTIL_REAL_RANGE,     /* an integer outside the column's range: 3e9 for int32, 1e19 int64 */
    JUTIL_REAL_INEXACT,   /* an integer in range but |d| >= 2^53: write it as an integer */
} jutil_real_verdict;

/* For a column of type (STRATA_TIMESTAMP, STRATA_INT64, STRATA_INT32, STRATA_UINT64; a
 * timestamp has the range of int64 here, as an integer has in queries and defaults) returns
 * JUTIL_REAL_INT with *out set when d is an integer within the range and |d| < 2^53; else
 * the first of FRACTION, NEGATIVE (uint64 only), RANGE, INEXACT that applies, *out
 * untouched. Any other type gives JUTIL_REAL_RANGE. */
jutil_real_verdict jutil_real_integer(strata_type type, double d, int64_t *out /* OUT */);

/* d in the shortest form that reads back the same ("2.5", "1e19", "-1.0": an integral
 * value without an exponent gets ".0", so the message shows a real as a real), into
 * out[cap]; cap of 32 always suffices. */
void jutil_real_text(double d, char *out, size_t cap);

#endif
