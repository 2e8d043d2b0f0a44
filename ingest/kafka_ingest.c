/*
 * kafka_ingest.c — Kafka consumers landing topics in tables exactly once: the registry of
 * consumers (one per Kafka table), starting and stopping each, its poll loop handing
 * decoded rows to the table, and what it reports (/metrics figures, /health problems, the
 * table's "kafka" object). Contract and design in kafka_ingest.h; the consumer's state and
 * its thread and lock contract in kafka_consumer.h. Partitions and offsets are
 * kafka_offsets.c's job, dead letters dead_letter.c's, the metrics text kafka_metrics.c's.
 *
 * Each consumer thread loops: take up to KAFKA_BATCH_MSGS messages
 * (rd_kafka_consume_batch_queue on the consumer queue, which also runs the rebalance
 * callback), decode each into the row batch of its Kafka partition (bad ones to the dead
 * letters), make the dead letters durable, append each partition's batch with its offsets
 * (table_append_sourced), and once a second commit the durable resume points to Kafka and
 * refresh the lag.
 *
 * Registry: k->attach_lock serializes attach, detach and accept-reset (it keeps a consumer
 * alive while one waits on it); k->mu guards the list of consumers and of attach failures.
 */
#include "ingest/kafka_ingest.h"

#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/clock.h"
#include "engine/table.h"
#include "ingest/dead_letter.h"
#include "ingest/late_events.h"
#include "ingest/event_json.h"
#include "ingest/kafka_consumer.h"
#include "ingest/kafka_metrics.h"
#include "ingest/kafka_offsets.h"

#define POLL_MS 5 /* a batch waits at most this long for more messages */

/* A Kafka table whose consumer could not start, and why (shown as degraded). */
typedef struct attach_failure {
    char name[STRATA_NAME_MAX];
    char why[512];
} attach_failure;

struct kafka_ingest {
    strata_catalog *cat;
    kafka_ingest_opts o;
    char brokers[256];
    pthread_mutex_t attach_lock; /* one attach or detach at a time; taken before mu */
    pthread_mutex_t mu;          /* list, fails */
    kafka_consumer *list;
    attach_failure *fails;
    size_t nfails, fails_cap;
};

/* One line to the registry's log callback (ctx: the registry); dead-letter sinks log
 * through it too. */
static void __attribute__((format(printf, 2, 0))) vlog(void *ctx, const char *fmt, va_list ap)
{
    kafka_ingest *k = ctx;
    if (!k->o.log)
        return;
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    k->o.log(line);
}

static void __attribute__((format(printf, 2, 3))) kafka_log(kafka_ingest *k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(k, fmt, ap);
    va_end(ap);
}

/* librdkafka's own lines (warnings and worse) in strata's log (the dead-letter producer
 * logs its own, dead_letter.c). */
static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    kafka_consumer *c = rd_kafka_opaque(rk);
    if (level <= 4)
        kafka_consumer_log(c, "table %s: librdkafka %s: %s", c->name, fac, buf);
}

