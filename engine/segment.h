/*
 * segment.h — immutable columnar segment files: writer, reader, pruning.
 *
 * The byte layout is written down in segment_format.h. A segment holds rows sorted by the
 * hour of their time (SEGMENT_SORT_BUCKET_MS, below), then the table's order_by (format
 * version 2; version-1 files by order_by alone), cut into granules of
 * SEGMENT_GRANULE_ROWS rows; every column of every
 * granule is one block (encoded, then compressed, then checksummed). String columns
 * carry a sorted dictionary (codes follow byte order, so min/max of codes are min/max of
 * strings) and one roaring bitmap of row numbers per dictionary value.
 *
 * Writing: segment_writer_open, segment_writer_set_dict for every string column, then
 * segment_writer_add_granule per granule (every granule full except the last), then
 * segment_writer_finish (writes the footer, fsyncs and closes) or segment_writer_abort.
 *
 * Reading: segment_open reads and checks the header, trailer and footer, and loads the
 * dictionaries and bitmaps (each checksummed). Data blocks are read on demand with
 * pread, checked and decoded into caller arrays. A segment handle is immutable after open
 * and may be used from many threads at once, each with its own segment_scratch.
 *
 * Every failure is an error naming the file, and where it applies the column and the
 * granule (block); no input bytes can make the reader crash or read out of bounds.
 */
#ifndef STRATA_SEGMENT_H
#define STRATA_SEGMENT_H

#include <roaring/roaring.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/block.h"
#include "engine/compress.h"
#include "engine/error.h"
#include "engine/row_batch.h"
#include "engine/schema.h"

#define SEGMENT_GRANULE_ROWS STRATA_BLOCK_ROWS /* as written by strata; readers take any size */
#define SEGMENT_MAX_ROWS (UINT32_C(1) << 31)

/* The row order's time bucket: rows are sorted by floor(time / SEGMENT_SORT_BUCKET_MS)
 * first, then by order_by (as ClickHouse's ORDER BY (toStartOfHour(ts), ...)). Without
 * it a merged day partition is sorted by the string columns first, every granule spans
 * the whole day and a "last hour" query can prune none; with it every granule lies within
 * one or two hours and its time min/max prune such queries to about two hours of rows.
 * One hour because dashboards ask mostly for the last hour or more: a finer bucket would
 * cut the runs of equal strings (compression, query runs) further for little more
 * pruning. With partition_by hour the bucket is the partition (every segment holds one
 * bucket, so the order is order_by's, as before); with day 24 buckets per segment, with
 * month up to 744. */
#define SEGMENT_SORT_BUCKET_MS INT64_C(3600000)

/* The sort bucket of time ts (floor division: negative times too). */
static inline int64_t segment_sort_bucket(int64_t ts)
{
    int64_t q = ts / SEGMENT_SORT_BUCKET_MS;
    return q - (ts % SEGMENT_SORT_BUCKET_MS < 0);
}

/* The row order as 64-bit keys compared unsigned, the one rule memtable_flush.c sorts by
 * and merge.c merges by. segment_sort_bucket_key: key part 0, the time's bucket (signed,
 * sign bit flipped). segment_sort_key: an order_by column's value from its 8-byte slot
 * (int types as int64_t, uint64 as its bits, float64 as its bits, strings as their code
 * in a dictionary sorted like the segment's): unsigned types and codes as they are,
 * floats by their IEEE total order, signed ints with the sign bit flipped. */
static inline uint64_t segment_sort_bucket_key(int64_t ts)
{
    return (uint64_t)segment_sort_bucket(ts) ^ (UINT64_C(1) << 63);
}

static inline uint64_t segment_sort_key(strata_type t, uint64_t slot)
{
    switch (t) {
    case STRATA_STRING:
    case STRATA_UINT64:
    case STRATA_BOOL: return slot;
    case STRATA_FLOAT64: return (slot & (UINT64_C(1) << 63)) ? ~slot : slot | (UINT64_C(1) << 63);
    default: return slot ^ (UINT64_C(1) << 63);
    }
}

/* ---- writer ------------------------------------------------------------------------- */

typedef struct segment_writer segment_writer;

