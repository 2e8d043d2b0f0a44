/*
 * query_groups.c — the string pool, the group hash table and the lazy code tables of a
 * query (query_groups.h).
 *
 * Both hash tables are open addressing with linear probing over a power-of-two slot
 * array that holds index + 1 (0: empty), kept at most half full: when the next entry
 * would pass that, the slots double and every entry is placed again from its hash (the
 * pool keeps its strings' hashes; the group table hashes its keys again). The entries
 * themselves live in arrays that double separately, so indexes never move.
 */
#include "engine/query_groups.h"

#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "engine/query_agg.h"

/* ---- string pool: query-wide ids for group-by strings ------------------------------- */

int64_t qgroups_pool_intern(str_pool *p, strata_str s)
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

void qgroups_pool_free(str_pool *p)
{
    for (uint32_t i = 0; i < p->n; i++)
        free((char *)p->items[i].ptr);
    free(p->items);
    free(p->hashes);
    free(p->slots);
}

/* ---- group table -------------------------------------------------------------------- */

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

int64_t qgroups_find(group_table *g, const uint64_t *k)
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

int64_t qgroups_lookup(const group_table *g, const uint64_t *k)
{
    uint64_t j;
    return g->nslots == 0 ? -1 : group_probe(g, k, &j);
}

void qgroups_table_free(group_table *g)
{
    free(g->keys);
    free(g->states);
    free(g->slots);
}

/* ---- lazy tables ---------------------------------------------------------------------- */

bool qgroups_lazy_reserve(lazy_table *t, uint32_t code)
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
