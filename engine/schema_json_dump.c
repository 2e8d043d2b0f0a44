/*
 * schema_json_dump.c — a table schema to its JSON text (format in schema_json.h), and
 * schema.json written to disk.
 *
 * Dumping builds the jansson tree in the fixed key order of the format table and writes
 * every setting; it is the inverse of parsing (schema_json.c), which the unit tests check
 * field by field. A schema that cannot be written (a name that is not UTF-8, an index out
 * of range) is refused with what stands in the way, before anything is written. Saving
 * writes the whole file atomically (engine/fs.h).
 */
#include "engine/schema_json.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/fs.h"
#include "engine/text.h"
#include "engine/units.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- dumping ------------------------------------------------------------------------------ */

static bool str_ok(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    return n < cap && text_utf8_valid(s, n);
}

static bool col_ref_ok(const strata_schema *s, int c, bool optional)
{
    return (optional && c == -1) || (c >= 0 && c < s->ncols);
}

/* NULL when s can be dumped; else what stands in the way. */
static const char *dump_problem(const strata_schema *s)
{
    if (!str_ok(s->name, sizeof s->name))
        return "name: not a NUL-terminated UTF-8 string";
    if (s->ncols < 0 || s->ncols > STRATA_MAX_COLUMNS)
        return "columns: count out of range";
    for (int i = 0; i < s->ncols; i++) {
        const strata_column *c = &s->cols[i];
        if (!str_ok(c->name, sizeof c->name))
            return "columns: a name is not a NUL-terminated UTF-8 string";
        if (!strata_type_name(c->type))
            return "columns: an invalid type";
        if (c->type == STRATA_STRING && !str_ok(c->def_s, sizeof c->def_s))
            return "columns: a default is not a NUL-terminated UTF-8 string";
    }
    if (!col_ref_ok(s, s->time_col, false) || !col_ref_ok(s, s->version_col, true) || !col_ref_ok(s, s->deleted_col, true))
        return "a column index is out of range";
    if (s->norder < 0 || s->norder > STRATA_MAX_COLUMNS)
        return "order_by: count out of range";
    if (s->ndedup < 0 || s->ndedup > STRATA_MAX_DEDUP_COLS)
        return "dedup_key: count out of range";
    for (int i = 0; i < s->ndedup; i++)
        if (!col_ref_ok(s, s->dedup_cols[i], false))
            return "dedup_key: a column index is out of range";
    for (int i = 0; i < s->norder; i++)
        if (!col_ref_ok(s, s->order_by[i], false))
            return "order_by: a column index is out of range";
    if ((unsigned)s->partition_by >= NELEM(schema_json_partition_names) ||
        (unsigned)s->codec >= NELEM(schema_json_codec_names) ||
        (unsigned)s->late_policy >= NELEM(schema_json_late_policy_names) ||
        (unsigned)s->unknown_fields >= NELEM(schema_json_unknown_fields_names))
        return "an enumeration holds an invalid value";
    if (s->nrollups < 0 || s->nrollups > STRATA_MAX_ROLLUPS)
        return "rollups: count out of range";
    for (int r = 0; r < s->nrollups; r++) {
        const strata_rollup *ru = &s->rollups[r];
        if (ru->ndims < 0 || ru->ndims > STRATA_MAX_COLUMNS || ru->nmetrics < 0 ||
            ru->nmetrics > STRATA_MAX_ROLLUP_METRICS)
            return "rollups: a count is out of range";
        for (int d = 0; d < ru->ndims; d++)
            if (!col_ref_ok(s, ru->dims[d], false))
                return "rollups: a dimension index is out of range";
        for (int m = 0; m < ru->nmetrics; m++) {
            if (!strata_agg_name(ru->metrics[m].fn))
                return "rollups: an invalid metric function";
            if (!col_ref_ok(s, ru->metrics[m].column, true))
                return "rollups: a metric column index is out of range";
        }
    }
    if (s->kafka.enabled) {
        const strata_kafka *k = &s->kafka;
        if (!str_ok(k->brokers, sizeof k->brokers) || !str_ok(k->topic, sizeof k->topic) ||
            !str_ok(k->group, sizeof k->group))
            return "kafka: a string is not NUL-terminated UTF-8";
        if (k->nprops < 0 || k->nprops > STRATA_MAX_KAFKA_PROPS)
            return "kafka.properties: count out of range";
        for (int i = 0; i < k->nprops; i++)
            if (!str_ok(k->props[i].key, sizeof k->props[i].key) ||
                !str_ok(k->props[i].value, sizeof k->props[i].value))
                return "kafka.properties: a string is not NUL-terminated UTF-8";
    }
    return NULL;
}

/* Builders record any failure in *bad instead of checking at every call; a NULL value
 * (allocation failure) is handled by jansson without leaks. */
static void put(json_t *obj, const char *key, json_t *v, bool *bad)
{
    if (json_object_set_new(obj, key, v) != 0)
        *bad = true;
}

