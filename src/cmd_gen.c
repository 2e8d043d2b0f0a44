/*
 * cmd_gen.c — `strata gen`: the deterministic order-event generator as a command. It writes
 * the events of tools/order_gen.h as NDJSON to stdout, or produces them to Kafka through
 * tools/gen_producer.h (one message per event, keyed by event_id), paced or as fast as
 * possible, and can write the generator's exact totals as JSON for tests to compare a
 * table against.
 *
 * Event times: slots spread evenly over [start, start + span). When paced (--rate) and no
 * --span is given, span is count / rate, so slot k's time is start + k / rate: exactly when
 * it is due to be sent. With --start now that makes live events whose ts is (to within the
 * pacing jitter) their sending time, for as long as the generator runs; without --count a
 * paced run goes on until SIGINT/SIGTERM.
 *
 * Exit status: 0 done (also when stopped by SIGINT/SIGTERM after flushing what was sent),
 * 1 a write or a delivery failed, 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/clock.h"
#include "engine/text.h"
#include "engine/units.h"
#include "src/cli.h"
#include "src/commands.h"
#include "tools/gen_producer.h"
#include "tools/order_gen.h"
#include "tools/progress.h"

#define DEFAULT_COUNT 1000000
#define UNBOUNDED_SECONDS (100.0 * 365 * 86400) /* "forever" for a paced run without --count */
#define MAX_PROPS 64

static atomic_int stop_requested;

static void on_stop_signal(int sig)
{
    atomic_store(&stop_requested, 1);
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: strata gen [options]\n\n"
        "Generates the reference order events deterministically (same options, same events)\n"
        "and writes them as NDJSON to stdout, or with --brokers produces them to Kafka, one\n"
        "message per event keyed by its event_id (\"bad-<slot>\" for malformed events).\n\n"
        "events:\n"
        "  --seed N            generator seed (default 1)\n"
        "  --count N           event slots, duplicates and bad events included (default %d;\n"
        "                      with --rate and no --count: until SIGINT/SIGTERM)\n"
        "  --duplicates F      probability that a slot re-sends a recent event with a higher\n"
        "                      version (default 0)\n"
        "  --late F            probability that an event's time is moved back (default 0)\n"
        "  --late-max DURATION how far back at most, e.g. 10m (default 10m)\n"
        "  --bad F             probability that a slot is a malformed event (default 0)\n"
        "  --start TIME        time of the first slot: RFC 3339 (2024-01-01T00:00:00Z), epoch\n"
        "                      milliseconds, now, or now-DURATION (default 2024-01-01T00:00:00Z)\n"
        "  --span DURATION     slots spread evenly over this time, e.g. 7d (default 7d; with\n"
        "                      --rate: count / rate, so each event's time is when it is sent,\n"
        "                      and --start now makes live events)\n"
        "sending:\n"
        "  --rate R            events per second, 1 to millions, fractions allowed (default:\n"
        "                      as fast as possible)\n"
        "  --brokers LIST      produce to Kafka at host:port[,host:port...] instead of stdout\n"
        "  --topic NAME        topic to produce to (default orders)\n"
        "  --compression C     none, gzip, snappy, lz4 or zstd (default zstd: it packs about\n"
        "                      50 %% more events into the embedded broker's retention)\n"
        "  --linger-ms N       producer linger.ms (default 5)\n"
        "  -X, --property K=V  any librdkafka producer property (repeatable), applied last\n"
        "output:\n"
        "  --totals FILE       write the generator's exact totals as JSON to FILE at the end\n"
        "                      (- for stderr): events, bad, duplicates, distinct events,\n"
        "                      amounts in cents, per country and per status, over all rows and\n"
        "                      over the latest version of each event, ts_min and ts_max\n"
        "                      (after SIGINT/SIGTERM: of exactly the slots sent)\n"
        "  --quiet             no progress line and no summary on stderr\n"
        "  --help              this text\n\n"
        "examples:\n"
        "  strata gen --count 10 --bad 0.2                  ten events, some malformed\n"
        "  strata gen --brokers 127.0.0.1:PORT --count 10000000 --duplicates 0.05\n"
        "                                                   preload 10M events as fast as possible\n"
        "  strata gen --brokers 127.0.0.1:PORT --rate 3000 --start now\n"
        "                                                   live events until Ctrl-C\n"
        "  strata gen --start now-7d --span 7d              a week of history ending now\n\n"
        "Exit status: 0 done (also when stopped by SIGINT/SIGTERM), 1 a write or a delivery\n"
        "failed (every message is acknowledged or the command fails), 2 bad usage.\n",
        DEFAULT_COUNT);
}

