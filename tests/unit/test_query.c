/*
 * test_query.c — differential test of the query engine. Random rows go into every kind of
 * source a table serves: segments the table flushes (granules of SEGMENT_GRANULE_ROWS),
 * segments written directly with other granule sizes (small, odd, and the format's
 * largest, SEGMENT_MAX_GRANULE_ROWS) and committed in their partition's MANIFEST, and sealed
 * and active memtables of several chunks. Random queries (time ranges, buckets, AND/OR
 * filters with every operator, group-bys, every aggregate, fill, order_by and limit) are
 * answered by query_run and by a deliberately naive reference written here (a loop over
 * all rows; fill adds a group for every bucket sharing an instant with [from, to) and
 * every group tuple found, where none was). count/sum/min/max must match exactly, float
 * sums and avg within 1e-9 of the sum of magnitudes, uniq within 2% (+2), quantile within
 * 1% of the exact rank value.
 * The order must be query.h's rule exactly (order_by columns, then the group keys
 * ascending); where an approximate aggregate decides between two groups whose reference
 * values are within the tolerances, either order is accepted. A limit must keep the
 * first rows of that order: no group left out may sort before the last one kept.
 *
 * Each test builds its own table (build_table) and drops it at its end.
 */
#include <math.h>
#include <unistd.h>

#include "engine/manifest.h"
#include "engine/memtable.h"
#include "engine/memtable_flush.h"
#include "engine/query.h"
#include "engine/segment_format.h"
#include "engine/table.h"
#include "test.h"

enum { C_TS, C_K, C_U, C_F, C_B, C_S1, C_S2, NC };
static const char *S1[] = {"", "a", "b", "c", "dd", "e"};
static const char *S2[] = {"US", "DE", "FR", "JP", "BR", "IN", "CN", "GB", "IT", "ES",
                           "MX", "CA", "AU", "KR", "NL", "SE", "PL", "TR", "AR", "ZA"};
#define T0 INT64_C(1704067200000) /* 2024-01-01T00:00Z: a day partition starts here */
#define DAY INT64_C(86400000)
#define NDAYS 3

typedef struct row {
    int64_t ts, k;
    uint64_t u;
    double f;
    bool b;
    int s1, s2;
} row;

/* The table under test and the reference's copy of every row in it. */
static row *rows;
static int nrows, rows_cap;
static strata_table *tbl;
static char tbl_dir[2048];
static uint64_t seed;
/* Granule bounds in the table's segments (min, max and max + 1 of the int and float
 * columns): predicate values and time ranges drawn from them hit the edges where pruning
 * and the "granule wholly inside the range" path decide. */
static segment_value *edges[NC];
static int nedges[NC], edges_cap[NC];

static uint64_t rnd(uint64_t n)
{
    return test_rand_next(&seed) % n;
}

static void make_schema(strata_schema *s, uint64_t memtable_rows)
{
    schema_init(s);
    snprintf(s->name, sizeof s->name, "q");
    const char *names[] = {"ts", "k", "u", "f", "b", "s1", "s2"};
    strata_type types[] = {STRATA_TIMESTAMP, STRATA_INT64, STRATA_UINT64, STRATA_FLOAT64,
                           STRATA_BOOL,      STRATA_STRING, STRATA_STRING};
    for (int i = 0; i < NC; i++) {
        snprintf(s->cols[i].name, sizeof s->cols[i].name, "%s", names[i]);
        s->cols[i].type = types[i];
    }
    s->ncols = NC;
    s->time_col = C_TS;
    s->memtable_max_rows = memtable_rows;
    s->memtable_max_age_ms = 3600000; /* memtables are sealed by rows only, whatever the speed */
    schema_apply_default_order(s);
}

/* A new random row in [from, from + span), appended to rows[]. */
static row *new_row(int64_t from, int64_t span)
{
    if (nrows == rows_cap) {
        rows_cap = rows_cap ? rows_cap * 2 : 65536;
        rows = realloc(rows, sizeof *rows * (size_t)rows_cap);
        ASSERT(rows);
    }
    row *r = &rows[nrows++];
    r->ts = from + (int64_t)rnd((uint64_t)span);
    r->k = (int64_t)rnd(2001) - 1000;
    r->u = (UINT64_C(1) << 63) - 50 + rnd(100); /* straddles 2^63: unsigned order matters */
    r->f = rnd(50) == 0 ? NAN : ((double)((int64_t)rnd(4001) - 2000)) / 100.0; /* ties */
    r->b = rnd(3) == 0;
    r->s1 = (int)rnd(6);
    r->s2 = (int)(rnd(4) ? rnd(5) : rnd(20)); /* skewed */
    return r;
}

static void batch_add(row_batch *b, const row *r)
{
    int64_t j = row_batch_add_row(b);
    ASSERT(j >= 0);
    b->i[C_TS][j] = r->ts;
    b->i[C_K][j] = r->k;
    b->i[C_U][j] = (int64_t)r->u;
    b->f[C_F][j] = r->f;
    b->i[C_B][j] = r->b;
    ASSERT_EQ(row_batch_set_str(b, C_S1, (uint32_t)j, S1[r->s1], (uint32_t)strlen(S1[r->s1])), 0);
    ASSERT_EQ(row_batch_set_str(b, C_S2, (uint32_t)j, S2[r->s2], (uint32_t)strlen(S2[r->s2])), 0);
}

/* ---- building a table ------------------------------------------------------------ */

/* A segment written directly (memtable_write_segment) and committed in the MANIFEST of
 * its partition before table_open, the way a table's own flush commits one. */
typedef struct seg_spec {
    int day;               /* its partition: the day starting at T0 + day * DAY */
    uint32_t nrows;
    uint32_t granule_rows;
    strata_codec codec;
    bool one_key;          /* every row has s1 "b" and s2 "FR": sorted by time alone, the
                            * granules are short time slices, one after the other */
} seg_spec;

typedef struct layout {
    const char *name;      /* the data directory, under STRATA_TEST_TMP */
    const seg_spec *segs;
    int nsegs;
    uint64_t memtable_rows; /* the schema's memtable_max_rows */
    int flushed;           /* then appended over all days and flushed now and then: segments
                            * of SEGMENT_GRANULE_ROWS-row granules */
    int unflushed;         /* then appended to day unflushed_day (-1: all days) and left in
                            * memtables: sealed ones (full) and the active one */
    int unflushed_day;
} layout;

static void write_direct_segment(const char *raw_dir, const strata_schema *s, const seg_spec *sp,
                                 uint64_t id)
{
    strata_err err = {0};
    int64_t key = T0 + sp->day * DAY;
    char part[32], dir[2300], name[32], path[2400];
    schema_partition_name(s->partition_by, key, part, sizeof part);
    snprintf(dir, sizeof dir, "%s/%s", raw_dir, part);
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    ASSERT_EQ(system(cmd), 0);
    memtable *mt = memtable_create(s, key, sp->nrows, &err);
    ASSERT(mt);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, s, 1000), 0);
    for (uint32_t i = 0; i < sp->nrows; i++) {
        row *r = new_row(key, DAY);
        if (sp->one_key) {
            r->s1 = 2;
            r->s2 = 2;
        }
        batch_add(&b, r);
        if (b.nrows == 1000 || i + 1 == sp->nrows) {
            ASSERT_EQ(memtable_append(mt, &b, NULL, b.nrows, &err), 0);
            row_batch_clear(&b);
        }
    }
    row_batch_free(&b);
    manifest_segment_name(id, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    segment_write_opts opts = {.codec = sp->codec, .granule_rows = sp->granule_rows};
    segment_info info;
    if (memtable_write_segment(mt, sp->nrows, path, &opts, NULL, &info, &err) != 0)
        TEST_FAIL_("%s", err.msg);
    memtable_unref(mt);
    manifest m = {0};
    int rc = manifest_read(dir, &m, &err);
    ASSERT(rc == 0 || rc == STRATA_ENOTFOUND);
    m.generation++;
    manifest_segment ms = {id, info.nrows, info.bytes, info.min_time, info.max_time, 0};
    ASSERT_EQ(manifest_add_segment(&m, &ms), 0);
    ASSERT_EQ(manifest_write(dir, &m, NULL, &err), 0);
    manifest_free(&m);
}

