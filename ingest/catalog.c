/*
 * catalog.c — the tables of a data directory. See catalog.h.
 *
 * Tables are kept in an array sorted by name; creation is rare, lookups are binary
 * searches under the catalog mutex. Schemas are compared through their canonical JSON
 * dump, so "the same schema" means the same thing as what is stored on disk.
 */
#include "catalog.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "schema_json.h"

struct strata_catalog {
    char dir[2900];
    pthread_mutex_t lock;
    strata_table **tables; /* sorted by name */
    size_t n, cap;
};

static int insert(strata_catalog *c, strata_table *t)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        strata_table **nt = realloc(c->tables, sizeof *nt * cap);
        if (!nt)
            return STRATA_ENOMEM;
        c->tables = nt;
        c->cap = cap;
    }
    size_t i = c->n;
    while (i > 0 && strcmp(table_schema(c->tables[i - 1])->name, table_schema(t)->name) > 0) {
        c->tables[i] = c->tables[i - 1];
        i--;
    }
    c->tables[i] = t;
    c->n++;
    return 0;
}

static strata_table *find(strata_catalog *c, const char *name)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = strcmp(table_schema(c->tables[mid])->name, name);
        if (cmp == 0)
            return c->tables[mid];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int catalog_open(const char *data_dir, strata_catalog **out, strata_err *err)
{
    *out = NULL;
    if (strlen(data_dir) >= 2900)
        return strata_err_set(err, STRATA_EINVAL, "data directory path is too long");
    if (mkdir(data_dir, 0755) != 0 && errno != EEXIST)
        return strata_err_set(err, STRATA_EIO, "%s: mkdir: %s", data_dir, strerror(errno));
    strata_catalog *c = calloc(1, sizeof *c);
    if (!c)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    snprintf(c->dir, sizeof c->dir, "%s", data_dir);
    pthread_mutex_init(&c->lock, NULL);
    DIR *d = opendir(data_dir);
    if (!d) {
        int rc = strata_err_set(err, STRATA_EIO, "%s: %s", data_dir, strerror(errno));
        catalog_close(c);
        return rc;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%.255s/%s", data_dir, de->d_name, SCHEMA_JSON_FILE);
        struct stat st;
        if (stat(path, &st) != 0)
            continue; /* not a table */
        strata_schema *s = malloc(sizeof *s);
        if (!s) {
            rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
            break;
        }
        if ((rc = schema_json_parse_file(path, s, err)) == 0) {
            if (strcmp(s->name, de->d_name) != 0)
                rc = strata_err_set(err, STRATA_EINVAL,
                                    "%s: names table '%s' but lives in directory '%s'", path,
                                    s->name, de->d_name);
        }
        strata_table *t = NULL;
        if (rc == 0 && (rc = table_open(data_dir, s, &t, err)) != 0)
            strata_err_prefix(err, "table '%s'", s->name);
        free(s);
        if (rc == 0 && insert(c, t) != 0) {
            table_close(t);
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
    for (size_t i = 0; i < c->n; i++)
        table_close(c->tables[i]);
    free(c->tables);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

const char *catalog_data_dir(const strata_catalog *c) { return c->dir; }

strata_table *catalog_get(strata_catalog *c, const char *name)
{
    pthread_mutex_lock(&c->lock);
    strata_table *t = find(c, name);
    pthread_mutex_unlock(&c->lock);
    return t;
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
    strata_table *t = i < c->n ? c->tables[i] : NULL;
    pthread_mutex_unlock(&c->lock);
    return t;
}

static bool same_schema(const strata_schema *a, const strata_schema *b)
{
    char *x = schema_json_dump(a), *y = schema_json_dump(b);
    bool same = x && y && strcmp(x, y) == 0;
    free(x);
    free(y);
    return same;
}

int catalog_create(strata_catalog *c, const strata_schema *s, strata_table **out, strata_err *err)
{
    int rc = schema_validate(s, err);
    if (rc)
        return rc;
    strata_schema *norm = malloc(sizeof *norm);
    if (!norm)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    *norm = *s;
    schema_apply_default_order(norm);
    pthread_mutex_lock(&c->lock);
    strata_table *t = find(c, s->name);
    if (t) {
        if (!same_schema(table_schema(t), norm))
            rc = strata_err_set(err, STRATA_EEXIST,
                                "table '%s' exists with a different schema", s->name);
        goto done;
    }
    char tdir[PATH_MAX];
    snprintf(tdir, sizeof tdir, "%s/%s", c->dir, s->name);
    if (mkdir(tdir, 0755) != 0 && errno != EEXIST) {
        rc = strata_err_set(err, STRATA_EIO, "%s: mkdir: %s", tdir, strerror(errno));
        goto done;
    }
    if ((rc = schema_json_save(tdir, norm, err)) != 0)
        goto done;
    if ((rc = table_open(c->dir, norm, &t, err)) != 0)
        goto done;
    if (insert(c, t) != 0) {
        table_close(t);
        t = NULL;
        rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
    }
done:
    pthread_mutex_unlock(&c->lock);
    free(norm);
    if (out)
        *out = rc == 0 ? t : NULL;
    return rc;
}
