/*
 * wal.c — the write-ahead log of wal.h: records appended with pwrite into preallocated
 * files, group commit, replay with torn-tail detection, deletion of covered files. The
 * format and the rules are in wal.h.
 *
 * Group commit: w->lock guards the state; a caller of wal_sync that finds no sync
 * running becomes the syncer: it notes how far the log is written, lets go of the lock,
 * fdatasyncs, and on return marks everything up to that point durable and wakes the
 * waiters. Appends go on meanwhile; those the sync did not cover wait for the next one,
 * which the first of them to wake runs. A new file is only started when no sync runs
 * (the syncer's descriptor stays open), after the old file was fdatasynced in full.
 */
#include "engine/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "engine/buf.h"
#include "engine/clock.h"
#include "engine/fault.h"
#include "engine/fs.h"

static const char WAL_MAGIC[8] = {'S', 'T', 'R', 'A', 'T', 'W', 'A', 'L'};
#define WAL_VERSION 1u

struct wal {
    char dir[4096];
    pthread_mutex_t lock;
    pthread_cond_t synced;
    int fd;              /* the current file */
    uint64_t off;        /* where its next record goes */
    uint64_t alloc;      /* its preallocated size */
    uint64_t next_lsn;   /* the next record's LSN */
    uint64_t durable;    /* every record below this LSN is durable */
    bool syncing;
    bool failed;
    char fail_msg[4700];
    uint64_t *firsts;    /* first LSN of every file, ascending; the current one last */
    uint64_t *allocs;    /* their allocated sizes */
    uint32_t nfiles, files_cap;
    uint64_t appends, bytes, syncs, sync_ns;
};

static void file_name(uint64_t first, char *out, size_t cap)
{
    snprintf(out, cap, "%016" PRIx64 ".wal", first);
}

/* First LSN of a log file's name; false when name is not one. */
static bool parse_name(const char *name, uint64_t *first)
{
    if (strlen(name) != 20 || strcmp(name + 16, ".wal") != 0)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return false;
        v = v << 4 | (uint64_t)d;
    }
    *first = v;
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The first LSNs of the log files in dir, ascending, into *out (malloc'd; caller frees).
 * A missing dir is an empty log. */
static int list_files(const char *dir, uint64_t **out, uint32_t *n, strata_err *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        return strata_err_set(err, STRATA_EIO, "%s: %s", dir, strerror(errno));
    }
    uint64_t *v = NULL;
    uint32_t cnt = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        uint64_t first;
        if (!parse_name(de->d_name, &first))
            continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 8;
            uint64_t *nv = realloc(v, sizeof *nv * cap);
            if (!nv) {
                rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        v[cnt++] = first;
    }
    closedir(d);
    if (rc) {
        free(v);
        return rc;
    }
    if (cnt > 1)
        qsort(v, cnt, sizeof *v, cmp_u64);
    *out = v;
    *n = cnt;
    return 0;
}

