/*
 * dedup.c — the per-partition key index and the delete-vector marks of appends, flushes
 * and merges (the mechanism and its reasons are in dedup.h).
 *
 * Keys are read through one function per kind of source: a memtable row in place (ints
 * from its chunks, strings through its dictionary), a segment row from its decoded
 * granule, kept in a small cache (GCACHE granules, least recently used out). A key's hash
 * chains XXH3 over its values in key order, each seeded with the hash so far: an int's 8
 * bytes, a string's bytes (the seed mixed with its length).
 *
 * An append (dedup_append_*) changes the index in place and logs each change (entry
 * position, old value) to undo it; losers go to a list, grouped by source when the dvs are
 * staged. Marks whose cause is not durable yet stay in the pending list (dedup.h).
 */
#include "engine/dedup.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define GCACHE 4
#define MAX_LOAD 0.8
#define GROWTH 1.5
#define MIN_CAP 64

#define E_FP(e) ((e) >> 40)
#define E_SLOT(e) ((uint32_t)(((e) >> 24) & 0xFFFF))
#define E_ROW(e) ((e) & 0xFFFFFF)
#define E_LOC(e) ((e) & ((UINT64_C(1) << 40) - 1))
#define MAKE_LOC(slot, row) (((uint64_t)(slot) << 24) | (uint64_t)(row))

typedef struct gcache_ent {
    const segment *seg;
    uint32_t g;
    uint64_t used;
    void *cols[STRATA_MAX_DEDUP_COLS + 1]; /* int64_t or uint32_t codes, granule_rows each */
    uint32_t cap;
} gcache_ent;

typedef struct pending_mark {
    uint64_t loc;
    uint64_t cause;
} pending_mark;

typedef struct undo_ent {
    uint64_t pos, old;
} undo_ent;

typedef struct staged_dv {
    dedup_src *ds;
    dvec *dv;
} staged_dv;

struct dedup_part {
    const strata_schema *sc;
    int kcols[STRATA_MAX_DEDUP_COLS + 1]; /* the key's columns, then the version's */
    int nk, nread;                        /* key columns; columns read (with version) */
    int time_k;                           /* the time column's place in kcols */
    bool cold;                            /* outside the window: segments are searched */
    uint64_t *tab;
    uint64_t cap, n;
    dedup_src **srcs; /* by slot; NULL: free */
    uint32_t nsrcs, srcs_cap;
    pending_mark *pend;
    uint64_t npend, pend_cap;
    /* the append in progress */
    undo_ent *undo;
    uint64_t nundo, undo_cap;
    uint64_t npend_before;
    uint64_t *losers; /* locs */
    uint64_t nlosers, losers_cap;
    staged_dv *staged;
    uint32_t nstaged, staged_cap;
    gcache_ent cache[GCACHE];
    uint64_t clock;
    segment_scratch scratch;
};

dedup_src *dedup_src_new(memtable *mt, segment *seg, uint64_t serial)
{
    dedup_src *ds = calloc(1, sizeof *ds);
    if (ds) {
        ds->slot = DEDUP_NO_SLOT;
        ds->serial = serial;
        ds->mt = mt;
        ds->seg = seg;
    }
    return ds;
}

void dedup_src_free(dedup_src *ds)
{
    if (!ds)
        return;
    dvec_unref(ds->dv);
    free(ds->hashes);
    free(ds);
}

dedup_part *dedup_part_create(const strata_schema *sc)
{
    dedup_part *dp = calloc(1, sizeof *dp);
    if (!dp)
        return NULL;
    dp->sc = sc;
    for (int i = 0; i < sc->ndedup; i++) {
        if (sc->dedup_cols[i] == sc->time_col)
            dp->time_k = dp->nk;
        dp->kcols[dp->nk++] = sc->dedup_cols[i];
    }
    dp->nread = dp->nk;
    if (sc->version_col >= 0)
        dp->kcols[dp->nread++] = sc->version_col;
    return dp;
}

