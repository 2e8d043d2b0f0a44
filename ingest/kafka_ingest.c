/*
 * kafka_ingest.c — Kafka consumers landing topics in tables exactly once. Contract and
 * design in kafka_ingest.h.
 *
 * Each consumer thread loops: take up to BATCH_MSGS messages (rd_kafka_consume_batch_queue
 * on the consumer queue, which also runs the rebalance callback), decode each into the
 * row batch of its Kafka partition (bad ones to the dead letters), append each partition's
 * batch with its offsets (table_append_sourced), and once a second commit the durable
 * resume points to Kafka and refresh the lag. The rebalance callback seeks every assigned
 * partition to max(table resume point, group committed offset), and on revocation flushes
 * the table and commits before letting the partitions go.
 */
#include "kafka_ingest.h"

#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "event_json.h"
#include "table.h"

#define BATCH_MSGS 8192
#define POLL_MS 5 /* a batch waits at most this long for more messages */

typedef struct part_state {
    bool assigned;
    int64_t pos;       /* next offset to land; -1 unknown */
    row_batch batch;   /* this poll's rows */
    bool batch_ready;
    int64_t *offs;     /* offsets of batch rows */
    int64_t next;      /* position after this poll's messages; -1 none */
} part_state;

typedef struct consumer {
    kafka_ingest *k;
    strata_table *t;
    event_decoder *decoder; /* for the table's schema */
    char name[STRATA_NAME_MAX];
    char topic[STRATA_NAME_MAX * 2];
    char dlq_topic[STRATA_NAME_MAX * 2 + 8];
    char group[STRATA_NAME_MAX * 2];
    char source[STRATA_NAME_MAX * 2 + 8]; /* "kafka:<topic>" */
    bool start_latest;
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    rd_kafka_t *dlq;   /* producer, made at the first dead letter */
    FILE *dlq_file;    /* <table dir>/deadletters.ndjson, opened at the first need */
    bool dlq_pending;  /* dead letters produced since the last flush of the sinks */
    pthread_t th;
    _Atomic bool stop;
    pthread_mutex_t mu; /* parts (sizes and assigned/pos), degraded, lag */
    part_state *parts;
    int32_t nparts;
    char degraded[512];
    int64_t lag;
    _Atomic uint64_t messages, rows, dead_kafka, dead_file, lost, lost_events, replayed,
        pauses, errors;
    struct consumer *next;
} consumer;

struct kafka_ingest {
    strata_catalog *cat;
    kafka_ingest_opts o;
    char brokers[256];
    pthread_mutex_t mu;
    consumer *list;
};

static void logf_(kafka_ingest *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(kafka_ingest *k, const char *fmt, ...)
{
    if (!k->o.log)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    k->o.log(line);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The state of Kafka partition kp, growing the array; NULL when out of memory. Caller
 * holds c->mu. */
static part_state *part_get(consumer *c, int32_t kp)
{
    if (kp < 0 || kp > 1 << 20)
        return NULL;
    if (kp >= c->nparts) {
        int32_t n = kp + 1 > c->nparts * 2 ? kp + 1 : c->nparts * 2;
        part_state *np = realloc(c->parts, sizeof *np * (size_t)n);
        if (!np)
            return NULL;
        memset(np + c->nparts, 0, sizeof *np * (size_t)(n - c->nparts));
        for (int32_t i = c->nparts; i < n; i++)
            np[i].pos = np[i].next = -1;
        c->parts = np;
        c->nparts = n;
    }
    return &c->parts[kp];
}

static void set_degraded(consumer *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_degraded(consumer *c, const char *fmt, ...)
{
    pthread_mutex_lock(&c->mu);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->degraded, sizeof c->degraded, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&c->mu);
}

/* ---- dead letters -------------------------------------------------------------------- */

static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char b = s[i];
        size_t len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n || b == 0xc0 || b == 0xc1 || b > 0xf4)
            return false;
        for (size_t j = 1; j < len; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
        if (len == 3 && ((b == 0xe0 && s[i + 1] < 0xa0) || (b == 0xed && s[i + 1] >= 0xa0)))
            return false;
        if (len == 4 && ((b == 0xf0 && s[i + 1] < 0x90) || (b == 0xf4 && s[i + 1] >= 0x90)))
            return false;
        i += len;
    }
    return true;
}

