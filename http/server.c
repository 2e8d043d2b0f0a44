/*
 * server.c — routing and handlers of the HTTP API (endpoints and statuses in server.h).
 *
 * Request bodies arrive in pieces through MHD's access handler. Most endpoints buffer
 * their body up to max_body (a body that grows past it is drained and refused). POST
 * /ingest instead parses its NDJSON as it streams in: complete lines are decoded into the
 * request's own row batch (only a partial last line is carried between pieces; a line
 * over the event limit is skipped to its newline, counting its bytes, and reported). A
 * request is all or nothing: its rows stay in that batch, seen by no one, until the whole
 * body has arrived; then they go into the table in one append that lands all of them or
 * none (table_append), the table is flushed (segments fsynced, manifests committed), and
 * only then is the answer sent, so an acknowledged row survives kill -9 and an error
 * answer (413, a dropped table, a memory limit) leaves nothing behind. What requests
 * being received hold is bounded server-wide by ingest_memory: past it a request is
 * refused (503), never half landed.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "engine/buf.h"
#include "ingest/event_json.h"
#include "ingest/ndjson_answer.h"
#include "engine/query.h"
#include "http/query_answer.h"
#include "http/query_parse.h"
#include "engine/schema_json.h"
#include "ingest/table_counts.h"

#define INGEST_POOL_MAX 8                   /* batches kept between requests */
#define INGEST_POOL_BATCH_MAX (32u << 20)   /* larger ones are freed */
#define LATENCY_BUCKETS 12

static const double latency_bounds_ms[LATENCY_BUCKETS] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000};

/* A kept row batch and the column types its arrays were made for: its own copy, since the
 * table it served (and the schema its batch pointed at) may be dropped meanwhile. */
typedef struct pooled_batch {
    row_batch b;
    int ncols;
    strata_type types[STRATA_MAX_COLUMNS];
} pooled_batch;

struct strata_server {
    struct MHD_Daemon *daemon;
    strata_catalog *cat;
    server_opts opts;
    char auth_header[512];
    uint16_t port;
    double started;
    _Atomic uint64_t rows_ingested, rows_rejected, ingest_requests;
    table_counts unknown_field_events; /* per table: ingested events with unknown fields */
    table_counts ingested_by_table, rejected_by_table; /* rows_ingested, rows_rejected per table */
    _Atomic uint64_t queries, query_errors;
    _Atomic uint64_t query_latency[LATENCY_BUCKETS + 1];
    _Atomic uint64_t query_latency_sum_us;
    _Atomic uint64_t status_count[6]; /* 1xx..5xx by first digit */
    _Atomic uint64_t ingest_staged;   /* bytes of rows staged by ingest requests */
    /* Row batches of finished ingest requests, kept warm for the next ones (a fresh
     * batch costs its page faults again: on this kind of VM about 2.7 ms per MiB). */
    pthread_mutex_t pool_lock;
    pooled_batch pool[INGEST_POOL_MAX];
    int npool;
};

typedef enum route {
    R_NONE, R_HEALTH, R_TABLES, R_TABLE, R_TABLE_FLUSH, R_INGEST, R_QUERY, R_METRICS, R_ACCEPT_RESET,
} route;

typedef struct request {
    strata_server *s;
    route route;
    char table[STRATA_NAME_MAX + 1];
    const char *allow; /* the methods the path takes, for 405 and OPTIONS answers */
    bool method_ok, too_large, bad_name, auth_ok;
    char encoding[32]; /* a Content-Encoding strata does not read ("" when none) */
    bool body_started;  /* ingest: a first piece came (its byte order mark was dropped) */
    bytebuf body;
    uint64_t limit;
    /* ingest */
    strata_table *t;
    event_decoder *decoder;
    row_batch batch;
    bool batch_ready;
    bytebuf carry;        /* a partial line between body pieces */
    bool long_line;       /* skipping a line over the event limit to its newline */
    uint64_t long_len;    /* its bytes so far */
    uint64_t staged_bytes; /* of batch, counted in s->ingest_staged */
    uint64_t line_no, ingested;
    ndjson_answer answer; /* rejected and blank lines, errors, unknown fields */
    strata_err fail; /* a failure that ends the ingest with an error answer */
    unsigned fail_status;
    bool failed;
} request;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- responses ---------------------------------------------------------------------- */

/* Sends text (taken over) with its content type and the extra headers (NULL, or name,
 * value, ..., NULL). */
static enum MHD_Result send_text_with(strata_server *s, struct MHD_Connection *c, unsigned status,
                                      char *text, size_t len, const char *ctype,
                                      const char *const *headers)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    if (ctype)
        MHD_add_response_header(r, "Content-Type", ctype);
    for (int i = 0; headers && headers[i]; i += 2)
        MHD_add_response_header(r, headers[i], headers[i + 1]);
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    if (status >= 100 && status < 600)
        atomic_fetch_add(&s->status_count[status / 100], 1);
    return ok;
}

static enum MHD_Result send_text(strata_server *s, struct MHD_Connection *c, unsigned status,
                                 char *text, size_t len, const char *ctype)
{
    return send_text_with(s, c, status, text, len, ctype, NULL);
}

/* Sends a JSON text (malloc'd; this frees it) with the final newline every answer ends
 * with, as curl users expect (without it when memory for one byte more runs out). */
static enum MHD_Result send_json_text(strata_server *s, struct MHD_Connection *c, unsigned status,
                                      char *text, size_t len, const char *const *headers)
{
    char *nl = realloc(text, len + 2);
    if (nl) {
        text = nl;
        text[len++] = '\n';
        text[len] = 0;
    }
    return send_text_with(s, c, status, text, len, "application/json", headers);
}

static enum MHD_Result send_json(strata_server *s, struct MHD_Connection *c, unsigned status, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text)
        return MHD_NO;
    return send_json_text(s, c, status, text, strlen(text), NULL);
}

static enum MHD_Result send_error_v(strata_server *s, struct MHD_Connection *c, unsigned status,
                                    const char *const *headers, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t len;
    char *body = query_answer_error(msg, &len);
    if (!body)
        return MHD_NO;
    return send_json_text(s, c, status, body, len, headers);
}