static void on_kafka_error(rd_kafka_t *rk, int e, const char *reason, void *opaque)
{
    (void)rk;
    kafka_consumer *c = opaque;
    atomic_fetch_add(&c->errors, 1);
    kafka_consumer_log(c, "table %s: Kafka: %s: %s", c->name, rd_kafka_err2name((rd_kafka_resp_err_t)e), reason);
    if (e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        atomic_store(&c->unreachable, true); /* librdkafka counts its bootstrap entry as a broker */
    else if (e == RD_KAFKA_RESP_ERR__FATAL)
        kafka_consumer_degrade(c, "table %s: Kafka: %s", c->name, reason);
}

/* ---- the consumer loop -------------------------------------------------------------- */

/* Appends partition kp's rows of this poll; flushes (partitions paused) when the table is
 * over its memory budget. */
static int land_partition(kafka_consumer *c, int32_t kp, kafka_part *ps)
{
    strata_err err = {0};
    uint64_t skipped = 0;
    for (int attempt = 0;; attempt++) {
        int rc = table_append_sourced(c->t, &ps->batch, ps->source, kp, ps->offs, ps->next, &skipped, &err);
        if (rc == 0)
            break;
        if (rc != STRATA_EFULL || attempt > 0) {
            atomic_fetch_add(&c->errors, 1);
            kafka_consumer_log(c, "table %s: partition %d: appending %u rows failed: %s; retrying in 1 s",
                               c->name, kp, ps->batch.nrows, err.msg);
            return rc;
        }
        atomic_fetch_add(&c->pauses, 1);
        kafka_offsets_pause_all(c, true);
        int frc = table_flush(c->t, true, &err);
        kafka_offsets_pause_all(c, false);
        if (frc != 0) {
            kafka_consumer_log(c, "table %s: flush under memory pressure failed: %s", c->name, err.msg);
            return frc;
        }
    }
    atomic_fetch_add(&c->rows, ps->batch.nrows - skipped);
    atomic_fetch_add(&c->replayed, skipped);
    atomic_fetch_add(&c->unknown_events, ps->unknown_events);
    pthread_mutex_lock(&c->mu);
    ps->pos = ps->next;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

static void refresh_lag(kafka_consumer *c)
{
    int64_t lag = 0;
    bool known = false;
    pthread_mutex_lock(&c->mu);
    for (int32_t kp = 0; kp < c->nparts; kp++) {
        kafka_part *ps = &c->parts[kp];
        int64_t lo, hi;
        if (!ps->assigned || ps->stopped)
            continue;
        if (rd_kafka_get_watermark_offsets(c->rk, c->topic, kp, &lo, &hi) != 0 || hi < 0)
            continue;
        known = true;
        int64_t from = ps->pos >= 0 ? ps->pos : c->start_latest && ps->epoch == 0 ? hi : lo;
        if (from >= 0 && hi > from)
            lag += hi - from;
    }
    c->lag = known ? lag : -1;
    pthread_mutex_unlock(&c->mu);
}

/* event_unknown_sink.key: counts the keys of a message that name no column. */
static void count_unknown_key(void *ctx, const char *name, size_t len)
{
    (void)name, (void)len;
    ++*(uint64_t *)ctx;
}

static void *consumer_run(void *arg)
{
    kafka_consumer *c = arg;
    rd_kafka_message_t **msgs = malloc(sizeof *msgs * KAFKA_BATCH_MSGS);
    int64_t last_commit = clock_mono_ms();
    strata_err err = {0};
    while (msgs && !atomic_load(&c->stop)) {
        if (atomic_load(&c->accept_req)) {
            kafka_offsets_accept_stopped(c);
            atomic_store(&c->accept_req, false);
        }
        ssize_t n = rd_kafka_consume_batch_queue(c->q, POLL_MS, msgs, KAFKA_BATCH_MSGS);
        if (n < 0)
            n = 0;
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (m->err) {
                if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET)
                    kafka_offsets_out_of_range(c, m->partition);
                else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                    atomic_fetch_add(&c->errors, 1);
                    kafka_consumer_log(c, "table %s: consume: %s", c->name, rd_kafka_message_errstr(m));
                }
                continue;
            }
            atomic_fetch_add(&c->messages, 1);
            pthread_mutex_lock(&c->mu);
            kafka_part *ps = kafka_consumer_part(c, m->partition);
            pthread_mutex_unlock(&c->mu);
            /* Only assigned partitions, and never below where the partition stands: a
             * message fetched before a revocation or a seek is not landed twice. */
            if (!ps || !ps->assigned || ps->stopped || m->offset < (ps->next >= 0 ? ps->next : ps->pos))
                continue;
            if (!ps->batch_ready) {
                ps->offs = malloc(sizeof *ps->offs * KAFKA_BATCH_MSGS);
                if (!ps->offs || row_batch_init(&ps->batch, table_schema(c->t), 1024) != 0) {
                    free(ps->offs);
                    ps->offs = NULL;
                    continue;
                }
                ps->batch_ready = true;
            }
            uint64_t unknown_keys = 0;
            event_unknown_sink unknown = {count_unknown_key, &unknown_keys};
            int rc = m->payload && m->len
                         ? event_decoder_decode_reporting(c->decoder, m->payload, m->len, &ps->batch,
                                                          &unknown, &err)
                         : strata_err_set(&err, STRATA_EINVAL, "empty message");
            if (rc == 0 && late_event_check(c->t, ps->batch.i[table_schema(c->t)->time_col][ps->batch.nrows - 1], &err)) {
                row_batch_pop_row(&ps->batch);
                rc = STRATA_EINVAL;
            }
            if (rc == 0) {
                ps->offs[ps->batch.nrows - 1] = m->offset;
                ps->unknown_events += unknown_keys != 0;
            } else {
                dead_letter_put(c->dead, err.msg, m);
            }
            ps->next = m->offset + 1;
        }
        /* Offsets may advance past dead letters only once those are durable. */
        bool failed = dead_letter_sync(c->dead) != 0;
        bool reassign = failed;
        for (int32_t kp = 0; kp < c->nparts; kp++) {
            kafka_part *ps = &c->parts[kp];
            if (ps->next < 0)
                continue;
            if (!failed && land_partition(c, kp, ps) != 0) {
                failed = true;
                reassign = true;
            }
            if (ps->batch_ready)
                row_batch_clear(&ps->batch);
            ps->unknown_events = 0;
            ps->next = -1;
        }
        /* Not landed: read these messages again from where the table stands. */
        if (reassign)
            kafka_offsets_reassign(c);
        for (ssize_t i = 0; i < n; i++)
            rd_kafka_message_destroy(msgs[i]);
        if (failed)
            sleep(1);
        if (n > 0)
            atomic_store(&c->unreachable, false);
        if (clock_mono_ms() - last_commit >= 1000) {
            kafka_offsets_commit(c, false);
            refresh_lag(c);
            if (atomic_load(&c->unreachable)) {
                /* Only while the brokers look down: ask one, briefly. */
                const struct rd_kafka_metadata *md = NULL;
                if (rd_kafka_metadata(c->rk, 0, NULL, &md, 500) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                    rd_kafka_metadata_destroy(md);
                    atomic_store(&c->unreachable, false);
                }
            }
            last_commit = clock_mono_ms();
        }
    }
    free(msgs);
    /* Leaving the group revokes the partitions: the rebalance callback flushes and
     * commits before they go (or marks them as a dropped table's). */
    rd_kafka_consumer_close(c->rk);
    return NULL;
}

