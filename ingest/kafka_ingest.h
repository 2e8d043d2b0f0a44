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
 * (strata_kafka_lost_messages_total) and reported by kafka_ingest_problems, and the
 * partition continues from the earliest offset the broker has. When instead the
 * partition's offsets went backwards (the broker's partition ends below where the table
 * stands: the topic was re-created, or an embedded broker restarted empty), that is a
 * reset, not retention: the partition stops, reported by name (kafka.offset_reset
 * "stop", the default), or is read again from its start as new data ("accept", or
 * kafka_ingest_accept_reset), under a new offset epoch so the old checkpoints cannot
 * drop the new events as replays. Offsets are committed to the group with their epoch as
 * metadata, and a dropped table's offsets are marked as such, so a table created later
 * under the same group name does not inherit them.
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

#include "engine/buf.h"
#include "engine/catalog.h"
#include "engine/error.h"
#include "engine/schema.h"

typedef struct kafka_ingest kafka_ingest;

typedef struct kafka_ingest_opts {
    const char *brokers;         /* overrides every table's kafka.brokers when set */
    void (*log)(const char *msg); /* one line, no newline; may be NULL */
} kafka_ingest_opts;

/* Makes an empty registry over cat (borrowed). *out: kafka_ingest_free. */
int kafka_ingest_create(strata_catalog *cat, const kafka_ingest_opts *o, kafka_ingest **out,
                        strata_err *err);
/* Checks that a table with schema s could consume: brokers known (its own or
 * --kafka-brokers) and every librdkafka property accepted. 0 (also without a kafka
 * section) or STRATA_EINVAL naming the table and the setting. */
int kafka_ingest_validate(kafka_ingest *k, const strata_schema *s, strata_err *err);
/* Starts the consumer of table name when its schema has a kafka section (0 and nothing
 * started otherwise, or when it already runs: concurrent attaches start one consumer).
 * Errors: no such table, no brokers, bad librdkafka settings (the message names the
 * property); a table whose consumer cannot start is reported by kafka_ingest_problems and
 * kafka_ingest_table_json until it is attached or detached. */
int kafka_ingest_attach(kafka_ingest *k, const char *name, strata_err *err);
/* Stops table name's consumer, if any: it leaves the group after landing what it read
 * (flush) and committing its offsets; with dropping (the table is about to be dropped) it
 * lands nothing more and marks its committed offsets as a dropped table's. Returns true
 * when a consumer was running. */
bool kafka_ingest_detach(kafka_ingest *k, const char *name, bool dropping);
/* Reads every partition of table name stopped by an offset reset again as new data (as
 * kafka.offset_reset "accept" would have); adds "accepted": [partitions] to out.
 * STRATA_ENOTFOUND when the table has no consumer, STRATA_EEXIST when nothing is stopped. */
int kafka_ingest_accept_reset(kafka_ingest *k, const char *name, json_t *out, strata_err *err);
/* Stops every consumer (as detach) and frees the registry. */
void kafka_ingest_free(kafka_ingest *k);

/* Prometheus text for every consumer (messages, rows, dead letters, lost messages,
 * replayed rows dropped, lag, pauses, assigned partitions, events that landed with fields
 * naming no column: counted when their rows land, so events read again after a restart
 * may count again). */
void kafka_ingest_metrics(kafka_ingest *k, bytebuf *out);
/* Appends to out (a JSON array) one sentence for each reason the service is degraded:
 * lost messages, partitions stopped by an offset reset, consumer errors, tables that
 * cannot consume. */
void kafka_ingest_problems(kafka_ingest *k, json_t *out);
/* Adds a "kafka" object to obj when table name has a consumer (topic, group, state
 * "assigning" until the group assigns partitions then "consuming" or "partly stopped",
 * assigned partitions with positions (null until known), lag (null until known), counts)
 * or one that could not start (state "not consuming", error). */
void kafka_ingest_table_json(kafka_ingest *k, const char *name, json_t *obj);

#endif
