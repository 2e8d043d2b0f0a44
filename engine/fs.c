/*
 * fs.c — the engine's file-system jobs, each in one place. Contract in fs.h.
 *
 * Atomic replacement is the classic sequence: write a temporary file beside the target,
 * fsync it, close it, rename it over the target (atomic within a directory), fsync the
 * directory so the rename itself is durable. The directory fsync is where fault
 * injection can fail a commit after its point of no return.
 */
#include "engine/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/fault.h"

int fs_path(char *out, size_t cap, strata_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < cap)
        return 0;
    strata_err_set(err, STRATA_EINVAL, "path too long (over %zu bytes): %.200s...", cap - 1, out);
    errno = ENAMETOOLONG;
    return STRATA_EINVAL;
}

int fs_mkdir(const char *path, bool *made, strata_err *err)
{
    bool ok = mkdir(path, 0755) == 0;
    if (made)
        *made = ok;
    if (!ok && errno != EEXIST)
        return strata_err_set(err, STRATA_EIO, "%s: mkdir: %s", path, strerror(errno));
    return 0;
}

int fs_mkdir_p(const char *path, strata_err *err)
{
    char tmp[PATH_MAX];
    int rc = fs_path(tmp, sizeof tmp, err, "%s", path);
    if (rc)
        return rc;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if ((rc = fs_mkdir(tmp, NULL, err)) != 0)
            return rc;
        *p = '/';
    }
    return fs_mkdir(tmp, NULL, err);
}

/* Opens and fsyncs dir; on failure -errno with *step the one that failed. */
static int dir_sync(const char *dir, fs_step *step)
{
    *step = FS_STEP_DIR_OPEN;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    *step = FS_STEP_DIR_FSYNC;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

int fs_fsync_dir(const char *dir)
{
    if (fault_hit(FAULT_FSYNC_DIR))
        return -EIO;
    fs_step step;
    return dir_sync(dir, &step);
}

int fs_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

const char *fs_step_name(fs_step step)
{
    switch (step) {
    case FS_STEP_NONE: return "";
    case FS_STEP_CREATE: return "create";
    case FS_STEP_WRITE: return "write";
    case FS_STEP_FSYNC: return "fsync";
    case FS_STEP_CLOSE: return "close";
    case FS_STEP_RENAME: return "rename";
    case FS_STEP_DIR_OPEN: return "open directory";
    case FS_STEP_DIR_FSYNC: return "fsync directory";
    }
    return "";
}

int fs_write_atomic(const char *dir, const char *path, const char *tmp, const void *data, size_t n,
                    unsigned flags, fs_failure *fail)
{
    fs_failure f = {FS_STEP_CREATE, 0};
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        f.errnum = errno;
        goto out;
    }
    int rc = fs_write_all(fd, data, n);
    if (rc) {
        f = (fs_failure){FS_STEP_WRITE, -rc};
    } else if (fsync(fd) != 0) {
        f = (fs_failure){FS_STEP_FSYNC, errno};
    }
    if (close(fd) != 0 && !f.errnum)
        f = (fs_failure){FS_STEP_CLOSE, errno};
    if (!f.errnum && rename(tmp, path) != 0)
        f = (fs_failure){FS_STEP_RENAME, errno};
    if (f.errnum) {
        unlink(tmp);
        goto out;
    }
    /* Committed: only the durability of the rename is left. */
    if (flags & FS_DIR_SYNC_UNCOUNTED) {
        f.errnum = -dir_sync(dir, &f.step);
    } else {
        f.step = FS_STEP_DIR_FSYNC;
        f.errnum = -fs_fsync_dir(dir);
    }
out:
    if (!f.errnum)
        f.step = FS_STEP_NONE;
    if (fail)
        *fail = f;
    return -f.errnum;
}

int fs_remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char sub[PATH_MAX];
        if (fs_path(sub, sizeof sub, NULL, "%s/%s", path, de->d_name) != 0) {
            rc = -1;
            continue;
        }
        struct stat st;
        if (lstat(sub, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode) ? fs_remove_tree(sub) != 0 : unlink(sub) != 0)
            rc = -1;
    }
    closedir(d);
    if (rmdir(path) != 0)
        rc = -1;
    return rc;
}
