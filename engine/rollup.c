/*
 * rollup.c — the tiers of rollup.h: what each knows (built_from, sealed_through), its
 * buckets, its dirty buckets with their generations, its dictionaries, and the
 * immutable views queries read.
 *
 * Each tier keeps its buckets in one array sorted by start (each bucket referenced
 * once by the array) and its dirty buckets in two arrays (starts, generations). A view
 * of a tier is a "pub": copies of both arrays, the buckets referenced once more, made
 * when a query first asks after a change (so a stream of changes costs nothing until
 * someone reads) and shared by every view until the next change. An epoch counts the
 * changes that make a build's result meaningless (the tier reset or forgotten): a
 * commit of an older epoch is dropped.
 */
#include "engine/rollup.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sketch.h"

_Static_assert(ROLLUP_MAX_STATES <= QUERY_MAX_AGGS, "a tier's states are one query's aggregates");
_Static_assert(STRATA_MAX_ROLLUP_DIMS <= QUERY_MAX_GROUP, "a tier groups by its dimensions");

struct rollup_tier_pub {
    _Atomic int refs;
    rollup_tier_view v;
};

typedef struct tier {
    strata_rollup def;
    int64_t I;
    int nstates;
    query_agg st[ROLLUP_MAX_STATES];
    rollup_dict *dict; /* ndims */
    bool built;
    uint64_t epoch;
    int64_t built_from, sealed_through, sealing_to;
    /* Backfill: rows that arrived before built_from (an older load, a Kafka partition
     * catching up) extend the tier backwards. backfill_min: the earliest such row time
     * (INT64_MAX: none); backfill_lo: the start of a backfill job in progress (marks apply
     * from there), else built_from; floor: the tier never reaches before it (retention
     * and the memory limit forgot what lies before). */
    int64_t backfill_min, backfill_lo, floor;
    rollup_bucket **b;
    uint32_t nb, cap;
    int64_t *dirty;
    uint64_t *gens;
    uint32_t ndirty, dcap;
    uint64_t gen;
    rollup_tier_pub *pub; /* NULL: made again at the next view */
    /* What changed since the tier was last saved (rollup_store.h): the ranges whose
     * buckets were built or rebuilt, sorted and disjoint; chg_all: everything (a reset,
     * or too many ranges to list). */
    int64_t (*chg)[2];
    uint32_t nchg, chgcap;
    bool chg_all;
    bool meta_changed; /* built_from or floor moved (retention, memory) since the last save */
    uint64_t bytes, rows;
    uint64_t builds, rebuilt, build_ns;
} tier;

struct rollup_set {
    pthread_mutex_t mu;
    const strata_schema *sc;
    uint64_t mem_limit;            /* bytes of buckets for all tiers; 0: none */
    uint64_t forgotten_for_memory; /* times tiers forgot buckets to stay under it */
    int ntiers;
    tier t[STRATA_MAX_ROLLUPS];
};

/* ---- the states of a tier ----------------------------------------------------------- */

static void add_state(query_agg *out, int *n, strata_agg fn, int col)
{
    for (int i = 0; i < *n; i++)
        if (out[i].fn == fn && out[i].col == col)
            return;
    if (*n >= ROLLUP_MAX_STATES)
        return;
    query_agg *a = &out[(*n)++];
    memset(a, 0, sizeof *a);
    a->fn = fn;
    a->col = col;
    a->q = 0.5;
    snprintf(a->name, sizeof a->name, "s%d", *n - 1);
}

void rollup_tier_states(const strata_schema *sc, const strata_rollup *r, query_agg *out, int *n)
{
    *n = 0;
    add_state(out, n, STRATA_AGG_COUNT, -1);
    for (int m = 0; m < r->nmetrics; m++) {
        const strata_rollup_metric *me = &r->metrics[m];
        if (me->fn == STRATA_AGG_COUNT)
            continue;
        add_state(out, n, me->fn, me->column);
        if (me->fn == STRATA_AGG_SUM && strata_type_is_int(sc->cols[me->column].type))
            add_state(out, n, STRATA_AGG_AVG, me->column); /* avg sums as floats */
    }
}

int rollup_state_for(const strata_schema *sc, const query_agg *st, int n, const query_agg *a)
{
    strata_agg fn = a->fn;
    if (fn == STRATA_AGG_AVG && !strata_type_is_int(sc->cols[a->col].type))
        fn = STRATA_AGG_SUM; /* a float sum is the state avg reads */
    for (int i = 0; i < n; i++)
        if (st[i].fn == fn && (fn == STRATA_AGG_COUNT || st[i].col == a->col))
            return i;
    return -1;
}

/* ---- buckets -------------------------------------------------------------------------- */

