/*
 * cmd_demo.c — `strata demo`: the whole pipeline on one machine with nothing installed
 * beyond strata. README's main command.
 *
 * In one process: the embedded Kafka broker (tools/broker.h) with topics orders and
 * orders.dlq; a paced generator of live reference order events (tools/gen_producer.h,
 * event time = send time, a few re-sends and malformed events) in its own thread; and
 * `strata serve` on a fresh data directory with the demo `orders` table, whose kafka
 * section points at the broker. It prints the URL and example queries, then serves until
 * Ctrl-C (SIGINT) or SIGTERM, when the server lands what it consumed and everything stops.
 *
 * The broker keeps nothing across runs (it is in memory), so the data directory is made
 * fresh at each start: offsets stored by a previous run would point into a topic that no
 * longer exists.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/catalog.h"
#include "engine/clock.h"
#include "src/cli.h"
#include "src/commands.h"
#include "src/signals.h"
#include "tools/broker.h"
#include "tools/gen_producer.h"
#include "tools/order_gen.h"

#define DEMO_PARTITIONS 16

static void usage(FILE *f)
{
    fprintf(f,
            "usage: strata demo [--listen HOST:PORT] [--data DIR] [--rate EVENTS_PER_S]\n"
            "                   [--self-metrics DUR|off]\n\n"
            "Starts the embedded Kafka broker, a paced stream of live order events into its\n"
            "topic `orders`, and `strata serve` with a demo `orders` table consuming it.\n"
            "Prints the URL and example queries; Ctrl-C stops everything.\n\n"
            "  --listen HOST:PORT   HTTP address (default 127.0.0.1:8686)\n"
            "  --data DIR           data directory, made fresh at each start (default data/demo-live)\n"
            "  --rate N             events per second (default 2000)\n"
            "  --self-metrics DUR   sample strata's own metrics into the table _strata this\n"
            "                       often (default 10s; off: never)\n"
            "  --help               this text\n");
}

typedef struct gen_thread {
    gen_producer *producer;
    order_gen *g;
    double rate;
    atomic_int stop;
    strata_err err;
    int rc;
} gen_thread;

static void *gen_run(void *arg)
{
    gen_thread *gt = arg;
    gen_stream_opts so = {.producer = gt->producer, .rate = gt->rate, .stop = &gt->stop};
    gt->rc = gen_stream_run(gt->g, &so, NULL, &gt->err);
    if (gt->rc)
        fprintf(stderr, "strata demo: the event stream stopped: %s\n", gt->err.msg);
    return NULL;
}

/* Removes dir if it holds a previous demo's tables (or is empty); refuses anything else,
 * and a directory another process is serving. */
static int fresh_data_dir(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        char pid[32];
        if (catalog_dir_in_use(dir, pid, sizeof pid)) {
            fprintf(stderr, "strata demo: %s is in use by pid %s (another demo or server); stop it or "
                            "choose another --data\n", dir, pid);
            return -1;
        }
        char marker[4200];
        snprintf(marker, sizeof marker, "%s/.strata-demo", dir);
        if (access(marker, F_OK) != 0 && rmdir(dir) != 0) {
            fprintf(stderr, "strata demo: %s exists and was not made by strata demo; choose another "
                            "--data\n", dir);
            return -1;
        }
        char cmd[8600];
        snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", dir);
        if (strchr(dir, '\'') || system(cmd) != 0) {
            fprintf(stderr, "strata demo: cannot clear %s\n", dir);
            return -1;
        }
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "mkdir -p -- '%s' && touch -- '%s/.strata-demo'", dir, dir);
    if (strchr(dir, '\'') || system(tmp) != 0) {
        fprintf(stderr, "strata demo: cannot create %s\n", dir);
        return -1;
    }
    return 0;
}

