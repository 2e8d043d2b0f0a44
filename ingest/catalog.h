/*
 * catalog.h — the tables of one data directory: loaded at start from their stored
 * schema.json, created on demand with their schema stored first.
 *
 * Layout: <data>/<table>/schema.json beside <data>/<table>/raw/... (see engine/table.h).
 * A directory under <data> without schema.json is not a table and is left alone.
 *
 * Threads: catalog_get and catalog_create may be called from any thread (one mutex);
 * table pointers stay valid until catalog_close. The caller stops its threads before
 * catalog_close.
 */
#ifndef STRATA_CATALOG_H
#define STRATA_CATALOG_H

#include <stddef.h>

#include "error.h"
#include "schema.h"
#include "table.h"

typedef struct strata_catalog strata_catalog;

/* Opens (creating it if needed) the data directory and every table in it: parses each
 * schema.json and recovers the table (table_open). Any table that fails makes the whole
 * open fail, with a message naming the table and the reason. *out: catalog_close. */
int catalog_open(const char *data_dir, strata_catalog **out /* OUT */, strata_err *err);
/* Closes every table (without flushing: call table_flush first) and frees the catalog. */
void catalog_close(strata_catalog *c);

const char *catalog_data_dir(const strata_catalog *c);
/* The table called name, or NULL. */
strata_table *catalog_get(strata_catalog *c, const char *name);
/* Number of tables and the i-th (in name order); valid until catalog_close. */
size_t catalog_count(strata_catalog *c);
strata_table *catalog_at(strata_catalog *c, size_t i);

/* Creates table s->name: validates s, writes <data>/<name>/schema.json atomically, opens
 * the table. When a table of that name exists: returns 0 with it if its schema is the
 * same (same canonical JSON), STRATA_EEXIST otherwise (message says so). *out may be NULL. */
int catalog_create(strata_catalog *c, const strata_schema *s, strata_table **out,
                   strata_err *err);

#endif
