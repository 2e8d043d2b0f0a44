/*
 * test_merge.c — merges and retention: the selector on hand-made manifests; merges of
 * segments with overlapping dictionaries and times that keep every row and value exactly
 * (read back and compared with what was appended, and sorted by (hour, order_by)); flushed
 * and merged segments in that order, and a merge of version-1 files (sorted by order_by
 * alone) with new ones giving exactly the rows and order of a merge of new ones; the row
 * filter; snapshots taken before a merge reading the old segments after it; optimize;
 * merges refused for a dropped table; merges beside concurrent appends and flushes;
 * retention dropping whole partitions (checkpoints carried, snapshots unaffected, rows
 * for an expired partition dropped by the next sweep); recovery removing what a sweep
 * or merge left.
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
#include "engine/memtable_flush.h"
#include "engine/merge.h"
#include "engine/retention.h"
#include "engine/segment_format.h"
#include "engine/table.h"
#include "test.h"

#define DAY INT64_C(86400000)
#define D0 INT64_C(1704067200000) /* 2024-01-01 */
#define MIB (UINT64_C(1) << 20)

/* ---- the selector ----------------------------------------------------------------- */

static manifest_segment seg(uint64_t rows, uint64_t bytes, uint32_t level)
{
    static uint64_t id;
    return (manifest_segment){++id, rows, bytes, 0, 0, level};
}

TEST(select_takes_the_longest_run_of_tiny_segments)
{
    merge_policy pol;
    merge_policy_default(&pol);
    manifest_segment s[30];
    for (int i = 0; i < 30; i++)
        s[i] = seg(100, 1000, 0);
    merge_pick p;
    ASSERT(!merge_select(s, 0, &pol, &p));
    ASSERT(!merge_select(s, 1, &pol, &p));
    ASSERT(merge_select(s, 2, &pol, &p));
    ASSERT_EQ(p.first, 0);
    ASSERT_EQ(p.count, 2);
    ASSERT(merge_select(s, 5, &pol, &p));
    ASSERT_EQ(p.count, 5);
    ASSERT_EQ(p.level, 1);
    ASSERT_U64_EQ(p.rows, 500);
    ASSERT(merge_select(s, 30, &pol, &p));
    ASSERT_EQ(p.count, 10); /* max_fan_in */
    ASSERT_EQ(p.first, 0);  /* ties: the earliest */
}

/* A steady trickle into a table of well-compressed rows: each 1 s flush a few thousand
 * rows in tens of KiB, the merged segment millions of rows in a few MiB. Counting sizes
 * in bytes only (floored at 1 MiB), the big segment absorbed every flush: merges read
 * 340 times the rows ingested (found by a black-box trial). Rows must be similar too. */
TEST(select_does_not_rewrite_a_big_segment_for_each_small_flush)
{
    merge_policy pol;
    merge_policy_default(&pol);
    manifest_segment s[3] = {seg(2290000, 3u << 20, 5), seg(5000, 40000, 0), seg(4000, 35000, 0)};
    merge_pick p;
    ASSERT(merge_select(s, 3, &pol, &p));
    ASSERT_EQ(p.first, 1); /* the two flushes together, not the big one */
    ASSERT_EQ(p.count, 2);
    ASSERT(!merge_select(s, 2, &pol, &p));
    /* Simulated trickle: 3,000 flushes of 5,000 rows; the rows merges read stay within a
     * few times the rows ingested (tiered: each row is rewritten about log4 times). */
    manifest_segment t[64];
    uint32_t n = 0;
    uint64_t ingested = 0, rewritten = 0;
    for (int f = 0; f < 3000; f++) {
        t[n++] = seg(5000, 40000, 0);
        ingested += 5000;
        while (merge_select(t, n, &pol, &p)) {
            rewritten += p.rows;
            manifest_segment out = seg(p.rows, p.bytes, p.level);
            memmove(&t[p.first + 1], &t[p.first + p.count], sizeof *t * (n - p.first - p.count));
            t[p.first] = out;
            n -= p.count - 1;
        }
        ASSERT_LE(n, 40);
    }
    ASSERT_LT(rewritten, ingested * 12);
}

TEST(select_keeps_sizes_similar)
{
    merge_policy pol;
    merge_policy_default(&pol);
    /* A big segment is not rewritten to absorb small ones; the small ones merge. */
    manifest_segment s[] = {seg(1000000, 100 * MIB, 0), seg(1000, 1000, 0), seg(1000, 2000, 0)};
    merge_pick p;
    ASSERT(merge_select(s, 3, &pol, &p));
    ASSERT_EQ(p.first, 1);
    ASSERT_EQ(p.count, 2);
    /* Two of 8 and 40 MiB: ratio 5 > 4, nothing. */
    manifest_segment r[] = {seg(10, 8 * MIB, 0), seg(10, 40 * MIB, 0)};
    ASSERT(!merge_select(r, 2, &pol, &p));
    /* Ratio 4 but one of them most of the run: not balanced, nothing (see
     * select_does_not_rewrite_a_big_segment_for_each_small_flush); 20 and 28 merge. */
    manifest_segment q[] = {seg(10, 10 * MIB, 0), seg(10, 40 * MIB, 0)};
    ASSERT(!merge_select(q, 2, &pol, &p));
    manifest_segment q2[] = {seg(10, 20 * MIB, 0), seg(10, 28 * MIB, 0)};
    ASSERT(merge_select(q2, 2, &pol, &p));
}

TEST(select_needs_four_big_segments_and_stays_bounded)
{
    merge_policy pol;
    merge_policy_default(&pol);
    manifest_segment s[6];
    for (int i = 0; i < 6; i++)
        s[i] = seg(1000000, 200 * MIB, 0);
    merge_pick p;
    ASSERT(!merge_select(s, 3, &pol, &p)); /* 600 MiB over big_run_bytes with 3 < 4 */
    ASSERT(merge_select(s, 4, &pol, &p));
    ASSERT_EQ(p.count, 4);
    ASSERT(merge_select(s, 6, &pol, &p));
    ASSERT_EQ(p.count, 5); /* 1000 MiB <= 1 GiB; 6 would be over */
    ASSERT_LE(p.bytes, pol.max_bytes);
    /* Rows bound: two of 10M rows make more than 16Mi. */
    manifest_segment r[] = {seg(10000000, 1000, 0), seg(10000000, 1000, 0)};
    ASSERT(!merge_select(r, 2, &pol, &p));
    manifest_segment u[] = {seg(10000000, 1000, 0), seg(6000000, 1000, 0), seg(6000000, 1000, 0)};
    ASSERT(merge_select(u, 3, &pol, &p));
    ASSERT_LE(p.rows, pol.max_rows);
    ASSERT_EQ(p.first, 1);
}

