/*
 * inspect_dir.c — `strata inspect` of a directory: a data directory, a table directory (or
 * its raw/ folder) or a partition directory. See inspect.h.
 *
 * The listing is one row per live segment as the partition manifests name them (like
 * ClickHouse's system.parts), sorted by table and partition, with totals; then the
 * segments of the table's rollup tiers as their TIER manifests list them (partition
 * "rollup_1m/2026-11"; min/max time: the bucket starts they cover), totalled apart: a
 * tier's later segments replace what older ones hold for the same buckets until merges
 * join them, so their rows are rows stored, not buckets.
 * A tier directory (DATA/t/rollup_1m), or one of its partitions, may be given alone too. Every listed
 * segment is opened and its row count compared with the manifest's; with verify every
 * checksum is checked and every block decoded, with a progress line (rate, ETA) on a
 * terminal. Each table's schema.json is loaded with the server's parser
 * (schema_json_parse_file, and the catalog's name check): one that cannot be loaded, or is
 * missing beside raw/, is a problem like a damaged segment (the server answers 503 for such
 * a table, or skips it). Problems are printed on stderr as they are found and counted.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/manifest.h"
#include "engine/rollup_store.h"
#include "engine/schema_json.h"
#include "engine/segment.h"
#include "engine/units.h"
#include "tools/inspect.h"
#include "tools/progress.h"

/* One live segment as its partition's manifest lists it. */
typedef struct part_row {
    char table[256], partition[256], file[PATH_MAX];
    manifest_segment seg;
    uint64_t superseded; /* rows its MANIFEST marks as replaced by newer versions (dedup) */
    char *error; /* why it failed to open or verify (strdup'd), or NULL */
} part_row;

/* A table whose schema.json cannot be loaded: file, and the loader's error (without the
 * file's path in front). */
typedef struct schema_problem {
    char table[256], file[PATH_MAX];
    char why[1024];
    bool missing;
} schema_problem;

typedef struct dir_scan {
    part_row *rows;
    size_t n, cap;
    schema_problem *bad_schemas;
    size_t nbad_schemas;
    int problems;
} dir_scan;

static int add_row(dir_scan *ds, const char *table, const char *part, const char *dir,
                   const manifest_segment *seg)
{
    if (ds->n == ds->cap) {
        size_t cap = ds->cap ? ds->cap * 2 : 64;
        part_row *r = realloc(ds->rows, sizeof *r * cap);
        if (!r)
            return -1;
        ds->rows = r;
        ds->cap = cap;
    }
    part_row *r = &ds->rows[ds->n++];
    snprintf(r->table, sizeof r->table, "%s", table);
    snprintf(r->partition, sizeof r->partition, "%s", part);
    char name[32];
    manifest_segment_name(seg->id, name, sizeof name);
    snprintf(r->file, sizeof r->file, "%.3800s/%s", dir, name);
    r->seg = *seg;
    r->error = NULL;
    return 0;
}

bool inspect_is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void last_component(const char *path, char *out, size_t cap)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    size_t n = strlen(tmp);
    while (n > 1 && tmp[n - 1] == '/')
        tmp[--n] = 0;
    const char *slash = strrchr(tmp, '/');
    snprintf(out, cap, "%s", slash ? slash + 1 : tmp);
}

/* A partition directory: read its manifest, note stray files. */
static void scan_partition(dir_scan *ds, const char *table, const char *dir)
{
    char part[256];
    last_component(dir, part, sizeof part);
    manifest m;
    strata_err err = {0};
    int rc = manifest_read(dir, &m, &err);
    if (rc == STRATA_ENOTFOUND)
        return; /* a partition that never committed */
    if (rc) {
        fprintf(stderr, "strata inspect: %s\n", err.msg);
        ds->problems++;
        return;
    }
    for (uint32_t i = 0; i < m.nsegs; i++)
        if (add_row(ds, table, part, dir, &m.segs[i]) == 0)
            ds->rows[ds->n - 1].superseded = inspect_manifest_superseded(&m, m.segs[i].id, m.segs[i].rows);
    manifest_free(&m);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dir (no hidden ones), sorted; *n gets the count. Free each name and the
 * array. NULL (with *n = 0) when dir cannot be read. */
static char **list_dir_sorted(const char *dir, size_t *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char **names = NULL;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char **nn = realloc(names, sizeof *nn * (*n + 1));
        char *name = strdup(de->d_name);
        if (!nn || !name) {
            free(name);
            if (nn)
                names = nn;
            break;
        }
        names = nn;
        names[(*n)++] = name;
    }
    closedir(d);
    if (*n)
        qsort(names, *n, sizeof *names, name_cmp);
    return names;
}