rollup_bucket *rollup_bucket_new(const rollup_set *rs, int ti, int64_t start, uint32_t nrows)
{
    const tier *t = &rs->t[ti];
    rollup_bucket *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->start = start;
    b->nrows = nrows;
    b->dims = calloc((size_t)nrows * (size_t)t->def.ndims + 1, sizeof *b->dims);
    b->states = calloc((size_t)nrows * (size_t)t->nstates + 1, sizeof *b->states);
    if (!b->dims || !b->states) {
        free(b->dims);
        free(b->states);
        free(b);
        return NULL;
    }
    b->bytes = sizeof *b + (uint64_t)nrows * ((uint64_t)t->def.ndims * 4 + (uint64_t)t->nstates * sizeof(agg_state));
    atomic_init(&b->refs, 1);
    return b;
}

void rollup_bucket_unref(const rollup_set *rs, int ti, rollup_bucket *b)
{
    if (!b || atomic_fetch_sub(&b->refs, 1) != 1)
        return;
    const tier *t = &rs->t[ti];
    for (uint32_t r = 0; r < b->nrows; r++)
        for (int s = 0; s < t->nstates; s++) {
            agg_state *st = &b->states[(uint64_t)r * (uint64_t)t->nstates + (uint64_t)s];
            if (t->st[s].fn == STRATA_AGG_QUANTILE)
                free(st->sk); /* packed */
            else
                qagg_state_free(&t->st[s], st);
        }
    free(b->dims);
    free(b->states);
    free(b);
}

/* ---- what changed since the last save ------------------------------------------------- */

#define CHANGES_MAX 65536u /* ranges listed before the next save rewrites everything */

/* Adds [from, to) to t's changed ranges (merging the ones it touches). Caller holds mu. */
static void changes_add(tier *t, int64_t from, int64_t to)
{
    if (t->chg_all || from >= to)
        return;
    uint32_t i = 0;
    while (i < t->nchg && t->chg[i][1] < from)
        i++;
    uint32_t j = i;
    while (j < t->nchg && t->chg[j][0] <= to) {
        from = t->chg[j][0] < from ? t->chg[j][0] : from;
        to = t->chg[j][1] > to ? t->chg[j][1] : to;
        j++;
    }
    if (j == i) { /* touches none: insert at i */
        if (t->nchg == t->chgcap) {
            uint32_t cap = t->chgcap ? t->chgcap * 2 : 16;
            int64_t(*n)[2] = cap > CHANGES_MAX ? NULL : realloc(t->chg, sizeof *n * cap);
            if (!n) {
                t->chg_all = true;
                t->nchg = 0;
                return;
            }
            t->chg = n;
            t->chgcap = cap;
        }
        memmove(t->chg + i + 1, t->chg + i, sizeof *t->chg * (t->nchg - i));
        t->nchg++;
    } else if (j > i + 1) {
        memmove(t->chg + i + 1, t->chg + j, sizeof *t->chg * (t->nchg - j));
        t->nchg -= j - i - 1;
    }
    t->chg[i][0] = from;
    t->chg[i][1] = to;
}

/* ---- the set --------------------------------------------------------------------------- */

rollup_set *rollup_set_create(const strata_schema *sc)
{
    if (sc->nrollups <= 0)
        return NULL;
    rollup_set *rs = calloc(1, sizeof *rs);
    if (!rs)
        return NULL;
    pthread_mutex_init(&rs->mu, NULL);
    rs->sc = sc;
    rs->mem_limit = ROLLUP_MEMORY_DEFAULT;
    rs->ntiers = sc->nrollups;
    for (int i = 0; i < rs->ntiers; i++) {
        tier *t = &rs->t[i];
        t->def = sc->rollups[i];
        t->I = t->def.interval_ms;
        rollup_tier_states(sc, &t->def, t->st, &t->nstates);
        t->dict = calloc((size_t)t->def.ndims + 1, sizeof *t->dict);
        t->built_from = t->sealed_through = t->sealing_to = t->backfill_lo = INT64_MIN;
        t->backfill_min = INT64_MAX;
        t->floor = INT64_MIN;
        if (!t->dict) {
            rollup_set_free(rs);
            return NULL;
        }
    }
    return rs;
}

static void pub_unref(rollup_set *rs, int ti, rollup_tier_pub *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    for (uint32_t i = 0; i < p->v.nb; i++)
        rollup_bucket_unref(rs, ti, p->v.b[i]);
    free(p->v.b);
    free(p->v.dirty);
    free(p);
}

/* The tier changed: the next view makes a new pub. Caller holds mu. */
static void changed(rollup_set *rs, int ti)
{
    pub_unref(rs, ti, rs->t[ti].pub);
    rs->t[ti].pub = NULL;
}

/* Forgets every bucket and dirty mark; the tier is built again from the start. Caller
 * holds mu. */
static void tier_reset(rollup_set *rs, int ti)
{
    tier *t = &rs->t[ti];
    for (uint32_t i = 0; i < t->nb; i++)
        rollup_bucket_unref(rs, ti, t->b[i]);
    t->nb = 0;
    t->ndirty = 0;
    t->bytes = t->rows = 0;
    t->built = false;
    t->built_from = t->sealed_through = t->sealing_to = t->backfill_lo = INT64_MIN;
    t->backfill_min = INT64_MAX;
    t->epoch++;
    t->chg_all = true;
    t->nchg = 0;
    changed(rs, ti);
}