TEST(select_levels_grow_and_are_capped)
{
    merge_policy pol;
    merge_policy_default(&pol);
    manifest_segment s[] = {seg(1, 1000, 0), seg(1, 1000, 2), seg(1, 1000, 1)};
    merge_pick p;
    ASSERT(merge_select(s, 3, &pol, &p));
    ASSERT_EQ(p.level, 3);
    manifest_segment c[] = {seg(1, 1000, MERGE_MAX_LEVEL), seg(1, 1000, 1)};
    ASSERT(merge_select(c, 2, &pol, &p));
    ASSERT_EQ(p.level, MERGE_MAX_LEVEL);
}

/* ---- tables ------------------------------------------------------------------------- */

static void make_schema(strata_schema *s)
{
    schema_init(s);
    snprintf(s->name, sizeof s->name, "m");
    const char *names[] = {"ts", "id", "country", "amount", "ok", "small"};
    strata_type types[] = {STRATA_TIMESTAMP, STRATA_UINT64, STRATA_STRING,
                           STRATA_FLOAT64,   STRATA_BOOL,   STRATA_INT32};
    for (int i = 0; i < 6; i++) {
        snprintf(s->cols[i].name, sizeof s->cols[i].name, "%s", names[i]);
        s->cols[i].type = types[i];
    }
    s->ncols = 6;
    s->time_col = 0;
    schema_apply_default_order(s); /* country, ts */
}

static const char *countries[] = {"US", "DE", "FR", "", "JP", "BR", "a longer country name", "ZZ"};

typedef struct row {
    int64_t ts;
    uint64_t id;
    char country[32];
    double amount;
    int64_t ok, small;
} row;

/* Row id's values. Batch b uses countries from its own overlapping subset, times that
 * overlap other batches', floats with negatives, NaN-free. */
static row row_of(uint64_t id, int batch, int64_t day)
{
    row r;
    r.id = id;
    r.ts = day + (int64_t)((id * 7919) % 3600000) + batch * 1000;
    snprintf(r.country, sizeof r.country, "%s", countries[(id + (uint64_t)batch) % 4 + (uint64_t)(batch % 5)]);
    r.amount = ((double)(id % 2001) - 1000.0) / 8.0;
    r.ok = id % 3 == 0;
    r.small = -(int64_t)(id % 77);
    return r;
}

static void append_rows(strata_table *t, const row *rows, uint32_t n)
{
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, table_schema(t), n), 0);
    for (uint32_t k = 0; k < n; k++) {
        int64_t r = row_batch_add_row(&b);
        ASSERT(r >= 0);
        b.i[0][r] = rows[k].ts;
        b.i[1][r] = (int64_t)rows[k].id;
        ASSERT_EQ(row_batch_set_str(&b, 2, (uint32_t)r, rows[k].country, (uint32_t)strlen(rows[k].country)), 0);
        b.f[3][r] = rows[k].amount;
        b.i[4][r] = rows[k].ok;
        b.i[5][r] = rows[k].small;
    }
    strata_err err = {0};
    ASSERT_EQ(table_append(t, &b, &err), 0);
    row_batch_free(&b);
}

/* Appends `batches` batches of `per` rows (ids first..), each flushed as its own
 * segment of day's partition; returns the rows in *out (malloc'd). */
static uint32_t load(strata_table *t, int batches, uint32_t per, uint64_t first, int64_t day, row **out)
{
    row *all = malloc(sizeof *all * (size_t)batches * per);
    ASSERT(all);
    uint32_t n = 0;
    strata_err err = {0};
    for (int b = 0; b < batches; b++) {
        for (uint32_t k = 0; k < per; k++)
            all[n + k] = row_of(first + n + k, b, day);
        append_rows(t, all + n, per);
        n += per;
        ASSERT_EQ(table_flush(t, true, &err), 0);
    }
    *out = all;
    return n;
}

