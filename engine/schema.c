/*
 * schema.c — schema defaults, validation, and UTC partition arithmetic.
 *
 * Validation is exhaustive and names the offending field: the JSON loader reports
 * these messages verbatim to users. Partition math uses Howard Hinnant's civil-date
 * algorithm (days <-> y/m/d) so that months and days need no libc time zone state.
 */
#include "engine/schema.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *const type_names[] = {
    [STRATA_TIMESTAMP] = "timestamp", [STRATA_INT64] = "int64", [STRATA_UINT64] = "uint64",
    [STRATA_INT32] = "int32",         [STRATA_FLOAT64] = "float64", [STRATA_BOOL] = "bool",
    [STRATA_STRING] = "string",       [STRATA_BYTES] = "bytes",
};

const char *strata_type_name(strata_type t)
{
    if ((int)t < STRATA_TIMESTAMP || (int)t > STRATA_BYTES)
        return NULL;
    return type_names[t];
}

strata_type strata_type_parse(const char *name)
{
    for (int t = STRATA_TIMESTAMP; t <= STRATA_STRING; t++)
        if (strcmp(name, type_names[t]) == 0)
            return (strata_type)t;
    return (strata_type)0;
}

static const char *const agg_names[] = {
    [STRATA_AGG_COUNT] = "count", [STRATA_AGG_SUM] = "sum",   [STRATA_AGG_MIN] = "min",
    [STRATA_AGG_MAX] = "max",     [STRATA_AGG_AVG] = "avg",   [STRATA_AGG_UNIQ] = "uniq",
    [STRATA_AGG_QUANTILE] = "quantile",
};

const char *strata_agg_name(strata_agg a)
{
    if ((int)a < STRATA_AGG_COUNT || (int)a > STRATA_AGG_QUANTILE)
        return NULL;
    return agg_names[a];
}

strata_agg strata_agg_parse(const char *name)
{
    for (int a = STRATA_AGG_COUNT; a <= STRATA_AGG_QUANTILE; a++)
        if (strcmp(name, agg_names[a]) == 0)
            return (strata_agg)a;
    return (strata_agg)0;
}

void schema_init(strata_schema *s)
{
    memset(s, 0, sizeof *s);
    s->time_col = -1;
    s->ndedup = 0;
    s->version_col = -1;
    s->deleted_col = -1;
    s->partition_by = STRATA_PART_DAY;
    s->lateness_ms = 120000;
    s->dedup_window_ms = 2 * 86400000LL;
    s->late_policy = STRATA_LATE_UPDATE;
    s->unknown_fields = STRATA_UNKNOWN_FIELDS_IGNORE;
    s->codec = STRATA_CODEC_LZ4;
    s->memtable_max_rows = 1u << 20;
    s->memtable_max_bytes = 64u << 20;
    s->memtable_max_age_ms = 1000;
    s->memory_budget_bytes = 512u << 20;
}

static bool name_ok(const char *n)
{
    size_t len = strnlen(n, STRATA_NAME_MAX);
    if (len == 0 || len >= STRATA_NAME_MAX)
        return false;
    if (!(isalpha((unsigned char)n[0]) || n[0] == '_'))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(isalnum((unsigned char)n[i]) || n[i] == '_'))
            return false;
    return true;
}

static bool col_ok(const strata_schema *s, int c)
{
    return c >= 0 && c < s->ncols;
}

