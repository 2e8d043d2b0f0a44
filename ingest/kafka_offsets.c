/*
 * kafka_offsets.c — a consumer's partitions and offsets: assignment, commits with offset
 * epochs, offset resets, re-assignment, pause/resume. Contract in kafka_offsets.h; the
 * consumer's state and its locks in kafka_consumer.h.
 *
 * Where a partition starts: the later of the table's resume point (table_source_resume,
 * from the manifests, under the partition's source name for its epoch) and the group's
 * committed offset for that epoch. Both are kept per partition in c->parts under c->mu;
 * librdkafka calls (commit, assign, pause, watermarks) are made with c->mu released.
 */
#include "ingest/kafka_offsets.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/manifest.h"
#include "engine/table.h"

/* Commit metadata: the offset epoch the offset belongs to, or that the table is gone. */
#define COMMIT_META_PREFIX "strata:e"
#define COMMIT_META_DROPPED "strata:dropped"

/* ---- offsets and epochs ------------------------------------------------------------- *
 * A Kafka partition's offsets can go backwards: the topic was deleted and made again, or
 * an embedded broker restarted empty. The table's checkpoints then lie ahead of every new
 * offset, and the new events would be taken for replays. Such a partition is stopped
 * (kafka.offset_reset "stop", the default) or read again from its start as new data
 * ("accept"): its offset epoch goes up by one, and from then on its rows are appended
 * under the source name "kafka:<topic>#e<epoch>", whose checkpoints start empty. The
 * epoch is noted as checkpoint "ep/kafka:<topic>" and becomes durable with the first
 * segment holding rows read under it (a crash before that finds the reset again).
 * Offsets committed to the group carry the epoch as metadata ("strata:e<N>"), and a table
 * being dropped commits "strata:dropped", so a table made later under the same group
 * does not resume where the dropped one stood. */

static void source_name(const kafka_consumer *c, uint32_t epoch, char *out, size_t cap)
{
    if (epoch == 0)
        snprintf(out, cap, "%s", c->source);
    else
        snprintf(out, cap, "%s#e%u", c->source, epoch);
}

static uint32_t durable_epoch(kafka_consumer *c, int32_t kp)
{
    char key[MANIFEST_SOURCE_MAX];
    snprintf(key, sizeof key, "ep/%s", c->source);
    int64_t e = table_checkpoint_max(c->t, key, kp);
    return e > 0 && e < UINT32_MAX ? (uint32_t)e : 0;
}

/* Sets an entry's commit metadata to text (the list frees it). */
static void set_commit_meta(rd_kafka_topic_partition_t *e, const char *text)
{
    size_t n = strlen(text);
    e->metadata = malloc(n);
    if (e->metadata) {
        memcpy(e->metadata, text, n);
        e->metadata_size = n;
    }
}

/* The epoch a committed offset's metadata names ("strata:e<N>"); false when it names
 * none (no metadata, a dropped table's, something else). */
static bool committed_epoch(const rd_kafka_topic_partition_t *e, uint32_t *epoch)
{
    char meta[32];
    size_t n = e->metadata_size < sizeof meta - 1 ? e->metadata_size : sizeof meta - 1;
    if (!e->metadata || n <= strlen(COMMIT_META_PREFIX))
        return false;
    memcpy(meta, e->metadata, n);
    meta[n] = 0;
    char *end;
    unsigned long v = strtoul(meta + strlen(COMMIT_META_PREFIX), &end, 10);
    if (strncmp(meta, COMMIT_META_PREFIX, strlen(COMMIT_META_PREFIX)) != 0 || *end || v > UINT32_MAX)
        return false;
    *epoch = (uint32_t)v;
    return true;
}

/* The committed offset of a partition if it belongs to epoch, else -1. */
static int64_t committed_for_epoch(const rd_kafka_topic_partition_t *e, uint32_t epoch)
{
    if (e->offset < 0)
        return -1;
    char want[32];
    snprintf(want, sizeof want, COMMIT_META_PREFIX "%u", epoch);
    if (!e->metadata || e->metadata_size == 0)
        return epoch == 0 ? e->offset : -1; /* written before strata added metadata */
    if (e->metadata_size == strlen(want) && memcmp(e->metadata, want, e->metadata_size) == 0)
        return e->offset;
    return -1; /* another epoch, or a dropped table's */
}

/* Commits, for every assigned partition, the offset up to which its rows are durable
 * (for lag monitoring and for the next owner after a rebalance). final: the table was
 * just flushed, so the positions themselves are durable. With c->dropping, marks the
 * partitions' offsets as a dropped table's instead. */