static int row_cmp(const void *a, const void *b)
{
    const row *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Every row the snapshot's segments hold (no memtables expected), and checks each
 * segment is sorted by its sort key (hour of ts, country, ts). */
static uint32_t read_snapshot(table_snapshot *s, row **out)
{
    uint32_t n = 0, cap = 1024;
    row *rows = malloc(sizeof *rows * cap);
    segment_scratch sc = {0};
    strata_err err = {0};
    int64_t *ts = malloc(8 * 65536), *ids = malloc(8 * 65536), *ok = malloc(8 * 65536), *sm = malloc(8 * 65536);
    double *am = malloc(8 * 65536);
    uint32_t *cc = malloc(4 * 65536);
    for (uint32_t p = 0; p < s->nparts; p++) {
        ASSERT_EQ(s->parts[p].nmts, 0);
        for (uint32_t i = 0; i < s->parts[p].nsegs; i++) {
            segment *seg = s->parts[p].segs[i];
            strata_str prev_c = {"", 0};
            int64_t prev_t = INT64_MIN, prev_h = INT64_MIN;
            for (uint32_t g = 0; g < segment_ngranules(seg); g++) {
                uint32_t gn = segment_granule_nrows(seg, g);
                ASSERT_EQ(segment_read_ints(seg, 0, g, ts, &sc, &err), 0);
                ASSERT_EQ(segment_read_ints(seg, 1, g, ids, &sc, &err), 0);
                ASSERT_EQ(segment_read_codes(seg, 2, g, cc, &sc, &err), 0);
                ASSERT_EQ(segment_read_floats(seg, 3, g, am, &sc, &err), 0);
                ASSERT_EQ(segment_read_ints(seg, 4, g, ok, &sc, &err), 0);
                ASSERT_EQ(segment_read_ints(seg, 5, g, sm, &sc, &err), 0);
                for (uint32_t k = 0; k < gn; k++) {
                    if (n == cap) {
                        cap *= 2;
                        rows = realloc(rows, sizeof *rows * cap);
                    }
                    strata_str c = segment_dict_value(seg, 2, cc[k]);
                    int64_t h = segment_sort_bucket(ts[k]);
                    int o = prev_h != h ? (prev_h < h ? -1 : 1) : strata_str_cmp(prev_c, c);
                    ASSERT(o < 0 || (o == 0 && prev_t <= ts[k])); /* (hour, country, ts) */
                    prev_h = h;
                    prev_c = c;
                    prev_t = ts[k];
                    row *r = &rows[n++];
                    r->ts = ts[k];
                    r->id = (uint64_t)ids[k];
                    ASSERT_LT(c.len, sizeof r->country);
                    memcpy(r->country, c.ptr, c.len);
                    r->country[c.len] = 0;
                    r->amount = am[k];
                    r->ok = ok[k];
                    r->small = sm[k];
                }
            }
        }
    }
    segment_scratch_free(&sc);
    free(ts);
    free(ids);
    free(ok);
    free(sm);
    free(am);
    free(cc);
    *out = rows;
    return n;
}

static uint32_t read_table(strata_table *t, row **out)
{
    table_snapshot *s = table_snapshot_acquire(t, INT64_MIN, INT64_MAX);
    ASSERT(s);
    uint32_t n = read_snapshot(s, out);
    table_snapshot_release(s);
    return n;
}

/* The rows (in any order) are exactly want[0..nwant) (in any order). */
static void assert_same_rows(row *got, uint32_t ngot, row *want, uint32_t nwant)
{
    ASSERT_EQ(ngot, nwant);
    qsort(got, ngot, sizeof *got, row_cmp);
    qsort(want, nwant, sizeof *want, row_cmp);
    for (uint32_t i = 0; i < ngot; i++) {
        ASSERT_U64_EQ(got[i].id, want[i].id);
        ASSERT_EQ(got[i].ts, want[i].ts);
        ASSERT_STR_EQ(got[i].country, want[i].country);
        ASSERT_DBL_EQ(got[i].amount, want[i].amount);
        ASSERT_EQ(got[i].ok, want[i].ok);
        ASSERT_EQ(got[i].small, want[i].small);
    }
}

static uint32_t segments_of(strata_table *t)
{
    table_stats st;
    table_get_stats(t, &st);
    return (uint32_t)st.segments;
}

/* *.seg files in a partition directory, and whether each is listed by its MANIFEST. */
static void assert_dir_matches_manifest(const char *pdir)
{
    manifest m;
    ASSERT_EQ(manifest_read(pdir, &m, NULL), 0);
    DIR *d = opendir(pdir);
    ASSERT(d);
    struct dirent *e;
    uint32_t files = 0;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        ASSERT(!(l > 4 && strcmp(e->d_name + l - 4, ".tmp") == 0));
        if (l < 4 || strcmp(e->d_name + l - 4, ".seg") != 0)
            continue;
        files++;
        bool listed = false;
        for (uint32_t i = 0; i < m.nsegs; i++) {
            char nm[32];
            manifest_segment_name(m.segs[i].id, nm, sizeof nm);
            listed |= strcmp(nm, e->d_name) == 0;
        }
        ASSERT(listed);
    }
    closedir(d);
    ASSERT_EQ(files, m.nsegs);
    manifest_free(&m);
}

static void part_dir(const char *dir, int64_t key, char *out, size_t cap)
{
    char name[32];
    schema_partition_name(STRATA_PART_DAY, key, name, sizeof name);
    snprintf(out, cap, "%s/m/raw/%s", dir, name);
}

static void rm_rf(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%.4000s'", dir);
    ASSERT_EQ(system(cmd), 0);
}

/* ---- the sort key: (hour of ts, order_by), and version-1 inputs --------------------- */

/* Writes rows[0..n) as one segment at dir/name through a memtable (the flush's sort),
 * in format version `version` (1: sorted by order_by alone, as old files are). */
static segment *write_rows(const strata_schema *s, const char *dir, const char *name,
                           const row *rows, uint32_t n, uint32_t version)
{
    strata_err err = {0};
    memtable *mt = memtable_create(s, 0, n, &err);
    ASSERT(mt);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, s, n), 0);
    for (uint32_t k = 0; k < n; k++) {
        int64_t r = row_batch_add_row(&b);
        ASSERT(r >= 0);
        b.i[0][r] = rows[k].ts;
        b.i[1][r] = (int64_t)rows[k].id;
        ASSERT_EQ(row_batch_set_str(&b, 2, (uint32_t)r, rows[k].country, (uint32_t)strlen(rows[k].country)), 0);
        b.f[3][r] = rows[k].amount;
        b.i[4][r] = rows[k].ok;
        b.i[5][r] = rows[k].small;
    }
    ASSERT_EQ(memtable_append(mt, &b, NULL, b.nrows, &err), 0);
    row_batch_free(&b);
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    segment_write_opts o = {.codec = STRATA_CODEC_LZ4, .granule_rows = 1000, .version = version};
    if (memtable_write_segment(mt, n, path, &o, NULL, NULL, &err) != 0)
        TEST_FAIL_("%s", err.msg);
    memtable_unref(mt);
    segment *seg;
    ASSERT_EQ(segment_open(path, &seg, &err), 0);
    ASSERT_EQ(segment_format_version(seg), version);
    return seg;
}

/* Every row of seg in file order (all columns), checked sorted by (hour, country, ts)
 * when hour_first, else by (country, ts). */
static uint32_t read_seg(segment *seg, bool hour_first, row **out)
{
    uint64_t n = segment_nrows(seg);
    row *rows = malloc(sizeof *rows * (n + 1));
    ASSERT(rows);
    segment_scratch sc = {0};
    strata_err err = {0};
    int64_t ts[1000], ids[1000], ok[1000], sm[1000];
    double am[1000];
    uint32_t cc[1000], m = 0;
    int64_t prev_h = INT64_MIN, prev_t = INT64_MIN;
    strata_str prev_c = {"", 0};
    for (uint32_t g = 0; g < segment_ngranules(seg); g++) {
        ASSERT_LE(segment_granule_nrows(seg, g), 1000);
        ASSERT_EQ(segment_read_ints(seg, 0, g, ts, &sc, &err), 0);
        ASSERT_EQ(segment_read_ints(seg, 1, g, ids, &sc, &err), 0);
        ASSERT_EQ(segment_read_codes(seg, 2, g, cc, &sc, &err), 0);
        ASSERT_EQ(segment_read_floats(seg, 3, g, am, &sc, &err), 0);
        ASSERT_EQ(segment_read_ints(seg, 4, g, ok, &sc, &err), 0);
        ASSERT_EQ(segment_read_ints(seg, 5, g, sm, &sc, &err), 0);
        for (uint32_t k = 0; k < segment_granule_nrows(seg, g); k++) {
            strata_str c = segment_dict_value(seg, 2, cc[k]);
            int64_t h = hour_first ? segment_sort_bucket(ts[k]) : 0;
            int o = prev_h != h ? (prev_h < h ? -1 : 1) : strata_str_cmp(prev_c, c);
            ASSERT(o < 0 || (o == 0 && prev_t <= ts[k]));
            prev_h = h;
            prev_c = c;
            prev_t = ts[k];
            row *r = &rows[m++];
            r->ts = ts[k];
            r->id = (uint64_t)ids[k];
            ASSERT_LT(c.len, sizeof r->country);
            memcpy(r->country, c.ptr, c.len);
            r->country[c.len] = 0;
            r->amount = am[k];
            r->ok = ok[k];
            r->small = sm[k];
        }
    }
    segment_scratch_free(&sc);
    ASSERT_EQ(m, n);
    *out = rows;
    return m;
}

