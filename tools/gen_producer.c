/*
 * gen_producer.c — the throughput-tuned Kafka producer with counted delivery reports, and
 * the paced send loop over an order generator. See gen_producer.h.
 *
 * Pacing: slot k of a run is due at t0 + k / rate on CLOCK_MONOTONIC. Each turn of the
 * loop sends every slot already due (at most BATCH_SLOTS at a time, so the stop flag and
 * delivery reports are looked at often), then, when nothing is due, sleeps with an
 * absolute clock_nanosleep until the slot that makes the next batch worth sending is due:
 * the next slot at low rates, about a millisecond's worth of slots at high rates. Using
 * absolute due times means sleep overshoot never accumulates: the average rate is exact
 * whatever the scheduler does, and 1/s and 1M/s behave the same way.
 */
#include "tools/gen_producer.h"

#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/clock.h"

#define BATCH_SLOTS 1024     /* slots sent between looks at the clock, stop flag and reports */
#define MAX_SLEEP_NS 100000000L /* the stop flag is looked at least every 100 ms */

struct gen_producer {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    gen_producer_counts counts; /* updated by the delivery callback in the polling thread */
    char first_failure[300];    /* reason of the first failed delivery */
    char fatal[300];            /* a fatal producer error, if one happened */
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    gen_producer *p = opaque;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        p->counts.delivered++;
        return;
    }
    if (p->counts.failed++ == 0)
        snprintf(p->first_failure, sizeof p->first_failure, "%s [%" PRId32 "]: %s",
                 rd_kafka_topic_name(m->rkt), m->partition, rd_kafka_err2str(m->err));
}

static void on_error(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    gen_producer *p = opaque;
    char why[256];
    if (code != RD_KAFKA_RESP_ERR__FATAL || p->fatal[0])
        return; /* transient errors (a broker away) are retried; librdkafka logs them */
    rd_kafka_fatal_error(rk, why, sizeof why);
    snprintf(p->fatal, sizeof p->fatal, "fatal producer error: %s", why);
}

#define GEN_CONNECT_TIMEOUT_MS 10000

static void log_nothing(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
}

static int set(rd_kafka_conf_t *conf, const char *name, const char *value, strata_err *err)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        return strata_err_set(err, STRATA_EINVAL, "kafka property %s=%s: %s", name, value, errstr);
    return 0;
}

