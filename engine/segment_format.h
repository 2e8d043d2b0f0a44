/*
 * segment_format.h — the segment file format, version 2 (and version 1, which readers
 * still take; version 3, which is 2 with bytes columns), byte by byte.
 *
 * All integers are little-endian. "u8/u16/u32/u64" are unsigned, "i64" signed
 * two's complement. XXH3 is XXH3_64bits (seed 0) from libxxhash.
 *
 * FILE = HEADER | BLOCKS | FOOTER | TRAILER
 *
 * HEADER (16 bytes, at offset 0)
 *   off size field
 *   0   8    magic "STRATSEG" (53 54 52 41 54 53 45 47)
 *   8   4    u32 format version = 2 (1 in files written before the row order below; 3 for
 *              rollup tier segments, engine/rollup_store.h, which may hold bytes columns)
 *   12  4    u32 flags = 0 (readers refuse other values)
 *
 * BLOCKS (from offset 16 up to the footer): stored blocks back to back, no framing.
 *   Each is located by a BLOCK_REF in the footer. A block's stored bytes are its raw
 *   bytes compressed with the block's codec (0 none: stored = raw; 1 LZ4 block format;
 *   2 zstd frame). Three kinds of block:
 *   - data block: one granule of one column, raw bytes = one encoded block as described
 *     byte by byte in encode.h (integer encodings for int types and dictionary codes,
 *     float encodings for float64; the width byte's bit 7 selects byte planes);
 *   - dictionary block (string columns): u32 count, count x u32 end offsets (end of
 *     value i, relative to the start of the value bytes; non-decreasing), then the value
 *     bytes. Values are unique and sorted by (memcmp of common prefix, then length).
 *   - bytes data block (bytes columns, version 3 only): one granule of opaque values,
 *     raw bytes = u8 0x42 (the encoding), u32 n (= the granule's rows), n x u32 end
 *     offsets (end of value i relative to the start of the value bytes; non-decreasing,
 *     the last = the value bytes' length), then the value bytes. What a value means is
 *     its column's business (rollup_store.h says for tier segments).
 *   - bitmap block (string columns): u32 count (= dictionary count), count x u32 sizes,
 *     then count roaring bitmaps in CRoaring's portable serialization, back to back.
 *     Bitmap i holds the row numbers (0-based within the segment) whose value has code i;
 *     the bitmaps partition [0, nrows).
 *
 * BLOCK_REF (26 bytes)
 *   0   8    u64 offset of the stored bytes (>= 16, and offset + stored_len <= footer offset)
 *   8   4    u32 stored_len
 *   12  4    u32 raw_len
 *   16  1    u8 codec (0 none, 1 lz4, 2 zstd)
 *   17  1    u8 encoding (data blocks: the first raw byte, see encode.h; dictionary 0x40;
 *              bitmap 0x41) — lets tools report encodings without decompressing
 *   18  8    u64 XXH3 of the stored bytes
 *
 * FOOTER (footer_len bytes at footer_offset)
 *   u64 nrows                     (< 2^31)
 *   u32 granule_rows              (1..65536; SEGMENT_GRANULE_ROWS = 8192 as written by
 *                                  strata; readers take every size in the range)
 *   u32 ngranules                 (= ceil(nrows / granule_rows))
 *   i64 min_time, i64 max_time    (of the time column; 0 and -1 when nrows = 0)
 *   u16 ncols (1..128), u16 time_col, u16 norder, norder x u16 column index (order_by)
 *   ncols x COLUMN_DEF:  u8 type (strata_type: 1..7, and 8 bytes in version 3), u8
 *                        name_len (1..63), name bytes
 *   ncols x COLUMN_DATA:
 *     u8 flags (bit 0: string column with dictionary; other bits 0)
 *     if bit 0: BLOCK_REF dictionary, BLOCK_REF bitmaps
 *     ngranules x GRANULE:
 *       BLOCK_REF data
 *       u64 min, u64 max   (int types: the value's 64 bits, compared signed except for
 *                           uint64; float64: IEEE bits of min/max over non-NaN values,
 *                           +inf/-inf when all are NaN; strings: dictionary codes; bytes:
 *                           the shortest and longest value's length)
 *       u8 granule flags   (bit 0: the granule holds a NaN)
 *
 * TRAILER (32 bytes, at file size - 32)
 *   0   8    u64 footer_offset
 *   8   8    u64 footer_len (footer_offset + footer_len = file size - 32)
 *   16  8    u64 XXH3 of the footer bytes
 *   24  4    u32 format version = 3, 2 or 1 (must equal the header's)
 *   28  4    magic "SEGE" (53 45 47 45)
 *
 * ROW ORDER (not checked by readers: the writer's callers keep it)
 *   version 2: rows sorted by (floor(time / SEGMENT_SORT_BUCKET_MS), then the footer's
 *              order_by columns), most significant first (segment.h);
 *   version 1: rows sorted by the order_by columns alone. Such a file whose min_time and
 *              max_time fall in one bucket is in version-2 order too; merges re-sort the
 *              others (merge.h).
 *   The byte layout of versions 1 and 2 is the same; only the row order differs. Version
 *   1 readers would merge a version-2 file as if sorted by order_by alone and write
 *   misordered rows, so the order change bumped the version.
 *
 *   version 3: as version 2, written for rollup tier segments (and only for them: a
 *              file with a bytes column must be version 3), so readers that know only 1
 *              and 2 refuse them by their version, and tools know a tier segment.
 *
 * Version rule: a reader accepts exactly the versions it knows (1 to 3) and refuses
 * others with STRATA_EVERSION naming the version found. Any incompatible change bumps it.
 */
#ifndef STRATA_SEGMENT_FORMAT_H
#define STRATA_SEGMENT_FORMAT_H

#define SEGMENT_MAGIC "STRATSEG"
#define SEGMENT_TRAILER_MAGIC "SEGE"
#define SEGMENT_VERSION 2u       /* written */
#define SEGMENT_VERSION_BYTES 3u /* written when a column is bytes */
#define SEGMENT_VERSION_MIN 1u   /* oldest read */
#define SEGMENT_VERSION_MAX 3u   /* newest read */
#define SEGMENT_HEADER_SIZE 16
#define SEGMENT_TRAILER_SIZE 32
#define SEGMENT_BLOCK_REF_SIZE 26
#define SEGMENT_ENC_DICT 0x40
#define SEGMENT_ENC_BITMAP 0x41
#define SEGMENT_ENC_BYTES 0x42
#define SEGMENT_COL_HAS_DICT 1
#define SEGMENT_MAX_GRANULE_ROWS 65536

#endif