void rollup_set_free(rollup_set *rs)
{
    if (!rs)
        return;
    for (int i = 0; i < rs->ntiers; i++) {
        tier *t = &rs->t[i];
        changed(rs, i);
        for (uint32_t j = 0; j < t->nb; j++)
            rollup_bucket_unref(rs, i, t->b[j]);
        free(t->b);
        free(t->dirty);
        free(t->gens);
        free(t->chg);
        for (int d = 0; t->dict && d < t->def.ndims; d++) {
            rollup_dict *dc = &t->dict[d];
            for (uint32_t c = 0; c < dc->n; c++)
                free((void *)dc->chunk[c / ROLLUP_DICT_CHUNK][c % ROLLUP_DICT_CHUNK].ptr);
            for (uint32_t k = 0; k < ROLLUP_DICT_CHUNKS && dc->chunk[k]; k++)
                free(dc->chunk[k]);
            free(dc->slots);
        }
        free(t->dict);
    }
    pthread_mutex_destroy(&rs->mu);
    free(rs);
}

int rollup_set_ntiers(const rollup_set *rs) { return rs ? rs->ntiers : 0; }

void rollup_dims_text(const strata_schema *sc, int ti, char *out, size_t cap)
{
    const strata_rollup *r = &sc->rollups[ti];
    size_t len = 0;
    out[0] = 0;
    for (int d = 0; d < r->ndims && len + 1 < cap; d++) {
        int n = snprintf(out + len, cap - len, "%s%s", d ? "," : "", sc->cols[r->dims[d]].name);
        len += n > 0 ? (size_t)n : 0;
    }
}

/* ---- dirty marks --------------------------------------------------------------------- */

/* Index of the first dirty start >= s. */
static uint32_t dirty_lower(const tier *t, int64_t s)
{
    return rollup_starts_lower(t->dirty, t->ndirty, s);
}

/* Marks bucket s dirty (a new generation). False when out of memory. */
static bool dirty_mark(tier *t, int64_t s, bool *added)
{
    uint32_t i = dirty_lower(t, s);
    if (i < t->ndirty && t->dirty[i] == s) {
        t->gens[i] = ++t->gen;
        return true;
    }
    if (t->ndirty == t->dcap) {
        uint32_t cap = t->dcap ? t->dcap * 2 : 16;
        int64_t *nd = realloc(t->dirty, sizeof *nd * cap);
        if (!nd)
            return false;
        t->dirty = nd;
        uint64_t *ng = realloc(t->gens, sizeof *ng * cap);
        if (!ng)
            return false;
        t->gens = ng;
        t->dcap = cap;
    }
    memmove(t->dirty + i + 1, t->dirty + i, sizeof *t->dirty * (t->ndirty - i));
    memmove(t->gens + i + 1, t->gens + i, sizeof *t->gens * (t->ndirty - i));
    t->dirty[i] = s;
    t->gens[i] = ++t->gen;
    t->ndirty++;
    *added = true;
    return true;
}

static void dirty_remove_at(tier *t, uint32_t i)
{
    memmove(t->dirty + i, t->dirty + i + 1, sizeof *t->dirty * (t->ndirty - i - 1));
    memmove(t->gens + i, t->gens + i + 1, sizeof *t->gens * (t->ndirty - i - 1));
    t->ndirty--;
}

void rollup_note_rows(rollup_set *rs, const int64_t *ts, const uint32_t *rows, uint32_t n)
{
    if (!rs || n == 0)
        return;
    pthread_mutex_lock(&rs->mu);
    for (int ti = 0; ti < rs->ntiers; ti++) {
        tier *t = &rs->t[ti];
        if (!t->built)
            continue;
        int64_t horizon = t->sealed_through > t->sealing_to ? t->sealed_through : t->sealing_to;
        int64_t lo = t->backfill_lo < t->built_from ? t->backfill_lo : t->built_from;
        bool added = false, oom = false;
        int64_t last = INT64_MIN;
        for (uint32_t k = 0; k < n && !oom; k++) {
            int64_t v = ts[rows ? rows[k] : k];
            if (v < t->built_from && v >= t->floor && v < t->backfill_min)
                t->backfill_min = v; /* the tier will reach back to it */
            if (v >= horizon || v < lo || v < t->floor)
                continue; /* (before floor: raw rows there expired; this one goes at the next sweep) */
            int64_t s = rollup_floor_to(v, t->I);
            if (s == last)
                continue;
            last = s;
            oom = !dirty_mark(t, s, &added);
        }
        if (oom)
            tier_reset(rs, ti); /* the mark is lost: nothing of the tier can be trusted */
        else if (added)
            changed(rs, ti);
    }
    pthread_mutex_unlock(&rs->mu);
}

/* ---- views ----------------------------------------------------------------------------- */