static int write_table(const char *path, const char *brokers)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f,
            "{\"name\": \"orders\",\n"
            " \"columns\": [{\"name\": \"ts\", \"type\": \"timestamp\"},\n"
            "             {\"name\": \"event_id\", \"type\": \"uint64\"},\n"
            "             {\"name\": \"user_id\", \"type\": \"uint64\"},\n"
            "             {\"name\": \"country\", \"type\": \"string\"},\n"
            "             {\"name\": \"category\", \"type\": \"string\"},\n"
            "             {\"name\": \"status\", \"type\": \"string\"},\n"
            "             {\"name\": \"device\", \"type\": \"string\"},\n"
            "             {\"name\": \"amount\", \"type\": \"float64\"},\n"
            "             {\"name\": \"quantity\", \"type\": \"int32\"},\n"
            "             {\"name\": \"version\", \"type\": \"uint64\"}],\n"
            " \"time_column\": \"ts\",\n"
            " \"dedup_key\": [\"event_id\", \"ts\"], \"version\": \"version\",\n"
            " \"rollups\": [{\"interval\": \"1m\", \"dimensions\": [\"country\", \"status\", \"device\"],\n"
            "               \"metrics\": [{\"fn\": \"count\"}, {\"fn\": \"sum\", \"column\": \"amount\"}]},\n"
            "              {\"interval\": \"1h\", \"dimensions\": [\"country\"],\n"
            "               \"metrics\": [{\"fn\": \"count\"}, {\"fn\": \"sum\", \"column\": \"amount\"},\n"
            "                           {\"fn\": \"uniq\", \"column\": \"user_id\"}, {\"fn\": \"quantile\", \"column\": \"amount\"}]}],\n"
            " \"storage\": {\"memtable_age\": \"2s\"},\n"
            " \"kafka\": {\"brokers\": \"%s\", \"topic\": \"orders\",\n"
            "           \"properties\": {\"session.timeout.ms\": \"6000\"}}}\n",
            brokers);
    return fclose(f);
}

typedef struct demo_banner {
    const char *addr, *data;
    double rate;
} demo_banner;

/* Printed once the server listens (not before: with the port taken there is nothing to
 * open, and the only thing to say is the error). */
static void print_banner(const char *base, void *arg)
{
    const demo_banner *b = arg;
    const char *host = base + strlen("http://"); /* curl takes host:port */
    printf("strata demo: embedded Kafka broker at %s (topics orders, orders.dlq; %d partitions)\n"
           "strata demo: %.0f live order events/s into topic orders (2%% re-sends, counted once; 0.1%% malformed)\n"
           "strata demo: table orders consumes them; data in %s\n\n"
           "The web console: open %s/ in a browser.\n"
           "The HTTP API (JSON, for curl and dashboards) is on %s, for example:\n"
           "  curl -s %s/health\n"
           "  curl -s %s/tables/orders\n"
           "  curl -s %s/query -d '{\"table\":\"orders\",\"from\":\"now-5m\",\"select\":[{\"fn\":\"count\"}]}'\n"
           "  curl -s %s/query -d '{\"table\":\"orders\",\"from\":\"now-10m\",\"interval\":\"1m\","
           "\"select\":[{\"fn\":\"count\",\"as\":\"orders\"},{\"fn\":\"sum\",\"column\":\"amount\",\"as\":\"gmv\"}]}'\n"
           "  curl -s %s/query -d '{\"table\":\"orders\",\"from\":\"now-1h\",\"group_by\":[\"country\"],"
           "\"select\":[{\"fn\":\"sum\",\"column\":\"amount\",\"as\":\"gmv\"},{\"fn\":\"uniq\",\"column\":\"user_id\",\"as\":\"users\"},"
           "{\"fn\":\"quantile\",\"column\":\"amount\",\"q\":0.99,\"as\":\"p99\"}],"
           "\"order_by\":[{\"column\":\"gmv\",\"desc\":true}],\"limit\":5}'\n"
           "  curl -s %s/metrics | grep strata_kafka\n\n"
           "Grafana: the JSON datasource (simpod-json-datasource) at %s/grafana; the folder\n"
           "grafana/ provisions it with two dashboards (grafana/README.md).\n\n"
           "Ctrl-C stops the demo.\n\n",
           b->addr, DEMO_PARTITIONS, b->rate, b->data, base, host, host, host, host, host, host, host, base);
    fflush(stdout);
}