static void add_edge(int col, segment_value v)
{
    if (nedges[col] == edges_cap[col]) {
        edges_cap[col] = edges_cap[col] ? edges_cap[col] * 2 : 256;
        edges[col] = realloc(edges[col], sizeof *edges[col] * (size_t)edges_cap[col]);
        ASSERT(edges[col]);
    }
    edges[col][nedges[col]++] = v;
}

static void collect_edges(void)
{
    table_snapshot *snap = table_snapshot_acquire(tbl, INT64_MIN, INT64_MAX);
    ASSERT(snap);
    static const int cols[] = {C_TS, C_K, C_U, C_F};
    for (uint32_t p = 0; p < snap->nparts; p++)
        for (uint32_t i = 0; i < snap->parts[p].nsegs; i++) {
            const segment *seg = snap->parts[p].segs[i];
            for (uint32_t g = 0; g < segment_ngranules(seg); g++)
                for (int j = 0; j < 4; j++) {
                    const segment_granule_meta *gr = segment_granule(seg, cols[j], g);
                    segment_value lo, hi, next;
                    if (cols[j] == C_F) {
                        memcpy(&lo.f, &gr->min, 8);
                        memcpy(&hi.f, &gr->max, 8);
                        next.f = nextafter(hi.f, INFINITY);
                    } else {
                        lo.i = (int64_t)gr->min;
                        hi.i = (int64_t)gr->max;
                        next.i = (int64_t)(gr->max + 1);
                    }
                    add_edge(cols[j], lo);
                    add_edge(cols[j], hi);
                    add_edge(cols[j], next);
                }
        }
    table_snapshot_release(snap);
}

/* Builds tbl and rows[] as L says; checks that the table serves every row. */
static void build_table(const layout *L, uint64_t rng_seed)
{
    seed = rng_seed;
    nrows = 0;
    const char *base = getenv("STRATA_TEST_TMP");
    snprintf(tbl_dir, sizeof tbl_dir, "%.1900s/query-%s-%d", base ? base : "/tmp", L->name,
             (int)getpid());
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", tbl_dir, tbl_dir);
    ASSERT_EQ(system(cmd), 0);
    strata_schema s;
    make_schema(&s, L->memtable_rows);
    char raw_dir[2200];
    snprintf(raw_dir, sizeof raw_dir, "%s/%s/raw", tbl_dir, s.name);
    for (int i = 0; i < L->nsegs; i++)
        write_direct_segment(raw_dir, &s, &L->segs[i], (uint64_t)i + 1);
    strata_err err = {0};
    if (table_open(tbl_dir, &s, &tbl, &err) != 0)
        TEST_FAIL_("%s", err.msg);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, table_schema(tbl), 1000), 0);
    int total = L->flushed + L->unflushed;
    for (int i = 0; i < total; i++) {
        bool later = i >= L->flushed;
        if (later && L->unflushed_day >= 0)
            batch_add(&b, new_row(T0 + L->unflushed_day * DAY, DAY));
        else
            batch_add(&b, new_row(T0, NDAYS * DAY));
        if (b.nrows == 1000 || i + 1 == L->flushed || i + 1 == total) {
            ASSERT_EQ(table_append(tbl, &b, &err), 0);
            row_batch_clear(&b);
            /* now and then (segments of several sizes), and once at the end */
            if (!later && ((i + 1) % 40000 < 1000 || i + 1 == L->flushed))
                ASSERT_EQ(table_flush(tbl, true, &err), 0);
        }
    }
    row_batch_free(&b);
    table_stats st;
    table_get_stats(tbl, &st);
    ASSERT_EQ(st.segment_rows + st.memtable_rows, nrows);
    ASSERT_EQ(st.memtable_rows, L->unflushed);
    collect_edges();
}

static void drop_table(void)
{
    table_close(tbl);
    tbl = NULL;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tbl_dir);
    ASSERT_EQ(system(cmd), 0);
    free(rows);
    rows = NULL;
    nrows = rows_cap = 0;
    for (int c = 0; c < NC; c++) {
        free(edges[c]);
        edges[c] = NULL;
        nedges[c] = edges_cap[c] = 0;
    }
}

/* What the table serves, for tests to assert the sources they mean to exercise exist. */
typedef struct sources {
    uint32_t max_granule_rows;  /* over every segment */
    uint32_t max_granules;      /* granules of the segment with the most */
    uint32_t granules_over_block; /* granules of more than a block */
    uint32_t memtables, memtables_over_chunk; /* with more rows than one chunk */
    uint32_t max_memtables_per_part;
} sources;

static void get_sources(sources *out)
{
    memset(out, 0, sizeof *out);
    table_snapshot *snap = table_snapshot_acquire(tbl, INT64_MIN, INT64_MAX);
    ASSERT(snap);
    for (uint32_t p = 0; p < snap->nparts; p++) {
        const snapshot_part *sp = &snap->parts[p];
        for (uint32_t i = 0; i < sp->nsegs; i++) {
            const segment *seg = sp->segs[i];
            uint32_t gr = segment_granule_rows(seg), ng = segment_ngranules(seg);
            if (gr > out->max_granule_rows)
                out->max_granule_rows = gr;
            if (ng > out->max_granules)
                out->max_granules = ng;
            for (uint32_t g = 0; g < ng; g++)
                out->granules_over_block += segment_granule_nrows(seg, g) > STRATA_BLOCK_ROWS;
        }
        out->memtables += sp->nmts;
        if (sp->nmts > out->max_memtables_per_part)
            out->max_memtables_per_part = sp->nmts;
        for (uint32_t i = 0; i < sp->nmts; i++)
            out->memtables_over_chunk += sp->mt_rows[i] > MEMTABLE_CHUNK_ROWS;
    }
    table_snapshot_release(snap);
}

/* ---- the reference ------------------------------------------------------------------ */

/* The reference's own comparisons (not the engine's segment_pred_match_*): -1, 0, 1 of the
 * row's value against pred value i; NaN compares as "unordered" (2). */
static int ref_cmp(int col, const row *r, const segment_value *v)
{
    switch (col) {
    case C_TS: return (r->ts > v->i) - (r->ts < v->i);
    case C_K: return (r->k > v->i) - (r->k < v->i);
    case C_U: return (r->u > (uint64_t)v->i) - (r->u < (uint64_t)v->i);
    case C_B: return ((int64_t)r->b > v->i) - ((int64_t)r->b < v->i);
    case C_F: return isnan(r->f) || isnan(v->f) ? 2 : (r->f > v->f) - (r->f < v->f);
    default: {
        const char *x = col == C_S1 ? S1[r->s1] : S2[r->s2];
        int c = strncmp(x, v->s.ptr, v->s.len);
        if (c == 0)
            c = strlen(x) > v->s.len;
        return (c > 0) - (c < 0);
    }
    }
}

