/*
 * api.h — INTERNAL to http/: what server.c and the endpoint files share. Nothing outside
 * http/ includes it; the public face of the HTTP layer is server.h.
 *
 * server.c receives every request (routing, auth, limits, the body) and, once the body
 * is complete and the request passed its checks, calls the route's handler: one file per
 * resource holds its handlers (api_tables.c: /tables and /health, api_ingest.c: POST
 * /ingest, api_query.c: POST /query, api_metrics.c: GET /metrics). Every answer goes out
 * through the server_send_* helpers, which count statuses for /metrics and end JSON
 * answers with a newline.
 *
 * Memory: a request is calloc'd by server.c on its first call and freed when MHD reports
 * it completed; what a handler allocates for its answer is handed to MHD by the helpers.
 */
#ifndef STRATA_HTTP_API_H
#define STRATA_HTTP_API_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/buf.h"
#include "engine/catalog.h"
#include "engine/query.h"
#include "engine/schema.h"
#include "http/ingest_commit.h"
#include "http/server.h"
#include "ingest/http_ingest.h"
#include "ingest/table_counts.h"

/* Query latency histogram of /metrics: upper bounds in ms, then one bucket for the rest. */
#define API_QUERY_LATENCY_BUCKETS 12
extern const double api_query_latency_bounds_ms[API_QUERY_LATENCY_BUCKETS];

/* Threads: the fields up to started are set by server_start before the daemon runs and
 * only read afterwards; the counters are atomics (or table_counts, with their own lock),
 * added to by any of MHD's pool threads; ingest has its own lock and atomic. */
struct strata_server {
    struct MHD_Daemon *daemon;
    strata_catalog *cat; /* borrowed */
    server_opts opts;    /* with defaults filled in */
    char auth_header[512]; /* "Bearer <token>", or "" when no token is required */
    uint16_t port;
    double started; /* clock_mono_ms_frac at start, for uptime */
    _Atomic uint64_t rows_ingested, rows_rejected, ingest_requests;
    table_counts unknown_field_events; /* per table: ingested events with unknown fields */
    table_counts ingested_by_table, rejected_by_table; /* rows_ingested, rows_rejected per table */
    _Atomic uint64_t queries, query_errors;
    _Atomic uint64_t query_latency[API_QUERY_LATENCY_BUCKETS + 1];
    _Atomic uint64_t query_latency_sum_us;
    _Atomic uint64_t status_count[6]; /* 1xx..5xx by first digit */
    http_ingest_pool ingest; /* the memory budget and warm row batches of ingest requests */
    ingest_commit *commit;   /* acknowledges ingest requests once durable (group commit) */
    _Atomic uint64_t active; /* requests between their first call and their completion */
    _Atomic bool stopping;   /* server_stop began: new requests are answered 503 */
    struct self_metrics *self; /* the _strata sampler (self_metrics.c); NULL when off */
    struct live_streams *live; /* GET /query/live's streams and their ticker (api_live.c) */
};

struct route; /* server.c's routing table */

/* ---- live queries: GET /query/live (api_live.c) ---- */

#define LIVE_MAX_STREAMS 32 /* live queries that may run at once */
typedef struct live_streams live_streams;
/* Starts the ticker of s's live queries: 0 and *out, or an error. */
int live_streams_start(strata_server *s, live_streams **out /* OUT */, strata_err *err);
/* Stops the ticker and ends every stream (their answers end once what was begun is
 * written); new live queries are refused. Before libmicrohttpd stops. */
void live_streams_end(live_streams *ls);
/* Frees what is left, once libmicrohttpd stopped. NULL is ignored. */
void live_streams_free(live_streams *ls);
/* Live queries running now. */
int live_streams_count(live_streams *ls);

/* ---- strata's own metrics as the table _strata (self_metrics.c) ---- */

