/*
 * bench_decode.c — speed of JSON event decoding on one core: the jansson path against the
 * fast path (ingest/event_fast.c), in the same process over the same bytes.
 *
 * It first writes N reference order events (order_gen_next_json, default options: seed 1,
 * no duplicates, no bad events) as JSON text into one buffer, then decodes all of them
 * into a row_batch of order_gen_schema, cleared every 65,536 rows as a consumer would, with
 *   - event_json_decode_jansson (the jansson path),
 *   - event_decoder_decode (fast path with a decoder made once, jansson if it declines),
 *   - event_json_decode (the same without a decoder: the lookup is built per call),
 *   - event_decoder_decode_reporting with a sink that notes unknown fields as HTTP ingest
 *     does (ingest/ndjson_answer.c): what /ingest and the Kafka consumers call,
 * three timed runs each, interleaved, and prints each path's median events/s and MB/s and
 * the ratio to jansson. An untimed first pass per path (also the warm-up) folds every
 * decoded value (ints, double bits, string bytes) into a checksum, which must be the same
 * for all paths, or the program fails. Then the same events into the schema without
 * `category` and `device` (two unknown fields in every event), with the two decoder paths
 * (checksums equal to each other). Prints figures; not a test.
 *
 * Usage: bench_decode [events]     (default 2,000,000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "ingest/event_json.h"
#include "ingest/ndjson_answer.h"
#include "tools/order_gen.h"

#define BATCH_ROWS 65536

enum { PATH_JANSSON, PATH_DECODER, PATH_NO_DECODER, PATH_REPORTING, NPATHS };
static const char *const path_names[NPATHS] = {"jansson (event_json_decode_jansson)",
                                               "fast (event_decoder_decode)",
                                               "fast (event_json_decode, no decoder)",
                                               "fast, reporting unknown fields"};

/* FNV-style mix of every value of the batch's rows. */
static uint64_t batch_checksum(const row_batch *b, uint64_t h)
{
    const strata_schema *s = b->schema;
    for (int c = 0; c < s->ncols; c++)
        for (uint32_t r = 0; r < b->nrows; r++) {
            uint64_t v;
            if (s->cols[c].type == STRATA_FLOAT64) {
                memcpy(&v, &b->f[c][r], sizeof v);
            } else if (s->cols[c].type == STRATA_STRING) {
                strata_str str = row_batch_get_str(b, c, r);
                v = str.len;
                for (uint32_t k = 0; k < str.len; k++)
                    v = v * 31 + (uint8_t)str.ptr[k];
            } else {
                v = (uint64_t)b->i[c][r];
            }
            h = (h ^ v) * 0x100000001b3u;
        }
    return h;
}

/* Decodes events 0..n of text (event k is text[off[k]..off[k+1])) with path p into b,
 * clearing it every BATCH_ROWS rows; folds every row into *sum unless sum is NULL.
 * Returns 0, or -1 after printing the first error. */
static int decode_all(int p, const event_decoder *dec, const char *text, const size_t *off,
                      uint64_t n, row_batch *b, uint64_t *sum)
{
    strata_err err = {0};
    static ndjson_answer answer; /* static: it is large, and the sink points into it */
    ndjson_answer_free(&answer);
    if (ndjson_answer_init(&answer, &err) != 0) {
        fprintf(stderr, "bench_decode: %s\n", err.msg);
        return -1;
    }
    for (uint64_t k = 0; k < n; k++) {
        const char *ev = text + off[k];
        size_t len = off[k + 1] - off[k];
        int rc;
        if (p == PATH_REPORTING) {
            rc = event_decoder_decode_reporting(dec, ev, len, b, ndjson_answer_sink(&answer), &err);
            if (rc == 0)
                ndjson_answer_landed(&answer, k + 1);
        } else {
            rc = p == PATH_JANSSON ? event_json_decode_jansson(ev, len, b, &err)
                 : p == PATH_DECODER ? event_decoder_decode(dec, ev, len, b, &err)
                                     : event_json_decode(ev, len, b, &err);
        }
        if (rc != 0) {
            fprintf(stderr, "bench_decode: event %llu: %s\n", (unsigned long long)k, err.msg);
            return -1;
        }
        if (b->nrows == BATCH_ROWS) {
            if (sum)
                *sum = batch_checksum(b, *sum);
            row_batch_clear(b);
        }
    }
    if (sum)
        *sum = batch_checksum(b, *sum);
    return 0;
}

