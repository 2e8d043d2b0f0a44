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

#include <sys/wait.h>

#include "engine/catalog.h"
#include "engine/fault.h"
#include "engine/schema_json.h"
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
    ASSERT_EQ(catalog_create(c, &s, &t, NULL, &err), 0);
    ASSERT(t);
    ASSERT(catalog_get(c, "clicks") == t);
    ASSERT(catalog_get(c, "nope") == NULL);
    /* Same schema again: the same table. */
    strata_table *t2;
    ASSERT_EQ(catalog_create(c, &s, &t2, NULL, &err), 0);
    ASSERT(t2 == t);
    /* Another schema under the same name: refused. */
    strata_schema other = s;
    other.partition_by = STRATA_PART_HOUR;
    ASSERT_EQ(catalog_create(c, &other, NULL, NULL, &err), STRATA_EEXIST);
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

}

/* "One table must not take the server down": a table whose schema.json or committed
 * segment is damaged is kept aside with the reason; the others open; the broken one holds
 * its name until dropped, and a drop removes it. */
TEST(table_that_cannot_be_opened_is_kept_aside)
{
    char dir[4096];
    tmpdir(dir, sizeof dir, "catalog_broken");
    strata_err err = {0};
    strata_catalog *c;
    ASSERT_EQ(catalog_open(dir, &c, &err), 0);
    strata_schema s;
    ASSERT_EQ(schema_json_parse(SCHEMA, strlen(SCHEMA), &s, &err), 0);
    ASSERT_EQ(catalog_create(c, &s, NULL, NULL, &err), 0);
    strata_schema s2 = s;
    snprintf(s2.name, sizeof s2.name, "views");
    strata_table *t;
    ASSERT_EQ(catalog_create(c, &s2, &t, NULL, &err), 0);
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, table_schema(t), 0), 0);
    int64_t r = row_batch_add_row(&b);
    b.i[0][r] = 1704067200000;
    ASSERT_EQ(table_append(t, &b, &err), 0);
    ASSERT_EQ(table_flush(t, true, &err), 0);
    row_batch_free(&b);
    catalog_put(c, t);
    catalog_close(c);

    char path[4300];
    snprintf(path, sizeof path, "%s/clicks/schema.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"name\": \"clicks\", \"columns\": [", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/views/raw/2024-01-01/0000000000000001.seg", dir);
    ASSERT_EQ(unlink(path), 0); /* a committed segment gone */
    ASSERT_EQ(catalog_open(dir, &c, &err), 0);
    ASSERT_EQ(catalog_count(c), 0);
    ASSERT_EQ(catalog_broken_count(c), 2);
    char name[64], why[1024];
    ASSERT(catalog_broken_at(c, 0, name, sizeof name, why, sizeof why));
    ASSERT_STR_EQ(name, "clicks");
    ASSERT_CONTAINS(why, "schema.json");
    ASSERT(catalog_broken_get(c, "views", why, sizeof why));
    ASSERT_CONTAINS(why, "0000000000000001.seg");
    ASSERT(catalog_get(c, "views") == NULL);
    /* The name stays taken until the broken table is dropped. */
    ASSERT_EQ(catalog_create(c, &s2, NULL, NULL, &err), STRATA_EEXIST);
    ASSERT_CONTAINS(err.msg, "cannot be opened");
    ASSERT_EQ(catalog_drop(c, "views", &err), 0);
    ASSERT_EQ(catalog_broken_count(c), 1);
    ASSERT_EQ(catalog_create(c, &s2, NULL, NULL, &err), 0);
    catalog_close(c);
    snprintf(path, sizeof path, "%s/views/raw/2024-01-01", dir);
    ASSERT(access(path, F_OK) != 0); /* the old files went with the drop */
}

/* C1: one process serves a data directory; a second is refused, naming the first. */
TEST(second_process_cannot_open_a_data_directory_in_use)
{
    char dir[4096];
    tmpdir(dir, sizeof dir, "catalog_lock");
    strata_err err = {0};
    strata_catalog *c;
    ASSERT_EQ(catalog_open(dir, &c, &err), 0);
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        strata_catalog *c2;
        strata_err e2 = {0};
        int rc = catalog_open(dir, &c2, &e2);
        char want[64];
        snprintf(want, sizeof want, "in use by pid %ld", (long)getppid());
        _exit(rc == STRATA_EEXIST && strstr(e2.msg, want) ? 0 : 1);
    }
    int status;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
    catalog_close(c);
    ASSERT_EQ(catalog_open(dir, &c, &err), 0); /* released by close */
    catalog_close(c);
}

static uint64_t table_rows(strata_table *t)
{
    table_stats st;
    table_get_stats(t, &st);
    return st.segment_rows + st.memtable_rows;
}

static void append_clicks(strata_table *t, int n, strata_err *err, int want_rc)
{
    row_batch b;
    ASSERT_EQ(row_batch_init(&b, table_schema(t), 0), 0);
    for (int i = 0; i < n; i++) {
        int64_t r = row_batch_add_row(&b);
        b.i[0][r] = 1704067200000 + i;
    }
    ASSERT_EQ(table_append(t, &b, err), want_rc);
    row_batch_free(&b);
}

/* B3: a holder of a dropped table (an ingest request half sent) must not write into the
 * table re-created under its name: its append and flush are refused, and the new table's
 * files and rows are untouched, also after a reopen. */
