/*
 * bench_segment.c — storage benchmark on the reference order events.
 *
 * Generates N events (default 10M, 7 days) with order_gen, then for each codec (lz4,
 * zstd) in one process:
 *   write:  table_append of every row into memtables and table_flush to segments (sort by
 *           order_by, encode, compress, write, fsync, manifest commit) — rows/s, one core;
 *   decode: every block of every column of every segment read, checked and decoded into
 *           plain arrays — values/s and rows/s, one core, median of 3 runs;
 *   size:   segment bytes on disk per row.
 * Baseline in the same run: the same rows written as plain fixed-width columns (8 bytes
 * per value, strings as 4-byte codes plus the distinct strings once) with one fsync, and
 * read back with memcpy: the figures are shown as ratios against it.
 *
 * usage: bench_segment [--rows N] [--data DIR] [--keep] [--codec lz4|zstd|both]
 *                      [--order-by COL,...]   (default: the table's default sort key)
 * Prints figures only; exits non-zero on error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "engine/catalog.h"
#include "tools/order_gen.h"
#include "engine/table.h"

static double median3(double a, double b, double c)
{
    double v[3] = {a, b, c};
    return bench_median(v, 3);
}


#define BATCH 65536

typedef struct dataset {
    strata_schema schema;
    uint32_t nbatches;
    row_batch *batches;
    uint64_t rows;
} dataset;

static int make_dataset(dataset *d, uint64_t rows, const char *order_by)
{
    order_gen_schema(&d->schema);
    if (order_by) {
        /* comma-separated column names replace the default sort key */
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s", order_by);
        d->schema.norder = 0;
        for (char *tok = strtok(tmp, ","); tok; tok = strtok(NULL, ",")) {
            int c = schema_column_index(&d->schema, tok);
            if (c < 0) {
                fprintf(stderr, "bench_segment: --order-by: no column '%s'\n", tok);
                return 1;
            }
            d->schema.order_by[d->schema.norder++] = c;
        }
    }
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.count = rows;
    strata_err err = {0};
    order_gen *g = order_gen_create(&o, &err);
    if (!g) {
        fprintf(stderr, "bench_segment: %s\n", err.msg);
        return 1;
    }
    d->nbatches = (uint32_t)((rows + BATCH - 1) / BATCH);
    d->batches = calloc(d->nbatches, sizeof *d->batches);
    for (uint32_t i = 0; i < d->nbatches; i++) {
        row_batch_init(&d->batches[i], &d->schema, BATCH);
        d->rows += order_gen_fill(g, &d->batches[i], BATCH);
    }
    order_gen_free(g);
    return 0;
}

/* Appends every row and flushes to segments; returns seconds. */
static double run_write(const dataset *d, const char *dir, strata_codec codec, uint64_t *bytes,
                        uint64_t *segments, double *flush_s)
{
    strata_schema s = d->schema;
    s.codec = codec;
    strata_err err = {0};
    strata_table *t;
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/orders'", dir);
    if (system(cmd) != 0)
        exit(1);
    strata_catalog *cat;
    if (catalog_open(dir, &cat, &err) != 0 || catalog_create(cat, &s, &t, NULL, &err) != 0) {
        fprintf(stderr, "bench_segment: %s\n", err.msg);
        exit(1);
    }
    double t0 = bench_now_s();
    for (uint32_t i = 0; i < d->nbatches; i++) {
        int rc = table_append(t, &d->batches[i], &err);
        if (rc == STRATA_EFULL) /* what a server's flusher does at the memory budget */
            rc = table_flush(t, true, &err) ? err.code : table_append(t, &d->batches[i], &err);
        if (rc != 0) {
            fprintf(stderr, "bench_segment: %s\n", err.msg);
            exit(1);
        }
    }
    if (table_flush(t, true, &err) != 0) {
        fprintf(stderr, "bench_segment: %s\n", err.msg);
        exit(1);
    }
    double el = bench_now_s() - t0;
    table_stats st;
    table_get_stats(t, &st);
    *bytes = st.segment_bytes;
    *segments = st.segments;
    *flush_s = (double)st.flush_ns / 1e9;
    if (st.segment_rows != d->rows) {
        fprintf(stderr, "bench_segment: %" PRIu64 " rows in segments, expected %" PRIu64 "\n",
                st.segment_rows, d->rows);
        exit(1);
    }
    catalog_close(cat);
    return el;
}

