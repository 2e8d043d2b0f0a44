/*
 * api_storage.c — GET /tables/{name}/segments: a table's storage segment by segment, as
 * `strata inspect` shows it offline, for the console's storage view:
 *
 *   {"table": "orders", "partitions": [{"partition": "2024-01-31", "rows": N, "bytes": N,
 *     "memtable_rows": N, "segments": [{"id": N, "rows": N, "bytes": N, "level": N,
 *     "min_time": ms, "max_time": ms}, ...]}, ...]}
 *
 * rows and bytes of a partition are those of its committed segments (a dedup table's
 * superseded rows included: GET /tables/{name} has what queries see); level 0 is a
 * segment flushed from memory, level n one merged n times over.
 */
#include "http/api.h"

#include "engine/table.h"

enum MHD_Result api_tables_segments(strata_server *s, struct MHD_Connection *c, request *rq,
                                    const char *method)
{
    (void)method;
    strata_table *t = catalog_get(s->cat, rq->table);
    if (!t)
        return api_tables_send_missing(s, c, rq->table, "");
    table_storage st;
    strata_err err = {0};
    int rc = table_list_segments(t, &st, &err);
    catalog_put(s->cat, t);
    if (rc)
        return reply_error(s, c, reply_status_of(rc), "%s", err.msg);
    json_t *parts = json_array();
    for (size_t i = 0; parts && i < st.nparts; i++) {
        const table_storage_part *p = &st.parts[i];
        json_t *segs = json_array();
        for (uint32_t j = 0; segs && j < p->nsegs; j++) {
            const table_storage_seg *g = &st.segs[p->first_seg + j];
            json_array_append_new(segs, json_pack("{s:I, s:I, s:I, s:i, s:I, s:I}", "id", (json_int_t)g->id,
                                                  "rows", (json_int_t)g->rows, "bytes", (json_int_t)g->bytes,
                                                  "level", (int)g->level, "min_time", (json_int_t)g->min_time,
                                                  "max_time", (json_int_t)g->max_time));
        }
        json_array_append_new(parts, json_pack("{s:s, s:I, s:I, s:I, s:o}", "partition", p->name, "rows",
                                               (json_int_t)p->rows, "bytes", (json_int_t)p->bytes,
                                               "memtable_rows", (json_int_t)p->memtable_rows, "segments",
                                               segs ? segs : json_array()));
    }
    table_storage_free(&st);
    json_t *answer = parts ? json_pack("{s:s, s:o}", "table", rq->table, "partitions", parts) : NULL;
    if (!answer)
        return reply_error(s, c, 503, "out of memory");
    return reply_json(s, c, 200, answer);
}
