/*
 * test_table.c — memtable, manifest and table: appends, concurrent readers, flush to
 * segments, atomic manifest commits with checkpoints, recovery after restarts and after
 * leftovers of interrupted flushes, snapshots.
 */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/fault.h"
#include "engine/manifest.h"
#include "engine/memtable.h"
#include "engine/table.h"
#include "test.h"

static void make_schema(strata_schema *s)
{
    schema_init(s);
    snprintf(s->name, sizeof s->name, "events");
    const char *names[] = {"ts", "id", "country", "amount", "ok", "small"};
    strata_type types[] = {STRATA_TIMESTAMP, STRATA_UINT64, STRATA_STRING,
                           STRATA_FLOAT64,   STRATA_BOOL,   STRATA_INT32};
    for (int i = 0; i < 6; i++) {
        snprintf(s->cols[i].name, sizeof s->cols[i].name, "%s", names[i]);
        s->cols[i].type = types[i];
    }
    s->ncols = 6;
    s->time_col = 0;
    s->memtable_max_rows = 5000;
    schema_apply_default_order(s);
}

static const char *countries[] = {"US", "DE", "FR", "", "JP", "BR"};

/* Fills b with n rows: row k has ts = t0 + k*step, id = k, country = countries[k % 6]... */
static void fill(row_batch *b, uint64_t first, uint32_t n, int64_t t0, int64_t step)
{
    row_batch_clear(b);
    for (uint32_t k = 0; k < n; k++) {
        uint64_t id = first + k;
        int64_t r = row_batch_add_row(b);
        ASSERT(r >= 0);
        b->i[0][r] = t0 + (int64_t)id * step;
        b->i[1][r] = (int64_t)(id * 2654435761u);
        const char *c = countries[id % 6];
        ASSERT_EQ(row_batch_set_str(b, 2, (uint32_t)r, c, (uint32_t)strlen(c)), 0);
        b->f[3][r] = (double)(id % 1000) / 100.0;
        b->i[4][r] = id % 3 == 0;
        b->i[5][r] = -(int64_t)(id % 77);
    }
}

typedef struct sums {
    uint64_t rows;
    uint64_t id_xor;
    double amount;
    uint64_t per_country[6];
} sums;

static int country_index(strata_str s)
{
    for (int i = 0; i < 6; i++)
        if (s.len == strlen(countries[i]) && memcmp(s.ptr, countries[i], s.len) == 0)
            return i;
    return -1;
}

/* Sums every row visible in a snapshot (segments and memtables). */
static void sum_snapshot(strata_table *t, sums *out)
{
    memset(out, 0, sizeof *out);
    table_snapshot *s = table_snapshot_acquire(t, INT64_MIN, INT64_MAX);
    ASSERT(s);
    segment_scratch sc = {0};
    strata_err err = {0};
    int64_t iv[8192];
    double fv[8192];
    uint32_t cv[8192];
    for (uint32_t p = 0; p < s->nparts; p++) {
        snapshot_part *sp = &s->parts[p];
        for (uint32_t i = 0; i < sp->nsegs; i++) {
            segment *seg = sp->segs[i];
            for (uint32_t g = 0; g < segment_ngranules(seg); g++) {
                uint32_t n = segment_granule_nrows(seg, g);
                ASSERT_EQ(segment_read_ints(seg, 1, g, iv, &sc, &err), 0);
                for (uint32_t k = 0; k < n; k++)
                    out->id_xor ^= (uint64_t)iv[k];
                ASSERT_EQ(segment_read_floats(seg, 3, g, fv, &sc, &err), 0);
                for (uint32_t k = 0; k < n; k++)
                    out->amount += fv[k];
                ASSERT_EQ(segment_read_codes(seg, 2, g, cv, &sc, &err), 0);
                for (uint32_t k = 0; k < n; k++) {
                    int ci = country_index(segment_dict_value(seg, 2, cv[k]));
                    ASSERT(ci >= 0);
                    out->per_country[ci]++;
                }
                out->rows += n;
            }
        }
        for (uint32_t i = 0; i < sp->nmts; i++) {
            memtable *mt = sp->mts[i];
            for (uint64_t r = 0; r < sp->mt_rows[i]; r++) {
                uint64_t ch = r / MEMTABLE_CHUNK_ROWS, k = r % MEMTABLE_CHUNK_ROWS;
                out->id_xor ^= (uint64_t)memtable_chunk_ints(mt, 1, ch)[k];
                out->amount += memtable_chunk_floats(mt, 3, ch)[k];
                int ci = country_index(memtable_dict_value(mt, 2, memtable_chunk_codes(mt, 2, ch)[k]));
                ASSERT(ci >= 0);
                out->per_country[ci]++;
                out->rows++;
            }
        }
    }
    segment_scratch_free(&sc);
    table_snapshot_release(s);
}