/* ---- registry -------------------------------------------------------------------------- */

static void consumer_free(kafka_consumer *c)
{
    if (!c)
        return;
    if (c->q)
        rd_kafka_queue_destroy(c->q);
    if (c->rk)
        rd_kafka_destroy(c->rk);
    dead_letter_sink_free(c->dead); /* after rk: what the broker refuses still lands in the file */
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
    pthread_mutex_init(&k->attach_lock, NULL);
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

/* The consumer configuration of a table: our settings, the table's own properties, then
 * what exactly-once needs, which they cannot change. *out: rd_kafka_conf_destroy (or
 * rd_kafka_new). Errors name the table and the property. */
static int consumer_conf(kafka_ingest *k, const strata_schema *sc, rd_kafka_conf_t **out, strata_err *err)
{
    *out = NULL;
    const char *brokers = k->brokers[0] ? k->brokers : sc->kafka.brokers;
    if (!brokers[0])
        return strata_err_set(err, STRATA_EINVAL,
                              "table '%s': kafka.brokers is empty and strata serve was started without "
                              "--kafka-brokers: the table could not consume",
                              sc->name);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char client_id[STRATA_NAME_MAX + 16];
    snprintf(client_id, sizeof client_id, "strata-%s", sc->name);
    int rc = conf_set(conf, "bootstrap.servers", brokers, err);
    if (!rc)
        rc = conf_set(conf, "group.id", sc->kafka.group, err) || conf_set(conf, "client.id", client_id, err) ||
             conf_set(conf, "fetch.wait.max.ms", "10", err) ||
             conf_set(conf, "queued.max.messages.kbytes", "65536", err) ||
             conf_set(conf, "enable.partition.eof", "false", err) ||
             /* A node that stops or dies hands its partitions on within seconds (Kafka's
              * default of 45 s left a restarted node idle that long). */
             conf_set(conf, "session.timeout.ms", "6000", err) ||
             conf_set(conf, "heartbeat.interval.ms", "2000", err);
    for (int i = 0; !rc && i < sc->kafka.nprops; i++)
        rc = conf_set(conf, sc->kafka.props[i].key, sc->kafka.props[i].value, err);
    if (!rc)
        rc = conf_set(conf, "enable.auto.commit", "false", err) ||
             conf_set(conf, "enable.auto.offset.store", "false", err) ||
             conf_set(conf, "auto.offset.reset", "error", err);
    if (rc) {
        rd_kafka_conf_destroy(conf);
        strata_err_prefix(err, "table '%s'", sc->name);
        return STRATA_EINVAL;
    }
    *out = conf;
    return 0;
}

int kafka_ingest_validate(kafka_ingest *k, const strata_schema *sc, strata_err *err)
{
    if (!sc->kafka.enabled)
        return 0;
    rd_kafka_conf_t *conf;
    int rc = consumer_conf(k, sc, &conf, err);
    if (rc == 0)
        rd_kafka_conf_destroy(conf);
    return rc;
}

/* Records (why != NULL) or clears table name's attach failure. Caller holds mu. */
static void note_failure(kafka_ingest *k, const char *name, const char *why)
{
    for (size_t i = 0; i < k->nfails; i++)
        if (strcmp(k->fails[i].name, name) == 0) {
            if (why)
                snprintf(k->fails[i].why, sizeof k->fails[i].why, "%s", why);
            else
                k->fails[i] = k->fails[--k->nfails];
            return;
        }
    if (!why)
        return;
    if (k->nfails == k->fails_cap) {
        size_t cap = k->fails_cap ? k->fails_cap * 2 : 4;
        attach_failure *nf = realloc(k->fails, sizeof *nf * cap);
        if (!nf)
            return;
        k->fails = nf;
        k->fails_cap = cap;
    }
    snprintf(k->fails[k->nfails].name, sizeof k->fails[k->nfails].name, "%s", name);
    snprintf(k->fails[k->nfails].why, sizeof k->fails[k->nfails].why, "%s", why);
    k->nfails++;
}

static kafka_consumer *find_consumer(kafka_ingest *k, const char *name)
{
    for (kafka_consumer *x = k->list; x; x = x->next)
        if (strcmp(x->name, name) == 0)
            return x;
    return NULL;
}

/* Makes and starts table t's consumer (t: a reference it takes over). */
static int consumer_start(kafka_ingest *k, strata_table *t, kafka_consumer **out, strata_err *err)
{
    const strata_schema *sc = table_schema(t);
    kafka_consumer *c = calloc(1, sizeof *c);
    if (!c) {
        catalog_put(k->cat, t);
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    }
    c->k = k;
    c->log = k->o.log;
    c->t = t;
    c->lag = -1;
    pthread_mutex_init(&c->mu, NULL);
    if (!(c->decoder = event_decoder_create(sc, err))) {
        consumer_free(c);
        return STRATA_ENOMEM;
    }
    snprintf(c->name, sizeof c->name, "%s", sc->name);
    snprintf(c->topic, sizeof c->topic, "%s", sc->kafka.topic);
    snprintf(c->group, sizeof c->group, "%s", sc->kafka.group);
    snprintf(c->source, sizeof c->source, "kafka:%s", sc->kafka.topic);
    snprintf(c->brokers, sizeof c->brokers, "%s", k->brokers[0] ? k->brokers : sc->kafka.brokers);
    c->start_latest = sc->kafka.start_latest;
    c->reset_accept = sc->kafka.reset_accept;
    dead_letter_opts dopts = {
        .table = c->name, .topic = c->topic, .brokers = c->brokers, .dir = table_dir(t), .vlog = vlog, .log_ctx = k};
    rd_kafka_conf_t *conf;
    int rc = dead_letter_sink_create(&dopts, &c->dead, err);
    if (!rc)
        rc = consumer_conf(k, sc, &conf, err);
    if (rc) {
        consumer_free(c);
        return rc;
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, kafka_offsets_on_rebalance);
    rd_kafka_conf_set_log_cb(conf, on_kafka_log);
    rd_kafka_conf_set_error_cb(conf, on_kafka_error);
    char errstr[512];
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!c->rk) {
        rd_kafka_conf_destroy(conf);
        consumer_free(c);
        return strata_err_set(err, STRATA_EINVAL, "table '%s': Kafka consumer: %s", sc->name, errstr);
    }
    rd_kafka_poll_set_consumer(c->rk);
    c->q = rd_kafka_queue_get_consumer(c->rk);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, c->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t se = rd_kafka_subscribe(c->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (se) {
        rc = strata_err_set(err, STRATA_EINVAL, "table '%s': subscribe to %s: %s", c->name, c->topic,
                            rd_kafka_err2str(se));
        consumer_free(c);
        return rc;
    }
    if (pthread_create(&c->th, NULL, consumer_run, c) != 0) {
        rc = strata_err_set(err, STRATA_ENOMEM, "table '%s': cannot start the consumer thread", c->name);
        rd_kafka_consumer_close(c->rk);
        consumer_free(c);
        return rc;
    }
    {
        char tname[16]; /* "kafka:<table>" as top -H shows it (15 bytes at most) */
        snprintf(tname, sizeof tname, "kafka:%.9s", c->name);
        pthread_setname_np(c->th, tname);
    }
    *out = c;
    return 0;
}

int kafka_ingest_attach(kafka_ingest *k, const char *name, strata_err *err)
{
    strata_table *t = catalog_get(k->cat, name);
    if (!t)
        return strata_err_set(err, STRATA_ENOTFOUND, "no table '%s'", name);
    if (!table_schema(t)->kafka.enabled) {
        catalog_put(k->cat, t);
        return 0;
    }
    /* Checking for a running consumer and starting one is one step: two concurrent
     * attaches (two PUTs of the same table) start one consumer. */
    pthread_mutex_lock(&k->attach_lock);
    pthread_mutex_lock(&k->mu);
    bool running = find_consumer(k, name) != NULL;
    pthread_mutex_unlock(&k->mu);
    if (running) {
        pthread_mutex_unlock(&k->attach_lock);
        catalog_put(k->cat, t);
        return 0;
    }
    char brokers[256];
    snprintf(brokers, sizeof brokers, "%s", k->brokers[0] ? k->brokers : table_schema(t)->kafka.brokers);
    kafka_consumer *c = NULL;
    int rc = consumer_start(k, t, &c, err);
    pthread_mutex_lock(&k->mu);
    if (rc == 0) {
        c->next = k->list;
        k->list = c;
    }
    note_failure(k, name, rc ? err->msg : NULL);
    pthread_mutex_unlock(&k->mu);
    pthread_mutex_unlock(&k->attach_lock);
    if (rc == 0)
        kafka_log(k, "table %s: consuming %s from %s as group %s", name, c->topic, brokers, c->group);
    return rc;
}

static void consumer_stop(kafka_consumer *c)
{
    atomic_store(&c->stop, true);
    pthread_join(c->th, NULL);
    dead_letter_sync(c->dead);
    consumer_free(c);
}

bool kafka_ingest_detach(kafka_ingest *k, const char *name, bool dropping)
{
    pthread_mutex_lock(&k->attach_lock);
    pthread_mutex_lock(&k->mu);
    kafka_consumer **pp = &k->list, *c = NULL;
    for (; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->name, name) == 0) {
            c = *pp;
            *pp = c->next;
            break;
        }
    note_failure(k, name, NULL);
    pthread_mutex_unlock(&k->mu);
    if (c) {
        c->dropping = dropping;
        consumer_stop(c);
        kafka_log(k, "table %s: consumer stopped", name);
    }
    pthread_mutex_unlock(&k->attach_lock);
    return c != NULL;
}

