/*
 * bench_small_writers.c — many small HTTP writers against the real `strata serve`.
 *
 * What it measures: the request rate, row rate and per-request latency (from the first
 * byte sent to the last byte of the answer) of three phases, each --seconds long over
 * --connections keep-alive connections with one request in flight on each (as wrk does):
 *   health  GET /health, the floor: what the HTTP layer alone answers;
 *   1       POST /ingest/<table> with 1-row NDJSON bodies;
 *   10      the same with 10-row bodies.
 * Each ingest phase writes a table of its own (small_writers_1r, small_writers_10r), so a
 * phase does not start on the segments an earlier one left.
 * For the ingest phases it prints their request rate over the /health rate of the same run.
 * After each it checks that count(*) over its table equals the rows the answers
 * acknowledged ("ingested"), and reports segments: the server's totals from
 * GET /tables/<table>, and the largest number of *.seg files in one partition directory
 * when the data directory is local (the server reports no per-partition figure).
 *
 * How: it starts `STRATA serve --data DIR --listen 127.0.0.1:0` itself (port read from its
 * log, stopped with SIGTERM at the end) or targets --url http://host:port. Rows are
 * distinct (ids from one counter) with times spread over the current UTC day, so they land
 * in one partition (two when a run crosses midnight). The load comes from --threads
 * threads (default 2), each driving its share of the connections with non-blocking
 * sockets under epoll (edge-triggered), so the generator needs little CPU; its own CPU
 * (getrusage) and the server's (/proc/PID/stat, when started here) are printed per phase,
 * because on a 2-core machine both share the cores.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_serve.h"
#include "bench_util.h"

#define USAGE                                                                                      \
    "usage: bench_small_writers [STRATA_BINARY | --url http://HOST:PORT] [--seconds N]\n"         \
    "                           [--connections N] [--threads N] [--phases LIST] [--data DIR]\n"   \
    "                           [--table PREFIX]\n\n"                                                \
    "Many small HTTP writers against strata serve. Starts STRATA_BINARY serve on a fresh\n"       \
    "--data DIR (default /tmp/strata-bench-small-writers) or uses a running server (--url; the\n" \
    "tables are created when missing). Phases (--phases, default health,1,10): GET /health, then\n" \
    "POST /ingest with 1-row and 10-row NDJSON bodies (each phase into its own table PREFIX_<rows>r,\n" \
    "default PREFIX small_writers), each for --seconds (default 20) over\n"    \
    "--connections keep-alive connections (default 32), one request in flight on each, driven\n"  \
    "by --threads epoll threads (default 2). Prints requests/s, rows/s, latency p50/p90/p99/max,\n" \
    "errors, the ratio to /health, CPU used, then count(*) against the acknowledged rows and\n"   \
    "segments per partition. See bench/README.md.\n"

static const char *const countries[] = {"US", "DE", "FR", "GB", "JP", "BR", "IN", "CA", "ES", "IT"};

typedef struct phase {
    const char *name;
    int rows;           /* rows per request; 0 = GET /health */
    double t0;          /* its start (monotonic seconds) */
    double deadline;    /* no request starts after this */
} phase;

typedef struct conn {
    int fd;
    bool busy;          /* a request is in flight */
    char *req;
    size_t req_len, req_off, req_cap;
    char *rbuf;
    size_t rlen, rcap;
    double t_send;
    int rows;
} conn;

typedef struct worker {
    int id, nconn;
    conn *c;
    int ep;
    const bench_server *srv;
    const char *table;
    const phase *ph;
    /* results of the current phase */
    uint64_t requests, rows_acked, errors, conn_errors;
    char first_error[400];
    uint32_t per_5s[256]; /* requests completed in each 5 s of the phase */
    float *lat;         /* ms, one per completed request */
    size_t nlat, lat_cap;
} worker;

static _Atomic uint64_t next_id = 1;
static int64_t day_start_ms;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put(conn *c, const char *s, size_t n)
{
    if (c->req_len + n > c->req_cap) {
        c->req_cap = (c->req_len + n) * 2;
        c->req = realloc(c->req, c->req_cap);
    }
    memcpy(c->req + c->req_len, s, n);
    c->req_len += n;
}

/* The next request of the phase into c->req. Rows: distinct ids, times uniform over
 * [midnight UTC today, now]. */
