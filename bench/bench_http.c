/*
 * bench_http.c — the HTTP benchmark of issues 3 and 15, against the real `strata serve`.
 *
 * Starts `STRATA serve --data DIR --listen 127.0.0.1:0` (bench_serve.h: port read from its
 * log, the rest of the log drained to DIR.log), creates the orders table with PUT,
 * generates the reference order events with order_gen as NDJSON bodies in memory first (as
 * a loader sending files has them; generation alone is reported too), cut at --body-bytes
 * bytes or every --batch rows, POSTs them to /ingest over --connections keep-alive
 * connections (default 4) and reports rows/s from the first request to the last answer.
 *
 * Then the bytes on disk per row, every file under DIR/orders counted (allocated:
 * st_blocks * 512, and apparent: st_size): right after ingest; after the background merges
 * settle (strata_merges_total, strata_table_segments and the directory's size unchanged
 * for 3 s, polled from /metrics); and after POST /tables/orders/optimize. Queries Q1..Q7
 * run over HTTP after the settling and after optimize: one warm-up, then the median of 5.
 *
 * With --duckdb it then stops the server, writes the same events (a fresh generator with
 * the same options gives the same rows) as CSV beside DIR, saves strata's answers, and runs
 * `node bench/duckdb/queries.mjs`: DuckDB loads the CSV into an in-memory table and runs
 * the SQL forms of Q1..Q7, timed inside node, and checks its answers against strata's. This
 * program parses the RESULT lines node prints and prints the comparison table.
 *
 * With --rollups the table gets four rollup tiers (add_rollups); after the settling it waits
 * for them to be built and times Q2..Q7 with source raw and auto, alternating; then it
 * restarts the server (SIGTERM) and reports how long the open took, whether the saved
 * tiers answer Q3 at once, and Q3's time then.
 *
 * With --stream the bodies are made while they are sent, by one generator thread at most
 * STREAM_AHEAD bodies ahead of the senders (for runs whose bodies would not fit in
 * memory, such as 100M events); it shares the machine's cores with the server, so the
 * ingest rate it reports is lower than with bodies made first.
 *
 * usage: bench_http STRATA_BINARY [--rows N] [--body-bytes N | --batch N] [--connections N]
 *                   [--data DIR] [--duckdb] [--duckdb-dir DIR] [--keep-csv] [--no-settle]
 *                   [--duplicates F] [--no-dedup] [--rollups]
 */
#include <ftw.h>
#include <inttypes.h>
#include <getopt.h>
#include <stdatomic.h>

#include "bench_serve.h"
#include "bench_util.h"
#include "engine/row_batch.h"
#include "engine/schema_json.h"
#include "tools/order_gen.h"

#ifndef BENCH_DUCKDB_DIR
#define BENCH_DUCKDB_DIR "bench/duckdb"
#endif

static bench_server srv;
static int conn_fd = -1; /* the main thread's keep-alive connection */
static double gen_duplicates;   /* --duplicates: re-sends at a higher version */
static uint64_t gen_distinct;   /* distinct event_ids sent: a dedup table's rows */

/* One request on the main connection; exits on a transport failure. Returns the status,
 * the body in *out (malloc'd) when out. */
static int http(const char *method, const char *path, const char *body, size_t len, char **out)
{
    int st = bench_request(&srv, &conn_fd, method, path, body, len, out);
    if (st < 0) {
        fprintf(stderr, "bench_http: %s %s: the server cannot be reached\n", method, path);
        exit(1);
    }
    return st;
}

/* ---- the NDJSON bodies ------------------------------------------------------------- */

