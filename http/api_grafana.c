/*
 * api_grafana.c — the Grafana JSON datasource protocol (simPod's simpod-json-datasource,
 * 0.6.x) under /grafana, so a datasource URL of http://host:8686/grafana works:
 *
 *   GET  /grafana, /grafana/        200 {"status": "ok"} ("Save & test" wants exactly 200)
 *   POST /grafana/query             the targets of a panel -> a JSON array of data frames
 *   POST /grafana/metrics           the tables, each with the builder's payload fields
 *   POST /grafana/metric-payload-options   the options of one payload field
 *   POST /grafana/variable          values for a dashboard variable: [{"__text", "__value"}]
 *   POST /grafana/tag-keys          string columns of every table: [{"type", "text"}]
 *   POST /grafana/tag-values        a column's values in the range: [{"text"}]
 *
 * Each target becomes a query of POST /query's language (grafana_target.h) run through
 * api_query_run: the same parser, planner (rollups included) and limits. Its answer is
 * written as data frames: {"refId", "name", "fields": [{"name", "type", "values",
 * "labels", "config"}], "meta": {"executedQueryString": <the strata query>}}. Format
 * time_series gives one frame per group (Time and the aggregates, the group's values as
 * labels); table gives one frame with every column. Values are numbers, strings, booleans
 * or null, never NaN; times are epoch milliseconds.
 *
 * Variables (POST /variable, {"payload": {"target": ...} or an object, "range"}):
 *   "tables"                 the table names
 *   "columns <table>"        its string columns
 *   "<table>.<column>"       the column's distinct values in the range (at most 1000;
 *                            "limit" in an object payload changes that)
 *   {"table", "column", "where", "limit"} the same, with conditions of POST /query
 * Tables whose names start with '_' (strata's own) are left out of tag keys and values.
 *
 * Errors: 4xx/5xx with {"message": <what Grafana shows>, "error": <the status's short
 * name>}; one failing target fails the request (the protocol has no per-target errors).
 * Every answer carries CORS headers (any origin: these endpoints only read; with a token
 * configured it is still required), for the plugin's browser access mode.
 */
#include "http/api.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/clock.h"
#include "engine/table.h"
#include "engine/units.h"
#include "http/grafana_target.h"

#define VARIABLE_VALUES 1000     /* distinct values a variable or tag-values lists */
#define REGEX_VALUES 10000       /* distinct values a =~ filter may look through */
#define TAG_RANGE_MS 86400000    /* tag values without a range: the last day */
#define MAX_SERIES 1000          /* series (groups) one target may answer with */

/* ---- answers --------------------------------------------------------------------------------- */

void api_grafana_cors(struct MHD_Connection *c, const char **out)
{
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    int n = 0;
    out[n++] = "Access-Control-Allow-Origin";
    out[n++] = origin && *origin ? origin : "*";
    if (origin && *origin) {
        out[n++] = "Access-Control-Allow-Credentials";
        out[n++] = "true";
        out[n++] = "Vary";
        out[n++] = "Origin";
    }
    out[n++] = "Access-Control-Allow-Headers";
    out[n++] = "Accept, Authorization, Content-Type";
    out[n++] = "Access-Control-Allow-Methods";
    out[n++] = "GET, POST, OPTIONS";
    out[n++] = "Access-Control-Max-Age";
    out[n++] = "86400";
    out[n] = NULL;
}

static enum MHD_Result send_json(strata_server *s, struct MHD_Connection *c, unsigned status,
                                 json_t *j)
{
    const char *cors[API_CORS_HEADERS];
    api_grafana_cors(c, cors);
    return reply_json_with(s, c, status, j, cors);
}

static const char *status_name(unsigned status)
{
    switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 404: return "not_found";
    case 413: return "too_large";
    case 422: return "over_limit";
    case 503: return "unavailable";
    default: return status < 500 ? "bad_request" : "internal";
    }
}

