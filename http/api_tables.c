/*
 * api_tables.c — the tables resource: GET /tables, GET/PUT/DELETE /tables/{name}, POST
 * /tables/{name}/flush and /tables/{name}/kafka/accept-reset; and GET /health.
 *
 * /health lives here because what it reports is the tables' state (which cannot be
 * opened, refuse writes, fail their flushes, met damaged segments) and their Kafka
 * consumers'; the same list (api_tables_problems) feeds /metrics. server.c only decides
 * who may ask (probes without the token get the status alone).
 *
 * A table is described from table_get_stats and the catalog, its schema in its JSON text
 * form (engine/schema_json.h); creation and drops go through the catalog, and the Kafka
 * consumer of a table is attached, detached and described by ingest/kafka_ingest.h.
 * POST /tables/{name}/optimize merges now (engine/merge.h, merge_table_optimize).
 */
#include "http/api.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/clock.h"
#include "engine/json_util.h"
#include "engine/merge.h"
#include "engine/query.h"
#include "engine/rollup.h"
#include "engine/rollup_store.h"
#include "engine/schema_json.h"
#include "engine/table.h"
#include "engine/units.h"
#include "ingest/kafka_ingest.h"

int api_table_logical_rows(strata_table *t, uint64_t *out)
{
    strata_query q;
    query_init(&q);
    q.from_ms = INT64_MIN;
    q.to_ms = INT64_MAX;
    q.aggs[0].fn = STRATA_AGG_COUNT;
    q.aggs[0].col = -1;
    q.source = QUERY_SOURCE_RAW; /* the rows stored: tiers may outlive them (retention.1m, .1h) */
    snprintf(q.aggs[0].name, sizeof q.aggs[0].name, "count");
    q.naggs = 1;
    query_result *r = NULL;
    int rc = query_run(t, &q, &r, NULL);
    if (rc == 0)
        *out = r->nrows ? query_result_cell(r, 0, 0)->v.u : 0;
    query_result_free(r);
    query_free(&q);
    return rc;
}

/* A table as GET /tables and /tables/{name} show it (a new reference; NULL when memory runs
 * out): its figures, its trouble, and with_schema its schema. */
static json_t *table_json(strata_table *t, bool with_schema)
{
    table_stats st;
    table_get_stats(t, &st);
    uint64_t physical = st.segment_rows + st.memtable_rows, rows = physical;
    bool dedup = table_schema(t)->ndedup > 0;
    if (dedup && api_table_logical_rows(t, &rows) != 0)
        return NULL;
    json_t *j = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "name", table_schema(t)->name,
                          "rows", (json_int_t)rows, "segments",
                          (json_int_t)st.segments, "bytes", (json_int_t)st.segment_bytes,
                          "partitions", (json_int_t)st.partitions, "memtable_rows",
                          (json_int_t)st.memtable_rows, "memtable_bytes",
                          (json_int_t)st.memtable_bytes, "flushes", (json_int_t)st.flushes);
    if (j && dedup) {
        json_object_set_new(j, "physical_rows", json_integer((json_int_t)physical));
        json_object_set_new(
            j, "dedup",
            json_pack("{s:I, s:I, s:I, s:f, s:I, s:I}", "superseded_rows", (json_int_t)st.superseded_rows, "keys",
                      (json_int_t)st.dedup_keys, "index_bytes", (json_int_t)st.dedup_index_bytes,
                      "index_bytes_per_key",
                      st.dedup_keys ? (double)st.dedup_index_bytes / (double)st.dedup_keys : 0.0,
                      "scratch_bytes", (json_int_t)st.dedup_scratch_bytes, "cold_partitions",
                      (json_int_t)st.dedup_cold_partitions));
    }
    if (j && table_schema(t)->nrollups > 0)
        json_object_set_new(j, "rollups", api_rollups_json(t));
    if (j && st.max_time != INT64_MIN) {
        json_object_set_new(j, "max_time", json_integer(st.max_time));
        json_object_set_new(j, "watermark",
                            json_integer(table_latest_time(t, clock_wall_ms()) - table_schema(t)->lateness_ms));
    }
    char why[512];
    if (j && table_failure(t, why, sizeof why))
        json_object_set_new(j, "failed", json_string(why));
    table_flush_record fr;
    if (j && table_flush_trouble(t, &fr))
        json_object_set_new(j, "flush_error", json_pack("{s:s, s:I, s:I}", "message", fr.message,
                                                        "failures", (json_int_t)fr.failing,
                                                        "for_s", (json_int_t)(fr.failing_for_ms / 1000)));
    uint64_t damaged = table_damage(t, why, sizeof why);
    if (j && damaged)
        json_object_set_new(j, "damage", json_pack("{s:I, s:s}", "found", (json_int_t)damaged, "latest", why));
    if (j && with_schema) {
        char *text = schema_json_dump(table_schema(t));
        json_t *sch = text ? json_loads(text, 0, NULL) : NULL;
        free(text);
        if (sch)
            json_object_set_new(j, "schema", sch);
    }
    return j;
}

