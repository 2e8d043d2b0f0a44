/*
 * test_fs.c — the engine's file-system helpers: checked path building, mkdir and mkdir -p,
 * the atomic whole-file write (each step's failure reported, the target never half
 * written, the directory fsync counted at the fsync_dir fault site unless told not to),
 * writing a buffer in full, and removing a tree without following links.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/fault.h"
#include "engine/fs.h"
#include "test.h"

/* The whole content of path into buf (NUL-terminated); its length, or -1. */
static long slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = 0;
    return (long)n;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void put_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ASSERT(f);
    fputs(text, f);
    fclose(f);
}

TEST(path_fits_to_the_last_byte_and_not_one_more)
{
    char out[8];
    strata_err err = {0};
    ASSERT_EQ(fs_path(out, sizeof out, &err, "%s/%s", "ab", "cde"), 0);
    ASSERT_STR_EQ(out, "ab/cde");
    ASSERT_EQ(fs_path(out, sizeof out, &err, "%s/%s", "ab", "cdef"), 0); /* 7 bytes + NUL */
    ASSERT_STR_EQ(out, "ab/cdef");
    errno = 0;
    ASSERT_EQ(fs_path(out, sizeof out, &err, "%s/%s", "ab", "cdefg"), STRATA_EINVAL);
    ASSERT_EQ(errno, ENAMETOOLONG);
    ASSERT_EQ(err.code, STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "path too long (over 7 bytes): ab/cdef");
    ASSERT_EQ(strlen(out), 7); /* a terminated prefix */
    ASSERT_EQ(fs_path(out, sizeof out, NULL, "%s", "0123456789"), STRATA_EINVAL);
}

TEST(mkdir_says_whether_it_made_the_directory)
{
    char dir[4096], sub[4200];
    test_tmpdir(dir, sizeof dir, "fs_mkdir");
    snprintf(sub, sizeof sub, "%s/a", dir);
    strata_err err = {0};
    bool made = false;
    ASSERT_EQ(fs_mkdir(sub, &made, &err), 0);
    ASSERT(made);
    ASSERT_EQ(fs_mkdir(sub, &made, &err), 0);
    ASSERT(!made);
    ASSERT_EQ(fs_mkdir(sub, NULL, &err), 0);
    /* Under a file: refused with the path and the reason. */
    char file[4200], under[4300];
    snprintf(file, sizeof file, "%s/f", dir);
    put_file(file, "x");
    snprintf(under, sizeof under, "%s/d", file);
    ASSERT_EQ(fs_mkdir(under, &made, &err), STRATA_EIO);
    ASSERT(!made);
    char want[4400];
    snprintf(want, sizeof want, "%s: mkdir: %s", under, strerror(ENOTDIR));
    ASSERT_STR_EQ(err.msg, want);
}