/* ---- replay ------------------------------------------------------------------------- */

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Reads the whole file path into *data (malloc'd) and *size. */
static int read_file(const char *path, uint8_t **data, size_t *size, strata_err *err)
{
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return strata_err_set(err, STRATA_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return strata_err_set(err, STRATA_EIO, "%s: %s", path, strerror(e));
    }
    size_t n = (size_t)st.st_size;
    uint8_t *p = malloc(n ? n : 1);
    if (!p) {
        close(fd);
        return strata_err_set(err, STRATA_ENOMEM, "out of memory reading %s (%zu bytes)", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, p + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            free(p);
            close(fd);
            return strata_err_set(err, STRATA_EIO, "%s: read: %s", path, strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    *data = p;
    *size = n;
    return 0;
}

/* Cuts path to size bytes, durably. */
static int cut_file(const char *path, uint64_t size, strata_err *err)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return strata_err_set(err, STRATA_EIO, "%s: %s", path, strerror(errno));
    int rc = 0;
    if (ftruncate(fd, (off_t)size) != 0 || fdatasync(fd) != 0)
        rc = strata_err_set(err, STRATA_EIO, "%s: cutting a torn tail: %s", path, strerror(errno));
    close(fd);
    return rc;
}

int wal_replay(const char *dir, uint64_t from_lsn, wal_record_fn fn, void *ctx,
               wal_replay_report *rep, strata_err *err)
{
    memset(rep, 0, sizeof *rep);
    uint64_t *firsts;
    uint32_t n;
    int rc = list_files(dir, &firsts, &n, err);
    if (rc)
        return rc;
    uint64_t expect = 0; /* the LSN the next file must start at (0: any) */
    for (uint32_t f = 0; f < n && rc == 0; f++) {
        bool last = f + 1 == n;
        if (!last && firsts[f + 1] <= from_lsn) {
            expect = firsts[f + 1];
            continue; /* every record of it is below from_lsn */
        }
        char name[32], path[4200];
        file_name(firsts[f], name, sizeof name);
        if ((rc = fs_path(path, sizeof path, err, "%s/%s", dir, name)) != 0)
            break;
        if (expect && firsts[f] != expect) {
            rc = strata_err_set(err, STRATA_ECORRUPT, "%s: the log should go on at record %" PRIu64
                                " but this file starts at %" PRIu64 " (a log file is missing)",
                                path, expect, firsts[f]);
            break;
        }
        uint8_t *data;
        size_t size;
        if ((rc = read_file(path, &data, &size, err)) != 0)
            break;
        rep->files++;
        bool header_ok = size >= WAL_HEADER_BYTES && memcmp(data, WAL_MAGIC, 8) == 0 &&
                         load_u64le(data + 24) == XXH3_64bits(data, 24) && load_u64le(data + 16) == firsts[f];
        if (!header_ok) {
            if (last && all_zero(data, size < WAL_HEADER_BYTES ? size : WAL_HEADER_BYTES)) {
                /* Made but never given its header (a crash while it was created): it
                 * holds nothing. */
                free(data);
                unlink(path);
                expect = firsts[f];
                break;
            }
            rc = strata_err_set(err, STRATA_ECORRUPT, "%s: not a strata log file (bad header)", path);
            free(data);
            break;
        }
        if (load_u32le(data + 8) != WAL_VERSION) {
            rc = strata_err_set(err, STRATA_EVERSION, "%s: log format version %u (this build reads %u)",
                                path, load_u32le(data + 8), WAL_VERSION);
            free(data);
            break;
        }
        uint64_t pos = WAL_HEADER_BYTES, lsn = firsts[f];
        for (;;) {
            bool valid = false;
            uint32_t len = 0, count = 0;
            if (size - pos >= WAL_RECORD_OVERHEAD) {
                len = load_u32le(data + pos + 8);
                count = load_u32le(data + pos + 12);
                valid = load_u64le(data + pos) == lsn && len > 0 && count > 0 &&
                        len <= size - pos - WAL_RECORD_OVERHEAD &&
                        load_u64le(data + pos + 16 + len) == XXH3_64bits(data + pos, 16 + (size_t)len);
            }
            if (!valid) {
                if (all_zero(data + pos, size - pos))
                    break; /* the clean end */
                if (!last) {
                    rc = strata_err_set(err, STRATA_ECORRUPT, "%s: damaged record %" PRIu64 " at offset %" PRIu64
                                        " (later files hold acknowledged records)", path, lsn, pos);
                    break;
                }
                rep->torn_offset = pos;
                snprintf(rep->torn_file, sizeof rep->torn_file, "%s", name);
                for (uint64_t i = pos; i < size; i++)
                    rep->torn_bytes += data[i] != 0;
                rc = cut_file(path, pos, err);
                break;
            }
            if (lsn + count > from_lsn) {
                if ((rc = fn(ctx, lsn, count, data + pos + 16, len, err)) != 0)
                    break;
                rep->records++;
            } else {
                rep->skipped++;
            }
            pos += WAL_RECORD_OVERHEAD + len;
            lsn += count;
            rep->end_lsn = lsn;
        }
        free(data);
        expect = lsn;
    }
    free(firsts);
    return rc;
}

/* ---- appending ---------------------------------------------------------------------- */

/* Creates the file starting at first, preallocated to alloc bytes, with its header,
 * fsynced with its directory. Returns the descriptor or a negative code (err). */
static int file_create(wal *w, uint64_t first, uint64_t alloc, strata_err *err)
{
    char name[32], path[4200];
    file_name(first, name, sizeof name);
    int rc = fs_path(path, sizeof path, err, "%s/%s", w->dir, name);
    if (rc)
        return rc;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return strata_err_set(err, STRATA_EIO, "%s: create: %s", path, strerror(errno));
    uint8_t h[WAL_HEADER_BYTES];
    memcpy(h, WAL_MAGIC, 8);
    store_u32le(h + 8, WAL_VERSION);
    store_u32le(h + 12, 0);
    store_u64le(h + 16, first);
    store_u64le(h + 24, XXH3_64bits(h, 24));
    int e = posix_fallocate(fd, 0, (off_t)alloc);
    const char *step = "preallocate";
    if (e == 0) {
        step = "write";
        e = fs_write_all(fd, h, sizeof h) == 0 ? 0 : errno;
    }
    if (e == 0) {
        step = "fsync";
        e = fsync(fd) == 0 ? 0 : errno;
    }
    if (e == 0) {
        step = "fsync directory";
        int d = fs_fsync_dir(w->dir);
        e = d ? -d : 0;
    }
    if (e) {
        close(fd);
        unlink(path);
        return strata_err_set(err, STRATA_EIO, "%s: %s: %s", path, step, strerror(e));
    }
    return fd;
}

static int files_push(wal *w, uint64_t first, uint64_t alloc)
{
    if (w->nfiles == w->files_cap) {
        uint32_t cap = w->files_cap ? w->files_cap * 2 : 8;
        uint64_t *nf = realloc(w->firsts, sizeof *nf * cap);
        if (!nf)
            return STRATA_ENOMEM;
        w->firsts = nf;
        uint64_t *na = realloc(w->allocs, sizeof *na * cap);
        if (!na)
            return STRATA_ENOMEM;
        w->allocs = na;
        w->files_cap = cap;
    }
    w->firsts[w->nfiles] = first;
    w->allocs[w->nfiles] = alloc;
    w->nfiles++;
    return 0;
}

static int fail_log(wal *w, int e, const char *what, strata_err *err)
{
    if (!w->failed)
        snprintf(w->fail_msg, sizeof w->fail_msg, "%s/: %s: %s", w->dir, what, strerror(e));
    w->failed = true;
    pthread_cond_broadcast(&w->synced);
    return strata_err_set(err, STRATA_EIO, "write-ahead log failed: %s", w->fail_msg);
}

/* Starts a new file at w->next_lsn with room for need bytes of records. Caller holds
 * w->lock, no sync runs. The old file is fdatasynced first: only the last file of a log
 * may end torn. */
static int rotate(wal *w, uint64_t need, strata_err *err)
{
    if (w->fd >= 0) {
        int e = fault_hit(FAULT_WAL_SYNC) ? EIO : fdatasync(w->fd) == 0 ? 0 : errno;
        if (e)
            return fail_log(w, e, "fdatasync", err);
        w->durable = w->next_lsn;
        close(w->fd);
        w->fd = -1;
    }
    /* A file started for no record yet (at open, or when everything is covered) takes one
     * block, so an idle log costs next to nothing on disk; it grows by WAL_GROW. */
    uint64_t alloc = need == 0 ? WAL_IDLE_BYTES
                               : (WAL_HEADER_BYTES + need + WAL_GROW - 1) / WAL_GROW * WAL_GROW;
    strata_err cerr = {0};
    int fd = file_create(w, w->next_lsn, alloc, &cerr);
    if (fd < 0) {
        if (!w->failed)
            snprintf(w->fail_msg, sizeof w->fail_msg, "%s", cerr.msg);
        w->failed = true;
        pthread_cond_broadcast(&w->synced);
        return strata_err_set(err, STRATA_EIO, "write-ahead log failed: %s", w->fail_msg);
    }
    if (files_push(w, w->next_lsn, alloc) != 0) {
        close(fd);
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    }
    w->fd = fd;
    w->off = WAL_HEADER_BYTES;
    w->alloc = alloc;
    return 0;
}

int wal_open(const char *dir, uint64_t next_lsn, wal **out, strata_err *err)
{
    *out = NULL;
    wal *w = calloc(1, sizeof *w);
    if (!w)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    w->fd = -1;
    w->next_lsn = w->durable = next_lsn ? next_lsn : 1;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->synced, NULL);
    int rc = fs_path(w->dir, sizeof w->dir, err, "%s", dir);
    bool made = false;
    if (rc == 0)
        rc = fs_mkdir(w->dir, &made, err);
    if (rc == 0 && made) {
        char parent[4096];
        snprintf(parent, sizeof parent, "%s", w->dir);
        char *slash = strrchr(parent, '/');
        if (slash)
            *slash = 0;
        int d = slash ? fs_fsync_dir(parent) : 0;
        if (d)
            rc = strata_err_set(err, STRATA_EIO, "%s: fsync directory: %s", parent, strerror(-d));
    }
    uint64_t *old = NULL;
    uint32_t nold = 0;
    if (rc == 0)
        rc = list_files(w->dir, &old, &nold, err);
    for (uint32_t i = 0; i < nold && rc == 0; i++) {
        if (old[i] >= w->next_lsn) {
            /* A file at or past next_lsn holds nothing replay kept (an empty file a
             * crash left, or a torn one): it would take the new file's name. */
            char name[32], path[4200];
            file_name(old[i], name, sizeof name);
            if (fs_path(path, sizeof path, NULL, "%s/%s", w->dir, name) == 0)
                unlink(path);
            continue;
        }
        char name[32], path[4200];
        struct stat st;
        file_name(old[i], name, sizeof name);
        uint64_t alloc = fs_path(path, sizeof path, NULL, "%s/%s", w->dir, name) == 0 && stat(path, &st) == 0
                             ? (uint64_t)st.st_blocks * 512 : 0;
        if (files_push(w, old[i], alloc) != 0)
            rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
    }
    free(old);
    if (rc == 0) {
        pthread_mutex_lock(&w->lock);
        rc = rotate(w, 0, err);
        pthread_mutex_unlock(&w->lock);
    }
    if (rc) {
        wal_close(w);
        return rc;
    }
    *out = w;
    return 0;
}

void wal_close(wal *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->synced);
    free(w->firsts);
    free(w->allocs);
    free(w);
}

uint64_t wal_next_lsn(wal *w)
{
    pthread_mutex_lock(&w->lock);
    uint64_t v = w->next_lsn;
    pthread_mutex_unlock(&w->lock);
    return v;
}

int wal_append(wal *w, const void *payload, size_t len, uint32_t count, uint64_t *lsn,
               strata_err *err)
{
    if (len == 0 || len > UINT32_MAX || count == 0)
        return strata_err_set(err, STRATA_EINVAL, "a log record of %zu bytes taking %u LSNs (1 to 4 GiB, "
                              "at least 1)", len, count);
    uint64_t size = WAL_RECORD_OVERHEAD + (uint64_t)len;
    pthread_mutex_lock(&w->lock);
    int rc = 0;
    if (w->failed) {
        rc = strata_err_set(err, STRATA_EIO, "write-ahead log failed: %s", w->fail_msg);
        goto out;
    }
    if (w->off + size > w->alloc) {
        bool room = w->off + size <= WAL_FILE_MAX;
        if (room) {
            /* Grow the current file by whole steps. */
            uint64_t alloc = (w->off + size + WAL_GROW - 1) / WAL_GROW * WAL_GROW;
            int e = posix_fallocate(w->fd, (off_t)w->alloc, (off_t)(alloc - w->alloc));
            if (e) {
                rc = fail_log(w, e, "preallocate", err);
                goto out;
            }
            w->alloc = alloc;
            w->allocs[w->nfiles - 1] = alloc;
        } else {
            while (w->syncing)
                pthread_cond_wait(&w->synced, &w->lock);
            if ((rc = rotate(w, size, err)) != 0)
                goto out;
        }
    }
    uint8_t head[16], tail[8];
    store_u64le(head, w->next_lsn);
    store_u32le(head + 8, (uint32_t)len);
    store_u32le(head + 12, count);
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, head, sizeof head);
    XXH3_64bits_update(&st, payload, len);
    store_u64le(tail, XXH3_64bits_digest(&st));
    struct iovec iov[3] = {{head, sizeof head}, {(void *)payload, len}, {tail, sizeof tail}};
    uint64_t done = 0;
    while (done < size) {
        /* pwritev with the iovecs advanced past what was written. */
        struct iovec v[3];
        int nv = 0;
        uint64_t skip = done;
        for (int i = 0; i < 3; i++) {
            if (skip >= iov[i].iov_len) {
                skip -= iov[i].iov_len;
                continue;
            }
            v[nv].iov_base = (uint8_t *)iov[i].iov_base + skip;
            v[nv].iov_len = iov[i].iov_len - skip;
            skip = 0;
            nv++;
        }
        ssize_t r = pwritev(w->fd, v, nv, (off_t)(w->off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = fail_log(w, r < 0 ? errno : EIO, "write", err);
            goto out;
        }
        done += (uint64_t)r;
    }
    *lsn = w->next_lsn;
    w->next_lsn += count;
    w->off += size;
    w->appends++;
    w->bytes += size;
out:
    pthread_mutex_unlock(&w->lock);
    return rc;
}

int wal_sync(wal *w, uint64_t lsn, strata_err *err)
{
    pthread_mutex_lock(&w->lock);
    while (w->durable <= lsn && !w->failed) {
        if (w->syncing) {
            pthread_cond_wait(&w->synced, &w->lock);
            continue;
        }
        w->syncing = true;
        uint64_t target = w->next_lsn;
        int fd = w->fd;
        pthread_mutex_unlock(&w->lock);
        uint64_t t0 = (uint64_t)clock_mono_ns();
        int e = fault_hit(FAULT_WAL_SYNC) ? EIO : fdatasync(fd) == 0 ? 0 : errno;
        uint64_t ns = (uint64_t)clock_mono_ns() - t0;
        pthread_mutex_lock(&w->lock);
        w->syncing = false;
        w->syncs++;
        w->sync_ns += ns;
        if (e) {
            fail_log(w, e, "fdatasync", NULL);
            break;
        }
        if (target > w->durable)
            w->durable = target;
        pthread_cond_broadcast(&w->synced);
    }
    int rc = 0;
    if (w->durable <= lsn)
        rc = strata_err_set(err, STRATA_EIO, "write-ahead log failed: %s", w->fail_msg);
    pthread_mutex_unlock(&w->lock);
    return rc;
}

bool wal_durable(wal *w, uint64_t lsn)
{
    pthread_mutex_lock(&w->lock);
    bool d = w->durable > lsn;
    pthread_mutex_unlock(&w->lock);
    return d;
}

void wal_forget_below(wal *w, uint64_t lsn)
{
    pthread_mutex_lock(&w->lock);
    if (!w->failed && lsn >= w->next_lsn && w->off > WAL_HEADER_BYTES && !w->syncing) {
        /* Everything written is in segments: start again with a file of one block. */
        strata_err ignored = {0};
        rotate(w, 0, &ignored);
    }
    uint32_t keep = 0;
    for (uint32_t i = 0; i < w->nfiles; i++) {
        bool covered = i + 1 < w->nfiles && w->firsts[i + 1] <= lsn;
        if (!covered) {
            w->firsts[keep] = w->firsts[i];
            w->allocs[keep] = w->allocs[i];
            keep++;
            continue;
        }
        char name[32], path[4200];
        file_name(w->firsts[i], name, sizeof name);
        if (fs_path(path, sizeof path, NULL, "%s/%s", w->dir, name) == 0)
            unlink(path);
    }
    w->nfiles = keep;
    pthread_mutex_unlock(&w->lock);
}

void wal_get_stats(wal *w, wal_stats *st)
{
    pthread_mutex_lock(&w->lock);
    st->appends = w->appends;
    st->bytes = w->bytes;
    st->syncs = w->syncs;
    st->sync_ns = w->sync_ns;
    st->files = w->nfiles;
    st->disk_bytes = 0;
    for (uint32_t i = 0; i < w->nfiles; i++)
        st->disk_bytes += w->allocs[i];
    pthread_mutex_unlock(&w->lock);
}
