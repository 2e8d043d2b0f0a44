/*
 * grafana_target.h — one target of a Grafana JSON datasource request (simPod's
 * simpod-json-datasource plugin, POST /grafana/query) turned into a strata query in the
 * JSON language of query_parse.h, so that Grafana's panels go through the very parser,
 * planner and limits of POST /query. api_grafana.c runs the query and shapes the answer.
 *
 * A target is {"refId", "target": "<table>", "payload": {...}, "editorMode", "hide", ...}
 * and the request gives the range ("range": {"from", "to"}, ISO-8601), "intervalMs",
 * "maxDataPoints" and ad hoc filters ("filters", or "adhocFilters" of older plugins:
 * [{"key", "operator", "value"}]). Grafana has already put the dashboard's variables in:
 * in "target" and in builder payloads they come regex-formatted (prod.eu as prod\.eu, a
 * multi-value as (a|b)); in code payloads as JSON (a multi-value as a JSON array).
 *
 * The payload, either form:
 *   builder  {"fn": "count" | "sum" | "avg" | "min" | "max" | "uniq" | "p50" | "p90" |
 *            "p95" | "p99", "column": c, "group_by": [c...] (or "a,b" or "(a|b)"),
 *            "where": "status = paid, amount >= 100, country =~ (US|DE)",
 *            "format": "time_series" | "table", "as": a legend (the aggregate's name),
 *            "fill": "none" | "zero" | "null" (buckets without rows, as POST /query)};
 *            other keys are refused (with a "did you mean"); no fn means count
 *   code     a strata query without "table" (the target names it), "from" and "to"
 *            (Grafana's range, unless the payload gives them): "select", "where",
 *            "group_by", "order_by", "limit", "fill", "source", "interval"; plus
 *            "format" as above. "select" defaults to a count. A where condition
 *            {"column", "op": "=", "value": [...]} (a multi-value variable) means "in",
 *            "!=" with a list means "not_in".
 *   The form is told by editorMode "code", or by the keys ("select", a where list);
 *   else builder. An empty code payload is an error: the plugin sends {} when the text
 *   was not JSON once the variables were put in, and that must not chart a count.
 *
 * Time buckets (format time_series, or table with "interval": "auto"): the payload's
 * "interval" when it names one; else the finest of 1s 2s 5s 10s 15s 30s 1m 2m 5m 10m 15m
 * 30m 1h 2h 3h 6h 12h 1d that is at least intervalMs and keeps the buckets of the range
 * within maxDataPoints, then rounded up to a multiple of the coarsest rollup tier not
 * coarser than it, so that a tier can serve it; finer than every tier, it becomes the
 * finest tier's interval when that is at most twice as long (grafana_bucket_ms).
 *
 * Builder "where" text: conditions separated by commas or the word "and", each "column op
 * value" with op one of = != < <= > >= =~ !~; the value may be quoted ('x' or "x"). A
 * comma or "and" ends a condition only when another condition follows it, so a value may
 * hold commas ("env = US,DE" is one value). With = and != the value is read in Grafana's
 * regex format: backslash escapes are undone and (a|b|c) means any of a, b, c (in /
 * not_in); on a string column, a value with a regular expression character that is not
 * escaped (".*", a custom All value Grafana puts in raw) is matched as one. =~ and !~
 * take a POSIX extended regular expression matched against the whole value; they need a
 * string column, and are answered by matching the column's distinct values in the range
 * (ctx->values) and asking for those. Integer columns take "3.0" too.
 * Ad hoc filters take = != < > <= >= =~ !~ the same way, with raw values (no regex
 * format); a filter whose key is not a column of the table is left out for that table
 * (ad hoc filters apply to every panel of a dashboard).
 *
 * Errors: STRATA_EINVAL with a message that names the target ("target A: ...").
 * Memory: *out is a new jansson reference the caller json_decref's.
 */
#ifndef STRATA_GRAFANA_TARGET_H
#define STRATA_GRAFANA_TARGET_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/error.h"
#include "engine/schema.h"

/* What an answer frame looks like. */
typedef enum grafana_format {
    GRAFANA_SERIES = 0, /* one frame per group: Time and the aggregates, labelled */
    GRAFANA_TABLE,      /* one frame with every column of the answer */
} grafana_format;

/* How the answer of a target is shown. */
typedef struct grafana_shape {
    grafana_format format;
    char legend[STRATA_NAME_MAX]; /* the builder's "as": series are named "<legend>" or
                                   * "<legend> <group>"; "" when not given */
} grafana_shape;

/* The distinct values of a string column in [from_ms, to_ms) of the table being
 * translated: a new JSON array of strings into *out, or an error (too many values, a
 * failed query). */
typedef int grafana_values_fn(void *arg, const char *column, json_t **out /* OUT */,
                              strata_err *err);

/* The request around a target. */
typedef struct grafana_ctx {
    int64_t from_ms, to_ms;   /* the range; INT64_MIN / INT64_MAX when the request has none */
    int64_t interval_ms;      /* intervalMs; 0 when absent */
    int64_t max_points;       /* maxDataPoints; 0 when absent */
    const json_t *filters;    /* the ad hoc filters (an array) or NULL */
    grafana_values_fn *values; /* for =~ and !~; NULL refuses them */
    void *values_arg;
} grafana_ctx;

/* The bucket for a range: the ladder step above, rounded to s's rollup tiers. */
int64_t grafana_bucket_ms(const strata_schema *s, int64_t from_ms, int64_t to_ms,
                          int64_t interval_ms, int64_t max_points);

/* Turns target (its "payload" and refId; the table's schema s) into a strata query:
 * 0 and *out, *shape; or STRATA_EINVAL / STRATA_ENOMEM with the message in err. */
int grafana_target_query(const strata_schema *s, const json_t *target, const grafana_ctx *ctx,
                         json_t **out /* OUT */, grafana_shape *shape /* OUT */, strata_err *err);

/* Appends to list (a JSON array) the conditions of a where text of the builder's grammar
 * above; messages start with label ("variable: where"). 0, or STRATA_EINVAL. */
int grafana_where_text(const strata_schema *s, const char *text, const grafana_ctx *ctx,
                       const char *label, json_t *list, strata_err *err);

/* In a where list of POST /query's language (changed in place, through and/or lists): a
 * condition {"column", "op": "=", "value": [...]}, a multi-value variable put in as JSON,
 * becomes {"op": "in", "values": [...]}; "!=" becomes "not_in". */
void grafana_where_lists(json_t *conds);

/* Grafana's regex format undone: src[0..n) with each backslash escape replaced by the
 * character it escapes, into out[cap] (NUL-terminated; cut at cap - 1). */
void grafana_unescape(const char *src, size_t n, char *out, size_t cap);

/* A value in Grafana's regex format as the list of values it stands for: "(a|b)" gives
 * ["a", "b"], "prod\.eu" gives ["prod.eu"] (a new JSON array of strings; NULL when memory
 * runs out). */
json_t *grafana_alternatives(const char *src);

#endif
