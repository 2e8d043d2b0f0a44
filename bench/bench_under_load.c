/*
 * bench_under_load.c — a dashboard query's latency while `strata serve` ingests at a
 * fixed rate, and what the ingest does to the table meanwhile.
 *
 * What it measures:
 *   - the latency of one dashboard query (bench_http's Q2 shape, relative to now: count
 *     and sum(amount) per minute over the last hour), idle (--idle-runs runs after one
 *     warm-up, on a table preloaded with --preload-seconds of rows at the target rate)
 *     and under load (one run a second from its own thread while the ingest runs);
 *   - the ingest rate achieved against --rate (rows/s), paced;
 *   - every 5 s: segments per partition (the largest count in a partition that received
 *     segments since the previous sample, and over all partitions), the server's totals
 *     from GET /tables/orders, its RSS, and the rows/s of the last 5 s;
 *   - at the end the server's peak RSS (VmHWM) and count(*) against the rows acknowledged.
 *
 * How: it starts `STRATA serve --data DIR --listen 127.0.0.1:0` itself (port from its log,
 * SIGTERM at the end) or targets --url http://host:port (RSS then needs --pid, and
 * segments per partition need --data, the server's data directory). It creates the
 * reference orders table (order_gen_schema) with PUT. One order_gen generator, shared
 * under a lock, writes the NDJSON bodies: 4 MiB each, or --batch rows. Event times
 * follow the wall clock (slot i at load start + i / rate), so rows land in today's
 * partition. --connections sender threads (default 3) each take the next body and send
 * it when its first row is due (load start + rows before it / rate), or at once when
 * behind. The server reports no per-partition segment counts (only totals), so the
 * *.seg files of each DIR/orders/raw/<partition>/ directory are counted.
 */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_serve.h"
#include "bench_util.h"
#include "engine/schema_json.h"
#include "tools/order_gen.h"

#define USAGE                                                                                       \
    "usage: bench_under_load [STRATA_BINARY | --url http://HOST:PORT] [--rate ROWS_PER_S]\n"       \
    "                        [--seconds N] [--batch ROWS] [--connections N] [--preload-seconds N]\n"\
    "                        [--idle-runs N] [--data DIR] [--pid PID]\n\n"                          \
    "Ingests the reference orders at --rate rows/s (default 700000) for --seconds (default 120)\n"  \
    "in 4 MiB NDJSON requests (or --batch rows) over --connections (default 3), while a dashboard\n" \
    "query (count, sum(amount) per minute over the last hour) runs every second. Before the load\n"  \
    "it preloads --preload-seconds (default 5) of rows at the rate and times the query idle\n"      \
    "(--idle-runs, default 20). Samples segments per partition, RSS and rows/s every 5 s. Starts\n" \
    "STRATA_BINARY serve on a fresh --data DIR (default /tmp/strata-bench-under-load), or uses a\n" \
    "running server (--url; --pid for its RSS, --data for its segment files). See bench/README.md.\n"

#define BODY_MAX (4u << 20)

static const char *const DASHBOARD =
    "{\"table\":\"orders\",\"from\":\"now-1h\",\"interval\":\"1m\","
    "\"select\":[{\"fn\":\"count\"},{\"fn\":\"sum\",\"column\":\"amount\"}]}";

static bench_server srv;

/* The body source: one generator, its rows scheduled in order. */
static pthread_mutex_t gen_lock = PTHREAD_MUTEX_INITIALIZER;
static order_gen *gen;
static uint64_t gen_left;       /* rows the generator still may produce */
static uint64_t rows_scheduled; /* rows handed to senders so far */
static uint64_t batch_rows;     /* 0: fill to BODY_MAX */

typedef struct sender {
    double t0, deadline, rate; /* rate 0: unpaced */
    _Atomic uint64_t *acked;
    _Atomic uint64_t *requests;
    _Atomic uint64_t *errors;
    char first_error[400];
    double behind_s;           /* the most a request started late */
} sender;

