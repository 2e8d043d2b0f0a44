/*
 * query_exec.c — runs a strata_query over a table snapshot. Semantics are in query.h.
 *
 * Sources are segments (granules decoded into per-query buffers, after pruning by time
 * and by the top-level AND predicates through segment_prune_granules) and memtables
 * (chunks read in place). A block is at most BLOCK_ROWS (STRATA_BLOCK_ROWS, 8192) rows:
 * a memtable chunk, or a granule as strata writes it. A granule of another size (the
 * format allows up to SEG_MAX_GRANULE_ROWS) is decoded whole into column buffers grown
 * to fit it, then processed BLOCK_ROWS rows at a time, so the masks, selections and
 * scratch that the steps below use stay BLOCK_ROWS long. Each block goes through:
 *   1. a selection mask: time range, then the where tree evaluated column-wise (string
 *      predicates through a per-source table code -> match, filled lazily, so each
 *      distinct string is compared once per source);
 *   2. grouping: a key of u64 words (time bucket, then group values; strings as ids in a
 *      query-wide string pool, via a per-source code -> id table) found in an
 *      open-addressing hash table of groups;
 *   3. aggregate updates into per-group states (exact int64 sums with overflow checks,
 *      Neumaier-compensated float sums, HLL, DDSketch).
 * Then groups become rows, sorted and limited.
 *
 * fill (query.h) happens here, in the result builder, not in the JSON layer: order_by and
 * limit must see the filled rows (a limit counts them), and the sort and the limit are
 * here; the (bucket, group) pairs that had no rows are found by asking the group table
 * the scan built, with no second pass over the data; and every caller of query_run (not
 * only POST /query) gets the same answer. A query without fill takes none of it: its
 * scan is untouched, and its result is built as before.
 */
#include "engine/query.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "engine/block.h"
#include "engine/memtable.h"
#include "engine/sketch.h"
#include "engine/units.h"

#define BLOCK_ROWS STRATA_BLOCK_ROWS
_Static_assert(BLOCK_ROWS == MEMTABLE_CHUNK_ROWS,
               "scan_memtable reads a memtable chunk in place as one block");
_Static_assert(SEGMENT_GRANULE_ROWS == BLOCK_ROWS,
               "scan_segment decodes a granule as strata writes it into one block: the common "
               "path does one process_block per granule");

void query_init(strata_query *q)
{
    memset(q, 0, sizeof *q);
    q->from_ms = INT64_MIN;
    q->to_ms = INT64_MAX;
    q->limit = -1;
}

void query_expr_free(query_expr *e)
{
    if (!e)
        return;
    for (uint32_t i = 0; i < e->nkids; i++)
        query_expr_free(&e->kids[i]);
    free(e->kids);
    if (e->strs)
        for (uint32_t i = 0; i < e->pred.nvals; i++)
            free(e->strs[i]);
    free(e->strs);
    free(e->vals);
    memset(e, 0, sizeof *e);
}

void query_free(strata_query *q)
{
    if (q->where) {
        query_expr_free(q->where);
        free(q->where);
        q->where = NULL;
    }
}

/* ---- string pool: query-wide ids for group-by strings ------------------------------- */

typedef struct str_pool {
    strata_str *items;
    uint64_t *hashes;
    uint32_t n, cap;
    uint64_t bytes; /* of the copied strings */
    uint32_t *slots; /* id + 1 */
    uint32_t nslots;
} str_pool;

static int64_t pool_intern(str_pool *p, strata_str s)
{
    uint64_t h = XXH3_64bits(s.ptr, s.len);
    if ((uint64_t)(p->n + 1) * 2 > p->nslots) {
        uint32_t ns = p->nslots ? p->nslots * 2 : 256;
        uint32_t *sl = calloc(ns, sizeof *sl);
        if (!sl)
            return -1;
        for (uint32_t i = 0; i < p->n; i++) {
            uint32_t j = (uint32_t)p->hashes[i] & (ns - 1);
            while (sl[j])
                j = (j + 1) & (ns - 1);
            sl[j] = i + 1;
        }
        free(p->slots);
        p->slots = sl;
        p->nslots = ns;
    }
    uint32_t j = (uint32_t)h & (p->nslots - 1);
    while (p->slots[j]) {
        uint32_t id = p->slots[j] - 1;
        if (p->hashes[id] == h && p->items[id].len == s.len &&
            (s.len == 0 || memcmp(p->items[id].ptr, s.ptr, s.len) == 0))
            return id;
        j = (j + 1) & (p->nslots - 1);
    }
    if (p->n == p->cap) {
        uint32_t cap = p->cap ? p->cap * 2 : 64;
        strata_str *it = realloc(p->items, sizeof *it * cap);
        if (!it)
            return -1;
        p->items = it;
        uint64_t *hs = realloc(p->hashes, sizeof *hs * cap);
        if (!hs)
            return -1;
        p->hashes = hs;
        p->cap = cap;
    }
    char *copy = malloc(s.len + 1);
    if (!copy)
        return -1;
    if (s.len)
        memcpy(copy, s.ptr, s.len);
    copy[s.len] = 0;
    p->items[p->n] = (strata_str){copy, s.len};
    p->bytes += s.len + 1;
    p->hashes[p->n] = h;
    p->slots[j] = p->n + 1;
    return p->n++;
}

static void pool_free(str_pool *p)
{
    for (uint32_t i = 0; i < p->n; i++)
        free((char *)p->items[i].ptr);
    free(p->items);
    free(p->hashes);
    free(p->slots);
}

/* ---- aggregate states and the group table ------------------------------------------ */

typedef struct agg_state {
    int64_t i;      /* int sums (uint64 as bit pattern), int min/max */
    double f, comp; /* float sums (Neumaier), float min/max */
    uint64_t n;     /* values seen */
    bool has;
    void *sk;       /* hll or ddsketch */
} agg_state;

typedef struct group_table {
    uint32_t klen, naggs;
    uint64_t n, cap;
    uint64_t *keys;
    agg_state *states;
    uint32_t *slots; /* group + 1 */
    uint64_t nslots;
} group_table;

static uint64_t key_hash(const uint64_t *k, uint32_t klen)
{
    return XXH3_64bits(k, sizeof *k * klen);
}

/* Probes g's slots for key k: the group's index, or -1 with *slot at the empty slot where
 * k would go. g has slots. */
static inline int64_t group_probe(const group_table *g, const uint64_t *k, uint64_t *slot)
{
    uint64_t j = key_hash(k, g->klen) & (g->nslots - 1);
    while (g->slots[j]) {
        uint64_t id = g->slots[j] - 1;
        if (memcmp(g->keys + id * g->klen, k, sizeof *k * g->klen) == 0)
            return (int64_t)id;
        j = (j + 1) & (g->nslots - 1);
    }
    *slot = j;
    return -1;
}

/* Index of the group with key k, creating it; -1 when out of memory. */
static int64_t group_find(group_table *g, const uint64_t *k)
{
    if ((g->n + 1) * 2 > g->nslots) {
        uint64_t ns = g->nslots ? g->nslots * 2 : 1024;
        uint32_t *sl = calloc(ns, sizeof *sl);
        if (!sl)
            return -1;
        for (uint64_t i = 0; i < g->n; i++) {
            uint64_t j = key_hash(g->keys + i * g->klen, g->klen) & (ns - 1);
            while (sl[j])
                j = (j + 1) & (ns - 1);
            sl[j] = (uint32_t)i + 1;
        }
        free(g->slots);
        g->slots = sl;
        g->nslots = ns;
    }
    uint64_t j;
    int64_t found = group_probe(g, k, &j);
    if (found >= 0)
        return found;
    if (g->n == g->cap) {
        uint64_t cap = g->cap ? g->cap * 2 : 256;
        uint64_t *keys = realloc(g->keys, sizeof *keys * cap * (g->klen ? g->klen : 1));
        if (!keys)
            return -1;
        g->keys = keys;
        agg_state *st = realloc(g->states, sizeof *st * cap * (g->naggs ? g->naggs : 1));
        if (!st)
            return -1;
        g->states = st;
        g->cap = cap;
    }
    memcpy(g->keys + g->n * g->klen, k, sizeof *k * g->klen);
    memset(g->states + g->n * g->naggs, 0, sizeof *g->states * g->naggs);
    g->slots[j] = (uint32_t)g->n + 1;
    return (int64_t)g->n++;
}

/* Index of the group with key k, or -1 when there is none (nothing is created). */
static int64_t group_lookup(const group_table *g, const uint64_t *k)
{
    uint64_t j;
    return g->nslots == 0 ? -1 : group_probe(g, k, &j);
}

/* ---- execution context --------------------------------------------------------------- */

typedef struct lazy_table {
    uint32_t *v; /* 0 unknown; else value + 1 */
    uint32_t cap;
} lazy_table;

