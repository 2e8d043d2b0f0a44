/*
 * catalog.h — the tables of one data directory: loaded at start from their stored
 * schema.json, created on demand with their schema stored first.
 *
 * Layout: <data>/<table>/schema.json beside <data>/<table>/raw/... (see engine/table.h).
 * A directory under <data> without schema.json is not a table and is left alone.
 *
 * Threads: every function but open/close may be called from any thread (one mutex).
 * catalog_get, catalog_at and catalog_create hand out a reference: the table stays valid
 * (even if dropped meanwhile) until the holder gives it back with catalog_put. The caller
 * stops its threads before catalog_close, which closes every table whatever its holders.
 */
#ifndef STRATA_CATALOG_H
#define STRATA_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/error.h"
#include "engine/schema.h"
#include "engine/table.h"

typedef struct strata_catalog strata_catalog;

/* Opens (creating it if needed) the data directory and every table in it: parses each
 * schema.json and recovers the table (table_open). A table that cannot be opened (its
 * schema.json or a committed segment is damaged, a disk error) does not stop the others:
 * it is kept aside as broken, with the reason (catalog_broken_*), until it is dropped or
 * the next open. The directory is locked (flock on <data>/LOCK, released by
 * catalog_close or the process's end): STRATA_EEXIST "... is in use by pid N" when
 * another process has it open. Fails otherwise only when the data directory itself cannot
 * be made or read. *out: catalog_close. */
int catalog_open(const char *data_dir, strata_catalog **out /* OUT */, strata_err *err);

/* True when another process serves data_dir (holds its LOCK, as catalog_open does), with
 * the pid it wrote there ("?" when none) in pid[cap]. Takes nothing and keeps nothing;
 * for a command that must not touch a directory in use (strata demo clearing its own). */
bool catalog_dir_in_use(const char *data_dir, char *pid, size_t cap);
/* Closes every table (without flushing: call table_flush first) and frees the catalog. */
void catalog_close(strata_catalog *c);

const char *catalog_data_dir(const strata_catalog *c);
/* The table called name, or NULL; a reference: give it back with catalog_put. */
strata_table *catalog_get(strata_catalog *c, const char *name);
/* Gives back a reference from catalog_get/at/create (NULL is ignored). When the table was
 * dropped and this was its last holder, the table is closed and its files removed. */
void catalog_put(strata_catalog *c, strata_table *t);
/* Number of tables and the i-th in name order (a reference, or NULL past the end). */
size_t catalog_count(strata_catalog *c);
strata_table *catalog_at(strata_catalog *c, size_t i);

/* Broken tables (see catalog_open): how many, and the i-th in name order (false past
 * the end), or by name (false when name is not broken). name and why are copied out. */
size_t catalog_broken_count(strata_catalog *c);
bool catalog_broken_at(strata_catalog *c, size_t i, char *name, size_t name_cap, char *why,
                       size_t why_cap);
bool catalog_broken_get(strata_catalog *c, const char *name, char *why, size_t why_cap);

/* Creates table s->name: validates s, writes <data>/<name>/schema.json atomically, opens
 * the table, and fsyncs the data directory, so a table whose creation returned 0 survives
 * a crash; a failure leaves no table behind. When a table of that name exists: returns 0
 * with it if its schema is the same (same canonical JSON), STRATA_EEXIST otherwise (the
 * message says so, or that the existing table is broken). *out may be NULL; otherwise it
 * is a reference (catalog_put). *created (may be NULL) tells whether this call made the
 * table, so of concurrent creations of one name exactly one sees true. */
int catalog_create(strata_catalog *c, const strata_schema *s, strata_table **out,
                   bool *created /* OUT */, strata_err *err);

/* Drops table name (a broken one too): writes to it are paused (one in progress
 * finishes), its directory is renamed away and the data directory fsynced (the drop
 * survives a crash; the rename is atomic), later writes through any holder are refused
 * ("was dropped"), its name is free for a new table, and its data is removed when the
 * last holder puts it back. STRATA_ENOTFOUND when there is no such table. When the rename
 * fails the table stays as it was, writable, and the error says why. When only the fsync
 * fails the drop has happened (STRATA_EIO says it may not survive a crash). */
int catalog_drop(strata_catalog *c, const char *name, strata_err *err);

#endif
