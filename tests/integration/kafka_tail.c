/*
 * kafka_tail.c — test helper: prints every message of a Kafka topic as one JSON line
 * {"partition", "offset", "key", "headers": {name: value}, "value"} (key/value as strings;
 * non-UTF-8 bytes are replaced by jansson's refusal: such values print as null).
 *
 * usage: kafka_tail BROKERS TOPIC [IDLE_MS]
 * Reads from the earliest offset with a fresh consumer group until no message came for
 * IDLE_MS (default 3000) after the partitions were assigned. Exit 0, or 1 on errors.
 */
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines only, even if the process is cut short */
    if (argc < 3) {
        fprintf(stderr, "usage: kafka_tail BROKERS TOPIC [IDLE_MS]\n");
        return 2;
    }
    long idle = argc > 3 ? atol(argv[3]) : 3000;
    char errstr[512], group[64];
    snprintf(group, sizeof group, "kafka-tail-%d-%lld", (int)getpid(), now_ms());
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr)) {
        fprintf(stderr, "kafka_tail: %s\n", errstr);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "kafka_tail: %s\n", errstr);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, argv[2], RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    long long last = now_ms(), start = last;
    bool assigned = false;
    while (now_ms() - last < idle || (!assigned && now_ms() - start < 30000)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!assigned) {
            rd_kafka_topic_partition_list_t *a = NULL;
            if (rd_kafka_assignment(rk, &a) == 0 && a) {
                if (a->cnt > 0) {
                    assigned = true;
                    last = now_ms();
                }
                rd_kafka_topic_partition_list_destroy(a);
            }
        }
        if (!m)
            continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        last = now_ms();
        json_t *h = json_object();
        rd_kafka_headers_t *hdrs = NULL;
        if (rd_kafka_message_headers(m, &hdrs) == 0) {
            const char *name;
            const void *v;
            size_t n;
            for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &v, &n) == 0; i++)
                json_object_set_new(h, name, json_stringn(v, n));
        }
        json_t *j = json_pack("{s:i, s:I, s:o, s:o, s:o}", "partition", (int)m->partition, "offset",
                              (json_int_t)m->offset, "key",
                              m->key ? json_stringn(m->key, m->key_len) : json_null(), "headers", h,
                              "value", m->payload ? json_stringn(m->payload, m->len) : json_null());
        char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (line)
            puts(line);
        free(line);
        json_decref(j);
        rd_kafka_message_destroy(m);
    }
    fflush(stdout); /* every line out whole, whatever the shutdown below does */
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return assigned ? 0 : 1;
}