static enum MHD_Result send_error(strata_server *s, struct MHD_Connection *c, unsigned status,
                                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum MHD_Result send_error(strata_server *s, struct MHD_Connection *c, unsigned status,
                                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result r = send_error_v(s, c, status, NULL, fmt, ap);
    va_end(ap);
    return r;
}

/* send_error with extra headers (name, value, ..., NULL). */
static enum MHD_Result send_error_with(strata_server *s, struct MHD_Connection *c, unsigned status,
                                       const char *const *headers, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static enum MHD_Result send_error_with(strata_server *s, struct MHD_Connection *c, unsigned status,
                                       const char *const *headers, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result r = send_error_v(s, c, status, headers, fmt, ap);
    va_end(ap);
    return r;
}

static unsigned status_of(int code)
{
    switch (code) {
    case STRATA_EINVAL: return 400;
    case STRATA_ENOTFOUND: return 404;
    case STRATA_EEXIST: return 409;
    case STRATA_EFULL: return 422;
    case STRATA_ENOMEM: return 503;
    default: return 500;
    }
}

/* ---- routing ------------------------------------------------------------------------ */

static bool name_from(const char *p, char *out, size_t cap, bool *bad)
{
    size_t n = strcspn(p, "/");
    if (n == 0 || n >= cap) {
        *bad = true;
        return false;
    }
    memcpy(out, p, n);
    out[n] = 0;
    return true;
}

/* Whether method is one of allow ("GET, HEAD, OPTIONS"). */
static bool method_in(const char *method, const char *allow)
{
    size_t n = strlen(method);
    for (const char *p = allow; (p = strstr(p, method)) != NULL; p += n)
        if ((p == allow || p[-1] == ' ') && (p[n] == ',' || p[n] == 0))
            return true;
    return false;
}

/* Fills rq->route / table / allow / method_ok from the URL and method. HEAD goes with GET
 * and OPTIONS with every path (browsers and probes send both). */
static void route_request(request *rq, const char *url, const char *method)
{
    static const char GETS[] = "GET, HEAD, OPTIONS", POSTS[] = "POST, OPTIONS",
                      TABLE[] = "GET, HEAD, PUT, DELETE, OPTIONS";
    rq->allow = NULL;
    if (strcmp(url, "/health") == 0) {
        rq->route = R_HEALTH;
        rq->allow = GETS;
    } else if (strcmp(url, "/metrics") == 0) {
        rq->route = R_METRICS;
        rq->allow = GETS;
    } else if (strcmp(url, "/query") == 0) {
        rq->route = R_QUERY;
        rq->allow = POSTS;
    } else if (strcmp(url, "/tables") == 0 || strcmp(url, "/tables/") == 0) {
        rq->route = R_TABLES;
        rq->allow = GETS;
    } else if (strncmp(url, "/ingest/", 8) == 0) {
        if (name_from(url + 8, rq->table, sizeof rq->table, &rq->bad_name) &&
            url[8 + strlen(rq->table)] == 0) {
            rq->route = R_INGEST;
            rq->allow = POSTS;
        }
    } else if (strncmp(url, "/tables/", 8) == 0) {
        if (name_from(url + 8, rq->table, sizeof rq->table, &rq->bad_name)) {
            const char *rest = url + 8 + strlen(rq->table);
            if (*rest == 0) {
                rq->route = R_TABLE;
                rq->allow = TABLE;
            } else if (strcmp(rest, "/flush") == 0) {
                rq->route = R_TABLE_FLUSH;
                rq->allow = POSTS;
            } else if (strcmp(rest, "/kafka/accept-reset") == 0) {
                rq->route = R_ACCEPT_RESET;
                rq->allow = POSTS;
            }
        }
    }
    rq->method_ok = rq->allow && method_in(method, rq->allow);
}

/* ---- table endpoints ------------------------------------------------------------------ */

static json_t *table_json(strata_table *t, bool with_schema)
{
    table_stats st;
    table_get_stats(t, &st);
    json_t *j = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "name", table_schema(t)->name,
                          "rows", (json_int_t)(st.segment_rows + st.memtable_rows), "segments",
                          (json_int_t)st.segments, "bytes", (json_int_t)st.segment_bytes,
                          "partitions", (json_int_t)st.partitions, "memtable_rows",
                          (json_int_t)st.memtable_rows, "memtable_bytes",
                          (json_int_t)st.memtable_bytes, "flushes", (json_int_t)st.flushes);
    if (j && st.max_time != INT64_MIN) {
        json_object_set_new(j, "max_time", json_integer(st.max_time));
        json_object_set_new(j, "watermark", json_integer(st.max_time - table_schema(t)->lateness_ms));
    }
    char why[512];
    if (j && table_failure(t, why, sizeof why))
        json_object_set_new(j, "failed", json_string(why));
    table_flush_record fr;
    if (j && table_flush_trouble(t, &fr))
        json_object_set_new(j, "flush_error", json_pack("{s:s, s:I, s:I}", "message", fr.message,
                                                        "failures", (json_int_t)fr.failing,
                                                        "for_s", (json_int_t)(fr.failing_for_ms / 1000)));
    uint64_t damaged = table_damage(t, why, sizeof why);
    if (j && damaged)
        json_object_set_new(j, "damage", json_pack("{s:I, s:s}", "found", (json_int_t)damaged, "latest", why));
    if (j && with_schema) {
        char *text = schema_json_dump(table_schema(t));
        json_t *sch = text ? json_loads(text, 0, NULL) : NULL;
        free(text);
        if (sch)
            json_object_set_new(j, "schema", sch);
    }
    return j;
}

/* Everything that makes the service degraded, one sentence each: tables that cannot be
 * opened, tables refusing writes after an I/O error, damaged segments met by queries,
 * Kafka trouble (lost data, offsets reset, consumers that cannot run). */
static json_t *service_problems(strata_server *s)
{
    json_t *arr = json_array();
    char name[STRATA_NAME_MAX + 1], why[1024], line[1600];
    for (size_t i = 0; catalog_broken_at(s->cat, i, name, sizeof name, why, sizeof why); i++) {
        snprintf(line, sizeof line, "table %s cannot be opened: %s", name, why);
        json_array_append_new(arr, json_string(line));
    }
    strata_table *t;
    for (size_t i = 0; (t = catalog_at(s->cat, i)) != NULL; i++) {
        if (table_failure(t, why, sizeof why)) {
            snprintf(line, sizeof line, "table %s refuses writes: %s", table_schema(t)->name, why);
            json_array_append_new(arr, json_string(line));
        }
        if (table_storage_missing(t, why, sizeof why)) {
            snprintf(line, sizeof line, "table %s: its files are gone (%s; moved or deleted while "
                     "serving): new rows cannot be written", table_schema(t)->name, why);
            json_array_append_new(arr, json_string(line));
        }
        table_flush_record fr;
        if (table_flush_trouble(t, &fr)) {
            snprintf(line, sizeof line, "table %s: flushes fail (%" PRIu64 " in a row for %" PRId64
                     " s; rows wait in memory): %s", table_schema(t)->name, fr.failing,
                     fr.failing_for_ms / 1000, fr.message);
            json_array_append_new(arr, json_string(line));
        }
        uint64_t n = table_damage(t, why, sizeof why);
        if (n) {
            snprintf(line, sizeof line, "table %s: %" PRIu64 " read(s) met a damaged segment (latest: %s)",
                     table_schema(t)->name, n, why);
            json_array_append_new(arr, json_string(line));
        }
        catalog_put(s->cat, t);
    }
    if (s->opts.kafka)
        kafka_ingest_problems(s->opts.kafka, arr);
    return arr;
}

/* GET /health. full: with the tables, uptime and the reasons; else (a request without the
 * token) the status alone, for liveness probes. */
static enum MHD_Result handle_health(strata_server *s, struct MHD_Connection *c, bool full)
{
    json_t *problems = service_problems(s);
    bool degraded = json_array_size(problems) > 0;
    if (!full) {
        json_decref(problems);
        return send_json(s, c, 200, json_pack("{s:s}", "status", degraded ? "degraded" : "ok"));
    }
    json_t *j = json_pack("{s:s, s:I, s:f}", "status", degraded ? "degraded" : "ok", "tables",
                          (json_int_t)catalog_count(s->cat), "uptime_s", (now_ms() - s->started) / 1000);
    if (degraded) {
        bytebuf b = {0};
        for (size_t i = 0; i < json_array_size(problems); i++) {
            if (i)
                buf_put(&b, "; ", 2);
            const char *p = json_string_value(json_array_get(problems, i));
            buf_put(&b, p, strlen(p));
        }
        buf_put(&b, "", 1);
        json_object_set_new(j, "reason", json_string(b.oom ? "out of memory" : (const char *)b.data));
        json_object_set_new(j, "problems", problems);
        buf_free(&b);
    } else {
        json_decref(problems);
    }
    return send_json(s, c, 200, j);
}

static enum MHD_Result handle_tables(strata_server *s, struct MHD_Connection *c)
{
    json_t *arr = json_array();
    strata_table *t;
    for (size_t i = 0; (t = catalog_at(s->cat, i)) != NULL; i++) {
        json_array_append_new(arr, table_json(t, false));
        catalog_put(s->cat, t);
    }
    char name[STRATA_NAME_MAX + 1], why[1024];
    for (size_t i = 0; catalog_broken_at(s->cat, i, name, sizeof name, why, sizeof why); i++)
        json_array_append_new(arr, json_pack("{s:s, s:s}", "name", name, "error", why));
    return send_json(s, c, 200, json_pack("{s:o}", "tables", arr));
}

static bool table_exists(strata_server *s, const char *name)
{
    strata_table *t = catalog_get(s->cat, name);
    catalog_put(s->cat, t);
    return t != NULL;
}

/* 503 for a table that exists but cannot be opened; 404 when there is none. */
static enum MHD_Result send_no_table(strata_server *s, struct MHD_Connection *c, const char *name,
                                     const char *prefix)
{
    char why[1024];
    if (catalog_broken_get(s->cat, name, why, sizeof why))
        return send_error(s, c, 503, "%stable '%s' cannot be opened: %s (check its files with strata "
                          "inspect, repair them and restart, or DELETE it)", prefix, name, why);
    return send_error(s, c, 404, "%sno table '%s'", prefix, name);
}

static enum MHD_Result handle_table(strata_server *s, struct MHD_Connection *c, request *rq,
                                    const char *method)
{
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
        strata_table *t = catalog_get(s->cat, rq->table);
        if (!t)
            return send_no_table(s, c, rq->table, "");
        json_t *j = table_json(t, true);
        catalog_put(s->cat, t);
        if (s->opts.kafka)
            kafka_ingest_table_json(s->opts.kafka, rq->table, j);
        return send_json(s, c, 200, j);
    }
    strata_err err = {0};
    if (strcmp(method, "DELETE") == 0) {
        /* The consumer stops first (it must not land rows into a table going away); if
         * the drop then fails, the table is as it was and consumes again. */
        bool consumed = s->opts.kafka && kafka_ingest_detach(s->opts.kafka, rq->table, true);
        int rc = catalog_drop(s->cat, rq->table, &err);
        if (rc && consumed && table_exists(s, rq->table)) {
            strata_err aerr = {0};
            if (kafka_ingest_attach(s->opts.kafka, rq->table, &aerr) != 0)
                strata_err_prefix(&err, "and its Kafka consumer could not restart (%s)", aerr.msg);
        }
        if (rc && !table_exists(s, rq->table))
            return send_error(s, c, rc == STRATA_ENOTFOUND ? 404 : 500, "%s", err.msg); /* dropped */
        if (rc)
            return send_error(s, c, status_of(rc), "%s", err.msg);
        return send_json(s, c, 200, json_pack("{s:s}", "dropped", rq->table));
    }
    /* PUT: create */
    strata_schema *sc = malloc(sizeof *sc);
    if (!sc)
        return send_error(s, c, 503, "out of memory");
    int rc = schema_json_parse_named((const char *)rq->body.data, rq->body.len, rq->table, sc, &err);
    if (rc == 0 && s->opts.kafka)
        rc = kafka_ingest_validate(s->opts.kafka, sc, &err); /* a table that cannot consume is refused */
    if (rc) {
        free(sc);
        return send_error(s, c, status_of(rc), "%s", err.msg);
    }
    strata_table *t;
    bool created;
    rc = catalog_create(s->cat, sc, &t, &created, &err);
    free(sc);
    if (rc)
        return send_error(s, c, status_of(rc), "%s", err.msg);
    json_t *j = table_json(t, true);
    catalog_put(s->cat, t);
    if (s->opts.kafka && kafka_ingest_attach(s->opts.kafka, rq->table, &err) != 0)
        json_object_set_new(j, "kafka_error", json_string(err.msg)); /* created; degraded in /health */
    if (s->opts.kafka)
        kafka_ingest_table_json(s->opts.kafka, rq->table, j);
    return send_json(s, c, created ? 201 : 200, j);
}