/* Loads dir/schema.json as the server does (catalog_open: schema_json_parse_file, then the
 * name must be the directory's); a failure is counted and kept in ds, and its message goes
 * to stderr like a damaged segment's. Out of memory for the record: counted, not kept. */
static void check_schema(dir_scan *ds, const char *table, const char *dir)
{
    char file[PATH_MAX];
    snprintf(file, sizeof file, "%.4000s/%s", dir, SCHEMA_JSON_FILE);
    strata_schema *sc = malloc(sizeof *sc);
    strata_err err = {0};
    int rc;
    if (!sc)
        rc = strata_err_set(&err, STRATA_ENOMEM, "%s: out of memory", file);
    else
        rc = schema_json_parse_file(file, sc, &err);
    if (rc == 0 && strcmp(sc->name, table) != 0)
        rc = strata_err_set(&err, STRATA_EINVAL, "%s: names table '%s' but lives in directory '%s'",
                            file, sc->name, table);
    free(sc);
    if (rc == 0)
        return;
    ds->problems++;
    bool missing = rc == STRATA_ENOTFOUND;
    const char *why = err.msg;
    size_t flen = strlen(file);
    if (strncmp(why, file, flen) == 0 && strncmp(why + flen, ": ", 2) == 0)
        why += flen + 2;
    if (missing)
        fprintf(stderr, "strata inspect: %s: MISSING (a table directory with raw/ has no %s; "
                        "the server does not see this table)\n", file, SCHEMA_JSON_FILE);
    else
        fprintf(stderr, "strata inspect: %s: DAMAGED: %s\n", file, why);
    schema_problem *nb = realloc(ds->bad_schemas, sizeof *nb * (ds->nbad_schemas + 1));
    if (!nb)
        return;
    ds->bad_schemas = nb;
    schema_problem *b = &nb[ds->nbad_schemas++];
    snprintf(b->table, sizeof b->table, "%s", table);
    snprintf(b->file, sizeof b->file, "%s", file);
    snprintf(b->why, sizeof b->why, "%s", missing ? "missing" : why);
    b->missing = missing;
}

/* True when dir is a table directory: it has raw/ or a schema.json. */
static bool is_table_dir(const char *dir)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%.4000s/raw", dir);
    if (inspect_is_dir(p))
        return true;
    snprintf(p, sizeof p, "%.4000s/%s", dir, SCHEMA_JSON_FILE);
    return exists(p);
}

/* A rollup tier directory: the segments its TIER lists (of partition only_part, when
 * not NULL). */
static void scan_tier(dir_scan *ds, const char *table, const char *dir, const char *only_part)
{
    char tier[256];
    last_component(dir, tier, sizeof tier);
    rollup_store_entry *e;
    uint32_t n;
    strata_err err = {0};
    if (rollup_store_list(dir, &e, &n, &err) != 0) {
        fprintf(stderr, "strata inspect: %s\n", err.msg);
        ds->problems++;
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (only_part && strcmp(only_part, e[i].partition) != 0)
            continue;
        char part[300];
        snprintf(part, sizeof part, "%.200s/%s", tier, e[i].partition);
        manifest_segment seg = {e[i].id, e[i].rows, e[i].bytes, e[i].from, e[i].to - 1, e[i].level};
        if (add_row(ds, table, part, dir, &seg) == 0)
            snprintf(ds->rows[ds->n - 1].file, sizeof ds->rows[ds->n - 1].file, "%.4000s", e[i].path);
    }
    free(e);
}

static bool is_tier_dir(const char *dir)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%.4000s/TIER", dir);
    return exists(p);
}

