/*
 * event_json.h — turning one JSON event (an object, one NDJSON line or Kafka message) into
 * one row of a row_batch.
 *
 * Rules: the event must be a JSON object. The time column is required: an integer of epoch
 * milliseconds or an RFC 3339 string. The object's keys are matched to column names
 * exactly (case counts); only its top level is matched: a nested object or array is one
 * value, for a column a value of the wrong type, and its inner keys are never columns
 * (column names hold no '.', so no path such as "user.id" can name one). A missing field
 * (or null) takes the column's default. Fields that name no column ("unknown fields")
 * follow the schema's unknown_fields: STRATA_UNKNOWN_FIELDS_IGNORE (events usually carry
 * more than a table keeps) decodes the event without them and reports each such key to
 * the caller's event_unknown_sink; STRATA_UNKNOWN_FIELDS_REJECT refuses the event, naming
 * the first such key with the column it is likely a misspelling of, if any:
 *   amout: unknown field (did you mean 'amount'?); this table rejects events with
 *   unknown fields (unknown_fields: reject)
 * A missing time field names a key that looks like it ("ts: the time field is missing
 * (the event has 'TS': did you mean 'ts'?)"). The time field is checked first, then the
 * others in the event's order: an error names the first field at fault. Types must fit
 * the column:
 * timestamp (epoch ms integer or RFC 3339), int64 / int32 (integers in range), uint64
 * (non-negative integers; beyond 2^63-1 as a decimal string), float64 (any number),
 * bool (true/false), string (a string). A value of the wrong type is an error for that
 * event, with a message naming the field — the caller dead-letters or reports it; nothing
 * is partially added.
 * Integer columns (timestamp, int64, int32, uint64) take any JSON number whose value is
 * exactly an integer in the column's range, however it is written: 2.0, 2.00, 1e3, 1E+3,
 * 20e-1, -0.0 (0), 1.7e12, 9.223372036854775807e18. Such a number is read from its digits
 * and exponent, never rounded through a double (9007199254740993.0 is 9007199254740993;
 * 2.0000000000000001 is refused), and uint64 values beyond 2^63-1 may be written so too
 * (1.8e19). The refusals, naming the column and quoting the number as written (at most
 * 40 bytes, then "..."):
 *   qty: 2.5 is not an integer                  (ts: 1.5 is not an integer (epoch milliseconds))
 *   qty: 1e19 is out of int64 range (-9223372036854775808 to 9223372036854775807)
 *   n: 3e9 is out of int32 range (-2147483648 to 2147483647)
 *   u: 1e20 is out of uint64 range (0 to 18446744073709551615)
 *   u: -1.0 is negative, the column is uint64
 *   ts: 1e16 ms is outside years 0000-9999
 * (1e400 is not a number at all: jansson refuses it, "real number overflow".) The JSON itself is read as jansson 2.14 reads it with
 * JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY: strict RFC 8259 syntax, valid
 * UTF-8 only, duplicate keys refused, "\u0000" allowed in values (not in keys), integers
 * are numbers without '.', 'e' or 'E' and must fit int64, reals must not overflow.
 *
 * Two paths give the same result for every input (the row, the error, the unknown fields
 * reported):
 *   - the jansson path (event_json_decode_jansson): builds a json_t tree; every error
 *     message comes from it;
 *   - the fast path (event_json_decode_fast, ingest/event_fast.c): one pass over the bytes
 *     for flat objects whose values are numbers, strings, booleans or null. It handles only
 *     what it can prove it decodes exactly as jansson does and declines everything else
 *     (nested values, any syntax, UTF-8 or type error, escaped keys, duplicate keys,
 *     numbers it cannot convert exactly, ...), leaving the batch unchanged.
 * event_decoder_decode and event_json_decode run the fast path and, when it declines, the
 * jansson path on the same bytes — so a decline costs one extra pass and nothing else.
 * tests/fuzz/fuzz_event_json.c holds the two paths to each other byte for byte.
 *
 * Threads: an event_decoder is immutable once created; any number of threads may decode
 * with one decoder at the same time, each into its own row_batch.
 */
