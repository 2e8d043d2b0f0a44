/*
 * catalog.c — the tables of a data directory. See catalog.h.
 *
 * Tables are kept in an array sorted by name; creation is rare, lookups are binary
 * searches under the catalog mutex. Each entry counts its holders (catalog_get/at/create
 * hand out references, catalog_put returns them). catalog_drop renames the table's
 * directory to <data>/.dropped-<name>-<seq>-<pid> (fsynced: the rename is the drop) and takes
 * the name out of the list; the table is closed and the renamed tree removed when the last
 * holder puts it back. catalog_open removes any .dropped-* left by a crash. Schemas are
 * compared through their canonical JSON dump, so "the same schema" means the same thing as
 * what is stored on disk.
 *
 * A drop pauses the table's writers (table_writes_pause) around the rename, outside the
 * catalog mutex (a flush in progress may take a while and must not stall every lookup);
 * drop_lock serializes drops. Tables that fail to open are kept in `broken` with the
 * reason: they hold their name (no table can be created over them) until dropped.
 */
#include "engine/catalog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "engine/fault.h"
#include "engine/fs.h"
#include "engine/schema_json.h"

/* One table and who holds it. A dropped entry leaves the name list at once (a new table
 * of that name can be created) and lives in the dropped list until its last holder puts
 * it back; then the table is closed and its (already renamed) directory removed. */
typedef struct cat_entry {
    strata_table *t;
    unsigned refs;   /* holders besides the catalog itself */
    bool dropped;
    char tomb[PATH_MAX]; /* the renamed directory of a dropped table */
} cat_entry;

/* A table directory that failed to open. */
typedef struct broken_table {
    char name[STRATA_NAME_MAX + 1];
    char why[512];
} broken_table;

struct strata_catalog {
    char dir[2900];
    int lock_fd;               /* <data>/LOCK, flocked while the catalog is open */
    pthread_mutex_t lock;
    pthread_mutex_t drop_lock; /* one drop at a time; taken before lock */
    broken_table *broken;      /* sorted by name; lock */
    size_t nbroken, broken_cap;
    cat_entry **tables; /* live, sorted by name */
    size_t n, cap;
    cat_entry **dropped; /* dropped, still held */
    size_t ndropped, dropped_cap;
    uint64_t drop_seq;
};

static int push(cat_entry ***arr, size_t *n, size_t *cap, cat_entry *e)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        cat_entry **na = realloc(*arr, sizeof *na * nc);
        if (!na)
            return STRATA_ENOMEM;
        *arr = na;
        *cap = nc;
    }
    (*arr)[(*n)++] = e;
    return 0;
}

static int insert(strata_catalog *c, strata_table *t)
{
    cat_entry *e = calloc(1, sizeof *e);
    if (!e || push(&c->tables, &c->n, &c->cap, e) != 0) {
        free(e);
        return STRATA_ENOMEM;
    }
    e->t = t;
    size_t i = c->n - 1;
    while (i > 0 && strcmp(table_schema(c->tables[i - 1]->t)->name, table_schema(t)->name) > 0) {
        c->tables[i] = c->tables[i - 1];
        i--;
    }
    c->tables[i] = e;
    return 0;
}

/* Index of the live table called name, or -1. */
static ptrdiff_t find(strata_catalog *c, const char *name)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = strcmp(table_schema(c->tables[mid]->t)->name, name);
        if (cmp == 0)
            return (ptrdiff_t)mid;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

#define TOMB_PREFIX ".dropped-"
#define LOCK_FILE "LOCK"

