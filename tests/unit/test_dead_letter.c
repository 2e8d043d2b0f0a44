/*
 * test_dead_letter.c — the dead-letter sink (ingest/dead_letter.c) on its file alone (no
 * brokers): records read back byte for byte (UTF-8 events as strings, anything else, NUL
 * bytes and overlong forms included, as padded base64), the file appended to across
 * sinks, a file that cannot be opened (logged and counted, never pending), and a sync that
 * fails (injected fault) leaving its dead letters pending until a later sync succeeds.
 */

#include "engine/fault.h"
#include "ingest/dead_letter.h"
#include "test.h"

static char tmp_dir[1024];
static char last_log[2048];
static int nlogs;

static void tmp_cleanup(void)
{
    test_rmdir_flat(tmp_dir);
}

/* The test directory (made once, emptied of dead letters for each test). */
static const char *dir(void)
{
    if (!tmp_dir[0]) {
        test_tmpdir(tmp_dir, sizeof tmp_dir, "test_dead_letter");
        atexit(tmp_cleanup);
    }
    return tmp_dir;
}

static const char *file_path(void)
{
    static char path[1200];
    snprintf(path, sizeof path, "%s/deadletters.ndjson", dir());
    return path;
}

static void __attribute__((format(printf, 2, 0))) capture_log(void *ctx, const char *fmt, va_list ap)
{
    (void)ctx;
    vsnprintf(last_log, sizeof last_log, fmt, ap);
    nlogs++;
}

/* A sink over the test directory's file only; the file starts empty. */
static dead_letter_sink *sink_new(const char *in_dir)
{
    if (in_dir == dir())
        unlink(file_path());
    last_log[0] = 0;
    nlogs = 0;
    dead_letter_opts o = {.table = "orders", .topic = "orders-in", .brokers = NULL, .dir = in_dir,
                          .vlog = capture_log};
    dead_letter_sink *s = NULL;
    strata_err err = {0};
    ASSERT_EQ(dead_letter_sink_create(&o, &s, &err), 0);
    ASSERT(s != NULL);
    return s;
}

static void put(dead_letter_sink *s, const char *reason, int32_t kp, int64_t off, const void *p, size_t n)
{
    rd_kafka_message_t m;
    memset(&m, 0, sizeof m);
    m.partition = kp;
    m.offset = off;
    m.payload = (void *)p;
    m.len = n;
    dead_letter_put(s, reason, &m);
}