static enum MHD_Result send_fail(strata_server *s, struct MHD_Connection *c, unsigned status,
                                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum MHD_Result send_fail(strata_server *s, struct MHD_Connection *c, unsigned status,
                                 const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return send_json(s, c, status, json_pack("{s:s, s:s}", "message", msg, "error", status_name(status)));
}

/* The body as a JSON object ({} when empty); NULL after answering 400. */
static json_t *body_object(strata_server *s, struct MHD_Connection *c, request *rq,
                           enum MHD_Result *answered)
{
    if (rq->body.len == 0)
        return json_object();
    json_error_t je;
    json_t *j = json_loadb((const char *)rq->body.data, rq->body.len, JSON_REJECT_DUPLICATES, &je);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        *answered = j ? send_fail(s, c, 400, "the body must be a JSON object")
                      : send_fail(s, c, 400, "malformed JSON at line %d column %d: %s", je.line,
                                  je.column, je.text);
        return NULL;
    }
    return j;
}

/* Whether the body is a JSON object (or empty), for endpoints that read nothing of it;
 * false after answering 400. */
static bool body_valid(strata_server *s, struct MHD_Connection *c, request *rq, enum MHD_Result *answered)
{
    json_t *body = body_object(s, c, rq, answered);
    json_decref(body);
    return body != NULL;
}

/* ---- time -------------------------------------------------------------------------------------- */

/* A time of Grafana's range: ISO-8601 text or epoch milliseconds; false when neither. */
static bool time_of(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        *out = (int64_t)json_real_value(v);
        return true;
    }
    const char *t = json_string_value(v);
    if (!t)
        return false;
    if (*t && strspn(t, "0123456789") == strlen(t)) {
        *out = strtoll(t, NULL, 10);
        return true;
    }
    return units_parse_rfc3339_ms(t, strlen(t), out) == 0;
}

/* The range of a request ({"from", "to"} under key): 0, with INT64_MIN / INT64_MAX for an
 * end that is not given; -1 with the message in why[cap] for one that is not a time. */
static int range_of(const json_t *body, const char *key, int64_t *from, int64_t *to, char *why,
                    size_t cap)
{
    const json_t *r = json_object_get(body, key);
    const char *ends[2] = {"from", "to"};
    int64_t *outs[2] = {from, to};
    *from = INT64_MIN;
    *to = INT64_MAX;
    for (int i = 0; i < 2; i++) {
        const json_t *v = json_object_get(r, ends[i]);
        if (!v || json_is_null(v))
            continue;
        if (!time_of(v, outs[i])) {
            char *text = json_dumps(v, JSON_ENCODE_ANY);
            snprintf(why, cap, "%s.%s: %.80s is not a time (Grafana sends ISO-8601 UTC, such as "
                     "2024-01-01T00:00:00.000Z; epoch milliseconds work too)", key, ends[i],
                     text ? text : "?");
            free(text);
            return -1;
        }
    }
    return 0;
}

/* ---- running a query --------------------------------------------------------------------------- */

/* Runs the query q (a JSON object) over t: 0 and *out, or an engine error in err. The
 * query's text is kept in *text when text is non-NULL (malloc'd, the caller frees). */
static int run_json(strata_server *s, strata_table *t, json_t *q, strata_query *sq,
                    query_result **out, char **text, strata_err *err)
{
    double t0 = clock_mono_ms_frac();
    char *qt = json_dumps(q, JSON_COMPACT);
    if (!qt)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    int rc = api_query_run(s, t, qt, strlen(qt), sq, out, err);
    api_query_count(s, t0, rc != 0);
    if (text)
        *text = qt;
    else
        free(qt);
    return rc;
}

/* The distinct values of string column col of t in [from, to), where conditions (NULL:
 * none), in order: a new array of strings, or an error. More than limit of them is an
 * error, or with cut the first limit. */
static int distinct_values(strata_server *s, strata_table *t, const char *col, int64_t from,
                           int64_t to, json_t *where, size_t limit, bool cut, json_t **out,
                           strata_err *err)
{
    json_t *q = json_pack("{s:s, s:[{s:s}], s:[s], s:I}", "table", table_schema(t)->name, "select",
                          "fn", "count", "group_by", col, "limit", (json_int_t)limit + 1);
    if (!q)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    if (from > INT64_MIN)
        json_object_set_new(q, "from", json_integer(from));
    if (to < INT64_MAX)
        json_object_set_new(q, "to", json_integer(to));
    if (where)
        json_object_set(q, "where", where);
    strata_query sq;
    query_result *r;
    int rc = run_json(s, t, q, &sq, &r, NULL, err);
    json_decref(q);
    if (rc)
        return rc;
    query_free(&sq);
    uint64_t n = r->nrows > limit && cut ? limit : r->nrows; /* the first limit values, in order */
    if (n > limit) {
        query_result_free(r);
        return strata_err_set(err, STRATA_EFULL, "column '%s' has more than %zu distinct values in the "
                              "range", col, limit);
    }
    json_t *a = json_array();
    for (uint64_t i = 0; a && i < n; i++) {
        const query_cell *cell = query_result_cell(r, i, 0);
        if (cell->kind == QC_STR)
            json_array_append_new(a, json_stringn(cell->v.s.ptr, cell->v.s.len));
        else if (cell->kind == QC_BOOL)
            json_array_append_new(a, json_string(cell->v.b ? "true" : "false"));
    }
    query_result_free(r);
    if (!a)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    *out = a;
    return 0;
}