static void sleep_until(double t)
{
    double now = bench_now_s();
    if (t <= now)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double d = t - now;
    ts.tv_sec += (time_t)d;
    ts.tv_nsec += (long)((d - floor(d)) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* Fills body with the next rows; returns their count (0: the generator is done) and the
 * row offset of the first in *first. */
static uint64_t next_body(char *body, size_t *len, uint64_t *first)
{
    pthread_mutex_lock(&gen_lock);
    uint64_t k = 0;
    size_t l = 0;
    order_gen_msg msg;
    while (gen_left > 0 && (batch_rows ? k < batch_rows : l + ORDER_GEN_JSON_MAX + 1 <= BODY_MAX) &&
           order_gen_next_json(gen, body + l, ORDER_GEN_JSON_MAX, &msg) == 1) {
        l += msg.len;
        body[l++] = '\n';
        k++;
        gen_left--;
    }
    *first = rows_scheduled;
    rows_scheduled += k;
    pthread_mutex_unlock(&gen_lock);
    *len = l;
    return k;
}

static void *run_sender(void *arg)
{
    sender *sd = arg;
    size_t cap = batch_rows ? batch_rows * (ORDER_GEN_JSON_MAX + 1) : BODY_MAX;
    char *body = malloc(cap);
    int fd = -1;
    for (;;) {
        size_t len;
        uint64_t first;
        uint64_t k = next_body(body, &len, &first);
        if (!k)
            break;
        if (sd->rate > 0) {
            double due = sd->t0 + (double)first / sd->rate;
            if (due >= sd->deadline)
                break;
            sleep_until(due);
            double late = bench_now_s() - due;
            if (late > sd->behind_s)
                sd->behind_s = late;
        }
        char *ans = NULL;
        int st = bench_request(&srv, &fd, "POST", "/ingest/orders", body, len, &ans);
        atomic_fetch_add(sd->requests, 1);
        if (st == 200) {
            atomic_fetch_add(sd->acked, bench_json_u64(ans, "ingested", 0));
        } else {
            atomic_fetch_add(sd->errors, 1);
            if (!sd->first_error[0])
                snprintf(sd->first_error, sizeof sd->first_error, "%d %.300s", st, ans ? ans : "(no answer)");
        }
        free(ans);
        if (st < 0)
            break;
        if (sd->rate > 0 && bench_now_s() >= sd->deadline)
            break;
    }
    if (fd >= 0)
        close(fd);
    free(body);
    return NULL;
}

typedef struct querier {
    double t0, deadline;
    double *ms;
    size_t n, cap;
    uint64_t errors;
    char first_error[400];
} querier;

static double run_query(int *fd, int *status, char **ans)
{
    double t = bench_now_s();
    *status = bench_request(&srv, fd, "POST", "/query", DASHBOARD, strlen(DASHBOARD), ans);
    return (bench_now_s() - t) * 1e3;
}

static void *run_querier(void *arg)
{
    querier *q = arg;
    int fd = -1;
    for (int i = 1;; i++) {
        double due = q->t0 + i;
        if (due >= q->deadline)
            break;
        sleep_until(due);
        int st;
        char *ans = NULL;
        double ms = run_query(&fd, &st, &ans);
        if (st == 200) {
            if (q->n == q->cap)
                q->ms = realloc(q->ms, (q->cap = q->cap ? q->cap * 2 : 256) * sizeof *q->ms);
            q->ms[q->n++] = ms;
        } else if (q->errors++ == 0) {
            snprintf(q->first_error, sizeof q->first_error, "%d %.300s", st, ans ? ans : "(no answer)");
        }
        free(ans);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static double pct(double *v, size_t n, double p) /* v sorted */
{
    if (!n)
        return NAN;
    size_t i = (size_t)ceil(p * (double)n);
    return v[i ? i - 1 : 0];
}

static double cpu_self_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One ingest: rows rows with times [start_ms, start_ms + span_ms), paced at rate (0: at
 * once), none started after seconds; the rows acknowledged and the elapsed time. */
typedef struct ingest_run {
    _Atomic uint64_t acked, requests, errors;
    double elapsed, behind_s, t0;
    char first_error[400];
} ingest_run;

static sender sd[16];
static pthread_t sth[16];

static void ingest_start(ingest_run *r, int conns, uint64_t rows, int64_t start_ms, int64_t span_ms,
                         uint64_t seed, double rate, double seconds)
{
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.seed = seed;
    o.count = rows;
    o.start_ms = start_ms;
    o.span_ms = span_ms;
    strata_err err = {0};
    gen = order_gen_create(&o, &err);
    if (!gen) {
        fprintf(stderr, "bench_under_load: order_gen: %s\n", err.msg);
        exit(1);
    }
    gen_left = rows;
    rows_scheduled = 0;
    atomic_store(&r->acked, 0);
    atomic_store(&r->requests, 0);
    atomic_store(&r->errors, 0);
    r->first_error[0] = 0;
    r->t0 = bench_now_s();
    for (int i = 0; i < conns; i++) {
        sd[i] = (sender){.t0 = r->t0, .deadline = r->t0 + seconds, .rate = rate, .acked = &r->acked,
                         .requests = &r->requests, .errors = &r->errors};
        pthread_create(&sth[i], NULL, run_sender, &sd[i]);
    }
}

static void ingest_wait(ingest_run *r, int conns)
{
    r->behind_s = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(sth[i], NULL);
        if (sd[i].behind_s > r->behind_s)
            r->behind_s = sd[i].behind_s;
        if (!r->first_error[0] && sd[i].first_error[0])
            snprintf(r->first_error, sizeof r->first_error, "%s", sd[i].first_error);
    }
    r->elapsed = bench_now_s() - r->t0;
    order_gen_free(gen);
    gen = NULL;
}

/* Segments per partition from the *.seg files; -1 when the directory is not readable. */
typedef struct seg_sample {
    int partitions, total, max_all, max_active;
} seg_sample;

#define MAX_PARTS 256
static char part_name[MAX_PARTS][256];
static int part_prev[MAX_PARTS], nparts_known;

static int sample_segments(seg_sample *s)
{
    char raw[1100];
    snprintf(raw, sizeof raw, "%s/orders/raw", srv.data);
    DIR *d = opendir(raw);
    *s = (seg_sample){0, 0, 0, 0};
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char dir[1400];
        snprintf(dir, sizeof dir, "%s/%s", raw, e->d_name);
        DIR *pd = opendir(dir);
        if (!pd)
            continue;
        int n = 0;
        struct dirent *f;
        while ((f = readdir(pd)) != NULL) {
            size_t l = strlen(f->d_name);
            n += l > 4 && strcmp(f->d_name + l - 4, ".seg") == 0;
        }
        closedir(pd);
        int k = 0;
        while (k < nparts_known && strcmp(part_name[k], e->d_name) != 0)
            k++;
        if (k == nparts_known && nparts_known < MAX_PARTS) {
            snprintf(part_name[nparts_known], sizeof part_name[0], "%s", e->d_name);
            part_prev[nparts_known++] = 0;
        }
        bool active = k < MAX_PARTS && n > part_prev[k];
        if (k < MAX_PARTS)
            part_prev[k] = n;
        s->partitions++;
        s->total += n;
        if (n > s->max_all)
            s->max_all = n;
        if (active && n > s->max_active)
            s->max_active = n;
    }
    closedir(d);
    return 0;
}

static uint64_t count_rows(int *fd)
{
    const char *q = "{\"table\":\"orders\",\"from\":0,\"to\":\"2100-01-01T00:00:00Z\",\"select\":[{\"fn\":\"count\"}]}";
    char *ans = NULL;
    int st = bench_request(&srv, fd, "POST", "/query", q, strlen(q), &ans);
    const char *p = ans ? strstr(ans, "\"rows\":[[") : NULL;
    uint64_t n = st == 200 && p ? strtoull(p + 9, NULL, 10) : UINT64_MAX;
    free(ans);
    return n;
}

int main(int argc, char **argv)
{
    if (bench_help(argc, argv, USAGE))
        return 0;
    double rate = 700000;
    int seconds = 120, conns = 3, preload_s = 5, idle_runs = 20;
    pid_t pid_opt = 0;
    const char *url = NULL, *data = NULL;
    static const struct option opts[] = {
        {"url", required_argument, 0, 'u'},      {"rate", required_argument, 0, 'r'},
        {"seconds", required_argument, 0, 's'},  {"batch", required_argument, 0, 'b'},
        {"connections", required_argument, 0, 'c'}, {"preload-seconds", required_argument, 0, 'P'},
        {"idle-runs", required_argument, 0, 'i'}, {"data", required_argument, 0, 'd'},
        {"pid", required_argument, 0, 'p'},      {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'u': url = optarg; break;
        case 'r': rate = atof(optarg); break;
        case 's': seconds = atoi(optarg); break;
        case 'b': batch_rows = strtoull(optarg, NULL, 10); break;
        case 'c': conns = atoi(optarg); break;
        case 'P': preload_s = atoi(optarg); break;
        case 'i': idle_runs = atoi(optarg); break;
        case 'd': data = optarg; break;
        case 'p': pid_opt = (pid_t)atoi(optarg); break;
        default: fputs("(see bench_under_load --help)\n", stderr); return 2;
        }
    }
    if ((url != NULL) == (optind == argc - 1) || optind < argc - 1 || rate <= 0 || seconds <= 0 ||
        conns <= 0 || conns > 16 || preload_s < 0 || idle_runs <= 0) {
        fputs(USAGE, stderr);
        return 2;
    }
    if (url) {
        if (bench_server_url(&srv, url) != 0) {
            fprintf(stderr, "bench_under_load: --url: '%s' is not http://HOST:PORT\n", url);
            return 2;
        }
        if (data)
            snprintf(srv.data, sizeof srv.data, "%s", data);
    } else if (bench_server_start(&srv, argv[optind], data ? data : "/tmp/strata-bench-under-load",
                                  "bench_under_load") != 0) {
        return 1;
    }
    pid_t spid = srv.pid ? srv.pid : pid_opt;

    int cfd = -1;
    strata_schema s;
    order_gen_schema(&s);
    s.ndedup = 0; /* the write path alone, as measured before dedup (bench_http compares both) */
    s.version_col = -1;
    char *schema = schema_json_dump(&s);
    char *ans = NULL;
    int st = bench_request(&srv, &cfd, "PUT", "/tables/orders", schema, strlen(schema), &ans);
    free(schema);
    if (st != 200 && st != 201) {
        fprintf(stderr, "bench_under_load: PUT /tables/orders answered %d: %s\n", st, ans ? ans : "");
        bench_server_stop(&srv);
        return 1;
    }
    free(ans);
    uint64_t rows_before = count_rows(&cfd);

    printf("bench_under_load: %s, target %.0f rows/s for %d s, %s requests over %d connections\n",
           url ? url : "strata serve started here", rate, seconds, batch_rows ? "--batch" : "4 MiB", conns);
    printf("dashboard query (bench_http's Q2 over the last hour): %s\n\n", DASHBOARD);

    /* Preload: --preload-seconds of rows at the rate, times over the seconds before now. */
    ingest_run pre;
    uint64_t pre_rows = (uint64_t)(rate * preload_s);
    if (pre_rows) {
        int64_t now = wall_ms();
        ingest_start(&pre, conns, pre_rows, now - preload_s * 1000, preload_s * 1000, 2, 0, 1e9);
        ingest_wait(&pre, conns);
        printf("preload: %" PRIu64 " rows in %.1f s (%.2fM rows/s unpaced), %" PRIu64 " errors%s%s\n",
               atomic_load(&pre.acked), pre.elapsed, (double)atomic_load(&pre.acked) / pre.elapsed / 1e6,
               atomic_load(&pre.errors), pre.first_error[0] ? ": " : "", pre.first_error);
    }
    double idle[1000];
    if (idle_runs > 1000)
        idle_runs = 1000;
    char *a = NULL;
    run_query(&cfd, &st, &a); /* warm-up */
    if (st != 200) {
        fprintf(stderr, "bench_under_load: the dashboard query answered %d: %s\n", st, a ? a : "");
        bench_server_stop(&srv);
        return 1;
    }
    free(a);
    for (int i = 0; i < idle_runs; i++) {
        a = NULL;
        idle[i] = run_query(&cfd, &st, &a);
        free(a);
    }
    qsort(idle, (size_t)idle_runs, sizeof *idle, bench_cmp_double);
    seg_sample ss;
    bool seg_local = srv.data[0] && sample_segments(&ss) == 0;
    printf("idle: dashboard query p50 %.1f ms, p99 %.1f ms (%d runs)%s\n\n", pct(idle, (size_t)idle_runs, 0.5),
           pct(idle, (size_t)idle_runs, 0.99), idle_runs,
           seg_local ? "" : "; segments per partition: no local --data, server totals only");

    /* The load, the querier and the sampler. */
    ingest_run load;
    uint64_t load_rows = (uint64_t)(rate * seconds);
    int64_t now = wall_ms();
    double lcpu0 = cpu_self_s(), scpu0 = spid ? bench_proc_cpu_s(spid) : -1;
    ingest_start(&load, conns, load_rows, now, (int64_t)seconds * 1000, 3, rate, seconds);
    querier q = {.t0 = load.t0, .deadline = load.t0 + seconds};
    pthread_t qth;
    pthread_create(&qth, NULL, run_querier, &q);
    printf("| t (s) | rows/s (last 5 s) | segments, max per active partition | max per partition | partitions |"
           " segments (GET /tables) | server RSS (MiB) |\n");
    printf("|---|---|---|---|---|---|---|\n");
    fflush(stdout);
    int max_active = 0, sfd = -1;
    uint64_t prev_acked = 0;
    double prev_t = load.t0;
    for (int i = 1; i * 5 <= seconds; i++) {
        sleep_until(load.t0 + i * 5);
        double t = bench_now_s();
        uint64_t acked = atomic_load(&load.acked);
        char segs_local[64] = "n/a", max_all[32] = "n/a", parts[32] = "n/a", segs_srv[64] = "n/a", rss[32] = "n/a";
        if (seg_local && sample_segments(&ss) == 0) {
            snprintf(segs_local, sizeof segs_local, "%d", ss.max_active);
            snprintf(max_all, sizeof max_all, "%d", ss.max_all);
            snprintf(parts, sizeof parts, "%d", ss.partitions);
            if (ss.max_active > max_active)
                max_active = ss.max_active;
        }
        char *ta = NULL;
        if (bench_request(&srv, &sfd, "GET", "/tables/orders", NULL, 0, &ta) == 200)
            snprintf(segs_srv, sizeof segs_srv, "%" PRIu64 " in %" PRIu64 " partition(s)",
                     bench_json_u64(ta, "segments", 0), bench_json_u64(ta, "partitions", 0));
        free(ta);
        long kb = spid ? bench_proc_kb(spid, "VmRSS") : -1;
        if (kb >= 0)
            snprintf(rss, sizeof rss, "%.0f", (double)kb / 1024);
        printf("| %.0f | %.0f | %s | %s | %s | %s | %s |\n", t - load.t0, (double)(acked - prev_acked) / (t - prev_t),
               segs_local, max_all, parts, segs_srv, rss);
        fflush(stdout);
        prev_acked = acked;
        prev_t = t;
    }
    ingest_wait(&load, conns);
    pthread_join(qth, NULL);
    double lcpu = (cpu_self_s() - lcpu0) / load.elapsed;
    double scpu = spid && scpu0 >= 0 ? (bench_proc_cpu_s(spid) - scpu0) / load.elapsed : -1;
    /* The idle figure before the load queried the preload only; the last hour grows by
     * rate x seconds during the load. So the query is timed idle again on the data the
     * load left (at least what any query under load saw): the fair baseline for what the
     * load itself costs a query. */
    double idle_after[1000];
    for (int i = 0; i < idle_runs; i++) {
        a = NULL;
        idle_after[i] = run_query(&cfd, &st, &a);
        free(a);
    }
    qsort(idle_after, (size_t)idle_runs, sizeof *idle_after, bench_cmp_double);
    if (seg_local && sample_segments(&ss) == 0 && ss.max_active > max_active)
        max_active = ss.max_active;
    long hwm = spid ? bench_proc_kb(spid, "VmHWM") : -1;

    uint64_t acked = atomic_load(&load.acked);
    qsort(q.ms, q.n, sizeof *q.ms, bench_cmp_double);
    double lp50 = pct(q.ms, q.n, 0.5), lp99 = pct(q.ms, q.n, 0.99);
    double ip50 = pct(idle, (size_t)idle_runs, 0.5), ip99 = pct(idle, (size_t)idle_runs, 0.99);
    printf("\n| | figure |\n|---|---|\n");
    printf("| ingest achieved / target | %.0f / %.0f rows/s (%.2f), %" PRIu64 " rows in %.1f s, %" PRIu64
           " requests, %" PRIu64 " errors; the most a request started late: %.2f s |\n",
           (double)acked / load.elapsed, rate, (double)acked / load.elapsed / rate, acked, load.elapsed,
           atomic_load(&load.requests), atomic_load(&load.errors), load.behind_s);
    printf("| dashboard query p50 under load / idle | %.1f / %.1f ms (%.1fx) |\n", lp50, ip50, lp50 / ip50);
    printf("| dashboard query p99 under load / idle | %.1f / %.1f ms (%.1fx); %zu runs under load, %d idle |\n", lp99,
           ip99, lp99 / ip99, q.n, idle_runs);
    double ap50 = pct(idle_after, (size_t)idle_runs, 0.5), ap99 = pct(idle_after, (size_t)idle_runs, 0.99);
    printf("| dashboard query idle after the load, on all the data it left: p50 / p99 | %.1f / %.1f ms; under load "
           "/ idle after: p50 %.2fx, p99 %.2fx |\n", ap50, ap99, lp50 / ap50, lp99 / ap99);
    if (seg_local)
        printf("| segments, max per active partition | %d (*.seg files in %s/orders/raw/<partition>/) |\n",
               max_active, srv.data);
    else
        printf("| segments, max per active partition | n/a (the server reports totals only; pass --data) |\n");
    if (hwm >= 0)
        printf("| server peak RSS (VmHWM) | %.0f MiB |\n", (double)hwm / 1024);
    else
        printf("| server peak RSS (VmHWM) | n/a (pass --pid with --url) |\n");
    char scpu_s[32] = "n/a";
    if (scpu >= 0)
        snprintf(scpu_s, sizeof scpu_s, "%.2f cores", scpu);
    printf("| CPU during the load | bench %.2f cores, server %s |\n", lcpu, scpu_s);
    if (load.first_error[0])
        printf("first ingest error: %s\n", load.first_error);
    if (q.errors)
        printf("dashboard query errors: %" PRIu64 ", first: %s\n", q.errors, q.first_error);

    int rc = 0;
    uint64_t rows_after = count_rows(&cfd);
    uint64_t expect = acked + (pre_rows ? atomic_load(&pre.acked) : 0);
    if (rows_after == UINT64_MAX || rows_before == UINT64_MAX || rows_after - rows_before != expect) {
        printf("*** MISMATCH: count(*) gives %" PRIu64 " new rows, %" PRIu64 " were acknowledged ***\n",
               rows_after - rows_before, expect);
        rc = 1;
    } else {
        printf("count(*): %" PRIu64 " new rows = the rows acknowledged (preload and load)\n", expect);
    }
    if (cfd >= 0)
        close(cfd);
    if (sfd >= 0)
        close(sfd);
    if (srv.pid && bench_server_stop(&srv) != 0) {
        printf("the server did not exit 0 after SIGTERM (log: %s)\n", srv.log_path);
        rc = 1;
    }
    return rc;
}
