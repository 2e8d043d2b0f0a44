/*
 * schema_json.c — a table schema from its JSON text (format in schema_json.h), and from
 * schema.json on disk. (Just over 800 lines: one format, parse only; the dump is
 * schema_json_dump.c.)
 *
 * Parsing: jansson loads the text (duplicate keys refused), then each section is read
 * into a heap strata_schema that starts from schema_init() defaults. Every object is
 * first checked against its list of allowed keys (an unknown key gets a "did you mean"
 * from an edit distance), then each key is type-checked and converted; column names are
 * resolved to indexes. Finally the default sort key is applied and schema_validate()
 * checks the semantic rules. Only a fully valid result is copied to the caller, so *out
 * never holds half a schema. Every message starts with the path of the field at fault
 * ("rollups[0].metrics[1].column: ..."); messages are scrubbed to valid UTF-8, since the
 * HTTP layer puts them into JSON answers.
 *
 * The way back (a schema to its JSON text, and schema.json on disk) is schema_json_dump.c.
 */
#include "engine/schema_json.h"

#include "engine/json_util.h"
#include "engine/text.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/units.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define PATHCAP 192 /* longest field path: "rollups[3].metrics[31].column", property keys */

/* ---- small helpers ---------------------------------------------------------------------- */

/* Copies the string obj[key] into out[cap]. Returns 1 when present, 0 when absent or
 * null, or a negative code (not a string, too long). */
static int get_str(strata_err *err, json_t *obj, const char *parent, const char *key, char *out,
                   size_t cap)
{
    json_t *v = jutil_member(obj, key);
    if (!v)
        return 0;
    char path[PATHCAP];
    jutil_path_key(path, PATHCAP, parent, key);
    if (!json_is_string(v))
        return jutil_type_error(err, path, "a string", v);
    size_t n = json_string_length(v);
    if (n >= cap)
        return strata_err_set(err, STRATA_EINVAL, "%s: too long (%zu bytes, at most %zu)", path, n,
                              cap - 1);
    memcpy(out, json_string_value(v), n + 1);
    return 1;
}

/* Reads obj[key] as one of names[0..n); the index goes to *out. Returns 1 / 0 / <0 as
 * get_str. */
static int get_enum(strata_err *err, json_t *obj, const char *parent, const char *key,
                    const char *const *names, size_t n, int *out)
{
    json_t *v = jutil_member(obj, key);
    if (!v)
        return 0;
    char path[PATHCAP];
    jutil_path_key(path, PATHCAP, parent, key);
    if (!json_is_string(v))
        return jutil_type_error(err, path, "a string", v);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(json_string_value(v), names[i]) == 0) {
            *out = (int)i;
            return 1;
        }
    }
    char list[256];
    jutil_join_names(names, n, list, sizeof list);
    return strata_err_set(err, STRATA_EINVAL, "%s: unknown value '%.64s' (expected one of %s)",
                          path, json_string_value(v), list);
}

/* Reads obj[key] as a duration string. Returns 1 / 0 / <0 as get_str. */
static int get_duration(strata_err *err, json_t *obj, const char *parent, const char *key,
                        int64_t *out)
{
    json_t *v = jutil_member(obj, key);
    if (!v)
        return 0;
    char path[PATHCAP];
    jutil_path_key(path, PATHCAP, parent, key);
    if (!json_is_string(v))
        return jutil_type_error(err, path, "a duration string such as \"2m\"", v);
    if (units_parse_duration_ms(json_string_value(v), out) != 0)
        return strata_err_set(err, STRATA_EINVAL,
                              "%s: '%.64s' is not a duration (a whole number and one unit of ms, "
                              "s, m, h, d, w, y, such as \"2m\")",
                              path, json_string_value(v));
    return 1;
}

/* Reads obj[key] as a byte size: a non-negative integer or a size string. Returns
 * 1 / 0 / <0 as get_str. */
static int get_size(strata_err *err, json_t *obj, const char *parent, const char *key,
                    uint64_t *out)
{
    json_t *v = jutil_member(obj, key);
    if (!v)
        return 0;
    char path[PATHCAP];
    jutil_path_key(path, PATHCAP, parent, key);
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return strata_err_set(err, STRATA_EINVAL, "%s: must not be negative", path);
        *out = (uint64_t)json_integer_value(v);
        return 1;
    }
    if (!json_is_string(v))
        return jutil_type_error(err, path, "a size (an integer or a string such as \"64MiB\")", v);
    if (units_parse_bytes(json_string_value(v), out) != 0)
        return strata_err_set(err, STRATA_EINVAL,
                              "%s: '%.64s' is not a size (bytes, or a number with KiB, MiB, GiB, "
                              "KB, MB, GB, k, m or g, such as \"64MiB\")",
                              path, json_string_value(v));
    return 1;
}

