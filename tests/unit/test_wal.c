/*
 * test_wal.c — the write-ahead log (engine/wal.c), the log form of row batches, and
 * logged appends of tables: records read back in order, group commit from many threads,
 * torn tails cut, damage in the middle refused, covered files deleted; a table's logged
 * rows back exactly once after a close without flush, after partial flushes and after a
 * torn last record.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/buf.h"
#include "engine/fault.h"
#include "engine/row_batch.h"
#include "engine/table.h"
#include "engine/wal.h"
#include "test.h"

/* ---- the log ------------------------------------------------------------------------ */

typedef struct seen {
    uint64_t n, first, last;
    uint64_t sum; /* of the payloads' first 8 bytes */
    bool order_ok;
} seen;

static int collect(void *ctx, uint64_t lsn, uint32_t count, const uint8_t *payload, uint32_t len,
                   strata_err *err)
{
    (void)err;
    (void)count;
    seen *s = ctx;
    if (s->n == 0)
        s->first = lsn;
    else if (lsn != s->last + 1)
        s->order_ok = false;
    s->last = lsn;
    s->n++;
    uint64_t v = 0;
    memcpy(&v, payload, len < 8 ? len : 8);
    s->sum += v;
    return 0;
}

static void replay_all(const char *dir, uint64_t from, seen *s, wal_replay_report *rep)
{
    memset(s, 0, sizeof *s);
    s->order_ok = true;
    strata_err err = {0};
    int rc = wal_replay(dir, from, collect, s, rep, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    ASSERT_EQ(rc, 0);
    ASSERT(s->order_ok);
}

static uint32_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    uint32_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".wal") != NULL;
    closedir(d);
    return n;
}

TEST(records_come_back_in_order)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "wal-order");
    strcat(dir, "/wal");
    wal *w;
    strata_err err = {0};
    ASSERT_EQ(wal_open(dir, 1, &w, &err), 0);
    uint64_t lsn = 0, sum = 0;
    for (uint64_t i = 1; i <= 1000; i++) {
        uint8_t p[100];
        memset(p, (int)i, sizeof p);
        memcpy(p, &i, 8);
        ASSERT_EQ(wal_append(w, p, 8 + i % 90, 1, &lsn, &err), 0);
        ASSERT_U64_EQ(lsn, i);
        sum += i;
    }
    ASSERT(!wal_durable(w, 1000));
    ASSERT_EQ(wal_sync(w, 1000, &err), 0);
    ASSERT(wal_durable(w, 1000));
    wal_close(w);
    seen s;
    wal_replay_report rep;
    replay_all(dir, 0, &s, &rep);
    ASSERT_U64_EQ(s.n, 1000);
    ASSERT_U64_EQ(s.first, 1);
    ASSERT_U64_EQ(s.sum, sum);
    ASSERT_U64_EQ(rep.end_lsn, 1001);
    ASSERT_U64_EQ(rep.torn_bytes, 0);
    replay_all(dir, 901, &s, &rep);
    ASSERT_U64_EQ(s.n, 100);
    ASSERT_U64_EQ(s.first, 901);
    ASSERT_U64_EQ(rep.skipped, 900);
    /* Reopened, the log goes on after the last record in a file of its own. */
    ASSERT_EQ(wal_open(dir, 1001, &w, &err), 0);
    uint64_t v = 7;
    ASSERT_EQ(wal_append(w, &v, 8, 1, &lsn, &err), 0);
    ASSERT_U64_EQ(lsn, 1001);
    ASSERT_EQ(wal_sync(w, lsn, &err), 0);
    wal_close(w);
    ASSERT_EQ(count_files(dir), 2);
    replay_all(dir, 0, &s, &rep);
    ASSERT_U64_EQ(s.n, 1001);
    ASSERT_U64_EQ(rep.files, 2);
}