typedef struct pred_ref {
    const query_expr *e;
    lazy_table match; /* per source: code -> (matches ? 2 : 1) */
} pred_ref;

typedef struct exec {
    const strata_query *q;
    const strata_schema *sc;
    strata_err *err;
    bool need[STRATA_MAX_COLUMNS];
    str_pool pool;
    group_table groups;
    pred_ref *preds;
    uint32_t npreds;
    lazy_table group_ids[QUERY_MAX_GROUP]; /* per source: code -> pool id + 1 */
    /* the current source */
    const segment *seg;
    const memtable *mt;
    /* decoded block */
    uint32_t n;
    const int64_t *iv[STRATA_MAX_COLUMNS];
    const double *fv[STRATA_MAX_COLUMNS];
    const uint32_t *cv[STRATA_MAX_COLUMNS];
    /* the decoded granule of each column in need: buf_rows values of 8 bytes, where
     * buf_rows is BLOCK_ROWS or the largest granule seen (grow_bufs) */
    void *buf[STRATA_MAX_COLUMNS];
    uint32_t buf_rows;
    seg_scratch scratch;
    /* BLOCK_ROWS long: x->n never passes BLOCK_ROWS */
    uint8_t *mask, *tmp_masks;
    uint32_t *sel, *gid; /* a block's selected rows and their groups */
    /* agg_src[a]: the aggregate whose state a reads (a itself, or an earlier one that
     * keeps the same state: quantiles of one column share a sketch, sum and avg of one
     * float column share a sum) */
    int agg_src[QUERY_MAX_AGGS];
    /* A granule wholly inside [from, to) and inside one time bucket needs no time column
     * unless the query reads it otherwise (ts_other): the block is then marked ts_const
     * with its bucket in ts_bucket, and the time column is not decoded. */
    bool ts_other, ts_const;
    int64_t ts_bucket;
    /* Grouping by one string column alone: per source, dictionary code -> group + 1, so a
     * row's group is one array lookup. */
    bool by_code;
    lazy_table code_gid;
    uint64_t rows_read, segments_read;
    double deadline;
    /* memory of group state: sketches' bytes kept as they grow; the whole reported to a
     * counter all scan threads share, checked against q->max_memory after each block */
    uint64_t sketch_bytes, mem_reported;
    _Atomic uint64_t *mem_total;
    int rc;
} exec;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static strata_str src_str(const exec *x, int col, uint32_t code)
{
    return x->seg ? segment_dict_value(x->seg, col, code) : memtable_dict_value(x->mt, col, code);
}

static bool lazy_reserve(lazy_table *t, uint32_t code)
{
    if (code < t->cap)
        return true;
    uint32_t cap = t->cap ? t->cap : 64;
    while (cap <= code)
        cap *= 2;
    uint32_t *v = realloc(t->v, sizeof *v * cap);
    if (!v)
        return false;
    memset(v + t->cap, 0, sizeof *v * (cap - t->cap));
    t->v = v;
    t->cap = cap;
    return true;
}

static void source_begin(exec *x, const segment *seg, const memtable *mt)
{
    x->seg = seg;
    x->mt = mt;
    for (uint32_t i = 0; i < x->npreds; i++)
        if (x->preds[i].match.v)
            memset(x->preds[i].match.v, 0, sizeof(uint32_t) * x->preds[i].match.cap);
    for (int g = 0; g < x->q->ngroup; g++)
        if (x->group_ids[g].v)
            memset(x->group_ids[g].v, 0, sizeof(uint32_t) * x->group_ids[g].cap);
    if (x->code_gid.v)
        memset(x->code_gid.v, 0, sizeof(uint32_t) * x->code_gid.cap);
}

static void collect_preds(exec *x, const query_expr *e)
{
    if (e->kind == QX_PRED) {
        x->preds[x->npreds++].e = e;
        x->need[e->pred.col] = true;
        return;
    }
    for (uint32_t i = 0; i < e->nkids; i++)
        collect_preds(x, &e->kids[i]);
}

static uint32_t count_preds(const query_expr *e)
{
    if (e->kind == QX_PRED)
        return 1;
    uint32_t n = 0;
    for (uint32_t i = 0; i < e->nkids; i++)
        n += count_preds(&e->kids[i]);
    return n;
}

static pred_ref *pred_of(exec *x, const query_expr *e)
{
    for (uint32_t i = 0; i < x->npreds; i++)
        if (x->preds[i].e == e)
            return &x->preds[i];
    return NULL;
}

/* out[i] = 1 where e holds for row i. depth selects a scratch mask for children. */
static int eval_expr(exec *x, const query_expr *e, uint8_t *out, int depth)
{
    uint32_t n = x->n;
    if (e->kind == QX_PRED) {
        const seg_pred *p = &e->pred;
        strata_type t = x->sc->cols[p->col].type;
        if (strata_type_is_int(t)) {
            const int64_t *v = x->iv[p->col];
            for (uint32_t i = 0; i < n; i++)
                out[i] = seg_pred_match_int(t, p, v[i]);
        } else if (t == STRATA_FLOAT64) {
            const double *v = x->fv[p->col];
            for (uint32_t i = 0; i < n; i++)
                out[i] = seg_pred_match_float(p, v[i]);
        } else {
            pred_ref *pr = pred_of(x, e);
            const uint32_t *c = x->cv[p->col];
            for (uint32_t i = 0; i < n; i++) {
                uint32_t code = c[i];
                if (code >= pr->match.cap || !pr->match.v[code]) {
                    if (!lazy_reserve(&pr->match, code))
                        return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
                    pr->match.v[code] = seg_pred_match_str(p, src_str(x, p->col, code)) ? 2 : 1;
                }
                out[i] = pr->match.v[code] == 2;
            }
        }
        return 0;
    }
    uint8_t *tmp = x->tmp_masks + (size_t)depth * BLOCK_ROWS;
    bool and = e->kind == QX_AND;
    memset(out, and ? 1 : 0, n);
    for (uint32_t k = 0; k < e->nkids; k++) {
        int rc = eval_expr(x, &e->kids[k], tmp, depth + 1);
        if (rc)
            return rc;
        if (and)
            for (uint32_t i = 0; i < n; i++)
                out[i] &= tmp[i];
        else
            for (uint32_t i = 0; i < n; i++)
                out[i] |= tmp[i];
    }
    return 0;
}