static char *base64(const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = 0;
    return out;
}

/* Appends one dead letter to the table's NDJSON file. */
static void dead_letter_file(consumer *c, const char *reason, int32_t kp, int64_t off,
                             const void *payload, size_t len)
{
    if (!c->dlq_file) {
        char path[4096];
        snprintf(path, sizeof path, "%s/deadletters.ndjson", table_dir(c->t));
        c->dlq_file = fopen(path, "a");
        if (!c->dlq_file) {
            atomic_fetch_add(&c->errors, 1);
            logf_(c->k, "table %s: cannot open %s: %s; a dead letter (partition %d offset %" PRId64
                        ") is only logged: %s",
                  c->name, path, strerror(errno), kp, off, reason);
            return;
        }
    }
    json_t *j = json_pack("{s:s, s:s, s:i, s:I}", "error", reason, "topic", c->topic, "partition",
                          (int)kp, "offset", (json_int_t)off);
    if (!j)
        return;
    const unsigned char *p = payload ? payload : (const unsigned char *)"";
    if (utf8_valid(p, len)) {
        json_object_set_new(j, "event", json_stringn((const char *)p, len));
    } else {
        char *b = base64(p, len);
        json_object_set_new(j, "event_base64", json_string(b ? b : ""));
        free(b);
    }
    char *line = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (line) {
        fprintf(c->dlq_file, "%s\n", line);
        free(line);
    }
    atomic_fetch_add(&c->dead_file, 1);
    c->dlq_pending = true;
}

static void on_dlq_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    consumer *c = opaque;
    if (!m->err) {
        atomic_fetch_add(&c->dead_kafka, 1);
        return;
    }
    /* The broker refused it: the file keeps it, with what the headers said. */
    const char *reason = "?";
    char rbuf_out[512];
    int32_t kp = -1;
    int64_t off = -1;
    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const void *v;
        size_t n;
        char rbuf[512];
        if (rd_kafka_header_get_last(h, "strata.error", &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(rbuf, sizeof rbuf, "%.*s", (int)n, (const char *)v);
            snprintf(rbuf_out, sizeof rbuf_out, "%s", rbuf);
            reason = rbuf_out;
        }
        char num[32];
        if (rd_kafka_header_get_last(h, "strata.partition", &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(num, sizeof num, "%.*s", (int)n, (const char *)v);
            kp = (int32_t)atoi(num);
        }
        if (rd_kafka_header_get_last(h, "strata.offset", &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(num, sizeof num, "%.*s", (int)n, (const char *)v);
            off = strtoll(num, NULL, 10);
        }
    }
    static _Atomic int warned;
    if (!atomic_exchange(&warned, 1))
        logf_(c->k, "table %s: dead-letter topic %s refused a message (%s); dead letters go to "
                    "deadletters.ndjson in the table's directory",
              c->name, c->dlq_topic, rd_kafka_err2str(m->err));
    dead_letter_file(c, reason, kp, off, m->payload, m->len);
}

static void dead_letter(consumer *c, const char *reason, const rd_kafka_message_t *m)
{
    if (!c->dlq) {
        char errstr[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        const char *brokers = c->k->brokers[0] ? c->k->brokers : table_schema(c->t)->kafka.brokers;
        if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof errstr) ||
            rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof errstr) ||
            rd_kafka_conf_set(conf, "message.timeout.ms", "10000", errstr, sizeof errstr)) {
            rd_kafka_conf_destroy(conf);
            dead_letter_file(c, reason, m->partition, m->offset, m->payload, m->len);
            return;
        }
        rd_kafka_conf_set_opaque(conf, c);
        rd_kafka_conf_set_dr_msg_cb(conf, on_dlq_delivery);
        c->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
        if (!c->dlq) {
            logf_(c->k, "table %s: cannot make the dead-letter producer: %s", c->name, errstr);
            dead_letter_file(c, reason, m->partition, m->offset, m->payload, m->len);
            return;
        }
    }
    char kp[16], off[24];
    snprintf(kp, sizeof kp, "%d", (int)m->partition);
    snprintf(off, sizeof off, "%" PRId64, m->offset);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        c->dlq, RD_KAFKA_V_TOPIC(c->dlq_topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_KEY(m->key, m->key_len),
        RD_KAFKA_V_HEADER("strata.error", reason, (ssize_t)strlen(reason)),
        RD_KAFKA_V_HEADER("strata.topic", c->topic, (ssize_t)strlen(c->topic)),
        RD_KAFKA_V_HEADER("strata.partition", kp, (ssize_t)strlen(kp)),
        RD_KAFKA_V_HEADER("strata.offset", off, (ssize_t)strlen(off)), RD_KAFKA_V_OPAQUE(c),
        RD_KAFKA_V_END);
    if (e)
        dead_letter_file(c, reason, m->partition, m->offset, m->payload, m->len);
    c->dlq_pending = true;
}

