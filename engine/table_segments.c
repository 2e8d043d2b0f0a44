/*
 * table_segments.c — what a table holds, segment by segment, for the console's storage
 * view (GET /tables/{name}/segments): every partition with its committed segments (id,
 * rows, bytes, time range, merge level, from the partition's MANIFEST as committed) and
 * the rows still in its memtables, as one consistent look under the table's lock.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/table_internal.h"

int table_list_segments(strata_table *t, table_storage *out, strata_err *err)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&t->lock);
    size_t nseg = 0;
    for (uint32_t i = 0; i < t->nparts; i++)
        nseg += t->parts[i]->man.nsegs;
    out->parts = calloc(t->nparts ? t->nparts : 1, sizeof *out->parts);
    out->segs = calloc(nseg ? nseg : 1, sizeof *out->segs);
    if (!out->parts || !out->segs) {
        pthread_mutex_unlock(&t->lock);
        table_storage_free(out);
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < t->nparts; i++) {
        const partition *p = t->parts[i];
        table_storage_part *sp = &out->parts[out->nparts++];
        sp->key = p->key;
        schema_partition_name(t->schema.partition_by, p->key, sp->name, sizeof sp->name);
        sp->first_seg = out->nsegs;
        for (uint32_t j = 0; j < p->man.nsegs; j++) {
            const manifest_segment *m = &p->man.segs[j];
            table_storage_seg *s = &out->segs[out->nsegs++];
            s->id = m->id;
            s->rows = m->rows;
            s->bytes = m->bytes;
            s->min_time = m->min_time;
            s->max_time = m->max_time;
            s->level = m->level;
            sp->rows += m->rows;
            sp->bytes += m->bytes;
        }
        sp->nsegs = (uint32_t)(out->nsegs - sp->first_seg);
        if (p->active)
            sp->memtable_rows += memtable_nrows(p->active);
        for (uint32_t j = 0; j < p->nsealed; j++)
            sp->memtable_rows += memtable_nrows(p->sealed[j].mt);
    }
    pthread_mutex_unlock(&t->lock);
    return 0;
}

void table_storage_free(table_storage *s)
{
    free(s->parts);
    free(s->segs);
    memset(s, 0, sizeof *s);
}