/* The pid the holder of a LOCK file wrote there ("?" when none) into buf. */
static void lock_holder_pid(int fd, char *buf, size_t cap)
{
    ssize_t n = pread(fd, buf, cap - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    buf[strcspn(buf, "\n")] = 0;
    if (!buf[0])
        snprintf(buf, cap, "?");
}

bool catalog_dir_in_use(const char *data_dir, char *pid, size_t cap)
{
    char path[PATH_MAX];
    if (fs_path(path, sizeof path, NULL, "%s/" LOCK_FILE, data_dir) != 0)
        return false; /* no such lock file */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false; /* no lock file: nobody has served it */
    bool held = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    if (held)
        lock_holder_pid(fd, pid, cap);
    close(fd);
    return held;
}

/* Takes <data>/LOCK with flock: one process serves a data directory. The file holds the
 * owner's pid (for the message the next one gets); the lock, not the file, is what
 * counts, so a crash leaves nothing to clean up. */
static int lock_data_dir(strata_catalog *c, strata_err *err)
{
    char path[PATH_MAX];
    int rc = fs_path(path, sizeof path, err, "%s/" LOCK_FILE, c->dir);
    if (rc)
        return rc;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return strata_err_set(err, STRATA_EIO, "%s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32];
        lock_holder_pid(fd, pid, sizeof pid);
        close(fd);
        if (e == EWOULDBLOCK)
            return strata_err_set(err, STRATA_EEXIST, "%s is in use by pid %s: one strata process serves "
                                  "a data directory", c->dir, pid);
        return strata_err_set(err, STRATA_EIO, "%s: flock: %s", path, strerror(e));
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        int e = errno;
        close(fd);
        return strata_err_set(err, STRATA_EIO, "%s: %s", path, strerror(e));
    }
    c->lock_fd = fd;
    return 0;
}

/* Index of broken table name, or -1. Caller holds lock (or is opening). */
static ptrdiff_t broken_find(strata_catalog *c, const char *name)
{
    for (size_t i = 0; i < c->nbroken; i++)
        if (strcmp(c->broken[i].name, name) == 0)
            return (ptrdiff_t)i;
    return -1;
}

static int broken_add(strata_catalog *c, const char *name, const char *why)
{
    if (c->nbroken == c->broken_cap) {
        size_t cap = c->broken_cap ? c->broken_cap * 2 : 4;
        broken_table *nb = realloc(c->broken, sizeof *nb * cap);
        if (!nb)
            return STRATA_ENOMEM;
        c->broken = nb;
        c->broken_cap = cap;
    }
    size_t i = c->nbroken++;
    while (i > 0 && strcmp(c->broken[i - 1].name, name) > 0) {
        c->broken[i] = c->broken[i - 1];
        i--;
    }
    snprintf(c->broken[i].name, sizeof c->broken[i].name, "%s", name);
    snprintf(c->broken[i].why, sizeof c->broken[i].why, "%s", why);
    return 0;
}

size_t catalog_broken_count(strata_catalog *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->nbroken;
    pthread_mutex_unlock(&c->lock);
    return n;
}

bool catalog_broken_at(strata_catalog *c, size_t i, char *name, size_t name_cap, char *why,
                       size_t why_cap)
{
    pthread_mutex_lock(&c->lock);
    bool ok = i < c->nbroken;
    if (ok) {
        snprintf(name, name_cap, "%s", c->broken[i].name);
        snprintf(why, why_cap, "%s", c->broken[i].why);
    }
    pthread_mutex_unlock(&c->lock);
    return ok;
}

bool catalog_broken_get(strata_catalog *c, const char *name, char *why, size_t why_cap)
{
    pthread_mutex_lock(&c->lock);
    ptrdiff_t i = broken_find(c, name);
    if (i >= 0)
        snprintf(why, why_cap, "%s", c->broken[i].why);
    pthread_mutex_unlock(&c->lock);
    return i >= 0;
}

int catalog_open(const char *data_dir, strata_catalog **out, strata_err *err)
{
    *out = NULL;
    if (strlen(data_dir) >= 2900)
        return strata_err_set(err, STRATA_EINVAL, "data directory path is too long");
    int mrc = fs_mkdir(data_dir, NULL, err);
    if (mrc)
        return mrc;
    strata_catalog *c = calloc(1, sizeof *c);
    if (!c)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    snprintf(c->dir, sizeof c->dir, "%s", data_dir);
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->drop_lock, NULL);
    c->lock_fd = -1;
    int lrc = lock_data_dir(c, err);
    if (lrc) {
        catalog_close(c);
        return lrc;
    }
    DIR *d = opendir(data_dir);
    if (!d) {
        int rc = strata_err_set(err, STRATA_EIO, "%s: %s", data_dir, strerror(errno));
        catalog_close(c);
        return rc;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        strata_err terr = {0};
        if (strncmp(de->d_name, TOMB_PREFIX, strlen(TOMB_PREFIX)) == 0) {
            /* A drop that crashed before its directory was removed: finish it. */
            char tomb[PATH_MAX];
            if (fs_path(tomb, sizeof tomb, NULL, "%s/%.255s", data_dir, de->d_name) == 0)
                fs_remove_tree(tomb);
            continue;
        }
        if (de->d_name[0] == '.')
            continue;
        char path[PATH_MAX];
        struct stat st;
        if (fs_path(path, sizeof path, NULL, "%s/%.255s/%s", data_dir, de->d_name, SCHEMA_JSON_FILE) != 0 ||
            stat(path, &st) != 0)
            continue; /* not a table */
        strata_schema *s = malloc(sizeof *s);
        if (!s) {
            rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
            break;
        }
        int trc = schema_json_parse_file(path, s, &terr);
        if (trc == 0 && strcmp(s->name, de->d_name) != 0)
            trc = strata_err_set(&terr, STRATA_EINVAL, "%s: names table '%s' but lives in directory '%s'",
                                 path, s->name, de->d_name);
        strata_table *t = NULL;
        if (trc == 0)
            trc = table_open(data_dir, s, &t, &terr);
        free(s);
        if (trc == 0 && insert(c, t) != 0) {
            table_close(t);
            rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
        } else if (trc != 0 && strlen(de->d_name) <= STRATA_NAME_MAX &&
                   broken_add(c, de->d_name, terr.msg) != 0) {
            rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
        }
    }
    closedir(d);
    if (rc) {
        catalog_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

void catalog_close(strata_catalog *c)
{
    if (!c)
        return;
    if (c->lock_fd >= 0)
        close(c->lock_fd); /* releases the flock */
    for (size_t i = 0; i < c->n; i++) {
        table_close(c->tables[i]->t);
        free(c->tables[i]);
    }
    for (size_t i = 0; i < c->ndropped; i++) {
        table_close(c->dropped[i]->t);
        fs_remove_tree(c->dropped[i]->tomb);
        free(c->dropped[i]);
    }
    free(c->tables);
    free(c->dropped);
    free(c->broken);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->drop_lock);
    free(c);
}

const char *catalog_data_dir(const strata_catalog *c) { return c->dir; }

strata_table *catalog_get(strata_catalog *c, const char *name)
{
    pthread_mutex_lock(&c->lock);
    ptrdiff_t i = find(c, name);
    strata_table *t = NULL;
    if (i >= 0) {
        c->tables[i]->refs++;
        t = c->tables[i]->t;
    }
    pthread_mutex_unlock(&c->lock);
    return t;
}

void catalog_put(strata_catalog *c, strata_table *t)
{
    if (!t)
        return;
    cat_entry *gone = NULL;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n; i++)
        if (c->tables[i]->t == t) {
            c->tables[i]->refs--;
            goto done;
        }
    for (size_t i = 0; i < c->ndropped; i++)
        if (c->dropped[i]->t == t) {
            if (--c->dropped[i]->refs == 0) {
                gone = c->dropped[i];
                c->dropped[i] = c->dropped[--c->ndropped];
            }
            break;
        }
done:
    pthread_mutex_unlock(&c->lock);
    if (gone) {
        table_close(gone->t);
        fs_remove_tree(gone->tomb);
        free(gone);
    }
}