/* Makes this poll's dead letters durable before their offsets can be committed. */
static void dead_letters_sync(consumer *c)
{
    if (!c->dlq_pending)
        return;
    if (c->dlq)
        rd_kafka_flush(c->dlq, 10000); /* runs the delivery callbacks, which may use the file */
    if (c->dlq_file) {
        fflush(c->dlq_file);
        fsync(fileno(c->dlq_file));
    }
    c->dlq_pending = false;
}

/* ---- offsets ------------------------------------------------------------------------ */

/* Commits, for every assigned partition, the offset up to which its rows are durable
 * (for lag monitoring and for the next owner after a rebalance). final: the table was
 * just flushed, so the positions themselves are durable. */
static void commit_durable(consumer *c, bool final)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
    pthread_mutex_lock(&c->mu);
    for (int32_t kp = 0; kp < c->nparts; kp++) {
        if (!c->parts[kp].assigned)
            continue;
        int64_t off = final ? c->parts[kp].pos : table_source_resume(c->t, c->source, kp);
        if (off >= 0)
            rd_kafka_topic_partition_list_add(l, c->topic, kp)->offset = off;
    }
    pthread_mutex_unlock(&c->mu);
    if (l->cnt > 0) {
        rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, l, final ? 0 : 1);
        if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
            logf_(c->k, "table %s: committing offsets to Kafka: %s (lag figures may lag)", c->name,
                  rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t why,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    consumer *c = opaque;
    strata_err err = {0};
    if (why == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* The group's committed offsets: where another node left a partition. */
        rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
        rd_kafka_resp_err_t ce = rd_kafka_committed(rk, committed, 10000);
        if (ce)
            logf_(c->k, "table %s: reading the group's committed offsets: %s", c->name,
                  rd_kafka_err2str(ce));
        pthread_mutex_lock(&c->mu);
        for (int i = 0; i < parts->cnt; i++) {
            rd_kafka_topic_partition_t *p = &parts->elems[i];
            int64_t resume = table_source_resume(c->t, c->source, p->partition);
            int64_t com = ce ? -1 : committed->elems[i].offset;
            int64_t start = resume > com ? resume : com;
            p->offset = start >= 0 ? start : c->start_latest ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
            part_state *ps = part_get(c, p->partition);
            if (ps) {
                ps->assigned = true;
                ps->pos = start;
            }
        }
        pthread_mutex_unlock(&c->mu);
        rd_kafka_topic_partition_list_destroy(committed);
        char list[256] = "";
        size_t used = 0;
        for (int i = 0; i < parts->cnt && used < sizeof list - 32; i++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%d@%" PRId64, i ? " " : "",
                                     (int)parts->elems[i].partition, parts->elems[i].offset);
        logf_(c->k, "table %s: assigned %d partition(s) of %s (partition@offset, -2 earliest, -1 latest): %s",
              c->name, parts->cnt, c->topic, list);
        rd_kafka_assign(rk, parts);
    } else if (why == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        /* Land everything read so far before the partitions may go to another node. */
        if (table_flush(c->t, true, &err) != 0)
            logf_(c->k, "table %s: flush before giving up partitions failed: %s", c->name, err.msg);
        else
            commit_durable(c, true);
        pthread_mutex_lock(&c->mu);
        for (int i = 0; i < parts->cnt; i++) {
            part_state *ps = part_get(c, parts->elems[i].partition);
            if (ps)
                ps->assigned = false;
            table_source_forget(c->t, c->source, parts->elems[i].partition);
        }
        pthread_mutex_unlock(&c->mu);
        logf_(c->k, "table %s: %d partition(s) of %s revoked", c->name, parts->cnt, c->topic);
        rd_kafka_assign(rk, NULL);
    } else {
        logf_(c->k, "table %s: rebalance error: %s", c->name, rd_kafka_err2str(why));
        rd_kafka_assign(rk, NULL);
    }
}