static void cache_drop(dedup_part *dp, const segment *seg)
{
    for (int i = 0; i < GCACHE; i++)
        if (!seg || dp->cache[i].seg == seg)
            dp->cache[i].seg = NULL;
}

void dedup_part_free(dedup_part *dp)
{
    if (!dp)
        return;
    free(dp->tab);
    free(dp->srcs);
    free(dp->pend);
    free(dp->undo);
    free(dp->losers);
    for (uint32_t i = 0; i < dp->nstaged; i++)
        dvec_unref(dp->staged[i].dv);
    free(dp->staged);
    for (int i = 0; i < GCACHE; i++)
        for (int c = 0; c < dp->nread; c++)
            free(dp->cache[i].cols[c]);
    segment_scratch_free(&dp->scratch);
    free(dp);
}

int dedup_src_attach(dedup_part *dp, dedup_src *ds, strata_err *err)
{
    uint32_t slot = 0;
    while (slot < dp->nsrcs && dp->srcs[slot])
        slot++;
    if (slot >= DEDUP_MAX_SLOTS)
        return strata_err_set(err, STRATA_EFULL, "dedup: a partition holds %u sources already", DEDUP_MAX_SLOTS);
    if (slot == dp->srcs_cap) {
        uint32_t cap = dp->srcs_cap ? dp->srcs_cap * 2 : 16;
        dedup_src **ns = realloc(dp->srcs, sizeof *ns * cap);
        if (!ns)
            return strata_err_set(err, STRATA_ENOMEM, "out of memory");
        dp->srcs = ns;
        dp->srcs_cap = cap;
    }
    if (slot == dp->nsrcs)
        dp->srcs[dp->nsrcs++] = NULL;
    dp->srcs[slot] = ds;
    ds->slot = slot;
    return 0;
}

void dedup_src_detach(dedup_part *dp, dedup_src *ds)
{
    if (!ds || ds->slot == DEDUP_NO_SLOT)
        return;
    if (ds->seg)
        cache_drop(dp, ds->seg);
    dp->srcs[ds->slot] = NULL;
    while (dp->nsrcs && !dp->srcs[dp->nsrcs - 1])
        dp->nsrcs--;
    ds->slot = DEDUP_NO_SLOT;
}

uint64_t dedup_part_keys(const dedup_part *dp)
{
    return dp->n;
}

uint64_t dedup_part_bytes(const dedup_part *dp)
{
    return dp->cap * 8 + (uint64_t)dp->srcs_cap * sizeof(void *) + dp->npend * sizeof(pending_mark);
}

uint64_t dedup_part_scratch_bytes(const dedup_part *dp)
{
    uint64_t b = sizeof *dp + dp->undo_cap * sizeof(undo_ent) + dp->losers_cap * 8 +
                 (dp->pend_cap - dp->npend) * sizeof(pending_mark);
    for (int i = 0; i < GCACHE; i++)
        b += (uint64_t)dp->cache[i].cap * 8 * (uint64_t)dp->nread;
    return b;
}

void dedup_part_trim(dedup_part *dp)
{
    for (int i = 0; i < GCACHE; i++) {
        for (int c = 0; c < dp->nread; c++) {
            free(dp->cache[i].cols[c]);
            dp->cache[i].cols[c] = NULL;
        }
        dp->cache[i].cap = 0;
        dp->cache[i].seg = NULL;
    }
    segment_scratch_free(&dp->scratch);
    free(dp->undo);
    free(dp->losers);
    dp->undo = NULL;
    dp->losers = NULL;
    dp->undo_cap = dp->losers_cap = 0;
}

/* ---- keys --------------------------------------------------------------------------- */

/* A key's values, gathered for hashing and comparing. */
typedef struct keyvals {
    int64_t i[STRATA_MAX_DEDUP_COLS + 1];
    strata_str s[STRATA_MAX_DEDUP_COLS];
} keyvals;

/* One key column into the hash so far: a string's bytes (the seed mixed with its
 * length) or an int's 8 bytes. Rows of batches (dedup_hash_rows) and stored rows
 * (key_hash) go through this alone, so their hashes agree. */
