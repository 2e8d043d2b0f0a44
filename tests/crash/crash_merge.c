/*
 * crash_merge.c — crash test of merges: SIGKILL during merge_table_once, then recovery.
 *
 * `crash_merge DIR ROUNDS SEED`: ROUNDS times, start a child (this program with "child")
 * that opens the table in DIR and loops forever: append a batch of rows with consecutive
 * ids split over two day partitions, note the checkpoint "ids" = next id, flush (two new
 * small segments), then run merge_table_once until it finds nothing to merge (merges of
 * 2..10 segments, rewritten with zstd). Before each merge the child marks a state file
 * ('m' and the number of merges started), after it 'd'. The parent waits until the
 * child started its first merge, SIGKILLs it 0-150 ms later, and:
 *   - requires that the child died of the SIGKILL, and counts the kills that landed
 *     inside a merge (the state file says 'm'): at least 3 over the run, or the test
 *     proved nothing;
 *   - counts what the kill left before recovery (unlisted *.seg: a flush or merge cut
 *     short before its commit, or a merge's inputs after it; MANIFEST.tmp);
 *   - recovers the table (table_open) and checks: no *.tmp and no unlisted *.seg remain,
 *     every listed segment opens with its manifest's row count and passes
 *     segment_verify; in each partition the rows are exactly the ids [0, checkpoint) of
 *     the partition's parity, each once; the row count and the sums of ids and of values
 *     are those of that id range; the checkpoints never go back (merges carry them).
 * At the end at least one merged segment (level >= 1) must be listed, or no merge ever
 * committed. Prints "N passed, M failed" (rounds) and exits non-zero on any failure.
 *
 * `crash_merge DIR ROUNDS SEED dedup`: the same over a dedup table (dedup_key [id, ts],
 * version ver): each batch B >= 1 also re-sends RESENDS earlier ids (resent()) at version
 * B with value value_of(id) + B, so merges drop superseded rows while they are killed. The
 * check skips the rows the snapshot's delete vectors mark, and every id of [0, cp) must
 * then be there once with the version and value of the latest batch below cp that sent
 * it: nothing lost, nothing superseded back, no id twice.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crash_child.h"
#include "crash_disk.h"
#include "engine/dvec.h"
#include "engine/manifest.h"
#include "engine/merge.h"
#include "engine/table.h"

#define BATCH 3000
#define RESENDS 300
#define DAY0 INT64_C(1704067200000)

static bool dedup; /* the dedup variant (see above) */

static void make_schema(strata_schema *s)
{
    schema_init(s);
    snprintf(s->name, sizeof s->name, "crash");
    const char *names[] = {"ts", "id", "kind", "value", "ver"};
    strata_type types[] = {STRATA_TIMESTAMP, STRATA_INT64, STRATA_STRING, STRATA_FLOAT64, STRATA_INT64};
    for (int i = 0; i < 5; i++) {
        snprintf(s->cols[i].name, sizeof s->cols[i].name, "%s", names[i]);
        s->cols[i].type = types[i];
    }
    s->ncols = 5;
    s->time_col = 0;
    if (dedup) {
        s->ndedup = 2;
        s->dedup_cols[0] = 1;
        s->dedup_cols[1] = 0;
        s->version_col = 4;
    }
    schema_apply_default_order(s);
}

static double value_of(int64_t id) { return (double)(id % 10000) / 100.0; }

/* The j-th id batch B >= 1 re-sends: one of the ids before the batch. */
static int64_t resent(int64_t batch, int j)
{
    return (batch * 7919 + (int64_t)j * 104729) % (batch * BATCH);
}

/* Row for id: even ids on day 0, odd on day 1; kinds overlap between batches. Version 0. */
static void add_row(row_batch *b, int64_t id)
{
    static const char *kinds[] = {"click", "view", "order", "refund", "cart"};
    int64_t r = row_batch_add_row(b);
    b->i[0][r] = DAY0 + (id % 2) * 86400000 + (id * 7919) % 86400000;
    b->i[1][r] = id;
    const char *k = kinds[(id / BATCH + id % 3) % 5];
    row_batch_set_str(b, 2, (uint32_t)r, k, (uint32_t)strlen(k));
    b->f[3][r] = value_of(id);
    b->i[4][r] = 0;
}

/* A newer version of id (dedup variant): version ver, value value_of(id) + ver. */
static void add_version(row_batch *b, int64_t id, int64_t ver)
{
    add_row(b, id);
    b->i[4][b->nrows - 1] = ver;
    b->f[3][b->nrows - 1] = value_of(id) + (double)ver;
}


static void part_dir(const char *dir, int day, char *out, size_t cap)
{
    char name[32];
    schema_partition_name(STRATA_PART_DAY, DAY0 + day * 86400000, name, sizeof name);
    snprintf(out, cap, "%s/crash/raw/%s", dir, name);
}