typedef struct values_arg {
    strata_server *s;
    strata_table *t;
    int64_t from, to;
} values_arg;

static int values_for_regex(void *arg, const char *column, json_t **out, strata_err *err)
{
    values_arg *va = arg;
    return distinct_values(va->s, va->t, column, va->from, va->to, NULL, REGEX_VALUES, false, out, err);
}

/* ---- data frames ------------------------------------------------------------------------------- */

static json_t *cell_json(const query_cell *c)
{
    switch (c->kind) {
    case QC_INT: return json_integer(c->v.i);
    case QC_UINT: return c->v.u <= (uint64_t)INT64_MAX ? json_integer((json_int_t)c->v.u)
                                                        : json_real((double)c->v.u);
    case QC_FLOAT: return isfinite(c->v.f) ? json_real(c->v.f) : json_null();
    case QC_STR: return json_stringn(c->v.s.ptr, c->v.s.len);
    case QC_BOOL: return json_boolean(c->v.b);
    default: return json_null();
    }
}

/* A Grafana field type for a strata column type. */
static const char *field_type(const char *type, bool is_time)
{
    if (is_time || strcmp(type, "timestamp") == 0)
        return "time";
    if (strcmp(type, "string") == 0)
        return "string";
    if (strcmp(type, "bool") == 0)
        return "boolean";
    return "number";
}

static json_t *frame_new(const char *refid, const char *name, const char *query_text)
{
    return json_pack("{s:s, s:s, s:[], s:{s:s}}", "refId", refid, "name", name, "fields", "meta",
                     "executedQueryString", query_text);
}

/* The whole answer as one frame: a field per column. */
static json_t *frames_table(const query_result *r, const strata_query *q, const char *refid,
                            const char *name, const char *qt)
{
    json_t *f = frame_new(refid, name, qt);
    json_t *fields = json_object_get(f, "fields");
    for (int col = 0; f && col < r->ncols; col++) {
        json_t *vals = json_array();
        for (uint64_t i = 0; vals && i < r->nrows; i++)
            json_array_append_new(vals, cell_json(query_result_cell(r, i, col)));
        json_array_append_new(fields, json_pack("{s:s, s:s, s:o}", "name", r->names[col], "type",
                                                field_type(r->types[col], col == 0 && q->interval_ms > 0),
                                                "values", vals));
    }
    return json_pack("[o]", f);
}

/* A group's label text: its values joined by ", " (into out[cap]). */
static void group_label(const query_result *r, uint64_t row, int first, int n, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = 0;
    for (int g = 0; g < n && o + 1 < cap; g++) {
        const query_cell *c = query_result_cell(r, row, first + g);
        char one[256];
        if (c->kind == QC_STR)
            snprintf(one, sizeof one, "%.*s", (int)c->v.s.len, c->v.s.ptr);
        else if (c->kind == QC_INT)
            snprintf(one, sizeof one, "%" PRId64, c->v.i);
        else if (c->kind == QC_UINT)
            snprintf(one, sizeof one, "%" PRIu64, c->v.u);
        else if (c->kind == QC_BOOL)
            snprintf(one, sizeof one, "%s", c->v.b ? "true" : "false");
        else if (c->kind == QC_FLOAT)
            snprintf(one, sizeof one, "%g", c->v.f);
        else
            snprintf(one, sizeof one, "null");
        o += (size_t)snprintf(out + o, cap - o, "%s%s", g ? ", " : "", one);
    }
}

/* A frame of the series format: Time, then each aggregate (labelled with the group's
 * values, those of row, when there are groups). */
