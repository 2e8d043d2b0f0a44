/*
 * dead_letter.c — the dead-letter sink of a Kafka consumer: its producer to "<topic>.dlq",
 * its fallback file deadletters.ndjson, the record format and the sync that makes both
 * durable. Contract and format in dead_letter.h.
 *
 * The producer is made at the first dead letter and is never polled: its delivery reports
 * run inside rd_kafka_flush (dead_letter_sync, dead_letter_sink_free), so on the thread
 * that owns the sink, which is also the only one that touches the file and `pending`.
 * Only the counters are read by other threads (atomics).
 */
#include "ingest/dead_letter.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/fault.h"
#include "engine/schema.h"
#include "engine/text.h"

struct dead_letter_sink {
    char table[STRATA_NAME_MAX];
    char topic[STRATA_NAME_MAX * 2];
    char dlq_topic[STRATA_NAME_MAX * 2 + 8];
    char brokers[256];
    bool file_only;      /* no brokers given: every dead letter goes to the file */
    char dir[4096];
    void (*vlog)(void *log_ctx, const char *fmt, va_list ap);
    void *log_ctx;
    rd_kafka_t *dlq;     /* producer, made at the first dead letter */
    FILE *file;          /* <dir>/deadletters.ndjson, opened at the first need */
    bool pending;        /* dead letters put since the last successful sync */
    _Atomic uint64_t kafka, in_file, errors;
};

static void logf_(dead_letter_sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(dead_letter_sink *s, const char *fmt, ...)
{
    if (!s->vlog)
        return;
    va_list ap;
    va_start(ap, fmt);
    s->vlog(s->log_ctx, fmt, ap);
    va_end(ap);
}

int dead_letter_sink_create(const dead_letter_opts *o, dead_letter_sink **out, strata_err *err)
{
    dead_letter_sink *s = calloc(1, sizeof *s);
    if (!s)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    snprintf(s->table, sizeof s->table, "%s", o->table);
    snprintf(s->topic, sizeof s->topic, "%s", o->topic);
    snprintf(s->dlq_topic, sizeof s->dlq_topic, "%s.dlq", o->topic);
    snprintf(s->brokers, sizeof s->brokers, "%s", o->brokers ? o->brokers : "");
    s->file_only = !o->brokers;
    snprintf(s->dir, sizeof s->dir, "%s", o->dir);
    s->vlog = o->vlog;
    s->log_ctx = o->log_ctx;
    *out = s;
    return 0;
}

void dead_letter_sink_free(dead_letter_sink *s)
{
    if (!s)
        return;
    if (s->dlq) {
        rd_kafka_flush(s->dlq, 10000);
        rd_kafka_destroy(s->dlq);
    }
    if (s->file)
        fclose(s->file);
    free(s);
}

dead_letter_counts dead_letter_sink_counts(dead_letter_sink *s)
{
    return (dead_letter_counts){atomic_load(&s->kafka), atomic_load(&s->in_file), atomic_load(&s->errors)};
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

/* Appends one dead letter to the NDJSON file. */
static void put_file(dead_letter_sink *s, const char *reason, int32_t kp, int64_t off,
                     const void *payload, size_t len)
{
    if (!s->file) {
        char path[4200];
        snprintf(path, sizeof path, "%s/deadletters.ndjson", s->dir);
        s->file = fopen(path, "a");
        if (!s->file) {
            atomic_fetch_add(&s->errors, 1);
            logf_(s, "table %s: cannot open %s: %s; a dead letter (partition %d offset %" PRId64
                     ") is only logged: %s",
                  s->table, path, strerror(errno), kp, off, reason);
            return;
        }
    }
    json_t *j = json_pack("{s:s, s:s, s:i, s:I}", "error", reason, "topic", s->topic, "partition",
                          (int)kp, "offset", (json_int_t)off);
    if (!j)
        return;
    const char *p = payload ? payload : "";
    if (text_utf8_valid(p, len)) {
        json_object_set_new(j, "event", json_stringn(p, len));
    } else {
        char *b = base64((const unsigned char *)p, len);
        json_object_set_new(j, "event_base64", json_string(b ? b : ""));
        free(b);
    }
    char *line = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (line) {
        fprintf(s->file, "%s\n", line);
        free(line);
    }
    atomic_fetch_add(&s->in_file, 1);
    s->pending = true;
}

/* The producer's delivery report (inside rd_kafka_flush, on the sink's thread). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    dead_letter_sink *s = opaque;
    if (!m->err) {
        atomic_fetch_add(&s->kafka, 1);
        return;
    }
    /* The broker refused it: the file keeps it, with what the headers said. */
    const char *reason = "?";
    char rbuf[512];
    int32_t kp = -1;
    int64_t off = -1;
    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const void *v;
        size_t n;
        if (rd_kafka_header_get_last(h, "strata.error", &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(rbuf, sizeof rbuf, "%.*s", (int)n, (const char *)v);
            reason = rbuf;
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
    static _Atomic int warned; /* once a process */
    if (!atomic_exchange(&warned, 1))
        logf_(s, "table %s: dead-letter topic %s refused a message (%s); dead letters go to "
                 "deadletters.ndjson in the table's directory",
              s->table, s->dlq_topic, rd_kafka_err2str(m->err));
    put_file(s, reason, kp, off, m->payload, m->len);
}

/* librdkafka's own lines (warnings and worse) in strata's log. */
static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    dead_letter_sink *s = rd_kafka_opaque(rk);
    if (level <= 4)
        logf_(s, "table %s: dead-letter producer: librdkafka %s: %s", s->table, fac, buf);
}

/* Makes the producer; false (logged when librdkafka refuses) when it cannot be made. */
static bool producer_make(dead_letter_sink *s)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", s->brokers, errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "message.timeout.ms", "10000", errstr, sizeof errstr)) {
        rd_kafka_conf_destroy(conf);
        return false;
    }
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_log_cb(conf, on_kafka_log);
    s->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!s->dlq) {
        logf_(s, "table %s: cannot make the dead-letter producer: %s", s->table, errstr);
        return false;
    }
    return true;
}