/* Resolves v (a column name) to a column index of s. */
static int get_column(strata_err *err, const strata_schema *s, json_t *v, const char *path,
                      int *idx)
{
    if (!json_is_string(v))
        return jutil_type_error(err, path, "a column name (string)", v);
    const char *name = json_string_value(v);
    int i = schema_column_index(s, name);
    if (i >= 0) {
        *idx = i;
        return 0;
    }
    const char *names[STRATA_MAX_COLUMNS];
    for (int c = 0; c < s->ncols; c++)
        names[c] = s->cols[c].name;
    const char *near = jutil_closest(name, names, (size_t)s->ncols);
    if (near)
        return strata_err_set(err, STRATA_EINVAL, "%s: unknown column '%.64s' (did you mean '%s'?)",
                              path, name, near);
    return strata_err_set(err, STRATA_EINVAL, "%s: unknown column '%.64s'", path, name);
}

/* Resolves the optional column reference obj[key]; *idx is untouched when absent. */
static int get_column_ref(strata_err *err, const strata_schema *s, json_t *obj, const char *key,
                          int *idx)
{
    json_t *v = jutil_member(obj, key);
    if (!v)
        return 0;
    return get_column(err, s, v, key, idx);
}

/* ---- parsing ------------------------------------------------------------------------------ */

static const char *const top_keys[] = {
    "format_version", "name",       "columns", "time_column", "partition_by", "order_by",
    "dedup_key",      "version",    "deleted", "dedup_window", "rollups",     "retention",    "lateness",
    "late_policy",    "late_bound", "unknown_fields", "storage", "kafka",
};
static const char *const column_keys[] = {"name", "type", "default"};
static const char *const rollup_keys[] = {"interval", "dimensions", "metrics"};
static const char *const metric_keys[] = {"fn", "column"};
static const char *const retention_keys[] = {"raw", "1m", "1h"};
static const char *const storage_keys[] = {"compression", "memtable_rows", "memtable_bytes",
                                           "memtable_age", "memory_budget"};
static const char *const kafka_keys[] = {"brokers", "topic", "group", "start", "offset_reset", "properties"};

/* Indexed by strata_partition_by, strata_codec, strata_late_policy, strata_unknown_fields,
 * strata_kafka_start, strata_kafka_reset: the words of the format, shared with the dump. */
const char *const schema_json_partition_names[3] = {"day", "hour", "month"};
const char *const schema_json_codec_names[3] = {"none", "lz4", "zstd"};
const char *const schema_json_late_policy_names[2] = {"update", "dead-letter"};
const char *const schema_json_unknown_fields_names[2] = {"ignore", "reject"};
const char *const schema_json_start_names[2] = {"earliest", "latest"};
const char *const schema_json_reset_names[2] = {"stop", "accept"};

/* A real default d (at path) for integer column c into c->def_i: an integral real such as
 * 2.0, 1e3 or -0.0 is that integer, as ingest takes it. jansson keeps only the double,
 * which holds every integer below 2^53 exactly; from 2^53 on it is refused, asking for an
 * integer. */
static int parse_integral_default(strata_err *err, json_t *d, const char *path, strata_column *c)
{
    const char *tn = strata_type_name(c->type);
    char num[32];
    jutil_real_text(json_real_value(d), num, sizeof num);
    switch (jutil_real_integer(c->type, json_real_value(d), &c->def_i)) {
    case JUTIL_REAL_INT: return 0;
    case JUTIL_REAL_FRACTION:
        return strata_err_set(err, STRATA_EINVAL, "%s: %s is not an integer (the column is %s)",
                              path, num, tn);
    case JUTIL_REAL_NEGATIVE:
        return strata_err_set(err, STRATA_EINVAL,
                              "%s: %s is negative; a uint64 default must be at least 0", path, num);
    case JUTIL_REAL_RANGE:
        return strata_err_set(err, STRATA_EINVAL, "%s: %s is out of %s range", path, num, tn);
    case JUTIL_REAL_INEXACT:
    default:
        return strata_err_set(err, STRATA_EINVAL,
                              "%s: %s is too large to be read exactly from a number with a "
                              "fraction or exponent (2^53 or more; the column is %s); write the "
                              "default as an integer%s",
                              path, num, tn, c->type == STRATA_UINT64 ? " or a decimal string" : "");
    }
}