static json_t *series_frame(const query_result *r, int ng, uint64_t row, const char *label,
                            const char *legend, const char *refid, const char *qt)
{
    int first_agg = 1 + ng, naggs = r->ncols - first_agg;
    json_t *f = frame_new(refid, ng ? label : naggs == 1 ? r->names[first_agg] : "values", qt);
    json_t *fields = json_object_get(f, "fields");
    json_t *labels = json_object();
    if (!f || !labels) {
        json_decref(f);
        json_decref(labels);
        return NULL;
    }
    json_array_append_new(fields, json_pack("{s:s, s:s, s:[]}", "name", "Time", "type", "time", "values"));
    for (int g = 0; g < ng; g++) {
        char one[256];
        group_label(r, row, 1 + g, 1, one, sizeof one);
        json_object_set_new_nocheck(labels, r->names[1 + g], json_string(one));
    }
    for (int a = first_agg; a < r->ncols; a++) {
        char disp[1200];
        if (!ng)
            snprintf(disp, sizeof disp, "%s", r->names[a]);
        else if (naggs == 1 && legend[0])
            snprintf(disp, sizeof disp, "%s %s", legend, label);
        else if (naggs == 1)
            snprintf(disp, sizeof disp, "%s", label);
        else
            snprintf(disp, sizeof disp, "%s %s", r->names[a], label);
        json_array_append_new(fields, json_pack("{s:s, s:s, s:[], s:O, s:{s:s}}", "name", r->names[a],
                                                "type", "number", "values", "labels", labels,
                                                "config", "displayNameFromDS", disp));
    }
    json_decref(labels);
    return f;
}

/* One frame per group (series_frame). The rows come in time order, so each frame's
 * points do too. Without groups there is one frame, even with no points (Grafana then
 * says "No data"); with groups and no rows there is none. */
static json_t *frames_series(const query_result *r, const strata_query *q, const char *legend,
                             const char *refid, const char *qt)
{
    int ng = q->ngroup, first_agg = 1 + ng;
    json_t *frames = json_array();
    json_t *index = json_object(); /* group label -> frame position */
    if (!frames || !index)
        goto fail;
    if (ng == 0) {
        json_t *f = series_frame(r, 0, 0, "", legend, refid, qt);
        if (!f || json_array_append_new(frames, f) != 0)
            goto fail;
        json_object_set_new_nocheck(index, "", json_integer(0));
    }
    char label[1024];
    for (uint64_t i = 0; i < r->nrows; i++) {
        group_label(r, i, 1, ng, label, sizeof label);
        json_t *pos = json_object_get(index, label);
        json_t *f;
        if (pos) {
            f = json_array_get(frames, (size_t)json_integer_value(pos));
        } else {
            f = series_frame(r, ng, i, label, legend, refid, qt);
            if (!f)
                goto fail;
            json_object_set_new_nocheck(index, label, json_integer((json_int_t)json_array_size(frames)));
            json_array_append_new(frames, f);
        }
        json_t *fields = json_object_get(f, "fields");
        json_array_append_new(json_object_get(json_array_get(fields, 0), "values"),
                              cell_json(query_result_cell(r, i, 0)));
        for (int a = first_agg; a < r->ncols; a++)
            json_array_append_new(json_object_get(json_array_get(fields, (size_t)(a - first_agg + 1)),
                                                  "values"),
                                  cell_json(query_result_cell(r, i, a)));
    }
    json_decref(index);
    return frames;
fail:
    json_decref(frames);
    json_decref(index);
    return NULL;
}

/* ---- endpoints --------------------------------------------------------------------------------- */

enum MHD_Result api_grafana_health(strata_server *s, struct MHD_Connection *c, request *rq,
                                   const char *method)
{
    (void)rq;
    (void)method;
    return send_json(s, c, 200, json_pack("{s:s, s:s}", "status", "ok", "message",
                                          "strata answers the JSON datasource protocol here"));
}

/* The table a target names: its "target" (regex escapes undone), else payload.table. */
static void target_table(const json_t *target, char *out, size_t cap)
{
    const char *t = json_string_value(json_object_get(target, "target"));
    if (!t || !*t)
        t = json_string_value(json_object_get(json_object_get(target, "payload"), "table"));
    if (!t)
        t = "";
    while (*t == ' ')
        t++;
    grafana_unescape(t, strlen(t), out, cap);
    size_t n = strlen(out);
    while (n && out[n - 1] == ' ')
        out[--n] = 0;
}

