/*
 * fault.h — failure injection for tests: a named site of the engine (a directory fsync, a
 * memtable allocation, a rename) can be told to fail on chosen calls, so tests can drive
 * the error paths that a real disk or allocator reaches only rarely.
 *
 * A site is armed with (skip, count): its next `skip` calls succeed, the `count` calls
 * after that fail, then it is disarmed. Unarmed, a check costs one relaxed atomic load.
 * Tests arm sites directly (fault_arm); the strata binary arms them from the environment
 * variable STRATA_FAULTS="site:skip:count[,site:skip:count...]" (fault_arm_from_env), so
 * integration tests can make the real server meet a failing disk. Nothing arms a site in
 * normal use.
 *
 * Threads: any thread may check or arm a site; counters are atomics.
 */
#ifndef STRATA_FAULT_H
#define STRATA_FAULT_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/error.h"

typedef enum fault_site {
    FAULT_FSYNC_DIR,       /* fsync_dir(): fails with EIO */
    FAULT_MEMTABLE_ALLOC,  /* a memtable's chunk, dictionary or arena allocation */
    FAULT_RENAME_DROP,     /* the rename that drops a table (catalog) */
    FAULT_DEAD_LETTER_SYNC, /* making a consumer's dead letters durable */
    FAULT_WAL_SYNC,        /* the fdatasync of a write-ahead log's group commit: EIO */
    FAULT_NSITES
} fault_site;

/* Lets the next `skip` calls at site pass, then fails `count` calls. count 0 disarms. */
void fault_arm(fault_site site, uint64_t skip, uint64_t count);
/* Disarms every site. */
void fault_reset(void);
/* True when this call at site must fail (and counts the call). */
bool fault_hit(fault_site site);
/* How many calls at site failed since it was last armed. */
uint64_t fault_failures(fault_site site);
/* Arms sites from STRATA_FAULTS (format above). Returns 0, or STRATA_EINVAL with a
 * message naming the bad entry; no variable is not an error. */
int fault_arm_from_env(strata_err *err);

#endif
