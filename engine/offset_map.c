/*
 * offset_map.c — (name, partition) -> offset range maps for exactly-once appends. See
 * offset_map.h.
 *
 * An array of entries searched linearly (a table reads a handful of source partitions),
 * grown by doubling; removal moves the last entry into the gap.
 */
#include "engine/offset_map.h"

#include <stdlib.h>
#include <string.h>

offset_entry *offset_map_find(const offset_map *m, const char *name, int32_t partition)
{
    for (uint32_t i = 0; i < m->n; i++)
        if (m->e[i].partition == partition && strcmp(m->e[i].name, name) == 0)
            return &m->e[i];
    return NULL;
}

/* The entry of (name, partition), added with the empty range when new; NULL with *rc
 * set when the name is refused or memory is short. */
static offset_entry *get_or_add(offset_map *m, const char *name, int32_t partition, int *rc)
{
    size_t len = strlen(name);
    if (len == 0 || len >= OFFSET_NAME_MAX) {
        *rc = STRATA_EINVAL;
        return NULL;
    }
    offset_entry *e = offset_map_find(m, name, partition);
    if (e)
        return e;
    if (m->n == m->cap) {
        uint32_t cap = m->cap ? m->cap * 2 : 8;
        offset_entry *ne = realloc(m->e, sizeof *ne * cap);
        if (!ne) {
            *rc = STRATA_ENOMEM;
            return NULL;
        }
        m->e = ne;
        m->cap = cap;
    }
    e = &m->e[m->n++];
    memcpy(e->name, name, len + 1);
    e->partition = partition;
    e->lo = INT64_MAX;
    e->next = -1;
    return e;
}

int offset_map_reserve(offset_map *m, const char *name, int32_t partition)
{
    int rc = 0;
    get_or_add(m, name, partition, &rc);
    return rc;
}

int offset_map_set(offset_map *m, const char *name, int32_t partition, int64_t next)
{
    int rc = 0;
    offset_entry *e = get_or_add(m, name, partition, &rc);
    if (e)
        e->next = next;
    return rc;
}

int offset_map_set_range(offset_map *m, const char *name, int32_t partition, int64_t lo,
                         int64_t next)
{
    int rc = 0;
    offset_entry *e = get_or_add(m, name, partition, &rc);
    if (e) {
        e->lo = lo;
        e->next = next;
    }
    return rc;
}

void offset_map_widen(offset_map *m, const char *name, int32_t partition, int64_t lo, int64_t next)
{
    offset_entry *e = offset_map_find(m, name, partition);
    if (!e)
        return;
    if (lo < e->lo)
        e->lo = lo;
    if (next > e->next)
        e->next = next;
}

int64_t offset_map_next(const offset_map *m, const char *name, int32_t partition)
{
    const offset_entry *e = offset_map_find(m, name, partition);
    return e ? e->next : -1;
}

int64_t offset_map_lo(const offset_map *m, const char *name, int32_t partition)
{
    const offset_entry *e = offset_map_find(m, name, partition);
    return e ? e->lo : -1;
}

void offset_map_remove(offset_map *m, const char *name, int32_t partition)
{
    offset_entry *e = offset_map_find(m, name, partition);
    if (e)
        *e = m->e[--m->n];
}

int offset_map_copy(offset_map *dst, const offset_map *src)
{
    memset(dst, 0, sizeof *dst);
    if (src->n == 0)
        return 0;
    dst->e = malloc(sizeof *dst->e * src->n);
    if (!dst->e)
        return STRATA_ENOMEM;
    memcpy(dst->e, src->e, sizeof *dst->e * src->n);
    dst->n = dst->cap = src->n;
    return 0;
}

void offset_map_free(offset_map *m)
{
    free(m->e);
    memset(m, 0, sizeof *m);
}