enum MHD_Result api_grafana_query(strata_server *s, struct MHD_Connection *c, request *rq,
                                  const char *method)
{
    (void)method;
    enum MHD_Result answered = MHD_NO;
    json_t *body = body_object(s, c, rq, &answered);
    if (!body)
        return answered;
    grafana_ctx ctx = {0};
    char why[256];
    json_t *targets = json_object_get(body, "targets");
    if (range_of(body, "range", &ctx.from_ms, &ctx.to_ms, why, sizeof why) != 0 ||
        (targets && !json_is_array(targets))) {
        if (targets && !json_is_array(targets))
            snprintf(why, sizeof why, "targets: expected a list of targets");
        json_decref(body);
        return send_fail(s, c, 400, "%s", why);
    }
    json_t *iv = json_object_get(body, "intervalMs");
    ctx.interval_ms = json_is_number(iv) ? (int64_t)json_number_value(iv) : 0;
    json_t *mp = json_object_get(body, "maxDataPoints");
    ctx.max_points = json_is_number(mp) ? (int64_t)json_number_value(mp) : 0;
    ctx.filters = json_object_get(body, "filters");
    if (!json_is_array(ctx.filters))
        ctx.filters = json_object_get(body, "adhocFilters");
    if (!json_is_array(ctx.filters))
        ctx.filters = NULL;
    ctx.values = values_for_regex;
    json_t *answer = json_array();
    char msg[1024] = "";
    unsigned status = 0; /* a failure: its status and msg (after body is let go of) */
    size_t i;
    json_t *target;
    json_array_foreach(targets, i, target)
    {
        if (!json_is_object(target) || json_is_true(json_object_get(target, "hide")))
            continue;
        const char *refid = json_string_value(json_object_get(target, "refId"));
        if (!refid)
            refid = "A";
        char name[STRATA_NAME_MAX * 2];
        target_table(target, name, sizeof name);
        if (!name[0]) {
            status = 400;
            snprintf(msg, sizeof msg, "target %s: choose a table (the metric)", refid);
            break;
        }
        strata_table *t = catalog_get(s->cat, name);
        if (!t) {
            status = 404;
            snprintf(msg, sizeof msg, "target %s: no table '%s'", refid, name);
            break;
        }
        values_arg va = {s, t, ctx.from_ms, ctx.to_ms};
        ctx.values_arg = &va;
        strata_err err = {0};
        json_t *q = NULL;
        grafana_shape shape;
        int rc = grafana_target_query(table_schema(t), target, &ctx, &q, &shape, &err);
        strata_query sq;
        query_result *r = NULL;
        char *qt = NULL;
        if (!rc)
            rc = run_json(s, t, q, &sq, &r, &qt, &err);
        json_decref(q);
        catalog_put(s->cat, t);
        if (rc) {
            free(qt);
            status = reply_status_of(rc);
            if (strncmp(err.msg, "target ", 7) == 0)
                snprintf(msg, sizeof msg, "%s", err.msg);
            else
                snprintf(msg, sizeof msg, "target %s: %s", refid, err.msg);
            break;
        }
        json_t *frames = shape.format == GRAFANA_TABLE || sq.interval_ms == 0
                             ? frames_table(r, &sq, refid, name, qt)
                             : frames_series(r, &sq, shape.legend, refid, qt);
        free(qt);
        query_result_free(r);
        query_free(&sq);
        if (frames && json_array_size(frames) > MAX_SERIES) {
            status = 422;
            snprintf(msg, sizeof msg, "target %s: %zu series, over the %d a panel may draw: group by "
                     "fewer columns, or filter", refid, json_array_size(frames), MAX_SERIES);
            json_decref(frames);
            break;
        }
        if (!frames || json_array_extend(answer, frames) != 0) {
            json_decref(frames);
            status = 503;
            snprintf(msg, sizeof msg, "out of memory writing the answer");
            break;
        }
        json_decref(frames);
    }
    json_decref(body);
    if (status) {
        json_decref(answer);
        return send_fail(s, c, status, "%s", msg);
    }
    return send_json(s, c, 200, answer);
}