static rollup_tier_pub *pub_make(rollup_set *rs, int ti)
{
    tier *t = &rs->t[ti];
    rollup_tier_pub *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    atomic_init(&p->refs, 1);
    p->v.valid = t->built;
    p->v.built_from = t->built_from;
    p->v.sealed_through = t->sealed_through;
    p->v.b = malloc(sizeof *p->v.b * (t->nb + 1));
    p->v.dirty = malloc(sizeof *p->v.dirty * (t->ndirty + 1));
    if (!p->v.b || !p->v.dirty) {
        free(p->v.b);
        free(p->v.dirty);
        free(p);
        return NULL;
    }
    for (uint32_t i = 0; i < t->nb; i++) {
        atomic_fetch_add(&t->b[i]->refs, 1);
        p->v.b[i] = t->b[i];
    }
    p->v.nb = t->nb;
    if (t->ndirty)
        memcpy(p->v.dirty, t->dirty, sizeof *t->dirty * t->ndirty);
    p->v.ndirty = t->ndirty;
    return p;
}

rollup_view *rollup_view_acquire(rollup_set *rs)
{
    rollup_view *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    pthread_mutex_lock(&rs->mu);
    v->ntiers = rs->ntiers;
    for (int ti = 0; ti < rs->ntiers; ti++) {
        if (!rs->t[ti].pub)
            rs->t[ti].pub = pub_make(rs, ti);
        rollup_tier_pub *p = rs->t[ti].pub;
        if (!p) {
            v->tiers[ti].valid = false;
            continue;
        }
        atomic_fetch_add(&p->refs, 1);
        v->pub[ti] = p;
        v->tiers[ti] = p->v;
    }
    pthread_mutex_unlock(&rs->mu);
    v->rs = rs;
    return v;
}

void rollup_view_release(rollup_view *v)
{
    if (!v)
        return;
    for (int ti = 0; ti < v->ntiers; ti++)
        pub_unref(v->rs, ti, v->pub[ti]);
    free(v);
}

/* ---- dictionaries ---------------------------------------------------------------------- */

strata_str rollup_dict_value(const rollup_set *rs, int ti, int d, uint32_t code)
{
    const rollup_dict *dc = &rs->t[ti].dict[d];
    return dc->chunk[code / ROLLUP_DICT_CHUNK][code % ROLLUP_DICT_CHUNK];
}

static bool dict_grow(rollup_dict *dc)
{
    uint32_t ns = dc->nslots ? dc->nslots * 2 : 64;
    uint32_t *slots = calloc(ns, sizeof *slots);
    if (!slots)
        return false;
    for (uint32_t i = 0; i < dc->nslots; i++) {
        uint32_t c = dc->slots[i];
        if (!c)
            continue;
        strata_str s = dc->chunk[(c - 1) / ROLLUP_DICT_CHUNK][(c - 1) % ROLLUP_DICT_CHUNK];
        uint32_t h = (uint32_t)sketch_hash_bytes(s.ptr, s.len) & (ns - 1);
        while (slots[h])
            h = (h + 1) & (ns - 1);
        slots[h] = c;
    }
    free(dc->slots);
    dc->slots = slots;
    dc->nslots = ns;
    return true;
}

uint32_t rollup_dict_intern(rollup_set *rs, int ti, int d, strata_str s)
{
    rollup_dict *dc = &rs->t[ti].dict[d];
    if ((dc->n + 1) * 2 > dc->nslots && !dict_grow(dc))
        return UINT32_MAX;
    uint32_t mask = dc->nslots - 1, h = (uint32_t)sketch_hash_bytes(s.ptr, s.len) & mask;
    for (;; h = (h + 1) & mask) {
        uint32_t c = dc->slots[h];
        if (!c)
            break;
        strata_str o = dc->chunk[(c - 1) / ROLLUP_DICT_CHUNK][(c - 1) % ROLLUP_DICT_CHUNK];
        if (o.len == s.len && (s.len == 0 || memcmp(o.ptr, s.ptr, s.len) == 0))
            return c - 1;
    }
    uint32_t code = dc->n;
    if (code >= ROLLUP_DICT_CHUNK * ROLLUP_DICT_CHUNKS)
        return UINT32_MAX;
    strata_str **ch = &dc->chunk[code / ROLLUP_DICT_CHUNK];
    if (!*ch && !(*ch = calloc(ROLLUP_DICT_CHUNK, sizeof **ch)))
        return UINT32_MAX;
    char *copy = malloc((size_t)s.len + 1);
    if (!copy)
        return UINT32_MAX;
    if (s.len)
        memcpy(copy, s.ptr, s.len);
    copy[s.len] = 0;
    /* The entry is written before any bucket holding the code is published (under mu),
     * and readers only read codes their view's buckets hold. */
    (*ch)[code % ROLLUP_DICT_CHUNK] = (strata_str){copy, s.len};
    dc->n = code + 1;
    dc->bytes += s.len + 1 + sizeof(strata_str);
    dc->slots[h] = code + 1;
    return code;
}

