/*
 * memtable.h — the in-memory, append-only rows of one partition, before they become a
 * segment.
 *
 * Concurrency: one writer thread appends; any number of reader threads read at the
 * same time without locks. Columns live in chunks of MEMTABLE_CHUNK_ROWS values that never
 * move once allocated; the writer fills values, then publishes the new row count with a
 * release store. A reader loads the count (acquire) once and may then read every row below
 * it, including dictionary entries of the codes it sees, for as long as it holds a
 * reference. So a query never blocks the writer and sees a consistent prefix.
 *
 * Strings are interned per column: each distinct value gets a code in arrival order
 * (memtable_dict_value gives it back); bytes live in an arena freed with the memtable.
 *
 * Lifetime: memtable_create returns one reference; memtable_ref/unref count them; the last
 * unref frees everything. Writing a memtable out as a segment (sorted by the schema's
 * order_by) is memtable_flush.h's.
 */
#ifndef STRATA_MEMTABLE_H
#define STRATA_MEMTABLE_H

#include <stdint.h>

#include "engine/block.h"
#include "engine/error.h"
#include "engine/row_batch.h"
#include "engine/schema.h"

#define MEMTABLE_CHUNK_ROWS STRATA_BLOCK_ROWS

typedef struct memtable memtable;

/* A memtable for the partition starting at part_key, holding at most max_rows rows.
 * The schema is copied. Returns NULL (and err) when out of memory. */
memtable *memtable_create(const strata_schema *schema, int64_t part_key, uint64_t max_rows,
                          strata_err *err);
void memtable_ref(memtable *mt);
void memtable_unref(memtable *mt);

/* Writer only. Appends rows[0..n) of b (all of b's rows when rows is NULL), in order:
 * memtable_stage then memtable_publish. Returns 0; STRATA_EFULL (nothing appended) when
 * the rows would pass max_rows; STRATA_ENOMEM (nothing published) when out of memory. */
int memtable_append(memtable *mt, const row_batch *b, const uint32_t *rows, uint32_t n,
                    strata_err *err);

/* Writer only: two-step appends, so a caller can make rows of several memtables visible
 * together or not at all. memtable_stage writes rows after those already staged, where
 * readers do not look (memtable_nrows does not count them); errors as memtable_append,
 * and a failed call stages none of its rows (earlier staged rows stay staged).
 * memtable_publish makes every staged row visible at once (never fails);
 * memtable_unstage forgets rows staged since the last publish. */
int memtable_stage(memtable *mt, const row_batch *b, const uint32_t *rows, uint32_t n,
                   strata_err *err);
void memtable_publish(memtable *mt);
void memtable_unstage(memtable *mt);
/* Rows staged, published or not (writer only). */
uint64_t memtable_staged_rows(const memtable *mt);

/* Rows readers may read (acquire load). */
uint64_t memtable_nrows(const memtable *mt);
/* Memory held, in bytes (approximate, includes chunk slack and dictionaries). */
uint64_t memtable_bytes(const memtable *mt);
uint64_t memtable_max_rows(const memtable *mt);
int64_t memtable_part_key(const memtable *mt);
/* Smallest and largest time value appended so far (0 and -1 when empty). */
int64_t memtable_min_time(const memtable *mt);
int64_t memtable_max_time(const memtable *mt);
const strata_schema *memtable_schema(const memtable *mt);

/* Chunk i of a column: values of rows [i*MEMTABLE_CHUNK_ROWS, ...). Only rows below a
 * count read from memtable_nrows may be read. Pointers stay valid while a reference is
 * held. int types: int64_t; float64: double; strings: uint32_t memtable codes. */
const int64_t *memtable_chunk_ints(const memtable *mt, int col, uint64_t chunk);
const double *memtable_chunk_floats(const memtable *mt, int col, uint64_t chunk);
const uint32_t *memtable_chunk_codes(const memtable *mt, int col, uint64_t chunk);
/* The string of a memtable code seen in a readable row. */
strata_str memtable_dict_value(const memtable *mt, int col, uint32_t code);

/* Frees the chunks cached for reuse by later memtables (tests and shutdown). */
void memtable_pool_trim(void);

#endif