/* Everything that makes the service degraded, one sentence each: tables that cannot be
 * opened, tables refusing writes after an I/O error, damaged segments met by queries,
 * Kafka trouble (lost data, offsets reset, consumers that cannot run). */
json_t *api_tables_problems(strata_server *s)
{
    json_t *arr = json_array();
    char name[STRATA_NAME_MAX + 1], why[1024], line[1600];
    for (size_t i = 0; catalog_broken_at(s->cat, i, name, sizeof name, why, sizeof why); i++) {
        snprintf(line, sizeof line, "table %s cannot be opened: %s", name, why);
        json_array_append_new(arr, json_string(line));
    }
    strata_table *t;
    for (size_t i = 0; (t = catalog_at(s->cat, i)) != NULL; i++) {
        if (table_failure(t, why, sizeof why)) {
            snprintf(line, sizeof line, "table %s refuses writes: %s", table_schema(t)->name, why);
            json_array_append_new(arr, json_string(line));
        }
        if (table_storage_missing(t, why, sizeof why)) {
            snprintf(line, sizeof line, "table %s: its files are gone (%s; moved or deleted while "
                     "serving): new rows cannot be written", table_schema(t)->name, why);
            json_array_append_new(arr, json_string(line));
        }
        table_flush_record fr;
        if (table_flush_trouble(t, &fr)) {
            snprintf(line, sizeof line, "table %s: flushes fail (%" PRIu64 " in a row for %" PRId64
                     " s; rows wait in memory): %s", table_schema(t)->name, fr.failing,
                     fr.failing_for_ms / 1000, fr.message);
            json_array_append_new(arr, json_string(line));
        }
        uint64_t n = table_damage(t, why, sizeof why);
        if (n) {
            snprintf(line, sizeof line, "table %s: %" PRIu64 " read(s) met a damaged segment (latest: %s)",
                     table_schema(t)->name, n, why);
            json_array_append_new(arr, json_string(line));
        }
        catalog_put(s->cat, t);
    }
    if (s->opts.kafka)
        kafka_ingest_problems(s->opts.kafka, arr);
    return arr;
}

/* GET /health. With the token: the tables, uptime and the reasons; without (server.c lets
 * probes through) the status alone, for liveness probes. */
enum MHD_Result api_tables_health(strata_server *s, struct MHD_Connection *c, request *rq,
                                  const char *method)
{
    (void)method;
    bool full = rq->auth_ok;
    json_t *problems = api_tables_problems(s);
    bool degraded = json_array_size(problems) > 0;
    if (!full) {
        json_decref(problems);
        return reply_json(s, c, 200, json_pack("{s:s}", "status", degraded ? "degraded" : "ok"));
    }
    json_t *j = json_pack("{s:s, s:I, s:f}", "status", degraded ? "degraded" : "ok", "tables",
                          (json_int_t)catalog_count(s->cat), "uptime_s",
                          (clock_mono_ms_frac() - s->started) / 1000);
    if (degraded) {
        bytebuf b = {0};
        for (size_t i = 0; i < json_array_size(problems); i++) {
            if (i)
                buf_put(&b, "; ", 2);
            const char *p = json_string_value(json_array_get(problems, i));
            buf_put(&b, p, strlen(p));
        }
        buf_put(&b, "", 1);
        json_object_set_new(j, "reason", json_string(b.oom ? "out of memory" : (const char *)b.data));
        json_object_set_new(j, "problems", problems);
        buf_free(&b);
    } else {
        json_decref(problems);
    }
    return reply_json(s, c, 200, j);
}