int cmd_demo(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, 0, 'l'}, {"data", required_argument, 0, 'd'},
        {"rate", required_argument, 0, 'r'},   {"self-metrics", required_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *listen = "127.0.0.1:8686", *data = "data/demo-live", *self_metrics = "10s";
    double rate = 2000;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":l:d:r:S:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'l': listen = optarg; break;
        case 'd': data = optarg; break;
        case 'S': self_metrics = optarg; break; /* checked by serve */
        case 'r': {
            char *end;
            rate = strtod(optarg, &end);
            if (*end || !(rate > 0 && rate <= 1e7)) {
                fprintf(stderr, "strata demo: --rate: '%s' must be a number of events per second above 0 "
                                "and at most 10000000, e.g. --rate 5000\n", optarg);
                return 2;
            }
            break;
        }
        case 'h': usage(stdout); return 0;
        case ':': return cli_bad_usage("demo", "%s needs a value", argv[optind - 1]);
        default: return cli_bad_usage("demo", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (strlen(data) > 4000 || fresh_data_dir(data) != 0)
        return 1;

    /* Signals go to the server's loop only: block them before any thread starts. */
    sigset_t sigs;
    signals_block_stop(&sigs);

    strata_err err = {0};
    embedded_broker_opts bo;
    embedded_broker_opts_default(&bo);
    bo.partitions = DEMO_PARTITIONS;
    bo.quiet = true;
    embedded_broker *broker = embedded_broker_start(&bo, &err);
    if (!broker) {
        fprintf(stderr, "strata demo: embedded broker: %s\n", err.msg);
        return 1;
    }
    const char *addr = embedded_broker_address(broker);
    char table_file[4200];
    snprintf(table_file, sizeof table_file, "%s.orders.json", data);
    if (write_table(table_file, addr) != 0) {
        fprintf(stderr, "strata demo: cannot write %s: %s\n", table_file, strerror(errno));
        embedded_broker_stop(broker);
        return 1;
    }

    gen_thread gt = {.rate = rate};
    order_gen_opts go;
    order_gen_opts_default(&go);
    go.start_ms = clock_wall_ms();
    go.seed = (uint64_t)clock_mono_ns() ^ (uint64_t)go.start_ms; /* a new stream each run */
    go.count = (uint64_t)(rate * 86400.0 * 365); /* a year of events at the rate */
    go.span_ms = (int64_t)((double)go.count * 1000.0 / rate); /* event time = send time */
    go.duplicates = 0.02;
    go.bad = 0.001;
    gen_producer_opts po = {.brokers = addr, .topic = "orders", .linger_ms = 5, .quiet = true};
    gt.g = order_gen_create(&go, &err);
    gt.producer = gt.g ? gen_producer_open(&po, &err) : NULL;
    pthread_t th;
    if (!gt.producer || pthread_create(&th, NULL, gen_run, &gt) != 0) {
        fprintf(stderr, "strata demo: event stream: %s\n", err.msg[0] ? err.msg : "cannot start");
        order_gen_free(gt.g);
        gen_producer_close(gt.producer);
        embedded_broker_stop(broker);
        return 1;
    }

    demo_banner banner = {.addr = addr, .rate = rate, .data = data};
    char *serve_argv[] = {"serve", "--data", (char *)data, "--listen", (char *)listen, "--table",
                          table_file, "--kafka-brokers", (char *)addr, "--self-metrics",
                          (char *)self_metrics, NULL};
    int rc = cmd_serve_ready(11, serve_argv, print_banner, &banner);

    atomic_store(&gt.stop, 1);
    pthread_join(th, NULL);
    gen_producer_flush(gt.producer, &err);
    gen_producer_close(gt.producer);
    order_gen_free(gt.g);
    embedded_broker_stop(broker);
    unlink(table_file);
    fprintf(stderr, "strata demo: stopped\n");
    return rc;
}
