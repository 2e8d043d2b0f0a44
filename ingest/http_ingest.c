/*
 * http_ingest.c — an NDJSON request body into rows, all or nothing (see http_ingest.h).
 *
 * Pieces are split at newlines as they come; a line cut by a piece's end waits in the
 * carry buffer, which never grows past INGEST_LINE_MAX: a longer line is only counted to
 * its newline and refused. Each decoded line adds to the request's row batch, whose bytes
 * are counted at once against the pool's budget. A failure gives the batch back to the
 * pool straight away, so a refused request holds no memory while its body drains.
 */
#include "ingest/http_ingest.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ingest/late_events.h"

/* Lines up to this long are handed to the decoder (which trims blanks and applies the
 * event limit itself); longer ones are skipped as they stream. */
#define INGEST_LINE_MAX (EVENT_JSON_MAX_BYTES + 64)

void http_ingest_pool_init(http_ingest_pool *p, uint64_t memory_limit)
{
    memset(p, 0, sizeof *p);
    p->memory_limit = memory_limit;
    pthread_mutex_init(&p->lock, NULL);
}

void http_ingest_pool_destroy(http_ingest_pool *p)
{
    for (int i = 0; i < p->nkept; i++)
        row_batch_free(&p->kept[i].b);
    p->nkept = 0;
    pthread_mutex_destroy(&p->lock);
}