void kafka_offsets_commit(kafka_consumer *c, bool final)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    pthread_mutex_lock(&c->mu);
    for (int32_t kp = 0; kp < c->nparts; kp++) {
        kafka_part *ps = &c->parts[kp];
        if (!ps->assigned)
            continue;
        int64_t off;
        if (c->dropping)
            off = ps->pos >= 0 ? ps->pos : ps->committed;
        else
            off = final && !ps->stopped ? ps->pos : table_source_resume(c->t, ps->source, kp);
        if (off < 0)
            continue;
        rd_kafka_topic_partition_t *e = rd_kafka_topic_partition_list_add(l, c->topic, kp);
        e->offset = off;
        char meta[32];
        snprintf(meta, sizeof meta, COMMIT_META_PREFIX "%u", ps->epoch);
        set_commit_meta(e, c->dropping ? COMMIT_META_DROPPED : meta);
    }
    pthread_mutex_unlock(&c->mu);
    if (l->cnt > 0) {
        /* Synchronous when it is the last word: before a rebalance or a drop lets go. */
        rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, l, final || c->dropping ? 0 : 1);
        if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
            kafka_consumer_log(c, "table %s: committing offsets to Kafka: %s (lag figures may lag)", c->name,
                               rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* The partitions the group gave us, those stopped by an offset reset or not (mu held by
 * the caller). */
static rd_kafka_topic_partition_list_t *parts_list(kafka_consumer *c, bool stopped)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    for (int32_t kp = 0; kp < c->nparts; kp++)
        if (c->parts[kp].assigned && c->parts[kp].stopped == stopped)
            rd_kafka_topic_partition_list_add(l, c->topic, kp);
    return l;
}

/* Assigns every partition the group gave us again, each at the position the table stands
 * at (what was fetched beyond it is fetched again); stopped partitions stay in the
 * assignment, paused. (Taking partitions out of the assignment and back in quick
 * succession trips an assertion in librdkafka 2.0.2, rd_kafka_assignment_partition_stopped;
 * pausing keeps the set the same.) */
void kafka_offsets_reassign(kafka_consumer *c)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    pthread_mutex_lock(&c->mu);
    for (int32_t kp = 0; kp < c->nparts; kp++) {
        kafka_part *ps = &c->parts[kp];
        if (!ps->assigned)
            continue;
        rd_kafka_topic_partition_list_add(l, c->topic, kp)->offset =
            ps->pos >= 0 ? ps->pos
            : ps->epoch > 0 || !c->start_latest ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
    }
    rd_kafka_topic_partition_list_t *stopped = parts_list(c, true), *running = parts_list(c, false);
    pthread_mutex_unlock(&c->mu);
    rd_kafka_resp_err_t e = rd_kafka_assign(c->rk, l);
    if (e)
        kafka_consumer_log(c, "table %s: re-assigning partitions: %s", c->name, rd_kafka_err2str(e));
    if (stopped->cnt)
        rd_kafka_pause_partitions(c->rk, stopped);
    if (running->cnt)
        rd_kafka_resume_partitions(c->rk, running);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_topic_partition_list_destroy(stopped);
    rd_kafka_topic_partition_list_destroy(running);
}