static enum MHD_Result handle_flush(strata_server *s, struct MHD_Connection *c, request *rq)
{
    strata_table *t = catalog_get(s->cat, rq->table);
    if (!t)
        return send_no_table(s, c, rq->table, "");
    strata_err err = {0};
    double t0 = now_ms();
    int rc = table_flush(t, true, &err);
    json_t *j = rc == 0 ? table_json(t, false) : NULL;
    catalog_put(s->cat, t);
    if (rc != 0)
        return send_error(s, c, rc == STRATA_ENOTFOUND ? 404 : 500, "flush failed: %s", err.msg);
    json_object_set_new(j, "flush_ms", json_real(now_ms() - t0));
    return send_json(s, c, 200, j);
}

static enum MHD_Result handle_accept_reset(strata_server *s, struct MHD_Connection *c, request *rq)
{
    if (!table_exists(s, rq->table))
        return send_no_table(s, c, rq->table, "");
    strata_err err = {0};
    json_t *j = json_pack("{s:s}", "table", rq->table);
    int rc = s->opts.kafka ? kafka_ingest_accept_reset(s->opts.kafka, rq->table, j, &err)
                           : strata_err_set(&err, STRATA_ENOTFOUND, "table '%s' has no Kafka consumer", rq->table);
    if (rc) {
        json_decref(j);
        return send_error(s, c, rc == STRATA_EEXIST ? 409 : status_of(rc), "%s", err.msg);
    }
    return send_json(s, c, 200, j);
}