typedef struct bodies {
    char **body;
    size_t *len;
    uint64_t *rows;
    uint64_t n, cap;
    /* --stream: bodies [0, ready) are complete; senders took [0, taken); the generator
     * stays at most STREAM_AHEAD ahead; done when it made the last. Under mu. */
    bool stream, done;
    uint64_t ready, taken;
    uint64_t total_bytes, min_rows, max_rows; /* of the bodies sent (stream: counted as made) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
} bodies;

#define STREAM_AHEAD 32

/* --stream: the bodies before the last are complete; wait while the senders are far behind. */
static void bodies_publish(bodies *bs, uint64_t complete)
{
    pthread_mutex_lock(&bs->mu);
    for (uint64_t i = bs->ready; i < complete; i++) {
        bs->total_bytes += bs->len[i];
        bs->min_rows = bs->rows[i] < bs->min_rows ? bs->rows[i] : bs->min_rows;
        bs->max_rows = bs->rows[i] > bs->max_rows ? bs->rows[i] : bs->max_rows;
    }
    bs->ready = complete;
    pthread_cond_broadcast(&bs->cv);
    while (!bs->done && bs->ready > bs->taken + STREAM_AHEAD)
        pthread_cond_wait(&bs->cv, &bs->mu);
    pthread_mutex_unlock(&bs->mu);
}

static char *bodies_new(bodies *bs, size_t cap)
{
    if (bs->stream)
        bodies_publish(bs, bs->n);
    if (bs->stream)
        pthread_mutex_lock(&bs->mu); /* the arrays may move: not while a sender reads them */
    if (bs->n == bs->cap) {
        bs->cap = bs->cap ? bs->cap * 2 : 64;
        bs->body = realloc(bs->body, bs->cap * sizeof *bs->body);
        bs->len = realloc(bs->len, bs->cap * sizeof *bs->len);
        bs->rows = realloc(bs->rows, bs->cap * sizeof *bs->rows);
    }
    bs->len[bs->n] = 0;
    bs->rows[bs->n] = 0;
    char *b = bs->body[bs->n++] = malloc(cap);
    if (bs->stream)
        pthread_mutex_unlock(&bs->mu);
    return b;
}

/* Generates the events into bodies of at most body_bytes bytes (when > 0; a body holds
 * at least one event) or of batch rows each. Returns the rows made. */
static uint64_t make_bodies(uint64_t rows, uint64_t batch, uint64_t body_bytes, bodies *bs)
{
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.count = rows;
    o.duplicates = gen_duplicates;
    strata_err err = {0};
    order_gen *g = order_gen_create(&o, &err);
    if (!g) {
        fprintf(stderr, "bench_http: order_gen: %s\n", err.msg);
        exit(1);
    }
    size_t cap = body_bytes ? body_bytes + ORDER_GEN_JSON_MAX : batch * 260 + ORDER_GEN_JSON_MAX;
    char line[ORDER_GEN_JSON_MAX];
    order_gen_msg msg;
    uint64_t made = 0;
    char *body = NULL;
    while (order_gen_next_json(g, line, sizeof line, &msg) == 1) {
        uint64_t k = bs->n ? bs->rows[bs->n - 1] : 0;
        size_t len = bs->n ? bs->len[bs->n - 1] : 0;
        bool full = body_bytes ? len + msg.len + 1 > body_bytes : k >= batch;
        if (!body || (k > 0 && full))
            body = bodies_new(bs, cap);
        size_t *l = &bs->len[bs->n - 1];
        if (*l + msg.len + 1 > cap) { /* only with --batch: rows longer than 260 bytes */
            cap *= 2;
            body = bs->body[bs->n - 1] = realloc(body, cap);
        }
        memcpy(body + *l, line, msg.len);
        *l += msg.len;
        body[(*l)++] = '\n';
        bs->rows[bs->n - 1]++;
        made++;
    }
    gen_distinct = order_gen_get_totals(g)->distinct_events;
    order_gen_free(g);
    if (bs->stream) {
        bodies_publish(bs, bs->n);
        pthread_mutex_lock(&bs->mu);
        bs->done = true;
        pthread_cond_broadcast(&bs->cv);
        pthread_mutex_unlock(&bs->mu);
    }
    return made;
}

typedef struct gen_job {
    uint64_t rows, batch, body_bytes, made;
    bodies *bs;
} gen_job;

static void *gen_thread(void *arg)
{
    gen_job *j = arg;
    j->made = make_bodies(j->rows, j->batch, j->body_bytes, j->bs);
    return NULL;
}

/* The next body to send into *body and *len (taken: a streamed body is the sender's to
 * free); false when there is none left. */
static bool bodies_take(bodies *bs, _Atomic uint64_t *next, char **body, size_t *len, bool *owned)
{
    if (!bs->stream) {
        uint64_t i = atomic_fetch_add(next, 1);
        if (i >= bs->n)
            return false;
        *body = bs->body[i];
        *len = bs->len[i];
        *owned = false;
        return true;
    }
    pthread_mutex_lock(&bs->mu);
    while (bs->taken >= bs->ready && !bs->done)
        pthread_cond_wait(&bs->cv, &bs->mu);
    bool got = bs->taken < bs->ready;
    if (got) {
        uint64_t i = bs->taken++;
        *body = bs->body[i];
        *len = bs->len[i];
        bs->body[i] = NULL;
        *owned = true;
        pthread_cond_broadcast(&bs->cv);
    }
    pthread_mutex_unlock(&bs->mu);
    return got;
}

/* Ingest senders: each thread takes the next pre-generated body and POSTs it on its own
 * keep-alive connection. */
typedef struct sender {
    bodies *bs;
    _Atomic uint64_t *next;
    uint64_t acked;
    int failed;
} sender;

static void *send_bodies(void *arg)
{
    sender *sd = arg;
    int fd = -1;
    char *body;
    size_t len;
    bool owned;
    while (bodies_take(sd->bs, sd->next, &body, &len, &owned)) {
        char *ans = NULL;
        int st = bench_request(&srv, &fd, "POST", "/ingest/orders", body, len, &ans);
        if (owned)
            free(body);
        if (st != 200) {
            fprintf(stderr, "bench_http: ingest failed (%d): %s\n", st, ans ? ans : "");
            sd->failed = 1;
            free(ans);
            break;
        }
        sd->acked += bench_json_u64(ans, "ingested", 0);
        free(ans);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* ---- bytes on disk ----------------------------------------------------------------- */

enum { DU_SEG, DU_MANIFEST, DU_WAL, DU_OTHER, DU_KINDS };
static const char *const du_kind_name[DU_KINDS] = {"segments", "manifests", "wal", "other"};

typedef struct disk_use {
    uint64_t files[DU_KINDS], alloc[DU_KINDS], size[DU_KINDS];
    uint64_t nfiles, total_alloc, total_size;
} disk_use;

static disk_use du_acc;

static int du_visit(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag != FTW_F)
        return 0;
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    size_t nl = strlen(name);
    int k = strstr(path, "/wal/") ? DU_WAL
            : nl > 4 && strcmp(name + nl - 4, ".seg") == 0 ? DU_SEG
            : strncmp(name, "MANIFEST", 8) == 0 ? DU_MANIFEST
                                                : DU_OTHER;
    du_acc.files[k]++;
    du_acc.alloc[k] += (uint64_t)st->st_blocks * 512;
    du_acc.size[k] += (uint64_t)st->st_size;
    du_acc.nfiles++;
    du_acc.total_alloc += (uint64_t)st->st_blocks * 512;
    du_acc.total_size += (uint64_t)st->st_size;
    return 0;
}

/* Every regular file under dir (symbolic links not followed). A file removed while the
 * walk runs (a merge's inputs) is simply not counted. */
static disk_use disk_usage(const char *dir)
{
    memset(&du_acc, 0, sizeof du_acc);
    nftw(dir, du_visit, 32, FTW_PHYS);
    return du_acc;
}

static void print_disk(const char *when, const char *dir, uint64_t rows)
{
    disk_use d = disk_usage(dir);
    printf("  on disk %-26s %6.2f bytes/row allocated (st_blocks*512), %6.2f apparent (st_size): "
           "%.1f / %.1f MiB in %" PRIu64 " files\n",
           when, (double)d.total_alloc / (double)rows, (double)d.total_size / (double)rows,
           (double)d.total_alloc / 1048576.0, (double)d.total_size / 1048576.0, d.nfiles);
    printf("      ");
    for (int k = 0; k < DU_KINDS; k++)
        printf("%s%s %" PRIu64 " files %.1f MiB", k ? ", " : "", du_kind_name[k], d.files[k],
               (double)d.alloc[k] / 1048576.0);
    printf(" (allocated)\n");
}

/* ---- /metrics ---------------------------------------------------------------------- */

/* The value of metric NAME{table="orders"} in the /metrics text, or -1. */
static double metric(const char *text, const char *name)
{
    char pat[160];
    snprintf(pat, sizeof pat, "\n%s{table=\"orders\"} ", name);
    const char *p = text ? strstr(text, pat) : NULL;
    return p ? strtod(p + strlen(pat), NULL) : -1;
}

/* Waits until strata_merges_total, strata_table_segments and the table directory's size
 * stay the same for 3 s (polled every 0.5 s), at most max_s seconds. Returns the seconds
 * waited; *merges and *segments get the last values. */
static double wait_merges(const char *tdir, double max_s, double *merges, double *segments)
{
    double t0 = bench_now_s(), since = t0;
    double lm = -2, ls = -2;
    uint64_t lb = 0;
    for (;;) {
        char *m = NULL;
        http("GET", "/metrics", NULL, 0, &m);
        double mg = metric(m, "strata_merges_total"), sg = metric(m, "strata_table_segments");
        free(m);
        uint64_t b = disk_usage(tdir).total_size;
        double now = bench_now_s();
        if (mg != lm || sg != ls || b != lb) {
            lm = mg;
            ls = sg;
            lb = b;
            since = now;
        }
        *merges = lm;
        *segments = ls;
        if (now - since >= 3.0 || now - t0 >= max_s)
            return now - t0;
        usleep(500000);
    }
}

/* ---- queries ----------------------------------------------------------------------- */

/* The data span 2024-01-01 .. 2024-01-08 (7 days); queries without "to" end at now. */
enum { NQ = 8, NQ_DUCKDB = 7 };
static const char *const qs[NQ][2] = {
    {"Q1 count(*)", "{\"table\":\"orders\",\"from\":0,\"select\":[{\"fn\":\"count\"}]}"},
    {"Q2 count, sum(amount) per minute, last hour",
     "{\"table\":\"orders\",\"from\":\"2024-01-07T23:00:00Z\",\"to\":\"2024-01-08T00:00:00Z\",\"interval\":\"1m\","
     "\"select\":[{\"fn\":\"count\"},{\"fn\":\"sum\",\"column\":\"amount\"}]}"},
    {"Q3 count, sum, avg(amount) per hour, 7 days",
     "{\"table\":\"orders\",\"from\":0,\"interval\":\"1h\",\"select\":[{\"fn\":\"count\"},"
     "{\"fn\":\"sum\",\"column\":\"amount\"},{\"fn\":\"avg\",\"column\":\"amount\"}]}"},
    {"Q4 top 10 countries by sum(amount), one day",
     "{\"table\":\"orders\",\"from\":\"2024-01-03T00:00:00Z\",\"to\":\"2024-01-04T00:00:00Z\","
     "\"select\":[{\"fn\":\"sum\",\"column\":\"amount\",\"as\":\"gmv\"}],\"group_by\":[\"country\"],"
     "\"order_by\":[{\"column\":\"gmv\",\"desc\":true}],\"limit\":10}"},
    {"Q5 count per status per hour, US mobile",
     "{\"table\":\"orders\",\"from\":0,\"interval\":\"1h\",\"select\":[{\"fn\":\"count\"}],\"group_by\":[\"status\"],"
     "\"where\":[{\"column\":\"country\",\"op\":\"=\",\"value\":\"US\"},{\"column\":\"device\",\"op\":\"=\",\"value\":\"mobile\"}]}"},
    {"Q6 uniq(user_id) per day",
     "{\"table\":\"orders\",\"from\":0,\"interval\":\"1d\",\"select\":[{\"fn\":\"uniq\",\"column\":\"user_id\"}]}"},
    {"Q7 p95, p99 of amount per hour, one day",
     "{\"table\":\"orders\",\"from\":\"2024-01-03T00:00:00Z\",\"to\":\"2024-01-04T00:00:00Z\",\"interval\":\"1h\","
     "\"select\":[{\"fn\":\"quantile\",\"column\":\"amount\",\"q\":0.95,\"as\":\"p95\"},{\"fn\":\"quantile\",\"column\":\"amount\",\"q\":0.99,\"as\":\"p99\"}]}"},
    {"Q8 sum(amount), every row",
     "{\"table\":\"orders\",\"from\":0,\"select\":[{\"fn\":\"sum\",\"column\":\"amount\"}]}"},
};

static double query_ms(const char *q, char **answer)
{
    double t0 = bench_now_s();
    int st = http("POST", "/query", q, strlen(q), answer);
    double el = (bench_now_s() - t0) * 1e3;
    if (st != 200) {
        fprintf(stderr, "bench_http: query failed (%d): %s\n%s\n", st, q, answer ? *answer : "");
        exit(1);
    }
    return el;
}

/* Q1..Q7: one warm-up (its answer kept in answers[i], malloc'd), then the median of 5 in
 * ms[i]. */
static void run_queries(const char *when, double ms[NQ], char *answers[NQ])
{
    printf("\nqueries over HTTP %s (median of 5 after a warm-up, ms):\n", when);
    for (int i = 0; i < NQ; i++) {
        char *a = NULL;
        query_ms(qs[i][1], &a);
        double t[5];
        for (int r = 0; r < 5; r++) {
            char *x = NULL;
            t[r] = query_ms(qs[i][1], &x);
            free(x);
        }
        ms[i] = bench_median(t, 5);
        const char *sg = strstr(a, "\"segments_read\":");
        printf("  %-48s %9.1f   (rows_read %" PRIu64 ", segments_read %" PRIu64 ")\n", qs[i][0], ms[i],
               bench_json_u64(a, "rows_read", 0), sg ? bench_json_u64(sg, "segments_read", 0) : 0);
        answers[i] = a;
    }
}

/* ---- DuckDB ------------------------------------------------------------------------ */

/* The same events as make_bodies sent, as CSV with a header. Returns 0 or -1. */
static int write_csv(const char *path, uint64_t rows)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return -1;
    }
    static char fbuf[1 << 20];
    setvbuf(f, fbuf, _IOFBF, sizeof fbuf);
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.count = rows;
    o.duplicates = gen_duplicates;
    strata_err err = {0};
    order_gen *g = order_gen_create(&o, &err);
    strata_schema s;
    order_gen_schema(&s);
    row_batch b;
    if (!g || row_batch_init(&b, &s, 65536) != 0) {
        fclose(f);
        return -1;
    }
    fputs("ts,event_id,user_id,country,category,status,device,amount,quantity,version\n", f);
    uint32_t n;
    while ((n = order_gen_fill(g, &b, 65536)) > 0) {
        for (uint32_t r = 0; r < n; r++) {
            strata_str c = row_batch_get_str(&b, ORDER_COL_COUNTRY, r);
            strata_str k = row_batch_get_str(&b, ORDER_COL_CATEGORY, r);
            strata_str st = row_batch_get_str(&b, ORDER_COL_STATUS, r);
            strata_str d = row_batch_get_str(&b, ORDER_COL_DEVICE, r);
            fprintf(f, "%" PRId64 ",%" PRIu64 ",%" PRIu64 ",%.*s,%.*s,%.*s,%.*s,%.2f,%" PRId64 ",%" PRIu64 "\n",
                    b.i[ORDER_COL_TS][r], (uint64_t)b.i[ORDER_COL_EVENT_ID][r],
                    (uint64_t)b.i[ORDER_COL_USER_ID][r], (int)c.len, c.ptr, (int)k.len, k.ptr,
                    (int)st.len, st.ptr, (int)d.len, d.ptr, b.f[ORDER_COL_AMOUNT][r],
                    b.i[ORDER_COL_QUANTITY][r], (uint64_t)b.i[ORDER_COL_VERSION][r]);
        }
        row_batch_clear(&b);
    }
    row_batch_free(&b);
    order_gen_free(g);
    return fclose(f) == 0 ? 0 : -1;
}

