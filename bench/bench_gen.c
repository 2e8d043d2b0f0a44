/*
 * bench_gen.c — speed of the order-event generator: rows/s of order_gen_fill for 10M rows
 * in batches of 65,536 (cleared between batches, as a loader would), median of 3 runs,
 * plus the text path (order_gen_next_json) over 2M events for reference. The one-time
 * table build is timed separately. Prints figures; not a test.
 *
 * Usage: bench_gen [rows]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench_util.h"
#include "tools/order_gen.h"


int main(int argc, char **argv)
{
    if (bench_help(argc, argv,
                   "usage: bench_gen [ROWS]\n\n"
        "Generates ROWS reference order events (default 10000000) into row batches and\n"
        "prints the rate.\n"))
        return 0;
    uint64_t rows = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
    strata_schema s;
    order_gen_schema(&s);
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.count = rows;
    strata_err err = {0};

    double t0 = bench_now_s();
    order_gen *g = order_gen_create(&o, &err); /* builds the shared tables */
    double build = bench_now_s() - t0;
    if (!g) {
        fprintf(stderr, "bench_gen: %s\n", err.msg);
        return 1;
    }
    order_gen_free(g);
    printf("table build + create: %.1f ms\n", build * 1e3);

    row_batch b;
    if (row_batch_init(&b, &s, 65536) != 0) {
        fprintf(stderr, "bench_gen: out of memory\n");
        return 1;
    }
    double rates[3];
    int64_t checksum = 0;
    for (int run = 0; run < 3; run++) {
        g = order_gen_create(&o, &err);
        if (!g) {
            fprintf(stderr, "bench_gen: %s\n", err.msg);
            return 1;
        }
        uint64_t done = 0;
        double t = bench_now_s();
        uint32_t n;
        while ((n = order_gen_fill(g, &b, 65536)) > 0) {
            done += n;
            checksum += b.i[ORDER_COL_USER_ID][n - 1];
            row_batch_clear(&b);
        }
        double el = bench_now_s() - t;
        rates[run] = (double)done / el;
        printf("fill run %d: %llu rows in %.3f s = %.2f M rows/s\n", run + 1,
               (unsigned long long)done, el, rates[run] / 1e6);
        order_gen_free(g);
    }
    printf("order_gen_fill: median %.2f M rows/s (checksum %lld)\n", bench_median(rates, 3) / 1e6,
           (long long)checksum);

    /* The text path, with the options strata gen would use for a dead-letter test. */
    order_gen_opts ot = o;
    ot.count = rows < 2000000 ? rows : 2000000;
    ot.duplicates = 0.05;
    ot.bad = 0.01;
    g = order_gen_create(&ot, &err);
    if (!g) {
        fprintf(stderr, "bench_gen: %s\n", err.msg);
        return 1;
    }
    char buf[ORDER_GEN_JSON_MAX];
    order_gen_msg msg;
    uint64_t bytes = 0, n = 0;
    double t = bench_now_s();
    while (order_gen_next_json(g, buf, sizeof buf, &msg) == 1) {
        bytes += msg.len + 1;
        n++;
    }
    double el = bench_now_s() - t;
    printf("order_gen_next_json: %.2f M events/s, %.1f MB/s of NDJSON\n", (double)n / el / 1e6,
           (double)bytes / el / 1e6);
    order_gen_free(g);
    row_batch_free(&b);
    return 0;
}
