/*
 * self_metrics.c — strata's own metrics as a table, `_strata`, so Grafana and the console
 * chart strata through the same query API as any table: every few seconds (server_opts.
 * self_metrics_ms, 10 s in `strata serve`) one thread renders GET /metrics's text
 * (api_metrics_render, the one source of every figure) and appends a row per sample line:
 *
 *   ts      timestamp  when the sample was taken (wall clock)
 *   metric  string     the metric's name: strata_ingested_rows_total, strata_kafka_lag...
 *   table   string     its table="..." label ("" when it has none)
 *   labels  string     its other labels as written in /metrics (partition="0",...), or ""
 *   value   float64    the sample
 *   rate    float64    counters: the increase per second since the previous sample; NaN
 *                      (which aggregates skip) for gauges, a first sample, or a reset
 *
 * Histogram buckets are not stored; from the query latency histogram two rows are
 * derived per sample: strata_query_latency_avg_ms and strata_query_latency_p99_ms (the
 * upper bound of the bucket holding the 99th percentile of the queries answered since
 * the previous sample), both NaN when none was.
 *
 * The table is created at the first sample (again if it was dropped) with retention 7d
 * and a 60 s memtable age. Its rows are appended without the write-ahead log: samples of
 * the last minute are lost in a crash, and that is all. A `_strata` of another schema (a
 * user's table) is left alone: the sampler logs why once and stops.
 */
#include "http/api.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/clock.h"
#include "engine/row_batch.h"
#include "engine/schema_json.h"
#include "engine/table.h"

#define SELF_TABLE "_strata"

enum { C_TS, C_METRIC, C_TABLE, C_LABELS, C_VALUE, C_RATE };

static const char schema_text[] =
    "{\"name\": \"" SELF_TABLE "\", \"time_column\": \"ts\", \"columns\": ["
    "{\"name\": \"ts\", \"type\": \"timestamp\"}, {\"name\": \"metric\", \"type\": \"string\"},"
    "{\"name\": \"table\", \"type\": \"string\"}, {\"name\": \"labels\", \"type\": \"string\"},"
    "{\"name\": \"value\", \"type\": \"float64\"}, {\"name\": \"rate\", \"type\": \"float64\"}],"
    "\"retention\": {\"raw\": \"7d\"}, \"storage\": {\"memtable_age\": \"60s\"}}";

struct self_metrics {
    strata_server *s;
    int64_t every_ms;
    strata_schema schema;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop, gave_up;
    json_t *prev;      /* "name{labels}" -> previous value (counters) */
    int64_t prev_ms;   /* when prev was taken */
    double lat_prev[API_QUERY_LATENCY_BUCKETS + 1], lat_sum_prev; /* histogram, cumulative */
    bool lat_known;
};

/* One sample line "name{labels} value" (or "name value") cut into its parts; false for
 * anything else. labels points into line (not NUL-terminated: *labels_len). */
static bool line_parse(char *line, char **name, char **labels, size_t *labels_len, double *v)
{
    char *sp = strrchr(line, ' ');
    if (!sp || line[0] == '#' || line[0] == 0)
        return false;
    *sp = 0;
    char *end;
    *v = strtod(sp + 1, &end);
    if (*end || !isfinite(*v))
        return false;
    *name = line;
    char *brace = strchr(line, '{');
    if (brace) {
        char *close = strrchr(brace, '}');
        if (!close)
            return false;
        *brace = 0;
        *labels = brace + 1;
        *labels_len = (size_t)(close - brace - 1);
    } else {
        *labels = sp; /* empty */
        *labels_len = 0;
    }
    return true;
}

/* The table label's value out of labels (into table), the other labels into rest. */
static void labels_split(const char *labels, size_t n, char *table, size_t tcap, char *rest, size_t rcap)
{
    table[0] = rest[0] = 0;
    size_t ro = 0, i = 0;
    while (i < n) {
        size_t start = i;
        bool quoted = false;
        for (; i < n; i++) {
            if (labels[i] == '\\' && i + 1 < n) {
                i++;
                continue;
            }
            if (labels[i] == '"')
                quoted = !quoted;
            else if (labels[i] == ',' && !quoted)
                break;
        }
        size_t len = i - start;
        if (len > 8 && strncmp(labels + start, "table=\"", 7) == 0)
            snprintf(table, tcap, "%.*s", (int)(len - 8), labels + start + 7);
        else if (ro + len + 2 < rcap)
            ro += (size_t)snprintf(rest + ro, rcap - ro, "%s%.*s", ro ? "," : "", (int)len, labels + start);
        i++; /* the comma */
    }
}

static void add_row(row_batch *b, int64_t ts, const char *metric, const char *table,
                    const char *labels, double value, double rate)
{
    int64_t r = row_batch_add_row(b);
    if (r < 0)
        return;
    b->i[C_TS][r] = ts;
    row_batch_set_str(b, C_METRIC, (uint32_t)r, metric, (uint32_t)strlen(metric));
    row_batch_set_str(b, C_TABLE, (uint32_t)r, table, (uint32_t)strlen(table));
    row_batch_set_str(b, C_LABELS, (uint32_t)r, labels, (uint32_t)strlen(labels));
    b->f[C_VALUE][r] = value;
    b->f[C_RATE][r] = rate;
}