/* Rows over a whole day (and, from -2 h, across the epoch: floor division), countries
 * and times repeating, so rows equal in the sort key exist and must keep their order. */
static row day_row(uint64_t id, int64_t t0)
{
    row r = row_of(id, (int)(id % 3), t0);
    r.ts = t0 + (int64_t)((id * 7919) % 400) * 216000; /* 400 times 216 s apart: 24 h */
    return r;
}

/* keep_ctx of check_rows_seen: each input's ids by row number; every row seen once. */
typedef struct seen_ctx {
    row *in[3];
    uint32_t n[3];
    uint8_t *seen[3];
} seen_ctx;

static bool check_rows_seen(void *ctx, const merge_row_view *r)
{
    seen_ctx *x = ctx;
    ASSERT_LT(r->input, 3);
    ASSERT_LT(r->row, x->n[r->input]);
    ASSERT_U64_EQ(x->in[r->input][r->row].id, (uint64_t)merge_row_int(r, 1));
    ASSERT_EQ(x->seen[r->input][r->row], 0);
    x->seen[r->input][r->row] = 1;
    return true;
}

TEST(flush_and_merge_sort_by_hour_then_order_by)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "merge_hour");
    strata_schema s;
    make_schema(&s);
    strata_err err = {0};
    /* The bucket is floor(ts / 1 h), before 1970 too. */
    ASSERT_EQ(segment_sort_bucket(0), 0);
    ASSERT_EQ(segment_sort_bucket(3599999), 0);
    ASSERT_EQ(segment_sort_bucket(3600000), 1);
    ASSERT_EQ(segment_sort_bucket(-1), -1);
    ASSERT_EQ(segment_sort_bucket(-3600000), -1);
    ASSERT_EQ(segment_sort_bucket(-3600001), -2);
    for (int pass = 0; pass < 2; pass++) {
        int64_t t0 = pass == 0 ? D0 : -2 * INT64_C(3600000) - 7; /* pass 1: across 1970 */
        enum { NA = 5000, NB = 4000, NC = 300 };
        row a[NA], b[NB], c[NC];
        for (uint32_t k = 0; k < NA; k++)
            a[k] = day_row(k + 1, t0);
        for (uint32_t k = 0; k < NB; k++)
            b[k] = day_row(NA + k + 1, t0);
        for (uint32_t k = 0; k < NC; k++) { /* within one hour: in both orders */
            c[k] = day_row(NA + NB + k + 1, t0);
            c[k].ts = t0 - (t0 % 3600000 + 3600000) % 3600000 + 7200000 + (int64_t)(k % 50) * 1000;
        }
        /* Old (version 1) and new files of the same rows; flushed files sorted as said. */
        char nm[64];
        snprintf(nm, sizeof nm, "a1_%d.seg", pass);
        segment *a1 = write_rows(&s, dir, nm, a, NA, 1);
        snprintf(nm, sizeof nm, "a2_%d.seg", pass);
        segment *a2 = write_rows(&s, dir, nm, a, NA, 2);
        snprintf(nm, sizeof nm, "b2_%d.seg", pass);
        segment *b2 = write_rows(&s, dir, nm, b, NB, 2);
        snprintf(nm, sizeof nm, "c1_%d.seg", pass);
        segment *c1 = write_rows(&s, dir, nm, c, NC, 1);
        snprintf(nm, sizeof nm, "c2_%d.seg", pass);
        segment *c2 = write_rows(&s, dir, nm, c, NC, 2);
        ASSERT(!segment_bucket_sorted(a1)); /* 24 hours sorted by country first */
        ASSERT(segment_bucket_sorted(a2));
        ASSERT(segment_bucket_sorted(c1));  /* one hour */
        ASSERT_GE(segment_sort_bucket(segment_max_time(a2)) - segment_sort_bucket(segment_min_time(a2)), 23);
        row *ra1, *ra2, *rc1;
        ASSERT_EQ(read_seg(a1, false, &ra1), NA);
        ASSERT_EQ(read_seg(a2, true, &ra2), NA);
        ASSERT_EQ(read_seg(c1, true, &rc1), NC);
        /* The old file is not in the new order: the check above would have failed. */
        bool hour_order = true;
        for (uint32_t k = 1; k < NA && hour_order; k++)
            hour_order = segment_sort_bucket(ra1[k - 1].ts) <= segment_sort_bucket(ra1[k].ts);
        ASSERT(!hour_order);

        /* Merges: old + new inputs, and all-new ones, give the same rows in the same order. */
        segment *old_mix[3] = {a1, b2, c1}, *all_new[3] = {a2, b2, c2};
        seen_ctx sx = {{ra1, b, rc1}, {NA, NB, NC}, {calloc(NA, 1), calloc(NB, 1), calloc(NC, 1)}};
        /* b's rows by row number in b2: read back (file order) */
        row *rb2;
        ASSERT_EQ(read_seg(b2, true, &rb2), NB);
        sx.in[1] = rb2;
        merge_opts mo = {.keep = check_rows_seen, .keep_ctx = &sx, .granule_rows = 100};
        merge_out o1, o2;
        char p1[4300], p2[4300];
        snprintf(p1, sizeof p1, "%s/m1_%d.seg", dir, pass);
        snprintf(p2, sizeof p2, "%s/m2_%d.seg", dir, pass);
        ASSERT_EQ(merge_segments(&s, old_mix, 3, p1, &mo, &o1, &err), 0);
        ASSERT_EQ(o1.inputs_resorted, 1); /* a1 only: c1 lies in one hour */
        for (uint32_t i = 0; i < 3; i++)
            for (uint32_t k = 0; k < sx.n[i]; k++)
                ASSERT_EQ(sx.seen[i][k], 1);
        merge_opts mo2 = {.granule_rows = 100};
        ASSERT_EQ(merge_segments(&s, all_new, 3, p2, &mo2, &o2, &err), 0);
        ASSERT_EQ(o2.inputs_resorted, 0);
        ASSERT_U64_EQ(o1.info.nrows, NA + NB + NC);
        segment *m1, *m2;
        ASSERT_EQ(segment_open(p1, &m1, &err), 0);
        ASSERT_EQ(segment_open(p2, &m2, &err), 0);
        ASSERT_EQ(segment_format_version(m1), SEGMENT_VERSION);
        row *r1, *r2;
        uint32_t n1 = read_seg(m1, true, &r1), n2 = read_seg(m2, true, &r2);
        ASSERT_EQ(n1, n2);
        for (uint32_t k = 0; k < n1; k++) {
            ASSERT_U64_EQ(r1[k].id, r2[k].id);
            ASSERT_EQ(r1[k].ts, r2[k].ts);
            ASSERT_STR_EQ(r1[k].country, r2[k].country);
            ASSERT_DBL_EQ(r1[k].amount, r2[k].amount);
            ASSERT_EQ(r1[k].ok, r2[k].ok);
            ASSERT_EQ(r1[k].small, r2[k].small);
        }
        /* ... and exactly the rows written. */
        row *want = malloc(sizeof *want * (NA + NB + NC));
        memcpy(want, a, sizeof a);
        memcpy(want + NA, b, sizeof b);
        memcpy(want + NA + NB, c, sizeof c);
        assert_same_rows(r1, n1, want, NA + NB + NC);
        /* Granules (fewer rows than an hour holds) lie within two hours: the point. */
        for (uint32_t g = 0; g < segment_ngranules(m2); g++) {
            const segment_granule_meta *gm = segment_granule(m2, 0, g);
            ASSERT_LE(segment_sort_bucket((int64_t)gm->max) - segment_sort_bucket((int64_t)gm->min), 1);
        }
        free(want);
        free(r1);
        free(r2);
        free(ra1);
        free(ra2);
        free(rc1);
        free(rb2);
        for (int i = 0; i < 3; i++)
            free(sx.seen[i]);
        segment_close(m1);
        segment_close(m2);
        segment_close(a1);
        segment_close(a2);
        segment_close(b2);
        segment_close(c1);
        segment_close(c2);
    }
    rm_rf(dir);
}

