/*
 * api_metrics.c — GET /metrics: the Prometheus text format (version 0.0.4), rendered on
 * every scrape from the server's counters (ingest rows and requests, queries and their
 * latency histogram, answers by status class), per-table figures read from the tables
 * (table_get_stats, flush trouble, watermarks, merges and retention), the health
 * problem count, and the Kafka
 * consumers' own metrics (kafka_ingest_metrics).
 *
 * Lines are written with snprintf into a bytebuf; a failed allocation is checked once at
 * the end (503). A table created or dropped during a scrape may be in some families and
 * not others: each family walks the catalog on its own.
 */
#include "http/api.h"

#include <inttypes.h>
#include <stdio.h>

#include "engine/clock.h"
#include "engine/table.h"
#include "ingest/kafka_ingest.h"

void api_metrics_render(strata_server *s, bytebuf *out)
{
    bytebuf b = *out;
    char line[512];
#define EMIT(...)                                                                                  \
    do {                                                                                           \
        int n_ = snprintf(line, sizeof line, __VA_ARGS__);                                         \
        buf_put(&b, line, n_ > 0 ? (size_t)n_ : 0);                                                \
    } while (0)
    EMIT("# HELP strata_ingested_rows_total Rows acknowledged by POST /ingest.\n"
         "# TYPE strata_ingested_rows_total counter\nstrata_ingested_rows_total %" PRIu64 "\n",
         atomic_load(&s->rows_ingested));
    EMIT("# HELP strata_rejected_rows_total Events refused by POST /ingest (bad JSON, types, time).\n"
         "# TYPE strata_rejected_rows_total counter\nstrata_rejected_rows_total %" PRIu64 "\n",
         atomic_load(&s->rows_rejected));
    EMIT("# TYPE strata_ingest_requests_total counter\nstrata_ingest_requests_total %" PRIu64 "\n",
         atomic_load(&s->ingest_requests));
    static const char *const per_table[][2] = {
        {"strata_ingest_events_with_unknown_fields_total",
         "Events of POST /ingest that landed with fields naming no column (those fields were dropped)."},
        {"strata_table_ingested_rows_total", "Rows of the table acknowledged by POST /ingest."},
        {"strata_table_rejected_rows_total", "Events for the table refused by POST /ingest."}};
    table_counts *const per_table_counts[] = {&s->unknown_field_events, &s->ingested_by_table,
                                              &s->rejected_by_table};
    for (int m = 0; m < 3; m++) {
        EMIT("# HELP %s %s\n# TYPE %s counter\n", per_table[m][0], per_table[m][1], per_table[m][0]);
        strata_table *t;
        for (size_t i = 0; (t = catalog_at(s->cat, i)) != NULL; i++) {
            const char *name = table_schema(t)->name;
            EMIT("%s{table=\"%s\"} %" PRIu64 "\n", per_table[m][0], name,
                 table_counts_get(per_table_counts[m], name));
            catalog_put(s->cat, t);
        }
    }
    EMIT("# TYPE strata_queries_total counter\nstrata_queries_total %" PRIu64 "\n",
         atomic_load(&s->queries));
    EMIT("# TYPE strata_query_errors_total counter\nstrata_query_errors_total %" PRIu64 "\n",
         atomic_load(&s->query_errors));
    EMIT("# HELP strata_query_duration_seconds Query latency.\n"
         "# TYPE strata_query_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i <= API_QUERY_LATENCY_BUCKETS; i++) {
        cum += atomic_load(&s->query_latency[i]);
        if (i < API_QUERY_LATENCY_BUCKETS)
            EMIT("strata_query_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                 api_query_latency_bounds_ms[i] / 1000, cum);
        else
            EMIT("strata_query_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
    }
    EMIT("strata_query_duration_seconds_sum %.6f\nstrata_query_duration_seconds_count %" PRIu64 "\n",
         (double)atomic_load(&s->query_latency_sum_us) / 1e6, cum);
    EMIT("# HELP strata_live_queries Live queries (GET /query/live) streaming now.\n"
         "# TYPE strata_live_queries gauge\nstrata_live_queries %d\n", s->live ? live_streams_count(s->live) : 0);
    EMIT("# TYPE strata_http_responses_total counter\n");
    for (int k = 1; k < 6; k++)
        EMIT("strata_http_responses_total{code=\"%dxx\"} %" PRIu64 "\n", k, atomic_load(&s->status_count[k]));
    static const char *const names[] = {"strata_table_rows", "strata_table_segments",
                                        "strata_table_segment_bytes", "strata_table_partitions",
                                        "strata_memtable_rows", "strata_memtable_bytes",
                                        "strata_flushes_total", "strata_flush_seconds_total",
                                        "strata_flush_failures_total"};
    enum { NTABLE_METRICS = sizeof names / sizeof names[0] };
    for (int m = 0; m < NTABLE_METRICS; m++) {
        EMIT("# TYPE %s %s\n", names[m], m >= 6 ? "counter" : "gauge");
        strata_table *t;
        for (size_t i = 0; (t = catalog_at(s->cat, i)) != NULL; i++) {
            table_stats st;
            table_get_stats(t, &st);
            table_flush_record fr; /* failures: flushes that failed, their rows kept and retried */
            table_flush_trouble(t, &fr);
            uint64_t rows = st.segment_rows + st.memtable_rows; /* dedup: what queries see */
            if (m == 0 && table_schema(t)->ndedup > 0 && api_table_logical_rows(t, &rows) != 0)
                rows = st.segment_rows + st.memtable_rows - st.superseded_rows;
            double v[NTABLE_METRICS] = {
                (double)rows, (double)st.segments,
                (double)st.segment_bytes, (double)st.partitions, (double)st.memtable_rows,
                (double)st.memtable_bytes, (double)st.flushes, (double)st.flush_ns / 1e9,
                (double)fr.failures};
            if (m == 7) /* seconds: nanosecond digits, not double noise */
                EMIT("%s{table=\"%s\"} %.9f\n", names[m], table_schema(t)->name, v[m]);
            else
                EMIT("%s{table=\"%s\"} %.17g\n", names[m], table_schema(t)->name, v[m]);
            catalog_put(s->cat, t);
        }
    }
    static const char *const dd_names[] = {"strata_table_physical_rows", "strata_dedup_superseded_rows",
                                           "strata_dedup_keys", "strata_dedup_index_bytes",
                                           "strata_dedup_cold_partitions"};
    static const char *const dd_help[] = {
        "Rows stored, older versions of their keys included (dedup tables; strata_table_rows is what queries see).",
        "Stored rows newer versions of their key replaced: queries skip them, merges remove them.",
        "Keys in the in-memory indexes of the partitions within dedup_window.",
        "Memory those indexes keep.",
        "Partitions older than dedup_window: no index in memory, keys looked up on disk."};
    /* One look at each dedup table (its stats take the dedup lock), then the lines by name. */
    size_t ndd = 0, cap = 0;
    struct dd_row {
        char name[STRATA_NAME_MAX];
        uint64_t v[5];
    } *dd = NULL;
    for (size_t i = 0;; i++) {
        strata_table *t = catalog_at(s->cat, i);
        if (!t)
            break;
        if (table_schema(t)->ndedup > 0 && ndd == cap) {
            struct dd_row *more = realloc(dd, sizeof *dd * (cap * 2 + 4));
            if (more) {
                dd = more;
                cap = cap * 2 + 4;
            }
        }
        if (table_schema(t)->ndedup > 0 && ndd < cap) {
            table_stats st;
            table_get_stats(t, &st);
            snprintf(dd[ndd].name, sizeof dd[ndd].name, "%s", table_schema(t)->name);
            uint64_t v[5] = {st.segment_rows + st.memtable_rows, st.superseded_rows, st.dedup_keys,
                             st.dedup_index_bytes, st.dedup_cold_partitions};
            memcpy(dd[ndd++].v, v, sizeof v);
        }
        catalog_put(s->cat, t);
    }
    for (int m = 0; m < 5; m++) {
        EMIT("# HELP %s %s\n# TYPE %s gauge\n", dd_names[m], dd_help[m], dd_names[m]);
        for (size_t i = 0; i < ndd; i++)
            EMIT("%s{table=\"%s\"} %" PRIu64 "\n", dd_names[m], dd[i].name, dd[i].v[m]);
    }
    free(dd);
    api_rollups_metrics(s, &b);
    static const char *const wal_names[] = {"strata_wal_records_total", "strata_wal_bytes_total",
                                            "strata_wal_syncs_total", "strata_wal_sync_seconds_total",
                                            "strata_wal_files", "strata_wal_disk_bytes"};
    static const char *const wal_help[] = {
        "Write-ahead log records written since start (one per ingest request).",
        "Bytes of write-ahead log records written since start.",
        "fdatasyncs of the write-ahead log (group commit: records per sync is its batching).",
        "Time spent in write-ahead log fdatasyncs.", "Write-ahead log files on disk.",
        "Disk the write-ahead log files take (allocated)."};
    for (int m = 0; m < 6; m++) {
        EMIT("# HELP %s %s\n# TYPE %s %s\n", wal_names[m], wal_help[m], wal_names[m], m < 4 ? "counter" : "gauge");
        strata_table *t;
        for (size_t i = 0; (t = catalog_at(s->cat, i)) != NULL; i++) {
            wal_stats ws;
            table_log_stats(t, &ws);
            uint64_t v[6] = {ws.appends, ws.bytes, ws.syncs, 0, ws.files, ws.disk_bytes};
            if (m == 3)
                EMIT("%s{table=\"%s\"} %.9f\n", wal_names[m], table_schema(t)->name, (double)ws.sync_ns / 1e9);
            else
                EMIT("%s{table=\"%s\"} %" PRIu64 "\n", wal_names[m], table_schema(t)->name, v[m]);
            catalog_put(s->cat, t);
        }
    }
    {
        /* Merges (engine/merge.h) and retention (engine/retention.h), per table. */
        static const char *const merge_names[][3] = {
            {"strata_merges_total", "counter", "Merges committed since start."},
            {"strata_merge_rows_total", "counter", "Rows read by merges."},
            {"strata_merge_written_bytes_total", "counter", "Bytes of the segments merges wrote."},
            {"strata_merge_seconds_total", "counter", "Time spent in merges."},
            {"strata_table_partition_segments_max", "gauge", "Segments of the table's partition that has the most."},
            {"strata_retention_dropped_partitions_total", "counter", "Partitions dropped by retention since start."},
            {"strata_retention_dropped_rows_total", "counter", "Rows of the partitions retention dropped."}};
        enum { NMERGE = sizeof merge_names / sizeof merge_names[0] };
        for (int m = 0; m < NMERGE; m++) {
            EMIT("# HELP %s %s\n# TYPE %s %s\n", merge_names[m][0], merge_names[m][2], merge_names[m][0],
                 merge_names[m][1]);
            strata_table *t;
            for (size_t i = 0; (t = catalog_at(s->cat, i)) != NULL; i++) {
                table_stats st;
                table_get_stats(t, &st);
                uint64_t v[NMERGE] = {st.merges, st.merge_rows, st.merge_bytes_written, 0,
                                      st.max_partition_segments, st.expired_partitions, st.expired_rows};
                if (m == 3)
                    EMIT("%s{table=\"%s\"} %.9f\n", merge_names[m][0], table_schema(t)->name,
                         (double)st.merge_ns / 1e9);
                else
                    EMIT("%s{table=\"%s\"} %" PRIu64 "\n", merge_names[m][0], table_schema(t)->name, v[m]);
                catalog_put(s->cat, t);
            }
        }
    }
    EMIT("# HELP strata_table_watermark_ms Latest event time minus the table's allowed lateness.\n"
         "# TYPE strata_table_watermark_ms gauge\n");
    {
        strata_table *t;
        for (size_t i = 0; (t = catalog_at(s->cat, i)) != NULL; i++) {
            table_stats st;
            table_get_stats(t, &st);
            int64_t latest = table_latest_time(t, clock_wall_ms()); /* never past now + skew */
            if (latest != INT64_MIN)
                EMIT("strata_table_watermark_ms{table=\"%s\"} %" PRId64 "\n", table_schema(t)->name,
                     latest - table_schema(t)->lateness_ms);
            catalog_put(s->cat, t);
        }
    }
    {
        EMIT("# HELP strata_table_unavailable A table that cannot be opened (1); /health says why.\n"
             "# TYPE strata_table_unavailable gauge\n");
        char name[STRATA_NAME_MAX + 1];
        for (size_t i = 0; catalog_broken_at(s->cat, i, name, sizeof name, NULL, 0); i++)
            EMIT("strata_table_unavailable{table=\"%s\"} 1\n", name);
        json_t *problems = api_tables_problems(s);
        EMIT("# HELP strata_health_problems Problems /health lists (0: ok, else degraded).\n"
             "# TYPE strata_health_problems gauge\nstrata_health_problems %zu\n",
             json_array_size(problems));
        json_decref(problems);
    }
    if (s->opts.kafka)
        kafka_ingest_metrics(s->opts.kafka, &b);
#undef EMIT
    *out = b;
}

enum MHD_Result api_metrics_get(strata_server *s, struct MHD_Connection *c, request *rq,
                                const char *method)
{
    (void)rq;
    (void)method;
    bytebuf b = {0};
    api_metrics_render(s, &b);
    if (b.oom) {
        buf_free(&b);
        return reply_error(s, c, 503, "out of memory");
    }
    return reply_text(s, c, 200, (char *)b.data, b.len, "text/plain; version=0.0.4");
}
