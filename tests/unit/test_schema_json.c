/*
 * test_schema_json.c — the schema JSON codec (ingest/schema_json.c).
 *
 * Valid schemas: every field of the format with its conversion, the defaults of every
 * optional setting, null meaning "not given", names from the PUT path. Round trips:
 * dump -> parse gives back the schema field for field (and byte for byte), for hand-made
 * and for thousands of random valid schemas; dumping is deterministic and idempotent.
 * Invalid schemas: a table of bad inputs, each with the text its message must contain
 * (the field path and the reason), *out left untouched, messages always valid UTF-8.
 * Files: parse_file and save (atomic, leaves no temporary file), and the replayed corpus
 * tests/corpus/schema/ (invalid_*.json must fail, with the text of invalid_*.expect in the
 * message when that file exists; valid_*.json must parse and round-trip).
 *
 * JSON literals are written with ' for " (see J()) to keep them readable.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/error.h"
#include "engine/schema.h"
#include "engine/schema_json.h"
#include "engine/text.h"
#include "test.h"
#include "engine/units.h"

/* ---- helpers ------------------------------------------------------------------------------ */

/* The text with every ' turned into ". Returns a static buffer (one of 4, rotating). */
static const char *J(const char *s)
{
    static char bufs[4][65536];
    static int next;
    char *b = bufs[next++ & 3];
    size_t n = strlen(s);
    if (n >= sizeof bufs[0])
        abort();
    for (size_t i = 0; i <= n; i++)
        b[i] = s[i] == '\'' ? '"' : s[i];
    return b;
}

static strata_schema A, B, C; /* big: keep them off the stack */

/* Parses JSON text (quotes as '), failing the test with the message on error. */
static void parse_ok_named(const char *text, const char *name, strata_schema *out)
{
    const char *t = J(text);
    strata_err err = {0};
    int rc = schema_json_parse_named(t, strlen(t), name, out, &err);
    if (rc != 0)
        TEST_FAIL_("parse failed (%d): %s\n  input: %s", rc, err.msg, t);
}

static void parse_ok(const char *text, strata_schema *out) { parse_ok_named(text, NULL, out); }

/* Asserts that text is refused with code want_rc and a message containing needle; *out
 * must be untouched. */
static void parse_fails_raw(const char *t, size_t len, const char *name, int want_rc,
                            const char *needle)
{
    static strata_schema guard, before;
    memset(&guard, 0xAB, sizeof guard);
    memcpy(&before, &guard, sizeof before);
    strata_err err = {0};
    int rc = schema_json_parse_named(t, len, name, &guard, &err);
    if (rc != want_rc)
        TEST_FAIL_("expected %d naming \"%s\", got %d (%s)\n  input: %.300s", want_rc, needle, rc,
                   rc ? err.msg : "accepted", t);
    ASSERT_EQ(err.code, want_rc);
    if (!strstr(err.msg, needle))
        TEST_FAIL_("message \"%s\" lacks \"%s\"\n  input: %.300s", err.msg, needle, t);
    ASSERT(text_utf8_valid(err.msg, strlen(err.msg)));
    ASSERT(memcmp(&guard, &before, sizeof guard) == 0);
    /* err may be NULL. */
    ASSERT_EQ(schema_json_parse_named(t, len, name, &guard, NULL), want_rc);
}

static void parse_fails(const char *text, const char *needle)
{
    const char *t = J(text);
    parse_fails_raw(t, strlen(t), NULL, STRATA_EINVAL, needle);
}