static int64_t partition_cp(const char *dir, int day)
{
    char pdir[4200];
    part_dir(dir, day, pdir, sizeof pdir);
    manifest m;
    int64_t cp = 0;
    if (manifest_read(pdir, &m, NULL) == 0) {
        cp = manifest_get_checkpoint(&m, "ids", 0);
        manifest_free(&m);
    }
    return cp < 0 ? 0 : cp;
}

static int child(const char *dir, const char *state)
{
    strata_schema s;
    make_schema(&s);
    strata_err err = {0};
    int fd;
    strata_table *t = crash_child_begin(dir, &s, state, &fd);
    if (!t)
        return 1;
    int64_t have[2] = {partition_cp(dir, 0), partition_cp(dir, 1)};
    int64_t next = have[0] < have[1] ? have[0] : have[1];
    merge_policy pol;
    merge_policy_default(&pol);
    row_batch b;
    row_batch_init(&b, &s, BATCH + RESENDS);
    uint64_t started = 0;
    for (;;) {
        row_batch_clear(&b);
        for (int64_t id = next; id < next + BATCH; id++)
            if (id >= have[id % 2])
                add_row(&b, id);
        for (int j = 0; dedup && next > 0 && j < RESENDS; j++)
            add_version(&b, resent(next / BATCH, j), next / BATCH);
        next += BATCH;
        if (table_append(t, &b, &err) != 0 || table_note_checkpoint(t, "ids", 0, next) != 0 ||
            table_flush(t, true, &err) != 0) {
            fprintf(stderr, "child: %s\n", err.msg);
            return 1;
        }
        for (;;) {
            crash_state_mark(fd, 'm', ++started);
            merge_report rep;
            if (merge_table_once(t, &pol, NULL, &rep, &err) != 0) {
                fprintf(stderr, "child: merge: %s\n", err.msg);
                return 1;
            }
            crash_state_mark(fd, 'd', started);
            if (!rep.merged)
                break;
        }
    }
}

static int64_t prev_cp[2];

static int check(const char *dir, int round, int *merged_segments)
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
    *merged_segments = 0;
    for (int day = 0; day < 2 && !bad; day++) {
        char pdir[4200];
        part_dir(dir, day, pdir, sizeof pdir);
        crash_disk cd;
        manifest m;
        if (crash_disk_scan(pdir, true, &cd, &m) != 0) {
            fprintf(stderr, "round %d: %s cannot be read\n", round, pdir);
            bad = 1;
            break;
        }
        if (cd.tmp || cd.unlisted) {
            fprintf(stderr, "round %d: after recovery %s holds %d *.tmp and %d unlisted *.seg (e.g. %s)\n",
                    round, pdir, cd.tmp, cd.unlisted, cd.first_stray);
            bad = 1;
        }
        if (cd.listed_bad) {
            fprintf(stderr, "round %d: %d listed segment(s) of %s are bad: %s\n", round, cd.listed_bad,
                    pdir, cd.bad_msg);
            bad = 1;
        }
        for (uint32_t i = 0; i < m.nsegs; i++)
            *merged_segments += m.segs[i].level >= 1;
        int64_t cp = manifest_get_checkpoint(&m, "ids", 0);
        cp = cp < 0 ? 0 : cp;
        if (cp < prev_cp[day]) {
            fprintf(stderr, "round %d: partition %d checkpoint went back from %" PRId64 " to %" PRId64 "\n",
                    round, day, prev_cp[day], cp);
            bad = 1;
        }
        prev_cp[day] = cp;
        manifest_free(&m);
    }
    table_snapshot *snap = table_snapshot_acquire(t, INT64_MIN, INT64_MAX);
    segment_scratch sc = {0};
    int64_t *ids = malloc(8 * 65536), *vers = malloc(8 * 65536);
    double *vals = malloc(8 * 65536);
    for (uint32_t p = 0; p < snap->nparts && !bad; p++) {
        snapshot_part *sp = &snap->parts[p];
        int parity = sp->key == DAY0 ? 0 : 1;
        int64_t *want_ver = calloc((size_t)prev_cp[parity] + 1, sizeof *want_ver);
        for (int64_t b = 1; dedup && (b + 1) * BATCH <= prev_cp[parity]; b++)
            for (int j = 0; j < RESENDS; j++)
                want_ver[resent(b, j)] = b;
        uint64_t count = 0;
        int64_t id_sum = 0;
        double val_sum = 0;
        size_t seen_cap = (size_t)prev_cp[parity] / 2 + 1;
        uint8_t *seen = calloc(seen_cap, 1);
        for (uint32_t i = 0; i < sp->nsegs && !bad; i++) {
            segment *seg = sp->segs[i];
            if (segment_verify(seg, &err) != 0) {
                fprintf(stderr, "round %d: %s\n", round, err.msg);
                bad = 1;
                break;
            }
            for (uint32_t g = 0; g < segment_ngranules(seg) && !bad; g++) {
                if (segment_read_ints(seg, 1, g, ids, &sc, &err) != 0 ||
                    segment_read_floats(seg, 3, g, vals, &sc, &err) != 0 ||
                    segment_read_ints(seg, 4, g, vers, &sc, &err) != 0) {
                    fprintf(stderr, "round %d: %s\n", round, err.msg);
                    bad = 1;
                    break;
                }
                for (uint32_t k = 0; k < segment_granule_nrows(seg, g); k++) {
                    if (sp->seg_dv && dvec_test(sp->seg_dv[i], (uint64_t)g * segment_granule_rows(seg) + k))
                        continue; /* superseded: queries skip it */
                    int64_t id = ids[k];
                    size_t slot = (size_t)(id / 2);
                    if (id < 0 || id % 2 != parity || id >= prev_cp[parity] || seen[slot]++) {
                        fprintf(stderr, "round %d: id %" PRId64 " unexpected (partition %d, checkpoint %"
                                PRId64 ") or twice\n", round, id, parity, prev_cp[parity]);
                        bad = 1;
                        break;
                    }
                    if (vers[k] != want_ver[id] || vals[k] != value_of(id) + (double)want_ver[id]) {
                        fprintf(stderr, "round %d: id %" PRId64 " has version %" PRId64 " value %g, want %" PRId64
                                "\n", round, id, vers[k], vals[k], want_ver[id]);
                        bad = 1;
                        break;
                    }
                    count++;
                    id_sum += id;
                    val_sum += vals[k];
                }
            }
        }
        free(seen);
        /* Exactly the ids [0, cp) of this parity: count and sums. */
        uint64_t want = (uint64_t)(prev_cp[parity] / 2);
        int64_t want_sum = 0;
        double want_val = 0;
        for (int64_t id = parity; id < prev_cp[parity]; id += 2) {
            want_sum += id;
            want_val += value_of(id) + (double)want_ver[id];
        }
        free(want_ver);
        if (!bad && (count != want || id_sum != want_sum || fabs(val_sum - want_val) > 1e-6 * (1 + want_val))) {
            fprintf(stderr, "round %d: partition %d holds %" PRIu64 " rows (sum %" PRId64 ", values %.2f), "
                    "want %" PRIu64 " (sum %" PRId64 ", values %.2f)\n", round, parity, count, id_sum, val_sum,
                    want, want_sum, want_val);
            bad = 1;
        }
    }
    free(ids);
    free(vers);
    free(vals);
    segment_scratch_free(&sc);
    table_snapshot_release(snap);
    table_close(t);
    return bad;
}