static bool ref_pred(const segment_pred *p, const row *r)
{
    if (p->op == SEGMENT_PRED_IN || p->op == SEGMENT_PRED_NOT_IN) {
        bool found = false;
        for (uint32_t i = 0; i < p->nvals; i++)
            found |= ref_cmp(p->col, r, &p->vals[i]) == 0;
        return p->op == SEGMENT_PRED_IN ? found : !found;
    }
    int c = ref_cmp(p->col, r, &p->vals[0]);
    if (c == 2) /* NaN: only != holds */
        return p->op == SEGMENT_PRED_NE;
    switch (p->op) {
    case SEGMENT_PRED_EQ: return c == 0;
    case SEGMENT_PRED_NE: return c != 0;
    case SEGMENT_PRED_LT: return c < 0;
    case SEGMENT_PRED_LE: return c <= 0;
    case SEGMENT_PRED_GT: return c > 0;
    default: return c >= 0;
    }
}

static bool ref_expr(const query_expr *e, const row *r)
{
    if (e->kind == QX_PRED)
        return ref_pred(&e->pred, r);
    bool and = e->kind == QX_AND;
    for (uint32_t i = 0; i < e->nkids; i++)
        if (ref_expr(&e->kids[i], r) != and)
            return !and;
    return and;
}

static int64_t ref_key_value(int col, const row *r)
{
    switch (col) {
    case C_K: return r->k;
    case C_B: return r->b;
    case C_S1: return r->s1;
    default: return r->s2;
    }
}

typedef struct ref_group {
    int64_t key[4]; /* time bucket, then group values (strings as their S1/S2 index) */
    int nrows, cap;
    int *members;   /* row indexes */
    bool filled;    /* added by fill: a bucket where the group has no rows */
} ref_group;

/* The reference answer: the groups (in no order) and a hash index on their keys. */
typedef struct ref_answer {
    int nk;         /* key columns: time bucket + group columns */
    int ng, cap;
    ref_group *groups;
    int *slots;     /* group + 1; one table shared by every answer, one at a time */
    uint32_t nslots;
} ref_answer;

static uint32_t key_slot(const ref_answer *a, const int64_t *key)
{
    uint64_t h = 1469598103934665603u;
    for (int j = 0; j < a->nk; j++)
        h = (h ^ (uint64_t)key[j]) * 1099511628211u;
    return (uint32_t)(h ^ (h >> 29)) & (a->nslots - 1);
}

/* The group with this key: its index, or -1; *slot_out (may be NULL) gets its slot or the
 * free slot where it would go. */
static int ref_find(const ref_answer *a, const int64_t *key, uint32_t *slot_out)
{
    uint32_t slot = key_slot(a, key);
    while (a->slots[slot]) {
        const ref_group *g = &a->groups[a->slots[slot] - 1];
        if (memcmp(g->key, key, sizeof key[0] * (size_t)a->nk) == 0)
            break;
        slot = (slot + 1) & (a->nslots - 1);
    }
    if (slot_out)
        *slot_out = slot;
    return a->slots[slot] - 1;
}

/* A new group with this key at the free slot (from ref_find). */
static ref_group *ref_add(ref_answer *a, const int64_t *key, uint32_t slot)
{
    if (a->ng == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->groups = realloc(a->groups, sizeof *a->groups * (size_t)a->cap);
        ASSERT(a->groups);
    }
    ASSERT((uint32_t)a->ng + 1 < a->nslots); /* a free slot stays: probes end */
    ref_group *g = &a->groups[a->ng++];
    memset(g, 0, sizeof *g);
    memcpy(g->key, key, sizeof g->key);
    a->slots[slot] = a->ng;
    return g;
}

/* fill, as query.h says it, done the naive way: the group tuples (group values without
 * the bucket) of the groups found, or the one empty tuple without group_by; the buckets
 * that share an instant with [from, to); a group for every pair not found. */
static void ref_fill(const strata_query *q, ref_answer *a)
{
    int64_t iv = q->interval_ms, tuples[128][4];
    int nt = 0;
    if (q->ngroup == 0) {
        memset(tuples[0], 0, sizeof tuples[0]);
        nt = 1;
    }
    for (int gi = 0; gi < a->ng && q->ngroup > 0; gi++) {
        bool seen = false;
        for (int t = 0; t < nt && !seen; t++)
            seen = memcmp(tuples[t], a->groups[gi].key + 1,
                          sizeof(int64_t) * (size_t)q->ngroup) == 0;
        if (!seen) {
            ASSERT(nt < 128);
            memset(tuples[nt], 0, sizeof tuples[nt]);
            memcpy(tuples[nt++], a->groups[gi].key + 1, sizeof(int64_t) * (size_t)q->ngroup);
        }
    }
    ASSERT(q->from_ms > 0); /* the random ranges are after 1970: / rounds down */
    for (int64_t b = q->from_ms / iv * iv; b < q->to_ms; b += iv) {
        int64_t lo = b > q->from_ms ? b : q->from_ms, hi = b + iv < q->to_ms ? b + iv : q->to_ms;
        if (lo >= hi)
            continue; /* no instant of [from, to) in this bucket */
        for (int t = 0; t < nt; t++) {
            int64_t key[4] = {b};
            memcpy(key + 1, tuples[t], sizeof(int64_t) * (size_t)q->ngroup);
            uint32_t slot;
            if (ref_find(a, key, &slot) < 0)
                ref_add(a, key, slot)->filled = true;
        }
    }
}

/* Every row, naive filtering, grouping by key. */
static void ref_run(const strata_query *q, ref_answer *a)
{
    memset(a, 0, sizeof *a);
    a->nk = (q->interval_ms > 0) + q->ngroup;
    a->nslots = 1024;
    while (a->nslots < 2 * (uint32_t)nrows + 2)
        a->nslots *= 2;
    /* one zeroed table kept from query to query: fresh pages are slow to fault in */
    static int *slots;
    static uint32_t nslots;
    if (a->nslots > nslots) {
        free(slots);
        slots = malloc(sizeof *slots * a->nslots);
        ASSERT(slots);
        nslots = a->nslots;
    }
    memset(slots, 0, sizeof *slots * a->nslots);
    a->slots = slots;
    for (int i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        if (r->ts < q->from_ms || r->ts >= q->to_ms || (q->where && !ref_expr(q->where, r)))
            continue;
        int64_t key[4] = {0};
        int k = 0;
        if (q->interval_ms)
            key[k++] = (r->ts / q->interval_ms) * q->interval_ms; /* times are positive */
        for (int g = 0; g < q->ngroup; g++)
            key[k++] = ref_key_value(q->group_cols[g], r);
        uint32_t slot;
        int gi = ref_find(a, key, &slot);
        ref_group *gr = gi < 0 ? ref_add(a, key, slot) : &a->groups[gi];
        if (gr->nrows == gr->cap) {
            gr->cap = gr->cap ? gr->cap * 2 : 8;
            gr->members = realloc(gr->members, sizeof(int) * (size_t)gr->cap);
            ASSERT(gr->members);
        }
        gr->members[gr->nrows++] = i;
    }
    if (a->nk == 0 && a->ng == 0) { /* no keys: always one row, even over nothing */
        a->groups = calloc(1, sizeof *a->groups);
        a->ng = a->cap = 1;
    }
    if (q->fill != QUERY_FILL_NONE)
        ref_fill(q, a);
}

