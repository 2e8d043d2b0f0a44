/*
 * crash_flush.c — crash test of flush + manifest commit + recovery.
 *
 * `crash_flush DIR ROUNDS SEED`: ROUNDS times, start a child (this program with "child")
 * that opens the table in DIR and loops forever: append a batch of rows with consecutive
 * ids split over two day partitions, note the checkpoint "ids" = next id, flush. The
 * parent SIGKILLs the child after a random delay (5–155 ms after the start in even
 * rounds, so kills land inside recovery itself and the first flushes; 0–50 ms after the
 * child's first commit in odd rounds, so kills land inside segment writes, fsyncs and
 * renames however slow the machine). Each round, the parent:
 *   - requires that the child was still running and died of the SIGKILL;
 *   - before anything recovers the table, counts what the kill left in each partition
 *     directory: MANIFEST.tmp (a commit cut short) and *.seg files the manifest does not
 *     list (a flush cut short). Over the run, at least one kill must have left such files,
 *     or no kill landed inside a flush and the cleanup below was never exercised;
 *   - recovers the table itself (table_open) and checks:
 *     - open succeeds, and afterwards no *.tmp and no unlisted *.seg remain, every listed
 *       segment opens with the row count its manifest says, and the table serves exactly
 *       the listed segments;
 *     - every segment passes segment_verify;
 *     - in each partition the rows are exactly the ids of the batches committed there (a
 *       prefix: ids [0, checkpoint) of the partition's parity, no gaps, no duplicates) and
 *       the checkpoint is a whole number of batches — so rows and offsets were committed
 *       in one step;
 *     - the two partitions' checkpoints differ by at most one batch (a kill between the
 *       two partitions' commits), and neither is below what it was after the previous
 *       round: what was committed stays committed.
 * The next child continues from the recovered checkpoint, so the stream stays gapless.
 * Prints "N passed, M failed" (rounds) and exits non-zero on any failure.
 */
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
#include "engine/manifest.h"
#include "engine/table.h"

#define BATCH 3000
#define DAY0 INT64_C(1704067200000)

static void make_schema(strata_schema *s)
{
    schema_init(s);
    snprintf(s->name, sizeof s->name, "crash");
    const char *names[] = {"ts", "id", "kind", "value"};
    strata_type types[] = {STRATA_TIMESTAMP, STRATA_INT64, STRATA_STRING, STRATA_FLOAT64};
    for (int i = 0; i < 4; i++) {
        snprintf(s->cols[i].name, sizeof s->cols[i].name, "%s", names[i]);
        s->cols[i].type = types[i];
    }
    s->ncols = 4;
    s->time_col = 0;
    schema_apply_default_order(s);
}

/* Row for id: even ids on day 0, odd on day 1. */
static void add_row(row_batch *b, int64_t id)
{
    static const char *kinds[] = {"click", "view", "order"};
    int64_t r = row_batch_add_row(b);
    b->i[0][r] = DAY0 + (id % 2) * 86400000 + (id / 2) % 86400000;
    b->i[1][r] = id;
    row_batch_set_str(b, 2, (uint32_t)r, kinds[id % 3], (uint32_t)strlen(kinds[id % 3]));
    b->f[3][r] = (double)(id % 10000) / 100.0;
}

static void part_dir(const char *dir, int day, char *out, size_t cap)
{
    char name[32];
    schema_partition_name(STRATA_PART_DAY, DAY0 + day * 86400000, name, sizeof name);
    snprintf(out, cap, "%s/crash/raw/%s", dir, name);
}

static int64_t recovered_next_id(const char *dir)
{
    /* The smallest checkpoint over the partitions: a batch is complete only when both
     * partitions committed it, and the child resumes after the last complete batch. */
    int64_t next = -1;
    for (int d = 0; d < 2; d++) {
        char pdir[4200], name[32];
        schema_partition_name(STRATA_PART_DAY, DAY0 + d * 86400000, name, sizeof name);
        snprintf(pdir, sizeof pdir, "%s/crash/raw/%s", dir, name);
        manifest m;
        int64_t cp = 0;
        if (manifest_read(pdir, &m, NULL) == 0) {
            cp = manifest_get_checkpoint(&m, "ids", 0);
            if (cp < 0)
                cp = 0;
            manifest_free(&m);
        }
        if (next < 0 || cp < next)
            next = cp;
    }
    return next < 0 ? 0 : next;
}