static void expected_sums(uint64_t n, sums *out)
{
    memset(out, 0, sizeof *out);
    for (uint64_t id = 0; id < n; id++) {
        out->rows++;
        out->id_xor ^= id * 2654435761u;
        out->amount += (double)(id % 1000) / 100.0;
        out->per_country[id % 6]++;
    }
}

static void assert_sums_eq(const sums *a, const sums *b)
{
    ASSERT_U64_EQ(a->rows, b->rows);
    ASSERT_U64_EQ(a->id_xor, b->id_xor);
    ASSERT(fabs(a->amount - b->amount) < 1e-6 * (1 + fabs(b->amount)));
    for (int i = 0; i < 6; i++)
        ASSERT_U64_EQ(a->per_country[i], b->per_country[i]);
}

TEST(manifest_round_trip_and_damage)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "manifest");
    manifest m = {0};
    strata_err err = {0};
    ASSERT_EQ(manifest_read(dir, &m, &err), STRATA_ENOTFOUND);
    m.generation = 7;
    for (uint64_t i = 1; i <= 5; i++) {
        manifest_segment s = {i, i * 10, i * 100, (int64_t)i, (int64_t)i + 5, (uint32_t)(i % 2)};
        ASSERT_EQ(manifest_add_segment(&m, &s), 0);
    }
    ASSERT_EQ(manifest_set_checkpoint(&m, "orders", 3, 1234), 0);
    ASSERT_EQ(manifest_set_checkpoint(&m, "orders", 0, 99), 0);
    ASSERT_EQ(manifest_set_checkpoint(&m, "orders", 3, 1500), 0);
    ASSERT_EQ(manifest_remove_segment(&m, 2), 0);
    ASSERT_EQ(manifest_remove_segment(&m, 2), STRATA_ENOTFOUND);
    ASSERT_EQ(manifest_write(dir, &m, NULL, &err), 0);
    manifest r;
    ASSERT_EQ(manifest_read(dir, &r, &err), 0);
    ASSERT_U64_EQ(r.generation, 7);
    ASSERT_EQ(r.nsegs, 4);
    ASSERT_U64_EQ(r.segs[1].id, 3);
    ASSERT_U64_EQ(r.segs[3].rows, 50);
    ASSERT_EQ(manifest_get_checkpoint(&r, "orders", 3), 1500);
    ASSERT_EQ(manifest_get_checkpoint(&r, "orders", 0), 99);
    ASSERT_EQ(manifest_get_checkpoint(&r, "orders", 1), -1);
    manifest_free(&r);

    /* Every flipped byte and every truncation is refused, never accepted wrong. */
    char path[4200];
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    FILE *f = fopen(path, "rb");
    ASSERT(f);
    unsigned char orig[4096];
    size_t len = fread(orig, 1, sizeof orig, f);
    fclose(f);
    for (size_t cut = 0; cut <= len; cut++) {
        for (int flip = 0; flip < 2; flip++) {
            if (cut == len && !flip)
                continue;
            unsigned char copy[4096];
            memcpy(copy, orig, len);
            size_t n = flip ? len : cut;
            if (flip && cut < len)
                copy[cut] ^= 0x10;
            else if (flip)
                continue;
            f = fopen(path, "wb");
            fwrite(copy, 1, n, f);
            fclose(f);
            int rc = manifest_read(dir, &r, &err);
            ASSERT(rc == STRATA_ECORRUPT || rc == STRATA_EVERSION);
            ASSERT_CONTAINS(err.msg, "MANIFEST");
        }
    }
    manifest_free(&m);
}