static inline uint64_t hash_step(uint64_t h, bool is_str, const int64_t *i, strata_str s)
{
    return is_str ? XXH3_64bits_withSeed(s.ptr ? s.ptr : "", s.len, h ^ s.len) : XXH3_64bits_withSeed(i, 8, h);
}

static uint64_t key_hash(const dedup_part *dp, const keyvals *k)
{
    uint64_t h = 0;
    for (int c = 0; c < dp->nk; c++)
        h = dp->sc->cols[dp->kcols[c]].type == STRATA_STRING ? hash_step(h, true, NULL, k->s[c])
                                                              : hash_step(h, false, &k->i[c], (strata_str){NULL, 0});
    return h;
}

static bool key_equal(const dedup_part *dp, const keyvals *a, const keyvals *b)
{
    for (int c = 0; c < dp->nk; c++) {
        if (dp->sc->cols[dp->kcols[c]].type == STRATA_STRING) {
            if (a->s[c].len != b->s[c].len || (a->s[c].len && memcmp(a->s[c].ptr, b->s[c].ptr, a->s[c].len)))
                return false;
        } else if (a->i[c] != b->i[c]) {
            return false;
        }
    }
    return true;
}

static void batch_key(const dedup_part *dp, const row_batch *b, uint32_t r, keyvals *k)
{
    for (int c = 0; c < dp->nread; c++) {
        int col = dp->kcols[c];
        if (dp->sc->cols[col].type == STRATA_STRING)
            k->s[c] = row_batch_get_str(b, col, r);
        else
            k->i[c] = b->i[col][r];
    }
}

void dedup_hash_rows(const strata_schema *sc, const row_batch *b, uint64_t *out)
{
    for (uint32_t r = 0; r < b->nrows; r++) {
        uint64_t h = 0;
        for (int c = 0; c < sc->ndedup; c++) {
            int col = sc->dedup_cols[c];
            bool is_str = sc->cols[col].type == STRATA_STRING;
            h = hash_step(h, is_str, is_str ? NULL : &b->i[col][r],
                          is_str ? row_batch_get_str(b, col, r) : (strata_str){NULL, 0});
        }
        out[r] = h;
    }
}

void dedup_prefetch(const dedup_part *dp, uint64_t h)
{
    if (dp->cap)
        __builtin_prefetch(&dp->tab[(uint64_t)(((unsigned __int128)(uint32_t)h * dp->cap) >> 32)], 0, 1);
}

static void memtable_key(const dedup_part *dp, const memtable *mt, uint64_t row, keyvals *k)
{
    uint64_t ch = row / MEMTABLE_CHUNK_ROWS, o = row % MEMTABLE_CHUNK_ROWS;
    for (int c = 0; c < dp->nread; c++) {
        int col = dp->kcols[c];
        if (dp->sc->cols[col].type == STRATA_STRING)
            k->s[c] = memtable_dict_value(mt, col, memtable_chunk_codes(mt, col, ch)[o]);
        else
            k->i[c] = memtable_chunk_ints(mt, col, ch)[o];
    }
}

/* Decodes granule g of seg's key (and version) columns into e. */
static int granule_decode(dedup_part *dp, const segment *seg, uint32_t g, gcache_ent *e, strata_err *err)
{
    uint32_t need = segment_granule_rows(seg);
    if (e->cap < need) {
        for (int c = 0; c < dp->nread; c++) {
            free(e->cols[c]);
            e->cols[c] = NULL;
        }
        e->cap = 0;
        for (int c = 0; c < dp->nread; c++)
            if (!(e->cols[c] = malloc((size_t)need * 8)))
                return strata_err_set(err, STRATA_ENOMEM, "out of memory");
        e->cap = need;
    }
    e->seg = NULL;
    for (int c = 0; c < dp->nread; c++) {
        int col = dp->kcols[c], rc;
        if (dp->sc->cols[col].type == STRATA_STRING)
            rc = segment_read_codes(seg, col, g, e->cols[c], &dp->scratch, err);
        else
            rc = segment_read_ints(seg, col, g, e->cols[c], &dp->scratch, err);
        if (rc)
            return rc;
    }
    e->seg = seg;
    e->g = g;
    return 0;
}

