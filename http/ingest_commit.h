/*
 * ingest_commit.h — INTERNAL to http/: the acknowledgement of ingest requests once their
 * rows are durable, without holding an HTTP thread while the disk syncs.
 *
 * An ingest request whose rows went into a table's write-ahead log (table_append_logged)
 * is suspended (MHD_suspend_connection) and queued here with its log record number. One
 * committer thread takes everything queued, makes each table's log durable up to the
 * highest record queued for it (table_log_sync: one fdatasync for all of them), stores
 * the outcome in each request and resumes its connection; libmicrohttpd then calls the
 * request's handler again, which answers. Requests that arrive during a sync are taken
 * together by the next round: that is the group commit across requests.
 *
 * Threads: ingest_commit_wait from any of MHD's threads; the rest from the thread that
 * starts and stops the server. ingest_commit_stop resumes every queued request (after
 * its sync) before it returns, and from then on ingest_commit_wait refuses (the caller
 * syncs on its own thread), so libmicrohttpd can be stopped with no connection suspended.
 * Ownership: ingest_commit_start's committer is the caller's: ingest_commit_stop frees it.
 */
#ifndef STRATA_HTTP_INGEST_COMMIT_H
#define STRATA_HTTP_INGEST_COMMIT_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/error.h"
#include "engine/table.h"

typedef struct ingest_commit ingest_commit;

/* Where a queued request gets its outcome: rc (0: durable) and, on failure, err. */
typedef struct ingest_commit_outcome {
    int rc;
    strata_err err;
} ingest_commit_outcome;

/* Starts the committer thread. 0, or STRATA_ENOMEM / STRATA_EIO (err). */
int ingest_commit_start(ingest_commit **out /* OUT */, strata_err *err);
/* Suspends c (call from its access handler, which then returns MHD_YES) and queues it
 * until t's log is durable up to lsn; the outcome goes into *out, which must stay valid
 * until the connection is resumed. false (nothing done) when the committer is stopping
 * or memory runs out: the caller then syncs itself (table_log_sync). t stays held by the
 * caller until its handler runs again. */
bool ingest_commit_wait(ingest_commit *q, struct MHD_Connection *c, strata_table *t, uint64_t lsn,
                        ingest_commit_outcome *out);
/* Drains the queue (every request answered), stops the thread and frees q (NULL is
 * ignored). */
void ingest_commit_stop(ingest_commit *q);

#endif