/* The group assigned or revoked partitions (see kafka_offsets.h). */
void kafka_offsets_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t why,
                                rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    kafka_consumer *c = opaque;
    strata_err err = {0};
    if (why == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* The group's committed offsets: where another node left a partition. */
        rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
        rd_kafka_resp_err_t ce = rd_kafka_committed(rk, committed, 10000);
        if (ce)
            kafka_consumer_log(c, "table %s: reading the group's committed offsets: %s", c->name,
                               rd_kafka_err2str(ce));
        pthread_mutex_lock(&c->mu);
        for (int i = 0; i < parts->cnt; i++) {
            rd_kafka_topic_partition_t *p = &parts->elems[i];
            kafka_part *ps = kafka_consumer_part(c, p->partition);
            uint32_t epoch = durable_epoch(c, p->partition);
            if (ps && ps->epoch > epoch)
                epoch = ps->epoch; /* accepted in this run, not yet durable */
            char source[MANIFEST_SOURCE_MAX];
            source_name(c, epoch, source, sizeof source);
            int64_t resume = table_source_resume(c->t, source, p->partition);
            int64_t com = ce ? -1 : committed_for_epoch(&committed->elems[i], epoch);
            uint32_t theirs;
            if (!ce && epoch == 0 && resume < 0 && com < 0 && committed->elems[i].offset >= 0 &&
                committed_epoch(&committed->elems[i], &theirs) && theirs > 0) {
                /* This table never landed the partition; another node of the group left
                 * it in a later offset epoch (it accepted a reset): take it over there. */
                char key[MANIFEST_SOURCE_MAX];
                snprintf(key, sizeof key, "ep/%s", c->source);
                if (table_note_checkpoint(c->t, key, p->partition, theirs) == 0) {
                    epoch = theirs;
                    source_name(c, epoch, source, sizeof source);
                    com = committed->elems[i].offset;
                }
            }
            int64_t start = resume > com ? resume : com;
            p->offset = start >= 0 ? start
                        : epoch > 0 || !c->start_latest ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
            if (ps) {
                ps->assigned = true;
                ps->stopped = false; /* found again if its offsets are still behind */
                ps->pos = start;
                ps->committed = ce ? -1 : committed->elems[i].offset;
                ps->epoch = epoch;
                snprintf(ps->source, sizeof ps->source, "%s", source);
            }
        }
        c->assigned_once = true;
        pthread_mutex_unlock(&c->mu);
        rd_kafka_topic_partition_list_destroy(committed);
        char list[256] = "";
        size_t used = 0;
        for (int i = 0; i < parts->cnt && used < sizeof list - 32; i++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%d@%" PRId64, i ? " " : "",
                                     (int)parts->elems[i].partition, parts->elems[i].offset);
        kafka_consumer_log(c, "table %s: assigned %d partition(s) of %s (partition@offset, -2 earliest, -1 latest): %s",
                           c->name, parts->cnt, c->topic, list);
        rd_kafka_assign(rk, parts);
        rd_kafka_resume_partitions(rk, parts); /* a pause from before (a stop) does not carry over */
    } else if (why == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        /* Land everything read so far before the partitions may go to another node (not
         * when the table is being dropped: then its offsets are marked as a dropped
         * table's, so a new table in the same group starts afresh). */
        if (c->dropping)
            kafka_offsets_commit(c, false);
        else if (table_flush(c->t, true, &err) != 0)
            kafka_consumer_log(c, "table %s: flush before giving up partitions failed: %s", c->name, err.msg);
        else
            kafka_offsets_commit(c, true);
        pthread_mutex_lock(&c->mu);
        for (int i = 0; i < parts->cnt; i++) {
            kafka_part *ps = kafka_consumer_part(c, parts->elems[i].partition);
            if (ps) {
                ps->assigned = false;
                ps->stopped = false;
                table_source_forget(c->t, ps->source, parts->elems[i].partition);
            }
        }
        pthread_mutex_unlock(&c->mu);
        kafka_consumer_log(c, "table %s: %d partition(s) of %s revoked", c->name, parts->cnt, c->topic);
        rd_kafka_assign(rk, NULL);
    } else {
        kafka_consumer_log(c, "table %s: rebalance error: %s", c->name, rd_kafka_err2str(why));
        rd_kafka_assign(rk, NULL);
    }
}

/* Partition kp's offsets went backwards (the broker's partition ends at hi, below where
 * the table stands): read it as new data under the next epoch. Consumer thread. */
static void accept_reset(kafka_consumer *c, int32_t kp, int64_t lo, int64_t hi)
{
    pthread_mutex_lock(&c->mu);
    kafka_part *ps = kafka_consumer_part(c, kp);
    if (!ps) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    int64_t was = ps->stopped ? ps->stop_at : ps->pos;
    uint32_t epoch = ps->epoch + 1, d = durable_epoch(c, kp);
    if (epoch <= d)
        epoch = d + 1;
    char key[MANIFEST_SOURCE_MAX], old[MANIFEST_SOURCE_MAX];
    snprintf(key, sizeof key, "ep/%s", c->source);
    snprintf(old, sizeof old, "%s", ps->source);
    pthread_mutex_unlock(&c->mu);
    if (table_note_checkpoint(c->t, key, kp, epoch) != 0) {
        kafka_consumer_log(c, "table %s: partition %d: out of memory accepting an offset reset; retrying", c->name, kp);
        return;
    }
    table_source_forget(c->t, old, kp);
    pthread_mutex_lock(&c->mu);
    ps = kafka_consumer_part(c, kp);
    ps->epoch = epoch;
    source_name(c, epoch, ps->source, sizeof ps->source);
    ps->pos = lo;
    ps->stopped = false;
    pthread_mutex_unlock(&c->mu);
    atomic_fetch_add(&c->resets, 1);
    kafka_consumer_log(c, "table %s: partition %d of %s: offsets went backwards (the table had read up to %" PRId64
                    ", the broker's partition now ends at %" PRId64 "): reading it from offset %" PRId64
                    " as new data (offset epoch %u)",
              c->name, kp, c->topic, was, hi, lo, epoch);
}

/* The broker answered "offset out of range" for partition kp: either it deleted messages
 * strata had not read (retention: report the gap, go on from the earliest offset it has),
 * or the partition's offsets went backwards (see above). */