typedef struct segment_write_opts {
    strata_codec codec;      /* per-block codec; zstd blocks also get byte-aligned packing */
    int zstd_level;          /* default 3 */
    uint32_t granule_rows;   /* default SEGMENT_GRANULE_ROWS; tests use small granules */
    uint32_t version;        /* format version written: 0 = SEGMENT_VERSION; tests write 1
                              * (rows in order_by order alone) to check old files are read */
} segment_write_opts;

typedef struct segment_info {
    uint64_t nrows;
    uint64_t bytes; /* file size */
    int64_t min_time, max_time;
} segment_info;

/* Creates path (must not exist) for a segment with the columns, time column and
 * order_by of schema. opts may be NULL (lz4). Returns NULL and fills err on failure. */
segment_writer *segment_writer_open(const char *path, const strata_schema *schema,
                                    const segment_write_opts *opts, strata_err *err);

/* Sets string column col's dictionary: n values sorted strictly ascending by
 * (memcmp of the common prefix, then length). Must be called once for every string
 * column before the first granule. The values are copied. */
int segment_writer_set_dict(segment_writer *w, int col, const strata_str *values, uint32_t n,
                            strata_err *err);

/* The values of a bytes column for segment_writer_add_granule: value i is
 * data[end[i-1] .. end[i]) (end[-1] taken as 0). */
typedef struct segment_bytes {
    const uint32_t *end;
    const uint8_t *data;
} segment_bytes;

/* Appends one granule of n rows. cols[c] points at n values of column c: int64_t for
 * int types (uint64 as bit pattern, bools 0/1), double for float64, uint32_t dictionary
 * codes for strings, a segment_bytes for bytes. Every granule but the last must hold
 * exactly granule_rows rows. A schema with a bytes column is written as format version
 * 3 (segment_format.h), as rollup tier segments are (opts.version 3) with or without. */
int segment_writer_add_granule(segment_writer *w, uint32_t n, const void *const *cols,
                               strata_err *err);

/* Writes the footer and trailer, fsyncs and closes the file, frees w (whatever the
 * result). On failure the partial file is removed. info may be NULL. */
int segment_writer_finish(segment_writer *w, segment_info *info, strata_err *err);

/* Closes and removes the partial file, frees w. */
void segment_writer_abort(segment_writer *w);

/* ---- reader ------------------------------------------------------------------------- */

typedef struct segment segment;

typedef struct segment_block {
    uint64_t offset;
    uint32_t stored_len; /* bytes in the file */
    uint32_t raw_len;    /* bytes after decompression (the encoded block) */
    uint8_t codec;
    uint8_t encoding;
    uint64_t checksum;   /* XXH3-64 of the stored bytes */
} segment_block;

typedef struct segment_granule_meta {
    segment_block block;
    uint64_t min, max; /* int64/uint64 bits, double bits, or dictionary codes */
    uint8_t flags;     /* SEGMENT_GRANULE_HAS_NAN */
} segment_granule_meta;
#define SEGMENT_GRANULE_HAS_NAN 1

/* Opens and checks path. On success *out owns an open file; close with segment_close. */
int segment_open(const char *path, segment **out /* OUT */, strata_err *err);
void segment_close(segment *s);

const char *segment_path(const segment *s);
uint32_t segment_format_version(const segment *s);
/* True when the rows are sorted by (sort bucket, order_by): a version-2 file, or a
 * version-1 file whose rows all lie in one bucket (empty ones too). */
bool segment_bucket_sorted(const segment *s);
/* The segment's own schema: names, types, time column and order_by are filled; every
 * other setting holds schema_init's default. Valid until segment_close. */
const strata_schema *segment_schema(const segment *s);
uint64_t segment_nrows(const segment *s);
uint64_t segment_file_bytes(const segment *s);
uint32_t segment_granule_rows(const segment *s);
uint32_t segment_ngranules(const segment *s);
/* Rows in granule g (granule_rows, or fewer in the last). */
uint32_t segment_granule_nrows(const segment *s, uint32_t g);
int64_t segment_min_time(const segment *s);
int64_t segment_max_time(const segment *s);
const segment_granule_meta *segment_granule(const segment *s, int col, uint32_t g);