TEST(merge_keeps_every_row_and_value)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "merge_rows");
    strata_schema s;
    make_schema(&s);
    strata_table *t;
    strata_err err = {0};
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    row *want;
    uint32_t n = load(t, 5, 7000, 1, D0, &want); /* 5 segments, granules of 8192: several */
    ASSERT_EQ(segments_of(t), 5);
    row *before;
    uint32_t nb = read_table(t, &before);
    assert_same_rows(before, nb, want, n);

    merge_policy pol;
    merge_policy_default(&pol);
    merge_report rep;
    ASSERT_EQ(merge_table_once(t, &pol, NULL, &rep, &err), 0);
    ASSERT(rep.merged);
    ASSERT_EQ(rep.inputs, 5);
    ASSERT_EQ(rep.level, 1);
    ASSERT_U64_EQ(rep.rows, n);
    ASSERT_STR_EQ(rep.partition, "2024-01-01");
    ASSERT_EQ(segments_of(t), 1);
    row *after;
    uint32_t na = read_table(t, &after);
    assert_same_rows(after, na, want, n);
    char pdir[4200];
    part_dir(dir, D0, pdir, sizeof pdir);
    assert_dir_matches_manifest(pdir);
    manifest m;
    ASSERT_EQ(manifest_read(pdir, &m, NULL), 0);
    ASSERT_EQ(m.nsegs, 1);
    ASSERT_EQ(m.segs[0].level, 1);
    ASSERT_U64_EQ(m.segs[0].rows, n);
    manifest_free(&m);
    /* The merged segment is sound, zstd, and its dictionary the union. */
    table_snapshot *snap = table_snapshot_acquire(t, INT64_MIN, INT64_MAX);
    ASSERT_EQ(segment_verify(snap->parts[0].segs[0], &err), 0);
    ASSERT_EQ(segment_dict_size(snap->parts[0].segs[0], 2), 8);
    ASSERT_EQ(segment_granule(snap->parts[0].segs[0], 1, 0)->block.codec, STRATA_CODEC_ZSTD);
    table_snapshot_release(snap);
    table_stats st;
    table_get_stats(t, &st);
    ASSERT_U64_EQ(st.merges, 1);
    ASSERT_U64_EQ(st.merge_rows, n);
    ASSERT_GT(st.merge_bytes_written, 0);
    ASSERT_U64_EQ(st.max_partition_segments, 1);
    /* Nothing more to merge. */
    ASSERT_EQ(merge_table_once(t, &pol, NULL, &rep, &err), 0);
    ASSERT(!rep.merged);
    table_close(t);

    /* After a restart: the same rows. */
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    free(after);
    na = read_table(t, &after);
    assert_same_rows(after, na, want, n);
    table_close(t);
    free(want);
    free(before);
    free(after);
    rm_rf(dir);
}

typedef struct filter_ctx {
    int calls;
    bool drop_all;
} filter_ctx;

static bool keep_even(void *ctx, const merge_row_view *r)
{
    filter_ctx *f = ctx;
    f->calls++;
    if (f->drop_all)
        return false;
    /* The view's values are the row's (else an odd id is kept and the test fails). */
    strata_str c = merge_row_str(r, 2);
    if (c.len > 31 || merge_row_float(r, 3) != ((double)(merge_row_int(r, 1) % 2001) - 1000.0) / 8.0)
        return true;
    return merge_row_int(r, 1) % 2 == 0;
}

TEST(merge_filter_drops_rows)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "merge_filter");
    strata_schema s;
    make_schema(&s);
    strata_table *t;
    strata_err err = {0};
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    row *all;
    uint32_t n = load(t, 3, 5000, 1, D0, &all);
    filter_ctx f = {0};
    merge_policy pol;
    merge_policy_default(&pol);
    merge_opts mo = {.keep = keep_even, .keep_ctx = &f};
    merge_report rep;
    ASSERT_EQ(merge_table_once(t, &pol, &mo, &rep, &err), 0);
    ASSERT(rep.merged);
    ASSERT_EQ(f.calls, (int)n);
    ASSERT_U64_EQ(rep.rows_dropped, n / 2);
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++)
        if (all[i].id % 2 == 0)
            all[k++] = all[i];
    row *got;
    uint32_t ng = read_table(t, &got);
    assert_same_rows(got, ng, all, k);
    free(got);
    /* Two more segments, then a filter that drops everything: no segment at all. */
    row *more;
    uint32_t nm = load(t, 2, 100, 100000, D0, &more);
    ASSERT_EQ(nm, 200);
    ASSERT_EQ(segments_of(t), 3);
    f.drop_all = true;
    ASSERT_EQ(merge_table_once(t, &pol, &mo, &rep, &err), 0);
    ASSERT(rep.merged);
    ASSERT_EQ(segments_of(t), 0);
    char pdir[4200];
    part_dir(dir, D0, pdir, sizeof pdir);
    assert_dir_matches_manifest(pdir);
    table_close(t);
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    ASSERT_EQ(segments_of(t), 0);
    table_close(t);
    free(all);
    free(more);
    rm_rf(dir);
}