static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    consumer *c = rd_kafka_opaque(rk);
    if (level <= 4)
        logf_(c->k, "table %s: librdkafka %s: %s", c->name, fac, buf);
}

static void on_kafka_error(rd_kafka_t *rk, int e, const char *reason, void *opaque)
{
    (void)rk;
    consumer *c = opaque;
    atomic_fetch_add(&c->errors, 1);
    logf_(c->k, "table %s: Kafka: %s: %s", c->name, rd_kafka_err2name((rd_kafka_resp_err_t)e), reason);
    if (e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || e == RD_KAFKA_RESP_ERR__FATAL)
        set_degraded(c, "table %s: Kafka: %s", c->name, reason);
}

/* Assigns the current assignment again, every partition at the position the table
 * stands at (what was fetched beyond it is fetched again). */
static void reassign_at_positions(consumer *c)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    if (rd_kafka_assignment(c->rk, &l) != RD_KAFKA_RESP_ERR_NO_ERROR || !l)
        return;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < l->cnt; i++) {
        part_state *ps = part_get(c, l->elems[i].partition);
        l->elems[i].offset = ps && ps->pos >= 0 ? ps->pos
                             : c->start_latest ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
    }
    pthread_mutex_unlock(&c->mu);
    rd_kafka_resp_err_t e = rd_kafka_assign(c->rk, l);
    if (e)
        logf_(c->k, "table %s: re-assigning partitions: %s", c->name, rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(l);
}

/* The broker no longer has partition kp's next offset: report the gap, go on from the
 * earliest offset it has. */
static void handle_offset_reset(consumer *c, int32_t kp)
{
    int64_t lo = -1, hi = -1;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(c->rk, c->topic, kp, &lo, &hi, 10000);
    pthread_mutex_lock(&c->mu);
    part_state *ps = part_get(c, kp);
    int64_t pos = ps ? ps->pos : -1;
    pthread_mutex_unlock(&c->mu);
    if (e) {
        logf_(c->k, "table %s: partition %d: offset out of range and watermarks unknown (%s); retrying",
              c->name, kp, rd_kafka_err2str(e));
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
    logf_(c->k, "table %s: LOST DATA: partition %d of %s: %s were deleted by the broker before "
                "strata read them; continuing from offset %" PRId64,
          c->name, kp, c->topic, what, lo);
    set_degraded(c, "table %s lost %s of %s partition %d to broker retention", c->name, what,
                 c->topic, kp);
    pthread_mutex_lock(&c->mu);
    if ((ps = part_get(c, kp)) != NULL)
        ps->pos = lo;
    pthread_mutex_unlock(&c->mu);
    /* A partition stopped by the reset error only fetches again once assigned anew. */
    reassign_at_positions(c);
}

/* ---- the consumer loop -------------------------------------------------------------- */

static void pause_all(consumer *c, bool pause)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    if (rd_kafka_assignment(c->rk, &l) == RD_KAFKA_RESP_ERR_NO_ERROR && l) {
        if (pause)
            rd_kafka_pause_partitions(c->rk, l);
        else
            rd_kafka_resume_partitions(c->rk, l);
        rd_kafka_topic_partition_list_destroy(l);
    }
}