static int parse_default(strata_err *err, json_t *d, const char *path, strata_column *c)
{
    const char *tn = strata_type_name(c->type);
    char expected[96];
    if (json_is_real(d) && (c->type == STRATA_TIMESTAMP || c->type == STRATA_INT64 ||
                            c->type == STRATA_INT32 || c->type == STRATA_UINT64))
        return parse_integral_default(err, d, path, c);
    switch (c->type) {
    case STRATA_TIMESTAMP:
    case STRATA_INT64:
    case STRATA_INT32:
        if (!json_is_integer(d)) {
            snprintf(expected, sizeof expected, "an integer (the column is %s)", tn);
            return jutil_type_error(err, path, expected, d);
        }
        c->def_i = json_integer_value(d);
        if (c->type == STRATA_INT32 && (c->def_i < INT32_MIN || c->def_i > INT32_MAX))
            return strata_err_set(err, STRATA_EINVAL, "%s: %" PRId64 " is out of int32 range", path,
                                  c->def_i);
        return 0;
    case STRATA_UINT64:
        if (json_is_integer(d)) {
            if (json_integer_value(d) < 0)
                return strata_err_set(err, STRATA_EINVAL,
                                      "%s: %" JSON_INTEGER_FORMAT " is negative; a uint64 default "
                                      "must be at least 0",
                                      path, json_integer_value(d));
            c->def_i = json_integer_value(d);
            return 0;
        }
        if (json_is_string(d)) {
            uint64_t u;
            if (!text_parse_u64(json_string_value(d), &u))
                return strata_err_set(err, STRATA_EINVAL,
                                      "%s: '%.64s' is not a uint64 (decimal digits, at most "
                                      "18446744073709551615)",
                                      path, json_string_value(d));
            c->def_i = (int64_t)u;
            return 0;
        }
        return jutil_type_error(err, path, "an integer or a decimal string (the column is uint64)", d);
    case STRATA_FLOAT64:
        if (json_is_number(d)) {
            c->def_f = json_number_value(d);
            return 0;
        }
        if (json_is_string(d)) {
            const char *v = json_string_value(d);
            if (strcmp(v, "NaN") == 0)
                c->def_f = NAN;
            else if (strcmp(v, "Infinity") == 0)
                c->def_f = INFINITY;
            else if (strcmp(v, "-Infinity") == 0)
                c->def_f = -INFINITY;
            else
                return strata_err_set(err, STRATA_EINVAL,
                                      "%s: '%.64s' is not a float64 (a number, or \"NaN\", "
                                      "\"Infinity\", \"-Infinity\")",
                                      path, v);
            return 0;
        }
        return jutil_type_error(err, path, "a number (the column is float64)", d);
    case STRATA_BOOL:
        if (!json_is_boolean(d))
            return jutil_type_error(err, path, "true or false (the column is bool)", d);
        c->def_i = json_is_true(d) ? 1 : 0;
        return 0;
    case STRATA_STRING:
        if (!json_is_string(d))
            return jutil_type_error(err, path, "a string (the column is string)", d);
        if (json_string_length(d) >= sizeof c->def_s)
            return strata_err_set(err, STRATA_EINVAL, "%s: too long (%zu bytes, at most %zu)", path,
                                  json_string_length(d), sizeof c->def_s - 1);
        memcpy(c->def_s, json_string_value(d), json_string_length(d) + 1);
        return 0;
    case STRATA_BYTES: break; /* never a table column (strata_type_parse refuses it) */
    }
    return strata_err_set(err, STRATA_EINVAL, "%s: column type is invalid", path);
}

