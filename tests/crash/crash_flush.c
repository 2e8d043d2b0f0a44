/*
 * crash_flush.c — crash test of flush + manifest commit + recovery.
 *
 * `crash_flush DIR ROUNDS SEED`: ROUNDS times, start a child (this program with "child")
 * that opens the table in DIR and loops forever: append a batch of rows with consecutive
 * ids split over two day partitions, note the checkpoint "ids" = next id, flush. The
 * parent SIGKILLs the child after a random delay (0–150 ms, so kills land inside
 * segment writes, fsyncs, renames and recovery itself), then recovers the table itself
 * and checks:
 *   - open succeeds: every manifest-listed segment exists and opens;
 *   - no stray *.seg or *.tmp files remain;
 *   - every segment passes segment_verify;
 *   - in each partition the rows are exactly the ids of the batches committed there
 *     (a prefix: ids form whole batches, no gaps, no duplicates), and the partition's
 *     checkpoint equals the next id after its last committed batch — so rows and offsets
 *     were committed in one step.
 * The next child continues from the recovered checkpoint, so the stream stays gapless.
 * Prints "N passed, M failed" (rounds) and exits non-zero on any failure.
 */
#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "manifest.h"
#include "table.h"

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

static int child(const char *dir)
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
    }
}

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
    table_snapshot *snap = table_snapshot_acquire(t, INT64_MIN, INT64_MAX);
    seg_scratch sc = {0};
    int64_t ids[8192];
    for (uint32_t p = 0; p < snap->nparts && !bad; p++) {
        snapshot_part *sp = &snap->parts[p];
        int parity = sp->key == DAY0 ? 0 : 1;
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
        /* No leftovers after recovery. */
        DIR *d = opendir(pdir);
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL)
            if (strstr(de->d_name, ".tmp")) {
                fprintf(stderr, "round %d: stray %s\n", round, de->d_name);
                bad = 1;
            }
        if (d)
            closedir(d);
    }
    seg_scratch_free(&sc);
    table_snapshot_release(snap);
    table_close(t);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "child") == 0)
        return child(argv[2]);
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
    for (int r = 0; r < rounds; r++) {
        pid_t pid = fork();
        if (pid == 0) {
            execl("/proc/self/exe", argv[0], "child", dir, (char *)NULL);
            _exit(127);
        }
        struct timespec ts = {0, (long)(rand() % 150) * 1000000L + 5000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        if (WIFEXITED(st)) {
            fprintf(stderr, "round %d: child exited with %d before the kill\n", r, WEXITSTATUS(st));
            failed++;
            continue;
        }
        if (check(dir, r) == 0)
            passed++;
        else
            failed++;
    }
    int64_t next = recovered_next_id(dir);
    fprintf(stderr, "crash_flush: %d kills, %" PRId64 " ids committed in both partitions\n", rounds, next);
    if (next == 0) {
        fprintf(stderr, "crash_flush: nothing was ever committed: the test proved nothing\n");
        failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