/* String columns: dictionary size, a value (pointer valid until segment_close), and
 * the code of a value (-1 when absent). */
uint32_t segment_dict_size(const segment *s, int col);
strata_str segment_dict_value(const segment *s, int col, uint32_t code);
int64_t segment_dict_find(const segment *s, int col, const char *p, uint32_t len);
/* First code whose value is >= (p,len) in dictionary order (dict size when none). */
uint32_t segment_dict_lower_bound(const segment *s, int col, const char *p, uint32_t len);
/* Rows holding dictionary value code; owned by the segment. */
const roaring_bitmap_t *segment_dict_bitmap(const segment *s, int col, uint32_t code);
/* Bytes the column's dictionary and bitmap index take in the file (stored). */
uint64_t segment_dict_bytes(const segment *s, int col);
uint64_t segment_bitmap_bytes(const segment *s, int col);

/* Per-thread decode buffers; zero-initialize, free with segment_scratch_free. */
typedef struct segment_scratch {
    uint8_t *stored, *raw;
    size_t stored_cap, raw_cap;
    uint64_t *u64;
    size_t u64_cap;
    compressor *z;
} segment_scratch;
void segment_scratch_free(segment_scratch *sc);

/* Decode granule g of column col into out (segment_granule_nrows values). The *_ints
 * form is for int types, *_floats for float64, *_codes for strings. Each checks the
 * block's checksum and shape; errors name file, column and granule. */
int segment_read_ints(const segment *s, int col, uint32_t g, int64_t *out, segment_scratch *sc,
                      strata_err *err);
int segment_read_floats(const segment *s, int col, uint32_t g, double *out, segment_scratch *sc,
                        strata_err *err);
int segment_read_codes(const segment *s, int col, uint32_t g, uint32_t *out, segment_scratch *sc,
                       strata_err *err);

/* Granule g of bytes column col: end[0..n) as in segment_bytes, *data pointing into sc
 * (valid until sc's next read). */
int segment_read_bytes(const segment *s, int col, uint32_t g, uint32_t *end, const uint8_t **data,
                       segment_scratch *sc, strata_err *err);

/* Reads, checks and decodes every block, and checks granule min/max and the bitmap index
 * against the decoded data. 0 when the segment is sound. */
int segment_verify(const segment *s, strata_err *err);

/* ---- predicates and pruning ------------------------------------------------------- */

typedef enum segment_pred_op {
    SEGMENT_PRED_EQ, SEGMENT_PRED_NE, SEGMENT_PRED_LT, SEGMENT_PRED_LE, SEGMENT_PRED_GT, SEGMENT_PRED_GE, SEGMENT_PRED_IN, SEGMENT_PRED_NOT_IN,
} segment_pred_op;

typedef union segment_value {
    int64_t i; /* int types; uint64 as bit pattern */
    double f;
    strata_str s;
} segment_value;

typedef struct segment_pred {
    int col;
    segment_pred_op op;
    uint32_t nvals; /* 1 for comparisons, any for IN / NOT_IN */
    const segment_value *vals;
} segment_pred;

/* True when row value v satisfies p (for column type t). The reference semantics every
 * pruning decision must agree with. Strings compare in dictionary order. */
bool segment_pred_match_int(strata_type t, const segment_pred *p, int64_t v);
bool segment_pred_match_float(const segment_pred *p, double v);
bool segment_pred_match_str(const segment_pred *p, strata_str v);

/* Sets keep[g] to 0 for every granule that min/max (or, for strings, the dictionary)
 * proves has no row satisfying all of preds (an AND), to 1 otherwise. Never drops a
 * granule holding a matching row. */
void segment_prune_granules(const segment *s, const segment_pred *preds, int npreds, uint8_t *keep);

/* For a predicate on a string column: the exact set of matching rows, built from the
 * bitmap index. Returns a new bitmap (caller frees with roaring_bitmap_free), or NULL
 * when out of memory or col is not a string column. */
roaring_bitmap_t *segment_pred_rows(const segment *s, const segment_pred *p);

/* Dictionary order of two strings: memcmp of the common prefix, then shorter first. */
int strata_str_cmp(strata_str a, strata_str b);

#endif