void dead_letter_put(dead_letter_sink *s, const char *reason, const rd_kafka_message_t *m)
{
    if (s->file_only || (!s->dlq && !producer_make(s))) {
        put_file(s, reason, m->partition, m->offset, m->payload, m->len);
        return;
    }
    char kp[16], off[24];
    snprintf(kp, sizeof kp, "%d", (int)m->partition);
    snprintf(off, sizeof off, "%" PRId64, m->offset);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        s->dlq, RD_KAFKA_V_TOPIC(s->dlq_topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_KEY(m->key, m->key_len),
        RD_KAFKA_V_HEADER("strata.error", reason, (ssize_t)strlen(reason)),
        RD_KAFKA_V_HEADER("strata.topic", s->topic, (ssize_t)strlen(s->topic)),
        RD_KAFKA_V_HEADER("strata.partition", kp, (ssize_t)strlen(kp)),
        RD_KAFKA_V_HEADER("strata.offset", off, (ssize_t)strlen(off)), RD_KAFKA_V_OPAQUE(s),
        RD_KAFKA_V_END);
    if (e)
        put_file(s, reason, m->partition, m->offset, m->payload, m->len);
    s->pending = true;
}

int dead_letter_sync(dead_letter_sink *s)
{
    if (!s->pending)
        return 0;
    int rc = 0;
    if (s->dlq && rd_kafka_flush(s->dlq, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        logf_(s, "table %s: dead letters still undelivered to %s after 10 s; reading those "
                 "messages again", s->table, s->dlq_topic);
        rc = -1;
    }
    errno = 0;
    if (s->file && (fflush(s->file) != 0 || fsync(fileno(s->file)) != 0)) {
        logf_(s, "table %s: deadletters.ndjson cannot be made durable (%s); reading those "
                 "messages again", s->table, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && fault_hit(FAULT_DEAD_LETTER_SYNC)) {
        logf_(s, "table %s: dead letters cannot be made durable (injected fault); reading those "
                 "messages again", s->table);
        rc = -1;
    }
    if (rc) {
        atomic_fetch_add(&s->errors, 1);
        return rc;
    }
    s->pending = false;
    return 0;
}