/* ---- retention --------------------------------------------------------------------------- */

/* Forgets tier ti's buckets before from (a multiple of its interval): the tier is
 * known from there on. Caller holds mu. */
static void tier_forget_before(rollup_set *rs, int ti, int64_t from)
{
    tier *t = &rs->t[ti];
    uint32_t k = 0;
    while (k < t->nb && t->b[k]->start < from) {
        t->bytes -= t->b[k]->bytes;
        t->rows -= t->b[k]->nrows;
        rollup_bucket_unref(rs, ti, t->b[k]);
        k++;
    }
    if (k)
        memmove(t->b, t->b + k, sizeof *t->b * (t->nb - k));
    t->nb -= k;
    while (t->ndirty && t->dirty[0] < from)
        dirty_remove_at(t, 0);
    t->built_from = t->backfill_lo = t->floor = from; /* never built back below it */
    t->meta_changed = true;
    if (t->backfill_min < from)
        t->backfill_min = INT64_MAX;
    if (t->sealed_through < from)
        t->sealed_through = from;
    if (t->sealing_to < from)
        t->sealing_to = from;
    t->epoch++; /* a build in progress may have read the forgotten rows */
    changed(rs, ti);
}

int64_t rollup_tier_retention(const strata_schema *sc, int ti)
{
    return sc->rollups[ti].interval_ms < 3600000 ? sc->retention_1m_ms : sc->retention_1h_ms;
}

void rollup_forget_before(rollup_set *rs, int64_t t_ms)
{
    if (!rs)
        return;
    pthread_mutex_lock(&rs->mu);
    for (int ti = 0; ti < rs->ntiers; ti++) {
        tier *t = &rs->t[ti];
        int64_t from = rollup_floor_to(t_ms, t->I);
        if (from < t_ms)
            from += t->I;
        if (rollup_tier_retention(rs->sc, ti) > 0) {
            /* It outlives raw rows: it keeps its buckets, and never builds before them
             * again (rollup_raw_expiry_ready saw none dirty there). */
            if (t->floor < from) {
                t->floor = from;
                t->meta_changed = true;
                while (t->ndirty && t->dirty[0] < from)
                    dirty_remove_at(t, 0);
                if (t->backfill_min < from)
                    t->backfill_min = INT64_MAX;
                changed(rs, ti);
            }
            continue;
        }
        if (!t->built || t->built_from >= t_ms)
            continue;
        tier_forget_before(rs, ti, from);
    }
    pthread_mutex_unlock(&rs->mu);
}

int64_t rollup_outliving_floor(rollup_set *rs)
{
    int64_t f = INT64_MIN;
    pthread_mutex_lock(&rs->mu);
    for (int ti = 0; ti < rs->ntiers; ti++)
        if (rollup_tier_retention(rs->sc, ti) > 0 && rs->t[ti].built && rs->t[ti].floor > f)
            f = rs->t[ti].floor;
    pthread_mutex_unlock(&rs->mu);
    return f;
}

bool rollup_raw_expiry_ready(rollup_set *rs, int64_t end_ms, int *waiting_tier)
{
    *waiting_tier = -1;
    if (!rs)
        return true;
    pthread_mutex_lock(&rs->mu);
    for (int ti = 0; ti < rs->ntiers && *waiting_tier < 0; ti++) {
        tier *t = &rs->t[ti];
        if (rollup_tier_retention(rs->sc, ti) <= 0 || (t->built && t->built_from >= end_ms))
            continue;
        bool ready = t->built && t->sealed_through >= end_ms && t->backfill_min >= end_ms && !t->chg_all &&
                     (t->ndirty == 0 || t->dirty[0] >= end_ms) && (t->nchg == 0 || t->chg[0][0] >= end_ms);
        if (!ready)
            *waiting_tier = ti;
    }
    pthread_mutex_unlock(&rs->mu);
    return *waiting_tier < 0;
}

uint32_t rollup_expire(rollup_set *rs, int64_t now_ms)
{
    if (!rs)
        return 0;
    uint32_t n = 0;
    pthread_mutex_lock(&rs->mu);
    for (int ti = 0; ti < rs->ntiers; ti++) {
        tier *t = &rs->t[ti];
        int64_t keep = rollup_tier_retention(rs->sc, ti);
        if (keep <= 0 || !t->built)
            continue;
        int64_t from = rollup_floor_to(now_ms - keep, t->I); /* buckets ending by now - keep go */
        if (from <= t->built_from)
            continue;
        tier_forget_before(rs, ti, from);
        n++;
    }
    pthread_mutex_unlock(&rs->mu);
    return n;
}

void rollup_set_memory_limit(rollup_set *rs, uint64_t bytes)
{
    pthread_mutex_lock(&rs->mu);
    rs->mem_limit = bytes;
    pthread_mutex_unlock(&rs->mu);
}

/* Over the memory limit: the tier holding the most forgets its oldest buckets until the
 * set is back under 90% of the limit (queries read raw rows there). Caller holds mu. */