int schema_validate(const strata_schema *s, strata_err *err)
{
    if (!name_ok(s->name))
        return strata_err_set(err, STRATA_EINVAL,
                              "name: '%.*s' is not a valid table name (letters, digits and '_', "
                              "not starting with a digit, at most %d characters)",
                              STRATA_NAME_MAX, s->name, STRATA_NAME_MAX - 1);
    if (s->ncols <= 0)
        return strata_err_set(err, STRATA_EINVAL, "columns: a table needs at least one column");
    if (s->ncols > STRATA_MAX_COLUMNS)
        return strata_err_set(err, STRATA_EINVAL, "columns: %d columns, at most %d allowed",
                              s->ncols, STRATA_MAX_COLUMNS);
    for (int i = 0; i < s->ncols; i++) {
        const strata_column *c = &s->cols[i];
        if (!name_ok(c->name))
            return strata_err_set(err, STRATA_EINVAL,
                                  "columns[%d].name: '%.*s' is not a valid column name", i,
                                  STRATA_NAME_MAX, c->name);
        if (!strata_type_name(c->type) || c->type == STRATA_BYTES)
            return strata_err_set(err, STRATA_EINVAL, "columns[%d].type: unknown type %d", i,
                                  (int)c->type);
        for (int j = 0; j < i; j++)
            if (strcmp(s->cols[j].name, c->name) == 0)
                return strata_err_set(err, STRATA_EINVAL,
                                      "columns[%d].name: '%s' is declared twice", i, c->name);
        if (c->type == STRATA_INT32 && (c->def_i < INT32_MIN || c->def_i > INT32_MAX))
            return strata_err_set(err, STRATA_EINVAL,
                                  "columns[%d].default: %" PRId64 " is out of int32 range", i,
                                  c->def_i);
        if (c->type == STRATA_BOOL && c->def_i != 0 && c->def_i != 1)
            return strata_err_set(err, STRATA_EINVAL, "columns[%d].default: not a bool", i);
    }
    if (!col_ok(s, s->time_col))
        return strata_err_set(err, STRATA_EINVAL, "time_column: missing or not a column");
    if (s->cols[s->time_col].type != STRATA_TIMESTAMP)
        return strata_err_set(err, STRATA_EINVAL,
                              "time_column: '%s' has type %s, it must be timestamp",
                              s->cols[s->time_col].name, strata_type_name(s->cols[s->time_col].type));
    if (s->partition_by != STRATA_PART_DAY && s->partition_by != STRATA_PART_HOUR &&
        s->partition_by != STRATA_PART_MONTH)
        return strata_err_set(err, STRATA_EINVAL, "partition_by: must be hour, day or month");
    if (s->norder < 0 || s->norder > s->ncols)
        return strata_err_set(err, STRATA_EINVAL, "order_by: %d entries for %d columns", s->norder,
                              s->ncols);
    for (int i = 0; i < s->norder; i++) {
        if (!col_ok(s, s->order_by[i]))
            return strata_err_set(err, STRATA_EINVAL, "order_by[%d]: not a column", i);
        for (int j = 0; j < i; j++)
            if (s->order_by[j] == s->order_by[i])
                return strata_err_set(err, STRATA_EINVAL, "order_by[%d]: '%s' is listed twice",
                                      i, s->cols[s->order_by[i]].name);
    }
    if (s->ndedup < 0 || s->ndedup > STRATA_MAX_DEDUP_COLS)
        return strata_err_set(err, STRATA_EINVAL, "dedup_key: at most %d columns", STRATA_MAX_DEDUP_COLS);
    bool key_has_time = false;
    for (int i = 0; i < s->ndedup; i++) {
        int c = s->dedup_cols[i];
        if (!col_ok(s, c))
            return strata_err_set(err, STRATA_EINVAL, "dedup_key[%d]: not a column", i);
        for (int j = 0; j < i; j++)
            if (s->dedup_cols[j] == c)
                return strata_err_set(err, STRATA_EINVAL, "dedup_key: '%s' is listed twice", s->cols[c].name);
        if (s->cols[c].type == STRATA_FLOAT64 || s->cols[c].type == STRATA_BOOL)
            return strata_err_set(err, STRATA_EINVAL,
                                  "dedup_key: '%s' has type %s; keys must be integer or string",
                                  s->cols[c].name, strata_type_name(s->cols[c].type));
        key_has_time |= c == s->time_col;
    }
    if (s->ndedup > 0 && !key_has_time && col_ok(s, s->time_col))
        return strata_err_set(err, STRATA_EINVAL,
                              "dedup_key: must include the time column '%s' (for example [\"%s\", \"%s\"]): "
                              "a key's rows are deduplicated within its time partition, so a key whose time "
                              "could change would leave its old row in another partition. Give every version "
                              "of a key the same time (the time it was created)",
                              s->cols[s->time_col].name, s->cols[s->dedup_cols[0]].name,
                              s->cols[s->time_col].name);
    if (s->ndedup > 0 && s->dedup_window_ms <= 0)
        return strata_err_set(err, STRATA_EINVAL, "dedup_window: must be a positive duration (such as \"2d\")");
    if (s->version_col != -1) {
        if (!col_ok(s, s->version_col))
            return strata_err_set(err, STRATA_EINVAL, "version: not a column");
        if (s->ndedup == 0)
            return strata_err_set(err, STRATA_EINVAL, "version: needs a dedup_key");
        for (int i = 0; i < s->ndedup; i++)
            if (s->version_col == s->dedup_cols[i])
                return strata_err_set(err, STRATA_EINVAL,
                                      "version: '%s' is in the dedup_key; the version must be another "
                                      "column",
                                      s->cols[s->version_col].name);
        strata_type t = s->cols[s->version_col].type;
        if (!strata_type_is_int(t) || t == STRATA_BOOL)
            return strata_err_set(err, STRATA_EINVAL,
                                  "version: '%s' has type %s; versions must be integers or "
                                  "timestamps",
                                  s->cols[s->version_col].name, strata_type_name(t));
    }
    if (s->deleted_col != -1) {
        if (!col_ok(s, s->deleted_col))
            return strata_err_set(err, STRATA_EINVAL, "deleted: not a column");
        if (s->ndedup == 0)
            return strata_err_set(err, STRATA_EINVAL, "deleted: needs a dedup_key");
        if (s->cols[s->deleted_col].type != STRATA_BOOL)
            return strata_err_set(err, STRATA_EINVAL, "deleted: '%s' must be a bool column",
                                  s->cols[s->deleted_col].name);
    }
    if (s->nrollups < 0 || s->nrollups > STRATA_MAX_ROLLUPS)
        return strata_err_set(err, STRATA_EINVAL, "rollups: at most %d rollups",
                              STRATA_MAX_ROLLUPS);
    for (int r = 0; r < s->nrollups; r++) {
        const strata_rollup *ru = &s->rollups[r];
        if (ru->interval_ms < 60000 || ru->interval_ms % 60000 != 0 || ru->interval_ms > 86400000)
            return strata_err_set(err, STRATA_EINVAL,
                                  "rollups[%d].interval: must be a whole number of minutes or hours "
                                  "from 1m to 24h (such as 1m, 5m, 1h)",
                                  r);
        for (int q = 0; q < r; q++) {
            const strata_rollup *o = &s->rollups[q];
            bool same = o->interval_ms == ru->interval_ms && o->ndims == ru->ndims;
            for (int d = 0; same && d < ru->ndims; d++) {
                bool found = false;
                for (int e = 0; e < o->ndims && !found; e++)
                    found = o->dims[e] == ru->dims[d];
                same = found;
            }
            if (same)
                return strata_err_set(err, STRATA_EINVAL,
                                      "rollups[%d]: the same interval and dimensions as rollups[%d] (put their "
                                      "metrics in one tier)",
                                      r, q);
        }
        if (ru->ndims < 0 || ru->ndims > s->ncols || ru->ndims > STRATA_MAX_ROLLUP_DIMS)
            return strata_err_set(err, STRATA_EINVAL, "rollups[%d].dimensions: too many (at most %d)", r,
                                  STRATA_MAX_ROLLUP_DIMS);
        for (int d = 0; d < ru->ndims; d++) {
            if (!col_ok(s, ru->dims[d]))
                return strata_err_set(err, STRATA_EINVAL, "rollups[%d].dimensions[%d]: not a column",
                                      r, d);
            if (s->cols[ru->dims[d]].type != STRATA_STRING)
                return strata_err_set(err, STRATA_EINVAL,
                                      "rollups[%d].dimensions[%d]: '%s' is %s; dimensions must be "
                                      "string columns",
                                      r, d, s->cols[ru->dims[d]].name,
                                      strata_type_name(s->cols[ru->dims[d]].type));
            for (int e = 0; e < d; e++)
                if (ru->dims[e] == ru->dims[d])
                    return strata_err_set(err, STRATA_EINVAL,
                                          "rollups[%d].dimensions[%d]: listed twice", r, d);
        }
        if (ru->nmetrics < 1 || ru->nmetrics > STRATA_MAX_ROLLUP_METRICS)
            return strata_err_set(err, STRATA_EINVAL,
                                  "rollups[%d].metrics: between 1 and %d metrics", r,
                                  STRATA_MAX_ROLLUP_METRICS);
        for (int m = 0; m < ru->nmetrics; m++) {
            const strata_rollup_metric *me = &ru->metrics[m];
            if (!strata_agg_name(me->fn) || me->fn == STRATA_AGG_AVG)
                return strata_err_set(err, STRATA_EINVAL,
                                      "rollups[%d].metrics[%d].fn: must be count, sum, min, max, "
                                      "uniq or quantile (avg is sum/count)",
                                      r, m);
            if (me->fn == STRATA_AGG_COUNT) {
                if (me->column != -1)
                    return strata_err_set(err, STRATA_EINVAL,
                                          "rollups[%d].metrics[%d].column: count takes no column",
                                          r, m);
                continue;
            }
            if (!col_ok(s, me->column))
                return strata_err_set(err, STRATA_EINVAL,
                                      "rollups[%d].metrics[%d].column: missing or not a column", r, m);
            strata_type t = s->cols[me->column].type;
            if (me->fn != STRATA_AGG_UNIQ && (t == STRATA_STRING || t == STRATA_BOOL))
                return strata_err_set(err, STRATA_EINVAL,
                                      "rollups[%d].metrics[%d].column: %s of '%s' needs a numeric "
                                      "column, it is %s",
                                      r, m, strata_agg_name(me->fn), s->cols[me->column].name,
                                      strata_type_name(t));
        }
        for (int m = 0; m < ru->nmetrics; m++)
            for (int k = 0; k < m; k++)
                if (ru->metrics[k].fn == ru->metrics[m].fn && ru->metrics[k].column == ru->metrics[m].column)
                    return strata_err_set(err, STRATA_EINVAL, "rollups[%d].metrics[%d]: listed twice (the same as metrics[%d])", r,
                                          m, k);
        /* The states a tier keeps (rollup.h): count, one per distinct (fn, column), and a
         * second for each sum of an integer column (avg's float sum). */
        int states = 1;
        for (int m = 0; m < ru->nmetrics; m++) {
            const strata_rollup_metric *me = &ru->metrics[m];
            bool seen = me->fn == STRATA_AGG_COUNT;
            for (int k = 0; k < m && !seen; k++)
                seen = ru->metrics[k].fn == me->fn && ru->metrics[k].column == me->column;
            if (!seen)
                states += 1 + (me->fn == STRATA_AGG_SUM && strata_type_is_int(s->cols[me->column].type));
        }
        if (states > STRATA_MAX_ROLLUP_STATES)
            return strata_err_set(err, STRATA_EINVAL,
                                  "rollups[%d].metrics: %d aggregate states, at most %d (count is one, "
                                  "each other metric one, a sum of an integer column two)",
                                  r, states, STRATA_MAX_ROLLUP_STATES);
    }
    const struct {
        const char *name;
        int64_t v;
    } durations[] = {{"retention.raw", s->retention_raw_ms}, {"retention.1m", s->retention_1m_ms},
                     {"retention.1h", s->retention_1h_ms},   {"lateness", s->lateness_ms},
                     {"late_bound", s->late_bound_ms},       {"storage.memtable_age", s->memtable_max_age_ms},
                     {"dedup_window", s->dedup_window_ms}};
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++)
        if (durations[i].v < 0 || durations[i].v > STRATA_DURATION_MAX)
            return strata_err_set(err, STRATA_EINVAL,
                                  "%s: must be between 0 and 1000 years", durations[i].name);
    for (int k = 0; k < 2 && s->retention_raw_ms > 0; k++) {
        int64_t v = k ? s->retention_1h_ms : s->retention_1m_ms;
        if (v > 0 && v < s->retention_raw_ms)
            return strata_err_set(err, STRATA_EINVAL,
                                  "retention.%s: shorter than retention.raw; a rollup tier keeps what raw rows "
                                  "no longer can, so it must keep at least as long (or leave it out: the tiers "
                                  "then go with the raw rows)", k ? "1h" : "1m");
    }
    if (s->late_policy != STRATA_LATE_UPDATE && s->late_policy != STRATA_LATE_DEAD_LETTER)
        return strata_err_set(err, STRATA_EINVAL, "late_policy: must be update or dead-letter");
    if (s->late_policy == STRATA_LATE_DEAD_LETTER && s->late_bound_ms <= 0)
        return strata_err_set(err, STRATA_EINVAL,
                              "late_policy: dead-letter needs late_bound, how late an event may be (such as "
                              "\"late_bound\": \"6h\")");
    if (s->late_policy == STRATA_LATE_UPDATE && s->late_bound_ms > 0)
        return strata_err_set(err, STRATA_EINVAL,
                              "late_bound: only with \"late_policy\": \"dead-letter\" (with update, every event "
                              "lands)");
    if (s->unknown_fields != STRATA_UNKNOWN_FIELDS_IGNORE &&
        s->unknown_fields != STRATA_UNKNOWN_FIELDS_REJECT)
        return strata_err_set(err, STRATA_EINVAL, "unknown_fields: must be ignore or reject");
    if (s->codec != STRATA_CODEC_LZ4 && s->codec != STRATA_CODEC_ZSTD &&
        s->codec != STRATA_CODEC_NONE)
        return strata_err_set(err, STRATA_EINVAL, "storage.compression: must be lz4, zstd or none");
    if (s->memtable_max_rows < 1 || s->memtable_max_rows > (1u << 24))
        return strata_err_set(err, STRATA_EINVAL,
                              "storage.memtable_rows: must be between 1 and 16777216");
    if (s->memtable_max_bytes < (1u << 16))
        return strata_err_set(err, STRATA_EINVAL, "storage.memtable_bytes: at least 64KiB");
    if (s->memtable_max_age_ms < 1)
        return strata_err_set(err, STRATA_EINVAL, "storage.memtable_age: at least 1ms");
    if (s->memory_budget_bytes < s->memtable_max_bytes)
        return strata_err_set(err, STRATA_EINVAL,
                              "storage.memory_budget: must be at least storage.memtable_bytes");
    if (s->kafka.enabled) {
        if (!s->kafka.topic[0])
            return strata_err_set(err, STRATA_EINVAL, "kafka.topic: required");
        if (s->kafka.nprops < 0 || s->kafka.nprops > STRATA_MAX_KAFKA_PROPS)
            return strata_err_set(err, STRATA_EINVAL, "kafka.properties: at most %d",
                                  STRATA_MAX_KAFKA_PROPS);
    }
    return 0;
}

