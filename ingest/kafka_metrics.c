/*
 * kafka_metrics.c — Prometheus text of the Kafka consumers from their kafka_stats
 * snapshots. Contract in kafka_metrics.h. The text (names, help, label order, number
 * forms) is what dashboards and alerts read: change it only with them.
 */
#include "ingest/kafka_metrics.h"

#include <inttypes.h>
#include <stdio.h>

void kafka_metrics_render(const kafka_stats *s, size_t n, bytebuf *out)
{
    static const struct {
        const char *name, *type, *help;
    } m[] = {
        {"strata_kafka_messages_total", "counter", "Kafka messages consumed."},
        {"strata_kafka_rows_total", "counter", "Rows landed from Kafka."},
        {"strata_kafka_dead_letters_total", "counter", "Events that failed to decode, by sink."},
        {"strata_kafka_lost_messages_total", "counter",
         "Messages the broker deleted (retention) before strata read them."},
        {"strata_kafka_loss_events_total", "counter", "Times a partition's next offset was gone."},
        {"strata_kafka_replayed_rows_skipped_total", "counter",
         "Rows read again after a restart that the table already held (dropped)."},
        {"strata_kafka_lag_messages", "gauge", "Messages in the broker not yet landed (-1: not known yet)."},
        {"strata_kafka_backpressure_pauses_total", "counter",
         "Times partitions were paused to flush over the memory budget."},
        {"strata_kafka_assigned_partitions", "gauge", "Partitions this node consumes."},
        {"strata_kafka_errors_total", "counter", "Consumer errors (logged)."},
        {"strata_kafka_stopped_partitions", "gauge",
         "Partitions stopped because their offsets went backwards (kafka.offset_reset stop)."},
        {"strata_kafka_offset_resets_total", "counter",
         "Partitions whose offsets went backwards and were read again as new data."},
        {"strata_kafka_events_with_unknown_fields_total", "counter",
         "Events landed from Kafka with fields naming no column (those fields were dropped)."},
    };
    char line[512];
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        int len = snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n", m[i].name, m[i].help,
                           m[i].name, m[i].type);
        buf_put(out, line, (size_t)len);
        for (size_t c = 0; c < n; c++) {
            const kafka_stats *st = &s[c];
            /* By metric, in the order of m (dead letters, i == 2, have two samples). */
            const int64_t v[13] = {
                (int64_t)st->messages, (int64_t)st->rows,     0,
                (int64_t)st->lost,     (int64_t)st->lost_events, (int64_t)st->replayed,
                st->lag,               (int64_t)st->pauses,   st->assigned,
                (int64_t)st->errors,   st->stopped,           (int64_t)st->resets,
                (int64_t)st->unknown_events,
            };
            if (i == 2) {
                len = snprintf(line, sizeof line,
                               "%s{table=\"%s\",sink=\"kafka\"} %" PRIu64 "\n%s{table=\"%s\",sink=\"file\"} %" PRIu64 "\n",
                               m[i].name, st->table, st->dead_kafka, m[i].name, st->table, st->dead_file);
            } else {
                len = snprintf(line, sizeof line, "%s{table=\"%s\",topic=\"%s\"} %" PRId64 "\n", m[i].name,
                               st->table, st->topic, v[i]);
            }
            buf_put(out, line, (size_t)len);
        }
    }
}