void kafka_ingest_free(kafka_ingest *k)
{
    if (!k)
        return;
    for (;;) {
        pthread_mutex_lock(&k->mu);
        kafka_consumer *c = k->list;
        if (c)
            k->list = c->next;
        pthread_mutex_unlock(&k->mu);
        if (!c)
            break;
        consumer_stop(c);
    }
    free(k->fails);
    pthread_mutex_destroy(&k->mu);
    pthread_mutex_destroy(&k->attach_lock);
    free(k);
}

int kafka_ingest_accept_reset(kafka_ingest *k, const char *name, json_t *out, strata_err *err)
{
    pthread_mutex_lock(&k->attach_lock);
    pthread_mutex_lock(&k->mu);
    kafka_consumer *c = find_consumer(k, name);
    json_t *parts = json_array();
    if (c) {
        pthread_mutex_lock(&c->mu);
        for (int32_t p = 0; p < c->nparts; p++)
            if (c->parts[p].assigned && c->parts[p].stopped)
                json_array_append_new(parts, json_integer(p));
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_unlock(&k->mu);
    int rc = 0;
    if (!c)
        rc = strata_err_set(err, STRATA_ENOTFOUND, "table '%s' has no Kafka consumer", name);
    else if (json_array_size(parts) == 0)
        rc = strata_err_set(err, STRATA_EEXIST, "table '%s' has no partition stopped by an offset reset", name);
    if (rc) {
        json_decref(parts);
        pthread_mutex_unlock(&k->attach_lock);
        return rc;
    }
    /* The consumer thread does it between polls; attach_lock keeps c alive meanwhile. */
    atomic_store(&c->accept_req, true);
    for (int i = 0; i < 3000 && atomic_load(&c->accept_req); i++)
        usleep(10 * 1000);
    json_object_set_new(out, "accepted", parts);
    pthread_mutex_unlock(&k->attach_lock);
    return 0;
}

/* c's figures now, for /metrics (takes c->mu). */
static void consumer_stats(kafka_consumer *c, kafka_stats *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->table, sizeof s->table, "%s", c->name);
    snprintf(s->topic, sizeof s->topic, "%s", c->topic);
    pthread_mutex_lock(&c->mu);
    for (int32_t p = 0; p < c->nparts; p++) {
        s->assigned += c->parts[p].assigned && !c->parts[p].stopped;
        s->stopped += c->parts[p].assigned && c->parts[p].stopped;
    }
    s->lag = c->lag;
    pthread_mutex_unlock(&c->mu);
    dead_letter_counts d = dead_letter_sink_counts(c->dead);
    s->messages = atomic_load(&c->messages);
    s->rows = atomic_load(&c->rows);
    s->dead_kafka = d.kafka;
    s->dead_file = d.file;
    s->lost = atomic_load(&c->lost);
    s->lost_events = atomic_load(&c->lost_events);
    s->replayed = atomic_load(&c->replayed);
    s->pauses = atomic_load(&c->pauses);
    s->errors = atomic_load(&c->errors) + d.errors;
    s->resets = atomic_load(&c->resets);
    s->unknown_events = atomic_load(&c->unknown_events);
}