typedef struct duck_result {
    char id[8], variant[64];
    double ms;
    int agree;
    char detail[256];
} duck_result;

/* Runs the node script; passes its lines through (indented) and keeps its RESULT and LOAD
 * lines. Returns the number of results, or -1 when node failed. */
static int run_duckdb(const char *duck_dir, const char *csv, const char *answers_path, duck_result *res,
                      int cap, double *load_ms, char *version, size_t vcap)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "node '%s/queries.mjs' --csv '%s' --strata '%s' --runs 5", duck_dir, csv,
             answers_path);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        if (strncmp(line, "RESULT\t", 7) == 0 && n < cap) {
            duck_result *r = &res[n];
            memset(r, 0, sizeof *r);
            char *f[6] = {0};
            char *save = NULL, *tok = strtok_r(line + 7, "\t", &save);
            for (int k = 0; k < 5 && tok; k++, tok = strtok_r(NULL, "\t", &save))
                f[k] = tok;
            if (!f[3])
                continue;
            snprintf(r->id, sizeof r->id, "%s", f[0]);
            snprintf(r->variant, sizeof r->variant, "%s", f[1]);
            r->ms = strtod(f[2], NULL);
            r->agree = atoi(f[3]);
            snprintf(r->detail, sizeof r->detail, "%s", f[4] ? f[4] : "");
            n++;
        } else if (strncmp(line, "LOAD\t", 5) == 0) {
            *load_ms = strtod(line + 5, NULL);
        } else if (strncmp(line, "VERSION\t", 8) == 0) {
            snprintf(version, vcap, "%.100s", line + 8);
        } else {
            printf("    %s\n", line);
        }
    }
    int st = pclose(p);
    return st == 0 ? n : -1;
}

