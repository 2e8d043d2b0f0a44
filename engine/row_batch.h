/*
 * row_batch.h — a columnar batch of rows on their way into a table.
 *
 * Decoders (JSON events, the generator, tests) fill a row_batch; memtable_append and
 * table_append copy rows out of it. Every column has one array of nrows values:
 * int-typed columns (timestamp, int64, uint64 as bit pattern, int32, bool as 0/1) in
 * i[col], float64 in f[col], strings in s[col] as (offset, length) into the batch's own
 * byte buffer. row_batch_add_row() fills a new row with each column's default, so a
 * decoder only sets the fields an event has.
 *
 * Ownership: the batch owns all its arrays and bytes; row_batch_free releases them.
 * The schema pointer is borrowed and must outlive the batch.
 */
#ifndef STRATA_ROW_BATCH_H
#define STRATA_ROW_BATCH_H

#include <stdint.h>

#include <stddef.h>

#include "engine/error.h"
#include "engine/schema.h"

typedef struct strata_str {
    const char *ptr;
    uint32_t len;
} strata_str;

typedef struct row_batch_str {
    uint64_t off; /* into row_batch.bytes */
    uint32_t len;
} row_batch_str;

typedef struct row_batch {
    const strata_schema *schema;
    uint32_t nrows;
    uint32_t cap;
    int64_t *i[STRATA_MAX_COLUMNS];
    double *f[STRATA_MAX_COLUMNS];
    row_batch_str *s[STRATA_MAX_COLUMNS];
    char *bytes;
    uint64_t nbytes, bytes_cap;
} row_batch;

/* Prepares an empty batch for schema with room for cap rows (grows as needed).
 * Returns 0 or STRATA_ENOMEM. */
int row_batch_init(row_batch *b, const strata_schema *schema, uint32_t cap);
void row_batch_free(row_batch *b);
/* Drops all rows, keeps the memory. */
void row_batch_clear(row_batch *b);
/* Appends a row holding every column's default; returns its index, or -1 when out of
 * memory (the batch is unchanged then). */
int64_t row_batch_add_row(row_batch *b);
/* Removes the last row (a decoder that fails mid-event calls this). */
void row_batch_pop_row(row_batch *b);
/* Copies len bytes into the batch as row's value of string column col.
 * Returns 0 or STRATA_ENOMEM. */
int row_batch_set_str(row_batch *b, int col, uint32_t row, const char *p, uint32_t len);

/* Memory the batch holds (its arrays at their capacity and its string bytes). */
uint64_t row_batch_mem_bytes(const row_batch *b);
/* Bytes its rows use (their values and string bytes), whatever the capacity. */
uint64_t row_batch_used_bytes(const row_batch *b);
/* Makes an empty batch b, whose arrays were made for a schema with the same column types
 * as schema (see schema_same_types), serve schema instead, keeping its memory. */
void row_batch_rebind(row_batch *b, const strata_schema *schema);

/* The bytes of a string value; valid until the batch is changed or freed. */
static inline strata_str row_batch_get_str(const row_batch *b, int col, uint32_t row)
{
    strata_str s = {b->bytes + b->s[col][row].off, b->s[col][row].len};
    return s;
}

/* The log form of a batch: what table_append_logged writes in a write-ahead log record
 * (engine/wal.h) and recovery reads back. Little-endian:
 *   off  size        field
 *   0    4           u32 nrows
 *   4    4           u32 ncols (the table's)
 *   8    ...         every column in schema order: u8 type (strata_type), then
 *                    int types:  nrows x i64 (uint64 as its bit pattern, bool 0/1)
 *                    float64:    nrows x f64 (IEEE 754 bits)
 *                    string:     nrows x u32 length, then the bytes back to back
 * Example, one row of (ts timestamp = 1000, name string = "ab"), 31 bytes:
 *   01 00 00 00 | 02 00 00 00 | 01 | e8 03 00 00 00 00 00 00 | 07 | 02 00 00 00 | 61 62
 * row_batch_encode appends b's form to out (0 or STRATA_ENOMEM). row_batch_decode
 * replaces b's rows (b made for the same schema) by the n bytes at p: 0, STRATA_ENOMEM,
 * or STRATA_ECORRUPT when they do not fit the schema exactly. */
struct bytebuf; /* engine/buf.h */
int row_batch_encode(const row_batch *b, struct bytebuf *out);
int row_batch_decode(row_batch *b, const uint8_t *p, size_t n, strata_err *err);

#endif
