/*
 * api_ingest.c — POST /ingest/{table}: an NDJSON body whose rows are all durable, or none
 * kept, before the answer.
 *
 * The reading is ingest's job (ingest/http_ingest.h): this file holds the table from the
 * headers on, hands it the body's pieces as MHD delivers them, and at the end lands the
 * rows (http_ingest_finish: one append, all or nothing, written to the table's log).
 * Then the request waits, suspended, for the log to be durable (ingest_commit.h: one
 * fdatasync for every request waiting), and only then answers with what
 * ingest/ndjson_answer.h gathered, so an acknowledged row survives kill -9 and an error
 * answer (413, a dropped table, a memory limit) leaves nothing behind. No request writes
 * a segment: memtables are flushed by size and age. What the request holds of its table
 * (its batch, its decoder, the reference) is let go before the answer goes out: a client
 * that drops the table right after its answer finds it gone at once, files included.
 */
#include "http/api.h"

#include <inttypes.h>

#include "engine/table.h"
#include "ingest/http_ingest.h"

bool api_ingest_begin(request *rq)
{
    rq->t = catalog_get(rq->s->cat, rq->table);
    if (!rq->t)
        return true; /* answered 404 when the body has arrived */
    strata_err err = {0};
    return http_ingest_begin(&rq->ingest, &rq->s->ingest, rq->t, &err) == 0;
}

void api_ingest_piece(request *rq, const char *data, size_t len)
{
    rq->body.len += len; /* counts bytes for the limit only */
    http_ingest_feed(&rq->ingest, data, len);
}

void api_ingest_refuse(request *rq)
{
    http_ingest_abort(&rq->ingest);
}

void api_ingest_release(request *rq)
{
    http_ingest_end(&rq->ingest);
    catalog_put(rq->s->cat, rq->t);
    rq->t = NULL;
}

static unsigned status_of_fault(http_ingest_fault f)
{
    switch (f) {
    case HTTP_INGEST_ABORTED: return 413;
    case HTTP_INGEST_BAD_ROWS: return 400;
    case HTTP_INGEST_NO_TABLE: return 404;
    case HTTP_INGEST_RETRY: return 503;
    default: return 500;
    }
}

enum MHD_Result api_ingest_post(strata_server *s, struct MHD_Connection *c, request *rq,
                                const char *method)
{
    (void)method;
    if (!rq->t)
        return api_tables_send_missing(s, c, rq->table, "");
    const ndjson_answer *a = &rq->ingest.answer;
    atomic_fetch_add(&s->ingest_requests, 1);
    uint64_t n;
    http_ingest_fault fault = http_ingest_finish(&rq->ingest, &n);
    atomic_fetch_add(&s->rows_rejected, a->rejected);
    if (a->rejected) /* a count lost to a failed allocation only shows less */
        table_counts_add(&s->rejected_by_table, rq->table, a->rejected, NULL);
    if (fault) {
        api_ingest_release(rq);
        return reply_error(s, c, status_of_fault(fault), "%s", rq->ingest.fail.msg);
    }
    atomic_fetch_add(&s->rows_ingested, n);
    if (n)
        table_counts_add(&s->ingested_by_table, rq->table, n, NULL);
    if (a->unknown_lines) /* a count lost to a failed allocation only shows less */
        table_counts_add(&s->unknown_field_events, rq->table, a->unknown_lines, NULL);
    json_t *answer = ndjson_answer_json(a, n, table_schema(rq->t));
    uint64_t lsn = rq->ingest.lsn;
    http_ingest_end(&rq->ingest); /* its rows are in the table: let the batch go now */
    if (lsn && !table_log_durable(rq->t, lsn)) {
        rq->answer = answer;
        rq->answer_rows = n;
        rq->durable_wait = true;
        if (ingest_commit_wait(s->commit, c, rq->t, lsn, &rq->durable))
            return MHD_YES; /* answered by api_ingest_durable once resumed */
        rq->durable.rc = table_log_sync(rq->t, lsn, &rq->durable.err);
        return api_ingest_durable(s, c, rq);
    }
    api_ingest_release(rq);
    return reply_json(s, c, 200, answer);
}

enum MHD_Result api_ingest_durable(strata_server *s, struct MHD_Connection *c, request *rq)
{
    json_t *answer = rq->answer;
    rq->answer = NULL;
    rq->durable_wait = false;
    api_ingest_release(rq);
    if (rq->durable.rc) {
        json_decref(answer);
        /* The rows are in the table's memory, but the log that makes them durable failed
         * (the table now refuses writes until a restart): the sender cannot know whether
         * they survive a crash. */
        return reply_error(s, c, 500, "the %" PRIu64 " rows were appended but could not be made durable "
                                 "(%s); the table refuses writes until strata restarts: after the restart, "
                                 "count what arrived before sending them again", rq->answer_rows,
                                 rq->durable.err.msg);
    }
    return reply_json(s, c, 200, answer);
}
