/*
 * test_ndjson_answer.c — the answer of an NDJSON ingest request (ingest/ndjson_answer.c):
 * blank lines counted, every rejected line counted while the errors list stops at 100 and
 * says it was cut, unknown fields of landed lines only (lines, first line, distinct names
 * sorted and capped with a sign, long names cut between characters, "did you mean"), a
 * message that is not UTF-8 kept readable; and the per-table counters behind /metrics
 * (ingest/table_counts.c), from two threads.
 */
#include <pthread.h>

#include "ingest/event_json.h"
#include "ingest/ndjson_answer.h"
#include "ingest/table_counts.h"
#include "test.h"

static strata_schema sc;

static void setup(void)
{
    schema_init(&sc);
    snprintf(sc.name, sizeof sc.name, "orders");
    const char *names[] = {"ts", "amount", "country"};
    strata_type types[] = {STRATA_TIMESTAMP, STRATA_FLOAT64, STRATA_STRING};
    for (int c = 0; c < 3; c++) {
        snprintf(sc.cols[c].name, sizeof sc.cols[c].name, "%s", names[c]);
        sc.cols[c].type = types[c];
    }
    sc.ncols = 3;
    sc.time_col = 0;
}

/* The answer's JSON as compact text (caller frees). */
static char *answer_text(const ndjson_answer *a, uint64_t ingested)
{
    json_t *j = ndjson_answer_json(a, ingested, &sc);
    ASSERT(j != NULL);
    char *t = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    ASSERT(t != NULL);
    return t;
}

/* Feeds lines as the HTTP ingest does: blank ones counted, the rest decoded. Returns the
 * rows that landed. */
static uint64_t feed(ndjson_answer *a, row_batch *b, const char *const *lines, size_t n)
{
    event_decoder *d = event_decoder_create(&sc, NULL);
    ASSERT(d != NULL);
    for (size_t i = 0; i < n; i++) {
        const char *p = lines[i];
        if (!p[strspn(p, " \t\r")]) {
            ndjson_answer_blank(a);
            continue;
        }
        strata_err err = {0};
        if (event_decoder_decode_reporting(d, p, strlen(p), b, ndjson_answer_sink(a), &err) == 0)
            ndjson_answer_landed(a, i + 1);
        else
            ndjson_answer_reject(a, i + 1, err.msg);
    }
    event_decoder_free(d);
    return b->nrows;
}

TEST(an_answer_counts_blank_lines_and_names_unknown_fields)
{
    setup();
    ndjson_answer a;
    ASSERT_EQ(ndjson_answer_init(&a, NULL), 0);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, &sc, 0), 0);
    static const char *const lines[] = {
        "{\"ts\":1,\"amount\":2}",
        "",
        "{\"ts\":2,\"amout\":5,\"Country\":\"US\"}",
        "  \t",
        "{\"ts\":3,\"amount\":\"x\",\"zzz\":1}",         /* refused: its unknown field is not counted */
        "{\"ts\":4,\"user\":{\"id\":1},\"amout\":1}", /* the jansson path */
        "\r",
    };
    uint64_t n = feed(&a, &b, lines, sizeof lines / sizeof lines[0]);
    ASSERT_EQ(n, 3);
    char *t = answer_text(&a, n);
    ASSERT_STR_EQ(t, "{\"ingested\":3,\"rejected\":1,\"blank\":3,\"errors\":[{\"line\":5,\"error\":"
                     "\"amount: expected a number, got a string\"}],\"errors_truncated\":false,"
                     "\"unknown_fields\":{\"lines\":2,\"first_line\":3,\"names\":[\"Country\","
                     "\"amout\",\"user\"],\"names_truncated\":false,\"did_you_mean\":{\"Country\":"
                     "\"country\",\"amout\":\"amount\"}}}");
    free(t);
    row_batch_free(&b);
    ndjson_answer_free(&a);
    /* nothing to report: the same keys, empty */
    ASSERT_EQ(ndjson_answer_init(&a, NULL), 0);
    t = answer_text(&a, 0);
    ASSERT_STR_EQ(t, "{\"ingested\":0,\"rejected\":0,\"blank\":0,\"errors\":[],\"errors_truncated\":false,"
                     "\"unknown_fields\":{\"lines\":0,\"first_line\":null,\"names\":[],"
                     "\"names_truncated\":false,\"did_you_mean\":{}}}");
    free(t);
    ndjson_answer_free(&a);
}

TEST(errors_list_says_when_it_was_cut)
{
    setup();
    ndjson_answer a;
    ASSERT_EQ(ndjson_answer_init(&a, NULL), 0);
    for (uint64_t line = 1; line <= 5000; line++)
        ndjson_answer_reject(&a, line, "malformed JSON at column 1: '[' or '{' expected near 'x'");
    json_t *j = ndjson_answer_json(&a, 0, &sc);
    ASSERT(j != NULL);
    ASSERT_EQ(json_integer_value(json_object_get(j, "rejected")), 5000);
    ASSERT_EQ(json_array_size(json_object_get(j, "errors")), NDJSON_ANSWER_MAX_ERRORS);
    ASSERT(json_is_true(json_object_get(j, "errors_truncated")));
    json_t *last = json_array_get(json_object_get(j, "errors"), NDJSON_ANSWER_MAX_ERRORS - 1);
    ASSERT_EQ(json_integer_value(json_object_get(last, "line")), 100);
    json_decref(j);
    ndjson_answer_free(&a);
    /* exactly 100: all shown, not cut */
    ASSERT_EQ(ndjson_answer_init(&a, NULL), 0);
    for (uint64_t line = 1; line <= NDJSON_ANSWER_MAX_ERRORS; line++)
        ndjson_answer_reject(&a, line, "x");
    j = ndjson_answer_json(&a, 0, &sc);
    ASSERT(json_is_false(json_object_get(j, "errors_truncated")));
    json_decref(j);
    ndjson_answer_free(&a);
}

