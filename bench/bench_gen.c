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

#include "order_gen.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    uint64_t rows = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
    strata_schema s;
    order_gen_schema(&s);
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.count = rows;
    strata_err err = {0};

    double t0 = now_s();
    order_gen *g = order_gen_create(&o, &err); /* builds the shared tables */
    double build = now_s() - t0;
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
        double t = now_s();
        uint32_t n;
        while ((n = order_gen_fill(g, &b, 65536)) > 0) {
            done += n;
            checksum += b.i[ORDER_COL_USER_ID][n - 1];
            row_batch_clear(&b);
        }
        double el = now_s() - t;
        rates[run] = (double)done / el;
        printf("fill run %d: %llu rows in %.3f s = %.2f M rows/s\n", run + 1,
               (unsigned long long)done, el, rates[run] / 1e6);
        order_gen_free(g);
    }
    qsort(rates, 3, sizeof rates[0], cmp_double);
    printf("order_gen_fill: median %.2f M rows/s (checksum %lld)\n", rates[1] / 1e6,
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
    double t = now_s();
    while (order_gen_next_json(g, buf, sizeof buf, &msg) == 1) {
        bytes += msg.len + 1;
        n++;
    }
    double el = now_s() - t;
    printf("order_gen_next_json: %.2f M events/s, %.1f MB/s of NDJSON\n", (double)n / el / 1e6,
           (double)bytes / el / 1e6);
    order_gen_free(g);
    row_batch_free(&b);
    return 0;
}
