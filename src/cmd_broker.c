/*
 * cmd_broker.c — `strata broker`: runs the embedded Kafka-protocol broker (tools/broker.h)
 * until SIGINT or SIGTERM.
 *
 * The bootstrap address is the first line on stdout, flushed at once, so a script can read
 * it and start clients; everything else (a summary, librdkafka's log lines) goes to stderr.
 * SIGINT and SIGTERM are blocked before the broker starts, so every librdkafka thread
 * inherits the block and the main thread alone takes them, with sigwait.
 * Exit status: 0 stopped by a signal, 1 the broker could not start, 2 bad usage.
 */
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/text.h"
#include "src/cli.h"
#include "src/commands.h"
#include "src/signals.h"
#include "tools/broker.h"

#define MAX_TOPICS 64

static void usage(FILE *f)
{
    fprintf(f,
        "usage: strata broker [--partitions N] [--topic NAME]... [--brokers N] [--quiet]\n\n"
        "Runs an embedded Kafka-protocol broker (librdkafka's mock cluster) in memory, for\n"
        "development, the demo and tests. Prints its bootstrap address (127.0.0.1:PORT, the\n"
        "port picked by the system; one per broker, comma-separated) as the first line on\n"
        "stdout, then runs until SIGINT or SIGTERM and exits 0. Logs go to stderr.\n\n"
        "  --partitions N  partitions of each topic created here (default %d)\n"
        "  --topic NAME    create this topic (repeatable; default: orders and orders.dlq)\n"
        "  --brokers N     brokers in the cluster, each on its own port (default 1, at most %d);\n"
        "                  partition leaders are spread over them\n"
        "  --quiet         no summary and no librdkafka log lines on stderr\n"
        "  --help          this text\n\n"
        "Limits of the mock (librdkafka 2.0.2), none of them configurable:\n"
        "  - each partition keeps at most %u MiB of record batches (compressed, as\n"
        "    producers sent them) or %u batches, and silently drops its oldest beyond\n"
        "    that; a consumer further behind gets 'offset out of range'. With `strata gen`'s\n"
        "    producer (zstd) a partition holds about 118,000 events preloaded as fast as\n"
        "    possible, and about 22,000 when paced slowly enough that each batch carries a\n"
        "    single event; the default %d partitions hold about 15M preloaded events;\n"
        "  - topics not created here are auto-created with 4 partitions when a client first\n"
        "    produces to them or asks for their metadata;\n"
        "  - all data is in memory (at most %u MiB per partition) and gone at exit;\n"
        "  - offsets_for_times is not implemented; a second consumer-group member waits\n"
        "    session.timeout.ms - 1 s for the rebalance.\n",
        STRATA_BROKER_DEFAULT_PARTITIONS, STRATA_BROKER_MAX_BROKERS,
        STRATA_BROKER_PARTITION_MAX_BYTES >> 20, STRATA_BROKER_PARTITION_MAX_BATCHES,
        STRATA_BROKER_DEFAULT_PARTITIONS, STRATA_BROKER_PARTITION_MAX_BYTES >> 20);
}

#define bad_usage(...) cli_bad_usage("broker", __VA_ARGS__)

/* Decimal digits only (no sign, no space), within [lo, hi]. */
static int parse_int(const char *s, int lo, int hi, int *out)
{
    uint64_t v;
    if (!text_parse_u64(s, &v) || v < (uint64_t)lo || v > (uint64_t)hi)
        return -1;
    *out = (int)v;
    return 0;
}

int cmd_broker(int argc, char **argv)
{
    enum { O_PARTITIONS = 256, O_TOPIC, O_BROKERS, O_QUIET, O_HELP };
    static const struct option opts[] = {
        {"partitions", required_argument, NULL, O_PARTITIONS},
        {"topic", required_argument, NULL, O_TOPIC},
        {"brokers", required_argument, NULL, O_BROKERS},
        {"quiet", no_argument, NULL, O_QUIET},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    embedded_broker_opts bo;
    embedded_broker_opts_default(&bo);
    const char *topics[MAX_TOPICS];
    strata_err err = {0};
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case O_PARTITIONS:
            if (parse_int(optarg, 1, STRATA_BROKER_MAX_PARTITIONS, &bo.partitions) != 0)
                return bad_usage("--partitions: '%s' is not an integer from 1 to %d", optarg,
                                 STRATA_BROKER_MAX_PARTITIONS);
            break;
        case O_BROKERS:
            if (parse_int(optarg, 1, STRATA_BROKER_MAX_BROKERS, &bo.brokers) != 0)
                return bad_usage("--brokers: '%s' is not an integer from 1 to %d", optarg,
                                 STRATA_BROKER_MAX_BROKERS);
            break;
        case O_TOPIC:
            if (bo.ntopics == MAX_TOPICS)
                return bad_usage("too many --topic (at most %d)", MAX_TOPICS);
            if (embedded_broker_check_topic_name(optarg, &err) != 0)
                return bad_usage("--topic: %s", err.msg);
            topics[bo.ntopics++] = optarg;
            break;
        case O_QUIET: bo.quiet = true; break;
        case O_HELP: usage(stdout); return 0;
        case ':':
            return bad_usage("%s needs a value", argv[optind - 1]);
        default:
            return bad_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) {
        return bad_usage("unexpected argument '%s'", argv[optind]);
    }
    bo.topics = topics;

    sigset_t stop;
    signals_block_stop(&stop);
    signal(SIGPIPE, SIG_IGN);

    embedded_broker *b = embedded_broker_start(&bo, &err);
    if (!b) {
        fprintf(stderr, "strata broker: %s\n", err.msg);
        return err.code == STRATA_EINVAL ? 2 : 1;
    }
    printf("%s\n", embedded_broker_address(b));
    fflush(stdout);
    if (!bo.quiet) {
        fprintf(stderr, "strata broker: %d broker%s at %s; topics", bo.brokers, bo.brokers > 1 ? "s" : "",
                embedded_broker_address(b));
        if (bo.ntopics)
            for (size_t i = 0; i < bo.ntopics; i++)
                fprintf(stderr, "%s %s", i ? "," : "", topics[i]);
        else
            fprintf(stderr, " orders, orders.dlq");
        fprintf(stderr, " (%d partitions each); SIGINT or SIGTERM stops it\n", bo.partitions);
    }

    int sig = 0;
    while (sigwait(&stop, &sig) != 0)
        ;
    if (!bo.quiet)
        fprintf(stderr, "strata broker: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    embedded_broker_stop(b);
    return 0;
}
