/*
 * crash_sourced.c — crash test of exactly-once sourced appends (the Kafka landing path).
 *
 * `crash_sourced DIR KILLS SEED`: one stream of two source partitions ("kafka:orders"
 * partitions 0 and 1, OFFSETS offsets each) is landed by a sequence of children (this
 * program with "child"). Each child opens the table in DIR, asks table_source_resume
 * where each source partition stands, and goes on from there exactly as a Kafka consumer
 * would: batches of 1..4000 offsets from one partition at a time, some offsets being dead
 * letters (no row, but the position moves past them), rows spread over three day
 * partitions so a batch splits across memtables, memtables small enough to be sealed in
 * the middle of a batch, and flushes of what is due (some partitions flushed, others
 * not) every few batches. Each child reports through a pipe, after every append, how far
 * it has appended in each source partition and how many replayed rows the table dropped
 * as already committed.
 *
 * The parent SIGKILLs the first KILLS children after a random delay (20–420 ms, or once
 * 90 % of the stream is appended, whichever comes first) and requires that each was still
 * running then and died of that SIGKILL (a child that finished, failed or crashed by
 * itself is a failure, not a kill). Before the next child
 * recovers, it reads what the kill left on disk, without recovering: the manifests' resume
 * and per-partition committed offsets, MANIFEST.tmp and unlisted segments. It classifies
 * each kill: rows appended but not yet committed (they live only in memtables and must be
 * replayed), inside a flush (a MANIFEST.tmp or unlisted segment was left), a time
 * partition committed past the resume point (the replay must drop rows it already holds).
 * At least one kill must have caught rows in memtables, and when a kill left a time
 * partition ahead of the resume point, the children's replays must have dropped rows.
 * Then one child finishes the stream and flushes, and the table must hold every row of
 * the stream exactly once: no offset missing, none twice.
 * Prints "N passed, M failed" and exits non-zero on failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crash_disk.h"
#include "crash_child.h"
#include "engine/table.h"

#define OFFSETS 1000000
#define DAY0 INT64_C(1704067200000)
#define SOURCE "kafka:orders"

static void make_schema(strata_schema *s)
{
    schema_init(s);
    snprintf(s->name, sizeof s->name, "sourced");
    const char *names[] = {"ts", "id", "kind"};
    strata_type types[] = {STRATA_TIMESTAMP, STRATA_INT64, STRATA_STRING};
    for (int i = 0; i < 3; i++) {
        snprintf(s->cols[i].name, sizeof s->cols[i].name, "%s", names[i]);
        s->cols[i].type = types[i];
    }
    s->ncols = 3;
    s->time_col = 0;
    s->memtable_max_rows = 5000; /* sealed mid-batch */
    s->memtable_max_age_ms = 3600000;
    schema_apply_default_order(s);
}

static bool dead_letter(int kp, int64_t o)
{
    return crash_mix((uint64_t)o * 2 + (uint64_t)kp) % 23 == 0;
}

static int64_t row_id(int kp, int64_t o)
{
    return (int64_t)kp * OFFSETS + o;
}

/* What a child reports after each append: positions appended through, rows dropped. */
typedef struct progress {
    int64_t pos[2];
    uint64_t skipped;
} progress;