/* ---- the builder's choices ----------------------------------------------------------------------- */

static const char *const fns[] = {"count", "sum", "avg", "min", "max", "uniq", "p50", "p90", "p95", "p99"};
static const char *const fn_labels[] = {"count", "sum", "average", "min", "max", "distinct (uniq)",
                                        "median (p50)", "p90", "p95", "p99"};

static json_t *options_of(const char *const *values, const char *const *labels, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_pack("{s:s, s:s}", "value", values[i], "label", labels[i]));
    return a;
}

static bool numeric(strata_type t)
{
    return t == STRATA_INT64 || t == STRATA_UINT64 || t == STRATA_INT32 || t == STRATA_FLOAT64;
}

/* Column options for a payload field of table s: "column" (what fn may take), "group_by"
 * (string and bool columns). */
static json_t *column_options(const strata_schema *s, const char *field, const char *fn)
{
    json_t *a = json_array();
    for (int i = 0; a && i < s->ncols; i++) {
        strata_type ty = s->cols[i].type;
        bool fits;
        if (strcmp(field, "group_by") == 0)
            fits = ty == STRATA_STRING || ty == STRATA_BOOL;
        else if (fn && strcmp(fn, "count") == 0)
            fits = false;
        else if (fn && strcmp(fn, "uniq") == 0)
            fits = i != s->time_col;
        else
            fits = numeric(ty);
        if (fits)
            json_array_append_new(a, json_pack("{s:s, s:s}", "value", s->cols[i].name, "label",
                                               s->cols[i].name));
    }
    return a;
}

static json_t *metric_of(const strata_schema *s)
{
    json_t *payloads = json_pack(
        "[{s:s, s:s, s:s, s:o, s:b}, {s:s, s:s, s:s}, {s:s, s:s, s:s, s:o}, {s:s, s:s, s:s, s:s, s:i},"
        " {s:s, s:s, s:s, s:[{s:s, s:s}, {s:s, s:s}]}, {s:s, s:s, s:s, s:s}]",
        "name", "fn", "label", "Aggregate", "type", "select", "options",
        options_of(fns, fn_labels, sizeof fns / sizeof fns[0]), "reloadMetric", 0,
        "name", "column", "label", "Column", "type", "select",
        "name", "group_by", "label", "Group by", "type", "multi-select", "options",
        column_options(s, "group_by", NULL),
        "name", "where", "label", "Where", "type", "input", "placeholder",
        "status = paid, amount >= 100, country =~ (US|DE)", "width", 60,
        "name", "format", "label", "Format", "type", "select", "options", "value", "time_series",
        "label", "time series", "value", "table", "label", "table",
        "name", "as", "label", "Legend", "type", "input", "placeholder", "the aggregate's name");
    return json_pack("{s:s, s:s, s:o}", "value", s->name, "label", s->name, "payloads", payloads);
}

enum MHD_Result api_grafana_metrics(strata_server *s, struct MHD_Connection *c, request *rq,
                                    const char *method)
{
    (void)method;
    enum MHD_Result answered = MHD_NO;
    if (!body_valid(s, c, rq, &answered))
        return answered;
    json_t *a = json_array();
    size_t n = catalog_count(s->cat);
    for (size_t i = 0; a && i < n; i++) {
        strata_table *t = catalog_at(s->cat, i);
        if (!t)
            continue;
        json_array_append_new(a, metric_of(table_schema(t)));
        catalog_put(s->cat, t);
    }
    return send_json(s, c, 200, a);
}

enum MHD_Result api_grafana_payload_options(strata_server *s, struct MHD_Connection *c,
                                            request *rq, const char *method)
{
    (void)method;
    enum MHD_Result answered = MHD_NO;
    json_t *body = body_object(s, c, rq, &answered);
    if (!body)
        return answered;
    const char *metric = json_string_value(json_object_get(body, "metric"));
    const char *name = json_string_value(json_object_get(body, "name"));
    json_t *payload = json_object_get(body, "payload");
    char table[STRATA_NAME_MAX * 2];
    grafana_unescape(metric ? metric : "", metric ? strlen(metric) : 0, table, sizeof table);
    if (!name) {
        json_decref(body);
        return send_fail(s, c, 400, "\"name\" (the payload field) is required");
    }
    if (strcmp(name, "fn") == 0) {
        json_decref(body);
        return send_json(s, c, 200, options_of(fns, fn_labels, sizeof fns / sizeof fns[0]));
    }
    strata_table *t = catalog_get(s->cat, table);
    if (!t) {
        json_decref(body);
        return send_fail(s, c, 404, "no table '%s' (choose a table as the metric first)", table);
    }
    json_t *a;
    if (strcmp(name, "column") == 0 || strcmp(name, "group_by") == 0) {
        const char *fn = json_string_value(json_object_get(payload, "fn"));
        a = column_options(table_schema(t), name, fn ? fn : "count");
    } else {
        a = json_array(); /* a field without options (where, an unknown one) */
    }
    catalog_put(s->cat, t);
    json_decref(body);
    return send_json(s, c, 200, a);
}