static int parse_column(strata_err *err, json_t *v, size_t i, strata_column *c)
{
    char path[PATHCAP], sub[PATHCAP];
    int rc;
    jutil_path_index(path, PATHCAP, "columns", i);
    if (!json_is_object(v))
        return jutil_type_error(err, path, "an object", v);
    if ((rc = jutil_check_keys(err, v, path, column_keys, NELEM(column_keys))) < 0)
        return rc;
    if ((rc = get_str(err, v, path, "name", c->name, sizeof c->name)) < 0)
        return rc;
    if (rc == 0)
        return strata_err_set(err, STRATA_EINVAL, "%s.name: required", path);
    jutil_path_key(sub, PATHCAP, path, "type");
    json_t *t = jutil_member(v, "type");
    if (!t)
        return strata_err_set(err, STRATA_EINVAL, "%s: required", sub);
    if (!json_is_string(t))
        return jutil_type_error(err, sub, "a string", t);
    c->type = strata_type_parse(json_string_value(t));
    if (!c->type)
        return strata_err_set(err, STRATA_EINVAL,
                              "%s: unknown type '%.64s' (expected one of timestamp, int64, "
                              "uint64, int32, float64, bool, string)",
                              sub, json_string_value(t));
    json_t *d = jutil_member(v, "default");
    if (d) {
        jutil_path_key(sub, PATHCAP, path, "default");
        if ((rc = parse_default(err, d, sub, c)) < 0)
            return rc;
    }
    return 0;
}

static int parse_columns(strata_err *err, json_t *root, strata_schema *s)
{
    json_t *cols = jutil_member(root, "columns");
    if (!cols)
        return strata_err_set(err, STRATA_EINVAL, "columns: required");
    if (!json_is_array(cols))
        return jutil_type_error(err, "columns", "an array", cols);
    size_t n = json_array_size(cols);
    if (n == 0)
        return strata_err_set(err, STRATA_EINVAL, "columns: a table needs at least one column");
    if (n > STRATA_MAX_COLUMNS)
        return strata_err_set(err, STRATA_EINVAL, "columns: %zu columns, at most %d allowed", n,
                              STRATA_MAX_COLUMNS);
    for (size_t i = 0; i < n; i++) {
        int rc = parse_column(err, json_array_get(cols, i), i, &s->cols[i]);
        if (rc < 0)
            return rc;
        s->ncols = (int)i + 1;
    }
    return 0;
}

/* Reads the array of column names at obj[key] (path) into idx[], at most max entries. */
static int parse_column_list(strata_err *err, const strata_schema *s, json_t *arr, const char *path,
                             int *idx, int *count)
{
    if (!json_is_array(arr))
        return jutil_type_error(err, path, "an array of column names", arr);
    size_t n = json_array_size(arr);
    if (n > (size_t)s->ncols)
        return strata_err_set(err, STRATA_EINVAL, "%s: %zu entries, but the table has %d columns",
                              path, n, s->ncols);
    for (size_t i = 0; i < n; i++) {
        char p[PATHCAP];
        jutil_path_index(p, PATHCAP, path, i);
        int rc = get_column(err, s, json_array_get(arr, i), p, &idx[i]);
        if (rc < 0)
            return rc;
    }
    *count = (int)n;
    return 0;
}

static int parse_metric(strata_err *err, const strata_schema *s, json_t *v, const char *path,
                        strata_rollup_metric *m)
{
    char sub[PATHCAP];
    int rc;
    if (!json_is_object(v))
        return jutil_type_error(err, path, "an object", v);
    if ((rc = jutil_check_keys(err, v, path, metric_keys, NELEM(metric_keys))) < 0)
        return rc;
    jutil_path_key(sub, PATHCAP, path, "fn");
    json_t *fn = jutil_member(v, "fn");
    if (!fn)
        return strata_err_set(err, STRATA_EINVAL, "%s: required", sub);
    if (!json_is_string(fn))
        return jutil_type_error(err, sub, "a string", fn);
    m->fn = strata_agg_parse(json_string_value(fn));
    if (!m->fn)
        return strata_err_set(err, STRATA_EINVAL,
                              "%s: unknown function '%.64s' (expected one of count, sum, min, "
                              "max, uniq, quantile)",
                              sub, json_string_value(fn));
    m->column = -1;
    jutil_path_key(sub, PATHCAP, path, "column");
    json_t *col = jutil_member(v, "column");
    if (col) {
        if (m->fn == STRATA_AGG_COUNT)
            return strata_err_set(err, STRATA_EINVAL, "%s: count takes no column", sub);
        return get_column(err, s, col, sub, &m->column);
    }
    if (m->fn != STRATA_AGG_COUNT)
        return strata_err_set(err, STRATA_EINVAL, "%s: required for %s", sub,
                              json_string_value(fn));
    return 0;
}