TEST(snapshot_before_a_merge_reads_the_old_segments)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "merge_snap");
    strata_schema s;
    make_schema(&s);
    strata_table *t;
    strata_err err = {0};
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    row *want;
    uint32_t n = load(t, 4, 3000, 1, D0, &want);
    table_snapshot *old = table_snapshot_acquire(t, INT64_MIN, INT64_MAX);
    ASSERT_EQ(old->parts[0].nsegs, 4);
    merge_policy pol;
    merge_policy_default(&pol);
    merge_report rep;
    ASSERT_EQ(merge_table_once(t, &pol, NULL, &rep, &err), 0);
    ASSERT(rep.merged);
    /* The old files are gone from the directory, the snapshot still reads them whole. */
    char pdir[4200];
    part_dir(dir, D0, pdir, sizeof pdir);
    assert_dir_matches_manifest(pdir);
    for (uint32_t i = 0; i < old->parts[0].nsegs; i++)
        ASSERT_EQ(access(segment_path(old->parts[0].segs[i]), F_OK), -1);
    row *got;
    uint32_t ng = read_snapshot(old, &got);
    assert_same_rows(got, ng, want, n);
    free(got);
    table_snapshot *now = table_snapshot_acquire(t, INT64_MIN, INT64_MAX);
    ASSERT_EQ(now->parts[0].nsegs, 1);
    ng = read_snapshot(now, &got);
    assert_same_rows(got, ng, want, n);
    table_snapshot_release(old);
    table_snapshot_release(now);
    table_close(t);
    free(got);
    free(want);
    rm_rf(dir);
}

TEST(optimize_merges_a_partition_within_the_bounds)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "merge_optimize");
    strata_schema s;
    make_schema(&s);
    strata_table *t;
    strata_err err = {0};
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    row *a, *b;
    uint32_t na = load(t, 25, 200, 1, D0, &a);
    uint32_t nb = load(t, 3, 200, 100000, D0 + DAY, &b);
    append_rows(t, (row[]){row_of(999999, 0, D0)}, 1); /* in a memtable: optimize flushes it */
    merge_policy pol;
    merge_policy_default(&pol);
    optimize_report rep;
    int64_t key = D0;
    ASSERT_EQ(merge_table_optimize(t, &key, &pol, &rep, &err), 0);
    ASSERT_EQ(rep.nparts, 1);
    ASSERT_STR_EQ(rep.parts[0].partition, "2024-01-01");
    ASSERT_EQ(rep.parts[0].segments_before, 26);
    ASSERT_EQ(rep.parts[0].segments_after, 1);
    ASSERT_EQ(rep.parts[0].merges, 3); /* 16 + 10, then the two */
    merge_optimize_report_free(&rep);
    ASSERT_EQ(segments_of(t), 4);
    /* Every partition, with a bound of 3 segments' rows: 3 of D0's... */
    int64_t nope = D0 + 5 * DAY;
    ASSERT_EQ(merge_table_optimize(t, &nope, &pol, &rep, &err), STRATA_ENOTFOUND);
    ASSERT_CONTAINS(err.msg, "no partition '2024-01-06'");
    merge_optimize_report_free(&rep);
    pol.max_rows = 450;
    ASSERT_EQ(merge_table_optimize(t, NULL, &pol, &rep, &err), 0);
    ASSERT_EQ(rep.nparts, 2);
    ASSERT_EQ(rep.parts[0].segments_after, 1); /* already one (over the bound now) */
    ASSERT_EQ(rep.parts[1].segments_before, 3);
    ASSERT_EQ(rep.parts[1].segments_after, 2); /* 400 + 200 */
    merge_optimize_report_free(&rep);
    row *want = malloc(sizeof *want * (na + nb + 1));
    memcpy(want, a, sizeof *a * na);
    memcpy(want + na, b, sizeof *b * nb);
    want[na + nb] = row_of(999999, 0, D0);
    row *got;
    uint32_t ng = read_table(t, &got);
    assert_same_rows(got, ng, want, na + nb + 1);
    table_close(t);
    free(a);
    free(b);
    free(want);
    free(got);
    rm_rf(dir);
}

TEST(merge_of_a_dropped_table_is_refused)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "merge_dropped");
    strata_schema s;
    make_schema(&s);
    strata_table *t;
    strata_err err = {0};
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    row *a;
    load(t, 3, 100, 1, D0, &a);
    table_writes_pause(t);
    table_writes_resume(t, true);
    merge_policy pol;
    merge_policy_default(&pol);
    merge_report rep;
    ASSERT_EQ(merge_table_once(t, &pol, NULL, &rep, &err), STRATA_ENOTFOUND);
    ASSERT(!rep.merged);
    ASSERT_EQ(segments_of(t), 3);
    char pdir[4200];
    part_dir(dir, D0, pdir, sizeof pdir);
    assert_dir_matches_manifest(pdir);
    table_close(t);
    free(a);
    rm_rf(dir);
}

/* Appends and flushes from a thread while the main thread merges: every row stays, once. */
typedef struct writer_arg {
    strata_table *t;
    int batches;
    uint32_t per;
} writer_arg;

static void *writer_main(void *p)
{
    writer_arg *a = p;
    strata_err err = {0};
    row *rows = malloc(sizeof *rows * a->per);
    for (int b = 0; b < a->batches; b++) {
        for (uint32_t k = 0; k < a->per; k++)
            rows[k] = row_of((uint64_t)b * a->per + k + 1, b, D0 + (b % 2) * DAY);
        append_rows(a->t, rows, a->per);
        if (table_flush(a->t, true, &err) != 0)
            abort();
    }
    free(rows);
    return NULL;
}