TEST(large_records_start_new_files_and_covered_files_go)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "wal-files");
    strcat(dir, "/wal");
    wal *w;
    strata_err err = {0};
    ASSERT_EQ(wal_open(dir, 1, &w, &err), 0);
    size_t big = 9u << 20; /* 7 of them pass WAL_FILE_MAX */
    uint8_t *p = calloc(1, 80u << 20);
    ASSERT(p);
    uint64_t lsn = 0;
    for (uint64_t i = 1; i <= 16; i++) {
        memcpy(p, &i, 8);
        ASSERT_EQ(wal_append(w, p, i == 16 ? (80u << 20) : big, 1, &lsn, &err), 0);
    }
    free(p);
    ASSERT_EQ(wal_sync(w, lsn, &err), 0);
    ASSERT_GE(count_files(dir), 3);
    seen s;
    wal_replay_report rep;
    replay_all(dir, 0, &s, &rep);
    ASSERT_U64_EQ(s.n, 16);
    ASSERT_U64_EQ(s.sum, 136);
    /* Records below 10 are covered: files ending before it go, the rest stay. */
    wal_forget_below(w, 10);
    replay_all(dir, 0, &s, &rep);
    ASSERT(s.first <= 10 && s.first > 1);
    ASSERT_U64_EQ(s.last, 16);
    /* Everything covered: the big file is replaced by a small empty one. */
    wal_forget_below(w, 17);
    ASSERT_EQ(count_files(dir), 1);
    wal_stats st;
    wal_get_stats(w, &st);
    ASSERT_U64_EQ(st.disk_bytes, WAL_IDLE_BYTES);
    ASSERT_EQ(wal_append(w, "x", 1, 1, &lsn, &err), 0);
    ASSERT_U64_EQ(lsn, 17);
    ASSERT_EQ(wal_sync(w, lsn, &err), 0);
    wal_close(w);
    replay_all(dir, 0, &s, &rep);
    ASSERT_U64_EQ(s.n, 1);
    ASSERT_U64_EQ(s.first, 17);
}

typedef struct writer_arg {
    wal *w;
    int n;
    _Atomic uint64_t *acked;
} writer_arg;

static void *writer(void *arg)
{
    writer_arg *a = arg;
    strata_err err = {0};
    for (int i = 0; i < a->n; i++) {
        uint64_t lsn, v = 1;
        if (wal_append(a->w, &v, 8, 1, &lsn, &err) != 0 || wal_sync(a->w, lsn, &err) != 0)
            return (void *)1;
        atomic_fetch_add(a->acked, 1);
    }
    return NULL;
}

TEST(group_commit_shares_syncs)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "wal-group");
    strcat(dir, "/wal");
    wal *w;
    strata_err err = {0};
    ASSERT_EQ(wal_open(dir, 1, &w, &err), 0);
    _Atomic uint64_t acked = 0;
    pthread_t th[16];
    writer_arg a = {w, 200, &acked};
    for (int i = 0; i < 16; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, writer, &a), 0);
    for (int i = 0; i < 16; i++) {
        void *r;
        pthread_join(th[i], &r);
        ASSERT(r == NULL);
    }
    ASSERT_U64_EQ(atomic_load(&acked), 3200);
    wal_stats st;
    wal_get_stats(w, &st);
    ASSERT_U64_EQ(st.appends, 3200);
    /* Sixteen writers waiting together share most syncs. */
    ASSERT_LT(st.syncs, 3200 / 2);
    wal_close(w);
    seen s;
    wal_replay_report rep;
    replay_all(dir, 0, &s, &rep);
    ASSERT_U64_EQ(s.n, 3200);
    ASSERT_U64_EQ(s.sum, 3200);
}

/* The current (last) file of dir and its size. */
static void last_file(const char *dir, char *path, size_t cap)
{
    DIR *d = opendir(dir);
    ASSERT(d);
    char best[256] = "";
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".wal") && strcmp(e->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", e->d_name);
    closedir(d);
    snprintf(path, cap, "%s/%s", dir, best);
}

static void poke(const char *path, off_t off, const void *bytes, size_t n)
{
    int fd = open(path, O_WRONLY);
    ASSERT(fd >= 0);
    ASSERT_EQ(pwrite(fd, bytes, n, off), (ssize_t)n);
    close(fd);
}