/* ---- ingest --------------------------------------------------------------------------- */

/* A row batch for schema: a warm one from the pool when one fits, else a new one. */
static int ingest_batch_take(strata_server *s, const strata_schema *sc, row_batch *out)
{
    pthread_mutex_lock(&s->pool_lock);
    for (int i = s->npool - 1; i >= 0; i--) {
        pooled_batch *pb = &s->pool[i];
        bool same = pb->ncols == sc->ncols;
        for (int c = 0; same && c < sc->ncols; c++)
            same = pb->types[c] == sc->cols[c].type;
        if (same) {
            *out = pb->b;
            *pb = s->pool[--s->npool];
            pthread_mutex_unlock(&s->pool_lock);
            row_batch_rebind(out, sc);
            return 0;
        }
    }
    pthread_mutex_unlock(&s->pool_lock);
    return row_batch_init(out, sc, 1024);
}

/* Gives a request's batch back (while its table is still held, so its schema is valid):
 * kept for the next request, or freed. */
static void ingest_batch_give(strata_server *s, row_batch *b)
{
    if (row_batch_mem_bytes(b) <= INGEST_POOL_BATCH_MAX) {
        pthread_mutex_lock(&s->pool_lock);
        if (s->npool < INGEST_POOL_MAX) {
            pooled_batch *pb = &s->pool[s->npool++];
            pb->ncols = b->schema->ncols;
            for (int c = 0; c < pb->ncols; c++)
                pb->types[c] = b->schema->cols[c].type;
            row_batch_clear(b);
            b->schema = NULL; /* nothing may follow it from here */
            pb->b = *b;
            pthread_mutex_unlock(&s->pool_lock);
            return;
        }
        pthread_mutex_unlock(&s->pool_lock);
    }
    row_batch_free(b);
}

/* Ends the request with an error answer (the first failure wins); its staged rows are
 * let go at once. */
static void ingest_fail(request *rq, unsigned status)
{
    if (rq->failed)
        return;
    rq->failed = true;
    rq->fail_status = status;
    if (rq->batch_ready) {
        ingest_batch_give(rq->s, &rq->batch);
        rq->batch_ready = false;
    }
    atomic_fetch_sub(&rq->s->ingest_staged, rq->staged_bytes);
    rq->staged_bytes = 0;
}

/* Counts the bytes of the request's rows against the server's ingest memory; false
 * (request failed) when that is over its limit. */
static bool ingest_account(request *rq)
{
    uint64_t now = row_batch_used_bytes(&rq->batch);
    if (now <= rq->staged_bytes)
        return true;
    uint64_t delta = now - rq->staged_bytes;
    uint64_t total = atomic_fetch_add(&rq->s->ingest_staged, delta) + delta;
    rq->staged_bytes = now;
    if (total <= rq->s->opts.ingest_memory)
        return true;
    strata_err_set(&rq->fail, STRATA_EFULL,
                   "ingest requests being received hold %" PRIu64 " bytes, over the server's "
                   "ingest_memory of %" PRIu64 "; none of this request's rows were kept: retry, "
                   "send smaller requests, or raise the limit (strata serve --ingest-memory, or "
                   "ingest_memory in the config)",
                   total, rq->s->opts.ingest_memory);
    ingest_fail(rq, 503);
    return false;
}

static void ingest_reject(request *rq, const char *msg)
{
    ndjson_answer_reject(&rq->answer, rq->line_no, msg);
}