/* The two rows derived from the query latency histogram's counts since the last sample. */
static void latency_rows(self_metrics *m, row_batch *b, int64_t now)
{
    strata_server *s = m->s;
    double cum[API_QUERY_LATENCY_BUCKETS + 1], total = 0;
    for (int k = 0; k <= API_QUERY_LATENCY_BUCKETS; k++) {
        total += (double)atomic_load(&s->query_latency[k]);
        cum[k] = total;
    }
    double sum_ms = (double)atomic_load(&s->query_latency_sum_us) / 1000.0;
    double avg = NAN, p99 = NAN;
    if (m->lat_known) {
        double n = cum[API_QUERY_LATENCY_BUCKETS] - m->lat_prev[API_QUERY_LATENCY_BUCKETS];
        if (n > 0) {
            avg = (sum_ms - m->lat_sum_prev) / n;
            for (int k = 0; k <= API_QUERY_LATENCY_BUCKETS; k++)
                if (cum[k] - m->lat_prev[k] >= 0.99 * n) {
                    p99 = k < API_QUERY_LATENCY_BUCKETS ? api_query_latency_bounds_ms[k]
                                                        : api_query_latency_bounds_ms[k - 1];
                    break;
                }
        }
    }
    memcpy(m->lat_prev, cum, sizeof cum);
    m->lat_sum_prev = sum_ms;
    m->lat_known = true;
    add_row(b, now, "strata_query_latency_avg_ms", "", "", avg, NAN);
    add_row(b, now, "strata_query_latency_p99_ms", "", "", p99, NAN);
}

/* The table to append to: found, or made; NULL when it cannot be (the reason logged
 * once, and the sampler stops). */
static strata_table *self_table(self_metrics *m)
{
    strata_server *s = m->s;
    strata_table *t = catalog_get(s->cat, SELF_TABLE);
    strata_err err = {0};
    if (!t && catalog_create(s->cat, &m->schema, &t, NULL, &err) != 0)
        t = NULL;
    if (t && !schema_same_types(table_schema(t), &m->schema)) {
        snprintf(err.msg, sizeof err.msg, "it exists with other columns");
        catalog_put(s->cat, t);
        t = NULL;
    }
    if (!t) {
        m->gave_up = true;
        if (s->opts.log) {
            char line[700];
            snprintf(line, sizeof line, "strata's own metrics are not kept in table %s: %s", SELF_TABLE,
                     err.msg);
            s->opts.log(line);
        }
    }
    return t;
}

/* One sample: every /metrics line as a row. */
static void sample(self_metrics *m)
{
    bytebuf text = {0};
    api_metrics_render(m->s, &text);
    buf_put(&text, "", 1);
    row_batch b;
    if (text.oom || row_batch_init(&b, &m->schema, 256) != 0) {
        buf_free(&text);
        return;
    }
    int64_t now = clock_wall_ms();
    double dt = m->prev_ms ? (double)(now - m->prev_ms) / 1000.0 : 0;
    json_t *counters = json_object(), *next = json_object();
    char *save = NULL;
    for (char *line = strtok_r((char *)text.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char *name = line + 7, *sp = strchr(name, ' ');
            if (sp && strcmp(sp + 1, "counter") == 0) {
                *sp = 0;
                json_object_set_new(counters, name, json_true());
            }
            continue;
        }
        char *name, *labels;
        size_t nl;
        double v;
        if (!line_parse(line, &name, &labels, &nl, &v))
            continue;
        size_t len = strlen(name);
        if (len > 7 && strcmp(name + len - 7, "_bucket") == 0)
            continue; /* histogram buckets: see latency_rows */
        char table[STRATA_NAME_MAX * 2], rest[512], key[1024];
        labels_split(labels, nl, table, sizeof table, rest, sizeof rest);
        double rate = NAN;
        if (json_object_get(counters, name)) {
            snprintf(key, sizeof key, "%s{%.*s}", name, (int)nl, labels);
            json_t *p = json_object_get(m->prev, key);
            if (p && dt > 0 && v >= json_real_value(p))
                rate = (v - json_real_value(p)) / dt;
            json_object_set_new(next, key, json_real(v));
        }
        add_row(&b, now, name, table, rest, v, rate);
    }
    latency_rows(m, &b, now);
    json_decref(counters);
    json_decref(m->prev);
    m->prev = next;
    m->prev_ms = now;
    buf_free(&text);
    strata_table *t = self_table(m);
    if (t) {
        strata_err err = {0};
        if (table_append(t, &b, &err) != 0 && m->s->opts.log) {
            char line[700];
            snprintf(line, sizeof line, "table %s: a sample was not kept: %s", SELF_TABLE, err.msg);
            m->s->opts.log(line);
        }
        catalog_put(m->s->cat, t);
    }
    row_batch_free(&b);
}

static void *sampler(void *arg)
{
    self_metrics *m = arg;
    pthread_mutex_lock(&m->lock);
    while (!m->stop && !m->gave_up) {
        struct timespec until = clock_after_ms(CLOCK_REALTIME, m->every_ms);
        while (!m->stop && pthread_cond_timedwait(&m->wake, &m->lock, &until) == 0)
            ;
        if (m->stop)
            break;
        pthread_mutex_unlock(&m->lock);
        sample(m);
        pthread_mutex_lock(&m->lock);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

int self_metrics_start(strata_server *s, int64_t every_ms, self_metrics **out, strata_err *err)
{
    *out = NULL;
    self_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    m->s = s;
    m->every_ms = every_ms;
    int rc = schema_json_parse(schema_text, strlen(schema_text), &m->schema, err);
    if (rc) {
        free(m);
        return rc;
    }
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->wake, NULL);
    if (pthread_create(&m->thread, NULL, sampler, m) != 0) {
        pthread_mutex_destroy(&m->lock);
        pthread_cond_destroy(&m->wake);
        free(m);
        return strata_err_set(err, STRATA_EIO, "cannot start the self-metrics thread");
    }
    pthread_setname_np(m->thread, "self-metrics");
    *out = m;
    return 0;
}

void self_metrics_stop(self_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->stop = true;
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->thread, NULL);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->wake);
    json_decref(m->prev);
    free(m);
}
