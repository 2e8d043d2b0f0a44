/*
 * cmd_serve.c — `strata serve`: opens the data directory (recovering every table), creates the
 * tables named with --table, starts the HTTP server, and runs the maintenance loop: every
 * 100 ms, each table whose memtables are full or older than their age limit is flushed.
 * Merges and retention run on their own low-priority thread (engine/merge_worker.h),
 * whose messages go to the log; it is stopped first at shutdown.
 *
 * Signals: SIGTERM and SIGINT are blocked in every thread and taken synchronously by the
 * main loop (sigtimedwait), which then stops the server (in-flight requests finish),
 * flushes every table and exits 0. Binding an address other than 127.0.0.1 requires a
 * bearer token (--auth-token-file), so a data directory is never exposed by accident.
 *
 * Settings come from flags and a --config file (src/config.h: the file's keys, the token
 * file, the --listen forms); flags win. The log is src/log.h's: stamped lines on stderr.
 *
 * A table that cannot be opened does not stop the server: it is logged, reported by
 * /health and /tables, and can be dropped over the API. STRATA_FAULTS (see
 * engine/fault.h) arms failure injection for tests.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/catalog.h"
#include "engine/clock.h"
#include "engine/fault.h"
#include "engine/memtable.h"
#include "engine/merge_worker.h"
#include "engine/schema_json.h"
#include "engine/units.h"
#include "http/server.h"
#include "ingest/kafka_ingest.h"
#include "src/cli.h"
#include "src/commands.h"
#include "src/config.h"
#include "src/log.h"
#include "src/signals.h"

/* One flush of the serve loop's retries. A failure that goes on (a full disk, a removed
 * directory) is retried every tick, so it is logged at the 1st, 2nd, 4th, 8th... failure
 * in a row and then once a minute; the end of such a run is logged too. /health and
 * GET /tables/{name} tell the same at any time. */
static void flush_and_log(strata_table *t, strata_err *err)
{
    table_flush_record before, after;
    table_flush_trouble(t, &before);
    int rc = table_flush(t, false, err);
    table_flush_trouble(t, &after);
    if (rc == 0 && before.failing && !after.failing) {
        log_line("table %s: flushes work again after %" PRIu64 " failure(s) in %" PRId64 " s",
                 table_schema(t)->name, before.failing, before.failing_for_ms / 1000);
    } else if (rc != 0) {
        uint64_t n = after.failing;
        if (n == 0 || (n & (n - 1)) == 0 || n % 600 == 0)
            log_line("table %s: flush failed (%" PRIu64 " in a row; will retry): %s",
                     table_schema(t)->name, n, err->msg);
    }
}

/* Rows of t only in memory, as the log names them when they cannot be written. */
static uint64_t rows_in_memory(strata_table *t)
{
    table_stats st;
    table_get_stats(t, &st);
    return st.memtable_rows;
}

/* Where a table's rows that are not in segments come back from at the next start. */
static const char *rows_come_back_from(strata_table *t)
{
    return table_schema(t)->kafka.enabled
               ? "the write-ahead log (rows posted over HTTP) and Kafka (rows read from it are read again: "
                 "offsets did not move)"
               : "the write-ahead log";
}

/* The stop's flush of every table. Rows only in memory are also in the table's
 * write-ahead log (or still in Kafka), so none is lost when a flush fails; but a disk
 * that refuses segments is worth waiting for: the flush is retried every second (logged
 * at the 1st, 2nd, 4th... try) until it works, or until SIGTERM or SIGINT comes again,
 * which stops and says where the rows come back from. A table that refuses writes
 * (table_failure) cannot be retried. Returns 0 when everything was written, else 1. */