static void ref_free(ref_answer *a)
{
    for (int j = 0; j < a->ng; j++)
        free(a->groups[j].members);
    free(a->groups);
}

/* One output value: of the reference (tol > 0 when the engine's answer is an estimate or
 * a float sum, and may differ by that much), or an engine cell (tol 0). */
typedef struct ref_val {
    query_cell_kind kind;
    int64_t i; /* QC_INT, QC_BOOL */
    uint64_t u;
    double f;
    const char *s;
    double tol;
} ref_val;

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static double col_double(int col, const row *r)
{
    switch (col) {
    case C_K: return (double)r->k;
    case C_U: return (double)r->u;
    case C_F: return r->f;
    case C_B: return r->b;
    default: return (double)r->ts;
    }
}

static int64_t col_int(int col, const row *r)
{
    switch (col) {
    case C_K: return r->k;
    case C_B: return r->b;
    default: return r->ts;
    }
}

/* Output column col of group g, as query.h defines it. */
static ref_val ref_output(const strata_query *q, int nk, const ref_group *g, int col)
{
    ref_val v = {0};
    if (col < nk) {
        int first = q->interval_ms > 0;
        if (first && col == 0) {
            v.kind = QC_INT;
            v.i = g->key[0];
            return v;
        }
        int gc = q->group_cols[col - first];
        int64_t kv = g->key[col];
        if (gc == C_S1 || gc == C_S2) {
            v.kind = QC_STR;
            v.s = gc == C_S1 ? S1[kv] : S2[kv];
        } else {
            v.kind = gc == C_B ? QC_BOOL : QC_INT;
            v.i = kv;
        }
        return v;
    }
    const query_agg *ag = &q->aggs[col - nk];
    if (g->filled) { /* zero: count, uniq, sum 0 (sum of its type); the rest null */
        bool zero = q->fill == QUERY_FILL_ZERO;
        if (zero && (ag->fn == STRATA_AGG_COUNT || ag->fn == STRATA_AGG_UNIQ ||
                     (ag->fn == STRATA_AGG_SUM && ag->col == C_U)))
            v.kind = QC_UINT;
        else if (zero && ag->fn == STRATA_AGG_SUM)
            v.kind = ag->col == C_F ? QC_FLOAT : QC_INT;
        return v;
    }
    if (ag->fn == STRATA_AGG_COUNT) {
        v.kind = QC_UINT;
        v.u = (uint64_t)g->nrows;
        return v;
    }
    if (ag->fn == STRATA_AGG_UNIQ) { /* exact distinct count; the engine estimates it */
        uint64_t *keys = malloc(sizeof *keys * (size_t)(g->nrows + 1));
        for (int m = 0; m < g->nrows; m++) {
            const row *r = &rows[g->members[m]];
            keys[m] = ag->col == C_S2 ? (uint64_t)r->s2 : ag->col == C_K ? (uint64_t)r->k : r->u;
        }
        qsort(keys, (size_t)g->nrows, sizeof *keys, cmp_u64);
        uint64_t distinct = 0;
        for (int m = 0; m < g->nrows; m++)
            distinct += m == 0 || keys[m] != keys[m - 1];
        free(keys);
        v.kind = QC_UINT;
        v.u = distinct;
        v.tol = 0.02 * (double)distinct + 2;
        return v;
    }
    /* Values of the column in the group, NaN skipped (kept for quantiles only). */
    bool keep = ag->fn == STRATA_AGG_QUANTILE;
    double *vals = keep ? malloc(sizeof *vals * (size_t)(g->nrows + 1)) : NULL;
    int nv = 0;
    double sum = 0, mag = 0, fmin = 0, fmax = 0;
    int64_t isum = 0;
    bool have = false;
    int64_t imin = 0, imax = 0;
    uint64_t umin = 0, umax = 0;
    for (int m = 0; m < g->nrows; m++) {
        const row *r = &rows[g->members[m]];
        double x = col_double(ag->col, r);
        if (isnan(x))
            continue;
        if (keep)
            vals[nv] = x;
        nv++;
        sum += x;
        mag += fabs(x);
        fmin = !have || x < fmin ? x : fmin;
        fmax = !have || x > fmax ? x : fmax;
        if (ag->col == C_U) {
            umin = !have || r->u < umin ? r->u : umin;
            umax = !have || r->u > umax ? r->u : umax;
        } else if (ag->col != C_F) {
            int64_t iv = col_int(ag->col, r);
            isum += iv;
            imin = !have || iv < imin ? iv : imin;
            imax = !have || iv > imax ? iv : imax;
        }
        have = true;
    }
    if (nv == 0) { /* null */
        free(vals);
        return v;
    }
    if (keep)
        qsort(vals, (size_t)nv, sizeof *vals, cmp_dbl);
    switch (ag->fn) {
    case STRATA_AGG_SUM:
        if (ag->col == C_F) {
            v.kind = QC_FLOAT;
            v.f = sum;
            v.tol = 1e-9 * mag + 1e-12;
        } else {
            v.kind = QC_INT;
            v.i = isum;
        }
        break;
    case STRATA_AGG_AVG:
        v.kind = QC_FLOAT;
        v.f = sum / nv;
        v.tol = 1e-9 * (mag / nv) + 1e-12;
        break;
    case STRATA_AGG_MIN:
    case STRATA_AGG_MAX: {
        bool mn = ag->fn == STRATA_AGG_MIN;
        if (ag->col == C_U) { /* exact unsigned comparison, not through double */
            v.kind = QC_UINT;
            v.u = mn ? umin : umax;
        } else if (ag->col == C_F) {
            v.kind = QC_FLOAT;
            v.f = mn ? fmin : fmax;
        } else {
            v.kind = ag->col == C_B ? QC_BOOL : QC_INT;
            v.i = mn ? imin : imax;
        }
        break;
    }
    case STRATA_AGG_QUANTILE:
        v.kind = QC_FLOAT;
        v.f = vals[(int)floor(ag->q * (nv - 1))];
        v.tol = 0.01 * fabs(v.f) + 1e-9;
        break;
    default: break;
    }
    free(vals);
    return v;
}

static ref_val cell_val(const query_cell *c)
{
    ref_val v = {0};
    v.kind = c->kind;
    switch (c->kind) {
    case QC_INT: v.i = c->v.i; break;
    case QC_UINT: v.u = c->v.u; break;
    case QC_FLOAT: v.f = c->v.f; break;
    case QC_BOOL: v.i = c->v.b; break;
    case QC_STR: v.s = c->v.s.ptr; break;
    default: break;
    }
    return v;
}

static double val_num(const ref_val *v)
{
    return v->kind == QC_UINT ? (double)v->u : v->kind == QC_FLOAT ? v->f : (double)v->i;
}

/* Ascending order of two values of one output column, nulls first: -1, 0 or 1; 2 when
 * an estimate decides and the two are within their tolerances (either order is right). */
static int val_cmp(const ref_val *a, const ref_val *b)
{
    if (a->kind == QC_NULL || b->kind == QC_NULL)
        return (a->kind != QC_NULL) - (b->kind != QC_NULL);
    if (a->tol > 0 || b->tol > 0) {
        double x = val_num(a), y = val_num(b);
        if (fabs(x - y) <= a->tol + b->tol)
            return 2;
        return (x > y) - (x < y);
    }
    switch (a->kind) {
    case QC_UINT: return (a->u > b->u) - (a->u < b->u);
    case QC_FLOAT: return (a->f > b->f) - (a->f < b->f);
    case QC_STR: {
        int c = strcmp(a->s, b->s); /* byte order: the dictionary order of these strings */
        return (c > 0) - (c < 0);
    }
    default: return (a->i > b->i) - (a->i < b->i);
    }
}

