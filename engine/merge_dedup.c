/*
 * merge_dedup.c — what a merge of a dedup table does besides merging (engine/dedup.h):
 * drops the superseded rows whose marks are durable, and carries the rest of the
 * partition's dedup state over to the merged segment.
 *
 * Begin (merge lock only; dedup_lock for a moment): each input's droppable rows are its
 * durable marks at that instant (dedup_durable_dv), and a map input row -> output row is
 * allocated per input. The merge's row filter (merge_dd_keep) drops droppable rows and
 * numbers the kept ones in output order. Marks made while the merge runs land on rows it
 * keeps (a marked row is never marked again, and only winners get marked).
 *
 * Commit (flush_lock, then dedup_lock until the swap): the output's delete vector is every
 * input's current marks through the maps, and its durable part goes in the next MANIFEST
 * with the other segments'. After the MANIFEST is written, index entries and pending
 * marks move to the output (dedup_move without building a dv: it cannot fail), and the
 * inputs give their slots back.
 */
#include "engine/table_internal.h"

#include <stdlib.h>
#include <string.h>

void merge_dd_free(merge_dd *md)
{
    if (!md)
        return;
    for (uint32_t i = 0; i < md->n; i++) {
        dvec_unref(md->drop[i]);
        free(md->maps[i]);
    }
    free(md->drop);
    free(md->maps);
    free(md->rows);
    dvec_unref(md->out_dv);
    memset(md, 0, sizeof *md);
}

int merge_dd_begin(strata_table *t, partition *p, table_seg *const *in, uint32_t n, merge_dd *md,
                   strata_err *err)
{
    memset(md, 0, sizeof *md);
    md->drop = calloc(n + 1, sizeof *md->drop);
    md->maps = calloc(n + 1, sizeof *md->maps);
    md->rows = calloc(n + 1, sizeof *md->rows);
    if (!md->drop || !md->maps || !md->rows) {
        merge_dd_free(md);
        return strata_err_set(err, STRATA_ENOMEM, "out of memory");
    }
    md->n = n;
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        md->rows[i] = segment_nrows(in[i]->seg);
        if (!(md->maps[i] = malloc(sizeof *md->maps[i] * (md->rows[i] + 1))))
            rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
        else
            memset(md->maps[i], 0xff, sizeof *md->maps[i] * md->rows[i]);
    }
    pthread_mutex_lock(&t->dedup_lock);
    for (uint32_t i = 0; i < n && rc == 0; i++)
        rc = dedup_durable_dv(p->dd, in[i]->dd, p->dd_committed, &md->drop[i], err);
    pthread_mutex_unlock(&t->dedup_lock);
    if (rc)
        merge_dd_free(md);
    return rc;
}

bool merge_dd_keep(void *ctx, const merge_row_view *row)
{
    merge_dd *md = ctx;
    if (dvec_test(md->drop[row->input], row->row))
        return false;
    md->maps[row->input][row->row] = (uint32_t)md->next_out++;
    return true;
}

int merge_dd_prepare(strata_table *t, partition *p, table_seg *const *in, table_seg *h, uint64_t id,
                     manifest *next, merge_dd *md, strata_err *err)
{
    dvec *dur = NULL;
    int rc = 0;
    for (uint32_t i = 0; i < md->n && rc == 0; i++) {
        dvec *nd = NULL, *ndur = NULL, *d_in = NULL;
        if ((rc = dedup_translate_dv(in[i]->dd->dv, md->maps[i], md->rows[i], md->out_dv, &nd, err)) != 0)
            break;
        dvec_unref(md->out_dv);
        md->out_dv = nd;
        if ((rc = dedup_durable_dv(p->dd, in[i]->dd, p->dd_committed, &d_in, err)) == 0)
            rc = dedup_translate_dv(d_in, md->maps[i], md->rows[i], dur, &ndur, err);
        dvec_unref(d_in);
        if (rc == 0) {
            dvec_unref(dur);
            dur = ndur;
        }
    }
    if (rc == 0 && h) {
        if (!(h->dd = dedup_src_new(NULL, h->seg, 0)))
            rc = strata_err_set(err, STRATA_ENOMEM, "out of memory");
        else
            rc = dedup_src_attach(p->dd, h->dd, err);
    }
    if (rc == 0) {
        /* the output's durable marks, as a source with no pending marks of its own */
        dedup_src tmp = {.dv = dur, .slot = DEDUP_NO_SLOT};
        rc = table__dd_manifest(t, p, next, p->dd_committed, h ? &tmp : NULL, id, err);
        tmp.dv = NULL;
    }
    dvec_unref(dur);
    if (rc && h && h->dd)
        dedup_src_detach(p->dd, h->dd);
    return rc;
}

void merge_dd_publish(partition *p, table_seg *const *in, table_seg *h, merge_dd *md)
{
    for (uint32_t i = 0; i < md->n; i++) {
        if (h)
            dedup_move(p->dd, in[i]->dd, h->dd, md->maps[i], md->rows[i], NULL, NULL, NULL);
        dedup_src_detach(p->dd, in[i]->dd);
    }
    if (h) {
        h->dd->dv = md->out_dv;
        md->out_dv = NULL;
    }
}

void merge_dd_unprepare(partition *p, table_seg *h)
{
    if (h && h->dd)
        dedup_src_detach(p->dd, h->dd);
}