static void ingest_line(request *rq, const char *p, size_t n)
{
    rq->line_no++;
    while (n && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    size_t skip = 0;
    while (skip < n && (p[skip] == ' ' || p[skip] == '\t'))
        skip++;
    if (skip == n) {
        ndjson_answer_blank(&rq->answer); /* counted, not an event */
        return;
    }
    strata_err err = {0};
    int rc = event_decoder_decode_reporting(rq->decoder, p + skip, n - skip, &rq->batch,
                                            ndjson_answer_sink(&rq->answer), &err);
    if (rc == STRATA_ENOMEM) {
        rq->fail = err;
        ingest_fail(rq, 503);
        return;
    }
    if (rc) {
        ingest_reject(rq, err.msg);
        return;
    }
    ndjson_answer_landed(&rq->answer, rq->line_no);
    ingest_account(rq);
}

/* A line longer than any event may be, of n bytes: refused without keeping it. */
static void ingest_long_line(request *rq, uint64_t n)
{
    rq->line_no++;
    char msg[128];
    snprintf(msg, sizeof msg, "event of %" PRIu64 " bytes is over the limit of %u", n, EVENT_JSON_MAX_BYTES);
    ingest_reject(rq, msg);
}

/* Lines up to this long are handed to the decoder (which trims blanks and applies the
 * event limit itself); longer ones are skipped as they stream. */
#define INGEST_LINE_MAX (EVENT_JSON_MAX_BYTES + 64)

/* Consumes a piece of the body: whole lines now, the rest carried to the next piece. */
static void ingest_piece(request *rq, const char *data, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i < len && !rq->failed; i++) {
        if (data[i] != '\n')
            continue;
        size_t n = i - start;
        if (rq->long_line) {
            ingest_long_line(rq, rq->long_len + n);
            rq->long_line = false;
            rq->long_len = 0;
        } else if (rq->carry.len) {
            buf_put(&rq->carry, data + start, n); /* fits: the carry stays under the limit */
            ingest_line(rq, (const char *)rq->carry.data, rq->carry.len);
            rq->carry.len = 0;
        } else {
            ingest_line(rq, data + start, n);
        }
        start = i + 1;
    }
    if (start < len && !rq->failed) {
        size_t n = len - start;
        if (rq->long_line) {
            rq->long_len += n;
        } else if (rq->carry.len + n > INGEST_LINE_MAX) {
            rq->long_line = true; /* count it, keep none of it */
            rq->long_len = rq->carry.len + n;
            rq->carry.len = 0;
        } else {
            buf_put(&rq->carry, data + start, n);
        }
    }
    if (rq->carry.oom && !rq->failed) {
        strata_err_set(&rq->fail, STRATA_ENOMEM, "out of memory");
        ingest_fail(rq, 503);
    }
}

/* Lets go of what the request holds of its table (its batch, its decoder, the reference)
 * before the answer goes out: a client that drops the table right after its answer finds
 * it gone at once, files included. */
static void ingest_release(strata_server *s, request *rq)
{
    if (rq->batch_ready) {
        ingest_batch_give(s, &rq->batch);
        rq->batch_ready = false;
    }
    atomic_fetch_sub(&s->ingest_staged, rq->staged_bytes);
    rq->staged_bytes = 0;
    event_decoder_free(rq->decoder);
    rq->decoder = NULL;
    catalog_put(s->cat, rq->t);
    rq->t = NULL;
}

static enum MHD_Result ingest_finish(strata_server *s, struct MHD_Connection *c, request *rq)
{
    if (!rq->failed && rq->long_line)
        ingest_long_line(rq, rq->long_len);
    else if (!rq->failed && rq->carry.len)
        ingest_line(rq, (const char *)rq->carry.data, rq->carry.len);
    rq->carry.len = 0;
    atomic_fetch_add(&s->ingest_requests, 1);
    uint64_t n = rq->failed ? 0 : rq->batch.nrows;
    if (!rq->failed && n > 0) {
        /* One append: every row of the request lands, or none does. */
        int rc = table_append(rq->t, &rq->batch, &rq->fail);
        if (rc == STRATA_EFULL && table_flush(rq->t, true, &rq->fail) == 0)
            rc = table_append(rq->t, &rq->batch, &rq->fail);
        if (rc == STRATA_ENOTFOUND) {
            strata_err_set(&rq->fail, rc, "table '%s' was dropped while this request was being "
                           "received; none of its rows were kept", rq->table);
            ingest_fail(rq, 404);
        } else if (rc) {
            ingest_fail(rq, rc == STRATA_EINVAL ? 400 : rc == STRATA_EFULL || rc == STRATA_ENOMEM ||
                                                            table_failure(rq->t, NULL, 0) ? 503 : 500);
            strata_err_prefix(&rq->fail, "none of this request's %" PRIu64 " rows were kept", n);
        }
    }
    atomic_fetch_add(&s->rows_rejected, rq->answer.rejected);
    if (rq->answer.rejected) /* a count lost to a failed allocation only shows less */
        table_counts_add(&s->rejected_by_table, rq->table, rq->answer.rejected, NULL);
    if (rq->failed) {
        ingest_release(s, rq);
        return send_error(s, c, rq->fail_status, "%s", rq->fail.msg);
    }
    rq->ingested = n;
    atomic_fetch_add(&s->rows_ingested, n);
    if (n)
        table_counts_add(&s->ingested_by_table, rq->table, n, NULL);
    if (rq->answer.unknown_lines) /* a count lost to a failed allocation only shows less */
        table_counts_add(&s->unknown_field_events, rq->table, rq->answer.unknown_lines, NULL);
    strata_err ferr = {0};
    if (n > 0 && table_flush(rq->t, true, &ferr) != 0) {
        /* The rows are in the table's memory and a later flush writes them; sending them
         * again would land them twice. */
        ingest_release(s, rq);
        return send_error(s, c, 500, "the %" PRIu64 " rows were appended but are not yet durable "
                          "(flush failed: %s); they will be written when the disk allows: do not send "
                          "them again", n, ferr.msg);
    }
    json_t *answer = ndjson_answer_json(&rq->answer, n, table_schema(rq->t));
    ingest_release(s, rq);
    return send_json(s, c, 200, answer);
}