TEST(merges_beside_appends_and_flushes)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "merge_concurrent");
    strata_schema s;
    make_schema(&s);
    strata_table *t;
    strata_err err = {0};
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    writer_arg wa = {t, 60, 500};
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, writer_main, &wa), 0);
    merge_policy pol;
    merge_policy_default(&pol);
    int merges = 0;
    for (int i = 0; i < 400; i++) {
        merge_report rep;
        ASSERT_EQ(merge_table_once(t, &pol, NULL, &rep, &err), 0);
        merges += rep.merged;
        table_snapshot *snap = table_snapshot_acquire(t, INT64_MIN, INT64_MAX);
        uint64_t rows = 0;
        for (uint32_t p = 0; p < snap->nparts; p++) {
            for (uint32_t k = 0; k < snap->parts[p].nsegs; k++)
                rows += segment_nrows(snap->parts[p].segs[k]);
            for (uint32_t k = 0; k < snap->parts[p].nmts; k++)
                rows += snap->parts[p].mt_rows[k];
        }
        table_snapshot_release(snap);
        ASSERT_EQ(rows % wa.per, 0); /* whole batches: never a row twice or missing */
        usleep(1000);
    }
    pthread_join(th, NULL);
    while (1) {
        merge_report rep;
        ASSERT_EQ(merge_table_once(t, &pol, NULL, &rep, &err), 0);
        if (!rep.merged)
            break;
        merges++;
    }
    ASSERT_GT(merges, 2);
    row *want = malloc(sizeof *want * wa.batches * wa.per);
    for (int b = 0; b < wa.batches; b++)
        for (uint32_t k = 0; k < wa.per; k++)
            want[(uint32_t)b * wa.per + k] = row_of((uint64_t)b * wa.per + k + 1, b, D0 + (b % 2) * DAY);
    row *got;
    uint32_t ng = read_table(t, &got);
    assert_same_rows(got, ng, want, (uint32_t)wa.batches * wa.per);
    for (int d = 0; d < 2; d++) {
        char pdir[4200];
        part_dir(dir, D0 + d * DAY, pdir, sizeof pdir);
        assert_dir_matches_manifest(pdir);
    }
    table_close(t);
    free(want);
    free(got);
    rm_rf(dir);
}

/* ---- retention ---------------------------------------------------------------------- */

TEST(retention_drops_expired_partitions_whole)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "retention");
    strata_schema s;
    make_schema(&s);
    s.retention_raw_ms = 2 * DAY;
    strata_table *t;
    strata_err err = {0};
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    /* Days 3 and 4 carry checkpoint ids=100; day 0 (to expire) the highest, 200. */
    ASSERT_EQ(table_note_checkpoint(t, "ids", 0, 100), 0);
    row *r3, *r4, *r0, *r1, *r2;
    uint32_t n3 = load(t, 1, 100, 30000, D0 + 3 * DAY, &r3);
    uint32_t n4 = load(t, 1, 100, 40000, D0 + 4 * DAY, &r4);
    load(t, 1, 100, 10000, D0 + 1 * DAY, &r1);
    ASSERT_EQ(table_note_checkpoint(t, "ids", 0, 200), 0);
    load(t, 2, 100, 1, D0, &r0);
    append_rows(t, r0, 1); /* a row of day 2 only in a memtable */
    (void)r2;
    row extra = row_of(5, 0, D0 + 2 * DAY);
    append_rows(t, &extra, 1);
    ASSERT_EQ(table_checkpoint_max(t, "ids", 0), 200);
    table_snapshot *old = table_snapshot_acquire(t, INT64_MIN, INT64_MAX);

    retention_report rep;
    /* Not yet: at D0+3d the cutoff is D0+1d, only day 0's end (D0+1d) is at it. */
    ASSERT_EQ(retention_sweep(t, D0 + 3 * DAY - 1, &rep, &err), 0);
    ASSERT_EQ(rep.partitions, 0);
    ASSERT_EQ(retention_sweep(t, D0 + 5 * DAY + 1, &rep, &err), 0);
    ASSERT_EQ(rep.partitions, 3); /* days 0, 1, 2: their ends are at or before D0+3d+1ms */
    ASSERT_STR_EQ(rep.first, "2024-01-01");
    ASSERT_STR_EQ(rep.last, "2024-01-03");
    ASSERT_U64_EQ(rep.rows, 200 + 1 + 100 + 1);
    table_stats st;
    table_get_stats(t, &st);
    ASSERT_U64_EQ(st.partitions, 2);
    ASSERT_U64_EQ(st.expired_partitions, 3);
    ASSERT_U64_EQ(st.expired_rows, 302);
    ASSERT_EQ(table_checkpoint_max(t, "ids", 0), 200); /* carried */
    /* The snapshot from before still reads what it saw. */
    uint64_t rows = 0;
    for (uint32_t p = 0; p < old->nparts; p++) {
        for (uint32_t k = 0; k < old->parts[p].nsegs; k++) {
            segment *sg = old->parts[p].segs[k];
            ASSERT_EQ(segment_verify(sg, &err), 0);
            rows += segment_nrows(sg);
        }
        for (uint32_t k = 0; k < old->parts[p].nmts; k++)
            rows += old->parts[p].mt_rows[k];
    }
    ASSERT_U64_EQ(rows, 502);
    table_snapshot_release(old);
    /* Directories: days 3 and 4 only, no leftovers. */
    char raw[4200];
    snprintf(raw, sizeof raw, "%s/m/raw", dir);
    DIR *d = opendir(raw);
    ASSERT(d);
    struct dirent *e;
    int entries = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        entries++;
        ASSERT(strcmp(e->d_name, "2024-01-04") == 0 || strcmp(e->d_name, "2024-01-05") == 0);
    }
    closedir(d);
    ASSERT_EQ(entries, 2);
    /* A row for an expired partition is accepted, then dropped by the next sweep. */
    append_rows(t, r0, 1);
    ASSERT_EQ(table_flush(t, true, &err), 0);
    table_get_stats(t, &st);
    ASSERT_U64_EQ(st.partitions, 3);
    ASSERT_EQ(retention_sweep(t, D0 + 5 * DAY + 1, &rep, &err), 0);
    ASSERT_EQ(rep.partitions, 1);
    ASSERT_U64_EQ(rep.rows, 1);
    table_close(t);

    /* After a restart: the two partitions, their rows, the carried checkpoint; a leftover
     * of a sweep cut short is removed. */
    char left[4300];
    snprintf(left, sizeof left, "%s/.expired-2024-01-02", raw);
    ASSERT_EQ(mkdir(left, 0755), 0);
    snprintf(left, sizeof left, "%s/.expired-2024-01-02/0000000000000001.seg", raw);
    FILE *f = fopen(left, "w");
    ASSERT(f);
    fclose(f);
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    snprintf(left, sizeof left, "%s/.expired-2024-01-02", raw);
    ASSERT_EQ(access(left, F_OK), -1);
    ASSERT_EQ(table_checkpoint_max(t, "ids", 0), 200);
    row *got;
    uint32_t ng = read_table(t, &got);
    row *want = malloc(sizeof *want * (n3 + n4));
    memcpy(want, r3, sizeof *r3 * n3);
    memcpy(want + n3, r4, sizeof *r4 * n4);
    assert_same_rows(got, ng, want, n3 + n4);
    /* No retention: nothing goes. */
    table_close(t);
    s.retention_raw_ms = 0;
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    ASSERT_EQ(retention_sweep(t, INT64_MAX / 2, &rep, &err), 0);
    ASSERT_EQ(rep.partitions, 0);
    table_close(t);
    free(got);
    free(want);
    free(r0);
    free(r1);
    free(r3);
    free(r4);
    rm_rf(dir);
}