static int parse_rollup(strata_err *err, const strata_schema *s, json_t *v, size_t r,
                        strata_rollup *ru)
{
    char path[PATHCAP], sub[PATHCAP];
    int rc;
    jutil_path_index(path, PATHCAP, "rollups", r);
    if (!json_is_object(v))
        return jutil_type_error(err, path, "an object", v);
    if ((rc = jutil_check_keys(err, v, path, rollup_keys, NELEM(rollup_keys))) < 0)
        return rc;
    if ((rc = get_duration(err, v, path, "interval", &ru->interval_ms)) < 0)
        return rc;
    if (rc == 0)
        return strata_err_set(err, STRATA_EINVAL, "%s.interval: required (such as 1m or 1h)", path);
    json_t *dims = jutil_member(v, "dimensions");
    if (dims) {
        jutil_path_key(sub, PATHCAP, path, "dimensions");
        if ((rc = parse_column_list(err, s, dims, sub, ru->dims, &ru->ndims)) < 0)
            return rc;
    }
    jutil_path_key(sub, PATHCAP, path, "metrics");
    json_t *metrics = jutil_member(v, "metrics");
    if (!metrics)
        return strata_err_set(err, STRATA_EINVAL, "%s: required", sub);
    if (!json_is_array(metrics))
        return jutil_type_error(err, sub, "an array", metrics);
    size_t n = json_array_size(metrics);
    if (n < 1 || n > STRATA_MAX_ROLLUP_METRICS)
        return strata_err_set(err, STRATA_EINVAL, "%s: %zu metrics, between 1 and %d allowed", sub,
                              n, STRATA_MAX_ROLLUP_METRICS);
    for (size_t m = 0; m < n; m++) {
        char mp[PATHCAP];
        jutil_path_index(mp, PATHCAP, sub, m);
        if ((rc = parse_metric(err, s, json_array_get(metrics, m), mp, &ru->metrics[m])) < 0)
            return rc;
    }
    ru->nmetrics = (int)n;
    return 0;
}

static int parse_rollups(strata_err *err, json_t *root, strata_schema *s)
{
    json_t *arr = jutil_member(root, "rollups");
    if (!arr)
        return 0;
    if (!json_is_array(arr))
        return jutil_type_error(err, "rollups", "an array", arr);
    size_t n = json_array_size(arr);
    if (n > STRATA_MAX_ROLLUPS)
        return strata_err_set(err, STRATA_EINVAL, "rollups: %zu rollups, at most %d allowed", n,
                              STRATA_MAX_ROLLUPS);
    for (size_t r = 0; r < n; r++) {
        int rc = parse_rollup(err, s, json_array_get(arr, r), r, &s->rollups[r]);
        if (rc < 0)
            return rc;
    }
    s->nrollups = (int)n;
    return 0;
}

static int parse_retention(strata_err *err, json_t *root, strata_schema *s)
{
    json_t *ret = jutil_member(root, "retention");
    if (!ret)
        return 0;
    if (!json_is_object(ret))
        return jutil_type_error(err, "retention", "an object", ret);
    int rc = jutil_check_keys(err, ret, "retention", retention_keys, NELEM(retention_keys));
    if (rc < 0)
        return rc;
    int64_t *dst[] = {&s->retention_raw_ms, &s->retention_1m_ms, &s->retention_1h_ms};
    for (size_t i = 0; i < NELEM(retention_keys); i++) {
        if ((rc = get_duration(err, ret, "retention", retention_keys[i], dst[i])) < 0)
            return rc;
        if (rc == 1 && *dst[i] == 0)
            return strata_err_set(err, STRATA_EINVAL,
                                  "retention.%s: must be longer than 0 (leave it out or use null "
                                  "to keep forever)",
                                  retention_keys[i]);
    }
    return 0;
}

static int parse_storage(strata_err *err, json_t *root, strata_schema *s)
{
    json_t *st = jutil_member(root, "storage");
    if (!st)
        return 0;
    if (!json_is_object(st))
        return jutil_type_error(err, "storage", "an object", st);
    int rc, e;
    if ((rc = jutil_check_keys(err, st, "storage", storage_keys, NELEM(storage_keys))) < 0)
        return rc;
    if ((rc = get_enum(err, st, "storage", "compression", schema_json_codec_names,
                       NELEM(schema_json_codec_names), &e)) < 0)
        return rc;
    if (rc == 1)
        s->codec = (strata_codec)e;
    json_t *rows = jutil_member(st, "memtable_rows");
    if (rows) {
        if (!json_is_integer(rows))
            return jutil_type_error(err, "storage.memtable_rows", "an integer", rows);
        if (json_integer_value(rows) < 1)
            return strata_err_set(err, STRATA_EINVAL,
                                  "storage.memtable_rows: must be between 1 and 16777216");
        s->memtable_max_rows = (uint64_t)json_integer_value(rows);
    }
    if ((rc = get_size(err, st, "storage", "memtable_bytes", &s->memtable_max_bytes)) < 0)
        return rc;
    if ((rc = get_duration(err, st, "storage", "memtable_age", &s->memtable_max_age_ms)) < 0)
        return rc;
    if ((rc = get_size(err, st, "storage", "memory_budget", &s->memory_budget_bytes)) < 0)
        return rc;
    return 0;
}