TEST(memtable_append_and_read)
{
    strata_schema s;
    make_schema(&s);
    strata_err err = {0};
    memtable *mt = memtable_create(&s, 0, 20000, &err);
    ASSERT(mt);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &s, 0), 0);
    fill(&b, 0, 12000, 1000, 1);
    ASSERT_EQ(memtable_append(mt, &b, NULL, b.nrows, &err), 0);
    ASSERT_EQ(memtable_nrows(mt), 12000);
    ASSERT_EQ(memtable_min_time(mt), 1000);
    ASSERT_EQ(memtable_max_time(mt), 1000 + 11999);
    for (uint64_t r = 0; r < 12000; r += 997) {
        uint64_t ch = r / MEMTABLE_CHUNK_ROWS, k = r % MEMTABLE_CHUNK_ROWS;
        ASSERT_EQ(memtable_chunk_ints(mt, 0, ch)[k], 1000 + (int64_t)r);
        strata_str c = memtable_dict_value(mt, 2, memtable_chunk_codes(mt, 2, ch)[k]);
        ASSERT_EQ(c.len, strlen(countries[r % 6]));
        ASSERT_EQ(memtable_chunk_ints(mt, 5, ch)[k], -(int64_t)(r % 77));
    }
    /* Past max_rows: refused whole. */
    fill(&b, 12000, 9000, 1000, 1);
    ASSERT_EQ(memtable_append(mt, &b, NULL, b.nrows, &err), STRATA_EFULL);
    ASSERT_EQ(memtable_nrows(mt), 12000);
    ASSERT(memtable_bytes(mt) > 12000 * 8 * 5);
    row_batch_free(&b);
    memtable_unref(mt);
}

typedef struct reader_arg {
    memtable *mt;
    _Atomic int stop;
    _Atomic uint64_t checks;
    int bad;
} reader_arg;

static void *reader_main(void *p)
{
    reader_arg *a = p;
    while (!atomic_load(&a->stop)) {
        uint64_t n = memtable_nrows(a->mt);
        for (uint64_t r = n > 300 ? n - 300 : 0; r < n; r++) {
            uint64_t ch = r / MEMTABLE_CHUNK_ROWS, k = r % MEMTABLE_CHUNK_ROWS;
            if (memtable_chunk_ints(a->mt, 0, ch)[k] != (int64_t)r)
                a->bad++;
            strata_str c = memtable_dict_value(a->mt, 2, memtable_chunk_codes(a->mt, 2, ch)[k]);
            if (c.len != strlen(countries[r % 6]) || memcmp(c.ptr, countries[r % 6], c.len) != 0)
                a->bad++;
            a->checks++;
        }
    }
    return NULL;
}

TEST(memtable_readers_see_consistent_prefix_while_writer_appends)
{
    strata_schema s;
    make_schema(&s);
    strata_err err = {0};
    memtable *mt = memtable_create(&s, 0, 400000, &err);
    ASSERT(mt);
    reader_arg a = {.mt = mt};
    pthread_t th;
    pthread_create(&th, NULL, reader_main, &a);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &s, 0), 0);
    for (uint64_t first = 0; first < 400000; first += 1000) {
        fill(&b, first, 1000, 0, 1);
        ASSERT_EQ(memtable_append(mt, &b, NULL, b.nrows, &err), 0);
        /* Halfway, the reader must have had its turn (a loaded machine may not have run
         * it yet): it checks rows while the other half is appended. */
        for (int waited = 0; first == 200000 && atomic_load(&a.checks) == 0 && waited < 20000; waited++)
            usleep(1000);
    }
    atomic_store(&a.stop, 1);
    pthread_join(th, NULL);
    ASSERT_EQ(a.bad, 0);
    ASSERT_GT(a.checks, 0);
    row_batch_free(&b);
    memtable_unref(mt);
}

