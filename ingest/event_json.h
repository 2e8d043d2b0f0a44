/*
 * event_json.h — turning one JSON event (a flat or nested object, one NDJSON line) into
 * one row of a row_batch.
 *
 * Rules: the event must be a JSON object. The time column is required: an integer of epoch
 * milliseconds or an RFC 3339 string. Other fields are matched to columns by name; a
 * missing field (or null) takes the column's default; fields that name no column are
 * ignored (events usually carry more than a table keeps). Types must fit the column:
 * timestamp (epoch ms integer or RFC 3339), int64 / int32 (integers in range), uint64
 * (non-negative integers; beyond 2^63-1 as a decimal string), float64 (any number),
 * bool (true/false), string (a string). A value of the wrong type is an error for that
 * event, with a message naming the field — the caller dead-letters or reports it; nothing
 * is partially added.
 *
 * This is the jansson path; a fast path for flat objects comes with Kafka ingestion and
 * must give the same results for every input.
 */
#ifndef STRATA_EVENT_JSON_H
#define STRATA_EVENT_JSON_H

#include <stddef.h>

#include "error.h"
#include "row_batch.h"

#define EVENT_JSON_MAX_BYTES (1u << 20) /* one event; longer ones are refused */

/* Decodes text[0..len) into a new last row of b. Returns 0, or STRATA_EINVAL with the
 * reason in err (b unchanged), or STRATA_ENOMEM. */
int event_json_decode(const char *text, size_t len, row_batch *b, strata_err *err);

#endif