static bool kafka_topic_ok(const char *t)
{
    for (; *t; t++)
        if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') || (*t >= '0' && *t <= '9') ||
              *t == '.' || *t == '_' || *t == '-'))
            return false;
    return true;
}

static int parse_kafka_props(strata_err *err, json_t *props, strata_kafka *k)
{
    if (!json_is_object(props))
        return jutil_type_error(err, "kafka.properties", "an object", props);
    if (json_object_size(props) > STRATA_MAX_KAFKA_PROPS)
        return strata_err_set(err, STRATA_EINVAL, "kafka.properties: %zu properties, at most %d",
                              json_object_size(props), STRATA_MAX_KAFKA_PROPS);
    const char *key;
    json_t *v;
    json_object_foreach(props, key, v)
    {
        strata_kafka_prop *p = &k->props[k->nprops];
        char path[PATHCAP];
        snprintf(path, sizeof path, "kafka.properties[\"%.64s\"]", key);
        size_t kl = strlen(key);
        if (kl == 0)
            return strata_err_set(err, STRATA_EINVAL, "kafka.properties: empty property name");
        if (kl >= sizeof p->key)
            return strata_err_set(err, STRATA_EINVAL, "%s: name too long (%zu bytes, at most %zu)",
                                  path, kl, sizeof p->key - 1);
        char text[64];
        const char *val;
        size_t vl;
        switch (json_typeof(v)) {
        case JSON_STRING:
            val = json_string_value(v);
            vl = json_string_length(v);
            break;
        case JSON_INTEGER:
            snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            val = text;
            vl = strlen(text);
            break;
        case JSON_REAL:
            text_double_shortest(json_real_value(v), text, sizeof text);
            val = text;
            vl = strlen(text);
            break;
        case JSON_TRUE:
        case JSON_FALSE:
            val = json_is_true(v) ? "true" : "false";
            vl = strlen(val);
            break;
        default: return jutil_type_error(err, path, "a string, number or boolean", v);
        }
        if (vl >= sizeof p->value)
            return strata_err_set(err, STRATA_EINVAL, "%s: value too long (%zu bytes, at most %zu)",
                                  path, vl, sizeof p->value - 1);
        memcpy(p->key, key, kl + 1);
        memcpy(p->value, val, vl + 1);
        k->nprops++;
    }
    return 0;
}

static int parse_kafka(strata_err *err, json_t *root, strata_schema *s)
{
    json_t *kj = jutil_member(root, "kafka");
    if (!kj)
        return 0;
    if (!json_is_object(kj))
        return jutil_type_error(err, "kafka", "an object", kj);
    strata_kafka *k = &s->kafka;
    int rc, e;
    if ((rc = jutil_check_keys(err, kj, "kafka", kafka_keys, NELEM(kafka_keys))) < 0)
        return rc;
    k->enabled = true;
    if ((rc = get_str(err, kj, "kafka", "brokers", k->brokers, sizeof k->brokers)) < 0)
        return rc;
    if ((rc = get_str(err, kj, "kafka", "topic", k->topic, sizeof k->topic)) < 0)
        return rc;
    if (rc == 0)
        return strata_err_set(err, STRATA_EINVAL, "kafka.topic: required");
    if (!k->topic[0])
        return strata_err_set(err, STRATA_EINVAL, "kafka.topic: must not be empty");
    if (!kafka_topic_ok(k->topic))
        return strata_err_set(err, STRATA_EINVAL,
                              "kafka.topic: '%s' is not a valid topic name (letters, digits, '.', "
                              "'_' and '-')",
                              k->topic);
    if ((rc = get_str(err, kj, "kafka", "group", k->group, sizeof k->group)) < 0)
        return rc;
    if (rc == 0)
        snprintf(k->group, sizeof k->group, "strata-%s", s->name);
    else if (!k->group[0])
        return strata_err_set(err, STRATA_EINVAL, "kafka.group: must not be empty");
    if ((rc = get_enum(err, kj, "kafka", "start", schema_json_start_names, NELEM(schema_json_start_names), &e)) < 0)
        return rc;
    if (rc == 1)
        k->start_latest = e == 1;
    if ((rc = get_enum(err, kj, "kafka", "offset_reset", schema_json_reset_names, NELEM(schema_json_reset_names), &e)) < 0)
        return rc;
    if (rc == 1)
        k->reset_accept = e == 1;
    json_t *props = jutil_member(kj, "properties");
    if (props && (rc = parse_kafka_props(err, props, k)) < 0)
        return rc;
    return 0;
}