TEST(table_flush_reopen_same_rows)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "table");
    strata_schema s;
    make_schema(&s);
    strata_err err = {0};
    strata_table *t;
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &s, 0), 0);
    /* 3 days of data, 20k rows: spans partitions and memtable size limits. */
    int64_t t0 = 1704067200000; /* 2024-01-01 */
    const uint64_t total = 20000;
    for (uint64_t first = 0; first < total; first += 2500) {
        fill(&b, first, 2500, t0, 13000);
        ASSERT_EQ(table_append(t, &b, &err), 0);
    }
    sums want, got;
    expected_sums(total, &want);
    sum_snapshot(t, &got); /* all rows visible before any flush */
    assert_sums_eq(&got, &want);
    ASSERT_EQ(table_note_checkpoint(t, "topic-a", 0, 777), 0);
    ASSERT_EQ(table_flush(t, true, &err), 0);
    table_stats st;
    table_get_stats(t, &st);
    ASSERT_EQ(st.memtable_rows, 0);
    ASSERT_U64_EQ(st.segment_rows, total);
    ASSERT_EQ(st.partitions, 4); /* 20000 * 13 s = 3.0 days from midnight */
    sum_snapshot(t, &got);
    assert_sums_eq(&got, &want);
    table_close(t);

    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    sum_snapshot(t, &got);
    assert_sums_eq(&got, &want);
    table_get_stats(t, &st);
    ASSERT_GE(st.segments, 4);
    /* The checkpoint rode along with the commit. */
    char pdir[4200];
    snprintf(pdir, sizeof pdir, "%s/events/raw/2024-01-01", dir);
    manifest m;
    ASSERT_EQ(manifest_read(pdir, &m, &err), 0);
    ASSERT_EQ(manifest_get_checkpoint(&m, "topic-a", 0), 777);
    manifest_free(&m);

    /* Segments are sorted by (hour of ts, then order_by: country, ts). */
    table_snapshot *snap = table_snapshot_acquire(t, INT64_MIN, INT64_MAX);
    segment *seg = snap->parts[0].segs[0];
    segment_scratch sc = {0};
    uint32_t codes[8192];
    int64_t ts[8192];
    uint32_t prev_code = 0;
    int64_t prev_ts = INT64_MIN, prev_hour = INT64_MIN;
    uint32_t hours = 0;
    for (uint32_t g = 0; g < segment_ngranules(seg); g++) {
        ASSERT_EQ(segment_read_codes(seg, 2, g, codes, &sc, &err), 0);
        ASSERT_EQ(segment_read_ints(seg, 0, g, ts, &sc, &err), 0);
        for (uint32_t k = 0; k < segment_granule_nrows(seg, g); k++) {
            int64_t hour = segment_sort_bucket(ts[k]);
            ASSERT(hour >= prev_hour);
            if (hour > prev_hour) {
                hours++;
                prev_code = 0;
                prev_ts = INT64_MIN;
            }
            ASSERT(codes[k] >= prev_code);
            if (codes[k] == prev_code)
                ASSERT(ts[k] >= prev_ts);
            prev_hour = hour;
            prev_code = codes[k];
            prev_ts = ts[k];
        }
    }
    /* a row every 13 s: every hour of the segment's span is there, each one run */
    ASSERT_GE(hours, 2);
    ASSERT_EQ(hours, segment_sort_bucket(segment_max_time(seg)) -
                         segment_sort_bucket(segment_min_time(seg)) + 1);
    ASSERT_EQ(segment_verify(seg, &err), 0);
    segment_scratch_free(&sc);
    table_snapshot_release(snap);
    table_close(t);
    row_batch_free(&b);
}

TEST(recovery_removes_uncommitted_files_and_refuses_missing_segments)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "recover");
    strata_schema s;
    make_schema(&s);
    strata_err err = {0};
    strata_table *t;
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &s, 0), 0);
    fill(&b, 0, 3000, 1704067200000, 1000);
    ASSERT_EQ(table_append(t, &b, &err), 0);
    ASSERT_EQ(table_flush(t, true, &err), 0);
    table_close(t);

    /* Leftovers of a flush that crashed before its manifest commit. */
    char pdir[4200], p1[4300], p2[4300];
    snprintf(pdir, sizeof pdir, "%s/events/raw/2024-01-01", dir);
    snprintf(p1, sizeof p1, "%s/00000000000000ff.seg", pdir);
    snprintf(p2, sizeof p2, "%s/MANIFEST.tmp", pdir);
    FILE *f = fopen(p1, "w");
    fputs("half a segment", f);
    fclose(f);
    f = fopen(p2, "w");
    fputs("half a manifest", f);
    fclose(f);
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    ASSERT(access(p1, F_OK) != 0);
    ASSERT(access(p2, F_OK) != 0);
    sums want, got;
    expected_sums(3000, &want);
    sum_snapshot(t, &got);
    assert_sums_eq(&got, &want);
    /* Appending after recovery never reuses a committed segment id. */
    fill(&b, 3000, 10, 1704067200000, 1000);
    ASSERT_EQ(table_append(t, &b, &err), 0);
    ASSERT_EQ(table_flush(t, true, &err), 0);
    table_close(t);

    /* A committed segment that vanished: open fails and names it. */
    DIR *d = opendir(pdir);
    struct dirent *de;
    char victim[4600] = "";
    while ((de = readdir(d)) != NULL)
        if (strstr(de->d_name, ".seg"))
            snprintf(victim, sizeof victim, "%s/%s", pdir, de->d_name);
    closedir(d);
    ASSERT(victim[0]);
    ASSERT_EQ(unlink(victim), 0);
    ASSERT(table_open(dir, &s, &t, &err) != 0);
    ASSERT_CONTAINS(err.msg, strrchr(victim, '/') + 1);
    row_batch_free(&b);
}

