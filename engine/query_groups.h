/*
 * query_groups.h — internal to the query_*.c files (the public API is engine/query.h):
 * the tables a query groups rows with.
 *
 *   - str_pool: the group-by strings of a query, each copied once and given a dense id
 *     (open addressing on XXH3 hashes), so a group key is fixed-size u64 words.
 *   - group_table: the groups by key (klen u64 words each: the time bucket, then the
 *     group values, strings as pool ids), with naggs agg_state (query_agg.h) side by side
 *     for each group; open addressing over slots that hold group + 1.
 *   - lazy_table: code -> value + 1 (0: not known yet), for the per-source tables that
 *     map a dictionary code to a predicate's answer, a pool id or a group; it grows to
 *     the largest code asked for.
 *
 * Ownership: each table starts zeroed (= {0}: nothing allocated; a group_table also needs
 * klen and naggs set) and grows by itself. Its owner frees it: qgroups_pool_free,
 * qgroups_table_free, free(lazy.v). A group table frees its key and state arrays, not the
 * sketches its states hold (qagg_state_free does: only the aggregate knows which kind it
 * is). Pool strings and group indexes stay valid until the table is freed.
 */
#ifndef STRATA_QUERY_GROUPS_H
#define STRATA_QUERY_GROUPS_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/row_batch.h" /* strata_str */

typedef struct agg_state agg_state; /* query_agg.h */

typedef struct str_pool {
    strata_str *items; /* id -> the string (a NUL-terminated copy) */
    uint64_t *hashes;
    uint32_t n, cap;
    uint64_t bytes; /* of the copied strings */
    uint32_t *slots; /* id + 1 */
    uint32_t nslots;
} str_pool;

typedef struct group_table {
    uint32_t klen, naggs;
    uint64_t n, cap;
    uint64_t *keys;    /* n * klen words */
    agg_state *states; /* n * naggs */
    uint32_t *slots;   /* group + 1 */
    uint64_t nslots;
} group_table;

typedef struct lazy_table {
    uint32_t *v; /* 0 unknown; else value + 1 */
    uint32_t cap;
} lazy_table;

/* The id of s in p, copying s the first time; -1 when out of memory (p stays
 * usable, s not in it). */
int64_t qgroups_pool_intern(str_pool *p, strata_str s);
void qgroups_pool_free(str_pool *p);

/* Index of the group with key k (g->klen words), creating it with zeroed states; -1 when
 * out of memory (g stays usable, without k). */
int64_t qgroups_find(group_table *g, const uint64_t *k);
/* Index of the group with key k, or -1 when there is none (nothing is created). */
int64_t qgroups_lookup(const group_table *g, const uint64_t *k);
/* Frees g's keys, states and slots (not the states' sketches). */
void qgroups_table_free(group_table *g);

/* Makes t->v[code] addressable (new entries 0); false when out of memory (t unchanged). */
bool qgroups_lazy_reserve(lazy_table *t, uint32_t code);

#endif
