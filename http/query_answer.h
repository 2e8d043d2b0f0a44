/*
 * query_answer.h — the JSON text strata answers with: a query's result (POST /query) and
 * the {"error": "..."} body of every endpoint. The request side is query_parse.h.
 *
 * Answer format (query_answer_json), compact, one object:
 *   {"columns":[{"name":"time","type":"timestamp"},{"name":"country","type":"string"},...],
 *    "rows":[[1704067200000,"US",1234.5],...],
 *    "stats":{"rows_read":N,"segments_read":N,"elapsed_ms":X,"source":"raw"}}
 * Integers are exact (uint64 up to 18446744073709551615, int64 down to
 * -9223372036854775808); floats use the shortest of %.15g/%.16g/%.17g that reads back to
 * the same double; NaN, infinities and null cells are null; strings are escaped so the
 * text is valid JSON whatever bytes they hold (invalid UTF-8 becomes U+FFFD).
 *
 * Memory: both writers return a malloc'd NUL-terminated text that the caller frees with
 * free(); nothing else is kept.
 */
#ifndef STRATA_QUERY_ANSWER_H
#define STRATA_QUERY_ANSWER_H

#include <stddef.h>

#include "engine/query.h"

/* The JSON answer for r, the result of running q (format above). q may be NULL; it is
 * only consulted for the "source" statistic, which is "raw" for now. Returns a
 * NUL-terminated string the caller frees with free(), its length (without the NUL) in
 * *len when len is non-NULL; NULL when memory runs out. */
char *query_answer_json(const query_result *r, const strata_query *q, size_t *len /* OUT */);

/* {"error":"<message>"} with message escaped like result strings (NULL reads as
 * "unknown error"). Returns a NUL-terminated string the caller frees with free(), its
 * length in *len when len is non-NULL; NULL when memory runs out. */
char *query_answer_error(const char *message, size_t *len /* OUT */);

#endif