/* ---- query ---------------------------------------------------------------------------- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum MHD_Result handle_query(strata_server *s, struct MHD_Connection *c, request *rq)
{
    double t0 = now_ms();
    strata_err err = {0};
    char name[STRATA_NAME_MAX + 1];
    const char *text = (const char *)rq->body.data;
    size_t len = rq->body.len;
    atomic_fetch_add(&s->queries, 1);
    if (query_parse_table_name(text, len, name, sizeof name, &err) != 0) {
        atomic_fetch_add(&s->query_errors, 1);
        return send_error(s, c, 400, "%s", err.msg);
    }
    strata_table *t = catalog_get(s->cat, name);
    if (!t) {
        atomic_fetch_add(&s->query_errors, 1);
        return send_no_table(s, c, name, "table: ");
    }
    strata_query q;
    int prc = query_parse_json(text, len, table_schema(t), wall_ms(), &q, &err);
    if (prc != 0) {
        catalog_put(s->cat, t);
        atomic_fetch_add(&s->query_errors, 1);
        return send_error(s, c, status_of(prc), "%s", err.msg);
    }
    q.timeout_ms = s->opts.query_timeout_ms;
    q.max_groups = s->opts.query_max_groups;
    q.max_memory = s->opts.query_max_memory;
    query_result *r;
    char before[512];
    table_damage(t, before, sizeof before);
    int rc = query_run(t, &q, &r, &err);
    if (rc == STRATA_ECORRUPT && s->opts.log) {
        char now[512], line[1200];
        table_damage(t, now, sizeof now);
        if (strcmp(before, now) != 0) { /* each new damage once, not every query that meets it */
            snprintf(line, sizeof line, "table %s: DAMAGED SEGMENT met by a query: %s", name, now);
            s->opts.log(line);
        }
    }
    catalog_put(s->cat, t);
    if (rc) {
        query_free(&q);
        atomic_fetch_add(&s->query_errors, 1);
        /* Say which setting the limit is, so the operator knows what to raise. */
        const char *which = rc != STRATA_EFULL           ? NULL
                            : strstr(err.msg, "memory")  ? "strata serve --query-memory, or query_memory in the config"
                            : strstr(err.msg, "groups")  ? "query_max_groups in the config"
                            : strstr(err.msg, "time limit") ? "strata serve --query-timeout, or query_timeout in the config"
                                                         : NULL;
        if (which)
            return send_error(s, c, status_of(rc), "%s (the limit is %s)", err.msg, which);
        return send_error(s, c, status_of(rc), "%s", err.msg);
    }
    size_t out_len;
    char *out = query_answer_json(r, &q, &out_len);
    query_result_free(r);
    query_free(&q);
    double el = now_ms() - t0;
    int b = 0;
    while (b < LATENCY_BUCKETS && el > latency_bounds_ms[b])
        b++;
    atomic_fetch_add(&s->query_latency[b], 1);
    atomic_fetch_add(&s->query_latency_sum_us, (uint64_t)(el * 1000));
    if (!out)
        return send_error(s, c, 503, "out of memory writing the answer");
    return send_json_text(s, c, 200, out, out_len, NULL);
}

/* ---- metrics ---------------------------------------------------------------------------- */