void kafka_offsets_out_of_range(kafka_consumer *c, int32_t kp)
{
    int64_t lo = -1, hi = -1;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(c->rk, c->topic, kp, &lo, &hi, 10000);
    pthread_mutex_lock(&c->mu);
    kafka_part *ps = kafka_consumer_part(c, kp);
    int64_t pos = ps ? ps->pos : -1;
    pthread_mutex_unlock(&c->mu);
    if (e) {
        kafka_consumer_log(c, "table %s: partition %d: offset out of range and watermarks unknown (%s); retrying",
                           c->name, kp, rd_kafka_err2str(e));
        kafka_offsets_reassign(c);
        return;
    }
    if (pos >= 0 && pos > hi) {
        if (c->reset_accept) {
            accept_reset(c, kp, lo, hi);
        } else {
            pthread_mutex_lock(&c->mu);
            if ((ps = kafka_consumer_part(c, kp)) != NULL) {
                ps->stopped = true;
                ps->stop_at = pos;
                ps->stop_hi = hi;
            }
            pthread_mutex_unlock(&c->mu);
            atomic_fetch_add(&c->errors, 1);
            kafka_consumer_log(c, "table %s: partition %d of %s STOPPED: its offsets went backwards (the table has "
                            "read up to %" PRId64 ", the broker's partition now ends at %" PRId64
                            "): the topic was re-created or the broker lost its data. kafka.offset_reset is "
                            "\"stop\"; POST /tables/%s/kafka/accept-reset reads it again as new data",
                      c->name, kp, c->topic, pos, hi, c->name);
            /* It stays assigned, paused: the reset error already stopped its fetcher. */
            rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(one, c->topic, kp);
            rd_kafka_pause_partitions(c->rk, one);
            rd_kafka_topic_partition_list_destroy(one);
            return;
        }
        kafka_offsets_reassign(c);
        return;
    }
    int64_t gap = pos >= 0 && pos < lo ? lo - pos : -1;
    atomic_fetch_add(&c->lost_events, 1);
    if (gap > 0)
        atomic_fetch_add(&c->lost, (uint64_t)gap);
    char what[160];
    if (gap > 0)
        snprintf(what, sizeof what, "%" PRId64 " messages (offsets %" PRId64 "..%" PRId64 ")", gap,
                 pos, lo - 1);
    else
        snprintf(what, sizeof what, "an unknown number of messages (position %" PRId64
                                    ", broker has %" PRId64 "..%" PRId64 ")",
                 pos, lo, hi);
    kafka_consumer_log(c, "table %s: LOST DATA: partition %d of %s: %s were deleted by the broker before "
                    "strata read them; continuing from offset %" PRId64,
              c->name, kp, c->topic, what, lo);
    kafka_consumer_degrade(c, "table %s lost %s of %s partition %d to broker retention", c->name, what,
                           c->topic, kp);
    pthread_mutex_lock(&c->mu);
    if ((ps = kafka_consumer_part(c, kp)) != NULL)
        ps->pos = lo;
    pthread_mutex_unlock(&c->mu);
    /* A partition stopped by the reset error only fetches again once assigned anew. */
    kafka_offsets_reassign(c);
}

/* POST .../kafka/accept-reset, run by the consumer thread: every stopped partition is
 * read again as new data. */
void kafka_offsets_accept_stopped(kafka_consumer *c)
{
    for (int32_t kp = 0;; kp++) {
        pthread_mutex_lock(&c->mu);
        bool more = kp < c->nparts, stopped = more && c->parts[kp].stopped && c->parts[kp].assigned;
        pthread_mutex_unlock(&c->mu);
        if (!more)
            break;
        if (!stopped)
            continue;
        int64_t lo = -1, hi = -1;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(c->rk, c->topic, kp, &lo, &hi, 10000);
        if (e) {
            kafka_consumer_log(c, "table %s: partition %d: accepting its reset: watermarks unknown (%s)", c->name,
                               kp, rd_kafka_err2str(e));
            continue;
        }
        accept_reset(c, kp, lo, hi);
    }
    kafka_offsets_reassign(c);
}

/* Pauses every assigned partition, or resumes those not stopped by an offset reset. */
void kafka_offsets_pause_all(kafka_consumer *c, bool pause)
{
    pthread_mutex_lock(&c->mu);
    rd_kafka_topic_partition_list_t *l = parts_list(c, false);
    if (pause) {
        rd_kafka_topic_partition_list_t *st = parts_list(c, true);
        for (int i = 0; i < st->cnt; i++)
            rd_kafka_topic_partition_list_add(l, c->topic, st->elems[i].partition);
        rd_kafka_topic_partition_list_destroy(st);
    }
    pthread_mutex_unlock(&c->mu);
    if (l->cnt)
        (pause ? rd_kafka_pause_partitions : rd_kafka_resume_partitions)(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
}

