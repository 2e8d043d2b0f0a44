/*
 * server.c — the daemon of the HTTP API (endpoints and statuses in server.h): routing,
 * auth, limits and the life of a request; the endpoints themselves are one file per
 * resource (api_tables.c, api_ingest.c, api_query.c, api_metrics.c; see api.h).
 *
 * libmicrohttpd calls on_request several times per request: first with the headers only
 * (the request is routed through the table below, its bearer token checked, its limit
 * chosen, and an ingest begun), then once per piece of the body, then once more when the
 * body is complete, to answer. Most endpoints buffer their body up to max_body; POST
 * /ingest instead hands its pieces to api_ingest.c as they arrive, under max_ingest_body.
 * A request refused early (no token, no such path, a wrong method, an unsupported
 * Content-Encoding, a body over its limit) has the rest of its body drained unread and is
 * answered at the end with the reason. on_completed frees the request, whatever happened.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "engine/buf.h"
#include "engine/clock.h"
#include "http/api.h"
#include "http/query_answer.h"

/* How long server_stop waits for requests in progress to finish. */
#define STOP_DRAIN_MS 10000

/* ---- routing ------------------------------------------------------------------------ */

#define ROUTE_STREAMED 1 /* the body goes to api_ingest.c as it arrives, under max_ingest_body */
#define ROUTE_OPEN 2     /* a GET without the token is answered too: liveness probes (the
                          * handler then tells nothing of the data), the console page */
#define ROUTE_CORS 4     /* browsers of any origin may call it: CORS headers on every answer,
                          * preflights (OPTIONS) answered without the token */

/* A path and what answers it. Without after, path is the whole path; with it, path is
 * what comes before a table name and after what must follow the name ("" for nothing). */
typedef struct route {
    const char *path, *after;
    const char *allow; /* the methods it takes, for 405 and OPTIONS answers */
    api_handler *answer;
    unsigned flags;
} route;

/* HEAD goes with GET and OPTIONS with every path (browsers and probes send both). */
static const char GETS[] = "GET, HEAD, OPTIONS", POSTS[] = "POST, OPTIONS",
                  TABLE[] = "GET, HEAD, PUT, DELETE, OPTIONS";

static const route routes[] = {
    {"/", NULL, GETS, api_console_get, ROUTE_OPEN},
    {"/index.html", NULL, GETS, api_console_get, ROUTE_OPEN},
    {"/health", NULL, GETS, api_tables_health, ROUTE_OPEN},
    {"/metrics", NULL, GETS, api_metrics_get, 0},
    {"/query", NULL, POSTS, api_query_post, 0},
    {"/query/live", NULL, GETS, api_live_get, 0},
    {"/tables", NULL, GETS, api_tables_list, 0},
    {"/tables/", NULL, GETS, api_tables_list, 0},
    {"/ingest/", "", POSTS, api_ingest_post, ROUTE_STREAMED},
    {"/tables/", "", TABLE, api_tables_one, 0},
    {"/tables/", "/flush", POSTS, api_tables_flush, 0},
    {"/tables/", "/segments", GETS, api_tables_segments, 0},
    {"/tables/", "/optimize", POSTS, api_tables_optimize, 0},
    {"/tables/", "/kafka/accept-reset", POSTS, api_tables_accept_reset, 0},
    {"/grafana", NULL, GETS, api_grafana_health, ROUTE_CORS},
    {"/grafana/", NULL, GETS, api_grafana_health, ROUTE_CORS},
    {"/grafana/query", NULL, POSTS, api_grafana_query, ROUTE_CORS},
    {"/grafana/metrics", NULL, POSTS, api_grafana_metrics, ROUTE_CORS},
    {"/grafana/metric-payload-options", NULL, POSTS, api_grafana_payload_options, ROUTE_CORS},
    {"/grafana/variable", NULL, POSTS, api_grafana_variable, ROUTE_CORS},
    {"/grafana/tag-keys", NULL, POSTS, api_grafana_tag_keys, ROUTE_CORS},
    {"/grafana/tag-values", NULL, POSTS, api_grafana_tag_values, ROUTE_CORS},
};

/* Copies the table name that p starts with (up to a '/' or the end) into out[cap]; false
 * (and *bad) when it is empty or too long. */
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

/* The route of url, its table name in rq->table; NULL when there is none (rq->bad_name
 * set when the path holds a table name that cannot be one). */
static const route *route_find(request *rq, const char *url)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const route *r = &routes[i];
        if (!r->after) {
            if (strcmp(url, r->path) == 0)
                return r;
            continue;
        }
        size_t n = strlen(r->path);
        if (strncmp(url, r->path, n) != 0)
            continue;
        if (!name_from(url + n, rq->table, sizeof rq->table, &rq->bad_name))
            return NULL;
        if (strcmp(url + n + strlen(rq->table), r->after) == 0)
            return r;
    }
    return NULL;
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