static int child(const char *dir, uint64_t seed, int report_fd)
{
    strata_schema s;
    make_schema(&s);
    strata_err err = {0};
    strata_table *t;
    if (table_open(dir, &s, &t, &err) != 0) {
        fprintf(stderr, "child: open: %s\n", err.msg);
        return 1;
    }
    int64_t pos[2];
    for (int kp = 0; kp < 2; kp++) {
        pos[kp] = table_source_resume(t, SOURCE, kp);
        if (pos[kp] < 0)
            pos[kp] = 0;
    }
    row_batch b;
    int64_t *offs = malloc(sizeof *offs * 4000);
    if (!offs || row_batch_init(&b, table_schema(t), 4000) != 0)
        return 1;
    static const char *kinds[] = {"click", "view", "order"};
    uint64_t skipped = 0;
    for (uint64_t n = 0; pos[0] < OFFSETS || pos[1] < OFFSETS; n++) {
        seed = crash_mix(seed + n);
        int kp = pos[0] >= OFFSETS ? 1 : pos[1] >= OFFSETS ? 0 : (int)(seed & 1);
        int64_t size = 1 + (int64_t)((seed >> 8) % 4000);
        if (pos[kp] + size > OFFSETS)
            size = OFFSETS - pos[kp];
        row_batch_clear(&b);
        uint32_t m = 0;
        for (int64_t o = pos[kp]; o < pos[kp] + size; o++) {
            if (dead_letter(kp, o))
                continue;
            int64_t id = row_id(kp, o);
            int64_t r = row_batch_add_row(&b);
            b.i[0][r] = DAY0 + (int64_t)(crash_mix((uint64_t)id) % 3) * 86400000 + o % 86400000;
            b.i[1][r] = id;
            row_batch_set_str(&b, 2, (uint32_t)r, kinds[id % 3], (uint32_t)strlen(kinds[id % 3]));
            offs[m++] = o;
        }
        int rc = table_append_sourced(t, &b, SOURCE, kp, offs, pos[kp] + size, &skipped, &err);
        if (rc == STRATA_EFULL) {
            if (table_flush(t, true, &err) != 0) {
                fprintf(stderr, "child: flush: %s\n", err.msg);
                return 1;
            }
            continue; /* the same batch again */
        }
        if (rc) {
            fprintf(stderr, "child: append: %s\n", err.msg);
            return 1;
        }
        pos[kp] += size;
        progress pr = {{pos[0], pos[1]}, skipped};
        if (write(report_fd, &pr, sizeof pr) != (ssize_t)sizeof pr) {
            fprintf(stderr, "child: report: %s\n", strerror(errno));
            return 1;
        }
        if (n % 5 == 4 && table_flush(t, (seed >> 20) % 4 == 0, &err) != 0) {
            fprintf(stderr, "child: flush: %s\n", err.msg);
            return 1;
        }
    }
    if (table_flush(t, true, &err) != 0) {
        fprintf(stderr, "child: final flush: %s\n", err.msg);
        return 1;
    }
    row_batch_free(&b);
    free(offs);
    table_close(t);
    return 0;
}

/* Every id of the stream exactly once; returns the number of problems found. */
static int verify(const char *dir)
{
    strata_schema s;
    make_schema(&s);
    strata_err err = {0};
    strata_table *t;
    if (table_open(dir, &s, &t, &err) != 0) {
        fprintf(stderr, "verify: open: %s\n", err.msg);
        return 1;
    }
    uint8_t *seen = calloc(2 * OFFSETS, 1);
    int64_t *ids = malloc(sizeof *ids * 65536);
    segment_scratch sc = {0};
    int bad = 0;
    table_snapshot *snap = table_snapshot_acquire(t, INT64_MIN, INT64_MAX);
    for (uint32_t p = 0; snap && p < snap->nparts && !bad; p++) {
        if (snap->parts[p].nmts)
            bad += fprintf(stderr, "verify: memtables after a full flush\n") > 0;
        for (uint32_t i = 0; i < snap->parts[p].nsegs; i++) {
            const segment *seg = snap->parts[p].segs[i];
            for (uint32_t g = 0; g < segment_ngranules(seg); g++) {
                if (segment_read_ints(seg, 1, g, ids, &sc, &err) != 0) {
                    fprintf(stderr, "verify: %s\n", err.msg);
                    bad++;
                    break;
                }
                for (uint32_t r = 0; r < segment_granule_nrows(seg, g); r++) {
                    int64_t id = ids[r];
                    if (id < 0 || id >= 2 * OFFSETS || seen[id]++) {
                        if (bad++ < 5)
                            fprintf(stderr, "verify: id %" PRId64 " twice (or out of range)\n", id);
                    }
                }
            }
        }
    }
    for (int kp = 0; kp < 2; kp++)
        for (int64_t o = 0; o < OFFSETS; o++) {
            bool want = !dead_letter(kp, o);
            if (want != (seen[row_id(kp, o)] == 1) && bad++ < 10)
                fprintf(stderr, "verify: partition %d offset %" PRId64 " %s\n", kp, o,
                        want ? "missing" : "landed but is a dead letter");
        }
    table_snapshot_release(snap);
    segment_scratch_free(&sc);
    free(ids);
    free(seen);
    table_close(t);
    return bad;
}

