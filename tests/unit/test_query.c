/*
 * test_query.c — differential test of the query engine: random data (part flushed to
 * segments, part still in memtables), random queries (time ranges, buckets, AND/OR
 * filters with every operator, group-bys, every aggregate), answered by query_run and by
 * a deliberately naive reference evaluator written here (a loop over all rows, groups in a
 * linear list). count/sum/min/max/avg must match exactly (float sums within 1e-9 of the
 * sum of magnitudes), uniq within 2% (+2), quantile within 1% of the exact rank value.
 */
#include <math.h>
#include <unistd.h>

#include "query.h"
#include "table.h"
#include "test.h"

enum { C_TS, C_K, C_U, C_F, C_B, C_S1, C_S2, NC };
static const char *S1[] = {"", "a", "b", "c", "dd", "e"};
static const char *S2[] = {"US", "DE", "FR", "JP", "BR", "IN", "CN", "GB", "IT", "ES",
                           "MX", "CA", "AU", "KR", "NL", "SE", "PL", "TR", "AR", "ZA"};
#define T0 INT64_C(1704067200000)
#define SPAN (3 * INT64_C(86400000))
#define NROWS 30000

typedef struct row {
    int64_t ts, k;
    uint64_t u;
    double f;
    bool b;
    int s1, s2;
} row;

static row rows[NROWS];
static strata_table *tbl;
static uint64_t seed = 12345;

static uint64_t rnd(uint64_t n)
{
    return test_rand_next(&seed) % n;
}

static void make_schema(strata_schema *s)
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
    s->memtable_max_rows = 4000;
    schema_apply_default_order(s);
}

static void load(void)
{
    char dir[2048];
    const char *base = getenv("STRATA_TEST_TMP");
    snprintf(dir, sizeof dir, "%.1900s/query-%d", base ? base : "/tmp", (int)getpid());
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    ASSERT_EQ(system(cmd), 0);
    strata_schema s;
    make_schema(&s);
    strata_err err = {0};
    ASSERT_EQ(table_open(dir, &s, &tbl, &err), 0);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, table_schema(tbl), 1000), 0);
    for (int i = 0; i < NROWS; i++) {
        row *r = &rows[i];
        r->ts = T0 + (int64_t)rnd((uint64_t)SPAN);
        r->k = (int64_t)rnd(2001) - 1000;
        r->u = (UINT64_C(1) << 63) - 50 + rnd(100); /* straddles 2^63: unsigned order matters */
        r->f = rnd(50) == 0 ? NAN : ((double)((int64_t)rnd(4001) - 2000)) / 100.0; /* ties */
        r->b = rnd(3) == 0;
        r->s1 = (int)rnd(6);
        r->s2 = (int)(rnd(4) ? rnd(5) : rnd(20)); /* skewed */
        int64_t j = row_batch_add_row(&b);
        b.i[C_TS][j] = r->ts;
        b.i[C_K][j] = r->k;
        b.i[C_U][j] = (int64_t)r->u;
        b.f[C_F][j] = r->f;
        b.i[C_B][j] = r->b;
        ASSERT_EQ(row_batch_set_str(&b, C_S1, (uint32_t)j, S1[r->s1], (uint32_t)strlen(S1[r->s1])), 0);
        ASSERT_EQ(row_batch_set_str(&b, C_S2, (uint32_t)j, S2[r->s2], (uint32_t)strlen(S2[r->s2])), 0);
        if (b.nrows == 1000) {
            ASSERT_EQ(table_append(tbl, &b, &err), 0);
            row_batch_clear(&b);
            if (i < NROWS * 2 / 3 && i % 7000 < 1000)
                ASSERT_EQ(table_flush(tbl, true, &err), 0);
        }
    }
    ASSERT_EQ(table_append(tbl, &b, &err), 0);
    row_batch_free(&b);
    table_stats st;
    table_get_stats(tbl, &st);
    ASSERT_GT(st.segment_rows, 0);  /* both paths are exercised */
    ASSERT_GT(st.memtable_rows, 0);
    ASSERT_EQ(st.segment_rows + st.memtable_rows, NROWS);
}

/* ---- the reference ------------------------------------------------------------------ */

/* The reference's own comparisons (not the engine's seg_pred_match_*): -1, 0, 1 of the
 * row's value against pred value i; NaN compares as "unordered" (2). */
static int ref_cmp(int col, const row *r, const seg_value *v)
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