static bool val_matches(const ref_val *got, const ref_val *want)
{
    if (got->kind != want->kind)
        return false;
    switch (want->kind) {
    case QC_NULL: return true;
    case QC_STR: return strcmp(got->s, want->s) == 0;
    case QC_UINT:
        return want->tol > 0 ? fabs((double)got->u - (double)want->u) <= want->tol : got->u == want->u;
    case QC_FLOAT: return fabs(got->f - want->f) <= want->tol;
    default: return got->i == want->i;
    }
}

static void val_print(char *out, size_t cap, const ref_val *v)
{
    switch (v->kind) {
    case QC_NULL: snprintf(out, cap, "null"); break;
    case QC_INT: snprintf(out, cap, "%lld", (long long)v->i); break;
    case QC_BOOL: snprintf(out, cap, "%s", v->i ? "true" : "false"); break;
    case QC_UINT: snprintf(out, cap, "%llu", (unsigned long long)v->u); break;
    case QC_FLOAT: snprintf(out, cap, "%.17g", v->f); break;
    case QC_STR: snprintf(out, cap, "\"%s\"", v->s); break;
    default: snprintf(out, cap, "?"); break;
    }
    if (v->tol > 0) {
        size_t n = strlen(out);
        snprintf(out + n, cap - n, " (+-%g)", v->tol);
    }
}

/* The documented order of two output rows: order_by columns (desc reversed), then the
 * key columns ascending. -1, 1 (0 only for equal keys), or 2 when estimates decide and
 * cannot tell. */
static int rule_cmp(const strata_query *q, int nk, const ref_val *a, const ref_val *b)
{
    for (int o = 0; o < q->norder; o++) {
        int col = q->order[o].output_col;
        int c = val_cmp(&a[col], &b[col]);
        if (c == 2)
            return 2;
        if (c)
            return q->order[o].desc ? -c : c;
    }
    for (int k = 0; k < nk; k++) {
        int c = val_cmp(&a[k], &b[k]);
        if (c)
            return c;
    }
    return 0;
}

static void print_query(const strata_query *q)
{
    fprintf(stderr, "query: from %lld to %lld, interval %lld, group_by", (long long)q->from_ms,
            (long long)q->to_ms, (long long)q->interval_ms);
    for (int g = 0; g < q->ngroup; g++)
        fprintf(stderr, " %d", q->group_cols[g]);
    fprintf(stderr, ", aggs");
    for (int a = 0; a < q->naggs; a++)
        fprintf(stderr, " %s(%d%s)", strata_agg_name(q->aggs[a].fn), q->aggs[a].col,
                q->aggs[a].fn == STRATA_AGG_QUANTILE ? ",q" : "");
    fprintf(stderr, ", where %s, order_by", q->where ? "yes" : "no");
    for (int o = 0; o < q->norder; o++)
        fprintf(stderr, " %d%s", q->order[o].output_col, q->order[o].desc ? " desc" : "");
    fprintf(stderr, ", limit %lld, fill %d, threads %d\n", (long long)q->limit, (int)q->fill,
            q->threads);
}

#define QFAIL(q, ...)                                                                              \
    do {                                                                                           \
        print_query(q);                                                                            \
        TEST_FAIL_(__VA_ARGS__);                                                                   \
    } while (0)

/* Holds query_run's answer res to the reference a: rows and values, order, limit. */
static void check_answer(const strata_query *q, const query_result *res, const ref_answer *a, int qn)
{
    int nk = a->nk, ncols = nk + q->naggs;
    if (res->ncols != ncols)
        QFAIL(q, "query %d: %d columns, want %d", qn, res->ncols, ncols);
    uint64_t want = q->limit >= 0 && q->limit < a->ng ? (uint64_t)q->limit : (uint64_t)a->ng;
    if (res->nrows != want)
        QFAIL(q, "query %d: %llu rows, want %llu (limit %lld of %d groups)", qn,
              (unsigned long long)res->nrows, (unsigned long long)want, (long long)q->limit, a->ng);
    ref_val *cur = calloc((size_t)ncols, sizeof *cur), *prev = calloc((size_t)ncols, sizeof *prev);
    char *kept = calloc((size_t)a->ng + 1, 1);
    int last = -1;
    for (uint64_t ri = 0; ri < res->nrows; ri++) {
        for (int c = 0; c < ncols; c++)
            cur[c] = cell_val(query_result_cell(res, ri, c));
        /* its reference group, by key */
        int64_t key[4] = {0};
        for (int k = 0; k < nk; k++) {
            if (cur[k].kind == QC_STR) {
                int gc = q->group_cols[k - (q->interval_ms > 0)];
                const char **tab = gc == C_S1 ? S1 : S2;
                int n = gc == C_S1 ? 6 : 20;
                key[k] = -1;
                for (int t = 0; t < n; t++)
                    if (strcmp(tab[t], cur[k].s) == 0)
                        key[k] = t;
            } else {
                key[k] = cur[k].i;
            }
        }
        int gi = nk ? ref_find(a, key, NULL) : 0;
        if (gi < 0)
            QFAIL(q, "query %d: row %llu has no reference group", qn, (unsigned long long)ri);
        if (kept[gi])
            QFAIL(q, "query %d: row %llu repeats a group", qn, (unsigned long long)ri);
        kept[gi] = 1;
        last = gi;
        for (int c = 0; c < ncols; c++) {
            ref_val w = ref_output(q, nk, &a->groups[gi], c);
            if (!val_matches(&cur[c], &w)) {
                char g1[128], g2[128];
                val_print(g1, sizeof g1, &cur[c]);
                val_print(g2, sizeof g2, &w);
                QFAIL(q, "query %d: row %llu column %s: %s, reference %s (group of %d rows)", qn,
                      (unsigned long long)ri, res->names[c], g1, g2, a->groups[gi].nrows);
            }
        }
        if (ri > 0 && rule_cmp(q, nk, prev, cur) != -1)
            QFAIL(q, "query %d: rows %llu and %llu are out of order", qn, (unsigned long long)ri - 1,
                  (unsigned long long)ri);
        ref_val *t = prev;
        prev = cur;
        cur = t;
    }
    /* A limit keeps the first rows: no group left out belongs before the last one kept. */
    if (res->nrows > 0 && res->nrows < (uint64_t)a->ng) {
        ref_val *lv = calloc((size_t)ncols, sizeof *lv), *gv = calloc((size_t)ncols, sizeof *gv);
        bool *used = calloc((size_t)ncols, sizeof *used);
        for (int k = 0; k < nk; k++)
            used[k] = true;
        for (int o = 0; o < q->norder; o++)
            used[q->order[o].output_col] = true;
        for (int c = 0; c < ncols; c++)
            if (used[c])
                lv[c] = ref_output(q, nk, &a->groups[last], c);
        for (int gi = 0; gi < a->ng; gi++) {
            if (kept[gi])
                continue;
            for (int c = 0; c < ncols; c++)
                if (used[c])
                    gv[c] = ref_output(q, nk, &a->groups[gi], c);
            if (rule_cmp(q, nk, gv, lv) == -1)
                QFAIL(q, "query %d: a group left out by limit %lld sorts before the last row kept",
                      qn, (long long)q->limit);
        }
        free(lv);
        free(gv);
        free(used);
    }
    free(cur);
    free(prev);
    free(kept);
}

