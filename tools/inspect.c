/*
 * inspect.c — `strata inspect`: read-only, scriptable inspection of segment files and
 * data directories, in the manner of LMDB's mdb_stat.
 *
 * A segment file: format version, schema, rows, time range, and per column the
 * encodings used, compressed and raw bytes, ratio, min/max, dictionary size and bitmap
 * index bytes (--json for the same as one JSON object); --rows N prints rows as JSON
 * lines; --verify checks every checksum and decodes every block.
 * A directory (data dir, table dir or partition dir): one line per live segment, as
 * listed by the partition manifests (like ClickHouse's system.parts), with totals;
 * --verify checks every segment, showing progress with rate and ETA on a terminal.
 * Each table's schema.json is loaded with the server's parser (schema_json_parse_file, and
 * the name check of the catalog): one that cannot be loaded, or is missing beside raw/, is
 * a problem like a damaged segment (the server answers 503 for such a table, or skips it).
 * The raw folder of a table (DATA/t/raw) stands for the table.
 * Exit status: 0 sound, 1 damage found or an error, 2 usage.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/compress.h"
#include "engine/encode.h"
#include "engine/manifest.h"
#include "tools/progress.h"
#include "engine/schema.h"
#include "engine/schema_json.h"
#include "engine/segment.h"
#include "engine/segment_format.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: strata inspect PATH [--verify] [--json] [--rows N] [--quiet]\n\n"
            "PATH is a segment file (*.seg) or a directory: a data directory, a table\n"
            "directory or a partition directory.\n\n"
            "  --verify   check every checksum and decode every block; exit 1 on damage\n"
            "  --json     print the summary as JSON\n"
            "  --rows N   print the first N rows of a segment as JSON lines (with --json: in\n"
            "             the summary, as \"first_rows\")\n"
            "  --quiet    no progress output\n"
            "  --help     this text\n");
}

static void format_time(int64_t ms, char *out, size_t cap)
{
    int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    int64_t rem = ms - days * 86400000;
    int64_t y;
    unsigned m, d;
    strata_civil_from_days(days, &y, &m, &d);
    snprintf(out, cap, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02d.%03dZ", y, m, d,
             (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
             (int)(rem % 1000));
}

/* The shortest %.Ng text that reads back as exactly d (9.66, not 9.6600000000000001). */
static void format_double(double d, char *out, size_t cap)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            return;
    }
}

