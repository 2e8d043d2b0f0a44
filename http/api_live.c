/*
 * api_live.c — GET /query/live?q=<query>&every=<duration>: a query's fresh answer pushed
 * on every tick as server-sent events (text/event-stream), for live charts (the console)
 * and any dashboard:
 *
 *   event: answer            data: <the answer of POST /query, one line of JSON>
 *   event: error             data: {"error": "..."} (a tick that failed; the stream goes on)
 *   : keep-alive             (a comment, twice a second apart, after 15 s without an
 *                            event: a client that went away is noticed within 16 s)
 *
 * q is a query of POST /query's language (URL-encoded JSON); times such as "now-15m" are
 * read again at every tick, so the range moves. Up to 16 q in one stream (one connection
 * for a page of charts: browsers allow six per host): each tick then sends every query's
 * event, in order, each answer (or error) with "q": its index first. Other parameters
 * are refused. every is 250ms to 1h, default 1s. The
 * query is checked before the stream starts: a bad one is answered 400 (404 for a table
 * that does not exist), as POST /query would. At most LIVE_MAX_STREAMS streams run at
 * once (429 past it, with Retry-After).
 *
 * How: one thread (the ticker) runs every stream's query when it is due, through
 * api_query_run, and keeps the newest event for the stream (an event not yet sent is
 * replaced by a newer one: a slow client gets the latest answer, never a backlog). The
 * connection's content reader hands out what is there; when there is nothing it suspends
 * the connection (libmicrohttpd's suspend/resume) and the ticker resumes it when an event
 * arrives: no MHD thread ever waits. Both sides take the stream's lock, so a resume never
 * comes before its suspend. A client that went away is noticed at the next event (the
 * write fails; libmicrohttpd frees the response, and the stream with it). At stop, every
 * stream is ended (its reader answers the end of the stream) before libmicrohttpd stops.
 *
 * Memory: a stream is shared by its response and the ticker's list (two references);
 * whichever lets go last frees it.
 */
#include "http/api.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/clock.h"
#include "engine/table.h"
#include "engine/units.h"
#include "http/query_answer.h"
#include "http/query_parse.h"

#define LIVE_MIN_EVERY_MS 250
#define LIVE_MAX_EVERY_MS 3600000
#define LIVE_DEFAULT_EVERY_MS 1000
#define LIVE_MAX_QUERIES 16 /* q parameters one stream may carry */
#define LIVE_KEEPALIVE_MS 15000 /* a comment line this long after the last event: a client
                                 * that went away is noticed even with every=1h */

typedef struct live_stream {
    struct live_stream *next; /* the ticker's list */
    struct MHD_Connection *c;
    int nq;            /* queries of the stream; with more than one, answers carry "q" */
    char *query[LIVE_MAX_QUERIES];  /* their texts (malloc'd) */
    char table[LIVE_MAX_QUERIES][STRATA_NAME_MAX + 1];
    int64_t every_ms, due_ms, quiet_until_ms; /* no event until quiet_until: a keep-alive */
    pthread_mutex_t lock;
    char *sending;     /* the event being written: sending[sent..sending_len) left */
    size_t sending_len, sent;
    char *pending;     /* the newest event not yet begun (replaced by a newer one) */
    size_t pending_len;
    bool suspended, ended, gone;
    bool probe;        /* the first keep-alive of a pair was sent (the ticker's) */
    int refs;
} live_stream;

struct live_streams {
    strata_server *s;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    live_stream *list;
    int count;
    bool stop;
};

static void stream_unref(live_stream *st)
{
    pthread_mutex_lock(&st->lock);
    bool last = --st->refs == 0;
    pthread_mutex_unlock(&st->lock);
    if (!last)
        return;
    pthread_mutex_destroy(&st->lock);
    for (int i = 0; i < st->nq; i++)
        free(st->query[i]);
    free(st->sending);
    free(st->pending);
    free(st);
}

/* Hands the newest event to the stream (taken over) and wakes its connection. */
static void stream_push(live_stream *st, char *event, size_t len)
{
    pthread_mutex_lock(&st->lock);
    free(st->pending);
    st->pending = event;
    st->pending_len = len;
    if (st->suspended) {
        st->suspended = false;
        MHD_resume_connection(st->c);
    }
    pthread_mutex_unlock(&st->lock);
}