TEST(torn_tail_is_cut_and_damage_before_it_refused)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "wal-torn");
    strcat(dir, "/wal");
    wal *w;
    strata_err err = {0};
    ASSERT_EQ(wal_open(dir, 1, &w, &err), 0);
    uint64_t lsn;
    uint8_t p[40] = {0};
    for (uint64_t i = 1; i <= 10; i++) {
        memcpy(p, &i, 8);
        ASSERT_EQ(wal_append(w, p, sizeof p, 1, &lsn, &err), 0);
    }
    ASSERT_EQ(wal_sync(w, lsn, &err), 0);
    wal_close(w);
    char path[4200];
    last_file(dir, path, sizeof path);
    /* Record 10 half written: a byte of its payload is wrong. */
    off_t rec10 = WAL_HEADER_BYTES + 9 * (WAL_RECORD_OVERHEAD + 40);
    poke(path, rec10 + 20, "\x55", 1);
    seen s;
    wal_replay_report rep;
    replay_all(dir, 0, &s, &rep);
    ASSERT_U64_EQ(s.n, 9);
    ASSERT_U64_EQ(rep.end_lsn, 10);
    ASSERT_GT(rep.torn_bytes, 0);
    ASSERT_U64_EQ(rep.torn_offset, (uint64_t)rec10);
    struct stat st;
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_EQ(st.st_size, rec10); /* cut, so the next replay ends cleanly there */
    replay_all(dir, 0, &s, &rep);
    ASSERT_U64_EQ(s.n, 9);
    ASSERT_U64_EQ(rep.torn_bytes, 0);
    /* A later file makes damage in this one corruption: acknowledged records follow. */
    ASSERT_EQ(wal_open(dir, 10, &w, &err), 0);
    ASSERT_EQ(wal_append(w, p, sizeof p, 1, &lsn, &err), 0);
    ASSERT_U64_EQ(lsn, 10);
    ASSERT_EQ(wal_sync(w, lsn, &err), 0);
    wal_close(w);
    poke(path, WAL_HEADER_BYTES + 3 * (WAL_RECORD_OVERHEAD + 40) + 18, "\x01", 1);
    seen s2 = {0};
    ASSERT_EQ(wal_replay(dir, 0, collect, &s2, &rep, &err), STRATA_ECORRUPT);
    ASSERT(strstr(err.msg, "damaged record 4") != NULL);
    ASSERT(strstr(err.msg, "acknowledged") != NULL);
}

TEST(failed_sync_fails_the_log)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "wal-fail");
    strcat(dir, "/wal");
    wal *w;
    strata_err err = {0};
    ASSERT_EQ(wal_open(dir, 1, &w, &err), 0);
    uint64_t lsn;
    ASSERT_EQ(wal_append(w, "abc", 3, 1, &lsn, &err), 0);
    fault_arm(FAULT_WAL_SYNC, 0, 1);
    ASSERT_EQ(wal_sync(w, lsn, &err), STRATA_EIO);
    ASSERT(strstr(err.msg, "fdatasync") != NULL);
    fault_reset();
    /* For good: the page cache can no longer be trusted. */
    ASSERT_EQ(wal_sync(w, lsn, &err), STRATA_EIO);
    ASSERT_EQ(wal_append(w, "abc", 3, 1, &lsn, &err), STRATA_EIO);
    wal_close(w);
}

/* ---- the log form of a batch ------------------------------------------------------- */

static void make_schema(strata_schema *s)
{
    schema_init(s);
    snprintf(s->name, sizeof s->name, "logged");
    const char *names[] = {"ts", "id", "country", "amount", "ok"};
    strata_type types[] = {STRATA_TIMESTAMP, STRATA_UINT64, STRATA_STRING, STRATA_FLOAT64, STRATA_BOOL};
    for (int i = 0; i < 5; i++) {
        snprintf(s->cols[i].name, sizeof s->cols[i].name, "%s", names[i]);
        s->cols[i].type = types[i];
    }
    s->ncols = 5;
    s->time_col = 0;
    s->memtable_max_rows = 3000;
    s->memtable_max_age_ms = 3600 * 1000;
    schema_apply_default_order(s);
}

static const char *countries[] = {"US", "DE", "", "Österreich"};
#define DAY_MS 86400000LL
#define T0 1704067200000LL /* 2024-01-01 */

/* Rows first..first+n-1: id k, ts spread over three days. */
static void fill(row_batch *b, uint64_t first, uint32_t n)
{
    row_batch_clear(b);
    for (uint32_t k = 0; k < n; k++) {
        uint64_t id = first + k;
        int64_t r = row_batch_add_row(b);
        ASSERT(r >= 0);
        b->i[0][r] = T0 + (int64_t)(id % 3) * DAY_MS + (int64_t)id;
        b->i[1][r] = (int64_t)id;
        const char *c = countries[id % 4];
        ASSERT_EQ(row_batch_set_str(b, 2, (uint32_t)r, c, (uint32_t)strlen(c)), 0);
        b->f[3][r] = (double)id / 4.0;
        b->i[4][r] = id % 2;
    }
}