/* Decodes every block of every segment; returns seconds and the number of values. */
static double run_decode(const dataset *d, const char *dir, uint64_t *values)
{
    strata_err err = {0};
    strata_table *t;
    if (table_open(dir, &d->schema, &t, &err) != 0) {
        fprintf(stderr, "bench_segment: %s\n", err.msg);
        exit(1);
    }
    table_snapshot *snap = table_snapshot_acquire(t, INT64_MIN, INT64_MAX);
    segment_scratch sc = {0};
    int64_t *iv = malloc(8 * SEGMENT_GRANULE_ROWS);
    double *fv = malloc(8 * SEGMENT_GRANULE_ROWS);
    uint32_t *cv = malloc(4 * SEGMENT_GRANULE_ROWS);
    uint64_t n = 0, check = 0;
    double t0 = bench_now_s();
    for (uint32_t p = 0; p < snap->nparts; p++)
        for (uint32_t i = 0; i < snap->parts[p].nsegs; i++) {
            segment *seg = snap->parts[p].segs[i];
            const strata_schema *ss = segment_schema(seg);
            for (int c = 0; c < ss->ncols; c++)
                for (uint32_t g = 0; g < segment_ngranules(seg); g++) {
                    strata_type ty = ss->cols[c].type;
                    int rc;
                    uint32_t rows = segment_granule_nrows(seg, g);
                    if (strata_type_is_int(ty)) {
                        rc = segment_read_ints(seg, c, g, iv, &sc, &err);
                        check += (uint64_t)iv[rows - 1];
                    } else if (ty == STRATA_FLOAT64) {
                        rc = segment_read_floats(seg, c, g, fv, &sc, &err);
                        check += (uint64_t)fv[rows - 1];
                    } else {
                        rc = segment_read_codes(seg, c, g, cv, &sc, &err);
                        check += cv[rows - 1];
                    }
                    if (rc) {
                        fprintf(stderr, "bench_segment: %s\n", err.msg);
                        exit(1);
                    }
                    n += rows;
                }
        }
    double el = bench_now_s() - t0;
    if (check == 42)
        fputc(' ', stderr); /* keeps the decode from being optimized away */
    free(iv);
    free(fv);
    free(cv);
    segment_scratch_free(&sc);
    table_snapshot_release(snap);
    table_close(t);
    *values = n;
    return el;
}

/* Baseline: plain columns, one file, one fsync; then read back with memcpy. */
static void run_plain(const dataset *d, const char *dir, double *write_s, double *read_s,
                      uint64_t *bytes)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/plain.bin", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    const strata_schema *s = &d->schema;
    uint32_t *codes = malloc(4 * BATCH);
    double t0 = bench_now_s();
    uint64_t total = 0;
    for (uint32_t b = 0; b < d->nbatches; b++) {
        const row_batch *rb = &d->batches[b];
        for (int c = 0; c < s->ncols; c++) {
            const void *p;
            size_t len;
            if (strata_type_is_int(s->cols[c].type)) {
                p = rb->i[c];
                len = 8 * (size_t)rb->nrows;
            } else if (s->cols[c].type == STRATA_FLOAT64) {
                p = rb->f[c];
                len = 8 * (size_t)rb->nrows;
            } else {
                /* codes: the low 32 bits of each value's offset stand in for a code */
                for (uint32_t r = 0; r < rb->nrows; r++)
                    codes[r] = (uint32_t)rb->s[c][r].off;
                p = codes;
                len = 4 * (size_t)rb->nrows;
            }
            if (write(fd, p, len) != (ssize_t)len) {
                perror("write");
                exit(1);
            }
            total += len;
        }
    }
    fsync(fd);
    close(fd);
    *write_s = bench_now_s() - t0;
    *bytes = total;
    char *buf1 = malloc(8 * BATCH);
    t0 = bench_now_s();
    uint64_t sink = 0;
    for (uint32_t b = 0; b < d->nbatches; b++)
        for (int c = 0; c < s->ncols; c++) {
            const row_batch *rb = &d->batches[b];
            if (strata_type_is_int(s->cols[c].type))
                memcpy(buf1, rb->i[c], 8 * (size_t)rb->nrows);
            else if (s->cols[c].type == STRATA_FLOAT64)
                memcpy(buf1, rb->f[c], 8 * (size_t)rb->nrows);
            else
                memcpy(buf1, rb->s[c], 4 * (size_t)rb->nrows);
            sink += (uint8_t)buf1[rb->nrows - 1];
        }
    *read_s = bench_now_s() - t0;
    if (sink == 1)
        fputc(' ', stderr);
    free(buf1);
    free(codes);
    unlink(path);
}