/* GET /tables: every table, the broken ones with their error. */
enum MHD_Result api_tables_list(strata_server *s, struct MHD_Connection *c, request *rq,
                                const char *method)
{
    (void)rq;
    (void)method;
    json_t *arr = json_array();
    strata_table *t;
    for (size_t i = 0; (t = catalog_at(s->cat, i)) != NULL; i++) {
        json_array_append_new(arr, table_json(t, false));
        catalog_put(s->cat, t);
    }
    char name[STRATA_NAME_MAX + 1], why[1024];
    for (size_t i = 0; catalog_broken_at(s->cat, i, name, sizeof name, why, sizeof why); i++)
        json_array_append_new(arr, json_pack("{s:s, s:s}", "name", name, "error", why));
    return reply_json(s, c, 200, json_pack("{s:o}", "tables", arr));
}

static bool table_exists(strata_server *s, const char *name)
{
    strata_table *t = catalog_get(s->cat, name);
    catalog_put(s->cat, t);
    return t != NULL;
}

enum MHD_Result api_tables_send_missing(strata_server *s, struct MHD_Connection *c,
                                        const char *name, const char *prefix)
{
    char why[1024];
    if (catalog_broken_get(s->cat, name, why, sizeof why))
        return reply_error(s, c, 503, "%stable '%s' cannot be opened: %s (check its files with strata "
                          "inspect, repair them and restart, or DELETE it)", prefix, name, why);
    return reply_error(s, c, 404, "%sno table '%s'", prefix, name);
}

/* GET, PUT (create from a schema) and DELETE /tables/{name}. */
enum MHD_Result api_tables_one(strata_server *s, struct MHD_Connection *c, request *rq,
                               const char *method)
{
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
        strata_table *t = catalog_get(s->cat, rq->table);
        if (!t)
            return api_tables_send_missing(s, c, rq->table, "");
        json_t *j = table_json(t, true);
        catalog_put(s->cat, t);
        if (s->opts.kafka)
            kafka_ingest_table_json(s->opts.kafka, rq->table, j);
        return reply_json(s, c, 200, j);
    }
    strata_err err = {0};
    if (strcmp(method, "DELETE") == 0) {
        /* The consumer stops first (it must not land rows into a table going away); if
         * the drop then fails, the table is as it was and consumes again. */
        bool consumed = s->opts.kafka && kafka_ingest_detach(s->opts.kafka, rq->table, true);
        int rc = catalog_drop(s->cat, rq->table, &err);
        if (rc && consumed && table_exists(s, rq->table)) {
            strata_err aerr = {0};
            if (kafka_ingest_attach(s->opts.kafka, rq->table, &aerr) != 0)
                strata_err_prefix(&err, "and its Kafka consumer could not restart (%s)", aerr.msg);
        }
        if (rc && !table_exists(s, rq->table))
            return reply_error(s, c, rc == STRATA_ENOTFOUND ? 404 : 500, "%s", err.msg); /* dropped */
        if (rc)
            return reply_error(s, c, reply_status_of(rc), "%s", err.msg);
        return reply_json(s, c, 200, json_pack("{s:s}", "dropped", rq->table));
    }
    /* PUT: create */
    strata_schema *sc = malloc(sizeof *sc);
    if (!sc)
        return reply_error(s, c, 503, "out of memory");
    int rc = schema_json_parse_named((const char *)rq->body.data, rq->body.len, rq->table, sc, &err);
    if (rc == 0 && s->opts.kafka)
        rc = kafka_ingest_validate(s->opts.kafka, sc, &err); /* a table that cannot consume is refused */
    if (rc) {
        free(sc);
        return reply_error(s, c, reply_status_of(rc), "%s", err.msg);
    }
    strata_table *t;
    bool created;
    rc = catalog_create(s->cat, sc, &t, &created, &err);
    free(sc);
    if (rc)
        return reply_error(s, c, reply_status_of(rc), "%s", err.msg);
    json_t *j = table_json(t, true);
    catalog_put(s->cat, t);
    if (s->opts.kafka && kafka_ingest_attach(s->opts.kafka, rq->table, &err) != 0)
        json_object_set_new(j, "kafka_error", json_string(err.msg)); /* created; degraded in /health */
    if (s->opts.kafka)
        kafka_ingest_table_json(s->opts.kafka, rq->table, j);
    return reply_json(s, c, created ? 201 : 200, j);
}

