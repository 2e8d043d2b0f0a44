/*
 * broker.h — the embedded Kafka-protocol broker: librdkafka's mock cluster, started
 * in-process, for development, `strata broker`, `strata demo` and tests. No real Kafka
 * is needed: clients connect to it over TCP with the ordinary Kafka protocol.
 *
 * What the mock is (librdkafka 2.0.2, measured and read in its source, rdkafka_mock.c):
 *   - each mock broker listens on 127.0.0.1 on a port the kernel picks; there is no way to
 *     choose it, so callers read it from embedded_broker_address;
 *   - everything is in memory and gone at stop;
 *   - retention is fixed per partition, with no API to change it: a partition keeps at most
 *     5 MiB of record batches (as the producer sent them, so compressed) or 100,000
 *     batches, whichever comes first, and silently drops its oldest batches beyond that.
 *     A consumer that falls further behind than that gets "offset out of range". How many
 *     events that is depends on how well the producer batched and compressed them: see
 *     STRATA_BROKER_DEFAULT_PARTITIONS below for figures measured with `strata gen`;
 *   - topics a client produces to (or asks metadata for) without creating them first are
 *     auto-created with 4 partitions (the mock's fixed default) and the same retention;
 *     there is no CreateTopics API, so topics that need more partitions must be created
 *     here (opts.topics, or embedded_broker_create_topic);
 *   - offsets_for_times is not implemented; consumer groups work, but a second member
 *     joining waits session.timeout.ms - 1 s before the rebalance completes.
 *
 * The mock cluster lives inside a rd_kafka_t handle that this module creates and keeps
 * for the broker's lifetime (a producer handle that never produces). The mock runs its
 * own thread; nothing here needs polling.
 */
#ifndef STRATA_BROKER_H
#define STRATA_BROKER_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/error.h"

/* Partitions of each created topic unless told otherwise, sized from figures measured with
 * `strata gen`'s producer (zstd, batches of thousands of events when it runs flat out):
 *   - preloaded as fast as possible, a partition holds about 118,000 events before the
 *     mock drops its oldest batch (lz4: about 77,000), so 128 partitions hold about 15M
 *     events: a 10M-event benchmark preload fits with room to spare;
 *   - paced (a demo at a few thousand events/s spread over 128 partitions), batches carry
 *     one event each and a partition holds about 22,000 events, so the topic keeps about
 *     2.8M events, over 15 minutes at 3,000 events/s: a consumer that keeps up (or catches
 *     up within that) never meets a gap, however many hours the demo runs.
 * Memory: at most 5 MiB per partition, about 650 MiB for 128 full partitions. */
#define STRATA_BROKER_DEFAULT_PARTITIONS 128
#define STRATA_BROKER_MAX_PARTITIONS 10000
#define STRATA_BROKER_MAX_BROKERS 16

/* Retention limits of each mock partition in librdkafka 2.0.2 (fixed in its source). */
#define STRATA_BROKER_PARTITION_MAX_BYTES (5u * 1024 * 1024)
#define STRATA_BROKER_PARTITION_MAX_BATCHES 100000u

typedef struct embedded_broker_opts {
    int brokers;              /* mock brokers (each its own port), 1..STRATA_BROKER_MAX_BROKERS */
    int partitions;           /* partitions of each topic in `topics`, 1..MAX_PARTITIONS */
    const char *const *topics;/* topics to create at start; the strings are copied */
    size_t ntopics;           /* 0: create "orders" and "orders.dlq" */
    bool quiet;               /* drop librdkafka's log lines (else they go to stderr) */
} embedded_broker_opts;

/* 1 broker, STRATA_BROKER_DEFAULT_PARTITIONS partitions, the default topics, not quiet. */
void embedded_broker_opts_default(embedded_broker_opts *o /* OUT */);

typedef struct embedded_broker embedded_broker;

/* Checks o, starts the mock cluster and creates the topics. Returns the broker, which the
 * caller stops (and frees) with embedded_broker_stop; on failure returns NULL with err
 * filled (STRATA_EINVAL for bad options or topic names, STRATA_EIO when the cluster or a
 * topic could not be created, STRATA_ENOMEM) and nothing left running. */
embedded_broker *embedded_broker_start(const embedded_broker_opts *o, strata_err *err);

/* The bootstrap address list, "127.0.0.1:PORT" (comma-separated, one per broker, when
 * there are several). The string belongs to b and is valid until embedded_broker_stop. */
const char *embedded_broker_address(const embedded_broker *b);

/* Creates one more topic with the given partition count (and the cluster's replication).
 * Returns 0; STRATA_EEXIST when it exists already; STRATA_EINVAL for a bad name or count;
 * STRATA_EIO when the mock refuses. Safe from any thread. */
int embedded_broker_create_topic(embedded_broker *b, const char *topic, int partitions,
                                 strata_err *err);

/* Stops the cluster (clients connected to it see the connection close), frees everything
 * the broker held, and b. NULL is a no-op. */
void embedded_broker_stop(embedded_broker *b);

/* 0 when name is a valid Kafka topic name (1..249 characters of [A-Za-z0-9._-], not "."
 * or ".."), else STRATA_EINVAL with the reason in err. */
int embedded_broker_check_topic_name(const char *name, strata_err *err);

#endif