void kafka_ingest_metrics(kafka_ingest *k, bytebuf *out)
{
    pthread_mutex_lock(&k->mu);
    size_t n = 0;
    for (kafka_consumer *c = k->list; c; c = c->next)
        n++;
    kafka_stats *stats = n ? malloc(sizeof *stats * n) : NULL;
    if (n && !stats) {
        pthread_mutex_unlock(&k->mu);
        out->oom = true;
        return;
    }
    size_t i = 0;
    for (kafka_consumer *c = k->list; c; c = c->next)
        consumer_stats(c, &stats[i++]);
    pthread_mutex_unlock(&k->mu);
    kafka_metrics_render(stats, n, out);
    free(stats);
}

/* Appends one sentence to arr. */
static void add_problem(json_t *arr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_problem(json_t *arr, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    json_array_append_new(arr, json_string(line));
}

void kafka_ingest_problems(kafka_ingest *k, json_t *out)
{
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->nfails; i++)
        add_problem(out, "table %s does not consume Kafka: %s", k->fails[i].name, k->fails[i].why);
    for (kafka_consumer *c = k->list; c; c = c->next) {
        pthread_mutex_lock(&c->mu);
        if (c->degraded[0])
            add_problem(out, "%s", c->degraded);
        if (atomic_load(&c->unreachable))
            add_problem(out, "table %s cannot reach its Kafka brokers (%s)", c->name, c->brokers);
        for (int32_t p = 0; p < c->nparts; p++)
            if (c->parts[p].assigned && c->parts[p].stopped)
                add_problem(out,
                            "table %s: partition %d of %s is stopped: its offsets went backwards (table "
                            "at %" PRId64 ", broker ends at %" PRId64 "); POST /tables/%s/kafka/accept-reset "
                            "reads it as new data",
                            c->name, (int)p, c->topic, c->parts[p].stop_at, c->parts[p].stop_hi, c->name);
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_unlock(&k->mu);
}

void kafka_ingest_table_json(kafka_ingest *k, const char *name, json_t *obj)
{
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->nfails; i++)
        if (strcmp(k->fails[i].name, name) == 0)
            json_object_set_new(obj, "kafka", json_pack("{s:s, s:s}", "state", "not consuming", "error",
                                                        k->fails[i].why));
    kafka_consumer *c = find_consumer(k, name);
    if (c) {
        json_t *parts = json_array(), *stopped = json_array();
        pthread_mutex_lock(&c->mu);
        for (int32_t p = 0; p < c->nparts; p++) {
            kafka_part *ps = &c->parts[p];
            if (!ps->assigned)
                continue;
            json_t *e = json_pack("{s:i, s:o}", "partition", (int)p, "position",
                                  ps->pos >= 0 ? json_integer(ps->pos) : json_null());
            if (ps->epoch)
                json_object_set_new(e, "offset_epoch", json_integer(ps->epoch));
            if (ps->stopped) {
                json_object_set_new(e, "stopped", json_string("offsets went backwards"));
                json_array_append_new(stopped, json_integer(p));
            }
            json_array_append_new(parts, e);
        }
        dead_letter_counts dead = dead_letter_sink_counts(c->dead);
        const char *state = atomic_load(&c->unreachable) ? "brokers unreachable"
                            : !c->assigned_once          ? "assigning"
                            : json_array_size(stopped)   ? "partly stopped"
                                                         : "consuming";
        json_t *j = json_pack("{s:s, s:s, s:s, s:o, s:o, s:I, s:I, s:I, s:I}", "topic", c->topic, "group",
                              c->group, "state", state, "partitions", parts, "lag",
                              c->lag >= 0 ? json_integer(c->lag) : json_null(), "rows",
                              (json_int_t)atomic_load(&c->rows), "dead_letters",
                              (json_int_t)(dead.kafka + dead.file),
                              "lost_messages", (json_int_t)atomic_load(&c->lost), "replayed_rows_skipped",
                              (json_int_t)atomic_load(&c->replayed));
        if (json_array_size(stopped))
            json_object_set_new(j, "stopped_partitions", stopped);
        else
            json_decref(stopped);
        if (c->degraded[0])
            json_object_set_new(j, "degraded", json_string(c->degraded));
        pthread_mutex_unlock(&c->mu);
        json_object_set_new(obj, "kafka", j);
    }
    pthread_mutex_unlock(&k->mu);
}