int main(int argc, char **argv)
{
    if (bench_help(argc, argv,
                   "usage: bench_segment [--rows N] [--data DIR] [--keep] [--codec lz4|zstd|both] [--order-by COLS]\n\n"
        "Writes N reference order events (default 10000000) through the storage engine and\n"
        "decodes them back, against plain columns; prints rows/s and bytes/row. See bench/README.md.\n"))
        return 0;
    uint64_t rows = 10000000;
    const char *data = NULL, *codec_arg = "both", *order_by = NULL;
    bool keep = false;
    static const struct option opts[] = {{"rows", required_argument, 0, 'r'},
                                         {"data", required_argument, 0, 'd'},
                                         {"keep", no_argument, 0, 'k'},
                                         {"codec", required_argument, 0, 'c'},
                                         {"order-by", required_argument, 0, 'o'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "r:d:kc:o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'r': rows = strtoull(optarg, NULL, 10); break;
        case 'd': data = optarg; break;
        case 'k': keep = true; break;
        case 'c': codec_arg = optarg; break;
        case 'o': order_by = optarg; break;
        default:
            fprintf(stderr, "usage: bench_segment [--rows N] [--data DIR] [--keep] "
                            "[--codec lz4|zstd|both] [--order-by COL,COL...]\n");
            return ch == 'h' ? 0 : 2;
        }
    }
    char dir[4096];
    if (data)
        snprintf(dir, sizeof dir, "%s", data);
    else
        snprintf(dir, sizeof dir, "/tmp/strata-bench-%d", (int)getpid());
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0)
        return 1;

    dataset d = {0};
    double t0 = bench_now_s();
    if (make_dataset(&d, rows, order_by) != 0)
        return 1;
    double gen_s = bench_now_s() - t0;
    printf("bench_segment: %" PRIu64 " reference order events (%d columns), generated in %.2f s\n",
           d.rows, d.schema.ncols, gen_s);

    double pw, pr;
    uint64_t pbytes;
    run_plain(&d, dir, &pw, &pr, &pbytes);
    printf("\nbaseline plain columns (8 B/value, 4 B/string code), one fsync:\n");
    printf("  write        %10.2f M rows/s\n", (double)d.rows / pw / 1e6);
    printf("  read(memcpy) %10.2f M values/s\n", (double)d.rows * d.schema.ncols / pr / 1e6);
    printf("  size         %10.2f bytes/row\n", (double)pbytes / (double)d.rows);

    strata_codec codecs[2] = {STRATA_CODEC_LZ4, STRATA_CODEC_ZSTD};
    for (int k = 0; k < 2; k++) {
        if (strcmp(codec_arg, "both") != 0 && strcmp(codec_arg, compress_codec_name(codecs[k])) != 0)
            continue;
        char tdir[4300];
        snprintf(tdir, sizeof tdir, "%s/%s", dir, compress_codec_name(codecs[k]));
        mkdir(tdir, 0755);
        uint64_t bytes, segs, values = 0;
        double flush_s, cold_flush_s;
        /* Cold: fresh process memory (each first touch of a page faults, which is slow on
         * this VM). Then warm: the same write again after the first run's memory came back
         * to the allocator and the memtable chunk pool, as in a server that has been up. */
        double cold = run_write(&d, tdir, codecs[k], &bytes, &segs, &cold_flush_s);
        double wr[3], fr[3];
        for (int i = 0; i < 3; i++)
            wr[i] = run_write(&d, tdir, codecs[k], &bytes, &segs, &fr[i]);
        double w = median3(wr[0], wr[1], wr[2]);
        flush_s = median3(fr[0], fr[1], fr[2]);
        double r[3];
        for (int i = 0; i < 3; i++)
            r[i] = run_decode(&d, tdir, &values);
        double rm = median3(r[0], r[1], r[2]);
        printf("\nstrata segments, %s (%" PRIu64 " segments):\n", compress_codec_name(codecs[k]), segs);
        printf("  write, warm, median of 3 (append+sort+encode+compress+fsync) %6.2f M rows/s  (flush alone %.2f M rows/s)\n",
               (double)d.rows / w / 1e6, (double)d.rows / flush_s / 1e6);
        printf("  write, cold (first run in the process)                       %6.2f M rows/s  (flush alone %.2f M rows/s)\n",
               (double)d.rows / cold / 1e6, (double)d.rows / cold_flush_s / 1e6);
        printf("  decode (median of 3)                      %8.2f M values/s = %.2f M rows/s\n",
               (double)values / rm / 1e6, (double)d.rows / rm / 1e6);
        printf("  size                                      %8.2f bytes/row  (%.1fx smaller than plain)\n",
               (double)bytes / (double)d.rows, (double)pbytes / (double)bytes);
    }
    if (!keep) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            return 1;
    } else {
        printf("\nsegments kept under %s (try: strata inspect %s)\n", dir, dir);
    }
    for (uint32_t i = 0; i < d.nbatches; i++)
        row_batch_free(&d.batches[i]);
    free(d.batches);
    return 0;
}