/* Appends partition kp's rows of this poll; flushes (partitions paused) when the table is
 * over its memory budget. */
static int land_partition(consumer *c, int32_t kp, part_state *ps)
{
    strata_err err = {0};
    uint64_t skipped = 0;
    for (int attempt = 0;; attempt++) {
        int rc = table_append_sourced(c->t, &ps->batch, c->source, kp, ps->offs, ps->next, &skipped, &err);
        if (rc == 0)
            break;
        if (rc != STRATA_EFULL || attempt > 0) {
            atomic_fetch_add(&c->errors, 1);
            logf_(c->k, "table %s: partition %d: appending %u rows failed: %s; retrying in 1 s",
                  c->name, kp, ps->batch.nrows, err.msg);
            return rc;
        }
        atomic_fetch_add(&c->pauses, 1);
        pause_all(c, true);
        int frc = table_flush(c->t, true, &err);
        pause_all(c, false);
        if (frc != 0) {
            logf_(c->k, "table %s: flush under memory pressure failed: %s", c->name, err.msg);
            return frc;
        }
    }
    atomic_fetch_add(&c->rows, ps->batch.nrows - skipped);
    atomic_fetch_add(&c->replayed, skipped);
    pthread_mutex_lock(&c->mu);
    ps->pos = ps->next;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

static void refresh_lag(consumer *c)
{
    int64_t lag = 0;
    pthread_mutex_lock(&c->mu);
    for (int32_t kp = 0; kp < c->nparts; kp++) {
        int64_t lo, hi;
        if (!c->parts[kp].assigned || c->parts[kp].pos < 0)
            continue;
        if (rd_kafka_get_watermark_offsets(c->rk, c->topic, kp, &lo, &hi) == 0 && hi > c->parts[kp].pos)
            lag += hi - c->parts[kp].pos;
    }
    c->lag = lag;
    pthread_mutex_unlock(&c->mu);
}

static void *consumer_run(void *arg)
{
    consumer *c = arg;
    rd_kafka_message_t **msgs = malloc(sizeof *msgs * BATCH_MSGS);
    int64_t last_commit = mono_ms();
    strata_err err = {0};
    while (msgs && !atomic_load(&c->stop)) {
        ssize_t n = rd_kafka_consume_batch_queue(c->q, POLL_MS, msgs, BATCH_MSGS);
        if (n < 0)
            n = 0;
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (m->err) {
                if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET)
                    handle_offset_reset(c, m->partition);
                else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                    atomic_fetch_add(&c->errors, 1);
                    logf_(c->k, "table %s: consume: %s", c->name, rd_kafka_message_errstr(m));
                }
                continue;
            }
            atomic_fetch_add(&c->messages, 1);
            pthread_mutex_lock(&c->mu);
            part_state *ps = part_get(c, m->partition);
            pthread_mutex_unlock(&c->mu);
            /* Only assigned partitions, and never below where the partition stands: a
             * message fetched before a revocation or a seek is not landed twice. */
            if (!ps || !ps->assigned || m->offset < (ps->next >= 0 ? ps->next : ps->pos))
                continue;
            if (!ps->batch_ready) {
                ps->offs = malloc(sizeof *ps->offs * BATCH_MSGS);
                if (!ps->offs || row_batch_init(&ps->batch, table_schema(c->t), 1024) != 0) {
                    free(ps->offs);
                    ps->offs = NULL;
                    continue;
                }
                ps->batch_ready = true;
            }
            int rc = m->payload && m->len
                         ? event_decoder_decode(c->decoder, m->payload, m->len, &ps->batch, &err)
                         : strata_err_set(&err, STRATA_EINVAL, "empty message");
            if (rc == 0)
                ps->offs[ps->batch.nrows - 1] = m->offset;
            else
                dead_letter(c, err.msg, m);
            ps->next = m->offset + 1;
        }
        dead_letters_sync(c);
        bool failed = false;
        for (int32_t kp = 0; kp < c->nparts; kp++) {
            part_state *ps = &c->parts[kp];
            if (ps->next < 0)
                continue;
            if (!failed && land_partition(c, kp, ps) != 0) {
                failed = true;
                /* Not landed: read these messages again from where the table stands. */
                reassign_at_positions(c);
            }
            if (ps->batch_ready)
                row_batch_clear(&ps->batch);
            ps->next = -1;
        }
        for (ssize_t i = 0; i < n; i++)
            rd_kafka_message_destroy(msgs[i]);
        if (failed)
            sleep(1);
        if (mono_ms() - last_commit >= 1000) {
            commit_durable(c, false);
            refresh_lag(c);
            last_commit = mono_ms();
        }
    }
    free(msgs);
    /* Leaving the group revokes the partitions: the rebalance callback flushes and
     * commits before they go. */
    rd_kafka_consumer_close(c->rk);
    return NULL;
}

