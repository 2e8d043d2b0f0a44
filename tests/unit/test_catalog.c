/*
 * test_catalog.c — tables of a data directory: create stores schema.json and opens the
 * table; reopen finds every table with its rows; the same schema is idempotent, another
 * is refused; a damaged schema.json makes open fail naming the table; drops wait for
 * their holders and survive a crash.
 */
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "catalog.h"
#include "schema_json.h"
#include "test.h"

static void tmpdir(char *out, size_t cap, const char *name)
{
    const char *base = getenv("STRATA_TEST_TMP");
    snprintf(out, cap, "%s/%s-%d", base ? base : "/tmp", name, (int)getpid());
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
    ASSERT_EQ(system(cmd), 0);
}

static const char *SCHEMA = "{\"name\": \"clicks\", \"columns\": ["
                            "{\"name\": \"ts\", \"type\": \"timestamp\"},"
                            "{\"name\": \"page\", \"type\": \"string\"},"
                            "{\"name\": \"ms\", \"type\": \"int32\", \"default\": 5}],"
                            "\"time_column\": \"ts\"}";

TEST(create_reopen_and_conflicts)
{
    char dir[4096];
    tmpdir(dir, sizeof dir, "catalog");
    strata_err err = {0};
    strata_catalog *c;
    ASSERT_EQ(catalog_open(dir, &c, &err), 0);
    ASSERT_EQ(catalog_count(c), 0);
    strata_schema s;
    ASSERT_EQ(schema_json_parse(SCHEMA, strlen(SCHEMA), &s, &err), 0);
    strata_table *t;
    ASSERT_EQ(catalog_create(c, &s, &t, &err), 0);
    ASSERT(t);
    ASSERT(catalog_get(c, "clicks") == t);
    ASSERT(catalog_get(c, "nope") == NULL);
    /* Same schema again: the same table. */
    strata_table *t2;
    ASSERT_EQ(catalog_create(c, &s, &t2, &err), 0);
    ASSERT(t2 == t);
    /* Another schema under the same name: refused. */
    strata_schema other = s;
    other.partition_by = STRATA_PART_HOUR;
    ASSERT_EQ(catalog_create(c, &other, NULL, &err), STRATA_EEXIST);
    ASSERT_CONTAINS(err.msg, "different schema");

    row_batch b;
    ASSERT_EQ(row_batch_init(&b, table_schema(t), 0), 0);
    for (int i = 0; i < 100; i++) {
        int64_t r = row_batch_add_row(&b);
        b.i[0][r] = 1704067200000 + i;
        ASSERT_EQ(row_batch_set_str(&b, 1, (uint32_t)r, "/home", 5), 0);
        ASSERT_EQ(b.i[2][r], 5); /* the column default */
    }
    ASSERT_EQ(table_append(t, &b, &err), 0);
    ASSERT_EQ(table_flush(t, true, &err), 0);
    row_batch_free(&b);
    catalog_close(c);

    char path[4300];
    snprintf(path, sizeof path, "%s/clicks/schema.json", dir);
    ASSERT_EQ(access(path, R_OK), 0);
    ASSERT_EQ(catalog_open(dir, &c, &err), 0);
    ASSERT_EQ(catalog_count(c), 1);
    t = catalog_get(c, "clicks");
    ASSERT(t);
    table_stats st;
    table_get_stats(t, &st);
    ASSERT_EQ(st.segment_rows, 100);
    ASSERT_EQ(table_schema(t)->cols[2].def_i, 5);
    catalog_close(c);

    /* A damaged schema.json: open fails and says which. */
    FILE *f = fopen(path, "w");
    fputs("{\"name\": \"clicks\", \"columns\": [", f);
    fclose(f);
    ASSERT(catalog_open(dir, &c, &err) != 0);
    ASSERT_CONTAINS(err.msg, "clicks");
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        n += de->d_name[0] != '.' || strncmp(de->d_name, ".dropped-", 9) == 0;
    if (d)
        closedir(d);
    return n;
}

/* A dropped table leaves the name list at once, stays usable by whoever holds it, and its
 * files go when the last holder puts it back; a drop interrupted by a crash is finished
 * by the next open. */
TEST(drop_with_holders_and_after_crash)
{
    char dir[4096];
    tmpdir(dir, sizeof dir, "catalog_drop");
    strata_err err = {0};
    strata_catalog *c;
    ASSERT_EQ(catalog_open(dir, &c, &err), 0);
    strata_schema s;
    ASSERT_EQ(schema_json_parse(SCHEMA, strlen(SCHEMA), &s, &err), 0);
    strata_table *t;
    ASSERT_EQ(catalog_create(c, &s, &t, &err), 0);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, table_schema(t), 0), 0);
    int64_t r = row_batch_add_row(&b);
    b.i[0][r] = 1704067200000;
    ASSERT_EQ(row_batch_set_str(&b, 1, (uint32_t)r, "/a", 2), 0);
    ASSERT_EQ(table_append(t, &b, &err), 0);
    ASSERT_EQ(table_flush(t, true, &err), 0);
    row_batch_free(&b);

    ASSERT_EQ(catalog_drop(c, "clicks", &err), 0);
    ASSERT(catalog_get(c, "clicks") == NULL);
    ASSERT_EQ(catalog_count(c), 0);
    ASSERT_EQ(catalog_drop(c, "clicks", &err), STRATA_ENOTFOUND);
    ASSERT_CONTAINS(err.msg, "no table 'clicks'");
    /* The holder still reads it; its files wait in the tombstone. */
    table_stats st;
    table_get_stats(t, &st);
    ASSERT_EQ(st.segment_rows, 1);
    ASSERT_EQ(count_entries(dir), 1);
    /* The name is free for a table with another schema. */
    strata_schema other = s;
    other.partition_by = STRATA_PART_HOUR;
    strata_table *t2;
    ASSERT_EQ(catalog_create(c, &other, &t2, &err), 0);
    ASSERT(t2 != t);
    table_get_stats(t2, &st);
    ASSERT_EQ(st.segment_rows, 0);
    ASSERT_EQ(count_entries(dir), 2);
    catalog_put(c, t);
    ASSERT_EQ(count_entries(dir), 1); /* the last holder removed the old files */
    catalog_put(c, t2);
    /* Dropped with no holder: gone at once. */
    ASSERT_EQ(catalog_drop(c, "clicks", &err), 0);
    ASSERT_EQ(count_entries(dir), 0);
    catalog_close(c);

    /* A tombstone left by a crash is removed at open; other tables are untouched. */
    ASSERT_EQ(catalog_open(dir, &c, &err), 0);
    ASSERT_EQ(catalog_create(c, &s, NULL, &err), 0);
    catalog_close(c);
    char tomb[4300], from[4300];
    snprintf(from, sizeof from, "%s/clicks", dir);
    snprintf(tomb, sizeof tomb, "%s/.dropped-clicks-1-1", dir);
    ASSERT_EQ(rename(from, tomb), 0);
    ASSERT_EQ(catalog_open(dir, &c, &err), 0);
    ASSERT_EQ(catalog_count(c), 0);
    ASSERT_EQ(count_entries(dir), 0);
    catalog_close(c);
}

TEST_LIST(T(create_reopen_and_conflicts), T(drop_with_holders_and_after_crash))