static int final_flush(strata_catalog *cat, const sigset_t *sigs)
{
    int rc = 0;
    strata_err err = {0};
    for (uint64_t attempt = 1;; attempt++) {
        size_t waiting = 0;
        strata_table *t;
        for (size_t i = 0; (t = catalog_at(cat, i)) != NULL; i++) {
            const char *name = table_schema(t)->name;
            if (table_flush(t, true, &err) == 0) {
                /* What the rollup tiers built since their last save: the next start
                 * restores them rather than building them again. Not fatal: they can be. */
                if (attempt == 1 && table_rollups_save(t, false, &err) != 0)
                    log_line("table %s: saving rollup tiers failed (the next start builds what is missing "
                             "from raw rows): %s", name, err.msg);
                catalog_put(cat, t);
                continue;
            }
            uint64_t n = rows_in_memory(t);
            if (table_failure(t, NULL, 0) || n == 0) {
                log_line("table %s: final flush failed: %s%s", name, err.msg,
                         n ? "" : " (no rows were waiting)");
                if (n && attempt == 1)
                    log_line("table %s: %" PRIu64 " rows not in segments (the table refuses writes): the "
                             "next start replays them from %s", name, n, rows_come_back_from(t));
                if (n || attempt == 1)
                    rc = 1;
            } else {
                waiting++;
                if ((attempt & (attempt - 1)) == 0)
                    log_line("table %s: final flush failed (try %" PRIu64 "): %s; its %" PRIu64 " rows "
                             "in memory cannot be written to segments yet, so the stop waits and retries "
                             "every second: fix the disk, or send SIGTERM again to stop now (the next "
                             "start replays them from %s)", name, attempt, err.msg, n, rows_come_back_from(t));
            }
            catalog_put(cat, t);
        }
        if (waiting == 0) {
            if (attempt > 1 && rc == 0)
                log_line("final flush done after %" PRIu64 " tries", attempt);
            return rc;
        }
        struct timespec wait = {1, 0};
        int sig = sigtimedwait(sigs, NULL, &wait);
        if (sig == SIGTERM || sig == SIGINT) {
            for (size_t i = 0; (t = catalog_at(cat, i)) != NULL; i++) {
                uint64_t n = rows_in_memory(t);
                if (n)
                    log_line("table %s: stopped with %" PRIu64 " rows not in segments: the next start "
                             "replays them from %s", table_schema(t)->name, n, rows_come_back_from(t));
                catalog_put(cat, t);
            }
            return 1;
        }
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: strata serve --data DIR [--listen HOST:PORT] [--config FILE]\n"
            "                    [--auth-token-file FILE] [--table SCHEMA.json]...\n"
            "                    [--max-body SIZE] [--max-ingest-body SIZE] [--query-timeout DUR]\n"
            "                    [--query-memory SIZE] [--ingest-memory SIZE] [--kafka-brokers LIST]\n"
            "                    [--self-metrics DUR|off]\n\n"
            "  --data DIR             data directory (created if missing); tables in it are\n"
            "                         recovered at start\n"
            "  --listen HOST:PORT     default 127.0.0.1:8686; localhost and [::1] work too; any\n"
            "                         address but loopback needs a token\n"
            "  --auth-token-file FILE every request must then carry\n"
            "                         'Authorization: Bearer <the token in the file>' (one word,\n"
            "                         at least 16 characters; keep the file private: chmod 600)\n"
            "  --table FILE           create this table (schema JSON) if it does not exist\n"
            "  --config FILE          JSON file with the same settings (docs/config.md); flags win\n"
            "  --max-body SIZE        body limit of every request but /ingest, default 1MiB\n"
            "  --max-ingest-body SIZE body limit of /ingest, default 256MiB\n"
            "  --query-timeout DUR    a query running longer is stopped, default 30s\n"
            "  --query-memory SIZE    memory a query may use for its groups, default 1GiB\n"
            "                         (at least 64KiB)\n"
            "  --ingest-memory SIZE   memory all /ingest requests being received may hold,\n"
            "                         default 1GiB (past it a request is refused with 503;\n"
            "                         at least 64KiB)\n"
            "  --kafka-brokers LIST   bootstrap servers for every Kafka table (overrides each\n"
            "                         table's kafka.brokers)\n"
            "  --self-metrics DUR|off sample strata's own metrics (those of GET /metrics) into\n"
            "                         the table _strata this often, default 10s; off: never\n");
}

int cmd_serve(int argc, char **argv)
{
    return cmd_serve_ready(argc, argv, NULL, NULL);
}