static void granule_key(const dedup_part *dp, const segment *seg, const gcache_ent *e, uint32_t o, keyvals *k)
{
    for (int c = 0; c < dp->nread; c++) {
        int col = dp->kcols[c];
        if (dp->sc->cols[col].type == STRATA_STRING)
            k->s[c] = segment_dict_value(seg, col, ((const uint32_t *)e->cols[c])[o]);
        else
            k->i[c] = ((const int64_t *)e->cols[c])[o];
    }
}

/* Granule g of seg's key columns, decoded (from the cache, or into its least recently
 * used entry). */
static int cache_get(dedup_part *dp, const segment *seg, uint32_t g, gcache_ent **out, strata_err *err)
{
    gcache_ent *e = NULL, *victim = &dp->cache[0];
    for (int i = 0; i < GCACHE; i++) {
        if (dp->cache[i].seg == seg && dp->cache[i].g == g) {
            e = &dp->cache[i];
            break;
        }
        if (dp->cache[i].used < victim->used)
            victim = &dp->cache[i];
    }
    if (!e) {
        int rc = granule_decode(dp, seg, g, victim, err);
        if (rc)
            return rc;
        e = victim;
    }
    e->used = ++dp->clock;
    *out = e;
    return 0;
}

/* The key (and version) of row `row` of source ds. */
static int src_key(dedup_part *dp, const dedup_src *ds, uint64_t row, keyvals *k, strata_err *err)
{
    if (ds->mt) {
        memtable_key(dp, ds->mt, row, k);
        return 0;
    }
    const segment *seg = ds->seg;
    uint32_t gr = segment_granule_rows(seg);
    gcache_ent *e;
    int rc = cache_get(dp, seg, (uint32_t)(row / gr), &e, err);
    if (rc == 0)
        granule_key(dp, seg, e, (uint32_t)(row % gr), k);
    return rc;
}

/* A cold partition's search of its segments for key k's live row (not superseded): only
 * segments and granules whose time range holds the key's time are decoded. *loc gets
 * it, or UINT64_MAX when the key has none there. */
static int cold_find(dedup_part *dp, const keyvals *k, keyvals *o, uint64_t *loc, strata_err *err)
{
    int64_t ts = k->i[dp->time_k];
    int tc = dp->sc->time_col;
    *loc = UINT64_MAX;
    for (uint32_t s = 0; s < dp->nsrcs; s++) {
        const dedup_src *ds = dp->srcs[s];
        if (!ds || !ds->seg || segment_nrows(ds->seg) == 0 || ts < segment_min_time(ds->seg) ||
            ts > segment_max_time(ds->seg))
            continue;
        const segment *seg = ds->seg;
        uint32_t gr = segment_granule_rows(seg);
        for (uint32_t g = 0; g < segment_ngranules(seg); g++) {
            const segment_granule_meta *m = segment_granule(seg, tc, g);
            if ((int64_t)m->min > ts || (int64_t)m->max < ts)
                continue;
            gcache_ent *e;
            int rc = cache_get(dp, seg, g, &e, err);
            if (rc)
                return rc;
            const int64_t *tcol = e->cols[dp->time_k];
            uint32_t n = segment_granule_nrows(seg, g);
            for (uint32_t r = 0; r < n; r++) {
                if (tcol[r] != ts || dvec_test(ds->dv, (uint64_t)g * gr + r))
                    continue;
                granule_key(dp, seg, e, r, o);
                if (key_equal(dp, k, o)) {
                    *loc = MAKE_LOC(s, (uint64_t)g * gr + r);
                    return 0;
                }
            }
        }
    }
    return 0;
}

/* ---- the table ---------------------------------------------------------------------- */

static inline uint64_t home(const dedup_part *dp, uint64_t h)
{
    return (uint64_t)(((unsigned __int128)(uint32_t)h * dp->cap) >> 32);
}