static int child(const char *dir, int commit_fd)
{
    strata_schema s;
    make_schema(&s);
    strata_err err = {0};
    strata_table *t;
    if (table_open(dir, &s, &t, &err) != 0) {
        fprintf(stderr, "child: %s\n", err.msg);
        return 1;
    }
    /* Resume after the last batch both partitions hold; a partition that committed
     * more (the next batch) filters those ids out to stay exactly-once. */
    int64_t next = recovered_next_id(dir);
    int64_t have[2];
    for (int d = 0; d < 2; d++) {
        char pdir[4200], name[32];
        schema_partition_name(STRATA_PART_DAY, DAY0 + d * 86400000, name, sizeof name);
        snprintf(pdir, sizeof pdir, "%s/crash/raw/%s", dir, name);
        manifest m;
        have[d] = 0;
        if (manifest_read(pdir, &m, NULL) == 0) {
            have[d] = manifest_get_checkpoint(&m, "ids", 0);
            manifest_free(&m);
        }
    }
    row_batch b;
    row_batch_init(&b, &s, BATCH);
    for (;;) {
        row_batch_clear(&b);
        for (int64_t id = next; id < next + BATCH; id++)
            if (id >= have[id % 2])
                add_row(&b, id);
        next += BATCH;
        if (table_append(t, &b, &err) != 0 || table_note_checkpoint(t, "ids", 0, next) != 0 ||
            table_flush(t, true, &err) != 0) {
            fprintf(stderr, "child: %s\n", err.msg);
            return 1;
        }
        if (commit_fd >= 0 && write(commit_fd, "c", 1) < 0) {
            /* full (the parent reads only the first): nothing to do */
        }
    }
}

/* Committed checkpoint of each partition after the previous round (0 before any). */
static int64_t prev_cp[2];