typedef struct self_metrics self_metrics;
/* Starts sampling s's /metrics into _strata every every_ms: 0 and *out, or an error. */
int self_metrics_start(strata_server *s, int64_t every_ms, self_metrics **out /* OUT */,
                       strata_err *err);
/* Stops the sampler (a sample in progress finishes) and frees it; NULL is ignored. */
void self_metrics_stop(self_metrics *m);

/* One request, from its headers to its completion. Threads: used by the MHD thread that
 * serves its connection, one call at a time. */
typedef struct request {
    strata_server *s;
    const struct route *route; /* NULL: no such path */
    char table[STRATA_NAME_MAX + 1]; /* the {name} of the path, when it has one */
    bool method_ok, too_large, bad_name, auth_ok;
    bool refused_stopping; /* it came after server_stop began: answered 503, nothing kept */
    char encoding[32]; /* a Content-Encoding strata does not read ("" when none) */
    bytebuf body;      /* the body; of POST /ingest into a table, only .len (bytes so far) */
    uint64_t limit;    /* bytes the body may have */
    /* POST /ingest (api_ingest.c): the table, held from the headers until the answer
     * (NULL when there is none such: the body is then kept like any other, and the answer
     * is 404), and its rows as they are read. */
    strata_table *t;
    http_ingest ingest;
    /* An ingest waiting for its rows to be durable (suspended, ingest_commit.h): its
     * answer is made and kept until the outcome comes. */
    bool durable_wait;
    ingest_commit_outcome durable;
    json_t *answer;
    uint64_t answer_rows;
} request;

/* A route's handler: answers rq (its body complete, its checks passed) on c. */
typedef enum MHD_Result api_handler(strata_server *s, struct MHD_Connection *c, request *rq,
                                    const char *method);

/* ---- answers (reply.c) ---- */

/* reply_text with extra headers (name, value, ..., NULL); text may be NULL when len is 0. */
enum MHD_Result reply_text_with(strata_server *s, struct MHD_Connection *c, unsigned status,
                                char *text, size_t len, const char *ctype,
                                const char *const *headers);
/* Sends data[0..len), which lives as long as the program (the console page), with its
 * content type and extra headers (name, value, ..., NULL). */
enum MHD_Result reply_static(strata_server *s, struct MHD_Connection *c, unsigned status,
                             const void *data, size_t len, const char *ctype,
                             const char *const *headers);
/* Sends text[0..len) (malloc'd; taken over, freed even on failure) with its content type. */
enum MHD_Result reply_text(strata_server *s, struct MHD_Connection *c, unsigned status,
                                 char *text, size_t len, const char *ctype);
/* Sends a JSON text (malloc'd; taken over) with the final newline every answer ends with,
 * as curl users expect (without it when memory for one byte more runs out). */
enum MHD_Result reply_json_text(strata_server *s, struct MHD_Connection *c, unsigned status,
                                      char *text, size_t len);
/* Sends j compactly (a reference taken over; NULL gives MHD_NO, closing the connection). */
enum MHD_Result reply_json(strata_server *s, struct MHD_Connection *c, unsigned status, json_t *j);
/* reply_json with extra headers (name, value, ..., NULL); j NULL (memory ran out making
 * it) or a failed dump is answered 503 with the same headers. */
enum MHD_Result reply_json_with(strata_server *s, struct MHD_Connection *c, unsigned status,
                                json_t *j, const char *const *headers);
