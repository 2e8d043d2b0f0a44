/*
 * query_parse.h — the JSON query language of POST /query: a request body parsed into a
 * strata_query (engine/query.h), with messages that name the field at fault. The answer
 * written back is query_answer.h's job.
 *
 * Request format. Every key is optional unless marked required; a key whose value is null
 * is treated as if it were left out (except "value", where null is a type error). Unknown
 * keys are refused at every level, with a "did you mean" when one is close; duplicate keys
 * are refused.
 *
 *   key          | JSON type          | meaning, default
 *   -------------+--------------------+------------------------------------------------------
 *   table        | string             | required; the table queried
 *   from         | time               | first instant included; default: the beginning of
 *                |                    | time (INT64_MIN)
 *   to           | time               | first instant excluded; default: now. from < to
 *   interval     | duration string    | time buckets, "1s" .. "1d": a whole number and one
 *                |                    | unit of ms, s, m, h, d (engine/units.h grammar;
 *                |                    | w and y parse but are always over 1d): "10s", "1m",
 *                |                    | "90m", "1500ms". The first output column is then
 *                |                    | "time", the bucket start in epoch ms: the row's time
 *                |                    | rounded down to a multiple of the interval counted
 *                |                    | from 1970-01-01T00:00:00Z, not from "from" (with
 *                |                    | "7m" and from 00:00 the first bucket is 23:54 the day
 *                |                    | before). Default: no buckets
 *   fill         | string             | "none", "zero" or "null": with "zero" or "null" every
 *                |                    | bucket from the one holding from to the one holding
 *                |                    | to - 1 is returned for every group (group_by values)
 *                |                    | the answer has; without group_by every bucket is,
 *                |                    | even when nothing matched. A bucket without rows
 *                |                    | has, with "zero", count, sum and uniq 0 and min,
 *                |                    | max, avg, quantile null; with "null" every aggregate
 *                |                    | null. Needs interval and from (to defaults to now).
 *                |                    | order_by and limit apply after filling; buckets x
 *                |                    | groups counts against the server's group limit
 *                |                    | (query_max_groups). Default "none": buckets
 *                |                    | without rows are left out
 *   source       | string             | "auto" (default), "raw" or "rollup": whether rollup
 *                |                    | tiers may answer (engine/query.h); "rollup" is
 *                |                    | refused when no tier covers the query
 *   select       | array of objects   | required, 1..32 aggregates, one output column each:
 *     .fn        | string             |   required: count, sum, min, max, avg, uniq, quantile
 *     .column    | string             |   required except for count, which takes none;
 *                |                    |   string columns only with uniq
 *     .q         | number             |   quantile only, required there, 0 <= q <= 1
 *     .as        | string             |   output name, 1..63 bytes; default "count" for
 *                |                    |   count, else "<fn>_<column>" ("sum_amount",
 *                |                    |   "quantile_amount"). Output names must be unique;
 *                |                    |   with interval, "time" is the bucket column's
 *   where        | array of objects   | conditions, all of which must hold (AND); each is
 *                |                    |   {"column": c, "op": o, "value": v}      o one of
 *                |                    |       = != < <= > >=
 *                |                    |   {"column": c, "op": o, "values": [v...]} o one of
 *                |                    |       in, not_in; 0..10000 values
 *                |                    |   {"or": [conditions...]}, {"and": [conditions...]}
 *                |                    |       at least one condition each
 *                |                    | nested at most 16 deep (the conditions of the list
 *                |                    | itself are at depth 1). Default: every row
 *   group_by     | array of strings   | 0..16 distinct columns, any type; one output column
 *                |                    | each, named after the column, after "time"
 *   order_by     | array of objects   | 0..16 entries, most significant first:
 *     .column    | string             |   required: an output column name ("time", a group
 *                |                    |   column, an aggregate's name)
 *     .desc      | true/false         |   default false
 *                |                    | default: the group columns (time first), ascending
 *   limit        | integer            | >= 0; most rows returned. Default: all
 *
 * Times ("from", "to", and values compared with timestamp columns) are one of:
 *   an integer          epoch milliseconds (negative: before 1970); not seconds
 *   RFC 3339 text       "2024-01-31T13:45:00Z", fractional seconds of any length (cut to
 *                       ms), "z", "+02:00" / "-05:30" offsets, "2024-01-31" (midnight UTC)
 *   "now", "now-1h", "now+15m"  relative to the now_ms argument, with the durations of
 *                       engine/units.h: a whole number and one of ms s m h d w y
 *                       (d = 24 h, w = 7 d, y = 365 d)
 *
 * Values in conditions are typed by their column: timestamp a time as above; int64 and
 * int32 integers in the column's range; uint64 integers >= 0 or decimal strings up to
 * "18446744073709551615" (JSON integers are read as signed 64-bit, so larger values must
 * be strings); float64 any number; bool true/false; string a string. A timestamp, int64,
 * int32 or uint64 value may also be a number written with a fraction or exponent whose
 * value is an integer in range below 2^53 in magnitude (2.0, 1e3, -0.0): jansson keeps
 * only the double, exact for those; 2.5 is refused ("where[0].value: 2.5 is not an
 * integer (column 'qty' is int32)"), and so is 1e19 ("... write the value as an integer").
 *
 * Example, an hourly series per country over the last day, every hour present (rows in
 * time order, then by country):
 *   {"table": "orders", "from": "now-1d", "interval": "1h", "fill": "zero",
 *    "select": [{"fn": "count", "as": "orders"}, {"fn": "sum", "column": "amount", "as": "gmv"},
 *               {"fn": "quantile", "column": "amount", "q": 0.99}],
 *    "where": [{"column": "status", "op": "in", "values": ["paid", "shipped"]},
 *              {"or": [{"column": "country", "op": "=", "value": "US"},
 *                      {"column": "amount", "op": ">=", "value": 100}]}],
 *    "group_by": ["country"]}
 * and the ten countries with the most revenue (no interval: one row per country):
 *   {"table": "orders", "from": "now-1d", "select": [{"fn": "sum", "column": "amount",
 *    "as": "gmv"}], "group_by": ["country"], "order_by": [{"column": "gmv", "desc": true}],
 *    "limit": 10}
 *
 * Error messages start with the path of the field at fault, then the reason:
 *   select[0].fn: unknown function 'median' (expected one of count, sum, min, max, avg,
 *       uniq, quantile)
 *   where[1].column: no column 'contry' in table 'orders' (did you mean 'country'?)
 *   where[0].or[2].value: column 'amount' is float64, got a string
 *   select[3].as: 'gmv' is used twice
 *   select[0].as: 'time' is the name of the time bucket column that interval adds; choose
 *       another name
 *   fill: "zero" needs "from" (filling starts at the bucket holding from, such as
 *       "from": "now-1d"; without it the query starts at the beginning of time)
 *   unknown key 'grup_by' (did you mean 'group_by'?)
 *   from: 2024-01-02T00:00:00Z is not before to: 2024-01-01T00:00:00Z
 *   malformed JSON at line 1 column 7: ...
 * Messages are valid UTF-8 (bytes of the input that are not become '?').
 *
 */