static inline uint64_t fp_of(uint64_t h)
{
    uint64_t fp = h >> 40;
    return fp ? fp : 1;
}

/* Puts an entry for a key known to be new (no comparison). Room must exist. */
static void put_new(dedup_part *dp, uint64_t h, uint64_t loc)
{
    uint64_t pos = home(dp, h);
    while (dp->tab[pos])
        pos = pos + 1 == dp->cap ? 0 : pos + 1;
    dp->tab[pos] = fp_of(h) << 40 | loc;
    dp->n++;
}

/* Adds the live rows of ds to the index (a cold partition's: memtable rows only). */
static int index_source(dedup_part *dp, const dedup_src *ds, strata_err *err)
{
    keyvals k;
    if (dp->cold && !ds->mt)
        return 0;
    if (ds->mt) {
        uint64_t n = memtable_nrows(ds->mt);
        for (uint64_t r = 0; r < n; r++) {
            if (dvec_test(ds->dv, r))
                continue;
            uint64_t h;
            if (ds->hashes) {
                h = ds->hashes[r];
            } else {
                memtable_key(dp, ds->mt, r, &k);
                h = key_hash(dp, &k);
            }
            put_new(dp, h, MAKE_LOC(ds->slot, r));
        }
        return 0;
    }
    const segment *seg = ds->seg;
    gcache_ent e = {0};
    int rc = 0;
    uint32_t gr = segment_granule_rows(seg);
    for (uint32_t g = 0; g < segment_ngranules(seg) && rc == 0; g++) {
        if ((rc = granule_decode(dp, seg, g, &e, err)) != 0)
            break;
        uint32_t rows = segment_granule_nrows(seg, g);
        for (uint32_t o = 0; o < rows; o++) {
            uint64_t r = (uint64_t)g * gr + o;
            if (dvec_test(ds->dv, r))
                continue;
            granule_key(dp, seg, &e, o, &k);
            put_new(dp, key_hash(dp, &k), MAKE_LOC(ds->slot, r));
        }
    }
    for (int c = 0; c < dp->nread; c++)
        free(e.cols[c]);
    return rc;
}

int dedup_part_rebuild(dedup_part *dp, uint64_t more, strata_err *err)
{
    uint64_t live = 0;
    for (uint32_t s = 0; s < dp->nsrcs; s++) {
        const dedup_src *ds = dp->srcs[s];
        if (!ds)
            continue;
        uint64_t rows = ds->mt ? memtable_nrows(ds->mt) : segment_nrows(ds->seg);
        if (rows > DEDUP_MAX_SOURCE_ROWS)
            return strata_err_set(err, STRATA_EINVAL, "dedup: a source of %llu rows (at most %llu)",
                                  (unsigned long long)rows, (unsigned long long)DEDUP_MAX_SOURCE_ROWS);
        if (!dp->cold || ds->mt)
            live += rows - dvec_count(ds->dv);
    }
    uint64_t cap = (uint64_t)((double)(live + more) / MAX_LOAD) + 1;
    if (cap < MIN_CAP)
        cap = MIN_CAP;
    uint64_t *tab = calloc(cap, 8);
    if (!tab)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory for a dedup index of %llu keys",
                              (unsigned long long)(live + more));
    uint64_t *old = dp->tab, oldcap = dp->cap, oldn = dp->n;
    dp->tab = tab;
    dp->cap = cap;
    dp->n = 0;
    int rc = 0;
    for (uint32_t s = 0; s < dp->nsrcs && rc == 0; s++)
        if (dp->srcs[s])
            rc = index_source(dp, dp->srcs[s], err);
    if (rc) {
        free(tab);
        dp->tab = old;
        dp->cap = oldcap;
        dp->n = oldn;
        return rc;
    }
    free(old);
    return 0;
}

/* ---- appends ------------------------------------------------------------------------ */

