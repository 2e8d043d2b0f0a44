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
 * not) every few batches. The parent SIGKILLs the first KILLS children after a random
 * delay, then lets one child finish the stream and flush. It then checks that the table
 * holds every row of the stream exactly once: no offset missing, none twice.
 * Prints "N passed, M failed" and exits non-zero on failure.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "table.h"

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

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    return x;
}

static bool dead_letter(int kp, int64_t o)
{
    return mix((uint64_t)o * 2 + (uint64_t)kp) % 23 == 0;
}

static int64_t row_id(int kp, int64_t o)
{
    return (int64_t)kp * OFFSETS + o;
}

static int child(const char *dir, uint64_t seed)
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
    for (uint64_t n = 0; pos[0] < OFFSETS || pos[1] < OFFSETS; n++) {
        seed = mix(seed + n);
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
            b.i[0][r] = DAY0 + (int64_t)(mix((uint64_t)id) % 3) * 86400000 + o % 86400000;
            b.i[1][r] = id;
            row_batch_set_str(&b, 2, (uint32_t)r, kinds[id % 3], (uint32_t)strlen(kinds[id % 3]));
            offs[m++] = o;
        }
        int rc = table_append_sourced(t, &b, SOURCE, kp, offs, pos[kp] + size, NULL, &err);
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
    seg_scratch sc = {0};
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
    seg_scratch_free(&sc);
    free(ids);
    free(seen);
    table_close(t);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "child") == 0)
        return child(argv[2], strtoull(argv[3], NULL, 10));
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
    int failed = 0, killed = 0;
    for (int round = 0; round <= kills; round++) {
        seed = mix(seed + (uint64_t)round);
        char sarg[32];
        snprintf(sarg, sizeof sarg, "%" PRIu64, seed);
        pid_t pid = fork();
        if (pid == 0) {
            execl("/proc/self/exe", argv[0], "child", dir, sarg, (char *)NULL);
            _exit(127);
        }
        int st;
        if (round < kills) {
            /* 20..420 ms: lands in appends, segment writes, manifest commits */
            struct timespec d = {0, (long)(20 + seed % 400) * 1000000L};
            nanosleep(&d, NULL);
            if (waitpid(pid, &st, WNOHANG) == 0) {
                kill(pid, SIGKILL);
                killed++;
            }
            waitpid(pid, &st, 0);
        } else {
            waitpid(pid, &st, 0);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fprintf(stderr, "final child failed (status %d)\n", st);
                failed++;
            }
        }
    }
    int bad = verify(dir);
    printf("%d kills, stream of %d offsets: %s\n", killed, 2 * OFFSETS,
           bad || failed ? "FAILED" : "every row exactly once");
    printf("%d passed, %d failed\n", bad || failed ? 0 : 1, bad || failed ? 1 : 0);
    return bad || failed ? 1 : 0;
}