#define CMP_INT(field)                                                                             \
    do {                                                                                           \
        long long x_ = (long long)(a->field), y_ = (long long)(b->field);                          \
        if (x_ != y_)                                                                              \
            TEST_FAIL_("%s: %s differs: %lld vs %lld", what, #field, x_, y_);                      \
    } while (0)
#define CMP_STR(field)                                                                             \
    do {                                                                                           \
        if (memcmp(a->field, b->field, sizeof a->field) != 0)                                      \
            TEST_FAIL_("%s: %s differs: \"%.300s\" vs \"%.300s\"", what, #field, a->field,         \
                       b->field);                                                                  \
    } while (0)

/* Field-by-field equality (the failure names the field), then byte equality. */
static void assert_same_schema(const strata_schema *a, const strata_schema *b, const char *what)
{
    CMP_STR(name);
    CMP_INT(ncols);
    for (int i = 0; i < a->ncols; i++) {
        CMP_STR(cols[i].name);
        CMP_INT(cols[i].type);
        CMP_INT(cols[i].def_i);
        if (memcmp(&a->cols[i].def_f, &b->cols[i].def_f, sizeof(double)) != 0)
            TEST_FAIL_("%s: cols[%d].def_f differs: %.17g vs %.17g", what, i, a->cols[i].def_f,
                       b->cols[i].def_f);
        CMP_STR(cols[i].def_s);
    }
    CMP_INT(time_col);
    CMP_INT(partition_by);
    CMP_INT(norder);
    for (int i = 0; i < a->norder; i++)
        CMP_INT(order_by[i]);
    CMP_INT(ndedup);
    for (int i = 0; i < a->ndedup; i++)
        CMP_INT(dedup_cols[i]);
    CMP_INT(version_col);
    CMP_INT(deleted_col);
    CMP_INT(nrollups);
    for (int r = 0; r < a->nrollups; r++) {
        CMP_INT(rollups[r].interval_ms);
        CMP_INT(rollups[r].ndims);
        for (int d = 0; d < a->rollups[r].ndims; d++)
            CMP_INT(rollups[r].dims[d]);
        CMP_INT(rollups[r].nmetrics);
        for (int m = 0; m < a->rollups[r].nmetrics; m++) {
            CMP_INT(rollups[r].metrics[m].fn);
            CMP_INT(rollups[r].metrics[m].column);
        }
    }
    CMP_INT(retention_raw_ms);
    CMP_INT(retention_1m_ms);
    CMP_INT(retention_1h_ms);
    CMP_INT(lateness_ms);
    CMP_INT(late_policy);
    CMP_INT(late_bound_ms);
    CMP_INT(unknown_fields);
    CMP_INT(codec);
    CMP_INT(memtable_max_rows);
    CMP_INT(memtable_max_bytes);
    CMP_INT(memtable_max_age_ms);
    CMP_INT(memory_budget_bytes);
    CMP_INT(kafka.enabled);
    CMP_STR(kafka.brokers);
    CMP_STR(kafka.topic);
    CMP_STR(kafka.group);
    CMP_INT(kafka.start_latest);
    CMP_INT(kafka.nprops);
    for (int i = 0; i < a->kafka.nprops; i++) {
        CMP_STR(kafka.props[i].key);
        CMP_STR(kafka.props[i].value);
    }
    if (memcmp(a, b, sizeof *a) != 0)
        TEST_FAIL_("%s: schemas equal field by field but differ in bytes", what);
}

/* dump(s) -> parse -> equal to s; dump again -> the same text. */
static void assert_round_trip(const strata_schema *s, const char *what)
{
    char *text = schema_json_dump(s);
    if (!text)
        TEST_FAIL_("%s: dump returned NULL", what);
    static strata_schema back;
    strata_err err = {0};
    int rc = schema_json_parse(text, strlen(text), &back, &err);
    if (rc != 0) {
        fprintf(stderr, "%s\n", text);
        free(text);
        TEST_FAIL_("%s: dump does not parse (%d): %s", what, rc, err.msg);
    }
    char *again = schema_json_dump(&back);
    bool same_text = again && strcmp(text, again) == 0;
    free(again);
    free(text);
    ASSERT(same_text);
    assert_same_schema(s, &back, what);
}

#define COLS                                                                                       \
    "'columns': [{'name': 'ts', 'type': 'timestamp'}, {'name': 'id', 'type': 'uint64'},"           \
    " {'name': 'country', 'type': 'string'}, {'name': 'amount', 'type': 'float64'},"               \
    " {'name': 'del', 'type': 'bool'}, {'name': 'n', 'type': 'int32'}]"
/* A valid schema missing its closing brace: cases append fields and "}". */
#define HEAD "{'name': 't', " COLS ", 'time_column': 'ts'"

static const char *ORDERS =
    "{'name': 'orders',"
    " 'columns': ["
    "  {'name': 'ts', 'type': 'timestamp'},"
    "  {'name': 'event_id', 'type': 'uint64'},"
    "  {'name': 'country', 'type': 'string', 'default': ''},"
    "  {'name': 'city', 'type': 'string', 'default': 'unknown'},"
    "  {'name': 'amount', 'type': 'float64', 'default': 0},"
    "  {'name': 'user_id', 'type': 'int64', 'default': -1},"
    "  {'name': 'qty', 'type': 'int32', 'default': 1},"
    "  {'name': 'version', 'type': 'uint64'},"
    "  {'name': 'deleted', 'type': 'bool', 'default': false}],"
    " 'time_column': 'ts',"
    " 'partition_by': 'hour',"
    " 'order_by': ['country', 'ts'],"
    " 'dedup_key': ['event_id', 'ts'],"
    " 'version': 'version',"
    " 'deleted': 'deleted',"
    " 'rollups': [{'interval': '1m', 'dimensions': ['country'],"
    "              'metrics': [{'fn': 'count'}, {'fn': 'sum', 'column': 'amount'},"
    "                          {'fn': 'uniq', 'column': 'user_id'},"
    "                          {'fn': 'quantile', 'column': 'amount'}]},"
    "             {'interval': '1h', 'dimensions': ['country', 'city'],"
    "              'metrics': [{'fn': 'min', 'column': 'qty'}, {'fn': 'max', 'column': 'ts'}]}],"
    " 'retention': {'raw': '30d', '1m': '90d', '1h': '730d'},"
    " 'lateness': '5m',"
    " 'late_policy': 'dead-letter',"
    " 'late_bound': '7d',"
    " 'unknown_fields': 'reject',"
    " 'storage': {'compression': 'zstd', 'memtable_rows': 65536, 'memtable_bytes': '32MiB',"
    "             'memtable_age': '500ms', 'memory_budget': 1073741824},"
    " 'kafka': {'brokers': '127.0.0.1:9092', 'topic': 'orders', 'group': 'g1',"
    "           'start': 'latest', 'properties': {'fetch.max.bytes': '52428800',"
    "           'enable.idempotence': true, 'linger.ms': 5, 'ratio': 0.5}}}";

/* ---- valid schemas -------------------------------------------------------------------- */

TEST(minimal_gets_defaults)
{
    parse_ok("{'name': 'm', 'columns': [{'name': 'ts', 'type': 'timestamp'}],"
             " 'time_column': 'ts'}",
             &A);
    ASSERT_STR_EQ(A.name, "m");
    ASSERT_EQ(A.ncols, 1);
    ASSERT_STR_EQ(A.cols[0].name, "ts");
    ASSERT_EQ(A.cols[0].type, STRATA_TIMESTAMP);
    ASSERT_EQ(A.cols[0].def_i, 0);
    ASSERT_EQ(A.time_col, 0);
    ASSERT_EQ(A.partition_by, STRATA_PART_DAY);
    ASSERT_EQ(A.norder, 1);
    ASSERT_EQ(A.order_by[0], 0);
    ASSERT_EQ(A.ndedup, 0);
    ASSERT_EQ(A.version_col, -1);
    ASSERT_EQ(A.deleted_col, -1);
    ASSERT_EQ(A.nrollups, 0);
    ASSERT_EQ(A.retention_raw_ms, 0);
    ASSERT_EQ(A.retention_1m_ms, 0);
    ASSERT_EQ(A.retention_1h_ms, 0);
    ASSERT_EQ(A.lateness_ms, 120000);
    ASSERT_EQ(A.late_policy, STRATA_LATE_UPDATE);
    ASSERT_EQ(A.late_bound_ms, 0);
    ASSERT_EQ(A.unknown_fields, STRATA_UNKNOWN_FIELDS_IGNORE);
    ASSERT_EQ(A.codec, STRATA_CODEC_LZ4);
    ASSERT_U64_EQ(A.memtable_max_rows, 1048576);
    ASSERT_U64_EQ(A.memtable_max_bytes, 64ull << 20);
    ASSERT_EQ(A.memtable_max_age_ms, 1000);
    ASSERT_U64_EQ(A.memory_budget_bytes, 512ull << 20);
    ASSERT(!A.kafka.enabled);
    /* The same as schema_init + the column + the default order, byte for byte. */
    schema_init(&B);
    snprintf(B.name, sizeof B.name, "m");
    B.ncols = 1;
    snprintf(B.cols[0].name, sizeof B.cols[0].name, "ts");
    B.cols[0].type = STRATA_TIMESTAMP;
    B.time_col = 0;
    schema_apply_default_order(&B);
    assert_same_schema(&A, &B, "minimal");
}

TEST(every_field)
{
    parse_ok(ORDERS, &A);
    ASSERT_STR_EQ(A.name, "orders");
    ASSERT_EQ(A.ncols, 9);
    ASSERT_STR_EQ(A.cols[3].name, "city");
    ASSERT_EQ(A.cols[3].type, STRATA_STRING);
    ASSERT_STR_EQ(A.cols[3].def_s, "unknown");
    ASSERT_EQ(A.cols[4].type, STRATA_FLOAT64);
    ASSERT_DBL_EQ(A.cols[4].def_f, 0.0);
    ASSERT_EQ(A.cols[5].def_i, -1);
    ASSERT_EQ(A.cols[6].type, STRATA_INT32);
    ASSERT_EQ(A.cols[6].def_i, 1);
    ASSERT_EQ(A.cols[8].type, STRATA_BOOL);
    ASSERT_EQ(A.time_col, 0);
    ASSERT_EQ(A.partition_by, STRATA_PART_HOUR);
    ASSERT_EQ(A.norder, 2);
    ASSERT_EQ(A.order_by[0], 2);
    ASSERT_EQ(A.order_by[1], 0);
    ASSERT_EQ(A.ndedup, 2);
    ASSERT_EQ(A.dedup_cols[0], 1);
    ASSERT_EQ(A.dedup_cols[1], 0);
    ASSERT_EQ(A.version_col, 7);
    ASSERT_EQ(A.deleted_col, 8);
    ASSERT_EQ(A.nrollups, 2);
    ASSERT_EQ(A.rollups[0].interval_ms, 60000);
    ASSERT_EQ(A.rollups[0].ndims, 1);
    ASSERT_EQ(A.rollups[0].dims[0], 2);
    ASSERT_EQ(A.rollups[0].nmetrics, 4);
    ASSERT_EQ(A.rollups[0].metrics[0].fn, STRATA_AGG_COUNT);
    ASSERT_EQ(A.rollups[0].metrics[0].column, -1);
    ASSERT_EQ(A.rollups[0].metrics[1].fn, STRATA_AGG_SUM);
    ASSERT_EQ(A.rollups[0].metrics[1].column, 4);
    ASSERT_EQ(A.rollups[0].metrics[2].fn, STRATA_AGG_UNIQ);
    ASSERT_EQ(A.rollups[0].metrics[2].column, 5);
    ASSERT_EQ(A.rollups[0].metrics[3].fn, STRATA_AGG_QUANTILE);
    ASSERT_EQ(A.rollups[1].interval_ms, 3600000);
    ASSERT_EQ(A.rollups[1].ndims, 2);
    ASSERT_EQ(A.rollups[1].dims[1], 3);
    ASSERT_EQ(A.rollups[1].metrics[0].fn, STRATA_AGG_MIN);
    ASSERT_EQ(A.rollups[1].metrics[0].column, 6);
    ASSERT_EQ(A.rollups[1].metrics[1].fn, STRATA_AGG_MAX);
    ASSERT_EQ(A.retention_raw_ms, 30LL * 86400000);
    ASSERT_EQ(A.retention_1m_ms, 90LL * 86400000);
    ASSERT_EQ(A.retention_1h_ms, 730LL * 86400000);
    ASSERT_EQ(A.lateness_ms, 300000);
    ASSERT_EQ(A.late_policy, STRATA_LATE_DEAD_LETTER);
    ASSERT_EQ(A.late_bound_ms, 7LL * 86400000);
    ASSERT_EQ(A.unknown_fields, STRATA_UNKNOWN_FIELDS_REJECT);
    ASSERT_EQ(A.codec, STRATA_CODEC_ZSTD);
    ASSERT_U64_EQ(A.memtable_max_rows, 65536);
    ASSERT_U64_EQ(A.memtable_max_bytes, 32ull << 20);
    ASSERT_EQ(A.memtable_max_age_ms, 500);
    ASSERT_U64_EQ(A.memory_budget_bytes, 1ull << 30);
    ASSERT(A.kafka.enabled);
    ASSERT_STR_EQ(A.kafka.brokers, "127.0.0.1:9092");
    ASSERT_STR_EQ(A.kafka.topic, "orders");
    ASSERT_STR_EQ(A.kafka.group, "g1");
    ASSERT(A.kafka.start_latest);
    /* Properties keep their order; numbers and booleans become strings. */
    ASSERT_EQ(A.kafka.nprops, 4);
    ASSERT_STR_EQ(A.kafka.props[0].key, "fetch.max.bytes");
    ASSERT_STR_EQ(A.kafka.props[0].value, "52428800");
    ASSERT_STR_EQ(A.kafka.props[1].key, "enable.idempotence");
    ASSERT_STR_EQ(A.kafka.props[1].value, "true");
    ASSERT_STR_EQ(A.kafka.props[2].value, "5");
    ASSERT_STR_EQ(A.kafka.props[3].value, "0.5");
    assert_round_trip(&A, "orders");
}

TEST(column_defaults)
{
    parse_ok("{'name': 'd', 'time_column': 't', 'columns': ["
             " {'name': 't', 'type': 'timestamp', 'default': 1704067200000},"
             " {'name': 'i64min', 'type': 'int64', 'default': -9223372036854775808},"
             " {'name': 'i64max', 'type': 'int64', 'default': 9223372036854775807},"
             " {'name': 'i32min', 'type': 'int32', 'default': -2147483648},"
             " {'name': 'i32max', 'type': 'int32', 'default': 2147483647},"
             " {'name': 'u_num', 'type': 'uint64', 'default': 9223372036854775807},"
             " {'name': 'u_str', 'type': 'uint64', 'default': '18446744073709551615'},"
             " {'name': 'u_small', 'type': 'uint64', 'default': '42'},"
             " {'name': 'f_int', 'type': 'float64', 'default': 3},"
             " {'name': 'f_real', 'type': 'float64', 'default': -2.5e-300},"
             " {'name': 'f_negzero', 'type': 'float64', 'default': -0.0},"
             " {'name': 'f_nan', 'type': 'float64', 'default': 'NaN'},"
             " {'name': 'f_inf', 'type': 'float64', 'default': 'Infinity'},"
             " {'name': 'f_ninf', 'type': 'float64', 'default': '-Infinity'},"
             " {'name': 'b_true', 'type': 'bool', 'default': true},"
             " {'name': 'b_false', 'type': 'bool', 'default': false},"
             " {'name': 's', 'type': 'string', 'default': 'h\\u00e9 \\'q\\' \\\\ \\n'},"
             " {'name': 's_null', 'type': 'string', 'default': null}]}",
             &A);
    ASSERT_EQ(A.cols[0].def_i, 1704067200000LL);
    ASSERT_EQ(A.cols[1].def_i, INT64_MIN);
    ASSERT_EQ(A.cols[2].def_i, INT64_MAX);
    ASSERT_EQ(A.cols[3].def_i, INT32_MIN);
    ASSERT_EQ(A.cols[4].def_i, INT32_MAX);
    ASSERT_EQ(A.cols[5].def_i, INT64_MAX);
    ASSERT_U64_EQ((uint64_t)A.cols[6].def_i, UINT64_MAX);
    ASSERT_EQ(A.cols[7].def_i, 42);
    ASSERT_DBL_EQ(A.cols[8].def_f, 3.0);
    ASSERT_DBL_EQ(A.cols[9].def_f, -2.5e-300);
    ASSERT_DBL_EQ(A.cols[10].def_f, -0.0);
    ASSERT(isnan(A.cols[11].def_f));
    ASSERT(isinf(A.cols[12].def_f) && A.cols[12].def_f > 0);
    ASSERT(isinf(A.cols[13].def_f) && A.cols[13].def_f < 0);
    ASSERT_EQ(A.cols[14].def_i, 1);
    ASSERT_EQ(A.cols[15].def_i, 0);
    ASSERT_STR_EQ(A.cols[16].def_s, "h\xc3\xa9 \"q\" \\ \n");
    ASSERT_STR_EQ(A.cols[17].def_s, "");
    assert_round_trip(&A, "defaults");

    /* A string default of exactly 255 bytes is allowed. */
    char text[1024];
    char def[256];
    memset(def, 'x', 255);
    def[255] = 0;
    snprintf(text, sizeof text,
             "{'name': 'd', 'time_column': 't', 'columns': [{'name': 't', 'type': 'timestamp'},"
             " {'name': 's', 'type': 'string', 'default': '%s'}]}",
             def);
    parse_ok(text, &A);
    ASSERT_STR_EQ(A.cols[1].def_s, def);
    assert_round_trip(&A, "255-byte default");
}

/* Regression: "default": 2.0 for an int64 column was refused ("expected an integer, got
 * a number") though ingest takes 2.0 into the column. An integral real below 2^53 is that
 * integer for timestamp, int64, int32 and uint64 columns, and is dumped as the integer. */
TEST(integral_real_defaults_fit_integer_columns)
{
    parse_ok("{'name': 'd', 'time_column': 't', 'columns': ["
             " {'name': 't', 'type': 'timestamp', 'default': 1.7040672e12},"
             " {'name': 'a', 'type': 'int64', 'default': 2.0},"
             " {'name': 'b', 'type': 'int64', 'default': -0.0},"
             " {'name': 'c', 'type': 'int32', 'default': 1e3},"
             " {'name': 'e', 'type': 'int32', 'default': -2147483648.0},"
             " {'name': 'u', 'type': 'uint64', 'default': 9007199254740991.0},"
             " {'name': 'v', 'type': 'uint64', 'default': -0.0},"
             " {'name': 'w', 'type': 'int64', 'default': -9.007199254740991e15}]}",
             &A);
    ASSERT_EQ(A.cols[0].def_i, 1704067200000LL);
    ASSERT_EQ(A.cols[1].def_i, 2);
    ASSERT_EQ(A.cols[2].def_i, 0);
    ASSERT_EQ(A.cols[3].def_i, 1000);
    ASSERT_EQ(A.cols[4].def_i, INT32_MIN);
    ASSERT_EQ(A.cols[5].def_i, 9007199254740991LL);
    ASSERT_EQ(A.cols[6].def_i, 0);
    ASSERT_EQ(A.cols[7].def_i, -9007199254740991LL);
    assert_round_trip(&A, "integral real defaults");
    char *text = schema_json_dump(&A);
    ASSERT(text != NULL);
    const char *d = strstr(text, "\"default\": 2");
    ASSERT(d != NULL);
    ASSERT(!isdigit((unsigned char)d[12]) && d[12] != '.'); /* 2, not 2.0 nor 2x */
    free(text);
}

TEST(default_order_by)
{
    parse_ok("{'name': 'o', 'time_column': 'ts', 'dedup_key': ['ref', 'ts'], 'columns': ["
             " {'name': 'a', 'type': 'string'}, {'name': 'ts', 'type': 'timestamp'},"
             " {'name': 'ref', 'type': 'string'}, {'name': 'n', 'type': 'int64'},"
             " {'name': 'b', 'type': 'string'}]}",
             &A);
    ASSERT_EQ(A.norder, 3);
    ASSERT_EQ(A.order_by[0], 0);
    ASSERT_EQ(A.order_by[1], 4);
    ASSERT_EQ(A.order_by[2], 1);
    /* An explicit order is kept as given. */
    parse_ok("{'name': 'o', 'time_column': 'ts', 'order_by': ['n', 'ts', 'a'], 'columns': ["
             " {'name': 'a', 'type': 'string'}, {'name': 'ts', 'type': 'timestamp'},"
             " {'name': 'n', 'type': 'int64'}]}",
             &A);
    ASSERT_EQ(A.norder, 3);
    ASSERT_EQ(A.order_by[0], 2);
    ASSERT_EQ(A.order_by[1], 1);
    ASSERT_EQ(A.order_by[2], 0);
}

TEST(null_means_absent)
{
    parse_ok(HEAD ", 'partition_by': null, 'order_by': null, 'dedup_key': null, 'version': null,"
                  " 'deleted': null, 'rollups': null, 'retention': {'raw': null, '1m': null},"
                  " 'lateness': null, 'late_policy': null, 'late_bound': null, 'unknown_fields': null,"
                  " 'storage': {'compression': null, 'memtable_bytes': null}, 'kafka': null,"
                  " 'format_version': null}",
             &A);
    parse_ok(HEAD "}", &B);
    assert_same_schema(&A, &B, "nulls");
    parse_ok(HEAD ", 'retention': null, 'storage': null}", &A);
    assert_same_schema(&A, &B, "null sections");
    parse_ok(HEAD ", 'retention': {}, 'storage': {}, 'rollups': []}", &A);
    assert_same_schema(&A, &B, "empty sections");
}

TEST(sizes_and_durations)
{
    parse_ok(HEAD ", 'storage': {'memtable_bytes': 65536, 'memory_budget': '1GB',"
                  " 'memtable_age': '2s', 'memtable_rows': 16777216}}",
             &A);
    ASSERT_U64_EQ(A.memtable_max_bytes, 65536);
    ASSERT_U64_EQ(A.memory_budget_bytes, 1000000000);
    ASSERT_EQ(A.memtable_max_age_ms, 2000);
    ASSERT_U64_EQ(A.memtable_max_rows, 16777216);
    parse_ok(HEAD
             ", 'storage': {'memtable_bytes': '64k', 'memory_budget': '18446744073709551615'}}",
             &A);
    ASSERT_U64_EQ(A.memtable_max_bytes, 65536);
    ASSERT_U64_EQ(A.memory_budget_bytes, UINT64_MAX);
    assert_round_trip(&A, "huge budget");
    parse_ok(HEAD ", 'storage': {'memtable_bytes': '64MB', 'memory_budget': '100MB'}}", &A);
    ASSERT_U64_EQ(A.memtable_max_bytes, 64000000);
    assert_round_trip(&A, "decimal sizes");
    parse_ok(HEAD ", 'lateness': '0s', 'late_policy': 'dead-letter', 'late_bound': '1y', 'retention': {'1h': '2w'}}", &A);
    ASSERT_EQ(A.lateness_ms, 0);
    ASSERT_EQ(A.late_bound_ms, 365LL * 86400000);
    ASSERT_EQ(A.retention_1h_ms, 14LL * 86400000);
    ASSERT_EQ(A.retention_raw_ms, 0);
    assert_round_trip(&A, "durations");
    parse_ok(HEAD ", 'storage': {'compression': 'none'}, 'partition_by': 'month'}", &A);
    ASSERT_EQ(A.codec, STRATA_CODEC_NONE);
    ASSERT_EQ(A.partition_by, STRATA_PART_MONTH);
    assert_round_trip(&A, "none/month");
}

TEST(kafka_defaults)
{
    parse_ok(HEAD ", 'kafka': {'topic': 'orders.v2_x-y'}}", &A);
    ASSERT(A.kafka.enabled);
    ASSERT_STR_EQ(A.kafka.brokers, "");
    ASSERT_STR_EQ(A.kafka.topic, "orders.v2_x-y");
    ASSERT_STR_EQ(A.kafka.group, "strata-t");
    ASSERT(!A.kafka.start_latest);
    ASSERT_EQ(A.kafka.nprops, 0);
    assert_round_trip(&A, "kafka defaults");
    /* The group default follows the name given by the path. */
    parse_ok_named("{" COLS ", 'time_column': 'ts', 'kafka': {'topic': 'x', 'start': 'earliest',"
                   " 'brokers': 'a:1,b:2', 'properties': {}}}",
                   "from_path", &A);
    ASSERT_STR_EQ(A.name, "from_path");
    ASSERT_STR_EQ(A.kafka.group, "strata-from_path");
    ASSERT_STR_EQ(A.kafka.brokers, "a:1,b:2");
    /* 32 properties, the most allowed. */
    char text[8192];
    int n = snprintf(text, sizeof text, HEAD ", 'kafka': {'topic': 'x', 'properties': {");
    for (int i = 0; i < STRATA_MAX_KAFKA_PROPS; i++)
        n += snprintf(text + n, sizeof text - (size_t)n, "%s'p%d': %d", i ? ", " : "", i, i * 7);
    snprintf(text + n, sizeof text - (size_t)n, "}}}");
    parse_ok(text, &A);
    ASSERT_EQ(A.kafka.nprops, STRATA_MAX_KAFKA_PROPS);
    ASSERT_STR_EQ(A.kafka.props[31].key, "p31");
    ASSERT_STR_EQ(A.kafka.props[31].value, "217");
    assert_round_trip(&A, "32 properties");
}

TEST(named)
{
    const char *body = J("{" COLS ", 'time_column': 'ts'}");
    strata_err err = {0};
    ASSERT_EQ(schema_json_parse_named(body, strlen(body), "clicks", &A, &err), 0);
    ASSERT_STR_EQ(A.name, "clicks");
    /* The same name in body and path is fine. */
    parse_ok_named(HEAD "}", "t", &B);
    ASSERT_STR_EQ(B.name, "t");
    /* A different one is not. */
    parse_fails_raw(J(HEAD "}"), strlen(J(HEAD "}")), "orders", STRATA_EINVAL,
                    "name: 't' does not match the table name 'orders' in the path");
    /* Without a path name, the body must have one. */
    parse_fails_raw(body, strlen(body), NULL, STRATA_EINVAL, "name: required");
    ASSERT_EQ(schema_json_parse(body, strlen(body), &A, &err), STRATA_EINVAL);
    ASSERT_STR_EQ(err.msg, "name: required");
    /* The path name obeys the same rules. */
    parse_fails_raw(body, strlen(body), "1bad", STRATA_EINVAL,
                    "name: '1bad' is not a valid table name");
    parse_fails_raw(body, strlen(body),
                    "a234567890123456789012345678901234567890123456789012345678901234",
                    STRATA_EINVAL, "name: too long (64 bytes, at most 63)");
}

TEST(text_need_not_be_terminated)
{
    const char *t = J(HEAD "}");
    size_t n = strlen(t);
    char *copy = malloc(n);
    memcpy(copy, t, n); /* no NUL: ASan catches any read past n */
    strata_err err = {0};
    ASSERT_EQ(schema_json_parse(copy, n, &A, &err), 0);
    ASSERT_EQ(schema_json_parse(copy, n - 1, &A, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "malformed JSON");
    free(copy);
    ASSERT_EQ(schema_json_parse(NULL, 0, &A, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "malformed JSON");
}

/* ---- dump ---------------------------------------------------------------------------------- */

TEST(dump_is_canonical)
{
    parse_ok(HEAD ", 'dedup_key': ['id', 'ts'], 'kafka': {'topic': 'k'}}", &A);
    char *text = schema_json_dump(&A);
    ASSERT(text);
    /* Every setting is written, defaults and unset optional ones included, in order. */
    static const char *const keys[] = {
        "\"format_version\": 1",
        "\"name\": \"t\"",
        "\"columns\"",
        "\"default\": 0.0",
        "\"default\": false",
        "\"default\": \"\"",
        "\"time_column\": \"ts\"",
        "\"partition_by\": \"day\"",
        "\"order_by\"",
        "\"dedup_key\": [\n    \"id\",\n    \"ts\"\n  ]",
        "\"version\": null",
        "\"deleted\": null",
        "\"rollups\": []",
        "\"retention\"",
        "\"raw\": null",
        "\"1m\": null",
        "\"1h\": null",
        "\"lateness\": \"2m\"",
        "\"late_policy\": \"update\"",
        "\"late_bound\": null",
        "\"unknown_fields\": \"ignore\"",
        "\"storage\"",
        "\"compression\": \"lz4\"",
        "\"memtable_rows\": 1048576",
        "\"memtable_bytes\": \"64MiB\"",
        "\"memtable_age\": \"1s\"",
        "\"memory_budget\": \"512MiB\"",
        "\"kafka\"",
        "\"brokers\": \"\"",
        "\"topic\": \"k\"",
        "\"group\": \"strata-t\"",
        "\"start\": \"earliest\"",
        "\"properties\": {}",
    };
    const char *at = text;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *p = strstr(text, keys[i]);
        if (!p)
            TEST_FAIL_("dump lacks %s:\n%s", keys[i], text);
        if (i > 0 && strncmp(keys[i], "\"default", 8) != 0 && p < at)
            TEST_FAIL_("%s is out of order:\n%s", keys[i], text);
        if (strncmp(keys[i], "\"default", 8) != 0)
            at = p;
    }
    ASSERT_EQ(text[strlen(text) - 1], '\n');
    free(text);
    /* Without Kafka, "kafka": null. */
    parse_ok(HEAD "}", &A);
    text = schema_json_dump(&A);
    ASSERT_CONTAINS(text, "\"kafka\": null");
    free(text);
}

/* A schema.json as builds before the unknown_fields setting wrote it (every setting of that
 * time, none for unknown fields): it loads unchanged, ignoring unknown fields as those
 * builds did, and dumps with the setting spelled out. */
TEST(schema_json_written_before_unknown_fields_loads_as_ignore)
{
    static const char old[] =
        "{\n  \"format_version\": 1,\n  \"name\": \"clicks\",\n  \"columns\": [\n    {\n"
        "      \"name\": \"ts\",\n      \"type\": \"timestamp\",\n      \"default\": 0\n    },\n"
        "    {\n      \"name\": \"page\",\n      \"type\": \"string\",\n      \"default\": \"\"\n"
        "    },\n    {\n      \"name\": \"ms\",\n      \"type\": \"int32\",\n      \"default\": -1\n"
        "    }\n  ],\n  \"time_column\": \"ts\",\n  \"partition_by\": \"day\",\n  \"order_by\": [\n"
        "    \"page\",\n    \"ts\"\n  ],\n  \"dedup_key\": null,\n  \"version\": null,\n"
        "  \"deleted\": null,\n  \"dedup_window\": null,\n  \"rollups\": [],\n  \"retention\": {\n    \"raw\": null,\n"
        "    \"1m\": null,\n    \"1h\": null\n  },\n  \"lateness\": \"2m\",\n"
        "  \"late_policy\": \"dead-letter\",\n  \"late_bound\": \"1d\",\n  \"storage\": {\n"
        "    \"compression\": \"lz4\",\n    \"memtable_rows\": 1048576,\n"
        "    \"memtable_bytes\": \"64MiB\",\n    \"memtable_age\": \"1s\",\n"
        "    \"memory_budget\": \"512MiB\"\n  },\n  \"kafka\": null\n}\n";
    strata_err err = {0};
    ASSERT_EQ(schema_json_parse(old, strlen(old), &A, &err), 0);
    ASSERT_EQ(A.unknown_fields, STRATA_UNKNOWN_FIELDS_IGNORE);
    ASSERT_EQ(A.late_policy, STRATA_LATE_DEAD_LETTER);
    ASSERT_EQ(A.cols[2].def_i, -1);
    char *text = schema_json_dump(&A);
    ASSERT(text);
    /* the new dump is the old text with the one new line after late_bound */
    const char *at = strstr(old, "  \"storage\"");
    ASSERT(at);
    char want[2048];
    snprintf(want, sizeof want, "%.*s  \"unknown_fields\": \"ignore\",\n%s", (int)(at - old), old, at);
    ASSERT_STR_EQ(text, want);
    free(text);
    assert_round_trip(&A, "old schema.json");
    /* and a table that rejects them says so */
    A.unknown_fields = STRATA_UNKNOWN_FIELDS_REJECT;
    text = schema_json_dump(&A);
    ASSERT(text);
    ASSERT_CONTAINS(text, "\"unknown_fields\": \"reject\"");
    free(text);
    assert_round_trip(&A, "unknown_fields reject");
}

TEST(dump_refuses_impossible_schemas)
{
    parse_ok(ORDERS, &A);
    memcpy(&B, &A, sizeof B);
    B.time_col = 99;
    ASSERT(schema_json_dump(&B) == NULL);
    memcpy(&B, &A, sizeof B);
    B.unknown_fields = (strata_unknown_fields)2;
    ASSERT(schema_json_dump(&B) == NULL);
    memcpy(&B, &A, sizeof B);
    B.cols[2].type = (strata_type)42;
    ASSERT(schema_json_dump(&B) == NULL);
    memcpy(&B, &A, sizeof B);
    B.rollups[0].metrics[1].column = -7;
    ASSERT(schema_json_dump(&B) == NULL);
    memcpy(&B, &A, sizeof B);
    B.nrollups = 9;
    ASSERT(schema_json_dump(&B) == NULL);
    memcpy(&B, &A, sizeof B);
    memset(B.kafka.topic, 'x', sizeof B.kafka.topic); /* no terminator */
    ASSERT(schema_json_dump(&B) == NULL);
    memcpy(&B, &A, sizeof B);
    snprintf(B.cols[3].def_s, sizeof B.cols[3].def_s, "bad \xff utf-8");
    ASSERT(schema_json_dump(&B) == NULL);
    memcpy(&B, &A, sizeof B);
    B.codec = (strata_codec)3;
    ASSERT(schema_json_dump(&B) == NULL);
    char *ok = schema_json_dump(&A);
    ASSERT(ok);
    free(ok);
}

/* ---- random valid schemas round-trip ------------------------------------------------------ */

static uint64_t rnd(uint64_t *seed, uint64_t n) { return test_rand_next(seed) % n; }

static void rand_text(uint64_t *seed, char *out, size_t maxlen, bool topic)
{
    static const char *const pieces[] = {"a",
                                         "Z",
                                         "0",
                                         "_",
                                         ".",
                                         "-",
                                         " ",
                                         "\"",
                                         "\\",
                                         "\n",
                                         "\t",
                                         "/",
                                         "\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80"};
    static const char *const topic_pieces[] = {"a", "Z", "0", "_", ".", "-"};
    size_t len = 0, want = (size_t)rnd(seed, maxlen + 1);
    while (len < want) {
        const char *p = topic ? topic_pieces[rnd(seed, 6)] : pieces[rnd(seed, 15)];
        size_t pl = strlen(p);
        if (len + pl > maxlen)
            break;
        memcpy(out + len, p, pl);
        len += pl;
    }
    out[len] = 0;
}

static void rand_name(uint64_t *seed, char *out, size_t cap, int uniq)
{
    static const char first[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_";
    static const char rest[] = "abcdefghijklmnopqrstuvwxyz0123456789_";
    char tmp[STRATA_NAME_MAX];
    size_t n = 1 + (size_t)rnd(seed, 40);
    tmp[0] = first[rnd(seed, sizeof first - 1)];
    for (size_t i = 1; i < n; i++)
        tmp[i] = rest[rnd(seed, sizeof rest - 1)];
    tmp[n] = 0;
    if (uniq >= 0)
        snprintf(out, cap, "%.40s_%d", tmp, uniq);
    else
        snprintf(out, cap, "%s", tmp);
}

static int64_t rand_duration(uint64_t *seed, bool allow_zero)
{
    static const int64_t units[] = {1, 1000, 60000, 3600000, 86400000, 604800000, 31536000000};
    int64_t v = (int64_t)rnd(seed, 1000) * units[rnd(seed, 7)];
    if (rnd(seed, 8) == 0) /* anywhere up to the largest duration a schema may hold */
        v = (int64_t)(test_rand_next(seed) % (uint64_t)(STRATA_DURATION_MAX + 1));
    if (v == 0 && !allow_zero)
        v = 1;
    return v;
}

static double rand_double(uint64_t *seed)
{
    switch (rnd(seed, 8)) {
    case 0: return NAN;
    case 1: return rnd(seed, 2) ? INFINITY : -INFINITY;
    case 2: return -0.0;
    case 3: return (double)(int64_t)test_rand_next(seed);
    case 4: return (double)rnd(seed, 1000) / 8.0;
    default: {
        uint64_t bits = test_rand_next(seed);
        double d;
        memcpy(&d, &bits, sizeof d);
        return isfinite(d) ? d : 1.5;
    }
    }
}

/* Columns that fit a role. */
static int pick_col(uint64_t *seed, const strata_schema *s, bool (*fits)(strata_type))
{
    int idx[STRATA_MAX_COLUMNS], n = 0;
    for (int i = 0; i < s->ncols; i++)
        if (fits(s->cols[i].type))
            idx[n++] = i;
    return n ? idx[rnd(seed, (uint64_t)n)] : -1;
}
static bool fits_key(strata_type t) { return t != STRATA_FLOAT64 && t != STRATA_BOOL; }
static bool fits_version(strata_type t) { return strata_type_is_int(t) && t != STRATA_BOOL; }
static bool fits_bool(strata_type t) { return t == STRATA_BOOL; }
static bool fits_numeric(strata_type t) { return t != STRATA_STRING && t != STRATA_BOOL; }
static bool fits_any(strata_type t) { return t != 0; }

static void rand_schema(uint64_t *seed, strata_schema *s)
{
    schema_init(s);
    rand_name(seed, s->name, sizeof s->name, -1);
    s->ncols = 1 + (int)rnd(seed, rnd(seed, 4) == 0 ? STRATA_MAX_COLUMNS : 12);
    for (int i = 0; i < s->ncols; i++) {
        strata_column *c = &s->cols[i];
        rand_name(seed, c->name, sizeof c->name, i);
        c->type = (strata_type)(STRATA_TIMESTAMP + rnd(seed, 7));
        if (rnd(seed, 3) == 0)
            continue; /* default left at zero */
        switch (c->type) {
        case STRATA_TIMESTAMP:
        case STRATA_INT64:
        case STRATA_UINT64: c->def_i = (int64_t)test_rand_next(seed); break;
        case STRATA_INT32: c->def_i = (int32_t)(uint32_t)test_rand_next(seed); break;
        case STRATA_FLOAT64: c->def_f = rand_double(seed); break;
        case STRATA_BOOL: c->def_i = (int64_t)rnd(seed, 2); break;
        case STRATA_STRING: rand_text(seed, c->def_s, sizeof c->def_s - 1, false); break;
        case STRATA_BYTES: break; /* (not drawn: never a table column) */
        }
    }
    s->time_col = (int)rnd(seed, (uint64_t)s->ncols);
    s->cols[s->time_col].type = STRATA_TIMESTAMP;
    s->cols[s->time_col].def_f = 0;
    s->cols[s->time_col].def_s[0] = 0;
    memset(s->cols[s->time_col].def_s, 0, sizeof s->cols[s->time_col].def_s);
    s->partition_by = (strata_partition_by)rnd(seed, 3);
    if (rnd(seed, 2)) {
        int k = pick_col(seed, s, fits_key);
        if (k >= 0) {
            s->dedup_cols[s->ndedup++] = k;
            if (k != s->time_col)
                s->dedup_cols[s->ndedup++] = s->time_col;
        }
        if (s->ndedup && rnd(seed, 2)) {
            s->version_col = pick_col(seed, s, fits_version);
            for (int i = 0; i < s->ndedup; i++)
                if (s->version_col == s->dedup_cols[i]) /* the version must be another column */
                    s->version_col = -1;
        }
        if (s->ndedup && rnd(seed, 2))
            s->deleted_col = pick_col(seed, s, fits_bool);
    }
    if (rnd(seed, 3) == 0) {
        schema_apply_default_order(s);
    } else { /* a random subset in random order */
        int perm[STRATA_MAX_COLUMNS];
        for (int i = 0; i < s->ncols; i++)
            perm[i] = i;
        for (int i = s->ncols - 1; i > 0; i--) {
            int j = (int)rnd(seed, (uint64_t)i + 1), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        s->norder = 1 + (int)rnd(seed, (uint64_t)s->ncols);
        memcpy(s->order_by, perm, sizeof(int) * (size_t)s->norder);
    }
    s->nrollups = (int)rnd(seed, 3);
    for (int r = 0; r < s->nrollups; r++) {
        strata_rollup *ru = &s->rollups[r];
        ru->interval_ms = (r == 0) == (rnd(seed, 2) == 0) ? 60000 : 3600000;
        if (r == 1)
            ru->interval_ms = s->rollups[0].interval_ms == 60000 ? 3600000 : 60000;
        for (int i = 0; i < s->ncols; i++)
            if (s->cols[i].type == STRATA_STRING && rnd(seed, 2))
                ru->dims[ru->ndims++] = i;
        ru->nmetrics = 1 + (int)rnd(seed, 12); /* distinct, and at most 25 states (rollups: 32) */
        for (int m = 0; m < ru->nmetrics; m++) {
            strata_rollup_metric *me = &ru->metrics[m];
            static const strata_agg fns[] = {STRATA_AGG_COUNT, STRATA_AGG_SUM,
                                             STRATA_AGG_MIN,   STRATA_AGG_MAX,
                                             STRATA_AGG_UNIQ,  STRATA_AGG_QUANTILE};
            bool dup = true;
            for (int tries = 0; dup && tries < 64; tries++) { /* a metric listed twice is refused */
                me->fn = fns[rnd(seed, 6)];
                me->column = -1;
                if (me->fn == STRATA_AGG_UNIQ)
                    me->column = pick_col(seed, s, fits_any);
                else if (me->fn != STRATA_AGG_COUNT)
                    me->column = pick_col(seed, s, fits_numeric); /* the time column at least */
                dup = false;
                for (int k = 0; k < m && !dup; k++)
                    dup = ru->metrics[k].fn == me->fn && ru->metrics[k].column == me->column;
            }
            if (dup) {
                *me = (strata_rollup_metric){0}; /* as a parse leaves the unused ones */
                ru->nmetrics = m;
                break;
            }
        }
    }
    s->retention_raw_ms = rnd(seed, 2) ? rand_duration(seed, false) : 0;
    s->retention_1m_ms = rnd(seed, 2) ? rand_duration(seed, false) : 0;
    s->retention_1h_ms = rnd(seed, 2) ? rand_duration(seed, false) : 0;
    if (s->retention_1m_ms && s->retention_1m_ms < s->retention_raw_ms) /* a tier keeps at least as long */
        s->retention_1m_ms = s->retention_raw_ms;
    if (s->retention_1h_ms && s->retention_1h_ms < s->retention_raw_ms)
        s->retention_1h_ms = s->retention_raw_ms;
    s->lateness_ms = rand_duration(seed, true);
    s->late_policy = (strata_late_policy)rnd(seed, 2);
    s->late_bound_ms = s->late_policy == STRATA_LATE_DEAD_LETTER ? rand_duration(seed, false) : 0; /* needs one */
    s->unknown_fields = (strata_unknown_fields)rnd(seed, 2);
    s->codec = (strata_codec)rnd(seed, 3);
    s->memtable_max_rows = 1 + rnd(seed, 1u << 24);
    s->memtable_max_bytes =
        65536 + (rnd(seed, 2) ? rnd(seed, 1ull << 40) : (rnd(seed, 4096) << 20));
    s->memtable_max_age_ms = rand_duration(seed, false);
    s->memory_budget_bytes =
        s->memtable_max_bytes + (rnd(seed, 2) ? test_rand_next(seed) >> 1 : rnd(seed, 64) << 30);
    if (rnd(seed, 2)) {
        strata_kafka *k = &s->kafka;
        k->enabled = true;
        rand_text(seed, k->brokers, sizeof k->brokers - 1, false);
        do
            rand_text(seed, k->topic, sizeof k->topic - 1, true);
        while (!k->topic[0]);
        do
            rand_text(seed, k->group, sizeof k->group - 1, false);
        while (!k->group[0]);
        k->start_latest = rnd(seed, 2);
        k->nprops = (int)rnd(seed, STRATA_MAX_KAFKA_PROPS + 1);
        for (int i = 0; i < k->nprops; i++) {
            rand_text(seed, k->props[i].key, 100, false);
            char tail[24];
            snprintf(tail, sizeof tail, "#%d", i); /* unique, non-empty */
            strcat(k->props[i].key, tail);
            rand_text(seed, k->props[i].value, sizeof k->props[i].value - 1, false);
        }
    }
}

TEST(random_round_trips)
{
    uint64_t seed = 0x5EED5C4E3A11ull;
    for (int i = 0; i < 1000; i++) {
        rand_schema(&seed, &A);
        strata_err err = {0};
        if (schema_validate(&A, &err) != 0)
            TEST_FAIL_("random schema %d is invalid: %s", i, err.msg);
        char what[32];
        snprintf(what, sizeof what, "random schema %d", i);
        assert_round_trip(&A, what);
    }
}

/* ---- invalid schemas ----------------------------------------------------------------------- */

static const struct bad_case {
    const char *json;
    const char *needle;
} bad_cases[] = {
    /* document level */
    {"[]", "schema: expected a JSON object, got an array"},
    {"'x'", "malformed JSON at line 1"},
    {"", "malformed JSON"},
    {"{", "malformed JSON at line 1 column"},
    {"{'name': 't',\n 'columns': [\n  {'name': 'ts' 'type': 'timestamp'}]}",
     "malformed JSON at line 3 column"},
    {HEAD "} trailing", "malformed JSON at line 1"},
    {HEAD ", 'name': 'u'}", "duplicate"},
    {HEAD ", 'partiton_by': 'day'}", "unknown key 'partiton_by' (did you mean 'partition_by'?)"},
    {HEAD ", 'timecolumn': 'ts'}", "unknown key 'timecolumn' (did you mean 'time_column'?)"},
    {HEAD ", 'frobnicate': 1}", "unknown key 'frobnicate' (expected one of format_version, name"},
    {HEAD ", 'format_version': '1'}", "format_version: expected an integer, got a string"},
    /* name */
    {"{'name': 5, " COLS ", 'time_column': 'ts'}", "name: expected a string, got an integer"},
    {"{" COLS ", 'time_column': 'ts'}", "name: required"},
    {"{'name': '1t', " COLS ", 'time_column': 'ts'}", "name: '1t' is not a valid table name"},
    {"{'name': 'a-b', " COLS ", 'time_column': 'ts'}", "name: 'a-b' is not a valid table name"},
    {"{'name': '', " COLS ", 'time_column': 'ts'}", "name: '' is not a valid table name"},
    {"{'name': 'a234567890123456789012345678901234567890123456789012345678901234', " COLS
     ", 'time_column': 'ts'}",
     "name: too long (64 bytes, at most 63)"},
    /* columns */
    {"{'name': 't', 'time_column': 'ts'}", "columns: required"},
    {"{'name': 't', 'columns': {}, 'time_column': 'ts'}",
     "columns: expected an array, got an object"},
    {"{'name': 't', 'columns': [], 'time_column': 'ts'}",
     "columns: a table needs at least one column"},
    {"{'name': 't', 'columns': [{'name': 'ts', 'type': 'timestamp'}, 'x'], 'time_column': 'ts'}",
     "columns[1]: expected an object, got a string"},
    {"{'name': 't', 'columns': [{'name': 'ts', 'type': 'timestamp'}, {'name': 'a', 'type': "
     "'int64', 'defualt': 1}], 'time_column': 'ts'}",
     "columns[1]: unknown key 'defualt' (did you mean 'default'?)"},
    {"{'name': 't', 'columns': [{'name': 'ts', 'type': 'timestamp'}, {'nom': 'a'}], "
     "'time_column': 'ts'}",
     "columns[1]: unknown key 'nom' (did you mean 'name'?)"},
    {"{'name': 't', 'columns': [{'name': 'ts', 'type': 'timestamp'}, {'type': 'int64'}], "
     "'time_column': 'ts'}",
     "columns[1].name: required"},
    {"{'name': 't', 'columns': [{'name': 'ts', 'type': 'timestamp'}, {'name': 7, 'type': "
     "'int64'}], 'time_column': 'ts'}",
     "columns[1].name: expected a string, got an integer"},
    {"{'name': 't', 'columns': [{'name': 'ts', 'type': 'timestamp'}, {'name': 'a'}], "
     "'time_column': 'ts'}",
     "columns[1].type: required"},
    {"{'name': 't', 'columns': [{'name': 'ts', 'type': 'timestamp'}, {'name': 'a', 'type': 5}], "
     "'time_column': 'ts'}",
     "columns[1].type: expected a string, got an integer"},
    {"{'name': 't', 'columns': [{'name': 'ts', 'type': 'timestamp'}, {'name': 'a', 'type': "
     "'int64'}, {'name': 'b', 'type': 'int64'}, {'name': 'c', 'type': 'int128'}], "
     "'time_column': 'ts'}",
     "columns[3].type: unknown type 'int128' (expected one of timestamp, int64, uint64, int32, "
     "float64, bool, string)"},
    {"{'name': 't', 'columns': [{'name': 'ts', 'type': 'timestamp'}, {'name': 'ts', 'type': "
     "'int64'}], 'time_column': 'ts'}",
     "columns[1].name: 'ts' is declared twice"},
    {"{'name': 't', 'columns': [{'name': 'ts', 'type': 'timestamp'}, {'name': 'a b', 'type': "
     "'int64'}], 'time_column': 'ts'}",
     "columns[1].name: 'a b' is not a valid column name"},
    {"{'name': 't', 'columns': [{'name': 'ts', 'type': 'timestamp'}, {'name': "
     "'a234567890123456789012345678901234567890123456789012345678901234', 'type': 'int64'}], "
     "'time_column': 'ts'}",
     "columns[1].name: too long (64 bytes, at most 63)"},
    /* column defaults */
    {"{'name': 't', 'columns': [{'name': 'ts', 'type': 'timestamp', 'default': '2024-01-01'}], "
     "'time_column': 'ts'}",
     "columns[0].default: expected an integer (the column is timestamp), got a string"},
    {HEAD ", 'columns': [{'name': 'ts', 'type': 'timestamp'}]}", "duplicate"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'int32', 'default': 2147483648}]}",
     "columns[1].default: 2147483648 is out of int32 range"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'int32', 'default': -2147483649}]}",
     "columns[1].default: -2147483649 is out of int32 range"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'int64', 'default': 1.5}]}",
     "columns[1].default: 1.5 is not an integer (the column is int64)"},
    /* integral reals: only exact integers in range, and only below 2^53 */
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'int32', 'default': 2.5}]}",
     "columns[1].default: 2.5 is not an integer (the column is int32)"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp', "
     "'default': 1e-3}]}",
     "columns[0].default: 0.001 is not an integer (the column is timestamp)"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'uint64', 'default': 0.5}]}",
     "columns[1].default: 0.5 is not an integer (the column is uint64)"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'int32', 'default': 2147483648.0}]}",
     "columns[1].default: 2147483648.0 is out of int32 range"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'int32', 'default': -3e9}]}",
     "columns[1].default: -3e9 is out of int32 range"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'uint64', 'default': -1.0}]}",
     "columns[1].default: -1.0 is negative; a uint64 default must be at least 0"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'int64', 'default': 1e19}]}",
     "columns[1].default: 1e19 is out of int64 range"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'uint64', 'default': 1e19}]}",
     "columns[1].default: 1e19 is too large to be read exactly from a number with a fraction "
     "or exponent (2^53 or more; the column is uint64); write the default as an integer or a "
     "decimal string"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'int64', 'default': 9007199254740992.0}]}",
     "columns[1].default: 9007199254740992.0 is too large to be read exactly from a number "
     "with a fraction or exponent (2^53 or more; the column is int64); write the default as an "
     "integer"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'int64', 'default': '5'}]}",
     "columns[1].default: expected an integer (the column is int64), got a string"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'uint64', 'default': -1}]}",
     "columns[1].default: -1 is negative"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'uint64', 'default': '18446744073709551616'}]}",
     "columns[1].default: '18446744073709551616' is not a uint64"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'uint64', 'default': '-5'}]}",
     "columns[1].default: '-5' is not a uint64"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'uint64', 'default': ''}]}",
     "columns[1].default: '' is not a uint64"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'uint64', 'default': true}]}",
     "columns[1].default: expected an integer or a decimal string (the column is uint64), got "
     "true"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'uint64', 'default': 18446744073709551615}]}",
     "too big integer near '18446744073709551615' (write integers above 9223372036854775807 as "
     "decimal strings)"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'float64', 'default': 'nan'}]}",
     "columns[1].default: 'nan' is not a float64"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'float64', 'default': false}]}",
     "columns[1].default: expected a number (the column is float64), got false"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'bool', 'default': 1}]}",
     "columns[1].default: expected true or false (the column is bool), got an integer"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'bool', 'default': 'true'}]}",
     "columns[1].default: expected true or false (the column is bool), got a string"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'string', 'default': 0}]}",
     "columns[1].default: expected a string (the column is string), got an integer"},
    {"{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': 'timestamp'}, "
     "{'name': 'x', 'type': 'string', 'default': []}]}",
     "columns[1].default: expected a string (the column is string), got an array"},
    /* time_column */
    {"{'name': 't', " COLS "}", "time_column: required"},
    {"{'name': 't', " COLS ", 'time_column': 'tss'}",
     "time_column: unknown column 'tss' (did you mean 'ts'?)"},
    {"{'name': 't', " COLS ", 'time_column': 'zzzzzz'}", "time_column: unknown column 'zzzzzz'"},
    {"{'name': 't', " COLS ", 'time_column': 0}",
     "time_column: expected a column name (string), got an integer"},
    {"{'name': 't', " COLS ", 'time_column': 'amount'}",
     "time_column: 'amount' has type float64, it must be timestamp"},
    /* partition_by, order_by */
    {HEAD ", 'partition_by': 'week'}",
     "partition_by: unknown value 'week' (expected one of day, hour, month)"},
    {HEAD ", 'partition_by': 'Day'}", "partition_by: unknown value 'Day'"},
    {HEAD ", 'partition_by': 1}", "partition_by: expected a string, got an integer"},
    {HEAD ", 'order_by': 'ts'}", "order_by: expected an array of column names, got a string"},
    {HEAD ", 'order_by': []}", "order_by: must list at least one column"},
    {HEAD ", 'order_by': ['contry']}",
     "order_by[0]: unknown column 'contry' (did you mean 'country'?)"},
    {HEAD ", 'order_by': ['ts', 5]}",
     "order_by[1]: expected a column name (string), got an integer"},
    {HEAD ", 'order_by': ['ts', 'ts']}", "order_by[1]: 'ts' is listed twice"},
    {HEAD ", 'order_by': ['ts', 'id', 'country', 'amount', 'del', 'n', 'ts']}",
     "order_by: 7 entries, but the table has 6 columns"},
    /* dedup */
    {HEAD ", 'dedup_key': 'amount'}", "dedup_key: 'amount' has type float64"},
    {HEAD ", 'dedup_key': 'del'}", "dedup_key: 'del' has type bool"},
    {HEAD ", 'dedup_key': 'event_id'}", "dedup_key: unknown column 'event_id'"},
    {HEAD ", 'dedup_key': ['id']}", "dedup_key: must include the time column 'ts'"},
    {HEAD ", 'dedup_key': 5}", "dedup_key: expected a column name or an array of column names"},
    {HEAD ", 'dedup_window': '1d'}", "dedup_window: needs a dedup_key"},
    {HEAD ", 'dedup_key': ['id', 'ts'], 'dedup_window': '0s'}", "dedup_window: must be a positive duration"},
    {HEAD ", 'version': 'n'}", "version: needs a dedup_key"},
    {HEAD ", 'dedup_key': ['id', 'ts'], 'version': 'amount'}", "version: 'amount' has type float64"},
    {HEAD ", 'dedup_key': ['id', 'ts'], 'version': 'vers'}", "version: unknown column 'vers'"},
    {HEAD ", 'deleted': 'del'}", "deleted: needs a dedup_key"},
    {HEAD ", 'dedup_key': ['id', 'ts'], 'deleted': 'n'}", "deleted: 'n' must be a bool column"},
    {HEAD ", 'dedup_key': ['id', 'ts'], 'deleted': true}",
     "deleted: expected a column name (string), got true"},
    /* rollups */
    {HEAD ", 'rollups': {}}", "rollups: expected an array, got an object"},
    {HEAD ", 'rollups': [1]}", "rollups[0]: expected an object, got an integer"},
    {HEAD ", 'rollups': [{}, {}, {}, {}, {}]}", "rollups: 5 rollups, at most 4 allowed"},
    {HEAD ", 'rollups': [{'interval': '1m', 'dims': [], 'metrics': [{'fn': 'count'}]}]}",
     "rollups[0]: unknown key 'dims'"},
    {HEAD ", 'rollups': [{'metrics': [{'fn': 'count'}]}]}", "rollups[0].interval: required"},
    {HEAD ", 'rollups': [{'interval': 60000, 'metrics': [{'fn': 'count'}]}]}",
     "rollups[0].interval: expected a duration string such as \"2m\", got an integer"},
    {HEAD ", 'rollups': [{'interval': '1 m', 'metrics': [{'fn': 'count'}]}]}",
     "rollups[0].interval: '1 m' is not a duration"},
    {HEAD ", 'rollups': [{'interval': '90s', 'metrics': [{'fn': 'count'}]}]}",
     "rollups[0].interval: must be a whole number of minutes or hours"},
    {HEAD ", 'rollups': [{'interval': '1m', 'metrics': [{'fn': 'count'}]}, {'interval': '60s', "
          "'metrics': [{'fn': 'count'}]}]}",
     "rollups[1]: the same interval and dimensions as rollups[0]"},
    {HEAD
     ", 'rollups': [{'interval': '1m', 'dimensions': 'country', 'metrics': [{'fn': 'count'}]}]}",
     "rollups[0].dimensions: expected an array of column names, got a string"},
    {HEAD ", 'rollups': [{'interval': '1m', 'dimensions': ['amount'], 'metrics': [{'fn': "
          "'count'}]}]}",
     "rollups[0].dimensions[0]: 'amount' is float64; dimensions must be string columns"},
    {HEAD ", 'rollups': [{'interval': '1m', 'dimensions': ['cuntry'], 'metrics': [{'fn': "
          "'count'}]}]}",
     "rollups[0].dimensions[0]: unknown column 'cuntry' (did you mean 'country'?)"},
    {HEAD ", 'rollups': [{'interval': '1m', 'dimensions': ['country', 'country'], 'metrics': "
          "[{'fn': 'count'}]}]}",
     "rollups[0].dimensions[1]: listed twice"},
    {HEAD ", 'rollups': [{'interval': '1m'}]}", "rollups[0].metrics: required"},
    {HEAD ", 'rollups': [{'interval': '1m', 'metrics': []}]}",
     "rollups[0].metrics: 0 metrics, between 1 and 32 allowed"},
    {HEAD ", 'rollups': [{'interval': '1m', 'metrics': {'fn': 'count'}}]}",
     "rollups[0].metrics: expected an array, got an object"},
    {HEAD ", 'rollups': [{'interval': '1m', 'metrics': ['count']}]}",
     "rollups[0].metrics[0]: expected an object, got a string"},
    {HEAD ", 'rollups': [{'interval': '1m', 'metrics': [{'column': 'amount'}]}]}",
     "rollups[0].metrics[0].fn: required"},
    {HEAD ", 'rollups': [{'interval': '1m', 'metrics': [{'fn': 'median', 'column': 'amount'}]}]}",
     "rollups[0].metrics[0].fn: unknown function 'median' (expected one of count, sum, min, max, "
     "uniq, quantile)"},
    {HEAD ", 'rollups': [{'interval': '1m', 'metrics': [{'fn': 'avg', 'column': 'amount'}]}]}",
     "rollups[0].metrics[0].fn: must be count, sum, min, max, uniq or quantile (avg is sum/count)"},
    {HEAD ", 'rollups': [{'interval': '1m', 'metrics': [{'fn': 1}]}]}",
     "rollups[0].metrics[0].fn: expected a string, got an integer"},
    {HEAD ", 'rollups': [{'interval': '1m', 'metrics': [{'fn': 'count', 'column': 'amount'}]}]}",
     "rollups[0].metrics[0].column: count takes no column"},
    {HEAD ", 'rollups': [{'interval': '1m', 'metrics': [{'fn': 'count'}, {'fn': 'sum'}]}]}",
     "rollups[0].metrics[1].column: required for sum"},
    {HEAD ", 'rollups': [{'interval': '1m', 'metrics': [{'fn': 'sum', 'column': 'country'}]}]}",
     "rollups[0].metrics[0].column: sum of 'country' needs a numeric column, it is string"},
    {HEAD ", 'rollups': [{'interval': '1m', 'metrics': [{'fn': 'max', 'column': 'del'}]}]}",
     "rollups[0].metrics[0].column: max of 'del' needs a numeric column, it is bool"},
    {HEAD ", 'rollups': [{'interval': '1m', 'metrics': [{'fn': 'sum', 'column': 'amout'}]}]}",
     "rollups[0].metrics[0].column: unknown column 'amout' (did you mean 'amount'?)"},
    {HEAD ", 'rollups': [{'interval': '1m', 'metrics': [{'fn': 'sum', 'col': 'amount'}]}]}",
     "rollups[0].metrics[0]: unknown key 'col' (expected one of fn, column)"},
    {HEAD ", 'rollups': [{'interval': '1m', 'metrics': [{'fn': 'sum', 'colum': 'amount'}]}]}",
     "rollups[0].metrics[0]: unknown key 'colum' (did you mean 'column'?)"},
    /* retention, lateness */
    {HEAD ", 'retention': '30d'}", "retention: expected an object, got a string"},
    {HEAD ", 'retention': {'raw': 30}}",
     "retention.raw: expected a duration string such as \"2m\", got an integer"},
    {HEAD ", 'retention': {'raw': '30 days'}}", "retention.raw: '30 days' is not a duration"},
    {HEAD ", 'retention': {'1m': '-1d'}}", "retention.1m: '-1d' is not a duration"},
    {HEAD ", 'retention': {'5m': '1d'}}", "retention: unknown key '5m'"},
    {HEAD ", 'retention': {'Raw': '1d'}}", "retention: unknown key 'Raw' (did you mean 'raw'?)"},
    {HEAD ", 'retention': {'raw': '0d'}}", "retention.raw: must be longer than 0"},
    {HEAD ", 'retention': {'1h': '99999999999y'}}",
     "retention.1h: '99999999999y' is not a duration"},
    {HEAD ", 'lateness': 120}", "lateness: expected a duration string"},
    {HEAD ", 'lateness': '-2m'}", "lateness: '-2m' is not a duration"},
    {HEAD ", 'lateness': '2 minutes'}", "lateness: '2 minutes' is not a duration"},
    {HEAD ", 'late_policy': 'drop'}",
     "late_policy: unknown value 'drop' (expected one of update, dead-letter)"},
    {HEAD ", 'late_policy': 'dead_letter'}", "late_policy: unknown value 'dead_letter'"},
    {HEAD ", 'late_bound': '0s'}", "late_bound: must be longer than 0"},
    {HEAD ", 'late_bound': 'soon'}", "late_bound: 'soon' is not a duration"},
    {HEAD ", 'unknown_fields': 'drop'}",
     "unknown_fields: unknown value 'drop' (expected one of ignore, reject)"},
    {HEAD ", 'unknown_fields': 'Reject'}", "unknown_fields: unknown value 'Reject'"},
    {HEAD ", 'unknown_fields': true}", "unknown_fields: expected a string, got true"},
    {HEAD ", 'unknown_field': 'reject'}", "unknown key 'unknown_field' (did you mean 'unknown_fields'?)"},
    /* storage */
    {HEAD ", 'storage': []}", "storage: expected an object, got an array"},
    {HEAD ", 'storage': {'compresion': 'lz4'}}",
     "storage: unknown key 'compresion' (did you mean 'compression'?)"},
    {HEAD ", 'storage': {'codec': 'lz4'}}", "storage: unknown key 'codec' (expected one of"},
    {HEAD ", 'storage': {'compression': 'gzip'}}",
     "storage.compression: unknown value 'gzip' (expected one of none, lz4, zstd)"},
    {HEAD ", 'storage': {'memtable_rows': '1M'}}",
     "storage.memtable_rows: expected an integer, got a string"},
    {HEAD ", 'storage': {'memtable_rows': 0}}", "storage.memtable_rows: must be between 1 and"},
    {HEAD ", 'storage': {'memtable_rows': -5}}", "storage.memtable_rows: must be between 1 and"},
    {HEAD ", 'storage': {'memtable_rows': 16777217}}", "storage.memtable_rows: must be between 1"},
    {HEAD ", 'storage': {'memtable_bytes': '64XB'}}",
     "storage.memtable_bytes: '64XB' is not a size"},
    {HEAD ", 'storage': {'memtable_bytes': -1}}", "storage.memtable_bytes: must not be negative"},
    {HEAD ", 'storage': {'memtable_bytes': 1000}}", "storage.memtable_bytes: at least 64KiB"},
    {HEAD ", 'storage': {'memtable_bytes': 1.5e9}}",
     "storage.memtable_bytes: expected a size (an integer or a string such as \"64MiB\"), got a "
     "number"},
    {HEAD ", 'storage': {'memtable_age': '0s'}}", "storage.memtable_age: at least 1ms"},
    {HEAD ", 'storage': {'memtable_age': 1000}}", "storage.memtable_age: expected a duration"},
    {HEAD ", 'storage': {'memory_budget': '1MiB'}}",
     "storage.memory_budget: must be at least storage.memtable_bytes"},
    {HEAD ", 'storage': {'memory_budget': '99999999999999999999'}}",
     "storage.memory_budget: '99999999999999999999' is not a size"},
    /* kafka */
    {HEAD ", 'kafka': 'orders'}", "kafka: expected an object, got a string"},
    {HEAD ", 'kafka': {}}", "kafka.topic: required"},
    {HEAD ", 'kafka': {'topic': 5}}", "kafka.topic: expected a string"},
    {HEAD ", 'kafka': {'topic': ''}}", "kafka.topic: must not be empty"},
    {HEAD ", 'kafka': {'topic': 'a b'}}", "kafka.topic: 'a b' is not a valid topic name"},
    {HEAD ", 'kafka': {'topic': 'a/b'}}", "kafka.topic: 'a/b' is not a valid topic name"},
    {HEAD ", 'kafka': {'topics': 'x'}}", "kafka: unknown key 'topics' (did you mean 'topic'?)"},
    {HEAD ", 'kafka': {'topic': 'x', 'brokers': 9092}}",
     "kafka.brokers: expected a string, got an integer"},
    {HEAD ", 'kafka': {'topic': 'x', 'group': ''}}", "kafka.group: must not be empty"},
    {HEAD ", 'kafka': {'topic': 'x', 'group': ['g']}}",
     "kafka.group: expected a string, got an array"},
    {HEAD ", 'kafka': {'topic': 'x', 'start': 'beginning'}}",
     "kafka.start: unknown value 'beginning' (expected one of earliest, latest)"},
    {HEAD ", 'kafka': {'topic': 'x', 'properties': []}}",
     "kafka.properties: expected an object, got an array"},
    {HEAD ", 'kafka': {'topic': 'x', 'properties': {'acks': null}}}",
     "kafka.properties[\"acks\"]: expected a string, number or boolean, got null"},
    {HEAD ", 'kafka': {'topic': 'x', 'properties': {'acks': {'a': 1}}}}",
     "kafka.properties[\"acks\"]: expected a string, number or boolean, got an object"},
    {HEAD ", 'kafka': {'topic': 'x', 'properties': {'': 'v'}}}",
     "kafka.properties: empty property name"},
};