static int64_t floor_div64(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Bytes of group state this thread holds: the group table, the group-by strings and the
 * sketches. */
static uint64_t exec_mem_bytes(const exec *x)
{
    const group_table *g = &x->groups;
    const str_pool *p = &x->pool;
    return g->cap * ((uint64_t)(g->klen ? g->klen : 1) * 8 + (uint64_t)(g->naggs ? g->naggs : 1) * sizeof(agg_state)) +
           g->nslots * 4 + (uint64_t)p->cap * (sizeof(strata_str) + 8) + (uint64_t)p->nslots * 4 +
           p->bytes + x->sketch_bytes;
}

/* Reports this thread's growth to the query-wide counter; STRATA_EFULL past max_memory. */
static int exec_check_memory(exec *x)
{
    if (!x->q->max_memory || !x->mem_total)
        return 0;
    uint64_t now = exec_mem_bytes(x);
    uint64_t total;
    if (now > x->mem_reported) {
        total = atomic_fetch_add(x->mem_total, now - x->mem_reported) + (now - x->mem_reported);
        x->mem_reported = now;
    } else {
        total = atomic_load(x->mem_total);
    }
    if (total > x->q->max_memory) {
        char limit[32];
        strata_format_bytes(x->q->max_memory, limit, sizeof limit);
        return strata_err_set(x->err, STRATA_EFULL,
                              "query: needs more than its memory limit of %s for its groups "
                              "(%" PRIu64 " groups so far); narrow the query or raise the limit",
                              limit, x->groups.n);
    }
    return 0;
}

/* Neumaier's compensated addition of v to the sum *f with compensation *c (branchless). */
static inline void neumaier_add(double *f, double *c, double v)
{
    double t = *f + v;
    double big_f = (*f - t) + v, big_v = (v - t) + *f;
    *c += fabs(*f) >= fabs(v) ? big_f : big_v;
    *f = t;
}

static int update_agg(exec *x, const query_agg *a, agg_state *s, uint32_t i)
{
    if (a->fn == STRATA_AGG_COUNT) {
        s->n++;
        return 0;
    }
    strata_type t = x->sc->cols[a->col].type;
    if (t == STRATA_STRING) { /* only uniq takes strings */
        strata_str v = src_str(x, a->col, x->cv[a->col][i]);
        if (!s->sk && !(s->sk = hll_create()))
            return STRATA_ENOMEM;
        uint64_t before = hll_bytes(s->sk);
        hll_add_hash(s->sk, sketch_hash_bytes(v.ptr, v.len));
        x->sketch_bytes += hll_bytes(s->sk) - before;
        s->n++;
        return 0;
    }
    bool is_int = strata_type_is_int(t);
    int64_t iv = is_int ? x->iv[a->col][i] : 0;
    double fv = is_int ? (t == STRATA_UINT64 ? (double)(uint64_t)iv : (double)iv) : x->fv[a->col][i];
    if (!is_int && isnan(fv) && a->fn != STRATA_AGG_UNIQ)
        return 0;
    switch (a->fn) {
    case STRATA_AGG_SUM:
    case STRATA_AGG_AVG:
        if (is_int && a->fn == STRATA_AGG_SUM) {
            if (t == STRATA_UINT64) {
                uint64_t r;
                if (__builtin_add_overflow((uint64_t)s->i, (uint64_t)iv, &r))
                    return STRATA_EINVAL;
                s->i = (int64_t)r;
            } else if (__builtin_add_overflow(s->i, iv, &s->i)) {
                return STRATA_EINVAL;
            }
        } else {
            /* Neumaier's compensated sum. */
            double tsum = s->f + fv;
            if (fabs(s->f) >= fabs(fv))
                s->comp += (s->f - tsum) + fv;
            else
                s->comp += (fv - tsum) + s->f;
            s->f = tsum;
        }
        break;
    case STRATA_AGG_MIN:
    case STRATA_AGG_MAX: {
        bool mn = a->fn == STRATA_AGG_MIN;
        if (is_int) {
            bool better = !s->has ||
                          (t == STRATA_UINT64 ? (mn ? (uint64_t)iv < (uint64_t)s->i : (uint64_t)iv > (uint64_t)s->i)
                                              : (mn ? iv < s->i : iv > s->i));
            if (better)
                s->i = iv;
        } else if (!s->has || (mn ? fv < s->f : fv > s->f)) {
            s->f = fv;
        }
        break;
    }
    case STRATA_AGG_UNIQ: {
        if (!s->sk && !(s->sk = hll_create()))
            return STRATA_ENOMEM;
        uint64_t before = hll_bytes(s->sk);
        if (is_int) {
            hll_add_hash(s->sk, sketch_hash_u64((uint64_t)iv));
        } else {
            double z = fv == 0 ? 0.0 : fv; /* -0.0 and 0.0 are one value */
            uint64_t bits;
            memcpy(&bits, &z, 8);
            hll_add_hash(s->sk, sketch_hash_u64(bits));
        }
        x->sketch_bytes += hll_bytes(s->sk) - before;
        break;
    }
    case STRATA_AGG_QUANTILE: {
        if (!s->sk && !(s->sk = dds_create()))
            return STRATA_ENOMEM;
        uint64_t before = dds_bytes(s->sk);
        if (!dds_add(s->sk, fv))
            return STRATA_ENOMEM;
        x->sketch_bytes += dds_bytes(s->sk) - before;
        break;
    }
    default: break;
    }
    s->has = true;
    s->n++;
    return 0;
}

static int process_block(exec *x)
{
    const strata_query *q = x->q;
    uint32_t n = x->n;
    const int64_t *ts = x->iv[x->sc->time_col];
    uint8_t *mask = x->mask;
    if (x->ts_const)
        memset(mask, 1, n);
    else
        for (uint32_t i = 0; i < n; i++)
            mask[i] = ts[i] >= q->from_ms && ts[i] < q->to_ms;
    if (q->where) {
        uint8_t *wm = x->tmp_masks; /* depth 0 scratch; children use deeper ones */
        int rc = eval_expr(x, q->where, wm, 1);
        if (rc)
            return rc;
        for (uint32_t i = 0; i < n; i++)
            mask[i] &= wm[i];
    }
    x->rows_read += n;
    /* Phase 1: each selected row's group. Rows come in runs (segments are sorted by the
     * low-cardinality strings, then time), so the last key and the last time bucket are
     * kept and the hash table is only asked when the key changes. */
    uint64_t key[QUERY_MAX_GROUP + 1], last[QUERY_MAX_GROUP + 1];
    uint32_t klen = x->groups.klen, nsel = 0;
    int64_t last_gi = -1;
    int64_t b_lo = INT64_MAX, b_hi = INT64_MIN; /* [b_lo, b_hi): the bucket of b_lo */
    for (uint32_t i = 0; i < n && x->by_code; i++) {
        if (!mask[i])
            continue;
        uint32_t code = x->cv[q->group_cols[0]][i];
        lazy_table *lt = &x->code_gid;
        if (code >= lt->cap || !lt->v[code]) {
            if (!lazy_reserve(lt, code))
                return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
            int64_t id = pool_intern(&x->pool, src_str(x, q->group_cols[0], code));
            if (id < 0)
                return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
            key[0] = (uint64_t)id;
            int64_t gi = group_find(&x->groups, key);
            if (gi < 0)
                return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
            if (q->max_groups && x->groups.n > q->max_groups)
                return strata_err_set(x->err, STRATA_EFULL,
                                      "query: more than %" PRIu64 " groups; narrow the query or "
                                      "raise the limit",
                                      q->max_groups);
            lt->v[code] = (uint32_t)gi + 1;
        }
        x->sel[nsel] = i;
        x->gid[nsel++] = lt->v[code] - 1;
    }
    for (uint32_t i = 0; i < n && !x->by_code; i++) {
        if (!mask[i])
            continue;
        uint32_t k = 0;
        if (q->interval_ms > 0 && x->ts_const) {
            key[k++] = (uint64_t)x->ts_bucket;
        } else if (q->interval_ms > 0) {
            if (ts[i] < b_lo || ts[i] >= b_hi) {
                b_lo = floor_div64(ts[i], q->interval_ms) * q->interval_ms;
                b_hi = b_lo > INT64_MAX - q->interval_ms ? INT64_MAX : b_lo + q->interval_ms;
            }
            key[k++] = (uint64_t)b_lo;
        }
        for (int g = 0; g < q->ngroup; g++) {
            int c = q->group_cols[g];
            strata_type t = x->sc->cols[c].type;
            if (t == STRATA_STRING) {
                uint32_t code = x->cv[c][i];
                lazy_table *lt = &x->group_ids[g];
                if (code >= lt->cap || !lt->v[code]) {
                    if (!lazy_reserve(lt, code))
                        return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
                    int64_t id = pool_intern(&x->pool, src_str(x, c, code));
                    if (id < 0)
                        return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
                    lt->v[code] = (uint32_t)id + 1;
                }
                key[k++] = lt->v[code] - 1;
            } else if (t == STRATA_FLOAT64) {
                double v = x->fv[c][i];
                if (v == 0)
                    v = 0.0; /* one group for -0.0 and 0.0 */
                memcpy(&key[k++], &v, 8);
            } else {
                key[k++] = (uint64_t)x->iv[c][i];
            }
        }
        if (k == 0)
            key[0] = 0; /* no buckets, no groups: the single group's key */
        bool same = last_gi >= 0;
        for (uint32_t w = 0; same && w < klen; w++)
            same = key[w] == last[w];
        if (!same) {
            last_gi = group_find(&x->groups, key);
            if (last_gi < 0)
                return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
            if (q->max_groups && x->groups.n > q->max_groups)
                return strata_err_set(x->err, STRATA_EFULL,
                                      "query: more than %" PRIu64 " groups; narrow the query or "
                                      "raise the limit",
                                      q->max_groups);
            memcpy(last, key, sizeof *key * klen);
        }
        x->sel[nsel] = i;
        x->gid[nsel++] = (uint32_t)last_gi;
    }
    /* Phase 2: the aggregates, one tight loop per aggregate for the common ones. */
    for (int a = 0; a < q->naggs; a++) {
        if (x->agg_src[a] != a)
            continue;
        const query_agg *ag = &q->aggs[a];
        agg_state *st = x->groups.states + a;
        uint32_t na = x->groups.naggs;
        strata_type t = ag->col >= 0 ? x->sc->cols[ag->col].type : STRATA_INT64;
        /* Both loops walk runs of one group with the state in registers: a store and
         * reload per row would chain every addition through memory. */
        if (ag->fn == STRATA_AGG_COUNT) {
            for (uint32_t j = 0; j < nsel;) {
                uint32_t g = x->gid[j], e = j + 1;
                while (e < nsel && x->gid[e] == g)
                    e++;
                st[(uint64_t)g * na].n += e - j;
                j = e;
            }
            continue;
        }
        if ((ag->fn == STRATA_AGG_SUM || ag->fn == STRATA_AGG_AVG) && t == STRATA_FLOAT64) {
            /* Two compensated sums side by side (even and odd rows of a run), added
             * together at the run's end: the CPU overlaps their latency chains. */
            const double *fv = x->fv[ag->col];
            for (uint32_t j = 0; j < nsel;) {
                uint32_t g = x->gid[j], e = j + 1;
                while (e < nsel && x->gid[e] == g)
                    e++;
                agg_state *s = &st[(uint64_t)g * na];
                double f0 = s->f, c0 = s->comp, f1 = 0, c1 = 0;
                uint64_t cnt = 0;
                for (; j + 1 < e; j += 2) {
                    double v0 = fv[x->sel[j]], v1 = fv[x->sel[j + 1]];
                    if (v0 == v0) {
                        neumaier_add(&f0, &c0, v0);
                        cnt++;
                    }
                    if (v1 == v1) {
                        neumaier_add(&f1, &c1, v1);
                        cnt++;
                    }
                }
                if (j < e) {
                    double v0 = fv[x->sel[j]];
                    if (v0 == v0) {
                        neumaier_add(&f0, &c0, v0);
                        cnt++;
                    }
                    j++;
                }
                neumaier_add(&f0, &c0, f1);
                s->f = f0;
                s->comp = c0 + c1;
                s->n += cnt;
                s->has |= cnt > 0;
            }
            continue;
        }
        if (ag->fn == STRATA_AGG_QUANTILE && t == STRATA_FLOAT64) {
            const double *fv = x->fv[ag->col];
            double *run = (double *)x->tmp_masks; /* free in phase 2; BLOCK_ROWS * 8 bytes */
            for (uint32_t j = 0; j < nsel;) {
                uint32_t g = x->gid[j], m = 0;
                for (; j < nsel && x->gid[j] == g; j++)
                    run[m++] = fv[x->sel[j]];
                agg_state *s = &st[(uint64_t)g * na];
                if (!s->sk && !(s->sk = dds_create()))
                    return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
                ddsketch *d = s->sk;
                uint64_t before = dds_bytes(d), had = d->count;
                if (!dds_add_n(d, run, m))
                    return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
                x->sketch_bytes += dds_bytes(d) - before;
                s->n += d->count - had; /* NaN is not counted */
                s->has |= d->count > had;
            }
            continue;
        }
        for (uint32_t j = 0; j < nsel; j++) {
            int rc = update_agg(x, ag, &st[(uint64_t)x->gid[j] * na], x->sel[j]);
            if (rc == STRATA_EINVAL)
                return strata_err_set(x->err, STRATA_EINVAL, "query: sum of '%s' overflows 64 bits",
                                      x->sc->cols[ag->col].name);
            if (rc)
                return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
        }
    }
    if (q->timeout_ms > 0 && now_ms() > x->deadline)
        return strata_err_set(x->err, STRATA_EFULL, "query: stopped after the time limit of %" PRId64 " ms",
                              q->timeout_ms);
    return exec_check_memory(x);
}

/* Top-level AND predicates usable for granule pruning. */
static int prune_preds(const strata_query *q, int time_col, seg_pred *out, seg_value *tv)
{
    int n = 0;
    tv[0].i = q->from_ms;
    tv[1].i = q->to_ms;
    out[n++] = (seg_pred){time_col, PRED_GE, 1, &tv[0]};
    out[n++] = (seg_pred){time_col, PRED_LT, 1, &tv[1]};
    const query_expr *w = q->where;
    if (w && w->kind == QX_PRED)
        out[n++] = w->pred;
    else if (w && w->kind == QX_AND)
        for (uint32_t i = 0; i < w->nkids && n < 64; i++)
            if (w->kids[i].kind == QX_PRED)
                out[n++] = w->kids[i].pred;
    return n;
}

/* True when the answer is counts only, over all rows in range (no filter, buckets or
 * groups): a source wholly inside the range then answers from its row count. */
static bool counts_only(const strata_query *q)
{
    if (q->where || q->interval_ms > 0 || q->ngroup > 0)
        return false;
    for (int a = 0; a < q->naggs; a++)
        if (q->aggs[a].fn != STRATA_AGG_COUNT)
            return false;
    return true;
}

static int add_counts(exec *x, uint64_t n)
{
    uint64_t key = 0;
    int64_t gi = group_find(&x->groups, &key);
    if (gi < 0)
        return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
    for (int a = 0; a < x->q->naggs; a++)
        x->groups.states[(uint64_t)gi * x->groups.naggs + (uint64_t)a].n += n;
    return 0;
}

/* Grows the column buffers to hold rows values (a granule larger than any before). */
static int grow_bufs(exec *x, uint32_t rows)
{
    for (int c = 0; c < x->sc->ncols; c++) {
        if (!x->need[c])
            continue;
        free(x->buf[c]);
        if (!(x->buf[c] = malloc(8 * (size_t)rows))) {
            x->buf_rows = 0; /* so the next segment grows them all again */
            return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory for granules of %u rows",
                                  rows);
        }
    }
    x->buf_rows = rows;
    return 0;
}

