/*
 * block.h — STRATA_BLOCK_ROWS, the engine's unit of vectorized work: the rows of a
 * memtable chunk (MEMTABLE_CHUNK_ROWS), of a granule as strata writes it
 * (SEGMENT_GRANULE_ROWS) and of one block the query executor processes at a time.
 *
 * One value, so the three agree: the executor reads a memtable chunk in place as one
 * block, and decodes a granule strata wrote into one block. Each place that relies on
 * that says so with a _Static_assert. Segments from elsewhere may hold granules of any
 * size the format allows (1..SEGMENT_MAX_GRANULE_ROWS, segment_format.h); the executor then
 * processes a granule a block at a time.
 */
#ifndef STRATA_BLOCK_H
#define STRATA_BLOCK_H

#define STRATA_BLOCK_ROWS 8192

#endif