gen_producer *gen_producer_open(const gen_producer_opts *o, strata_err *err)
{
    char errstr[512], linger[16];
    gen_producer *p = calloc(1, sizeof *p);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!p || !conf) {
        strata_err_set(err, STRATA_ENOMEM, "producer: out of memory");
        goto fail;
    }
    if (!o->brokers || !*o->brokers || !o->topic || !*o->topic) {
        strata_err_set(err, STRATA_EINVAL, "producer: brokers and topic are required");
        goto fail;
    }
    snprintf(linger, sizeof linger, "%d", o->linger_ms < 0 ? 5 : o->linger_ms);
    const char *defaults[][2] = {
        {"bootstrap.servers", o->brokers},
        {"client.id", "strata-gen"},
        {"compression.type", o->compression ? o->compression : "zstd"},
        {"linger.ms", linger},
        {"batch.num.messages", "100000"},
        {"batch.size", "1000000"},
        {"enable.idempotence", "true"},
        {"message.timeout.ms", "60000"},
        {"queue.buffering.max.messages", "1000000"},
        {"queue.buffering.max.kbytes", "1048576"},
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (set(conf, defaults[i][0], defaults[i][1], err) != 0)
            goto fail;
    for (size_t i = 0; i < o->nprops; i++) {
        const char *eq = strchr(o->props[i], '=');
        char name[128];
        if (!eq || eq == o->props[i] || (size_t)(eq - o->props[i]) >= sizeof name) {
            strata_err_set(err, STRATA_EINVAL, "kafka property '%s': expected name=value", o->props[i]);
            goto fail;
        }
        memcpy(name, o->props[i], (size_t)(eq - o->props[i]));
        name[eq - o->props[i]] = '\0';
        if (set(conf, name, eq + 1, err) != 0)
            goto fail;
    }
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    /* librdkafka's own lines (every failed connection attempt) say nothing the errors
     * below do not; failures are reported once, by us. */
    rd_kafka_conf_set_log_cb(conf, log_nothing);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!p->rk) {
        strata_err_set(err, STRATA_EIO, "producer: %s", errstr);
        goto fail;
    }
    conf = NULL; /* owned by rk now */
    p->rkt = rd_kafka_topic_new(p->rk, o->topic, NULL);
    if (!p->rkt) {
        strata_err_set(err, STRATA_EIO, "producer: topic %s: %s", o->topic,
                       rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    /* Reach the brokers before producing: without this an unreachable address is only
     * found when message.timeout.ms (60 s) expires for the first message. */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t me = rd_kafka_metadata(p->rk, 0, p->rkt, &md, GEN_CONNECT_TIMEOUT_MS);
    if (me) {
        strata_err_set(err, STRATA_EIO, "cannot reach Kafka at %s within %d s (%s): is the broker running "
                       "and the address right?", o->brokers, GEN_CONNECT_TIMEOUT_MS / 1000, rd_kafka_err2str(me));
        goto fail;
    }
    rd_kafka_metadata_destroy(md);
    return p;

fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    gen_producer_close(p);
    return NULL;
}

int gen_producer_send(gen_producer *p, const void *key, size_t keylen, const void *value,
                      size_t len, strata_err *err)
{
    static const char empty[1];
    if (!value)
        value = empty; /* an empty message, not a null (tombstone) value */
    for (;;) {
        if (rd_kafka_produce(p->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, (void *)value, len,
                             key, keylen, NULL) == 0) {
            p->counts.sent++;
            return 0;
        }
        rd_kafka_resp_err_t e = rd_kafka_last_error();
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (e == RD_KAFKA_RESP_ERR__FATAL && p->fatal[0])
                return strata_err_set(err, STRATA_EIO, "%s", p->fatal);
            return strata_err_set(err, STRATA_EIO, "produce to %s: %s", rd_kafka_topic_name(p->rkt),
                                  rd_kafka_err2str(e));
        }
        rd_kafka_poll(p->rk, 10); /* room comes as deliveries are acknowledged */
    }
}

void gen_producer_poll(gen_producer *p)
{
    rd_kafka_poll(p->rk, 0);
}

int gen_producer_flush(gen_producer *p, strata_err *err)
{
    /* Every message ends delivered or failed within message.timeout.ms; wait for that. */
    while (rd_kafka_outq_len(p->rk) > 0)
        rd_kafka_flush(p->rk, 1000);
    rd_kafka_poll(p->rk, 0);
    if (p->fatal[0])
        return strata_err_set(err, STRATA_EIO, "%s (%" PRIu64 " of %" PRIu64 " messages delivered)",
                              p->fatal, p->counts.delivered, p->counts.sent);
    if (p->counts.failed)
        return strata_err_set(err, STRATA_EIO,
                              "%" PRIu64 " of %" PRIu64 " messages were not delivered; first: %s",
                              p->counts.failed, p->counts.sent, p->first_failure);
    if (p->counts.delivered != p->counts.sent)
        return strata_err_set(err, STRATA_EIO,
                              "%" PRIu64 " messages sent but %" PRIu64 " delivered",
                              p->counts.sent, p->counts.delivered);
    return 0;
}

void gen_producer_get_counts(const gen_producer *p, gen_producer_counts *out)
{
    *out = p->counts;
}

void gen_producer_close(gen_producer *p)
{
    if (!p)
        return;
    if (p->rkt)
        rd_kafka_topic_destroy(p->rkt);
    if (p->rk) {
        /* Whatever is still queued is dropped: the caller chose not to flush. */
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_destroy(p->rk);
    }
    free(p);
}

/* ---- the send loop ---------------------------------------------------------------------- */