#define bad_usage(...) cli_bad_usage("gen", __VA_ARGS__)

static int parse_prob(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0 && v <= 1))
        return -1;
    *out = v;
    return 0;
}

/* "now", "now-DURATION", epoch ms digits, or RFC 3339. */
static int parse_start(const char *s, int64_t *out)
{
    uint64_t u;
    if (strcmp(s, "now") == 0) {
        *out = clock_wall_ms();
        return 0;
    }
    if (strncmp(s, "now-", 4) == 0) {
        int64_t d;
        if (units_parse_duration_ms(s + 4, &d) != 0)
            return -1;
        *out = clock_wall_ms() - d;
        return 0;
    }
    if (text_parse_u64(s, &u)) {
        if (u > (uint64_t)INT64_MAX)
            return -1;
        *out = (int64_t)u;
        return 0;
    }
    return units_parse_rfc3339_ms(s, strlen(s), out) == 0 ? 0 : -1;
}

static void json_map_u64(FILE *f, const char *name, const char *const *keys, const uint64_t *v, int n)
{
    fprintf(f, ",\"%s\":{", name);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s\"%s\":%" PRIu64, i ? "," : "", keys[i], v[i]);
    fputc('}', f);
}

static void json_map_i64(FILE *f, const char *name, const char *const *keys, const int64_t *v, int n)
{
    fprintf(f, ",\"%s\":{", name);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s\"%s\":%" PRId64, i ? "," : "", keys[i], v[i]);
    fputc('}', f);
}

static void write_totals(FILE *f, const order_gen_opts *o, const order_gen_totals *t)
{
    fprintf(f,
            "{\"seed\":%" PRIu64 ",\"slots\":%" PRIu64 ",\"events\":%" PRIu64 ",\"bad\":%" PRIu64
            ",\"duplicates\":%" PRIu64 ",\"late\":%" PRIu64 ",\"distinct_events\":%" PRIu64
            ",\"ts_min\":%" PRId64 ",\"ts_max\":%" PRId64 ",\"amount_cents_all\":%" PRId64
            ",\"quantity_all\":%" PRIu64 ",\"amount_cents_latest\":%" PRId64
            ",\"quantity_latest\":%" PRIu64,
            o->seed, t->slots, t->events, t->bad, t->duplicates, t->late, t->distinct_events,
            t->ts_min, t->ts_max, t->amount_cents_all, t->quantity_all, t->amount_cents_latest,
            t->quantity_latest);
    json_map_u64(f, "country_events_all", order_gen_countries, t->country_events_all, ORDER_GEN_NCOUNTRIES);
    json_map_i64(f, "country_cents_all", order_gen_countries, t->country_cents_all, ORDER_GEN_NCOUNTRIES);
    json_map_u64(f, "country_events_latest", order_gen_countries, t->country_events_latest,
                 ORDER_GEN_NCOUNTRIES);
    json_map_i64(f, "country_cents_latest", order_gen_countries, t->country_cents_latest,
                 ORDER_GEN_NCOUNTRIES);
    json_map_u64(f, "status_events_all", order_gen_statuses, t->status_events_all, ORDER_GEN_NSTATUSES);
    json_map_u64(f, "status_events_latest", order_gen_statuses, t->status_events_latest,
                 ORDER_GEN_NSTATUSES);
    fputs("}\n", f);
}

