/*
 * inspect.c — `strata inspect` of one segment file, and the JSON string writer the
 * directory listing (inspect_dir.c) shares (engine/text.h's escaper). See inspect.h.
 *
 * The summary: format version, schema, rows, time range, and per column the encodings
 * used, compressed and raw bytes, ratio, min/max, dictionary size and bitmap index bytes,
 * as a table or as one JSON object; rows are read granule by granule (every column's
 * block decoded) and printed as JSON objects; verify checks every checksum and decodes
 * every block. Nothing here writes: the file is only read. Rollup tier segments
 * (engine/rollup_store.h) read the same way; a sketch (a bytes column "uniq(c).sk" or
 * "quantile(c).sk") prints as its size and what it says (the distinct estimate; count,
 * p50 and p99), and a ".n" column, which stores values seen * 2 + (1 when the state
 * has one), shows the values seen.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/buf.h"
#include "engine/compress.h"
#include "engine/encode.h"
#include "engine/schema.h"
#include "engine/segment.h"
#include "engine/segment_format.h"
#include "engine/sketch.h"
#include "engine/text.h"
#include "engine/units.h"
#include "tools/inspect.h"

/* text_json_string's escaping: bytes that are not UTF-8 (a segment's strings and a
 * directory's names may hold any) become U+FFFD, so the output is JSON whatever they are. */
void inspect_json_string(FILE *f, const char *p, size_t n)
{
    bytebuf b = {0};
    text_json_string(&b, p, n);
    if (b.oom)
        fputs("null", f); /* out of memory for one string: the rest is still JSON */
    else
        fwrite(b.data, 1, b.len, f);
    buf_free(&b);
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
        text_double_shortest(d, txt, sizeof txt);
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
    if (t == STRATA_UINT64 || t == STRATA_STRING || t == STRATA_BYTES)
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
        const segment_granule_meta *gr = segment_granule(s, c, g);
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
    if (t == STRATA_BYTES) {
        for (uint32_t g = 0; g < segment_ngranules(s); g++)
            cs->raw += segment_granule(s, c, g)->block.raw_len;
    } else if (t == STRATA_STRING) {
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
                                  compress_codec_name((strata_codec)k), cs->codec_count[k]);
}

/* A rollup tier segment's ".n" column (values seen * 2 + has a value): shown as values seen. */
static bool state_count_col(const segment *s, int c)
{
    const char *n = segment_schema(s)->cols[c].name;
    size_t len = strlen(n);
    return segment_format_version(s) == SEGMENT_VERSION_BYTES && len > 2 && strcmp(n + len - 2, ".n") == 0;
}

