/*
 * kafka_metrics.h — the Prometheus text of the Kafka consumers (/metrics), rendered from
 * snapshots of their counters, so the rendering needs no consumer, lock or librdkafka.
 *
 * The consumer fills one kafka_stats per table (kafka_ingest_metrics, kafka_ingest.c);
 * kafka_metrics_render writes every metric's HELP and TYPE lines, then one sample a table
 * (two for dead letters: sink "kafka" and sink "file"), in the order of the array.
 * Pure functions: any thread, nothing allocated but through out.
 */
#ifndef STRATA_KAFKA_METRICS_H
#define STRATA_KAFKA_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/buf.h"
#include "engine/schema.h"

/* One consumer's figures at one moment. */
typedef struct kafka_stats {
    char table[STRATA_NAME_MAX];
    char topic[STRATA_NAME_MAX * 2];
    uint64_t messages;      /* consumed */
    uint64_t rows;          /* landed */
    uint64_t dead_kafka;    /* dead letters delivered to <topic>.dlq */
    uint64_t dead_file;     /* dead letters written to deadletters.ndjson */
    uint64_t lost;          /* messages deleted by retention before they were read */
    uint64_t lost_events;   /* times a partition's next offset was gone */
    uint64_t replayed;      /* rows read again that the table held already (dropped) */
    uint64_t pauses;        /* backpressure pauses */
    uint64_t errors;        /* the consumer's and its dead-letter sink's */
    uint64_t resets;        /* partitions read again as new data after an offset reset */
    uint64_t unknown_events; /* landed events with fields naming no column */
    int64_t lag;            /* messages not yet landed; -1 not known yet */
    int64_t assigned;       /* partitions assigned and not stopped */
    int64_t stopped;        /* partitions assigned and stopped by an offset reset */
} kafka_stats;

/* Appends the strata_kafka_* metrics of the n consumers in s to out (the metric families
 * are written, HELP and TYPE, even when n is 0). Out of memory: out->oom is set. */
void kafka_metrics_render(const kafka_stats *s, size_t n, bytebuf *out);

#endif