/* POST /tables/{name}/flush: every memtable of the table to segments now. */
enum MHD_Result api_tables_flush(strata_server *s, struct MHD_Connection *c, request *rq,
                                 const char *method)
{
    (void)method;
    strata_table *t = catalog_get(s->cat, rq->table);
    if (!t)
        return api_tables_send_missing(s, c, rq->table, "");
    strata_err err = {0};
    double t0 = clock_mono_ms_frac();
    int rc = table_flush(t, true, &err);
    json_t *j = rc == 0 ? table_json(t, false) : NULL;
    catalog_put(s->cat, t);
    if (rc != 0)
        return reply_error(s, c, rc == STRATA_ENOTFOUND ? 404 : 500, "flush failed: %s", err.msg);
    json_object_set_new(j, "flush_ms", json_real(clock_mono_ms_frac() - t0));
    return reply_json(s, c, 200, j);
}

/* POST /tables/{name}/kafka/accept-reset: the operator accepts the offset reset the
 * table's Kafka consumer stopped at (kafka_ingest_accept_reset). */
enum MHD_Result api_tables_accept_reset(strata_server *s, struct MHD_Connection *c, request *rq,
                                        const char *method)
{
    (void)method;
    if (!table_exists(s, rq->table))
        return api_tables_send_missing(s, c, rq->table, "");
    strata_err err = {0};
    json_t *j = json_pack("{s:s}", "table", rq->table);
    int rc = s->opts.kafka ? kafka_ingest_accept_reset(s->opts.kafka, rq->table, j, &err)
                           : strata_err_set(&err, STRATA_ENOTFOUND, "table '%s' has no Kafka consumer", rq->table);
    if (rc) {
        json_decref(j);
        return reply_error(s, c, rc == STRATA_EEXIST ? 409 : reply_status_of(rc), "%s", err.msg);
    }
    return reply_json(s, c, 200, j);
}

/* POST /tables/{name}/optimize, body optional: {"partition": "<name as the table's
 * partition_by names it>"}. Flushes, merges every segment of the partition (or of every
 * partition) into as few as the segment size bound allows, and answers what it did. */