/* ---- rollups ----------------------------------------------------------------------- */

/* The tiers of --rollups, as a dashboard of these queries would have them, each as
 * coarse as its panels allow (a uniq or quantile state costs per distinct value, so they
 * sit on the tier without dimensions): per minute (count, sum of amount); per hour
 * (count, sum, uniq of user_id, quantile of amount); per hour by country (count, sum);
 * per hour by country, status and device (count). */
static void add_rollups(strata_schema *s)
{
    s->nrollups = 4;
    memset(s->rollups, 0, sizeof *s->rollups * 4);
    strata_rollup *m = &s->rollups[0], *h = &s->rollups[1], *hc = &s->rollups[2], *hd = &s->rollups[3];
    m->interval_ms = 60000;
    m->metrics[m->nmetrics++] = (strata_rollup_metric){STRATA_AGG_COUNT, -1};
    m->metrics[m->nmetrics++] = (strata_rollup_metric){STRATA_AGG_SUM, ORDER_COL_AMOUNT};
    h->interval_ms = 3600000;
    h->metrics[h->nmetrics++] = (strata_rollup_metric){STRATA_AGG_COUNT, -1};
    h->metrics[h->nmetrics++] = (strata_rollup_metric){STRATA_AGG_SUM, ORDER_COL_AMOUNT};
    h->metrics[h->nmetrics++] = (strata_rollup_metric){STRATA_AGG_UNIQ, ORDER_COL_USER_ID};
    h->metrics[h->nmetrics++] = (strata_rollup_metric){STRATA_AGG_QUANTILE, ORDER_COL_AMOUNT};
    hc->interval_ms = 3600000;
    hc->ndims = 1;
    hc->dims[0] = ORDER_COL_COUNTRY;
    hc->metrics[hc->nmetrics++] = (strata_rollup_metric){STRATA_AGG_COUNT, -1};
    hc->metrics[hc->nmetrics++] = (strata_rollup_metric){STRATA_AGG_SUM, ORDER_COL_AMOUNT};
    hd->interval_ms = 3600000;
    hd->ndims = 3;
    hd->dims[0] = ORDER_COL_COUNTRY;
    hd->dims[1] = ORDER_COL_STATUS;
    hd->dims[2] = ORDER_COL_DEVICE;
    hd->metrics[hd->nmetrics++] = (strata_rollup_metric){STRATA_AGG_COUNT, -1};
}