#ifndef STRATA_EVENT_JSON_H
#define STRATA_EVENT_JSON_H

#include <stddef.h>

#include "engine/error.h"
#include "engine/row_batch.h"

#define EVENT_JSON_MAX_BYTES (1u << 20) /* one event; longer ones are refused */

/* Returned by event_json_decode_fast when it does not handle an input (never an error
 * code: positive, unlike every STRATA_E*). */
#define EVENT_JSON_DECLINED 1

/* A schema's column lookup for the fast path, built once per schema. */
typedef struct event_decoder event_decoder;

/* Where a decode reports the keys of the event that name no column: key(ctx, name, len)
 * is called once per such key, in the order of the event's text, with the key's bytes
 * (valid UTF-8 without NUL, not NUL-terminated; valid during the call only). Only for an
 * event that decoded (the decode returned 0), after its row was added; never for a
 * refused one. Both paths report the same keys in the same order. */
typedef struct event_unknown_sink {
    void (*key)(void *ctx, const char *name, size_t len);
    void *ctx;
} event_unknown_sink;

/* Makes a decoder for schema, which is borrowed: it must outlive the decoder and not
 * change while the decoder exists. Returns NULL with err filled (STRATA_ENOMEM) on
 * failure. Free with event_decoder_free. */
event_decoder *event_decoder_create(const strata_schema *schema, strata_err *err);
void event_decoder_free(event_decoder *d);

/* Decodes text[0..len) into a new last row of b: the fast path, then the jansson path if
 * the fast path declines. b->schema should be the decoder's schema (the same pointer);
 * for any other schema the lookup is rebuilt for that call, which is correct but slower.
 * Returns 0, or STRATA_EINVAL with the reason in err (b unchanged), or STRATA_ENOMEM. */
int event_decoder_decode(const event_decoder *d, const char *text, size_t len, row_batch *b,
                         strata_err *err);
/* As event_decoder_decode, reporting the event's unknown fields to unknown (may be NULL). */
int event_decoder_decode_reporting(const event_decoder *d, const char *text, size_t len,
                                   row_batch *b, const event_unknown_sink *unknown,
                                   strata_err *err);

/* As event_decoder_decode, with the column lookup built for b->schema on every call (no
 * allocation). For callers without a decoder; a decoder is faster. */
int event_json_decode(const char *text, size_t len, row_batch *b, strata_err *err);

/* The jansson path alone. Returns as event_json_decode. */
int event_json_decode_jansson(const char *text, size_t len, row_batch *b, strata_err *err);
/* The same, reporting the event's unknown fields to unknown (may be NULL). */
int event_json_decode_jansson_reporting(const char *text, size_t len, row_batch *b,
                                        const event_unknown_sink *unknown, strata_err *err);

/* The fast path alone; d may be NULL (lookup built for b->schema). Returns 0 with the row
 * added, exactly as the jansson path would have added it, or EVENT_JSON_DECLINED with b
 * unchanged (nrows and nbytes as before) — for bad events, for inputs it does not handle,
 * and when memory runs out. Never fills an error message: errors are the jansson path's. */
int event_json_decode_fast(const event_decoder *d, const char *text, size_t len, row_batch *b);
/* The same, reporting the event's unknown fields to unknown (may be NULL) when it returns
 * 0; under STRATA_UNKNOWN_FIELDS_REJECT it declines every event that has any. */
int event_json_decode_fast_reporting(const event_decoder *d, const char *text, size_t len,
                                     row_batch *b, const event_unknown_sink *unknown);

/* The name of the column of sc that key (a NUL-terminated field name naming no column) is
 * likely a misspelling of: one equal but for ASCII case, else the closest within 2 edits
 * (jutil_closest in ingest/json_util.h); NULL when none is. Points into sc. */
const char *event_json_likely_column(const strata_schema *sc, const char *key);

#endif