TEST(memory_budget_refuses_then_flush_frees)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "budget");
    strata_schema s;
    make_schema(&s);
    s.memtable_max_rows = 1u << 20;
    s.memtable_max_bytes = 1u << 16;
    s.memory_budget_bytes = 1u << 16;
    strata_err err = {0};
    strata_table *t;
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &s, 0), 0);
    fill(&b, 0, 5000, 1704067200000, 10);
    ASSERT_EQ(table_append(t, &b, &err), 0);
    fill(&b, 5000, 5000, 1704067200000, 10);
    ASSERT_EQ(table_append(t, &b, &err), STRATA_EFULL);
    ASSERT_CONTAINS(err.msg, "budget");
    ASSERT_EQ(table_flush(t, true, &err), 0);
    ASSERT_EQ(table_append(t, &b, &err), 0);
    ASSERT_EQ(table_flush(t, true, &err), 0);
    sums want, got;
    expected_sums(10000, &want);
    sum_snapshot(t, &got);
    assert_sums_eq(&got, &want);
    table_close(t);
    row_batch_free(&b);
}

TEST(append_refuses_times_outside_supported_range)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "range");
    strata_schema s;
    make_schema(&s);
    strata_err err = {0};
    strata_table *t;
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &s, 0), 0);
    fill(&b, 0, 10, 1704067200000, 1);
    b.i[0][7] = STRATA_TS_MAX + 1; /* year 10000: no four-digit partition name */
    ASSERT_EQ(table_append(t, &b, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "row 7");
    b.i[0][7] = STRATA_TS_MIN;
    b.i[0][8] = STRATA_TS_MAX;
    ASSERT_EQ(table_append(t, &b, &err), 0);
    ASSERT_EQ(table_flush(t, true, &err), 0);
    table_close(t);
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0); /* both extreme partitions reopen */
    sums got;
    sum_snapshot(t, &got);
    ASSERT_EQ(got.rows, 10);
    table_close(t);
    row_batch_free(&b);
}

/* ---- failures part way: every one found by making a chosen call fail (engine/fault.h) -- */

/* A fresh table of make_schema's kind in its own directory, and a batch for it. */
typedef struct fixture {
    char dir[4096];
    strata_schema s;
    strata_table *t;
    row_batch b;
    strata_err err;
} fixture;

static void fixture_open(fixture *f, const char *name, uint64_t memtable_rows)
{
    memset(f, 0, sizeof *f);
    test_tmpdir(f->dir, sizeof f->dir, name);
    make_schema(&f->s);
    if (memtable_rows)
        f->s.memtable_max_rows = memtable_rows;
    ASSERT_EQ(table_open(f->dir, &f->s, &f->t, &f->err), 0);
    ASSERT_EQ(row_batch_init(&f->b, &f->s, 0), 0);
}

static void fixture_reopen(fixture *f)
{
    table_close(f->t);
    ASSERT_EQ(table_open(f->dir, &f->s, &f->t, &f->err), 0);
}

static void fixture_close(fixture *f)
{
    table_close(f->t);
    row_batch_free(&f->b);
}

/* B8: an append that runs out of memory part way (a second partition, a fresh memtable,
 * a string dictionary) lands nothing and shows nothing; retried, it lands once. Every
 * allocation the append makes is failed in turn. */
TEST(append_out_of_memory_part_way_lands_nothing)
{
    fixture f;
    fixture_open(&f, "oom_append", 3000);
    strata_table *t = f.t;
    row_batch *b = &f.b;
    strata_err err = {0};
    int64_t t0 = 1704067200000;
    fill(b, 0, 1000, t0, 20000);
    ASSERT_EQ(table_append(t, b, &err), 0);
    fill(b, 1000, 11000, t0, 20000); /* 12000 rows x 20 s: three day partitions */
    sums want, got;
    expected_sums(1000, &want);
    int failures = 0;
    for (uint64_t skip = 0;; skip++) {
        fault_arm(FAULT_MEMTABLE_ALLOC, skip, 1);
        int rc = table_append(t, b, &err);
        bool hit = fault_failures(FAULT_MEMTABLE_ALLOC) > 0;
        fault_reset();
        if (!hit) {
            ASSERT_EQ(rc, 0);
            break;
        }
        ASSERT_EQ(rc, STRATA_ENOMEM);
        failures++;
        sum_snapshot(t, &got);
        assert_sums_eq(&got, &want); /* nothing of the failed batch is visible */
        table_stats st;
        table_get_stats(t, &st);
        ASSERT_U64_EQ(st.memtable_rows + st.segment_rows, 1000);
    }
    ASSERT_GE(failures, 10); /* the fault met allocations in every partition */
    expected_sums(12000, &want);
    sum_snapshot(t, &got);
    assert_sums_eq(&got, &want);
    ASSERT_EQ(table_flush(t, true, &err), 0);
    fixture_reopen(&f);
    t = f.t;
    sum_snapshot(t, &got);
    assert_sums_eq(&got, &want);
    fixture_close(&f);
}