static void value_text(const segment *s, int c, uint64_t v, char *out, size_t cap)
{
    strata_type t = segment_schema(s)->cols[c].type;
    if (state_count_col(s, c))
        v >>= 1;
    switch (t) {
    case STRATA_TIMESTAMP: units_format_rfc3339_ms((int64_t)v, out, cap); break;
    case STRATA_UINT64: snprintf(out, cap, "%" PRIu64, v); break;
    case STRATA_BYTES: snprintf(out, cap, "%" PRIu64 "B", v); break; /* a value's length */
    case STRATA_BOOL: snprintf(out, cap, "%s", v ? "true" : "false"); break;
    case STRATA_FLOAT64: {
        double d;
        memcpy(&d, &v, 8);
        text_double_shortest(d, out, cap); /* 9.66, not 9.6600000000000001 */
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

static void print_segment_text(const segment *s, FILE *out)
{
    const strata_schema *sc = segment_schema(s);
    char a[64], b[64];
    fprintf(out, "segment         %s\n", segment_path(s));
    fprintf(out, "format version  %u\n", segment_format_version(s));
    fprintf(out, "rows            %" PRIu64 "\n", segment_nrows(s));
    fprintf(out, "granules        %u of %u rows\n", segment_ngranules(s), segment_granule_rows(s));
    if (segment_nrows(s)) {
        units_format_rfc3339_ms(segment_min_time(s), a, sizeof a);
        units_format_rfc3339_ms(segment_max_time(s), b, sizeof b);
        fprintf(out, "time range      %s .. %s\n", a, b);
    }
    fprintf(out, "file bytes      %" PRIu64 " (%.2f bytes/row)\n", segment_file_bytes(s),
           segment_nrows(s) ? (double)segment_file_bytes(s) / (double)segment_nrows(s) : 0.0);
    fprintf(out, "time column     %s\n", sc->cols[sc->time_col].name);
    fprintf(out, "order by        ");
    for (int i = 0; i < sc->norder; i++)
        fprintf(out, "%s%s", i ? ", " : "", sc->cols[sc->order_by[i]].name);
    fprintf(out, "\n\n%-16s %-9s %12s %12s %7s %8s %8s %10s  %-28s %s\n", "column", "type", "compressed",
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
        fprintf(out, "%-16s %-9s %12" PRIu64 " %12" PRIu64 " %7.2f %8s %8s %10.3f  %-28s %s\n",
               sc->cols[c].name, strata_type_name(sc->cols[c].type), cs.stored, cs.raw,
               cs.stored ? (double)cs.raw / (double)cs.stored : 0.0, dict, bm,
               segment_nrows(s) ? (double)total / (double)segment_nrows(s) : 0.0, range, enc);
    }
}

static int print_rows(const segment *s, uint64_t limit, bool in_array, const inspect_dedup *dd, FILE *out);

/* The summary as one JSON object; with rows >= 0 it also holds "first_rows", the first
 * rows as objects. Returns 0, or 1 when a block could not be read. */
static int print_segment_json(const segment *s, long long rows, const inspect_dedup *dd, FILE *out)
{
    const strata_schema *sc = segment_schema(s);
    fprintf(out, "{\"path\":");
    inspect_json_string(out, segment_path(s), strlen(segment_path(s)));
    fprintf(out, ",\"format_version\":%u,\"rows\":%" PRIu64 ",\"granules\":%u,\"granule_rows\":%u,"
           "\"file_bytes\":%" PRIu64 ",\"min_time\":%" PRId64 ",\"max_time\":%" PRId64
           ",\"time_column\":",
           segment_format_version(s), segment_nrows(s), segment_ngranules(s),
           segment_granule_rows(s), segment_file_bytes(s), segment_min_time(s),
           segment_max_time(s));
    inspect_json_string(out, sc->cols[sc->time_col].name, strlen(sc->cols[sc->time_col].name));
    fprintf(out, ",\"order_by\":[");
    for (int i = 0; i < sc->norder; i++) {
        const char *n = sc->cols[sc->order_by[i]].name;
        if (i)
            fputc(',', out);
        inspect_json_string(out, n, strlen(n));
    }
    fprintf(out, "],\"columns\":[");
    for (int c = 0; c < sc->ncols; c++) {
        col_summary cs;
        summarize_col(s, c, &cs);
        strata_type t = sc->cols[c].type;
        fprintf(out, "%s{\"name\":", c ? "," : "");
        inspect_json_string(out, sc->cols[c].name, strlen(sc->cols[c].name));
        fprintf(out, ",\"type\":\"%s\",\"compressed_bytes\":%" PRIu64 ",\"raw_bytes\":%" PRIu64
               ",\"ratio\":%.4f,\"encodings\":{",
               strata_type_name(t), cs.stored, cs.raw,
               cs.stored ? (double)cs.raw / (double)cs.stored : 0.0);
        bool first = true;
        for (int e = 0; e < 256; e++)
            if (cs.enc_count[e]) {
                fprintf(out, "%s\"%s\":%" PRIu64, first ? "" : ",", encoding_name((uint8_t)e),
                       cs.enc_count[e]);
                first = false;
            }
        fprintf(out, "},\"codecs\":{");
        first = true;
        for (int k = 0; k < 3; k++)
            if (cs.codec_count[k]) {
                fprintf(out, "%s\"%s\":%" PRIu64, first ? "" : ",", compress_codec_name((strata_codec)k),
                       cs.codec_count[k]);
                first = false;
            }
        fprintf(out, "}");
        if (cs.have_range) {
            if (t == STRATA_STRING) {
                strata_str lo = segment_dict_value(s, c, (uint32_t)cs.min);
                strata_str hi = segment_dict_value(s, c, (uint32_t)cs.max);
                fprintf(out, ",\"min\":");
                inspect_json_string(out, lo.ptr, lo.len);
                fprintf(out, ",\"max\":");
                inspect_json_string(out, hi.ptr, hi.len);
            } else {
                int sh = state_count_col(s, c);
                fprintf(out, ",\"min\":");
                json_value(out, t, cs.min >> sh);
                fprintf(out, ",\"max\":");
                json_value(out, t, cs.max >> sh);
            }
        }
        if (t == STRATA_STRING)
            fprintf(out, ",\"dictionary_size\":%u,\"dictionary_bytes\":%" PRIu64
                   ",\"bitmap_index_bytes\":%" PRIu64,
                   segment_dict_size(s, c), segment_dict_bytes(s, c), segment_bitmap_bytes(s, c));
        fprintf(out, "}");
    }
    fprintf(out, "]");
    int rc = 0;
    if (rows >= 0) {
        fprintf(out, ",\"first_rows\":[");
        rc = print_rows(s, (uint64_t)rows, true, dd, out);
        fprintf(out, "]");
    }
    fprintf(out, "}\n");
    return rc;
}

/* The first limit rows as JSON objects: one a line, or comma-separated (in_array). */
/* The first `limit` rows of s as JSON objects; with dd, the rows queries skip (superseded,
 * deleted) are left out and counted on stderr. */
/* A bytes value as JSON: null when empty; a sketch by what it says. */
static void bytes_value(FILE *out, const char *col, const uint8_t *p, uint32_t n)
{
    if (n == 0) {
        fputs("null", out);
        return;
    }
    fprintf(out, "{\"bytes\":%u", n);
    if (strncmp(col, "uniq(", 5) == 0) {
        hll *h;
        if (hll_load(p, n, &h) == 0) {
            fprintf(out, ",\"uniq\":%" PRIu64, hll_estimate(h));
            hll_free(h);
        } else {
            fputs(",\"error\":\"malformed HLL\"", out);
        }
    } else if (strncmp(col, "quantile(", 9) == 0) {
        dds_packed *pk;
        ddsketch *d = dds_create();
        if (d && dds_packed_load(p, n, &pk) == 0) {
            if (dds_merge_packed(d, pk)) {
                char a[40], b[40];
                text_double_shortest(dds_quantile(d, 0.5), a, sizeof a);
                text_double_shortest(dds_quantile(d, 0.99), b, sizeof b);
                fprintf(out, ",\"count\":%" PRIu64 ",\"p50\":%s,\"p99\":%s", d->count, a, b);
            }
            free(pk);
        } else {
            fputs(",\"error\":\"malformed DDSketch\"", out);
        }
        dds_free(d);
    }
    fputc('}', out);
}

static int print_rows(const segment *s, uint64_t limit, bool in_array, const inspect_dedup *dd, FILE *out)
{
    uint64_t skipped_sup = 0, skipped_del = 0;
    bytebuf blob[STRATA_MAX_COLUMNS]; /* bytes columns: this granule's values, copied */
    memset(blob, 0, sizeof blob);
    const strata_schema *sc = segment_schema(s);
    segment_scratch scr = {0};
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
            else if (t == STRATA_BYTES) {
                const uint8_t *d;
                if ((rc = segment_read_bytes(s, c, g, vals[c], &d, &scr, &err)) == 0) {
                    uint32_t n = segment_granule_nrows(s, g);
                    blob[c].len = 0;
                    buf_put(&blob[c], d, ((uint32_t *)vals[c])[n - 1]);
                    if (blob[c].oom)
                        rc = strata_err_set(&err, STRATA_ENOMEM, "out of memory");
                }
            } else
                rc = segment_read_codes(s, c, g, vals[c], &scr, &err);
        }
        if (rc) {
            fprintf(stderr, "strata inspect: %s\n", err.msg);
            goto done;
        }
        uint32_t n = segment_granule_nrows(s, g);
        for (uint32_t i = 0; i < n && printed < limit; i++) {
            if (dd && dvec_test(dd->superseded, (uint64_t)g * gr + i)) {
                skipped_sup++;
                continue;
            }
            if (dd && dd->deleted_col >= 0 && ((int64_t *)vals[dd->deleted_col])[i]) {
                skipped_del++;
                continue;
            }
            if (in_array && printed)
                fputc(',', out);
            fputc('{', out);
            for (int c = 0; c < sc->ncols; c++) {
                strata_type t = sc->cols[c].type;
                if (c)
                    fputc(',', out);
                inspect_json_string(out, sc->cols[c].name, strlen(sc->cols[c].name));
                fputc(':', out);
                if (t == STRATA_STRING) {
                    strata_str v = segment_dict_value(s, c, ((uint32_t *)vals[c])[i]);
                    inspect_json_string(out, v.ptr, v.len);
                } else if (t == STRATA_BYTES) {
                    const uint32_t *e = vals[c];
                    uint32_t lo = i ? e[i - 1] : 0;
                    bytes_value(out, sc->cols[c].name, blob[c].data ? blob[c].data + lo : NULL, e[i] - lo);
                } else {
                    uint64_t v;
                    memcpy(&v, (char *)vals[c] + 8 * (size_t)i, 8);
                    json_value(out, t, state_count_col(s, c) ? v >> 1 : v);
                }
            }
            fputs(in_array ? "}" : "}\n", out);
            printed++;
        }
    }
    if (skipped_sup || skipped_del)
        fprintf(stderr,
                "strata inspect: left out %" PRIu64 " rows that newer versions of their key replaced and %" PRIu64
                " deletions, as queries do (--all-rows shows them)\n",
                skipped_sup, skipped_del);
done:
    for (int c = 0; c < sc->ncols; c++) {
        free(vals[c]);
        buf_free(&blob[c]);
    }
    segment_scratch_free(&scr);
    return rc ? 1 : 0;
}

int inspect_segment(const char *path, const inspect_opts *o, FILE *out)
{
    segment *s;
    strata_err err = {0};
    if (segment_open(path, &s, &err) != 0) {
        fprintf(stderr, "strata inspect: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    inspect_dedup dd;
    inspect_dedup_view(path, segment_nrows(s), segment_schema(s), &dd);
    if (o->verify) {
        if (segment_verify(s, &err) != 0) {
            fprintf(stderr, "strata inspect: %s\n", err.msg);
            rc = 1;
        } else if (!o->json && o->rows < 0) {
            fprintf(out, "ok: %s: %" PRIu64 " rows, %u granules x %d columns verified\n", path,
                   segment_nrows(s), segment_ngranules(s), segment_schema(s)->ncols);
        }
    }
    if (rc == 0) {
        if (o->json)
            rc = print_segment_json(s, o->rows, o->all_rows ? NULL : &dd, out);
        else if (o->rows >= 0)
            rc = print_rows(s, (uint64_t)o->rows, false, o->all_rows ? NULL : &dd, out);
        else if (!o->verify)
            print_segment_text(s, out);
        if (dvec_count(dd.superseded) && !o->json && o->rows < 0)
            fprintf(out, "superseded      %" PRIu64 " rows (newer versions of their key replaced them; its "
                         "MANIFEST says so, queries skip them, merges remove them)\n",
                    dvec_count(dd.superseded));
    }
    inspect_dedup_free(&dd);
    segment_close(s);
    return rc;
}