/* Waits until GET /tables/orders shows the tiers unchanged for 2 s with no dirty bucket:
 * built up to the watermark. Returns the seconds waited. */
static double rollups_settle(double max_s)
{
    double t0 = bench_now_s(), since = t0;
    char last[4096] = "";
    for (;;) {
        char *ans = NULL;
        char now_s[4096] = "";
        if (http("GET", "/tables/orders", NULL, 0, &ans) == 200) {
            const char *r = strstr(ans, "\"rollups\"");
            snprintf(now_s, sizeof now_s, "%s", r ? r : "");
        }
        free(ans);
        double now = bench_now_s();
        bool dirty = strstr(now_s, "\"dirty_buckets\":0") == NULL;
        if (strcmp(now_s, last) != 0 || dirty) {
            snprintf(last, sizeof last, "%s", now_s);
            since = now;
        }
        if (now - since >= 2.0 || now - t0 >= max_s) {
            printf("  tiers: %.*s\n", (int)strcspn(last, "\n"), last);
            return now - t0;
        }
        usleep(250000);
    }
}

/* Q2..Q7 with source raw and auto, alternating, median of 5 each after a warm-up. */
static void rollups_compare(void)
{
    printf("\nrollups: source raw vs auto over HTTP (median of 5 after a warm-up, ms):\n");
    printf("  %-48s %9s %9s %8s  %s\n", "", "raw", "auto", "raw/auto", "auto served by");
    for (int i = 1; i < 7; i++) {
        char qr[2048], qa[2048];
        snprintf(qr, sizeof qr, "{\"source\":\"raw\",%s", qs[i][1] + 1);
        snprintf(qa, sizeof qa, "{\"source\":\"auto\",%s", qs[i][1] + 1);
        char *ar = NULL, *aa = NULL;
        query_ms(qr, &ar);
        query_ms(qa, &aa);
        double tr[5], ta[5];
        for (int r = 0; r < 5; r++) {
            char *x = NULL;
            tr[r] = query_ms(qr, &x);
            free(x);
            x = NULL;
            ta[r] = query_ms(qa, &x);
            free(x);
        }
        double mr = bench_median(tr, 5), ma = bench_median(ta, 5);
        const char *src = strstr(aa, "\"source\":");
        const char *rows_r = strstr(ar, "\"rows\":"), *rows_a = strstr(aa, "\"rows\":");
        const char *end_r = rows_r ? strstr(rows_r, "],\"stats\"") : NULL, *end_a = rows_a ? strstr(rows_a, "],\"stats\"") : NULL;
        bool same = end_r && end_a && end_r - rows_r == end_a - rows_a && memcmp(rows_r, rows_a, (size_t)(end_r - rows_r)) == 0;
        printf("  %-48s %9.2f %9.2f %7.1fx  %.*s%s\n", qs[i][0], mr, ma, ma > 0 ? mr / ma : 0,
               src ? (int)strcspn(src, "}") + 1 : 0, src ? src : "", same ? "" : "  (answers differ in text: sums' last bits)");
        free(ar);
        free(aa);
    }
}

/* Sums "key":N over the tiers of a GET /tables answer (from its "rollups" on). */
static uint64_t tiers_sum(const char *ans, const char *key)
{
    const char *p = ans ? strstr(ans, "\"rollups\"") : NULL;
    uint64_t sum = 0;
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    while (p && (p = strstr(p, pat)) != NULL) {
        p += strlen(pat);
        sum += strtoull(p, NULL, 10);
    }
    return sum;
}