/* Ends the stream: its reader answers the end once what was begun is written. */
static void stream_end(live_stream *st)
{
    pthread_mutex_lock(&st->lock);
    st->ended = true;
    if (st->suspended) {
        st->suspended = false;
        MHD_resume_connection(st->c);
    }
    pthread_mutex_unlock(&st->lock);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    live_stream *st = cls;
    pthread_mutex_lock(&st->lock);
    if (st->sent == st->sending_len && st->pending) {
        free(st->sending);
        st->sending = st->pending;
        st->sending_len = st->pending_len;
        st->sent = 0;
        st->pending = NULL;
    }
    ssize_t n;
    if (st->sent < st->sending_len) {
        size_t k = st->sending_len - st->sent;
        if (k > max)
            k = max;
        memcpy(buf, st->sending + st->sent, k);
        st->sent += k;
        n = (ssize_t)k;
    } else if (st->ended) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        st->suspended = true;
        MHD_suspend_connection(st->c);
        n = 0;
    }
    pthread_mutex_unlock(&st->lock);
    return n;
}

/* libmicrohttpd is done with the response: the client went away, or the stream ended. */
static void stream_release(void *cls)
{
    live_stream *st = cls;
    pthread_mutex_lock(&st->lock);
    st->gone = true;
    pthread_mutex_unlock(&st->lock);
    stream_unref(st);
}

/* One query of st (index i) run: its answer, or error, as an event; NULL when memory
 * runs out. With several queries the data starts with "q": i. */
static char *query_event(strata_server *s, live_stream *st, int i, size_t *len)
{
    strata_err err = {0};
    char *text = NULL;
    size_t n = 0;
    strata_table *t = catalog_get(s->cat, st->table[i]);
    if (!t) {
        strata_err_set(&err, STRATA_ENOTFOUND, "table: no table '%s' (it was dropped)", st->table[i]);
    } else {
        double t0 = clock_mono_ms_frac();
        strata_query q;
        query_result *r;
        int rc = api_query_run(s, t, st->query[i], strlen(st->query[i]), &q, &r, &err);
        catalog_put(s->cat, t);
        api_query_count(s, t0, rc != 0);
        if (!rc) {
            text = query_answer_json(r, &q, &n);
            query_result_free(r);
            query_free(&q);
            if (!text)
                strata_err_set(&err, STRATA_ENOMEM, "out of memory writing the answer");
        }
    }
    const char *kind = text ? "answer" : "error";
    if (!text)
        text = query_answer_error(err.msg, &n);
    if (!text)
        return NULL;
    size_t cap = n + 64;
    char *event = malloc(cap);
    if (event) {
        int k = st->nq > 1 ? snprintf(event, cap, "event: %s\ndata: {\"q\":%d,%s\n\n", kind, i, text + 1)
                           : snprintf(event, cap, "event: %s\ndata: %s\n\n", kind, text);
        *len = (size_t)k;
    }
    free(text);
    return event;
}

/* One tick of st: every query's event, in order, as one piece to send. */
static void stream_tick(strata_server *s, live_stream *st)
{
    bytebuf b = {0};
    for (int i = 0; i < st->nq; i++) {
        size_t n = 0;
        char *e = query_event(s, st, i, &n);
        if (e)
            buf_put(&b, e, n);
        free(e);
    }
    if (b.oom || !b.len) {
        buf_free(&b);
        return;
    }
    stream_push(st, (char *)b.data, b.len); /* taken over */
}