int cmd_serve_ready(int argc, char **argv, serve_ready_fn ready, void *ready_arg)
{
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},           {"listen", required_argument, 0, 'l'},
        {"config", required_argument, 0, 'c'},         {"auth-token-file", required_argument, 0, 'a'},
        {"table", required_argument, 0, 't'},          {"max-body", required_argument, 0, 'b'},
        {"max-ingest-body", required_argument, 0, 'B'}, {"query-timeout", required_argument, 0, 'q'},
        {"query-memory", required_argument, 0, 'm'},  {"ingest-memory", required_argument, 0, 'M'},
        {"kafka-brokers", required_argument, 0, 'k'}, {"self-metrics", required_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},                 {0, 0, 0, 0},
    };
    serve_cfg *cfg = calloc(1, sizeof *cfg);
    const char *config = NULL;
    if (!cfg)
        return 1;
    int ch, rc = 2; /* bad usage (flags, config file, token file) until the checks pass */
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":d:l:c:a:t:b:B:q:m:M:k:S:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': snprintf(cfg->data, sizeof cfg->data, "%s", optarg); break;
        case 'l': snprintf(cfg->listen, sizeof cfg->listen, "%s", optarg); break;
        case 'c': config = optarg; break;
        case 'k': snprintf(cfg->kafka_brokers, sizeof cfg->kafka_brokers, "%s", optarg); break;
        case 'a': snprintf(cfg->token_file, sizeof cfg->token_file, "%s", optarg); break;
        case 't':
            if (cfg->ntables < MAX_TABLE_FILES)
                snprintf(cfg->tables[cfg->ntables++], sizeof cfg->tables[0], "%s", optarg);
            break;
        case 'b':
        case 'B':
            if (units_parse_bytes(optarg, ch == 'b' ? &cfg->max_body : &cfg->max_ingest_body) != 0 ||
                (ch == 'b' ? cfg->max_body : cfg->max_ingest_body) == 0) {
                fprintf(stderr, "strata serve: --max-%sbody: '%s' is not a size above 0 (e.g. 64MiB, 1GiB)\n",
                        ch == 'b' ? "" : "ingest-", optarg);
                goto done;
            }
            break;
        case 'm':
        case 'M': {
            uint64_t *mem = ch == 'm' ? &cfg->query_memory : &cfg->ingest_memory;
            if (units_parse_bytes(optarg, mem) != 0) {
                fprintf(stderr, "strata serve: --%s-memory: '%s' is not a size (e.g. 512MiB, 2GiB)\n",
                        ch == 'm' ? "query" : "ingest", optarg);
                goto done;
            }
            if (*mem == 0)
                *mem = 1; /* refused by check_limits, with the minimum */
            break;
        }
        case 'q':
            if (units_parse_duration_ms(optarg, &cfg->query_timeout_ms) != 0) {
                fprintf(stderr, "strata serve: --query-timeout: '%s' is not a duration (a number with a unit: "
                                "500ms, 30s, 2m)\n", optarg);
                goto done;
            }
            if (cfg->query_timeout_ms == 0)
                cfg->query_timeout_ms = -1; /* refused by check_limits */
            break;
        case 'S':
            if (config_parse_self_metrics(optarg, &cfg->self_metrics_ms) != 0) {
                fprintf(stderr, "strata serve: --self-metrics: '%s' is not off or a duration of at least "
                                "100ms (10s, 1m)\n", optarg);
                goto done;
            }
            break;
        case 'h': usage(stdout); rc = 0; goto done;
        case ':': rc = cli_bad_usage("serve", "%s needs a value", argv[optind - 1]); goto done;
        default: rc = cli_bad_usage("serve", "unknown option '%s'", argv[optind - 1]); goto done;
        }
    }
    if (optind != argc) {
        usage(stderr);
        rc = 2;
        goto done;
    }
    if ((config && config_load(config, cfg) != 0) || config_check_limits(cfg) != 0)
        goto done;
    if (!cfg->data[0]) {
        fprintf(stderr, "strata serve: --data DIR (or \"data\" in a --config file) is required\n");
        rc = 2;
        goto done;
    }
    char host[256] = "127.0.0.1";
    unsigned port = 8686;
    int lrc = cfg->listen[0] ? config_parse_listen(cfg->listen, host, sizeof host, &port) : 0;
    if (lrc) {
        if (lrc == -2)
            fprintf(stderr, "strata serve: --listen: '%s': a port is a number from 0 to 65535 (0: any "
                            "free port)\n", cfg->listen);
        else if (lrc == -3)
            fprintf(stderr, "strata serve: --listen: '%s': the host must be an IP address of this "
                            "machine or localhost (for example 127.0.0.1:8686 or 0.0.0.0:8686)\n",
                    cfg->listen);
        else
            fprintf(stderr, "strata serve: --listen: '%s' is not HOST:PORT (for example 127.0.0.1:8686, "
                            "localhost:8686, [::1]:8686 or 0.0.0.0:8686)\n", cfg->listen);
        rc = 2;
        goto done;
    }
    char token[512] = "";
    if (cfg->token_file[0] && config_read_token(cfg->token_file, token, sizeof token) != 0)
        goto done;
    if (!config_is_loopback(host) && !token[0]) {
        fprintf(stderr, "strata serve: listening on %s needs --auth-token-file: only loopback addresses "
                        "(127.0.0.1, localhost, ::1) are served without a token\n", host);
        rc = 2;
        goto done;
    }

    rc = 1; /* from here on, a failure is not the user's flags */

    /* Signals go to the main loop only. */
    sigset_t sigs;
    signals_block_stop(&sigs);
    signal(SIGPIPE, SIG_IGN);

    strata_err err = {0};
    if (fault_arm_from_env(&err) != 0) {
        log_line("%s", err.msg);
        goto done;
    }
    strata_catalog *cat;
    int64_t open_t0 = clock_mono_ns();
    log_line("opening %s (recovering its tables; nothing listens until this is done)", cfg->data);
    if (catalog_open(cfg->data, &cat, &err) != 0) {
        log_line("cannot open data directory: %s", err.msg);
        goto done;
    }
    log_line("opened %zu table(s) in %.1f s", catalog_count(cat), (double)(clock_mono_ns() - open_t0) / 1e9);
    {
        char name[STRATA_NAME_MAX + 1], why[1024];
        for (size_t i = 0; catalog_broken_at(cat, i, name, sizeof name, why, sizeof why); i++)
            log_line("table %s cannot be opened, serving the others: %s", name, why);
        strata_table *t;
        for (size_t i = 0; (t = catalog_at(cat, i)) != NULL; i++) {
            if (table_recovery_note(t)[0])
                log_line("table %s: %s", table_schema(t)->name, table_recovery_note(t));
            if (table_rollup_note(t)[0])
                log_line("table %s: %s", table_schema(t)->name, table_rollup_note(t));
            catalog_put(cat, t);
        }
    }
    kafka_ingest *kafka = NULL;
    kafka_ingest_opts ko = {.brokers = cfg->kafka_brokers[0] ? cfg->kafka_brokers : NULL,
                            .log = log_message};
    if (kafka_ingest_create(cat, &ko, &kafka, &err) != 0) {
        log_line("%s", err.msg);
        catalog_close(cat);
        goto done;
    }
    for (int i = 0; i < cfg->ntables; i++) {
        strata_schema *sc = malloc(sizeof *sc);
        if (!sc || schema_json_parse_file(cfg->tables[i], sc, &err) != 0 ||
            kafka_ingest_validate(kafka, sc, &err) != 0 || catalog_create(cat, sc, NULL, NULL, &err) != 0) {
            kafka_ingest_free(kafka);
            log_line("table %s: %s", cfg->tables[i], sc ? err.msg : "out of memory");
            free(sc);
            catalog_close(cat);
            goto done;
        }
        free(sc);
    }
    server_opts so = {.host = host, .port = (uint16_t)port, .auth_token = token[0] ? token : NULL,
                      .max_body = cfg->max_body, .max_ingest_body = cfg->max_ingest_body,
                      .query_timeout_ms = cfg->query_timeout_ms,
                      .query_max_groups = cfg->query_max_groups,
                      .query_max_memory = cfg->query_memory,
                      .ingest_memory = cfg->ingest_memory, .log = log_message,
                      .self_metrics_ms = cfg->self_metrics_ms < 0 ? 0
                                         : cfg->self_metrics_ms ? cfg->self_metrics_ms : 10000};
    so.kafka = kafka;
    strata_server *srv;
    if (server_start(cat, &so, &srv, &err) != 0) {
        log_line("%s; choose the address with --listen HOST:PORT (listen in a config)", err.msg);
        kafka_ingest_free(kafka);
        catalog_close(cat);
        goto done;
    }
    {
        strata_table *t;
        for (size_t i = 0; (t = catalog_at(cat, i)) != NULL; i++) {
            if (kafka_ingest_attach(kafka, table_schema(t)->name, &err) != 0)
                log_line("table %s: not consuming Kafka: %s", table_schema(t)->name, err.msg);
            catalog_put(cat, t);
        }
    }
    merge_worker *merger = NULL;
    merge_worker_opts mwo = {.log = log_message};
    if (merge_worker_start(cat, &mwo, &merger, &err) != 0)
        log_line("merges and retention will not run: %s", err.msg);
    char base_url[300];
    snprintf(base_url, sizeof base_url, "http://%s%s%s:%u", strchr(host, ':') ? "[" : "", host,
             strchr(host, ':') ? "]" : "", server_port(srv));
    log_line("serving %zu table(s) from %s on %s/", catalog_count(cat), cfg->data, base_url);
    if (ready)
        ready(base_url, ready_arg);
    for (;;) {
        struct timespec wait = {0, 100 * 1000 * 1000};
        int sig = sigtimedwait(&sigs, NULL, &wait);
        if (sig == SIGTERM || sig == SIGINT) {
            log_line("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        strata_table *t;
        for (size_t i = 0; (t = catalog_at(cat, i)) != NULL; i++) {
            if (table_flush_due(t))
                flush_and_log(t, &err);
            catalog_put(cat, t);
        }
    }
    merge_worker_stop(merger); /* a merge in progress ends at its next granule */
    server_stop(srv);
    kafka_ingest_free(kafka); /* each consumer lands what it read and commits */
    rc = final_flush(cat, &sigs);
    catalog_close(cat);
    memtable_pool_trim();
    log_line("stopped");
done:
    free(cfg);
    return rc;
}
