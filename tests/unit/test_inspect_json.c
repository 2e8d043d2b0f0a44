/*
 * test_inspect_json.c — the inspect library (tools/inspect.h) on segments and directories
 * holding bytes that are not UTF-8: every JSON it writes must parse, whatever the bytes.
 *
 * Segments can hold any bytes in a string value (the writer takes them as given), and a
 * directory name can be any bytes too. Each test writes such a segment with the engine's
 * segment writer (or makes such a directory), runs the report into a temporary file, and
 * parses it with jansson, which refuses invalid UTF-8 as any JSON reader must.
 */
#include <jansson.h>
#include <sys/stat.h>

#include "engine/segment.h"
#include "test.h"
#include "tools/inspect.h"

/* The string values, sorted as the segment writer wants (bytes, then length), each with
 * what a JSON reader must get back: invalid bytes as U+FFFD, everything else as it was. */
static const struct {
    const char *raw, *want;
} VALUES[] = {
    {"bad\xff\xfe", "bad\xef\xbf\xbd\xef\xbf\xbd"},           /* bytes that start nothing */
    {"ctl\x01\x7f\"\\", "ctl\x01\x7f\"\\"},                     /* control characters, quotes */
    {"cut\xc3", "cut\xef\xbf\xbd"},                             /* a sequence cut short */
    {"ls\xe2\x80\xa8", "ls\xe2\x80\xa8"},                       /* U+2028, valid */
    {"plain", "plain"},
    {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},                   /* an overlong '/' */
};
#define NVALUES (sizeof VALUES / sizeof VALUES[0])

/* A segment of columns ts and s, one row per value. */
static void write_segment(const char *path)
{
    strata_schema sc;
    schema_init(&sc);
    snprintf(sc.name, sizeof sc.name, "t");
    sc.ncols = 2;
    snprintf(sc.cols[0].name, sizeof sc.cols[0].name, "ts");
    sc.cols[0].type = STRATA_TIMESTAMP;
    snprintf(sc.cols[1].name, sizeof sc.cols[1].name, "s");
    sc.cols[1].type = STRATA_STRING;
    sc.time_col = 0;
    sc.norder = 2;
    sc.order_by[0] = 1;
    sc.order_by[1] = 0;
    strata_err err = {0};
    segment_writer *w = segment_writer_open(path, &sc, NULL, &err);
    ASSERT(w);
    strata_str dict[NVALUES];
    int64_t ts[NVALUES];
    uint32_t codes[NVALUES];
    for (uint32_t i = 0; i < NVALUES; i++) {
        dict[i] = (strata_str){VALUES[i].raw, (uint32_t)strlen(VALUES[i].raw)};
        ts[i] = 1704067200000 + i;
        codes[i] = i;
    }
    ASSERT_EQ(segment_writer_set_dict(w, 1, dict, NVALUES, &err), 0);
    const void *cols[2] = {ts, codes};
    ASSERT_EQ(segment_writer_add_granule(w, NVALUES, cols, &err), 0);
    ASSERT_EQ(segment_writer_finish(w, NULL, &err), 0);
}

/* Runs the report into a file and returns its text (caller frees); *rc gets the status. */
static char *report(bool dir, const char *path, const inspect_opts *o, int *rc)
{
    FILE *f = tmpfile();
    ASSERT(f);
    *rc = dir ? inspect_dir(path, o, f) : inspect_segment(path, o, f);
    long n = ftell(f);
    ASSERT(n >= 0);
    char *text = malloc((size_t)n + 1);
    ASSERT(text);
    rewind(f);
    ASSERT_EQ(fread(text, 1, (size_t)n, f), (size_t)n);
    text[n] = 0;
    fclose(f);
    return text;
}

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j)
        fprintf(stderr, "not JSON: %s (line %d column %d) in: %s\n", je.text, je.line, je.column, text);
    ASSERT(j);
    return j;
}

TEST(json_of_a_segment_with_non_utf8_strings_is_valid_json)
{
    char dir[4096], path[4200];
    test_tmpdir(dir, sizeof dir, "inspect-utf8");
    snprintf(path, sizeof path, "%s/1.seg", dir);
    write_segment(path);

    inspect_opts o = {.json = true, .rows = 100};
    int rc;
    char *text = report(false, path, &o, &rc);
    ASSERT_EQ(rc, 0);
    json_t *j = parse(text);
    ASSERT(!strstr(text, "\xe2\x80\xa8")); /* U+2028 escaped: JavaScript reads the text too */
    json_t *rows = json_object_get(j, "first_rows");
    ASSERT_EQ(json_array_size(rows), NVALUES);
    for (size_t i = 0; i < NVALUES; i++)
        ASSERT_STR_EQ(json_string_value(json_object_get(json_array_get(rows, i), "s")), VALUES[i].want);
    json_t *s = json_array_get(json_object_get(j, "columns"), 1);
    ASSERT_STR_EQ(json_string_value(json_object_get(s, "min")), VALUES[0].want);
    ASSERT_STR_EQ(json_string_value(json_object_get(s, "max")), VALUES[NVALUES - 1].want);
    json_decref(j);
    free(text);

    /* --rows without --json: one object a line, each valid. */
    o.json = false;
    text = report(false, path, &o, &rc);
    ASSERT_EQ(rc, 0);
    size_t lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        json_t *row = parse(line);
        ASSERT_STR_EQ(json_string_value(json_object_get(row, "s")), VALUES[lines].want);
        json_decref(row);
    }
    ASSERT_EQ(lines, NVALUES);
    free(text);
    unlink(path);
    rmdir(dir);
}

TEST(json_of_a_directory_with_a_non_utf8_table_name_is_valid_json)
{
    char dir[4096], raw[4300];
    test_tmpdir(dir, sizeof dir, "inspect-utf8-dir");
    snprintf(raw, sizeof raw, "%s/t\xff/raw", dir); /* a table directory without schema.json */
    char cmd[8800];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", raw);
    ASSERT_EQ(system(cmd), 0);

    inspect_opts o = {.json = true, .rows = -1, .quiet = true};
    int rc;
    char *text = report(true, dir, &o, &rc);
    ASSERT_EQ(rc, 1); /* the missing schema.json is a problem */
    json_t *j = parse(text);
    json_t *bad = json_array_get(json_object_get(j, "schemas"), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(bad, "table")), "t\xef\xbf\xbd");
    ASSERT_STR_EQ(json_string_value(json_object_get(bad, "error")), "missing");
    json_decref(j);
    free(text);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ASSERT_EQ(system(cmd), 0);
}

TEST_LIST(T(json_of_a_segment_with_non_utf8_strings_is_valid_json),
          T(json_of_a_directory_with_a_non_utf8_table_name_is_valid_json))