static void build_request(worker *w, conn *c)
{
    char head[512];
    c->req_len = c->req_off = 0;
    c->rows = w->ph->rows;
    if (!c->rows) {
        int n = snprintf(head, sizeof head, "GET /health HTTP/1.1\r\nHost: %s\r\n\r\n", w->srv->host);
        put(c, head, (size_t)n);
        return;
    }
    char body[128 * 64];
    size_t bl = 0;
    uint64_t id = atomic_fetch_add_explicit(&next_id, (uint64_t)c->rows, memory_order_relaxed);
    int64_t now = wall_ms(), span = now - day_start_ms + 1;
    for (int i = 0; i < c->rows; i++, id++) {
        uint64_t h = id * 0x9E3779B97F4A7C15ull;
        int64_t ts = day_start_ms + (int64_t)((h >> 11) % (uint64_t)span);
        bl += (size_t)snprintf(body + bl, sizeof body - bl,
                               "{\"ts\":%" PRId64 ",\"id\":%" PRIu64 ",\"country\":\"%s\",\"amount\":%" PRIu64
                               ".%02u}\n",
                               ts, id, countries[(h >> 7) % 10], (h >> 20) % 1000, (unsigned)((h >> 40) % 100));
    }
    int n = snprintf(head, sizeof head,
                     "POST /ingest/%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-ndjson\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     w->table, w->srv->host, bl);
    put(c, head, (size_t)n);
    put(c, body, bl);
}

static int open_conn(worker *w, conn *c)
{
    c->fd = bench_connect(w->srv);
    if (c->fd < 0)
        return -1;
    int fl = fcntl(c->fd, F_GETFL);
    fcntl(c->fd, F_SETFL, fl | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP, .data.ptr = c};
    return epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void note_error(worker *w, const char *what)
{
    w->errors++;
    if (!w->first_error[0])
        snprintf(w->first_error, sizeof w->first_error, "%s", what);
}

/* Writes what is left of the request; false when the connection broke. */
static bool pump_send(conn *c)
{
    while (c->req_off < c->req_len) {
        ssize_t r = send(c->fd, c->req + c->req_off, c->req_len - c->req_off, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (r <= 0)
            return false;
        c->req_off += (size_t)r;
    }
    return true;
}

static void start_request(worker *w, conn *c)
{
    build_request(w, c);
    c->rlen = 0;
    c->busy = true;
    c->t_send = bench_now_s();
    if (!pump_send(c)) {
        w->conn_errors++;
        note_error(w, "connection broken while sending");
        c->busy = false;
    }
}

/* Records a complete answer. */
static void finish(worker *w, conn *c, int status, const char *body)
{
    double now = bench_now_s(), ms = (now - c->t_send) * 1e3;
    size_t slot = (size_t)((now - w->ph->t0) / 5);
    w->per_5s[slot < 256 ? slot : 255]++;
    if (w->nlat == w->lat_cap) {
        w->lat_cap = w->lat_cap ? w->lat_cap * 2 : 65536;
        w->lat = realloc(w->lat, w->lat_cap * sizeof *w->lat);
    }
    w->lat[w->nlat++] = (float)ms;
    w->requests++;
    if (status / 100 != 2) {
        char msg[400];
        snprintf(msg, sizeof msg, "%d %.300s", status, body);
        note_error(w, msg);
        return;
    }
    if (c->rows) {
        uint64_t got = bench_json_u64(body, "ingested", 0);
        w->rows_acked += got;
        if (got != (uint64_t)c->rows) {
            char msg[400];
            snprintf(msg, sizeof msg, "%d ingested %" PRIu64 " of %d: %.300s", status, got, c->rows, body);
            note_error(w, msg);
        }
    }
}

/* Reads what arrived; true when the connection is still usable. */
static bool pump_recv(worker *w, conn *c)
{
    for (;;) {
        if (c->rlen == c->rcap) {
            c->rcap = c->rcap ? c->rcap * 2 : 8192;
            c->rbuf = realloc(c->rbuf, c->rcap);
        }
        ssize_t r = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (r <= 0)
            return false;
        c->rlen += (size_t)r;
        int status = 0;
        size_t off = 0, blen = 0;
        bool chunked = false;
        long total = bench_http_parse(c->rbuf, c->rlen, &status, &off, &blen, &chunked);
        if (total < 0)
            return false;
        if (total > 0) {
            char *body = bench_http_body(c->rbuf, off, blen, chunked);
            c->busy = false;
            finish(w, c, status, body);
            free(body);
            c->rlen = 0; /* one request in flight: nothing follows this answer */
            return true;
        }
    }
}

static void *run_worker(void *arg)
{
    worker *w = arg;
    const phase *ph = w->ph;
    int inflight = 0;
    for (int i = 0; i < w->nconn; i++) {
        conn *c = &w->c[i];
        if (c->fd < 0 && open_conn(w, c) != 0) {
            w->conn_errors++;
            note_error(w, "cannot connect");
            continue;
        }
        start_request(w, c);
        inflight += c->busy;
    }
    struct epoll_event evs[64];
    while (inflight > 0) {
        int n = epoll_wait(w->ep, evs, 64, 200);
        double now = bench_now_s();
        if (now > ph->deadline + 60) { /* answers still missing a minute after the end */
            for (int i = 0; i < w->nconn; i++)
                if (w->c[i].busy) {
                    w->c[i].busy = false;
                    close(w->c[i].fd);
                    w->c[i].fd = -1;
                    w->conn_errors++;
                    note_error(w, "no answer within 60 s of the phase's end");
                }
            break;
        }
        for (int k = 0; k < n; k++) {
            conn *c = evs[k].data.ptr;
            if (!c->busy)
                continue;
            bool ok = true;
            if (c->req_off < c->req_len)
                ok = pump_send(c);
            if (ok && c->req_off == c->req_len)
                ok = pump_recv(w, c);
            if (ok && (evs[k].events & (EPOLLERR | EPOLLHUP)) && c->busy)
                ok = false;
            if (!ok) {
                w->conn_errors++;
                note_error(w, "connection closed by the server");
                close(c->fd);
                c->fd = -1;
                c->busy = false;
                if (now < ph->deadline && open_conn(w, c) == 0)
                    start_request(w, c);
            } else if (!c->busy && now < ph->deadline) {
                start_request(w, c);
            }
            if (!c->busy)
                inflight--;
        }
    }
    return NULL;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static double pct(const float *v, size_t n, double p)
{
    if (!n)
        return 0;
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

static uint64_t count_rows(const bench_server *srv, int *fd, const char *table)
{
    char q[512];
    snprintf(q, sizeof q,
             "{\"table\":\"%s\",\"from\":0,\"to\":\"2100-01-01T00:00:00Z\",\"select\":[{\"fn\":\"count\"}]}",
             table);
    char *ans = NULL;
    int st = bench_request(srv, fd, "POST", "/query", q, strlen(q), &ans);
    uint64_t n = UINT64_MAX;
    const char *p = ans ? strstr(ans, "\"rows\":[[") : NULL;
    if (st == 200 && p)
        n = strtoull(p + 9, NULL, 10);
    else
        fprintf(stderr, "bench_small_writers: count(*) failed (%d): %s\n", st, ans ? ans : "");
    free(ans);
    return n;
}

/* Appends to a fixed text buffer; stops at its end instead of overrunning it. */
static void appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len = *len + (size_t)n < cap ? *len + (size_t)n : cap - 1;
}

int main(int argc, char **argv)
{
    if (bench_help(argc, argv, USAGE))
        return 0;
    int seconds = 20, nconn = 32, nthreads = 2;
    const char *url = NULL, *data = NULL, *table = "small_writers", *phases = "health,1,10";
    static const struct option opts[] = {
        {"url", required_argument, 0, 'u'},     {"seconds", required_argument, 0, 's'},
        {"connections", required_argument, 0, 'c'}, {"threads", required_argument, 0, 't'},
        {"phases", required_argument, 0, 'p'},  {"data", required_argument, 0, 'd'},
        {"table", required_argument, 0, 'T'},   {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'u': url = optarg; break;
        case 's': seconds = atoi(optarg); break;
        case 'c': nconn = atoi(optarg); break;
        case 't': nthreads = atoi(optarg); break;
        case 'p': phases = optarg; break;
        case 'd': data = optarg; break;
        case 'T': table = optarg; break;
        default: fputs("(see bench_small_writers --help)\n", stderr); return 2;
        }
    }
    if ((url != NULL) == (optind == argc - 1) || optind < argc - 1 || seconds <= 0 || nconn <= 0 ||
        nthreads <= 0 || nthreads > 64 || nthreads > nconn) {
        fputs(USAGE, stderr);
        return 2;
    }
    bench_server srv;
    if (url) {
        if (bench_server_url(&srv, url) != 0) {
            fprintf(stderr, "bench_small_writers: --url: '%s' is not http://HOST:PORT\n", url);
            return 2;
        }
        if (data)
            snprintf(srv.data, sizeof srv.data, "%s", data);
    } else if (bench_server_start(&srv, argv[optind], data ? data : "/tmp/strata-bench-small-writers",
                                  "bench_small_writers") != 0) {
        return 1;
    }

    int cfd = -1;
    int64_t now = wall_ms();
    day_start_ms = now - now % 86400000;

    worker *ws = calloc((size_t)nthreads, sizeof *ws);
    for (int t = 0; t < nthreads; t++) {
        worker *w = &ws[t];
        w->id = t;
        w->nconn = nconn / nthreads + (t < nconn % nthreads);
        w->c = calloc((size_t)w->nconn, sizeof *w->c);
        for (int i = 0; i < w->nconn; i++)
            w->c[i].fd = -1;
        w->ep = epoll_create1(0);
        w->srv = &srv;
    }

    printf("bench_small_writers: %s, %d connections on %d threads, %d s a phase, each ingest phase into "
           "a table of its own (%s_<rows>r)\n\n",
           url ? url : "strata serve started here", nconn, nthreads, seconds, table);
    printf("| phase | requests/s | rows/s | p50 ms | p90 ms | p99 ms | max ms | errors | vs /health | "
           "bench CPU | server CPU |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    fflush(stdout);
    double health_rps = 0;
    char list[256];
    snprintf(list, sizeof list, "%s", phases);
    char errors_text[4096] = "", checks[8192] = "";
    size_t etl = 0, ckl = 0;
    int rc = 0;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        phase ph = {tok, strcmp(tok, "health") == 0 ? 0 : atoi(tok), 0, 0};
        if (strcmp(tok, "health") != 0 && (ph.rows <= 0 || ph.rows > 64)) {
            fprintf(stderr, "bench_small_writers: --phases: '%s' is neither health nor 1..64 rows\n", tok);
            bench_server_stop(&srv);
            return 2;
        }
        char label[64], tname[200] = "", path[300] = "";
        uint64_t rows_before = 0;
        if (ph.rows) {
            snprintf(label, sizeof label, "POST /ingest, %d row%s", ph.rows, ph.rows > 1 ? "s" : "");
            snprintf(tname, sizeof tname, "%s_%dr", table, ph.rows);
            snprintf(path, sizeof path, "/tables/%s", tname);
            char schema[1024], *ans = NULL;
            snprintf(schema, sizeof schema,
                     "{\"name\":\"%s\",\"columns\":[{\"name\":\"ts\",\"type\":\"timestamp\"},"
                     "{\"name\":\"id\",\"type\":\"uint64\"},{\"name\":\"country\",\"type\":\"string\"},"
                     "{\"name\":\"amount\",\"type\":\"float64\"}],\"time_column\":\"ts\",\"partition_by\":\"day\"}",
                     tname);
            int st = bench_request(&srv, &cfd, "PUT", path, schema, strlen(schema), &ans);
            if (st != 200 && st != 201) {
                fprintf(stderr, "bench_small_writers: PUT %s answered %d: %s\n", path, st, ans ? ans : "");
                bench_server_stop(&srv);
                return 1;
            }
            free(ans);
            rows_before = count_rows(&srv, &cfd, tname);
            if (rows_before == UINT64_MAX) {
                bench_server_stop(&srv);
                return 1;
            }
        } else {
            snprintf(label, sizeof label, "GET /health");
        }
        double cpu0 = cpu_self_s(), scpu0 = srv.pid ? bench_proc_cpu_s(srv.pid) : -1;
        double t0 = bench_now_s();
        ph.t0 = t0;
        ph.deadline = t0 + seconds;
        pthread_t th[64];
        for (int t = 0; t < nthreads; t++) {
            worker *w = &ws[t];
            w->ph = &ph;
            w->table = tname;
            w->requests = w->rows_acked = w->errors = w->conn_errors = 0;
            w->first_error[0] = 0;
            w->nlat = 0;
            memset(w->per_5s, 0, sizeof w->per_5s);
            pthread_create(&th[t], NULL, run_worker, w);
        }
        for (int t = 0; t < nthreads; t++)
            pthread_join(th[t], NULL);
        double el = bench_now_s() - t0;
        double cpu = (cpu_self_s() - cpu0) / el;
        double scpu = srv.pid ? (bench_proc_cpu_s(srv.pid) - scpu0) / el : -1;
        uint64_t reqs = 0, rows = 0, errs = 0;
        size_t nlat = 0;
        for (int t = 0; t < nthreads; t++) {
            reqs += ws[t].requests;
            rows += ws[t].rows_acked;
            errs += ws[t].errors;
            nlat += ws[t].nlat;
        }
        float *lat = malloc((nlat ? nlat : 1) * sizeof *lat);
        size_t k = 0;
        for (int t = 0; t < nthreads; t++) {
            memcpy(lat + k, ws[t].lat, ws[t].nlat * sizeof *lat);
            k += ws[t].nlat;
            if (ws[t].first_error[0])
                appendf(errors_text, sizeof errors_text, &etl, "  %s, first error (thread %d): %s\n", label, t,
                        ws[t].first_error);
        }
        qsort(lat, nlat, sizeof *lat, cmp_float);
        double rps = (double)reqs / el;
        if (!ph.rows)
            health_rps = rps;
        char ratio[32] = "", scpu_s[32] = "n/a";
        if (ph.rows && health_rps > 0)
            snprintf(ratio, sizeof ratio, "%.3f", rps / health_rps);
        if (scpu >= 0)
            snprintf(scpu_s, sizeof scpu_s, "%.2f cores", scpu);
        printf("| %s | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %" PRIu64 " | %s | %.2f cores | %s |\n", label, rps,
               (double)rows / el, pct(lat, nlat, 0.50), pct(lat, nlat, 0.90), pct(lat, nlat, 0.99),
               nlat ? lat[nlat - 1] : 0.0, errs, ratio, cpu, scpu_s);
        fflush(stdout);
        free(lat);
        if (!ph.rows)
            continue;

        /* Requests/s in each 5 s: today's main slows down as the table's segments grow. */
        appendf(checks, sizeof checks, &ckl, "%s: requests/s in each 5 s:", label);
        for (int b = 0; b * 5 < seconds && b < 255; b++) {
            uint64_t n = 0;
            for (int t = 0; t < nthreads; t++)
                n += ws[t].per_5s[b];
            double span = (b + 1) * 5 <= seconds ? 5 : seconds - b * 5;
            appendf(checks, sizeof checks, &ckl, " %.0f", (double)n / span);
        }
        appendf(checks, sizeof checks, &ckl, "\n");

        /* The phase's table: count(*) against the acknowledged rows, and its segments. */
        uint64_t rows_after = count_rows(&srv, &cfd, tname);
        uint64_t in_table = rows_after == UINT64_MAX ? 0 : rows_after - rows_before;
        appendf(checks, sizeof checks, &ckl,
                "  %s: rows acknowledged (sum of \"ingested\") %" PRIu64 ", count(*)%s %" PRIu64 "%s\n", tname,
                rows, rows_before ? " minus before" : "", in_table, in_table == rows ? " (equal)" : "");
        if (in_table != rows || rows_after == UINT64_MAX) {
            appendf(checks, sizeof checks, &ckl, "  *** MISMATCH: %s holds %s rows than were acknowledged ***\n",
                    tname, in_table < rows ? "fewer" : "more");
            rc = 1;
        }
        char *ans = NULL;
        int st = bench_request(&srv, &cfd, "GET", path, NULL, 0, &ans);
        if (st == 200)
            appendf(checks, sizeof checks, &ckl,
                    "  segments (GET %s): %" PRIu64 " in %" PRIu64 " partition(s), memtable_rows %" PRIu64 "\n", path,
                    bench_json_u64(ans, "segments", 0), bench_json_u64(ans, "partitions", 0),
                    bench_json_u64(ans, "memtable_rows", 0));
        else
            appendf(checks, sizeof checks, &ckl, "  segments: GET %s answered %d\n", path, st);
        free(ans);
        if (srv.pid)
            appendf(checks, sizeof checks, &ckl,
                    "  server memory after the phase: VmRSS %.0f MiB (RssAnon %.0f), VmHWM %.0f MiB\n",
                    (double)bench_proc_kb(srv.pid, "VmRSS") / 1024, (double)bench_proc_kb(srv.pid, "RssAnon") / 1024,
                    (double)bench_proc_kb(srv.pid, "VmHWM") / 1024);
        int np, tot, mx;
        char mxname[256];
        if (srv.data[0] && bench_seg_files(srv.data, tname, &np, &tot, &mx, mxname, sizeof mxname) == 0)
            appendf(checks, sizeof checks, &ckl,
                    "  segments per partition (*.seg files in %s/%s/raw/<partition>/): max %d (%s), %d partition(s)\n",
                    srv.data, tname, mx, mxname, np);
        else
            appendf(checks, sizeof checks, &ckl,
                    "  segments per partition: the server reports totals only; pass --data DIR to count *.seg files\n");
    }
    if (errors_text[0])
        printf("\nerrors (non-2xx answers, short ingests, broken connections):\n%s", errors_text);
    printf("\n%s", checks);
    if (cfd >= 0)
        close(cfd);
    if (srv.pid) {
        int code = bench_server_stop(&srv);
        if (code != 0) {
            printf("the server exited %d after SIGTERM (log: %s)\n", code, srv.log_path);
            rc = 1;
        }
    }
    return rc;
}