/* ---- registry -------------------------------------------------------------------------- */

static void consumer_free(consumer *c)
{
    if (!c)
        return;
    if (c->q)
        rd_kafka_queue_destroy(c->q);
    if (c->rk)
        rd_kafka_destroy(c->rk);
    if (c->dlq) {
        rd_kafka_flush(c->dlq, 10000);
        rd_kafka_destroy(c->dlq);
    }
    if (c->dlq_file)
        fclose(c->dlq_file);
    for (int32_t i = 0; i < c->nparts; i++) {
        if (c->parts[i].batch_ready)
            row_batch_free(&c->parts[i].batch);
        free(c->parts[i].offs);
    }
    free(c->parts);
    pthread_mutex_destroy(&c->mu);
    event_decoder_free(c->decoder);
    catalog_put(c->k->cat, c->t);
    free(c);
}

int kafka_ingest_create(strata_catalog *cat, const kafka_ingest_opts *o, kafka_ingest **out,
                        strata_err *err)
{
    kafka_ingest *k = calloc(1, sizeof *k);
    if (!k)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    k->cat = cat;
    if (o)
        k->o = *o;
    if (o && o->brokers)
        snprintf(k->brokers, sizeof k->brokers, "%s", o->brokers);
    k->o.brokers = NULL;
    pthread_mutex_init(&k->mu, NULL);
    *out = k;
    return 0;
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *val, strata_err *err)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, key, val, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        return strata_err_set(err, STRATA_EINVAL, "kafka property %s=%s: %s", key, val, errstr);
    return 0;
}