TEST(unknown_field_names_are_capped_and_cut)
{
    setup();
    ndjson_answer a;
    ASSERT_EQ(ndjson_answer_init(&a, NULL), 0);
    const event_unknown_sink *s = ndjson_answer_sink(&a);
    char name[32];
    /* 25 distinct names over 50 lines, each line twice the same name */
    for (int line = 1; line <= 50; line++) {
        int k = snprintf(name, sizeof name, "f%02d", (line - 1) % 25);
        s->key(s->ctx, name, (size_t)k);
        s->key(s->ctx, name, (size_t)k);
        ndjson_answer_landed(&a, (uint64_t)line);
    }
    ndjson_answer_landed(&a, 51); /* a line without unknown fields */
    json_t *j = ndjson_answer_json(&a, 51, &sc);
    json_t *u = json_object_get(j, "unknown_fields");
    ASSERT_EQ(json_integer_value(json_object_get(u, "lines")), 50);
    ASSERT_EQ(json_integer_value(json_object_get(u, "first_line")), 1);
    json_t *names = json_object_get(u, "names");
    ASSERT_EQ(json_array_size(names), NDJSON_ANSWER_MAX_NAMES);
    ASSERT_STR_EQ(json_string_value(json_array_get(names, 0)), "f00");
    ASSERT_STR_EQ(json_string_value(json_array_get(names, 19)), "f19");
    ASSERT(json_is_true(json_object_get(u, "names_truncated")));
    json_decref(j);
    ndjson_answer_free(&a);
    /* a long name is cut to 64 bytes between characters, "..." added; still UTF-8 */
    ASSERT_EQ(ndjson_answer_init(&a, NULL), 0);
    s = ndjson_answer_sink(&a);
    char longname[200];
    memset(longname, 'a', 63);
    memcpy(longname + 63, "\xc3\xa9\xc3\xa9", 4); /* é straddles byte 64 */
    s->key(s->ctx, longname, 67);
    ndjson_answer_landed(&a, 1);
    j = ndjson_answer_json(&a, 1, &sc);
    ASSERT(j != NULL);
    u = json_object_get(j, "unknown_fields");
    const char *shown = json_string_value(json_array_get(json_object_get(u, "names"), 0));
    ASSERT(shown != NULL);
    ASSERT_EQ(strlen(shown), 66);
    ASSERT_EQ(memcmp(shown, longname, 63), 0);
    ASSERT_STR_EQ(shown + 63, "...");
    ASSERT(json_is_false(json_object_get(u, "names_truncated")));
    json_decref(j);
    ndjson_answer_free(&a);
}

TEST(a_message_that_is_not_utf8_is_kept)
{
    setup();
    ndjson_answer a;
    ASSERT_EQ(ndjson_answer_init(&a, NULL), 0);
    ndjson_answer_reject(&a, 7, "s: '\xc3' is cut");
    json_t *j = ndjson_answer_json(&a, 0, &sc);
    json_t *e = json_array_get(json_object_get(j, "errors"), 0);
    ASSERT(e != NULL);
    ASSERT_EQ(json_integer_value(json_object_get(e, "line")), 7);
    ASSERT_STR_EQ(json_string_value(json_object_get(e, "error")), "s: '?' is cut");
    ASSERT(json_is_false(json_object_get(j, "errors_truncated")));
    json_decref(j);
    ndjson_answer_free(&a);
}

static void *add_many(void *arg)
{
    table_counts *tc = arg;
    for (int k = 0; k < 100000; k++)
        if (table_counts_add(tc, k % 2 ? "a" : "b", 1, NULL) != 0)
            return (void *)1;
    return NULL;
}

TEST(table_counts_by_name_from_two_threads)
{
    table_counts tc;
    table_counts_init(&tc);
    ASSERT_U64_EQ(table_counts_get(&tc, "a"), 0);
    pthread_t th[2];
    for (int k = 0; k < 2; k++)
        ASSERT_EQ(pthread_create(&th[k], NULL, add_many, &tc), 0);
    for (int k = 0; k < 2; k++) {
        void *rc;
        pthread_join(th[k], &rc);
        ASSERT(rc == NULL);
    }
    ASSERT_U64_EQ(table_counts_get(&tc, "a"), 100000);
    ASSERT_U64_EQ(table_counts_get(&tc, "b"), 100000);
    /* many names: the array grows */
    char name[16];
    for (int k = 0; k < 100; k++) {
        snprintf(name, sizeof name, "t%d", k);
        ASSERT_EQ(table_counts_add(&tc, name, (uint64_t)k, NULL), 0);
    }
    ASSERT_U64_EQ(table_counts_get(&tc, "t99"), 99);
    ASSERT_U64_EQ(table_counts_get(&tc, "a"), 100000);
    ASSERT_U64_EQ(table_counts_get(&tc, "t100"), 0);
    table_counts_destroy(&tc);
}

TEST_LIST(T(an_answer_counts_blank_lines_and_names_unknown_fields), T(errors_list_says_when_it_was_cut),
          T(unknown_field_names_are_capped_and_cut), T(a_message_that_is_not_utf8_is_kept),
          T(table_counts_by_name_from_two_threads))