/* ---- random queries --------------------------------------------------------------- */

static void rand_value(int col, segment_value *v, char **str)
{
    const row *r = &rows[rnd((uint64_t)nrows)];
    if (nedges[col] && rnd(4) == 0) { /* a granule's bound, or just past it */
        *v = edges[col][rnd((uint64_t)nedges[col])];
        return;
    }
    if (rnd(2)) { /* a value some row holds: boundaries and equality get exercised */
        switch (col) {
        case C_TS: v->i = r->ts; return;
        case C_K: v->i = r->k; return;
        case C_U: v->i = (int64_t)r->u; return;
        case C_F:
            if (!isnan(r->f)) {
                v->f = r->f;
                return;
            }
            break;
        default: break;
        }
    }
    switch (col) {
    case C_TS: v->i = T0 + (int64_t)rnd((uint64_t)(NDAYS * DAY)); break;
    case C_K: v->i = (int64_t)rnd(2201) - 1100; break;
    case C_U: v->i = (int64_t)((UINT64_C(1) << 63) - 60 + rnd(120)); break;
    case C_F: v->f = ((double)((int64_t)rnd(4401) - 2200)) / 100.0; break;
    case C_B: v->i = (int64_t)rnd(2); break;
    default: {
        const char *s = col == C_S1 ? (rnd(5) ? S1[rnd(6)] : "zz") : (rnd(5) ? S2[rnd(20)] : "XX");
        *str = strdup(s);
        v->s = (strata_str){*str, (uint32_t)strlen(s)};
    }
    }
}

static void rand_expr(query_expr *e, int depth)
{
    memset(e, 0, sizeof *e);
    if (depth >= 3 || rnd(3) != 0) {
        e->kind = QX_PRED;
        int col = (int)rnd(NC);
        segment_pred_op op = (segment_pred_op)rnd(8);
        uint32_t n = (op == SEGMENT_PRED_IN || op == SEGMENT_PRED_NOT_IN) ? (uint32_t)rnd(4) : 1;
        e->vals = calloc(n + 1, sizeof *e->vals);
        e->strs = calloc(n + 1, sizeof *e->strs);
        for (uint32_t i = 0; i < n; i++)
            rand_value(col, &e->vals[i], &e->strs[i]);
        e->pred = (segment_pred){col, op, n, e->vals};
        return;
    }
    e->kind = rnd(2) ? QX_AND : QX_OR;
    e->nkids = 1 + (uint32_t)rnd(3);
    e->kids = calloc(e->nkids, sizeof *e->kids);
    for (uint32_t i = 0; i < e->nkids; i++)
        rand_expr(&e->kids[i], depth + 1);
}

static void rand_query(strata_query *q)
{
    query_init(q);
    int64_t span = NDAYS * DAY;
    int64_t t[2];
    for (int i = 0; i < 2; i++) {
        uint64_t how = rnd(3);
        if (how == 0 || !nedges[C_TS])
            t[i] = T0 - 3600000 + (int64_t)rnd((uint64_t)span + 7200000);
        else if (how == 1) /* bounds on rows' own times: inclusive from, exclusive to */
            t[i] = rows[rnd((uint64_t)nrows)].ts;
        else /* a granule's first or last time, or just past it */
            t[i] = edges[C_TS][rnd((uint64_t)nedges[C_TS])].i;
    }
    int64_t a = t[0], b = t[1];
    q->from_ms = rnd(4) == 0 ? INT64_MIN : (a < b ? a : b);
    q->to_ms = rnd(4) == 0 ? INT64_MAX : (a < b ? b : a);
    /* 7 and 30 days hold all the data in one bucket: granules then skip the time column */
    static const int64_t intervals[] = {0, 0, 60000, 3600000, 86400000, 420000, 604800000, 2592000000};
    q->interval_ms = intervals[rnd(8)];
    q->threads = 1 + (int)rnd(3); /* 2 and 3 threads exercise the merge of partial groups */
    static const int gcols[] = {C_S1, C_S2, C_B, C_K};
    q->ngroup = (int)rnd(3);
    if (q->ngroup == 2 && rnd(2))
        q->ngroup = 1;
    for (int g = 0; g < q->ngroup; g++) {
        int c;
        bool dup;
        do {
            c = gcols[rnd(q->interval_ms ? 3 : 4)]; /* k groups are many: only without buckets */
            dup = false;
            for (int h = 0; h < g; h++)
                dup |= q->group_cols[h] == c;
        } while (dup);
        q->group_cols[g] = c;
    }
    q->naggs = 1 + (int)rnd(4);
    for (int i = 0; i < q->naggs; i++) {
        query_agg *ag = &q->aggs[i];
        ag->col = -1;
        switch (rnd(7)) {
        case 0: ag->fn = STRATA_AGG_COUNT; break;
        case 1: ag->fn = STRATA_AGG_SUM; ag->col = (int[]){C_K, C_F, C_B}[rnd(3)]; break;
        case 2: ag->fn = STRATA_AGG_MIN; ag->col = (int[]){C_K, C_U, C_F, C_TS}[rnd(4)]; break;
        case 3: ag->fn = STRATA_AGG_MAX; ag->col = (int[]){C_K, C_U, C_F, C_B}[rnd(4)]; break;
        case 4: ag->fn = STRATA_AGG_AVG; ag->col = (int[]){C_K, C_F}[rnd(2)]; break;
        case 5: ag->fn = STRATA_AGG_UNIQ; ag->col = (int[]){C_S2, C_K, C_U}[rnd(3)]; break;
        default:
            ag->fn = STRATA_AGG_QUANTILE;
            ag->col = (int[]){C_K, C_F}[rnd(2)];
            ag->q = (double)rnd(101) / 100.0;
            break;
        }
        snprintf(ag->name, sizeof ag->name, "a%d", i);
    }
    if (rnd(3)) {
        q->where = malloc(sizeof *q->where);
        rand_expr(q->where, 0);
    }
    /* fill, when the answer stays small (buckets x the most group tuples there can be);
     * half the time over a range reaching a day past the data at both ends, so that whole
     * buckets are empty, not only where the filter or the groups are sparse */
    if (q->interval_ms > 0 && q->from_ms != INT64_MIN && q->to_ms != INT64_MAX && rnd(4) != 0) {
        if (rnd(2)) {
            q->from_ms = T0 - (int64_t)rnd((uint64_t)DAY);
            q->to_ms = T0 + NDAYS * DAY + (int64_t)rnd((uint64_t)DAY);
        }
        int64_t nb = q->from_ms < q->to_ms
                         ? (q->to_ms - 1) / q->interval_ms - q->from_ms / q->interval_ms + 1
                         : 0;
        for (int g = 0; g < q->ngroup; g++)
            nb *= q->group_cols[g] == C_S1 ? 6 : q->group_cols[g] == C_S2 ? 20 : 2;
        if (nb <= 10000)
            q->fill = rnd(2) ? QUERY_FILL_ZERO : QUERY_FILL_NULL;
    }
}

/* Random order_by (up to 3 distinct output columns, each asc or desc) and limit (none,
 * or 0 to ng + 1 where ng is the number of groups the answer has). */