TEST(recovery_removes_a_merge_left_unlisted)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "merge_recover");
    strata_schema s;
    make_schema(&s);
    strata_table *t;
    strata_err err = {0};
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    row *a;
    uint32_t n = load(t, 3, 100, 1, D0, &a);
    table_close(t);
    /* A merge output written but never committed (a crash before the commit). */
    char pdir[4200], path[4300];
    part_dir(dir, D0, pdir, sizeof pdir);
    snprintf(path, sizeof path, "%s/00000000000000ff.seg", pdir);
    FILE *f = fopen(path, "w");
    ASSERT(f);
    fputs("partial", f);
    fclose(f);
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    ASSERT_EQ(access(path, F_OK), -1);
    assert_dir_matches_manifest(pdir);
    row *got;
    uint32_t ng = read_table(t, &got);
    assert_same_rows(got, ng, a, n);
    table_close(t);
    free(a);
    free(got);
    rm_rf(dir);
}


TEST(merge_commit_not_durable_fails_the_table)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "merge_fsync");
    strata_schema s;
    make_schema(&s);
    strata_table *t;
    strata_err err = {0};
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    row *want;
    uint32_t n = load(t, 3, 500, 1, D0, &want);
    fault_arm(FAULT_FSYNC_DIR, 0, 1); /* the commit's directory fsync */
    merge_policy pol;
    merge_policy_default(&pol);
    merge_report rep;
    ASSERT_EQ(merge_table_once(t, &pol, NULL, &rep, &err), 0);
    fault_reset();
    ASSERT(rep.merged);
    char why[512];
    ASSERT(table_failure(t, why, sizeof why));
    ASSERT_EQ(segments_of(t), 1);
    /* The old files stay (the old MANIFEST may come back after a crash). */
    char pdir[4200];
    part_dir(dir, D0, pdir, sizeof pdir);
    DIR *d = opendir(pdir);
    int files = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        files += strstr(e->d_name, ".seg") != NULL;
    closedir(d);
    ASSERT_EQ(files, 4);
    /* Reads go on; merges and appends are refused. */
    row *got;
    uint32_t ng = read_table(t, &got);
    assert_same_rows(got, ng, want, n);
    free(got);
    ASSERT_EQ(merge_table_once(t, &pol, NULL, &rep, &err), 0); /* nothing left to merge */
    table_close(t);
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0); /* the new MANIFEST: old files removed */
    assert_dir_matches_manifest(pdir);
    ng = read_table(t, &got);
    assert_same_rows(got, ng, want, n);
    table_close(t);
    free(got);
    free(want);
    rm_rf(dir);
}

/* Appends and flushes into an expired and a live partition from a thread while the main
 * thread sweeps: flushes that copied the partition list before a sweep skip what it
 * dropped, the live partition keeps every row. */
static void *expired_writer_main(void *p)
{
    strata_table *t = p;
    strata_err err = {0};
    for (int b = 0; b < 150; b++) {
        row rows[2] = {row_of((uint64_t)b * 2 + 1, 0, D0), row_of((uint64_t)b * 2 + 2, 0, D0 + 3 * DAY)};
        append_rows(t, rows, 2);
        if (table_flush(t, true, &err) != 0)
            abort();
    }
    return NULL;
}

TEST(retention_beside_appends_and_flushes)
{
    char dir[4096];
    test_tmpdir(dir, sizeof dir, "retention_concurrent");
    strata_schema s;
    make_schema(&s);
    s.retention_raw_ms = 2 * DAY;
    strata_table *t;
    strata_err err = {0};
    ASSERT_EQ(table_open(dir, &s, &t, &err), 0);
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, expired_writer_main, t), 0);
    uint64_t dropped = 0;
    for (int i = 0; i < 300; i++) {
        retention_report rep;
        ASSERT_EQ(retention_sweep(t, D0 + 4 * DAY, &rep, &err), 0);
        dropped += rep.rows;
        usleep(500);
    }
    pthread_join(th, NULL);
    retention_report rep;
    ASSERT_EQ(retention_sweep(t, D0 + 4 * DAY, &rep, &err), 0);
    dropped += rep.rows;
    ASSERT_U64_EQ(dropped, 150);
    row *got;
    uint32_t ng = read_table(t, &got);
    row want[150];
    for (int b = 0; b < 150; b++)
        want[b] = row_of((uint64_t)b * 2 + 2, 0, D0 + 3 * DAY);
    assert_same_rows(got, ng, want, 150);
    table_close(t);
    free(got);
    rm_rf(dir);
}

TEST_LIST(T(select_takes_the_longest_run_of_tiny_segments), T(select_keeps_sizes_similar),
          T(select_does_not_rewrite_a_big_segment_for_each_small_flush),
          T(select_needs_four_big_segments_and_stays_bounded), T(select_levels_grow_and_are_capped),
          T(merge_keeps_every_row_and_value), T(merge_filter_drops_rows),
          T(flush_and_merge_sort_by_hour_then_order_by),
          T(snapshot_before_a_merge_reads_the_old_segments),
          T(optimize_merges_a_partition_within_the_bounds), T(merge_of_a_dropped_table_is_refused), T(merge_commit_not_durable_fails_the_table),
          T(merges_beside_appends_and_flushes), T(retention_drops_expired_partitions_whole), T(retention_beside_appends_and_flushes),
          T(recovery_removes_a_merge_left_unlisted))