/* [{"__text": v, "__value": v}] of an array of strings (taken over). */
static json_t *variable_values(json_t *values)
{
    json_t *a = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(values, i, v)
    {
        json_array_append_new(a, json_pack("{s:O, s:O}", "__text", v, "__value", v));
    }
    json_decref(values);
    return a;
}

enum MHD_Result api_grafana_variable(strata_server *s, struct MHD_Connection *c, request *rq,
                                     const char *method)
{
    (void)method;
    enum MHD_Result answered = MHD_NO;
    json_t *body = body_object(s, c, rq, &answered);
    if (!body)
        return answered;
    int64_t from, to;
    char why[256];
    if (range_of(body, "range", &from, &to, why, sizeof why) != 0) {
        json_decref(body);
        return send_fail(s, c, 400, "%s", why);
    }
    json_t *payload = json_object_get(body, "payload");
    const char *target = json_string_value(json_object_get(payload, "target"));
    if (!target)
        target = json_string_value(payload); /* a bare string, as older plugins send */
    char text[256] = "";
    if (target)
        grafana_unescape(target, strlen(target), text, sizeof text);
    char table[256] = "", column[256] = ""; /* as long as text: a name too long finds no table */
    json_t *where = json_is_object(payload) ? json_object_get(payload, "where") : NULL;
    json_int_t limit = VARIABLE_VALUES;
    if (json_is_integer(json_object_get(payload, "limit")))
        limit = json_integer_value(json_object_get(payload, "limit"));
    if (limit < 1 || limit > REGEX_VALUES) {
        json_decref(body);
        return send_fail(s, c, 400, "payload.limit: 1 to %d", REGEX_VALUES);
    }
    if (json_is_object(payload) && json_is_string(json_object_get(payload, "table"))) {
        snprintf(table, sizeof table, "%s", json_string_value(json_object_get(payload, "table")));
        const char *col = json_string_value(json_object_get(payload, "column"));
        snprintf(column, sizeof column, "%s", col ? col : "");
    }
    char *p = text;
    while (*p == ' ')
        p++;
    if (!table[0] && (!*p || strcmp(p, "tables") == 0)) {
        json_t *names = json_array();
        size_t n = catalog_count(s->cat);
        for (size_t i = 0; names && i < n; i++) {
            strata_table *t = catalog_at(s->cat, i);
            if (t) {
                json_array_append_new(names, json_string(table_schema(t)->name));
                catalog_put(s->cat, t);
            }
        }
        json_decref(body);
        return send_json(s, c, 200, variable_values(names));
    }
    bool columns = false;
    if (!table[0]) {
        if (strncmp(p, "columns ", 8) == 0) {
            columns = true;
            snprintf(table, sizeof table, "%s", p + 8);
        } else {
            char *dot = strchr(p, '.');
            if (!dot) {
                json_decref(body);
                return send_fail(s, c, 400, "variable query '%s': expected tables, columns <table> or "
                                 "<table>.<column>", p);
            }
            *dot = 0;
            snprintf(table, sizeof table, "%s", p);
            snprintf(column, sizeof column, "%s", dot + 1);
        }
        table[strcspn(table, " ")] = 0;
        column[strcspn(column, " ")] = 0;
    }
    strata_table *t = catalog_get(s->cat, table);
    if (!t) {
        json_decref(body);
        return send_fail(s, c, 404, "no table '%s'", table);
    }
    const strata_schema *sc = table_schema(t);
    if (json_is_array(where))
        grafana_where_lists(where); /* "value": $multi put in as a JSON list */
    json_t *values;
    if (columns) {
        values = json_array();
        for (int i = 0; values && i < sc->ncols; i++)
            if (sc->cols[i].type == STRATA_STRING)
                json_array_append_new(values, json_string(sc->cols[i].name));
    } else {
        strata_err err = {0};
        json_t *conds = json_is_string(where) ? json_array() : NULL;
        int rc = 0;
        if (conds) { /* the builder's where text */
            grafana_ctx vctx = {.from_ms = from, .to_ms = to, .values = values_for_regex};
            values_arg va = {s, t, from, to};
            vctx.values_arg = &va;
            rc = grafana_where_text(sc, json_string_value(where), &vctx, "variable: where", conds, &err);
            where = conds;
        }
        if (!rc)
            rc = distinct_values(s, t, column, from, to, where, (size_t)limit, true, &values, &err);
        json_decref(conds);
        if (rc) {
            catalog_put(s->cat, t);
            json_decref(body);
            return send_fail(s, c, reply_status_of(rc), "%s", err.msg);
        }
    }
    catalog_put(s->cat, t);
    json_decref(body);
    return send_json(s, c, 200, variable_values(values));
}