TEST(mkdir_p_makes_every_parent_and_names_the_one_that_failed)
{
    char dir[4096], deep[4200];
    test_tmpdir(dir, sizeof dir, "fs_mkdir_p");
    snprintf(deep, sizeof deep, "%s/a/b/c", dir);
    strata_err err = {0};
    ASSERT_EQ(fs_mkdir_p(deep, &err), 0);
    struct stat st;
    ASSERT_EQ(stat(deep, &st), 0);
    ASSERT(S_ISDIR(st.st_mode));
    ASSERT_EQ(fs_mkdir_p(deep, &err), 0); /* all there: fine */
    char file[4200], below[4300];
    snprintf(file, sizeof file, "%s/a/file", dir);
    put_file(file, "x");
    snprintf(below, sizeof below, "%s/x/y", file);
    ASSERT_EQ(fs_mkdir_p(below, &err), STRATA_EIO);
    char want[4400];
    snprintf(want, sizeof want, "%s/x: mkdir: ", file); /* the first that could not be made */
    ASSERT_CONTAINS(err.msg, want);
    char huge[PATH_MAX + 16];
    memset(huge, 'a', sizeof huge - 1);
    huge[sizeof huge - 1] = 0;
    ASSERT_EQ(fs_mkdir_p(huge, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "path too long");
}

TEST(fsync_dir_counts_at_its_fault_site)
{
    char dir[4096], gone[4200];
    test_tmpdir(dir, sizeof dir, "fs_fsync_dir");
    ASSERT_EQ(fs_fsync_dir(dir), 0);
    snprintf(gone, sizeof gone, "%s/missing", dir);
    ASSERT_EQ(fs_fsync_dir(gone), -ENOENT);
    fault_arm(FAULT_FSYNC_DIR, 1, 1);
    ASSERT_EQ(fs_fsync_dir(dir), 0);
    ASSERT_EQ(fs_fsync_dir(dir), -EIO);
    ASSERT_EQ(fs_fsync_dir(dir), 0);
    ASSERT_EQ(fault_failures(FAULT_FSYNC_DIR), 1);
    fault_reset();
}

TEST(write_all_writes_everything_or_says_why)
{
    char dir[4096], path[4200];
    test_tmpdir(dir, sizeof dir, "fs_write_all");
    snprintf(path, sizeof path, "%s/big", dir);
    size_t n = 3u << 20;
    char *data = malloc(n);
    ASSERT(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 31 + 7);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT(fd >= 0);
    ASSERT_EQ(fs_write_all(fd, data, n), 0);
    ASSERT_EQ(fs_write_all(fd, data, 0), 0);
    close(fd);
    struct stat st;
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_EQ(st.st_size, (long long)n);
    free(data);
    ASSERT_EQ(fs_write_all(-1, "x", 1), -EBADF);
}

TEST(atomic_write_replaces_the_file_whole)
{
    char dir[4096], path[4200], tmp[4200], buf[256];
    test_tmpdir(dir, sizeof dir, "fs_atomic");
    snprintf(path, sizeof path, "%s/data", dir);
    snprintf(tmp, sizeof tmp, "%s/data.tmp", dir);
    fs_failure fail = {FS_STEP_WRITE, 1};
    ASSERT_EQ(fs_write_atomic(dir, path, tmp, "first", 5, 0, &fail), 0);
    ASSERT_EQ(fail.step, FS_STEP_NONE);
    ASSERT_EQ(fail.errnum, 0);
    ASSERT_EQ(slurp(path, buf, sizeof buf), 5);
    ASSERT_STR_EQ(buf, "first");
    put_file(tmp, "a stale temporary file, longer than what comes next");
    ASSERT_EQ(fs_write_atomic(dir, path, tmp, "2nd", 3, 0, NULL), 0);
    ASSERT_STR_EQ((slurp(path, buf, sizeof buf), buf), "2nd");
    ASSERT(!exists(tmp));
    ASSERT_EQ(fs_write_atomic(dir, path, tmp, "", 0, FS_DIR_SYNC_UNCOUNTED, &fail), 0);
    ASSERT_EQ(slurp(path, buf, sizeof buf), 0);
}

TEST(atomic_write_before_its_rename_leaves_the_old_file)
{
    char dir[4096], path[4200], tmp[4200], buf[256];
    test_tmpdir(dir, sizeof dir, "fs_atomic_fail");
    snprintf(path, sizeof path, "%s/data", dir);
    put_file(path, "old");
    /* The temporary file cannot be created. */
    char bad_tmp[4300];
    snprintf(bad_tmp, sizeof bad_tmp, "%s/no/such/dir/data.tmp", dir);
    fs_failure fail;
    ASSERT_EQ(fs_write_atomic(dir, path, bad_tmp, "new", 3, 0, &fail), -ENOENT);
    ASSERT_EQ(fail.step, FS_STEP_CREATE);
    ASSERT_EQ(fail.errnum, ENOENT);
    ASSERT_STR_EQ(fs_step_name(fail.step), "create");
    ASSERT_STR_EQ((slurp(path, buf, sizeof buf), buf), "old");
    /* The rename fails (the target is a non-empty directory): the temporary file goes. */
    char target[4200], inside[4300];
    snprintf(target, sizeof target, "%s/target", dir);
    ASSERT_EQ(mkdir(target, 0755), 0);
    snprintf(inside, sizeof inside, "%s/keep", target);
    put_file(inside, "kept");
    snprintf(tmp, sizeof tmp, "%s/target.tmp", dir);
    ASSERT(fs_write_atomic(dir, target, tmp, "new", 3, 0, &fail) < 0);
    ASSERT_EQ(fail.step, FS_STEP_RENAME);
    ASSERT_STR_EQ(fs_step_name(fail.step), "rename");
    ASSERT(!exists(tmp));
    ASSERT_STR_EQ((slurp(inside, buf, sizeof buf), buf), "kept");
    ASSERT_EQ(fault_failures(FAULT_FSYNC_DIR), 0);
}

/* After the rename only the directory fsync is left: its failure is reported as such,
 * with the file already replaced. Counted, it is one call at the fsync_dir site;
 * uncounted (schema.json's save), none. */
TEST(atomic_write_directory_fsync_and_its_fault_site)
{
    char dir[4096], path[4200], tmp[4200], buf[256];
    test_tmpdir(dir, sizeof dir, "fs_atomic_dir");
    snprintf(path, sizeof path, "%s/data", dir);
    snprintf(tmp, sizeof tmp, "%s/data.tmp", dir);
    fs_failure fail;
    fault_arm(FAULT_FSYNC_DIR, 0, 1);
    ASSERT_EQ(fs_write_atomic(dir, path, tmp, "v1", 2, 0, &fail), -EIO);
    ASSERT_EQ(fail.step, FS_STEP_DIR_FSYNC);
    ASSERT_EQ(fail.errnum, EIO);
    ASSERT_STR_EQ(fs_step_name(fail.step), "fsync directory");
    ASSERT_EQ(fault_failures(FAULT_FSYNC_DIR), 1);
    ASSERT_STR_EQ((slurp(path, buf, sizeof buf), buf), "v1"); /* replaced all the same */
    fault_reset();

    fault_arm(FAULT_FSYNC_DIR, 0, 1);
    ASSERT_EQ(fs_write_atomic(dir, path, tmp, "v2", 2, FS_DIR_SYNC_UNCOUNTED, &fail), 0);
    ASSERT_EQ(fault_failures(FAULT_FSYNC_DIR), 0);
    ASSERT_EQ(fs_fsync_dir(dir), -EIO); /* still armed: the write made no call there */
    fault_reset();

    /* Uncounted, a directory that cannot be opened is told apart from a failed fsync. */
    char gone[4200];
    snprintf(gone, sizeof gone, "%s/missing", dir);
    ASSERT_EQ(fs_write_atomic(gone, path, tmp, "v3", 2, FS_DIR_SYNC_UNCOUNTED, &fail), -ENOENT);
    ASSERT_EQ(fail.step, FS_STEP_DIR_OPEN);
    ASSERT_STR_EQ(fs_step_name(fail.step), "open directory");
    ASSERT_EQ(fs_write_atomic(gone, path, tmp, "v4", 2, 0, &fail), -ENOENT);
    ASSERT_EQ(fail.step, FS_STEP_DIR_FSYNC); /* counted: reported as fs_fsync_dir does */
    ASSERT_STR_EQ(fs_step_name(FS_STEP_WRITE), "write");
    ASSERT_STR_EQ(fs_step_name(FS_STEP_FSYNC), "fsync");
    ASSERT_STR_EQ(fs_step_name(FS_STEP_CLOSE), "close");
    ASSERT_STR_EQ(fs_step_name(FS_STEP_NONE), "");
}

TEST(remove_tree_removes_everything_but_what_links_point_to)
{
    char dir[4096], p[4300], outside[4200], target[4300];
    test_tmpdir(dir, sizeof dir, "fs_rm");
    snprintf(outside, sizeof outside, "%s/outside", dir);
    ASSERT_EQ(mkdir(outside, 0755), 0);
    snprintf(target, sizeof target, "%s/precious", outside);
    put_file(target, "keep me");
    char tree[4200];
    snprintf(tree, sizeof tree, "%s/tree", dir);
    strata_err err = {0};
    snprintf(p, sizeof p, "%s/a/b/c", tree);
    ASSERT_EQ(fs_mkdir_p(p, &err), 0);
    snprintf(p, sizeof p, "%s/a/b/c/file", tree);
    put_file(p, "x");
    snprintf(p, sizeof p, "%s/a/top", tree);
    put_file(p, "y");
    snprintf(p, sizeof p, "%s/a/link-to-dir", tree);
    ASSERT_EQ(symlink(outside, p), 0);
    snprintf(p, sizeof p, "%s/a/b/link-to-file", tree);
    ASSERT_EQ(symlink(target, p), 0);
    ASSERT_EQ(fs_remove_tree(tree), 0);
    ASSERT(!exists(tree));
    char buf[64];
    ASSERT_STR_EQ((slurp(target, buf, sizeof buf), buf), "keep me");
    ASSERT_EQ(fs_remove_tree(tree), 0); /* gone already: fine */
}

TEST_LIST(T(path_fits_to_the_last_byte_and_not_one_more), T(mkdir_says_whether_it_made_the_directory),
          T(mkdir_p_makes_every_parent_and_names_the_one_that_failed),
          T(fsync_dir_counts_at_its_fault_site), T(write_all_writes_everything_or_says_why),
          T(atomic_write_replaces_the_file_whole), T(atomic_write_before_its_rename_leaves_the_old_file),
          T(atomic_write_directory_fsync_and_its_fault_site),
          T(remove_tree_removes_everything_but_what_links_point_to))