static void enforce_memory_limit(rollup_set *rs)
{
    for (;;) {
        uint64_t total = 0, most = 0;
        int worst = -1;
        for (int ti = 0; ti < rs->ntiers; ti++) {
            total += rs->t[ti].bytes;
            if (rs->t[ti].nb > 0 && rs->t[ti].bytes > most) {
                most = rs->t[ti].bytes;
                worst = ti;
            }
        }
        if (rs->mem_limit == 0 || total <= rs->mem_limit || worst < 0)
            return;
        tier *t = &rs->t[worst];
        uint64_t goal = total - rs->mem_limit / 10 * 9, freed = 0;
        uint32_t k = 0;
        while (k < t->nb && freed < goal)
            freed += t->b[k++]->bytes;
        tier_forget_before(rs, worst, t->b[k - 1]->start + t->I);
        rs->forgotten_for_memory++;
    }
}

/* ---- jobs ------------------------------------------------------------------------------- */

void rollup_job_free(rollup_job *job)
{
    free(job->dirty);
    free(job->gens);
    memset(job, 0, sizeof *job);
}

int rollup_job_next(rollup_set *rs, int ti, int64_t watermark, int64_t first_ms, int64_t last_before_ms,
                    int64_t max_span, uint32_t max_dirty, rollup_job *job)
{
    memset(job, 0, sizeof *job);
    job->tier = ti;
    int rc = STRATA_ENOTFOUND;
    pthread_mutex_lock(&rs->mu);
    tier *t = &rs->t[ti];
    if (!t->built) {
        if (first_ms == INT64_MAX || watermark == INT64_MIN)
            goto out; /* no rows yet */
        t->built = true;
        int64_t from = rollup_floor_to(first_ms, t->I), wm = rollup_floor_to(watermark, t->I);
        if (from > wm)
            from = wm; /* never sealed past the watermark, even when every row is later */
        if (from < t->floor)
            from = t->floor;
        t->built_from = t->sealed_through = t->sealing_to = t->backfill_lo = from;
        changed(rs, ti);
    }
    job->epoch = t->epoch;
    if (t->ndirty > 0) {
        uint32_t n = t->ndirty < max_dirty ? t->ndirty : max_dirty;
        job->dirty = malloc(sizeof *job->dirty * n);
        job->gens = malloc(sizeof *job->gens * n);
        if (!job->dirty || !job->gens) {
            rc = STRATA_ENOMEM;
            goto out;
        }
        memcpy(job->dirty, t->dirty, sizeof *job->dirty * n);
        memcpy(job->gens, t->gens, sizeof *job->gens * n);
        job->ndirty = n;
        rc = 0;
        goto out;
    }
    if (t->backfill_min < t->built_from) {
        /* rows before the tier: build back towards them, nearest first */
        int64_t lo = rollup_floor_to(t->backfill_min, t->I), span = max_span > t->I ? max_span / t->I * t->I : t->I;
        if (lo < t->floor)
            lo = t->floor;
        if (lo < t->built_from) {
            /* down to a span below the latest row before built_from: the stretch without
             * rows above it goes in the same job */
            int64_t top = last_before_ms == INT64_MIN || last_before_ms >= t->built_from
                              ? t->built_from
                              : rollup_floor_to(last_before_ms, t->I) + t->I;
            job->whole = job->backfill = true;
            job->to = t->built_from;
            job->from = top - lo > span ? top - span : lo;
            t->backfill_lo = job->from; /* rows published from now on into [from, to) are marked dirty */
            rc = 0;
            goto out;
        }
        t->backfill_min = INT64_MAX;
    }
    int64_t target = watermark == INT64_MIN ? INT64_MIN : rollup_floor_to(watermark, t->I);
    if (target <= t->sealed_through)
        goto out;
    /* No row before first_ms: the empty stretch up to it is sealed in the same job. */
    int64_t from = t->sealed_through, rows_from = first_ms == INT64_MAX ? target : rollup_floor_to(first_ms, t->I);
    int64_t base = rows_from > from ? rows_from : from, to = target;
    int64_t span = max_span > 0 ? (max_span / t->I > 0 ? max_span / t->I : 1) * t->I : 0;
    if (span > 0 && base < target && target - base > span)
        to = base + span;
    job->whole = true;
    job->from = t->sealed_through;
    job->to = to;
    t->sealing_to = to; /* rows published from now on into [from, to) are marked dirty */
    rc = 0;
out:
    pthread_mutex_unlock(&rs->mu);
    if (rc && rc != STRATA_ENOTFOUND)
        rollup_job_free(job);
    return rc;
}

/* Index of the first bucket of t starting at s or later. */
static uint32_t bucket_lower(const tier *t, int64_t s)
{
    return rollup_buckets_lower(t->b, t->nb, s);
}