int kafka_ingest_attach(kafka_ingest *k, const char *name, strata_err *err)
{
    strata_table *t = catalog_get(k->cat, name);
    if (!t)
        return strata_err_set(err, STRATA_ENOTFOUND, "no table '%s'", name);
    const strata_schema *sc = table_schema(t);
    if (!sc->kafka.enabled) {
        catalog_put(k->cat, t);
        return 0;
    }
    pthread_mutex_lock(&k->mu);
    for (consumer *x = k->list; x; x = x->next)
        if (strcmp(x->name, name) == 0) {
            pthread_mutex_unlock(&k->mu);
            catalog_put(k->cat, t);
            return 0;
        }
    pthread_mutex_unlock(&k->mu);
    const char *brokers = k->brokers[0] ? k->brokers : sc->kafka.brokers;
    if (!brokers[0]) {
        catalog_put(k->cat, t);
        return strata_err_set(err, STRATA_EINVAL,
                              "table '%s': kafka.brokers is empty and no --kafka-brokers was given", name);
    }
    consumer *c = calloc(1, sizeof *c);
    if (!c) {
        catalog_put(k->cat, t);
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    }
    c->k = k;
    c->t = t;
    pthread_mutex_init(&c->mu, NULL);
    if (!(c->decoder = event_decoder_create(sc, err))) {
        consumer_free(c);
        return STRATA_ENOMEM;
    }
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->topic, sizeof c->topic, "%s", sc->kafka.topic);
    snprintf(c->dlq_topic, sizeof c->dlq_topic, "%s.dlq", sc->kafka.topic);
    snprintf(c->group, sizeof c->group, "%s", sc->kafka.group);
    snprintf(c->source, sizeof c->source, "kafka:%s", sc->kafka.topic);
    c->start_latest = sc->kafka.start_latest;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char client_id[STRATA_NAME_MAX + 16];
    snprintf(client_id, sizeof client_id, "strata-%s", name);
    int rc = conf_set(conf, "bootstrap.servers", brokers, err);
    if (!rc)
        rc = conf_set(conf, "group.id", c->group, err) || conf_set(conf, "client.id", client_id, err) ||
             conf_set(conf, "fetch.wait.max.ms", "10", err) ||
             conf_set(conf, "queued.max.messages.kbytes", "65536", err) ||
             conf_set(conf, "enable.partition.eof", "false", err);
    /* The table's own properties, then what exactly-once needs, which they cannot change. */
    for (int i = 0; !rc && i < sc->kafka.nprops; i++)
        rc = conf_set(conf, sc->kafka.props[i].key, sc->kafka.props[i].value, err);
    if (!rc)
        rc = conf_set(conf, "enable.auto.commit", "false", err) ||
             conf_set(conf, "enable.auto.offset.store", "false", err) ||
             conf_set(conf, "auto.offset.reset", "error", err);
    if (rc) {
        rd_kafka_conf_destroy(conf);
        consumer_free(c);
        strata_err_prefix(err, "table '%s'", name);
        return STRATA_EINVAL;
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_log_cb(conf, on_kafka_log);
    rd_kafka_conf_set_error_cb(conf, on_kafka_error);
    char errstr[512];
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!c->rk) {
        rd_kafka_conf_destroy(conf);
        consumer_free(c);
        return strata_err_set(err, STRATA_EINVAL, "table '%s': Kafka consumer: %s", name, errstr);
    }
    rd_kafka_poll_set_consumer(c->rk);
    c->q = rd_kafka_queue_get_consumer(c->rk);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, c->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t se = rd_kafka_subscribe(c->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (se) {
        consumer_free(c);
        return strata_err_set(err, STRATA_EINVAL, "table '%s': subscribe to %s: %s", name,
                              sc->kafka.topic, rd_kafka_err2str(se));
    }
    if (pthread_create(&c->th, NULL, consumer_run, c) != 0) {
        rd_kafka_consumer_close(c->rk);
        consumer_free(c);
        return strata_err_set(err, STRATA_ENOMEM, "table '%s': cannot start the consumer thread", name);
    }
    pthread_mutex_lock(&k->mu);
    c->next = k->list;
    k->list = c;
    pthread_mutex_unlock(&k->mu);
    logf_(k, "table %s: consuming %s from %s as group %s", name, c->topic, brokers, c->group);
    return 0;
}

static void consumer_stop(consumer *c)
{
    atomic_store(&c->stop, true);
    pthread_join(c->th, NULL);
    dead_letters_sync(c);
    consumer_free(c);
}

void kafka_ingest_detach(kafka_ingest *k, const char *name)
{
    pthread_mutex_lock(&k->mu);
    consumer **pp = &k->list, *c = NULL;
    for (; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->name, name) == 0) {
            c = *pp;
            *pp = c->next;
            break;
        }
    pthread_mutex_unlock(&k->mu);
    if (c) {
        consumer_stop(c);
        logf_(k, "table %s: consumer stopped", name);
    }
}

void kafka_ingest_free(kafka_ingest *k)
{
    if (!k)
        return;
    for (;;) {
        pthread_mutex_lock(&k->mu);
        consumer *c = k->list;
        if (c)
            k->list = c->next;
        pthread_mutex_unlock(&k->mu);
        if (!c)
            break;
        consumer_stop(c);
    }
    pthread_mutex_destroy(&k->mu);
    free(k);
}