static void append(json_t *arr, json_t *v, bool *bad)
{
    if (json_array_append_new(arr, v) != 0)
        *bad = true;
}

static json_t *jstr(const char *s, size_t cap) { return json_stringn(s, strnlen(s, cap)); }

static json_t *jduration(int64_t ms)
{
    char buf[32];
    units_format_duration_ms(ms, buf, sizeof buf);
    return json_string(buf);
}

static json_t *jduration_opt(int64_t ms) { return ms ? jduration(ms) : json_null(); }

static json_t *jbytes(uint64_t n)
{
    char buf[32];
    units_format_bytes(n, buf, sizeof buf);
    return json_string(buf);
}

static json_t *jcolumn_ref(const strata_schema *s, int c)
{
    return c < 0 ? json_null() : jstr(s->cols[c].name, sizeof s->cols[c].name);
}

static json_t *jdefault(const strata_column *c)
{
    switch (c->type) {
    case STRATA_TIMESTAMP:
    case STRATA_INT64:
    case STRATA_INT32: return json_integer((json_int_t)c->def_i);
    case STRATA_UINT64:
        if (c->def_i >= 0)
            return json_integer((json_int_t)c->def_i);
        else {
            char buf[32];
            snprintf(buf, sizeof buf, "%" PRIu64, (uint64_t)c->def_i);
            return json_string(buf);
        }
    case STRATA_FLOAT64:
        if (isnan(c->def_f))
            return json_string("NaN");
        if (isinf(c->def_f))
            return json_string(c->def_f > 0 ? "Infinity" : "-Infinity");
        return json_real(c->def_f);
    case STRATA_BOOL: return json_boolean(c->def_i != 0);
    case STRATA_STRING: return jstr(c->def_s, sizeof c->def_s);
    case STRATA_BYTES: break; /* never a table column */
    }
    return NULL;
}

static json_t *jcolumns(const strata_schema *s, bool *bad)
{
    json_t *arr = json_array();
    for (int i = 0; i < s->ncols; i++) {
        const strata_column *c = &s->cols[i];
        json_t *o = json_object();
        put(o, "name", jstr(c->name, sizeof c->name), bad);
        put(o, "type", json_string(strata_type_name(c->type)), bad);
        put(o, "default", jdefault(c), bad);
        append(arr, o, bad);
    }
    return arr;
}

static json_t *jcolumn_list(const strata_schema *s, const int *idx, int n, bool *bad)
{
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        append(arr, jcolumn_ref(s, idx[i]), bad);
    return arr;
}

static json_t *jrollups(const strata_schema *s, bool *bad)
{
    json_t *arr = json_array();
    for (int r = 0; r < s->nrollups; r++) {
        const strata_rollup *ru = &s->rollups[r];
        json_t *o = json_object();
        put(o, "interval", jduration(ru->interval_ms), bad);
        put(o, "dimensions", jcolumn_list(s, ru->dims, ru->ndims, bad), bad);
        json_t *ms = json_array();
        for (int m = 0; m < ru->nmetrics; m++) {
            json_t *mo = json_object();
            put(mo, "fn", json_string(strata_agg_name(ru->metrics[m].fn)), bad);
            if (ru->metrics[m].column >= 0)
                put(mo, "column", jcolumn_ref(s, ru->metrics[m].column), bad);
            append(ms, mo, bad);
        }
        put(o, "metrics", ms, bad);
        append(arr, o, bad);
    }
    return arr;
}

static json_t *jkafka(const strata_kafka *k, bool *bad)
{
    if (!k->enabled)
        return json_null();
    json_t *o = json_object();
    put(o, "brokers", jstr(k->brokers, sizeof k->brokers), bad);
    put(o, "topic", jstr(k->topic, sizeof k->topic), bad);
    put(o, "group", jstr(k->group, sizeof k->group), bad);
    put(o, "start", json_string(schema_json_start_names[k->start_latest ? 1 : 0]), bad);
    put(o, "offset_reset", json_string(schema_json_reset_names[k->reset_accept ? 1 : 0]), bad);
    json_t *props = json_object();
    for (int i = 0; i < k->nprops; i++) {
        char key[sizeof k->props[i].key];
        size_t kl = strnlen(k->props[i].key, sizeof key);
        memcpy(key, k->props[i].key, kl);
        key[kl] = 0;
        put(props, key, jstr(k->props[i].value, sizeof k->props[i].value), bad);
    }
    put(o, "properties", props, bad);
    return o;
}