TEST(batch_log_form_round_trips)
{
    strata_schema sc;
    make_schema(&sc);
    row_batch a, b;
    ASSERT_EQ(row_batch_init(&a, &sc, 0), 0);
    ASSERT_EQ(row_batch_init(&b, &sc, 0), 0);
    fill(&a, 5, 1000);
    bytebuf out = {0};
    ASSERT_EQ(row_batch_encode(&a, &out), 0);
    strata_err err = {0};
    ASSERT_EQ(row_batch_decode(&b, out.data, out.len, &err), 0);
    ASSERT_EQ(b.nrows, 1000);
    for (uint32_t r = 0; r < 1000; r++) {
        ASSERT_EQ(b.i[0][r], a.i[0][r]);
        ASSERT_EQ(b.i[1][r], a.i[1][r]);
        ASSERT_DBL_EQ(b.f[3][r], a.f[3][r]);
        ASSERT_EQ(b.i[4][r], a.i[4][r]);
        strata_str x = row_batch_get_str(&a, 2, r), y = row_batch_get_str(&b, 2, r);
        ASSERT(x.len == y.len && memcmp(x.ptr, y.ptr, x.len) == 0);
    }
    /* Cut short, one byte too many, or another table's columns: refused, no crash. */
    ASSERT_EQ(row_batch_decode(&b, out.data, out.len - 1, &err), STRATA_ECORRUPT);
    uint8_t *longer = malloc(out.len + 1);
    memcpy(longer, out.data, out.len);
    longer[out.len] = 0;
    ASSERT_EQ(row_batch_decode(&b, longer, out.len + 1, &err), STRATA_ECORRUPT);
    free(longer);
    out.data[8] = STRATA_INT64; /* the first column's type */
    ASSERT_EQ(row_batch_decode(&b, out.data, out.len, &err), STRATA_ECORRUPT);
    ASSERT(strstr(err.msg, "type") != NULL);
    for (size_t cut = 0; cut < 64; cut++)
        ASSERT_NE(row_batch_decode(&b, out.data, cut, &err), 0);
    buf_free(&out);
    row_batch_free(&a);
    row_batch_free(&b);
}

/* ---- logged appends of a table ------------------------------------------------------ */

typedef struct content {
    uint64_t rows, id_sum, id_xor;
} content;

static void table_content(strata_table *t, content *c)
{
    memset(c, 0, sizeof *c);
    table_snapshot *s = table_snapshot_acquire(t, INT64_MIN, INT64_MAX);
    ASSERT(s);
    segment_scratch sc = {0};
    strata_err err = {0};
    static int64_t iv[65536];
    for (uint32_t p = 0; p < s->nparts; p++) {
        snapshot_part *sp = &s->parts[p];
        for (uint32_t i = 0; i < sp->nsegs; i++)
            for (uint32_t g = 0; g < segment_ngranules(sp->segs[i]); g++) {
                uint32_t n = segment_granule_nrows(sp->segs[i], g);
                ASSERT_EQ(segment_read_ints(sp->segs[i], 1, g, iv, &sc, &err), 0);
                for (uint32_t k = 0; k < n; k++) {
                    c->id_sum += (uint64_t)iv[k];
                    c->id_xor ^= (uint64_t)iv[k] * 0x9E3779B97F4A7C15ull;
                }
                c->rows += n;
            }
        for (uint32_t i = 0; i < sp->nmts; i++)
            for (uint64_t r = 0; r < sp->mt_rows[i]; r++) {
                uint64_t id = (uint64_t)memtable_chunk_ints(sp->mts[i], 1, r / MEMTABLE_CHUNK_ROWS)[r % MEMTABLE_CHUNK_ROWS];
                c->id_sum += id;
                c->id_xor ^= id * 0x9E3779B97F4A7C15ull;
                c->rows++;
            }
    }
    segment_scratch_free(&sc);
    table_snapshot_release(s);
}

static void expect_ids(const content *c, uint64_t n)
{
    content want = {0};
    for (uint64_t id = 0; id < n; id++) {
        want.rows++;
        want.id_sum += id;
        want.id_xor ^= id * 0x9E3779B97F4A7C15ull;
    }
    ASSERT_U64_EQ(c->rows, want.rows);
    ASSERT_U64_EQ(c->id_sum, want.id_sum);
    ASSERT_U64_EQ(c->id_xor, want.id_xor);
}

static void append_logged(strata_table *t, row_batch *b, uint64_t first, uint32_t n)
{
    fill(b, first, n);
    uint64_t lsn;
    strata_err err = {0};
    ASSERT_EQ(table_append_logged(t, b, &lsn, &err), 0);
    ASSERT_GT(lsn, 0);
    ASSERT_EQ(table_log_sync(t, lsn, &err), 0);
}