enum MHD_Result api_grafana_tag_keys(strata_server *s, struct MHD_Connection *c, request *rq,
                                     const char *method)
{
    (void)method;
    enum MHD_Result answered = MHD_NO;
    if (!body_valid(s, c, rq, &answered))
        return answered;
    json_t *seen = json_object(), *a = json_array();
    size_t n = catalog_count(s->cat);
    for (size_t i = 0; seen && a && i < n; i++) {
        strata_table *t = catalog_at(s->cat, i);
        if (!t)
            continue;
        const strata_schema *sc = table_schema(t);
        for (int k = 0; sc->name[0] != '_' && k < sc->ncols; k++)
            if (sc->cols[k].type == STRATA_STRING && !json_object_get(seen, sc->cols[k].name)) {
                json_object_set_new(seen, sc->cols[k].name, json_true());
                json_array_append_new(a, json_pack("{s:s, s:s}", "type", "string", "text",
                                                   sc->cols[k].name));
            }
        catalog_put(s->cat, t);
    }
    json_decref(seen);
    return send_json(s, c, 200, a);
}

enum MHD_Result api_grafana_tag_values(strata_server *s, struct MHD_Connection *c, request *rq,
                                       const char *method)
{
    (void)method;
    enum MHD_Result answered = MHD_NO;
    json_t *body = body_object(s, c, rq, &answered);
    if (!body)
        return answered;
    const char *key = json_string_value(json_object_get(body, "key"));
    if (!key) {
        json_decref(body);
        return send_fail(s, c, 400, "\"key\" (a column name) is required");
    }
    int64_t from, to;
    char why[256];
    if (range_of(body, "timeRange", &from, &to, why, sizeof why) != 0) {
        json_decref(body);
        return send_fail(s, c, 400, "%s", why);
    }
    if (from == INT64_MIN && to == INT64_MAX) {
        to = clock_wall_ms();
        from = to - TAG_RANGE_MS;
    }
    json_t *seen = json_object(), *a = json_array();
    size_t n = catalog_count(s->cat);
    for (size_t i = 0; seen && a && i < n; i++) {
        strata_table *t = catalog_at(s->cat, i);
        if (!t)
            continue;
        const strata_schema *sc = table_schema(t);
        bool has = false;
        for (int k = 0; sc->name[0] != '_' && k < sc->ncols; k++)
            has |= sc->cols[k].type == STRATA_STRING && strcmp(sc->cols[k].name, key) == 0;
        json_t *vals = NULL;
        strata_err err = {0};
        if (has && distinct_values(s, t, key, from, to, NULL, VARIABLE_VALUES, true, &vals, &err) == 0) {
            size_t j;
            json_t *v;
            json_array_foreach(vals, j, v)
            {
                if (!json_object_get(seen, json_string_value(v))) {
                    json_object_set_new(seen, json_string_value(v), json_true());
                    json_array_append_new(a, json_pack("{s:O}", "text", v));
                }
            }
            json_decref(vals);
        }
        catalog_put(s->cat, t);
    }
    json_decref(seen);
    json_decref(body);
    return send_json(s, c, 200, a);
}