/* A row batch for schema: a warm one from the pool when one fits, else a new one. */
static int batch_take(http_ingest_pool *p, const strata_schema *sc, row_batch *out)
{
    pthread_mutex_lock(&p->lock);
    for (int i = p->nkept - 1; i >= 0; i--) {
        http_ingest_kept *k = &p->kept[i];
        bool same = k->ncols == sc->ncols;
        for (int c = 0; same && c < sc->ncols; c++)
            same = k->types[c] == sc->cols[c].type;
        if (same) {
            *out = k->b;
            *k = p->kept[--p->nkept];
            pthread_mutex_unlock(&p->lock);
            row_batch_rebind(out, sc);
            return 0;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return row_batch_init(out, sc, 1024);
}

/* Gives a request's batch back (while its table is still held, so its schema is valid):
 * kept for the next request, or freed. */
static void batch_give(http_ingest_pool *p, row_batch *b)
{
    if (row_batch_mem_bytes(b) <= HTTP_INGEST_POOL_BATCH_MAX) {
        pthread_mutex_lock(&p->lock);
        if (p->nkept < HTTP_INGEST_POOL_MAX) {
            http_ingest_kept *k = &p->kept[p->nkept++];
            k->ncols = b->schema->ncols;
            for (int c = 0; c < k->ncols; c++)
                k->types[c] = b->schema->cols[c].type;
            row_batch_clear(b);
            b->schema = NULL; /* nothing may follow it from here */
            k->b = *b;
            pthread_mutex_unlock(&p->lock);
            return;
        }
        pthread_mutex_unlock(&p->lock);
    }
    row_batch_free(b);
}

/* Lets the request's rows go: its batch back to the pool, its bytes off the budget. */
static void let_rows_go(http_ingest *in)
{
    if (in->batch_ready) {
        batch_give(in->pool, &in->batch);
        in->batch_ready = false;
    }
    if (in->pool)
        atomic_fetch_sub(&in->pool->staged, in->staged_bytes);
    in->staged_bytes = 0;
}

/* Ends the request with fault (the first failure wins); its staged rows go at once. */
static void fail_with(http_ingest *in, http_ingest_fault fault)
{
    if (in->fault)
        return;
    in->fault = fault;
    let_rows_go(in);
}

int http_ingest_begin(http_ingest *in, http_ingest_pool *pool, strata_table *t, strata_err *err)
{
    memset(in, 0, sizeof *in);
    in->pool = pool;
    in->t = t;
    if (!(in->decoder = event_decoder_create(table_schema(t), err)))
        return STRATA_ENOMEM; /* err filled */
    int rc = batch_take(pool, table_schema(t), &in->batch);
    if (rc != 0)
        return strata_err_set(err, rc, "out of memory");
    in->batch_ready = true;
    return ndjson_answer_init(&in->answer, err);
}

/* Counts the bytes of the request's rows against the pool's budget; false (request
 * failed) when that is over its limit. */
static bool account(http_ingest *in)
{
    uint64_t now = row_batch_used_bytes(&in->batch);
    if (now <= in->staged_bytes)
        return true;
    uint64_t delta = now - in->staged_bytes;
    uint64_t total = atomic_fetch_add(&in->pool->staged, delta) + delta;
    in->staged_bytes = now;
    if (total <= in->pool->memory_limit)
        return true;
    strata_err_set(&in->fail, STRATA_EFULL,
                   "ingest requests being received hold %" PRIu64 " bytes, over the server's "
                   "ingest_memory of %" PRIu64 "; none of this request's rows were kept: retry, "
                   "send smaller requests, or raise the limit (strata serve --ingest-memory, or "
                   "ingest_memory in the config)",
                   total, in->pool->memory_limit);
    fail_with(in, HTTP_INGEST_RETRY);
    return false;
}

static void decode_line(http_ingest *in, const char *p, size_t n)
{
    if (++in->line_no == 1 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3; /* a UTF-8 byte order mark (Windows tools write one) is not data */
        n -= 3;
    }
    while (n && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    size_t skip = 0;
    while (skip < n && (p[skip] == ' ' || p[skip] == '\t'))
        skip++;
    if (skip == n) {
        ndjson_answer_blank(&in->answer); /* counted, not an event */
        return;
    }
    strata_err err = {0};
    int rc = event_decoder_decode_reporting(in->decoder, p + skip, n - skip, &in->batch,
                                            ndjson_answer_sink(&in->answer), &err);
    if (rc == STRATA_ENOMEM) {
        in->fail = err;
        fail_with(in, HTTP_INGEST_RETRY);
        return;
    }
    if (rc == 0 && late_event_check(in->t, in->batch.i[table_schema(in->t)->time_col][in->batch.nrows - 1], &err)) {
        row_batch_pop_row(&in->batch);
        rc = STRATA_EINVAL;
    }
    if (rc) {
        ndjson_answer_reject(&in->answer, in->line_no, err.msg);
        return;
    }
    ndjson_answer_landed(&in->answer, in->line_no);
    account(in);
}

/* A line longer than any event may be, of n bytes: refused without keeping it. */
static void refuse_long_line(http_ingest *in, uint64_t n)
{
    in->line_no++;
    char msg[128];
    snprintf(msg, sizeof msg, "event of %" PRIu64 " bytes is over the limit of %u", n, EVENT_JSON_MAX_BYTES);
    ndjson_answer_reject(&in->answer, in->line_no, msg);
}

void http_ingest_feed(http_ingest *in, const char *data, size_t len)
{
    size_t start = 0;
    const char *nl;
    while (start < len && !in->fault && (nl = memchr(data + start, '\n', len - start)) != NULL) {
        size_t i = (size_t)(nl - data), n = i - start;
        if (in->long_line) {
            refuse_long_line(in, in->long_len + n);
            in->long_line = false;
            in->long_len = 0;
        } else if (in->carry.len) {
            buf_put(&in->carry, data + start, n); /* fits: the carry stays under the limit */
            decode_line(in, (const char *)in->carry.data, in->carry.len);
            in->carry.len = 0;
        } else {
            decode_line(in, data + start, n);
        }
        start = i + 1;
    }
    if (start < len && !in->fault) {
        size_t n = len - start;
        if (in->long_line) {
            in->long_len += n;
        } else if (in->carry.len + n > INGEST_LINE_MAX) {
            in->long_line = true; /* count it, keep none of it */
            in->long_len = in->carry.len + n;
            in->carry.len = 0;
        } else {
            buf_put(&in->carry, data + start, n);
        }
    }
    if (in->carry.oom && !in->fault) {
        strata_err_set(&in->fail, STRATA_ENOMEM, "out of memory");
        fail_with(in, HTTP_INGEST_RETRY);
    }
}

void http_ingest_abort(http_ingest *in)
{
    fail_with(in, HTTP_INGEST_ABORTED);
}

http_ingest_fault http_ingest_finish(http_ingest *in, uint64_t *rows)
{
    *rows = 0;
    if (!in->fault && in->long_line)
        refuse_long_line(in, in->long_len);
    else if (!in->fault && in->carry.len)
        decode_line(in, (const char *)in->carry.data, in->carry.len);
    in->carry.len = 0;
    uint64_t n = in->fault ? 0 : in->batch.nrows;
    if (in->fault || n == 0)
        return in->fault;
    /* One append: every row of the request lands, or none does. */
    int rc = table_append_logged(in->t, &in->batch, &in->lsn, &in->fail);
    if (rc == STRATA_EFULL && table_flush(in->t, true, &in->fail) == 0)
        rc = table_append_logged(in->t, &in->batch, &in->lsn, &in->fail);
    if (rc == STRATA_ENOTFOUND) {
        strata_err_set(&in->fail, rc, "table '%s' was dropped while this request was being "
                       "received; none of its rows were kept", table_schema(in->t)->name);
        fail_with(in, HTTP_INGEST_NO_TABLE);
    } else if (rc) {
        fail_with(in, rc == STRATA_EINVAL ? HTTP_INGEST_BAD_ROWS
                      : rc == STRATA_EFULL || rc == STRATA_ENOMEM || table_failure(in->t, NULL, 0)
                          ? HTTP_INGEST_RETRY
                          : HTTP_INGEST_FAILED);
        strata_err_prefix(&in->fail, "none of this request's %" PRIu64 " rows were kept", n);
    } else {
        *rows = n;
    }
    return in->fault;
}

void http_ingest_end(http_ingest *in)
{
    let_rows_go(in);
    event_decoder_free(in->decoder);
    in->decoder = NULL;
    buf_free(&in->carry);
    ndjson_answer_free(&in->answer);
}
