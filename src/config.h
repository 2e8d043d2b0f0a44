/*
 * config.h — the settings of `strata serve`, from flags and a --config file, and the checks
 * that run before anything starts: limits, the bearer-token file, the --listen address.
 *
 * The config file is JSON; flags given on the command line win (a field already set is
 * left alone); relative paths in it are relative to the file's own directory:
 *   {"data": "DIR", "listen": "127.0.0.1:8686", "auth_token_file": "FILE",
 *    "max_body": "1MiB", "max_ingest_body": "256MiB", "ingest_memory": "1GiB",
 *    "query_timeout": "30s", "query_memory": "1GiB", "query_max_groups": 1000000,
 *    "kafka_brokers": "host:port,...", "tables": ["orders.json", ...]}
 * Each function here prints its own message ("strata serve: ...") on stderr when it fails.
 */
#ifndef STRATA_SRC_CONFIG_H
#define STRATA_SRC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_TABLE_FILES 64

/* 0 / empty means "not set": the server's default. */
typedef struct serve_cfg {
    char data[2048];
    char listen[256];
    char token_file[2048];
    uint64_t max_body, max_ingest_body, query_max_groups, query_memory, ingest_memory;
    char kafka_brokers[256];
    int64_t query_timeout_ms;
    int64_t self_metrics_ms; /* sampling of _strata: 0 unset (10 s), -1 off */
    int ntables;
    char tables[MAX_TABLE_FILES][1024];
} serve_cfg;

/* Fills every field of cfg still unset from the JSON file at path. Returns 0, or -1 (message
 * printed) when the file cannot be read, is not JSON, has an unknown key or a value of the
 * wrong kind; cfg may then be partly filled. */
int config_load(const char *path, serve_cfg *cfg);

/* "off", "0s" (-1: no sampling) or a duration of at least 100ms into *out; -1 when text is
 * neither (nothing printed). */
int config_parse_self_metrics(const char *text, int64_t *out);

/* Refuses limits too small to serve anything (query and ingest memory under 64KiB, a query
 * timeout of 0): 0, or -1 with the message printed. */
int config_check_limits(const serve_cfg *cfg);

/* Reads the bearer token from the file at path into out[cap]: the file's text without the
 * whitespace around it, one word of 16 to cap - 1 visible ASCII characters. Returns 0 (a
 * file other users may read is logged as a warning), or -1 with the message printed. */
int config_read_token(const char *path, char *out, size_t cap);

/* "HOST:PORT", "[IPV6]:PORT" or "localhost:PORT" into host[cap] (a numeric address) and
 * *port. Returns 0; -1 when listen is none of these, -2 for a port past 65535, -3 for a
 * host that is not an address. Prints nothing. */
int config_parse_listen(const char *listen, char *host, size_t cap, unsigned *port);

/* Whether the numeric address host is 127.0.0.0/8 or ::1: reachable from this machine only. */
bool config_is_loopback(const char *host);

#endif