void schema_apply_default_order(strata_schema *s)
{
    if (s->norder > 0)
        return;
    for (int i = 0; i < s->ncols; i++) {
        bool in_key = false; /* a string key is near unique: it would only scatter the runs */
        for (int k = 0; k < s->ndedup; k++)
            in_key |= s->dedup_cols[k] == i;
        if (s->cols[i].type == STRATA_STRING && !in_key)
            s->order_by[s->norder++] = i;
    }
    if (s->time_col >= 0)
        s->order_by[s->norder++] = s->time_col;
}

int schema_column_index(const strata_schema *s, const char *name)
{
    for (int i = 0; i < s->ncols; i++)
        if (strcmp(s->cols[i].name, name) == 0)
            return i;
    return -1;
}

/* Days since 1970-01-01 of y-m-d (Hinnant's days_from_civil). */
int64_t strata_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void strata_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t schema_partition_key(strata_partition_by by, int64_t ts)
{
    switch (by) {
    case STRATA_PART_HOUR: return floor_div(ts, 3600000) * 3600000;
    case STRATA_PART_MONTH: {
        int64_t y;
        unsigned m, d;
        strata_civil_from_days(floor_div(ts, 86400000), &y, &m, &d);
        return strata_days_from_civil(y, m, 1) * 86400000;
    }
    case STRATA_PART_DAY:
    default: return floor_div(ts, 86400000) * 86400000;
    }
}