/* The table directory dir (named table): its schema.json, then its partitions. */
static void scan_table(dir_scan *ds, const char *table, const char *dir)
{
    char raw[PATH_MAX];
    check_schema(ds, table, dir);
    snprintf(raw, sizeof raw, "%.4000s/raw", dir);
    size_t n;
    char **names = list_dir_sorted(raw, &n);
    for (size_t i = 0; i < n; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%.3800s/%s", raw, names[i]);
        if (inspect_is_dir(p))
            scan_partition(ds, table, p);
        free(names[i]);
    }
    free(names);
    names = list_dir_sorted(dir, &n);
    for (size_t i = 0; i < n; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%.3800s/%s", dir, names[i]);
        if (strncmp(names[i], "rollup_", 7) == 0 && is_tier_dir(p))
            scan_tier(ds, table, p, NULL);
        free(names[i]);
    }
    free(names);
}

/* Fills ds from path: a partition directory (it has a MANIFEST), a table directory, the raw
 * folder of a table (DATA/t/raw, or "." inside it, stands for t), else a data directory
 * (each table directory in it). Returns 0, or 1 with the message printed when path cannot
 * be read or holds no table. */
static int scan_path(dir_scan *ds, const char *path)
{
    char probe[PATH_MAX];
    snprintf(probe, sizeof probe, "%.4000s/MANIFEST", path);
    if (exists(probe)) {
        char parent[PATH_MAX], table[256];
        snprintf(parent, sizeof parent, "%s/../..", path);
        char *real = realpath(parent, NULL);
        last_component(real ? real : "?", table, sizeof table);
        free(real);
        scan_partition(ds, table, path);
        return 0;
    }
    char table[256], last[256], parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%.4000s/..", path);
    if (is_tier_dir(path) || is_tier_dir(parent)) { /* a tier, or one of its partitions */
        bool part = !is_tier_dir(path);
        char *rt = realpath(part ? parent : path, NULL), up[PATH_MAX], only[256];
        snprintf(up, sizeof up, "%.4000s/..", rt ? rt : path);
        char *rp = realpath(up, NULL);
        last_component(rp ? rp : "?", table, sizeof table);
        last_component(path, only, sizeof only);
        scan_tier(ds, table, rt ? rt : path, part ? only : NULL);
        free(rp);
        free(rt);
        return 0;
    }
    char *real = realpath(path, NULL);
    last_component(path, last, sizeof last);
    const char *raw_path = strcmp(last, "raw") == 0 ? path : NULL;
    if (!raw_path && real) {
        last_component(real, last, sizeof last);
        if (strcmp(last, "raw") == 0)
            raw_path = real;
    }
    if (is_table_dir(path)) {
        last_component(real ? real : path, table, sizeof table); /* "." is a name too */
        scan_table(ds, table, path);
    } else if (raw_path) {
        /* parent: raw_path without its last component */
        snprintf(parent, sizeof parent, "%s", raw_path);
        size_t n = strlen(parent);
        while (n > 1 && parent[n - 1] == '/')
            parent[--n] = 0;
        while (n > 0 && parent[n - 1] != '/')
            parent[--n] = 0; /* drop "raw" */
        while (n > 1 && parent[n - 1] == '/')
            parent[--n] = 0;
        if (n == 0)
            snprintf(parent, sizeof parent, ".");
        char *rparent = realpath(parent, NULL);
        last_component(rparent ? rparent : parent, table, sizeof table);
        free(rparent);
        scan_table(ds, table, parent);
    } else {
        free(real);
        real = NULL;
        size_t n;
        char **names = list_dir_sorted(path, &n);
        if (!names && !inspect_is_dir(path)) {
            fprintf(stderr, "strata inspect: %s: %s\n", path, strerror(errno));
            return 1;
        }
        size_t tables = 0;
        for (size_t i = 0; i < n; i++) {
            char p[PATH_MAX];
            snprintf(p, sizeof p, "%.4000s/%s", path, names[i]);
            if (is_table_dir(p)) {
                scan_table(ds, names[i], p);
                tables++;
            }
            free(names[i]);
        }
        free(names);
        if (tables == 0) {
            /* Nothing to verify is not "all verified": the path is probably wrong. */
            fprintf(stderr, "strata inspect: %s: no strata table here (expected a data directory, a "
                            "table directory or a partition directory)\n", path);
            return 1;
        }
    }
    free(real);
    return 0;
}

