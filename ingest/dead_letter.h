/*
 * dead_letter.h — where the events a Kafka consumer cannot decode go, and how they are
 * made durable before the consumer's offsets may pass them.
 *
 * A sink belongs to one consumer (one table, one source topic). dead_letter_put sends the
 * event to the topic `<topic>.dlq` through the sink's own producer (made at the first
 * dead letter): the original key and bytes as key and value, the rest in headers
 * strata.error / strata.topic / strata.partition / strata.offset. When the producer
 * cannot be made, refuses the message, or the broker later refuses it (delivery report),
 * the dead letter goes to <dir>/deadletters.ndjson (opened, in append mode, at the first
 * need) as one JSON object a line:
 *
 *   {"error": reason, "topic": topic, "partition": N, "offset": N, "event": "..."}
 *
 * with "event" the bytes as a string when they are valid UTF-8, else "event_base64" (RFC
 * 4648 base64, padded). A missing field in a refused message's headers is written as
 * error "?", partition -1, offset -1. When the file cannot be opened the dead letter is
 * only logged (and counted as an error). dead_letter_sync makes every dead letter put so
 * far durable (producer queue flushed, file fsynced).
 *
 * Threads: put and sync are called by one thread at a time (the consumer's, or after it
 * ended, the one stopping it); the producer's delivery reports run inside its flush, so
 * on that same thread. dead_letter_counts may be called from any thread (atomics).
 */
#ifndef STRATA_DEAD_LETTER_H
#define STRATA_DEAD_LETTER_H

#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdint.h>

#include "engine/error.h"

typedef struct dead_letter_sink dead_letter_sink;

typedef struct dead_letter_opts {
    const char *table;   /* names the table in log lines */
    const char *topic;   /* the source topic; dead letters go to "<topic>.dlq" */
    const char *brokers; /* bootstrap.servers of the producer; NULL: the file only */
    const char *dir;     /* directory of deadletters.ndjson (the table's) */
    /* Logs one line (no newline) made of fmt and ap; may be NULL. */
    void (*vlog)(void *log_ctx, const char *fmt, va_list ap);
    void *log_ctx;
} dead_letter_opts;

/* Makes a sink; nothing is opened or connected until the first dead letter. The strings
 * of o are copied. *out: dead_letter_sink_free. STRATA_ENOMEM (out untouched) on failure. */
int dead_letter_sink_create(const dead_letter_opts *o, dead_letter_sink **out, strata_err *err);
/* Waits up to 10 s for the producer's queue (refused messages then go to the file), closes
 * the file, frees the sink. Call dead_letter_sync first for durability. NULL: nothing. */
void dead_letter_sink_free(dead_letter_sink *s);

/* Writes message m (as consumed: partition, offset, key, payload; the payload may be
 * NULL) as a dead letter for reason. Never fails: what cannot reach the topic goes to the
 * file, what cannot reach the file is logged. Nothing is durable before dead_letter_sync. */
void dead_letter_put(dead_letter_sink *s, const char *reason, const rd_kafka_message_t *m);
/* Makes the dead letters put since the last successful sync durable: the producer's queue
 * delivered (or handed to the file) within 10 s and the file flushed and fsynced. 0 (also
 * when there was nothing to do), or -1, logged and counted as an error, when that cannot
 * be known: they then count as pending still, and the caller must read the messages again
 * (their dead letters may be written twice, never lost). The fault site
 * FAULT_DEAD_LETTER_SYNC makes it fail. */
int dead_letter_sync(dead_letter_sink *s);

typedef struct dead_letter_counts {
    uint64_t kafka;  /* delivered to the .dlq topic */
    uint64_t file;   /* written to deadletters.ndjson */
    uint64_t errors; /* the file could not be opened, a sync failed */
} dead_letter_counts;
/* The sink's counters so far. */
dead_letter_counts dead_letter_sink_counts(dead_letter_sink *s);

#endif