/* B8 for sourced appends (Kafka): a failed batch moves no resume point, and the retry and
 * a later replay of the whole source land every row once. */
TEST(sourced_append_out_of_memory_moves_no_offsets)
{
    fixture f;
    fixture_open(&f, "oom_sourced", 3000);
    strata_table *t = f.t;
    row_batch *b = &f.b;
    strata_err err = {0};
    int64_t t0 = 1704067200000, offs[8000];
    for (int i = 0; i < 8000; i++)
        offs[i] = i;
    fill(b, 0, 8000, t0, 30000);
    uint64_t skipped = 0;
    for (uint64_t skip = 0;; skip++) {
        fault_arm(FAULT_MEMTABLE_ALLOC, skip, 1);
        int rc = table_append_sourced(t, b, "kafka:o", 3, offs, 8000, &skipped, &err);
        bool hit = fault_failures(FAULT_MEMTABLE_ALLOC) > 0;
        fault_reset();
        if (!hit) {
            ASSERT_EQ(rc, 0);
            break;
        }
        ASSERT_EQ(rc, STRATA_ENOMEM);
        ASSERT_EQ(table_flush(t, true, &err), 0); /* commits whatever a failure left */
        ASSERT_EQ(table_source_resume(t, "kafka:o", 3), -1);
        table_stats st;
        table_get_stats(t, &st);
        ASSERT_U64_EQ(st.memtable_rows + st.segment_rows, 0);
    }
    ASSERT_EQ(skipped, 0);
    ASSERT_EQ(table_flush(t, true, &err), 0);
    ASSERT_EQ(table_source_resume(t, "kafka:o", 3), 8000);
    fixture_reopen(&f);
    t = f.t;
    ASSERT_EQ(table_append_sourced(t, b, "kafka:o", 3, offs, 8000, &skipped, &err), 0);
    ASSERT_EQ(skipped, 8000); /* a replay from offset 0 lands nothing twice */
    sums want, got;
    expected_sums(8000, &want);
    sum_snapshot(t, &got);
    assert_sums_eq(&got, &want);
    fixture_close(&f);
}

/* B4: the directory fsync after a manifest rename fails. The commit has happened, so the
 * segment stays (recovery needs it), the rows are served once, and the table refuses
 * writes with the reason until it is reopened. */
TEST(commit_whose_directory_fsync_fails_keeps_its_segment)
{
    fixture f;
    fixture_open(&f, "fsync_commit", 0);
    strata_table *t = f.t;
    row_batch *b = &f.b;
    strata_err err = {0};
    fill(b, 0, 3000, 1704067200000, 1000);
    ASSERT_EQ(table_append(t, b, &err), 0);
    fault_arm(FAULT_FSYNC_DIR, 0, 1); /* the flush's only directory fsync: after the rename */
    ASSERT_EQ(table_flush(t, true, &err), STRATA_EIO);
    ASSERT_EQ(fault_failures(FAULT_FSYNC_DIR), 1);
    fault_reset();
    ASSERT_CONTAINS(err.msg, "fsync directory after the commit");
    char why[512];
    ASSERT(table_failure(t, why, sizeof why));
    ASSERT_CONTAINS(why, "fsync");
    sums want, got;
    expected_sums(3000, &want);
    sum_snapshot(t, &got);
    assert_sums_eq(&got, &want); /* once: the segment replaced the memtable */
    fill(b, 3000, 10, 1704067200000, 1000);
    ASSERT_EQ(table_append(t, b, &err), STRATA_EIO);
    ASSERT_CONTAINS(err.msg, "refuses writes");
    ASSERT_EQ(table_flush(t, true, &err), STRATA_EIO);
    fixture_reopen(&f);
    t = f.t; /* the committed segment is there */
    sum_snapshot(t, &got);
    assert_sums_eq(&got, &want);
    ASSERT(!table_failure(t, why, sizeof why));
    fixture_close(&f);
}

