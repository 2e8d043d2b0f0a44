/*
 * bench_http.c — the HTTP benchmark of issue 3, against the real `strata serve`.
 *
 * Starts `STRATA serve --data DIR --listen 127.0.0.1:0` (reads the port from its log),
 * creates the orders table with PUT, generates the reference order events with order_gen
 * as NDJSON bodies of --batch rows in memory first (as a loader sending files has them;
 * generation alone is reported too), POSTs them to /ingest over --connections keep-alive
 * connections (default 4) and reports rows/s from the first request to the last answer,
 * then runs queries Q1..Q7 over HTTP: one warm-up, then the median of 5.
 * Stops the server with SIGTERM at the end.
 *
 * usage: bench_http STRATA_BINARY [--rows N] [--batch N] [--data DIR]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "tools/order_gen.h"
#include "engine/schema_json.h"

static int conn_fd = -1;
static int port;

static int connect_server(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("connect");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            perror("write");
            exit(1);
        }
        p += w;
        n -= (size_t)w;
    }
}

/* One request on the keep-alive connection *fd (opened when -1); returns the status and
 * the body (malloc'd). */
static int http_on(int *fd, const char *method, const char *path, const char *body, size_t len,
                   char **out)
{
    if (*fd < 0)
        *fd = connect_server();
    int cfd = *fd;
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      method, path, len);
    write_all(cfd, head, (size_t)hn);
    if (len)
        write_all(cfd, body, len);
    size_t cap = 65536, got = 0;
    char *buf = malloc(cap + 1);
    long clen = -1;
    size_t hdr_end = 0;
    for (;;) {
        if (got == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        ssize_t r = read(cfd, buf + got, cap - got);
        if (r <= 0) {
            fprintf(stderr, "bench_http: connection closed\n");
            exit(1);
        }
        got += (size_t)r;
        buf[got] = 0;
        if (!hdr_end) {
            char *e = strstr(buf, "\r\n\r\n");
            if (!e)
                continue;
            hdr_end = (size_t)(e - buf) + 4;
            char *cl = strcasestr(buf, "Content-Length:");
            clen = cl ? strtol(cl + 15, NULL, 10) : 0;
        }
        if (hdr_end && got >= hdr_end + (size_t)clen)
            break;
    }
    int status = atoi(buf + 9);
    if (out) {
        *out = strndup(buf + hdr_end, (size_t)clen);
    }
    free(buf);
    return status;
}

static int http(const char *method, const char *path, const char *body, size_t len, char **out)
{
    return http_on(&conn_fd, method, path, body, len, out);
}

/* Ingest senders: each thread takes the next pre-generated body and POSTs it on its own
 * keep-alive connection. */
typedef struct sender {
    char **bodies;
    size_t *lens;
    uint64_t nbodies;
    _Atomic uint64_t *next;
    uint64_t acked;
    int failed;
} sender;