size_t catalog_count(strata_catalog *c)
{
    pthread_mutex_lock(&c->lock);
    size_t n = c->n;
    pthread_mutex_unlock(&c->lock);
    return n;
}

strata_table *catalog_at(strata_catalog *c, size_t i)
{
    pthread_mutex_lock(&c->lock);
    strata_table *t = NULL;
    if (i < c->n) {
        c->tables[i]->refs++;
        t = c->tables[i]->t;
    }
    pthread_mutex_unlock(&c->lock);
    return t;
}

/* Writes the path of the first place where JSON values a and b differ ("partition_by",
 * "columns[2].type", "kafka.topic") into path, and what each holds into what; false when
 * they are equal. */
static bool first_difference(json_t *a, json_t *b, char *path, size_t cap, char *what, size_t wcap)
{
    if (json_equal(a, b))
        return false;
    size_t n = strlen(path);
    if (json_is_object(a) && json_is_object(b)) {
        const char *key;
        json_t *va;
        json_object_foreach(a, key, va) {
            json_t *vb = json_object_get(b, key);
            snprintf(path + n, cap - n, "%s%s", n ? "." : "", key);
            if (!vb) {
                snprintf(what, wcap, "missing from the request");
                return true;
            }
            if (first_difference(va, vb, path, cap, what, wcap))
                return true;
        }
        json_object_foreach(b, key, va) {
            if (!json_object_get(a, key)) {
                snprintf(path + n, cap - n, "%s%s", n ? "." : "", key);
                snprintf(what, wcap, "not in the existing table");
                return true;
            }
        }
    } else if (json_is_array(a) && json_is_array(b)) {
        size_t na = json_array_size(a), nb = json_array_size(b);
        for (size_t i = 0; i < na && i < nb; i++) {
            snprintf(path + n, cap - n, "[%zu]", i);
            if (first_difference(json_array_get(a, i), json_array_get(b, i), path, cap, what, wcap))
                return true;
        }
        path[n] = 0;
        snprintf(what, wcap, "%zu entries in the existing table, %zu in the request", na, nb);
        return true;
    }
    path[n] = 0;
    char *x = json_dumps(a, JSON_ENCODE_ANY | JSON_COMPACT), *y = json_dumps(b, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(what, wcap, "%.120s in the existing table, %.120s in the request", x ? x : "?", y ? y : "?");
    free(x);
    free(y);
    return true;
}

/* Whether a and b are the same schema (the same canonical JSON); when not, says where in
 * why. */
static bool same_schema(const strata_schema *a, const strata_schema *b, char *why, size_t cap)
{
    char *x = schema_json_dump(a), *y = schema_json_dump(b);
    bool same = x && y && strcmp(x, y) == 0;
    if (!same && why) {
        json_t *ja = x ? json_loads(x, 0, NULL) : NULL, *jb = y ? json_loads(y, 0, NULL) : NULL;
        char path[256] = "", what[300] = "";
        if (ja && jb && first_difference(ja, jb, path, sizeof path, what, sizeof what))
            snprintf(why, cap, "%s: %s", path[0] ? path : "schema", what);
        else
            snprintf(why, cap, "the schemas differ");
        json_decref(ja);
        json_decref(jb);
    }
    free(x);
    free(y);
    return same;
}

int catalog_create(strata_catalog *c, const strata_schema *s, strata_table **out, bool *created,
                   strata_err *err)
{
    if (out)
        *out = NULL;
    if (created)
        *created = false;
    int rc = schema_validate(s, err);
    if (rc)
        return rc;
    strata_schema *norm = malloc(sizeof *norm);
    if (!norm)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    *norm = *s;
    schema_apply_default_order(norm);
    pthread_mutex_lock(&c->lock);
    strata_table *t = NULL;
    ptrdiff_t at = find(c, s->name);
    if (at >= 0) {
        t = c->tables[at]->t;
        char why[600];
        if (!same_schema(table_schema(t), norm, why, sizeof why))
            rc = strata_err_set(err, STRATA_EEXIST,
                                "table '%s' exists with a different schema: %s (drop it first to "
                                "change the schema)", s->name, why);
        goto done;
    }
    if ((at = broken_find(c, s->name)) >= 0) {
        rc = strata_err_set(err, STRATA_EEXIST,
                            "table '%s' exists but cannot be opened (%s); drop it first", s->name,
                            c->broken[at].why);
        goto done;
    }
    char tdir[PATH_MAX];
    bool made = false;
    if ((rc = fs_path(tdir, sizeof tdir, err, "%s/%s", c->dir, s->name)) != 0 ||
        (rc = fs_mkdir(tdir, &made, err)) != 0)
        goto done;
    if ((rc = schema_json_save(tdir, norm, err)) != 0)
        goto undo;
    if ((rc = table_open(c->dir, norm, &t, err)) != 0)
        goto undo;
    /* The table's directory entry in <data> must be durable before the table is. */
    int drc = fs_fsync_dir(c->dir);
    if (drc) {
        rc = strata_err_set(err, STRATA_EIO, "%s: fsync directory: %s", c->dir, strerror(-drc));
        table_close(t);
        t = NULL;
        goto undo;
    }
    if (insert(c, t) != 0) {
        table_close(t);
        t = NULL;
        rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
        goto undo;
    }
    if (created)
        *created = true;
    goto done;
undo:
    /* Nothing of a failed creation may come back as a table at the next start. */
    if (made)
        fs_remove_tree(tdir);
    else {
        char sj[PATH_MAX + 32];
        if (fs_path(sj, sizeof sj, NULL, "%s/%s", tdir, SCHEMA_JSON_FILE) == 0)
            unlink(sj);
    }
done:
    if (rc == 0 && out) {
        c->tables[find(c, s->name)]->refs++;
        *out = t;
    }
    pthread_mutex_unlock(&c->lock);
    free(norm);
    return rc;
}

int catalog_drop(strata_catalog *c, const char *name, strata_err *err)
{
    pthread_mutex_lock(&c->drop_lock);
    pthread_mutex_lock(&c->lock);
    int rc = 0;
    char dir[PATH_MAX], tomb[PATH_MAX];
    /* Table names are short and c->dir is bounded: only a name that is no table's can
     * overflow these paths, and it is answered as one. */
    bool fits = fs_path(dir, sizeof dir, NULL, "%s/%s", c->dir, name) == 0 &&
                fs_path(tomb, sizeof tomb, NULL, "%s/" TOMB_PREFIX "%s-%" PRIu64 "-%ld", c->dir,
                        name, ++c->drop_seq, (long)getpid()) == 0;
    ptrdiff_t at = fits ? find(c, name) : -1;
    if (at < 0) {
        ptrdiff_t b = fits ? broken_find(c, name) : -1;
        if (b < 0) {
            rc = strata_err_set(err, STRATA_ENOTFOUND, "no table '%s'", name);
        } else if (fault_hit(FAULT_RENAME_DROP) || rename(dir, tomb) != 0) {
            rc = strata_err_set(err, STRATA_EIO, "%s: rename: %s", dir, strerror(errno ? errno : EIO));
        } else {
            memmove(&c->broken[b], &c->broken[b + 1], sizeof *c->broken * (c->nbroken - (size_t)b - 1));
            c->nbroken--;
            int drc = fs_fsync_dir(c->dir);
            fs_remove_tree(tomb);
            if (drc)
                rc = strata_err_set(err, STRATA_EIO, "table '%s' was dropped, but %s could not be "
                                    "fsynced (%s): after a crash it may come back",
                                    name, c->dir, strerror(-drc));
        }
        pthread_mutex_unlock(&c->lock);
        pthread_mutex_unlock(&c->drop_lock);
        return rc;
    }
    cat_entry *e = c->tables[at];
    e->refs++; /* ours, while the table's writers are paused outside the lock */
    strata_table *t = e->t;
    pthread_mutex_unlock(&c->lock);

    /* Wait out an append or flush in progress and hold the rest: nothing of this table
     * may be written once its directory has moved. */
    table_writes_pause(t);
    pthread_mutex_lock(&c->lock);
    at = find(c, name); /* unchanged: drops are serialized and creation needs a free name */
    errno = 0;
    bool room = c->ndropped < c->dropped_cap;
    if (!room) {
        size_t cap = c->dropped_cap ? c->dropped_cap * 2 : 8;
        cat_entry **nd = realloc(c->dropped, sizeof *nd * cap);
        if (nd) {
            c->dropped = nd;
            c->dropped_cap = cap;
            room = true;
        }
    }
    if (!room || fault_hit(FAULT_RENAME_DROP) || rename(dir, tomb) != 0) {
        rc = !room ? strata_err_set(err, STRATA_ENOMEM, "out of memory")
                   : strata_err_set(err, STRATA_EIO, "%s: rename: %s", dir, strerror(errno ? errno : EIO));
        pthread_mutex_unlock(&c->lock);
        table_writes_resume(t, false);
        catalog_put(c, t);
        pthread_mutex_unlock(&c->drop_lock);
        return rc;
    }
    /* The rename is the drop: once it is durable the table is gone, even after a crash. */
    int drc = fs_fsync_dir(c->dir);
    if (drc)
        rc = strata_err_set(err, STRATA_EIO, "table '%s' was dropped, but %s could not be fsynced "
                            "(%s): after a crash it may come back", name, c->dir, strerror(-drc));
    snprintf(e->tomb, sizeof e->tomb, "%s", tomb);
    e->dropped = true;
    memmove(&c->tables[at], &c->tables[at + 1], sizeof *c->tables * (c->n - (size_t)at - 1));
    c->n--;
    c->dropped[c->ndropped++] = e; /* room was made above */
    pthread_mutex_unlock(&c->lock);
    table_writes_resume(t, true);
    catalog_put(c, t); /* our reference: the last one closes it and removes its files */
    pthread_mutex_unlock(&c->drop_lock);
    return rc;
}
