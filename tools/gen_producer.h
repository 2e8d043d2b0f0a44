/*
 * gen_producer.h — the load producer behind `strata gen`: a librdkafka producer tuned for
 * throughput that counts every delivery report, and gen_stream_run, the loop that takes
 * events from an order generator and sends them, paced or as fast as possible, to Kafka or
 * as NDJSON to a stream. `strata gen`, `strata demo` and the tests share both.
 *
 * Producer settings (each can be overridden by opts.props, applied last):
 *   bootstrap.servers = opts.brokers     compression.type = opts.compression (zstd)
 *   linger.ms = opts.linger_ms (5)       batch.num.messages = 100000, batch.size = 1000000
 *   enable.idempotence = true (so acks=all, no duplicates or reordering on retries; the
 *   mock broker supports it)             message.timeout.ms = 60000
 *   queue.buffering.max.messages = 1000000, queue.buffering.max.kbytes = 1048576
 * Messages are copied at send, so the caller may reuse its buffers at once.
 * Why zstd: the embedded broker (broker.h) keeps 5 MiB of batches per partition, and zstd
 * batches of order events are about a third smaller than lz4's: about 118,000 events fit
 * in a partition instead of 77,000 (measured), for about 10 % less producer throughput
 * (2M events into 128 partitions of the embedded broker: about 550,000 events/s with zstd,
 * 610,000 with lz4, on this 2-core machine); consumers decode either quickly.
 *
 * Keys: an event's message key is its event_id in decimal, so every version of one event
 * goes to the same partition (librdkafka's default partitioner, CRC32 of the key) and stays
 * in order there. A malformed event has no event_id; its key is "bad-<slot>", its slot
 * index, so where it lands is deterministic too.
 *
 * Delivery: each message is reported delivered or failed by the broker (acks=all) or by
 * message.timeout.ms. Reports are served by gen_producer_poll / _send / _flush in the
 * caller's thread. Nothing is lost silently: gen_producer_flush returns an error when any
 * message failed, with the first failure's reason.
 *
 * Threads: a gen_producer and a gen_stream_run call belong to one thread at a time
 * (librdkafka's own threads are internal); gen_stream_opts.stop may be set from any
 * thread or a signal handler.
 */
#ifndef STRATA_GEN_PRODUCER_H
#define STRATA_GEN_PRODUCER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/error.h"
#include "tools/order_gen.h"
#include "tools/progress.h"

typedef struct gen_producer_opts {
    const char *brokers;       /* bootstrap servers, "host:port[,host:port...]" */
    const char *topic;         /* topic every message goes to */
    const char *compression;   /* none, gzip, snappy, lz4 or zstd; NULL means zstd */
    int linger_ms;             /* < 0 means 5 */
    const char *const *props;  /* extra librdkafka properties, "name=value", applied last */
    size_t nprops;
    bool quiet;                /* drop librdkafka's log lines (else they go to stderr) */
} gen_producer_opts;

typedef struct gen_producer gen_producer;

typedef struct gen_producer_counts {
    uint64_t sent;      /* messages accepted by gen_producer_send */
    uint64_t delivered; /* acknowledged by the broker */
    uint64_t failed;    /* reported failed (never retried further) */
} gen_producer_counts;

/* Makes the producer (it connects in the background). Returns NULL with err filled on a bad
 * property or value (STRATA_EINVAL, the message names it) or when librdkafka cannot start
 * (STRATA_EIO). The caller closes it with gen_producer_close. */
gen_producer *gen_producer_open(const gen_producer_opts *o, strata_err *err);

/* Queues one message (key may be NULL for none; value NULL with len 0 is an empty
 * message). When librdkafka's local queue is full it serves delivery reports and waits
 * for room. Returns 0, or STRATA_EIO with err filled when librdkafka refuses the message
 * (too large, unknown partition, a fatal producer error). */
int gen_producer_send(gen_producer *p, const void *key, size_t keylen, const void *value,
                      size_t len, strata_err *err);

/* Serves pending delivery reports without blocking. */
void gen_producer_poll(gen_producer *p);

/* Waits until every queued message is delivered or failed (failures come at the latest
 * after message.timeout.ms). Returns 0 when all were delivered; STRATA_EIO with err
 * filled (how many failed, and the first reason) when any failed. */
int gen_producer_flush(gen_producer *p, strata_err *err);

/* Current counts; *out is a snapshot. */
void gen_producer_get_counts(const gen_producer *p, gen_producer_counts *out /* OUT */);

/* Destroys the producer without waiting: call gen_producer_flush first, or messages not yet
 * delivered are dropped. NULL is a no-op. */
void gen_producer_close(gen_producer *p);

/* ---- the send loop ---------------------------------------------------------------------- */

typedef struct gen_stream_opts {
    gen_producer *producer;  /* send to Kafka when non-NULL ... */
    FILE *out;               /* ... else write NDJSON (one event per line) here */
    double rate;             /* events (slots) per second; 0 = as fast as possible */
    const atomic_int *stop;  /* when non-NULL and non-zero, the loop ends after the current
                                batch (a signal handler or another thread sets it) */
    progress *progress;      /* updated with the slots sent so far; may be NULL */
} gen_stream_opts;

/* Sends every remaining slot of g (bad events included, as the malformed text), pacing
 * slot k of this call at k / rate seconds after the call began: it sleeps between batches
 * (about 1 ms apart at high rates, exactly until the next event at low ones), never per
 * event, and catches up in bursts if it fell behind. Stops early when *o->stop is set
 * (the slot already drawn from the generator is still sent, so the generator's totals
 * always describe exactly the slots sent).
 * Returns 0 when it ran to the end or was stopped; STRATA_EIO (err filled) when a write
 * or a send failed or the producer reported a failed delivery (it stops then). It does
 * not flush the producer: the caller calls gen_producer_flush after it. *slots_out (may
 * be NULL) is set to the slots this call consumed, also on error. */
int gen_stream_run(order_gen *g, const gen_stream_opts *o, uint64_t *slots_out /* OUT */,
                   strata_err *err);

/* Writes the message key of an event into buf (at least 32 bytes): the event_id in
 * decimal for a good event, "bad-<slot>" for a malformed one. Returns its length. */
size_t gen_event_key(const order_gen_msg *m, uint64_t slot, char *buf, size_t cap);

#endif