static strata_table *reopen(const char *dir, const strata_schema *sc, strata_table *t)
{
    table_close(t);
    strata_err err = {0};
    strata_table *n;
    int rc = table_open(dir, sc, &n, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    ASSERT_EQ(rc, 0);
    return n;
}

TEST(logged_rows_come_back_exactly_once)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "wal-table");
    strata_schema sc;
    make_schema(&sc);
    strata_table *t;
    strata_err err = {0};
    ASSERT_EQ(table_open(dir, &sc, &t, &err), 0);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &sc, 0), 0);
    uint64_t id = 0;
    for (int i = 0; i < 50; i++, id += 37)
        append_logged(t, &b, id, 37);
    /* Closed without a flush: every row comes back from the log. */
    t = reopen(dir, &sc, t);
    ASSERT(strstr(table_recovery_note(t), "replayed 1850 rows") != NULL);
    content c;
    table_content(t, &c);
    expect_ids(&c, id);
    /* Flushed: the log is covered and nothing comes back twice. */
    ASSERT_EQ(table_flush(t, true, &err), 0);
    for (int i = 0; i < 20; i++, id += 101)
        append_logged(t, &b, id, 101);
    t = reopen(dir, &sc, t);
    table_content(t, &c);
    expect_ids(&c, id);
    /* Some partitions flushed, others not: memtables full at 3000 rows cut segments of
     * the busiest days while the rest stays in memory; each row lands once. */
    for (int i = 0; i < 40; i++, id += 250)
        append_logged(t, &b, id, 250);
    ASSERT_EQ(table_flush(t, false, &err), 0);
    table_stats st;
    table_get_stats(t, &st);
    ASSERT_GT(st.segments, 0);
    ASSERT_GT(st.memtable_rows, 0);
    t = reopen(dir, &sc, t);
    table_content(t, &c);
    expect_ids(&c, id);
    t = reopen(dir, &sc, t); /* a second restart replays the same records: still once */
    table_content(t, &c);
    expect_ids(&c, id);
    ASSERT_EQ(table_flush(t, true, &err), 0);
    t = reopen(dir, &sc, t);
    ASSERT_EQ(table_recovery_note(t)[0], 0);
    table_content(t, &c);
    expect_ids(&c, id);
    /* New rows after all that get numbers past every checkpoint: none is taken for a
     * replay and dropped. */
    append_logged(t, &b, id, 10);
    id += 10;
    table_content(t, &c);
    expect_ids(&c, id);
    t = reopen(dir, &sc, t);
    table_content(t, &c);
    expect_ids(&c, id);
    row_batch_free(&b);
    table_close(t);
}

TEST(torn_last_record_of_a_table_is_dropped_and_said)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "wal-table-torn");
    strata_schema sc;
    make_schema(&sc);
    strata_table *t;
    strata_err err = {0};
    ASSERT_EQ(table_open(dir, &sc, &t, &err), 0);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &sc, 0), 0);
    for (uint64_t id = 0; id < 100; id += 10)
        append_logged(t, &b, id, 10);
    /* An 11th record written but never synced, then torn by the crash. */
    fill(&b, 100, 10);
    uint64_t lsn;
    ASSERT_EQ(table_append_logged(t, &b, &lsn, &err), 0);
    table_close(t);
    char wdir[4200], path[4300];
    snprintf(wdir, sizeof wdir, "%s/%s/wal", dir, sc.name);
    last_file(wdir, path, sizeof path);
    struct stat st;
    ASSERT_EQ(stat(path, &st), 0);
    /* Find the end of the records: the last nonzero byte. */
    int fd = open(path, O_RDWR);
    ASSERT(fd >= 0);
    uint8_t *data = malloc((size_t)st.st_size);
    ASSERT_EQ(pread(fd, data, (size_t)st.st_size, 0), st.st_size);
    off_t end = st.st_size;
    while (end > 0 && data[end - 1] == 0)
        end--;
    free(data);
    ASSERT_EQ(pwrite(fd, "\xff\xfe\xfd\xfc", 4, end - 12), 4); /* into its payload */
    close(fd);
    ASSERT_EQ(table_open(dir, &sc, &t, &err), 0);
    ASSERT(strstr(table_recovery_note(t), "torn") != NULL);
    content c;
    table_content(t, &c);
    expect_ids(&c, 100);
    /* And the log goes on past the torn record. */
    append_logged(t, &b, 100, 10);
    t = reopen(dir, &sc, t);
    table_content(t, &c);
    expect_ids(&c, 110);
    row_batch_free(&b);
    table_close(t);
}

TEST_LIST(T(records_come_back_in_order), T(large_records_start_new_files_and_covered_files_go),
          T(group_commit_shares_syncs), T(torn_tail_is_cut_and_damage_before_it_refused),
          T(failed_sync_fails_the_log), T(batch_log_form_round_trips),
          T(logged_rows_come_back_exactly_once), T(torn_last_record_of_a_table_is_dropped_and_said))
