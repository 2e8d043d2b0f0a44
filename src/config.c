/*
 * config.c — the settings of `strata serve`: the --config file (JSON), the token file, the
 * --listen address and the limits every setting must respect. See config.h.
 *
 * Every message names the flag or the config key at fault and goes to stderr prefixed
 * "strata serve: "; nothing here starts anything.
 */
#include "src/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/json_util.h"
#include "engine/units.h"
#include "src/log.h"

static int cfg_string(json_t *o, const char *key, char *dst, size_t cap, const char *path)
{
    json_t *v = json_object_get(o, key);
    if (!v || dst[0])
        return 0; /* absent, or set on the command line */
    if (!json_is_string(v)) {
        fprintf(stderr, "strata serve: %s: %s: expected a string\n", path, key);
        return -1;
    }
    snprintf(dst, cap, "%s", json_string_value(v));
    return 0;
}

static int cfg_size(json_t *o, const char *key, uint64_t *dst, const char *path)
{
    json_t *v = json_object_get(o, key);
    if (!v || *dst)
        return 0;
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        *dst = (uint64_t)json_integer_value(v);
        return 0;
    }
    uint64_t n;
    if (json_is_string(v) && units_parse_bytes(json_string_value(v), &n) == 0 && n > 0) {
        *dst = n;
        return 0;
    }
    fprintf(stderr, "strata serve: %s: %s: expected a size above 0 like \"64MiB\"\n", path, key);
    return -1;
}

/* Limits too small to serve anything are refused at start (flag or config alike) rather
 * than by every request later. 0 means "not set": the server's default. */
#define MIN_QUERY_MEMORY (64u << 10)
#define MIN_INGEST_MEMORY (64u << 10)
int config_check_limits(const serve_cfg *cfg)
{
    if (cfg->query_memory && cfg->query_memory < MIN_QUERY_MEMORY) {
        fprintf(stderr, "strata serve: --query-memory (query_memory in a config): under 64KiB is too "
                        "little to answer queries; give at least 64KiB (the default is 1GiB)\n");
        return -1;
    }
    if (cfg->ingest_memory && cfg->ingest_memory < MIN_INGEST_MEMORY) {
        fprintf(stderr, "strata serve: --ingest-memory (ingest_memory in a config): under 64KiB is too "
                        "little to take an ingest request; give at least 64KiB (the default is 1GiB)\n");
        return -1;
    }
    if (cfg->query_timeout_ms < 0) {
        fprintf(stderr, "strata serve: --query-timeout (query_timeout in a config): give a duration "
                        "above 0, e.g. 30s (the default)\n");
        return -1;
    }
    return 0;
}

/* A path from the config file: relative ones are relative to the file's directory (so a
 * config works from wherever strata is started). */
static void config_relative(const char *config, const char *value, char *dst, size_t cap)
{
    const char *slash = strrchr(config, '/');
    if (value[0] == '/' || !slash)
        snprintf(dst, cap, "%s", value);
    else
        snprintf(dst, cap, "%.*s/%s", (int)(slash - config), config, value);
}

static int cfg_path(json_t *o, const char *key, char *dst, size_t cap, const char *path)
{
    char raw[2048] = "";
    if (dst[0] || cfg_string(o, key, raw, sizeof raw, path) != 0)
        return dst[0] ? 0 : -1;
    if (raw[0])
        config_relative(path, raw, dst, cap);
    return 0;
}