/* The file's text (caller frees). */
static char *file_text(void)
{
    FILE *f = fopen(file_path(), "rb");
    ASSERT(f != NULL);
    char *buf = calloc(1, 1 << 16);
    ASSERT(buf != NULL);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

TEST(records_keep_utf8_as_text_and_the_rest_as_base64)
{
    dead_letter_sink *s = sink_new(dir());
    put(s, "bad json", 3, 42, "{\"ts\": 1", 8);
    put(s, "not an object", 0, 7, "\"caf\xc3\xa9\"", 7);     /* é: valid UTF-8 */
    put(s, "empty message", 1, 0, NULL, 0);                   /* no payload at all */
    put(s, "bad bytes", 2, 9, "\xff\xfe\x00" "a", 4);         /* not UTF-8, a NUL inside */
    put(s, "overlong", 2, 10, "\xc0\xaf", 2);                 /* overlong '/' is not UTF-8 */
    put(s, "surrogate", 2, 11, "\xed\xa0\x80", 3);            /* U+D800 */
    put(s, "too high", 2, 12, "\xf4\x90\x80\x80", 4);         /* U+110000 */
    put(s, "one", 5, 1, "\xff", 1);
    put(s, "two", 5, 2, "\xff\xff", 2);
    put(s, "three", 5, 3, "\xff\xff\xff", 3);
    ASSERT_EQ(dead_letter_sync(s), 0);
    char *t = file_text();
    ASSERT_STR_EQ(t,
                  "{\"error\":\"bad json\",\"topic\":\"orders-in\",\"partition\":3,\"offset\":42,\"event\":\"{\\\"ts\\\": 1\"}\n"
                  "{\"error\":\"not an object\",\"topic\":\"orders-in\",\"partition\":0,\"offset\":7,\"event\":\"\\\"caf\xc3\xa9\\\"\"}\n"
                  "{\"error\":\"empty message\",\"topic\":\"orders-in\",\"partition\":1,\"offset\":0,\"event\":\"\"}\n"
                  "{\"error\":\"bad bytes\",\"topic\":\"orders-in\",\"partition\":2,\"offset\":9,\"event_base64\":\"//4AYQ==\"}\n"
                  "{\"error\":\"overlong\",\"topic\":\"orders-in\",\"partition\":2,\"offset\":10,\"event_base64\":\"wK8=\"}\n"
                  "{\"error\":\"surrogate\",\"topic\":\"orders-in\",\"partition\":2,\"offset\":11,\"event_base64\":\"7aCA\"}\n"
                  "{\"error\":\"too high\",\"topic\":\"orders-in\",\"partition\":2,\"offset\":12,\"event_base64\":\"9JCAgA==\"}\n"
                  "{\"error\":\"one\",\"topic\":\"orders-in\",\"partition\":5,\"offset\":1,\"event_base64\":\"/w==\"}\n"
                  "{\"error\":\"two\",\"topic\":\"orders-in\",\"partition\":5,\"offset\":2,\"event_base64\":\"//8=\"}\n"
                  "{\"error\":\"three\",\"topic\":\"orders-in\",\"partition\":5,\"offset\":3,\"event_base64\":\"////\"}\n");
    free(t);
    dead_letter_counts c = dead_letter_sink_counts(s);
    ASSERT_U64_EQ(c.file, 10);
    ASSERT_U64_EQ(c.kafka, 0);
    ASSERT_U64_EQ(c.errors, 0);
    ASSERT_EQ(nlogs, 0);
    dead_letter_sink_free(s);
}

TEST(a_second_sink_appends)
{
    dead_letter_sink *s = sink_new(dir());
    put(s, "first", 0, 1, "x", 1);
    ASSERT_EQ(dead_letter_sync(s), 0);
    dead_letter_sink_free(s);
    dead_letter_opts o = {.table = "orders", .topic = "orders-in", .dir = dir()};
    strata_err err = {0};
    ASSERT_EQ(dead_letter_sink_create(&o, &s, &err), 0);
    put(s, "second", 0, 2, "y", 1);
    dead_letter_sink_free(s); /* closing flushes, even without a sync */
    char *t = file_text();
    ASSERT_STR_EQ(t, "{\"error\":\"first\",\"topic\":\"orders-in\",\"partition\":0,\"offset\":1,\"event\":\"x\"}\n"
                     "{\"error\":\"second\",\"topic\":\"orders-in\",\"partition\":0,\"offset\":2,\"event\":\"y\"}\n");
    free(t);
}

TEST(a_file_that_cannot_open_is_logged_and_counted)
{
    char missing[1100];
    snprintf(missing, sizeof missing, "%s/no-such-dir", dir());
    dead_letter_sink *s = sink_new(missing);
    put(s, "bad json", 4, 77, "{", 1);
    ASSERT_EQ(nlogs, 1);
    ASSERT_CONTAINS(last_log, "table orders: cannot open ");
    ASSERT_CONTAINS(last_log, "no-such-dir/deadletters.ndjson: No such file or directory; a dead letter "
                              "(partition 4 offset 77) is only logged: bad json");
    dead_letter_counts c = dead_letter_sink_counts(s);
    ASSERT_U64_EQ(c.file, 0);
    ASSERT_U64_EQ(c.errors, 1);
    ASSERT_EQ(dead_letter_sync(s), 0); /* nothing was written, so nothing is pending */
    dead_letter_sink_free(s);
}

TEST(a_failed_sync_keeps_its_dead_letters_pending)
{
    fault_reset();
    dead_letter_sink *s = sink_new(dir());
    fault_arm(FAULT_DEAD_LETTER_SYNC, 0, 1);
    ASSERT_EQ(dead_letter_sync(s), 0); /* nothing pending: the site is not even reached */
    ASSERT_U64_EQ(fault_failures(FAULT_DEAD_LETTER_SYNC), 0);
    put(s, "bad json", 0, 5, "{", 1);
    ASSERT_EQ(dead_letter_sync(s), -1);
    ASSERT_STR_EQ(last_log, "table orders: dead letters cannot be made durable (injected fault); reading "
                            "those messages again");
    ASSERT_U64_EQ(dead_letter_sink_counts(s).errors, 1);
    ASSERT_EQ(dead_letter_sync(s), 0); /* still pending, now durable */
    ASSERT_U64_EQ(fault_failures(FAULT_DEAD_LETTER_SYNC), 1);
    fault_arm(FAULT_DEAD_LETTER_SYNC, 0, 1);
    ASSERT_EQ(dead_letter_sync(s), 0); /* and no longer pending */
    fault_reset();
    dead_letter_sink_free(s);
}

TEST_LIST(T(records_keep_utf8_as_text_and_the_rest_as_base64), T(a_second_sink_appends),
          T(a_file_that_cannot_open_is_logged_and_counted), T(a_failed_sync_keeps_its_dead_letters_pending))