int cmd_gen(int argc, char **argv)
{
    enum { O_SEED = 256, O_COUNT, O_RATE, O_DUP, O_LATE, O_LATE_MAX, O_BAD, O_START, O_SPAN,
           O_BROKERS, O_TOPIC, O_COMPRESSION, O_LINGER, O_TOTALS, O_QUIET, O_HELP };
    static const struct option opts[] = {
        {"seed", required_argument, NULL, O_SEED},
        {"count", required_argument, NULL, O_COUNT},
        {"rate", required_argument, NULL, O_RATE},
        {"duplicates", required_argument, NULL, O_DUP},
        {"late", required_argument, NULL, O_LATE},
        {"late-max", required_argument, NULL, O_LATE_MAX},
        {"bad", required_argument, NULL, O_BAD},
        {"start", required_argument, NULL, O_START},
        {"span", required_argument, NULL, O_SPAN},
        {"brokers", required_argument, NULL, O_BROKERS},
        {"topic", required_argument, NULL, O_TOPIC},
        {"compression", required_argument, NULL, O_COMPRESSION},
        {"linger-ms", required_argument, NULL, O_LINGER},
        {"property", required_argument, NULL, 'X'},
        {"totals", required_argument, NULL, O_TOTALS},
        {"quiet", no_argument, NULL, O_QUIET},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    order_gen_opts go;
    order_gen_opts_default(&go);
    go.count = DEFAULT_COUNT;
    bool have_count = false, have_span = false, quiet = false;
    double rate = 0;
    const char *brokers = NULL, *topic = "orders", *compression = "zstd", *totals_path = NULL;
    const char *props[MAX_PROPS];
    size_t nprops = 0;
    int linger_ms = 5;
    uint64_t u;
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":X:", opts, NULL)) != -1) {
        switch (c) {
        case O_SEED:
            if (!text_parse_u64(optarg, &go.seed))
                return bad_usage("--seed: '%s' is not a non-negative integer", optarg);
            break;
        case O_COUNT:
            if (!text_parse_u64(optarg, &go.count))
                return bad_usage("--count: '%s' is not a non-negative integer", optarg);
            have_count = true;
            break;
        case O_RATE: {
            char *end;
            errno = 0;
            rate = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(rate >= 0 && rate <= 1e9))
                return bad_usage("--rate: '%s' is not a rate in events/s (0 to 1e9)", optarg);
            break;
        }
        case O_DUP:
            if (parse_prob(optarg, &go.duplicates) != 0)
                return bad_usage("--duplicates: '%s' is not a probability in [0, 1]", optarg);
            break;
        case O_LATE:
            if (parse_prob(optarg, &go.late) != 0)
                return bad_usage("--late: '%s' is not a probability in [0, 1]", optarg);
            break;
        case O_BAD:
            if (parse_prob(optarg, &go.bad) != 0)
                return bad_usage("--bad: '%s' is not a probability in [0, 1]", optarg);
            break;
        case O_LATE_MAX:
            if (units_parse_duration_ms(optarg, &go.late_max_ms) != 0 || go.late_max_ms < 1)
                return bad_usage("--late-max: '%s' is not a positive duration (e.g. 10m, 30s)",
                                 optarg);
            break;
        case O_START:
            if (parse_start(optarg, &go.start_ms) != 0)
                return bad_usage("--start: '%s' is not a time (RFC 3339, epoch ms, now or "
                                 "now-DURATION)", optarg);
            break;
        case O_SPAN:
            if (units_parse_duration_ms(optarg, &go.span_ms) != 0)
                return bad_usage("--span: '%s' is not a duration (e.g. 7d, 90m)", optarg);
            have_span = true;
            break;
        case O_BROKERS: brokers = optarg; break;
        case O_TOPIC: topic = optarg; break;
        case O_COMPRESSION:
            if (strcmp(optarg, "none") && strcmp(optarg, "gzip") && strcmp(optarg, "snappy") &&
                strcmp(optarg, "lz4") && strcmp(optarg, "zstd"))
                return bad_usage("--compression: '%s' is not one of none, gzip, snappy, lz4, zstd",
                                 optarg);
            compression = optarg;
            break;
        case O_LINGER:
            if (!text_parse_u64(optarg, &u) || u > 900000)
                return bad_usage("--linger-ms: '%s' is not a number of milliseconds (0..900000)",
                                 optarg);
            linger_ms = (int)u;
            break;
        case 'X':
            if (nprops == MAX_PROPS)
                return bad_usage("too many -X properties (at most %d)", MAX_PROPS);
            if (!strchr(optarg, '=') || optarg[0] == '=')
                return bad_usage("-X: '%s' is not name=value", optarg);
            props[nprops++] = optarg;
            break;
        case O_TOTALS: totals_path = optarg; break;
        case O_QUIET: quiet = true; break;
        case O_HELP: usage(stdout); return 0;
        case ':': return bad_usage("%s needs a value", argv[optind - 1]);
        default: return bad_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return bad_usage("unexpected argument '%s'", argv[optind]);
    if (!brokers && (nprops || strcmp(topic, "orders") != 0))
        return bad_usage("--topic and -X need --brokers");
    if (rate > 0 && !have_count) {
        go.count = (uint64_t)llround(rate * UNBOUNDED_SECONDS);
        if (!have_span)
            go.span_ms = (int64_t)(UNBOUNDED_SECONDS * 1000);
    } else if (rate > 0 && !have_span) {
        go.span_ms = (int64_t)llround((double)go.count * 1000.0 / rate);
    }

    strata_err err = {0};
    order_gen *g = order_gen_create(&go, &err);
    if (!g) {
        fprintf(stderr, "strata gen: %s\n", err.msg);
        return err.code == STRATA_EINVAL ? 2 : 1;
    }
    FILE *totals = NULL;
    if (totals_path && strcmp(totals_path, "-") != 0 && !(totals = fopen(totals_path, "w"))) {
        fprintf(stderr, "strata gen: cannot write totals to %s: %s\n", totals_path, strerror(errno));
        order_gen_free(g);
        return 1;
    }

    gen_producer *p = NULL;
    if (brokers) {
        gen_producer_opts po = {.brokers = brokers, .topic = topic, .compression = compression,
                                .linger_ms = linger_ms, .props = props, .nprops = nprops,
                                .quiet = quiet};
        if (!(p = gen_producer_open(&po, &err))) {
            fprintf(stderr, "strata gen: %s\n", err.msg);
            order_gen_free(g);
            if (totals)
                fclose(totals);
            return err.code == STRATA_EINVAL ? 2 : 1;
        }
    } else {
        static char outbuf[1 << 20];
        setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    }

    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    progress prog;
    progress_start(&prog, brokers ? "produced" : "generated", have_count || rate <= 0 ? go.count : 0,
                   "events", quiet);
    gen_stream_opts so = {.producer = p, .out = stdout, .rate = rate, .stop = &stop_requested,
                          .progress = &prog};
    int64_t t0 = clock_mono_ns();
    uint64_t slots = 0;
    int rc = gen_stream_run(g, &so, &slots, &err);
    if (rc == 0 && p)
        rc = gen_producer_flush(p, &err);
    if (rc == 0 && !p && fflush(stdout) != 0)
        rc = strata_err_set(&err, STRATA_EIO, "write to stdout: %s", strerror(errno));
    double secs = (double)(clock_mono_ns() - t0) / 1e9;
    progress_finish(&prog);

    int status = 0;
    if (rc != 0) {
        fprintf(stderr, "strata gen: %s\n", err.msg);
        status = 1;
    } else if (!quiet) {
        fprintf(stderr, "strata gen: %" PRIu64 " events %s%s in %.2f s (%.0f events/s)%s\n", slots,
                p ? "delivered to " : "written", p ? topic : "", secs, secs > 0 ? (double)slots / secs : 0.0,
                atomic_load(&stop_requested) ? ", stopped by signal" : "");
    }
    if (totals_path) {
        FILE *f = totals ? totals : stderr;
        write_totals(f, &go, order_gen_get_totals(g));
        if (totals && fclose(totals) != 0) {
            fprintf(stderr, "strata gen: cannot write totals to %s: %s\n", totals_path, strerror(errno));
            status = 1;
        }
    }
    gen_producer_close(p);
    order_gen_free(g);
    return status;
}
