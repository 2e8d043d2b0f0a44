/*
 * test_kafka_metrics.c — the Prometheus text of the Kafka consumers (ingest/kafka_metrics.c)
 * from stats snapshots: every family's HELP and TYPE even with no consumer, one sample a
 * table in the order given (two for dead letters, by sink), negative gauges (lag not known
 * yet) as -1, counters beyond 2^63 as the dead-letter samples print them.
 */
#include "ingest/kafka_metrics.h"
#include "test.h"

/* How many lines of t start with prefix. */
static int count_lines(const char *t, const char *prefix)
{
    int n = 0;
    for (const char *p = t; *p; p = strchr(p, '\n') + 1) {
        n += strncmp(p, prefix, strlen(prefix)) == 0;
        if (!strchr(p, '\n'))
            break;
    }
    return n;
}

static char *render(const kafka_stats *s, size_t n)
{
    bytebuf b = {0};
    kafka_metrics_render(s, n, &b);
    ASSERT(!b.oom);
    char *t = buf_take_cstr(&b, NULL);
    ASSERT(t != NULL);
    return t;
}

TEST(no_consumer_still_names_every_family)
{
    char *t = render(NULL, 0);
    ASSERT_EQ(count_lines(t, "# HELP strata_kafka_"), 13);
    ASSERT_EQ(count_lines(t, "# TYPE strata_kafka_"), 13);
    ASSERT_EQ(count_lines(t, "strata_kafka_"), 0);
    ASSERT_CONTAINS(t, "# HELP strata_kafka_lag_messages Messages in the broker not yet landed (-1: not "
                       "known yet).\n# TYPE strata_kafka_lag_messages gauge\n");
    free(t);
}

TEST(one_sample_a_table_in_order)
{
    kafka_stats s[2] = {{.table = "orders", .topic = "orders-in", .messages = 10, .rows = 9, .dead_kafka = 1,
                         .dead_file = UINT64_MAX, .lag = -1, .assigned = 3, .errors = 2},
                        {.table = "clicks", .topic = "clicks-in", .messages = 5, .lag = 7, .stopped = 1,
                         .unknown_events = 4}};
    char *t = render(s, 2);
    ASSERT_EQ(count_lines(t, "strata_kafka_"), 2 * 12 + 4);
    ASSERT_CONTAINS(t, "# TYPE strata_kafka_messages_total counter\n"
                       "strata_kafka_messages_total{table=\"orders\",topic=\"orders-in\"} 10\n"
                       "strata_kafka_messages_total{table=\"clicks\",topic=\"clicks-in\"} 5\n");
    ASSERT_CONTAINS(t, "strata_kafka_dead_letters_total{table=\"orders\",sink=\"kafka\"} 1\n"
                       "strata_kafka_dead_letters_total{table=\"orders\",sink=\"file\"} 18446744073709551615\n"
                       "strata_kafka_dead_letters_total{table=\"clicks\",sink=\"kafka\"} 0\n");
    ASSERT_CONTAINS(t, "strata_kafka_lag_messages{table=\"orders\",topic=\"orders-in\"} -1\n"
                       "strata_kafka_lag_messages{table=\"clicks\",topic=\"clicks-in\"} 7\n");
    ASSERT_CONTAINS(t, "strata_kafka_assigned_partitions{table=\"orders\",topic=\"orders-in\"} 3\n");
    ASSERT_CONTAINS(t, "strata_kafka_errors_total{table=\"orders\",topic=\"orders-in\"} 2\n");
    ASSERT_CONTAINS(t, "strata_kafka_stopped_partitions{table=\"clicks\",topic=\"clicks-in\"} 1\n");
    ASSERT_CONTAINS(t, "strata_kafka_events_with_unknown_fields_total{table=\"clicks\",topic=\"clicks-in\"} 4\n");
    free(t);
}

TEST_LIST(T(no_consumer_still_names_every_family), T(one_sample_a_table_in_order))
