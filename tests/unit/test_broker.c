/*
 * test_broker.c — the embedded broker (tools/broker.h) and the load producer
 * (tools/gen_producer.h), end to end in one process: start the mock cluster, produce
 * generated order events through gen_stream_run exactly as `strata gen` does, consume
 * every partition back with a librdkafka consumer and check that each partition holds
 * exactly the events whose key hashes to it, in order, byte for byte what
 * order_gen_next_json gives for the same options, keyed as documented, with nothing
 * dropped by the mock's retention. Also: the address format, option and topic-name
 * checks, auto-created topics, a failed delivery reported (never silent), pacing and the
 * stop flag of the send loop.
 */
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <xxhash.h>

#include "tools/broker.h"
#include "tools/gen_producer.h"
#include "tools/order_gen.h"
#include "test.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static embedded_broker *start(int brokers, int partitions, const char *const *topics, size_t ntopics)
{
    embedded_broker_opts o;
    embedded_broker_opts_default(&o);
    o.brokers = brokers;
    o.partitions = partitions;
    o.topics = topics;
    o.ntopics = ntopics;
    o.quiet = true;
    strata_err err = {0};
    embedded_broker *b = embedded_broker_start(&o, &err);
    if (!b)
        TEST_FAIL_("embedded_broker_start: %s", err.msg);
    return b;
}

/* Checks "127.0.0.1:PORT[,127.0.0.1:PORT...]" with n entries and valid ports. */
static void check_address(const char *a, int n)
{
    int seen = 0;
    while (*a) {
        ASSERT(strncmp(a, "127.0.0.1:", 10) == 0);
        a += 10;
        char *end;
        long port = strtol(a, &end, 10);
        ASSERT(end > a && port > 0 && port < 65536);
        a = end;
        seen++;
        if (*a == ',')
            a++;
        else
            ASSERT_EQ(*a, '\0');
    }
    ASSERT_EQ(seen, n);
}

TEST(address_is_loopback_with_a_port_per_broker)
{
    embedded_broker *b = start(1, 4, NULL, 0);
    check_address(embedded_broker_address(b), 1);
    embedded_broker_stop(b);
    b = start(3, 4, NULL, 0);
    check_address(embedded_broker_address(b), 3);
    embedded_broker_stop(b);
}

TEST(bad_options_and_topic_names_are_refused)
{
    embedded_broker_opts o;
    strata_err err = {0};
    embedded_broker_opts_default(&o);
    ASSERT_EQ(o.partitions, STRATA_BROKER_DEFAULT_PARTITIONS);
    o.partitions = 0;
    ASSERT(embedded_broker_start(&o, &err) == NULL);
    ASSERT_EQ(err.code, STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "partitions");
    embedded_broker_opts_default(&o);
    o.brokers = 0;
    ASSERT(embedded_broker_start(&o, &err) == NULL);
    ASSERT_CONTAINS(err.msg, "brokers");
    const char *bad[] = {"orders", "a b"};
    embedded_broker_opts_default(&o);
    o.topics = bad;
    o.ntopics = 2;
    ASSERT(embedded_broker_start(&o, &err) == NULL);
    ASSERT_CONTAINS(err.msg, "'a b'");
    const char *twice[] = {"orders", "orders"};
    o.topics = twice;
    ASSERT(embedded_broker_start(&o, &err) == NULL);
    ASSERT_CONTAINS(err.msg, "twice");
    ASSERT_EQ(embedded_broker_check_topic_name("orders.dlq", &err), 0);
    ASSERT_EQ(embedded_broker_check_topic_name("", &err), STRATA_EINVAL);
    ASSERT_EQ(embedded_broker_check_topic_name("..", &err), STRATA_EINVAL);
    ASSERT_EQ(embedded_broker_check_topic_name("x/y", &err), STRATA_EINVAL);
    char longname[300];
    memset(longname, 'a', 250);
    longname[250] = '\0';
    ASSERT_EQ(embedded_broker_check_topic_name(longname, &err), STRATA_EINVAL);

    embedded_broker *b = start(1, 2, NULL, 0);
    ASSERT_EQ(embedded_broker_create_topic(b, "orders", 2, &err), STRATA_EEXIST);
    ASSERT_EQ(embedded_broker_create_topic(b, "more", 0, &err), STRATA_EINVAL);
    ASSERT_EQ(embedded_broker_create_topic(b, "more", 3, &err), 0);
    embedded_broker_stop(b);
}

