/*
 * kafka_offsets.h — a consumer's partitions and their offsets: the rebalance callback
 * (assignment at the later of the table's resume point and the group's committed offset;
 * on revocation land, commit, let go), commits of the durable offsets with their offset
 * epoch, offset resets (retention loss, offsets gone backwards: stop or accept under a new
 * epoch), re-assignment at the table's positions, and pause/resume.
 *
 * Every function here runs on the consumer's thread (the rebalance callback inside its
 * polls or rd_kafka_consumer_close); the locking is kafka_consumer.h's. None fails to its
 * caller: problems are logged, counted and, when lasting, reported as degraded.
 */
#ifndef STRATA_KAFKA_OFFSETS_H
#define STRATA_KAFKA_OFFSETS_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

#include "ingest/kafka_consumer.h"

/* librdkafka's rebalance callback (opaque: the consumer). On assignment each partition
 * starts at max(table resume point, group committed offset of its epoch), else at the
 * start (or the end with kafka.start "latest" in epoch 0); on revocation the table is
 * flushed and the positions committed before the partitions go (with c->dropping: the
 * offsets are marked as a dropped table's instead). */
void kafka_offsets_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t why,
                                rd_kafka_topic_partition_list_t *parts, void *opaque);
/* Commits, for every assigned partition, the offset up to which its rows are durable, with
 * its epoch as metadata ("strata:e<N>"). final: the table was just flushed, so positions
 * themselves are durable (and the commit is synchronous). With c->dropping, commits
 * "strata:dropped" at the positions reached instead. */
void kafka_offsets_commit(kafka_consumer *c, bool final);
/* Assigns every partition the group gave us again at the position the table stands at
 * (what was fetched beyond it is fetched again); stopped partitions stay assigned, paused. */
void kafka_offsets_reassign(kafka_consumer *c);
/* The broker answered "offset out of range" for partition kp: retention (the gap is
 * logged, counted, reported; consumption continues at the earliest offset) or offsets gone
 * backwards (the partition stops, or with kafka.offset_reset "accept" is read from its
 * start under the next epoch). */
void kafka_offsets_out_of_range(kafka_consumer *c, int32_t kp);
/* Reads every stopped partition again as new data under its next epoch (POST
 * .../kafka/accept-reset, run by the loop). */
void kafka_offsets_accept_stopped(kafka_consumer *c);
/* Pauses every assigned partition, or resumes those not stopped by an offset reset. */
void kafka_offsets_pause_all(kafka_consumer *c, bool pause);

#endif