static void *ticker(void *arg)
{
    live_streams *ls = arg;
    pthread_mutex_lock(&ls->lock);
    while (!ls->stop) {
        int64_t now = clock_mono_ms(), next = now + 1000;
        /* drop the streams whose clients went away; collect the due ones */
        live_stream *due[LIVE_MAX_STREAMS];
        int ndue = 0;
        for (live_stream **p = &ls->list; *p;) {
            live_stream *st = *p;
            pthread_mutex_lock(&st->lock);
            bool gone = st->gone, is_due = !gone && st->due_ms <= now && ndue < LIVE_MAX_STREAMS;
            if (is_due)
                st->refs++; /* held while the tick runs without the list's lock */
            pthread_mutex_unlock(&st->lock);
            if (gone) {
                *p = st->next;
                ls->count--;
                stream_unref(st);
                continue;
            }
            if (is_due) {
                due[ndue++] = st;
                st->due_ms = now + st->every_ms;
                st->quiet_until_ms = now + LIVE_KEEPALIVE_MS;
            } else if (!gone && st->quiet_until_ms <= now) {
                static const char keepalive[] = ": keep-alive\n\n";
                char *ka = malloc(sizeof keepalive);
                if (ka) {
                    memcpy(ka, keepalive, sizeof keepalive);
                    stream_push(st, ka, sizeof keepalive - 1);
                }
                /* in pairs a second apart: a write to a connection the client closed
                 * only fails once the peer's reset came back for the one before */
                st->probe = !st->probe;
                st->quiet_until_ms = now + (st->probe ? 1000 : LIVE_KEEPALIVE_MS);
            }
            if (st->due_ms < next)
                next = st->due_ms;
            if (st->quiet_until_ms < next)
                next = st->quiet_until_ms;
            p = &st->next;
        }
        pthread_mutex_unlock(&ls->lock);
        for (int i = 0; i < ndue; i++) {
            stream_tick(ls->s, due[i]);
            stream_unref(due[i]);
        }
        pthread_mutex_lock(&ls->lock);
        if (ls->stop)
            break;
        int64_t wait = next - clock_mono_ms();
        if (wait > 0) {
            struct timespec until = clock_after_ms(CLOCK_REALTIME, wait);
            pthread_cond_timedwait(&ls->wake, &ls->lock, &until);
        }
    }
    pthread_mutex_unlock(&ls->lock);
    return NULL;
}

int live_streams_start(strata_server *s, live_streams **out, strata_err *err)
{
    live_streams *ls = calloc(1, sizeof *ls);
    if (!ls)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    ls->s = s;
    pthread_mutex_init(&ls->lock, NULL);
    pthread_cond_init(&ls->wake, NULL);
    if (pthread_create(&ls->thread, NULL, ticker, ls) != 0) {
        pthread_mutex_destroy(&ls->lock);
        pthread_cond_destroy(&ls->wake);
        free(ls);
        return strata_err_set(err, STRATA_EIO, "cannot start the live query thread");
    }
    pthread_setname_np(ls->thread, "live-queries");
    *out = ls;
    return 0;
}

void live_streams_end(live_streams *ls)
{
    if (!ls)
        return;
    pthread_mutex_lock(&ls->lock);
    ls->stop = true;
    pthread_cond_signal(&ls->wake);
    pthread_mutex_unlock(&ls->lock);
    pthread_join(ls->thread, NULL);
    for (live_stream *st = ls->list; st; st = st->next)
        stream_end(st);
}

void live_streams_free(live_streams *ls)
{
    if (!ls)
        return;
    for (live_stream *st = ls->list, *nx; st; st = nx) {
        nx = st->next;
        stream_unref(st);
    }
    pthread_mutex_destroy(&ls->lock);
    pthread_cond_destroy(&ls->wake);
    free(ls);
}

int live_streams_count(live_streams *ls)
{
    pthread_mutex_lock(&ls->lock);
    int n = ls->count;
    pthread_mutex_unlock(&ls->lock);
    return n;
}

/* The GET arguments: every q, every and the names of any other (for the error). */
typedef struct live_args {
    const char *q[LIVE_MAX_QUERIES + 1];
    int nq;
    const char *every;
    char unknown[64];
} live_args;

static enum MHD_Result live_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    live_args *a = cls;
    if (strcmp(key, "q") == 0) {
        if (a->nq <= LIVE_MAX_QUERIES)
            a->q[a->nq++] = value;
    } else if (strcmp(key, "every") == 0) {
        a->every = value;
    } else if (!a->unknown[0]) {
        snprintf(a->unknown, sizeof a->unknown, "%s", key);
    }
    return MHD_YES;
}