/* Restarts the server (SIGTERM, which saves the tiers) and times how soon the saved tiers
 * answer: the open, then Q3 at once and its median of 5. */
static int rollups_restart(const char *strata, const char *dir)
{
    static const char *const tier_dirs[] = {"rollup_1m", "rollup_1h", "rollup_1h_2", "rollup_1h_3"};
    uint64_t files = 0, bytes = 0;
    for (int i = 0; i < 4; i++) {
        char p[800];
        snprintf(p, sizeof p, "%s/orders/%s", dir, tier_dirs[i]);
        disk_use du = disk_usage(p);
        files += du.files[DU_SEG];
        bytes += du.alloc[DU_SEG];
    }
    printf("\nrestart with the tiers saved (%" PRIu64 " segments, %.2f MB on disk):\n", files, (double)bytes / 1e6);
    char *ans = NULL;
    if (conn_fd >= 0)
        close(conn_fd);
    conn_fd = -1;
    int st = bench_server_stop(&srv);
    double t0 = bench_now_s();
    if (st != 0 || bench_server_spawn(&srv, strata, dir, "bench_http", false) != 0) {
        fprintf(stderr, "bench_http: restart failed (exit %d)\n", st);
        return 1;
    }
    double open_s = bench_now_s() - t0;
    const char *q3 = qs[2][1];
    char qa[2048];
    snprintf(qa, sizeof qa, "{\"source\":\"auto\",%s", q3 + 1);
    double first = query_ms(qa, &ans);
    const char *src = ans ? strstr(ans, "\"source\":") : NULL;
    printf("  open (SIGTERM to serving again): %.2f s\n", open_s);
    printf("  Q3 right away: %.2f ms, %.*s\n", first, src ? (int)strcspn(src, ",}") : 0, src ? src : "");
    free(ans);
    double t[5];
    for (int r = 0; r < 5; r++) {
        char *x = NULL;
        t[r] = query_ms(qa, &x);
        free(x);
    }
    ans = NULL;
    http("GET", "/tables/orders", NULL, 0, &ans);
    printf("  Q3 median of 5 after: %.2f ms; tiers built since the restart: %" PRIu64 " builds, %" PRIu64
           " buckets rebuilt\n", bench_median(t, 5), tiers_sum(ans, "builds"), tiers_sum(ans, "rebuilt_buckets"));
    free(ans);
    return 0;
}

/* ---- main -------------------------------------------------------------------------- */

#define USAGE                                                                                      \
    "usage: bench_http STRATA_BINARY [--rows N] [--body-bytes N | --batch N] [--connections N]\n" \
    "                  [--data DIR] [--duckdb] [--duckdb-dir DIR] [--keep-csv] [--no-settle]\n" \
    "                  [--duplicates F] [--no-dedup] [--rollups] [--stream]\n"