static bool buckets_reserve(tier *t, uint32_t more)
{
    if (t->nb + more <= t->cap)
        return true;
    uint32_t cap = t->cap ? t->cap : 64;
    while (cap < t->nb + more)
        cap *= 2;
    rollup_bucket **nb = realloc(t->b, sizeof *nb * cap);
    if (!nb)
        return false;
    t->b = nb;
    t->cap = cap;
    return true;
}

int rollup_job_commit(rollup_set *rs, rollup_job *job, rollup_bucket **b, uint32_t nb)
{
    int ti = job->tier;
    pthread_mutex_lock(&rs->mu);
    tier *t = &rs->t[ti];
    if (job->epoch != t->epoch || !t->built) {
        for (uint32_t i = 0; i < nb; i++)
            rollup_bucket_unref(rs, ti, b[i]);
        pthread_mutex_unlock(&rs->mu);
        return 0; /* the tier was reset or forgot this range meanwhile: nothing to keep */
    }
    if (!buckets_reserve(t, nb)) {
        for (uint32_t i = 0; i < nb; i++)
            rollup_bucket_unref(rs, ti, b[i]);
        pthread_mutex_unlock(&rs->mu);
        rollup_job_abandon(rs, job);
        return STRATA_ENOMEM;
    }
    if (job->backfill) {
        /* Buckets so far all start at built_from == job->to or later. */
        if (t->nb)
            memmove(t->b + nb, t->b, sizeof *t->b * t->nb);
        for (uint32_t i = 0; i < nb; i++) {
            t->b[i] = b[i];
            t->bytes += b[i]->bytes;
            t->rows += b[i]->nrows;
        }
        t->nb += nb;
        changes_add(t, job->from, job->to);
        t->built_from = t->backfill_lo = job->from;
        if (t->backfill_min >= job->from)
            t->backfill_min = INT64_MAX; /* reached */
    } else if (job->whole) {
        /* Buckets so far all start before sealed_through == job->from. */
        for (uint32_t i = 0; i < nb; i++) {
            t->b[t->nb++] = b[i];
            t->bytes += b[i]->bytes;
            t->rows += b[i]->nrows;
        }
        changes_add(t, job->from, job->to);
        t->sealed_through = job->to;
    } else {
        uint32_t k = 0;
        for (uint32_t j = 0; j < job->ndirty; j++) {
            int64_t s = job->dirty[j];
            uint32_t i = bucket_lower(t, s);
            changes_add(t, s, s + t->I);
            rollup_bucket *nbk = k < nb && b[k]->start == s ? b[k++] : NULL;
            if (i < t->nb && t->b[i]->start == s) {
                t->bytes -= t->b[i]->bytes;
                t->rows -= t->b[i]->nrows;
                rollup_bucket_unref(rs, ti, t->b[i]);
                if (nbk) {
                    t->b[i] = nbk;
                } else {
                    memmove(t->b + i, t->b + i + 1, sizeof *t->b * (t->nb - i - 1));
                    t->nb--;
                }
            } else if (nbk) {
                memmove(t->b + i + 1, t->b + i, sizeof *t->b * (t->nb - i));
                t->b[i] = nbk;
                t->nb++;
            }
            if (nbk) {
                t->bytes += nbk->bytes;
                t->rows += nbk->nrows;
            }
            uint32_t d = dirty_lower(t, s);
            if (d < t->ndirty && t->dirty[d] == s && t->gens[d] == job->gens[j])
                dirty_remove_at(t, d); /* not marked again while it was rebuilt */
        }
        for (; k < nb; k++) /* (none: the builder makes buckets of the job's list only) */
            rollup_bucket_unref(rs, ti, b[k]);
    }
    changed(rs, ti);
    enforce_memory_limit(rs);
    pthread_mutex_unlock(&rs->mu);
    return 0;
}

void rollup_job_abandon(rollup_set *rs, rollup_job *job)
{
    pthread_mutex_lock(&rs->mu);
    tier *t = &rs->t[job->tier];
    if (job->backfill && job->epoch == t->epoch) {
        t->backfill_lo = t->built_from;
        while (t->ndirty && t->dirty[0] < t->built_from) /* marks of the range not built */
            dirty_remove_at(t, 0);
        changed(rs, job->tier);
    } else if (job->whole && job->epoch == t->epoch) {
        t->sealing_to = t->sealed_through;
        /* marks made meanwhile for the range that stays unsealed mean nothing */
        while (t->ndirty && t->dirty[t->ndirty - 1] >= t->sealed_through)
            t->ndirty--;
        changed(rs, job->tier);
    }
    pthread_mutex_unlock(&rs->mu);
}

/* ---- saving and restoring (rollup_store.h) ----------------------------------------------- */