/* Whether the body goes to api_ingest.c as it arrives: an ingest into a table. */
static bool ingesting(const request *rq)
{
    return rq->route && (rq->route->flags & ROUTE_STREAMED) && rq->t;
}

/* ---- auth --------------------------------------------------------------------------- */

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

/* ---- the access handler ------------------------------------------------------------------ */

static void request_free(request *rq)
{
    if (!rq)
        return;
    json_decref(rq->answer);
    api_ingest_release(rq);
    buf_free(&rq->body);
    free(rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    strata_server *s = cls;
    (void)c;
    (void)toe;
    if (*con_cls)
        atomic_fetch_sub(&s->active, 1);
    request_free(*con_cls);
    *con_cls = NULL;
}

/* The headers are in: routes, authenticates and refuses early where it can. */
static enum MHD_Result on_headers(strata_server *s, struct MHD_Connection *c, request *rq,
                                  const char *url, const char *method)
{
    rq->s = s;
    rq->refused_stopping = atomic_load(&s->stopping);
    rq->route = route_find(rq, url);
    rq->method_ok = rq->route && method_in(method, rq->route->allow);
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    rq->auth_ok = !s->auth_header[0] || (auth && auth_header_matches(s, auth));
    bool streamed = rq->route && (rq->route->flags & ROUTE_STREAMED);
    rq->limit = streamed ? s->opts.max_ingest_body : s->opts.max_body;
    const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
    if (enc && *enc && strcasecmp(enc, "identity") != 0)
        snprintf(rq->encoding, sizeof rq->encoding, "%s", enc);
    if (streamed && rq->method_ok && rq->auth_ok && !rq->encoding[0] && !rq->refused_stopping &&
        !api_ingest_begin(rq))
        return MHD_NO;
    return MHD_YES;
}

/* A piece of the body: kept, handed to ingest, or drained (a request already refused). */
static enum MHD_Result on_piece(request *rq, const char *data, size_t *size)
{
    size_t n = *size;
    *size = 0;
    if (!rq->auth_ok || !rq->route || !rq->method_ok || rq->encoding[0] || rq->refused_stopping)
        return MHD_YES; /* answered at the end; drain */
    if (rq->body.len + n > rq->limit) {
        rq->too_large = true;
        if (ingesting(rq))
            api_ingest_refuse(rq); /* let its staged rows go now */
    }
    if (rq->too_large)
        return MHD_YES;
    if (ingesting(rq)) {
        api_ingest_piece(rq, data, n);
        return MHD_YES;
    }
    buf_put(&rq->body, data, n);
    return rq->body.oom ? MHD_NO : MHD_YES;
}

/* The body is complete: the checks every request passes, in order, then its handler. */
static enum MHD_Result on_complete(strata_server *s, struct MHD_Connection *c, request *rq,
                                   const char *url, const char *method)
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    /* Answers on a CORS route carry its headers, refusals too (else a browser shows a
     * CORS failure instead of the reason). */
    const char *cors[API_CORS_HEADERS + 2] = {NULL};
    bool is_cors = rq->route && (rq->route->flags & ROUTE_CORS);
    if (is_cors)
        api_grafana_cors(c, cors);
    const char *const *hx = is_cors ? cors : NULL;
    if (rq->refused_stopping) {
        return reply_error_with(s, c, 503, hx, "strata is stopping: send this request again once it "
                                "is back (nothing of it was kept)");
    }
    if (is_cors && strcmp(method, "OPTIONS") == 0) /* a preflight: it never carries the token */
        return reply_text_with(s, c, 204, NULL, 0, NULL, cors);
    if (!rq->auth_ok && rq->route && (rq->route->flags & ROUTE_OPEN) && get)
        return rq->route->answer(s, c, rq, method); /* liveness for probes: nothing about the data */
    if (!rq->auth_ok) {
        const char *www[API_CORS_HEADERS + 4] = {"WWW-Authenticate", "Bearer realm=\"strata\""};
        for (int i = 0; hx && hx[i]; i++)
            www[2 + i] = hx[i];
        return reply_error_with(s, c, 401, www, "missing or wrong bearer token (Authorization: Bearer <token>)");
    }
    if (rq->bad_name)
        return reply_error(s, c, 400, "a table name must be 1 to %d characters", STRATA_NAME_MAX - 1);
    if (!rq->route)
        return reply_error(s, c, 404, "no such path: %s %s", method, url);
    if (rq->method_ok && strcmp(method, "OPTIONS") == 0) {
        const char *const allow[] = {"Allow", rq->route->allow, NULL};
        return reply_text_with(s, c, 204, NULL, 0, NULL, allow);
    }
    if (!rq->method_ok) {
        const char *allow[API_CORS_HEADERS + 4] = {"Allow", rq->route->allow};
        for (int i = 0; hx && hx[i]; i++)
            allow[2 + i] = hx[i];
        return reply_error_with(s, c, 405, allow, "%s is not allowed on %s (allowed: %s)", method, url,
                               rq->route->allow);
    }
    if (rq->encoding[0])
        return reply_error_with(s, c, 415, hx, "Content-Encoding '%s' is not supported: send the body "
                                 "uncompressed (nothing of this request was kept)", rq->encoding);
    if (rq->too_large) {
        bool ingest = rq->route->flags & ROUTE_STREAMED;
        return reply_error_with(s, c, 413, hx, "request body over the limit of %" PRIu64 " bytes (strata "
                                 "serve %s, or %s in the config)", rq->limit,
                                 ingest ? "--max-ingest-body" : "--max-body",
                                 ingest ? "max_ingest_body" : "max_body");
    }
    return rq->route->answer(s, c, rq, method);
}

