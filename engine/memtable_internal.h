/*
 * memtable_internal.h — the layout of a memtable, shared by memtable.c (create, append,
 * read) and memtable_flush.c (sort and write a segment), and by nothing else. The
 * contract, threads included, is in memtable.h.
 *
 * For each column an array of chunk pointers sized for max_rows at creation (so it never
 * reallocates under readers); each chunk is MEMTABLE_CHUNK_ROWS slots of 8 bytes (int64 /
 * double) or 4 bytes (string codes). Strings: a writer-only open addressing hash (XXH3
 * of the bytes) maps value -> code; code -> (ptr, len) entries live in fixed chunks too;
 * bytes are copied into an arena of 64 KiB blocks.
 */
#ifndef STRATA_MEMTABLE_INTERNAL_H
#define STRATA_MEMTABLE_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/memtable.h"

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    char data[];
} arena_block;

typedef struct mt_dict {
    uint32_t *slots; /* code + 1; 0 = empty */
    uint32_t nslots; /* power of two */
    uint32_t n;      /* codes assigned */
    strata_str **entries; /* chunks of DICT_CHUNK */
    uint64_t *hashes;     /* per code, to rehash without rereading (writer only) */
    uint64_t hashes_cap;
    arena_block *arena;
} mt_dict;

typedef struct mt_col {
    void **chunks;
    mt_dict dict;
} mt_col;

struct memtable {
    strata_schema schema;
    int64_t part_key;
    uint64_t max_rows, max_chunks, max_dict_chunks;
    _Atomic uint64_t nrows;        /* published: readers see rows below it */
    uint64_t staged;               /* writer only: rows written, published or not */
    int64_t staged_min, staged_max; /* writer only: time range of the staged rows */
    _Atomic uint64_t bytes;
    _Atomic int64_t min_time, max_time;
    _Atomic int refs;
    mt_col cols[STRATA_MAX_COLUMNS];
};

#endif