static int grow(void **p, uint64_t *cap, uint64_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    uint64_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *np = realloc(*p, c * elem);
    if (!np)
        return STRATA_ENOMEM;
    *p = np;
    *cap = c;
    return 0;
}

void dedup_part_presize(dedup_part *dp, uint64_t keys)
{
    uint64_t cap = (uint64_t)((double)keys / MAX_LOAD) + 1;
    if (dp->n || dp->cold || cap <= dp->cap)
        return;
    uint64_t *tab = calloc(cap, 8);
    if (!tab)
        return; /* it will grow as it fills */
    free(dp->tab);
    dp->tab = tab;
    dp->cap = cap;
}

int dedup_part_cool(dedup_part *dp, strata_err *err)
{
    if (dp->cold)
        return 0;
    dp->cold = true;
    int rc = dedup_part_rebuild(dp, 0, err);
    if (rc)
        dp->cold = false;
    return rc;
}

bool dedup_part_cold(const dedup_part *dp)
{
    return dp->cold;
}

int dedup_append_begin(dedup_part *dp, uint32_t nrows, strata_err *err)
{
    dp->nundo = 0;
    dp->nlosers = 0;
    dp->npend_before = dp->npend;
    if ((double)(dp->n + nrows) > MAX_LOAD * (double)dp->cap) {
        uint64_t want = (uint64_t)((double)dp->n * GROWTH) + nrows;
        int rc = dedup_part_rebuild(dp, want - dp->n, err);
        if (rc)
            return rc;
    }
    if (grow((void **)&dp->undo, &dp->undo_cap, nrows, sizeof *dp->undo) ||
        grow((void **)&dp->losers, &dp->losers_cap, nrows, sizeof *dp->losers) ||
        grow((void **)&dp->pend, &dp->pend_cap, dp->npend + nrows, sizeof *dp->pend))
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    return 0;
}

static bool version_wins(const dedup_part *dp, const keyvals *nw, const keyvals *old)
{
    int vc = dp->sc->version_col;
    if (vc < 0)
        return true; /* no version: the last appended wins */
    int64_t a = nw->i[dp->nk], b = old->i[dp->nk];
    if (dp->sc->cols[vc].type == STRATA_UINT64)
        return (uint64_t)a >= (uint64_t)b;
    return a >= b;
}