static int parse_name(strata_err *err, json_t *root, const char *name, strata_schema *s)
{
    const char *src = name;
    json_t *jn = jutil_member(root, "name");
    if (jn) {
        if (!json_is_string(jn))
            return jutil_type_error(err, "name", "a string", jn);
        src = json_string_value(jn);
        if (name && strcmp(src, name) != 0)
            return strata_err_set(err, STRATA_EINVAL,
                                  "name: '%.64s' does not match the table name '%.64s' in the path",
                                  src, name);
    }
    if (!src)
        return strata_err_set(err, STRATA_EINVAL, "name: required");
    size_t n = strlen(src);
    if (n >= sizeof s->name)
        return strata_err_set(err, STRATA_EINVAL, "name: too long (%zu bytes, at most %zu)", n,
                              sizeof s->name - 1);
    memcpy(s->name, src, n + 1);
    return 0;
}

static int parse_root(strata_err *err, json_t *root, const char *name, strata_schema *s)
{
    int rc, e;
    if (!json_is_object(root))
        return strata_err_set(err, STRATA_EINVAL, "schema: expected a JSON object, got %s",
                              jutil_kind(root));
    /* The version first: a newer file may well have keys this build does not know. */
    json_t *ver = jutil_member(root, "format_version");
    if (ver) {
        if (!json_is_integer(ver))
            return jutil_type_error(err, "format_version", "an integer", ver);
        if (json_integer_value(ver) != SCHEMA_JSON_FORMAT_VERSION)
            return strata_err_set(err, STRATA_EVERSION,
                                  "format_version: %" JSON_INTEGER_FORMAT
                                  " is not supported (this build reads version %d)",
                                  json_integer_value(ver), SCHEMA_JSON_FORMAT_VERSION);
    }
    if ((rc = jutil_check_keys(err, root, "", top_keys, NELEM(top_keys))) < 0)
        return rc;
    if ((rc = parse_name(err, root, name, s)) < 0)
        return rc;
    if ((rc = parse_columns(err, root, s)) < 0)
        return rc;

    json_t *tc = jutil_member(root, "time_column");
    if (!tc)
        return strata_err_set(err, STRATA_EINVAL, "time_column: required");
    if ((rc = get_column(err, s, tc, "time_column", &s->time_col)) < 0)
        return rc;
    if ((rc = get_enum(err, root, "", "partition_by", schema_json_partition_names, NELEM(schema_json_partition_names),
                       &e)) < 0)
        return rc;
    if (rc == 1)
        s->partition_by = (strata_partition_by)e;
    json_t *ob = jutil_member(root, "order_by");
    if (ob) {
        if ((rc = parse_column_list(err, s, ob, "order_by", s->order_by, &s->norder)) < 0)
            return rc;
        if (s->norder == 0)
            return strata_err_set(err, STRATA_EINVAL,
                                  "order_by: must list at least one column (leave it out for the "
                                  "default)");
    }
    json_t *dk = jutil_member(root, "dedup_key");
    if (dk && json_is_string(dk)) {
        if ((rc = get_column(err, s, dk, "dedup_key", &s->dedup_cols[0])) < 0)
            return rc;
        s->ndedup = 1;
    } else if (dk) {
        int idx[STRATA_MAX_COLUMNS], n = 0;
        if (!json_is_array(dk))
            return jutil_type_error(err, "dedup_key", "a column name or an array of column names", dk);
        if ((rc = parse_column_list(err, s, dk, "dedup_key", idx, &n)) < 0)
            return rc;
        if (n == 0 || n > STRATA_MAX_DEDUP_COLS)
            return strata_err_set(err, STRATA_EINVAL, "dedup_key: %d columns; a key has 1 to %d", n,
                                  STRATA_MAX_DEDUP_COLS);
        memcpy(s->dedup_cols, idx, sizeof *idx * (size_t)n);
        s->ndedup = n;
    }
    if ((rc = get_column_ref(err, s, root, "version", &s->version_col)) < 0 ||
        (rc = get_column_ref(err, s, root, "deleted", &s->deleted_col)) < 0)
        return rc;
    if ((rc = parse_rollups(err, root, s)) < 0 || (rc = parse_retention(err, root, s)) < 0)
        return rc;
    if ((rc = get_duration(err, root, "", "lateness", &s->lateness_ms)) < 0)
        return rc;
    if ((rc = get_duration(err, root, "", "dedup_window", &s->dedup_window_ms)) < 0)
        return rc;
    if (rc == 1 && s->ndedup == 0)
        return strata_err_set(err, STRATA_EINVAL, "dedup_window: needs a dedup_key (it bounds the memory of "
                                                  "the dedup key index)");
    if ((rc = get_enum(err, root, "", "late_policy", schema_json_late_policy_names, NELEM(schema_json_late_policy_names),
                       &e)) < 0)
        return rc;
    if (rc == 1)
        s->late_policy = (strata_late_policy)e;
    if ((rc = get_duration(err, root, "", "late_bound", &s->late_bound_ms)) < 0)
        return rc;
    if (rc == 1 && s->late_bound_ms == 0)
        return strata_err_set(err, STRATA_EINVAL,
                              "late_bound: must be longer than 0 (leave it out or use null for "
                              "no bound)");
    if ((rc = get_enum(err, root, "", "unknown_fields", schema_json_unknown_fields_names,
                       NELEM(schema_json_unknown_fields_names), &e)) < 0)
        return rc;
    if (rc == 1)
        s->unknown_fields = (strata_unknown_fields)e;
    if ((rc = parse_storage(err, root, s)) < 0 || (rc = parse_kafka(err, root, s)) < 0)
        return rc;
    return 0;
}