/* Once the server stops, a new connection is closed as soon as it is accepted. (Not
 * MHD_quiesce_daemon: with a thread pool on epoll, libmicrohttpd 0.9.75 races a worker
 * that removes the listening socket from its epoll set on its own, and panics when its
 * own removal then fails with ENOENT: seen as an abort at SIGTERM under load.) */
static enum MHD_Result accept_unless_stopping(void *cls, const struct sockaddr *addr, socklen_t len)
{
    (void)addr;
    (void)len;
    const strata_server *s = cls;
    return atomic_load(&s->stopping) ? MHD_NO : MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    request *rq = *con_cls;
    if (!rq) {
        if (!(rq = calloc(1, sizeof *rq)))
            return MHD_NO;
        *con_cls = rq;
        atomic_fetch_add(&((strata_server *)cls)->active, 1);
        return on_headers(cls, c, rq, url, method);
    }
    if (rq->durable_wait)
        return api_ingest_durable(cls, c, rq); /* resumed: its rows are durable (or not) */
    if (*upload_size)
        return on_piece(rq, upload, upload_size);
    return on_complete(cls, c, rq, url, method);
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
    http_ingest_pool_init(&s->ingest, s->opts.ingest_memory);
    s->started = clock_mono_ms_frac();
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
    int crc = ingest_commit_start(&s->commit, err);
    if (!crc && (crc = live_streams_start(s, &s->live, err)) != 0)
        ingest_commit_stop(s->commit);
    if (crc) {
        free(s);
        return crc;
    }
    s->daemon = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME | (v6 ? MHD_USE_IPv6 : 0),
        opts->port, accept_unless_stopping, s, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, /* first, or MHD warns */
        MHD_OPTION_SOCK_ADDR,
        v6 ? (struct sockaddr *)&sa6 : (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned int)s->opts.threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120, MHD_OPTION_END);
    if (!s->daemon) {
        ingest_commit_stop(s->commit);
        live_streams_end(s->live);
        live_streams_free(s->live);
        free(s);
        return strata_err_set(err, STRATA_EIO, "cannot listen on %s:%u (in use, or not an address of "
                              "this machine)", opts->host ? opts->host : "127.0.0.1", opts->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : opts->port;
    if (s->opts.self_metrics_ms > 0 && self_metrics_start(s, s->opts.self_metrics_ms, &s->self, err) != 0) {
        MHD_stop_daemon(s->daemon);
        ingest_commit_stop(s->commit);
        live_streams_end(s->live);
        live_streams_free(s->live);
        free(s);
        return err->code;
    }
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
    /* A stop lets requests in progress finish: new connections are closed at once, requests
     * that start from now on are answered 503 (nothing kept: they may be sent again), and
     * the ones under way, ingests waiting for their log sync included, get their answers.
     * A sender cut off without an answer could not tell whether its rows landed. The wait
     * is bounded (STOP_DRAIN_MS) so a client trickling a body cannot hold the stop. Then
     * every suspended ingest is answered (libmicrohttpd must not be stopped with one
     * suspended); requests arriving after that sync on their own thread. */
    self_metrics_stop(s->self); /* it reads the server's counters */
    atomic_store(&s->stopping, true);
    live_streams_end(s->live); /* live queries end now: they would hold the drain below */
    int64_t deadline = clock_mono_ms() + STOP_DRAIN_MS;
    while (atomic_load(&s->active) > 0 && clock_mono_ms() < deadline) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    ingest_commit_stop(s->commit);
    MHD_stop_daemon(s->daemon);
    live_streams_free(s->live);
    http_ingest_pool_destroy(&s->ingest);
    table_counts_destroy(&s->unknown_field_events);
    table_counts_destroy(&s->ingested_by_table);
    table_counts_destroy(&s->rejected_by_table);
    free(s);
}