/* Sends {"error": "<printf of fmt>"} (the message cut at 1023 bytes). */
enum MHD_Result reply_error(strata_server *s, struct MHD_Connection *c, unsigned status,
                                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* reply_error with extra headers (name, value, ..., NULL), for 401 and 405 answers. */
enum MHD_Result reply_error_with(strata_server *s, struct MHD_Connection *c, unsigned status,
                                 const char *const *headers, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The status for an engine error code: 400 EINVAL, 404 ENOTFOUND, 409 EEXIST, 422 EFULL,
 * 503 ENOMEM, else 500. */
unsigned reply_status_of(int code);

/* ---- /tables and /health (api_tables.c) ---- */

api_handler api_tables_health, api_tables_list, api_tables_one, api_tables_flush,
    api_tables_accept_reset, api_tables_optimize;
/* Everything that makes the service degraded, one sentence each (a new JSON array; NULL
 * when memory runs out): tables that cannot be opened, refuse writes, fail flushes or met
 * damaged segments, and Kafka's problems. */
json_t *api_tables_problems(strata_server *s);
/* The rows every query of t sees (in a dedup table the latest version per key, without
 * deleted keys): the engine's own count(*), into *out. 0 or an error. */
int api_table_logical_rows(strata_table *t, uint64_t *out);

/* api_rollups.c: a table's rollup tiers as GET /tables/{name} shows them (a new
 * reference, NULL when memory runs out), and their /metrics lines appended to b. */
json_t *api_rollups_json(strata_table *t);
void api_rollups_metrics(struct strata_server *s, bytebuf *b);
/* Answers for a table name that names no open table: 503 when it exists but cannot be
 * opened (saying why), else 404. prefix starts the message ("" or "table: "). */
enum MHD_Result api_tables_send_missing(strata_server *s, struct MHD_Connection *c,
                                        const char *name, const char *prefix);

/* ---- POST /ingest (api_ingest.c) ---- */

api_handler api_ingest_post;
/* After the headers of an accepted POST /ingest: holds the table (rq->t, NULL when none)
 * and starts reading rows. false when memory runs out (the connection is then closed). */
bool api_ingest_begin(request *rq);
/* The second call of an ingest's handler, once ingest_commit resumed it: answers. */
enum MHD_Result api_ingest_durable(strata_server *s, struct MHD_Connection *c, request *rq);
/* The next piece of the body of an ingest into a table (rq->t set). */
void api_ingest_piece(request *rq, const char *data, size_t len);
/* The body went over its limit: its rows are let go now (the answer is 413). */
void api_ingest_refuse(request *rq);
/* Lets go of the request's rows, decoder and table; safe on any request, any number of
 * times. */
void api_ingest_release(request *rq);

/* ---- POST /query (api_query.c), GET /metrics (api_metrics.c) ---- */

api_handler api_query_post;
api_handler api_metrics_get;
api_handler api_live_get;
api_handler api_console_get; /* GET /: the console page (console.c) */
api_handler api_tables_segments; /* GET /tables/{name}/segments (api_storage.c) */
/* Appends GET /metrics's text (Prometheus format 0.0.4) to b; b->oom when memory ran out. */
void api_metrics_render(strata_server *s, bytebuf *b);
/* Parses the query text[0..len) against t and runs it under the server's limits (a new
 * damaged segment it meets is logged once). 0: *q and *out are the caller's to free
 * (query_free, query_result_free). Else an engine error with the message in err (a limit
 * passed names its setting), and nothing to free. */
int api_query_run(strata_server *s, strata_table *t, const char *text, size_t len,
                  strata_query *q /* OUT */, query_result **out /* OUT */, strata_err *err);
/* Counts one query in /metrics: an error, or an answer t0 (clock_mono_ms_frac) started. */
void api_query_count(strata_server *s, double t0, bool failed);

/* ---- the Grafana JSON datasource under /grafana (api_grafana.c) ---- */

api_handler api_grafana_health, api_grafana_query, api_grafana_metrics,
    api_grafana_payload_options, api_grafana_variable, api_grafana_tag_keys,
    api_grafana_tag_values;
/* The CORS headers of an answer to a /grafana request into out (name, value, ...,
 * NULL; at most API_CORS_HEADERS entries with the NULL): the request's Origin allowed
 * (with credentials), the headers and methods the plugin uses. */
#define API_CORS_HEADERS 16
void api_grafana_cors(struct MHD_Connection *c, const char **out);

#endif
