/*
 * kafka_ingest.h — Kafka consumers that land topics in tables exactly once.
 *
 * One consumer (its own thread and librdkafka consumer, in the table's consumer group) per
 * table whose schema has a `kafka` section. Messages are decoded as JSON events into rows
 * and appended with table_append_sourced, so the next offset of every Kafka partition is
 * committed in the partition manifests together with the segments holding its rows.
 * On every partition assignment the consumer starts each partition at the later of the
 * table's resume point (table_source_resume) and the group's committed offset (written
 * only by strata, after rows are durable, for lag monitoring and for handing partitions
 * between nodes). So after any crash, restart or rebalance each event is in the table once.
 *
 * Loss is never silent: librdkafka runs with auto.offset.reset=error. When the broker no
 * longer has the next offset (retention), the gap is logged, counted
 * (strata_kafka_lost_messages_total) and reported by kafka_ingest_degraded, and the
 * partition continues from the earliest offset the broker has.
 *
 * Dead letters: events that fail to decode go, with the reason and their
 * topic/partition/offset, to the topic `<topic>.dlq` (original bytes as the value, the
 * rest in headers strata.error / strata.topic / strata.partition / strata.offset); when
 * the broker refuses them, to <data>/<table>/deadletters.ndjson (one JSON object a line:
 * error, topic, partition, offset, and event as a string when it is UTF-8, else
 * event_base64). One bad event never stalls its partition.
 *
 * Backpressure: when the table's memtables are over their memory budget the consumer
 * pauses its partitions, flushes, and resumes; librdkafka's own prefetch is bounded
 * (queued.max.messages.kbytes), so memory stays bounded under any input rate.
 *
 * Threads: every function here is called from the server's threads; each consumer runs
 * in its own thread. The registry holds a catalog reference to each table it consumes.
 */
#ifndef STRATA_KAFKA_INGEST_H
#define STRATA_KAFKA_INGEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "catalog.h"
#include "error.h"

typedef struct kafka_ingest kafka_ingest;

typedef struct kafka_ingest_opts {
    const char *brokers;         /* overrides every table's kafka.brokers when set */
    void (*log)(const char *msg); /* one line, no newline; may be NULL */
} kafka_ingest_opts;

/* Makes an empty registry over cat (borrowed). *out: kafka_ingest_free. */
int kafka_ingest_create(strata_catalog *cat, const kafka_ingest_opts *o, kafka_ingest **out,
                        strata_err *err);
/* Starts the consumer of table name when its schema has a kafka section (0 and nothing
 * started otherwise, or when it already runs). Errors: no such table, bad librdkafka
 * settings (the message names the property). */
int kafka_ingest_attach(kafka_ingest *k, const char *name, strata_err *err);
/* Stops table name's consumer, if any: it leaves the group after landing what it read
 * (flush) and committing its offsets. */
void kafka_ingest_detach(kafka_ingest *k, const char *name);
/* Stops every consumer (as detach) and frees the registry. */
void kafka_ingest_free(kafka_ingest *k);

/* Prometheus text for every consumer (messages, rows, dead letters, lost messages,
 * replayed rows dropped, lag, pauses, assigned partitions). */
void kafka_ingest_metrics(kafka_ingest *k, bytebuf *out);
/* Writes the reasons the service is degraded (lost messages, consumer errors) as a
 * "; "-separated sentence into buf; returns false (buf "") when there are none. */
bool kafka_ingest_degraded(kafka_ingest *k, char *buf, size_t cap);
/* Adds a "kafka" object (topic, group, assigned partitions with positions, lag, counts)
 * to obj when table name has a consumer. */
void kafka_ingest_table_json(kafka_ingest *k, const char *name, json_t *obj);

#endif
