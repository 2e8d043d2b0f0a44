/*
 * server.h — the HTTP API of `strata serve` on libmicrohttpd (epoll, a thread pool sized
 * to the cores, keep-alive).
 *
 * Endpoints (JSON in and out):
 *   GET  /health                    {"status": "ok", ...}
 *   GET  /tables                    every table with rows, segments, bytes, partitions
 *   GET  /tables/{name}             the same for one table, with its schema, watermark and
 *                                   Kafka consumer state
 *   PUT  /tables/{name}             create from a schema body (201; 200 if identical; 409);
 *                                   a table with a kafka section starts consuming at once
 *   DELETE /tables/{name}           stop its consumer, drop it and its files
 *   POST /ingest/{name}             NDJSON body, streamed line by line; rows are durable
 *                                   (flushed to segments) before the answer, which counts
 *                                   ingested, rejected and blank lines and reports unknown
 *                                   fields (format in ingest/ndjson_answer.h)
 *   POST /tables/{name}/flush       flush every memtable of the table now
 *   POST /tables/{name}/kafka/accept-reset  read the partitions a Kafka offset reset
 *                                   stopped again from their start, as new data
 *   POST /query                     the JSON query (http/query_parse.h; the answer's
 *                                   format in http/query_answer.h)
 *   GET  /metrics                   Prometheus text format
 *   GET  /query/live?q=..&every=1s  a query's answer on every tick, as server-sent events
 *                                   (api_live.c)
 *   GET, POST /grafana/...          the Grafana JSON datasource protocol (api_grafana.c):
 *                                   /grafana (health), /query, /metrics,
 *                                   /metric-payload-options, /variable, /tag-keys,
 *                                   /tag-values; CORS for any origin, preflights answered
 *                                   without the token
 *   GET /health answers "degraded" with the reasons when Kafka data was lost (retention) or
 *   a consumer cannot reach its brokers.
 * Errors are {"error": "..."} with a fitting status: 400 malformed, 401 no/bad token,
 * 404 unknown path or table, 405 wrong method, 409 conflicting schema, 413 body over the
 * limit, 422 query over its time or group limit, 500/503 engine failures.
 *
 * Threads: MHD's pool threads run the handlers; tables serialize their own writers; the
 * server's counters are atomics. server_stop waits for in-flight requests.
 *
 * Memory: server_start allocates the server, server_stop frees it (and everything it
 * holds). opts is copied; its host string, the catalog and the Kafka consumers are
 * borrowed: they must outlive the server.
 *
 * Inside http/: server.c (daemon, routing, auth, limits), one api_*.c per resource and
 * their internal header api.h, the query language in query_parse.c and query_answer.c.
 */
#ifndef STRATA_SERVER_H
#define STRATA_SERVER_H

#include <stdint.h>

#include "engine/catalog.h"
#include "engine/error.h"
#include "ingest/kafka_ingest.h"

typedef struct server_opts {
    const char *host;         /* numeric IPv4 or IPv6 address, default "127.0.0.1" */
    uint16_t port;            /* default 8686; 0 picks a free port */
    const char *auth_token;   /* when set, every request needs "Authorization: Bearer <t>" */
    uint64_t max_body;        /* bytes, every endpoint but /ingest; default 1 MiB */
    uint64_t max_ingest_body; /* bytes; default 256 MiB */
    int64_t query_timeout_ms; /* default 30000 */
    uint64_t query_max_groups; /* default 1,000,000 */
    uint64_t query_max_memory; /* bytes of group state per query; default 1 GiB */
    uint64_t ingest_memory;   /* bytes all ingest requests being received may stage; 1 GiB */
    unsigned threads;         /* default: the number of cores */
    kafka_ingest *kafka;      /* borrowed, may be NULL: consumers of Kafka tables */
    int64_t self_metrics_ms;  /* sample /metrics into the table _strata this often; 0: off */
    void (*log)(const char *msg); /* one line for the operator's log; may be NULL */
} server_opts;

typedef struct strata_server strata_server;

/* Starts serving cat (borrowed; must outlive the server). Returns 0 and *out, or an error
 * (STRATA_EIO when the address cannot be bound, naming it). */
int server_start(strata_catalog *cat, const server_opts *opts, strata_server **out /* OUT */,
                 strata_err *err);
/* The port actually bound (useful with port 0). */
uint16_t server_port(const strata_server *s);
/* Stops accepting, finishes in-flight requests, frees the server. */
void server_stop(strata_server *s);

#endif