TEST(drop_recreate_old_holder_cannot_write_into_new_table)
{
    char dir[4096];
    tmpdir(dir, sizeof dir, "catalog_recreate");
    strata_err err = {0};
    strata_catalog *c;
    ASSERT_EQ(catalog_open(dir, &c, &err), 0);
    strata_schema s;
    ASSERT_EQ(schema_json_parse(SCHEMA, strlen(SCHEMA), &s, &err), 0);
    strata_table *old;
    ASSERT_EQ(catalog_create(c, &s, &old, NULL, &err), 0);
    append_clicks(old, 1, &err, 0); /* in a memtable, not flushed */
    ASSERT_EQ(catalog_drop(c, "clicks", &err), 0);
    strata_table *fresh;
    ASSERT_EQ(catalog_create(c, &s, &fresh, NULL, &err), 0);
    append_clicks(fresh, 1000, &err, 0);
    ASSERT_EQ(table_flush(fresh, true, &err), 0);
    /* The old request goes on. */
    append_clicks(old, 5, &err, STRATA_ENOTFOUND);
    ASSERT_CONTAINS(err.msg, "was dropped");
    ASSERT_EQ(table_flush(old, true, &err), STRATA_ENOTFOUND);
    catalog_put(c, old);
    ASSERT_EQ(table_rows(fresh), 1000);
    catalog_put(c, fresh);
    catalog_close(c);
    ASSERT_EQ(catalog_open(dir, &c, &err), 0);
    ASSERT_EQ(catalog_broken_count(c), 0);
    strata_table *t = catalog_get(c, "clicks");
    ASSERT(t);
    ASSERT_EQ(table_rows(t), 1000);
    catalog_put(c, t);
    catalog_close(c);
}

/* B7 (catalog side): a drop whose rename fails leaves the table as it was: listed,
 * writable, its files in place. */
TEST(failed_drop_leaves_the_table_writable)
{
    char dir[4096];
    tmpdir(dir, sizeof dir, "catalog_faildrop");
    strata_err err = {0};
    strata_catalog *c;
    ASSERT_EQ(catalog_open(dir, &c, &err), 0);
    strata_schema s;
    ASSERT_EQ(schema_json_parse(SCHEMA, strlen(SCHEMA), &s, &err), 0);
    strata_table *t;
    ASSERT_EQ(catalog_create(c, &s, &t, NULL, &err), 0);
    append_clicks(t, 10, &err, 0);
    fault_arm(FAULT_RENAME_DROP, 0, 1);
    ASSERT_EQ(catalog_drop(c, "clicks", &err), STRATA_EIO);
    fault_reset();
    ASSERT_CONTAINS(err.msg, "rename");
    ASSERT(catalog_get(c, "clicks") == t);
    catalog_put(c, t);
    append_clicks(t, 10, &err, 0);
    ASSERT_EQ(table_flush(t, true, &err), 0);
    ASSERT_EQ(table_rows(t), 20);
    catalog_put(c, t);
    catalog_close(c);
}

/* B5: a created table is durable when creation returns: the data directory's entry is
 * fsynced; when any fsync fails the creation fails and leaves nothing that a restart
 * would take for a table. */
TEST(create_fsyncs_the_data_directory_or_leaves_nothing)
{
    char dir[4096];
    tmpdir(dir, sizeof dir, "catalog_fsync");
    strata_err err = {0};
    strata_catalog *c;
    ASSERT_EQ(catalog_open(dir, &c, &err), 0);
    strata_schema s;
    ASSERT_EQ(schema_json_parse(SCHEMA, strlen(SCHEMA), &s, &err), 0);
    bool data_dir_failed = false;
    int failures = 0;
    for (uint64_t skip = 0;; skip++) {
        fault_arm(FAULT_FSYNC_DIR, skip, 1);
        int rc = catalog_create(c, &s, NULL, NULL, &err);
        bool hit = fault_failures(FAULT_FSYNC_DIR) > 0;
        fault_reset();
        if (!hit) {
            ASSERT_EQ(rc, 0);
            break;
        }
        failures++;
        ASSERT_EQ(rc, STRATA_EIO);
        char want[4200];
        snprintf(want, sizeof want, "%s: fsync directory", dir);
        data_dir_failed |= strstr(err.msg, want) != NULL;
        ASSERT(catalog_get(c, "clicks") == NULL);
        catalog_close(c);
        ASSERT_EQ(catalog_open(dir, &c, &err), 0); /* a restart finds no table */
        ASSERT_EQ(catalog_count(c), 0);
        ASSERT_EQ(catalog_broken_count(c), 0);
    }
    ASSERT_GE(failures, 2);
    ASSERT(data_dir_failed); /* the data directory itself was fsynced */
    catalog_close(c);
    ASSERT_EQ(catalog_open(dir, &c, &err), 0);
    ASSERT_EQ(catalog_count(c), 1);
    catalog_close(c);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        n += (de->d_name[0] != '.' && strcmp(de->d_name, "LOCK") != 0) ||
             strncmp(de->d_name, ".dropped-", 9) == 0;
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
    ASSERT_EQ(catalog_create(c, &s, &t, NULL, &err), 0);
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
    ASSERT_EQ(catalog_create(c, &other, &t2, NULL, &err), 0);
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
    ASSERT_EQ(catalog_create(c, &s, NULL, NULL, &err), 0);
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

TEST_LIST(T(create_reopen_and_conflicts), T(drop_with_holders_and_after_crash),
          T(table_that_cannot_be_opened_is_kept_aside), T(second_process_cannot_open_a_data_directory_in_use),
          T(drop_recreate_old_holder_cannot_write_into_new_table), T(failed_drop_leaves_the_table_writable),
          T(create_fsyncs_the_data_directory_or_leaves_nothing))