enum MHD_Result api_live_get(strata_server *s, struct MHD_Connection *c, request *rq, const char *method)
{
    (void)rq;
    live_args a = {0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, live_arg, &a);
    if (a.unknown[0])
        return reply_error(s, c, 400, "unknown parameter '%s' (GET /query/live takes q, one or more, and "
                                 "every)", a.unknown);
    if (a.nq == 0 || !a.q[0] || !*a.q[0])
        return reply_error(s, c, 400, "q: the query is required (GET /query/live?q=<URL-encoded query "
                                 "JSON>&every=1s)");
    if (a.nq > LIVE_MAX_QUERIES)
        return reply_error(s, c, 400, "q: at most %d queries in one stream", LIVE_MAX_QUERIES);
    int64_t every_ms = LIVE_DEFAULT_EVERY_MS;
    if (a.every && (units_parse_duration_ms(a.every, &every_ms) != 0 || every_ms < LIVE_MIN_EVERY_MS ||
                    every_ms > LIVE_MAX_EVERY_MS))
        return reply_error(s, c, 400, "every: '%s' is not a duration from 250ms to 1h (such as 1s, 5s)",
                           a.every);
    live_stream *st = calloc(1, sizeof *st);
    if (!st)
        return reply_error(s, c, 503, "out of memory");
    pthread_mutex_init(&st->lock, NULL);
    st->refs = 1;
    for (int i = 0; i < a.nq; i++) {
        const char *q = a.q[i] ? a.q[i] : "";
        strata_err err = {0};
        char name[STRATA_NAME_MAX + 1], where[16] = "q";
        if (a.nq > 1)
            snprintf(where, sizeof where, "q[%d]", i);
        if (query_parse_table_name(q, strlen(q), name, sizeof name, &err) != 0) {
            stream_unref(st);
            return reply_error(s, c, 400, "%s: %s", where, err.msg);
        }
        strata_table *t = catalog_get(s->cat, name);
        if (!t) {
            stream_unref(st);
            return api_tables_send_missing(s, c, name, "table: ");
        }
        strata_query sq;
        int prc = query_parse_json(q, strlen(q), table_schema(t), clock_wall_ms(), &sq, &err);
        catalog_put(s->cat, t);
        if (prc != 0) {
            stream_unref(st);
            return reply_error(s, c, reply_status_of(prc), "%s: %s", where, err.msg);
        }
        query_free(&sq);
        if (!(st->query[i] = strdup(q))) {
            stream_unref(st);
            return reply_error(s, c, 503, "out of memory");
        }
        st->nq = i + 1;
        snprintf(st->table[i], sizeof st->table[i], "%s", name);
    }
    if (strcmp(method, "HEAD") == 0) {
        stream_unref(st);
        return reply_text(s, c, 200, NULL, 0, "text/event-stream");
    }
    live_streams *ls = s->live;
    st->c = c;
    st->every_ms = every_ms;
    st->refs = 2; /* the response and the ticker's list */
    pthread_mutex_lock(&ls->lock);
    if (ls->count >= LIVE_MAX_STREAMS || ls->stop) {
        bool full = !ls->stop;
        pthread_mutex_unlock(&ls->lock);
        st->refs = 1;
        stream_unref(st);
        static const char *const retry[] = {"Retry-After", "10", NULL};
        if (full)
            return reply_error_with(s, c, 429, retry, "%d live queries run already (the most there may "
                                    "be): close one, or poll POST /query", LIVE_MAX_STREAMS);
        return reply_error(s, c, 503, "strata is stopping");
    }
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, st,
                                                               stream_release);
    if (!r) {
        pthread_mutex_unlock(&ls->lock);
        st->refs = 1;
        stream_unref(st);
        return reply_error(s, c, 503, "out of memory");
    }
    st->due_ms = clock_mono_ms(); /* the first answer at once */
    st->quiet_until_ms = st->due_ms + LIVE_KEEPALIVE_MS;
    st->next = ls->list;
    ls->list = st;
    ls->count++;
    pthread_cond_signal(&ls->wake);
    pthread_mutex_unlock(&ls->lock);
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    enum MHD_Result ok = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r); /* the connection holds it; stream_release runs when it is done */
    atomic_fetch_add(&s->status_count[2], 1);
    return ok;
}
