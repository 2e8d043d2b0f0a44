/*
 * bench_serve.h — what the HTTP load benchmarks (bench_small_writers, bench_under_load)
 * share: starting `strata serve` on a fresh data directory (port read from its log, the
 * rest of the log drained to a file so the server never blocks on a full pipe) or
 * targeting a running one by --url; a blocking keep-alive HTTP/1.1 client; an HTTP answer
 * parser that also serves non-blocking clients; the *.seg files per partition directory;
 * and a process's VmRSS / VmHWM / CPU time from /proc.
 *
 * Everything is static inline so each program stays one translation unit.
 */
#ifndef STRATA_BENCH_SERVE_H
#define STRATA_BENCH_SERVE_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct bench_server {
    char host[256];
    int port;
    pid_t pid;       /* the server this program started; 0 with --url */
    char data[1024]; /* its data directory when local ("" when unknown) */
    char log_path[1100];
    FILE *log_in;    /* the server's stderr, drained by a thread into log_path */
    pthread_t drain;
    bool draining;
} bench_server;

static inline void *bench_server_drain(void *arg)
{
    bench_server *s = arg;
    FILE *out = fopen(s->log_path, "a");
    char line[4096];
    while (fgets(line, sizeof line, s->log_in))
        if (out) {
            fputs(line, out);
            fflush(out);
        }
    if (out)
        fclose(out);
    return NULL;
}

/* Starts `strata serve --data DIR --listen 127.0.0.1:0` on DIR emptied first; its log goes
 * to DIR.log. Returns 0, or -1 with a message on stderr. */
/* Starts the server on dir: emptied first when fresh, else as it is (a restart). */
static inline int bench_server_spawn(bench_server *s, const char *strata, const char *dir, const char *who, bool fresh)
{
    memset(s, 0, sizeof *s);
    snprintf(s->data, sizeof s->data, "%s", dir);
    snprintf(s->log_path, sizeof s->log_path, "%s.log", dir);
    snprintf(s->host, sizeof s->host, "127.0.0.1");
    char cmd[2300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' && mkdir -p '%s'", dir, s->log_path, dir);
    if (fresh && system(cmd) != 0) {
        fprintf(stderr, "%s: cannot make %s\n", who, dir);
        return -1;
    }
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        close(pipefd[1]);
        execl(strata, strata, "serve", "--data", dir, "--listen", "127.0.0.1:0", (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    s->pid = pid;
    s->log_in = fdopen(pipefd[0], "r");
    FILE *out = fopen(s->log_path, fresh ? "w" : "a");
    char line[4096];
    while (fgets(line, sizeof line, s->log_in)) {
        if (out)
            fputs(line, out);
        char *p = strstr(line, "on http://127.0.0.1:");
        if (p) {
            s->port = atoi(p + strlen("on http://127.0.0.1:"));
            break;
        }
    }
    if (out)
        fclose(out);
    if (!s->port) {
        fprintf(stderr, "%s: the server did not start (its log: %s)\n", who, s->log_path);
        return -1;
    }
    s->draining = pthread_create(&s->drain, NULL, bench_server_drain, s) == 0;
    return 0;
}

static inline int bench_server_start(bench_server *s, const char *strata, const char *dir, const char *who)
{
    return bench_server_spawn(s, strata, dir, who, true);
}

/* --url http://host:port[/]: a server already running. Returns 0, or -1. */
static inline int bench_server_url(bench_server *s, const char *url)
{
    memset(s, 0, sizeof *s);
    const char *p = strncmp(url, "http://", 7) == 0 ? url + 7 : url;
    const char *colon = strrchr(p, ':');
    if (!colon || colon == p || (size_t)(colon - p) >= sizeof s->host)
        return -1;
    memcpy(s->host, p, (size_t)(colon - p));
    s->host[colon - p] = 0;
    s->port = atoi(colon + 1);
    return s->port > 0 && s->port < 65536 ? 0 : -1;
}

/* SIGTERM (the server flushes and exits), then waits for it. Returns its exit status. */
static inline int bench_server_stop(bench_server *s)
{
    if (!s->pid)
        return 0;
    kill(s->pid, SIGTERM);
    int st = 0;
    waitpid(s->pid, &st, 0);
    s->pid = 0;
    if (s->draining)
        pthread_join(s->drain, NULL);
    if (s->log_in)
        fclose(s->log_in);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A TCP connection to the server with TCP_NODELAY and a 300 s receive timeout; -1 on
 * failure. */
static inline int bench_connect(const bench_server *s)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", s->port);
    if (getaddrinfo(s->host, port, &hints, &ai) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct timeval tv = {.tv_sec = 300}; /* a blocking client gives up on a hung server */
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    return fd;
}

/* An HTTP/1.1 answer in buf[0..len): returns its whole length once complete, 0 while more
 * is needed, -1 when it is not HTTP. Sets *status, and the body's place: with
 * Content-Length the body is buf[*body_off .. *body_off + *body_len); a chunked body is
 * left encoded there (bench_http_body decodes it). */
static inline long bench_http_parse(const char *buf, size_t len, int *status, size_t *body_off,
                             size_t *body_len, bool *chunked)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end)
        return len > 65536 ? -1 : 0;
    if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0)
        return -1;
    *status = atoi(buf + 9);
    size_t hdr = (size_t)(end - buf) + 4;
    *body_off = hdr;
    *chunked = false;
    long clen = 0;
    for (const char *l = memchr(buf, '\n', hdr); l && l < end; l = memchr(l, '\n', (size_t)(end - l))) {
        l++;
        if (strncasecmp(l, "Content-Length:", 15) == 0)
            clen = strtol(l + 15, NULL, 10);
        else if (strncasecmp(l, "Transfer-Encoding:", 18) == 0 && strncasecmp(l + 18, " chunked", 8) == 0)
            *chunked = true;
    }
    if (!*chunked) {
        if (len < hdr + (size_t)clen)
            return 0;
        *body_len = (size_t)clen;
        return (long)(hdr + (size_t)clen);
    }
    size_t p = hdr;
    for (;;) {
        const char *eol = memmem(buf + p, len - p, "\r\n", 2);
        if (!eol)
            return 0;
        size_t n = strtoul(buf + p, NULL, 16);
        p = (size_t)(eol - buf) + 2;
        if (n == 0) {
            const char *fin = memmem(buf + p - 2, len - (p - 2), "\r\n\r\n", 4);
            if (!fin)
                return 0;
            *body_len = (size_t)(fin - buf) - hdr;
            return (long)((size_t)(fin - buf) + 4);
        }
        if (len < p + n + 2)
            return 0;
        p += n + 2;
    }
}

/* The body as a NUL-terminated malloc'd string (chunks joined). */
static inline char *bench_http_body(const char *buf, size_t off, size_t blen, bool chunked)
{
    char *out = malloc(blen + 1);
    if (!chunked) {
        memcpy(out, buf + off, blen);
        out[blen] = 0;
        return out;
    }
    size_t p = off, o = 0, end = off + blen;
    while (p < end) {
        size_t n = strtoul(buf + p, NULL, 16);
        const char *eol = memmem(buf + p, end - p, "\r\n", 2);
        if (!eol || n == 0)
            break;
        p = (size_t)(eol - buf) + 2;
        memcpy(out + o, buf + p, n);
        o += n;
        p += n + 2;
    }
    out[o] = 0;
    return out;
}

/* One request on the keep-alive connection *fd (connected when -1; on a broken connection
 * it reconnects and tries once more). Returns the status and the body in *out (malloc'd,
 * when out), or -1 when the server cannot be reached. */
static inline int bench_request(const bench_server *s, int *fd, const char *method, const char *path,
                         const char *body, size_t len, char **out)
{
    if (out)
        *out = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (*fd < 0 && (*fd = bench_connect(s)) < 0)
            return -1;
        char head[600];
        int hn = snprintf(head, sizeof head,
                          "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\n\r\n",
                          method, path, s->host, len);
        bool ok = true;
        const char *parts[2] = {head, body};
        size_t lens[2] = {(size_t)hn, len};
        for (int k = 0; k < 2 && ok; k++)
            for (size_t w = 0; w < lens[k];) {
                ssize_t r = send(*fd, parts[k] + w, lens[k] - w, MSG_NOSIGNAL);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r <= 0) {
                    ok = false;
                    break;
                }
                w += (size_t)r;
            }
        size_t cap = 16384, got = 0;
        char *buf = malloc(cap);
        long total = 0;
        int status = 0;
        size_t boff = 0, blen = 0;
        bool chunked = false;
        while (ok) {
            if (got == cap)
                buf = realloc(buf, cap *= 2);
            ssize_t r = recv(*fd, buf + got, cap - got, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                ok = false;
                break;
            }
            got += (size_t)r;
            total = bench_http_parse(buf, got, &status, &boff, &blen, &chunked);
            if (total != 0)
                break;
        }
        if (ok && total > 0) {
            if (out)
                *out = bench_http_body(buf, boff, blen, chunked);
            free(buf);
            return status;
        }
        free(buf);
        close(*fd);
        *fd = -1;
        if (total < 0)
            return -1;
    }
    return -1;
}