/* Points the columns read from buf at rows [off, off + x->n) of the decoded granule. */
static void point_at(exec *x, uint32_t off)
{
    for (int c = 0; c < x->sc->ncols; c++) {
        if (!x->need[c] || (x->ts_const && c == x->sc->time_col))
            continue;
        strata_type t = x->sc->cols[c].type;
        if (strata_type_is_int(t))
            x->iv[c] = (const int64_t *)x->buf[c] + off;
        else if (t == STRATA_FLOAT64)
            x->fv[c] = (const double *)x->buf[c] + off;
        else
            x->cv[c] = (const uint32_t *)x->buf[c] + off;
    }
}

static int scan_segment(exec *x, const segment *seg)
{
    const strata_query *q = x->q;
    if (segment_nrows(seg) == 0 || segment_max_time(seg) < q->from_ms || segment_min_time(seg) >= q->to_ms)
        return 0;
    if (counts_only(q) && segment_min_time(seg) >= q->from_ms && segment_max_time(seg) < q->to_ms) {
        x->segments_read++;
        return add_counts(x, segment_nrows(seg)); /* from the footer; nothing decoded */
    }
    if (segment_granule_rows(seg) > x->buf_rows) {
        int rc = grow_bufs(x, segment_granule_rows(seg));
        if (rc)
            return rc;
    }
    source_begin(x, seg, NULL);
    seg_pred preds[66];
    seg_value tv[2];
    int np = prune_preds(q, x->sc->time_col, preds, tv);
    uint32_t ng = segment_ngranules(seg);
    uint8_t *keep = malloc(ng ? ng : 1);
    if (!keep)
        return strata_err_set(x->err, STRATA_ENOMEM, "query: out of memory");
    segment_prune_granules(seg, preds, np, keep);
    bool any = false;
    int rc = 0;
    for (uint32_t g = 0; g < ng && rc == 0; g++) {
        if (!keep[g])
            continue;
        any = true;
        uint32_t rows = segment_granule_nrows(seg, g);
        const seg_granule *tg = segment_granule(seg, x->sc->time_col, g);
        int64_t tmin = (int64_t)tg->min, tmax = (int64_t)tg->max;
        int64_t iv = q->interval_ms;
        x->ts_const = !x->ts_other && tmin >= q->from_ms && tmax < q->to_ms &&
                      (iv <= 0 || floor_div64(tmin, iv) == floor_div64(tmax, iv));
        x->ts_bucket = iv > 0 ? floor_div64(tmin, iv) * iv : 0;
        for (int c = 0; c < x->sc->ncols && rc == 0; c++) {
            if (!x->need[c] || (x->ts_const && c == x->sc->time_col))
                continue;
            strata_type t = x->sc->cols[c].type;
            if (strata_type_is_int(t)) {
                rc = segment_read_ints(seg, c, g, x->buf[c], &x->scratch, x->err);
                x->iv[c] = x->buf[c];
            } else if (t == STRATA_FLOAT64) {
                rc = segment_read_floats(seg, c, g, x->buf[c], &x->scratch, x->err);
                x->fv[c] = x->buf[c];
            } else {
                rc = segment_read_codes(seg, c, g, x->buf[c], &x->scratch, x->err);
                x->cv[c] = x->buf[c];
            }
        }
        /* One block for a granule strata wrote; a bigger one a block at a time. */
        for (uint32_t off = 0; off < rows && rc == 0; off += BLOCK_ROWS) {
            x->n = rows - off < BLOCK_ROWS ? rows - off : BLOCK_ROWS;
            if (off)
                point_at(x, off);
            rc = process_block(x);
        }
    }
    free(keep);
    if (any)
        x->segments_read++;
    return rc;
}

static int scan_memtable(exec *x, const memtable *mt, uint64_t rows)
{
    const strata_query *q = x->q;
    if (rows == 0 || memtable_max_time(mt) < q->from_ms || memtable_min_time(mt) >= q->to_ms)
        return 0;
    source_begin(x, NULL, mt);
    x->ts_const = false;
    int rc = 0;
    for (uint64_t ch = 0; ch * MEMTABLE_CHUNK_ROWS < rows && rc == 0; ch++) {
        uint64_t left = rows - ch * MEMTABLE_CHUNK_ROWS;
        x->n = left < MEMTABLE_CHUNK_ROWS ? (uint32_t)left : MEMTABLE_CHUNK_ROWS;
        for (int c = 0; c < x->sc->ncols; c++) {
            if (!x->need[c])
                continue;
            strata_type t = x->sc->cols[c].type;
            if (strata_type_is_int(t))
                x->iv[c] = memtable_chunk_ints(mt, c, ch);
            else if (t == STRATA_FLOAT64)
                x->fv[c] = memtable_chunk_floats(mt, c, ch);
            else
                x->cv[c] = memtable_chunk_codes(mt, c, ch);
        }
        rc = process_block(x);
    }
    return rc;
}