/* Opens every listed segment (and with verify checks it whole), with a progress line; a
 * failure is counted, printed and kept in its row. */
static void open_segments(dir_scan *ds, bool verify, bool quiet)
{
    progress pg;
    uint64_t total_rows = 0;
    for (size_t i = 0; i < ds->n; i++)
        total_rows += ds->rows[i].seg.rows;
    progress_start(&pg, verify ? "verify" : "open", total_rows, "rows", quiet);
    uint64_t done_rows = 0;
    for (size_t i = 0; i < ds->n; i++) {
        part_row *r = &ds->rows[i];
        segment *s;
        strata_err err = {0};
        int rc = segment_open(r->file, &s, &err);
        if (rc == 0) {
            if (segment_nrows(s) != r->seg.rows) {
                rc = strata_err_set(&err, STRATA_ECORRUPT,
                                    "%.400s: holds %" PRIu64 " rows, manifest says %" PRIu64,
                                    r->file, segment_nrows(s), r->seg.rows);
            } else if (verify) {
                rc = segment_verify(s, &err);
            }
            segment_close(s);
        }
        if (rc) {
            ds->problems++;
            progress_clear(&pg);
            fprintf(stderr, "strata inspect: %s\n", err.msg);
            r->error = strdup(err.msg);
        }
        done_rows += r->seg.rows;
        progress_update(&pg, done_rows);
    }
    progress_finish(&pg);
}

static bool is_tier_row(const part_row *r) { return strncmp(r->partition, "rollup_", 7) == 0; }

/* The tiers' segments, rows stored and bytes. */
static void tier_totals(const dir_scan *ds, uint64_t *segs, uint64_t *rows, uint64_t *bytes)
{
    *segs = *rows = *bytes = 0;
    for (size_t i = 0; i < ds->n; i++)
        if (is_tier_row(&ds->rows[i])) {
            (*segs)++;
            *rows += ds->rows[i].seg.rows;
            *bytes += ds->rows[i].seg.bytes;
        }
}

static void print_json(const dir_scan *ds, FILE *out)
{
    uint64_t rows = 0, bytes = 0, superseded = 0, tsegs, trows, tbytes;
    tier_totals(ds, &tsegs, &trows, &tbytes);
    fprintf(out, "{\"segments\":[");
    for (size_t i = 0; i < ds->n; i++) {
        const part_row *r = &ds->rows[i];
        fprintf(out, "%s{\"table\":", i ? "," : "");
        inspect_json_string(out, r->table, strlen(r->table));
        fprintf(out, ",\"partition\":");
        inspect_json_string(out, r->partition, strlen(r->partition));
        fprintf(out, ",\"segment\":\"%016" PRIx64 "\",\"rows\":%" PRIu64 ",\"bytes\":%" PRIu64
                ",\"min_time\":%" PRId64 ",\"max_time\":%" PRId64 ",\"level\":%u,\"ok\":%s",
                r->seg.id, r->seg.rows, r->seg.bytes, r->seg.min_time, r->seg.max_time,
                r->seg.level, r->error ? "false" : "true");
        if (r->superseded)
            fprintf(out, ",\"superseded\":%" PRIu64, r->superseded);
        superseded += r->superseded;
        if (r->error) {
            fprintf(out, ",\"error\":");
            inspect_json_string(out, r->error, strlen(r->error));
        }
        fprintf(out, "}");
        if (!is_tier_row(r)) {
            rows += r->seg.rows;
            bytes += r->seg.bytes;
        }
    }
    fprintf(out, "]");
    if (ds->nbad_schemas) {
        fprintf(out, ",\"schemas\":[");
        for (size_t i = 0; i < ds->nbad_schemas; i++) {
            const schema_problem *b = &ds->bad_schemas[i];
            fprintf(out, "%s{\"table\":", i ? "," : "");
            inspect_json_string(out, b->table, strlen(b->table));
            fprintf(out, ",\"file\":");
            inspect_json_string(out, b->file, strlen(b->file));
            fprintf(out, ",\"ok\":false,\"error\":");
            inspect_json_string(out, b->why, strlen(b->why));
            fprintf(out, "}");
        }
        fprintf(out, "]");
    }
    fprintf(out, ",\"total\":{\"segments\":%" PRIu64 ",\"rows\":%" PRIu64 ",\"superseded\":%" PRIu64
            ",\"bytes\":%" PRIu64 "}",
            (uint64_t)ds->n - tsegs, rows, superseded, bytes);
    if (tsegs)
        fprintf(out, ",\"rollup_tiers\":{\"segments\":%" PRIu64 ",\"rows_stored\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
                tsegs, trows, tbytes);
    fprintf(out, ",\"problems\":%d}\n", ds->problems);
}