static void rand_order(strata_query *q, int ng)
{
    int ncols = (q->interval_ms > 0) + q->ngroup + q->naggs;
    q->norder = (int)rnd(4);
    if (q->norder > ncols)
        q->norder = ncols;
    for (int o = 0; o < q->norder; o++) {
        int c;
        bool dup;
        do {
            c = (int)rnd((uint64_t)ncols);
            dup = false;
            for (int p = 0; p < o; p++)
                dup |= q->order[p].output_col == c;
        } while (dup);
        q->order[o] = (query_order){c, rnd(2) == 0};
    }
    q->limit = rnd(3) == 0 ? -1 : (int64_t)rnd((uint64_t)ng + 2);
}

/* Random queries with a fill that added rows, over every run_random_queries so far. */
static int filled_queries;

/* n random queries over tbl, each held to the reference. Returns how many found rows. */
static int run_random_queries(int n)
{
    int nonempty = 0;
    for (int qn = 0; qn < n; qn++) {
        strata_query q;
        rand_query(&q);
        ref_answer a;
        ref_run(&q, &a);
        rand_order(&q, a.ng);
        strata_err err = {0};
        query_result *res;
        if (query_run(tbl, &q, &res, &err) != 0)
            QFAIL(&q, "query %d: %s", qn, err.msg);
        check_answer(&q, res, &a, qn);
        nonempty += a.ng > 0 && a.groups[0].nrows > 0;
        bool filled = false;
        for (int g = 0; g < a.ng && !filled; g++)
            filled = a.groups[g].filled;
        filled_queries += filled;
        ref_free(&a);
        query_result_free(res);
        query_free(&q);
    }
    return nonempty;
}

/* ---- tests ------------------------------------------------------------------------ */

/* B1: a segment with granules larger than the executor's block (the format allows up to
 * SEGMENT_MAX_GRANULE_ROWS rows; `strata inspect --verify` accepts them) was decoded whole
 * into block-sized buffers: a heap overflow on the first query that read it. */
TEST(query_over_65536_row_granules)
{
    static const seg_spec segs[] = {
        {0, 2 * SEGMENT_MAX_GRANULE_ROWS + 4321, SEGMENT_MAX_GRANULE_ROWS, STRATA_CODEC_LZ4, false},
        {1, 2 * 20000 + 7777, 20000, STRATA_CODEC_ZSTD, false},
        {2, 6000, 700, STRATA_CODEC_LZ4, false},
    };
    layout L = {"b1", segs, 3, 20000, 0, 10000, -1};
    build_table(&L, 7);
    sources src;
    get_sources(&src);
    ASSERT_EQ(src.max_granule_rows, SEGMENT_MAX_GRANULE_ROWS);
    ASSERT_GE(src.granules_over_block, 4); /* two of 65536 rows, two of 20000 */
    ASSERT_GT(src.memtables, 0);
    /* The segments are sound: segment_verify is what `strata inspect --verify` runs. */
    table_snapshot *snap = table_snapshot_acquire(tbl, INT64_MIN, INT64_MAX);
    ASSERT(snap);
    for (uint32_t p = 0; p < snap->nparts; p++)
        for (uint32_t i = 0; i < snap->parts[p].nsegs; i++) {
            strata_err err = {0};
            if (segment_verify(snap->parts[p].segs[i], &err) != 0)
                TEST_FAIL_("%s", err.msg);
        }
    table_snapshot_release(snap);

    /* Every row read, every column decoded: the whole of each big granule. */
    strata_query q;
    query_init(&q);
    q.interval_ms = 3600000;
    q.ngroup = 1;
    q.group_cols[0] = C_S1;
    q.naggs = 4;
    q.aggs[0] = (query_agg){STRATA_AGG_COUNT, -1, 0, "n"};
    q.aggs[1] = (query_agg){STRATA_AGG_SUM, C_F, 0, "sf"};
    q.aggs[2] = (query_agg){STRATA_AGG_QUANTILE, C_K, 0.9, "p90"};
    q.aggs[3] = (query_agg){STRATA_AGG_UNIQ, C_S2, 0, "us2"};
    for (int th = 1; th <= 2; th++) {
        q.threads = th;
        ref_answer a;
        ref_run(&q, &a);
        strata_err err = {0};
        query_result *res;
        if (query_run(tbl, &q, &res, &err) != 0)
            QFAIL(&q, "%s", err.msg);
        check_answer(&q, res, &a, -th); /* "query -1" and "-2" in messages */
        ASSERT_U64_EQ(res->rows_read, nrows);
        ref_free(&a);
        query_result_free(res);
    }
    ASSERT_GT(run_random_queries(60), 20);
    drop_table();
}

/* The engine against the reference on many granules per segment (so granule pruning and
 * the "granule wholly inside the range" paths decide), memtables of several chunks
 * (sealed and active), random order_by and limit. */
TEST(differential_random_queries)
{
    static const seg_spec segs[] = {
        {0, 15000, 1000, STRATA_CODEC_LZ4, false},
        {1, 9000, 333, STRATA_CODEC_ZSTD, false},
        {1, 3000, 64, STRATA_CODEC_LZ4, false},
        {2, 6000, 128, STRATA_CODEC_LZ4, true},
    };
    layout L = {"diff", segs, 4, 12000, 60000, 3 * 12000 + 9000, 2};
    build_table(&L, 12345);
    sources src;
    get_sources(&src);
    ASSERT_GE(src.max_granules, 40);        /* pruning has granules to choose from */
    ASSERT_GE(src.memtables_over_chunk, 4); /* three sealed and the active one */
    ASSERT_GE(src.max_memtables_per_part, 4);
    filled_queries = 0;
    ASSERT_GT(run_random_queries(250), 100); /* the queries found rows often enough to mean something */
    ASSERT_GT(filled_queries, 20); /* and fill added rows often enough */
    fprintf(stderr, "%d of 250 queries had rows added by fill\n", filled_queries);
    drop_table();
}