#ifndef STRATA_QUERY_PARSE_H
#define STRATA_QUERY_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/error.h"
#include "engine/query.h"
#include "engine/schema.h"

#define QUERY_PARSE_MAX_DEPTH 16             /* nesting of where conditions */
#define QUERY_PARSE_MAX_IN_VALUES 10000      /* values of one in / not_in */
#define QUERY_PARSE_MIN_INTERVAL_MS 1000     /* "1s" */
#define QUERY_PARSE_MAX_INTERVAL_MS 86400000 /* "1d" */

/* Reads the "table" of the query text[0..len) (need not be NUL-terminated) into
 * name[0..cap), NUL-terminated, so the caller can look the table up before
 * query_parse_json. Returns 0; or STRATA_EINVAL with the message in err (malformed JSON,
 * not an object, "table" missing, not a string, empty, or cap bytes or longer), with name
 * unchanged. Nothing else of the query is checked. */
int query_parse_table_name(const char *text, size_t len, char *name /* OUT */, size_t cap,
                           strata_err *err);

/* Parses the query text[0..len) (need not be NUL-terminated) against schema, the schema of
 * the table it names; "now" in times means now_ms. On success returns 0 and fills *out
 * completely (query_init first; timeout_ms and max_groups are 0, for the caller to set);
 * the caller frees it with query_free. On failure returns STRATA_EINVAL (or STRATA_ENOMEM)
 * with the message in err, frees everything it allocated, and leaves *out unchanged
 * (do not call query_free then). */
int query_parse_json(const char *text, size_t len, const strata_schema *schema, int64_t now_ms,
                     strata_query *out /* OUT */, strata_err *err);

#endif
