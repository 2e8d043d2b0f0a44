/*
 * wal.h — a table's write-ahead log: numbered records appended to preallocated files and
 * made durable by group commit (one fdatasync for every record written while the
 * previous one ran). The records' content is the caller's (table_append.c logs row
 * batches, row_batch.h has their form); this file only keeps them in order, durable, and
 * readable again after a crash.
 *
 * FORMAT (directory <data>/<table>/wal/; little-endian), version 1.
 * A log is a sequence of files named "<first LSN as 16 hex digits>.wal". Every record
 * takes `count` consecutive log sequence numbers (LSN, from 1; table_append_logged
 * numbers its rows so: row r of a record is at LSN + r) and starts where the previous
 * one ended; a file's first record starts at the number in its name, and the next file
 * where the previous one ended.
 *   FILE HEADER (32 bytes)
 *     off size field
 *     0   8    magic "STRATWAL"
 *     8   4    u32 format version = 1
 *     12  4    u32 flags = 0
 *     16  8    u64 first LSN (as in the name)
 *     24  8    u64 XXH3 of bytes 0..23
 *   RECORDS, back to back from offset 32 (24 + len bytes each, no padding)
 *     0     8    u64 LSN (the previous record's LSN + count)
 *     8     4    u32 len, payload bytes (>= 1)
 *     12    4    u32 count, the LSNs the record takes (>= 1)
 *     16    len  payload
 *     16+len 8   u64 XXH3 of bytes 0..15+len (the record's header and payload)
 *   After the last record the file holds zeros up to its end: files are preallocated
 *   (posix_fallocate) in steps of WAL_GROW bytes, up to WAL_FILE_MAX (a record that
 *   does not fit starts a new file; one larger than WAL_FILE_MAX gets a file of its own).
 *   A file started with no record to hold (at open, or once every record is covered)
 *   is one block, WAL_IDLE_BYTES.
 * Example: the record at LSN 7 taking 2 LSNs, with the 3-byte payload "abc" (27 bytes):
 *   07 00 00 00 00 00 00 00 | 03 00 00 00 | 02 00 00 00 | 61 62 63 | <8 bytes XXH3>
 *
 * Durability: wal_append writes a record into the page cache (pwrite) and gives its LSN;
 * wal_sync(lsn) returns once that record is durable. Whoever calls wal_sync while no
 * sync runs does one fdatasync for everything written so far; callers arriving during it
 * wait for it or for the next one. A file is created, preallocated, given its header and
 * fsynced (with its directory) before any record goes in, and a file is fsynced in full
 * before the next one is created, so only the last file can end in a torn record.
 *
 * Reading back (wal_replay): files in LSN order; a record is valid when its LSN is the
 * expected one and its checksum matches. In the last file, the first invalid record
 * ends the log: when nonzero bytes follow it (a record written but never made durable,
 * so never acknowledged) they are reported as a torn tail and the file is cut there.
 * An invalid record in any other file, or a file whose header is damaged when it is not
 * the last, is corruption: the replay fails naming the file and offset, because records
 * after it were acknowledged.
 *
 * Failure: a failed fdatasync makes the log failed for good (its page cache can no longer
 * be trusted); every later wal_append and wal_sync returns STRATA_EIO with the reason.
 *
 * Threads: every function but open/close/replay may be called from any thread (one
 * mutex; the fdatasync runs outside it, so appends go on during a sync).
 * Ownership: wal_open's log is the caller's: wal_close.
 */
#ifndef STRATA_WAL_H
#define STRATA_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/error.h"

#define WAL_DIR_NAME "wal"
#define WAL_FILE_MAX (UINT64_C(64) << 20)
#define WAL_GROW (UINT64_C(4) << 20)
#define WAL_IDLE_BYTES 4096 /* a file started with no record to hold yet */
#define WAL_HEADER_BYTES 32
#define WAL_RECORD_OVERHEAD 24

typedef struct wal wal;

/* What a replay found (for the caller's log line). */
typedef struct wal_replay_report {
    uint32_t files;           /* log files read */
    uint64_t records;         /* records handed to the callback */
    uint64_t skipped;         /* records wholly below from_lsn */
    uint64_t end_lsn;         /* where the last valid record ends: its LSN + count (0: none) */
    uint64_t torn_bytes;      /* nonzero bytes cut after the last valid record */
    char torn_file[64];       /* the file they were in ("" when none) */
    uint64_t torn_offset;
} wal_replay_report;

/* Called, in order, for every record some of whose LSNs are >= from_lsn (lsn + count >
 * from_lsn). A nonzero return stops the replay, which returns it. */
typedef int (*wal_record_fn)(void *ctx, uint64_t lsn, uint32_t count, const uint8_t *payload,
                             uint32_t len, strata_err *err);

/* Reads the log in dir (none there: 0, nothing read) and calls fn for each record that
 * reaches from_lsn. Cuts a torn tail of the last file (see above). Returns 0, the callback's
 * code, STRATA_ECORRUPT / STRATA_EVERSION naming the file and offset, or STRATA_EIO. */
int wal_replay(const char *dir, uint64_t from_lsn, wal_record_fn fn, void *ctx,
               wal_replay_report *rep /* OUT */, strata_err *err);

/* Opens the log in dir for appending (making dir, and fsyncing its parent, when new):
 * the files already there are kept until covered (wal_forget_below) and a new file is
 * started at next_lsn (>= 1, past every LSN in the log: at least wal_replay's end_lsn).
 * *out: wal_close. */
int wal_open(const char *dir, uint64_t next_lsn, wal **out /* OUT */, strata_err *err);
/* Closes the files (without syncing: callers sync what they acknowledge) and frees w. */
void wal_close(wal *w);

/* The LSN the next wal_append will give. Callers that must number their own work in log
 * order hold their own lock around wal_next_lsn and wal_append. */
uint64_t wal_next_lsn(wal *w);
/* Writes one record of len (>= 1) bytes taking count (>= 1) LSNs: written, not yet
 * durable. *lsn gets its (first) LSN. 0, STRATA_EINVAL (len or count 0, len over 4 GiB),
 * or STRATA_EIO (the log failed, or a write or a new file failed: then nothing of the
 * record counts and the log is failed). */
int wal_append(wal *w, const void *payload, size_t len, uint32_t count, uint64_t *lsn /* OUT */,
               strata_err *err);
/* Returns once the record at lsn, and every one before it, is durable (group commit,
 * above): 0, or STRATA_EIO when the log failed. */
int wal_sync(wal *w, uint64_t lsn, strata_err *err);
/* True when the record at lsn is durable already (no wait). */
bool wal_durable(wal *w, uint64_t lsn);

/* Deletes the files whose every record is below lsn (their content is in segments).
 * When every record written is below lsn and the current file holds any, a fresh file
 * of one block is started and the old one deleted too, so a log whose rows are all in
 * segments takes one block of disk. Errors are ignored (a file left behind is read
 * again and skipped by LSN). */
void wal_forget_below(wal *w, uint64_t lsn);

typedef struct wal_stats {
    uint64_t appends, bytes;  /* records and their bytes since open */
    uint64_t syncs, sync_ns;  /* fdatasyncs and their total time */
    uint64_t files;           /* files in the log now */
    uint64_t disk_bytes;      /* their allocated size */
} wal_stats;
void wal_get_stats(wal *w, wal_stats *st /* OUT */);

#endif