TEST(order_limit_and_empty_answers)
{
    static const seg_spec segs[] = {{1, 8000, 500, STRATA_CODEC_LZ4, false}};
    layout L = {"order", segs, 1, 12000, 15000, 10000, -1};
    build_table(&L, 99);

    /* Top 3 of s2 by count: exact, ties broken by s2 ascending. */
    strata_query q;
    query_init(&q);
    q.ngroup = 1;
    q.group_cols[0] = C_S2;
    q.naggs = 2;
    q.aggs[0] = (query_agg){STRATA_AGG_COUNT, -1, 0, "n"};
    q.aggs[1] = (query_agg){STRATA_AGG_SUM, C_K, 0, "sk"};
    q.norder = 1;
    q.order[0] = (query_order){1, true};
    q.limit = 3;
    int count[20] = {0};
    for (int i = 0; i < nrows; i++)
        count[rows[i].s2]++;
    int top[3];
    for (int t = 0; t < 3; t++) {
        top[t] = -1;
        for (int s = 0; s < 20; s++) {
            bool taken = false;
            for (int u = 0; u < t; u++)
                taken |= top[u] == s;
            if (!taken && (top[t] < 0 || count[s] > count[top[t]] ||
                           (count[s] == count[top[t]] && strcmp(S2[s], S2[top[t]]) < 0)))
                top[t] = s;
        }
    }
    strata_err err = {0};
    query_result *r;
    ASSERT_EQ(query_run(tbl, &q, &r, &err), 0);
    ASSERT_EQ(r->nrows, 3);
    ASSERT_STR_EQ(r->names[0], "s2");
    ASSERT_STR_EQ(r->types[1], "uint64");
    ASSERT_STR_EQ(r->types[2], "int64");
    for (int t = 0; t < 3; t++) {
        ASSERT_STR_EQ(query_result_cell(r, (uint64_t)t, 0)->v.s.ptr, S2[top[t]]);
        ASSERT_U64_EQ(query_result_cell(r, (uint64_t)t, 1)->v.u, count[top[t]]);
    }
    ASSERT_U64_EQ(r->rows_read, nrows);
    query_result_free(r);

    /* Nothing in range: no groups, but a plain count answers one row of 0. */
    q.from_ms = T0 - 10 * DAY;
    q.to_ms = T0 - 9 * DAY;
    ASSERT_EQ(query_run(tbl, &q, &r, &err), 0);
    ASSERT_EQ(r->nrows, 0);
    query_result_free(r);
    q.ngroup = 0;
    q.norder = 0;
    ASSERT_EQ(query_run(tbl, &q, &r, &err), 0);
    ASSERT_EQ(r->nrows, 1);
    ASSERT_EQ(query_result_cell(r, 0, 0)->v.u, 0);
    ASSERT_EQ(query_result_cell(r, 0, 1)->kind, QC_NULL);
    query_result_free(r);

    /* Counts only: segments wholly in range answer from their footers; the rest is read. */
    for (int k = 0; k < 20; k++) {
        strata_query cq;
        query_init(&cq);
        cq.naggs = 2;
        cq.aggs[0] = (query_agg){STRATA_AGG_COUNT, -1, 0, "n"};
        cq.aggs[1] = (query_agg){STRATA_AGG_COUNT, -1, 0, "m"};
        if (k > 0) {
            cq.from_ms = rows[rnd((uint64_t)nrows)].ts;
            cq.to_ms = k % 2 ? rows[rnd((uint64_t)nrows)].ts : INT64_MAX;
        }
        uint64_t want = 0;
        for (int i = 0; i < nrows; i++)
            want += rows[i].ts >= cq.from_ms && rows[i].ts < cq.to_ms;
        ASSERT_EQ(query_run(tbl, &cq, &r, &err), 0);
        ASSERT_U64_EQ(query_result_cell(r, 0, 0)->v.u, want);
        ASSERT_U64_EQ(query_result_cell(r, 0, 1)->v.u, want);
        query_result_free(r);
    }

    /* The memory limit: grouping by a high-cardinality column with a sketch per group
     * passes 256 KiB and is stopped, on one thread and on two; without it the same query
     * answers. */
    strata_query mq;
    query_init(&mq);
    mq.ngroup = 1;
    mq.group_cols[0] = C_K;
    mq.naggs = 2;
    mq.aggs[0] = (query_agg){STRATA_AGG_UNIQ, C_U, 0, "uu"};
    mq.aggs[1] = (query_agg){STRATA_AGG_QUANTILE, C_F, 0.5, "med"};
    ASSERT_EQ(query_run(tbl, &mq, &r, &err), 0);
    ASSERT_GT(r->nrows, 1000);
    query_result_free(r);
    mq.max_memory = 256 << 10;
    for (int th = 1; th <= 2; th++) {
        mq.threads = th;
        ASSERT_EQ(query_run(tbl, &mq, &r, &err), STRATA_EFULL);
        ASSERT_CONTAINS(err.msg, "memory");
    }
    mq.max_memory = 1 << 30;
    ASSERT_EQ(query_run(tbl, &mq, &r, &err), 0);
    query_result_free(r);

    /* Bad queries name what is wrong. */
    q.aggs[1] = (query_agg){STRATA_AGG_SUM, C_S1, 0, "bad"};
    ASSERT_EQ(query_run(tbl, &q, &r, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "'s1'");
    q.aggs[1] = (query_agg){STRATA_AGG_QUANTILE, C_F, 1.5, "bad"};
    ASSERT_EQ(query_run(tbl, &q, &r, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, ".q");
    drop_table();
}

/* fill needs finite bounds to know its buckets, and its rows (buckets x groups) count
 * against max_groups: the buckets alone before the scan, the product after it. */
TEST(fill_needs_bounds_and_stays_under_max_groups)
{
    layout L = {"fill", NULL, 0, 12000, 15000, 0, -1};
    build_table(&L, 4242);
    strata_query q;
    query_init(&q);
    q.from_ms = T0;
    q.to_ms = T0 + NDAYS * DAY;
    q.fill = QUERY_FILL_ZERO;
    q.naggs = 1;
    q.aggs[0] = (query_agg){STRATA_AGG_COUNT, -1, 0, "n"};
    strata_err err = {0};
    query_result *r;
    ASSERT_EQ(query_run(tbl, &q, &r, &err), STRATA_EINVAL);
    ASSERT_STR_EQ(err.msg, "fill: needs an interval (the time buckets to fill)");
    q.interval_ms = 3600000;
    q.from_ms = INT64_MIN;
    ASSERT_EQ(query_run(tbl, &q, &r, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "fill: needs a from");
    q.from_ms = T0;
    q.to_ms = INT64_MAX;
    ASSERT_EQ(query_run(tbl, &q, &r, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "fill: needs a to");
    q.from_ms = INT64_MIN + 1; /* its bucket would start before INT64_MIN */
    q.to_ms = INT64_MIN + 2;
    ASSERT_EQ(query_run(tbl, &q, &r, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "starts before the earliest time");

    /* 3 days of 1m buckets: 4320 rows, refused before reading anything */
    q.from_ms = T0;
    q.to_ms = T0 + NDAYS * DAY;
    q.interval_ms = 60000;
    q.max_groups = 1000;
    ASSERT_EQ(query_run(tbl, &q, &r, &err), STRATA_EFULL);
    ASSERT_STR_EQ(err.msg, "query: fill would answer 4320 rows (4320 buckets of 1m between from "
                           "and to), more than the 1000 groups a query may make; narrow from and "
                           "to, widen the interval or raise the limit");
    q.max_groups = 0; /* no limit: every bucket */
    ASSERT_EQ(query_run(tbl, &q, &r, &err), 0);
    ASSERT_U64_EQ(r->nrows, 4320);
    query_result_free(r);

    /* 13 days of 1h buckets (data in the last 3) for each of the 6 values of s1: the
     * 432 groups found pass the limit of 1000, the 1872 rows filled do not */
    q.from_ms = T0 - 10 * DAY;
    q.interval_ms = 3600000;
    q.ngroup = 1;
    q.group_cols[0] = C_S1;
    q.max_groups = 1000;
    for (int th = 1; th <= 2; th++) {
        q.threads = th;
        ASSERT_EQ(query_run(tbl, &q, &r, &err), STRATA_EFULL);
        ASSERT_STR_EQ(err.msg,
                      "query: fill would answer 1872 rows (312 buckets of 1h for each of 6 "
                      "groups), more than the 1000 groups a query may make; narrow from and to, "
                      "widen the interval, group by fewer columns or raise the limit");
    }
    q.max_groups = 1872;
    ASSERT_EQ(query_run(tbl, &q, &r, &err), 0);
    ASSERT_U64_EQ(r->nrows, 1872);
    uint64_t total = 0;
    for (uint64_t i = 0; i < r->nrows; i++)
        total += query_result_cell(r, i, 2)->v.u;
    ASSERT_U64_EQ(total, nrows);
    ASSERT_EQ(query_result_cell(r, 0, 0)->v.i, T0 - 10 * DAY);
    ASSERT_U64_EQ(query_result_cell(r, 0, 2)->v.u, 0);
    query_result_free(r);
    drop_table();
}

TEST_LIST(T(query_over_65536_row_granules), T(differential_random_queries),
          T(order_limit_and_empty_answers), T(fill_needs_bounds_and_stays_under_max_groups))