static void json_string(FILE *f, const char *p, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* Writes a value of column type t with 64 bits v as JSON. */
static void json_value(FILE *f, strata_type t, uint64_t v)
{
    switch (t) {
    case STRATA_UINT64: fprintf(f, "%" PRIu64, v); break;
    case STRATA_BOOL: fputs(v ? "true" : "false", f); break;
    case STRATA_FLOAT64: {
        double d;
        memcpy(&d, &v, 8);
        char txt[40];
        format_double(d, txt, sizeof txt);
        fputs(d != d || d - d != 0 ? "null" : txt, f); /* JSON has no NaN or infinities */
        break;
    }
    default: fprintf(f, "%" PRId64, (int64_t)v); break;
    }
}

static uint64_t raw_width(strata_type t)
{
    switch (t) {
    case STRATA_INT32: return 4;
    case STRATA_BOOL: return 1;
    default: return 8;
    }
}

typedef struct col_summary {
    uint64_t stored, raw;
    uint64_t enc_count[256];
    uint64_t codec_count[3];
    uint64_t min, max;
    bool have_range;
} col_summary;

static bool less_than(strata_type t, uint64_t a, uint64_t b)
{
    if (t == STRATA_UINT64 || t == STRATA_STRING)
        return a < b;
    if (t == STRATA_FLOAT64) {
        double x, y;
        memcpy(&x, &a, 8);
        memcpy(&y, &b, 8);
        return x < y;
    }
    return (int64_t)a < (int64_t)b;
}

static void summarize_col(const segment *s, int c, col_summary *cs)
{
    memset(cs, 0, sizeof *cs);
    strata_type t = segment_schema(s)->cols[c].type;
    for (uint32_t g = 0; g < segment_ngranules(s); g++) {
        const seg_granule *gr = segment_granule(s, c, g);
        cs->stored += gr->block.stored_len;
        cs->enc_count[gr->block.encoding]++;
        if (gr->block.codec < 3)
            cs->codec_count[gr->block.codec]++;
        if (t == STRATA_FLOAT64) {
            double lo, hi;
            memcpy(&lo, &gr->min, 8);
            memcpy(&hi, &gr->max, 8);
            if (lo > hi)
                continue; /* all NaN */
        }
        if (!cs->have_range || less_than(t, gr->min, cs->min))
            cs->min = gr->min;
        if (!cs->have_range || less_than(t, cs->max, gr->max))
            cs->max = gr->max;
        cs->have_range = true;
    }
    if (t == STRATA_STRING) {
        for (uint32_t code = 0; code < segment_dict_size(s, c); code++)
            cs->raw += (uint64_t)segment_dict_value(s, c, code).len *
                       roaring_bitmap_get_cardinality(segment_dict_bitmap(s, c, code));
    } else {
        cs->raw = segment_nrows(s) * raw_width(t);
    }
}

static void encodings_text(const col_summary *cs, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    for (int e = 0; e < 256; e++)
        if (cs->enc_count[e] && n < cap)
            n += (size_t)snprintf(out + n, cap - n, "%s%s:%" PRIu64, n ? "," : "",
                                  encoding_name((uint8_t)e), cs->enc_count[e]);
    for (int k = 0; k < 3; k++)
        if (cs->codec_count[k] && n < cap)
            n += (size_t)snprintf(out + n, cap - n, "%s%s:%" PRIu64, n ? "," : "",
                                  codec_name((strata_codec)k), cs->codec_count[k]);
}

static void value_text(const segment *s, int c, uint64_t v, char *out, size_t cap)
{
    strata_type t = segment_schema(s)->cols[c].type;
    switch (t) {
    case STRATA_TIMESTAMP: format_time((int64_t)v, out, cap); break;
    case STRATA_UINT64: snprintf(out, cap, "%" PRIu64, v); break;
    case STRATA_BOOL: snprintf(out, cap, "%s", v ? "true" : "false"); break;
    case STRATA_FLOAT64: {
        double d;
        memcpy(&d, &v, 8);
        format_double(d, out, cap);
        break;
    }
    case STRATA_STRING: {
        strata_str sv = segment_dict_value(s, c, (uint32_t)v);
        snprintf(out, cap, "\"%.*s\"", (int)(sv.len > 40 ? 40 : sv.len), sv.ptr);
        break;
    }
    default: snprintf(out, cap, "%" PRId64, (int64_t)v); break;
    }
}

static void print_segment_text(const segment *s)
{
    const strata_schema *sc = segment_schema(s);
    char a[64], b[64];
    printf("segment         %s\n", segment_path(s));
    printf("format version  %u\n", segment_format_version(s));
    printf("rows            %" PRIu64 "\n", segment_nrows(s));
    printf("granules        %u of %u rows\n", segment_ngranules(s), segment_granule_rows(s));
    if (segment_nrows(s)) {
        format_time(segment_min_time(s), a, sizeof a);
        format_time(segment_max_time(s), b, sizeof b);
        printf("time range      %s .. %s\n", a, b);
    }
    printf("file bytes      %" PRIu64 " (%.2f bytes/row)\n", segment_file_bytes(s),
           segment_nrows(s) ? (double)segment_file_bytes(s) / (double)segment_nrows(s) : 0.0);
    printf("time column     %s\n", sc->cols[sc->time_col].name);
    printf("order by        ");
    for (int i = 0; i < sc->norder; i++)
        printf("%s%s", i ? ", " : "", sc->cols[sc->order_by[i]].name);
    printf("\n\n%-16s %-9s %12s %12s %7s %8s %8s %10s  %-28s %s\n", "column", "type", "compressed",
           "raw", "ratio", "dict", "bitmaps", "bytes/row", "min .. max", "encodings");
    for (int c = 0; c < sc->ncols; c++) {
        col_summary cs;
        summarize_col(s, c, &cs);
        char enc[512], range[160] = "";
        encodings_text(&cs, enc, sizeof enc);
        if (cs.have_range) {
            value_text(s, c, cs.min, a, sizeof a);
            value_text(s, c, cs.max, b, sizeof b);
            snprintf(range, sizeof range, "%s .. %s", a, b);
        }
        bool str = sc->cols[c].type == STRATA_STRING;
        uint64_t total = cs.stored + (str ? segment_dict_bytes(s, c) + segment_bitmap_bytes(s, c) : 0);
        char dict[24] = "-", bm[24] = "-";
        if (str) {
            snprintf(dict, sizeof dict, "%u", segment_dict_size(s, c));
            snprintf(bm, sizeof bm, "%" PRIu64, segment_bitmap_bytes(s, c));
        }
        printf("%-16s %-9s %12" PRIu64 " %12" PRIu64 " %7.2f %8s %8s %10.3f  %-28s %s\n",
               sc->cols[c].name, strata_type_name(sc->cols[c].type), cs.stored, cs.raw,
               cs.stored ? (double)cs.raw / (double)cs.stored : 0.0, dict, bm,
               segment_nrows(s) ? (double)total / (double)segment_nrows(s) : 0.0, range, enc);
    }
}

static int print_rows(const segment *s, uint64_t limit, bool in_array);

/* The summary as one JSON object; with rows >= 0 it also holds "first_rows", the first
 * rows as objects. Returns 0, or 1 when a block could not be read. */
static int print_segment_json(const segment *s, long long rows)
{
    const strata_schema *sc = segment_schema(s);
    printf("{\"path\":");
    json_string(stdout, segment_path(s), strlen(segment_path(s)));
    printf(",\"format_version\":%u,\"rows\":%" PRIu64 ",\"granules\":%u,\"granule_rows\":%u,"
           "\"file_bytes\":%" PRIu64 ",\"min_time\":%" PRId64 ",\"max_time\":%" PRId64
           ",\"time_column\":",
           segment_format_version(s), segment_nrows(s), segment_ngranules(s),
           segment_granule_rows(s), segment_file_bytes(s), segment_min_time(s),
           segment_max_time(s));
    json_string(stdout, sc->cols[sc->time_col].name, strlen(sc->cols[sc->time_col].name));
    printf(",\"order_by\":[");
    for (int i = 0; i < sc->norder; i++) {
        const char *n = sc->cols[sc->order_by[i]].name;
        if (i)
            putchar(',');
        json_string(stdout, n, strlen(n));
    }
    printf("],\"columns\":[");
    for (int c = 0; c < sc->ncols; c++) {
        col_summary cs;
        summarize_col(s, c, &cs);
        strata_type t = sc->cols[c].type;
        printf("%s{\"name\":", c ? "," : "");
        json_string(stdout, sc->cols[c].name, strlen(sc->cols[c].name));
        printf(",\"type\":\"%s\",\"compressed_bytes\":%" PRIu64 ",\"raw_bytes\":%" PRIu64
               ",\"ratio\":%.4f,\"encodings\":{",
               strata_type_name(t), cs.stored, cs.raw,
               cs.stored ? (double)cs.raw / (double)cs.stored : 0.0);
        bool first = true;
        for (int e = 0; e < 256; e++)
            if (cs.enc_count[e]) {
                printf("%s\"%s\":%" PRIu64, first ? "" : ",", encoding_name((uint8_t)e),
                       cs.enc_count[e]);
                first = false;
            }
        printf("},\"codecs\":{");
        first = true;
        for (int k = 0; k < 3; k++)
            if (cs.codec_count[k]) {
                printf("%s\"%s\":%" PRIu64, first ? "" : ",", codec_name((strata_codec)k),
                       cs.codec_count[k]);
                first = false;
            }
        printf("}");
        if (cs.have_range) {
            if (t == STRATA_STRING) {
                strata_str lo = segment_dict_value(s, c, (uint32_t)cs.min);
                strata_str hi = segment_dict_value(s, c, (uint32_t)cs.max);
                printf(",\"min\":");
                json_string(stdout, lo.ptr, lo.len);
                printf(",\"max\":");
                json_string(stdout, hi.ptr, hi.len);
            } else {
                printf(",\"min\":");
                json_value(stdout, t, cs.min);
                printf(",\"max\":");
                json_value(stdout, t, cs.max);
            }
        }
        if (t == STRATA_STRING)
            printf(",\"dictionary_size\":%u,\"dictionary_bytes\":%" PRIu64
                   ",\"bitmap_index_bytes\":%" PRIu64,
                   segment_dict_size(s, c), segment_dict_bytes(s, c), segment_bitmap_bytes(s, c));
        printf("}");
    }
    printf("]");
    int rc = 0;
    if (rows >= 0) {
        printf(",\"first_rows\":[");
        rc = print_rows(s, (uint64_t)rows, true);
        printf("]");
    }
    printf("}\n");
    return rc;
}

/* The first limit rows as JSON objects: one a line, or comma-separated (in_array). */
static int print_rows(const segment *s, uint64_t limit, bool in_array)
{
    const strata_schema *sc = segment_schema(s);
    seg_scratch scr = {0};
    strata_err err = {0};
    uint32_t gr = segment_granule_rows(s);
    void *vals[STRATA_MAX_COLUMNS] = {0};
    int rc = 0;
    for (int c = 0; c < sc->ncols; c++)
        if (!(vals[c] = malloc(8 * (size_t)gr))) {
            rc = STRATA_ENOMEM;
            fprintf(stderr, "strata inspect: out of memory\n");
            goto done;
        }
    uint64_t printed = 0;
    for (uint32_t g = 0; g < segment_ngranules(s) && printed < limit; g++) {
        for (int c = 0; c < sc->ncols && rc == 0; c++) {
            strata_type t = sc->cols[c].type;
            if (strata_type_is_int(t))
                rc = segment_read_ints(s, c, g, vals[c], &scr, &err);
            else if (t == STRATA_FLOAT64)
                rc = segment_read_floats(s, c, g, vals[c], &scr, &err);
            else
                rc = segment_read_codes(s, c, g, vals[c], &scr, &err);
        }
        if (rc) {
            fprintf(stderr, "strata inspect: %s\n", err.msg);
            goto done;
        }
        uint32_t n = segment_granule_nrows(s, g);
        for (uint32_t i = 0; i < n && printed < limit; i++, printed++) {
            if (in_array && printed)
                putchar(',');
            putchar('{');
            for (int c = 0; c < sc->ncols; c++) {
                strata_type t = sc->cols[c].type;
                if (c)
                    putchar(',');
                json_string(stdout, sc->cols[c].name, strlen(sc->cols[c].name));
                putchar(':');
                if (t == STRATA_STRING) {
                    strata_str v = segment_dict_value(s, c, ((uint32_t *)vals[c])[i]);
                    json_string(stdout, v.ptr, v.len);
                } else {
                    uint64_t v;
                    memcpy(&v, (char *)vals[c] + 8 * (size_t)i, 8);
                    json_value(stdout, t, v);
                }
            }
            if (in_array)
                putchar('}');
            else
                puts("}");
        }
    }
done:
    for (int c = 0; c < sc->ncols; c++)
        free(vals[c]);
    seg_scratch_free(&scr);
    return rc ? 1 : 0;
}

static int inspect_segment(const char *path, bool verify, bool json, long long rows)
{
    segment *s;
    strata_err err = {0};
    if (segment_open(path, &s, &err) != 0) {
        fprintf(stderr, "strata inspect: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    if (verify) {
        if (segment_verify(s, &err) != 0) {
            fprintf(stderr, "strata inspect: %s\n", err.msg);
            rc = 1;
        } else if (!json && rows < 0) {
            printf("ok: %s: %" PRIu64 " rows, %u granules x %d columns verified\n", path,
                   segment_nrows(s), segment_ngranules(s), segment_schema(s)->ncols);
        }
    }
    if (rc == 0) {
        if (json)
            rc = print_segment_json(s, rows);
        else if (rows >= 0)
            rc = print_rows(s, (uint64_t)rows, false);
        else if (!verify)
            print_segment_text(s);
    }
    segment_close(s);
    return rc;
}

/* ---- directories ------------------------------------------------------------------ */

typedef struct part_row {
    char table[256], partition[256], file[PATH_MAX];
    manifest_segment seg;
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
    return 0;
}

static bool is_dir(const char *p)
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
        add_row(ds, table, part, dir, &m.segs[i]);
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
    if (is_dir(p))
        return true;
    snprintf(p, sizeof p, "%.4000s/%s", dir, SCHEMA_JSON_FILE);
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
        if (is_dir(p))
            scan_partition(ds, table, p);
        free(names[i]);
    }
    free(names);
}