TEST(invalid_schemas)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++)
        parse_fails(bad_cases[i].json, bad_cases[i].needle);
}

TEST(newer_format_version)
{
    /* Refused with EVERSION before any other check, so a newer file's new keys do not
     * produce a misleading "unknown key". */
    const char *t = J(HEAD ", 'format_version': 2, 'shiny_new_thing': {}}");
    parse_fails_raw(t, strlen(t), NULL, STRATA_EVERSION,
                    "format_version: 2 is not supported (this build reads version 1)");
    t = J(HEAD ", 'format_version': 0}");
    parse_fails_raw(t, strlen(t), NULL, STRATA_EVERSION, "format_version: 0 is not supported");
    /* Version 1 given explicitly is the same as leaving it out. */
    parse_ok(HEAD ", 'format_version': 1}", &A);
    parse_ok(HEAD "}", &B);
    assert_same_schema(&A, &B, "format_version 1");
}

TEST(generated_limits)
{
    static char text[200000];
    /* 129 columns. */
    int n = snprintf(text, sizeof text, "{'name': 't', 'time_column': 'c0', 'columns': [");
    for (int i = 0; i <= STRATA_MAX_COLUMNS; i++)
        n += snprintf(text + n, sizeof text - (size_t)n, "%s{'name': 'c%d', 'type': '%s'}",
                      i ? ", " : "", i, i ? "int64" : "timestamp");
    snprintf(text + n, sizeof text - (size_t)n, "]}");
    parse_fails(text, "columns: 129 columns, at most 128 allowed");
    /* 128 columns are fine. */
    char *end = strstr(text, ", {'name': 'c128'");
    ASSERT(end);
    snprintf(end, 8, "]}");
    parse_ok(text, &A);
    ASSERT_EQ(A.ncols, STRATA_MAX_COLUMNS);
    assert_round_trip(&A, "128 columns");

    /* 33 metrics. */
    n = snprintf(text, sizeof text, HEAD ", 'rollups': [{'interval': '1h', 'metrics': [");
    for (int i = 0; i <= STRATA_MAX_ROLLUP_METRICS; i++)
        n += snprintf(text + n, sizeof text - (size_t)n, "%s{'fn': 'count'}", i ? ", " : "");
    snprintf(text + n, sizeof text - (size_t)n, "]}]}");
    parse_fails(text, "rollups[0].metrics: 33 metrics, between 1 and 32 allowed");

    /* 33 Kafka properties. */
    n = snprintf(text, sizeof text, HEAD ", 'kafka': {'topic': 'x', 'properties': {");
    for (int i = 0; i <= STRATA_MAX_KAFKA_PROPS; i++)
        n += snprintf(text + n, sizeof text - (size_t)n, "%s'p%d': 'v'", i ? ", " : "", i);
    snprintf(text + n, sizeof text - (size_t)n, "}}}");
    parse_fails(text, "kafka.properties: 33 properties, at most 32");

    /* Over-long strings. */
    char big[400];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    snprintf(text, sizeof text,
             "{'name': 't', 'time_column': 'ts', 'columns': [{'name': 'ts', 'type': "
             "'timestamp'}, {'name': 's', 'type': 'string', 'default': '%.256s'}]}",
             big);
    parse_fails(text, "columns[1].default: too long (256 bytes, at most 255)");
    snprintf(text, sizeof text, HEAD ", 'kafka': {'topic': '%.128s'}}", big);
    parse_fails(text, "kafka.topic: too long (128 bytes, at most 127)");
    snprintf(text, sizeof text, HEAD ", 'kafka': {'topic': 'x', 'group': '%.128s'}}", big);
    parse_fails(text, "kafka.group: too long (128 bytes, at most 127)");
    snprintf(text, sizeof text, HEAD ", 'kafka': {'topic': 'x', 'brokers': '%.256s'}}", big);
    parse_fails(text, "kafka.brokers: too long (256 bytes, at most 255)");
    snprintf(text, sizeof text, HEAD ", 'kafka': {'topic': 'x', 'properties': {'%.128s': 'v'}}}",
             big);
    parse_fails(text, "name too long (128 bytes, at most 127)");
    snprintf(text, sizeof text, HEAD ", 'kafka': {'topic': 'x', 'properties': {'k': '%.256s'}}}",
             big);
    parse_fails(text, "kafka.properties[\"k\"]: value too long (256 bytes, at most 255)");
}