/* B5: a new partition directory that cannot be made durable takes no rows. */
TEST(partition_directory_fsync_failure_appends_nothing)
{
    fixture f;
    fixture_open(&f, "fsync_part", 0);
    strata_table *t = f.t;
    row_batch *b = &f.b;
    strata_err err = {0};
    fill(b, 0, 2000, 1704067200000, 60000); /* two day partitions */
    fault_arm(FAULT_FSYNC_DIR, 1, 1);          /* the second new partition's */
    ASSERT_EQ(table_append(t, b, &err), STRATA_EIO);
    ASSERT_EQ(fault_failures(FAULT_FSYNC_DIR), 1);
    fault_reset();
    ASSERT_CONTAINS(err.msg, "fsync directory");
    table_stats st;
    table_get_stats(t, &st);
    ASSERT_EQ(st.memtable_rows, 0);
    ASSERT_EQ(table_append(t, b, &err), 0);
    ASSERT_EQ(table_flush(t, true, &err), 0);
    sums want, got;
    expected_sums(2000, &want);
    sum_snapshot(t, &got);
    assert_sums_eq(&got, &want);
    fixture_close(&f);
}

/* A flush that cannot write its segment (the directory went away) keeps its rows in
 * memory, is recorded (count, message, run length) and retried; the first flush that
 * writes ends the run. The table does not fail: nothing committed is in doubt. */
TEST(failing_flushes_are_recorded_until_one_works)
{
    fixture f;
    fixture_open(&f, "flush_trouble", 0);
    strata_table *t = f.t;
    row_batch *b = &f.b;
    strata_err err = {0};
    table_flush_record fr;
    ASSERT_EQ(table_flush_trouble(t, &fr), 0);
    ASSERT_EQ(fr.failures, 0);
    fill(b, 0, 1000, 1704067200000, 1000);
    ASSERT_EQ(table_append(t, b, &err), 0);
    char raw[4200], away[4300];
    snprintf(raw, sizeof raw, "%s/%s/raw", f.dir, f.s.name);
    snprintf(away, sizeof away, "%s.away", raw);
    char why[512];
    ASSERT(!table_storage_missing(t, why, sizeof why));
    ASSERT_EQ(rename(raw, away), 0);
    ASSERT(table_storage_missing(t, why, sizeof why));
    ASSERT_CONTAINS(why, "raw: missing");
    ASSERT(table_flush(t, true, &err) != 0);
    ASSERT(table_flush(t, false, &err) != 0);
    ASSERT_EQ(table_flush_trouble(t, &fr), 2);
    ASSERT_EQ(fr.failures, 2);
    ASSERT_CONTAINS(fr.message, "No such file");
    ASSERT(!table_failure(t, why, sizeof why));
    sums want, got;
    expected_sums(1000, &want);
    sum_snapshot(t, &got);
    assert_sums_eq(&got, &want); /* the rows are still served, from memory */
    ASSERT_EQ(rename(away, raw), 0);
    ASSERT_EQ(table_flush(t, false, &err), 0);
    ASSERT_EQ(table_flush_trouble(t, &fr), 0);
    ASSERT_EQ(fr.failures, 2); /* since open */
    ASSERT_EQ(fr.message[0], 0);
    ASSERT_EQ(table_flush(t, true, &err), 0); /* nothing to write: not a success that counts */
    fixture_reopen(&f);
    sum_snapshot(f.t, &got);
    assert_sums_eq(&got, &want);
    fixture_close(&f);
}

/* B3 (engine side): once a drop has paused and marked the table, nothing more is written
 * through it; reads go on. A pause that ends without a drop leaves it writable. */
TEST(dropped_table_refuses_writes_but_reads)
{
    fixture f;
    fixture_open(&f, "dropped", 0);
    strata_table *t = f.t;
    row_batch *b = &f.b;
    strata_err err = {0};
    fill(b, 0, 100, 1704067200000, 1000);
    ASSERT_EQ(table_append(t, b, &err), 0);
    table_writes_pause(t);
    table_writes_resume(t, false);
    ASSERT_EQ(table_flush(t, true, &err), 0);
    fill(b, 100, 100, 1704067200000, 1000);
    ASSERT_EQ(table_append(t, b, &err), 0);
    table_writes_pause(t);
    table_writes_resume(t, true);
    fill(b, 200, 100, 1704067200000, 1000);
    ASSERT_EQ(table_append(t, b, &err), STRATA_ENOTFOUND);
    ASSERT_CONTAINS(err.msg, "was dropped");
    ASSERT_EQ(table_flush(t, true, &err), STRATA_ENOTFOUND);
    sums want, got;
    expected_sums(200, &want);
    sum_snapshot(t, &got);
    assert_sums_eq(&got, &want);
    fixture_close(&f);
}