int config_load(const char *path, serve_cfg *cfg)
{
    json_error_t je;
    errno = 0;
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        if (je.line < 1) /* not opened or not read: jansson's text says why */
            fprintf(stderr, "strata serve: --config %s: %s\n", path, errno ? strerror(errno) : je.text);
        else
            fprintf(stderr, "strata serve: %s: line %d column %d: %s\n", path, je.line, je.column, je.text);
        return -1;
    }
    int rc = 0;
    const char *key;
    json_t *v;
    static const char *const known[] = {"data", "listen", "auth_token_file", "max_body",
                                        "max_ingest_body", "ingest_memory", "query_timeout", "query_max_groups", "query_memory",
                                        "kafka_brokers", "self_metrics", "tables"};
    json_object_foreach(o, key, v) {
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            ok |= strcmp(key, known[i]) == 0;
        if (!ok) {
            const char *near = jutil_closest(key, known, sizeof known / sizeof known[0]);
            char names[400];
            jutil_join_names(known, sizeof known / sizeof known[0], names, sizeof names);
            if (near)
                fprintf(stderr, "strata serve: %s: unknown setting '%s' (did you mean '%s'?)\n", path,
                        key, near);
            else
                fprintf(stderr, "strata serve: %s: unknown setting '%s' (the settings are %s)\n", path,
                        key, names);
            rc = -1;
        }
    }
    if (!rc)
        rc = cfg_path(o, "data", cfg->data, sizeof cfg->data, path) |
             cfg_string(o, "listen", cfg->listen, sizeof cfg->listen, path) |
             cfg_path(o, "auth_token_file", cfg->token_file, sizeof cfg->token_file, path) |
             cfg_string(o, "kafka_brokers", cfg->kafka_brokers, sizeof cfg->kafka_brokers, path) |
             cfg_size(o, "max_body", &cfg->max_body, path) |
             cfg_size(o, "max_ingest_body", &cfg->max_ingest_body, path) |
             cfg_size(o, "query_memory", &cfg->query_memory, path) |
             cfg_size(o, "ingest_memory", &cfg->ingest_memory, path);
    json_t *qt = json_object_get(o, "query_timeout");
    if (!rc && qt && !cfg->query_timeout_ms &&
        (!json_is_string(qt) || units_parse_duration_ms(json_string_value(qt), &cfg->query_timeout_ms) != 0)) {
        fprintf(stderr, "strata serve: %s: query_timeout: expected a duration like \"30s\"\n", path);
        rc = -1;
    } else if (!rc && qt && cfg->query_timeout_ms == 0) {
        cfg->query_timeout_ms = -1; /* refused by check_limits */
    }
    json_t *sm = json_object_get(o, "self_metrics");
    if (!rc && sm && !cfg->self_metrics_ms &&
        (!json_is_string(sm) || config_parse_self_metrics(json_string_value(sm), &cfg->self_metrics_ms) != 0)) {
        fprintf(stderr, "strata serve: %s: self_metrics: expected \"off\" or a duration of at least "
                        "100ms like \"10s\"\n", path);
        rc = -1;
    }
    json_t *mg = json_object_get(o, "query_max_groups");
    if (!rc && mg && !cfg->query_max_groups) {
        if (!json_is_integer(mg) || json_integer_value(mg) < 1) {
            fprintf(stderr, "strata serve: %s: query_max_groups: expected a positive integer\n", path);
            rc = -1;
        } else {
            cfg->query_max_groups = (uint64_t)json_integer_value(mg);
        }
    }
    json_t *tabs = json_object_get(o, "tables");
    if (!rc && tabs) {
        size_t i;
        json_t *t;
        if (!json_is_array(tabs))
            rc = -1;
        json_array_foreach(tabs, i, t) {
            if (!json_is_string(t) || cfg->ntables >= MAX_TABLE_FILES) {
                rc = -1;
                break;
            }
            config_relative(path, json_string_value(t), cfg->tables[cfg->ntables++], sizeof cfg->tables[0]);
        }
        if (rc)
            fprintf(stderr, "strata serve: %s: tables: expected a list of schema file names\n", path);
    }
    json_decref(o);
    return rc;
}

int config_read_token(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "strata serve: %s: %s\n", path, strerror(errno));
        return -1;
    }
    /* The file's text without leading and trailing whitespace (editors add a newline,
     * people add blank lines) is the token: visible ASCII, nothing between. */
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    bool longer = n == sizeof buf - 1 && fgetc(f) != EOF;
    fclose(f);
    buf[n] = 0;
    char *b = buf, *e = buf + n;
    while (b < e && strchr(" \t\r\n", *b))
        b++;
    while (e > b && strchr(" \t\r\n", e[-1]))
        e--;
    *e = 0;
    for (const char *p = b; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
            fprintf(stderr, "strata serve: %s: the token is one word of visible ASCII characters; "
                            "this file has %s at byte %zu\n", path,
                    strchr(" \t\r\n", *p) ? "whitespace inside it" : "another character",
                    (size_t)(p - buf));
            return -1;
        }
    if (longer || (size_t)(e - b) >= cap) {
        fprintf(stderr, "strata serve: %s: the token must be at most %zu characters\n", path, cap - 1);
        return -1;
    }
    if (e - b < 16) {
        fprintf(stderr, "strata serve: %s: the token must be at least 16 characters (this one has "
                        "%zu)\n", path, (size_t)(e - b));
        return -1;
    }
    memcpy(out, b, (size_t)(e - b) + 1);
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
        log_line("warning: token file %s can be read by other users (mode %03o): chmod 600 %s", path,
                 (unsigned)(st.st_mode & 0777), path);
    return 0;
}

/* "HOST:PORT", "[IPV6]:PORT" or "localhost:PORT" into host (a numeric address) and port;
 * -1 when it is none of these, -2 for a port past 65535, -3 for a host that is not an address. */
int config_parse_listen(const char *listen, char *host, size_t cap, unsigned *port)
{
    const char *colon;
    size_t hlen;
    const char *h = listen;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            return -1;
        h = listen + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || strchr(listen, ':') != colon)
            return -1;
        hlen = (size_t)(colon - listen);
    }
    char *end;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (hlen == 0 || hlen >= cap || !colon[1] || *end || colon[1] == '-' || colon[1] == '+')
        return -1;
    if (errno || p > 65535)
        return -2;
    memcpy(host, h, hlen);
    host[hlen] = 0;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, cap, "127.0.0.1");
    unsigned char buf[16];
    if (inet_pton(strchr(host, ':') ? AF_INET6 : AF_INET, host, buf) != 1)
        return -3;
    *port = (unsigned)p;
    return 0;
}

/* 127.0.0.0/8 and ::1: reachable from this machine only. */
bool config_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

int config_parse_self_metrics(const char *text, int64_t *out)
{
    int64_t ms;
    if (strcmp(text, "off") == 0) {
        *out = -1;
        return 0;
    }
    if (units_parse_duration_ms(text, &ms) != 0 || (ms != 0 && ms < 100))
        return -1;
    *out = ms == 0 ? -1 : ms;
    return 0;
}