static enum MHD_Result handle_metrics(strata_server *s, struct MHD_Connection *c)
{
    bytebuf b = {0};
    char line[512];
#define EMIT(...)                                                                                  \
    do {                                                                                           \
        int n_ = snprintf(line, sizeof line, __VA_ARGS__);                                         \
        buf_put(&b, line, n_ > 0 ? (size_t)n_ : 0);                                                \
    } while (0)
    EMIT("# HELP strata_ingested_rows_total Rows acknowledged by POST /ingest.\n"
         "# TYPE strata_ingested_rows_total counter\nstrata_ingested_rows_total %" PRIu64 "\n",
         atomic_load(&s->rows_ingested));
    EMIT("# HELP strata_rejected_rows_total Events refused by POST /ingest (bad JSON, types, time).\n"
         "# TYPE strata_rejected_rows_total counter\nstrata_rejected_rows_total %" PRIu64 "\n",
         atomic_load(&s->rows_rejected));
    EMIT("# TYPE strata_ingest_requests_total counter\nstrata_ingest_requests_total %" PRIu64 "\n",
         atomic_load(&s->ingest_requests));
    static const char *const per_table[][2] = {
        {"strata_ingest_events_with_unknown_fields_total",
         "Events of POST /ingest that landed with fields naming no column (those fields were dropped)."},
        {"strata_table_ingested_rows_total", "Rows of the table acknowledged by POST /ingest."},
        {"strata_table_rejected_rows_total", "Events for the table refused by POST /ingest."}};
    table_counts *const per_table_counts[] = {&s->unknown_field_events, &s->ingested_by_table,
                                              &s->rejected_by_table};
    for (int m = 0; m < 3; m++) {
        EMIT("# HELP %s %s\n# TYPE %s counter\n", per_table[m][0], per_table[m][1], per_table[m][0]);
        strata_table *t;
        for (size_t i = 0; (t = catalog_at(s->cat, i)) != NULL; i++) {
            const char *name = table_schema(t)->name;
            EMIT("%s{table=\"%s\"} %" PRIu64 "\n", per_table[m][0], name,
                 table_counts_get(per_table_counts[m], name));
            catalog_put(s->cat, t);
        }
    }
    EMIT("# TYPE strata_queries_total counter\nstrata_queries_total %" PRIu64 "\n",
         atomic_load(&s->queries));
    EMIT("# TYPE strata_query_errors_total counter\nstrata_query_errors_total %" PRIu64 "\n",
         atomic_load(&s->query_errors));
    EMIT("# HELP strata_query_duration_seconds Query latency.\n"
         "# TYPE strata_query_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i <= LATENCY_BUCKETS; i++) {
        cum += atomic_load(&s->query_latency[i]);
        if (i < LATENCY_BUCKETS)
            EMIT("strata_query_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                 latency_bounds_ms[i] / 1000, cum);
        else
            EMIT("strata_query_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
    }
    EMIT("strata_query_duration_seconds_sum %.6f\nstrata_query_duration_seconds_count %" PRIu64 "\n",
         (double)atomic_load(&s->query_latency_sum_us) / 1e6, cum);
    EMIT("# TYPE strata_http_responses_total counter\n");
    for (int k = 1; k < 6; k++)
        EMIT("strata_http_responses_total{code=\"%dxx\"} %" PRIu64 "\n", k, atomic_load(&s->status_count[k]));
    static const char *const names[] = {"strata_table_rows", "strata_table_segments",
                                        "strata_table_segment_bytes", "strata_table_partitions",
                                        "strata_memtable_rows", "strata_memtable_bytes",
                                        "strata_flushes_total", "strata_flush_seconds_total",
                                        "strata_flush_failures_total"};
    enum { NTABLE_METRICS = sizeof names / sizeof names[0] };
    for (int m = 0; m < NTABLE_METRICS; m++) {
        EMIT("# TYPE %s %s\n", names[m], m >= 6 ? "counter" : "gauge");
        strata_table *t;
        for (size_t i = 0; (t = catalog_at(s->cat, i)) != NULL; i++) {
            table_stats st;
            table_get_stats(t, &st);
            table_flush_record fr; /* failures: flushes that failed, their rows kept and retried */
            table_flush_trouble(t, &fr);
            double v[NTABLE_METRICS] = {
                (double)(st.segment_rows + st.memtable_rows), (double)st.segments,
                (double)st.segment_bytes, (double)st.partitions, (double)st.memtable_rows,
                (double)st.memtable_bytes, (double)st.flushes, (double)st.flush_ns / 1e9,
                (double)fr.failures};
            if (m == 7) /* seconds: nanosecond digits, not double noise */
                EMIT("%s{table=\"%s\"} %.9f\n", names[m], table_schema(t)->name, v[m]);
            else
                EMIT("%s{table=\"%s\"} %.17g\n", names[m], table_schema(t)->name, v[m]);
            catalog_put(s->cat, t);
        }
    }
    EMIT("# HELP strata_table_watermark_ms Latest event time minus the table's allowed lateness.\n"
         "# TYPE strata_table_watermark_ms gauge\n");
    {
        strata_table *t;
        for (size_t i = 0; (t = catalog_at(s->cat, i)) != NULL; i++) {
            table_stats st;
            table_get_stats(t, &st);
            if (st.max_time != INT64_MIN)
                EMIT("strata_table_watermark_ms{table=\"%s\"} %" PRId64 "\n", table_schema(t)->name,
                     st.max_time - table_schema(t)->lateness_ms);
            catalog_put(s->cat, t);
        }
    }
    {
        EMIT("# HELP strata_table_unavailable A table that cannot be opened (1); /health says why.\n"
             "# TYPE strata_table_unavailable gauge\n");
        char name[STRATA_NAME_MAX + 1];
        for (size_t i = 0; catalog_broken_at(s->cat, i, name, sizeof name, NULL, 0); i++)
            EMIT("strata_table_unavailable{table=\"%s\"} 1\n", name);
        json_t *problems = service_problems(s);
        EMIT("# HELP strata_health_problems Problems /health lists (0: ok, else degraded).\n"
             "# TYPE strata_health_problems gauge\nstrata_health_problems %zu\n",
             json_array_size(problems));
        json_decref(problems);
    }
    if (s->opts.kafka)
        kafka_ingest_metrics(s->opts.kafka, &b);
#undef EMIT
    if (b.oom) {
        buf_free(&b);
        return send_error(s, c, 503, "out of memory");
    }
    return send_text(s, c, 200, (char *)b.data, b.len, "text/plain; version=0.0.4");
}

/* ---- the access handler ------------------------------------------------------------------ */

/* Whether a request's Authorization header carries the token: the scheme "Bearer" in any
 * case (RFC 7235), then the token compared in time that depends only on the expected
 * token's length, so timing does not tell how much of a guess was right. */
static bool auth_header_matches(const strata_server *s, const char *got)
{
    if (strncasecmp(got, "Bearer ", 7) != 0)
        return false;
    got += 7;
    while (*got == ' ')
        got++;
    const char *want = s->auth_header + 7; /* "Bearer <token>" */
    size_t want_len = strlen(want), got_len = strnlen(got, sizeof s->auth_header);
    while (got_len && (got[got_len - 1] == ' ' || got[got_len - 1] == '\t'))
        got_len--; /* whitespace around a field value is not part of it (RFC 9110) */
    unsigned char diff = got_len != want_len;
    for (size_t i = 0; i < want_len; i++) {
        unsigned char g = i < got_len ? (unsigned char)got[i] : 0;
        diff |= g ^ (unsigned char)want[i];
    }
    return diff == 0;
}

static void request_free(strata_server *s, request *rq)
{
    if (!rq)
        return;
    atomic_fetch_sub(&s->ingest_staged, rq->staged_bytes);
    event_decoder_free(rq->decoder);
    if (rq->batch_ready)
        ingest_batch_give(s, &rq->batch); /* before the table (and its schema) may go */
    catalog_put(s->cat, rq->t);
    buf_free(&rq->body);
    buf_free(&rq->carry);
    ndjson_answer_free(&rq->answer);
    free(rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    request_free(cls, *con_cls);
    *con_cls = NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    strata_server *s = cls;
    request *rq = *con_cls;
    if (!rq) {
        /* First call: headers only. Route, authenticate and refuse early where we can. */
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        *con_cls = rq;
        rq->s = s;
        route_request(rq, url, method);
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        rq->auth_ok = !s->auth_header[0] || (auth && auth_header_matches(s, auth));
        rq->limit = rq->route == R_INGEST ? s->opts.max_ingest_body : s->opts.max_body;
        const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
        if (enc && *enc && strcasecmp(enc, "identity") != 0)
            snprintf(rq->encoding, sizeof rq->encoding, "%s", enc);
        if (rq->route == R_INGEST && rq->method_ok && rq->auth_ok && !rq->encoding[0]) {
            rq->t = catalog_get(s->cat, rq->table);
            if (rq->t) {
                strata_err derr = {0};
                if (!(rq->decoder = event_decoder_create(table_schema(rq->t), &derr)) ||
                    ingest_batch_take(s, table_schema(rq->t), &rq->batch) != 0)
                    return MHD_NO;
                rq->batch_ready = true;
                if (ndjson_answer_init(&rq->answer, &derr) != 0)
                    return MHD_NO;
            }
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!rq->auth_ok || rq->route == R_NONE || !rq->method_ok || rq->encoding[0]) {
            *upload_size = 0; /* answered at the end; drain */
            return MHD_YES;
        }
        if (rq->body.len + *upload_size > rq->limit) {
            rq->too_large = true;
            if (rq->route == R_INGEST && rq->t)
                ingest_fail(rq, 413); /* let its staged rows go now */
        }
        if (rq->too_large) {
            *upload_size = 0;
            return MHD_YES;
        }
        if (rq->route == R_INGEST && rq->t) {
            rq->body.len += *upload_size; /* counts bytes for the limit only */
            size_t skip = 0;
            if (!rq->body_started && *upload_size >= 3 && memcmp(upload, "\xEF\xBB\xBF", 3) == 0)
                skip = 3; /* a UTF-8 byte order mark (Windows tools write one) is not data */
            rq->body_started = true;
            ingest_piece(rq, upload + skip, *upload_size - skip);
        } else {
            buf_put(&rq->body, upload, *upload_size);
            if (rq->body.oom)
                return MHD_NO;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    /* The body is complete: answer. */
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (!rq->auth_ok && rq->route == R_HEALTH && get)
        return handle_health(s, c, false); /* liveness for probes: nothing about the data */
    if (!rq->auth_ok) {
        static const char *const www[] = {"WWW-Authenticate", "Bearer realm=\"strata\"", NULL};
        return send_error_with(s, c, 401, www, "missing or wrong bearer token (Authorization: Bearer <token>)");
    }
    if (rq->bad_name)
        return send_error(s, c, 400, "a table name must be 1 to %d characters", STRATA_NAME_MAX - 1);
    if (rq->route == R_NONE)
        return send_error(s, c, 404, "no such path: %s %s", method, url);
    if (rq->method_ok && strcmp(method, "OPTIONS") == 0) {
        const char *const allow[] = {"Allow", rq->allow, NULL};
        return send_text_with(s, c, 204, NULL, 0, NULL, allow);
    }
    if (!rq->method_ok) {
        const char *const allow[] = {"Allow", rq->allow, NULL};
        return send_error_with(s, c, 405, allow, "%s is not allowed on %s (allowed: %s)", method, url, rq->allow);
    }
    if (rq->encoding[0])
        return send_error(s, c, 415, "Content-Encoding '%s' is not supported: send the body "
                          "uncompressed (nothing of this request was kept)", rq->encoding);
    if (rq->too_large)
        return send_error(s, c, 413, "request body over the limit of %" PRIu64 " bytes (strata serve %s, or "
                          "%s in the config)", rq->limit, rq->route == R_INGEST ? "--max-ingest-body" : "--max-body",
                          rq->route == R_INGEST ? "max_ingest_body" : "max_body");
    switch (rq->route) {
    case R_HEALTH: return handle_health(s, c, true);
    case R_METRICS: return handle_metrics(s, c);
    case R_TABLES: return handle_tables(s, c);
    case R_TABLE: return handle_table(s, c, rq, method);
    case R_TABLE_FLUSH: return handle_flush(s, c, rq);
    case R_ACCEPT_RESET: return handle_accept_reset(s, c, rq);
    case R_QUERY: return handle_query(s, c, rq);
    case R_INGEST:
        if (!rq->t)
            return send_no_table(s, c, rq->table, "");
        return ingest_finish(s, c, rq);
    default: return send_error(s, c, 404, "no such path");
    }
}

/* libmicrohttpd's own messages (a failed bind, a broken connection) go to the server's
 * log as one line each, not raw to stderr. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    strata_server *s = cls;
    char line[600];
    int n = snprintf(line, sizeof line, "http: ");
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    line[strcspn(line, "\n")] = 0;
    if (s->opts.log)
        s->opts.log(line);
}

int server_start(strata_catalog *cat, const server_opts *opts, strata_server **out, strata_err *err)
{
    *out = NULL;
    strata_server *s = calloc(1, sizeof *s);
    if (!s)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    s->cat = cat;
    s->opts = *opts;
    pthread_mutex_init(&s->pool_lock, NULL);
    table_counts_init(&s->unknown_field_events);
    table_counts_init(&s->ingested_by_table);
    table_counts_init(&s->rejected_by_table);
    if (!s->opts.host)
        s->opts.host = "127.0.0.1";
    if (!s->opts.max_body)
        s->opts.max_body = 1u << 20;
    if (!s->opts.max_ingest_body)
        s->opts.max_ingest_body = 256u << 20;
    if (!s->opts.query_timeout_ms)
        s->opts.query_timeout_ms = 30000;
    if (!s->opts.query_max_groups)
        s->opts.query_max_groups = 1000000;
    if (!s->opts.query_max_memory)
        s->opts.query_max_memory = UINT64_C(1) << 30;
    if (!s->opts.ingest_memory)
        s->opts.ingest_memory = UINT64_C(1) << 30;
    if (!s->opts.threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->opts.threads = n > 0 ? (unsigned)n : 2;
    }
    if (opts->auth_token && opts->auth_token[0])
        snprintf(s->auth_header, sizeof s->auth_header, "Bearer %s", opts->auth_token);
    s->started = now_ms();
    struct sockaddr_in sa;
    struct sockaddr_in6 sa6;
    memset(&sa, 0, sizeof sa);
    memset(&sa6, 0, sizeof sa6);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(opts->port);
    sa6.sin6_family = AF_INET6;
    sa6.sin6_port = htons(opts->port);
    bool v6 = strchr(s->opts.host, ':') != NULL;
    if (v6 ? inet_pton(AF_INET6, s->opts.host, &sa6.sin6_addr) != 1
           : inet_pton(AF_INET, s->opts.host, &sa.sin_addr) != 1) {
        int rc = strata_err_set(err, STRATA_EINVAL, "listen: '%s' is not an IPv4 or IPv6 address",
                                s->opts.host);
        free(s);
        return rc;
    }
    s->daemon = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0), opts->port, NULL,
        NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, /* first, or MHD warns */
        MHD_OPTION_SOCK_ADDR,
        v6 ? (struct sockaddr *)&sa6 : (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned int)s->opts.threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120, MHD_OPTION_END);
    if (!s->daemon) {
        free(s);
        return strata_err_set(err, STRATA_EIO, "cannot listen on %s:%u (in use, or not an address of "
                              "this machine)", opts->host ? opts->host : "127.0.0.1", opts->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : opts->port;
    *out = s;
    return 0;
}

uint16_t server_port(const strata_server *s)
{
    return s->port;
}

void server_stop(strata_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon);
    for (int i = 0; i < s->npool; i++)
        row_batch_free(&s->pool[i].b);
    pthread_mutex_destroy(&s->pool_lock);
    table_counts_destroy(&s->unknown_field_events);
    table_counts_destroy(&s->ingested_by_table);
    table_counts_destroy(&s->rejected_by_table);
    free(s);
}