int main(int argc, char **argv)
{
    if (bench_help(argc, argv,
                   USAGE "\n"
                   "Starts STRATA_BINARY serve on DIR (default /tmp/strata-bench-http), sends N reference\n"
                   "order events (default 10000000) as NDJSON requests cut at --body-bytes bytes (e.g.\n"
                   "4194304) or of --batch rows (default 100000) over --connections keep-alive connections\n"
                   "(default 4). Prints the bytes on disk per row (every file under DIR/orders) after\n"
                   "ingest, after the background merges settle (skipped with --no-settle) and after\n"
                   "POST /tables/orders/optimize, and times Q1-Q7 (median of 5) after the settling and\n"
                   "after optimize. --duckdb then runs the same queries in DuckDB (node and\n"
                   "--duckdb-dir, default the source tree's bench/duckdb, set up by its install.sh) on\n"
                   "the same events and prints both, with whether the answers agree; the CSV it writes\n"
                   "beside DIR is removed unless --keep-csv. The table deduplicates by event_id\n"
                   "(dedup_key [event_id, ts], version) unless --no-dedup; --duplicates F (default 0)\n"
                   "re-sends that share of events at a higher version. --rollups adds a 1m and a 1h tier\n"
                   "(by country, status, device) and, after the settling, waits for them and times Q2-Q7\n"
                   "with source raw and auto, then restarts the server and times Q3 from the saved tiers.\n"
                   "--stream makes the bodies while sending them (for runs too large to hold in memory).\n"
                   "See bench/README.md.\n"))
        return 0;
    uint64_t rows = 10000000, batch = 100000, body_bytes = 0;
    int connections = 4, duckdb = 0, settle = 1, keep_csv = 0, no_dedup = 0, rollups = 0, stream = 0;
    const char *data = NULL, *duck_dir = BENCH_DUCKDB_DIR;
    static const struct option opts[] = {{"rows", required_argument, 0, 'r'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"body-bytes", required_argument, 0, 'B'},
                                         {"data", required_argument, 0, 'd'},
                                         {"connections", required_argument, 0, 'c'},
                                         {"duckdb", no_argument, 0, 'D'},
                                         {"duckdb-dir", required_argument, 0, 'E'},
                                         {"no-settle", no_argument, 0, 'S'},
                                         {"keep-csv", no_argument, 0, 'K'},
                                         {"duplicates", required_argument, 0, 'u'},
                                         {"no-dedup", no_argument, 0, 'N'},
                                         {"rollups", no_argument, 0, 'R'},
                                         {"stream", no_argument, 0, 'T'},
                                         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "r:b:B:d:c:", opts, NULL)) != -1) {
        switch (ch) {
        case 'r': rows = strtoull(optarg, NULL, 10); break;
        case 'b': batch = strtoull(optarg, NULL, 10); break;
        case 'B': body_bytes = strtoull(optarg, NULL, 10); break;
        case 'c': connections = atoi(optarg) > 0 && atoi(optarg) <= 16 ? atoi(optarg) : 2; break;
        case 'd': data = optarg; break;
        case 'D': duckdb = 1; break;
        case 'E': duck_dir = optarg; break;
        case 'S': settle = 0; break;
        case 'K': keep_csv = 1; break;
        case 'u': gen_duplicates = atof(optarg); break;
        case 'N': no_dedup = 1; break;
        case 'R': rollups = 1; break;
        case 'T': stream = 1; break;
        default: fputs(USAGE, stderr); return 2;
        }
    }
    if (optind != argc - 1 || rows == 0 || batch == 0 || (body_bytes && body_bytes < 1024)) {
        fputs(USAGE, stderr);
        return 2;
    }
    char dir[512], tdir[600];
    snprintf(dir, sizeof dir, "%s", data ? data : "/tmp/strata-bench-http");
    snprintf(tdir, sizeof tdir, "%s/orders", dir);
    if (bench_server_start(&srv, argv[optind], dir, "bench_http") != 0)
        return 1;

    strata_schema s;
    order_gen_schema(&s);
    if (no_dedup) {
        s.ndedup = 0;
        s.version_col = -1;
    }
    if (rollups)
        add_rollups(&s);
    char *schema = schema_json_dump(&s);
    char *ans = NULL;
    if (http("PUT", "/tables/orders", schema, strlen(schema), &ans) / 100 != 2) {
        fprintf(stderr, "bench_http: create failed: %s\n", ans);
        return 1;
    }
    free(ans);
    free(schema);

    /* The NDJSON bodies are made first (generation alone is timed for reference), as a
     * loader sending files would have them; then --connections threads send them. */
    bodies bs = {.stream = stream, .min_rows = UINT64_MAX};
    pthread_mutex_init(&bs.mu, NULL);
    pthread_cond_init(&bs.cv, NULL);
    double t0 = bench_now_s(), gen_s = 0;
    uint64_t sent = 0;
    gen_job gj = {rows, batch, body_bytes, 0, &bs};
    pthread_t gen_th;
    if (!stream) {
        sent = make_bodies(rows, batch, body_bytes, &bs);
        gen_s = bench_now_s() - t0;
        for (uint64_t i = 0; i < bs.n; i++) {
            bs.total_bytes += bs.len[i];
            bs.min_rows = bs.rows[i] < bs.min_rows ? bs.rows[i] : bs.min_rows;
            bs.max_rows = bs.rows[i] > bs.max_rows ? bs.rows[i] : bs.max_rows;
        }
    }
    uint64_t total_bytes, min_rows, max_rows;

    _Atomic uint64_t next = 0;
    sender sd[16];
    pthread_t th[16];
    t0 = bench_now_s();
    if (stream)
        pthread_create(&gen_th, NULL, gen_thread, &gj);
    for (int i = 0; i < connections; i++) {
        sd[i] = (sender){&bs, &next, 0, 0};
        pthread_create(&th[i], NULL, send_bodies, &sd[i]);
    }
    if (stream) {
        pthread_join(gen_th, NULL);
        sent = gj.made;
    }
    uint64_t acked = 0;
    int failed = 0;
    for (int i = 0; i < connections; i++) {
        pthread_join(th[i], NULL);
        acked += sd[i].acked;
        failed |= sd[i].failed;
    }
    double ingest_s = bench_now_s() - t0;
    total_bytes = bs.total_bytes;
    min_rows = bs.min_rows;
    max_rows = bs.max_rows;
    for (uint64_t i = 0; i < bs.n; i++)
        free(bs.body[i]);
    free(bs.body);
    free(bs.len);
    free(bs.rows);
    if (failed || acked != sent) {
        fprintf(stderr, "bench_http: %" PRIu64 " rows sent, %" PRIu64 " acknowledged\n", sent, acked);
        bench_server_stop(&srv);
        return 1;
    }
    printf("bench_http: %" PRIu64 " reference order events through POST /ingest, %d connections\n", acked,
           connections);
    printf("  requests: %" PRIu64 " of %.2f MiB and %.0f rows on average (rows %" PRIu64 "-%" PRIu64
           "; %s)\n",
           bs.n, (double)total_bytes / (double)bs.n / 1048576.0, (double)acked / (double)bs.n, min_rows,
           max_rows, body_bytes ? "cut at --body-bytes" : "--batch rows each");
    printf("  ingest over HTTP, durable before each answer: %.2f M rows/s (%.1f s)\n",
           (double)acked / ingest_s / 1e6, ingest_s);
    if (stream)
        printf("  (bodies made while sent, by one thread of this process: --stream)\n");
    else
        printf("  NDJSON generation alone (same process):      %.2f M rows/s\n", (double)rows / gen_s / 1e6);

    print_disk("right after ingest:", tdir, acked);
    double ms_settled[NQ] = {0}, ms_opt[NQ], ms_fresh[NQ];
    char *a_settled[NQ] = {0}, *a_opt[NQ], *a_fresh[NQ];
    run_queries("right after ingest (before the merges settle)", ms_fresh, a_fresh);
    if (settle) {
        double merges = 0, segments = 0;
        double waited = wait_merges(tdir, 600, &merges, &segments);
        printf("  background merges settled after %.1f s (nothing moved for 3 s): %.0f merges, %.0f segments\n",
               waited, merges, segments);
        print_disk("after merges settled:", tdir, acked);
    }

    /* optimize: flushes, then merges every partition; answers when done. */
    t0 = bench_now_s();
    int st = http("POST", "/tables/orders/optimize", "", 0, &ans);
    double opt_s = bench_now_s() - t0;
    /* The answer's per-partition list is long: print the totals after it. */
    const char *tail = ans ? strrchr(ans, ']') : NULL;
    printf("  POST /tables/orders/optimize: %d in %.2f s: %s\n", st, opt_s,
           tail ? tail + 2 : (ans ? ans : ""));
    free(ans);
    if (st != 200) {
        bench_server_stop(&srv);
        return 1;
    }
    print_disk("after optimize:", tdir, acked);

    if (settle)
        run_queries("after the merges settled", ms_settled, a_settled);
    if (rollups) {
        printf("\nrollup tiers built (waited %.1f s)\n", rollups_settle(600));
        rollups_compare();
        if (rollups_restart(argv[optind], dir) != 0)
            return 1;
    }
    run_queries("after optimize", ms_opt, a_opt);
    const char *cr = strstr(a_opt[0], "\"rows\":");
    cr = cr ? strpbrk(cr + 7, "0123456789") : NULL;
    uint64_t count = cr ? strtoull(cr, NULL, 10) : 0;
    uint64_t want = no_dedup ? acked : gen_distinct;
    printf("  count(*) %" PRIu64 " %s the %" PRIu64 " %s\n", count, count == want ? "equals" : "DIFFERS FROM", want,
           no_dedup ? "rows acknowledged" : "distinct events (the latest version of each event_id)");
    ans = NULL;
    if (!no_dedup && http("GET", "/tables/orders", NULL, 0, &ans) == 200) {
        const char *d = strstr(ans, "\"dedup\"");
        printf("  GET /tables/orders: rows %" PRIu64 ", physical_rows %" PRIu64 ", dedup %.*s\n",
               bench_json_u64(ans, "rows", 0), bench_json_u64(ans, "physical_rows", 0),
               d ? (int)(strchr(d, '}') - d + 1) : 0, d ? d : "");
    }
    free(ans);
    if (conn_fd >= 0)
        close(conn_fd);
    int exit_st = bench_server_stop(&srv);
    if (exit_st != 0)
        fprintf(stderr, "bench_http: the server exited with %d (its log: %s)\n", exit_st, srv.log_path);

    int rc = 0;
    if (duckdb) {
        char csv[1000], answers_path[1000];
        snprintf(csv, sizeof csv, "%s.orders.csv", dir);
        snprintf(answers_path, sizeof answers_path, "%s.strata-answers.json", dir);
        FILE *af = fopen(answers_path, "w");
        if (!af)
            return 1;
        fputs("{", af);
        for (int i = 0; i < NQ_DUCKDB; i++)
            fprintf(af, "%s\"Q%d\": %s\n", i ? "," : "", i + 1, a_opt[i]);
        fputs("}\n", af);
        fclose(af);
        t0 = bench_now_s();
        if (write_csv(csv, rows) != 0) {
            fprintf(stderr, "bench_http: cannot write %s\n", csv);
            return 1;
        }
        printf("\nDuckDB (--duckdb): the same %" PRIu64 " events written to %s in %.1f s; node says:\n", rows,
               csv, bench_now_s() - t0);
        fflush(stdout);
        duck_result res[32];
        double load_ms = 0;
        char version[128] = "?";
        int n = run_duckdb(duck_dir, csv, answers_path, res, 32, &load_ms, version, sizeof version);
        if (n < 0) {
            fprintf(stderr, "bench_http: node %s/queries.mjs failed (run %s/install.sh first?)\n", duck_dir,
                    duck_dir);
            rc = 1;
        } else {
            printf("\nstrata after optimize vs DuckDB %s (in-memory table, CSV loaded in %.1f s), median ms:\n",
                   version, load_ms / 1e3);
            printf("  %-4s %-44s %9s %9s %9s %7s  %-8s %s\n", "", "DuckDB SQL", "settled", "strata", "DuckDB",
                   "ratio", "faster", "answers");
            int all_agree = 1;
            for (int k = 0; k < n; k++) {
                int qi = atoi(res[k].id + 1) - 1;
                if (qi < 0 || qi >= NQ)
                    continue;
                const char *verdict = res[k].agree == 1 ? "agree" : res[k].agree == 2 ? "estimate" : "DIFFER";
                if (res[k].ms < 0) { /* a check, not timed */
                    printf("  %-4s %-44s %9s %9s %9s %7s  %-8s %s: %s\n", res[k].id, res[k].variant, "", "", "", "",
                           "", verdict, res[k].detail);
                } else {
                    double ratio = ms_opt[qi] / res[k].ms;
                    char set[16] = "-";
                    if (settle)
                        snprintf(set, sizeof set, "%.1f", ms_settled[qi]);
                    printf("  %-4s %-44s %9s %9.1f %9.1f %7.2f  %-8s %s: %s\n", res[k].id, res[k].variant, set,
                           ms_opt[qi], res[k].ms, ratio, ratio <= 1.0 ? "strata" : "DuckDB", verdict, res[k].detail);
                }
                all_agree &= res[k].agree != 0;
            }
            printf("  settled: strata after the merges settled; strata: after optimize; ratio = strata / DuckDB;\n"
                   "  %s\n", all_agree ? "answers agree (estimates aside)" : "ANSWERS DIFFER (see above)");
        }
        if (!keep_csv)
            remove(csv);
    }
    for (int i = 0; i < NQ; i++) {
        free(a_opt[i]);
        free(a_settled[i]);
        free(a_fresh[i]);
    }
    return rc;
}