int schema_json_parse_named(const char *text, size_t len, const char *name, strata_schema *out,
                            strata_err *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(text ? text : "", text ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
    strata_schema *s = NULL;
    int rc;
    if (!root) {
        /* JSON integers are read as int64: point at the way to write larger uint64s. */
        const char *hint = json_error_code(&jerr) == json_error_numeric_overflow
                               ? " (write integers above 9223372036854775807 as decimal strings)"
                               : "";
        if (jerr.line > 0)
            rc = strata_err_set(err, STRATA_EINVAL, "malformed JSON at line %d column %d: %s%s",
                                jerr.line, jerr.column, jerr.text, hint);
        else
            rc = strata_err_set(err, STRATA_EINVAL, "malformed JSON: %s%s", jerr.text, hint);
        goto done;
    }
    s = malloc(sizeof *s);
    if (!s) {
        rc = strata_err_set(err, STRATA_ENOMEM, "schema: out of memory");
        goto done;
    }
    schema_init(s);
    rc = parse_root(err, root, name, s);
    if (rc == 0) {
        schema_apply_default_order(s);
        rc = schema_validate(s, err);
    }
    if (rc == 0)
        memcpy(out, s, sizeof *s);
done:
    if (rc < 0 && err)
        text_utf8_scrub(err->msg);
    free(s);
    json_decref(root);
    return rc;
}

int schema_json_parse(const char *text, size_t len, strata_schema *out, strata_err *err)
{
    return schema_json_parse_named(text, len, NULL, out, err);
}

int schema_json_parse_file(const char *path, strata_schema *out, strata_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return strata_err_set(err, e == ENOENT ? STRATA_ENOTFOUND : STRATA_EIO,
                              "%s: cannot open: %s", path, strerror(e));
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len == cap) {
            if (cap > SCHEMA_JSON_MAX_FILE) {
                rc = strata_err_set(err, STRATA_EINVAL, "%s: larger than %u bytes", path,
                                    SCHEMA_JSON_MAX_FILE);
                goto done;
            }
            size_t ncap = cap ? cap * 2 : 16384;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                rc = strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", path);
                goto done;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = strata_err_set(err, STRATA_EIO, "%s: read failed: %s", path, strerror(errno));
            goto done;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    if (len > SCHEMA_JSON_MAX_FILE) {
        rc = strata_err_set(err, STRATA_EINVAL, "%s: larger than %u bytes", path,
                            SCHEMA_JSON_MAX_FILE);
        goto done;
    }
    rc = schema_json_parse(buf, len, out, err);
    if (rc < 0)
        strata_err_prefix(err, "%s", path);
done:
    free(buf);
    close(fd);
    return rc;
}