TEST(messages_are_utf8)
{
    /* An unknown key of multi-byte characters, cut inside a character by %.64s. */
    char text[1024];
    char key[200] = "a";
    for (int i = 0; i < 40; i++)
        strcat(key, "\xc3\xa9");
    snprintf(text, sizeof text, HEAD ", '%s': 1}", key);
    parse_fails(text, "unknown key 'a");
    /* Bytes that are not UTF-8 in the input itself. */
    static const char *const raw[] = {
        "{\"name\": \"\xff\"}",
        "{\"a\": \xc3\xa9x}",
        "{\"name\xe2\x82\": 1}",
        "\xef\xbb\xbf{}",
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++)
        parse_fails_raw(raw[i], strlen(raw[i]), NULL, STRATA_EINVAL, "malformed JSON");
}

/* ---- files ------------------------------------------------------------------------------- */

static char tmp_dir[4096];

static void remove_tmp_dir(void)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp_dir);
}

/* A fresh directory under $STRATA_TEST_TMP (or /tmp), removed when the binary exits. */
static const char *test_dir(void)
{
    if (!tmp_dir[0]) {
        const char *base = getenv("STRATA_TEST_TMP");
        snprintf(tmp_dir, sizeof tmp_dir, "%s/schema_json-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(tmp_dir))
            TEST_FAIL_("mkdtemp %s: %s", tmp_dir, strerror(errno));
        atexit(remove_tmp_dir);
    }
    return tmp_dir;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ASSERT(f);
    ASSERT_EQ(fwrite(text, 1, strlen(text), f), strlen(text));
    ASSERT_EQ(fclose(f), 0);
}

TEST(parse_file)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/orders.json", test_dir());
    write_file(path, J(ORDERS));
    strata_err err = {0};
    ASSERT_EQ(schema_json_parse_file(path, &A, &err), 0);
    parse_ok(ORDERS, &B);
    assert_same_schema(&A, &B, "file");

    write_file(path, J(HEAD ", 'partition_by': 'week'}"));
    ASSERT_EQ(schema_json_parse_file(path, &A, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, path);
    ASSERT_CONTAINS(err.msg, ": partition_by: unknown value 'week'");

    write_file(path, "{\n  \"name\": \"t\",\n  oops\n}\n");
    ASSERT_EQ(schema_json_parse_file(path, &A, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, path);
    ASSERT_CONTAINS(err.msg, "malformed JSON at line 3 column");

    snprintf(path, sizeof path, "%s/missing.json", test_dir());
    ASSERT_EQ(schema_json_parse_file(path, &A, &err), STRATA_ENOTFOUND);
    ASSERT_CONTAINS(err.msg, path);
    ASSERT_EQ(schema_json_parse_file(test_dir(), &A, &err), STRATA_EIO); /* a directory */
    ASSERT_CONTAINS(err.msg, test_dir());

    /* Too large. */
    snprintf(path, sizeof path, "%s/huge.json", test_dir());
    FILE *f = fopen(path, "w");
    ASSERT(f);
    ASSERT_EQ(fputc('{', f), '{');
    for (unsigned i = 0; i < SCHEMA_JSON_MAX_FILE / 64 + 1; i++)
        fputs("                                                               \n", f);
    ASSERT_EQ(fputc('}', f), '}');
    ASSERT_EQ(fclose(f), 0);
    ASSERT_EQ(schema_json_parse_file(path, &A, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "larger than");
    unlink(path);
}

TEST(save_atomically)
{
    char dir[4300], path[4400], tmp[4400];
    snprintf(dir, sizeof dir, "%s/orders", test_dir());
    ASSERT_EQ(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/schema.json", dir);
    snprintf(tmp, sizeof tmp, "%s/schema.json.tmp", dir);
    parse_ok(ORDERS, &A);
    strata_err err = {0};
    ASSERT_EQ(schema_json_save(dir, &A, &err), 0);
    ASSERT_EQ(access(tmp, F_OK), -1);
    ASSERT_EQ(schema_json_parse_file(path, &B, &err), 0);
    assert_same_schema(&A, &B, "saved");

    /* Saving again replaces the file. */
    A.lateness_ms = 0;
    ASSERT_EQ(schema_json_save(dir, &A, &err), 0);
    ASSERT_EQ(schema_json_parse_file(path, &B, &err), 0);
    ASSERT_EQ(B.lateness_ms, 0);

    /* An invalid schema is refused and the file is left as it was. */
    memcpy(&C, &A, sizeof C);
    C.time_col = 1;
    ASSERT_EQ(schema_json_save(dir, &C, &err), STRATA_EINVAL);
    ASSERT_CONTAINS(err.msg, "time_column");
    ASSERT_EQ(schema_json_parse_file(path, &B, &err), 0);
    assert_same_schema(&A, &B, "kept");
    ASSERT_EQ(access(tmp, F_OK), -1);

    /* A directory that does not exist: EIO naming the file. */
    char nodir[4400];
    snprintf(nodir, sizeof nodir, "%s/nope/deeper", test_dir());
    ASSERT_EQ(schema_json_save(nodir, &A, &err), STRATA_EIO);
    ASSERT_CONTAINS(err.msg, "nope/deeper/schema.json.tmp");
}

/* ---- the corpus ------------------------------------------------------------------------- */

static void corpus_dir(char *out, size_t cap)
{
    const char *env = getenv("STRATA_SCHEMA_CORPUS");
    if (env) {
        snprintf(out, cap, "%s", env);
        return;
    }
    /* tests/unit/test_schema_json.c -> tests/corpus/schema */
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    int dirlen = slash ? (int)(slash - file) : 1;
    snprintf(out, cap, "%.*s/../corpus/schema", dirlen, slash ? file : ".");
}

TEST(corpus_replay)
{
    char dir[4096];
    corpus_dir(dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d)
        TEST_FAIL_("corpus directory %s: %s (set STRATA_SCHEMA_CORPUS)", dir, strerror(errno));
    int nvalid = 0, ninvalid = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        size_t nl = strlen(name);
        if (nl < 5 || strcmp(name + nl - 5, ".json") != 0)
            continue;
        char path[8300];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        strata_err err = {0};
        int rc = schema_json_parse_file(path, &A, &err);
        if (strncmp(name, "valid_", 6) == 0) {
            if (rc != 0)
                TEST_FAIL_("%s should parse: %s", name, err.msg);
            assert_round_trip(&A, name);
            nvalid++;
        } else if (strncmp(name, "invalid_", 8) == 0) {
            if (rc == 0)
                TEST_FAIL_("%s should be refused", name);
            ASSERT(err.msg[0]);
            ASSERT(text_utf8_valid(err.msg, strlen(err.msg)));
            if (!test_corpus_expect(dir, name, err.msg))
                TEST_FAIL_("corpus expectation not met");
            ninvalid++;
        } else {
            TEST_FAIL_("%s: corpus files are named valid_* or invalid_*", name);
        }
    }
    closedir(d);
    fprintf(stderr, "corpus: %d valid, %d invalid\n", nvalid, ninvalid);
    ASSERT_GE(nvalid, 2);
    ASSERT_GE(ninvalid, 15);
}

TEST_LIST(T(minimal_gets_defaults), T(every_field), T(column_defaults),
          T(integral_real_defaults_fit_integer_columns), T(default_order_by),
          T(null_means_absent), T(sizes_and_durations), T(kafka_defaults), T(named),
          T(text_need_not_be_terminated), T(dump_is_canonical),
          T(schema_json_written_before_unknown_fields_loads_as_ignore),
          T(dump_refuses_impossible_schemas),
          T(random_round_trips), T(invalid_schemas), T(newer_format_version), T(generated_limits),
          T(messages_are_utf8), T(parse_file), T(save_atomically), T(corpus_replay))