int dedup_append_row(dedup_part *dp, const row_batch *b, uint32_t r, uint64_t h, dedup_src *dst, uint64_t row,
                     strata_err *err)
{
    if (row >= DEDUP_MAX_SOURCE_ROWS)
        return strata_err_set(err, STRATA_EINVAL, "dedup: a memtable of more than %llu rows",
                              (unsigned long long)DEDUP_MAX_SOURCE_ROWS);
    keyvals k, o;
    bool have_k = false; /* the row's key values, gathered only when a lookup needs them */
    uint64_t fp = fp_of(h);
    if (!dst->hashes && dst->mt && row == 0) /* from its first row or never: each row has one */
        dst->hashes = malloc(sizeof *dst->hashes * (memtable_max_rows(dst->mt) + 1)); /* pages as used */
    if (dst->hashes)
        dst->hashes[row] = h;
    uint64_t loc = MAKE_LOC(dst->slot, row);
    uint64_t pos = home(dp, h);
    for (;;) {
        uint64_t e = dp->tab[pos];
        if (e == 0) {
            uint64_t old = UINT64_MAX;
            if (dp->cold) { /* not among the rows appended since it went cold: on disk? */
                batch_key(dp, b, r, &k);
                int rc = cold_find(dp, &k, &o, &old, err);
                if (rc)
                    return rc;
            }
            if (old != UINT64_MAX && !version_wins(dp, &k, &o)) {
                dp->losers[dp->nlosers++] = loc; /* the row on disk stays the winner */
                dp->pend[dp->npend++] = (pending_mark){loc, dst->serial};
                return 0;
            }
            if (old != UINT64_MAX) {
                dp->losers[dp->nlosers++] = old;
                dp->pend[dp->npend++] = (pending_mark){old, dst->serial};
            }
            dp->undo[dp->nundo++] = (undo_ent){pos, 0};
            dp->tab[pos] = fp << 40 | loc;
            dp->n++;
            return 0;
        }
        if (E_FP(e) == fp) {
            if (!have_k)
                batch_key(dp, b, r, &k);
            have_k = true;
            const dedup_src *os = dp->srcs[E_SLOT(e)];
            int rc = src_key(dp, os, E_ROW(e), &o, err);
            if (rc)
                return rc;
            if (key_equal(dp, &k, &o)) {
                uint64_t loser;
                if (version_wins(dp, &k, &o)) {
                    loser = E_LOC(e);
                    dp->undo[dp->nundo++] = (undo_ent){pos, e};
                    dp->tab[pos] = fp << 40 | loc;
                } else {
                    loser = loc;
                }
                dp->losers[dp->nlosers++] = loser;
                dp->pend[dp->npend++] = (pending_mark){loser, dst->serial};
                return 0;
            }
        }
        pos = pos + 1 == dp->cap ? 0 : pos + 1;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int dedup_append_stage(dedup_part *dp, strata_err *err)
{
    dp->nstaged = 0;
    if (dp->nlosers == 0)
        return 0;
    qsort(dp->losers, dp->nlosers, sizeof *dp->losers, cmp_u64);
    uint64_t i = 0;
    while (i < dp->nlosers) {
        uint32_t slot = E_SLOT(dp->losers[i]);
        uint64_t j = i;
        while (j < dp->nlosers && E_SLOT(dp->losers[j]) == slot) {
            dp->losers[j] = E_ROW(dp->losers[j]);
            j++;
        }
        if (dp->nstaged == dp->staged_cap) {
            uint32_t cap = dp->staged_cap ? dp->staged_cap * 2 : 8;
            staged_dv *ns = realloc(dp->staged, sizeof *ns * cap);
            if (!ns)
                goto oom;
            dp->staged = ns;
            dp->staged_cap = cap;
        }
        dedup_src *ds = dp->srcs[slot];
        dvec *nd;
        if (dvec_with_rows(ds->dv, dp->losers + i, j - i, &nd, err) != 0)
            goto oom;
        dp->staged[dp->nstaged++] = (staged_dv){ds, nd};
        i = j;
    }
    return 0;
oom:
    for (uint32_t s = 0; s < dp->nstaged; s++)
        dvec_unref(dp->staged[s].dv);
    dp->nstaged = 0;
    return strata_err_set(err, STRATA_ENOMEM, "out of memory for delete vectors");
}

void dedup_append_commit(dedup_part *dp)
{
    for (uint32_t s = 0; s < dp->nstaged; s++) {
        dvec_unref(dp->staged[s].ds->dv);
        dp->staged[s].ds->dv = dp->staged[s].dv;
    }
    dp->nstaged = 0;
    dp->nundo = 0;
    dp->nlosers = 0;
}

void dedup_append_abort(dedup_part *dp)
{
    for (uint32_t s = 0; s < dp->nstaged; s++)
        dvec_unref(dp->staged[s].dv);
    dp->nstaged = 0;
    for (uint64_t i = dp->nundo; i-- > 0;) {
        if (dp->undo[i].old == 0)
            dp->n--;
        dp->tab[dp->undo[i].pos] = dp->undo[i].old;
    }
    dp->nundo = 0;
    dp->nlosers = 0;
    dp->npend = dp->npend_before;
}

/* ---- flushes and merges ------------------------------------------------------------- */

typedef struct move_ctx {
    const uint32_t *map;
    uint64_t nrows;
    uint64_t *rows;
    uint64_t n;
} move_ctx;

static void move_collect(uint64_t row, void *arg)
{
    move_ctx *m = arg;
    if (row < m->nrows && m->map[row] != UINT32_MAX)
        m->rows[m->n++] = m->map[row];
}

int dedup_translate_dv(const dvec *dv, const uint32_t *map, uint64_t nrows, const dvec *base, dvec **out,
                       strata_err *err)
{
    move_ctx m = {map, nrows, malloc(sizeof(uint64_t) * (dvec_count(dv) + 1)), 0};
    if (!m.rows)
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    dvec_each(dv, move_collect, &m);
    int rc = dvec_with_rows(base, m.rows, m.n, out, err);
    free(m.rows);
    return rc;
}

int dedup_move(dedup_part *dp, dedup_src *from, dedup_src *to, const uint32_t *map, uint64_t nrows,
               const dvec *base, dvec **to_dv, strata_err *err)
{
    if (to_dv) {
        int rc = dedup_translate_dv(from->dv, map, nrows, base, to_dv, err);
        if (rc)
            return rc;
    }
    for (uint64_t p = 0; p < dp->cap; p++) {
        uint64_t e = dp->tab[p];
        if (e && E_SLOT(e) == from->slot) {
            uint64_t r = E_ROW(e);
            /* a winner is never dropped: map[r] is a row */
            dp->tab[p] = (e & ~((UINT64_C(1) << 40) - 1)) | MAKE_LOC(to->slot, r < nrows ? map[r] : 0);
        }
    }
    for (uint64_t i = 0; i < dp->npend; i++) {
        uint64_t l = dp->pend[i].loc;
        if (E_SLOT(l) == from->slot && E_ROW(l) < nrows && map[E_ROW(l)] != UINT32_MAX)
            dp->pend[i].loc = MAKE_LOC(to->slot, map[E_ROW(l)]);
    }
    if (from->seg)
        cache_drop(dp, from->seg);
    return 0;
}

/* Rows of ds's pending marks whose cause is after `committed`, into a malloc'd array. */
static int pending_rows(const dedup_part *dp, const dedup_src *ds, uint64_t committed, uint64_t **out,
                        uint64_t *n)
{
    *out = malloc(sizeof(uint64_t) * (dp->npend + 1));
    *n = 0;
    if (!*out)
        return STRATA_ENOMEM;
    for (uint64_t i = 0; i < dp->npend; i++)
        if (E_SLOT(dp->pend[i].loc) == ds->slot && dp->pend[i].cause > committed)
            (*out)[(*n)++] = E_ROW(dp->pend[i].loc);
    return 0;
}

int dedup_durable_marks(dedup_part *dp, const dedup_src *ds, const dvec *dv, uint64_t committed,
                        bytebuf *out, strata_err *err)
{
    uint64_t *skip, n;
    if (pending_rows(dp, ds, committed, &skip, &n))
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    int rc = dvec_serialize(dv, skip, n, out, err);
    free(skip);
    return rc;
}

typedef struct durable_ctx {
    const uint64_t *skip; /* sorted */
    uint64_t nskip;
    uint64_t *rows;
    uint64_t n;
} durable_ctx;

static void durable_collect(uint64_t row, void *arg)
{
    durable_ctx *d = arg;
    uint64_t lo = 0, hi = d->nskip;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        if (d->skip[mid] < row)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < d->nskip && d->skip[lo] == row)
        return;
    d->rows[d->n++] = row;
}

int dedup_durable_dv(dedup_part *dp, const dedup_src *ds, uint64_t committed, dvec **out, strata_err *err)
{
    uint64_t *skip, n;
    *out = NULL;
    if (pending_rows(dp, ds, committed, &skip, &n))
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    qsort(skip, n, sizeof *skip, cmp_u64);
    durable_ctx d = {skip, n, malloc(sizeof(uint64_t) * (dvec_count(ds->dv) + 1)), 0};
    if (!d.rows) {
        free(skip);
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    }
    dvec_each(ds->dv, durable_collect, &d);
    int rc = dvec_with_rows(NULL, d.rows, d.n, out, err);
    free(d.rows);
    free(skip);
    return rc;
}

void dedup_committed(dedup_part *dp, uint64_t committed)
{
    uint64_t k = 0;
    for (uint64_t i = 0; i < dp->npend; i++)
        if (dp->pend[i].cause > committed)
            dp->pend[k++] = dp->pend[i];
    dp->npend = k;
}