size_t gen_event_key(const order_gen_msg *m, uint64_t slot, char *buf, size_t cap)
{
    int n = m->bad ? snprintf(buf, cap, "bad-%" PRIu64, slot) : snprintf(buf, cap, "%" PRIu64, m->event_id);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

static void sleep_until_ns(int64_t t)
{
    struct timespec ts = {.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ; /* a signal: the caller's loop looks at the stop flag right after */
}

static bool stopped(const gen_stream_opts *o)
{
    return o->stop && atomic_load(o->stop);
}

/* The next slot, drawn from the generator ahead of its due time (so the end of the
 * generator is known before sleeping for a slot that does not exist). */
typedef struct drawn_slot {
    char line[ORDER_GEN_JSON_MAX + 1]; /* + 1 for the NDJSON newline */
    order_gen_msg msg;
    uint64_t slot;
    bool have;
} drawn_slot;

/* Returns 1 with d filled, 0 when the generator is done, < 0 on error. */
static int draw_slot(order_gen *g, drawn_slot *d, strata_err *err)
{
    d->slot = order_gen_get_totals(g)->slots;
    int r = order_gen_next_json(g, d->line, ORDER_GEN_JSON_MAX, &d->msg);
    if (r < 0)
        return strata_err_set(err, STRATA_EIO, "generator: %s", strata_strerror(r));
    d->have = r == 1;
    return r;
}

static int send_slot(const gen_stream_opts *o, drawn_slot *d, strata_err *err)
{
    d->have = false;
    if (o->producer) {
        char key[32];
        size_t kl = gen_event_key(&d->msg, d->slot, key, sizeof key);
        return gen_producer_send(o->producer, key, kl, d->line, d->msg.len, err);
    }
    d->line[d->msg.len] = '\n';
    if (fwrite(d->line, 1, d->msg.len + 1, o->out) != d->msg.len + 1)
        return strata_err_set(err, STRATA_EIO, "write: %s", strerror(errno));
    return 0;
}

int gen_stream_run(order_gen *g, const gen_stream_opts *o, uint64_t *slots_out, strata_err *err)
{
    const double rate = o->rate > 0 ? o->rate : 0;
    /* At high rates wake once per ~1 ms worth of slots; at low rates for every slot. */
    const uint64_t wake_slots = rate > 1000 ? (uint64_t)(rate / 1000) : 1;
    const int64_t t0 = clock_mono_ns();
    drawn_slot d = {.have = false};
    uint64_t sent = 0;
    int rc = 0;

    for (;;) {
        if (!d.have && (rc = draw_slot(g, &d, err)) <= 0)
            break; /* the generator is done (rc 0), or failed */
        if (stopped(o)) {
            /* The drawn slot counts in the generator's totals: send it, so the totals
             * stay exactly what was sent. */
            if ((rc = send_slot(o, &d, err)) == 0)
                sent++;
            break;
        }
        uint64_t n = BATCH_SLOTS;
        if (rate > 0) {
            /* Slots due by now: k with t0 + k / rate <= now, i.e. k <= elapsed * rate. */
            double due = floor((double)(clock_mono_ns() - t0) * 1e-9 * rate) + 1;
            if (due <= (double)sent) {
                int64_t wake = t0 + (int64_t)ceil((double)(sent + wake_slots - 1) / rate * 1e9);
                int64_t cap = clock_mono_ns() + MAX_SLEEP_NS;
                sleep_until_ns(wake < cap ? wake : cap);
                if (o->producer)
                    gen_producer_poll(o->producer);
                continue;
            }
            if (due - (double)sent < (double)n)
                n = (uint64_t)(due - (double)sent);
        }
        for (uint64_t i = 0; i < n; i++) {
            if (!d.have && (rc = draw_slot(g, &d, err)) <= 0)
                break;
            if ((rc = send_slot(o, &d, err)) != 0)
                goto done;
            sent++;
        }
        if (rc < 0)
            goto done;
        if (o->producer) {
            gen_producer_poll(o->producer);
            gen_producer_counts c;
            gen_producer_get_counts(o->producer, &c);
            if (c.failed) {
                rc = gen_producer_flush(o->producer, err); /* fills err with the reason */
                goto done;
            }
        } else if (rate > 0 && fflush(o->out) != 0) {
            /* Paced NDJSON is for live pipes: each batch leaves at once. */
            rc = strata_err_set(err, STRATA_EIO, "write: %s", strerror(errno));
            goto done;
        }
        if (o->progress)
            progress_update(o->progress, sent);
    }
done:
    if (slots_out)
        *slots_out = sent;
    return rc < 0 ? rc : 0;
}