int rollup_checkpoint_take(rollup_set *rs, int ti, rollup_checkpoint *ck)
{
    memset(ck, 0, sizeof *ck);
    ck->tier = ti;
    pthread_mutex_lock(&rs->mu);
    tier *t = &rs->t[ti];
    if (!t->pub)
        t->pub = pub_make(rs, ti);
    int64_t(*chg)[2] = t->nchg ? malloc(sizeof *chg * t->nchg) : NULL;
    if (!t->pub || (t->nchg && !chg)) {
        pthread_mutex_unlock(&rs->mu);
        free(chg);
        return STRATA_ENOMEM;
    }
    atomic_fetch_add(&t->pub->refs, 1);
    ck->pub = t->pub;
    ck->v = &t->pub->v;
    ck->built = t->built;
    ck->built_from = t->built_from;
    ck->sealed_through = t->sealed_through;
    ck->floor = t->floor;
    if (t->nchg)
        memcpy(chg, t->chg, sizeof *chg * t->nchg);
    ck->changed = chg;
    ck->nchanged = t->nchg;
    ck->changed_all = t->chg_all;
    ck->meta_changed = t->meta_changed;
    t->nchg = 0;
    t->chg_all = false;
    t->meta_changed = false;
    pthread_mutex_unlock(&rs->mu);
    return 0;
}

void rollup_checkpoint_done(rollup_set *rs, rollup_checkpoint *ck, bool saved)
{
    if (!ck->pub)
        return;
    pthread_mutex_lock(&rs->mu);
    tier *t = &rs->t[ck->tier];
    if (!saved) { /* the next save writes them */
        if (ck->changed_all)
            t->chg_all = true;
        if (ck->meta_changed)
            t->meta_changed = true;
        for (uint32_t i = 0; i < ck->nchanged; i++)
            changes_add(t, ck->changed[i][0], ck->changed[i][1]);
    }
    pthread_mutex_unlock(&rs->mu);
    pub_unref(rs, ck->tier, ck->pub);
    free(ck->changed);
    memset(ck, 0, sizeof *ck);
}

bool rollup_unsaved(rollup_set *rs, int ti)
{
    pthread_mutex_lock(&rs->mu);
    bool r = rs->t[ti].nchg > 0 || rs->t[ti].chg_all || rs->t[ti].meta_changed;
    pthread_mutex_unlock(&rs->mu);
    return r;
}

int rollup_tier_restore(rollup_set *rs, int ti, int64_t built_from, int64_t sealed_through, int64_t floor,
                        const int64_t *dirty, uint32_t ndirty, rollup_bucket **b, uint32_t nb)
{
    pthread_mutex_lock(&rs->mu);
    tier *t = &rs->t[ti];
    tier_reset(rs, ti);
    t->chg_all = false;
    int rc = 0;
    if (!buckets_reserve(t, nb)) {
        rc = STRATA_ENOMEM;
    } else {
        for (uint32_t i = 0; i < nb; i++) {
            t->b[t->nb++] = b[i];
            t->bytes += b[i]->bytes;
            t->rows += b[i]->nrows;
        }
        nb = 0;
        t->built = true;
        t->built_from = t->backfill_lo = built_from;
        t->sealed_through = t->sealing_to = sealed_through;
        t->floor = floor;
        bool added = false;
        for (uint32_t i = 0; i < ndirty && rc == 0; i++)
            if (dirty[i] >= built_from && dirty[i] < sealed_through && !dirty_mark(t, dirty[i], &added))
                rc = STRATA_ENOMEM;
        if (rc)
            tier_reset(rs, ti);
    }
    for (uint32_t i = 0; i < nb; i++)
        rollup_bucket_unref(rs, ti, b[i]);
    changed(rs, ti);
    pthread_mutex_unlock(&rs->mu);
    return rc;
}

void rollup_tier_def(const rollup_set *rs, int ti, const query_agg **st, int *nstates)
{
    *st = rs->t[ti].st;
    *nstates = rs->t[ti].nstates;
}

/* ---- stats ------------------------------------------------------------------------------- */

void rollup_get_stats(rollup_set *rs, int ti, rollup_tier_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&rs->mu);
    const tier *t = &rs->t[ti];
    out->interval_ms = t->I;
    out->valid = t->built;
    out->built_from = t->built ? t->built_from : INT64_MIN;
    out->sealed_through = t->built ? t->sealed_through : INT64_MIN;
    out->buckets = t->nb;
    out->rows = t->rows;
    out->bytes = t->bytes;
    for (int d = 0; d < t->def.ndims; d++)
        out->bytes += t->dict[d].bytes + (uint64_t)t->dict[d].nslots * 4;
    out->dirty = t->ndirty;
    out->backfill = t->built && t->backfill_min < t->built_from;
    out->builds = t->builds;
    out->memory_limit = rs->mem_limit;
    out->forgotten_for_memory = rs->forgotten_for_memory;
    out->rebuilt_buckets = t->rebuilt;
    out->build_ns = t->build_ns;
    pthread_mutex_unlock(&rs->mu);
}

void rollup_note_build(rollup_set *rs, int ti, uint64_t ns, uint32_t rebuilt)
{
    pthread_mutex_lock(&rs->mu);
    rs->t[ti].builds++;
    rs->t[ti].build_ns += ns;
    rs->t[ti].rebuilt += rebuilt;
    pthread_mutex_unlock(&rs->mu);
}
