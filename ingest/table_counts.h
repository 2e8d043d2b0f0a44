/*
 * table_counts.h — one counter per table name, for what a layer above the engine counts
 * per table (HTTP ingest: events that landed with unknown fields), read by /metrics.
 *
 * A counter lives as long as the table_counts, whatever happens to the table: a table
 * dropped and created again under its name continues its counter, which suits Prometheus
 * counters (they only go up while the process lives).
 *
 * Threads: every function but init and destroy may be called from any thread (one mutex
 * inside).
 */
#ifndef STRATA_TABLE_COUNTS_H
#define STRATA_TABLE_COUNTS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/error.h"

typedef struct table_count table_count;

/* Fields are private to table_counts.c. */
typedef struct table_counts {
    pthread_mutex_t lock; /* guards v, len, cap */
    table_count *v;
    size_t len, cap;
} table_counts;

/* Starts an empty set of counters (allocates nothing; cannot fail). */
void table_counts_init(table_counts *tc);
/* Frees what the counters hold. */
void table_counts_destroy(table_counts *tc);

/* Adds n to table's counter. Returns 0, or STRATA_ENOMEM when a first count for table
 * found no memory (this n is then not counted; err filled). */
int table_counts_add(table_counts *tc, const char *table, uint64_t n, strata_err *err);
/* table's counter; 0 for a table never counted. */
uint64_t table_counts_get(table_counts *tc, const char *table);

#endif
