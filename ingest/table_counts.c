/*
 * table_counts.c — counters by table name (see table_counts.h): an array searched
 * linearly under a mutex; a server has few tables and each count is one short lookup.
 */
#include "ingest/table_counts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/schema.h"

struct table_count {
    char name[STRATA_NAME_MAX];
    uint64_t n;
};

void table_counts_init(table_counts *tc)
{
    memset(tc, 0, sizeof *tc);
    pthread_mutex_init(&tc->lock, NULL);
}

void table_counts_destroy(table_counts *tc)
{
    pthread_mutex_destroy(&tc->lock);
    free(tc->v);
    tc->v = NULL;
    tc->len = tc->cap = 0;
}

/* The entry of table, or NULL. Under lock. */
static table_count *find(table_counts *tc, const char *table)
{
    for (size_t i = 0; i < tc->len; i++)
        if (strncmp(tc->v[i].name, table, STRATA_NAME_MAX) == 0)
            return &tc->v[i];
    return NULL;
}

int table_counts_add(table_counts *tc, const char *table, uint64_t n, strata_err *err)
{
    int rc = 0;
    pthread_mutex_lock(&tc->lock);
    table_count *e = find(tc, table);
    if (!e) {
        if (tc->len == tc->cap) {
            size_t cap = tc->cap ? tc->cap * 2 : 8;
            table_count *v = realloc(tc->v, cap * sizeof *v);
            if (!v) {
                rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
                goto done;
            }
            tc->v = v;
            tc->cap = cap;
        }
        e = &tc->v[tc->len++];
        memset(e, 0, sizeof *e);
        snprintf(e->name, sizeof e->name, "%s", table);
    }
    e->n += n;
done:
    pthread_mutex_unlock(&tc->lock);
    return rc;
}

uint64_t table_counts_get(table_counts *tc, const char *table)
{
    pthread_mutex_lock(&tc->lock);
    table_count *e = find(tc, table);
    uint64_t n = e ? e->n : 0;
    pthread_mutex_unlock(&tc->lock);
    return n;
}
