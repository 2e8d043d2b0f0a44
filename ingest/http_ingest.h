/*
 * http_ingest.h — the NDJSON body of one HTTP ingest request (POST /ingest/{table}) turned
 * into rows as its pieces arrive, and landed all or nothing when it ends. The HTTP side
 * (http/api_ingest.c) receives the request and answers it; nothing here knows HTTP.
 *
 * How a request goes: http_ingest_begin when the headers are in; http_ingest_feed for
 * every piece of the body: complete lines are decoded into the request's own row batch
 * (only a partial last line is carried to the next piece; a line over the event limit is
 * skipped to its newline, counting its bytes, and reported; a UTF-8 byte order mark at the
 * start is dropped); http_ingest_finish when the body has ended: the last line, then one
 * table_append that lands every row or none. Until then the rows are seen by no one, so
 * a request that fails (over the memory budget, a body the caller cut off with
 * http_ingest_abort, a dropped table) leaves nothing behind. Lines are counted from 1,
 * blank ones included; what the sender is told about them is gathered in .answer
 * (ingest/ndjson_answer.h).
 *
 * Memory: what requests being received hold is bounded by their pool's memory_limit: a
 * request that would pass it fails at once (HTTP_INGEST_RETRY) and lets its rows go. The
 * row batches of finished requests go back to the pool, kept warm for the next ones (a
 * fresh batch costs its page faults again: on this kind of VM about 2.7 ms per MiB).
 *
 * Ownership: the caller owns the http_ingest (it must not move after begin: the answer's
 * sink points into it) and holds the table (catalog_get) from before http_ingest_begin
 * until after http_ingest_end; http_ingest_end frees everything the request made.
 *
 * Threads: an http_ingest belongs to one request, used by one thread at a time. A pool is
 * shared by every request of a server: its batches under its mutex, its byte count atomic.
 */
#ifndef STRATA_HTTP_INGEST_H
#define STRATA_HTTP_INGEST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/buf.h"
#include "engine/error.h"
#include "engine/row_batch.h"
#include "engine/table.h"
#include "ingest/event_json.h"
#include "ingest/ndjson_answer.h"

#define HTTP_INGEST_POOL_MAX 8                 /* batches kept between requests */
#define HTTP_INGEST_POOL_BATCH_MAX (32u << 20) /* larger ones are freed */

/* A kept row batch and the column types its arrays were made for: its own copy, since the
 * table it served (and the schema its batch pointed at) may be dropped meanwhile. */
typedef struct http_ingest_kept {
    row_batch b;
    int ncols;
    strata_type types[STRATA_MAX_COLUMNS];
} http_ingest_kept;

/* What the requests of one server share. Fields are private to http_ingest.c. */
typedef struct http_ingest_pool {
    uint64_t memory_limit; /* bytes all requests being received may stage; set at init */
    _Atomic uint64_t staged; /* bytes of rows staged by requests being received */
    pthread_mutex_t lock;  /* guards kept, nkept */
    http_ingest_kept kept[HTTP_INGEST_POOL_MAX];
    int nkept;
} http_ingest_pool;

/* Why a request failed; the first failure wins. */
typedef enum http_ingest_fault {
    HTTP_INGEST_OK = 0,
    HTTP_INGEST_ABORTED,   /* the caller ended it (http_ingest_abort) */
    HTTP_INGEST_BAD_ROWS,  /* the table refused the rows as invalid (STRATA_EINVAL) */
    HTTP_INGEST_NO_TABLE,  /* the table was dropped while the body was arriving */
    HTTP_INGEST_RETRY,     /* out of memory: the pool's budget, the table's, or malloc's; or
                            * the table refuses writes (table_failure) */
    HTTP_INGEST_FAILED,    /* any other failure of the append */
} http_ingest_fault;

/* One request. Callers read answer, fault and fail; the other fields are private. */
typedef struct http_ingest {
    http_ingest_pool *pool;
    strata_table *t; /* borrowed: the caller holds it */
    event_decoder *decoder;
    row_batch batch;
    bool batch_ready;    /* batch holds arrays (until it goes back to the pool) */
    bytebuf carry;       /* a partial line between body pieces */
    bool long_line;      /* skipping a line over the event limit to its newline */
    uint64_t long_len;   /* its bytes so far */
    uint64_t staged_bytes; /* of batch, counted in pool->staged */
    uint64_t line_no;
    ndjson_answer answer; /* rejected and blank lines, errors, unknown fields */
    http_ingest_fault fault;
    strata_err fail; /* the message of fault (none for HTTP_INGEST_ABORTED) */
    uint64_t lsn;    /* the rows' record in the table's log (0: none) */
} http_ingest;

/* Starts an empty pool whose requests may stage memory_limit bytes in all (allocates
 * nothing; cannot fail). */
void http_ingest_pool_init(http_ingest_pool *p, uint64_t memory_limit);
/* Frees the kept batches. No request of the pool may be running. */
void http_ingest_pool_destroy(http_ingest_pool *p);

/* Starts the request *in (overwritten) into table t for pool. Returns 0, or an error
 * (STRATA_ENOMEM; err filled): call http_ingest_end all the same, it frees what was made. */
int http_ingest_begin(http_ingest *in, http_ingest_pool *pool, strata_table *t, strata_err *err);

/* Consumes the next piece of the body: its complete lines now, the rest carried. Does
 * nothing once the request has failed. */
void http_ingest_feed(http_ingest *in, const char *data, size_t len);

/* Fails the request (HTTP_INGEST_ABORTED, unless it failed already) and lets its staged
 * rows go now: for a body the caller will not take whole (over its size limit). */
void http_ingest_abort(http_ingest *in);

/* Ends the body: decodes its last line, then appends every row in one
 * table_append_logged (when the table's memory is full, after a flush, once more).
 * Returns HTTP_INGEST_OK with the rows landed in *rows (0 when none) and their log
 * record in in->lsn, or the request's fault (earlier or now) with *rows 0 and the
 * message in in->fail. The rows are in the table's memory and written to its log, not
 * yet durable: table_log_sync(in->lsn) before telling the sender. */
http_ingest_fault http_ingest_finish(http_ingest *in, uint64_t *rows /* OUT */);

/* Lets go of everything the request holds (its batch to the pool, its decoder, its
 * memory count, the answer's error list: build the answer's JSON before), keeping the
 * answer's counts, fault and fail to answer with. Afterwards the caller may give the
 * table back. Safe on a zeroed or already ended request. */
void http_ingest_end(http_ingest *in);

#endif