char *schema_json_dump(const strata_schema *s)
{
    if (dump_problem(s))
        return NULL;
    bool bad = false;
    json_t *root = json_object();
    if (!root)
        return NULL;
    put(root, "format_version", json_integer(SCHEMA_JSON_FORMAT_VERSION), &bad);
    put(root, "name", jstr(s->name, sizeof s->name), &bad);
    put(root, "columns", jcolumns(s, &bad), &bad);
    put(root, "time_column", jcolumn_ref(s, s->time_col), &bad);
    put(root, "partition_by", json_string(schema_json_partition_names[s->partition_by]), &bad);
    put(root, "order_by", s->norder ? jcolumn_list(s, s->order_by, s->norder, &bad) : json_null(),
        &bad);
    put(root, "dedup_key",
        s->ndedup == 0   ? json_null()
        : s->ndedup == 1 ? jcolumn_ref(s, s->dedup_cols[0])
                         : jcolumn_list(s, s->dedup_cols, s->ndedup, &bad),
        &bad);
    put(root, "version", jcolumn_ref(s, s->version_col), &bad);
    put(root, "deleted", jcolumn_ref(s, s->deleted_col), &bad);
    put(root, "dedup_window", s->ndedup ? jduration(s->dedup_window_ms) : json_null(), &bad);
    put(root, "rollups", jrollups(s, &bad), &bad);
    json_t *ret = json_object();
    put(ret, "raw", jduration_opt(s->retention_raw_ms), &bad);
    put(ret, "1m", jduration_opt(s->retention_1m_ms), &bad);
    put(ret, "1h", jduration_opt(s->retention_1h_ms), &bad);
    put(root, "retention", ret, &bad);
    put(root, "lateness", jduration(s->lateness_ms), &bad);
    put(root, "late_policy", json_string(schema_json_late_policy_names[s->late_policy]), &bad);
    put(root, "late_bound", jduration_opt(s->late_bound_ms), &bad);
    put(root, "unknown_fields", json_string(schema_json_unknown_fields_names[s->unknown_fields]), &bad);
    json_t *st = json_object();
    put(st, "compression", json_string(schema_json_codec_names[s->codec]), &bad);
    put(st, "memtable_rows", json_integer((json_int_t)s->memtable_max_rows), &bad);
    put(st, "memtable_bytes", jbytes(s->memtable_max_bytes), &bad);
    put(st, "memtable_age", jduration(s->memtable_max_age_ms), &bad);
    put(st, "memory_budget", jbytes(s->memory_budget_bytes), &bad);
    put(root, "storage", st, &bad);
    put(root, "kafka", jkafka(&s->kafka, &bad), &bad);

    char *out = NULL;
    if (!bad) {
        /* json_dumpb writes into our own malloc'd buffer (whatever allocator jansson was
         * given); one more byte for the final newline and one for the NUL. */
        size_t n = json_dumpb(root, NULL, 0, JSON_INDENT(2));
        if (n > 0 && (out = malloc(n + 2)) != NULL) {
            if (json_dumpb(root, out, n, JSON_INDENT(2)) != n) {
                free(out);
                out = NULL;
            } else {
                out[n] = '\n';
                out[n + 1] = 0;
            }
        }
    }
    json_decref(root);
    return out;
}

/* ---- saving ------------------------------------------------------------------------------- */

int schema_json_save(const char *table_dir, const strata_schema *s, strata_err *err)
{
    int rc = schema_validate(s, err);
    if (rc < 0)
        return rc;
    const char *problem = dump_problem(s);
    if (problem)
        return strata_err_set(err, STRATA_EINVAL, "%s", problem);
    char path[4096], tmp[4096];
    if (fs_path(path, sizeof path, NULL, "%s/" SCHEMA_JSON_FILE, table_dir) != 0 ||
        fs_path(tmp, sizeof tmp, NULL, "%s/" SCHEMA_JSON_FILE ".tmp", table_dir) != 0)
        return strata_err_set(err, STRATA_EINVAL, "%.200s: directory path too long", table_dir);
    char *text = schema_json_dump(s);
    if (!text)
        return strata_err_set(err, STRATA_ENOMEM, "%s: out of memory", path);
    fs_failure fail;
    rc = fs_write_atomic(table_dir, path, tmp, text, strlen(text), FS_DIR_SYNC_UNCOUNTED, &fail);
    free(text);
    if (rc == 0)
        return 0;
    const char *why = strerror(fail.errnum);
    switch (fail.step) {
    case FS_STEP_CREATE:
        return strata_err_set(err, STRATA_EIO, "%s: cannot create: %s", tmp, why);
    case FS_STEP_RENAME:
        return strata_err_set(err, STRATA_EIO, "%s: rename to %s failed: %s", tmp, path, why);
    case FS_STEP_DIR_OPEN:
        return strata_err_set(err, STRATA_EIO, "%s: cannot open directory: %s", table_dir, why);
    case FS_STEP_DIR_FSYNC:
        return strata_err_set(err, STRATA_EIO, "%s: fsync of the directory failed: %s", table_dir,
                              why);
    default: /* write, fsync, close */
        return strata_err_set(err, STRATA_EIO, "%s: %s failed: %s", tmp, fs_step_name(fail.step),
                              why);
    }
}