static int check(const char *dir, int round)
{
    strata_schema s;
    make_schema(&s);
    strata_err err = {0};
    strata_table *t;
    if (table_open(dir, &s, &t, &err) != 0) {
        fprintf(stderr, "round %d: recovery failed: %s\n", round, err.msg);
        return 1;
    }
    int bad = 0;
    /* What recovery left on disk: no leftovers, every listed segment whole. */
    int64_t cps[2] = {0, 0};
    int listed[2] = {0, 0};
    for (int day = 0; day < 2; day++) {
        char pdir[4200];
        part_dir(dir, day, pdir, sizeof pdir);
        crash_disk cd;
        manifest m;
        if (crash_disk_scan(pdir, true, &cd, &m) != 0) {
            fprintf(stderr, "round %d: %s cannot be read\n", round, pdir);
            bad = 1;
            continue;
        }
        if (cd.tmp || cd.unlisted) {
            fprintf(stderr, "round %d: after recovery %s still holds %d *.tmp and %d unlisted "
                            "*.seg (e.g. %s)\n", round, pdir, cd.tmp, cd.unlisted, cd.first_stray);
            bad = 1;
        }
        if (cd.listed_bad) {
            fprintf(stderr, "round %d: after recovery %d listed segment(s) of %s are bad: %s\n",
                    round, cd.listed_bad, pdir, cd.bad_msg);
            bad = 1;
        }
        listed[day] = cd.listed;
        cps[day] = manifest_get_checkpoint(&m, "ids", 0);
        if (cps[day] < 0)
            cps[day] = 0;
        manifest_free(&m);
    }
    for (int day = 0; day < 2; day++) {
        if (cps[day] % BATCH != 0) {
            fprintf(stderr, "round %d: partition %d checkpoint %" PRId64 " is not a whole number "
                            "of %d-id batches\n", round, day, cps[day], BATCH);
            bad = 1;
        }
        if (cps[day] < prev_cp[day]) {
            fprintf(stderr,
                    "round %d: partition %d checkpoint went back from %" PRId64 " to %" PRId64
                    ": committed rows were lost\n", round, day, prev_cp[day], cps[day]);
            bad = 1;
        }
        prev_cp[day] = cps[day];
    }
    if (llabs(cps[0] - cps[1]) > BATCH) {
        fprintf(stderr, "round %d: checkpoints %" PRId64 " and %" PRId64 " are more than one batch "
                        "apart\n", round, cps[0], cps[1]);
        bad = 1;
    }
    table_snapshot *snap = table_snapshot_acquire(t, INT64_MIN, INT64_MAX);
    segment_scratch sc = {0};
    int64_t ids[8192];
    for (uint32_t p = 0; p < snap->nparts && !bad; p++) {
        snapshot_part *sp = &snap->parts[p];
        int parity = sp->key == DAY0 ? 0 : 1;
        if ((int)sp->nsegs != listed[parity] || sp->nmts) {
            fprintf(stderr, "round %d: partition %d serves %u segments and %u memtables, its "
                            "manifest lists %d segments\n", round, parity, sp->nsegs, sp->nmts,
                    listed[parity]);
            bad = 1;
        }
        uint64_t count = 0;
        uint8_t *seen = NULL;
        size_t seen_cap = 0;
        for (uint32_t i = 0; i < sp->nsegs && !bad; i++) {
            segment *seg = sp->segs[i];
            if (segment_verify(seg, &err) != 0) {
                fprintf(stderr, "round %d: %s\n", round, err.msg);
                bad = 1;
                break;
            }
            for (uint32_t g = 0; g < segment_ngranules(seg) && !bad; g++) {
                if (segment_read_ints(seg, 1, g, ids, &sc, &err) != 0) {
                    fprintf(stderr, "round %d: %s\n", round, err.msg);
                    bad = 1;
                    break;
                }
                for (uint32_t k = 0; k < segment_granule_nrows(seg, g); k++) {
                    int64_t id = ids[k];
                    if (id < 0 || id % 2 != parity) {
                        fprintf(stderr, "round %d: id %" PRId64 " in the wrong partition\n", round, id);
                        bad = 1;
                        break;
                    }
                    size_t slot = (size_t)(id / 2);
                    if (slot >= seen_cap) {
                        size_t cap = seen_cap ? seen_cap : 1024;
                        while (cap <= slot)
                            cap *= 2;
                        seen = realloc(seen, cap);
                        memset(seen + seen_cap, 0, cap - seen_cap);
                        seen_cap = cap;
                    }
                    if (seen[slot]++) {
                        fprintf(stderr, "round %d: id %" PRId64 " stored twice\n", round, id);
                        bad = 1;
                        break;
                    }
                    count++;
                }
            }
        }
        /* Committed rows are ids [0, cp) of this parity: no gaps. */
        char pdir[4200], name[32];
        schema_partition_name(STRATA_PART_DAY, sp->key, name, sizeof name);
        snprintf(pdir, sizeof pdir, "%s/crash/raw/%s", dir, name);
        manifest m;
        int64_t cp = 0;
        if (manifest_read(pdir, &m, NULL) == 0) {
            cp = manifest_get_checkpoint(&m, "ids", 0);
            manifest_free(&m);
        }
        uint64_t want = (uint64_t)(cp / 2);
        if (!bad && count != want) {
            fprintf(stderr, "round %d: partition %s holds %" PRIu64 " rows, checkpoint %" PRId64
                            " says %" PRIu64 "\n", round, name, count, cp, want);
            bad = 1;
        }
        for (uint64_t k = 0; !bad && k < want; k++)
            if (k >= seen_cap || !seen[k]) {
                fprintf(stderr, "round %d: id %" PRIu64 " missing\n", round, 2 * k + parity);
                bad = 1;
            }
        free(seen);
    }
    segment_scratch_free(&sc);
    table_snapshot_release(snap);
    table_close(t);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "child") == 0)
        return child(argv[2], atoi(argv[3]));
    if (argc != 4) {
        fprintf(stderr, "usage: crash_flush DIR ROUNDS SEED\n");
        return 2;
    }
    const char *dir = argv[1];
    int rounds = atoi(argv[2]);
    srand((unsigned)atoi(argv[3]));
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0)
        return 2;
    int passed = 0, failed = 0;
    int in_flush = 0, left_tmp = 0, left_seg = 0; /* kills that left a flush's traces */
    for (int r = 0; r < rounds; r++) {
        /* Even rounds kill 5-155 ms after the start (recovery, the first flushes); odd
         * rounds 0-50 ms after the child's first commit, so commits happen however slow
         * the machine (a loaded sanitizer build may not commit within 155 ms). */
        int commits[2];
        if (pipe(commits) != 0 || fcntl(commits[1], F_SETFL, O_NONBLOCK) != 0)
            return 2;
        pid_t pid = fork();
        if (pid == 0) {
            close(commits[0]);
            char fd[16];
            snprintf(fd, sizeof fd, "%d", commits[1]);
            execl("/proc/self/exe", argv[0], "child", dir, fd, (char *)NULL);
            _exit(127);
        }
        close(commits[1]);
        struct timespec ts = {0, (long)(rand() % 150) * 1000000L + 5000000L};
        if (r % 2) {
            struct pollfd pfd = {commits[0], POLLIN, 0};
            if (poll(&pfd, 1, 30000) != 1)
                fprintf(stderr, "round %d: no commit within 30 s\n", r);
            ts.tv_nsec = (long)(rand() % 50) * 1000000L;
        }
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        close(commits[0]);
        int st;
        waitpid(pid, &st, 0);
        if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
            if (WIFEXITED(st))
                fprintf(stderr, "round %d: child exited with %d before the kill\n", r,
                        WEXITSTATUS(st));
            else
                fprintf(stderr, "round %d: child died of signal %d, not the SIGKILL\n", r,
                        WTERMSIG(st));
            failed++;
            continue;
        }
        /* What the kill left, before recovery deletes it. */
        int tmp = 0, seg = 0;
        for (int day = 0; day < 2; day++) {
            char pdir[4200];
            part_dir(dir, day, pdir, sizeof pdir);
            crash_disk cd;
            if (crash_disk_scan(pdir, false, &cd, NULL) == 0) {
                tmp += cd.tmp;
                seg += cd.unlisted;
            }
        }
        in_flush += tmp + seg > 0;
        left_tmp += tmp > 0;
        left_seg += seg > 0;
        if (check(dir, r) == 0)
            passed++;
        else
            failed++;
    }
    int64_t next = recovered_next_id(dir);
    fprintf(stderr,
            "crash_flush: %d kills, %d inside a flush (%d left an unlisted segment, %d a "
            "MANIFEST.tmp); %" PRId64 " ids committed in both partitions\n",
            rounds, in_flush, left_seg, left_tmp, next);
    if (next == 0) {
        fprintf(stderr, "crash_flush: nothing was ever committed: the test proved nothing\n");
        failed++;
    }
    if (in_flush == 0) {
        fprintf(stderr, "crash_flush: no kill left a MANIFEST.tmp or an unlisted segment: none "
                        "landed inside a flush, so recovery's cleanup was never tested\n");
        failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
