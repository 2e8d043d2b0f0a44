/*
 * memtable_flush.h — a memtable's rows, sorted by (the hour of their time, then the
 * schema's order_by: segment.h), written as one segment file: the step between memtable and segment of a flush (memtable_flush.c).
 *
 * Runs on the flusher's thread while the memtable's writer may go on appending: it reads
 * only the rows below the count it is given, as any reader may (see memtable.h).
 */
#ifndef STRATA_MEMTABLE_FLUSH_H
#define STRATA_MEMTABLE_FLUSH_H

#include <stdint.h>

#include "engine/error.h"
#include "engine/memtable.h"
#include "engine/segment.h"

/* Sort buffers a flusher keeps from one flush to the next (big arrays would otherwise be
 * mapped and faulted in anew each time). Zero-initialize; the flusher owns them and frees
 * them with memtable_flush_scratch_free (which leaves fs zeroed, reusable). One flusher
 * at a time per scratch. */
typedef struct memtable_flush_scratch {
    uint32_t *perm, *perm2;
    uint64_t *key, *key2;
    uint64_t cap;
} memtable_flush_scratch;
void memtable_flush_scratch_free(memtable_flush_scratch *fs);

/* Sorts the first nrows rows by (sort bucket of the time, order_by) and writes them to a
 * new segment at path (see segment_writer_open); with opts->version 1 (tests of old
 * files) by order_by alone, as version-1 files are. fs may be NULL (buffers are then allocated for this call and
 * freed before it returns); otherwise they grow as needed and stay in fs. Safe to run on
 * another thread while the writer appends more rows. Returns 0 with info (may be NULL)
 * filled, or an error: STRATA_EINVAL (nrows over the published rows or the segment
 * limit), STRATA_ENOMEM, or segment_writer's; on error no file is left behind. */
int memtable_write_segment(memtable *mt, uint64_t nrows, const char *path,
                           const segment_write_opts *opts, memtable_flush_scratch *fs,
                           segment_info *info, strata_err *err);

#endif
