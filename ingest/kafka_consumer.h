/*
 * kafka_consumer.h — the state of one table's Kafka consumer, shared by the files that do
 * its jobs: kafka_ingest.c (start, stop, the poll loop, the registry), kafka_offsets.c
 * (assignment, offsets, epochs, pause/resume), and the helpers both use (kafka_consumer.c:
 * its partition table, its degraded state, its log). Internal to ingest/; the public face is
 * kafka_ingest.h.
 *
 * Threads and locks of a consumer c:
 *  - set before its thread starts, read-only after: k, log, t, decoder, dead, name, topic,
 *    group, source, brokers, start_latest, reset_accept, rk, q.
 *  - c->mu guards the partition table (parts, nparts, and in each partition assigned,
 *    stopped, stop_at, stop_hi, epoch, source, committed, pos), degraded, lag and
 *    assigned_once. Only the consumer thread (its loop, and librdkafka's rebalance and
 *    error callbacks, which run inside its polls) writes them; it may read them without
 *    mu, every other thread reads them under mu.
 *  - the consumer thread alone: each partition's batch, batch_ready, offs, next and
 *    unknown_events; the dead-letter sink (after the thread ended: the stopping thread).
 *  - dropping (atomic): written by the thread stopping the consumer before it sets stop;
 *    the consumer thread may read it in a periodic commit that runs before it sees stop.
 *  - atomics, any thread: stop, dropping, accept_req, unreachable and the counters.
 *  - next: the registry's lock (kafka_ingest.c).
 * Lock order: the registry's attach_lock, then its mu, then c->mu, then the table's own
 * locks (table_source_resume and table_checkpoint_max run under c->mu); c->mu is never
 * held across a call into librdkafka that can wait on the broker.
 */
#ifndef STRATA_KAFKA_CONSUMER_H
#define STRATA_KAFKA_CONSUMER_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/manifest.h"
#include "engine/row_batch.h"
#include "engine/table.h"
#include "ingest/dead_letter.h"
#include "ingest/event_json.h"
#include "ingest/kafka_ingest.h"

#define KAFKA_BATCH_MSGS 8192 /* messages taken by one poll, at most */

/* One Kafka partition of the consumer's topic (indexed by partition number). */
typedef struct kafka_part {
    bool assigned;     /* the group gave us this partition */
    bool stopped;      /* its offsets went backwards and kafka.offset_reset is "stop" */
    int64_t stop_at, stop_hi; /* where the table stood and where the broker ends, then */
    uint32_t epoch;    /* offset epoch: +1 each time a reset is accepted */
    char source[MANIFEST_SOURCE_MAX]; /* the table's source name for this epoch */
    int64_t committed; /* the group's committed offset at assignment (ours); -1 none */
    int64_t pos;       /* next offset to land; -1 unknown */
    row_batch batch;   /* this poll's rows */
    bool batch_ready;
    int64_t *offs;     /* offsets of batch rows */
    int64_t next;      /* position after this poll's messages; -1 none */
    uint64_t unknown_events; /* batch rows whose events had fields naming no column */
} kafka_part;

typedef struct kafka_consumer {
    kafka_ingest *k;
    void (*log)(const char *msg); /* the registry's log callback (may be NULL) */
    strata_table *t;        /* a catalog reference, put back when the consumer is freed */
    event_decoder *decoder; /* for the table's schema */
    dead_letter_sink *dead;
    char name[STRATA_NAME_MAX];
    char topic[STRATA_NAME_MAX * 2];
    char group[STRATA_NAME_MAX * 2];
    char source[STRATA_NAME_MAX * 2 + 8]; /* "kafka:<topic>" */
    char brokers[256];
    bool start_latest;
    bool reset_accept; /* kafka.offset_reset "accept" */
    _Atomic bool dropping; /* stopping because the table is being dropped */
    _Atomic bool accept_req; /* POST .../kafka/accept-reset asked; the loop clears it */
    bool assigned_once;      /* the group has assigned us partitions at least once (mu) */
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    pthread_t th;
    _Atomic bool stop;
    pthread_mutex_t mu; /* parts (sizes and assigned/pos), degraded, lag */
    kafka_part *parts;
    int32_t nparts;
    char degraded[512];      /* lasting: data lost to retention, a fatal consumer error */
    _Atomic bool unreachable; /* every broker down; cleared once one answers again */
    int64_t lag; /* -1: not known yet */
    _Atomic uint64_t messages, rows, lost, lost_events, replayed, pauses, errors, resets,
        unknown_events; /* errors: the consumer's; the sink counts its own */
    struct kafka_consumer *next;
} kafka_consumer;

/* One log line through the registry's log callback (kafka_ingest_opts.log), kept in c->log
 * (kafka_consumer.c); the registry's own lines go through kafka_ingest.c's kafka_log. */
void kafka_consumer_log(kafka_consumer *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The state of Kafka partition kp, growing the table (new partitions: positions -1, the
 * epoch-0 source name); NULL when kp is out of range or out of memory. Caller holds c->mu. */
kafka_part *kafka_consumer_part(kafka_consumer *c, int32_t kp);
/* Sets c->degraded (taking c->mu): a lasting problem /health reports. */
void kafka_consumer_degrade(kafka_consumer *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
