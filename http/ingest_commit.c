/*
 * ingest_commit.c — the committer of ingest_commit.h: a queue of suspended ingest
 * requests and one thread that syncs their tables' logs and resumes them.
 *
 * A round: take the whole queue (swap it for an empty one under the lock), sync each
 * table once up to the highest record any of its requests waits for, then write every
 * request's outcome and resume its connection. The queue's array is reused between
 * rounds; it grows as needed and never shrinks.
 */
#include "http/ingest_commit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct waiter {
    struct MHD_Connection *c;
    strata_table *t;
    uint64_t lsn;
    ingest_commit_outcome *out;
} waiter;

struct ingest_commit {
    pthread_mutex_t lock;
    pthread_cond_t more;
    pthread_t thread;
    waiter *q, *spare;   /* the queue and the array a round works on */
    size_t n, cap, spare_cap;
    bool stop, stopped;
};

/* Syncs the tables of w[0..n) and resumes every connection. */
static void round_run(waiter *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!w[i].out)
            continue; /* its table was synced with an earlier one of this round */
        strata_table *t = w[i].t;
        uint64_t top = w[i].lsn;
        for (size_t j = i + 1; j < n; j++)
            if (w[j].t == t && w[j].lsn > top)
                top = w[j].lsn;
        strata_err err = {0};
        int rc = table_log_sync(t, top, &err);
        for (size_t j = i; j < n; j++) {
            if (w[j].t != t || !w[j].out)
                continue;
            w[j].out->rc = rc;
            if (rc)
                w[j].out->err = err;
            w[j].out = NULL;
            MHD_resume_connection(w[j].c);
        }
    }
}

static void *committer(void *arg)
{
    ingest_commit *q = arg;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (q->n == 0 && !q->stop)
            pthread_cond_wait(&q->more, &q->lock);
        if (q->n == 0)
            break; /* stop, and nothing left */
        waiter *w = q->q;
        size_t n = q->n, cap = q->cap;
        q->q = q->spare;
        q->cap = q->spare_cap;
        q->n = 0;
        pthread_mutex_unlock(&q->lock);
        round_run(w, n);
        pthread_mutex_lock(&q->lock);
        q->spare = w;
        q->spare_cap = cap;
    }
    q->stopped = true;
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

int ingest_commit_start(ingest_commit **out, strata_err *err)
{
    *out = NULL;
    ingest_commit *q = calloc(1, sizeof *q);
    if (!q)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->more, NULL);
    if (pthread_create(&q->thread, NULL, committer, q) != 0) {
        pthread_mutex_destroy(&q->lock);
        pthread_cond_destroy(&q->more);
        free(q);
        return strata_err_set(err, STRATA_EIO, "cannot start the ingest committer thread");
    }
    pthread_setname_np(q->thread, "ingest-commit");
    *out = q;
    return 0;
}

bool ingest_commit_wait(ingest_commit *q, struct MHD_Connection *c, strata_table *t, uint64_t lsn,
                        ingest_commit_outcome *out)
{
    pthread_mutex_lock(&q->lock);
    if (q->stop || q->stopped) {
        pthread_mutex_unlock(&q->lock);
        return false;
    }
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        waiter *nq = realloc(q->q, sizeof *nq * cap);
        if (!nq) {
            pthread_mutex_unlock(&q->lock);
            return false;
        }
        q->q = nq;
        q->cap = cap;
    }
    /* Suspended before it is queued: the committer may resume it at once. */
    MHD_suspend_connection(c);
    q->q[q->n++] = (waiter){c, t, lsn, out};
    pthread_cond_signal(&q->more);
    pthread_mutex_unlock(&q->lock);
    return true;
}

void ingest_commit_stop(ingest_commit *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->lock);
    q->stop = true;
    pthread_cond_signal(&q->more);
    pthread_mutex_unlock(&q->lock);
    pthread_join(q->thread, NULL);
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->more);
    free(q->q);
    free(q->spare);
    free(q);
}