int64_t schema_partition_next(strata_partition_by by, int64_t key)
{
    switch (by) {
    case STRATA_PART_HOUR: return key + 3600000;
    case STRATA_PART_MONTH: {
        int64_t y;
        unsigned m, d;
        strata_civil_from_days(floor_div(key, 86400000), &y, &m, &d);
        if (++m > 12) {
            m = 1;
            y++;
        }
        return strata_days_from_civil(y, m, 1) * 86400000;
    }
    case STRATA_PART_DAY:
    default: return key + 86400000;
    }
}

void schema_partition_name(strata_partition_by by, int64_t key, char *out, size_t cap)
{
    int64_t y;
    unsigned m, d;
    int64_t days = floor_div(key, 86400000);
    strata_civil_from_days(days, &y, &m, &d);
    switch (by) {
    case STRATA_PART_HOUR:
        snprintf(out, cap, "%04" PRId64 "-%02u-%02uT%02d", y, m, d,
                 (int)((key - days * 86400000) / 3600000));
        break;
    case STRATA_PART_MONTH: snprintf(out, cap, "%04" PRId64 "-%02u", y, m); break;
    case STRATA_PART_DAY:
    default: snprintf(out, cap, "%04" PRId64 "-%02u-%02u", y, m, d); break;
    }
}

