/*
 * ndjson_answer.h — what one NDJSON ingest request (POST /ingest/{table}) tells its sender
 * about its lines, gathered line by line, and the JSON of that answer.
 *
 * The answer (keys in this order):
 *   ingested         | integer | rows that landed (the caller's count)
 *   rejected         | integer | lines refused (bad JSON, types, time, unknown fields under
 *                    |         | "reject", over the event size limit): all of them
 *   blank            | integer | empty or all-whitespace lines (space, tab, CR): skipped,
 *                    |         | not events
 *   errors           | array   | {"line", "error"} for the first NDJSON_ANSWER_MAX_ERRORS
 *                    |         | rejected lines, in line order (lines count from 1, blank
 *                    |         | lines included)
 *   errors_truncated | bool    | true when rejected > the entries in errors
 *   unknown_fields   | object  | fields that name no column, of the lines that landed:
 *     .lines         | integer |   lines that had at least one
 *     .first_line    | integer |   the first of them; null when none
 *     .names         | array   |   their distinct names, sorted by bytes, at most
 *                    |         |   NDJSON_ANSWER_MAX_NAMES (the first met); a name over
 *                    |         |   NDJSON_ANSWER_NAME_SHOWN bytes is cut and ends in "..."
 *     .names_truncated | bool  |   true when more distinct names were met than listed
 *     .did_you_mean  | object  |   name -> column, for each listed name that is likely a
 *                    |         |   misspelling of a column (event_json_likely_column)
 * Example: {"ingested": 2, "rejected": 1, "blank": 1, "errors": [{"line": 3, "error":
 * "amount: expected a number, got a string"}], "errors_truncated": false,
 * "unknown_fields": {"lines": 2, "first_line": 1, "names": ["Country", "amout"],
 * "names_truncated": false, "did_you_mean": {"Country": "country", "amout": "amount"}}}
 *
 * Threads: an ndjson_answer belongs to one request; nothing is shared.
 */
#ifndef STRATA_NDJSON_ANSWER_H
#define STRATA_NDJSON_ANSWER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/error.h"
#include "ingest/event_json.h"

#define NDJSON_ANSWER_MAX_ERRORS 100
#define NDJSON_ANSWER_MAX_NAMES 20
#define NDJSON_ANSWER_NAME_SHOWN 64

typedef struct ndjson_answer {
    uint64_t rejected, blank;
    json_t *errors; /* owned */
    uint64_t unknown_lines, unknown_first_line;
    uint32_t line_unknown_keys; /* reported for the line being decoded */
    int nnames;
    bool names_truncated;
    uint8_t name_len[NDJSON_ANSWER_MAX_NAMES];
    char names[NDJSON_ANSWER_MAX_NAMES][NDJSON_ANSWER_NAME_SHOWN + 4]; /* as shown, NUL-ended */
    event_unknown_sink sink; /* ctx is this answer */
} ndjson_answer;

/* Starts an empty answer. Returns 0, or STRATA_ENOMEM (err filled; nothing to free). The
 * answer must not move in memory afterwards (its sink points at it). */
int ndjson_answer_init(ndjson_answer *a, strata_err *err);
/* Frees what the answer holds (a zeroed or freed answer is fine too). */
void ndjson_answer_free(ndjson_answer *a);

/* Counts a blank line. */
void ndjson_answer_blank(ndjson_answer *a);
/* Counts a rejected line, keeping its message while the errors list has room. */
void ndjson_answer_reject(ndjson_answer *a, uint64_t line, const char *msg);

/* The sink to decode a line with (event_decoder_decode_reporting): it notes the names
 * the decoder reports. Valid as long as a. */
const event_unknown_sink *ndjson_answer_sink(ndjson_answer *a);
/* After line's event decoded into the request's rows: counts the line when the decoder
 * reported unknown fields for it. Call it after every successful decode. */
void ndjson_answer_landed(ndjson_answer *a, uint64_t line);

/* The answer's JSON for a request into a table of schema sc (a new reference; NULL when
 * memory runs out). */
json_t *ndjson_answer_json(const ndjson_answer *a, uint64_t ingested, const strata_schema *sc);

#endif