int main(int argc, char **argv)
{
    if (bench_help(argc, argv,
                   "usage: bench_decode [EVENTS]\n\n"
        "Decodes EVENTS reference order events (default 2000000) from NDJSON with the fast\n"
        "path and with jansson, and prints events/s for both (median of 3 runs).\n"))
        return 0;
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
    if (n == 0) {
        fprintf(stderr, "usage: bench_decode [events]\n");
        return 2;
    }
    strata_schema s;
    order_gen_schema(&s);
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.count = n;
    strata_err err = {0};
    order_gen *g = order_gen_create(&o, &err);
    if (!g) {
        fprintf(stderr, "bench_decode: %s\n", err.msg);
        return 1;
    }
    char *text = malloc(n * ORDER_GEN_JSON_MAX);
    size_t *off = malloc((n + 1) * sizeof *off);
    if (!text || !off) {
        fprintf(stderr, "bench_decode: out of memory\n");
        return 1;
    }
    order_gen_msg msg;
    off[0] = 0;
    for (uint64_t k = 0; k < n; k++) {
        if (order_gen_next_json(g, text + off[k], ORDER_GEN_JSON_MAX, &msg) != 1) {
            fprintf(stderr, "bench_decode: generator ended early\n");
            return 1;
        }
        off[k + 1] = off[k] + msg.len;
    }
    order_gen_free(g);
    printf("%llu order events, %.1f MB of JSON, %.0f bytes per event\n", (unsigned long long)n,
           (double)off[n] / 1e6, (double)off[n] / (double)n);

    event_decoder *dec = event_decoder_create(&s, &err);
    row_batch b;
    if (!dec || row_batch_init(&b, &s, BATCH_ROWS) != 0) {
        fprintf(stderr, "bench_decode: out of memory\n");
        return 1;
    }
    /* One untimed pass per path (a warm-up too) to check they decode the same values. */
    uint64_t sums[NPATHS];
    for (int p = 0; p < NPATHS; p++) {
        sums[p] = 0xcbf29ce484222325u;
        row_batch_clear(&b);
        if (decode_all(p, dec, text, off, n, &b, &sums[p]) != 0)
            return 1;
        if (p && sums[p] != sums[PATH_JANSSON]) {
            fprintf(stderr, "bench_decode: %s decoded different values than jansson\n", path_names[p]);
            return 1;
        }
    }
    double rates[NPATHS][3];
    for (int run = 0; run < 3; run++)
        for (int p = 0; p < NPATHS; p++) {
            row_batch_clear(&b);
            double t = bench_now_s();
            if (decode_all(p, dec, text, off, n, &b, NULL) != 0)
                return 1;
            rates[p][run] = (double)n / (bench_now_s() - t);
        }
    double jansson = bench_median(rates[PATH_JANSSON], 3);
    for (int p = 0; p < NPATHS; p++) {
        double r = bench_median(rates[p], 3);
        printf("%-38s %6.2f M events/s  %7.1f MB/s  x%.1f\n", path_names[p], r / 1e6,
               r * (double)off[n] / (double)n / 1e6, r / jansson);
    }
    printf("checksum %016llx (same for every path)\n", (unsigned long long)sums[0]);
    event_decoder_free(dec);
    row_batch_free(&b);

    /* The same events, two of whose fields name no column. */
    strata_schema narrow = s;
    narrow.ncols = 0;
    for (int c = 0; c < s.ncols; c++)
        if (strcmp(s.cols[c].name, "category") != 0 && strcmp(s.cols[c].name, "device") != 0)
            narrow.cols[narrow.ncols++] = s.cols[c];
    narrow.time_col = schema_column_index(&narrow, s.cols[s.time_col].name);
    narrow.norder = 0;
    schema_apply_default_order(&narrow);
    static const int narrow_paths[2] = {PATH_DECODER, PATH_REPORTING};
    if (!(dec = event_decoder_create(&narrow, &err)) || row_batch_init(&b, &narrow, BATCH_ROWS) != 0) {
        fprintf(stderr, "bench_decode: out of memory\n");
        return 1;
    }
    uint64_t nsums[2];
    for (int q = 0; q < 2; q++) {
        nsums[q] = 0xcbf29ce484222325u;
        row_batch_clear(&b);
        if (decode_all(narrow_paths[q], dec, text, off, n, &b, &nsums[q]) != 0)
            return 1;
    }
    if (nsums[0] != nsums[1]) {
        fprintf(stderr, "bench_decode: reporting unknown fields changed the decoded values\n");
        return 1;
    }
    double nrates[2][3];
    for (int run = 0; run < 3; run++)
        for (int q = 0; q < 2; q++) {
            row_batch_clear(&b);
            double t = bench_now_s();
            if (decode_all(narrow_paths[q], dec, text, off, n, &b, NULL) != 0)
                return 1;
            nrates[q][run] = (double)n / (bench_now_s() - t);
        }
    printf("schema without category and device (2 unknown fields per event):\n");
    for (int q = 0; q < 2; q++) {
        double r = bench_median(nrates[q], 3);
        printf("%-38s %6.2f M events/s  %7.1f MB/s\n", path_names[narrow_paths[q]], r / 1e6,
               r * (double)off[n] / (double)n / 1e6);
    }
    event_decoder_free(dec);
    row_batch_free(&b);
    free(text);
    free(off);
    return 0;
}