static int64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Reads the child's reports from fd into *last until the deadline (now_ms() time; -1:
 * until end of file) or until the child has appended stop_at offsets
 * (so that a fast machine cannot finish the stream before the kill). */
static void read_reports(int fd, int64_t deadline_ms, int64_t stop_at, progress *last,
                         size_t *have, unsigned char *buf)
{
    while (last->pos[0] + last->pos[1] < stop_at) {
        int timeout = -1;
        if (deadline_ms >= 0) {
            int64_t left = deadline_ms - now_ms();
            if (left <= 0)
                return;
            timeout = (int)left;
        }
        struct pollfd pfd = {fd, POLLIN, 0};
        int n = poll(&pfd, 1, timeout);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        ssize_t r = read(fd, buf + *have, sizeof(progress) * 64 - *have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return; /* end of file: the child is gone */
        *have += (size_t)r;
        size_t whole = *have / sizeof(progress) * sizeof(progress);
        if (whole) {
            memcpy(last, buf + whole - sizeof(progress), sizeof(progress));
            memmove(buf, buf + whole, *have - whole);
            *have -= whole;
        }
    }
}

/* What a kill left, read before anything recovers the table. */
typedef struct kill_state {
    int in_flush;     /* a MANIFEST.tmp or an unlisted segment */
    int in_memtables; /* an appended row its day partition has not committed */
    int ahead;        /* a time partition committed past the resume point */
} kill_state;

static void inspect_kill(const char *dir, const progress *appended, kill_state *k)
{
    memset(k, 0, sizeof *k);
    int64_t resume[2] = {0, 0}, committed[3][2];
    for (int day = 0; day < 3; day++) {
        char name[32], pdir[4200];
        schema_partition_name(STRATA_PART_DAY, DAY0 + day * 86400000, name, sizeof name);
        snprintf(pdir, sizeof pdir, "%s/sourced/raw/%s", dir, name);
        crash_disk cd;
        manifest m;
        if (crash_disk_scan(pdir, false, &cd, &m) != 0)
            memset(&cd, 0, sizeof cd);
        k->in_flush |= cd.tmp + cd.unlisted > 0;
        for (int kp = 0; kp < 2; kp++) {
            int64_t rs = manifest_get_checkpoint(&m, "rs/" SOURCE, kp);
            if (rs > resume[kp])
                resume[kp] = rs; /* table_source_resume: the highest resume point */
            committed[day][kp] = manifest_get_checkpoint(&m, "cp/" SOURCE, kp);
        }
        manifest_free(&m);
    }
    for (int kp = 0; kp < 2; kp++) {
        /* A row of offset o went to day crash_mix(id) % 3 (see child); its day partition has
         * committed it when o is below that partition's committed offset. */
        for (int64_t o = resume[kp]; o < appended->pos[kp] && !k->in_memtables; o++)
            k->in_memtables = !dead_letter(kp, o) &&
                              o >= committed[crash_mix((uint64_t)row_id(kp, o)) % 3][kp];
        for (int day = 0; day < 3; day++)
            k->ahead |= committed[day][kp] > resume[kp];
    }
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "child") == 0)
        return child(argv[2], strtoull(argv[3], NULL, 10), atoi(argv[4]));
    if (argc != 4) {
        fprintf(stderr, "usage: crash_sourced DIR KILLS SEED\n");
        return 2;
    }
    const char *dir = argv[1];
    int kills = atoi(argv[2]);
    uint64_t seed = strtoull(argv[3], NULL, 10);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0)
        return 1;
    int failed = 0, killed = 0, in_memtables = 0, in_flush = 0, ahead = 0;
    uint64_t skipped = 0;
    unsigned char buf[sizeof(progress) * 64];
    for (int round = 0; round <= kills; round++) {
        seed = crash_mix(seed + (uint64_t)round);
        char sarg[32], fdarg[16];
        snprintf(sarg, sizeof sarg, "%" PRIu64, seed);
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0)
            return 1;
        snprintf(fdarg, sizeof fdarg, "%d", fds[1]);
        pid_t pid = fork();
        if (pid == 0) {
            fcntl(fds[1], F_SETFD, 0); /* the write end survives exec */
            execl("/proc/self/exe", argv[0], "child", dir, sarg, fdarg, (char *)NULL);
            _exit(127);
        }
        close(fds[1]);
        progress last = {{-1, -1}, 0};
        size_t have = 0;
        int st;
        if (round < kills) {
            /* 20..420 ms after the child's first append (not after its start: a slow
             * start, under a sanitizer on a busy machine, would leave nothing to catch):
             * lands in appends, segment writes, manifest commits */
            read_reports(fds[0], now_ms() + 30000, 0, &last, &have, buf);
            read_reports(fds[0], now_ms() + 20 + (int64_t)(seed % 400), 2 * OFFSETS * 9 / 10,
                         &last, &have, buf);
            if (waitpid(pid, &st, WNOHANG) == 0) {
                kill(pid, SIGKILL);
                waitpid(pid, &st, 0);
            }
            read_reports(fds[0], -1, INT64_MAX, &last, &have, buf);
            if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
                killed++;
                kill_state k;
                inspect_kill(dir, &last, &k);
                in_memtables += k.in_memtables;
                in_flush += k.in_flush;
                ahead += k.ahead;
            } else if (WIFEXITED(st)) {
                fprintf(stderr, "round %d: child exited with %d before the kill\n", round,
                        WEXITSTATUS(st));
                failed++;
            } else {
                fprintf(stderr, "round %d: child died of signal %d, not the SIGKILL\n", round,
                        WTERMSIG(st));
                failed++;
            }
        } else {
            read_reports(fds[0], -1, INT64_MAX, &last, &have, buf);
            waitpid(pid, &st, 0);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fprintf(stderr, "final child failed (status %d)\n", st);
                failed++;
            }
        }
        close(fds[0]);
        skipped += last.skipped;
    }
    printf("%d kills: %d with appended rows not yet committed, %d inside a flush, %d with a "
           "time partition committed past the resume point; replays dropped %" PRIu64
           " already-committed rows\n", killed, in_memtables, in_flush, ahead, skipped);
    if (killed != kills) {
        fprintf(stderr, "%d of %d children were killed\n", killed, kills);
        failed++;
    }
    if (kills > 0 && in_memtables == 0) {
        fprintf(stderr, "no kill caught rows that only memtables held: the replay after a crash "
                        "was never tested\n");
        failed++;
    }
    if (ahead > 0 && skipped == 0) {
        fprintf(stderr, "a kill left a time partition committed past the resume point, yet no "
                        "replay dropped a row as already committed\n");
        failed++;
    }
    int bad = verify(dir);
    printf("stream of %d offsets: %s\n", 2 * OFFSETS,
           bad || failed ? "FAILED" : "every row exactly once");
    printf("%d passed, %d failed\n", bad || failed ? 0 : 1, bad || failed ? 1 : 0);
    return bad || failed ? 1 : 0;
}