/* The unsigned integer after "key": in a JSON text, or def when absent. */
static inline uint64_t bench_json_u64(const char *json, const char *key, uint64_t def)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = json ? strstr(json, pat) : NULL;
    if (!p)
        return def;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    return strtoull(p, NULL, 10);
}

/* *.seg files in each partition directory DATA/TABLE/raw/<partition>/: the number of
 * partitions, the total and the largest count (its partition's name in max_name). Without
 * merges every file there is a live segment (recovery deletes the ones no manifest lists).
 * Returns -1 when the directory cannot be read. */
static inline int bench_seg_files(const char *data, const char *table, int *partitions, int *total,
                           int *max, char *max_name, size_t max_name_cap)
{
    char raw[1400];
    snprintf(raw, sizeof raw, "%s/%s/raw", data, table);
    *partitions = *total = *max = 0;
    if (max_name_cap)
        max_name[0] = 0;
    DIR *d = opendir(raw);
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char part[1700];
        snprintf(part, sizeof part, "%s/%s", raw, e->d_name);
        DIR *pd = opendir(part);
        if (!pd)
            continue;
        int n = 0;
        struct dirent *f;
        while ((f = readdir(pd)) != NULL) {
            size_t l = strlen(f->d_name);
            if (l > 4 && strcmp(f->d_name + l - 4, ".seg") == 0)
                n++;
        }
        closedir(pd);
        (*partitions)++;
        *total += n;
        if (n > *max || (max_name_cap && !max_name[0])) {
            if (n > *max)
                *max = n;
            if (max_name_cap)
                snprintf(max_name, max_name_cap, "%s", e->d_name);
        }
    }
    closedir(d);
    return 0;
}

/* A field of /proc/PID/status in KiB (VmRSS, VmHWM, RssAnon), or -1. */
static inline long bench_proc_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            kb = strtol(line + fl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* User + system CPU seconds of process PID so far (from /proc/PID/stat), or -1. */
static inline double bench_proc_cpu_s(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p)
        return -1;
    unsigned long ut = 0, st = 0;
    /* after ") ": state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

#endif