/* ---- consuming back --------------------------------------------------------------------- */

static rd_kafka_t *consumer(const char *brokers)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *props[][2] = {
        {"bootstrap.servers", brokers}, {"group.id", "test-broker"}, {"enable.auto.commit", "false"},
        {"enable.partition.eof", "false"}, {"fetch.wait.max.ms", "50"}, {"log_level", "3"},
    };
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++)
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
            TEST_FAIL_("%s: %s", props[i][0], errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk)
        TEST_FAIL_("consumer: %s", errstr);
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

/* Partition count of topic as the cluster reports it, or -1. */
static int partition_count(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int n = -1;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
            n = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return n;
}

/* What one message is checked by: a hash of its key and value. */
static uint64_t message_hash(const void *key, size_t keylen, const void *value, size_t len)
{
    return XXH3_64bits_withSeed(value, len, XXH3_64bits(key, keylen));
}

typedef struct partition_log {
    uint64_t *hash; /* per offset, from the consumed messages */
    int64_t low, high;
    uint64_t got, cursor;
} partition_log;

/* Reads every message of every partition of topic (nothing may be dropped: each
 * partition's low watermark must be 0) into logs[partition]. */
static void consume_all(const char *brokers, const char *topic, int partitions, partition_log *logs)
{
    rd_kafka_t *rk = consumer(brokers);
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(partitions);
    uint64_t want = 0, got = 0;
    for (int p = 0; p < partitions; p++) {
        partition_log *l = &logs[p];
        ASSERT_EQ(rd_kafka_query_watermark_offsets(rk, topic, p, &l->low, &l->high, 10000), 0);
        ASSERT_EQ(l->low, 0); /* the mock's retention dropped nothing */
        l->hash = calloc((size_t)l->high + 1, sizeof *l->hash);
        ASSERT(l->hash);
        want += (uint64_t)l->high;
        rd_kafka_topic_partition_list_add(tl, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    ASSERT_EQ(rd_kafka_assign(rk, tl), 0);
    rd_kafka_topic_partition_list_destroy(tl);
    double last_progress = now_s();
    while (got < want) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            if (now_s() - last_progress > 30)
                TEST_FAIL_("consumed %llu of %llu messages, then nothing for 30 s",
                           (unsigned long long)got, (unsigned long long)want);
            continue;
        }
        if (m->err) {
            char why[256];
            snprintf(why, sizeof why, "%s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            TEST_FAIL_("consume: %s", why);
        }
        partition_log *l = &logs[m->partition];
        ASSERT(m->offset >= 0 && m->offset < l->high);
        l->hash[m->offset] = message_hash(m->key, m->key_len, m->payload, m->len);
        l->got++;
        got++;
        last_progress = now_s();
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    for (int p = 0; p < partitions; p++)
        ASSERT_EQ(logs[p].got, (uint64_t)logs[p].high);
}

static gen_producer *producer(const char *brokers, const char *topic, const char *const *props, size_t nprops)
{
    gen_producer_opts po = {.brokers = brokers, .topic = topic, .linger_ms = -1, .props = props,
                            .nprops = nprops, .quiet = true};
    strata_err err = {0};
    gen_producer *p = gen_producer_open(&po, &err);
    if (!p)
        TEST_FAIL_("gen_producer_open: %s", err.msg);
    return p;
}

static order_gen *generator(uint64_t seed, uint64_t count)
{
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.seed = seed;
    o.count = count;
    o.duplicates = 0.1;
    o.late = 0.05;
    o.bad = 0.01;
    strata_err err = {0};
    order_gen *g = order_gen_create(&o, &err);
    if (!g)
        TEST_FAIL_("order_gen_create: %s", err.msg);
    return g;
}

/* 500k events over 16 partitions: every one lands where its key says, in order, intact. */
TEST(every_event_lands_once_in_order_in_its_keys_partition)
{
    enum { PARTITIONS = 16, COUNT = 500000 };
    const char *topics[] = {"orders"};
    embedded_broker *b = start(1, PARTITIONS, topics, 1);
    const char *addr = embedded_broker_address(b);

    gen_producer *p = producer(addr, "orders", NULL, 0);
    order_gen *g = generator(42, COUNT);
    strata_err err = {0};
    gen_stream_opts so = {.producer = p};
    uint64_t slots = 0;
    double t0 = now_s();
    ASSERT_EQ(gen_stream_run(g, &so, &slots, &err), 0);
    ASSERT_EQ(gen_producer_flush(p, &err), 0);
    double secs = now_s() - t0;
    gen_producer_counts c;
    gen_producer_get_counts(p, &c);
    ASSERT_U64_EQ(slots, COUNT);
    ASSERT_U64_EQ(c.sent, COUNT);
    ASSERT_U64_EQ(c.delivered, COUNT);
    ASSERT_U64_EQ(c.failed, 0);
    const order_gen_totals *t = order_gen_get_totals(g);
    ASSERT_GT(t->bad, 0);
    ASSERT_GT(t->duplicates, 0);
    fprintf(stderr, "  produced %d events in %.2f s (%.0f/s)\n", COUNT, secs, COUNT / secs);
    order_gen_free(g);
    gen_producer_close(p);

    partition_log logs[PARTITIONS] = {{0}};
    consume_all(addr, "orders", PARTITIONS, logs);

    /* Replay the generator: slot i must be the next message of the partition its key
     * hashes to (librdkafka's default partitioner: CRC32 of the key). */
    g = generator(42, COUNT);
    char line[ORDER_GEN_JSON_MAX], key[32];
    order_gen_msg m;
    uint64_t bad = 0, slot = 0;
    while (order_gen_next_json(g, line, sizeof line, &m) == 1) {
        size_t kl = gen_event_key(&m, slot, key, sizeof key);
        if (m.bad) {
            char want[32];
            snprintf(want, sizeof want, "bad-%llu", (unsigned long long)slot);
            ASSERT_STR_EQ(key, want);
            bad++;
        } else {
            ASSERT_U64_EQ(strtoull(key, NULL, 10), m.event_id);
        }
        int32_t part = rd_kafka_msg_partitioner_consistent(NULL, key, kl, PARTITIONS, NULL, NULL);
        partition_log *l = &logs[part];
        if (l->cursor >= l->got)
            TEST_FAIL_("slot %llu: partition %d has only %llu messages", (unsigned long long)slot,
                       part, (unsigned long long)l->got);
        if (l->hash[l->cursor] != message_hash(key, kl, line, m.len))
            TEST_FAIL_("slot %llu (key %s): partition %d offset %llu holds another message",
                       (unsigned long long)slot, key, part, (unsigned long long)l->cursor);
        l->cursor++;
        slot++;
    }
    ASSERT_U64_EQ(slot, COUNT);
    ASSERT_U64_EQ(bad, order_gen_get_totals(g)->bad);
    for (int i = 0; i < PARTITIONS; i++) {
        ASSERT_U64_EQ(logs[i].cursor, logs[i].got); /* nothing extra in any partition */
        ASSERT_GT(logs[i].got, COUNT / PARTITIONS / 2);
        free(logs[i].hash);
    }
    order_gen_free(g);
    embedded_broker_stop(b);
}

/* A topic nobody created is auto-created (4 partitions) when produced to, and takes the
 * messages; a topic created here has the partitions asked for. */
TEST(topics_produced_to_without_creating_are_auto_created)
{
    embedded_broker *b = start(1, 8, NULL, 0);
    const char *addr = embedded_broker_address(b);
    gen_producer *p = producer(addr, "elsewhere.dlq", NULL, 0);
    strata_err err = {0};
    for (int i = 0; i < 100; i++) {
        char v[32];
        int n = snprintf(v, sizeof v, "dead letter %d", i);
        ASSERT_EQ(gen_producer_send(p, NULL, 0, v, (size_t)n, &err), 0);
    }
    ASSERT_EQ(gen_producer_flush(p, &err), 0);
    gen_producer_close(p);
    rd_kafka_t *rk = consumer(addr);
    ASSERT_EQ(partition_count(rk, "orders"), 8);
    ASSERT_EQ(partition_count(rk, "orders.dlq"), 8);
    ASSERT_EQ(partition_count(rk, "elsewhere.dlq"), 4);
    int64_t total = 0;
    for (int i = 0; i < 4; i++) {
        int64_t lo, hi;
        ASSERT_EQ(rd_kafka_query_watermark_offsets(rk, "elsewhere.dlq", i, &lo, &hi, 10000), 0);
        total += hi - lo;
    }
    ASSERT_EQ(total, 100);
    rd_kafka_destroy(rk);
    embedded_broker_stop(b);
}

/* Regression guard for "never lose events silently": with the broker gone, every message
 * fails and flush says so. */
TEST(failed_deliveries_are_reported_by_flush)
{
    embedded_broker *b = start(1, 2, NULL, 0);
    char addr[256];
    snprintf(addr, sizeof addr, "%s", embedded_broker_address(b));
    const char *props[] = {"message.timeout.ms=500"};
    gen_producer *p = producer(addr, "orders", props, 1); /* reachable at open */
    embedded_broker_stop(b);                               /* gone before the messages */
    strata_err err = {0};
    ASSERT_EQ(gen_producer_send(p, "k", 1, "v", 1, &err), 0);
    ASSERT_EQ(gen_producer_send(p, "k", 1, "w", 1, &err), 0);
    ASSERT_EQ(gen_producer_flush(p, &err), STRATA_EIO);
    ASSERT_CONTAINS(err.msg, "2 of 2 messages were not delivered");
    gen_producer_counts c;
    gen_producer_get_counts(p, &c);
    ASSERT_U64_EQ(c.failed, 2);
    ASSERT_U64_EQ(c.delivered, 0);
    gen_producer_close(p);
}

/* A broker that does not answer is one clear error at open, within about 10 s, not a
 * minute of retries before the first delivery fails. */
TEST(unreachable_broker_is_refused_at_open)
{
    embedded_broker *b = start(1, 2, NULL, 0);
    char addr[256];
    snprintf(addr, sizeof addr, "%s", embedded_broker_address(b));
    embedded_broker_stop(b);
    gen_producer_opts po = {.brokers = addr, .topic = "orders", .linger_ms = -1, .quiet = true};
    strata_err err = {0};
    double t0 = now_s();
    ASSERT(gen_producer_open(&po, &err) == NULL);
    ASSERT(now_s() - t0 < 15 * test_slowdown());
    ASSERT_EQ(err.code, STRATA_EIO);
    ASSERT_CONTAINS(err.msg, "cannot reach Kafka at ");
}

TEST(bad_producer_properties_are_refused_by_name)
{
    strata_err err = {0};
    const char *props[] = {"no.such.property=1"};
    gen_producer_opts po = {.brokers = "127.0.0.1:1", .topic = "t", .linger_ms = -1, .props = props,
                            .nprops = 1, .quiet = true};
    ASSERT(gen_producer_open(&po, &err) == NULL);
    ASSERT_EQ(err.code, STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "no.such.property");
    const char *noeq[] = {"linger.ms"};
    po.props = noeq;
    ASSERT(gen_producer_open(&po, &err) == NULL);
    ASSERT_CONTAINS(err.msg, "name=value");
    po.props = NULL;
    po.nprops = 0;
    po.compression = "brotli";
    ASSERT(gen_producer_open(&po, &err) == NULL);
    ASSERT_CONTAINS(err.msg, "compression");
}

/* ---- the send loop without Kafka ------------------------------------------------------- */

/* NDJSON from gen_stream_run is order_gen_next_json's text, one event per line. */
TEST(stream_to_file_writes_the_generator_lines)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ASSERT(f);
    order_gen *g = generator(7, 5000);
    gen_stream_opts so = {.out = f};
    strata_err err = {0};
    uint64_t slots = 0;
    ASSERT_EQ(gen_stream_run(g, &so, &slots, &err), 0);
    ASSERT_EQ(fclose(f), 0);
    ASSERT_U64_EQ(slots, 5000);
    order_gen_free(g);

    g = generator(7, 5000);
    char line[ORDER_GEN_JSON_MAX];
    order_gen_msg m;
    size_t at = 0;
    while (order_gen_next_json(g, line, sizeof line, &m) == 1) {
        ASSERT(at + m.len + 1 <= len);
        ASSERT(memcmp(buf + at, line, m.len) == 0);
        ASSERT_EQ(buf[at + m.len], '\n');
        at += m.len + 1;
    }
    ASSERT_EQ(at, len);
    order_gen_free(g);
    free(buf);
}

/* 1500 events at 3000/s take about half a second; at 20/s, 11 events about half a
 * second too: the last is due at 10/20 s, and the run ends as soon as it is sent. Not
 * sooner is the pacing; the bound above is loose (a second, scaled for sanitizer builds),
 * because a loaded machine may stall any thread for a while. */
TEST(stream_is_paced)
{
    double rates[] = {3000, 20};
    uint64_t counts[] = {1500, 11};
    for (int k = 0; k < 2; k++) {
        FILE *f = fopen("/dev/null", "w");
        ASSERT(f);
        order_gen *g = generator(1, counts[k]);
        gen_stream_opts so = {.out = f, .rate = rates[k]};
        strata_err err = {0};
        uint64_t slots = 0;
        double t0 = now_s();
        ASSERT_EQ(gen_stream_run(g, &so, &slots, &err), 0);
        double secs = now_s() - t0;
        ASSERT_U64_EQ(slots, counts[k]);
        fprintf(stderr, "  %llu events at %.0f/s: %.3f s\n", (unsigned long long)counts[k], rates[k], secs);
        ASSERT(secs >= 0.45 && secs < 0.5 + 0.5 * test_slowdown());
        order_gen_free(g);
        fclose(f);
    }
}

TEST(stream_stops_when_asked)
{
    FILE *f = fopen("/dev/null", "w");
    ASSERT(f);
    order_gen *g = generator(1, 1000000);
    atomic_int stop = 1;
    gen_stream_opts so = {.out = f, .rate = 10, .stop = &stop};
    strata_err err = {0};
    uint64_t slots = 99;
    ASSERT_EQ(gen_stream_run(g, &so, &slots, &err), 0);
    ASSERT_U64_EQ(slots, 1); /* the slot drawn before it saw the flag */
    ASSERT_U64_EQ(order_gen_get_totals(g)->slots, slots);
    order_gen_free(g);
    fclose(f);
}

TEST_LIST(T(address_is_loopback_with_a_port_per_broker), T(bad_options_and_topic_names_are_refused),
          T(every_event_lands_once_in_order_in_its_keys_partition),
          T(topics_produced_to_without_creating_are_auto_created),
          T(failed_deliveries_are_reported_by_flush), T(unreachable_broker_is_refused_at_open),
          T(bad_producer_properties_are_refused_by_name),
          T(stream_to_file_writes_the_generator_lines), T(stream_is_paced), T(stream_stops_when_asked))