static void *send_bodies(void *arg)
{
    sender *sd = arg;
    int fd = -1;
    for (;;) {
        uint64_t i = atomic_fetch_add(sd->next, 1);
        if (i >= sd->nbodies)
            break;
        char *ans = NULL;
        if (http_on(&fd, "POST", "/ingest/orders", sd->bodies[i], sd->lens[i], &ans) != 200) {
            fprintf(stderr, "bench_http: ingest failed: %s\n", ans);
            sd->failed = 1;
            free(ans);
            break;
        }
        char *p = strstr(ans, "\"ingested\":");
        sd->acked += p ? strtoull(p + 11, NULL, 10) : 0;
        free(ans);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

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

int main(int argc, char **argv)
{
    if (bench_help(argc, argv,
                   "usage: bench_http STRATA_BINARY [--rows N] [--batch N] [--connections N] [--data DIR]\n\n"
        "Starts STRATA_BINARY serve, sends N reference order events (default 10000000) as\n"
        "NDJSON requests of --batch rows (default 100000) over --connections keep-alive\n"
        "connections (default 4), then times the queries Q1-Q7 (median of 5). See bench/README.md.\n"))
        return 0;
    uint64_t rows = 10000000, batch = 100000;
    int connections = 4;
    const char *data = NULL;
    static const struct option opts[] = {{"rows", required_argument, 0, 'r'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"data", required_argument, 0, 'd'},
                                         {"connections", required_argument, 0, 'c'},
                                         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "r:b:d:c:", opts, NULL)) != -1) {
        switch (ch) {
        case 'r': rows = strtoull(optarg, NULL, 10); break;
        case 'b': batch = strtoull(optarg, NULL, 10); break;
        case 'c': connections = atoi(optarg) > 0 && atoi(optarg) <= 16 ? atoi(optarg) : 2; break;
        case 'd': data = optarg; break;
        default: fprintf(stderr, "usage: bench_http STRATA [--rows N] [--batch N] [--data DIR]\n"); return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: bench_http STRATA [--rows N] [--batch N] [--data DIR]\n");
        return 2;
    }
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", data ? data : "/tmp/strata-bench-http");
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0)
        return 1;

    /* Start the server and read its port from the log line. */
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        execl(argv[optind], argv[optind], "serve", "--data", dir, "--listen", "127.0.0.1:0",
              (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    FILE *log = fdopen(pipefd[0], "r");
    char line[1024];
    while (fgets(line, sizeof line, log)) {
        char *p = strstr(line, "on http://127.0.0.1:");
        if (p) {
            port = atoi(p + strlen("on http://127.0.0.1:"));
            break;
        }
    }
    if (!port) {
        fprintf(stderr, "bench_http: the server did not start\n");
        return 1;
    }

    strata_schema s;
    order_gen_schema(&s);
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
    order_gen_opts o;
    order_gen_opts_default(&o);
    o.count = rows;
    strata_err err = {0};
    uint64_t nbodies = (rows + batch - 1) / batch;
    char **bodies = calloc(nbodies, sizeof *bodies);
    size_t *lens = calloc(nbodies, sizeof *lens);
    order_gen *g = order_gen_create(&o, &err);
    double t0 = bench_now_s();
    order_gen_msg msg;
    uint64_t sent = 0;
    for (uint64_t b = 0; b < nbodies; b++) {
        size_t cap = batch * 260 + ORDER_GEN_JSON_MAX, len = 0;
        char *body = bodies[b] = malloc(cap);
        uint64_t k = 0;
        while (k < batch && len + ORDER_GEN_JSON_MAX < cap &&
               order_gen_next_json(g, body + len, ORDER_GEN_JSON_MAX, &msg) == 1) {
            len += msg.len;
            body[len++] = '\n';
            k++;
        }
        lens[b] = len;
        sent += k;
    }
    double gen_s = bench_now_s() - t0;
    order_gen_free(g);

    _Atomic uint64_t next = 0;
    sender sd[16];
    pthread_t th[16];
    t0 = bench_now_s();
    for (int i = 0; i < connections; i++) {
        sd[i] = (sender){bodies, lens, nbodies, &next, 0, 0};
        pthread_create(&th[i], NULL, send_bodies, &sd[i]);
    }
    uint64_t acked = 0;
    for (int i = 0; i < connections; i++) {
        pthread_join(th[i], NULL);
        acked += sd[i].acked;
        if (sd[i].failed)
            return 1;
    }
    double ingest_s = bench_now_s() - t0;
    for (uint64_t b = 0; b < nbodies; b++)
        free(bodies[b]);
    free(bodies);
    free(lens);
    if (acked != sent) {
        fprintf(stderr, "bench_http: %" PRIu64 " rows sent, %" PRIu64 " acknowledged\n", sent, acked);
        return 1;
    }
    printf("bench_http: %" PRIu64 " reference order events through POST /ingest (%" PRIu64
           " rows a request, %d connections)\n",
           acked, batch, connections);
    printf("  ingest over HTTP, durable before each answer: %.2f M rows/s (%.1f s)\n",
           (double)acked / ingest_s / 1e6, ingest_s);
    printf("  NDJSON generation alone (same process):      %.2f M rows/s\n", (double)rows / gen_s / 1e6);

    /* The data span 2024-01-01 .. 2024-01-08 (7 days). */
    const char *qs[7][2] = {
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
    };
    printf("\nqueries over HTTP (median of 5 after a warm-up, ms):\n");
    for (int i = 0; i < 7; i++) {
        char *a = NULL;
        query_ms(qs[i][1], &a); /* warm-up; keep the answer for a sanity line */
        double t[5];
        for (int r = 0; r < 5; r++) {
            char *x = NULL;
            t[r] = query_ms(qs[i][1], &x);
            free(x);
        }
        char *rows_at = strstr(a, "\"rows_read\":");
        printf("  %-48s %9.1f   (rows_read %" PRIu64 ")\n", qs[i][0], bench_median(t, 5),
               rows_at ? (uint64_t)strtoull(rows_at + 12, NULL, 10) : 0);
        if (i == 0)
            printf("      answer: %.120s\n", a);
        free(a);
    }
    close(conn_fd);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    return 0;
}
