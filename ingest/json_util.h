/*
 * json_util.h — small helpers shared by the JSON parsers of ingest/ (table schemas and
 * queries): field paths for error messages, "did you mean" suggestions, null-as-absent
 * member lookup, and exact decimal uint64 parsing.
 */
#ifndef STRATA_JSON_UTIL_H
#define STRATA_JSON_UTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* "an object", "a string", "an integer", "a number", "true", ... for messages. */
const char *json_kind(const json_t *v);
/* Sets err to "<path>: expected <expected>, got <kind>" and returns STRATA_EINVAL. */
int json_type_error(strata_err *err, const char *path, const char *expected, const json_t *v);

/* The value at obj[key], or NULL when absent or null (null means "not given"). */
json_t *json_member(json_t *obj, const char *key);

/* "parent.key" / "parent[i]" into out[cap]; a path longer than cap is cut short. */
void json_path_key(char *out, size_t cap, const char *parent, const char *key);
void json_path_index(char *out, size_t cap, const char *parent, size_t i);

/* Edit distance with adjacent transpositions (optimal string alignment), for words of at
 * most 64 bytes; SIZE_MAX for longer ones. */
size_t json_edit_distance(const char *a, const char *b);
/* The candidate closest to word when it is near enough to be a likely typo (distance at
 * most 2 and shorter than the word), else NULL. */
const char *json_closest(const char *word, const char *const *cands, size_t n);
/* "a, b, c" into out[cap] (cut short when it does not fit). */
void json_join_names(const char *const *names, size_t n, char *out, size_t cap);

/* Parses a non-empty string of decimal digits into a uint64; false on anything else or
 * overflow (*out unchanged). */
bool json_parse_u64_decimal(const char *p, uint64_t *out);

#endif
