/*
 * broker.c — the embedded Kafka-protocol broker: a librdkafka mock cluster living in a
 * producer handle of its own. See broker.h for what the mock does and does not do.
 *
 * Start: a rd_kafka_t producer handle is made with no bootstrap servers (it never
 * connects anywhere; it only hosts the mock's thread and timers), then
 * rd_kafka_mock_cluster_new starts the brokers and rd_kafka_mock_topic_create makes the
 * topics (each call is a synchronous request to the mock's own thread). Stop destroys the
 * cluster, then the handle.
 */
#include "tools/broker.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdlib.h>
#include <string.h>

struct embedded_broker {
    rd_kafka_t *rk;                 /* hosts the mock cluster */
    rd_kafka_mock_cluster_t *mcluster;
    int replication;                /* replication factor of created topics */
    char *address;                  /* copy of the bootstrap list */
};

static const char *const default_topics[] = {"orders", "orders.dlq"};

void embedded_broker_opts_default(embedded_broker_opts *o)
{
    memset(o, 0, sizeof *o);
    o->brokers = 1;
    o->partitions = STRATA_BROKER_DEFAULT_PARTITIONS;
}

int embedded_broker_check_topic_name(const char *name, strata_err *err)
{
    if (!name || !*name)
        return strata_err_set(err, STRATA_EINVAL, "topic name is empty");
    size_t n = strlen(name);
    if (n > 249)
        return strata_err_set(err, STRATA_EINVAL, "topic name is longer than 249 characters");
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return strata_err_set(err, STRATA_EINVAL, "topic name cannot be '%s'", name);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return strata_err_set(err, STRATA_EINVAL,
                                  "topic name '%s' has '%c': only letters, digits, '.', '_' "
                                  "and '-' are allowed",
                                  name, c);
    }
    return 0;
}

static void log_nothing(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
}

int embedded_broker_create_topic(embedded_broker *b, const char *topic, int partitions,
                                 strata_err *err)
{
    int rc = embedded_broker_check_topic_name(topic, err);
    if (rc)
        return rc;
    if (partitions < 1 || partitions > STRATA_BROKER_MAX_PARTITIONS)
        return strata_err_set(err, STRATA_EINVAL, "topic %s: partitions must be 1..%d (got %d)",
                              topic, STRATA_BROKER_MAX_PARTITIONS, partitions);
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(b->mcluster, topic, partitions, b->replication);
    if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        return strata_err_set(err, STRATA_EEXIST, "topic %s exists already", topic);
    if (e)
        return strata_err_set(err, STRATA_EIO, "cannot create topic %s: %s", topic, rd_kafka_err2str(e));
    return 0;
}

embedded_broker *embedded_broker_start(const embedded_broker_opts *o, strata_err *err)
{
    char errstr[512];
    embedded_broker *b = NULL;
    rd_kafka_conf_t *conf = NULL;

    if (o->brokers < 1 || o->brokers > STRATA_BROKER_MAX_BROKERS) {
        strata_err_set(err, STRATA_EINVAL, "brokers must be 1..%d (got %d)", STRATA_BROKER_MAX_BROKERS,
                       o->brokers);
        return NULL;
    }
    if (o->partitions < 1 || o->partitions > STRATA_BROKER_MAX_PARTITIONS) {
        strata_err_set(err, STRATA_EINVAL, "partitions must be 1..%d (got %d)",
                       STRATA_BROKER_MAX_PARTITIONS, o->partitions);
        return NULL;
    }
    const char *const *topics = o->ntopics ? o->topics : default_topics;
    size_t ntopics = o->ntopics ? o->ntopics : sizeof default_topics / sizeof default_topics[0];
    for (size_t i = 0; i < ntopics; i++) {
        if (embedded_broker_check_topic_name(topics[i], err) != 0)
            return NULL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(topics[i], topics[j]) == 0) {
                strata_err_set(err, STRATA_EINVAL, "topic %s is named twice", topics[i]);
                return NULL;
            }
    }

    b = calloc(1, sizeof *b);
    conf = rd_kafka_conf_new();
    if (!b || !conf) {
        strata_err_set(err, STRATA_ENOMEM, "embedded broker: out of memory");
        goto fail;
    }
    b->replication = o->brokers < 3 ? o->brokers : 3;
    if (o->quiet)
        rd_kafka_conf_set_log_cb(conf, log_nothing);
    /* The host handle has no bootstrap servers on purpose; it would only warn about it. */
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "client.id", "strata-embedded-broker", errstr, sizeof errstr) !=
            RD_KAFKA_CONF_OK) {
        strata_err_set(err, STRATA_EIO, "embedded broker: %s", errstr);
        goto fail;
    }
    b->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!b->rk) {
        strata_err_set(err, STRATA_EIO, "embedded broker: cannot create the host handle: %s", errstr);
        goto fail;
    }
    conf = NULL; /* owned by rk now */
    b->mcluster = rd_kafka_mock_cluster_new(b->rk, o->brokers);
    if (!b->mcluster) {
        strata_err_set(err, STRATA_EIO, "embedded broker: cannot start the mock cluster "
                                        "(could not listen on 127.0.0.1?)");
        goto fail;
    }
    b->address = strdup(rd_kafka_mock_cluster_bootstraps(b->mcluster));
    if (!b->address) {
        strata_err_set(err, STRATA_ENOMEM, "embedded broker: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < ntopics; i++)
        if (embedded_broker_create_topic(b, topics[i], o->partitions, err) != 0)
            goto fail;
    return b;

fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    embedded_broker_stop(b);
    return NULL;
}

const char *embedded_broker_address(const embedded_broker *b)
{
    return b->address;
}

void embedded_broker_stop(embedded_broker *b)
{
    if (!b)
        return;
    if (b->mcluster)
        rd_kafka_mock_cluster_destroy(b->mcluster);
    if (b->rk)
        rd_kafka_destroy(b->rk);
    free(b->address);
    free(b);
}