int schema_partition_parse(strata_partition_by by, const char *name, int64_t *key)
{
    int y = 0, n = 0;
    unsigned m = 1, d = 1, h = 0;
    int ok;
    switch (by) {
    case STRATA_PART_HOUR: ok = sscanf(name, "%4d-%2u-%2uT%2u%n", &y, &m, &d, &h, &n) == 4; break;
    case STRATA_PART_MONTH: ok = sscanf(name, "%4d-%2u%n", &y, &m, &n) == 2; break;
    case STRATA_PART_DAY:
    default: ok = sscanf(name, "%4d-%2u-%2u%n", &y, &m, &d, &n) == 3; break;
    }
    if (!ok || name[n] != '\0' || m < 1 || m > 12 || d < 1 || d > 31 || h > 23)
        return STRATA_EINVAL;
    int64_t k = strata_days_from_civil(y, m, d) * 86400000 + (int64_t)h * 3600000;
    char check[32];
    schema_partition_name(by, k, check, sizeof check);
    if (strcmp(check, name) != 0)
        return STRATA_EINVAL;
    *key = k;
    return 0;
}

bool schema_same_types(const strata_schema *a, const strata_schema *b)
{
    if (a->ncols != b->ncols)
        return false;
    for (int c = 0; c < a->ncols; c++)
        if (a->cols[c].type != b->cols[c].type)
            return false;
    return true;
}
