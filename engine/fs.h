/*
 * fs.h — the file-system jobs the engine repeats: build a path (checked), make
 * directories, fsync a directory, write a whole file atomically, write a buffer in full,
 * remove a tree.
 *
 * Nothing here allocates on the heap: paths go into caller buffers, and every function
 * returns at once with the first failure. Failures come back as a code (and errno where
 * noted) rather than a message, except where a function takes a strata_err: the callers
 * word their own messages (tests match them), fs_step_name gives the words for a step.
 *
 * Fault injection (engine/fault.h): fs_fsync_dir is the site FAULT_FSYNC_DIR
 * ("fsync_dir"), and so is the directory fsync of fs_write_atomic unless the caller says
 * FS_DIR_SYNC_UNCOUNTED. Tests arm the site by call index, so every caller keeps the
 * number of directory fsyncs it makes.
 */
#ifndef STRATA_FS_H
#define STRATA_FS_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/error.h"

/* Formats a path (printf-style) into out, cap bytes (cap > 0). Returns 0; or, when the
 * result does not fit, STRATA_EINVAL with errno ENAMETOOLONG, out holding a truncated
 * NUL-terminated prefix, and err (may be NULL) the message "path too long (over N
 * bytes): <its first 200 bytes>...". */
int fs_path(char *out, size_t cap, strata_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Makes directory path (mode 0755). An existing directory is no error. *made (may be
 * NULL) tells whether this call made it. Returns 0, or STRATA_EIO with the message
 * "<path>: mkdir: <strerror>". */
int fs_mkdir(const char *path, bool *made /* OUT */, strata_err *err);

/* Makes path and every missing parent (mode 0755), like mkdir -p. Returns 0, or
 * STRATA_EIO with "<the directory that failed>: mkdir: <strerror>" (STRATA_EINVAL when
 * path is PATH_MAX bytes or more). Parents made before a failure stay. */
int fs_mkdir_p(const char *path, strata_err *err);

/* fsyncs a directory, so the entries made, renamed or removed in it are durable. Returns
 * 0 or -errno (-EIO when the fault site FAULT_FSYNC_DIR fails the call). */
int fs_fsync_dir(const char *dir);

/* Writes n bytes of p to fd, retrying short writes and EINTR. Returns 0 or -errno (the
 * file then holds an unknown prefix of the bytes). */
int fs_write_all(int fd, const void *p, size_t n);

/* The steps of fs_write_atomic, in order, to say which one failed. */
typedef enum fs_step {
    FS_STEP_NONE = 0,
    FS_STEP_CREATE,    /* open(tmp, O_CREAT | O_TRUNC) */
    FS_STEP_WRITE,
    FS_STEP_FSYNC,     /* of tmp */
    FS_STEP_CLOSE,
    FS_STEP_RENAME,    /* tmp over path: the commit point */
    FS_STEP_DIR_OPEN,  /* after the commit point: opening dir to fsync it */
    FS_STEP_DIR_FSYNC,
} fs_step;

/* Which step failed, and its errno. */
typedef struct fs_failure {
    fs_step step;
    int errnum;
} fs_failure;

/* "create", "write", "fsync", "close", "rename", "open directory", "fsync directory";
 * "" for FS_STEP_NONE. Static strings. */
const char *fs_step_name(fs_step step);

/* fs_write_atomic flags. FS_DIR_SYNC_UNCOUNTED: the directory fsync is not a call at the
 * fault site FAULT_FSYNC_DIR (schema.json's save has never been one), and a failure to
 * open the directory is told apart (FS_STEP_DIR_OPEN) from one to fsync it. */
#define FS_DIR_SYNC_UNCOUNTED 1u

/* Replaces the file path (in directory dir) by the n bytes of data, atomically: writes
 * them to tmp (a name in dir; created or truncated, mode 0644), fsyncs and closes it,
 * renames it over path, then fsyncs dir. A crash leaves the old file or the new one,
 * never a mix. Returns 0, or -errno with *fail (may be NULL) saying which step failed:
 *   - up to FS_STEP_RENAME: path is unchanged, and tmp is removed (unless its creation
 *     failed);
 *   - FS_STEP_DIR_OPEN / FS_STEP_DIR_FSYNC: path was replaced, but the rename may not
 *     survive a crash. Counted directory fsyncs (see FS_DIR_SYNC_UNCOUNTED) report every
 *     failure as FS_STEP_DIR_FSYNC, as fs_fsync_dir does. */
int fs_write_atomic(const char *dir, const char *path, const char *tmp, const void *data, size_t n,
                    unsigned flags, fs_failure *fail /* OUT */);

/* Removes the tree at path: files and directories, depth first; no symlink is followed
 * (a link is removed, not its target). Goes on past failures (an entry that cannot be
 * stat'ed is skipped). Returns 0 (a missing path included), or -1 when something could
 * not be removed, errno then telling a failure. */
int fs_remove_tree(const char *path);

#endif