/* ---- result ---------------------------------------------------------------------- */

static const char *out_type_of(strata_type t)
{
    return strata_type_name(t);
}

#define QUERY_MAX_DEPTH 60

/* Depth of the tree, or -1 when a predicate names a column of the wrong kind. */
static int expr_check(const query_expr *e, const strata_schema *sc, int depth, strata_err *err)
{
    if (depth > QUERY_MAX_DEPTH)
        return strata_err_set(err, STRATA_EINVAL, "where: nested more than %d deep", QUERY_MAX_DEPTH);
    if (e->kind == QX_PRED) {
        if (e->pred.col < 0 || e->pred.col >= sc->ncols)
            return strata_err_set(err, STRATA_EINVAL, "where: not a column");
        if (e->pred.op > PRED_NOT_IN)
            return strata_err_set(err, STRATA_EINVAL, "where: unknown operator");
        return 0;
    }
    if (e->kind != QX_AND && e->kind != QX_OR)
        return strata_err_set(err, STRATA_EINVAL, "where: unknown node");
    for (uint32_t i = 0; i < e->nkids; i++) {
        int rc = expr_check(&e->kids[i], sc, depth + 1, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* The buckets a fill answers for q: *first, the start of the bucket holding from_ms, and
 * *n of them, up to the one holding to_ms - 1 (0 when from_ms >= to_ms). STRATA_EINVAL,
 * with the message in err, without an interval or a finite from and to, or when the
 * first bucket would start before the earliest int64 time. */
static int fill_buckets(const strata_query *q, int64_t *first, uint64_t *n, strata_err *err)
{
    if (q->interval_ms <= 0)
        return strata_err_set(err, STRATA_EINVAL,
                              "fill: needs an interval (the time buckets to fill)");
    if (q->from_ms == INT64_MIN)
        return strata_err_set(err, STRATA_EINVAL,
                              "fill: needs a from (filling starts at the bucket holding it), "
                              "not the beginning of time");
    if (q->to_ms == INT64_MAX)
        return strata_err_set(err, STRATA_EINVAL,
                              "fill: needs a to (filling ends at the bucket holding the instant "
                              "before it), not the end of time");
    int64_t lo = floor_div64(q->from_ms, q->interval_ms);
    if (__builtin_mul_overflow(lo, q->interval_ms, first))
        return strata_err_set(err, STRATA_EINVAL,
                              "fill: the bucket holding from (%" PRId64 " ms) starts before the "
                              "earliest time",
                              q->from_ms);
    if (q->from_ms >= q->to_ms) {
        *n = 0;
        return 0;
    }
    int64_t hi = floor_div64(q->to_ms - 1, q->interval_ms);
    *n = (uint64_t)hi - (uint64_t)lo + 1; /* at most 2^64 - 2: from > INT64_MIN */
    return 0;
}

/* STRATA_EFULL: a fill of nb buckets for each of ntuples groups (0: not known yet, before
 * the scan) is over the row limit: max_groups, or what memory can address when none. */
static int fill_too_many(const strata_query *q, uint64_t nb, uint64_t ntuples, strata_err *err)
{
    char iv[24], rows[48], limit[96];
    strata_format_duration_ms(q->interval_ms, iv, sizeof iv);
    uint64_t n;
    if (__builtin_mul_overflow(nb, ntuples ? ntuples : 1, &n))
        snprintf(rows, sizeof rows, "more than 18446744073709551615");
    else
        snprintf(rows, sizeof rows, "%s%" PRIu64, ntuples == 0 && q->ngroup ? "at least " : "", n);
    if (q->max_groups)
        snprintf(limit, sizeof limit, "more than the %" PRIu64 " groups a query may make",
                 q->max_groups);
    else
        snprintf(limit, sizeof limit, "more than can be held");
    if (ntuples == 0 || q->ngroup == 0)
        return strata_err_set(err, STRATA_EFULL,
                              "query: fill would answer %s rows (%" PRIu64 " buckets of %s between "
                              "from and to%s), %s; narrow from and to, widen the interval or "
                              "raise the limit",
                              rows, nb, iv, q->ngroup ? ", for each group" : "", limit);
    return strata_err_set(err, STRATA_EFULL,
                          "query: fill would answer %s rows (%" PRIu64 " buckets of %s for each "
                          "of %" PRIu64 " groups), %s; narrow from and to, widen the interval, "
                          "group by fewer columns or raise the limit",
                          rows, nb, iv, ntuples, limit);
}

static int check_query(const strata_query *q, const strata_schema *sc, strata_err *err)
{
    if (q->where) {
        int rc = expr_check(q->where, sc, 1, err);
        if (rc)
            return rc;
    }
    if (q->interval_ms < 0)
        return strata_err_set(err, STRATA_EINVAL, "interval: must be positive");
    if (q->naggs < 1 || q->naggs > QUERY_MAX_AGGS)
        return strata_err_set(err, STRATA_EINVAL, "select: between 1 and %d aggregates", QUERY_MAX_AGGS);
    if (q->ngroup < 0 || q->ngroup > QUERY_MAX_GROUP)
        return strata_err_set(err, STRATA_EINVAL, "group_by: at most %d columns", QUERY_MAX_GROUP);
    for (int g = 0; g < q->ngroup; g++)
        if (q->group_cols[g] < 0 || q->group_cols[g] >= sc->ncols)
            return strata_err_set(err, STRATA_EINVAL, "group_by[%d]: not a column", g);
    for (int a = 0; a < q->naggs; a++) {
        const query_agg *ag = &q->aggs[a];
        if (ag->fn == STRATA_AGG_COUNT)
            continue;
        if (ag->col < 0 || ag->col >= sc->ncols)
            return strata_err_set(err, STRATA_EINVAL, "select[%d].column: not a column", a);
        strata_type t = sc->cols[ag->col].type;
        if (t == STRATA_STRING && ag->fn != STRATA_AGG_UNIQ)
            return strata_err_set(err, STRATA_EINVAL,
                                  "select[%d]: %s of '%s' needs a numeric column, it is a string", a,
                                  strata_agg_name(ag->fn), sc->cols[ag->col].name);
        if (ag->fn == STRATA_AGG_QUANTILE && !(ag->q >= 0 && ag->q <= 1))
            return strata_err_set(err, STRATA_EINVAL, "select[%d].q: must be between 0 and 1", a);
    }
    int ncols = (q->interval_ms > 0) + q->ngroup + q->naggs;
    for (int o = 0; o < q->norder; o++)
        if (q->order[o].output_col < 0 || q->order[o].output_col >= ncols)
            return strata_err_set(err, STRATA_EINVAL, "order_by[%d]: not an output column", o);
    if (q->fill != QUERY_FILL_NONE) {
        if (q->fill != QUERY_FILL_ZERO && q->fill != QUERY_FILL_NULL)
            return strata_err_set(err, STRATA_EINVAL, "fill: unknown kind %d", (int)q->fill);
        int64_t first;
        uint64_t nb;
        int rc = fill_buckets(q, &first, &nb, err);
        if (rc)
            return rc;
        if (q->max_groups && nb > q->max_groups) /* before reading anything */
            return fill_too_many(q, nb, 0, err);
    }
    return 0;
}

static int cell_cmp(const query_cell *a, const query_cell *b)
{
    if (a->kind == QC_NULL || b->kind == QC_NULL)
        return (a->kind != QC_NULL) - (b->kind != QC_NULL);
    switch (a->kind) {
    case QC_INT: return (a->v.i > b->v.i) - (a->v.i < b->v.i);
    case QC_UINT: return (a->v.u > b->v.u) - (a->v.u < b->v.u);
    case QC_BOOL: return (int)a->v.b - (int)b->v.b;
    case QC_FLOAT: return (a->v.f > b->v.f) - (a->v.f < b->v.f);
    case QC_STR: {
        strata_str x = {a->v.s.ptr, a->v.s.len}, y = {b->v.s.ptr, b->v.s.len};
        return strata_str_cmp(x, y);
    }
    default: return 0;
    }
}

static _Thread_local const query_result *sort_res;
static _Thread_local const strata_query *sort_q;
static _Thread_local int sort_nkeys;

static int row_cmp(const void *pa, const void *pb)
{
    uint64_t ra = *(const uint64_t *)pa, rb = *(const uint64_t *)pb;
    for (int o = 0; o < sort_q->norder; o++) {
        int c = cell_cmp(query_result_cell(sort_res, ra, sort_q->order[o].output_col),
                         query_result_cell(sort_res, rb, sort_q->order[o].output_col));
        if (c)
            return sort_q->order[o].desc ? -c : c;
    }
    for (int k = 0; k < sort_nkeys; k++) {
        int c = cell_cmp(query_result_cell(sort_res, ra, k), query_result_cell(sort_res, rb, k));
        if (c)
            return c;
    }
    return (ra > rb) - (ra < rb);
}

static void final_cell(const exec *x, const query_agg *a, const agg_state *s, query_cell *c)
{
    strata_type t = a->col >= 0 ? x->sc->cols[a->col].type : STRATA_UINT64;
    memset(c, 0, sizeof *c);
    switch (a->fn) {
    case STRATA_AGG_COUNT:
        c->kind = QC_UINT;
        c->v.u = s->n;
        return;
    case STRATA_AGG_UNIQ:
        c->kind = QC_UINT;
        c->v.u = s->sk ? hll_estimate(s->sk) : 0;
        return;
    default: break;
    }
    if (!s->has)
        return; /* null */
    bool is_int = strata_type_is_int(t);
    switch (a->fn) {
    case STRATA_AGG_SUM:
        if (is_int) {
            c->kind = t == STRATA_UINT64 ? QC_UINT : QC_INT;
            c->v.i = s->i;
        } else {
            c->kind = QC_FLOAT;
            c->v.f = s->f + s->comp;
        }
        return;
    case STRATA_AGG_AVG:
        c->kind = QC_FLOAT;
        c->v.f = (s->f + s->comp) / (double)s->n;
        return;
    case STRATA_AGG_MIN:
    case STRATA_AGG_MAX:
        if (!is_int) {
            c->kind = QC_FLOAT;
            c->v.f = s->f;
        } else if (t == STRATA_BOOL) {
            c->kind = QC_BOOL;
            c->v.b = s->i != 0;
        } else {
            c->kind = t == STRATA_UINT64 ? QC_UINT : QC_INT;
            c->v.i = s->i;
        }
        return;
    case STRATA_AGG_QUANTILE:
        c->kind = QC_FLOAT;
        c->v.f = dds_quantile(s->sk, a->q);
        return;
    default: return;
    }
}

static const char *agg_type(const strata_schema *sc, const query_agg *a)
{
    strata_type t = a->col >= 0 ? sc->cols[a->col].type : STRATA_UINT64;
    switch (a->fn) {
    case STRATA_AGG_COUNT:
    case STRATA_AGG_UNIQ: return "uint64";
    case STRATA_AGG_AVG:
    case STRATA_AGG_QUANTILE: return "float64";
    case STRATA_AGG_SUM:
        return t == STRATA_FLOAT64 ? "float64" : t == STRATA_UINT64 ? "uint64" : "int64";
    default: return out_type_of(t);
    }
}

/* Writes the key cells of an output row from a group key: the bucket (with buckets), then
 * the group values. STRATA_ENOMEM when a string copy fails; the cells written so far
 * are freed with the result. */
static int key_cells(const exec *x, const uint64_t *key, query_cell *row)
{
    const strata_query *q = x->q;
    int k = 0;
    if (q->interval_ms > 0) {
        row[0].kind = QC_INT;
        row[0].v.i = (int64_t)key[0];
        k = 1;
    }
    for (int g = 0; g < q->ngroup; g++, k++) {
        strata_type t = x->sc->cols[q->group_cols[g]].type;
        query_cell *cell = &row[k];
        if (t == STRATA_STRING) {
            strata_str s = x->pool.items[key[k]];
            cell->v.s.ptr = malloc(s.len + 1);
            if (!cell->v.s.ptr)
                return STRATA_ENOMEM;
            cell->kind = QC_STR;
            if (s.len)
                memcpy(cell->v.s.ptr, s.ptr, s.len);
            cell->v.s.ptr[s.len] = 0;
            cell->v.s.len = s.len;
        } else if (t == STRATA_FLOAT64) {
            cell->kind = QC_FLOAT;
            memcpy(&cell->v.f, &key[k], 8);
        } else if (t == STRATA_BOOL) {
            cell->kind = QC_BOOL;
            cell->v.b = key[k] != 0;
        } else {
            cell->kind = t == STRATA_UINT64 ? QC_UINT : QC_INT;
            cell->v.u = key[k];
        }
    }
    return 0;
}

/* The cell of aggregate a in a row a fill adds (no rows behind it): with QUERY_FILL_ZERO
 * count, uniq and sum are 0 (sum in the type it has otherwise), the rest null; with
 * QUERY_FILL_NULL all null. */
static void fill_cell(const exec *x, const query_agg *a, query_cell *c)
{
    memset(c, 0, sizeof *c); /* QC_NULL */
    if (x->q->fill != QUERY_FILL_ZERO)
        return;
    strata_type t = a->col >= 0 ? x->sc->cols[a->col].type : STRATA_UINT64;
    switch (a->fn) {
    case STRATA_AGG_COUNT:
    case STRATA_AGG_UNIQ: c->kind = QC_UINT; return;
    case STRATA_AGG_SUM:
        c->kind = !strata_type_is_int(t) ? QC_FLOAT : t == STRATA_UINT64 ? QC_UINT : QC_INT;
        return;
    default: return;
    }
}

/* For a fill: the distinct group tuples of the groups found (the key without its bucket)
 * into *tuples (left empty without group_by: then there is one, the empty tuple, counted
 * in *ntuples all the same), the buckets (*first, *nb) and the rows the answer will have,
 * *nrows. STRATA_EFULL past max_groups, STRATA_ENOMEM; the message in err. */
static int fill_plan(const exec *x, group_table *tuples, int64_t *first, uint64_t *nb,
                     uint64_t *ntuples, uint64_t *nrows, strata_err *err)
{
    const strata_query *q = x->q;
    int rc = fill_buckets(q, first, nb, err);
    if (rc)
        return rc;
    *ntuples = 1;
    if (q->ngroup > 0) {
        tuples->klen = (uint32_t)q->ngroup;
        for (uint64_t gi = 0; gi < x->groups.n; gi++)
            if (group_find(tuples, x->groups.keys + gi * x->groups.klen + 1) < 0)
                return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
        *ntuples = tuples->n;
    }
    uint64_t rows;
    if (__builtin_mul_overflow(*nb, *ntuples, &rows) || (q->max_groups && rows > q->max_groups) ||
        rows > SIZE_MAX / sizeof(query_cell) / (uint64_t)(1 + QUERY_MAX_GROUP + QUERY_MAX_AGGS))
        return fill_too_many(q, *nb, *ntuples, err);
    /* every group found is one of these (its bucket and its tuple are); the max only
     * guards the cells against a mistake in that reasoning */
    *nrows = rows > x->groups.n ? rows : x->groups.n;
    return 0;
}

static int build_result(exec *x, query_result **out, strata_err *err)
{
    const strata_query *q = x->q;
    query_result *r = calloc(1, sizeof *r);
    if (!r)
        return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
    int nk = (q->interval_ms > 0) + q->ngroup;
    r->ncols = nk + q->naggs;
    int c = 0;
    if (q->interval_ms > 0) {
        snprintf(r->names[c], QUERY_NAME_MAX, "time");
        r->types[c++] = "timestamp";
    }
    for (int g = 0; g < q->ngroup; g++) {
        snprintf(r->names[c], QUERY_NAME_MAX, "%s", x->sc->cols[q->group_cols[g]].name);
        r->types[c++] = out_type_of(x->sc->cols[q->group_cols[g]].type);
    }
    for (int a = 0; a < q->naggs; a++) {
        snprintf(r->names[c], QUERY_NAME_MAX, "%s", q->aggs[a].name);
        r->types[c++] = agg_type(x->sc, &q->aggs[a]);
    }
    /* With neither buckets nor groups there is always exactly one row. */
    if (nk == 0 && x->groups.n == 0) {
        uint64_t none = 0;
        if (group_find(&x->groups, &none) < 0) {
            free(r);
            return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
        }
    }
    uint64_t ng = x->groups.n, nrows = ng;
    group_table tuples = {0};
    int64_t first = 0;
    uint64_t nb = 0, ntuples = 0;
    if (q->fill != QUERY_FILL_NONE) {
        int rc = fill_plan(x, &tuples, &first, &nb, &ntuples, &nrows, err);
        if (rc) {
            free(tuples.keys);
            free(tuples.states);
            free(tuples.slots);
            free(r);
            return rc;
        }
    }
    query_cell *cells = calloc(nrows * (uint64_t)r->ncols + 1, sizeof *cells);
    if (!cells) {
        free(tuples.keys);
        free(tuples.states);
        free(tuples.slots);
        free(r);
        return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
    }
    r->cells = cells;
    r->nrows = nrows; /* rows not written yet are null cells: nothing to free */
    int rc = 0;
    for (uint64_t gi = 0; gi < ng && !rc; gi++) {
        query_cell *row = cells + gi * (uint64_t)r->ncols;
        rc = key_cells(x, x->groups.keys + gi * x->groups.klen, row);
        const agg_state *st = x->groups.states + gi * x->groups.naggs;
        for (int a = 0; a < q->naggs && !rc; a++)
            final_cell(x, &q->aggs[a], &st[x->agg_src[a]], &row[nk + a]);
    }
    /* fill: every (bucket, tuple) the scan found no rows for, after the ng rows it did */
    uint64_t at = ng;
    for (uint64_t t = 0; t < ntuples && !rc; t++) {
        uint64_t key[QUERY_MAX_GROUP + 1];
        if (q->ngroup > 0)
            memcpy(key + 1, tuples.keys + t * tuples.klen, sizeof *key * tuples.klen);
        for (uint64_t b = 0; b < nb && !rc; b++) {
            key[0] = (uint64_t)first + b * (uint64_t)q->interval_ms; /* <= to - 1 */
            if (group_lookup(&x->groups, key) >= 0)
                continue;
            if (at == nrows) /* cannot happen: every group found is one of nb x ntuples */
                break;
            query_cell *row = cells + at++ * (uint64_t)r->ncols;
            rc = key_cells(x, key, row);
            for (int a = 0; a < q->naggs && !rc; a++)
                fill_cell(x, &q->aggs[a], &row[nk + a]);
        }
    }
    free(tuples.keys);
    free(tuples.states);
    free(tuples.slots);
    if (rc) {
        query_result_free(r);
        return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
    }
    nrows = r->nrows = at;
    /* Order, then limit: sort row indexes, then permute. */
    uint64_t *idx = malloc(sizeof *idx * (nrows + 1));
    query_cell *sorted = calloc(nrows * (uint64_t)r->ncols + 1, sizeof *sorted);
    if (!idx || !sorted) {
        free(idx);
        free(sorted);
        query_result_free(r);
        return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
    }
    for (uint64_t i = 0; i < nrows; i++)
        idx[i] = i;
    sort_res = r;
    sort_q = q;
    sort_nkeys = nk;
    qsort(idx, nrows, sizeof *idx, row_cmp);
    uint64_t keep = q->limit >= 0 && (uint64_t)q->limit < nrows ? (uint64_t)q->limit : nrows;
    for (uint64_t i = 0; i < nrows; i++) {
        query_cell *src = cells + idx[i] * (uint64_t)r->ncols;
        if (i < keep) {
            memcpy(sorted + i * (uint64_t)r->ncols, src, sizeof *src * (size_t)r->ncols);
        } else {
            for (int cc = 0; cc < r->ncols; cc++)
                if (src[cc].kind == QC_STR)
                    free(src[cc].v.s.ptr);
        }
    }
    free(idx);
    free(cells);
    r->cells = sorted;
    r->nrows = keep;
    *out = r;
    return 0;
}

void query_result_free(query_result *r)
{
    if (!r)
        return;
    for (uint64_t i = 0; i < r->nrows * (uint64_t)r->ncols; i++)
        if (r->cells[i].kind == QC_STR)
            free(r->cells[i].v.s.ptr);
    free(r->cells);
    free(r);
}

static int exec_init(exec *x, const strata_query *q, const strata_schema *sc, strata_err *err,
                     double t0)
{
    memset(x, 0, sizeof *x);
    x->q = q;
    x->sc = sc;
    x->err = err;
    x->deadline = t0 + (double)q->timeout_ms;
    x->need[sc->time_col] = true;
    for (int g = 0; g < q->ngroup; g++)
        x->need[q->group_cols[g]] = true;
    for (int a = 0; a < q->naggs; a++)
        if (q->aggs[a].col >= 0)
            x->need[q->aggs[a].col] = true;
    x->groups.klen = (uint32_t)((q->interval_ms > 0) + q->ngroup);
    if (x->groups.klen == 0)
        x->groups.klen = 1; /* the single group's key is 0 */
    x->groups.naggs = (uint32_t)q->naggs;
    for (int a = 0; a < q->naggs; a++) {
        const query_agg *A = &q->aggs[a];
        x->agg_src[a] = a;
        bool fsum = (A->fn == STRATA_AGG_SUM || A->fn == STRATA_AGG_AVG) && A->col >= 0 &&
                    sc->cols[A->col].type == STRATA_FLOAT64;
        for (int b = 0; b < a && x->agg_src[a] == a; b++) {
            const query_agg *B = &q->aggs[b];
            if (B->col != A->col || x->agg_src[b] != b)
                continue;
            if ((A->fn == STRATA_AGG_QUANTILE && B->fn == STRATA_AGG_QUANTILE) ||
                (fsum && (B->fn == STRATA_AGG_SUM || B->fn == STRATA_AGG_AVG)))
                x->agg_src[a] = b;
        }
    }
    int depth = 2;
    if (q->where) {
        uint32_t np = count_preds(q->where);
        x->preds = calloc(np, sizeof *x->preds);
        if (!x->preds)
            return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
        collect_preds(x, q->where);
        depth = QUERY_MAX_DEPTH + 3; /* one scratch mask per nesting level */
    }
    int tc = sc->time_col;
    x->by_code = q->ngroup == 1 && q->interval_ms <= 0 && sc->cols[q->group_cols[0]].type == STRATA_STRING;
    for (int g = 0; g < q->ngroup; g++)
        x->ts_other |= q->group_cols[g] == tc;
    for (int a = 0; a < q->naggs; a++)
        x->ts_other |= q->aggs[a].col == tc;
    for (uint32_t i = 0; i < x->npreds; i++)
        x->ts_other |= x->preds[i].e->pred.col == tc;
    x->mask = malloc(BLOCK_ROWS);
    x->sel = malloc(sizeof *x->sel * BLOCK_ROWS);
    x->gid = malloc(sizeof *x->gid * BLOCK_ROWS);
    /* at least 8 * BLOCK_ROWS: phase 2 gathers doubles there */
    x->tmp_masks = malloc((size_t)BLOCK_ROWS * (size_t)(depth < 8 ? 8 : depth));
    x->buf_rows = BLOCK_ROWS;
    for (int c = 0; c < sc->ncols; c++)
        if (x->need[c] && !(x->buf[c] = malloc(8 * (size_t)x->buf_rows)))
            return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
    if (!x->mask || !x->tmp_masks || !x->sel || !x->gid)
        return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
    return 0;
}

static void exec_free(exec *x)
{
    for (uint64_t gi = 0; gi < x->groups.n; gi++)
        for (uint32_t a = 0; a < x->groups.naggs; a++) {
            agg_state *s = &x->groups.states[gi * x->groups.naggs + a];
            if (x->q->aggs[a].fn == STRATA_AGG_UNIQ)
                hll_free(s->sk);
            else if (x->q->aggs[a].fn == STRATA_AGG_QUANTILE)
                dds_free(s->sk);
        }
    free(x->groups.keys);
    free(x->groups.states);
    free(x->groups.slots);
    for (uint32_t i = 0; i < x->npreds; i++)
        free(x->preds[i].match.v);
    free(x->preds);
    for (int g = 0; g < QUERY_MAX_GROUP; g++)
        free(x->group_ids[g].v);
    for (int c = 0; c < STRATA_MAX_COLUMNS; c++)
        free(x->buf[c]);
    free(x->mask);
    free(x->tmp_masks);
    free(x->sel);
    free(x->gid);
    free(x->code_gid.v);
    seg_scratch_free(&x->scratch);
    pool_free(&x->pool);
}

/* One unit of scanning: a segment, or a memtable with the rows of the snapshot. */
typedef struct scan_job {
    const segment *seg;
    const memtable *mt;
    uint64_t rows;
} scan_job;

typedef struct worker {
    exec x;
    strata_err err;
    const scan_job *jobs;
    uint32_t njobs;
    _Atomic uint32_t *next;
    _Atomic int *stop;
    int rc;
} worker;

static void *worker_run(void *p)
{
    worker *w = p;
    for (;;) {
        if (atomic_load(w->stop))
            break;
        uint32_t j = atomic_fetch_add(w->next, 1);
        if (j >= w->njobs)
            break;
        const scan_job *job = &w->jobs[j];
        w->rc = job->seg ? scan_segment(&w->x, job->seg) : scan_memtable(&w->x, job->mt, job->rows);
        if (w->rc) {
            atomic_store(w->stop, 1);
            break;
        }
    }
    return NULL;
}

/* Adds src's state into dst's (same aggregate). Moves sketches. 0 or an error code. */
static int merge_state(const exec *x, const query_agg *a, agg_state *dst, agg_state *src)
{
    if (!src->has && a->fn != STRATA_AGG_COUNT && !src->sk) {
        dst->n += src->n;
        return 0;
    }
    strata_type t = a->col >= 0 ? x->sc->cols[a->col].type : STRATA_UINT64;
    bool is_int = strata_type_is_int(t);
    switch (a->fn) {
    case STRATA_AGG_SUM:
    case STRATA_AGG_AVG:
        if (is_int && a->fn == STRATA_AGG_SUM) {
            if (t == STRATA_UINT64) {
                uint64_t r;
                if (__builtin_add_overflow((uint64_t)dst->i, (uint64_t)src->i, &r))
                    return STRATA_EINVAL;
                dst->i = (int64_t)r;
            } else if (__builtin_add_overflow(dst->i, src->i, &dst->i)) {
                return STRATA_EINVAL;
            }
        } else {
            double parts[2] = {src->f, src->comp};
            for (int k = 0; k < 2; k++) {
                double tsum = dst->f + parts[k];
                if (fabs(dst->f) >= fabs(parts[k]))
                    dst->comp += (dst->f - tsum) + parts[k];
                else
                    dst->comp += (parts[k] - tsum) + dst->f;
                dst->f = tsum;
            }
        }
        break;
    case STRATA_AGG_MIN:
    case STRATA_AGG_MAX: {
        bool mn = a->fn == STRATA_AGG_MIN;
        if (!dst->has) {
            dst->i = src->i;
            dst->f = src->f;
        } else if (is_int) {
            bool better = t == STRATA_UINT64 ? (mn ? (uint64_t)src->i < (uint64_t)dst->i : (uint64_t)src->i > (uint64_t)dst->i)
                                             : (mn ? src->i < dst->i : src->i > dst->i);
            if (better)
                dst->i = src->i;
        } else if (mn ? src->f < dst->f : src->f > dst->f) {
            dst->f = src->f;
        }
        break;
    }
    case STRATA_AGG_UNIQ:
        if (!dst->sk) {
            dst->sk = src->sk;
            src->sk = NULL;
        } else if (src->sk) {
            hll_merge(dst->sk, src->sk);
        }
        break;
    case STRATA_AGG_QUANTILE:
        if (!dst->sk) {
            dst->sk = src->sk;
            src->sk = NULL;
        } else if (src->sk && !dds_merge(dst->sk, src->sk)) {
            return STRATA_ENOMEM;
        }
        break;
    default: break;
    }
    dst->has |= src->has;
    dst->n += src->n;
    return 0;
}

/* Merges src's groups into dst's (string keys re-interned into dst's pool). */
static int merge_exec(exec *dst, exec *src)
{
    const strata_query *q = dst->q;
    uint64_t key[QUERY_MAX_GROUP + 1];
    uint32_t klen = dst->groups.klen;
    int first = q->interval_ms > 0;
    for (uint64_t gi = 0; gi < src->groups.n; gi++) {
        memcpy(key, src->groups.keys + gi * klen, sizeof *key * klen);
        for (int g = 0; g < q->ngroup; g++)
            if (dst->sc->cols[q->group_cols[g]].type == STRATA_STRING) {
                int64_t id = pool_intern(&dst->pool, src->pool.items[key[first + g]]);
                if (id < 0)
                    return strata_err_set(dst->err, STRATA_ENOMEM, "query: out of memory");
                key[first + g] = (uint64_t)id;
            }
        int64_t di = group_find(&dst->groups, key);
        if (di < 0)
            return strata_err_set(dst->err, STRATA_ENOMEM, "query: out of memory");
        if (q->max_groups && dst->groups.n > q->max_groups)
            return strata_err_set(dst->err, STRATA_EFULL,
                                  "query: more than %" PRIu64 " groups; narrow the query or raise "
                                  "the limit",
                                  q->max_groups);
        for (int a = 0; a < q->naggs; a++) {
            if (dst->agg_src[a] != a)
                continue;
            int rc = merge_state(dst, &q->aggs[a], &dst->groups.states[(uint64_t)di * dst->groups.naggs + (uint64_t)a],
                                 &src->groups.states[gi * src->groups.naggs + (uint64_t)a]);
            if (rc == STRATA_EINVAL)
                return strata_err_set(dst->err, STRATA_EINVAL, "query: sum of '%s' overflows 64 bits",
                                      dst->sc->cols[q->aggs[a].col].name);
            if (rc)
                return strata_err_set(dst->err, STRATA_ENOMEM, "query: out of memory");
        }
    }
    dst->rows_read += src->rows_read;
    dst->segments_read += src->segments_read;
    return 0;
}

#define QUERY_MAX_THREADS 8
#define PARALLEL_MIN_ROWS 262144 /* below this a second thread costs more than it saves */

int query_run(strata_table *t, const strata_query *q, query_result **out, strata_err *err)
{
    *out = NULL;
    const strata_schema *sc = table_schema(t);
    int rc = check_query(q, sc, err);
    if (rc)
        return rc;
    double t0 = now_ms();
    table_snapshot *snap = table_snapshot_acquire(t, q->from_ms, q->to_ms);
    if (!snap)
        return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
    uint32_t njobs = 0, cap = 0;
    uint64_t total_rows = 0;
    for (uint32_t p = 0; p < snap->nparts; p++)
        cap += snap->parts[p].nsegs + snap->parts[p].nmts;
    scan_job *jobs = calloc(cap + 1, sizeof *jobs);
    if (!jobs) {
        table_snapshot_release(snap);
        return strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
    }
    for (uint32_t p = 0; p < snap->nparts; p++) {
        snapshot_part *sp = &snap->parts[p];
        for (uint32_t i = 0; i < sp->nsegs; i++) {
            jobs[njobs++] = (scan_job){sp->segs[i], NULL, 0};
            total_rows += segment_nrows(sp->segs[i]);
        }
        for (uint32_t i = 0; i < sp->nmts; i++) {
            jobs[njobs++] = (scan_job){NULL, sp->mts[i], sp->mt_rows[i]};
            total_rows += sp->mt_rows[i];
        }
    }
    int nthreads = q->threads;
    if (nthreads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        /* counts_only queries mostly read footers: a thread would cost more than it saves */
        nthreads = total_rows >= PARALLEL_MIN_ROWS && cores > 1 && !counts_only(q) ? (int)cores : 1;
    }
    if (nthreads > QUERY_MAX_THREADS)
        nthreads = QUERY_MAX_THREADS;
    if ((uint32_t)nthreads > njobs)
        nthreads = njobs ? (int)njobs : 1;
    worker *ws = calloc((size_t)nthreads, sizeof *ws);
    pthread_t th[QUERY_MAX_THREADS];
    _Atomic uint32_t next = 0;
    _Atomic int stop = 0;
    _Atomic uint64_t mem_total = 0;
    int started = 0;
    if (!ws)
        rc = strata_err_set(err, STRATA_ENOMEM, "query: out of memory");
    for (int i = 0; i < nthreads && !rc; i++) {
        worker *w = &ws[i];
        if (exec_init(&w->x, q, sc, &w->err, t0) != 0) {
            *err = w->err;
            rc = err->code ? err->code : STRATA_ENOMEM;
            exec_free(&w->x);
            w->x.q = NULL;
            break;
        }
        w->x.mem_total = &mem_total;
        w->jobs = jobs;
        w->njobs = njobs;
        w->next = &next;
        w->stop = &stop;
        started = i + 1;
    }
    if (!rc) {
        for (int i = 1; i < started; i++)
            if (pthread_create(&th[i], NULL, worker_run, &ws[i]) != 0) {
                ws[i].rc = strata_err_set(&ws[i].err, STRATA_ENOMEM, "query: cannot start a thread");
                started = i; /* the others are still joined below */
                break;
            }
        worker_run(&ws[0]);
        for (int i = 1; i < started; i++)
            pthread_join(th[i], NULL);
        for (int i = 0; i < started && !rc; i++)
            if (ws[i].rc) {
                *err = ws[i].err;
                rc = ws[i].rc;
            }
        for (int i = 1; i < started && !rc; i++) {
            ws[0].x.err = err;
            rc = merge_exec(&ws[0].x, &ws[i].x);
            if (!rc)
                rc = exec_check_memory(&ws[0].x);
        }
    }
    table_snapshot_release(snap);
    free(jobs);
    if (rc == STRATA_ECORRUPT)
        table_report_damage(t, err->msg); /* a committed segment is damaged: say so beyond this answer */
    if (!rc)
        rc = build_result(&ws[0].x, out, err);
    if (!rc) {
        (*out)->rows_read = ws[0].x.rows_read;
        (*out)->segments_read = ws[0].x.segments_read;
        (*out)->elapsed_ms = now_ms() - t0;
    }
    for (int i = 0; ws && i < nthreads; i++)
        if (ws[i].x.q)
            exec_free(&ws[i].x);
    free(ws);
    return rc;
}