/* Found by a new user: a partition whose MANIFEST was lost had its committed segments
 * deleted at the next open, as if a flush had crashed before its first commit. A
 * partition now gets its MANIFEST when it is made, and segments without one refuse the
 * open, untouched. */
TEST(lost_manifest_refuses_the_open_and_deletes_nothing)
{
    fixture f;
    fixture_open(&f, "lostman", 0);
    strata_table *t = f.t;
    row_batch *b = &f.b;
    strata_err err = {0};
    fill(b, 0, 2000, 1704067200000, 1000);
    ASSERT_EQ(table_append(t, b, &err), 0);
    char pdir[4200], path[4300];
    snprintf(pdir, sizeof pdir, "%s/events/raw/2024-01-01", f.dir);
    snprintf(path, sizeof path, "%s/MANIFEST", pdir);
    ASSERT_EQ(access(path, F_OK), 0); /* there before any flush */
    ASSERT_EQ(table_flush(t, true, &err), 0);
    table_close(t);
    ASSERT_EQ(unlink(path), 0);
    ASSERT_EQ(table_open(f.dir, &f.s, &t, &err), STRATA_ECORRUPT);
    ASSERT_CONTAINS(err.msg, "MANIFEST is missing but 1 segment file(s)");
    snprintf(path, sizeof path, "%s/0000000000000001.seg", pdir);
    ASSERT_EQ(access(path, F_OK), 0); /* nothing deleted */
    /* A partition directory with neither (made and never flushed) still opens. */
    snprintf(path, sizeof path, "%s/events/raw/2024-02-01", f.dir);
    ASSERT_EQ(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/0000000000000001.seg", pdir);
    ASSERT_EQ(unlink(path), 0);
    ASSERT_EQ(table_open(f.dir, &f.s, &f.t, &err), 0);
    fixture_close(&f);
}

TEST(storage_lists_partitions_and_segments)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "table_storage");
    strata_schema s;
    make_schema(&s);
    strata_err err = {0};
    strata_table *t;
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &s, 0), 0);
    int64_t t0 = 1704067200000; /* 2024-01-01; 3000 rows a minute apart: 2024-01-01 .. 03 */
    fill(&b, 0, 3000, t0, 60000);
    ASSERT_EQ(table_append(t, &b, &err), 0);
    ASSERT_EQ(table_flush(t, true, &err), 0);
    fill(&b, 3000, 10, t0, 0); /* 10 rows at t0, left in memory */
    ASSERT_EQ(table_append(t, &b, &err), 0);
    table_storage st;
    ASSERT_EQ(table_list_segments(t, &st, &err), 0);
    ASSERT_EQ(st.nparts, 3);
    ASSERT_STR_EQ(st.parts[0].name, "2024-01-01");
    ASSERT_STR_EQ(st.parts[2].name, "2024-01-03");
    uint64_t rows = 0, bytes = 0;
    for (size_t i = 0; i < st.nparts; i++) {
        ASSERT_EQ(st.parts[i].nsegs, 1);
        const table_storage_seg *g = &st.segs[st.parts[i].first_seg];
        ASSERT_EQ(g->level, 0);
        ASSERT_U64_EQ(g->rows, st.parts[i].rows);
        ASSERT(g->min_time >= st.parts[i].key && g->max_time < st.parts[i].key + 86400000);
        rows += st.parts[i].rows;
        bytes += st.parts[i].bytes;
    }
    ASSERT_U64_EQ(rows, 3000);
    ASSERT_EQ(st.parts[0].memtable_rows, 10);
    table_stats ts;
    table_get_stats(t, &ts);
    ASSERT_U64_EQ(bytes, ts.segment_bytes);
    table_storage_free(&st);
    row_batch_free(&b);
    table_close(t);
}

TEST_LIST(T(manifest_round_trip_and_damage), T(append_refuses_times_outside_supported_range), T(memtable_append_and_read),
          T(memtable_readers_see_consistent_prefix_while_writer_appends),
          T(table_flush_reopen_same_rows),
          T(recovery_removes_uncommitted_files_and_refuses_missing_segments),
          T(memory_budget_refuses_then_flush_frees), T(append_out_of_memory_part_way_lands_nothing),
          T(sourced_append_out_of_memory_moves_no_offsets), T(commit_whose_directory_fsync_fails_keeps_its_segment),
          T(partition_directory_fsync_failure_appends_nothing), T(dropped_table_refuses_writes_but_reads),
          T(lost_manifest_refuses_the_open_and_deletes_nothing), T(failing_flushes_are_recorded_until_one_works),
          T(storage_lists_partitions_and_segments))