enum MHD_Result api_tables_optimize(strata_server *s, struct MHD_Connection *c, request *rq,
                                    const char *method)
{
    (void)method;
    strata_table *t = catalog_get(s->cat, rq->table);
    if (!t)
        return api_tables_send_missing(s, c, rq->table, "");
    const strata_schema *sc = table_schema(t);
    strata_err err = {0};
    int64_t key = 0;
    bool one = false;
    size_t len = rq->body.len;
    while (len && strchr(" \t\r\n", ((const char *)rq->body.data)[len - 1]))
        len--;
    if (len) {
        json_error_t jerr;
        json_t *body = json_loadb((const char *)rq->body.data, rq->body.len, JSON_REJECT_DUPLICATES, &jerr);
        static const char *const keys[] = {"partition"};
        int rc = 0;
        if (!body)
            rc = strata_err_set(&err, STRATA_EINVAL, "malformed JSON at line %d column %d: %s", jerr.line,
                                jerr.column, jerr.text);
        else if (!json_is_object(body))
            rc = jutil_type_error(&err, "body", "an object", body);
        else
            rc = jutil_check_keys(&err, body, "", keys, 1);
        json_t *part = rc == 0 ? jutil_member(body, "partition") : NULL;
        if (rc == 0 && part && !json_is_string(part))
            rc = jutil_type_error(&err, "partition", "a string", part);
        if (rc == 0 && part) {
            const char *name = json_string_value(part);
            char back[32] = "";
            one = schema_partition_parse(sc->partition_by, name, &key) == 0;
            if (one)
                schema_partition_name(sc->partition_by, key, back, sizeof back);
            if (!one || strcmp(back, name) != 0) {
                char example[32];
                schema_partition_name(sc->partition_by, INT64_C(1706659200000), example, sizeof example);
                rc = strata_err_set(&err, STRATA_EINVAL, "partition: '%.100s' is not a partition name of table "
                                    "'%s' (partitioned by %s, names like '%s')", name, sc->name,
                                    sc->partition_by == STRATA_PART_HOUR ? "hour"
                                    : sc->partition_by == STRATA_PART_MONTH ? "month" : "day", example);
            }
        }
        json_decref(body);
        if (rc) {
            catalog_put(s->cat, t);
            return reply_error(s, c, 400, "%s", err.msg);
        }
    }
    merge_policy pol;
    merge_policy_default(&pol);
    optimize_report rep;
    int rc = merge_table_optimize(t, one ? &key : NULL, &pol, &rep, &err);
    /* The rollup tiers too (a whole-table optimize): saved, each tier partition's
     * segments merged into one (engine/rollup_store.h). */
    json_t *tiers = json_array();
    int nt = rollup_set_ntiers(table_rollups(t));
    rollup_store_tier_stats before[STRATA_MAX_ROLLUPS];
    for (int i = 0; i < nt && !one && !rc; i++)
        table_rollup_store_stats(t, i, &before[i]);
    if (!one && !rc && nt > 0 && (rc = table_rollups_save(t, true, &err)) != 0)
        strata_err_prefix(&err, "rollup tiers");
    for (int i = 0; i < nt && !one && !rc; i++) {
        rollup_store_tier_stats after;
        table_rollup_store_stats(t, i, &after);
        char iv[24];
        const strata_rollup *ru = &table_schema(t)->rollups[i];
        units_format_duration_ms(ru->interval_ms, iv, sizeof iv);
        json_t *dims = json_array();
        for (int d = 0; d < ru->ndims; d++)
            json_array_append_new(dims, json_string(table_schema(t)->cols[ru->dims[d]].name));
        json_array_append_new(tiers, json_pack("{s:s, s:o, s:I, s:I, s:I}", "interval", iv, "dimensions", dims,
                                               "segments_before", (json_int_t)before[i].segments, "segments_after",
                                               (json_int_t)after.segments, "bytes", (json_int_t)after.bytes));
    }
    catalog_put(s->cat, t);
    if (rc) {
        json_decref(tiers);
        merge_optimize_report_free(&rep);
        return reply_error(s, c, reply_status_of(rc), "optimize failed: %s", err.msg);
    }
    json_t *parts = json_array();
    for (uint32_t i = 0; i < rep.nparts; i++) {
        const optimize_part *op = &rep.parts[i];
        json_array_append_new(parts, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "partition", op->partition,
                                               "segments_before", (json_int_t)op->segments_before,
                                               "segments_after", (json_int_t)op->segments_after,
                                               "merges", (json_int_t)op->merges, "rows", (json_int_t)op->rows,
                                               "rows_dropped", (json_int_t)op->rows_dropped,
                                               "bytes_written", (json_int_t)op->bytes_written));
    }
    json_t *j = json_pack("{s:s, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "table", rq->table, "partitions", parts,
                          "rollups", tiers,
                          "segments_before", (json_int_t)rep.segments_before, "segments_after",
                          (json_int_t)rep.segments_after, "merges", (json_int_t)rep.merges, "rows",
                          (json_int_t)rep.rows, "rows_dropped", (json_int_t)rep.rows_dropped, "bytes_written",
                          (json_int_t)rep.bytes_written, "seconds", rep.seconds);
    merge_optimize_report_free(&rep);
    return reply_json(s, c, 200, j);
}