int main(int argc, char **argv)
{
    dedup = argc == 5 && strcmp(argv[4], "dedup") == 0;
    if ((argc == 4 || dedup) && strcmp(argv[1], "child") == 0)
        return child(argv[2], argv[3]);
    if (argc != 4 && !dedup) {
        fprintf(stderr, "usage: crash_merge DIR ROUNDS SEED [dedup]\n");
        return 2;
    }
    const char *dir = argv[1];
    int rounds = atoi(argv[2]);
    srand((unsigned)atoi(argv[3]));
    char cmd[4200], state[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0)
        return 2;
    snprintf(state, sizeof state, "%s/merge-state", dir);
    int passed = 0, failed = 0, in_merge = 0, left = 0, merged_segments = 0;
    for (int r = 0; r < rounds; r++) {
        int sfd = open(state, O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (sfd < 0)
            return 2;
        pid_t pid = fork();
        if (pid == 0) {
            execl("/proc/self/exe", argv[0], "child", dir, state, dedup ? "dedup" : (char *)NULL, (char *)NULL);
            _exit(127);
        }
        /* Wait for the first merge to start (30 s at most), then kill 0-150 ms later. */
        uint64_t started = crash_state_wait(sfd, 30000);
        if (started == 0)
            fprintf(stderr, "round %d: no merge started within 30 s\n", r);
        struct timespec ts = {0, (long)(rand() % 150) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        if (crash_state_read(sfd, &started) == 'm')
            in_merge++;
        close(sfd);
        if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
            fprintf(stderr, "round %d: child ended before the kill (status %d)\n", r, st);
            failed++;
            continue;
        }
        for (int day = 0; day < 2; day++) {
            char pdir[4200];
            part_dir(dir, day, pdir, sizeof pdir);
            crash_disk cd;
            if (crash_disk_scan(pdir, false, &cd, NULL) == 0)
                left += cd.tmp + cd.unlisted > 0;
        }
        if (check(dir, r, &merged_segments) == 0)
            passed++;
        else
            failed++;
    }
    fprintf(stderr, "crash_merge: %d kills, %d inside a merge, %d left files for recovery to remove; "
            "%d merged segments listed at the end; checkpoints %" PRId64 " and %" PRId64 "\n",
            rounds, in_merge, left, merged_segments, prev_cp[0], prev_cp[1]);
    if (in_merge < 3 && rounds >= 10) {
        fprintf(stderr, "crash_merge: fewer than 3 kills landed inside a merge: the test proved little\n");
        failed++;
    }
    if (merged_segments == 0) {
        fprintf(stderr, "crash_merge: no merged segment was ever committed\n");
        failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