static void print_text(const dir_scan *ds, bool verify, FILE *out)
{
    uint64_t rows = 0, bytes = 0, superseded = 0, tsegs, trows, tbytes;
    tier_totals(ds, &tsegs, &trows, &tbytes);
    fprintf(out, "%-16s %-18s %-16s %12s %12s %9s  %-24s %-24s %s\n", "table", "partition",
            "segment", "rows", "bytes", "bytes/row", "min_time", "max_time", "level");
    for (size_t i = 0; i < ds->n; i++) {
        const part_row *r = &ds->rows[i];
        char a[40], b[40];
        units_format_rfc3339_ms(r->seg.min_time, a, sizeof a);
        units_format_rfc3339_ms(r->seg.max_time, b, sizeof b);
        fprintf(out, "%-16s %-18s %016" PRIx64 " %12" PRIu64 " %12" PRIu64 " %9.2f  %-24s %-24s %u%s\n",
                r->table, r->partition, r->seg.id, r->seg.rows, r->seg.bytes,
                r->seg.rows ? (double)r->seg.bytes / (double)r->seg.rows : 0.0, a, b,
                r->seg.level, r->error ? "  DAMAGED" : "");
        superseded += r->superseded;
        if (!is_tier_row(r)) {
            rows += r->seg.rows;
            bytes += r->seg.bytes;
        }
    }
    for (size_t i = 0; i < ds->nbad_schemas; i++)
        fprintf(out, "%s: %s\n", ds->bad_schemas[i].file,
                ds->bad_schemas[i].missing ? "MISSING" : "DAMAGED");
    uint64_t nraw = (uint64_t)ds->n - tsegs;
    fprintf(out, "total: %" PRIu64 " segment%s, %" PRIu64 " rows, %" PRIu64 " bytes", nraw, nraw == 1 ? "" : "s",
            rows, bytes);
    if (tsegs)
        fprintf(out, "; rollup tiers: %" PRIu64 " segment%s, %" PRIu64 " rows stored (a later save of a bucket "
                     "replaces an earlier one until merges join them), %" PRIu64 " bytes",
                tsegs, tsegs == 1 ? "" : "s", trows, tbytes);
    if (superseded)
        fprintf(out, ", %" PRIu64 " rows superseded by newer versions (queries skip them; merges remove them)",
                superseded);
    if (ds->nbad_schemas)
        fprintf(out, ", %zu schema.json unreadable", ds->nbad_schemas);
    if (verify)
        fprintf(out, ", %s", ds->problems ? "DAMAGE FOUND" : "all verified");
    fprintf(out, "\n");
}

int inspect_dir(const char *path, const inspect_opts *o, FILE *out)
{
    dir_scan ds = {0};
    int rc = scan_path(&ds, path);
    if (rc == 0) {
        open_segments(&ds, o->verify, o->quiet);
        if (o->json)
            print_json(&ds, out);
        else
            print_text(&ds, o->verify, out);
        rc = ds.problems ? 1 : 0;
    }
    for (size_t i = 0; i < ds.n; i++)
        free(ds.rows[i].error);
    free(ds.rows);
    free(ds.bad_schemas);
    return rc;
}