static bool ref_pred(const seg_pred *p, const row *r)
{
    if (p->op == PRED_IN || p->op == PRED_NOT_IN) {
        bool found = false;
        for (uint32_t i = 0; i < p->nvals; i++)
            found |= ref_cmp(p->col, r, &p->vals[i]) == 0;
        return p->op == PRED_IN ? found : !found;
    }
    int c = ref_cmp(p->col, r, &p->vals[0]);
    if (c == 2) /* NaN: only != holds */
        return p->op == PRED_NE;
    switch (p->op) {
    case PRED_EQ: return c == 0;
    case PRED_NE: return c != 0;
    case PRED_LT: return c < 0;
    case PRED_LE: return c <= 0;
    case PRED_GT: return c > 0;
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

typedef struct ref_group {
    int64_t key[4];
    int nrows, cap;
    int *members; /* row indexes */
} ref_group;

static int64_t ref_key_value(int col, const row *r)
{
    switch (col) {
    case C_K: return r->k;
    case C_B: return r->b;
    case C_S1: return r->s1;
    default: return r->s2;
    }
}

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

/* Compares one engine row with a reference group; fails the test on a difference. */
static void check_group(const strata_query *q, const query_result *res, uint64_t ri,
                        const ref_group *g, int qn)
{
    int k = 0;
    if (q->interval_ms) {
        ASSERT_EQ(query_result_cell(res, ri, 0)->v.i, g->key[0]);
        k = 1;
    }
    for (int gc = 0; gc < q->ngroup; gc++, k++) {
        const query_cell *c = query_result_cell(res, ri, k);
        int col = q->group_cols[gc];
        if (col == C_S1 || col == C_S2) {
            const char *want = col == C_S1 ? S1[g->key[k]] : S2[g->key[k]];
            ASSERT_EQ(c->kind, QC_STR);
            ASSERT_STR_EQ(c->v.s.ptr, want);
        } else if (col == C_B) {
            ASSERT_EQ(c->v.b, g->key[k]);
        } else {
            ASSERT_EQ(c->v.i, g->key[k]);
        }
    }
    for (int a = 0; a < q->naggs; a++) {
        const query_agg *ag = &q->aggs[a];
        const query_cell *c = query_result_cell(res, ri, k + a);
        double vals_cap = g->nrows ? g->nrows : 1;
        double *vals = malloc(sizeof *vals * (size_t)vals_cap);
        int nv = 0;
        double sum = 0, mag = 0;
        int64_t isum = 0;
        for (int m = 0; m < g->nrows; m++) {
            const row *r = &rows[g->members[m]];
            if (ag->col < 0)
                continue;
            double v = col_double(ag->col, r);
            if (isnan(v) && ag->fn != STRATA_AGG_UNIQ)
                continue;
            vals[nv++] = v;
            sum += v;
            mag += fabs(v);
            if (ag->col == C_K || ag->col == C_B)
                isum += ag->col == C_K ? r->k : r->b;
        }
        qsort(vals, (size_t)nv, sizeof *vals, cmp_dbl);
        switch (ag->fn) {
        case STRATA_AGG_COUNT:
            ASSERT_EQ(c->v.u, g->nrows);
            break;
        case STRATA_AGG_SUM:
            if (nv == 0) {
                ASSERT_EQ(c->kind, QC_NULL);
            } else if (ag->col == C_F) {
                if (fabs(c->v.f - sum) > 1e-9 * mag + 1e-12)
                    TEST_FAIL_("query %d: sum(f) %.17g vs %.17g", qn, c->v.f, sum);
            } else {
                ASSERT_EQ(c->v.i, isum);
            }
            break;
        case STRATA_AGG_AVG:
            if (nv == 0)
                ASSERT_EQ(c->kind, QC_NULL);
            else if (fabs(c->v.f - sum / nv) > 1e-9 * (mag / nv) + 1e-12)
                TEST_FAIL_("query %d: avg %.17g vs %.17g", qn, c->v.f, sum / nv);
            break;
        case STRATA_AGG_MIN:
        case STRATA_AGG_MAX: {
            if (nv == 0) {
                ASSERT_EQ(c->kind, QC_NULL);
                break;
            }
            bool mn = ag->fn == STRATA_AGG_MIN;
            if (ag->col == C_U) { /* exact unsigned comparison, not through double */
                uint64_t best = mn ? UINT64_MAX : 0;
                for (int m = 0; m < g->nrows; m++) {
                    uint64_t u = rows[g->members[m]].u;
                    best = mn ? (u < best ? u : best) : (u > best ? u : best);
                }
                ASSERT_U64_EQ(c->v.u, best);
            } else {
                double want = mn ? vals[0] : vals[nv - 1];
                double got = c->kind == QC_FLOAT ? c->v.f : c->kind == QC_BOOL ? c->v.b : (double)c->v.i;
                ASSERT_DBL_EQ(got, want);
            }
            break;
        }
        case STRATA_AGG_UNIQ: {
            /* exact distinct count of the column's values among the group's rows */
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
            double err = fabs((double)c->v.u - (double)distinct);
            if (err > 0.02 * (double)distinct + 2)
                TEST_FAIL_("query %d: uniq %llu vs exact %llu", qn, (unsigned long long)c->v.u,
                           (unsigned long long)distinct);
            break;
        }
        case STRATA_AGG_QUANTILE: {
            if (nv == 0) {
                ASSERT_EQ(c->kind, QC_NULL);
                break;
            }
            double want = vals[(int)floor(ag->q * (nv - 1))];
            if (fabs(c->v.f - want) > 0.01 * fabs(want) + 1e-9)
                TEST_FAIL_("query %d: quantile(%g) %.17g vs %.17g (n=%d)", qn, ag->q, c->v.f, want, nv);
            break;
        }
        default: break;
        }
        free(vals);
    }
}

/* ---- random queries --------------------------------------------------------------- */

static void rand_value(int col, seg_value *v, char **str)
{
    const row *r = &rows[rnd(NROWS)];
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
    case C_TS: v->i = T0 + (int64_t)rnd((uint64_t)SPAN); break;
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
        seg_pred_op op = (seg_pred_op)rnd(8);
        uint32_t n = (op == PRED_IN || op == PRED_NOT_IN) ? (uint32_t)rnd(4) : 1;
        e->vals = calloc(n + 1, sizeof *e->vals);
        e->strs = calloc(n + 1, sizeof *e->strs);
        for (uint32_t i = 0; i < n; i++)
            rand_value(col, &e->vals[i], &e->strs[i]);
        e->pred = (seg_pred){col, op, n, e->vals};
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
    int64_t a = T0 - 3600000 + (int64_t)rnd((uint64_t)SPAN + 7200000);
    int64_t b = T0 - 3600000 + (int64_t)rnd((uint64_t)SPAN + 7200000);
    if (rnd(2)) /* bounds on rows' own times: inclusive from, exclusive to */
        a = rows[rnd(NROWS)].ts;
    if (rnd(2))
        b = rows[rnd(NROWS)].ts;
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
}

TEST(differential_random_queries)
{
    load();
    int nonempty = 0;
    for (int qn = 0; qn < 300; qn++) {
        strata_query q;
        rand_query(&q);
        strata_err err = {0};
        query_result *res;
        int rc = query_run(tbl, &q, &res, &err);
        if (rc)
            TEST_FAIL_("query %d: %s", qn, err.msg);
        /* Reference: every row, naive grouping. */
        ref_group *groups = calloc(NROWS + 1, sizeof *groups);
        int ng = 0;
        enum { HSLOTS = 1 << 16 };
        int *hslot = calloc(HSLOTS, sizeof *hslot); /* group + 1, by key hash */
        int nk = (q.interval_ms > 0) + q.ngroup;
        for (int i = 0; i < NROWS; i++) {
            const row *r = &rows[i];
            if (r->ts < q.from_ms || r->ts >= q.to_ms || (q.where && !ref_expr(q.where, r)))
                continue;
            int64_t key[4];
            int k = 0;
            if (q.interval_ms)
                key[k++] = (r->ts / q.interval_ms) * q.interval_ms; /* times are positive */
            for (int g = 0; g < q.ngroup; g++)
                key[k++] = ref_key_value(q.group_cols[g], r);
            uint64_t h = 1469598103934665603u;
            for (int j = 0; j < k; j++)
                h = (h ^ (uint64_t)key[j]) * 1099511628211u;
            uint32_t slot = (uint32_t)(h ^ (h >> 29)) & (HSLOTS - 1);
            int gi = -1;
            while (hslot[slot]) {
                if (memcmp(groups[hslot[slot] - 1].key, key, sizeof key[0] * (size_t)k) == 0) {
                    gi = hslot[slot] - 1;
                    break;
                }
                slot = (slot + 1) & (HSLOTS - 1);
            }
            if (gi < 0) {
                gi = ng++;
                hslot[slot] = gi + 1;
                memcpy(groups[gi].key, key, sizeof key);
            }
            ref_group *gr = &groups[gi];
            if (gr->nrows == gr->cap) {
                gr->cap = gr->cap ? gr->cap * 2 : 8;
                gr->members = realloc(gr->members, sizeof(int) * (size_t)gr->cap);
            }
            gr->members[gr->nrows++] = i;
        }
        if (nk == 0 && ng == 0) {
            ng = 1;
            groups[0].members = malloc(sizeof(int));
        }
        if (res->nrows != (uint64_t)ng && getenv("QDEBUG")) {
            fprintf(stderr, "from %lld to %lld interval %lld ngroup %d (%d %d) where %p\n",
                    (long long)q.from_ms, (long long)q.to_ms, (long long)q.interval_ms, q.ngroup,
                    q.group_cols[0], q.group_cols[1], (void *)q.where);
            for (uint64_t ri = 0; ri < res->nrows; ri++) {
                for (int c = 0; c < res->ncols; c++)
                    fprintf(stderr, " %s=%lld", res->names[c], (long long)query_result_cell(res, ri, c)->v.i);
                fprintf(stderr, "\n");
            }
            for (int j = 0; j < ng; j++)
                fprintf(stderr, " ref key %lld %lld n=%d\n", (long long)groups[j].key[0], (long long)groups[j].key[1], groups[j].nrows);
        }
        if (res->nrows != (uint64_t)ng)
            TEST_FAIL_("query %d: %llu rows vs reference %d", qn, (unsigned long long)res->nrows, ng);
        nonempty += ng > 0 && groups[0].nrows > 0;
        /* Match each engine row with its reference group by key (orders differ for strings). */
        for (uint64_t ri = 0; ri < res->nrows; ri++) {
            int64_t key[4];
            int k = 0;
            if (q.interval_ms)
                key[k++] = query_result_cell(res, ri, 0)->v.i;
            for (int g = 0; g < q.ngroup; g++, k++) {
                const query_cell *c = query_result_cell(res, ri, k);
                int col = q.group_cols[g];
                if (col == C_S1 || col == C_S2) {
                    const char **tab = col == C_S1 ? S1 : S2;
                    int n = col == C_S1 ? 6 : 20;
                    key[k] = -1;
                    for (int t = 0; t < n; t++)
                        if (strcmp(tab[t], c->v.s.ptr) == 0)
                            key[k] = t;
                } else {
                    key[k] = col == C_B ? c->v.b : c->v.i;
                }
            }
            int gi = -1;
            for (int j = 0; j < ng && gi < 0; j++)
                if (memcmp(groups[j].key, key, sizeof key[0] * (size_t)k) == 0)
                    gi = j;
            if (gi < 0)
                TEST_FAIL_("query %d: engine row %llu has no reference group", qn, (unsigned long long)ri);
            check_group(&q, res, ri, &groups[gi], qn);
            /* default order: keys ascending */
            if (ri > 0 && nk > 0 && q.interval_ms)
                ASSERT(query_result_cell(res, ri - 1, 0)->v.i <= query_result_cell(res, ri, 0)->v.i);
        }
        for (int j = 0; j < ng; j++)
            free(groups[j].members);
        free(groups);
        free(hslot);
        query_result_free(res);
        query_free(&q);
    }
    ASSERT_GT(nonempty, 100); /* the queries found rows often enough to mean something */
}

TEST(order_limit_and_empty_answers)
{
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
    strata_err err = {0};
    query_result *r;
    ASSERT_EQ(query_run(tbl, &q, &r, &err), 0);
    ASSERT_EQ(r->nrows, 3);
    ASSERT_STR_EQ(r->names[0], "s2");
    ASSERT_STR_EQ(r->types[1], "uint64");
    ASSERT_STR_EQ(r->types[2], "int64");
    ASSERT(query_result_cell(r, 0, 1)->v.u >= query_result_cell(r, 1, 1)->v.u);
    ASSERT(query_result_cell(r, 1, 1)->v.u >= query_result_cell(r, 2, 1)->v.u);
    ASSERT_GT(r->rows_read, 0);
    query_result_free(r);

    /* Nothing in range: no groups, but a plain count answers one row of 0. */
    q.from_ms = T0 - 10 * 86400000;
    q.to_ms = T0 - 9 * 86400000;
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
            cq.from_ms = rows[rnd(NROWS)].ts;
            cq.to_ms = k % 2 ? rows[rnd(NROWS)].ts : INT64_MAX;
        }
        uint64_t want = 0;
        for (int i = 0; i < NROWS; i++)
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
    table_close(tbl);
}

TEST_LIST(T(differential_random_queries), T(order_limit_and_empty_answers))