void kafka_ingest_metrics(kafka_ingest *k, bytebuf *out)
{
    static const struct {
        const char *name, *type, *help;
    } m[] = {
        {"strata_kafka_messages_total", "counter", "Kafka messages consumed."},
        {"strata_kafka_rows_total", "counter", "Rows landed from Kafka."},
        {"strata_kafka_dead_letters_total", "counter", "Events that failed to decode, by sink."},
        {"strata_kafka_lost_messages_total", "counter",
         "Messages the broker deleted (retention) before strata read them."},
        {"strata_kafka_loss_events_total", "counter", "Times a partition's next offset was gone."},
        {"strata_kafka_replayed_rows_skipped_total", "counter",
         "Rows read again after a restart that the table already held (dropped)."},
        {"strata_kafka_lag_messages", "gauge", "Messages in the broker not yet landed."},
        {"strata_kafka_backpressure_pauses_total", "counter",
         "Times partitions were paused to flush over the memory budget."},
        {"strata_kafka_assigned_partitions", "gauge", "Partitions this node consumes."},
        {"strata_kafka_errors_total", "counter", "Consumer errors (logged)."},
    };
    char line[512];
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        int n = snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n", m[i].name, m[i].help,
                         m[i].name, m[i].type);
        buf_put(out, line, (size_t)n);
        for (consumer *c = k->list; c; c = c->next) {
            uint64_t v[10];
            pthread_mutex_lock(&c->mu);
            uint64_t assigned = 0;
            for (int32_t p = 0; p < c->nparts; p++)
                assigned += c->parts[p].assigned;
            v[6] = (uint64_t)c->lag;
            pthread_mutex_unlock(&c->mu);
            v[0] = atomic_load(&c->messages);
            v[1] = atomic_load(&c->rows);
            v[3] = atomic_load(&c->lost);
            v[4] = atomic_load(&c->lost_events);
            v[5] = atomic_load(&c->replayed);
            v[7] = atomic_load(&c->pauses);
            v[8] = assigned;
            v[9] = atomic_load(&c->errors);
            if (i == 2) {
                n = snprintf(line, sizeof line,
                             "%s{table=\"%s\",sink=\"kafka\"} %" PRIu64 "\n%s{table=\"%s\",sink=\"file\"} %" PRIu64 "\n",
                             m[i].name, c->name, atomic_load(&c->dead_kafka), m[i].name, c->name,
                             atomic_load(&c->dead_file));
            } else {
                n = snprintf(line, sizeof line, "%s{table=\"%s\",topic=\"%s\"} %" PRIu64 "\n", m[i].name,
                             c->name, c->topic, v[i]);
            }
            buf_put(out, line, (size_t)n);
        }
    }
    pthread_mutex_unlock(&k->mu);
}

bool kafka_ingest_degraded(kafka_ingest *k, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = 0;
    pthread_mutex_lock(&k->mu);
    for (consumer *c = k->list; c; c = c->next) {
        pthread_mutex_lock(&c->mu);
        if (c->degraded[0] && used < cap)
            used += (size_t)snprintf(buf + used, cap - used, "%s%s", used ? "; " : "", c->degraded);
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_unlock(&k->mu);
    return buf[0] != 0;
}

void kafka_ingest_table_json(kafka_ingest *k, const char *name, json_t *obj)
{
    pthread_mutex_lock(&k->mu);
    for (consumer *c = k->list; c; c = c->next) {
        if (strcmp(c->name, name) != 0)
            continue;
        json_t *parts = json_array();
        pthread_mutex_lock(&c->mu);
        for (int32_t p = 0; p < c->nparts; p++)
            if (c->parts[p].assigned)
                json_array_append_new(parts, json_pack("{s:i, s:I}", "partition", (int)p, "position",
                                                       (json_int_t)c->parts[p].pos));
        json_t *j = json_pack("{s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:I}", "topic", c->topic, "group",
                              c->group, "partitions", parts, "lag", (json_int_t)c->lag, "rows",
                              (json_int_t)atomic_load(&c->rows), "dead_letters",
                              (json_int_t)(atomic_load(&c->dead_kafka) + atomic_load(&c->dead_file)),
                              "lost_messages", (json_int_t)atomic_load(&c->lost), "replayed_rows_skipped",
                              (json_int_t)atomic_load(&c->replayed));
        if (c->degraded[0])
            json_object_set_new(j, "degraded", json_string(c->degraded));
        pthread_mutex_unlock(&c->mu);
        json_object_set_new(obj, "kafka", j);
        break;
    }
    pthread_mutex_unlock(&k->mu);
}
