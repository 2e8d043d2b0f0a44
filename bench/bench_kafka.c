/*
 * bench_kafka.c — the Kafka ingestion benchmark of issue 4, against the real `strata serve`
 * and a bare librdkafka consumer on the same embedded broker, in one run.
 *
 *   (1) preloaded: N reference order events are produced to topic "pre" first; then a bare
 *       librdkafka consumer (rd_kafka_consume_batch_queue, no decoding, no storage) reads
 *       them all, and then `strata serve` with a table consuming "pre" lands them all.
 *       Rates are events / (last - first message seen), the ratio strata / bare.
 *   (2) sustained: for each rate R (--rates), a fresh topic is fed at R events/s for
 *       --seconds by a paced producer in this process, once consumed by strata (a table
 *       made with PUT) and once by the bare consumer. A consumer keeps up when everything
 *       has landed within 1 s of the producer's end (lag bounded); the highest such R is
 *       reported for both, then strata is run --final-seconds (60) at its best rate.
 *   (3) latency at --latency-rate events/s: events carry their send time as ts; a query
 *       of max(ts) every 10 ms gives "now - newest queryable event"; p50 and p99.
 *
 * usage: bench_kafka STRATA_BINARY [--events N] [--partitions N] [--rates R,R,...]
 *                    [--seconds S] [--final-seconds S] [--latency-rate R] [--data DIR]
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "tools/broker.h"
#include "tools/gen_producer.h"
#include "tools/order_gen.h"

static int port;
static const char *broker_addr;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One HTTP request on a fresh connection; returns the status, the body in *out (malloc). */
static int http(const char *method, const char *path, const char *body, char **out)
{
    *out = NULL;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    size_t blen = body ? strlen(body) : 0;
    char head[512];
    int hl = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n",
                      method, path, blen);
    if (write(fd, head, (size_t)hl) != hl || (blen && write(fd, body, blen) != (ssize_t)blen)) {
        close(fd);
        return -1;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    ssize_t n;
    while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (len + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    close(fd);
    buf[len] = 0;
    int status = 0;
    sscanf(buf, "HTTP/1.%*d %d", &status);
    char *b = strstr(buf, "\r\n\r\n");
    *out = strdup(b ? b + 4 : "");
    free(buf);
    return status;
}

/* A counter or gauge from /metrics for table (first label), or -1. */
static int64_t metric(const char *name, const char *table)
{
    char *m;
    if (http("GET", "/metrics", NULL, &m) != 200) {
        free(m);
        return -1;
    }
    char pat[256];
    snprintf(pat, sizeof pat, "%s{table=\"%s\"", name, table);
    char *p = strstr(m, pat);
    int64_t v = -1;
    if (p && (p = strchr(p, '}')) != NULL)
        v = strtoll(p + 1, NULL, 10);
    free(m);
    return v;
}

static const char *SCHEMA_COLS =
    "\"columns\":[{\"name\":\"ts\",\"type\":\"timestamp\"},{\"name\":\"event_id\",\"type\":\"uint64\"},"
    "{\"name\":\"user_id\",\"type\":\"uint64\"},{\"name\":\"country\",\"type\":\"string\"},"
    "{\"name\":\"category\",\"type\":\"string\"},{\"name\":\"status\",\"type\":\"string\"},"
    "{\"name\":\"device\",\"type\":\"string\"},{\"name\":\"amount\",\"type\":\"float64\"},"
    "{\"name\":\"quantity\",\"type\":\"int32\"},{\"name\":\"version\",\"type\":\"uint64\"}],"
    "\"time_column\":\"ts\"";

static int create_table(const char *name, const char *topic)
{
    char body[2048], path[128], *ans;
    snprintf(body, sizeof body,
             "{%s,\"storage\":{\"memtable_age\":\"1s\"},\"kafka\":{\"topic\":\"%s\",\"brokers\":\"%s\","
             "\"properties\":{\"session.timeout.ms\":\"6000\"}}}",
             SCHEMA_COLS, topic, broker_addr);
    snprintf(path, sizeof path, "/tables/%s", name);
    int st = http("PUT", path, body, &ans);
    if (st != 201)
        fprintf(stderr, "bench_kafka: create %s: %d %s\n", name, st, ans);
    free(ans);
    return st == 201 ? 0 : -1;
}

/* ---- producing ------------------------------------------------------------------------ */

typedef struct feeder {
    const char *topic;
    uint64_t count;
    double rate; /* 0: flat out */
    bool live;   /* ts = send time */
    uint64_t seed;
    double t0, t1; /* start and end of sending */
    uint64_t events;
    int rc;
} feeder;

static void *feed(void *arg)
{
    feeder *f = arg;
    strata_err err = {0};
    order_gen_opts go;
    order_gen_opts_default(&go);
    go.seed = f->seed;
    go.count = f->count;
    if (f->live) {
        go.start_ms = wall_ms();
        go.span_ms = (int64_t)((double)f->count * 1000.0 / f->rate);
    }
    order_gen *g = order_gen_create(&go, &err);
    gen_producer_opts po = {.brokers = broker_addr, .topic = f->topic, .linger_ms = 5, .quiet = true};
    gen_producer *p = g ? gen_producer_open(&po, &err) : NULL;
    if (!p) {
        fprintf(stderr, "bench_kafka: producer: %s\n", err.msg);
        f->rc = 1;
        order_gen_free(g);
        return NULL;
    }
    gen_stream_opts so = {.producer = p, .rate = f->rate};
    f->t0 = bench_now_s();
    f->rc = gen_stream_run(g, &so, NULL, &err);
    if (!f->rc)
        f->rc = gen_producer_flush(p, &err);
    f->t1 = bench_now_s();
    if (f->rc)
        fprintf(stderr, "bench_kafka: producing to %s: %s\n", f->topic, err.msg);
    f->events = order_gen_get_totals(g)->events;
    gen_producer_close(p);
    order_gen_free(g);
    return NULL;
}

/* ---- the bare consumer ---------------------------------------------------------------- */

typedef struct bare {
    const char *topic;
    uint64_t want;
    double first, last;
    uint64_t got;
    atomic_int stop;
} bare;

static void *bare_consume(void *arg)
{
    bare *b = arg;
    char errstr[512], group[64];
    snprintf(group, sizeof group, "bare-%s", b->topic);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", broker_addr, errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "queued.max.messages.kbytes", "65536", errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, b->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    rd_kafka_message_t **msgs = malloc(sizeof *msgs * 8192);
    while (b->got < b->want && !atomic_load(&b->stop)) {
        ssize_t n = rd_kafka_consume_batch_queue(q, 20, msgs, 8192);
        for (ssize_t i = 0; i < n; i++) {
            if (!msgs[i]->err) {
                if (!b->got)
                    b->first = bench_now_s();
                b->got++;
            }
            rd_kafka_message_destroy(msgs[i]);
        }
        if (n > 0)
            b->last = bench_now_s();
    }
    free(msgs);
    rd_kafka_queue_destroy(q);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return NULL;
}

/* CPU time of a server's threads by name (consumer "kafka:<table>", librdkafka's
 * "rdk:*", "MHD-worker", "merge", the serve loop "strata"), to say what the server
 * spent the drain on and how much of it it waited. */
#define MAX_THREAD_NAMES 16
typedef struct thread_cpu {
    int n;
    char name[MAX_THREAD_NAMES][20];
    double cpu_s[MAX_THREAD_NAMES];
} thread_cpu;

static void thread_cpu_take(pid_t pid, thread_cpu *tc)
{
    memset(tc, 0, sizeof *tc);
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    long hz = sysconf(_SC_CLK_TCK);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[400], buf[1024], comm[20] = "";
        snprintf(path, sizeof path, "%s/%s/stat", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        char *open = strchr(buf, '('), *close = strrchr(buf, ')');
        if (!open || !close || close - open - 1 >= (long)sizeof comm)
            continue;
        memcpy(comm, open + 1, (size_t)(close - open - 1));
        comm[close - open - 1] = 0;
        if (strncmp(comm, "rdk:", 4) == 0)
            comm[4] = 0; /* librdkafka's threads together */
        unsigned long ut = 0, st = 0;
        /* fields after ")": state ppid ... utime (14th of the line) stime (15th) */
        if (sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
            continue;
        int k = 0;
        while (k < tc->n && strcmp(tc->name[k], comm) != 0)
            k++;
        if (k == tc->n) {
            if (tc->n == MAX_THREAD_NAMES)
                continue;
            snprintf(tc->name[tc->n++], sizeof tc->name[0], "%s", comm);
        }
        tc->cpu_s[k] += (double)(ut + st) / (double)hz;
    }
    closedir(d);
}

/* Prints each name's share of one core over seconds (after minus before). */
static void thread_cpu_print(const thread_cpu *a, const thread_cpu *b, double seconds)
{
    double total = 0;
    printf("  strata serve's threads during the drain (share of one core):");
    for (int k = 0; k < b->n; k++) {
        double before = 0;
        for (int j = 0; j < a->n; j++)
            if (strcmp(a->name[j], b->name[k]) == 0)
                before = a->cpu_s[j];
        double used = (b->cpu_s[k] - before) / seconds;
        total += used;
        if (used >= 0.005)
            printf(" %s %.2f,", b->name[k], used);
    }
    printf(" all %.2f of 2 cores\n", total);
}

/* strata_land notes the server's thread CPU at the first row when land_pid is set. */
static pid_t land_pid;
static thread_cpu land_cpu;

/* Waits until table has want rows (from /metrics); returns the seconds from the first row
 * to the last (first/last filled), or -1 after timeout_s without progress. */
static double strata_land(const char *table, uint64_t want, double timeout_s, double *first, double *last)
{
    double t_prog = bench_now_s();
    int64_t prev = 0;
    *first = 0;
    for (;;) {
        int64_t rows = metric("strata_kafka_rows_total", table);
        double now = bench_now_s();
        if (rows > 0 && !*first) {
            *first = now;
            if (land_pid > 0)
                thread_cpu_take(land_pid, &land_cpu);
        }
        if (rows > prev) {
            prev = rows;
            t_prog = now;
            *last = now;
        }
        if (rows >= (int64_t)want)
            return *last - *first;
        if (now - t_prog > timeout_s)
            return -1;
        usleep(5000);
    }
}

int main(int argc, char **argv)
{
    if (bench_help(argc, argv,
                   "usage: bench_kafka STRATA_BINARY [--events N] [--partitions N] [--rates R,R,...] [--seconds S]\n"
        "                   [--final-seconds S] [--latency-rate R] [--data DIR]\n\n"
        "Kafka ingestion of STRATA_BINARY serve against a bare librdkafka consumer on one\n"
        "embedded broker: preloaded rate, sustained rates (--rates, empty for none) and event\n"
        "to queryable latency. See bench/README.md.\n"))
        return 0;
    static const struct option opts[] = {
        {"events", required_argument, 0, 'n'},  {"partitions", required_argument, 0, 'p'},
        {"rates", required_argument, 0, 'r'},   {"seconds", required_argument, 0, 's'},
        {"final-seconds", required_argument, 0, 'f'}, {"latency-rate", required_argument, 0, 'l'},
        {"data", required_argument, 0, 'd'},    {0, 0, 0, 0},
    };
    uint64_t events = 5000000;
    int partitions = 64;
    const char *rates = "100000,200000,300000,400000,600000";
    double seconds = 10, final_seconds = 60, latency_rate = 100000;
    const char *data = "/tmp/strata-bench-kafka";
    int ch;
    while ((ch = getopt_long(argc, argv, "n:p:r:s:f:l:d:", opts, NULL)) != -1) {
        switch (ch) {
        case 'n': events = strtoull(optarg, NULL, 10); break;
        case 'p': partitions = atoi(optarg); break;
        case 'r': rates = optarg; break;
        case 's': seconds = atof(optarg); break;
        case 'f': final_seconds = atof(optarg); break;
        case 'l': latency_rate = atof(optarg); break;
        case 'd': data = optarg; break;
        default: return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: bench_kafka STRATA_BINARY [--events N] [--partitions N] [--rates R,...]"
                        " [--seconds S] [--final-seconds S] [--latency-rate R] [--data DIR]\n");
        return 2;
    }
    const char *strata = argv[optind];
    strata_err err = {0};
    embedded_broker_opts bo;
    embedded_broker_opts_default(&bo);
    bo.partitions = partitions;
    const char *topics[] = {"pre", "live"};
    bo.topics = topics;
    bo.ntopics = 2;
    bo.quiet = true;
    embedded_broker *br = embedded_broker_start(&bo, &err);
    if (!br) {
        fprintf(stderr, "bench_kafka: broker: %s\n", err.msg);
        return 1;
    }
    broker_addr = embedded_broker_address(br);
    printf("bench_kafka: embedded broker %s, %d partitions a topic, 2 cores shared by everything\n",
           broker_addr, partitions);

    /* (1) preload, then bare, then strata. */
    feeder pf = {.topic = "pre", .count = events, .seed = 1};
    feed(&pf);
    if (pf.rc)
        return 1;
    printf("\n(1) %" PRIu64 " events produced beforehand (%.0f events/s flat out, zstd)\n", pf.events,
           (double)pf.events / (pf.t1 - pf.t0));
    bare bb = {.topic = "pre", .want = pf.events};
    bare_consume(&bb);
    double bare_rate = (double)bb.got / (bb.last - bb.first);
    printf("  bare librdkafka consumer (no decoding, no storage): %10.0f events/s\n", bare_rate);

    char cmd[8192];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", data, data);
    if (system(cmd) != 0)
        return 1;
    char schema_path[4200];
    snprintf(schema_path, sizeof schema_path, "%s.pre.json", data);
    FILE *f = fopen(schema_path, "w");
    fprintf(f, "{\"name\":\"pre\",%s,\"storage\":{\"memtable_age\":\"1s\"},\"kafka\":{\"topic\":\"pre\","
               "\"brokers\":\"%s\"}}\n", SCHEMA_COLS, broker_addr);
    fclose(f);
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        execl(strata, strata, "serve", "--data", data, "--listen", "127.0.0.1:0", "--table", schema_path,
              (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    FILE *log = fdopen(pipefd[0], "r");
    char line[2048];
    while (fgets(line, sizeof line, log)) {
        char *p = strstr(line, "on http://127.0.0.1:");
        if (p) {
            port = atoi(p + 20);
            break;
        }
    }
    if (!port) {
        fprintf(stderr, "bench_kafka: strata serve did not start\n");
        return 1;
    }
    /* Keep reading the log so the server never blocks on a full pipe. */
    if (fork() == 0) {
        FILE *out = fopen("/tmp/strata-bench-kafka.log", "w");
        while (fgets(line, sizeof line, log))
            if (out)
                fputs(line, out), fflush(out);
        _exit(0);
    }
    double first, last;
    thread_cpu cpu1;
    land_pid = pid;
    double took = strata_land("pre", pf.events, 30, &first, &last);
    thread_cpu_take(pid, &cpu1);
    land_pid = 0;
    double strata_rate = took > 0 ? (double)pf.events / took : 0;
    printf("  strata serve (decode, memtables, segments):        %10.0f events/s  (%.2f of bare)\n",
           strata_rate, strata_rate / bare_rate);
    thread_cpu_print(&land_cpu, &cpu1, bench_now_s() - first);

    /* (3) latency. */
    if (create_table("live", "live") != 0)
        return 1;
    sleep(4); /* the consumer joins its group */
    feeder lf = {.topic = "live", .count = (uint64_t)(latency_rate * 20), .rate = latency_rate, .live = true, .seed = 3};
    pthread_t lt;
    pthread_create(&lt, NULL, feed, &lf);
    static double lat[100000];
    size_t nlat = 0;
    double start = bench_now_s();
    while (bench_now_s() - start < 19 && nlat < 100000) {
        char *ans;
        int64_t now = wall_ms();
        int st = http("POST", "/query",
                      "{\"table\":\"live\",\"from\":\"now-1m\",\"select\":[{\"fn\":\"max\",\"column\":\"ts\"}]}", &ans);
        char *p = st == 200 ? strstr(ans, "\"rows\":[[") : NULL;
        if (p && bench_now_s() - start > 3 && p[9] != 'n') /* after the first 3 s */
            lat[nlat++] = (double)(now - strtoll(p + 9, NULL, 10));
        free(ans);
        usleep(10000);
    }
    pthread_join(lt, NULL);
    double p50 = 0, p99 = 0;
    if (nlat) {
        qsort(lat, nlat, sizeof *lat, bench_cmp_double);
        p50 = lat[nlat / 2];
        p99 = lat[(size_t)((double)nlat * 0.99)];
    }
    printf("\n(3) event to queryable at %.0f events/s (%zu samples of now - max(ts) over HTTP):\n"
           "  p50 %.0f ms, p99 %.0f ms\n", latency_rate, nlat, p50, p99);

    /* (2) sustained rates. */
    printf("\n(2) sustained: fed at R events/s for %.0f s; kept up = all landed within 1 s of the end\n", seconds);
    printf("  %10s  %12s  %22s  %22s\n", "R", "produced at", "strata (drain s)", "bare (drain s)");
    double best_strata = 0, best_bare = 0, best_asked = 0; /* rates actually produced */
    char list[256];
    snprintf(list, sizeof list, "%s", rates);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        double r = atof(tok);
        char topic[64], table[64];
        snprintf(topic, sizeof topic, "s%.0f", r);
        snprintf(table, sizeof table, "s%.0f", r);
        embedded_broker_create_topic(br, topic, partitions, &err);
        if (create_table(table, topic) != 0)
            return 1;
        sleep(4);
        feeder sf = {.topic = topic, .count = (uint64_t)(r * seconds), .rate = r, .seed = 9};
        feed(&sf);
        double drain_s = 1e9; /* from the producer's end to the last row landed */
        if (strata_land(table, sf.events, 10, &first, &last) >= 0 && first > 0)
            drain_s = last - sf.t1;
        /* the bare consumer on its own copy of the stream */
        snprintf(topic, sizeof topic, "b%.0f", r);
        embedded_broker_create_topic(br, topic, partitions, &err);
        bare b2 = {.topic = topic, .want = (uint64_t)(r * seconds)};
        pthread_t bt;
        pthread_create(&bt, NULL, bare_consume, &b2);
        sleep(4);
        feeder bf = {.topic = topic, .count = (uint64_t)(r * seconds), .rate = r, .seed = 9};
        feed(&bf);
        double wait_until = bench_now_s() + 10;
        while (b2.got < b2.want && bench_now_s() < wait_until)
            usleep(10000);
        atomic_store(&b2.stop, 1);
        pthread_join(bt, NULL);
        double bare_drain = b2.got >= b2.want ? b2.last - bf.t1 : 1e9;
        bool ok_s = drain_s <= 1.0, ok_b = bare_drain <= 1.0;
        printf("  %10.0f  %12.0f  %14s (%5.2f)  %14s (%5.2f)\n", r, (double)sf.events / (sf.t1 - sf.t0),
               ok_s ? "kept up" : "fell behind",
               drain_s < 1e9 ? drain_s : -1, ok_b ? "kept up" : "fell behind", bare_drain < 1e9 ? bare_drain : -1);
        fflush(stdout);
        double got_s = (double)sf.events / (sf.t1 - sf.t0), got_b = (double)bf.events / (bf.t1 - bf.t0);
        if (ok_s && got_s > best_strata) {
            best_strata = got_s;
            best_asked = r;
        }
        if (ok_b && got_b > best_bare)
            best_bare = got_b;
        char path[128], *ans;
        snprintf(path, sizeof path, "/tables/%s", table);
        http("DELETE", path, NULL, &ans);
        free(ans);
    }
    printf("  highest produced rate kept up: strata %.0f, bare %.0f events/s (ratio %.2f)\n", best_strata,
           best_bare, best_bare > 0 ? best_strata / best_bare : 0);
    if (best_strata > 0 && final_seconds > 0) {
        embedded_broker_create_topic(br, "final", partitions, &err);
        create_table("final", "final");
        sleep(4);
        feeder ff = {.topic = "final", .count = (uint64_t)(best_strata * final_seconds), .rate = best_asked, .seed = 11};
        feed(&ff);
        double drain_s = 1e9;
        if (strata_land("final", ff.events, 10, &first, &last) >= 0)
            drain_s = last - ff.t1;
        printf("  strata fed at %.0f events/s (asked %.0f) for %.0f s: %s (last row landed %.2f s after "
               "the producer's end)\n",
               (double)ff.events / (ff.t1 - ff.t0), best_asked, (ff.t1 - ff.t0),
               drain_s <= 1 ? "kept up" : "fell behind", drain_s < 1e9 ? drain_s : -1);
    }
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    embedded_broker_stop(br);
    return 0;
}