static int inspect_dir(const char *path, bool verify, bool json, bool quiet)
{
    dir_scan ds = {0};
    char probe[PATH_MAX];
    snprintf(probe, sizeof probe, "%.4000s/MANIFEST", path);
    if (exists(probe)) {
        char parent[PATH_MAX], table[256];
        snprintf(parent, sizeof parent, "%s/../..", path);
        char *real = realpath(parent, NULL);
        last_component(real ? real : "?", table, sizeof table);
        free(real);
        scan_partition(&ds, table, path);
    } else {
        char table[256], last[256], parent[PATH_MAX];
        /* DATA/t/raw (or "." inside it) stands for the table t */
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
            scan_table(&ds, table, path);
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
            scan_table(&ds, table, parent);
        } else {
            free(real);
            real = NULL;
            size_t n;
            char **names = list_dir_sorted(path, &n);
            if (!names && !is_dir(path)) {
                fprintf(stderr, "strata inspect: %s: %s\n", path, strerror(errno));
                return 1;
            }
            size_t tables = 0;
            for (size_t i = 0; i < n; i++) {
                char p[PATH_MAX];
                snprintf(p, sizeof p, "%.4000s/%s", path, names[i]);
                if (is_table_dir(p)) {
                    scan_table(&ds, names[i], p);
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
    }

    /* Verify (or at least open) every listed segment. */
    progress pg;
    uint64_t total_rows = 0;
    for (size_t i = 0; i < ds.n; i++)
        total_rows += ds.rows[i].seg.rows;
    progress_start(&pg, verify ? "verify" : "open", total_rows, "rows", quiet);
    uint64_t done_rows = 0;
    char **status = calloc(ds.n + 1, sizeof *status);
    for (size_t i = 0; i < ds.n; i++) {
        segment *s;
        strata_err err = {0};
        int rc = segment_open(ds.rows[i].file, &s, &err);
        if (rc == 0) {
            if (segment_nrows(s) != ds.rows[i].seg.rows) {
                rc = strata_err_set(&err, STRATA_ECORRUPT,
                                    "%.400s: holds %" PRIu64 " rows, manifest says %" PRIu64,
                                    ds.rows[i].file, segment_nrows(s), ds.rows[i].seg.rows);
            } else if (verify) {
                rc = segment_verify(s, &err);
            }
            segment_close(s);
        }
        if (rc) {
            ds.problems++;
            progress_clear(&pg);
            fprintf(stderr, "strata inspect: %s\n", err.msg);
            if (status)
                status[i] = strdup(err.msg);
        }
        done_rows += ds.rows[i].seg.rows;
        progress_update(&pg, done_rows);
    }
    progress_finish(&pg);

    uint64_t rows = 0, bytes = 0;
    if (json) {
        printf("{\"segments\":[");
        for (size_t i = 0; i < ds.n; i++) {
            part_row *r = &ds.rows[i];
            printf("%s{\"table\":", i ? "," : "");
            json_string(stdout, r->table, strlen(r->table));
            printf(",\"partition\":");
            json_string(stdout, r->partition, strlen(r->partition));
            printf(",\"segment\":\"%016" PRIx64 "\",\"rows\":%" PRIu64 ",\"bytes\":%" PRIu64
                   ",\"min_time\":%" PRId64 ",\"max_time\":%" PRId64 ",\"level\":%u,\"ok\":%s",
                   r->seg.id, r->seg.rows, r->seg.bytes, r->seg.min_time, r->seg.max_time,
                   r->seg.level, status && status[i] ? "false" : "true");
            if (status && status[i]) {
                printf(",\"error\":");
                json_string(stdout, status[i], strlen(status[i]));
            }
            printf("}");
            rows += r->seg.rows;
            bytes += r->seg.bytes;
        }
        printf("]");
        if (ds.nbad_schemas) {
            printf(",\"schemas\":[");
            for (size_t i = 0; i < ds.nbad_schemas; i++) {
                schema_problem *b = &ds.bad_schemas[i];
                printf("%s{\"table\":", i ? "," : "");
                json_string(stdout, b->table, strlen(b->table));
                printf(",\"file\":");
                json_string(stdout, b->file, strlen(b->file));
                printf(",\"ok\":false,\"error\":");
                json_string(stdout, b->why, strlen(b->why));
                printf("}");
            }
            printf("]");
        }
        printf(",\"total\":{\"segments\":%zu,\"rows\":%" PRIu64 ",\"bytes\":%" PRIu64
               "},\"problems\":%d}\n",
               ds.n, rows, bytes, ds.problems);
    } else {
        printf("%-16s %-14s %-16s %12s %12s %9s  %-24s %-24s %s\n", "table", "partition",
               "segment", "rows", "bytes", "bytes/row", "min_time", "max_time", "level");
        for (size_t i = 0; i < ds.n; i++) {
            part_row *r = &ds.rows[i];
            char a[40], b[40];
            format_time(r->seg.min_time, a, sizeof a);
            format_time(r->seg.max_time, b, sizeof b);
            printf("%-16s %-14s %016" PRIx64 " %12" PRIu64 " %12" PRIu64 " %9.2f  %-24s %-24s %u%s\n",
                   r->table, r->partition, r->seg.id, r->seg.rows, r->seg.bytes,
                   r->seg.rows ? (double)r->seg.bytes / (double)r->seg.rows : 0.0, a, b,
                   r->seg.level, status && status[i] ? "  DAMAGED" : "");
            rows += r->seg.rows;
            bytes += r->seg.bytes;
        }
        for (size_t i = 0; i < ds.nbad_schemas; i++)
            printf("%s: %s\n", ds.bad_schemas[i].file,
                   ds.bad_schemas[i].missing ? "MISSING" : "DAMAGED");
        printf("total: %zu segment%s, %" PRIu64 " rows, %" PRIu64 " bytes", ds.n, ds.n == 1 ? "" : "s",
               rows, bytes);
        if (ds.nbad_schemas)
            printf(", %zu schema.json unreadable", ds.nbad_schemas);
        if (verify)
            printf(", %s", ds.problems ? "DAMAGE FOUND" : "all verified");
        printf("\n");
    }
    for (size_t i = 0; status && i < ds.n; i++)
        free(status[i]);
    free(status);
    free(ds.rows);
    free(ds.bad_schemas);
    return ds.problems ? 1 : 0;
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {
        {"verify", no_argument, 0, 'v'}, {"json", no_argument, 0, 'j'},
        {"rows", required_argument, 0, 'r'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},   {0, 0, 0, 0},
    };
    bool verify = false, json = false, quiet = false;
    long long rows = -1;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "vjr:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'v': verify = true; break;
        case 'j': json = true; break;
        case 'q': quiet = true; break;
        case 'r': {
            char *end;
            errno = 0;
            rows = strtoll(optarg, &end, 10);
            if (errno || *end || rows < 0) {
                fprintf(stderr, "strata inspect: --rows takes a non-negative number, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    const char *path = argv[optind];
    if (is_dir(path)) {
        if (rows >= 0) {
            fprintf(stderr, "strata inspect: --rows needs a segment file, %s is a directory\n", path);
            return 2;
        }
        return inspect_dir(path, verify, json, quiet);
    }
    if (!exists(path)) {
        fprintf(stderr, "strata inspect: %s: %s\n", path, strerror(errno));
        return 1;
    }
    return inspect_segment(path, verify, json, rows);
}
